import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { header, type Transport } from './transport.js';
import { RegistryRefusedError } from './errors.js';
import type { RegistryEventSink } from './stats.js';

/**
 * Blob uploads (distribution spec, "Pushing blobs"): a POST opens an upload session (or a mount probe
 * finds the blob there, or opens the session, in one request), then either one PUT
 * with the whole blob (monolithic, for small blobs) or a series of PATCH chunks followed by a PUT with the
 * digest (chunked, for large ones). Bodies are streamed from a Buffer slice or a file range, so memory
 * stays bounded by the HTTP stack's buffers, not by the blob size.
 */

/** A descriptor (OCI image-spec descriptor.md). */
export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
  artifactType?: string;
}

/** Where a blob's bytes come from: memory, or a file read in ranges when needed. */
export type BlobSource = Buffer | { file: string };

/** Upload tuning. */
export interface UploadSettings {
  /** Blobs up to this size go in one PUT; larger ones in PATCH chunks. */
  monolithicMaxBytes: number;
  /** Bytes per PATCH request. */
  chunkSize: number;
}

/** A factory for the bytes `[start, end)` of a source; a new stream for every call (retries). */
function rangeBody(source: BlobSource, start: number, end: number): () => Buffer | Readable {
  if (Buffer.isBuffer(source)) return () => source.subarray(start, end);
  // createReadStream's `end` is inclusive; an empty range must not read the whole file.
  if (end <= start) return () => Buffer.alloc(0);
  return () => createReadStream(source.file, { start, end: end - 1, highWaterMark: 256 * 1024 });
}

function locationOf(res: { headers: Record<string, string | string[] | undefined> }, registry: string, operation: string): string {
  const location = header(res, 'location');
  if (location === undefined || location === '') {
    throw new RegistryRefusedError(`${operation}: registry ${registry} did not say where to upload (no Location header)`, {
      registry,
      code: 'BLOB_UPLOAD_INVALID',
    });
  }
  return location;
}

/** What a mount probe found: the blob is there (mounted), an upload session was opened, or the registry refused. */
export type MountProbe = { kind: 'mounted' } | { kind: 'session'; location: string } | { kind: 'refused'; status: number };

/**
 * Asks the registry to mount `digest` into `repository` from `repository` itself (`POST
 * .../blobs/uploads/?mount=<digest>&from=<repository>`): one request that answers "is the blob there?"
 * (201, nothing to upload) and, if not, opens the upload session (202 with a Location), where a `HEAD`
 * and a `POST` take two (distribution spec, "Mounting a blob from another repository": a registry that
 * cannot mount SHOULD answer 202). Other statuses are returned as `refused` for the caller to fall back;
 * transient failures and authorization refusals throw typed registry errors.
 */
export async function probeMount(transport: Transport, registry: string, repository: string, digest: string, scope: string): Promise<MountProbe> {
  const operation = `checking blob ${digest} in ${registry}/${repository} (mount from the same repository)`;
  const query = `mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(repository)}`;
  const res = await transport.send({ method: 'POST', path: `/v2/${repository}/blobs/uploads/?${query}`, scope, operation, headers: { 'content-length': '0' } });
  if (res.status === 201) {
    await res.body.dump();
    return { kind: 'mounted' };
  }
  if (res.status === 202) {
    await res.body.dump();
    return { kind: 'session', location: locationOf(res, registry, operation) };
  }
  if (res.status === 401 || res.status === 403 || res.status === 429 || res.status >= 500) await transport.fail(res, operation);
  await res.body.dump();
  return { kind: 'refused', status: res.status };
}

/** Opens an upload session (`POST .../blobs/uploads/`) and returns its Location. */
async function openUpload(transport: Transport, registry: string, repository: string, scope: string, operation: string): Promise<string> {
  const start = await transport.send({
    method: 'POST',
    path: `/v2/${repository}/blobs/uploads/`,
    scope,
    operation,
    headers: { 'content-length': '0' },
  });
  if (start.status !== 202) await transport.fail(start, operation);
  await start.body.dump();
  return locationOf(start, registry, operation);
}

/** Cancels an upload session that will not be used (`DELETE <location>`); failures are ignored (sessions expire). */
export async function cancelUpload(transport: Transport, location: string, scope: string, operation: string): Promise<void> {
  try {
    const res = await transport.send({ method: 'DELETE', path: location, scope, operation: `cancelling the upload of ${operation}`, retry: false });
    await res.body.dump();
  } catch {
    // An abandoned session is purged by the registry.
  }
}

/**
 * Uploads one blob to `repository` (the caller checked that the registry lacks it), in the upload
 * session at `session` when the caller already opened one (see {@link probeMount}), else in a new one.
 * Throws typed registry errors; the caller decides whether to retry the whole upload (PATCH is never
 * retried on its own: a half-applied chunk cannot be repeated safely).
 */
export async function uploadBlob(
  transport: Transport,
  events: RegistryEventSink,
  target: { registry: string; repository: string; scope: string },
  desc: Descriptor,
  source: BlobSource,
  settings: UploadSettings,
  session?: string,
): Promise<void> {
  const { registry, repository, scope } = target;
  const operation = `uploading blob ${desc.digest} (${desc.size} bytes) to ${registry}/${repository}`;
  let location = session ?? (await openUpload(transport, registry, repository, scope, operation));
  const chunked = desc.size > settings.monolithicMaxBytes;
  let offset = 0;
  if (chunked) {
    while (offset < desc.size) {
      const end = Math.min(desc.size, offset + settings.chunkSize);
      const res = await transport.send({
        method: 'PATCH',
        path: location,
        scope,
        operation,
        retry: false,
        headers: {
          'content-type': 'application/octet-stream',
          'content-length': String(end - offset),
          'content-range': `${offset}-${end - 1}`,
        },
        body: rangeBody(source, offset, end),
      });
      if (res.status !== 202) await transport.fail(res, operation);
      await res.body.dump();
      location = locationOf(res, registry, operation);
      offset = end;
    }
  }
  const finish = new URL(location, transport.baseURL);
  finish.searchParams.set('digest', desc.digest);
  const res = await transport.send({
    method: 'PUT',
    path: finish.toString(),
    scope,
    operation,
    retry: false,
    headers: { 'content-type': 'application/octet-stream', 'content-length': String(chunked ? 0 : desc.size) },
    body: chunked ? () => Buffer.alloc(0) : rangeBody(source, 0, desc.size),
  });
  if (res.status !== 201) await transport.fail(res, operation);
  await res.body.dump();
  events.emit({ type: 'blob-uploaded', digest: desc.digest, size: desc.size, chunked });
}
