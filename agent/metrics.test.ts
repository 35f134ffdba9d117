import { expect } from 'chai';
import { createServer } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BundleDeployment } from '../lib/api/index.js';
import type { KubeClient } from '../lib/kube/client.js';
import { namingProblems, parseExposition, sampleSum, type Exposition } from '../lib/ops/exposition.js';
import { ContentLoader } from './content.js';
import { createAgentMetrics, type AgentMetrics } from './metrics.js';

const scrape = async (m: AgentMetrics): Promise<Exposition> => parseExposition(await m.registry.metrics());

/** A BundleDeployment as the informer holds it, with the state the agent reported (none: not reported yet). */
function bd(name: string, state?: string): BundleDeployment {
  return { metadata: { name }, spec: { deploymentID: 'd' }, ...(state ? { status: { display: { state } } } : {}) } as unknown as BundleDeployment;
}

describe('agent metrics', () => {
  it('registers every metric docs/metrics.md lists for the agent, with its type and conventional name', async () => {
    const page = await scrape(createAgentMetrics({ defaultMetrics: false }));
    expect(Object.fromEntries(page.types)).to.deep.equal({
      flotilla_reconcile_total: 'counter',
      flotilla_reconcile_errors_total: 'counter',
      flotilla_reconcile_duration_seconds: 'histogram',
      flotilla_artifact_pulls_total: 'counter',
      flotilla_artifact_pulled_bytes_total: 'counter',
      flotilla_blob_cache_hits_total: 'counter',
      flotilla_blob_cache_misses_total: 'counter',
      flotilla_objects_applied_total: 'counter',
      flotilla_objects_read_total: 'counter',
      flotilla_objects_pruned_total: 'counter',
      flotilla_drift_detected_objects_total: 'counter',
      flotilla_drift_corrected_objects_total: 'counter',
      flotilla_bundledeployment_errors_total: 'counter',
      flotilla_agent_bundledeployments: 'gauge',
    });
    expect(namingProblems(page)).to.deep.equal([]);
  });

  it('counts objects applied, drift corrections among them, pruned objects, drift found and objects read by purpose', async () => {
    const m = createAgentMetrics({ defaultMetrics: false });
    m.deployments.applied(3, false);
    m.deployments.applied(2, true);
    m.deployments.pruned(4);
    m.deployments.driftDetected(2);
    m.deployments.read(true);
    m.deployments.read(false);
    m.deployments.read(false);
    const page = await scrape(m);
    expect(sampleSum(page, 'flotilla_objects_read_total', { purpose: 'deploy' })).to.equal(1);
    expect(sampleSum(page, 'flotilla_objects_read_total', { purpose: 'drift-check' })).to.equal(2);
    expect(sampleSum(page, 'flotilla_objects_applied_total')).to.equal(5);
    expect(sampleSum(page, 'flotilla_drift_corrected_objects_total')).to.equal(2);
    expect(sampleSum(page, 'flotilla_objects_pruned_total')).to.equal(4);
    expect(sampleSum(page, 'flotilla_drift_detected_objects_total')).to.equal(2);
  });

  it('counts downloaded blobs as cache misses with their bytes, and cache hits, from registry events', async () => {
    const m = createAgentMetrics({ defaultMetrics: false });
    m.registryEvent({ type: 'blob-downloaded', digest: 'sha256:a', size: 100 });
    m.registryEvent({ type: 'blob-downloaded', digest: 'sha256:b', size: 20 });
    m.registryEvent({ type: 'cache-hit', digest: 'sha256:c', size: 7 });
    m.registryEvent({ type: 'manifest-fetched', digest: 'sha256:d' });
    const page = await scrape(m);
    expect(sampleSum(page, 'flotilla_blob_cache_misses_total')).to.equal(2);
    expect(sampleSum(page, 'flotilla_artifact_pulled_bytes_total')).to.equal(120);
    expect(sampleSum(page, 'flotilla_blob_cache_hits_total')).to.equal(1);
  });

  it('counts BundleDeployments by state at each scrape, Pending before the first report, zero for the other states', async () => {
    const m = createAgentMetrics({ defaultMetrics: false });
    let items = [bd('a', 'Ready'), bd('b', 'Ready'), bd('c', 'Modified'), bd('d')];
    const untrack = m.track(() => items);
    let page = await scrape(m);
    const state = (s: string) => sampleSum(page, 'flotilla_agent_bundledeployments', { state: s });
    expect([state('Ready'), state('Modified'), state('Pending'), state('ErrApplied')]).to.deep.equal([2, 1, 1, 0]);
    items = [bd('a', 'ErrApplied')];
    page = await scrape(m);
    expect([state('Ready'), state('ErrApplied')]).to.deep.equal([0, 1]);
    untrack();
    page = await scrape(m);
    expect(sampleSum(page, 'flotilla_agent_bundledeployments')).to.equal(0);
  });

  it('counts a pull from an unreachable registry as an error', async () => {
    const closed = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const { port } = s.address() as { port: number };
        s.close(() => resolve(port));
      });
    });
    const dir = await mkdtemp(join(tmpdir(), 'flotilla-metrics-'));
    const m = createAgentMetrics({ defaultMetrics: false });
    const loader = new ContentLoader({ upstream: undefined as unknown as KubeClient, clusterNamespace: 'c', cacheDir: dir, pullRetries: 0, metrics: m });
    const digest = `sha256:${'a'.repeat(64)}`;
    try {
      const failed = await loader
        .load({
          metadata: { name: 'x' },
          spec: { deploymentID: 'd', oci: { reference: `127.0.0.1:${closed}/b@${digest}`, digest, basicHTTP: true } },
        } as unknown as BundleDeployment)
        .then(
          () => false,
          () => true,
        );
      expect(failed, 'the pull fails').to.equal(true);
      const page = await scrape(m);
      expect(sampleSum(page, 'flotilla_artifact_pulls_total', { outcome: 'error' })).to.equal(1);
      expect(sampleSum(page, 'flotilla_artifact_pulls_total', { outcome: 'success' })).to.equal(0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
