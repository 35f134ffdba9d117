/**
 * Helpers for JSON values (objects as the API server, YAML or JSON parsing return them): the one plain-object
 * check, the one lenient parser of untrusted JSON bytes, the one deep equality, the one canonical serialization and the one merge-patch builder of Flotilla.
 */

/** A JSON object (not an array, not null). */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Parses untrusted JSON bytes that should hold an object (a manifest, an index, a signed payload): the
 * object, or undefined when the bytes are not JSON or not an object. For readers that skip what they
 * cannot use instead of failing; readers that must say why use JSON.parse and their own errors.
 */
export function parseJSONObject(bytes: Buffer): Record<string, unknown> | undefined {
  try {
    const json: unknown = JSON.parse(bytes.toString('utf8'));
    return isPlainObject(json) ? json : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Sets `key` as an own, enumerable data property, so that a key such as `__proto__` (which JSON.parse and
 * YAML readers produce as a plain key) stays data and never changes the object's prototype.
 */
export function setOwn(obj: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}

/**
 * Deep equality of JSON values: object key order does not matter, array order does, and a key whose value
 * is undefined counts as absent (`{a: undefined}` equals `{}`), as it would after a JSON round trip.
 */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((v, i) => jsonEqual(v, b[i]));
  }
  if (isPlainObject(a) && isPlainObject(b)) {
    const ka = Object.keys(a).filter((k) => a[k] !== undefined);
    const kb = Object.keys(b).filter((k) => b[k] !== undefined);
    return ka.length === kb.length && ka.every((k) => Object.hasOwn(b, k) && jsonEqual(a[k], b[k]));
  }
  return false;
}

/** Orders strings by UTF-16 code units, the order RFC 8785 (JSON canonicalization) sorts object keys in. */
function compareCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Serializes a JSON value canonically: object keys sorted by UTF-16 code units, no whitespace, undefined
 * object values dropped (undefined in an array or at the top is `null`, as JSON.stringify writes it).
 * Equal values (see {@link jsonEqual}) give equal strings. These bytes feed digests that objects and
 * registries already hold (artifact config and manifest, options hash): never change the output.
 */
export function canonicalJSON(value: unknown): string {
  const pieces: string[] = [];
  hashCanonicalJSON({ update: (piece) => pieces.push(piece) }, value);
  return pieces.join('');
}

/** Where {@link hashCanonicalJSON} writes: a hash, or anything with the same `update`. */
export interface HashSink {
  update(data: string): unknown;
}

/**
 * Feeds `sink` the bytes of {@link canonicalJSON}(value) (which is this, joined) without building that
 * string: for hashing a large object (a 1 MiB ConfigMap) without holding a second and third copy of it. Small pieces are joined
 * into chunks of up to 64 KiB before each update, so a small object costs one update, as before.
 */
export function hashCanonicalJSON(sink: HashSink, value: unknown): void {
  let pending = '';
  const write = (piece: string) => {
    if (pending.length + piece.length > 65_536) {
      if (pending) sink.update(pending);
      pending = '';
      if (piece.length > 65_536) {
        sink.update(piece);
        return;
      }
    }
    pending += piece;
  };
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) {
      write('[');
      v.forEach((item, i) => {
        if (i > 0) write(',');
        if (item === undefined) write('null');
        else walk(item);
      });
      write(']');
      return;
    }
    if (typeof v === 'object' && v !== null) {
      const entries = Object.entries(v)
        .filter(([, x]) => x !== undefined)
        .sort(([a], [b]) => compareCodeUnits(a, b));
      write('{');
      entries.forEach(([k, x], i) => {
        write(`${i > 0 ? ',' : ''}${JSON.stringify(k)}:`);
        walk(x);
      });
      write('}');
      return;
    }
    write(JSON.stringify(v) ?? 'null');
  };
  walk(value);
  if (pending) sink.update(pending);
}

/**
 * The JSON merge patch (RFC 7386) that turns `from` into `to`, or undefined when they are equal
 * ({@link jsonEqual}). Objects are diffed key by key; a key `from` has and `to` lacks (or sets to
 * undefined) becomes null, i.e. removed; arrays and scalars are replaced whole.
 */
export function mergePatchBetween(from: unknown, to: unknown): unknown {
  if (jsonEqual(from, to)) return undefined;
  if (!isPlainObject(from) || !isPlainObject(to)) return to === undefined ? null : to;
  const patch: Record<string, unknown> = {};
  for (const key of new Set([...Object.keys(from), ...Object.keys(to)])) {
    if (to[key] === undefined) {
      if (from[key] !== undefined) setOwn(patch, key, null);
      continue;
    }
    const sub = mergePatchBetween(from[key], to[key]);
    if (sub !== undefined) setOwn(patch, key, sub);
  }
  return Object.keys(patch).length === 0 ? undefined : patch;
}

/**
 * The merge patch that sets the keys `desired` names to their desired values and leaves every other key
 * of `current` alone (for an object several writers share, such as a status). Under each named key it is
 * {@link mergePatchBetween}: nested keys the desired value lacks become null; a key set to undefined in
 * `desired` is removed. Empty (`{}`) when nothing changes.
 */
export function mergePatchForKeys(current: Record<string, unknown> | undefined, desired: Record<string, unknown>): Record<string, unknown> {
  const patch: Record<string, unknown> = {};
  for (const [key, want] of Object.entries(desired)) {
    const sub = mergePatchBetween(current?.[key], want);
    if (sub !== undefined) setOwn(patch, key, sub);
  }
  return patch;
}
