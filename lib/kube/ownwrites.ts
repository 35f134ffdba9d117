import type { KubeObject } from './client.js';

/** Options of {@link OwnWrites}. */
export interface OwnWritesOptions {
  /** Whether `get` returns copies (default true). A reconciler that never changes what it reads can save the copying. */
  copy?: boolean;
  /** How long an object the reconciler created is read from its own write while the cache does not have it yet (default 0: not kept). */
  createdTtlMs?: number;
  /** The clock (tests). */
  now?: () => number;
}

/**
 * A reconciler's view of its own object: the informer's cache, corrected for the reconciler's own writes the
 * cache has not seen yet ("read your writes", as controller-runtime's clients are used with their caches).
 *
 * Reading the cache instead of GETting the object at every reconcile saves one request per reconcile (a
 * Bundle was read 4.7 times per rollout). The cache lags behind a write by one watch event, so a reconcile
 * that starts in that window would see the status before its own last write: it would write that status
 * again and emit the same transition Events twice. Each write's response is kept with the resourceVersions
 * it replaced; while the cache still holds one of those versions, the response is what is read. Once the
 * cache holds any other version (ours or a newer one) the cache wins and the record is dropped: the watch
 * event of every write still triggers a reconcile, so another writer's change is never missed.
 *
 * Which cached versions are older than the write: resourceVersions the API server gives as decimal integers
 * are ordered (KEP-5504, "Comparable Resource Version", stable in Kubernetes 1.35, holds for every etcd-backed
 * server), so any cached version below the write's is stale, including a version another writer, or this
 * process outside the reconciler skeleton, wrote before the write landed. Versions in any other form are
 * compared only for equality with the versions the write replaced.
 *
 * Objects the reconciler creates (written from nothing the cache held) are kept only when `createdTtlMs` is
 * set: until the cache shows them, or for that long. A creation whose watch event never comes, or whose object
 * is deleted again before any read, is forgotten after that time, so the worst it costs is one write made again
 * (or a deleted object written again that much later).
 */
export class OwnWrites<T extends KubeObject> {
  private readonly wrote = new Map<string, { replaced: Set<string>; object: T; createdAt?: number }>();
  private readonly copy: boolean;
  private readonly createdTtlMs: number;
  private readonly now: () => number;

  constructor(
    private readonly cache: { get(key: string): T | undefined },
    options: OwnWritesOptions = {},
  ) {
    this.copy = options.copy ?? true;
    this.createdTtlMs = options.createdTtlMs ?? 0;
    this.now = options.now ?? Date.now;
  }

  /** The object named by `key` as the reconciler should see it: a copy (runs may change their object) unless `copy` is off. */
  get(key: string): T | undefined {
    const object = this.pick(key).object;
    return object ? this.out(object) : undefined;
  }

  /** Whether what {@link get} returns for `key` is the reconciler's own write, which the cache has not delivered yet (its watch event is still to come). */
  awaitingCache(key: string): boolean {
    return this.pick(key).own;
  }

  private pick(key: string): { object: T | undefined; own: boolean } {
    const cached = this.cache.get(key);
    const record = this.wrote.get(key);
    if (record) {
      if (!cached) {
        if (record.createdAt !== undefined && this.now() - record.createdAt < this.createdTtlMs) return { object: record.object, own: true };
      } else if (record.object.metadata.uid === cached.metadata.uid) {
        const cachedVersion = cached.metadata.resourceVersion ?? '';
        const order = compareResourceVersions(cachedVersion, record.object.metadata.resourceVersion ?? '');
        if (order === undefined ? record.replaced.has(cachedVersion) : order < 0) return { object: record.object, own: true };
      }
      this.wrote.delete(key);
    }
    return { object: cached, own: false };
  }

  private out(object: T): T {
    return this.copy ? structuredClone(object) : object;
  }

  /**
   * Records that a write to the object named by `key`, made from the object at `from`, returned `written`.
   * `from` undefined: the write created the object (kept only with `createdTtlMs`). Responses without a
   * resourceVersion (a fake client's) are not recorded.
   */
  record(key: string, from: KubeObject | undefined, written: KubeObject | undefined): void {
    const writtenVersion = written?.metadata.resourceVersion;
    if (!written || !writtenVersion) return;
    if (!from) {
      if (this.createdTtlMs > 0) this.wrote.set(key, { replaced: new Set(), object: written as T, createdAt: this.now() });
      return;
    }
    const fromVersion = from.metadata.resourceVersion;
    if (!fromVersion || fromVersion === writtenVersion) return;
    const previous = this.wrote.get(key);
    // Chained writes (the finalizer, then the status; or a write made from an older copy after another one):
    // the cache may still hold any of the versions before the last one.
    // A write after a creation the cache has not shown yet keeps the creation's time.
    const replaced = new Set<string>([fromVersion]);
    let createdAt: number | undefined;
    if (previous && previous.object.metadata.uid === written.metadata.uid) {
      for (const v of previous.replaced) replaced.add(v);
      if (previous.object.metadata.resourceVersion) replaced.add(previous.object.metadata.resourceVersion);
      createdAt = previous.createdAt;
    }
    this.wrote.set(key, { replaced, object: written as T, ...(createdAt !== undefined ? { createdAt } : {}) });
  }

  /** How many writes are waiting for the cache to catch up (for tests and metrics). */
  get pending(): number {
    return this.wrote.size;
  }
}

/**
 * Orders two resourceVersions when both are decimal integers without leading zeros (KEP-5504): negative when
 * `a` is older, 0 when equal, positive when newer; undefined when either has another form.
 */
export function compareResourceVersions(a: string, b: string): number | undefined {
  const comparable = /^[1-9][0-9]*$/;
  if (!comparable.test(a) || !comparable.test(b)) return undefined;
  if (a.length !== b.length) return a.length - b.length;
  return a < b ? -1 : a > b ? 1 : 0;
}
