import { randomBytes, randomInt } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { configMapFiles, configMapOfSize, folderBytes, gzippedSize, totalSize } from './lib/content.js';
import { W, applyGitRepo, bundleDeploymentsOf, deleteGitRepo, waitDeployed, type BenchStack } from './lib/fleet.js';
import { API_VERSION } from '../lib/api/index.js';
import { waitFor } from '../stack/net.js';
import { REAL_LABEL, type RealFleet } from './lib/realfleet.js';
import { fmtBytes, median } from './lib/stats.js';
import { resetPeakRss, scrapeMetrics, type FlotillaProcess } from './lib/procs.js';
import { sampleSum } from '../lib/ops/exposition.js';
import { blobFile, parseAccessLog, readTap, settledLength, tallyTap, trafficByAgent, type TappedEvent } from './lib/traffic.js';

/**
 * Bytes per change: a 100-file, 20 MiB bundle is deployed to both real clusters (OCI mode); then one file
 * at a time changes (same size, new random bytes) and we count what the controller uploaded and what each
 * agent downloaded, three independent ways: the registry clients' events (tap.ts), the registry's access
 * log, and the growth of each agent's blob cache. A single-layer design (Fleet's Content object, Flux's
 * tarball) moves the whole bundle for any change: that figure is shown next to ours.
 */

/** Covers one resync of every agent (their default interval is 30 s). */
const RESYNC_WINDOW_MS = 35_000;

/** Per process, the largest rise of its RSS over the lowest RSS before it, sampled every 100 ms for `ms`. */
async function largestRise(procs: readonly FlotillaProcess[], ms: number): Promise<number[]> {
  const low = procs.map(() => Number.POSITIVE_INFINITY);
  const rise = procs.map(() => 0);
  for (const end = Date.now() + ms; Date.now() < end; ) {
    procs.forEach((p, i) => {
      const rss = p.rss() ?? 0;
      low[i] = Math.min(low[i] ?? rss, rss);
      rise[i] = Math.max(rise[i] ?? 0, rss - (low[i] ?? rss));
    });
    await new Promise((r) => setTimeout(r, 100));
  }
  return rise;
}

/** Figures of one one-file change. */
export interface ChangeFigures {
  changedFileBytes: number;
  /** Controller: blob bytes uploaded (events) and manifest bytes. */
  controllerBlobBytes: number;
  controllerManifestBytes: number;
  controllerBlobsUploaded: number;
  controllerBlobsSkipped: number;
  /** Per agent: blob bytes downloaded (events), manifest bytes, blobs served from the cache. */
  agents: { cluster: string; blobBytes: number; manifestBytes: number; blobsDownloaded: number; cacheHits: number; cacheGrowth: number }[];
  /** The registry's access log: bytes uploaded by the controller, downloaded by all agents (blobs + manifests). */
  log: { controllerUploadBytes: number; agentsBlobBytes: number; agentsManifestBytes: number };
  /** Controller's own Prometheus counters, deltas. */
  metrics: { blobsPushed: number; bytesPushed: number };
  propagationMs: number;
}

/** Result of the benchmark. */
export interface BytesResult {
  files: number;
  bundleBytes: number;
  bundleGzipBytes: number;
  initial: { controllerBlobBytes: number; agentBlobBytes: number[] };
  changes: ChangeFigures[];
  median: { changedFileBytes: number; controllerTotal: number; agentTotal: number };
  /**
   * Peak RSS growth of each agent process, bytes: while it deployed the bundle (VmHWM over its RSS just
   * before), and in one 30 s resync of it afterwards (drift and readiness checks of the 100 objects: the
   * largest rise of its RSS, sampled every 100 ms, over the lowest RSS before it).
   */
  agentPeakRssGrowth: { deploy: number[]; resync: number[] };
  /** The same changes with `spec.encryption` on: blobs moved per change, to compare with the plain run's. */
  encrypted?: LayerCounts & { plain: LayerCounts };
}

/** Median blobs moved per one-file change: uploaded by the controller, downloaded by each agent. */
export interface LayerCounts {
  controllerBlobsUploaded: number;
  agentBlobsDownloaded: number;
}

function layerCounts(changes: readonly ChangeFigures[]): LayerCounts {
  return {
    controllerBlobsUploaded: median(changes.map((c) => c.controllerBlobsUploaded)),
    agentBlobsDownloaded: median(changes.flatMap((c) => c.agents.map((a) => a.blobsDownloaded))),
  };
}

/** Turns on encryption for a bench GitRepo (a Secret with a fresh key) and waits until every cluster runs an encrypted version. */
async function encryptRepo(s: BenchStack, repo: string, expected: number): Promise<void> {
  const manager = 'flotilla-bench-encryption';
  await s.up.apply(
    { apiVersion: 'v1', kind: 'Secret', metadata: { name: `${repo}-key`, namespace: W }, stringData: { key: randomBytes(32).toString('base64') } },
    manager,
  );
  await s.up.apply(
    { apiVersion: API_VERSION, kind: 'GitRepo', metadata: { name: repo, namespace: W }, spec: { encryption: { secretRef: { name: `${repo}-key` } } } },
    manager,
  );
  await waitFor(
    async () => {
      const bds = await bundleDeploymentsOf(s.up, repo);
      return (
        bds.length === expected &&
        bds.every((bd) => bd.spec.oci?.encryptionKeyID !== undefined && bd.status?.observedGeneration === bd.metadata.generation && bd.status?.ready === true)
      );
    },
    { what: `GitRepo ${repo}: every cluster on an encrypted version`, timeoutMs: 600_000, intervalMs: 500 },
  );
}

async function metric(port: number, name: string): Promise<number> {
  return sampleSum(await scrapeMetrics(port), name);
}

function manifestBytes(events: readonly TappedEvent[], since: number, storageDir: string): number {
  return events
    .filter((e) => e.t >= since && e.type === 'manifest-pushed')
    .reduce((n, e) => {
      const file = blobFile(storageDir, (e as { digest: string }).digest);
      return n + (existsSync(file) ? statSync(file).size : Number.NaN);
    }, 0);
}

/** Where the counters stood before a change (see {@link mark}). */
export interface Marks {
  t: number;
  log: number;
  caches: number[];
  metrics: { blobs: number; bytes: number };
}

/** Reads every counter {@link measureChange} compares against. */
export async function mark(s: BenchStack, fleet: RealFleet): Promise<Marks> {
  return {
    t: Date.now(),
    log: await settledLength(s.registry.logFile),
    caches: fleet.agents.map((a) => folderBytes(join(a.cacheDir, 'blobs'))),
    metrics: {
      blobs: await metric(fleet.metricsPort, 'flotilla_artifact_pushed_blobs_total'),
      bytes: await metric(fleet.metricsPort, 'flotilla_artifact_pushed_bytes_total'),
    },
  };
}

/** What moved since `m`, counted three ways (events, the registry's access log, cache growth). */
export async function measureChange(s: BenchStack, fleet: RealFleet, m: Marks, changedFileBytes: number, propagationMs: number): Promise<ChangeFigures> {
  await settledLength(s.registry.logFile);
  const logText = readFileSync(s.registry.logFile, 'utf8').slice(m.log);
  const byAgent = trafficByAgent(parseAccessLog(logText), s.registry.storageDir);
  const manifestGets = parseAccessLog(logText).filter(
    (r) => r.userAgent === 'flotilla-agent' && r.method === 'GET' && r.target.includes('/manifests/') && r.status === 200,
  );
  const ctlEvents = readTap(fleet.controllerTap);
  const ctl = tallyTap(ctlEvents, m.t);
  const ctlManifest = manifestBytes(ctlEvents, m.t, s.registry.storageDir);
  const ctlLog = byAgent['flotilla-controller'];
  const agentManifestSize = manifestGets[0]?.bytes ?? 0;
  return {
    changedFileBytes,
    propagationMs,
    controllerBlobBytes: ctl.bytesUploaded,
    controllerManifestBytes: ctlManifest,
    controllerBlobsUploaded: ctl.blobsUploaded,
    controllerBlobsSkipped: ctl.blobsSkipped,
    agents: fleet.agents.map((a, i) => {
      const t = tallyTap(readTap(a.tapFile), m.t);
      return {
        cluster: a.cluster.name,
        blobBytes: t.bytesDownloaded,
        manifestBytes: t.manifestsFetched * agentManifestSize,
        blobsDownloaded: t.blobsDownloaded,
        cacheHits: t.cacheHits,
        cacheGrowth: folderBytes(join(a.cacheDir, 'blobs')) - (m.caches[i] ?? 0),
      };
    }),
    log: {
      controllerUploadBytes: ctlLog?.bytesUploaded ?? 0,
      agentsBlobBytes: byAgent['flotilla-agent']?.bytesDownloaded ?? 0,
      agentsManifestBytes: manifestGets.reduce((n, r) => n + r.bytes, 0),
    },
    metrics: {
      blobsPushed: (await metric(fleet.metricsPort, 'flotilla_artifact_pushed_blobs_total')) - m.metrics.blobs,
      bytesPushed: (await metric(fleet.metricsPort, 'flotilla_artifact_pushed_bytes_total')) - m.metrics.bytes,
    },
  };
}

/** Runs the benchmark on the real fleet: without encryption, then the same changes with it (layer counts compared). */
export async function benchBytes(
  s: BenchStack,
  fleet: RealFleet,
  o: { files: number; mib: number; rounds: number },
  say: (m: string) => void,
): Promise<BytesResult> {
  const plain = await bytesRun(s, fleet, o, say, false);
  const encrypted = await bytesRun(s, fleet, o, say, true);
  return { ...plain, encrypted: { ...layerCounts(encrypted.changes), plain: layerCounts(plain.changes) } };
}

async function bytesRun(
  s: BenchStack,
  fleet: RealFleet,
  o: { files: number; mib: number; rounds: number },
  say: (m: string) => void,
  encrypt: boolean,
): Promise<BytesResult> {
  const files = configMapFiles('big', o.files, o.mib * 1024 * 1024);
  const bundleBytes = totalSize(files);
  const repo = s.unique(encrypt ? 'bench-bytes-enc' : 'bench-bytes');
  await s.git.createRepo(repo);
  let commit = await s.git.commit(repo, { ...files, 'big/fleet.yaml': 'defaultNamespace: bench-bytes\n' }, 'a 100-file bundle');
  const m0 = await mark(s, fleet);
  const procs = fleet.agents.map((a) => a.proc);
  const peakSince = () => {
    const base = procs.map((p) => p.rss() ?? 0);
    for (const p of procs) resetPeakRss(p.pid);
    return () => procs.map((p, i) => Math.max(0, (p.peakRss() ?? 0) - (base[i] ?? 0)));
  };
  const deployPeak = peakSince();
  await applyGitRepo(s, {
    name: repo,
    repo,
    paths: ['big'],
    targets: [{ clusterSelector: { matchLabels: { [REAL_LABEL]: 'true' } } }],
    ociReference: `${s.registry.host}/bench`,
  });
  if (encrypt) await encryptRepo(s, repo, fleet.agents.length);
  await waitDeployed(s.up, repo, commit, fleet.agents.length);
  const first = await measureChange(s, fleet, m0, bundleBytes, Date.now() - m0.t);
  const deploy = deployPeak();
  say(`bytes${encrypt ? ' (encrypted)' : ''}: first deployment of ${o.files} files / ${bundleBytes} bytes done`);
  // One resync of the deployed bundle (the agents' default interval is 30 s): the largest rise of each agent's
  // RSS over a low point before it, sampled, since the deployment's memory is still being given back in the
  // window (the render worker retires after 60 s idle), which a peak over the RSS at its start would hide.
  // The encrypted run, reported for its layer counts only, skips it.
  let resync: number[] = [];
  if (!encrypt) {
    resync = await largestRise(procs, RESYNC_WINDOW_MS);
    say(`bytes: agents' peak RSS growth: deploying ${deploy.map(fmtBytes).join(' / ')}, one resync ${resync.map(fmtBytes).join(' / ')}`);
  }
  const changes: ChangeFigures[] = [];
  const paths = Object.keys(files);
  for (let r = 0; r < o.rounds; r++) {
    const path = paths[randomInt(paths.length)] ?? '';
    const name = /([^/]+)\.yaml$/.exec(path)?.[1] ?? 'cm';
    const content = configMapOfSize(name, files[path]?.length ?? 0);
    const m = await mark(s, fleet);
    commit = await s.git.commit(repo, { [path]: content }, `change ${path}`);
    await waitDeployed(s.up, repo, commit, fleet.agents.length);
    changes.push(await measureChange(s, fleet, m, content.length, Date.now() - m.t));
    say(`bytes${encrypt ? ' (encrypted)' : ''}: change ${r + 1}/${o.rounds} (${path}) measured`);
  }
  // Gone before the next benchmark: its agents' 30 s resync of this 20 MiB bundle would land in that one's figures.
  await deleteGitRepo(s.up, repo);
  const agentTotals = changes.flatMap((c) => c.agents.map((a) => a.blobBytes + a.manifestBytes));
  return {
    files: o.files,
    bundleBytes,
    bundleGzipBytes: gzippedSize(files),
    initial: { controllerBlobBytes: first.controllerBlobBytes, agentBlobBytes: first.agents.map((a) => a.blobBytes) },
    agentPeakRssGrowth: { deploy, resync },
    changes,
    median: {
      changedFileBytes: median(changes.map((c) => c.changedFileBytes)),
      controllerTotal: median(changes.map((c) => c.controllerBlobBytes + c.controllerManifestBytes)),
      agentTotal: median(agentTotals),
    },
  };
}
