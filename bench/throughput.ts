import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { cacheDir } from '../stack/binaries.js';
import { BUNDLE_ARTIFACT_TYPE, BUNDLE_FILE_MEDIA_TYPE } from '../lib/oci/index.js';
import { folderBytes } from './lib/content.js';
import type { BenchStack } from './lib/fleet.js';
import { median } from './lib/stats.js';
import { pullRound, pushRound } from './lib/transfer-ops.js';
import { startTransferProcess, type TransferProcess } from './lib/transfer.js';

/**
 * Throughput against the real `oras` CLI: the same registry, the same run, alternating who goes first each
 * round, each tool pushing its own freshly generated copy of a bundle of many random files (so no blob
 * is already there for anyone) and pulling it back into an empty folder with an empty cache. Times are
 * wall clock around the whole operation: reading and hashing the files, every request, writing the files.
 * Both tools run with their default concurrency (Flotilla 8 blobs at a time; oras push 5, pull 3).
 *
 * Flotilla's client runs where production runs it: in a long-lived process of its own, compiled, with the
 * node flags of the controller and the agent (bench/lib/transfer-worker.ts), not in the benchmark's process,
 * whose event loop and heap also carry the stack's supervision and the API clients. Each tool first moves one
 * small bundle, untimed, so that neither round 1 pays for a cold start (JIT, page cache).
 * `BENCH_TP_FLOTILLA=in-process` runs it in the benchmark's process instead, for comparison.
 */

/** Where Flotilla's client runs. */
export type FlotillaSide = 'process' | 'in-process';

/** One timed operation. */
export interface Timing {
  tool: 'flotilla' | 'oras';
  op: 'push' | 'pull';
  round: number;
  ms: number;
  bytes: number;
}

/** Result of the benchmark. */
export interface ThroughputResult {
  bytes: number;
  files: number;
  rounds: number;
  orasVersion: string;
  /** Where Flotilla's client ran. */
  flotilla: FlotillaSide;
  timings: Timing[];
  /** 1-minute load average before the first and after the last round (the machine is shared). */
  load: { start: number; end: number };
  /** Medians (ms) and the ratio Flotilla / oras (above 1: Flotilla is slower). */
  push: { flotillaMs: number; orasMs: number; ratio: number };
  pull: { flotillaMs: number; orasMs: number; ratio: number };
}

const run = promisify(execFile);

/** The oras binary install.sh --extras built. */
export function orasPath(): string {
  const recorded = (JSON.parse(readFileSync(join(cacheDir(), 'stack-binaries.json'), 'utf8')) as { oras?: string }).oras;
  if (recorded === undefined) throw new Error('no oras in ~/.cache/flotilla/stack-binaries.json: run bash stack/tools/install.sh --extras');
  return recorded;
}

async function writeBundle(dir: string, files: number, bytes: number): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const names: string[] = [];
  const each = Math.floor(bytes / files);
  for (let i = 0; i < files; i++) {
    const name = `dir-${i % 10}/file-${String(i).padStart(4, '0')}.bin`;
    await mkdir(join(dir, `dir-${i % 10}`), { recursive: true });
    await writeFile(join(dir, name), randomBytes(i === files - 1 ? bytes - each * (files - 1) : each));
    names.push(name);
  }
  return names;
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

interface RoundContext {
  s: BenchStack;
  oras: string;
  work: string;
  round: number;
  files: number;
  bytes: number;
  /** Flotilla's client in a process of its own; undefined: in the benchmark's process. */
  worker: TransferProcess | undefined;
}

async function flotillaRound(c: RoundContext): Promise<Timing[]> {
  const src = join(c.work, `flotilla-src-${c.round}`);
  const names = await writeBundle(src, c.files, c.bytes);
  const registry = c.s.registry.host;
  const repo = `${registry}/tp/flotilla-r${c.round}`;
  const pushWith = c.worker ? c.worker.push.bind(c.worker) : pushRound;
  const pullWith = c.worker ? c.worker.pull.bind(c.worker) : pullRound;
  let reference = '';
  const push = await timed(async () => {
    reference = await pushWith(registry, repo, src, names);
  });
  const out = join(c.work, `flotilla-out-${c.round}`);
  const cache = join(c.work, `flotilla-cache-${c.round}`);
  const pull = await timed(() => pullWith(registry, reference, out, cache));
  if (folderBytes(out) !== c.bytes) throw new Error(`flotilla pulled ${folderBytes(out)} bytes, expected ${c.bytes}`);
  await Promise.all([src, out, cache].map((d) => rm(d, { recursive: true, force: true })));
  return [
    { tool: 'flotilla', op: 'push', round: c.round, ms: push, bytes: c.bytes },
    { tool: 'flotilla', op: 'pull', round: c.round, ms: pull, bytes: c.bytes },
  ];
}

async function orasRound(c: RoundContext): Promise<Timing[]> {
  const src = join(c.work, `oras-src-${c.round}`);
  const names = await writeBundle(src, c.files, c.bytes);
  const ref = `${c.s.registry.host}/tp/oras-r${c.round}:v1`;
  // HOME is a scratch folder: oras touches no credential store of the machine.
  const opts = { cwd: src, env: { ...process.env, HOME: c.work }, maxBuffer: 16 * 1024 * 1024 };
  const push = await timed(() =>
    run(
      c.oras,
      ['push', '--plain-http', '--no-tty', ref, '--artifact-type', BUNDLE_ARTIFACT_TYPE, ...names.map((n) => `${n}:${BUNDLE_FILE_MEDIA_TYPE}`)],
      opts,
    ),
  );
  const out = join(c.work, `oras-out-${c.round}`);
  await mkdir(out, { recursive: true });
  const pull = await timed(() => run(c.oras, ['pull', '--plain-http', '--no-tty', ref, '-o', out], { ...opts, cwd: out }));
  if (folderBytes(out) !== c.bytes) throw new Error(`oras pulled ${folderBytes(out)} bytes, expected ${c.bytes}`);
  await Promise.all([src, out].map((d) => rm(d, { recursive: true, force: true })));
  return [
    { tool: 'oras', op: 'push', round: c.round, ms: push, bytes: c.bytes },
    { tool: 'oras', op: 'pull', round: c.round, ms: pull, bytes: c.bytes },
  ];
}

/** Runs `rounds` alternating rounds after one small untimed round of each tool. */
export async function benchThroughput(
  s: BenchStack,
  o: { mib: number; files: number; rounds: number; flotilla: FlotillaSide },
  say: (m: string) => void,
): Promise<ThroughputResult> {
  const oras = orasPath();
  const orasVersion = `oras ${/Version:\s*(\S+)/.exec((await run(oras, ['version'])).stdout)?.[1] ?? '(unknown version)'}`;
  const work = join(s.work, 'throughput');
  await mkdir(work, { recursive: true });
  const worker = o.flotilla === 'process' ? await startTransferProcess(join(s.work, 'transfer-worker.log')) : undefined;
  try {
    say(
      `throughput: Flotilla's client ${worker ? `in a process of its own (pid ${worker.pid}, production node flags)` : "in the benchmark's process"}; warming up`,
    );
    const warm: RoundContext = { s, oras, work, round: -1, files: 4, bytes: 1024 * 1024, worker };
    await flotillaRound(warm);
    await orasRound(warm);
    const loadStart = loadavg()[0] ?? Number.NaN;
    const bytes = o.mib * 1024 * 1024;
    const timings: Timing[] = [];
    for (let round = 0; round < o.rounds; round++) {
      const c: RoundContext = { s, oras, work, round, files: o.files, bytes, worker };
      const order = round % 2 === 0 ? [flotillaRound, orasRound] : [orasRound, flotillaRound];
      for (const step of order) timings.push(...(await step(c)));
      say(
        `throughput: round ${round + 1}/${o.rounds}: ${timings
          .slice(-4)
          .map((t) => `${t.tool} ${t.op} ${(t.ms / 1000).toFixed(2)} s`)
          .join(', ')}`,
      );
    }
    const med = (tool: Timing['tool'], op: Timing['op']) => median(timings.filter((t) => t.tool === tool && t.op === op).map((t) => t.ms));
    const pair = (op: Timing['op']) => ({ flotillaMs: med('flotilla', op), orasMs: med('oras', op), ratio: med('flotilla', op) / med('oras', op) });
    const load = { start: loadStart, end: loadavg()[0] ?? Number.NaN };
    say(`throughput: load ${load.start.toFixed(1)} at the start, ${load.end.toFixed(1)} at the end`);
    return { bytes, files: o.files, rounds: o.rounds, orasVersion, flotilla: o.flotilla, load, timings, push: pair('push'), pull: pair('pull') };
  } finally {
    await worker?.stop();
  }
}
