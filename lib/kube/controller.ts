import type { Logger } from 'pino';
import { dispositionOf, messageOf, retryAfterOf } from '../errors.js';
import { WorkQueue, type BackoffPolicy } from './queue.js';
import { keyOf, type Informer } from './informer.js';
import type { KubeObject } from './client.js';

/**
 * The reconcile loop: informers feed keys into a de-duplicating work queue; workers call the
 * reconciler with a key, and the result (or the error's disposition) decides when the key comes back.
 * Requeue timing is decided here and nowhere else:
 * - success: again after `requeueAfterMs` when set (polling, heartbeats), else on the next change;
 * - stalling error: on the next change of the object, or after `requeueAfterMs` when the reconciler polls anyway;
 * - waiting error: after the error's `retryAfterMs` (5 s without one);
 * - transient error: exponential backoff per key, at most the error's `retryAfterMs` and `maxBackoffMs`;
 * - conflict (HTTP 409): at once; a second conflict in a row backs off like a transient error.
 */

/** What a reconcile asks for next. */
export interface ReconcileResult {
  /** Reconcile this key again after this long even if nothing changes (polling, heartbeats). */
  requeueAfterMs?: number;
  /**
   * The failure the reconcile ended with, already shown on status by the reconciler; its disposition
   * decides the requeue (a thrown error is handled the same way).
   */
  error?: unknown;
  /** The longest a transient failure's backoff may wait (e.g. a GitRepo's polling interval). */
  maxBackoffMs?: number;
}

/** A reconciler: converge the object named by `key` (re-reading current state) and report. */
// biome-ignore lint/suspicious/noConfusingVoidType: a reconcile with nothing to ask for simply returns
export type Reconcile = (key: string) => Promise<ReconcileResult | void>;

/** Observes reconciles (metrics). */
export interface ReconcileObserver {
  observe(controller: string, outcome: 'success' | 'error', seconds: number): void;
}

/** Options for {@link Controller}. */
export interface ControllerOptions {
  log: Logger;
  workers?: number;
  backoff?: BackoffPolicy;
  observer?: ReconcileObserver;
  /**
   * Keys this controller reconciles (e.g. the objects of its shard); others are dropped when they come
   * off the queue, however they were enqueued (a watch, a requeue, a label change since). Default: all.
   */
  accepts?: (key: string) => boolean;
}

/** One controller: a queue, its workers and the informers that feed it. */
export class Controller {
  readonly queue: WorkQueue;
  private workers: Promise<void>[] = [];
  /** Keys whose last reconcile ended in a conflict (a second one in a row backs off). */
  private readonly conflicts = new Set<string>();

  constructor(
    readonly name: string,
    private readonly reconcile: Reconcile,
    private readonly options: ControllerOptions,
  ) {
    this.queue = new WorkQueue(options.backoff);
  }

  /**
   * Enqueues keys for every change `informer` sees: by default the object's own key; `map` lets a
   * controller react to related kinds (e.g. a BundleDeployment change enqueues its Bundle). With
   * `coalesceMs`, a key is enqueued that long after the first change and every change until then shares
   * that one reconcile (a roll-up over many objects that change together).
   */
  watch<T extends KubeObject>(
    informer: Informer<T>,
    map: (obj: T, type: 'ADDED' | 'MODIFIED' | 'DELETED') => string[] = (obj) => [keyOf(obj)],
    options: { coalesceMs?: number } = {},
  ): this {
    const delay = options.coalesceMs ?? 0;
    informer.on((type, obj) => {
      for (const key of map(obj, type)) {
        if (delay > 0) this.queue.addAfter(key, delay);
        else this.queue.add(key);
      }
    });
    return this;
  }

  /** Starts the workers. */
  start(): void {
    const n = this.options.workers ?? 2;
    for (let i = 0; i < n; i++) this.workers.push(this.work());
  }

  /** Stops handing out keys and waits for running reconciles to finish. */
  async stop(): Promise<void> {
    this.queue.shutDown();
    await Promise.all(this.workers);
  }

  private async work(): Promise<void> {
    for (;;) {
      const key = await this.queue.get();
      if (key === undefined) return;
      if (this.options.accepts && !this.options.accepts(key)) {
        this.queue.forget(key);
        this.queue.done(key);
        continue;
      }
      const started = process.hrtime.bigint();
      try {
        const result = await this.reconcile(key);
        if (result?.error !== undefined) {
          this.observe('error', started);
          this.handleError(key, result.error, result);
        } else {
          this.queue.forget(key);
          this.conflicts.delete(key);
          if (result?.requeueAfterMs !== undefined) this.queue.addAfter(key, result.requeueAfterMs);
          this.observe('success', started);
        }
      } catch (err) {
        this.observe('error', started);
        this.handleError(key, err, {});
      } finally {
        this.queue.done(key);
      }
    }
  }

  private handleError(key: string, err: unknown, result: ReconcileResult): void {
    const log = this.options.log.child({ controller: this.name, key });
    const disposition = dispositionOf(err);
    if (disposition !== 'conflict') this.conflicts.delete(key);
    switch (disposition) {
      case 'stalling':
        // The user must change the object; its next change enqueues it again (or the reconciler's own poll).
        log.error({ err: messageOf(err) }, 'reconcile stalled');
        this.queue.forget(key);
        if (result.requeueAfterMs !== undefined) this.queue.addAfter(key, result.requeueAfterMs);
        break;
      case 'waiting': {
        const after = retryAfterOf(err) ?? 5000;
        log.info({ err: messageOf(err), retryAfterMs: after }, 'reconcile waiting');
        this.queue.addAfter(key, after);
        break;
      }
      case 'conflict':
        if (!this.conflicts.has(key)) {
          // Another writer won a race: re-read at once.
          this.conflicts.add(key);
          log.debug({ err: messageOf(err) }, 'reconcile lost a write race; again at once');
          this.queue.add(key);
          break;
        }
        this.backOff(log, key, err, result);
        break;
      default:
        this.backOff(log, key, err, result);
    }
  }

  /** Requeues with the key's exponential backoff, bounded by the error's retryAfterMs and the result's maxBackoffMs. */
  private backOff(log: Logger, key: string, err: unknown, result: ReconcileResult): void {
    const cap = Math.min(retryAfterOf(err) ?? Number.POSITIVE_INFINITY, result.maxBackoffMs ?? Number.POSITIVE_INFINITY);
    const after = this.queue.addRateLimited(key, cap);
    log.warn({ err: messageOf(err), retryAfterMs: after }, 'reconcile failed; retrying with backoff');
  }

  private observe(outcome: 'success' | 'error', started: bigint): void {
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    this.options.observer?.observe(this.name, outcome, seconds);
  }
}
