import type { ErrorDisposition } from '../errors.js';

/**
 * Messages between an {@link import('./isolate.js').Isolate} and its worker threads (worker.ts).
 */

/** A job for the worker: call `task` of `module` with `input`. */
export interface WorkerRequest {
  type: 'job';
  id: number;
  /** Module URL (file:). */
  module: string;
  task: string;
  input: unknown;
}

/** An error as it crosses the thread: a Flotilla error keeps its disposition and reason. */
export interface SerializedError {
  name: string;
  message: string;
  disposition?: ErrorDisposition;
  reason?: string;
  retryAfterMs?: number;
}

/** What a worker sends: once `ready` after start, then one `result` per job. */
export type WorkerReply =
  | { type: 'ready' }
  | { type: 'result'; id: number; ok: true; result: unknown }
  | { type: 'result'; id: number; ok: false; error: SerializedError };
