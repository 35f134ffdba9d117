import { hostname } from 'node:os';
import type { Logger } from 'pino';
import type { KubeConfig } from '@kubernetes/client-node';
import { API_VERSION } from '../lib/api/index.js';
import { KubeClient } from '../lib/kube/client.js';
import { Informer } from '../lib/kube/informer.js';
import { EventRecorder } from '../lib/kube/events.js';
import type { Controller } from '../lib/kube/controller.js';
import { counter, createRegistry, reconcileMetrics, reconcileObserver, type RegistryOptions } from '../lib/ops/metrics.js';
import type { ControllerConfig } from './config.js';
import type { ControllerContext, ControllerMetrics, Informers } from './context.js';
import { CliGitSource, type GitSource } from './git.js';
import { countRegistryEvent, setupGitRepoController } from './gitrepo.js';
import { createBundleStore, ociRegistryAccess } from './store.js';
import { setupBundleController } from './bundle.js';
import { setupClusterController, setupClusterGroupController } from './cluster.js';
import { setupRegistrationController, setupRegistrationTokenController } from './registration.js';
import { LeaderElector } from './leader.js';

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
  return {
    gitRepos: make('GitRepo'),
    bundles: make('Bundle'),
    bundleDeployments: make('BundleDeployment'),
    clusters: make('Cluster'),
    clusterGroups: make('ClusterGroup'),
    registrationTokens: make('ClusterRegistrationToken'),
    registrations: make('ClusterRegistration'),
  } as Informers;
}

/** Options for {@link startManager}. */
export interface ManagerOptions {
  config: ControllerConfig;
  kubeConfig: KubeConfig;
  log: Logger;
  git?: GitSource;
  now?: () => Date;
}

/** Builds the context and controllers and starts them (after winning the Lease when leader election is on). */
export async function startManager(options: ManagerOptions): Promise<Manager> {
  const { config, log } = options;
  const kube = await KubeClient.fromKubeConfig(options.kubeConfig);
  const inf = createInformers(kube, log);
  const context: ControllerContext = {
    kube,
    informers: inf,
    config,
    log,
    metrics: createMetrics(),
    events: new EventRecorder(kube, 'flotilla-controller', log),
    now: options.now ?? (() => new Date()),
  };
  const controllers: Controller[] = [
    setupGitRepoController(context, {
      git: options.git ?? new CliGitSource(config.workDir),
      store: createBundleStore({
        kube,
        registries: ociRegistryAccess,
        retain: config.artifactRetention,
        maxInlineBytes: config.maxBundleBytesInEtcd,
        onRegistryEvent: (event) => countRegistryEvent(context.metrics, event),
      }),
    }),
    setupBundleController(context),
    setupClusterController(context),
    setupClusterGroupController(context),
    setupRegistrationTokenController(context),
    setupRegistrationController(context),
  ];
  let synced = false;
  const run = async (): Promise<void> => {
    for (const i of Object.values(inf)) i.start();
    await Promise.all(Object.values(inf).map((i) => i.waitForSync()));
    synced = true;
    for (const c of controllers) c.start();
    log.info('controllers started');
  };
  let elector: LeaderElector | undefined;
  if (config.leaderElection) {
    elector = new LeaderElector(
      kube,
      {
        namespace: config.systemNamespace,
        name: config.leaseName,
        identity: config.identity ?? `${hostname()}-${process.pid}`,
      },
      log,
    );
    void elector.run(run, () => {
      // Caches may be stale once leadership is lost: stop, and let the process supervisor restart us.
      log.error('lost leadership; exiting');
      process.exitCode = 1;
      process.kill(process.pid, 'SIGTERM');
    });
  } else {
    await run();
  }
  return {
    context,
    ready: () => synced && (!elector || elector.isLeader()),
    async stop() {
      await Promise.all(controllers.map((c) => c.stop()));
      await Promise.all(Object.values(inf).map((i) => i.stop()));
      await elector?.stop();
      await kube.close();
    },
  };
}
