import { parentPort, workerData } from 'node:worker_threads';
import { FlotillaError } from '../errors.js';
import type { SerializedError, WorkerReply, WorkerRequest } from './protocol.js';

/**
 * The entry point of an isolate's worker thread (see isolate.ts): imports the preload modules, says it is
 * ready, then runs one job at a time: imports the job's module, calls the named export with the input and
 * sends back the result or the error.
 */

type Task = (input: unknown) => unknown;

function serialize(err: unknown): SerializedError {
  if (err instanceof FlotillaError) {
    return {
      name: err.name,
      message: err.message,
      disposition: err.disposition,
      reason: err.reason,
      ...(err.retryAfterMs !== undefined ? { retryAfterMs: err.retryAfterMs } : {}),
    };
  }
  if (err instanceof Error) return { name: err.name, message: err.message };
  return { name: 'Error', message: String(err) };
}

async function run(request: WorkerRequest): Promise<WorkerReply> {
  try {
    const mod = (await import(request.module)) as Record<string, unknown>;
    const task = mod[request.task];
    if (typeof task !== 'function') throw new Error(`${request.module} exports no task ${request.task}`);
    return { type: 'result', id: request.id, ok: true, result: await (task as Task)(request.input) };
  } catch (err) {
    return { type: 'result', id: request.id, ok: false, error: serialize(err) };
  }
}

const port = parentPort;
if (port) {
  for (const module of (workerData as { preload?: string[] } | undefined)?.preload ?? []) await import(module);
  port.on('message', (request: WorkerRequest) => {
    if (request.type !== 'job') return;
    void run(request).then((reply) => {
      try {
        port.postMessage(reply);
      } catch (err) {
        // a result that cannot be cloned
        port.postMessage({ type: 'result', id: request.id, ok: false, error: serialize(err) } satisfies WorkerReply);
      }
    });
  });
  port.postMessage({ type: 'ready' } satisfies WorkerReply);
}
