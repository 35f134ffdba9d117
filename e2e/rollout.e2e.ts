import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { expect } from 'chai';
import { pino } from 'pino';
import { stack } from './fixture.js';
import { waitFor } from '../stack/net.js';
import { startFleet, fleetSuiteTeardown, type Fleet } from './support/processes.js';
import { API_VERSION, Label, type Bundle, type BundleDeployment } from '../lib/api/index.js';
import { KubeClient, type KubeObject } from '../lib/kube/client.js';
import { decodeSecretData } from '../lib/kube/secret.js';
import { Agent } from '../agent/agent.js';
import { createLogger } from '../lib/log.js';
import { mapLimit } from '../lib/util/concurrency.js';
import { applyCredentials, gitRepoObject, ociRegistryFor } from './support/fleetobjects.js';
import { main } from '../cli/main.js';
import { writeAgentBootstrap } from '../stack/bootstrap.js';
import { cond } from './support/kube.js';

type Obj<T> = T & KubeObject;
type ConfigMap = KubeObject & { data?: Record<string, string> };

/**
 * A staged rollout on the real stack: the real controller process, a real git server and registry, and six
 * clusters, each a real Agent (agent/agent.ts, as bench/lib/sims.ts runs them) registered through the token flow
 * with its own agent namespace on one downstream API server and its own application namespace (a
 * targetCustomization per cluster). fleet.yaml puts them in three partitions of two (rings a, b, c) that each
 * tolerate no unavailable cluster, with a deadline and `onFailure: rollback`.
 * A good version reaches all six; a bad one (a Deployment, which never becomes ready on an API server without
 * nodes) fails in the first partition, which returns to the previous version while the others never leave it.
 */
describe('staged rollouts: rolloutStrategy partitions, deadline and onFailure rollback', function () {
  this.timeout(900_000);
  const WS = 'rollout-e2e';
  const REPO = 'rollout-e2e-app';
  const BUNDLE = `${REPO}-app`;
  const DOWNSTREAM = 'downstream-2';
  const NAMES = [1, 2, 3, 4, 5, 6].map((i) => `rollout-e2e-s${i}`);
  const ring = (i: number) => ['a', 'a', 'b', 'b', 'c', 'c'][i] ?? 'c';
  const appNs = (cluster: string) => `${cluster}-app`;
  let fleet: Fleet;
  let down: KubeClient;
  const agents: Agent[] = [];
  const git = () => stack().git!;
  /** Every value of the ConfigMap each cluster was seen with, across the whole test. */
  const seen = new Map<string, Set<string>>(NAMES.map((n) => [n, new Set<string>()]));

  const fleetYaml = [
    'rolloutStrategy:',
    '  partitions:',
    ...['a', 'b', 'c'].flatMap((r, i) => [
      `  - name: ${['canary', 'early', 'late'][i]}`,
      `    maxUnavailable: 0`,
      `    clusterSelector: {matchLabels: {ring: ${r}}}`,
    ]),
    '  deadline: 150s',
    '  onFailure: rollback',
    'targetCustomizations:',
    ...NAMES.flatMap((n) => [`- name: ${n}`, `  clusterName: ${n}`, `  namespace: ${appNs(n)}`]),
    '',
  ].join('\n');
  const cm = (version: string) => `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ro-app\ndata:\n  version: "${version}"\n`;
  // Never ready here: no node runs its Pod (downstream-2 has no kube-controller-manager either).
  const neverReady =
    'apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: ro-web\nspec:\n  replicas: 1\n  selector: {matchLabels: {app: ro-web}}\n' +
    '  template:\n    metadata: {labels: {app: ro-web}}\n    spec:\n      containers:\n      - {name: web, image: registry.invalid/web:1}\n';

  const bundle = async () => (await fleet.upstream.get<Obj<Bundle>>({ apiVersion: API_VERSION, kind: 'Bundle', namespace: WS, name: BUNDLE })) as Obj<Bundle>;
  const versionOn = async (cluster: string) => {
    const v = (await down.get<ConfigMap>({ apiVersion: 'v1', kind: 'ConfigMap', namespace: appNs(cluster), name: 'ro-app' }))?.data?.version;
    if (v !== undefined) seen.get(cluster)?.add(v);
    return v;
  };
  async function runs(want: Record<string, string>, what: string): Promise<void> {
    let last = '';
    await waitFor(
      async () => {
        await fleet.assertAlive();
        const got = Object.fromEntries(await Promise.all(NAMES.map(async (c) => [c, await versionOn(c)])));
        const b = await bundle();
        last = `${JSON.stringify(got)}; rollout ${JSON.stringify(b.status?.rollout?.partitions?.map((p) => `${p.name}:${p.phase}`))} ${b.status?.rollout?.message ?? ''}`;
        return Object.entries(want).every(([c, v]) => got[c] === v) ? true : undefined;
      },
      { what, timeoutMs: 300_000, intervalMs: 500, context: () => `${last}; logs in ${fleet.logDir}` },
    );
  }
  async function rolloutPhase(phase: string): Promise<Obj<Bundle>> {
    let last = '';
    return await waitFor(
      async () => {
        await fleet.assertAlive();
        for (const c of NAMES) await versionOn(c);
        const b = await bundle();
        last = JSON.stringify(b.status?.rollout ?? null);
        return b.status?.rollout?.phase === phase && b.status.history?.at(-1)?.digest === b.spec.oci?.digest ? b : undefined;
      },
      { what: `rollout phase ${phase}`, timeoutMs: 300_000, intervalMs: 500, context: () => `${last}; logs in ${fleet.logDir}` },
    );
  }
  async function cli(...argv: string[]): Promise<{ code: number; out: string }> {
    let out = '';
    const code = await main([...argv, '--kubeconfig', stack().cluster('upstream').kubeconfigPath, '-n', WS], {
      stdout: { write: (s: string) => (out += s) },
      stderr: { write: (s: string) => (out += s) },
    });
    return { code, out };
  }

  before(async function () {
    this.timeout(8 * 60_000);
    fleet = await startFleet(stack(), { workspace: WS, clusters: [] });
    down = await KubeClient.fromKubeConfig(stack().cluster(DOWNSTREAM).kubeConfig());
    const tokenSecret = await fleet.upstream.get<KubeObject & { data?: Record<string, string> }>({
      apiVersion: 'v1',
      kind: 'Secret',
      namespace: WS,
      name: `${WS}-token`,
    });
    const token = decodeSecretData(tokenSecret?.data ?? {});
    const log = createLogger({
      name: 'rollout-e2e-agents',
      level: 'info',
      destination: pino.destination({ dest: join(fleet.logDir, 'agents.log'), sync: true }),
    });
    await mapLimit(NAMES, 3, async (name) => {
      const i = NAMES.indexOf(name);
      const agentNs = `${name}-agent`;
      await writeAgentBootstrap(down, token, {
        agentNamespace: agentNs,
        workspace: WS,
        registrationNamespace: fleet.registrationNamespace,
        clientID: name,
        clusterName: name,
        labels: { ring: ring(i) },
        manager: 'rollout-e2e',
      });
      const cacheDir = join(fleet.logDir, 'cache', name);
      await mkdir(cacheDir, { recursive: true });
      const agent = new Agent({
        downstream: stack().cluster(DOWNSTREAM).kubeConfig(),
        namespace: agentNs,
        cacheDir,
        heartbeatIntervalMs: 5000,
        resyncIntervalMs: 5000,
        log: log.child({ cluster: name }),
      });
      agents.push(agent);
      await agent.start();
    });
    await waitFor(
      async () => {
        await fleet.assertAlive();
        const list = await fleet.upstream.list<Obj<{ status?: { namespace?: string } }>>({ apiVersion: API_VERSION, kind: 'Cluster', namespace: WS });
        return list.items.filter((c) => c.status?.namespace).length >= NAMES.length || undefined;
      },
      { what: `${NAMES.length} clusters registered in ${WS}`, timeoutMs: 180_000, context: () => `logs in ${fleet.logDir}` },
    );
    await applyCredentials(fleet.upstream, WS, 'rollout-e2e', git(), stack().registry('http'));
    await git().createRepo(REPO);
  });
  fleetSuiteTeardown(() => fleet, {
    beforeStop: async () => {
      await mapLimit(agents, 6, (a) => a.stop());
    },
    afterStop: async () => {
      await down?.close();
    },
  });

  it('rolls a first and a good second version out to all six clusters, partition by partition, and completes', async () => {
    await git().commit(REPO, { 'app/fleet.yaml': fleetYaml, 'app/cm.yaml': cm('1') }, 'one');
    await fleet.upstream.apply(
      gitRepoObject(REPO, WS, git(), REPO, { paths: ['app'], pollingInterval: '1s', ociRegistry: ociRegistryFor(stack().registry('http'), 'rollout-e2e') }),
      'rollout-e2e',
    );
    await runs(Object.fromEntries(NAMES.map((n) => [n, '1'])), 'v1 on all six clusters');
    await rolloutPhase('Complete');

    await git().commit(REPO, { 'app/cm.yaml': cm('2') }, 'two');
    await runs(Object.fromEntries(NAMES.map((n) => [n, '2'])), 'v2 on all six clusters');
    const b = await rolloutPhase('Complete');
    expect(b.status?.rollout?.version).to.equal(2);
    expect(b.status?.rollout?.previousVersion).to.equal(1);
    expect(b.status?.rollout?.partitions.map((p) => [p.name, p.phase, p.count, p.upToDate])).to.deep.equal([
      ['canary', 'Done', 2, 2],
      ['early', 'Done', 2, 2],
      ['late', 'Done', 2, 2],
    ]);
    await waitFor(async () => (cond(await bundle(), 'Ready')?.status === 'True' ? true : undefined), {
      what: 'Bundle Ready after the rollout',
      timeoutMs: 180_000,
    });
  });

  it('a bad version fails in the first partition, which returns to the previous version; the other partitions never leave it', async () => {
    const v2 = (await bundle()).status?.history?.find((e) => e.version === 2)?.digest;
    for (const s of seen.values()) s.clear();
    await git().commit(REPO, { 'app/cm.yaml': cm('3'), 'app/web.yaml': neverReady }, 'three: never ready');
    const b = await rolloutPhase('RolledBack');
    expect(b.status?.rollout?.version).to.equal(3);
    expect(b.status?.rollout?.previousVersion).to.equal(2);
    expect(b.status?.rollout?.partitions.map((p) => `${p.name}:${p.phase}`)).to.deep.equal(['canary:Failed', 'early:Waiting', 'late:Waiting']);
    expect(b.status?.rollout?.message).to.match(/^rolled back: partition canary not within tolerance after deadline 150s/);
    const ready = cond(b, 'Ready');
    expect([ready?.status, ready?.reason]).to.deep.equal(['False', 'RolloutFailed']);

    // The first partition runs v2 again (its Deployment pruned); rings b and c kept v2 throughout.
    await runs(Object.fromEntries(NAMES.map((n) => [n, '2'])), 'every cluster on v2 after the rollback');
    await waitFor(
      async () => ((await down.get({ apiVersion: 'apps/v1', kind: 'Deployment', namespace: appNs(NAMES[0] as string), name: 'ro-web' })) ? undefined : true),
      { what: 'the never-ready Deployment pruned from the first cluster', timeoutMs: 120_000 },
    );
    const saw3 = NAMES.filter((n) => seen.get(n)?.has('3'));
    expect(
      saw3.every((n) => n === NAMES[0] || n === NAMES[1]),
      `clusters seen with v3: ${saw3.join(', ')}`,
    ).to.equal(true);
    const bds = (await fleet.upstream.list<Obj<BundleDeployment>>({ apiVersion: API_VERSION, kind: 'BundleDeployment' }, `${Label.BundleName}=${BUNDLE}`))
      .items;
    expect(bds).to.have.length(6);
    for (const bd of bds) expect(bd.spec.oci?.digest, bd.metadata.labels?.[Label.Cluster]).to.equal(v2);

    const status = await cli('status');
    expect(status.code).to.equal(3);
    const row = status.out.split('\n').find((l) => l.includes(BUNDLE) && l.includes('RolledBack'));
    expect(row, status.out).to.include('v3 (from v2)').and.include('canary:Failed').and.include('early:Waiting 0/2');
  });
});
