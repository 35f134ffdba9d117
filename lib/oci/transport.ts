import { createSecureContext, rootCertificates } from 'node:tls';
import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { Agent, request } from '../util/undici.js';
import { parseWWWAuthenticate, basicAuthorization, parseTokenResponse, TokenCache, type Challenge, type Credentials } from './auth.js';
import {
  ArtifactError,
  RegistryRefusedError,
  RegistryTLSError,
  RegistryUnavailableError,
  TransportErrorCode,
  codeForStatus,
  isRetryableStatus,
  parseErrorBody,
  translateNetworkError,
} from './errors.js';
import { Reason } from '../api/constants.js';
import { backoffDelay, parseRetryAfter, type RetryPolicy, type Sleep } from './retry.js';
import { apiHost } from './reference.js';
import type { RegistryEventSink } from './stats.js';

/**
 * The HTTP layer of the registry client (the only place undici is touched): TLS settings, the auth
 * handshake (anonymous, basic, Bearer token flow with a per-scope cache), retries with backoff honouring
 * Retry-After, redirects for blob downloads, and translation of every failure into a typed registry error.
 */

/** HTTP methods the distribution API uses. */
export type HttpMethod = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** Connection settings and collaborators of a {@link Transport}. */
export interface TransportOptions {
  /** Registry as written in references (`host[:port]`). */
  registry: string;
  basicHTTP: boolean;
  insecureSkipTLS: boolean;
  /** Extra trusted CA certificates (PEM), added to Node's built-in roots. */
  caPem: string | undefined;
  credentials: Credentials | undefined;
  userAgent: string;
  retry: RetryPolicy;
  sleep: Sleep;
  now: () => number;
  timeouts: { connectMs: number; headersMs: number; bodyMs: number };
  events: RegistryEventSink;
}

/** One request to the registry. */
export interface RegistryRequest {
  method: HttpMethod;
  /** A path (`/v2/...`) or an absolute URL (an upload `Location`). */
  path: string;
  /** Token scope, e.g. `repository:a/b:pull`; undefined for `/v2/`. */
  scope: string | undefined;
  /** What is being done, for messages: e.g. `pulling manifest sha256:... of a/b`. */
  operation: string;
  headers?: Record<string, string>;
  /** Makes the body; called again for each retry, so a stream is recreated rather than replayed. */
  body?: () => Buffer | Readable;
  /** Retry transient failures (default: true). False for requests that are not safe to repeat. */
  retry?: boolean;
  /** Follow 3xx redirects (blob downloads may be redirected to storage). */
  followRedirects?: boolean;
}

/** A response; the caller must consume or dump `body`. */
export interface RegistryResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Dispatcher.ResponseData['body'];
  url: string;
}

const MAX_ERROR_BODY = 64 * 1024;
const MAX_REDIRECTS = 5;

/** First value of a header. */
export function header(res: Pick<RegistryResponse, 'headers'>, name: string): string | undefined {
  const v = res.headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}

/** Reads at most `limit` bytes of a body as text and discards the rest. */
export async function readLimited(body: RegistryResponse['body'], limit: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    const buf = chunk as Buffer;
    if (size < limit) chunks.push(buf.subarray(0, limit - size));
    size += buf.length;
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Sends requests to one registry; see the module comment. */
export class Transport {
  readonly baseURL: string;
  private readonly origin: string;
  private readonly dispatcher: Agent;
  private readonly tokens: TokenCache;
  /** The auth scheme the registry asked for, once known, so later requests authenticate up front. */
  private scheme: 'basic' | 'bearer' | undefined;
  private bearerChallenge: Challenge | undefined;
  private readonly pendingTokens = new Map<string, Promise<string>>();

  constructor(private readonly options: TransportOptions) {
    this.baseURL = `${options.basicHTTP ? 'http' : 'https'}://${apiHost(options.registry)}`;
    this.origin = new URL(this.baseURL).origin;
    this.tokens = new TokenCache(options.now);
    // One secure context for every connection: building one from ~140 root certificates costs tens of
    // milliseconds, and undici reconnects after every HEAD (it never reuses a connection after one).
    const secureContext = options.caPem ? createSecureContext({ ca: [...rootCertificates, options.caPem] }) : undefined;
    this.dispatcher = new Agent({
      connect: { rejectUnauthorized: !options.insecureSkipTLS, ...(secureContext ? { secureContext } : {}), timeout: options.timeouts.connectMs },
      headersTimeout: options.timeouts.headersMs,
      bodyTimeout: options.timeouts.bodyMs,
    });
  }

  /** Closes idle connections. */
  async close(): Promise<void> {
    await this.dispatcher.close();
  }

  /**
   * Sends a request, authenticating as the registry demands and retrying transient failures.
   * Returns any final response (the caller checks the status, see {@link Transport.fail}); throws typed
   * registry errors for failures below HTTP and when retries are exhausted.
   */
  async send(req: RegistryRequest): Promise<RegistryResponse> {
    const policy = this.options.retry;
    for (let attempt = 0; ; attempt++) {
      const canRetry = req.retry !== false && attempt < policy.retries;
      let res: RegistryResponse;
      try {
        res = await this.sendAuthenticated(req);
      } catch (err) {
        const translated = translateNetworkError(err, this.options.registry, req.operation);
        if (!(translated instanceof RegistryUnavailableError) || !canRetry) throw translated;
        await this.pause(req, attempt, backoffDelay(policy, attempt), translated.code);
        continue;
      }
      if (!isRetryableStatus(res.status) || !canRetry) return res;
      const retryAfter = parseRetryAfter(header(res, 'retry-after'), this.options.now());
      await res.body.dump().catch(() => undefined);
      if (retryAfter !== undefined && retryAfter > policy.maxRetryAfterMs) {
        throw new RegistryUnavailableError(
          `${req.operation}: registry ${this.options.registry} asks to retry after ${Math.ceil(retryAfter / 1000)}s (HTTP ${res.status})`,
          { registry: this.options.registry, code: codeForStatus(res.status), status: res.status, retryAfterMs: retryAfter },
        );
      }
      await this.pause(req, attempt, retryAfter ?? backoffDelay(policy, attempt), `HTTP ${res.status}`);
    }
  }

  private async pause(req: RegistryRequest, attempt: number, delayMs: number, why: string): Promise<void> {
    this.options.events.emit({ type: 'retry', method: req.method, operation: req.operation, attempt: attempt + 1, delayMs, why });
    await this.options.sleep(delayMs);
  }

  /** One attempt, following redirects, answering at most one auth challenge. */
  private async sendAuthenticated(req: RegistryRequest): Promise<RegistryResponse> {
    let url = new URL(req.path, this.baseURL);
    let answeredChallenge = false;
    for (let redirects = 0; ; ) {
      // Credentials go to the registry's own origin only, never to a redirect target or a foreign Location.
      const sameOrigin = url.origin === this.origin;
      const authorization = sameOrigin ? await this.authorizationFor(req.scope) : undefined;
      const res = await this.raw(req, url, authorization);
      if (res.status === 401 && sameOrigin && !answeredChallenge) {
        const challenges = parseWWWAuthenticate(header(res, 'www-authenticate') ?? '');
        if (await this.answerChallenge(challenges, req, authorization)) {
          await res.body.dump().catch(() => undefined);
          answeredChallenge = true;
          continue;
        }
      }
      const location = header(res, 'location');
      if (req.followRedirects && res.status >= 300 && res.status < 400 && location !== undefined && redirects < MAX_REDIRECTS) {
        await res.body.dump().catch(() => undefined);
        url = new URL(location, url);
        redirects++;
        continue;
      }
      return res;
    }
  }

  private async raw(req: RegistryRequest, url: URL, authorization: string | undefined): Promise<RegistryResponse> {
    const headers: Record<string, string> = { 'user-agent': this.options.userAgent, ...req.headers };
    if (authorization !== undefined) headers.authorization = authorization;
    const res = await request(url, {
      dispatcher: this.dispatcher,
      method: req.method,
      headers,
      body: req.body ? req.body() : null,
      // undici closes the connection after every HEAD (for servers that send a body with it anyway), so each
      // check of a manifest or blob opened a new one: a commit of 1,000 unchanged bundles spent a quarter of
      // the controller's time connecting (bench/README.md). Registries answer HEAD as HTTP says; keep it open.
      ...(req.method === 'HEAD' ? { reset: false } : {}),
    });
    this.options.events.emit({ type: 'request', method: req.method, path: url.pathname, status: res.statusCode });
    return { status: res.statusCode, headers: res.headers, body: res.body, url: url.toString() };
  }

  private async authorizationFor(scope: string | undefined): Promise<string | undefined> {
    const credentials = this.options.credentials;
    if (this.scheme === 'basic' && credentials) return basicAuthorization(credentials);
    if (this.scheme !== 'bearer') return undefined;
    const key = scope ?? '';
    const cached = this.tokens.get(key);
    if (cached !== undefined) return `Bearer ${cached}`;
    // The realm is known from an earlier challenge: get the token before the request, not after a 401.
    if (this.bearerChallenge && scope !== undefined) return `Bearer ${await this.tokenFor(this.bearerChallenge, scope)}`;
    return undefined;
  }

  /**
   * Prepares credentials for a retry after a 401; false if there is nothing new to try. Requests racing
   * on the first challenge share one token fetch, and one that went out before a token existed simply
   * retries with it.
   */
  private async answerChallenge(challenges: Challenge[], req: RegistryRequest, sent: string | undefined): Promise<boolean> {
    const bearer = challenges.find((c) => c.scheme === 'bearer');
    if (bearer) {
      this.scheme = 'bearer';
      this.bearerChallenge = bearer;
      const key = req.scope ?? '';
      const cached = this.tokens.get(key);
      if (cached !== undefined && `Bearer ${cached}` !== sent) return true;
      this.tokens.delete(key);
      await this.tokenFor(bearer, req.scope);
      return true;
    }
    const credentials = this.options.credentials;
    if (challenges.some((c) => c.scheme === 'basic') && credentials && sent !== basicAuthorization(credentials)) {
      this.scheme = 'basic';
      return true;
    }
    return false;
  }

  /** A token for `scope`: cached, or fetched once however many requests ask at the same time. */
  private async tokenFor(challenge: Challenge, scope: string | undefined): Promise<string> {
    const key = scope ?? '';
    const cached = this.tokens.get(key);
    if (cached !== undefined) return cached;
    let pending = this.pendingTokens.get(key);
    if (pending === undefined) {
      pending = this.fetchToken(challenge, scope).finally(() => this.pendingTokens.delete(key));
      this.pendingTokens.set(key, pending);
    }
    return await pending;
  }

  /** Bearer token flow: GET realm?service=..&scope=.. with basic credentials if any; caches the token per scope. */
  private async fetchToken(challenge: Challenge, scope: string | undefined): Promise<string> {
    const registry = this.options.registry;
    const operation = `getting a token for ${scope ?? 'the registry'}`;
    const realm = challenge.params.realm;
    let url: URL;
    try {
      url = new URL(realm ?? '');
    } catch {
      throw new RegistryRefusedError(`${operation}: registry ${registry} sent a Bearer challenge without a valid realm`, {
        registry,
        code: 'UNAUTHORIZED',
        status: 401,
      });
    }
    if (url.protocol !== 'https:' && !(url.protocol === 'http:' && this.options.basicHTTP)) {
      throw new RegistryTLSError(
        `${operation}: registry ${registry} names a token realm over ${url.protocol}; refusing to send credentials without TLS (set basicHTTP to allow plain HTTP)`,
        { registry, code: TransportErrorCode.PlainHTTPToTls },
      );
    }
    if (challenge.params.service !== undefined) url.searchParams.set('service', challenge.params.service);
    const scopes = new Set<string>();
    if (scope !== undefined) scopes.add(scope);
    for (const s of (challenge.params.scope ?? '').split(' ')) if (s !== '') scopes.add(s);
    for (const s of scopes) url.searchParams.append('scope', s);
    const headers: Record<string, string> = { 'user-agent': this.options.userAgent, accept: 'application/json' };
    if (this.options.credentials) headers.authorization = basicAuthorization(this.options.credentials);
    let res: Dispatcher.ResponseData;
    try {
      res = await request(url, { dispatcher: this.dispatcher, method: 'GET', headers });
    } catch (err) {
      throw translateNetworkError(err, `${url.host} (token service of ${registry})`, operation);
    }
    this.options.events.emit({ type: 'token', scope: scope ?? '', status: res.statusCode });
    const text = await readLimited(res.body, 1024 * 1024);
    if (res.statusCode === 401 || res.statusCode === 403) {
      const code = res.statusCode === 401 ? 'UNAUTHORIZED' : 'DENIED';
      const who = this.options.credentials ? 'refused the configured credentials' : 'requires credentials and none are configured';
      throw new RegistryRefusedError(`${operation}: the token service of registry ${registry} ${who} (${code})`, { registry, code, status: res.statusCode });
    }
    let parsed: ReturnType<typeof parseTokenResponse>;
    try {
      parsed = parseTokenResponse(JSON.parse(text));
    } catch {
      parsed = undefined;
    }
    if (res.statusCode >= 300 || parsed === undefined) {
      const details = { registry, code: codeForStatus(res.statusCode), status: res.statusCode };
      const message = `${operation}: the token service of registry ${registry} answered HTTP ${res.statusCode} without a token`;
      throw isRetryableStatus(res.statusCode) ? new RegistryUnavailableError(message, details) : new RegistryRefusedError(message, details);
    }
    this.tokens.set(scope ?? '', parsed.token, parsed.expiresIn);
    return parsed.token;
  }

  /**
   * Turns an unexpected response into a typed error (and consumes its body): the registry's error code
   * from the body, else `notFoundCode` for a 404 (HEAD answers have no body), else one derived from the
   * status; 5xx and 429 are transient, other statuses stalling.
   */
  async fail(res: RegistryResponse, operation: string, notFoundCode?: string): Promise<never> {
    const registry = this.options.registry;
    const text = await readLimited(res.body, MAX_ERROR_BODY).catch(() => '');
    const parsed = parseErrorBody(text);
    // Go's TLS server answers plain HTTP with a bare 400 ("Client sent an HTTP request to an HTTPS
    // server", unseen for HEAD); a registry's own 400 carries an error body or its API version header.
    const bare = parsed === undefined && header(res, 'docker-distribution-api-version') === undefined;
    const httpsSaid = /HTTP request to an HTTPS server/i.test(text);
    if (res.status === 400 && (httpsSaid || (this.options.basicHTTP && bare))) {
      const why = httpsSaid ? 'serves HTTPS' : 'answered plain HTTP with a bare 400, as an HTTPS server does';
      throw new RegistryTLSError(`${operation}: registry ${registry} ${why}, but basicHTTP is set; unset basicHTTP`, {
        registry,
        code: TransportErrorCode.PlainHTTPToTls,
        status: 400,
      });
    }
    const code = parsed?.code ?? (res.status === 404 && notFoundCode !== undefined ? notFoundCode : codeForStatus(res.status));
    const said = parsed?.message ? `: ${parsed.message}` : '';
    let message = `${operation}: registry ${registry} answered HTTP ${res.status} ${code}${said}`;
    if (res.status === 401) {
      message = this.options.credentials
        ? `${operation}: registry ${registry} refused the configured credentials (${code}${said})`
        : `${operation}: registry ${registry} requires credentials and none are configured (${code}${said})`;
    }
    const retryAfterMs = parseRetryAfter(header(res, 'retry-after'), this.options.now());
    const details = { registry, code, status: res.status, ...(retryAfterMs === undefined ? {} : { retryAfterMs }) };
    if (isRetryableStatus(res.status)) throw new RegistryUnavailableError(message, details);
    throw new RegistryRefusedError(message, details);
  }
}

/** Reads a whole body of at most `maxBytes` (ArtifactError BundleTooLarge naming `what` beyond it). */
export async function readBodyLimited(res: RegistryResponse, maxBytes: number, operation: string, what: string): Promise<Buffer> {
  const declared = Number(header(res, 'content-length'));
  const tooLarge = () => new ArtifactError(Reason.BundleTooLarge, `${operation}: ${what} is larger than the ${maxBytes}-byte limit`);
  if (Number.isFinite(declared) && declared > maxBytes) {
    await res.body.dump().catch(() => undefined);
    throw tooLarge();
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res.body) {
    size += (chunk as Buffer).length;
    if (size > maxBytes) {
      res.body.destroy();
      throw tooLarge();
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}
