import { createServer, type Server, type ServerResponse } from 'node:http';
import type { Registry } from './metrics.js';

/** Options for {@link startOpsServer}. */
export interface OpsServerOptions {
  port: number;
  host?: string;
  /** Liveness: the process is not wedged. */
  healthy: () => boolean;
  /** Readiness: caches synced, and (for the controller) leading or standing by. */
  ready: () => boolean;
  /** Served on /metrics (Prometheus text format) when set. */
  metrics?: Registry;
}

/** Serves /healthz, /readyz and /metrics. Resolves with the server once listening (port 0 picks one). */
export async function startOpsServer(options: OpsServerOptions): Promise<Server> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const answer = (ok: boolean) => {
      res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' });
      res.end(ok ? 'ok' : 'not ready');
    };
    if (path === '/healthz') return answer(options.healthy());
    if (path === '/readyz') return answer(options.ready());
    if (path === '/metrics' && options.metrics) return void serveMetrics(options.metrics, res);
    res.writeHead(404);
    res.end();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host ?? '0.0.0.0', () => resolve());
  });
  return server;
}

async function serveMetrics(registry: Registry, res: ServerResponse): Promise<void> {
  try {
    const body = await registry.metrics();
    res.writeHead(200, { 'content-type': registry.contentType });
    res.end(body);
  } catch (err) {
    // A collector failed: say which, rather than serve a partial page that looks complete.
    res.writeHead(500, { 'content-type': 'text/plain' });
    res.end(`collecting metrics failed: ${err instanceof Error ? err.message : String(err)}`);
  }
}
