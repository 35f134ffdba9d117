import { expect } from 'chai';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stack } from './fixture.js';
import { waitFor } from '../stack/net.js';
import { registryClientFor } from '../stack/registry.js';
import { startFleet, fleetSuiteTeardown, type Fleet } from './support/processes.js';
import { applyCredentials, gitRepoObject, gitRepoReadyAt, ociRegistryFor } from './support/fleetobjects.js';
import { API_VERSION, Label, Reason, type Bundle, type BundleDeployment } from '../lib/api/index.js';
import { KubeClient, type KubeObject } from '../lib/kube/client.js';
import { OCI_INDEX_MEDIA_TYPE, pushBundle } from '../lib/oci/index.js';
import { cosignSign, cosignVerify, generateKeyPair, type CosignKeyPair } from './cosign-cli.js';
import type { Cond } from './support/kube.js';

/**
 * Signed bundles with the real cosign CLI, through the real controller and agent processes:
 * - a GitRepo with `signing` (a key made by `cosign generate-key-pair`, encrypted, its password in the
 *   Secret) and `verify`: the controller signs the version it pushes, the agent verifies and applies it,
 *   and `cosign verify --key` accepts the signature (and refuses it with another key);
 * - a version pushed by hand and signed with `cosign sign --key` (cosign v3: a sigstore bundle attached
 *   as an OCI referrer, through the `sha256-<hex>` referrers tag on this registry) is applied by the agent;
 * - refusals, each keeping the last good version applied: unsigned, signed by an untrusted key, and a
 *   trusted signature of another digest copied to this version's referrers tag.
 */

type Obj<T> = T & KubeObject;
const WS = 'signing-e2e';
const REPO = 'signing-e2e-repo';
const APP_NS = 'signing-e2e-app';
const CLUSTER = { name: 'downstream-1', labels: { signing: 'e2e' } };
const TIMEOUT = 240_000; // a ceiling for a loaded 2-core machine, not a measure

const cmYaml = (name: string, version: string) =>
  `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${name}\n  namespace: ${APP_NS}\ndata:\n  version: "${version}"\n`;
const nsYaml = `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${APP_NS}\n`;

describe('signed bundles: cosign interoperability, agents verify before applying', function () {
  this.timeout(20 * 60_000);
  let fleet: Fleet;
  let work: string;
  let downstream: KubeClient;
  let signer: CosignKeyPair;
  let rotated: CosignKeyPair;
  let untrusted: CosignKeyPair;
  const reg = () => stack().registry('http');

  const cm = (name: string) => downstream.get<KubeObject & { data?: Record<string, string> }>({ apiVersion: 'v1', kind: 'ConfigMap', namespace: APP_NS, name });
  const bdOf = async (bundle: string) =>
    (
      await fleet.upstream.list<Obj<BundleDeployment>>(
        { apiVersion: API_VERSION, kind: 'BundleDeployment' },
        `${Label.Cluster}=${CLUSTER.name},${Label.BundleName}=${bundle},${Label.BundleNamespace}=${WS}`,
      )
    ).items[0];

  before(async function () {
    this.timeout(8 * 60_000);
    work = await mkdtemp(join(tmpdir(), 'signing-e2e-'));
    signer = await generateKeyPair(join(work, 'signer'), 'signer-pass');
    rotated = await generateKeyPair(join(work, 'rotated'), 'rotated-pass');
    untrusted = await generateKeyPair(join(work, 'untrusted'), 'untrusted-pass');
    downstream = await KubeClient.fromKubeConfig(stack().cluster(CLUSTER.name).kubeConfig());
    fleet = await startFleet(stack(), { workspace: WS, clusters: [CLUSTER] });
    await applyCredentials(fleet.upstream, WS, WS, stack().git!, reg());
    const secret = (name: string, stringData: Record<string, string>) =>
      fleet.upstream.apply({ apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace: WS }, stringData }, WS);
    await secret('signing-key', { 'cosign.key': signer.key, 'cosign.password': signer.password });
    // Two trusted keys at once (rotation): the controller's and the one `cosign sign` uses below.
    await secret('trusted-keys', { 'signer.pub': signer.pub, 'rotated.pub': rotated.pub });
  });

  fleetSuiteTeardown(() => fleet, {
    afterStop: async () => {
      await downstream?.close();
      if (work) await rm(work, { recursive: true, force: true });
    },
  });

  it('signs what the controller pushes; the agent verifies and applies it; cosign verify --key accepts it', async () => {
    await stack().git!.createRepo(REPO);
    const commit = await stack().git!.commit(REPO, { 'app/ns.yaml': nsYaml, 'app/cm.yaml': cmYaml('from-git', 'git-1') }, 'a signed bundle');
    await fleet.upstream.apply(
      gitRepoObject(REPO, WS, stack().git!, REPO, {
        paths: ['app'],
        ociRegistry: ociRegistryFor(reg(), 'signing-e2e'),
        signing: { secretRef: { name: 'signing-key' } },
        verify: { provider: 'cosign', secretRef: { name: 'trusted-keys' } },
      }),
      WS,
    );
    await gitRepoReadyAt(fleet, WS, REPO, commit, TIMEOUT);
    expect((await cm('from-git'))?.data?.version).to.equal('git-1');
    const bundle = (await fleet.upstream.list<Obj<Bundle>>({ apiVersion: API_VERSION, kind: 'Bundle', namespace: WS }, `${Label.RepoName}=${REPO}`)).items[0];
    const reference = bundle?.spec.oci?.reference ?? '';
    expect(bundle?.spec.oci?.verify?.publicKeys, 'agents get both trusted keys').to.have.length(2);
    const out = await cosignVerify(signer.pubFile, reference, work);
    expect(out).to.include(bundle?.spec.oci?.digest ?? 'no digest');
    let refused = '';
    await cosignVerify(untrusted.pubFile, reference, work).catch((err: Error) => {
      refused = err.message;
    });
    expect(refused, 'cosign refuses the signature with another key').to.match(/cosign verify failed/);
  });

  /** Pushes a one-ConfigMap bundle version by hand (not through a GitRepo); returns its pinned reference and digest. */
  async function pushVersion(version: string): Promise<{ reference: string; digest: string }> {
    const client = registryClientFor(reg());
    try {
      const files = [
        { path: 'ns.yaml', content: Buffer.from(nsYaml) },
        { path: 'cm.yaml', content: Buffer.from(cmYaml('by-hand', version)) },
      ];
      const pushed = await pushBundle(client, `${reg().host}/signing-e2e/by-hand`, files, { bundleName: 'by-hand', bundleNamespace: WS }, version);
      return { reference: pushed.reference, digest: pushed.digest };
    } finally {
      await client.close();
    }
  }

  /** Points the hand-made Bundle at a version (its own contentsID, so the agent deploys it) that agents must verify. */
  async function deployVersion(v: { reference: string; digest: string }, contents: string): Promise<void> {
    await fleet.upstream.apply(
      {
        apiVersion: API_VERSION,
        kind: 'Bundle',
        metadata: { name: 'by-hand', namespace: WS },
        spec: {
          oci: { reference: v.reference, digest: v.digest, basicHTTP: true, verify: { publicKeys: [signer.pub, rotated.pub] } },
          contentsID: `sha256:signing-e2e-${contents}`,
          targetRestrictions: [{ clusterSelector: { matchLabels: CLUSTER.labels } }],
        },
      },
      WS,
    );
  }

  async function refusedWith(reason: string, digest: string): Promise<void> {
    let last = '';
    await waitFor(
      async () => {
        await fleet.assertAlive();
        const bd = await bdOf('by-hand');
        const conds = (bd?.status?.conditions ?? []) as Cond[];
        last = conds.map((c) => `${c.type}=${c.status} ${c.reason ?? ''}: ${c.message ?? ''}`).join('; ');
        return (bd?.spec.oci?.digest === digest && conds.some((c) => c.type === 'Stalled' && c.status === 'True' && c.reason === reason)) || undefined;
      },
      { what: `BundleDeployment by-hand Stalled with ${reason}`, timeoutMs: TIMEOUT, intervalMs: 500, context: () => `${last}; logs in ${fleet.logDir}` },
    );
    expect((await cm('by-hand'))?.data?.version, `after ${reason}, the last good version stays applied`).to.equal('v1');
  }

  it('applies a version signed with cosign sign --key, and refuses unsigned, untrusted and copied signatures', async () => {
    const v1 = await pushVersion('v1');
    await cosignSign(rotated, v1.reference);
    await deployVersion(v1, 'v1');
    await waitFor(async () => (await cm('by-hand'))?.data?.version === 'v1' || undefined, {
      what: 'the cosign-signed version applied downstream',
      timeoutMs: TIMEOUT,
      context: () => `logs in ${fleet.logDir}`,
    });

    const unsigned = await pushVersion('v2');
    await deployVersion(unsigned, 'v2');
    await refusedWith(Reason.SignatureMissing, unsigned.digest);

    const wrongKey = await pushVersion('v3');
    await cosignSign(untrusted, wrongKey.reference);
    await deployVersion(wrongKey, 'v3');
    await refusedWith(Reason.SignatureUntrusted, wrongKey.digest);

    // A trusted signature of v1 copied to v4: cosign v3 attaches it as a referrer, listed (no referrers
    // API on this registry) in the index tagged sha256-<hex>; v1's index under v4's tag is a valid
    // signature of another digest.
    const copied = await pushVersion('v4');
    const client = registryClientFor(reg());
    try {
      const referrersTag = (digest: string) => digest.replace(':', '-');
      const index = await client.getManifest('signing-e2e/by-hand', referrersTag(v1.digest), { accept: [OCI_INDEX_MEDIA_TYPE] });
      await client.putManifest('signing-e2e/by-hand', referrersTag(copied.digest), index.bytes, OCI_INDEX_MEDIA_TYPE);
    } finally {
      await client.close();
    }
    await deployVersion(copied, 'v4');
    await refusedWith(Reason.SignatureDigestMismatch, copied.digest);
  });
});
