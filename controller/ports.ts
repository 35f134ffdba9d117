import type { Bundle, BundleDeployment, BundleResource, Cluster, ClusterGroup, GitRepo, OCIArtifactRef, OCIRegistry } from '../lib/api/index.js';
import type { LoadedBundle } from '../lib/bundle/index.js';
import type { KubeClient, KubeObject } from '../lib/kube/client.js';
import type { EventRecorder } from '../lib/kube/events.js';
import type { Informer } from '../lib/kube/informer.js';
import type { ArtifactFile, ArtifactMeta, Credentials, PushVersionResult, Reference, RegistryEvent } from '../lib/oci/index.js';

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

/** The read side of an informer's cache. */
export type ObjectCache<T extends KubeObject> = Pick<Informer<T>, 'get' | 'list'>;

/** The caches the GitRepo and Bundle reconcilers read. */
export interface ReconcilerCaches {
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
  /** Deletes every version of `repository`; returns how many were deleted. */
  deleteAll(repository: Reference): Promise<number>;
  close(): Promise<void>;
}

/** How the controller reaches the OCI registry a GitRepo names (`ociRegistry`). */
export interface RegistryAccess {
  /** A session with the registry of `registry.reference`; `onEvent` sees every request, upload and skip (metrics). */
  open(registry: OCIRegistry, credentials: Credentials | undefined, onEvent?: (event: RegistryEvent) => void): RegistrySession;
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
  };
}

/** The bundle store, open for one reconcile of one GitRepo. */
export interface BundleStoreSession {
  /** The registry content goes to (OCI mode), or undefined: inline in the Bundle objects (etcd mode). */
  readonly registry: OCIRegistry | undefined;
  /**
   * Stores one bundle of `commit` (dated `commitTime` when known) whose files have contents ID `contentsID`;
   * retention keeps the digests in `protect`. Returns what its Bundle carries.
   */
  store(bundle: LoadedBundle, commit: string, contentsID: string, release?: { commitTime?: string; protect?: Iterable<string> }): Promise<StoredContent>;
  /** Deletes every stored version of bundle `bundleName` (nothing in etcd mode); returns how many. */
  deleteArtifacts(bundleName: string): Promise<number>;
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
}
