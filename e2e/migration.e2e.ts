import { expect } from 'chai';
import { Agent, request } from 'undici';
import { stack } from './fixture.js';
import { waitFor } from '../stack/net.js';
import { startFleet, removeFleetDir, type Fleet } from './support/processes.js';
import { API_VERSION, Label, type Bundle, type BundleDeployment, type GitRepo } from '../lib/api/index.js';
import { KubeClient, type KubeObject } from '../lib/kube/client.js';
import { applyCredentials, gitRepoObject, gitRepoReadyAt } from './support/fleetobjects.js';
import { main } from '../cli/main.js';
import { RegistryClient } from '../lib/oci/index.js';

type Obj<T> = T & KubeObject;

const CLUSTERS = ['downstream-1', 'downstream-2'] as const;
const BUNDLES = ['a', 'b', 'c'] as const;

/**
 * Storage migration with zero downstream churn, on the real stack: three bundles on two clusters move
 * etcd -> registry one (the ocistorage Secret appears) -> registry two (the Secret changes; the first try
 * is refused by the registry, the controller is killed while the migration is incomplete, then it
 * completes) -> etcd (the Secret goes). Bundles a and b have a v2 in registry one and a is rolled back to v1:
 * both versions move to registry two by digest, registry one is cleaned up (default policy delete), b is then
 * rolled back from registry two alone, and both rolled-back bundles move to etcd, after which registry two is
 * cleaned up too. Across each migration, downstream objects keep their UIDs and resourceVersions, and the
 * downstream API servers' own metrics (apiserver_request_total) count no ConfigMap write.
 */
describe('storage migration: etcd -> OCI -> another registry -> etcd with no downstream churn', function () {
  this.timeout(900_000);
  const WS = 'migration-e2e';
  const REPO = 'migration-e2e-app';
  const MANAGER = 'migration-e2e';
  let fleet: Fleet;
  const downstream: Record<string, KubeClient> = {};
  let failed = false;
  let commit = '';
  const files: Record<string, string> = {};
  const git = () => stack().git!;
  const http = () => stack().registry('http');
  const auth = () => stack().registry('tls-auth');

  const gitRepo = async () => (await fleet.upstream.get<Obj<GitRepo>>({ apiVersion: API_VERSION, kind: 'GitRepo', namespace: WS, name: REPO })) as Obj<GitRepo>;
  const bundles = async () =>
    (await fleet.upstream.list<Obj<Bundle>>({ apiVersion: API_VERSION, kind: 'Bundle', namespace: WS }, `${Label.RepoName}=${REPO}`)).items;
  const deployments = async () =>
    (await fleet.upstream.list<Obj<BundleDeployment>>({ apiVersion: API_VERSION, kind: 'BundleDeployment' }, `${Label.RepoName}=${REPO}`)).items;

  /** uid and resourceVersion of every downstream object of the bundles. */
  async function downstreamObjects(): Promise<Record<string, string>> {
    const out: Record<string, string> = {};
    for (const c of CLUSTERS) {
      for (const b of BUNDLES) {
        const o = await downstream[c]?.get({ apiVersion: 'v1', kind: 'ConfigMap', namespace: `mig-${b}`, name: `mig-${b}` });
        out[`${c}/mig-${b}`] = `${o?.metadata.uid ?? 'missing'}@${o?.metadata.resourceVersion ?? ''}`;
      }
    }
    return out;
  }

  /** ConfigMap writes (create, update, patch, apply, delete; not dry runs) the downstream API server has served, by its own metrics. */
  async function configMapWrites(cluster: string): Promise<number> {
    const plane = stack().cluster(cluster);
    const user = plane.kubeConfig().getCurrentUser();
    const pem = (data: string | undefined) => (data ? Buffer.from(data, 'base64').toString('utf8') : undefined);
    const dispatcher = new Agent({ connect: { ca: plane.caPem, cert: pem(user?.certData), key: pem(user?.keyData) } });
    try {
      const res = await request(`${plane.server}/metrics`, { dispatcher });
      const text = await res.body.text();
      if (res.statusCode !== 200) throw new Error(`GET ${plane.server}/metrics: ${res.statusCode} ${text.slice(0, 200)}`);
      let total = 0;
      for (const line of text.split('\n')) {
        if (!line.startsWith('apiserver_request_total{') || !line.includes('resource="configmaps"') || !line.includes('dry_run=""')) continue;
        if (!/verb="(CREATE|UPDATE|PATCH|APPLY|DELETE|DELETECOLLECTION)"/.test(line)) continue;
        total += Number(line.slice(line.lastIndexOf(' ') + 1));
      }
      return total;
    } finally {
      await dispatcher.close();
    }
  }

  /** The version tags left in `repository` of registry `host` (none when the repository is gone). */
  async function tagsIn(reg: ReturnType<typeof http>, repository: string): Promise<string[]> {
    const client = new RegistryClient({
      registry: reg.host,
      basicHTTP: !reg.caPem,
      ...(reg.caPem ? { caPem: reg.caPem } : {}),
      ...(reg.username ? { credentials: { username: reg.username, password: reg.password ?? '' } } : {}),
    });
    try {
      return (await client.listTags(repository).catch(() => [])).filter((t) => /^v[0-9]+$/.test(t)).sort();
    } finally {
      await client.close();
    }
  }

  const bundleOf = async (path: string) => (await bundles()).find((b) => b.metadata.name.endsWith(`-${path}`)) as Obj<Bundle>;
  const dataOn = async (c: string, b: string) =>
    ((await downstream[c]?.get({ apiVersion: 'v1', kind: 'ConfigMap', namespace: `mig-${b}`, name: `mig-${b}` })) as { data?: { bundle?: string } } | undefined)
      ?.data?.bundle;

  /** Waits until both clusters have `value` in bundle `b`'s ConfigMap and every BundleDeployment is Ready for its generation. */
  async function settled(b: string, value: string): Promise<void> {
    await waitFor(
      async () => {
        const values = await Promise.all(CLUSTERS.map((c) => dataOn(c, b)));
        const bds = await deployments();
        const ready = bds.every((d) =>
          d.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True' && c.observedGeneration === d.metadata.generation),
        );
        return values.every((v) => v === value) && ready;
      },
      { what: `mig-${b} to hold ${value} on both clusters`, timeoutMs: 180_000, intervalMs: 1000, context: () => `logs in ${fleet.logDir}` },
    );
  }

  /** Waits until the old storage of the last migration is cleaned up (status.storage.migration.cleanup). */
  async function cleanedUp(): Promise<NonNullable<NonNullable<NonNullable<GitRepo['status']>['storage']>['migration']>['cleanup']> {
    let last = '';
    return await waitFor(
      async () => {
        const storage = (await gitRepo()).status?.storage;
        last = JSON.stringify(storage);
        return storage?.migration?.cleanup?.phase === 'Deleted' ? storage.migration.cleanup : undefined;
      },
      { what: 'the old storage to be cleaned up', timeoutMs: 120_000, intervalMs: 1000, context: () => `${last}; logs in ${fleet.logDir}` },
    );
  }

  async function storageSecret(values: Record<string, string> | undefined): Promise<void> {
    const ref = { apiVersion: 'v1', kind: 'Secret', namespace: WS, name: 'ocistorage' };
    if (!values) await fleet.upstream.delete(ref);
    else
      await fleet.upstream.apply(
        { apiVersion: 'v1', kind: 'Secret', metadata: { name: ref.name, namespace: WS }, type: 'flotilla.dev/bundle-oci-storage/v1alpha1', stringData: values },
        MANAGER,
      );
  }

  /** Waits until the migration to `to` is Done, every Bundle and BundleDeployment uses it, and every BundleDeployment is Ready for its generation. */
  async function migratedTo(to: string): Promise<void> {
    let last = '';
    const where = (oci: { reference: string } | undefined) => (oci ? oci.reference.split('/').slice(0, -1).join('/') : 'etcd');
    await waitFor(
      async () => {
        await fleet.assertAlive();
        const m = (await gitRepo()).status?.storage?.migration;
        const bs = await bundles();
        const bds = await deployments();
        last = `migration ${JSON.stringify(m)}; bundles ${bs.map((b) => where(b.spec.oci)).join(',')}; deployments ${bds.map((d) => where(d.spec.oci)).join(',')}`;
        const ready = bds.every((d) =>
          d.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True' && c.observedGeneration === d.metadata.generation),
        );
        return m?.to === to && m.phase === 'Done' && bs.length === 3 && bds.length === 6 && [...bs, ...bds].every((o) => where(o.spec.oci) === to) && ready;
      },
      { what: `the migration to ${to}`, timeoutMs: 240_000, intervalMs: 1000, context: () => `${last}; logs in ${fleet.logDir}` },
    );
  }

  before(async function () {
    this.timeout(8 * 60_000);
    for (const c of CLUSTERS) downstream[c] = await KubeClient.fromKubeConfig(stack().cluster(c).kubeConfig());
    fleet = await startFleet(stack(), {
      workspace: WS,
      clusters: CLUSTERS.map((name) => ({ name, labels: { env: 'migration' } })),
    });
    await applyCredentials(fleet.upstream, WS, MANAGER, git());
    await git().createRepo(REPO);
    for (const b of BUNDLES) {
      files[`${b}/fleet.yaml`] = `defaultNamespace: mig-${b}\n`;
      files[`${b}/cm.yaml`] = `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: mig-${b}\ndata:\n  bundle: ${b}\n`;
    }
    commit = await git().commit(REPO, files, 'three bundles');
  });
  afterEach(function () {
    if (this.currentTest?.state === 'failed') failed = true;
  });
  after(async function () {
    this.timeout(120_000);
    await fleet?.stop();
    for (const k of Object.values(downstream)) await k.close();
    if (fleet && !failed) await removeFleetDir(fleet);
  });

  it('moves every bundle, its retained and rolled-back versions, through three storages and back; cleans up; nothing downstream is written', async () => {
    await fleet.upstream.apply(gitRepoObject(REPO, WS, git(), REPO, { paths: [...BUNDLES], pollingInterval: '2s' }), MANAGER);
    await gitRepoReadyAt(fleet, WS, REPO, commit, 300_000);
    expect((await gitRepo()).status?.storage).to.deep.equal({ mode: 'etcd', source: 'default' });
    const first = await downstreamObjects();
    expect(Object.values(first).filter((v) => v.startsWith('missing'))).to.deep.equal([]);

    // etcd -> registry one: the namespace-wide ocistorage Secret appears.
    const one = `${http().host}/mig-one`;
    await storageSecret({ reference: one, basicHTTP: 'true' });
    await migratedTo(one);
    expect((await gitRepo()).status?.storage).to.deep.include({ mode: 'oci', source: 'ocistorage', reference: one });
    expect(await downstreamObjects()).to.deep.equal(first);

    // Bundles a and b get a v2 in registry one; a is rolled back to v1 there.
    const second = await git().commit(
      REPO,
      {
        ...files,
        'a/cm.yaml': files['a/cm.yaml']?.replace('bundle: a', 'bundle: a2') ?? '',
        'b/cm.yaml': files['b/cm.yaml']?.replace('bundle: b', 'bundle: b2') ?? '',
      },
      'a and b change',
    );
    await gitRepoReadyAt(fleet, WS, REPO, second, 300_000);
    await settled('b', 'b2');
    const a = (await bundleOf('a')).metadata.name;
    const b = (await bundleOf('b')).metadata.name;
    expect((await bundleOf('a')).status?.history?.map((e) => e.version)).to.deep.equal([1, 2]);
    expect((await cli('rollback', a, '--to', 'v1')).code).to.equal(0);
    await settled('a', 'a');
    const v1 = (await bundleOf('a')).status?.history?.find((e) => e.version === 1)?.digest ?? '';

    // From here on nothing downstream may be written by a migration.
    const objects = await downstreamObjects();
    const writes = Object.fromEntries(await Promise.all(CLUSTERS.map(async (c) => [c, await configMapWrites(c)])));
    const ids = (await deployments()).map((d) => `${d.metadata.namespace}/${d.metadata.name}=${d.spec.deploymentID}`).sort();

    // registry one -> registry two, whose first answer is a refusal (wrong password): the migration fails, says why, and nothing moves.
    const two = `${auth().host}/mig-two`;
    // basicHTTP is given: a server-side apply of stringData keeps keys an earlier apply wrote.
    const target = { reference: two, basicHTTP: 'false', username: auth().username ?? '', cacerts: auth().caPem ?? '' };
    await storageSecret({ ...target, password: 'not-the-password' });
    const refused = await waitFor(
      async () => {
        const m = (await gitRepo()).status?.storage?.migration;
        return m?.to === two && m.phase === 'Failed' ? m : undefined;
      },
      { what: 'the refused migration to show on the GitRepo', timeoutMs: 120_000, context: () => `logs in ${fleet.logDir}` },
    );
    expect(refused.message).to.include(auth().host).and.not.include('not-the-password');
    expect((await gitRepo()).status?.storage?.reference).to.equal(one);
    expect((await bundles()).every((b) => b.spec.oci?.reference.startsWith(`${one}/`))).to.equal(true);
    // Each poll tries the migration again (Copying, then Failed): the CLI is read until it shows a failed attempt.
    const failedLine = `${WS}/${REPO}: ${one} -> ${two} Failed`;
    let printed = '';
    await waitFor(
      async () => {
        printed = (await cli('status')).out;
        return printed.includes(failedLine) ? true : undefined;
      },
      {
        what: 'flotilla status to show the failed migration',
        timeoutMs: 60_000,
        intervalMs: 200,
        context: () => `last output:\n${printed}`,
      },
    );
    expect(printed).to.include(failedLine);

    // The controller dies with the migration incomplete; the registry accepts once the Secret is fixed; a new controller completes it.
    await fleet.controller.kill9();
    await storageSecret({ ...target, password: auth().password ?? '' });
    fleet.controller.restart();
    await migratedTo(two);
    expect((await gitRepo()).status?.storage?.migration?.startedAt).to.equal(refused.startedAt);
    // Both versions of a and b are in registry two by digest; a's clusters still run v1, read from registry two.
    const repoA = (await bundleOf('a')).spec.oci?.reference.split('@')[0]?.slice(auth().host.length + 1) ?? '';
    expect(await tagsIn(auth(), repoA)).to.deep.equal(['v1', 'v2']);
    const pinned = (await deployments()).filter((d) => d.metadata.name === a);
    expect(pinned.map((d) => d.spec.oci?.reference)).to.deep.equal(CLUSTERS.map(() => `${two}/${repoA.split('/').at(-1)}@${v1}`));
    // Registry one is cleaned up (policy delete, the default) once every BundleDeployment reads registry two.
    expect((await cleanedUp())?.deleted).to.be.greaterThan(0);
    expect(await tagsIn(http(), `mig-one/${repoA.split('/').at(-1)}`)).to.deep.equal([]);
    expect(await downstreamObjects()).to.deep.equal(objects);
    for (const c of CLUSTERS) expect(await configMapWrites(c), `ConfigMap writes served by ${c}'s API server`).to.equal(writes[c]);
    expect((await deployments()).map((d) => `${d.metadata.namespace}/${d.metadata.name}=${d.spec.deploymentID}`).sort()).to.deep.equal(ids);

    // A rollback works from the new storage alone: b goes back to its v1, read from registry two (registry one is gone).
    expect((await cli('rollback', b, '--to', 'v1')).code).to.equal(0);
    await settled('b', 'b');
    const objectsBefore = await downstreamObjects();
    const writesBefore = Object.fromEntries(await Promise.all(CLUSTERS.map(async (c) => [c, await configMapWrites(c)])));
    const idsBefore = (await deployments()).map((d) => `${d.metadata.namespace}/${d.metadata.name}=${d.spec.deploymentID}`).sort();

    // registry two -> etcd: the Secret goes. The rolled-back bundles move too: their v1 is kept in etcd.
    await storageSecret(undefined);
    await migratedTo('etcd');
    expect((await bundles()).every((b) => (b.spec.resources ?? []).length > 0 && !b.spec.oci)).to.equal(true);
    expect((await cli('status')).out).to.include(`${WS}/${REPO}: ${two} -> etcd Done, 3/3 bundle(s)`);
    expect((await cleanedUp())?.deleted).to.be.greaterThan(0);
    expect(await tagsIn(auth(), repoA)).to.deep.equal([]);
    expect(await Promise.all(CLUSTERS.map((c) => dataOn(c, 'a')))).to.deep.equal(CLUSTERS.map(() => 'a'));

    // Nothing downstream changed: same objects, same versions, the same deployment IDs, and no ConfigMap write served.
    expect(await downstreamObjects()).to.deep.equal(objectsBefore);
    expect((await deployments()).map((d) => `${d.metadata.namespace}/${d.metadata.name}=${d.spec.deploymentID}`).sort()).to.deep.equal(idsBefore);
    for (const c of CLUSTERS) expect(await configMapWrites(c), `ConfigMap writes served by ${c}'s API server`).to.equal(writesBefore[c]);
  });

  async function cli(...argv: string[]): Promise<{ code: number; out: string }> {
    let out = '';
    const code = await main([...argv, '--kubeconfig', stack().cluster('upstream').kubeconfigPath, '-n', WS], {
      stdout: { write: (s: string) => (out += s) },
      stderr: { write: (s: string) => (out += s) },
    });
    return { code, out };
  }
});
