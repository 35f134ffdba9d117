import { Reason, REPOSITORY_REFERENCE, type GitRepo } from '../lib/api/index.js';
import { StallingError } from '../lib/errors.js';
import type { Credentials } from '../lib/oci/index.js';
import type { KubeClient, KubeObject } from '../lib/kube/client.js';
import { decodeSecretData } from '../lib/kube/secret.js';
import { discoverRegistry, type RegistryHostField } from './discovery.js';
import type { StorageRegistry } from './ports.js';

export type { StorageRegistry } from './ports.js';

/**
 * Where a GitRepo's bundles are stored, decided in one place. Precedence (Fleet 0.13+ plus KEP-1755):
 * 1. `spec.ociRegistry` with a reference;
 * 2. `spec.ociRegistry` without one: the registry the upstream cluster announces (controller/discovery.ts);
 * 3. `spec.ociRegistrySecret`: a Secret of type {@link STORAGE_SECRET_TYPES};
 * 4. a Secret named {@link FALLBACK_STORAGE_SECRET} in the GitRepo's namespace;
 * 5. etcd (inline in the Bundle objects).
 * A named Secret that is missing, of another type or malformed is a StallingError
 * (StorageSecretInvalid): it never falls back to etcd. Neither does the `ocistorage` Secret when it
 * exists but is unusable.
 */

/** Secret types accepted for OCI storage settings: Fleet's, and Flotilla's own. */
export const STORAGE_SECRET_TYPES = ['fleet.cattle.io/bundle-oci-storage/v1alpha1', 'flotilla.dev/bundle-oci-storage/v1alpha1'] as const;
/** The namespace-wide storage Secret used when a GitRepo names none (Fleet). */
export const FALLBACK_STORAGE_SECRET = 'ocistorage';
/** Repository path used under a registry given as a bare `host[:port]` (a Fleet Secret's reference, or discovery). */
export const DEFAULT_REPOSITORY_PATH = 'flotilla';

/** What decided the storage (GitRepo `status.storage.source`). */
export type StorageSource = 'ociRegistry' | 'ociRegistrySecret' | 'ocistorage' | 'discovery' | 'default';

/** The storage of one GitRepo. In OCI mode `registry.authSecretName` names the Secret the agents' read credentials come from. */
export type ResolvedStorage =
  | { mode: 'etcd'; source: 'default' }
  | { mode: 'oci'; source: StorageSource; registry: StorageRegistry; credentials?: Credentials; detail?: string };

/** What resolution reads: Secrets and the KEP-1755 ConfigMap, through the API. */
export interface StorageConfigOptions {
  kube: Pick<KubeClient, 'get'>;
  /** Which KEP-1755 host field is used (controller config `registryHostField`). */
  hostField: RegistryHostField;
  /** Reads `ociRegistry.authSecretName` credentials (controller/store.ts pushCredentials). */
  pushCredentials(namespace: string, registry: StorageRegistry): Promise<Credentials | undefined>;
}

/** A storage Secret as read from the API (values decoded). */
export interface StorageSecret {
  name: string;
  namespace: string;
  type?: string;
  data: Record<string, string>;
}

/** A bare `host[:port]` (no path). */
const BARE_HOST = /^([a-zA-Z0-9]([-a-zA-Z0-9.]*[a-zA-Z0-9])?|\[[0-9a-fA-F:]+\])(:[0-9]{1,5})?$/;

/** The repository prefix for `reference`: unchanged when it has a path, `host/`{@link DEFAULT_REPOSITORY_PATH} for a bare host; undefined when malformed. */
export function normalizeReference(reference: string): string | undefined {
  const trimmed = reference.trim().replace(/\/+$/, '');
  if (BARE_HOST.test(trimmed)) return `${trimmed}/${DEFAULT_REPOSITORY_PATH}`;
  return REPOSITORY_REFERENCE.test(trimmed) ? trimmed : undefined;
}

function secretError(secret: Pick<StorageSecret, 'namespace' | 'name'>, field: string, problem: string): StallingError {
  return new StallingError(
    Reason.StorageSecretInvalid,
    `Secret ${secret.namespace}/${secret.name} (${field}) ${problem}; bundles are not stored (never in etcd instead) until it is fixed`,
  );
}

function flag(secret: StorageSecret, field: string, key: string): boolean | undefined {
  const value = secret.data[key]?.trim();
  if (value === undefined || value === '') return undefined;
  if (value === 'true' || value === 'false') return value === 'true';
  throw secretError(secret, field, `key ${key} must be "true" or "false"`);
}

/**
 * The OCI settings a storage Secret holds (pure). `field` names how the GitRepo reached it
 * (`spec.ociRegistrySecret` or the `ocistorage` fallback), for messages. Values never reach a message.
 */
export function storageFromSecret(secret: StorageSecret, field: string): { registry: StorageRegistry; credentials?: Credentials } {
  if (!(STORAGE_SECRET_TYPES as readonly string[]).includes(secret.type ?? '')) {
    throw secretError(secret, field, `has type ${secret.type || 'Opaque'}, not ${STORAGE_SECRET_TYPES.join(' or ')}`);
  }
  const raw = secret.data.reference;
  if (raw === undefined || raw.trim() === '') throw secretError(secret, field, 'has no key reference (the registry, "host[:port][/path]")');
  const reference = normalizeReference(raw);
  if (!reference) throw secretError(secret, field, 'key reference is not "host[:port][/path]" (no scheme such as oci://, no tag, no digest)');
  const cacerts = secret.data.cacerts?.trim();
  if (cacerts && !cacerts.includes('-----BEGIN CERTIFICATE-----')) throw secretError(secret, field, 'key cacerts holds no PEM certificate');
  const basicHTTP = flag(secret, field, 'basicHTTP');
  const insecureSkipTLS = flag(secret, field, 'insecureSkipTLS');
  const { username, password, agentUsername } = secret.data;
  const registry: StorageRegistry = {
    reference,
    ...(basicHTTP ? { basicHTTP } : {}),
    ...(insecureSkipTLS ? { insecureSkipTLS } : {}),
    ...(cacerts ? { caBundle: Buffer.from(cacerts, 'utf8').toString('base64') } : {}),
    // Agents get agentUsername/agentPassword (else username/password) from this Secret (controller/bundle.ts).
    ...(username || agentUsername ? { authSecretName: secret.name } : {}),
  };
  return { registry, ...(username ? { credentials: { username, password: password ?? '' } } : {}) };
}

async function readStorageSecret(kube: Pick<KubeClient, 'get'>, namespace: string, name: string): Promise<StorageSecret | undefined> {
  const secret = await kube.get<KubeObject & { type?: string; data?: Record<string, string> }>({ apiVersion: 'v1', kind: 'Secret', namespace, name });
  if (!secret) return undefined;
  return { name, namespace, ...(secret.type ? { type: secret.type } : {}), data: decodeSecretData(secret.data) };
}

/** Resolves the storage of `repo` by the precedence above. */
export async function resolveStorage(repo: GitRepo & KubeObject, options: StorageConfigOptions): Promise<ResolvedStorage> {
  const namespace = repo.metadata.namespace ?? 'default';
  const spec = repo.spec.ociRegistry;
  if (spec) {
    let registry: StorageRegistry;
    let source: StorageSource = 'ociRegistry';
    let detail: string | undefined;
    if (spec.reference) registry = { ...spec, reference: spec.reference };
    else {
      const found = await discoverRegistry(options.kube, options.hostField);
      registry = { ...spec, reference: `${found.host}/${DEFAULT_REPOSITORY_PATH}` };
      source = 'discovery';
      detail = `discovered in kube-public/local-registry-hosting (${found.field})`;
    }
    const credentials = await options.pushCredentials(namespace, registry);
    return { mode: 'oci', source, registry, ...(credentials ? { credentials } : {}), ...(detail ? { detail } : {}) };
  }
  const named = repo.spec.ociRegistrySecret;
  if (named) {
    const secret = await readStorageSecret(options.kube, namespace, named);
    if (!secret) throw secretError({ namespace, name: named }, 'spec.ociRegistrySecret', 'does not exist');
    return { mode: 'oci', source: 'ociRegistrySecret', ...storageFromSecret(secret, 'spec.ociRegistrySecret') };
  }
  const fallback = await readStorageSecret(options.kube, namespace, FALLBACK_STORAGE_SECRET);
  if (fallback) return { mode: 'oci', source: 'ocistorage', ...storageFromSecret(fallback, `the namespace's ${FALLBACK_STORAGE_SECRET} Secret`) };
  return { mode: 'etcd', source: 'default' };
}

/** A short name of a storage for status and messages: "etcd" or the registry reference. */
export function storageName(storage: ResolvedStorage): string {
  return storage.mode === 'etcd' ? 'etcd' : storage.registry.reference;
}
