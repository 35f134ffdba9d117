import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { API_VERSION, type BundleDeployment, type Cluster, type RegistryMirror } from '../lib/api/index.js';
import { messageOf } from '../lib/errors.js';
import { KubeApiError, KubeClient, type KubeObject } from '../lib/kube/client.js';
import { Controller } from '../lib/kube/controller.js';
import { EventRecorder } from '../lib/kube/events.js';
import { Informer } from '../lib/kube/informer.js';
import type { KubeAccess } from '../lib/kube/kubeconfig.js';
import type { ArtifactLimits } from '../lib/oci/index.js';
import type { ContentLimits } from '../lib/bundle/limits.js';
import { BundleRenderer } from '../lib/isolate/bundle.js';
import { renderPool } from './renderslots.js';
import type { Isolate } from '../lib/isolate/isolate.js';
import { Applier } from './applier.js';
import { defaultEngineRendering } from './charts.js';
import { BundleDeploymentReconciler, failureOf } from './bundledeployment.js';
import { ContentLoader } from './content.js';
import { BOOTSTRAP_SECRET_NAME, DEFAULT_AGENT_NAMESPACE, STATE_SECRET_NAME, type AgentCredential } from './credentials.js';
import { INVENTORY_PREFIX, InventoryStore } from './inventory.js';
import { createAgentMetrics, type AgentMetrics } from './metrics.js';
import { AgentMirrors } from './mirrors.js';
import { Registration } from './registration.js';
import { formatTime } from '../lib/util/time.js';
import { flotillaVersion } from '../lib/version.js';

/**
 * One agent for one downstream cluster: registers (registration.ts), then watches its cluster namespace's
 * BundleDeployments upstream and reconciles them (bundledeployment.ts), heartbeats on its Cluster's status
 * and keeps its credential valid. Everything is per instance (clients, caches, queue, registration), so
 * several agents can run in one process, e.g. in tests and benchmarks; two agents on one downstream cluster
 * need distinct namespaces (and clientIDs in their bootstrap Secrets).
 */

/** Limits on what one bundle may be. */
export interface AgentLimits {
  /** Most objects one bundle may render; default 5000. */
  maxObjects: number;
  /** Largest inline bundle (decoded), bytes; default 100 MiB. */
  maxInlineBytes: number;
  /** Limits on pulled OCI artifacts (lib/oci defaults otherwise). */
  oci: Partial<ArtifactLimits>;
  /** Limits on parsing and rendering content, and its time and heap budget (lib/bundle/limits.ts). */
  content: Partial<ContentLimits>;
  /** Time and output limits of one helm or kustomize run (lib/render/tools.ts defaults otherwise). */
  engine: Partial<{ timeoutMs: number; maxOutputBytes: number }>;
}

/**
 * How often an agent reports on its Cluster by default. Each report is a write to the upstream API server,
 * so at 1,000 clusters 15 s meant 67 writes a second, most of that server's load (bench/README.md); the
 * Cluster goes AgentNotSeen after three missed reports (3 minutes), and mirror changes are read at each.
 */
export const DEFAULT_HEARTBEAT_MS = 60_000;

/** Options of an {@link Agent}. */
export interface AgentOptions {
  /** Access to the downstream cluster. */
  downstream: KubeAccess;
  /** The agent's namespace downstream (bootstrap, state and inventories); default flotilla-system. */
  namespace?: string;
  bootstrapSecretName?: string;
  stateSecretName?: string;
  /** Blob cache folder. */
  cacheDir: string;
  /** Heartbeat and credential check interval; default {@link DEFAULT_HEARTBEAT_MS}. */
  heartbeatIntervalMs?: number;
  /** Resync (drift detection) interval; default 30 s. */
  resyncIntervalMs?: number;
  /** Interval between prunings of the blob cache (blobs of artifacts no BundleDeployment pins); default 10 min. */
  cachePruneIntervalMs?: number;
  /** Resync interval while objects are not ready; default 5 s. */
  notReadyResyncMs?: number;
  /** Poll interval while waiting for the registration grant; default 2 s. */
  registrationPollMs?: number;
  /** Parallel reconciles; default 2. */
  workers?: number;
  /** Renders (each in a worker isolate of its own) running at once; default 2, as many as the default workers (renderslots.ts). */
  renderWorkers?: number;
  /** How long the running renders must all have run before another slot opens; default 1 s (renderslots.ts). */
  renderSpillAfterMs?: number;
  /**
   * The render worker pool; default one of the agent's own with `renderWorkers` slots. Benchmarks that
   * simulate many clusters in one process share one (a real agent process has one agent).
   */
  renderIsolate?: Isolate;
  limits?: Partial<AgentLimits>;
  /** Registry mirrors of the bootstrap configuration; the Cluster's spec.registryMirrors override them per registry (docs/mirrors.md). */
  registryMirrors?: readonly RegistryMirror[];
  /** Where the agent counts what it does; default: its own registry, without process metrics (main.ts passes the process's). */
  metrics?: AgentMetrics;
  log: Logger;
  now?: () => Date;
}

/** The parts that exist once the agent is registered. */
interface Deployer {
  clusterNamespace: string;
  informer: Informer<BundleDeployment & KubeObject>;
  controller: Controller;
  content: ContentLoader;
  /** Removes the informer from the by-state gauge. */
  untrack: () => void;
}

/** See the module comment. */
export class Agent {
  private readonly abort = new AbortController();
  private downstream: KubeClient | undefined;
  private registrationState: Registration | undefined;
  private deployer: Deployer | undefined;
  private loop: Promise<void> | undefined;
  /** A heartbeat was refused because the Cluster is gone (or access revoked) and that was logged. */
  private clusterGoneReported = false;
  private readonly log: Logger;
  /** What this agent counts (see agent/metrics.ts). */
  readonly metrics: AgentMetrics;
  /** The registry mirrors in effect (bootstrap entries and the Cluster's). */
  readonly mirrors: AgentMirrors;

  constructor(private readonly o: AgentOptions) {
    this.log = o.log.child({ agent: o.namespace ?? DEFAULT_AGENT_NAMESPACE });
    this.metrics = o.metrics ?? createAgentMetrics({ defaultMetrics: false });
    this.mirrors = new AgentMirrors({ bootstrap: o.registryMirrors ?? [], agentNamespace: this.namespace, log: this.log });
  }

  private get namespace(): string {
    return this.o.namespace ?? DEFAULT_AGENT_NAMESPACE;
  }

  /** The registration (after {@link start} began). */
  get registration(): Registration {
    if (!this.registrationState) throw new Error('the agent has not started');
    return this.registrationState;
  }

  /** The credential in use, once registered. */
  credential(): AgentCredential | undefined {
    return this.registrationState?.credential();
  }

  /** True once registered and the BundleDeployment cache is loaded. */
  isReady(): boolean {
    return this.deployer?.informer.hasSynced() ?? false;
  }

  /** True until the agent is stopped (registration waits and upstream outages are retried, not fatal). */
  isHealthy(): boolean {
    return !this.abort.signal.aborted;
  }

  /** Registers (waiting for the grant), then starts reconciling, heartbeats and credential upkeep. */
  async start(): Promise<void> {
    this.downstream = await KubeClient.fromKubeConfig(this.o.downstream);
    this.registrationState = new Registration({
      downstream: this.downstream,
      namespace: this.namespace,
      log: this.log,
      bootstrapSecretName: this.o.bootstrapSecretName ?? BOOTSTRAP_SECRET_NAME,
      stateSecretName: this.o.stateSecretName ?? STATE_SECRET_NAME,
      ...(this.o.registrationPollMs !== undefined ? { pollMs: this.o.registrationPollMs } : {}),
      ...(this.o.now ? { now: () => (this.o.now as () => Date)().getTime() } : {}),
    });
    const credential = await this.registrationState.ensureRegistered(this.abort.signal);
    await this.startDeployer(credential);
    this.loop = this.maintainLoop();
  }

  /** Stops reconciling and the loops, and closes the clients. */
  async stop(): Promise<void> {
    this.abort.abort();
    await this.loop;
    await this.stopDeployer();
    await this.registrationState?.close();
    await this.downstream?.close();
  }

  private async startDeployer(credential: AgentCredential): Promise<void> {
    const registration = this.registration;
    const downstream = this.downstream as KubeClient;
    const upstream = registration.upstream;
    const clusterNamespace = credential.clusterNamespace;
    const log = this.log.child({ cluster: credential.clusterName });
    const limits = this.o.limits ?? {};
    const inventory = new InventoryStore(downstream, this.namespace, clusterNamespace);
    const metrics = this.metrics;
    const content = new ContentLoader({
      upstream,
      clusterNamespace,
      cacheDir: this.o.cacheDir,
      limits: limits.oci ?? {},
      metrics,
      mirrors: { mirrors: this.mirrors, downstream, log },
      ...(limits.maxInlineBytes !== undefined ? { maxInlineBytes: limits.maxInlineBytes } : {}),
    });
    await this.readClusterMirrors();
    const isolate = this.o.renderIsolate ?? renderPool(this.o.renderWorkers ?? 2, this.o.renderSpillAfterMs);
    const renderer = new BundleRenderer({ limits: { ...limits.content, maxObjects: limits.maxObjects ?? 5000 }, isolate });
    const informer = new Informer<BundleDeployment & KubeObject>(
      upstream,
      { apiVersion: API_VERSION, kind: 'BundleDeployment', namespace: clusterNamespace },
      { log },
    );
    const reconciler = new BundleDeploymentReconciler({
      upstream,
      clusterNamespace,
      cache: informer,
      applier: new Applier(downstream),
      inventory,
      log,
      content,
      reserved: {
        namespace: this.namespace,
        inventoryPrefix: INVENTORY_PREFIX,
        names: [this.o.bootstrapSecretName ?? BOOTSTRAP_SECRET_NAME, this.o.stateSecretName ?? STATE_SECRET_NAME],
      },
      maxObjects: limits.maxObjects ?? 5000,
      renderer,
      engines: defaultEngineRendering(renderer, limits.engine),
      imageMirrors: () => this.mirrors.map(),
      resyncMs: this.o.resyncIntervalMs ?? 30_000,
      notReadyResyncMs: this.o.notReadyResyncMs ?? 5000,
      events: new EventRecorder(upstream, 'flotilla-agent', log),
      observer: metrics.deployments,
      ...(this.o.now ? { now: this.o.now } : {}),
    });
    const reconcile = async (key: string) => {
      try {
        return await reconciler.reconcile(key);
      } catch (err) {
        metrics.errors.inc({ reason: failureOf(err, 'deploy').reason });
        throw err;
      }
    };
    const controller = new Controller('bundledeployment', reconcile, { log, workers: this.o.workers ?? 2, observer: metrics.observer }).watch(informer);
    this.deployer = { clusterNamespace, informer, controller, content, untrack: metrics.track(() => informer.list()) };
    // One listing of the inventories before the first reconcile: each then starts from memory, not a GET.
    const inventoried = await inventory.list();
    informer.start();
    controller.start();
    await informer.waitForSync();
    // BundleDeployments removed while the agent was away still have inventories: reconcile them too.
    for (const name of inventoried) controller.queue.add(`${clusterNamespace}/${name}`);
    log.info({ clusterNamespace }, 'agent started');
  }

  private async stopDeployer(): Promise<void> {
    const d = this.deployer;
    this.deployer = undefined;
    if (!d) return;
    d.untrack();
    await d.informer.stop();
    await d.controller.stop();
    await d.content.close();
  }

  /** Heartbeat and credential upkeep, every heartbeat interval, until stopped; the blob cache pruning when due. */
  private async maintainLoop(): Promise<void> {
    const signal = this.abort.signal;
    let pruneDue = Date.now() + (this.o.cachePruneIntervalMs ?? 10 * 60_000);
    while (!signal.aborted) {
      await this.heartbeat();
      if (Date.now() >= pruneDue && (await this.pruneCache())) pruneDue = Date.now() + (this.o.cachePruneIntervalMs ?? 10 * 60_000);
      try {
        const result = await this.registration.maintain(signal);
        if (result === 'registered') await this.afterReregistration();
      } catch (err) {
        if (signal.aborted) break;
        this.log.warn({ err: messageOf(err) }, 'credential upkeep failed; retrying at the next heartbeat');
      }
      await sleep(this.heartbeatMs(), undefined, { signal }).catch(() => undefined);
    }
  }

  /**
   * Removes cached blobs of artifacts that no BundleDeployment of this cluster pins any more. Returns
   * false when it had to skip (retried at the next heartbeat).
   */
  async pruneCache(): Promise<boolean> {
    const d = this.deployer;
    if (!d?.informer.hasSynced()) return false;
    const live = d.informer
      .list()
      .map((bd) => bd.spec.oci?.digest)
      .filter((x): x is string => Boolean(x));
    try {
      const result = await d.content.pruneCache(live);
      if (!result.pruned) {
        this.log.debug({ why: result.why }, 'blob cache pruning skipped');
        return false;
      }
      if (result.removed > 0) this.log.info({ removed: result.removed, kept: result.kept }, 'pruned the blob cache');
      return true;
    } catch (err) {
      this.log.warn({ err: messageOf(err) }, 'pruning the blob cache failed');
      return false;
    }
  }

  /** Reads the Cluster's spec.registryMirrors into the mirror map; on failure the map stays as it was. */
  private async readClusterMirrors(): Promise<void> {
    const credential = this.credential();
    const bootstrap = this.registration.bootstrapInfo();
    if (!credential || !bootstrap) return;
    try {
      const cluster = await this.registration.upstream.get<Cluster & KubeObject>({
        apiVersion: API_VERSION,
        kind: 'Cluster',
        namespace: bootstrap.namespace,
        name: credential.clusterName,
      });
      if (cluster) this.mirrors.update(cluster.spec?.registryMirrors);
    } catch (err) {
      if (this.abort.signal.aborted) return;
      // Once the Cluster is known to be gone (see reportClusterGone) the refusal was said already.
      const level = this.clusterGoneReported ? 'debug' : 'warn';
      this.log[level]({ err: messageOf(err) }, 'reading the registry mirrors of the Cluster failed; keeping the mirrors in effect');
    }
  }

  private heartbeatMs(): number {
    return this.o.heartbeatIntervalMs ?? DEFAULT_HEARTBEAT_MS;
  }

  /**
   * Merge-patches the Cluster's status.agent (with the mirrors in effect); a 401 means the credential is gone:
   * register again. The patch answers with the whole Cluster, so its spec.registryMirrors come from there (no
   * GET per heartbeat); when they change what is in effect, the status is written once more to say so.
   */
  private async heartbeat(): Promise<void> {
    const credential = this.credential();
    const bootstrap = this.registration.bootstrapInfo();
    if (!credential || !bootstrap) return;
    const ref = { apiVersion: API_VERSION, kind: 'Cluster', namespace: bootstrap.namespace, name: credential.clusterName };
    const report = async () => {
      const lastSeen = formatTime(this.o.now?.() ?? new Date());
      const mirrors = this.mirrors.status();
      // null removes the list (merge patch) once no mirror is configured any more.
      const status = {
        agent: {
          lastSeen,
          namespace: this.namespace,
          version: flotillaVersion(),
          // The controller judges the agent's liveness by the interval the agent announces.
          heartbeatSeconds: Math.max(1, Math.round(this.heartbeatMs() / 1000)),
          registryMirrors: mirrors.length > 0 ? mirrors : null,
        },
        agentLastSeen: lastSeen,
      };
      return await this.registration.upstream.patchStatus<Cluster & KubeObject>(ref, status);
    };
    try {
      const cluster = await report();
      if (this.mirrors.update(cluster.spec?.registryMirrors)) await report();
      if (this.clusterGoneReported) this.log.info({ cluster: credential.clusterName }, 'the Cluster accepts heartbeats again');
      this.clusterGoneReported = false;
    } catch (err) {
      if (this.abort.signal.aborted) return;
      if (err instanceof KubeApiError && err.statusCode === 401) {
        try {
          await this.registration.invalidate(this.abort.signal);
          await this.afterReregistration();
        } catch (again) {
          if (!this.abort.signal.aborted) this.log.warn({ err: messageOf(again) }, 'registering again failed; retrying at the next heartbeat');
        }
        return;
      }
      if (err instanceof KubeApiError && (err.statusCode === 403 || err.statusCode === 404)) {
        this.reportClusterGone(`${bootstrap.namespace}/${credential.clusterName}`, err);
        return;
      }
      this.log.warn({ err: messageOf(err) }, 'heartbeat failed');
    }
  }

  /**
   * A heartbeat refused with 403 or 404: the Cluster was deleted upstream (its Roles go with it) or this
   * agent's access was revoked. Said once, with what to do; repeated refusals go to debug.
   */
  private reportClusterGone(cluster: string, err: KubeApiError): void {
    if (this.clusterGoneReported) {
      this.log.debug({ err: messageOf(err) }, 'heartbeat refused again');
      return;
    }
    this.clusterGoneReported = true;
    this.log.error(
      { cluster, status: err.statusCode },
      `the Cluster ${cluster} is gone upstream or this agent may no longer write it (${err.statusCode}): if the cluster was removed from the fleet, uninstall the agent (helm uninstall); to join again, give it a new registration token`,
    );
  }

  /** The same clientID gives the same Cluster; should its namespace differ all the same, restart reconciling there. */
  private async afterReregistration(): Promise<void> {
    const credential = this.credential();
    if (!credential || credential.clusterNamespace === this.deployer?.clusterNamespace) return;
    this.log.warn({ clusterNamespace: credential.clusterNamespace }, 'the cluster namespace changed; restarting reconciliation there');
    await this.stopDeployer();
    await this.startDeployer(credential);
  }
}
