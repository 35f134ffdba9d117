import { Reason, type GitRepo, type OCIArtifactRef } from '../lib/api/index.js';
import { StallingError } from '../lib/errors.js';
import type { KubeClient, KubeObject } from '../lib/kube/client.js';
import { parseBundleKey, parsePublicKeys, parseSigningKey, publicKeyPem, type BundleKey, type SigningKey } from '../lib/oci/index.js';
import { readSecretData } from './store.js';

/**
 * The GitRepo's supply-chain settings, read once per store session: the key the controller signs every
 * pushed version with (`spec.signing`), the public keys agents must verify with (`spec.verify`) and the
 * key the file layers are encrypted under (`spec.encryption`). Secret values never reach errors or logs.
 */

/** What {@link readSupplyChain} found (each part only when the GitRepo asks for it). */
export interface SupplyChain {
  signer?: SigningKey;
  /** PEM public keys written into spec.oci.verify of every Bundle (agents verify with them). */
  verifyKeys?: string[];
  encryption?: { key: BundleKey; secretName: string };
}

type SecretReader = Pick<KubeClient, 'get'>;

function required(data: Record<string, string>, key: string, where: string): string {
  const value = data[key];
  if (value === undefined || value === '') throw new StallingError(Reason.SecretNotFound, `${where} has no "${key}" key`);
  return value;
}

/** Reads the Secrets named by `spec.signing`, `spec.verify` and `spec.encryption` of `repo`. */
export async function readSupplyChain(kube: SecretReader, repo: GitRepo & KubeObject): Promise<SupplyChain> {
  const ns = repo.metadata.namespace ?? 'default';
  const out: SupplyChain = {};
  const { signing, verify, encryption } = repo.spec;
  if (signing) {
    const name = signing.secretRef.name;
    const where = `Secret ${ns}/${name} (spec.signing.secretRef)`;
    const { data } = await readSecretData(kube, ns, name, 'spec.signing.secretRef');
    out.signer = parseSigningKey(required(data, 'cosign.key', where), data['cosign.password'] ?? data.password, where);
  }
  if (verify) {
    const name = verify.secretRef.name;
    const where = `Secret ${ns}/${name} (spec.verify.secretRef)`;
    const { data } = await readSecretData(kube, ns, name, 'spec.verify.secretRef');
    const pems = Object.keys(data)
      .filter((k) => k.endsWith('.pub'))
      .sort()
      .map((k) => data[k] ?? '');
    if (pems.length === 0) throw new StallingError(Reason.SecretNotFound, `${where} has no key ending in ".pub" (a PEM public key)`);
    out.verifyKeys = parsePublicKeys(pems.join('\n'), where).map(publicKeyPem);
  }
  if (encryption) {
    const name = encryption.secretRef.name;
    const where = `Secret ${ns}/${name} (spec.encryption.secretRef)`;
    const { data } = await readSecretData(kube, ns, name, 'spec.encryption.secretRef');
    out.encryption = { key: parseBundleKey(required(data, 'key', where), `${where} key "key"`), secretName: name };
  }
  return out;
}

/** The fields of a stored artifact reference that tell agents to verify and to decrypt. */
export function supplyChainRef(chain: SupplyChain): Pick<OCIArtifactRef, 'verify' | 'decryptionSecretName' | 'encryptionKeyID'> {
  return {
    ...(chain.verifyKeys ? { verify: { publicKeys: chain.verifyKeys } } : {}),
    ...(chain.encryption ? { decryptionSecretName: chain.encryption.secretName, encryptionKeyID: chain.encryption.key.id } : {}),
  };
}
