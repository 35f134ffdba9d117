import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { header, type Transport } from './transport.js';
import { RegistryRefusedError } from './errors.js';
import type { RegistryEventSink } from './stats.js';

/**
 * Blob uploads (distribution spec, "Pushing blobs"): a POST opens an upload session, then either one PUT
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

/**
 * Uploads one blob to `repository` (the caller checked that the registry lacks it). Throws typed registry
 * errors; the caller decides whether to retry the whole upload (PATCH is never retried on its own: a
 * half-applied chunk cannot be repeated safely).
 */
export async function uploadBlob(
  transport: Transport,
  events: RegistryEventSink,
  registry: string,
  repository: string,
  desc: Descriptor,
  source: BlobSource,
  settings: UploadSettings,
  scope: string,
): Promise<void> {
  const operation = `uploading blob ${desc.digest} (${desc.size} bytes) to ${registry}/${repository}`;
  const start = await transport.send({
    method: 'POST',
    path: `/v2/${repository}/blobs/uploads/`,
    scope,
    operation,
    headers: { 'content-length': '0' },
  });
  if (start.status !== 202) await transport.fail(start, operation);
  await start.body.dump();
  let location = locationOf(start, registry, operation);
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
