import { Annotation, type Bundle } from '../lib/api/index.js';
import type { KubeObject } from '../lib/kube/client.js';
import { OwnWrites } from '../lib/kube/ownwrites.js';
import { canonicalJSON } from '../lib/util/json.js';

/**
 * How the GitRepo reconciler writes Bundles at a commit: only those the commit changed.
 *
 * A commit of a repository with many bundles usually changes a few. Applying every Bundle anyway (its only
 * change the commit annotation) cost an etcd write per bundle and commit, and started a Bundle pass and a
 * GitRepo roll-up for each. {@link sameBundle} tells the Bundles that need no write; the commit annotation
 * then names the commit whose contents a Bundle carries (the last one that changed it).
 *
 * The GitRepo's roll-up must not count a Bundle the cache still holds from before a write: it would see the
 * previous contents, Ready, as the result of the new commit. {@link WrittenBundles} is the cache corrected for
 * the reconciler's own writes, as {@link OwnWrites} is for a reconciler's own object; a controller that starts
 * lists every Bundle afresh, so the correction is needed only in the process that wrote.
 */

type BundleObject = Bundle & KubeObject;

/** The keys below `path` of manager `manager`'s Apply entry in `managedFields`; undefined when it has none. */
function appliedKeys(obj: KubeObject, manager: string, path: readonly string[]): Set<string> | undefined {
  const entry = (obj.metadata.managedFields ?? []).find((e): e is { fieldsV1?: Record<string, unknown> } => {
    const m = e as { manager?: string; operation?: string; subresource?: string };
    return m.manager === manager && m.operation === 'Apply' && !m.subresource;
  });
  if (!entry) return undefined;
  let node: unknown = entry.fieldsV1 ?? {};
  for (const step of path) node = (node as Record<string, unknown> | undefined)?.[`f:${step}`];
  return new Set(Object.keys((node as Record<string, unknown> | undefined) ?? {}).flatMap((k) => (k.startsWith('f:') ? [k.slice(2)] : [])));
}

/**
 * True when `desired` would set nothing the live object lacks: every key it sets is equal, and every key
 * `manager` set before is still set (a key left out of an apply is removed). `ignore` are keys not compared.
 */
function sameKeys(
  desired: Record<string, unknown> | undefined,
  live: Record<string, unknown> | undefined,
  owned: ReadonlySet<string>,
  ignore: readonly string[] = [],
): boolean {
  const want = desired ?? {};
  const have = live ?? {};
  for (const key of owned) if (!ignore.includes(key) && !(key in want)) return false;
  return Object.entries(want).every(([key, value]) => ignore.includes(key) || canonicalJSON(value) === canonicalJSON(have[key]));
}

/**
 * True when applying `desired` with field manager `manager` would change nothing of `live` but the commit
 * annotation: same spec, labels, other annotations, owner references, and its finalizers there. False when
 * in doubt (no Apply entry of that manager in `live`'s managedFields, or `live` being deleted).
 */
export function sameBundle(live: BundleObject | undefined, desired: BundleObject, manager: string): boolean {
  if (!live || live.metadata.deletionTimestamp) return false;
  const spec = appliedKeys(live, manager, ['spec']);
  const labels = appliedKeys(live, manager, ['metadata', 'labels']);
  const annotations = appliedKeys(live, manager, ['metadata', 'annotations']);
  if (!spec || !labels || !annotations) return false;
  const want = desired.metadata;
  return (
    sameKeys(desired.spec as unknown as Record<string, unknown>, live.spec as unknown as Record<string, unknown>, spec) &&
    sameKeys(want.labels, live.metadata.labels, labels) &&
    sameKeys(want.annotations, live.metadata.annotations, annotations, [Annotation.Commit]) &&
    (want.finalizers ?? []).every((f) => live.metadata.finalizers?.includes(f)) &&
    canonicalJSON(want.ownerReferences ?? []) === canonicalJSON(live.metadata.ownerReferences ?? [])
  );
}

/** How long a created Bundle is read from its write while the cache does not show it yet. */
const CREATED_TTL_MS = 60_000;

/** The Bundles of each GitRepo as the cache has them, corrected for this reconciler's writes it has not delivered yet. */
export class WrittenBundles {
  private readonly own: OwnWrites<BundleObject>;
  /** Per GitRepo (`namespace/name`), the keys of Bundles written, until the cache shows the write. */
  private readonly pending = new Map<string, Set<string>>();

  constructor(cache: { get(key: string): BundleObject | undefined }) {
    this.own = new OwnWrites(cache, { copy: false, createdTtlMs: CREATED_TTL_MS });
  }

  /** The Bundle `namespace/name` as the reconciler should see it. */
  get(key: string): BundleObject | undefined {
    return this.own.get(key);
  }

  /** Records that the reconciler of GitRepo `repo` wrote `written` over `before` (undefined: created it). */
  record(repo: string, before: BundleObject | undefined, written: BundleObject): void {
    const key = `${written.metadata.namespace ?? ''}/${written.metadata.name}`;
    this.own.record(key, before, written);
    if (!this.own.awaitingCache(key)) return;
    const keys = this.pending.get(repo) ?? new Set<string>();
    keys.add(key);
    this.pending.set(repo, keys);
  }

  /** GitRepo `repo`'s Bundles: `cached` (from the informer) with this reconciler's undelivered writes instead, and its undelivered creations. */
  of(repo: string, cached: readonly BundleObject[]): BundleObject[] {
    const keys = this.pending.get(repo);
    if (!keys) return [...cached];
    const seen = new Set<string>();
    const out = cached.map((b) => {
      const key = `${b.metadata.namespace ?? ''}/${b.metadata.name}`;
      seen.add(key);
      return this.own.get(key) ?? b;
    });
    for (const key of keys) {
      if (!this.own.awaitingCache(key)) {
        keys.delete(key);
        continue;
      }
      const created = seen.has(key) ? undefined : this.own.get(key);
      if (created) out.push(created);
    }
    if (keys.size === 0) this.pending.delete(repo);
    return out;
  }
}
