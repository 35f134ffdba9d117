import { expect } from 'chai';
import { stack } from './fixture.js';
import { waitFor } from '../stack/net.js';
import { startFleet, fleetSuiteTeardown, type Fleet } from './support/processes.js';
import { API_VERSION, type Bundle, type Condition, type GitRepo } from '../lib/api/index.js';
import { KubeClient, type KubeObject } from '../lib/kube/client.js';
import { applyCredentials, gitRepoObject, gitRepoReadyAt, ociRegistryFor } from './support/fleetobjects.js';
import type { RegistryHandle } from '../stack/registry.js';

type Obj<T> = T & KubeObject;

/**
 * Where bundles are stored, on the real stack (controller, an agent, git server, registries): each step of
 * the precedence (spec.ociRegistry, Fleet's ociRegistrySecret as Fleet's docs write it, the namespace's
 * ocistorage Secret, etcd), KEP-1755 discovery through a ConfigMap the test creates, and bad input: a
 * missing or wrong-typed Secret, a malformed reference, a malformed ConfigMap, an unreachable host.
 */
describe('storage configuration: precedence, Fleet Secrets, KEP-1755 discovery', function () {
  this.timeout(600_000);
  const WS = 'storage-e2e';
  const MANAGER = 'storage-e2e';
  const FLEET_TYPE = 'fleet.cattle.io/bundle-oci-storage/v1alpha1';
  let fleet: Fleet;
  let downstream: KubeClient;
  const git = () => stack().git!;
  const reg = (mode: RegistryHandle['mode']) => stack().registry(mode);

  const gitRepo = async (name: string) =>
    (await fleet.upstream.get<Obj<GitRepo>>({ apiVersion: API_VERSION, kind: 'GitRepo', namespace: WS, name })) as Obj<GitRepo>;
  const bundle = async (name: string) => await fleet.upstream.get<Obj<Bundle>>({ apiVersion: API_VERSION, kind: 'Bundle', namespace: WS, name });
  const cond = (r: Obj<GitRepo> | undefined, type: string): Condition | undefined => r?.status?.conditions?.find((c) => c.type === type);

  /** A git repository `name` whose folder `dir` holds one ConfigMap `name` for namespace `name`; returns the commit. */
  async function repoWithApp(name: string, dir = 'app'): Promise<string> {
    await git().createRepo(name);
    return await git().commit(
      name,
      {
        [`${dir}/fleet.yaml`]: `defaultNamespace: ${name}\n`,
        [`${dir}/cm.yaml`]: `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${name}\ndata:\n  k: v\n`,
      },
      'app',
    );
  }

  async function deployed(name: string): Promise<void> {
    await waitFor(async () => await downstream.get({ apiVersion: 'v1', kind: 'ConfigMap', namespace: name, name }), {
      what: `ConfigMap ${name}/${name} downstream`,
      timeoutMs: 120_000,
      context: () => `logs in ${fleet.logDir}`,
    });
  }

  /** Waits for GitRepo `name` to show condition `type` with `reason`; returns it. */
  async function conditionOf(name: string, type: string, reason: string, says = ''): Promise<Condition> {
    let last = '';
    return await waitFor(
      async () => {
        await fleet.assertAlive();
        const c = cond(await gitRepo(name), type);
        last = JSON.stringify(c);
        return c?.reason === reason && c.status === (type === 'Ready' ? 'False' : 'True') && c.message.includes(says) ? c : undefined;
      },
      { what: `GitRepo ${name} ${type} ${reason}`, timeoutMs: 120_000, intervalMs: 500, context: () => `${last}; logs in ${fleet.logDir}` },
    );
  }

  async function storageSecret(name: string, type: string, values: Record<string, string>): Promise<void> {
    await fleet.upstream.apply({ apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace: WS }, type, stringData: values }, MANAGER);
  }

  async function hosting(text: string | undefined): Promise<void> {
    const ref = { apiVersion: 'v1', kind: 'ConfigMap', namespace: 'kube-public', name: 'local-registry-hosting' };
    if (text === undefined) await fleet.upstream.delete(ref);
    else
      await fleet.upstream.apply(
        { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: ref.name, namespace: ref.namespace }, data: { 'localRegistryHosting.v1': text } },
        MANAGER,
      );
  }

  before(async function () {
    this.timeout(8 * 60_000);
    downstream = await KubeClient.fromKubeConfig(stack().cluster('downstream-1').kubeConfig());
    fleet = await startFleet(stack(), { workspace: WS, clusters: [{ name: 'downstream-1', labels: { env: 'storage' } }] });
    await applyCredentials(fleet.upstream, WS, MANAGER, git(), reg('tls-auth'));
  });
  fleetSuiteTeardown(() => fleet, {
    beforeStop: async () => {
      await fleet?.upstream.delete({ apiVersion: 'v1', kind: 'ConfigMap', namespace: 'kube-public', name: 'local-registry-hosting' }).catch(() => undefined);
    },
    afterStop: async () => {
      await downstream?.close();
    },
  });

  it('stores inline (etcd) when nothing names a registry, and in spec.ociRegistry when it is set', async () => {
    const etcdCommit = await repoWithApp('st-etcd');
    const ociCommit = await repoWithApp('st-spec');
    await fleet.upstream.apply(gitRepoObject('st-etcd', WS, git(), 'st-etcd', { paths: ['app'] }), MANAGER);
    await fleet.upstream.apply(
      gitRepoObject('st-spec', WS, git(), 'st-spec', { paths: ['app'], ociRegistry: ociRegistryFor(reg('http'), 'st-spec') }),
      MANAGER,
    );
    await gitRepoReadyAt(fleet, WS, 'st-etcd', etcdCommit, 240_000);
    await gitRepoReadyAt(fleet, WS, 'st-spec', ociCommit, 240_000);
    expect((await gitRepo('st-etcd')).status?.storage).to.deep.equal({ mode: 'etcd', source: 'default' });
    expect((await bundle('st-etcd-app'))?.spec.resources).to.have.length.greaterThan(0);
    expect((await gitRepo('st-spec')).status?.storage).to.deep.include({ mode: 'oci', source: 'ociRegistry', reference: `${reg('http').host}/st-spec` });
    expect((await bundle('st-spec-app'))?.spec.oci?.reference).to.match(new RegExp(`^${reg('http').host}/st-spec/`));
    await deployed('st-etcd');
    await deployed('st-spec');
  });

  it('deploys the Fleet docs example as written: ociRegistrySecret naming a fleet.cattle.io Secret with a bare host, TLS CA and agent credentials', async () => {
    const r = reg('tls-auth');
    const commit = await repoWithApp('st-fleet', 'frontend');
    await storageSecret('team-oci', FLEET_TYPE, {
      reference: r.host,
      username: r.username ?? '',
      password: r.password ?? '',
      agentUsername: r.username ?? '',
      agentPassword: r.password ?? '',
      insecureSkipTLS: 'false',
      basicHTTP: 'false',
      cacerts: r.caPem ?? '',
    });
    // Without targets a GitRepo deploys to the ClusterGroup "default" (as in Fleet): give this workspace one.
    await fleet.upstream.apply(
      { apiVersion: API_VERSION, kind: 'ClusterGroup', metadata: { name: 'default', namespace: WS }, spec: { selector: {} } },
      MANAGER,
    );
    // The GitRepo of Fleet's OCI storage page, with Flotilla's apiVersion and this stack's git server.
    const fleetDoc = {
      apiVersion: API_VERSION,
      kind: 'GitRepo',
      metadata: { name: 'st-fleet', namespace: WS },
      spec: {
        repo: `${git().url}/st-fleet.git`,
        branch: 'main',
        paths: ['./frontend'],
        ociRegistrySecret: 'team-oci',
        clientSecretName: 'git-auth',
        pollingInterval: '2s',
      },
    };
    await fleet.upstream.apply(fleetDoc, MANAGER);
    await gitRepoReadyAt(fleet, WS, 'st-fleet', commit, 240_000);
    expect((await gitRepo('st-fleet')).status?.storage).to.deep.include({ mode: 'oci', source: 'ociRegistrySecret', reference: `${r.host}/flotilla` });
    const oci = (await bundle('st-fleet-frontend'))?.spec.oci;
    expect(oci?.reference).to.match(new RegExp(`^${r.host}/flotilla/`));
    expect(oci?.secretName).to.equal('team-oci');
    expect(Buffer.from(oci?.caBundle ?? '', 'base64').toString()).to.include('BEGIN CERTIFICATE');
    await deployed('st-fleet');
  });

  it('stalls with a clear condition, never using etcd, on a missing or wrong-typed Secret or a malformed reference', async () => {
    const cases: [string, () => Promise<void>, RegExp][] = [
      ['st-missing', async () => {}, /Secret storage-e2e\/st-missing-oci \(spec.ociRegistrySecret\) does not exist/],
      ['st-wrongtype', () => storageSecret('st-wrongtype-oci', 'Opaque', { reference: `${reg('http').host}/x` }), /has type Opaque, not fleet.cattle.io/],
      [
        'st-badref',
        () => storageSecret('st-badref-oci', FLEET_TYPE, { reference: `oci://${reg('http').host}/x` }),
        /key reference is not "host\[:port\]\[\/path\]"/,
      ],
    ];
    for (const [name, prepare] of cases) {
      await repoWithApp(name);
      await prepare();
      await fleet.upstream.apply(gitRepoObject(name, WS, git(), name, { paths: ['app'], ociRegistrySecret: `${name}-oci` }), MANAGER);
    }
    for (const [name, , message] of cases) {
      const stalled = await conditionOf(name, 'Stalled', 'StorageSecretInvalid');
      expect(stalled.message).to.match(message);
      expect(await bundle(`${name}-app`)).to.equal(undefined);
    }
    // Fixing the Secret is enough: the GitRepo recovers on its next poll.
    await storageSecret('st-missing-oci', FLEET_TYPE, { reference: `${reg('http').host}/fixed`, basicHTTP: 'true' });
    await waitFor(async () => (await bundle('st-missing-app'))?.spec.oci?.reference.startsWith(`${reg('http').host}/fixed/`), {
      what: 'st-missing to store in the registry once its Secret exists',
      timeoutMs: 120_000,
    });
  });

  it('discovers the registry from kube-public/local-registry-hosting when ociRegistry gives no reference', async () => {
    const r = reg('http');
    await hosting(`host: "${r.host}"\nhostFromClusterNetwork: "registry.invalid:5000"\nhelp: "https://flotilla.dev/storage"\n`);
    const commit = await repoWithApp('st-discover');
    await fleet.upstream.apply(gitRepoObject('st-discover', WS, git(), 'st-discover', { paths: ['app'], ociRegistry: { basicHTTP: true } }), MANAGER);
    await gitRepoReadyAt(fleet, WS, 'st-discover', commit, 240_000);
    expect((await gitRepo('st-discover')).status?.storage).to.deep.include({ mode: 'oci', source: 'discovery', reference: `${r.host}/flotilla` });
    await deployed('st-discover');
  });

  it('says what is wrong with a malformed, missing or unreachable KEP-1755 registry, and leaves what runs alone', async () => {
    await hosting('host: [not closed\n');
    await repoWithApp('st-discover-bad');
    await fleet.upstream.apply(gitRepoObject('st-discover-bad', WS, git(), 'st-discover-bad', { paths: ['app'], ociRegistry: { basicHTTP: true } }), MANAGER);
    expect((await conditionOf('st-discover-bad', 'Stalled', 'RegistryDiscoveryFailed')).message).to.include('is not YAML');
    await hosting(undefined);
    expect((await conditionOf('st-discover-bad', 'Ready', 'RegistryDiscoveryFailed', 'does not exist')).message).to.include('set spec.ociRegistry.reference');
    await hosting('host: "127.0.0.1:9"\n');
    const unreachable = await waitFor(
      async () => {
        const c = cond(await gitRepo('st-discover-bad'), 'ArtifactsStored');
        return c?.status === 'False' ? c : undefined;
      },
      { what: 'st-discover-bad to say the discovered registry cannot be reached', timeoutMs: 120_000 },
    );
    expect(unreachable.message).to.include('127.0.0.1:9');
    // The GitRepo that discovered the registry earlier is untouched: same Bundle, still deployed.
    expect(await downstream.get({ apiVersion: 'v1', kind: 'ConfigMap', namespace: 'st-discover', name: 'st-discover' })).to.not.equal(undefined);
  });

  it('uses the namespace-wide ocistorage Secret for a GitRepo that names no storage', async () => {
    const r = reg('http');
    await storageSecret('ocistorage', 'flotilla.dev/bundle-oci-storage/v1alpha1', { reference: `${r.host}/ns-wide`, basicHTTP: 'true' });
    const commit = await repoWithApp('st-fallback');
    await fleet.upstream.apply(gitRepoObject('st-fallback', WS, git(), 'st-fallback', { paths: ['app'] }), MANAGER);
    await gitRepoReadyAt(fleet, WS, 'st-fallback', commit, 240_000);
    expect((await gitRepo('st-fallback')).status?.storage).to.deep.include({ mode: 'oci', source: 'ocistorage', reference: `${r.host}/ns-wide` });
    expect((await bundle('st-fallback-app'))?.spec.oci?.reference).to.match(new RegExp(`^${r.host}/ns-wide/`));
    // spec.ociRegistry still wins over it.
    expect((await gitRepo('st-spec')).status?.storage?.reference).to.equal(`${r.host}/st-spec`);
    await deployed('st-fallback');
  });
});
