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
}

/** See the module comment. */
export class RolloutObserver {
  private readonly bundles: Informer<B>;
  private readonly deployments: Informer<BD>;
  private readonly bundleSeen = new Map<string, number>();
  private readonly bdSeen = new Map<string, number>();
  private readonly bdReady = new Map<string, number>();

  constructor(up: KubeClient, repoName: string) {
    const labelSelector = `flotilla.dev/repo-name=${repoName}`;
    this.bundles = new Informer<B>(up, { apiVersion: API_VERSION, kind: 'Bundle', namespace: W }, { labelSelector }).on((_t, b) => {
      const id = b.spec.contentsID ?? '';
      if (!this.bundleSeen.has(id)) this.bundleSeen.set(id, Date.now());
    });
    this.deployments = new Informer<BD>(up, { apiVersion: API_VERSION, kind: 'BundleDeployment' }, { labelSelector }).on((_t, bd) => {
      const k = `${keyOf(bd)}|${bd.spec.deploymentID}`;
      const now = Date.now();
      if (!this.bdSeen.has(k)) this.bdSeen.set(k, now);
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
    for (const bd of current) {
      const k = `${keyOf(bd)}|${bd.spec.deploymentID}`;
      const ready = this.bdReady.get(k);
      if (ready === undefined) return undefined;
      deployments.push({ key: keyOf(bd), seen: this.bdSeen.get(k) ?? ready, ready });
    }
    return { bundle, deployments };
  }
}
