/**
 * BundleDeployment: one bundle's desired state for one cluster, in that cluster's namespace. The agent
 * of the cluster applies it and reports back in its status.
 */
import { z } from 'zod';
import { RESOURCES_XOR_OCI } from './bundle.js';
import { atomic, refineWithCel } from './crd-extensions.js';
import { READY_COLUMN, objectSchema, type KindDefinition } from './kind.js';
import { ConditionsSchema } from './meta.js';
import { BundleDeploymentOptionsSchema, BundleRefSchema, BundleResourceSchema, CorrectDriftSchema, OCIArtifactRefSchema } from './options.js';
import { MAX_RESOURCE_STATUS_ITEMS, ModifiedStatusSchema, NonReadyStatusSchema, resourceIdShape } from './status.js';
import { lazySchema } from './lazy.js';

/** The most entries `status.resources` lists. */
export const MAX_STATUS_RESOURCES = 100;

/**
 * Spec of a BundleDeployment. Atomic for server-side apply: the controller writes it whole (its apply
 * replaces the spec), so managedFields record `spec` once rather than every option and Helm value below it.
 */
export const BundleDeploymentSpecSchema = lazySchema(() =>
  atomic(
    refineWithCel(
      z.strictObject({
        deploymentID: z
          .string()
          .min(1)
          .max(256)
          .describe('Identifies the desired state (content + options); the agent applies when it differs from status.appliedDeploymentID.'),
        stagedDeploymentID: z.string().max(256).optional().describe('Deployment ID staged while the bundle is paused.'),
        paused: z.boolean().optional().describe('Do not apply new deployment IDs.'),
        options: BundleDeploymentOptionsSchema.optional(),
        stagedOptions: BundleDeploymentOptionsSchema.optional(),
        resources: z.array(BundleResourceSchema).optional().describe('The files of the bundle, inline (etcd mode).'),
        oci: OCIArtifactRefSchema.optional(),
        dependsOn: z.array(BundleRefSchema).optional().describe('Bundles that must be ready on this cluster first.'),
        forceSyncGeneration: z.int().min(0).optional().describe('Change to force the agent to re-apply.'),
        correctDrift: CorrectDriftSchema.optional(),
      }),
      RESOURCES_XOR_OCI,
    ).describe('Desired state of one bundle on one cluster.'),
  ),
);

/** Spec of a BundleDeployment. */
export type BundleDeploymentSpec = z.infer<typeof BundleDeploymentSpecSchema>;

/** A resource the agent applied. */
export const AppliedResourceSchema = lazySchema(() => z.strictObject(resourceIdShape).describe('A resource applied by the agent.'));

/**
 * Status of a BundleDeployment, written by the agent alone. Atomic for server-side apply: managedFields
 * record `status` once instead of every member of every condition and display field (about 640 bytes
 * less per BundleDeployment in etcd, and less for the API server to work out on every status write).
 */
export const BundleDeploymentStatusSchema = lazySchema(() =>
  atomic(
    z
      .strictObject({
        observedGeneration: z.int().min(0).optional().describe('metadata.generation the status describes.'),
        conditions: ConditionsSchema.optional(),
        appliedDeploymentID: z.string().max(256).optional().describe('The deployment ID the resources in the cluster match.'),
        release: z.string().optional().describe('Name under which the resources were applied (namespace/name).'),
        ready: z.boolean().optional().describe('All applied resources are ready.'),
        nonModified: z.boolean().optional().describe('No applied resource differs from the desired state.'),
        nonReadyStatus: z.array(NonReadyStatusSchema).max(MAX_RESOURCE_STATUS_ITEMS).optional().describe('Resources that are not ready (at most 10).'),
        modifiedStatus: z
          .array(ModifiedStatusSchema)
          .max(MAX_RESOURCE_STATUS_ITEMS)
          .optional()
          .describe('Resources that are modified, missing or orphaned (at most 10).'),
        resources: z
          .array(AppliedResourceSchema)
          .max(MAX_STATUS_RESOURCES)
          .optional()
          .describe('The applied resources (the first 100; pruning relies on labels, not on this list).'),
        display: z
          .strictObject({
            deployed: z.string().optional().describe('Deployed condition summary.'),
            monitored: z.string().optional().describe('Monitored condition summary.'),
            state: z.string().optional().describe('Bundle state on this cluster.'),
          })
          .optional()
          .describe('Summary for kubectl get.'),
        syncGeneration: z.int().min(0).optional().describe('spec.forceSyncGeneration last acted on.'),
      })
      .describe('Observed state of the bundle on the cluster, reported by the agent.'),
  ),
);

/** Status of a BundleDeployment. */
export type BundleDeploymentStatus = z.infer<typeof BundleDeploymentStatusSchema>;

/** A whole BundleDeployment object. */
export const BundleDeploymentSchema = lazySchema(() => objectSchema('BundleDeployment', BundleDeploymentSpecSchema, BundleDeploymentStatusSchema));

/** A BundleDeployment object. */
export type BundleDeployment = z.infer<typeof BundleDeploymentSchema>;

/** BundleDeployment as a kind. */
export const BundleDeploymentKind: KindDefinition = {
  kind: 'BundleDeployment',
  plural: 'bundledeployments',
  singular: 'bundledeployment',
  shortNames: ['bd'],
  description: "One bundle deployed to one cluster; lives in the cluster namespace and is applied by that cluster's agent.",
  schema: BundleDeploymentSchema,
  specSchema: BundleDeploymentSpecSchema,
  statusSchema: BundleDeploymentStatusSchema,
  specRequired: true,
  printerColumns: [
    { name: 'Deployed', type: 'string', jsonPath: '.status.display.deployed', description: 'Deployed condition summary.' },
    { name: 'Monitored', type: 'string', jsonPath: '.status.display.monitored', description: 'Monitored condition summary.' },
    READY_COLUMN,
    { name: 'Status', type: 'string', jsonPath: '.status.display.state', description: 'Bundle state on this cluster.' },
    { name: 'DeploymentID', type: 'string', jsonPath: '.spec.deploymentID', description: 'Desired deployment ID.', priority: 1 },
  ],
};
