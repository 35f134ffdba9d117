import { expect } from 'chai';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { BlobCache, IN_MEMORY_BLOB_MAX_BYTES, readVerified, writeChunks } from './blobcache.js';
import { sha256Digest } from './digest.js';
import { ArtifactError } from './errors.js';

describe('blob cache', () => {
  let dir: string;
  let cache: BlobCache;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'flotilla-cache-'));
    cache = new BlobCache(dir);
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const content = Buffer.from('kind: ConfigMap\n');
  const digest = sha256Digest(content);

  it('stores verified bytes under their digest and finds them again', async () => {
    const path = await cache.store(digest, content.length, Readable.from([content.subarray(0, 5), content.subarray(5)]), 'layer "a"');
    expect((await readFile(path)).equals(content)).to.equal(true);
    expect(await cache.lookup(digest, content.length)).to.equal(path);
  });

  const tampered: Array<[string, Buffer, number, RegExp]> = [
    ['other bytes of the same size', Buffer.from('kind: ConfigMaX\n'), content.length, /layer "a": digest mismatch: expected sha256:/],
    ['more bytes than declared', Buffer.concat([content, Buffer.from('x')]), content.length, /layer "a": size mismatch: more than the 16 bytes/],
    ['fewer bytes than declared', content.subarray(0, 10), content.length, /layer "a": size mismatch: got 10 bytes/],
  ];
  for (const [what, served, size, message] of tampered) {
    it(`rejects ${what} as ArtifactTampered and keeps nothing`, async () => {
      const err = await cache.store(digest, size, Readable.from([served]), 'layer "a"').then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).to.be.instanceOf(ArtifactError);
      expect((err as ArtifactError).reason).to.equal('ArtifactTampered');
      expect((err as Error).message).to.match(message);
      expect(await cache.lookup(digest, content.length)).to.equal(undefined);
      expect(await readdir(join(dir, 'tmp'))).to.deep.equal([]);
    });
  }

  it('streams a blob above the in-memory limit and verifies it the same way', async () => {
    const big = Buffer.alloc(IN_MEMORY_BLOB_MAX_BYTES + 3, 7);
    const chunks = [big.subarray(0, 1000), big.subarray(1000)];
    const path = await cache.store(sha256Digest(big), big.length, Readable.from(chunks), 'layer "big"');
    expect((await readFile(path)).equals(big)).to.equal(true);
    const flipped = Buffer.from(big);
    flipped[5] = 8;
    const err = await cache.store(sha256Digest(big), big.length, Readable.from([flipped]), 'layer "big"').then(
      () => undefined,
      (e: unknown) => e,
    );
    expect((err as ArtifactError).reason).to.equal('ArtifactTampered');
    expect((err as Error).message).to.match(/layer "big": digest mismatch/);
  });

  it('creates its folders again when they were removed behind its back', async () => {
    await cache.store(digest, content.length, Readable.from([content]), 'x');
    await rm(dir, { recursive: true, force: true });
    const path = await cache.store(digest, content.length, Readable.from([content]), 'x');
    expect((await readFile(path)).equals(content)).to.equal(true);
  });

  it('reads a small verified blob into memory and stops at the first byte past its size', async () => {
    expect((await readVerified(Readable.from([content.subarray(0, 3), content.subarray(3)]), digest, content.length, 'x')).equals(content)).to.equal(true);
    let pulled = 0;
    const endless = Readable.from(
      (function* () {
        for (;;) {
          pulled++;
          yield content;
        }
      })(),
    );
    const err = await readVerified(endless, digest, content.length, 'layer "a"').then(
      () => undefined,
      (e: unknown) => e,
    );
    expect((err as Error).message).to.match(/layer "a": size mismatch: more than the 16 bytes/);
    expect(pulled).to.be.below(20);
  });

  it('stores a small blob received in many chunks byte for byte, however many chunks there are', async () => {
    const blob = Buffer.from(Array.from({ length: 300 * 1024 }, (_, i) => (i * 7919) % 251));
    for (const chunkSize of [64 * 1024, 4096, 1000]) {
      const chunks: Buffer[] = [];
      for (let at = 0; at < blob.length; at += chunkSize) chunks.push(blob.subarray(at, at + chunkSize));
      const fresh = new BlobCache(join(dir, `c${chunkSize}`));
      const path = await fresh.store(sha256Digest(blob), blob.length, Readable.from(chunks), 'layer "many"');
      expect((await readFile(path)).equals(blob), `${chunks.length} chunks`).to.equal(true);
    }
  });

  it('writes chunks to a file as one, from one chunk, a few, or more than one writev takes', async () => {
    const bytes = Buffer.from(Array.from({ length: 10_000 }, (_, i) => i % 256));
    for (const parts of [1, 3, 65, 1000]) {
      const size = Math.ceil(bytes.length / parts);
      const chunks = Array.from({ length: parts }, (_, k) => bytes.subarray(k * size, (k + 1) * size)).filter((c) => c.length > 0);
      const file = join(dir, `w${parts}`);
      await writeChunks(file, chunks, bytes.length);
      expect((await readFile(file)).equals(bytes), `${chunks.length} chunks`).to.equal(true);
    }
  });

  it('evicts a cached blob corrupted on disk', async () => {
    const path = await cache.store(digest, content.length, Readable.from([content]), 'x');
    await writeFile(path, Buffer.from('kind: ConfigMaX\n'));
    expect(await cache.lookup(digest, content.length)).to.equal(undefined);
    expect(await readdir(join(dir, 'blobs', 'sha256'))).to.deep.equal([]);
  });

  it('prunes blobs not in the keep set', async () => {
    const other = Buffer.from('other');
    await cache.store(digest, content.length, Readable.from([content]), 'x');
    await cache.store(sha256Digest(other), other.length, Readable.from([other]), 'y');
    expect(await cache.prune(new Set([digest]))).to.equal(1);
    expect(await cache.lookup(digest, content.length)).to.not.equal(undefined);
    expect(await cache.lookup(sha256Digest(other), other.length)).to.equal(undefined);
  });
});
