import { expect } from 'chai';
import { request } from 'undici';
import { stack } from './fixture.js';
import { waitFor } from '../stack/net.js';
import { startFleet, fleetSuiteTeardown, type Fleet } from './support/processes.js';
import { API_VERSION, Label, type BundleDeployment } from '../lib/api/index.js';
import { KubeClient, type KubeObject } from '../lib/kube/client.js';
import { parseExposition, sampleSum, type Exposition } from '../lib/ops/exposition.js';
import { applyCredentials, gitRepoObject, ociRegistryFor } from './support/fleetobjects.js';

/**
 * Metrics of the real processes: the controller and an agent run as child processes (support/processes.ts),
 * a GitRepo deploys a bundle through the http registry, and both /metrics pages are scraped: the default
 * process and Node runtime metrics are there, and the counters show the push, the pull, the objects
 * applied and the reconciles; then a deletion downstream shows as drift detected and corrected, and a
 * file removed from the bundle as an object pruned. docs/metrics.md lists every metric.
 */

type Obj<T> = T & KubeObject;
const WS = 'metrics-e2e';
const REPO = 'metrics-e2e';
const APP_NS = 'metrics-e2e-app';
const CLUSTER = 'downstream-1';

function configMap(name: string): string {
  return `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${name}\ndata:\n  k: v\n`;
}

async function scrape(port: number): Promise<Exposition> {
  const res = await request(`http://127.0.0.1:${port}/metrics`);
  const text = await res.body.text();
  expect(res.statusCode, `GET /metrics on port ${port}: ${text.slice(0, 200)}`).to.equal(200);
  return parseExposition(text);
}

describe('metrics: /metrics of the real controller and agent processes', function () {
  this.timeout(10 * 60_000);
  let fleet: Fleet;
  let downstream: KubeClient;
  const git = () => stack().git!;
  const agentPort = () => fleet.agents[CLUSTER]!.metricsPort;

  /** Waits until the agent's page satisfies `check`, and returns that page. */
  async function agentPage(what: string, check: (page: Exposition) => boolean): Promise<Exposition> {
    return await waitFor(
      async () => {
        await fleet.assertAlive();
        const page = await scrape(agentPort());
        return check(page) ? page : undefined;
      },
      { what, timeoutMs: 120_000, intervalMs: 500, context: () => `logs in ${fleet.logDir}` },
    );
  }

  before(async function () {
    this.timeout(5 * 60_000);
    downstream = await KubeClient.fromKubeConfig(stack().cluster(CLUSTER).kubeConfig());
    fleet = await startFleet(stack(), { workspace: WS, clusters: [{ name: CLUSTER, labels: {} }] });
    await git().createRepo(REPO);
    await git().commit(
      REPO,
      {
        'app/fleet.yaml': `defaultNamespace: ${APP_NS}\ncorrectDrift:\n  enabled: true\n`,
        'app/a.yaml': configMap('metrics-a'),
        'app/b.yaml': configMap('metrics-b'),
      },
      'two ConfigMaps',
    );
    await applyCredentials(fleet.upstream, WS, 'metrics-e2e', git());
    await fleet.upstream.apply(
      gitRepoObject(REPO, WS, git(), REPO, { paths: ['app'], ociRegistry: ociRegistryFor(stack().registry('http'), 'metrics-e2e') }),
      'metrics-e2e',
    );
    await waitFor(
      async () => {
        await fleet.assertAlive();
        const bds = (await fleet.upstream.list<Obj<BundleDeployment>>({ apiVersion: API_VERSION, kind: 'BundleDeployment' }, `${Label.RepoName}=${REPO}`))
          .items;
        return bds.length === 1 && bds[0]!.status?.ready === true && bds[0]!.status.appliedDeploymentID === bds[0]!.spec.deploymentID;
      },
      { what: 'the BundleDeployment of the bundle Ready', timeoutMs: 180_000, intervalMs: 500, context: () => `logs in ${fleet.logDir}` },
    );
  });

  fleetSuiteTeardown(() => fleet, {
    afterStop: async () => {
      await downstream?.delete({ apiVersion: 'v1', kind: 'Namespace', name: APP_NS }).catch(() => undefined);
      await downstream?.close();
    },
  });

  it('serves the process and Node runtime metrics on both processes', async () => {
    for (const port of [fleet.controller.metricsPort, agentPort()]) {
      const page = await scrape(port);
      expect(page.types.get('process_cpu_seconds_total'), `port ${port}`).to.equal('counter');
      expect(sampleSum(page, 'process_resident_memory_bytes'), `resident memory on port ${port}`).to.be.greaterThan(0);
      expect(sampleSum(page, 'nodejs_heap_size_used_bytes'), `heap on port ${port}`).to.be.greaterThan(0);
      expect(page.types.get('nodejs_eventloop_lag_seconds'), `port ${port}`).to.equal('gauge');
    }
  });

  it("counts the controller's git polls, pushed blobs, BundleDeployment writes and reconciles", async () => {
    const page = await scrape(fleet.controller.metricsPort);
    expect(sampleSum(page, 'flotilla_git_polls_total')).to.be.greaterThan(0);
    expect(sampleSum(page, 'flotilla_artifact_pushed_blobs_total')).to.be.greaterThan(0);
    expect(sampleSum(page, 'flotilla_artifact_pushed_bytes_total')).to.be.greaterThan(0);
    expect(sampleSum(page, 'flotilla_bundledeployment_writes_total', { outcome: 'applied' })).to.be.greaterThan(0);
    for (const controller of ['gitrepo', 'bundle', 'cluster']) {
      expect(sampleSum(page, 'flotilla_reconcile_total', { controller, outcome: 'success' }), controller).to.be.greaterThan(0);
      expect(sampleSum(page, 'flotilla_reconcile_duration_seconds_count', { controller }), controller).to.be.greaterThan(0);
    }
  });

  it("counts the agent's pull, blobs and bytes pulled, objects applied, reconciles, and its BundleDeployment as Ready", async () => {
    const page = await agentPage(
      'the agent to report its BundleDeployment Ready',
      (p) => sampleSum(p, 'flotilla_agent_bundledeployments', { state: 'Ready' }) === 1,
    );
    expect(sampleSum(page, 'flotilla_artifact_pulls_total', { outcome: 'success' })).to.be.greaterThan(0);
    expect(sampleSum(page, 'flotilla_artifact_pulled_bytes_total')).to.be.greaterThan(0);
    expect(sampleSum(page, 'flotilla_blob_cache_misses_total')).to.be.greaterThan(0);
    expect(sampleSum(page, 'flotilla_objects_applied_total')).to.be.at.least(2);
    // Each object was read to plan its deployment before it was applied.
    expect(sampleSum(page, 'flotilla_objects_read_total', { purpose: 'deploy' })).to.be.at.least(2);
    expect(sampleSum(page, 'flotilla_reconcile_total', { controller: 'bundledeployment', outcome: 'success' })).to.be.greaterThan(0);
    expect(sampleSum(page, 'flotilla_reconcile_duration_seconds_count', { controller: 'bundledeployment' })).to.be.greaterThan(0);
    expect(sampleSum(page, 'flotilla_agent_bundledeployments')).to.equal(1);
  });

  it('counts an object deleted downstream as drift detected and corrected', async () => {
    const before = await scrape(agentPort());
    await downstream.delete({ apiVersion: 'v1', kind: 'ConfigMap', namespace: APP_NS, name: 'metrics-a' });
    const after = await agentPage(
      'the agent to count the deleted ConfigMap as drift corrected',
      (p) => sampleSum(p, 'flotilla_drift_corrected_objects_total') > sampleSum(before, 'flotilla_drift_corrected_objects_total'),
    );
    expect(sampleSum(after, 'flotilla_drift_detected_objects_total')).to.be.greaterThan(sampleSum(before, 'flotilla_drift_detected_objects_total'));
    expect(sampleSum(after, 'flotilla_objects_applied_total')).to.be.greaterThan(sampleSum(before, 'flotilla_objects_applied_total'));
    // The drift was found by a drift check, which read the objects.
    expect(sampleSum(after, 'flotilla_objects_read_total', { purpose: 'drift-check' })).to.be.greaterThan(
      sampleSum(before, 'flotilla_objects_read_total', { purpose: 'drift-check' }),
    );
    expect(await downstream.get({ apiVersion: 'v1', kind: 'ConfigMap', namespace: APP_NS, name: 'metrics-a' }), 'metrics-a re-applied').to.not.equal(undefined);
  });

  it('counts an object that left the bundle as pruned', async () => {
    const before = await scrape(agentPort());
    await git().commit(REPO, { 'app/b.yaml': null }, 'b removed');
    const after = await agentPage(
      'the agent to prune metrics-b',
      (p) => sampleSum(p, 'flotilla_objects_pruned_total') > sampleSum(before, 'flotilla_objects_pruned_total'),
    );
    expect(sampleSum(after, 'flotilla_artifact_pulls_total', { outcome: 'success' })).to.be.greaterThan(
      sampleSum(before, 'flotilla_artifact_pulls_total', { outcome: 'success' }),
    );
    expect(await downstream.get({ apiVersion: 'v1', kind: 'ConfigMap', namespace: APP_NS, name: 'metrics-b' }), 'metrics-b pruned').to.equal(undefined);
  });
});
