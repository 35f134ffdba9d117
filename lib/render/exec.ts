import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Reason } from '../api/constants.js';
import { limitSetting } from '../bundle/limits.js';
import { FlotillaError, type ErrorDisposition } from '../errors.js';

/**
 * Bounded subprocesses: how Flotilla runs helm and kustomize over untrusted bundle content.
 *
 * - No shell: the program and its arguments are passed as they are.
 * - Its own process group, killed as a whole (SIGKILL) when the time limit passes, when its output passes
 *   the size limit (reading stops at once), and after it exits (so nothing it started lives on).
 * - A memory cap, when given: the program runs under `prlimit --data=<bytes>` (util-linux, in every Debian
 *   image), which sets RLIMIT_DATA and execs it (same pid, same process group). RLIMIT_DATA and not
 *   RLIMIT_AS: helm and kustomize are Go programs, and Go reserves address space it never touches (helm
 *   rendering a small chart fails below about 1 GiB of RLIMIT_AS while its RSS is 48 MiB), whereas
 *   RLIMIT_DATA (Linux 4.7+) counts only writable private memory: what the Go heap really maps. prlimit and
 *   not `sh -c 'ulimit -d N; exec "$@"'`: no shell in between (the arguments pass untouched), the limit in
 *   bytes rather than the shell's KiB, and a clear message of its own when it cannot start the program.
 *   Over the cap the program fails its allocation (Go: "fatal error: runtime: out of memory"; tiny caps
 *   can also end in SIGSEGV): reported as the memory limit, RenderBudgetExceeded.
 * - A scrubbed environment: only PATH, the given variables, and HOME / XDG_* / HELM_*_HOME / KUBECONFIG
 *   pointed into a private temporary directory made for this run and removed after it, so helm never reads
 *   the user's repositories, registry logins or kubeconfig, and nothing the parent holds (tokens) leaks in.
 * - Failures are {@link CommandError}s whose message names the command's purpose and the cause and says what
 *   to do; the given secrets and URL credentials are removed from everything quoted (stderr), and the
 *   arguments are never quoted.
 */

/** A program to run with limits. */
export interface BoundedCommand {
  /** What the run is for, shown first in every error: e.g. `helm template of chart "web" (bundle apps/web)`. */
  purpose: string;
  /** The program: an absolute path or a name looked up on PATH. */
  file: string;
  args: readonly string[];
  /** Working directory (default: the private temporary directory). */
  cwd?: string | undefined;
  /** Variables added to the scrubbed environment. */
  env?: Readonly<Record<string, string>> | undefined;
  /** Bytes written to standard input (then closed); standard input is empty otherwise. */
  stdin?: string | Buffer | undefined;
  /** Longest the program may run, in milliseconds. */
  timeoutMs: number;
  /** Most bytes of standard output accepted. */
  maxOutputBytes: number;
  /** Most bytes of writable memory (RLIMIT_DATA) the program may map; unset: no cap (see the module comment). */
  maxMemoryBytes?: number | undefined;
  /** Most bytes of standard error kept for the message (its end is kept). Default 16 KiB. */
  maxErrorBytes?: number | undefined;
  /** Strings removed from any text quoted in errors (passwords, tokens). */
  secrets?: readonly string[] | undefined;
  /** Reason of the error when the program exits non-zero (default RenderFailed). */
  exitReason?: string | undefined;
}

/** What a successful run produced. */
export interface CommandOutput {
  stdout: Buffer;
  /** Standard error (its end, redacted), e.g. warnings. */
  stderr: string;
}

/** Why a command failed. */
export type CommandFailure = 'timeout' | 'output-limit' | 'memory-limit' | 'exit' | 'signal' | 'spawn';

/** A bounded command that did not succeed. Its message is safe to show in status (secrets removed). */
export class CommandError extends FlotillaError {
  readonly disposition: ErrorDisposition;
  /** What went wrong. */
  readonly failure: CommandFailure;
  /** The exit code, when the program exited by itself. */
  readonly exitCode: number | undefined;
  /** The end of standard error, redacted. */
  readonly stderr: string;

  constructor(failure: CommandFailure, reason: string, message: string, details: { exitCode?: number; stderr: string; disposition: ErrorDisposition }) {
    super(reason, message);
    this.failure = failure;
    this.exitCode = details.exitCode;
    this.stderr = details.stderr;
    this.disposition = details.disposition;
  }
}

const DEFAULT_MAX_ERROR_BYTES = 16 * 1024;
const URL_CREDENTIALS = /\b([a-z][a-z0-9+.-]*:\/\/)[^/\s:@]+(?::[^/\s@]*)?@/gi;

/** Removes every secret (and credentials written in URLs) from text. */
export function redact(text: string, secrets: readonly string[] = []): string {
  let out = text.replace(URL_CREDENTIALS, '$1***@');
  for (const secret of secrets) {
    if (secret.length > 0) out = out.split(secret).join('***');
  }
  return out;
}

/** The environment of a run: PATH, the given variables, and every home-like variable in `home`. */
export function scrubbedEnv(home: string, extra: Readonly<Record<string, string>> = {}, path = process.env.PATH ?? '/usr/bin:/bin'): Record<string, string> {
  return {
    PATH: path,
    HOME: home,
    XDG_CONFIG_HOME: join(home, 'config'),
    XDG_CACHE_HOME: join(home, 'cache'),
    XDG_DATA_HOME: join(home, 'data'),
    HELM_CONFIG_HOME: join(home, 'config', 'helm'),
    HELM_CACHE_HOME: join(home, 'cache', 'helm'),
    HELM_DATA_HOME: join(home, 'data', 'helm'),
    KUBECONFIG: join(home, 'kubeconfig-none'),
    TMPDIR: join(home, 'tmp'),
    LANG: 'C',
    ...extra,
  };
}

/** Runs a command with its limits (see the module comment). Resolves only when it exited with 0. */
export async function runBounded(cmd: BoundedCommand): Promise<CommandOutput> {
  const home = await mkdtemp(join(tmpdir(), 'flotilla-exec-'));
  try {
    await mkdir(join(home, 'tmp'));
    return await runIn(cmd, home);
  } finally {
    await rm(home, { recursive: true, force: true });
  }
}

/** The program actually started: `cmd.file` itself, or prlimit running it under the memory cap. */
function invocation(cmd: BoundedCommand): { file: string; args: string[] } {
  if (cmd.maxMemoryBytes === undefined) return { file: cmd.file, args: [...cmd.args] };
  return { file: 'prlimit', args: [`--data=${cmd.maxMemoryBytes}`, '--', cmd.file, ...cmd.args] };
}

const MIB = 1024 * 1024;
/** Bytes of the start of standard error kept to recognize how a program stopped. */
const HEAD_BYTES = 4096;
/** What Go, V8, glibc and shells print when an allocation fails (at the start of standard error or at its end). */
const OUT_OF_MEMORY = /out of memory|cannot allocate memory|allocation failed|bad_alloc|out of space/i;
/** prlimit's own message when it cannot execute the program (exit 126 or 127). */
const PRLIMIT_EXEC = /^prlimit: failed to execute [^:]*: (.*)$/m;

/** How a run ended, as seen when its streams closed. */
interface Ending {
  code: number | null;
  signal: NodeJS.Signals | null;
  stopped: 'timeout' | 'output-limit' | undefined;
  spawnError: Error | undefined;
  /** The first bytes of standard error (where Go and prlimit say why they stopped), raw. */
  errHead: string;
  /** The end of standard error, redacted. */
  stderr: string;
}

/** Whether a run under a memory cap ended because of it (see the module comment). */
function outOfMemory(cmd: BoundedCommand, end: Ending): boolean {
  if (cmd.maxMemoryBytes === undefined) return false;
  if (end.signal === 'SIGSEGV' || end.signal === 'SIGABRT' || end.signal === 'SIGBUS') return true;
  return end.code !== 0 && (OUT_OF_MEMORY.test(end.errHead) || OUT_OF_MEMORY.test(end.stderr));
}

/** The error of a run that did not succeed; undefined when it did. */
function failureOf(cmd: BoundedCommand, end: Ending): CommandError | undefined {
  const { code, signal, stderr } = end;
  const error = (f: CommandFailure, cause: string, disposition: ErrorDisposition, reason: string) =>
    new CommandError(f, reason, `${cmd.purpose}: ${cause}`, { stderr, disposition, ...(code === null ? {} : { exitCode: code }) });
  const cannotRun = (why: string) =>
    error('spawn', `cannot run ${cmd.file} (${why}); install it or point the configuration at it`, 'transient', Reason.RenderFailed);
  if (end.spawnError) {
    const why = (end.spawnError as NodeJS.ErrnoException).code ?? end.spawnError.message;
    return cmd.maxMemoryBytes === undefined
      ? cannotRun(why)
      : error('spawn', `cannot run prlimit (${why}), which sets the memory limit of ${cmd.file}; install util-linux`, 'transient', Reason.RenderFailed);
  }
  if (end.stopped === 'timeout') {
    return error(
      'timeout',
      `stopped after ${cmd.timeoutMs / 1000} s, its time limit; a template or build that never ends, ` +
        'or content too large to render in time: simplify it or raise the render time limit',
      'stalling',
      Reason.RenderBudgetExceeded,
    );
  }
  if (end.stopped === 'output-limit') {
    return error(
      'output-limit',
      `stopped: its output passed the limit of ${cmd.maxOutputBytes} bytes; make the bundle render less or raise the render output limit`,
      'stalling',
      Reason.BundleTooLarge,
    );
  }
  const notExecuted = cmd.maxMemoryBytes !== undefined && (code === 126 || code === 127) ? PRLIMIT_EXEC.exec(end.errHead) : null;
  if (notExecuted) return cannotRun(notExecuted[1] ?? 'prlimit could not execute it');
  if (outOfMemory(cmd, end)) {
    return error(
      'memory-limit',
      `ran out of memory under its limit of ${Math.round((cmd.maxMemoryBytes ?? 0) / MIB)} MiB (${signal ?? `exit ${code}`}); ` +
        `make the chart or kustomization render less, or raise ${limitSetting('renderToolMemoryMb')} on every agent`,
      'stalling',
      Reason.RenderBudgetExceeded,
    );
  }
  if (signal !== null) return error('signal', `killed by ${signal}${stderr ? `: ${stderr}` : ''}`, 'transient', Reason.RenderFailed);
  if (code !== 0)
    return error('exit', `failed (exit ${code})${stderr ? `: ${stderr}` : ' without a message'}`, 'stalling', cmd.exitReason ?? Reason.RenderFailed);
  return undefined;
}

/** The part of {@link runBounded} between creating and removing the private directory. */
function runIn(cmd: BoundedCommand, home: string): Promise<CommandOutput> {
  const maxErr = cmd.maxErrorBytes ?? DEFAULT_MAX_ERROR_BYTES;
  const started = invocation(cmd);
  return new Promise<CommandOutput>((resolve, reject) => {
    const child = spawn(started.file, started.args, {
      cwd: cmd.cwd ?? home,
      env: scrubbedEnv(home, cmd.env),
      detached: true,
      shell: false,
      stdio: ['pipe', 'pipe', 'pipe'],
      windowsHide: true,
    });
    const out: Buffer[] = [];
    let outBytes = 0;
    let err = Buffer.alloc(0);
    let errHead = Buffer.alloc(0);
    let stopped: Ending['stopped'];
    const killGroup = () => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    };
    const stop = (failure: 'timeout' | 'output-limit') => {
      if (stopped) return;
      stopped = failure;
      child.stdout.destroy();
      killGroup();
    };
    const timer = setTimeout(() => stop('timeout'), cmd.timeoutMs);
    child.stdout.on('data', (chunk: Buffer) => {
      if (stopped) return;
      outBytes += chunk.length;
      if (outBytes > cmd.maxOutputBytes) stop('output-limit');
      else out.push(chunk);
    });
    child.stderr.on('data', (chunk: Buffer) => {
      if (errHead.length < HEAD_BYTES) errHead = Buffer.concat([errHead, chunk]).subarray(0, HEAD_BYTES);
      err = Buffer.concat([err, chunk]);
      if (err.length > maxErr) err = err.subarray(err.length - maxErr);
    });
    child.stdin.on('error', () => {
      /* the program may exit without reading its input */
    });
    child.stdin.end(cmd.stdin ?? '');
    let spawnError: Error | undefined;
    child.on('error', (e) => {
      spawnError = e;
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      killGroup();
      const stderr = redact(err.toString('utf8'), cmd.secrets).trim();
      const failure = failureOf(cmd, { code, signal, stopped, spawnError, errHead: errHead.toString('utf8'), stderr });
      if (failure) reject(failure);
      else resolve({ stdout: Buffer.concat(out), stderr });
    });
  });
}
