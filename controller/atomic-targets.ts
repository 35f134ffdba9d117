import { ConditionType, Reason, getCondition, type BundleDeployment, type BundleVersionEntry } from '../lib/api/index.js';
import { AtomicAnnotation, parseAtomicPrevious, parseAtomicRollback, type AtomicCluster, type AtomicRollback } from './atomic.js';
import { contentsOfDeploymentID, versionOf } from './history.js';
import type { RolloutTarget } from './rollout-targets.js';

/**
 * The Bundle reconciler's side of helm.atomic (controller/atomic.ts): reads the planner's input from a
 * BundleDeployment and writes what the next pass needs back onto the desired one, as annotations.
 */

/** A cluster rolled back in this pass, for the Bundle's message. */
export interface AtomicRolledBack {
  cluster: string;
  rollback: AtomicRollback;
}

/** The failure the agent reports for `bd`'s current spec: Deployed False for its generation (not paused). */
function failureOf(bd: BundleDeployment & { metadata?: { generation?: number | undefined } }): AtomicCluster['failed'] {
  const deployed = getCondition(bd.status?.conditions, ConditionType.Deployed);
  if (deployed?.status !== 'False' || deployed.reason === Reason.Paused) return undefined;
  const generation = bd.metadata?.generation;
  if (deployed.observedGeneration !== undefined && generation !== undefined && deployed.observedGeneration !== generation) return undefined;
  return { reason: deployed.reason ?? 'Failed', message: (deployed.message ?? '').slice(0, 300) };
}

/** What the planner needs of a cluster's BundleDeployment `bd` (`isNew`: its spec is the newest version). */
export function atomicState(bd: BundleDeployment, isNew: boolean): Omit<AtomicCluster, 'name'> {
  const annotations = (bd as { metadata?: { annotations?: Record<string, string> | undefined } }).metadata?.annotations ?? {};
  const failed = isNew ? failureOf(bd) : undefined;
  const previous = parseAtomicPrevious(annotations[AtomicAnnotation.Previous]);
  const rolledBack = parseAtomicRollback(annotations[AtomicAnnotation.RolledBack]);
  return { ...(failed ? { failed } : {}), ...(previous !== undefined ? { previous } : {}), ...(rolledBack ? { rolledBack } : {}) };
}

function annotate(t: RolloutTarget, key: string, value: string | undefined): void {
  const { [key]: _old, ...rest } = t.desired.metadata.annotations ?? {};
  const next = value === undefined ? rest : { ...rest, [key]: value };
  if (Object.keys(next).length > 0) t.desired.metadata.annotations = next;
  else delete t.desired.metadata.annotations;
}

/**
 * A target the planner pinned back: records (or keeps) why on its desired BundleDeployment. `newest`: the
 * failing version.
 */
export function atomicOnPin(t: RolloutTarget, bd: BundleDeployment | undefined, revision: string, newest: number | undefined): AtomicRolledBack {
  const state = bd ? atomicState(bd, false) : {};
  const failed = bd ? failureOf(bd) : undefined;
  const to = state.rolledBack?.revision === revision ? state.rolledBack.to : (state.previous ?? 0);
  const rollback: AtomicRollback =
    state.rolledBack?.revision === revision
      ? state.rolledBack
      : { revision, ...(newest !== undefined ? { from: newest } : {}), to, reason: failed?.reason ?? 'Failed', message: failed?.message ?? '' };
  annotate(t, AtomicAnnotation.Previous, undefined);
  annotate(t, AtomicAnnotation.RolledBack, JSON.stringify(rollback));
  return { cluster: t.cluster, rollback };
}

/**
 * A target that gets the newest version: remembers the version it ran before (the one its agent applied when
 * it moves forward, else what the BundleDeployment already records), and forgets an older rollback.
 */
export function atomicOnNew(t: RolloutTarget, bd: BundleDeployment | undefined, history: readonly BundleVersionEntry[]): void {
  annotate(t, AtomicAnnotation.RolledBack, undefined);
  if (!bd) return;
  let previous: number | undefined;
  if (bd.spec.deploymentID === t.desired.spec.deploymentID) previous = atomicState(bd, true).previous;
  else {
    const contents = contentsOfDeploymentID(bd.status?.appliedDeploymentID);
    previous = contents ? versionOf(history, contents, bd.spec.oci?.digest) : undefined;
  }
  annotate(t, AtomicAnnotation.Previous, previous === undefined ? undefined : String(previous));
}

/** Whether `existing` has the atomic annotations `desired` wants (so the BundleDeployment need not be written again). */
export function atomicAnnotationsMatch(
  existing: { metadata: { annotations?: Record<string, string> | undefined } },
  desired: { metadata: { annotations?: Record<string, string> | undefined } },
): boolean {
  return Object.values(AtomicAnnotation).every((k) => existing.metadata.annotations?.[k] === desired.metadata.annotations?.[k]);
}
