import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { cacheDir } from '../stack/binaries.js';
import { BUNDLE_ARTIFACT_TYPE, BUNDLE_FILE_MEDIA_TYPE, RegistryClient, pullBundleToDirectory, pushBundle, type ArtifactFile } from '../lib/oci/index.js';
import { folderBytes } from './lib/content.js';
import type { BenchStack } from './lib/fleet.js';
import { median } from './lib/stats.js';

/**
 * Throughput against the real `oras` CLI: the same registry, the same run, alternating who goes first each
 * round, each tool pushing its own freshly generated copy of a bundle of many random files (so no blob
 * is already there for anyone) and pulling it back into an empty folder with an empty cache. Times are
 * wall clock around the whole operation: reading and hashing the files, every request, writing the files.
 * Both tools run with their default concurrency (Flotilla 8 blobs at a time; oras push 5, pull 3).
 */

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
}

async function flotillaRound(c: RoundContext): Promise<Timing[]> {
  const src = join(c.work, `flotilla-src-${c.round}`);
  const names = await writeBundle(src, c.files, c.bytes);
  const bundle: ArtifactFile[] = names.map((path) => ({ path, file: join(src, path) }));
  const repo = `${c.s.registry.host}/tp/flotilla-r${c.round}`;
  const pusher = new RegistryClient({ registry: c.s.registry.host, basicHTTP: true });
  let reference = '';
  const push = await timed(async () => {
    reference = (await pushBundle(pusher, repo, bundle, { bundleName: 'tp', bundleNamespace: 'bench' }, 'v1')).reference;
  });
  await pusher.close();
  const out = join(c.work, `flotilla-out-${c.round}`);
  const puller = new RegistryClient({ registry: c.s.registry.host, basicHTTP: true, blobCacheDir: join(c.work, `flotilla-cache-${c.round}`) });
  const pull = await timed(() => pullBundleToDirectory(puller, reference, out));
  await puller.close();
  if (folderBytes(out) !== c.bytes) throw new Error(`flotilla pulled ${folderBytes(out)} bytes, expected ${c.bytes}`);
  await Promise.all([src, out, join(c.work, `flotilla-cache-${c.round}`)].map((d) => rm(d, { recursive: true, force: true })));
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

/** Runs `rounds` alternating rounds. */
export async function benchThroughput(s: BenchStack, o: { mib: number; files: number; rounds: number }, say: (m: string) => void): Promise<ThroughputResult> {
  const oras = orasPath();
  const orasVersion = `oras ${/Version:\s*(\S+)/.exec((await run(oras, ['version'])).stdout)?.[1] ?? '(unknown version)'}`;
  const work = join(s.work, 'throughput');
  const loadStart = loadavg()[0] ?? Number.NaN;
  const bytes = o.mib * 1024 * 1024;
  const timings: Timing[] = [];
  for (let round = 0; round < o.rounds; round++) {
    const c: RoundContext = { s, oras, work, round, files: o.files, bytes };
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
  return { bytes, files: o.files, rounds: o.rounds, orasVersion, load, timings, push: pair('push'), pull: pair('pull') };
}
