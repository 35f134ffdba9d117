import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { Transform, Writable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Reason } from '../api/constants.js';
import { Digester, parseDigest } from './digest.js';
import { ArtifactError } from './errors.js';

/**
 * A local, content-addressed blob cache: `<dir>/blobs/<algorithm>/<hex>`. A blob enters it only after its
 * digest and size were verified (written to `<dir>/tmp/` and renamed), so a blob whose digest is
 * unchanged is never downloaded twice. Safe for concurrent writers of the same digest (rename is atomic).
 */

/** Passes bytes through while hashing them; fails as soon as more than `size` bytes arrive. */
export class VerifyingTransform extends Transform {
  private readonly digester: Digester;

  constructor(
    private readonly expectedDigest: string,
    private readonly expectedSize: number,
    private readonly what: string,
  ) {
    super();
    const parsed = parseDigest(expectedDigest);
    if (!parsed) throw new ArtifactError(Reason.InvalidBundle, `${what}: unsupported digest ${expectedDigest}`);
    this.digester = new Digester(parsed.algorithm);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, callback: TransformCallback): void {
    this.digester.update(chunk);
    if (this.digester.size > this.expectedSize) {
      callback(new ArtifactError(Reason.ArtifactTampered, `${this.what}: size mismatch: more than the ${this.expectedSize} bytes declared by the manifest`));
      return;
    }
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    if (this.digester.size !== this.expectedSize) {
      callback(
        new ArtifactError(Reason.ArtifactTampered, `${this.what}: size mismatch: got ${this.digester.size} bytes, the manifest declares ${this.expectedSize}`),
      );
      return;
    }
    const actual = this.digester.digest();
    if (actual !== this.expectedDigest) {
      callback(new ArtifactError(Reason.ArtifactTampered, `${this.what}: digest mismatch: expected ${this.expectedDigest}, got ${actual}`));
      return;
    }
    callback();
  }
}

/** See the module comment. */
export class BlobCache {
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
        await pipeline(createReadStream(path), new VerifyingTransform(digest, size, `cached blob ${digest}`), devNull());
        return path;
      } catch {
        // corrupt: fall through and evict
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
    const tmpDir = join(this.dir, 'tmp');
    await mkdir(tmpDir, { recursive: true });
    await mkdir(join(final, '..'), { recursive: true });
    const tmp = join(tmpDir, randomUUID());
    try {
      await pipeline(source, new VerifyingTransform(digest, size, what), createWriteStream(tmp));
      await rename(tmp, final);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
    return final;
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

/** A writable that discards everything (for hashing a file without keeping it). */
function devNull(): Writable {
  return new Writable({ write: (_chunk, _enc, cb) => cb() });
}
