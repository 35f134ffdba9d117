import { API_VERSION, type Bundle, type BundleDeployment } from '../../lib/api/index.js';
import type { KubeClient, KubeObject } from '../../lib/kube/client.js';
import { Informer, keyOf } from '../../lib/kube/informer.js';
import { W, isDeployed } from './fleet.js';

/**
 * Watches one GitRepo's Bundles and BundleDeployments upstream and records when each new state was first
 * seen: a Bundle with new contents (the controller is done with a commit), a BundleDeployment with a new
 * deployment ID (the Bundle reconciler fanned it out), and that deployment ID applied and Ready (the agent
 * is done). Watch events arrive a few milliseconds after the write; nothing is polled.
 */

type BD = BundleDeployment & KubeObject;
type B = Bundle & KubeObject;

/** When one commit reached each stage, ms epoch. */
export interface Milestones {
  bundle: number;
  /** Per BundleDeployment key: first seen with the new deployment ID, and first seen deployed and Ready. */
  deployments: { key: string; seen: number; ready: number }[];
  /**
   * The same two writes by the API server's clock: the controller's last apply of the Bundle's and of each
   * BundleDeployment's spec (managedFields `time`, whole seconds). Free of this process's event-loop lag.
   */
  server?: { bundle: number; deployments: number[] };
}

/** The API server's time of `manager`'s last Apply of the object's main resource (not status), ms epoch. */
export function appliedAt(obj: KubeObject, manager = 'flotilla-controller'): number | undefined {
  const fields = (obj.metadata.managedFields ?? []) as { manager?: string; operation?: string; subresource?: string; time?: string }[];
  const entry = fields.find((m) => m.manager === manager && m.operation === 'Apply' && !m.subresource);
  const t = entry?.time ? Date.parse(entry.time) : Number.NaN;
  return Number.isNaN(t) ? undefined : t;
}

/** See the module comment. */
export class RolloutObserver {
  private readonly bundles: Informer<B>;
  private readonly deployments: Informer<BD>;
  private readonly bundleSeen = new Map<string, number>();
  private readonly bdSeen = new Map<string, number>();
  private readonly bdReady = new Map<string, number>();
  private readonly bundleApplied = new Map<string, number>();
  private readonly bdApplied = new Map<string, number>();

  constructor(up: KubeClient, repoName: string) {
    const labelSelector = `flotilla.dev/repo-name=${repoName}`;
    this.bundles = new Informer<B>(up, { apiVersion: API_VERSION, kind: 'Bundle', namespace: W }, { labelSelector }).on((_t, b) => {
      const id = b.spec.contentsID ?? '';
      if (!this.bundleSeen.has(id)) this.bundleSeen.set(id, Date.now());
      const applied = appliedAt(b);
      if (applied !== undefined && !this.bundleApplied.has(id)) this.bundleApplied.set(id, applied);
    });
    this.deployments = new Informer<BD>(up, { apiVersion: API_VERSION, kind: 'BundleDeployment' }, { labelSelector }).on((_t, bd) => {
      const k = `${keyOf(bd)}|${bd.spec.deploymentID}`;
      const now = Date.now();
      if (!this.bdSeen.has(k)) this.bdSeen.set(k, now);
      const applied = appliedAt(bd);
      if (applied !== undefined && !this.bdApplied.has(k)) this.bdApplied.set(k, applied);
      if (isDeployed(bd) && !this.bdReady.has(k)) this.bdReady.set(k, now);
    });
  }

  /** Starts both watches and waits for their first lists. */
  async start(): Promise<void> {
    this.bundles.start();
    this.deployments.start();
    await Promise.all([this.bundles.waitForSync(), this.deployments.waitForSync()]);
  }

  async stop(): Promise<void> {
    await Promise.all([this.bundles.stop(), this.deployments.stop()]);
  }

  /** The contents ID of the (single) Bundle as last seen. */
  contentsID(): string | undefined {
    return this.bundles.list()[0]?.spec.contentsID;
  }

  /**
   * The milestones of the rollout of `contentsID` once `expected` BundleDeployments carry it deployed and
   * Ready; undefined while it is not complete.
   */
  complete(contentsID: string, expected: number): Milestones | undefined {
    const bundle = this.bundleSeen.get(contentsID);
    if (bundle === undefined) return undefined;
    const current = this.deployments.list().filter((bd) => bd.spec.deploymentID.startsWith(`s-${contentsID}:`));
    if (current.length !== expected) return undefined;
    const deployments: Milestones['deployments'] = [];
    const applied: number[] = [];
    for (const bd of current) {
      const k = `${keyOf(bd)}|${bd.spec.deploymentID}`;
      const ready = this.bdReady.get(k);
      if (ready === undefined) return undefined;
      deployments.push({ key: keyOf(bd), seen: this.bdSeen.get(k) ?? ready, ready });
      const at = this.bdApplied.get(k);
      if (at !== undefined) applied.push(at);
    }
    const bundleApplied = this.bundleApplied.get(contentsID);
    const server = bundleApplied !== undefined && applied.length === current.length ? { bundle: bundleApplied, deployments: applied } : undefined;
    return { bundle, deployments, ...(server ? { server } : {}) };
  }
}
