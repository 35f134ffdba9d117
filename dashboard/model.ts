import {
  Annotation,
  BundleState,
  Label,
  agentLastSeen,
  type Bundle,
  type BundleDeployment,
  type Cluster,
  type ClusterGroup,
  type Condition,
  type GitRepo,
} from '../lib/api/index.js';
import { groupsOf } from '../lib/bundle/target.js';
import type { KubeObject } from '../lib/kube/client.js';
import { bundleDeploymentState } from '../controller/rollup.js';
import { releasesKey, rolloutView, type RolloutView } from './bundlepage.js';

/**
 * The dashboard's views, as pure functions of one snapshot of the five kinds it watches. Everything the
 * page shows is computed here (and tested here) so that the server only routes and the page only draws.
 * The matrix is aggregated per ClusterGroup: its size grows with groups x bundles, never with clusters;
 * the clusters of one group are listed a page at a time.
 */

type Obj<T> = T & KubeObject;

/** One consistent read of the watched kinds. */
export interface Snapshot {
  gitRepos: Obj<GitRepo>[];
  bundles: Obj<Bundle>[];
  bundleDeployments: Obj<BundleDeployment>[];
  clusters: Obj<Cluster>[];
  clusterGroups: Obj<ClusterGroup>[];
}

/** Every state, worst first: the order counts and legends are shown in. */
export const STATES_WORST_FIRST: readonly BundleState[] = [
  BundleState.ErrApplied,
  BundleState.Modified,
  BundleState.OutOfSync,
  BundleState.WaitApplied,
  BundleState.Pending,
  BundleState.NotReady,
  BundleState.Ready,
];

/** Counts of bundle deployments per state (only states that occur are present). */
export type StateCounts = Partial<Record<BundleState, number>>;

/** Identifies a namespaced object on the page and in the API. */
export interface Ref {
  namespace: string;
  name: string;
}

/** The pseudo-group of clusters that belong to no ClusterGroup. */
export const UNGROUPED = '(no group)';

const refOf = (o: KubeObject): Ref => ({ namespace: o.metadata.namespace ?? '', name: o.metadata.name });
const keyOfRef = (r: Ref) => `${r.namespace}/${r.name}`;

/** A condition as the page shows it. */
export interface ConditionView {
  type: string;
  status: string;
  reason: string;
  message: string;
  lastTransitionTime: string;
}

function conditionsOf(conditions: readonly Condition[] | undefined): ConditionView[] {
  return (conditions ?? []).map((c) => ({
    type: c.type,
    status: c.status,
    reason: c.reason,
    message: c.message ?? '',
    lastTransitionTime: c.lastTransitionTime,
  }));
}

/** The message that says why an object is not ready: its Ready condition's when False, else the first False condition's. */
function problemOf(conditions: readonly Condition[] | undefined): string {
  const list = conditions ?? [];
  const ready = list.find((c) => c.type === 'Ready');
  if (ready && ready.status !== 'True' && ready.message) return ready.message;
  return list.find((c) => c.status === 'False' && c.type !== 'Reconciling' && c.message)?.message ?? '';
}

/** Where a BundleDeployment belongs: its bundle and its cluster. */
interface Placement {
  bundle: string;
  cluster: string;
}

/** Indexes the snapshot: cluster of each BundleDeployment (by cluster namespace, then label) and bundle key. */
function placements(s: Snapshot): Map<Obj<BundleDeployment>, Placement> {
  const clusterByNamespace = new Map<string, string>();
  for (const c of s.clusters) if (c.status?.namespace) clusterByNamespace.set(c.status.namespace, keyOfRef(refOf(c)));
  const out = new Map<Obj<BundleDeployment>, Placement>();
  for (const bd of s.bundleDeployments) {
    const labels = bd.metadata.labels ?? {};
    const bundleName = labels[Label.BundleName];
    const bundleNs = labels[Label.BundleNamespace];
    if (!bundleName || bundleNs === undefined) continue;
    const cluster =
      clusterByNamespace.get(bd.metadata.namespace ?? '') ??
      (labels[Label.Cluster] && labels[Label.ClusterNamespace] ? `${labels[Label.ClusterNamespace]}/${labels[Label.Cluster]}` : undefined);
    if (!cluster) continue;
    out.set(bd, { bundle: `${bundleNs}/${bundleName}`, cluster });
  }
  return out;
}

/** The message of a BundleDeployment that is not Ready: a failed condition, else the first non-ready or modified resource. */
export function deploymentMessage(bd: BundleDeployment): string {
  const failed = problemOf(bd.status?.conditions);
  if (failed) return failed;
  const nr = bd.status?.nonReadyStatus?.[0];
  if (nr) return `${nr.kind} ${nr.namespace ? `${nr.namespace}/` : ''}${nr.name}: ${nr.summary.message ?? nr.summary.state}`;
  const mod = bd.status?.modifiedStatus?.[0];
  if (mod)
    return `${mod.kind} ${mod.namespace ? `${mod.namespace}/` : ''}${mod.name} ${mod.missing ? 'is missing' : mod.delete ? 'is orphaned' : 'was modified'}`;
  return '';
}

/** A row of the fleet page. */
export interface GitRepoRow extends Ref {
  repo: string;
  branch: string;
  commit: string;
  state: string;
  ready: boolean;
  readyBundleDeployments: string;
  readyClusters: string;
  lastError: string;
  paused: boolean;
  forceSyncGeneration: number;
  bundles: Ref[];
}

/** The fleet page: every GitRepo with its commit, state, ready counts and its last error. */
export function fleetView(s: Snapshot): GitRepoRow[] {
  return s.gitRepos
    .map((r): GitRepoRow => {
      const st = r.status ?? {};
      const ready = st.conditions?.find((c) => c.type === 'Ready')?.status === 'True';
      const bundles = s.bundles
        .filter((b) => b.metadata.namespace === r.metadata.namespace && b.metadata.labels?.[Label.RepoName] === r.metadata.name)
        .map(refOf)
        .sort((a, b) => a.name.localeCompare(b.name));
      return {
        ...refOf(r),
        repo: r.spec.repo,
        branch: r.spec.revision ?? r.spec.branch ?? 'master',
        commit: st.commit ?? '',
        state: st.display?.state || (ready ? 'Ready' : 'NotReady'),
        ready,
        readyBundleDeployments: st.display?.readyBundleDeployments ?? '',
        readyClusters: st.desiredReadyClusters !== undefined ? `${st.readyClusters ?? 0}/${st.desiredReadyClusters}` : '',
        lastError: st.display?.message || problemOf(st.conditions),
        paused: r.spec.paused === true,
        forceSyncGeneration: r.spec.forceSyncGeneration ?? 0,
        bundles,
      };
    })
    .sort((a, b) => keyOfRef(a).localeCompare(keyOfRef(b)));
}

/** Members of every ClusterGroup (and of {@link UNGROUPED}), by cluster key. */
function membership(s: Snapshot): { groups: { ref: Ref; key: string; members: string[] }[] } {
  const groups = s.clusterGroups
    .map((g) => ({ ref: refOf(g), key: keyOfRef(refOf(g)), selector: g.spec?.selector, labels: g.metadata.labels ?? {}, members: [] as string[] }))
    .sort((a, b) => a.key.localeCompare(b.key));
  const ungrouped: string[] = [];
  for (const c of [...s.clusters].sort((a, b) => keyOfRef(refOf(a)).localeCompare(keyOfRef(refOf(b))))) {
    const ns = c.metadata.namespace ?? '';
    const inNs = groups.filter((g) => g.ref.namespace === ns).map((g) => ({ name: g.key, labels: g.labels, selector: g.selector }));
    const mine = new Set(groupsOf(c.metadata.labels ?? {}, inNs).map((g) => g.name));
    const key = keyOfRef(refOf(c));
    for (const g of groups) if (mine.has(g.key)) g.members.push(key);
    if (mine.size === 0) ungrouped.push(key);
  }
  const out = groups.map((g) => ({ ref: g.ref, key: g.key, members: g.members }));
  if (ungrouped.length > 0) out.push({ ref: { namespace: '', name: UNGROUPED }, key: `/${UNGROUPED}`, members: ungrouped });
  return { groups: out };
}

/** State of every (bundle, cluster) pair that has a BundleDeployment, keyed `bundleKey|clusterKey`. */
function cellStates(s: Snapshot): Map<string, { state: BundleState; message: string }> {
  const out = new Map<string, { state: BundleState; message: string }>();
  for (const [bd, p] of placements(s)) {
    const state = bundleDeploymentState(bd);
    out.set(`${p.bundle}|${p.cluster}`, { state, message: state === BundleState.Ready ? '' : deploymentMessage(bd) });
  }
  return out;
}

/** The aggregated matrix: bundles as columns, one row per ClusterGroup with counts by state. */
export interface MatrixView {
  bundles: Ref[];
  groups: { namespace: string; name: string; clusterCount: number; cells: StateCounts[]; total: StateCounts }[];
  clusterCount: number;
}

/** The Bundle x ClusterGroup matrix: per group and bundle, how many of the group's clusters are in each state. */
export function matrixView(s: Snapshot): MatrixView {
  const bundles = s.bundles.map(refOf).sort((a, b) => keyOfRef(a).localeCompare(keyOfRef(b)));
  const cells = cellStates(s);
  const groups = membership(s).groups.map((g) => {
    const total: StateCounts = {};
    const row = bundles.map((b) => {
      const counts: StateCounts = {};
      const bk = keyOfRef(b);
      for (const c of g.members) {
        const cell = cells.get(`${bk}|${c}`);
        if (!cell) continue;
        counts[cell.state] = (counts[cell.state] ?? 0) + 1;
        total[cell.state] = (total[cell.state] ?? 0) + 1;
      }
      return counts;
    });
    return { namespace: g.ref.namespace, name: g.ref.name, clusterCount: g.members.length, cells: row, total };
  });
  return { bundles, groups, clusterCount: s.clusters.length };
}

/** Options for {@link groupView}. */
export interface GroupViewOptions {
  offset: number;
  limit: number;
  /** Only clusters where some bundle is not Ready. */
  problemsOnly: boolean;
}

/** One group expanded: a page of its clusters, each with its state per bundle (null: not targeted). */
export interface GroupView {
  namespace: string;
  name: string;
  bundles: Ref[];
  total: number;
  offset: number;
  clusters: { namespace: string; name: string; states: ({ state: BundleState; message: string } | null)[] }[];
}

/** A page of the clusters of one group (the matrix's expansion); undefined when there is no such group. */
export function groupView(s: Snapshot, group: Ref, options: GroupViewOptions): GroupView | undefined {
  const g = membership(s).groups.find((x) => x.ref.namespace === group.namespace && x.ref.name === group.name);
  if (!g) return undefined;
  const bundles = s.bundles.map(refOf).sort((a, b) => keyOfRef(a).localeCompare(keyOfRef(b)));
  const cells = cellStates(s);
  let rows = g.members.map((ck) => {
    const i = ck.indexOf('/');
    return { namespace: ck.slice(0, i), name: ck.slice(i + 1), states: bundles.map((b) => cells.get(`${keyOfRef(b)}|${ck}`) ?? null) };
  });
  if (options.problemsOnly) rows = rows.filter((r) => r.states.some((x) => x !== null && x.state !== BundleState.Ready));
  return { ...group, bundles, total: rows.length, offset: options.offset, clusters: rows.slice(options.offset, options.offset + options.limit) };
}

/** The Cluster page. */
export interface ClusterView extends Ref {
  labels: Record<string, string>;
  lastSeen: string;
  /** The agent's Flotilla version as it reported it; empty when it has not (agents older than 0.1). */
  agentVersion: string;
  clusterNamespace: string;
  state: string;
  readyBundles: string;
  groups: string[];
  conditions: ConditionView[];
  bundles: { namespace: string; name: string; state: BundleState; message: string }[];
}

/** The Cluster page's data; undefined when there is no such Cluster. */
export function clusterView(s: Snapshot, ref: Ref): ClusterView | undefined {
  const c = s.clusters.find((x) => x.metadata.namespace === ref.namespace && x.metadata.name === ref.name);
  if (!c) return undefined;
  const key = keyOfRef(ref);
  const bundles: ClusterView['bundles'] = [];
  for (const [bd, p] of placements(s)) {
    if (p.cluster !== key) continue;
    const state = bundleDeploymentState(bd);
    const i = p.bundle.indexOf('/');
    bundles.push({ namespace: p.bundle.slice(0, i), name: p.bundle.slice(i + 1), state, message: state === BundleState.Ready ? '' : deploymentMessage(bd) });
  }
  bundles.sort((a, b) => `${a.namespace}/${a.name}`.localeCompare(`${b.namespace}/${b.name}`));
  return {
    ...ref,
    labels: c.metadata.labels ?? {},
    lastSeen: agentLastSeen(c) ?? '',
    agentVersion: c.status?.agent?.version ?? '',
    clusterNamespace: c.status?.namespace ?? '',
    state: c.status?.display?.state ?? '',
    readyBundles: c.status?.display?.readyBundles ?? '',
    groups: membership(s)
      .groups.filter((g) => g.members.includes(key) && g.ref.name !== UNGROUPED)
      .map((g) => g.ref.name),
    conditions: conditionsOf(c.status?.conditions),
    bundles,
  };
}

/** The Bundle page. */
export interface BundleView extends Ref {
  gitRepo: string;
  state: string;
  readyClusters: string;
  paused: boolean;
  digest: string;
  reference: string;
  contentsID: string;
  commit: string;
  conditions: ConditionView[];
  clusters: { namespace: string; name: string; state: BundleState; message: string }[];
  counts: StateCounts;
  /** The staged rollout's progress per partition. */
  rollout: RolloutView;
  /** Changes when the history may have: the page reads /api/history again then. */
  releasesKey: string;
}

/** The Bundle page's data; undefined when there is no such Bundle. */
export function bundleView(s: Snapshot, ref: Ref): BundleView | undefined {
  const b = s.bundles.find((x) => x.metadata.namespace === ref.namespace && x.metadata.name === ref.name);
  if (!b) return undefined;
  const key = keyOfRef(ref);
  const clusters: BundleView['clusters'] = [];
  const counts: StateCounts = {};
  for (const [bd, p] of placements(s)) {
    if (p.bundle !== key) continue;
    const state = bundleDeploymentState(bd);
    counts[state] = (counts[state] ?? 0) + 1;
    const i = p.cluster.indexOf('/');
    clusters.push({ namespace: p.cluster.slice(0, i), name: p.cluster.slice(i + 1), state, message: state === BundleState.Ready ? '' : deploymentMessage(bd) });
  }
  // Worst first, so that failures are at the top of a long list.
  clusters.sort((a, b) => STATES_WORST_FIRST.indexOf(a.state) - STATES_WORST_FIRST.indexOf(b.state) || a.name.localeCompare(b.name));
  return {
    ...ref,
    gitRepo: b.metadata.labels?.[Label.RepoName] ?? '',
    state: b.status?.display?.state ?? '',
    readyClusters: b.status?.display?.readyClusters ?? '',
    paused: b.spec.paused === true,
    digest: b.spec.oci?.digest ?? '',
    reference: b.spec.oci?.reference ?? '',
    contentsID: b.spec.contentsID ?? '',
    commit: b.metadata.annotations?.[Annotation.Commit] ?? '',
    conditions: conditionsOf(b.status?.conditions),
    clusters,
    counts,
    rollout: rolloutView(b),
    releasesKey: releasesKey(b),
  };
}
