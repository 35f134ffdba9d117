import { Reason } from '../api/constants.js';
import { StallingError } from '../errors.js';
import { formatReference, mirrorRoute, parseReference, type MirrorMap } from '../oci/index.js';
import { IMAGES_LOCK_PATH, localReference, parseLock, type ImagesLock } from './lock.js';
import { findImageRefs, podSpecOf, rewriteImageRefs, type ImagePathRule } from './refs.js';

/**
 * What the agent (and `flotilla render`/`diff`) writes in place of each image reference, from a verified
 * images lock: a relocated image becomes its relocated `registry/namespace/path@digest`, a local image
 * `<the cluster's local registry>/<name>`, any other locked image its source pinned by digest
 * (`host/path:tag@digest`, so a tag that moves later changes nothing). A reference pinned by digest whose
 * registry the cluster reaches through a registry mirror (lib/oci/mirrors.ts) is then written onto that
 * mirror, digest kept: a mirror changes where bytes come from, never which bytes run. Pods that run a
 * relocated image get the lock's pull Secret in `imagePullSecrets`. Pure.
 */

/** Why an object cannot be rewritten. */
export type RewriteProblem = { kind: 'not-locked'; images: string[] } | { kind: 'no-local-registry'; images: string[] };

/** The outcome of {@link rewriteObjects}: every object rewritten, or a problem and none. */
export type RewriteOutcome<T> = { ok: true; objects: T[]; rewritten: number } | { ok: false; problem: RewriteProblem };

/** Settings of one rewrite: what the cluster it is for has. */
export interface RewriteContext {
  /** The cluster's local registry host (KEP-1755), if it has one. */
  localHost?: string | undefined;
  /** The cluster's registry mirrors (bootstrap and Cluster entries); locked images are rewritten onto them. */
  mirrors?: MirrorMap | undefined;
}

/** True when any image of the lock was relocated: then an image outside the lock may not be applied. */
export function relocating(lock: ImagesLock): boolean {
  return lock.images.some((i) => i.relocated !== undefined);
}

/** `reference` (pinned by digest) on its registry's mirror when the cluster has one, else unchanged. */
function onMirror(reference: string, mirrors: MirrorMap | undefined): string {
  const route = mirrorRoute(mirrors, reference);
  return route ? formatReference(route.reference) : reference;
}

/** The replacement of one image, `undefined` for "cannot be rewritten", or the image itself when left alone. */
export function imageMapping(lock: ImagesLock, context: RewriteContext = {}): (image: string) => string | undefined {
  const byImage = new Map(lock.images.map((i) => [i.image, i]));
  const strict = relocating(lock);
  return (image) => {
    const entry = byImage.get(image);
    if (entry === undefined) return strict ? undefined : image;
    if (entry.local) return context.localHost === undefined ? undefined : localReference(image, context.localHost);
    if (entry.relocated !== undefined) return onMirror(entry.relocated, context.mirrors);
    if (entry.digest === undefined) return image;
    const ref = parseReference(image);
    const pinned = formatReference({ registry: ref.registry, repository: ref.repository, ...(ref.tag ? { tag: ref.tag } : {}), digest: entry.digest });
    return onMirror(pinned, context.mirrors);
  };
}

/** The relocated images (as written in the bundle) among `images`. */
function relocatedAmong(lock: ImagesLock, images: readonly string[]): string[] {
  const relocated = new Set(lock.images.filter((i) => i.relocated !== undefined).map((i) => i.image));
  return [...new Set(images.filter((i) => relocated.has(i)))].sort();
}

/** `object` (already a copy) with `secret` in its pod spec's imagePullSecrets, once. */
function withPullSecret<T>(object: T, secret: string): T {
  const spec = podSpecOf(object);
  if (spec === undefined) return object;
  const list = Array.isArray(spec.imagePullSecrets) ? (spec.imagePullSecrets as unknown[]) : [];
  if (!list.some((s) => (s as { name?: unknown } | null)?.name === secret)) spec.imagePullSecrets = [...list, { name: secret }];
  return object;
}

/**
 * Rewrites the images of every object, or none: if one image anywhere cannot be rewritten (not in a
 * relocating lock, or local on a cluster without a local registry), nothing is returned but the problem,
 * so no object with a half-rewritten image list is ever applied.
 */
export function rewriteObjects<T>(objects: readonly T[], lock: ImagesLock, context: RewriteContext = {}): RewriteOutcome<T> {
  const map = imageMapping(lock, context);
  const rules: ImagePathRule[] = lock.paths ?? [];
  const localImages = new Set(lock.images.filter((i) => i.local).map((i) => i.image));
  const out: T[] = [];
  const missing = new Set<string>();
  let rewritten = 0;
  for (const object of objects) {
    const result = rewriteImageRefs(object, map, rules);
    if (!result.ok) {
      for (const m of result.missing) missing.add(m);
      continue;
    }
    const needsSecret = lock.pullSecret !== undefined && relocatedAmong(lock, imagesOf(object, rules)).length > 0;
    // A pod with a relocated image is always a copy here (rewriteImageRefs copies any object with images).
    out.push(needsSecret ? withPullSecret(result.object, lock.pullSecret as string) : result.object);
    rewritten += result.rewritten;
  }
  if (missing.size > 0) {
    const images = [...missing].sort();
    const local = images.filter((i) => localImages.has(i));
    return { ok: false, problem: local.length > 0 ? { kind: 'no-local-registry', images: local } : { kind: 'not-locked', images } };
  }
  return { ok: true, objects: out, rewritten };
}

function imagesOf(object: unknown, rules: readonly ImagePathRule[]): string[] {
  return findImageRefs(object, rules).map((r) => r.image);
}

/**
 * The objects of a rewritten set that need the lock's pull Secret, with the relocated images (as written in
 * the bundle) each runs: those whose pod spec names `lock.pullSecret` and runs a relocated copy. Empty when
 * the lock has no pull Secret.
 */
export function pullSecretUsers<T>(rewritten: readonly T[], lock: ImagesLock, context: RewriteContext = {}): Array<{ object: T; images: string[] }> {
  const secret = lock.pullSecret;
  if (secret === undefined) return [];
  const map = imageMapping(lock, context);
  const sourceOf = new Map<string, string>();
  for (const entry of lock.images) if (entry.relocated !== undefined) sourceOf.set(map(entry.image) as string, entry.image);
  const out: Array<{ object: T; images: string[] }> = [];
  for (const object of rewritten) {
    const names = podSpecOf(object)?.imagePullSecrets;
    if (!Array.isArray(names) || !names.some((s) => (s as { name?: unknown } | null)?.name === secret)) continue;
    const images = [...new Set(imagesOf(object, lock.paths ?? []).flatMap((i) => sourceOf.get(i) ?? []))].sort();
    if (images.length > 0) out.push({ object, images });
  }
  return out;
}

/** Splits the images lock off a bundle's files (the renderers never see it); no lock: the files as they are. */
export function splitImagesLock<F extends { path: string; content: Buffer }>(files: readonly F[], where: string): { files: F[]; lock: ImagesLock | undefined } {
  const file = files.find((f) => f.path === IMAGES_LOCK_PATH);
  if (!file) return { files: [...files], lock: undefined };
  return { files: files.filter((f) => f !== file), lock: parseLock(file.content, where) };
}

/**
 * The rewrite of `flotilla render` and `flotilla diff` (one code path): {@link rewriteObjects}, or a
 * StallingError naming the images and `source` (the lock's file or version) when any cannot be rewritten,
 * as the agent would apply nothing.
 */
export function rewriteOrExplain<T>(objects: readonly T[], lock: ImagesLock, context: RewriteContext, source: string): { objects: T[]; rewritten: number } {
  const out = rewriteObjects(objects, lock, context);
  if (out.ok) return { objects: out.objects, rewritten: out.rewritten };
  const images = out.problem.images.join(', ');
  if (out.problem.kind === 'no-local-registry') {
    throw new StallingError(Reason.LocalRegistryNotFound, `local image(s) ${images} of ${source} need the cluster's registry: give --local-registry HOST`);
  }
  throw new StallingError(
    Reason.ImageNotLocked,
    `image(s) ${images} are not in ${source} while it relocates images: the agent would apply nothing (ImageNotLocked). Render the version the lock belongs to`,
  );
}
