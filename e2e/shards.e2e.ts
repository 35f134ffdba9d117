import { join } from 'node:path';
import { expect } from 'chai';
import { stack } from './fixture.js';
import { waitFor } from '../stack/net.js';
import { API_VERSION, Label, type GitRepo } from '../lib/api/index.js';
import type { KubeObject } from '../lib/kube/client.js';
import { startFleet, fleetSuiteTeardown, type Fleet } from './support/processes.js';
import { applyCredentials, gitRepoObject, gitRepoReadyAt } from './support/fleetobjects.js';
import { FLEET_SHARD_REF_LABEL, SHARD_REF_LABEL } from '../controller/shard.js';

type EventObject = KubeObject & { involvedObject?: { kind?: string; name?: string }; reportingComponent?: string; source?: { component?: string } };

/**
 * Shards on the real stack: a default controller and two shard controllers (ids "a" and "b") share one
 * upstream cluster. Three GitRepos: one unlabelled (default shard), one labelled with Flotilla's
 * shard-ref label for "a", one with Fleet's for "b". Shard "b" starts last: until then its GitRepo stays
 * untouched (no status, no Bundles) while the others are Ready, which shows that neither the default nor
 * "a" reconciles it. Every Event on a GitRepo comes from its own shard's controller, Bundles and
 * BundleDeployments carry the shard label, and each shard holds its own Lease.
 */
describe('shards: each controller reconciles only the GitRepos labelled for it', function () {
  this.timeout(600_000);
  const WS = 'shards-e2e';
  const REPO = 'shards-e2e-app';
  const repos = {
    default: { name: 'shards-default', labels: {} as Record<string, string>, component: 'flotilla-controller' },
    a: { name: 'shards-a', labels: { [SHARD_REF_LABEL]: 'a' }, component: 'flotilla-controller-shard-a' },
    b: { name: 'shards-b', labels: { [FLEET_SHARD_REF_LABEL]: 'b' }, component: 'flotilla-controller-shard-b' },
  };
  let fleet: Fleet;
  let commit = '';
  const git = () => stack().git!;
  const cm = (name: string) => `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${name}\ndata:\n  k: v\n`;
  const gitRepo = async (name: string) => await fleet.upstream.get<GitRepo & KubeObject>({ apiVersion: API_VERSION, kind: 'GitRepo', namespace: WS, name });
  const bundlesOf = async (name: string) =>
    (await fleet.upstream.list<KubeObject>({ apiVersion: API_VERSION, kind: 'Bundle', namespace: WS }, `${Label.RepoName}=${name}`)).items;
  const eventsOf = async (name: string) =>
    (await fleet.upstream.list<EventObject>({ apiVersion: 'v1', kind: 'Event', namespace: WS })).items.filter(
      (e) => e.involvedObject?.kind === 'GitRepo' && e.involvedObject.name === name,
    );
  const shardArgs = (id: string) => ['--shard-id', id, '--work-dir', join(fleet.logDir, `shard-${id}`)];

  before(async function () {
    this.timeout(8 * 60_000);
    fleet = await startFleet(stack(), { workspace: WS, clusters: [{ name: 'downstream-1', labels: { env: 'shards' } }] });
    await fleet.startController('controller-shard-a', shardArgs('a'));
    await applyCredentials(fleet.upstream, WS, 'shards-e2e', git());
    await git().createRepo(REPO);
    commit = await git().commit(REPO, { 'default/cm.yaml': cm('shards-default'), 'a/cm.yaml': cm('shards-a'), 'b/cm.yaml': cm('shards-b') }, 'three bundles');
    for (const [dir, r] of Object.entries(repos)) {
      const obj = gitRepoObject(r.name, WS, git(), REPO, { paths: [dir] });
      await fleet.upstream.apply({ ...obj, metadata: { ...obj.metadata, labels: r.labels } }, 'shards-e2e');
    }
  });
  fleetSuiteTeardown(() => fleet);

  it('leaves a GitRepo of a shard without a controller untouched while the default shard and shard "a" reconcile theirs', async () => {
    await gitRepoReadyAt(fleet, WS, repos.default.name, commit, 240_000);
    await gitRepoReadyAt(fleet, WS, repos.a.name, commit, 120_000);
    const b = await gitRepo(repos.b.name);
    expect(b?.status ?? {}).to.deep.equal({});
    expect(b?.metadata.finalizers ?? []).to.deep.equal([]);
    expect(await bundlesOf(repos.b.name)).to.have.length(0);
    expect(await eventsOf(repos.b.name)).to.have.length(0);
  });

  it('shard "b" takes its GitRepo once it runs; every Event comes from the GitRepo\'s own shard', async () => {
    await fleet.startController('controller-shard-b', shardArgs('b'));
    await gitRepoReadyAt(fleet, WS, repos.b.name, commit, 180_000);
    for (const r of Object.values(repos)) {
      const events = await eventsOf(r.name);
      expect(events.length, `events of ${r.name}`).to.be.greaterThan(0);
      expect([...new Set(events.map((e) => e.reportingComponent ?? e.source?.component))], r.name).to.deep.equal([r.component]);
    }
  });

  it('labels Bundles and BundleDeployments with their shard, and holds one Lease per shard', async () => {
    for (const r of Object.values(repos)) {
      const bundles = await bundlesOf(r.name);
      expect(bundles.length, r.name).to.equal(1);
      expect(bundles.map((b) => b.metadata.labels?.[SHARD_REF_LABEL] ?? b.metadata.labels?.[FLEET_SHARD_REF_LABEL])).to.deep.equal([
        Object.values(r.labels)[0],
      ]);
      const bds = (await fleet.upstream.list<KubeObject>({ apiVersion: API_VERSION, kind: 'BundleDeployment' }, `${Label.RepoName}=${r.name}`)).items;
      expect(bds.length, `BundleDeployments of ${r.name}`).to.equal(1);
      expect(bds[0]?.metadata.labels?.[SHARD_REF_LABEL] ?? bds[0]?.metadata.labels?.[FLEET_SHARD_REF_LABEL]).to.equal(Object.values(r.labels)[0]);
    }
    const leases = await waitFor(
      async () => {
        const list = await fleet.upstream.list<KubeObject & { spec?: { holderIdentity?: string } }>({
          apiVersion: 'coordination.k8s.io/v1',
          kind: 'Lease',
          namespace: `${WS}-system`,
        });
        const held = list.items.filter((l) => l.spec?.holderIdentity).map((l) => l.metadata.name);
        return held.length >= 3 ? held.sort() : undefined;
      },
      { what: 'three held Leases', timeoutMs: 30_000 },
    );
    expect(leases).to.deep.equal([`${WS}-controller`, `${WS}-controller-shard-a`, `${WS}-controller-shard-b`]);
  });
});
