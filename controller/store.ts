import { StallingError, WaitingError } from '../lib/errors.js';
import { Reason, type GitRepo, type OCIArtifactRef, type OCIRegistry } from '../lib/api/index.js';
import { RegistryClient, bundleRepository, pushBundleVersion, deleteAllVersions, credentialsFromSecretData, type Credentials } from '../lib/oci/index.js';
import { filesToResources, type LoadedBundle } from '../lib/bundle/index.js';
import type { KubeClient, KubeObject } from '../lib/kube/client.js';
import { decodeSecretData } from '../lib/kube/secret.js';
import type { BundleStore, BundleStoreSession, RegistryAccess, RegistrySession, StoredContent } from './ports.js';

/**
 * The bundle store (the {@link BundleStore} port, controller/ports.ts): a bundle's content goes to the OCI
 * registry named by `ociRegistry` (OCI mode), or inline into the Bundle object (etcd mode). There is no
 * fallback from one to the other: a registry failure is an error, never a reason to write content into
 * etcd. The registry itself is reached through the {@link RegistryAccess} port ({@link ociRegistryAccess}
 * in production).
 */

export type { StoredContent } from './ports.js';

interface SecretObject extends KubeObject {
  type?: string;
  data?: Record<string, string>;
}

/** The API call the store's Secret reads make. */
type SecretReader = Pick<KubeClient, 'get'>;

/** Reads a Secret's data as UTF-8 strings; a missing Secret is a WaitingError naming it. */
export async function readSecretData(
  kube: SecretReader,
  namespace: string,
  name: string,
  purpose: string,
): Promise<{ type?: string; data: Record<string, string>; resourceVersion?: string }> {
  const secret = await kube.get<SecretObject>({ apiVersion: 'v1', kind: 'Secret', namespace, name });
  if (!secret) {
    throw new WaitingError(Reason.SecretNotFound, `Secret ${namespace}/${name} (${purpose}) does not exist`, { retryAfterMs: 10_000 });
  }
  const data = decodeSecretData(secret.data);
  return { type: secret.type, data, ...(secret.metadata.resourceVersion ? { resourceVersion: secret.metadata.resourceVersion } : {}) };
}

/** The registry credentials the controller pushes with (keys username/password, or a dockerconfigjson). */
export async function pushCredentials(kube: SecretReader, namespace: string, registry: OCIRegistry): Promise<Credentials | undefined> {
  if (!registry.authSecretName) return undefined;
  const secret = await kube.get<SecretObject>({ apiVersion: 'v1', kind: 'Secret', namespace, name: registry.authSecretName });
  if (!secret) {
    throw new WaitingError(Reason.SecretNotFound, `Secret ${namespace}/${registry.authSecretName} (ociRegistry.authSecretName) does not exist`, {
      retryAfterMs: 10_000,
    });
  }
  const host = registry.reference.split('/')[0] ?? registry.reference;
  // credentialsFromSecretData reads Secret.data as the API serves it (base64 values).
  return credentialsFromSecretData(secret.type, secret.data, host);
}

/** A registry client for a GitRepo's `ociRegistry` settings. */
export function registryClient(
  registry: OCIRegistry,
  credentials: Credentials | undefined,
  onEvent?: ConstructorParameters<typeof RegistryClient>[0]['onEvent'],
): RegistryClient {
  const host = registry.reference.split('/')[0] ?? registry.reference;
  return new RegistryClient({
    registry: host,
    basicHTTP: registry.basicHTTP,
    insecureSkipTLS: registry.insecureSkipTLS,
    caPem: registry.caBundle ? Buffer.from(registry.caBundle, 'base64').toString('utf8') : undefined,
    credentials,
    userAgent: 'flotilla-controller',
    onEvent,
  });
}

/** The production {@link RegistryAccess}: one {@link RegistryClient} (undici) per session. */
export const ociRegistryAccess: RegistryAccess = {
  open(registry, credentials, onEvent): RegistrySession {
    const client = registryClient(registry, credentials, onEvent);
    return {
      pushVersion: (repository, files, meta, retain, protect) => pushBundleVersion(client, repository, files, meta, { retain, protect }),
      deleteAll: async (repository) => (await deleteAllVersions(client, repository)).length,
      close: () => client.close(),
    };
  },
};

/** Pushes one bundle's files as a new artifact version (nothing when the newest version has the same content). */
export async function storeInRegistry(
  session: RegistrySession,
  repo: GitRepo & KubeObject,
  bundle: LoadedBundle,
  commit: string,
  contentsID: string,
  retain: number,
  release: { commitTime?: string; protect?: Iterable<string> } = {},
): Promise<StoredContent> {
  const registry = repo.spec.ociRegistry as OCIRegistry;
  const repository = bundleRepository(registry.reference, repo.metadata.namespace ?? 'default', bundle.name);
  const result = await session.pushVersion(
    repository,
    bundle.files,
    {
      bundleName: bundle.name,
      bundleNamespace: repo.metadata.namespace ?? 'default',
      source: repo.spec.repo,
      revision: commit,
      ...(release.commitTime ? { commitTime: release.commitTime } : {}),
      contentsID,
    },
    retain,
    release.protect,
  );
  const oci: OCIArtifactRef = { reference: result.reference, digest: result.digest };
  if (registry.authSecretName) oci.secretName = registry.authSecretName;
  if (registry.basicHTTP) oci.basicHTTP = true;
  if (registry.insecureSkipTLS) oci.insecureSkipTLS = true;
  if (registry.caBundle) oci.caBundle = registry.caBundle;
  return {
    oci,
    push: {
      pushedBlobs: result.pushedBlobs,
      skippedBlobs: result.skippedBlobs,
      bytesUploaded: result.bytesUploaded,
      unchanged: result.unchanged,
      tag: result.tag,
      sequence: result.sequence,
      deleted: result.deleted.map((d) => d.digest),
    },
  };
}

/** Inline resources for etcd mode; too large a bundle is a StallingError that suggests OCI storage. */
export function storeInline(bundle: LoadedBundle, maxBytes: number): StoredContent {
  const resources = filesToResources(bundle.files);
  const size = Buffer.byteLength(JSON.stringify(resources), 'utf8');
  if (size > maxBytes) {
    throw new StallingError(
      Reason.BundleTooLarge,
      `bundle ${bundle.name} (${bundle.dir}) is ${size} bytes, more than ${maxBytes} bytes that fit in an etcd object; set spec.ociRegistry to store bundles as OCI artifacts`,
    );
  }
  return { resources };
}

/** What {@link createBundleStore} builds on. */
export interface BundleStoreOptions {
  /** Reads the registry credential Secrets. */
  kube: SecretReader;
  registries: RegistryAccess;
  /** Artifact versions kept per bundle repository. */
  retain: number;
  /** Above this, a bundle cannot be stored inline (etcd mode). */
  maxInlineBytes: number;
  /** Sees every registry event of a push (metrics). */
  onRegistryEvent?: (event: { type: string; size?: number }) => void;
}

/** The production {@link BundleStore}: OCI mode through `registries` when the GitRepo names a registry, else inline. */
export function createBundleStore(options: BundleStoreOptions): BundleStore {
  return {
    async open(repo): Promise<BundleStoreSession> {
      const registry = repo.spec.ociRegistry;
      if (!registry) {
        return {
          registry: undefined,
          store: async (bundle) => storeInline(bundle, options.maxInlineBytes),
          deleteArtifacts: async () => 0,
          close: async () => {},
        };
      }
      const namespace = repo.metadata.namespace ?? 'default';
      const session = options.registries.open(registry, await pushCredentials(options.kube, namespace, registry), options.onRegistryEvent);
      return {
        registry,
        store: (bundle, commit, contentsID, release) => storeInRegistry(session, repo, bundle, commit, contentsID, options.retain, release),
        deleteArtifacts: (bundleName) => session.deleteAll(bundleRepository(registry.reference, namespace, bundleName)),
        close: () => session.close(),
      };
    },
  };
}
