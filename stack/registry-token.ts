import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { X509Certificate, createPrivateKey, randomUUID, sign, timingSafeEqual } from 'node:crypto';
import { issueCert, type CA } from './tls.js';

/**
 * A small token server for Docker Distribution's `auth: token` (the Docker registry token spec): it checks
 * basic credentials, grants the requested repository actions a user may have, and answers a JWT signed
 * ES256 with a certificate from the run's CA, sent in the `x5c` header. Distribution verifies it against
 * `rootcertbundle` (the CA). Served over HTTPS with the same CA.
 */

/** A user of the token server and the actions it may be granted (default: all requested). */
export interface TokenUser {
  username: string;
  password: string;
  /** Allowed actions, e.g. ["pull"] for a read-only user; undefined = any. */
  actions?: string[];
}

/** A running token server. */
export interface TokenServer {
  /** The realm to configure in Distribution: `https://127.0.0.1:PORT/token`. */
  realm: string;
  service: string;
  issuer: string;
  /** Token requests received (all outcomes). */
  requests(): number;
  stop(): Promise<void>;
}

/** Options of {@link startTokenServer}. */
export interface TokenServerOptions {
  dir: string;
  ca: CA;
  users: TokenUser[];
  service: string;
  issuer: string;
  /** Token lifetime in seconds (default 300). */
  lifetimeSeconds?: number;
}

function b64url(data: Buffer | string): string {
  return Buffer.from(data).toString('base64url');
}

function checkPassword(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

function parseBasic(header: string | undefined): { username: string; password: string } | undefined {
  if (!header?.startsWith('Basic ')) return undefined;
  const decoded = Buffer.from(header.slice(6), 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon < 0 ? undefined : { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

/** Grants, per `repository:name:actions` scope, the requested actions the user may have. */
function grant(scopes: string[], user: TokenUser | undefined): Array<{ type: string; name: string; actions: string[] }> {
  if (!user) return [];
  const out = [];
  for (const scope of scopes) {
    const m = /^([^:]+):(.+):([^:]*)$/.exec(scope);
    if (!m) continue;
    const [, type, name, actions] = m as unknown as [string, string, string, string];
    const wanted = actions.split(',').filter((a) => a !== '');
    const allowed = wanted.filter((a) => user.actions === undefined || user.actions.includes(a) || user.actions.includes('*'));
    out.push({ type, name, actions: allowed });
  }
  return out;
}

/** Starts the token server on a free loopback port. */
export async function startTokenServer(options: TokenServerOptions): Promise<TokenServer> {
  const serving = await issueCert(options.ca, options.dir, {
    commonName: '127.0.0.1',
    ipAddresses: ['127.0.0.1'],
    dnsNames: ['localhost'],
    fileName: 'token-server',
    usage: 'server',
  });
  const signer = await issueCert(options.ca, options.dir, { commonName: 'flotilla test token signer', fileName: 'token-signer', usage: 'both' });
  const signerDer = new X509Certificate(signer.certPem).raw.toString('base64');
  const signerKey = createPrivateKey(signer.keyPem);
  const lifetime = options.lifetimeSeconds ?? 300;
  let count = 0;

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    count++;
    const url = new URL(req.url ?? '/', 'https://127.0.0.1');
    if (url.pathname !== '/token') {
      res.writeHead(404).end();
      return;
    }
    const creds = parseBasic(req.headers.authorization);
    let user: TokenUser | undefined;
    if (creds) {
      user = options.users.find((u) => u.username === creds.username && checkPassword(creds.password, u.password));
      if (!user) {
        res.writeHead(401, { 'content-type': 'application/json', 'www-authenticate': 'Basic realm="flotilla-token"' });
        res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'invalid credentials' }] }));
        return;
      }
    }
    const now = Math.floor(Date.now() / 1000);
    const header = { typ: 'JWT', alg: 'ES256', x5c: [signerDer] };
    const claims = {
      iss: options.issuer,
      sub: user?.username ?? '',
      aud: url.searchParams.get('service') ?? options.service,
      exp: now + lifetime,
      nbf: now - 5,
      iat: now,
      jti: randomUUID(),
      access: grant(url.searchParams.getAll('scope'), user),
    };
    const signingInput = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    const signature = sign('sha256', Buffer.from(signingInput), { key: signerKey, dsaEncoding: 'ieee-p1363' });
    const token = `${signingInput}.${b64url(signature)}`;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ token, access_token: token, expires_in: lifetime, issued_at: new Date(now * 1000).toISOString() }));
  };

  const server: Server = createServer({ cert: serving.certPem, key: serving.keyPem }, handle);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  server.unref();
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('token server has no port');
  return {
    realm: `https://127.0.0.1:${address.port}/token`,
    service: options.service,
    issuer: options.issuer,
    requests: () => count,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
