import type { Bundle, BundleDeployment, BundleResource, Cluster, ClusterGroup, GitRepo, OCIArtifactRef, OCIRegistry } from '../lib/api/index.js';
import type { BundleFile, LoadedBundle } from '../lib/bundle/index.js';
import type { EtcdVersion, PushedVersion } from './migrate-etcd.js';
import type { KubeClient, KubeObject } from '../lib/kube/client.js';
import type { EventRecorder } from '../lib/kube/events.js';
import type { Informer } from '../lib/kube/informer.js';
import type { ArtifactFile, ArtifactMeta, Credentials, PushVersionResult, Reference, RegistryEvent, SigningKey } from '../lib/oci/index.js';

/**
 * The small ports the GitRepo and Bundle reconcilers reach the outside through. Production wires the real
 * adapters (controller/manager.ts: KubeClient, the informers, CliGitSource, the OCI/etcd store over
 * RegistryClient, the wall clock); unit tests wire the in-memory fakes of controller/testing.ts, so
 * each reconcile runs as a case table in milliseconds. The git port is `GitSource` (controller/git.ts).
 */

/** The time of a reconcile (conditions, polling, events): `() => new Date()` in production. */
export type Clock = () => Date;

/** The Kubernetes API calls the GitRepo and Bundle reconcilers make. */
export type ReconcilerKube = Pick<KubeClient, 'get' | 'apply' | 'applyStatus' | 'mergePatch' | 'delete'>;

/** The read side of an informer's cache, with its indexes (controller/indexes.ts). */
export type ObjectCache<T extends KubeObject> = Pick<Informer<T>, 'get' | 'list' | 'byIndex'>;

/** The caches the GitRepo and Bundle reconcilers read. */
export interface ReconcilerCaches {
  gitRepos: ObjectCache<GitRepo & KubeObject>;
  bundles: ObjectCache<Bundle & KubeObject>;
  bundleDeployments: ObjectCache<BundleDeployment & KubeObject>;
  clusters: ObjectCache<Cluster & KubeObject>;
  clusterGroups: ObjectCache<ClusterGroup & KubeObject>;
}

/** Where Kubernetes Events go. */
export type EventSink = Pick<EventRecorder, 'emit'>;

/** One connection to an OCI registry, opened for one reconcile and closed after it (RegistryClient in production). */
export interface RegistrySession {
  /**
   * Pushes `files` as a new version of `repository`, or nothing when its newest version has the same content;
   * then keeps `retain` versions and every digest in `protect` (pinned, rolled back to, or running somewhere).
   */
  pushVersion(
    repository: Reference,
    files: readonly ArtifactFile[],
    meta: ArtifactMeta,
    retain: number,
    protect?: Iterable<string>,
  ): Promise<PushVersionResult>;
  /**
   * True when `repository` still holds version `digest` (a HEAD of its manifest): a bundle whose contents did
   * not change keeps its version without a push. Absent in fakes that do not say (every bundle is pushed).
   */
  hasVersion?(repository: Reference, digest: string): Promise<boolean>;
  /** Signs version `digest` of `repository` (cosign format) unless that key's signature is there; true when one was pushed. */
  sign?(repository: Reference, digest: string, key: SigningKey): Promise<boolean>;
  /** Deletes every version of `repository`; returns how many were deleted. */
  deleteAll(repository: Reference): Promise<number>;
  /**
   * Storage migration: copies `versions` by digest from `source` (another registry, read with its own
   * settings) into `repository` of this one; returns how many were copied. Absent in fakes that cannot.
   */
  copyFrom?(
    source: { registry: StorageRegistry; credentials?: Credentials; repository: string },
    repository: string,
    versions: readonly { version?: number; digest: string }[],
    owner?: string,
  ): Promise<number>;
  /**
   * Storage migration from etcd: pushes `files` + `meta` under `tag` unless the tag holds that digest already;
   * a tag holding another digest is an ArtifactTagConflict naming `owner` (controller/migrate-tags.ts).
   */
  pushAt?(repository: Reference, files: readonly ArtifactFile[], meta: ArtifactMeta, tag: string, owner: string): Promise<{ digest: string; pushed: boolean }>;
  /** The files of version `digest` of `repository`, every blob verified (a migration to etcd reads old versions). */
  pullFiles?(repository: string, digest: string): Promise<{ path: string; content: Buffer }[]>;
  close(): Promise<void>;
}

/** OCI settings with the reference known: given in `ociRegistry`, read from a storage Secret, or discovered (controller/storageconfig.ts). */
export type StorageRegistry = OCIRegistry & { reference: string };

/** How the controller reaches the OCI registry a GitRepo stores its bundles in. */
export interface RegistryAccess {
  /** A session with the registry of `registry.reference`; `onEvent` sees every request, upload and skip (metrics). */
  open(registry: StorageRegistry, credentials: Credentials | undefined, onEvent?: (event: RegistryEvent) => void): RegistrySession;
}

/** Content to put in a Bundle spec: exactly one of `oci` or `resources`. */
export interface StoredContent {
  oci?: OCIArtifactRef;
  resources?: BundleResource[];
  /** What the push did (OCI mode), for metrics and logs. */
  push?: {
    pushedBlobs: number;
    skippedBlobs: number;
    bytesUploaded: number;
    unchanged: boolean;
    tag: string | undefined;
    /** The version's sequence (v<sequence>). */
    sequence?: number;
    /** Digests of the versions retention deleted after the push. */
    deleted?: string[];
    /** The Bundle's own version was kept without a push: same contents, still in the registry. */
    reused?: boolean;
  };
}

/** What a store of one bundle knows besides its files. */
export interface StoreRelease {
  /** When the commit was made. */
  commitTime?: string;
  /** Digests retention keeps (pinned, rolled back to, running somewhere). */
  protect?: Iterable<string>;
  /**
   * What the Bundle carries now: when its contents ID is the same and its version is still in the registry
   * with the same settings, that version is kept and nothing is pushed.
   */
  current?: { contentsID?: string; oci?: OCIArtifactRef };
}

/** The bundle store, open for one reconcile of one GitRepo. */
export interface BundleStoreSession {
  /** The registry content goes to (OCI mode), or undefined: inline in the Bundle objects (etcd mode). */
  readonly registry: StorageRegistry | undefined;
  /** What chose the storage (controller/storageconfig.ts); absent in fakes that do not say. */
  readonly source?: 'ociRegistry' | 'ociRegistrySecret' | 'ocistorage' | 'discovery' | 'default';
  /**
   * Stores one bundle of `commit` (dated `commitTime` when known) whose files have contents ID `contentsID`;
   * retention keeps the digests in `protect`. Returns what its Bundle carries.
   */
  store(bundle: LoadedBundle, commit: string, contentsID: string, release?: StoreRelease): Promise<StoredContent>;
  /** Completes a bundle before it is stored: adds its images lock when images are on (controller/images.ts). */
  prepare?(bundle: LoadedBundle): Promise<LoadedBundle>;
  /** Deletes every stored version of bundle `bundleName` (nothing in etcd mode); returns how many. */
  deleteArtifacts(bundleName: string): Promise<number>;
  /**
   * Storage migration (controller/migrate-versions.ts): copies bundle `bundleName`'s `versions` by digest from
   * the registry `from` names into this registry; returns how many were copied. OCI mode only; absent in fakes.
   */
  copyVersions?(bundleName: string, from: OCIArtifactRef, versions: readonly { version?: number; digest: string }[]): Promise<number>;
  /**
   * Storage migration from etcd (controller/migrate-etcd.ts): pushes the versions etcd held for bundle
   * `bundleName` under their `v<N>` tags; returns each with its digest. OCI mode only; absent in fakes.
   */
  storeVersions?(bundleName: string, versions: readonly (EtcdVersion & { files: BundleFile[] })[]): Promise<PushedVersion[]>;
  /**
   * Storage migration to etcd (controller/content-objects.ts): keeps bundle `bundleName`'s `versions` other than
   * the current contents as content Secrets written through `kube`; returns how many were written. Absent in fakes.
   */
  keepVersions?(
    kube: Pick<KubeClient, 'get' | 'apply'>,
    bundleName: string,
    from: OCIArtifactRef,
    versions: readonly { version?: number; digest: string; contentsID?: string }[],
    currentContentsID: string,
  ): Promise<number>;
  close(): Promise<void>;
}

/**
 * Where a GitRepo's bundles go: the OCI registry named by `ociRegistry` (OCI mode), or inline into the
 * Bundle objects (etcd mode). There is no fallback from one to the other: a registry failure is an error,
 * never a reason to write content into etcd.
 */
export interface BundleStore {
  /** Opens the store for `repo` (reads its registry credentials: a missing Secret is a WaitingError naming it). */
  open(repo: GitRepo & KubeObject): Promise<BundleStoreSession>;
  /** Deletes every version of `repositories` in a registry the GitRepo left (controller/cleanup.ts); returns how many. */
  deleteFrom?(registry: StorageRegistry, credentials: Credentials | undefined, repositories: readonly string[]): Promise<number>;
}
