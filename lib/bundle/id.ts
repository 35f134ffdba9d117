import { createHash } from 'node:crypto';
import type { BundleDeploymentOptions } from '../api/options.js';
import { canonicalJSON } from '../util/json.js';

/**
 * Deterministic identifiers of a bundle version and of a deployment (Fleet style):
 * - {@link contentsID}: sha256 (hex) over the files sorted by path; each file contributes its path, its
 *   length and its bytes, framed so that no two different file sets hash alike;
 * - {@link optionsHash}: sha256 (hex) of the options as canonical JSON (lib/util/json.ts);
 * - {@link deploymentID}: `s-<contentsID>:<optionsHash>`, which changes exactly when what a cluster
 *   receives may change (new content or new options).
 */

/** A file as hashed: its path in the bundle and its content. */
export interface HashedFile {
  path: string;
  content: Buffer | string;
}

/** sha256 (hex) of the bundle's files, independent of their order. Duplicate paths are an error. */
export function contentsID(files: readonly HashedFile[]): string {
  const sorted = [...files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const hash = createHash('sha256');
  let previous: string | undefined;
  for (const file of sorted) {
    if (file.path === previous) throw new Error(`contentsID: duplicate path ${file.path}`);
    previous = file.path;
    const content = typeof file.content === 'string' ? Buffer.from(file.content, 'utf8') : file.content;
    const path = Buffer.from(file.path, 'utf8');
    hash.update(`${path.length}:`).update(path).update(`${content.length}:`).update(content);
  }
  return hash.digest('hex');
}

/** sha256 (hex) of the deployment options in canonical form; absent options hash like `{}`. */
export function optionsHash(options: BundleDeploymentOptions | undefined): string {
  return createHash('sha256')
    .update(canonicalJSON(options ?? {}))
    .digest('hex');
}

/** The deployment ID of a bundle version with given options: `s-<contentsID>:<optionsHash>`. */
export function deploymentID(contentsId: string, optionsHashHex: string): string {
  return `s-${contentsId}:${optionsHashHex}`;
}
