import { createPrivateKey, createPublicKey, scryptSync, sign, verify, type KeyObject } from 'node:crypto';
import { xsalsa20poly1305 } from '@noble/ciphers/salsa.js';
import { Reason } from '../api/constants.js';
import { StallingError } from '../errors.js';

/**
 * Signing keys for bundle versions: ECDSA P-256 with SHA-256 (what `cosign generate-key-pair` makes),
 * through node:crypto. A private key is accepted as PEM PKCS#8 (`PRIVATE KEY`), SEC1 (`EC PRIVATE KEY`) or
 * cosign's own encrypted format (`ENCRYPTED SIGSTORE PRIVATE KEY`, older `ENCRYPTED COSIGN PRIVATE KEY`):
 * a JSON envelope whose key is derived from the password with scrypt and whose ciphertext is a NaCl
 * secretbox (XSalsa20-Poly1305) of the PKCS#8 DER key. Public keys are PEM `PUBLIC KEY` blocks (SPKI).
 * Key material never appears in an error message.
 */

/** A private key able to sign, with its public half. */
export interface SigningKey {
  privateKey: KeyObject;
  publicKey: KeyObject;
}

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([\s\S]*?)-----END \1-----/g;

/** The PEM blocks of a text: label and DER bytes. */
export function pemBlocks(text: string): Array<{ label: string; der: Buffer }> {
  return [...text.matchAll(PEM_BLOCK)].map((m) => ({ label: m[1] ?? '', der: Buffer.from((m[2] ?? '').replace(/\s+/g, ''), 'base64') }));
}

function keyError(where: string, message: string): StallingError {
  return new StallingError(Reason.InvalidSpec, `${where}: ${message}`);
}

function requireP256(key: KeyObject, where: string): void {
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw keyError(where, `the key is ${key.asymmetricKeyType ?? 'unknown'} ${key.asymmetricKeyDetails?.namedCurve ?? ''}, expected ECDSA P-256`);
  }
}

interface CosignEnvelope {
  kdf?: { name?: string; params?: { N?: number; r?: number; p?: number }; salt?: string };
  cipher?: { name?: string; nonce?: string };
  ciphertext?: string;
}

/** Decrypts the JSON envelope of a cosign encrypted private key; returns the PKCS#8 DER. */
export function decryptCosignKey(envelopeBytes: Buffer, password: string, where: string): Buffer {
  let env: CosignEnvelope;
  try {
    env = JSON.parse(envelopeBytes.toString('utf8')) as CosignEnvelope;
  } catch {
    throw keyError(where, 'the encrypted cosign key is not a JSON envelope');
  }
  const { kdf, cipher } = env;
  if (kdf?.name !== 'scrypt' || cipher?.name !== 'nacl/secretbox' || !kdf.salt || !cipher.nonce || !env.ciphertext) {
    throw keyError(where, 'the encrypted key is not in cosign format (expected scrypt and nacl/secretbox)');
  }
  const N = kdf.params?.N ?? 32768;
  const r = kdf.params?.r ?? 8;
  const p = kdf.params?.p ?? 1;
  if (N > 1 << 20 || r > 32 || p > 16) throw keyError(where, `scrypt parameters N=${N} r=${r} p=${p} are beyond what Flotilla accepts`);
  const secret = scryptSync(Buffer.from(password, 'utf8'), Buffer.from(kdf.salt, 'base64'), 32, { N, r, p, maxmem: 256 * N * r + 1024 * 1024 });
  try {
    return Buffer.from(xsalsa20poly1305(secret, Buffer.from(cipher.nonce, 'base64')).decrypt(Buffer.from(env.ciphertext, 'base64')));
  } catch {
    throw keyError(where, 'cannot decrypt the cosign key: wrong password (key "password" of the Secret) or damaged key');
  }
}

/**
 * Reads a signing key from PEM text (`where` names its Secret in errors). Encrypted cosign keys need
 * `password`. Throws StallingError InvalidSpec when the key cannot be read or is not ECDSA P-256.
 */
export function parseSigningKey(pem: string, password: string | undefined, where: string): SigningKey {
  const block = pemBlocks(pem).find((b) => b.label.endsWith('PRIVATE KEY'));
  if (!block) throw keyError(where, 'no PEM private key found (expected PRIVATE KEY, EC PRIVATE KEY or ENCRYPTED SIGSTORE PRIVATE KEY)');
  let privateKey: KeyObject;
  try {
    if (block.label.startsWith('ENCRYPTED ')) {
      if (password === undefined) throw keyError(where, 'the cosign key is encrypted and the Secret has no "password" key');
      privateKey = createPrivateKey({ key: decryptCosignKey(block.der, password, where), format: 'der', type: 'pkcs8' });
    } else {
      privateKey = createPrivateKey({ key: block.der, format: 'der', type: block.label === 'EC PRIVATE KEY' ? 'sec1' : 'pkcs8' });
    }
  } catch (err) {
    if (err instanceof StallingError) throw err;
    throw keyError(where, `the private key cannot be read (${block.label})`);
  }
  requireP256(privateKey, where);
  return { privateKey, publicKey: createPublicKey(privateKey) };
}

/** Reads every PEM `PUBLIC KEY` block of `text` (several keys: rotation). Throws if there is none or one is not P-256. */
export function parsePublicKeys(text: string, where: string): KeyObject[] {
  const keys = pemBlocks(text)
    .filter((b) => b.label === 'PUBLIC KEY')
    .map((b) => {
      try {
        return createPublicKey({ key: b.der, format: 'der', type: 'spki' });
      } catch {
        throw keyError(where, 'a PUBLIC KEY block cannot be read');
      }
    });
  if (keys.length === 0) throw keyError(where, 'no PEM PUBLIC KEY found');
  for (const k of keys) requireP256(k, where);
  return keys;
}

/** The PEM (SPKI) text of a public key. */
export function publicKeyPem(key: KeyObject): string {
  return key.export({ format: 'pem', type: 'spki' }).toString();
}

/** Signs `payload` (ECDSA P-256, SHA-256); returns the ASN.1 DER signature, base64 (cosign's encoding). */
export function signPayload(key: SigningKey, payload: Buffer): string {
  return sign('sha256', payload, key.privateKey).toString('base64');
}

/** Whether `signature` (base64 DER) is a signature of `payload` by `key`. Never throws on malformed input. */
export function verifyPayload(key: KeyObject, payload: Buffer, signature: string): boolean {
  try {
    return verify('sha256', payload, key, Buffer.from(signature, 'base64'));
  } catch {
    return false;
  }
}
