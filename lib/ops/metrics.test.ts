import { expect } from 'chai';
import { request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { namingProblems, parseExposition, sampleSum } from './exposition.js';
import { counter, createRegistry, gauge, histogram, reconcileMetrics, reconcileObserver, metricValue } from './metrics.js';
import { startOpsServer } from './server.js';
import { modulesLoadedBy } from '../util/testing.js';

/** The process and Node runtime metrics every Flotilla process serves, with their types. */
const DEFAULT_METRICS: [string, string][] = [
  ['process_cpu_seconds_total', 'counter'],
  ['process_cpu_user_seconds_total', 'counter'],
  ['process_cpu_system_seconds_total', 'counter'],
  ['process_open_fds', 'gauge'],
  ['process_max_fds', 'gauge'],
  ['nodejs_active_handles_total', 'gauge'],
  ['nodejs_heap_space_size_used_bytes', 'gauge'],
  ['nodejs_version_info', 'gauge'],
  ['process_resident_memory_bytes', 'gauge'],
  ['process_start_time_seconds', 'gauge'],
  ['nodejs_heap_size_used_bytes', 'gauge'],
  ['nodejs_eventloop_lag_seconds', 'gauge'],
  ['nodejs_gc_duration_seconds', 'histogram'],
];

async function get(port: number, path: string): Promise<{ status: number; type: string; body: string }> {
  return await new Promise((resolve, reject) => {
    request({ host: '127.0.0.1', port, path }, (res) => {
      let body = '';
      res
        .setEncoding('utf8')
        .on('data', (c: string) => {
          body += c;
        })
        .on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body }));
    })
      .on('error', reject)
      .end();
  });
}

describe('metrics registry', () => {
  it('renders the process and Node runtime metrics under their standard names and types', async () => {
    const page = parseExposition(await createRegistry().metrics());
    for (const [name, type] of DEFAULT_METRICS) expect(page.types.get(name), name).to.equal(type);
    expect(sampleSum(page, 'process_resident_memory_bytes')).to.be.greaterThan(0);
  });

  it('counts CPU time as user plus system, growing with work done', async () => {
    const registry = createRegistry();
    const read = async () => {
      const page = parseExposition(await registry.metrics());
      return ['process_cpu_user_seconds_total', 'process_cpu_system_seconds_total', 'process_cpu_seconds_total'].map((n) => sampleSum(page, n));
    };
    const [, , before = 0] = await read();
    const until = Date.now() + 30;
    let spin = 0;
    while (Date.now() < until) spin++;
    expect(spin).to.be.greaterThan(0);
    const [user = 0, system = 0, total = 0] = await read();
    expect(total).to.be.greaterThan(before);
    expect(total).to.be.closeTo(user + system, 1e-9);
  });

  it('loads prom-client without @opentelemetry/api (its index would: 4-5 MiB per process)', function () {
    this.timeout(60_000);
    const loaded = modulesLoadedBy("const { createRegistry } = await import('./lib/ops/metrics.ts');\nawait createRegistry().metrics();");
    expect(
      loaded.some((f) => f.includes('/prom-client/')),
      'prom-client loaded',
    ).to.equal(true);
    expect(loaded.filter((f) => f.includes('@opentelemetry'))).to.deep.equal([]);
  });

  it('leaves the process metrics out when asked to', async () => {
    const page = parseExposition(await createRegistry({ defaultMetrics: false }).metrics());
    expect([...page.types.keys()]).to.deep.equal([]);
  });

  it('keeps registries apart: the same name on two registries, counted separately', async () => {
    const [a, b] = [createRegistry({ defaultMetrics: false }), createRegistry({ defaultMetrics: false })];
    const ca = counter(a, 'flotilla_test_things_total', 'Things.', ['kind']);
    const cb = counter(b, 'flotilla_test_things_total', 'Things.', ['kind']);
    ca.inc({ kind: 'x' }, 3);
    cb.inc({ kind: 'x' });
    expect(await metricValue(ca, { kind: 'x' })).to.equal(3);
    expect(await metricValue(cb, { kind: 'x' })).to.equal(1);
  });

  it('renders counters, gauges and histograms with their labels in the text format', async () => {
    const r = createRegistry({ defaultMetrics: false });
    counter(r, 'flotilla_test_pulls_total', 'Pulls.', ['outcome']).inc({ outcome: 'error' }, 2);
    gauge(r, 'flotilla_test_things', 'Things.', ['state']).set({ state: 'Ready' }, 4);
    histogram(r, 'flotilla_test_duration_seconds', 'Durations.', ['controller']).observe({ controller: 'c' }, 0.2);
    const text = await r.metrics();
    const page = parseExposition(text);
    expect(Object.fromEntries(page.types)).to.deep.equal({
      flotilla_test_pulls_total: 'counter',
      flotilla_test_things: 'gauge',
      flotilla_test_duration_seconds: 'histogram',
    });
    expect(text).to.include('flotilla_test_pulls_total{outcome="error"} 2');
    expect(text).to.include('flotilla_test_things{state="Ready"} 4');
    expect(sampleSum(page, 'flotilla_test_duration_seconds_bucket', { controller: 'c', le: '0.25' })).to.equal(1);
    expect(sampleSum(page, 'flotilla_test_duration_seconds_bucket', { controller: 'c', le: '0.1' })).to.equal(0);
    expect(sampleSum(page, 'flotilla_test_duration_seconds_count', { controller: 'c' })).to.equal(1);
  });

  it('refreshes a gauge with its collect function at every scrape', async () => {
    const r = createRegistry({ defaultMetrics: false });
    let n = 1;
    gauge(r, 'flotilla_test_live', 'Live things.', [], (g) => g.set(n));
    expect(sampleSum(parseExposition(await r.metrics()), 'flotilla_test_live')).to.equal(1);
    n = 7;
    expect(sampleSum(parseExposition(await r.metrics()), 'flotilla_test_live')).to.equal(7);
  });

  it('reads 0 for a series that does not exist, and matches label sets exactly', async () => {
    const c = counter(createRegistry({ defaultMetrics: false }), 'flotilla_test_writes_total', 'Writes.', ['outcome', 'kind']);
    c.inc({ outcome: 'applied', kind: 'a' });
    expect(await metricValue(c, { outcome: 'applied', kind: 'a' })).to.equal(1);
    expect(await metricValue(c, { outcome: 'applied' })).to.equal(0);
    expect(await metricValue(c, { outcome: 'unchanged', kind: 'a' })).to.equal(0);
  });

  it('counts reconciles, failures and durations through the reconcile observer', async () => {
    const m = reconcileMetrics(createRegistry({ defaultMetrics: false }));
    const observer = reconcileObserver(m);
    observer.observe('gitrepo', 'success', 0.01);
    observer.observe('gitrepo', 'error', 2);
    observer.observe('bundle', 'success', 0.5);
    expect(await metricValue(m.reconciles, { controller: 'gitrepo', outcome: 'success' })).to.equal(1);
    expect(await metricValue(m.reconciles, { controller: 'gitrepo', outcome: 'error' })).to.equal(1);
    expect(await metricValue(m.reconcileErrors, { controller: 'gitrepo' })).to.equal(1);
    expect(await metricValue(m.reconcileErrors, { controller: 'bundle' })).to.equal(0);
    const histogramValues = (await m.reconcileDuration.get()).values;
    const count = histogramValues.find((v) => v.metricName === 'flotilla_reconcile_duration_seconds_count' && v.labels.controller === 'gitrepo');
    expect(count?.value).to.equal(2);
  });
});

describe('metric naming rules', () => {
  const cases: { name: string; type: string; problem: RegExp | undefined }[] = [
    { name: 'flotilla_artifact_pulls_total', type: 'counter', problem: undefined },
    { name: 'flotilla_reconcile_duration_seconds', type: 'histogram', problem: undefined },
    { name: 'flotilla_agent_bundledeployments', type: 'gauge', problem: undefined },
    { name: 'process_cpu_seconds_total', type: 'counter', problem: undefined },
    { name: 'flotilla_artifact_pulls', type: 'counter', problem: /must end in _total/ },
    { name: 'flotilla_agent_things_total', type: 'gauge', problem: /only counters/ },
    { name: 'flotilla_reconcile_duration', type: 'histogram', problem: /end in its unit/ },
    { name: 'flotilla_pulls', type: 'gauge', problem: /subsystem/ },
    { name: 'flotilla_Artifact_pulls_total', type: 'counter', problem: /lower snake case/ },
  ];
  for (const c of cases) {
    it(`${c.problem ? 'refuses' : 'accepts'} ${c.type} ${c.name}`, () => {
      const problems = namingProblems({ types: new Map([[c.name, c.type]]), samples: [] });
      if (c.problem) expect(problems.join('\n')).to.match(c.problem);
      else expect(problems).to.deep.equal([]);
    });
  }
});

describe('ops server', () => {
  it('serves /metrics in the Prometheus text format, and 404 without a registry', async () => {
    const registry = createRegistry();
    counter(registry, 'flotilla_test_served_total', 'Served.').inc();
    const withMetrics = await startOpsServer({ port: 0, host: '127.0.0.1', healthy: () => true, ready: () => false, metrics: registry });
    const without = await startOpsServer({ port: 0, host: '127.0.0.1', healthy: () => true, ready: () => true });
    try {
      const res = await get((withMetrics.address() as AddressInfo).port, '/metrics');
      expect(res.status).to.equal(200);
      expect(res.type).to.match(/^text\/plain; version=0\.0\.4/);
      const page = parseExposition(res.body);
      expect(sampleSum(page, 'flotilla_test_served_total')).to.equal(1);
      expect(page.types.get('process_cpu_seconds_total')).to.equal('counter');
      expect((await get((withMetrics.address() as AddressInfo).port, '/readyz')).status).to.equal(503);
      expect((await get((without.address() as AddressInfo).port, '/metrics')).status).to.equal(404);
    } finally {
      withMetrics.close();
      without.close();
    }
  });
});
