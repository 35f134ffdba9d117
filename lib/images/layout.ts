import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, open, readFile, rename, rm, stat, writeFile, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Reason } from '../api/constants.js';
import { ArtifactError, Digester, OCI_INDEX_MEDIA_TYPE, parseDigest, type Descriptor } from '../oci/index.js';
import { isPlainObject } from '../util/json.js';
import { TarWriter, readTarIndex, type TarEntry } from './tar.js';

/**
 * OCI image layouts (image-spec image-layout.md) as `flotilla airgap` writes and reads them: an
 * `oci-layout` file, an `index.json` naming the top manifests (each annotated with where it came from,
 * see {@link AIRGAP_ANNOTATION}) and `blobs/<alg>/<hex>` for every manifest and blob, either as a
 * directory or as a tar archive of the same tree (read in place, never unpacked). Every byte read is
 * verified against its digest and size; a missing, corrupt or tampered file is an ArtifactError naming
 * the layout, the file and the cause.
 */

/** Annotations of index.json entries (besides `org.opencontainers.image.ref.name`, the full source reference). */
export const AIRGAP_ANNOTATION = {
  refName: 'org.opencontainers.image.ref.name',
  /**
   * `image` (a locked image), `bundle` (a bundle version), `signature` (its cosign `sha256-<hex>.sig`
   * manifest) or `referrers` (its referrers index, tag `sha256-<hex>`: cosign v3 sigstore bundles).
   */
  kind: 'dev.flotilla.airgap.kind',
  /** Repository path on its source registry, without the host: where import puts it under --namespace. */
  repository: 'dev.flotilla.airgap.repository',
  /** The tag it had at the source, re-created on import (optional). */
  tag: 'dev.flotilla.airgap.tag',
  /** The Bundle (namespace/name) a bundle version or locked image belongs to. */
  bundle: 'dev.flotilla.airgap.bundle',
} as const;

const LAYOUT_VERSION = '1.0.0';
const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

/** The path of a blob inside a layout. */
export function blobPath(digest: string): string {
  const d = parseDigest(digest);
  if (!d) throw new ArtifactError(Reason.InvalidBundle, `not a sha256/sha512 digest: ${JSON.stringify(digest).slice(0, 80)}`);
  return `blobs/${d.algorithm}/${d.hex}`;
}

/** Writes a layout: blobs as they come (each once), then index.json and oci-layout. */
export interface LayoutWriter {
  /** True when the blob was already written. */
  has(digest: string): boolean;
  /** Writes a blob from memory or from a (verified) file. */
  put(desc: Descriptor, source: Buffer | { file: string }): Promise<void>;
  /** Writes index.json with `manifests` and oci-layout, and closes the layout. */
  finish(manifests: Descriptor[]): Promise<void>;
  /** Removes a half-written layout (after a failure). */
  abort(): Promise<void>;
}

function chunksOf(source: Buffer | { file: string }): AsyncIterable<Buffer> | Iterable<Buffer> {
  return Buffer.isBuffer(source) ? [source] : (createReadStream(source.file, { highWaterMark: 256 * 1024 }) as AsyncIterable<Buffer>);
}

function indexBytes(manifests: Descriptor[]): Buffer {
  return Buffer.from(`${JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX_MEDIA_TYPE, manifests }, null, 2)}\n`);
}

/**
 * Opens a layout writer at `path`: a tar archive when `tar` is true, else a directory (created; it must
 * not hold another layout). Written to `path + ".partial"` and renamed when finished, so an interrupted
 * export never leaves something that looks complete.
 */
export async function createLayout(path: string, tar: boolean): Promise<LayoutWriter> {
  const partial = `${path}.partial`;
  await rm(partial, { recursive: true, force: true });
  const written = new Set<string>();
  if (tar) {
    await mkdir(dirname(partial), { recursive: true });
    const fh = await open(partial, 'w');
    const w = new TarWriter(fh);
    for (const d of ['blobs/', 'blobs/sha256/']) await w.directory(d);
    return {
      has: (digest) => written.has(digest),
      async put(desc, source) {
        if (written.has(desc.digest)) return;
        await w.file(blobPath(desc.digest), desc.size, chunksOf(source));
        written.add(desc.digest);
      },
      async finish(manifests) {
        const layout = Buffer.from(`${JSON.stringify({ imageLayoutVersion: LAYOUT_VERSION })}\n`);
        await w.file('oci-layout', layout.length, [layout]);
        const index = indexBytes(manifests);
        await w.file('index.json', index.length, [index]);
        await w.finish();
        await fh.close();
        await rename(partial, path);
      },
      async abort() {
        await fh.close().catch(() => undefined);
        await rm(partial, { force: true });
      },
    };
  }
  if (await stat(join(path, 'index.json')).catch(() => undefined)) throw new Error(`${path} already holds an OCI layout: choose another directory`);
  await mkdir(join(partial, 'blobs', 'sha256'), { recursive: true });
  return {
    has: (digest) => written.has(digest),
    async put(desc, source) {
      if (written.has(desc.digest)) return;
      const file = join(partial, blobPath(desc.digest));
      if (Buffer.isBuffer(source)) await writeFile(file, source);
      else await pipeline(createReadStream(source.file), createWriteStream(file));
      written.add(desc.digest);
    },
    async finish(manifests) {
      await writeFile(join(partial, 'oci-layout'), `${JSON.stringify({ imageLayoutVersion: LAYOUT_VERSION })}\n`);
      await writeFile(join(partial, 'index.json'), indexBytes(manifests));
      await rm(path, { recursive: true, force: true });
      await rename(partial, path);
    },
    async abort() {
      await rm(partial, { recursive: true, force: true });
    },
  };
}

/** Reads a layout written by {@link createLayout} (or by oras, crane, skopeo), verifying every byte. */
export class LayoutReader {
  private tmp: string | undefined;

  private constructor(
    /** The layout's path, as named in errors. */
    readonly where: string,
    private readonly dir: string | undefined,
    private readonly tar: { fh: FileHandle; entries: Map<string, TarEntry> } | undefined,
  ) {}

  /** Opens the directory or tar archive at `path`; an ArtifactError names what is not a layout. */
  static async open(path: string): Promise<LayoutReader> {
    const s = await stat(path).catch(() => undefined);
    if (!s) throw new Error(`${path}: no such file or directory`);
    if (s.isDirectory()) return await new LayoutReader(path, path, undefined).checked();
    const fh = await open(path, 'r');
    try {
      const entries = await readTarIndex(fh, path);
      return await new LayoutReader(path, undefined, { fh, entries }).checked();
    } catch (err) {
      await fh.close();
      if (err instanceof ArtifactError) throw err;
      throw new ArtifactError(Reason.InvalidBundle, (err as Error).message, { cause: err });
    }
  }

  private async checked(): Promise<this> {
    const raw = await this.read('oci-layout', 4096).catch(() => undefined);
    let version: unknown;
    try {
      version = raw ? (JSON.parse(raw.toString('utf8')) as { imageLayoutVersion?: unknown }).imageLayoutVersion : undefined;
    } catch {
      version = undefined;
    }
    if (typeof version !== 'string') {
      await this.close();
      throw new ArtifactError(Reason.InvalidBundle, `${this.where}: oci-layout is missing or not {"imageLayoutVersion": ...}: not an OCI image layout`);
    }
    return this;
  }

  private async read(path: string, max: number): Promise<Buffer> {
    if (this.dir !== undefined) {
      const s = await stat(join(this.dir, path)).catch(() => undefined);
      if (!s?.isFile()) throw new ArtifactError(Reason.InvalidBundle, `${this.where}: ${path} is missing`);
      if (s.size > max) throw new ArtifactError(Reason.InvalidBundle, `${this.where}: ${path} is larger than ${max} bytes`);
      return await readFile(join(this.dir, path));
    }
    const e = this.tar?.entries.get(path);
    if (!e || !this.tar) throw new ArtifactError(Reason.InvalidBundle, `${this.where}: ${path} is missing`);
    if (e.size > max) throw new ArtifactError(Reason.InvalidBundle, `${this.where}: ${path} is larger than ${max} bytes`);
    const out = Buffer.alloc(e.size);
    await this.tar.fh.read(out, 0, e.size, e.offset);
    return out;
  }

  /** The top manifests of index.json, each with its annotations. */
  async index(): Promise<Descriptor[]> {
    const raw = await this.read('index.json', MAX_MANIFEST_BYTES);
    let json: unknown;
    try {
      json = JSON.parse(raw.toString('utf8'));
    } catch {
      throw new ArtifactError(Reason.InvalidBundle, `${this.where}: index.json is not JSON`);
    }
    const list = isPlainObject(json) ? json.manifests : undefined;
    if (!Array.isArray(list)) throw new ArtifactError(Reason.InvalidBundle, `${this.where}: index.json has no "manifests" list`);
    return list.map((d, i) => {
      if (!isPlainObject(d) || typeof d.digest !== 'string' || typeof d.size !== 'number' || typeof d.mediaType !== 'string' || !parseDigest(d.digest)) {
        throw new ArtifactError(Reason.InvalidBundle, `${this.where}: index.json manifests[${i}] has no valid mediaType, digest or size`);
      }
      const annotations = isPlainObject(d.annotations) ? (d.annotations as Record<string, string>) : undefined;
      return { mediaType: d.mediaType, digest: d.digest, size: d.size, ...(annotations ? { annotations } : {}) };
    });
  }

  private tampered(desc: Descriptor, cause: string): ArtifactError {
    return new ArtifactError(
      Reason.ArtifactTampered,
      `${this.where}: ${blobPath(desc.digest)}: ${cause}; the layout is corrupt or was tampered with: export it again`,
    );
  }

  private stream(desc: Descriptor): NodeJS.ReadableStream {
    const path = blobPath(desc.digest);
    if (this.dir !== undefined) return createReadStream(join(this.dir, path), { highWaterMark: 256 * 1024 });
    const e = this.tar?.entries.get(path) as TarEntry;
    return createReadStream(this.where, { start: e.offset, end: e.offset + e.size - 1, highWaterMark: 256 * 1024 });
  }

  private async size(desc: Descriptor): Promise<number | undefined> {
    const path = blobPath(desc.digest);
    if (this.dir !== undefined) return (await stat(join(this.dir, path)).catch(() => undefined))?.size;
    return this.tar?.entries.get(path)?.size;
  }

  /** A manifest's bytes, verified against `desc` (small: read into memory). */
  async manifest(desc: Descriptor): Promise<Buffer> {
    if (desc.size > MAX_MANIFEST_BYTES) throw this.tampered(desc, `a manifest of ${desc.size} bytes is larger than ${MAX_MANIFEST_BYTES}`);
    await this.checkSize(desc);
    const bytes = desc.size === 0 ? Buffer.alloc(0) : await this.read(blobPath(desc.digest), MAX_MANIFEST_BYTES);
    const d = new Digester(parseDigest(desc.digest)?.algorithm);
    d.update(bytes);
    const got = d.digest();
    if (got !== desc.digest) throw this.tampered(desc, `its content hashes to ${got}`);
    return bytes;
  }

  private async checkSize(desc: Descriptor): Promise<void> {
    const size = await this.size(desc);
    if (size === undefined) throw this.tampered(desc, 'missing (a manifest names it)');
    if (size !== desc.size) throw this.tampered(desc, `${size} bytes where the manifest declares ${desc.size}`);
  }

  /** A verified copy of a blob in a temporary file (removed by {@link close}); streamed, memory stays bounded. */
  async blobFile(desc: Descriptor): Promise<string> {
    await this.checkSize(desc);
    this.tmp ??= await mkdtemp(join(tmpdir(), 'flotilla-layout-'));
    const file = join(this.tmp, blobPath(desc.digest).replaceAll('/', '-'));
    const d = new Digester(parseDigest(desc.digest)?.algorithm);
    const out = createWriteStream(file);
    if (desc.size > 0) {
      for await (const chunk of this.stream(desc)) {
        d.update(chunk as Buffer);
        if (!out.write(chunk)) await new Promise<void>((r) => out.once('drain', () => r()));
      }
    }
    await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
    const got = d.digest();
    if (got !== desc.digest) {
      await rm(file, { force: true });
      throw this.tampered(desc, `its content hashes to ${got}`);
    }
    return file;
  }

  /** Removes a copy made by {@link blobFile} once it is no longer needed. */
  async discard(file: string): Promise<void> {
    await rm(file, { force: true });
  }

  /** Removes temporary copies and closes the archive. */
  async close(): Promise<void> {
    await this.tar?.fh.close().catch(() => undefined);
    if (this.tmp) await rm(this.tmp, { recursive: true, force: true });
  }
}
