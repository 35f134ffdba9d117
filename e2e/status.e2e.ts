import { expect } from 'chai';
import { stack } from './fixture.js';
import { waitFor } from '../stack/net.js';
import { installCrds } from '../stack/crds.js';
import { startFleet, removeFleetDir, type Fleet } from './support/processes.js';
import { API_VERSION, ConditionType, Label, setCondition, type Bundle, type BundleDeployment, type Condition, type GitRepo } from '../lib/api/index.js';
import { KubeClient, type KubeObject } from '../lib/kube/client.js';
import { summarize } from '../lib/kube/reconciler-status.js';
import { applyArtifactsStored } from '../controller/gitrepo.js';
import { bundleStatusWriter } from '../controller/bundle.js';
import { applyCredentials, gitRepoObject } from './support/fleetobjects.js';
import { cond } from './support/kube.js';

type Obj<T> = T & KubeObject;

/**
 * Status on a real kube-apiserver: Bundle status has two writers (the GitRepo reconciler's ArtifactsStored
 * and the Bundle reconciler's own conditions) and loses neither's condition however their writes interleave;
 * and, through real controller and agent processes, a GitRepo is never Ready at a commit before the
 * downstream objects are those of that commit, with Ready/Reconciling/Stalled on every kind.
 */
describe('status: two writers of Bundle status, and Ready means ready', function () {
  this.timeout(300_000);

  describe('two writers of Bundle status on a real API server', () => {
    const NS = 'status-e2e-writers';
    let kube: KubeClient;
    const bundleRef = (name: string) => ({ apiVersion: API_VERSION, kind: 'Bundle', namespace: NS, name });
    const get = async (name: string) => (await kube.get<Obj<Bundle>>(bundleRef(name))) as Obj<Bundle>;

    before(async () => {
      kube = await KubeClient.fromKubeConfig(stack().cluster('upstream').kubeConfig());
      await installCrds(kube);
      await kube.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } }, 'status-e2e');
    });
    after(async () => {
      await kube?.close();
    });

    async function freshBundle(name: string): Promise<void> {
      await kube.apply(
        {
          apiVersion: API_VERSION,
          kind: 'Bundle',
          metadata: { name, namespace: NS },
          spec: { contentsID: 'c1', resources: [{ name: 'cm.yaml', content: 'x' }] },
        },
        'status-e2e',
      );
    }

    /** The Bundle reconciler's write: its conditions, from the Bundle as it read it. */
    async function bundleWrite(read: Obj<Bundle>, ready: boolean): Promise<void> {
      const now = new Date();
      const conditions = summarize({
        conditions: setCondition(
          read.status?.conditions,
          { type: ConditionType.Targeted, status: 'True', reason: 'Succeeded', message: '1 cluster(s) targeted' },
          now,
        ),
        generation: read.metadata.generation,
        error: undefined,
        fallbackReason: 'Progressing',
        now,
        readiness: { status: ready ? 'True' : 'False', reason: ready ? 'Succeeded' : 'ResourcesNotReady', message: '' },
      });
      const status = { observedGeneration: read.metadata.generation, conditions, observedContentsID: 'c1' };
      await bundleStatusWriter(kube).write(read, read.status as Record<string, unknown> | undefined, status);
    }

    it("control: whole-list merge patches from the same read lose the first writer's condition (the race is real)", async () => {
      await freshBundle('race-control');
      const read = await get('race-control');
      const now = new Date();
      await kube.patchStatus(bundleRef('race-control'), {
        conditions: setCondition(read.status?.conditions, { type: ConditionType.ArtifactsStored, status: 'True', reason: 'Succeeded', message: 'stored' }, now),
      });
      await kube.patchStatus(bundleRef('race-control'), {
        conditions: setCondition(read.status?.conditions, { type: ConditionType.Ready, status: 'True', reason: 'Succeeded', message: '' }, now),
      });
      const after = await get('race-control');
      expect(cond(after, ConditionType.ArtifactsStored), 'merge patches of the whole list erase the other writer').to.equal(undefined);
    });

    it("keeps both writers' conditions through many concurrent writes from both", async () => {
      await freshBundle('race');
      for (let round = 0; round < 15; round++) {
        const read = await get('race');
        // Both writers act on the same (soon stale) read, several writes each, all at once.
        await Promise.all([
          ...[0, 1, 2].map((i) =>
            applyArtifactsStored(
              kube,
              NS,
              'race',
              read,
              (round + i) % 2 === 0,
              (round + i) % 2 === 0 ? 'Succeeded' : 'RegistryUnreachable',
              `round ${round}.${i}`,
              new Date(),
            ),
          ),
          ...[0, 1, 2].map((i) => bundleWrite(read, (round + i) % 2 === 0)),
        ]);
        const after = await get('race');
        expect(cond(after, ConditionType.ArtifactsStored), `ArtifactsStored after round ${round}`).to.not.equal(undefined);
        expect(cond(after, ConditionType.Ready), `Ready after round ${round}`).to.not.equal(undefined);
        expect(cond(after, ConditionType.Targeted), `Targeted after round ${round}`).to.not.equal(undefined);
      }
      const last = await get('race');
      expect(last.status?.conditions?.map((c) => c.type).sort()).to.deep.equal(['ArtifactsStored', 'Ready', 'Reconciling', 'Targeted']);
    });
  });

  describe('Ready means ready, through real controller and agent processes', () => {
    const WS = 'status-e2e';
    const REPO = 'status-e2e-app';
    const APP_NS = 'status-e2e-app';
    const CLUSTER = 'downstream-1';
    let fleet: Fleet;
    let downstream: KubeClient;
    let failed = false;
    const git = () => stack().git!;
    const cm = (version: string) => `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: status-app\ndata:\n  version: "${version}"\n`;
    const getRepo = async () => await fleet.upstream.get<Obj<GitRepo>>({ apiVersion: API_VERSION, kind: 'GitRepo', namespace: WS, name: REPO });
    const downstreamVersion = async () =>
      (await downstream.get<KubeObject & { data?: Record<string, string> }>({ apiVersion: 'v1', kind: 'ConfigMap', namespace: APP_NS, name: 'status-app' }))
        ?.data?.version;

    before(async function () {
      this.timeout(6 * 60_000);
      downstream = await KubeClient.fromKubeConfig(stack().cluster(CLUSTER).kubeConfig());
      fleet = await startFleet(stack(), { workspace: WS, clusters: [{ name: CLUSTER, labels: { env: 'status-e2e' } }] });
      await applyCredentials(fleet.upstream, WS, 'status-e2e', git());
      await git().createRepo(REPO);
    });
    afterEach(function () {
      if (this.currentTest?.state === 'failed') failed = true;
    });
    after(async function () {
      this.timeout(120_000);
      await fleet?.stop();
      await downstream?.close();
      if (fleet && !failed) await removeFleetDir(fleet);
    });

    /** Polls until the GitRepo is Ready at `commit`; at the first moment it says so, the downstream object must be that commit's. */
    async function readyAt(commit: string, version: string): Promise<void> {
      let last = '';
      await waitFor(
        async () => {
          await fleet.assertAlive();
          const r = await getRepo();
          last = `commit ${r?.status?.commit?.slice(0, 12) ?? '-'}, Ready: ${cond(r, 'Ready')?.status ?? '-'} ${cond(r, 'Ready')?.message ?? ''}`;
          if (r?.status?.commit !== commit || cond(r, 'Ready')?.status !== 'True') return undefined;
          expect(await downstreamVersion(), `GitRepo Ready at ${commit.slice(0, 12)} before the agent applied it`).to.equal(version);
          return true;
        },
        { what: `GitRepo ${REPO} Ready at ${commit.slice(0, 12)}`, timeoutMs: 180_000, intervalMs: 50, context: () => `${last}; logs in ${fleet.logDir}` },
      );
    }

    it('is never Ready at a new commit before the BundleDeployments applied it, and every kind says Ready for its generation', async () => {
      const first = await git().commit(REPO, { 'app/fleet.yaml': `defaultNamespace: ${APP_NS}\n`, 'app/cm.yaml': cm('1') }, 'v1');
      await fleet.upstream.apply(gitRepoObject(REPO, WS, git(), REPO, { paths: ['app'], pollingInterval: '1s' }), 'status-e2e');
      await readyAt(first, '1');
      for (const version of ['2', '3', '4']) {
        const commit = await git().commit(REPO, { 'app/cm.yaml': cm(version) }, `v${version}`);
        await readyAt(commit, version);
      }
      // kstatus on every kind: Ready True for the current generation (what `kubectl wait --for=condition=Ready` reads).
      const kinds = [
        ...(await fleet.upstream.list<KubeObject>({ apiVersion: API_VERSION, kind: 'Bundle', namespace: WS }, `${Label.RepoName}=${REPO}`)).items,
        ...(await fleet.upstream.list<KubeObject>({ apiVersion: API_VERSION, kind: 'BundleDeployment' }, `${Label.RepoName}=${REPO}`)).items,
        ...(await fleet.upstream.list<KubeObject>({ apiVersion: API_VERSION, kind: 'Cluster', namespace: WS })).items,
        (await getRepo()) as KubeObject,
      ];
      for (const o of kinds as Obj<{ status?: { conditions?: Condition[] } }>[]) {
        const ready = cond(o, 'Ready');
        expect(ready?.status, `${o.kind} ${o.metadata.name} Ready`).to.equal('True');
        expect(ready?.observedGeneration, `${o.kind} ${o.metadata.name} Ready.observedGeneration`).to.equal(o.metadata.generation);
        expect(cond(o, 'Stalled'), `${o.kind} ${o.metadata.name} not Stalled`).to.equal(undefined);
      }
      const bds = kinds.filter((o) => o.kind === 'BundleDeployment') as Obj<BundleDeployment>[];
      for (const bd of bds) expect(bd.status?.appliedDeploymentID).to.equal(bd.spec.deploymentID);
    });
  });
});
