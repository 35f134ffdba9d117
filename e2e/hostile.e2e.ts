import { expect } from 'chai';
import { stack } from './fixture.js';
import { waitFor } from '../stack/net.js';
import { registryClientFor } from '../stack/registry.js';
import { startFleet, fleetSuiteTeardown, type Fleet } from './support/processes.js';
import { applyCredentials, gitRepoObject, gitRepoReadyAt, ociRegistryFor } from './support/fleetobjects.js';
import { faultLog } from './support/faults.js';
import { API_VERSION, Label, type Bundle, type BundleDeployment, type GitRepo } from '../lib/api/index.js';
import { contentsID, filesToResources } from '../lib/bundle/index.js';
import { KubeClient, type KubeObject } from '../lib/kube/client.js';
import type { RegistryClient } from '../lib/oci/index.js';
import { hostileCorpus, costlyToRender } from './support/hostile.js';
import { cond } from './support/kube.js';

/**
 * Hostile content through the real controller and agent processes (issue 13): one bundle's content must
 * never stop the fleet. The controller and one agent per downstream cluster run as processes registered
 * through the token flow; bundles come from the stack's git server and are stored in the TLS + basic-auth
 * registry.
 *
 * - From git, refused by the controller before anything is pushed (the GitRepo stalls at once with
 *   ContentLimitExceeded naming the file and the limit; the Bundle keeps its last good artifact; no tag is
 *   added in the registry): an alias bomb ("billion laughs"), deep nesting, a document flood, a huge key, a
 *   huge line.
 * - In front of the agents through a Bundle created upstream (the controller never parses it): content that
 *   passes every parsing limit but is costly to render (overlay patches that double it until the render
 *   worker's heap is exhausted: RenderBudgetExceeded), and an alias bomb (the agents' own limits). Each
 *   BundleDeployment reports the real reason, not WaitApplied, and is not retried with backoff.
 * - While each hostile bundle is refused, a commit to another GitRepo reaches Ready on both clusters.
 * The processes run with a small render budget (FLOTILLA_RENDER_TIMEOUT, FLOTILLA_RENDER_MEMORY) so that the
 * costly content hits it quickly; nothing here asserts a duration.
 */

type Obj<T> = T & KubeObject;
const WS = 'hostile-e2e';
const HOSTILE_REPO = 'hostile-e2e-input';
const GOOD_REPO = 'hostile-e2e-good';
const APP_NS = 'hostile-e2e-app';
const GOOD_NS = 'hostile-e2e-good';
const DIRECT_NS = 'hostile-e2e-direct';
const CLUSTERS = ['downstream-1', 'downstream-2'];
const TIMEOUT = 180_000; // a ceiling for a loaded 2-core CI machine, not a measure

const cm = (name: string, version: string) => `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${name}\ndata:\n  version: "${version}"\n`;
const GOOD_APP: Record<string, string> = { 'app/fleet.yaml': `defaultNamespace: ${APP_NS}\n`, 'app/cm-a.yaml': cm('hostile-a', '1') };

describe('hostile content through the controller and agent processes', function () {
  this.timeout(30 * 60_000);
  let fleet: Fleet;
  let downstreams: KubeClient[] = [];
  let registry: RegistryClient;
  let goodVersion = 0;
  let hostileCommit = '';
  const git = () => stack().git!;
  const reg = () => stack().registry('tls-auth');

  const getRepo = (name: string) => fleet.upstream.get<Obj<GitRepo>>({ apiVersion: API_VERSION, kind: 'GitRepo', namespace: WS, name });
  const bundlesOf = async (repo: string) =>
    (await fleet.upstream.list<Obj<Bundle>>({ apiVersion: API_VERSION, kind: 'Bundle', namespace: WS }, `${Label.RepoName}=${repo}`)).items;
  const deploymentsOf = async (bundle: string) =>
    (
      await fleet.upstream.list<Obj<BundleDeployment>>(
        { apiVersion: API_VERSION, kind: 'BundleDeployment' },
        `${Label.BundleName}=${bundle},${Label.BundleNamespace}=${WS}`,
      )
    ).items;
  const versionOn = async (client: KubeClient, namespace: string, name: string) =>
    (await client.get<KubeObject & { data?: Record<string, string> }>({ apiVersion: 'v1', kind: 'ConfigMap', namespace, name }))?.data?.version;

  /** Pushes a change to the other GitRepo and waits until both clusters run it; returns when they do. */
  async function goodKeepsDeploying(): Promise<void> {
    const version = String(++goodVersion);
    await git().commit(GOOD_REPO, { 'good/cm.yaml': cm('hostile-good', version) }, `good v${version}`);
    await waitFor(
      async () => {
        await fleet.assertAlive();
        for (const d of downstreams) if ((await versionOn(d, GOOD_NS, 'hostile-good')) !== version) return undefined;
        return true;
      },
      {
        what: `the other GitRepo's version ${version} on both clusters meanwhile`,
        timeoutMs: TIMEOUT,
        intervalMs: 500,
        context: () => `logs in ${fleet.logDir}`,
      },
    );
  }

  const converged = (repo: string, commit: string) => gitRepoReadyAt(fleet, WS, repo, commit, TIMEOUT);

  /** The registry repository and tags of the hostile GitRepo's bundle. */
  async function storedTags(): Promise<{ digest: string | undefined; tags: string[] }> {
    const bundle = (await bundlesOf(HOSTILE_REPO))[0];
    const reference = bundle?.spec.oci?.reference ?? '';
    const repository = reference.slice(reference.indexOf('/') + 1).replace(/@sha256:.*$/, '');
    return { digest: bundle?.spec.oci?.digest, tags: (await registry.listTags(repository)).sort() };
  }

  before(async function () {
    this.timeout(6 * 60_000);
    downstreams = await Promise.all(CLUSTERS.map((c) => KubeClient.fromKubeConfig(stack().cluster(c).kubeConfig())));
    // Read by the processes at spawn only (see badinput.e2e.ts): a small render budget, so that costly content hits it quickly.
    Object.assign(process.env, { FLOTILLA_RENDER_TIMEOUT: '10s', FLOTILLA_RENDER_MEMORY: '128' });
    try {
      fleet = await startFleet(stack(), { workspace: WS, clusters: CLUSTERS.map((name) => ({ name, labels: { env: 'hostile-e2e' } })) });
    } finally {
      delete process.env.FLOTILLA_RENDER_TIMEOUT;
      delete process.env.FLOTILLA_RENDER_MEMORY;
    }
    const up = fleet.upstream;
    await applyCredentials(up, WS, 'hostile-e2e', git(), reg());
    await git().createRepo(HOSTILE_REPO);
    await git().createRepo(GOOD_REPO);
    hostileCommit = await git().commit(HOSTILE_REPO, GOOD_APP, 'good state');
    goodVersion = 1;
    const goodCommit = await git().commit(
      GOOD_REPO,
      { 'good/fleet.yaml': `defaultNamespace: ${GOOD_NS}\n`, 'good/cm.yaml': cm('hostile-good', '1') },
      'good v1',
    );
    for (const [name, path] of [
      [HOSTILE_REPO, 'app'],
      [GOOD_REPO, 'good'],
    ] as const) {
      const spec = {
        paths: [path],
        targets: [{ clusterSelector: { matchLabels: { env: 'hostile-e2e' } } }],
        ociRegistry: ociRegistryFor(reg(), 'hostile-e2e'),
      };
      await up.apply(gitRepoObject(name, WS, git(), name, spec), 'hostile-e2e');
    }
    await converged(HOSTILE_REPO, hostileCommit);
    await converged(GOOD_REPO, goodCommit);
    registry = registryClientFor(reg());
  });

  fleetSuiteTeardown(() => fleet, {
    beforeStop: async () => {
      await registry?.close();
    },
    afterStop: async () => {
      await Promise.all(downstreams.map((d) => d.close()));
    },
  });

  describe('from git, refused by the controller before anything is pushed', () => {
    for (const c of hostileCorpus('app')) {
      it(`stalls the GitRepo on ${c.input}, naming ${c.file} and the limit, while another GitRepo deploys to both clusters`, async () => {
        await converged(HOSTILE_REPO, hostileCommit);
        const before = await storedTags();
        expect(before.digest, 'the good Bundle is stored in OCI').to.match(/^sha256:/);
        try {
          const commit = await git().commit(HOSTILE_REPO, { 'app/cm-a.yaml': cm('hostile-a', '2'), [c.file]: c.content }, c.input);
          const stalled = await Promise.all([
            waitFor(
              async () => {
                const r = await getRepo(HOSTILE_REPO);
                return cond(r, 'Stalled')?.status === 'True' && cond(r, 'BundlesBuilt')?.message?.includes(commit.slice(0, 12)) ? r : undefined;
              },
              { what: `GitRepo ${HOSTILE_REPO} stalled on ${c.input}`, timeoutMs: TIMEOUT, intervalMs: 500, context: () => `logs in ${fleet.logDir}` },
            ),
            goodKeepsDeploying(),
          ]).then(([r]) => r);
          const message = cond(stalled, 'Stalled')?.message ?? '';
          expect(cond(stalled, 'Stalled')?.reason).to.equal(c.reason);
          expect(message).to.include(c.file).and.match(c.limit);
          expect(stalled.status?.commit, 'the status names the last good commit').to.equal(hostileCommit);
          expect(await storedTags(), 'nothing pushed: the same artifact, no new tag').to.deep.equal(before);
          for (const d of downstreams) expect(await versionOn(d, APP_NS, 'hostile-a'), 'nothing of the hostile commit applied').to.equal('1');
          await fleet.assertAlive();
          faultLog.record({ fault: `hostile input: ${c.input} (git)`, result: 'refused', objectsLost: 0, note: `${c.reason}: ${message}`.slice(0, 110) });
        } finally {
          hostileCommit = await git().commit(HOSTILE_REPO, { ...GOOD_APP, [c.file]: null }, 'back to the good state');
        }
        await converged(HOSTILE_REPO, hostileCommit);
      });
    }
  });

  describe('in front of the agents, through a Bundle created upstream', () => {
    const direct = [costlyToRender(), ...hostileCorpus('').filter((c) => c.input.startsWith('an alias bomb'))];
    for (const c of direct) {
      it(`refuses ${c.input} on every BundleDeployment with ${c.reason}, never retried with backoff, while another GitRepo deploys`, async () => {
        const name = `hostile-e2e-direct-${direct.indexOf(c)}`;
        const files = [
          { path: 'base.yaml', content: Buffer.from(cm('hostile-direct', '1')) },
          ...Object.entries(c.extraFiles ?? {}).map(([path, content]) => ({ path, content: Buffer.from(content) })),
          { path: c.file, content: Buffer.from(c.content) },
        ];
        await fleet.upstream.apply(
          {
            apiVersion: API_VERSION,
            kind: 'Bundle',
            metadata: { name, namespace: WS },
            spec: {
              defaultNamespace: DIRECT_NS,
              contentsID: contentsID(files),
              targetRestrictions: [{ clusterSelector: { matchLabels: { env: 'hostile-e2e' } } }],
              resources: filesToResources(files),
              ...(c.overlays ? { yaml: { overlays: c.overlays } } : {}),
            },
          },
          'hostile-e2e',
        );
        try {
          const [refused] = await Promise.all([
            waitFor(
              async () => {
                await fleet.assertAlive();
                const bds = await deploymentsOf(name);
                return bds.length === CLUSTERS.length &&
                  bds.every((bd) => cond(bd, 'Deployed')?.status === 'False' && cond(bd, 'Deployed')?.reason === c.reason)
                  ? bds
                  : undefined;
              },
              {
                what: `both BundleDeployments of ${name} to report ${c.reason}`,
                timeoutMs: TIMEOUT,
                intervalMs: 500,
                context: () => `logs in ${fleet.logDir}`,
              },
            ),
            goodKeepsDeploying(),
          ]);
          for (const bd of refused) {
            expect(cond(bd, 'Deployed')?.message).to.match(c.limit);
            expect(bd.status?.display?.state, 'the real state, not WaitApplied').to.equal('ErrApplied');
          }
          await goodKeepsDeploying(); // more time passes: a tight retry loop would show in the logs below
          const keys = refused.map((bd) => `"key":"${bd.metadata.namespace ?? ''}/${bd.metadata.name}"`);
          for (const agent of Object.values(fleet.agents)) {
            const lines = (await agent.logs()).split('\n').filter((l) => keys.some((k) => l.includes(k)));
            expect(
              lines.filter((l) => l.includes('retrying with backoff')),
              `${agent.name} retried ${name} with backoff`,
            ).to.deep.equal([]);
            expect(lines.filter((l) => l.includes('reconcile stalled')).length, `${agent.name} reported ${name} stalled`).to.be.greaterThan(0);
          }
          for (const d of downstreams) expect(await versionOn(d, DIRECT_NS, 'hostile-direct'), 'nothing of the refused bundle applied').to.equal(undefined);
          faultLog.record({
            fault: `hostile input: ${c.input} (Bundle)`,
            result: 'refused',
            objectsLost: 0,
            note: `${c.reason}: ${cond(refused[0], 'Deployed')?.message ?? ''}`.slice(0, 110),
          });
        } finally {
          await fleet.upstream.delete({ apiVersion: API_VERSION, kind: 'Bundle', namespace: WS, name });
        }
      });
    }
  });
});
