/**
 * Staged rollouts: Fleet's `rolloutStrategy` (fleet.yaml and Bundle spec) with Flotilla's extensions
 * (`minSuccessTime`, `deadline`, `onFailure`), and the progress the Bundle reconciler reports on the Bundle's
 * status. The planner is controller/rollout.ts; the semantics are in docs/releases.md.
 */
import { z } from 'zod';
import { StallingError } from '../errors.js';
import { Reason } from './constants.js';
import { freeForm } from './crd-extensions.js';
import { duration, parseDurationMs } from './meta.js';
import { targetMatchShape } from './options.js';
import { lazySchema } from './lazy.js';

const intOrPercent = (description: string) => freeForm(`${description} A non-negative integer or a percentage such as "25%".`);

/** The most explicit partitions a rollout strategy may list (and a Bundle status shows). */
export const MAX_PARTITIONS = 64;

/** One explicit partition: the clusters it selects (the first partition that selects a cluster has it). */
export const RolloutPartitionSchema = lazySchema(() =>
  z
    .strictObject({
      ...targetMatchShape,
      maxUnavailable: intOrPercent(
        'Clusters of this partition that may be unavailable before it counts as unavailable (default: the strategy maxUnavailable).',
      ).optional(),
    })
    .describe('A partition of the clusters, rolled out after the partitions before it.'),
);

/** A partition of a rollout strategy. */
export type RolloutPartition = z.infer<typeof RolloutPartitionSchema>;

/** The behaviour when a partition fails (its deadline passed while it was not within tolerance). */
export const OnFailure = { Halt: 'halt', Rollback: 'rollback' } as const;

/** Fleet's rolloutStrategy plus Flotilla's soak time, deadline and onFailure. */
export const RolloutStrategySchema = lazySchema(() =>
  z
    .strictObject({
      maxUnavailable: intOrPercent('Clusters that may be unavailable (not applied or not ready) while updating (default "100%").').optional(),
      maxUnavailablePartitions: intOrPercent('Partitions that may be unavailable before the next one waits (default 0).').optional(),
      maxNew: z.int().min(1).optional().describe('BundleDeployments created per pass at most (default 50).'),
      autoPartitionSize: intOrPercent('Clusters per automatic partition (default "25%"; 0 turns automatic partitions off).').optional(),
      autoPartitionThreshold: z.int().min(0).optional().describe('Fewer targeted clusters than this make one partition (default 200).'),
      partitions: z.array(RolloutPartitionSchema).max(MAX_PARTITIONS).optional().describe('Explicit partitions, in rollout order.'),
      minSuccessTime: duration('Flotilla: how long a partition must stay within tolerance before the next one starts (default 0s).').optional(),
      deadline: duration('Flotilla: a started partition not within tolerance after this long has failed (default: none, it waits).').optional(),
      onFailure: z
        .enum([OnFailure.Halt, OnFailure.Rollback])
        .optional()
        .describe(
          'Flotilla: on a failed partition, halt (keep what runs, start nothing more; default) or rollback (started partitions return to the previous version).',
        ),
    })
    .describe('How a new version of the bundle is rolled out over its clusters (Fleet rolloutStrategy).'),
);

/** A rollout strategy. */
export type RolloutStrategy = z.infer<typeof RolloutStrategySchema>;

/** The phase of a rollout, on the Bundle's status. */
export const RolloutPhase = { Progressing: 'Progressing', Complete: 'Complete', Halted: 'Halted', RolledBack: 'RolledBack' } as const;
/** The phase of a rollout. */
export type RolloutPhase = (typeof RolloutPhase)[keyof typeof RolloutPhase];

/** The phase of one partition. */
export const PartitionPhase = { Waiting: 'Waiting', Rolling: 'Rolling', Soaking: 'Soaking', Done: 'Done', Failed: 'Failed' } as const;
/** The phase of one partition. */
export type PartitionPhase = (typeof PartitionPhase)[keyof typeof PartitionPhase];

/** Progress of one partition (bounded: counts and a few names). */
export const PartitionStatusSchema = lazySchema(() =>
  z
    .strictObject({
      name: z.string().max(253).describe('Partition name.'),
      phase: z.enum(Object.values(PartitionPhase) as [PartitionPhase, ...PartitionPhase[]]).describe('Waiting, Rolling, Soaking, Done or Failed.'),
      count: z.int().min(0).describe('Clusters in the partition.'),
      maxUnavailable: z.int().min(0).describe('Unavailable clusters it tolerates.'),
      unavailable: z.int().min(0).describe('Online clusters not yet up to date and ready.'),
      upToDate: z.int().min(0).describe('Clusters that applied the version and are ready.'),
      offline: z.int().min(0).optional().describe('Clusters whose agent is offline (not counted either way).'),
      startedAt: z.iso.datetime({ offset: true }).optional().describe('When the partition started.'),
      succeededAt: z.iso.datetime({ offset: true }).optional().describe('Since when it is within tolerance.'),
      names: z.array(z.string().max(253)).max(5).optional().describe('The first unavailable clusters.'),
    })
    .describe('Progress of one partition.'),
);

/** Progress of one partition. */
export type PartitionStatus = z.infer<typeof PartitionStatusSchema>;

/** A rollout's progress on the Bundle's status. */
export const RolloutStatusSchema = lazySchema(() =>
  z
    .strictObject({
      revision: z.string().max(512).describe('What is rolled out (contents and options); a new revision starts a new rollout.'),
      version: z.int().min(1).optional().describe('Its version (OCI mode).'),
      previousVersion: z.int().min(1).optional().describe('The version it replaces: where onFailure rollback returns to.'),
      phase: z.enum(Object.values(RolloutPhase) as [RolloutPhase, ...RolloutPhase[]]).describe('Progressing, Complete, Halted or RolledBack.'),
      message: z.string().max(1024).optional().describe('Why it waits, halted or rolled back.'),
      partitions: z
        .array(PartitionStatusSchema)
        .max(MAX_PARTITIONS + 1)
        .describe('Progress per partition, in order.'),
    })
    .describe('The staged rollout of the newest version (spec.rolloutStrategy).'),
);

/** A rollout's progress. */
export type RolloutStatus = z.infer<typeof RolloutStatusSchema>;

/** An int-or-percent value, checked: a count, or a percentage of a total. */
export type Limit = { count: number } | { percent: number };

/**
 * Parses an int-or-percent field: a non-negative integer, or a string "N%" (0-100, decimals allowed) or a
 * string of digits. Throws a StallingError (reason `reason`) naming `field` otherwise.
 */
export function parseLimit(value: unknown, field: string, where: string, reason: string = Reason.InvalidBundle): Limit {
  if (typeof value === 'number' && Number.isInteger(value) && value >= 0) return { count: value };
  if (typeof value === 'string') {
    if (/^[0-9]+$/.test(value)) return { count: Number(value) };
    const m = /^([0-9]+(?:\.[0-9]+)?)%$/.exec(value);
    if (m && Number(m[1]) <= 100) return { percent: Number(m[1]) };
  }
  throw new StallingError(
    reason,
    `${where}: ${field}: ${JSON.stringify(value)} is not a non-negative integer or a percentage from "0%" to "100%" (e.g. 2 or "25%"); fix ${field}`,
  );
}

/**
 * Checks what the schema cannot: the int-or-percent fields and the durations of a rollout strategy. `prefix`
 * is the field path of the strategy (`rolloutStrategy` in fleet.yaml, `spec.rolloutStrategy` on a Bundle).
 * Throws a StallingError naming `where` and the field.
 */
export function checkRolloutStrategy(strategy: RolloutStrategy | undefined, prefix: string, where: string, reason: string = Reason.InvalidBundle): void {
  if (!strategy) return;
  for (const key of ['maxUnavailable', 'maxUnavailablePartitions', 'autoPartitionSize'] as const) {
    if (strategy[key] !== undefined) parseLimit(strategy[key], `${prefix}.${key}`, where, reason);
  }
  (strategy.partitions ?? []).forEach((p, i) => {
    if (p.maxUnavailable !== undefined) parseLimit(p.maxUnavailable, `${prefix}.partitions[${i}].maxUnavailable`, where, reason);
    if (!p.clusterName && !p.clusterSelector && !p.clusterGroup && !p.clusterGroupSelector) {
      throw new StallingError(
        reason,
        `${where}: ${prefix}.partitions[${i}]: selects nothing; give clusterName, clusterSelector, clusterGroup or clusterGroupSelector`,
      );
    }
  });
  for (const key of ['minSuccessTime', 'deadline'] as const) {
    const text = strategy[key];
    if (text !== undefined && parseDurationMs(text) === undefined) {
      throw new StallingError(reason, `${where}: ${prefix}.${key}: "${text}" is not a duration such as "30s" or "5m"; fix ${prefix}.${key}`);
    }
  }
}
