import { expect } from 'chai';
import { stack } from './fixture.js';
import { waitFor } from '../stack/net.js';
import { registryClientFor } from '../stack/registry.js';
import { tokenClient, statusOf } from './support/kube.js';
import { startFaultProxy, type FaultProxy } from './support/faultproxy.js';
import { startFleet, fleetLogs, fleetSuiteTeardown, type Fleet } from './support/processes.js';
import { faultLog, findSecrets, eventTexts, flotillaStatusTexts } from './support/faults.js';
import { API_VERSION, Label, type Bundle, type BundleDeployment, type GitRepo } from '../lib/api/index.js';
import { KubeClient, type KubeObject } from '../lib/kube/client.js';
import { join } from 'node:path';
import { applyCredentials } from './support/fleetobjects.js';

/**
 * Reliability: the controller and agents run as real processes; faults are injected into them and
 * into the stack: kill -9 of an agent mid-apply and of the controller mid-push, restarts of a downstream
 * and of the upstream kube-apiserver, a registry restart, the registry answering 500 or 429 (through a
 * fault-injecting proxy in front of the real TLS + basic-auth registry), the git server down. After each
 * fault, everything converges to the commit in git, nothing applied is lost, no object is duplicated or
 * orphaned and no Bundle references a missing artifact. Also: TLS to the registry (unknown CA, plain
 * HTTP without basicHTTP) is refused, and an agent's credential is refused outside its cluster namespace.
 * Last, no secret value appears in any log line, Event or Flotilla status. Outcomes go to the run's
 * summary table (e2e/support/faults.ts).
 */

type Obj<T> = T & KubeObject;
const WS = 'rel-e2e';
const REPO = 'rel-e2e';
const APP_NS = 'rel-e2e-app';
const CLUSTERS = [
  { name: 'downstream-1', labels: { env: 'prod' } },
  { name: 'downstream-2', labels: { env: 'dev' } },
];
const CONVERGE_MS = 150_000;

/** The repository at `version`: one bundle of `count` ConfigMaps, each carrying the version. */
function repoFiles(version: number, count: number): Record<string, string> {
  const files: Record<string, string> = { 'app/fleet.yaml': `defaultNamespace: ${APP_NS}\n` };
  for (let i = 0; i < count; i++) {
    files[`app/cm-${String(i).padStart(3, '0')}.yaml`] =
      `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: rel-${String(i).padStart(3, '0')}\ndata:\n  version: "${version}"\n`;
  }
  return files;
}

const b64 = (s: string): string => Buffer.from(s).toString('base64');
const ready = (o: { status?: { conditions?: { type: string; status: string }[] } } | undefined) =>
  o?.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;

describe('reliability: faults injected into real controller and agent processes', function () {
  this.timeout(20 * 60_000);
  const faults = faultLog;
  const downstream: Record<string, KubeClient> = {};
  let fleet: Fleet;
  let commit = '';
  let expected = { version: 0, count: 0 };
  const secrets: string[] = [];

  const git = () => stack().git!;
  // The TLS + basic-auth registry, reached through a fault-injecting proxy with its own CA: the GitRepo's
  // reference names the proxy; checks and restarts go to the registry itself.
  const registry = () => stack().registry('tls-auth');
  let proxy: FaultProxy;

  async function push(version: number, count: number, message: string): Promise<void> {
    commit = await git().commit(REPO, repoFiles(version, count), message);
    expected = { version, count };
  }

  /** ConfigMaps of the bundle in one cluster, name -> version. */
  async function applied(cluster: string): Promise<Map<string, string>> {
    const list = await downstream[cluster]!.list<KubeObject & { data?: Record<string, string> }>({ apiVersion: 'v1', kind: 'ConfigMap', namespace: APP_NS });
    return new Map(list.items.filter((c) => c.metadata.name.startsWith('rel-')).map((c) => [c.metadata.name, c.data?.version ?? '']));
  }

  /** Why the fleet has not converged to `commit` yet, or undefined when it has. */
  async function notConverged(): Promise<string | undefined> {
    await fleet.assertAlive();
    const up = fleet.upstream;
    const repo = await up.get<Obj<GitRepo>>({ apiVersion: API_VERSION, kind: 'GitRepo', namespace: WS, name: REPO });
    if (repo?.status?.commit !== commit || !ready(repo)) return `GitRepo at ${repo?.status?.commit ?? '-'}, Ready=${ready(repo)}`;
    const bundles = (await up.list<Obj<Bundle>>({ apiVersion: API_VERSION, kind: 'Bundle', namespace: WS }, `${Label.RepoName}=${REPO}`)).items;
    if (bundles.length !== 1) return `${bundles.length} Bundles (want 1)`;
    const bds = (await up.list<Obj<BundleDeployment>>({ apiVersion: API_VERSION, kind: 'BundleDeployment' }, `${Label.RepoName}=${REPO}`)).items;
    if (bds.length !== CLUSTERS.length) return `${bds.length} BundleDeployments (want ${CLUSTERS.length}: duplicates or missing)`;
    const notReady = bds.filter((b) => !ready(b) || b.status?.appliedDeploymentID !== b.spec.deploymentID);
    if (notReady.length > 0) return `BundleDeployments not applied: ${notReady.map((b) => b.metadata.namespace).join(', ')}`;
    for (const c of CLUSTERS) {
      const cms = await applied(c.name);
      const stale = [...cms].filter(([, v]) => v !== String(expected.version));
      if (cms.size !== expected.count || stale.length > 0) return `${c.name}: ${cms.size} ConfigMaps (want ${expected.count}), ${stale.length} stale`;
    }
    return undefined;
  }

  /** Waits for convergence, then checks every Bundle's artifact exists in the registry. */
  async function converge(what: string): Promise<void> {
    let last = '';
    await waitFor(
      async () => {
        last = (await notConverged()) ?? '';
        return last === '';
      },
      {
        what: `convergence to ${commit.slice(0, 12)} after ${what}`,
        timeoutMs: CONVERGE_MS,
        intervalMs: 500,
        context: () => `${last}; logs in ${fleet.logDir}`,
      },
    );
    const bundles = (await fleet.upstream.list<Obj<Bundle>>({ apiVersion: API_VERSION, kind: 'Bundle', namespace: WS }, `${Label.RepoName}=${REPO}`)).items;
    const client = registryClientFor(registry());
    try {
      for (const b of bundles) {
        const oci = b.spec.oci;
        expect(oci, `Bundle ${b.metadata.name} is stored in OCI`).to.not.equal(undefined);
        const repository = oci!.reference.slice(oci!.reference.indexOf('/') + 1, oci!.reference.indexOf('@'));
        const manifest = await client.getManifest(repository, oci!.digest);
        expect(manifest, `artifact of Bundle ${b.metadata.name}`).to.not.equal(undefined);
      }
    } finally {
      await client.close();
    }
  }

  /** Counts objects applied before a fault that are gone now (names only: versions may move on). */
  async function lost(before: Map<string, Map<string, string>>): Promise<number> {
    let n = 0;
    for (const [cluster, cms] of before) {
      const now = await applied(cluster);
      for (const name of cms.keys()) if (!now.has(name)) n++;
    }
    return n;
  }

  async function snapshot(): Promise<Map<string, Map<string, string>>> {
    return new Map(await Promise.all(CLUSTERS.map(async (c) => [c.name, await applied(c.name)] as const)));
  }

  before(async function () {
    this.timeout(5 * 60_000);
    for (const c of CLUSTERS) {
      downstream[c.name] = await KubeClient.fromKubeConfig(stack().cluster(c.name).kubeConfig());
      await downstream[c.name]!.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: APP_NS } }, 'rel-e2e');
    }
    fleet = await startFleet(stack(), { workspace: WS, clusters: CLUSTERS });
    const reg = registry();
    proxy = await startFaultProxy({ target: reg.url, targetCaPem: reg.caPem!, dir: join(fleet.logDir, 'fault-proxy') });
    secrets.push(git().password, reg.password ?? '', ...fleet.secrets);
    const up = fleet.upstream;
    await git().createRepo(REPO);
    await push(1, 5, 'first');
    await applyCredentials(up, WS, 'rel-e2e', git(), reg);
    await up.apply(
      {
        apiVersion: API_VERSION,
        kind: 'GitRepo',
        metadata: { name: REPO, namespace: WS },
        spec: {
          repo: `${git().url}/${REPO}.git`,
          branch: 'main',
          clientSecretName: 'git-auth',
          pollingInterval: '2s',
          paths: ['app'],
          targets: [{ clusterSelector: {} }],
          ociRegistry: { reference: `${proxy.host}/rel-e2e`, authSecretName: 'registry-auth', caBundle: b64(proxy.caPem) },
        },
      },
      'rel-e2e',
    );
    await converge('the first commit');
  });

  fleetSuiteTeardown(() => fleet, {
    afterStop: async () => {
      await proxy?.close();
      for (const c of Object.values(downstream)) await c.close();
    },
  });

  /** The first condition of `o` that says something is wrong (Ready/Deployed/ArtifactsStored False, Stalled True), as text. */
  function trouble(o: { status?: { conditions?: { type: string; status: string; reason?: string; message?: string }[] } } | undefined): string | undefined {
    const c = o?.status?.conditions?.find(
      (x) => (['Ready', 'Deployed', 'ArtifactsStored'].includes(x.type) && x.status === 'False') || (x.type === 'Stalled' && x.status === 'True'),
    );
    return c ? `${c.type}=${c.status} ${c.reason ?? ''}: ${c.message ?? ''}` : undefined;
  }

  const gitRepo = async (name = REPO) => await fleet.upstream.get<Obj<GitRepo>>({ apiVersion: API_VERSION, kind: 'GitRepo', namespace: WS, name });

  /** Every cluster still holds exactly the objects of `version` (nothing lost, nothing of a newer version half-applied). */
  async function holds(version: number, count: number): Promise<void> {
    for (const c of CLUSTERS) {
      const cms = await applied(c.name);
      expect(cms.size, `${c.name} objects`).to.equal(count);
      expect(
        [...cms.values()].filter((v) => v !== String(version)),
        `${c.name} objects not at version ${version}`,
      ).to.deep.equal([]);
    }
  }

  /** After a fault: counts objects lost since `before`, records the outcome, and requires none lost. */
  async function convergedWithoutLoss(fault: string, before: Map<string, Map<string, string>>, note?: string): Promise<void> {
    const n = await lost(before);
    faults.record({ fault, result: 'converged', objectsLost: n, ...(note !== undefined ? { note } : {}) });
    expect(n).to.equal(0);
  }

  it('converges after kill -9 of an agent in the middle of applying a bundle', async () => {
    const before = await snapshot();
    const agent = fleet.agents['downstream-1']!;
    await push(2, 60, 'sixty ConfigMaps');
    // Kill as soon as the first object of the new version lands: the agent is mid-apply then.
    const seen = await waitFor(
      async () => {
        const cms = await applied('downstream-1');
        const fresh = [...cms.values()].filter((v) => v === '2').length;
        return fresh > 0 ? fresh : undefined;
      },
      { what: 'the agent to start applying version 2', timeoutMs: CONVERGE_MS, intervalMs: 50 },
    );
    await agent.kill9();
    const midApply = seen < 60;
    agent.restart();
    await converge('kill -9 of the agent');
    await convergedWithoutLoss(
      'kill -9 agent during apply',
      before,
      midApply ? `killed after ${seen}/60 objects` : 'apply had finished before the kill landed',
    );
  });

  it('resumes after the downstream kube-apiserver restarts', async () => {
    const before = await snapshot();
    const plane = stack().cluster('downstream-1');
    await plane.stopApiServer();
    try {
      await push(3, 60, 'version 3 while downstream-1 is down');
      // The other cluster keeps converging while one API server is down.
      await waitFor(async () => [...(await applied('downstream-2')).values()].every((v) => v === '3') || undefined, {
        what: 'downstream-2 to apply version 3 while downstream-1 is down',
        timeoutMs: CONVERGE_MS,
        intervalMs: 500,
      });
    } finally {
      await plane.startApiServer();
    }
    await converge('the downstream kube-apiserver restart');
    await convergedWithoutLoss('downstream kube-apiserver restart', before, 'agent not restarted');
  });

  it('converges after the registry restarts during a push', async () => {
    const before = await snapshot();
    const reg = registry();
    const mark = reg.logs().length;
    await push(4, 60, 'version 4 pushed across a registry restart');
    // Stop the registry as soon as the controller starts uploading the new version.
    await waitFor(async () => /"(PUT|POST|PATCH) /.test(reg.logs().slice(mark)) || undefined, {
      what: 'the controller to start pushing version 4',
      timeoutMs: CONVERGE_MS,
      intervalMs: 50,
    });
    await reg.stop();
    try {
      await waitFor(
        async () => {
          const repo = await gitRepo();
          return repo?.status?.commit !== commit || !ready(repo) || undefined;
        },
        { what: 'the GitRepo not to report Ready at version 4 while the registry is down', timeoutMs: 30_000 },
      );
    } finally {
      await reg.start();
    }
    await converge('the registry restart');
    await convergedWithoutLoss('registry restart during push', before);
  });

  it('reports the git server being down on the GitRepo and recovers', async () => {
    const before = await snapshot();
    await git().stop();
    let message = '';
    try {
      message = await waitFor(async () => trouble(await gitRepo()), { what: 'the GitRepo to report the git server down', timeoutMs: 60_000, intervalMs: 500 });
    } finally {
      await git().start();
    }
    // Recovery: the GitRepo is Ready again at the same commit and nothing was lost meanwhile.
    await converge('the git server outage');
    expect(message).to.not.equal('');
    await convergedWithoutLoss('git server down', before, message.slice(0, 60));
  });

  it('converges after kill -9 of the controller in the middle of a push', async () => {
    const before = await snapshot();
    // Hold every upload request a little, so that the push of 60 new layers is long enough to be interrupted.
    const mark = proxy.requests.length;
    const uploads = () => proxy.requests.slice(mark).filter((r) => r.method !== 'HEAD' && r.method !== 'GET' && r.path.includes('/blobs/uploads/'));
    const manifestPut = () => proxy.requests.slice(mark).some((r) => r.method === 'PUT' && r.path.includes('/manifests/'));
    proxy.inject({ kind: 'delay', ms: 250, match: (method, path) => method !== 'GET' && method !== 'HEAD' && path.includes('/blobs/uploads/') });
    await push(5, 60, 'version 5, pushed across a controller kill');
    try {
      await waitFor(async () => uploads().length >= 4 || undefined, {
        what: 'the controller to start uploading version 5',
        timeoutMs: CONVERGE_MS,
        intervalMs: 50,
      });
      const midPush = !manifestPut();
      const started = uploads().length;
      await fleet.controller.kill9();
      proxy.heal();
      fleet.controller.restart();
      await converge('kill -9 of the controller');
      const n = await lost(before);
      faults.record({
        fault: 'kill -9 controller during push',
        result: 'converged',
        objectsLost: n,
        note: midPush ? `killed with ${started} upload requests made for 60 new layers, before the manifest` : 'push had finished before the kill landed',
      });
      expect(midPush, 'the kill landed before the manifest was pushed').to.equal(true);
      expect(n).to.equal(0);
    } finally {
      proxy.heal();
    }
  });

  it('resumes after the upstream kube-apiserver restarts', async () => {
    const before = await snapshot();
    const plane = stack().cluster('upstream');
    const log = { controller: (await fleet.controller.logs()).length };
    await plane.stopApiServer();
    try {
      await push(6, 60, 'version 6 while upstream is down');
      // Processes must notice the outage (and keep running) before it ends.
      await waitFor(async () => /ECONNREFUSED|connect|unavailable/i.test((await fleet.controller.logs()).slice(log.controller)) || undefined, {
        what: 'the controller to notice the upstream API server is down',
        timeoutMs: 60_000,
        intervalMs: 500,
      });
      for (const p of [fleet.controller, ...Object.values(fleet.agents)]) expect(p.running(), `${p.name} still running while upstream is down`).to.equal(true);
    } finally {
      await plane.startApiServer();
    }
    await converge('the upstream kube-apiserver restart');
    await convergedWithoutLoss('upstream kube-apiserver restart', before, 'no process restarted');
  });

  it('reports a registry answering 500 on the GitRepo, keeps the last good state, and converges when it heals', async () => {
    const before = await snapshot();
    proxy.inject({ kind: 'status', status: 500 });
    let message = '';
    try {
      await push(7, 60, 'version 7 while the registry answers 500');
      message = await waitFor(
        async () => {
          const repo = await gitRepo();
          const t = trouble(repo);
          return t && /500|injected/i.test(t) ? t : undefined;
        },
        { what: 'the GitRepo to report the registry answering 500', timeoutMs: 60_000, intervalMs: 500 },
      );
      await holds(6, 60);
    } finally {
      proxy.heal();
    }
    await converge('the registry answering 500');
    await convergedWithoutLoss('registry answers 500 (push)', before, message.slice(0, 90));
  });

  it('reports a registry answering 429 to pulls on the BundleDeployments, and converges when it heals', async () => {
    const before = await snapshot();
    const mark = proxy.requests.length;
    proxy.inject({ kind: 'status', status: 429, retryAfterSeconds: 1, match: (method, path) => method === 'GET' && /\/blobs\/sha256:/.test(path) });
    let message = '';
    try {
      await push(8, 60, 'version 8 while the registry throttles pulls');
      message = await waitFor(
        async () => {
          const bds = (await fleet.upstream.list<Obj<BundleDeployment>>({ apiVersion: API_VERSION, kind: 'BundleDeployment' }, `${Label.RepoName}=${REPO}`))
            .items;
          for (const bd of bds) {
            const t = trouble(bd);
            if (t && /429|TOOMANYREQUESTS|too many/i.test(t)) return t;
          }
          return undefined;
        },
        { what: 'a BundleDeployment to report the registry throttling pulls', timeoutMs: 90_000, intervalMs: 500 },
      );
      expect(proxy.requests.slice(mark).filter((r) => r.injected).length, 'throttled pulls').to.be.greaterThan(0);
      await holds(7, 60);
    } finally {
      proxy.heal();
    }
    await converge('the registry answering 429');
    await convergedWithoutLoss('registry answers 429 (pull)', before, message.slice(0, 90));
  });

  {
    // TLS rows: extra GitRepos on the same git repository whose bundles target no cluster; only storing is checked.
    const extra = 'rel-tls';
    const refuseOnly = [{ clusterName: 'no-such-cluster' }];
    const tlsRepo = async (name: string, ociRegistry: Record<string, unknown>) => {
      await fleet.upstream.apply(
        {
          apiVersion: API_VERSION,
          kind: 'GitRepo',
          metadata: { name, namespace: WS },
          spec: {
            repo: `${git().url}/${REPO}.git`,
            branch: 'main',
            clientSecretName: 'git-auth',
            pollingInterval: '2s',
            paths: ['app'],
            targets: refuseOnly,
            ociRegistry,
          },
        },
        'rel-e2e',
      );
    };
    const stored = async (name: string) =>
      await waitFor(
        async () => {
          const repo = await gitRepo(name);
          const c = repo?.status?.conditions?.find((x) => x.type === 'ArtifactsStored');
          return c && c.status !== 'Unknown' ? `${c.status} ${c.reason ?? ''}: ${c.message ?? ''}` : undefined;
        },
        { what: `GitRepo ${name} to say whether its artifacts are stored`, timeoutMs: 60_000, intervalMs: 500 },
      );
    const remove = async (...names: string[]) => {
      for (const name of names) await fleet.upstream.delete({ apiVersion: API_VERSION, kind: 'GitRepo', namespace: WS, name });
    };

    it('refuses a registry certificate from an unknown CA, and accepts it with insecureSkipTLS', async () => {
      await tlsRepo(`${extra}-unknown-ca`, { reference: `${proxy.host}/rel-tls`, authSecretName: 'registry-auth' });
      const refused = await stored(`${extra}-unknown-ca`);
      faults.record({
        fault: 'registry certificate from an unknown CA',
        result: refused.startsWith('False') ? 'refused' : 'failed',
        objectsLost: 0,
        note: refused.slice(0, 90),
      });
      expect(refused).to.match(/^False /);
      expect(refused).to.match(/certificate|x509|self.signed|verify/i);
      await tlsRepo(`${extra}-skip`, { reference: `${proxy.host}/rel-tls`, authSecretName: 'registry-auth', insecureSkipTLS: true });
      expect(await stored(`${extra}-skip`)).to.match(/^True /);
      await remove(`${extra}-unknown-ca`, `${extra}-skip`);
    });

    it('speaks plain HTTP to a registry only with basicHTTP', async () => {
      const plain = stack().registry('http');
      await tlsRepo(`${extra}-plain`, { reference: `${plain.host}/rel-plain` });
      const refused = await stored(`${extra}-plain`);
      faults.record({
        fault: 'plain-HTTP registry without basicHTTP',
        result: refused.startsWith('False') ? 'refused' : 'failed',
        objectsLost: 0,
        note: refused.slice(0, 90),
      });
      expect(refused).to.match(/^False /);
      await tlsRepo(`${extra}-plain`, { reference: `${plain.host}/rel-plain`, basicHTTP: true });
      await waitFor(async () => (await stored(`${extra}-plain`)).startsWith('True') || undefined, {
        what: 'the plain-HTTP push with basicHTTP',
        timeoutMs: 60_000,
        intervalMs: 500,
      });
      await remove(`${extra}-plain`);
    });
  }

  it('keeps an agent to its own cluster namespace upstream (403 elsewhere)', async () => {
    const clusters = (await fleet.upstream.list<Obj<{ status?: { namespace?: string } }>>({ apiVersion: API_VERSION, kind: 'Cluster', namespace: WS })).items;
    const namespaces = clusters.map((c) => c.status?.namespace).filter((n): n is string => Boolean(n));
    expect(namespaces, 'cluster namespaces').to.have.length(CLUSTERS.length);
    const state = await downstream['downstream-1']!.get<KubeObject & { data?: Record<string, string> }>({
      apiVersion: 'v1',
      kind: 'Secret',
      namespace: fleet.agentNamespace,
      name: 'flotilla-agent',
    });
    const value = (k: string) => Buffer.from(state?.data?.[k] ?? '', 'base64').toString('utf8');
    const own = value('clusterNamespace');
    const other = namespaces.find((n) => n !== own)!;
    const agent = await tokenClient(value('token'));
    try {
      const bd = { apiVersion: API_VERSION, kind: 'BundleDeployment' };
      expect(await statusOf(() => agent.list({ ...bd, namespace: own })), 'list own BundleDeployments').to.equal(0);
      const denied = {
        'list other cluster BundleDeployments': await statusOf(() => agent.list({ ...bd, namespace: other })),
        'list other cluster Secrets': await statusOf(() => agent.list({ apiVersion: 'v1', kind: 'Secret', namespace: other })),
        'list workspace Secrets': await statusOf(() => agent.list({ apiVersion: 'v1', kind: 'Secret', namespace: WS })),
        'list GitRepos': await statusOf(() => agent.list({ apiVersion: API_VERSION, kind: 'GitRepo', namespace: WS })),
        'create BundleDeployment in own namespace': await statusOf(() =>
          agent.create({ ...bd, metadata: { name: 'forged', namespace: own }, spec: { deploymentID: 'x', inline: { resources: [] } } } as KubeObject),
        ),
      };
      faults.record({
        fault: 'agent credential outside its namespace',
        result: Object.values(denied).every((c) => c === 403) ? 'refused' : 'failed',
        objectsLost: 0,
        note: `${Object.values(denied).join(' ')} (5 requests)`,
      });
      expect(denied).to.deep.equal(Object.fromEntries(Object.keys(denied).map((k) => [k, 403])));
    } finally {
      await agent.close();
    }
  });

  it('leaks no secret value into any log line, Event or Flotilla status', async () => {
    // The agents' credentials (TokenRequest tokens handed over in the registration namespace) are secrets too.
    const handed = await fleet.upstream.list<KubeObject & { data?: Record<string, string> }>({
      apiVersion: 'v1',
      kind: 'Secret',
      namespace: fleet.registrationNamespace,
    });
    for (const s of handed.items) if (s.data?.token) secrets.push(Buffer.from(s.data.token, 'base64').toString('utf8'));
    expect(secrets.length, 'secrets to look for (git, registry, registration token, agent tokens)').to.be.greaterThan(3);
    const texts = [
      ...(await fleetLogs(fleet)).map((l) => ({ where: `${l.name} log`, text: l.text })),
      ...(await eventTexts(fleet.upstream, 'upstream')),
      ...(await Promise.all(CLUSTERS.map((c) => eventTexts(downstream[c.name]!, c.name)))).flat(),
      ...(await flotillaStatusTexts(fleet.upstream)),
    ];
    const hits = findSecrets(texts, secrets);
    faults.record({
      fault: `secret scan (${texts.length} texts, ${secrets.filter((s) => s.length >= 6).length} secrets)`,
      result: hits.length === 0 ? 'clean' : 'failed',
      objectsLost: 0,
      note: `${hits.length} leaks`,
    });
    expect(texts.length).to.be.greaterThan(0);
    expect(hits.map((h) => `${h.where} (secret #${h.secretIndex})`)).to.deep.equal([]);
  });
});
