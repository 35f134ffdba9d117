import { mkdir, mkdtemp, rm, writeFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { StallingError, TransientError } from '../lib/errors.js';
import { Reason } from '../lib/api/index.js';
import { runGit } from './git-run.js';

/**
 * The git adapter: resolves a GitRepo's branch or revision to a commit with `ls-remote` (cheap: the
 * poll does nothing else when the commit did not change) and checks a commit out into a per-GitRepo
 * folder with a shallow fetch. Git runs as a child process (controller/git-run.ts), at most a few per
 * checkout: every one costs a process start, which is most of a webhook-triggered fetch's time.
 *
 * Credentials never appear in a command line, a URL written to disk or an error message: HTTP basic
 * auth travels as an `http.extraHeader` set through GIT_CONFIG_* environment variables; SSH keys, known
 * hosts and CA bundles as files readable only by us, in a folder made for one git command and removed
 * after it.
 *
 * SSH always checks the server's host key (StrictHostKeyChecking=yes): against `known_hosts` from the
 * Secret when it has one, else against the system-wide /etc/ssh/ssh_known_hosts of the controller (where
 * a deployment may mount one for every GitRepo); a server that neither knows is refused. Nothing is ever
 * learned on first use.
 */

/** Credentials and TLS settings for one repository. */
export interface GitAuth {
  /** HTTP basic auth (Secret type kubernetes.io/basic-auth or keys username/password). */
  basic?: { username: string; password: string };
  /** SSH private key (Secret type kubernetes.io/ssh-auth: key ssh-privatekey; optional known_hosts, see the module comment). */
  ssh?: { privateKey: string; knownHosts?: string };
  /** PEM CA bundle for HTTPS. */
  caPem?: string;
  insecureSkipTLSVerify?: boolean;
}

/** What to fetch. */
export interface GitFetchTarget {
  repo: string;
  branch?: string;
  revision?: string;
  auth: GitAuth;
}

/** The port the GitRepo reconciler uses. */
export interface GitSource {
  /** The commit `target` points at now. */
  resolve(target: GitFetchTarget): Promise<string>;
  /** A folder holding the tree of `commit` (reused between calls for the same `key`). */
  checkout(key: string, target: GitFetchTarget, commit: string): Promise<string>;
  /** Removes the folder of `key`. */
  forget(key: string): Promise<void>;
  /** The committer date (RFC 3339) of `commit`, checked out under `key`; optional (history shows none without it). */
  commitTime?(key: string, commit: string): Promise<string | undefined>;
}

const SHA = /^[0-9a-f]{40}([0-9a-f]{24})?$/;

/** The git or ssh output lines that say what went wrong (not git's generic "make sure you have access"). */
function telling(clean: string): string {
  const lines = clean
    .trim()
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter(Boolean)
    .filter((l) => !/^(fatal: Could not read from remote repository|Please make sure you have the correct access rights|and the repository exists)/.test(l));
  return lines.slice(-2).join(' ').slice(0, 300);
}

/** Translates a git failure into Flotilla's errors; the message names the repository, never credentials. */
export function translateGitError(repo: string, operation: string, err: unknown): Error {
  const text = err instanceof Error ? err.message : String(err);
  const clean = text.replace(/(https?:\/\/)[^@/\s]+@/g, '$1').replace(/Authorization: \S+ \S+/gi, 'Authorization: [redacted]');
  const lastLines = telling(clean);
  const what = `git ${operation} of ${repo}`;
  if (/REMOTE HOST IDENTIFICATION HAS CHANGED|Host key for .* has changed/i.test(clean)) {
    return new StallingError(
      Reason.GitOperationFailed,
      `${what}: host key verification failed: the server's host key differs from the one in known_hosts ` +
        '(the server changed its key, or the connection is intercepted); fix known_hosts in the clientSecretName Secret',
      { cause: err },
    );
  }
  if (/Host key verification failed|host key is known for/i.test(clean)) {
    return new StallingError(
      Reason.GitOperationFailed,
      `${what}: host key verification failed: no known_hosts entry for the server; ` +
        'add its public host key (e.g. from ssh-keyscan, checked out of band) as known_hosts to the clientSecretName Secret',
      { cause: err },
    );
  }
  if (/Load key .*: (invalid format|error in libcrypto)|incorrect passphrase|bad permissions/i.test(clean)) {
    return new StallingError(
      Reason.AuthenticationFailed,
      `${what}: the ssh-privatekey of the clientSecretName Secret is not a usable private key (OpenSSH or PEM format, without passphrase)`,
      { cause: err },
    );
  }
  if (/Permission denied \(publickey/i.test(clean)) {
    return new StallingError(Reason.AuthenticationFailed, `${what}: authentication failed: the server refused the SSH key of the clientSecretName Secret`, {
      cause: err,
    });
  }
  // Status codes only where git reports an HTTP status: a bare 401 also matches a port such as 40137.
  if (/Authentication failed|could not read Username|returned error: 40[13]\b|\bHTTP\/[\d.]+ 40[13]\b/i.test(clean)) {
    return new StallingError(Reason.AuthenticationFailed, `${what}: authentication failed (${lastLines})`, { cause: err });
  }
  if (/couldn't find remote ref|not our ref|did not match any|unknown revision|Remote branch .* not found/i.test(clean)) {
    return new StallingError(Reason.GitOperationFailed, `${what}: ${lastLines}`, { cause: err });
  }
  if (/SSL certificate problem|server certificate verification failed|certificate/i.test(clean)) {
    return new StallingError(Reason.GitOperationFailed, `${what}: TLS verification failed (${lastLines}); set caBundle or insecureSkipTLSVerify`, {
      cause: err,
    });
  }
  return new TransientError(Reason.GitOperationFailed, `${what}: ${lastLines}`, { cause: err });
}

/** Removes the lock files a killed git leaves in `gitDir` (index, HEAD, shallow, config, refs). */
async function removeStaleLocks(gitDir: string): Promise<void> {
  for (const name of ['index.lock', 'HEAD.lock', 'shallow.lock', 'config.lock', 'packed-refs.lock']) {
    await rm(join(gitDir, name), { force: true });
  }
}

/** Quotes a word for the shell that runs GIT_SSH_COMMAND. */
function shellQuote(word: string): string {
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/** A command runner bound to a folder and an environment: `git(...args)` returns the output. */
type Git = (...args: string[]) => Promise<string>;

/** Kills a git command after this long without output (a hung server or transfer). */
const GIT_IDLE_TIMEOUT_MS = 120_000;

/** A GitSource that runs the git command line. */
export class CliGitSource implements GitSource {
  constructor(private readonly workDir: string) {}

  /**
   * Runs `fn` with the environment git needs for `auth`. Files (key, known_hosts, CA) live in a folder
   * made for this call and removed after it, so that concurrent calls never see each other's files and
   * no credential outlives the command.
   */
  private async withEnv<T>(auth: GitAuth, fn: (env: Record<string, string>) => Promise<T>): Promise<T> {
    const config: [string, string][] = [];
    if (auth.basic) {
      const token = Buffer.from(`${auth.basic.username}:${auth.basic.password}`).toString('base64');
      config.push(['http.extraHeader', `Authorization: Basic ${token}`]);
    }
    let secrets: string | undefined;
    if (auth.caPem || auth.ssh) {
      await mkdir(join(this.workDir, '.auth'), { recursive: true, mode: 0o700 });
      secrets = await mkdtemp(join(this.workDir, '.auth', 'git-'));
    }
    try {
      if (auth.caPem && secrets) {
        await writeFile(join(secrets, 'ca.pem'), auth.caPem, { mode: 0o600 });
        config.push(['http.sslCAInfo', join(secrets, 'ca.pem')]);
      }
      if (auth.insecureSkipTLSVerify) config.push(['http.sslVerify', 'false']);
      const env: Record<string, string> = {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        HOME: process.env.HOME ?? '/tmp',
        GIT_TERMINAL_PROMPT: '0',
        GIT_CONFIG_NOSYSTEM: '1',
        GIT_CONFIG_COUNT: String(config.length),
      };
      config.forEach(([k, v], i) => {
        env[`GIT_CONFIG_KEY_${i}`] = k;
        env[`GIT_CONFIG_VALUE_${i}`] = v;
      });
      if (auth.ssh && secrets) {
        const id = join(secrets, 'id');
        const known = join(secrets, 'known_hosts');
        await writeFile(id, auth.ssh.privateKey.endsWith('\n') ? auth.ssh.privateKey : `${auth.ssh.privateKey}\n`, { mode: 0o600 });
        await writeFile(known, auth.ssh.knownHosts ?? '', { mode: 0o600 });
        // Host keys are always checked and never learned (see the module comment); BatchMode: no prompt ever.
        env.GIT_SSH_COMMAND = [
          'ssh',
          '-i',
          shellQuote(id),
          '-o',
          'IdentitiesOnly=yes',
          '-o',
          'BatchMode=yes',
          '-o',
          `UserKnownHostsFile=${shellQuote(known)}`,
          '-o',
          'StrictHostKeyChecking=yes',
          '-o',
          'UpdateHostKeys=no',
        ].join(' ');
      }
      return await fn(env);
    } finally {
      if (secrets) await rm(secrets, { recursive: true, force: true });
    }
  }

  private git(dir: string | undefined, env: Record<string, string>): Git {
    return async (...args) => await runGit(args, { ...(dir ? { cwd: dir } : {}), env, idleTimeoutMs: GIT_IDLE_TIMEOUT_MS });
  }

  async resolve(target: GitFetchTarget): Promise<string> {
    if (target.revision && SHA.test(target.revision)) return target.revision;
    const ref = target.revision ? target.revision : target.branch ? `refs/heads/${target.branch}` : 'HEAD';
    let out: string;
    try {
      out = await this.withEnv(target.auth, (env) => this.git(undefined, env)('ls-remote', target.repo, ref, ...(target.revision ? [`${ref}^{}`] : [])));
    } catch (err) {
      throw translateGitError(target.repo, 'ls-remote', err);
    }
    const lines = out
      .trim()
      .split('\n')
      .filter(Boolean)
      .map((l) => l.split('\t'));
    // For annotated tags prefer the peeled commit (ref^{}).
    const peeled = lines.find(([, name]) => name?.endsWith('^{}'));
    const exact = lines.find(([, name]) => name === ref || name === `refs/tags/${ref}` || name === `refs/heads/${ref}`);
    const sha = (peeled ?? exact ?? lines[0])?.[0];
    if (!sha || !SHA.test(sha)) {
      const what = target.revision ? `revision ${target.revision}` : target.branch ? `branch ${target.branch}` : 'HEAD';
      throw new StallingError(Reason.GitOperationFailed, `git ls-remote of ${target.repo}: ${what} not found`);
    }
    return sha;
  }

  async checkout(key: string, target: GitFetchTarget, commit: string): Promise<string> {
    const dir = join(this.workDir, 'repos', key.replace(/[^a-zA-Z0-9.-]/g, '_'));
    try {
      return await this.withEnv(target.auth, async (env) => {
        const exists = await stat(join(dir, '.git')).then(
          () => true,
          () => false,
        );
        if (!exists) {
          await rm(dir, { recursive: true, force: true });
          await mkdir(dir, { recursive: true });
          await this.git(dir, env)('init', '--quiet');
        }
        // Only one reconcile of this GitRepo runs at a time, so a lock file here is left by a git that was
        // killed (the controller crashed or was stopped mid-checkout); it would fail every later checkout.
        await removeStaleLocks(join(dir, '.git'));
        const git = this.git(dir, env);
        // One command sets origin whether or not it exists (the GitRepo's URL may have changed).
        await git('config', 'remote.origin.url', target.repo);
        const head = await git('rev-parse', '--verify', '-q', 'HEAD').catch(() => '');
        if (head.trim() !== commit) {
          try {
            await git('fetch', '--quiet', '--depth=1', '--no-tags', 'origin', commit);
          } catch {
            // Servers that refuse fetching an arbitrary SHA: fetch the branch (or everything) and look for it.
            const refspec = target.branch ? `+refs/heads/${target.branch}:refs/remotes/origin/${target.branch}` : '+refs/*:refs/remotes/origin/*';
            await git('fetch', '--quiet', '--no-tags', 'origin', refspec);
          }
        }
        // Even at the right HEAD: the files must be exactly the commit's, whatever an interrupted run left.
        try {
          await git('checkout', '--quiet', '--force', '--detach', commit);
          await git('clean', '-ffdxq');
        } catch (err) {
          // A local failure: start from an empty folder next time rather than fail the same way forever.
          await rm(dir, { recursive: true, force: true });
          throw err;
        }
        return dir;
      });
    } catch (err) {
      throw translateGitError(target.repo, 'fetch', err);
    }
  }

  async commitTime(key: string, commit: string): Promise<string | undefined> {
    const dir = join(this.workDir, 'repos', key.replace(/[^a-zA-Z0-9.-]/g, '_'));
    const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp', GIT_CONFIG_NOSYSTEM: '1' };
    const out = await runGit(['log', '-1', '--format=%cI', commit], { cwd: dir, env, idleTimeoutMs: 30_000 }).catch(() => '');
    return out.trim() || undefined;
  }

  async forget(key: string): Promise<void> {
    await rm(join(this.workDir, 'repos', key.replace(/[^a-zA-Z0-9.-]/g, '_')), { recursive: true, force: true });
    await rm(join(this.workDir, '.auth', key.replace(/[^a-zA-Z0-9.-]/g, '_')), { recursive: true, force: true });
  }
}
