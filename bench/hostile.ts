import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import yaml from 'js-yaml';
import { table } from '../cli/table.js';
import { API_VERSION } from '../lib/api/index.js';
import type { BundleFile } from '../lib/bundle/manifest.js';
import { contentsID, filesToResources } from '../lib/bundle/index.js';
import { messageOf } from '../lib/errors.js';
import { BundleRenderer } from '../lib/isolate/bundle.js';
import { Isolate, siblingModule } from '../lib/isolate/isolate.js';
import { costlyToRender, hostileCorpus, type HostileInput } from '../e2e/support/hostile.js';
import { W, applyGitRepo, waitDeployed, type BenchStack } from './lib/fleet.js';
import { REAL_LABEL, type RealFleet } from './lib/realfleet.js';
import { fmtBytes, fmtMs, median } from './lib/stats.js';
import { resetPeakRss } from './lib/procs.js';

/**
 * Hostile content (issue 13). Two parts:
 * 1. Per input, in this process, through the same BundleRenderer the controller (reading a checkout) and the
 *    agent (rendering files) use, with the default limits: time to refusal, peak RSS growth of the process
 *    (VmHWM after resetting it through /proc/self/clear_refs), and the longest event-loop stall
 *    (perf_hooks monitorEventLoopDelay), each beside its target (refusal < 1 s, RSS growth < 100 MiB,
 *    stall < 200 ms). A large legitimate CRD bundle is measured the same way and must pass.
 * 2. On the real fleet (controller and agents as compiled processes): the commit->Ready time of a good
 *    GitRepo on both clusters, alone and while a hostile GitRepo and a costly Bundle are being refused.
 * Figures only; nothing passes or fails on time.
 */

/** Targets printed beside the figures. */
export const HOSTILE_TARGETS = { refusalMs: 1000, rssGrowthBytes: 100 * 1024 * 1024, stallMs: 200 } as const;

/** One input through one path. */
export interface HostileRow {
  input: string;
  path: 'controller' | 'agent';
  outcome: string;
  ms: number;
  rssGrowthBytes: number;
  maxStallMs: number;
}

/** Everything the benchmark measured. */
export interface HostileResult {
  rows: HostileRow[];
  /** commit->Ready of the good GitRepo on both clusters, ms, per round. */
  alone: number[];
  withHostile: number[];
  /** Peak RSS growth of the real processes during the hostile rounds, by process. */
  processRssGrowth: Record<string, number>;
}

function vm(field: 'VmHWM' | 'VmRSS', pid: number | 'self' = 'self'): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

/** A CRD-like bundle (as large charts ship): `count` files of about 2.5 MB, schemas about 45 levels deep. */
export function crdBundle(count: number): BundleFile[] {
  const schema = (depth: number): Record<string, unknown> => {
    if (depth >= 19) return { type: 'string', description: 'A field.' };
    const width = depth >= 16 ? 5 : depth === 0 ? 14 : 1;
    return {
      type: 'object',
      description: 'An object.',
      properties: Object.fromEntries(Array.from({ length: width }, (_, i) => [`f${depth}x${i}`, schema(depth + 1)])),
    };
  };
  return Array.from({ length: count }, (_, f) => ({
    path: `crd${f}.yaml`,
    content: Buffer.from(
      yaml.dump(
        {
          apiVersion: 'apiextensions.k8s.io/v1',
          kind: 'CustomResourceDefinition',
          metadata: { name: `things${f}.example.com` },
          spec: {
            group: 'example.com',
            scope: 'Namespaced',
            names: { kind: `Thing${f}`, plural: `things${f}` },
            versions: [{ name: 'v1', served: true, storage: true, schema: { openAPIV3Schema: schema(0) } }],
          },
        },
        { lineWidth: -1 },
      ),
    ),
  }));
}

/** Runs `work`, measuring time, peak RSS growth of this process and the longest event-loop stall. */
async function measure(input: string, path: HostileRow['path'], work: () => Promise<unknown>): Promise<HostileRow> {
  const base = vm('VmRSS');
  resetPeakRss();
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  const started = performance.now();
  let outcome: string;
  try {
    await work();
    outcome = 'passed';
  } catch (err) {
    outcome = `refused: ${(err as { reason?: string }).reason ?? 'error'}: ${messageOf(err).slice(0, 70)}`;
  }
  const ms = performance.now() - started;
  loop.disable();
  return { input, path, outcome, ms, rssGrowthBytes: Math.max(0, vm('VmHWM') - base), maxStallMs: loop.max / 1e6 };
}

async function writeCheckout(dir: string, files: readonly BundleFile[]): Promise<void> {
  await rm(dir, { recursive: true, force: true });
  for (const f of files) {
    await mkdir(dirname(join(dir, 'app', f.path)), { recursive: true });
    await writeFile(join(dir, 'app', f.path), f.content);
  }
}

const cm = (name: string, v: string) => `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${name}\ndata:\n  v: "${v}"\n`;
const filesOf = (c: HostileInput): BundleFile[] => [
  { path: 'base.yaml', content: Buffer.from(cm('base', '1')) },
  ...Object.entries(c.extraFiles ?? {}).map(([path, content]) => ({ path, content: Buffer.from(content) })),
  { path: c.file, content: Buffer.from(c.content) },
];

/**
 * Harmless files of the same total size as `files` (comment lines), with an empty patch in each of
 * `overlays`, so that a warm-up gets a worker of the same heap size (a render with overlays gets a heap
 * that holds maxNodes nodes).
 */
function lookalike(files: readonly BundleFile[], overlays: readonly string[] = []): BundleFile[] {
  const bytes = files.reduce((n, f) => n + f.content.length, 0);
  const line = `# ${'x'.repeat(97)}\n`;
  return [
    { path: 'warm.yaml', content: Buffer.from(`${cm('warm', '1')}${line.repeat(Math.ceil(bytes / line.length))}`) },
    ...overlays.map((name) => ({ path: `overlays/${name}/warm_patch.json`, content: Buffer.from('[]') })),
  ];
}

/**
 * Part 1: every input through the controller's and the agent's path, in this process (no stack needed).
 * Each measurement uses a fresh renderer (no remembered refusal) on a shared pool of workers that a
 * harmless look-alike warmed first, so the figures are those of the refusal, not of a worker's start-up.
 */
export async function hostileInProcess(say: (m: string) => void): Promise<HostileRow[]> {
  const isolate = new Isolate({ preload: [siblingModule(import.meta.url, '../lib/isolate/bundle-tasks')] });
  const fresh = () => new BundleRenderer({ cacheBytes: 0, isolate });
  const work = await mkdtemp(join(tmpdir(), 'bench-hostile-'));
  const rows: HostileRow[] = [];
  try {
    const inputs: { input: HostileInput; files: BundleFile[] }[] = [...hostileCorpus(''), costlyToRender()].map((c) => ({ input: c, files: filesOf(c) }));
    const crds = crdBundle(4);
    const legit = {
      input: { input: `large CRD bundle, ${fmtBytes(crds.reduce((n, f) => n + f.content.length, 0))} (must pass)` } as HostileInput,
      files: crds,
    };
    for (const { input, files } of [...inputs, legit]) {
      const checkout = join(work, 'checkout');
      if (!input.overlays) {
        await writeCheckout(checkout, lookalike(files));
        await fresh().readGitRepoBundles(checkout, { repoName: 'bench', paths: ['app'] }, 'warm-up');
        await writeCheckout(checkout, files);
        rows.push(
          await measure(input.input, 'controller', () => fresh().readGitRepoBundles(checkout, { repoName: 'bench', paths: ['app'] }, 'bench checkout')),
        );
      }
      await fresh().render(lookalike(files, input.overlays), input.overlays ? { overlays: input.overlays } : {}, 'warm-up');
      rows.push(await measure(input.input, 'agent', () => fresh().render(files, input.overlays ? { overlays: input.overlays } : {}, 'bench bundle')));
      say(`hostile: ${input.input}: ${rows.at(-1)?.outcome ?? ''}`);
    }
  } finally {
    await isolate.close();
    await rm(work, { recursive: true, force: true });
  }
  return rows;
}

/** Part 2: the good GitRepo's commit->Ready alone, and while hostile content is refused. */
async function onFleet(
  s: BenchStack,
  fleet: RealFleet,
  rounds: number,
  say: (m: string) => void,
): Promise<Pick<HostileResult, 'alone' | 'withHostile' | 'processRssGrowth'>> {
  const good = s.unique('hostile-good');
  const bad = s.unique('hostile-bad');
  const targets = [{ clusterSelector: { matchLabels: { [REAL_LABEL]: 'true' } } }];
  await s.git.createRepo(good);
  await s.git.createRepo(bad);
  await s.git.commit(good, { 'app/cm.yaml': cm('bench-hostile-good', '0') }, 'v0');
  await s.git.commit(bad, { 'app/cm.yaml': cm('bench-hostile-bad', '0') }, 'v0');
  await applyGitRepo(s, { name: good, repo: good, paths: ['app'], targets, ociReference: `${s.registry.host}/bench-hostile` });
  await applyGitRepo(s, { name: bad, repo: bad, paths: ['app'], targets, ociReference: `${s.registry.host}/bench-hostile` });
  const clusters = fleet.agents.length;
  let version = 0;
  const goodCommit = async () => {
    const commit = await s.git.commit(good, { 'app/cm.yaml': cm('bench-hostile-good', String(++version)) }, `v${version}`);
    const started = performance.now();
    await waitDeployed(s.up, good, commit, clusters);
    return performance.now() - started;
  };
  await goodCommit(); // first deployment: not measured
  const alone: number[] = [];
  for (let i = 0; i < rounds; i++) alone.push(await goodCommit());
  say(`hostile: good GitRepo alone: ${alone.map(fmtMs).join(', ')}`);
  const procs = [fleet.controller, ...fleet.agents.map((a) => a.proc)];
  const base = new Map(procs.map((p) => [p.name, p.rss() ?? 0]));
  for (const p of procs) resetPeakRss(p.pid);
  const corpus = [...hostileCorpus('app'), costlyToRender()];
  const withHostile: number[] = [];
  for (let i = 0; i < rounds * corpus.length; i++) {
    const c = corpus[i % corpus.length] as HostileInput;
    const name = `${bad}-direct-${i}`;
    if (c.overlays) {
      const files = filesOf(c);
      await s.up.apply(
        {
          apiVersion: API_VERSION,
          kind: 'Bundle',
          metadata: { name, namespace: W },
          spec: { contentsID: contentsID(files), targetRestrictions: targets, resources: filesToResources(files), yaml: { overlays: c.overlays } },
        },
        'flotilla-bench',
      );
    } else {
      await s.git.commit(bad, { [c.file]: c.content }, c.input);
    }
    withHostile.push(await goodCommit());
    if (c.overlays) await s.up.delete({ apiVersion: API_VERSION, kind: 'Bundle', namespace: W, name });
    else await s.git.commit(bad, { [c.file]: null }, 'restore');
  }
  say(`hostile: good GitRepo with hostile content refused meanwhile: ${withHostile.map(fmtMs).join(', ')}`);
  const processRssGrowth = Object.fromEntries(procs.map((p) => [p.name, Math.max(0, (p.peakRss() ?? 0) - (base.get(p.name) ?? 0))]));
  return { alone, withHostile, processRssGrowth };
}

/** Runs both parts. */
export async function benchHostile(s: BenchStack, fleet: RealFleet, rounds: number, say: (m: string) => void): Promise<HostileResult> {
  const rows = await hostileInProcess(say);
  return { rows, ...(await onFleet(s, fleet, rounds, say)) };
}

const beside = (value: string, ok: boolean, target: string) => `${value} ${ok ? '<' : '>='} ${target}${ok ? '' : ' MISSED'}`;

/** The report section. */
export function hostileReport(r: HostileResult): string {
  const t = HOSTILE_TARGETS;
  // The targets are for refusals; content that must pass shows its figures without one.
  const rows = r.rows.map((x) => {
    const passed = x.outcome === 'passed';
    return [
      x.input,
      x.path,
      x.outcome,
      passed ? fmtMs(x.ms) : beside(fmtMs(x.ms), x.ms < t.refusalMs, fmtMs(t.refusalMs)),
      passed ? fmtBytes(x.rssGrowthBytes) : beside(fmtBytes(x.rssGrowthBytes), x.rssGrowthBytes < t.rssGrowthBytes, fmtBytes(t.rssGrowthBytes)),
      beside(`${x.maxStallMs.toFixed(0)} ms`, x.maxStallMs < t.stallMs, `${t.stallMs} ms`),
    ];
  });
  return [
    table(['input', 'path', 'outcome', 'time (target)', 'peak RSS growth (target)', 'longest event-loop stall (target)'], rows).trimEnd(),
    `another GitRepo's commit->Ready on both clusters: alone median ${fmtMs(median(r.alone))} (${r.alone.map(fmtMs).join(', ')}); ` +
      `while hostile content is refused median ${fmtMs(median(r.withHostile))} (${r.withHostile.map(fmtMs).join(', ')})`,
    `peak RSS growth of the real processes during the hostile rounds: ${Object.entries(r.processRssGrowth)
      .map(([k, v]) => `${k} ${beside(fmtBytes(v), v < t.rssGrowthBytes, fmtBytes(t.rssGrowthBytes))}`)
      .join(', ')}`,
  ].join('\n');
}
