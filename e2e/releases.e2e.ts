import { expect } from 'chai';
import { stack } from './fixture.js';
import { waitFor } from '../stack/net.js';
import { startFleet, fleetSuiteTeardown, type Fleet } from './support/processes.js';
import { API_VERSION, Label, type Bundle, type BundleDeployment, type GitRepo } from '../lib/api/index.js';
import { KubeClient, type KubeObject } from '../lib/kube/client.js';
import { applyCredentials, gitRepoObject, gitRepoReadyAt, ociRegistryFor } from './support/fleetobjects.js';
import { main } from '../cli/main.js';
import { cond } from './support/kube.js';

type Obj<T> = T & KubeObject;

/**
 * Releases on the real stack (controller, two agents, git server, registry): three commits give v1..v3;
 * `flotilla history` and `flotilla diff` read them from the registry; `flotilla rollback` pins one of two
 * clusters to v1 without touching git; a fourth commit leaves it pinned (and says a newer version waits);
 * `--clear` returns it to the newest. Bad rollbacks are refused with nothing changed.
 */
describe('releases: history, diff and rollback without git', function () {
  this.timeout(600_000);
  const WS = 'releases-e2e';
  const REPO = 'releases-e2e-app';
  const APP_NS = 'releases-e2e-app';
  const BUNDLE = `${REPO}-app`;
  let fleet: Fleet;
  const downstream: Record<string, KubeClient> = {};
  const git = () => stack().git!;
  const kubeconfig = () => stack().cluster('upstream').kubeconfigPath;
  const cm = (version: string) => `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: rel-app\ndata:\n  version: "${version}"\n`;
  const commits: string[] = [];

  async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
    let out = '';
    let err = '';
    const code = await main([...argv, '--kubeconfig', kubeconfig(), '-n', WS], {
      stdout: { write: (s: string) => (out += s) },
      stderr: { write: (s: string) => (err += s) },
    });
    return { code, out, err };
  }
  const bundle = async () => (await fleet.upstream.get<Obj<Bundle>>({ apiVersion: API_VERSION, kind: 'Bundle', namespace: WS, name: BUNDLE })) as Obj<Bundle>;
  const version = async (cluster: string) =>
    (
      await downstream[cluster]?.get<KubeObject & { data?: Record<string, string> }>({
        apiVersion: 'v1',
        kind: 'ConfigMap',
        namespace: APP_NS,
        name: 'rel-app',
      })
    )?.data?.version;
  async function runs(want: Record<string, string>): Promise<void> {
    let last = '';
    await waitFor(
      async () => {
        await fleet.assertAlive();
        const got = Object.fromEntries(await Promise.all(Object.keys(want).map(async (c) => [c, await version(c)])));
        last = JSON.stringify(got);
        return Object.entries(want).every(([c, v]) => got[c] === v) ? true : undefined;
      },
      { what: `downstream versions ${JSON.stringify(want)}`, timeoutMs: 180_000, intervalMs: 500, context: () => `${last}; logs in ${fleet.logDir}` },
    );
  }

  before(async function () {
    this.timeout(8 * 60_000);
    for (const c of ['downstream-1', 'downstream-2']) downstream[c] = await KubeClient.fromKubeConfig(stack().cluster(c).kubeConfig());
    fleet = await startFleet(stack(), {
      workspace: WS,
      clusters: [
        { name: 'downstream-1', labels: { env: 'rel', region: 'eu' } },
        { name: 'downstream-2', labels: { env: 'rel', region: 'us' } },
      ],
    });
    await applyCredentials(fleet.upstream, WS, 'releases-e2e', git(), stack().registry('http'));
    await git().createRepo(REPO);
  });
  fleetSuiteTeardown(() => fleet, {
    afterStop: async () => {
      for (const k of Object.values(downstream)) await k.close();
    },
  });

  it('three commits are v1..v3: history lists commit, changed files and clusters; diff shows the files and objects that changed', async () => {
    commits.push(await git().commit(REPO, { 'app/fleet.yaml': `defaultNamespace: ${APP_NS}\n`, 'app/cm.yaml': cm('1') }, 'one'));
    await fleet.upstream.apply(
      gitRepoObject(REPO, WS, git(), REPO, { paths: ['app'], pollingInterval: '1s', ociRegistry: ociRegistryFor(stack().registry('http'), 'releases-e2e') }),
      'releases-e2e',
    );
    await gitRepoReadyAt(fleet, WS, REPO, commits[0] as string, 240_000);
    commits.push(await git().commit(REPO, { 'app/cm.yaml': cm('2') }, 'two'));
    await gitRepoReadyAt(fleet, WS, REPO, commits[1] as string, 180_000);
    commits.push(await git().commit(REPO, { 'app/cm.yaml': cm('3'), 'app/extra.yaml': cm('x').replace('rel-app', 'rel-extra') }, 'three'));
    await gitRepoReadyAt(fleet, WS, REPO, commits[2] as string, 180_000);
    await runs({ 'downstream-1': '3', 'downstream-2': '3' });

    const history = await cli('history', REPO);
    expect(history.code, history.err).to.equal(0);
    const rows = history.out.split('\n').filter((l) => /^v\d/.test(l));
    expect(rows.map((r) => r.split(/\s+/)[0])).to.deep.equal(['v1', 'v2', 'v3*']);
    for (const [i, row] of rows.entries()) expect(row).to.include((commits[i] as string).slice(0, 12));
    expect(rows[0]).to.include('initial');
    expect(rows[1]).to.include('~cm.yaml').and.not.include('extra.yaml');
    expect(rows[2]).to.include('~cm.yaml').and.include('+extra.yaml');
    expect(rows[2]).to.include('downstream-1,downstream-2');
    expect(rows[2]).to.match(/\d{4}-\d\d-\d\dT/); // the commit date
    const b = await bundle();
    expect(b.status?.history?.map((e) => [e.version, e.commit])).to.deep.equal(commits.map((c, i) => [i + 1, c]));

    const diff = await cli('diff', BUNDLE, 'v1', 'v3', '-l', 'env=rel');
    expect(diff.code, diff.err).to.equal(0);
    expect(diff.out).to.include('~ cm.yaml').and.include('+ extra.yaml');
    expect(diff.out).to.include(`~ v1/ConfigMap ${APP_NS}/rel-app`).and.include(`+ v1/ConfigMap ${APP_NS}/rel-extra`);
    expect(diff.out)
      .to.match(/^ {4}- {3}version: '1'$/m)
      .and.match(/^ {4}\+ {3}version: '3'$/m);
  });

  it('refuses bad rollbacks with a clear message and changes nothing', async () => {
    const before = (await bundle()).spec;
    const cases: [string[], RegExp][] = [
      [['--to', 'v9'], /v9 is not in .*retention deleted it or it never existed/],
      [['--to', `sha256:${'0'.repeat(64)}`], /not a version of this bundle/],
      [['--to', 'v1', '--clusters', 'region=mars'], /matches no cluster/],
    ];
    for (const [args, message] of cases) {
      const r = await cli('rollback', BUNDLE, ...args);
      expect(r.code, `${args.join(' ')}: ${r.out}`).to.equal(1);
      expect(r.err).to.match(message).and.include('nothing was changed');
    }
    expect((await bundle()).spec).to.deep.equal(before);
  });

  it('rolls one of two clusters back to v1 without git; a new commit leaves it pinned; --clear returns it to the newest', async () => {
    const repoBefore = (await fleet.upstream.get<Obj<GitRepo>>({ apiVersion: API_VERSION, kind: 'GitRepo', namespace: WS, name: REPO }))?.status?.commit;
    const r = await cli('rollback', BUNDLE, '--to', 'v1', '--clusters', 'region=eu');
    expect(r.code, r.err).to.equal(0);
    await runs({ 'downstream-1': '1', 'downstream-2': '3' });
    await waitFor(async () => (cond(await bundle(), 'RolledBack')?.status === 'True' ? true : undefined), { what: 'RolledBack condition', timeoutMs: 180_000 });
    let b = await bundle();
    expect(b.spec.rollback?.version).to.equal(1);
    expect(b.status?.rollback?.clusters).to.deep.equal(['downstream-1']);
    const bd = (
      await fleet.upstream.list<Obj<BundleDeployment>>(
        { apiVersion: API_VERSION, kind: 'BundleDeployment' },
        `${Label.Cluster}=downstream-1,${Label.RepoName}=${REPO}`,
      )
    ).items[0];
    expect(bd?.metadata.labels?.[Label.RolledBackTo]).to.equal('v1');
    expect(bd?.spec.oci?.digest).to.equal(b.status?.history?.[0]?.digest);
    const gitRepo = await fleet.upstream.get<Obj<GitRepo>>({ apiVersion: API_VERSION, kind: 'GitRepo', namespace: WS, name: REPO });
    expect(gitRepo?.status?.commit, 'git untouched').to.equal(repoBefore);
    const history = await cli('history', BUNDLE);
    expect(history.out.split('\n').find((l) => l.startsWith('v1')))
      .to.include('(rollback)')
      .and.include('downstream-1');

    // A new commit: the rolled-back cluster stays on v1, the other moves to v4; status says v4 waits.
    const fourth = await git().commit(REPO, { 'app/cm.yaml': cm('4') }, 'four');
    await runs({ 'downstream-2': '4' });
    expect(await version('downstream-1')).to.equal('1');
    await waitFor(async () => ((await bundle()).status?.rollback?.newestVersion === 4 ? true : undefined), { what: 'newestVersion 4', timeoutMs: 180_000 });
    b = await bundle();
    expect(cond(b, 'RolledBack')?.message).to.include('newest version v4 waits');
    // The GitRepo's status is written after its Bundles, so the Bundle can name v4 before the GitRepo names the commit.
    await waitFor(
      async () =>
        (await fleet.upstream.get<Obj<GitRepo>>({ apiVersion: API_VERSION, kind: 'GitRepo', namespace: WS, name: REPO }))?.status?.commit === fourth
          ? true
          : undefined,
      { what: `GitRepo status.commit ${fourth}`, timeoutMs: 60_000 },
    );

    const cleared = await cli('rollback', BUNDLE, '--clear');
    expect(cleared.code, cleared.err).to.equal(0);
    await runs({ 'downstream-1': '4', 'downstream-2': '4' });
    await waitFor(async () => (cond(await bundle(), 'RolledBack') === undefined ? true : undefined), { what: 'RolledBack removed', timeoutMs: 180_000 });
    expect((await bundle()).spec.rollback).to.equal(undefined);
  });
});
