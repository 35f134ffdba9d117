import { isPlainObject } from '../util/json.js';
import type { RegistryClient } from '../oci/index.js';
import { IMAGE_MANIFEST_TYPES, manifestMediaType } from './copy.js';
import { imageSource, type LockedImage } from './lock.js';

/**
 * Resolving an image reference to the digest of what its registry serves now: the index digest for a
 * multi-platform image (with the platforms it holds), else the manifest digest. A reference written with a
 * digest is checked to exist and kept.
 */

function platformsOf(json: Record<string, unknown>): string[] | undefined {
  if (!Array.isArray(json.manifests)) return undefined;
  const out: string[] = [];
  for (const m of json.manifests) {
    const p = isPlainObject(m) && isPlainObject(m.platform) ? m.platform : undefined;
    if (p && typeof p.os === 'string' && typeof p.architecture === 'string') {
      out.push([p.os, p.architecture, typeof p.variant === 'string' ? p.variant : undefined].filter(Boolean).join('/'));
    }
  }
  return out.sort();
}

/**
 * Resolves `image` with `client` (a client of its registry, or of a mirror holding it at `repository`);
 * the registry's errors propagate.
 */
export async function resolveImage(client: RegistryClient, image: string, repository?: string): Promise<LockedImage> {
  const src = imageSource(image);
  const fetched = await client.getManifest(repository ?? src.repository, src.reference, { accept: IMAGE_MANIFEST_TYPES });
  let json: Record<string, unknown> = {};
  try {
    const parsed: unknown = JSON.parse(fetched.bytes.toString('utf8'));
    if (isPlainObject(parsed)) json = parsed;
  } catch {
    // Not JSON: the copy reports it; the lock still records the digest the registry served.
  }
  const mediaType = manifestMediaType(fetched, json);
  const platforms = platformsOf(json);
  return {
    image,
    repository: `${src.registry}/${src.repository}`,
    digest: fetched.digest,
    mediaType,
    ...(platforms !== undefined ? { platforms } : {}),
  };
}
