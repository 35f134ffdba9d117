import { table } from '../cli/table.js';
import type { BytesResult } from './bytes.js';
import type { HelmBytesResult } from './helmbytes.js';
import { fieldBreakdown, type Footprint } from './etcd.js';
import type { StatusSize } from './statussize.js';
import type { LatencyResult } from './latency.js';
import type { WebhookResult } from './webhook.js';
import type { MemoryResult } from './memory.js';
import { hostileReport, type HostileResult } from './hostile.js';
import type { ThroughputResult } from './throughput.js';
import type { RegistryImplementation } from '../stack/registry.js';
import type { BenchResults } from './main.js';
import { fmtBytes, fmtMs, fmtRate } from './lib/stats.js';

/**
 * The human-readable report of a run: one table per benchmark, from the same object written as JSON.
 */

function section(title: string, body: string): string {
  return `\n== ${title}\n${body}`;
}

function bytesReport(r: BytesResult): string {
  const rows = r.changes.map((c, i) => [
    String(i + 1),
    fmtBytes(c.changedFileBytes),
    `${fmtBytes(c.controllerBlobBytes + c.controllerManifestBytes)} (${c.controllerBlobsUploaded} up, ${c.controllerBlobsSkipped} skipped)`,
    ...c.agents.map((a) => `${fmtBytes(a.blobBytes + a.manifestBytes)} (${a.blobsDownloaded} blobs, ${a.cacheHits} cached)`),
    `${fmtBytes(c.log.controllerUploadBytes)} / ${fmtBytes(c.log.agentsBlobBytes + c.log.agentsManifestBytes)}`,
    c.agents.map((a) => fmtBytes(a.cacheGrowth)).join(' / '),
    fmtMs(c.propagationMs),
  ]);
  const agents = r.changes[0]?.agents.map((a) => `agent ${a.cluster} down`) ?? [];
  return [
    `bundle: ${r.files} files, ${fmtBytes(r.bundleBytes)} (gzipped as one stream: ${fmtBytes(r.bundleGzipBytes)}); first deployment uploaded ${fmtBytes(r.initial.controllerBlobBytes)}, agents downloaded ${r.initial.agentBlobBytes.map(fmtBytes).join(' / ')}`,
    table(['change', 'file changed', 'controller up (events)', ...agents, 'registry log: up / agents down', 'cache growth', 'commit->Ready'], rows).trimEnd(),
    `median per change: changed file ${fmtBytes(r.median.changedFileBytes)}; controller uploads ${fmtBytes(r.median.controllerTotal)}; each agent downloads ${fmtBytes(r.median.agentTotal)}` +
      ` (manifest included); a single-layer design moves the whole bundle: ${fmtBytes(r.bundleBytes)} raw, ${fmtBytes(r.bundleGzipBytes)} gzipped, each way`,
    `agents' peak RSS growth with this bundle: deploying it ${r.agentPeakRssGrowth.deploy.map(fmtBytes).join(' / ')}; one resync of it ${r.agentPeakRssGrowth.resync.map(fmtBytes).join(' / ')}`,
    ...(r.encrypted
      ? [
          `with spec.encryption (AES-GCM-SIV): median blobs per change ${r.encrypted.controllerBlobsUploaded} up / ${r.encrypted.agentBlobsDownloaded} down per agent;` +
            ` without: ${r.encrypted.plain.controllerBlobsUploaded} up / ${r.encrypted.plain.agentBlobsDownloaded} down (target: the same)`,
        ]
      : []),
  ].join('\n');
}

function helmBytesReport(r: HelmBytesResult): string {
  const rows = r.changes.map((c, i) => {
    const worst = Math.max(...c.agents.map((a) => a.blobsDownloaded));
    return [
      String(i + 1),
      fmtBytes(c.changedFileBytes),
      `${fmtBytes(c.controllerBlobBytes + c.controllerManifestBytes)} (${c.controllerBlobsUploaded} blobs)`,
      c.agents.map((a) => `${fmtBytes(a.blobBytes + a.manifestBytes)} (${a.blobsDownloaded} blobs)`).join(' / '),
      `${worst} <= 2 ${worst <= 2 ? 'MET' : 'MISSED'}`,
      fmtMs(c.propagationMs),
    ];
  });
  return [
    `chart: ${r.templates} templates, ${fmtBytes(r.chartBytes)} in all; target per change: the changed template's layer and the config blob (2 blobs) plus the manifest, each way`,
    table(['change', 'template changed', 'controller up', 'agents down (blobs + manifest)', 'blobs per agent vs target', 'commit->Ready'], rows).trimEnd(),
    `median per change: template ${fmtBytes(r.median.changedFileBytes)}; controller uploads ${fmtBytes(r.median.controllerTotal)}; each agent downloads ${fmtBytes(r.median.agentTotal)} (manifest ${fmtBytes(r.median.agentManifestBytes)}); the whole chart is ${fmtBytes(r.chartBytes)}`,
  ].join('\n');
}

function throughputReport(r: ThroughputResult): string {
  const row = (tool: 'flotilla' | 'oras') => {
    const push = tool === 'flotilla' ? r.push.flotillaMs : r.push.orasMs;
    const pull = tool === 'flotilla' ? r.pull.flotillaMs : r.pull.orasMs;
    return [tool, `${fmtMs(push)} (${fmtRate(r.bytes, push)})`, `${fmtMs(pull)} (${fmtRate(r.bytes, pull)})`];
  };
  return [
    `bundle: ${r.files} files, ${fmtBytes(r.bytes)}; ${r.rounds} alternating rounds; ${r.orasVersion}; Flotilla's client ${r.flotilla === 'in-process' ? "in the benchmark's process" : 'in a process of its own (production node flags)'}`,
    table(['tool', 'push (median)', 'pull (median)'], [row('flotilla'), row('oras')]).trimEnd(),
    `ratio Flotilla / oras (time; above 1 = Flotilla slower; target at most 1.0): push ${r.push.ratio.toFixed(2)} ${r.push.ratio <= 1 ? 'MET' : 'NOT MET'}, pull ${r.pull.ratio.toFixed(2)} ${r.pull.ratio <= 1 ? 'MET' : 'NOT MET'}`,
  ].join('\n');
}

function statusReport(r: StatusSize[]): string {
  const vs = (b: number, target: number) => `${fmtBytes(b)} ${b < target ? 'MET' : 'NOT MET'}`;
  return [
    table(
      ['clusters', 'Bundle status', 'GitRepo status', 'ClusterGroup status', 'target', 'non-ready listed / not ready'],
      r.map((x) => [
        String(x.clusters),
        vs(x.bundleBytes, x.targetBytes),
        vs(x.gitRepoBytes, x.targetBytes),
        vs(x.clusterGroupBytes, x.targetBytes),
        `< ${fmtBytes(x.targetBytes)}`,
        `${x.listed} / ${x.notReady}`,
      ]),
    ).trimEnd(),
  ].join('\n');
}

function etcdReport(r: Footprint[]): string {
  const rows = r.map((f) => {
    if (f.outcome === 'refused' || !f.bundle || !f.bundleDeployments) return [f.size, f.mode, 'refused (see below)', '', '', '', '', ''];
    const b = f.bundle;
    const d = f.bundleDeployments;
    return [
      f.size,
      f.mode,
      fmtBytes(b.etcdBytes),
      `${d.count} x ${fmtBytes(d.etcdBytes / Math.max(1, d.count))}`,
      fmtBytes(b.etcdBytes + d.etcdBytes),
      fmtBytes(b.apiJsonBytes + d.apiJsonBytes),
      `${b.writes + d.writes} / ${fmtBytes(b.historyBytes + d.historyBytes)}`,
      fmtBytes(f.dbGrowthBytes ?? Number.NaN),
    ];
  });
  return [
    table(
      ['bundle', 'mode', 'Bundle in etcd', 'BundleDeployments in etcd', 'total in etcd', 'total as API JSON', 'writes / bytes written', 'etcd db growth'],
      rows,
    ).trimEnd(),
    '"in etcd": exact value bytes read from the upstream etcd; "bytes written": each write stores a whole copy until compaction (every 5 min).',
    '',
    'Per object in OCI mode (target: at most 2 KiB each), and where its JSON bytes go:',
    table(
      ['bundle', 'object', 'in etcd', 'vs 2 KiB', 'managedFields', 'annotations', 'labels', 'other metadata', 'spec', 'status'],
      r.flatMap((f) =>
        f.mode !== 'oci' || !f.bundle || !f.bundleDeployments
          ? []
          : (
              [
                ['Bundle', f.bundle],
                ['BundleDeployment', f.bundleDeployments],
              ] as const
            ).map(([kind, s]) => {
              const n = Math.max(1, s.count);
              const per = s.etcdBytes / n;
              const p = s.parts;
              return [
                f.size,
                kind,
                fmtBytes(per),
                per <= 2048 ? 'MET' : 'NOT MET',
                ...[p.managedFields, p.annotations, p.labels, p.otherMetadata, p.spec, p.status].map((b) => fmtBytes(b / n)),
              ];
            }),
      ),
    ).trimEnd(),
    '',
    'By field, per object in OCI mode (each managedFields writer; each member of metadata, spec, status):',
    ...fieldBreakdown(r, fmtBytes),
    ...r.filter((f) => f.outcome === 'refused').map((f) => `refused, ${f.size} ${f.mode} mode: ${f.refusal ?? ''}`),
  ].join('\n');
}

/** Issue 19's propagation target, ms: the polling interval (1 s) + 3 s, and + 10 s from 1,000 clusters on. */
export function latencyTargetMs(clusters: number): number {
  return 1000 + (clusters >= 1000 ? 10_000 : 3000);
}

function latencyReport(r: LatencyResult[]): string {
  const rows = r.map((l) => {
    const target = latencyTargetMs(l.clusters);
    return [
      l.scenario,
      String(l.commits),
      fmtMs(l.allReady.p50),
      `${fmtMs(l.allReady.p95)} vs ${fmtMs(target)}: ${l.allReady.p95 <= target ? 'MET' : 'NOT MET'}`,
      fmtMs(l.allReady.max),
      `${fmtMs(l.perCluster.p50)} / ${fmtMs(l.perCluster.p95)}`,
      `${fmtMs(l.controller.p50)} + ${fmtMs(l.fanOut.p50)} + ${fmtMs(l.agents.p50)}`,
      l.registrationMs !== undefined ? fmtMs(l.registrationMs) : '-',
    ];
  });
  const total = (l: LatencyResult) => l.upstreamRequestsTotalPerCommit ?? l.upstreamRequestsPerCommit.reduce((sum, x) => sum + x.count, 0);
  return [
    table(
      [
        'clusters',
        'commits',
        'p50 all Ready',
        'p95 all Ready vs target',
        'max',
        'per cluster p50 / p95',
        'p50 stages: controller + fan-out + agents',
        'registration',
      ],
      rows,
    ).trimEnd(),
    'commit (push returned) -> new content applied and Ready on every target cluster; GitRepo pollingInterval 1s; target: polling + 3 s (+ 10 s from 1,000 clusters).',
    ...r.flatMap((l) =>
      l.serverFanOut || l.eventLoopDelay
        ? [
            `${l.scenario}: fan-out by the API server's clock (managedFields, whole seconds) p50 ${l.serverFanOut ? fmtMs(l.serverFanOut.p50) : '-'}, p95 ${l.serverFanOut ? fmtMs(l.serverFanOut.p95) : '-'}; this process's event-loop delay p99 ${l.eventLoopDelay ? fmtMs(l.eventLoopDelay.p99) : '-'}, max ${l.eventLoopDelay ? fmtMs(l.eventLoopDelay.max) : '-'}`,
          ]
        : [],
    ),
    ...r.map(
      (l) =>
        `upstream API requests per commit, ${l.scenario}: ${total(l).toFixed(0)} in all, ${(total(l) / l.clusters).toFixed(1)} per cluster; most: ${l.upstreamRequestsPerCommit
          .slice(0, 6)
          .map((x) => `${x.request} ${x.count}`)
          .join(', ')}`,
    ),
    ...r.flatMap((l) => {
      const cpu = Object.entries(l.cpuSecondsPerCommit ?? {}).sort((a, b) => b[1] - a[1]);
      const sum = cpu.reduce((n, [, v]) => n + v, 0);
      return cpu.length === 0
        ? []
        : [
            `CPU-seconds per commit, ${l.scenario}: ${sum.toFixed(2)} in all (${((sum * 1000) / l.clusters).toFixed(0)} ms per cluster): ${cpu
              .map(([k, v]) => `${k} ${v.toFixed(2)}`)
              .join(', ')}`,
          ];
    }),
  ].join('\n');
}

function webhookReport(r: WebhookResult): string {
  return [
    table(
      [
        'clusters',
        'commits',
        'p50 all Ready',
        'p95 all Ready (target 2 s)',
        'max',
        'p50 webhook answered',
        'p50 Bundle updated',
        'p50 BundleDeployments written',
      ],
      [
        [
          String(r.clusters),
          String(r.commits),
          fmtMs(r.allReady.p50),
          fmtMs(r.allReady.p95),
          fmtMs(r.allReady.max),
          fmtMs(r.webhookAnswer.p50),
          fmtMs(r.controller.p50),
          fmtMs(r.deployments.p50),
        ],
      ],
    ).trimEnd(),
    'commit (push returned) -> signed GitHub push webhook -> new content Ready on every target cluster; GitRepo pollingInterval 1h.',
  ].join('\n');
}

const MIB = 1024 * 1024;

/** Issue 19's memory and fan-out targets beside what one memory run measured. */
function memoryTargets(r: MemoryResult): string[] {
  const met = (ok: boolean) => (ok ? 'MET' : 'NOT MET');
  const perAgent = r.bundleDeployments / r.clusters;
  const lines = [
    `targets: agent idle at most 80 MiB: ${fmtBytes(r.agents.medianIdleRssBytes)} (median) ${met(r.agents.medianIdleRssBytes <= 80 * MIB)}` +
      (perAgent >= 100
        ? `; agent with 100 BundleDeployments at most 100 MiB: ${fmtBytes(r.agents.maxPeakRssBytes)} (max) ${met(r.agents.maxPeakRssBytes <= 100 * MIB)}`
        : '') +
      (r.bundles >= 1000 && r.clusters >= 10
        ? `; controller with 1,000 bundles on 10 clusters at most 150 MiB: ${fmtBytes(r.controller.peakRssBytes)} ${met(r.controller.peakRssBytes <= 150 * MIB)}` +
          `; 1,000 bundles on 10 clusters Ready within 30 s of the commit: ${fmtMs(r.rolloutMs)} ${met(r.rolloutMs <= 30_000)}`
        : ''),
  ];
  if (r.bundleDeployments > 0) {
    // Each bundle of the benchmark holds one object: one object per BundleDeployment.
    const per = (n: number) => (n / r.bundleDeployments).toFixed(2);
    const once = (n: number) => met(n <= r.bundleDeployments);
    lines.push(
      `each downstream object read and applied once per change: per object of the rollout read ${per(r.objects.deployReads)} time(s) to plan its deployment ` +
        `${once(r.objects.deployReads)}, applied ${per(r.objects.applied)} time(s) ${once(r.objects.applied)} (target 1 each); ` +
        `drift checks (every 30 s) read ${per(r.objects.driftReads)} per object meanwhile`,
    );
  }
  const firstBundle = r.timeline.find((t) => t.bundles > 0);
  if (r.timeline.length > 0) {
    lines.push(
      `progress (s after the commit: Bundles / BundleDeployments / Ready): ${r.timeline.map((t) => `${t.s}: ${t.bundles}/${t.bundleDeployments}/${t.ready}`).join(', ')}` +
        (firstBundle ? `; first Bundles seen at ${firstBundle.s} s` : ''),
    );
  }
  const cpu = Object.values(r.cpuSeconds).reduce((a, b) => a + b, 0);
  if (r.bundleDeployments > 0 && r.rolloutMs > 0) {
    lines.push(
      `CPU per bundle deployment, every process of the fleet: ${((cpu * 1000) / r.bundleDeployments).toFixed(0)} ms (${cpu.toFixed(0)} CPU-seconds in ${fmtMs(r.rolloutMs)}, ${((cpu / (r.rolloutMs / 1000)) * 100).toFixed(0)} % of one core)`,
    );
  }
  return lines;
}

function memoryReport(r: MemoryResult): string {
  return [
    `${r.bundles} bundles across ${r.clusters} clusters, each bundle on ${r.targets}: ${r.bundleDeployments} bundle deployments (${Math.round(r.bundleDeployments / r.clusters)} per agent); rollout ${fmtMs(r.rolloutMs)}, then ${fmtMs(r.steadyMs)} steady`,
    table(
      ['process', 'RSS before the commit', 'peak RSS (VmHWM)', 'RSS at the end'],
      [
        ['controller', fmtBytes(r.controller.idleRssBytes), fmtBytes(r.controller.peakRssBytes), fmtBytes(r.controller.rssAfterBytes)],
        [
          `agent (median of ${r.agents.peakRssBytes.length})`,
          fmtBytes(r.agents.medianIdleRssBytes),
          fmtBytes(r.agents.medianPeakRssBytes),
          fmtBytes(r.agents.medianRssAfterBytes),
        ],
        ['agent (max)', '', fmtBytes(r.agents.maxPeakRssBytes), ''],
      ],
    ).trimEnd(),
    ...memoryTargets(r),
    `upstream API requests during the rollout: ${r.apiRequests.upstream
      .slice(0, 6)
      .map((x) => `${x.request} ${x.count}`)
      .join(', ')}`,
    `downstream API requests during the rollout: ${r.apiRequests.downstream
      .slice(0, 6)
      .map((x) => `${x.request} ${x.count}`)
      .join(', ')}`,
    `CPU seconds during the rollout: ${Object.entries(r.cpuSeconds)
      .sort(([, a], [, b]) => b - a)
      .map(([k, v]) => `${k} ${v.toFixed(0)}`)
      .join(', ')}`,
    ...(r.change
      ? [
          `a later commit changing 1 of the ${r.bundles} bundles: Ready everywhere ${fmtMs(r.change.readyMs)} after it (polling every 15 s); ` +
            `registry requests ${r.change.registryRequests} (${Object.entries(r.change.registryByKind)
              .map(([k, v]) => `${k} ${v}`)
              .join(', ')}); upstream writes ${r.change.upstreamWrites.map((x) => `${x.request} ${x.count}`).join(', ')}; CPU-seconds ${Object.entries(
              r.change.cpuSeconds ?? {},
            )
              .sort(([, a], [, b]) => b - a)
              .map(([k, v]) => `${k} ${v.toFixed(1)}`)
              .join(', ')}` +
            `; the changed object read ${r.change.objects.deployReads} time(s) to plan it and applied ${r.change.objects.applied} time(s) (target 1 each: ` +
            `${r.change.objects.deployReads <= 1 && r.change.objects.applied <= 1 ? 'MET' : 'NOT MET'}), drift checks read ${r.change.objects.driftReads} objects meanwhile`,
        ]
      : []),
  ].join('\n');
}

/** How a run's registry is named in its report and progress. */
export const REGISTRY_NAMES: Record<RegistryImplementation, string> = {
  'distribution-2': "Debian's Docker Distribution 2.8.2",
  'distribution-3': 'Docker Distribution v3.0.0',
};

/** Renders every benchmark present in `out`. */
export function report(out: BenchResults): string {
  const m = out.machine;
  let text = `Flotilla benchmarks, ${out.startedAt}, ${m.nproc} cores (${m.cpuModel}), ${fmtBytes(m.memoryBytes)} RAM, Node ${m.node}, load at start ${m.loadAvg}, at end ${out.loadAtEnd}; ran ${fmtMs(out.durationMs)}\ncommand: ${out.command}\n${out.registry ? `registry: ${REGISTRY_NAMES[out.registry]}\n` : ''}`;
  if (out.results.bytes) text += section('Bytes per change (1 file of the bundle changes)', bytesReport(out.results.bytes as BytesResult));
  if (out.results['helm-bytes'])
    text += section('Bytes per change in a Helm chart (1 template of the chart changes)', helmBytesReport(out.results['helm-bytes'] as HelmBytesResult));
  if (out.results.throughput)
    text += section('Throughput vs the oras CLI (same registry, same run, alternating)', throughputReport(out.results.throughput as ThroughputResult));
  if (out.results.status)
    text += section('rolled-up status size (synthetic fleet, every state, long messages)', statusReport(out.results.status as StatusSize[]));
  if (out.results.etcd)
    text += section('etcd footprint per bundle (Bundle + BundleDeployments, 2 clusters), OCI mode vs etcd mode', etcdReport(out.results.etcd as Footprint[]));
  if (out.results.latency)
    text += section('Propagation latency (git commit -> Ready on every target cluster)', latencyReport(out.results.latency as LatencyResult[]));
  if (out.results.webhook)
    text += section('Webhook latency (git commit -> webhook -> Ready on every target cluster)', webhookReport(out.results.webhook as WebhookResult));
  if (out.results.memory) text += section('Memory (peak RSS of separate processes)', memoryReport(out.results.memory as MemoryResult));
  if (out.results.hostile)
    text += section(
      'Hostile content (refusal in this process; another GitRepo on the real fleet meanwhile)',
      hostileReport(out.results.hostile as HostileResult),
    );
  for (const [name, message] of Object.entries(out.errors)) text += section(`${name}: FAILED`, message);
  return `${text}\n`;
}
