import { createHash } from 'node:crypto';
import { canonicalJSON } from '../lib/util/json.js';
import { Label, Reason, type BundleDeployment, type OCIArtifactRef } from '../lib/api/index.js';
import { resourcesToFiles, type BundleFile } from '../lib/bundle/index.js';
import { StallingError, TransientError, WaitingError, messageOf } from '../lib/errors.js';
import type { KubeClient, KubeObject } from '../lib/kube/client.js';
import type { Logger } from 'pino';
import {
  ArtifactError,
  BlobCache,
  RegistryClient,
  RegistryRefusedError,
  RegistryUnavailableError,
  credentialsFromSecretData,
  mirrorRoute,
  parseReference,
  pullBundle,
  type ArtifactLimits,
  type Credentials,
  type RegistryClientOptions,
} from '../lib/oci/index.js';
import type { AgentMetrics } from './metrics.js';
import { pullThroughMirror, type AgentMirrors } from './mirrors.js';
import { decryptPulled, trustFingerprint, verifyArtifactSignature } from './verify.js';

/**
 * Obtaining a BundleDeployment's files: inline `spec.resources` (etcd mode) or the OCI artifact pinned by
 * `spec.oci` (OCI mode), pulled with lib/oci, which verifies the manifest digest and every blob before
 * returning anything; blobs are cached on disk by digest, so unchanged files are never downloaded again.
 * Pulled bundles are also kept in memory by manifest digest (up to 32 and 32 MiB), and the pinned manifests in the blob
 * cache beside their layers, so that a periodic resync of an unchanged bundle needs no registry at all. The
 * registry clients are kept between pulls (see {@link ContentLoader.clientFor}).
 *
 * Failures say what happens next (the reconciler retries transient ones with backoff, and never applies
 * anything from a failed pull): RegistryUnreachable (registry down), ArtifactPullFailed (the registry
 * refuses or lacks the artifact: it may be pushed or fixed later), AuthenticationFailed, ArtifactTampered
 * (bytes differ from the pinned digest: retried, since the registry may be repaired, but never applied),
 * SecretNotFound (waiting), and InvalidBundle / BundleTooLarge (stalling: the pinned content never changes).
 *
 * The blob cache is pruned with {@link ContentLoader.pruneCache}: blobs of artifacts no BundleDeployment
 * references any more are removed, so the cache holds what the cluster runs, not every version it ran.
 */

/** Default bound on the bytes of pulled bundles a {@link ContentLoader} keeps in memory. */
export const DEFAULT_MEMORY_BYTES = 32 * 1024 * 1024;

/** Options of a {@link ContentLoader}. */
export interface ContentLoaderOptions {
  /** The upstream client (reads the registry Secret in the cluster namespace). */
  upstream: KubeClient;
  clusterNamespace: string;
  /** Blob cache folder (shared by every pull; content-addressed). */
  cacheDir: string;
  /** Limits on pulled artifacts. */
  limits?: Partial<ArtifactLimits>;
  /** Largest inline bundle (sum of decoded resources), bytes; default 100 MiB. */
  maxInlineBytes?: number;
  /** Retries of one pull on transient registry failures before the reconciler backs off; default 2. */
  pullRetries?: number;
  /** Pulled bundles kept in memory; default 32. */
  memoryEntries?: number;
  /**
   * Bytes of pulled bundles kept in memory; default 32 MiB. A bundle left out is read again from the blob
   * cache on disk at its next reconcile (no registry request), so large bundles do not pin their bytes.
   */
  memoryBytes?: number;
  /** Counts pulls by outcome, bytes pulled and blob cache hits and misses. */
  metrics?: Pick<AgentMetrics, 'artifactPulls' | 'registryEvent'>;
  /** Registry mirrors of this cluster (agent/mirrors.ts) and the downstream client that reads their bootstrap Secrets. */
  mirrors?: { mirrors: AgentMirrors; downstream: KubeClient; log: Logger };
}

/** Where a bundle's content came from, for logs and events. */
export interface LoadedContent {
  files: BundleFile[];
  /** "oci <reference>" or "inline (<n> resources)". */
  source: string;
}

/** What one pruning of the blob cache did. */
export type PruneResult =
  | { pruned: true; removed: number; kept: number }
  /** Skipped: a pull was under way, or a referenced artifact was not pulled by this process yet (its blobs are unknown). */
  | { pruned: false; why: string };

/** Loads bundle content (see the module comment). */
export class ContentLoader {
  private readonly memory = new Map<string, { files: BundleFile[]; bytes: number }>();
  private memoryBytes = 0;
  /** Blob digests of every artifact pulled (or found in memory) by this process, by manifest digest. */
  private readonly blobsOf = new Map<string, string[]>();
  private pulls = 0;
  /** Registry clients by a hash of their options, least recently used first (see {@link clientFor}). */
  private readonly clients = new Map<string, RegistryClient>();
  private pruning: Promise<unknown> | undefined;

  constructor(private readonly options: ContentLoaderOptions) {}

  /** The files of a BundleDeployment. */
  async load(bd: BundleDeployment): Promise<LoadedContent> {
    const oci = bd.spec.oci;
    if (oci)
      return {
        files: await this.pull(
          oci,
          `BundleDeployment ${bd.metadata.namespace ?? ''}/${bd.metadata.name} (bundle ${bd.metadata.labels?.[Label.BundleName] ?? '?'})`,
        ),
        source: `oci ${oci.reference}`,
      };
    const resources = bd.spec.resources ?? [];
    return { files: resourcesToFiles(resources, this.options.maxInlineBytes), source: `inline (${resources.length} resources)` };
  }

  private async credentials(oci: OCIArtifactRef, registry: string): Promise<Credentials | undefined> {
    if (!oci.secretName) return undefined;
    const secret = await this.options.upstream.get<KubeObject>({
      apiVersion: 'v1',
      kind: 'Secret',
      namespace: this.options.clusterNamespace,
      name: oci.secretName,
    });
    if (!secret) {
      throw new WaitingError(Reason.SecretNotFound, `registry Secret ${this.options.clusterNamespace}/${oci.secretName} does not exist`, {
        retryAfterMs: 10_000,
      });
    }
    return credentialsFromSecretData(secret.type as string | undefined, secret.data as Record<string, string> | undefined, registry);
  }

  private remember(digest: string, files: BundleFile[]): void {
    const old = this.memory.get(digest);
    if (old) this.memoryBytes -= old.bytes;
    this.memory.delete(digest);
    const bytes = files.reduce((n, f) => n + f.content.length, 0);
    const maxBytes = this.options.memoryBytes ?? DEFAULT_MEMORY_BYTES;
    if (bytes > maxBytes) return;
    this.memory.set(digest, { files, bytes });
    this.memoryBytes += bytes;
    const max = this.options.memoryEntries ?? 32;
    for (const [key, entry] of this.memory) {
      if (this.memory.size <= max && this.memoryBytes <= maxBytes) break;
      this.memory.delete(key);
      this.memoryBytes -= entry.bytes;
    }
  }

  /** Bundles held in memory, and their bytes (tests). */
  get inMemory(): { entries: number; bytes: number } {
    return { entries: this.memory.size, bytes: this.memoryBytes };
  }

  /**
   * Removes from the blob cache every blob that none of `live` (the manifest digests the cluster's
   * BundleDeployments pin) is made of. Conservative: skipped while a pull is under way, and when a live
   * artifact has not been pulled by this process (after a restart), since its blobs are not known yet.
   * Pulls wait while it runs.
   */
  async pruneCache(live: Iterable<string>): Promise<PruneResult> {
    if (this.pulls > 0 || this.pruning) return { pruned: false, why: 'a pull is under way' };
    const wanted = new Set(live);
    const unknown = [...wanted].filter((d) => !this.blobsOf.has(d));
    if (unknown.length > 0) return { pruned: false, why: `${unknown.length} referenced artifacts not pulled yet` };
    for (const digest of [...this.blobsOf.keys()]) {
      if (!wanted.has(digest)) {
        this.blobsOf.delete(digest);
        for (const [k, entry] of [...this.memory]) {
          if (!k.startsWith(digest)) continue;
          this.memory.delete(k);
          this.memoryBytes -= entry.bytes;
        }
      }
    }
    // The manifests too: pulls keep them in the blob cache by digest.
    const keep = new Set([...this.blobsOf.keys(), ...[...this.blobsOf.values()].flat()]);
    const run = new BlobCache(this.options.cacheDir).prune(keep);
    this.pruning = run;
    try {
      return { pruned: true, removed: await run, kept: keep.size };
    } finally {
      this.pruning = undefined;
    }
  }

  private async pull(oci: OCIArtifactRef, what: string): Promise<BundleFile[]> {
    const ref = parseReference(oci.reference);
    if (ref.digest !== oci.digest) {
      throw new StallingError(Reason.InvalidSpec, `spec.oci.reference ${oci.reference} is not pinned by spec.oci.digest ${oci.digest}`);
    }
    const memoryKey = `${oci.digest}${trustFingerprint(oci)}`;
    const cached = this.memory.get(memoryKey);
    const metrics = this.options.metrics;
    if (cached) {
      this.remember(memoryKey, cached.files);
      metrics?.artifactPulls.inc({ outcome: 'cached' });
      return cached.files;
    }
    while (this.pruning) await this.pruning;
    this.pulls++;
    try {
      const files = await this.pullRouted(oci, ref.registry, what);
      metrics?.artifactPulls.inc({ outcome: 'success' });
      return files;
    } catch (err) {
      metrics?.artifactPulls.inc({ outcome: 'error' });
      throw err;
    } finally {
      this.pulls--;
    }
  }

  /** Through the registry's mirror when this cluster has one (agent/mirrors.ts), else from the origin. */
  private async pullRouted(oci: OCIArtifactRef, registry: string, what: string): Promise<BundleFile[]> {
    const m = this.options.mirrors;
    const route = m ? mirrorRoute(m.mirrors.map(), oci.reference) : undefined;
    if (!m || !route) return await this.pullFromRegistry(oci, registry);
    const readers = { downstream: m.downstream, upstream: this.options.upstream, clusterNamespace: this.options.clusterNamespace };
    return await pullThroughMirror({
      route,
      what,
      credentials: () => m.mirrors.credentials(route.mirror, readers),
      pull: (options, reference) => this.pullWith(options, reference, oci),
      origin: () => this.pullFromRegistry(oci, registry),
      translate: translatePullError,
      log: m.log,
    });
  }

  private async pullFromRegistry(oci: OCIArtifactRef, registry: string): Promise<BundleFile[]> {
    const credentials = await this.credentials(oci, registry);
    const options: RegistryClientOptions = {
      registry,
      basicHTTP: oci.basicHTTP ?? false,
      insecureSkipTLS: oci.insecureSkipTLS ?? false,
      ...(oci.caBundle ? { caPem: Buffer.from(oci.caBundle, 'base64').toString('utf8') } : {}),
      ...(credentials ? { credentials } : {}),
    };
    try {
      return await this.pullWith(options, oci.reference, oci);
    } catch (err) {
      throw translatePullError(err, oci.reference);
    }
  }

  /** Pulls `reference` (pinned by `oci.digest`: the origin or a mirror) with a client of `options`, verified and decrypted as `oci` says; raw lib/oci errors. */
  private async pullWith(options: RegistryClientOptions, reference: string, oci: OCIArtifactRef): Promise<BundleFile[]> {
    const client = this.clientFor(options);
    await verifyArtifactSignature(client, oci, reference);
    const pulled = await pullBundle(client, reference, { limits: this.options.limits ?? {} });
    const files = await decryptPulled(this.options.upstream, this.options.clusterNamespace, oci, pulled);
    this.remember(`${oci.digest}${trustFingerprint(oci)}`, files);
    this.blobsOf.set(oci.digest, pulled.blobs);
    return files;
  }

  /**
   * The registry client of `options`, kept for the next pulls with the same registry, TLS settings and
   * credentials: its connections stay open between pulls (a client per pull connected anew for every bundle,
   * the largest cost of a rollout's pulls after the bytes) and its bearer tokens are reused until they expire.
   * Other credentials (a rotated Secret) get a client of their own; the least recently used beyond
   * {@link REGISTRY_CLIENTS_KEPT} is closed once its requests are done.
   */
  private clientFor(options: RegistryClientOptions): RegistryClient {
    const key = createHash('sha256').update(canonicalJSON(options)).digest('hex');
    const kept = this.clients.get(key);
    if (kept) {
      this.clients.delete(key);
      this.clients.set(key, kept);
      return kept;
    }
    const client = new RegistryClient({
      ...options,
      blobCacheDir: this.options.cacheDir,
      userAgent: 'flotilla-agent',
      retry: { retries: this.options.pullRetries ?? 2 },
      ...(this.options.metrics ? { onEvent: this.options.metrics.registryEvent } : {}),
    });
    this.clients.set(key, client);
    for (const [oldest, old] of this.clients) {
      if (this.clients.size <= REGISTRY_CLIENTS_KEPT) break;
      this.clients.delete(oldest);
      void old.close().catch(() => undefined);
    }
    return client;
  }

  /** Closes the registry clients (their requests finish first). */
  async close(): Promise<void> {
    const clients = [...this.clients.values()];
    this.clients.clear();
    await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
  }
}

/** Registry clients a {@link ContentLoader} keeps open (one per registry, TLS settings and credentials). */
export const REGISTRY_CLIENTS_KEPT = 8;

/** Registry error codes that mean "the artifact is not there". */
const MISSING_CODES = new Set(['MANIFEST_UNKNOWN', 'NAME_UNKNOWN', 'BLOB_UNKNOWN']);

/**
 * Maps lib/oci failures onto what the agent does next. Refusals become transient (the registry may be
 * fixed, the artifact pushed, the Secret updated, none of which changes the BundleDeployment).
 */
export function translatePullError(err: unknown, reference: string): unknown {
  const message = `pulling ${reference}: ${messageOf(err)}`;
  if (err instanceof RegistryUnavailableError) return new TransientError(Reason.RegistryUnreachable, message, { cause: err });
  if (err instanceof ArtifactError) {
    return err.reason === Reason.ArtifactTampered ? new TransientError(Reason.ArtifactTampered, message, { cause: err }) : err;
  }
  if (err instanceof RegistryRefusedError) {
    if (err.reason === Reason.AuthenticationFailed) return new TransientError(Reason.AuthenticationFailed, message, { cause: err });
    const missing = MISSING_CODES.has(err.code) || err.status === 404;
    return new TransientError(Reason.ArtifactPullFailed, missing ? `pulling ${reference}: the artifact is missing (${err.code}): ${messageOf(err)}` : message, {
      cause: err,
    });
  }
  return err;
}
