import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { copyFile, mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { randomBytes } from 'node:crypto';
import { stack } from './fixture.js';
import { waitFor } from '../stack/net.js';
import { cacheDir } from '../stack/binaries.js';
import { registryClientFor, type RegistryHandle } from '../stack/registry.js';
import { removeFleetDir, startFleet, type Fleet } from './support/processes.js';
import { REGISTRY_AUTH_SECRET, applyCredentials, gitRepoObject, ociRegistryFor } from './support/fleetobjects.js';
import { KubeClient, type KubeObject } from '../lib/kube/client.js';
import { main } from '../cli/main.js';
import { findImageRefs } from '../lib/images/refs.js';
import { blobPath } from '../lib/images/layout.js';
import { readTarIndex } from '../lib/images/tar.js';
import { AIRGAP_ANNOTATION, LayoutReader } from '../lib/images/layout.js';
import { API_VERSION, type Bundle } from '../lib/api/index.js';
import { ENCRYPTED_FILE_MEDIA_TYPE, parsePublicKeys, signatureTag, verifySignatures, type Descriptor, type RegistryClient } from '../lib/oci/index.js';
import { ensureBinaries } from '../stack/binaries.js';
import { chartBundle, cosignHome, pushIndex, pushManifest, type Built } from './support/airgap-images.js';
import { cosign, cosignSign, generateKeyPair, type CosignKeyPair } from './cosign-cli.js';

/**
 * Across an air gap on the real stack (issue 17): a GitRepo outside the gap, signed (cosign key), verified
 * by its agent and encrypted, deploys a plain bundle and a Helm chart (the test's own) whose templates
 * reference images built here, by tag, on the plain source registry; one version also gets a second
 * signature from the real `cosign sign --key` (a sigstore bundle referrer). `flotilla airgap export` writes
 * both bundle versions as their ciphertext, their `.sig` signatures and referrers, and every locked image
 * to a tar (an OCI layout oras reads); the images are then deleted from the source, so nothing can come
 * from it; `flotilla airgap import` pushes the tar into the TLS + basic-auth registry (verifying every
 * blob; a tampered tar is refused naming the file; a second run sends nothing); there `cosign verify --key`
 * (the .sig of one version, the referrer of the other) and the agent's verifier accept the versions, whose layers are the same ciphertext; a GitRepo inside the
 * gap whose sources mirror to the imported copy deploys both bundles, relocated, with every digest unchanged.
 */

const run = promisify(execFile);

function orasBinary(): string {
  const recorded = (JSON.parse(readFileSync(join(cacheDir(), 'stack-binaries.json'), 'utf8')) as { oras?: string }).oras;
  if (recorded === undefined || !existsSync(recorded))
    throw new Error('the oras CLI is required by this test; build it with: bash stack/tools/install.sh --extras');
  return recorded;
}

const deployment = (multi: string, single: string) => `apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 0
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      initContainers: [{name: init, image: "${single}"}]
      containers: [{name: web, image: "${multi}"}]
`;

async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(args, { stdout: { write: (s: string) => (out += s) }, stderr: { write: (s: string) => (err += s) } });
  return { code, out, err };
}

describe('airgap: export to an OCI layout, import into a registry inside the gap', function () {
  this.timeout(900_000);
  const WS = 'airgap-x';
  const REPO = 'airgap-x-app';
  const APP_NS = 'airgap-x-app';
  let fleet: Fleet;
  let failed = false;
  let work: string;
  const downstream: Record<string, KubeClient> = {};
  const git = () => stack().git!;
  const src = (): RegistryHandle => stack().registry('http');
  const gap = (): RegistryHandle => stack().registry('tls-auth');
  let srcClient: RegistryClient;
  const built: Record<string, Built> = {};
  const kubeconfig = () => stack().cluster('upstream').kubeconfigPath;

  let signer: CosignKeyPair;
  let cosigner: CosignKeyPair;
  const bundleEntries: Descriptor[] = [];

  async function deployedImages(cluster: string, name: string): Promise<string[]> {
    const d = await downstream[cluster]?.get<KubeObject>({ apiVersion: 'apps/v1', kind: 'Deployment', namespace: APP_NS, name });
    return d ? findImageRefs(d).map((r) => r.image) : [];
  }

  /** Waits until the plain bundle's Deployment `web` and the chart's `chart-web` both reference `want`. */
  async function waitImages(cluster: string, want: string[]): Promise<void> {
    let last: string[][] = [];
    await waitFor(
      async () => {
        await fleet.assertAlive();
        last = [await deployedImages(cluster, 'web'), await deployedImages(cluster, 'chart-web')];
        return JSON.stringify(last) === JSON.stringify([want, want]) || undefined;
      },
      {
        what: `images on ${cluster}`,
        timeoutMs: 240_000,
        intervalMs: 1000,
        context: () => `got ${JSON.stringify(last)}, want ${JSON.stringify(want)}; logs in ${fleet.logDir}`,
      },
    );
  }

  before(async function () {
    this.timeout(10 * 60_000);
    work = await mkdtemp(join(tmpdir(), 'airgap-x-'));
    for (const c of ['downstream-1', 'downstream-2']) downstream[c] = await KubeClient.fromKubeConfig(stack().cluster(c).kubeConfig());
    srcClient = registryClientFor(src());
    built.multi = await pushIndex(srcClient, 'airgap-x/multi', 'v1', [randomBytes(200 * 1024), randomBytes(64 * 1024)], randomBytes(32 * 1024));
    built.single = await pushManifest(srcClient, 'airgap-x/single', [randomBytes(96 * 1024)], 'linux/amd64', 'v1');
    signer = await generateKeyPair(join(work, 'signer'), 'signer-pass');
    cosigner = await generateKeyPair(join(work, 'cosigner'), 'cosigner-pass');
    // The controller renders the chart with the real helm when it locks images; the agents when they apply.
    process.env.FLOTILLA_HELM = (await ensureBinaries()).helm;
    try {
      fleet = await startFleet(stack(), {
        workspace: WS,
        clusters: [
          { name: 'downstream-1', labels: { side: 'outside' } },
          { name: 'downstream-2', labels: { side: 'inside' } },
        ],
      });
    } finally {
      delete process.env.FLOTILLA_HELM;
    }
    await applyCredentials(fleet.upstream, WS, 'airgap-x', git(), gap());
    const secret = (name: string, stringData: Record<string, string>) =>
      fleet.upstream.apply({ apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace: WS }, stringData }, 'airgap-x');
    await secret('signing-key', { 'cosign.key': signer.key, 'cosign.password': signer.password });
    await secret('trusted-keys', { 'signer.pub': signer.pub });
    await secret('bundle-key', { key: randomBytes(32).toString('base64') });
    await git().createRepo(REPO);
    const [multi, single] = [`${src().host}/airgap-x/multi:v1`, `${src().host}/airgap-x/single:v1`];
    await git().commit(
      REPO,
      { 'app/fleet.yaml': `defaultNamespace: ${APP_NS}\n`, 'app/web.yaml': deployment(multi, single), ...chartBundle('chart', APP_NS, multi, single) },
      'a plain bundle and a Helm chart referencing the images by tag',
    );
  });
  afterEach(function () {
    if (this.currentTest?.state === 'failed') failed = true;
  });
  after(async function () {
    this.timeout(120_000);
    await fleet?.stop();
    await srcClient?.close();
    for (const k of Object.values(downstream)) await k.close();
    if (fleet && !failed) await removeFleetDir(fleet);
    if (work && !failed) await rm(work, { recursive: true, force: true });
  });

  it('exports both bundle versions as ciphertext with their signatures, and every locked image, to a tar that oras reads', async () => {
    await fleet.upstream.apply(
      gitRepoObject('outside', WS, git(), REPO, {
        paths: ['app', 'chart'],
        pollingInterval: '1s',
        targets: [{ clusterSelector: { matchLabels: { side: 'outside' } } }],
        ociRegistry: ociRegistryFor(src(), 'airgap-x-bundles'),
        images: { sources: [{ registry: src().host, basicHTTP: true }] },
        signing: { secretRef: { name: 'signing-key' } },
        verify: { provider: 'cosign', secretRef: { name: 'trusted-keys' } },
        encryption: { secretRef: { name: 'bundle-key' } },
      }),
      'airgap-x',
    );
    // The agent verified and decrypted each version before applying the plain and the chart's Deployment.
    await waitImages('downstream-1', [`${src().host}/airgap-x/multi:v1@${built.multi?.digest}`, `${src().host}/airgap-x/single:v1@${built.single?.digest}`]);
    const chart = (await fleet.upstream.get<Bundle & KubeObject>({ apiVersion: API_VERSION, kind: 'Bundle', namespace: WS, name: 'outside-chart' }))?.spec.oci
      ?.reference;
    expect(chart, 'the chart Bundle pins a version').to.be.a('string');
    // A second signature of the chart's version, by cosign itself: a sigstore bundle referrer (referrers tag here).
    await cosignSign(cosigner, chart as string);
    const tar = join(work, 'fleet.tar');
    const r = await cli(['airgap', 'export', 'outside', '-n', WS, '-o', tar, '--kubeconfig', kubeconfig()]);
    expect(r.code, r.err).to.equal(0);
    expect(r.err).to.contain('[####################]');
    const reader = await LayoutReader.open(tar);
    try {
      const index = await reader.index();
      const kind = (k: string) => index.filter((e) => e.annotations?.[AIRGAP_ANNOTATION.kind] === k);
      bundleEntries.push(...kind('bundle'));
      expect(bundleEntries.map((e) => e.annotations?.[AIRGAP_ANNOTATION.bundle]).sort()).to.deep.equal([`${WS}/outside-app`, `${WS}/outside-chart`]);
      expect(
        kind('signature')
          .map((e) => e.annotations?.[AIRGAP_ANNOTATION.tag])
          .sort(),
      ).to.deep.equal(bundleEntries.map((e) => signatureTag(e.digest)).sort());
      expect(kind('referrers').map((e) => e.annotations?.[AIRGAP_ANNOTATION.bundle])).to.deep.equal([`${WS}/outside-chart`]);
      expect(new Set(kind('image').map((e) => e.digest))).to.deep.equal(new Set([built.multi?.digest, built.single?.digest]));
      expect(r.out).to.contain(`exported ${index.length} entries`);
      for (const e of bundleEntries) {
        const types = (JSON.parse((await reader.manifest(e)).toString()) as { layers: Descriptor[] }).layers.map((l) => l.mediaType);
        expect(types.length > 0 && types.every((m) => m === ENCRYPTED_FILE_MEDIA_TYPE), `the layers travel encrypted: ${types}`).to.equal(true);
      }
    } finally {
      await reader.close();
    }
    // oras reads the archive as an OCI layout: the index with both platforms, by the digest the source gave.
    const { stdout } = await run(orasBinary(), ['manifest', 'fetch', '--oci-layout', `${tar}@${built.multi?.digest}`], { env: { ...process.env, HOME: work } });
    expect((JSON.parse(stdout) as { manifests: unknown[] }).manifests).to.have.length(2);
  });

  it('imports into the TLS + basic-auth registry verifying every blob, refuses a tampered tar naming the file, and resumes', async () => {
    // From here on the source has none of the images: whatever runs inside the gap comes from the import.
    for (const [repo, b] of [
      ['airgap-x/multi', built.multi],
      ['airgap-x/single', built.single],
    ] as const) {
      expect(await srcClient.deleteManifest(repo, b?.digest as string)).to.equal(true);
    }
    const tar = join(work, 'fleet.tar');
    const bad = join(work, 'tampered.tar');
    await copyFile(tar, bad);
    const fh = await open(bad, 'r+');
    const layer = built.single?.blobs[1]?.digest as string;
    const entry = (await readTarIndex(fh, bad)).get(blobPath(layer));
    await fh.write(Buffer.from('tampered'), 0, 8, (entry?.offset ?? 0) + 100);
    await fh.close();
    process.env.FLOTILLA_REGISTRY_PASSWORD = gap().password;
    try {
      const args = ['--registry', gap().host, '--namespace', 'gap', '--username', gap().username ?? '', '--ca-file', gap().caFile ?? ''];
      const refused = await cli(['airgap', 'import', bad, ...args]);
      expect(refused.code).to.equal(1);
      expect(refused.err).to.contain(bad).and.contain(blobPath(layer)).and.contain('tampered');
      const probe = registryClientFor(gap());
      expect(await probe.hasManifest('gap/airgap-x/single', built.single?.digest as string), 'no manifest of a refused import').to.equal(false);
      await probe.close();
      const first = await cli(['airgap', 'import', tar, ...args]);
      expect(first.code, first.err).to.equal(0);
      expect(first.out).to.contain(`${gap().host}/gap/airgap-x/multi:v1@${built.multi?.digest}`);
      // The refused run had sent the blobs before the tampered one; this run sends the rest, the good copy among them.
      expect(first.err).to.contain('uploaded in gap/airgap-x/single');
      const again = await cli(['airgap', 'import', tar, ...args]);
      expect(again.code, again.err).to.equal(0);
      expect(again.out).to.match(/0 manifests pushed, \d+ present; 0 blobs uploaded \(0\.0 MiB\)/);
    } finally {
      delete process.env.FLOTILLA_REGISTRY_PASSWORD;
    }
    const gapClient = registryClientFor(gap());
    try {
      const index = await gapClient.getManifest('gap/airgap-x/multi', 'v1', { accept: ['application/vnd.oci.image.index.v1+json'] });
      expect(index.digest).to.equal(built.multi?.digest);
      for (const b of built.multi?.blobs ?? []) expect(await gapClient.blobSize('gap/airgap-x/multi', b.digest)).to.equal(b.size);
    } finally {
      await gapClient.close();
    }
  });

  it('inside the gap, cosign verify --key and the agent verifier accept the imported versions, whose layers are the same ciphertext', async () => {
    const home = await cosignHome(join(work, 'cosign-home'), gap());
    const gapClient = registryClientFor(gap());
    const inGap = (e: Descriptor) => ({ registry: gap().host, repository: `gap/${e.annotations?.[AIRGAP_ANNOTATION.repository]}` });
    try {
      for (const e of bundleEntries) {
        const { repository } = inGap(e);
        const ref = `${gap().host}/${repository}@${e.digest}`;
        // cosign v3 prefers a sigstore bundle referrer where there is one (the chart's, by cosigner), else reads the .sig tag.
        const pub = e.annotations?.[AIRGAP_ANNOTATION.bundle] === `${WS}/outside-chart` ? cosigner.pubFile : signer.pubFile;
        const out = await cosign(['verify', '--key', pub, '--insecure-ignore-tlog=true', '--registry-cacert', gap().caFile ?? '', ref], home);
        expect(out.stdout, ref).to.contain(e.digest);
        const check = await verifySignatures(gapClient, inGap(e), e.digest, parsePublicKeys(signer.pub, 'signer.pub'));
        expect(check.verified, JSON.stringify(check)).to.equal(true);
        const manifest = await gapClient.getManifest(repository, e.digest);
        for (const layer of (JSON.parse(manifest.bytes.toString()) as { layers: Descriptor[] }).layers) {
          const inside = readFileSync(await gapClient.fetchBlob(repository, layer));
          const outside = readFileSync(await srcClient.fetchBlob(e.annotations?.[AIRGAP_ANNOTATION.repository] as string, layer));
          expect(inside.equals(outside), `layer ${layer.digest} is the same ciphertext`).to.equal(true);
          expect(inside.includes('kind: Deployment'), 'no plaintext inside the gap').to.equal(false);
        }
      }
      // The agent's verifier reads the sigstore bundle referrer too: here only its key is trusted.
      const chart = bundleEntries.find((e) => e.annotations?.[AIRGAP_ANNOTATION.bundle] === `${WS}/outside-chart`) as Descriptor;
      const check = await verifySignatures(gapClient, inGap(chart), chart.digest, parsePublicKeys(cosigner.pub, 'cosigner.pub'));
      expect(check.verified, JSON.stringify(check)).to.equal(true);
    } finally {
      await gapClient.close();
    }
  });

  it('a GitRepo inside the gap, its sources mirrored to the imported copy, deploys with the digests unchanged', async () => {
    const access = { authSecretName: REGISTRY_AUTH_SECRET, caBundle: Buffer.from(gap().caPem ?? '').toString('base64') };
    await fleet.upstream.apply(
      gitRepoObject('inside', WS, git(), REPO, {
        paths: ['app', 'chart'],
        pollingInterval: '1s',
        targets: [{ clusterSelector: { matchLabels: { side: 'inside' } } }],
        ociRegistry: ociRegistryFor(gap(), 'gap-bundles'),
        images: {
          sources: [{ registry: src().host, mirror: `${gap().host}/gap`, ...access }],
          relocation: { registryEndpoint: gap().host, imageNamespace: 'gap', ...access },
        },
      }),
      'airgap-x',
    );
    await waitImages('downstream-2', [`${gap().host}/gap/airgap-x/multi@${built.multi?.digest}`, `${gap().host}/gap/airgap-x/single@${built.single?.digest}`]);
  });
});
