import { buildArtifact, type ArtifactMeta, type BuiltArtifact, type ArtifactFile } from './artifact.js';
import { OCI_MANIFEST_MEDIA_TYPE, type RegistryClient } from './client.js';
import { mapLimit } from '../util/concurrency.js';
import { pushArtifact, type PushBundleResult } from './bundle.js';
import { pinnedReference, type Reference } from './reference.js';

/**
 * Bundle versions in a bundle's repository: each version is tagged `v<sequence>` (1, 2, 3, ... like KOTS
 * sequences) so people can list the history; consumers pin the digest. Versions beyond a retention count
 * are garbage-collected by deleting their manifests by digest (Distribution then drops their tags; the
 * registry's own garbage collector reclaims blobs no manifest references).
 */

const VERSION_TAG = /^v([1-9][0-9]{0,14})$/;

/** The tag of version `sequence` (a positive integer). */
export function versionTag(sequence: number): string {
  if (!Number.isSafeInteger(sequence) || sequence < 1) throw new RangeError(`version sequence must be a positive integer, got ${sequence}`);
  return `v${sequence}`;
}

/** The sequence of a version tag, or undefined for any other tag. */
export function parseVersionTag(tag: string): number | undefined {
  const m = VERSION_TAG.exec(tag);
  return m ? Number(m[1]) : undefined;
}

/** One version in a bundle repository. */
export interface BundleVersion {
  tag: string;
  sequence: number;
}

/** The versions tagged in a bundle repository, oldest first; other tags are ignored. */
export async function listVersions(client: RegistryClient, repository: Reference): Promise<BundleVersion[]> {
  client.checkReference(repository);
  const tags = await client.listTags(repository.repository);
  return tags
    .map((tag) => ({ tag, sequence: parseVersionTag(tag) }))
    .filter((v): v is BundleVersion => v.sequence !== undefined)
    .sort((a, b) => a.sequence - b.sequence);
}

/** A version deleted by garbage collection. */
export interface DeletedVersion {
  tag: string;
  digest: string;
}

/** What {@link pruneVersions} keeps. */
export interface RetentionOptions {
  /** Newest versions kept (at least 1). */
  retain: number;
  /**
   * The repository's versions as the caller just read them (with what it pushed since): saves listing the
   * tags again. A version tagged by someone else meanwhile is missed, so this can only keep more, never
   * delete more; the next push lists and prunes again.
   */
  known?: readonly BundleVersion[];
  /** Manifest digests never deleted (e.g. still pinned by Bundles or BundleDeployments being rolled out). */
  protect?: Iterable<string>;
}

/**
 * Deletes every version older than the newest `retain`, by manifest digest, except digests in `protect`
 * or shared with a kept version. Returns what was deleted.
 */
export async function pruneVersions(client: RegistryClient, repository: Reference, options: RetentionOptions): Promise<DeletedVersion[]> {
  const versions = options.known ? [...options.known].sort((a, b) => a.sequence - b.sequence) : await listVersions(client, repository);
  const keepCount = Math.max(1, options.retain);
  const kept = versions.slice(-keepCount);
  const old = versions.slice(0, Math.max(0, versions.length - keepCount));
  if (old.length === 0) return [];
  const keepDigests = new Set(options.protect ?? []);
  for (const v of kept) keepDigests.add(await client.resolve(repository.repository, v.tag));
  const deleted: DeletedVersion[] = [];
  for (const v of old) {
    const digest = await client.resolve(repository.repository, v.tag).catch(() => undefined);
    if (digest === undefined || keepDigests.has(digest)) continue;
    if (await client.deleteManifest(repository.repository, digest)) deleted.push({ tag: v.tag, digest });
    keepDigests.add(digest);
  }
  return deleted;
}

/**
 * Deletes every version of a bundle repository (when its GitRepo is deleted). Tags that are not version
 * tags are left alone: Flotilla did not create them.
 */
export async function deleteAllVersions(client: RegistryClient, repository: Reference): Promise<DeletedVersion[]> {
  const versions = await listVersions(client, repository);
  const deleted: DeletedVersion[] = [];
  await mapLimit(versions, client.concurrency, async (v) => {
    const digest = await client.resolve(repository.repository, v.tag).catch(() => undefined);
    if (digest !== undefined && (await client.deleteManifest(repository.repository, digest))) deleted.push({ tag: v.tag, digest });
  });
  return deleted;
}

/** The result of {@link pushBundleVersion}. */
export interface PushVersionResult extends PushBundleResult {
  /** The version's sequence (of the existing version when unchanged). */
  sequence: number;
  /** True when the newest version already had the same config and files: nothing was pushed. */
  unchanged: boolean;
  /** Versions garbage-collected after the push. */
  deleted: DeletedVersion[];
}

function sameContent(latestManifest: Buffer, artifact: BuiltArtifact): boolean {
  try {
    const m = JSON.parse(latestManifest.toString('utf8')) as {
      config?: { digest?: string };
      layers?: Array<{ digest?: string; annotations?: Record<string, string> }>;
    };
    const key = (layers: ReadonlyArray<{ digest?: string; annotations?: Record<string, string> }>) =>
      JSON.stringify(layers.map((l) => [l.digest, l.annotations ?? {}]));
    return m.config?.digest === artifact.config.digest && key(m.layers ?? []) === key(artifact.layers);
  } catch {
    return false;
  }
}

/**
 * Pushes a bundle as a new version of its repository (`v<newest+1>`), unless the newest version already
 * has the same config and files, in which case nothing is pushed and that version is returned (its
 * source/revision annotations stay those of the commit that first produced the content). Then deletes
 * versions beyond `retain` (none when `retain` is undefined).
 */
export async function pushBundleVersion(
  client: RegistryClient,
  repository: Reference,
  files: readonly ArtifactFile[],
  meta: ArtifactMeta,
  options: Partial<RetentionOptions> = {},
): Promise<PushVersionResult> {
  const artifact = await buildArtifact(files, meta);
  const versions = await listVersions(client, repository);
  const latest = versions.at(-1);
  let result: PushVersionResult | undefined;
  if (latest !== undefined) {
    const fetched = await client.getManifest(repository.repository, latest.tag, { accept: [OCI_MANIFEST_MEDIA_TYPE] }).catch(() => undefined);
    if (fetched !== undefined && sameContent(fetched.bytes, artifact)) {
      result = {
        digest: fetched.digest,
        reference: pinnedReference(repository, fetched.digest),
        repository,
        tag: latest.tag,
        pushedBlobs: 0,
        skippedBlobs: 0,
        bytesUploaded: 0,
        sequence: latest.sequence,
        unchanged: true,
        deleted: [],
      };
    }
  }
  if (result === undefined) {
    const sequence = (latest?.sequence ?? 0) + 1;
    const pushed = await pushArtifact(client, repository, artifact, versionTag(sequence));
    result = { ...pushed, sequence, unchanged: false, deleted: [] };
  }
  if (options.retain !== undefined) {
    // The tags listed above, with the one just pushed: no second listing per push (a first push of 1,000
    // bundles made 2,000 tag listings).
    const known = result.unchanged ? versions : [...versions, { tag: versionTag(result.sequence), sequence: result.sequence }];
    result.deleted = await pruneVersions(client, repository, { retain: options.retain, known, protect: [result.digest, ...(options.protect ?? [])] });
  }
  return result;
}
