import type { Logger } from 'pino';
import { API_VERSION } from '../lib/api/index.js';
import type { KubeClient, KubeObject } from '../lib/kube/client.js';
import { Informer } from '../lib/kube/informer.js';
import type { Snapshot } from './model.js';

/**
 * The dashboard's view of the fleet: one informer (list + watch, all namespaces) per kind it shows, run
 * with the caller's own credentials, so the page shows exactly what that identity may list. No other kind
 * is watched; only a request for a Bundle's history or diff (dashboard/releases.ts) reads its GitRepo and
 * the registry credentials Secret that GitRepo names, with the same credentials, as `flotilla history` does.
 */

/** The kinds the dashboard watches, with the snapshot field each fills. */
export const WATCHED_KINDS = {
  GitRepo: 'gitRepos',
  Bundle: 'bundles',
  BundleDeployment: 'bundleDeployments',
  Cluster: 'clusters',
  ClusterGroup: 'clusterGroups',
} as const satisfies Record<string, keyof Snapshot>;

/** A watched kind's name. */
export type WatchedKind = keyof typeof WATCHED_KINDS;

/** What the server needs from the fleet: a snapshot, change notifications and whether each kind is listed yet. */
export interface FleetSource {
  snapshot(): Snapshot;
  /** Calls `listener` with the kind after every change; returns a function that removes the listener. */
  onChange(listener: (kind: WatchedKind) => void): () => void;
  /** Per kind: true once its first list arrived (false while listing fails, e.g. on 403). */
  synced(): Record<WatchedKind, boolean>;
}

/** A {@link FleetSource} fed by informers on the upstream API server. */
export class InformerFleetSource implements FleetSource {
  private readonly informers: Record<WatchedKind, Informer<KubeObject>>;
  private readonly listeners = new Set<(kind: WatchedKind) => void>();

  constructor(kube: KubeClient, log?: Logger) {
    const make = (kind: WatchedKind) =>
      new Informer<KubeObject>(kube, { apiVersion: API_VERSION, kind }, { ...(log ? { log } : {}) }).on(() => {
        for (const l of this.listeners) l(kind);
      });
    this.informers = {
      GitRepo: make('GitRepo'),
      Bundle: make('Bundle'),
      BundleDeployment: make('BundleDeployment'),
      Cluster: make('Cluster'),
      ClusterGroup: make('ClusterGroup'),
    };
  }

  /** Starts every watch in the background. */
  start(): void {
    for (const i of Object.values(this.informers)) i.start();
  }

  /** Resolves once every kind has been listed, or rejects after `timeoutMs` naming the kinds still missing. */
  async waitForSync(timeoutMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const missing = Object.entries(this.synced())
          .filter(([, ok]) => !ok)
          .map(([k]) => k);
        reject(new Error(`could not list ${missing.join(', ')} within ${timeoutMs / 1000} s (is the API server reachable, and may this identity list them?)`));
      }, timeoutMs);
    });
    try {
      await Promise.race([Promise.all(Object.values(this.informers).map((i) => i.waitForSync())), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Stops every watch. */
  async stop(): Promise<void> {
    await Promise.all(Object.values(this.informers).map((i) => i.stop()));
  }

  snapshot(): Snapshot {
    const list = <T>(kind: WatchedKind) => this.informers[kind].list() as T;
    return {
      gitRepos: list('GitRepo'),
      bundles: list('Bundle'),
      bundleDeployments: list('BundleDeployment'),
      clusters: list('Cluster'),
      clusterGroups: list('ClusterGroup'),
    };
  }

  onChange(listener: (kind: WatchedKind) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  synced(): Record<WatchedKind, boolean> {
    const out = {} as Record<WatchedKind, boolean>;
    for (const [k, i] of Object.entries(this.informers)) out[k as WatchedKind] = i.hasSynced();
    return out;
  }
}
