import { expect } from 'chai';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import yaml from 'js-yaml';
import { stack } from './fixture.js';
import { waitFor } from '../stack/net.js';
import { ensureBinaries, type StackBinaries } from '../stack/binaries.js';
import { startFleet, fleetSuiteTeardown, type Fleet } from './support/processes.js';
import { filesUnder } from './support/bundlefiles.js';
import { applyCredentials, gitRepoObject, gitRepoReadyAt, ociRegistryFor } from './support/fleetobjects.js';
import { API_VERSION } from '../lib/api/index.js';
import { bundleName } from '../lib/bundle/discover.js';
import { KubeClient, type KubeObject } from '../lib/kube/client.js';
import { runRender } from '../cli/render.js';
import { cond, type Cond } from './support/kube.js';

/**
 * Helm and Kustomize bundles through the real controller and agent processes, with the real helm and
 * kustomize (the agents find them through FLOTILLA_HELM / FLOTILLA_KUSTOMIZE), from git through the TLS +
 * basic-auth registry to two downstream clusters with different labels:
 * - the test chart (e2e/testdata/helm/chart) with a value from a cluster label: each cluster gets its own;
 *   its crds/ are applied before the Widget that uses them; the pre hook (hook-succeeded) ran and was
 *   deleted, the post hook stays, the test hook never runs; `.Capabilities.KubeVersion` is the cluster's;
 * - `flotilla render` for each cluster's labels prints what the agent applied;
 * - an upgrade that removes a template prunes its object downstream, and keeps the CRD;
 * - a Kustomize bundle whose per-target kustomize.dir gives the prod cluster the prod overlay;
 * - a template that fails: the Bundle says which file, nothing of that version is applied.
 */

type Obj<T> = T & KubeObject;
type Cm = KubeObject & { data?: Record<string, string> };
const WS = 'helm-e2e';
const REPO = 'helm-e2e-repo';
const APP_NS = 'helm-e2e-app';
const KUST_NS = 'helm-e2e-kust';
const CLUSTERS = [
  { name: 'downstream-1', labels: { env: 'dev', color: 'green' } },
  { name: 'downstream-2', labels: { env: 'prod', color: 'red' } },
];
const TIMEOUT = 240_000; // a ceiling for a loaded 2-core machine, not a measure
const TESTDATA = join(dirname(fileURLToPath(import.meta.url)), 'testdata');
const CHART_FLEET_YAML = `defaultNamespace: ${APP_NS}\nhelm:\n  releaseName: web\n  values:\n    color: global.fleet.clusterLabels.color\n    replicas: 2\n`;
const KUST_FLEET_YAML = `namespace: ${KUST_NS}\nkustomize:\n  dir: base\ntargetCustomizations:\n  - name: prod\n    clusterSelector:\n      matchLabels:\n        env: prod\n    kustomize:\n      dir: overlays/prod\n`;

describe('Helm and Kustomize bundles through the controller and agent processes', function () {
  this.timeout(20 * 60_000);
  let fleet: Fleet;
  let bin: StackBinaries;
  let repoFiles: Record<string, string | Buffer | null>;
  let checkout: string;
  const downstream: Record<string, KubeClient> = {};
  const git = () => stack().git!;
  const reg = () => stack().registry('tls-auth');

  /** Writes the repository's files to a local folder too, for `flotilla render`. */
  async function writeCheckout(files: Record<string, string | Buffer | null>): Promise<void> {
    await rm(checkout, { recursive: true, force: true });
    for (const [path, content] of Object.entries(files)) {
      if (content === null) continue;
      await mkdir(dirname(join(checkout, path)), { recursive: true });
      await writeFile(join(checkout, path), content);
    }
  }

  const converged = (commit: string) => gitRepoReadyAt(fleet, WS, REPO, commit, TIMEOUT);

  const cm = (cluster: string, namespace: string, name: string) => downstream[cluster]!.get<Cm>({ apiVersion: 'v1', kind: 'ConfigMap', namespace, name });

  before(async function () {
    this.timeout(8 * 60_000);
    bin = await ensureBinaries(); // cached: reads this branch's pinned helm and kustomize
    checkout = await mkdtemp(join(tmpdir(), 'helm-e2e-checkout-'));
    for (const c of CLUSTERS) downstream[c.name] = await KubeClient.fromKubeConfig(stack().cluster(c.name).kubeConfig());
    // The processes inherit the environment at spawn; set only while startFleet spawns them.
    process.env.FLOTILLA_HELM = bin.helm;
    process.env.FLOTILLA_KUSTOMIZE = bin.kustomize;
    try {
      fleet = await startFleet(stack(), { workspace: WS, clusters: CLUSTERS });
    } finally {
      delete process.env.FLOTILLA_HELM;
      delete process.env.FLOTILLA_KUSTOMIZE;
    }
    await applyCredentials(fleet.upstream, WS, WS, git(), reg());
    repoFiles = { 'chart/fleet.yaml': CHART_FLEET_YAML, 'kust/fleet.yaml': KUST_FLEET_YAML };
    for (const f of await filesUnder(join(TESTDATA, 'helm', 'chart'))) repoFiles[`chart/${f.path}`] = f.content;
    for (const f of await filesUnder(join(TESTDATA, 'kustomize'))) if (f.path !== 'fleet.yaml') repoFiles[`kust/${f.path}`] = f.content;
    await git().createRepo(REPO);
    const commit = await git().commit(REPO, repoFiles, 'a chart and a kustomization');
    await writeCheckout(repoFiles);
    await fleet.upstream.apply(gitRepoObject(REPO, WS, git(), REPO, { paths: ['chart', 'kust'], ociRegistry: ociRegistryFor(reg(), 'helm-e2e') }), WS);
    await converged(commit);
  });

  fleetSuiteTeardown(() => fleet, {
    afterStop: async () => {
      for (const c of Object.values(downstream)) await c.close();
      await rm(checkout, { recursive: true, force: true });
    },
  });

  it("deploys the chart to both clusters with each cluster's label value and its Kubernetes version", async () => {
    for (const c of CLUSTERS) {
      const live = await cm(c.name, APP_NS, 'web-flotilla-test');
      expect(live?.data, c.name).to.deep.equal({ color: c.labels.color, replicas: '2', kubeVersion: bin.k8sVersion, widgets: 'served' });
    }
  });

  it("applies the chart's crds/ first: the CRD exists and was created before the Widget that uses it", async () => {
    for (const c of CLUSTERS) {
      const crd = await downstream[c.name]!.get({
        apiVersion: 'apiextensions.k8s.io/v1',
        kind: 'CustomResourceDefinition',
        name: 'widgets.example.flotilla.dev',
      });
      const widget = await downstream[c.name]!.get<KubeObject & { spec?: { size?: number } }>({
        apiVersion: 'example.flotilla.dev/v1',
        kind: 'Widget',
        namespace: APP_NS,
        name: 'web-flotilla-test',
      });
      expect(crd, c.name).to.not.equal(undefined);
      expect(widget?.spec?.size, c.name).to.equal(2);
      expect(Date.parse(crd!.metadata.creationTimestamp as string)).to.be.at.most(Date.parse(widget!.metadata.creationTimestamp as string));
    }
  });

  it('runs install hooks with their delete policies and never the test hook', async () => {
    for (const c of CLUSTERS) {
      expect(await cm(c.name, APP_NS, 'web-flotilla-test-pre'), `${c.name}: the pre hook is deleted once it succeeded`).to.equal(undefined);
      expect((await cm(c.name, APP_NS, 'web-flotilla-test-post'))?.data, c.name).to.deep.equal({ phase: 'post' });
      expect(await downstream[c.name]!.get({ apiVersion: 'v1', kind: 'Pod', namespace: APP_NS, name: 'web-flotilla-test-test' }), c.name).to.equal(undefined);
    }
  });

  it("builds the Kustomize bundle from each cluster's kustomize.dir", async () => {
    expect((await cm('downstream-1', KUST_NS, 'kust-config'))?.data).to.deep.equal({ env: 'base' });
    expect(await cm('downstream-1', KUST_NS, 'prod-kust-config')).to.equal(undefined);
    expect((await cm('downstream-2', KUST_NS, 'prod-kust-config'))?.data).to.deep.equal({ env: 'prod' });
    expect((await cm('downstream-2', KUST_NS, 'prod-prod-generated'))?.data).to.deep.equal({ tier: 'prod' });
    expect(await cm('downstream-2', KUST_NS, 'kust-config')).to.equal(undefined);
  });

  it("flotilla render prints, for each cluster's labels, what the agent applied", async () => {
    process.env.FLOTILLA_HELM = bin.helm;
    process.env.FLOTILLA_KUSTOMIZE = bin.kustomize;
    try {
      for (const c of CLUSTERS) {
        for (const dir of ['chart', 'kust']) {
          let stdout = '';
          let stderr = '';
          const labels = Object.entries(c.labels).flatMap(([k, v]) => ['-l', `${k}=${v}`]);
          const code = await runRender(
            [join(checkout, dir), ...labels, '-n', c.name, '--bundle-name', bundleName(REPO, dir), '--kube-version', bin.k8sVersion],
            { stdout: { write: (s: string) => (stdout += s) }, stderr: { write: (s: string) => (stderr += s) } },
          );
          expect(code, stderr).to.equal(0);
          const printed = (yaml.loadAll(stdout) as KubeObject[]).filter((o) => !o.metadata.annotations?.['helm.sh/hook']);
          expect(printed.length, `${c.name} ${dir}`).to.be.greaterThan(0);
          for (const o of printed) {
            const live = await downstream[c.name]!.get<KubeObject>({
              apiVersion: o.apiVersion,
              kind: o.kind,
              namespace: o.metadata.namespace,
              name: o.metadata.name,
            });
            const what = `${c.name}: ${o.kind} ${o.metadata.namespace ?? ''}/${o.metadata.name}`;
            expect(live, what).to.not.equal(undefined);
            expect(live!.metadata.labels ?? {}, what).to.include(o.metadata.labels ?? {});
            for (const field of ['data', 'spec'] as const)
              if (field in o && o.kind !== 'CustomResourceDefinition') expect(live![field], what).to.deep.equal(o[field]);
          }
        }
      }
    } finally {
      delete process.env.FLOTILLA_HELM;
      delete process.env.FLOTILLA_KUSTOMIZE;
    }
  });

  it('prunes the object of a template an upgrade removes, and keeps the CRD', async () => {
    const upgrade = {
      ...repoFiles,
      'chart/templates/extra.yaml': null,
      'chart/Chart.yaml': String(repoFiles['chart/Chart.yaml']).replace('version: 0.1.0', 'version: 0.2.0'),
    };
    const commit = await git().commit(REPO, upgrade, 'chart 0.2.0 without extra.yaml');
    await converged(commit);
    for (const c of CLUSTERS) {
      await waitFor(async () => (await cm(c.name, APP_NS, 'web-flotilla-test-extra')) === undefined, {
        what: `${c.name}: the extra ConfigMap pruned`,
        timeoutMs: TIMEOUT,
        intervalMs: 1000,
        context: () => `logs in ${fleet.logDir}`,
      });
      expect((await cm(c.name, APP_NS, 'web-flotilla-test'))?.data?.color).to.equal(c.labels.color);
      expect(
        await downstream[c.name]!.get({ apiVersion: 'apiextensions.k8s.io/v1', kind: 'CustomResourceDefinition', name: 'widgets.example.flotilla.dev' }),
        c.name,
      ).to.not.equal(undefined);
    }
  });

  it('refuses a template that fails on every cluster, naming the file, and keeps the last good objects', async () => {
    const before = Object.fromEntries(
      await Promise.all(CLUSTERS.map(async (c) => [c.name, (await cm(c.name, APP_NS, 'web-flotilla-test'))?.metadata.resourceVersion])),
    );
    const good = { ...repoFiles, 'chart/templates/extra.yaml': null };
    await git().commit(
      REPO,
      { ...good, 'chart/templates/broken.yaml': '{{ .Values.nope.deeper }}\n', 'chart/values.yaml': 'color: blue\nreplicas: 5\nextra: true\n' },
      'a broken template',
    );
    let seen = '';
    await waitFor(
      async () => {
        const b = await fleet.upstream.get<Obj<{ status?: { conditions?: Cond[] } }>>({
          apiVersion: API_VERSION,
          kind: 'Bundle',
          namespace: WS,
          name: bundleName(REPO, 'chart'),
        });
        seen = cond(b, 'Ready')?.message ?? '';
        return (cond(b, 'Ready')?.status === 'False' && seen.includes('templates/broken.yaml')) || undefined;
      },
      {
        what: 'the chart Bundle not Ready, naming templates/broken.yaml',
        timeoutMs: TIMEOUT,
        intervalMs: 1000,
        context: () => `last message: ${seen}; logs in ${fleet.logDir}`,
      },
    );
    for (const c of CLUSTERS) {
      const live = await cm(c.name, APP_NS, 'web-flotilla-test');
      expect(live?.metadata.resourceVersion, `${c.name}: nothing of the broken version applied`).to.equal(before[c.name]);
      expect(live?.data?.replicas).to.equal('2');
    }
    await converged(
      await git().commit(REPO, { ...good, 'chart/templates/broken.yaml': null, 'chart/values.yaml': String(repoFiles['chart/values.yaml']) }, 'fixed'),
    );
  });

  it('with deleteCRDResources and deleteNamespace, removing the chart bundle from the GitRepo deletes its crds/ CRD and its namespace', async () => {
    const current: Record<string, string | Buffer | null> = { ...repoFiles, 'chart/templates/extra.yaml': null };
    await converged(
      await git().commit(
        REPO,
        { ...current, 'chart/fleet.yaml': `${CHART_FLEET_YAML}deleteCRDResources: true\ndeleteNamespace: true\n` },
        'delete the CRD and namespace with the bundle',
      ),
    );
    // The GitRepo stops listing the chart's path: its Bundle and BundleDeployments go.
    await fleet.upstream.mergePatch({ apiVersion: API_VERSION, kind: 'GitRepo', namespace: WS, name: REPO }, { spec: { paths: ['kust'] } });
    for (const c of CLUSTERS) {
      const d = downstream[c.name]!;
      await waitFor(
        async () => {
          const crd = await d.get({ apiVersion: 'apiextensions.k8s.io/v1', kind: 'CustomResourceDefinition', name: 'widgets.example.flotilla.dev' });
          const ns = await d.get({ apiVersion: 'v1', kind: 'Namespace', name: APP_NS });
          const going = (o: KubeObject | undefined) => o === undefined || o.metadata.deletionTimestamp !== undefined;
          return (going(crd) && going(ns)) || undefined;
        },
        { what: `${c.name}: the chart's CRD and namespace ${APP_NS} deleted`, timeoutMs: TIMEOUT, intervalMs: 1000, context: () => `logs in ${fleet.logDir}` },
      );
      expect(await d.get({ apiVersion: 'v1', kind: 'Namespace', name: KUST_NS }), `${c.name}: the other bundle's namespace stays`).to.not.equal(undefined);
    }
  });
});
