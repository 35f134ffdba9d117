/**
 * Bundle: one deployable unit (a directory of a GitRepo), either inline (etcd mode) or as an OCI
 * artifact pinned by digest (OCI mode), with its deployment options and targets.
 */
import { z } from 'zod';
import { atomic, refineWithCel } from './crd-extensions.js';
import { READY_COLUMN, objectSchema, type KindDefinition } from './kind.js';
import { ConditionsSchema, LabelSelectorSchema } from './meta.js';
import {
  BundleRefSchema,
  BundleResourceSchema,
  BundleTargetSchema,
  OCIArtifactRefSchema,
  TargetRestrictionSchema,
  bundleDeploymentOptionsShape,
  type BundleResource,
  type OCIArtifactRef,
} from './options.js';
import { BundleSummarySchema } from './status.js';
import { RolloutStatusSchema, RolloutStrategySchema } from './rollout.js';
import { lazySchema } from './lazy.js';

/** The CEL rule (and its zod twin) that forbids both inline resources and an OCI artifact. */
export const RESOURCES_XOR_OCI = {
  rule: '!(has(self.oci) && has(self.resources) && size(self.resources) > 0)',
  message: 'resources and oci are exclusive: a bundle is stored either inline or in an OCI registry',
  check: (spec: { resources?: BundleResource[] | undefined; oci?: OCIArtifactRef | undefined }) =>
    !(spec.oci !== undefined && (spec.resources?.length ?? 0) > 0),
};

/** The most cluster names `status.rollback.clusters` lists (`clusterCount` counts them all). */
export const MAX_ROLLBACK_NAMES = 10;

/** The most versions `status.history` lists (newest last); also the versions a rollback can reach. */
export const MAX_HISTORY = 10;

const DIGEST = /^sha256:[0-9a-f]{64}$/;

/**
 * A rollback in force (`spec.rollback`): the clusters it selects run version `version` (pinned by `digest`)
 * instead of the newest one, until it is removed. Written by `flotilla rollback` (or by hand); the GitRepo
 * reconciler never touches it, so it survives new commits and restarts.
 */
export const BundleRollbackSchema = lazySchema(() =>
  z
    .strictObject({
      version: z.int().min(1).describe('Sequence of the version to run (the artifact tag v<version>); must be in status.history.'),
      digest: z.string().regex(DIGEST).optional().describe('Manifest digest of that version; when set it must match status.history.'),
      clusterSelector: LabelSelectorSchema.optional().describe('Targeted clusters that run the version; all targeted clusters when absent.'),
    })
    .describe('Run an older version on some clusters without changing git (flotilla rollback).'),
);

/** A rollback in force. */
export type BundleRollback = z.infer<typeof BundleRollbackSchema>;

/** One retained version of a bundle, as the GitRepo reconciler stored it. */
export const BundleVersionEntrySchema = lazySchema(() =>
  z
    .strictObject({
      version: z.int().min(1).describe('Sequence (artifact tag v<version>).'),
      digest: z.string().max(128).describe('Manifest digest.'),
      commit: z.string().max(64).optional().describe('Git commit the version was built from.'),
      commitTime: z.string().max(64).optional().describe('Commit date (RFC 3339).'),
      contentsID: z.string().max(128).optional().describe('Contents ID of the files.'),
      files: z.int().min(0).optional().describe('Number of files.'),
      size: z.int().min(0).optional().describe('Bytes of all files.'),
    })
    .describe('A retained version of the bundle.'),
);

/** One retained version of a bundle. */
export type BundleVersionEntry = z.infer<typeof BundleVersionEntrySchema>;

/** Spec of a Bundle. */
export const BundleSpecSchema = lazySchema(() =>
  refineWithCel(
    z.strictObject({
      ...bundleDeploymentOptionsShape,
      paused: z.boolean().optional().describe('Do not roll out new versions of this bundle.'),
      forceSyncGeneration: z
        .int()
        .min(0)
        .optional()
        .describe('From GitRepo.spec.forceSyncGeneration; copied to every BundleDeployment, whose agent re-applies when it changes.'),
      resources: z.array(BundleResourceSchema).optional().describe('The files of the bundle, inline (etcd mode). Empty in OCI mode.'),
      oci: OCIArtifactRefSchema.optional(),
      contentsID: z.string().max(128).optional().describe('Hash of the bundle content ("sha256:<hex>"), the same in etcd and OCI mode.'),
      targets: z.array(BundleTargetSchema).optional().describe('Clusters to deploy to, with per-target customization; the first matching target wins.'),
      targetRestrictions: z.array(TargetRestrictionSchema).optional().describe('Clusters targets may match at all (from the GitRepo targets).'),
      dependsOn: z.array(BundleRefSchema).optional().describe('Bundles that must be ready on a cluster before this one is deployed there.'),
      rollback: BundleRollbackSchema.optional(),
      rolloutStrategy: RolloutStrategySchema.optional(),
    }),
    RESOURCES_XOR_OCI,
  ).describe('Desired state: the content (inline or OCI), how to deploy it and where.'),
);

/** Spec of a Bundle. */
export type BundleSpec = z.infer<typeof BundleSpecSchema>;

/** Status of a Bundle. */
export const BundleStatusSchema = lazySchema(() =>
  z
    .strictObject({
      observedGeneration: z.int().min(0).optional().describe('metadata.generation the status describes.'),
      conditions: ConditionsSchema.optional(),
      summary: BundleSummarySchema.optional(),
      display: atomic(
        z
          .strictObject({
            readyClusters: z.string().optional().describe('Ready/desired clusters, "n/m".'),
            state: z.string().optional().describe('Worst state over all clusters.'),
          })
          .describe('Summary for kubectl get.'),
      ).optional(),
      maxNew: z.int().min(0).optional().describe('Accepted for Fleet compatibility.'),
      maxUnavailable: z.int().min(0).optional().describe('Accepted for Fleet compatibility.'),
      resourcesSHA256Sum: z.string().max(128).optional().describe('sha256 of the resources (etcd mode).'),
      observedContentsID: z.string().max(128).optional().describe('spec.contentsID the BundleDeployments were built for.'),
      history: z
        .array(BundleVersionEntrySchema)
        .max(MAX_HISTORY)
        .optional()
        .describe('Retained versions, oldest first (OCI mode; written by the GitRepo reconciler).'),
      versions: z
        .array(
          z.strictObject({
            version: z.int().min(0).describe('Sequence the clusters run (0: not a retained version).'),
            clusters: z.int().min(0).describe('How many clusters run it now.'),
            names: z.array(z.string().max(253)).max(5).optional().describe('The first 5 of them (older versions only; the newest running version lists none).'),
          }),
        )
        .max(MAX_HISTORY + 1)
        .optional()
        .describe('Which versions the clusters run now (from their applied deployment IDs).'),
      rollback: z
        .strictObject({
          version: z.int().min(1).describe('The version spec.rollback pins.'),
          clusters: z.array(z.string().max(253)).max(MAX_ROLLBACK_NAMES).describe('The first 10 clusters pinned to it, by name.'),
          clusterCount: z.int().min(0).optional().describe('How many clusters are pinned to it.'),
          newestVersion: z.int().min(1).optional().describe('The newest version (from git), which waits for them.'),
        })
        .optional()
        .describe('The rollback in force, as applied.'),
      rollout: RolloutStatusSchema.optional(),
      charts: z
        .array(
          z.strictObject({
            source: z.string().max(4096).describe('Where the chart came from (repository and chart, oci:// reference or .tgz URL), without credentials.'),
            version: z.string().max(256).describe('The chart version fetched: an exact version, or the one a semver constraint resolved to.'),
            path: z.string().max(4096).describe('Folder of the bundle the chart is stored in.'),
          }),
        )
        .max(64)
        .optional()
        .describe('Remote charts the controller fetched into the current version of the bundle (written by the GitRepo reconciler).'),
    })
    .describe('Observed state of the Bundle over all its clusters.'),
);

/** Status of a Bundle. */
export type BundleStatus = z.infer<typeof BundleStatusSchema>;

/** A whole Bundle object. */
export const BundleSchema = lazySchema(() => objectSchema('Bundle', BundleSpecSchema, BundleStatusSchema));

/** A Bundle object. */
export type Bundle = z.infer<typeof BundleSchema>;

/** Bundle as a kind. */
export const BundleKind: KindDefinition = {
  kind: 'Bundle',
  plural: 'bundles',
  singular: 'bundle',
  shortNames: [],
  description: 'A deployable unit (usually a directory of a GitRepo): content inline or in an OCI registry, and its targets.',
  schema: BundleSchema,
  specSchema: BundleSpecSchema,
  statusSchema: BundleStatusSchema,
  specRequired: true,
  printerColumns: [
    { name: 'BundleDeployments-Ready', type: 'string', jsonPath: '.status.display.readyClusters', description: 'Ready/desired clusters.' },
    READY_COLUMN,
    { name: 'Status', type: 'string', jsonPath: '.status.display.state', description: 'Worst state over all clusters.' },
    { name: 'Artifact', type: 'string', jsonPath: '.spec.oci.digest', description: 'Manifest digest (OCI mode).', priority: 1 },
  ],
};
