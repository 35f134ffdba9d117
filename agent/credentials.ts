import { createHash, randomInt } from 'node:crypto';
import { z } from 'zod';
import { Reason } from '../lib/api/index.js';
import { StallingError } from '../lib/errors.js';
import { kubeAccessOf, type KubeAccess } from '../lib/kube/kubeconfig.js';

/**
 * The pure parts of the agent's registration: the bootstrap Secret, the state Secret, registration names,
 * token lifetimes and the in-memory kubeconfig of the upstream client. See registration.ts for the flow.
 */

/** Default namespace of the agent downstream. */
export const DEFAULT_AGENT_NAMESPACE = 'flotilla-system';
/** Downstream Secret with what the agent needs to register (written by whoever installs the agent). */
export const BOOTSTRAP_SECRET_NAME = 'flotilla-agent-bootstrap';
/** Downstream Secret where the agent keeps its registration state and credential. */
export const STATE_SECRET_NAME = 'flotilla-agent';
/** Upstream namespace holding the per-registration credential Secrets, unless the bootstrap names another. */
export const DEFAULT_REGISTRATION_NAMESPACE = 'flotilla-registration';
/** Token lifetime asked for on renewal when the current token does not say its own. */
export const DEFAULT_TOKEN_SECONDS = 86_400;

/** The bootstrap Secret's content. */
export const BootstrapSchema = z.object({
  apiServerURL: z.string().url(),
  apiServerCA: z.string().min(1),
  token: z.string().min(1),
  namespace: z.string().min(1),
  clusterLabels: z
    .string()
    .optional()
    .transform((text, ctx) => {
      if (text === undefined || text.trim() === '') return undefined;
      try {
        const parsed = z.record(z.string(), z.string()).safeParse(JSON.parse(text));
        if (parsed.success) return parsed.data;
      } catch {
        /* reported below */
      }
      ctx.addIssue({ code: 'custom', message: 'must be a JSON object of string values' });
      return z.NEVER;
    }),
  clientID: z.string().min(1).optional(),
  registrationNamespace: z.string().min(1).default(DEFAULT_REGISTRATION_NAMESPACE),
});

/** What the agent needs to register. */
export type Bootstrap = z.output<typeof BootstrapSchema>;

/** Parses the bootstrap Secret's decoded data; the message names the keys at fault, never a value. */
export function parseBootstrap(values: Record<string, string>, where: string): Bootstrap {
  const parsed = BootstrapSchema.safeParse(values);
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
  throw new StallingError(Reason.SecretNotFound, `bootstrap Secret ${where} is incomplete: ${problems}`);
}

/** The credential the controller granted (or the agent renewed). */
export interface AgentCredential {
  token: string;
  clusterName: string;
  clusterNamespace: string;
  apiServerURL: string;
  apiServerCA: string;
  /** RFC 3339. */
  expires?: string;
}

/** What the state Secret holds. */
export interface AgentState {
  clientRandom?: string;
  credential?: AgentCredential;
}

/** Reads the state from the state Secret's decoded data; a credential missing any key counts as none. */
export function stateFromSecret(values: Record<string, string>): AgentState {
  const state: AgentState = {};
  if (values.clientRandom) state.clientRandom = values.clientRandom;
  const { token, clusterName, clusterNamespace, apiServerURL, apiServerCA, expires } = values;
  if (token && clusterName && clusterNamespace && apiServerURL && apiServerCA) {
    state.credential = { token, clusterName, clusterNamespace, apiServerURL, apiServerCA, ...(expires ? { expires } : {}) };
  }
  return state;
}

/** The state Secret's values for a state. */
export function stateToSecret(state: AgentState): Record<string, string | undefined> {
  return { clientRandom: state.clientRandom, ...state.credential };
}

/** The clientID as a name prefix: lowercase alphanumerics and dashes, at most 40 characters. */
export function sanitizeClientID(clientID: string): string {
  const clean = clientID
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+/, '')
    .slice(0, 40)
    .replace(/-+$/, '');
  return clean === '' ? createHash('sha256').update(clientID).digest('hex').slice(0, 12) : clean;
}

/** The ClusterRegistration name: `<sanitized clientID>-<clientRandom>`. */
export function registrationName(clientID: string, clientRandom: string): string {
  return `${sanitizeClientID(clientID)}-${clientRandom}`;
}

const ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789';

/** A new clientRandom: 10 random lowercase alphanumerics. */
export function newClientRandom(random: (max: number) => number = randomInt): string {
  let out = '';
  for (let i = 0; i < 10; i++) out += ALPHABET[random(ALPHABET.length)];
  return out;
}

/** `iat` and `exp` (ms since epoch) of a JWT, read without verifying it (only to schedule renewal). */
export function tokenTimes(token: string): { issuedAt?: number; expiresAt?: number } {
  const payload = token.split('.')[1];
  if (!payload) return {};
  try {
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { iat?: unknown; exp?: unknown };
    return {
      ...(typeof claims.iat === 'number' ? { issuedAt: claims.iat * 1000 } : {}),
      ...(typeof claims.exp === 'number' ? { expiresAt: claims.exp * 1000 } : {}),
    };
  } catch {
    return {};
  }
}

/**
 * When the credential must be renewed (ms since epoch): at 2/3 of its life. The life comes from the token's
 * own `iat`/`exp`; without them, from `expires` and an assumed life of {@link DEFAULT_TOKEN_SECONDS};
 * without either, never (undefined).
 */
export function renewalDueAt(credential: Pick<AgentCredential, 'token' | 'expires'>): number | undefined {
  const { issuedAt, expiresAt } = tokenTimes(credential.token);
  const expires = expiresAt ?? (credential.expires ? Date.parse(credential.expires) : Number.NaN);
  if (!Number.isFinite(expires)) return undefined;
  const issued = issuedAt ?? expires - DEFAULT_TOKEN_SECONDS * 1000;
  return issued + ((expires - issued) * 2) / 3;
}

/** The lifetime (seconds) to ask for when renewing: the current token's, else the default. */
export function renewalSeconds(token: string): number {
  const { issuedAt, expiresAt } = tokenTimes(token);
  if (issuedAt === undefined || expiresAt === undefined || expiresAt <= issuedAt) return DEFAULT_TOKEN_SECONDS;
  return Math.max(600, Math.round((expiresAt - issuedAt) / 1000));
}

/**
 * An in-memory kubeconfig for the upstream API server. The token is read through `token()` on every
 * request, so the client built from it keeps working across renewals and re-registrations.
 */
export function upstreamKubeConfig(server: string, caPem: string, token: () => string): KubeAccess {
  return kubeAccessOf({ server, ca: Buffer.from(caPem, 'utf8'), token });
}
