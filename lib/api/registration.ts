/**
 * Agent registration: a ClusterRegistrationToken lets an agent ask once; the agent then creates a
 * ClusterRegistration, which the controller grants by creating the Cluster and a credential that
 * reaches only that cluster's namespace.
 */
import { z } from 'zod';
import { objectSchema, type KindDefinition } from './kind.js';
import { ConditionsSchema, duration, objectName, stringMap } from './meta.js';
import { lazySchema } from './lazy.js';

/**
 * Name of the agent's upstream ServiceAccount (and of its Role and RoleBinding) in each cluster namespace:
 * the controller creates it when it grants a registration, the agent requests and renews its tokens.
 */
export const AGENT_SERVICE_ACCOUNT = 'flotilla-agent';

/** Spec of a ClusterRegistrationToken. */
export const ClusterRegistrationTokenSpecSchema = lazySchema(() =>
  z
    .strictObject({
      ttl: duration('How long the token is valid after creation, e.g. "24h"; empty means forever.').optional(),
    })
    .describe('Token settings.'),
);

/** Spec of a ClusterRegistrationToken. */
export type ClusterRegistrationTokenSpec = z.infer<typeof ClusterRegistrationTokenSpecSchema>;

/** Status of a ClusterRegistrationToken. */
export const ClusterRegistrationTokenStatusSchema = lazySchema(() =>
  z
    .strictObject({
      secretName: objectName('Secret holding the token and the values agents need to register.').optional(),
      expires: z.iso.datetime({ offset: true }).optional().describe('When the token stops being valid.'),
      conditions: ConditionsSchema.optional(),
    })
    .describe('The issued token.'),
);

/** Status of a ClusterRegistrationToken. */
export type ClusterRegistrationTokenStatus = z.infer<typeof ClusterRegistrationTokenStatusSchema>;

/** A whole ClusterRegistrationToken object. */
export const ClusterRegistrationTokenSchema = lazySchema(() =>
  objectSchema('ClusterRegistrationToken', ClusterRegistrationTokenSpecSchema.optional(), ClusterRegistrationTokenStatusSchema),
);

/** A ClusterRegistrationToken object. */
export type ClusterRegistrationToken = z.infer<typeof ClusterRegistrationTokenSchema>;

/** ClusterRegistrationToken as a kind. */
export const ClusterRegistrationTokenKind: KindDefinition = {
  kind: 'ClusterRegistrationToken',
  plural: 'clusterregistrationtokens',
  singular: 'clusterregistrationtoken',
  shortNames: ['crt'],
  description: 'A token agents use to register their cluster in this namespace.',
  schema: ClusterRegistrationTokenSchema,
  specSchema: ClusterRegistrationTokenSpecSchema,
  statusSchema: ClusterRegistrationTokenStatusSchema,
  specRequired: false,
  printerColumns: [
    { name: 'Secret-Name', type: 'string', jsonPath: '.status.secretName', description: 'Secret holding the token.' },
    { name: 'Expires', type: 'date', jsonPath: '.status.expires', description: 'When the token expires.' },
  ],
};

/** Spec of a ClusterRegistration, created by an agent. */
export const ClusterRegistrationSpecSchema = lazySchema(() =>
  z
    .strictObject({
      clientID: z.string().min(1).max(256).describe('Stable ID of the downstream cluster (e.g. the kube-system namespace UID).'),
      clientRandom: z.string().min(1).max(256).describe('Random value chosen by the agent for this request; names the credential Secret.'),
      clusterLabels: stringMap('Labels the Cluster gets when it is created.').optional(),
    })
    .describe('Who is registering.'),
);

/** Spec of a ClusterRegistration. */
export type ClusterRegistrationSpec = z.infer<typeof ClusterRegistrationSpecSchema>;

/** Status of a ClusterRegistration, written by the controller. */
export const ClusterRegistrationStatusSchema = lazySchema(() =>
  z
    .strictObject({
      clusterName: objectName('The Cluster created or matched for this registration.').optional(),
      granted: z.boolean().optional().describe('The credential was issued.'),
      secretName: objectName('Secret with the credential for the agent (reaches only its cluster namespace).').optional(),
      conditions: ConditionsSchema.optional(),
    })
    .describe('Outcome of the registration.'),
);

/** Status of a ClusterRegistration. */
export type ClusterRegistrationStatus = z.infer<typeof ClusterRegistrationStatusSchema>;

/** A whole ClusterRegistration object. */
export const ClusterRegistrationSchema = lazySchema(() => objectSchema('ClusterRegistration', ClusterRegistrationSpecSchema, ClusterRegistrationStatusSchema));

/** A ClusterRegistration object. */
export type ClusterRegistration = z.infer<typeof ClusterRegistrationSchema>;

/** ClusterRegistration as a kind. */
export const ClusterRegistrationKind: KindDefinition = {
  kind: 'ClusterRegistration',
  plural: 'clusterregistrations',
  singular: 'clusterregistration',
  shortNames: ['creg'],
  description: "An agent's request to register its cluster; granted by the controller.",
  schema: ClusterRegistrationSchema,
  specSchema: ClusterRegistrationSpecSchema,
  statusSchema: ClusterRegistrationStatusSchema,
  specRequired: true,
  printerColumns: [
    { name: 'Cluster-Name', type: 'string', jsonPath: '.status.clusterName', description: 'Cluster registered.' },
    { name: 'Granted', type: 'boolean', jsonPath: '.status.granted', description: 'Credential issued.' },
  ],
};
