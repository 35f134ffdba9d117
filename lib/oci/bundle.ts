import { copyFile, link, mkdir, readFile, readdir } from 'node:fs/promises';
import { dirname, join, resolve, sep } from 'node:path';
import { Reason } from '../api/constants.js';
import { StallingError } from '../errors.js';
import {
  assembleArtifact,
  checkArtifactPaths,
  describeArtifactFile,
  type ArtifactBlob,
  type ArtifactMeta,
  type BuiltArtifact,
  type BundleConfig,
  type ArtifactFile,
} from './artifact.js';
import { OCI_MANIFEST_MEDIA_TYPE, type PushBlobResult, type RegistryClient } from './client.js';
import { ArtifactError } from './errors.js';
import { DEFAULT_ARTIFACT_LIMITS, parseBundleConfig, parseBundleManifest, type BundleLayer, type ArtifactLimits, type BundleManifest } from './manifest.js';
import { bundlePathProblem } from './paths.js';
import { formatReference, parseReference, pinnedReference, type Reference } from './reference.js';
import { mapLimit } from '../util/concurrency.js';

/**
 * Pushing and pulling bundles: the artifact format (artifact.ts, manifest.ts) over the registry client.
 * A pull is all or nothing: the manifest, the config and every layer are verified before any file is
 * returned or written, so a partially valid bundle is never applied.
 */

/** What a push did. */
export interface PushBundleResult {
  /** Manifest digest: the bundle version's identity. */
  digest: string;
  /** `host/repository@digest`, what Bundles and BundleDeployments pin. */
  reference: string;
  repository: Reference;
  /** The tag pushed, if any. */
  tag: string | undefined;
  /** Blobs uploaded (config included). */
  pushedBlobs: number;
  /** Blobs the registry already had (not uploaded). */
  skippedBlobs: number;
  /** Blob bytes uploaded. */
  bytesUploaded: number;
}

function toReference(client: RegistryClient, ref: Reference | string): Reference {
  const parsed = typeof ref === 'string' ? parseReference(ref) : ref;
  client.checkReference(parsed);
  return parsed;
}

/** Blob pushes already under way, by digest (see {@link pushBundle}). */
type BlobPushes = Map<string, Promise<PushBlobResult>>;

/** Pushes a blob once per push, however many files share its digest. */
function pushOnce(client: RegistryClient, repository: string, blob: ArtifactBlob, pushes: BlobPushes): Promise<PushBlobResult> {
  let pending = pushes.get(blob.descriptor.digest);
  if (pending === undefined) {
    pending = client.pushBlob(repository, blob.descriptor, blob.source);
    pushes.set(blob.descriptor.digest, pending);
  }
  return pending;
}

/**
 * Pushes an already built artifact: every blob (each checked first, see {@link RegistryClient.pushBlob};
 * those in `pushes` are already under way), then the manifest under `tag` or its digest.
 */
export async function pushArtifact(
  client: RegistryClient,
  repository: Reference | string,
  artifact: BuiltArtifact,
  tag?: string,
  pushes: BlobPushes = new Map(),
): Promise<PushBundleResult> {
  const repo = toReference(client, repository);
  const outcomes = await mapLimit(artifact.blobs, client.concurrency, async (blob) => ({
    result: await pushOnce(client, repo.repository, blob, pushes),
    size: blob.descriptor.size,
  }));
  await client.putManifest(repo.repository, tag ?? artifact.digest, artifact.manifest, OCI_MANIFEST_MEDIA_TYPE);
  const pushed = outcomes.filter((o) => o.result === 'uploaded');
  return {
    digest: artifact.digest,
    reference: pinnedReference(repo, artifact.digest),
    repository: { registry: repo.registry, repository: repo.repository },
    tag,
    pushedBlobs: pushed.length,
    skippedBlobs: outcomes.length - pushed.length,
    bytesUploaded: pushed.reduce((sum, o) => sum + o.size, 0),
  };
}

/**
 * Builds the artifact for `files` + `meta` and pushes it to `repository` (`host/path`, any tag or digest
 * in it ignored), tagged `tag` when given. Blobs the registry has are not uploaded. Each file is pushed
 * as soon as it is hashed (`client.concurrency` files at a time), and a small file on disk is read once
 * for both; the manifest, which needs every digest, goes last.
 */
export async function pushBundle(
  client: RegistryClient,
  repository: Reference | string,
  files: readonly ArtifactFile[],
  meta: ArtifactMeta,
  tag?: string,
): Promise<PushBundleResult> {
  const repo = toReference(client, repository);
  checkArtifactPaths(files);
  const pushes: BlobPushes = new Map();
  const layers = await mapLimit(files, client.concurrency, async (file): Promise<ArtifactBlob> => {
    const blob = await describeArtifactFile(file, meta.encryptWith, true);
    await pushOnce(client, repo.repository, blob, pushes);
    // Bytes read for the upload are not kept for the rest of the push.
    return 'file' in file && meta.encryptWith === undefined ? { descriptor: blob.descriptor, source: { file: file.file } } : blob;
  });
  return await pushArtifact(client, repo, assembleArtifact(layers, meta), tag, pushes);
}

/** Options of a pull. */
export interface PullOptions {
  /** Limits on count and sizes (defaults: {@link DEFAULT_ARTIFACT_LIMITS}). */
  limits?: Partial<ArtifactLimits>;
}

/** A verified bundle: manifest, config and the local (cache) path of each file's blob. */
export interface VerifiedBundle {
  digest: string;
  reference: Reference;
  manifest: BundleManifest;
  config: BundleConfig;
  /** Layer path -> verified blob path in the client's cache. */
  blobs: Map<string, string>;
}

/**
 * Fetches and verifies everything of a pinned bundle: the manifest (its digest must equal the pinned one),
 * its format and limits, the config and each distinct layer blob (digest and size, streamed to the blob
 * cache; cached blobs are not downloaded again). Throws before returning anything if any part fails.
 */
export async function fetchVerifiedBundle(client: RegistryClient, pinned: Reference | string, options: PullOptions = {}): Promise<VerifiedBundle> {
  const ref = toReference(client, pinned);
  if (ref.digest === undefined) {
    throw new StallingError(Reason.InvalidSpec, `bundle reference ${formatReference(ref)} is not pinned by digest (expected host/path@sha256:...)`);
  }
  const limits = { ...DEFAULT_ARTIFACT_LIMITS, ...options.limits };
  const where = `bundle ${pinnedReference(ref, ref.digest)}`;
  // Pinned: a manifest in the client's blob cache is as good as the registry's (the agent's resyncs re-read
  // bundles no longer in its memory from disk, not from the registry).
  const fetched = await client.getManifest(ref.repository, ref.digest, { accept: [OCI_MANIFEST_MEDIA_TYPE], maxBytes: limits.maxManifestBytes, cache: true });
  const manifest = parseBundleManifest(fetched.bytes, where, limits);
  const configPath = await client.fetchBlob(ref.repository, manifest.config, `${where}: config ${manifest.config.digest}`);
  const config = parseBundleConfig(await readFile(configPath), where);
  const distinct = new Map<string, BundleLayer>();
  for (const layer of manifest.layers) if (!distinct.has(layer.descriptor.digest)) distinct.set(layer.descriptor.digest, layer);
  const paths = new Map<string, string>();
  await mapLimit([...distinct.values()], client.concurrency, async (layer) => {
    paths.set(layer.descriptor.digest, await client.fetchBlob(ref.repository, layer.descriptor, `${where}: layer "${layer.path}"`));
  });
  const blobs = new Map(manifest.layers.map((l) => [l.path, paths.get(l.descriptor.digest) ?? '']));
  return { digest: ref.digest, reference: ref, manifest, config, blobs };
}

/** A pulled file in memory. */
export interface PulledFile {
  path: string;
  content: Buffer;
  digest: string;
}

/** A bundle pulled into memory. */
export interface PulledBundle {
  digest: string;
  config: BundleConfig;
  /** Manifest annotations (source, revision). */
  annotations: Record<string, string>;
  /** Files sorted by path. */
  files: PulledFile[];
  /** Digest of every blob the bundle is made of (config and layers), e.g. to keep them in a blob cache. */
  blobs: string[];
}

/**
 * Pulls a bundle pinned by digest (`host/path@sha256:...`) and returns its files in memory, after every
 * check of {@link fetchVerifiedBundle}. Rejections are ArtifactError (ArtifactTampered, InvalidBundle,
 * BundleTooLarge) naming the layer, or registry errors.
 */
export async function pullBundle(client: RegistryClient, pinned: Reference | string, options: PullOptions = {}): Promise<PulledBundle> {
  const v = await fetchVerifiedBundle(client, pinned, options);
  const files: PulledFile[] = [];
  for (const layer of v.manifest.layers) {
    files.push({ path: layer.path, content: await readFile(v.blobs.get(layer.path) ?? ''), digest: layer.descriptor.digest });
  }
  const blobs = [...new Set([v.manifest.config.digest, ...files.map((f) => f.digest)])];
  return { digest: v.digest, config: v.config, annotations: v.manifest.annotations, files, blobs };
}

/**
 * Puts a verified cached blob at `target`: a hard link when the cache is on the same file system (no second
 * write of the bytes), else a copy. The cache never writes into a blob file in place (it writes a new file
 * and renames it), and it re-hashes a blob before every reuse, so an edit of the pulled file through the
 * link cannot make the cache serve wrong bytes.
 */
async function placeFile(blob: string, target: string): Promise<void> {
  try {
    await link(blob, target);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // Another file system, or one without hard links: copy. Anything else (the target exists...) is an error.
    if (code !== 'EXDEV' && code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EMLINK') throw err;
    await copyFile(blob, target);
  }
}

/** A pulled file on disk. */
export interface WrittenFile {
  path: string;
  /** Absolute path of the written file. */
  file: string;
  size: number;
  digest: string;
}

/**
 * Pulls a bundle pinned by digest and writes its files under `directory` (new or empty), linked or copied
 * from the verified blob cache so memory stays bounded whatever the bundle size. Nothing is written unless
 * the whole bundle verified; each target is re-checked to stay inside `directory`.
 */
export async function pullBundleToDirectory(
  client: RegistryClient,
  pinned: Reference | string,
  directory: string,
  options: PullOptions = {},
): Promise<{ digest: string; config: BundleConfig; annotations: Record<string, string>; files: WrittenFile[] }> {
  const root = resolve(directory);
  // An existing entry (a symlink above all) could redirect writes: only a new or empty folder is used.
  const existing = await readdir(root).catch(() => [] as string[]);
  if (existing.length > 0) throw new StallingError(Reason.InvalidSpec, `pull target ${root} is not empty`);
  const v = await fetchVerifiedBundle(client, pinned, options);
  const files: WrittenFile[] = [];
  const made = new Set<string>();
  for (const layer of v.manifest.layers) {
    const target = resolve(root, layer.path);
    if (bundlePathProblem(layer.path) !== undefined || !target.startsWith(root + sep)) {
      throw new ArtifactError(Reason.InvalidBundle, `bundle ${v.digest}: layer "${layer.path}" would be written outside ${root}`, { layer: layer.path });
    }
    if (!made.has(dirname(target))) await mkdir(dirname(target), { recursive: true });
    made.add(dirname(target));
    await placeFile(v.blobs.get(layer.path) ?? '', target);
    files.push({ path: layer.path, file: join(root, layer.path), size: layer.descriptor.size, digest: layer.descriptor.digest });
  }
  return { digest: v.digest, config: v.config, annotations: v.manifest.annotations, files };
}
