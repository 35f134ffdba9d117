import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { stack } from './fixture.js';
import { waitFor } from '../stack/net.js';
import { registryClientFor, type RegistryHandle } from '../stack/registry.js';
import { fleetLogs, removeFleetDir, startFleet, type Fleet } from './support/processes.js';
import { applyCredentials, gitRepoObject, ociRegistryFor } from './support/fleetobjects.js';
import { KubeClient, type KubeObject } from '../lib/kube/client.js';
import { API_VERSION } from '../lib/api/index.js';
import { main } from '../cli/main.js';
import { findImageRefs } from '../lib/images/refs.js';
import type { RegistryClient } from '../lib/oci/index.js';
import { pushIndex, pushManifest, type Built } from './support/airgap-images.js';

/**
 * Airgap on the real stack (issue 17): images built here (a two-platform index with several layers and a
 * single-platform image) are pushed by tag to the plain source registry; a bundle references them by tag
 * from every workload kind. With `spec.images.relocation` on the TLS + basic-auth registry, every applied
 * workload on both clusters references `registry/namespace/path@digest` of the copy, never the source; a
 * second image version sharing the base layer re-sends none of the shared layers (bytes counted from the
 * controller's log); a local image gets each cluster's own KEP-1755 host, and a cluster without the
 * ConfigMap applies nothing and says why.
 */

const reEscape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

const workloads = (multi: string, single: string) => `apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 0
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      initContainers: [{name: init, image: "${single}"}]
      containers: [{name: web, image: "${multi}"}, {name: local, image: "localapp:1"}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  replicas: 0
  serviceName: db
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec: {containers: [{name: db, image: "${single}"}]}
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: nightly}
spec:
  schedule: "0 3 * * *"
  suspend: true
  jobTemplate:
    spec:
      template:
        spec: {restartPolicy: Never, containers: [{name: job, image: "${multi}"}]}
`;

describe('airgap: images lock, relocation and local images', function () {
  this.timeout(900_000);
  const WS = 'airgap-e2e';
  const REPO = 'airgap-e2e-app';
  const APP_NS = 'airgap-e2e-app';
  let fleet: Fleet;
  let failed = false;
  const downstream: Record<string, KubeClient> = {};
  const git = () => stack().git!;
  const src = (): RegistryHandle => stack().registry('http');
  const dst = (): RegistryHandle => stack().registry('tls-auth');
  /** The suite's GitRepo: bundles in the source registry, images relocated to the TLS + basic-auth one. */
  const relocatingRepo = (relocation: { imagePullSecret?: string } = {}) =>
    gitRepoObject(REPO, WS, git(), REPO, {
      paths: ['app'],
      pollingInterval: '1s',
      ociRegistry: ociRegistryFor(src(), 'airgap-e2e-bundles'),
      images: {
        relocation: {
          registryEndpoint: dst().host,
          imageNamespace: 'mirror',
          authSecretName: 'relocation-auth',
          caBundle: Buffer.from(dst().caPem ?? '').toString('base64'),
          ...relocation,
        },
        sources: [{ registry: src().host, basicHTTP: true }],
      },
    });
  let srcClient: RegistryClient;
  const base = [randomBytes(256 * 1024), randomBytes(128 * 1024)];
  const built: Record<string, Built> = {};

  async function workloadImages(cluster: string): Promise<string[]> {
    const k = downstream[cluster] as KubeClient;
    const out: string[] = [];
    for (const [apiVersion, kind, name] of [
      ['apps/v1', 'Deployment', 'web'],
      ['apps/v1', 'StatefulSet', 'db'],
      ['batch/v1', 'CronJob', 'nightly'],
    ] as const) {
      const o = await k.get<KubeObject>({ apiVersion, kind, namespace: APP_NS, name });
      if (!o) return [];
      out.push(...findImageRefs(o).map((r) => r.image));
    }
    return out;
  }

  async function imagesLockedLines(): Promise<Array<Record<string, unknown>>> {
    const controller = (await fleetLogs(fleet)).find((l) => l.name.includes('controller'));
    return (controller?.text ?? '')
      .split('\n')
      .filter((l) => l.includes('"images locked"'))
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((l) => l.bundle === `${REPO}-app`);
  }

  before(async function () {
    this.timeout(10 * 60_000);
    for (const c of ['downstream-1', 'downstream-2']) downstream[c] = await KubeClient.fromKubeConfig(stack().cluster(c).kubeConfig());
    srcClient = registryClientFor(src());
    built.multi1 = await pushIndex(srcClient, 'airgap-e2e/multi', 'v1', base, randomBytes(64 * 1024));
    built.single = await pushManifest(srcClient, 'airgap-e2e/single', [base[0] as Buffer, randomBytes(32 * 1024)], 'linux/amd64', 'v1');
    built.multi2 = await pushIndex(srcClient, 'airgap-e2e/multi', 'v2', base, randomBytes(16 * 1024));
    fleet = await startFleet(stack(), {
      workspace: WS,
      clusters: [
        { name: 'downstream-1', labels: { env: 'airgap' } },
        { name: 'downstream-2', labels: { env: 'airgap' } },
      ],
    });
    await applyCredentials(fleet.upstream, WS, 'airgap-e2e', git());
    await fleet.upstream.apply(
      {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'relocation-auth', namespace: WS },
        stringData: { username: dst().username ?? '', password: dst().password ?? '' },
      },
      'airgap-e2e',
    );
    const hosts: Record<string, string> = { 'downstream-1': 'localhost:5001', 'downstream-2': 'kind-registry:5000' };
    for (const [c, host] of Object.entries(hosts)) {
      await downstream[c]?.apply(
        {
          apiVersion: 'v1',
          kind: 'ConfigMap',
          metadata: { name: 'local-registry-hosting', namespace: 'kube-public' },
          data: { 'localRegistryHosting.v1': c === 'downstream-1' ? `host: "${host}"\n` : `host: "localhost:9999"\nhostFromContainerRuntime: "${host}"\n` },
        },
        'airgap-e2e',
      );
    }
    await git().createRepo(REPO);
  });
  afterEach(function () {
    if (this.currentTest?.state === 'failed') failed = true;
  });
  after(async function () {
    this.timeout(120_000);
    await fleet?.stop();
    await srcClient?.close();
    for (const k of Object.values(downstream)) await k.close();
    if (fleet && !failed) await removeFleetDir(fleet);
  });

  it("relocates every image to the TLS + basic-auth registry: each workload on both clusters runs the copy by digest, local images get each cluster's host", async () => {
    const multi = `${src().host}/airgap-e2e/multi:v1`;
    const single = `${src().host}/airgap-e2e/single:v1`;
    await git().commit(
      REPO,
      { 'app/fleet.yaml': `defaultNamespace: ${APP_NS}\nimages:\n  local: [localapp]\n`, 'app/workloads.yaml': workloads(multi, single) },
      'one',
    );
    await fleet.upstream.apply(relocatingRepo(), 'airgap-e2e');
    const relocatedMulti = `${dst().host}/mirror/airgap-e2e/multi@${built.multi1?.digest}`;
    const relocatedSingle = `${dst().host}/mirror/airgap-e2e/single@${built.single?.digest}`;
    const want: Record<string, string[]> = {
      'downstream-1': [relocatedMulti, 'localhost:5001/localapp:1', relocatedSingle, relocatedSingle, relocatedMulti],
      'downstream-2': [relocatedMulti, 'kind-registry:5000/localapp:1', relocatedSingle, relocatedSingle, relocatedMulti],
    };
    for (const [cluster, images] of Object.entries(want)) {
      let last: string[] = [];
      await waitFor(
        async () => {
          await fleet.assertAlive();
          last = await workloadImages(cluster);
          return JSON.stringify(last) === JSON.stringify(images) || undefined;
        },
        { what: `relocated images on ${cluster}`, timeoutMs: 240_000, intervalMs: 1000, context: () => `got ${JSON.stringify(last)}; logs in ${fleet.logDir}` },
      );
      expect(last.some((i) => i.includes(src().host))).to.equal(false);
    }
    // flotilla images prints the lock: digests, platforms of the index, the copies and the local image.
    let out = '';
    const code = await main(['images', `${REPO}-app`, '-n', WS, '--kubeconfig', stack().cluster('upstream').kubeconfigPath], {
      stdout: { write: (s: string) => (out += s) },
      stderr: { write: (s: string) => (out += s) },
    });
    expect(code, out).to.equal(0);
    expect(out).to.contain(`${multi}\t${built.multi1?.digest}\tlinux/amd64,linux/arm64\t${relocatedMulti}`);
    expect(out).to.contain(`${single}\t${built.single?.digest}\t-\t${relocatedSingle}`);
    expect(out).to.contain('localapp:1\tlocal');
    // The copy is whole: the index and both platform manifests, with the index digest unchanged.
    const dstClient = registryClientFor(dst());
    try {
      const index = await dstClient.getManifest('mirror/airgap-e2e/multi', built.multi1?.digest as string);
      expect(index.digest).to.equal(built.multi1?.digest);
      for (const m of (JSON.parse(index.bytes.toString()) as { manifests: Array<{ digest: string }> }).manifests) {
        expect(await dstClient.hasManifest('mirror/airgap-e2e/multi', m.digest)).to.equal(true);
      }
      for (const b of built.multi1?.blobs ?? []) expect(await dstClient.blobSize('mirror/airgap-e2e/multi', b.digest)).to.equal(b.size);
    } finally {
      await dstClient.close();
    }
  });

  it('a second version sharing the base layers uploads only the new layers (bytes counted)', async () => {
    const before = (await imagesLockedLines()).length;
    await git().commit(REPO, { 'app/workloads.yaml': workloads(`${src().host}/airgap-e2e/multi:v2`, `${src().host}/airgap-e2e/single:v1`) }, 'two');
    const relocated = `${dst().host}/mirror/airgap-e2e/multi@${built.multi2?.digest}`;
    await waitFor(async () => ((await workloadImages('downstream-1')).includes(relocated) ? true : undefined), {
      what: 'multi:v2 relocated on downstream-1',
      timeoutMs: 240_000,
      intervalMs: 1000,
      context: () => `logs in ${fleet.logDir}`,
    });
    const line = (await imagesLockedLines())[before] as Record<string, number>;
    const known = new Set([...(built.multi1?.blobs ?? []), ...(built.single?.blobs ?? [])].map((b) => b.digest));
    const fresh = new Map((built.multi2?.blobs ?? []).filter((b) => !known.has(b.digest)).map((b) => [b.digest, b.size]));
    const expected = [...fresh.values()].reduce((a, b) => a + b, 0);
    expect(line.bytesUploaded, JSON.stringify(line)).to.equal(expected);
    expect(line.blobsUploaded).to.equal(fresh.size);
    expect(line.bytesUploaded).to.be.below(base.reduce((n, b) => n + b.length, 0));
  });

  it('flotilla diff shows the images of both versions as the agent applies them: relocated copies by digest, never the source', async () => {
    let out = '';
    const code = await main(
      [
        'diff',
        `${REPO}-app`,
        'v1',
        'v2',
        '-n',
        WS,
        '-l',
        'env=airgap',
        '--local-registry',
        'localhost:5001',
        '--kubeconfig',
        stack().cluster('upstream').kubeconfigPath,
      ],
      { stdout: { write: (s: string) => (out += s) }, stderr: { write: (s: string) => (out += s) } },
    );
    expect(code, out).to.equal(0);
    expect(out).to.match(new RegExp(`^\\s*-.*image: ${reEscape(`${dst().host}/mirror/airgap-e2e/multi@${built.multi1?.digest}`)}`, 'm'));
    expect(out).to.match(new RegExp(`^\\s*\\+.*image: ${reEscape(`${dst().host}/mirror/airgap-e2e/multi@${built.multi2?.digest}`)}`, 'm'));
    expect(out).to.not.match(new RegExp(`image: ${reEscape(src().host)}/`));
  });

  it('a cluster without a local registry ConfigMap applies nothing and says so', async () => {
    await downstream['downstream-2']?.delete({ apiVersion: 'v1', kind: 'ConfigMap', namespace: 'kube-public', name: 'local-registry-hosting' });
    await git().commit(REPO, { 'app/workloads.yaml': workloads(`${src().host}/airgap-e2e/multi:v1`, `${src().host}/airgap-e2e/single:v1`) }, 'three');
    let message = '';
    await waitFor(
      async () => {
        const list = await fleet.upstream.list<KubeObject & { status?: { conditions?: Array<{ type: string; reason?: string; message?: string }> } }>({
          apiVersion: API_VERSION,
          kind: 'BundleDeployment',
        });
        const bd = list.items.find((b) => b.metadata.labels?.['flotilla.dev/cluster'] === 'downstream-2' && b.metadata.name.includes(REPO));
        const c = bd?.status?.conditions?.find((x) => x.reason === 'LocalRegistryNotFound');
        message = c?.message ?? message;
        return c ? true : undefined;
      },
      { what: 'LocalRegistryNotFound on downstream-2', timeoutMs: 180_000, intervalMs: 1000, context: () => `logs in ${fleet.logDir}` },
    );
    expect(message).to.contain('localapp:1').and.contain('kube-public/local-registry-hosting');
    // Nothing of the new version was applied there: the Deployment still runs multi:v2's copy.
    expect(await workloadImages('downstream-2')).to.include(`${dst().host}/mirror/airgap-e2e/multi@${built.multi2?.digest}`);
  });

  async function gitRepoCondition(reason: string): Promise<string> {
    let message = '';
    await waitFor(
      async () => {
        const repo = await fleet.upstream.get<KubeObject & { status?: { conditions?: Array<{ reason?: string; message?: string }> } }>({
          apiVersion: API_VERSION,
          kind: 'GitRepo',
          namespace: WS,
          name: REPO,
        });
        const c = repo?.status?.conditions?.find((x) => x.reason === reason);
        message = c?.message ?? '';
        return c ? true : undefined;
      },
      { what: `GitRepo ${WS}/${REPO} condition ${reason}`, timeoutMs: 180_000, intervalMs: 1000, context: () => `logs in ${fleet.logDir}` },
    );
    return message;
  }

  it('an image whose digest is gone from the source: ImageNotFound names the bundle and the image; the last good version stays applied', async () => {
    const v3 = await pushIndex(srcClient, 'airgap-e2e/multi', 'v3', base, randomBytes(8 * 1024));
    expect(await srcClient.deleteManifest('airgap-e2e/multi', v3.digest)).to.equal(true);
    await git().commit(REPO, { 'app/workloads.yaml': workloads(`${src().host}/airgap-e2e/multi:v3`, `${src().host}/airgap-e2e/single:v1`) }, 'gone');
    const message = await gitRepoCondition('ImageNotFound');
    expect(message).to.contain(`${REPO}-app`).and.contain('airgap-e2e/multi:v3');
    expect(await workloadImages('downstream-1')).to.include(`${dst().host}/mirror/airgap-e2e/multi@${built.multi1?.digest}`);
  });

  it('a relocation registry that refuses the credentials: ImageRelocationFailed names the bundle and the image; the last good version stays applied', async () => {
    await fleet.upstream.apply(
      {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'relocation-auth', namespace: WS },
        stringData: { username: dst().username ?? '', password: 'wrong' },
      },
      'airgap-e2e',
    );
    await pushIndex(srcClient, 'airgap-e2e/multi', 'v4', base, randomBytes(8 * 1024));
    await git().commit(REPO, { 'app/workloads.yaml': workloads(`${src().host}/airgap-e2e/multi:v4`, `${src().host}/airgap-e2e/single:v1`) }, 'refused');
    const message = await gitRepoCondition('ImageRelocationFailed');
    expect(message).to.contain(`${REPO}-app`).and.contain('airgap-e2e/multi:v4').and.contain(dst().host);
    expect(await workloadImages('downstream-1')).to.include(`${dst().host}/mirror/airgap-e2e/multi@${built.multi1?.digest}`);
  });
  async function bundleDeploymentCondition(cluster: string, reason: string, naming: string): Promise<string> {
    let message = '';
    await waitFor(
      async () => {
        const list = await fleet.upstream.list<KubeObject & { status?: { conditions?: Array<{ reason?: string; message?: string }> } }>({
          apiVersion: API_VERSION,
          kind: 'BundleDeployment',
        });
        const bd = list.items.find((b) => b.metadata.labels?.['flotilla.dev/cluster'] === cluster && b.metadata.name.includes(REPO));
        // The version of interest: re-applying the GitRepo can first build the previous head commit.
        const c = bd?.status?.conditions?.find((x) => x.reason === reason && x.message?.includes(naming));
        message = bd?.status?.conditions?.find((x) => x.reason === reason)?.message ?? message;
        return c ? true : undefined;
      },
      { what: `${reason} naming ${naming} on ${cluster}`, timeoutMs: 180_000, intervalMs: 1000, context: () => `last: ${message}; logs in ${fleet.logDir}` },
    );
    return message;
  }

  it("relocation's imagePullSecret missing downstream: ImagePullSecretNotFound names bundle, image and Secret, nothing applied; once created, pods name it, and the cluster's registry mirror carries the copies", async () => {
    // Good credentials again (the previous test broke them), the pull Secret named, and downstream-1 reaching
    // the relocation registry through a mirror (its Cluster's spec.registryMirrors, read by its agent).
    await fleet.upstream.apply(
      {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'relocation-auth', namespace: WS },
        stringData: { username: dst().username ?? '', password: dst().password ?? '' },
      },
      'airgap-e2e',
    );
    const mirrorHost = '127.0.0.1:5999';
    const c1 = await fleet.upstream.get<KubeObject>({ apiVersion: API_VERSION, kind: 'Cluster', namespace: WS, name: 'downstream-1' });
    expect(c1, 'Cluster downstream-1').to.not.equal(undefined);
    await fleet.upstream.mergePatch(
      { apiVersion: API_VERSION, kind: 'Cluster', namespace: WS, name: 'downstream-1' },
      { spec: { registryMirrors: [{ registry: dst().host, mirror: `${mirrorHost}/cache` }] } },
    );
    await waitFor(
      async () => {
        const c = await fleet.upstream.get<KubeObject & { status?: { agent?: { registryMirrors?: Array<{ registry: string }> } } }>({
          apiVersion: API_VERSION,
          kind: 'Cluster',
          namespace: WS,
          name: 'downstream-1',
        });
        return c?.status?.agent?.registryMirrors?.some((m) => m.registry === dst().host) || undefined;
      },
      { what: 'the mirror in effect on downstream-1', timeoutMs: 120_000, intervalMs: 1000, context: () => `logs in ${fleet.logDir}` },
    );
    const withSecret = await fleet.upstream.apply(relocatingRepo({ imagePullSecret: 'relocated-pull' }), 'airgap-e2e');
    // The commit must not reach a sync still running with the spec before this apply (started by the
    // credentials above): that sync would build it without the pull Secret, and apply it.
    await waitFor(
      async () => {
        const r = await fleet.upstream.get<KubeObject & { status?: { observedGeneration?: number } }>({
          apiVersion: API_VERSION,
          kind: 'GitRepo',
          namespace: WS,
          name: REPO,
        });
        return (r?.status?.observedGeneration ?? 0) >= (withSecret.metadata.generation ?? 1) || undefined;
      },
      { what: 'the GitRepo with the pull Secret observed', timeoutMs: 120_000, intervalMs: 500, context: () => `logs in ${fleet.logDir}` },
    );
    await git().commit(REPO, { 'app/workloads.yaml': workloads(`${src().host}/airgap-e2e/multi:v2`, `${src().host}/airgap-e2e/single:v1`) }, 'pull secret');
    const message = await bundleDeploymentCondition('downstream-1', 'ImagePullSecretNotFound', 'airgap-e2e/multi:v2');
    expect(message).to.contain(`${REPO}-app`).and.contain(`Secret ${APP_NS}/relocated-pull`).and.contain('airgap-e2e/multi:v2');
    // Nothing of that version was applied: the Deployment runs no copy of multi:v2 and names no pull Secret.
    const before = await downstream['downstream-1']?.get<KubeObject & { spec: { template: { spec: { imagePullSecrets?: unknown[] } } } }>({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      namespace: APP_NS,
      name: 'web',
    });
    expect(before?.spec.template.spec.imagePullSecrets).to.equal(undefined);
    // (The last good version may be the previous head commit, rebuilt once the credentials were fixed.)
    const held = await workloadImages('downstream-1');
    expect(
      held.some((i) => i.includes(`@${built.multi2?.digest}`)),
      JSON.stringify(held),
    ).to.equal(false);
    await downstream['downstream-1']?.apply(
      {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'relocated-pull', namespace: APP_NS },
        type: 'kubernetes.io/dockerconfigjson',
        stringData: { '.dockerconfigjson': JSON.stringify({ auths: { [dst().host]: { username: dst().username, password: dst().password } } }) },
      },
      'airgap-e2e',
    );
    const onMirror = `${mirrorHost}/cache/mirror/airgap-e2e/multi@${built.multi2?.digest}`;
    let last: string[] = [];
    await waitFor(
      async () => {
        last = await workloadImages('downstream-1');
        // The agent applies the bundle's workloads one after the other: wait for the last of them, not the first.
        return (last.includes(onMirror) && last.every((i) => !i.startsWith(`${dst().host}/`) && !i.startsWith(`${src().host}/`))) || undefined;
      },
      {
        what: 'every workload on downstream-1 through the mirror',
        timeoutMs: 180_000,
        intervalMs: 1000,
        context: () => `got ${JSON.stringify(last)}; logs in ${fleet.logDir}`,
      },
    );
    expect(
      last.every((i) => !i.startsWith(`${dst().host}/`) && !i.startsWith(`${src().host}/`)),
      JSON.stringify(last),
    ).to.equal(true);
    const after = await downstream['downstream-1']?.get<KubeObject & { spec: { template: { spec: { imagePullSecrets?: unknown[] } } } }>({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      namespace: APP_NS,
      name: 'web',
    });
    expect(after?.spec.template.spec.imagePullSecrets).to.deep.equal([{ name: 'relocated-pull' }]);
  });
});
