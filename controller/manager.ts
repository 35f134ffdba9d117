import { hostname } from 'node:os';
import type { Logger } from 'pino';
import { API_VERSION } from '../lib/api/index.js';
import { KubeClient, type KubeObject } from '../lib/kube/client.js';
import { Informer, type IndexFunc } from '../lib/kube/informer.js';
import type { KubeAccess } from '../lib/kube/kubeconfig.js';
import { EventRecorder } from '../lib/kube/events.js';
import type { Controller } from '../lib/kube/controller.js';
import { counter, createRegistry, gauge, reconcileMetrics, reconcileObserver, type RegistryOptions } from '../lib/ops/metrics.js';
import { bundleLimitsOf, type ControllerConfig } from './config.js';
import { ChartCache } from '../lib/render/chartcache.js';
import { chartsWithCache } from './charts.js';
import type { ControllerContext, ControllerMetrics, Informers } from './context.js';
import { CliGitSource, type GitSource } from './git.js';
import { INDEXES } from './indexes.js';
import { countRegistryEvent, setupGitRepoController } from './gitrepo.js';
import { createBundleStore, ociRegistryAccess } from './store.js';
import { setupBundleController } from './bundle.js';
import { setupClusterController, setupClusterGroupController } from './cluster.js';
import { setupRegistrationController, setupRegistrationTokenController } from './registration.js';
import { LeaderElector } from './leader.js';
import { shardLeaseName } from './shard.js';
import { CONTROLLER_FIELD_MANAGER } from './rbac.js';

/**
 * The controller manager: one set of informers (shared caches) and one reconciler per kind, started
 * only while this replica holds the leader Lease. Used by main.ts and by in-process tests.
 */

/** A running manager. */
export interface Manager {
  readonly context: ControllerContext;
  /** True once the caches have synced (and, with leader election, while leading). */
  ready(): boolean;
  stop(): Promise<void>;
}

/** The controller's metrics, registered in a new registry (with the process and Node runtime metrics unless turned off). */
export function createMetrics(options: RegistryOptions = {}): ControllerMetrics {
  const registry = createRegistry(options);
  const reconcile = reconcileMetrics(registry);
  return {
    registry,
    ...reconcile,
    observer: reconcileObserver(reconcile),
    bytesPushed: counter(registry, 'flotilla_artifact_pushed_bytes_total', 'Blob bytes uploaded to OCI registries (manifests excluded).'),
    blobsPushed: counter(registry, 'flotilla_artifact_pushed_blobs_total', 'Blobs uploaded to OCI registries.'),
    blobsSkipped: counter(registry, 'flotilla_artifact_skipped_blobs_total', 'Blobs not uploaded because the registry had them.'),
    gitFetches: counter(registry, 'flotilla_git_polls_total', 'Times git was asked for the current commit of a GitRepo.'),
    chartCacheLookups: counter(
      registry,
      'flotilla_chart_cache_lookups_total',
      'Remote Helm charts looked up in the chart cache, by result (hit: not pulled again, miss: pulled).',
      ['result'],
    ),
    chartCacheBytes: gauge(registry, 'flotilla_chart_cache_bytes', 'Bytes of remote Helm charts kept between commits (at most --chart-cache-mib).'),
    deploymentWrites: counter(
      registry,
      'flotilla_bundledeployment_writes_total',
      'BundleDeployments written by the Bundle reconciler, by outcome (applied, unchanged).',
      ['outcome'],
    ),
  };
}

/** One informer per Flotilla kind (not started). */
export function createInformers(kube: KubeClient, log: Logger): Informers {
  const make = <T>(kind: string) => new Informer<T & import('../lib/kube/client.js').KubeObject>(kube, { apiVersion: API_VERSION, kind }, { log });
  const informers = {
    gitRepos: make('GitRepo'),
    bundles: make('Bundle'),
    bundleDeployments: make('BundleDeployment'),
    clusters: make('Cluster'),
    clusterGroups: make('ClusterGroup'),
    registrationTokens: make('ClusterRegistrationToken'),
    registrations: make('ClusterRegistration'),
  } as Informers;
  for (const kind of Object.keys(INDEXES) as (keyof typeof INDEXES)[]) {
    const informer = informers[kind] as Informer<KubeObject>;
    for (const [name, fn] of Object.entries(INDEXES[kind] as Record<string, IndexFunc<KubeObject>>)) informer.addIndex(name, fn);
  }
  return informers;
}

/** Options for {@link startManager}. */
export interface ManagerOptions {
  config: ControllerConfig;
  kubeConfig: KubeAccess;
  log: Logger;
  git?: GitSource;
  now?: () => Date;
}

/** Builds the context and controllers and starts them (after winning the Lease when leader election is on). */
export async function startManager(options: ManagerOptions): Promise<Manager> {
  const { config, log } = options;
  // Finalizers and status merge patches are recorded under the controller's name, not "unknown".
  const kube = await KubeClient.fromKubeConfig(options.kubeConfig, { fieldManager: CONTROLLER_FIELD_MANAGER });
  const context: ControllerContext = {
    kube,
    informers: createInformers(kube, log),
    config,
    log,
    metrics: createMetrics(),
    // Events say which shard's controller wrote them.
    events: new EventRecorder(kube, shardLeaseName('flotilla-controller', config.shardId), log),
    now: options.now ?? (() => new Date()),
  };
  const buildControllers = (): Controller[] => [
    setupGitRepoController(context, {
      git: options.git ?? new CliGitSource(config.workDir),
      store: createBundleStore({
        kube,
        registries: ociRegistryAccess,
        retain: config.artifactRetention,
        maxInlineBytes: config.maxBundleBytesInEtcd,
        registryHostField: config.registryHostField,
        onRegistryEvent: (event) => countRegistryEvent(context.metrics, event),
        log,
      }),
      // One cache for the controller's life: a commit pulls again only the charts whose repository index changed.
      // Off (--chart-cache-mib 0): no cache at all, so no HEAD of an oci:// chart's tag either.
      charts: chartsWithCache(
        bundleLimitsOf(config),
        config.chartCacheMib > 0
          ? new ChartCache(config.chartCacheMib * 1024 * 1024, {
              lookup: (hit) => context.metrics.chartCacheLookups.inc({ result: hit ? 'hit' : 'miss' }),
              held: (bytes) => context.metrics.chartCacheBytes.set(bytes),
            })
          : undefined,
      ),
    }),
    setupBundleController(context),
    // Clusters and registrations are the default shard's: one writer of each Cluster's status.
    ...(config.shardId
      ? []
      : [
          setupClusterController(context),
          setupClusterGroupController(context),
          setupRegistrationTokenController(context),
          setupRegistrationController(context),
        ]),
  ];

  /**
   * A term: fresh informers (empty caches) and fresh reconcilers, from winning the Lease to losing it.
   * Nothing is carried over from a previous term, whose caches may have missed events while another
   * replica led or the API server was unreachable.
   */
  interface Term {
    informers: Informers;
    controllers: Controller[];
    synced: boolean;
    abort: AbortController;
  }
  let term: Term | undefined;
  const startTerm = async (): Promise<void> => {
    // Every term starts from empty caches (the context's first set is never started).
    context.informers = createInformers(kube, log);
    const t: Term = { informers: context.informers, controllers: buildControllers(), synced: false, abort: new AbortController() };
    term = t;
    const informers = Object.values(t.informers) as Informer<KubeObject>[];
    for (const i of informers) i.start();
    const stopped = new Promise<void>((resolve) => t.abort.signal.addEventListener('abort', () => resolve(), { once: true }));
    await Promise.race([Promise.all(informers.map((i) => i.waitForSync())), stopped]);
    if (t.abort.signal.aborted) return;
    t.synced = true;
    for (const c of t.controllers) c.start();
    log.info({ shard: config.shardId ?? '(default)' }, 'controllers started');
  };
  const stopTerm = async (): Promise<void> => {
    const t = term;
    term = undefined;
    if (!t) return;
    t.abort.abort();
    await Promise.all(t.controllers.map((c) => c.stop()));
    await Promise.all((Object.values(t.informers) as Informer<KubeObject>[]).map((i) => i.stop()));
  };

  let elector: LeaderElector | undefined;
  let stopping = false;
  const campaign = (): void => {
    const candidate = new LeaderElector(
      kube,
      {
        namespace: config.systemNamespace,
        name: shardLeaseName(config.leaseName, config.shardId),
        identity: config.identity ?? `${hostname()}-${process.pid}`,
        leaseDurationMs: config.leaseDuration,
        renewDeadlineMs: config.renewDeadline,
        retryPeriodMs: config.retryPeriod,
      },
      log,
    );
    elector = candidate;
    void candidate.run(startTerm, () => {
      // Caches may be stale once leadership is lost (another replica may lead, or the API server was
      // unreachable past the renew deadline): stop writing at once, drop the caches, and campaign again.
      // The process keeps running, so a fleet without a supervisor (flotilla dev) does not stop syncing.
      log.error({ lease: shardLeaseName(config.leaseName, config.shardId) }, 'lost leadership; controllers stopped, campaigning again');
      void stopTerm().then(() => {
        if (!stopping) campaign();
      });
    });
  };
  if (config.leaderElection) campaign();
  else await startTerm();
  return {
    context,
    ready: () => (term?.synced ?? false) && (!elector || elector.isLeader()),
    async stop() {
      stopping = true;
      await stopTerm();
      await elector?.stop();
      await kube.close();
    },
  };
}
