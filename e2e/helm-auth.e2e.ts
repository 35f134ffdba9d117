import { expect } from 'chai';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import yaml from 'js-yaml';
import { stack } from './fixture.js';
import { waitFor } from '../stack/net.js';
import { ensureBinaries } from '../stack/binaries.js';
import { publishChart, startHelmRepo, type HelmRepoHandle } from '../stack/helmrepo.js';
import { startFleet, fleetLogs, type Fleet, fleetSuiteTeardown } from './support/processes.js';
import { applyCredentials, gitRepoObject, gitRepoReadyAt, ociRegistryFor } from './support/fleetobjects.js';
import { eventTexts, findSecrets, flotillaStatusTexts } from './support/faults.js';
import { API_VERSION, type Bundle, type GitRepo, type GitRepoSpec } from '../lib/api/index.js';
import { bundleName } from '../lib/bundle/discover.js';
import { KubeClient, type KubeObject } from '../lib/kube/client.js';
import { cond } from './support/kube.js';

/**
 * Chart repository credentials per bundle, through the real controller and agent processes, against two
 * HTTPS + basic-auth Helm repositories of the stack (each with its own password and its own CA):
 * - `helmSecretNameForPaths`: one GitRepo, two bundle folders, each fetching its chart with the credentials
 *   and CA of its own entry of `secrets-path.yaml` (the GitRepo's `helmSecretName`, which holds wrong ones, is
 *   ignored, as in Fleet); an entry with a wrong password is refused with a condition naming that bundle, its
 *   fleet.yaml and the 401, while the other bundle stays deployed; fixing the entry deploys both;
 * - fleet.yaml `helm.insecureSkipTLSVerify: true`: a bundle fetches from the repository whose CA no Secret
 *   gives; the same chart without it is refused as an untrusted certificate;
 * - no chart repository password appears in logs, Events, Flotilla status or Bundles.
 */

type Obj<T> = T & KubeObject;
type Cm = KubeObject & { data?: Record<string, string> };
const WS = 'helm-auth-e2e';
const GIT = 'helm-auth';
const PATHS_REPO = 'helm-auth-paths';
const SKIP_REPO = 'helm-auth-skip';
const VERIFY_REPO = 'helm-auth-verify';
const APP_NS = 'helm-auth-app';
const CLUSTER = { name: 'downstream-1', labels: { env: 'dev' } };
const TIMEOUT = 240_000; // a ceiling for a loaded 2-core machine, not a measure
const CHART_SRC = join(dirname(fileURLToPath(import.meta.url)), 'testdata', 'helm', 'remote-chart');

describe('chart repository credentials per bundle: helmSecretNameForPaths and helm.insecureSkipTLSVerify', function () {
  this.timeout(20 * 60_000);
  let fleet: Fleet;
  let alpha: HelmRepoHandle;
  let beta: HelmRepoHandle;
  let work: string;
  let downstream: KubeClient;
  const git = () => stack().git!;
  const reg = () => stack().registry('tls-auth');
  const cm = (name: string) => downstream.get<Cm>({ apiVersion: 'v1', kind: 'ConfigMap', namespace: APP_NS, name });
  const tgzServed = (repo: HelmRepoHandle) => repo.requests().filter((r) => r.path.endsWith('.tgz') && r.status === 200).length;
  const fleetYaml = (repo: HelmRepoHandle, release: string, color: string, extra = '') =>
    `defaultNamespace: ${APP_NS}\nhelm:\n  repo: ${repo.url}\n  chart: remote-web\n  version: 1.0.0\n  releaseName: ${release}\n${extra}  values:\n    color: ${color}\n`;

  async function secret(name: string, stringData: Record<string, string>): Promise<void> {
    await fleet.upstream.apply({ apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace: WS }, stringData }, WS);
  }

  /** The helmSecretNameForPaths Secret: each team folder gets its own repository's credentials and CA. */
  async function pathsSecret(betaPassword: string): Promise<void> {
    const entry = (repo: HelmRepoHandle, password: string) => ({
      username: repo.username,
      password,
      caBundle: Buffer.from(repo.caPem).toString('base64'),
    });
    const paths = { 'teams/alpha': entry(alpha, alpha.password), 'teams/beta': entry(beta, betaPassword) };
    await secret('charts-by-path', { 'secrets-path.yaml': yaml.dump(paths) });
  }

  async function gitRepo(name: string) {
    return await fleet.upstream.get<Obj<GitRepo>>({ apiVersion: API_VERSION, kind: 'GitRepo', namespace: WS, name });
  }

  async function bundle(repo: string, path: string) {
    return await fleet.upstream.get<Obj<Bundle>>({ apiVersion: API_VERSION, kind: 'Bundle', namespace: WS, name: bundleName(repo, path) });
  }

  /** Waits until the GitRepo's BundlesBuilt condition is False with `reason` at a commit, and returns its message. */
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

  async function colored(name: string, color: string): Promise<void> {
    await waitFor(async () => (await cm(name))?.data?.color === color || undefined, {
      what: `ConfigMap ${APP_NS}/${name} with color ${color}`,
      timeoutMs: TIMEOUT,
      context: () => `logs in ${fleet.logDir}`,
    });
  }

  function repoObject(name: string, paths: string[], spec: Partial<GitRepoSpec>) {
    return gitRepoObject(name, WS, git(), GIT, { paths, ociRegistry: ociRegistryFor(reg(), `${WS}/${name}`), ...spec });
  }

  before(async function () {
    this.timeout(8 * 60_000);
    const bin = await ensureBinaries();
    work = await mkdtemp(join(tmpdir(), 'helm-auth-e2e-'));
    alpha = await startHelmRepo();
    beta = await startHelmRepo();
    const chart = join(work, 'remote-web');
    await cp(CHART_SRC, chart, { recursive: true });
    const chartYaml = join(chart, 'Chart.yaml');
    await writeFile(chartYaml, (await readFile(chartYaml, 'utf8')).replace('version: 0.0.0', 'version: 1.0.0'));
    for (const repo of [alpha, beta]) await publishChart(bin.helm, repo, chart);
    downstream = await KubeClient.fromKubeConfig(stack().cluster(CLUSTER.name).kubeConfig());
    process.env.FLOTILLA_HELM = bin.helm; // the controller fetches and the agent renders with it
    try {
      fleet = await startFleet(stack(), { workspace: WS, clusters: [CLUSTER] });
    } finally {
      delete process.env.FLOTILLA_HELM;
    }
    fleet.secrets.push(git().password, reg().password ?? '', alpha.password, beta.password);
    await applyCredentials(fleet.upstream, WS, WS, git(), reg());
    await pathsSecret(beta.password);
    // helmSecretName beside helmSecretNameForPaths is ignored (Fleet): wrong credentials here must not matter.
    await secret('charts-ignored', { username: 'nobody', password: 'not-a-password', cacerts: reg().caPem ?? '' });
    // For the TLS bundles: alpha's credentials, but no CA.
    await secret('alpha-no-ca', { username: alpha.username, password: alpha.password });
    await git().createRepo(GIT);
    const commit = await git().commit(
      GIT,
      {
        'teams/alpha/fleet.yaml': fleetYaml(alpha, 'alpha', 'green'),
        'teams/beta/fleet.yaml': fleetYaml(beta, 'beta', 'green'),
        'tls/skip/fleet.yaml': fleetYaml(alpha, 'skip', 'green', '  insecureSkipTLSVerify: true\n'),
        'tls/verify/fleet.yaml': fleetYaml(alpha, 'verify', 'green'),
      },
      'two teams with their own chart repositories; a bundle that skips TLS verification and one that does not',
    );
    await fleet.upstream.apply(
      repoObject(PATHS_REPO, ['teams/alpha', 'teams/beta'], { helmSecretNameForPaths: 'charts-by-path', helmSecretName: 'charts-ignored' }),
      WS,
    );
    await fleet.upstream.apply(repoObject(SKIP_REPO, ['tls/skip'], { helmSecretName: 'alpha-no-ca' }), WS);
    await fleet.upstream.apply(repoObject(VERIFY_REPO, ['tls/verify'], { helmSecretName: 'alpha-no-ca' }), WS);
    await gitRepoReadyAt(fleet, WS, PATHS_REPO, commit, TIMEOUT);
    await gitRepoReadyAt(fleet, WS, SKIP_REPO, commit, TIMEOUT);
  });

  fleetSuiteTeardown(() => fleet, {
    afterStop: async () => {
      await downstream?.close();
      await alpha?.stop();
      await beta?.stop();
      if (work) await rm(work, { recursive: true, force: true });
    },
  });

  it('deploys each bundle folder with the credentials and CA of its own secrets-path.yaml entry', async () => {
    await colored('alpha-config', 'green');
    await colored('beta-config', 'green');
    expect((await cm('alpha-config'))?.data).to.deep.equal({ chart: 'remote-web', chartVersion: '1.0.0', color: 'green' });
    expect((await cm('beta-config'))?.data).to.deep.equal({ chart: 'remote-web', chartVersion: '1.0.0', color: 'green' });
    expect((await bundle(PATHS_REPO, 'teams/alpha'))?.status?.charts?.[0]).to.include({ source: `chart remote-web from ${alpha.url}`, version: '1.0.0' });
    expect((await bundle(PATHS_REPO, 'teams/beta'))?.status?.charts?.[0]).to.include({ source: `chart remote-web from ${beta.url}`, version: '1.0.0' });
    // Each repository accepted the password it alone knows: the chart came from both.
    expect(tgzServed(alpha), 'alpha served its chart').to.be.greaterThan(0);
    expect(tgzServed(beta), 'beta served its chart').to.be.greaterThan(0);
  });

  it('refuses the bundle whose entry holds a wrong password, naming it, while the other bundle stays deployed', async () => {
    const alphaBefore = (await cm('alpha-config'))?.metadata.resourceVersion;
    const betaBefore = (await cm('beta-config'))?.metadata.resourceVersion;
    const digests = [(await bundle(PATHS_REPO, 'teams/alpha'))?.spec.oci?.digest, (await bundle(PATHS_REPO, 'teams/beta'))?.spec.oci?.digest];
    await pathsSecret('not-the-beta-password');
    await git().commit(
      GIT,
      { 'teams/alpha/fleet.yaml': fleetYaml(alpha, 'alpha', 'blue'), 'teams/beta/fleet.yaml': fleetYaml(beta, 'beta', 'blue') },
      'blue, with a wrong password in the teams/beta entry',
    );
    const message = await refused(PATHS_REPO, 'AuthenticationFailed');
    expect(message).to.include(`bundle ${bundleName(PATHS_REPO, 'teams/beta')} (teams/beta/fleet.yaml)`);
    expect(message).to.include('401').and.include('helmSecretNameForPaths');
    expect(message).to.not.include(bundleName(PATHS_REPO, 'teams/alpha'));
    // A commit is built all or nothing (README): teams/alpha keeps running its last good version, untouched.
    expect([(await bundle(PATHS_REPO, 'teams/alpha'))?.spec.oci?.digest, (await bundle(PATHS_REPO, 'teams/beta'))?.spec.oci?.digest]).to.deep.equal(digests);
    expect((await cm('alpha-config'))?.metadata.resourceVersion).to.equal(alphaBefore);
    expect((await cm('beta-config'))?.metadata.resourceVersion).to.equal(betaBefore);
    expect((await cm('alpha-config'))?.data?.color).to.equal('green');
    await pathsSecret(beta.password);
    await colored('alpha-config', 'blue');
    await colored('beta-config', 'blue');
  });

  it('fetches with helm.insecureSkipTLSVerify from the repository whose CA no Secret gives', async () => {
    await colored('skip-config', 'green');
    expect((await cm('skip-config'))?.data).to.deep.equal({ chart: 'remote-web', chartVersion: '1.0.0', color: 'green' });
    expect((await bundle(SKIP_REPO, 'tls/skip'))?.spec.helm?.insecureSkipTLSVerify).to.equal(true);
  });

  it('refuses the same chart without insecureSkipTLSVerify as an untrusted certificate, applying nothing', async () => {
    const message = await refused(VERIFY_REPO, 'ChartRepositoryTLSFailed');
    expect(message).to.include(`bundle ${bundleName(VERIFY_REPO, 'tls/verify')} (tls/verify/fleet.yaml)`);
    expect(message)
      .to.match(/certificate|x509/)
      .and.include('not trusted');
    expect(await bundle(VERIFY_REPO, 'tls/verify')).to.equal(undefined);
    expect(await cm('verify-config')).to.equal(undefined);
  });

  it('leaks no chart repository password into logs, Events, Flotilla status or Bundles', async () => {
    const bundles = await fleet.upstream.list<KubeObject>({ apiVersion: API_VERSION, kind: 'Bundle', namespace: WS });
    const texts = [
      ...(await fleetLogs(fleet)).map((l) => ({ where: `${l.name} log`, text: l.text })),
      ...(await eventTexts(fleet.upstream, 'upstream')),
      ...(await flotillaStatusTexts(fleet.upstream)),
      ...bundles.items.map((b) => ({ where: `Bundle ${b.metadata.name}`, text: JSON.stringify(b) })),
    ];
    expect(texts.length).to.be.greaterThan(3);
    expect(findSecrets(texts, [alpha.password, beta.password, 'not-the-beta-password', 'not-a-password']).map((h) => h.where)).to.deep.equal([]);
  });
});
