import { Index } from './indexes.js';
import { OwnWrites } from '../lib/kube/ownwrites.js';
import { createHash } from 'node:crypto';
import { Controller, type ReconcileResult } from '../lib/kube/controller.js';
import { reconciler, removeFinalizer, type RunState, type Step } from '../lib/kube/reconciler.js';
import { mergeStatusWriter } from '../lib/kube/reconciler-status.js';
import { keyOf } from '../lib/kube/informer.js';
import type { KubeObject } from '../lib/kube/client.js';
import { groupsOf } from '../lib/bundle/target.js';
import {
  BundleState,
  ConditionType,
  Finalizer,
  Label,
  MAX_RESOURCE_STATUS_ITEMS,
  agentLastSeen,
  Reason,
  emptyBundleSummary,
  getCondition,
  type BundleDeployment,
  type BundleSummary,
  type Cluster,
  type ClusterGroup,
  type Condition,
  type LabelSelector,
} from '../lib/api/index.js';
import { Ref, type ControllerContext } from './context.js';
import { addSummaries, summarize, worstState } from './rollup.js';
import { andMore, clip, fitNonReady, nonReadyEntry } from './status-bounds.js';
import { applyObjects, ensureNotTerminating, managedLabels, namespaceObject } from './rbac.js';

/**
 * Cluster and ClusterGroup reconcilers: every Cluster gets its cluster namespace (also those an admin
 * creates directly), a finalizer that removes that namespace and the cluster's credentials, and a status
 * rolled up from the BundleDeployments in its namespace plus the agent's liveness; every ClusterGroup
 * gets counts of its (non-)ready clusters. The roll-ups are pure functions below, tested with case tables.
 */

/**
 * How often an agent that does not announce its interval (status.agent.heartbeatSeconds; agents before it
 * did) is assumed to report: their default.
 */
export const AGENT_HEARTBEAT_MS = 15_000;
/** Heartbeats an agent may miss before its Cluster says so. */
export const MISSED_HEARTBEATS = 3;
/**
 * How long a Cluster's roll-up waits after a change of one of its BundleDeployments, to take in the rest.
 * 3 s halved the Cluster status writes of a rollout but let a Cluster read NotReady for up to 3 s after its
 * GitRepo was Ready (e2e/status.e2e.ts caught it), with no gain in latency: kept at 1 s (bench/README.md).
 */
export const CLUSTER_ROLLUP_COALESCE_MS = 1000;
/**
 * How long a Ready Cluster keeps saying so while its only not-ready BundleDeployments are progressing (a new
 * version written, not applied yet): most rounds end sooner, and then the Cluster's status is not written at
 * all (twice before: down, then up again). Failures, drift and a silent agent are written at once, and so is
 * every change towards Ready, so a Cluster never reads NotReady after its bundles are Ready.
 */
export const CLUSTER_PROGRESSING_GRACE_MS = 3000;

/**
 * The cluster namespace of Cluster `clusterName` in workspace `workspace`: `cluster-<workspace>-<name>`, a
 * DNS-1123 label. When that is longer than 63 characters (or a cluster name holds dots), it is truncated and
 * suffixed with 8 hex digits of sha256("<workspace>/<name>"), so distinct clusters keep distinct namespaces.
 */
export function clusterNamespaceName(workspace: string, clusterName: string): string {
  const plain = `cluster-${workspace}-${clusterName}`;
  const clean = plain.toLowerCase().replace(/[^a-z0-9-]/g, '-');
  if (clean === plain && plain.length <= 63) return plain;
  const hash = createHash('sha256').update(`${workspace}/${clusterName}`).digest('hex').slice(0, 8);
  return `${clean.slice(0, 63 - hash.length - 1).replace(/-+$/, '')}-${hash}`;
}

const STATE_REASON: Record<BundleState, string> = {
  Ready: Reason.Succeeded,
  NotReady: Reason.ResourcesNotReady,
  WaitApplied: Reason.Progressing,
  ErrApplied: Reason.ApplyFailed,
  OutOfSync: Reason.Progressing,
  Modified: Reason.Drifted,
  Pending: Reason.Progressing,
};

/** Input of {@link clusterRollup}. */
export interface ClusterRollupInput {
  bundleDeployments: readonly BundleDeployment[];
  /** status.agent.lastSeen (or status.agentLastSeen). */
  lastSeen?: string | undefined;
  /** metadata.creationTimestamp: an agent that never reported gets this long a grace. */
  createdAt?: string | undefined;
  now: Date;
  /** The interval the agent announced (status.agent.heartbeatSeconds): it wins over `heartbeatMs`. */
  reportedHeartbeatSeconds?: number | undefined;
  /** The interval assumed for an agent that announces none (default {@link AGENT_HEARTBEAT_MS}). */
  heartbeatMs?: number;
}

/** What {@link clusterRollup} computes: the status fields and when to look again. */
export interface ClusterRollup {
  summary: BundleSummary;
  readyBundles: number;
  desiredReadyBundles: number;
  display: { readyBundles: string; state?: string };
  ready: Omit<Condition, 'lastTransitionTime' | 'observedGeneration'>;
  /** When the agent's liveness verdict will change without any event (undefined: it will not). */
  recheckAfterMs?: number;
}

/**
 * The status of a Cluster: bundle counts and "n/m", the worst bundle state, and the Ready condition.
 * Ready is False with AgentNotSeen when the agent missed {@link MISSED_HEARTBEATS} heartbeats (or never
 * reported, after that long a grace from creation), else False with the worst bundle's reason, else True.
 */
export function clusterRollup(input: ClusterRollupInput): ClusterRollup {
  const sorted = [...input.bundleDeployments].sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
  const summary = summarize(sorted, (bd) => bd.metadata.name);
  const worst = worstState(summary);
  const reported = input.reportedHeartbeatSeconds ?? Number.NaN;
  const interval = Number.isFinite(reported) && reported > 0 ? reported * 1000 : (input.heartbeatMs ?? AGENT_HEARTBEAT_MS);
  const staleAfter = MISSED_HEARTBEATS * interval;
  const nowMs = input.now.getTime();
  const seenMs = input.lastSeen ? Date.parse(input.lastSeen) : NaN;
  const fromMs = Number.isNaN(seenMs) ? Date.parse(input.createdAt ?? '') : seenMs;
  const deadline = Number.isNaN(fromMs) ? nowMs : fromMs + staleAfter;
  const counts = `${summary.ready}/${summary.desiredReady} bundles ready`;
  const out: ClusterRollup = {
    summary,
    readyBundles: summary.ready,
    desiredReadyBundles: summary.desiredReady,
    display: { readyBundles: `${summary.ready}/${summary.desiredReady}`, ...(worst ? { state: worst } : {}) },
    ready: { type: ConditionType.Ready, status: 'True', reason: Reason.Succeeded, message: counts },
  };
  if (nowMs >= deadline) {
    const since = Number.isNaN(seenMs) ? 'has never reported' : `has not reported since ${input.lastSeen}`;
    out.ready = {
      type: ConditionType.Ready,
      status: 'False',
      reason: Reason.AgentNotSeen,
      message: `the agent ${since} (expected every ${Math.round(staleAfter / MISSED_HEARTBEATS / 1000)}s); ${counts}`,
    };
    return out;
  }
  out.recheckAfterMs = deadline - nowMs + 1000;
  if (worst && worst !== BundleState.Ready) {
    const first = summary.nonReadyResources?.[0];
    const detail = first
      ? `; ${first.name}: ${first.bundleState}${first.message ? ` (${first.message})` : ''}${andMore(1, summary.desiredReady - summary.ready)}`
      : '';
    out.ready = { type: ConditionType.Ready, status: 'False', reason: STATE_REASON[worst], message: `${counts}${detail}`.slice(0, 4096) };
  } else if (Number.isNaN(seenMs)) {
    out.ready = { type: ConditionType.Ready, status: 'Unknown', reason: Reason.Progressing, message: `waiting for the agent's first report; ${counts}` };
  }
  return out;
}

/** The state a non-ready Cluster shows in a group summary: its worst bundle state, NotReady when that is Ready. */
function clusterState(c: ClusterView): BundleState {
  const state = c.status?.display?.state;
  return state && state !== BundleState.Ready && (Object.values(BundleState) as string[]).includes(state) ? (state as BundleState) : BundleState.NotReady;
}

/** A Cluster as the group roll-up reads it. */
export type ClusterView = Pick<Cluster, 'status'> & { metadata: { name: string; labels?: Record<string, string> | undefined } };

/** What {@link groupRollup} computes for a ClusterGroup. */
export interface GroupRollup {
  clusterCount: number;
  nonReadyClusterCount: number;
  nonReadyClusters: string[];
  summary: BundleSummary;
  display: { readyClusters: string; readyBundles: string; state?: string };
  ready: Omit<Condition, 'lastTransitionTime' | 'observedGeneration'>;
}

/**
 * The status of a ClusterGroup from its member Clusters (those its selector matches; no selector, no
 * members, as in targeting): counts, the first 10 non-ready cluster names, summed bundle counts and Ready.
 */
export function groupRollup(
  group: { name: string; labels?: Record<string, string> | undefined; selector?: LabelSelector | undefined },
  clusters: readonly ClusterView[],
): GroupRollup {
  const info = { name: group.name, labels: group.labels ?? {}, selector: group.selector };
  const members = clusters.filter((c) => groupsOf(c.metadata.labels ?? {}, [info]).length > 0).sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
  let summary = emptyBundleSummary();
  const nonReady: ClusterView[] = [];
  for (const c of members) {
    if (c.status?.summary) summary = addSummaries(summary, { ...c.status.summary, nonReadyResources: [] });
    if (getCondition(c.status?.conditions, ConditionType.Ready)?.status !== 'True') nonReady.push(c);
  }
  const entries = nonReady.slice(0, MAX_RESOURCE_STATUS_ITEMS).map((c) => {
    const message = getCondition(c.status?.conditions, ConditionType.Ready)?.message;
    return nonReadyEntry(c.metadata.name, clusterState(c), message);
  });
  const fitted = fitNonReady(entries);
  if (fitted.length > 0) summary.nonReadyResources = fitted;
  const worst = worstState(summary);
  const names = nonReady.map((c) => c.metadata.name);
  const readyClusters = `${members.length - nonReady.length}/${members.length}`;
  const firstReason = getCondition(nonReady[0]?.status?.conditions, ConditionType.Ready)?.reason ?? Reason.Progressing;
  return {
    clusterCount: members.length,
    nonReadyClusterCount: nonReady.length,
    nonReadyClusters: names.slice(0, MAX_RESOURCE_STATUS_ITEMS).map((n) => clip(n, 253)),
    summary,
    display: { readyClusters, readyBundles: `${summary.ready}/${summary.desiredReady}`, ...(worst ? { state: worst } : {}) },
    ready:
      nonReady.length === 0
        ? { type: ConditionType.Ready, status: 'True', reason: Reason.Succeeded, message: `${readyClusters} clusters ready` }
        : {
            type: ConditionType.Ready,
            status: 'False',
            reason: firstReason,
            message: `${readyClusters} clusters ready; not ready: ${names.slice(0, MAX_RESOURCE_STATUS_ITEMS).join(', ')}${andMore(MAX_RESOURCE_STATUS_ITEMS, names.length)}`,
          },
  };
}

/** The working state of one Cluster reconcile. */
interface ClusterRun extends RunState<Cluster & KubeObject> {
  rollup?: ClusterRollup;
  /** The status write was left to a run this much later (see {@link CLUSTER_PROGRESSING_GRACE_MS}). */
  postponedMs?: number;
}
/** The working state of one ClusterGroup reconcile. */
interface GroupRun extends RunState<ClusterGroup & KubeObject> {
  rollup?: GroupRollup;
}

/** How long a cluster namespace, once applied, is trusted to exist before it is applied again. */
const NAMESPACE_RECHECK_MS = 10 * 60_000;

/**
 * How long a deleted Cluster's agent has to prune what its BundleDeployments applied and let them go. An
 * agent that went away with its cluster never will; after this its finalizers are removed for it.
 */
export const AGENT_RELEASE_GRACE_MS = 20_000;

/**
 * Sets up the Cluster reconciler: cluster namespace and finalizer, deletion clean-up, and the status
 * roll-up. A BundleDeployment change enqueues the Cluster whose namespace holds it; heartbeats (status
 * changes) enqueue the Cluster itself. Status is patched only when it changes.
 */
export function setupClusterController(ctx: ControllerContext, options: { heartbeatMs?: number } = {}): Controller {
  const log = ctx.log.child({ controller: 'cluster' });
  const byNamespace = new Map<string, string>();
  const index = (obj: Cluster & KubeObject, deleted: boolean): void => {
    for (const ns of [obj.status?.namespace, clusterNamespaceName(obj.metadata.namespace ?? '', obj.metadata.name)]) {
      if (!ns) continue;
      if (deleted) byNamespace.delete(ns);
      else byNamespace.set(ns, keyOf(obj));
    }
  };
  for (const c of ctx.informers.clusters.list()) index(c, false);
  ctx.informers.clusters.on((type, obj) => index(obj, type === 'DELETED'));
  const ensured = new Map<string, number>();
  /** Since when a Ready Cluster's roll-up has been progressing and its write postponed, by Cluster key. */
  const progressingSince = new Map<string, number>();
  /** The run's roll-up, computed once (postpone comes before readiness). */
  const rollupOf = (run: ClusterRun): ClusterRollup => {
    const cluster = run.object;
    const clusterNs = clusterNamespaceName(cluster.metadata.namespace ?? '', cluster.metadata.name);
    run.rollup ??= clusterRollup({
      bundleDeployments: ctx.informers.bundleDeployments.byIndex(Index.namespace, clusterNs),
      lastSeen: agentLastSeen(cluster),
      reportedHeartbeatSeconds: cluster.status?.agent?.heartbeatSeconds,
      createdAt: cluster.metadata.creationTimestamp,
      now: run.now,
      heartbeatMs: options.heartbeatMs,
    });
    return run.rollup;
  };

  /** The cluster namespace, applied again when it was last applied long ago (or never by this process). */
  const namespaceStep: Step<ClusterRun> = async (run) => {
    const key = keyOf(run.object);
    const last = ensured.get(key);
    if (last === undefined || run.now.getTime() - last > NAMESPACE_RECHECK_MS) {
      await ensureClusterNamespace(ctx, run.object.metadata.namespace ?? '', run.object.metadata.name);
      ensured.set(key, run.now.getTime());
    }
    return 'continue';
  };

  const ownClusters = new OwnWrites(ctx.informers.clusters);
  const reconcile = reconciler<Cluster & KubeObject, ClusterRun>({
    name: 'cluster',
    log,
    now: ctx.now,
    kube: ctx.kube,
    // The informer cache (with this reconciler's own writes it has not delivered yet) is current enough for a
    // roll-up, and heartbeats make this the busiest reconciler.
    get: async (key) => ownClusters.get(key),
    ownWrites: ownClusters,
    gone: async (key) => {
      ensured.delete(key);
    },
    finalizer: {
      name: Finalizer.Cluster,
      finalize: async (cluster) => {
        const clusterNs = clusterNamespaceName(cluster.metadata.namespace ?? '', cluster.metadata.name);
        const deployments = ctx.informers.bundleDeployments.byIndex(Index.namespace, clusterNs);
        const held = await releaseBundleDeployments(ctx, cluster, clusterNs, deployments);
        if (held) return held;
        await finalizeCluster(ctx, cluster, clusterNs);
        ensured.delete(keyOf(cluster));
        return 'done';
      },
    },
    start: (cluster, now) => ({ object: cluster, now, conditions: [...(cluster.status?.conditions ?? [])] }),
    steps: () => [namespaceStep],
    status: {
      fallbackReason: Reason.Progressing,
      postpone: (run) => {
        const key = keyOf(run.object);
        const wait = progressingWait(
          getCondition(run.object.status?.conditions, ConditionType.Ready),
          rollupOf(run).ready,
          progressingSince.get(key),
          run.now.getTime(),
        );
        if (wait === undefined) {
          progressingSince.delete(key);
          return false;
        }
        if (!progressingSince.has(key)) {
          if (progressingSince.size > 100_000) progressingSince.clear(); // Clusters deleted while postponed
          progressingSince.set(key, run.now.getTime());
        }
        run.postponedMs = wait;
        return true;
      },
      readiness: (run) => {
        const { status, reason, message } = rollupOf(run).ready;
        return { status, reason, message };
      },
      build: (run, conditions) => {
        const cluster = run.object;
        const rollup = run.rollup as ClusterRollup;
        return {
          namespace: clusterNamespaceName(cluster.metadata.namespace ?? '', cluster.metadata.name),
          observedGeneration: cluster.metadata.generation ?? 0,
          summary: rollup.summary,
          readyBundles: rollup.readyBundles,
          desiredReadyBundles: rollup.desiredReadyBundles,
          display: rollup.display,
          conditions,
        };
      },
      // The agent writes status.agent (heartbeats) and the registration sets status.namespace: this writer owns only its keys.
      writer: mergeStatusWriter(ctx.kube, ['namespace', 'observedGeneration', 'summary', 'readyBundles', 'desiredReadyBundles', 'display', 'conditions']),
      transitions: (run, before) => {
        const previous = getCondition((before as Cluster['status'])?.conditions, ConditionType.Ready);
        const ready = (run.rollup as ClusterRollup).ready;
        if (previous && previous.reason !== ready.reason && (ready.reason === Reason.AgentNotSeen || previous.reason === Reason.AgentNotSeen)) {
          void ctx.events.emit(
            run.object,
            ready.reason === Reason.AgentNotSeen ? 'Warning' : 'Normal',
            ready.reason === Reason.AgentNotSeen ? Reason.AgentNotSeen : 'AgentReporting',
            ready.message,
          );
          log.info({ cluster: keyOf(run.object), reason: ready.reason }, 'cluster agent liveness changed');
        }
      },
    },
    requeue: (run) => {
      const after = Math.min(run.rollup?.recheckAfterMs ?? Infinity, run.postponedMs ?? Infinity);
      return after === Infinity ? {} : { requeueAfterMs: after };
    },
  });

  return new Controller('cluster', reconcile, { log, workers: ctx.config.workers, observer: observerOf(ctx) }).watch(ctx.informers.clusters).watch(
    ctx.informers.bundleDeployments,
    (bd) => {
      const key = byNamespace.get(bd.metadata.namespace ?? '');
      return key ? [key] : [];
    },
    // A rollout changes a cluster's BundleDeployments in bursts (written, applied, Ready): one roll-up
    // (and at most one status write) per cluster per window, not one per change.
    { coalesceMs: CLUSTER_ROLLUP_COALESCE_MS },
  );
}

/**
 * How much longer a Cluster's status write waits (undefined: write now). It waits only while the stored Ready
 * is True and the roll-up's is False for progressing bundles alone, for at most
 * {@link CLUSTER_PROGRESSING_GRACE_MS} since `since`, the first run that found it so.
 */
export function progressingWait(
  stored: Pick<Condition, 'status'> | undefined,
  next: Pick<Condition, 'status' | 'reason'>,
  since: number | undefined,
  now: number,
): number | undefined {
  if (stored?.status !== 'True' || next.status !== 'False' || next.reason !== Reason.Progressing) return undefined;
  const left = (since ?? now) + CLUSTER_PROGRESSING_GRACE_MS - now;
  return left > 0 ? left : undefined;
}

/** Applies the cluster namespace of Cluster `namespace/name`, labelled as Flotilla's and as that cluster's. */
export async function ensureClusterNamespace(ctx: Pick<ControllerContext, 'kube'>, namespace: string, name: string): Promise<string> {
  const clusterNs = clusterNamespaceName(namespace, name);
  await ensureNotTerminating(ctx.kube, clusterNs);
  await applyObjects(ctx.kube, [namespaceObject(clusterNs, managedLabels({ [Label.Cluster]: name, [Label.ClusterNamespace]: namespace }))]);
  return clusterNs;
}

/**
 * First step of a Cluster's deletion: its BundleDeployments go before its namespace and its agent's
 * credential, so that a live agent prunes what they applied (unless keepResources) and lets them go, as
 * for any removed BundleDeployment. One still held by the agent's finalizer after
 * {@link AGENT_RELEASE_GRACE_MS} (its agent went away with the cluster) is released, with a Warning: what
 * it applied stays on that cluster. `deployments` are those of `clusterNs` in the informer cache, whose
 * changes enqueue the Cluster again. Returns when to look again while any is left, nothing when none is.
 */
async function releaseBundleDeployments(
  ctx: ControllerContext,
  cluster: Cluster & KubeObject,
  clusterNs: string,
  deployments: readonly BundleDeployment[],
): Promise<ReconcileResult | undefined> {
  if (deployments.length === 0) return undefined;
  const since = Date.parse(cluster.metadata.deletionTimestamp ?? '');
  const waited = Number.isNaN(since) ? 0 : ctx.now().getTime() - since;
  const released: string[] = [];
  for (const bd of deployments) {
    if (!bd.metadata.deletionTimestamp) await ctx.kube.delete(Ref.bundleDeployment(clusterNs, bd.metadata.name));
    else if (waited >= AGENT_RELEASE_GRACE_MS && bd.metadata.finalizers?.includes(Finalizer.BundleDeployment)) {
      await removeFinalizer(ctx.kube, bd as BundleDeployment & KubeObject, Finalizer.BundleDeployment);
      released.push(bd.metadata.name);
    }
  }
  if (released.length > 0) {
    void ctx.events.emit(
      cluster,
      'Warning',
      Reason.Deleting,
      `the agent did not remove ${released.length} BundleDeployment(s) within ${AGENT_RELEASE_GRACE_MS / 1000} s (${released.slice(0, 3).join(', ')}${andMore(3, released.length)}); ` +
        'released them: what they applied stays on the cluster, delete it there if it should go',
    );
  }
  return { requeueAfterMs: Math.max(1000, Math.min(5000, AGENT_RELEASE_GRACE_MS - waited)) };
}

/**
 * Deletion of a Cluster, once its BundleDeployments are gone: deletes its cluster namespace (and with it the agent's ServiceAccount, so its
 * credential stops working), the registration credential Secrets issued for it and its ClusterRegistrations,
 * then the skeleton removes the finalizer. Objects in the workspace namespace are owned by the Cluster (garbage collected).
 */
async function finalizeCluster(ctx: ControllerContext, cluster: Cluster & KubeObject, clusterNs: string): Promise<void> {
  const { namespace = '', name } = cluster.metadata;
  await ctx.kube.delete(Ref.namespace(clusterNs));
  const selector = `${Label.Cluster}=${name},${Label.ClusterNamespace}=${namespace}`;
  const secrets = await ctx.kube.list({ apiVersion: 'v1', kind: 'Secret', namespace: ctx.config.registrationNamespace }, selector);
  for (const s of secrets.items) await ctx.kube.delete(Ref.secret(ctx.config.registrationNamespace, s.metadata.name));
  const clientID = cluster.spec?.clientID;
  if (clientID) {
    for (const reg of ctx.informers.registrations.list()) {
      if (reg.metadata.namespace === namespace && reg.spec.clientID === clientID) await ctx.kube.delete(Ref.registration(namespace, reg.metadata.name));
    }
  }
  void ctx.events.emit(cluster, 'Normal', Reason.Deleting, `deleted cluster namespace ${clusterNs} and the cluster's credentials`);
}

/** Reconcile metrics observer over the controller's metrics. */
export function observerOf(ctx: ControllerContext): { observe(controller: string, outcome: 'success' | 'error', seconds: number): void } {
  return {
    observe(controller, outcome, seconds) {
      ctx.metrics.reconciles.inc({ controller, outcome });
      if (outcome === 'error') ctx.metrics.reconcileErrors.inc({ controller });
      ctx.metrics.reconcileDuration.observe({ controller }, seconds);
    },
  };
}

/**
 * Sets up the ClusterGroup reconciler: counts of member and non-ready clusters, summed bundle counts,
 * display and Ready. Any Cluster change enqueues every ClusterGroup of the Cluster's namespace.
 */
export function setupClusterGroupController(ctx: ControllerContext): Controller {
  const log = ctx.log.child({ controller: 'clustergroup' });
  const seen = new Map<string, string>();
  const ownGroups = new OwnWrites(ctx.informers.clusterGroups);
  const reconcile = reconciler<ClusterGroup & KubeObject, GroupRun>({
    name: 'clustergroup',
    log,
    now: ctx.now,
    get: async (key) => ownGroups.get(key),
    ownWrites: ownGroups,
    start: (group, now) => ({ object: group, now, conditions: [...(group.status?.conditions ?? [])] }),
    steps: () => [],
    status: {
      fallbackReason: Reason.Progressing,
      readiness: (run) => {
        const group = run.object;
        const clusters = ctx.informers.clusters.byIndex(Index.namespace, group.metadata.namespace ?? '');
        run.rollup = groupRollup({ name: group.metadata.name, labels: group.metadata.labels, selector: group.spec?.selector }, clusters);
        const { status, reason, message } = run.rollup.ready;
        return { status, reason, message };
      },
      build: (run, conditions) => {
        const rollup = run.rollup as GroupRollup;
        return {
          observedGeneration: run.object.metadata.generation ?? 0,
          clusterCount: rollup.clusterCount,
          nonReadyClusterCount: rollup.nonReadyClusterCount,
          nonReadyClusters: rollup.nonReadyClusters,
          summary: rollup.summary,
          display: rollup.display,
          conditions,
        };
      },
      writer: mergeStatusWriter(ctx.kube),
    },
  });
  const groupsOfNamespace = (namespace: string | undefined): string[] => ctx.informers.clusterGroups.byIndex(Index.namespace, namespace ?? '').map(keyOf);
  const controller = new Controller('clustergroup', reconcile, { log, workers: ctx.config.workers, observer: observerOf(ctx) })
    .watch(ctx.informers.clusterGroups)
    .watch(ctx.informers.clusters, (cluster) => {
      // Heartbeats change only status.agent: enqueue the groups only when what they read changed.
      const key = keyOf(cluster);
      const print = groupFingerprint(cluster);
      if (seen.get(key) === print) return [];
      seen.set(key, print);
      return groupsOfNamespace(cluster.metadata.namespace);
    });
  ctx.informers.clusters.on((type, cluster) => {
    if (type !== 'DELETED') return;
    seen.delete(keyOf(cluster));
    for (const key of groupsOfNamespace(cluster.metadata.namespace)) controller.queue.add(key);
  });
  return controller;
}

/** What a ClusterGroup reads of a Cluster (labels, bundle counts, state, Ready), as one string. */
function groupFingerprint(cluster: Cluster & KubeObject): string {
  const ready = getCondition(cluster.status?.conditions, ConditionType.Ready);
  return JSON.stringify([
    cluster.metadata.labels ?? {},
    cluster.status?.summary ?? null,
    cluster.status?.display?.state ?? null,
    ready?.status ?? null,
    ready?.reason ?? null,
    ready?.message ?? null,
  ]);
}
