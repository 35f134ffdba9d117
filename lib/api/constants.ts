/**
 * Flotilla's API constants: group/version, condition types, reasons, labels, annotations and finalizers.
 *
 * Every string that appears in a CRD, a condition, a label or a finalizer is defined here once, so the
 * same word is used in code, objects, logs and docs. Condition types and reasons follow the Kubernetes
 * conventions (PascalCase; `Ready`, `Reconciling`, `Stalled` as the summary conditions).
 */

/** The API group of every Flotilla kind. */
export const GROUP = 'flotilla.dev';

/** The only served (and stored) version of every Flotilla kind. */
export const VERSION = 'v1alpha1';

/** `apiVersion` of every Flotilla object: `flotilla.dev/v1alpha1`. */
export const API_VERSION = `${GROUP}/${VERSION}` as const;

/** The namespace Clusters and GitRepos live in when none is configured (Fleet's "fleet-default"). */
export const DEFAULT_WORKSPACE_NAMESPACE = 'flotilla-default';

/** Condition types used on Flotilla objects (`status.conditions[].type`). */
export const ConditionType = {
  /** Summary: the object is fully reconciled and everything it manages is ready. */
  Ready: 'Ready',
  /** Summary: a reconcile is in progress (new generation, new commit, new artifact being rolled out). */
  Reconciling: 'Reconciling',
  /** Summary: the object cannot progress until a person changes it (bad input, refused credentials). */
  Stalled: 'Stalled',
  /** GitRepo: the configured revision was fetched from git; `reason` says why not otherwise. */
  GitFetched: 'GitFetched',
  /** GitRepo / Bundle: bundle artifacts are stored in the OCI registry (OCI mode only). */
  ArtifactsStored: 'ArtifactsStored',
  /** GitRepo: every bundle path was read and turned into a Bundle object. */
  BundlesBuilt: 'BundlesBuilt',
  /** BundleDeployment: the desired resources were applied to the downstream cluster. */
  Deployed: 'Deployed',
  /** BundleDeployment: the agent checked readiness and drift of the applied resources. */
  Monitored: 'Monitored',
  /** Bundle: targets were evaluated and BundleDeployments exist for every matching cluster. */
  Targeted: 'Targeted',
  /** Cluster / ClusterRegistration: the agent registered and holds a credential for its cluster namespace. */
  Registered: 'Registered',
  /** Bundle: `spec.rollback` is in force: some clusters run an older version than git's (out of sync with git). */
  RolledBack: 'RolledBack',
} as const;

/** A condition type defined by Flotilla. */
export type ConditionType = (typeof ConditionType)[keyof typeof ConditionType];

/** Values of `status.conditions[].status` (Kubernetes metav1.ConditionStatus). */
export const ConditionStatus = {
  /** The condition holds. */
  True: 'True',
  /** The condition does not hold. */
  False: 'False',
  /** It is not known (yet) whether the condition holds. */
  Unknown: 'Unknown',
} as const;

/** One of "True", "False", "Unknown". */
export type ConditionStatus = (typeof ConditionStatus)[keyof typeof ConditionStatus];

/**
 * Condition reasons (`status.conditions[].reason`). Stable: code above adapters and users' alerting match
 * on them, so a reason is never renamed; it is also the `reason` of the Flotilla error that produced it.
 */
export const Reason = {
  /** The step finished successfully. */
  Succeeded: 'Succeeded',
  /** Work is under way (new generation observed, rollout in progress). */
  Progressing: 'Progressing',
  /** Bundle: some clusters run an older version by `spec.rollback` (out of sync with git on purpose). */
  RolledBack: 'RolledBack',
  /** Bundle: a partition of its staged rollout failed (deadline); the rollout halted or rolled back (status.rollout says which). */
  RolloutFailed: 'RolloutFailed',
  /** Bundle: `spec.rollback` names a version, digest or clusters the bundle does not have; nothing was changed. */
  InvalidRollback: 'InvalidRollback',
  /** A git operation (ls-remote, fetch, checkout) failed for a reason other than authentication. */
  GitOperationFailed: 'GitOperationFailed',
  /** Git or the registry refused the given credentials; the user must fix the Secret. */
  AuthenticationFailed: 'AuthenticationFailed',
  /** A Secret referenced by the spec (clientSecretName, authSecretName, ...) does not exist or lacks a key. */
  SecretNotFound: 'SecretNotFound',
  /** The spec itself is invalid in a way the schema cannot express (e.g. conflicting fields). */
  InvalidSpec: 'InvalidSpec',
  /** Bundle content is malformed: invalid YAML, invalid fleet.yaml, a path outside the bundle, a bad overlay. */
  InvalidBundle: 'InvalidBundle',
  /** The bundle is larger than the configured limit (bytes or number of resources). */
  BundleTooLarge: 'BundleTooLarge',
  /**
   * Bundle content is over a parsing limit (alias expansion, nesting depth, documents per file, line, key or
   * string length, nodes or expanded size, objects per bundle; lib/bundle/limits.ts). The same bytes always
   * fail: stalled until the content or the limit changes, never retried with backoff.
   */
  ContentLimitExceeded: 'ContentLimitExceeded',
  /** Parsing and rendering one bundle took longer than its deadline or more memory than its budget (lib/isolate). */
  RenderBudgetExceeded: 'RenderBudgetExceeded',
  /** helm or kustomize failed on the bundle (template error, time limit, cannot run); the message says which. */
  RenderFailed: 'RenderFailed',
  /** A remote Helm chart (or the version asked for) is not in its repository: fix helm.chart / helm.version in fleet.yaml. */
  ChartNotFound: 'ChartNotFound',
  /** A Helm chart repository could not be reached when the controller fetched a chart (connection, DNS, timeout, 5xx). */
  ChartRepositoryUnreachable: 'ChartRepositoryUnreachable',
  /** A Helm chart repository's TLS certificate was not trusted (wrong or missing cacerts in helmSecretName). */
  ChartRepositoryTLSFailed: 'ChartRepositoryTLSFailed',
  /** The OCI registry could not be reached (connection refused, DNS, TLS, timeout, 5xx). */
  RegistryUnreachable: 'RegistryUnreachable',
  /**
   * GitRepo: the storage Secret (`ociRegistrySecret` or the namespace's `ocistorage`) is missing, of the wrong
   * type, or holds a malformed value; bundles are not stored anywhere (never in etcd instead) until it is fixed.
   */
  StorageSecretInvalid: 'StorageSecretInvalid',
  /**
   * GitRepo: `ociRegistry` gives no reference and the upstream cluster's KEP-1755 ConfigMap
   * (kube-public/local-registry-hosting) is missing or malformed, so there is no registry to store bundles in.
   */
  RegistryDiscoveryFailed: 'RegistryDiscoveryFailed',
  /** GitRepo: bundle versions are being moved to a new storage (etcd or another registry); nothing downstream changes. */
  StorageMigrating: 'StorageMigrating',
  /**
   * GitRepo: a storage migration found the `v<N>` tag it writes already in the target registry holding another
   * digest; nothing was overwritten (controller/migrate-tags.ts).
   */
  ArtifactTagConflict: 'ArtifactTagConflict',
  /**
   * GitRepo: `spec.encryption` is set but the storage resolves to etcd, where Bundles would hold the files in
   * plaintext; nothing is stored or moved until a registry is configured or encryption is removed.
   */
  EncryptionNeedsRegistry: 'EncryptionNeedsRegistry',
  /** The OCI registry answered with a refusal other than authentication (4xx such as 403, 404 on push, 405). */
  RegistryRefused: 'RegistryRefused',
  /** Uploading a bundle artifact (blobs or manifest) to the registry failed. */
  ArtifactPushFailed: 'ArtifactPushFailed',
  /** Downloading a bundle artifact from the registry failed. */
  ArtifactPullFailed: 'ArtifactPullFailed',
  /** The registry served bytes whose digest differs from the pinned one: tampering or corruption; not applied. */
  ArtifactTampered: 'ArtifactTampered',
  /** An image of a bundle could not be resolved to a digest in its source registry (missing, or refused); the version is not stored. */
  ImageNotFound: 'ImageNotFound',
  /** Copying a locked image to the relocation registry failed (refused push or credentials, or the tag moved); the version is not stored. */
  ImageRelocationFailed: 'ImageRelocationFailed',
  /** An object references an image the bundle's images lock does not hold while relocation is on; nothing is applied. */
  ImageNotLocked: 'ImageNotLocked',
  /** A bundle declares local images but the cluster has no kube-public/local-registry-hosting ConfigMap (KEP-1755); nothing is applied. */
  LocalRegistryNotFound: 'LocalRegistryNotFound',
  /** Agent: relocation names an imagePullSecret that a workload's namespace on this cluster does not have; nothing is applied. */
  ImagePullSecretNotFound: 'ImagePullSecretNotFound',
  /** Agent: the bundle version has no cosign signature (`sha256-<hex>.sig`) although its GitRepo requires one; not applied. */
  SignatureMissing: 'SignatureMissing',
  /** Agent: the version's signatures verify with none of the trusted public keys (wrong key); not applied. */
  SignatureUntrusted: 'SignatureUntrusted',
  /** Agent: a trusted key's signature found for the version signs another digest (a copied signature); not applied. */
  SignatureDigestMismatch: 'SignatureDigestMismatch',
  /** Agent: an encrypted bundle cannot be decrypted (its key is not in the cluster's key Secret, or the ciphertext is damaged); not applied. */
  DecryptionFailed: 'DecryptionFailed',
  /** No cluster matches the bundle's targets (not an error, but nothing is deployed). */
  NoMatchingClusters: 'NoMatchingClusters',
  /** A ConfigMap or Secret (or its key) named in `helm.valuesFrom` is missing downstream or unreadable; deployment waits. */
  ValuesFromNotFound: 'ValuesFromNotFound',
  /** A bundle listed in `dependsOn` is not ready yet; deployment waits. */
  DependencyNotReady: 'DependencyNotReady',
  /** An object of the bundle lives in a namespace that is not the target namespace, not in the bundle and not downstream. */
  NamespaceNotFound: 'NamespaceNotFound',
  /** The `serviceAccount` the bundle is to be applied as does not exist in the agent's namespace downstream. */
  ServiceAccountNotFound: 'ServiceAccountNotFound',
  /** Server-side apply (or pruning) of a resource was rejected by the downstream API server. */
  ApplyFailed: 'ApplyFailed',
  /** Applied resources are not ready yet (Deployment rolling out, Job running, ...). */
  ResourcesNotReady: 'ResourcesNotReady',
  /** Applied resources were still not ready `helm.timeoutSeconds` after the version was applied (Fleet: the Helm wait timed out). */
  ReadyTimeout: 'ReadyTimeout',
  /** Resources in the downstream cluster differ from the desired state (modified, missing or orphaned). */
  Drifted: 'Drifted',
  /** The object (or its GitRepo/Bundle) has `paused: true`; nothing new is rolled out. */
  Paused: 'Paused',
  /** The object is being deleted; its finalizer is cleaning up. */
  Deleting: 'Deleting',
  /** Cluster: the agent has not reported within the expected time. */
  AgentNotSeen: 'AgentNotSeen',
  /** ClusterRegistration: waiting for the controller to grant the request. */
  RegistrationPending: 'RegistrationPending',
  /** ClusterRegistrationToken: the token passed its `ttl` and is no longer valid. */
  TokenExpired: 'TokenExpired',
  /** ClusterRegistration: the Cluster of this client is being deleted; registration continues once it is gone. */
  ClusterDeleting: 'ClusterDeleting',
  /** ClusterRegistration: the Cluster name asked for belongs to another client. */
  ClusterNameTaken: 'ClusterNameTaken',
  /** The API server (upstream or downstream) does not serve a kind (its CRD is not installed yet). */
  KindNotFound: 'KindNotFound',
  /** A kubeconfig has no usable current cluster. */
  InvalidKubeconfig: 'InvalidKubeconfig',
  /** The Kubernetes API server could not be reached (connection refused, DNS, TLS, timeout). */
  ApiServerUnreachable: 'ApiServerUnreachable',
  /** The Kubernetes API server refused a request for lack of permission (HTTP 403): RBAC must change. */
  Forbidden: 'Forbidden',
  /** The Kubernetes API server found no such object (HTTP 404). */
  NotFound: 'NotFound',
  /** A write lost a race with another writer (HTTP 409): re-read and retry at once. */
  Conflict: 'Conflict',
  /** The Kubernetes API server rejected an object as invalid (HTTP 422): what was sent must change. */
  Invalid: 'Invalid',
  /** The Kubernetes API server asked to slow down (HTTP 429). */
  TooManyRequests: 'TooManyRequests',
  /** The Kubernetes API server failed (HTTP 5xx) or answered with another unexpected status. */
  ApiServerError: 'ApiServerError',
  /** An unexpected failure without a reason of its own (a bug): the message says what happened. */
  InternalError: 'InternalError',
} as const;

/** A reason defined by Flotilla. */
export type Reason = (typeof Reason)[keyof typeof Reason];

/** Labels Flotilla sets (and selects on). */
export const Label = {
  /** On Bundles and BundleDeployments: the name of the GitRepo that produced them. */
  RepoName: 'flotilla.dev/repo-name',
  /** On Bundles and BundleDeployments: the Bundle name. */
  BundleName: 'flotilla.dev/bundle-name',
  /** On BundleDeployments: the namespace of their Bundle (they live in the cluster namespace). */
  BundleNamespace: 'flotilla.dev/bundle-namespace',
  /** On BundleDeployments and cluster-namespace objects: the Cluster name. */
  Cluster: 'flotilla.dev/cluster',
  /** On cluster namespaces and their objects: the namespace of the Cluster object. */
  ClusterNamespace: 'flotilla.dev/cluster-namespace',
  /** On every object Flotilla creates: `"true"`. */
  Managed: 'flotilla.dev/managed',
  /** On resources the agent applies downstream: which bundle deployment owns them (for pruning). */
  BundleID: 'flotilla.dev/bundle-id',
  /** On BundleDeployments pinned by a Bundle's `spec.rollback`: the version they run (`v<N>`). */
  RolledBackTo: 'flotilla.dev/rolled-back-to',
} as const;

/** The value of {@link Label.Managed} on objects Flotilla manages. */
export const MANAGED_LABEL_VALUE = 'true';

/** Annotations Flotilla sets. */
export const Annotation = {
  /** On applied downstream resources: the deployment ID (content + options hash) that applied them. */
  DeploymentID: 'flotilla.dev/deployment-id',
  /** On Bundles: the git commit that last changed them (a commit that leaves a bundle as it was does not write its Bundle). */
  Commit: 'flotilla.dev/commit',
  /** On Bundles: the directory of the repository the bundle comes from. */
  SourceDir: 'flotilla.dev/source-dir',
} as const;

/** Finalizers Flotilla puts on the objects whose deletion needs clean-up. */
export const Finalizer = {
  /** GitRepo: delete its Bundles and its registry artifacts before it goes. */
  GitRepo: 'flotilla.dev/gitrepo',
  /** Bundle: delete its BundleDeployments before it goes. */
  Bundle: 'flotilla.dev/bundle',
  /** BundleDeployment: the agent prunes the downstream resources (unless keepResources) before it goes. */
  BundleDeployment: 'flotilla.dev/bundledeployment',
  /** Cluster: delete its cluster namespace and credentials before it goes. */
  Cluster: 'flotilla.dev/cluster',
} as const;

/** The CRD category every Flotilla kind belongs to (`kubectl get flotilla`). */
export const CATEGORY = 'flotilla';
