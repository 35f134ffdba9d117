import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { join, resolve, dirname } from 'node:path';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { API_VERSION } from '../../lib/api/index.js';
import { KubeClient, type KubeObject } from '../../lib/kube/client.js';
import { decodeSecretData } from '../../lib/kube/secret.js';
import type { Stack } from '../../stack/stack.js';
import { freePort, waitFor } from '../../stack/net.js';
import { spawnManaged, type ManagedProcess } from '../../stack/proc.js';
import { installCrds } from '../../stack/crds.js';

/**
 * The controller and one agent per downstream cluster as REAL child processes (`node --import tsx
 * controller/main.ts` / `agent/main.ts`), registered through the token flow like `flotilla dev up`,
 * each logging to its own file. Every name (workspace, registration, system and agent namespaces,
 * lease) derives from one workspace so several suites can share the stack without colliding.
 */

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const MANAGER = 'flotilla-e2e-processes';

/** A Flotilla process that can be killed (-9) and started again with the same arguments and log file. */
export interface FlotillaProcess {
  readonly name: string;
  /** File receiving stdout and stderr of every incarnation (appended). */
  readonly logFile: string;
  /** Pid of the current incarnation. */
  pid(): number | undefined;
  running(): boolean;
  /** SIGKILL to the process group; resolves once it has exited. */
  kill9(): Promise<void>;
  /** Starts a new incarnation (the previous one must have exited). */
  restart(): void;
  /** SIGTERM, then SIGKILL after a grace period. */
  stop(): Promise<void>;
  /** The log text of every incarnation so far. */
  logs(): Promise<string>;
  /** Port of its /metrics server on 127.0.0.1. */
  readonly metricsPort: number;
}

/** A downstream cluster to register, with its labels. */
export interface FleetCluster {
  name: string;
  labels: Record<string, string>;
}

/** Options for {@link startFleet}. */
export interface FleetOptions {
  /** Workspace namespace upstream; also prefixes every other namespace and the lease name. */
  workspace: string;
  clusters: FleetCluster[];
  /** Controller polling interval for GitRepos without one (default 2s). */
  pollingInterval?: string;
}

/** The running fleet. */
export interface Fleet {
  readonly workspace: string;
  readonly registrationNamespace: string;
  /** The agents' namespace downstream (bootstrap, state Secret, inventories). */
  readonly agentNamespace: string;
  readonly logDir: string;
  readonly controller: FlotillaProcess;
  readonly agents: Record<string, FlotillaProcess>;
  /** An upstream client (the test's own, admin). */
  readonly upstream: KubeClient;
  /** Secret values handed out by the registration flow (registration tokens), for leak scans. */
  readonly secrets: string[];
  /** Fails naming the process and its last log lines if any process exited on its own. */
  assertAlive(): Promise<void>;
  stop(): Promise<void>;
}

function flotillaProcess(name: string, args: string[], logFile: string, metricsPort: number): FlotillaProcess {
  let current: ManagedProcess | undefined;
  const start = () => {
    current = spawnManaged(name, process.execPath, ['--import', 'tsx', ...args], logFile, { cwd: ROOT });
  };
  start();
  return {
    name,
    logFile,
    metricsPort,
    pid: () => current?.child.pid,
    running: () => current?.running() ?? false,
    async kill9() {
      const pid = current?.child.pid;
      if (!current || pid === undefined || !current.running()) return;
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
      await current.exited;
      await current.stop(0); // forget it in the cleanup registry
    },
    restart() {
      if (current?.running()) throw new Error(`${name} is still running (pid ${current.child.pid ?? '?'})`);
      start();
    },
    async stop() {
      await current?.stop(10_000);
    },
    async logs() {
      return await readFile(logFile, 'utf8').catch(() => '');
    },
  };
}

async function readSecretData(kube: KubeClient, namespace: string, name: string): Promise<Record<string, string> | undefined> {
  const s = await kube.get<KubeObject & { data?: Record<string, string> }>({ apiVersion: 'v1', kind: 'Secret', namespace, name });
  if (!s?.data) return undefined;
  return decodeSecretData(s.data);
}

async function tail(p: FlotillaProcess): Promise<string> {
  return (await p.logs()).trim().split('\n').slice(-10).join('\n');
}

/**
 * Installs the CRDs, starts the controller (leader election on, in the workspace's own namespaces),
 * creates a ClusterRegistrationToken, writes each cluster's bootstrap Secret and starts its agent,
 * then waits until every cluster is registered (a Cluster exists for each in the workspace).
 */
export async function startFleet(stack: Stack, options: FleetOptions): Promise<Fleet> {
  const ws = options.workspace;
  const registrationNamespace = `${ws}-registration`;
  const systemNamespace = `${ws}-system`;
  const agentNamespace = `${ws}-agent`;
  const logDir = await mkdtemp(join(tmpdir(), `flotilla-${ws}-`));
  await mkdir(join(logDir, 'cache'), { recursive: true });
  const upstreamPlane = stack.cluster('upstream');
  const upstream = await KubeClient.fromKubeConfig(upstreamPlane.kubeConfig());
  await installCrds(upstream);
  for (const ns of [ws, registrationNamespace, systemNamespace]) {
    await upstream.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } }, MANAGER);
  }
  const caFile = join(logDir, 'upstream-ca.crt');
  await writeFile(caFile, upstreamPlane.caPem);
  const controllerMetricsPort = await freePort();
  const controller = flotillaProcess(
    'controller',
    [
      'controller/main.ts',
      '--kubeconfig',
      upstreamPlane.kubeconfigPath,
      '--workspace-namespace',
      ws,
      '--registration-namespace',
      registrationNamespace,
      '--system-namespace',
      systemNamespace,
      '--lease-name',
      `${ws}-controller`,
      '--leader-election',
      'true',
      '--api-server-url',
      upstreamPlane.server,
      '--api-server-ca-file',
      caFile,
      '--work-dir',
      join(logDir, 'controller'),
      '--default-polling-interval',
      options.pollingInterval ?? '2s',
      '--probe-port',
      String(await freePort()),
      '--metrics-port',
      String(controllerMetricsPort),
    ],
    join(logDir, 'controller.log'),
    controllerMetricsPort,
  );
  const agents: Record<string, FlotillaProcess> = {};
  const secrets: string[] = [];
  const fleet: Fleet = {
    workspace: ws,
    registrationNamespace,
    agentNamespace,
    logDir,
    controller,
    agents,
    upstream,
    secrets,
    async assertAlive() {
      for (const p of [controller, ...Object.values(agents)]) {
        if (!p.running()) throw new Error(`the ${p.name} process exited; last lines of ${p.logFile}:\n${await tail(p)}`);
      }
    },
    async stop() {
      await Promise.all([controller, ...Object.values(agents)].map((p) => p.stop()));
      await upstream.close();
    },
  };
  try {
    await registerAgents(fleet, stack, options.clusters);
  } catch (err) {
    await fleet.stop();
    throw err;
  }
  return fleet;
}

async function registerAgents(fleet: Fleet, stack: Stack, clusters: FleetCluster[]): Promise<void> {
  const { upstream, workspace: ws } = fleet;
  const tokenName = `${ws}-token`;
  await upstream.apply(
    { apiVersion: API_VERSION, kind: 'ClusterRegistrationToken', metadata: { name: tokenName, namespace: ws }, spec: { ttl: '24h' } },
    MANAGER,
  );
  const token = await waitFor(
    async () => {
      await fleet.assertAlive();
      const data = await readSecretData(upstream, ws, tokenName);
      return data?.token ? data : undefined;
    },
    { what: `the registration token Secret ${ws}/${tokenName}`, timeoutMs: 90_000, context: () => `see ${fleet.logDir}` },
  );
  fleet.secrets.push(token.token ?? '');
  for (const cluster of clusters) {
    const plane = stack.cluster(cluster.name);
    const downstream = await KubeClient.fromKubeConfig(plane.kubeConfig());
    try {
      await downstream.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: fleet.agentNamespace } }, MANAGER);
      await downstream.apply(
        {
          apiVersion: 'v1',
          kind: 'Secret',
          metadata: { name: 'flotilla-agent-bootstrap', namespace: fleet.agentNamespace },
          stringData: {
            apiServerURL: token.apiServerURL ?? '',
            apiServerCA: token.apiServerCA ?? '',
            token: token.token ?? '',
            namespace: ws,
            registrationNamespace: fleet.registrationNamespace,
            clusterLabels: JSON.stringify({ ...cluster.labels, 'flotilla.dev/cluster-name': cluster.name }),
          },
        },
        MANAGER,
      );
    } finally {
      await downstream.close();
    }
    const metricsPort = await freePort();
    fleet.agents[cluster.name] = flotillaProcess(
      `agent-${cluster.name}`,
      [
        'agent/main.ts',
        '--kubeconfig',
        plane.kubeconfigPath,
        '--namespace',
        fleet.agentNamespace,
        '--cache-dir',
        join(fleet.logDir, 'cache', cluster.name),
        '--probe-port',
        String(await freePort()),
        '--probe-address',
        '127.0.0.1',
        '--metrics-port',
        String(metricsPort),
        '--resync',
        '5s',
        '--heartbeat',
        '5s',
      ],
      join(fleet.logDir, `agent-${cluster.name}.log`),
      metricsPort,
    );
  }
  await waitFor(
    async () => {
      await fleet.assertAlive();
      const list = await upstream.list({ apiVersion: API_VERSION, kind: 'Cluster', namespace: ws });
      return list.items.length >= clusters.length;
    },
    { what: `${clusters.length} clusters to register in ${ws}`, timeoutMs: 120_000, context: () => `see ${fleet.logDir}` },
  );
}

/** Every log file of the fleet's processes, concatenated (for secret scans). */
export async function fleetLogs(fleet: Fleet): Promise<{ name: string; text: string }[]> {
  return await Promise.all([fleet.controller, ...Object.values(fleet.agents)].map(async (p) => ({ name: p.name, text: await p.logs() })));
}

/** Removes the fleet's log folder (call after the scans). */
export async function removeFleetDir(fleet: Fleet): Promise<void> {
  await rm(fleet.logDir, { recursive: true, force: true, maxRetries: 5 });
}
