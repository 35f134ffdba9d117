import { spawn } from 'node:child_process';

/**
 * Runs one git command and returns its standard output: the process runner of controller/git.ts.
 *
 * Git's own exit is the end of the command: nothing waits after it (a library that waits a fixed delay
 * for a command with no output costs every quiet command that delay, several times per checkout). A
 * command that prints nothing for `idleTimeoutMs` is killed (a hung server or transfer). On failure the
 * error's message is git's standard error (or its output when that is empty), which
 * `translateGitError` classifies; the command line is not in it (a URL may carry a user name).
 */

/** Options of {@link runGit}. */
export interface RunGitOptions {
  /** Working directory; default the process's. */
  cwd?: string;
  /** The whole environment of the command (nothing else is inherited). */
  env: Record<string, string>;
  /** Kills the command after this long without output on stdout or stderr. */
  idleTimeoutMs: number;
  /** At most this many bytes of standard output are kept (default 16 MiB); more fails the command. */
  maxOutputBytes?: number;
}

const DEFAULT_MAX_OUTPUT = 16 * 1024 * 1024;

/** Runs `git args…` (see the module comment); rejects naming the subcommand and git's message. */
export async function runGit(args: readonly string[], options: RunGitOptions): Promise<string> {
  const limit = options.maxOutputBytes ?? DEFAULT_MAX_OUTPUT;
  const what = `git ${args[0] ?? ''}`.trim();
  return await new Promise<string>((resolve, reject) => {
    // Its own process group: a stopped command takes its helpers (ssh, git-remote-https) with it.
    const child = spawn('git', [...args], { cwd: options.cwd, env: options.env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let outBytes = 0;
    let errBytes = 0;
    let failure: string | undefined;
    let timer: NodeJS.Timeout | undefined;
    const stop = (reason: string) => {
      failure ??= reason;
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGTERM');
      } catch {
        child.kill('SIGTERM'); // the group is gone already
      }
    };
    const idle = () => {
      if (timer) clearTimeout(timer);
      timer = setTimeout(() => stop(`${what} printed nothing for ${options.idleTimeoutMs / 1000} s and was stopped`), options.idleTimeoutMs);
    };
    idle();
    child.stdout.on('data', (chunk: Buffer) => {
      idle();
      outBytes += chunk.length;
      if (outBytes > limit) stop(`${what} printed more than ${limit} bytes`);
      else out.push(chunk);
    });
    child.stderr.on('data', (chunk: Buffer) => {
      idle();
      // Only the end of standard error says what went wrong; keep a bounded amount of it.
      errBytes += chunk.length;
      err.push(chunk);
      while (errBytes > 64 * 1024 && err.length > 1) errBytes -= err.shift()?.length ?? 0;
    });
    child.once('error', (e) => {
      if (timer) clearTimeout(timer);
      reject(new Error(`${what} could not start: ${e.message}`, { cause: e }));
    });
    child.once('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      const stdout = Buffer.concat(out).toString('utf8');
      if (code === 0 && failure === undefined) return resolve(stdout);
      const message = Buffer.concat(err).toString('utf8').trim() || stdout.trim();
      const end = failure ?? (signal ? `${what} was killed by ${signal}` : `${what} exited with code ${code}`);
      reject(new Error(message ? `${end}: ${message}` : end));
    });
  });
}
