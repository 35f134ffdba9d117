import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stack } from './fixture.js';
import { waitFor } from '../stack/net.js';
import { startFleet, fleetSuiteTeardown, type Fleet } from './support/processes.js';
import { applyCredentials, gitRepoObject, gitRepoReadyAt, ociRegistryFor } from './support/fleetobjects.js';
import { API_VERSION, Label, type Bundle, type BundleDeployment } from '../lib/api/index.js';
import { KubeClient, type KubeObject } from '../lib/kube/client.js';
import { decodeSecretData } from '../lib/kube/secret.js';
import { keyRingEntry, parseBundleKey } from '../lib/oci/index.js';

/**
 * Encrypted bundles through the real controller, agents and registry, with two clusters:
 * - a marker string from a Secret manifest is applied on both clusters and appears nowhere in the
 *   registry's storage folder (while the marker of an unencrypted GitRepo, the control, does);
 * - the bundle key is copied into the targeted cluster namespaces only;
 * - rotation: a new key re-encrypts (the unchanged Secret file gets a new layer digest), both clusters
 *   apply the version under the new key, and the old key is dropped from their copies once both have.
 */

type Obj<T> = T & KubeObject;
const WS = 'encryption-e2e';
const REPO = 'encryption-e2e-repo';
const PLAIN_REPO = 'encryption-e2e-plain';
const APP_NS = 'encryption-e2e-app';
// The control GitRepo has a namespace of its own: two bundles that both own one object take it from each
// other on every apply, and neither is ever Ready (that flapping failed this suite once).
const PLAIN_NS = 'encryption-e2e-plain';
const CLUSTERS = [
  { name: 'downstream-1', labels: { enc: 'one' } },
  { name: 'downstream-2', labels: { enc: 'two' } },
];
const TIMEOUT = 240_000; // a ceiling for a loaded 2-core machine, not a measure

const secretYaml = (name: string, marker: string, namespace = APP_NS) =>
  `apiVersion: v1\nkind: Secret\nmetadata:\n  name: ${name}\n  namespace: ${namespace}\nstringData:\n  token: ${marker}\n`;
const cmYaml = (value: string) => `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: enc-cm\n  namespace: ${APP_NS}\ndata:\n  value: "${value}"\n`;
const nsYaml = (name = APP_NS) => `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${name}\n`;

/** Whether any file under `dir` contains `needle`. */
async function foundOnDisk(dir: string, needle: Buffer): Promise<boolean> {
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    if ((await readFile(join(entry.parentPath, entry.name))).includes(needle)) return true;
  }
  return false;
}

describe('encrypted bundles: ciphertext in the registry, keys only where targeted, rotation', function () {
  this.timeout(20 * 60_000);
  let fleet: Fleet;
  const downstream: Record<string, KubeClient> = {};
  const marker = `MARKER-${randomBytes(12).toString('hex')}`;
  const plainMarker = `PLAIN-${randomBytes(12).toString('hex')}`;
  const reg = () => stack().registry('http');
  const git = () => stack().git!;

  const secretDown = async (cluster: string, name: string) =>
    decodeSecretData(
      (await downstream[cluster]!.get<KubeObject & { data?: Record<string, string> }>({ apiVersion: 'v1', kind: 'Secret', namespace: APP_NS, name }))?.data,
    );
  const bds = async () =>
    (
      await fleet.upstream.list<Obj<BundleDeployment>>(
        { apiVersion: API_VERSION, kind: 'BundleDeployment' },
        `${Label.RepoName}=${REPO},${Label.BundleNamespace}=${WS}`,
      )
    ).items;
  const keyCopies = async () =>
    (await fleet.upstream.list<KubeObject & { data?: Record<string, string> }>({ apiVersion: 'v1', kind: 'Secret' }, `${Label.Managed}`)).items.filter(
      (s) => s.metadata.name.endsWith('-keys') && s.metadata.name.startsWith('encryption-e2e-repo'),
    );
  const setKey = (value: string) =>
    fleet.upstream.apply({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'bundle-key', namespace: WS }, stringData: { key: value } }, WS);

  before(async function () {
    this.timeout(8 * 60_000);
    for (const c of CLUSTERS) downstream[c.name] = await KubeClient.fromKubeConfig(stack().cluster(c.name).kubeConfig());
    fleet = await startFleet(stack(), { workspace: WS, clusters: CLUSTERS });
    await applyCredentials(fleet.upstream, WS, WS, git(), reg());
  });

  fleetSuiteTeardown(() => fleet, {
    afterStop: async () => {
      for (const c of Object.values(downstream)) await c.close();
    },
  });

  it('applies the Secret on both clusters while the registry stores no byte of its marker', async () => {
    await setKey(randomBytes(32).toString('base64'));
    await git().createRepo(REPO);
    const commit = await git().commit(
      REPO,
      { 'app/ns.yaml': nsYaml(), 'app/secret.yaml': secretYaml('enc-secret', marker), 'app/cm.yaml': cmYaml('1') },
      'encrypted',
    );
    await fleet.upstream.apply(
      gitRepoObject(REPO, WS, git(), REPO, {
        paths: ['app'],
        ociRegistry: ociRegistryFor(reg(), 'encryption-e2e'),
        encryption: { secretRef: { name: 'bundle-key' } },
      }),
      WS,
    );
    // The control: the same kind of file from a GitRepo without encryption is on the registry's disk as is.
    await git().createRepo(PLAIN_REPO);
    const plainCommit = await git().commit(
      PLAIN_REPO,
      {
        'plain/ns.yaml': nsYaml(PLAIN_NS),
        'plain/secret.yaml': secretYaml('plain-secret', plainMarker, PLAIN_NS),
      },
      'plain',
    );
    await fleet.upstream.apply(
      gitRepoObject(PLAIN_REPO, WS, git(), PLAIN_REPO, { paths: ['plain'], ociRegistry: ociRegistryFor(reg(), 'encryption-e2e-plain') }),
      WS,
    );
    await gitRepoReadyAt(fleet, WS, REPO, commit, TIMEOUT);
    await gitRepoReadyAt(fleet, WS, PLAIN_REPO, plainCommit, TIMEOUT);
    for (const c of CLUSTERS) expect((await secretDown(c.name, 'enc-secret')).token, c.name).to.equal(marker);
    expect(await foundOnDisk(reg().storageDir, Buffer.from(plainMarker)), 'the control marker is on disk').to.equal(true);
    expect(await foundOnDisk(reg().storageDir, Buffer.from(marker)), 'the encrypted marker is nowhere on disk').to.equal(false);
  });

  it('copies the key into the namespaces of the targeted clusters only', async () => {
    const copies = await keyCopies();
    const namespaces = (await bds()).map((bd) => bd.metadata.namespace).sort();
    expect(namespaces).to.have.length(2);
    expect(copies.map((s) => s.metadata.namespace).sort()).to.deep.equal(namespaces);
    const plain = (await fleet.upstream.list<Obj<Bundle>>({ apiVersion: API_VERSION, kind: 'Bundle', namespace: WS }, `${Label.RepoName}=${PLAIN_REPO}`)).items;
    expect(plain[0]?.spec.oci?.decryptionSecretName, 'no key for the unencrypted GitRepo').to.equal(undefined);
  });

  it('rotates: re-encrypts, both clusters apply the version under the new key, and the old key is then dropped', async () => {
    const before = (await bds())[0]?.spec.oci;
    const newValue = randomBytes(32).toString('base64');
    const newID = parseBundleKey(newValue, 'test').id;
    expect(newID).to.not.equal(before?.encryptionKeyID);
    await setKey(newValue);
    const commit = await git().commit(REPO, { 'app/cm.yaml': cmYaml('2') }, 'after rotation');
    await gitRepoReadyAt(fleet, WS, REPO, commit, TIMEOUT);
    let last = '';
    await waitFor(
      async () => {
        const all = await bds();
        const copies = await keyCopies();
        const rings = copies.map((s) =>
          Object.keys(s.data ?? {})
            .sort()
            .join(','),
        );
        last = `BundleDeployments at ${all.map((b) => b.spec.oci?.encryptionKeyID).join(',')}; rings ${rings.join(' | ')}`;
        const done =
          all.length === 2 &&
          all.every((b) => b.spec.oci?.encryptionKeyID === newID && b.status?.observedGeneration === b.metadata.generation) &&
          copies.length === 2 &&
          rings.every((r) => r === keyRingEntry(newID));
        return done || undefined;
      },
      { what: 'both clusters under the new key and the old key dropped', timeoutMs: TIMEOUT, intervalMs: 1000, context: () => last },
    );
    for (const c of CLUSTERS) {
      expect((await secretDown(c.name, 'enc-secret')).token, c.name).to.equal(marker);
      const live = await downstream[c.name]!.get<KubeObject & { data?: Record<string, string> }>({
        apiVersion: 'v1',
        kind: 'ConfigMap',
        namespace: APP_NS,
        name: 'enc-cm',
      });
      expect(live?.data?.value, c.name).to.equal('2');
    }
    expect((await bds())[0]?.spec.oci?.digest).to.not.equal(before?.digest);
    expect(await foundOnDisk(reg().storageDir, Buffer.from(marker)), 'still nowhere on disk after rotation').to.equal(false);
  });
});
