import { Reason } from '../api/constants.js';
import {
  ArtifactError,
  DOCKER_MANIFEST_LIST_MEDIA_TYPE,
  DOCKER_MANIFEST_MEDIA_TYPE,
  OCI_INDEX_MEDIA_TYPE,
  OCI_MANIFEST_MEDIA_TYPE,
  type Descriptor,
  type FetchedManifest,
  type RegistryClient,
} from '../oci/index.js';
import { isPlainObject } from '../util/json.js';

/**
 * Copying an image by digest from one registry to another: a multi-platform index with every platform's
 * manifest, or a single manifest, and every blob they name. A blob the destination repository has is
 * skipped (HEAD), one the destination holds in another repository of this copy session is mounted
 * (cross-repository mount, when the registry allows it), any other is downloaded once into the verified
 * blob cache and uploaded. The destination's manifests are written by digest, children before their index,
 * so the image is never visible half-copied and keeps its digest.
 */

/** Every manifest media type an image copy accepts. */
export const IMAGE_MANIFEST_TYPES = [OCI_INDEX_MEDIA_TYPE, DOCKER_MANIFEST_LIST_MEDIA_TYPE, OCI_MANIFEST_MEDIA_TYPE, DOCKER_MANIFEST_MEDIA_TYPE];
const INDEX_TYPES = new Set([OCI_INDEX_MEDIA_TYPE, DOCKER_MANIFEST_LIST_MEDIA_TYPE]);

/** What copies did; one per session, summed over images. */
export interface CopyStats {
  manifestsPushed: number;
  /** Images whose top manifest the destination already had (nothing else was checked). */
  imagesPresent: number;
  blobsUploaded: number;
  bytesUploaded: number;
  blobsSkipped: number;
  blobsMounted: number;
}

/** A copy session: what was copied and which destination repository holds each blob (for mounts). */
export class CopySession {
  readonly stats: CopyStats = { manifestsPushed: 0, imagesPresent: 0, blobsUploaded: 0, bytesUploaded: 0, blobsSkipped: 0, blobsMounted: 0 };
  private readonly holder = new Map<string, string>();

  /** A destination repository known to hold `digest`, if any. */
  holderOf(digest: string): string | undefined {
    return this.holder.get(digest);
  }

  /** Records that `repository` holds `digest`. */
  holds(digest: string, repository: string): void {
    if (!this.holder.has(digest)) this.holder.set(digest, repository);
  }
}

/** One side of a copy: a client and a repository on its registry. */
export interface CopyEnd {
  client: RegistryClient;
  repository: string;
}

/** The media type of a fetched manifest: the registry's Content-Type, else the document's own `mediaType`. */
export function manifestMediaType(fetched: FetchedManifest, json: Record<string, unknown>): string {
  if (IMAGE_MANIFEST_TYPES.includes(fetched.mediaType)) return fetched.mediaType;
  return typeof json.mediaType === 'string' ? json.mediaType : OCI_MANIFEST_MEDIA_TYPE;
}

function descriptors(value: unknown, where: string): Descriptor[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw new ArtifactError(Reason.InvalidBundle, `${where}: expected a list of descriptors`);
  return value.map((d) => {
    if (!isPlainObject(d) || typeof d.digest !== 'string' || typeof d.size !== 'number') {
      throw new ArtifactError(Reason.InvalidBundle, `${where}: a descriptor has no digest or size`);
    }
    return { mediaType: typeof d.mediaType === 'string' ? d.mediaType : '', digest: d.digest, size: d.size };
  });
}

/** Parses a manifest's JSON; the children (index) or blobs (config and layers) it names. */
export function manifestParts(fetched: FetchedManifest, where: string): { mediaType: string; children: Descriptor[]; blobs: Descriptor[] } {
  let json: unknown;
  try {
    json = JSON.parse(fetched.bytes.toString('utf8'));
  } catch {
    throw new ArtifactError(Reason.InvalidBundle, `${where}: the manifest is not JSON`);
  }
  if (!isPlainObject(json)) throw new ArtifactError(Reason.InvalidBundle, `${where}: the manifest is not a JSON object`);
  const mediaType = manifestMediaType(fetched, json);
  if (INDEX_TYPES.has(mediaType)) return { mediaType, children: descriptors(json.manifests, where), blobs: [] };
  const config = json.config === undefined ? [] : descriptors([json.config], where);
  return { mediaType, children: [], blobs: [...config, ...descriptors(json.layers, where)] };
}

async function copyBlob(src: CopyEnd, dst: CopyEnd, blob: Descriptor, session: CopySession): Promise<void> {
  if ((await dst.client.blobSize(dst.repository, blob.digest)) === blob.size) {
    session.stats.blobsSkipped++;
  } else {
    const from = session.holderOf(blob.digest);
    if (from !== undefined && from !== dst.repository && (await dst.client.mountBlob(dst.repository, blob.digest, from))) {
      session.stats.blobsMounted++;
    } else {
      const file = await src.client.fetchBlob(src.repository, blob, `blob ${blob.digest} of ${src.client.registry}/${src.repository}`);
      if ((await dst.client.pushBlob(dst.repository, blob, { file })) === 'uploaded') {
        session.stats.blobsUploaded++;
        session.stats.bytesUploaded += blob.size;
      } else session.stats.blobsSkipped++;
    }
  }
  session.holds(blob.digest, dst.repository);
}

async function copyManifest(src: CopyEnd, dst: CopyEnd, digest: string, session: CopySession, depth: number): Promise<void> {
  const where = `image ${src.client.registry}/${src.repository}@${digest}`;
  if (depth > 2) throw new ArtifactError(Reason.InvalidBundle, `${where}: indexes nested deeper than 2`);
  const fetched = await src.client.getManifest(src.repository, digest, { accept: IMAGE_MANIFEST_TYPES });
  const parts = manifestParts(fetched, where);
  for (const child of parts.children) await copyManifest(src, dst, child.digest, session, depth + 1);
  for (const blob of parts.blobs) await copyBlob(src, dst, blob, session);
  await dst.client.putManifest(dst.repository, digest, fetched.bytes, parts.mediaType);
  session.stats.manifestsPushed++;
}

/**
 * Copies the image `digest` of `src` to `dst`, keeping its digest (see the module comment). Nothing is
 * done when the destination already has that manifest. Errors are the registry client's (refused
 * credentials, unknown manifest, tampered blob), with the repositories in their messages.
 */
export async function copyImage(src: CopyEnd, dst: CopyEnd, digest: string, session: CopySession): Promise<void> {
  if (await dst.client.hasManifest(dst.repository, digest)) {
    session.stats.imagesPresent++;
    return;
  }
  await copyManifest(src, dst, digest, session, 0);
}
