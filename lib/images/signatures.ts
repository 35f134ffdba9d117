import {
  OCI_INDEX_MEDIA_TYPE,
  OCI_MANIFEST_MEDIA_TYPE,
  RegistryRefusedError,
  parseDigest,
  sha256Digest,
  signatureTag,
  type RegistryClient,
} from '../oci/index.js';

/**
 * What a cluster inside an air gap needs to trust a bundle version, found next to it in its repository so
 * `flotilla airgap export` carries it: the cosign classic signature manifest (tag `sha256-<hex>.sig`, what
 * the controller writes) and the OCI 1.1 referrers of the version (cosign v3 sigstore bundles and any
 * other attached artifact), as one referrers index tagged `sha256-<hex>` (the referrers tag schema).
 * Written back under the same tags, both are found again by agents and by `cosign verify` on any
 * registry, with or without a referrers API. Nothing here is trusted: verification happens where the
 * signatures are used, against the trusted keys.
 */

/** The largest signature manifest or referrers index read. */
const MAX_BYTES = 1024 * 1024;

/** A manifest attached to a bundle version: what to export and the tag to re-create on import. */
export interface AttachedManifest {
  /** `sha256-<hex>.sig` (cosign signatures) or `sha256-<hex>` (referrers index). */
  tag: string;
  digest: string;
  mediaType: string;
  /** The manifest's bytes as read (a referrers API answer is not stored under any digest in the source). */
  bytes: Buffer;
  kind: 'signature' | 'referrers';
}

function notFound(err: unknown): boolean {
  return err instanceof RegistryRefusedError && (err.status === 404 || err.code === 'MANIFEST_UNKNOWN' || err.code === 'NAME_UNKNOWN');
}

async function byTag(client: RegistryClient, repository: string, tag: string, mediaType: string): Promise<Buffer | undefined> {
  try {
    return (await client.getManifest(repository, tag, { accept: [mediaType], maxBytes: MAX_BYTES })).bytes;
  } catch (err) {
    if (notFound(err)) return undefined;
    throw err;
  }
}

/** Whether a referrers index lists at least one manifest. */
function hasReferrers(index: Buffer): boolean {
  try {
    const json = JSON.parse(index.toString('utf8')) as { manifests?: unknown };
    return Array.isArray(json.manifests) && json.manifests.length > 0;
  } catch {
    return false;
  }
}

/**
 * The signature manifest and the referrers index of `digest` in `repository`, when the registry has them
 * (the referrers API first, else the `sha256-<hex>` tag). An empty referrers answer counts as none.
 */
export async function attachedManifests(client: RegistryClient, repository: string, digest: string): Promise<AttachedManifest[]> {
  const parsed = parseDigest(digest);
  if (!parsed) return [];
  const out: AttachedManifest[] = [];
  const sig = await byTag(client, repository, signatureTag(digest), OCI_MANIFEST_MEDIA_TYPE);
  if (sig) out.push({ tag: signatureTag(digest), digest: sha256Digest(sig), mediaType: OCI_MANIFEST_MEDIA_TYPE, bytes: sig, kind: 'signature' });
  const referrersTag = `${parsed.algorithm}-${parsed.hex}`;
  const index = (await client.getReferrers(repository, digest, MAX_BYTES)) ?? (await byTag(client, repository, referrersTag, OCI_INDEX_MEDIA_TYPE));
  if (index && hasReferrers(index)) {
    out.push({ tag: referrersTag, digest: sha256Digest(index), mediaType: OCI_INDEX_MEDIA_TYPE, bytes: index, kind: 'referrers' });
  }
  return out;
}
