import { createServer, type Server } from 'node:http';
import { KubeConfig } from '@kubernetes/client-node';
import { createLogger } from '../lib/log.js';
import { Agent } from './agent.js';
import { parseAgentConfig } from './config.js';

/**
 * The agent process: parse the configuration once, build the downstream kubeconfig, start one Agent,
 * serve /healthz and /readyz, stop on SIGTERM/SIGINT. Nothing else happens here.
 */

function probes(agent: Agent, port: number, address: string): Server {
  const server = createServer((req, res) => {
    const ok = req.url === '/healthz' ? agent.isHealthy() : req.url === '/readyz' ? agent.isReady() : undefined;
    res.statusCode = ok === undefined ? 404 : ok ? 200 : 503;
    res.end(ok === undefined ? 'not found\n' : ok ? 'ok\n' : 'not ready\n');
  });
  server.listen(port, address);
  return server;
}

async function main(): Promise<void> {
  const config = parseAgentConfig(process.argv.slice(2), process.env);
  const log = createLogger({ name: 'agent', level: config.logLevel });
  const downstream = new KubeConfig();
  if (config.kubeconfig) downstream.loadFromFile(config.kubeconfig);
  else downstream.loadFromCluster();
  const agent = new Agent({
    downstream, namespace: config.namespace, cacheDir: config.cacheDir, log,
    resyncIntervalMs: config.resync, heartbeatIntervalMs: config.heartbeat, workers: config.workers,
    limits: { maxObjects: config.maxObjects },
  });
  const server = probes(agent, config.probePort, config.probeAddress);
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping');
    server.close();
    await agent.stop();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
  await agent.start();
}

main().catch((err: unknown) => {
  process.stderr.write(`flotilla-agent: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
