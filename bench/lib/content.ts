import { randomBytes } from 'node:crypto';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

/**
 * Bundle content for the benchmarks: ConfigMaps of an exact size with random (incompressible base64)
 * payloads, so no layer of the stack can make the figures look better by compressing or deduplicating.
 */

/** A ConfigMap manifest of exactly `bytes` bytes (at least ~200) whose `payload` is random base64. */
export function configMapOfSize(name: string, bytes: number, extra: Record<string, string> = {}): Buffer {
  const head = `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${name}\ndata:\n${Object.entries(extra)
    .map(([k, v]) => `  ${k}: "${v}"\n`)
    .join('')}  payload: "`;
  const tail = '"\n';
  const room = Math.max(0, bytes - Buffer.byteLength(head) - tail.length);
  const payload = randomBytes(Math.ceil((room * 3) / 4) + 3)
    .toString('base64')
    .replace(/[+/=]/g, 'x')
    .slice(0, room);
  return Buffer.from(head + payload + tail);
}

/** `count` ConfigMap files named `cm-000.yaml`... under `dir`, `totalBytes` in all (split evenly). */
export function configMapFiles(dir: string, count: number, totalBytes: number, prefix = 'cm'): Record<string, Buffer> {
  const files: Record<string, Buffer> = {};
  const each = Math.floor(totalBytes / count);
  for (let i = 0; i < count; i++) {
    const size = i === count - 1 ? totalBytes - each * (count - 1) : each;
    const name = `${prefix}-${String(i).padStart(3, '0')}`;
    files[`${dir}/${name}.yaml`] = configMapOfSize(name, size);
  }
  return files;
}

/** Total bytes of some files. */
export function totalSize(files: Record<string, Buffer | string>): number {
  return Object.values(files).reduce((n, c) => n + Buffer.byteLength(c), 0);
}

/** Size of the files gzipped as one stream: about what a single tar.gz layer (Flux's design) of them weighs. */
export function gzippedSize(files: Record<string, Buffer | string>): number {
  return gzipSync(Buffer.concat(Object.values(files).map((c) => Buffer.from(c))), { level: 6 }).length;
}

/** Sum of the sizes of every file below `dir` (0 if it does not exist). */
export function folderBytes(dir: string): number {
  let total = 0;
  let entries: import('node:fs').Dirent[];
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return 0;
  }
  for (const e of entries) {
    const p = join(dir, e.name);
    if (e.isDirectory()) total += folderBytes(p);
    else if (e.isFile()) total += statSync(p).size;
  }
  return total;
}
