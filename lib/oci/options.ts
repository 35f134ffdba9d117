import { Reason } from '../api/constants.js';
import { StallingError } from '../errors.js';
import type { Credentials } from './auth.js';
import type { RegistryClientOptions } from './client.js';
import { parseReference } from './reference.js';

/**
 * Building a client's options from what the API objects hold: `GitRepo.spec.ociRegistry` and the
 * `oci` block of Bundles and BundleDeployments share `basicHTTP`, `insecureSkipTLS` and `caBundle`
 * (base64 of PEM), next to a reference that names the registry.
 */

/** The registry settings found in `spec.ociRegistry` and in `OCIArtifactRef`. */
export interface RegistrySettings {
  /** `host[:port]/path`, with or without tag or digest. */
  reference: string;
  basicHTTP?: boolean;
  insecureSkipTLS?: boolean;
  /** Base64 of one or more PEM certificates. */
  caBundle?: string;
}

/** Decodes a `caBundle` (base64 of PEM); throws StallingError (InvalidSpec) if it holds no certificate. */
export function decodeCABundle(caBundle: string, field = 'caBundle'): string {
  const pem = Buffer.from(caBundle, 'base64').toString('utf8');
  if (!pem.includes('-----BEGIN CERTIFICATE-----')) {
    throw new StallingError(Reason.InvalidSpec, `${field} is not base64 of PEM certificates`);
  }
  return pem;
}

/**
 * The options of a RegistryClient for `settings` (registry host from the reference, TLS and
 * HTTP settings, the decoded CA) with `credentials`, plus `extra` (cache folder, hooks, retry policy).
 */
export function registryClientOptions(
  settings: RegistrySettings,
  credentials: Credentials | undefined,
  extra: Partial<RegistryClientOptions> = {},
): RegistryClientOptions {
  const { registry } = parseReference(settings.reference);
  return {
    registry,
    basicHTTP: settings.basicHTTP ?? false,
    insecureSkipTLS: settings.insecureSkipTLS ?? false,
    ...(settings.caBundle ? { caPem: decodeCABundle(settings.caBundle) } : {}),
    ...(credentials ? { credentials } : {}),
    ...extra,
  };
}
