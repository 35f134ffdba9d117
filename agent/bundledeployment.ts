import type { Logger } from 'pino';
import {
  API_VERSION,
  ConditionType,
  Finalizer,
  Label,
  Reason,
  getCondition,
  type BundleDeployment,
  type BundleDeploymentStatus,
  type ModifiedStatus,
  type NonReadyStatus,
} from '../lib/api/index.js';
import { renderOptionsFrom, type RenderedObject } from '../lib/bundle/index.js';
import { releaseNamespace } from '../lib/render/index.js';
import { BundleRenderer } from '../lib/isolate/bundle.js';
import { WaitingError, messageOf, reasonOf } from '../lib/errors.js';
import type { KubeClient, KubeObject } from '../lib/kube/client.js';
import type { Reconcile } from '../lib/kube/controller.js';
import { reconciler, type ReconcilerDefinition, type RunState, type Step } from '../lib/kube/reconciler.js';
import { mergeStatusWriter } from '../lib/kube/reconciler-status.js';
import { withoutIdleSummary } from '../lib/kube/status-compact.js';
import type { EventRecorder } from '../lib/kube/events.js';
import { splitKey } from '../lib/kube/informer.js';
import { OwnWrites } from '../lib/kube/ownwrites.js';
import type { Applier } from './applier.js';
import { defaultEngineRendering, dryRunHooks, prepareRendered, renderEngine, runHooks, type EngineRendering, type PreparedHook } from './charts.js';
import type { ContentLoader } from './content.js';
import { unreadyDependencies } from './dependencies.js';
import { VerifiedCache, applyPlan, needsCorrection, needsWrite, planObjects, type PlannedObject } from './deploy.js';
import { modifiedStatusOf } from './drift.js';
import { checkPullSecrets, rewriteContent, rewriteImages, takeImagesLock } from './images.js';
import { LOCAL_REGISTRY_CONFIGMAP } from '../lib/images/localregistry.js';
import type { MirrorMap } from '../lib/oci/index.js';
import { pruneList, sameInventory, unionIds, type Inventory, type InventoryStore } from './inventory.js';
import {
  crdScopes,
  describeId,
  idKey,
  namespacesOf,
  prepareObjects,
  validateObjects,
  type DesiredObject,
  type EnsuredNamespace,
  type ObjectId,
  type ReservedObjects,
} from './objects.js';
import { nonReadyStatusOf, readinessOf } from './readiness.js';
import { msUntilDeadline, readyDeadlineOf } from './readytimeout.js';
import { computeStatus, type MonitorResult, type StepFailure } from './status.js';

/**
 * The agent's BundleDeployment reconciler: get -> deletion -> finalizer -> paused? -> steps (inventory,
 * content, render, plan, apply + prune, monitor) -> in `finally`, compute the status and patch it once.
 *
 * - Deploying (the inventory's deployment ID or sync generation differs from the spec): write what changed,
 *   prune what left the bundle, record the new inventory.
 * - Otherwise: report drift (modified, missing); re-apply drifted objects when correctDrift.enabled.
 * - Paused: nothing is written; a not yet applied deployment is reported OutOfSync and only the existence
 *   and readiness of the objects already applied are checked.
 * - A BundleDeployment that is gone (or being deleted) has its inventory's objects deleted unless
 *   keepResources, then its inventory; the finalizer makes that happen before the object goes (the
 *   controller writes it once this cluster's agent has registered; the agent adds it, when it may, to a
 *   BundleDeployment written before), and the downstream inventory makes it happen even if the agent missed
 *   the deletion.
 * Failures are left in the status and rethrown so that the controller retries with the error's backoff.
 */

/** Options of the reconciler. */
export interface BundleDeploymentReconcilerOptions {
  upstream: KubeClient;
  clusterNamespace: string;
  applier: Applier;
  inventory: InventoryStore;
  content: ContentLoader;
  reserved: ReservedObjects;
  /** Most objects one bundle may render. */
  maxObjects: number;
  /** Parses and renders bundles in capped worker threads (lib/isolate); default one with the default limits and maxObjects. */
  renderer?: BundleRenderer;
  /** Requeue after a successful reconcile (drift detection). */
  resyncMs: number;
  /** Requeue while some objects are not ready. */
  notReadyResyncMs: number;
  concurrency?: number;
  events?: EventRecorder;
  /** Told what reconciles changed downstream (metrics). */
  observer?: DeploymentObserver;
  log: Logger;
  now?: () => Date;
  /** Helm and Kustomize rendering (default: helm and kustomize from PATH or FLOTILLA_HELM / FLOTILLA_KUSTOMIZE). */
  engines?: EngineRendering;
  /** The cluster's registry mirrors in effect (agent/mirrors.ts); locked images are rewritten onto them (docs/airgap.md). */
  imageMirrors?: () => MirrorMap;
  /**
   * The watch cache of the cluster namespace's BundleDeployments (the agent's informer), by `namespace/name`.
   * A reconcile reads its object there instead of GETting it from the upstream API server: every reconcile
   * is started by that watch (or a requeue of a key it delivered), so the cache holds the object at least as
   * new as the event, and writes made from an older copy fail their resourceVersion precondition and requeue.
   * Unset: each reconcile GETs the object.
   */
  cache?: { get(key: string): BD | undefined };
}

/** Observes what the reconciler changed downstream, for metrics (agent/metrics.ts). */
export interface DeploymentObserver {
  /** Objects written by a deploy, or re-applied by a drift correction (`driftCorrection`). */
  applied(count: number, driftCorrection: boolean): void;
  /** Objects deleted because they left the bundle or their BundleDeployment is gone. */
  pruned(count: number): void;
  /** Objects found modified or missing by the drift check of a BundleDeployment that was in sync until then. */
  driftDetected(count: number): void;
  /** One object read to plan a new deployment (`deploying`) or to check an applied one for drift. */
  read(deploying: boolean): void;
}

type BD = BundleDeployment & KubeObject;

/** What one reconcile found; the input of the status. */
interface Run extends RunState<BD> {
  bd: BD;
  /** Reads and writes downstream: the agent itself, or the BundleDeployment's serviceAccount (see {@link identity}). */
  applier: Applier;
  inventory: Inventory | undefined;
  deploying: boolean;
  appliedDeploymentID: string | undefined;
  /** When the applied deployment was applied (from the inventory; now, once this run applies a new one). */
  appliedAt: string | undefined;
  desired: DesiredObject[];
  namespaces: EnsuredNamespace[];
  /** Namespaces objects live in that must exist already (see namespacesOf). */
  requiredNamespaces: string[];
  plan: PlannedObject[];
  written: Map<string, KubeObject>;
  pruned: number;
  monitor: MonitorResult | undefined;
  /** The status computed at the end (see {@link computeStatus}). */
  computed?: BundleDeploymentStatus;
  /** Helm hooks of the deployment (agent/charts.ts). */
  hooks: PreparedHook[];
  /** Identity keys of objects kept out of the inventory: a chart's crds/. */
  unpruned: Set<string>;
}

/** Reconciles the BundleDeployments of one cluster namespace. */
export class BundleDeploymentReconciler {
  private finalizersAllowed = true;
  private readonly now: () => Date;
  private readonly verified = new VerifiedCache();
  private readonly renderer: BundleRenderer;
  private readonly engines: EngineRendering;
  /**
   * The watch cache with this reconciler's own writes it has not delivered yet: the reconcile that the
   * finalizer's watch event starts must see the status the first reconcile wrote, or it writes it again.
   */
  private readonly own: OwnWrites<BD> | undefined;

  /** Reconciles the BundleDeployment with key `namespace/name` (the shared skeleton: lib/kube/reconciler.ts). */
  readonly reconcile: Reconcile;

  constructor(private readonly o: BundleDeploymentReconcilerOptions) {
    this.own = o.cache ? new OwnWrites(o.cache) : undefined;
    this.now = o.now ?? (() => new Date());
    this.renderer = o.renderer ?? new BundleRenderer({ limits: { maxObjects: o.maxObjects } });
    this.engines = o.engines ?? defaultEngineRendering(this.renderer);
    this.reconcile = reconciler(this.definition());
  }

  private ref(name: string) {
    return { apiVersion: API_VERSION, kind: 'BundleDeployment', namespace: this.o.clusterNamespace, name };
  }

  /** The skeleton's definition: get, finalizer, steps (paused: monitor only), status and requeue. */
  private definition(): ReconcilerDefinition<BD, Run> {
    return {
      name: 'bundledeployment',
      log: this.o.log,
      now: () => this.now(),
      kube: this.o.upstream,
      get: async (key) => {
        if (!this.own) return await this.o.upstream.get<BD>(this.ref(splitKey(key).name));
        // A copy (the run may change its object, and the cache is the informer's).
        return this.own.get(key);
      },
      ...(this.own ? { ownWrites: this.own } : {}),
      gone: async (key) => {
        await this.removeResources(splitKey(key).name, undefined);
      },
      finalizer: {
        name: Finalizer.BundleDeployment,
        always: true,
        finalize: async (bd) => {
          await this.removeResources(bd.metadata.name, bd.spec.options?.keepResources);
          return 'done';
        },
        shouldAdd: () => this.finalizersAllowed,
        onForbidden: (err) => {
          this.finalizersAllowed = false;
          this.o.log.info({ err: messageOf(err) }, 'the agent may not set finalizers on BundleDeployments; deletion relies on the downstream inventory');
        },
      },
      start: (bd, now) => ({
        object: bd,
        now,
        conditions: [...(bd.status?.conditions ?? [])],
        bd,
        applier: this.o.applier,
        inventory: undefined,
        deploying: false,
        appliedDeploymentID: undefined,
        appliedAt: undefined,
        desired: [],
        namespaces: [],
        requiredNamespaces: [],
        plan: [],
        written: new Map(),
        pruned: 0,
        monitor: undefined,
        hooks: [],
        unpruned: new Set(),
      }),
      steps: (run) =>
        run.bd.spec.paused
          ? [this.identity, this.loadInventory, this.monitorPaused]
          : [this.identity, this.loadInventory, this.dependencies, this.render, this.namespaces, this.plan, this.apply, this.monitor],
      status: {
        fallbackReason: Reason.InternalError,
        readiness: (run, error) => {
          const status = this.statusOf(run, error);
          run.conditions = status.conditions ?? [];
          const ready = getCondition(status.conditions, ConditionType.Ready);
          const deployed = getCondition(status.conditions, ConditionType.Deployed);
          return {
            status: ready?.status ?? 'Unknown',
            reason: ready?.reason ?? Reason.Progressing,
            message: ready?.message ?? '',
            progressing: deployed?.status === 'Unknown',
          };
        },
        build: (run, conditions) => ({ ...run.computed, conditions: withoutIdleSummary(conditions) }),
        writer: mergeStatusWriter(this.o.upstream),
        transitions: (run, before, after) => this.recordEvents(run, before as BundleDeploymentStatus | undefined, after as BundleDeploymentStatus),
      },
      requeue: (run, error) => (error !== undefined ? {} : { requeueAfterMs: this.requeueAfterMs(run) }),
    };
  }

  /**
   * With `options.serviceAccount`, every read and write of the bundle's objects acts as that ServiceAccount
   * of the agent's namespace (as in Fleet); the inventory is still the agent's own. Objects of a removed
   * BundleDeployment are deleted as the agent, since the BundleDeployment that named the account is gone.
   */
  private readonly identity: Step<Run> = async (run) => {
    const account = run.bd.spec.options?.serviceAccount;
    if (account) run.applier = await this.o.applier.impersonating(this.o.reserved.namespace, account);
    return 'continue';
  };

  private readonly loadInventory: Step<Run> = async (run) => {
    run.inventory = await this.o.inventory.get(run.bd.metadata.name);
    run.appliedDeploymentID = run.inventory?.deploymentID || undefined;
    run.appliedAt = run.inventory?.appliedAt;
    run.deploying = run.inventory?.deploymentID !== run.bd.spec.deploymentID || run.inventory.syncGeneration !== (run.bd.spec.forceSyncGeneration ?? 0);
    return 'continue';
  };

  /** A new deployment waits for the bundles it depends on to be ready on this cluster. */
  private readonly dependencies: Step<Run> = async (run) => {
    if (!run.deploying || (run.bd.spec.dependsOn ?? []).length === 0) return 'continue';
    const { items } = await this.o.upstream.list<BD>({ apiVersion: API_VERSION, kind: 'BundleDeployment', namespace: this.o.clusterNamespace });
    const waiting = unreadyDependencies(run.bd, items);
    if (waiting.length > 0) {
      throw new WaitingError(Reason.DependencyNotReady, `waiting for ${waiting.join(', ')}`, { retryAfterMs: this.o.notReadyResyncMs });
    }
    return 'continue';
  };

  /** Content -> rendered objects -> prepared and validated desired objects. */
  private readonly render: Step<Run> = async (run) => {
    const where = `BundleDeployment ${run.bd.metadata.name}`;
    // The images lock (agent/images.ts) is split off before rendering and applied to every rendered object.
    const { files, lock } = takeImagesLock((await this.o.content.load(run.bd)).files, where);
    const readLocalRegistry = () => this.o.applier.get({ apiVersion: 'v1', kind: 'ConfigMap', ...LOCAL_REGISTRY_CONFIGMAP });
    const options = run.bd.spec.options;
    const renderOptions = renderOptionsFrom(options);
    let served: Awaited<ReturnType<Applier['scopes']>> = () => undefined;
    // Helm and Kustomize bundles: agent/charts.ts (helm and kustomize run as bounded subprocesses).
    const rawEngine = await renderEngine(files, run.bd, run.applier.client, this.engines);
    const mirrors = this.o.imageMirrors?.();
    const engine = rawEngine && lock ? await rewriteContent(rawEngine, lock, readLocalRegistry, where, mirrors) : rawEngine;
    if (engine) served = await run.applier.scopes([...engine.crds, ...engine.objects, ...engine.hooks.map((h) => h.object)]);
    const prepare = {
      bundleDeploymentName: run.bd.metadata.name,
      deploymentID: run.bd.spec.deploymentID,
      isNamespaced: (a: string, k: string) => served(a, k),
    };
    const charted = engine ? prepareRendered(engine, prepare) : undefined;
    run.hooks = charted?.hooks ?? [];
    run.unpruned = charted?.crdKeys ?? new Set();
    let rendered: RenderedObject[] =
      charted?.objects ??
      (await this.renderer.renderForCluster(files, renderOptions, `BundleDeployment ${run.bd.metadata.name}`, async (rough) => {
        served = await run.applier.scopes([...rough]);
        const fromBundle = crdScopes([...rough]);
        return (apiVersion, kind) => (served(apiVersion, kind) ?? fromBundle.get(`${groupOf(apiVersion)}/${kind}`)) === false;
      }));
    if (!charted && lock) rendered = await rewriteImages(rendered, lock, readLocalRegistry, where, mirrors);
    run.desired = prepareObjects(rendered, prepare);
    const bundle = run.bd.metadata.labels?.[Label.BundleName] ?? run.bd.metadata.name;
    const readSecret = (namespace: string, name: string) => run.applier.get({ apiVersion: 'v1', kind: 'Secret', namespace, name });
    if (lock)
      await checkPullSecrets(
        run.desired.map((d) => d.object),
        lock,
        readSecret,
        { bundle, where, mirrors },
      );
    validateObjects(run.desired, this.o.reserved, this.o.maxObjects);
    const namespaces = namespacesOf(run.desired, {
      target: options?.targetNamespace || options?.namespace || options?.defaultNamespace,
      labels: options?.namespaceLabels,
      annotations: options?.namespaceAnnotations,
    });
    run.namespaces = namespaces.ensure;
    run.requiredNamespaces = namespaces.required;
    return 'continue';
  };

  /**
   * A new deployment applies nothing while an object's namespace is neither the target namespace, nor
   * defined by the bundle, nor present (Fleet: `namespaces "x" not found`). Waiting: it may be created.
   */
  private readonly namespaces: Step<Run> = async (run) => {
    if (!run.deploying) return 'continue';
    const missing: string[] = [];
    for (const name of run.requiredNamespaces) {
      if (!(await run.applier.get({ apiVersion: 'v1', kind: 'Namespace', name }))) missing.push(name);
    }
    if (missing.length === 0) return 'continue';
    const first = run.desired.find((d) => d.id.namespace === missing[0]);
    throw new WaitingError(
      Reason.NamespaceNotFound,
      `${first ? `${describeId(first.id)}: ` : ''}namespace${missing.length > 1 ? 's' : ''} ` +
        `${missing.join(', ')} ${missing.length > 1 ? 'do' : 'does'} not exist downstream; nothing was applied. Add a Namespace object to the bundle, ` +
        'set defaultNamespace or namespace in fleet.yaml (the agent creates that one), or create it',
      { retryAfterMs: 15_000 },
    );
  };

  private readonly plan: Step<Run> = async (run) => {
    // A new deployment without hooks: the apply of a single changed object is its own validation (deploy.ts).
    run.plan = await planObjects(this.deployContext(run), run.desired, run.deploying && run.hooks.length === 0);
    if (run.deploying) await dryRunHooks(run.applier, run.hooks);
    const drifted = run.deploying ? 0 : run.plan.filter(needsWrite).length;
    // Once per episode: a BundleDeployment already reported modified was counted when its drift began.
    if (drifted > 0 && run.bd.status?.nonModified !== false) this.o.observer?.driftDetected(drifted);
    return 'continue';
  };

  private deployContext(run: Run) {
    return {
      applier: run.applier,
      log: this.o.log.child({ bundleDeployment: run.bd.metadata.name }),
      concurrency: this.o.concurrency ?? 8,
      comparePatches: run.bd.spec.options?.diff?.comparePatches,
      verified: this.verified,
      force: forceOf(run.bd),
      onRead: () => this.o.observer?.read(run.deploying),
    };
  }

  /** Writes what must be written, prunes, records the inventory (see the module comment). */
  private readonly apply: Step<Run> = async (run) => {
    const bd = run.bd;
    const correctDrift = bd.spec.options?.correctDrift ?? bd.spec.correctDrift;
    if (!run.deploying && !correctDrift?.enabled) return 'continue';
    const writes = run.deploying ? needsWrite : needsCorrection;
    if (!run.deploying && !run.plan.some(writes)) return 'continue';
    const desiredIds = run.desired.filter((d) => !run.unpruned.has(idKey(d.id))).map((d) => d.id); // a chart's crds/ are never pruned
    const previous = run.inventory?.objects ?? [];
    const keepResources = bd.spec.options?.keepResources ?? false;
    const base = { bundleDeployment: bd.metadata.name, keepResources, ...this.removalOf(run) };
    // Recorded first, so that an agent killed while applying still knows every object it may have created
    // (not written again when the inventory already says exactly that: a new version of the same objects).
    const recorded: Inventory = {
      ...base,
      ...(run.appliedAt ? { appliedAt: run.appliedAt } : {}),
      deploymentID: run.inventory?.deploymentID ?? '',
      syncGeneration: run.inventory?.syncGeneration ?? 0,
      objects: unionIds(previous, desiredIds),
    };
    if (!sameInventory(run.inventory, recorded)) await this.o.inventory.put(recorded);
    const hookLog = this.o.log.child({ bundleDeployment: bd.metadata.name });
    if (run.deploying) await runHooks(run.applier, run.hooks, 'pre', run.namespaces, hookLog);
    const outcome = await applyPlan(this.deployContext(run), run.plan, run.namespaces, writes, forceOf(bd));
    if (run.deploying) await runHooks(run.applier, run.hooks, 'post', run.namespaces, hookLog);
    if ([...outcome.written.values()].some((o) => o.kind === 'CustomResourceDefinition')) this.engines.capabilities.reset();
    run.plan = outcome.plan;
    run.written = outcome.written;
    for (const id of run.deploying ? pruneList(previous, desiredIds) : []) {
      const result = await run.applier.prune(id, bd.metadata.name);
      if (result === 'deleted') run.pruned++;
      if (result === 'foreign') this.o.log.info({ object: describeId(id) }, 'not pruning an object another owner took over');
    }
    this.o.observer?.applied(run.written.size, !run.deploying);
    this.o.observer?.pruned(run.pruned);
    if (run.deploying) run.appliedAt = run.now.toISOString(); // helm.timeoutSeconds counts from here
    const appliedAt = run.appliedAt ? { appliedAt: run.appliedAt } : {};
    const applied: Inventory = {
      ...base,
      ...appliedAt,
      deploymentID: bd.spec.deploymentID,
      syncGeneration: bd.spec.forceSyncGeneration ?? 0,
      objects: desiredIds,
    };
    // What is stored now is `recorded`; a drift correction of the applied version leaves it as it was.
    if (!sameInventory(recorded, applied)) await this.o.inventory.put(applied);
    run.appliedDeploymentID = bd.spec.deploymentID;
    return 'continue';
  };

  /** Readiness and drift of every desired object. */
  private readonly monitor: Step<Run> = async (run) => {
    const nonReady: NonReadyStatus[] = [];
    const modified: ModifiedStatus[] = [];
    for (const p of run.plan) {
      const live = run.written.get(idKey(p.id)) ?? p.live;
      if (!run.written.has(idKey(p.id)) && p.drift.state !== 'unchanged') modified.push(modifiedStatusOf(p.drift));
      if (!live) continue;
      const readiness = readinessOf(live, run.bd.spec.options?.ignore?.conditions);
      if (!readiness.ready) nonReady.push(nonReadyStatusOf(live, readiness));
    }
    run.monitor = { resources: run.plan.map((p) => p.id), nonReady, modified };
    return 'continue';
  };

  /** Paused: only existence and readiness of what the inventory lists. */
  private readonly monitorPaused: Step<Run> = async (run) => {
    const ids: ObjectId[] = run.inventory?.objects ?? [];
    const nonReady: NonReadyStatus[] = [];
    const modified: ModifiedStatus[] = [];
    for (const id of ids) {
      const live = await run.applier.get(id);
      if (!live) {
        modified.push(modifiedStatusOf({ id, state: 'missing' }));
        continue;
      }
      const readiness = readinessOf(live, run.bd.spec.options?.ignore?.conditions);
      if (!readiness.ready) nonReady.push(nonReadyStatusOf(live, readiness));
    }
    run.monitor = { resources: ids, nonReady, modified };
    return 'stop';
  };

  /** The status of this run (conditions Ready, Deployed, Monitored and the lists); the skeleton adds the summary. */
  private statusOf(run: Run, error: unknown): BundleDeploymentStatus {
    const bd = run.bd;
    const failure = error === undefined ? undefined : failureOf(error, run.deploying || run.inventory === undefined ? 'deploy' : 'monitor');
    run.computed = computeStatus({
      previous: bd.status,
      generation: bd.metadata.generation,
      deploymentID: bd.spec.deploymentID,
      forceSyncGeneration: bd.spec.forceSyncGeneration,
      appliedDeploymentID: run.appliedDeploymentID,
      paused: bd.spec.paused ?? false,
      failure,
      monitor: run.monitor,
      now: run.now,
      readyDeadline: readyDeadlineOf(bd.spec.options?.helm?.timeoutSeconds, run.appliedAt),
    });
    return run.computed;
  }

  /** Not ready: again after notReadyResyncMs, or when helm.timeoutSeconds passes if sooner; else after resyncMs. */
  private requeueAfterMs(run: Run): number {
    if ((run.monitor?.nonReady.length ?? 0) === 0) return this.o.resyncMs;
    const deadline = readyDeadlineOf(run.bd.spec.options?.helm?.timeoutSeconds, run.appliedAt);
    const untilDeadline = deadline ? msUntilDeadline(deadline, run.now) : 0;
    return untilDeadline > 0 ? Math.min(this.o.notReadyResyncMs, untilDeadline + 100) : this.o.notReadyResyncMs;
  }

  private recordEvents(run: Run, before: BundleDeploymentStatus | undefined, after: BundleDeploymentStatus): void {
    const events = this.o.events;
    if (!events) return;
    const was = getCondition(before?.conditions, ConditionType.Deployed);
    const now = getCondition(after.conditions, ConditionType.Deployed);
    // A new deployment applied as asked is told once for the whole rollout, by the controller on the Bundle
    // (Ready): one Normal Event per cluster and version was the largest stream of writes of a fleet-wide
    // commit after the BundleDeployments themselves. Failures and drift stay per BundleDeployment.
    const deployed = run.appliedDeploymentID && run.appliedDeploymentID !== before?.appliedDeploymentID && now?.status === 'True';
    if (!deployed && run.written.size > 0) {
      void events.emit(run.bd, 'Normal', 'DriftCorrected', `re-applied ${run.written.size} modified or missing objects`);
    }
    if (now?.status === 'False' && (was?.status !== 'False' || was.reason !== now.reason)) {
      void events.emit(run.bd, 'Warning', now.reason, now.message);
    }
    if ((after.modifiedStatus?.length ?? 0) > 0 && (before?.modifiedStatus?.length ?? 0) === 0) {
      void events.emit(run.bd, 'Warning', Reason.Drifted, `${after.modifiedStatus?.length} objects modified or missing`);
    }
  }

  /**
   * What goes with the bundle beyond its objects, recorded in the inventory: a chart's crds/ CRDs with
   * deleteCRDResources, its namespace with deleteNamespace (never default, kube-*, or the agent's own).
   */
  private removalOf(run: Run): Pick<Inventory, 'crds' | 'deleteNamespace'> {
    const options = run.bd.spec.options;
    const namespace = releaseNamespace(options);
    const protectedNs = namespace === 'default' || namespace.startsWith('kube-') || namespace === this.o.reserved.namespace;
    return {
      ...(options?.deleteCRDResources ? { crds: run.desired.filter((d) => run.unpruned.has(idKey(d.id))).map((d) => d.id) } : {}),
      ...(options?.deleteNamespace && !protectedNs ? { deleteNamespace: namespace } : {}),
    };
  }

  /**
   * Deletes what a gone BundleDeployment's inventory lists (unless keepResources), with the CRDs and the
   * namespace it recorded for deletion, then the inventory.
   */
  private async removeResources(name: string, keepResources: boolean | undefined): Promise<void> {
    const inventory = await this.o.inventory.get(name);
    if (!inventory) return;
    const keep = keepResources ?? inventory.keepResources;
    let deleted = 0;
    if (!keep) {
      for (const id of pruneList([...inventory.objects, ...(inventory.crds ?? [])], [])) if ((await this.o.applier.prune(id, name)) === 'deleted') deleted++;
      if (inventory.deleteNamespace && (await this.o.applier.delete({ apiVersion: 'v1', kind: 'Namespace', name: inventory.deleteNamespace }))) deleted++;
    }
    this.o.observer?.pruned(deleted);
    await this.o.inventory.delete(name);
    this.o.log.info({ bundleDeployment: name, deleted, kept: keep ? inventory.objects.length : 0 }, 'bundle deployment removed');
  }
}

function groupOf(apiVersion: string): string {
  const i = apiVersion.indexOf('/');
  return i < 0 ? '' : apiVersion.slice(0, i);
}

/** The status entry for an error: its reason when it is a Flotilla error. */
export function failureOf(err: unknown, stage: StepFailure['stage']): StepFailure {
  return { reason: reasonOf(err, Reason.InternalError), message: messageOf(err).slice(0, 2048), stage };
}

/** Fleet's `helm.force` or `correctDrift.force`: objects the API server refuses to patch are deleted and re-created. */
function forceOf(bd: BundleDeployment): boolean {
  const correctDrift = bd.spec.options?.correctDrift ?? bd.spec.correctDrift;
  return (correctDrift?.force ?? false) || (bd.spec.options?.helm?.force ?? false);
}
