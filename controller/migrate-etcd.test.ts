import { expect } from 'chai';
import type { BundleDeploymentSpec, BundleVersionEntry, GitRepo } from '../lib/api/index.js';
import { filesToResources } from '../lib/bundle/index.js';
import type { KubeObject } from '../lib/kube/client.js';
import { buildArtifact, parseBundleKey } from '../lib/oci/index.js';
import { contentSecret } from './content-objects.js';
import { etcdVersions, moveEtcdVersions, pushEtcdVersions, type EtcdVersion } from './migrate-etcd.js';
import { rehomeSpec } from './migrate-versions.js';
import { refuseEncryptedInEtcd } from './migrate.js';
import { FakeKube } from './testing.js';
import type { BundleFile } from '../lib/bundle/index.js';

/**
 * etcd to a registry moves every version etcd holds (controller/migrate-etcd.ts), not only the current one;
 * an encrypted GitRepo never moves to etcd (controller/migrate.ts). Case tables on the fake API; the pushes
 * to a real registry run in e2e/migration.e2e.ts.
 */

const c = (x: string) => x.repeat(64);
const d = (x: string) => `sha256:${x.repeat(64)}`;
const file = (text: string): BundleFile[] => [{ path: 'cm.yaml', content: Buffer.from(text) }];
const entry = (version: number, x: string, commit = `${x}`.repeat(40)): BundleVersionEntry => ({
  version,
  digest: d(x),
  contentsID: c(x),
  commit,
  commitTime: `2026-01-0${version}T00:00:00Z`,
});
const REPO = {
  apiVersion: 'flotilla.dev/v1alpha1',
  kind: 'GitRepo',
  metadata: { name: 'apps', namespace: 'ws' },
  spec: { repo: 'https://git.example/apps.git' },
} as GitRepo & KubeObject;

/** An etcd-mode Bundle with history v1 (content Secret only), v2 (a rolled-back cluster holds it inline), v3 (its current contents). */
const bundle = {
  apiVersion: 'flotilla.dev/v1alpha1',
  kind: 'Bundle',
  metadata: { name: 'apps-web', namespace: 'ws' },
  spec: { contentsID: c('3'), resources: filesToResources(file('three')), rollback: { version: 2, digest: d('2') } },
  status: { history: [entry(2, '2'), entry(1, '1'), entry(3, '3')] },
};
const deployments = [
  { spec: { deploymentID: `s-${c('2')}:opts`, resources: filesToResources(file('two')) } },
  { spec: { deploymentID: `s-${c('3')}:opts`, resources: filesToResources(file('three')) } },
  // A staged rollout's cluster still on contents the history does not list.
  { spec: { deploymentID: `s-${c('8')}:opts`, resources: filesToResources(file('eight')) } },
];
const current = { contentsID: c('4'), files: file('four') };

describe('moving the versions etcd holds into a registry', () => {
  it('lists every history version with its files where etcd holds them inline, then the contents only BundleDeployments hold', () => {
    const list = etcdVersions(bundle, deployments, current);
    expect(list.map((v) => [v.version, v.contentsID, v.files?.[0]?.content.toString()])).to.deep.equal([
      [1, c('1'), undefined],
      [2, c('2'), 'two'],
      [3, c('3'), 'three'],
      [4, c('8'), 'eight'],
    ]);
  });

  it('reads the rest from content Secrets, drops what is nowhere, and returns the history with the digests pushed', async () => {
    const kube = new FakeKube();
    await kube.apply(contentSecret('ws', 'apps', 'apps-web', c('1'), filesToResources(file('one'))), 'test');
    const gone = { ...bundle, status: { history: [entry(1, '1'), entry(2, '2'), entry(3, '3'), entry(5, '5')] } };
    const asked: (EtcdVersion & { files: BundleFile[] })[] = [];
    const push = async (_name: string, versions: readonly (EtcdVersion & { files: BundleFile[] })[]) => {
      asked.push(...versions);
      return versions.map((v) => ({
        version: v.version,
        contentsID: v.contentsID,
        digest: d(String(v.version)),
        pushed: true,
        files: 1,
        size: 3,
        ...(v.entry ? { entry: v.entry } : {}),
      }));
    };
    const moved = await moveEtcdVersions(push, kube, 'apps-web', gone, deployments, current);
    expect(asked.map((v) => [v.version, v.files[0]?.content.toString()])).to.deep.equal([
      [1, 'one'],
      [2, 'two'],
      [3, 'three'],
      [6, 'eight'],
    ]);
    expect(moved.moved).to.equal(4);
    expect(moved.history.map((e) => [e.version, e.digest, e.contentsID, e.commit])).to.deep.equal([
      [1, d('1'), c('1'), '1'.repeat(40)],
      [2, d('2'), c('2'), '2'.repeat(40)],
      [3, d('3'), c('3'), '3'.repeat(40)],
      [6, d('6'), c('8'), undefined],
    ]);
    // Retention keeps what clusters run: v2, v3 and the staged version, not v1.
    expect(moved.protect).to.deep.equal([d('2'), d('3'), d('6')]);
  });

  it('pushes each version with the metadata it had, so a plain or encrypted version gets back the digest it had in the registry', async () => {
    const key = parseBundleKey(Buffer.alloc(32, 7).toString('base64'), 'test key');
    for (const chain of [{}, { encryption: { key, secretName: 'bundle-key' } }]) {
      const original = await buildArtifact(file('two'), {
        bundleName: 'apps-web',
        bundleNamespace: 'ws',
        source: REPO.spec.repo,
        revision: '2'.repeat(40),
        commitTime: '2026-01-02T00:00:00Z',
        contentsID: c('2'),
        ...('encryption' in chain ? { encryptWith: key } : {}),
      });
      const tags: string[] = [];
      const session = {
        pushAt: async (_r: unknown, files: readonly BundleFile[], meta: Parameters<typeof buildArtifact>[1], tag: string) => {
          tags.push(tag);
          return { digest: (await buildArtifact(files, meta)).digest, pushed: true };
        },
      };
      const registry = { reference: 'one.example:5000/a' };
      const [pushed] = await pushEtcdVersions(session, registry, REPO, chain, 'apps-web', [
        { version: 2, contentsID: c('2'), entry: entry(2, '2'), files: file('two') },
      ]);
      expect(pushed?.digest).to.equal(original.digest);
      expect(tags).to.deep.equal(['v2']);
    }
  });

  it('moves a BundleDeployment holding its version inline to that version in the registry, deployment ID unchanged', () => {
    const desired: BundleDeploymentSpec = {
      deploymentID: `s-${c('4')}:opts`,
      oci: { reference: `one.example:5000/a/ws-apps-web@${d('9')}`, digest: d('9'), basicHTTP: true },
    };
    const staged = deployments[2]?.spec as BundleDeploymentSpec;
    const history = [{ version: 6, digest: d('6'), contentsID: c('8') }];
    expect(rehomeSpec(staged, desired, new Map(), history)).to.deep.equal({
      deploymentID: `s-${c('8')}:opts`,
      oci: { reference: `one.example:5000/a/ws-apps-web@${d('6')}`, digest: d('6'), basicHTTP: true },
    });
    // Contents the history does not list stay inline (cleanup waits for them).
    expect(rehomeSpec(staged, desired, new Map(), [])).to.equal(staged);
    // etcd to etcd: nothing to do.
    expect(rehomeSpec(staged, { deploymentID: 'x', resources: [] }, new Map(), history)).to.equal(staged);
  });
});

describe('an encrypted GitRepo and etcd storage', () => {
  const encrypted = { ...REPO, spec: { ...REPO.spec, encryption: { secretRef: { name: 'bundle-key' } } } };
  it('is refused, naming the GitRepo, why, where the bundles keep running and what to do', () => {
    const moving = { ...encrypted, status: { storage: { mode: 'oci' as const, source: 'ocistorage' as const, reference: 'one.example:5000/a' } } };
    expect(() => refuseEncryptedInEtcd(moving, { mode: 'etcd', source: 'default' }))
      .to.throw(/GitRepo ws\/apps: spec.encryption is set but its storage resolves to etcd/)
      .with.property('reason', 'EncryptionNeedsRegistry');
    expect(() => refuseEncryptedInEtcd(moving, { mode: 'etcd', source: 'default' })).to.throw(
      /plaintext; nothing was moved and the bundles keep running from one.example:5000\/a\. Configure a registry again, or remove spec.encryption/,
    );
    expect(() => refuseEncryptedInEtcd(encrypted, { mode: 'etcd', source: 'default' })).to.throw(/nothing was stored/);
  });
  it('is accepted in a registry, and a GitRepo without encryption is accepted in etcd', () => {
    expect(() => refuseEncryptedInEtcd(encrypted, { mode: 'oci', source: 'ocistorage', reference: 'one.example:5000/a' })).to.not.throw();
    expect(() => refuseEncryptedInEtcd(REPO, { mode: 'etcd', source: 'default' })).to.not.throw();
  });
});
