import { createServer as createHttpsServer, request as httpsRequest, Agent as HttpsAgent, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Transform } from 'node:stream';
import { createCA, issueCert } from '../../stack/tls.js';

/**
 * A fault-injecting HTTPS reverse proxy in front of a real registry. It passes every request through
 * byte for byte (streaming both ways, Host header kept, so the registry's upload Locations point back
 * at the proxy) until told to misbehave: answer some requests with an error status (500, 429 with
 * Retry-After, ...), hold them for a while before passing them on, or serve other bytes (tamper). It has
 * its own CA, made for the run, so clients must be given {@link FaultProxy.caPem} like any TLS registry's CA.
 */

/** Which requests a fault applies to (default: all). */
export type RequestMatcher = (method: string, path: string) => boolean;

/** What the proxy does to matching requests. */
export type Fault =
  | { kind: 'status'; status: number; retryAfterSeconds?: number; match?: RequestMatcher }
  | { kind: 'delay'; ms: number; match?: RequestMatcher }
  /** Passes the request on, then flips bits of every byte of a 200 answer's body (same length): a mirror serving other bytes. */
  | { kind: 'tamper'; match?: RequestMatcher };

/** One request the proxy saw. */
export interface ProxiedRequest {
  method: string;
  path: string;
  status: number;
  injected: boolean;
}

export interface FaultProxy {
  /** `127.0.0.1:PORT`, as written in references. */
  readonly host: string;
  readonly caPem: string;
  /** Every request so far, in arrival order (status is 0 until answered). */
  readonly requests: ProxiedRequest[];
  /** Starts injecting `fault` (replacing any previous one). */
  inject(fault: Fault): void;
  /** Passes everything through again. */
  heal(): void;
  close(): Promise<void>;
}

/** Options of {@link startFaultProxy}. */
export interface FaultProxyOptions {
  /** The registry behind the proxy, `https://127.0.0.1:PORT`. */
  target: string;
  /** CA of the registry behind the proxy. */
  targetCaPem: string;
  /** Folder for the proxy's CA and certificate. */
  dir: string;
}

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer']);

function forwardHeaders(headers: IncomingMessage['headers']): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(headers)) if (v !== undefined && !HOP_BY_HOP.has(k)) out[k] = v;
  return out;
}

/** A stream that inverts one bit of every byte (the length, and so Content-Length, stays the same). */
function flipBits(): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc, callback) {
      const out = Buffer.from(chunk);
      for (let i = 0; i < out.length; i++) out[i] = (out[i] ?? 0) ^ 0x01;
      callback(null, out);
    },
  });
}

/** Starts the proxy on a free loopback port. */
export async function startFaultProxy(options: FaultProxyOptions): Promise<FaultProxy> {
  const ca = await createCA(options.dir, 'fault-proxy');
  const cert = await issueCert(ca, options.dir, { commonName: 'fault-proxy', ipAddresses: ['127.0.0.1'], dnsNames: ['localhost'], usage: 'server' });
  const target = new URL(options.target);
  const agent = new HttpsAgent({ keepAlive: true, ca: options.targetCaPem });
  const requests: ProxiedRequest[] = [];
  let fault: Fault | undefined;

  const pass = (req: IncomingMessage, res: ServerResponse, record: ProxiedRequest, tamper = false): void => {
    const upstream = httpsRequest(
      { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: forwardHeaders(req.headers), agent },
      (answer) => {
        record.status = answer.statusCode ?? 502;
        res.writeHead(record.status, forwardHeaders(answer.headers));
        if (tamper && record.status === 200) answer.pipe(flipBits()).pipe(res);
        else answer.pipe(res);
      },
    );
    upstream.on('error', (err) => {
      record.status = 502;
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
      res.end(`fault proxy: registry unreachable: ${err.message}`);
    });
    req.pipe(upstream);
  };

  const server: Server = createHttpsServer({ cert: cert.certPem, key: cert.keyPem }, (req, res) => {
    const record: ProxiedRequest = { method: req.method ?? 'GET', path: req.url ?? '/', status: 0, injected: false };
    requests.push(record);
    const f = fault;
    if (f && (f.match ?? (() => true))(record.method, record.path)) {
      if (f.kind === 'status') {
        record.status = f.status;
        record.injected = true;
        req.resume(); // drain the body the client is sending
        const headers: Record<string, string> = { 'content-type': 'application/json' };
        if (f.retryAfterSeconds !== undefined) headers['retry-after'] = String(f.retryAfterSeconds);
        const code = f.status === 429 ? 'TOOMANYREQUESTS' : 'UNKNOWN';
        res.writeHead(f.status, headers);
        res.end(JSON.stringify({ errors: [{ code, message: `injected by the fault proxy (${f.status})` }] }));
        return;
      }
      record.injected = true;
      if (f.kind === 'tamper') pass(req, res, record, true);
      else setTimeout(() => pass(req, res, record), f.ms);
      return;
    }
    pass(req, res, record);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    host: `127.0.0.1:${port}`,
    caPem: ca.certPem,
    requests,
    inject(f) {
      fault = f;
    },
    heal() {
      fault = undefined;
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      agent.destroy();
    },
  };
}
