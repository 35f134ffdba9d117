import { BundleState, type BundleDeployment } from '../lib/api/index.js';
import type { ReconcileObserver } from '../lib/kube/controller.js';
import type { RegistryEvent } from '../lib/oci/index.js';
import {
  counter,
  createRegistry,
  gauge,
  reconcileMetrics,
  reconcileObserver,
  type Counter,
  type Gauge,
  type ReconcileMetrics,
  type Registry,
  type RegistryOptions,
} from '../lib/ops/metrics.js';
import type { DeploymentObserver } from './bundledeployment.js';

/**
 * The agent's metrics (names and meaning: docs/metrics.md): artifact pulls and the blob cache
 * (content.ts), what reconciles changed downstream (bundledeployment.ts, through a
 * {@link DeploymentObserver}), reconcile failures by reason, and the BundleDeployments of the cluster by
 * state, counted from the informer cache at every scrape.
 */

/** How an artifact was obtained: pulled from the registry, failed, or served from the in-memory bundle cache. */
export type PullOutcome = 'success' | 'error' | 'cached';

/** The agent's metrics on their own registry. */
export interface AgentMetrics extends ReconcileMetrics {
  /** The agent process's registry, served on /metrics. */
  registry: Registry;
  /** Feeds the reconcile metrics; the `observer` option of the BundleDeployment controller. */
  observer: ReconcileObserver;
  /** Feeds the downstream counters; the `observer` option of the BundleDeployment reconciler. */
  deployments: DeploymentObserver;
  artifactPulls: Counter<'outcome'>;
  pulledBytes: Counter;
  blobCacheHits: Counter;
  blobCacheMisses: Counter;
  objectsApplied: Counter;
  objectsRead: Counter<'purpose'>;
  objectsPruned: Counter;
  driftDetected: Counter;
  driftCorrected: Counter;
  errors: Counter<'reason'>;
  bundleDeployments: Gauge<'state'>;
  /** Counts a registry client's blob events (bytes pulled, blob cache hits and misses). */
  registryEvent(event: RegistryEvent): void;
  /**
   * Adds a source of BundleDeployments to the by-state gauge (an informer's list); returns the function
   * that removes it again.
   */
  track(list: () => readonly BundleDeployment[]): () => void;
}

/** Registers the agent's metrics on a new registry (with the process and Node runtime metrics unless turned off). */
export function createAgentMetrics(options: RegistryOptions = {}): AgentMetrics {
  const registry = createRegistry(options);
  const reconcile = reconcileMetrics(registry);
  const sources = new Set<() => readonly BundleDeployment[]>();
  const c = <L extends string = never>(name: string, help: string, labels: readonly L[] = []) => counter(registry, name, help, labels);
  const m = {
    registry,
    ...reconcile,
    observer: reconcileObserver(reconcile),
    artifactPulls: c(
      'flotilla_artifact_pulls_total',
      'Bundle artifacts obtained, by outcome: success (pulled from the registry), error, cached (in memory, no registry).',
      ['outcome'],
    ),
    pulledBytes: c('flotilla_artifact_pulled_bytes_total', 'Blob bytes downloaded from OCI registries (manifests and cached blobs excluded).'),
    blobCacheHits: c('flotilla_blob_cache_hits_total', 'Blobs read from the on-disk blob cache instead of the registry.'),
    blobCacheMisses: c('flotilla_blob_cache_misses_total', 'Blobs not in the on-disk blob cache, downloaded from the registry.'),
    objectsApplied: c('flotilla_objects_applied_total', 'Objects written downstream by deploys and drift corrections.'),
    objectsRead: c(
      'flotilla_objects_read_total',
      'Objects read downstream to plan what to write, by purpose: deploy (a new deployment) or drift-check (an applied one, at each resync).',
      ['purpose'],
    ),
    objectsPruned: c('flotilla_objects_pruned_total', 'Objects deleted downstream: they left their bundle, or their BundleDeployment is gone.'),
    driftDetected: c(
      'flotilla_drift_detected_objects_total',
      'Objects found modified or missing downstream when their BundleDeployment was in sync until then.',
    ),
    driftCorrected: c('flotilla_drift_corrected_objects_total', 'Objects re-applied downstream to correct drift (correctDrift.enabled).'),
    errors: c('flotilla_bundledeployment_errors_total', 'Failed BundleDeployment reconciles, by the reason shown in their status.', ['reason']),
    bundleDeployments: gauge(
      registry,
      'flotilla_agent_bundledeployments',
      'BundleDeployments of this cluster by state (display.state; Pending before the first report).',
      ['state'],
      (g) => countStates(g, sources),
    ),
  };
  return {
    ...m,
    deployments: {
      applied(count, driftCorrection) {
        m.objectsApplied.inc(count);
        if (driftCorrection) m.driftCorrected.inc(count);
      },
      pruned(count) {
        m.objectsPruned.inc(count);
      },
      driftDetected(count) {
        m.driftDetected.inc(count);
      },
      read(deploying) {
        m.objectsRead.inc({ purpose: deploying ? 'deploy' : 'drift-check' });
      },
    },
    registryEvent(event) {
      if (event.type === 'blob-downloaded') {
        m.blobCacheMisses.inc();
        m.pulledBytes.inc(event.size);
      }
      if (event.type === 'cache-hit') m.blobCacheHits.inc();
    },
    track(list) {
      sources.add(list);
      return () => {
        sources.delete(list);
      };
    },
  };
}

function countStates(g: Gauge<'state'>, sources: ReadonlySet<() => readonly BundleDeployment[]>): void {
  const counts = new Map<string, number>(Object.values(BundleState).map((s) => [s, 0]));
  for (const list of sources) {
    for (const bd of list()) {
      const state = bd.status?.display?.state ?? BundleState.Pending;
      counts.set(state, (counts.get(state) ?? 0) + 1);
    }
  }
  for (const [state, n] of counts) g.set({ state }, n);
}
