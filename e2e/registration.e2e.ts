/**
 * Agent registration on a real kube-apiserver: the controller's registration, Cluster and ClusterGroup
 * reconcilers run in-process against the stack's upstream cluster; an "agent" is played by plain clients
 * holding exactly the credentials the protocol hands out, so every RBAC boundary is checked by the real
 * authorizer (a 403 is the API server's answer, not ours). Leader election runs on the real Lease API.
 */
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import {
  API_VERSION,
  ConditionType,
  Finalizer,
  Label,
  formatTime,
  getCondition,
  type Cluster,
  type ClusterGroup,
  type ClusterRegistration,
  type ClusterRegistrationToken,
} from '../lib/api/index.js';
import { KubeClient, isStatus, type KubeObject } from '../lib/kube/client.js';
import { EventRecorder } from '../lib/kube/events.js';
import type { Controller } from '../lib/kube/controller.js';
import { createLogger } from '../lib/log.js';
import { createInformers, createMetrics } from '../controller/manager.js';
import { ControllerConfigSchema } from '../controller/config.js';
import { Ref, type ControllerContext } from '../controller/context.js';
import { clusterNamespaceName, setupClusterController, setupClusterGroupController } from '../controller/cluster.js';
import { setupRegistrationController, setupRegistrationTokenController } from '../controller/registration.js';
import { LeaderElector } from '../controller/leader.js';
import { agentRules, secretValue } from '../controller/rbac.js';
import { stack } from './fixture.js';
import { tokenClient, statusOf } from './support/kube.js';
import { waitFor } from '../stack/net.js';
import { installCrds } from '../stack/crds.js';
import { startTestController } from './support/controller.js';
import { formatMicroTime } from '../lib/util/time.js';
import { shardLeaseName } from '../controller/shard.js';

const W = 'flotilla-e2e-reg';
const R = 'flotilla-e2e-reg-credentials';
const SYSTEM = 'flotilla-e2e-reg-system';
const log = createLogger({ name: 'registration-e2e', level: 'warn' });

function buildContext(kube: KubeClient): ControllerContext {
  const up = stack().cluster('upstream');
  return {
    kube,
    informers: createInformers(kube, log),
    log,
    now: () => new Date(),
    config: ControllerConfigSchema.parse({
      workspaceNamespace: W,
      registrationNamespace: R,
      systemNamespace: SYSTEM,
      apiServerUrl: up.server,
      apiServerCaFile: join(dirname(up.kubeconfigPath), 'ca.crt'),
      workers: 2,
    }),
    events: new EventRecorder(kube, 'flotilla-controller', log),
    metrics: createMetrics(),
  };
}

describe('agent registration (controller side)', function () {
  this.timeout(120_000);
  let kube: KubeClient;
  let ctx: ControllerContext;
  let controllers: Controller[] = [];
  const clients: KubeClient[] = [];

  const waitForObject = <T extends KubeObject>(
    ref: { apiVersion: string; kind: string; namespace?: string; name: string },
    what: string,
    test: (obj: T) => boolean = () => true,
  ): Promise<T> =>
    waitFor(
      async () => {
        const obj = await kube.get<T>(ref);
        return obj && test(obj) ? obj : undefined;
      },
      { what, timeoutMs: 30_000 },
    );

  async function createToken(name: string, ttl: string): Promise<KubeClient> {
    await kube.create({ apiVersion: API_VERSION, kind: 'ClusterRegistrationToken', metadata: { name, namespace: W }, spec: { ttl } });
    await waitForObject<ClusterRegistrationToken & KubeObject>(
      Ref.registrationToken(W, name),
      `token ${name} to get its secret`,
      (t) => t.status?.secretName === name,
    );
    const token = secretValue(await kube.get(Ref.secret(W, name)), 'token');
    expect(token, 'import token in the token Secret').to.be.a('string').and.not.equal('');
    const client = await tokenClient(token ?? '');
    clients.push(client);
    return client;
  }

  /** Registers like an agent with import client `importer`; returns the agent's client and its credential. */
  async function register(importer: KubeClient, clientID: string, clusterLabels: Record<string, string>) {
    const clientRandom = randomBytes(8).toString('hex').slice(0, 10);
    const name = `${clientID.slice(0, 40)}-${clientRandom}`;
    await importer.create({
      apiVersion: API_VERSION,
      kind: 'ClusterRegistration',
      metadata: { name, namespace: W },
      spec: { clientID, clientRandom, clusterLabels },
    });
    const reg = await waitFor(
      async () => {
        const r = await importer.get<ClusterRegistration & KubeObject>(Ref.registration(W, name));
        return r?.status?.granted ? r : undefined;
      },
      { what: `registration ${name} to be granted`, timeoutMs: 30_000 },
    );
    const secret = await importer.get(Ref.secret(R, name));
    const credential = {
      token: secretValue(secret, 'token') ?? '',
      clusterName: secretValue(secret, 'clusterName') ?? '',
      clusterNamespace: secretValue(secret, 'clusterNamespace') ?? '',
      expires: secretValue(secret, 'expires') ?? '',
    };
    const agent = await tokenClient(credential.token);
    clients.push(agent);
    return { name, reg, credential, agent };
  }

  before(async function () {
    this.timeout(180_000);
    kube = await KubeClient.fromKubeConfig(stack().cluster('upstream').kubeConfig());
    await installCrds(kube);
    for (const ns of [W, R, SYSTEM]) await kube.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } }, 'flotilla-e2e');
    ctx = buildContext(kube);
    controllers = [setupRegistrationTokenController(ctx), setupRegistrationController(ctx), setupClusterController(ctx), setupClusterGroupController(ctx)];
    for (const informer of Object.values(ctx.informers)) informer.start();
    await Promise.all(Object.values(ctx.informers).map((i) => i.waitForSync()));
    for (const c of controllers) c.start();
  });

  after(async () => {
    await Promise.all(controllers.map((c) => c.stop()));
    await Promise.all(Object.values(ctx?.informers ?? {}).map((i) => i.stop()));
    await Promise.all(clients.map((c) => c.close()));
    await kube?.close();
  });

  it('issues an import token Secret that can only create and get registrations and get a named credential', async () => {
    const importer = await createToken('import-a', '2h');
    const token = await kube.get<ClusterRegistrationToken & KubeObject>(Ref.registrationToken(W, 'import-a'));
    const created = Date.parse(token?.metadata.creationTimestamp ?? '');
    expect(token?.status?.expires).to.equal(formatTime(new Date(created + 2 * 3_600_000)));
    const secret = await kube.get(Ref.secret(W, 'import-a'));
    expect(secretValue(secret, 'apiServerURL')).to.equal(stack().cluster('upstream').server);
    expect(secretValue(secret, 'apiServerCA')).to.equal(stack().cluster('upstream').caPem);
    expect(secretValue(secret, 'namespace')).to.equal(W);
    expect(JSON.stringify(token?.status)).to.not.include(secretValue(secret, 'token'));

    const registrations = { apiVersion: API_VERSION, kind: 'ClusterRegistration', namespace: W };
    expect(await statusOf(() => importer.list(registrations)), 'list registrations').to.equal(403);
    expect(await statusOf(() => importer.list({ apiVersion: 'v1', kind: 'Secret', namespace: R })), 'list secrets in R').to.equal(403);
    expect(await statusOf(() => importer.get(Ref.secret(W, 'import-a'))), 'get secrets in W').to.equal(403);
    expect(await statusOf(() => importer.list({ apiVersion: API_VERSION, kind: 'Cluster', namespace: W })), 'list clusters').to.equal(403);
  });

  it('grants a registration: Cluster, cluster namespace, agent ServiceAccount, least-privilege Roles and a credential', async () => {
    const importer = await tokenClient(secretValue(await kube.get(Ref.secret(W, 'import-a')), 'token') ?? '');
    clients.push(importer);
    const { reg, credential } = await register(importer, 'e2e-client-one', { env: 'e2e', 'flotilla.dev/cluster-name': 'edge-1' });
    const clusterNs = clusterNamespaceName(W, 'edge-1');
    expect(reg.status).to.include({ clusterName: 'edge-1', granted: true });
    expect(credential).to.include({ clusterName: 'edge-1', clusterNamespace: clusterNs });
    expect(Date.parse(credential.expires)).to.be.greaterThan(Date.now() + 23 * 3_600_000);

    const cluster = await waitForObject<Cluster & KubeObject>(
      Ref.cluster(W, 'edge-1'),
      'Cluster edge-1 with its namespace in status',
      (c) => c.status?.namespace === clusterNs,
    );
    expect(cluster.spec?.clientID).to.equal('e2e-client-one');
    expect(cluster.metadata.labels).to.include({ env: 'e2e' });
    expect(cluster.metadata.finalizers).to.include(Finalizer.Cluster);
    const ns = await kube.get(Ref.namespace(clusterNs));
    expect(ns?.metadata.labels).to.include({ [Label.Managed]: 'true', [Label.Cluster]: 'edge-1' });
    expect(await kube.get({ apiVersion: 'v1', kind: 'ServiceAccount', namespace: clusterNs, name: 'flotilla-agent' })).to.not.equal(undefined);
    const rbac = 'rbac.authorization.k8s.io/v1';
    const role = await kube.get<KubeObject & { rules: unknown[] }>({ apiVersion: rbac, kind: 'Role', namespace: clusterNs, name: 'flotilla-agent' });
    expect(role?.rules).to.deep.equal(agentRules('edge-1').clusterNamespace);
    const workspaceRole = await kube.get<KubeObject & { rules: unknown[] }>({ apiVersion: rbac, kind: 'Role', namespace: W, name: 'flotilla-agent-edge-1' });
    expect(workspaceRole?.rules).to.deep.equal(agentRules('edge-1').workspace);
    expect(JSON.stringify(reg.status)).to.not.include(credential.token);
    const events = await kube.list<KubeObject & { reason?: string; message?: string }>({ apiVersion: 'v1', kind: 'Event', namespace: W });
    expect(events.items.map((e) => e.reason)).to.include('Registered');
    for (const e of events.items) expect(e.message ?? '').to.not.include(credential.token);
  });

  it('lets an agent credential reach its own cluster namespace and Cluster, and nothing of other clusters', async () => {
    const importer = await tokenClient(secretValue(await kube.get(Ref.secret(W, 'import-a')), 'token') ?? '');
    clients.push(importer);
    const one = await register(importer, 'e2e-client-one', { env: 'e2e', 'flotilla.dev/cluster-name': 'edge-1' });
    const two = await register(importer, 'e2e-client-two', { env: 'e2e' });
    expect(two.credential.clusterName).to.match(/^c-[0-9a-f]{12}$/);
    const bds = (namespace: string) => ({ apiVersion: API_VERSION, kind: 'BundleDeployment', namespace });
    const a = one.agent;
    expect(await statusOf(() => a.list(bds(one.credential.clusterNamespace))), 'list own BundleDeployments').to.equal(0);
    expect(await statusOf(() => a.list(bds(two.credential.clusterNamespace))), "list another cluster's BundleDeployments").to.equal(403);
    expect(
      await statusOf(() => a.list({ apiVersion: 'v1', kind: 'Secret', namespace: two.credential.clusterNamespace })),
      "list another cluster's secrets",
    ).to.equal(403);
    expect(await statusOf(() => a.list({ apiVersion: 'v1', kind: 'Secret', namespace: W })), 'list secrets in W').to.equal(403);
    expect(await statusOf(() => a.get(Ref.secret(R, two.name))), 'get another credential in R').to.equal(403);
    expect(await statusOf(() => a.get(Ref.cluster(W, 'edge-1'))), 'get own Cluster').to.equal(0);
    expect(await statusOf(() => a.get(Ref.cluster(W, two.credential.clusterName))), 'get another Cluster').to.equal(403);
    expect(
      await statusOf(() => a.patchStatus(Ref.cluster(W, 'edge-1'), { agent: { lastSeen: formatTime(new Date()), namespace: 'flotilla-system' } })),
      'heartbeat on own Cluster',
    ).to.equal(0);
    expect(await statusOf(() => a.mergePatch(Ref.cluster(W, 'edge-1'), { metadata: { labels: { env: 'prod' } } })), 'relabel own Cluster').to.equal(403);
    expect(
      await statusOf(() =>
        a.raw('POST', `/api/v1/namespaces/${one.credential.clusterNamespace}/serviceaccounts/flotilla-agent/token`, {
          apiVersion: 'authentication.k8s.io/v1',
          kind: 'TokenRequest',
          spec: { expirationSeconds: 3600 },
        }),
      ),
      'renew own token',
    ).to.equal(0);

    // The older registration of client one (previous test) is gone, with its credential.
    const regs = await kube.list<ClusterRegistration & KubeObject>({ apiVersion: API_VERSION, kind: 'ClusterRegistration', namespace: W });
    const ofOne = regs.items.filter((r) => r.spec.clientID === 'e2e-client-one').map((r) => r.metadata.name);
    await waitFor(
      async () => {
        const left = (await kube.list<ClusterRegistration & KubeObject>({ apiVersion: API_VERSION, kind: 'ClusterRegistration', namespace: W })).items
          .filter((r) => r.spec.clientID === 'e2e-client-one')
          .map((r) => r.metadata.name);
        return left.length === 1 && left[0] === one.name;
      },
      { what: `older registrations of client one to be deleted (had ${ofOne.join(', ')})`, timeoutMs: 20_000 },
    );
    const secrets = await kube.list({ apiVersion: 'v1', kind: 'Secret', namespace: R }, `${Label.Cluster}=edge-1`);
    expect(secrets.items.map((s) => s.metadata.name)).to.deep.equal([one.name]);
  });

  it('rolls BundleDeployments and the agent heartbeat up into the Cluster status, and Clusters into a ClusterGroup', async () => {
    const clusterNs = clusterNamespaceName(W, 'edge-1');
    await kube.create({
      apiVersion: API_VERSION,
      kind: 'ClusterGroup',
      metadata: { name: 'e2e', namespace: W },
      spec: { selector: { matchLabels: { env: 'e2e' } } },
    });
    const heartbeat = (at: Date) => kube.patchStatus(Ref.cluster(W, 'edge-1'), { agent: { lastSeen: formatTime(at) } });
    await heartbeat(new Date());
    for (const name of ['app-a', 'app-b']) {
      await kube.create({
        apiVersion: API_VERSION,
        kind: 'BundleDeployment',
        metadata: { name, namespace: clusterNs },
        spec: { deploymentID: `${name}:v1`, resources: [{ name: 'cm.yaml', content: 'kind: ConfigMap' }] },
      });
    }
    await kube.patchStatus(Ref.bundleDeployment(clusterNs, 'app-a'), { appliedDeploymentID: 'app-a:v1', ready: true, nonModified: true });
    await kube.patchStatus(Ref.bundleDeployment(clusterNs, 'app-b'), { appliedDeploymentID: 'app-b:v0', ready: true, nonModified: true });
    const ready = (c: Cluster) => getCondition(c.status?.conditions, ConditionType.Ready);
    let cluster = await waitForObject<Cluster & KubeObject>(
      Ref.cluster(W, 'edge-1'),
      'edge-1 to show 1/2 bundles ready, one waiting to be applied',
      (c) => c.status?.display?.readyBundles === '1/2' && c.status.summary?.waitApplied === 1,
    );
    expect(cluster.status?.summary).to.include({ ready: 1, waitApplied: 1, desiredReady: 2 });
    expect(cluster.status?.display?.state).to.equal('WaitApplied');
    expect(ready(cluster)?.status).to.equal('False');

    await kube.patchStatus(Ref.bundleDeployment(clusterNs, 'app-b'), { appliedDeploymentID: 'app-b:v1', ready: true, nonModified: true });
    cluster = await waitForObject(Ref.cluster(W, 'edge-1'), 'edge-1 to be Ready with 2/2', (c: Cluster & KubeObject) => ready(c)?.status === 'True');
    expect(cluster.status).to.include({ readyBundles: 2, desiredReadyBundles: 2 });
    const group = await waitForObject<ClusterGroup & KubeObject>(
      Ref.clusterGroup(W, 'e2e'),
      'group e2e to count its 2 clusters',
      (g) => g.status?.clusterCount === 2 && g.status.display?.readyBundles === '2/2',
    );
    expect(group.status?.nonReadyClusters, 'the other cluster has no heartbeat yet').to.have.length(1);

    await heartbeat(new Date(Date.now() - 10 * 60_000));
    cluster = await waitForObject(
      Ref.cluster(W, 'edge-1'),
      'edge-1 to say its agent is not seen',
      (c: Cluster & KubeObject) => ready(c)?.reason === 'AgentNotSeen',
    );
    expect(ready(cluster)?.message).to.match(/has not reported since/);
    await waitForObject<ClusterGroup & KubeObject>(
      Ref.clusterGroup(W, 'e2e'),
      'group e2e to list edge-1 as not ready',
      (g) => g.status?.nonReadyClusterCount === 2 && (g.status.nonReadyClusters ?? []).includes('edge-1'),
    );
  });

  it('gives a Cluster created by an admin its cluster namespace, and deleting a Cluster revokes its agent', async () => {
    await kube.create({ apiVersion: API_VERSION, kind: 'Cluster', metadata: { name: 'manual-1', namespace: W, labels: { env: 'manual' } }, spec: {} });
    const manual = await waitForObject<Cluster & KubeObject>(
      Ref.cluster(W, 'manual-1'),
      'manual-1 to get its namespace',
      (c) => c.status?.namespace === clusterNamespaceName(W, 'manual-1'),
    );
    expect((await kube.get(Ref.namespace(manual.status?.namespace ?? '')))?.metadata.labels).to.include({ [Label.Cluster]: 'manual-1' });

    const importer = await tokenClient(secretValue(await kube.get(Ref.secret(W, 'import-a')), 'token') ?? '');
    clients.push(importer);
    const three = await register(importer, 'e2e-client-three', { env: 'gone-soon' });
    expect(await statusOf(() => three.agent.get(Ref.cluster(W, three.credential.clusterName)))).to.equal(0);
    await kube.delete(Ref.cluster(W, three.credential.clusterName));
    await waitFor(async () => (await kube.get(Ref.cluster(W, three.credential.clusterName))) === undefined, {
      what: 'the deleted Cluster to be finalized',
      timeoutMs: 30_000,
    });
    expect(await kube.get(Ref.secret(R, three.name)), 'credential Secret after Cluster deletion').to.equal(undefined);
    await waitFor(async () => (await statusOf(() => three.agent.get(Ref.cluster(W, three.credential.clusterName)))) === 401, {
      what: "the deleted cluster's agent credential to be rejected (401)",
      timeoutMs: 60_000,
    });
  });

  it('deletes a Cluster whose agent is gone: its BundleDeployments are released and the cluster namespace goes', async () => {
    await kube.create({ apiVersion: API_VERSION, kind: 'Cluster', metadata: { name: 'agent-gone', namespace: W }, spec: {} });
    const cluster = await waitForObject<Cluster & KubeObject>(Ref.cluster(W, 'agent-gone'), 'agent-gone to get its namespace', (c) => !!c.status?.namespace);
    const ns = cluster.status?.namespace ?? '';
    // What an agent leaves when it deployed a bundle and then went away with its cluster: a BundleDeployment
    // holding the agent's finalizer, which only that agent would remove.
    await kube.create({
      apiVersion: API_VERSION,
      kind: 'BundleDeployment',
      metadata: { name: 'held', namespace: ns, finalizers: [Finalizer.BundleDeployment] },
      spec: { deploymentID: 's-held', resources: [] },
    });
    await kube.delete(Ref.cluster(W, 'agent-gone'));
    await waitFor(async () => (await kube.get(Ref.namespace(ns))) === undefined, { what: `cluster namespace ${ns} to be deleted`, timeoutMs: 60_000 });
    expect(await kube.get(Ref.cluster(W, 'agent-gone')), 'the Cluster is finalized').to.equal(undefined);
    const events = await kube.list<KubeObject & { reason?: string; type?: string; message?: string; involvedObject?: { name?: string } }>({
      apiVersion: 'v1',
      kind: 'Event',
      namespace: W,
    });
    const told = events.items.find((e) => e.involvedObject?.name === 'agent-gone' && e.type === 'Warning');
    expect(told?.message, 'a Warning says which BundleDeployments were released and what stays').to.match(
      /did not remove 1 BundleDeployment\(s\) within \d+ s \(held\); released them: what they applied stays/,
    );
  });

  it('expires a ClusterRegistrationToken past its ttl: Secret and access removed, status says when', async () => {
    const importer = await createToken('short-lived', '8s');
    expect(await statusOf(() => importer.get(Ref.registration(W, 'nothing-here'))), 'valid import token').to.equal(0);
    const token = await waitForObject<ClusterRegistrationToken & KubeObject>(
      Ref.registrationToken(W, 'short-lived'),
      'the token to expire',
      (t) => t.status?.expires !== undefined && t.status.secretName === undefined,
    );
    expect(Date.parse(token.status?.expires ?? '')).to.equal(Date.parse(token.metadata.creationTimestamp ?? '') + 8000);
    expect(await kube.get(Ref.secret(W, 'short-lived'))).to.equal(undefined);
    // The API server caches successful token authentications for 10 s: until then its roles are gone (403).
    expect(await statusOf(() => importer.get(Ref.registration(W, 'nothing-here'))), 'expired import token').to.be.oneOf([401, 403]);
    await waitFor(async () => (await statusOf(() => importer.get(Ref.registration(W, 'nothing-here')))) === 401, {
      what: 'the expired import token to be rejected (401)',
      timeoutMs: 30_000,
    });
  });
});

describe('leader election on a real Lease', function () {
  this.timeout(60_000);
  it('lets exactly one of two candidates lead, and hands over when the leader stops', async () => {
    const kube = await KubeClient.fromKubeConfig(stack().cluster('upstream').kubeConfig());
    await kube.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: SYSTEM } }, 'flotilla-e2e');
    const started: string[] = [];
    const lost: string[] = [];
    const electors = ['replica-a', 'replica-b'].map(
      (identity) =>
        new LeaderElector(kube, { namespace: SYSTEM, name: 'e2e-lease', identity, leaseDurationMs: 4000, renewDeadlineMs: 3000, retryPeriodMs: 300 }, log),
    );
    const runs = electors.map((e, i) =>
      e.run(
        () => {
          started.push(`replica-${'ab'[i]}`);
        },
        () => {
          lost.push(`replica-${'ab'[i]}`);
        },
      ),
    );
    try {
      const leader = await waitFor(async () => electors.find((e) => e.isLeader()), { what: 'a leader', timeoutMs: 20_000 });
      await new Promise((r) => setTimeout(r, 1500)); // several retry periods: the other must still be waiting
      expect(electors.filter((e) => e.isLeader())).to.have.length(1);
      expect(started).to.have.length(1);
      const lease = await kube.get<KubeObject & { spec: { holderIdentity: string } }>({
        apiVersion: 'coordination.k8s.io/v1',
        kind: 'Lease',
        namespace: SYSTEM,
        name: 'e2e-lease',
      });
      expect(lease?.spec.holderIdentity).to.equal(started[0]);

      await leader.stop();
      const follower = electors.find((e) => e !== leader);
      await waitFor(async () => follower?.isLeader(), { what: 'the other candidate to take over', timeoutMs: 20_000 });
      expect(new Set(started).size, 'both candidates led, one after the other').to.equal(2);
      expect(lost, 'stop() is not a loss of leadership').to.deep.equal([]);
    } finally {
      await Promise.all(electors.map((e) => e.stop()));
      await Promise.all(runs);
      await kube.close();
    }
  });

  it('keeps a controller process running when it loses the Lease: it stops, campaigns again, and leads with fresh caches', async () => {
    const up = stack().cluster('upstream');
    const kube = await KubeClient.fromKubeConfig(up.kubeConfig());
    await kube.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: SYSTEM } }, 'flotilla-e2e');
    // A shard of its own: this manager reconciles nothing the other suites created. Its Lease is the shard's.
    const lease = { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', namespace: SYSTEM, name: shardLeaseName('e2e-manager-lease', 'lease-e2e') };
    const ctl = await startTestController(up, {
      leaderElection: true,
      systemNamespace: SYSTEM,
      leaseName: 'e2e-manager-lease',
      identity: 'manager-a',
      shardId: 'lease-e2e',
      leaseDuration: 4000,
      renewDeadline: 3000,
      retryPeriod: 300,
    });
    const started = () => ctl.logs.filter((l) => l.msg === 'controllers started').length;
    try {
      await waitFor(async () => ctl.manager.ready() || undefined, { what: 'the manager to lead and sync', timeoutMs: 20_000 });
      expect(started()).to.equal(1);
      // Another holder takes the Lease, as a replica would after this one failed to renew in time.
      // (The leader renews every 300 ms, so a write may conflict: read and write again until one lands.)
      const path = await kube.pathFor(lease);
      await waitFor(
        async () => {
          const held = await kube.get<KubeObject & { spec: Record<string, unknown> }>(lease);
          const spec = { ...held?.spec, holderIdentity: 'intruder', renewTime: formatMicroTime(new Date()), leaseDurationSeconds: 3600 };
          return kube.raw('PUT', path, { ...held, metadata: { ...held?.metadata, managedFields: undefined }, spec }).then(
            () => true,
            (err: unknown) => (isStatus(err, 409) ? undefined : Promise.reject(err)),
          );
        },
        { what: 'the Lease to be taken by another holder', timeoutMs: 10_000, intervalMs: 100 },
      );
      await waitFor(async () => !ctl.manager.ready() || undefined, { what: 'the manager to step down', timeoutMs: 20_000 });
      await waitFor(async () => ctl.logs.some((l) => /lost leadership; controllers stopped, campaigning again/.test(String(l.msg))) || undefined, {
        what: 'the manager to say it lost leadership',
        timeoutMs: 10_000,
      });
      await new Promise((r) => setTimeout(r, 1500)); // several retry periods: it must wait, not take the Lease back
      expect(ctl.manager.ready(), 'a candidate that does not hold the Lease is not ready').to.equal(false);
      expect(started(), 'no controllers started while another holds the Lease').to.equal(1);
      // The holder goes away: the same process leads again, with newly synced caches.
      await kube.delete(lease);
      await waitFor(async () => ctl.manager.ready() || undefined, { what: 'the manager to lead again', timeoutMs: 20_000 });
      expect(started(), 'controllers started again in the same process').to.equal(2);
      const now = await kube.get<KubeObject & { spec: { holderIdentity: string } }>(lease);
      expect(now?.spec.holderIdentity).to.equal('manager-a');
    } finally {
      await ctl.stop();
      await kube.close();
    }
  });
});
