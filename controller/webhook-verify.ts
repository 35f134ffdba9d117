import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

/**
 * How each git provider authenticates a webhook call, and its check. Pure; constant-time compares only.
 *
 * - GitHub: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>`.
 * - Gitea: `X-Gitea-Signature: <hex HMAC-SHA256>`; Gogs: `X-Gogs-Signature: <hex HMAC-SHA256>`.
 * - Bitbucket Server (Data Center) and Bitbucket Cloud: `X-Hub-Signature: sha256=<hex HMAC-SHA256>`.
 *   Bitbucket Cloud webhooks without a secret send no signature and are refused like any unsigned call:
 *   give the webhook a secret in Bitbucket's settings (tokens in URLs are not accepted: proxies log URLs).
 * - GitLab: `X-Gitlab-Token: <the secret itself>` (GitLab signs nothing), compared in constant time.
 */

/** The providers the receiver understands. */
export type Provider = 'github' | 'gitlab' | 'gitea' | 'gogs' | 'bitbucket' | 'bitbucket-server';

/** Each provider's key(s) in a webhook Secret, first found wins (Fleet's keys; Gitea may use Gogs's). */
export const SECRET_KEYS: Record<Provider, readonly string[]> = {
  github: ['github'],
  gitlab: ['gitlab'],
  gitea: ['gitea', 'gogs'],
  gogs: ['gogs'],
  bitbucket: ['bitbucket'],
  'bitbucket-server': ['bitbucket-server'],
};

/** The header carrying each provider's signature or token (lower case, as Node gives headers). */
export const AUTH_HEADER: Record<Provider, string> = {
  github: 'x-hub-signature-256',
  gitlab: 'x-gitlab-token',
  gitea: 'x-gitea-signature',
  gogs: 'x-gogs-signature',
  bitbucket: 'x-hub-signature',
  'bitbucket-server': 'x-hub-signature',
};

/** The secret of `provider` in a webhook Secret's decoded data, if any. */
export function secretFor(provider: Provider, data: Record<string, string> | undefined): string | undefined {
  for (const key of SECRET_KEYS[provider]) {
    const value = data?.[key];
    if (value) return value;
  }
  return undefined;
}

/** Outcome of a check: ok, no credential in the call (401), or a wrong or malformed one (403). */
export type Verdict = 'ok' | 'missing' | 'mismatch';

function equalBytes(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

function hmacMatches(secret: string, body: Buffer, hex: string): boolean {
  if (!/^[0-9a-fA-F]{64}$/.test(hex)) return false;
  const expected = createHmac('sha256', secret).update(body).digest();
  return equalBytes(expected, Buffer.from(hex, 'hex'));
}

/**
 * Checks the call's signature or token (`header`: the value of {@link AUTH_HEADER} for `provider`, if
 * sent) against `secret` for `body` (the raw bytes received).
 */
export function verifyCall(provider: Provider, header: string | undefined, body: Buffer, secret: string): Verdict {
  if (!header) return 'missing';
  switch (provider) {
    case 'gitlab': {
      // Hashing first gives equal lengths, so the compare does not reveal the secret's length.
      const sha = (s: string) => createHash('sha256').update(s, 'utf8').digest();
      return equalBytes(sha(header), sha(secret)) ? 'ok' : 'mismatch';
    }
    case 'gitea':
    case 'gogs':
      return hmacMatches(secret, body, header.trim()) ? 'ok' : 'mismatch';
    default: {
      const match = /^sha256=([0-9a-fA-F]+)$/.exec(header.trim());
      return match?.[1] && hmacMatches(secret, body, match[1]) ? 'ok' : 'mismatch';
    }
  }
}
