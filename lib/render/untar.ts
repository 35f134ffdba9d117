import { posix } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { Reason } from '../api/constants.js';
import type { BundleFile } from '../bundle/manifest.js';
import { StallingError } from '../errors.js';

/**
 * Reading a packaged Helm chart (`.tgz`) into files, with limits, without writing anything to disk: the
 * archive comes from a chart repository (untrusted). What `helm package` writes is accepted: regular files
 * (ustar, with PAX or GNU long names) below one top folder, the chart's name. Links, devices, absolute
 * paths and `..` segments are refused; so are more files or bytes than the limits allow, checked while
 * decompressing (a small archive that inflates to gigabytes stops at the limit).
 */

/** Most files and bytes one archive may hold (the bundle limits of lib/bundle/read.ts). */
export interface ArchiveLimits {
  maxFiles: number;
  maxFileBytes: number;
  maxTotalBytes: number;
}

/** A chart archive read into memory. */
export interface ChartArchive {
  /** The archive's top folder (the chart's name). */
  top: string;
  /** The files, paths relative to the top folder, sorted. */
  files: BundleFile[];
}

const BLOCK = 512;

function tooLarge(what: string, message: string): StallingError {
  return new StallingError(Reason.BundleTooLarge, `${what}: ${message}`);
}

function invalid(what: string, message: string): StallingError {
  return new StallingError(Reason.InvalidBundle, `${what}: ${message}; it is not a chart archive as helm package writes them`);
}

function field(block: Buffer, start: number, length: number): string {
  const raw = block.subarray(start, start + length);
  const nul = raw.indexOf(0);
  return raw.subarray(0, nul < 0 ? raw.length : nul).toString('utf8');
}

function octal(block: Buffer, start: number, length: number, what: string): number {
  if (((block[start] ?? 0) & 0x80) !== 0) throw invalid(what, 'an entry has a base-256 size');
  const text = field(block, start, length).trim();
  if (!/^[0-7]*$/.test(text)) throw invalid(what, 'an entry has a malformed size');
  return text === '' ? 0 : Number.parseInt(text, 8);
}

/** The `path` record of a PAX extended header, if any. */
function paxPath(data: Buffer): string | undefined {
  let offset = 0;
  let path: string | undefined;
  while (offset < data.length) {
    const space = data.indexOf(0x20, offset);
    if (space < 0) break;
    const length = Number(data.subarray(offset, space).toString('ascii'));
    if (!Number.isInteger(length) || length <= 0) break;
    const record = data.subarray(space + 1, offset + length - 1).toString('utf8');
    if (record.startsWith('path=')) path = record.slice('path='.length);
    offset += length;
  }
  return path;
}

/** A safe relative path, or an error. */
function safePath(name: string, what: string): string {
  const path = posix.normalize(name.replace(/^\.\//, ''));
  if (path.startsWith('/') || path === '..' || path.startsWith('../') || path.includes('\0'))
    throw invalid(what, `entry ${JSON.stringify(name)} points outside the archive`);
  return path.replace(/\/$/, '');
}

/** Decompresses within the limit on the uncompressed size (data plus headers). */
function gunzipBounded(tgz: Buffer, limits: ArchiveLimits, what: string): Buffer {
  const max = Math.min(2 ** 31 - 1, limits.maxTotalBytes + (limits.maxFiles * 3 + 4) * BLOCK);
  try {
    return gunzipSync(tgz, { maxOutputLength: max });
  } catch (err) {
    if (err instanceof RangeError || (err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
      throw tooLarge(what, `unpacks to more than ${limits.maxTotalBytes} bytes, the bundle limit`);
    }
    throw invalid(what, `is not gzip data (${(err as Error).message})`);
  }
}

/** Reads a chart archive (see the module comment). `what` names it in errors, e.g. `chart oci://host/charts/web:1.2.0`. */
export function readChartArchive(tgz: Buffer, limits: ArchiveLimits, what: string): ChartArchive {
  const tar = gunzipBounded(tgz, limits, what);
  const files: BundleFile[] = [];
  let total = 0;
  let longName: string | undefined;
  let top: string | undefined;
  for (let offset = 0; offset + BLOCK <= tar.length; ) {
    const header = tar.subarray(offset, offset + BLOCK);
    if (header.every((b) => b === 0)) break;
    const size = octal(header, 124, 12, what);
    const type = String.fromCharCode(header[156] ?? 0);
    const dataStart = offset + BLOCK;
    if (dataStart + size > tar.length) throw invalid(what, 'it ends inside an entry');
    const data = tar.subarray(dataStart, dataStart + size);
    offset = dataStart + Math.ceil(size / BLOCK) * BLOCK;
    if (type === 'x' || type === 'L') {
      longName = type === 'x' ? paxPath(data) : field(data, 0, data.length);
      continue;
    }
    if (type === 'g') continue;
    const prefix = field(header, 345, 155);
    const name = longName ?? (prefix ? `${prefix}/${field(header, 0, 100)}` : field(header, 0, 100));
    longName = undefined;
    if (type === '5') continue;
    if (type !== '0' && type !== '\0' && type !== '7') throw invalid(what, `entry ${JSON.stringify(name)} is a link or a special file`);
    const path = safePath(name, what);
    const slash = path.indexOf('/');
    if (slash <= 0) throw invalid(what, `entry ${JSON.stringify(name)} is not inside the chart's folder`);
    const folder = path.slice(0, slash);
    if (top !== undefined && folder !== top) throw invalid(what, `it holds more than one top folder (${top}, ${folder})`);
    top = folder;
    if (size > limits.maxFileBytes) throw tooLarge(what, `${path} is ${size} bytes, more than the limit of ${limits.maxFileBytes} bytes per file`);
    total += size;
    if (total > limits.maxTotalBytes) throw tooLarge(what, `it holds more than ${limits.maxTotalBytes} bytes, the bundle limit`);
    if (files.length + 1 > limits.maxFiles) throw tooLarge(what, `it holds more than ${limits.maxFiles} files, the bundle limit`);
    files.push({ path: path.slice(slash + 1), content: Buffer.from(data) });
  }
  if (top === undefined || !files.some((f) => f.path === 'Chart.yaml')) throw invalid(what, 'it holds no <chart>/Chart.yaml');
  const seen = new Set<string>();
  for (const f of files) {
    if (seen.has(f.path)) throw invalid(what, `it holds ${f.path} twice`);
    seen.add(f.path);
  }
  return { top, files: files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0)) };
}
