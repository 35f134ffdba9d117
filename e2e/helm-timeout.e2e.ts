import { expect } from 'chai';
import { stack } from './fixture.js';
import { waitFor } from '../stack/net.js';
import { ensureBinaries } from '../stack/binaries.js';
import { startFleet, type Fleet, fleetSuiteTeardown } from './support/processes.js';
import { applyCredentials, gitRepoObject, ociRegistryFor } from './support/fleetobjects.js';
import { API_VERSION, Label, type Bundle, type BundleDeployment, type GitRepo } from '../lib/api/index.js';
import { bundleName } from '../lib/bundle/discover.js';
import { KubeClient, type KubeObject } from '../lib/kube/client.js';
import { cond } from './support/kube.js';

/**
 * fleet.yaml `helm.timeoutSeconds` and `helm.atomic: false` (Fleet's reference values) through the real
 * controller and agent. The test stack has no node, so a Deployment with a replica never becomes ready:
 * - with `timeoutSeconds: 3`, once that passed the BundleDeployment says Deployed False, reason ReadyTimeout
 *   (state ErrApplied; errApplied on the Bundle, as Fleet reports a Helm wait that timed out), with a Warning
 *   Event; the objects stay applied;
 * - the same chart without a timeout stays Deployed True and not ready (ResourcesNotReady), however long;
 * - a version whose objects become ready (no replicas) is Ready again;
 * - with `helm.atomic: true`, a version that times out on the cluster is rolled back there: its
 *   BundleDeployment returns to the version it ran before (ready again) and the Bundle says why.
 */

type Obj<T> = T & KubeObject;
const WS = 'helm-timeout-e2e';
const GIT = 'helm-timeout';
const APP_NS = 'helm-timeout-app';
const CLUSTER = { name: 'downstream-1', labels: { env: 'dev' } };
const TIMEOUT = 240_000; // a ceiling for a loaded 2-core machine, not a measure

/** A chart with one Deployment of `replicas`; `helm` is extra fleet.yaml helm fields. */
function chartFiles(dir: string, release: string, replicas: number, helm: string): Record<string, string> {
  return {
    [`${dir}/fleet.yaml`]: `defaultNamespace: ${APP_NS}\nhelm:\n  releaseName: ${release}\n${helm}  values:\n    replicas: ${replicas}\n`,
    [`${dir}/Chart.yaml`]: `apiVersion: v2\nname: ${release}\nversion: 0.1.0\n`,
    [`${dir}/templates/deployment.yaml`]: [
      'apiVersion: apps/v1',
      'kind: Deployment',
      'metadata:',
      '  name: {{ .Release.Name }}',
      'spec:',
      '  replicas: {{ .Values.replicas }}',
      '  selector: {matchLabels: {app: "{{ .Release.Name }}"}}',
      '  template:',
      '    metadata: {labels: {app: "{{ .Release.Name }}"}}',
      '    spec: {containers: [{name: web, image: "registry.invalid/web:1"}]}',
      '',
    ].join('\n'),
  };
}

describe('helm.timeoutSeconds: a version not ready in time is reported failed', function () {
  this.timeout(15 * 60_000);
  let fleet: Fleet;
  let downstream: KubeClient;
  const git = () => stack().git!;
  const reg = () => stack().registry('tls-auth');

  async function deploymentOf(path: string): Promise<Obj<BundleDeployment> | undefined> {
    const { items } = await fleet.upstream.list<Obj<BundleDeployment>>(
      { apiVersion: API_VERSION, kind: 'BundleDeployment' },
      `${Label.BundleName}=${bundleName(GIT, path)}`,
    );
    return items[0];
  }

  /** Waits until the BundleDeployment of `path` has Deployed with `status` and `reason`; returns it. */
  async function deployedAs(path: string, status: string, reason: string): Promise<Obj<BundleDeployment>> {
    let last = '';
    return await waitFor(
      async () => {
        const bd = await deploymentOf(path);
        const c = cond(bd, 'Deployed');
        last = `${c?.status ?? '-'} ${c?.reason ?? ''} ${c?.message ?? ''}`;
        return (c?.status === status && c.reason === reason && bd) || undefined;
      },
      { what: `${path}: Deployed ${status} (${reason})`, timeoutMs: TIMEOUT, intervalMs: 1000, context: () => `last: ${last}; logs in ${fleet.logDir}` },
    );
  }

  before(async function () {
    this.timeout(8 * 60_000);
    const bin = await ensureBinaries();
    downstream = await KubeClient.fromKubeConfig(stack().cluster(CLUSTER.name).kubeConfig());
    process.env.FLOTILLA_HELM = bin.helm;
    try {
      fleet = await startFleet(stack(), { workspace: WS, clusters: [CLUSTER] });
    } finally {
      delete process.env.FLOTILLA_HELM;
    }
    fleet.secrets.push(git().password, reg().password ?? '');
    await applyCredentials(fleet.upstream, WS, WS, git(), reg());
    await git().createRepo(GIT);
    const commit = await git().commit(
      GIT,
      {
        ...chartFiles('limited', 'limited', 1, '  atomic: false\n  timeoutSeconds: 3\n'),
        ...chartFiles('unlimited', 'unlimited', 1, '  timeoutSeconds: 0\n'),
        ...chartFiles('atomic', 'atomic', 0, ''),
      },
      'two charts whose Deployment cannot become ready: one with helm.timeoutSeconds, one without; one that is ready',
    );
    await fleet.upstream.apply(
      gitRepoObject(GIT, WS, git(), GIT, { paths: ['limited', 'unlimited', 'atomic'], ociRegistry: ociRegistryFor(reg(), `${WS}/${GIT}`) }),
      WS,
    );
    // The GitRepo is not Ready (its bundles are not): wait for the commit to be built instead.
    await waitFor(
      async () => {
        const r = await fleet.upstream.get<Obj<GitRepo>>({ apiVersion: API_VERSION, kind: 'GitRepo', namespace: WS, name: GIT });
        return (r?.status?.commit === commit && cond(r, 'BundlesBuilt')?.status === 'True') || undefined;
      },
      { what: `GitRepo ${GIT} built at ${commit.slice(0, 12)}`, timeoutMs: TIMEOUT, context: () => `logs in ${fleet.logDir}` },
    );
  });

  fleetSuiteTeardown(() => fleet, { afterStop: async () => downstream?.close() });

  it('fails the version whose Deployment is not ready within timeoutSeconds, naming the timeout, and keeps it applied', async () => {
    const bd = await deployedAs('limited', 'False', 'ReadyTimeout');
    expect(cond(bd, 'Deployed')?.message).to.match(/^deployment \S+ applied, but 1 resource is not ready within helm\.timeoutSeconds \(3s\)/);
    expect(cond(bd, 'Ready')).to.include({ status: 'False', reason: 'ReadyTimeout' });
    expect(bd.status?.display?.state).to.equal('ErrApplied');
    expect(bd.status?.appliedDeploymentID).to.equal(bd.spec.deploymentID);
    expect(bd.status?.nonReadyStatus?.map((n) => `${n.kind} ${n.name}`)).to.deep.equal(['Deployment limited']);
    expect(await downstream.get({ apiVersion: 'apps/v1', kind: 'Deployment', namespace: APP_NS, name: 'limited' })).to.not.equal(undefined);
    await waitFor(
      async () => {
        const b = await fleet.upstream.get<Obj<Bundle>>({ apiVersion: API_VERSION, kind: 'Bundle', namespace: WS, name: bundleName(GIT, 'limited') });
        return (b?.status?.summary?.errApplied ?? 0) === 1 || undefined;
      },
      { what: 'the Bundle counts the cluster as errApplied', timeoutMs: TIMEOUT, context: () => `logs in ${fleet.logDir}` },
    );
    const events = await fleet.upstream.list<KubeObject & { reason?: string; type?: string }>({
      apiVersion: 'v1',
      kind: 'Event',
      namespace: bd.metadata.namespace,
    });
    expect(events.items.some((e) => e.reason === 'ReadyTimeout' && e.type === 'Warning')).to.equal(true);
  });

  it('leaves the same chart without a timeout deployed and not ready', async () => {
    const bd = await deployedAs('unlimited', 'True', 'Succeeded');
    expect(cond(bd, 'Ready')).to.include({ status: 'False', reason: 'ResourcesNotReady' });
    expect(bd.status?.display?.state).to.equal('NotReady');
  });

  it('is Ready again once a version whose objects are ready is applied', async () => {
    const commit = await git().commit(GIT, chartFiles('limited', 'limited', 0, '  atomic: false\n  timeoutSeconds: 3\n'), 'no replicas: ready at once');
    await waitFor(
      async () => {
        const bd = await deploymentOf('limited');
        return (bd?.status?.ready === true && cond(bd, 'Deployed')?.status === 'True') || undefined;
      },
      { what: `limited Ready at ${commit.slice(0, 12)}`, timeoutMs: TIMEOUT, context: () => `logs in ${fleet.logDir}` },
    );
  });

  it('with helm.atomic: true, rolls a cluster whose new version times out back to the version it ran, and says why', async () => {
    const ready = async (what: string, ok: (bd: Obj<BundleDeployment>) => boolean) =>
      await waitFor(
        async () => {
          const bd = await deploymentOf('atomic');
          return (bd && bd.status?.ready === true && cond(bd, 'Deployed')?.status === 'True' && ok(bd) && bd) || undefined;
        },
        { what, timeoutMs: TIMEOUT, context: () => `logs in ${fleet.logDir}` },
      );
    const v1 = await ready('atomic Ready at its first version (no replicas)', () => true);
    const v1Digest = v1.spec.oci?.digest;
    expect(v1Digest).to.be.a('string');
    // A new version (new contents: a version is the bundle's files; values alone are options) whose Deployment cannot start.
    const v2 = chartFiles('atomic', 'atomic', 0, '  atomic: true\n  timeoutSeconds: 3\n');
    v2['atomic/templates/deployment.yaml'] = (v2['atomic/templates/deployment.yaml'] ?? '').replace('{{ .Values.replicas }}', '1');
    await git().commit(GIT, v2, 'a replica that cannot start, with helm.atomic');
    // The new version reaches the cluster and fails there (ReadyTimeout; the controller reacts at once, so that state
    // may be too short to see here: the BundleDeployment's record of the rollback names it), and the cluster's
    // BundleDeployment returns to the first version's contents, ready again.
    const back = await ready(
      'atomic rolled back to its first version and Ready',
      (bd) => bd.spec.oci?.digest === v1Digest && bd.metadata.annotations?.['flotilla.dev/atomic-rolled-back'] !== undefined,
    );
    const note = JSON.parse(back.metadata.annotations?.['flotilla.dev/atomic-rolled-back'] ?? '{}') as { reason?: string; to?: number };
    expect(note.reason).to.equal('ReadyTimeout');
    const deployment = await downstream.get<KubeObject & { spec?: { replicas?: number } }>({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      namespace: APP_NS,
      name: 'atomic',
    });
    expect(deployment?.spec?.replicas).to.equal(0);
    const bundle = await waitFor(
      async () => {
        const b = await fleet.upstream.get<Obj<Bundle>>({ apiVersion: API_VERSION, kind: 'Bundle', namespace: WS, name: bundleName(GIT, 'atomic') });
        return (cond(b, 'Ready')?.reason === 'RolloutFailed' && b) || undefined;
      },
      { what: 'the Bundle says the cluster was rolled back', timeoutMs: TIMEOUT, context: () => `logs in ${fleet.logDir}` },
    );
    expect(cond(bundle, 'Ready')?.status).to.equal('False');
    expect(cond(bundle, 'Ready')?.message).to.match(
      new RegExp(
        `^helm\\.atomic: 1 cluster\\(s\\) rolled back from v\\d+ to v${note.to} \\(${CLUSTER.name}\\): ReadyTimeout: .*not ready within helm\\.timeoutSeconds \\(3s\\)`,
      ),
    );
    // It stays back: the next passes (the Bundle was written again since) keep the first version.
    const again = await deploymentOf('atomic');
    expect(again?.spec.oci?.digest).to.equal(v1Digest);
    expect(again?.metadata.generation).to.equal(back.metadata.generation);
  });
});
