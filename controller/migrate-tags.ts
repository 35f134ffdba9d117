import { Reason } from '../lib/api/index.js';
import { StallingError } from '../lib/errors.js';
import { buildArtifact, pushArtifact, type ArtifactFile, type ArtifactMeta, type Reference, type RegistryClient } from '../lib/oci/index.js';

/**
 * Tags a storage migration writes into the new registry (docs/storage.md, "Tags already in the target").
 * A migration writes each moved version under its `v<N>` tag. The target may already hold that tag: left
 * by an earlier migration with the `keep` policy, by a resumed migration, or by something else entirely
 * sharing the repository. When the tag holds the digest being moved, nothing is written (the version is
 * there). When it holds another digest, nothing is overwritten: the migration stalls with a
 * {@link tagConflict} error naming the GitRepo, the bundle, the tag and both digests, and resumes at the
 * next poll once the tag is gone or the storage points elsewhere. Unit-tested in controller/migrate-tags.test.ts.
 */

/** The registry calls {@link tagState} makes. */
export type TagReader = Pick<RegistryClient, 'resolve' | 'registry'>;

/**
 * The error of a `v<N>` tag in the target that holds another version. `owner` names the GitRepo and the
 * bundle ("GitRepo ws/apps, bundle apps-web").
 */
export function tagConflict(owner: string, repository: string, tag: string, existing: string, moving: string): StallingError {
  return new StallingError(
    Reason.ArtifactTagConflict,
    `${owner}: tag ${tag} of ${repository} already holds ${existing}, not ${moving} (the version this migration moves there); ` +
      `nothing was overwritten and the bundles keep running from the old storage. Point the storage at another reference ` +
      `(another registry or path), or delete tag ${tag} from ${repository} if nothing uses it; the migration resumes at the next poll`,
  );
}

/**
 * What tag `tag` of `repository` holds before a migration writes `digest` there: `absent` (write it),
 * `same` (skip), or a {@link tagConflict} error when it holds another digest. A tag that cannot be
 * resolved counts as absent: the write that follows reports a registry that cannot be reached.
 */
export async function tagState(to: TagReader, repository: string, tag: string, digest: string, owner: string): Promise<'absent' | 'same'> {
  const at = await to.resolve(repository, tag).catch(() => undefined);
  if (at === undefined) return 'absent';
  if (at === digest) return 'same';
  throw tagConflict(owner, `${to.registry}/${repository}`, tag, at, digest);
}

/** What {@link pushVersionAt} did. */
export interface PushedAt {
  digest: string;
  /** False when the tag already held this digest. */
  pushed: boolean;
}

/**
 * Builds the artifact of `files` + `meta` and pushes it under `tag` (etcd to registry: a version etcd kept),
 * unless the tag already holds the same digest; a tag holding another digest is a {@link tagConflict}.
 * The artifact is deterministic (lib/oci/artifact.ts): the same files and metadata give the digest the
 * version had before it left the registry.
 */
export async function pushVersionAt(
  client: RegistryClient,
  repository: Reference,
  files: readonly ArtifactFile[],
  meta: ArtifactMeta,
  tag: string,
  owner: string,
): Promise<PushedAt> {
  const artifact = await buildArtifact(files, meta);
  if ((await tagState(client, repository.repository, tag, artifact.digest, owner)) === 'same') return { digest: artifact.digest, pushed: false };
  await pushArtifact(client, repository, artifact, tag);
  return { digest: artifact.digest, pushed: true };
}
