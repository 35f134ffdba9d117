import { execFile } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort, waitFor } from './net.js';
import { spawnManaged, type ManagedProcess } from './proc.js';

const run = promisify(execFile);

/**
 * A real git server over SSH: OpenSSH's sshd (Debian openssh-server) on a loopback port, with a host
 * key and a client key generated for the run. The client key's authorized_keys entry forces a small
 * script (`command=`, `restrict`) that runs only git-upload-pack or git-receive-pack on a repository of
 * `rootDir`, so the key grants nothing but fetch and push there. No password authentication.
 *
 * It serves the same folder as the HTTP git server (stack/git.ts): push over HTTP with that
 * server's helpers, fetch over SSH at {@link SshGitServer.repoUrl}.
 */

/** Options for {@link startSshGitServer}. */
export interface SshGitServerOptions {
  /** Folder holding the bare repositories (the HTTP git server's rootDir). */
  rootDir: string;
  /** Folder for this server's keys, configuration, pid file and log. */
  dir: string;
  /** Path of sshd (must be absolute: sshd re-executes itself); default /usr/sbin/sshd. */
  sshd?: string;
}

/** An SSH key pair as files and text. */
export interface SshKeyPair {
  privateKeyFile: string;
  /** OpenSSH private key (PEM-like text), as a kubernetes.io/ssh-auth Secret's ssh-privatekey holds it. */
  privateKey: string;
  /** One line: `ssh-ed25519 AAAA... comment`. */
  publicKey: string;
}

/** A running SSH git server. */
export interface SshGitServer {
  readonly host: string;
  readonly port: number;
  /** The user git connects as (the one running the tests; sshd cannot switch users otherwise). */
  readonly user: string;
  /** The key authorized to fetch and push. */
  readonly clientKey: SshKeyPair;
  /** known_hosts line for this server's host key: `[127.0.0.1]:PORT ssh-ed25519 AAAA...`. */
  readonly knownHosts: string;
  readonly logFile: string;
  /** `ssh://USER@127.0.0.1:PORT/NAME.git`. */
  repoUrl(name: string): string;
  /** The log so far (sshd -e: connections, accepted and refused keys). */
  logs(): Promise<string>;
  /** Stops sshd (for outage faults); {@link start} starts it again on the same port with the same keys. */
  stop(): Promise<void>;
  start(): Promise<void>;
}

/** Generates an ed25519 key pair without passphrase at `file` (and `file.pub`). */
export async function generateSshKey(file: string, comment: string): Promise<SshKeyPair> {
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', file]);
  return { privateKeyFile: file, privateKey: await readFile(file, 'utf8'), publicKey: (await readFile(`${file}.pub`, 'utf8')).trim() };
}

/** The known_hosts line that names `host:port` with `publicKey` (`type base64 [comment]`). */
export function knownHostsLine(host: string, port: number, publicKey: string): string {
  const [type, key] = publicKey.trim().split(/\s+/);
  return `${port === 22 ? host : `[${host}]:${port}`} ${type ?? ''} ${key ?? ''}\n`;
}

/**
 * The forced command of the client key. sshd runs it with the client's request in
 * SSH_ORIGINAL_COMMAND, e.g. `git-upload-pack '/name.git'`; anything else, and any path that is not one
 * repository folder directly under the root, is refused.
 */
function gitServeScript(rootDir: string): string {
  if (rootDir.includes("'")) throw new Error(`the git root ${rootDir} must not contain a single quote`);
  return `#!/bin/sh
set -f
root='${rootDir}'
case "$SSH_ORIGINAL_COMMAND" in
  "git-upload-pack '"*"'"|"git-receive-pack '"*"'") ;;
  *) echo "this server runs only git-upload-pack and git-receive-pack" >&2; exit 1 ;;
esac
cmd=\${SSH_ORIGINAL_COMMAND%% *}
repo=\${SSH_ORIGINAL_COMMAND#* \\'}
repo=\${repo%\\'}
repo=\${repo#/}
case "$repo" in
  ''|.*|*[!A-Za-z0-9._-]*) echo "no such repository: $repo" >&2; exit 1 ;;
esac
[ -d "$root/$repo" ] || { echo "no such repository: $repo" >&2; exit 1; }
exec "$cmd" "$root/$repo"
`;
}

function sshdConfig(o: { port: number; dir: string; user: string }): string {
  return [
    `Port ${o.port}`,
    'ListenAddress 127.0.0.1',
    `HostKey ${join(o.dir, 'host_ed25519')}`,
    `PidFile ${join(o.dir, 'sshd.pid')}`,
    `AuthorizedKeysFile ${join(o.dir, 'authorized_keys')}`,
    `AllowUsers ${o.user}`,
    // Root may log in only with a key whose authorized_keys entry forces a command.
    'PermitRootLogin forced-commands-only',
    'PubkeyAuthentication yes',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'UsePAM no',
    // The run folder lives under /tmp (world-writable), which StrictModes would refuse.
    'StrictModes no',
    // git sends GIT_PROTOCOL=version=2 this way.
    'AcceptEnv GIT_PROTOCOL',
    'PermitUserEnvironment no',
    'AllowTcpForwarding no',
    'X11Forwarding no',
    'LogLevel VERBOSE',
    '',
  ].join('\n');
}

/** Starts sshd serving the repositories of `rootDir`; see {@link SshGitServerOptions}. */
export async function startSshGitServer(options: SshGitServerOptions): Promise<SshGitServer> {
  const sshd = options.sshd ?? '/usr/sbin/sshd';
  const { dir, rootDir } = options;
  await mkdir(dir, { recursive: true, mode: 0o700 });
  // Debian's service creates the privilege separation folder at boot; sshd refuses to start without it.
  await mkdir('/run/sshd', { recursive: true, mode: 0o755 });
  const user = userInfo().username;
  let port = await freePort();
  const hostKey = await generateSshKey(join(dir, 'host_ed25519'), 'flotilla-e2e-host');
  const clientKey = await generateSshKey(join(dir, 'client_ed25519'), 'flotilla-e2e-client');
  const serve = join(dir, 'git-serve.sh');
  await writeFile(serve, gitServeScript(rootDir), { mode: 0o755 });
  await writeFile(join(dir, 'authorized_keys'), `command="${serve}",restrict ${clientKey.publicKey}\n`, { mode: 0o600 });
  const configFile = join(dir, 'sshd_config');
  await writeFile(configFile, sshdConfig({ port, dir, user }), { mode: 0o600 });
  await run(sshd, ['-t', '-f', configFile]).catch((err: unknown) => {
    throw new Error(`sshd rejects the generated configuration ${configFile}: ${err instanceof Error ? err.message : String(err)}`);
  });
  const logFile = join(dir, 'sshd.log');
  let proc: ManagedProcess | undefined;

  const logs = async () => await readFile(logFile, 'utf8').catch(() => '');
  const start = async (): Promise<void> => {
    if (proc?.running()) return;
    const mark = (await logs()).length;
    const p = spawnManaged(`sshd (git, port ${port})`, sshd, ['-D', '-e', '-f', configFile], logFile);
    proc = p;
    await waitFor(
      async () => {
        if (!p.running()) throw new Error(`sshd exited: ${(await logs()).slice(mark).trim().split('\n').slice(-5).join(' | ')}`);
        return (await logs()).slice(mark).includes(`Server listening on 127.0.0.1 port ${port}`);
      },
      { what: `sshd to listen on 127.0.0.1:${port}`, timeoutMs: 20_000, intervalMs: 50 },
    );
  };
  // A port taken by another program between the reservation and sshd's bind: start again on another one.
  for (let attempt = 1; ; attempt++) {
    try {
      await start();
      break;
    } catch (err) {
      if (attempt >= 3 || !String(err).includes('Address already in use')) throw err;
      await proc?.stop();
      port = await freePort();
      await writeFile(configFile, sshdConfig({ port, dir, user }), { mode: 0o600 });
    }
  }

  return {
    host: '127.0.0.1',
    port,
    user,
    clientKey,
    logFile,
    knownHosts: knownHostsLine('127.0.0.1', port, hostKey.publicKey),
    repoUrl: (name) => `ssh://${user}@127.0.0.1:${port}/${name}.git`,
    logs,
    async stop() {
      await proc?.stop();
    },
    start,
  };
}
