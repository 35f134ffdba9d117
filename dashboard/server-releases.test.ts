import { expect } from 'chai';
import type { ClusterInfo } from '../lib/bundle/target.js';
import type { ReleasesPort } from './bundlepage.js';
import type { Snapshot } from './model.js';
import type { BundleHistory, VersionDiff } from './releases.js';
import { startDashboardServer, type DashboardServer } from './server.js';
import { bundle, cluster, clusterGroup, emptySnapshot, memorySource } from './testing.js';

const NS = 'fleet';

/** A ReleasesPort over one bundle `fleet/app` that records the diffs asked for, or fails with `failure`. */
function fakeReleases(): ReleasesPort & { asked: { from: number; to: number; cluster: ClusterInfo }[]; failure?: string } {
  const history: BundleHistory = {
    repository: 'registry.test/fleet/app',
    entries: [
      { version: 1, digest: 'sha256:1', newest: false, rollback: false, size: 10, files: 1, clusters: [] },
      {
        version: 2,
        digest: 'sha256:2',
        newest: true,
        rollback: false,
        size: 12,
        files: 1,
        clusters: ['c1'],
        changes: { added: [], modified: ['cm.yaml'], removed: [] },
      },
    ],
  };
  const port = {
    asked: [] as { from: number; to: number; cluster: ClusterInfo }[],
    failure: undefined as string | undefined,
    async history(namespace: string, name: string) {
      if (port.failure) throw new Error(port.failure);
      return namespace === NS && name === 'app' ? history : undefined;
    },
    async diff(namespace: string, name: string, from: number, to: number, c: ClusterInfo): Promise<VersionDiff | undefined> {
      if (namespace !== NS || name !== 'app') return undefined;
      port.asked.push({ from, to, cluster: c });
      return {
        from,
        to,
        changes: { added: [], modified: ['cm.yaml'], removed: [] },
        objects: ['~ v1/ConfigMap ns/app', "    -   a: '1'", "    +   a: '2'"],
        downloads: 2,
      };
    },
  };
  return port;
}

describe('dashboard server: bundle history and diffs', () => {
  let server: DashboardServer;
  const releases = fakeReleases();
  const s = emptySnapshot() as Snapshot & Record<string, unknown[]>;
  s.bundles.push(bundle(NS, 'app', 'repo') as never);
  s.clusters.push(cluster(NS, 'c1', { env: 'prod' }) as never);
  s.clusterGroups.push(clusterGroup(NS, 'prod', 'env', 'prod') as never);
  const get = async (path: string) => {
    const res = await fetch(`${server.url}${path}`);
    return [res.status, await res.json()] as [number, Record<string, unknown>];
  };

  before(async () => {
    server = await startDashboardServer({ source: memorySource(s), releases, address: '127.0.0.1', port: 0, context: 'test' });
  });
  after(async () => {
    await server?.close();
  });

  it('answers the history of a bundle as the releases port reads it, and 404 for another', async () => {
    const [status, body] = await get(`api/history?namespace=${NS}&name=app`);
    expect([status, (body.entries as { version: number }[]).map((e) => e.version)]).to.deep.equal([200, [1, 2]]);
    expect(await get(`api/history?namespace=${NS}&name=nope`)).to.deep.equal([404, { error: `Bundle ${NS}/nope not found` }]);
  });

  it('renders a diff for the chosen cluster with its labels and groups, or for no cluster as flotilla diff does', async () => {
    releases.asked.length = 0;
    const [status, body] = await get(`api/diff?namespace=${NS}&name=app&from=v1&to=v2&cluster=${NS}%2Fc1`);
    expect([status, body.cluster, body.objects]).to.deep.equal([200, 'c1', ['~ v1/ConfigMap ns/app', "    -   a: '1'", "    +   a: '2'"]]);
    await get(`api/diff?namespace=${NS}&name=app&from=2&to=1`);
    expect(releases.asked).to.deep.equal([
      { from: 1, to: 2, cluster: { name: 'c1', labels: { env: 'prod' }, groups: [{ name: 'prod', labels: {} }] } },
      { from: 2, to: 1, cluster: { name: 'local', labels: {}, groups: [] } },
    ]);
  });

  it('refuses a diff with bad versions or an unknown cluster, naming the bundle, without reading anything', async () => {
    releases.asked.length = 0;
    const [s1, b1] = await get(`api/diff?namespace=${NS}&name=app&from=latest&to=v2`);
    expect([s1, b1.error]).to.deep.equal([400, `diff of Bundle ${NS}/app: from and to must be versions such as v1 and v2`]);
    const [s2, b2] = await get(`api/diff?namespace=${NS}&name=app&from=1&to=2&cluster=${NS}%2Fghost`);
    expect([s2, b2.error]).to.deep.equal([404, `diff of Bundle ${NS}/app: Cluster ${NS}/ghost not found`]);
    expect(releases.asked).to.deep.equal([]);
  });

  it('passes a registry failure on as 502 with its cause, and answers 501 when the server has no releases port', async () => {
    releases.failure = 'registry.test: connection refused';
    try {
      expect(await get(`api/history?namespace=${NS}&name=app`)).to.deep.equal([
        502,
        { error: `history of Bundle ${NS}/app failed: registry.test: connection refused` },
      ]);
    } finally {
      releases.failure = undefined;
    }
    const bare = await startDashboardServer({ source: memorySource(s), address: '127.0.0.1', port: 0, context: 'bare' });
    try {
      expect((await fetch(`${bare.url}api/history?namespace=${NS}&name=app`)).status).to.equal(501);
    } finally {
      await bare.close();
    }
  });
});
