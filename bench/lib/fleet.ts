import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { API_VERSION, DEFAULT_WORKSPACE_NAMESPACE, getCondition, type BundleDeployment, type Cluster } from '../../lib/api/index.js';
import { KubeClient, type KubeObject } from '../../lib/kube/client.js';
import { startGitServer, type GitServer } from '../../stack/git.js';
import { waitFor } from '../../stack/net.js';
import type { RegistryImplementation } from '../../stack/registry.js';
import { readStackDescription, startStack, type StackDescription } from '../../stack/stack.js';
import { installCrds } from '../../stack/crds.js';
import { issueRegistrationToken, writeAgentBootstrap, type RegistrationToken } from '../../stack/bootstrap.js';
import { startFlotillaProcess, type FlotillaProcess } from './procs.js';

/**
 * The fleet the benchmarks run on: the e2e stack (real kube-apiservers + etcd, Docker Distribution, git
 * over HTTP), the CRDs and namespaces upstream, a registration token, and helpers to start the controller
 * and agents as processes, register clusters through the token flow and create GitRepos.
 */

/** Workspace namespace of Clusters and GitRepos. */
export const W = DEFAULT_WORKSPACE_NAMESPACE;
const FIELD_MANAGER = 'flotilla-bench';
const TOKEN_NAME = 'bench';

/** The stack as the benchmarks use it. */
export interface BenchStack {
  desc: StackDescription;
  /** The stack's folder. */
  dir: string;
  /** Scratch folder of this run (logs, caches, taps). */
  work: string;
  /** The http registry's host, which Distribution serves it, its log file and storage folder. */
  registry: { host: string; implementation: RegistryImplementation; logFile: string; storageDir: string };
  /** Pushes commits into the stack's git server folder. */
  git: GitServer;
  /** Admin client of the upstream cluster. */
  up: KubeClient;
  /** `base` made unique to this run (git repositories and GitRepos), so that a reused stack never mixes runs. */
  unique(base: string): string;
  /** Stops what {@link openStack} started and removes the scratch folder unless `keepWork` (then it says where). */
  stop(keepWork: boolean): Promise<void>;
}

/** A client for a kubeconfig file. */
export async function kubeClient(kubeconfig: string): Promise<KubeClient> {
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfig);
  return await KubeClient.fromKubeConfig(kc);
}

/** A KubeConfig loaded from a file. */
export function kubeConfigOf(kubeconfig: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfig);
  return kc;
}

/** Starts the stack (or reads a running one from `reuseDir`), installs the CRDs and prepares upstream. */
export async function openStack(reuseDir: string | undefined, say: (m: string) => void, registryImplementation?: RegistryImplementation): Promise<BenchStack> {
  const work = await mkdtemp(join(tmpdir(), 'flotilla-bench-'));
  let stopStack = async (): Promise<void> => {};
  let dir = reuseDir;
  if (dir === undefined) {
    const stack = await startStack({
      clusters: ['upstream', 'downstream-1', 'downstream-2'],
      controllerManager: ['upstream'],
      registries: ['http'],
      registryImplementation,
      log: (m) => say(m),
    });
    dir = stack.dir;
    stopStack = () => stack.stop();
  }
  const desc = await readStackDescription(dir);
  if (!desc.git || !desc.registries.http) throw new Error(`the stack in ${dir} has no git server or no http registry`);
  // A second handle on the same repositories folder: pushes land where the stack's git server serves from.
  const git = await startGitServer({ rootDir: join(dir, 'git'), username: desc.git.username, password: desc.git.password });
  const up = await kubeClient(desc.clusters.upstream?.kubeconfig ?? '');
  await prepareUpstream(up, desc);
  const regDir = join(dir, 'registry', 'http');
  const runID = randomBytes(3).toString('hex');
  return {
    desc,
    dir,
    work,
    git,
    up,
    unique: (base) => `${base}-${runID}`,
    registry: {
      host: desc.registries.http.host,
      implementation: desc.registries.http.implementation ?? 'distribution-2',
      logFile: join(regDir, 'registry.log'),
      storageDir: join(regDir, 'storage'),
    },
    async stop(keepWork) {
      await git.stop();
      await up.close();
      await stopStack();
      if (keepWork) say(`logs and scratch files kept in ${work}`);
      else await rm(work, { recursive: true, force: true });
    },
  };
}

/** Installs the CRDs, the namespaces and the git credential Secret on an upstream cluster. */
export async function prepareUpstream(up: KubeClient, desc: StackDescription): Promise<void> {
  await installCrds(up);
  for (const ns of [W, 'flotilla-system', 'flotilla-registration']) {
    await up.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } }, FIELD_MANAGER);
  }
  await up.apply(
    {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'bench-git', namespace: W },
      type: 'kubernetes.io/basic-auth',
      stringData: { username: desc.git?.username ?? '', password: desc.git?.password ?? '' },
    },
    FIELD_MANAGER,
  );
}

/** Starts the controller process against upstream (no leader election), tapped when `tapFile` is given. */
export async function startController(
  s: BenchStack,
  name: string,
  options: { tapFile?: string; kubeconfig?: string; metricsPort?: number } = {},
): Promise<FlotillaProcess> {
  const kubeconfig = options.kubeconfig ?? s.desc.clusters.upstream?.kubeconfig ?? '';
  const upstreamDir = join(kubeconfig, '..');
  const server = options.kubeconfig === undefined ? (s.desc.clusters.upstream?.server ?? '') : (kubeConfigOf(kubeconfig).getCurrentCluster()?.server ?? '');
  const workDir = join(s.work, name);
  await mkdir(workDir, { recursive: true });
  return await startFlotillaProcess({
    name,
    entry: 'controller/main.ts',
    logFile: join(s.work, `${name}.log`),
    tapFile: options.tapFile,
    args: [
      '--kubeconfig',
      kubeconfig,
      '--leader-election',
      'false',
      '--work-dir',
      workDir,
      '--api-server-url',
      server,
      '--api-server-ca-file',
      join(upstreamDir, 'ca.crt'),
      '--metrics-port',
      String(options.metricsPort ?? 0),
      '--log-level',
      'warn',
    ],
  });
}

/** Creates the registration token and returns what a bootstrap Secret needs. */
export async function registrationToken(up: KubeClient): Promise<RegistrationToken> {
  return await issueRegistrationToken(up, { namespace: W, name: TOKEN_NAME, manager: FIELD_MANAGER, timeoutMs: 60_000 });
}

/** One cluster to register: its agent's namespace downstream, its name and labels. */
export interface BenchCluster {
  name: string;
  /** The agent's namespace downstream (several agents can share a downstream API server). */
  agentNamespace: string;
  labels: Record<string, string>;
}

/** Writes the agent's namespace and bootstrap Secret downstream (clientID = cluster name, so agents sharing a server differ). */
export async function bootstrap(down: KubeClient, token: RegistrationToken, c: BenchCluster): Promise<void> {
  await writeAgentBootstrap(down, token, {
    agentNamespace: c.agentNamespace,
    workspace: W,
    clientID: `bench-${c.name}`,
    clusterName: c.name,
    labels: c.labels,
    manager: FIELD_MANAGER,
  });
}

/** Starts an agent process for one cluster (bootstrapped already). */
export async function startAgentProcess(
  s: BenchStack,
  kubeconfig: string,
  c: BenchCluster,
  options: { tapFile?: string; cacheDir?: string } = {},
): Promise<FlotillaProcess> {
  const cacheDir = options.cacheDir ?? join(s.work, `cache-${c.name}`);
  await mkdir(cacheDir, { recursive: true });
  return await startFlotillaProcess({
    name: `agent-${c.name}`,
    entry: 'agent/main.ts',
    logFile: join(s.work, `agent-${c.name}.log`),
    tapFile: options.tapFile,
    args: ['--kubeconfig', kubeconfig, '--namespace', c.agentNamespace, '--cache-dir', cacheDir, '--probe-address', '127.0.0.1', '--log-level', 'warn'],
    readyTimeoutMs: 300_000,
  });
}

/** Waits until every named Cluster is registered (has its cluster namespace). */
export async function waitClustersRegistered(up: KubeClient, names: readonly string[], timeoutMs = 600_000): Promise<void> {
  await waitFor(
    async () => {
      const list = await up.list<Cluster & KubeObject>({ apiVersion: API_VERSION, kind: 'Cluster', namespace: W });
      const registered = new Set(list.items.filter((c) => c.status?.namespace).map((c) => c.metadata.name));
      return names.every((n) => registered.has(n));
    },
    { what: `${names.length} clusters to register`, timeoutMs, intervalMs: 1000 },
  );
}

/** GitRepo settings the benchmarks vary. */
export interface BenchGitRepo {
  name: string;
  /** Repository name on the git server. */
  repo: string;
  paths?: string[];
  targets: Record<string, unknown>[];
  /** Registry reference (OCI mode) or undefined (etcd mode). */
  ociReference?: string;
  pollingInterval?: string;
}

/** Creates or updates a GitRepo reading from the stack's git server. */
export async function applyGitRepo(s: BenchStack, g: BenchGitRepo): Promise<void> {
  await s.up.apply(
    {
      apiVersion: API_VERSION,
      kind: 'GitRepo',
      metadata: { name: g.name, namespace: W },
      spec: {
        repo: `${s.desc.git?.url ?? ''}/${g.repo}.git`,
        branch: 'main',
        clientSecretName: 'bench-git',
        pollingInterval: g.pollingInterval ?? '1s',
        ...(g.paths ? { paths: g.paths } : {}),
        targets: g.targets,
        ...(g.ociReference ? { ociRegistry: { reference: g.ociReference, basicHTTP: true } } : {}),
      },
    },
    FIELD_MANAGER,
  );
}

/** Deletes a GitRepo and waits until it is gone (its Bundles and BundleDeployments go first). */
export async function deleteGitRepo(up: KubeClient, name: string, timeoutMs = 600_000): Promise<void> {
  await up.delete({ apiVersion: API_VERSION, kind: 'GitRepo', namespace: W, name });
  await waitFor(async () => (await up.get({ apiVersion: API_VERSION, kind: 'GitRepo', namespace: W, name })) === undefined, {
    what: `GitRepo ${name} to be deleted`,
    timeoutMs,
    intervalMs: 1000,
  });
}

/** True when the agent applied the BundleDeployment's current deployment ID and reports it Ready. */
export function isDeployed(bd: BundleDeployment & KubeObject): boolean {
  return bd.status?.appliedDeploymentID === bd.spec.deploymentID && getCondition(bd.status?.conditions, 'Ready')?.status === 'True';
}

/** The BundleDeployments of a GitRepo, in every cluster namespace. */
export async function bundleDeploymentsOf(up: KubeClient, repoName: string): Promise<(BundleDeployment & KubeObject)[]> {
  return (await up.list<BundleDeployment & KubeObject>({ apiVersion: API_VERSION, kind: 'BundleDeployment' }, `flotilla.dev/repo-name=${repoName}`)).items;
}

/**
 * True when the BundleDeployment carries its Bundle's current contents (deployment IDs are
 * `s-<contentsID>:<optionsHash>`, lib/bundle/id.ts) and the agent applied it and reports it Ready.
 */
export function isCurrent(bd: BundleDeployment & KubeObject, contentsIDs: ReadonlyMap<string, string>): boolean {
  const contents = contentsIDs.get(bd.metadata.labels?.['flotilla.dev/bundle-name'] ?? '');
  return contents !== undefined && bd.spec.deploymentID.startsWith(`s-${contents}:`) && isDeployed(bd);
}

/** Bundle name -> spec.contentsID of a GitRepo's Bundles. */
export async function contentsIDsOf(up: KubeClient, repoName: string): Promise<Map<string, string>> {
  const bundles = await up.list<KubeObject & { spec: { contentsID?: string } }>(
    { apiVersion: API_VERSION, kind: 'Bundle', namespace: W },
    `flotilla.dev/repo-name=${repoName}`,
  );
  return new Map(bundles.items.map((b) => [b.metadata.name, b.spec.contentsID ?? '']));
}

/** Waits until the GitRepo is at `commit` and exactly `expected` BundleDeployments carry that content, deployed and Ready. */
export async function waitDeployed(up: KubeClient, repoName: string, commit: string, expected: number, timeoutMs = 600_000): Promise<void> {
  await waitFor(
    async () => {
      const repo = await up.get<KubeObject & { status?: { commit?: string } }>({ apiVersion: API_VERSION, kind: 'GitRepo', namespace: W, name: repoName });
      if (repo?.status?.commit !== commit) return false;
      const ids = await contentsIDsOf(up, repoName);
      const bds = await bundleDeploymentsOf(up, repoName);
      return bds.length === expected && bds.every((bd) => isCurrent(bd, ids));
    },
    { what: `GitRepo ${repoName} at ${commit.slice(0, 12)} to be Ready on ${expected} bundle deployment(s)`, timeoutMs, intervalMs: 500 },
  );
}
