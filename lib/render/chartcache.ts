import { createHash } from 'node:crypto';
import type { ChartAccess } from './chartsource.js';

/** What a {@link ChartCache} keeps: files (a chart's, or the dependency archives of one) and what goes with them. */
export interface CachedFiles {
  files: readonly { path: string; content: Buffer }[];
}

/**
 * Charts pulled from Helm repositories, kept between commits so that a commit pulls only what it changed.
 *
 * Every commit resolves each remote chart again, since a version constraint (`^1.0.0`) may now resolve to a
 * newer release. For a chart of an HTTP(S) Helm repository the resolution depends only on the constraint
 * and the repository's index.yaml: with the same index bytes, `helm pull` picks the same version and
 * downloads the same archive, and `helm dependency build` the same dependency archives. So the index is
 * still read at every commit (that is how a new release is seen), and when it is byte for byte the one
 * a chart was pulled against, under the same constraint (for dependencies: the same chart files) and the
 * same credentials, what was pulled then is used again: no helm process and no archive download.
 * An `oci://` chart at an exact version is kept by the digest of the manifest its tag names (one `HEAD` per
 * commit instead of a helm process); one at a range of versions, and dependencies from `oci://` registries,
 * are pulled every time (helm resolves them against the registry's tags).
 *
 * Downloads (an index.yaml, a chart given as a plain `https://…/x.tgz` URL) that the server answered with an
 * `ETag` or a `Last-Modified` are kept too, with those validators: the next commit asks for them again with
 * `If-None-Match` / `If-Modified-Since`, and a `304 Not Modified` answer (no body) stands for the bytes kept.
 *
 * The key holds a hash of the credentials and TLS settings, so a chart pulled with one GitRepo's Secret is
 * never handed to a GitRepo whose credentials differ (each must first be allowed to read the index with its
 * own). Entries are kept least recently used first, within a bound on their bytes.
 */
export class ChartCache {
  private readonly entries = new Map<string, { value: CachedFiles; bytes: number }>();
  private bytes = 0;
  constructor(
    private readonly maxBytes = DEFAULT_CHART_CACHE_BYTES,
    private readonly observer?: ChartCacheObserver,
  ) {}

  /** What is kept under `key` (made with {@link chartCacheKey}, whose kind says what `T` is), if anything; it becomes the most recently used. */
  get<T extends CachedFiles>(key: string): T | undefined {
    const entry = this.entries.get(key);
    this.observer?.lookup(entry !== undefined);
    if (!entry) return undefined;
    this.entries.delete(key);
    this.entries.set(key, entry);
    return entry.value as T;
  }

  /**
   * What is kept under `key`, if anything, as {@link get} but not counted as a lookup: for entries that are
   * the means of a fetch rather than its result (a download kept for a conditional GET).
   */
  peek<T extends CachedFiles>(key: string): T | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    this.entries.delete(key);
    this.entries.set(key, entry);
    return entry.value as T;
  }

  /** Keeps `value` under `key`, dropping the least recently used entries beyond the bound; a value larger than the bound is not kept. */
  set(key: string, value: CachedFiles): void {
    const bytes = value.files.reduce((n, f) => n + f.content.length + f.path.length, 0);
    const old = this.entries.get(key);
    if (old) {
      this.entries.delete(key);
      this.bytes -= old.bytes;
    }
    if (bytes <= this.maxBytes) {
      this.entries.set(key, { value, bytes });
      this.bytes += bytes;
      for (const [k, e] of this.entries) {
        if (this.bytes <= this.maxBytes) break;
        this.entries.delete(k);
        this.bytes -= e.bytes;
      }
    }
    this.observer?.held(this.bytes);
  }

  /** Entries kept, and their bytes. */
  get size(): { entries: number; bytes: number } {
    return { entries: this.entries.size, bytes: this.bytes };
  }
}

/** What a {@link ChartCache} reports (the controller's metrics). */
export interface ChartCacheObserver {
  /** A lookup, and whether it found an entry. */
  lookup(hit: boolean): void;
  /** The bytes kept, after a change. */
  held(bytes: number): void;
}

/** Default bound on the bytes a {@link ChartCache} keeps. */
export const DEFAULT_CHART_CACHE_BYTES = 32 * 1024 * 1024;

/** The parts of a key that stand for credentials and TLS settings (hashed with the rest, never kept). */
export function accessParts(access: ChartAccess): string[] {
  return [
    access.username === undefined ? '' : `+${access.username}`,
    access.password === undefined ? '' : `+${access.password}`,
    access.caPem ?? '',
    access.insecureSkipTLSVerify ? 'insecure' : '',
  ];
}

/**
 * A key of `kind` (`chart`, `dependencies`, `index`, `download`, `registry`) over `parts`, each hashed with its
 * length so that no two different lists give the same bytes.
 */
export function chartCacheKey(kind: 'chart' | 'dependencies' | 'index' | 'download' | 'registry', parts: readonly string[]): string {
  const h = createHash('sha256').update(`${kind}\n`);
  for (const part of parts) h.update(`${Buffer.byteLength(part)}:`).update(part);
  return `${kind}:${h.digest('hex')}`;
}
