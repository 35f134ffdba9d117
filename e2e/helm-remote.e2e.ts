import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { stack } from './fixture.js';
import { freePort, waitFor } from '../stack/net.js';
import { ensureBinaries, type StackBinaries } from '../stack/binaries.js';
import { publishChart, startHelmRepo, type HelmRepoHandle } from '../stack/helmrepo.js';
import { requestsSince, settledLog } from '../stack/registry.js';
import { startFleet, fleetLogs, type Fleet, fleetSuiteTeardown } from './support/processes.js';
import { eventTexts, findSecrets, flotillaStatusTexts } from './support/faults.js';
import { API_VERSION, type Bundle, type GitRepo } from '../lib/api/index.js';
import { bundleName } from '../lib/bundle/discover.js';
import { KubeClient, type KubeObject } from '../lib/kube/client.js';
import { statusReport } from '../cli/status.js';
import { runRender } from '../cli/render.js';
import yaml from 'js-yaml';
import { cond } from './support/kube.js';

/**
 * Remote Helm charts through the real controller and agent processes: the controller fetches them when it
 * builds a bundle and stores them in the artifact; the agent renders them like a chart of the repository.
 * - a chart from the stack's Helm repository (HTTPS + basic auth; index.yaml and .tgz written by the real
 *   `helm package` and `helm repo index`) with a semver constraint: the resolved version is on the Bundle;
 * - an `oci://` chart pushed to the stack's registry with the real `helm push`;
 * - a chart of the repository whose dependency comes from that Helm repository (`helm dependency build`);
 * - a new chart version that removes a template prunes its object downstream;
 * - `flotilla render` of the bundle (remote chart fetched by the same code, credentials from a Secret file)
 *   prints what the agent applied;
 * - wrong credentials, a version that does not exist, a repository certificate from an unknown CA and an
 *   unreachable repository: the GitRepo says which bundle, which fleet.yaml and why; nothing of that commit
 *   reaches the cluster, the last good version stays;
 * - no credential appears in logs, Events, Flotilla status or Bundle specs.
 */

type Obj<T> = T & KubeObject;
type Cm = KubeObject & { data?: Record<string, string> };
const run = promisify(execFile);
const WS = 'helm-remote-e2e';
const REPO = 'helm-remote';
const OCI_REPO = 'helm-remote-oci';
const DEPS_REPO = 'helm-remote-deps';
const APP_NS = 'helm-remote-app';
const CLUSTER = { name: 'downstream-1', labels: { env: 'dev' } };
const TIMEOUT = 240_000; // a ceiling for a loaded 2-core machine, not a measure
const CHART_SRC = join(dirname(fileURLToPath(import.meta.url)), 'testdata', 'helm', 'remote-chart');

describe('remote Helm charts fetched by the controller into the artifact', function () {
  this.timeout(20 * 60_000);
  let fleet: Fleet;
  let bin: StackBinaries;
  let charts: HelmRepoHandle;
  let work: string;
  let downstream: KubeClient;
  const git = () => stack().git!;
  const reg = () => stack().registry('tls-auth');
  const cm = (name: string) => downstream.get<Cm>({ apiVersion: 'v1', kind: 'ConfigMap', namespace: APP_NS, name });
  const webFleetYaml = (version: string, color = 'green') =>
    `defaultNamespace: ${APP_NS}\nhelm:\n  repo: ${charts.url}\n  chart: remote-web\n  version: "${version}"\n  releaseName: web\n  values:\n    color: ${color}\n`;

  /** Packages the test chart as `version` (without templates/extra.yaml from 1.1.0 on) into `dir`, returning the chart folder. */
  async function chartVersion(version: string): Promise<string> {
    const dir = join(work, `remote-web-${version}`, 'remote-web');
    await cp(CHART_SRC, dir, { recursive: true });
    const chartYaml = join(dir, 'Chart.yaml');
    await writeFile(chartYaml, (await readFile(chartYaml, 'utf8')).replace('version: 0.0.0', `version: ${version}`));
    if (version >= '1.1.0') await rm(join(dir, 'templates', 'extra.yaml'));
    return dir;
  }

  /** Pushes `version` of the test chart, renamed remote-oci, to the stack's registry with helm registry login + helm push. */
  async function pushOci(version: string): Promise<void> {
    const dir = await chartVersion(version);
    const renamed = join(dirname(dirname(dir)), `oci-${version}`, 'remote-oci');
    await cp(dir, renamed, { recursive: true });
    const chartYaml = join(renamed, 'Chart.yaml');
    await writeFile(chartYaml, (await readFile(chartYaml, 'utf8')).replace('name: remote-web', 'name: remote-oci'));
    const env = {
      ...process.env,
      HELM_REGISTRY_CONFIG: join(work, 'registry.json'),
      HELM_CACHE_HOME: join(work, 'helm-cache'),
      HELM_CONFIG_HOME: join(work, 'helm-config'),
    };
    const login = run(bin.helm, ['registry', 'login', reg().host, '--username', reg().username ?? '', '--password-stdin', '--ca-file', reg().caFile ?? ''], {
      env,
    });
    login.child.stdin?.end(reg().password ?? '');
    await login;
    await run(bin.helm, ['package', renamed, '--destination', work], { env });
    await run(bin.helm, ['push', join(work, `remote-oci-${version}.tgz`), `oci://${reg().host}/helm-remote-charts`, '--ca-file', reg().caFile ?? ''], { env });
  }

  async function gitRepo(name: string) {
    return await fleet.upstream.get<Obj<GitRepo>>({ apiVersion: API_VERSION, kind: 'GitRepo', namespace: WS, name });
  }

  async function bundle(repo: string, path: string) {
    return await fleet.upstream.get<Obj<Bundle>>({ apiVersion: API_VERSION, kind: 'Bundle', namespace: WS, name: bundleName(repo, path) });
  }

  async function converged(name: string, commit: string): Promise<void> {
    let last = '';
    await waitFor(
      async () => {
        await fleet.assertAlive();
        const r = await gitRepo(name);
        last = `commit ${r?.status?.commit?.slice(0, 12) ?? '-'}, Ready: ${cond(r, 'Ready')?.status ?? '-'} ${cond(r, 'Ready')?.message ?? ''}`;
        return (r?.status?.commit === commit && cond(r, 'Ready')?.status === 'True') || undefined;
      },
      { what: `GitRepo ${name} Ready at ${commit.slice(0, 12)}`, timeoutMs: TIMEOUT, intervalMs: 1000, context: () => `${last}; logs in ${fleet.logDir}` },
    );
  }

  /** Waits until the GitRepo's BundlesBuilt condition is False with `reason`, and returns its message. */
  async function refused(name: string, reason: string): Promise<string> {
    let last = '';
    return await waitFor(
      async () => {
        const c = cond(await gitRepo(name), 'BundlesBuilt');
        last = `${c?.status ?? '-'} ${c?.reason ?? ''} ${c?.message ?? ''}`;
        return (c?.status === 'False' && c.reason === reason && c.message) || undefined;
      },
      { what: `GitRepo ${name} BundlesBuilt False (${reason})`, timeoutMs: TIMEOUT, intervalMs: 1000, context: () => `last: ${last}; logs in ${fleet.logDir}` },
    );
  }

  async function helmSecret(name: string, data: Record<string, string>): Promise<void> {
    await fleet.upstream.apply({ apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace: WS }, stringData: data }, WS);
  }

  function gitRepoObject(name: string, paths: string[], helmSecretName: string) {
    return {
      apiVersion: API_VERSION,
      kind: 'GitRepo',
      metadata: { name, namespace: WS },
      spec: {
        repo: `${git().url}/${REPO}.git`,
        branch: 'main',
        clientSecretName: 'git-auth',
        pollingInterval: '2s',
        paths,
        helmSecretName,
        targets: [{ clusterSelector: {} }],
        ociRegistry: { reference: `${reg().host}/${name}`, authSecretName: 'registry-auth', caBundle: Buffer.from(reg().caPem ?? '').toString('base64') },
      },
    };
  }

  before(async function () {
    this.timeout(8 * 60_000);
    bin = await ensureBinaries();
    work = await mkdtemp(join(tmpdir(), 'helm-remote-e2e-'));
    charts = await startHelmRepo();
    for (const v of ['1.0.0', '2.0.0']) await publishChart(bin.helm, charts, await chartVersion(v));
    await pushOci('0.3.0');
    downstream = await KubeClient.fromKubeConfig(stack().cluster(CLUSTER.name).kubeConfig());
    process.env.FLOTILLA_HELM = bin.helm; // the controller fetches and the agent renders with it
    try {
      fleet = await startFleet(stack(), { workspace: WS, clusters: [CLUSTER] });
    } finally {
      delete process.env.FLOTILLA_HELM;
    }
    fleet.secrets.push(git().password, reg().password ?? '', charts.password);
    await fleet.upstream.apply(
      {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'git-auth', namespace: WS },
        type: 'kubernetes.io/basic-auth',
        stringData: { username: git().username, password: git().password },
      },
      WS,
    );
    await helmSecret('registry-auth', { username: reg().username ?? '', password: reg().password ?? '' });
    await helmSecret('charts-auth', { username: charts.username, password: charts.password, cacerts: charts.caPem });
    await helmSecret('oci-auth', { username: reg().username ?? '', password: reg().password ?? '', cacerts: reg().caPem ?? '' });
    await git().createRepo(REPO);
    const oci = `defaultNamespace: ${APP_NS}\nhelm:\n  chart: oci://${reg().host}/helm-remote-charts/remote-oci\n  version: 0.3.0\n  releaseName: ocichart\n`;
    const deps = {
      'deps/fleet.yaml': `defaultNamespace: ${APP_NS}\nhelm:\n  releaseName: deps\n`,
      'deps/Chart.yaml': `apiVersion: v2\nname: with-deps\nversion: 0.1.0\ndependencies:\n  - name: remote-web\n    version: "~1.0.0"\n    repository: ${charts.url}\n`,
      'deps/templates/own.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-own\ndata:\n  parent: {{ .Chart.Name | quote }}\n',
    };
    const commit = await git().commit(
      REPO,
      { 'web/fleet.yaml': webFleetYaml('^1.0.0'), 'oci/fleet.yaml': oci, ...deps },
      'a repository chart, an oci:// chart and a chart with a dependency',
    );
    await fleet.upstream.apply(gitRepoObject(REPO, ['web'], 'charts-auth'), WS);
    await fleet.upstream.apply(gitRepoObject(OCI_REPO, ['oci'], 'oci-auth'), WS);
    await fleet.upstream.apply(gitRepoObject(DEPS_REPO, ['deps'], 'charts-auth'), WS);
    await converged(REPO, commit);
    await converged(OCI_REPO, commit);
    await converged(DEPS_REPO, commit);
  });

  fleetSuiteTeardown(() => fleet, {
    afterStop: async () => {
      await downstream?.close();
      await charts?.stop();
      if (work) await rm(work, { recursive: true, force: true });
    },
  });

  it('deploys the newest 1.x of the chart from the HTTPS + basic-auth repository and shows the resolved version on the Bundle', async () => {
    await waitFor(async () => (await cm('web-config'))?.data?.chartVersion === '1.0.0' || undefined, {
      what: 'web-config at chart 1.0.0',
      timeoutMs: TIMEOUT,
      context: () => `logs in ${fleet.logDir}`,
    });
    expect((await cm('web-config'))?.data).to.deep.equal({ chart: 'remote-web', chartVersion: '1.0.0', color: 'green' });
    expect((await cm('web-extra'))?.data).to.deep.equal({ removedIn: '1.1.0' });
    const b = await bundle(REPO, 'web');
    expect(b?.status?.charts).to.have.length(1);
    expect(b?.status?.charts?.[0]).to.include({ source: `chart remote-web from ${charts.url}`, version: '1.0.0' });
    // The Bundle (and so every BundleDeployment) names the chart folder stored in the artifact, not the repository.
    expect(b?.spec.helm?.chart).to.equal(b?.status?.charts?.[0]?.path);
    expect(b?.spec.helm?.repo).to.equal(undefined);
    expect((await statusReport(fleet.upstream, WS)).text).to.match(new RegExp(`${bundleName(REPO, 'web')} .* remote-web@1\\.0\\.0`));
    expect(charts.requests().filter((r) => r.path.endsWith('.tgz') && r.status === 200).length).to.be.greaterThan(0);
  });

  it('flotilla render, fetching the chart with the credentials of a Secret file, prints what the agent applied', async () => {
    const dir = join(work, 'render-checkout', 'web');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'fleet.yaml'), webFleetYaml('^1.0.0'));
    const secretFile = join(work, 'render-helm-secret.yaml');
    const secret = { apiVersion: 'v1', kind: 'Secret', stringData: { username: charts.username, password: charts.password, cacerts: charts.caPem } };
    await writeFile(secretFile, yaml.dump(secret), { mode: 0o600 });
    let stdout = '';
    let stderr = '';
    process.env.FLOTILLA_HELM = bin.helm;
    try {
      const args = [dir, '-l', 'env=dev', '-n', CLUSTER.name, '--bundle-name', bundleName(REPO, 'web'), '--kube-version', bin.k8sVersion];
      const code = await runRender([...args, '--helm-secret-file', secretFile], {
        stdout: { write: (t: string) => (stdout += t) },
        stderr: { write: (t: string) => (stderr += t) },
      });
      expect(code, stderr).to.equal(0);
    } finally {
      delete process.env.FLOTILLA_HELM;
    }
    expect(stderr).to.not.include(charts.password);
    const printed = (yaml.loadAll(stdout) as KubeObject[]).filter((o) => !o.metadata.annotations?.['helm.sh/hook']);
    expect(printed.map((o) => `${o.kind} ${o.metadata.name}`).sort()).to.deep.equal(['ConfigMap web-config', 'ConfigMap web-extra']);
    for (const o of printed) {
      const live = await downstream.get<KubeObject>({ apiVersion: o.apiVersion, kind: o.kind, namespace: o.metadata.namespace, name: o.metadata.name });
      const what = `${o.kind} ${o.metadata.namespace ?? ''}/${o.metadata.name}`;
      expect(live, what).to.not.equal(undefined);
      expect(o.metadata.namespace, what).to.equal(APP_NS);
      expect(live!.metadata.labels ?? {}, what).to.include(o.metadata.labels ?? {});
      for (const field of ['data', 'spec'] as const) if (field in o) expect(live![field], what).to.deep.equal(o[field]);
    }
  });

  it('deploys an oci:// chart pushed to the registry with helm push', async () => {
    await waitFor(async () => (await cm('ocichart-config'))?.data?.chartVersion === '0.3.0' || undefined, {
      what: 'ocichart-config at chart 0.3.0',
      timeoutMs: TIMEOUT,
      context: () => `logs in ${fleet.logDir}`,
    });
    expect((await cm('ocichart-config'))?.data).to.deep.equal({ chart: 'remote-oci', chartVersion: '0.3.0', color: 'grey' });
    expect((await bundle(OCI_REPO, 'oci'))?.status?.charts?.[0]).to.include({
      source: `chart oci://${reg().host}/helm-remote-charts/remote-oci`,
      version: '0.3.0',
    });
  });

  it("builds a chart's dependency from the HTTPS + basic-auth repository into the artifact", async () => {
    await waitFor(async () => (await cm('deps-own'))?.data?.parent === 'with-deps' || undefined, {
      what: 'deps-own applied',
      timeoutMs: TIMEOUT,
      context: () => `logs in ${fleet.logDir}`,
    });
    expect((await cm('deps-config'))?.data).to.deep.equal({ chart: 'remote-web', chartVersion: '1.0.0', color: 'grey' });
  });

  it('a commit that leaves the repository index and the OCI tag as they were pulls no chart or dependency archive again', async () => {
    const from = charts.requests().length;
    const mark = (await settledLog(reg())).length;
    const commit = await git().commit(REPO, { 'NOTES.md': 'outside every bundle\n' }, 'docs only');
    await converged(REPO, commit);
    await converged(DEPS_REPO, commit);
    await converged(OCI_REPO, commit);
    // The oci:// chart at its exact version 0.3.0: one HEAD of the tag's manifest, nothing pulled.
    const chartPath = '/v2/helm-remote-charts/remote-oci/';
    const oci = (await requestsSince(reg(), mark)).filter((e) => e.path.startsWith(chartPath) && e.status !== 401);
    expect(oci.map((e) => `${e.method} ${e.path.slice(chartPath.length)} ${e.status}`)).to.deep.equal(['HEAD manifests/0.3.0 200']);
    const since = charts.requests().slice(from);
    // The constraint is resolved again (the index is read, by the chart and by the dependency build), each read
    // a conditional GET answered 304 Not Modified: the index comes with no body ...
    const indexReads = since.filter((r) => r.path.endsWith('/index.yaml'));
    expect(indexReads.length, JSON.stringify(since)).to.be.at.least(2);
    expect(
      indexReads.filter((r) => r.status !== 304),
      JSON.stringify(since),
    ).to.deep.equal([]);
    // ... and it resolves to what was pulled against the same index: nothing is downloaded again.
    expect(
      since.filter((r) => r.path.endsWith('.tgz')),
      JSON.stringify(since),
    ).to.deep.equal([]);
    expect((await bundle(REPO, 'web'))?.status?.charts?.[0]?.version).to.equal('1.0.0');
    expect((await cm('deps-config'))?.data?.chartVersion).to.equal('1.0.0');
  });

  it('resolves the constraint again at the next commit: chart 1.1.0, which dropped a template, prunes its object', async () => {
    await publishChart(bin.helm, charts, await chartVersion('1.1.0'));
    const commit = await git().commit(REPO, { 'web/fleet.yaml': `# 1.1.0 is out\n${webFleetYaml('^1.0.0')}` }, 'poke: resolve ^1.0.0 again');
    await converged(REPO, commit);
    await waitFor(async () => (await cm('web-extra')) === undefined || undefined, {
      what: 'web-extra pruned',
      timeoutMs: TIMEOUT,
      context: () => `logs in ${fleet.logDir}`,
    });
    expect((await cm('web-config'))?.data?.chartVersion).to.equal('1.1.0');
    expect((await bundle(REPO, 'web'))?.status?.charts?.[0]?.version).to.equal('1.1.0');
  });

  it('refuses wrong credentials with a condition naming the bundle, fleet.yaml and the cause, and keeps the last good version', async () => {
    const before = (await cm('web-config'))?.metadata.resourceVersion;
    const digest = (await bundle(REPO, 'web'))?.spec.oci?.digest;
    await helmSecret('charts-auth', { username: charts.username, password: 'not-the-password', cacerts: charts.caPem });
    await git().commit(REPO, { 'web/fleet.yaml': webFleetYaml('^1.0.0', 'blue') }, 'blue, with the wrong credentials in place');
    const message = await refused(REPO, 'AuthenticationFailed');
    expect(message).to.include(`bundle ${bundleName(REPO, 'web')} (web/fleet.yaml)`);
    expect(message).to.include('refused with 401').and.include('helmSecretName');
    expect((await bundle(REPO, 'web'))?.spec.oci?.digest, 'no new artifact').to.equal(digest);
    expect((await cm('web-config'))?.metadata.resourceVersion, 'nothing of that commit applied').to.equal(before);
    await helmSecret('charts-auth', { username: charts.username, password: charts.password, cacerts: charts.caPem });
    await waitFor(async () => (await cm('web-config'))?.data?.color === 'blue' || undefined, {
      what: 'the blue commit applied once the Secret is fixed',
      timeoutMs: TIMEOUT,
      context: () => `logs in ${fleet.logDir}`,
    });
  });

  it('refuses a chart version that does not exist, naming it, and keeps the last good version', async () => {
    const before = (await cm('web-config'))?.metadata.resourceVersion;
    await git().commit(REPO, { 'web/fleet.yaml': webFleetYaml('9.9.9', 'red') }, 'a version that was never published');
    const message = await refused(REPO, 'ChartNotFound');
    expect(message).to.include(`bundle ${bundleName(REPO, 'web')} (web/fleet.yaml)`);
    expect(message).to.include('9.9.9').and.include('helm.version');
    expect((await cm('web-config'))?.metadata.resourceVersion).to.equal(before);
    expect((await cm('web-config'))?.data).to.include({ chartVersion: '1.1.0', color: 'blue' });
  });

  /** Commits `fleetYaml` for web, waits for the GitRepo to refuse it with `reason`, checks nothing changed downstream, and returns the message. */
  async function refusedCommit(fleetYaml: string, reason: string, why: string): Promise<string> {
    const before = (await cm('web-config'))?.metadata.resourceVersion;
    const digest = (await bundle(REPO, 'web'))?.spec.oci?.digest;
    await git().commit(REPO, { 'web/fleet.yaml': fleetYaml }, why);
    const message = await refused(REPO, reason);
    expect(message).to.include(`bundle ${bundleName(REPO, 'web')} (web/fleet.yaml)`);
    expect((await bundle(REPO, 'web'))?.spec.oci?.digest, 'no new artifact').to.equal(digest);
    expect((await cm('web-config'))?.metadata.resourceVersion, 'nothing of that commit applied').to.equal(before);
    return message;
  }

  it('refuses a repository whose certificate is from an unknown CA, and keeps the last good version', async () => {
    // The registry's CA did not sign the chart repository's certificate.
    await helmSecret('charts-auth', { username: charts.username, password: charts.password, cacerts: reg().caPem ?? '' });
    const message = await refusedCommit(webFleetYaml('^1.0.0', 'purple'), 'ChartRepositoryTLSFailed', 'purple, with the wrong CA in place');
    expect(message).to.include('not trusted').and.include('cacerts');
    expect((await cm('web-config'))?.data).to.include({ chartVersion: '1.1.0', color: 'blue' });
    await helmSecret('charts-auth', { username: charts.username, password: charts.password, cacerts: charts.caPem });
    await waitFor(async () => (await cm('web-config'))?.data?.color === 'purple' || undefined, {
      what: 'the purple commit applied once the CA is fixed',
      timeoutMs: TIMEOUT,
      context: () => `logs in ${fleet.logDir}`,
    });
  });

  it('refuses an unreachable repository, and keeps the last good version', async () => {
    const nowhere = `https://127.0.0.1:${await freePort()}/charts`; // nothing listens there
    const fleetYaml = webFleetYaml('^1.0.0', 'orange').replace(`repo: ${charts.url}`, `repo: ${nowhere}`);
    const message = await refusedCommit(fleetYaml, 'ChartRepositoryUnreachable', 'a repository nobody serves');
    expect(message).to.include('cannot be reached');
    expect((await cm('web-config'))?.data).to.include({ chartVersion: '1.1.0', color: 'purple' });
    const commit = await git().commit(REPO, { 'web/fleet.yaml': webFleetYaml('^1.0.0', 'purple') }, 'back to the served repository');
    await converged(REPO, commit);
  });

  it('leaks no chart repository or registry credential into logs, Events, Flotilla status or Bundle specs', async () => {
    const bundles = await fleet.upstream.list<KubeObject>({ apiVersion: API_VERSION, kind: 'Bundle', namespace: WS });
    const texts = [
      ...(await fleetLogs(fleet)).map((l) => ({ where: `${l.name} log`, text: l.text })),
      ...(await eventTexts(fleet.upstream, 'upstream')),
      ...(await flotillaStatusTexts(fleet.upstream)),
      ...bundles.items.map((b) => ({ where: `Bundle ${b.metadata.name}`, text: JSON.stringify(b) })),
    ];
    expect(texts.length).to.be.greaterThan(3);
    expect(findSecrets(texts, [charts.password, reg().password ?? '', 'not-the-password']).map((h) => h.where)).to.deep.equal([]);
  });
});
