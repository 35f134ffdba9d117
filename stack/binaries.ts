import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawn } from 'node:child_process';

/** Paths of the real programs the stack runs, as written by stack/tools/install.sh. */
export interface StackBinaries {
  kubeApiserver: string;
  kubeControllerManager: string;
  etcd: string;
  registry: string;
  git: string;
  htpasswd: string;
  /** OpenSSH's sshd (Debian openssh-server), for the SSH git server. */
  sshd: string;
  helm: string;
  kustomize: string;
  oras: string;
  /** The cosign CLI (with --extras; the signing e2e): absent from manifests written before it was added. */
  cosign?: string;
  /** Distribution v3 (with --extras; stack/registry.ts `distribution-3`): absent from manifests written before it was added. */
  distributionV3?: string;
  k8sVersion: string;
  etcdVersion: string;
}

/** The per-machine cache folder (outside the repository), overridable with FLOTILLA_CACHE. */
export function cacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.FLOTILLA_CACHE ?? join(homedir(), '.cache', 'flotilla');
}

/** The installer script's path. */
export const INSTALL_SCRIPT = join(dirname(fileURLToPath(import.meta.url)), 'tools', 'install.sh');

/**
 * Runs the installer (with `node`, also the real node's programs: stack/node-binaries.ts) (a no-op when everything is cached; otherwise it builds from pinned versions and
 * prints progress to stderr), then returns the binary paths. Fails naming the part that could not be had.
 */
export async function ensureBinaries(options: { extras?: boolean; node?: boolean } = {}): Promise<StackBinaries> {
  const args = [INSTALL_SCRIPT, ...(options.extras ? ['--extras'] : []), ...(options.node ? ['--node'] : [])];
  const code = await new Promise<number | null>((resolve) => {
    const child = spawn('bash', args, { stdio: ['ignore', 'inherit', 'inherit'] });
    child.on('exit', resolve);
    child.on('error', () => resolve(null));
  });
  if (code !== 0) throw new Error(`installing the stack's binaries failed (exit ${code}); the installer printed the part and the cause above`);
  return await readBinaries();
}

/** Reads the binary paths the installer recorded, checking each one exists. */
export async function readBinaries(): Promise<StackBinaries> {
  const file = join(cacheDir(), 'stack-binaries.json');
  const parsed = JSON.parse(await readFile(file, 'utf8')) as StackBinaries;
  for (const key of ['kubeApiserver', 'kubeControllerManager', 'etcd', 'registry', 'git', 'htpasswd'] as const) {
    if (!existsSync(parsed[key])) throw new Error(`stack binary ${key} is missing at ${parsed[key]}; run ${INSTALL_SCRIPT}`);
  }
  return parsed;
}
