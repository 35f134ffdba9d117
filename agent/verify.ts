import { Reason, type OCIArtifactRef } from '../lib/api/index.js';
import { StallingError, WaitingError } from '../lib/errors.js';
import type { KubeClient, KubeObject } from '../lib/kube/client.js';
import { decodeSecretData } from '../lib/kube/secret.js';
import {
  ANNOTATION_ENCRYPTION_KEY,
  decryptLayer,
  parseKeyRing,
  parsePublicKeys,
  parseReference,
  sha256Digest,
  verifySignatures,
  type PulledBundle,
  type RegistryClient,
} from '../lib/oci/index.js';

/**
 * The agent's supply-chain checks of a pinned bundle version, run before anything of it is used:
 * the cosign signature, in the `.sig` layout or as a cosign v3 sigstore bundle referrer (when the
 * BundleDeployment carries `spec.oci.verify`, from the GitRepo's `spec.verify`) and the decryption of encrypted layers with the keys the controller copied into the
 * cluster namespace (`spec.oci.decryptionSecretName`). A refusal is a StallingError naming the failure
 * (SignatureMissing, SignatureUntrusted, SignatureDigestMismatch, DecryptionFailed): nothing of the
 * version is applied and the previously applied version stays.
 */

/**
 * Verifies the cosign signature of `oci` when it asks for one; returns without a registry call
 * otherwise. `reference` is where the version is pulled from (the origin, or a mirror, whose copy must
 * hold the `.sig` tag or the sigstore bundle referrers too). Throws StallingError with the failure's
 * reason; registry failures are thrown as they are.
 */
export async function verifyArtifactSignature(client: RegistryClient, oci: OCIArtifactRef, reference = oci.reference): Promise<void> {
  if (!oci.verify) return;
  const keys = parsePublicKeys(oci.verify.publicKeys.join('\n'), `spec.oci.verify of ${oci.reference}`);
  const check = await verifySignatures(client, parseReference(reference), oci.digest, keys);
  if (!check.verified) throw new StallingError(check.reason, `refused to apply: ${check.message}`);
}

/** A short fingerprint of the trusted keys of `oci` (part of the agent's in-memory cache key), '' without verification. */
export function trustFingerprint(oci: OCIArtifactRef): string {
  return oci.verify ? sha256Digest(oci.verify.publicKeys.join('\n')).slice(7, 23) : '';
}

/** Reads the key ring Secret (`key-<id>` entries) the controller copied into the cluster namespace. */
async function readKeyRing(upstream: Pick<KubeClient, 'get'>, namespace: string, name: string) {
  const secret = await upstream.get<KubeObject>({ apiVersion: 'v1', kind: 'Secret', namespace, name });
  if (!secret) {
    throw new WaitingError(Reason.SecretNotFound, `bundle key Secret ${namespace}/${name} does not exist (the controller copies it)`, { retryAfterMs: 10_000 });
  }
  return parseKeyRing(decodeSecretData(secret.data), `Secret ${namespace}/${name}`);
}

/**
 * Decrypts the files of `pulled` when its manifest says they are encrypted; returns them unchanged
 * otherwise. The key ring is read from `oci.decryptionSecretName` in `namespace`.
 */
export async function decryptPulled(
  upstream: Pick<KubeClient, 'get'>,
  namespace: string,
  oci: OCIArtifactRef,
  pulled: PulledBundle,
): Promise<Array<{ path: string; content: Buffer }>> {
  const keyID = pulled.annotations[ANNOTATION_ENCRYPTION_KEY];
  if (keyID === undefined) return pulled.files.map((f) => ({ path: f.path, content: f.content }));
  if (!oci.decryptionSecretName) {
    throw new StallingError(Reason.DecryptionFailed, `${oci.reference} is encrypted (key ${keyID}) but spec.oci.decryptionSecretName names no key Secret`);
  }
  const ring = await readKeyRing(upstream, namespace, oci.decryptionSecretName);
  const key = ring.get(keyID);
  if (!key) {
    throw new WaitingError(
      Reason.DecryptionFailed,
      `${oci.reference} is encrypted under key ${keyID}, which Secret ${namespace}/${oci.decryptionSecretName} does not hold (yet)`,
      { retryAfterMs: 10_000 },
    );
  }
  return pulled.files.map((f) => ({ path: f.path, content: decryptLayer(key, f.content, `${oci.reference}: file "${f.path}"`) }));
}
