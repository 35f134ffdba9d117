import { readFile } from 'node:fs/promises';
import type { KeyObject } from 'node:crypto';
import { Reason } from '../api/constants.js';
import { StallingError } from '../errors.js';
import { canonicalJSON, isPlainObject, parseJSONObject } from '../util/json.js';
import { OCI_MANIFEST_MEDIA_TYPE, type RegistryClient } from './client.js';
import { parseDigest, sha256Digest } from './digest.js';
import { RegistryRefusedError } from './errors.js';
import type { Reference } from './reference.js';
import { signPayload, verifyPayload, type SigningKey } from './sign.js';
import type { Descriptor } from './upload.js';
import { checkSigstoreBundle, fetchSigstoreBundles } from './sigstore.js';

/**
 * Cosign-compatible signatures of bundle versions, in cosign's "simple signing" layout: the signature of
 * manifest `sha256:<hex>` is an OCI image manifest tagged `sha256-<hex>.sig` in the same repository, whose
 * layers are simple-signing payloads (`application/vnd.dev.cosign.simplesigning.v1+json`, naming the
 * signed digest) each carrying its base64 ECDSA signature in the annotation
 * `dev.cosignproject.cosign/signature`. `cosign sign --key` writes this and `cosign verify --key` reads it,
 * on any registry (no referrers API needed: Docker Distribution 2.8 has none). See docs/trust.md.
 */

/** Media type of a simple-signing payload layer. */
export const SIMPLE_SIGNING_MEDIA_TYPE = 'application/vnd.dev.cosign.simplesigning.v1+json';
/** Layer annotation carrying the base64 signature of the payload. */
export const COSIGN_SIGNATURE_ANNOTATION = 'dev.cosignproject.cosign/signature';
/** `critical.type` of a cosign image signature payload. */
export const COSIGN_PAYLOAD_TYPE = 'cosign container image signature';
const IMAGE_CONFIG_MEDIA_TYPE = 'application/vnd.oci.image.config.v1+json';
const MAX_SIGNATURE_MANIFEST_BYTES = 1024 * 1024;
const MAX_PAYLOAD_BYTES = 64 * 1024;
const MAX_SIGNATURES = 64;

/** The tag holding the signatures of `digest` (`sha256-<hex>.sig`). */
export function signatureTag(digest: string): string {
  const parsed = parseDigest(digest);
  if (!parsed) throw new StallingError(Reason.InvalidSpec, `cannot name the signature tag of "${digest}": not a digest`);
  return `${parsed.algorithm}-${parsed.hex}.sig`;
}

/** The simple-signing payload for `digest` of `repository` (`host/path`), as cosign writes it. */
export function simpleSigningPayload(repository: string, digest: string): Buffer {
  return Buffer.from(
    JSON.stringify({
      critical: { identity: { 'docker-reference': repository }, image: { 'docker-manifest-digest': digest }, type: COSIGN_PAYLOAD_TYPE },
      optional: null,
    }),
    'utf8',
  );
}

/** The digest a payload signs, or undefined when it is not a cosign image signature payload. */
export function payloadDigest(payload: Buffer): string | undefined {
  const json = parseJSONObject(payload);
  if (!json || !isPlainObject(json.critical) || json.critical.type !== COSIGN_PAYLOAD_TYPE) return undefined;
  const image = json.critical.image;
  return isPlainObject(image) && typeof image['docker-manifest-digest'] === 'string' ? image['docker-manifest-digest'] : undefined;
}

/** A signature layer: the payload's descriptor (with its signature annotation). */
export interface SignatureLayer {
  descriptor: Descriptor;
  signature: string;
}

function signatureLayers(manifest: Buffer): SignatureLayer[] {
  const json = parseJSONObject(manifest);
  if (!json || !Array.isArray(json.layers)) return [];
  const out: SignatureLayer[] = [];
  for (const l of json.layers.slice(0, MAX_SIGNATURES)) {
    if (!isPlainObject(l) || l.mediaType !== SIMPLE_SIGNING_MEDIA_TYPE || typeof l.digest !== 'string' || typeof l.size !== 'number') continue;
    const signature = isPlainObject(l.annotations) ? l.annotations[COSIGN_SIGNATURE_ANNOTATION] : undefined;
    if (typeof signature !== 'string' || !parseDigest(l.digest) || l.size > MAX_PAYLOAD_BYTES) continue;
    out.push({
      descriptor: { mediaType: SIMPLE_SIGNING_MEDIA_TYPE, digest: l.digest, size: l.size, annotations: { [COSIGN_SIGNATURE_ANNOTATION]: signature } },
      signature,
    });
  }
  return out;
}

/** The signature manifest (and its config) holding `layers`, in the shape cosign writes. */
export function signatureManifest(layers: readonly SignatureLayer[]): { manifest: Buffer; config: Buffer } {
  const config = Buffer.from(
    canonicalJSON({
      architecture: '',
      config: {},
      created: '0001-01-01T00:00:00Z',
      history: layers.map(() => ({ created: '0001-01-01T00:00:00Z' })),
      os: '',
      rootfs: { diff_ids: layers.map((l) => l.descriptor.digest), type: 'layers' },
    }),
  );
  const manifest = Buffer.from(
    canonicalJSON({
      config: { digest: sha256Digest(config), mediaType: IMAGE_CONFIG_MEDIA_TYPE, size: config.length },
      layers: layers.map((l) => l.descriptor),
      mediaType: OCI_MANIFEST_MEDIA_TYPE,
      schemaVersion: 2,
    }),
  );
  return { manifest, config };
}

/** The signature manifest of `digest`, or undefined when the repository has none. */
async function fetchSignatures(client: RegistryClient, repository: string, digest: string): Promise<Buffer | undefined> {
  try {
    const fetched = await client.getManifest(repository, signatureTag(digest), { accept: [OCI_MANIFEST_MEDIA_TYPE], maxBytes: MAX_SIGNATURE_MANIFEST_BYTES });
    return fetched.bytes;
  } catch (err) {
    if (err instanceof RegistryRefusedError && (err.status === 404 || err.code === 'MANIFEST_UNKNOWN' || err.code === 'NAME_UNKNOWN')) return undefined;
    throw err;
  }
}

/** What verification found (see {@link verifySignatures}). */
export type SignatureCheck =
  | { verified: true; keyIndex: number }
  | { verified: false; reason: typeof Reason.SignatureMissing | typeof Reason.SignatureUntrusted | typeof Reason.SignatureDigestMismatch; message: string };

/**
 * Verifies that `digest` in `repository` carries a cosign signature by one of `keys` that names that
 * digest: first the classic `sha256-<hex>.sig` layout, then (when that has no valid one) cosign v3's
 * sigstore bundles attached as OCI referrers (lib/oci/sigstore.ts). The refusal reported is the strongest
 * found: a trusted signature of another digest (SignatureDigestMismatch), else signatures by no trusted
 * key (SignatureUntrusted), else none (SignatureMissing). Registry failures are thrown as they are.
 */
export async function verifySignatures(client: RegistryClient, repository: Reference, digest: string, keys: readonly KeyObject[]): Promise<SignatureCheck> {
  const classic = await verifyClassicSignatures(client, repository, digest, keys);
  if (classic.verified || classic.reason === Reason.SignatureDigestMismatch) return classic;
  const where = `${repository.registry}/${repository.repository}@${digest}`;
  const bundles = await fetchSigstoreBundles(client, repository.repository, digest);
  if (bundles.length === 0) return classic;
  let artifact: Buffer | undefined;
  let otherDigest: string | undefined;
  for (const bundle of bundles) {
    if (artifact === undefined && bundle.includes('"messageSignature"')) artifact = (await client.getManifest(repository.repository, digest)).bytes;
    const check = checkSigstoreBundle(bundle, digest, keys, artifact);
    if (check.status === 'verified') return { verified: true, keyIndex: check.keyIndex };
    if (check.status === 'other-digest') otherDigest = check.signed;
  }
  if (otherDigest !== undefined) {
    return {
      verified: false,
      reason: Reason.SignatureDigestMismatch,
      message: `${where}: the sigstore bundle signature by a trusted key signs ${otherDigest}, not this version`,
    };
  }
  return {
    verified: false,
    reason: Reason.SignatureUntrusted,
    message: `${where}: none of its ${bundles.length} sigstore bundle signatures (and no cosign .sig signature) verifies with the ${keys.length} trusted public keys`,
  };
}

/**
 * Verifies `digest` against the classic cosign layout only: reads the `sha256-<hex>.sig` manifest
 * (untrusted: only the signatures count) and each payload blob (verified against its digest).
 */
export async function verifyClassicSignatures(
  client: RegistryClient,
  repository: Reference,
  digest: string,
  keys: readonly KeyObject[],
): Promise<SignatureCheck> {
  const where = `${repository.registry}/${repository.repository}@${digest}`;
  const manifest = await fetchSignatures(client, repository.repository, digest);
  const layers = manifest ? signatureLayers(manifest) : [];
  if (layers.length === 0) {
    return { verified: false, reason: Reason.SignatureMissing, message: `${where} is not signed (no cosign signature under tag ${signatureTag(digest)})` };
  }
  let trustedOtherDigest: string | undefined;
  for (const layer of layers) {
    const payload = await readFile(await client.fetchBlob(repository.repository, layer.descriptor, `signature payload ${layer.descriptor.digest}`));
    const keyIndex = keys.findIndex((k) => verifyPayload(k, payload, layer.signature));
    if (keyIndex < 0) continue;
    const signed = payloadDigest(payload);
    if (signed === digest) return { verified: true, keyIndex };
    trustedOtherDigest = signed ?? 'no digest';
  }
  if (trustedOtherDigest !== undefined) {
    return {
      verified: false,
      reason: Reason.SignatureDigestMismatch,
      message: `${where}: the signature by a trusted key signs ${trustedOtherDigest}, not this version`,
    };
  }
  return {
    verified: false,
    reason: Reason.SignatureUntrusted,
    message: `${where}: none of its ${layers.length} signatures verifies with the ${keys.length} trusted public keys`,
  };
}

/**
 * Signs `digest` in `repository` with `key` unless a signature by that key of that digest is already
 * there. Keeps the signatures present (cosign appends too), so other signers' signatures survive.
 * Returns whether a signature was pushed.
 */
export async function signVersion(client: RegistryClient, repository: Reference, digest: string, key: SigningKey): Promise<boolean> {
  const existing = await verifyClassicSignatures(client, repository, digest, [key.publicKey]);
  if (existing.verified) return false;
  const current = await fetchSignatures(client, repository.repository, digest);
  const payload = simpleSigningPayload(`${repository.registry}/${repository.repository}`, digest);
  const layer: SignatureLayer = {
    descriptor: { mediaType: SIMPLE_SIGNING_MEDIA_TYPE, digest: sha256Digest(payload), size: payload.length },
    signature: signPayload(key, payload),
  };
  layer.descriptor.annotations = { [COSIGN_SIGNATURE_ANNOTATION]: layer.signature };
  const layers = [...(current ? signatureLayers(current) : []), layer].slice(-MAX_SIGNATURES);
  const { manifest, config } = signatureManifest(layers);
  await client.pushBlob(repository.repository, layer.descriptor, payload);
  await client.pushBlob(repository.repository, { mediaType: IMAGE_CONFIG_MEDIA_TYPE, digest: sha256Digest(config), size: config.length }, config);
  await client.putManifest(repository.repository, signatureTag(digest), manifest, OCI_MANIFEST_MEDIA_TYPE);
  return true;
}
