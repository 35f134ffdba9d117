import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { readBinaries } from '../stack/binaries.js';
import { startControlPlane, type ControlPlane } from '../stack/kube.js';
import { waitFor } from '../stack/net.js';
import type { KubeClient, KubeObject } from '../lib/kube/client.js';
import { API_VERSION } from '../lib/api/index.js';
import { parseAccessLog } from '../stack/registry.js';
import { apiRequestCounts, topDeltas } from './lib/apimetrics.js';
import { configMapOfSize } from './lib/content.js';
import {
  applyGitRepo,
  bootstrap,
  bundleDeploymentsOf,
  contentsIDsOf,
  isCurrent,
  kubeClient,
  prepareUpstream,
  registrationToken,
  startAgentProcess,
  startController,
  W,
  waitClustersRegistered,
  type BenchStack,
  type BenchCluster,
} from './lib/fleet.js';
import { PeakSampler, cpuOfParts, pidsMatching, scrapeMetrics, type FlotillaProcess } from './lib/procs.js';
import { median } from './lib/stats.js';
import { sampleSum } from '../lib/ops/exposition.js';

/**
 * Memory: peak RSS (VmHWM) of the controller process and of agent processes while a fleet of N bundles
 * (default 1,000) deploys across C clusters (default 10), each bundle to T of them (default 1: N Bundles,
 * N x T BundleDeployments upstream, N x T / C per agent), and after a steady period that includes a full
 * drift-check resync of every agent. It runs on its own two control planes (an upstream and one
 * downstream API server shared by the C agents, each in its own namespaces), so nothing left by the other
 * benchmarks is in the caches measured. The registry and git server are the stack's.
 */

/** Result of the benchmark. */
export interface MemoryResult {
  bundles: number;
  clusters: number;
  bundleDeployments: number;
  /** Commit -> every BundleDeployment deployed and Ready. */
  rolloutMs: number;
  steadyMs: number;
  /** Clusters each bundle goes to. */
  targets: number;
  /** RSS before the commit (registered, nothing deployed), at the peak, and at the end. */
  controller: { peakRssBytes: number; rssAfterBytes: number; idleRssBytes: number };
  /** CPU seconds each part used from the commit to the end of the rollout (where the time went). */
  cpuSeconds: Record<string, number>;
  /** The most frequent requests each API server received during the rollout. */
  apiRequests: { upstream: { request: string; count: number }[]; downstream: { request: string; count: number }[] };
  /**
   * What the agents did to the downstream objects during the rollout (their /metrics): objects read to plan
   * a new deployment, read by drift checks (every `--resync`), and applied. Each bundle holds one object.
   */
  objects: ObjectCounts;
  /** Progress every ~10 s: seconds since the commit, Bundles, BundleDeployments, Ready ones. */
  timeline: { s: number; bundles: number; bundleDeployments: number; ready: number }[];
  /** A later commit that changes one bundle: until Ready everywhere, and what it cost (see oneBundleChange). */
  change: {
    readyMs: number;
    registryRequests: number;
    registryByKind: Record<string, number>;
    upstreamWrites: { request: string; count: number }[];
    /** CPU-seconds of each part of the fleet from the commit to Ready (the benchmark's GET of the GitRepo every 250 ms included). */
    cpuSeconds: Record<string, number>;
    /** What the agents did to downstream objects from the commit to Ready (one object changed). */
    objects: ObjectCounts;
  };
  agents: { peakRssBytes: number[]; maxPeakRssBytes: number; medianPeakRssBytes: number; medianRssAfterBytes: number; medianIdleRssBytes: number };
}

/** Downstream objects the agents read and applied (their counters `flotilla_objects_read_total` and `flotilla_objects_applied_total`). */
export interface ObjectCounts {
  /** Read to plan a new deployment (`purpose="deploy"`). */
  deployReads: number;
  /** Read by drift checks of applied deployments (`purpose="drift-check"`). */
  driftReads: number;
  applied: number;
}

/** The agents' object counters now, summed over the agents (scraped from /metrics on each one's probe port). */
async function agentObjectCounts(agents: readonly FlotillaProcess[]): Promise<ObjectCounts> {
  const pages = await Promise.all(agents.map((a) => scrapeMetrics(a.probePort)));
  const sum = (name: string, labels: Record<string, string> = {}) => pages.reduce((n, p) => n + sampleSum(p, name, labels), 0);
  return {
    deployReads: sum('flotilla_objects_read_total', { purpose: 'deploy' }),
    driftReads: sum('flotilla_objects_read_total', { purpose: 'drift-check' }),
    applied: sum('flotilla_objects_applied_total'),
  };
}

/** `b - a`, counter by counter. */
function objectDelta(a: ObjectCounts, b: ObjectCounts): ObjectCounts {
  return { deployReads: b.deployReads - a.deployReads, driftReads: b.driftReads - a.driftReads, applied: b.applied - a.applied };
}

/**
 * N bundle folders of one 1 KiB ConfigMap each. Bundle i goes to `targets` clusters (i, i+1, ... modulo C):
 * its fleet.yaml gives each of them its own namespace and excludes every other cluster (doNotDeploy).
 */
function bundleTree(bundles: number, clusters: BenchCluster[], targets: number): Record<string, Buffer | string> {
  const files: Record<string, Buffer | string> = {};
  for (let i = 0; i < bundles; i++) {
    const mine = Array.from({ length: Math.min(targets, clusters.length) }, (_, k) => clusters[(i + k) % clusters.length] as BenchCluster);
    const dir = `b-${String(i).padStart(4, '0')}`;
    files[`${dir}/fleet.yaml`] = `${[
      'defaultNamespace: bench-mem',
      'targetCustomizations:',
      ...mine.flatMap((c) => [`- name: ${c.name}`, `  clusterName: ${c.name}`, `  namespace: ${c.name}-app`]),
      '- name: others',
      '  clusterSelector: {}',
      '  doNotDeploy: true',
    ].join('\n')}\n`;
    files[`${dir}/cm.yaml`] = configMapOfSize(`cm-${dir}`, 1024);
  }
  return files;
}

async function memStackOf(s: BenchStack, dir: string): Promise<{ ms: BenchStack; planes: ControlPlane[] }> {
  const binaries = await readBinaries();
  const [up, down] = await Promise.all([
    startControlPlane({ name: 'mem-upstream', dir: join(dir, 'mem-upstream'), binaries, controllerManager: true }),
    startControlPlane({ name: 'mem-downstream', dir: join(dir, 'mem-downstream'), binaries }),
  ]);
  const upKube: KubeClient = await kubeClient(up.kubeconfigPath);
  const desc = {
    ...s.desc,
    clusters: { upstream: { server: up.server, kubeconfig: up.kubeconfigPath }, 'mem-downstream': { server: down.server, kubeconfig: down.kubeconfigPath } },
  };
  await prepareUpstream(upKube, desc);
  return { ms: { ...s, desc, up: upKube, work: dir }, planes: [up, down] };
}

async function waitRollout(up: KubeClient, repo: string, expected: number, t0: number, say: (m: string) => void): Promise<MemoryResult['timeline']> {
  const timeline: MemoryResult['timeline'] = [];
  await waitFor(
    async () => {
      const ids = await contentsIDsOf(up, repo);
      const bds = await bundleDeploymentsOf(up, repo);
      const ready = bds.filter((bd) => isCurrent(bd, ids)).length;
      timeline.push({ s: Math.round((Date.now() - t0) / 1000), bundles: ids.size, bundleDeployments: bds.length, ready });
      if (timeline.length % 6 === 0 || ready === expected) say(`memory: ${ids.size} Bundles, ${bds.length} BundleDeployments, ${ready}/${expected} Ready`);
      return ready === expected;
    },
    { what: `${expected} bundle deployments to be Ready`, timeoutMs: 40 * 60_000, intervalMs: 10_000 },
  );
  return timeline;
}

/**
 * A commit that changes one bundle (the first) of the repository, once the rollout is Ready: how long until every
 * BundleDeployment is at the commit's content and Ready again (the GitRepo polls every 15 s), and what the
 * commit cost the registry and the upstream API server's writes. A commit should cost what it changed.
 */
async function oneBundleChange(
  s: BenchStack,
  up: KubeClient,
  repo: string,
  expected: number,
  counts: () => Promise<Record<string, number>[]>,
  cpu: () => Record<string, number>,
  objects: () => Promise<ObjectCounts>,
): Promise<MemoryResult['change']> {
  const registryLog = () => readFile(s.registry.logFile, 'utf8').catch(() => '');
  const mark = (await registryLog()).length;
  const req0 = await counts();
  const obj0 = await objects();
  const cpu0 = cpu();
  const t0 = Date.now();
  const commit = await s.git.commit(repo, { 'b-0000/cm.yaml': configMapOfSize('cm-b-0000', 1024) }, 'one bundle changed');
  // The GitRepo is Ready only once every BundleDeployment is Ready at the commit's content ("Ready means ready"):
  // one GET of it is all the polling adds, where listing the 1,000 Bundles and BundleDeployments would load the
  // API server being measured.
  await waitFor(
    async () => {
      const r = await up.get<KubeObject & { status?: { commit?: string; conditions?: { type: string; status: string }[] } }>({
        apiVersion: API_VERSION,
        kind: 'GitRepo',
        namespace: W,
        name: repo,
      });
      return r?.status?.commit === commit && r.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true;
    },
    { what: `GitRepo ${repo} Ready at ${commit.slice(0, 12)} (${expected} bundle deployments)`, timeoutMs: 10 * 60_000, intervalMs: 250 },
  );
  const readyMs = Date.now() - t0;
  const cpu1 = cpu();
  const req1 = await counts();
  const obj1 = await objects();
  // The registry logs a request after answering it: a second for the last lines to land.
  await sleep(1000);
  const registry = parseAccessLog((await registryLog()).slice(mark));
  const byKind = new Map<string, number>();
  for (const e of registry) {
    // By what was asked for: uploads (blobs/uploads/...) first, then manifests, blobs and tags.
    const what = /\/blobs\/uploads\//.test(e.path) ? 'uploads' : (/\/(manifests|blobs|tags)\/[^/]*$/.exec(e.path)?.[1] ?? e.path);
    const kind = `${e.method} ${what}`;
    byKind.set(kind, (byKind.get(kind) ?? 0) + 1);
  }
  const writes = topDeltas(req0[0] ?? {}, req1[0] ?? {}, 50).filter((d) => !/^(GET|LIST|WATCH) /.test(d.request));
  return {
    readyMs,
    registryRequests: registry.length,
    registryByKind: Object.fromEntries([...byKind].sort((a, b) => b[1] - a[1])),
    upstreamWrites: writes,
    cpuSeconds: Object.fromEntries(Object.entries(cpu1).map(([k, v]) => [k, Math.round((v - (cpu0[k] ?? 0)) * 10) / 10])),
    objects: objectDelta(obj0, obj1),
  };
}

/** What the benchmark process runs during the rollout, as its CPU is labelled. */
const BENCH_PROCESS = 'benchmark process (git server, polling)';

/** The processes whose CPU time is accounted: ours, and the control planes' and registry's found by folder. */
function accounted(procs: readonly FlotillaProcess[], dir: string, registryDir: string): Record<string, number[]> {
  const parts: Record<string, number[]> = { controller: [procs[0]?.pid ?? -1], agents: procs.slice(1).map((p) => p.pid) };
  const ours = new Set(procs.map((p) => p.pid));
  for (const plane of ['mem-upstream', 'mem-downstream']) {
    for (const { pid, command } of pidsMatching(join(dir, plane)).filter((p) => !ours.has(p.pid))) {
      const key = `${plane} ${command.split(' ')[0] ?? ''}`;
      parts[key] = [...(parts[key] ?? []), pid];
    }
  }
  parts.registry = pidsMatching(registryDir).map((p) => p.pid);
  return parts;
}

/** Runs the benchmark; `steadyMs` is how long the fleet stays up once Ready (default 40 s: past one 30 s resync). */
export async function benchMemory(
  s: BenchStack,
  o: { bundles: number; clusters: number; targets: number; steadyMs?: number },
  say: (m: string) => void,
): Promise<MemoryResult> {
  const dir = join(s.work, 'mem');
  await mkdir(dir, { recursive: true });
  const { ms, planes } = await memStackOf(s, dir);
  const procs: FlotillaProcess[] = [];
  const sampler = new PeakSampler(() => procs, 1000);
  try {
    const controller = await startController(ms, 'mem-controller');
    procs.push(controller);
    const token = await registrationToken(ms.up);
    const down = await kubeClient(ms.desc.clusters['mem-downstream']?.kubeconfig ?? '');
    const clusters: BenchCluster[] = Array.from({ length: o.clusters }, (_, i) => ({
      name: `mem-${String(i).padStart(2, '0')}`,
      agentNamespace: `mem-${String(i).padStart(2, '0')}`,
      labels: { 'bench-mem': 'true' },
    }));
    for (const c of clusters) await bootstrap(down, token, c);
    await down.close();
    procs.push(...(await Promise.all(clusters.map((c) => startAgentProcess(ms, ms.desc.clusters['mem-downstream']?.kubeconfig ?? '', c)))));
    await waitClustersRegistered(
      ms.up,
      clusters.map((c) => c.name),
    );
    say(`memory: controller and ${o.clusters} agent processes up; committing ${o.bundles} bundles`);
    const repo = s.unique('bench-mem');
    await s.git.createRepo(repo);
    await s.git.commit(repo, bundleTree(o.bundles, clusters, o.targets), `${o.bundles} bundles`);
    const idle = procs.map((p) => p.rss() ?? Number.NaN);
    const parts = accounted(procs, dir, join(s.dir, 'registry'));
    const cpu0 = cpuOfParts(parts, BENCH_PROCESS);
    const planeDirs = [join(dir, 'mem-upstream'), join(dir, 'mem-downstream')] as const;
    const counts = () => Promise.all(planes.map((p, i) => apiRequestCounts(planeDirs[i] ?? '', p.server)));
    const req0 = await counts();
    const agentProcs = procs.slice(1);
    const obj0 = await agentObjectCounts(agentProcs);
    const t0 = Date.now();
    await applyGitRepo(ms, {
      name: repo,
      repo,
      targets: [{ clusterSelector: { matchLabels: { 'bench-mem': 'true' } } }],
      ociReference: `${s.registry.host}/bench-mem`,
      pollingInterval: '15s',
    });
    const timeline = await waitRollout(ms.up, repo, o.bundles * Math.min(o.targets, o.clusters), t0, say);
    const rolloutMs = Date.now() - t0;
    const cpu1 = cpuOfParts(parts, BENCH_PROCESS);
    const req1 = await counts();
    const obj1 = await agentObjectCounts(agentProcs);
    const cpuSpent = Object.fromEntries(Object.entries(cpu1).map(([k, v]) => [k, Math.round((v - (cpu0[k] ?? 0)) * 10) / 10]));
    const steadyMs = o.steadyMs ?? 40_000;
    await sleep(steadyMs);
    const peaks = sampler.result();
    say('memory: one more commit, changing one bundle of the repository');
    const change = await oneBundleChange(
      s,
      ms.up,
      repo,
      o.bundles * Math.min(o.targets, o.clusters),
      counts,
      () => cpuOfParts(parts, BENCH_PROCESS),
      () => agentObjectCounts(agentProcs),
    );
    const agentPeaks = procs.slice(1).map((p) => peaks[p.name] ?? Number.NaN);
    return {
      bundles: o.bundles,
      clusters: o.clusters,
      targets: o.targets,
      bundleDeployments: o.bundles * Math.min(o.targets, o.clusters),
      rolloutMs,
      steadyMs,
      cpuSeconds: cpuSpent,
      timeline,
      objects: objectDelta(obj0, obj1),
      change,
      apiRequests: { upstream: topDeltas(req0[0] ?? {}, req1[0] ?? {}), downstream: topDeltas(req0[1] ?? {}, req1[1] ?? {}) },
      controller: { peakRssBytes: peaks[controller.name] ?? Number.NaN, rssAfterBytes: controller.rss() ?? Number.NaN, idleRssBytes: idle[0] ?? Number.NaN },
      agents: {
        peakRssBytes: agentPeaks,
        maxPeakRssBytes: Math.max(...agentPeaks),
        medianPeakRssBytes: median(agentPeaks),
        medianRssAfterBytes: median(procs.slice(1).map((p) => p.rss() ?? Number.NaN)),
        medianIdleRssBytes: median(idle.slice(1)),
      },
    };
  } finally {
    sampler.stop();
    await Promise.all(procs.map((p) => p.stop()));
    await ms.up.close();
    await Promise.all(planes.map((p) => p.stop()));
  }
}
