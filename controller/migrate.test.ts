import { expect } from 'chai';
import { API_VERSION, Finalizer, type Bundle, type GitRepo } from '../lib/api/index.js';
import type { KubeObject } from '../lib/kube/client.js';
import { encodeSecretData } from '../lib/kube/secret.js';
import { TransientError } from '../lib/errors.js';
import { dropOldStorageRecord, readOldStorage, recordOldStorage } from './cleanup.js';
import { gitRepoReconciler } from './gitrepo.js';
import { createBundleStore } from './store.js';
import { FakeGit, FakeRegistry, fakeContext } from './testing.js';

/**
 * Storage migration in the GitRepo reconciler (controller/migrate.ts) on the fakes of controller/testing.ts:
 * a storage Secret that appears, changes or goes moves the bundles with the same contents IDs (so the
 * BundleDeployments keep their deployment IDs and agents re-apply nothing); a refused push leaves the
 * old storage in use and the migration resumes.
 */

type GitRepoObject = GitRepo & KubeObject;
type BundleObject = Bundle & KubeObject;

const URL = 'https://git.example/apps.git';
const SHA = 'a'.repeat(40);
const cm = (name: string) => `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${name}\n`;

function world() {
  const f = fakeContext(new Date('2026-01-01T00:00:00Z'));
  const git = new FakeGit();
  const registry = new FakeRegistry();
  git.push(URL, SHA, { 'web/cm.yaml': cm('web'), 'db/cm.yaml': cm('db'), 'api/cm.yaml': cm('api') });
  f.kube.seed<GitRepoObject>({
    apiVersion: API_VERSION,
    kind: 'GitRepo',
    metadata: { name: 'apps', namespace: 'ws', generation: 1, finalizers: [Finalizer.GitRepo] },
    spec: { repo: URL, paths: ['web', 'db', 'api'] },
  });
  const store = createBundleStore({ kube: f.kube, registries: registry, retain: 5, maxInlineBytes: 1_000_000 });
  let minute = 0;
  const reconcile = async () => {
    f.setNow(new Date(Date.parse('2026-01-01T00:00:00Z') + ++minute * 60_000));
    return await gitRepoReconciler(f.ctx, { git, store })('ws/apps');
  };
  const storageSecret = (reference: string) =>
    f.kube.seed({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'ocistorage', namespace: 'ws' },
      type: 'fleet.cattle.io/bundle-oci-storage/v1alpha1',
      data: encodeSecretData({ reference, basicHTTP: 'true' }),
    });
  const bundles = () => ['apps-web', 'apps-db', 'apps-api'].map((n) => f.kube.mustFind<BundleObject>('Bundle', 'ws', n));
  const repo = () => f.kube.mustFind<GitRepoObject>('GitRepo', 'ws', 'apps');
  return { f, registry, reconcile, storageSecret, bundles, repo };
}

describe('storage migration in the GitRepo reconciler', () => {
  it('moves etcd -> registry -> another registry -> etcd when the ocistorage Secret appears, changes and goes, keeping every contents ID', async () => {
    const w = world();
    await w.reconcile();
    const ids = w.bundles().map((b) => b.spec.contentsID);
    expect(w.repo().status?.storage).to.deep.equal({ mode: 'etcd', source: 'default' });

    w.storageSecret('one.example:5000/a');
    await w.reconcile();
    expect(w.bundles().map((b) => b.spec.oci?.reference.split('@')[0])).to.deep.equal(
      ['ws-apps-web', 'ws-apps-db', 'ws-apps-api'].map((r) => `one.example:5000/a/${r}`),
    );
    expect(w.bundles().map((b) => b.spec.resources)).to.deep.equal([undefined, undefined, undefined]);
    expect(w.bundles().map((b) => b.spec.contentsID)).to.deep.equal(ids);
    expect(w.repo().status?.storage).to.deep.include({ mode: 'oci', source: 'ocistorage', reference: 'one.example:5000/a' });
    expect(w.repo().status?.storage?.migration).to.deep.include({ from: 'etcd', to: 'one.example:5000/a', phase: 'Done', bundles: 3, moved: 3 });

    w.storageSecret('two.example:5000/b');
    await w.reconcile();
    expect(w.bundles().every((b) => b.spec.oci?.reference.startsWith('two.example:5000/b/'))).to.equal(true);
    expect(w.bundles().map((b) => b.spec.contentsID)).to.deep.equal(ids);
    expect(w.repo().status?.storage?.migration).to.deep.include({ from: 'one.example:5000/a', to: 'two.example:5000/b', phase: 'Done' });

    await w.f.kube.delete({ apiVersion: 'v1', kind: 'Secret', namespace: 'ws', name: 'ocistorage' });
    await w.reconcile();
    expect(w.bundles().map((b) => [b.spec.oci, b.spec.resources?.length])).to.deep.equal([
      [undefined, 1],
      [undefined, 1],
      [undefined, 1],
    ]);
    expect(w.bundles().map((b) => b.spec.contentsID)).to.deep.equal(ids);
    expect(w.repo().status?.storage).to.deep.include({ mode: 'etcd' });
    expect(w.repo().status?.storage?.migration).to.deep.include({ from: 'two.example:5000/b', to: 'etcd', phase: 'Done' });
    expect(w.f.events.events.filter((e) => e.reason === 'StorageMigrated')).to.have.length(3);
  });

  it('keeps the old storage in use when the target refuses pushes, says so, and resumes from the same start', async () => {
    const w = world();
    await w.reconcile();
    const before = w.bundles().map((b) => b.spec);
    w.storageSecret('one.example:5000/a');
    w.registry.failure = new TransientError('RegistryRefused', 'registry one.example:5000 refused the push (403)');
    await w.reconcile().catch(() => undefined);
    expect(w.bundles().map((b) => b.spec)).to.deep.equal(before);
    const failed = w.repo().status?.storage;
    expect(failed).to.deep.include({ mode: 'etcd' });
    expect(failed?.migration).to.deep.include({ from: 'etcd', to: 'one.example:5000/a', phase: 'Failed' });
    expect(failed?.migration?.message).to.include('refused the push');

    w.registry.failure = undefined;
    await w.reconcile();
    const done = w.repo().status?.storage;
    expect(done).to.deep.include({ mode: 'oci', reference: 'one.example:5000/a' });
    expect(done?.migration).to.deep.include({ phase: 'Done', moved: 3, startedAt: failed?.migration?.startedAt });
  });

  it('stalls, changing nothing, when the Secret it moves to is of the wrong type', async () => {
    const w = world();
    await w.reconcile();
    const before = w.bundles().map((b) => b.spec);
    w.f.kube.seed({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'ocistorage', namespace: 'ws' },
      type: 'Opaque',
      data: encodeSecretData({ reference: 'x.example/a' }),
    });
    await w.reconcile().catch(() => undefined);
    expect(w.bundles().map((b) => b.spec)).to.deep.equal(before);
    expect(w.f.kube.condition('GitRepo', 'ws', 'apps', 'Stalled')).to.equal('True/StorageSecretInvalid');
  });

  it('refuses to move an encrypted GitRepo to etcd: Bundles stay in the registry, the GitRepo says why', async () => {
    const w = world();
    const repo = w.repo();
    w.f.kube.seed({ ...repo, spec: { ...repo.spec, encryption: { secretRef: { name: 'bundle-key' } } } });
    w.f.kube.seed({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'bundle-key', namespace: 'ws' },
      data: encodeSecretData({ key: Buffer.alloc(32, 1).toString('base64') }),
    });
    w.storageSecret('one.example:5000/a');
    await w.reconcile();
    const before = w.bundles().map((b) => b.spec);
    expect(before.every((s) => s.oci?.reference.startsWith('one.example:5000/a/') && !s.resources)).to.equal(true);

    const secretWrites = w.f.kube.writesOf('apply', 'Secret').length;
    await w.f.kube.delete({ apiVersion: 'v1', kind: 'Secret', namespace: 'ws', name: 'ocistorage' });
    await w.reconcile().catch(() => undefined);
    expect(w.bundles().map((b) => b.spec)).to.deep.equal(before);
    expect(w.f.kube.condition('GitRepo', 'ws', 'apps', 'Stalled')).to.equal('True/EncryptionNeedsRegistry');
    expect(w.repo().status?.storage).to.deep.include({ mode: 'oci', reference: 'one.example:5000/a' });
    // No content Secret (plaintext of older versions) was written.
    expect(w.f.kube.writesOf('apply', 'Secret').length).to.equal(secretWrites);
  });

  it("deletes the old registry's bundle repositories once nothing reads them, and records it on status.storage", async () => {
    const w = world();
    w.storageSecret('one.example:5000/a');
    await w.reconcile();
    w.storageSecret('two.example:5000/b');
    await w.reconcile();
    const cleanup = w.repo().status?.storage?.migration?.cleanup;
    expect(cleanup).to.deep.include({ policy: 'delete', phase: 'Deleted' });
    expect([...w.registry.deletes].sort()).to.deep.equal(['one.example:5000/a/ws-apps-api', 'one.example:5000/a/ws-apps-db', 'one.example:5000/a/ws-apps-web']);
    expect(w.registry.repositories.has('two.example:5000/b/ws-apps-web')).to.equal(true);
    // The record of the old registry goes with the cleanup.
    expect(await w.f.kube.get({ apiVersion: 'v1', kind: 'Secret', namespace: 'ws', name: 'apps-old-storage' })).to.equal(undefined);
  });

  it('shows each cleanup as done when it finishes in the reconcile that moved the bundles, and never runs it again', async () => {
    const w = world();
    await w.reconcile();
    w.storageSecret('one.example:5000/a');
    await w.reconcile();
    w.storageSecret('two.example:5000/b');
    await w.reconcile();
    expect(w.repo().status?.storage?.migration?.cleanup).to.deep.equal({ policy: 'delete', phase: 'Deleted', deleted: 3 });
    // registry two -> etcd also deletes 3 repositories: the final status equals the one the reconcile started
    // from in its cleanup, and differs from what the migration's own progress writes left on the server.
    await w.f.kube.delete({ apiVersion: 'v1', kind: 'Secret', namespace: 'ws', name: 'ocistorage' });
    await w.reconcile();
    const done = w.repo().status?.storage;
    expect(done?.migration).to.deep.include({ from: 'two.example:5000/b', to: 'etcd', phase: 'Done' });
    expect(done?.migration?.cleanup).to.deep.equal({ policy: 'delete', phase: 'Deleted', deleted: 3 });
    await w.reconcile();
    expect(w.repo().status?.storage).to.deep.equal(done);
  });

  it("writes a new migration's progress without the fields of the one before it", async () => {
    const w = world();
    await w.reconcile();
    w.storageSecret('one.example:5000/a');
    await w.reconcile();
    expect(w.repo().status?.storage?.migration).to.have.property('cleanup');
    // The next move fails at its first push: what the GitRepo shows is the progress write of the failing move alone.
    w.registry.failure = new TransientError('RegistryUnreachable', 'registry two.example:5000 is down');
    w.storageSecret('two.example:5000/b');
    const from = w.f.kube.writes.length;
    await w.reconcile().catch(() => undefined);
    // The progress writes: every status write of the reconcile but its last (the skeleton's final write).
    const progress = w.f.kube.writes
      .slice(from)
      .filter((c) => c.op === 'mergePatchStatus' && c.kind === 'GitRepo')
      .slice(0, -1);
    expect(progress.length).to.be.greaterThan(0);
    // The first one (the start of the move) removes the cleanup of the move before; none brings it back.
    const migrations = progress.map((c) => (c.body as { status?: { storage?: { migration?: Record<string, unknown> } } }).status?.storage?.migration);
    expect(migrations[0]).to.have.property('cleanup', null);
    expect(migrations.slice(1).every((m) => m?.cleanup === undefined)).to.equal(true);
    const m = w.repo().status?.storage?.migration;
    expect(m).to.deep.include({ from: 'one.example:5000/a', to: 'two.example:5000/b', phase: 'Failed' });
    expect(m).to.not.have.property('cleanup');
  });

  it('keeps the record of the old registry until the status that finishes the cleanup is written', async () => {
    const w = world();
    await w.reconcile();
    w.storageSecret('one.example:5000/a');
    await w.reconcile();
    w.storageSecret('two.example:5000/b');
    // The GitRepo's status writes fail from the first repository deleted on: the clean-up's outcome is lost.
    w.registry.onDelete = () => w.f.kube.failures.set('mergePatchStatus GitRepo', new TransientError('ApiServerError', 'the API server is restarting'));
    await w.reconcile().catch(() => undefined);
    expect(w.registry.deletes).to.have.length(3);
    expect(w.repo().status?.storage?.migration?.cleanup?.phase).to.equal('Pending');
    expect((await readOldStorage(w.f.kube, 'ws', 'apps', 'one.example:5000'))?.repositories, 'the record is still there').to.have.length(3);
    // The API server is back: the next reconcile finds the record, repeats the clean-up (nothing left to delete) and says so.
    w.registry.onDelete = undefined;
    w.f.kube.failures.delete('mergePatchStatus GitRepo');
    await w.reconcile();
    expect(w.repo().status?.storage?.migration?.cleanup).to.deep.include({ policy: 'delete', phase: 'Deleted' });
    expect(await w.f.kube.get({ apiVersion: 'v1', kind: 'Secret', namespace: 'ws', name: 'apps-old-storage' })).to.equal(undefined);
  });

  it('drops the record only for the status write that finishes a cleanup', async () => {
    const w = world();
    const repo = w.repo();
    const record = () => w.f.kube.get({ apiVersion: 'v1', kind: 'Secret', namespace: 'ws', name: 'apps-old-storage' });
    const seed = () =>
      w.f.kube.seed({ apiVersion: 'v1', kind: 'Secret', type: 'flotilla.dev/old-storage', metadata: { name: 'apps-old-storage', namespace: 'ws' }, data: {} });
    const storage = (from: string, phase: 'Pending' | 'Deleted' | 'Kept', startedAt = '2026-01-01T00:00:00Z') => ({
      mode: 'oci' as const,
      source: 'ocistorage' as const,
      reference: 'two.example:5000/b',
      migration: { from, to: 'two.example:5000/b', phase: 'Done' as const, bundles: 3, moved: 3, startedAt, cleanup: { policy: 'delete' as const, phase } },
    });
    seed();
    expect(await dropOldStorageRecord(w.f.kube, repo, storage('one.example:5000/a', 'Pending'), storage('one.example:5000/a', 'Pending'))).to.equal(false);
    expect(await dropOldStorageRecord(w.f.kube, repo, storage('one.example:5000/a', 'Deleted'), storage('one.example:5000/a', 'Deleted'))).to.equal(false);
    expect(await record(), 'kept while nothing finished').to.not.equal(undefined);
    expect(await dropOldStorageRecord(w.f.kube, repo, storage('one.example:5000/a', 'Pending'), storage('one.example:5000/a', 'Deleted'))).to.equal(true);
    expect(await record()).to.equal(undefined);
    seed();
    // A later migration that finished in one reconcile, after an earlier one had finished too.
    const later = storage('one.example:5000/a', 'Kept', '2026-02-01T00:00:00Z');
    expect(await dropOldStorageRecord(w.f.kube, repo, storage('one.example:5000/a', 'Deleted'), later)).to.equal(true);
    expect(await record()).to.equal(undefined);
  });

  it('keeps the old registry with the annotation flotilla.dev/old-storage: keep', async () => {
    const w = world();
    const repo = w.repo();
    w.f.kube.seed({ ...repo, metadata: { ...repo.metadata, annotations: { 'flotilla.dev/old-storage': 'keep' } } });
    w.storageSecret('one.example:5000/a');
    await w.reconcile();
    w.storageSecret('two.example:5000/b');
    await w.reconcile();
    expect(w.repo().status?.storage?.migration?.cleanup).to.deep.include({ policy: 'keep', phase: 'Kept' });
    expect(w.registry.deletes).to.deep.equal([]);
    expect(w.registry.repositories.has('one.example:5000/a/ws-apps-web')).to.equal(true);
  });

  it('keeps the record of the registry it moves away from when a reconcile finds the Bundles already switched', async () => {
    const w = world();
    const repo = w.repo();
    const digest = `sha256:${'1'.repeat(64)}`;
    const on = (reference: string) =>
      ['web', 'db'].map((n) => ({
        apiVersion: API_VERSION,
        kind: 'Bundle',
        metadata: { name: `apps-${n}`, namespace: 'ws' },
        spec: { oci: { reference: `${reference}/ws-apps-${n}@${digest}`, digest } },
      }));
    await recordOldStorage(w.f.kube, 'test', repo, 'one.example:5000/a', on('one.example:5000/a'), []);
    expect((await readOldStorage(w.f.kube, 'ws', 'apps', 'one.example:5000'))?.repositories).to.deep.equal(['a/ws-apps-web', 'a/ws-apps-db']);
    // A later reconcile that read the status from before the switch: the Bundles are in registry two already.
    await recordOldStorage(w.f.kube, 'test', repo, 'one.example:5000/a', on('two.example:5000/b'), []);
    const record = await readOldStorage(w.f.kube, 'ws', 'apps');
    expect(record?.registry.reference, 'still the registry to clean up').to.equal('one.example:5000');
    expect(record?.repositories).to.deep.equal(['a/ws-apps-web', 'a/ws-apps-db']);
    // Leaving etcd needs no record.
    await w.f.kube.delete({ apiVersion: 'v1', kind: 'Secret', namespace: 'ws', name: 'apps-old-storage' });
    await recordOldStorage(w.f.kube, 'test', repo, 'etcd', on('two.example:5000/b'), []);
    expect(await readOldStorage(w.f.kube, 'ws', 'apps')).to.equal(undefined);
  });
});
