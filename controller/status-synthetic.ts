import {
  BundleState,
  ConditionType,
  Label,
  Reason,
  type BundleDeployment,
  type BundleStatus,
  type BundleVersionEntry,
  type ClusterGroupStatus,
  type Condition,
  type GitRepoStatus,
} from '../lib/api/index.js';
import { notReadyMessage } from './bundle.js';
import { clusterRollup, groupRollup, type ClusterView } from './cluster.js';
import { runningVersions } from './history.js';
import { planRollout, type RolloutCluster } from './rollout.js';
import { rollUpGitRepo, summarize, worstState } from './rollup.js';
import { boundRollout } from './status-bounds.js';

/**
 * A synthetic fleet for measuring rolled-up status sizes without a cluster: one BundleDeployment per
 * cluster, in every state, each failure carrying long, distinct messages, many modified resources with big
 * drift patches and many non-ready resources (the worst an agent reports). The statuses are computed by the
 * controller's own roll-up functions, as the Bundle, GitRepo and ClusterGroup reconcilers write them.
 * Used by controller/status-bounds.test.ts and bench/statussize.ts.
 */

/** What each synthetic cluster's BundleDeployment shows, in the order they repeat. */
export const SYNTHETIC_KINDS = ['ready', 'notReady', 'waitApplied', 'errApplied', 'outOfSync', 'modified', 'pending'] as const;
/** One synthetic kind. */
export type SyntheticKind = (typeof SYNTHETIC_KINDS)[number];

const T = '2026-11-29T12:00:00Z';
const CONTENTS = (v: number) => `sha256:${String(v).repeat(64).slice(0, 64)}`;
const DEPLOYMENT = (v: number) => `s-${CONTENTS(v)}:${'f'.repeat(64)}`;
const RESOURCES = 20;

/** The name of synthetic cluster `i` (long, as real names often are). */
export const clusterName = (i: number) => `edge-site-${String(i).padStart(4, '0')}-eu-west-rack-a`;

function statusOf(kind: SyntheticKind, i: number): BundleDeployment['status'] {
  const long = (what: string) => `${what} on ${clusterName(i)}: ${'the admission webhook denied the request because '.repeat(100)}`;
  const failed: Condition = { type: ConditionType.Deployed, status: 'False', reason: 'ApplyFailed', message: long('apply failed'), lastTransitionTime: T };
  const resources = Array.from({ length: RESOURCES }, (_, r) => ({ apiVersion: 'apps/v1', kind: 'Deployment', name: `web-${i}-${r}`, namespace: 'apps' }));
  switch (kind) {
    case 'ready':
      return { appliedDeploymentID: DEPLOYMENT(2), ready: true, nonModified: true };
    case 'notReady':
      return {
        appliedDeploymentID: DEPLOYMENT(2),
        ready: false,
        nonModified: true,
        conditions: [{ type: ConditionType.Ready, status: 'False', reason: 'NotReady', message: long('not ready'), lastTransitionTime: T }],
        nonReadyStatus: resources.map((r) => ({ ...r, summary: { state: 'in-progress', message: long(`${r.name} has 0/3 replicas`), transitioning: true } })),
      };
    case 'waitApplied':
      return { appliedDeploymentID: DEPLOYMENT(1), ready: true, nonModified: true };
    case 'errApplied':
      return { appliedDeploymentID: DEPLOYMENT(1), conditions: [failed] };
    case 'outOfSync':
      return { appliedDeploymentID: DEPLOYMENT(1), ready: true, nonModified: true };
    case 'modified':
      return {
        appliedDeploymentID: DEPLOYMENT(2),
        ready: true,
        nonModified: false,
        modifiedStatus: resources.map((r) => ({ ...r, patch: JSON.stringify({ spec: { replicas: 9, note: 'x'.repeat(4000) } }).slice(0, 4096) })),
      };
    case 'pending':
      return {};
  }
}

/** `clusters` BundleDeployments of Bundle ws/app, cluster `i` showing kind `i mod 7` (see {@link SYNTHETIC_KINDS}). */
export function syntheticDeployments(clusters: number): { bd: BundleDeployment; kind: SyntheticKind }[] {
  return Array.from({ length: clusters }, (_, i) => {
    const kind = SYNTHETIC_KINDS[i % SYNTHETIC_KINDS.length] as SyntheticKind;
    const bd: BundleDeployment = {
      apiVersion: 'flotilla.dev/v1alpha1',
      kind: 'BundleDeployment',
      metadata: {
        name: 'app',
        namespace: `cluster-ws-${clusterName(i)}`,
        labels: { [Label.Cluster]: clusterName(i), [Label.RepoName]: 'apps', [Label.BundleNamespace]: 'ws' },
      },
      spec: { deploymentID: DEPLOYMENT(2), ...(kind === 'outOfSync' ? { paused: true } : {}) },
      status: statusOf(kind, i),
    };
    return { bd, kind };
  });
}

/** Ten retained versions, every field filled (the most `status.history` holds). */
function fullHistory(): BundleVersionEntry[] {
  return Array.from({ length: 10 }, (_, k) => ({
    version: k + 1,
    digest: `sha256:${String(k).repeat(64).slice(0, 64)}`,
    commit: 'c'.repeat(40),
    commitTime: T,
    contentsID: CONTENTS(k === 9 ? 2 : k === 8 ? 1 : k + 3),
    files: 120,
    size: 1_048_576,
  }));
}

/** The rollout a 25% auto-partitioned strategy shows while the synthetic clusters update. */
function rolloutOf(deployments: readonly { bd: BundleDeployment; kind: SyntheticKind }[]): BundleStatus['rollout'] {
  const clusters: RolloutCluster[] = deployments.map(({ bd, kind }) => ({
    name: bd.metadata.labels?.[Label.Cluster] ?? '',
    labels: {},
    groups: [],
    offline: false,
    current: kind === 'pending' ? undefined : { isNew: kind !== 'waitApplied', applied: kind !== 'errApplied', ready: kind === 'ready' },
  }));
  const plan = planRollout({
    clusters,
    strategy: { autoPartitionThreshold: 2, autoPartitionSize: 1, maxUnavailable: '10%' },
    revision: 'r2',
    version: 10,
    previousVersion: 9,
    retained: [9, 10],
    now: new Date(T),
    where: 'Bundle ws/app',
  });
  return boundRollout(plan.status);
}

/** The Bundle, GitRepo and ClusterGroup statuses of a synthetic fleet of `clusters` clusters. */
export function syntheticStatuses(clusters: number): {
  kinds: SyntheticKind[];
  bundle: BundleStatus;
  gitRepo: Partial<GitRepoStatus>;
  clusterGroup: ClusterGroupStatus;
} {
  const deployments = syntheticDeployments(clusters);
  const bds = deployments.map((d) => d.bd);
  const summary = summarize(bds, (bd) => bd.metadata.labels?.[Label.Cluster] ?? '');
  const ready: Condition = {
    type: ConditionType.Ready,
    status: 'False',
    reason: Reason.ResourcesNotReady,
    message: notReadyMessage(summary),
    lastTransitionTime: T,
  };
  const targeted: Condition = {
    type: ConditionType.Targeted,
    status: 'True',
    reason: Reason.Succeeded,
    message: `${clusters} cluster(s) targeted`,
    lastTransitionTime: T,
  };
  const history = fullHistory();
  const bundle: BundleStatus = {
    observedGeneration: 7,
    conditions: [targeted, ready],
    summary,
    display: { readyClusters: `${summary.ready}/${summary.desiredReady}`, state: worstState(summary) ?? 'NoTargets' },
    observedContentsID: CONTENTS(2),
    history,
    versions: runningVersions(history, bds),
    rollout: rolloutOf(deployments),
  };
  const gitRepo = rollUpGitRepo([], bds);
  const views: ClusterView[] = deployments.map(({ bd }, i) => {
    const r = clusterRollup({ bundleDeployments: [bd], lastSeen: T, now: new Date(T) });
    const condition: Condition = { ...r.ready, lastTransitionTime: T };
    return { metadata: { name: clusterName(i), labels: { env: 'edge' } }, status: { summary: r.summary, display: r.display, conditions: [condition] } };
  });
  const g = groupRollup({ name: 'edge', selector: { matchLabels: { env: 'edge' } } }, views);
  const clusterGroup: ClusterGroupStatus = {
    observedGeneration: 1,
    clusterCount: g.clusterCount,
    nonReadyClusterCount: g.nonReadyClusterCount,
    nonReadyClusters: g.nonReadyClusters,
    summary: g.summary,
    display: g.display,
    conditions: [{ ...g.ready, lastTransitionTime: T }],
  };
  return { kinds: deployments.map((d) => d.kind), bundle, gitRepo, clusterGroup };
}

/** The bundle state each synthetic kind must roll up to. */
export const STATE_OF: Record<SyntheticKind, BundleState> = {
  ready: BundleState.Ready,
  notReady: BundleState.NotReady,
  waitApplied: BundleState.WaitApplied,
  errApplied: BundleState.ErrApplied,
  outOfSync: BundleState.OutOfSync,
  modified: BundleState.Modified,
  pending: BundleState.Pending,
};
