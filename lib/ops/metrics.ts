/**
 * Metrics through prom-client: each process builds its own {@link Registry} (never prom-client's global
 * one, so that several controllers or agents in one test process stay apart) with the default process and
 * Node runtime collectors, and registers its own counters, gauges and histograms on it. Names follow
 * `flotilla_<subsystem>_<what>_<unit>` (docs/metrics.md lists them); the call shapes are prom-client's:
 * `counter.inc(labels, value)`, `gauge.set(labels, value)`, `histogram.observe(labels, seconds)`.
 */
import { createRequire } from 'node:module';
import type * as Prom from 'prom-client';
import type { ReconcileObserver } from '../kube/controller.js';

/**
 * prom-client's modules one by one, not its index: the index loads every collector and exporter it has, and
 * its CPU collector imports @opentelemetry/api for exemplars (which Flotilla does not use). Together that is
 * 4-5 MiB of every process's resident memory (bench/README.md, Memory); the CPU counters are built here
 * instead, under the same names. The paths are those of the prom-client version package.json pins;
 * lib/ops/metrics.test.ts fails if an upgrade moves them or a default metric goes missing.
 */
const promModule = createRequire(import.meta.url);
const prom = <T>(path: string): T => promModule(`prom-client/lib/${path}`) as T;

export const Registry = prom<typeof Prom.Registry>('registry');
export type Registry = Prom.Registry;
export const Counter = prom<typeof Prom.Counter>('counter');
export type Counter<L extends string = string> = Prom.Counter<L>;
export const Gauge = prom<typeof Prom.Gauge>('gauge');
export type Gauge<L extends string = string> = Prom.Gauge<L>;
export const Histogram = prom<typeof Prom.Histogram>('histogram');
export type Histogram<L extends string = string> = Prom.Histogram<L>;

/** prom-client's default collectors but its CPU one (see above), each `(registry, config) => void`. */
const DEFAULT_COLLECTORS = [
  'processStartTime',
  'osMemoryHeap',
  'processOpenFileDescriptors',
  'processMaxFileDescriptors',
  'eventLoopLag',
  ...(typeof process.getActiveResourcesInfo === 'function' ? ['processResources'] : []),
  'processHandles',
  'processRequests',
  'heapSizeAndUsed',
  'heapSpacesSizeAndUsed',
  'version',
  'gc',
];

/** `process_cpu_user_seconds_total`, `process_cpu_system_seconds_total` and their sum `process_cpu_seconds_total`. */
function cpuCounters(registry: Registry): void {
  let last = process.cpuUsage();
  // The registry reads metrics in the order they were registered: the first one's collect sets all three.
  new Counter({
    name: 'process_cpu_user_seconds_total',
    help: 'Total user CPU time spent in seconds.',
    registers: [registry],
    collect(this: Counter) {
      const now = process.cpuUsage();
      const user = (now.user - last.user) / 1e6;
      const sys = (now.system - last.system) / 1e6;
      last = now;
      this.inc(user);
      system.inc(sys);
      total.inc(user + sys);
    },
  });
  const system = new Counter({ name: 'process_cpu_system_seconds_total', help: 'Total system CPU time spent in seconds.', registers: [registry] });
  const total = new Counter({ name: 'process_cpu_seconds_total', help: 'Total user and system CPU time spent in seconds.', registers: [registry] });
}

function collectDefaultMetrics(registry: Registry): void {
  cpuCounters(registry);
  const config = { register: registry, eventLoopMonitoringPrecision: 10 };
  for (const name of DEFAULT_COLLECTORS) prom<(r: Registry, c: typeof config) => void>(`metrics/${name}`)(registry, config);
}

/** Options of {@link createRegistry}. */
export interface RegistryOptions {
  /**
   * Collect the default process and Node runtime metrics (CPU, resident memory, heap, event-loop lag, GC,
   * open file descriptors) under their standard `process_` and `nodejs_` names; default true. Tests that
   * build many registries in one process may turn them off.
   */
  defaultMetrics?: boolean;
}

/** A new registry for one process (see the module comment). */
export function createRegistry(options: RegistryOptions = {}): Registry {
  const registry = new Registry();
  // No prefix: dashboards and alerts expect the standard process_* and nodejs_* names of every client library.
  if (options.defaultMetrics ?? true) collectDefaultMetrics(registry);
  return registry;
}

/** Histogram buckets for durations, in seconds (a reconcile takes milliseconds to a minute). */
export const DURATION_BUCKETS: readonly number[] = [0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/** Registers a counter on `registry`. Its name must end in `_total`. */
export function counter<L extends string = never>(registry: Registry, name: string, help: string, labelNames: readonly L[] = []): Counter<L> {
  return new Counter<L>({ name, help, labelNames, registers: [registry] });
}

/** Registers a gauge on `registry`; `collect` (optional) refreshes it at every scrape. */
export function gauge<L extends string = never>(
  registry: Registry,
  name: string,
  help: string,
  labelNames: readonly L[] = [],
  collect?: (gauge: Gauge<L>) => void,
): Gauge<L> {
  return new Gauge<L>({
    name,
    help,
    labelNames,
    registers: [registry],
    ...(collect
      ? {
          collect(this: Gauge<L>) {
            collect(this);
          },
        }
      : {}),
  });
}

/** Registers a histogram of durations in seconds on `registry`. */
export function histogram<L extends string = never>(
  registry: Registry,
  name: string,
  help: string,
  labelNames: readonly L[] = [],
  buckets: readonly number[] = DURATION_BUCKETS,
): Histogram<L> {
  return new Histogram<L>({ name, help, labelNames, buckets: [...buckets], registers: [registry] });
}

/**
 * The current value of a counter or gauge for exactly `labels` (0 when that series does not exist yet),
 * for tests and benchmarks that read a process's own metrics.
 */
export async function metricValue(metric: Counter<string> | Gauge<string>, labels: Record<string, string> = {}): Promise<number> {
  const { values } = await metric.get();
  const wanted = Object.entries(labels);
  const match = values.find((v) => {
    const have = Object.entries(v.labels);
    return have.length === wanted.length && wanted.every(([k, x]) => String(v.labels[k]) === x);
  });
  return match?.value ?? 0;
}

/** The reconcile metrics of every process, fed by lib/kube's controllers through {@link reconcileObserver}. */
export interface ReconcileMetrics {
  /** `flotilla_reconcile_total{controller, outcome}`: reconciles by controller and outcome (success, error). */
  reconciles: Counter<'controller' | 'outcome'>;
  /** `flotilla_reconcile_errors_total{controller}`: failed reconciles by controller. */
  reconcileErrors: Counter<'controller'>;
  /** `flotilla_reconcile_duration_seconds{controller}`: how long reconciles took. */
  reconcileDuration: Histogram<'controller'>;
}

/** Registers the {@link ReconcileMetrics} on `registry`. */
export function reconcileMetrics(registry: Registry): ReconcileMetrics {
  return {
    reconciles: counter(registry, 'flotilla_reconcile_total', 'Reconciles by controller and outcome (success, error).', ['controller', 'outcome']),
    reconcileErrors: counter(registry, 'flotilla_reconcile_errors_total', 'Failed reconciles by controller.', ['controller']),
    reconcileDuration: histogram(registry, 'flotilla_reconcile_duration_seconds', 'Duration of reconciles by controller, in seconds.', ['controller']),
  };
}

/** A {@link ReconcileObserver} (the Controller option) that records into `metrics`. */
export function reconcileObserver(metrics: ReconcileMetrics): ReconcileObserver {
  return {
    observe(controller, outcome, seconds) {
      metrics.reconciles.inc({ controller, outcome });
      if (outcome === 'error') metrics.reconcileErrors.inc({ controller });
      metrics.reconcileDuration.observe({ controller }, seconds);
    },
  };
}
