import { Label, type ComparePatch, type ModifiedStatus } from '../lib/api/index.js';
import type { KubeObject } from '../lib/kube/client.js';
import { apiGroup } from '../lib/bundle/index.js';
import type { ObjectId } from './objects.js';
import { isPlainObject, mergePatchBetween } from '../lib/util/json.js';
import { parsePointer } from '../lib/util/pointer.js';

/**
 * Drift: does a live object differ from the desired one in the fields the agent manages?
 *
 * The expected state is what the API server returns for a server-side apply dry run of the desired object
 * (with force, as the agent's field manager). That answer has the server's defaults and normalisation
 * (quantities, int-or-string, stringData -> data) and keeps every field other managers own, so comparing
 * it with the live object finds exactly the managed fields someone changed or removed, and nothing else:
 * a field added by another controller is not drift, a label we set and someone deleted is.
 *
 * Compared: everything but `status` and server-owned metadata; of metadata only labels and annotations.
 * `diff.comparePatches` entries that match an object name paths whose differences are ignored: every
 * operation's `path` and every `jsonPointers` entry is removed from both sides before comparing.
 *
 * An object whose live bundle-deployment label names another bundle deployment was written by another
 * bundle since (two bundles deploy the same object): it is reported with that owner, so the status says
 * which bundle to remove it from, and drift correction leaves it alone rather than take it back on every
 * pass while the other bundle does the same.
 */

/** What the agent found for one desired object. */
export type DriftState = 'missing' | 'modified' | 'unchanged';

/** The comparison result for one object. */
export interface Drift {
  id: ObjectId;
  state: DriftState;
  /** For `modified`: a JSON merge patch from the expected to the live state. */
  patch?: unknown;
  /** For `modified`: the other bundle deployment whose label the live object carries. */
  ownedBy?: string;
}

/** The other bundle deployment a live object was last written by, when it is not the expected one. */
export function otherOwner(expected: KubeObject | undefined, live: KubeObject | undefined): string | undefined {
  const mine = expected?.metadata.labels?.[Label.BundleID];
  const theirs = live?.metadata.labels?.[Label.BundleID];
  return mine && theirs && theirs !== mine ? theirs : undefined;
}

/** The parts of an object that are compared. */
export function comparable(obj: KubeObject): Record<string, unknown> {
  const { metadata, status: _status, ...rest } = obj;
  const meta: Record<string, unknown> = {};
  if (metadata.labels && Object.keys(metadata.labels).length > 0) meta.labels = metadata.labels;
  if (metadata.annotations && Object.keys(metadata.annotations).length > 0) meta.annotations = metadata.annotations;
  return { ...rest, metadata: meta };
}

/** Removes the value at `pointer` from `root` in place; a path that does not exist is left alone. */
export function removeAt(root: unknown, pointer: string): void {
  const tokens = parsePointer(pointer);
  if (!tokens || tokens.length === 0) return;
  let node: unknown = root;
  for (const token of tokens.slice(0, -1)) {
    if (Array.isArray(node)) node = node[Number(token)];
    else if (isPlainObject(node)) node = node[token];
    else return;
  }
  const last = tokens[tokens.length - 1] as string;
  if (Array.isArray(node) && /^\d+$/.test(last) && Number(last) < node.length) node.splice(Number(last), 1);
  else if (isPlainObject(node)) delete node[last];
}

/** True when a comparePatches entry names this object (every field it sets must match). */
export function comparePatchMatches(patch: ComparePatch, id: ObjectId): boolean {
  if (patch.kind !== undefined && patch.kind !== id.kind) return false;
  if (patch.name !== undefined && patch.name !== id.name) return false;
  if (patch.namespace !== undefined && patch.namespace !== (id.namespace ?? '')) return false;
  if (patch.apiVersion !== undefined && patch.apiVersion !== id.apiVersion && apiGroup(patch.apiVersion) !== apiGroup(id.apiVersion)) {
    return false;
  }
  return true;
}

/** The JSON pointers whose differences are ignored for this object. */
export function ignoredPointers(patches: readonly ComparePatch[] | undefined, id: ObjectId): string[] {
  return (patches ?? []).filter((p) => comparePatchMatches(p, id)).flatMap((p) => [...(p.operations ?? []).map((op) => op.path), ...(p.jsonPointers ?? [])]);
}

/**
 * Compares the expected state of an object (the dry-run answer; undefined when it could not be computed
 * because the object's namespace or kind does not exist yet) with the live object (undefined if absent).
 */
export function compareObject(id: ObjectId, expected: KubeObject | undefined, live: KubeObject | undefined, comparePatches?: readonly ComparePatch[]): Drift {
  if (!live) return { id, state: 'missing' };
  if (!expected) return { id, state: 'modified', patch: null };
  const want = structuredClone(comparable(expected));
  const have = structuredClone(comparable(live));
  for (const pointer of ignoredPointers(comparePatches, id)) {
    removeAt(want, pointer);
    removeAt(have, pointer);
  }
  const patch = mergePatchBetween(want, have);
  if (patch === undefined) return { id, state: 'unchanged' };
  const ownedBy = otherOwner(expected, live);
  return ownedBy ? { id, state: 'modified', patch, ownedBy } : { id, state: 'modified', patch };
}

/** The most characters of a patch kept in status (the API allows 4096). */
export const MAX_PATCH_CHARS = 1024;

/** The status entry for a drifted object: missing, or modified with its (truncated) patch. */
export function modifiedStatusOf(drift: Drift): ModifiedStatus {
  const entry: ModifiedStatus = { apiVersion: drift.id.apiVersion, kind: drift.id.kind, name: drift.id.name };
  if (drift.id.namespace) entry.namespace = drift.id.namespace;
  if (drift.state === 'missing') entry.missing = true;
  if (drift.ownedBy) entry.ownedBy = drift.ownedBy;
  else if (drift.patch !== undefined && drift.patch !== null) {
    const text = JSON.stringify(drift.patch);
    entry.patch = text.length > MAX_PATCH_CHARS ? `${text.slice(0, MAX_PATCH_CHARS - 3)}...` : text;
  }
  return entry;
}
