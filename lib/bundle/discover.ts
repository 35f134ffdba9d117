import { createHash } from 'node:crypto';
import { lstat, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { StallingError } from '../errors.js';
import { Reason } from '../api/constants.js';
import { GlobSyntaxError, globToRegExp } from './glob.js';
import { IGNORE_FILE, IgnoreRules } from './ignore.js';
import { FLEET_YAML_NAMES, OVERLAYS_DIR, isManifestName } from './manifest.js';

/**
 * Bundle discovery: which directories of a git checkout become bundles (Fleet semantics).
 *
 * - Every directory matched by a GitRepo `paths` entry (a glob over `/`-separated paths relative to the
 *   checkout root; default `["."]`, the root) is a scan root.
 * - A scan root becomes a bundle when it holds a fleet.yaml, or manifests (`.yaml`/`.yml`/`.json`) in
 *   itself or in subdirectories that are not bundles of their own.
 * - Every directory below a scan root that holds its own fleet.yaml is a separate bundle, whose files do
 *   not belong to the parent bundle.
 * - `overlays/` directly under a bundle root belongs to that bundle and is never a bundle; below any
 *   directory named `overlays`, fleet.yaml files start no bundle.
 * - `.git` is skipped, symbolic links are never followed during discovery, and entries matched by
 *   `.fleetignore` files (from the checkout root down) are skipped.
 * - A `paths` entry that matches no directory is an error (InvalidBundle): a typo should not deploy nothing.
 */

/** A directory that becomes a bundle. */
export interface DiscoveredBundle {
  /** Bundle name from {@link bundleName} (a fleet.yaml `name` may override it when the bundle is read). */
  name: string;
  /** Directory relative to the checkout root, `/`-separated; `.` for the root itself. */
  dir: string;
}

/** Options for {@link discoverBundles}. */
export interface DiscoverOptions {
  /** Name of the GitRepo (first part of every bundle name). */
  repoName: string;
  /** GitRepo `spec.paths`; empty or absent means `["."]`. */
  paths?: readonly string[] | undefined;
  /** Stops with BundleTooLarge beyond this many directories and files in the checkout. Default 100000. */
  maxEntries?: number;
}

/** Longest bundle name (Helm's release name limit, as in Fleet). */
export const MAX_BUNDLE_NAME_LENGTH = 53;

/**
 * The bundle name for a directory: `<repoName>-<relPath with "/" replaced by "-">`, lowercased, every
 * character other than `a-z`, `0-9` and `-` replaced by `-`, runs of `-` collapsed and trimmed (a valid
 * DNS-1123 label). The root (`.` or ``) gives `<repoName>`. Names longer than 53 characters are cut to 47
 * and end with `-` plus the first 5 hex digits of the sha256 of the untruncated name, so that they stay
 * unique and stable.
 */
export function bundleName(repoName: string, relPath: string): string {
  const path = normalizeRelPath(relPath);
  const raw = path === '.' ? repoName : `${repoName}-${path.replaceAll('/', '-')}`;
  const name =
    raw
      .toLowerCase()
      .replace(/[^a-z0-9-]/g, '-')
      .replace(/-+/g, '-')
      .replace(/^-|-$/g, '') || 'bundle';
  if (name.length <= MAX_BUNDLE_NAME_LENGTH) return name;
  const hash = createHash('sha256').update(name).digest('hex').slice(0, 5);
  return `${name.slice(0, MAX_BUNDLE_NAME_LENGTH - 6).replace(/-+$/, '')}-${hash}`;
}

/** Normalizes a relative path or pattern: no leading `./` or `/`, no trailing `/`; the root is `.`. */
export function normalizeRelPath(path: string): string {
  let p = path.trim().replaceAll('\\', '/');
  while (p.startsWith('./')) p = p.slice(2);
  p = p
    .replace(/^\/+/, '')
    .replace(/\/+$/, '')
    .replace(/\/\.(?=\/|$)/g, '');
  return p === '' || p === '.' ? '.' : p;
}

/** What discovery knows about one directory of the checkout. */
interface DirInfo {
  dir: string;
  hasFleetYaml: boolean;
  hasManifests: boolean;
  subdirs: string[];
}

/** Walks the checkout (no symlinks, no .git, honouring .fleetignore) and indexes every directory. */
async function scanCheckout(root: string, maxEntries: number): Promise<Map<string, DirInfo>> {
  const dirs = new Map<string, DirInfo>();
  let entries = 0;
  const visit = async (dir: string, rules: IgnoreRules): Promise<void> => {
    const abs = dir === '.' ? root : join(root, dir);
    const listing = (await readdir(abs, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1));
    entries += listing.length;
    if (entries > maxEntries) {
      throw new StallingError(Reason.BundleTooLarge, `the checkout has more than ${maxEntries} files and directories`);
    }
    const names = new Set(listing.map((e) => e.name));
    const ignoreRel = dir === '.' ? IGNORE_FILE : `${dir}/${IGNORE_FILE}`;
    const here = rules.extend(names.has(IGNORE_FILE) ? await readIgnoreFile(join(abs, IGNORE_FILE)) : undefined, ignoreRel);
    const info: DirInfo = { dir, hasFleetYaml: false, hasManifests: false, subdirs: [] };
    dirs.set(dir, info);
    for (const entry of listing) {
      if (entry.isSymbolicLink() || here.ignores(entry.name, entry.isDirectory())) continue;
      if (entry.isDirectory()) {
        if (entry.name === '.git') continue;
        const child = dir === '.' ? entry.name : `${dir}/${entry.name}`;
        info.subdirs.push(child);
        await visit(child, here);
      } else if (entry.isFile()) {
        if (FLEET_YAML_NAMES.includes(entry.name)) info.hasFleetYaml = true;
        else if (isManifestName(entry.name)) info.hasManifests = true;
      }
    }
  };
  await visit('.', IgnoreRules.none);
  return dirs;
}

async function readIgnoreFile(path: string): Promise<string | undefined> {
  const stat = await lstat(path);
  return stat.isFile() ? readFile(path, 'utf8') : undefined;
}

function baseName(dir: string): string {
  return dir.slice(dir.lastIndexOf('/') + 1);
}

/**
 * Collects the bundles rooted at or below `dir`: `dir` itself when it is a scan root or has a fleet.yaml
 * and owns manifests or a fleet.yaml, plus every nested directory with a fleet.yaml. Below a directory named
 * `overlays`, fleet.yaml files start no bundle. Returns whether `dir` owns manifests (for its parent).
 */
function collect(dirs: Map<string, DirInfo>, dir: string, isScanRoot: boolean, inOverlays: boolean, out: Set<string>): boolean {
  const info = dirs.get(dir);
  if (!info) return false;
  const isBundleRoot = isScanRoot || (info.hasFleetYaml && !inOverlays);
  let owns = info.hasManifests;
  for (const sub of info.subdirs) {
    const isOverlays = baseName(sub) === OVERLAYS_DIR;
    if (isBundleRoot && isOverlays) continue; // overlay content of this bundle, never a bundle
    if (!inOverlays && dirs.get(sub)?.hasFleetYaml) {
      collect(dirs, sub, true, false, out);
      continue;
    }
    if (collect(dirs, sub, false, inOverlays || isOverlays, out)) owns = true;
  }
  if (isBundleRoot && (info.hasFleetYaml || owns)) out.add(dir);
  return owns;
}

/** Returns the directories matched by one `paths` entry. */
function matchPath(dirs: Map<string, DirInfo>, pattern: string): string[] {
  const normalized = normalizeRelPath(pattern);
  if (normalized === '.') return ['.'];
  if (normalized.split('/').includes('..')) {
    throw new StallingError(Reason.InvalidBundle, `paths entry "${pattern}" leaves the repository ("..")`);
  }
  let re: RegExp;
  try {
    re = globToRegExp(normalized);
  } catch (err) {
    if (!(err instanceof GlobSyntaxError)) throw err;
    throw new StallingError(Reason.InvalidBundle, `paths entry "${pattern}": ${err.message}`, { cause: err });
  }
  return [...dirs.keys()].filter((d) => d !== '.' && re.test(d));
}

/** True if `dir` lies in the overlays directory of another bundle (a glob such as `**` can reach it). */
function isInOverlaysOf(dir: string, bundles: Set<string>): boolean {
  const segments = dir.split('/');
  for (let i = 0; i < segments.length; i++) {
    if (segments[i] !== OVERLAYS_DIR) continue;
    const parent = i === 0 ? '.' : segments.slice(0, i).join('/');
    if (bundles.has(parent)) return true;
  }
  return false;
}

/**
 * Finds the bundles of a checkout for a GitRepo. Returns them sorted by directory; each directory once,
 * even when several `paths` entries reach it.
 */
export async function discoverBundles(checkoutRoot: string, options: DiscoverOptions): Promise<DiscoveredBundle[]> {
  const dirs = await scanCheckout(checkoutRoot, options.maxEntries ?? 100_000);
  const patterns = options.paths && options.paths.length > 0 ? options.paths : ['.'];
  const found = new Set<string>();
  for (const pattern of patterns) {
    const matched = matchPath(dirs, pattern);
    if (matched.length === 0) {
      throw new StallingError(Reason.InvalidBundle, `paths entry "${pattern}" matches no directory in the repository`);
    }
    for (const dir of matched) collect(dirs, dir, true, false, found);
  }
  const bundles = [...found].sort().filter((dir) => !isInOverlaysOf(dir, found));
  return bundles.map((dir) => ({ name: bundleName(options.repoName, dir), dir }));
}
