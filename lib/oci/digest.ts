import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';

/**
 * Content digests (`algorithm:hex`, OCI image-spec descriptor.md). Flotilla writes sha256 and verifies
 * sha256 or sha512; any other algorithm is refused rather than trusted unverified.
 */

/** Digest algorithms Flotilla can verify. */
export type DigestAlgorithm = 'sha256' | 'sha512';

const HEX_LENGTH: Record<DigestAlgorithm, number> = { sha256: 64, sha512: 128 };

/** The grammar of a digest Flotilla accepts: a supported algorithm and lowercase hex of the right length. */
export const DIGEST_PATTERN = /^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/;

/** True if `value` is a digest Flotilla can verify (`sha256:<64 hex>` or `sha512:<128 hex>`). */
export function isDigest(value: string): boolean {
  return DIGEST_PATTERN.test(value);
}

/** Splits a verifiable digest into algorithm and hex; returns undefined for anything else. */
export function parseDigest(value: string): { algorithm: DigestAlgorithm; hex: string } | undefined {
  if (!isDigest(value)) return undefined;
  const [algorithm, hex] = value.split(':') as [DigestAlgorithm, string];
  return HEX_LENGTH[algorithm] === hex.length ? { algorithm, hex } : undefined;
}

/** The sha256 digest (`sha256:<hex>`) of some bytes. */
export function sha256Digest(data: Buffer | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/** Incrementally computes the digest of a stream of bytes with the algorithm of `expected`. */
export class Digester {
  private readonly hash: Hash;
  private readonly algorithm: DigestAlgorithm;
  /** Bytes seen so far. */
  size = 0;

  constructor(algorithm: DigestAlgorithm = 'sha256') {
    this.algorithm = algorithm;
    this.hash = createHash(algorithm);
  }

  /** Adds a chunk. */
  update(chunk: Buffer): void {
    this.hash.update(chunk);
    this.size += chunk.length;
  }

  /** The final digest (`algorithm:hex`); call once. */
  digest(): string {
    return `${this.algorithm}:${this.hash.digest('hex')}`;
  }
}

/** Streams a file once and returns its sha256 digest and size (memory stays bounded). */
export async function digestFile(path: string): Promise<{ digest: string; size: number }> {
  const digester = new Digester('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 256 * 1024 })) {
    digester.update(chunk as Buffer);
  }
  return { digest: digester.digest(), size: digester.size };
}
