/**
 * What the registry client did, for tests and metrics: a running tally ({@link RegistryStats}) and an
 * optional hook receiving every event as it happens.
 */

/** One thing the client did. Paths never hold query strings (upload state) or credentials. */
export type RegistryEvent =
  | { type: 'request'; method: string; path: string; status: number }
  | { type: 'retry'; method: string; operation: string; attempt: number; delayMs: number; why: string }
  | { type: 'token'; scope: string; status: number }
  | { type: 'blob-uploaded'; digest: string; size: number; chunked: boolean }
  | { type: 'blob-skipped'; digest: string; size: number }
  | { type: 'blob-downloaded'; digest: string; size: number }
  | { type: 'cache-hit'; digest: string; size: number }
  | { type: 'manifest-pushed'; digest: string; reference: string }
  | { type: 'manifest-fetched'; digest: string };

/** Counters kept by each client since it was created (or since {@link resetStats}). */
export interface RegistryStats {
  /** HTTP requests sent to the registry (token requests excluded). */
  requests: number;
  /** Requests per method, e.g. `{HEAD: 3, PUT: 1}`. */
  requestsByMethod: Record<string, number>;
  /** Token requests sent to the token service. */
  tokenRequests: number;
  /** Retries after transient failures. */
  retries: number;
  blobsUploaded: number;
  /** Bytes of blob content uploaded (manifests excluded). */
  bytesUploaded: number;
  /** Blobs not uploaded because the registry already had them. */
  blobsSkipped: number;
  blobsDownloaded: number;
  /** Bytes of blob content downloaded (manifests excluded). */
  bytesDownloaded: number;
  /** Blobs served from the local cache instead of the registry. */
  cacheHits: number;
  manifestsPushed: number;
  manifestsFetched: number;
}

/** A fresh, zeroed tally. */
export function emptyStats(): RegistryStats {
  return {
    requests: 0,
    requestsByMethod: {},
    tokenRequests: 0,
    retries: 0,
    blobsUploaded: 0,
    bytesUploaded: 0,
    blobsSkipped: 0,
    blobsDownloaded: 0,
    bytesDownloaded: 0,
    cacheHits: 0,
    manifestsPushed: 0,
    manifestsFetched: 0,
  };
}

/** Zeroes a tally in place. */
export function resetStats(stats: RegistryStats): void {
  Object.assign(stats, emptyStats());
}

/** Adds one event to a tally (the client's own, or one rebuilt from recorded events). */
export function countEvent(s: RegistryStats, event: RegistryEvent): void {
  switch (event.type) {
    case 'request':
      s.requests++;
      s.requestsByMethod[event.method] = (s.requestsByMethod[event.method] ?? 0) + 1;
      break;
    case 'retry':
      s.retries++;
      break;
    case 'token':
      s.tokenRequests++;
      break;
    case 'blob-uploaded':
      s.blobsUploaded++;
      s.bytesUploaded += event.size;
      break;
    case 'blob-skipped':
      s.blobsSkipped++;
      break;
    case 'blob-downloaded':
      s.blobsDownloaded++;
      s.bytesDownloaded += event.size;
      break;
    case 'cache-hit':
      s.cacheHits++;
      break;
    case 'manifest-pushed':
      s.manifestsPushed++;
      break;
    case 'manifest-fetched':
      s.manifestsFetched++;
      break;
  }
}

/** Receives events, keeps the tally and forwards to the hook. */
export class RegistryEventSink {
  readonly stats: RegistryStats = emptyStats();

  constructor(private readonly hook?: (event: RegistryEvent) => void) {}

  /** Records one event. A throwing hook is ignored: metrics must never break a pull. */
  emit(event: RegistryEvent): void {
    countEvent(this.stats, event);
    try {
      this.hook?.(event);
    } catch {
      // see above
    }
  }
}
