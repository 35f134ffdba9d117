import { expect } from 'chai';
import {
  API_VERSION,
  BundleState,
  ConditionType,
  Finalizer,
  Label,
  Reason,
  emptyBundleSummary,
  getCondition,
  type Bundle,
  type BundleDeployment,
  type BundleSummary,
  type Condition,
} from '../lib/api/index.js';
import { dispositionOf } from '../lib/errors.js';
import type { KubeObject } from '../lib/kube/client.js';
import type { ReconcileResult } from '../lib/kube/controller.js';
import { encodeSecretData } from '../lib/kube/secret.js';
import { BUNDLE_STATUS_MANAGER, STATUS_POSTPONE_LIMIT, bundleReconciler, notReadyMessage, ociSecretName } from './bundle.js';
import { INDEXES_BY_KIND } from './indexes.js';
import { applyArtifactsStored } from './gitrepo.js';
import { fakeContext, type FakeContext } from './testing.js';

describe('Bundle Ready message', () => {
  const summary = (nonReady: BundleSummary['nonReadyResources']): BundleSummary => ({
    ...emptyBundleSummary(),
    ...(nonReady ? { nonReadyResources: nonReady } : {}),
  });
  const cases: { name: string; summary: BundleSummary; want: string }[] = [
    { name: 'is empty when every cluster is ready', summary: summary(undefined), want: '' },
    { name: 'names the first cluster and its state', summary: summary([{ name: 'c1', bundleState: BundleState.NotReady }]), want: 'c1: NotReady' },
    {
      name: 'carries why the agent refused the bundle',
      want: 'c1: ErrApplied (pulling r@sha256:1: layer "../x": path contains "..")',
      summary: summary([
        { name: 'c1', bundleState: BundleState.ErrApplied, message: 'pulling r@sha256:1: layer "../x": path contains ".."' },
        { name: 'c2', bundleState: BundleState.ErrApplied, message: 'other' },
      ]),
    },
  ];
  for (const c of cases) it(c.name, () => expect(notReadyMessage(c.summary)).to.equal(c.want));

  it('stays within a condition message', () => {
    expect(notReadyMessage(summary([{ name: 'c1', bundleState: BundleState.ErrApplied, message: 'x'.repeat(5000) }]))).to.have.length(1024);
  });
});

/**
 * The Bundle reconciler, one or two reconciles per case, on the fakes of controller/testing.ts (API server,
 * caches as synced informers, clock). An agent's report is simulated by writing BundleDeployment status.
 */
describe('Bundle reconciler (on fake ports)', () => {
  type BundleObject = Bundle & KubeObject;
  type BDObject = BundleDeployment & KubeObject;
  const T0 = new Date('2026-01-01T00:00:00Z');
  const PROD = [{ clusterSelector: { matchLabels: { env: 'prod' } } }];
  const readyCondition: Condition = { type: 'Ready', status: 'True', reason: 'Succeeded', message: '', lastTransitionTime: '2026-01-01T00:00:00Z' };

  class World {
    readonly f: FakeContext = fakeContext(T0);
    readonly reconcile = bundleReconciler(this.f.ctx);

    constructor(spec: Partial<Bundle['spec']> = {}) {
      this.f.kube.seed<BundleObject>({
        apiVersion: API_VERSION,
        kind: 'Bundle',
        metadata: { name: 'app', namespace: 'ws', finalizers: [Finalizer.Bundle], labels: { [Label.RepoName]: 'apps' } },
        spec: { contentsID: 'c1', resources: [{ name: 'cm.yaml', content: 'x' }], targetRestrictions: PROD, ...spec },
      });
    }

    cluster(name: string, env: string, namespace: string | null = `ns-${name}`): this {
      this.f.kube.seed({
        apiVersion: API_VERSION,
        kind: 'Cluster',
        metadata: { name, namespace: 'ws', labels: { env } },
        spec: {},
        ...(namespace ? { status: { namespace } } : {}),
      });
      return this;
    }

    /**
     * One reconcile; when it wrote BundleDeployments and left the Bundle's status to the next pass, also the
     * passes the BundleDeployments' watch events start in the controller, until one writes the status
     * (at most STATUS_POSTPONE_LIMIT postpone in a row).
     */
    async run(): Promise<ReconcileResult> {
      for (let pass = 0; ; pass++) {
        const before = this.f.kube.writes.length;
        const result = await this.once();
        const wrote = this.f.kube.writes.slice(before);
        const postponed =
          wrote.some((x) => x.kind === 'BundleDeployment' && x.op === 'apply') &&
          !wrote.some((x) => x.kind === 'Bundle' && x.op === 'applyStatus' && x.fieldManager === BUNDLE_STATUS_MANAGER);
        if (!postponed || result.error !== undefined || pass >= STATUS_POSTPONE_LIMIT) return result;
      }
    }

    /** Exactly one reconcile. */
    async once(): Promise<ReconcileResult> {
      return (await this.reconcile('ws/app')) ?? {};
    }

    /** The agent of the cluster in `namespace` reports `deploymentID` (default: the one it was given) applied and ready. */
    report(namespace: string, deploymentID?: string): void {
      const bd = this.f.kube.find<BDObject>('BundleDeployment', namespace, 'app');
      if (!bd) throw new Error(`no BundleDeployment in ${namespace}`);
      this.f.kube.seed({ ...bd, status: { appliedDeploymentID: deploymentID ?? bd.spec.deploymentID, ready: true, conditions: [readyCondition] } });
    }

    /** Changes the Bundle's spec as a new commit would. */
    change(spec: Partial<Bundle['spec']>): void {
      const b = this.bundle;
      this.f.kube.seed({ ...b, metadata: { ...b.metadata, generation: (b.metadata.generation ?? 1) + 1 }, spec: { ...b.spec, ...spec } });
    }

    get bundle(): BundleObject {
      return this.f.kube.mustFind<BundleObject>('Bundle', 'ws', 'app');
    }

    condition(type: string): string | undefined {
      return this.f.kube.condition('Bundle', 'ws', 'app', type);
    }

    deployments(): BDObject[] {
      return this.f.kube.all<BDObject>('BundleDeployment');
    }

    applied(kind = 'BundleDeployment'): string[] {
      return this.f.kube.writesOf('apply', kind).map((w) => `${w.namespace}/${w.name}`);
    }
  }

  it('writes one BundleDeployment per targeted cluster, in its cluster namespace, and is not Ready before the agents report', async () => {
    const w = new World().cluster('c1', 'prod').cluster('c2', 'prod').cluster('d1', 'dev');
    const result = await w.run();
    expect(w.applied()).to.have.members(['ns-c1/app', 'ns-c2/app']);
    const bd = w.f.kube.find<BDObject>('BundleDeployment', 'ns-c1', 'app');
    expect(bd?.metadata.labels).to.include({ [Label.BundleName]: 'app', [Label.BundleNamespace]: 'ws', [Label.Cluster]: 'c1', [Label.RepoName]: 'apps' });
    expect(bd?.spec.resources).to.deep.equal([{ name: 'cm.yaml', content: 'x' }]);
    expect(w.condition(ConditionType.Targeted)).to.equal('True/Succeeded');
    expect(w.condition(ConditionType.Ready)).to.equal('False/ResourcesNotReady');
    expect(w.condition(ConditionType.Reconciling)).to.equal('True/Progressing');
    expect(w.bundle.status?.display?.readyClusters).to.equal('0/2');
    expect(w.f.kube.writesOf('applyStatus', 'Bundle').map((x) => x.fieldManager)).to.deep.equal([BUNDLE_STATUS_MANAGER]);
    expect(result).to.deep.equal({});
  });

  it('is Ready once every agent applied the current deployment ID, and then writes nothing but status', async () => {
    const w = new World().cluster('c1', 'prod').cluster('c2', 'prod');
    await w.run();
    w.report('ns-c1');
    w.report('ns-c2');
    const writes = w.f.kube.writes.length;
    await w.run();
    expect(w.condition(ConditionType.Ready)).to.equal('True/Succeeded');
    expect(w.bundle.status?.display?.readyClusters).to.equal('2/2');
    expect(w.f.kube.writes.slice(writes).map((x) => `${x.op} ${x.kind}`)).to.deep.equal(['applyStatus Bundle']);
  });

  it('leaves its status to the pass the new BundleDeployments start: agents that report by then make one status write', async () => {
    const w = new World().cluster('c1', 'prod').cluster('c2', 'prod');
    const statusWrites = () => w.f.kube.writesOf('applyStatus', 'Bundle').filter((x) => x.fieldManager === BUNDLE_STATUS_MANAGER);
    const first = await w.once();
    expect(w.applied()).to.have.members(['ns-c1/app', 'ns-c2/app']);
    expect(statusWrites(), 'postponed').to.deep.equal([]);
    expect(first.requeueAfterMs, 'a look again even if no watch event comes').to.be.a('number').and.at.most(5000);
    w.report('ns-c1');
    w.report('ns-c2');
    await w.once();
    expect(statusWrites()).to.have.length(1);
    expect(w.condition(ConditionType.Ready)).to.equal('True/Succeeded');
    expect(w.bundle.status?.display?.readyClusters).to.equal('2/2');
  });

  it('does not write again the BundleDeployments a pass just wrote when the next pass runs before the informer delivers them', async () => {
    const w = new World().cluster('c1', 'prod').cluster('c2', 'prod');
    const live = w.f.kube.cache<BDObject>('BundleDeployment');
    // An informer whose watch is held: it shows what was stored when held, until delivered.
    let held: Map<string, BDObject> | undefined;
    const hold = () => {
      held = new Map(live.list().map((bd) => [`${bd.metadata.namespace}/${bd.metadata.name}`, bd]));
    };
    const lagging = {
      get: (key: string) => (held ? held.get(key) : live.get(key)),
      list: () => (held ? [...held.values()] : live.list()),
      byIndex: (name: string, value: string) => {
        const fn = INDEXES_BY_KIND.BundleDeployment?.[name];
        return held ? [...held.values()].filter((bd) => fn?.(bd).includes(value)) : live.byIndex(name, value);
      },
    };
    const reconcile = bundleReconciler({ ...w.f.ctx, informers: { ...w.f.ctx.informers, bundleDeployments: lagging } });
    const pass = async () => (await reconcile('ws/app')) ?? {};
    const statusWrites = () => w.f.kube.writesOf('applyStatus', 'Bundle').filter((x) => x.fieldManager === BUNDLE_STATUS_MANAGER);

    hold();
    await pass();
    expect(w.applied()).to.have.members(['ns-c1/app', 'ns-c2/app']);
    const second = await pass(); // started by the Bundle's own status event, before the BundleDeployments' ADDED events
    expect(w.applied(), 'created ones are not applied again').to.have.length(2);
    expect(statusWrites(), 'the status still waits for the watch events to come').to.deep.equal([]);
    expect(second.requeueAfterMs).to.be.a('number');
    held = undefined;
    w.report('ns-c1');
    w.report('ns-c2');
    await pass();
    expect(w.condition(ConditionType.Ready)).to.equal('True/Succeeded');
    expect(statusWrites(), 'straight to Ready').to.have.length(1);

    w.change({ contentsID: 'c2' });
    hold();
    await pass();
    await pass();
    expect(w.applied(), 'changed ones are not applied again').to.have.length(4);
    expect(w.f.kube.find<BDObject>('BundleDeployment', 'ns-c1', 'app')?.spec.deploymentID).to.contain('c2');
    held = undefined;
    w.change({ contentsID: 'c3' });
    await pass();
    expect(w.applied(), 'the next change is written once the informer caught up').to.have.length(6);
  });

  it(`writes its status after ${STATUS_POSTPONE_LIMIT} postponing passes in a row, even when every pass writes`, async () => {
    const w = new World().cluster('c1', 'prod');
    const statusWrites = () => w.f.kube.writesOf('applyStatus', 'Bundle').filter((x) => x.fieldManager === BUNDLE_STATUS_MANAGER);
    for (let i = 0; i < STATUS_POSTPONE_LIMIT; i++) {
      w.change({ contentsID: `c${i + 2}` });
      await w.once();
      expect(statusWrites(), `pass ${i + 1}`).to.deep.equal([]);
    }
    w.change({ contentsID: 'c9' });
    await w.once();
    expect(w.f.kube.find<BDObject>('BundleDeployment', 'ns-c1', 'app')?.spec.deploymentID).to.contain('c9');
    expect(statusWrites()).to.have.length(1);
    expect(w.condition(ConditionType.Targeted)).to.equal('True/Succeeded');
  });

  it('tells one Ready Event per rollout on the Bundle, and none while it stays Ready', async () => {
    const w = new World().cluster('c1', 'prod').cluster('c2', 'prod');
    const readyEvents = () => w.f.events.events.filter((e) => e.reason === ConditionType.Ready);
    await w.run();
    w.report('ns-c1');
    await w.run();
    expect(readyEvents(), 'one of two clusters ready').to.deep.equal([]);
    w.report('ns-c2');
    await w.run();
    await w.run();
    expect(readyEvents()).to.deep.equal([{ object: 'Bundle/ws/app', type: 'Normal', reason: 'Ready', message: 'ready on 2/2 cluster(s), contents c1' }]);
    w.change({ contentsID: 'c2' });
    await w.run();
    w.report('ns-c1');
    w.report('ns-c2');
    await w.run();
    expect(readyEvents().map((e) => e.message)).to.deep.equal(['ready on 2/2 cluster(s), contents c1', 'ready on 2/2 cluster(s), contents c2']);
  });

  it('is not Ready while one agent still reports the deployment ID of older content', async () => {
    const w = new World().cluster('c1', 'prod').cluster('c2', 'prod');
    await w.run();
    w.report('ns-c1');
    w.report('ns-c2', 'an-older-deployment');
    await w.run();
    expect(w.condition(ConditionType.Ready)).to.equal('False/ResourcesNotReady');
    expect(getCondition(w.bundle.status?.conditions, ConditionType.Ready)?.message).to.equal('c2: WaitApplied');
  });

  it("new content is not Ready on the agents' reports of the previous content", async () => {
    const w = new World().cluster('c1', 'prod');
    await w.run();
    w.report('ns-c1');
    await w.run();
    expect(w.condition(ConditionType.Ready)).to.equal('True/Succeeded');
    const before = w.f.kube.find<BDObject>('BundleDeployment', 'ns-c1', 'app')?.spec.deploymentID;
    w.change({ contentsID: 'c2' });
    await w.run();
    expect(w.f.kube.find<BDObject>('BundleDeployment', 'ns-c1', 'app')?.spec.deploymentID).to.not.equal(before);
    expect(w.condition(ConditionType.Ready)).to.equal('False/ResourcesNotReady');
  });

  it('says so when no cluster matches, and writes no BundleDeployment', async () => {
    const w = new World().cluster('d1', 'dev');
    await w.run();
    expect(w.deployments()).to.deep.equal([]);
    expect(w.condition(ConditionType.Targeted)).to.equal('False/NoMatchingClusters');
    expect(w.bundle.status?.display?.state).to.equal('NoTargets');
  });

  it('comes back soon for a targeted cluster whose namespace does not exist yet', async () => {
    const w = new World().cluster('c1', 'prod').cluster('c2', 'prod', null);
    const result = await w.run();
    expect(w.applied()).to.deep.equal(['ns-c1/app']);
    expect(getCondition(w.bundle.status?.conditions, ConditionType.Targeted)?.message).to.equal('2 cluster(s) targeted, 1 waiting for their namespace');
    expect(w.condition(ConditionType.Ready)).to.equal('False/ResourcesNotReady');
    expect(result).to.deep.equal({ requeueAfterMs: 2000 });
  });

  it('deletes the BundleDeployment and agent credentials of a cluster that is no longer targeted', async () => {
    const w = new World().cluster('c1', 'prod').cluster('c2', 'prod');
    await w.run();
    w.cluster('c2', 'dev');
    await w.run();
    expect(w.deployments().map((bd) => bd.metadata.namespace)).to.deep.equal(['ns-c1']);
    expect(w.f.kube.writesOf('delete', 'BundleDeployment').map((d) => d.namespace)).to.deep.equal(['ns-c2']);
  });

  it("hands each agent a copy of the registry's read-only credentials next to its BundleDeployment", async () => {
    const oci = { reference: `r.example/x@sha256:${'a'.repeat(64)}`, digest: `sha256:${'a'.repeat(64)}`, secretName: 'push' };
    const w = new World({ resources: undefined, oci }).cluster('c1', 'prod');
    w.f.kube.seed({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'push', namespace: 'ws' },
      data: encodeSecretData({ username: 'pusher', password: 'p', agentUsername: 'puller', agentPassword: 'q' }),
    });
    await w.run();
    const secret = w.f.kube.find<KubeObject & { stringData?: Record<string, string> }>('Secret', 'ns-c1', ociSecretName('app'));
    expect(secret?.stringData).to.deep.equal({ username: 'puller', password: 'q' });
    expect(secret?.metadata.ownerReferences?.[0]).to.include({ kind: 'BundleDeployment', name: 'app' });
    expect(w.f.kube.find<BDObject>('BundleDeployment', 'ns-c1', 'app')?.spec.oci?.secretName).to.equal(ociSecretName('app'));
  });

  it('waits for a missing registry Secret and writes no BundleDeployment', async () => {
    const oci = { reference: `r.example/x@sha256:${'a'.repeat(64)}`, digest: `sha256:${'a'.repeat(64)}`, secretName: 'push' };
    const w = new World({ resources: undefined, oci }).cluster('c1', 'prod');
    const result = await w.run();
    expect(w.deployments()).to.deep.equal([]);
    expect(dispositionOf(result.error)).to.equal('waiting');
    // The roll-up's own verdict stays Ready's reason; Reconciling says what is retried.
    expect(w.condition(ConditionType.Ready)).to.equal('False/ResourcesNotReady');
    expect(getCondition(w.bundle.status?.conditions, ConditionType.Reconciling)?.message).to.match(/Secret ws\/push .* does not exist/);
  });

  it('keeps the ArtifactsStored condition the GitRepo reconciler writes while a Bundle reconcile runs', async () => {
    const w = new World().cluster('c1', 'prod');
    await applyArtifactsStored(w.f.kube, 'ws', 'app', undefined, true, Reason.Succeeded, 'stored', T0);
    // The race: after this reconcile read the Bundle, the registry fails and the GitRepo reconciler says so.
    w.f.kube.before('apply', 'BundleDeployment', () =>
      applyArtifactsStored(w.f.kube, 'ws', 'app', w.bundle, false, Reason.RegistryUnreachable, 'down', new Date('2026-01-01T00:00:01Z')),
    );
    await w.run();
    expect(w.condition(ConditionType.ArtifactsStored)).to.equal('False/RegistryUnreachable');
    expect(w.condition(ConditionType.Targeted)).to.equal('True/Succeeded');
  });

  it('stages new content of a paused Bundle and keeps the applied version', async () => {
    const w = new World().cluster('c1', 'prod');
    await w.run();
    const applied = w.f.kube.find<BDObject>('BundleDeployment', 'ns-c1', 'app')?.spec.deploymentID;
    w.change({ contentsID: 'c2', paused: true });
    await w.run();
    const spec = w.f.kube.find<BDObject>('BundleDeployment', 'ns-c1', 'app')?.spec;
    expect(spec?.deploymentID).to.equal(applied);
    expect(spec?.stagedDeploymentID).to.be.a('string').and.not.equal(applied);
    expect(spec?.paused).to.equal(true);
  });

  it('deletes every BundleDeployment on deletion before letting the Bundle go', async () => {
    const w = new World().cluster('c1', 'prod').cluster('c2', 'prod');
    await w.run();
    await w.f.kube.delete({ apiVersion: API_VERSION, kind: 'Bundle', namespace: 'ws', name: 'app' });
    const result = await w.run();
    expect(w.deployments()).to.deep.equal([]);
    expect(w.f.kube.writesOf('delete', 'BundleDeployment').map((d) => d.namespace)).to.have.members(['ns-c1', 'ns-c2']);
    expect(w.f.kube.find('Bundle', 'ws', 'app')).to.equal(undefined);
    expect(result).to.deep.equal({});
  });

  describe('rollback (spec.rollback)', () => {
    const D1 = `sha256:${'1'.repeat(64)}`;
    const D2 = `sha256:${'2'.repeat(64)}`;
    const D3 = `sha256:${'3'.repeat(64)}`;
    const REPO = 'reg.local/ws-app';
    const HISTORY = [
      { version: 1, digest: D1, contentsID: 'c1', commit: 'a1' },
      { version: 2, digest: D2, contentsID: 'c2', commit: 'a2' },
    ];
    /** A Bundle in OCI mode at v2, with its history on status, on clusters c1 (eu) and c2 (us). */
    function ociWorld(rollback?: Bundle['spec']['rollback']): World {
      const w = new World({ resources: undefined, contentsID: 'c2', oci: { reference: `${REPO}@${D2}`, digest: D2 }, ...(rollback ? { rollback } : {}) });
      const b = w.bundle;
      w.f.kube.seed({ ...b, status: { history: HISTORY } });
      w.f.kube.seed({
        apiVersion: API_VERSION,
        kind: 'Cluster',
        metadata: { name: 'c1', namespace: 'ws', labels: { env: 'prod', region: 'eu' } },
        spec: {},
        status: { namespace: 'ns-c1' },
      });
      w.f.kube.seed({
        apiVersion: API_VERSION,
        kind: 'Cluster',
        metadata: { name: 'c2', namespace: 'ws', labels: { env: 'prod', region: 'us' } },
        spec: {},
        status: { namespace: 'ns-c2' },
      });
      return w;
    }
    const spec = (w: World, ns: string) => w.f.kube.find<BDObject>('BundleDeployment', ns, 'app');

    it('pins only the selected clusters to the rolled-back digest and contents, labels them, and says so on Ready and RolledBack', async () => {
      const w = ociWorld({ version: 1, clusterSelector: { matchLabels: { region: 'eu' } } });
      await w.run();
      expect(spec(w, 'ns-c1')?.spec.oci).to.deep.include({ reference: `${REPO}@${D1}`, digest: D1 });
      expect(spec(w, 'ns-c1')?.spec.deploymentID).to.match(/^s-c1:/);
      expect(spec(w, 'ns-c1')?.metadata.labels?.[Label.RolledBackTo]).to.equal('v1');
      expect(spec(w, 'ns-c2')?.spec.oci?.digest).to.equal(D2);
      expect(spec(w, 'ns-c2')?.metadata.labels?.[Label.RolledBackTo]).to.equal(undefined);
      w.report('ns-c1');
      w.report('ns-c2');
      await w.run();
      expect(w.condition(ConditionType.Ready)).to.equal('True/RolledBack');
      expect(w.condition(ConditionType.RolledBack)).to.equal('True/RolledBack');
      expect(w.bundle.status?.rollback).to.deep.equal({ version: 1, clusters: ['c1'], clusterCount: 1, newestVersion: 2 });
      expect(w.bundle.status?.versions).to.deep.equal([
        { version: 2, clusters: 1 },
        { version: 1, clusters: 1, names: ['c1'] },
      ]);
    });

    it('keeps rolled-back clusters pinned when a new commit arrives, and says the newer version waits', async () => {
      const w = ociWorld({ version: 1, clusterSelector: { matchLabels: { region: 'eu' } } });
      await w.run();
      w.change({ contentsID: 'c3', oci: { reference: `${REPO}@${D3}`, digest: D3 } });
      w.f.kube.seed({ ...w.bundle, status: { ...w.bundle.status, history: [...HISTORY, { version: 3, digest: D3, contentsID: 'c3' }] } });
      await w.run();
      expect(spec(w, 'ns-c1')?.spec.oci?.digest).to.equal(D1);
      expect(spec(w, 'ns-c2')?.spec.oci?.digest).to.equal(D3);
      expect(w.bundle.status?.rollback?.newestVersion).to.equal(3);
      expect(getCondition(w.bundle.status?.conditions, ConditionType.RolledBack)?.message).to.include('newest version v3 waits');
    });

    it('returns every cluster to the newest version once the rollback is cleared', async () => {
      const w = ociWorld({ version: 1 });
      await w.run();
      expect(spec(w, 'ns-c2')?.spec.oci?.digest).to.equal(D1);
      w.change({ rollback: undefined });
      await w.run();
      expect(spec(w, 'ns-c1')?.spec.oci?.digest).to.equal(D2);
      expect(spec(w, 'ns-c2')?.spec.oci?.digest).to.equal(D2);
      expect(w.condition(ConditionType.RolledBack)).to.equal(undefined);
      expect(w.bundle.status?.rollback).to.equal(undefined);
    });

    const refused: { name: string; rollback: NonNullable<Bundle['spec']['rollback']>; field: string }[] = [
      { name: 'a version retention deleted (not in the history)', rollback: { version: 7 }, field: 'spec.rollback.version' },
      { name: "a digest that is not this version's (another bundle's)", rollback: { version: 1, digest: D3 }, field: 'spec.rollback.digest' },
      {
        name: 'clusters the bundle does not target',
        rollback: { version: 1, clusterSelector: { matchLabels: { region: 'mars' } } },
        field: 'spec.rollback.clusterSelector',
      },
    ];
    for (const c of refused) {
      it(`stalls naming ${c.field} and changes no BundleDeployment for ${c.name}`, async () => {
        const w = ociWorld();
        await w.run();
        const before = w.deployments().map((d) => d.spec);
        w.change({ rollback: c.rollback });
        const writes = w.f.kube.writesOf('apply', 'BundleDeployment').length;
        const result = await w.reconcile('ws/app').catch((err: unknown) => err);
        expect(w.f.kube.writesOf('apply', 'BundleDeployment').length).to.equal(writes);
        expect(w.deployments().map((d) => d.spec)).to.deep.equal(before);
        expect(w.condition(ConditionType.Stalled)).to.equal('True/InvalidRollback');
        expect(getCondition(w.bundle.status?.conditions, ConditionType.Stalled)?.message).to.include(c.field);
        if (result instanceof Error) expect(dispositionOf(result)).to.equal('stalling');
      });
    }

    describe('staged rollout (spec.rolloutStrategy)', () => {
      const strategy: NonNullable<Bundle['spec']['rolloutStrategy']> = {
        partitions: [
          { name: 'eu', clusterSelector: { matchLabels: { region: 'eu' } }, maxUnavailable: 0 },
          { name: 'us', clusterSelector: { matchLabels: { region: 'us' } }, maxUnavailable: 0 },
        ],
        deadline: '1m',
        onFailure: 'rollback',
      };

      it('creates the second partition only once the first is ready, then completes', async () => {
        const w = ociWorld();
        w.change({ rolloutStrategy: strategy });
        await w.run();
        expect(w.applied()).to.deep.equal(['ns-c1/app']);
        expect(w.condition(ConditionType.Ready)).to.equal('False/Progressing');
        expect(w.bundle.status?.rollout?.partitions.map((p) => `${p.name}:${p.phase}`)).to.deep.equal(['eu:Rolling', 'us:Waiting']);
        w.report('ns-c1');
        await w.run();
        expect(w.applied()).to.deep.equal(['ns-c1/app', 'ns-c2/app']);
        w.report('ns-c2');
        await w.run();
        expect(w.bundle.status?.rollout?.phase).to.equal('Complete');
        expect(w.condition(ConditionType.Ready)).to.equal('True/Succeeded');
      });

      it('returns the failed first partition to the previous version after the deadline; the second never gets the new one', async () => {
        const w = ociWorld();
        w.change({ rolloutStrategy: strategy, contentsID: 'c1', oci: { reference: `${REPO}@${D1}`, digest: D1 } });
        w.f.kube.seed({ ...w.bundle, status: { history: [HISTORY[0]] } });
        for (const ns of ['ns-c1', 'ns-c2']) {
          await w.run();
          w.report(ns);
        }
        await w.run();
        expect(w.bundle.status?.rollout?.phase).to.equal('Complete');
        w.change({ contentsID: 'c2', oci: { reference: `${REPO}@${D2}`, digest: D2 } });
        w.f.kube.seed({ ...w.bundle, status: { ...w.bundle.status, history: HISTORY } });
        const first = await w.run();
        expect(spec(w, 'ns-c1')?.spec.oci?.digest).to.equal(D2);
        expect(spec(w, 'ns-c2')?.spec.oci?.digest).to.equal(D1);
        expect(first.requeueAfterMs).to.be.greaterThan(0);
        const bd = spec(w, 'ns-c1') as BDObject;
        w.f.kube.seed({ ...bd, status: { appliedDeploymentID: bd.spec.deploymentID, ready: false } });
        w.f.setNow(new Date(T0.getTime() + 61_000));
        await w.run();
        expect(spec(w, 'ns-c1')?.spec.oci?.digest).to.equal(D1);
        expect(spec(w, 'ns-c1')?.metadata.labels?.[Label.RolledBackTo]).to.equal(undefined);
        expect(spec(w, 'ns-c2')?.spec.oci?.digest).to.equal(D1);
        expect(w.bundle.status?.rollout).to.deep.include({ phase: 'RolledBack', version: 2, previousVersion: 1 });
        expect(w.condition(ConditionType.Ready)).to.equal('False/RolloutFailed');
      });

      it('stalls naming the field of an invalid rolloutStrategy and writes no BundleDeployment', async () => {
        const w = ociWorld();
        w.change({ rolloutStrategy: { maxUnavailable: '200%' } });
        await w.reconcile('ws/app').catch((err: unknown) => err);
        expect(w.deployments()).to.deep.equal([]);
        expect(w.condition(ConditionType.Stalled)).to.equal('True/InvalidBundle');
        expect(getCondition(w.bundle.status?.conditions, ConditionType.Stalled)?.message).to.include('spec.rolloutStrategy.maxUnavailable');
      });
    });
  });
});
