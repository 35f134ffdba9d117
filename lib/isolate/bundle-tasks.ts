import { engineOf } from '../render/index.js';
import type { DiscoverOptions } from '../bundle/discover.js';
import { ContentMeter, contentLimitExceeded, setActiveContentLimits, type ContentLimits } from '../bundle/limits.js';
import type { BundleFile, RenderedObject } from '../bundle/manifest.js';
import { readBundle, readGitRepoBundles, type BundleLimits, type LoadedBundle } from '../bundle/read.js';
import { renderBundle, renderOptionsFrom, type RenderOptions } from '../bundle/render.js';
import { apiGroup } from '../bundle/scope.js';
import { mergeOptions } from '../bundle/target.js';
import { engineDirs, fleetYamlOptions } from '../bundle/validate.js';

/**
 * The bundle work that runs inside an isolate's worker thread (see bundle.ts for the calling side). Each
 * task sets the job's content limits for the parsing it does, and measures what it rendered against the
 * per-bundle limits (objects, nodes and expanded bytes of the result), the same way on the controller, the
 * agent and in `flotilla render`.
 */

/** Rendering options that can cross a thread: cluster scope as a list of `group/Kind` instead of a function. */
export type PortableRenderOptions = Omit<RenderOptions, 'isClusterScoped'> & {
  /** `group/Kind` keys of the kinds to treat as cluster-scoped; unset: Kubernetes' own list (scope.ts). */
  clusterScoped?: string[] | undefined;
};

/** Input of {@link renderTask}. */
export interface RenderTaskInput {
  files: { path: string; content: Uint8Array }[];
  options: PortableRenderOptions;
  limits: ContentLimits;
  /** Names the bundle in errors. */
  label: string;
}

/** What {@link renderTask} returns: the objects and their expanded size (for caching). */
export interface RenderTaskResult {
  objects: RenderedObject[];
  bytes: number;
}

/** Buffers arrive as plain Uint8Arrays after a structured clone. */
export function asBuffers(files: readonly { path: string; content: Uint8Array }[]): BundleFile[] {
  return files.map((f) => ({
    path: f.path,
    content: Buffer.isBuffer(f.content) ? f.content : Buffer.from(f.content.buffer, f.content.byteOffset, f.content.byteLength),
  }));
}

/** Refuses a rendered bundle over `maxObjects`, `maxNodes` or `maxExpandedBytes`; returns its expanded bytes. */
export function checkRendered(objects: readonly RenderedObject[], limits: ContentLimits, label: string): number {
  if (objects.length > limits.maxObjects) {
    throw contentLimitExceeded(label, `${objects.length} objects rendered`, 'maxObjects', limits.maxObjects);
  }
  const meter = new ContentMeter(limits, `${label} (rendered)`);
  for (const object of objects) meter.add(object);
  return meter.expandedBytes;
}

/** Renders a bundle's files (in the worker). */
export function renderTask(input: RenderTaskInput): RenderTaskResult {
  setActiveContentLimits(input.limits);
  const { clusterScoped, ...options } = input.options;
  const scoped = clusterScoped ? new Set(clusterScoped) : undefined;
  const objects = renderBundle(asBuffers(input.files), {
    bundle: input.label,
    ...options,
    ...(scoped ? { isClusterScoped: (apiVersion: string, kind: string) => scoped.has(`${apiGroup(apiVersion)}/${kind}`) } : {}),
  });
  return { objects, bytes: checkRendered(objects, input.limits, input.label) };
}

/** Input of {@link readGitRepoTask}. */
export interface ReadGitRepoTaskInput {
  checkoutRoot: string;
  options: DiscoverOptions & { limits?: Partial<BundleLimits> };
  limits: ContentLimits;
}

/**
 * Renders a loaded bundle as every cluster may receive it (base options and each target customization that
 * deploys) and checks each result, so that the controller refuses what an agent would refuse.
 */
function checkVariants(bundle: LoadedBundle, limits: ContentLimits): void {
  const base = fleetYamlOptions(bundle.fleetYaml);
  const variants = [base, ...(bundle.fleetYaml.targetCustomizations ?? []).filter((t) => !t.doNotDeploy).map((t) => mergeOptions(base, t))];
  for (const options of variants) {
    // Helm and Kustomize variants are checked by validateBundle and rendered per cluster by the agent (lib/render).
    if (engineOf(bundle.files, options).engine !== 'yaml' || engineDirs(bundle.files).length > 0) continue;
    const label = `bundle ${bundle.name} (${bundle.dir})`;
    const objects = renderBundle(bundle.files, { ...renderOptionsFrom(options), sourceDir: bundle.dir, bundle: label });
    checkRendered(objects, limits, label);
  }
}

/** Reads, validates and checks every bundle of a checkout (in the worker); see readGitRepoBundles. */
export async function readGitRepoTask(input: ReadGitRepoTaskInput): Promise<LoadedBundle[]> {
  setActiveContentLimits(input.limits);
  const bundles = await readGitRepoBundles(input.checkoutRoot, input.options);
  for (const bundle of bundles) checkVariants(bundle, input.limits);
  return bundles;
}

/** Input of {@link readBundleTask}. */
export interface ReadBundleTaskInput {
  dir: string;
  name: string;
  limits: ContentLimits;
}

/** Reads, validates and checks one bundle directory (in the worker), as `flotilla render` does. */
export async function readBundleTask(input: ReadBundleTaskInput): Promise<LoadedBundle> {
  setActiveContentLimits(input.limits);
  const bundle = await readBundle(input.dir, { name: input.name, dir: '.' });
  checkVariants(bundle, input.limits);
  return bundle;
}
