import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Reason } from '../api/constants.js';
import { Digester, parseDigest } from './digest.js';
import { ArtifactError } from './errors.js';

/**
 * A local, content-addressed blob cache: `<dir>/blobs/<algorithm>/<hex>`. A blob enters it only after its
 * digest and size were verified (written to `<dir>/tmp/` and renamed), so a blob whose digest is
 * unchanged is never downloaded twice. Safe for concurrent writers of the same digest (rename is atomic).
 */

/** Blobs up to this size are received in memory, verified, then written with one call (fewer file operations). */
export const IN_MEMORY_BLOB_MAX_BYTES = 1024 * 1024;

/**
 * Hashes bytes as they arrive and checks them against an expected digest and size: {@link update} throws
 * ArtifactTampered as soon as more than `size` bytes arrive, {@link finish} when the total or the digest differ.
 */
export class BlobVerifier {
  private readonly digester: Digester;

  constructor(
    private readonly expectedDigest: string,
    private readonly expectedSize: number,
    private readonly what: string,
  ) {
    const parsed = parseDigest(expectedDigest);
    if (!parsed) throw new ArtifactError(Reason.InvalidBundle, `${what}: unsupported digest ${expectedDigest}`);
    this.digester = new Digester(parsed.algorithm);
  }

  /** Adds a chunk; throws once more bytes arrived than declared. */
  update(chunk: Buffer): void {
    this.digester.update(chunk);
    if (this.digester.size > this.expectedSize) {
      throw new ArtifactError(Reason.ArtifactTampered, `${this.what}: size mismatch: more than the ${this.expectedSize} bytes declared by the manifest`);
    }
  }

  /** Checks the total size and the digest; call once, after the last chunk. */
  finish(): void {
    if (this.digester.size !== this.expectedSize) {
      throw new ArtifactError(
        Reason.ArtifactTampered,
        `${this.what}: size mismatch: got ${this.digester.size} bytes, the manifest declares ${this.expectedSize}`,
      );
    }
    const actual = this.digester.digest();
    if (actual !== this.expectedDigest) {
      throw new ArtifactError(Reason.ArtifactTampered, `${this.what}: digest mismatch: expected ${this.expectedDigest}, got ${actual}`);
    }
  }
}

/** Passes bytes through while verifying them with a {@link BlobVerifier}. */
export class VerifyingTransform extends Transform {
  private readonly verifier: BlobVerifier;

  constructor(expectedDigest: string, expectedSize: number, what: string) {
    super();
    this.verifier = new BlobVerifier(expectedDigest, expectedSize, what);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, callback: TransformCallback): void {
    try {
      this.verifier.update(chunk);
    } catch (err) {
      callback(err as Error);
      return;
    }
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    try {
      this.verifier.finish();
    } catch (err) {
      callback(err as Error);
      return;
    }
    callback();
  }
}

/** Reads a whole (small) stream into memory as it arrived, verifying it on the way; throws ArtifactTampered on mismatch. */
async function readVerifiedChunks(source: AsyncIterable<Buffer> | NodeJS.ReadableStream, digest: string, size: number, what: string): Promise<Buffer[]> {
  const verifier = new BlobVerifier(digest, size, what);
  const chunks: Buffer[] = [];
  // Leaving the loop by a throw ends the iteration, which destroys a stream source: an oversized body is not read on.
  for await (const chunk of source as AsyncIterable<Buffer>) {
    verifier.update(chunk);
    chunks.push(chunk);
  }
  verifier.finish();
  return chunks;
}

/** Reads a whole (small) stream into memory, verifying it on the way; throws ArtifactTampered on mismatch. */
export async function readVerified(source: AsyncIterable<Buffer> | NodeJS.ReadableStream, digest: string, size: number, what: string): Promise<Buffer> {
  const chunks = await readVerifiedChunks(source, digest, size, what);
  return chunks.length === 1 && chunks[0] !== undefined ? chunks[0] : Buffer.concat(chunks, size);
}

/** At most this many chunks are written with one writev (Linux's IOV_MAX is 1024); more are joined first. */
const MAX_WRITEV_CHUNKS = 64;

/**
 * Writes `chunks` (`size` bytes in all) to a new file at `path` as they were received, without joining them
 * into one buffer first: a pull of many small blobs would otherwise allocate and copy every byte once more.
 */
export async function writeChunks(path: string, chunks: readonly Buffer[], size: number): Promise<void> {
  if (chunks.length <= 1 || chunks.length > MAX_WRITEV_CHUNKS) {
    await writeFile(path, chunks.length === 1 && chunks[0] !== undefined ? chunks[0] : Buffer.concat(chunks, size));
    return;
  }
  const file = await open(path, 'w');
  try {
    const { bytesWritten } = await file.writev(chunks as Buffer[]);
    // writev may write less than asked; the rest goes from where it stopped (writeFile writes all it is given).
    if (bytesWritten < size) await file.writeFile(Buffer.concat(chunks, size).subarray(bytesWritten));
  } finally {
    await file.close();
  }
}

function isMissingFolder(err: unknown): boolean {
  return (err as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
}

/** See the module comment. */
export class BlobCache {
  private ready: Promise<void> | undefined;

  constructor(readonly dir: string) {}

  /** Where the blob with `digest` lives (whether or not it is there). */
  pathOf(digest: string): string {
    const parsed = parseDigest(digest);
    if (!parsed) throw new ArtifactError(Reason.InvalidBundle, `unsupported digest ${digest}`);
    return join(this.dir, 'blobs', parsed.algorithm, parsed.hex);
  }

  /**
   * The path of a cached blob whose bytes still match `digest` and `size` (re-hashed: the cache is disk,
   * and disks get corrupted); a mismatching file is removed. Undefined when absent.
   */
  async lookup(digest: string, size: number): Promise<string | undefined> {
    const path = this.pathOf(digest);
    const info = await stat(path).catch(() => undefined);
    if (!info) return undefined;
    if (info.size === size) {
      try {
        const verifier = new BlobVerifier(digest, size, `cached blob ${digest}`);
        for await (const chunk of createReadStream(path, { highWaterMark: 256 * 1024 })) verifier.update(chunk as Buffer);
        verifier.finish();
        return path;
      } catch {
        // corrupt: fall through and evict
      }
    }
    await rm(path, { force: true });
    return undefined;
  }

  /**
   * The bytes of a cached blob of unknown size (a manifest known only by its digest), at most `maxBytes`,
   * re-hashed like {@link lookup}; a mismatching or oversized file is removed. Undefined when absent.
   */
  async read(digest: string, maxBytes: number): Promise<Buffer | undefined> {
    const path = this.pathOf(digest);
    const info = await stat(path).catch(() => undefined);
    if (!info) return undefined;
    if (info.size <= maxBytes) {
      try {
        const bytes = await readFile(path);
        const verifier = new BlobVerifier(digest, info.size, `cached blob ${digest}`);
        verifier.update(bytes);
        verifier.finish();
        return bytes;
      } catch {
        // corrupt, or replaced while read: fall through and evict
      }
    }
    await rm(path, { force: true });
    return undefined;
  }

  /**
   * Streams `source` into the cache, verifying digest and size on the way; throws ArtifactError
   * (ArtifactTampered) naming `what` on any mismatch, leaving nothing behind. Returns the blob's path.
   */
  async store(digest: string, size: number, source: AsyncIterable<Buffer> | NodeJS.ReadableStream, what: string): Promise<string> {
    const final = this.pathOf(digest);
    await this.folders();
    const tmp = join(this.dir, 'tmp', randomUUID());
    try {
      if (size <= IN_MEMORY_BLOB_MAX_BYTES) {
        // Small blobs (most bundle files): one write call instead of a stream of them.
        const chunks = await readVerifiedChunks(source, digest, size, what);
        await this.inFolders(() => writeChunks(tmp, chunks, size));
      } else {
        await mkdir(join(this.dir, 'tmp'), { recursive: true });
        await pipeline(source, new VerifyingTransform(digest, size, what), createWriteStream(tmp));
      }
      await this.inFolders(() => rename(tmp, final));
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
    return final;
  }

  /** Creates the cache's folders once per instance (not once per blob). */
  private folders(): Promise<void> {
    this.ready ??= Promise.all(['tmp', join('blobs', 'sha256'), join('blobs', 'sha512')].map((d) => mkdir(join(this.dir, d), { recursive: true }))).then(
      () => undefined,
      (err: unknown) => {
        this.ready = undefined;
        throw err;
      },
    );
    return this.ready;
  }

  /** Runs a file operation, creating the folders again once if they were removed behind the cache's back. */
  private async inFolders<T>(op: () => Promise<T>): Promise<T> {
    try {
      return await op();
    } catch (err) {
      if (!isMissingFolder(err)) throw err;
      this.ready = undefined;
      await this.folders();
      return await op();
    }
  }

  /** Removes every cached blob whose digest is not in `keep`; returns how many were removed. */
  async prune(keep: ReadonlySet<string>): Promise<number> {
    let removed = 0;
    const root = join(this.dir, 'blobs');
    for (const algorithm of await readdir(root).catch(() => [] as string[])) {
      for (const hex of await readdir(join(root, algorithm)).catch(() => [] as string[])) {
        if (!keep.has(`${algorithm}:${hex}`)) {
          await rm(join(root, algorithm, hex), { force: true });
          removed++;
        }
      }
    }
    return removed;
  }
}
