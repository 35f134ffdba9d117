import {
  BundleState, ConditionType, MAX_RESOURCE_STATUS_ITEMS, emptyBundleSummary,
  type Bundle, type BundleDeployment, type BundleSummary, type GitRepoStatus,
} from '../lib/api/index.js';

/**
 * Pure status roll-ups: BundleDeployments -> bundle state per cluster -> Bundle summary -> GitRepo.
 * Every list is bounded (MAX_RESOURCE_STATUS_ITEMS) so status size does not grow with the number of clusters.
 */

const WORST_FIRST: BundleState[] = [
  BundleState.ErrApplied, BundleState.Modified, BundleState.OutOfSync, BundleState.WaitApplied,
  BundleState.Pending, BundleState.NotReady, BundleState.Ready,
];

/** The state of one bundle on one cluster, from its BundleDeployment. */
export function bundleDeploymentState(bd: BundleDeployment): BundleState {
  const status = bd.status ?? {};
  const cond = (type: string) => status.conditions?.find((c) => c.type === type);
  if (cond(ConditionType.Deployed)?.status === 'False' && status.appliedDeploymentID !== bd.spec.deploymentID) return BundleState.ErrApplied;
  if (status.appliedDeploymentID === undefined) return BundleState.Pending;
  if (status.appliedDeploymentID !== bd.spec.deploymentID) {
    return bd.spec.paused ? BundleState.OutOfSync : BundleState.WaitApplied;
  }
  if (cond(ConditionType.Deployed)?.status === 'False') return BundleState.ErrApplied;
  // Paused with a newer version staged: applied, but not what git says (Fleet's OutOfSync).
  if (bd.spec.stagedDeploymentID !== undefined && bd.spec.stagedDeploymentID !== bd.spec.deploymentID) return BundleState.OutOfSync;
  if (status.nonModified === false) return BundleState.Modified;
  if (cond(ConditionType.Ready)?.status === 'True' || status.ready === true) return BundleState.Ready;
  return BundleState.NotReady;
}

const FIELD: Record<BundleState, keyof Omit<BundleSummary, 'nonReadyResources' | 'desiredReady'>> = {
  Ready: 'ready', NotReady: 'notReady', WaitApplied: 'waitApplied', ErrApplied: 'errApplied',
  OutOfSync: 'outOfSync', Modified: 'modified', Pending: 'pending',
};

/** Summarizes BundleDeployments; `nameOf` names an entry of the bounded non-ready list (cluster or BD). */
export function summarize(bds: readonly BundleDeployment[], nameOf: (bd: BundleDeployment) => string): BundleSummary {
  const summary = emptyBundleSummary();
  const nonReady: NonNullable<BundleSummary['nonReadyResources']> = [];
  for (const bd of bds) {
    const state = bundleDeploymentState(bd);
    summary[FIELD[state]] += 1;
    summary.desiredReady += 1;
    if (state !== BundleState.Ready && nonReady.length < MAX_RESOURCE_STATUS_ITEMS) {
      const message = bd.status?.conditions?.find((c) => c.status === 'False' && c.message)?.message;
      nonReady.push({
        name: nameOf(bd), bundleState: state,
        ...(message ? { message: message.slice(0, 4096) } : {}),
        ...(bd.status?.modifiedStatus?.length ? { modifiedStatus: bd.status.modifiedStatus.slice(0, MAX_RESOURCE_STATUS_ITEMS) } : {}),
        ...(bd.status?.nonReadyStatus?.length ? { nonReadyStatus: bd.status.nonReadyStatus.slice(0, MAX_RESOURCE_STATUS_ITEMS) } : {}),
      });
    }
  }
  if (nonReady.length > 0) summary.nonReadyResources = nonReady;
  return summary;
}

/** The worst state present in a summary (Ready when every deployment is ready; undefined when there are none). */
export function worstState(summary: BundleSummary): BundleState | undefined {
  if (summary.desiredReady === 0) return undefined;
  return WORST_FIRST.find((s) => summary[FIELD[s]] > 0) ?? BundleState.Ready;
}

/** Adds summary `b` into `a` (non-ready lists concatenated and bounded). */
export function addSummaries(a: BundleSummary, b: BundleSummary): BundleSummary {
  const out = emptyBundleSummary();
  for (const key of Object.keys(out) as (keyof BundleSummary)[]) {
    if (key === 'nonReadyResources') continue;
    out[key] = (a[key] as number) + (b[key] as number);
  }
  const list = [...(a.nonReadyResources ?? []), ...(b.nonReadyResources ?? [])].slice(0, MAX_RESOURCE_STATUS_ITEMS);
  if (list.length > 0) out.nonReadyResources = list;
  return out;
}

/** The status fields a GitRepo derives from its Bundles and their BundleDeployments. */
export function rollUpGitRepo(bundles: readonly Bundle[], bds: readonly BundleDeployment[]): Partial<GitRepoStatus> {
  const summary = summarize(bds, (bd) => `${bd.metadata.namespace}/${bd.metadata.name}`);
  const byCluster = new Map<string, boolean>();
  for (const bd of bds) {
    const ns = bd.metadata.namespace ?? '';
    byCluster.set(ns, (byCluster.get(ns) ?? true) && bundleDeploymentState(bd) === BundleState.Ready);
  }
  // A Bundle whose current spec the Bundle reconciler has not acted on yet still has the BundleDeployments
  // of its previous content: they may all be Ready, but not at the GitRepo's new commit.
  const pending = bundles.find((b) => b.status?.observedGeneration !== b.metadata?.generation);
  const rolled = worstState(summary);
  const state = pending && (rolled === undefined || rolled === BundleState.Ready) ? BundleState.WaitApplied : rolled;
  const firstProblem = summary.nonReadyResources?.[0];
  const message = state === undefined
    ? (bundles.length === 0 ? 'no bundles' : 'no cluster matches the targets')
    : state === BundleState.Ready ? ''
      : state !== rolled ? `Bundle ${pending?.metadata?.name ?? ''}: ${state} (its BundleDeployments are not updated to its content yet)`
        : `${firstProblem?.name ?? ''}: ${firstProblem?.bundleState ?? state}${firstProblem?.message ? ` (${firstProblem.message})` : ''}`;
  return {
    summary,
    readyClusters: [...byCluster.values()].filter(Boolean).length,
    desiredReadyClusters: byCluster.size,
    display: {
      readyBundleDeployments: `${summary.ready}/${summary.desiredReady}`,
      state: state === undefined ? (bundles.length === 0 ? 'NoBundles' : 'NoTargets') : state,
      message: message.slice(0, 1024),
      error: state === BundleState.ErrApplied,
    },
  };
}
