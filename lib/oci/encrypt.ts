import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';
import { gcmsiv } from '@noble/ciphers/aes.js';
import { Reason } from '../api/constants.js';
import { StallingError } from '../errors.js';

/**
 * Deterministic authenticated encryption of bundle file layers (docs/trust.md, "Encryption at rest").
 * From a 32-byte bundle key K, HKDF-SHA256 derives an encryption key, a nonce key and a public key ID.
 * A file P becomes `nonce || AES-256-GCM-SIV(encKey, nonce, AAD, P)` with
 * `nonce = HMAC-SHA256(nonceKey, P)[0..12)` and AAD the file layer media type: the same bytes under the
 * same key always give the same ciphertext, so an unchanged file keeps its layer digest (deduplicated on
 * push and in the agents' blob caches); different files get different nonces. What leaks: which layers
 * are equal (within and across versions under one key), their sizes (+28 bytes) and paths (layer titles).
 */

/** Length of a bundle key, bytes (AES-256). */
export const BUNDLE_KEY_BYTES = 32;
/** Media type of an encrypted file layer (an agent without the key refuses it instead of applying ciphertext). */
export const ENCRYPTED_FILE_MEDIA_TYPE = 'application/vnd.flotilla.bundle.file.v1.encrypted';
/** Manifest annotation naming the key (its {@link keyID}) the layers are encrypted under. */
export const ANNOTATION_ENCRYPTION_KEY = 'dev.flotilla.encryption.key-id';
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const AAD = Buffer.from('application/vnd.flotilla.bundle.file.v1', 'utf8');

/** A bundle key with its derived parts. */
export interface BundleKey {
  /** Public identifier (16 hex digits), safe to write into manifests, Secrets' key names and status. */
  id: string;
  encKey: Buffer;
  nonceKey: Buffer;
}

function derive(key: Buffer, info: string, length: number): Buffer {
  return Buffer.from(hkdfSync('sha256', key, Buffer.alloc(0), Buffer.from(`flotilla bundle ${info} v1`, 'utf8'), length));
}

/**
 * Reads a bundle key from a Secret value: the base64 of 32 bytes (e.g. `openssl rand -base64 32`).
 * `where` names the Secret and key in errors; the value is never printed.
 */
export function parseBundleKey(value: string, where: string): BundleKey {
  const raw = Buffer.from(value.trim(), 'base64');
  if (raw.length !== BUNDLE_KEY_BYTES || raw.toString('base64') !== value.trim()) {
    throw new StallingError(Reason.InvalidSpec, `${where}: an encryption key must be the base64 of 32 bytes (create one with: openssl rand -base64 32)`);
  }
  return { id: derive(raw, 'key id', 8).toString('hex'), encKey: derive(raw, 'layer key', 32), nonceKey: derive(raw, 'nonce key', 32) };
}

/** Encrypts one file's bytes (deterministic: equal input, equal output under one key). */
export function encryptLayer(key: BundleKey, plaintext: Buffer): Buffer {
  const nonce = createHmac('sha256', key.nonceKey).update(plaintext).digest().subarray(0, NONCE_BYTES);
  const sealed = gcmsiv(key.encKey, nonce, AAD).encrypt(plaintext);
  return Buffer.concat([nonce, sealed]);
}

/**
 * Decrypts one layer (`what` names it in errors). Throws StallingError DecryptionFailed when the
 * ciphertext does not authenticate under `key` or its nonce is not the one its plaintext derives.
 */
export function decryptLayer(key: BundleKey, ciphertext: Buffer, what: string): Buffer {
  const fail = () => new StallingError(Reason.DecryptionFailed, `${what} does not decrypt with key ${key.id}: wrong key or damaged ciphertext`);
  if (ciphertext.length < NONCE_BYTES + TAG_BYTES) throw fail();
  const nonce = ciphertext.subarray(0, NONCE_BYTES);
  let plaintext: Buffer;
  try {
    plaintext = Buffer.from(gcmsiv(key.encKey, nonce, AAD).decrypt(ciphertext.subarray(NONCE_BYTES)));
  } catch {
    throw fail();
  }
  const expected = createHmac('sha256', key.nonceKey).update(plaintext).digest().subarray(0, NONCE_BYTES);
  if (!timingSafeEqual(expected, nonce)) throw fail();
  return plaintext;
}

/** Secret data key under which a cluster's copy of the bundle keys holds key `id` (base64 of the 32 bytes). */
export function keyRingEntry(id: string): string {
  return `key-${id}`;
}

/** Reads a key ring (Secret data as strings: `key-<id>` → base64 key) into keys by ID, checking each ID. */
export function parseKeyRing(data: Record<string, string>, where: string): Map<string, BundleKey> {
  const ring = new Map<string, BundleKey>();
  for (const [name, value] of Object.entries(data)) {
    if (!name.startsWith('key-')) continue;
    const key = parseBundleKey(value, `${where} key ${name}`);
    if (keyRingEntry(key.id) !== name) throw new StallingError(Reason.InvalidSpec, `${where}: entry ${name} holds key ${key.id}, not the key its name says`);
    ring.set(key.id, key);
  }
  return ring;
}
