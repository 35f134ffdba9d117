/**
 * The controller process: parse configuration once, build adapters, start the manager and the
 * health/metrics endpoints, stop cleanly on SIGTERM/SIGINT. Wiring only.
 */
import { createLogger } from '../lib/log.js';
import { loadKubeAccess } from '../lib/kube/kubeconfig.js';
import { startOpsServer } from '../lib/ops/server.js';
import { parseControllerConfig } from './config.js';
import { startManager } from './manager.js';
import { startWebhookServer } from './webhook.js';
import { baselineWasmOnly } from '../lib/ops/v8flags.js';

async function main(): Promise<void> {
  baselineWasmOnly(); // before the first connection: the start-up peak of RSS (lib/ops/v8flags.ts)
  const config = parseControllerConfig(process.argv.slice(2), process.env);
  const log = createLogger({ name: 'controller', level: config.logLevel });
  // Not client-node's KubeConfig: importing client-node costs every process 70-80 MiB (kubeconfig.ts).
  const kubeConfig = await loadKubeAccess(config.kubeconfig);
  const manager = await startManager({ config, kubeConfig, log });
  const probes = await startOpsServer({ port: config.probePort, healthy: () => true, ready: () => manager.ready() });
  const metricsServer = await startOpsServer({
    port: config.metricsPort,
    healthy: () => true,
    ready: () => manager.ready(),
    metrics: manager.context.metrics.registry,
  });
  const webhooks = config.webhookAddress
    ? await startWebhookServer({
        address: config.webhookAddress,
        context: manager.context,
        ready: () => manager.ready(),
        log: log.child({ component: 'webhook' }),
      })
    : undefined;
  log.info({ probePort: config.probePort, metricsPort: config.metricsPort, webhookPort: webhooks?.port }, 'flotilla controller running');
  const stop = async (signal: string) => {
    log.info({ signal }, 'stopping');
    probes.close();
    metricsServer.close();
    await webhooks?.close();
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
