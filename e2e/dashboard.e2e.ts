import { expect } from 'chai';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { KubeConfig } from '@kubernetes/client-node';
import type { Page } from 'playwright-core';
import { stack } from './fixture.js';
import { waitFor } from '../stack/net.js';
import { spawnManaged, type ManagedProcess } from '../stack/proc.js';
import { API_VERSION, Label, type Bundle, type BundleDeployment, type GitRepo } from '../lib/api/index.js';
import type { KubeObject } from '../lib/kube/client.js';
import { startFleet, type Fleet } from './support/processes.js';
import { applyCredentials, gitRepoObject, ociRegistryFor } from './support/fleetobjects.js';
import { startBrowser, type TestBrowser } from './support/browser.js';

/**
 * The dashboard on the real stack, in a real browser: `flotilla dashboard` runs as its own process with
 * the admin kubeconfig (actions enabled) and a second one as a read-only ServiceAccount; Debian's
 * chromium loads each page. A GitRepo with a good bundle and a bad one (a ConfigMap whose data key the API
 * server rejects, naming the `<script>` key in its error message) deploys to two clusters in two
 * ClusterGroups. Screenshots of every page go to <fleet log dir>/screenshots (printed at the end).
 */

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const WS = 'dash-e2e';
const REPO = 'dash-e2e-app';
const APP_NS = 'dash-e2e-app';
const MANAGER = 'dashboard-e2e';
const SCRIPT = '<script>window.__injected=1</script>';
const CLUSTERS = [
  { name: 'downstream-1', labels: { env: 'dash-prod' }, group: 'prod' },
  { name: 'downstream-2', labels: { env: 'dash-dev' }, group: 'dev' },
];
type Obj<T> = T & KubeObject;
const ROLLOUT = [
  'rolloutStrategy:',
  '  partitions:',
  '  - name: canary',
  '    clusterName: downstream-1',
  '  - name: rest',
  '    clusterSelector: {matchLabels: {env: dash-dev}}',
  '',
].join('\n');
/** The values of the good bundle's Secret in its first and second version: never on the page, in clear or base64. */
const SECRET_VALUES = ['dash-secret-value-one', 'dash-secret-value-two'];
const goodConfigMap = (a: string) => `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: dash-good\ndata:\n  a: "${a}"\n`;
const goodSecret = (token: string) =>
  `apiVersion: v1\nkind: Secret\nmetadata:\n  name: dash-secret\ntype: Opaque\ndata:\n  token: ${Buffer.from(token).toString('base64')}\n`;

/** Starts `flotilla dashboard` with `args` on a free port; resolves with its URL, read from its first line. */
async function startDashboardProcess(name: string, args: string[], logFile: string): Promise<{ proc: ManagedProcess; url: string }> {
  const proc = spawnManaged(name, process.execPath, ['--import', 'tsx', 'bin/flotilla.js', 'dashboard', '--port', '0', ...args], logFile, { cwd: ROOT });
  const url = await waitFor(
    async () => {
      if (!proc.running()) throw new Error(`${name} exited: ${await readFile(logFile, 'utf8')}`);
      return /flotilla dashboard: (http:\/\/127\.0\.0\.1:\d+\/)/.exec(await readFile(logFile, 'utf8').catch(() => ''))?.[1];
    },
    // Generous: tsx compiles the whole CLI on start, and the e2e machine may be loaded.
    { what: `${name} to listen`, timeoutMs: 180_000, intervalMs: 200 },
  );
  return { proc, url };
}

/** The `[data-state]` badges of an element as "State:count" (or "State" without a count), sorted. */
async function badgesIn(page: Page, selector: string): Promise<string[]> {
  const cells = await page.locator(selector).locator('[data-state]').allTextContents();
  const states = await page
    .locator(selector)
    .locator('[data-state]')
    .evaluateAll((els) => els.map((e) => e.getAttribute('data-state') ?? ''));
  return states.map((s, i) => `${s}:${/\d+/.exec(cells[i] ?? '')?.[0] ?? ''}`).sort();
}

describe('dashboard: the fleet in a real browser', function () {
  this.timeout(10 * 60_000);
  let fleet: Fleet;
  let browser: TestBrowser;
  let page: Page;
  let dashboard: { proc: ManagedProcess; url: string };
  let readOnly: { proc: ManagedProcess; url: string } | undefined;
  let shots: string;
  let failed = false;
  /** Messages of JavaScript dialogs (alert, confirm): a script from the API's text would open one. */
  const dialogs: string[] = [];
  const git = () => stack().git!;
  const bundleOf = (path: string) => `${REPO}-${path}`;
  const shoot = async (name: string) => await page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
  const goodBundle = async () => await fleet.upstream.get<Obj<Bundle>>({ apiVersion: API_VERSION, kind: 'Bundle', namespace: WS, name: bundleOf('good') });
  const bds = async () =>
    (await fleet.upstream.list<Obj<BundleDeployment>>({ apiVersion: API_VERSION, kind: 'BundleDeployment' }, `${Label.RepoName}=${REPO}`)).items;

  before(async function () {
    this.timeout(10 * 60_000);
    fleet = await startFleet(stack(), { workspace: WS, clusters: CLUSTERS.map(({ name, labels }) => ({ name, labels })) });
    shots = join(fleet.logDir, 'screenshots');
    await mkdir(shots, { recursive: true });
    for (const c of CLUSTERS) {
      await fleet.upstream.apply(
        { apiVersion: API_VERSION, kind: 'ClusterGroup', metadata: { name: c.group, namespace: WS }, spec: { selector: { matchLabels: c.labels } } },
        MANAGER,
      );
    }
    await applyCredentials(fleet.upstream, WS, MANAGER, git(), stack().registry('http'));
    await git().createRepo(REPO);
    const commit = await git().commit(
      REPO,
      {
        // Two explicit partitions for the Bundle page's rollout section; the bad bundle has no rolloutStrategy.
        'good/fleet.yaml': `defaultNamespace: ${APP_NS}\n${ROLLOUT}`,
        'good/cm.yaml': goodConfigMap('1'),
        'good/secret.yaml': goodSecret(SECRET_VALUES[0] as string),
        'bad/fleet.yaml': `defaultNamespace: ${APP_NS}\n`,
        // The API server refuses the key and names it in its message as it is (the value it would quote with escapes).
        'bad/cm.yaml': `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: dash-bad\ndata:\n  "${SCRIPT}": x\n`,
      },
      'a good bundle and a bad one',
    );
    await fleet.upstream.apply(
      gitRepoObject(REPO, WS, git(), REPO, { paths: ['good', 'bad'], ociRegistry: ociRegistryFor(stack().registry('http'), 'dash-e2e') }),
      MANAGER,
    );
    // The bad bundle never gets Ready: wait for the commit to be built and each BundleDeployment to be settled.
    await waitFor(
      async () => {
        await fleet.assertAlive();
        const repo = await fleet.upstream.get<Obj<GitRepo>>({ apiVersion: API_VERSION, kind: 'GitRepo', namespace: WS, name: REPO });
        const states = (await bds()).map((b) => `${b.metadata.labels?.[Label.BundleName]}=${b.status?.display?.state}`).sort();
        const want = [`${bundleOf('bad')}=ErrApplied`, `${bundleOf('bad')}=ErrApplied`, `${bundleOf('good')}=Ready`, `${bundleOf('good')}=Ready`];
        return repo?.status?.commit === commit && JSON.stringify(states) === JSON.stringify(want);
      },
      {
        what: 'the good bundle Ready and the bad one ErrApplied on both clusters',
        timeoutMs: 240_000,
        intervalMs: 500,
        context: () => `logs in ${fleet.logDir}`,
      },
    );
    dashboard = await startDashboardProcess(
      'dashboard',
      ['--kubeconfig', stack().cluster('upstream').kubeconfigPath, '--enable-actions'],
      join(fleet.logDir, 'dashboard.log'),
    );
    browser = await startBrowser();
    page = await browser.context.newPage();
    page.on('dialog', (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });
  });
  afterEach(function () {
    if (this.currentTest?.state === 'failed') failed = true;
  });
  after(async function () {
    this.timeout(120_000);
    await browser?.close();
    await readOnly?.proc.stop();
    await dashboard?.proc.stop();
    await fleet?.stop();
    // A failed hook or a test that never ran counts as a failure too: keep the logs then.
    if (!(this.test?.parent?.tests ?? []).every((t) => t.state === 'passed')) failed = true;
    if (fleet) {
      // Keep the screenshots (the test's artifacts); keep every log too when something failed.
      if (!failed)
        for (const entry of await readdir(fleet.logDir)) if (entry !== 'screenshots') await rm(join(fleet.logDir, entry), { recursive: true, force: true });
      process.stdout.write(`      dashboard screenshots: ${shots}${failed ? ` (logs beside them in ${fleet.logDir})` : ''}\n`);
    }
  });

  it('fleet page: the GitRepo with its commit, state, ready counts and last error', async () => {
    const repo = (await fleet.upstream.get<Obj<GitRepo>>({ apiVersion: API_VERSION, kind: 'GitRepo', namespace: WS, name: REPO }))!;
    await page.goto(dashboard.url);
    const row = page.locator(`tr[data-gitrepo="${WS}/${REPO}"]`);
    await row.waitFor();
    await waitFor(async () => ((await row.textContent()) ?? '').includes(repo.status!.commit!.slice(0, 12)) || undefined, {
      what: 'the commit on the fleet page',
      timeoutMs: 10_000,
    });
    const text = (await row.textContent()) ?? '';
    expect(text).to.include(repo.status?.display?.readyBundleDeployments ?? 'no count in the API');
    expect(text).to.include(bundleOf('good')).and.include(bundleOf('bad'));
    expect(repo.status?.display?.message, 'the API holds an error for the GitRepo').to.be.a('string').and.not.equal('');
    expect(text).to.include((repo.status?.display?.message ?? '').slice(0, 60));
    await shoot('fleet');
  });

  it('matrix: each group shows the states the API holds, and a group expands from the keyboard', async () => {
    await page.goto(`${dashboard.url}#/matrix`);
    await page.locator('#matrix').waitFor();
    const byCluster = new Map(
      (await bds()).map((b) => [`${b.metadata.labels?.[Label.Cluster]}|${b.metadata.labels?.[Label.BundleName]}`, b.status?.display?.state]),
    );
    const headers = await page.locator('#matrix thead th').allTextContents();
    for (const c of CLUSTERS) {
      for (const path of ['good', 'bad']) {
        const col = headers.indexOf(bundleOf(path));
        expect(col, `column of ${bundleOf(path)}`).to.be.above(1);
        const cell = `#matrix tr[data-group="${WS}/${c.group}"] > :nth-child(${col + 1})`;
        expect(await badgesIn(page, cell), `${c.group} x ${bundleOf(path)}`).to.deep.equal([`${byCluster.get(`${c.name}|${bundleOf(path)}`)}:1`]);
      }
    }
    const expand = page.getByRole('button', { name: /^▸ prod/ });
    await expand.focus();
    await page.keyboard.press('Enter');
    await page.getByRole('button', { name: /^▾ prod/ }).waitFor();
    const sub = page.getByRole('table', { name: 'Clusters of prod' });
    await sub.waitFor();
    expect(await sub.locator('tbody tr').allTextContents()).to.have.length(1);
    expect(((await sub.textContent()) ?? '').includes('downstream-1')).to.equal(true);
    await shoot('matrix');
  });

  it('keeps the focus on a control the user moved to while the page was re-rendering', async () => {
    await page.goto(`${dashboard.url}#/matrix`);
    await page.locator('#matrix').waitFor();
    // Hold the next matrix fetch until the button is focused: the re-render that follows replaces the button.
    let release: () => void = () => undefined;
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    let asked = 0;
    await page.route('**/api/matrix', async (route) => {
      asked++;
      await held;
      await route.continue();
    });
    try {
      // The focus starts elsewhere (a link of the navigation), as when the user tabs towards the button.
      await page.locator('nav a').first().focus();
      const renders = Number((await page.locator('body').getAttribute('data-renders')) ?? '0');
      // Any watched change makes the page re-render; a ClusterGroup annotation changes nothing shown.
      await fleet.upstream.mergePatch(
        { apiVersion: API_VERSION, kind: 'ClusterGroup', namespace: WS, name: 'prod' },
        { metadata: { annotations: { 'dash-e2e/touched': String(Date.now()) } } },
      );
      await waitFor(async () => asked > 0 || undefined, { what: 'the re-render to fetch the matrix', timeoutMs: 30_000 });
      // (Expanded or not: the test before may have left it open.)
      await page.getByRole('button', { name: /^[▸▾] prod/ }).focus();
      release();
      await waitFor(async () => Number((await page.locator('body').getAttribute('data-renders')) ?? '0') > renders || undefined, {
        what: 'the re-render to finish',
        timeoutMs: 30_000,
      });
      expect(await page.locator(':focus').getAttribute('data-key')).to.equal(`expand-${WS}/prod`);
    } finally {
      release();
      await page.unroute('**/api/matrix');
    }
  });

  it('shows a change on the API within the page, without a reload', async () => {
    await page.goto(`${dashboard.url}#/matrix`);
    await page.locator('#matrix').waitFor();
    await page.evaluate(() => Object.assign(globalThis, { __sameDocument: true }));
    await fleet.upstream.apply(
      {
        apiVersion: API_VERSION,
        kind: 'ClusterGroup',
        metadata: { name: 'everyone', namespace: WS },
        spec: { selector: { matchExpressions: [{ key: 'env', operator: 'Exists' }] } },
      },
      MANAGER,
    );
    const row = page.locator(`#matrix tr[data-group="${WS}/everyone"]`);
    await row.waitFor({ timeout: 60_000 });
    expect((await row.locator('td').first().textContent()) ?? '').to.equal('2');
    expect(await page.evaluate(() => (globalThis as unknown as { __sameDocument?: boolean }).__sameDocument)).to.equal(true);
  });

  it("bundle page: the failure's message is visible, with the <script> it holds shown as text", async () => {
    const bad = (await bds()).find((b) => b.metadata.labels?.[Label.BundleName] === bundleOf('bad') && b.metadata.labels?.[Label.Cluster] === 'downstream-1')!;
    const message = bad.status?.conditions?.find((c) => c.type === 'Deployed' && c.status === 'False')?.message ?? '';
    expect(message, 'the API server echoed the <script> in its error').to.include(SCRIPT);
    await page.goto(`${dashboard.url}#/matrix`);
    await page
      .getByRole('link', { name: bundleOf('bad') })
      .first()
      .click();
    const table = page.locator('#bundle-clusters');
    await table.waitFor();
    const row = table.locator('tr', { hasText: 'downstream-1' });
    expect(await row.locator('[data-state]').getAttribute('data-state')).to.equal('ErrApplied');
    expect((await row.textContent()) ?? '').to.include(SCRIPT);
    expect(await page.evaluate(() => (globalThis as unknown as { __injected?: number }).__injected)).to.equal(undefined);
    expect(await page.locator('script').count(), 'only the page module is a script element').to.equal(1);
    expect(dialogs, 'no script from the API ran').to.deep.equal([]);
    await shoot('bundle');
  });

  it('cluster page: labels, last heartbeat, the agent version and each bundle with its state', async () => {
    await page.goto(`${dashboard.url}#/cluster/${WS}/downstream-2`);
    await page.locator('#cluster-bundles').waitFor();
    const text = (await page.locator('main').textContent()) ?? '';
    expect(text).to.include('env').and.include('dash-dev').and.include('Last heartbeat');
    // The agent process reported its version in its heartbeat; the page shows it, not "not reported".
    const { version } = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
    expect(text).to.match(new RegExp(`Agent version\\s*${version.replaceAll('.', '\\.')}`));
    expect(await badgesIn(page, '#cluster-bundles')).to.deep.equal(['ErrApplied:', 'Ready:']);
    await shoot('cluster');
  });

  it('force sync after a confirmation, with the admin identity: the API gets forceSyncGeneration 1', async () => {
    await page.goto(dashboard.url);
    await page.getByRole('button', { name: `Force sync ${WS}/${REPO}` }).click();
    await page.locator('dialog[open]').waitFor();
    await shoot('confirm');
    await page.getByRole('button', { name: 'Confirm' }).click();
    await page.locator('#notice', { hasText: 'forceSyncGeneration set to 1' }).waitFor();
    const repo = await fleet.upstream.get<Obj<GitRepo>>({ apiVersion: API_VERSION, kind: 'GitRepo', namespace: WS, name: REPO });
    expect(repo?.spec.forceSyncGeneration).to.equal(1);
  });

  it('an action refused by RBAC (a read-only identity) shows the 403 clearly and changes nothing', async () => {
    const sa = 'dash-e2e-viewer';
    await fleet.upstream.apply({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: sa, namespace: WS } }, MANAGER);
    await fleet.upstream.apply(
      {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'ClusterRole',
        metadata: { name: sa },
        rules: [
          {
            apiGroups: ['flotilla.dev'],
            resources: ['gitrepos', 'bundles', 'bundledeployments', 'clusters', 'clustergroups'],
            verbs: ['get', 'list', 'watch'],
          },
        ],
      },
      MANAGER,
    );
    await fleet.upstream.apply(
      {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'ClusterRoleBinding',
        metadata: { name: sa },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: sa },
        subjects: [{ kind: 'ServiceAccount', name: sa, namespace: WS }],
      },
      MANAGER,
    );
    const token = await fleet.upstream.raw<{ status?: { token?: string } }>('POST', `/api/v1/namespaces/${WS}/serviceaccounts/${sa}/token`, {
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenRequest',
      spec: { expirationSeconds: 3600 },
    });
    const up = stack().cluster('upstream');
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'upstream', server: up.server, caData: Buffer.from(up.caPem).toString('base64'), skipTLSVerify: false }],
      users: [{ name: sa, token: token.status?.token ?? '' }],
      contexts: [{ name: sa, cluster: 'upstream', user: sa }],
      currentContext: sa,
    });
    const kubeconfig = join(fleet.logDir, 'viewer.kubeconfig');
    await writeFile(kubeconfig, kc.exportConfig(), { mode: 0o600 });
    readOnly = await startDashboardProcess('dashboard-viewer', ['--kubeconfig', kubeconfig, '--enable-actions'], join(fleet.logDir, 'dashboard-viewer.log'));
    await page.goto(readOnly.url);
    await page.getByRole('button', { name: `Pause ${WS}/${REPO}` }).click();
    await page.getByRole('button', { name: 'Confirm' }).click();
    const notice = page.locator('#notice.error');
    await notice.waitFor();
    expect((await notice.textContent()) ?? '')
      .to.match(/HTTP 403 Forbidden/)
      .and.include('patch');
    expect(await notice.getAttribute('role')).to.equal('alert');
    await shoot('forbidden');
    const repo = await fleet.upstream.get<Obj<GitRepo>>({ apiVersion: API_VERSION, kind: 'GitRepo', namespace: WS, name: REPO });
    expect(repo?.spec.paused).to.equal(undefined);
  });

  it('bundle page: the rollout per partition as the API holds it, and the state of a bundle without a rolloutStrategy', async () => {
    const good = await waitFor(async () => ((await goodBundle())?.status?.rollout?.phase === 'Complete' ? await goodBundle() : undefined), {
      what: 'the rollout of the good bundle Complete on the API',
      timeoutMs: 60_000,
      intervalMs: 500,
    });
    const partitions = good?.status?.rollout?.partitions ?? [];
    expect(partitions.map((p) => p.name)).to.deep.equal(['canary', 'rest']);
    await page.goto(`${dashboard.url}#/bundle/${WS}/${bundleOf('good')}`);
    const table = page.getByRole('table', { name: 'Partitions, in rollout order' });
    await table.waitFor();
    expect(await table.locator('tbody tr').count()).to.equal(partitions.length);
    for (const p of partitions) {
      const row = table.locator(`tr[data-partition="${p.name}"]`);
      expect(await row.locator('[data-phase]').getAttribute('data-phase'), p.name).to.equal(p.phase);
      expect(((await row.locator('[data-phase]').textContent()) ?? '').trim(), 'the phase in words, not by colour alone').to.match(new RegExp(p.phase));
      expect(await row.locator('td').nth(1).textContent(), p.name).to.equal(`${p.upToDate}/${p.count}`);
    }
    expect((await page.locator('#rollout').textContent()) ?? '').to.include('Complete');
    await shoot('bundle-rollout');
    await page.goto(`${dashboard.url}#/bundle/${WS}/${bundleOf('bad')}`);
    expect((await page.locator('#rollout-none').textContent()) ?? '').to.include('No rolloutStrategy');
  });

  it('bundle page: a second commit shows in the version history without a reload, and the diff of two chosen versions shows the changed line, Secret values masked', async () => {
    await page.goto(`${dashboard.url}#/bundle/${WS}/${bundleOf('good')}`);
    const history = page.locator('#bundle-history');
    await history.waitFor({ timeout: 30_000 });
    // The version the Bundle points at is listed (the page reads the history again while it is not).
    await history.locator('tbody tr[data-version]', { hasText: '(newest)' }).waitFor({ timeout: 30_000 });
    await page.evaluate(() => Object.assign(globalThis, { __sameDocument: true }));
    const second = await git().commit(
      REPO,
      { 'good/cm.yaml': goodConfigMap('2'), 'good/secret.yaml': goodSecret(SECRET_VALUES[1] as string) },
      'the good bundle changes a value and its Secret',
    );
    const newest = history.locator('tbody tr', { hasText: second.slice(0, 12) });
    await newest.waitFor({ timeout: 180_000 });
    expect(await page.evaluate(() => (globalThis as unknown as { __sameDocument?: boolean }).__sameDocument)).to.equal(true);
    const rows = await history.locator('tbody tr[data-version]').evaluateAll((els) => els.map((e) => Number(e.getAttribute('data-version'))));
    expect(rows.length, 'at least two versions after the second commit').to.be.at.least(2);
    const to = Number(await newest.getAttribute('data-version'));
    const from = rows[rows.indexOf(to) - 1] as number;
    const api = (await goodBundle())?.status?.history ?? [];
    expect(api.map((e) => e.version)).to.include.members([from, to]);
    expect((await newest.textContent()) ?? '')
      .to.include('(newest)')
      .and.include('~cm.yaml')
      .and.include('~secret.yaml');

    // Choose the versions and the cluster with the labelled controls, then submit from the keyboard.
    await page.getByLabel('From version').selectOption(String(from));
    await page.getByLabel('To version').selectOption(String(to));
    await page.getByLabel('Render for cluster').selectOption({ label: 'downstream-1' });
    await page.getByRole('button', { name: 'Show diff' }).focus();
    await page.keyboard.press('Enter');
    const objects = page.locator('#diff-objects');
    await objects.waitFor({ timeout: 60_000 });
    expect((await page.locator('#diff-files').textContent()) ?? '')
      .to.include('~ cm.yaml')
      .and.include('~ secret.yaml');
    const text = (await objects.textContent()) ?? '';
    expect(text).to.include(`~ v1/ConfigMap ${APP_NS}/dash-good`);
    expect(text)
      .to.match(/^ {4}- {3}a: '1'$/m)
      .and.match(/^ {4}\+ {3}a: '2'$/m);
    expect(text).to.include(`~ v1/Secret ${APP_NS}/dash-secret`).and.include('*** (before)').and.include('*** (after)');
    const whole = (await page.locator('main').textContent()) ?? '';
    for (const v of SECRET_VALUES) {
      expect(whole, 'a Secret value in clear').not.to.include(v);
      expect(whole, 'a Secret value in base64').not.to.include(Buffer.from(v).toString('base64'));
    }
    expect(await page.locator('#diff-objects .d-add').count(), 'added lines are marked').to.be.at.least(1);
    expect(dialogs, 'no script from the API ran').to.deep.equal([]);
    await shoot('bundle-history-diff');
  });
});
