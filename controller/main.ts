/**
 * The controller process: parse configuration once, build adapters, start the manager and the
 * health/metrics endpoints, stop cleanly on SIGTERM/SIGINT. Wiring only.
 */
import { KubeConfig } from '@kubernetes/client-node';
import { createLogger } from '../lib/log.js';
import { startOpsServer } from '../lib/ops/server.js';
import { parseControllerConfig } from './config.js';
import { startManager } from './manager.js';

async function main(): Promise<void> {
  const config = parseControllerConfig(process.argv.slice(2), process.env);
  const log = createLogger({ name: 'controller', level: config.logLevel });
  const kubeConfig = new KubeConfig();
  if (config.kubeconfig) kubeConfig.loadFromFile(config.kubeconfig);
  else kubeConfig.loadFromCluster();
  const manager = await startManager({ config, kubeConfig, log });
  const probes = await startOpsServer({ port: config.probePort, healthy: () => true, ready: () => manager.ready() });
  const metricsServer = await startOpsServer({
    port: config.metricsPort,
    healthy: () => true,
    ready: () => manager.ready(),
    metrics: manager.context.metrics.registry,
  });
  log.info({ probePort: config.probePort, metricsPort: config.metricsPort }, 'flotilla controller running');
  const stop = async (signal: string) => {
    log.info({ signal }, 'stopping');
    probes.close();
    metricsServer.close();
    await manager.stop();
    process.exit(process.exitCode ?? 0);
  };
  process.once('SIGTERM', () => void stop('SIGTERM'));
  process.once('SIGINT', () => void stop('SIGINT'));
}

main().catch((err: unknown) => {
  process.stderr.write(`flotilla controller: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
