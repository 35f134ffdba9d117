import { expect } from 'chai';
import type { Bundle } from '../lib/api/index.js';
import { DEFAULT_DIFF_CLUSTER, clusterInfoOf, parseDiffRequest, releasesKey, rolloutView } from './bundlepage.js';
import { bundleView, type Snapshot } from './model.js';
import { bundle, cluster, clusterGroup, emptySnapshot } from './testing.js';

const NS = 'fleet';
const T = '2026-11-29T12:00:00Z';

/** A Bundle with a two-partition rollout of v3 halted at the first partition. */
function rollingBundle(): Bundle {
  const b = bundle(NS, 'app', 'repo') as unknown as Bundle;
  b.spec.rolloutStrategy = {
    partitions: [
      { name: 'canary', clusterName: 'c1' },
      { name: 'rest', clusterGroup: 'prod' },
    ],
    onFailure: 'halt',
  };
  b.status = {
    ...b.status,
    rollout: {
      revision: 'r3',
      version: 3,
      previousVersion: 2,
      phase: 'Halted',
      message: 'partition canary failed its deadline',
      partitions: [
        { name: 'canary', phase: 'Failed', count: 2, maxUnavailable: 0, unavailable: 1, upToDate: 1, offline: 1, startedAt: T, names: ['c1'] },
        { name: 'rest', phase: 'Waiting', count: 5, maxUnavailable: 1, unavailable: 0, upToDate: 0 },
      ],
    },
  };
  return b;
}

describe('dashboard Bundle page: rollout, history key and diff requests', () => {
  it('shows the rollout per partition in order: phase, up to date of count, unavailable, offline, start and the unavailable clusters', () => {
    const r = rolloutView(rollingBundle());
    expect([r.strategy, r.phase, r.version, r.previousVersion, r.message]).to.deep.equal([true, 'Halted', 3, 2, 'partition canary failed its deadline']);
    expect(r.partitions.map((p) => [p.name, p.phase, p.upToDate, p.count, p.unavailable, p.offline, p.startedAt, p.unavailableClusters])).to.deep.equal([
      ['canary', 'Failed', 1, 2, 1, 1, T, ['c1']],
      ['rest', 'Waiting', 0, 5, 0, 0, '', []],
    ]);
  });

  it('says when a bundle has no rolloutStrategy and no rollout status', () => {
    const r = rolloutView(bundle(NS, 'plain', 'repo') as unknown as Bundle);
    expect([r.strategy, r.phase, r.partitions]).to.deep.equal([false, '', []]);
  });

  it('carries the rollout on the Bundle view', () => {
    const s = emptySnapshot() as Snapshot & Record<string, unknown[]>;
    s.bundles.push(rollingBundle() as never);
    expect(bundleView(s, { namespace: NS, name: 'app' })?.rollout.partitions.map((p) => p.name)).to.deep.equal(['canary', 'rest']);
  });

  it('changes the history key on a new version, on retention, when clusters move and on a rollback, not on other status changes', () => {
    const b = rollingBundle();
    const key = releasesKey(b);
    const entry = (version: number) => ({ version, digest: `sha256:${String(version).repeat(64)}` });
    const variants: ((x: Bundle) => void)[] = [
      (x) => (x.spec.oci = { reference: 'r', digest: `sha256:${'b'.repeat(64)}` }),
      (x) => (x.status = { ...x.status, history: [entry(1)] }),
      (x) => (x.status = { ...x.status, versions: [{ version: 1, clusters: 2 }] }),
      (x) => (x.spec.rollback = { version: 1 }),
    ];
    for (const change of variants) {
      const copy = structuredClone(b);
      change(copy);
      expect(releasesKey(copy)).not.to.equal(key);
    }
    const unrelated = structuredClone(b);
    unrelated.status = { ...unrelated.status, display: { state: 'NotReady' } };
    expect(releasesKey(unrelated)).to.equal(key);
  });

  it('parses a diff request: versions as 2 or v2, an optional namespace/name cluster, and refuses anything else', () => {
    const p = (q: string) => parseDiffRequest(new URLSearchParams(q));
    expect(p('from=v1&to=2')).to.deep.equal({ from: 1, to: 2 });
    expect(p('from=1&to=3&cluster=fleet%2Fc1')).to.deep.equal({ from: 1, to: 3, cluster: { namespace: 'fleet', name: 'c1' } });
    for (const bad of ['from=0&to=1', 'from=v1', 'from=latest&to=v2', 'from=1&to=2;', 'from=1&to=2&cluster=c1', 'from=1&to=2&cluster=fleet%2F']) {
      expect(p(bad), bad).to.be.a('string');
    }
  });

  it('renders a diff for a chosen cluster with its labels and ClusterGroups, else as flotilla diff does', () => {
    const s = emptySnapshot() as Snapshot & Record<string, unknown[]>;
    s.clusters.push(cluster(NS, 'c1', { env: 'prod' }) as never, cluster('other', 'c1', { env: 'dev' }) as never);
    s.clusterGroups.push(clusterGroup(NS, 'prod', 'env', 'prod') as never, clusterGroup(NS, 'dev', 'env', 'dev') as never);
    expect(clusterInfoOf(s, { namespace: NS, name: 'c1' })).to.deep.equal({ name: 'c1', labels: { env: 'prod' }, groups: [{ name: 'prod', labels: {} }] });
    expect(clusterInfoOf(s, { namespace: NS, name: 'nope' })).to.equal(undefined);
    expect(DEFAULT_DIFF_CLUSTER).to.deep.equal({ name: 'local', labels: {}, groups: [] });
  });
});
