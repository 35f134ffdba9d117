/**
 * fleet.yaml `helm.atomic: true` (Helm's `--atomic`: a failed upgrade is rolled back), as the rollout planner
 * honours it, per cluster. Pure: the planner (controller/rollout.ts) calls {@link atomicDecisions} first; the
 * Bundle reconciler's side (controller/rollout-targets.ts) remembers what it needs on each BundleDeployment:
 * - {@link AtomicAnnotation.Previous}: the version the cluster ran before it moved to the newest one;
 * - {@link AtomicAnnotation.RolledBack}: set when the cluster was rolled back, naming the revision that failed
 *   there and why, so the next pass keeps it back instead of flipping to the failing version again.
 *
 * A cluster whose BundleDeployment is at the newest version and reports that version failed (Deployed False for
 * the current generation: a failed apply, or `ReadyTimeout` after `helm.timeoutSeconds`) is pinned to its
 * previous version while that version is still retained (OCI storage). It stays there until the revision changes
 * (a new commit, options or forceSyncGeneration). Without a retained previous version (its first version, etcd
 * mode, or the version was cleaned up) it stays on the failing version and the Bundle says why. A version is the
 * bundle's contents: going back pins the previous contents with the current options (as `spec.rollback` does),
 * so a failure caused by options alone (fleet.yaml `helm.values`) is not undone; the Bundle says so.
 */

/** Annotations on BundleDeployments of bundles with `helm.atomic: true`. */
export const AtomicAnnotation = {
  /** The version (a number) the cluster ran before the newest version: where a failure returns it to. */
  Previous: 'flotilla.dev/atomic-previous-version',
  /** JSON {@link AtomicRollback}: the cluster was rolled back from `revision`. */
  RolledBack: 'flotilla.dev/atomic-rolled-back',
} as const;

/** What {@link AtomicAnnotation.RolledBack} records. */
export interface AtomicRollback {
  /** The revision (see rolloutRevision) that failed on the cluster. */
  revision: string;
  /** The failing version, when known, and the one the cluster returned to. */
  from?: number | undefined;
  to: number;
  /** The failure the agent reported (Deployed condition reason and message, shortened). */
  reason: string;
  message: string;
}

/** A cluster as atomic sees it. */
export interface AtomicCluster {
  name: string;
  /** Its BundleDeployment is at the newest version and the agent reports that version failed (reason, message). */
  failed?: { reason: string; message: string } | undefined;
  /** The version it ran before the newest. */
  previous?: number | undefined;
  /** It was rolled back (for some revision). */
  rolledBack?: AtomicRollback | undefined;
}

/** What atomic decides for a pass. */
export interface AtomicPlan {
  /** Clusters pinned to an older version, with it. */
  pins: Map<string, number>;
  /** Clusters that failed but cannot go back, with why. */
  stuck: Map<string, string>;
}

/**
 * Pins failing clusters back (see the module comment). `retained`: versions still stored; `newest`: the version
 * rolled out (a previous version with the same contents cannot undo a change of options alone).
 */
export function atomicDecisions(clusters: readonly AtomicCluster[], revision: string, retained: readonly number[], newest?: number): AtomicPlan {
  const plan: AtomicPlan = { pins: new Map(), stuck: new Map() };
  for (const c of clusters) {
    if (c.rolledBack?.revision === revision) {
      if (retained.includes(c.rolledBack.to)) plan.pins.set(c.name, c.rolledBack.to);
      else plan.stuck.set(c.name, `v${c.rolledBack.to} it was rolled back to is no longer retained`);
      continue;
    }
    if (!c.failed) continue;
    if (c.previous === undefined) plan.stuck.set(c.name, 'no previous version ran there (first version, or etcd mode)');
    else if (c.previous === newest)
      plan.stuck.set(c.name, `it ran the same contents (v${c.previous}) before: only options changed, which a version rollback cannot undo`);
    else if (!retained.includes(c.previous)) plan.stuck.set(c.name, `its previous version v${c.previous} is no longer retained`);
    else plan.pins.set(c.name, c.previous);
  }
  return plan;
}

/** Reads {@link AtomicAnnotation.RolledBack}; undefined when absent or not what this module wrote. */
export function parseAtomicRollback(value: string | undefined): AtomicRollback | undefined {
  if (!value) return undefined;
  try {
    const v = JSON.parse(value) as Partial<AtomicRollback>;
    if (typeof v.revision !== 'string' || typeof v.to !== 'number') return undefined;
    return {
      revision: v.revision,
      to: v.to,
      reason: String(v.reason ?? ''),
      message: String(v.message ?? ''),
      ...(typeof v.from === 'number' ? { from: v.from } : {}),
    };
  } catch {
    return undefined;
  }
}

/** Reads {@link AtomicAnnotation.Previous}. */
export function parseAtomicPrevious(value: string | undefined): number | undefined {
  const n = value === undefined ? Number.NaN : Number(value);
  return Number.isInteger(n) && n > 0 ? n : undefined;
}

/** The Bundle's summary of clusters rolled back in this pass (at most 10 names) and of those that could not go back. */
export function atomicMessage(rolledBack: readonly { cluster: string; rollback: AtomicRollback }[], stuck: ReadonlyMap<string, string>): string {
  const parts: string[] = [];
  if (rolledBack.length > 0) {
    const first = rolledBack[0]?.rollback;
    const names = rolledBack.map((r) => r.cluster).sort();
    parts.push(
      `helm.atomic: ${names.length} cluster(s) rolled back${first?.from !== undefined ? ` from v${first.from}` : ''} to v${first?.to ?? '?'} ` +
        `(${names.slice(0, 10).join(', ')}${names.length > 10 ? ', ...' : ''}): ${first?.reason ?? ''}: ${first?.message ?? ''}; ` +
        'they stay there until a new commit, options or forceSyncGeneration',
    );
  }
  if (stuck.size > 0) {
    const [name, why] = [...stuck.entries()].sort(([a], [b]) => a.localeCompare(b))[0] ?? ['', ''];
    parts.push(`helm.atomic: ${stuck.size} failed cluster(s) not rolled back (${name}: ${why})`);
  }
  return parts.join('; ').slice(0, 1024);
}
