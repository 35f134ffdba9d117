import { baselineWasmOnly } from '../../lib/ops/v8flags.js';
import { pullRound, pushRound } from './transfer-ops.js';

/**
 * The throughput benchmark's Flotilla side, in a process of its own: started once per benchmark, compiled and
 * with the node flags of production (bench/lib/transfer.ts starts it), the way the controller pushes and an
 * agent pulls, in a long-lived process that does nothing else. It takes one command at a time over the IPC
 * channel, runs the same operations as the in-process setting (transfer-ops.ts) and answers when each has
 * finished.
 */

/** A command of the benchmark. */
export type TransferCommand =
  | { id: number; op: 'push'; registry: string; repository: string; src: string; names: readonly string[] }
  | { id: number; op: 'pull'; registry: string; reference: string; out: string; cacheDir: string };

/** The answer: the pinned reference of a push, or why it failed. */
export type TransferReply = { id: number; ok: true; reference?: string } | { id: number; ok: false; error: string };

async function perform(c: TransferCommand): Promise<TransferReply> {
  if (c.op === 'push') return { id: c.id, ok: true, reference: await pushRound(c.registry, c.repository, c.src, c.names) };
  await pullRound(c.registry, c.reference, c.out, c.cacheDir);
  return { id: c.id, ok: true };
}

function main(): void {
  const send = process.send?.bind(process);
  if (send === undefined) {
    process.stderr.write('transfer-worker: no IPC channel; start it through bench/lib/transfer.ts\n');
    process.exit(2);
  }
  // As agent/main.ts and controller/main.ts do before their first connection.
  baselineWasmOnly();
  process.on('message', (c: TransferCommand) => {
    perform(c).then(send, (err: unknown) => send({ id: c.id, ok: false, error: err instanceof Error ? err.message : String(err) }));
  });
  // The benchmark stops it with SIGTERM (and a closed channel); a normal exit also writes a --cpu-prof profile.
  process.on('disconnect', () => process.exit(0));
  process.on('SIGTERM', () => process.exit(0));
  send({ id: 0, ok: true });
}

main();
