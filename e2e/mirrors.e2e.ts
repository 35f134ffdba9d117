import { expect } from 'chai';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { API_VERSION, ConditionType, Label, type BundleDeployment, type Cluster } from '../lib/api/index.js';
import { KubeClient, type KubeObject } from '../lib/kube/client.js';
import { waitFor } from '../stack/net.js';
import { stack } from './fixture.js';
import { startFaultProxy, type FaultProxy, type RequestMatcher } from './support/faultproxy.js';
import { REGISTRY_AUTH_SECRET, applyCredentials, gitRepoObject, gitRepoReadyAt } from './support/fleetobjects.js';
import { fleetSuiteTeardown, startFleet, type Fleet } from './support/processes.js';

/**
 * Per-cluster registry mirrors on the real stack (docs/mirrors.md). The GitRepo stores its bundles at an
 * "origin" address (a pass-through proxy in front of the real TLS + basic-auth registry) that refuses every
 * pull (GET of a manifest by digest or of a blob): only the controller's pushes, HEADs and tag lists pass.
 * The downstream cluster's agent is told in its bootstrap flags that this registry is reached through a
 * second proxy, the mirror, with its own CA and credentials Secret. The cluster deploys, every pull is seen
 * on the mirror and none on the origin; a mirror serving other bytes is refused by digest, named on the
 * BundleDeployment's status while the last good version stays; a Cluster entry then overrides the bootstrap
 * one (credentials upstream), and the Cluster's status shows the mirrors in effect without credentials.
 */

type Obj<T> = T & KubeObject;
const WS = 'mirrors-e2e';
const REPO = 'mirrors-e2e';
const APP_NS = 'mirrors-e2e-app';
const CLUSTER = 'downstream-1';
const MANAGER = 'mirrors-e2e';
const MIRROR_SECRET = 'mirror-auth';
const CONVERGE_MS = 180_000;
const b64 = (s: string): string => Buffer.from(s).toString('base64');

/** A pull of bundle content: a manifest by digest or a blob (what the agent does, never the controller). */
const isPull: RequestMatcher = (method, path) => method === 'GET' && (/\/blobs\/sha256:/.test(path) || /\/manifests\/sha256:/.test(path));

function repoFiles(version: number): Record<string, string> {
  return {
    'app/fleet.yaml': `defaultNamespace: ${APP_NS}\n`,
    'app/cm.yaml': `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: mirrored\ndata:\n  version: "${version}"\n`,
  };
}

describe('registry mirrors: a cluster reaching the registry only through its mirror', function () {
  this.timeout(15 * 60_000);
  const registry = () => stack().registry('tls-auth');
  const git = () => stack().git!;
  let fleet: Fleet;
  let origin: FaultProxy;
  let mirror: FaultProxy;
  let downstream: KubeClient;
  let dir = '';

  async function appliedVersion(): Promise<string | undefined> {
    const cm = await downstream.get<KubeObject & { data?: Record<string, string> }>({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      namespace: APP_NS,
      name: 'mirrored',
    });
    return cm?.data?.version;
  }

  async function bundleDeployment(): Promise<Obj<BundleDeployment>> {
    const list = await fleet.upstream.list<Obj<BundleDeployment>>({ apiVersion: API_VERSION, kind: 'BundleDeployment' }, `${Label.RepoName}=${REPO}`);
    expect(list.items, 'one BundleDeployment for the one cluster').to.have.length(1);
    return list.items[0]!;
  }

  async function cluster(): Promise<Obj<Cluster>> {
    const list = await fleet.upstream.list<Obj<Cluster>>({ apiVersion: API_VERSION, kind: 'Cluster', namespace: WS });
    expect(list.items).to.have.length(1);
    return list.items[0]!;
  }

  async function deployedVersion(version: number, commit: string): Promise<void> {
    await gitRepoReadyAt(fleet, WS, REPO, commit, CONVERGE_MS);
    await waitFor(async () => (await appliedVersion()) === String(version), {
      what: `ConfigMap mirrored at version ${version} downstream`,
      timeoutMs: 30_000,
      context: () => `logs in ${fleet.logDir}`,
    });
  }

  before(async function () {
    this.timeout(5 * 60_000);
    const reg = registry();
    dir = await mkdtemp(join(tmpdir(), 'flotilla-mirrors-e2e-'));
    origin = await startFaultProxy({ target: reg.url, targetCaPem: reg.caPem!, dir: join(dir, 'origin') });
    mirror = await startFaultProxy({ target: reg.url, targetCaPem: reg.caPem!, dir: join(dir, 'mirror') });
    // The origin address refuses every pull from the start: an agent that used it could deploy nothing.
    origin.inject({ kind: 'status', status: 403, match: isPull });
    downstream = await KubeClient.fromKubeConfig(stack().cluster(CLUSTER).kubeConfig());
    await downstream.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: APP_NS } }, MANAGER);
    const bootstrapMirrors = [{ registry: origin.host, mirror: mirror.host, authSecretName: MIRROR_SECRET, caBundle: b64(mirror.caPem) }];
    fleet = await startFleet(stack(), {
      workspace: WS,
      clusters: [{ name: CLUSTER, labels: { env: 'mirrored' }, agentArgs: ['--registry-mirrors', JSON.stringify(bootstrapMirrors)] }],
    });
    // The mirror's credentials: a Secret in the agent's namespace downstream (bootstrap entries).
    await downstream.apply(
      {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: MIRROR_SECRET, namespace: fleet.agentNamespace },
        stringData: { username: reg.username ?? '', password: reg.password ?? '' },
      },
      MANAGER,
    );
    await applyCredentials(fleet.upstream, WS, MANAGER, git(), reg);
    await git().createRepo(REPO);
  });

  fleetSuiteTeardown(() => fleet, {
    afterStop: async () => {
      await origin?.close();
      await mirror?.close();
      await downstream?.close();
      if (dir) await rm(dir, { recursive: true, force: true });
    },
  });

  it('deploys with every pull on the mirror and none on the origin, whose address the bundle pins', async () => {
    const commit = await git().commit(REPO, repoFiles(1), 'first');
    await fleet.upstream.apply(
      gitRepoObject(REPO, WS, git(), REPO, {
        paths: ['app'],
        ociRegistry: { reference: `${origin.host}/mirrors-e2e`, authSecretName: REGISTRY_AUTH_SECRET, caBundle: b64(origin.caPem) },
      }),
      MANAGER,
    );
    await deployedVersion(1, commit);
    const bd = await bundleDeployment();
    expect(bd.spec.oci?.reference, 'the BundleDeployment pins the origin address').to.match(
      new RegExp(`^${origin.host.replace(/\./g, '\\.')}/mirrors-e2e/.+@sha256:`),
    );
    const pulls = mirror.requests.filter((r) => isPull(r.method, r.path));
    expect(
      pulls.some((r) => r.path.includes(`/manifests/${bd.spec.oci?.digest}`) && r.status === 200),
      'the manifest came from the mirror',
    ).to.equal(true);
    expect(pulls.filter((r) => r.path.includes('/blobs/') && r.status === 200).length, 'blobs from the mirror').to.be.greaterThan(0);
    expect(
      origin.requests.filter((r) => isPull(r.method, r.path)),
      'pulls that reached the origin address',
    ).to.deep.equal([]);
    expect(
      origin.requests.some((r) => r.method === 'PUT'),
      'the controller pushed to the origin',
    ).to.equal(true);
  });

  it("shows the mirror in effect on the Cluster's status, without credentials", async () => {
    const reg = registry();
    const seen = await waitFor(
      async () => {
        const mirrors = (await cluster()).status?.agent?.registryMirrors;
        return mirrors && mirrors.length > 0 ? mirrors : undefined;
      },
      { what: 'status.agent.registryMirrors on the Cluster', timeoutMs: 30_000 },
    );
    expect(seen).to.deep.equal([
      { registry: origin.host, mirror: `https://${mirror.host}`, source: 'bootstrap', authSecretName: MIRROR_SECRET, caBundle: true, originFallback: true },
    ]);
    const text = JSON.stringify((await cluster()).status);
    expect(text)
      .to.not.include(reg.password ?? 'no password')
      .and.not.include(b64(mirror.caPem));
  });

  it('refuses a mirror serving other bytes by digest, names it on the status, keeps the last good version, and recovers', async () => {
    const pullsBefore = mirror.requests.length;
    mirror.inject({ kind: 'tamper', match: (method, path) => method === 'GET' && path.includes('/blobs/sha256:') });
    const commit = await git().commit(REPO, repoFiles(2), 'second');
    const deployed = await waitFor(
      async () => {
        const bd = await bundleDeployment();
        const c = bd.status?.conditions?.find((x) => x.type === ConditionType.Deployed);
        return c?.status === 'False' && c.reason === 'ArtifactTampered' ? { bd, c } : undefined;
      },
      { what: 'Deployed=False ArtifactTampered on the BundleDeployment', timeoutMs: CONVERGE_MS, intervalMs: 500, context: () => `logs in ${fleet.logDir}` },
    );
    const tampered = mirror.requests.slice(pullsBefore).filter((r) => r.injected);
    expect(tampered.length, 'blobs the mirror tampered with').to.be.greaterThan(0);
    const message = deployed.c.message ?? '';
    const bundle = deployed.bd.metadata.labels?.[Label.BundleName] ?? 'unknown';
    expect(message).to.include(`bundle ${bundle}`).and.include(`registry mirror https://${mirror.host}`).and.include('digest mismatch');
    const blob = /expected (sha256:[0-9a-f]{64})/.exec(message)?.[1];
    expect(
      tampered.map((r) => r.path.slice(r.path.lastIndexOf('/') + 1)),
      'the blob named is one the mirror tampered with',
    ).to.include(blob);
    expect(await appliedVersion(), 'the last good version stays applied').to.equal('1');
    expect(
      origin.requests.filter((r) => isPull(r.method, r.path)),
      'no silent fallback to the origin',
    ).to.deep.equal([]);

    mirror.heal();
    await deployedVersion(2, commit);
    expect(
      origin.requests.filter((r) => isPull(r.method, r.path)),
      'pulls that reached the origin address',
    ).to.deep.equal([]);
  });

  it('lets a Cluster entry override the bootstrap one, with its credentials upstream in the cluster namespace', async () => {
    const reg = registry();
    const c = await cluster();
    const clusterNamespace = c.status?.namespace ?? '';
    expect(clusterNamespace).to.not.equal('');
    await fleet.upstream.apply(
      {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'mirror-auth-upstream', namespace: clusterNamespace },
        stringData: { username: reg.username ?? '', password: reg.password ?? '' },
      },
      MANAGER,
    );
    // The bootstrap entry's Secret goes away: from now on only the Cluster entry's upstream Secret can
    // authenticate pulls on the mirror (the registry behind it requires credentials).
    expect(await downstream.delete({ apiVersion: 'v1', kind: 'Secret', namespace: fleet.agentNamespace, name: MIRROR_SECRET })).to.equal(true);
    await fleet.upstream.mergePatch(
      { apiVersion: API_VERSION, kind: 'Cluster', namespace: WS, name: c.metadata.name },
      {
        spec: {
          registryMirrors: [
            {
              registry: origin.host,
              mirror: `https://${mirror.host}`,
              authSecretName: 'mirror-auth-upstream',
              caBundle: b64(mirror.caPem),
              originFallback: false,
            },
          ],
        },
      },
    );
    await waitFor(async () => (await cluster()).status?.agent?.registryMirrors?.[0]?.source === 'cluster' || undefined, {
      what: 'the Cluster entry in effect on the Cluster status',
      timeoutMs: 30_000,
    });
    expect((await cluster()).status?.agent?.registryMirrors).to.deep.equal([
      {
        registry: origin.host,
        mirror: `https://${mirror.host}`,
        source: 'cluster',
        authSecretName: 'mirror-auth-upstream',
        caBundle: true,
        originFallback: false,
      },
    ]);
    const mark = mirror.requests.length;
    const commit = await git().commit(REPO, repoFiles(3), 'third');
    await deployedVersion(3, commit);
    expect(
      mirror.requests.slice(mark).filter((r) => isPull(r.method, r.path) && r.status === 200).length,
      'pulls of version 3 on the mirror',
    ).to.be.greaterThan(0);
    expect(
      origin.requests.filter((r) => isPull(r.method, r.path)),
      'pulls that reached the origin address',
    ).to.deep.equal([]);
  });
});
