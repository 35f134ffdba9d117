import { createHash } from 'node:crypto';
import {
  ConditionType,
  Label,
  Reason,
  getCondition,
  type Bundle,
  type BundleDeployment,
  type BundleDeploymentSpec,
  type BundleVersionEntry,
  type RolloutStatus,
} from '../lib/api/index.js';
import { canonicalJSON } from '../lib/util/json.js';
import { checkRolloutStrategy } from '../lib/api/rollout.js';
import type { ClusterInfo } from '../lib/bundle/target.js';
import { MAX_ROLLBACK_NAMES } from '../lib/api/index.js';
import { contentsOfDeploymentID, resolveRollback, rolledBackSpec, versionOf, type RollbackStatus } from './history.js';
import { planRollout, type Decision, type RolloutCluster } from './rollout.js';
import { atomicState, atomicOnPin, atomicOnNew, type AtomicRolledBack } from './atomic-targets.js';
import { atomicMessage } from './atomic.js';
import { rehomeSpec, type KeptContents } from './migrate-versions.js';

/**
 * The Bundle reconciler's side of the rollout planner (controller/rollout.ts): builds the planner's input from
 * the targets and their BundleDeployments, and applies its decisions to the targets (the newest spec, the one
 * the BundleDeployment has, or an older version's digest). `spec.rollback` is resolved here and pinned by the
 * planner, so one place decides which version each cluster's BundleDeployment gets.
 */

/** Parts of a Bundle read here. */
type BundleLike = Pick<Bundle, 'spec' | 'status'> & { metadata: { name: string; namespace?: string | undefined; generation?: number | undefined } };

/** A target of the Bundle reconciler, as far as the rollout changes it. */
export interface RolloutTarget {
  cluster: string;
  labels?: Record<string, string> | undefined;
  /** The groups of the cluster (for partitions by clusterGroup). */
  groups: ClusterInfo['groups'];
  /** Its agent missed its heartbeats (Cluster Ready False, AgentNotSeen). */
  offline: boolean;
  desired: { metadata: { labels?: Record<string, string> | undefined; annotations?: Record<string, string> | undefined }; spec: BundleDeploymentSpec };
  /** Set when the target gets no BundleDeployment in this pass (not created yet: maxNew, or its partition waits). */
  skip?: boolean;
}

/** What the targets got. */
export interface RolloutOutcome {
  rollback?: RollbackStatus;
  rollout?: RolloutStatus;
  requeueAfterMs?: number;
  /** helm.atomic: which clusters were rolled back, or could not be, and why (empty: none). */
  atomic?: string;
}

/** Whether a Cluster's agent is offline: its Ready condition says the agent missed its heartbeats. */
export function clusterOffline(cluster: {
  status?: { conditions?: { type: string; status: string; reason?: string | undefined }[] | undefined } | undefined;
}): boolean {
  const ready = getCondition(cluster.status?.conditions as Parameters<typeof getCondition>[0], ConditionType.Ready);
  return ready?.status === 'False' && ready.reason === Reason.AgentNotSeen;
}

/** What is rolled out: the contents and everything else that changes the BundleDeployments (options, targets, forceSyncGeneration). */
export function rolloutRevision(spec: Bundle['spec']): string {
  const { rollback: _r, rolloutStrategy: _s, paused: _p, oci: _o, resources: _res, ...rest } = spec;
  return `${spec.contentsID ?? 'unknown'}:${createHash('sha256').update(canonicalJSON(rest)).digest('hex').slice(0, 16)}`;
}

function isReady(bd: BundleDeployment): boolean {
  return bd.status?.ready === true || getCondition(bd.status?.conditions, ConditionType.Ready)?.status === 'True';
}

/** The version most clusters not on the newest one run (by applied contents), for a first rollout with a strategy. */
function inferPrevious(history: readonly BundleVersionEntry[], olds: readonly BundleDeployment[]): number | undefined {
  const votes = new Map<number, number>();
  for (const bd of olds) {
    const contents = contentsOfDeploymentID(bd.status?.appliedDeploymentID);
    const v = contents ? versionOf(history, contents, bd.spec.oci?.digest) : undefined;
    if (v !== undefined) votes.set(v, (votes.get(v) ?? 0) + 1);
  }
  return [...votes.entries()].sort(([va, a], [vb, b]) => b - a || vb - va)[0]?.[0];
}

/**
 * Resolves `spec.rollback`, plans the pass and applies the decisions to `targets` (their desired spec and the
 * RolledBackTo label; `skip` for a target that gets no BundleDeployment yet). `existing(t)` is the target's
 * BundleDeployment now. Throws (InvalidRollback, InvalidBundle naming spec.rolloutStrategy.<field>) before
 * changing any target.
 */
export function planTargets<T extends RolloutTarget>(
  bundle: BundleLike,
  targets: T[],
  existing: (t: T) => BundleDeployment | undefined,
  now: Date,
  contents?: KeptContents,
): RolloutOutcome {
  const where = `Bundle ${bundle.metadata.namespace ?? ''}/${bundle.metadata.name}`;
  checkRolloutStrategy(bundle.spec.rolloutStrategy, 'spec.rolloutStrategy', where);
  const rollback = resolveRollback(
    bundle,
    targets.map((t) => t.labels ?? {}),
  );
  const history = bundle.status?.history ?? [];
  const olds: BundleDeployment[] = [];
  const clusters: RolloutCluster[] = targets.map((t) => {
    const bd = existing(t);
    const isNew = bd?.spec.deploymentID === t.desired.spec.deploymentID;
    if (bd && !isNew) olds.push(bd);
    return {
      name: t.cluster,
      labels: t.labels ?? {},
      groups: t.groups,
      offline: t.offline,
      ...(bd ? { current: { isNew, applied: bd.status?.appliedDeploymentID === bd.spec.deploymentID, ready: isReady(bd) } } : {}),
      ...(rollback?.selects(t.labels ?? {}) ? { pinned: rollback.entry.version } : {}),
      ...(t.desired.spec.options?.helm?.atomic === true && bd ? { atomic: atomicState(bd, isNew) } : {}),
    };
  });
  const plan = planRollout({
    clusters,
    strategy: bundle.spec.rolloutStrategy,
    revision: rolloutRevision(bundle.spec),
    version: history.find((e) => e.digest === bundle.spec.oci?.digest)?.version,
    previousVersion: inferPrevious(history, olds),
    retained: history.map((e) => e.version),
    prior: bundle.status?.rollout,
    now,
    where,
    atomic: targets.some((t) => t.desired.spec.options?.helm?.atomic === true),
  });
  const pinnedByRollback: string[] = [];
  const atomicRolledBack: AtomicRolledBack[] = [];
  for (const t of targets) {
    const decision: Decision = plan.decisions.get(t.cluster) ?? { kind: 'new' };
    const bd = existing(t);
    applyDecision(t, decision, bd, history, contents);
    if (decision.kind === 'pin' && decision.reason === 'rollback') pinnedByRollback.push(t.cluster);
    if (t.desired.spec.options?.helm?.atomic !== true) continue;
    const newest = history.find((e) => e.digest === bundle.spec.oci?.digest)?.version;
    if (plan.atomic?.pins.has(t.cluster)) atomicRolledBack.push(atomicOnPin(t, bd, rolloutRevision(bundle.spec), newest));
    else if (decision.kind === 'new') atomicOnNew(t, bd, history);
  }
  const atomic = plan.atomic ? atomicMessage(atomicRolledBack, plan.atomic.stuck) : '';
  const outcome: RolloutOutcome = {};
  if (rollback) {
    const newest = history.find((e) => e.digest === bundle.spec.oci?.digest)?.version;
    outcome.rollback = {
      version: rollback.entry.version,
      clusters: pinnedByRollback.sort().slice(0, MAX_ROLLBACK_NAMES),
      clusterCount: pinnedByRollback.length,
      ...(newest !== undefined ? { newestVersion: newest } : {}),
    };
  }
  if (plan.status) outcome.rollout = plan.status;
  if (plan.requeueAfterMs !== undefined) outcome.requeueAfterMs = plan.requeueAfterMs;
  if (atomic) outcome.atomic = atomic;
  return outcome;
}

function applyDecision(
  t: RolloutTarget,
  decision: Decision,
  bd: BundleDeployment | undefined,
  history: readonly BundleVersionEntry[],
  contents?: KeptContents,
): void {
  if (decision.kind === 'new') return;
  if (decision.kind === 'keep') {
    // After a storage migration the kept version is read from the new storage (controller/migrate-versions.ts).
    if (bd) t.desired.spec = rehomeSpec(bd.spec, t.desired.spec, contents, history);
    else t.skip = true;
    return;
  }
  const entry = history.find((e) => e.version === decision.version);
  if (!entry) {
    if (bd) t.desired.spec = rehomeSpec(bd.spec, t.desired.spec, contents, history);
    else t.skip = true;
    return;
  }
  t.desired.spec = rolledBackSpec(t.desired.spec, entry, entry.contentsID ? contents?.get(entry.contentsID) : undefined);
  if (decision.reason === 'rollback') t.desired.metadata.labels = { ...t.desired.metadata.labels, [Label.RolledBackTo]: `v${entry.version}` };
}
