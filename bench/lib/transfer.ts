import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { spawnManaged } from '../../stack/proc.js';
import { BUILD_DIR } from './build.js';
import { PRODUCTION_NODE_FLAGS, ROOT, tailOf } from './procs.js';
import type { TransferCommand, TransferReply } from './transfer-worker.js';

/** Flotilla's push and pull run by a process of its own (transfer-worker.ts), one command at a time. */
export interface TransferProcess {
  readonly pid: number;
  /** Pushes `names` (relative to `src`) as a bundle to `repository` with tag v1; resolves to the pinned reference. */
  push(registry: string, repository: string, src: string, names: readonly string[]): Promise<string>;
  /** Pulls `reference` into the empty folder `out`, with an empty blob cache in `cacheDir`. */
  pull(registry: string, reference: string, out: string, cacheDir: string): Promise<void>;
  stop(): Promise<void>;
}

type Command = TransferCommand extends infer C ? (C extends TransferCommand ? Omit<C, 'id'> : never) : never;

/** Starts the compiled transfer worker with production's node flags and waits until it is ready for commands. */
export async function startTransferProcess(logFile: string): Promise<TransferProcess> {
  const entry = join(ROOT, BUILD_DIR, 'bench', 'lib', 'transfer-worker.js');
  if (!existsSync(entry)) throw new Error(`${entry} does not exist: compile first (bench/lib/build.ts)`);
  const proc = spawnManaged('flotilla transfer worker', process.execPath, [...PRODUCTION_NODE_FLAGS, entry], logFile, { cwd: ROOT, ipc: true });
  const waiting = new Map<number, (r: TransferReply) => void>();
  let exitedEarly: Error | undefined;
  proc.child.on('message', (r: TransferReply) => {
    waiting.get(r.id)?.(r);
    waiting.delete(r.id);
  });
  void proc.exited.then((code) => {
    exitedEarly = new Error(`the transfer worker exited (code ${code}); ${tailOf(logFile)}`);
    for (const [id, done] of waiting) done({ id, ok: false, error: exitedEarly.message });
    waiting.clear();
  });
  // The worker announces itself with id 0 once its modules are loaded (or the exit above answers it).
  const announced = new Promise<TransferReply>((resolve) => waiting.set(0, resolve));
  let next = 0;
  const call = (c: Command): Promise<TransferReply> =>
    new Promise((resolve) => {
      if (exitedEarly) return resolve({ id: -1, ok: false, error: exitedEarly.message });
      const id = ++next;
      waiting.set(id, resolve);
      proc.child.send({ ...c, id });
    });
  const ready = await announced;
  if (!ready.ok) throw new Error(ready.error);
  const check = (r: TransferReply): TransferReply & { ok: true } => {
    if (!r.ok) throw new Error(`flotilla transfer worker: ${r.error}`);
    return r;
  };
  return {
    pid: proc.child.pid ?? -1,
    async push(registry, repository, src, names) {
      const { reference } = check(await call({ op: 'push', registry, repository, src, names }));
      if (reference === undefined) throw new Error('flotilla transfer worker: a push answered no reference');
      return reference;
    },
    async pull(registry, reference, out, cacheDir) {
      check(await call({ op: 'pull', registry, reference, out, cacheDir }));
    },
    stop: () => proc.stop(5000),
  };
}
