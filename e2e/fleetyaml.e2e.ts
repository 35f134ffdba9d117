// biome-ignore-all lint/suspicious/noTemplateCurlyInString: Fleet's ${ } cluster templating is the data under test
import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import yaml from 'js-yaml';
import { stack } from './fixture.js';
import { waitFor } from '../stack/net.js';
import { ensureBinaries, type StackBinaries } from '../stack/binaries.js';
import { startFleet, fleetSuiteTeardown, type Fleet } from './support/processes.js';
import { applyCredentials, gitRepoObject, ociRegistryFor } from './support/fleetobjects.js';
import { API_VERSION, Label, Reason } from '../lib/api/index.js';
import { KubeClient, type KubeObject } from '../lib/kube/client.js';
import { runRender } from '../cli/render.js';
import type { Cond } from './support/kube.js';

/**
 * The rest of fleet.yaml through the real controller and agent processes, helm and kustomize, from git
 * through the TLS + basic-auth registry to two downstream clusters with different labels:
 * - `dependsOn` gates: the chart bundle waits (DependencyNotReady) while the bundle it depends on (named by
 *   fleet.yaml `name`) holds a Job that never completes on these kubelet-less clusters, and deploys once a
 *   new commit drops the Job;
 * - different values per cluster from cluster labels (`global.fleet.clusterLabels.*`, `${ .ClusterLabels }`);
 * - `helm.valuesFrom` read downstream on one cluster (a ConfigMap and a Secret created there): while the
 *   Secret is missing that cluster's deployment waits with ValuesFromNotFound naming it, then applies;
 * - Helm and Kustomize together, with a per-target `kustomize.dir` built over the chart's output;
 * - `flotilla render` for a cluster's labels prints what the agent applied.
 */

const WS = 'fy-e2e';
const REPO = 'fy-e2e-repo';
const APP_NS = 'fy-app';
const CLUSTERS = [
  { name: 'downstream-1', labels: { env: 'dev', color: 'green' } },
  { name: 'downstream-2', labels: { env: 'prod', color: 'red' } },
];
const TIMEOUT = 240_000; // a ceiling for a loaded 2-core machine, not a measure
const TOKEN = 'fy-e2e-token-value';

type Cm = KubeObject & { data?: Record<string, string> };
type BD = KubeObject & { status?: { conditions?: Cond[] } };

const BASE_CM = `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: fy-base, namespace: ${APP_NS}}\ndata: {role: base}\n`;
const BASE_JOB = `apiVersion: batch/v1\nkind: Job\nmetadata: {name: fy-base-wait, namespace: ${APP_NS}}\nspec:\n  template:\n    spec:\n      restartPolicy: Never\n      containers: [{name: c, image: busybox, command: ["true"]}]\n`;
const APP_FLEET_YAML = `name: fy-app
defaultNamespace: ${APP_NS}
dependsOn:
  - name: fy-base
helm:
  chart: chart
  releaseName: fy
  values:
    color: global.fleet.clusterLabels.color
    greeting: "hello-\${ .ClusterLabels.env }"
kustomize:
  dir: kbase
targetCustomizations:
  - name: prod
    clusterSelector: {matchLabels: {env: prod}}
    helm:
      valuesFrom:
        - configMapKeyRef: {name: fy-tuning, key: tier.yaml}
          secretKeyRef: {name: fy-secret}
    kustomize:
      dir: kprod
`;
const REPO_FILES: Record<string, string> = {
  'base/fleet.yaml': `name: fy-base\ndefaultNamespace: ${APP_NS}\nlabels: {role: base}\n`,
  'base/cm.yaml': BASE_CM,
  'app/fleet.yaml': APP_FLEET_YAML,
  'app/chart/Chart.yaml': 'apiVersion: v2\nname: fy\nversion: 0.1.0\n',
  'app/chart/values.yaml': 'color: none\ngreeting: none\ntier: bronze\ntoken: ""\n',
  'app/chart/templates/cm.yaml':
    'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-values\ndata:\n  color: {{ .Values.color | quote }}\n  greeting: {{ .Values.greeting | quote }}\n  tier: {{ .Values.tier | quote }}\n  tokenSha: {{ .Values.token | sha256sum | quote }}\n',
  'app/kbase/kustomization.yaml': 'resources: []\nlabels:\n  - pairs: {flavor: base}\n',
  'app/kprod/kustomization.yaml': 'namePrefix: prod-\nresources: [extra.yaml]\nlabels:\n  - pairs: {flavor: prod}\n',
  'app/kprod/extra.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: extra}\ndata: {from: kustomize}\n',
};

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

describe('fleet.yaml: valuesFrom, cluster values, Helm + Kustomize and dependsOn through the controller and agents', function () {
  this.timeout(20 * 60_000);
  let fleet: Fleet;
  let bin: StackBinaries;
  let checkout: string;
  const downstream: Record<string, KubeClient> = {};
  const git = () => stack().git!;
  const reg = () => stack().registry('tls-auth');
  const cm = (cluster: string, name: string) => downstream[cluster]!.get<Cm>({ apiVersion: 'v1', kind: 'ConfigMap', namespace: APP_NS, name });

  /** The app's BundleDeployment condition of `cluster` with `reason`, once it has one. */
  async function waitForReason(cluster: string, reason: string, includes: string): Promise<Cond> {
    let seen = '';
    return await waitFor(
      async () => {
        const { items } = await fleet.upstream.list<BD>({ apiVersion: API_VERSION, kind: 'BundleDeployment' }, `${Label.BundleName}=fy-app`);
        const bd = items.find((i) => i.metadata.labels?.[Label.Cluster] === cluster);
        const found = bd?.status?.conditions?.find((c) => c.reason === reason && (c.message ?? '').includes(includes));
        seen = JSON.stringify(bd?.status?.conditions?.map((c) => `${c.type}=${c.status} ${c.reason}: ${c.message}`) ?? []);
        return found;
      },
      {
        what: `${cluster}: fy-app condition ${reason} naming ${includes}`,
        timeoutMs: TIMEOUT,
        intervalMs: 1000,
        context: () => `${seen}; logs in ${fleet.logDir}`,
      },
    );
  }

  async function waitForCm(cluster: string, name: string, check: (c: Cm | undefined) => boolean): Promise<Cm | undefined> {
    let last: Cm | undefined;
    await waitFor(
      async () => {
        await fleet.assertAlive();
        last = await cm(cluster, name);
        return check(last) || undefined;
      },
      {
        what: `${cluster}: ConfigMap ${APP_NS}/${name}`,
        timeoutMs: TIMEOUT,
        intervalMs: 1000,
        context: () => `last: ${JSON.stringify(last?.data)}; logs in ${fleet.logDir}`,
      },
    );
    return last;
  }

  before(async function () {
    this.timeout(8 * 60_000);
    bin = await ensureBinaries();
    checkout = await mkdtemp(join(tmpdir(), 'fy-e2e-checkout-'));
    for (const c of CLUSTERS) downstream[c.name] = await KubeClient.fromKubeConfig(stack().cluster(c.name).kubeConfig());
    process.env.FLOTILLA_HELM = bin.helm;
    process.env.FLOTILLA_KUSTOMIZE = bin.kustomize;
    try {
      fleet = await startFleet(stack(), { workspace: WS, clusters: CLUSTERS });
    } finally {
      delete process.env.FLOTILLA_HELM;
      delete process.env.FLOTILLA_KUSTOMIZE;
    }
    // valuesFrom objects live downstream, on the prod cluster only; the Secret comes later.
    const prod = downstream['downstream-2']!;
    await prod.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: APP_NS } }, 'fy-e2e');
    await prod.apply(
      { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'fy-tuning', namespace: APP_NS }, data: { 'tier.yaml': 'tier: gold\n' } },
      'fy-e2e',
    );
    await applyCredentials(fleet.upstream, WS, WS, git(), reg());
    await git().createRepo(REPO);
    await git().commit(REPO, { ...REPO_FILES, 'base/job.yaml': BASE_JOB }, 'the base holds a Job that never completes');
    for (const [path, content] of Object.entries(REPO_FILES)) {
      await mkdir(dirname(join(checkout, path)), { recursive: true });
      await writeFile(join(checkout, path), content);
    }
    await fleet.upstream.apply(gitRepoObject(REPO, WS, git(), REPO, { paths: ['base', 'app'], ociRegistry: ociRegistryFor(reg(), 'fy-e2e') }), WS);
  });

  fleetSuiteTeardown(() => fleet, {
    afterStop: async () => {
      for (const c of Object.values(downstream)) await c.close();
      await rm(checkout, { recursive: true, force: true });
    },
  });

  it('holds the chart bundle back while the bundle it depends on is not ready, saying so', async () => {
    for (const c of CLUSTERS) {
      await waitForCm(c.name, 'fy-base', (x) => x?.data?.role === 'base');
      // First "(not deployed …)" while the base's BundleDeployment has not been applied, then "(not ready)" for good
      // (its Job never completes): wait for the second.
      const waiting = await waitForReason(c.name, Reason.DependencyNotReady, 'fy-base (not ready)');
      expect(waiting.message).to.match(/waiting for bundle fy-base \(not ready\)/);
      expect(await cm(c.name, 'fy-values'), `${c.name}: nothing of the app applied`).to.equal(undefined);
    }
  });

  it('deploys once the dependency is ready, with values from cluster labels, kustomize.dir built over the chart', async () => {
    await git().commit(REPO, { ...REPO_FILES, 'base/job.yaml': null }, 'the base without the Job');
    const dev = await waitForCm('downstream-1', 'fy-values', (x) => x !== undefined);
    expect(dev?.data).to.deep.equal({ color: 'green', greeting: 'hello-dev', tier: 'bronze', tokenSha: sha256('') });
    expect(dev?.metadata.labels?.flavor, 'kbase labels the chart output').to.equal('base');
  });

  it('makes the prod cluster wait for a valuesFrom Secret missing downstream, naming it, and applies nothing of the app there', async () => {
    const waiting = await waitForReason('downstream-2', Reason.ValuesFromNotFound, `Secret ${APP_NS}/fy-secret`);
    expect(waiting.message).to.match(/helm\.valuesFrom\[0\]\.secretKeyRef: Secret fy-app\/fy-secret does not exist on the downstream cluster/);
    expect(await cm('downstream-2', 'prod-fy-values')).to.equal(undefined);
    expect(await cm('downstream-2', 'prod-extra')).to.equal(undefined);
  });

  it('reads the ConfigMap and the Secret downstream once both exist, merged over the values, under the prod kustomize.dir', async () => {
    await downstream['downstream-2']!.apply(
      {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'fy-secret', namespace: APP_NS },
        stringData: { 'values.yaml': `token: ${TOKEN}\ncolor: crimson\n` },
      },
      'fy-e2e',
    );
    const prod = await waitForCm('downstream-2', 'prod-fy-values', (x) => x !== undefined);
    expect(prod?.data).to.deep.equal({ color: 'crimson', greeting: 'hello-prod', tier: 'gold', tokenSha: sha256(TOKEN) });
    expect(prod?.metadata.labels?.flavor).to.equal('prod');
    expect((await cm('downstream-2', 'prod-extra'))?.data).to.deep.equal({ from: 'kustomize' });
    expect(await cm('downstream-2', 'fy-values'), 'kbase is not built for prod').to.equal(undefined);
    const { items } = await fleet.upstream.list<BD>({ apiVersion: API_VERSION, kind: 'BundleDeployment' }, `${Label.BundleName}=fy-app`);
    expect(JSON.stringify(items.map((i) => i.status)), 'the Secret value never reaches status').not.to.include(TOKEN);
  });

  it('flotilla render prints, for the dev cluster, what its agent applied from Helm + Kustomize', async () => {
    const c = CLUSTERS[0]!;
    let stdout = '';
    let stderr = '';
    process.env.FLOTILLA_HELM = bin.helm;
    process.env.FLOTILLA_KUSTOMIZE = bin.kustomize;
    try {
      const labels = Object.entries(c.labels).flatMap(([k, v]) => ['-l', `${k}=${v}`]);
      const code = await runRender([join(checkout, 'app'), ...labels, '-n', c.name, '--bundle-name', 'fy-app', '--kube-version', bin.k8sVersion], {
        stdout: { write: (s: string) => (stdout += s) },
        stderr: { write: (s: string) => (stderr += s) },
      });
      expect(code, stderr).to.equal(0);
    } finally {
      delete process.env.FLOTILLA_HELM;
      delete process.env.FLOTILLA_KUSTOMIZE;
    }
    const printed = yaml.loadAll(stdout) as Cm[];
    expect(printed.map((o) => o.metadata.name)).to.deep.equal(['fy-values']);
    const live = await cm(c.name, 'fy-values');
    expect(live?.data).to.deep.equal(printed[0]?.data);
    expect(live?.metadata.labels ?? {}).to.include(printed[0]?.metadata.labels ?? {});
  });
});
