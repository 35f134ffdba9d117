import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { stack } from './fixture.js';
import { waitFor } from '../stack/net.js';
import { registryClientFor, requestsSince } from '../stack/registry.js';
import { startFleet, fleetSuiteTeardown, type Fleet } from './support/processes.js';
import { faultLog } from './support/faults.js';
import { API_VERSION, Label, type Bundle, type BundleDeployment, type GitRepo } from '../lib/api/index.js';
import { KubeClient, type KubeObject } from '../lib/kube/client.js';
import { buildArtifact, pushBundle, OCI_MANIFEST_MEDIA_TYPE, type RegistryClient } from '../lib/oci/index.js';
import { applyCredentials, gitRepoObject, gitRepoReadyAt, ociRegistryFor } from './support/fleetobjects.js';
import { cond, type Cond } from './support/kube.js';

/**
 * Bad input through the whole system: the controller and an agent run as real processes (registered through
 * the token flow), bundles come from git on the stack's git server and are stored in the TLS + basic-auth
 * registry. Each bad input must be refused with a status naming the file or layer and the cause, apply
 * nothing of the bad version (the objects of the last good version stay, unchanged), and must not stop
 * another GitRepo's bundle from deploying a change pushed meanwhile.
 *
 * - Git (refused by the controller): malformed YAML, a fleet.yaml with wrong types, a file over the
 *   configured --max-file-bytes. Git (refused by the agent): an unknown kind, an object in a namespace that
 *   does not exist downstream (Fleet: `namespaces "x" not found`; see the README).
 * - Crafted OCI artifacts (an attacker with registry write access), pushed with the raw registry client and
 *   put in front of the agent by a Bundle created directly upstream (spec.oci pinned by digest + targets),
 *   as Fleet lets users create Bundles: path traversal in layer titles, a layer over the configured size
 *   limit, a layer larger than its manifest declares, a compressed (non-Flotilla) layer media type, a wrong
 *   artifactType, a wrong manifest media type, and blobs changed on the registry's disk.
 */

type Obj<T> = T & KubeObject;
const WS = 'bad-e2e';
const BAD_REPO = 'bad-e2e-input';
const GOOD_REPO = 'bad-e2e-good';
const APP_NS = 'bad-e2e-app';
const GOOD_NS = 'bad-e2e-good';
const OCI_NS = 'bad-e2e-oci';
const OCI_BUNDLE = 'bad-e2e-crafted';
const CLUSTER = 'downstream-1';
/** The configured per-file limit of the controller and the agent (both read FLOTILLA_MAX_FILE_BYTES). */
const MAX_FILE_BYTES = 64 * 1024;
const TIMEOUT = 180_000; // a ceiling for a loaded 2-core CI machine, not a measure
const DOCKER_MEDIA_TYPE = 'application/vnd.docker.distribution.manifest.v2+json';

const cm = (name: string, version: string, namespace?: string) =>
  `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${name}\n${namespace ? `  namespace: ${namespace}\n` : ''}data:\n  version: "${version}"\n`;

/** The good state of the bad-input repository: two ConfigMaps at version 1. */
const GOOD_APP: Record<string, string> = {
  'app/fleet.yaml': `defaultNamespace: ${APP_NS}\n`,
  'app/cm-a.yaml': cm('bad-a', '1'),
  'app/cm-b.yaml': cm('bad-b', '1'),
};

type Conditioned = { status?: { conditions?: Cond[] } } | undefined;
const ready = (o: Conditioned) => cond(o, 'Ready')?.status === 'True';

describe('bad input through the controller and agent processes', function () {
  this.timeout(20 * 60_000);
  let fleet: Fleet;
  let downstream: KubeClient;
  let registry: RegistryClient;
  let goodVersion = 0;
  let badCommit = '';
  const git = () => stack().git!;
  const reg = () => stack().registry('tls-auth');
  const caBundle = () => Buffer.from(reg().caPem ?? '').toString('base64');

  const getRepo = (name: string) => fleet.upstream.get<Obj<GitRepo>>({ apiVersion: API_VERSION, kind: 'GitRepo', namespace: WS, name });
  const bundlesOf = async (repo: string) =>
    (await fleet.upstream.list<Obj<Bundle>>({ apiVersion: API_VERSION, kind: 'Bundle', namespace: WS }, `${Label.RepoName}=${repo}`)).items;
  const bundleDeployment = async (bundle: string) =>
    (
      await fleet.upstream.list<Obj<BundleDeployment>>(
        { apiVersion: API_VERSION, kind: 'BundleDeployment' },
        `${Label.BundleName}=${bundle},${Label.BundleNamespace}=${WS}`,
      )
    ).items[0];

  /** ConfigMaps downstream in `namespace`, name -> "resourceVersion version": any write or deletion changes it. */
  async function objects(namespace: string): Promise<Map<string, string>> {
    const list = await downstream.list<KubeObject & { data?: Record<string, string> }>({ apiVersion: 'v1', kind: 'ConfigMap', namespace });
    return new Map(
      list.items
        .filter((c) => c.metadata.name.startsWith('bad-'))
        .map((c) => [c.metadata.name, `${c.metadata.resourceVersion ?? ''} v${c.data?.version ?? ''}`]),
    );
  }

  /** Objects of `before` that are gone now. */
  async function lostSince(namespace: string, before: Map<string, string>): Promise<number> {
    const now = await objects(namespace);
    return [...before.keys()].filter((name) => !now.has(name)).length;
  }

  /** Asserts the last good objects are all there, unchanged (not written at all), and nothing was added. */
  async function expectUntouched(namespace: string, before: Map<string, string>, what: string): Promise<void> {
    expect(Object.fromEntries(await objects(namespace)), `${what}: the objects of the last good version, unchanged`).to.deep.equal(Object.fromEntries(before));
  }

  /** Pushes a change to the other GitRepo and waits for it to be applied downstream. */
  async function goodKeepsDeploying(): Promise<void> {
    goodVersion++;
    await git().commit(GOOD_REPO, { 'good/cm.yaml': cm('bad-good', String(goodVersion)) }, `good v${goodVersion}`);
    await waitFor(async () => (await objects(GOOD_NS)).get('bad-good')?.endsWith(` v${goodVersion}`) || undefined, {
      what: `the good bundle to deploy version ${goodVersion} meanwhile`,
      timeoutMs: TIMEOUT,
      intervalMs: 500,
      context: () => `logs in ${fleet.logDir}`,
    });
  }

  const converged = (repo: string, commit: string) => gitRepoReadyAt(fleet, WS, repo, commit, TIMEOUT);

  /** Restores the bad-input repository to its good state (also after a failed test, so the next one starts clean). */
  async function restoreBadRepo(added: readonly string[]): Promise<void> {
    badCommit = await git().commit(
      BAD_REPO,
      { ...GOOD_APP, ...Object.fromEntries(added.filter((p) => !(p in GOOD_APP)).map((p) => [p, null])) },
      'back to the good state',
    );
  }

  before(async function () {
    this.timeout(6 * 60_000);
    downstream = await KubeClient.fromKubeConfig(stack().cluster(CLUSTER).kubeConfig());
    // The processes inherit the environment at spawn: both read the same per-file limit (see the README).
    // It is set only while startFleet spawns them, so that no other suite's process sees it.
    process.env.FLOTILLA_MAX_FILE_BYTES = String(MAX_FILE_BYTES);
    try {
      fleet = await startFleet(stack(), { workspace: WS, clusters: [{ name: CLUSTER, labels: { env: 'bad-e2e' } }] });
    } finally {
      delete process.env.FLOTILLA_MAX_FILE_BYTES;
    }
    const up = fleet.upstream;
    await applyCredentials(up, WS, 'bad-e2e', git(), reg());
    await git().createRepo(BAD_REPO);
    await git().createRepo(GOOD_REPO);
    badCommit = await git().commit(BAD_REPO, GOOD_APP, 'good state');
    goodVersion = 1;
    const goodCommit = await git().commit(GOOD_REPO, { 'good/fleet.yaml': `defaultNamespace: ${GOOD_NS}\n`, 'good/cm.yaml': cm('bad-good', '1') }, 'good v1');
    for (const [name, path] of [
      [BAD_REPO, 'app'],
      [GOOD_REPO, 'good'],
    ] as const) {
      await up.apply(gitRepoObject(name, WS, git(), name, { paths: [path], ociRegistry: ociRegistryFor(reg(), 'bad-e2e') }), 'bad-e2e');
    }
    await converged(BAD_REPO, badCommit);
    await converged(GOOD_REPO, goodCommit);
    expect([...(await objects(APP_NS)).keys()].sort()).to.deep.equal(['bad-a', 'bad-b']);
    registry = registryClientFor(reg());
  });

  fleetSuiteTeardown(() => fleet, {
    beforeStop: async () => {
      await registry?.close();
    },
    afterStop: async () => {
      await downstream?.close();
    },
  });

  /** Waits for a Bundle's Ready condition to be False with a message matching `pattern` (the agent's, rolled up). */
  async function bundleSays(name: string, pattern: RegExp): Promise<void> {
    let seen = '';
    await waitFor(
      async () => {
        const b = await fleet.upstream.get<Obj<Bundle>>({ apiVersion: API_VERSION, kind: 'Bundle', namespace: WS, name });
        seen = cond(b, 'Ready')?.message ?? '';
        return (cond(b, 'Ready')?.status === 'False' && pattern.test(seen)) || undefined;
      },
      { what: `Bundle ${name} Ready=False saying ${String(pattern)}`, timeoutMs: TIMEOUT, intervalMs: 500, context: () => `last message: ${seen}` },
    );
  }

  /** Waits for the GitRepo to stall on `commit`; returns the Stalled message after checking reason and pattern. */
  async function stalledOn(commit: string, c: { input: string; reason: string; message: RegExp }): Promise<string> {
    const stalled = await waitFor(
      async () => {
        const r = await getRepo(BAD_REPO);
        return cond(r, 'Stalled')?.status === 'True' && cond(r, 'BundlesBuilt')?.message?.includes(commit.slice(0, 12)) ? r : undefined;
      },
      { what: `GitRepo ${BAD_REPO} stalled on the ${c.input}`, timeoutMs: TIMEOUT, intervalMs: 500, context: () => `logs in ${fleet.logDir}` },
    );
    const message = cond(stalled, 'Stalled')?.message ?? '';
    expect(cond(stalled, 'Stalled')?.reason).to.equal(c.reason);
    expect(message).to.match(c.message);
    expect(cond(stalled, 'Ready')?.status).to.equal('False');
    expect(stalled.status?.commit, 'the status names the last good commit').to.equal(badCommit);
    return message;
  }

  /**
   * Waits for the agent to refuse the bundle `name` at `commit`, which the controller accepted (it cannot know
   * the clusters), and for the refusal to roll up into the Bundle's summary and the GitRepo's Ready condition.
   * Returns the BundleDeployment's Deployed message.
   */
  async function refusedByAgent(name: string, commit: string, c: { reason: string; message: RegExp }): Promise<string> {
    await waitFor(async () => (await getRepo(BAD_REPO))?.status?.commit === commit || undefined, {
      what: `the controller to store commit ${commit.slice(0, 12)}`,
      timeoutMs: TIMEOUT,
      intervalMs: 500,
    });
    const bd = await waitFor(
      async () => {
        const b = await bundleDeployment(name);
        const deployed = cond(b, 'Deployed');
        return deployed?.status === 'False' && deployed.reason === c.reason ? b : undefined;
      },
      { what: `the BundleDeployment of ${name} to report ${c.reason}`, timeoutMs: TIMEOUT, intervalMs: 500, context: () => `logs in ${fleet.logDir}` },
    );
    const message = cond(bd, 'Deployed')?.message ?? '';
    expect(message).to.match(c.message);
    expect(bd.status?.appliedDeploymentID, 'the applied deployment is still the last good one').to.not.equal(bd.spec.deploymentID);
    const repo = await waitFor(
      async () => {
        const r = await getRepo(BAD_REPO);
        return cond(r, 'Ready')?.status === 'False' && c.message.test(cond(r, 'Ready')?.message ?? '') ? r : undefined;
      },
      { what: "the GitRepo Ready condition to carry the agent's message", timeoutMs: TIMEOUT, intervalMs: 500 },
    );
    expect(repo.status?.display?.state).to.equal('ErrApplied');
    await bundleSays(name, c.message);
    return message;
  }

  describe('from git, refused by the controller', () => {
    const cases: { input: string; files: Record<string, string>; reason: string; message: RegExp }[] = [
      {
        input: 'malformed YAML',
        reason: 'InvalidBundle',
        message: /app\/broken\.yaml:\d+/,
        files: { 'app/broken.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bad-broken\n  labels: {a: [1, 2\n' },
      },
      {
        input: 'fleet.yaml with wrong types',
        reason: 'InvalidBundle',
        message: /app\/fleet\.yaml.*(defaultNamespace|keepResources)/s,
        files: { 'app/fleet.yaml': 'defaultNamespace: [not, a, string]\nkeepResources: "sometimes"\n' },
      },
      {
        input: `file over --max-file-bytes (${MAX_FILE_BYTES})`,
        reason: 'BundleTooLarge',
        message: new RegExp(`app/huge\\.yaml: \\d+ bytes .*limit of ${MAX_FILE_BYTES}`),
        files: { 'app/huge.yaml': cm('bad-huge', 'x'.repeat(MAX_FILE_BYTES * 3)) },
      },
    ];
    for (const c of cases) {
      it(`stalls on a ${c.input} naming the file, keeps the last good Bundle and objects, while another GitRepo deploys`, async () => {
        await converged(BAD_REPO, badCommit);
        const before = await objects(APP_NS);
        const digest = (await bundlesOf(BAD_REPO))[0]?.spec.oci?.digest;
        expect(digest, 'the good Bundle is stored in OCI').to.match(/^sha256:/);
        try {
          // The same commit changes a good file too: none of it may be applied.
          const commit = await git().commit(BAD_REPO, { 'app/cm-a.yaml': cm('bad-a', '2'), ...c.files }, c.input);
          const [message] = await Promise.all([stalledOn(commit, c), goodKeepsDeploying()]);
          expect((await bundlesOf(BAD_REPO))[0]?.spec.oci?.digest, 'the Bundle keeps its last good artifact').to.equal(digest);
          await expectUntouched(APP_NS, before, c.input);
          faultLog.record({
            fault: `bad input: ${c.input} (git)`,
            result: 'refused',
            objectsLost: await lostSince(APP_NS, before),
            note: `${c.reason}: ${message}`.slice(0, 110),
          });
        } finally {
          await restoreBadRepo(Object.keys(c.files));
        }
        await converged(BAD_REPO, badCommit);
      });
    }
  });

  describe('from git, refused by the agent', () => {
    const cases: { input: string; files: Record<string, string>; reason: string; message: RegExp; absent: () => Promise<boolean> }[] = [
      {
        input: 'unknown kind (no CRD downstream)',
        reason: 'KindNotFound',
        message: /Gizmo \(widgets\.bad-e2e\.flotilla\.dev\/v1\).*objects: Gizmo bad-e2e-app\/bad-gizmo/,
        files: { 'app/gizmo.yaml': 'apiVersion: widgets.bad-e2e.flotilla.dev/v1\nkind: Gizmo\nmetadata:\n  name: bad-gizmo\nspec:\n  size: 3\n' },
        absent: async () => true,
      },
      {
        input: 'object in a namespace that does not exist',
        reason: 'NamespaceNotFound',
        message: /ConfigMap bad-e2e-nowhere\/bad-elsewhere: namespace bad-e2e-nowhere does not exist/,
        files: { 'app/elsewhere.yaml': cm('bad-elsewhere', '1', 'bad-e2e-nowhere') },
        absent: async () => (await downstream.get({ apiVersion: 'v1', kind: 'Namespace', name: 'bad-e2e-nowhere' })) === undefined,
      },
    ];
    for (const c of cases) {
      it(`refuses an ${c.input} on the BundleDeployment, GitRepo and Bundle, applying nothing of that version`, async () => {
        await converged(BAD_REPO, badCommit);
        const before = await objects(APP_NS);
        const name = (await bundlesOf(BAD_REPO))[0]!.metadata.name;
        try {
          const commit = await git().commit(BAD_REPO, { 'app/cm-a.yaml': cm('bad-a', '2'), ...c.files }, c.input);
          const [message] = await Promise.all([refusedByAgent(name, commit, c), goodKeepsDeploying()]);
          await expectUntouched(APP_NS, before, c.input);
          expect(await c.absent(), 'nothing else of the bad version exists downstream').to.equal(true);
          faultLog.record({
            fault: `bad input: ${c.input} (git)`,
            result: 'refused',
            objectsLost: await lostSince(APP_NS, before),
            note: `${c.reason}: ${message}`.slice(0, 110),
          });
        } finally {
          await restoreBadRepo(Object.keys(c.files));
        }
        // Back at the good content, the agent has nothing to write: the objects stay as they were.
        await converged(BAD_REPO, badCommit);
        await expectUntouched(APP_NS, before, `${c.input}, restored`);
      });
    }

    it('deploys a version refused for a missing namespace once that namespace exists (NamespaceNotFound waits)', async () => {
      await converged(BAD_REPO, badCommit);
      const name = (await bundlesOf(BAD_REPO))[0]!.metadata.name;
      const files = { 'app/cm-a.yaml': cm('bad-a', '2'), 'app/later.yaml': cm('bad-later', '1', 'bad-e2e-later') };
      try {
        const commit = await git().commit(BAD_REPO, files, 'an object for a namespace made later');
        await refusedByAgent(name, commit, { reason: 'NamespaceNotFound', message: /namespace bad-e2e-later does not exist/ });
        await downstream.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'bad-e2e-later' } }, 'bad-e2e');
        await converged(BAD_REPO, commit);
        expect((await objects(APP_NS)).get('bad-a')).to.match(/ v2$/);
        expect((await objects('bad-e2e-later')).has('bad-later')).to.equal(true);
      } finally {
        await restoreBadRepo(Object.keys(files));
      }
      await converged(BAD_REPO, badCommit);
      expect((await objects('bad-e2e-later')).has('bad-later'), 'pruned when it left git').to.equal(false);
    });
  });

  describe('crafted OCI artifacts in front of the agent, through a Bundle created upstream', () => {
    const repository = 'bad-e2e/crafted';
    const meta = { bundleName: OCI_BUNDLE, bundleNamespace: WS };
    let good = { digest: '', reference: '' };
    let lastGood = new Map<string, string>();

    /** The crafted bundle's files: a version-2 change of a good file, so that any partial apply shows. */
    const v2 = (extra: Record<string, Buffer | string> = {}) =>
      Object.entries({ 'cm-a.yaml': cm('bad-oci-a', '2'), 'cm-b.yaml': cm('bad-oci-b', '1'), ...extra }).map(([path, content]) => ({
        path,
        content: Buffer.from(content),
      }));

    /** Points the Bundle at an artifact (its digest is also its contents ID, so each is a new deployment). */
    async function deploy(artifact: { digest: string; reference: string }): Promise<void> {
      await fleet.upstream.apply(
        {
          apiVersion: API_VERSION,
          kind: 'Bundle',
          metadata: { name: OCI_BUNDLE, namespace: WS },
          // GitRepo targets reach Bundles as targetRestrictions: they choose the clusters (Bundle targets only customize).
          spec: {
            defaultNamespace: OCI_NS,
            contentsID: artifact.digest,
            targetRestrictions: [{ clusterSelector: {} }],
            oci: { reference: artifact.reference, digest: artifact.digest, secretName: 'registry-auth', caBundle: caBundle() },
          },
        },
        'bad-e2e',
      );
    }

    /** Pushes a manifest edited by `edit` from the artifact of `files`; its blobs are pushed as they are. */
    async function craft(
      files: ReturnType<typeof v2>,
      edit: (m: Record<string, unknown> & { layers: Record<string, unknown>[] }) => void,
      mediaType = OCI_MANIFEST_MEDIA_TYPE,
    ): Promise<{ digest: string; reference: string }> {
      const built = await buildArtifact(files, meta);
      for (const blob of built.blobs) await registry.pushBlob(repository, blob.descriptor, blob.source);
      const manifest = JSON.parse(built.manifest.toString('utf8')) as Record<string, unknown> & { layers: Record<string, unknown>[] };
      edit(manifest);
      const digest = await registry.putManifest(repository, `crafted-${randomBytes(4).toString('hex')}`, Buffer.from(JSON.stringify(manifest)), mediaType);
      return { digest, reference: `${reg().host}/${repository}@${digest}` };
    }

    const title = (m: { layers: Record<string, unknown>[] }, i: number, path: string) => {
      (m.layers[i] as { annotations: Record<string, string> }).annotations['org.opencontainers.image.title'] = path;
    };

    before(async () => {
      const pushed = await pushBundle(registry, `${reg().host}/${repository}`, v2({ 'cm-a.yaml': cm('bad-oci-a', '1') }), meta, 'v1');
      good = { digest: pushed.digest, reference: pushed.reference };
      await deploy(good);
      await waitFor(
        async () => {
          const bd = await bundleDeployment(OCI_BUNDLE);
          return (bd?.status?.appliedDeploymentID === bd?.spec.deploymentID && ready(bd)) || undefined;
        },
        { what: 'the user-created Bundle to deploy its good artifact', timeoutMs: TIMEOUT, intervalMs: 500, context: () => `logs in ${fleet.logDir}` },
      );
      lastGood = await objects(OCI_NS);
      expect([...lastGood.keys()].sort()).to.deep.equal(['bad-oci-a', 'bad-oci-b']);
    });

    const cases: {
      input: string;
      reason: string;
      message: RegExp;
      artifact: () => Promise<{ digest: string; reference: string }>;
      check?: (mark: number) => Promise<void>;
    }[] = [
      {
        input: 'layer title "../x" (path traversal)',
        reason: 'InvalidBundle',
        message: /layer "\.\.\/x\.yaml": path contains "\.\."/,
        artifact: () => craft(v2(), (m) => title(m, 0, '../x.yaml')),
      },
      {
        input: 'layer title "/etc/x" (absolute path)',
        reason: 'InvalidBundle',
        message: /layer "\/etc\/x\.yaml": path is absolute/,
        artifact: () => craft(v2(), (m) => title(m, 0, '/etc/x.yaml')),
      },
      {
        input: `layer over --max-file-bytes (${MAX_FILE_BYTES})`,
        reason: 'BundleTooLarge',
        message: new RegExp(`layer "big\\.yaml" has \\d+ bytes, over the ${MAX_FILE_BYTES}-byte limit per file`),
        artifact: () => craft(v2({ 'big.yaml': cm('bad-oci-big', 'y'.repeat(MAX_FILE_BYTES * 2)) }), () => undefined),
        // Refused from the declared size: the big layer is never downloaded.
        check: async (mark) => {
          const gets = (await requestsSince(reg(), mark)).filter((e) => e.method === 'GET' && e.path.startsWith(`/v2/${repository}/blobs/`));
          expect(
            gets.map((e) => e.path),
            'blobs downloaded for an artifact refused from its manifest',
          ).to.deep.equal([]);
        },
      },
      {
        input: 'layer larger than its declared size',
        reason: 'ArtifactTampered',
        message: /layer "cm-a\.yaml": size mismatch/,
        artifact: () =>
          craft(v2(), (m) => {
            (m.layers[0] as { size: number }).size = 8;
          }),
      },
      {
        input: 'gzip layer media type (nothing is decompressed)',
        reason: 'InvalidBundle',
        message: /layer "cm-a\.yaml" has media type application\/vnd\.oci\.image\.layer\.v1\.tar\+gzip/,
        artifact: () =>
          craft(v2(), (m) => {
            (m.layers[0] as { mediaType: string }).mediaType = 'application/vnd.oci.image.layer.v1.tar+gzip';
          }),
      },
      {
        input: 'wrong artifactType',
        reason: 'InvalidBundle',
        message: /artifactType is application\/vnd\.example\.not-a-bundle.*not a Flotilla bundle/,
        artifact: () =>
          craft(v2(), (m) => {
            m.artifactType = 'application/vnd.example.not-a-bundle';
          }),
      },
      {
        input: 'layer bytes changed on the registry disk (digest mismatch)',
        reason: 'ArtifactTampered',
        message: /layer "victim\.yaml".*digest mismatch/,
        artifact: async () => {
          const content = cm('bad-oci-victim', randomBytes(8).toString('hex'));
          const a = await craft(v2({ 'victim.yaml': content }), () => undefined);
          const built = await buildArtifact([{ path: 'victim.yaml', content: Buffer.from(content) }], meta);
          // Same size, other bytes: only the digest can tell.
          await writeFile(reg().blobPath(built.layers[0]!.digest), content.replace(/[0-9a-f]{16}/, 'f'.repeat(16)));
          return a;
        },
      },
      {
        input: 'manifest changed on the registry disk (digest mismatch)',
        reason: 'ArtifactTampered',
        message: /manifest sha256:[0-9a-f]{64}.*digest mismatch/,
        artifact: async () => {
          const a = await craft(v2(), () => undefined);
          // The attacker rewrites an artifact already pinned: a traversal title in the stored manifest bytes.
          const path = reg().blobPath(a.digest);
          const stored = JSON.parse(await readFile(path, 'utf8')) as { layers: Record<string, unknown>[] };
          title(stored, 0, '../../escape.yaml');
          await writeFile(path, JSON.stringify(stored));
          return a;
        },
      },
      {
        input: 'wrong manifest media type (Docker schema 2)',
        reason: 'InvalidBundle',
        message: /mediaType is application\/vnd\.docker\.distribution\.manifest\.v2\+json/,
        artifact: () =>
          craft(
            v2(),
            (m) => {
              m.mediaType = DOCKER_MEDIA_TYPE;
            },
            DOCKER_MEDIA_TYPE,
          ),
      },
    ];
    for (const c of cases) {
      it(`refuses a ${c.input} with a clear condition, applying nothing`, async () => {
        const a = await c.artifact();
        const mark = reg().logs().length;
        await deploy(a);
        let message = '';
        await Promise.all([
          (async () => {
            let seen = '';
            const bd = await waitFor(
              async () => {
                const b = await bundleDeployment(OCI_BUNDLE);
                const deployed = cond(b, 'Deployed');
                seen = JSON.stringify(deployed);
                return b?.spec.oci?.digest === a.digest &&
                  deployed?.status === 'False' &&
                  deployed.reason === c.reason &&
                  c.message.test(deployed.message ?? '')
                  ? b
                  : undefined;
              },
              { what: `the agent to refuse the ${c.input}`, timeoutMs: TIMEOUT, intervalMs: 500, context: () => `Deployed: ${seen}; logs in ${fleet.logDir}` },
            );
            message = cond(bd, 'Deployed')?.message ?? '';
            expect(message, 'the message names the artifact').to.include(a.digest);
            expect(bd.status?.appliedDeploymentID).to.not.equal(bd.spec.deploymentID);
            await bundleSays(OCI_BUNDLE, c.message);
          })(),
          goodKeepsDeploying(),
        ]);
        await c.check?.(mark);
        await expectUntouched(OCI_NS, lastGood, c.input);
        await fleet.assertAlive();
        faultLog.record({
          fault: `bad input: ${c.input} (OCI)`,
          result: 'refused',
          objectsLost: await lostSince(OCI_NS, lastGood),
          note: `${c.reason}: ${message.replaceAll(a.reference, 'ARTIFACT')}`.slice(0, 110),
        });
      });
    }

    after(async () => {
      // Back to the good artifact: the agent reports it applied again, with the objects never rewritten.
      if (!good.digest) return;
      await deploy(good);
      await waitFor(
        async () => {
          const bd = await bundleDeployment(OCI_BUNDLE);
          return (bd?.spec.oci?.digest === good.digest && bd.status?.appliedDeploymentID === bd.spec.deploymentID && ready(bd)) || undefined;
        },
        { what: 'the Bundle back on its good artifact', timeoutMs: TIMEOUT, intervalMs: 500 },
      );
      await expectUntouched(OCI_NS, lastGood, 'back on the good artifact');
    });
  });
});
