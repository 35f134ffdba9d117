import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { stack } from './fixture.js';
import { startGitServer, type GitServer } from '../stack/git.js';
import { createCA, issueCert } from '../stack/tls.js';
import { waitFor } from '../stack/net.js';
import { requestsSince, settledLog } from '../stack/registry.js';
import { startTestController, type TestController } from './support/controller.js';
import { API_VERSION, Annotation, ConditionType, Finalizer, Label, Reason, type Bundle, type BundleDeployment, type GitRepo } from '../lib/api/index.js';
import { CONTROLLER_FIELD_MANAGER } from '../controller/rbac.js';
import type { KubeClient, KubeObject } from '../lib/kube/client.js';
import { decodeSecretData } from '../lib/kube/secret.js';
import { RegistryClient, pullBundle } from '../lib/oci/index.js';
import { renderBundle, renderOptionsFrom } from '../lib/bundle/index.js';
import { formatTime } from '../lib/util/time.js';
import { metricValue } from '../lib/ops/metrics.js';
import { forgetEarlierSuites } from './support/kube.js';

type Obj<T> = T & KubeObject;

const configMap = (name: string, data: Record<string, string>) =>
  `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${name}\ndata:\n${Object.entries(data)
    .map(([k, v]) => `  ${k}: "${v}"`)
    .join('\n')}\n`;

const appFleetYaml = [
  'defaultNamespace: demo',
  'targetCustomizations:',
  '- name: prod',
  '  clusterSelector:',
  '    matchLabels: {env: prod}',
  '  yaml:',
  '    overlays: [prod]',
  '',
].join('\n');

/** The sample repository: one bundle with a prod overlay, one plain bundle. */
function sampleRepo(version: string): Record<string, string> {
  return {
    'app/fleet.yaml': appFleetYaml,
    'app/settings.yaml': configMap('settings', { version, tier: 'base' }),
    'app/overlays/prod/settings_patch.yaml': 'metadata:\n  name: settings\ndata:\n  tier: production\n',
    'tools/tool.yaml': configMap('tool', { enabled: 'yes' }),
  };
}

async function ensureNamespace(kube: KubeClient, name: string): Promise<void> {
  await kube.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } }, 'flotilla-e2e');
}

/** A git server's credentials (the stack's by default) as Secret `name` of namespace `ns`, for a GitRepo's clientSecretName. */
async function gitCredentials(kube: KubeClient, ns: string, name = 'git-creds', git: { username: string; password: string } = stack().git!): Promise<void> {
  await kube.apply(
    {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name, namespace: ns },
      type: 'kubernetes.io/basic-auth',
      stringData: { username: git.username, password: git.password },
    },
    'flotilla-e2e',
  );
}

async function createCluster(kube: KubeClient, ns: string, name: string, labels: Record<string, string>): Promise<void> {
  await kube.apply({ apiVersion: API_VERSION, kind: 'Cluster', metadata: { name, namespace: ns, labels }, spec: {} }, 'flotilla-e2e');
}

function condition(
  obj: { status?: { conditions?: { type: string; status: string; reason: string; message: string; lastTransitionTime?: string }[] } } | undefined,
  type: string,
) {
  return obj?.status?.conditions?.find((c) => c.type === type);
}

async function bundleDeployments(kube: KubeClient, repo: string): Promise<Obj<BundleDeployment>[]> {
  return (await kube.list<Obj<BundleDeployment>>({ apiVersion: API_VERSION, kind: 'BundleDeployment' }, `${Label.RepoName}=${repo}`)).items.filter(
    (bd) => !bd.metadata.deletionTimestamp,
  );
}

describe('controller: GitRepo -> Bundles -> OCI artifacts -> BundleDeployments', function () {
  this.timeout(480_000); // ceilings for a loaded 2-core machine, not measures
  let ctl: TestController;
  let kube: KubeClient;
  const ws = 'ctl-e2e';
  let repoUrl: string;

  before(async () => {
    ctl = await startTestController(stack().cluster('upstream'));
    kube = ctl.kube;
    // In a CI shard, earlier suites' GitRepos (their git servers gone) would be polled by this controller too.
    await forgetEarlierSuites(kube);
    await ensureNamespace(kube, ws);
    await createCluster(kube, ws, 'c1', { env: 'prod', region: 'eu' });
    await createCluster(kube, ws, 'c2', { env: 'dev', region: 'us' });
    await createCluster(kube, ws, 'c3', { env: 'prod', region: 'us' });
    await kube.apply(
      {
        apiVersion: API_VERSION,
        kind: 'ClusterGroup',
        metadata: { name: 'prod', namespace: ws, labels: { tier: 'gold' } },
        spec: { selector: { matchLabels: { env: 'prod' } } },
      },
      'flotilla-e2e',
    );
    const git = stack().git!;
    repoUrl = await git.createRepo('ctl-sample');
    await git.commit('ctl-sample', sampleRepo('1'), 'first');
    await gitCredentials(kube, ws);
  });
  after(async () => {
    await ctl?.stop();
  });

  const gitRepo = (name: string, spec: Partial<GitRepo['spec']>) => ({
    apiVersion: API_VERSION,
    kind: 'GitRepo',
    metadata: { name, namespace: ws },
    spec: { repo: repoUrl, branch: 'main', clientSecretName: 'git-creds', pollingInterval: '2s', ...spec },
  });

  const waitGitRepo = (name: string, what: string, ok: (r: Obj<GitRepo>) => boolean, timeoutMs = 180_000) =>
    waitFor(
      async () => {
        const r = await kube.get<Obj<GitRepo>>({ apiVersion: API_VERSION, kind: 'GitRepo', namespace: ws, name });
        return r && ok(r) ? r : undefined;
      },
      { what: `GitRepo ${name}: ${what}`, timeoutMs, context: () => JSON.stringify(ctl.logs.slice(-5), null, 1) },
    );

  describe('in OCI mode', () => {
    it('stores each bundle as an artifact and writes Bundles and BundleDeployments that hold no resources', async () => {
      const reg = stack().registry('http');
      await kube.apply(
        gitRepo('oci', {
          targets: [{ clusterSelector: { matchLabels: { env: 'prod' } } }],
          ociRegistry: { reference: `${reg.host}/flotilla-e2e`, basicHTTP: true },
        }),
        'flotilla-e2e',
      );
      const repo = await waitGitRepo(
        'oci',
        'artifacts stored',
        (r) => condition(r, ConditionType.ArtifactsStored)?.status === 'True' && (r.status?.artifacts?.length ?? 0) === 2,
      );
      expect(repo.status?.commit).to.match(/^[0-9a-f]{40}$/);
      const bds = await waitFor(
        async () => {
          const l = await bundleDeployments(kube, 'oci');
          return l.length === 4 ? l : undefined;
        },
        { what: '4 BundleDeployments (2 bundles x 2 prod clusters)', timeoutMs: 30_000 },
      );
      expect(bds.map((b) => b.metadata.labels?.[Label.Cluster]).sort()).to.deep.equal(['c1', 'c1', 'c3', 'c3']);
      const bundles = (await kube.list<Obj<Bundle>>({ apiVersion: API_VERSION, kind: 'Bundle', namespace: ws }, `${Label.RepoName}=oci`)).items;
      for (const b of bundles) {
        expect(b.spec.resources, `Bundle ${b.metadata.name} holds no resources`).to.equal(undefined);
        expect(b.spec.oci?.reference).to.match(new RegExp(`^${reg.host}/flotilla-e2e/.+@sha256:[0-9a-f]{64}$`));
      }
      for (const bd of bds) {
        expect(bd.spec.resources, `BundleDeployment ${bd.metadata.namespace}/${bd.metadata.name} holds no resources`).to.equal(undefined);
        expect(bd.spec.oci?.digest).to.match(/^sha256:/);
      }
      // The raw objects in the API server contain none of the manifests' content.
      const raw = JSON.stringify([bundles, bds]);
      expect(raw).not.to.include('tier: base');
      // The artifact is really in the registry, with the files of the bundle.
      const app = bundles.find((b) => b.metadata.name === 'oci-app')!;
      const client = new RegistryClient({ registry: reg.host, basicHTTP: true });
      try {
        const pulled = await pullBundle(client, app.spec.oci!.reference);
        expect(pulled.files.map((f) => f.path)).to.deep.equal(['overlays/prod/settings_patch.yaml', 'settings.yaml']);
        // Overlays render per cluster as Fleet renders them: every BD here targets a prod cluster.
        const bd = bds.find((b) => b.metadata.name === 'oci-app' && b.metadata.labels?.[Label.Cluster] === 'c1')!;
        expect(bd.spec.options?.yaml?.overlays).to.deep.equal(['prod']);
        const objects = renderBundle(pulled.files, renderOptionsFrom(bd.spec.options));
        expect(objects).to.have.length(1);
        expect(objects[0]?.metadata.namespace).to.equal('demo');
        expect((objects[0] as { data?: Record<string, string> }).data).to.deep.equal({ version: '1', tier: 'production' });
      } finally {
        await client.close();
      }
    });

    it('pushes with authSecretName to a TLS registry with its CA, and hands agents only the read-only credentials', async () => {
      const reg = stack().registry('tls-auth');
      await kube.apply(
        {
          apiVersion: 'v1',
          kind: 'Secret',
          metadata: { name: 'reg-auth', namespace: ws },
          stringData: { username: reg.username!, password: reg.password!, agentUsername: 'puller', agentPassword: 'pull-only' },
        },
        'flotilla-e2e',
      );
      await kube.apply(
        gitRepo('auth', {
          paths: ['tools'],
          targets: [{ clusterName: 'c1' }],
          ociRegistry: { reference: `${reg.host}/flotilla-auth`, authSecretName: 'reg-auth', caBundle: Buffer.from(reg.caPem!).toString('base64') },
        }),
        'flotilla-e2e',
      );
      await waitGitRepo('auth', 'artifact stored with credentials', (r) => condition(r, ConditionType.ArtifactsStored)?.status === 'True');
      const bd = await waitFor(async () => (await bundleDeployments(kube, 'auth'))[0], { what: 'the BundleDeployment', timeoutMs: 30_000 });
      const secret = await waitFor(
        async () =>
          kube.get<KubeObject & { data?: Record<string, string> }>({
            apiVersion: 'v1',
            kind: 'Secret',
            namespace: bd.metadata.namespace!,
            name: bd.spec.oci!.secretName!,
          }),
        { what: 'the agent credential Secret', timeoutMs: 30_000 },
      );
      const decoded = decodeSecretData(secret.data);
      expect(decoded).to.deep.equal({ username: 'puller', password: 'pull-only' });
      // Deleted by hand: the agent says so on the BundleDeployment, and the controller copies it again.
      const ref = { apiVersion: 'v1', kind: 'Secret', namespace: bd.metadata.namespace!, name: bd.spec.oci!.secretName! };
      await kube.delete(ref);
      await waitFor(async () => (await kube.get(ref)) === undefined || undefined, { what: 'the credential Secret gone', timeoutMs: 30_000 });
      await kube.patchStatus(
        { apiVersion: API_VERSION, kind: 'BundleDeployment', namespace: bd.metadata.namespace!, name: bd.metadata.name },
        {
          conditions: [
            {
              type: 'Deployed',
              status: 'False',
              reason: 'SecretNotFound',
              message: `registry Secret ${ref.namespace}/${ref.name} does not exist`,
              lastTransitionTime: formatTime(new Date()),
            },
          ],
        },
      );
      await waitFor(async () => kube.get(ref), { what: 'the credential Secret copied again', timeoutMs: 30_000 });
    });

    it('pushes nothing for a new commit that leaves the bundles unchanged: one check of each version in the registry', async () => {
      const reg = stack().registry('http');
      const before = await metricValue(ctl.manager.context.metrics.blobsPushed);
      const first = (await waitGitRepo('oci', 'has a commit', (r) => Boolean(r.status?.commit))).status!;
      const mark = (await settledLog(reg)).length;
      await stack().git!.commit('ctl-sample', { 'README.md': `docs ${randomBytes(4).toString('hex')}\n` }, 'docs only');
      const after = await waitGitRepo(
        'oci',
        'the docs commit synced',
        (r) => r.status?.commit !== first.commit && condition(r, ConditionType.ArtifactsStored)?.status === 'True',
      );
      expect((await metricValue(ctl.manager.context.metrics.blobsPushed)) - before, 'blobs uploaded').to.equal(0);
      expect(after.status?.artifacts?.map((a) => a.digest)).to.deep.equal(first.artifacts?.map((a) => a.digest));
      // What the controller asked the registry for this commit: no tag listing, no manifest read, no upload.
      const versions = new Set((first.artifacts ?? []).map((a) => `/v2/${a.reference.slice(reg.host.length + 1).replace('@', '/manifests/')}`));
      const repositories = [...versions].map((v) => v.split('/manifests/')[0] ?? v);
      const mine = (await requestsSince(reg, mark)).filter((e) => repositories.some((r) => e.path.startsWith(`${r}/`)));
      expect(versions.size).to.equal(2);
      expect(mine.map((e) => `${e.method} ${e.path} ${e.status}`).sort()).to.deep.equal([...versions].map((v) => `HEAD ${v} 200`).sort());
      // Nor were the Bundles written: each still names the commit that last changed it.
      const bundles = (await kube.list<Obj<Bundle>>({ apiVersion: API_VERSION, kind: 'Bundle', namespace: ws }, `${Label.RepoName}=oci`)).items;
      expect(bundles.map((b) => b.metadata.annotations?.[Annotation.Commit])).to.deep.equal(bundles.map(() => first.commit));
    });

    it('rewrites no BundleDeployment when only their status changes, and every one of them on new content', async () => {
      const m = ctl.manager.context.metrics.deploymentWrites;
      const bds = await waitFor(
        async () => {
          const l = await bundleDeployments(kube, 'oci');
          return l.length > 0 ? l : undefined;
        },
        { what: 'the BundleDeployments of oci', timeoutMs: 30_000 },
      );
      const bd = bds[0]!;
      const applied = await metricValue(m, { outcome: 'applied' });
      const unchanged = await metricValue(m, { outcome: 'unchanged' });
      // What an agent does: report status. The Bundle reconciler runs (its roll-up), and must write no BundleDeployment.
      await kube.patchStatus(
        { apiVersion: API_VERSION, kind: 'BundleDeployment', namespace: bd.metadata.namespace!, name: bd.metadata.name },
        { display: { state: `probe-${randomBytes(3).toString('hex')}` } },
      );
      await waitFor(async () => (await metricValue(m, { outcome: 'unchanged' })) > unchanged || undefined, {
        what: 'a Bundle pass after the status change',
        timeoutMs: 30_000,
      });
      expect((await metricValue(m, { outcome: 'applied' })) - applied, 'BundleDeployments applied after a status-only change').to.equal(0);
    });

    it('reports an unreachable registry on the GitRepo and Bundles, logs it, writes nothing, and recovers', async () => {
      const reg = stack().registry('http');
      const before = (await waitGitRepo('oci', 'has artifacts', (r) => Boolean(r.status?.artifacts?.length))).status!;
      const bundleBefore = await kube.get<Obj<Bundle>>({ apiVersion: API_VERSION, kind: 'Bundle', namespace: ws, name: 'oci-app' });
      await reg.stop();
      try {
        await stack().git!.commit('ctl-sample', { 'app/settings.yaml': configMap('settings', { version: '2', tier: 'base' }) }, 'v2');
        const failed = await waitGitRepo(
          'oci',
          'not Ready because of the registry',
          (r) => condition(r, ConditionType.Ready)?.reason === Reason.RegistryUnreachable,
        );
        expect(condition(failed, ConditionType.Ready)?.message).to.include(reg.host);
        const bundle = await waitFor(
          async () => {
            const b = await kube.get<Obj<Bundle>>({ apiVersion: API_VERSION, kind: 'Bundle', namespace: ws, name: 'oci-app' });
            return condition(b, ConditionType.ArtifactsStored)?.status === 'False' ? b : undefined;
          },
          { what: 'the Bundle to show the registry failure', timeoutMs: 30_000 },
        );
        expect(condition(bundle, ConditionType.ArtifactsStored)?.message).to.include(reg.host);
        // Nothing from the failed commit reached etcd: same artifact, no inline resources.
        expect(bundle.spec.oci?.digest).to.equal(bundleBefore?.spec.oci?.digest);
        expect(bundle.spec.resources).to.equal(undefined);
        expect(failed.status?.commit).to.equal(before.commit);
        expect(ctl.logs.some((l) => l.level === 50 && l.msg === 'artifact push failed' && String(l.registry).includes(reg.host))).to.equal(true);
      } finally {
        await reg.start();
      }
      const recovered = await waitGitRepo(
        'oci',
        'recovered',
        (r) => condition(r, ConditionType.ArtifactsStored)?.status === 'True' && r.status?.commit !== before.commit,
        90_000,
      );
      expect(recovered.status?.artifacts?.find((a) => a.bundle === 'oci-app')?.digest).not.to.equal(
        before.artifacts?.find((a) => a.bundle === 'oci-app')?.digest,
      );
    });
  });

  describe('bad input', () => {
    it('stalls on malformed YAML with the file and line, and keeps the last good Bundles', async () => {
      const reg = stack().registry('http');
      await stack().git!.createRepo('ctl-bad');
      await stack().git!.commit('ctl-bad', { 'app/cm.yaml': configMap('good', { a: '1' }) }, 'good');
      await kube.apply(
        gitRepo('bad', {
          repo: repoUrl.replace('ctl-sample', 'ctl-bad'),
          targets: [{ clusterName: 'c1' }],
          ociRegistry: { reference: `${reg.host}/flotilla-e2e`, basicHTTP: true },
        }),
        'flotilla-e2e',
      );
      const good = await waitGitRepo('bad', 'the good commit stored', (r) => condition(r, ConditionType.ArtifactsStored)?.status === 'True');
      const badBundle = async () => {
        const items = (await kube.list<Obj<Bundle>>({ apiVersion: API_VERSION, kind: 'Bundle', namespace: ws }, `${Label.RepoName}=bad`)).items;
        expect(items, 'the Bundles of GitRepo bad').to.have.length(1);
        return items[0]!;
      };
      const before = await badBundle();
      expect(before.spec.oci?.digest).to.match(/^sha256:/);
      await stack().git!.commit(
        'ctl-bad',
        { 'app/cm.yaml': configMap('good', { a: '2' }), 'app/broken.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [unclosed\n' },
        'broken',
      );
      const stalled = await waitGitRepo('bad', 'stalled on the malformed file', (r) => condition(r, ConditionType.Stalled)?.status === 'True');
      const message = condition(stalled, ConditionType.Stalled)?.message ?? '';
      expect(condition(stalled, ConditionType.Stalled)?.reason).to.equal(Reason.InvalidBundle);
      expect(message).to.match(/broken\.yaml:\d+/);
      expect(stalled.status?.commit, 'the status still names the last good commit').to.equal(good.status?.commit);
      const after = await badBundle();
      expect(after.spec.oci?.digest, 'the last good artifact stays').to.equal(before.spec.oci?.digest);
      // A Bundle status change rolls up into the GitRepo between polls: the stall must stand.
      const reconciles = ctl.manager.context.metrics.reconciles;
      const seen = await metricValue(reconciles, { controller: 'gitrepo', outcome: 'success' });
      await kube.patchStatus({ apiVersion: API_VERSION, kind: 'Bundle', namespace: ws, name: after.metadata.name }, { display: { state: 'RollUpProbe' } });
      await waitFor(async () => (await metricValue(reconciles, { controller: 'gitrepo', outcome: 'success' })) > seen || undefined, {
        what: 'a GitRepo roll-up',
        timeoutMs: 30_000,
      });
      const still = await kube.get<Obj<GitRepo>>({ apiVersion: API_VERSION, kind: 'GitRepo', namespace: ws, name: 'bad' });
      expect(condition(still, ConditionType.Stalled)?.status, 'Stalled after a roll-up between polls').to.equal('True');
      expect(condition(still, ConditionType.Stalled)?.lastTransitionTime, 'never cleared meanwhile').to.equal(
        condition(stalled, ConditionType.Stalled)?.lastTransitionTime,
      );
    });

    it('deletes the artifacts of a deleted GitRepo from the registry', async () => {
      const reg = stack().registry('http');
      const repo = await waitGitRepo('bad', 'has artifacts', (r) => Boolean(r.status?.artifacts?.length));
      const reference = repo.status!.artifacts![0]!.reference;
      const client = new RegistryClient({ registry: reg.host, basicHTTP: true });
      try {
        await pullBundle(client, reference);
        await kube.delete({ apiVersion: API_VERSION, kind: 'GitRepo', namespace: ws, name: 'bad' });
        await waitFor(async () => !(await kube.get({ apiVersion: API_VERSION, kind: 'GitRepo', namespace: ws, name: 'bad' })), {
          what: 'the GitRepo to be finalized',
          timeoutMs: 60_000,
        });
        let error: unknown;
        try {
          await pullBundle(client, reference);
        } catch (err) {
          error = err;
        }
        expect((error as { code?: string } | undefined)?.code, 'the manifest is gone').to.equal('MANIFEST_UNKNOWN');
      } finally {
        await client.close();
      }
    });
  });

  describe('a git server over HTTPS with its own CA', () => {
    let tlsGit: GitServer;
    let caPem: string;
    before(async () => {
      const dir = await mkdtemp(join(tmpdir(), 'flotilla-gittls-'));
      const ca = await createCA(dir, 'git-ca');
      const cert = await issueCert(ca, dir, { commonName: '127.0.0.1', ipAddresses: ['127.0.0.1'] });
      caPem = ca.certPem;
      tlsGit = await startGitServer({ rootDir: join(dir, 'repos'), tls: { certPem: cert.certPem, keyPem: cert.keyPem } });
      await tlsGit.createRepo('tls');
      await tlsGit.commit('tls', { 'app/cm.yaml': configMap('over-tls', { a: '1' }) }, 'first');
      await gitCredentials(kube, ws, 'tls-git-creds', tlsGit);
    });
    after(async () => {
      await tlsGit?.stop();
    });

    const tlsRepo = (name: string, spec: Partial<GitRepo['spec']>) =>
      gitRepo(name, { repo: `${tlsGit.url}/tls.git`, clientSecretName: 'tls-git-creds', targets: [{ clusterName: 'c1' }], ...spec });

    it('refuses the server without its CA, naming TLS verification', async () => {
      await kube.apply(tlsRepo('tls-noca', {}), 'flotilla-e2e');
      const r = await waitGitRepo('tls-noca', 'git fetch refused', (x) => condition(x, ConditionType.GitFetched)?.status === 'False');
      expect(condition(r, ConditionType.GitFetched)?.message).to.match(/TLS verification failed|certificate/);
      expect(JSON.stringify(r.status)).not.to.include(tlsGit.password);
    });

    it('fetches with caBundle', async () => {
      await kube.apply(tlsRepo('tls-ca', { caBundle: Buffer.from(caPem).toString('base64') }), 'flotilla-e2e');
      await waitGitRepo('tls-ca', 'bundles built', (x) => condition(x, ConditionType.BundlesBuilt)?.status === 'True');
    });

    it('fetches with insecureSkipTLSVerify', async () => {
      await kube.apply(tlsRepo('tls-skip', { insecureSkipTLSVerify: true }), 'flotilla-e2e');
      await waitGitRepo('tls-skip', 'bundles built', (x) => condition(x, ConditionType.BundlesBuilt)?.status === 'True');
    });

    it('stalls with AuthenticationFailed on a wrong password, without showing it', async () => {
      await kube.apply(
        {
          apiVersion: 'v1',
          kind: 'Secret',
          metadata: { name: 'tls-git-wrong', namespace: ws },
          type: 'kubernetes.io/basic-auth',
          stringData: { username: tlsGit.username, password: 'not-the-password' },
        },
        'flotilla-e2e',
      );
      await kube.apply(tlsRepo('tls-wrong', { insecureSkipTLSVerify: true, clientSecretName: 'tls-git-wrong' }), 'flotilla-e2e');
      const r = await waitGitRepo('tls-wrong', 'stalled on credentials', (x) => condition(x, ConditionType.Stalled)?.reason === Reason.AuthenticationFailed);
      expect(JSON.stringify(r.status)).not.to.include('not-the-password');
      expect(ctl.rawLogs()).not.to.include('not-the-password');
    });
  });

  describe('targeting', () => {
    const cases: { name: string; targets: GitRepo['spec']['targets']; expected: string[] }[] = [
      { name: 't-labels', targets: [{ clusterSelector: { matchLabels: { region: 'us' } } }], expected: ['c2', 'c3'] },
      { name: 't-group', targets: [{ clusterGroup: 'prod' }], expected: ['c1', 'c3'] },
      { name: 't-name', targets: [{ clusterName: 'c2' }], expected: ['c2'] },
      { name: 't-groupsel', targets: [{ clusterGroupSelector: { matchLabels: { tier: 'gold' } } }], expected: ['c1', 'c3'] },
      { name: 't-expr', targets: [{ clusterSelector: { matchExpressions: [{ key: 'env', operator: 'NotIn', values: ['prod'] }] } }], expected: ['c2'] },
      { name: 't-none', targets: undefined, expected: [] }, // no targets: the "default" group, which does not exist here
    ];
    for (const c of cases) {
      it(`${c.name}: deploys to ${c.expected.join(', ') || 'no cluster'}`, async () => {
        await kube.apply(gitRepo(c.name, { paths: ['tools'], ...(c.targets ? { targets: c.targets } : {}) }), 'flotilla-e2e');
        await waitGitRepo(c.name, 'bundles built', (r) => condition(r, ConditionType.BundlesBuilt)?.status === 'True');
        const clusters = await waitFor(
          async () => {
            const got = (await bundleDeployments(kube, c.name)).map((b) => b.metadata.labels?.[Label.Cluster] ?? '').sort();
            return JSON.stringify(got) === JSON.stringify(c.expected) ? got : undefined;
          },
          { what: `BundleDeployments of ${c.name} on exactly ${c.expected.join(',')}`, timeoutMs: 30_000, context: () => 'check the Bundle status' },
        );
        expect(clusters).to.deep.equal(c.expected);
      });
    }

    it('removes the BundleDeployment of a cluster that stops matching', async () => {
      await waitFor(async () => (await bundleDeployments(kube, 't-group')).length === 2, { what: 't-group on 2 clusters', timeoutMs: 30_000 });
      await createCluster(kube, ws, 'c3', { env: 'dev', region: 'us' });
      const left = await waitFor(
        async () => {
          const got = (await bundleDeployments(kube, 't-group')).map((b) => b.metadata.labels?.[Label.Cluster]);
          return got.length === 1 ? got : undefined;
        },
        { what: 'c3 to lose its BundleDeployment', timeoutMs: 30_000 },
      );
      expect(left).to.deep.equal(['c1']);
      await createCluster(kube, ws, 'c3', { env: 'prod', region: 'us' });
    });
  });

  describe('a 5 MiB bundle', () => {
    before(async () => {
      const files: Record<string, string> = {};
      for (let i = 0; i < 6; i++) files[`big/cm-${i}.yaml`] = configMap(`big-${i}`, { blob: randomBytes(450_000).toString('hex').slice(0, 880_000) });
      await stack().git!.commit('ctl-sample', files, 'a big bundle');
    });

    it('is stored as an artifact in OCI mode', async () => {
      const reg = stack().registry('http');
      await kube.apply(
        gitRepo('big-oci', { paths: ['big'], targets: [{ clusterName: 'c1' }], ociRegistry: { reference: `${reg.host}/flotilla-e2e`, basicHTTP: true } }),
        'flotilla-e2e',
      );
      const repo = await waitGitRepo('big-oci', 'artifact stored', (r) => condition(r, ConditionType.ArtifactsStored)?.status === 'True', 240_000); // a ceiling for a loaded 2-core machine
      expect(repo.status?.artifacts).to.have.length(1);
      await waitFor(async () => (await bundleDeployments(kube, 'big-oci')).length === 1, { what: 'the big BundleDeployment', timeoutMs: 30_000 });
    });

    it('gets a clear condition suggesting OCI storage in etcd mode', async () => {
      await kube.apply(gitRepo('big-etcd', { paths: ['big'], targets: [{ clusterName: 'c1' }] }), 'flotilla-e2e');
      const repo = await waitGitRepo('big-etcd', 'stalled: too large', (r) => condition(r, ConditionType.Stalled)?.reason === Reason.BundleTooLarge);
      expect(condition(repo, ConditionType.Stalled)?.message).to.match(/ociRegistry/);
      const bundles = await kube.list({ apiVersion: API_VERSION, kind: 'Bundle', namespace: ws }, `${Label.RepoName}=big-etcd`);
      expect(bundles.items).to.have.length(0);
    });
  });

  describe("the agent's finalizer", () => {
    const ns2 = 'ctl-e2e-fin';
    const cluster = (name: string) => ({ apiVersion: API_VERSION, kind: 'Cluster', namespace: ns2, name });
    before(async () => {
      await ensureNamespace(kube, ns2);
      await gitCredentials(kube, ns2);
      await createCluster(kube, ns2, 'no-agent', { fin: 'yes' });
      await createCluster(kube, ns2, 'with-agent', { fin: 'yes' });
      // What an agent's heartbeat reports on its Cluster (no agent runs in this suite).
      await kube.mergePatch(cluster('with-agent'), { status: { agent: { lastSeen: new Date().toISOString() } } }, 'status');
    });

    it('is written with the BundleDeployment for a cluster whose agent registered, and left off where none did', async () => {
      const repo = 'fin';
      await kube.apply(
        {
          apiVersion: API_VERSION,
          kind: 'GitRepo',
          metadata: { name: repo, namespace: ns2 },
          spec: {
            repo: repoUrl,
            branch: 'main',
            clientSecretName: 'git-creds',
            pollingInterval: '2s',
            paths: ['tools'],
            targets: [{ clusterSelector: { matchLabels: { fin: 'yes' } } }],
          },
        },
        'flotilla-e2e',
      );
      const bds = await waitFor(
        async () => {
          const l = await bundleDeployments(kube, repo);
          return l.length === 2 ? new Map(l.map((bd) => [bd.metadata.labels?.[Label.Cluster] ?? '', bd])) : undefined;
        },
        { what: 'a BundleDeployment on each cluster', timeoutMs: 60_000, context: () => JSON.stringify(ctl.logs.slice(-5), null, 1) },
      );
      const held = bds.get('with-agent');
      expect(held?.metadata.finalizers, 'the agent registered: it will prune, so the controller holds the object for it').to.deep.equal([
        Finalizer.BundleDeployment,
      ]);
      const writers = (
        (held?.metadata ?? {}) as { managedFields?: { manager: string; subresource?: string; fieldsV1?: Record<string, Record<string, unknown>> }[] }
      ).managedFields;
      expect(
        writers?.map((w) => w.manager),
        'one writer: the controller, with the finalizer in its apply',
      ).to.deep.equal([CONTROLLER_FIELD_MANAGER]);
      expect(writers?.[0]?.fieldsV1?.['f:metadata']?.['f:finalizers']).to.deep.equal({ [`v:"${Finalizer.BundleDeployment}"`]: {} });
      expect(bds.get('no-agent')?.metadata.finalizers ?? [], 'no agent ever registered: nothing to prune').to.deep.equal([]);

      await kube.delete({ apiVersion: API_VERSION, kind: 'GitRepo', namespace: ns2, name: repo });
      const left = await waitFor(
        async () => {
          const all = (await kube.list<Obj<BundleDeployment>>({ apiVersion: API_VERSION, kind: 'BundleDeployment' }, `${Label.RepoName}=${repo}`)).items;
          return all.length === 1 && all[0]?.metadata.deletionTimestamp ? all[0] : undefined;
        },
        { what: 'the agentless BundleDeployment to go at once, the other to wait for its agent', timeoutMs: 60_000 },
      );
      expect(left?.metadata.labels?.[Label.Cluster]).to.equal('with-agent');
      expect(left?.metadata.finalizers, 'deleted, and held for the agent').to.deep.equal([Finalizer.BundleDeployment]);
      // What the agent does once it has pruned.
      await kube.mergePatch(
        { apiVersion: API_VERSION, kind: 'BundleDeployment', namespace: left?.metadata.namespace ?? '', name: left?.metadata.name ?? '' },
        { metadata: { finalizers: null } },
      );
      await waitFor(async () => (await kube.list({ apiVersion: API_VERSION, kind: 'BundleDeployment' }, `${Label.RepoName}=${repo}`)).items.length === 0, {
        what: 'the released BundleDeployment to go',
        timeoutMs: 30_000,
      });
    });
  });

  describe('in etcd mode', () => {
    it('writes the resources inline and deletes Bundles and BundleDeployments with the GitRepo', async () => {
      await kube.apply(gitRepo('inline', { paths: ['tools'], targets: [{ clusterName: 'c2' }] }), 'flotilla-e2e');
      const bd = await waitFor(async () => (await bundleDeployments(kube, 'inline'))[0], { what: 'the inline BundleDeployment', timeoutMs: 60_000 });
      expect(bd.spec.resources?.map((r) => r.name)).to.deep.equal(['tool.yaml']);
      expect(bd.spec.oci).to.equal(undefined);
      await kube.delete({ apiVersion: API_VERSION, kind: 'GitRepo', namespace: ws, name: 'inline' });
      await waitFor(async () => !(await kube.get({ apiVersion: API_VERSION, kind: 'GitRepo', namespace: ws, name: 'inline' })), {
        what: 'the GitRepo to be deleted (finalizer done)',
        timeoutMs: 60_000,
      });
      // No agent ever applied it (no agent finalizer), so nothing holds the BundleDeployment back.
      await waitFor(async () => (await bundleDeployments(kube, 'inline')).length === 0, { what: 'the BundleDeployments to go', timeoutMs: 30_000 });
      expect(await kube.list({ apiVersion: API_VERSION, kind: 'Bundle', namespace: ws }, `${Label.RepoName}=inline`))
        .to.have.property('items')
        .with.length(0);
    });
  });
});
