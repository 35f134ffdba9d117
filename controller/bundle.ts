import { Index, deploymentsOfBundle } from './indexes.js';
import { OwnWrites } from '../lib/kube/ownwrites.js';
import { clusterHelmOptions } from './chartvalues.js';
import {
  API_VERSION,
  BundleState,
  agentLastSeen,
  ConditionType,
  Finalizer,
  Label,
  MANAGED_LABEL_VALUE,
  Reason,
  emptyBundleSummary,
  setCondition,
  getCondition,
  type Bundle,
  type BundleDeployment,
  type BundleDeploymentOptions,
  type BundleDeploymentSpec,
  type BundleSummary,
  type ClusterGroup,
  type RolloutStatus,
} from '../lib/api/index.js';
import { shardFilter, shardLabelsOf } from './shard.js';
import { deploymentID, optionsHash, selectClusters, type GroupInfo } from '../lib/bundle/index.js';
import { groupsOf } from '../lib/bundle/target.js';
import { mapLimit } from '../lib/util/concurrency.js';
import { jsonEqual } from '../lib/util/json.js';
import { Controller, type Reconcile } from '../lib/kube/controller.js';
import { reconciler, type RunState, type Step } from '../lib/kube/reconciler.js';
import { SUMMARY_CONDITIONS, applyStatusWriter, type StatusClient, type StatusWriter } from '../lib/kube/reconciler-status.js';
import { withoutIdleSummary } from '../lib/kube/status-compact.js';
import type { KubeObject } from '../lib/kube/client.js';
import { Ref, type ControllerContext, type ReconcilerContext } from './context.js';
import { CONTROLLER_FIELD_MANAGER } from './rbac.js';
import { readSecretData } from './store.js';
import { deploymentKeysRef, keysSecretName, writeBundleKeys } from './bundlekeys.js';
import { summarize, worstState } from './rollup.js';
import { andMore, boundRollout } from './status-bounds.js';
import { observer } from './gitrepo.js';
import { rollbackCondition, rollbackMessage, runningVersions, type RollbackStatus } from './history.js';
import { clusterOffline, planTargets } from './rollout-targets.js';
import { atomicAnnotationsMatch } from './atomic-targets.js';
import { keptContents } from './content-objects.js';
import { rolloutReadiness } from './rollout.js';

/**
 * The BundleDeployment finalizer is the agent's to remove: it prunes what the deployment applied, then lets
 * it go. The controller writes it with the BundleDeployment when the Cluster has a registered agent (one
 * write fewer upstream per deployment, and one managedFields entry less in etcd) and keeps it on every
 * later apply once it is there; an agent adds it itself to a BundleDeployment written before it
 * registered. A cluster whose agent never registered has nothing to prune, so its BundleDeployments
 * delete at once.
 *
 * The Bundle reconciler: targeting -> one BundleDeployment per (bundle, cluster) in the cluster
 * namespace, with that cluster's customized options; the registry credentials the agent needs are
 * copied next to it; BundleDeployments of clusters that stopped matching are deleted; status rolls up.
 *
 * A pass runs on every change of the Bundle, of its BundleDeployments (their status included: the
 * roll-up) and of targeting, so it writes only what changed: a BundleDeployment whose labels and spec
 * already are what the informer holds is not applied again, nor are agent credentials already written
 * from the same version of the registry Secret (unless the agent reports them missing); the rest is written concurrently (at most
 * {@link WRITE_CONCURRENCY} at once). With N clusters, an agent reporting Ready costs one status patch of
 * the Bundle, not N applies.
 */

type BundleObject = Bundle & KubeObject;
type BundleDeploymentObject = BundleDeployment & KubeObject;

const FIELD_MANAGER = CONTROLLER_FIELD_MANAGER;
/** BundleDeployments written at once by one pass. */
export const WRITE_CONCURRENCY = 8;
/**
 * A pass that changed BundleDeployments (or runs before the informer delivered an earlier pass's writes)
 * leaves the Bundle's status to the pass their watch events start
 * (BundleDeployment events reach the Bundle reconciler coalesced for {@link DEPLOYMENT_EVENTS_COALESCE_MS}):
 * agents usually report within that time, so the Bundle goes from its last status straight to the new one,
 * one status write instead of two (Targeted with nothing ready yet, then Ready), and the GitRepo's roll-up
 * follows once. The price is a Bundle status up to that long behind its BundleDeployments. At most this many
 * passes in a row postpone, so a Bundle whose every pass writes still shows its status. Measured on the
 * fan-out of 1,000 bundles (bench/README.md): 83 s -> 72 s, about 650 Bundle status writes fewer.
 */
export const STATUS_POSTPONE_LIMIT = 3;
/** See {@link STATUS_POSTPONE_LIMIT}. */
export const DEPLOYMENT_EVENTS_COALESCE_MS = 2000;
/** When a postponed pass looks again if no watch event came (a write that changed no BundleDeployment). */
const POSTPONED_RECHECK_MS = 5000;
/**
 * How long a BundleDeployment this reconciler created is read from its own write while the informer has not
 * delivered it (lib/kube/ownwrites.ts). A pass that runs in that window (the Bundle's own status event comes
 * first) would otherwise apply it again: about 600 such applies in the fan-out of 1,000 bundles. A watch event
 * comes within a second; past this time the next pass writes it again, which changes nothing.
 */
export const CREATED_DEPLOYMENT_TTL_MS = 10_000;

/** Name of the Secret holding the agent's registry credentials for one BundleDeployment. */
export function ociSecretName(bdName: string): string {
  return `${bdName.slice(0, 248)}-oci`;
}

/** The deployment options a Bundle sets for every cluster (its spec minus content and targeting). */
export function baseOptions(spec: Bundle['spec']): BundleDeploymentOptions {
  const {
    paused: _p,
    forceSyncGeneration: _f,
    resources: _r,
    oci: _o,
    contentsID: _c,
    targets: _t,
    targetRestrictions: _tr,
    dependsOn: _d,
    rollback: _rb,
    rolloutStrategy: _rs,
    ...options
  } = spec;
  return options;
}

/** The BundleDeployment spec for one cluster. */
export function bundleDeploymentSpec(bundle: Bundle, options: BundleDeploymentOptions, bdName: string, existing?: BundleDeployment): BundleDeploymentSpec {
  const id = deploymentID(bundle.spec.contentsID ?? 'unknown', optionsHash(options));
  if (bundle.spec.paused && existing && existing.spec.deploymentID !== id) {
    // Paused: the new version is staged, the applied one stays.
    return { ...existing.spec, paused: true, stagedDeploymentID: id, stagedOptions: options };
  }
  const spec: BundleDeploymentSpec = { deploymentID: id, options };
  if (bundle.spec.paused) spec.paused = true;
  if (bundle.spec.oci) {
    spec.oci = {
      ...bundle.spec.oci,
      ...(bundle.spec.oci.secretName ? { secretName: ociSecretName(bdName) } : {}),
      ...deploymentKeysRef(bundle.spec.oci, bdName),
    };
  }
  if (bundle.spec.resources) spec.resources = bundle.spec.resources;
  if (bundle.spec.dependsOn) spec.dependsOn = bundle.spec.dependsOn;
  if (bundle.spec.forceSyncGeneration) spec.forceSyncGeneration = bundle.spec.forceSyncGeneration;
  if (options.correctDrift) spec.correctDrift = options.correctDrift;
  return spec;
}

/** Read-only credentials for agents: agentUsername/agentPassword when the Secret has them, else username/password. */
export function agentCredentialData(type: string | undefined, data: Record<string, string>): { type: string; stringData: Record<string, string> } {
  if (data.agentUsername !== undefined && data.agentPassword !== undefined) {
    return { type: 'kubernetes.io/basic-auth', stringData: { username: data.agentUsername, password: data.agentPassword } };
  }
  if (type === 'kubernetes.io/dockerconfigjson' && data['.dockerconfigjson'] !== undefined) {
    return { type, stringData: { '.dockerconfigjson': data['.dockerconfigjson'] } };
  }
  return { type: 'kubernetes.io/basic-auth', stringData: { username: data.username ?? '', password: data.password ?? '' } };
}

/**
 * The Ready message of a Bundle that is not ready: the first cluster that is not, its state and, when its
 * BundleDeployment says why (the agent's refusal of a bad bundle, say), that message too.
 */
export function notReadyMessage(summary: BundleSummary): string {
  const first = summary.nonReadyResources?.[0];
  if (!first) return '';
  return `${first.name}: ${first.bundleState}${first.message ? ` (${first.message})` : ''}${andMore(1, summary.desiredReady - summary.ready)}`.slice(0, 1024);
}

function groupsIn(ctx: ReconcilerContext, namespace: string): GroupInfo[] {
  return ctx.informers.clusterGroups
    .byIndex(Index.namespace, namespace)
    .map((g: ClusterGroup & KubeObject) => ({ name: g.metadata.name, labels: g.metadata.labels ?? {}, selector: g.spec?.selector }));
}

async function deleteDeployment(ctx: ReconcilerContext, bd: BundleDeploymentObject): Promise<void> {
  const ns = bd.metadata.namespace ?? '';
  await ctx.kube.delete(Ref.bundleDeployment(ns, bd.metadata.name));
  await ctx.kube.delete(Ref.secret(ns, ociSecretName(bd.metadata.name)));
  if (bd.spec.oci?.decryptionSecretName) await ctx.kube.delete(Ref.secret(ns, keysSecretName(bd.metadata.name)));
}

/** The agents' copy of a Bundle's registry credentials, read once per pass. */
interface AgentCredentials {
  type: string;
  stringData: Record<string, string>;
  version: string;
}

async function agentCredentials(ctx: ReconcilerContext, bundle: BundleObject): Promise<AgentCredentials | undefined> {
  const secretName = bundle.spec.oci?.secretName;
  if (!secretName) return undefined;
  const source = await readSecretData(ctx.kube, bundle.metadata.namespace ?? '', secretName, 'ociRegistry.authSecretName');
  return { ...agentCredentialData(source.type, source.data), version: source.resourceVersion ?? '' };
}

/** The BundleDeployment of `bundle` for one cluster, as the controller writes it. */
export function desiredDeployment(
  bundle: BundleObject,
  clusterName: string,
  clusterNs: string,
  options: BundleDeploymentOptions,
  existing: BundleDeploymentObject | undefined,
  agentRegistered = false,
): BundleDeploymentObject {
  const name = bundle.metadata.name;
  // Sticky: an apply without the finalizer would take it off while the agent has resources to prune.
  const hold = agentRegistered || (existing?.metadata.finalizers?.includes(Finalizer.BundleDeployment) ?? false);
  return {
    apiVersion: API_VERSION,
    kind: 'BundleDeployment',
    metadata: {
      name,
      namespace: clusterNs,
      ...(hold ? { finalizers: [Finalizer.BundleDeployment] } : {}),
      labels: {
        [Label.BundleName]: name,
        [Label.BundleNamespace]: bundle.metadata.namespace ?? '',
        [Label.RepoName]: bundle.metadata.labels?.[Label.RepoName] ?? '',
        [Label.Cluster]: clusterName,
        [Label.Managed]: MANAGED_LABEL_VALUE,
        ...shardLabelsOf(bundle),
      },
    },
    spec: bundleDeploymentSpec(bundle, options, name, existing),
  };
}

/** Whether `existing` already has everything `desired` sets (so applying it again would change nothing). */
export function deploymentUpToDate(existing: BundleDeploymentObject | undefined, desired: BundleDeploymentObject): boolean {
  if (!existing || existing.metadata.deletionTimestamp) return false;
  const labels = existing.metadata.labels ?? {};
  // A rollback's label must also go when the rollback does.
  const rollbackLabelMatches = (labels[Label.RolledBackTo] === undefined) === (desired.metadata.labels?.[Label.RolledBackTo] === undefined);
  return (
    rollbackLabelMatches &&
    atomicAnnotationsMatch(existing, desired) &&
    Object.entries(desired.metadata.labels ?? {}).every(([k, v]) => labels[k] === v) &&
    jsonEqual(existing.spec, desired.spec)
  );
}

/** Whether the agent reports that the credential Secret of its BundleDeployment is missing (deleted by hand, say). */
export function agentMissesCredentials(bd: BundleDeployment | undefined): boolean {
  return (bd?.status?.conditions ?? []).some((c) => c.status === 'False' && c.reason === Reason.SecretNotFound);
}

/**
 * Which agent credentials this process wrote, by BundleDeployment key: the source Secret's
 * resourceVersion and the BundleDeployment uid they were written for (their owner). After a restart
 * it is empty, so every credential Secret is written once more; then only when the source changes.
 */
type WrittenCredentials = Map<string, string>;

/** Writes one BundleDeployment (`bd`, as targeting built it) and its agent credentials where they are not up to date; returns what it wrote (undefined: nothing). */
async function writeDeployment(
  ctx: ReconcilerContext,
  deployments: OwnWrites<BundleDeploymentObject>,
  bundle: BundleObject,
  bd: BundleDeploymentObject,
  credentials: AgentCredentials | undefined,
  written: WrittenCredentials,
): Promise<BundleDeploymentObject | undefined> {
  const name = bundle.metadata.name;
  const clusterNs = bd.metadata.namespace ?? '';
  const key = `${clusterNs}/${name}`;
  const existing = deployments.get(key);
  const bdUpToDate = deploymentUpToDate(existing, bd);
  const credentialsUpToDate =
    !credentials || (bdUpToDate && written.get(key) === `${credentials.version}|${existing?.metadata.uid ?? ''}` && !agentMissesCredentials(existing));
  ctx.metrics.deploymentWrites.inc({ outcome: bdUpToDate ? 'unchanged' : 'applied' });
  if (bdUpToDate && credentialsUpToDate) return undefined;
  const applied = bdUpToDate && existing ? existing : await ctx.kube.apply<BundleDeploymentObject>(bd, FIELD_MANAGER);
  if (applied !== existing) deployments.record(key, existing, applied);
  if (credentials) {
    await ctx.kube.apply(
      {
        apiVersion: 'v1',
        kind: 'Secret',
        type: credentials.type,
        metadata: {
          name: ociSecretName(name),
          namespace: clusterNs,
          labels: { [Label.Managed]: MANAGED_LABEL_VALUE, [Label.BundleName]: name },
          ownerReferences: [{ apiVersion: API_VERSION, kind: 'BundleDeployment', name, uid: applied.metadata.uid ?? '', controller: true }],
        },
        stringData: credentials.stringData,
      },
      FIELD_MANAGER,
    );
    written.set(key, `${credentials.version}|${applied.metadata.uid ?? ''}`);
  }
  return applied;
}

/** One cluster a Bundle targets, with the BundleDeployment it gets there. */
interface Target {
  cluster: string;
  labels?: Record<string, string>;
  clusterNs: string;
  options: BundleDeploymentOptions;
  desired: BundleDeploymentObject;
  groups: { name: string; labels: Record<string, string> }[];
  offline: boolean;
  /** No BundleDeployment is written in this pass (the rollout holds it back). */
  skip?: boolean;
}

/** The working state of one Bundle reconcile. */
interface BundleRun extends RunState<BundleObject> {
  /** Clusters selected by the targets (some may still wait for their cluster namespace). */
  selected: number;
  /** Selected clusters without a cluster namespace yet. */
  waiting: number;
  targets: Target[];
  /** The BundleDeployments as written by this run (the informer may not have them yet). */
  applied: Map<string, BundleDeploymentObject>;
  /**
   * How many BundleDeployments have a watch event still to come: this run changed them (created, or gave a new
   * resourceVersion), or an earlier run did and the informer has not delivered that write yet.
   */
  changed: number;
  /** The status write was left to the run those events start (STATUS_POSTPONE_LIMIT). */
  postponed?: boolean;
  summary?: BundleSummary;
  /** The rollback in force, as applied to the targets. */
  rollback?: RollbackStatus;
  /** The staged rollout's progress (spec.rolloutStrategy). */
  rollout?: RolloutStatus;
  /** When the rollout wants a look again (soak end, deadline). */
  rolloutRequeueMs?: number;
  /** helm.atomic: clusters rolled back (or not) and why (controller/atomic.ts). */
  atomic?: string | undefined;
}

/** Field manager of the Bundle reconciler's part of Bundle status (the GitRepo reconciler writes ArtifactsStored). */
export const BUNDLE_STATUS_MANAGER = 'flotilla-bundle-status';
/** The status fields and conditions the Bundle reconciler owns. */
const OWNED_STATUS = ['observedGeneration', 'conditions', 'summary', 'display', 'observedContentsID', 'versions', 'rollback', 'rollout'];
const OWNED_CONDITIONS = [ConditionType.Targeted, ConditionType.RolledBack, ...SUMMARY_CONDITIONS];

/** The Bundle reconciler's status writer: server-side apply with {@link BUNDLE_STATUS_MANAGER}, owning its keys and conditions only. */
export function bundleStatusWriter(kube: StatusClient): StatusWriter {
  return applyStatusWriter(kube, BUNDLE_STATUS_MANAGER, OWNED_STATUS, OWNED_CONDITIONS);
}

const keyIn = (bd: { metadata: { namespace?: string | undefined; name: string } }) => `${bd.metadata.namespace ?? ''}/${bd.metadata.name}`;

/**
 * The roll-up of a Bundle: every targeted cluster's BundleDeployment (as just written when the informer
 * does not hold it yet) compared with the deployment ID the current Bundle implies for that cluster.
 */
export function bundleSummary(targets: readonly Pick<Target, 'desired'>[], current: (key: string) => BundleDeploymentObject | undefined): BundleSummary {
  const bds = targets.map((t) => current(keyIn(t.desired)) ?? t.desired);
  const expected = new Map(targets.map((t) => [keyIn(t.desired), t.desired.spec]));
  return summarize(
    bds,
    (bd) => bd.metadata.labels?.[Label.Cluster] ?? bd.metadata.namespace ?? '',
    (bd) => expected.get(keyIn(bd)) ?? bd.spec,
  );
}

/** The Bundle reconcile function, on the reconciler skeleton; unit tests run it on fake ports (controller/bundle.test.ts). */
export function bundleReconciler(ctx: ReconcilerContext): Reconcile {
  const written: WrittenCredentials = new Map();
  // The Bundle as the informer holds it, with this reconciler's own writes it has not delivered yet: no GET per reconcile.
  const own = new OwnWrites(ctx.informers.bundles);
  // The BundleDeployments likewise (never changed by a pass, so not copied), created ones included: a pass that
  // runs before the informer delivers the last pass's writes does not apply them again.
  const deployments = new OwnWrites(ctx.informers.bundleDeployments, { copy: false, createdTtlMs: CREATED_DEPLOYMENT_TTL_MS, now: () => ctx.now().getTime() });
  const current = (key: string) => deployments.get(key);
  /** Passes in a row that postponed their status write, by Bundle key. */
  const postponedPasses = new Map<string, number>();

  /** Targeting: the clusters the Bundle selects, and the BundleDeployment each gets. */
  const target: Step<BundleRun> = async (run) => {
    const bundle = run.object;
    const namespace = bundle.metadata.namespace ?? '';
    // A Cluster being deleted is no target any more: its BundleDeployments go first (controller/cluster.ts).
    const clusters = ctx.informers.clusters.byIndex(Index.namespace, namespace).filter((c) => !c.metadata.deletionTimestamp);
    const groups = groupsIn(ctx, namespace);
    const selected = selectClusters(
      bundle.spec.targetRestrictions,
      bundle.spec.targets,
      clusters.map((c) => ({ name: c.metadata.name, labels: c.metadata.labels ?? {} })),
      groups,
      baseOptions(bundle.spec),
    );
    run.selected = selected.length;
    for (const sel of selected) {
      const cluster = clusters.find((c) => c.metadata.name === sel.cluster);
      const clusterNs = cluster?.status?.namespace;
      if (!cluster || !clusterNs) {
        run.waiting += 1;
        continue;
      } // the Cluster reconciler creates its namespace first
      // Helm values templated for this cluster (cluster labels, ${ }), as Fleet's controller does: controller/chartvalues.ts.
      const templated = {
        name: cluster.metadata.name,
        namespace: cluster.metadata.namespace,
        labels: cluster.metadata.labels,
        annotations: cluster.metadata.annotations,
        values: cluster.spec?.templateValues,
      };
      const options = clusterHelmOptions(sel.options, templated, bundle.metadata.name);
      const agentRegistered = agentLastSeen(cluster) !== undefined;
      const desired = desiredDeployment(bundle, cluster.metadata.name, clusterNs, options, current(`${clusterNs}/${bundle.metadata.name}`), agentRegistered);
      const labels = cluster.metadata.labels ?? {};
      run.targets.push({
        cluster: cluster.metadata.name,
        labels,
        clusterNs,
        options,
        desired,
        groups: groupsOf(labels, groups),
        offline: clusterOffline(cluster),
      });
    }
    // The rollout planner decides which version each target gets: spec.rollback pins, staged rollout (controller/rollout.ts).
    // A bad rollback or rolloutStrategy stalls here, before any write.
    // etcd mode: rolled-back and kept versions come from content Secrets (controller/content-objects.ts).
    const kept = await keptContents(
      ctx.kube,
      bundle,
      run.targets.map((t) => current(keyIn(t.desired))),
    );
    const outcome = planTargets(bundle, run.targets, (t) => current(keyIn(t.desired)), run.now, kept);
    run.rollback = outcome.rollback;
    run.rollout = outcome.rollout;
    run.rolloutRequeueMs = outcome.requeueAfterMs;
    run.atomic = outcome.atomic;
    return 'continue';
  };

  /** Writes what changed (at most WRITE_CONCURRENCY at once); a failed write fails the pass once the others are done. */
  const write: Step<BundleRun> = async (run) => {
    const credentials = run.targets.length > 0 ? await agentCredentials(ctx, run.object) : undefined;
    await mapLimit(run.targets, WRITE_CONCURRENCY, async (t) => {
      if (t.skip) return;
      const before = current(keyIn(t.desired))?.metadata.resourceVersion;
      const applied = await writeDeployment(ctx, deployments, run.object, t.desired, credentials, written);
      if (!applied) return;
      run.applied.set(keyIn(applied), applied);
      if (applied.metadata.resourceVersion !== before) run.changed++;
    });
    // Written by an earlier pass and not delivered yet: their watch events, too, are still to come.
    for (const t of run.targets) if (!t.skip && !run.applied.has(keyIn(t.desired)) && deployments.awaitingCache(keyIn(t.desired))) run.changed++;
    const ns = run.object.metadata.namespace ?? '';
    const targeted = run.targets.map((t) => run.applied.get(keyIn(t.desired)) ?? current(keyIn(t.desired)) ?? t.desired);
    await writeBundleKeys(ctx, run.object, targeted, deploymentsOfBundle(ctx.informers, ns, run.object.metadata.name));
    return 'continue';
  };

  /** Deletes the BundleDeployments of clusters no longer targeted. */
  const prune: Step<BundleRun> = async (run) => {
    const wanted = new Set(run.targets.map((t) => keyIn(t.desired)));
    for (const bd of deploymentsOfBundle(ctx.informers, run.object.metadata.namespace ?? '', run.object.metadata.name)) {
      if (!wanted.has(keyIn(bd))) {
        await deleteDeployment(ctx, bd);
        written.delete(keyIn(bd));
      }
    }
    return 'continue';
  };

  return reconciler<BundleObject, BundleRun>({
    name: 'bundle',
    log: ctx.log,
    now: ctx.now,
    kube: ctx.kube,
    get: async (key) => own.get(key),
    ownWrites: own,
    finalizer: {
      name: Finalizer.Bundle,
      finalize: async (bundle) => {
        for (const bd of deploymentsOfBundle(ctx.informers, bundle.metadata.namespace ?? '', bundle.metadata.name)) await deleteDeployment(ctx, bd);
        return 'done';
      },
    },
    start: (bundle, now) => ({
      object: bundle,
      now,
      conditions: [...(bundle.status?.conditions ?? [])],
      selected: 0,
      waiting: 0,
      targets: [],
      applied: new Map(),
      changed: 0,
    }),
    steps: () => [target, write, prune],
    status: {
      fallbackReason: Reason.Progressing,
      readiness: (run) => {
        run.conditions = setCondition(
          run.conditions,
          {
            type: ConditionType.Targeted,
            status: run.selected > 0 ? 'True' : 'False',
            observedGeneration: run.object.metadata.generation,
            reason: run.selected > 0 ? Reason.Succeeded : Reason.NoMatchingClusters,
            message:
              run.selected > 0
                ? `${run.selected} cluster(s) targeted${run.waiting ? `, ${run.waiting} waiting for their namespace` : ''}`
                : 'no cluster matches the targets',
          },
          run.now,
        );
        run.conditions = rollbackCondition(run.conditions, run.object, run.rollback, run.now);
        run.summary = bundleSummary(run.targets, (key) => run.applied.get(key) ?? current(key));
        const state = worstState(run.summary);
        const rollout = rolloutReadiness(run.rollout);
        if (rollout) return rollout;
        if (run.atomic) return { status: 'False', reason: Reason.RolloutFailed, message: run.atomic, progressing: false };
        const ready = state === BundleState.Ready && run.waiting === 0;
        const rolledBack = run.rollback ? rollbackMessage(run.rollback) : '';
        return {
          status: ready ? 'True' : 'False',
          reason: ready ? (run.rollback ? Reason.RolledBack : Reason.Succeeded) : Reason.ResourcesNotReady,
          message: ready ? rolledBack : notReadyMessage(run.summary) || (run.waiting ? `${run.waiting} cluster(s) waiting for their namespace` : ''),
          progressing: state === BundleState.WaitApplied || state === BundleState.Pending || run.waiting > 0,
        };
      },
      build: (run, conditions) => {
        const summary = run.summary ?? emptyBundleSummary();
        return {
          observedGeneration: run.object.metadata.generation,
          conditions: withoutIdleSummary(conditions),
          summary,
          display: { readyClusters: `${summary.ready}/${summary.desiredReady}`, state: worstState(summary) ?? 'NoTargets' },
          observedContentsID: run.object.spec.contentsID,
          versions: run.object.spec.oci
            ? runningVersions(run.object.status?.history, deploymentsOfBundle(ctx.informers, run.object.metadata.namespace ?? '', run.object.metadata.name))
            : undefined,
          rollback: run.rollback,
          rollout: boundRollout(run.rollout),
        };
      },
      writer: bundleStatusWriter(ctx.kube),
      postpone: (run) => {
        const key = keyIn(run.object);
        if (postponedPasses.size > 10_000) postponedPasses.clear(); // Bundles deleted right after a postponing pass
        const passes = postponedPasses.get(key) ?? 0;
        if (run.changed > 0 && passes < STATUS_POSTPONE_LIMIT) {
          postponedPasses.set(key, passes + 1);
          run.postponed = true;
          return true;
        }
        postponedPasses.delete(key);
        return false;
      },
      transitions: (run, before, after) => {
        // One Event when the Bundle becomes Ready (a version rolled out everywhere, or the fleet recovered),
        // instead of one per cluster from the agents.
        const was = getCondition((before as BundleObject['status'])?.conditions, ConditionType.Ready);
        const now = getCondition((after as BundleObject['status'])?.conditions, ConditionType.Ready);
        if (now?.status !== 'True' || was?.status === 'True') return;
        const summary = run.summary ?? emptyBundleSummary();
        const contents = run.object.spec.contentsID ? `, contents ${run.object.spec.contentsID.slice(0, 12)}` : '';
        const rolledBack = run.rollback ? ` (${rollbackMessage(run.rollback)})` : '';
        void ctx.events.emit(run.object, 'Normal', ConditionType.Ready, `ready on ${summary.ready}/${summary.desiredReady} cluster(s)${contents}${rolledBack}`);
      },
    },
    requeue: (run) => {
      const after = Math.min(run.waiting > 0 ? 2000 : Infinity, run.rolloutRequeueMs ?? Infinity, run.postponed ? POSTPONED_RECHECK_MS : Infinity);
      return Number.isFinite(after) ? { requeueAfterMs: after } : {};
    },
  });
}

/** Creates the Bundle controller: {@link bundleReconciler} fed by the Bundle, BundleDeployment, Cluster and ClusterGroup informers. */
export function setupBundleController(ctx: ControllerContext): Controller {
  const controller = new Controller('bundle', bundleReconciler(ctx), {
    log: ctx.log,
    workers: ctx.config.workers,
    observer: observer(ctx),
    accepts: shardFilter(ctx.informers.bundles, ctx.config.shardId),
  });
  controller.watch(ctx.informers.bundles);
  // Coalesced: the pass after a rollout's writes takes in the agents' first reports (STATUS_POSTPONE_LIMIT).
  controller.watch(
    ctx.informers.bundleDeployments,
    (bd) => {
      const ns = bd.metadata.labels?.[Label.BundleNamespace];
      const n = bd.metadata.labels?.[Label.BundleName];
      return ns && n ? [`${ns}/${n}`] : [];
    },
    { coalesceMs: DEPLOYMENT_EVENTS_COALESCE_MS },
  );
  // A cluster or group change can change targeting for every bundle of its workspace.
  const allBundlesIn = (namespace: string | undefined) =>
    ctx.informers.bundles.byIndex(Index.namespace, namespace ?? '').map((b) => `${b.metadata.namespace}/${b.metadata.name}`);
  // Heartbeats change Cluster status every few seconds: only labels, the cluster namespace and the agent being offline matter here.
  const seen = new Map<string, string>();
  controller.watch(ctx.informers.clusters, (c, type) => {
    const key = `${c.metadata.namespace}/${c.metadata.name}`;
    const fingerprint =
      type === 'DELETED' || c.metadata.deletionTimestamp ? 'deleted' : JSON.stringify([c.metadata.labels ?? {}, c.status?.namespace ?? '', clusterOffline(c)]);
    if (seen.get(key) === fingerprint) return [];
    seen.set(key, fingerprint);
    return allBundlesIn(c.metadata.namespace);
  });
  controller.watch(ctx.informers.clusterGroups, (g) => allBundlesIn(g.metadata.namespace));
  return controller;
}
