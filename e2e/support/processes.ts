import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { join, resolve, dirname } from 'node:path';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { API_VERSION } from '../../lib/api/index.js';
import { KubeClient } from '../../lib/kube/client.js';
import type { Stack } from '../../stack/stack.js';
import { freePort, waitFor } from '../../stack/net.js';
import { spawnManaged, type ManagedProcess } from '../../stack/proc.js';
import { installCrds } from '../../stack/crds.js';
import { issueRegistrationToken, writeAgentBootstrap } from '../../stack/bootstrap.js';

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
  /** More flags of this cluster's agent (agent/config.ts), e.g. its bootstrap `--registry-mirrors`. */
  agentArgs?: string[];
}

/** Options for {@link startFleet}. */
export interface FleetOptions {
  /** Workspace namespace upstream; also prefixes every other namespace and the lease name. */
  workspace: string;
  clusters: FleetCluster[];
  /** Controller polling interval for GitRepos without one (default 2s). */
  pollingInterval?: string;
  /** More flags for the controller (e.g. --webhook-address, --shard-id). */
  controllerArgs?: string[];
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
  /**
   * Starts one more controller process (`name`, e.g. a shard's) with the same flags as the first plus
   * `args`; it is stopped with the fleet and watched by {@link Fleet.assertAlive}.
   */
  startController(name: string, args: string[]): Promise<FlotillaProcess>;
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
  const controllerArgs = async (metricsPort: number) => [
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
    String(metricsPort),
  ];
  const controllerMetricsPort = await freePort();
  const controller = flotillaProcess(
    'controller',
    [...(await controllerArgs(controllerMetricsPort)), ...(options.controllerArgs ?? [])],
    join(logDir, 'controller.log'),
    controllerMetricsPort,
  );
  const extraControllers: FlotillaProcess[] = [];
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
    async startController(name, args) {
      const metricsPort = await freePort();
      const p = flotillaProcess(name, [...(await controllerArgs(metricsPort)), ...args], join(logDir, `${name}.log`), metricsPort);
      extraControllers.push(p);
      return p;
    },
    async assertAlive() {
      for (const p of [controller, ...extraControllers, ...Object.values(agents)]) {
        if (!p.running()) throw new Error(`the ${p.name} process exited; last lines of ${p.logFile}:\n${await tail(p)}`);
      }
    },
    async stop() {
      await Promise.all([controller, ...extraControllers, ...Object.values(agents)].map((p) => p.stop()));
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
  const token = await issueRegistrationToken(upstream, {
    namespace: ws,
    name: `${ws}-token`,
    manager: MANAGER,
    check: () => fleet.assertAlive(),
    context: () => `see ${fleet.logDir}`,
  });
  fleet.secrets.push(token.token ?? '');
  for (const cluster of clusters) {
    const plane = stack.cluster(cluster.name);
    const downstream = await KubeClient.fromKubeConfig(plane.kubeConfig());
    try {
      await writeAgentBootstrap(downstream, token, {
        agentNamespace: fleet.agentNamespace,
        workspace: ws,
        registrationNamespace: fleet.registrationNamespace,
        clusterName: cluster.name,
        ...(cluster.labels ? { labels: cluster.labels } : {}),
        manager: MANAGER,
      });
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
        ...(cluster.agentArgs ?? []),
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

/** What a suite closes around stopping its fleet. */
export interface SuiteTeardown {
  /** Runs before the fleet stops (servers the processes talk to, extra agents, objects to delete). */
  beforeStop?: () => Promise<unknown>;
  /** Runs after the fleet stopped (clients, scratch folders). */
  afterStop?: () => Promise<unknown>;
}

/**
 * Registers the teardown every fleet suite needs, in the calling `describe`: remembers whether a test
 * failed, and after the suite runs `beforeStop`, stops the fleet's processes, runs `afterStop`, and removes
 * the fleet's log folder only when every test passed (a failure's logs stay to be read). The folder goes
 * only after every process has stopped: a live controller may still be writing its git checkout there.
 */
export function fleetSuiteTeardown(fleet: () => Fleet | undefined, teardown: SuiteTeardown = {}): void {
  let failed = false;
  afterEach(function () {
    if (this.currentTest?.state === 'failed') failed = true;
  });
  after(async function () {
    this.timeout(120_000);
    await teardown.beforeStop?.();
    const f = fleet();
    await f?.stop();
    await teardown.afterStop?.();
    if (f && !failed) await removeFleetDir(f);
  });
}
