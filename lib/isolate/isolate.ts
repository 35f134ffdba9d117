import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { Reason } from '../api/constants.js';
import { StallingError, TransientError, WaitingError, type ErrorDisposition } from '../errors.js';
import type { WorkerReply, WorkerRequest, SerializedError } from './protocol.js';

/**
 * Bulkheads: heavy work for one bundle (parsing, rendering, later Helm and Kustomize) runs in a worker thread
 * whose heap is capped (`resourceLimits`) and which is terminated when the job passes its deadline, so that
 * one bundle can neither block the event loop of the process nor take its memory from the others.
 *
 * - A job names a module and one of its exported functions (`task(input)`), which runs in the worker; the
 *   input and the result cross the thread by structured clone.
 * - No worker starts before the first job. Workers are kept warm between jobs (at most `maxIdle` in all, the
 *   least recently used go first, and none idle longer than `idleMs`: each worker is a V8 isolate of its own,
 *   10-20 MiB of resident memory, which an idle process should not hold) and run one job at a time; a worker
 *   whose job timed out, ran out of heap or crashed is thrown away. The deadline starts when the job is
 *   handed to a ready worker, so the start-up of a worker is not counted against the bundle.
 * - Errors keep their meaning across the thread: Flotilla errors come back with their class and reason;
 *   over the deadline or out of heap (also a stack overflow or "Invalid string length" inside the job,
 *   which only content causes) is StallingError RenderBudgetExceeded: the same bytes fail again, so they
 *   are not retried with backoff. Anything else is transient.
 * - Worker code runs both compiled (dist, production: the entry is worker.js) and under tsx (tests: a tiny
 *   CommonJS bootstrap registers tsx in the worker, which does not inherit the parent's loader hooks).
 */

/** The time and memory one job may use. */
export interface IsolateBudget {
  /** Deadline of the job, from when a ready worker receives it. */
  timeoutMs: number;
  /** Old-generation heap of the worker, MiB. */
  memoryMb: number;
}

/** One job: `module`'s exported function `task`, called with `input` in a worker. */
export interface IsolateJob<I> {
  module: URL;
  task: string;
  input: I;
  /** Names the work in errors, e.g. `bundle web (cluster-1)`. */
  label: string;
  /** The flags that raise the budget, for error messages. */
  flags?: { timeout: string; memory: string };
}

/** Options of an {@link Isolate}. */
export interface IsolateOptions {
  /** Idle workers kept warm (in all, whatever their heap size); default 2. */
  maxIdle?: number;
  /** Modules every worker imports when it starts (so that the first job does not pay for loading them). */
  preload?: URL[];
  /** Longest a worker may take to start; default 60 s. */
  startTimeoutMs?: number;
  /** An idle worker exits after this long without a job; default {@link DEFAULT_IDLE_MS}. */
  idleMs?: number;
}

/** How long an idle worker is kept warm by default: past a resync period, so that a periodic render finds it. */
export const DEFAULT_IDLE_MS = 60_000;

const RUNNING_TS = import.meta.url.endsWith('.ts');

/** The URL of a module next to `base` (an `import.meta.url`), with the extension the running code has (.ts under tsx, .js compiled). */
export function siblingModule(base: string, name: string): URL {
  return new URL(`${name}${RUNNING_TS ? '.ts' : '.js'}`, base);
}

const ENTRY = siblingModule(import.meta.url, './worker');
/** Under tsx the worker starts here: registers tsx, then imports the TypeScript entry. */
const TSX_BOOTSTRAP = `const { workerData } = require('node:worker_threads');
require(workerData.tsxApi).register();
import(workerData.entry).catch((err) => { process.nextTick(() => { throw err; }); });`;

interface PooledWorker {
  worker: Worker;
  ready: Promise<void>;
  memoryMb: number;
  /** Whether the worker answered its last job (rather than being stopped or dying). */
  answered: boolean;
  /** Ends the worker when it has been idle for `idleMs`. */
  idleTimer?: NodeJS.Timeout;
}

/** Runs jobs in capped, killable worker threads (see the module comment). */
export class Isolate {
  /** Idle workers, least recently used first. */
  private idle: PooledWorker[] = [];
  private readonly busy = new Set<PooledWorker>();
  private nextId = 1;
  private closed = false;

  constructor(private readonly options: IsolateOptions = {}) {}

  /**
   * Runs one job within `budget`; resolves with the task's result or rejects with a Flotilla error.
   * `onStart` is called when a ready worker receives the job (when its deadline starts).
   */
  async run<I, O>(job: IsolateJob<I>, budget: IsolateBudget, onStart?: () => void): Promise<O> {
    if (this.closed) throw new Error('the isolate is closed');
    const pooled = this.take(budget.memoryMb);
    this.busy.add(pooled);
    pooled.worker.ref();
    pooled.answered = false;
    try {
      await pooled.ready;
      onStart?.();
      return await this.exchange<O>(pooled, job, budget);
    } finally {
      this.busy.delete(pooled);
      // Only a worker that answered (with a result or the task's own error) is healthy enough to reuse.
      this.release(pooled, pooled.answered);
    }
  }

  /** Terminates every worker. */
  async close(): Promise<void> {
    this.closed = true;
    const all = [...this.busy, ...this.idle];
    for (const p of this.idle) clearTimeout(p.idleTimer);
    this.idle = [];
    await Promise.all(all.map((p) => p.worker.terminate().catch(() => undefined)));
  }

  /** Workers started and not yet terminated (idle and busy), for tests and metrics. */
  get size(): number {
    return this.busy.size + this.idle.length;
  }

  private take(memoryMb: number): PooledWorker {
    const index = this.idle.map((p) => p.memoryMb).lastIndexOf(memoryMb);
    if (index < 0) return this.spawn(memoryMb);
    const pooled = this.idle.splice(index, 1)[0] as PooledWorker;
    clearTimeout(pooled.idleTimer);
    return pooled;
  }

  private release(pooled: PooledWorker, reusable: boolean): void {
    if (!reusable || this.closed) {
      void pooled.worker.terminate().catch(() => undefined);
      return;
    }
    pooled.worker.unref();
    this.idle.push(pooled);
    pooled.idleTimer = setTimeout(() => this.retire(pooled), this.options.idleMs ?? DEFAULT_IDLE_MS);
    pooled.idleTimer.unref();
    // Over the allowance, the least recently used idle worker goes.
    while (this.idle.length > (this.options.maxIdle ?? 2)) this.retire(this.idle[0] as PooledWorker);
  }

  /** Ends an idle worker. */
  private retire(pooled: PooledWorker): void {
    clearTimeout(pooled.idleTimer);
    const index = this.idle.indexOf(pooled);
    if (index >= 0) this.idle.splice(index, 1);
    void pooled.worker.terminate().catch(() => undefined);
  }

  private spawn(memoryMb: number): PooledWorker {
    const preload = (this.options.preload ?? []).map((u) => u.href);
    const resourceLimits = { maxOldGenerationSizeMb: memoryMb, maxYoungGenerationSizeMb: Math.min(64, Math.max(4, Math.floor(memoryMb / 8))), stackSizeMb: 4 };
    const worker = RUNNING_TS
      ? new Worker(TSX_BOOTSTRAP, {
          eval: true,
          resourceLimits,
          workerData: { entry: ENTRY.href, tsxApi: createRequire(import.meta.url).resolve('tsx/esm/api'), preload },
        })
      : new Worker(ENTRY, { resourceLimits, workerData: { preload } });
    const ready = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new TransientError(Reason.RenderBudgetExceeded, 'a render worker did not start in time')),
        this.options.startTimeoutMs ?? 60_000,
      );
      const done = (err?: unknown) => {
        clearTimeout(timer);
        worker.off('message', onMessage);
        if (err) reject(err);
        else resolve();
      };
      const onMessage = (m: WorkerReply) => {
        if (m.type === 'ready') done();
      };
      worker.on('message', onMessage);
      worker.once('error', (err) => done(new TransientError(Reason.RenderBudgetExceeded, `a render worker failed to start: ${err.message}`, { cause: err })));
      worker.once('exit', (code) => done(new TransientError(Reason.RenderBudgetExceeded, `a render worker exited at start (code ${code})`)));
    });
    ready.catch(() => undefined);
    return { worker, ready, memoryMb, answered: false };
  }

  /** Hands the job to the worker and waits for its reply, the deadline, or the worker's death. */
  private exchange<O>(pooled: PooledWorker, job: IsolateJob<unknown>, budget: IsolateBudget): Promise<O> {
    const { worker } = pooled;
    const id = this.nextId++;
    const flags = job.flags ?? { timeout: 'the job timeout', memory: 'the job memory' };
    return new Promise<O>((resolve, reject) => {
      const cleanup = () => {
        clearTimeout(timer);
        worker.off('message', onMessage);
        worker.off('error', onError);
        worker.off('exit', onExit);
      };
      const fail = (err: Error) => {
        cleanup();
        reject(err);
      };
      const timer = setTimeout(() => {
        fail(
          new StallingError(
            Reason.RenderBudgetExceeded,
            `${job.label}: parsing and rendering took longer than ${budget.timeoutMs} ms and was stopped; ` +
              `make the content smaller or simpler, or raise ${flags.timeout} on the controller and every agent`,
          ),
        );
        void worker.terminate().catch(() => undefined);
      }, budget.timeoutMs);
      const onMessage = (reply: WorkerReply) => {
        if (reply.type !== 'result' || reply.id !== id) return;
        cleanup();
        pooled.answered = true;
        if (reply.ok) resolve(reply.result as O);
        else reject(revive(reply.error, job.label, budget, flags));
      };
      const onError = (err: Error & { code?: string }) => {
        if (err.code === 'ERR_WORKER_OUT_OF_MEMORY') {
          fail(
            new StallingError(
              Reason.RenderBudgetExceeded,
              `${job.label}: parsing and rendering needed more than ${budget.memoryMb} MiB of heap and was stopped; ` +
                `make the content smaller, or raise ${flags.memory} on the controller and every agent`,
              { cause: err },
            ),
          );
        } else fail(new TransientError(Reason.RenderBudgetExceeded, `${job.label}: the render worker failed: ${err.message}`, { cause: err }));
      };
      const onExit = (code: number) => fail(new TransientError(Reason.RenderBudgetExceeded, `${job.label}: the render worker exited (code ${code})`));
      worker.on('message', onMessage);
      worker.once('error', onError);
      worker.once('exit', onExit);
      const request: WorkerRequest = { type: 'job', id, module: job.module.href, task: job.task, input: job.input };
      worker.postMessage(request);
    });
  }
}

/** Rebuilds a task's error on this side of the thread (see the module comment). */
function revive(e: SerializedError, label: string, budget: IsolateBudget, flags: { memory: string }): Error {
  const make: Record<ErrorDisposition, (reason: string, message: string) => Error> = {
    stalling: (r, m) => new StallingError(r, m),
    waiting: (r, m) => new WaitingError(r, m, e.retryAfterMs === undefined ? {} : { retryAfterMs: e.retryAfterMs }),
    transient: (r, m) => new TransientError(r, m),
    // A 409 comes only from the Kubernetes API, which a task never calls; should one cross anyway, it is retried.
    conflict: (r, m) => new TransientError(r, m),
  };
  if (e.disposition && e.reason) return make[e.disposition](e.reason, e.message);
  if (e.name === 'RangeError' && /call stack|Invalid (?:string|array|typed array) length|Array buffer allocation/i.test(e.message)) {
    return new StallingError(
      Reason.RenderBudgetExceeded,
      `${label}: the content is too large or too deep to process (${e.message}) within ${budget.memoryMb} MiB; ` + `make it smaller, or raise ${flags.memory}`,
    );
  }
  const err = new Error(e.message);
  err.name = e.name;
  return err;
}
