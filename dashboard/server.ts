import { randomBytes, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import { parseActionRequest, type ActionPort } from './actions.js';
import { DEFAULT_DIFF_CLUSTER, clusterInfoOf, parseDiffRequest, type ReleasesPort } from './bundlepage.js';
import { bundleView, clusterView, fleetView, groupView, matrixView, type Ref } from './model.js';
import type { FleetSource, WatchedKind } from './store.js';

/**
 * The dashboard's HTTP server (node:http, no framework): the page (one HTML file, two ES modules, one
 * stylesheet, served as they are), a read-only JSON API computed from the watched fleet, a Server-Sent
 * Events stream that says when something changed, and, only when enabled, POST /api/actions.
 *
 * Security: every response carries a strict Content-Security-Policy (scripts only from this origin, no
 * inline script, no framing); on a loopback address only loopback Host headers are answered (a DNS
 * rebinding page cannot read the API); actions need the per-process token of /api/session in a header,
 * a JSON body and a same-origin Origin, so another site cannot trigger them (CSRF).
 */

/** The files of the page, relative to dashboard/static. */
export const STATIC_FILES: Readonly<Record<string, { file: string; type: string }>> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/releases.js': { file: 'releases.js', type: 'text/javascript; charset=utf-8' },
  '/app.css': { file: 'app.css', type: 'text/css; charset=utf-8' },
};

/** The folder of the page's files. */
export const STATIC_DIR = join(dirname(fileURLToPath(import.meta.url)), 'static');

/** Header that must carry the session's token on every action. */
export const CSRF_HEADER = 'x-flotilla-csrf';

const SECURITY_HEADERS = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
};

/** Options for {@link startDashboardServer}. */
export interface DashboardServerOptions {
  source: FleetSource;
  /** Present only when actions are enabled. */
  actions?: ActionPort;
  /** Reads bundle histories and diffs (GET /api/history, /api/diff); without it they answer 501. */
  releases?: ReleasesPort;
  address: string;
  port: number;
  /** Shown on the page: which kubeconfig context (or "in-cluster") the data comes from. */
  context: string;
  log?: Logger;
  /** Delay that coalesces bursts of watch events into one SSE message; default 150 ms. */
  debounceMs?: number;
}

/** A running dashboard server. */
export interface DashboardServer {
  readonly url: string;
  readonly csrfToken: string;
  close(): Promise<void>;
}

const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]']);

/** True for the addresses that only this machine reaches. */
export function isLoopback(address: string): boolean {
  return address === '127.0.0.1' || address === '::1' || address === 'localhost' || address.startsWith('127.');
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { ...SECURITY_HEADERS, 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
  res.end(text);
}

function refFrom(url: URL): Ref | undefined {
  const namespace = url.searchParams.get('namespace') ?? '';
  const name = url.searchParams.get('name');
  return name ? { namespace, name } : undefined;
}

async function readBody(req: IncomingMessage, limit: number): Promise<string> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) throw new Error(`the request body is over ${limit} bytes`);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function sameToken(given: string | string[] | undefined, token: string): boolean {
  if (typeof given !== 'string' || given.length !== token.length) return false;
  return timingSafeEqual(Buffer.from(given), Buffer.from(token));
}

/** Answers a GET of the JSON API; false when the path is not one. */
function api(url: URL, res: ServerResponse, opts: DashboardServerOptions, csrfToken: string): boolean {
  const snap = () => opts.source.snapshot();
  const found = (view: unknown, what: string) => (view ? send(res, 200, view) : send(res, 404, { error: `${what} not found` }));
  switch (url.pathname) {
    case '/api/session':
      send(res, 200, { context: opts.context, actions: opts.actions !== undefined, ...(opts.actions ? { csrfToken } : {}), synced: opts.source.synced() });
      return true;
    case '/api/fleet':
      send(res, 200, { gitRepos: fleetView(snap()) });
      return true;
    case '/api/matrix':
      send(res, 200, matrixView(snap()));
      return true;
    case '/api/group': {
      const ref = refFrom(url);
      const offset = Math.max(0, Number.parseInt(url.searchParams.get('offset') ?? '0', 10) || 0);
      const limit = Math.min(500, Math.max(1, Number.parseInt(url.searchParams.get('limit') ?? '50', 10) || 50));
      const problemsOnly = url.searchParams.get('problems') === '1';
      found(ref && groupView(snap(), ref, { offset, limit, problemsOnly }), `ClusterGroup ${ref?.namespace}/${ref?.name}`);
      return true;
    }
    case '/api/cluster': {
      const ref = refFrom(url);
      found(ref && clusterView(snap(), ref), `Cluster ${ref?.namespace}/${ref?.name}`);
      return true;
    }
    case '/api/bundle': {
      const ref = refFrom(url);
      found(ref && bundleView(snap(), ref), `Bundle ${ref?.namespace}/${ref?.name}`);
      return true;
    }
    default:
      return false;
  }
}

/** Answers GET /api/history and /api/diff (read from the registry on request, with the caller's credentials). */
async function releasesApi(url: URL, res: ServerResponse, opts: DashboardServerOptions): Promise<void> {
  const ref = refFrom(url);
  if (!ref) return send(res, 400, { error: 'namespace and name of the Bundle are required' });
  const what = `Bundle ${ref.namespace}/${ref.name}`;
  if (!opts.releases) return send(res, 501, { error: `this dashboard cannot read the history of ${what}` });
  try {
    if (url.pathname === '/api/history') {
      const history = await opts.releases.history(ref.namespace, ref.name);
      return history ? send(res, 200, history) : send(res, 404, { error: `${what} not found` });
    }
    const request = parseDiffRequest(url.searchParams);
    if (typeof request === 'string') return send(res, 400, { error: `diff of ${what}: ${request}` });
    const cluster = request.cluster ? clusterInfoOf(opts.source.snapshot(), request.cluster) : DEFAULT_DIFF_CLUSTER;
    if (!cluster) return send(res, 404, { error: `diff of ${what}: Cluster ${request.cluster?.namespace}/${request.cluster?.name} not found` });
    const diff = await opts.releases.diff(ref.namespace, ref.name, request.from, request.to, cluster);
    return diff ? send(res, 200, { ...diff, cluster: cluster.name }) : send(res, 404, { error: `${what} not found` });
  } catch (err) {
    const verb = url.pathname === '/api/history' ? 'history' : 'diff';
    opts.log?.warn({ kind: 'Bundle', namespace: ref.namespace, name: ref.name, err: (err as Error).message }, `dashboard ${verb} failed`);
    send(res, 502, { error: `${verb} of ${what} failed: ${(err as Error).message}` });
  }
}

async function action(req: IncomingMessage, res: ServerResponse, opts: DashboardServerOptions, csrfToken: string): Promise<void> {
  if (!opts.actions) return send(res, 403, { error: 'actions are disabled: start the dashboard with --enable-actions' });
  if (!sameToken(req.headers[CSRF_HEADER], csrfToken)) return send(res, 403, { error: `missing or wrong ${CSRF_HEADER} header (reload the page)` });
  const origin = req.headers.origin;
  if (origin !== undefined && origin !== `http://${req.headers.host}`) return send(res, 403, { error: `cross-origin request from ${origin} refused` });
  if (!(req.headers['content-type'] ?? '').startsWith('application/json')) return send(res, 415, { error: 'the body must be application/json' });
  let body: unknown;
  try {
    body = JSON.parse(await readBody(req, 4096));
  } catch (err) {
    return send(res, 400, { error: `bad request body: ${(err as Error).message}` });
  }
  const parsed = parseActionRequest(body);
  if (typeof parsed === 'string') return send(res, 400, { error: parsed });
  const result = await opts.actions(parsed);
  opts.log?.info({ action: parsed.action, kind: 'GitRepo', namespace: parsed.namespace, name: parsed.name, status: result.status }, 'dashboard action');
  send(res, result.status, result.status < 300 ? { message: result.message } : { error: result.message });
}

/** Server-Sent Events: one `change` event (with the kinds changed) per burst of watch events. */
function eventStream(opts: DashboardServerOptions) {
  const clients = new Set<ServerResponse>();
  let pending = new Set<WatchedKind>();
  let timer: NodeJS.Timeout | undefined;
  let seq = 0;
  const flush = () => {
    timer = undefined;
    const data = JSON.stringify({ seq: ++seq, kinds: [...pending] });
    pending = new Set();
    for (const c of clients) c.write(`event: change\ndata: ${data}\n\n`);
  };
  const unsubscribe = opts.source.onChange((kind) => {
    pending.add(kind);
    timer ??= setTimeout(flush, opts.debounceMs ?? 150);
  });
  const heartbeat = setInterval(() => {
    for (const c of clients) c.write(': keep-alive\n\n');
  }, 20_000);
  heartbeat.unref();
  return {
    open(req: IncomingMessage, res: ServerResponse): void {
      res.writeHead(200, { ...SECURITY_HEADERS, 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', connection: 'keep-alive' });
      res.write(`retry: 2000\nevent: hello\ndata: ${JSON.stringify({ seq })}\n\n`);
      clients.add(res);
      req.on('close', () => clients.delete(res));
    },
    close(): void {
      unsubscribe();
      clearInterval(heartbeat);
      clearTimeout(timer);
      for (const c of clients) c.end();
      clients.clear();
    },
  };
}

/** Starts the server; resolves once it listens. */
export async function startDashboardServer(opts: DashboardServerOptions): Promise<DashboardServer> {
  const files = new Map<string, { body: Buffer; type: string }>();
  for (const [path, f] of Object.entries(STATIC_FILES)) files.set(path, { body: await readFile(join(STATIC_DIR, f.file)), type: f.type });
  const csrfToken = randomBytes(24).toString('base64url');
  const events = eventStream(opts);
  const loopbackOnly = isLoopback(opts.address);
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://dashboard.invalid');
    const hostname = (req.headers.host ?? '').replace(/:\d+$/, '');
    if (loopbackOnly && !LOOPBACK_HOSTS.has(hostname))
      return send(res, 421, { error: `Host ${hostname} is not served (this dashboard answers loopback names only)` });
    if (req.method === 'POST' && url.pathname === '/api/actions') {
      action(req, res, opts, csrfToken).catch((err: unknown) => send(res, 500, { error: (err as Error).message }));
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, { error: `${req.method} is not allowed here` });
    if (url.pathname === '/api/events') return events.open(req, res);
    if (url.pathname === '/api/history' || url.pathname === '/api/diff') {
      releasesApi(url, res, opts).catch((err: unknown) => send(res, 500, { error: (err as Error).message }));
      return;
    }
    const file = files.get(url.pathname);
    if (file) {
      res.writeHead(200, { ...SECURITY_HEADERS, 'content-type': file.type, 'cache-control': 'no-cache', 'content-length': file.body.length });
      res.end(req.method === 'HEAD' ? undefined : file.body);
      return;
    }
    try {
      if (api(url, res, opts, csrfToken)) return;
    } catch (err) {
      opts.log?.error({ err: (err as Error).message, path: url.pathname }, 'dashboard API failed');
      return send(res, 500, { error: `the dashboard failed to compute ${url.pathname}: ${(err as Error).message}` });
    }
    send(res, 404, { error: `${url.pathname} not found` });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.address, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const host = opts.address.includes(':') ? `[${opts.address}]` : opts.address;
  return {
    url: `http://${host === '0.0.0.0' || host === '[::]' ? '127.0.0.1' : host}:${port}/`,
    csrfToken,
    async close() {
      events.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
