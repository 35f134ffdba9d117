/**
 * The agent on the real stack: one upstream and two downstream kube-apiservers, real registries. The
 * controller's reconcilers run in-process (registration, Cluster, Bundle...), and two Agents (one per
 * downstream cluster) register through the token flow exactly as deployed agents do: bootstrap Secret ->
 * ClusterRegistration -> grant -> credential. BundleDeployments for the OCI and fault tests are written by
 * hand as the admin (playing the Bundle reconciler, to control digests and options precisely); targeting
 * goes through the real Bundle reconciler.
 */
import { expect } from 'chai';
import { writeFile, readFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Writable } from 'node:stream';
import { API_VERSION, Annotation, Finalizer, Label, getCondition, type BundleDeployment, type Cluster } from '../lib/api/index.js';
import { KubeClient, PARTIAL_OBJECT_METADATA, type KubeObject } from '../lib/kube/client.js';
import { createLogger } from '../lib/log.js';
import { RegistryClient, pushBundle } from '../lib/oci/index.js';
import { Agent } from '../agent/agent.js';
import { decodeSecretData } from '../lib/kube/secret.js';
import { stack } from './fixture.js';
import { tokenClient, statusOf } from './support/kube.js';
import { waitFor } from '../stack/net.js';
import { startTestController, type TestController } from './support/controller.js';

const W = 'flotilla-e2e-agent';
const R = 'flotilla-e2e-agent-credentials';
const AGENT_NS = 'flotilla-system';
const APP = 'e2e-agent-app';
const TIMEOUT = 60_000;

type BD = BundleDeployment & KubeObject;
const cmRef = (name: string, namespace = APP) => ({ apiVersion: 'v1', kind: 'ConfigMap', namespace, name });
const cmYaml = (name: string, data: Record<string, string>) =>
  `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${name}\ndata:\n${Object.entries(data)
    .map(([k, v]) => `  ${k}: "${v}"`)
    .join('\n')}\n`;

interface Downstream {
  name: string;
  kube: KubeClient;
  agent: Agent;
  logs: string[];
  cacheDir: string;
}

describe('agent (e2e)', function () {
  this.timeout(180_000);
  let controller: TestController;
  let up: KubeClient;
  const downs: Downstream[] = [];
  const d = (i: number) => downs[i] as Downstream;
  const nsOf = (i: number) => d(i).agent.credential()?.clusterNamespace ?? '';
  const logTail = (i: number) => () => `agent ${d(i).name} log tail:\n${d(i).logs.slice(-15).join('')}`;

  const getBD = (i: number, name: string) => up.get<BD>({ apiVersion: API_VERSION, kind: 'BundleDeployment', namespace: nsOf(i), name });
  const waitBD = (i: number, name: string, what: string, test: (bd: BD) => boolean) =>
    waitFor(
      async () => {
        const bd = await getBD(i, name);
        return bd && test(bd) ? bd : undefined;
      },
      { what, timeoutMs: TIMEOUT, context: logTail(i) },
    );
  const cond = (bd: BD, type: string) => getCondition(bd.status?.conditions, type);

  async function bootstrap(i: number, downName: string, labels: Record<string, string>): Promise<void> {
    const kube = await KubeClient.fromKubeConfig(stack().cluster(downName).kubeConfig());
    await kube.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: AGENT_NS } }, 'e2e');
    const token = await up.get({ apiVersion: 'v1', kind: 'Secret', namespace: W, name: 'agents' });
    const extra = { clusterLabels: JSON.stringify(labels), registrationNamespace: R };
    await kube.apply(
      {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'flotilla-agent-bootstrap', namespace: AGENT_NS },
        data: {
          ...(token?.data as Record<string, string>),
          ...Object.fromEntries(Object.entries(extra).map(([k, v]) => [k, Buffer.from(v).toString('base64')])),
        },
      },
      'e2e',
    );
    const logs: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _e, done) {
        logs.push(chunk.toString());
        if (logs.length > 500) logs.shift();
        done();
      },
    });
    const cacheDir = await mkdtemp(join(tmpdir(), 'flotilla-agent-cache-'));
    const agent = new Agent({
      downstream: stack().cluster(downName).kubeConfig(),
      cacheDir,
      heartbeatIntervalMs: 1000,
      resyncIntervalMs: 2000,
      notReadyResyncMs: 1000,
      registrationPollMs: 300,
      log: createLogger({ name: `agent-${i}`, level: 'info', destination: sink }),
    });
    downs[i] = { name: downName, kube, agent, logs, cacheDir };
  }

  before(async function () {
    this.timeout(240_000);
    const upstream = stack().cluster('upstream');
    const caFile = join(dirname(upstream.kubeconfigPath), 'ca.crt');
    controller = await startTestController(upstream, {
      workspaceNamespace: W,
      registrationNamespace: R,
      apiServerUrl: upstream.server,
      apiServerCaFile: caFile,
    });
    up = controller.kube;
    for (const ns of [W, R]) await up.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } }, 'e2e');
    await up.create({ apiVersion: API_VERSION, kind: 'ClusterRegistrationToken', metadata: { name: 'agents', namespace: W }, spec: { ttl: '2h' } });
    await waitFor(async () => (await up.get({ apiVersion: 'v1', kind: 'Secret', namespace: W, name: 'agents' })) !== undefined, {
      what: 'the registration token Secret',
      timeoutMs: TIMEOUT,
    });
    await bootstrap(0, 'downstream-1', { env: 'one', 'flotilla.dev/cluster-name': 'e2e-d1' });
    await bootstrap(1, 'downstream-2', { env: 'two', 'flotilla.dev/cluster-name': 'e2e-d2' });
    await Promise.all(downs.map((x) => x.agent.start()));
  });

  after(async function () {
    this.timeout(60_000);
    for (const x of downs) {
      await x.agent.stop();
      await x.kube.close();
      await rm(x.cacheDir, { recursive: true, force: true });
    }
    await controller?.stop();
  });

  it('registers each cluster through the token flow and heartbeats on its Cluster', async () => {
    for (const [i, name] of [
      [0, 'e2e-d1'],
      [1, 'e2e-d2'],
    ] as const) {
      const kubeSystem = await d(i).kube.get({ apiVersion: 'v1', kind: 'Namespace', name: 'kube-system' });
      const cluster = await up.get<Cluster & KubeObject>({ apiVersion: API_VERSION, kind: 'Cluster', namespace: W, name });
      expect(cluster?.spec?.clientID, `Cluster ${name} belongs to ${d(i).name}`).to.equal(kubeSystem?.metadata.uid);
      expect(cluster?.status?.namespace).to.equal(nsOf(i));
      const state = decodeSecretData((await d(i).kube.get({ apiVersion: 'v1', kind: 'Secret', namespace: AGENT_NS, name: 'flotilla-agent' }))?.data);
      expect(state).to.include({ clusterName: name, clusterNamespace: nsOf(i) });
      expect(state.token, 'credential kept in the state Secret').to.be.a('string').and.not.equal('');
      const first = cluster?.status?.agent?.lastSeen ?? '';
      await waitFor(
        async () => {
          const c = await up.get<Cluster & KubeObject>({ apiVersion: API_VERSION, kind: 'Cluster', namespace: W, name });
          return (c?.status?.agent?.lastSeen ?? '') > first && c?.status?.agent?.namespace === AGENT_NS;
        },
        { what: `a newer heartbeat on Cluster ${name}`, timeoutMs: 15_000 },
      );
      const reported = await up.get<Cluster & KubeObject>({ apiVersion: API_VERSION, kind: 'Cluster', namespace: W, name });
      expect(reported?.status?.agent?.heartbeatSeconds, 'the agent announces its interval (1 s here), which the controller judges it by').to.equal(1);
    }
  });

  it('gives an agent a credential that reaches its own cluster namespace and is refused (403) elsewhere', async () => {
    const client = await tokenClient(d(0).agent.credential()?.token ?? '');
    try {
      const bd = (ns: string) => ({ apiVersion: API_VERSION, kind: 'BundleDeployment', namespace: ns });
      expect(await statusOf(() => client.list(bd(nsOf(0))))).to.equal(0);
      expect(await statusOf(() => client.list(bd(nsOf(1)))), 'list BundleDeployments of the other cluster').to.equal(403);
      expect(await statusOf(() => client.get({ ...bd(nsOf(1)), name: 'anything' })), 'get a BundleDeployment of the other cluster').to.equal(403);
      expect(await statusOf(() => client.list({ apiVersion: 'v1', kind: 'Secret', namespace: nsOf(1) })), 'list Secrets of the other cluster').to.equal(403);
      expect(await statusOf(() => client.get({ apiVersion: API_VERSION, kind: 'Cluster', namespace: W, name: 'e2e-d2' })), 'read the other Cluster').to.equal(
        403,
      );
      expect(await statusOf(() => client.list({ apiVersion: 'v1', kind: 'Secret', namespace: R })), 'list registration credentials').to.equal(403);
    } finally {
      await client.close();
    }
  });

  it('deploys a bundle to exactly the clusters its targets select, and removes it from a cluster that stops matching', async () => {
    const files = [{ name: 'cm.yaml', content: cmYaml('targeted', { hello: 'world' }) }];
    const bundle = (values: string[]) => ({
      apiVersion: API_VERSION,
      kind: 'Bundle',
      metadata: { name: 'targeted', namespace: W },
      spec: {
        resources: files,
        contentsID: 'sha256:e2e-targeted',
        defaultNamespace: 'e2e-targeted',
        // GitRepo targets reach Bundles as targetRestrictions: they choose the clusters (Bundle targets only customize).
        targetRestrictions: [{ clusterSelector: { matchExpressions: [{ key: 'env', operator: 'In' as const, values }] } }],
      },
    });
    await up.apply(bundle(['one']), 'e2e');
    const present = (i: number) => d(i).kube.get(cmRef('targeted', 'e2e-targeted'));
    const controllerTail = () =>
      `controller log tail:\n${controller
        .rawLogs()
        .split('\n')
        .filter((l) => !l.includes('"level":30'))
        .slice(-10)
        .join('\n')}`;
    await waitFor(present.bind(null, 0), {
      what: 'the targeted ConfigMap on downstream-1',
      timeoutMs: TIMEOUT,
      context: () => `${logTail(0)()}\n${controllerTail()}`,
    });
    const ready = await waitBD(0, 'targeted', 'BundleDeployment targeted Ready on downstream-1', (bd) => bd.status?.ready === true);
    expect(ready.metadata.finalizers, 'the agent holds the BundleDeployment until it pruned').to.include(Finalizer.BundleDeployment);
    // Spec and status are atomic in the CRD: the real API server records each as one field, whoever writes it.
    const writers = (ready.metadata as { managedFields?: { manager: string; subresource?: string; fieldsV1?: Record<string, unknown> }[] }).managedFields ?? [];
    expect(writers.find((w) => w.subresource === 'status')?.fieldsV1, 'the status writer owns status as one field').to.deep.equal({ 'f:status': {} });
    expect(writers.find((w) => w.manager === 'flotilla-controller')?.fieldsV1?.['f:spec'], 'the controller owns spec as one field').to.deep.equal({});
    // The cluster's agent registered before the Bundle: the controller writes the agent's finalizer with the
    // BundleDeployment, so the agent's only write is its status (one request and one managedFields entry fewer).
    const controllerMeta = writers.find((w) => w.manager === 'flotilla-controller')?.fieldsV1?.['f:metadata'] as Record<string, unknown> | undefined;
    expect(controllerMeta?.['f:finalizers'], 'the controller writes the finalizer').to.deep.equal({ [`v:"${Finalizer.BundleDeployment}"`]: {} });
    expect(
      writers.filter((w) => w.manager !== 'flotilla-controller' && !w.subresource).map((w) => w.manager),
      'no other writer of the BundleDeployment itself',
    ).to.deep.equal([]);
    expect(await getBD(1, 'targeted'), 'no BundleDeployment for the cluster the targets do not select').to.equal(undefined);
    expect(await present(1), 'nothing on downstream-2').to.equal(undefined);
    await up.apply(bundle(['one', 'two']), 'e2e');
    await waitFor(present.bind(null, 1), { what: 'the targeted ConfigMap on downstream-2 once it matches', timeoutMs: TIMEOUT, context: logTail(1) });
    await up.apply(bundle(['one']), 'e2e');
    await waitFor(async () => (await present(1)) === undefined, {
      what: 'the ConfigMap removed from downstream-2, which stopped matching',
      timeoutMs: TIMEOUT,
      context: logTail(1),
    });
    await waitFor(async () => (await getBD(1, 'targeted')) === undefined, {
      what: 'the agent to release the finalizer after pruning',
      timeoutMs: TIMEOUT,
      context: logTail(1),
    });
    expect(await present(0), 'downstream-1 keeps it').to.not.equal(undefined);
  });

  it('holds back a bundle until the bundles it depends on are ready on the cluster', async () => {
    const write = (name: string, dependsOn?: { name: string }[]) =>
      up.apply(
        {
          apiVersion: API_VERSION,
          kind: 'BundleDeployment',
          metadata: { name, namespace: nsOf(1) },
          spec: {
            deploymentID: `${name}-1`,
            options: { defaultNamespace: APP },
            ...(dependsOn ? { dependsOn } : {}),
            resources: [{ name: 'cm.yaml', content: cmYaml(name, { v: '1' }) }],
          },
        },
        'e2e',
      );
    await write('dep-app', [{ name: 'dep-db' }]);
    const waiting = await waitBD(1, 'dep-app', 'dep-app waiting for dep-db', (b) => cond(b, 'Deployed')?.reason === 'DependencyNotReady');
    expect(cond(waiting, 'Deployed')?.message).to.contain('dep-db');
    expect(await d(1).kube.get(cmRef('dep-app')), 'nothing applied while waiting').to.equal(undefined);
    await write('dep-db');
    await waitBD(1, 'dep-app', 'dep-app deployed once dep-db is ready', (b) => b.status?.ready === true);
    expect(await d(1).kube.get(cmRef('dep-app'))).to.not.equal(undefined);
  });

  it("applies as the BundleDeployment's serviceAccount, which may do only what its RBAC allows, and waits for a missing one", async () => {
    const ns = 'e2e-sa-apps';
    const k = d(1).kube;
    const rbac = 'rbac.authorization.k8s.io/v1';
    await k.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } }, 'e2e');
    await k.apply({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'deployer', namespace: AGENT_NS } }, 'e2e');
    await k.apply(
      {
        apiVersion: rbac,
        kind: 'ClusterRole',
        metadata: { name: 'e2e-deployer-namespaces' },
        rules: [{ apiGroups: [''], resources: ['namespaces'], verbs: ['get', 'list', 'watch', 'create', 'patch'] }],
      },
      'e2e',
    );
    await k.apply(
      {
        apiVersion: rbac,
        kind: 'ClusterRoleBinding',
        metadata: { name: 'e2e-deployer-namespaces' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'e2e-deployer-namespaces' },
        subjects: [{ kind: 'ServiceAccount', name: 'deployer', namespace: AGENT_NS }],
      },
      'e2e',
    );
    await k.apply(
      {
        apiVersion: rbac,
        kind: 'Role',
        metadata: { name: 'configmaps', namespace: ns },
        rules: [{ apiGroups: [''], resources: ['configmaps'], verbs: ['*'] }],
      },
      'e2e',
    );
    await k.apply(
      {
        apiVersion: rbac,
        kind: 'RoleBinding',
        metadata: { name: 'deployer-configmaps', namespace: ns },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'configmaps' },
        subjects: [{ kind: 'ServiceAccount', name: 'deployer', namespace: AGENT_NS }],
      },
      'e2e',
    );
    const write = (name: string, serviceAccount: string, files: { name: string; content: string }[]) =>
      up.apply(
        {
          apiVersion: API_VERSION,
          kind: 'BundleDeployment',
          metadata: { name, namespace: nsOf(1) },
          spec: { deploymentID: `${name}-1`, options: { defaultNamespace: ns, serviceAccount }, resources: files },
        },
        'e2e',
      );
    const secretYaml = `apiVersion: v1\nkind: Secret\nmetadata:\n  name: sa-denied\nstringData:\n  k: v\n`;
    try {
      await write('sa-allowed', 'deployer', [{ name: 'cm.yaml', content: cmYaml('sa-allowed', { v: '1' }) }]);
      await waitBD(1, 'sa-allowed', 'sa-allowed Ready as the deployer account', (b) => b.status?.ready === true);
      expect(await k.get(cmRef('sa-allowed', ns))).to.not.equal(undefined);
      // A Secret is outside the account's RBAC (the agent itself could write it): refused, nothing of the bundle applied.
      await write('sa-denied', 'deployer', [
        { name: 'cm.yaml', content: cmYaml('sa-denied', { v: '1' }) },
        { name: 'secret.yaml', content: secretYaml },
      ]);
      const denied = await waitBD(
        1,
        'sa-denied',
        'sa-denied refused',
        (b) => cond(b, 'Deployed')?.status === 'False' && /forbidden/i.test(cond(b, 'Deployed')?.message ?? ''),
      );
      expect(cond(denied, 'Deployed')?.message).to.contain(`system:serviceaccount:${AGENT_NS}:deployer`);
      expect(await k.get({ apiVersion: 'v1', kind: 'Secret', namespace: ns, name: 'sa-denied' }), 'the Secret').to.equal(undefined);
      expect(await k.get(cmRef('sa-denied', ns)), 'nothing of the refused bundle').to.equal(undefined);
      await write('sa-missing', 'nobody', [{ name: 'cm.yaml', content: cmYaml('sa-missing', { v: '1' }) }]);
      const missing = await waitBD(1, 'sa-missing', 'sa-missing waiting for its account', (b) => cond(b, 'Deployed')?.reason === 'ServiceAccountNotFound');
      expect(cond(missing, 'Deployed')?.message).to.contain(`${AGENT_NS}/nobody`);
      expect(await k.get(cmRef('sa-missing', ns))).to.equal(undefined);
    } finally {
      for (const name of ['sa-allowed', 'sa-denied', 'sa-missing'])
        await up.delete({ apiVersion: API_VERSION, kind: 'BundleDeployment', namespace: nsOf(1), name });
    }
  });

  describe('an OCI bundle over its life', () => {
    const reg = () => stack().registry('tls-auth');
    const repo = () => `${reg().host}/e2e-agent/web`;
    let client: RegistryClient;
    let applied: { digest: string; reference: string } = { digest: '', reference: '' };

    const push = async (files: Record<string, string>) => {
      const r = await pushBundle(
        client,
        repo(),
        Object.entries(files).map(([path, text]) => ({ path, content: Buffer.from(text) })),
        { bundleName: 'web', bundleNamespace: W },
      );
      return { digest: r.digest, reference: r.reference };
    };
    const writeBD = async (artifact: { digest: string; reference: string }, id: string, options: Record<string, unknown> = {}) => {
      await up.apply(
        {
          apiVersion: API_VERSION,
          kind: 'BundleDeployment',
          metadata: { name: 'web', namespace: nsOf(0) },
          spec: {
            deploymentID: id,
            options: { defaultNamespace: APP, ...options },
            oci: { ...artifact, secretName: 'registry-read', caBundle: Buffer.from(reg().caPem ?? '').toString('base64') },
          },
        },
        'e2e',
      );
    };
    const data = async (name: string) => (await d(0).kube.get(cmRef(name)))?.data as Record<string, string> | undefined;

    before(async () => {
      client = new RegistryClient({
        registry: reg().host,
        caPem: reg().caPem ?? '',
        credentials: { username: reg().username ?? '', password: reg().password ?? '' },
      });
      await up.apply(
        {
          apiVersion: 'v1',
          kind: 'Secret',
          metadata: { name: 'registry-read', namespace: nsOf(0) },
          stringData: { username: reg().username ?? '', password: reg().password ?? '' },
        },
        'e2e',
      );
    });
    after(async () => {
      await reg().start();
      await client.close();
    });

    it('pulls by digest with the credentials of its cluster namespace and applies, labelled and annotated', async () => {
      applied = await push({ 'a.yaml': cmYaml('a', { v: '1' }), 'b.yaml': cmYaml('b', { v: '1' }), 'c.yaml': cmYaml('c', { v: '1' }) });
      await writeBD(applied, 'v1');
      const bd = await waitBD(0, 'web', 'web v1 Ready', (b) => b.status?.appliedDeploymentID === 'v1' && b.status.ready === true);
      expect(cond(bd, 'Deployed')?.status).to.equal('True');
      expect(cond(bd, 'Monitored')?.status).to.equal('True');
      expect(bd.status?.resources?.map((r) => r.name)).to.deep.equal(['a', 'b', 'c']);
      const a = await d(0).kube.get(cmRef('a'));
      expect(a?.metadata.labels?.[Label.BundleID]).to.equal('web');
      expect(a?.metadata.annotations?.[Annotation.DeploymentID]).to.equal('v1');
      const inventory = await d(0).kube.get({ apiVersion: 'v1', kind: 'ConfigMap', namespace: AGENT_NS, name: 'flotilla-inv-web' });
      expect(JSON.parse((inventory?.data as { objects: string } | undefined)?.objects ?? 'null')).to.have.length(3);
    });

    it('changes only what changed on an update, and prunes the file that left the bundle', async () => {
      const before = await d(0).kube.get(cmRef('b'));
      applied = await push({ 'a.yaml': cmYaml('a', { v: '2' }), 'b.yaml': cmYaml('b', { v: '1' }) });
      await writeBD(applied, 'v2');
      await waitBD(0, 'web', 'web v2 applied', (b) => b.status?.appliedDeploymentID === 'v2');
      expect(await data('a')).to.deep.equal({ v: '2' });
      const after = await d(0).kube.get(cmRef('b'));
      expect(after?.metadata.resourceVersion, 'the unchanged ConfigMap was not written').to.equal(before?.metadata.resourceVersion);
      await waitFor(async () => (await d(0).kube.get(cmRef('c'))) === undefined, { what: 'c pruned', timeoutMs: TIMEOUT, context: logTail(0) });
      // The record before applying listed a, b and c already (no write then); the one after lists what v2 applied.
      const inventory = (await d(0).kube.get({ apiVersion: 'v1', kind: 'ConfigMap', namespace: AGENT_NS, name: 'flotilla-inv-web' }))?.data as
        | Record<string, string>
        | undefined;
      expect(inventory?.deploymentID).to.equal('v2');
      expect((JSON.parse(inventory?.objects ?? '[]') as { name: string }[]).map((o) => o.name)).to.deep.equal(['a', 'b']);
    });

    it('prunes from its blob cache what no BundleDeployment pins any more, keeping what the current version uses', async () => {
      const blobsOf = async (digest: string) => {
        const m = JSON.parse((await client.getManifest('e2e-agent/web', digest)).bytes.toString('utf8')) as {
          config: { digest: string };
          layers: { digest: string }[];
        };
        return new Set([m.config.digest, ...m.layers.map((l) => l.digest)]);
      };
      const v1 = await push({ 'a.yaml': cmYaml('a', { v: '1' }), 'b.yaml': cmYaml('b', { v: '1' }), 'c.yaml': cmYaml('c', { v: '1' }) });
      const [old, current] = [await blobsOf(v1.digest), await blobsOf(applied.digest)];
      const cached = (digest: string) =>
        readFile(join(d(0).cacheDir, 'blobs', ...digest.split(':'))).then(
          () => true,
          () => false,
        );
      const oldOnly = [...old].filter((x) => !current.has(x));
      expect(oldOnly.length, 'blobs only version 1 has (a and c at v1, its config)').to.be.greaterThan(1);
      for (const x of [...old, ...current]) expect(await cached(x), `${x} cached before pruning`).to.equal(true);
      expect(await d(0).agent.pruneCache(), 'pruning ran').to.equal(true);
      for (const x of oldOnly) expect(await cached(x), `${x} (version 1 only) pruned`).to.equal(false);
      for (const x of current) expect(await cached(x), `${x} (current version) kept`).to.equal(true);
    });

    it('reports a manual edit and a deletion downstream as drift, and reverts both with correctDrift', async () => {
      // A resync reads a verified ConfigMap's metadata alone (agent/deploy.ts): the API server answers so.
      const meta = await d(0).kube.getMetadata(cmRef('a'));
      expect(meta?.kind, 'metadata alone').to.equal('PartialObjectMetadata');
      expect(meta).to.not.have.property('data');
      const whole = await d(0).kube.get<KubeObject & { data?: Record<string, string> }>(cmRef('a'));
      expect(meta?.metadata.resourceVersion).to.equal(whole?.metadata.resourceVersion);
      // ... and so does a server-side apply (here a dry run) of a ConfigMap, as the agent writes one.
      const path = `${await d(0).kube.pathFor(cmRef('a'))}?fieldManager=e2e-probe&dryRun=All`;
      const body = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'a', namespace: APP }, data: whole?.data };
      const dry = await d(0).kube.raw<KubeObject>('PATCH', path, body, 'application/apply-patch+yaml', PARTIAL_OBJECT_METADATA);
      expect(dry.kind).to.equal('PartialObjectMetadata');
      expect(dry).to.not.have.property('data');
      await d(0).kube.mergePatch(cmRef('a'), { data: { v: 'edited' } });
      await d(0).kube.delete(cmRef('b'));
      const bd = await waitBD(0, 'web', 'drift reported', (b) => (b.status?.modifiedStatus?.length ?? 0) === 2);
      expect(bd.status?.nonModified).to.equal(false);
      expect(cond(bd, 'Ready')?.reason).to.equal('Drifted');
      const byName = Object.fromEntries((bd.status?.modifiedStatus ?? []).map((m) => [m.name, m]));
      expect(byName.a?.patch).to.contain('edited');
      expect(byName.b?.missing).to.equal(true);
      expect(await data('a'), 'without correctDrift the edit stays').to.deep.equal({ v: 'edited' });
      await writeBD(applied, 'v2', { correctDrift: { enabled: true } });
      await waitBD(0, 'web', 'drift corrected', (b) => b.status?.nonModified === true && b.status.ready === true);
      expect(await data('a')).to.deep.equal({ v: '2' });
      expect(await data('b')).to.deep.equal({ v: '1' });
      await d(0).kube.mergePatch(cmRef('a'), { data: { v: 'again' } });
      await waitFor(async () => (await data('a'))?.v === '2', { what: 'a later edit reverted at the next resync', timeoutMs: TIMEOUT, context: logTail(0) });
    });

    it('leaves the cluster untouched while the registry is down, says so, and catches up when it returns', async () => {
      const next = await push({ 'a.yaml': cmYaml('a', { v: '3' }), 'b.yaml': cmYaml('b', { v: '1' }) });
      const before = await d(0).kube.get(cmRef('a'));
      await reg().stop();
      await writeBD(next, 'v3');
      const bd = await waitBD(0, 'web', 'the registry failure on status', (b) => cond(b, 'Deployed')?.status === 'False');
      expect(cond(bd, 'Deployed')?.reason).to.be.oneOf(['RegistryUnreachable', 'ArtifactPullFailed']);
      expect(cond(bd, 'Deployed')?.message).to.contain(reg().host);
      expect(bd.status?.appliedDeploymentID).to.equal('v2');
      expect((await d(0).kube.get(cmRef('a')))?.metadata.resourceVersion, 'nothing written downstream').to.equal(before?.metadata.resourceVersion);
      await reg().start();
      await waitBD(0, 'web', 'web v3 applied after the registry returned', (b) => b.status?.appliedDeploymentID === 'v3' && b.status.ready === true);
      expect(await data('a')).to.deep.equal({ v: '3' });
      applied = next;
    });

    it('applies nothing of an artifact whose blob was tampered with, and says which', async () => {
      const text = cmYaml('a', { v: '4' });
      const next = await push({ 'a.yaml': text, 'b.yaml': cmYaml('b', { v: '1' }), 'd.yaml': cmYaml('d', { v: '4' }) });
      const manifest = JSON.parse((await client.getManifest('e2e-agent/web', next.digest)).bytes.toString()) as {
        layers: { digest: string; annotations: Record<string, string> }[];
      };
      const layer = manifest.layers.find((l) => l.annotations['org.opencontainers.image.title'] === 'a.yaml');
      const file = reg().blobPath(layer?.digest ?? '');
      await writeFile(file, (await readFile(file, 'utf8')).replace('"4"', '"X"'));
      await writeBD(next, 'v4');
      const bd = await waitBD(0, 'web', 'the tampering on status', (b) => cond(b, 'Deployed')?.reason === 'ArtifactTampered');
      expect(cond(bd, 'Deployed')?.message).to.match(/digest mismatch/);
      expect(bd.status?.appliedDeploymentID).to.equal('v3');
      expect(await data('a')).to.deep.equal({ v: '3' });
      expect(await d(0).kube.get(cmRef('d')), 'no object of the tampered bundle').to.equal(undefined);
    });

    it('applies nothing of a bundle with a malformed file or an object the API server rejects', async () => {
      const cases: { files: Record<string, string>; reason: string; id: string }[] = [
        {
          files: { 'a.yaml': cmYaml('a', { v: '5' }), 'e.yaml': cmYaml('e', { v: '5' }), 'broken.yaml': 'kind: [unclosed\n' },
          reason: 'InvalidBundle',
          id: 'v5',
        },
        {
          files: {
            'a.yaml': cmYaml('a', { v: '6' }),
            'e.yaml': cmYaml('e', { v: '6' }),
            'svc.yaml': 'apiVersion: v1\nkind: Service\nmetadata:\n  name: bad\nspec:\n  ports:\n  - port: 70000\n',
          },
          reason: 'ApplyFailed',
          id: 'v6',
        },
      ];
      for (const c of cases) {
        await writeBD(await push(c.files), c.id);
        const bd = await waitBD(0, 'web', `${c.id} refused with ${c.reason}`, (b) => cond(b, 'Deployed')?.reason === c.reason);
        expect(bd.status?.appliedDeploymentID).to.equal('v3');
        expect(await data('a')).to.deep.equal({ v: '3' });
        expect(await d(0).kube.get(cmRef('e')), `no object of ${c.id}`).to.equal(undefined);
      }
    });

    it('re-creates a Job whose pod template changed only with helm.force; without it the change is refused as immutable and nothing changes', async () => {
      type Job = KubeObject & { spec: { template: { spec: { containers: { image: string }[] } } } };
      const jobRef = { apiVersion: 'batch/v1', kind: 'Job', namespace: APP, name: 'once' };
      const jobYaml = (image: string) =>
        `apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: once\nspec:\n  template:\n    spec:\n      restartPolicy: Never\n      containers:\n        - name: main\n          image: ${image}\n`;
      const writeJobs = async (artifact: { digest: string; reference: string }, id: string, options: Record<string, unknown> = {}) =>
        up.apply(
          {
            apiVersion: API_VERSION,
            kind: 'BundleDeployment',
            metadata: { name: 'jobs', namespace: nsOf(0) },
            spec: {
              deploymentID: id,
              options: { defaultNamespace: APP, ...options },
              oci: { ...artifact, secretName: 'registry-read', caBundle: Buffer.from(reg().caPem ?? '').toString('base64') },
            },
          },
          'e2e',
        );
      const pushJob = async (image: string) => {
        const r = await pushBundle(client, `${reg().host}/e2e-agent/jobs`, [{ path: 'job.yaml', content: Buffer.from(jobYaml(image)) }], {
          bundleName: 'jobs',
          bundleNamespace: W,
        });
        return { digest: r.digest, reference: r.reference };
      };
      const imageOf = (j: Job | undefined) => j?.spec.template.spec.containers[0]?.image;
      await writeJobs(await pushJob('example.invalid/job:1'), 'j1');
      await waitBD(0, 'jobs', 'jobs j1 applied', (b) => b.status?.appliedDeploymentID === 'j1');
      const first = await d(0).kube.get<Job>(jobRef);
      expect(imageOf(first)).to.equal('example.invalid/job:1');

      const v2 = await pushJob('example.invalid/job:2');
      await writeJobs(v2, 'j2');
      const refused = await waitBD(
        0,
        'jobs',
        'j2 refused',
        (b) => cond(b, 'Deployed')?.status === 'False' && /immutable/.test(cond(b, 'Deployed')?.message ?? ''),
      );
      expect(cond(refused, 'Deployed')?.message).to.include('Job e2e-agent-app/once').and.include('spec.template is immutable').and.include('helm.force');
      const still = await d(0).kube.get<Job>(jobRef);
      expect(still?.metadata.uid, 'the Job was not deleted without force').to.equal(first?.metadata.uid);
      expect(imageOf(still)).to.equal('example.invalid/job:1');

      await writeJobs(v2, 'j3', { helm: { force: true } });
      await waitBD(0, 'jobs', 'jobs j3 applied with force', (b) => b.status?.appliedDeploymentID === 'j3');
      const recreated = await d(0).kube.get<Job>(jobRef);
      expect(recreated?.metadata.uid, 're-created: a new object').not.to.equal(first?.metadata.uid);
      expect(imageOf(recreated)).to.equal('example.invalid/job:2');
      await up.delete({ apiVersion: API_VERSION, kind: 'BundleDeployment', namespace: nsOf(0), name: 'jobs' });
      await waitFor(async () => (await d(0).kube.get(jobRef)) === undefined, { what: 'the Job pruned', timeoutMs: TIMEOUT, context: logTail(0) });
    });

    it('deletes what a removed BundleDeployment applied, and keeps it with keepResources', async () => {
      await writeBD(applied, 'v3-keep', { keepResources: true });
      await waitBD(0, 'web', 'keepResources recorded', (b) => b.status?.appliedDeploymentID === 'v3-keep');
      await up.delete({ apiVersion: API_VERSION, kind: 'BundleDeployment', namespace: nsOf(0), name: 'web' });
      await waitFor(async () => (await d(0).kube.get({ apiVersion: 'v1', kind: 'ConfigMap', namespace: AGENT_NS, name: 'flotilla-inv-web' })) === undefined, {
        what: 'the inventory of web removed',
        timeoutMs: TIMEOUT,
        context: logTail(0),
      });
      await waitFor(async () => (await getBD(0, 'web')) === undefined, { what: 'the agent to release its finalizer', timeoutMs: TIMEOUT, context: logTail(0) });
      expect(await data('a'), 'kept').to.deep.equal({ v: '3' });
      await writeBD(applied, 'v3');
      await waitBD(0, 'web', 'web re-created', (b) => b.status?.appliedDeploymentID === 'v3');
      await up.delete({ apiVersion: API_VERSION, kind: 'BundleDeployment', namespace: nsOf(0), name: 'web' });
      await waitFor(async () => (await d(0).kube.get(cmRef('a'))) === undefined && (await d(0).kube.get(cmRef('b'))) === undefined, {
        what: "web's objects deleted",
        timeoutMs: TIMEOUT,
        context: logTail(0),
      });
    });
  });

  describe('outages and credentials', () => {
    it('keeps running while the upstream API server is down and resumes its watch when it returns', async () => {
      const upstream = stack().cluster('upstream');
      await upstream.stopApiServer();
      await new Promise((r) => setTimeout(r, 4000));
      await upstream.startApiServer();
      await up.apply(
        {
          apiVersion: API_VERSION,
          kind: 'BundleDeployment',
          metadata: { name: 'after-outage', namespace: nsOf(1) },
          spec: { deploymentID: 'o1', options: { defaultNamespace: APP }, resources: [{ name: 'x.yaml', content: cmYaml('after-outage', { ok: 'yes' }) }] },
        },
        'e2e',
      );
      await waitFor(async () => d(1).kube.get(cmRef('after-outage')), {
        what: 'a BundleDeployment created after the outage applied',
        timeoutMs: 90_000,
        context: logTail(1),
      });
    });

    it('renews its credential with the TokenRequest API', async () => {
      const before = d(1).agent.credential()?.token;
      await d(1).agent.registration.renew();
      const after = d(1).agent.credential()?.token;
      expect(after).to.be.a('string').and.not.equal(before);
      const state = decodeSecretData((await d(1).kube.get({ apiVersion: 'v1', kind: 'Secret', namespace: AGENT_NS, name: 'flotilla-agent' }))?.data);
      expect(state.token, 'renewed token stored').to.equal(after);
      const client = await tokenClient(after ?? '');
      try {
        expect(await statusOf(() => client.list({ apiVersion: API_VERSION, kind: 'BundleDeployment', namespace: nsOf(1) }))).to.equal(0);
      } finally {
        await client.close();
      }
    });

    it('registers again, into the same Cluster, when its stored credential is deleted or refused', async () => {
      const stateRef = { apiVersion: 'v1', kind: 'Secret', namespace: AGENT_NS, name: 'flotilla-agent' };
      const tokenOf = async () => decodeSecretData((await d(1).kube.get(stateRef))?.data).token;
      const first = await tokenOf();
      await d(1).kube.delete(stateRef);
      const second = await waitFor(
        async () => {
          const t = await tokenOf();
          return t && t !== first ? t : undefined;
        },
        { what: 'a new credential after the state Secret was deleted', timeoutMs: TIMEOUT, context: logTail(1) },
      );
      expect(d(1).agent.credential()?.clusterName).to.equal('e2e-d2');
      // Deleting the ServiceAccount invalidates its tokens: upstream answers 401 and the agent registers again.
      await up.delete({ apiVersion: 'v1', kind: 'ServiceAccount', namespace: nsOf(1), name: 'flotilla-agent' });
      await waitFor(
        async () => {
          const t = await tokenOf();
          return t && t !== second ? t : undefined;
        },
        { what: 'a new credential after upstream refused the old one', timeoutMs: TIMEOUT, context: logTail(1) },
      );
      await waitFor(
        async () => {
          const c = await up.get<Cluster & KubeObject>({ apiVersion: API_VERSION, kind: 'Cluster', namespace: W, name: 'e2e-d2' });
          return Date.parse(c?.status?.agent?.lastSeen ?? '') > Date.now() - 5000;
        },
        { what: 'heartbeats with the new credential', timeoutMs: 30_000, context: logTail(1) },
      );
    });

    it('prunes what its Cluster deployed when the Cluster is deleted upstream, then says once, with what to do, instead of a failed heartbeat each interval', async () => {
      const gone = /the Cluster flotilla-e2e-agent\/e2e-d2 is gone upstream or this agent may no longer write it \((403|404)\).*uninstall the agent/;
      const count = () =>
        d(1)
          .logs.join('')
          .split('\n')
          .filter((l) => gone.test(l)).length;
      const failedBefore = d(1)
        .logs.join('')
        .split('\n')
        .filter((l) => l.includes('heartbeat failed')).length;
      // A bundle the agent applied: a deleted Cluster's BundleDeployments go first, and its live agent prunes.
      await up.apply(
        {
          apiVersion: API_VERSION,
          kind: 'BundleDeployment',
          metadata: { name: 'leaves-with-cluster', namespace: nsOf(1) },
          spec: {
            deploymentID: 'leaves-1',
            options: { defaultNamespace: APP },
            resources: [{ name: 'cm.yaml', content: cmYaml('leaves-with-cluster', { v: '1' }) }],
          },
        },
        'e2e',
      );
      await waitBD(1, 'leaves-with-cluster', 'leaves-with-cluster Ready on downstream-2', (b) => b.status?.ready === true);
      await up.delete({ apiVersion: API_VERSION, kind: 'Cluster', namespace: W, name: 'e2e-d2' });
      await waitFor(async () => (await d(1).kube.get(cmRef('leaves-with-cluster'))) === undefined, {
        what: "the agent to prune what its deleted Cluster's BundleDeployment applied",
        timeoutMs: TIMEOUT,
        context: logTail(1),
      });
      await waitFor(async () => count() === 1, { what: 'the agent to say its Cluster is gone', timeoutMs: TIMEOUT, context: logTail(1) });
      // Heartbeats every second: five more intervals of refusals add nothing at warn or error level.
      await new Promise((r) => setTimeout(r, 5000));
      // Said once per loss: again only after heartbeats were accepted in between (the agent re-registered).
      const accepted = d(1)
        .logs.join('')
        .split('\n')
        .filter((l) => l.includes('the Cluster accepts heartbeats again')).length;
      expect(count(), logTail(1)()).to.be.at.most(accepted + 1);
      const failedAfter = d(1)
        .logs.join('')
        .split('\n')
        .filter((l) => l.includes('heartbeat failed')).length;
      expect(failedAfter, 'no generic "heartbeat failed" for a deleted Cluster').to.equal(failedBefore);
    });
  });
});
