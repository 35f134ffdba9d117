/**
 * The two patch formats an overlay `*_patch.yaml` document can use (Fleet picks the strategy from the
 * content; so does Flotilla):
 *
 * - a **list** is a JSON Patch (RFC 6902): `add`, `remove`, `replace`, `move`, `copy`, `test` with JSON
 *   pointers (RFC 6901, `~0` / `~1` escapes, `-` for the end of a list);
 * - a **mapping** is a JSON Merge Patch (RFC 7386) with one strategic-merge rule for named lists:
 *   - keys of the patch replace those of the target, recursively for mappings; `null` deletes the key;
 *   - a list replaces the target's list, **except** when both lists are non-empty and every element of
 *     both is a mapping with a string `name` (containers, env, volumes, ports with names...): then
 *     elements are merged by `name` (same name: merged recursively with these rules; new name: appended;
 *     an element `{name: x, $patch: delete}` removes `x`), as Kubernetes' strategic merge patch does for
 *     those lists. Other strategic-merge directives (`$setElementOrder`, `$retainKeys`, other merge keys
 *     such as `mountPath` or `containerPort`) are not supported.
 * Both return new values and never modify their inputs.
 */

import { isPlainObject, jsonEqual, setOwn } from '../util/json.js';
import { parsePointer } from '../util/pointer.js';

/** A JSON value as produced by YAML or JSON parsing. */
export type JsonValue = unknown;

/** A patch that cannot be applied; the message says why (callers add the file). */
export class PatchError extends Error {}

function isNamedList(value: unknown): value is Record<string, unknown>[] {
  return Array.isArray(value) && value.length > 0 && value.every((e) => isPlainObject(e) && typeof e.name === 'string');
}

/**
 * Removes `$patch` directives (they never reach the result). A subtree reachable by several paths (a YAML
 * alias) is rebuilt once and stays shared, so that a small aliased patch is not expanded here.
 */
function stripDirectives(value: unknown, seen = new Map<object, unknown>()): unknown {
  if (typeof value !== 'object' || value === null) return value;
  const known = seen.get(value);
  if (known !== undefined) return known;
  const out = Array.isArray(value)
    ? value.map((v) => stripDirectives(v, seen))
    : Object.fromEntries(
        Object.entries(value)
          .filter(([k]) => k !== '$patch')
          .map(([k, v]) => [k, stripDirectives(v, seen)]),
      );
  seen.set(value, out);
  return out;
}

function mergeNamedLists(target: Record<string, unknown>[], patch: Record<string, unknown>[]): unknown[] {
  const result: unknown[] = target.map((e) => structuredClone(e));
  for (const element of patch) {
    const index = result.findIndex((e) => isPlainObject(e) && e.name === element.name);
    if (element.$patch === 'delete') {
      if (index >= 0) result.splice(index, 1);
    } else if (index >= 0) {
      result[index] = mergePatch(result[index], element);
    } else {
      result.push(stripDirectives(element));
    }
  }
  return result;
}

/** Applies a merge patch (RFC 7386, with merging of named lists; see the module comment). */
export function mergePatch(target: JsonValue, patch: JsonValue): JsonValue {
  if (!isPlainObject(patch)) return stripDirectives(structuredClone(patch));
  const result: Record<string, unknown> = isPlainObject(target) ? structuredClone(target) : {};
  for (const [key, value] of Object.entries(patch)) {
    if (key === '$patch') continue;
    if (value === null) {
      delete result[key];
    } else if (isNamedList(result[key]) && isNamedList(value)) {
      setOwn(result, key, mergeNamedLists(result[key] as Record<string, unknown>[], value));
    } else {
      setOwn(result, key, mergePatch(Object.hasOwn(result, key) ? result[key] : undefined, value));
    }
  }
  return result;
}

/**
 * A deep copy of a JSON value as a tree: shares nothing with its source, and a subtree reachable by several
 * paths (a YAML alias, a JSON Patch `copy`) becomes one copy per path. Parsed manifests hold only plain
 * objects, arrays and scalars; a `__proto__` key stays data.
 */
export function copyTree(value: unknown): unknown {
  if (typeof value !== 'object' || value === null) return value;
  if (Array.isArray(value)) return value.map(copyTree);
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value)) {
    const v = copyTree((value as Record<string, unknown>)[key]);
    if (key === '__proto__') setOwn(out, key, v);
    else out[key] = v;
  }
  return out;
}

/** A copy of one container, sharing its children. */
function shallowCopy(value: object): object {
  if (Array.isArray(value)) return value.slice();
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value)) setOwn(out, key, (value as Record<string, unknown>)[key]);
  return out;
}

/**
 * Sees what a JSON Patch changes, before each change is made, for a size budget (lib/bundle/growth.ts); may
 * throw to stop the patch. `entryBytes` is the size of the key (its length + 4) or list slot (1) when an
 * entry appears or disappears, 0 when a value replaces another; `depth` is the number of tokens of the path.
 */
export interface PatchMeter {
  /** `value` is about to be inserted at `depth` (`undefined`: a value moved, only its entry counts). */
  grow(value: unknown, entryBytes: number, depth: number): void;
  /** `value` is about to be removed or replaced (`undefined`: a value moved, only its entry counts). */
  shrink(value: unknown, entryBytes: number): void;
}

/** One RFC 6902 operation, as found in a patch file (validated by {@link jsonPatch}). */
interface Operation {
  op: string;
  path: string;
  from?: string;
  value?: unknown;
}

function tokensOf(pointer: string): string[] {
  const tokens = parsePointer(pointer);
  if (tokens === undefined) throw new PatchError(`JSON pointer "${pointer}" must start with "/"`);
  return tokens;
}

function listIndex(list: unknown[], token: string, forAdd: boolean, pointer: string): number {
  if (forAdd && token === '-') return list.length;
  if (!/^(0|[1-9][0-9]*)$/.test(token)) throw new PatchError(`"${pointer}": "${token}" is not a list index`);
  const index = Number(token);
  if (index > list.length || (!forAdd && index === list.length)) throw new PatchError(`"${pointer}": index ${index} is out of range`);
  return index;
}

/** The child of a container at `token` (throws when there is none). */
function childOf(node: unknown, token: string, pointer: string): unknown {
  if (Array.isArray(node)) return node[listIndex(node, token, false, pointer)];
  if (isPlainObject(node) && Object.hasOwn(node, token)) return node[token];
  throw new PatchError(`"${pointer}" does not exist`);
}

function getAt(doc: unknown, pointer: string): unknown {
  let node = doc;
  for (const token of tokensOf(pointer)) node = childOf(node, token, pointer);
  return node;
}

const entryBytes = (container: unknown, token: string) => (Array.isArray(container) ? 1 : token.length + 4);

/**
 * A document being patched without copying it: every container on the path of a change is copied once
 * (path copying), everything else stays shared with the target, and a `copy` inserts its source itself
 * rather than a deep copy. Containers this draft made (`owned`) may change in place; any other (the
 * target's, a copied source) never changes, so sharing a subtree by several paths is safe and the cost of
 * an operation is its path, not the size of what it copies. After a `copy`, nothing is owned any more (what
 * was just shared must not change in place).
 */
class Draft {
  private owned = new Set<object>();

  constructor(
    public doc: unknown,
    private readonly meter: PatchMeter | undefined,
  ) {}

  /** Forgets which containers are owned: after this every change copies its path again. */
  share(): void {
    this.owned = new Set();
  }

  private own(value: unknown): unknown {
    if (typeof value !== 'object' || value === null || this.owned.has(value)) return value;
    const copy = shallowCopy(value);
    this.owned.add(copy);
    return copy;
  }

  /** Makes the containers from the root to the parent of `tokens` the draft's own, and returns that parent. */
  private writableParent(tokens: readonly string[], pointer: string): Record<string, unknown> | unknown[] {
    this.doc = this.own(this.doc);
    let node = this.doc;
    for (const token of tokens.slice(0, -1)) {
      const child = this.own(childOf(node, token, pointer));
      if (Array.isArray(node)) node[Number(token)] = child;
      else (node as Record<string, unknown>)[token] = child;
      node = child;
    }
    if (!Array.isArray(node) && !isPlainObject(node)) throw new PatchError(`"${pointer}" does not exist`);
    return node;
  }

  /** Inserts (`add`, `copy`, `move`) or replaces (`replace`) the value at `pointer`; `moved`: only its entry counts. */
  put(pointer: string, value: unknown, replace: boolean, moved = false): void {
    const tokens = tokensOf(pointer);
    const measured = moved ? undefined : value;
    if (tokens.length === 0) {
      this.meter?.shrink(this.doc, 0);
      this.meter?.grow(measured, 0, 0);
      this.doc = value;
      return;
    }
    const parent = this.writableParent(tokens, pointer);
    const last = tokens[tokens.length - 1] as string;
    if (Array.isArray(parent)) {
      const index = listIndex(parent, last, !replace, pointer);
      if (replace) this.meter?.shrink(parent[index], 0);
      this.meter?.grow(measured, replace ? 0 : 1, tokens.length);
      parent.splice(index, replace ? 1 : 0, value);
      return;
    }
    const exists = Object.hasOwn(parent, last);
    if (replace && !exists) throw new PatchError(`"${pointer}" does not exist`);
    if (exists) this.meter?.shrink(parent[last], 0);
    this.meter?.grow(measured, exists ? 0 : entryBytes(parent, last), tokens.length);
    setOwn(parent, last, value);
  }

  /** Removes the value at `pointer` and returns it; `moving`: it is put back elsewhere (only its entry counts). */
  remove(pointer: string, moving: boolean): unknown {
    const tokens = tokensOf(pointer);
    if (tokens.length === 0) throw new PatchError('cannot remove the whole document');
    const parent = this.writableParent(tokens, pointer);
    const last = tokens[tokens.length - 1] as string;
    const value = childOf(parent, last, pointer);
    this.meter?.shrink(moving ? undefined : value, entryBytes(parent, last));
    if (Array.isArray(parent)) parent.splice(Number(last), 1);
    else delete parent[last];
    return value;
  }
}

function toOperation(raw: unknown, index: number): Operation {
  if (!isPlainObject(raw) || typeof raw.op !== 'string' || typeof raw.path !== 'string') {
    throw new PatchError(`operation ${index + 1} needs "op" and "path"`);
  }
  if (['move', 'copy'].includes(raw.op) && typeof raw.from !== 'string') {
    throw new PatchError(`operation ${index + 1} (${raw.op}) needs "from"`);
  }
  if (['add', 'replace', 'test'].includes(raw.op) && !Object.hasOwn(raw, 'value')) {
    throw new PatchError(`operation ${index + 1} (${raw.op}) needs "value"`);
  }
  return raw as unknown as Operation;
}

/**
 * Applies a JSON Patch (RFC 6902) to `target`, which it never changes; all operations or none. The result
 * shares with `target` what the patch did not change, and a `copy` shares its source (see {@link Draft}):
 * callers that change the result in place first make it a tree ({@link copyTree}). `meter`, when given,
 * sees each change before it is made and may throw to stop the patch (a size budget: lib/bundle/growth.ts).
 */
export function jsonPatch(target: JsonValue, operations: readonly unknown[], meter?: PatchMeter): JsonValue {
  const draft = new Draft(target, meter);
  operations.forEach((raw, index) => {
    const op = toOperation(raw, index);
    switch (op.op) {
      case 'add':
      case 'replace':
        draft.put(op.path, structuredClone(op.value), op.op === 'replace');
        break;
      case 'remove':
        draft.remove(op.path, false);
        break;
      case 'move': {
        if (op.path.startsWith(`${op.from}/`)) throw new PatchError(`cannot move "${op.from}" into itself`);
        draft.put(op.path, draft.remove(op.from as string, true), false, true);
        break;
      }
      case 'copy': {
        const source = getAt(draft.doc, op.from as string);
        draft.share();
        draft.put(op.path, source, false);
        break;
      }
      case 'test':
        if (!jsonEqual(getAt(draft.doc, op.path), op.value)) throw new PatchError(`test failed at "${op.path}"`);
        break;
      default:
        throw new PatchError(`operation ${index + 1}: unknown op "${op.op}"`);
    }
  });
  return draft.doc;
}
