import { createServer, type Server } from 'node:http';
import type { Registry } from './metrics.js';

/** Options for {@link startOpsServer}. */
export interface OpsServerOptions {
  port: number;
  host?: string;
  /** Liveness: the process is not wedged. */
  healthy: () => boolean;
  /** Readiness: caches synced, and (for the controller) leading or standing by. */
  ready: () => boolean;
  metrics?: Registry;
}

/** Serves /healthz, /readyz and /metrics. Resolves with the server once listening (port 0 picks one). */
export async function startOpsServer(options: OpsServerOptions): Promise<Server> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const answer = (ok: boolean) => { res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' }); res.end(ok ? 'ok' : 'not ready'); };
    if (path === '/healthz') return answer(options.healthy());
    if (path === '/readyz') return answer(options.ready());
    if (path === '/metrics' && options.metrics) {
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
      res.end(options.metrics.render());
      return;
    }
    res.writeHead(404);
    res.end();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host ?? '0.0.0.0', () => resolve());
  });
  return server;
}
