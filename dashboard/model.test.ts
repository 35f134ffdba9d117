import { expect } from 'chai';
import type { BundleState } from '../lib/api/index.js';
import { UNGROUPED, bundleView, clusterView, fleetView, groupView, matrixView, type Snapshot } from './model.js';
import { bundle, bundleDeployment, cluster, clusterGroup, emptySnapshot, gitRepo } from './testing.js';

const NS = 'fleet';
type Snap = Snapshot & Record<string, unknown[]>;

/**
 * A fleet of `n` clusters: region eu for even, us for odd numbers; groups eu and us; bundles app and db.
 * app is Ready everywhere except ErrApplied on every 100th cluster; db is NotReady on every 10th cluster
 * (all in eu), WaitApplied on the first us cluster, Ready elsewhere.
 */
function fleet(n: number): Snapshot {
  const s = emptySnapshot() as Snap;
  s.gitRepos.push(gitRepo(NS, 'repo') as never);
  s.bundles.push(bundle(NS, 'app', 'repo') as never, bundle(NS, 'db', 'repo') as never);
  s.clusterGroups.push(clusterGroup(NS, 'eu', 'region', 'eu') as never, clusterGroup(NS, 'us', 'region', 'us') as never);
  for (let i = 0; i < n; i++) {
    const name = `c${String(i).padStart(4, '0')}`;
    const region = i % 2 === 0 ? 'eu' : 'us';
    s.clusters.push(cluster(NS, name, { region }) as never);
    const app: BundleState = i % 100 === 0 ? 'ErrApplied' : 'Ready';
    const db: BundleState = region === 'eu' && i % 10 === 0 ? 'NotReady' : i === 1 ? 'WaitApplied' : 'Ready';
    s.bundleDeployments.push(bundleDeployment(NS, 'app', name, app, app === 'Ready' ? '' : `apply of ${name} failed`) as never);
    s.bundleDeployments.push(bundleDeployment(NS, 'db', name, db, db === 'NotReady' ? 'Deployment db: 0/1 ready' : '') as never);
  }
  return s;
}

describe('dashboard views', () => {
  describe('the matrix at 1,000 clusters', () => {
    const s = fleet(1000);
    const m = matrixView(s);

    it('has one row per ClusterGroup and one column per bundle, never a column per cluster', () => {
      expect(m.bundles.map((b) => b.name)).to.deep.equal(['app', 'db']);
      expect(m.groups.map((g) => [g.name, g.clusterCount, g.cells.length])).to.deep.equal([
        ['eu', 500, 2],
        ['us', 500, 2],
      ]);
      expect(m.clusterCount).to.equal(1000);
    });

    it('counts the clusters of each group by the state of each bundle there', () => {
      const [eu, us] = m.groups;
      // every 100th cluster is even, so in eu: 0, 100, ..., 900
      expect(eu?.cells[0]).to.deep.equal({ ErrApplied: 10, Ready: 490 });
      expect(eu?.cells[1]).to.deep.equal({ NotReady: 100, Ready: 400 });
      expect(us?.cells[0]).to.deep.equal({ Ready: 500 });
      expect(us?.cells[1]).to.deep.equal({ WaitApplied: 1, Ready: 499 });
      expect(eu?.total).to.deep.equal({ ErrApplied: 10, Ready: 890, NotReady: 100 });
    });

    it('puts clusters of no group in a group of their own instead of dropping them', () => {
      const s2 = fleet(4) as Snap;
      s2.clusters.push(cluster(NS, 'lonely', { region: 'mars' }) as never);
      s2.bundleDeployments.push(bundleDeployment(NS, 'app', 'lonely', 'Pending') as never);
      const last = matrixView(s2).groups.at(-1);
      expect([last?.name, last?.clusterCount, last?.cells[0]]).to.deep.equal([UNGROUPED, 1, { Pending: 1 }]);
    });

    it('counts a cluster in every group it belongs to', () => {
      const s2 = fleet(4) as Snap;
      s2.clusterGroups.push(clusterGroup(NS, 'all-eu', 'region', 'eu') as never);
      const groups = matrixView(s2).groups.map((g) => [g.name, g.clusterCount]);
      expect(groups).to.deep.equal([
        ['all-eu', 2],
        ['eu', 2],
        ['us', 2],
      ]);
    });
  });

  describe('one group expanded', () => {
    const s = fleet(1000);

    it('lists a page of its clusters with the state of each bundle and the message of a failure', () => {
      const g = groupView(s, { namespace: NS, name: 'eu' }, { offset: 0, limit: 3, problemsOnly: false });
      expect(g?.total).to.equal(500);
      expect(g?.clusters.map((c) => c.name)).to.deep.equal(['c0000', 'c0002', 'c0004']);
      expect(g?.clusters[0]?.states.map((x) => x?.state)).to.deep.equal(['ErrApplied', 'NotReady']);
      expect(g?.clusters[0]?.states[0]?.message).to.equal('apply of c0000 failed');
    });

    it('filters to the clusters where a bundle is not ready, and pages through them', () => {
      const g = groupView(s, { namespace: NS, name: 'eu' }, { offset: 40, limit: 100, problemsOnly: true });
      expect(g?.total).to.equal(100);
      expect(g?.clusters).to.have.length(60);
      expect(g?.clusters.every((c) => c.states.some((x) => x?.state !== 'Ready'))).to.equal(true);
    });

    it('is undefined for a group that does not exist', () => {
      expect(groupView(s, { namespace: NS, name: 'nope' }, { offset: 0, limit: 10, problemsOnly: false })).to.equal(undefined);
    });
  });

  describe('pages of one object', () => {
    it('fleet: a GitRepo with its commit, state, counts and last error, and its bundles', () => {
      const s = fleet(2) as Snap;
      s.gitRepos.push(gitRepo(NS, 'broken', { message: 'git fetch failed: authentication refused' }) as never);
      const rows = fleetView(s);
      expect(rows.map((r) => [r.name, r.ready, r.lastError, r.bundles.map((b) => b.name)])).to.deep.equal([
        ['broken', false, 'git fetch failed: authentication refused', []],
        ['repo', true, '', ['app', 'db']],
      ]);
      expect(rows[1]?.commit).to.equal('c'.repeat(40));
    });

    it('bundle: conditions, digest and per-cluster states worst first with their messages', () => {
      const s = fleet(3) as Snap;
      const b = bundleView(s, { namespace: NS, name: 'app' });
      expect(b?.digest).to.equal(`sha256:${'a'.repeat(64)}`);
      expect(b?.clusters.map((c) => [c.name, c.state, c.message])).to.deep.equal([
        ['c0000', 'ErrApplied', 'apply of c0000 failed'],
        ['c0001', 'Ready', ''],
        ['c0002', 'Ready', ''],
      ]);
      expect(b?.counts).to.deep.equal({ ErrApplied: 1, Ready: 2 });
      expect(bundleView(s, { namespace: NS, name: 'nope' })).to.equal(undefined);
    });

    it('cluster: labels, heartbeat, groups and each bundle with its state', () => {
      const s = fleet(12) as Snap;
      const c = clusterView(s, { namespace: NS, name: 'c0010' });
      expect(c?.labels).to.deep.equal({ region: 'eu' });
      expect(c?.lastSeen).to.equal('2026-11-29T12:00:00Z');
      expect(c?.agentVersion).to.equal('0.1.0');
      expect(c?.groups).to.deep.equal(['eu']);
      expect(c?.bundles.map((b) => [b.name, b.state, b.message])).to.deep.equal([
        ['app', 'Ready', ''],
        ['db', 'NotReady', 'Deployment db: 0/1 ready'],
      ]);
    });

    it('keeps text from the API as it is (escaping is the page’s job, never altered here)', () => {
      const s = fleet(1) as Snap;
      const evil = '<script>alert(1)</script>';
      s.bundleDeployments[0] = bundleDeployment(NS, 'app', 'c0000', 'ErrApplied', evil) as never;
      expect(bundleView(s, { namespace: NS, name: 'app' })?.clusters[0]?.message).to.equal(evil);
    });
  });
});
