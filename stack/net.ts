import { randomInt } from 'node:crypto';
import { mkdir, readdir, stat, unlink, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Ports for the stack's servers are taken from a range the kernel never hands out on its own (below the
 * default ephemeral range, 32768-60999, and below Kubernetes' NodePort range, 30000-32767), and reserved
 * across processes. Asking the kernel for port 0 and giving the answer to a server that binds it seconds
 * later let two stacks starting side by side (the e2e shards) receive the same port: the second server
 * then failed with "Address already in use". A reservation is a file named after the port, created
 * exclusively in a folder every process of this user shares; it holds the port for {@link RESERVATION_MS},
 * long enough for any server of the stack to bind it, after which the bound port itself refuses others.
 */
const PORT_LOW = 20_000;
const PORT_HIGH = 29_999;
const RESERVATION_MS = 10 * 60_000;
let swept = false;

/** The folder of port reservations (one per user; FLOTILLA_PORTS_DIR overrides it for tests). */
export function portReservationsDir(): string {
  return process.env.FLOTILLA_PORTS_DIR ?? `/tmp/flotilla-ports-${process.getuid?.() ?? 'user'}`;
}

/** Whether 127.0.0.1:`port` can be bound now. */
async function bindable(port: number): Promise<boolean> {
  return await new Promise((resolve) => {
    const server = createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** Whether a reservation of `file` is older than {@link RESERVATION_MS} (or gone). */
async function expired(file: string): Promise<boolean> {
  const info = await stat(file).catch(() => undefined);
  return info === undefined || Date.now() - info.mtimeMs > RESERVATION_MS;
}

/** Deletes expired reservations, once per process. */
async function sweep(dir: string): Promise<void> {
  if (swept) return;
  swept = true;
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    if (/^[0-9]+$/.test(name) && (await expired(join(dir, name)))) await unlink(join(dir, name)).catch(() => undefined);
  }
}

/** Reserves `port` for this process; false when another process holds it. */
async function reserve(dir: string, port: number): Promise<boolean> {
  const file = join(dir, String(port));
  try {
    await writeFile(file, `${process.pid}\n`, { flag: 'wx' });
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    // An expired reservation is removed for a later pick, never taken over now: two processes could both see it expire.
    if (await expired(file)) await unlink(file).catch(() => undefined);
    return false;
  }
}

/** Returns a TCP port on 127.0.0.1 that is free and reserved for this process (see above). */
export async function freePort(): Promise<number> {
  const dir = portReservationsDir();
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await sweep(dir);
  // From a random place in the range, every port once: side-by-side callers rarely meet, and a nearly
  // full range is still searched to the end.
  const size = PORT_HIGH - PORT_LOW + 1;
  const start = randomInt(size);
  for (let i = 0; i < size; i++) {
    const port = PORT_LOW + ((start + i) % size);
    if ((await reserve(dir, port)) && (await bindable(port))) return port;
  }
  throw new Error(`no free port in ${PORT_LOW}-${PORT_HIGH}: each is reserved in ${dir} or in use; delete that folder if its reservations are stale`);
}

/** Options for {@link waitFor}. */
export interface WaitOptions {
  /** What is awaited, for the timeout message. */
  what: string;
  timeoutMs: number;
  intervalMs?: number;
  /** Called when the wait fails, to add context (e.g. the tail of a log). */
  context?: () => string;
}

/**
 * Polls `probe` until it returns a value other than undefined/false, or fails after `timeoutMs`
 * with a message naming what was awaited and the last error seen.
 */
export async function waitFor<T>(probe: () => Promise<T | undefined | false>, options: WaitOptions): Promise<T> {
  const deadline = Date.now() + options.timeoutMs;
  let lastError = '';
  for (;;) {
    try {
      const result = await probe();
      if (result !== undefined && result !== false) return result;
    } catch (err) {
      lastError = err instanceof Error ? err.message : String(err);
    }
    if (Date.now() > deadline) {
      const extra = options.context ? `\n${options.context()}` : '';
      throw new Error(`timed out after ${options.timeoutMs} ms waiting for ${options.what}${lastError ? ` (last error: ${lastError})` : ''}${extra}`);
    }
    await sleep(options.intervalMs ?? 250);
  }
}
