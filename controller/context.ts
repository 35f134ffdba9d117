import type { Logger } from 'pino';
import type { KubeClient, KubeObject } from '../lib/kube/client.js';
import type { Informer } from '../lib/kube/informer.js';
import type { EventRecorder } from '../lib/kube/events.js';
import type { ReconcileObserver } from '../lib/kube/controller.js';
import type { Counter, Gauge, ReconcileMetrics, Registry } from '../lib/ops/metrics.js';
import type { ControllerConfig } from './config.js';
import type { GitSource } from './git.js';
import type { ChartFetcher, DependencyBuilder } from '../lib/render/remotecharts.js';
import type { BundleStore, Clock, EventSink, ReconcilerCaches, ReconcilerKube } from './ports.js';
import {
  API_VERSION,
  type Bundle,
  type BundleDeployment,
  type Cluster,
  type ClusterGroup,
  type GitRepo,
  type ClusterRegistration,
  type ClusterRegistrationToken,
} from '../lib/api/index.js';

/**
 * Everything a controller reconciler needs, built once by main.ts and passed to every reconciler:
 * the upstream client, the shared informer caches, configuration, logging, events, metrics and time.
 */

/** The informers (shared caches) the controller runs. */
export interface Informers {
  gitRepos: Informer<GitRepo & KubeObject>;
  bundles: Informer<Bundle & KubeObject>;
  bundleDeployments: Informer<BundleDeployment & KubeObject>;
  clusters: Informer<Cluster & KubeObject>;
  clusterGroups: Informer<ClusterGroup & KubeObject>;
  registrationTokens: Informer<ClusterRegistrationToken & KubeObject>;
  registrations: Informer<ClusterRegistration & KubeObject>;
}

/** The controller's own metrics (names and meaning: docs/metrics.md). */
export interface ControllerMetrics extends ReconcileMetrics {
  /** The controller process's registry, served on /metrics. */
  registry: Registry;
  /** Feeds the reconcile metrics; the `observer` option of every controller. */
  observer: ReconcileObserver;
  /** Blob bytes uploaded to OCI registries. */
  bytesPushed: Counter;
  /** Blobs uploaded to OCI registries. */
  blobsPushed: Counter;
  /** Blobs not uploaded because the registry had them. */
  blobsSkipped: Counter;
  /** Times git was asked for the current commit of a GitRepo. */
  gitFetches: Counter;
  /** BundleDeployment writes by outcome: applied, or skipped as already up to date. */
  deploymentWrites: Counter<'outcome'>;
  /** Remote Helm charts looked up in the chart cache (lib/render/chartcache.ts), by result: hit or miss. */
  chartCacheLookups: Counter<'result'>;
  /** Bytes of remote Helm charts the chart cache keeps. */
  chartCacheBytes: Gauge;
}

/**
 * What the GitRepo and Bundle reconcilers use: the context narrowed to small ports (controller/ports.ts),
 * so a unit test runs them on the in-memory fakes of controller/testing.ts. A {@link ControllerContext} is one.
 */
export interface ReconcilerContext {
  kube: ReconcilerKube;
  informers: ReconcilerCaches;
  config: ControllerConfig;
  log: Logger;
  events: EventSink;
  metrics: ControllerMetrics;
  now: Clock;
}

/** The GitRepo reconciler's own ports: git, and where bundles go (CliGitSource and createBundleStore in production). */
export interface GitRepoPorts {
  git: GitSource;
  store: BundleStore;
  /** Remote charts: helm pull and helm dependency build under the bundle limits unless set (tests). */
  charts?: { fetch?: ChartFetcher; build?: DependencyBuilder };
}

/** Shared context of every reconciler. */
export interface ControllerContext extends ReconcilerContext {
  kube: KubeClient;
  informers: Informers;
  events: EventRecorder;
}

/** Object references for Flotilla's kinds. */
export const Ref = {
  gitRepo: (namespace: string, name: string) => ({ apiVersion: API_VERSION, kind: 'GitRepo', namespace, name }),
  bundle: (namespace: string, name: string) => ({ apiVersion: API_VERSION, kind: 'Bundle', namespace, name }),
  bundleDeployment: (namespace: string, name: string) => ({ apiVersion: API_VERSION, kind: 'BundleDeployment', namespace, name }),
  cluster: (namespace: string, name: string) => ({ apiVersion: API_VERSION, kind: 'Cluster', namespace, name }),
  clusterGroup: (namespace: string, name: string) => ({ apiVersion: API_VERSION, kind: 'ClusterGroup', namespace, name }),
  registrationToken: (namespace: string, name: string) => ({ apiVersion: API_VERSION, kind: 'ClusterRegistrationToken', namespace, name }),
  registration: (namespace: string, name: string) => ({ apiVersion: API_VERSION, kind: 'ClusterRegistration', namespace, name }),
  secret: (namespace: string, name: string) => ({ apiVersion: 'v1', kind: 'Secret', namespace, name }),
  namespace: (name: string) => ({ apiVersion: 'v1', kind: 'Namespace', name }),
} as const;
