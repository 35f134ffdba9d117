import {
  type BundleState,
  MAX_RESOURCE_STATUS_ITEMS,
  MAX_SUMMARY_DETAIL_ITEMS,
  MAX_SUMMARY_MESSAGE,
  PartitionPhase,
  type BundleDeploymentStatus,
  type NonReadyResource,
  type RolloutStatus,
} from '../lib/api/index.js';

/**
 * Bounds on the statuses that roll up many clusters (Bundle, GitRepo, ClusterGroup): exact counts, and a
 * short list of what is not ready and why, whose size does not grow with the number of clusters. The
 * per-cluster detail (every resource, drift patches, full messages) stays on the BundleDeployments.
 */

/** The size a rolled-up status must stay under, at any number of clusters (issue 19). */
export const STATUS_TARGET_BYTES = 8 * 1024;

/** JSON bytes `summary.nonReadyResources` may take; entries past it are dropped (and counted in "and N more"). */
export const NON_READY_BUDGET_BYTES = 2 * 1024;

/** `text` cut to at most `max` characters, an ellipsis marking the cut. */
export function clip(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, Math.max(0, max - 1))}…`;
}

/** " and N more" when `total` exceeds `shown`, else the empty string. */
export function andMore(shown: number, total: number): string {
  return total > shown ? ` and ${total - shown} more` : '';
}

/** Serialized size of `value` in bytes (as the API server stores a custom resource: JSON). */
export function jsonBytes(value: unknown): number {
  return value === undefined ? 0 : Buffer.byteLength(JSON.stringify(value));
}

type ResourceId = { apiVersion: string; kind: string; name: string; namespace?: string | undefined };

const idOf = (r: ResourceId): ResourceId => ({
  apiVersion: clip(r.apiVersion, 253),
  kind: clip(r.kind, 63),
  name: clip(r.name, 253),
  ...(r.namespace !== undefined ? { namespace: clip(r.namespace, 63) } : {}),
});

/**
 * One entry of a bounded non-ready list: the name, the state, the message cut to
 * {@link MAX_SUMMARY_MESSAGE}, and at most {@link MAX_SUMMARY_DETAIL_ITEMS} modified and non-ready
 * resources (without drift patches, which stay on the BundleDeployment).
 */
export function nonReadyEntry(name: string, state: BundleState, message: string | undefined, status?: BundleDeploymentStatus): NonReadyResource {
  const modified = (status?.modifiedStatus ?? []).slice(0, MAX_SUMMARY_DETAIL_ITEMS).map((m) => ({
    ...idOf(m),
    ...(m.missing !== undefined ? { missing: m.missing } : {}),
    ...(m.delete !== undefined ? { delete: m.delete } : {}),
  }));
  const nonReady = (status?.nonReadyStatus ?? []).slice(0, MAX_SUMMARY_DETAIL_ITEMS).map((r) => ({
    ...idOf(r),
    summary: {
      state: clip(r.summary.state, 64),
      ...(r.summary.message ? { message: clip(r.summary.message, MAX_SUMMARY_MESSAGE) } : {}),
      ...(r.summary.error !== undefined ? { error: r.summary.error } : {}),
      ...(r.summary.transitioning !== undefined ? { transitioning: r.summary.transitioning } : {}),
    },
  }));
  return {
    name: clip(name, 253),
    bundleState: state,
    ...(message ? { message: clip(message, MAX_SUMMARY_MESSAGE) } : {}),
    ...(modified.length ? { modifiedStatus: modified } : {}),
    ...(nonReady.length ? { nonReadyStatus: nonReady } : {}),
  };
}

/**
 * The longest prefix of `entries` (at most {@link MAX_RESOURCE_STATUS_ITEMS}) whose JSON fits `budget`
 * bytes; the first entry is always kept, stripped of its resource lists if it alone does not fit.
 */
export function fitNonReady(entries: readonly NonReadyResource[], budget: number = NON_READY_BUDGET_BYTES): NonReadyResource[] {
  const out: NonReadyResource[] = [];
  let used = 2;
  for (const e of entries.slice(0, MAX_RESOURCE_STATUS_ITEMS)) {
    const bytes = jsonBytes(e) + 1;
    if (used + bytes > budget) {
      if (out.length === 0) out.push({ name: e.name, bundleState: e.bundleState, ...(e.message ? { message: e.message } : {}) });
      break;
    }
    out.push(e);
    used += bytes;
  }
  return out;
}

/**
 * Collects the non-ready entries of a roll-up in bounded memory: up to {@link MAX_RESOURCE_STATUS_ITEMS}
 * per state, then the worst states first (an error on one cluster is listed before a thousand clusters that
 * are still applying), in the order they were added within a state.
 */
export class NonReadyCollector {
  private readonly byState = new Map<BundleState, NonReadyResource[]>();

  /** True when an entry of `state` would still be kept (so the caller can skip building it). */
  wants(state: BundleState): boolean {
    return (this.byState.get(state)?.length ?? 0) < MAX_RESOURCE_STATUS_ITEMS;
  }

  /** Adds an entry (ignored once its state holds {@link MAX_RESOURCE_STATUS_ITEMS}). */
  add(entry: NonReadyResource): void {
    const list = this.byState.get(entry.bundleState) ?? [];
    if (list.length < MAX_RESOURCE_STATUS_ITEMS) list.push(entry);
    this.byState.set(entry.bundleState, list);
  }

  /** The bounded list, worst state first, within {@link NON_READY_BUDGET_BYTES}. */
  list(worstFirst: readonly BundleState[]): NonReadyResource[] {
    return fitNonReady(worstFirst.flatMap((s) => this.byState.get(s) ?? []));
  }
}

/**
 * The rollout status as the Bundle shows it: unavailable cluster names only on the partitions where they
 * matter now (Rolling, Soaking, Failed); a Waiting partition has all its clusters behind and a Done one is
 * within tolerance, so their counts say it all. The planner reads back only phases and timestamps.
 */
export function boundRollout(rollout: RolloutStatus | undefined): RolloutStatus | undefined {
  if (!rollout) return undefined;
  const partitions = rollout.partitions.map((p) => {
    if (p.phase !== PartitionPhase.Waiting && p.phase !== PartitionPhase.Done) return p;
    const { names: _names, ...rest } = p;
    return rest;
  });
  return { ...rollout, partitions };
}
