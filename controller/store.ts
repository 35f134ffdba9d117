import { StallingError, WaitingError } from '../lib/errors.js';
import { Reason, type GitRepo, type OCIArtifactRef } from '../lib/api/index.js';
import {
  RegistryClient,
  bundleRepository,
  pushBundleVersion,
  deleteAllVersions,
  credentialsFromSecretData,
  signVersion,
  pullBundle,
  pinnedReference,
  type Reference,
  type Credentials,
} from '../lib/oci/index.js';
import { readSupplyChain, supplyChainRef, type SupplyChain } from './supplychain.js';
import { filesToResources, type LoadedBundle } from '../lib/bundle/index.js';
import type { KubeClient, KubeObject } from '../lib/kube/client.js';
import { decodeSecretData } from '../lib/kube/secret.js';
import { canonicalJSON } from '../lib/util/json.js';
import type { BundleStore, BundleStoreSession, RegistryAccess, RegistrySession, StorageRegistry, StoredContent, StoreRelease } from './ports.js';
import type { Logger } from 'pino';
import { lockBundleImages } from './images.js';
import { resolveStorage } from './storageconfig.js';
import { artifactRepository, copyBundleVersions, oldRegistry } from './migrate-versions.js';
import { keepVersionsInEtcd } from './content-objects.js';
import { pushVersionAt } from './migrate-tags.js';
import { pushEtcdVersions } from './migrate-etcd.js';
import { CONTROLLER_FIELD_MANAGER } from './rbac.js';
import type { RegistryHostField } from './discovery.js';

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
export async function pushCredentials(kube: SecretReader, namespace: string, registry: StorageRegistry): Promise<Credentials | undefined> {
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
  registry: StorageRegistry,
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
    // The GitRepo sync stores 8 bundles at once (controller/gitrepo.ts): 4 blobs each keeps at most 32
    // transfers, and 32 files of up to 1 MiB read for upload, in flight, as before the client's default rose to 8.
    concurrency: 4,
    onEvent,
  });
}

/** The production {@link RegistryAccess}: one {@link RegistryClient} (undici) per session. */
export const ociRegistryAccess: RegistryAccess = {
  open(registry, credentials, onEvent): RegistrySession {
    const client = registryClient(registry, credentials, onEvent);
    return {
      pushVersion: (repository, files, meta, retain, protect) => pushBundleVersion(client, repository, files, meta, { retain, protect }),
      hasVersion: (repository, digest) => client.hasManifest(repository.repository, digest),
      sign: (repository, digest, key) => signVersion(client, repository, digest, key),
      deleteAll: async (repository) => (await deleteAllVersions(client, repository)).length,
      copyFrom: async (source, repository, versions, owner) => {
        const from = registryClient(source.registry, source.credentials, onEvent);
        try {
          return await copyBundleVersions(from, source.repository, client, repository, versions, owner);
        } finally {
          await from.close();
        }
      },
      pushAt: (repository, files, meta, tag, owner) => pushVersionAt(client, repository, files, meta, tag, owner),
      pullFiles: async (repository, digest) => (await pullBundle(client, `${client.registry}/${repository}@${digest}`)).files,
      close: () => client.close(),
    };
  },
};

/** What a Bundle's `spec.oci` says besides the version itself: how agents reach, verify and decrypt it. */
function artifactSettings(registry: StorageRegistry, chain: SupplyChain): Omit<OCIArtifactRef, 'reference' | 'digest'> {
  return {
    ...supplyChainRef(chain),
    ...(registry.authSecretName ? { secretName: registry.authSecretName } : {}),
    ...(registry.basicHTTP ? { basicHTTP: true } : {}),
    ...(registry.insecureSkipTLS ? { insecureSkipTLS: true } : {}),
    ...(registry.caBundle ? { caBundle: registry.caBundle } : {}),
  };
}

/**
 * The version a Bundle carries, when a commit leaves its contents as they were: same contents ID, same
 * repository and settings, and the registry still has it (one HEAD instead of listing the tags and reading
 * the newest manifest). Undefined when it must be pushed. Retention then runs at the bundle's next change.
 */
async function currentVersion(
  session: RegistrySession,
  repository: Reference,
  contentsID: string,
  settings: Omit<OCIArtifactRef, 'reference' | 'digest'>,
  current: StoreRelease['current'],
): Promise<OCIArtifactRef | undefined> {
  const oci = current?.oci;
  if (!session.hasVersion || !oci || current?.contentsID !== contentsID) return undefined;
  const { reference, digest, ...rest } = oci;
  if (reference !== pinnedReference(repository, digest) || canonicalJSON(rest) !== canonicalJSON(settings)) return undefined;
  return (await session.hasVersion(repository, digest)) ? { reference, digest, ...settings } : undefined;
}

/**
 * Stores one bundle's files as an artifact version: the Bundle's current version when its contents did not
 * change and the registry still has it, else a push (nothing new when the newest version has the same content).
 */
export async function storeInRegistry(
  session: RegistrySession,
  registry: StorageRegistry,
  repo: GitRepo & KubeObject,
  bundle: LoadedBundle,
  commit: string,
  contentsID: string,
  retain: number,
  release: StoreRelease = {},
  chain: SupplyChain = {},
): Promise<StoredContent> {
  const repository = bundleRepository(registry.reference, repo.metadata.namespace ?? 'default', bundle.name);
  const settings = artifactSettings(registry, chain);
  const kept = await currentVersion(session, repository, contentsID, settings, release.current);
  if (kept) {
    // Signing is idempotent (nothing is pushed when this key's signature is there): a key added since is applied.
    if (chain.signer && session.sign) await session.sign(repository, kept.digest, chain.signer);
    return { oci: kept, push: { pushedBlobs: 0, skippedBlobs: 0, bytesUploaded: 0, unchanged: true, tag: undefined, reused: true } };
  }
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
      ...(chain.encryption ? { encryptWith: chain.encryption.key } : {}),
    },
    retain,
    release.protect,
  );
  if (chain.signer) {
    if (!session.sign) throw new StallingError(Reason.InvalidSpec, `GitRepo ${repo.metadata.name}: spec.signing is set but this registry access cannot sign`);
    await session.sign(repository, result.digest, chain.signer);
  }
  const oci: OCIArtifactRef = { reference: result.reference, digest: result.digest, ...settings };
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
  /** Logs what the images step did (controller/images.ts). */
  log?: Logger;
  /** Which KEP-1755 host a GitRepo without a registry reference uses (default `host`). */
  registryHostField?: RegistryHostField;
}

/**
 * The production {@link BundleStore}: OCI mode through `registries` when the GitRepo's storage resolves to a
 * registry (controller/storageconfig.ts: ociRegistry, discovery, ociRegistrySecret, ocistorage), else inline.
 */
export function createBundleStore(options: BundleStoreOptions): BundleStore {
  return {
    async deleteFrom(registry, credentials, repositories) {
      const session = options.registries.open(registry, credentials, options.onRegistryEvent);
      try {
        let deleted = 0;
        for (const repository of repositories) deleted += await session.deleteAll({ registry: registry.reference, repository });
        return deleted;
      } finally {
        await session.close();
      }
    },
    async open(repo): Promise<BundleStoreSession> {
      const namespace = repo.metadata.namespace ?? 'default';
      const storage = await resolveStorage(repo, {
        kube: options.kube,
        hostField: options.registryHostField ?? 'host',
        pushCredentials: (ns, registry) => pushCredentials(options.kube, ns, registry),
      });
      if (storage.mode === 'etcd') {
        return {
          registry: undefined,
          prepare: (bundle) => lockBundleImages(options, repo, bundle),
          source: storage.source,
          store: async (bundle) => storeInline(bundle, options.maxInlineBytes),
          deleteArtifacts: async () => 0,
          keepVersions: async (kube, bundleName, from, versions, current) => {
            const old = await oldRegistry(options.kube, namespace, from, repo.metadata.name);
            const source = options.registries.open(old.registry, old.credentials, options.onRegistryEvent);
            try {
              const pull = source.pullFiles;
              if (!pull) return 0;
              const { repository } = artifactRepository(from);
              const where = { namespace, name: repo.metadata.name };
              return await keepVersionsInEtcd(kube, CONTROLLER_FIELD_MANAGER, where, bundleName, versions, current, (d) => pull(repository, d));
            } finally {
              await source.close();
            }
          },
          close: async () => {},
        };
      }
      const { registry } = storage;
      const chain = await readSupplyChain(options.kube, repo);
      const session = options.registries.open(registry, storage.credentials, options.onRegistryEvent);
      return {
        registry,
        prepare: (bundle) => lockBundleImages(options, repo, bundle),
        source: storage.source,
        store: (bundle, commit, contentsID, release) => storeInRegistry(session, registry, repo, bundle, commit, contentsID, options.retain, release, chain),
        deleteArtifacts: (bundleName) => session.deleteAll(bundleRepository(registry.reference, namespace, bundleName)),
        copyVersions: async (bundleName, from, versions) => {
          const copyFrom = session.copyFrom;
          if (!copyFrom) return 0;
          const old = await oldRegistry(options.kube, namespace, from, repo.metadata.name);
          const toRepo = bundleRepository(registry.reference, namespace, bundleName).repository;
          const owner = `GitRepo ${namespace}/${repo.metadata.name}, bundle ${bundleName}`;
          return await copyFrom({ ...old, repository: artifactRepository(from).repository }, toRepo, versions, owner);
        },
        // Fakes without pushAt move only the current version.
        ...(session.pushAt ? { storeVersions: (bundleName, versions) => pushEtcdVersions(session, registry, repo, chain, bundleName, versions) } : {}),
        close: () => session.close(),
      };
    },
  };
}
