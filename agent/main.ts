import { createLogger } from '../lib/log.js';
import { loadKubeAccess } from '../lib/kube/kubeconfig.js';
import { startOpsServer } from '../lib/ops/server.js';
import { Agent } from './agent.js';
import { readFile } from 'node:fs/promises';
import { baselineWasmOnly } from '../lib/ops/v8flags.js';
import { buildMirrorMap } from '../lib/oci/index.js';
import { bootstrapMirrorsOf, contentLimitsOf, parseAgentConfig } from './config.js';
import { createAgentMetrics } from './metrics.js';

/**
 * The agent process: parse the configuration once, build the downstream kubeconfig, start one Agent,
 * serve /healthz, /readyz and /metrics (on the probe port, and on --metrics-port when set), stop on
 * SIGTERM/SIGINT. Wiring only.
 */
async function main(): Promise<void> {
  baselineWasmOnly(); // before the first connection: the start-up peak of RSS (lib/ops/v8flags.ts)
  const config = parseAgentConfig(process.argv.slice(2), process.env);
  const log = createLogger({ name: 'agent', level: config.logLevel });
  // Not client-node's KubeConfig: importing client-node costs every process 70-80 MiB (kubeconfig.ts).
  const downstream = await loadKubeAccess(config.kubeconfig);
  const registryMirrors = await bootstrapMirrorsOf(config, (path) => readFile(path, 'utf8'));
  const mirrorProblems = buildMirrorMap({ bootstrap: registryMirrors }).problems;
  if (mirrorProblems.length > 0) throw new Error(`invalid agent configuration: ${mirrorProblems.map((p) => p.error).join('; ')}`);
  const metrics = createAgentMetrics();
  const agent = new Agent({
    metrics,
    downstream,
    namespace: config.namespace,
    cacheDir: config.cacheDir,
    log,
    resyncIntervalMs: config.resync,
    heartbeatIntervalMs: config.heartbeat,
    cachePruneIntervalMs: config.cachePrune,
    workers: config.workers,
    renderWorkers: config.renderWorkers,
    renderSpillAfterMs: config.renderSpillAfter,
    registryMirrors,
    limits: {
      maxObjects: config.maxObjects,
      content: contentLimitsOf(config),
      oci: { maxFiles: config.maxBundleFiles, maxFileBytes: config.maxFileBytes, maxTotalBytes: config.maxBundleBytes },
      engine: { timeoutMs: config.helmTimeout, maxOutputBytes: config.helmMaxOutputBytes },
    },
  });
  const ops = { host: config.probeAddress, healthy: () => agent.isHealthy(), ready: () => agent.isReady(), metrics: metrics.registry };
  const probes = await startOpsServer({ ...ops, port: config.probePort });
  const metricsServer = config.metricsPort === undefined ? undefined : await startOpsServer({ ...ops, port: config.metricsPort });
  let stopping = false;
  const stop = async (signal: string) => {
    stopping = true;
    log.info({ signal }, 'stopping');
    probes.close();
    metricsServer?.close();
    await agent.stop();
    process.exit(0);
  };
  process.once('SIGTERM', () => void stop('SIGTERM'));
  process.once('SIGINT', () => void stop('SIGINT'));
  // Registration waits for the grant (retrying upstream outages); /readyz turns true once reconciling.
  try {
    await agent.start();
  } catch (err) {
    if (stopping) return; // stopped while waiting for the registration grant
    throw err;
  }
  log.info({ probePort: config.probePort, metricsPort: config.metricsPort }, 'flotilla agent running');
}

main().catch((err: unknown) => {
  process.stderr.write(`flotilla agent: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
