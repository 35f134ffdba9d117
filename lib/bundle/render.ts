import type { BundleDeploymentOptions } from '../api/options.js';
import {
  OVERLAYS_DIR,
  type BundleFile,
  type RenderedObject,
  invalidBundle,
  isManifestName,
  parseDocuments,
  parseManifest,
  validateObject,
} from './manifest.js';
import { GrowthMeter } from './growth.js';
import { activeContentLimits, markTree } from './limits.js';
import { PatchError, copyTree, jsonPatch, mergePatch } from './patch.js';
import { apiGroup, isKnownClusterScoped } from './scope.js';
import { isPlainObject } from '../util/json.js';

/**
 * Rendering: the Kubernetes objects one cluster receives from a bundle's files and its options.
 *
 * 1. Base: every manifest outside `overlays/`, in path order, documents in file order.
 * 2. Overlays, in the order given. For overlay `<name>`, the manifests under `overlays/<name>/` are taken
 *    by their path relative to that directory:
 *    - a file that does not end in `_patch.yaml` / `_patch.yml` / `_patch.json` adds a new file or
 *      replaces the file with the same relative path (from the base or an earlier overlay);
 *    - a `*_patch.<ext>` file patches the file with `_patch` removed from its name
 *      (`overlays/prod/deploy_patch.yaml` patches `deploy.yaml`); when that file does not exist, the one
 *      file with the same name and another manifest extension (`deploy_patch.json` patches `deploy.yaml`);
 *      no target is an error.
 *    Within one overlay, additions and replacements happen first, then patches, each in path order.
 * 3. Each document of a patch file is applied in turn (see patch.ts: a list is a JSON Patch, a mapping a
 *    merge patch that merges named lists by `name`). When the target file has one document, every patch
 *    document applies to it. When it has several, each patch document must be a mapping that sets `kind`
 *    and `metadata.name`; it patches the documents with that kind and name (none is an error).
 * 4. Namespaces: cluster-scoped kinds (scope.ts) are left as they are. Every other object is put in the
 *    forced namespace (`targetNamespace`, else `namespace`) when one is set, replacing its own; otherwise
 *    an object without namespace gets `defaultNamespace` when set, and stays without one when not.
 * 5. Two objects with the same group, kind, namespace and name are an error.
 * Errors are StallingError (reason InvalidBundle) naming the file, the line and the cause.
 */

/** What rendering needs from the deployment options. */
export interface RenderOptions {
  /** Overlay names, applied in order. */
  overlays?: readonly string[] | undefined;
  /** Namespace for namespaced objects that name none. */
  defaultNamespace?: string | undefined;
  /** Forces every namespaced object into this namespace. */
  namespace?: string | undefined;
  /** Same effect as `namespace`, and wins over it (the GitRepo's `targetNamespace` is the admin's choice). */
  targetNamespace?: string | undefined;
  /** Decides which kinds are cluster-scoped; default {@link isKnownClusterScoped}. */
  isClusterScoped?: ((apiVersion: string, kind: string) => boolean) | undefined;
  /** Directory shown before file paths in error messages (e.g. the bundle's path in the repository). */
  sourceDir?: string | undefined;
  /** Names the bundle in refusals of the content limits (e.g. `BundleDeployment web`). */
  bundle?: string | undefined;
}

/** The rendering options contained in a bundle deployment's options. */
export function renderOptionsFrom(options: BundleDeploymentOptions | undefined): RenderOptions {
  return {
    overlays: options?.yaml?.overlays,
    defaultNamespace: options?.defaultNamespace,
    namespace: options?.namespace,
    targetNamespace: options?.targetNamespace,
  };
}

/** An object and the file that defined it (for messages). */
interface Placed {
  object: RenderedObject;
  origin: string;
  /** Made by a patch: may share subtrees (a JSON Patch `copy`), made a tree before it is returned. */
  patched?: boolean;
}

const PATCH_SUFFIX = /_patch(\.(?:ya?ml|json))$/i;

/** True if an overlay file (by path) is a patch rather than an addition or replacement. */
export function isPatchFile(path: string): boolean {
  return PATCH_SUFFIX.test(path);
}

/** The path a patch file patches: `deploy_patch.yaml` -> `deploy.yaml`. */
export function patchTarget(relPath: string): string {
  return relPath.replace(PATCH_SUFFIX, '$1');
}

function baseName(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

function isOverlayPath(path: string): boolean {
  return path.startsWith(`${OVERLAYS_DIR}/`);
}

/** Renders the objects a cluster receives (see the module comment for the exact rules). */
export function renderBundle(files: readonly BundleFile[], options: RenderOptions = {}): RenderedObject[] {
  const label = (path: string) => (options.sourceDir && options.sourceDir !== '.' ? `${options.sourceDir}/${path}` : path);
  const parse = (file: BundleFile): Placed[] => parseManifest(label(file.path), file.content).map((d) => ({ object: d.object, origin: label(file.path) }));

  const byPath = new Map<string, Placed[]>();
  for (const file of files) {
    if (!isOverlayPath(file.path) && isManifestName(baseName(file.path))) byPath.set(file.path, parse(file));
  }
  // One budget for what the overlays' patches make of the bundle (see GrowthMeter).
  const growth = new GrowthMeter(activeContentLimits(), options.bundle);
  for (const name of options.overlays ?? []) applyOverlay(files, name, byPath, label, parse, growth);

  const objects = [...byPath.keys()].sort().flatMap((path) => byPath.get(path) ?? []);
  // Within the limits (the meter passed them): patched objects become trees, so that nothing shares a subtree.
  for (const placed of objects) {
    if (!placed.patched) continue;
    placed.object = copyTree(placed.object) as RenderedObject;
    markTree(placed.object);
  }
  for (const placed of objects) applyNamespace(placed.object, options);
  checkUnique(objects);
  return objects.map((p) => p.object);
}

/** Applies one overlay's additions, replacements and patches to the files by path. */
function applyOverlay(
  files: readonly BundleFile[],
  name: string,
  byPath: Map<string, Placed[]>,
  label: (path: string) => string,
  parse: (file: BundleFile) => Placed[],
  growth: GrowthMeter,
): void {
  if (name === '' || name === '.' || name === '..' || name.includes('/')) {
    throw invalidBundle(label(OVERLAYS_DIR), undefined, `"${name}" is not a valid overlay name`);
  }
  const prefix = `${OVERLAYS_DIR}/${name}/`;
  const inOverlay = files.filter((f) => f.path.startsWith(prefix)).sort((a, b) => (a.path < b.path ? -1 : 1));
  if (inOverlay.length === 0) {
    throw invalidBundle(label(`${OVERLAYS_DIR}/${name}`), undefined, `overlay "${name}" is selected but has no files`);
  }
  const manifests = inOverlay.filter((f) => isManifestName(baseName(f.path)));
  const objectsOf = (placed: readonly Placed[] | undefined) => (placed ?? []).map((p) => p.object);
  for (const file of manifests.filter((f) => !isPatchFile(f.path))) {
    const path = file.path.slice(prefix.length);
    const docs = parse(file);
    growth.replaced(objectsOf(byPath.get(path)), objectsOf(docs));
    byPath.set(path, docs);
  }
  for (const file of manifests.filter((f) => isPatchFile(f.path))) {
    growth.begin(() => [...byPath.values()].flatMap(objectsOf));
    const wanted = patchTarget(file.path.slice(prefix.length));
    const target = resolvePatchTarget(wanted, byPath);
    const docs = target === undefined ? undefined : byPath.get(target);
    if (target === undefined || !docs) throw invalidBundle(label(file.path), undefined, `patches ${wanted}, which is not in the bundle`);
    byPath.set(target, applyPatchFile(docs, file, label(file.path), target, growth));
  }
}

/**
 * The file a patch applies to: `wanted` itself when present, otherwise the one file with the same name and
 * another manifest extension (`deploy_patch.json` patches `deploy.yaml` when there is no `deploy.json`).
 */
function resolvePatchTarget(wanted: string, byPath: ReadonlyMap<string, unknown>): string | undefined {
  if (byPath.has(wanted)) return wanted;
  const stem = wanted.replace(/\.(?:ya?ml|json)$/i, '');
  const candidates = ['.yaml', '.yml', '.json'].map((ext) => stem + ext).filter((p) => byPath.has(p));
  return candidates.length === 1 ? candidates[0] : undefined;
}

/** Applies every document of a patch file to the documents of its target file. */
function applyPatchFile(targetDocs: readonly Placed[], file: BundleFile, fileLabel: string, target: string, growth: GrowthMeter): Placed[] {
  const docs = [...targetDocs];
  for (const { value, line } of parseDocuments(fileLabel, file.content)) {
    for (const index of patchedIndexes(docs, value, fileLabel, line, target)) {
      const current = docs[index] as Placed;
      let patched: unknown;
      const where = `${fileLabel}:${line}`;
      try {
        patched = Array.isArray(value) ? jsonPatch(current.object, value, growth.forPatch(where)) : mergePatch(current.object, value);
      } catch (err) {
        if (!(err instanceof PatchError)) throw err;
        throw invalidBundle(fileLabel, line, `cannot patch ${target}: ${err.message}`, err);
      }
      if (!Array.isArray(value)) growth.merged(current.object, patched, where);
      docs[index] = { object: validateObject(fileLabel, line, patched), origin: current.origin, patched: true };
    }
  }
  return docs;
}

/** Which documents of the target one patch document applies to (see rule 3 of the module comment). */
function patchedIndexes(docs: readonly Placed[], patch: unknown, fileLabel: string, line: number, target: string): number[] {
  if (docs.length === 1) return [0];
  if (docs.length === 0) throw invalidBundle(fileLabel, line, `${target} has no documents to patch`);
  const selector = isPlainObject(patch) ? patch : undefined;
  const kind = selector?.kind;
  const metadata = selector?.metadata;
  const name = typeof metadata === 'object' && metadata !== null ? (metadata as Record<string, unknown>).name : undefined;
  if (typeof kind !== 'string' || typeof name !== 'string') {
    throw invalidBundle(fileLabel, line, `${target} has ${docs.length} documents: a patch for it must be a mapping that sets kind and metadata.name`);
  }
  const indexes = docs.flatMap((d, i) => (d.object.kind === kind && d.object.metadata.name === name ? [i] : []));
  if (indexes.length === 0) throw invalidBundle(fileLabel, line, `no ${kind} named ${name} in ${target}`);
  return indexes;
}

/** Applies the namespace rules (rule 4) to one object, in place. */
function applyNamespace(object: RenderedObject, options: RenderOptions): void {
  const isClusterScoped = options.isClusterScoped ?? isKnownClusterScoped;
  if (isClusterScoped(object.apiVersion, object.kind)) return;
  const forced = options.targetNamespace || options.namespace;
  if (forced) object.metadata.namespace = forced;
  else if (!object.metadata.namespace && options.defaultNamespace) object.metadata.namespace = options.defaultNamespace;
}

/** Rejects two objects with the same identity (rule 5). */
function checkUnique(objects: readonly Placed[]): void {
  const seen = new Map<string, string>();
  for (const { object, origin } of objects) {
    const ns = object.metadata.namespace ? `${object.metadata.namespace}/` : '';
    const id = `${object.kind}.${apiGroup(object.apiVersion)} ${ns}${object.metadata.name}`;
    const first = seen.get(id);
    if (first !== undefined) {
      throw invalidBundle(origin, undefined, `${object.kind} ${ns}${object.metadata.name} is also defined in ${first}`);
    }
    seen.set(id, origin);
  }
}
