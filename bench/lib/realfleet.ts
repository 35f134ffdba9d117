import { join } from 'node:path';
import { freePort } from '../../stack/net.js';
import {
  bootstrap,
  kubeClient,
  registrationToken,
  startAgentProcess,
  startController,
  waitClustersRegistered,
  type BenchStack,
  type BenchCluster,
} from './fleet.js';
import type { FlotillaProcess } from './procs.js';

/**
 * The production-shaped fleet most benchmarks share: the controller process and one agent process per
 * real downstream cluster (downstream-1, downstream-2), registered through the token flow, every process
 * tapped (registry events to a file, see tap.ts).
 */

/** Label every real cluster carries; GitRepos target it. */
export const REAL_LABEL = 'bench-real';

/** An agent process of the real fleet. */
export interface RealAgent {
  cluster: BenchCluster;
  proc: FlotillaProcess;
  tapFile: string;
  cacheDir: string;
}

/** The controller and agents of the real fleet. */
export interface RealFleet {
  controller: FlotillaProcess;
  controllerTap: string;
  /** Port of the controller's Prometheus /metrics. */
  metricsPort: number;
  agents: RealAgent[];
  /** The registration token's data (for bootstrapping more agents). */
  token: Record<string, string>;
  stop(): Promise<void>;
}

/** Starts the controller and both real agents and waits until both clusters are registered. */
export async function startRealFleet(s: BenchStack, say: (m: string) => void): Promise<RealFleet> {
  const controllerTap = join(s.work, 'tap-controller.jsonl');
  const metricsPort = await freePort();
  const controller = await startController(s, 'controller', { tapFile: controllerTap, metricsPort });
  say(`controller process started (pid ${controller.pid})`);
  const token = await registrationToken(s.up);
  const agents: RealAgent[] = [];
  for (const name of ['downstream-1', 'downstream-2']) {
    const kubeconfig = s.desc.clusters[name]?.kubeconfig ?? '';
    const cluster: BenchCluster = { name, agentNamespace: 'flotilla-system', labels: { [REAL_LABEL]: 'true' } };
    const down = await kubeClient(kubeconfig);
    try {
      await bootstrap(down, token, cluster);
    } finally {
      await down.close();
    }
    const tapFile = join(s.work, `tap-agent-${name}.jsonl`);
    const cacheDir = join(s.work, `cache-${name}`);
    agents.push({ cluster, proc: await startAgentProcess(s, kubeconfig, cluster, { tapFile, cacheDir }), tapFile, cacheDir });
    say(`agent process for ${name} started`);
  }
  await waitClustersRegistered(
    s.up,
    agents.map((a) => a.cluster.name),
  );
  say('both real clusters registered');
  return {
    controller,
    controllerTap,
    metricsPort,
    agents,
    token,
    async stop() {
      await Promise.all(agents.map((a) => a.proc.stop()));
      await controller.stop();
    },
  };
}
