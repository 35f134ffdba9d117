import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Reason } from '../api/constants.js';
import { FlotillaError, type ErrorDisposition } from '../errors.js';

/**
 * Bounded subprocesses: how Flotilla runs helm and kustomize over untrusted bundle content.
 *
 * - No shell: the program and its arguments are passed as they are.
 * - Its own process group, killed as a whole (SIGKILL) when the time limit passes, when its output passes
 *   the size limit (reading stops at once), and after it exits (so nothing it started lives on).
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
export type CommandFailure = 'timeout' | 'output-limit' | 'exit' | 'signal' | 'spawn';

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

/** The part of {@link runBounded} between creating and removing the private directory. */
function runIn(cmd: BoundedCommand, home: string): Promise<CommandOutput> {
  const maxErr = cmd.maxErrorBytes ?? DEFAULT_MAX_ERROR_BYTES;
  return new Promise<CommandOutput>((resolve, reject) => {
    const child = spawn(cmd.file, [...cmd.args], {
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
    let stopped: { failure: 'timeout' | 'output-limit' } | undefined;
    const killGroup = () => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    };
    const stop = (failure: 'timeout' | 'output-limit') => {
      if (stopped) return;
      stopped = { failure };
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
      const failed = (f: CommandFailure, cause: string, disposition: ErrorDisposition = 'stalling', reason: string = Reason.RenderFailed) =>
        reject(new CommandError(f, reason, `${cmd.purpose}: ${cause}`, { stderr, disposition, ...(code === null ? {} : { exitCode: code }) }));
      if (spawnError) {
        failed(
          'spawn',
          `cannot run ${cmd.file} (${(spawnError as NodeJS.ErrnoException).code ?? spawnError.message}); install it or point the configuration at it`,
          'transient',
        );
      } else if (stopped?.failure === 'timeout') {
        failed(
          'timeout',
          `stopped after ${cmd.timeoutMs / 1000} s, its time limit; a template or build that never ends, ` +
            'or content too large to render in time: simplify it or raise the render time limit',
        );
      } else if (stopped?.failure === 'output-limit') {
        failed(
          'output-limit',
          `stopped: its output passed the limit of ${cmd.maxOutputBytes} bytes; make the bundle render less or raise the render output limit`,
          'stalling',
          Reason.BundleTooLarge,
        );
      } else if (signal !== null) {
        failed('signal', `killed by ${signal}${stderr ? `: ${stderr}` : ''}`, 'transient');
      } else if (code !== 0) {
        failed('exit', `failed (exit ${code})${stderr ? `: ${stderr}` : ' without a message'}`, 'stalling', cmd.exitReason ?? Reason.RenderFailed);
      } else {
        resolve({ stdout: Buffer.concat(out), stderr });
      }
    });
  });
}
