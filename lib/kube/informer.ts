import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { KubeApiError, type KubeClient, type KubeObject, type ObjectRef } from './client.js';

/**
 * An informer: lists a kind, then watches it from the list's resourceVersion, keeping an in-memory
 * cache and calling handlers on every change. On a broken watch it resumes from the last seen
 * resourceVersion (bookmarks keep it fresh); on 410 Gone it lists again. It never gives up: an API
 * server that is down is retried with backoff until it returns.
 */

/** Called with the changed object (and, for deletes, its last known state). */
export type InformerHandler<T extends KubeObject> = (type: 'ADDED' | 'MODIFIED' | 'DELETED', obj: T) => void;

/** The values an object is found under in one index of an informer (client-go's IndexFunc); none leaves it out. */
export type IndexFunc<T> = (obj: T) => readonly string[];

/** Options for {@link Informer}. */
export interface InformerOptions {
  labelSelector?: string;
  log?: Logger;
  /** Backoff between failed attempts; default 1 s doubling to 30 s. */
  minBackoffMs?: number;
  maxBackoffMs?: number;
}

/** Key of an object in caches and queues. */
export function keyOf(obj: { metadata: { namespace?: string; name: string } }): string {
  return obj.metadata.namespace ? `${obj.metadata.namespace}/${obj.metadata.name}` : obj.metadata.name;
}

/** Splits a key into namespace and name. */
export function splitKey(key: string): { namespace?: string; name: string } {
  const i = key.indexOf('/');
  return i < 0 ? { name: key } : { namespace: key.slice(0, i), name: key.slice(i + 1) };
}

/** A list-watch cache of one kind (in one namespace, or all). */
export class Informer<T extends KubeObject> {
  private readonly cache = new Map<string, T>();
  /** Secondary indexes: per index name, its function and the cached objects by value, then key. */
  private readonly indexes = new Map<string, { fn: IndexFunc<T>; buckets: Map<string, Map<string, T>> }>();
  private readonly handlers: InformerHandler<T>[] = [];
  private readonly abort = new AbortController();
  private synced = false;
  private syncWaiters: (() => void)[] = [];
  private running: Promise<void> | undefined;

  constructor(
    private readonly client: KubeClient,
    private readonly ref: ObjectRef,
    private readonly options: InformerOptions = {},
  ) {}

  /** Registers a change handler (call before start). */
  on(handler: InformerHandler<T>): this {
    this.handlers.push(handler);
    return this;
  }

  /** The cached object with `key`, if any. */
  get(key: string): T | undefined {
    return this.cache.get(key);
  }

  /** Every cached object. */
  list(): T[] {
    return [...this.cache.values()];
  }

  /**
   * Adds an index: {@link byIndex} then answers "the objects whose `fn` gives this value" without a scan of
   * the whole cache (a reconciler that looked for its Bundle's BundleDeployments among all of them made
   * each pass cost as much as the fleet is large). Objects already cached are indexed at once.
   */
  addIndex(name: string, fn: IndexFunc<T>): this {
    if (this.indexes.has(name)) throw new Error(`informer of ${this.ref.kind}: index "${name}" exists already`);
    const index = { fn, buckets: new Map<string, Map<string, T>>() };
    this.indexes.set(name, index);
    for (const [key, obj] of this.cache) addToIndex(index, key, obj);
    return this;
  }

  /** The cached objects that index `name` files under `value` (an error for an index never added). */
  byIndex(name: string, value: string): T[] {
    const index = this.indexes.get(name);
    if (!index) throw new Error(`informer of ${this.ref.kind}: no index "${name}"`);
    const bucket = index.buckets.get(value);
    return bucket ? [...bucket.values()] : [];
  }

  private put(key: string, obj: T): T | undefined {
    const old = this.cache.get(key);
    if (old) for (const index of this.indexes.values()) removeFromIndex(index, key, old);
    this.cache.set(key, obj);
    for (const index of this.indexes.values()) addToIndex(index, key, obj);
    return old;
  }

  private remove(key: string): void {
    const old = this.cache.get(key);
    if (!old) return;
    for (const index of this.indexes.values()) removeFromIndex(index, key, old);
    this.cache.delete(key);
  }

  /** True once the first list has been loaded. */
  hasSynced(): boolean {
    return this.synced;
  }

  /** Resolves once the first list has been loaded. */
  async waitForSync(): Promise<void> {
    if (this.synced) return;
    await new Promise<void>((resolve) => this.syncWaiters.push(resolve));
  }

  /** Starts listing and watching in the background. */
  start(): void {
    this.running ??= this.loop();
  }

  /** Stops the watch. */
  async stop(): Promise<void> {
    this.abort.abort();
    await this.running?.catch(() => undefined);
  }

  private emit(type: 'ADDED' | 'MODIFIED' | 'DELETED', obj: T): void {
    for (const h of this.handlers) h(type, obj);
  }

  private async relist(): Promise<string> {
    const { items, resourceVersion } = await this.client.list<T>(this.ref, this.options.labelSelector);
    const seen = new Set<string>();
    for (const item of items) {
      const key = keyOf(item);
      seen.add(key);
      const old = this.put(key, item);
      if (!old) this.emit('ADDED', item);
      else if (old.metadata.resourceVersion !== item.metadata.resourceVersion) this.emit('MODIFIED', item);
    }
    for (const [key, old] of this.cache) {
      if (!seen.has(key)) {
        this.remove(key);
        this.emit('DELETED', old);
      }
    }
    if (!this.synced) {
      this.synced = true;
      for (const w of this.syncWaiters.splice(0)) w();
    }
    return resourceVersion;
  }

  private async loop(): Promise<void> {
    const min = this.options.minBackoffMs ?? 1000;
    const max = this.options.maxBackoffMs ?? 30_000;
    let backoff = min;
    let rv: string | undefined;
    while (!this.abort.signal.aborted) {
      try {
        rv ??= await this.relist();
        await this.client.watch<T>(
          this.ref,
          rv,
          (type, obj) => {
            rv = obj.metadata.resourceVersion ?? rv;
            if (type === 'BOOKMARK') return;
            const key = keyOf(obj);
            if (type === 'DELETED') {
              this.remove(key);
              this.emit('DELETED', obj);
              return;
            }
            const old = this.put(key, obj);
            this.emit(old ? 'MODIFIED' : 'ADDED', obj);
          },
          this.abort.signal,
          this.options.labelSelector,
        );
        backoff = min; // the server closed a healthy watch (timeoutSeconds); resume at once
      } catch (err) {
        if (this.abort.signal.aborted) return;
        if (err instanceof KubeApiError && err.statusCode === 410) {
          rv = undefined;
          continue;
        }
        this.options.log?.warn({ kind: this.ref.kind, err: (err as Error).message }, 'watch failed; retrying');
        if (err instanceof KubeApiError && err.statusCode >= 400 && err.statusCode < 500) rv = undefined;
        await sleep(backoff, undefined, { signal: this.abort.signal }).catch(() => undefined);
        backoff = Math.min(max, backoff * 2);
      }
    }
  }
}

function addToIndex<T>(index: { fn: IndexFunc<T>; buckets: Map<string, Map<string, T>> }, key: string, obj: T): void {
  for (const value of index.fn(obj)) {
    const bucket = index.buckets.get(value) ?? new Map<string, T>();
    if (bucket.size === 0) index.buckets.set(value, bucket);
    bucket.set(key, obj);
  }
}

function removeFromIndex<T>(index: { fn: IndexFunc<T>; buckets: Map<string, Map<string, T>> }, key: string, obj: T): void {
  for (const value of index.fn(obj)) {
    const bucket = index.buckets.get(value);
    bucket?.delete(key);
    if (bucket?.size === 0) index.buckets.delete(value);
  }
}
