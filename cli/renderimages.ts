import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Reason } from '../lib/api/index.js';
import type { RenderedObject } from '../lib/bundle/manifest.js';
import { StallingError } from '../lib/errors.js';
import { IMAGES_LOCK_PATH, parseLock, type ImagesLock } from '../lib/images/lock.js';
import { rewriteOrExplain, type RewriteContext } from '../lib/images/rewrite.js';
import { buildMirrorMap, parseMirrorList } from '../lib/oci/index.js';
import { isPlainObject } from '../lib/util/json.js';

/**
 * The image rewrite in `flotilla render` (docs/airgap.md): given the images lock of a version (the file
 * `.flotilla/images.lock` of a bundle pulled to DIR, or `--images-lock FILE`), render prints every image as
 * the agent applies it: the relocated copy by digest, the source pinned by digest, or a local image on the
 * `--local-registry` host (KEP-1755). The same pure rewrite as the agent (lib/images/rewrite.ts), all or
 * nothing.
 */

/** The render flags of the rewrite. */
export const IMAGES_RENDER_OPTIONS = {
  'images-lock': { type: 'string' },
  'local-registry': { type: 'string' },
  'registry-mirrors': { type: 'string' },
} as const;

/** Their lines in `flotilla render --help`. */
export const IMAGES_RENDER_USAGE = `Images (as the agent rewrites them; docs/airgap.md):
      --images-lock FILE      rewrite every image from this images lock (a version's ${IMAGES_LOCK_PATH}, or a
                              line of flotilla images --json); default DIR/${IMAGES_LOCK_PATH} when present
      --local-registry HOST   the cluster's KEP-1755 registry host for images declared local
      --registry-mirrors LIST the cluster's registry mirrors (JSON or YAML list, as the agent's flag;
                              docs/mirrors.md): images pinned by digest are written onto their mirror
`;

/** The parsed rewrite flags. */
export interface ImagesRenderFlags {
  lockFile?: string | undefined;
  localRegistry?: string | undefined;
  /** `--registry-mirrors`: the cluster's mirrors as a JSON or YAML list. */
  registryMirrors?: string | undefined;
}

/** The rewrite flags from parsed `--images-lock`, `--local-registry` and `--registry-mirrors` values. */
export function imagesRenderFlags(values: Record<string, unknown>): ImagesRenderFlags {
  const text = (name: keyof typeof IMAGES_RENDER_OPTIONS) => (typeof values[name] === 'string' ? (values[name] as string) : undefined);
  return { lockFile: text('images-lock'), localRegistry: text('local-registry'), registryMirrors: text('registry-mirrors') };
}

/** The lock to rewrite with: `--images-lock`, else DIR's own, else none. */
export async function loadRenderLock(dir: string, flags: ImagesRenderFlags): Promise<{ lock: ImagesLock; file: string } | undefined> {
  const own = join(dir, IMAGES_LOCK_PATH);
  const file = flags.lockFile ?? ((await stat(own).catch(() => undefined))?.isFile() ? own : undefined);
  if (file === undefined) return undefined;
  const bytes = await readFile(file).catch((err: Error) => {
    throw new Error(`--images-lock ${file}: ${err.message}`);
  });
  let json: unknown;
  try {
    json = JSON.parse(bytes.toString('utf8'));
  } catch {
    json = undefined;
  }
  // A line of `flotilla images --json` carries the lock under "lock".
  const inner = isPlainObject(json) && isPlainObject(json.lock) ? Buffer.from(JSON.stringify(json.lock)) : bytes;
  return { lock: parseLock(inner, `images lock ${file}`), file };
}

/** The cluster the rewrite is for, from the flags: its KEP-1755 host and its registry mirrors. */
export function renderContext(flags: ImagesRenderFlags): RewriteContext {
  const mirrors = flags.registryMirrors === undefined ? undefined : buildMirrorMap({ bootstrap: parseMirrorList(flags.registryMirrors, '--registry-mirrors') });
  const bad = mirrors?.problems[0];
  if (bad) throw new StallingError(Reason.InvalidSpec, `--registry-mirrors: ${bad.error}`);
  return { localHost: flags.localRegistry, mirrors };
}

/** Rewrites `objects` from `lock`; a StallingError naming the images when any cannot be rewritten (nothing printed). */
export function rewriteForRender(
  objects: RenderedObject[],
  lock: ImagesLock,
  flags: ImagesRenderFlags,
  file: string,
): { objects: RenderedObject[]; rewritten: number } {
  return rewriteOrExplain(objects, lock, renderContext(flags), file);
}
