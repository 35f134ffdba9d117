import { mkdir, mkdtemp, rename, rm, writeFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { ensureBinaries, type StackBinaries } from './binaries.js';
import { startControlPlane, type ControlPlane } from './kube.js';
import { startGitServer, type GitServer } from './git.js';
import { startSshGitServer, type SshGitServer } from './git-ssh.js';
import { startRegistry, type RegistryHandle, type RegistryImplementation, type RegistryMode } from './registry.js';
import { stopAll } from './proc.js';
import { assertNodeAvailable, NODE_IP, startNode, type RealNode } from './node.js';
import { readNodeBinaries } from './node-binaries.js';

/**
 * The complete local environment: N real Kubernetes control planes, real Docker Distribution
 * registries and a real git server, all on loopback with ports picked at run time.
 */

/** Options for {@link startStack}. */
export interface StackOptions {
  /** Cluster names; default upstream, downstream-1, downstream-2. */
  clusters?: string[];
  /** Clusters that also run kube-controller-manager; default ["upstream"]. */
  controllerManager?: string[];
  /** Registry modes to start; default ["http"]. */
  registries?: RegistryMode[];
  /** Which Distribution serves them (stack/registry.ts); default `distribution-2`, Debian's. */
  registryImplementation?: RegistryImplementation;
  /** Start the git server; default true. */
  git?: boolean;
  /** Also serve the git server's repositories over SSH (sshd); default true when git is started. */
  sshGit?: boolean;
  /**
   * Give this cluster one real node (stack/node.ts: kubelet, containerd, kube-scheduler; its
   * kube-controller-manager runs too). Needs the http registry (added when missing). One per machine.
   */
  node?: string;
  /** Working folder; default a new temporary one (removed on stop unless keepDir). */
  dir?: string;
  keepDir?: boolean;
  /** Progress messages. */
  log?: (message: string) => void;
}

/** What other processes need to reach the stack; written as JSON to `<dir>/stack.json`. */
export interface StackDescription {
  dir: string;
  clusters: Record<string, { server: string; kubeconfig: string }>;
  registries: Partial<
    Record<RegistryMode, { host: string; url: string; implementation?: RegistryImplementation; caFile?: string; username?: string; password?: string }>
  >;
  git?: { url: string; username: string; password: string };
  /** The same repositories over SSH: `${url}/NAME.git` with the client key, checking the host key against knownHosts. */
  sshGit?: { url: string; clientKeyFile: string; knownHosts: string };
  /** The real node, when one was asked for. */
  node?: { cluster: string; nodeName: string; ip: string; images: { busybox: string; pause: string }; startupMs: number };
}

/** A running stack. */
export interface Stack {
  readonly dir: string;
  readonly binaries: StackBinaries;
  readonly clusters: Record<string, ControlPlane>;
  readonly registries: Partial<Record<RegistryMode, RegistryHandle>>;
  readonly git: GitServer | undefined;
  /** The same repositories over SSH (see stack/git-ssh.ts). */
  readonly sshGit: SshGitServer | undefined;
  /** The real node (see {@link StackOptions.node}). */
  readonly node: RealNode | undefined;
  /** The control plane named `name`, or an error naming the ones that exist. */
  cluster(name: string): ControlPlane;
  /** The registry in `mode`, or an error if that mode was not started. */
  registry(mode: RegistryMode): RegistryHandle;
  describe(): StackDescription;
  stop(): Promise<void>;
}

export const DEFAULT_CLUSTERS = ['upstream', 'downstream-1', 'downstream-2'];

/** Waits for every promise; then rejects with the first failure, if any. */
async function settleAll(parts: Promise<unknown>[]): Promise<void> {
  const failed = (await Promise.allSettled(parts)).find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
}

/** Starts the stack: builds or reuses binaries, then starts every part in parallel. */
export async function startStack(options: StackOptions = {}): Promise<Stack> {
  const log = options.log ?? ((m: string) => process.stderr.write(`[flotilla-stack] ${m}\n`));
  if (options.node !== undefined) await assertNodeAvailable();
  const binaries = await ensureBinaries({ node: options.node !== undefined });
  const nodeBinaries = options.node !== undefined ? await readNodeBinaries() : undefined;
  const dir = options.dir ?? (await mkdtemp(join(tmpdir(), 'flotilla-stack-')));
  await mkdir(dir, { recursive: true });
  const names = options.clusters ?? DEFAULT_CLUSTERS;
  const withKcm = new Set(options.controllerManager ?? ['upstream']);
  const modes = options.registries ?? ['http'];
  if (options.node !== undefined) {
    if (!names.includes(options.node)) throw new Error(`the real node's cluster ${options.node} is not among the stack's clusters (${names.join(', ')})`);
    if (!modes.includes('http')) modes.push('http');
  }
  const started = Date.now();

  const clusters: Record<string, ControlPlane> = {};
  const registries: Partial<Record<RegistryMode, RegistryHandle>> = {};
  let git: GitServer | undefined;
  let sshGit: SshGitServer | undefined;
  let node: RealNode | undefined;
  /** Stops every part that started, in-process servers included; used by stop() and after a failed start. */
  const stopParts = async (): Promise<void> => {
    // The node first: its teardown restores the host while the folder it unmounts still exists.
    const problems = (await node?.stop()) ?? [];
    if (problems.length > 0) log(`the real node left host changes behind:\n${problems.join('\n')}`);
    await git?.stop();
    await sshGit?.stop();
    await Promise.all(Object.values(registries).map((r) => r.stop()));
    await Promise.all(Object.values(clusters).map((c) => c.stop()));
    await stopAll();
  };
  try {
    // Every part is waited for, failed or not, before the error stops what started: with Promise.all a part
    // still starting when another failed came up after the clean-up and kept the test process alive.
    await settleAll([
      ...names.map(async (name) => {
        log(`starting control plane ${name}`);
        clusters[name] = await startControlPlane({
          name,
          dir: join(dir, 'clusters', name),
          binaries,
          controllerManager: withKcm.has(name),
          node: name === options.node,
          // Every cluster of a stack with a node: an agent Pod reaches its own and the upstream API server.
          ...(options.node !== undefined ? { podReachableAt: NODE_IP } : {}),
        });
        log(`control plane ${name} ready at ${clusters[name]?.server}`);
      }),
      ...modes.map(async (mode) => {
        registries[mode] = await startRegistry({
          mode,
          rootDir: join(dir, 'registry', mode),
          implementation: options.registryImplementation,
          ...(options.node !== undefined ? { listen: '0.0.0.0' } : {}),
        });
        log(`registry (${mode}) ready at ${registries[mode]?.url}`);
      }),
      (async () => {
        if (options.git === false) return;
        git = await startGitServer({ rootDir: join(dir, 'git') });
        log(`git server ready at ${git.url}`);
        if (options.sshGit === false) return;
        sshGit = await startSshGitServer({ rootDir: git.rootDir, dir: join(dir, 'git-ssh'), sshd: binaries.sshd });
        log(`ssh git server ready at ssh://${sshGit.user}@127.0.0.1:${sshGit.port}`);
      })(),
    ]);
    if (options.node !== undefined && nodeBinaries) {
      const cluster = clusters[options.node];
      const registry = registries.http;
      if (!cluster || !registry) throw new Error(`the real node needs cluster ${options.node} and the http registry`);
      log(`starting a real node for ${options.node}`);
      node = await startNode({
        cluster: options.node,
        kubeconfigPath: cluster.kubeconfigPath,
        dir: join(dir, 'node'),
        binaries: nodeBinaries,
        registryHost: registry.host,
        log,
      });
    }
  } catch (err) {
    // Not only the processes: the git server runs in this process, and left listening after a failed start
    // it kept the test process alive (an e2e shard hung after its stack failed to start).
    await stopParts().catch((stopErr: unknown) => log(`stopping the parts that started failed too: ${String(stopErr)}`));
    throw err;
  }
  log(`stack ready in ${((Date.now() - started) / 1000).toFixed(1)} s (folder ${dir})`);

  const stack: Stack = {
    dir,
    binaries,
    clusters,
    registries,
    git,
    sshGit,
    node,
    cluster(name) {
      const c = clusters[name];
      if (!c) throw new Error(`no cluster named ${name} in the stack (have: ${Object.keys(clusters).join(', ')})`);
      return c;
    },
    registry(mode) {
      const r = registries[mode];
      if (!r) throw new Error(`the stack has no registry in mode ${mode} (have: ${Object.keys(registries).join(', ')})`);
      return r;
    },
    describe() {
      const desc: StackDescription = { dir, clusters: {}, registries: {} };
      for (const [name, c] of Object.entries(clusters)) desc.clusters[name] = { server: c.server, kubeconfig: c.kubeconfigPath };
      for (const [mode, r] of Object.entries(registries) as [RegistryMode, RegistryHandle][]) {
        desc.registries[mode] = { host: r.host, url: r.url, implementation: r.implementation, caFile: r.caFile, username: r.username, password: r.password };
      }
      if (git) desc.git = { url: git.url, username: git.username, password: git.password };
      if (sshGit)
        desc.sshGit = {
          url: `ssh://${sshGit.user}@${sshGit.host}:${sshGit.port}`,
          clientKeyFile: sshGit.clientKey.privateKeyFile,
          knownHosts: sshGit.knownHosts,
        };
      if (node) desc.node = { cluster: node.cluster, nodeName: node.nodeName, ip: node.ip, images: node.images, startupMs: node.startupMs };
      return desc;
    },
    async stop() {
      await stopParts();
      if (!options.keepDir && options.dir === undefined) await rm(dir, { recursive: true, force: true });
    },
  };
  // Written whole, then renamed into place: `flotilla dev` and the e2e's node stack wait for stack.json to exist
  // and read it at once, and must never read a half-written file.
  const described = join(dir, 'stack.json');
  await writeFile(`${described}.tmp`, JSON.stringify(stack.describe(), null, 2), { mode: 0o600 });
  await rename(`${described}.tmp`, described);
  return stack;
}

/** Reads a stack description written by {@link startStack}. */
export async function readStackDescription(dir: string): Promise<StackDescription> {
  return JSON.parse(await readFile(join(dir, 'stack.json'), 'utf8')) as StackDescription;
}
