import { z } from 'zod';
import { Reason } from '../api/constants.js';
import { StallingError } from '../errors.js';
import { DIGEST_PATTERN, formatReference, parseReference } from '../oci/index.js';
import { canonicalJSON } from '../util/json.js';

/**
 * The images lock of a bundle version (see docs/artifact-format.md, "The images lock"): every image the
 * bundle's rendered objects reference, resolved to a manifest digest when the version is built, and where
 * the controller relocated it. It travels as the file {@link IMAGES_LOCK_PATH} of the bundle, so the
 * version's digest covers it and agents rewrite references from content they verified.
 */

/** The path of the lock inside the bundle's files (not a manifest name, so no renderer reads it as an object). */
export const IMAGES_LOCK_PATH = '.flotilla/images.lock';
/** `kind` written in every lock. */
export const IMAGES_LOCK_KIND = 'ImagesLock';
/** The lock format version this code writes; a newer one is refused by name. */
export const IMAGES_LOCK_FORMAT_VERSION = 1;

const LockedImageSchema = z.strictObject({
  image: z.string().min(1).describe('The reference as written in the objects.'),
  repository: z.string().optional().describe('`host/path` it resolves in (Docker Hub names expanded).'),
  digest: z.string().regex(DIGEST_PATTERN).optional().describe('The manifest (or index) digest it resolved to when the version was built.'),
  mediaType: z.string().optional().describe('Manifest media type: an index for multi-platform images.'),
  platforms: z.array(z.string()).optional().describe('os/architecture[/variant] of each manifest of an index.'),
  relocated: z.string().optional().describe('`registry/namespace/path@digest` the controller copied it to.'),
  local: z.boolean().optional().describe("Declared local in fleet.yaml: its host is the downstream cluster's local registry (KEP-1755)."),
});

/** Extra image paths of a custom resource kind (fleet.yaml `images.paths`), recorded so every reader finds the same images. */
export const ImagePathRuleSchema = z.strictObject({
  kind: z.string().min(1),
  apiVersion: z.string().min(1).optional(),
  paths: z.array(z.string().regex(/^[A-Za-z0-9_-]+(\[\*\])?(\.[A-Za-z0-9_-]+(\[\*\])?)*$/, 'must be field names joined by "." (a list: name[*])')).min(1),
});

const ImagesLockSchema = z.strictObject({
  kind: z.literal(IMAGES_LOCK_KIND),
  formatVersion: z.number().int().min(1),
  images: z.array(LockedImageSchema),
  paths: z.array(ImagePathRuleSchema).optional(),
  pullSecret: z
    .string()
    .optional()
    .describe(
      'Relocation: the Secret (in each workload namespace downstream) that pods running a relocated copy name in imagePullSecrets; the agent checks it exists.',
    ),
  unlocked: z
    .array(z.string())
    .optional()
    .describe('What the controller could not render (e.g. values read downstream); the agent refuses images outside the lock when relocating.'),
});

/** One locked image. */
export type LockedImage = z.infer<typeof LockedImageSchema>;
/** An images lock. */
export type ImagesLock = z.infer<typeof ImagesLockSchema>;

/** The canonical bytes of a lock (images sorted by reference): equal locks have equal bytes. */
export function serializeLock(lock: ImagesLock): Buffer {
  const images = [...lock.images].sort((a, b) => (a.image < b.image ? -1 : a.image > b.image ? 1 : 0));
  return Buffer.from(`${canonicalJSON({ ...lock, images })}\n`, 'utf8');
}

/** Parses a lock read from a verified bundle; StallingError InvalidBundle naming `where` on anything else. */
export function parseLock(bytes: Buffer, where: string): ImagesLock {
  let json: unknown;
  try {
    json = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new StallingError(Reason.InvalidBundle, `${where}: ${IMAGES_LOCK_PATH} is not JSON`);
  }
  const version = (json as { formatVersion?: unknown } | null)?.formatVersion;
  if (typeof version === 'number' && version > IMAGES_LOCK_FORMAT_VERSION) {
    throw new StallingError(
      Reason.InvalidBundle,
      `${where}: ${IMAGES_LOCK_PATH} has formatVersion ${version}; this Flotilla reads version ${IMAGES_LOCK_FORMAT_VERSION}: upgrade the agent`,
    );
  }
  const parsed = ImagesLockSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new StallingError(Reason.InvalidBundle, `${where}: ${IMAGES_LOCK_PATH}: ${issue?.path.join('.') ?? ''} ${issue?.message ?? 'invalid'}`);
  }
  return parsed.data;
}

/**
 * The repository an image reference names (`host/path`, Docker Hub expanded) and what pins it: its digest
 * when written with one, else its tag (`latest` when none). A reference that does not parse is a
 * StallingError naming it.
 */
export function imageSource(image: string): { registry: string; repository: string; reference: string } {
  const ref = parseReference(image);
  return { registry: ref.registry, repository: ref.repository, reference: ref.digest ?? ref.tag ?? 'latest' };
}

/** Where relocation copies images (GitRepo `spec.images.relocation`, after KOTS's registry endpoint and image namespace). */
export interface RelocationTarget {
  /** `host[:port]` of the private registry. */
  registryEndpoint: string;
  /** Path prefix under it; empty for none. */
  imageNamespace?: string | undefined;
}

/**
 * The repository an image is relocated to: `<endpoint>/<namespace>/<source path>`. The whole source path is
 * kept (not only its last component, as KOTS does), so `a/app` and `b/app` never collide.
 */
export function relocatedRepository(image: string, target: RelocationTarget): { registry: string; repository: string } {
  const src = imageSource(image);
  const ns = (target.imageNamespace ?? '').replace(/^\/+|\/+$/g, '');
  const repository = ns === '' ? src.repository : `${ns}/${src.repository}`;
  const checked = parseReference(`${target.registryEndpoint}/${repository}`);
  return { registry: checked.registry, repository: checked.repository };
}

/** The name part of an image without registry host, tag or digest, as a local image is declared (`app`, `team/app`). */
export function localName(image: string): string {
  const ref = parseReference(image);
  return ref.registry === 'docker.io' && ref.repository.startsWith('library/') ? ref.repository.slice('library/'.length) : ref.repository;
}

/** A local image rewritten onto `host`: `host/<name>[:tag][@digest]`. */
export function localReference(image: string, host: string): string {
  const ref = parseReference(image);
  return formatReference({ registry: host, repository: localName(image), ...(ref.tag ? { tag: ref.tag } : {}), ...(ref.digest ? { digest: ref.digest } : {}) });
}

/** The host[:port] of a source mirror (`host[:port][/path]`). */
export function mirrorHost(mirror: string): string {
  return mirror.split('/')[0] as string;
}

/** The repository a source path has on a mirror `host[:port][/path]`: `path/<source path>`. */
export function mirroredRepository(repository: string, mirror: string): string {
  const prefix = mirror.split('/').slice(1).join('/');
  return prefix === '' ? repository : `${prefix}/${repository}`;
}
