import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { messageOf } from '../lib/errors.js';
import { decodeSecretData } from '../lib/kube/secret.js';
import type { KubeObject } from '../lib/kube/client.js';
import { counter } from '../lib/ops/metrics.js';
import type { ControllerContext } from './context.js';
import { Ref } from './context.js';
import { inShard } from './shard.js';
import { receive, type ReceiverPorts } from './webhook-receive.js';

/**
 * The git webhook receiver: an HTTP server (its own port, `--webhook-address`) taking push events from
 * GitHub, GitLab, Gitea, Gogs and Bitbucket (Cloud and Server) on any path. Each call is bounded (body
 * size, header and request time), authenticated (controller/webhook-receive.ts, webhook-verify.ts) and
 * answered with a status and a short reason; a verified push sets `status.webhookCommit` on the matching
 * GitRepos of this controller's shard, and their reconciler polls git at once. Wiring and HTTP only.
 */

/** Options of {@link startWebhookServer}. */
export interface WebhookServerOptions {
  /** `host:port` or `:port` (port 0 picks one). */
  address: string;
  context: ControllerContext;
  /** False while this replica does not lead (its caches are not running): calls get 503. */
  ready: () => boolean;
  log: Logger;
}

/** A running receiver. */
export interface WebhookServer {
  readonly port: number;
  close(): Promise<void>;
}

/** Splits `host:port` or `:port` (host 0.0.0.0); throws naming the flag when it is not one. */
export function parseListenAddress(address: string): { host: string; port: number } {
  const match = /^(.*):(\d{1,5})$/.exec(address.trim());
  const port = Number(match?.[2]);
  if (!match || port > 65535) throw new Error(`--webhook-address ${address}: expected host:port or :port`);
  return { host: (match[1] ?? '').replace(/^\[|\]$/g, '') || '0.0.0.0', port };
}

/**
 * Reads the request body, keeping at most `limit` bytes; undefined when it is larger (the caller answers
 * 413). The rest of a larger body is read and discarded (bounded by the request timeout), so that the
 * client reads the answer instead of a connection reset.
 */
async function readBody(req: IncomingMessage, limit: number): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = Number(req.headers['content-length'] ?? '0') > limit ? limit + 1 : 0;
  return await new Promise<Buffer | undefined>((resolve, reject) => {
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= limit) chunks.push(chunk);
      else chunks.length = 0;
    });
    req.once('end', () => resolve(size > limit ? undefined : Buffer.concat(chunks)));
    req.once('error', reject);
    req.once('close', () => resolve(undefined)); // the client went away before the end: nothing to answer
  });
}

function answer(res: ServerResponse, status: number, reason: string): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', connection: 'close' });
  res.end(`${reason}\n`);
}

/** The receiver's ports on the controller's context: its shard's GitRepos from the cache, Secrets and status from the API. */
export function receiverPorts(ctx: ControllerContext): ReceiverPorts {
  return {
    gitRepos: () => ctx.informers.gitRepos.list().filter((r) => inShard(r, ctx.config.shardId)),
    async readSecret(namespace, name) {
      const secret = await ctx.kube.get<KubeObject & { data?: Record<string, string> }>(Ref.secret(namespace, name));
      return secret ? decodeSecretData(secret.data) : undefined;
    },
    globalSecret: { namespace: ctx.config.systemNamespace, name: ctx.config.webhookSecretName },
    async announce(repo, commit) {
      await ctx.kube.mergePatch(Ref.gitRepo(repo.metadata.namespace ?? 'default', repo.metadata.name), { status: { webhookCommit: commit } }, 'status');
    },
  };
}

/** Starts the receiver; resolves once it listens. */
export async function startWebhookServer(options: WebhookServerOptions): Promise<WebhookServer> {
  const { context: ctx, log } = options;
  const ports = receiverPorts(ctx);
  const calls = counter(ctx.metrics.registry, 'flotilla_webhook_requests_total', 'Webhook calls received, by provider and HTTP status code.', [
    'provider',
    'code',
  ]);
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const done = (status: number, reason: string, fields: Record<string, unknown> = {}) => {
      calls.inc({ provider: String(fields.provider ?? 'unknown'), code: String(status) });
      const line = { status, reason, remote: req.socket.remoteAddress, ...fields };
      if (status >= 400) log.warn(line, 'webhook refused');
      else log.info(line, 'webhook received');
      answer(res, status, reason);
    };
    if (req.method !== 'POST') return done(405, 'only POST is accepted');
    if (!options.ready()) return done(503, 'not ready: this replica is not leading or its caches are not synced');
    const type = String(req.headers['content-type'] ?? '');
    if (!/json/i.test(type)) return done(415, 'only application/json payloads are accepted');
    const body = await readBody(req, ctx.config.webhookMaxBodyBytes);
    if (!body) return done(413, `the body is larger than ${ctx.config.webhookMaxBodyBytes} bytes`);
    const result = await receive(ports, req.headers, body);
    done(result.status, result.reason, { provider: result.provider, repository: result.repository, triggered: result.triggered });
  };
  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      log.error({ err: messageOf(err) }, 'webhook failed');
      if (!res.headersSent) answer(res, 500, 'internal error; see the controller log');
      else res.destroy();
    });
  });
  server.requestTimeout = 15_000;
  server.headersTimeout = 10_000;
  server.keepAliveTimeout = 5_000;
  server.maxHeadersCount = 100;
  const { host, port } = parseListenAddress(options.address);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const bound = (server.address() as AddressInfo).port;
  log.info({ address: `${host}:${bound}`, shard: ctx.config.shardId ?? '(default)' }, 'webhook receiver listening');
  return {
    port: bound,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
