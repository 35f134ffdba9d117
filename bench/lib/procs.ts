import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { spawnManaged, type ManagedProcess } from '../../stack/proc.js';
import { freePort, waitFor } from '../../stack/net.js';
import { BUILD_DIR } from './build.js';
import { type Exposition, parseExposition } from '../../lib/ops/exposition.js';

/**
 * Flotilla processes started by the benchmarks (the controller, agents), the way production runs them:
 * `node --enable-source-maps controller/main.js ...` from the compiled sources (build.ts), one process each, registered with the stack's process
 * registry so none outlives the run. Memory is read from /proc/PID/status.
 */

/** The repository root. */
export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
/** Compiled JavaScript the processes run (see build.ts). */
const BUILT = join(ROOT, BUILD_DIR);
/** The preload that taps every registry client's events (see tap.ts), compiled. */
export const TAP_MODULE = join(BUILT, 'bench', 'lib', 'tap.js');

/** The node flags of the charts and the image (Dockerfile), so that the benchmarks measure what production runs. */
export const PRODUCTION_NODE_FLAGS = ['--enable-source-maps', '--max-semi-space-size=1'];

/** Where every Flotilla process started from now on writes a V8 CPU profile when it exits (knob BENCH_CPU_PROF); none when unset. */
let cpuProfileDir: string | undefined;

/** Sets the folder of {@link cpuProfileDir}. */
export function profileProcessesInto(dir: string | undefined): void {
  cpuProfileDir = dir;
}

/** A running Flotilla process. */
export interface FlotillaProcess {
  readonly name: string;
  readonly pid: number;
  readonly logFile: string;
  /** Port of /healthz and /readyz. */
  readonly probePort: number;
  /** Peak resident set (VmHWM) so far, bytes; undefined once it has exited. */
  peakRss(): number | undefined;
  /** Current resident set (VmRSS), bytes. */
  rss(): number | undefined;
  running(): boolean;
  stop(): Promise<void>;
}

/** A field of /proc/PID/status in bytes (the kernel reports kB). */
export function procStatusBytes(pid: number, field: 'VmHWM' | 'VmRSS'): number | undefined {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** The Prometheus page a Flotilla process serves on /metrics at loopback `port` (its probe or metrics port). */
export async function scrapeMetrics(port: number): Promise<Exposition> {
  const res = await request(`http://127.0.0.1:${port}/metrics`);
  return parseExposition(await res.body.text());
}

/** Resets the peak RSS (VmHWM) of a process to its current RSS; false where the kernel refuses. */
export function resetPeakRss(pid: number | 'self' = 'self'): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

/** Options of {@link startFlotillaProcess}. */
export interface StartOptions {
  name: string;
  /** Entry point relative to the repository root, e.g. controller/main.ts (its compiled .js is run). */
  entry: string;
  args: string[];
  logFile: string;
  /** When set, registry events of this process are appended to this file (see tap.ts). */
  tapFile?: string;
  /** Extra node flags, e.g. --max-old-space-size. */
  nodeFlags?: string[];
  /** How long to wait for /readyz; default 120 s. */
  readyTimeoutMs?: number;
  /** Wait for /readyz before returning; default true. */
  waitReady?: boolean;
}

/** Starts `node PRODUCTION_NODE_FLAGS ENTRY ARGS --probe-port P` (compiled) and waits until /readyz answers 200. */
export async function startFlotillaProcess(o: StartOptions): Promise<FlotillaProcess> {
  const probePort = await freePort();
  const entry = join(BUILT, o.entry.replace(/\.ts$/, '.js'));
  if (!existsSync(entry)) throw new Error(`${entry} does not exist: compile first (build.ts)`);
  const nodeArgs = [
    ...(o.nodeFlags ?? []),
    ...(cpuProfileDir ? ['--cpu-prof', `--cpu-prof-dir=${join(cpuProfileDir, o.name.replace(/[^\w.-]+/g, '_'))}`] : []),
    ...PRODUCTION_NODE_FLAGS,
    ...(o.tapFile ? ['--import', TAP_MODULE] : []),
    entry,
    ...o.args,
    '--probe-port',
    String(probePort),
  ];
  const proc: ManagedProcess = spawnManaged(o.name, process.execPath, nodeArgs, o.logFile, {
    cwd: ROOT,
    env: { ...process.env, ...(o.tapFile ? { BENCH_TAP_FILE: o.tapFile } : {}) },
  });
  const pid = proc.child.pid ?? -1;
  const handle: FlotillaProcess = {
    name: o.name,
    pid,
    logFile: o.logFile,
    probePort,
    peakRss: () => (proc.running() ? procStatusBytes(pid, 'VmHWM') : undefined),
    rss: () => (proc.running() ? procStatusBytes(pid, 'VmRSS') : undefined),
    running: () => proc.running(),
    stop: () => proc.stop(10_000),
  };
  if (o.waitReady === false) return handle;
  await waitFor(
    async () => {
      if (!proc.running()) throw new Error(`${o.name} exited; see ${o.logFile}`);
      const res = await request(`http://127.0.0.1:${probePort}/readyz`);
      await res.body.dump();
      return res.statusCode === 200;
    },
    { what: `${o.name} to be ready`, timeoutMs: o.readyTimeoutMs ?? 120_000, intervalMs: 250, context: () => tailOf(o.logFile) },
  );
  return handle;
}

/** The last lines of a log file, for error messages. */
export function tailOf(file: string, lines = 12): string {
  try {
    return `${file}:\n${readFileSync(file, 'utf8').trim().split('\n').slice(-lines).join('\n')}`;
  } catch {
    return `(no log at ${file})`;
  }
}

/** Samples the peak RSS of processes every `intervalMs` (VmHWM is monotonic; sampling keeps the last value seen before exit). */
export class PeakSampler {
  private readonly peaks = new Map<string, number>();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly procs: () => readonly FlotillaProcess[],
    intervalMs = 1000,
  ) {
    this.timer = setInterval(() => this.sample(), intervalMs);
    this.timer.unref();
  }

  /** Reads every process once now. */
  sample(): void {
    for (const p of this.procs()) {
      const v = p.peakRss();
      if (v !== undefined) this.peaks.set(p.name, Math.max(v, this.peaks.get(p.name) ?? 0));
    }
  }

  /** Peak RSS per process name, bytes. */
  result(): Record<string, number> {
    this.sample();
    return Object.fromEntries(this.peaks);
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

/** CPU time (user + system) a process has used, seconds, from /proc/PID/stat (clock ticks of 1/100 s). */
export function cpuSeconds(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return undefined;
  }
}

/** PIDs of running processes whose command line contains `needle` (e.g. a stack folder). */
export function pidsMatching(needle: string): { pid: number; command: string }[] {
  const out: { pid: number; command: string }[] = [];
  for (const entry of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const args = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').filter(Boolean);
      if (args.some((a) => a.includes(needle)))
        out.push({
          pid: Number(entry),
          command: args
            .map((a) => a.split('/').at(-1) ?? a)
            .slice(0, 2)
            .join(' '),
        });
    } catch {
      /* gone */
    }
  }
  return out;
}

/**
 * CPU seconds so far of each group of processes, plus this process under `ownLabel`, for "where did the time
 * go" notes: call once before and once after.
 */
export function cpuOfParts(parts: Record<string, number[]>, ownLabel: string): Record<string, number> {
  const out = Object.fromEntries(Object.entries(parts).map(([name, pids]) => [name, pids.reduce((n, pid) => n + (cpuSeconds(pid) ?? 0), 0)]));
  const own = process.cpuUsage();
  out[ownLabel] = (own.user + own.system) / 1e6;
  return out;
}
