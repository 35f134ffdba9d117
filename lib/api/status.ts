/**
 * Status blocks shared by several kinds: the per-resource state reported by agents and the bounded
 * bundle summary rolled up into Bundle, GitRepo, Cluster and ClusterGroup status.
 */
import { z } from 'zod';
import { atomic } from './crd-extensions.js';
import { lazySchema } from './lazy.js';

/** States of a bundle on one cluster, from best to worst (Fleet's BundleState). */
export const BundleState = {
  /** Applied and every resource is ready. */
  Ready: 'Ready',
  /** Applied, but some resources are not ready yet. */
  NotReady: 'NotReady',
  /** Waiting for the agent to apply the current deployment ID. */
  WaitApplied: 'WaitApplied',
  /** Applying failed. */
  ErrApplied: 'ErrApplied',
  /** The applied deployment ID is older than the desired one (e.g. paused). */
  OutOfSync: 'OutOfSync',
  /** Resources were modified, are missing or are orphaned in the cluster (drift). */
  Modified: 'Modified',
  /** Not deployed yet (e.g. waiting for a dependency or the artifact). */
  Pending: 'Pending',
} as const;

/** A bundle state. */
export type BundleState = (typeof BundleState)[keyof typeof BundleState];

/** Schema of a bundle state value. */
export const BundleStateSchema = lazySchema(() =>
  z
    .enum(Object.values(BundleState) as [BundleState, ...BundleState[]])
    .describe('State of the bundle on a cluster: Ready, NotReady, WaitApplied, ErrApplied, OutOfSync, Modified or Pending.'),
);

/** The most entries any per-resource status list holds; the rest is counted, not listed. */
export const MAX_RESOURCE_STATUS_ITEMS = 10;

/** Fields identifying a downstream resource: apiVersion, kind, name, namespace. */
export const resourceIdShape = lazySchema(() => ({
  apiVersion: z.string().describe('apiVersion of the resource.'),
  kind: z.string().describe('Kind of the resource.'),
  name: z.string().describe('Name of the resource.'),
  namespace: z.string().optional().describe('Namespace of the resource (empty for cluster-scoped ones).'),
}));

/** A downstream resource that is not ready, with why. */
export const NonReadyStatusSchema = lazySchema(() =>
  z
    .strictObject({
      ...resourceIdShape,
      summary: z
        .strictObject({
          state: z.string().describe('Short state, e.g. "in-progress" or "error".'),
          message: z.string().optional().describe('Why the resource is not ready.'),
          error: z.boolean().optional().describe('The resource failed (not merely in progress).'),
          transitioning: z.boolean().optional().describe('The resource is progressing towards ready.'),
        })
        .describe('Readiness summary of the resource.'),
    })
    .describe('A deployed resource that is not ready.'),
);

/** A downstream resource that is not ready. */
export type NonReadyStatus = z.infer<typeof NonReadyStatusSchema>;

/** A downstream resource that differs from the desired state. */
export const ModifiedStatusSchema = lazySchema(() =>
  z
    .strictObject({
      ...resourceIdShape,
      missing: z.boolean().optional().describe('The resource is desired but absent from the cluster.'),
      delete: z.boolean().optional().describe('The resource exists but is no longer desired (orphaned).'),
      patch: z.string().max(4096).optional().describe('JSON merge patch from the desired to the actual state (truncated).'),
      ownedBy: z
        .string()
        .max(253)
        .optional()
        .describe('Another bundle deployment wrote the resource since: two bundles deploy it (drift correction leaves it alone).'),
    })
    .describe('A deployed resource that differs from the desired state.'),
);

/** A downstream resource that differs from the desired state. */
export type ModifiedStatus = z.infer<typeof ModifiedStatusSchema>;

/** The most modified and non-ready resources one entry of a roll-up lists (the BundleDeployment has them all). */
export const MAX_SUMMARY_DETAIL_ITEMS = 3;

/** The longest message an entry of a roll-up carries (the BundleDeployment has it whole). */
export const MAX_SUMMARY_MESSAGE = 512;

/** A resource id with bounded strings, as roll-ups list it. */
const boundedIdShape = lazySchema(() => ({
  apiVersion: z.string().max(253).describe('apiVersion of the resource.'),
  kind: z.string().max(63).describe('Kind of the resource.'),
  name: z.string().max(253).describe('Name of the resource.'),
  namespace: z.string().max(63).optional().describe('Namespace of the resource (empty for cluster-scoped ones).'),
}));

/** One cluster (or bundle deployment) that is not ready, in a summary: bounded, the detail stays on the BundleDeployment. */
export const NonReadyResourceSchema = lazySchema(() =>
  z
    .strictObject({
      name: z.string().max(253).describe('Name of the cluster or BundleDeployment.'),
      bundleState: BundleStateSchema,
      message: z.string().max(MAX_SUMMARY_MESSAGE).optional().describe('Why it is not ready (cut to 512 characters).'),
      modifiedStatus: z
        .array(
          z
            .strictObject({
              ...boundedIdShape,
              missing: z.boolean().optional().describe('The resource is desired but absent from the cluster.'),
              delete: z.boolean().optional().describe('The resource exists but is no longer desired (orphaned).'),
            })
            .describe('A modified resource (its patch is on the BundleDeployment).'),
        )
        .max(MAX_SUMMARY_DETAIL_ITEMS)
        .optional()
        .describe('The first modified resources (at most 3; all of them, with patches, on the BundleDeployment).'),
      nonReadyStatus: z
        .array(
          z
            .strictObject({
              ...boundedIdShape,
              summary: z
                .strictObject({
                  state: z.string().max(64).describe('Short state, e.g. "in-progress" or "error".'),
                  message: z.string().max(MAX_SUMMARY_MESSAGE).optional().describe('Why the resource is not ready (cut to 512 characters).'),
                  error: z.boolean().optional().describe('The resource failed (not merely in progress).'),
                  transitioning: z.boolean().optional().describe('The resource is progressing towards ready.'),
                })
                .describe('Readiness summary of the resource.'),
            })
            .describe('A resource that is not ready.'),
        )
        .max(MAX_SUMMARY_DETAIL_ITEMS)
        .optional()
        .describe('The first resources that are not ready (at most 3; all of them on the BundleDeployment).'),
    })
    .describe('A cluster or BundleDeployment that is not ready.'),
);

/** One cluster (or bundle deployment) that is not ready, in a summary. */
export type NonReadyResource = z.infer<typeof NonReadyResourceSchema>;

const count = (description: string) => z.int().min(0).describe(description);

/**
 * How many bundle deployments are in each state, plus a bounded list of the non-ready ones. Atomic for
 * server-side apply: one roll-up writes it whole, and managedFields name `summary` instead of each count.
 */
export const BundleSummarySchema = lazySchema(() =>
  atomic(
    z
      .strictObject({
        notReady: count('Deployments applied but not ready.'),
        waitApplied: count('Deployments waiting to be applied.'),
        errApplied: count('Deployments that failed to apply.'),
        outOfSync: count('Deployments whose applied version is not the desired one.'),
        modified: count('Deployments whose resources drifted.'),
        ready: count('Deployments that are ready.'),
        pending: count('Deployments not deployed yet.'),
        desiredReady: count('Deployments that should be ready.'),
        nonReadyResources: z
          .array(NonReadyResourceSchema)
          .max(MAX_RESOURCE_STATUS_ITEMS)
          .optional()
          .describe('The first non-ready deployments, worst state first (at most 10 and 2 KiB; the counts are exact).'),
      })
      .describe('Counts of bundle deployments per state.'),
  ),
);

/** Counts of bundle deployments per state. */
export type BundleSummary = z.infer<typeof BundleSummarySchema>;

/** Returns an all-zero summary. */
export function emptyBundleSummary(): BundleSummary {
  return { notReady: 0, waitApplied: 0, errApplied: 0, outOfSync: 0, modified: 0, ready: 0, pending: 0, desiredReady: 0 };
}
