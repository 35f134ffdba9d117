import { STATUS_TARGET_BYTES, jsonBytes } from '../controller/status-bounds.js';
import { syntheticStatuses } from '../controller/status-synthetic.js';

/**
 * Rolled-up status size: the Bundle, GitRepo and ClusterGroup statuses the controller's own roll-up
 * functions compute for a synthetic fleet of N clusters (controller/status-synthetic.ts: every bundle state,
 * each failure with long messages, 20 modified or non-ready resources, big drift patches, a full history and
 * a staged rollout), serialized as the API server stores them (JSON). No cluster needed: the size depends
 * only on what the roll-up keeps, which is what the target bounds.
 */

/** The sizes at one cluster count. */
export interface StatusSize {
  clusters: number;
  bundleBytes: number;
  gitRepoBytes: number;
  clusterGroupBytes: number;
  /** Non-ready entries listed in the Bundle summary, and how many clusters are not ready. */
  listed: number;
  notReady: number;
  targetBytes: number;
}

/** Measures the statuses at each cluster count. */
export async function benchStatusSize(clusterCounts: readonly number[]): Promise<StatusSize[]> {
  return clusterCounts.map((clusters) => {
    const s = syntheticStatuses(clusters);
    const summary = s.bundle.summary;
    return {
      clusters,
      bundleBytes: jsonBytes(s.bundle),
      gitRepoBytes: jsonBytes(s.gitRepo),
      clusterGroupBytes: jsonBytes(s.clusterGroup),
      listed: summary?.nonReadyResources?.length ?? 0,
      notReady: (summary?.desiredReady ?? 0) - (summary?.ready ?? 0),
      targetBytes: STATUS_TARGET_BYTES,
    };
  });
}
