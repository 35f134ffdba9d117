/**
 * `npm run bench`: starts the real stack once, runs the benchmarks the knobs select (bench/lib/knobs.ts),
 * prints a table per benchmark and writes every figure as JSON (bench/results/latest.json by default).
 * Benchmarks report figures; nothing here passes or fails on time. Wiring only.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { stopAll } from '../stack/proc.js';
import { benchBytes } from './bytes.js';
import { benchHelmBytes } from './helmbytes.js';
import { ensureBinaries } from '../stack/binaries.js';
import { benchThroughput } from './throughput.js';
import { benchEtcd } from './etcd.js';
import { benchStatusSize } from './statussize.js';
import { benchLatencyReal, benchLatencySims } from './latency.js';
import { benchMemory } from './memory.js';
import { benchHostile } from './hostile.js';
import { benchWebhook } from './webhook.js';
import { freePort } from '../stack/net.js';
import { compileForBench } from './lib/build.js';
import { openStack, type BenchStack } from './lib/fleet.js';
import { readKnobs, type BenchmarkName, type Knobs } from './lib/knobs.js';
import { machine } from './lib/machine.js';
import type { RegistryImplementation } from '../stack/registry.js';
import { ROOT, profileProcessesInto } from './lib/procs.js';
import { startRealFleet, type RealFleet } from './lib/realfleet.js';
import { REGISTRY_NAMES, report } from './report.js';

const say = (m: string): void => {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${m}\n`);
};

/** Everything one run measured, as written to the JSON file. */
export interface BenchResults {
  machine: ReturnType<typeof machine>;
  command: string;
  knobs: Knobs;
  startedAt: string;
  durationMs: number;
  /** The 1, 5 and 15 min load averages when the run ended (other work on the machine shows here). */
  loadAtEnd: string;
  /** Which Distribution served the stack's registry (stack/registry.ts). */
  registry?: RegistryImplementation;
  results: Partial<Record<BenchmarkName, unknown>>;
  errors: Partial<Record<BenchmarkName, string>>;
}

async function runOne(name: BenchmarkName, out: BenchResults, fn: () => Promise<unknown>): Promise<void> {
  const started = Date.now();
  say(`${name}: starting`);
  try {
    out.results[name] = await fn();
    say(`${name}: done in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  } catch (err) {
    out.errors[name] = err instanceof Error ? err.message : String(err);
    say(`${name}: FAILED: ${out.errors[name]}`);
  }
}

async function run(knobs: Knobs, out: BenchResults): Promise<void> {
  const want = (n: BenchmarkName) => knobs.BENCH_ONLY.includes(n);
  let s: BenchStack | undefined;
  let fleet: RealFleet | undefined;
  // Rolled-up status sizes need no stack (synthetic fleet, the controller's own roll-up functions).
  if (want('status')) await runOne('status', out, () => benchStatusSize(knobs.BENCH_STATUS_CLUSTERS.map(Number)));
  if (knobs.BENCH_ONLY.every((n) => n === 'status')) return;
  try {
    say('compiling the sources (processes run compiled JavaScript, as in production)');
    await compileForBench(ROOT, say);
    s = await openStack(knobs.BENCH_STACK_DIR, say, knobs.BENCH_REGISTRY);
    const stack = s;
    out.registry = stack.registry.implementation;
    say(`registry: ${REGISTRY_NAMES[out.registry]}`);
    // The agents render Helm bundles with the pinned helm; they inherit the environment at spawn.
    if (want('helm-bytes')) process.env.FLOTILLA_HELM = (await ensureBinaries()).helm;
    // The controller serves webhooks when the webhook benchmark runs; processes inherit the environment at spawn.
    const webhookPort = want('webhook') ? await freePort() : 0;
    if (webhookPort) process.env.FLOTILLA_WEBHOOK_ADDRESS = `127.0.0.1:${webhookPort}`;
    if (want('bytes') || want('helm-bytes') || want('etcd') || want('latency') || want('webhook') || want('hostile')) fleet = await startRealFleet(stack, say);
    const real = fleet;
    if (want('bytes') && real) {
      await runOne('bytes', out, () =>
        benchBytes(stack, real, { files: knobs.BENCH_BYTES_FILES, mib: knobs.BENCH_BYTES_MIB, rounds: knobs.BENCH_BYTES_ROUNDS }, say),
      );
    }
    if (want('helm-bytes') && real) {
      await runOne('helm-bytes', out, () => benchHelmBytes(stack, real, { templates: knobs.BENCH_HELM_TEMPLATES, rounds: knobs.BENCH_HELM_ROUNDS }, say));
    }
    if (want('throughput')) {
      await runOne('throughput', out, () =>
        benchThroughput(stack, { mib: knobs.BENCH_TP_MIB, files: knobs.BENCH_TP_FILES, rounds: knobs.BENCH_TP_ROUNDS, flotilla: knobs.BENCH_TP_FLOTILLA }, say),
      );
    }
    if (want('etcd') && real) {
      await runOne('etcd', out, () => benchEtcd(stack, knobs.BENCH_ETCD_SIZES, real.agents.length, say));
    }
    if (want('latency') && real) {
      const sims = knobs.BENCH_LAT_SIMS.map(Number).filter((n) => n > 0);
      await runOne('latency', out, async () => [
        await benchLatencyReal(stack, real, knobs.BENCH_LAT_COMMITS, say),
        ...(await benchLatencySims(stack, real, sims, knobs.BENCH_LAT_COMMITS, 'downstream-2', say)),
      ]);
    }
    if (want('webhook') && real) {
      await runOne('webhook', out, () => benchWebhook(stack, real, webhookPort, knobs.BENCH_LAT_COMMITS, say));
    }
    if (want('hostile') && real) {
      await runOne('hostile', out, () => benchHostile(stack, real, knobs.BENCH_HOSTILE_ROUNDS, say));
    }
    await fleet?.stop();
    fleet = undefined;
    if (want('memory')) {
      await runOne('memory', out, () =>
        benchMemory(stack, { bundles: knobs.BENCH_MEM_BUNDLES, clusters: knobs.BENCH_MEM_CLUSTERS, targets: knobs.BENCH_MEM_TARGETS }, say),
      );
    }
  } finally {
    await fleet?.stop();
    await s?.stop(Object.keys(out.errors).length > 0 || knobs.BENCH_KEEP);
    await stopAll();
  }
}

async function main(): Promise<number> {
  const knobs = readKnobs(process.env);
  profileProcessesInto(knobs.BENCH_CPU_PROF);
  const started = Date.now();
  const out: BenchResults = {
    machine: machine(),
    command: `${Object.entries(process.env)
      .filter(([k]) => k.startsWith('BENCH_') && k !== 'BENCH_TAP_FILE')
      .map(([k, v]) => `${k}=${v ?? ''} `)
      .join('')}npm run bench`,
    knobs,
    startedAt: new Date(started).toISOString(),
    durationMs: 0,
    loadAtEnd: '',
    results: {},
    errors: {},
  };
  await run(knobs, out);
  out.durationMs = Date.now() - started;
  out.loadAtEnd = machine().loadAvg;
  const file = resolve(ROOT, knobs.BENCH_OUT);
  await mkdir(dirname(file), { recursive: true });
  await writeFile(file, `${JSON.stringify(out, null, 2)}\n`);
  process.stdout.write(report(out));
  process.stdout.write(`\nJSON written to ${file}\n`);
  return Object.keys(out.errors).length > 0 ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
