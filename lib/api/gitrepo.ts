/**
 * GitRepo: a git repository whose paths become Bundles. Field names are Fleet's, so a Fleet GitRepo
 * works once its apiVersion is changed; `ociRegistry` turns on OCI storage of the bundles.
 */
import { z } from 'zod';
import { READY_COLUMN, objectSchema, type KindDefinition } from './kind.js';
import { ConditionsSchema, duration, namespaceName, objectName } from './meta.js';
import { CorrectDriftSchema, DIGEST, PINNED_REFERENCE, REPOSITORY_REFERENCE, caBundle, targetMatchShape } from './options.js';
import { BundleSummarySchema } from './status.js';
import { GitRepoImagesSchema } from './images.js';
import { lazySchema } from './lazy.js';

/** Where the bundles of a GitRepo are stored as OCI artifacts. */
export const OCIRegistrySchema = lazySchema(() =>
  z
    .strictObject({
      reference: z
        .string()
        .max(1024)
        .regex(REPOSITORY_REFERENCE, 'must be "host[:port]/path" without a tag or digest')
        .optional()
        .describe(
          'Repository prefix for the artifacts, "host[:port]/path" (no tag, no digest); each bundle gets a repository below it. Without it, the registry the upstream cluster announces in kube-public/local-registry-hosting (KEP-1755) is used.',
        ),
      authSecretName: objectName(
        'Secret (same namespace) with registry credentials: username/password for pushing, and optionally agentUsername/agentPassword (read-only) handed to agents.',
      ).optional(),
      basicHTTP: z.boolean().optional().describe('Use plain HTTP instead of HTTPS (test registries only).'),
      insecureSkipTLS: z.boolean().optional().describe('Do not verify the registry TLS certificate (test registries only).'),
      caBundle: caBundle('Base64 PEM CA bundle used to verify the registry certificate.').optional(),
    })
    .describe('OCI storage: bundles are stored as artifacts in this registry instead of inline in etcd. No fallback to etcd.'),
);

/** OCI storage settings of a GitRepo. */
export type OCIRegistry = z.infer<typeof OCIRegistrySchema>;

const secretRef = (description: string) => z.strictObject({ name: objectName('Secret name (same namespace).') }).describe(description);

/** Signing of every bundle version the controller pushes (cosign format, see docs/trust.md). */
export const SigningSchema = lazySchema(() =>
  z
    .strictObject({
      provider: z.literal('cosign').optional().describe('Signature format; only "cosign" (the default).'),
      secretRef: secretRef(
        'Secret with the private key in "cosign.key" (PEM PKCS#8, or cosign generate-key-pair output with its password in "cosign.password").',
      ),
    })
    .describe('Sign each pushed bundle version (its manifest digest) with a cosign-compatible signature.'),
);

/** Verification agents require before applying a bundle version (Flux's verify field). */
export const VerifySchema = lazySchema(() =>
  z
    .strictObject({
      provider: z.literal('cosign').describe('Signature format; only "cosign".'),
      secretRef: secretRef('Secret whose keys ending in ".pub" hold trusted PEM public keys (several: key rotation).'),
    })
    .describe('Agents refuse any version without a cosign signature by one of these keys (Stalled; nothing applied).'),
);

/** Encryption at rest of the bundle files stored in the registry. */
export const EncryptionSchema = lazySchema(() =>
  z
    .strictObject({
      secretRef: secretRef('Secret with the 32-byte key in "key" (raw or base64; openssl rand -base64 32). Changing it re-encrypts (rotation).'),
    })
    .describe(
      'Encrypt every file layer (AES-256-GCM-SIV, deterministic: unchanged files keep their digest); keys are copied only to targeted cluster namespaces.',
    ),
);

/** Clusters the bundles of a GitRepo deploy to (Fleet GitTarget). */
export const GitTargetSchema = lazySchema(() =>
  z.strictObject(targetMatchShape).describe('Clusters to deploy to: by name, label selector, group or group selector.'),
);

/** A GitRepo target. */
export type GitTarget = z.infer<typeof GitTargetSchema>;

/** Spec of a GitRepo. */
export const GitRepoSpecSchema = lazySchema(() =>
  z
    .strictObject({
      repo: z.string().min(1).max(2048).describe('URL of the git repository (https://, http:// or ssh, e.g. git@host:org/repo).'),
      branch: z.string().max(255).optional().describe('Branch to follow; default "master" (Fleet). Ignored when revision is set.'),
      revision: z.string().max(255).optional().describe('A tag or commit to deploy instead of following a branch.'),
      paths: z
        .array(z.string().min(1).max(4096))
        .optional()
        .describe('Directories (globs allowed) in the repository that hold bundles; default the repository root.'),
      clientSecretName: objectName('Secret with git credentials: kubernetes.io/basic-auth or kubernetes.io/ssh-auth (with optional known_hosts).').optional(),
      helmSecretName: objectName(
        'Secret with credentials for remote Helm charts (username, password; cacerts: a PEM CA bundle), used by the controller when it fetches charts.',
      ).optional(),
      helmSecretNameForPaths: objectName(
        'Secret whose secrets-path.yaml gives chart credentials per bundle folder (username, password, caBundle, insecureSkipVerify), as in Fleet; helmSecretName is then ignored.',
      ).optional(),
      helmRepoURLRegex: z
        .string()
        .max(1024)
        .optional()
        .describe('helmSecretName credentials are sent only to chart URLs (repo, oci:// or .tgz URL) matching this regular expression; default all.'),
      caBundle: caBundle('Base64 PEM CA bundle used to verify the git server certificate.').optional(),
      insecureSkipTLSVerify: z.boolean().optional().describe('Do not verify the TLS certificate of the git server nor of remote Helm chart repositories.'),
      pollingInterval: duration('How often to check git for new commits, e.g. "15s" (default) or "1m30s".').optional(),
      webhookSecret: objectName(
        "Secret (same namespace) with the secrets that authenticate git webhook calls for this GitRepo, one key per provider: github, gitlab, gitea, gogs, bitbucket, bitbucket-server (as in Fleet). Without it, the controller's global webhook Secret applies.",
      ).optional(),
      disablePolling: z.boolean().optional().describe('Do not poll git; only webhooks or forceSyncGeneration trigger a fetch.'),
      paused: z.boolean().optional().describe('Fetch and build bundles, but do not roll out new versions.'),
      targetNamespace: namespaceName('Forces every namespaced resource of every bundle into this namespace.').optional(),
      serviceAccount: objectName("Service account the agents impersonate when applying this repository's bundles.").optional(),
      keepResources: z.boolean().optional().describe('Keep deployed resources when bundles are removed instead of deleting them.'),
      deleteNamespace: z.boolean().optional().describe('Accepted for Fleet compatibility; Flotilla never deletes namespaces.'),
      correctDrift: CorrectDriftSchema.optional(),
      forceSyncGeneration: z.int().min(0).optional().describe('Change this number to force a new fetch and redeploy.'),
      imageScanInterval: duration('Accepted for Fleet compatibility; image scanning is not implemented.').optional(),
      imageScanCommit: z
        .strictObject({
          authorName: z.string().optional().describe('Ignored.'),
          authorEmail: z.string().optional().describe('Ignored.'),
          messageTemplate: z.string().optional().describe('Ignored.'),
        })
        .optional()
        .describe('Accepted for Fleet compatibility; image scanning is not implemented.'),
      targets: z
        .array(GitTargetSchema)
        .optional()
        .describe(
          'Clusters to deploy to (by name, labels, group or group labels); they also restrict the targetCustomizations of fleet.yaml. Without targets, the ClusterGroup named "default" (as in Fleet).',
        ),
      ociRegistry: OCIRegistrySchema.optional(),
      images: GitRepoImagesSchema.optional(),
      ociRegistrySecret: objectName(
        'Secret (same namespace, type fleet.cattle.io/bundle-oci-storage/v1alpha1 or flotilla.dev/bundle-oci-storage/v1alpha1) with the OCI storage settings, as in Fleet: reference, username, password, agentUsername, agentPassword, basicHTTP, insecureSkipTLS, cacerts. Used when ociRegistry is not set; without both, a Secret named "ocistorage" in the namespace, else etcd.',
      ).optional(),
      signing: SigningSchema.optional(),
      verify: VerifySchema.optional(),
      encryption: EncryptionSchema.optional(),
    })
    .describe('Desired state: which repository, which paths, which clusters, where bundles are stored.'),
);

/** Spec of a GitRepo. */
export type GitRepoSpec = z.infer<typeof GitRepoSpecSchema>;

const count = (description: string) => z.int().min(0).optional().describe(description);

/** Per-state counts of the resources deployed from a GitRepo, over all clusters. */
export const ResourceCountsSchema = lazySchema(() =>
  z
    .strictObject({
      ready: count('Resources ready.'),
      desiredReady: count('Resources that should be ready.'),
      waitApplied: count('Resources waiting to be applied.'),
      modified: count('Resources modified in a cluster.'),
      orphaned: count('Resources no longer desired but still present.'),
      missing: count('Resources desired but absent.'),
      unknown: count('Resources whose state is unknown.'),
      notReady: count('Resources not ready.'),
    })
    .describe('Counts of deployed resources per state, over all clusters.'),
);

/** The artifact a bundle of this GitRepo was stored as (OCI mode). */
export const StoredArtifactSchema = lazySchema(() =>
  z
    .strictObject({
      bundle: z.string().describe('Bundle name.'),
      reference: z.string().regex(PINNED_REFERENCE).describe('Pinned reference "host[:port]/path@sha256:<hex>".'),
      digest: z.string().regex(DIGEST).describe('Manifest digest.'),
    })
    .describe('A stored bundle artifact.'),
);

/** A move of the bundle versions from one storage to another, while it runs (and after it, until the next one). */
export const StorageMigrationSchema = lazySchema(() =>
  z
    .strictObject({
      from: z.string().max(1100).describe('The previous storage: "etcd" or the registry reference.'),
      to: z.string().max(1100).describe('The new storage: "etcd" or the registry reference.'),
      phase: z.enum(['Copying', 'Switching', 'CleaningUp', 'Done', 'Failed']).describe('Where the migration is.'),
      bundles: z.int().min(0).describe('Bundles to move.'),
      moved: z.int().min(0).describe('Bundles whose versions are in the new storage.'),
      versions: z.int().min(0).optional().describe('Artifact versions copied so far (registry to registry).'),
      message: z.string().max(1024).optional().describe('The last problem, if any (the migration resumes by itself).'),
      startedAt: z.iso.datetime({ offset: true }).optional().describe('When the migration started.'),
      cleanup: z
        .strictObject({
          policy: z.enum(['keep', 'delete']).describe('The GitRepo annotation flotilla.dev/old-storage (default delete).'),
          phase: z
            .enum(['Pending', 'Deleted', 'Kept', 'Failed'])
            .describe('Pending until every BundleDeployment runs from the new storage; then Deleted or Kept; Failed retries.'),
          deleted: z.int().min(0).optional().describe('Artifact versions (registry) or content Secrets (etcd) deleted.'),
          message: z.string().max(1024).optional().describe('What is awaited, or the last problem.'),
        })
        .optional()
        .describe('What happens to the old storage once nothing reads it.'),
    })
    .describe('Progress of a storage migration.'),
);

/** Where a GitRepo's bundles are stored now and how that was decided. */
export const StorageStatusSchema = lazySchema(() =>
  z
    .strictObject({
      mode: z.enum(['etcd', 'oci']).describe('etcd: inline in the Bundle objects; oci: artifacts in a registry.'),
      source: z
        .enum(['ociRegistry', 'ociRegistrySecret', 'ocistorage', 'discovery', 'default'])
        .describe('What chose it: spec.ociRegistry, spec.ociRegistrySecret, the ocistorage Secret, KEP-1755 discovery, or the default (etcd).'),
      reference: z.string().max(1024).optional().describe('The registry reference (OCI mode).'),
      migration: StorageMigrationSchema.optional(),
    })
    .describe('Where the bundles are stored.'),
);

/** Status of a GitRepo. */
export const GitRepoStatusSchema = lazySchema(() =>
  z
    .strictObject({
      observedGeneration: z.int().min(0).optional().describe('metadata.generation the status describes.'),
      commit: z.string().optional().describe('The git commit the bundles were built from.'),
      webhookCommit: z.string().optional().describe('The latest commit announced by a webhook.'),
      lastPollingTime: z.iso.datetime({ offset: true }).optional().describe('When git was last polled.'),
      lastSyncedCommitTime: z.iso.datetime({ offset: true }).optional().describe('When the current commit was first built.'),
      conditions: ConditionsSchema.optional(),
      readyClusters: count('Clusters where every bundle of this GitRepo is ready.'),
      desiredReadyClusters: count('Clusters this GitRepo deploys to.'),
      resourceCounts: ResourceCountsSchema.optional(),
      display: z
        .strictObject({
          readyBundleDeployments: z.string().optional().describe('Ready/desired BundleDeployments, "n/m".'),
          state: z.string().optional().describe('Short state for display.'),
          message: z.string().max(1024).optional().describe('Short message for display (the first problem).'),
          error: z.boolean().optional().describe('The state is an error.'),
        })
        .optional()
        .describe('Summary for kubectl get.'),
      summary: BundleSummarySchema.optional(),
      artifacts: z.array(StoredArtifactSchema).max(100).optional().describe('The artifacts of the current bundles (OCI mode; at most 100).'),
      storage: StorageStatusSchema.optional(),
    })
    .describe('Observed state of the GitRepo.'),
);

/** Status of a GitRepo. */
export type GitRepoStatus = z.infer<typeof GitRepoStatusSchema>;

/** A whole GitRepo object. */
export const GitRepoSchema = lazySchema(() => objectSchema('GitRepo', GitRepoSpecSchema, GitRepoStatusSchema));

/** A GitRepo object. */
export type GitRepo = z.infer<typeof GitRepoSchema>;

/** GitRepo as a kind: names, schemas and printer columns. */
export const GitRepoKind: KindDefinition = {
  kind: 'GitRepo',
  plural: 'gitrepos',
  singular: 'gitrepo',
  shortNames: ['gr'],
  description: 'A git repository watched by Flotilla: each path becomes a Bundle deployed to the target clusters.',
  schema: GitRepoSchema,
  specSchema: GitRepoSpecSchema,
  statusSchema: GitRepoStatusSchema,
  specRequired: true,
  printerColumns: [
    { name: 'Repo', type: 'string', jsonPath: '.spec.repo', description: 'Git repository URL.' },
    { name: 'Commit', type: 'string', jsonPath: '.status.commit', description: 'Commit deployed.' },
    { name: 'BundleDeployments-Ready', type: 'string', jsonPath: '.status.display.readyBundleDeployments', description: 'Ready/desired BundleDeployments.' },
    READY_COLUMN,
    { name: 'Status', type: 'string', jsonPath: '.status.display.message', description: 'First problem, if any.' },
  ],
};
