/**
 * Bundle: one deployable unit (a directory of a GitRepo), either inline (etcd mode) or as an OCI
 * artifact pinned by digest (OCI mode), with its deployment options and targets.
 */
import { z } from 'zod';
import { refineWithCel } from './crd-extensions.js';
import { READY_COLUMN, objectSchema, type KindDefinition } from './kind.js';
import { ConditionsSchema } from './meta.js';
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

/** The CEL rule (and its zod twin) that forbids both inline resources and an OCI artifact. */
export const RESOURCES_XOR_OCI = {
  rule: '!(has(self.oci) && has(self.resources) && size(self.resources) > 0)',
  message: 'resources and oci are exclusive: a bundle is stored either inline or in an OCI registry',
  check: (spec: { resources?: BundleResource[] | undefined; oci?: OCIArtifactRef | undefined }) =>
    !(spec.oci !== undefined && (spec.resources?.length ?? 0) > 0),
};

/** Spec of a Bundle. */
export const BundleSpecSchema = refineWithCel(
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
  }),
  RESOURCES_XOR_OCI,
).describe('Desired state: the content (inline or OCI), how to deploy it and where.');

/** Spec of a Bundle. */
export type BundleSpec = z.infer<typeof BundleSpecSchema>;

/** Status of a Bundle. */
export const BundleStatusSchema = z
  .strictObject({
    observedGeneration: z.int().min(0).optional().describe('metadata.generation the status describes.'),
    conditions: ConditionsSchema.optional(),
    summary: BundleSummarySchema.optional(),
    display: z
      .strictObject({
        readyClusters: z.string().optional().describe('Ready/desired clusters, "n/m".'),
        state: z.string().optional().describe('Worst state over all clusters.'),
      })
      .optional()
      .describe('Summary for kubectl get.'),
    maxNew: z.int().min(0).optional().describe('Accepted for Fleet compatibility.'),
    maxUnavailable: z.int().min(0).optional().describe('Accepted for Fleet compatibility.'),
    resourcesSHA256Sum: z.string().max(128).optional().describe('sha256 of the resources (etcd mode).'),
    observedContentsID: z.string().max(128).optional().describe('spec.contentsID the BundleDeployments were built for.'),
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
  .describe('Observed state of the Bundle over all its clusters.');

/** Status of a Bundle. */
export type BundleStatus = z.infer<typeof BundleStatusSchema>;

/** A whole Bundle object. */
export const BundleSchema = objectSchema('Bundle', BundleSpecSchema, BundleStatusSchema);

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
