import type { FileHandle } from 'node:fs/promises';

/**
 * A minimal POSIX ustar archive, enough for an OCI image layout: regular files and directories, names up to
 * 255 bytes (prefix + name), no links. The writer appends entries to an open file (mtime 0, mode 0644/0755,
 * so the same content gives the same archive); the reader scans the headers once and returns where each
 * file's bytes are, so a layout is read in place without unpacking it. PAX (`x`) and GNU long-name (`L`)
 * headers written by other tools are honoured for the path; global PAX headers are skipped.
 */

const BLOCK = 512;
const MAX_SIZE = 8 ** 11 - 1;

/** A file inside an archive: where its bytes start and how many there are. */
export interface TarEntry {
  offset: number;
  size: number;
}

/** A problem reading an archive, naming the archive and the offset. */
export class TarError extends Error {}

function octal(value: number, width: number): string {
  return `${value.toString(8).padStart(width - 1, '0')}\0`;
}

function splitName(path: string): { name: string; prefix: string } {
  if (Buffer.byteLength(path) <= 100) return { name: path, prefix: '' };
  const cut = path.lastIndexOf('/', 155);
  if (cut <= 0 || Buffer.byteLength(path.slice(cut + 1)) > 100) throw new TarError(`tar: path too long for ustar: ${path}`);
  return { name: path.slice(cut + 1), prefix: path.slice(0, cut) };
}

/** The 512-byte ustar header of a file (`type` 0) or directory (`type` 5). */
export function tarHeader(path: string, size: number, type: '0' | '5'): Buffer {
  if (size > MAX_SIZE) throw new TarError(`tar: ${path} is larger than 8 GiB`);
  const { name, prefix } = splitName(path);
  const h = Buffer.alloc(BLOCK);
  h.write(name, 0, 100, 'utf8');
  h.write(octal(type === '5' ? 0o755 : 0o644, 8), 100, 'ascii');
  h.write(octal(0, 8), 108, 'ascii');
  h.write(octal(0, 8), 116, 'ascii');
  h.write(octal(size, 12), 124, 'ascii');
  h.write(octal(0, 12), 136, 'ascii');
  h.write('        ', 148, 'ascii');
  h.write(type, 156, 'ascii');
  h.write('ustar\0', 257, 'ascii');
  h.write('00', 263, 'ascii');
  h.write(prefix, 345, 155, 'utf8');
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'ascii');
  return h;
}

/** Appends ustar entries to an open file; {@link TarWriter.finish} writes the end-of-archive blocks. */
export class TarWriter {
  private position = 0;
  constructor(private readonly fh: FileHandle) {}

  private async write(bytes: Buffer): Promise<void> {
    await this.fh.write(bytes, 0, bytes.length, this.position);
    this.position += bytes.length;
  }

  /** Adds a directory entry (`path` ends with "/"). */
  async directory(path: string): Promise<void> {
    await this.write(tarHeader(path.endsWith('/') ? path : `${path}/`, 0, '5'));
  }

  /** Adds a file whose bytes come from `chunks` (exactly `size` bytes, else an Error). */
  async file(path: string, size: number, chunks: AsyncIterable<Buffer> | Iterable<Buffer>): Promise<void> {
    await this.write(tarHeader(path, size, '0'));
    let written = 0;
    for await (const chunk of chunks) {
      written += chunk.length;
      if (written > size) break;
      await this.write(chunk);
    }
    if (written !== size) throw new TarError(`tar: ${path}: expected ${size} bytes, the source gave ${written}`);
    const pad = (BLOCK - (size % BLOCK)) % BLOCK;
    if (pad > 0) await this.write(Buffer.alloc(pad));
  }

  /** Writes the two zero blocks that end an archive. */
  async finish(): Promise<void> {
    await this.write(Buffer.alloc(2 * BLOCK));
  }
}

function field(h: Buffer, start: number, length: number): string {
  const raw = h.subarray(start, start + length);
  const end = raw.indexOf(0);
  return raw.subarray(0, end === -1 ? length : end).toString('utf8');
}

function checksumOk(h: Buffer): boolean {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : (h[i] as number);
  return Number.parseInt(field(h, 148, 8).trim() || 'x', 8) === sum;
}

function paxPath(body: Buffer): string | undefined {
  let rest = body.toString('utf8');
  while (rest.length > 0) {
    const space = rest.indexOf(' ');
    const length = Number.parseInt(rest.slice(0, space), 10);
    if (!(space > 0 && length > 0)) return undefined;
    const record = rest.slice(space + 1, length - 1);
    if (record.startsWith('path=')) return record.slice(5);
    rest = rest.slice(length);
  }
  return undefined;
}

/**
 * Scans the archive `file` (named `where` in errors) and returns its regular files by path ("./" removed).
 * A header with a bad checksum, a truncated entry or a duplicate path is a TarError naming the offset.
 */
export async function readTarIndex(file: FileHandle, where: string): Promise<Map<string, TarEntry>> {
  const total = (await file.stat()).size;
  const entries = new Map<string, TarEntry>();
  const h = Buffer.alloc(BLOCK);
  let offset = 0;
  let longName: string | undefined;
  while (offset + BLOCK <= total) {
    await file.read(h, 0, BLOCK, offset);
    if (h.every((b) => b === 0)) return entries;
    if (!checksumOk(h)) throw new TarError(`${where}: not a tar archive or corrupt: bad header checksum at byte ${offset}`);
    const size = Number.parseInt(field(h, 124, 12).trim() || '0', 8);
    const type = String.fromCharCode(h[156] as number);
    const dataAt = offset + BLOCK;
    if (!Number.isFinite(size) || dataAt + size > total) throw new TarError(`${where}: truncated: the entry at byte ${offset} runs past the end of the file`);
    const prefix = field(h, 345, 155);
    const name = longName ?? (prefix ? `${prefix}/${field(h, 0, 100)}` : field(h, 0, 100));
    longName = undefined;
    if (type === 'x' || type === 'L') {
      const body = Buffer.alloc(size);
      await file.read(body, 0, size, dataAt);
      longName = type === 'L' ? field(body, 0, size) : paxPath(body);
    } else if (type === '0' || type === '\0') {
      const path = name.replace(/^(\.\/)+/, '');
      if (entries.has(path)) throw new TarError(`${where}: ${path} appears twice`);
      entries.set(path, { offset: dataAt, size });
    }
    offset = dataAt + Math.ceil(size / BLOCK) * BLOCK;
  }
  if (offset === total) return entries;
  throw new TarError(`${where}: truncated: the last entry is cut short`);
}
