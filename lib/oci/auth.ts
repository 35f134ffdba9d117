import { StallingError } from '../errors.js';
import { Reason } from '../api/constants.js';
import { decodeSecretData } from '../kube/secret.js';

/**
 * Registry authentication, the pure parts: challenges (`WWW-Authenticate`), credentials from Kubernetes
 * Secrets, and the per-scope Bearer token cache. The HTTP side lives in transport.ts.
 */

/** A username and password (or token as password) for a registry. Never logged, never in messages. */
export interface Credentials {
  username: string;
  password: string;
}

/** One challenge of a `WWW-Authenticate` header: the scheme (lowercased) and its parameters. */
export interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/**
 * Parses a `WWW-Authenticate` header (RFC 7235) into its challenges, e.g.
 * `Bearer realm="https://auth/token",service="reg",scope="repository:a:pull"` or `Basic realm="x"`.
 * Scheme names are lowercased; parameter names are lowercased; quoted values are unescaped.
 */
export function parseWWWAuthenticate(header: string): Challenge[] {
  const challenges: Challenge[] = [];
  let i = 0;
  const n = header.length;
  const skip = (re: RegExp) => {
    while (i < n && re.test(header[i] ?? '')) i++;
  };
  const token = (): string => {
    const start = i;
    while (i < n && /[!#$%&'*+\-.^_`|~0-9A-Za-z]/.test(header[i] ?? '')) i++;
    return header.slice(start, i);
  };
  while (i < n) {
    skip(/[\s,]/);
    const scheme = token();
    if (scheme === '') {
      i++;
      continue;
    }
    const challenge: Challenge = { scheme: scheme.toLowerCase(), params: {} };
    challenges.push(challenge);
    for (;;) {
      skip(/[\s,]/);
      const save = i;
      const name = token();
      skip(/\s/);
      if (name === '' || header[i] !== '=') {
        i = save;
        break;
      }
      i++;
      skip(/\s/);
      let value = '';
      if (header[i] === '"') {
        i++;
        while (i < n && header[i] !== '"') {
          if (header[i] === '\\' && i + 1 < n) i++;
          value += header[i];
          i++;
        }
        i++;
      } else {
        const start = i;
        while (i < n && header[i] !== ',' && !/\s/.test(header[i] ?? '')) i++;
        value = header.slice(start, i);
      }
      challenge.params[name.toLowerCase()] = value;
    }
  }
  return challenges;
}

/** Strips scheme and path from a docker config `auths` key: `https://host:5000/v1/` -> `host:5000`. */
export function normalizeAuthKey(key: string): string {
  return key
    .trim()
    .replace(/^[a-z]+:\/\//i, '')
    .replace(/\/.*$/, '')
    .toLowerCase();
}

const DOCKER_HUB_KEYS = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io']);

function fromDockerConfig(json: string, host: string, secretDesc: string): Credentials {
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch {
    throw new StallingError(Reason.InvalidSpec, `${secretDesc}: .dockerconfigjson is not valid JSON`);
  }
  const auths = (parsed as { auths?: unknown }).auths;
  if (typeof auths !== 'object' || auths === null) {
    throw new StallingError(Reason.InvalidSpec, `${secretDesc}: .dockerconfigjson has no "auths" object`);
  }
  const want = host.toLowerCase();
  const match = Object.entries(auths as Record<string, unknown>).find(([key]) => {
    const k = normalizeAuthKey(key);
    return k === want || (DOCKER_HUB_KEYS.has(k) && DOCKER_HUB_KEYS.has(want));
  });
  if (!match) throw new StallingError(Reason.SecretNotFound, `${secretDesc}: .dockerconfigjson has no entry for registry ${host}`);
  const entry = match[1] as { username?: unknown; password?: unknown; auth?: unknown };
  if (typeof entry.username === 'string' && typeof entry.password === 'string' && entry.username !== '') {
    return { username: entry.username, password: entry.password };
  }
  if (typeof entry.auth === 'string') {
    const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon > 0) return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
  }
  throw new StallingError(Reason.InvalidSpec, `${secretDesc}: the .dockerconfigjson entry for ${host} has neither username/password nor a valid "auth"`);
}

/**
 * Reads registry credentials from a Kubernetes Secret's `type` and `data` (values base64-encoded, as the
 * API returns them), for the registry `host` (`host[:port]`):
 * - `kubernetes.io/dockerconfigjson`: the `.dockerconfigjson` entry whose key names `host`
 *   (`host`, `https://host`, `https://host/v1/` all match), with `username`/`password` or `auth`;
 * - any other type: the `username` and `password` keys.
 * Throws a StallingError (SecretNotFound when keys or the host entry are missing, InvalidSpec when the
 * content is malformed). Messages name the key, never a value.
 */
export function credentialsFromSecretData(type: string | undefined, data: Record<string, string> | undefined, host: string): Credentials {
  const values = decodeSecretData(data);
  const desc = `registry secret (type ${type ?? 'Opaque'})`;
  if (type === 'kubernetes.io/dockerconfigjson' || (type === undefined && values['.dockerconfigjson'] !== undefined)) {
    const json = values['.dockerconfigjson'];
    if (json === undefined) throw new StallingError(Reason.SecretNotFound, `${desc}: key .dockerconfigjson is missing`);
    return fromDockerConfig(json, host, desc);
  }
  const username = values.username;
  const password = values.password;
  if (username === undefined || username === '') throw new StallingError(Reason.SecretNotFound, `${desc}: key username is missing or empty`);
  if (password === undefined) throw new StallingError(Reason.SecretNotFound, `${desc}: key password is missing`);
  return { username, password };
}

/** The `Authorization` value for basic auth. */
export function basicAuthorization(credentials: Credentials): string {
  return `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`, 'utf8').toString('base64')}`;
}

/** The token scope for a repository and its actions, e.g. `repository:a/b:pull,push`. */
export function repositoryScope(repository: string, actions: readonly string[]): string {
  return `repository:${repository}:${actions.join(',')}`;
}

/**
 * Bearer tokens cached per scope until they expire. A token is dropped `marginMs` before its expiry (or
 * at 90% of its lifetime for short ones) so a request never starts with a token about to lapse.
 */
export class TokenCache {
  private readonly entries = new Map<string, { token: string; expiresAt: number }>();

  constructor(
    private readonly now: () => number = Date.now,
    private readonly marginMs = 10_000,
  ) {}

  /** The cached token for `scope`, if still valid. */
  get(scope: string): string | undefined {
    const entry = this.entries.get(scope);
    if (!entry) return undefined;
    if (this.now() >= entry.expiresAt) {
      this.entries.delete(scope);
      return undefined;
    }
    return entry.token;
  }

  /** Stores a token valid for `expiresInSeconds` from now. */
  set(scope: string, token: string, expiresInSeconds: number): void {
    const lifetimeMs = Math.max(0, expiresInSeconds) * 1000;
    const margin = Math.min(this.marginMs, lifetimeMs / 10);
    this.entries.set(scope, { token, expiresAt: this.now() + lifetimeMs - margin });
  }

  /** Forgets the token for `scope` (the registry refused it). */
  delete(scope: string): void {
    this.entries.delete(scope);
  }
}

/** The default lifetime of a token whose response names none (the token spec says 60 seconds). */
export const DEFAULT_TOKEN_LIFETIME_SECONDS = 60;

/**
 * Reads a token endpoint's JSON answer: `token` or `access_token`, and `expires_in` (seconds, default 60).
 * Returns undefined if neither token field is a non-empty string.
 */
export function parseTokenResponse(json: unknown): { token: string; expiresIn: number } | undefined {
  if (typeof json !== 'object' || json === null) return undefined;
  const { token, access_token: accessToken, expires_in: expiresIn } = json as Record<string, unknown>;
  const value = typeof token === 'string' && token !== '' ? token : typeof accessToken === 'string' && accessToken !== '' ? accessToken : undefined;
  if (value === undefined) return undefined;
  const seconds = typeof expiresIn === 'number' && Number.isFinite(expiresIn) && expiresIn > 0 ? expiresIn : DEFAULT_TOKEN_LIFETIME_SECONDS;
  return { token: value, expiresIn: seconds };
}
