import type { DiscoverOptions } from '../bundle/discover.js';
import { CONTENT_LIMIT_FLAGS, contentLimits, type ContentLimits } from '../bundle/limits.js';
import type { BundleFile, RenderedObject } from '../bundle/manifest.js';
import type { BundleLimits, LoadedBundle } from '../bundle/read.js';
import type { RenderOptions } from '../bundle/render.js';
import type { RenderSettings } from '../render/index.js';
import { apiGroup, isKnownClusterScoped } from '../bundle/scope.js';
import type { PortableRenderOptions, ReadBundleTaskInput, ReadGitRepoTaskInput, RenderTaskInput, RenderTaskResult } from './bundle-tasks.js';
import { asBuffers } from './bundle-tasks.js';
import { Isolate, siblingModule, type IsolateBudget } from './isolate.js';
import { RefusalMemory, contentKey } from './refusals.js';

/**
 * Bundle parsing and rendering behind a bulkhead: every call runs in an {@link Isolate} worker with the
 * content limits' time and heap budget (`renderTimeoutMs`, `renderMemoryMb`), and the parsing limits inside
 * it. Used by the controller (reading a commit), the agent (rendering an artifact) and `flotilla render`,
 * so all three refuse the same content the same way.
 *
 * Rendered results are cached by content (a hash of the files, options and limits), up to a byte budget,
 * so a periodic resync of an unchanged bundle does not render it again; refusals too (the same bytes always
 * fail), so a refused bundle reconciled again costs nothing. Cached objects are shared: callers
 * must not change them (the agent clones before it changes anything).
 */

/** The module of the render tasks, which every render worker preloads (exported for callers that bring their own Isolate). */
export const TASKS = siblingModule(import.meta.url, './bundle-tasks');

/**
 * Heap a rendered node may take in a render worker, at most: the object itself (up to about 60 bytes for an
 * empty mapping or list), its share of the structured clone that hands the result over and of the garbage
 * collector's headroom. Measured: a 2,000,000-node bundle grown by patches did not fit 128 MiB and fit
 * 192 MiB; 128 bytes a node gives the default `maxNodes` a 256 MiB worker (the default `renderMemoryMb`),
 * and 500,000 nodes the smallest, 64 MiB.
 */
export const HEAP_BYTES_PER_NODE = 128;

/** Options of a {@link BundleRenderer}. */
export interface BundleRendererOptions {
  /** Limits over the defaults (lib/bundle/limits.ts). */
  limits?: Partial<ContentLimits>;
  /** The isolate to run in; default one of its own. */
  isolate?: Isolate;
  /** Estimated bytes of rendered objects kept in the cache; default 64 MiB (0 turns the cache off). */
  cacheBytes?: number;
}

/** See the module comment. */
export class BundleRenderer {
  /** The limits every call uses. */
  readonly limits: ContentLimits;
  private readonly isolate: Isolate;
  private readonly ownIsolate: boolean;
  private readonly cache = new Map<string, RenderTaskResult>();
  /** Refusals (StallingError) by the same key: the same bytes, options and limits always fail the same way. */
  private readonly refused = new RefusalMemory();
  private cachedBytes = 0;

  constructor(private readonly options: BundleRendererOptions = {}) {
    this.limits = contentLimits(options.limits);
    this.ownIsolate = !options.isolate;
    this.isolate = options.isolate ?? new Isolate({ preload: [TASKS] });
  }

  /**
   * The budget of one job. Rendering needs memory in proportion to the content (JS objects are a few times
   * the YAML), so a bundle of known size gets 32 times its size rounded up to a power of two, at least
   * 64 MiB and at most `renderMemoryMb`, while large CRD bundles get the whole ceiling. A render with
   * overlays can grow (patches) up to `maxNodes` nodes, which it must hold as a tree while it measures the
   * result and hands it over: it gets at least {@link HEAP_BYTES_PER_NODE} per node of `maxNodes`, so that
   * growth is refused by `maxNodes` (lib/bundle/growth.ts) and not by the heap.
   */
  private budget(contentBytes?: number, grows = false): IsolateBudget {
    const ceiling = this.limits.renderMemoryMb;
    if (contentBytes === undefined) return { timeoutMs: this.limits.renderTimeoutMs, memoryMb: ceiling };
    const forContent = 32 * contentBytes;
    const forGrowth = grows ? this.limits.maxNodes * HEAP_BYTES_PER_NODE : 0;
    const wanted = Math.max(64, 2 ** Math.ceil(Math.log2(Math.max(1, Math.max(forContent, forGrowth) / (1024 * 1024)))));
    return { timeoutMs: this.limits.renderTimeoutMs, memoryMb: Math.min(ceiling, wanted) };
  }

  private job<I>(task: string, input: I, label: string) {
    return { module: TASKS, task, input, label, flags: { timeout: CONTENT_LIMIT_FLAGS.renderTimeoutMs, memory: CONTENT_LIMIT_FLAGS.renderMemoryMb } };
  }

  /** Renders `files` with `options` in a worker; `label` names the bundle in errors. */
  async render(files: readonly BundleFile[], options: PortableRenderOptions, label: string): Promise<RenderedObject[]> {
    const key = this.keyOf(files, options);
    const hit = this.cache.get(key);
    if (hit) {
      this.cache.delete(key);
      this.cache.set(key, hit);
      return hit.objects;
    }
    const input: RenderTaskInput = { files: files.map((f) => ({ path: f.path, content: f.content })), options, limits: this.limits, label };
    const bytes = files.reduce((n, f) => n + f.content.length, 0);
    const result = await this.refused.run(
      key,
      () => this.isolate.run<RenderTaskInput, RenderTaskResult>(this.job('renderTask', input, label), this.budget(bytes, (options.overlays?.length ?? 0) > 0)),
      undefined,
      label,
    );
    this.remember(key, result);
    return result.objects;
  }

  /**
   * Parses the output of helm or kustomize (as files) in a worker, like {@link render}: lib/render's
   * `parse` hook, so that a huge rendered stream cannot stall the event loop or take the process's heap.
   * Cluster scope cannot cross the thread as a function: `options.isClusterScoped` must be unset (the
   * agent decides scope when it prepares the objects).
   */
  async parseRendered(files: BundleFile[], options: RenderOptions, label: string): Promise<RenderedObject[]> {
    const { isClusterScoped, ...portable } = options;
    if (isClusterScoped) throw new Error(`${label}: rendered output is parsed in a worker, where isClusterScoped cannot be passed`);
    return await this.render(files, portable, label);
  }

  /**
   * What lib/render's helm and kustomize runs take from this renderer: the memory cap of each run
   * (`renderToolMemoryMb`) and the parsing of their output in this renderer's workers.
   */
  renderSettings(): Required<Pick<RenderSettings, 'maxMemoryBytes' | 'parse'>> {
    return {
      maxMemoryBytes: this.limits.renderToolMemoryMb * 1024 * 1024,
      parse: (files, options, label) => this.parseRendered(files, options, label),
    };
  }

  /**
   * Renders for one cluster whose API decides which kinds are cluster-scoped: renders with Kubernetes' own
   * list first, asks `decide` with that result, and renders again only when its answer differs for a kind
   * of the bundle (a CRD's or a cluster's own scope).
   */
  async renderForCluster(
    files: readonly BundleFile[],
    options: PortableRenderOptions,
    label: string,
    decide: (rough: readonly RenderedObject[]) => Promise<(apiVersion: string, kind: string) => boolean>,
  ): Promise<RenderedObject[]> {
    const rough = await this.render(files, options, label);
    const isClusterScoped = await decide(rough);
    const kinds = new Map(rough.map((o) => [`${apiGroup(o.apiVersion)}/${o.kind}`, o]));
    const scoped = [...kinds]
      .filter(([, o]) => isClusterScoped(o.apiVersion, o.kind))
      .map(([key]) => key)
      .sort();
    const same = [...kinds.values()].every((o) => isClusterScoped(o.apiVersion, o.kind) === isKnownClusterScoped(o.apiVersion, o.kind));
    return same ? rough : await this.render(files, { ...options, clusterScoped: scoped }, label);
  }

  /** Reads, validates and checks every bundle of a checkout in a worker (see readGitRepoBundles). */
  async readGitRepoBundles(checkoutRoot: string, options: DiscoverOptions & { limits?: Partial<BundleLimits> }, label: string): Promise<LoadedBundle[]> {
    const input: ReadGitRepoTaskInput = { checkoutRoot, options, limits: this.limits };
    const bundles = await this.isolate.run<ReadGitRepoTaskInput, LoadedBundle[]>(this.job('readGitRepoTask', input, label), this.budget());
    return bundles.map((b) => ({ ...b, files: asBuffers(b.files) }));
  }

  /** Reads, validates and checks one bundle directory in a worker (`flotilla render`). */
  async readBundle(dir: string, name: string): Promise<LoadedBundle> {
    const input: ReadBundleTaskInput = { dir, name, limits: this.limits };
    const bundle = await this.isolate.run<ReadBundleTaskInput, LoadedBundle>(this.job('readBundleTask', input, `bundle ${dir}`), this.budget());
    return { ...bundle, files: asBuffers(bundle.files) };
  }

  /** Stops the workers (when the isolate is this renderer's own). */
  async close(): Promise<void> {
    if (this.ownIsolate) await this.isolate.close();
  }

  private keyOf(files: readonly BundleFile[], options: PortableRenderOptions): string {
    return contentKey(files, [options, this.limits]);
  }

  private remember(key: string, result: RenderTaskResult): void {
    const max = this.options.cacheBytes ?? 64 * 1024 * 1024;
    if (result.bytes > max) return;
    this.cache.set(key, result);
    this.cachedBytes += result.bytes;
    for (const [oldKey, old] of this.cache) {
      if (this.cachedBytes <= max) break;
      this.cache.delete(oldKey);
      this.cachedBytes -= old.bytes;
    }
  }
}
