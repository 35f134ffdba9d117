/**
 * Secret `data` as the API serves it: every value base64-encoded. The one place Flotilla decodes and
 * encodes it (controller, agent and the OCI layer read registry, git and agent credentials this way).
 */

/**
 * Decodes a Secret's `data` (base64 values) into UTF-8 strings. Anything that is not an object gives `{}`
 * and a value that is not a string is left out, so a malformed Secret reads as one with missing keys.
 */
export function decodeSecretData(data: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (typeof data !== 'object' || data === null) return out;
  for (const [key, value] of Object.entries(data)) {
    if (typeof value === 'string') out[key] = Buffer.from(value, 'base64').toString('utf8');
  }
  return out;
}

/** Encodes strings as a Secret's `data` (base64 values); undefined values are left out. */
export function encodeSecretData(values: Record<string, string | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(values)) if (value !== undefined) out[key] = Buffer.from(value, 'utf8').toString('base64');
  return out;
}
