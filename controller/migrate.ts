import type { GitRepo, GitRepoStatus } from '../lib/api/index.js';
import type { KubeClient, KubeObject } from '../lib/kube/client.js';
import { formatTime } from '../lib/util/time.js';
import { mergePatchForKeys } from '../lib/util/json.js';
import { StallingError } from '../lib/errors.js';
import { Reason } from '../lib/api/index.js';
import type { Bundle, BundleDeployment, BundleVersionEntry } from '../lib/api/index.js';
import { moveEtcdVersions, type CurrentContents } from './migrate-etcd.js';
import type { BundleStore, BundleStoreSession } from './ports.js';
import { neededVersions } from './migrate-versions.js';
import { cleanupPolicy } from './cleanup.js';

/**
 * Storage migration: a GitRepo whose storage changes (etcd -> OCI, OCI -> etcd, one registry -> another,
 * by its spec or by the Secret that configures it) moves its bundles to the new storage with no
 * downstream churn. Why nothing downstream changes: a BundleDeployment's `deploymentID` is derived from
 * the bundle's `contentsID` (a hash of its files) and its options, never from where the files are stored;
 * the agent applies only when the deploymentID changes, so a Bundle that now points at another copy of the
 * same files is re-read (digests verified) but not re-applied, and nothing is pruned.
 *
 * The steps (in the GitRepo reconciler, controller/gitrepo.ts): store every bundle of the current commit in
 * the new storage (Copying), write the Bundles (Switching: the Bundle reconciler then rewrites the
 * BundleDeployments), record the new storage (Done). `status.storage` keeps naming the old storage until
 * the end, so a controller killed half-way sees the move again on its next run and resumes it; pushes of
 * what is already there are skipped (HEAD before push).
 */

type GitRepoObject = GitRepo & KubeObject;

/** The `status.storage` of a GitRepo. */
export type StorageStatus = NonNullable<GitRepoStatus['storage']>;

/** The `status.storage.migration` of a GitRepo. */
export type MigrationStatus = NonNullable<StorageStatus['migration']>;

/** A storage's name in status and messages: "etcd" or the registry reference. */
export function storageLabel(storage: Pick<StorageStatus, 'mode' | 'reference'> | undefined): string {
  return !storage || storage.mode === 'etcd' ? 'etcd' : (storage.reference ?? '');
}

/** Where an open bundle store puts content, as `status.storage` says it (without migration). */
export function storageOf(store: Pick<BundleStoreSession, 'registry' | 'source'>): StorageStatus {
  if (!store.registry) return { mode: 'etcd', source: store.source ?? 'default' };
  return { mode: 'oci', source: store.source ?? 'ociRegistry', reference: store.registry.reference };
}

/**
 * Whether the bundles must move: the GitRepo recorded a storage and the store now resolves to another.
 * A GitRepo that never recorded one (written by an older controller) is taken to be where it is.
 */
export function storageMoved(previous: StorageStatus | undefined, next: StorageStatus): boolean {
  return previous !== undefined && storageLabel(previous) !== storageLabel(next);
}

/**
 * An encrypted GitRepo (`spec.encryption`) is never stored in etcd (docs/storage.md): encryption keeps bundle
 * files from being readable where they are stored, and etcd mode puts them inline, in plaintext, into Bundle
 * objects (and older versions into content Secrets). So a GitRepo with encryption whose storage resolves to
 * etcd (a new one without a registry, or one whose registry configuration went away) stalls with
 * EncryptionNeedsRegistry: nothing is stored or moved, and Bundles already in a registry keep running from it.
 */
export function refuseEncryptedInEtcd(repo: GitRepoObject, next: StorageStatus): void {
  if (next.mode !== 'etcd' || !repo.spec.encryption) return;
  const now = repo.status?.storage;
  const kept = now?.mode === 'oci' ? `nothing was moved and the bundles keep running from ${storageLabel(now)}` : 'nothing was stored';
  throw new StallingError(
    Reason.EncryptionNeedsRegistry,
    `GitRepo ${repo.metadata.namespace ?? 'default'}/${repo.metadata.name}: spec.encryption is set but its storage resolves to etcd ` +
      `(no spec.ociRegistry, spec.ociRegistrySecret or ocistorage Secret), where Bundles would hold the files in plaintext; ${kept}. ` +
      `Configure a registry again, or remove spec.encryption to store the bundles in etcd unencrypted`,
  );
}

/** Where a migration's events go (the reconciler's event recorder). */
export type MigrationEvents = (repo: GitRepoObject, type: 'Normal' | 'Warning', reason: string, message: string) => Promise<void>;

/**
 * Follows the storage of one GitRepo through one reconcile: when it moved, shows the migration's progress
 * on the GitRepo's status while it runs (the reconcile writes the rest at its end); otherwise every call
 * only keeps {@link storage} current.
 */
export class StorageTracker {
  /** The migration under way, if the storage moved. */
  readonly migration: MigrationStatus | undefined;
  private readonly previous: StorageStatus | undefined;
  private readonly next: StorageStatus;
  /** `status.storage` as the server holds it: as read, then as each of this tracker's writes left it. */
  private current: StorageStatus | undefined;

  constructor(
    private readonly kube: Pick<KubeClient, 'mergePatch'>,
    private readonly events: MigrationEvents,
    private readonly repo: GitRepoObject,
    store: Pick<BundleStoreSession, 'registry' | 'source'>,
    bundles: number,
    now: Date,
    /** Told each status the tracker writes (the reconciler's read-your-writes record, lib/kube/ownwrites.ts). */
    private readonly written?: (object: KubeObject) => void,
  ) {
    this.previous = repo.status?.storage;
    this.current = this.previous;
    this.next = storageOf(store);
    refuseEncryptedInEtcd(repo, this.next);
    if (!this.previous || !storageMoved(this.previous, this.next)) return;
    const to = storageLabel(this.next);
    const earlier = this.previous.migration;
    // A migration to the same place that did not finish (controller killed, target refused) resumes: same start time.
    const startedAt = earlier?.to === to && earlier.phase !== 'Done' && earlier.startedAt ? earlier.startedAt : formatTime(now);
    this.migration = { from: storageLabel(this.previous), to, phase: 'Copying', bundles, moved: 0, startedAt };
  }

  /** `status.storage` as it stands: the new storage, or the old one with the migration while it is not done. */
  storage(): StorageStatus {
    if (!this.migration)
      return this.previous?.migration && !storageMoved(this.previous, this.next) ? { ...this.next, migration: this.previous.migration } : this.next;
    if (this.migration.phase === 'Done') return { ...this.next, migration: { ...this.migration } };
    const { migration: _m, ...old } = this.previous ?? this.next;
    return { ...old, migration: { ...this.migration } };
  }

  /** Announces the start of a migration (event and status). */
  async begin(): Promise<void> {
    if (!this.migration) return;
    await this.events(
      this.repo,
      'Normal',
      'StorageMigrating',
      `moving ${this.migration.bundles} bundle(s) from ${this.migration.from} to ${this.migration.to}`,
    );
    await this.report({});
  }

  /** `moved` bundles are in the new storage. */
  async stored(moved: number): Promise<void> {
    if (this.migration) await this.report({ moved });
  }

  /** `count` more older versions are in the new storage. */
  async copied(count: number): Promise<void> {
    if (this.migration && count > 0) await this.report({ versions: (this.migration.versions ?? 0) + count });
  }

  /** Every bundle is in the new storage: the Bundles are being switched. */
  async switching(): Promise<void> {
    if (this.migration) await this.report({ phase: 'Switching' });
  }

  /** The move failed; it resumes on the next reconcile. Nothing downstream changed. */
  async failed(message: string): Promise<void> {
    if (this.migration) await this.report({ phase: 'Failed', message: message.slice(0, 1024) }).catch(() => undefined);
  }

  /** The Bundles point at the new storage. */
  async done(): Promise<void> {
    if (!this.migration) return;
    delete this.migration.message;
    // The old storage is cleaned up per policy once nothing reads it (controller/cleanup.ts).
    this.migration.cleanup = { policy: cleanupPolicy(this.repo), phase: 'Pending' };
    // Written now, whole: the reconcile's final status patch is a diff against the status it started from.
    await this.report({ phase: 'Done' });
    await this.events(this.repo, 'Normal', 'StorageMigrated', `${this.migration.bundles} bundle(s) moved from ${this.migration.from} to ${this.migration.to}`);
  }

  private async report(update: Partial<MigrationStatus>): Promise<void> {
    Object.assign(this.migration ?? {}, update);
    // The whole storage as it stands now: a merge patch against what the server holds, so the fields of an
    // earlier migration (its cleanup, its count of versions) or the last failure's message are removed,
    // not merged into this one.
    const patch = mergePatchForKeys({ storage: this.current }, { storage: this.storage() });
    if (Object.keys(patch).length === 0) return;
    const written = await this.kube.mergePatch<KubeObject & Pick<GitRepo, 'status'>>(
      { apiVersion: this.repo.apiVersion, kind: 'GitRepo', namespace: this.repo.metadata.namespace, name: this.repo.metadata.name },
      { status: patch },
      'status',
    );
    this.current = written.status?.storage;
    // Without it, a reconcile that starts before the watch delivers the last of these writes would read the
    // storage before the switch and take it for a new migration; and the reconcile's final status write,
    // a diff, must start from what this write left.
    this.written?.(written);
  }
}

/**
 * Whether `repo`'s storage resolves elsewhere than its status records (its Secret or the KEP-1755
 * ConfigMap changed): then the current commit is stored again, which is the migration. A storage
 * configuration that became invalid throws here, so the GitRepo says so while everything keeps running.
 */
export async function storageChanged(store: BundleStore, repo: GitRepoObject): Promise<boolean> {
  if (!repo.status?.storage) return false;
  const session = await store.open(repo);
  try {
    return storageMoved(repo.status.storage, storageOf(session));
  } finally {
    await session.close();
  }
}

/** What {@link moveRetainedVersions} did for one bundle. */
export interface MovedVersions {
  /** Versions written to the new storage. */
  moved: number;
  /** etcd to registry: the Bundle's history with the digests the versions have in the registry. */
  history?: BundleVersionEntry[];
  /** etcd to registry: digests BundleDeployments run, which retention must keep. */
  protect?: string[];
}

/**
 * Before a bundle's current commit is stored in the new storage: moves the other versions the controller
 * still needs (history, rollback and BundleDeployment pins; controller/migrate-versions.ts). From a
 * registry: to another registry by digest, to etcd as content Secrets. From etcd to a registry: the
 * versions the Bundle, its BundleDeployments and content Secrets hold, pushed under their `v<N>` tags
 * (controller/migrate-etcd.ts). Nothing when the session cannot (fakes).
 */
export async function moveRetainedVersions(
  session: Pick<BundleStoreSession, 'registry' | 'copyVersions' | 'keepVersions' | 'storeVersions'>,
  kube: Pick<KubeClient, 'get' | 'apply'>,
  bundleName: string,
  previous: (Pick<Bundle, 'spec' | 'status'> & KubeObject) | undefined,
  deployments: readonly Pick<BundleDeployment, 'spec'>[],
  current: CurrentContents,
): Promise<MovedVersions> {
  const from = previous?.spec.oci;
  if (!previous) return { moved: 0 };
  if (!from) {
    const store = session.storeVersions?.bind(session);
    if (!session.registry || !store) return { moved: 0 };
    return await moveEtcdVersions(store, kube, bundleName, previous, deployments, current);
  }
  const versions = neededVersions(previous, deployments);
  if (session.registry) return { moved: session.copyVersions ? await session.copyVersions(bundleName, from, versions) : 0 };
  return { moved: session.keepVersions ? await session.keepVersions(kube, bundleName, from, versions, current.contentsID) : 0 };
}
