import { Reason } from '../api/constants.js';
import { digestFile, sha256Digest } from './digest.js';
import { ArtifactError } from './errors.js';
import { bundlePathProblem, compareUtf8, pathConflict } from './paths.js';
import { OCI_MANIFEST_MEDIA_TYPE } from './client.js';
import { canonicalJSON } from '../util/json.js';
import type { BlobSource, Descriptor } from './upload.js';
import { readFile, stat } from 'node:fs/promises';
import { ANNOTATION_ENCRYPTION_KEY, ENCRYPTED_FILE_MEDIA_TYPE, encryptLayer, type BundleKey } from './encrypt.js';

/**
 * The bundle artifact format (see docs/artifact-format.md): an OCI image manifest v1.1 with Flotilla's artifactType, a
 * small canonical JSON config, and one uncompressed layer per bundle file titled with its path. Every byte
 * is a pure function of the files and the metadata, so the same content always has the same digest.
 */

/** `artifactType` of every bundle manifest. */
export const BUNDLE_ARTIFACT_TYPE = 'application/vnd.flotilla.bundle.v1';
/** Media type of the bundle config blob. */
export const BUNDLE_CONFIG_MEDIA_TYPE = 'application/vnd.flotilla.bundle.config.v1+json';
/** Media type of each file layer: the file's raw bytes, uncompressed. */
export const BUNDLE_FILE_MEDIA_TYPE = 'application/vnd.flotilla.bundle.file.v1';
/** Layer annotation holding the file's path in the bundle (what `oras pull` writes the file as). */
export const ANNOTATION_TITLE = 'org.opencontainers.image.title';
/** Manifest annotation: the git repository the bundle came from (credentials stripped). */
export const ANNOTATION_SOURCE = 'org.opencontainers.image.source';
/** Manifest annotation: the git commit the bundle came from. */
export const ANNOTATION_REVISION = 'org.opencontainers.image.revision';
/** Manifest annotation: the date of the git commit the version was built from (never the push time). */
export const ANNOTATION_CREATED = 'org.opencontainers.image.created';
/** `formatVersion` written in the config. */
export const BUNDLE_FORMAT_VERSION = 1;

/**
 * A file as the artifact builder takes it: its path in the bundle and its bytes, in memory or in a local
 * file (streamed). A lib/bundle BundleFile (always in memory) is one.
 */
export type ArtifactFile = { path: string; content: Buffer } | { path: string; file: string };

/** Bundle metadata recorded in the artifact. Nothing time-dependent belongs here. */
export interface ArtifactMeta {
  bundleName: string;
  bundleNamespace: string;
  /** Git repository URL (userinfo is removed before it is written). */
  source?: string;
  /** Git commit. */
  revision?: string;
  /** The commit's date (RFC 3339): the `org.opencontainers.image.created` annotation (deterministic per commit). */
  commitTime?: string;
  /** Flotilla's contents ID of the bundle, if the caller has one. */
  contentsID?: string;
  /** Encrypt every file layer under this key (lib/oci/encrypt.ts); the manifest names its ID. */
  encryptWith?: BundleKey;
}

/** A blob of an artifact and where its bytes are. */
export interface ArtifactBlob {
  descriptor: Descriptor;
  source: BlobSource;
}

/** An artifact ready to push. */
export interface BuiltArtifact {
  /** Exact manifest bytes. */
  manifest: Buffer;
  /** sha256 of `manifest`: the bundle version's identity. */
  digest: string;
  /** The config blob first, then each distinct layer blob once (files with equal bytes share one). */
  blobs: ArtifactBlob[];
  /** Layer descriptors in manifest order (sorted by path). */
  layers: Descriptor[];
  config: Descriptor;
}

/** The metadata read back from a bundle config. */
export interface BundleConfig {
  formatVersion: number;
  bundle: { name: string; namespace: string };
  contentsID?: string;
}

/** Removes `user:password@` from a URL (git URLs may carry tokens); non-URLs (scp-like) lose `user@`. */
export function sanitizeSourceURL(source: string): string {
  try {
    const url = new URL(source);
    url.username = '';
    url.password = '';
    return url.toString();
  } catch {
    return source.replace(/^[^@/]+@/, '');
  }
}

function invalidBundle(message: string, layer?: string): ArtifactError {
  return new ArtifactError(Reason.InvalidBundle, message, layer === undefined ? {} : { layer });
}

/** The config blob bytes for `meta` (canonical JSON). */
export function bundleConfigBytes(meta: ArtifactMeta): Buffer {
  if (meta.bundleName === '' || meta.bundleNamespace === '') throw invalidBundle('bundle name and namespace must not be empty');
  return Buffer.from(
    canonicalJSON({
      bundle: { name: meta.bundleName, namespace: meta.bundleNamespace },
      contentsID: meta.contentsID,
      formatVersion: BUNDLE_FORMAT_VERSION,
    }),
    'utf8',
  );
}

/** Files up to this size are read once into memory when described for a push, and uploaded from there. */
export const READ_ONCE_MAX_BYTES = 1024 * 1024;

/**
 * Hashes one bundle file into its layer blob (encrypted when `key` is given). A file on disk is streamed
 * through the hash, except with `readOnce` when it is at most {@link READ_ONCE_MAX_BYTES}: then it is read
 * whole and the blob's source holds the bytes, so an upload right after does not read it again.
 */
export async function describeArtifactFile(file: ArtifactFile, key: BundleKey | undefined, readOnce = false): Promise<ArtifactBlob> {
  if (key !== undefined) {
    const sealed = encryptLayer(key, 'content' in file ? file.content : await readFile(file.file));
    return {
      descriptor: { mediaType: ENCRYPTED_FILE_MEDIA_TYPE, digest: sha256Digest(sealed), size: sealed.length, annotations: { [ANNOTATION_TITLE]: file.path } },
      source: sealed,
    };
  }
  let content = 'content' in file ? file.content : undefined;
  if (content === undefined && readOnce && 'file' in file && (await stat(file.file)).size <= READ_ONCE_MAX_BYTES) content = await readFile(file.file);
  const { digest, size } = content !== undefined ? { digest: sha256Digest(content), size: content.length } : await digestFile((file as { file: string }).file);
  return {
    descriptor: { mediaType: BUNDLE_FILE_MEDIA_TYPE, digest, size, annotations: { [ANNOTATION_TITLE]: file.path } },
    source: content ?? { file: (file as { file: string }).file },
  };
}

/** Checks every path of `files` (clean, relative, no duplicates or file/directory clashes): ArtifactError InvalidBundle naming the file. */
export function checkArtifactPaths(files: readonly ArtifactFile[]): void {
  for (const f of files) {
    const problem = bundlePathProblem(f.path);
    if (problem !== undefined) throw invalidBundle(`bundle file path "${f.path}" ${problem}`, f.path);
  }
  const conflict = pathConflict(files.map((f) => f.path));
  if (conflict) throw invalidBundle(`bundle file path "${conflict.path}" ${conflict.problem}`, conflict.path);
}

/**
 * Builds the artifact for `files` and `meta`: validates every path (clean, relative, no duplicates or
 * file/directory clashes; ArtifactError InvalidBundle naming the file), hashes each file (streaming files
 * on disk), sorts layers by path and serializes the manifest canonically.
 */
export async function buildArtifact(files: readonly ArtifactFile[], meta: ArtifactMeta): Promise<BuiltArtifact> {
  checkArtifactPaths(files);
  const described = [];
  for (const f of files) described.push(await describeArtifactFile(f, meta.encryptWith));
  return assembleArtifact(described, meta);
}

/**
 * The artifact of already described layer blobs (one per file, any order; paths checked by the caller):
 * sorts layers by path and serializes the manifest canonically.
 */
export function assembleArtifact(layerBlobs: readonly ArtifactBlob[], meta: ArtifactMeta): BuiltArtifact {
  const described = [...layerBlobs];
  described.sort((a, b) => compareUtf8(a.descriptor.annotations?.[ANNOTATION_TITLE] ?? '', b.descriptor.annotations?.[ANNOTATION_TITLE] ?? ''));
  const configBytes = bundleConfigBytes(meta);
  const config: Descriptor = { mediaType: BUNDLE_CONFIG_MEDIA_TYPE, digest: sha256Digest(configBytes), size: configBytes.length };
  const annotations: Record<string, string> = {};
  if (meta.source !== undefined && meta.source !== '') annotations[ANNOTATION_SOURCE] = sanitizeSourceURL(meta.source);
  if (meta.revision !== undefined && meta.revision !== '') annotations[ANNOTATION_REVISION] = meta.revision;
  if (meta.commitTime !== undefined && meta.commitTime !== '') annotations[ANNOTATION_CREATED] = meta.commitTime;
  if (meta.encryptWith !== undefined) annotations[ANNOTATION_ENCRYPTION_KEY] = meta.encryptWith.id;
  const layers = described.map((d) => d.descriptor);
  const manifest = Buffer.from(
    canonicalJSON({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST_MEDIA_TYPE,
      artifactType: BUNDLE_ARTIFACT_TYPE,
      config,
      layers,
      annotations: Object.keys(annotations).length > 0 ? annotations : undefined,
    }),
    'utf8',
  );
  const blobs: ArtifactBlob[] = [{ descriptor: config, source: configBytes }];
  const seen = new Set([config.digest]);
  for (const d of described) {
    if (seen.has(d.descriptor.digest)) continue;
    seen.add(d.descriptor.digest);
    blobs.push({ descriptor: { mediaType: d.descriptor.mediaType, digest: d.descriptor.digest, size: d.descriptor.size }, source: d.source });
  }
  return { manifest, digest: sha256Digest(manifest), blobs, layers, config };
}
