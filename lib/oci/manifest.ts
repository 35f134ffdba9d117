import { Reason } from '../api/constants.js';
import { isDigest } from './digest.js';
import { ArtifactError } from './errors.js';
import { bundlePathProblem, pathConflict } from './paths.js';
import { ANNOTATION_TITLE, BUNDLE_ARTIFACT_TYPE, BUNDLE_CONFIG_MEDIA_TYPE, BUNDLE_FILE_MEDIA_TYPE, type BundleConfig } from './artifact.js';
import { OCI_MANIFEST_MEDIA_TYPE } from './client.js';
import type { Descriptor } from './upload.js';
import { ANNOTATION_ENCRYPTION_KEY, ENCRYPTED_FILE_MEDIA_TYPE } from './encrypt.js';
import { isPlainObject } from '../util/json.js';

/**
 * Reading a bundle manifest pulled from a registry. The manifest's bytes are trusted only because they
 * hash to the pinned digest; what they say is still checked against Flotilla's format and limits before
 * a single layer is downloaded.
 */

/** Limits applied when pulling a bundle; anything over them is refused (BundleTooLarge). */
export interface ArtifactLimits {
  maxFiles: number;
  maxFileBytes: number;
  maxTotalBytes: number;
  maxManifestBytes: number;
  maxConfigBytes: number;
}

/** Defaults: 10000 files, 64 MiB per file, 256 MiB in total, 4 MiB manifest, 64 KiB config. */
export const DEFAULT_ARTIFACT_LIMITS: ArtifactLimits = {
  maxFiles: 10_000,
  maxFileBytes: 64 * 1024 * 1024,
  maxTotalBytes: 256 * 1024 * 1024,
  maxManifestBytes: 4 * 1024 * 1024,
  maxConfigBytes: 64 * 1024,
};

/** A file layer of a bundle manifest. */
export interface BundleLayer {
  path: string;
  descriptor: Descriptor;
}

/** A validated bundle manifest. */
export interface BundleManifest {
  config: Descriptor;
  layers: BundleLayer[];
  annotations: Record<string, string>;
  /** Sum of the layer sizes. */
  totalBytes: number;
}

function invalid(where: string, message: string, layer?: string): ArtifactError {
  return new ArtifactError(Reason.InvalidBundle, `${where}: ${message}`, layer === undefined ? {} : { layer });
}

function stringMap(v: unknown): Record<string, string> | undefined {
  if (v === undefined) return {};
  if (!isPlainObject(v) || !Object.values(v).every((x) => typeof x === 'string')) return undefined;
  return v as Record<string, string>;
}

/** Checks one descriptor's shape; `what` names it in messages. */
function descriptor(v: unknown, where: string, what: string, layer?: string): Descriptor {
  if (!isPlainObject(v)) throw invalid(where, `${what} is not an object`, layer);
  const { mediaType, digest, size } = v;
  if (typeof mediaType !== 'string') throw invalid(where, `${what} has no mediaType`, layer);
  if (typeof digest !== 'string' || !isDigest(digest)) throw invalid(where, `${what} has no valid digest (sha256 or sha512)`, layer);
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) throw invalid(where, `${what} has no valid size`, layer);
  const annotations = stringMap(v.annotations);
  if (annotations === undefined) throw invalid(where, `${what} has annotations that are not strings`, layer);
  return { mediaType, digest, size, annotations };
}

function tooLarge(where: string, message: string, layer?: string): ArtifactError {
  return new ArtifactError(Reason.BundleTooLarge, `${where}: ${message}`, layer === undefined ? {} : { layer });
}

function parseLayer(raw: unknown, index: number, where: string, limits: ArtifactLimits, encrypted: boolean): BundleLayer {
  const title = isPlainObject(raw) && isPlainObject(raw.annotations) ? raw.annotations[ANNOTATION_TITLE] : undefined;
  const name = typeof title === 'string' ? `layer "${title}"` : `layer ${index}`;
  const d = descriptor(raw, where, name, typeof title === 'string' ? title : undefined);
  if (typeof title !== 'string') throw invalid(where, `${name} has no ${ANNOTATION_TITLE} annotation`);
  const mediaType = encrypted ? ENCRYPTED_FILE_MEDIA_TYPE : BUNDLE_FILE_MEDIA_TYPE;
  if (d.mediaType !== mediaType) throw invalid(where, `${name} has media type ${d.mediaType}, expected ${mediaType}`, title);
  const problem = bundlePathProblem(title);
  if (problem !== undefined) throw invalid(where, `${name}: path ${problem}`, title);
  if (d.size > limits.maxFileBytes) throw tooLarge(where, `${name} has ${d.size} bytes, over the ${limits.maxFileBytes}-byte limit per file`, title);
  return { path: title, descriptor: d };
}

/**
 * Parses and validates a bundle manifest: OCI image manifest, schemaVersion 2, Flotilla's artifactType
 * and config media type, every layer a Flotilla file layer with a clean, unique title; counts and sizes
 * within `limits`. Throws ArtifactError (InvalidBundle or BundleTooLarge) naming `where` and the layer.
 */
export function parseBundleManifest(bytes: Buffer, where: string, limits: ArtifactLimits = DEFAULT_ARTIFACT_LIMITS): BundleManifest {
  if (bytes.length > limits.maxManifestBytes) throw tooLarge(where, `the manifest has ${bytes.length} bytes, over the ${limits.maxManifestBytes}-byte limit`);
  let json: unknown;
  try {
    json = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw invalid(where, 'the manifest is not JSON');
  }
  if (!isPlainObject(json)) throw invalid(where, 'the manifest is not a JSON object');
  if (json.schemaVersion !== 2) throw invalid(where, `schemaVersion is ${String(json.schemaVersion)}, expected 2`);
  if (json.mediaType !== OCI_MANIFEST_MEDIA_TYPE) throw invalid(where, `mediaType is ${String(json.mediaType)}, expected ${OCI_MANIFEST_MEDIA_TYPE}`);
  if (json.artifactType !== BUNDLE_ARTIFACT_TYPE) {
    throw invalid(where, `artifactType is ${String(json.artifactType)}, expected ${BUNDLE_ARTIFACT_TYPE}: this is not a Flotilla bundle`);
  }
  const config = descriptor(json.config, where, 'config');
  if (config.mediaType !== BUNDLE_CONFIG_MEDIA_TYPE) throw invalid(where, `config has media type ${config.mediaType}, expected ${BUNDLE_CONFIG_MEDIA_TYPE}`);
  if (config.size > limits.maxConfigBytes) throw tooLarge(where, `config has ${config.size} bytes, over the ${limits.maxConfigBytes}-byte limit`);
  if (!Array.isArray(json.layers)) throw invalid(where, 'layers is not an array');
  if (json.layers.length > limits.maxFiles) throw tooLarge(where, `${json.layers.length} files, over the limit of ${limits.maxFiles}`);
  const encrypted = isPlainObject(json.annotations) && typeof json.annotations[ANNOTATION_ENCRYPTION_KEY] === 'string';
  const layers = json.layers.map((raw: unknown, i: number) => parseLayer(raw, i, where, limits, encrypted));
  const conflict = pathConflict(layers.map((l) => l.path));
  if (conflict) throw invalid(where, `layer "${conflict.path}" ${conflict.problem}`, conflict.path);
  const totalBytes = layers.reduce((sum, l) => sum + l.descriptor.size, 0);
  if (totalBytes > limits.maxTotalBytes) throw tooLarge(where, `${totalBytes} bytes in total, over the ${limits.maxTotalBytes}-byte limit`);
  const annotations = stringMap(json.annotations);
  if (annotations === undefined) throw invalid(where, 'manifest annotations are not strings');
  return { config, layers, annotations, totalBytes };
}

/** Parses a bundle config blob (already verified against its digest). */
export function parseBundleConfig(bytes: Buffer, where: string): BundleConfig {
  let json: unknown;
  try {
    json = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw invalid(where, 'the config is not JSON');
  }
  if (!isPlainObject(json) || !isPlainObject(json.bundle) || typeof json.bundle.name !== 'string' || typeof json.bundle.namespace !== 'string') {
    throw invalid(where, 'the config has no bundle name and namespace');
  }
  if (typeof json.formatVersion !== 'number' || json.formatVersion < 1) throw invalid(where, 'the config has no formatVersion');
  return {
    formatVersion: json.formatVersion,
    bundle: { name: json.bundle.name, namespace: json.bundle.namespace },
    ...(typeof json.contentsID === 'string' ? { contentsID: json.contentsID } : {}),
  };
}
