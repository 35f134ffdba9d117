import { lstat, readFile, readdir, realpath, stat } from 'node:fs/promises';
import { join, sep } from 'node:path';
import { StallingError } from '../errors.js';
import { Reason } from '../api/constants.js';
import { type FleetYaml, parseFleetYaml } from '../api/fleetyaml.js';
import { type DiscoverOptions, type DiscoveredBundle, discoverBundles } from './discover.js';
import { IGNORE_FILE, IgnoreRules } from './ignore.js';
import { type BundleFile, ENGINE_MARKERS, FLEET_YAML_NAMES, OVERLAYS_DIR, decodeUtf8, invalidBundle, isManifestName } from './manifest.js';
import { validateBundle } from './validate.js';

/**
 * Reading one bundle directory of a checkout into its fleet.yaml and files, with limits.
 *
 * What a bundle holds: its fleet.yaml (or fleet.yml; both is an error) and every manifest (`.yaml`, `.yml`,
 * `.json`) in its directory and subdirectories, except subdirectories with their own fleet.yaml (separate
 * bundles), `.git`, and entries matched by `.fleetignore` files (from the checkout root down). Files under
 * `overlays/` are kept (rendering needs them) but are not base resources. Other files (README.md, ...)
 * are ignored, except in a Helm chart or a Kustomize folder: a directory holding a `Chart.yaml` or a
 * kustomization (see {@link ENGINE_MARKERS}), the bundle root included, is kept whole with everything below
 * it (templates/*.tpl, .helmignore, crds/, charts/*.tgz, values.schema.json, generator inputs), as helm and
 * kustomize read them.
 *
 * Symbolic links are followed only when they resolve inside the bundle directory (a link to outside, or
 * to nothing, is an error); a directory reached twice through links is read once.
 *
 * Every manifest is validated (see manifest.ts) and the bundle is rendered once with its base options and
 * once per target customization, so that a broken overlay or patch stops the whole commit at the
 * controller instead of failing on clusters. Errors are StallingError: InvalidBundle (naming file, line,
 * cause) or BundleTooLarge (over a limit).
 */

/** Limits on what a bundle may hold. */
export interface BundleLimits {
  /** Most files kept (manifests and overlay files). */
  maxFiles: number;
  /** Largest single file, in bytes. */
  maxFileBytes: number;
  /** Largest sum of the files kept, in bytes. */
  maxTotalBytes: number;
  /** Most directory entries looked at while walking (kept or not). */
  maxEntries: number;
}

/** Default limits: 1000 files, 10 MiB per file, 100 MiB in total, 100000 entries walked. */
export const DEFAULT_BUNDLE_LIMITS: Readonly<BundleLimits> = {
  maxFiles: 1000,
  maxFileBytes: 10 * 1024 * 1024,
  maxTotalBytes: 100 * 1024 * 1024,
  maxEntries: 100_000,
};

/** A bundle read from a checkout. */
export interface LoadedBundle {
  /** Bundle name (see bundleName). */
  name: string;
  /** Directory relative to the checkout root; `.` for the root. */
  dir: string;
  /** The parsed fleet.yaml; `{}` when there is none. */
  fleetYaml: FleetYaml;
  /** The manifests (base and overlays), sorted by path relative to the bundle directory. */
  files: BundleFile[];
}

/** State of one bundle walk. */
interface Walk {
  rootReal: string;
  dir: string;
  limits: BundleLimits;
  files: BundleFile[];
  totalBytes: number;
  entries: number;
  visited: Set<string>;
  fleetYaml?: { name: string; text: string };
}

/** Path relative to the checkout root, for messages. */
function display(walk: Walk, rel: string): string {
  return walk.dir === '.' ? rel : `${walk.dir}/${rel}`;
}

function tooLarge(message: string): StallingError {
  return new StallingError(Reason.BundleTooLarge, message);
}

function isInside(path: string, root: string): boolean {
  return path === root || path.startsWith(root.endsWith(sep) ? root : root + sep);
}

/** True if a directory holds a fleet.yaml that its ignore rules (with its own .fleetignore) do not hide. */
async function hasFleetYaml(absDir: string, rules: IgnoreRules, ignoreFileLabel: string): Promise<boolean> {
  const names = await readdir(absDir);
  if (!names.some((n) => FLEET_YAML_NAMES.includes(n))) return false;
  const own = names.includes(IGNORE_FILE) ? await readFile(join(absDir, IGNORE_FILE), 'utf8').catch(() => undefined) : undefined;
  const here = rules.extend(own, ignoreFileLabel);
  return names.some((n) => FLEET_YAML_NAMES.includes(n) && !here.ignores(n, false));
}

/** Reads the rules of every `.fleetignore` from the checkout root down to (not including) `dir`. */
async function ancestorRules(checkoutRoot: string, dir: string): Promise<IgnoreRules> {
  let rules = IgnoreRules.none;
  if (dir === '.') return rules;
  const segments = dir.split('/');
  for (let i = 0; i < segments.length; i++) {
    const rel = segments.slice(0, i).join('/');
    const file = join(checkoutRoot, rel, IGNORE_FILE);
    const st = await lstat(file).catch(() => undefined);
    if (st?.isFile()) rules = rules.extend(await readFile(file, 'utf8'), rel ? `${rel}/${IGNORE_FILE}` : IGNORE_FILE);
  }
  return rules;
}

/** Resolves a symbolic link, refusing targets outside the bundle or that do not exist. */
async function resolveLink(walk: Walk, abs: string, rel: string): Promise<{ real: string; isDir: boolean; isFile: boolean }> {
  let real: string;
  try {
    real = await realpath(abs);
  } catch (err) {
    throw invalidBundle(display(walk, rel), undefined, 'is a symbolic link to nothing', err);
  }
  if (!isInside(real, walk.rootReal)) {
    throw invalidBundle(display(walk, rel), undefined, 'is a symbolic link to outside the bundle directory');
  }
  const st = await stat(real);
  return { real, isDir: st.isDirectory(), isFile: st.isFile() };
}

/** Reads one file into the walk, enforcing the limits. */
async function addFile(walk: Walk, abs: string, rel: string, size: number): Promise<void> {
  const { limits } = walk;
  if (size > limits.maxFileBytes) {
    throw tooLarge(`${display(walk, rel)}: ${size} bytes is more than the limit of ${limits.maxFileBytes} bytes per file`);
  }
  if (walk.files.length + 1 > limits.maxFiles) {
    throw tooLarge(`bundle ${walk.dir} has more than ${limits.maxFiles} files`);
  }
  const content = await readFile(abs);
  walk.totalBytes += content.length;
  if (content.length > limits.maxFileBytes || walk.totalBytes > limits.maxTotalBytes) {
    throw tooLarge(`bundle ${walk.dir} is larger than the limit of ${limits.maxTotalBytes} bytes`);
  }
  walk.files.push({ path: rel, content });
}

/** Walks one directory of the bundle (`rel` is relative to the bundle root, '' for the root). */
async function walkDir(walk: Walk, abs: string, rel: string, rules: IgnoreRules, inOverlays: boolean, inEngine = false): Promise<void> {
  const listing = (await readdir(abs, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1));
  const keepAll = inEngine || listing.some((e) => ENGINE_MARKERS.includes(e.name) && !e.isDirectory());
  walk.entries += listing.length;
  if (walk.entries > walk.limits.maxEntries) {
    throw tooLarge(`bundle ${walk.dir} has more than ${walk.limits.maxEntries} files and directories`);
  }
  const hasIgnoreFile = listing.some((e) => e.name === IGNORE_FILE && e.isFile());
  const ignoreRel = display(walk, rel ? `${rel}/${IGNORE_FILE}` : IGNORE_FILE);
  const here = rules.extend(hasIgnoreFile ? await readFile(join(abs, IGNORE_FILE), 'utf8') : undefined, ignoreRel);
  for (const entry of listing) {
    const childRel = rel ? `${rel}/${entry.name}` : entry.name;
    let childAbs = join(abs, entry.name);
    let isDir = entry.isDirectory();
    let isFile = entry.isFile();
    if (entry.isSymbolicLink()) {
      const link = await resolveLink(walk, childAbs, childRel);
      ({ isDir, isFile } = link);
      childAbs = link.real;
    }
    if (here.ignores(entry.name, isDir)) continue;
    if (isDir) {
      // As in discovery: below a directory named overlays, a fleet.yaml starts no bundle.
      const startsOverlays = entry.name === OVERLAYS_DIR;
      if (entry.name === '.git') continue;
      const nestedBundle = !inOverlays && !startsOverlays && (await hasFleetYaml(childAbs, here, display(walk, `${childRel}/${IGNORE_FILE}`)));
      if (nestedBundle) continue;
      const real = await realpath(childAbs);
      if (walk.visited.has(real)) continue;
      walk.visited.add(real);
      await walkDir(walk, childAbs, childRel, here, inOverlays || startsOverlays, keepAll);
    } else if (isFile) {
      await visitFile(walk, childAbs, childRel, entry.name, rel === '', keepAll);
    }
  }
}

/** Decides what one regular file is: fleet.yaml, a manifest or a file of a chart or kustomization (kept), or ignored. */
async function visitFile(walk: Walk, abs: string, rel: string, name: string, atRoot: boolean, keepAll: boolean): Promise<void> {
  if (FLEET_YAML_NAMES.includes(name)) {
    if (!atRoot) return; // a fleet.yaml under overlays/ configures nothing
    if (walk.fleetYaml) throw invalidBundle(display(walk, rel), undefined, `both ${walk.fleetYaml.name} and ${name} exist; keep one`);
    const size = (await stat(abs)).size;
    if (size > walk.limits.maxFileBytes)
      throw tooLarge(`${display(walk, rel)}: ${size} bytes is more than the limit of ${walk.limits.maxFileBytes} bytes per file`);
    walk.fleetYaml = { name, text: decodeUtf8(display(walk, rel), await readFile(abs)) };
    return;
  }
  if (keepAll || isManifestName(name)) await addFile(walk, abs, rel, (await stat(abs)).size);
}

/**
 * Reads, validates and dry-renders one bundle directory of a checkout (see the module comment).
 * `bundle.dir` is relative to `checkoutRoot` (`.` for the root).
 */
export async function readBundle(checkoutRoot: string, bundle: DiscoveredBundle, limits: Partial<BundleLimits> = {}): Promise<LoadedBundle> {
  const abs = bundle.dir === '.' ? checkoutRoot : join(checkoutRoot, bundle.dir);
  const walk: Walk = {
    rootReal: await realpath(abs),
    dir: bundle.dir,
    limits: { ...DEFAULT_BUNDLE_LIMITS, ...limits },
    files: [],
    totalBytes: 0,
    entries: 0,
    visited: new Set(),
  };
  walk.visited.add(walk.rootReal);
  await walkDir(walk, walk.rootReal, '', await ancestorRules(checkoutRoot, bundle.dir), false);
  const fleetYaml = walk.fleetYaml ? parseFleetYaml(walk.fleetYaml.text, display(walk, walk.fleetYaml.name)) : {};
  const files = walk.files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  validateBundle(files, fleetYaml, { sourceDir: bundle.dir, fleetYamlName: display(walk, walk.fleetYaml?.name ?? 'fleet.yaml') });
  // fleet.yaml `name` replaces the name derived from the path (Fleet); two bundles with one name are refused below.
  return { name: fleetYaml.name ?? bundle.name, dir: bundle.dir, fleetYaml, files };
}

/**
 * Discovers and reads every bundle of a GitRepo checkout. All or nothing: the first invalid bundle throws,
 * so that nothing from a broken commit is applied. Two bundles with the same name are an error.
 */
export async function readGitRepoBundles(checkoutRoot: string, options: DiscoverOptions & { limits?: Partial<BundleLimits> }): Promise<LoadedBundle[]> {
  const discovered = await discoverBundles(checkoutRoot, options);
  const bundles: LoadedBundle[] = [];
  const byName = new Map<string, string>();
  for (const bundle of discovered) {
    const other = byName.get(bundle.name);
    if (other !== undefined) {
      throw new StallingError(Reason.InvalidBundle, `directories ${other} and ${bundle.dir} both give the bundle name ${bundle.name}`);
    }
    byName.set(bundle.name, bundle.dir);
    bundles.push(await readBundle(checkoutRoot, bundle, options.limits));
  }
  return bundles;
}
