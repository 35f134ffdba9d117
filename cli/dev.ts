import { spawn } from 'node:child_process';
import { existsSync, openSync } from 'node:fs';
import { mkdir, readFile, writeFile, rm } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { parseArgs } from 'node:util';
import { KubeConfig } from '@kubernetes/client-node';
import { API_VERSION, DEFAULT_WORKSPACE_NAMESPACE, type BundleDeployment, type Cluster, type GitRepo } from '../lib/api/index.js';
import { KubeClient, type KubeObject } from '../lib/kube/client.js';
import { ensureBinaries } from '../stack/binaries.js';
import { NODE_LOCK } from '../stack/node.js';
import { readStackDescription, type StackDescription } from '../stack/stack.js';
import { installCrds } from '../stack/crds.js';
import { waitFor } from '../stack/net.js';
import { freePort } from '../stack/net.js';
import { sampleGitRepo, sampleRepository } from './sample.js';
import { localRegistryHostingConfigMap } from '../controller/discovery.js';
import { statusReport } from './status.js';
import { table } from './table.js';
import { DEFAULT_DASHBOARD_PORT } from '../dashboard/command.js';
import type { RenderIO } from './render.js';
import { issueRegistrationToken, writeAgentBootstrap } from '../stack/bootstrap.js';

const run = promisify(execFile);

/**
 * `flotilla dev up|down`: the main job on one machine. `up` starts the local stack (upstream + 2
 * downstream clusters, registry, git server) as a background supervisor, installs the CRDs, starts the
 * controller and one agent per downstream cluster as separate processes, registers the clusters
 * through the token flow, pushes the sample repository and creates a GitRepo with `ociRegistry`; it
 * shows progress until every bundle is Ready on both clusters and prints a summary. downstream-1 has a
 * real node (stack/node.ts): the sample's web Deployment runs Pods there. `down` stops it all and checks
 * that the node's host changes were undone.
 */

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const DEV_USAGE = `Usage: flotilla dev up [--dir DIR] [--timeout SECONDS]
       flotilla dev down [--dir DIR]

up    start a local fleet with OCI storage and wait until the sample bundles are Ready on both clusters
down  stop every process 'up' started and check that none is left
Options:
      --dir DIR          state folder (default .flotilla/dev)
      --timeout SECONDS  how long 'up' waits for Ready (default 900)
  -h, --help             print this help
Exit codes: 0 ok, 1 failure (the message names the part), 2 usage error.
`;

/** The downstream cluster given the machine's one real node (kubelet + containerd): its Pods really run. */
export const NODE_CLUSTER = 'downstream-1';

const CLUSTERS = [
  { name: 'downstream-1', labels: { env: 'prod', region: 'eu' } },
  { name: 'downstream-2', labels: { env: 'dev', region: 'us' } },
];

interface Pids {
  supervisor?: number;
  controller?: number;
  agents: number[];
}

function startDetached(name: string, args: string[], dir: string): number {
  const log = openSync(join(dir, 'logs', `${name}.log`), 'a');
  const child = spawn(process.execPath, ['--import', 'tsx', ...args], { cwd: ROOT, detached: true, stdio: ['ignore', log, log] });
  child.unref();
  if (child.pid === undefined) throw new Error(`could not start ${name}`);
  return child.pid;
}

async function savePids(dir: string, pids: Pids): Promise<void> {
  await writeFile(join(dir, 'pids.json'), JSON.stringify(pids, null, 2));
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function clientFor(kubeconfig: string): Promise<KubeClient> {
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfig);
  return await KubeClient.fromKubeConfig(kc);
}

/** Fails naming the process and its log's last lines when a process `up` started has exited. */
async function assertAlive(pids: Pids, dir: string): Promise<void> {
  const named: [string, number | undefined][] = [
    ['stack', pids.supervisor],
    ['controller', pids.controller],
    ...pids.agents.map((pid, i): [string, number] => [`agent-${CLUSTERS[i]?.name ?? i}`, pid]),
  ];
  for (const [name, pid] of named) {
    if (pid === undefined || alive(pid)) continue;
    const log = join(dir, 'logs', `${name}.log`);
    const tail = (await readFile(log, 'utf8').catch(() => '')).trim().split('\n').slice(-8).join('\n');
    throw new Error(`the ${name} process exited; last lines of ${log}:\n${tail}`);
  }
}

/** A part the stack description must have; its absence means the stack did not start as asked. */
function required<T>(value: T | undefined, what: string): T {
  if (value === undefined)
    throw new Error(
      `the local fleet's stack has no ${what}: run 'flotilla dev down', then 'flotilla dev up' again (the stack's log is in the dev folder's logs/)`,
    );
  return value;
}

/** Registers each downstream cluster through the token flow and starts its agent. */
async function startAgents(upstream: KubeClient, desc: StackDescription, dir: string, pids: Pids, say: (m: string) => void): Promise<void> {
  const token = await issueRegistrationToken(upstream, {
    namespace: DEFAULT_WORKSPACE_NAMESPACE,
    name: 'dev',
    manager: 'flotilla-dev',
    // Generous: on a loaded 2-core machine the controller's first reconcile can take a while.
    timeoutMs: 180_000,
  });
  for (const cluster of CLUSTERS) {
    const downstream = await clientFor(required(desc.clusters[cluster.name], `cluster ${cluster.name}`).kubeconfig);
    try {
      await writeAgentBootstrap(downstream, token, {
        agentNamespace: 'flotilla-system',
        workspace: DEFAULT_WORKSPACE_NAMESPACE,
        clusterName: cluster.name,
        labels: cluster.labels,
        manager: 'flotilla-dev',
      });
    } finally {
      await downstream.close();
    }
    pids.agents.push(
      startDetached(
        `agent-${cluster.name}`,
        [
          'agent/main.ts',
          '--kubeconfig',
          required(desc.clusters[cluster.name], `cluster ${cluster.name}`).kubeconfig,
          '--cache-dir',
          join(dir, 'cache', cluster.name),
          '--probe-port',
          String(await freePort()),
          '--resync',
          '15s',
          '--heartbeat',
          '10s',
        ],
        dir,
      ),
    );
    await savePids(dir, pids);
    say(
      `agent for ${cluster.name} started (labels ${Object.entries(cluster.labels)
        .map(([k, v]) => `${k}=${v}`)
        .join(',')})`,
    );
  }
  await waitFor(
    async () => {
      await assertAlive(pids, dir);
      const list = await upstream.list({ apiVersion: API_VERSION, kind: 'Cluster', namespace: DEFAULT_WORKSPACE_NAMESPACE });
      return list.items.length >= CLUSTERS.length;
    },
    { what: 'both clusters to register', timeoutMs: 120_000, context: () => `see ${join(dir, 'logs')}` },
  );
}

/** Waits until every BundleDeployment of the sample GitRepo is Ready, printing progress. */
async function waitReady(upstream: KubeClient, timeoutMs: number, say: (m: string) => void, dir: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    const repo = await upstream.get<GitRepo & KubeObject>({ apiVersion: API_VERSION, kind: 'GitRepo', namespace: DEFAULT_WORKSPACE_NAMESPACE, name: 'sample' });
    const bds = (await upstream.list<BundleDeployment & KubeObject>({ apiVersion: API_VERSION, kind: 'BundleDeployment' }, 'flotilla.dev/repo-name=sample'))
      .items;
    const ready = bds.filter(
      (b) => b.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') && b.status.appliedDeploymentID === b.spec.deploymentID,
    );
    const line =
      `GitRepo sample: commit ${(repo?.status?.commit ?? '-').slice(0, 12)}, ${ready.length}/${bds.length} bundle deployments ready` +
      (repo?.status?.display?.message ? ` (${repo.status.display.message})` : '');
    if (line !== last) {
      say(line);
      last = line;
    }
    await assertAlive(JSON.parse(await readFile(join(dir, 'pids.json'), 'utf8')) as Pids, dir);
    const expected = repo?.status?.summary?.desiredReady ?? -1;
    // The summary prints the Clusters too, whose roll-up follows their BundleDeployments by up to a second.
    const clusters = (await upstream.list<Cluster & KubeObject>({ apiVersion: API_VERSION, kind: 'Cluster', namespace: DEFAULT_WORKSPACE_NAMESPACE })).items;
    const clustersReady =
      clusters.length > 0 && clusters.every((c) => c.status?.display?.state === 'Ready' && c.status.readyBundles === c.status.desiredReadyBundles);
    if (
      bds.length > 0 &&
      ready.length === bds.length &&
      expected === bds.length &&
      repo?.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') &&
      clustersReady
    )
      return;
    if (Date.now() > deadline) throw new Error(`the sample bundles did not become Ready in time; logs are in ${join(dir, 'logs')}`);
    await sleep(2000);
  }
}

/** Names of the Ready Pods (namespace/name) on `nodeName`, or an error when the sample's web Pods are not among them. */
async function runningPods(kubeconfig: string, nodeName: string): Promise<string[]> {
  const kube = await clientFor(kubeconfig);
  try {
    const pods = await kube.list<KubeObject & { spec?: { nodeName?: string }; status?: { conditions?: { type: string; status: string }[] } }>({
      apiVersion: 'v1',
      kind: 'Pod',
    });
    const ready = pods.items
      .filter((p) => p.spec?.nodeName === nodeName && p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'))
      .map((p) => `${p.metadata.namespace}/${p.metadata.name}`);
    if (!ready.some((p) => p.startsWith('demo/web-')))
      throw new Error(
        `the sample's web Pods are not Ready on the real node ${nodeName} (Ready there: ${ready.join(', ') || 'none'}); see the node's logs in the stack folder's node/`,
      );
    return ready;
  } finally {
    await kube.close();
  }
}

async function up(dir: string, timeoutMs: number, io: RenderIO): Promise<number> {
  const say = (m: string) => io.stdout.write(`[flotilla dev] ${m}\n`);
  if (existsSync(join(dir, 'pids.json'))) {
    const pids = JSON.parse(await readFile(join(dir, 'pids.json'), 'utf8')) as Pids;
    if (pids.supervisor && alive(pids.supervisor)) throw new Error(`a dev fleet is already running from ${dir}; run 'flotilla dev down' first`);
  }
  await rm(dir, { recursive: true, force: true });
  await mkdir(join(dir, 'logs'), { recursive: true });
  say('installing the stack binaries (cached after the first run)');
  await ensureBinaries({ node: true });
  const pids: Pids = { agents: [] };
  say(`starting the clusters, the registry, the git server and a real node for ${NODE_CLUSTER}`);
  const supervisor = startDetached(
    'stack',
    ['stack/cli.ts', 'up', '--dir', join(dir, 'stack'), '--registries', 'http', '--kcm', 'upstream,downstream-1,downstream-2', '--node', NODE_CLUSTER],
    dir,
  );
  pids.supervisor = supervisor;
  await savePids(dir, pids);
  await waitFor(
    async () => {
      if (!alive(supervisor)) throw new Error(`the stack exited: see ${join(dir, 'logs', 'stack.log')}`);
      return existsSync(join(dir, 'stack', 'stack.json'));
    },
    { what: 'the stack to start', timeoutMs: 600_000, intervalMs: 1000 },
  );
  const desc = await readStackDescription(join(dir, 'stack'));
  const node = required(desc.node, `a real node for ${NODE_CLUSTER}`);
  say(`real node ${node.nodeName} Ready on ${node.cluster} in ${(node.startupMs / 1000).toFixed(1)} s`);
  const upstreamDesc = required(desc.clusters.upstream, 'the upstream cluster');
  const upstream = await clientFor(upstreamDesc.kubeconfig);
  try {
    say('installing the CRDs upstream');
    await installCrds(upstream);
    for (const ns of [DEFAULT_WORKSPACE_NAMESPACE, 'flotilla-system', 'flotilla-registration']) {
      await upstream.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } }, 'flotilla-dev');
    }
    pids.controller = startDetached(
      'controller',
      [
        'controller/main.ts',
        '--kubeconfig',
        upstreamDesc.kubeconfig,
        '--api-server-url',
        upstreamDesc.server,
        '--api-server-ca-file',
        join(dir, 'stack', 'clusters', 'upstream', 'ca.crt'),
        '--work-dir',
        join(dir, 'controller'),
        '--probe-port',
        String(await freePort()),
        '--metrics-port',
        String(await freePort()),
      ],
      dir,
    );
    await savePids(dir, pids);
    say('controller started');
    await startAgents(upstream, desc, dir, pids, say);
    const git = required(desc.git, 'a git server');
    const gitServerRoot = join(dir, 'stack', 'git');
    const { startGitServer } = await import('../stack/git.js');
    // Push through the running server's HTTP endpoint: a second handle on the same folder creates the repo.
    const helper = await startGitServer({ rootDir: gitServerRoot, username: git.username, password: git.password });
    try {
      await helper.createRepo('sample');
      const files = await sampleRepository(join(ROOT, 'examples', 'sample-repo'));
      await helper.commit('sample', files, 'Flotilla sample repository');
    } finally {
      await helper.stop();
    }
    say(`sample repository pushed to ${git.url}/sample.git (with a ~5 MiB bundle)`);
    const registry = required(desc.registries.http, 'a plain-HTTP registry');
    await upstream.apply(
      {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'sample-git', namespace: DEFAULT_WORKSPACE_NAMESPACE },
        type: 'kubernetes.io/basic-auth',
        stringData: { username: git.username, password: git.password },
      },
      'flotilla-dev',
    );
    // KEP-1755: the upstream cluster announces its registry; the sample GitRepo discovers it (docs/storage.md).
    await upstream.apply(
      localRegistryHostingConfigMap({
        host: registry.host,
        help: 'https://github.com/kubernetes/enhancements/tree/master/keps/sig-cluster-lifecycle/generic/1755-communicating-a-local-registry',
      }),
      'flotilla-dev',
    );
    await upstream.apply(sampleGitRepo(DEFAULT_WORKSPACE_NAMESPACE, `${git.url}/sample.git`, 'sample-git'), 'flotilla-dev');
    say(
      `registry ${registry.host} published in kube-public/local-registry-hosting; GitRepo sample created, storing bundles in the registry it discovers there`,
    );
    await waitReady(upstream, timeoutMs, say, dir);
    const pods = await runningPods(required(desc.clusters[NODE_CLUSTER], `cluster ${NODE_CLUSTER}`).kubeconfig, node.nodeName);
    say(`on ${node.cluster}, ${pods.length} Pods run on the real node: ${pods.join(', ')}`);
    const { text } = await statusReport(upstream, DEFAULT_WORKSPACE_NAMESPACE);
    io.stdout.write(`\n${text}\n`);
    io.stdout.write(
      table(
        ['WHAT', 'WHERE'],
        [
          ['upstream kubeconfig', upstreamDesc.kubeconfig],
          ...CLUSTERS.map((c) => [`${c.name} kubeconfig`, required(desc.clusters[c.name], `cluster ${c.name}`).kubeconfig]),
          ['real node', `${node.nodeName} (${node.ip}) on ${node.cluster}: Pods run there; other clusters have no node`],
          ['registry', registry.url],
          ['git', `${git.url}/sample.git`],
          ['logs', join(dir, 'logs')],
          ['status', `node bin/flotilla.js status --kubeconfig ${upstreamDesc.kubeconfig}`],
          ['dashboard', `http://127.0.0.1:${DEFAULT_DASHBOARD_PORT}/ once 'node bin/flotilla.js dashboard --kubeconfig ${upstreamDesc.kubeconfig}' runs`],
          ['stop', `node bin/flotilla.js dev down --dir ${dir}`],
        ],
      ),
    );
    return 0;
  } finally {
    await upstream.close();
  }
}

async function down(dir: string, io: RenderIO): Promise<number> {
  const say = (m: string) => io.stdout.write(`[flotilla dev] ${m}\n`);
  if (!existsSync(join(dir, 'pids.json'))) {
    say(`nothing to stop (no ${join(dir, 'pids.json')})`);
    return 0;
  }
  const pids = JSON.parse(await readFile(join(dir, 'pids.json'), 'utf8')) as Pids;
  const all = [...pids.agents, pids.controller, pids.supervisor].filter((p): p is number => p !== undefined);
  for (const pid of all) {
    try {
      process.kill(-pid, 'SIGTERM');
    } catch {
      /* gone */
    }
  }
  // The stack stops the real node first and restores the host (a few seconds), then the rest.
  const deadline = Date.now() + 60_000;
  while (all.some(alive) && Date.now() < deadline) await sleep(250);
  for (const pid of all.filter(alive)) {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  await sleep(500);
  const { stdout } = await run('ps', ['-eo', 'pid,args']);
  const absDir = resolve(dir);
  const left = stdout.split('\n').filter((l) => l.includes(absDir) && Number.parseInt(l.trim(), 10) !== process.pid);
  if (left.length > 0) {
    io.stderr.write(`flotilla dev down: processes still running:\n${left.join('\n')}\n`);
    return 1;
  }
  const lock = existsSync(NODE_LOCK) ? (JSON.parse(await readFile(NODE_LOCK, 'utf8')) as { dir?: string }) : undefined;
  if (lock?.dir?.startsWith(absDir)) {
    io.stderr.write(
      `flotilla dev down: the real node's host changes were not all undone (${NODE_LOCK} remains; the stack's log ${join(dir, 'logs', 'stack.log')} lists them); the next 'flotilla dev up' restores the host from that record first\n`,
    );
    return 1;
  }
  await rm(join(dir, 'pids.json'), { force: true });
  say('stopped every process (the real node too, its host changes undone); none is left');
  return 0;
}

/** Runs `flotilla dev`. */
export async function runDev(argv: string[], io: RenderIO): Promise<number> {
  // biome-ignore lint/suspicious/noImplicitAnyLet: typed by the parseArgs call that assigns it below
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: { dir: { type: 'string' }, timeout: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    });
  } catch (err) {
    io.stderr.write(`flotilla dev: ${(err as Error).message}\n\n${DEV_USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    io.stdout.write(DEV_USAGE);
    return 0;
  }
  const dir = resolve(values.dir ?? '.flotilla/dev');
  const timeoutMs = Number(values.timeout ?? '900') * 1000;
  try {
    if (positionals[0] === 'up' && Number.isFinite(timeoutMs)) return await up(dir, timeoutMs, io);
    if (positionals[0] === 'down') return await down(dir, io);
  } catch (err) {
    io.stderr.write(`flotilla dev: ${(err as Error).message}\n`);
    return 1;
  }
  io.stderr.write(DEV_USAGE);
  return 2;
}
