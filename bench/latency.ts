import { monitorEventLoopDelay } from 'node:perf_hooks';
import { randomBytes, randomInt } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { join } from 'node:path';
import { apiRequestCounts, topDeltas, type RequestCounts } from './lib/apimetrics.js';
import { applyGitRepo, deleteGitRepo, type BenchStack } from './lib/fleet.js';
import { RolloutObserver, type Milestones } from './lib/observer.js';
import { cpuOfParts, pidsMatching } from './lib/procs.js';
import { REAL_LABEL, type RealFleet } from './lib/realfleet.js';
import { SimFleet, simName } from './lib/sims.js';
import { summarizeSample, type Summary } from './lib/stats.js';

/**
 * Propagation latency: from a git commit (its push returned) to the new content deployed and Ready on every
 * target cluster, the controller polling git every second (GitRepo pollingInterval "1s"). Commits come one
 * after the other, each once the previous one is everywhere, after a random pause of 0-1 s so that commits
 * fall at every phase of the polling cycle. Each commit changes one small ConfigMap. Stages come from
 * watches (observer.ts): controller (commit -> Bundle with the new contents), fan-out (-> last
 * BundleDeployment carrying it), agents (-> last one deployed and Ready).
 */

/** Latency figures of one scenario, ms. */
export interface LatencyResult {
  scenario: string;
  clusters: number;
  commits: number;
  /** Commit -> Ready on every target cluster. */
  allReady: Summary;
  /** Commit -> Ready, per (commit, cluster). */
  perCluster: Summary;
  /** Commit -> Bundle updated (git poll, fetch, build, push, Bundle written). */
  controller: Summary;
  /** Bundle updated -> last BundleDeployment updated. */
  fanOut: Summary;
  /** Last BundleDeployment updated -> last Ready. */
  agents: Summary;
  /**
   * The fan-out by the API server's clock (managedFields times, whole seconds): the Bundle's spec applied ->
   * the last BundleDeployment's spec applied. Absent when a time was missing.
   */
  serverFanOut?: Summary;
  /** This process's event-loop delay during the measured commits, ms (p99 and max): the lag of every figure taken here. */
  eventLoopDelay?: { p99: number; max: number };
  /** The upstream API server's most frequent requests, per commit (averaged over the measured commits). */
  upstreamRequestsPerCommit: { request: string; count: number }[];
  /** Every upstream API request per commit (all verbs and resources, including watches opened). */
  upstreamRequestsTotalPerCommit?: number;
  /** Time to register the simulated clusters (simulated scenarios). */
  registrationMs?: number;
  /**
   * CPU-seconds each part of the fleet used per commit (averaged over the measured commits, from /proc): where
   * the time of a commit goes on a machine whose cores every part shares.
   */
  cpuSecondsPerCommit?: Record<string, number>;
  samples: { commit: number; allReadyMs: number; controllerMs: number; fanOutMs: number; agentsMs: number; serverFanOutMs?: number }[];
}

function appFile(round: number): string {
  return `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: latency\ndata:\n  round: "${round}"\n  nonce: "${randomBytes(8).toString('hex')}"\n`;
}

async function waitComplete(
  observer: RolloutObserver,
  previous: string | undefined,
  expected: number,
  timeoutMs: number,
): Promise<{ id: string; m: Milestones }> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const id = observer.contentsID();
    const m = id !== undefined && id !== previous ? observer.complete(id, expected) : undefined;
    if (id !== undefined && m) return { id, m };
    if (Date.now() > deadline) throw new Error(`a commit did not reach ${expected} cluster(s) within ${timeoutMs / 1000} s`);
    await sleep(50);
  }
}

/** What the benchmark process runs during a scenario, as its CPU is labelled. */
const BENCH_PROCESS = 'benchmark process (simulated agents, git server, watches)';

/**
 * The processes of the fleet whose CPU time a scenario accounts, by part: Flotilla's own by PID, the control
 * planes' and the registry's by their folder (a Flotilla process whose arguments name a cluster's folder, for
 * its kubeconfig, is not counted twice).
 */
function fleetParts(s: BenchStack, fleet: RealFleet): Record<string, number[]> {
  const parts: Record<string, number[]> = { controller: [fleet.controller.pid], 'real agents': fleet.agents.map((a) => a.proc.pid) };
  const ours = new Set(Object.values(parts).flat());
  const found = (folder: string) => pidsMatching(join(s.dir, folder)).filter((p) => !ours.has(p.pid));
  for (const { pid, command } of found(join('clusters', 'upstream'))) {
    const key = `upstream ${command.split(' ')[0] ?? ''}`;
    parts[key] = [...(parts[key] ?? []), pid];
  }
  const downstream = Object.keys(s.desc.clusters).filter((n) => n !== 'upstream');
  parts['downstream API servers and etcd'] = downstream.flatMap((name) => found(join('clusters', name)).map((p) => p.pid));
  parts.registry = found('registry').map((p) => p.pid);
  return parts;
}

function upstreamRequests(s: BenchStack): Promise<RequestCounts> {
  return apiRequestCounts(join(s.dir, 'clusters', 'upstream'), s.desc.clusters.upstream?.server ?? '');
}

interface Scenario {
  name: string;
  repo: string;
  clusters: number;
  selector: Record<string, string>;
  fleetYaml: string;
}

async function runScenario(s: BenchStack, fleet: RealFleet, sc: Scenario, commits: number, say: (m: string) => void): Promise<LatencyResult> {
  await s.git.createRepo(sc.repo);
  await s.git.commit(sc.repo, { 'app/cm.yaml': appFile(0), 'app/fleet.yaml': sc.fleetYaml }, 'latency bundle');
  const observer = new RolloutObserver(s.up, sc.repo);
  await observer.start();
  const samples: LatencyResult['samples'] = [];
  const perCluster: number[] = [];
  const loopDelay = monitorEventLoopDelay({ resolution: 20 });
  let requests0: RequestCounts = {};
  let requests1: RequestCounts = {};
  const parts = fleetParts(s, fleet);
  let cpu0: Record<string, number> = {};
  let cpu1: Record<string, number> = {};
  try {
    await applyGitRepo(s, {
      name: sc.repo,
      repo: sc.repo,
      paths: ['app'],
      targets: [{ clusterSelector: { matchLabels: sc.selector } }],
      ociReference: `${s.registry.host}/bench`,
      pollingInterval: '1s',
    });
    let previous = (await waitComplete(observer, undefined, sc.clusters, 600_000)).id;
    say(`latency ${sc.name}: first rollout done; measuring ${commits} commits`);
    requests0 = await upstreamRequests(s);
    cpu0 = cpuOfParts(parts, BENCH_PROCESS);
    loopDelay.enable();
    for (let round = 1; round <= commits; round++) {
      await sleep(randomInt(1000));
      await s.git.commit(sc.repo, { 'app/cm.yaml': appFile(round) }, `round ${round}`);
      const t0 = Date.now();
      const { id, m } = await waitComplete(observer, previous, sc.clusters, 300_000);
      previous = id;
      const lastSeen = Math.max(...m.deployments.map((d) => d.seen));
      const lastReady = Math.max(...m.deployments.map((d) => d.ready));
      const serverFanOutMs = m.server ? Math.max(...m.server.deployments) - m.server.bundle : undefined;
      samples.push({
        commit: round,
        allReadyMs: lastReady - t0,
        controllerMs: m.bundle - t0,
        fanOutMs: lastSeen - m.bundle,
        agentsMs: lastReady - lastSeen,
        ...(serverFanOutMs !== undefined ? { serverFanOutMs } : {}),
      });
      perCluster.push(...m.deployments.map((d) => d.ready - t0));
      if (round % 5 === 0) say(`latency ${sc.name}: ${round}/${commits} commits (last ${samples.at(-1)?.allReadyMs} ms)`);
    }
    cpu1 = cpuOfParts(parts, BENCH_PROCESS);
    requests1 = await upstreamRequests(s);
  } finally {
    loopDelay.disable();
    await observer.stop();
  }
  const serverFanOut = samples.flatMap((x) => (x.serverFanOutMs !== undefined ? [x.serverFanOutMs] : []));
  await deleteGitRepo(s.up, sc.repo);
  return {
    scenario: sc.name,
    clusters: sc.clusters,
    commits,
    samples,
    upstreamRequestsPerCommit: topDeltas(requests0, requests1, 8).map((d) => ({ request: d.request, count: Math.round((d.count / commits) * 10) / 10 })),
    upstreamRequestsTotalPerCommit:
      Math.round((topDeltas(requests0, requests1, Number.POSITIVE_INFINITY).reduce((sum, d) => sum + d.count, 0) / commits) * 10) / 10,
    allReady: summarizeSample(samples.map((x) => x.allReadyMs)),
    perCluster: summarizeSample(perCluster),
    controller: summarizeSample(samples.map((x) => x.controllerMs)),
    fanOut: summarizeSample(samples.map((x) => x.fanOutMs)),
    agents: summarizeSample(samples.map((x) => x.agentsMs)),
    ...(serverFanOut.length === samples.length && samples.length > 0 ? { serverFanOut: summarizeSample(serverFanOut) } : {}),
    eventLoopDelay: { p99: Math.round(loopDelay.percentile(99) / 1e6), max: Math.round(loopDelay.max / 1e6) },
    cpuSecondsPerCommit: Object.fromEntries(Object.entries(cpu1).map(([k, v]) => [k, Math.round(((v - (cpu0[k] ?? 0)) / commits) * 100) / 100])),
  };
}

/** The 2 real clusters (agent processes). */
export async function benchLatencyReal(s: BenchStack, fleet: RealFleet, commits: number, say: (m: string) => void): Promise<LatencyResult> {
  return await runScenario(
    s,
    fleet,
    {
      name: '2 real clusters',
      repo: s.unique('lat-real'),
      clusters: fleet.agents.length,
      selector: { [REAL_LABEL]: 'true' },
      fleetYaml: 'defaultNamespace: bench-latency\n',
    },
    commits,
    say,
  );
}

function simFleetYaml(prefix: string, count: number): string {
  const lines = ['defaultNamespace: bench-latency', 'targetCustomizations:'];
  for (let i = 0; i < count; i++) {
    const name = simName(prefix, i);
    lines.push(`- name: ${name}`, `  clusterName: ${name}`, `  namespace: ${name}-app`);
  }
  return `${lines.join('\n')}\n`;
}

/** Label of the simulated clusters a scenario of `count` targets (cluster i < count carries it), unique to the run. */
export const simLabel = (prefix: string, count: number): string => `bench-${prefix}-first-${count}`;

/** Simulated scenarios of growing sizes on one SimFleet (grown between scenarios, never restarted). */
export async function benchLatencySims(
  s: BenchStack,
  fleet: RealFleet,
  counts: readonly number[],
  commits: number,
  downstream: string,
  say: (m: string) => void,
): Promise<LatencyResult[]> {
  const sorted = [...counts].sort((a, b) => a - b);
  const prefix = s.unique('sim');
  const sims = new SimFleet(prefix, s, downstream, fleet.token, (i) =>
    Object.fromEntries([['bench-sim', 'true'], ...sorted.filter((c) => i < c).map((c) => [simLabel(prefix, c), 'true'])]),
  );
  const out: LatencyResult[] = [];
  try {
    for (const count of sorted) {
      const t0 = Date.now();
      await sims.grow(count, say);
      const registrationMs = Date.now() - t0;
      say(`latency: ${count} simulated clusters registered in ${(registrationMs / 1000).toFixed(0)} s`);
      const r = await runScenario(
        s,
        fleet,
        {
          name: `${count} simulated clusters`,
          repo: s.unique(`lat-sim-${count}`),
          clusters: count,
          selector: { [simLabel(prefix, count)]: 'true' },
          fleetYaml: simFleetYaml(sims.prefix, count),
        },
        commits,
        say,
      );
      out.push({ ...r, registrationMs });
    }
  } finally {
    await sims.stop();
  }
  return out;
}
