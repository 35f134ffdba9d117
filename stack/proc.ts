import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { appendFileSync, closeSync, openSync } from 'node:fs';

/**
 * A registry of every process the stack starts, so that all of them are stopped on normal exit,
 * on Ctrl-C (SIGINT), on SIGTERM and when a test run fails. Children are started in their own process
 * group and killed as a group, so nothing they fork survives either.
 */

/** A process started by the stack. */
export interface ManagedProcess {
  /** Human-readable name used in messages, e.g. "kube-apiserver (upstream)". */
  readonly name: string;
  readonly child: ChildProcess;
  /** Path of the file receiving stdout and stderr. */
  readonly logFile: string;
  /** Resolves when the process has exited. */
  readonly exited: Promise<number | null>;
  /** Stops the process: SIGTERM to its group, SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
  /** True until the process exits. */
  running(): boolean;
}

const live = new Set<ManagedProcess>();
let hooksInstalled = false;

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    try {
      child.kill(signal);
    } catch {
      /* already gone */
    }
  }
}

/** Synchronously SIGKILLs every live process group (used from 'exit', where nothing async runs). */
export function killAllNow(): void {
  for (const p of live) killGroup(p.child, 'SIGKILL');
  live.clear();
}

function installHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on('exit', killAllNow);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(sig, () => {
      // When the program has its own handler for this signal it stops the stack gracefully itself.
      if (process.listenerCount(sig) > 1) return;
      killAllNow();
      process.exit(sig === 'SIGINT' ? 130 : 143);
    });
  }
}

/**
 * Starts `command` with `args`, logging to `logFile`, registered for cleanup. The child writes its stdout
 * and stderr straight into the file (its own descriptor, opened for appending): nothing is relayed through
 * this process, whose event loop runs the tests and the benchmarks' in-process clients, and what a forked
 * grandchild writes after the leader exited lands in the file too.
 */
export function spawnManaged(name: string, command: string, args: string[], logFile: string, options: SpawnOptions & { ipc?: boolean } = {}): ManagedProcess {
  installHooks();
  const { ipc, ...spawnOptions } = options;
  const fd = openSync(logFile, 'a');
  let child: ChildProcess;
  try {
    // `ipc` gives a Node child the message channel of child_process.fork (process.send, 'message').
    child = spawn(command, args, { ...spawnOptions, detached: true, stdio: ipc ? ['ignore', fd, fd, 'ipc'] : ['ignore', fd, fd] });
  } finally {
    closeSync(fd);
  }
  let isRunning = true;
  const exited = new Promise<number | null>((resolve) => {
    child.once('error', (err) => {
      // A log that cannot be written must not bring down the program running the stack; the exit code and
      // the readiness checks tell how the process did.
      try {
        appendFileSync(logFile, `\n[flotilla-stack] failed to start ${command}: ${err.message}\n`);
      } catch {
        /* nothing more to say */
      }
      isRunning = false;
      resolve(null);
    });
    child.once('exit', (code) => {
      isRunning = false;
      resolve(code);
    });
  });
  const managed: ManagedProcess = {
    name,
    child,
    logFile,
    exited,
    running: () => isRunning,
    async stop(graceMs = 5000) {
      if (!isRunning) {
        live.delete(managed);
        return;
      }
      killGroup(child, 'SIGTERM');
      const timer = setTimeout(() => killGroup(child, 'SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
      // Whatever the leader forked must go too.
      killGroup(child, 'SIGKILL');
      live.delete(managed);
    },
  };
  void exited.then(() => live.delete(managed));
  live.add(managed);
  return managed;
}

/** Stops every live process (in parallel). */
export async function stopAll(): Promise<void> {
  await Promise.all([...live].map((p) => p.stop()));
}

/** Names of processes still running (for leak checks). */
export function liveProcesses(): string[] {
  return [...live].filter((p) => p.running()).map((p) => `${p.name} (pid ${p.child.pid ?? '?'})`);
}
