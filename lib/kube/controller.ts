import type { Logger } from 'pino';
import { dispositionOf, messageOf } from '../errors.js';
import { WorkQueue, type BackoffPolicy } from './queue.js';
import { keyOf, type Informer } from './informer.js';
import type { KubeObject } from './client.js';

/**
 * The reconcile loop: informers feed keys into a de-duplicating work queue; workers call the
 * reconciler with a key, and the result (or the error's disposition) decides when the key comes back.
 * Requeue timing is decided here and nowhere else.
 */

/** What a reconcile asks for next. */
export interface ReconcileResult {
  /** Reconcile this key again after this long even if nothing changes (polling, heartbeats). */
  requeueAfterMs?: number;
}

/** A reconciler: converge the object named by `key` (re-reading current state) and report. */
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
}

/** One controller: a queue, its workers and the informers that feed it. */
export class Controller {
  readonly queue: WorkQueue;
  private workers: Promise<void>[] = [];

  constructor(readonly name: string, private readonly reconcile: Reconcile, private readonly options: ControllerOptions) {
    this.queue = new WorkQueue(options.backoff);
  }

  /**
   * Enqueues keys for every change `informer` sees: by default the object's own key; `map` lets a
   * controller react to related kinds (e.g. a BundleDeployment change enqueues its Bundle).
   */
  watch<T extends KubeObject>(informer: Informer<T>, map: (obj: T, type: 'ADDED' | 'MODIFIED' | 'DELETED') => string[] = (obj) => [keyOf(obj)]): this {
    informer.on((type, obj) => { for (const key of map(obj, type)) this.queue.add(key); });
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
      const started = process.hrtime.bigint();
      try {
        const result = await this.reconcile(key);
        this.queue.forget(key);
        if (result?.requeueAfterMs !== undefined) this.queue.addAfter(key, result.requeueAfterMs);
        this.observe('success', started);
      } catch (err) {
        this.observe('error', started);
        this.handleError(key, err);
      } finally {
        this.queue.done(key);
      }
    }
  }

  private handleError(key: string, err: unknown): void {
    const log = this.options.log.child({ controller: this.name, key });
    switch (dispositionOf(err)) {
      case 'stalling':
        // The user must change the object; its next change enqueues it again.
        log.error({ err: messageOf(err) }, 'reconcile stalled');
        break;
      case 'waiting': {
        const after = (err as { retryAfterMs?: number }).retryAfterMs ?? 5000;
        log.info({ err: messageOf(err), retryAfterMs: after }, 'reconcile waiting');
        this.queue.addAfter(key, after);
        break;
      }
      default: {
        // A transient error may bound its backoff with retryAfterMs (see FlotillaErrorOptions).
        const cap = (err as { retryAfterMs?: number }).retryAfterMs;
        const after = this.queue.addRateLimited(key, cap);
        log.warn({ err: messageOf(err), retryAfterMs: after }, 'reconcile failed; retrying with backoff');
      }
    }
  }

  private observe(outcome: 'success' | 'error', started: bigint): void {
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    this.options.observer?.observe(this.name, outcome, seconds);
  }
}
