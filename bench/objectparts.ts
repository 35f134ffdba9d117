/**
 * Where the bytes of a stored object go: the JSON size of each top-level part (managedFields, annotations,
 * labels, the rest of metadata, spec, status). Custom resources are stored in etcd as JSON, so these add up
 * (within a few bytes of braces and keys) to the value the etcd benchmark reads back.
 */

/** JSON bytes of each part of one object (or a sum over objects). */
export interface ObjectParts {
  managedFields: number;
  annotations: number;
  labels: number;
  otherMetadata: number;
  spec: number;
  status: number;
}

/** An all-zero {@link ObjectParts}. */
export function noParts(): ObjectParts {
  return { managedFields: 0, annotations: 0, labels: 0, otherMetadata: 0, spec: 0, status: 0 };
}

const size = (v: unknown) => (v === undefined ? 0 : Buffer.byteLength(JSON.stringify(v)));

/** The JSON size of each part of `obj`. */
export function partsOf(obj: { metadata?: Record<string, unknown>; spec?: unknown; status?: unknown }): ObjectParts {
  const { managedFields, annotations, labels, ...rest } = obj.metadata ?? {};
  return {
    managedFields: size(managedFields),
    annotations: size(annotations),
    labels: size(labels),
    otherMetadata: size(rest),
    spec: size(obj.spec),
    status: size(obj.status),
  };
}

/** `a + b`, part by part. */
export function addParts(a: ObjectParts, b: ObjectParts): ObjectParts {
  const out = noParts();
  for (const k of Object.keys(out) as (keyof ObjectParts)[]) out[k] = a[k] + b[k];
  return out;
}

/** Bytes of one `"key":value,` member of a JSON object. */
const memberSize = (key: string, v: unknown) => Buffer.byteLength(JSON.stringify(key)) + 2 + size(v);

/**
 * A finer breakdown of one object: each managedFields entry by writer (`managedFields: <manager>
 * <operation>[ <subresource>]`), and each member of metadata, spec and status (`spec.oci`,
 * `status.conditions`...), as JSON bytes with its key. What a change removes shows up here by name.
 */
export function fieldsOf(obj: { metadata?: Record<string, unknown>; spec?: unknown; status?: unknown }): Record<string, number> {
  const out: Record<string, number> = {};
  const add = (k: string, n: number) => {
    out[k] = (out[k] ?? 0) + n;
  };
  const { managedFields, ...metadata } = obj.metadata ?? {};
  for (const e of (managedFields ?? []) as { manager?: string; operation?: string; subresource?: string }[]) {
    add(`managedFields: ${e.manager ?? '?'} ${e.operation ?? '?'}${e.subresource ? ` ${e.subresource}` : ''}`, size(e) + 1);
  }
  const members = (prefix: string, o: unknown) => {
    if (o === null || typeof o !== 'object' || Array.isArray(o)) return;
    for (const [k, v] of Object.entries(o)) add(`${prefix}.${k}`, memberSize(k, v));
  };
  members('metadata', metadata);
  members('spec', obj.spec);
  members('status', obj.status);
  return out;
}

/** `a + b`, field by field. */
export function addFields(a: Record<string, number>, b: Record<string, number>): Record<string, number> {
  const out = { ...a };
  for (const [k, n] of Object.entries(b)) out[k] = (out[k] ?? 0) + n;
  return out;
}
