/**
 * Cluster and ClusterGroup: the downstream clusters Flotilla deploys to, and named groups of them.
 * Targeting matches `metadata.labels` of Clusters (and of ClusterGroups for clusterGroupSelector).
 */
import { z } from 'zod';
import { READY_COLUMN, objectSchema, type KindDefinition } from './kind.js';
import { helmValues } from './helm.js';
import { ConditionsSchema, LabelSelectorSchema, namespaceName, objectName } from './meta.js';
import { BundleSummarySchema } from './status.js';
import { RegistryMirrorListSchema, RegistryMirrorStatusSchema } from './mirror.js';
import { lazySchema } from './lazy.js';

/** Spec of a Cluster. */
export const ClusterSpecSchema = lazySchema(() =>
  z
    .strictObject({
      clientID: z.string().max(256).optional().describe('Identifies the agent that registered this cluster.'),
      paused: z.boolean().optional().describe('Do not roll out new bundle versions to this cluster.'),
      agentNamespace: namespaceName('Namespace the agent runs in, downstream.').optional(),
      kubeConfigSecret: objectName('Secret with a kubeconfig for the cluster (manager-initiated registration).').optional(),
      redeployAgentGeneration: z.int().min(0).optional().describe('Change to force the agent to be redeployed.'),
      // biome-ignore lint/suspicious/noTemplateCurlyInString: Fleet's ${ } cluster templating, named for the user
      templateValues: helmValues('Values of this cluster for fleet.yaml helm.values templating, read as ${ .ClusterValues.<key> } (Fleet).').optional(),
      registryMirrors: RegistryMirrorListSchema.optional().describe(
        "Registries this cluster reaches through mirrors (containerd hosts.toml style); per registry these entries override the agent's bootstrap configuration. Credentials Secrets live in the cluster namespace.",
      ),
    })
    .describe('Desired state of the cluster registration.'),
);

/** Spec of a Cluster. */
export type ClusterSpec = z.infer<typeof ClusterSpecSchema>;

/** Status of a Cluster. */
export const ClusterStatusSchema = lazySchema(() =>
  z
    .strictObject({
      observedGeneration: z.int().min(0).optional().describe('metadata.generation the status describes.'),
      namespace: namespaceName("The cluster namespace: holds this cluster's BundleDeployments and credentials.").optional(),
      agent: z
        .strictObject({
          lastSeen: z.iso.datetime({ offset: true }).optional().describe('When the agent last reported.'),
          namespace: z.string().optional().describe('Namespace the agent runs in, downstream.'),
          version: z.string().max(64).optional().describe("The agent's Flotilla version."),
          heartbeatSeconds: z
            .int()
            .min(1)
            .max(86_400)
            .optional()
            .describe('How often the agent reports (its --heartbeat); the Cluster says AgentNotSeen after three reports missed. Absent: 15 s.'),
          registryMirrors: z.array(RegistryMirrorStatusSchema).max(64).optional().describe('The registry mirrors in effect on the agent (no credentials).'),
        })
        .optional()
        .describe('What the agent reported.'),
      agentLastSeen: z.iso.datetime({ offset: true }).optional().describe('When the agent last reported (same as agent.lastSeen).'),
      conditions: ConditionsSchema.optional(),
      summary: BundleSummarySchema.optional(),
      readyBundles: z.int().min(0).optional().describe('Bundles ready on this cluster.'),
      desiredReadyBundles: z.int().min(0).optional().describe('Bundles targeting this cluster.'),
      display: z
        .strictObject({
          readyBundles: z.string().optional().describe('Ready/desired bundles, "n/m".'),
          state: z.string().optional().describe('Worst bundle state on this cluster.'),
        })
        .optional()
        .describe('Summary for kubectl get.'),
    })
    .describe('Observed state of the cluster.'),
);

/** Status of a Cluster. */
export type ClusterStatus = z.infer<typeof ClusterStatusSchema>;

/** A whole Cluster object. */
export const ClusterSchema = lazySchema(() => objectSchema('Cluster', ClusterSpecSchema.optional(), ClusterStatusSchema));

/** A Cluster object. */
export type Cluster = z.infer<typeof ClusterSchema>;

/** When the Cluster's agent last reported (`status.agent.lastSeen`, or the older `status.agentLastSeen`); undefined if it never did. */
export function agentLastSeen(cluster: Pick<Cluster, 'status'>): string | undefined {
  return cluster.status?.agent?.lastSeen ?? cluster.status?.agentLastSeen;
}

/** Cluster as a kind. */
export const ClusterKind: KindDefinition = {
  kind: 'Cluster',
  plural: 'clusters',
  singular: 'cluster',
  shortNames: [],
  description: 'A downstream cluster with an agent; its labels are what bundle targets match.',
  schema: ClusterSchema,
  specSchema: ClusterSpecSchema,
  statusSchema: ClusterStatusSchema,
  specRequired: false,
  printerColumns: [
    { name: 'Bundles-Ready', type: 'string', jsonPath: '.status.display.readyBundles', description: 'Ready/desired bundles.' },
    { name: 'Last-Seen', type: 'date', jsonPath: '.status.agent.lastSeen', description: 'When the agent last reported.' },
    READY_COLUMN,
    { name: 'Status', type: 'string', jsonPath: '.status.display.state', description: 'Worst bundle state.' },
    { name: 'Namespace', type: 'string', jsonPath: '.status.namespace', description: 'Cluster namespace.', priority: 1 },
    { name: 'Agent-Version', type: 'string', jsonPath: '.status.agent.version', description: 'Flotilla version the agent runs.', priority: 1 },
  ],
};

/** Spec of a ClusterGroup. */
export const ClusterGroupSpecSchema = lazySchema(() =>
  z
    .strictObject({
      selector: LabelSelectorSchema.optional().describe('Clusters (in the same namespace) whose labels match belong to the group.'),
    })
    .describe('Which clusters belong to the group.'),
);

/** Spec of a ClusterGroup. */
export type ClusterGroupSpec = z.infer<typeof ClusterGroupSpecSchema>;

/** Status of a ClusterGroup. */
export const ClusterGroupStatusSchema = lazySchema(() =>
  z
    .strictObject({
      observedGeneration: z.int().min(0).optional().describe('metadata.generation the status describes.'),
      clusterCount: z.int().min(0).optional().describe('Clusters in the group.'),
      nonReadyClusterCount: z.int().min(0).optional().describe('Clusters in the group that are not ready.'),
      nonReadyClusters: z.array(z.string().max(253)).max(10).optional().describe('Names of the first non-ready clusters (at most 10).'),
      summary: BundleSummarySchema.optional(),
      display: z
        .strictObject({
          readyClusters: z.string().optional().describe('Ready/total clusters, "n/m".'),
          readyBundles: z.string().optional().describe('Ready/desired bundle deployments, "n/m".'),
          state: z.string().optional().describe('Worst state.'),
        })
        .optional()
        .describe('Summary for kubectl get.'),
      conditions: ConditionsSchema.optional(),
    })
    .describe('Observed state of the group.'),
);

/** Status of a ClusterGroup. */
export type ClusterGroupStatus = z.infer<typeof ClusterGroupStatusSchema>;

/** A whole ClusterGroup object. */
export const ClusterGroupSchema = lazySchema(() => objectSchema('ClusterGroup', ClusterGroupSpecSchema.optional(), ClusterGroupStatusSchema));

/** A ClusterGroup object. */
export type ClusterGroup = z.infer<typeof ClusterGroupSchema>;

/** ClusterGroup as a kind. */
export const ClusterGroupKind: KindDefinition = {
  kind: 'ClusterGroup',
  plural: 'clustergroups',
  singular: 'clustergroup',
  shortNames: ['cg'],
  description: 'A named set of Clusters selected by labels; bundle targets can name it.',
  schema: ClusterGroupSchema,
  specSchema: ClusterGroupSpecSchema,
  statusSchema: ClusterGroupStatusSchema,
  specRequired: false,
  printerColumns: [
    { name: 'Clusters-Ready', type: 'string', jsonPath: '.status.display.readyClusters', description: 'Ready/total clusters.' },
    { name: 'Bundles-Ready', type: 'string', jsonPath: '.status.display.readyBundles', description: 'Ready/desired bundle deployments.' },
    { name: 'Status', type: 'string', jsonPath: '.status.display.state', description: 'Worst state.' },
  ],
};
