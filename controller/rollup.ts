import {
  BundleState,
  ConditionType,
  Reason,
  emptyBundleSummary,
  getCondition,
  type Bundle,
  type BundleDeployment,
  type BundleDeploymentSpec,
  type BundleSummary,
  type GitRepoStatus,
} from '../lib/api/index.js';
import { NonReadyCollector, andMore, clip, fitNonReady, nonReadyEntry } from './status-bounds.js';

/**
 * Pure status roll-ups: BundleDeployments -> bundle state per cluster -> Bundle summary -> GitRepo.
 * Every list is bounded (controller/status-bounds.ts) so status size does not grow with the number of clusters.
 */

const WORST_FIRST: BundleState[] = [
  BundleState.ErrApplied,
  BundleState.Modified,
  BundleState.OutOfSync,
  BundleState.WaitApplied,
  BundleState.Pending,
  BundleState.NotReady,
  BundleState.Ready,
];

/** What a BundleDeployment must have applied: the spec its current Bundle implies. */
export type ExpectedDeployment = Pick<BundleDeploymentSpec, 'deploymentID' | 'paused' | 'stagedDeploymentID' | 'forceSyncGeneration'>;

/**
 * The state of one bundle on one cluster, from its BundleDeployment's status (what the agent applied and
 * reported) compared with `expected`, the spec the current Bundle implies. By default that is the
 * BundleDeployment's own spec; a Bundle roll-up passes the spec it computed, so that a cached
 * BundleDeployment older than the Bundle never counts as Ready for content it did not apply.
 */
export function bundleDeploymentState(bd: BundleDeployment, expected: ExpectedDeployment = bd.spec): BundleState {
  const status = bd.status ?? {};
  const cond = (type: string) => status.conditions?.find((c) => c.type === type);
  if (cond(ConditionType.Deployed)?.status === 'False' && status.appliedDeploymentID !== expected.deploymentID) return BundleState.ErrApplied;
  if (status.appliedDeploymentID === undefined) return BundleState.Pending;
  if (status.appliedDeploymentID !== expected.deploymentID) {
    return expected.paused ? BundleState.OutOfSync : BundleState.WaitApplied;
  }
  // A forced re-apply counts only once the agent reports it.
  if (expected.forceSyncGeneration && status.syncGeneration !== expected.forceSyncGeneration) return BundleState.WaitApplied;
  if (cond(ConditionType.Deployed)?.status === 'False') return BundleState.ErrApplied;
  // Paused with a newer version staged: applied, but not what git says (Fleet's OutOfSync).
  if (expected.stagedDeploymentID !== undefined && expected.stagedDeploymentID !== expected.deploymentID) return BundleState.OutOfSync;
  if (status.nonModified === false) return BundleState.Modified;
  if (cond(ConditionType.Ready)?.status === 'True' || status.ready === true) return BundleState.Ready;
  return BundleState.NotReady;
}

/** The summary count of each bundle state. */
export const FIELD: Record<BundleState, keyof Omit<BundleSummary, 'nonReadyResources' | 'desiredReady'>> = {
  Ready: 'ready',
  NotReady: 'notReady',
  WaitApplied: 'waitApplied',
  ErrApplied: 'errApplied',
  OutOfSync: 'outOfSync',
  Modified: 'modified',
  Pending: 'pending',
};

/**
 * Summarizes BundleDeployments; `nameOf` names an entry of the bounded non-ready list (cluster or BD);
 * `expectedOf` gives the spec each must have applied (see {@link bundleDeploymentState}).
 */
export function summarize(
  bds: readonly BundleDeployment[],
  nameOf: (bd: BundleDeployment) => string,
  expectedOf: (bd: BundleDeployment) => ExpectedDeployment = (bd) => bd.spec,
): BundleSummary {
  const summary = emptyBundleSummary();
  const nonReady = new NonReadyCollector();
  for (const bd of bds) {
    const state = bundleDeploymentState(bd, expectedOf(bd));
    summary[FIELD[state]] += 1;
    summary.desiredReady += 1;
    if (state !== BundleState.Ready && nonReady.wants(state)) {
      const message = bd.status?.conditions?.find((c) => c.status === 'False' && c.message)?.message;
      nonReady.add(nonReadyEntry(nameOf(bd), state, message, bd.status));
    }
  }
  const list = nonReady.list(WORST_FIRST);
  if (list.length > 0) summary.nonReadyResources = list;
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
  const list = fitNonReady([...(a.nonReadyResources ?? []), ...(b.nonReadyResources ?? [])]);
  if (list.length > 0) out.nonReadyResources = list;
  return out;
}

/**
 * Why a Bundle does not yet show the result of its current spec (undefined when it does): its status must
 * describe its current generation and contents (the Bundle reconciler compared every BundleDeployment with the
 * deployment ID that content implies), it must not be being deleted (its objects are pruned first), and must be
 * Ready unless no cluster is targeted. The Bundles given must be current: a cached Bundle older than the
 * GitRepo reconciler's own write of it would show the previous contents (controller/bundle-writes.ts).
 */
export function bundleBehind(bundle: Bundle): string | undefined {
  const generation = bundle.metadata?.generation;
  const ready = getCondition(bundle.status?.conditions, ConditionType.Ready);
  const targeted = getCondition(bundle.status?.conditions, ConditionType.Targeted);
  if (bundle.metadata?.deletionTimestamp) return 'its objects are being removed';
  if (
    bundle.status?.observedGeneration !== generation ||
    (bundle.spec?.contentsID !== undefined && bundle.status?.observedContentsID !== bundle.spec.contentsID) ||
    (ready !== undefined && ready.observedGeneration !== undefined && ready.observedGeneration !== generation)
  ) {
    return 'its BundleDeployments are not updated to its content yet';
  }
  if (targeted?.status === 'False' && targeted.reason === Reason.NoMatchingClusters) return undefined;
  if (ready === undefined) return undefined;
  if (ready.status !== 'True') return `not ready${ready.message ? `: ${ready.message}` : ''}`;
  return undefined;
}

/**
 * The status fields a GitRepo derives from its Bundles and their BundleDeployments. Ready only when
 * every Bundle shows the result of its spec (see {@link bundleBehind}) and every BundleDeployment is Ready.
 */
export function rollUpGitRepo(bundles: readonly Bundle[], bds: readonly BundleDeployment[]): Partial<GitRepoStatus> {
  const summary = summarize(bds, (bd) => `${bd.metadata.namespace}/${bd.metadata.name}`);
  const byCluster = new Map<string, boolean>();
  for (const bd of bds) {
    const ns = bd.metadata.namespace ?? '';
    byCluster.set(ns, (byCluster.get(ns) ?? true) && bundleDeploymentState(bd) === BundleState.Ready);
  }
  // A Bundle whose current spec the Bundle reconciler has not acted on yet still has the BundleDeployments
  // of its previous content: they may all be Ready, but not at the GitRepo's new commit.
  let pending: { bundle: Bundle; why: string } | undefined;
  for (const bundle of bundles) {
    const why = bundleBehind(bundle);
    if (why !== undefined) {
      pending = { bundle, why };
      break;
    }
  }
  const rolled = worstState(summary);
  const state = pending && (rolled === undefined || rolled === BundleState.Ready) ? BundleState.WaitApplied : rolled;
  const firstProblem = summary.nonReadyResources?.[0];
  const message =
    state === undefined
      ? bundles.length === 0
        ? 'no bundles'
        : 'no cluster matches the targets'
      : state === BundleState.Ready
        ? ''
        : state !== rolled
          ? `Bundle ${pending?.bundle.metadata?.name ?? ''}: ${state} (${pending?.why ?? ''})`
          : `${firstProblem?.name ?? ''}: ${firstProblem?.bundleState ?? state}${firstProblem?.message ? ` (${firstProblem.message})` : ''}${andMore(1, summary.desiredReady - summary.ready)}`;
  return {
    summary,
    readyClusters: [...byCluster.values()].filter(Boolean).length,
    desiredReadyClusters: byCluster.size,
    display: {
      readyBundleDeployments: `${summary.ready}/${summary.desiredReady}`,
      state: state === undefined ? (bundles.length === 0 ? 'NoBundles' : 'NoTargets') : state,
      message: clip(message, 1024),
      error: state === BundleState.ErrApplied,
    },
  };
}
