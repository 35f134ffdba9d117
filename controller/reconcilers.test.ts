import { expect } from 'chai';
import { API_VERSION, Annotation, Finalizer, Label, type Bundle, type BundleDeployment, type GitRepo } from '../lib/api/index.js';
import type { KubeObject } from '../lib/kube/client.js';
import { bundleObject, pollDue, pollingIntervalMs } from './gitrepo.js';
import {
  agentCredentialData,
  agentMissesCredentials,
  baseOptions,
  bundleDeploymentSpec,
  deploymentUpToDate,
  bundleSummary,
  desiredDeployment,
  ociSecretName,
} from './bundle.js';
import { bundleBehind, bundleDeploymentState, rollUpGitRepo, summarize, worstState } from './rollup.js';

const repo = (spec: Partial<GitRepo['spec']>, status?: GitRepo['status'], generation = 1): GitRepo & KubeObject =>
  ({
    apiVersion: API_VERSION,
    kind: 'GitRepo',
    metadata: { name: 'apps', namespace: 'ws', uid: 'u1', generation },
    spec: { repo: 'https://git.example/apps.git', ...spec },
    ...(status ? { status } : {}),
  }) as GitRepo & KubeObject;

describe('GitRepo polling', () => {
  const now = new Date('2026-01-01T00:01:00Z');
  const cases: { name: string; r: GitRepo; due: boolean }[] = [
    { name: 'polls a GitRepo never fetched', r: repo({}), due: true },
    { name: 'polls after a spec change', r: repo({}, { observedGeneration: 1, commit: 'a', lastPollingTime: '2026-01-01T00:00:59Z' }, 2), due: true },
    {
      name: 'does not poll within the interval',
      r: repo({ pollingInterval: '30s' }, { observedGeneration: 1, commit: 'a', lastPollingTime: '2026-01-01T00:00:45Z' }),
      due: false,
    },
    {
      name: 'polls once the interval has passed',
      r: repo({ pollingInterval: '10s' }, { observedGeneration: 1, commit: 'a', lastPollingTime: '2026-01-01T00:00:45Z' }),
      due: true,
    },
    {
      name: 'never polls by time with disablePolling',
      r: repo({ disablePolling: true }, { observedGeneration: 1, commit: 'a', lastPollingTime: '2025-01-01T00:00:00Z' }),
      due: false,
    },
  ];
  for (const c of cases) it(c.name, () => expect(pollDue(c.r, now)).to.equal(c.due));

  it("uses Fleet's 15 s when no interval is set", () => {
    expect(pollingIntervalMs(repo({}))).to.equal(15_000);
    expect(pollingIntervalMs(repo({ pollingInterval: '1m30s' }))).to.equal(90_000);
  });
});

describe('Bundle objects built from a GitRepo', () => {
  const loaded = {
    name: 'apps-web',
    dir: 'web',
    files: [],
    fleetYaml: { defaultNamespace: 'web', labels: { team: 'a' }, targetCustomizations: [{ name: 'prod', clusterSelector: { matchLabels: { env: 'prod' } } }] },
  };

  it('carries the artifact, not the resources, in OCI mode, with GitRepo targets as restrictions', () => {
    const oci = { reference: `r.example/x@sha256:${'a'.repeat(64)}`, digest: `sha256:${'a'.repeat(64)}` };
    const b = bundleObject(repo({ targets: [{ clusterGroup: 'prod' }], keepResources: true }), loaded, { oci }, 'cid', 'c0ffee');
    expect(b.spec.oci).to.deep.equal(oci);
    expect(b.spec.resources).to.equal(undefined);
    expect(b.spec.targetRestrictions).to.deep.equal([{ clusterGroup: 'prod' }]);
    expect(b.spec.targets?.[0]?.name).to.equal('prod');
    expect(b.spec.defaultNamespace).to.equal('web');
    expect(b.spec.keepResources).to.equal(true);
    expect(b.metadata.labels).to.include({ team: 'a', [Label.RepoName]: 'apps', [Label.BundleName]: 'apps-web' });
    expect(b.metadata.annotations?.[Annotation.Commit]).to.equal('c0ffee');
    expect(b.metadata.ownerReferences?.[0]).to.include({ kind: 'GitRepo', name: 'apps', uid: 'u1', controller: true });
  });

  it("carries the GitRepo's paused and forceSyncGeneration", () => {
    const b = bundleObject(repo({ paused: true, forceSyncGeneration: 4 }), loaded, { resources: [] }, 'cid', 'c0ffee');
    expect(b.spec.paused).to.equal(true);
    expect(b.spec.forceSyncGeneration).to.equal(4);
  });

  it('carries inline resources in etcd mode', () => {
    const b = bundleObject(repo({}), loaded, { resources: [{ name: 'a.yaml', content: 'x' }] }, 'cid', 'c0ffee');
    expect(b.spec.resources).to.have.length(1);
    expect(b.spec.oci).to.equal(undefined);
  });
});

describe('BundleDeployment specs', () => {
  const bundle = (spec: Partial<Bundle['spec']>): Bundle =>
    ({
      apiVersion: API_VERSION,
      kind: 'Bundle',
      metadata: { name: 'b', namespace: 'ws' },
      spec: { contentsID: 'abc', oci: { reference: `r/x@sha256:${'b'.repeat(64)}`, digest: `sha256:${'b'.repeat(64)}`, secretName: 'push-creds' }, ...spec },
    }) as Bundle;

  it('points the agent at its own credential Secret and changes the deployment ID with the options', () => {
    const a = bundleDeploymentSpec(bundle({}), { defaultNamespace: 'x' }, 'b');
    const b = bundleDeploymentSpec(bundle({}), { defaultNamespace: 'y' }, 'b');
    expect(a.oci?.secretName).to.equal(ociSecretName('b'));
    expect(a.deploymentID).to.not.equal(b.deploymentID);
  });

  it('stages a new version of a paused bundle and keeps the applied one', () => {
    const existing = { spec: bundleDeploymentSpec(bundle({}), {}, 'b') } as BundleDeployment;
    const paused = bundleDeploymentSpec(bundle({ paused: true, contentsID: 'new' }), {}, 'b', existing);
    expect(paused.deploymentID).to.equal(existing.spec.deploymentID);
    expect(paused.stagedDeploymentID).to.not.equal(existing.spec.deploymentID);
    expect(paused.paused).to.equal(true);
  });

  it('takes only deployment options from a Bundle spec', () => {
    expect(baseOptions(bundle({ defaultNamespace: 'd', targets: [], dependsOn: [], forceSyncGeneration: 2 }).spec)).to.deep.equal({ defaultNamespace: 'd' });
  });

  it('hands forceSyncGeneration to the agent without changing the deployment ID', () => {
    const before = bundleDeploymentSpec(bundle({}), {}, 'b');
    const forced = bundleDeploymentSpec(bundle({ forceSyncGeneration: 3 }), {}, 'b');
    expect(forced.forceSyncGeneration).to.equal(3);
    expect(before.forceSyncGeneration).to.equal(undefined);
    expect(forced.deploymentID).to.equal(before.deploymentID);
  });

  const creds: { name: string; type?: string; data: Record<string, string>; expected: Record<string, string> }[] = [
    {
      name: 'hands agents the read-only credentials when there are some',
      data: { username: 'push', password: 'p', agentUsername: 'pull', agentPassword: 'q' },
      expected: { username: 'pull', password: 'q' },
    },
    { name: 'falls back to the push credentials', data: { username: 'push', password: 'p' }, expected: { username: 'push', password: 'p' } },
    {
      name: 'copies a dockerconfigjson as it is',
      type: 'kubernetes.io/dockerconfigjson',
      data: { '.dockerconfigjson': '{}' },
      expected: { '.dockerconfigjson': '{}' },
    },
  ];
  for (const c of creds) it(c.name, () => expect(agentCredentialData(c.type, c.data).stringData).to.deep.equal(c.expected));
});

describe('BundleDeployment writes: only what changed', () => {
  const bundle = (spec: Partial<Bundle['spec']>, labels: Record<string, string> = { [Label.RepoName]: 'apps' }) =>
    ({
      apiVersion: API_VERSION,
      kind: 'Bundle',
      metadata: { name: 'b', namespace: 'ws', labels },
      spec: { contentsID: 'abc', resources: [{ name: 'cm.yaml', content: 'x' }], ...spec },
    }) as Bundle & KubeObject;
  /** The object as the informer would hold it after the apply: the server adds metadata and status. */
  const asStored = (bd: BundleDeployment & KubeObject, status: unknown = { ready: true }) =>
    ({
      ...bd,
      metadata: { ...bd.metadata, uid: 'u1', resourceVersion: '7', generation: 1, labels: { ...bd.metadata.labels, extra: 'kept' } },
      status,
    }) as BundleDeployment & KubeObject;

  it('finds a stored BundleDeployment up to date whatever its status and extra labels', () => {
    const desired = desiredDeployment(bundle({}), 'c1', 'cluster-ns', { defaultNamespace: 'x' }, undefined);
    expect(deploymentUpToDate(asStored(desired), desired)).to.equal(true);
    expect(deploymentUpToDate(asStored(desired, { ready: false, conditions: [] }), desired)).to.equal(true);
  });

  const cases: { name: string; change: (b: Bundle & KubeObject) => Bundle & KubeObject; options?: Record<string, unknown> }[] = [
    { name: 'new content', change: (b) => ({ ...b, spec: { ...b.spec, contentsID: 'def' } }) },
    { name: 'other options for the cluster', change: (b) => b, options: { defaultNamespace: 'y' } },
    { name: 'a forceSyncGeneration bump', change: (b) => ({ ...b, spec: { ...b.spec, forceSyncGeneration: 2 } }) },
    { name: 'a new repo label', change: (b) => ({ ...b, metadata: { ...b.metadata, labels: { [Label.RepoName]: 'other' } } }) },
    { name: 'pausing', change: (b) => ({ ...b, spec: { ...b.spec, paused: true } }) },
  ];
  for (const c of cases) {
    it(`writes again on ${c.name}`, () => {
      const stored = asStored(desiredDeployment(bundle({}), 'c1', 'cluster-ns', { defaultNamespace: 'x' }, undefined));
      const next = desiredDeployment(c.change(bundle({})), 'c1', 'cluster-ns', c.options ?? { defaultNamespace: 'x' }, stored);
      expect(deploymentUpToDate(stored, next)).to.equal(false);
    });
  }

  it('copies the agent credentials again when the agent reports their Secret missing', () => {
    const bd = (reason: string, status = 'False') =>
      ({ status: { conditions: [{ type: 'Deployed', status, reason, message: '' }] } }) as unknown as BundleDeployment;
    expect(agentMissesCredentials(bd('SecretNotFound'))).to.equal(true);
    expect(agentMissesCredentials(bd('RegistryUnreachable'))).to.equal(false);
    expect(agentMissesCredentials(bd('SecretNotFound', 'True'))).to.equal(false);
    expect(agentMissesCredentials(undefined)).to.equal(false);
  });

  it("writes the agent's finalizer for a cluster with a registered agent, and never takes it off again", () => {
    const fin = Finalizer.BundleDeployment;
    expect(desiredDeployment(bundle({}), 'c1', 'cluster-ns', {}, undefined).metadata.finalizers, 'no agent yet: nothing to prune').to.equal(undefined);
    expect(desiredDeployment(bundle({}), 'c1', 'cluster-ns', {}, undefined, true).metadata.finalizers).to.deep.equal([fin]);
    // The agent added it itself (written before it registered), or an earlier apply did: a later apply keeps it
    // even when the Cluster no longer shows its agent, or server-side apply would remove it.
    const held = asStored(desiredDeployment(bundle({}), 'c1', 'cluster-ns', {}, undefined));
    held.metadata.finalizers = [fin];
    const next = desiredDeployment(bundle({}), 'c1', 'cluster-ns', {}, held, false);
    expect(next.metadata.finalizers).to.deep.equal([fin]);
    // The finalizer alone is no reason to write again: the agent adds it when it is missing.
    expect(deploymentUpToDate(asStored(desiredDeployment(bundle({}), 'c1', 'cluster-ns', {}, undefined)), next)).to.equal(true);
  });

  it('writes a BundleDeployment that does not exist or is being deleted', () => {
    const desired = desiredDeployment(bundle({}), 'c1', 'cluster-ns', {}, undefined);
    expect(deploymentUpToDate(undefined, desired)).to.equal(false);
    const deleting = asStored(desired);
    deleting.metadata.deletionTimestamp = '2026-01-01T00:00:00Z';
    expect(deploymentUpToDate(deleting, desired)).to.equal(false);
  });
});

describe('status roll-up', () => {
  const bd = (name: string, ns: string, status: BundleDeployment['status'], deploymentID = 'd1'): BundleDeployment =>
    ({
      apiVersion: API_VERSION,
      kind: 'BundleDeployment',
      metadata: { name, namespace: ns },
      spec: { deploymentID },
      ...(status ? { status } : {}),
    }) as BundleDeployment;
  const ready = {
    appliedDeploymentID: 'd1',
    ready: true,
    conditions: [{ type: 'Ready', status: 'True' as const, reason: 'Succeeded', message: '', lastTransitionTime: '2026-01-01T00:00:00Z' }],
  };

  const states: { name: string; b: BundleDeployment; state: string }[] = [
    { name: 'Pending before the agent reports', b: bd('a', 'n', undefined), state: 'Pending' },
    { name: 'WaitApplied while an older version is applied', b: bd('a', 'n', { ...ready, appliedDeploymentID: 'd0' }), state: 'WaitApplied' },
    { name: 'Ready when applied and ready', b: bd('a', 'n', ready), state: 'Ready' },
    { name: 'Modified when drifted', b: bd('a', 'n', { ...ready, nonModified: false }), state: 'Modified' },
    { name: 'NotReady when applied but not ready', b: bd('a', 'n', { appliedDeploymentID: 'd1' }), state: 'NotReady' },
    {
      name: 'OutOfSync when paused with a newer version staged (as Fleet)',
      b: { ...bd('a', 'n', ready), spec: { deploymentID: 'd1', paused: true, stagedDeploymentID: 'd2' } },
      state: 'OutOfSync',
    },
    {
      name: 'Ready when paused with nothing new staged',
      b: { ...bd('a', 'n', ready), spec: { deploymentID: 'd1', paused: true, stagedDeploymentID: 'd1' } },
      state: 'Ready',
    },
  ];
  for (const c of states) it(`says ${c.name}`, () => expect(bundleDeploymentState(c.b)).to.equal(c.state));

  it('bounds the non-ready list whatever the number of clusters', () => {
    const many = Array.from({ length: 50 }, (_, i) => bd(`b${i}`, `c${i}`, undefined));
    const s = summarize(many, (b) => b.metadata.namespace ?? '');
    expect(s.pending).to.equal(50);
    expect(s.nonReadyResources).to.have.length(10);
    expect(worstState(s)).to.equal('Pending');
  });

  it('counts clusters where every bundle is ready', () => {
    const r = rollUpGitRepo([{} as Bundle], [bd('a', 'c1', ready), bd('b', 'c1', ready), bd('a', 'c2', ready), bd('b', 'c2', undefined)]);
    expect(r.readyClusters).to.equal(1);
    expect(r.desiredReadyClusters).to.equal(2);
    expect(r.display?.readyBundleDeployments).to.equal('3/4');
  });

  const bundle = (generation: number, observedGeneration?: number) =>
    ({ metadata: { name: 'app', generation }, ...(observedGeneration === undefined ? {} : { status: { observedGeneration } }) }) as unknown as Bundle;
  const gitRepoStates: { name: string; bundles: Bundle[]; bds: BundleDeployment[]; state: string }[] = [
    { name: 'Ready when every Bundle was acted on and its deployments are ready', bundles: [bundle(2, 2)], bds: [bd('app', 'c1', ready)], state: 'Ready' },
    {
      name: 'not Ready at a new commit while a changed Bundle still has the deployments of its old content',
      bundles: [bundle(3, 2)],
      bds: [bd('app', 'c1', ready)],
      state: 'WaitApplied',
    },
    { name: 'not NoTargets while a new Bundle has no deployments yet', bundles: [bundle(1)], bds: [], state: 'WaitApplied' },
    { name: "the deployments' own problem first", bundles: [bundle(3, 2)], bds: [bd('app', 'c1', undefined)], state: 'Pending' },
  ];
  for (const c of gitRepoStates) it(`GitRepo: ${c.name}`, () => expect(rollUpGitRepo(c.bundles, c.bds).display?.state).to.equal(c.state));
});

describe('Ready means ready: roll-ups compare with what the current Bundle implies', () => {
  const applied = (appliedDeploymentID: string, specID: string, extra: Partial<NonNullable<BundleDeployment['status']>> = {}): BundleDeployment =>
    ({
      apiVersion: API_VERSION,
      kind: 'BundleDeployment',
      metadata: { name: 'app', namespace: 'c1' },
      spec: { deploymentID: specID },
      status: {
        appliedDeploymentID,
        ready: true,
        conditions: [{ type: 'Ready', status: 'True', reason: 'Succeeded', message: '', lastTransitionTime: '2026-01-01T00:00:00Z' }],
        ...extra,
      },
    }) as BundleDeployment;
  const cases: { name: string; bd: BundleDeployment; expected: { deploymentID: string; forceSyncGeneration?: number }; state: string }[] = [
    {
      name: 'a cached BundleDeployment still Ready for the previous content is WaitApplied',
      bd: applied('old', 'old'),
      expected: { deploymentID: 'new' },
      state: 'WaitApplied',
    },
    { name: 'Ready once the agent reports the new deployment ID', bd: applied('new', 'old'), expected: { deploymentID: 'new' }, state: 'Ready' },
    {
      name: 'a forced re-apply waits for the agent to report that sync generation',
      bd: applied('new', 'new', { syncGeneration: 1 }),
      expected: { deploymentID: 'new', forceSyncGeneration: 2 },
      state: 'WaitApplied',
    },
    {
      name: 'a forced re-apply the agent reported is Ready',
      bd: applied('new', 'new', { syncGeneration: 2 }),
      expected: { deploymentID: 'new', forceSyncGeneration: 2 },
      state: 'Ready',
    },
  ];
  for (const c of cases) it(c.name, () => expect(bundleDeploymentState(c.bd, c.expected)).to.equal(c.state));

  const readyCond = (generation: number) => ({
    type: 'Ready',
    status: 'True' as const,
    reason: 'Succeeded',
    message: '',
    lastTransitionTime: '2026-01-01T00:00:00Z',
    observedGeneration: generation,
  });
  const bundleAt = (commit: string, generation: number, status: Partial<NonNullable<Bundle['status']>>, extra: Record<string, unknown> = {}) =>
    ({
      metadata: { name: 'app', generation, annotations: { [Annotation.Commit]: commit }, ...extra },
      spec: { contentsID: 'c2' },
      status,
    }) as unknown as Bundle;
  const behind: { name: string; bundle: Bundle; why: RegExp | undefined }[] = [
    {
      name: 'a Bundle of the commit, Ready for its generation and contents',
      bundle: bundleAt('b', 2, { observedGeneration: 2, observedContentsID: 'c2', conditions: [readyCond(2)] }),
      why: undefined,
    },
    {
      name: 'a Bundle whose contents a previous commit gave it (an unchanged bundle is not written again)',
      bundle: bundleAt('a', 2, { observedGeneration: 2, observedContentsID: 'c2', conditions: [readyCond(2)] }),
      why: undefined,
    },
    {
      name: 'a Bundle whose status describes older contents',
      bundle: bundleAt('b', 2, { observedGeneration: 2, observedContentsID: 'c1', conditions: [readyCond(2)] }),
      why: /not updated/,
    },
    {
      name: 'a Bundle whose Ready is from an older generation',
      bundle: bundleAt('b', 3, { observedGeneration: 3, observedContentsID: 'c2', conditions: [readyCond(2)] }),
      why: /not updated/,
    },
    {
      name: 'a Bundle being deleted',
      bundle: bundleAt('b', 2, { observedGeneration: 2, observedContentsID: 'c2', conditions: [readyCond(2)] }, { deletionTimestamp: 'x' }),
      why: /removed/,
    },
  ];
  for (const c of behind) {
    it(`GitRepo at commit b: ${c.name} ${c.why ? 'holds Ready back' : 'counts'}`, () => {
      const why = bundleBehind(c.bundle);
      if (c.why) expect(why).to.match(c.why);
      else expect(why).to.equal(undefined);
    });
  }

  it('a GitRepo is not Ready while a Bundle has new contents its status does not describe yet, although every BundleDeployment is', () => {
    const written = bundleAt('b', 3, { observedGeneration: 2, observedContentsID: 'c1', conditions: [readyCond(2)] });
    const r = rollUpGitRepo([written], [applied('d', 'd')]);
    expect(r.display?.state).to.equal('WaitApplied');
  });

  it('a Bundle counts a targeted cluster whose BundleDeployment the cache does not hold yet as Pending', () => {
    const b = {
      apiVersion: API_VERSION,
      kind: 'Bundle',
      metadata: { name: 'app', namespace: 'ws' },
      spec: { contentsID: 'c', resources: [] },
    } as unknown as Bundle & KubeObject;
    const targets = ['c1', 'c2'].map((cluster) => ({
      cluster,
      clusterNs: `ns-${cluster}`,
      options: {},
      desired: desiredDeployment(b, cluster, `ns-${cluster}`, {}, undefined),
    }));
    const first = targets[0]!.desired;
    const onlyFirst = (key: string) =>
      key === `ns-c1/app` ? ({ ...first, status: { appliedDeploymentID: first.spec.deploymentID, ready: true } } as typeof first) : undefined;
    const summary = bundleSummary(targets, onlyFirst);
    expect(summary.ready).to.equal(1);
    expect(summary.pending).to.equal(1);
    expect(worstState(summary)).to.equal('Pending');
  });
});
