import { gzipSync, gunzipSync } from 'node:zlib';
import { StallingError } from '../errors.js';
import { Reason } from '../api/constants.js';
import { BUNDLE_PATH, type BundleResource } from '../api/options.js';
import type { BundleFile } from './manifest.js';

/**
 * Conversion between bundle files and the inline `resources` of Bundles and BundleDeployments (etcd mode).
 * Encodings: "" (UTF-8 text as is), "base64", "base64+gz" (gzip, then base64). Decoding is bounded, so a
 * small compressed resource cannot expand into gigabytes (a "zip bomb").
 */

/** Options for {@link filesToResources}. */
export interface EncodeOptions {
  /** Store every file as "base64+gz" (smaller in etcd) instead of plain text. Default false. */
  compress?: boolean;
}

/** Turns bundle files into inline resources, in path order. */
export function filesToResources(files: readonly BundleFile[], options: EncodeOptions = {}): BundleResource[] {
  return [...files]
    .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
    .map((file) =>
      options.compress
        ? { name: file.path, content: gzipSync(file.content).toString('base64'), encoding: 'base64+gz' as const }
        : { name: file.path, content: file.content.toString('utf8') },
    );
}

/**
 * Turns inline resources back into bundle files. A bad encoding, a path that could leave the bundle, a
 * duplicate path or a total above `maxTotalBytes` (default 100 MiB) is a StallingError (InvalidBundle or
 * BundleTooLarge).
 */
export function resourcesToFiles(resources: readonly BundleResource[], maxTotalBytes = 100 * 1024 * 1024): BundleFile[] {
  const files: BundleFile[] = [];
  const seen = new Set<string>();
  let total = 0;
  for (const resource of resources) {
    if (!BUNDLE_PATH.test(resource.name) || seen.has(resource.name)) {
      throw new StallingError(Reason.InvalidBundle, `resource "${resource.name}": not a unique path inside the bundle`);
    }
    seen.add(resource.name);
    const content = decode(resource, maxTotalBytes - total);
    total += content.length;
    if (total > maxTotalBytes) {
      throw new StallingError(Reason.BundleTooLarge, `bundle resources are larger than ${maxTotalBytes} bytes`);
    }
    files.push({ path: resource.name, content });
  }
  return files;
}

function decode(resource: BundleResource, budget: number): Buffer {
  switch (resource.encoding ?? '') {
    case '':
      return Buffer.from(resource.content, 'utf8');
    case 'base64':
      return Buffer.from(resource.content, 'base64');
    case 'base64+gz':
      try {
        return gunzipSync(Buffer.from(resource.content, 'base64'), { maxOutputLength: Math.max(budget, 0) + 1 });
      } catch (err) {
        if ((err as { code?: unknown }).code === 'ERR_BUFFER_TOO_LARGE') {
          throw new StallingError(Reason.BundleTooLarge, `resource "${resource.name}": decompresses beyond the bundle size limit`, { cause: err });
        }
        throw new StallingError(Reason.InvalidBundle, `resource "${resource.name}": not valid base64+gz`, { cause: err });
      }
    default:
      throw new StallingError(Reason.InvalidBundle, `resource "${resource.name}": unknown encoding "${resource.encoding}"`);
  }
}
