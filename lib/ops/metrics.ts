/**
 * A tiny Prometheus registry: counters, gauges and histograms with labels, rendered in the text
 * exposition format on /metrics. Enough for Flotilla's own figures; no dependency needed.
 */

type LabelValues = Record<string, string>;

function labelKey(labels: LabelValues): string {
  const entries = Object.entries(labels).sort(([a], [b]) => a.localeCompare(b));
  return entries.map(([k, v]) => `${k}="${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`).join(',');
}

interface Metric { render(): string[] }

/** A monotonically increasing counter. */
export class Counter implements Metric {
  private readonly values = new Map<string, number>();
  constructor(readonly name: string, readonly help: string) {}
  /** Adds `value` (default 1) for `labels`. */
  inc(labels: LabelValues = {}, value = 1): void {
    const key = labelKey(labels);
    this.values.set(key, (this.values.get(key) ?? 0) + value);
  }
  /** Current value for `labels`. */
  get(labels: LabelValues = {}): number {
    return this.values.get(labelKey(labels)) ?? 0;
  }
  render(): string[] {
    const out = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`];
    for (const [k, v] of this.values) out.push(`${this.name}${k ? `{${k}}` : ''} ${v}`);
    return out;
  }
}

/** A value that goes up and down. */
export class Gauge implements Metric {
  private readonly values = new Map<string, number>();
  constructor(readonly name: string, readonly help: string) {}
  /** Sets the value for `labels`. */
  set(labels: LabelValues, value: number): void {
    this.values.set(labelKey(labels), value);
  }
  render(): string[] {
    const out = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} gauge`];
    for (const [k, v] of this.values) out.push(`${this.name}${k ? `{${k}}` : ''} ${v}`);
    return out;
  }
}

/** A histogram of durations in seconds. */
export class Histogram implements Metric {
  private readonly series = new Map<string, { buckets: number[]; sum: number; count: number }>();
  constructor(readonly name: string, readonly help: string,
    private readonly bounds: number[] = [0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]) {}
  /** Records one observation. */
  observe(labels: LabelValues, value: number): void {
    const key = labelKey(labels);
    let s = this.series.get(key);
    if (!s) { s = { buckets: this.bounds.map(() => 0), sum: 0, count: 0 }; this.series.set(key, s); }
    this.bounds.forEach((b, i) => { if (value <= b) s.buckets[i] = (s.buckets[i] ?? 0) + 1; });
    s.sum += value;
    s.count += 1;
  }
  render(): string[] {
    const out = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`];
    for (const [k, s] of this.series) {
      const sep = k ? `${k},` : '';
      this.bounds.forEach((b, i) => out.push(`${this.name}_bucket{${sep}le="${b}"} ${s.buckets[i] ?? 0}`));
      out.push(`${this.name}_bucket{${sep}le="+Inf"} ${s.count}`);
      out.push(`${this.name}_sum${k ? `{${k}}` : ''} ${s.sum}`);
      out.push(`${this.name}_count${k ? `{${k}}` : ''} ${s.count}`);
    }
    return out;
  }
}

/** A set of metrics rendered together. */
export class Registry {
  private readonly metrics: Metric[] = [];
  /** Adds and returns a counter. */
  counter(name: string, help: string): Counter { const m = new Counter(name, help); this.metrics.push(m); return m; }
  /** Adds and returns a gauge. */
  gauge(name: string, help: string): Gauge { const m = new Gauge(name, help); this.metrics.push(m); return m; }
  /** Adds and returns a histogram. */
  histogram(name: string, help: string): Histogram { const m = new Histogram(name, help); this.metrics.push(m); return m; }
  /** The exposition text. */
  render(): string {
    return `${this.metrics.flatMap((m) => m.render()).join('\n')}\n`;
  }
}
