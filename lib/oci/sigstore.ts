import { readFile } from 'node:fs/promises';
import { createHash, verify, type KeyObject } from 'node:crypto';
import { isPlainObject, parseJSONObject } from '../util/json.js';
import { OCI_INDEX_MEDIA_TYPE, OCI_MANIFEST_MEDIA_TYPE, type RegistryClient } from './client.js';
import { parseDigest } from './digest.js';
import { RegistryRefusedError } from './errors.js';

/**
 * Cosign v3 signatures: a sigstore bundle (`application/vnd.dev.sigstore.bundle.v0.3+json`) attached to the
 * signed manifest as an OCI 1.1 referrer. It is found through the referrers API
 * (`GET /v2/<repo>/referrers/<digest>`) or, on registries without it (Docker Distribution), through the
 * referrers tag schema: an image index tagged `sha256-<hex>` listing the referrer manifests. Each referrer
 * manifest has one bundle layer. Two bundle contents are accepted (see docs/trust.md):
 * - `dsseEnvelope` (what `cosign sign --key` v3 writes): ECDSA over DSSE's PAE(payloadType, payload); the
 *   payload is an in-toto statement whose subject digest must be the signed manifest's;
 * - `messageSignature`: ECDSA over the manifest bytes, whose SHA-256 is `messageDigest`.
 * Everything read from the registry is untrusted and bounded; only a signature by a trusted key counts.
 */

/** Media type prefix of sigstore bundles (any v0.x version, `+json`). */
export const SIGSTORE_BUNDLE_MEDIA_TYPE_PREFIX = 'application/vnd.dev.sigstore.bundle';
const DSSE_PAYLOAD_TYPE = 'application/vnd.in-toto+json';
const MAX_BUNDLE_BYTES = 1024 * 1024;
const MAX_REFERRERS_INDEX_BYTES = 1024 * 1024;
const MAX_REFERRER_MANIFEST_BYTES = 64 * 1024;
const MAX_REFERRERS = 16;

/** Whether `mediaType` names a sigstore bundle (`...bundle.v0.3+json`, or the older `...bundle+json;version=0.2`). */
export function isSigstoreBundleType(mediaType: unknown): boolean {
  if (typeof mediaType !== 'string' || !mediaType.startsWith(SIGSTORE_BUNDLE_MEDIA_TYPE_PREFIX)) return false;
  return mediaType.endsWith('+json') || /\+json;\s*version=[0-9.]+$/.test(mediaType);
}

/** DSSE's pre-authentication encoding: `DSSEv1 <len(type)> <type> <len(body)> <body>` (byte lengths, decimal). */
export function dssePae(payloadType: string, payload: Buffer): Buffer {
  const type = Buffer.from(payloadType, 'utf8');
  return Buffer.concat([Buffer.from(`DSSEv1 ${type.length} `), type, Buffer.from(` ${payload.length} `), payload]);
}

/** What one bundle says about a digest (see {@link checkSigstoreBundle}). */
export type BundleCheck =
  | { status: 'verified'; keyIndex: number }
  | { status: 'other-digest'; signed: string }
  | { status: 'untrusted' }
  | { status: 'invalid' };

function trustedKey(keys: readonly KeyObject[], data: Buffer, signature: unknown): number {
  if (typeof signature !== 'string') return -1;
  const sig = Buffer.from(signature, 'base64');
  return keys.findIndex((k) => {
    try {
      return verify('sha256', data, k, sig);
    } catch {
      return false;
    }
  });
}

/** The sha256 digests (`sha256:<hex>`) an in-toto statement names as its subjects. */
function statementDigests(payload: Buffer): string[] | undefined {
  const json = parseJSONObject(payload);
  if (!json || typeof json._type !== 'string' || !json._type.startsWith('https://in-toto.io/Statement/')) return undefined;
  if (!Array.isArray(json.subject)) return undefined;
  return json.subject.flatMap((s) => (isPlainObject(s) && isPlainObject(s.digest) && typeof s.digest.sha256 === 'string' ? [`sha256:${s.digest.sha256}`] : []));
}

function checkDsse(envelope: Record<string, unknown>, digest: string, keys: readonly KeyObject[]): BundleCheck {
  if (envelope.payloadType !== DSSE_PAYLOAD_TYPE || typeof envelope.payload !== 'string' || !Array.isArray(envelope.signatures)) return { status: 'invalid' };
  const payload = Buffer.from(envelope.payload, 'base64');
  const pae = dssePae(envelope.payloadType, payload);
  for (const s of envelope.signatures.slice(0, MAX_REFERRERS)) {
    const keyIndex = trustedKey(keys, pae, isPlainObject(s) ? s.sig : undefined);
    if (keyIndex < 0) continue;
    const subjects = statementDigests(payload);
    if (subjects?.includes(digest)) return { status: 'verified', keyIndex };
    return { status: 'other-digest', signed: subjects?.join(', ') || 'no digest' };
  }
  return { status: 'untrusted' };
}

function checkMessageSignature(message: Record<string, unknown>, digest: string, keys: readonly KeyObject[], artifact: Buffer | undefined): BundleCheck {
  const md = message.messageDigest;
  if (!isPlainObject(md) || md.algorithm !== 'SHA2_256' || typeof md.digest !== 'string') return { status: 'invalid' };
  const signed = `sha256:${Buffer.from(md.digest, 'base64').toString('hex')}`;
  if (signed !== digest) return { status: 'other-digest', signed };
  if (!artifact || `sha256:${createHash('sha256').update(artifact).digest('hex')}` !== digest) return { status: 'invalid' };
  const keyIndex = trustedKey(keys, artifact, message.signature);
  return keyIndex < 0 ? { status: 'untrusted' } : { status: 'verified', keyIndex };
}

/**
 * Checks one sigstore bundle (its JSON bytes) against `digest` and the trusted `keys`. `artifact` is the
 * manifest of `digest` (needed only for a `messageSignature` bundle). Never throws on malformed input.
 */
export function checkSigstoreBundle(bundle: Buffer, digest: string, keys: readonly KeyObject[], artifact?: Buffer): BundleCheck {
  const json = parseJSONObject(bundle);
  if (!json || !isSigstoreBundleType(json.mediaType)) return { status: 'invalid' };
  if (isPlainObject(json.dsseEnvelope)) return checkDsse(json.dsseEnvelope, digest, keys);
  if (isPlainObject(json.messageSignature)) return checkMessageSignature(json.messageSignature, digest, keys, artifact);
  return { status: 'invalid' };
}

function notFound(err: unknown): boolean {
  return err instanceof RegistryRefusedError && (err.status === 404 || err.code === 'MANIFEST_UNKNOWN' || err.code === 'NAME_UNKNOWN');
}

/** The referrers index of `digest`: the referrers API, else the `sha256-<hex>` tag; undefined when neither exists. */
async function referrersIndex(client: RegistryClient, repository: string, digest: string): Promise<Buffer | undefined> {
  const fromApi = await client.getReferrers(repository, digest, MAX_REFERRERS_INDEX_BYTES);
  if (fromApi) return fromApi;
  const parsed = parseDigest(digest);
  if (!parsed) return undefined;
  try {
    return (await client.getManifest(repository, `${parsed.algorithm}-${parsed.hex}`, { accept: [OCI_INDEX_MEDIA_TYPE], maxBytes: MAX_REFERRERS_INDEX_BYTES }))
      .bytes;
  } catch (err) {
    if (notFound(err)) return undefined;
    throw err;
  }
}

/** Digests of the referrer manifests in `index` whose artifactType is a sigstore bundle (at most MAX_REFERRERS). */
export function bundleReferrers(index: Buffer): string[] {
  const json = parseJSONObject(index);
  if (!json || !Array.isArray(json.manifests)) return [];
  const out: string[] = [];
  for (const m of json.manifests) {
    if (isPlainObject(m) && isSigstoreBundleType(m.artifactType) && typeof m.digest === 'string' && parseDigest(m.digest)) out.push(m.digest);
  }
  return out.slice(0, MAX_REFERRERS);
}

/**
 * The bundle layer descriptors of a referrer manifest. Its `subject` is not trusted (nor required to
 * match): the signed statement names the digest, so a referrer copied from another version is refused
 * as SignatureDigestMismatch rather than ignored.
 */
function bundleLayers(manifest: Buffer): Array<{ mediaType: string; digest: string; size: number }> {
  const json = parseJSONObject(manifest);
  if (!json || !Array.isArray(json.layers)) return [];
  return json.layers.flatMap((l) =>
    isPlainObject(l) &&
    isSigstoreBundleType(l.mediaType) &&
    typeof l.digest === 'string' &&
    parseDigest(l.digest) &&
    typeof l.size === 'number' &&
    l.size <= MAX_BUNDLE_BYTES
      ? [{ mediaType: l.mediaType as string, digest: l.digest, size: l.size }]
      : [],
  );
}

/** The sigstore bundles (JSON bytes) attached to `digest` in `repository`, bounded in number and size. */
export async function fetchSigstoreBundles(client: RegistryClient, repository: string, digest: string): Promise<Buffer[]> {
  const index = await referrersIndex(client, repository, digest);
  if (!index) return [];
  const bundles: Buffer[] = [];
  for (const ref of bundleReferrers(index)) {
    const manifest = await client
      .getManifest(repository, ref, { accept: [OCI_MANIFEST_MEDIA_TYPE], maxBytes: MAX_REFERRER_MANIFEST_BYTES })
      .catch((err: unknown) => {
        if (notFound(err)) return undefined;
        throw err;
      });
    if (!manifest) continue;
    for (const layer of bundleLayers(manifest.bytes).slice(0, 1)) {
      bundles.push(await readFile(await client.fetchBlob(repository, layer, `sigstore bundle ${layer.digest}`)));
    }
  }
  return bundles;
}
