import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { pino } from 'pino';
import { Agent } from '../../agent/agent.js';
import { renderPool } from '../../agent/renderslots.js';
import { createLogger, type Logger } from '../../lib/log.js';
import type { KubeClient } from '../../lib/kube/client.js';
import { mapLimit } from '../../lib/util/concurrency.js';
import { bootstrap, kubeClient, kubeConfigOf, waitClustersRegistered, type BenchStack, type BenchCluster } from './fleet.js';

/**
 * Simulated clusters: many real Agent instances (agent/agent.ts, unchanged) in the benchmark process, each
 * with its own bootstrap Secret, registration, credential, upstream watch, heartbeat, blob cache and work
 * queue, exactly as a deployed agent has. What they share is one downstream API server: each agent lives in
 * its own namespace there (`<prefix>-NNN`, its bootstrap and state Secrets and inventories) and deploys into its
 * own application namespace, set per cluster by a fleet.yaml targetCustomization (`namespace: <prefix>-NNN-app`),
 * so no two agents ever apply or prune the same object. Agents run with the same defaults as agent/main.ts,
 * except that they share one render worker pool (see {@link SimFleet}).
 */

/** Name of simulated cluster `i` of a run whose simulated clusters are named `<prefix>-NNN`. */
export function simName(prefix: string, i: number): string {
  return `${prefix}-${String(i).padStart(3, '0')}`;
}

/** A growing set of simulated clusters. */
export class SimFleet {
  private readonly agents: Agent[] = [];
  /**
   * One render worker pool for every simulated agent: an agent of its own would start its own worker threads
   * (16-20 MiB each) at its first render, and 1,000 of them in this process took the 2-core machine to a load
   * of 176 and 6 GiB before the first rollout finished. A real agent process renders in its own pool. Both
   * slots open without waiting (a spill delay of 0): the pool serves many agents at once, as it did before
   * slots became elastic.
   */
  private readonly renders = renderPool(2, 0);
  private readonly log: Logger;
  private down: KubeClient | undefined;

  /**
   * @param prefix names of the clusters and their namespaces, unique to the run (see {@link simName}).
   * @param labelsFor labels of cluster `i` (decided at registration, as for a real cluster).
   */
  constructor(
    readonly prefix: string,
    private readonly s: BenchStack,
    private readonly downstream: string,
    private readonly token: Record<string, string>,
    private readonly labelsFor: (i: number) => Record<string, string>,
  ) {
    this.log = createLogger({
      name: 'sim-agents',
      level: 'warn',
      destination: pino.destination({ dest: join(s.work, 'sim-agents.log'), sync: false, mkdir: true }),
    });
  }

  /** How many agents run. */
  get size(): number {
    return this.agents.length;
  }

  /** Starts agents until `count` run, registering each through the token flow; resolves once all are registered. */
  async grow(count: number, say: (m: string) => void): Promise<void> {
    const kubeconfig = this.s.desc.clusters[this.downstream]?.kubeconfig ?? '';
    this.down ??= await kubeClient(kubeconfig);
    const down = this.down;
    const from = this.agents.length;
    const indexes = Array.from({ length: Math.max(0, count - from) }, (_, k) => from + k);
    await mapLimit(indexes, 10, async (i) => {
      const cluster: BenchCluster = { name: simName(this.prefix, i), agentNamespace: simName(this.prefix, i), labels: this.labelsFor(i) };
      await bootstrap(down, this.token, cluster);
      const cacheDir = join(this.s.work, 'sim-cache', cluster.name);
      await mkdir(cacheDir, { recursive: true });
      const agent = new Agent({
        downstream: kubeConfigOf(kubeconfig),
        namespace: cluster.agentNamespace,
        cacheDir,
        log: this.log.child({ cluster: cluster.name }),
        renderIsolate: this.renders,
      });
      this.agents.push(agent);
      await agent.start();
      if ((i + 1) % 25 === 0) say(`simulated agents: ${i + 1}/${count} registered`);
    });
    await waitClustersRegistered(
      this.s.up,
      Array.from({ length: count }, (_, i) => simName(this.prefix, i)),
    );
  }

  /** Stops every agent. */
  async stop(): Promise<void> {
    await mapLimit(this.agents, 20, (a) => a.stop());
    this.agents.length = 0;
    await this.down?.close();
    this.down = undefined;
    await this.renders.close();
  }
}
