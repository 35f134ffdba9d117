import {
  OnFailure,
  PartitionPhase,
  Reason,
  RolloutPhase,
  parseDurationMs,
  parseLimit,
  type Limit,
  type PartitionStatus,
  type RolloutStatus,
  type RolloutStrategy,
} from '../lib/api/index.js';
import { matchTarget, type ClusterInfo } from '../lib/bundle/target.js';
import type { Readiness } from '../lib/kube/reconciler-status.js';
import { atomicDecisions, type AtomicCluster, type AtomicPlan } from './atomic.js';

/**
 * The rollout planner: the one place that decides which version each targeted cluster's BundleDeployment
 * gets in a pass of the Bundle reconciler. Pure (no I/O, the clock is an input), tested with case tables in
 * controller/rollout.test.ts. Semantics (docs/releases.md, "Staged rollouts"):
 * - a cluster `spec.rollback` selects is pinned to that version, outside every partition;
 * - without a rolloutStrategy every other cluster gets the newest version at once (as before);
 * - with one, clusters are split into partitions (explicit, else automatic), and Fleet's rules apply: an
 *   out-of-date cluster is updated while fewer than maxUnavailable clusters (bundle-wide and in its
 *   partition) are unavailable, at least one at a time; a partition is within tolerance when at most its
 *   maxUnavailable clusters are not up to date and ready; once more than maxUnavailablePartitions partitions are
 *   not within tolerance (or soaking, `minSuccessTime`), later partitions wait. At most maxNew BundleDeployments
 *   are created per pass;
 * - a started partition not within tolerance `deadline` after it started has failed: the rollout halts (what runs
 *   stays, nothing more is updated) or, with `onFailure: rollback`, the started partitions return to the previous
 *   version. That outcome stays until the revision changes (a new commit, options or forceSyncGeneration);
 * - an offline cluster counts neither as available nor as unavailable: it never holds up or fails a partition,
 *   and its BundleDeployment gets its partition's version, applied when its agent returns;
 * - with `helm.atomic: true`, a cluster whose newest version failed returns to the version it ran before, outside
 *   every partition, until the revision changes (controller/atomic.ts).
 */

/** Fleet's defaults. */
export const ROLLOUT_DEFAULTS = {
  maxUnavailable: '100%',
  maxUnavailablePartitions: 0,
  maxNew: 50,
  autoPartitionSize: '25%',
  autoPartitionThreshold: 200,
} as const;
/** The most automatic partitions a rollout makes; a smaller autoPartitionSize is raised to keep within it. */
export const MAX_AUTO_PARTITIONS = 10;

/** Name of the partition of clusters no explicit partition selects (rolled out last). */
export const UNPARTITIONED = 'unpartitioned';
/** How soon to look again when maxNew held back BundleDeployments. */
export const MAX_NEW_REQUEUE_MS = 1000;

/** What a cluster's BundleDeployment gets now. */
export type Decision =
  /** The newest version, as targeting built it. */
  | { kind: 'new' }
  /** What its BundleDeployment has now (none is created when it has none yet). */
  | { kind: 'keep' }
  /** An older version: `spec.rollback`'s (`rollback`), or the previous one after a failed partition or, with helm.atomic, a failed version on that cluster (`failed`). */
  | { kind: 'pin'; version: number; reason: 'rollback' | 'failed' };

/** A targeted cluster and its BundleDeployment's state. */
export interface RolloutCluster extends ClusterInfo {
  /** Its agent missed its heartbeats. */
  offline: boolean;
  /** Its BundleDeployment now: whether its spec is the newest version, whether the agent applied that spec and reports it ready. */
  current?: { isNew: boolean; applied: boolean; ready: boolean } | undefined;
  /** The version `spec.rollback` pins it to. */
  pinned?: number | undefined;
  /** What helm.atomic needs (read only when {@link RolloutInput.atomic}). */
  atomic?: Omit<AtomicCluster, 'name'> | undefined;
}

/** Everything a pass decides from. */
export interface RolloutInput {
  clusters: readonly RolloutCluster[];
  strategy?: RolloutStrategy | undefined;
  /** Identifies what is rolled out (contents, options, forceSyncGeneration). */
  revision: string;
  /** Its version (OCI mode). */
  version?: number | undefined;
  /** The version it replaces, when no earlier rollout says (see {@link previousOf}). */
  previousVersion?: number | undefined;
  /** Versions still in the registry (a rollback can only return to one of them). */
  retained: readonly number[];
  /** status.rollout as the last pass wrote it. */
  prior?: RolloutStatus | undefined;
  now: Date;
  /** The object, for messages ("Bundle ns/name"). */
  where: string;
  /** The bundle's helm options have `atomic: true`. */
  atomic?: boolean | undefined;
}

/** What a pass decides. */
export interface RolloutPlan {
  decisions: Map<string, Decision>;
  /** status.rollout (undefined without a strategy). */
  status?: RolloutStatus;
  /** When to look again although nothing changes (soak end, deadline, maxNew). */
  requeueAfterMs?: number;
  /** What helm.atomic decided (with {@link RolloutInput.atomic}). */
  atomic?: AtomicPlan;
}

/** A partition as computed for one pass. */
export interface Partition {
  name: string;
  clusters: RolloutCluster[];
  maxUnavailable: number;
}

/** `limit` applied to `total`: a count as is, a percentage rounded down (at least 1 when the total is not 0, as Fleet). */
export function resolveLimit(limit: Limit, total: number): number {
  if ('count' in limit) return limit.count;
  if (total <= 0) return 0;
  return Math.max(1, Math.floor((total * limit.percent) / 100));
}

function limitOf(value: unknown, fallback: unknown, field: string, where: string, total: number): number {
  return resolveLimit(parseLimit(value ?? fallback, field, where), total);
}

/**
 * The partitions of `clusters` (sorted by name): the explicit ones in order, a cluster in the first that selects
 * it, then {@link UNPARTITIONED} for the rest; else one partition ("all") below autoPartitionThreshold clusters
 * or with autoPartitionSize 0, else chunks of autoPartitionSize clusters ("auto-1", "auto-2", ...), at most {@link MAX_AUTO_PARTITIONS}.
 */
export function partitionsOf(clusters: readonly RolloutCluster[], strategy: RolloutStrategy, where: string): Partition[] {
  const sorted = [...clusters].sort((a, b) => a.name.localeCompare(b.name));
  const prefix = 'spec.rolloutStrategy';
  const partitionMax = (count: number, value: unknown, field: string) =>
    limitOf(value, strategy.maxUnavailable ?? ROLLOUT_DEFAULTS.maxUnavailable, field, where, count);
  if (strategy.partitions && strategy.partitions.length > 0) {
    const placed = new Set<string>();
    const out: Partition[] = strategy.partitions.map((p, i) => {
      const members = sorted.filter((c) => !placed.has(c.name) && matchTarget(p, c));
      for (const c of members) placed.add(c.name);
      return {
        name: p.name ?? `partition-${i + 1}`,
        clusters: members,
        maxUnavailable: partitionMax(members.length, p.maxUnavailable, `${prefix}.partitions[${i}].maxUnavailable`),
      };
    });
    const rest = sorted.filter((c) => !placed.has(c.name));
    if (rest.length > 0) out.push({ name: UNPARTITIONED, clusters: rest, maxUnavailable: partitionMax(rest.length, undefined, `${prefix}.maxUnavailable`) });
    return out;
  }
  const size = parseLimit(strategy.autoPartitionSize ?? ROLLOUT_DEFAULTS.autoPartitionSize, `${prefix}.autoPartitionSize`, where);
  const threshold = strategy.autoPartitionThreshold ?? ROLLOUT_DEFAULTS.autoPartitionThreshold;
  if (('count' in size && size.count === 0) || sorted.length < threshold) {
    return [{ name: 'all', clusters: sorted, maxUnavailable: partitionMax(sorted.length, undefined, `${prefix}.maxUnavailable`) }];
  }
  // At most MAX_AUTO_PARTITIONS: each has a line in the Bundle's status, which must not grow with the clusters.
  const chunk = Math.max(1, resolveLimit(size, sorted.length), Math.ceil(sorted.length / MAX_AUTO_PARTITIONS));
  const out: Partition[] = [];
  for (let i = 0; i < sorted.length; i += chunk) {
    const members = sorted.slice(i, i + chunk);
    out.push({ name: `auto-${out.length + 1}`, clusters: members, maxUnavailable: partitionMax(members.length, undefined, `${prefix}.maxUnavailable`) });
  }
  return out;
}

const available = (c: RolloutCluster): boolean => c.current?.applied === true && c.current.ready;
const upToDate = (c: RolloutCluster) => c.current?.isNew === true && available(c);

/**
 * The version a new rollout replaces: the previous rollout's version when it completed, the version that
 * rollout replaced when it did not, else `fallback` (inferred by the caller from what the clusters run).
 */
export function previousOf(prior: RolloutStatus | undefined, fallback: number | undefined): number | undefined {
  if (!prior) return fallback;
  return (prior.phase === RolloutPhase.Complete ? prior.version : prior.previousVersion) ?? fallback;
}

/** Plans one pass; see the module comment. Throws a StallingError naming the field of an invalid strategy. */
export function planRollout(input: RolloutInput): RolloutPlan {
  const decisions = new Map<string, Decision>();
  let free: RolloutCluster[] = [];
  for (const c of input.clusters) {
    if (c.pinned !== undefined) decisions.set(c.name, { kind: 'pin', version: c.pinned, reason: 'rollback' });
    else free.push(c);
  }
  const atomic = input.atomic
    ? atomicDecisions(
        free.map((c) => ({ name: c.name, ...c.atomic })),
        input.revision,
        input.retained,
        input.version,
      )
    : undefined;
  if (atomic) {
    for (const [name, version] of atomic.pins) decisions.set(name, { kind: 'pin', version, reason: 'failed' });
    free = free.filter((c) => !atomic.pins.has(c.name));
  }
  const plan = planFree(free, decisions, input);
  return atomic ? { ...plan, atomic } : plan;
}

/** Plans the clusters neither spec.rollback nor helm.atomic pins. */
function planFree(free: RolloutCluster[], decisions: Map<string, Decision>, input: RolloutInput): RolloutPlan {
  const strategy = input.strategy;
  if (!strategy) {
    for (const c of free) decisions.set(c.name, { kind: 'new' });
    return { decisions };
  }
  const partitions = partitionsOf(free, strategy, input.where);
  const same = input.prior?.revision === input.revision ? input.prior : undefined;
  const base: RolloutStatus = {
    revision: input.revision,
    ...(input.version !== undefined ? { version: input.version } : {}),
    ...optional('previousVersion', same ? same.previousVersion : previousOf(input.prior, input.previousVersion)),
    phase: same?.phase ?? RolloutPhase.Progressing,
    ...(same?.message ? { message: same.message } : {}),
    partitions: [],
  };
  if (base.phase === RolloutPhase.Halted || base.phase === RolloutPhase.RolledBack) return settled(partitions, base, same, decisions);
  return progress(partitions, strategy, base, same, decisions, input);
}

function optional<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}

/** Counts of one partition, for its status. */
function counts(p: Partition): Pick<PartitionStatus, 'count' | 'maxUnavailable' | 'unavailable' | 'upToDate' | 'offline' | 'names'> {
  const online = p.clusters.filter((c) => !c.offline);
  const behind = online.filter((c) => !upToDate(c));
  const offline = p.clusters.length - online.length;
  return {
    count: p.clusters.length,
    maxUnavailable: p.maxUnavailable,
    unavailable: behind.length,
    upToDate: online.length - behind.length,
    ...(offline ? { offline } : {}),
    ...(behind.length ? { names: behind.slice(0, 5).map((c) => c.name) } : {}),
  };
}

/** A halted or rolled-back rollout: nothing moves forward until the revision changes. */
function settled(partitions: Partition[], base: RolloutStatus, prior: RolloutStatus | undefined, decisions: Map<string, Decision>): RolloutPlan {
  const rollback = base.phase === RolloutPhase.RolledBack && base.previousVersion !== undefined;
  for (const p of partitions) {
    const was = prior?.partitions.find((s) => s.name === p.name);
    const started = was?.startedAt !== undefined;
    for (const c of p.clusters) {
      if (rollback && started && c.current?.isNew) decisions.set(c.name, { kind: 'pin', version: base.previousVersion as number, reason: 'failed' });
      else decisions.set(c.name, c.current?.isNew ? { kind: 'new' } : { kind: 'keep' });
    }
    base.partitions.push({ name: p.name, phase: was?.phase ?? PartitionPhase.Waiting, ...counts(p), ...stamps(was) });
  }
  return { decisions, status: base };
}

function stamps(was: PartitionStatus | undefined): Pick<PartitionStatus, 'startedAt' | 'succeededAt'> {
  return { ...optional('startedAt', was?.startedAt), ...optional('succeededAt', was?.succeededAt) };
}

/** A progressing (or complete) rollout: Fleet's pass over the partitions, plus soak and deadline. */
function progress(
  partitions: Partition[],
  strategy: RolloutStrategy,
  base: RolloutStatus,
  prior: RolloutStatus | undefined,
  decisions: Map<string, Decision>,
  input: RolloutInput,
): RolloutPlan {
  const now = input.now.getTime();
  const total = partitions.reduce((n, p) => n + p.clusters.length, 0);
  const prefix = 'spec.rolloutStrategy';
  const globalMax = Math.max(1, limitOf(strategy.maxUnavailable, ROLLOUT_DEFAULTS.maxUnavailable, `${prefix}.maxUnavailable`, input.where, total));
  const maxParts = limitOf(
    strategy.maxUnavailablePartitions,
    ROLLOUT_DEFAULTS.maxUnavailablePartitions,
    `${prefix}.maxUnavailablePartitions`,
    input.where,
    partitions.length,
  );
  const maxNew = strategy.maxNew ?? ROLLOUT_DEFAULTS.maxNew;
  const soakMs = parseDurationMs(strategy.minSuccessTime ?? '0s') ?? 0;
  const deadlineMs = strategy.deadline ? parseDurationMs(strategy.deadline) : undefined;
  const complete = base.phase === RolloutPhase.Complete;
  let unavailable = partitions.reduce((n, p) => n + p.clusters.filter((c) => !c.offline && c.current && !available(c)).length, 0);
  let created = 0;
  let heldNew = false;
  let unavailableParts = 0;
  let stopped = false;
  const wakeups: number[] = [];
  const failed: string[] = [];
  for (const p of partitions) {
    const was = prior?.partitions.find((s) => s.name === p.name);
    if (stopped) {
      for (const c of p.clusters) decisions.set(c.name, c.current?.isNew ? { kind: 'new' } : { kind: 'keep' });
      base.partitions.push({ name: p.name, phase: PartitionPhase.Waiting, ...counts(p), ...stamps(was) });
      continue;
    }
    const startedAt = was?.startedAt ? Date.parse(was.startedAt) : now;
    let partUnavailable = p.clusters.filter((c) => !c.offline && c.current && !available(c)).length;
    const partBudget = Math.max(1, p.maxUnavailable);
    for (const c of p.clusters) {
      if (!c.current) {
        if (created < maxNew) {
          created += 1;
          decisions.set(c.name, { kind: 'new' });
        } else {
          heldNew = true;
          decisions.set(c.name, { kind: 'keep' });
        }
        continue;
      }
      if (c.current.isNew || complete) {
        decisions.set(c.name, { kind: 'new' });
        continue;
      }
      const down = c.offline || !available(c);
      if (down || (unavailable < globalMax && partUnavailable < partBudget)) {
        decisions.set(c.name, { kind: 'new' });
        if (!down) {
          unavailable += 1;
          partUnavailable += 1;
        }
      } else decisions.set(c.name, { kind: 'keep' });
    }
    // Within tolerance: at most maxUnavailable online clusters not up to date (clusters just updated are not).
    const behind = p.clusters.filter((c) => !c.offline && !(upToDate(c) && decisions.get(c.name)?.kind === 'new')).length;
    const status: PartitionStatus = { name: p.name, phase: PartitionPhase.Rolling, ...counts(p), startedAt: new Date(startedAt).toISOString() };
    if (complete || behind <= p.maxUnavailable) {
      const since = was?.succeededAt ? Date.parse(was.succeededAt) : now;
      status.succeededAt = new Date(since).toISOString();
      status.phase = complete || now >= since + soakMs ? PartitionPhase.Done : PartitionPhase.Soaking;
      if (status.phase === PartitionPhase.Soaking) wakeups.push(since + soakMs);
    } else if (deadlineMs !== undefined && now >= startedAt + deadlineMs) {
      status.phase = PartitionPhase.Failed;
      failed.push(p.name);
    } else if (deadlineMs !== undefined) wakeups.push(startedAt + deadlineMs);
    base.partitions.push(status);
    if (status.phase !== PartitionPhase.Done) unavailableParts += 1;
    if (unavailableParts > maxParts) stopped = true;
  }
  if (failed.length > 0) return fail(partitions, strategy, base, decisions, failed, input);
  const waiting = base.partitions.find((s) => s.phase !== PartitionPhase.Done);
  base.phase = complete || !waiting ? RolloutPhase.Complete : RolloutPhase.Progressing;
  if (base.phase === RolloutPhase.Complete) delete base.message;
  else
    base.message = `partition ${waiting?.name ?? ''} ${waiting?.phase === PartitionPhase.Soaking ? 'soaks (minSuccessTime)' : `has ${waiting?.unavailable ?? 0} of ${waiting?.count ?? 0} cluster(s) not up to date (tolerates ${waiting?.maxUnavailable ?? 0})`}`;
  if (heldNew) wakeups.push(now + MAX_NEW_REQUEUE_MS);
  const next = Math.min(...wakeups);
  return { decisions, status: base, ...(Number.isFinite(next) ? { requeueAfterMs: Math.max(0, next - now) + 100 } : {}) };
}

/** A partition failed in this pass: halt, or roll the started partitions back when a retained previous version exists. */
function fail(
  partitions: Partition[],
  strategy: RolloutStrategy,
  base: RolloutStatus,
  decisions: Map<string, Decision>,
  failed: string[],
  input: RolloutInput,
): RolloutPlan {
  const wantsRollback = strategy.onFailure === OnFailure.Rollback;
  const previous = base.previousVersion;
  const canRollback = wantsRollback && previous !== undefined && input.retained.includes(previous);
  const why = `partition ${failed.join(', ')} not within tolerance after deadline ${strategy.deadline ?? ''}`;
  let message = `halted: ${why}; fix the version in git (a new commit starts a new rollout)`;
  if (canRollback) message = `rolled back: ${why}; the started partitions run v${previous} again, a new commit starts a new rollout`;
  else if (wantsRollback) {
    message = `halted: ${why}; onFailure rollback impossible: ${previous === undefined ? 'no previous version (first rollout, or etcd mode)' : `v${previous} is no longer retained`}`;
  }
  const settledStatus: RolloutStatus = { ...base, phase: canRollback ? RolloutPhase.RolledBack : RolloutPhase.Halted, message, partitions: [] };
  return settled(partitions, settledStatus, base, decisions);
}

/**
 * The Bundle's Ready verdict while a staged rollout is not complete: False, Progressing (Reconciling) while it
 * moves, RolloutFailed once halted or rolled back, with the rollout's message. Undefined otherwise (the
 * BundleDeployments decide).
 */
export function rolloutReadiness(rollout: RolloutStatus | undefined): Exclude<Readiness, 'unchanged'> | undefined {
  if (!rollout || rollout.phase === RolloutPhase.Complete) return undefined;
  const progressing = rollout.phase === RolloutPhase.Progressing;
  return {
    status: 'False',
    reason: progressing ? Reason.Progressing : Reason.RolloutFailed,
    message: `rollout ${rollout.version !== undefined ? `of v${rollout.version} ` : ''}${progressing ? 'in progress: ' : ''}${rollout.message ?? ''}`.slice(
      0,
      1024,
    ),
    progressing,
  };
}
