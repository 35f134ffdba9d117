/**
 * Building blocks shared by every kind: object metadata, label selectors, conditions, durations,
 * plus the pure helpers that maintain `status.conditions` the Kubernetes way.
 */
import { z } from 'zod';
import type { ConditionStatus } from './constants.js';
import { atomic, listMap } from './crd-extensions.js';
import { formatTime } from '../util/time.js';
import { lazySchema } from './lazy.js';

/** A Kubernetes object name (DNS-1123 subdomain). */
export const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** A Kubernetes namespace or label value style name (DNS-1123 label). */
export const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** Go `time.ParseDuration` syntax, as used by metav1.Duration: "15s", "1m30s", "1.5h", "0". */
export const DURATION = /^(0|([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+)$/;

/** A DNS-1123 subdomain string (object names: Secrets, ServiceAccounts, Bundles...). */
export function objectName(description: string) {
  return z.string().max(253).regex(DNS_SUBDOMAIN, 'must be a lowercase DNS-1123 subdomain').describe(description);
}

/** A DNS-1123 label string (namespace names). */
export function namespaceName(description: string) {
  return z.string().max(63).regex(DNS_LABEL, 'must be a lowercase DNS-1123 label').describe(description);
}

/** A duration string in Go syntax ("15s", "1m30s"). */
export function duration(description: string) {
  return z.string().max(64).regex(DURATION, 'must be a duration such as "15s" or "1m30s"').describe(description);
}

/** A string map (labels, annotations): keys and values are strings. */
export function stringMap(description: string) {
  return z.record(z.string(), z.string()).describe(description);
}

/**
 * Parses a duration in Go syntax into milliseconds ("1m30s" -> 90000). Returns undefined if it is not
 * a valid duration. Sub-millisecond parts are kept as fractions.
 */
export function parseDurationMs(text: string): number | undefined {
  if (!DURATION.test(text)) return undefined;
  if (text === '0') return 0;
  const unitMs: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  let total = 0;
  for (const match of text.matchAll(/([0-9]+(?:\.[0-9]+)?)(ns|us|µs|ms|s|m|h)/g)) {
    total += Number(match[1]) * (unitMs[match[2] ?? ''] ?? 0);
  }
  return total;
}

/**
 * The part of metav1.ObjectMeta Flotilla reads. Loose: the API server adds fields (managedFields, ...)
 * that are kept as they are. In CRDs metadata is validated by the API server itself, not by our schema.
 */
export const ObjectMetaSchema = lazySchema(() =>
  z
    .looseObject({
      name: z.string().describe('Name of the object, unique in its namespace.'),
      generateName: z.string().optional().describe('Prefix for a server-generated name.'),
      namespace: z.string().optional().describe('Namespace of the object.'),
      uid: z.string().optional().describe('Unique ID assigned by the API server.'),
      resourceVersion: z.string().optional().describe('Opaque version for optimistic concurrency.'),
      generation: z.int().optional().describe('Sequence number of spec changes, assigned by the API server.'),
      creationTimestamp: z.string().optional().describe('When the object was created (RFC 3339).'),
      deletionTimestamp: z.string().optional().describe('When deletion was requested (RFC 3339); set while finalizers run.'),
      labels: stringMap('Labels of the object.').optional(),
      annotations: stringMap('Annotations of the object.').optional(),
      finalizers: z.array(z.string()).optional().describe('Finalizers that must be removed before the object is deleted.'),
      ownerReferences: z
        .array(
          z.looseObject({
            apiVersion: z.string(),
            kind: z.string(),
            name: z.string(),
            uid: z.string(),
            controller: z.boolean().optional(),
            blockOwnerDeletion: z.boolean().optional(),
          }),
        )
        .optional()
        .describe('Objects that own this one (garbage collection).'),
    })
    .describe('Standard object metadata.'),
);

/** Object metadata as read from the API server. */
export type ObjectMeta = z.infer<typeof ObjectMetaSchema>;

/** One requirement of a label selector. */
export const LabelSelectorRequirementSchema = lazySchema(() =>
  z
    .strictObject({
      key: z.string().min(1).max(317).describe('The label key the requirement applies to.'),
      operator: z.enum(['In', 'NotIn', 'Exists', 'DoesNotExist']).describe('How the key relates to the values: In, NotIn, Exists or DoesNotExist.'),
      values: z.array(z.string()).optional().describe('Values for In and NotIn (non-empty there); must be empty for Exists and DoesNotExist.'),
    })
    .describe('A label selector requirement: a key, an operator and values.'),
);

/** One requirement of a label selector. */
export type LabelSelectorRequirement = z.infer<typeof LabelSelectorRequirementSchema>;

/** A Kubernetes label selector (metav1.LabelSelector); an empty selector matches everything. */
export const LabelSelectorSchema = lazySchema(() =>
  z
    .strictObject({
      matchLabels: stringMap('Labels that must all be present with exactly these values.').optional(),
      matchExpressions: z.array(LabelSelectorRequirementSchema).optional().describe('Requirements that must all hold.'),
    })
    .describe('A label selector: matchLabels and matchExpressions are ANDed; an empty selector matches everything.'),
);

/** A Kubernetes label selector. */
export type LabelSelector = z.infer<typeof LabelSelectorSchema>;

/** Condition type syntax (metav1.Condition): an optional DNS prefix and a PascalCase-ish name. */
const CONDITION_TYPE = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$/;
/** Condition reason syntax (metav1.Condition): CamelCase. */
const CONDITION_REASON = /^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$/;

/** A status condition, exactly as Kubernetes metav1.Condition. */
export const ConditionSchema = lazySchema(() =>
  atomic(
    z
      .strictObject({
        type: z
          .string()
          .max(316)
          .regex(CONDITION_TYPE, 'must be a condition type such as "Ready"')
          .describe('Type of the condition: Ready, Reconciling, Stalled, or a specific one such as GitFetched.'),
        status: z.enum(['True', 'False', 'Unknown']).describe('Status of the condition: True, False or Unknown.'),
        observedGeneration: z.int().min(0).optional().describe('metadata.generation of the object when the condition was set.'),
        lastTransitionTime: z.iso.datetime({ offset: true }).describe('When the status last changed (RFC 3339).'),
        reason: z
          .string()
          .min(1)
          .max(1024)
          .regex(CONDITION_REASON, 'must be a CamelCase reason')
          .describe('Machine-readable CamelCase reason for the last transition, e.g. Succeeded or ArtifactTampered.'),
        message: z.string().max(32768).describe('Human-readable details; never contains secrets.'),
      })
      .describe('A condition of the object (Kubernetes metav1.Condition).'),
  ),
);

/** A status condition. */
export type Condition = z.infer<typeof ConditionSchema>;

/** A condition as a reconciler sets it: the transition time is filled in by {@link setCondition}. */
export type ConditionInput = Omit<Condition, 'lastTransitionTime'>;

/** The `status.conditions` list: at most 16, unique by type. */
export const ConditionsSchema = lazySchema(() =>
  listMap(z.array(ConditionSchema).max(16).describe('Conditions of the object; at most one per type.'), ['type']),
);

/** metav1.Time formatting; it lives in lib/util/time.ts and is re-exported for users of the API. */
export { formatTime };

/**
 * Returns a new conditions list with `cond` set. The transition time is kept when the status did not
 * change (only reason/message/observedGeneration are updated), and set to `now` otherwise. Other
 * conditions and the list order are kept; a new type is appended.
 */
export function setCondition(conditions: readonly Condition[] | undefined, cond: ConditionInput, now: Date): Condition[] {
  const list = [...(conditions ?? [])];
  const index = list.findIndex((c) => c.type === cond.type);
  const existing = index >= 0 ? list[index] : undefined;
  const lastTransitionTime = existing && existing.status === cond.status ? existing.lastTransitionTime : formatTime(now);
  const next: Condition = { ...cond, lastTransitionTime };
  if (index >= 0) list[index] = next;
  else list.push(next);
  return list;
}

/** Returns a new conditions list without the condition of `type`. */
export function removeCondition(conditions: readonly Condition[] | undefined, type: string): Condition[] {
  return (conditions ?? []).filter((c) => c.type !== type);
}

/** Returns the condition of `type`, if present. */
export function getCondition(conditions: readonly Condition[] | undefined, type: string): Condition | undefined {
  return conditions?.find((c) => c.type === type);
}

/** True when the condition of `type` exists with status "True". */
export function isTrue(conditions: readonly Condition[] | undefined, type: string): boolean {
  return getCondition(conditions, type)?.status === ('True' satisfies ConditionStatus);
}

/** True when the condition of `type` exists with status "False". */
export function isFalse(conditions: readonly Condition[] | undefined, type: string): boolean {
  return getCondition(conditions, type)?.status === ('False' satisfies ConditionStatus);
}
