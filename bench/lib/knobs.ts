import { z } from 'zod';
import { REGISTRY_IMPLEMENTATIONS } from '../../stack/registry.js';

/**
 * The benchmark knobs: environment variables read once by bench/main.ts, each with a default that keeps a
 * full `npm run bench` under about 30 minutes on a 2-core machine. Scale down for a quick look
 * (e.g. BENCH_TP_MIB=20 BENCH_LAT_SIMS=10), up for steadier figures (more rounds and commits).
 */

/** Every benchmark, in the order they run. */
export const BENCHMARKS = ['status', 'bytes', 'helm-bytes', 'throughput', 'etcd', 'latency', 'webhook', 'memory', 'hostile'] as const;
/** The name of one benchmark. */
export type BenchmarkName = (typeof BENCHMARKS)[number];

const int = (fallback: number, min = 1) => z.coerce.number().int().min(min).default(fallback);
const list = (fallback: string) =>
  z
    .string()
    .default(fallback)
    .transform((s) =>
      s
        .split(',')
        .map((x) => x.trim())
        .filter(Boolean),
    );

/** Parses a size such as "10KiB", "1MiB", "512" (bytes). */
export function parseSize(text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(B|KiB|MiB|GiB)?$/i.exec(text.trim());
  if (!m) throw new Error(`not a size: "${text}" (use e.g. 10KiB, 1MiB)`);
  const unit = (m[2] ?? 'B').toLowerCase();
  const factor = unit === 'kib' ? 1024 : unit === 'mib' ? 1024 ** 2 : unit === 'gib' ? 1024 ** 3 : 1;
  return Math.round(Number(m[1]) * factor);
}

const KnobsSchema = z.object({
  BENCH_ONLY: list(BENCHMARKS.join(',')).describe('Benchmarks to run, comma-separated.'),
  BENCH_STACK_DIR: z.string().optional().describe('Reuse a stack started with `npm run stack -- up --dir DIR` instead of starting one.'),
  BENCH_REGISTRY: z
    .enum(REGISTRY_IMPLEMENTATIONS)
    .default('distribution-3')
    .describe(
      "The stack's registry: Distribution v3.0.0 (built by the installer with --extras), or Debian's 2.8.2, which compiles its route table again for every request (about 1.5 ms of CPU each). Ignored with BENCH_STACK_DIR.",
    ),
  BENCH_KEEP: z
    .enum(['true', 'false', '1', '0'])
    .default('false')
    .transform((v) => v === 'true' || v === '1')
    .describe('Keep the scratch folder (process logs, blob caches, registry event taps) even when every benchmark ran.'),
  BENCH_CPU_PROF: z
    .string()
    .optional()
    .describe('A folder: every controller and agent process the benchmarks start writes a V8 CPU profile there when it stops (open it in Chrome DevTools).'),
  BENCH_OUT: z.string().default('bench/results/latest.json').describe('Where the JSON results go.'),
  BENCH_BYTES_FILES: int(100).describe('Files in the bundle of the bytes-per-change benchmark.'),
  BENCH_BYTES_MIB: int(20).describe('Total size of that bundle, MiB.'),
  BENCH_BYTES_ROUNDS: int(3).describe('One-file changes measured.'),
  BENCH_TP_MIB: int(100).describe('Size of the throughput bundle, MiB.'),
  BENCH_TP_FILES: int(200).describe('Files in the throughput bundle.'),
  BENCH_TP_ROUNDS: int(3).describe('Alternating rounds of push and pull, Flotilla vs oras.'),
  BENCH_TP_FLOTILLA: z
    .enum(['process', 'in-process'])
    .default('process')
    .describe("Where Flotilla's client runs in the throughput benchmark: a long-lived process of its own, as production runs it, or the benchmark's process."),
  BENCH_ETCD_SIZES: list('10KiB,100KiB,900KiB,1MiB,5MiB').describe('Bundle sizes of the etcd-footprint benchmark.'),
  BENCH_LAT_COMMITS: int(20).describe('Commits measured per propagation scenario.'),
  BENCH_STATUS_CLUSTERS: list('10,200,1000').describe('status: synthetic cluster counts of the rolled-up status sizes.'),
  BENCH_LAT_SIMS: list('50,200,1000').describe('Simulated cluster counts (0 or empty: only the 2 real clusters).'),
  BENCH_MEM_BUNDLES: int(1000).describe('Bundles of the memory benchmark.'),
  BENCH_MEM_CLUSTERS: int(10).describe('Clusters (agent processes) of the memory benchmark.'),
  BENCH_HELM_TEMPLATES: int(100).describe('helm-bytes: templates in the chart.'),
  BENCH_HELM_ROUNDS: int(3).describe('helm-bytes: one-template changes measured.'),
  BENCH_HOSTILE_ROUNDS: int(2).describe('Rounds of the hostile benchmark: good commits measured alone, and per hostile input while it is refused.'),
  BENCH_MEM_TARGETS: int(1).describe('Clusters each bundle of the memory benchmark goes to (10: every bundle on every cluster).'),
});

/** The parsed knobs. */
export type Knobs = z.output<typeof KnobsSchema>;

/** Reads the knobs from `env`; throws naming every bad one. */
export function readKnobs(env: NodeJS.ProcessEnv): Knobs {
  const raw = Object.fromEntries(
    Object.keys(KnobsSchema.shape)
      .filter((k) => env[k] !== undefined && env[k] !== '')
      .map((k) => [k, env[k]]),
  );
  const parsed = KnobsSchema.safeParse(raw);
  if (!parsed.success) throw new Error(`bad benchmark knobs: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  for (const name of parsed.data.BENCH_ONLY) {
    if (!(BENCHMARKS as readonly string[]).includes(name)) throw new Error(`BENCH_ONLY: unknown benchmark "${name}" (have ${BENCHMARKS.join(', ')})`);
  }
  for (const size of parsed.data.BENCH_ETCD_SIZES) parseSize(size);
  return parsed.data;
}

/** Every knob with its description and default, for the README and `--help`. */
export function describeKnobs(): { name: string; description: string }[] {
  return Object.entries(KnobsSchema.shape).map(([name, schema]) => ({ name, description: schema.description ?? '' }));
}
