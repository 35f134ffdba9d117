import { expect } from 'chai';
import { namingProblems, parseExposition, sampleSum } from '../lib/ops/exposition.js';
import { createMetrics } from './manager.js';

describe('controller metrics', () => {
  it('registers every metric docs/metrics.md lists for the controller, with its type', async () => {
    const page = parseExposition(await createMetrics({ defaultMetrics: false }).registry.metrics());
    expect(Object.fromEntries(page.types)).to.deep.equal({
      flotilla_reconcile_total: 'counter',
      flotilla_reconcile_errors_total: 'counter',
      flotilla_reconcile_duration_seconds: 'histogram',
      flotilla_artifact_pushed_bytes_total: 'counter',
      flotilla_artifact_pushed_blobs_total: 'counter',
      flotilla_artifact_skipped_blobs_total: 'counter',
      flotilla_git_polls_total: 'counter',
      flotilla_bundledeployment_writes_total: 'counter',
      flotilla_chart_cache_lookups_total: 'counter',
      flotilla_chart_cache_bytes: 'gauge',
    });
    expect(namingProblems(page)).to.deep.equal([]);
  });

  it('serves the process and Node runtime metrics beside its own', async () => {
    const page = parseExposition(await createMetrics().registry.metrics());
    expect(page.types.get('process_cpu_seconds_total')).to.equal('counter');
    expect(page.types.get('nodejs_eventloop_lag_seconds')).to.equal('gauge');
    expect(page.types.get('flotilla_reconcile_total')).to.equal('counter');
  });

  it('feeds the reconcile metrics through its observer', async () => {
    const m = createMetrics({ defaultMetrics: false });
    m.observer.observe('bundle', 'error', 0.3);
    const page = parseExposition(await m.registry.metrics());
    expect(sampleSum(page, 'flotilla_reconcile_total', { controller: 'bundle', outcome: 'error' })).to.equal(1);
    expect(sampleSum(page, 'flotilla_reconcile_errors_total', { controller: 'bundle' })).to.equal(1);
    expect(sampleSum(page, 'flotilla_reconcile_duration_seconds_sum', { controller: 'bundle' })).to.equal(0.3);
  });
});
