import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { API_VERSION, Annotation, ConditionType, Finalizer, Label, Reason, getCondition, type Bundle, type Condition, type GitRepo } from '../lib/api/index.js';
import { StallingError, TransientError, dispositionOf, reasonOf } from '../lib/errors.js';
import type { KubeObject } from '../lib/kube/client.js';
import type { ReconcileResult } from '../lib/kube/controller.js';
import { encodeSecretData } from '../lib/kube/secret.js';
import type { Tree } from '../lib/bundle/testing.js';
import { ARTIFACTS_STATUS_MANAGER, gitRepoReconciler } from './gitrepo.js';
import { CHARTS_STATUS_MANAGER, type ChartFetcher } from './charts.js';
import { createBundleStore } from './store.js';
import { FakeGit, FakeRegistry, fakeContext, type FakeContext } from './testing.js';

/**
 * The GitRepo reconciler, one reconcile per case, on the fakes of controller/testing.ts: git, the bundle
 * store's registry, the API server and the clock are in memory; bundles are read from a real checkout
 * folder by the controller's real reader. The full loop is tested against the real stack in e2e/.
 */

type GitRepoObject = GitRepo & KubeObject;
type BundleObject = Bundle & KubeObject;

const URL = 'https://git.example/apps.git';
const REGISTRY = 'registry.example:5000/flotilla';
const T0 = new Date('2026-01-01T00:00:00Z');
const LATER = new Date('2026-01-01T00:10:00Z');
let commits = 0;
/** A commit ID unique in this process (the controller remembers refused commits by ID). */
const commit = (label: string) => createHash('sha1').update(`${label}-${++commits}`).digest('hex');
const cm = (name: string) => `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${name}\ndata:\n  key: value\n`;
const TREE: Tree = { 'web/cm.yaml': cm('web'), 'db/cm.yaml': cm('db') };

/** One GitRepo reconcile on fakes. */
class World {
  readonly f: FakeContext = fakeContext(T0);
  readonly git = new FakeGit();
  readonly registry = new FakeRegistry();
  maxInlineBytes = 1_000_000;
  /** Remote charts (none by default: a bundle naming one fails to fetch it). */
  chartFetcher?: ChartFetcher;

  /** Stores GitRepo ws/apps with `spec`, `status` and `meta` (its finalizer by default). */
  repo(spec: Partial<GitRepo['spec']> = {}, status?: GitRepo['status'], meta: Partial<KubeObject['metadata']> = {}): void {
    this.f.kube.seed<GitRepoObject>({
      apiVersion: API_VERSION,
      kind: 'GitRepo',
      metadata: { name: 'apps', namespace: 'ws', generation: 1, finalizers: [Finalizer.GitRepo], ...meta },
      spec: { repo: URL, paths: ['web', 'db'], ...spec },
      ...(status ? { status } : {}),
    });
  }

  /** Stores a Bundle of the GitRepo as an earlier reconcile left it. */
  bundle(name: string, extra: Partial<BundleObject['spec']> = {}): void {
    this.f.kube.seed<BundleObject>({
      apiVersion: API_VERSION,
      kind: 'Bundle',
      metadata: { name, namespace: 'ws', labels: { [Label.RepoName]: 'apps', [Label.BundleName]: name } },
      spec: { contentsID: 'old', resources: [], ...extra },
    });
  }

  async reconcile(): Promise<ReconcileResult> {
    const store = createBundleStore({
      kube: this.f.kube,
      registries: this.registry,
      retain: 5,
      maxInlineBytes: this.maxInlineBytes,
    });
    const charts = this.chartFetcher ? { fetch: this.chartFetcher } : undefined;
    return (await gitRepoReconciler(this.f.ctx, { git: this.git, store, ...(charts ? { charts } : {}) })('ws/apps')) ?? {};
  }

  get stored(): GitRepoObject {
    return this.f.kube.mustFind<GitRepoObject>('GitRepo', 'ws', 'apps');
  }

  condition(type: string): string | undefined {
    return this.f.kube.condition('GitRepo', 'ws', 'apps', type);
  }

  bundleApplies(): BundleObject[] {
    return this.f.kube.writesOf('apply', 'Bundle').map((w) => w.body as BundleObject);
  }
}

/** The status an earlier reconcile of `sha` left, polled at T0. */
const synced = (sha: string, extra: Partial<NonNullable<GitRepo['status']>> = {}): GitRepo['status'] => ({
  observedGeneration: 1,
  commit: sha,
  lastPollingTime: '2026-01-01T00:00:00Z',
  conditions: [],
  ...extra,
});

interface Case {
  name: string;
  given(w: World): void;
  /** The clock at the reconcile (default: T0). */
  at?: Date;
  expect(w: World, result: ReconcileResult): void;
}

const cases: Case[] = [
  {
    name: 'a new commit writes one Bundle per bundle directory, inline in etcd mode, and waits for its deployments',
    given: (w) => {
      w.git.push(URL, commit('new'), TREE);
      w.repo();
    },
    expect: (w, result) => {
      expect(w.bundleApplies().map((b) => b.metadata.name)).to.have.members(['apps-web', 'apps-db']);
      const web = w.f.kube.find<BundleObject>('Bundle', 'ws', 'apps-web');
      expect(web?.spec.resources?.map((r) => r.name)).to.deep.equal(['cm.yaml']);
      expect(web?.spec.oci).to.equal(undefined);
      expect(web?.metadata.labels?.[Label.RepoName]).to.equal('apps');
      expect(w.registry.pushes).to.deep.equal([]);
      expect(w.stored.status?.commit).to.equal(w.git.heads.get(URL));
      expect(w.condition(ConditionType.GitFetched)).to.equal('True/Succeeded');
      expect(w.condition(ConditionType.BundlesBuilt)).to.equal('True/Succeeded');
      expect(w.condition(ConditionType.ArtifactsStored)).to.equal(undefined);
      // Ready means ready: no BundleDeployment reported this commit yet.
      expect(w.condition(ConditionType.Ready)).to.equal('False/ResourcesNotReady');
      expect(w.condition(ConditionType.Reconciling)).to.equal('True/Progressing');
      expect(w.f.events.events.map((e) => e.reason)).to.include('CommitSynced');
      expect(result).to.deep.equal({ requeueAfterMs: 15_000, maxBackoffMs: 15_000 });
    },
  },
  {
    name: 'a new commit in OCI mode pushes every bundle, pins the artifacts in the Bundles and records ArtifactsStored on both',
    given: (w) => {
      w.git.push(URL, commit('oci'), TREE);
      w.repo({ ociRegistry: { reference: REGISTRY, authSecretName: 'push' } });
      w.f.kube.seed({
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'push', namespace: 'ws' },
        data: encodeSecretData({ username: 'u', password: 'p' }),
      });
    },
    expect: (w) => {
      expect(w.registry.pushes).to.have.members([`${REGISTRY}/ws-apps-web`, `${REGISTRY}/ws-apps-db`]);
      expect(w.registry.sessions[0]?.username).to.equal('u');
      expect(w.registry.openSessions).to.equal(0);
      const web = w.f.kube.find<BundleObject>('Bundle', 'ws', 'apps-web');
      expect(web?.spec.resources).to.equal(undefined);
      expect(web?.spec.oci?.reference).to.match(new RegExp(`^${REGISTRY}/ws-apps-web@sha256:[0-9a-f]{64}$`));
      expect(web?.spec.oci?.secretName).to.equal('push');
      const stored = getCondition(web?.status?.conditions, ConditionType.ArtifactsStored);
      expect(stored?.status).to.equal('True');
      expect(w.f.kube.writesOf('applyStatus', 'Bundle').every((x) => x.fieldManager === ARTIFACTS_STATUS_MANAGER)).to.equal(true);
      expect(w.condition(ConditionType.ArtifactsStored)).to.equal('True/Succeeded');
      expect(w.stored.status?.artifacts?.map((a) => a.bundle)).to.have.members(['apps-web', 'apps-db']);
    },
  },
  {
    name: 'an unchanged commit asks git, checks nothing out and writes no Bundle',
    at: LATER,
    given: (w) => {
      const sha = commit('same');
      w.git.push(URL, sha, TREE);
      w.repo({}, synced(sha));
    },
    expect: (w, result) => {
      expect(w.git.calls).to.deep.equal([`resolve ${URL}`]);
      expect(w.bundleApplies()).to.deep.equal([]);
      expect(w.stored.status?.lastPollingTime).to.equal('2026-01-01T00:10:00Z');
      expect(result.error).to.equal(undefined);
    },
  },
  {
    name: 'a commit announced by a webhook is fetched at once, within the polling interval',
    at: new Date('2026-01-01T00:00:05Z'),
    given: (w) => {
      const old = commit('before-hook');
      const pushed = commit('hook');
      w.git.push(URL, pushed, TREE);
      w.repo({ pollingInterval: '1h' }, synced(old, { webhookCommit: pushed }));
    },
    expect: (w) => {
      const pushed = w.git.heads.get(URL) ?? '';
      // The announced commit is fetched while git is asked where the branch points; git named it, so the sync builds from that checkout.
      expect(w.git.calls).to.deep.equal([`checkout ws/apps ${pushed}`, `resolve ${URL}`]);
      expect(w.bundleApplies().map((b) => b.metadata.annotations?.[Annotation.Commit])).to.deep.equal([pushed, pushed]);
      expect(w.stored.status?.commit).to.equal(pushed);
      expect(w.stored.status?.webhookCommit).to.equal(pushed);
    },
  },
  {
    name: 'a webhook commit git does not serve (yet) is fetched ahead in vain: the commit git names is synced, and the reconcile does not fail',
    at: new Date('2026-01-01T00:00:05Z'),
    given: (w) => {
      const old = commit('before-lagging-hook');
      const served = commit('served');
      w.git.push(URL, served, TREE);
      w.repo({ pollingInterval: '1h' }, synced(old, { webhookCommit: commit('not-served-yet') }));
    },
    expect: (w, result) => {
      const served = w.git.heads.get(URL) ?? '';
      const announced = w.stored.status?.webhookCommit ?? '';
      expect(w.git.calls).to.deep.equal([`checkout ws/apps ${announced}`, `resolve ${URL}`, `checkout ws/apps ${served}`]);
      expect(w.stored.status?.commit).to.equal(served);
      expect(w.bundleApplies().map((b) => b.metadata.annotations?.[Annotation.Commit])).to.deep.equal([served, served]);
      expect(result.error).to.equal(undefined);
      expect(result.requeueAfterMs, 'the announced commit is looked for again soon').to.equal(2000);
    },
  },
  {
    name: 'a poll without a webhook commit asks git before it fetches anything',
    at: LATER,
    given: (w) => {
      const old = commit('before-poll');
      w.git.push(URL, commit('polled'), TREE);
      w.repo({}, synced(old));
    },
    expect: (w) => {
      const head = w.git.heads.get(URL) ?? '';
      expect(w.git.calls).to.deep.equal([`resolve ${URL}`, `checkout ws/apps ${head}`]);
    },
  },
  {
    name: "a GitRepo's shard label is carried to its Bundles",
    given: (w) => {
      w.git.push(URL, commit('shard'), TREE);
      w.repo({}, undefined, { labels: { 'fleet.cattle.io/shard-ref': 'eu', team: 'x' } });
    },
    expect: (w) => {
      const labels = w.bundleApplies().map((b) => b.metadata.labels ?? {});
      expect(labels.map((l) => l['fleet.cattle.io/shard-ref'])).to.deep.equal(['eu', 'eu']);
      expect(labels.map((l) => l.team)).to.deep.equal([undefined, undefined]);
    },
  },
  {
    name: 'within the polling interval git is not asked at all',
    at: new Date('2026-01-01T00:00:05Z'),
    given: (w) => {
      const sha = commit('recent');
      w.git.push(URL, sha, TREE);
      w.repo({}, synced(sha));
    },
    expect: (w, result) => {
      expect(w.git.calls).to.deep.equal([]);
      expect(w.bundleApplies()).to.deep.equal([]);
      expect(result.requeueAfterMs).to.equal(15_000);
    },
  },
  {
    name: 'a failed git fetch is GitOperationFailed, retried within the polling interval, and writes nothing',
    given: (w) => {
      w.git.push(URL, commit('unreachable'), TREE);
      w.git.resolveFailure = new TransientError(Reason.GitOperationFailed, `git ls-remote of ${URL}: connection refused`);
      w.repo({ pollingInterval: '1m' });
    },
    expect: (w, result) => {
      expect(w.condition(ConditionType.GitFetched)).to.equal('False/GitOperationFailed');
      expect(w.condition(ConditionType.Ready)).to.equal('False/GitOperationFailed');
      expect(w.condition(ConditionType.Reconciling)).to.equal('True/Progressing');
      expect(w.condition(ConditionType.Stalled)).to.equal('False/Progressing');
      expect(dispositionOf(result.error)).to.equal('transient');
      expect(result.maxBackoffMs).to.equal(60_000);
      expect(w.bundleApplies()).to.deep.equal([]);
      expect(w.f.events.events.map((e) => `${e.type}/${e.reason}`)).to.deep.equal(['Warning/GitOperationFailed']);
    },
  },
  {
    name: 'refused credentials stall the GitRepo until it changes',
    given: (w) => {
      w.git.push(URL, commit('auth'), TREE);
      w.git.resolveFailure = new StallingError(Reason.AuthenticationFailed, `git ls-remote of ${URL}: authentication failed`);
      w.repo();
    },
    expect: (w, result) => {
      expect(w.condition(ConditionType.Stalled)).to.equal('True/AuthenticationFailed');
      expect(w.condition(ConditionType.Ready)).to.equal('False/AuthenticationFailed');
      expect(dispositionOf(result.error)).to.equal('stalling');
    },
  },
  {
    name: 'a missing clientSecretName Secret waits for it without asking git',
    given: (w) => {
      w.git.push(URL, commit('secret'), TREE);
      w.repo({ clientSecretName: 'git-creds' });
    },
    expect: (w, result) => {
      expect(w.git.calls).to.deep.equal([]);
      expect(reasonOf(result.error, '')).to.equal(Reason.SecretNotFound);
      expect(dispositionOf(result.error)).to.equal('waiting');
      expect(w.condition(ConditionType.Ready)).to.equal('False/SecretNotFound');
    },
  },
  {
    name: 'an unreachable registry is ArtifactsStored False on the GitRepo and its Bundles, with no fallback to etcd',
    given: (w) => {
      w.git.push(URL, commit('registry-down'), TREE);
      w.registry.failure = new TransientError(Reason.RegistryUnreachable, `${REGISTRY}: connection refused`);
      w.repo({ ociRegistry: { reference: REGISTRY } }, synced('previous'));
      w.bundle('apps-web', { oci: { reference: `${REGISTRY}/ws-apps-web@sha256:${'1'.repeat(64)}`, digest: `sha256:${'1'.repeat(64)}` } });
    },
    at: LATER,
    expect: (w, result) => {
      expect(w.bundleApplies()).to.deep.equal([]);
      expect(w.f.kube.find<BundleObject>('Bundle', 'ws', 'apps-web')?.spec.resources).to.deep.equal([]);
      expect(w.condition(ConditionType.ArtifactsStored)).to.equal('False/RegistryUnreachable');
      expect(w.condition(ConditionType.Ready)).to.equal('False/RegistryUnreachable');
      const onBundle = getCondition(w.f.kube.find<BundleObject>('Bundle', 'ws', 'apps-web')?.status?.conditions, ConditionType.ArtifactsStored);
      expect(`${onBundle?.status}/${onBundle?.reason}`).to.equal('False/RegistryUnreachable');
      expect(w.stored.status?.commit).to.equal('previous');
      expect(dispositionOf(result.error)).to.equal('transient');
      expect(w.registry.openSessions).to.equal(0);
    },
  },
  {
    name: 'invalid bundle content stalls as InvalidBundle before anything is pushed or written',
    given: (w) => {
      w.git.push(URL, commit('invalid'), { 'web/cm.yaml': 'kind: [unclosed\n', 'db/cm.yaml': cm('db') });
      w.repo({ ociRegistry: { reference: REGISTRY } });
    },
    expect: (w, result) => {
      expect(w.condition(ConditionType.BundlesBuilt)).to.equal('False/InvalidBundle');
      expect(w.condition(ConditionType.Stalled)).to.equal('True/InvalidBundle');
      expect(dispositionOf(result.error)).to.equal('stalling');
      expect(w.registry.pushes).to.deep.equal([]);
      expect(w.bundleApplies()).to.deep.equal([]);
    },
  },
  {
    name: 'a bundle too large for etcd stalls as BundleTooLarge and writes no Bundle',
    given: (w) => {
      w.maxInlineBytes = 50;
      w.git.push(URL, commit('large'), TREE);
      w.repo();
    },
    expect: (w, result) => {
      expect(w.condition(ConditionType.Stalled)).to.equal('True/BundleTooLarge');
      expect(w.condition(ConditionType.ArtifactsStored)).to.equal(undefined);
      expect(dispositionOf(result.error)).to.equal('stalling');
      expect(w.bundleApplies()).to.deep.equal([]);
    },
  },
  {
    name: "a bundle that left git is deleted with its artifacts; the others' are kept",
    at: LATER,
    given: (w) => {
      w.git.push(URL, commit('removed'), { 'web/cm.yaml': cm('web') });
      w.repo({ ociRegistry: { reference: REGISTRY }, paths: ['web'] }, synced('previous'));
      w.bundle('apps-web');
      w.bundle('apps-db');
    },
    expect: (w) => {
      expect(w.f.kube.find('Bundle', 'ws', 'apps-db')).to.equal(undefined);
      expect(w.f.kube.find('Bundle', 'ws', 'apps-web')).to.not.equal(undefined);
      expect(w.registry.deletes).to.deep.equal([`${REGISTRY}/ws-apps-db`]);
    },
  },
  {
    name: 'a paused GitRepo still writes its Bundles, paused',
    given: (w) => {
      w.git.push(URL, commit('paused'), TREE);
      w.repo({ paused: true });
    },
    expect: (w) => {
      expect(w.bundleApplies().map((b) => b.spec.paused)).to.deep.equal([true, true]);
    },
  },
];

const deletion: Case[] = [
  {
    name: 'deletion deletes the Bundles first and keeps the finalizer until they are gone',
    given: (w) => {
      w.repo({}, synced('c'), { deletionTimestamp: '2026-01-01T00:00:00Z' });
      w.bundle('apps-web');
    },
    expect: (w, result) => {
      expect(w.f.kube.writesOf('delete', 'Bundle').map((d) => d.name)).to.deep.equal(['apps-web']);
      expect(result).to.deep.equal({ requeueAfterMs: 1000 });
      expect(w.stored.metadata.finalizers).to.deep.equal([Finalizer.GitRepo]);
      expect(w.git.calls).to.deep.equal([]);
    },
  },
  {
    name: 'deletion then removes the artifacts, forgets the checkout and lets the GitRepo go',
    given: (w) => {
      w.repo({ ociRegistry: { reference: REGISTRY } }, synced('c', { artifacts: [{ bundle: 'apps-web', reference: 'r', digest: 'd' }] }), {
        deletionTimestamp: '2026-01-01T00:00:00Z',
      });
    },
    expect: (w, result) => {
      expect(w.registry.deletes).to.deep.equal([`${REGISTRY}/ws-apps-web`]);
      expect(w.git.calls).to.deep.equal(['forget ws/apps']);
      expect(w.f.kube.find('GitRepo', 'ws', 'apps')).to.equal(undefined);
      expect(result).to.deep.equal({});
    },
  },
  {
    name: 'deletion keeps the finalizer and says why while the registry refuses to delete the artifacts',
    given: (w) => {
      w.registry.failure = new TransientError(Reason.RegistryUnreachable, 'connection refused');
      w.registry.failDeletes = true;
      w.repo({ ociRegistry: { reference: REGISTRY } }, synced('c', { artifacts: [{ bundle: 'apps-web', reference: 'r', digest: 'd' }] }), {
        deletionTimestamp: '2026-01-01T00:00:00Z',
      });
    },
    expect: (w, result) => {
      expect(result).to.deep.equal({ requeueAfterMs: 10_000 });
      expect(w.stored.metadata.finalizers).to.deep.equal([Finalizer.GitRepo]);
      expect(w.git.calls).to.deep.equal([]);
      expect(w.f.events.events.map((e) => `${e.type}/${e.reason}`)).to.deep.equal(['Warning/ArtifactDeleteFailed']);
    },
  },
];

describe('GitRepo reconciler (on fake ports)', function () {
  // The first case starts the controller's bundle reader (a worker thread); the others take milliseconds.
  this.timeout(30_000);
  for (const c of [...cases, ...deletion]) {
    it(c.name, async () => {
      const w = new World();
      c.given(w);
      w.f.setNow(c.at ?? T0);
      try {
        const result = await w.reconcile();
        c.expect(w, result);
      } finally {
        await w.git.dispose();
      }
    });
  }

  it('adds its finalizer to a new GitRepo before doing anything else', async () => {
    const w = new World();
    w.git.push(URL, commit('first'), TREE);
    w.repo({}, undefined, { finalizers: [] });
    await w.reconcile();
    await w.git.dispose();
    const first = w.f.kube.writes[0];
    expect(first?.op).to.equal('mergePatch');
    expect(first?.kind).to.equal('GitRepo');
    expect(w.stored.metadata.finalizers).to.deep.equal([Finalizer.GitRepo]);
  });

  it('is Ready once every Bundle of the commit and its BundleDeployments are ready for it', async () => {
    const w = new World();
    const sha = commit('ready');
    w.git.push(URL, sha, TREE);
    w.repo({ paths: ['web'] }, synced(sha));
    const ready: Condition = {
      type: 'Ready',
      status: 'True',
      reason: 'Succeeded',
      message: '',
      lastTransitionTime: '2026-01-01T00:00:00Z',
      observedGeneration: 1,
    };
    w.f.kube.seed<BundleObject>({
      apiVersion: API_VERSION,
      kind: 'Bundle',
      metadata: { name: 'apps-web', namespace: 'ws', labels: { [Label.RepoName]: 'apps' }, annotations: { [Annotation.Commit]: sha } },
      spec: { contentsID: 'c1', resources: [] },
      status: { observedGeneration: 1, observedContentsID: 'c1', conditions: [ready] },
    });
    w.f.kube.seed({
      apiVersion: API_VERSION,
      kind: 'BundleDeployment',
      metadata: {
        name: 'apps-web',
        namespace: 'cluster-ns',
        labels: { [Label.RepoName]: 'apps', [Label.BundleNamespace]: 'ws', [Label.BundleName]: 'apps-web' },
      },
      spec: { deploymentID: 'd1' },
      status: { appliedDeploymentID: 'd1', ready: true, conditions: [ready] },
    });
    await w.reconcile();
    await w.git.dispose();
    expect(w.condition(ConditionType.Ready)).to.equal('True/Succeeded');
    expect(w.stored.status?.display?.readyBundleDeployments).to.equal('1/1');
  });
});

describe('GitRepo reconciler: many bundles in one commit', () => {
  const tree = (n: number): Tree => Object.fromEntries(Array.from({ length: n }, (_, i) => [`b${String(i).padStart(2, '0')}/cm.yaml`, cm(`b${i}`)]));
  const paths = (n: number) => Array.from({ length: n }, (_, i) => `b${String(i).padStart(2, '0')}`);

  it('stores several bundles at once (at most 8) and writes every one, with the finalizer of the Bundle reconciler', async () => {
    const w = new World();
    w.git.push(URL, commit('many'), tree(20));
    w.repo({ ociRegistry: { reference: REGISTRY }, paths: paths(20) });
    // Each push waits a little, so pushes that may overlap do.
    w.registry.beforePush = () => new Promise((r) => setTimeout(r, 5));
    const result = await w.reconcile();
    await w.git.dispose();
    expect(result.error).to.equal(undefined);
    expect(w.registry.pushes).to.have.length(20);
    expect(w.registry.mostPushesRunning).to.be.within(2, 8);
    const applies = w.bundleApplies();
    expect(applies.map((b) => b.metadata.name).sort()).to.deep.equal(paths(20).map((p) => `apps-${p}`));
    for (const b of applies) expect(b.metadata.finalizers, b.metadata.name).to.deep.equal([Finalizer.Bundle]);
    expect(w.condition(ConditionType.ArtifactsStored)).to.equal('True/Succeeded');
  });

  it('starts no further push once one failed, writes no Bundle, and reports the bundle that failed', async () => {
    const w = new World();
    w.git.push(URL, commit('many-fail'), tree(20));
    w.repo({ ociRegistry: { reference: REGISTRY }, paths: paths(20) });
    let started = 0;
    w.registry.beforePush = async (repository) => {
      started += 1;
      await new Promise((r) => setTimeout(r, 5));
      if (repository.endsWith('apps-b03')) throw new TransientError(Reason.RegistryUnreachable, 'connection reset');
    };
    const result = await w.reconcile();
    await w.git.dispose();
    expect(dispositionOf(result.error)).to.equal('transient');
    expect(started, 'pushes started: the first 8, and those started before the failure was seen').to.be.below(20);
    expect(w.bundleApplies()).to.deep.equal([]);
    expect(w.condition(ConditionType.ArtifactsStored)).to.equal('False/RegistryUnreachable');
    const message = getCondition(w.stored.status?.conditions, ConditionType.ArtifactsStored)?.message ?? '';
    expect(message).to.include('storing bundle apps-b03').and.include('connection reset');
    expect(w.registry.openSessions).to.equal(0);
  });
});

describe('GitRepo reconciler: a commit costs the registry what it changed', () => {
  /** Syncs TREE at a first commit, then `next` at a second one (polled 10 minutes later); returns the world after both. */
  async function twoCommits(next: Tree, between: (w: World) => void = () => {}): Promise<World> {
    const w = new World();
    // As the API server does: the applied fields recorded per manager, which tell a Bundle the commit changed.
    w.f.kube.recordApplyFields = true;
    w.repo({ ociRegistry: { reference: REGISTRY } });
    w.git.push(URL, commit('first'), TREE);
    w.f.setNow(T0);
    expect((await w.reconcile()).error).to.equal(undefined);
    w.registry.pushes.length = 0;
    w.f.kube.writes.length = 0;
    between(w);
    w.git.push(URL, commit('second'), next);
    w.f.setNow(LATER);
    const result = await w.reconcile();
    await w.git.dispose();
    expect(result.error).to.equal(undefined);
    return w;
  }
  const statusWrites = (w: World) => w.f.kube.writesOf('applyStatus', 'Bundle').map((x) => x.name);

  it('pushes and writes the changed bundle only; the other keeps its version after one check, with no write at all', async () => {
    let first = '';
    const w = await twoCommits({ ...TREE, 'web/cm.yaml': cm('web-2') }, (w) => {
      first = w.stored.status?.commit ?? '';
    });
    expect(w.registry.pushes).to.deep.equal([`${REGISTRY}/ws-apps-web`]);
    expect(w.registry.checks).to.deep.equal([`${REGISTRY}/ws-apps-db`]);
    const db = w.f.kube.mustFind<BundleObject>('Bundle', 'ws', 'apps-db');
    const versions = w.registry.repositories.get(`${REGISTRY}/ws-apps-db`) ?? [];
    expect(versions).to.have.length(1);
    expect(db.spec.oci?.reference).to.equal(`${REGISTRY}/ws-apps-db@${versions[0]?.digest}`);
    expect(w.bundleApplies().map((b) => b.metadata.name)).to.deep.equal(['apps-web']);
    expect(w.f.kube.mustFind<BundleObject>('Bundle', 'ws', 'apps-web').metadata.annotations?.[Annotation.Commit]).to.equal(w.stored.status?.commit);
    expect(db.metadata.annotations?.[Annotation.Commit], 'a Bundle names the commit that last changed it').to.equal(first);
    expect(first).not.to.equal(w.stored.status?.commit);
    expect(statusWrites(w), 'the changed Bundle gets its new version in its history').to.deep.equal(['apps-web']);
    expect(w.f.kube.condition('Bundle', 'ws', 'apps-db', ConditionType.ArtifactsStored)).to.equal('True/Succeeded');
    expect(w.condition(ConditionType.ArtifactsStored)).to.equal('True/Succeeded');
  });

  it('pushes an unchanged bundle again when the registry lost its version', async () => {
    const w = await twoCommits(TREE, (w) => w.registry.repositories.delete(`${REGISTRY}/ws-apps-db`));
    expect(w.registry.checks).to.have.members([`${REGISTRY}/ws-apps-db`, `${REGISTRY}/ws-apps-web`]);
    expect(w.registry.pushes).to.deep.equal([`${REGISTRY}/ws-apps-db`]);
    const db = w.f.kube.mustFind<BundleObject>('Bundle', 'ws', 'apps-db');
    const versions = w.registry.repositories.get(`${REGISTRY}/ws-apps-db`) ?? [];
    expect(db.spec.oci?.reference).to.equal(`${REGISTRY}/ws-apps-db@${versions[0]?.digest}`);
  });

  it('pushes every bundle again when the settings agents read the version with changed (here basicHTTP)', async () => {
    const w = await twoCommits(TREE, (w) => {
      const repo = w.stored;
      w.f.kube.seed<GitRepoObject>({ ...repo, spec: { ...repo.spec, ociRegistry: { reference: REGISTRY, basicHTTP: true } } });
    });
    expect(w.registry.checks).to.deep.equal([]);
    expect(w.registry.pushes).to.have.members([`${REGISTRY}/ws-apps-db`, `${REGISTRY}/ws-apps-web`]);
    expect(w.f.kube.mustFind<BundleObject>('Bundle', 'ws', 'apps-db').spec.oci?.basicHTTP).to.equal(true);
    expect(w.bundleApplies().map((b) => b.metadata.name)).to.have.members(['apps-web', 'apps-db']);
  });

  it('records a remote chart on its Bundle when the version it resolved to changes, not at every commit', async () => {
    let published = '1.0.0';
    const fetched: string[] = [];
    const chartWrites = (w: World) => w.f.kube.writesOf('applyStatus', 'Bundle').filter((x) => x.fieldManager === CHARTS_STATUS_MANAGER);
    const w = new World();
    w.chartFetcher = async () => {
      fetched.push(published);
      const files = [{ path: 'Chart.yaml', content: Buffer.from(`apiVersion: v2\nname: web\nversion: ${published}\n`) }];
      return { name: 'web', version: published, files };
    };
    w.f.kube.recordApplyFields = true;
    w.repo({ ociRegistry: { reference: REGISTRY } });
    const tree = { ...TREE, 'web/fleet.yaml': 'helm:\n  repo: https://charts.example\n  chart: web\n  version: ^1.0.0\n' };
    const next = async (label: string, files: Tree) => {
      w.f.kube.writes.length = 0;
      w.git.push(URL, commit(label), files);
      w.f.setNow(new Date(w.f.ctx.now().getTime() + 10 * 60_000));
      expect((await w.reconcile()).error).to.equal(undefined);
    };
    await next('chart-first', tree);
    expect(chartWrites(w).map((x) => x.name)).to.deep.equal(['apps-web']);
    expect(w.f.kube.mustFind<BundleObject>('Bundle', 'ws', 'apps-web').status?.charts?.[0]?.version).to.equal('1.0.0');

    // Another bundle changes: the chart is fetched again (the constraint is resolved at every commit) and
    // resolves to the same version, so the Bundle's record stays as it is, unwritten.
    await next('chart-same', { ...tree, 'db/cm.yaml': cm('db-2') });
    expect(fetched).to.deep.equal(['1.0.0', '1.0.0']);
    expect(chartWrites(w), 'no charts status write when the record is unchanged').to.deep.equal([]);

    // 1.1.0 is published: the same constraint now resolves to it, and the record follows.
    published = '1.1.0';
    await next('chart-newer', { ...tree, 'db/cm.yaml': cm('db-3') });
    await w.git.dispose();
    expect(chartWrites(w).map((x) => x.name)).to.deep.equal(['apps-web']);
    expect(w.f.kube.mustFind<BundleObject>('Bundle', 'ws', 'apps-web').status?.charts?.[0]?.version).to.equal('1.1.0');
  });

  it('writes an unchanged bundle again when an option the GitRepo gave it is gone (here paused)', async () => {
    const w = new World();
    w.f.kube.recordApplyFields = true;
    w.repo({ ociRegistry: { reference: REGISTRY }, paused: true });
    w.git.push(URL, commit('paused-first'), TREE);
    expect((await w.reconcile()).error).to.equal(undefined);
    expect(w.f.kube.mustFind<BundleObject>('Bundle', 'ws', 'apps-db').spec.paused).to.equal(true);
    w.f.kube.writes.length = 0;
    const repo = w.stored;
    w.f.kube.seed<GitRepoObject>({ ...repo, metadata: { ...repo.metadata, generation: 2 }, spec: { ...repo.spec, paused: false } });
    w.git.push(URL, commit('unpaused'), TREE);
    w.f.setNow(LATER);
    expect((await w.reconcile()).error).to.equal(undefined);
    await w.git.dispose();
    expect(w.bundleApplies().map((b) => b.metadata.name)).to.have.members(['apps-web', 'apps-db']);
    expect(w.f.kube.mustFind<BundleObject>('Bundle', 'ws', 'apps-db').spec.paused).to.equal(undefined);
  });
});
