import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { countEvent, emptyStats, type RegistryEvent, type RegistryStats } from '../../lib/oci/stats.js';

/**
 * Counting registry traffic two independent ways: the events a process's registry clients emitted (see
 * tap.ts), and the registry's own access log (Apache combined format, written by Docker Distribution).
 */

/** A tapped event with its time. */
export type TappedEvent = RegistryEvent & { t: number };

/** Blob traffic of one process (or one user agent in the access log): the registry client's own counters. */
export type Traffic = Pick<
  RegistryStats,
  'blobsUploaded' | 'bytesUploaded' | 'blobsSkipped' | 'blobsDownloaded' | 'bytesDownloaded' | 'cacheHits' | 'manifestsPushed' | 'manifestsFetched' | 'requests'
>;

/** Reads the events a tapped process wrote. */
export function readTap(file: string): TappedEvent[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .flatMap((line) => {
      try {
        return [JSON.parse(line) as TappedEvent];
      } catch {
        return [];
      }
    });
}

/** Totals of tapped events at or after `since` (ms epoch), counted as the client counts its own. */
export function tallyTap(events: readonly TappedEvent[], since = 0): Traffic {
  const t = emptyStats();
  for (const e of events) if (e.t >= since) countEvent(t, e);
  return t;
}

/** One access-log line. */
export interface LoggedRequest {
  method: string;
  /** Path with its query string. */
  target: string;
  status: number;
  /** Response body bytes. */
  bytes: number;
  userAgent: string;
}

/** Parses Distribution's access log (combined format: `"METHOD target HTTP/x" status bytes "referer" "ua"`). */
export function parseAccessLog(text: string): LoggedRequest[] {
  const out: LoggedRequest[] = [];
  const re = /"(GET|HEAD|POST|PUT|PATCH|DELETE) (\S+) HTTP\/[\d.]+" (\d{3}) (\d+|-) "[^"]*" "([^"]*)"/g;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    out.push({ method: m[1] ?? '', target: m[2] ?? '', status: Number(m[3]), bytes: m[4] === '-' ? 0 : Number(m[4]), userAgent: m[5] ?? '' });
  }
  return out;
}

/** The local file of a blob in Distribution's filesystem storage. */
export function blobFile(storageDir: string, digest: string): string {
  const [algorithm = 'sha256', hex = ''] = digest.split(':');
  return join(storageDir, 'docker', 'registry', 'v2', 'blobs', algorithm, hex.slice(0, 2), hex, 'data');
}

/**
 * Size of the manifest a `PUT /v2/<repo>/manifests/<tag or digest>` stored: the digest is the reference or,
 * for a tag, what the tag's link file in the registry's storage points at (NaN if it moved or vanished).
 */
function storedManifestSize(storageDir: string, path: string): number {
  const m = /^\/v2\/(.+)\/manifests\/([^/]+)$/.exec(path);
  if (!m) return Number.NaN;
  const [, repository = '', reference = ''] = m;
  let digest = reference;
  if (!reference.startsWith('sha256:')) {
    const link = join(storageDir, 'docker', 'registry', 'v2', 'repositories', repository, '_manifests', 'tags', reference, 'current', 'link');
    digest = existsSync(link) ? readFileSync(link, 'utf8').trim() : '';
  }
  const file = blobFile(storageDir, digest);
  return digest !== '' && existsSync(file) ? statSync(file).size : Number.NaN;
}

/**
 * Traffic per user agent as the registry saw it. Downloads are the bytes the registry sent for `GET
 * .../blobs/<digest>` (200); an upload is a completed upload (`PUT .../blobs/uploads/...?digest=` 201),
 * whose size is that of the blob the registry stored (the access log does not record request sizes); an
 * uploaded manifest counts with the size of the manifest the registry stored.
 */
export function trafficByAgent(requests: readonly LoggedRequest[], storageDir: string): Record<string, Traffic> {
  const out: Record<string, Traffic> = {};
  for (const r of requests) {
    const agent = r.userAgent || '(none)';
    const t = out[agent] ?? emptyStats();
    out[agent] = t;
    t.requests++;
    const path = r.target.split('?')[0] ?? '';
    if (r.method === 'GET' && /\/blobs\/sha256:[0-9a-f]{64}$/.test(path) && r.status === 200) {
      t.blobsDownloaded++;
      t.bytesDownloaded += r.bytes;
    }
    if (r.method === 'GET' && path.includes('/manifests/') && r.status === 200) t.manifestsFetched++;
    if (r.method === 'PUT' && path.includes('/manifests/') && r.status === 201) {
      t.manifestsPushed++;
      t.bytesUploaded += storedManifestSize(storageDir, path);
    }
    // A blob the registry has: a HEAD answered 200, or a mount probe answered 201 (lib/oci/upload.ts).
    if (r.method === 'HEAD' && /\/blobs\//.test(path) && r.status === 200) t.blobsSkipped++;
    if (r.method === 'POST' && path.endsWith('/blobs/uploads/') && r.status === 201) t.blobsSkipped++;
    if (r.method === 'PUT' && path.includes('/blobs/uploads/') && r.status === 201) {
      const digest = decodeURIComponent(/[?&]digest=([^&]+)/.exec(r.target)?.[1] ?? '');
      t.blobsUploaded++;
      const file = blobFile(storageDir, digest);
      t.bytesUploaded += existsSync(file) ? statSync(file).size : Number.NaN;
    }
  }
  return out;
}

/**
 * The length of a log file once it has stopped growing for 300 ms (at most 10 s): Distribution writes a
 * request's access-log line after answering it, so a read right after a response may miss the line.
 */
export async function settledLength(file: string): Promise<number> {
  const size = () => (existsSync(file) ? statSync(file).size : 0);
  let last = size();
  let stableMs = 0;
  for (let waited = 0; waited < 10_000 && stableMs < 300; waited += 50) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    const now = size();
    stableMs = now === last ? stableMs + 50 : 0;
    last = now;
  }
  return last;
}
