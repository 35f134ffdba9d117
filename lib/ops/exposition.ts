/**
 * Reads a Prometheus text exposition page (what /metrics serves), for tests and benchmarks that scrape a
 * Flotilla process: the declared type of each metric family and every sample with its labels.
 */

/** One sample line: `name{labels} value`. */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** A parsed page. */
export interface Exposition {
  /** `# TYPE` of each metric family, by family name. */
  types: Map<string, string>;
  samples: Sample[];
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

/** Parses `text`; throws naming the line when a sample line is malformed. */
export function parseExposition(text: string): Exposition {
  const types = new Map<string, string>();
  const samples: Sample[] = [];
  for (const [i, line] of text.split('\n').entries()) {
    if (line.trim() === '') continue;
    if (line.startsWith('#')) {
      const type = /^# TYPE (\S+) (\S+)$/.exec(line);
      if (type) types.set(type[1] as string, type[2] as string);
      continue;
    }
    const m = SAMPLE.exec(line);
    if (!m) throw new Error(`metrics page line ${i + 1} is not a sample: ${line.slice(0, 200)}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(LABEL)) labels[l[1] as string] = (l[2] as string).replace(/\\n/g, '\n').replace(/\\(["\\])/g, '$1');
    samples.push({ name: m[1] as string, labels, value: Number(m[3]) });
  }
  return { types, samples };
}

/** Sum of the samples named `name` whose labels include `labels` (0 when there are none). */
export function sampleSum(page: Exposition, name: string, labels: Record<string, string> = {}): number {
  return page.samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)).reduce((n, s) => n + s.value, 0);
}

/**
 * Where the Flotilla families of a page break the naming rules (`flotilla_<subsystem>_<what>_<unit>`,
 * counters in `_total`, histograms in a unit, gauges never in `_total`); empty when none do.
 */
export function namingProblems(page: Exposition): string[] {
  const problems: string[] = [];
  for (const [name, type] of page.types) {
    if (!name.startsWith('flotilla_')) continue;
    if (!/^flotilla_[a-z]+(_[a-z]+)+$/.test(name)) problems.push(`${name}: not flotilla_<subsystem>_<what>[_<unit>] in lower snake case`);
    if (type === 'counter' && !name.endsWith('_total')) problems.push(`${name}: a counter must end in _total`);
    if (type !== 'counter' && name.endsWith('_total')) problems.push(`${name}: only counters end in _total`);
    if (type === 'histogram' && !/_(seconds|bytes)$/.test(name)) problems.push(`${name}: a histogram must end in its unit (_seconds, _bytes)`);
  }
  return problems;
}
