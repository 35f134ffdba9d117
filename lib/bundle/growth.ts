import { contentLimitExceeded, type ContentLimits } from './limits.js';
import type { PatchMeter } from './patch.js';

/**
 * The size budget of overlay patches. A JSON Patch `copy` can double an object with each operation, a merge
 * patch can bring an alias-expanded value: what the patches make is measured as each change is made, and
 * the change that takes the rendered bundle over `maxNodes`, `maxExpandedBytes` or `maxDepth` is refused
 * at once, naming the bundle, the patch file and its line, and the limit. The budget is the one the rendered
 * bundle is checked against at the end (lib/isolate/bundle-tasks.ts checkRendered), counted the same way
 * (aliases and shared subtrees expanded, the bytes of {@link ContentMeter}): a patch that keeps the bundle
 * within the limits passes, one node or byte more is refused by this meter, never by a worker's heap.
 *
 * Cheap by construction: jsonPatch shares the subtrees it copies instead of copying them (lib/bundle/patch.ts),
 * and sizes are memoized by identity, so measuring a change costs the new nodes it brings, not the size of
 * the copy. A memoized value must not change afterwards: every value the patches see is either the parsed
 * content or a value jsonPatch no longer changes in place (see its Draft), and the rendered objects are made
 * trees ({@link copyTree}) only after the meter has passed them.
 */

/** The size of a value with shared subtrees expanded. */
interface Size {
  nodes: number;
  bytes: number;
  /** Nesting below this node (0 for a scalar). */
  height: number;
}

const NOTHING: Size = { nodes: 0, bytes: 0, height: 0 };

/** See the module comment: one per rendered bundle. */
export class GrowthMeter {
  private readonly sizes = new WeakMap<object, Size>();
  /** Nodes and bytes of the bundle now, once counting started ({@link begin}). */
  private total: { nodes: number; bytes: number } | undefined;
  /** What the patches added (net) to {@link total}. */
  private readonly grown = { nodes: 0, bytes: 0 };

  /** `bundle`, when given, names the bundle in refusals (e.g. `BundleDeployment web`). */
  constructor(
    private readonly limits: ContentLimits,
    private readonly bundle?: string,
  ) {}

  /** Whether {@link begin} was called. */
  get started(): boolean {
    return this.total !== undefined;
  }

  /** Starts counting from the bundle's objects as they are before the first patch (once; later calls do nothing). */
  begin(objects: () => Iterable<unknown>): void {
    if (this.total) return;
    this.total = { nodes: 0, bytes: 0 };
    for (const object of objects()) this.count(this.sizeOf(object), 1);
  }

  /** An overlay replaced or added a file's documents (not a patch): the total follows, unchecked (the rendered bundle is checked at the end). */
  replaced(before: readonly unknown[], after: readonly unknown[]): void {
    if (!this.total) return;
    for (const object of before) this.count(this.sizeOf(object), -1);
    for (const object of after) this.count(this.sizeOf(object), 1);
  }

  /** The meter of one JSON Patch document (`where`: its file and line). */
  forPatch(where: string): PatchMeter {
    return {
      grow: (value, entryBytes, depth) => {
        const size = value === undefined ? NOTHING : this.sizeOf(value);
        // The root of a document is level 1 (as ContentMeter counts), a value at a path of n tokens level n + 1.
        if (value !== undefined && depth + 1 + size.height > this.limits.maxDepth) {
          throw contentLimitExceeded(this.at(where), `the overlay patches nest deeper than ${this.limits.maxDepth} levels`, 'maxDepth', this.limits.maxDepth);
        }
        this.patched({ nodes: size.nodes, bytes: size.bytes + entryBytes }, where);
      },
      shrink: (value, entryBytes) => {
        const size = value === undefined ? NOTHING : this.sizeOf(value);
        this.patched({ nodes: -size.nodes, bytes: -size.bytes - entryBytes }, where);
      },
    };
  }

  /** A merge patch (`where`: its file and line) changed `before` into `after`. */
  merged(before: unknown, after: unknown, where: string): void {
    const [b, a] = [this.sizeOf(before), this.sizeOf(after)];
    this.patched({ nodes: a.nodes - b.nodes, bytes: a.bytes - b.bytes }, where);
  }

  private at(where: string): string {
    return this.bundle ? `${this.bundle}: ${where}` : where;
  }

  private count(size: { nodes: number; bytes: number }, sign: 1 | -1): void {
    if (!this.total) return;
    this.total.nodes += sign * size.nodes;
    this.total.bytes += sign * size.bytes;
  }

  /** Adds a change made by a patch; a bundle over a limit is refused (only when the change grows it). */
  private patched(delta: { nodes: number; bytes: number }, where: string): void {
    if (!this.total) throw new Error('GrowthMeter: begin() must be called before the first patch');
    this.count(delta, 1);
    this.grown.nodes += delta.nodes;
    this.grown.bytes += delta.bytes;
    const { maxNodes, maxExpandedBytes } = this.limits;
    // What the patches may add: the limit less what the bundle has without them.
    const allowance = (max: number, total: number, grown: number) => Math.max(0, max - (total - grown));
    if (delta.nodes > 0 && this.total.nodes > maxNodes) {
      const found = `the overlay patches add more than ${allowance(maxNodes, this.total.nodes, this.grown.nodes)} YAML nodes`;
      throw contentLimitExceeded(this.at(where), found, 'maxNodes', maxNodes);
    }
    if (delta.bytes > 0 && this.total.bytes > maxExpandedBytes) {
      const found = `the overlay patches add more than ${allowance(maxExpandedBytes, this.total.bytes, this.grown.bytes)} bytes`;
      throw contentLimitExceeded(this.at(where), found, 'maxExpandedBytes', maxExpandedBytes);
    }
  }

  /** The size of `value`, memoized by identity (recursion is bounded by maxDepth: every value measured is within it). */
  private sizeOf(value: unknown): Size {
    if (typeof value === 'string') return { nodes: 1, bytes: value.length + 2, height: 0 };
    if (typeof value !== 'object' || value === null) return { nodes: 1, bytes: 8, height: 0 };
    const known = this.sizes.get(value);
    if (known) return known;
    const size: Size = { nodes: 1, bytes: 2, height: 0 };
    const add = (child: Size, overhead: number) => {
      size.nodes += child.nodes;
      size.bytes += child.bytes + overhead;
      size.height = Math.max(size.height, child.height + 1);
    };
    if (Array.isArray(value)) for (const item of value) add(this.sizeOf(item), 1);
    else for (const key of Object.keys(value)) add(this.sizeOf((value as Record<string, unknown>)[key]), key.length + 4);
    this.sizes.set(value, size);
    return size;
  }
}
