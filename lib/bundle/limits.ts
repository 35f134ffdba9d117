import { z } from 'zod';
import { Reason } from '../api/constants.js';
import { parseDurationMs } from '../api/meta.js';
import { StallingError } from '../errors.js';

/**
 * Limits on parsing and rendering untrusted bundle content, in one place: the controller (reading git), the
 * agent (rendering an artifact) and `flotilla render` use the same values and the same code, so what the
 * controller accepts the agents accept too.
 *
 * Per file, while parsing (manifest.ts): documents, YAML nesting depth, alias nodes, line length (YAML
 * only: minified JSON is one line), key and string length, and the size of the parsed value with every
 * alias expanded (nodes and estimated JSON bytes). js-yaml shares an anchored value between its aliases
 * instead of copying it, so a "billion laughs" file parses into a small graph; {@link ContentMeter} walks
 * that graph once per distinct node and adds up the size it would have once expanded (serialized,
 * cloned, sent to an API server), refusing it before anything expands it.
 * Per bundle, while overlay patches apply (growth.ts, refused at the change that goes over) and after
 * rendering (lib/isolate/bundle-tasks.ts): objects, and nodes and expanded bytes of the rendered result.
 * Time and memory of one bundle's parsing and rendering are capped by running it in a worker thread
 * (lib/isolate): `renderTimeoutMs` and `renderMemoryMb`; each helm or kustomize run is a subprocess whose
 * memory is capped by `renderToolMemoryMb` (lib/render/exec.ts).
 *
 * Aliases: allowed in YAML manifests and patches (kubectl accepts them and some hand-written manifests use
 * anchors for repeated blocks), bounded by `maxAliases` and by the expanded size; refused outright in
 * `.json` files, since JSON has no aliases and a `.json` file that uses them is not JSON. fleet.yaml keeps
 * its own smaller limits (lib/api/fleetyaml.ts).
 */

const int = (min: number, max: number, fallback: number) => z.number().int().min(min).max(max).default(fallback);

/** The schema of {@link ContentLimits}; every field has a default that large real bundles pass. */
export const ContentLimitsSchema = z.strictObject({
  maxDocuments: int(1, 1_000_000, 10_000).describe('Most YAML documents (--- separated, empty ones included) in one file.'),
  maxDepth: int(8, 1_000, 200).describe('Deepest nesting of mappings and lists, aliases expanded.'),
  maxAliases: int(0, 1_000_000, 1_000).describe('Most alias nodes (*name, also in <<: merge keys) in one YAML file; 0 refuses aliases.'),
  maxLineLength: int(80, 1 << 30, 2 * 1024 * 1024).describe('Longest line of a YAML file, in characters (JSON files are exempt).'),
  maxKeyLength: int(16, 1 << 30, 4096).describe('Longest mapping key, in characters.'),
  maxStringLength: int(64, 1 << 30, 4 * 1024 * 1024).describe('Longest string value, in characters.'),
  maxNodes: int(1, 1 << 30, 2_000_000).describe('Most YAML nodes, aliases expanded, of one file and of one rendered bundle.'),
  maxExpandedBytes: int(1024, 2 ** 40, 128 * 1024 * 1024).describe('Largest estimated JSON size, aliases expanded, of one file and of one rendered bundle.'),
  maxObjects: int(1, 1_000_000, 5_000).describe('Most Kubernetes objects one bundle may render.'),
  renderTimeoutMs: int(100, 3_600_000, 20_000).describe('Deadline of parsing and rendering one bundle, in ms.'),
  renderMemoryMb: int(16, 65_536, 256).describe('Heap (V8 old generation) of the worker parsing and rendering one bundle, in MiB.'),
  renderToolMemoryMb: int(64, 65_536, 1024).describe('Memory (RLIMIT_DATA) of one helm or kustomize run, in MiB.'),
});

/** Limits on parsing and rendering untrusted content (see the module comment). */
export type ContentLimits = z.output<typeof ContentLimitsSchema>;

/** The defaults (see the README's configuration section for why each is safe for real charts). */
export const DEFAULT_CONTENT_LIMITS: Readonly<ContentLimits> = Object.freeze(ContentLimitsSchema.parse({}));

/** The command-line flag of each limit (the same on the controller, the agent and `flotilla render`). */
export const CONTENT_LIMIT_FLAGS: Readonly<Record<keyof ContentLimits, string>> = {
  maxDocuments: '--max-documents',
  maxDepth: '--max-depth',
  maxAliases: '--max-aliases',
  maxLineLength: '--max-line-length',
  maxKeyLength: '--max-key-length',
  maxStringLength: '--max-string-length',
  maxNodes: '--max-nodes',
  maxExpandedBytes: '--max-expanded-bytes',
  maxObjects: '--max-objects',
  renderTimeoutMs: '--render-timeout',
  renderMemoryMb: '--render-memory',
  renderToolMemoryMb: '--render-tool-memory',
};

/** The chart value of each limit (charts/flotilla and charts/flotilla-agent, under `limits:`). */
const CHART_VALUES: Readonly<Record<keyof ContentLimits, string>> = {
  ...(Object.fromEntries(Object.keys(CONTENT_LIMIT_FLAGS).map((k) => [k, `limits.${k}`])) as Record<keyof ContentLimits, string>),
  renderTimeoutMs: 'limits.renderTimeout',
  renderMemoryMb: 'limits.renderMemory',
  renderToolMemoryMb: 'limits.renderToolMemory',
};

/** Validates partial limits over the defaults; throws naming each bad field. */
export function contentLimits(partial: Partial<ContentLimits> = {}): ContentLimits {
  const parsed = ContentLimitsSchema.safeParse(Object.fromEntries(Object.entries(partial).filter(([, v]) => v !== undefined)));
  if (!parsed.success) {
    throw new Error(`invalid content limits: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  }
  return parsed.data;
}

const D = DEFAULT_CONTENT_LIMITS;
const flagInt = (fallback: number, min: number, text: string) => z.coerce.number().int().min(min).default(fallback).describe(text);

/**
 * The content limits as process configuration (flags `--max-depth`, ..., `--render-timeout 20s`,
 * `--render-memory 512`, or FLOTILLA_MAX_DEPTH, ...), spread into the controller's and the agent's config
 * schemas; {@link contentLimitsFromConfig} turns the parsed values into {@link ContentLimits}.
 */
export const CONTENT_LIMIT_CONFIG_SHAPE = {
  maxDocuments: flagInt(D.maxDocuments, 1, 'Most YAML documents in one file (ContentLimitExceeded above).'),
  maxDepth: flagInt(D.maxDepth, 8, 'Deepest nesting of YAML/JSON content, aliases expanded.'),
  maxAliases: flagInt(D.maxAliases, 0, 'Most alias nodes in one YAML file; 0 refuses aliases.'),
  maxLineLength: flagInt(D.maxLineLength, 80, 'Longest line of a YAML file, characters.'),
  maxKeyLength: flagInt(D.maxKeyLength, 16, 'Longest mapping key, characters.'),
  maxStringLength: flagInt(D.maxStringLength, 64, 'Longest string value, characters.'),
  maxNodes: flagInt(D.maxNodes, 1, 'Most YAML nodes, aliases expanded, of one file and of one rendered bundle.'),
  maxExpandedBytes: flagInt(D.maxExpandedBytes, 1024, 'Largest estimated JSON size, aliases expanded, of one file and one rendered bundle.'),
  renderTimeout: z
    .string()
    .default(`${D.renderTimeoutMs / 1000}s`)
    .transform((text, ctx) => {
      const ms = parseDurationMs(text);
      if (ms === undefined || ms < 100) {
        ctx.addIssue({ code: 'custom', message: `not a duration of at least 100ms: ${text}` });
        return z.NEVER;
      }
      return ms;
    })
    .describe('Deadline of parsing and rendering one bundle (RenderBudgetExceeded above).'),
  renderMemory: flagInt(D.renderMemoryMb, 16, 'Heap of the worker that parses and renders one bundle, MiB (RenderBudgetExceeded above).'),
  renderToolMemory: flagInt(D.renderToolMemoryMb, 64, 'Memory (RLIMIT_DATA) of one helm or kustomize run, MiB (RenderBudgetExceeded above).'),
};

/** The parsed values of {@link CONTENT_LIMIT_CONFIG_SHAPE} (plus `maxObjects`, which both processes have). */
export type ContentLimitConfig = { [K in keyof typeof CONTENT_LIMIT_CONFIG_SHAPE]: z.output<(typeof CONTENT_LIMIT_CONFIG_SHAPE)[K]> } & { maxObjects: number };

/** The content limits of a parsed process configuration (validated). */
export function contentLimitsFromConfig(c: ContentLimitConfig): ContentLimits {
  return contentLimits({
    maxDocuments: c.maxDocuments,
    maxDepth: c.maxDepth,
    maxAliases: c.maxAliases,
    maxLineLength: c.maxLineLength,
    maxKeyLength: c.maxKeyLength,
    maxStringLength: c.maxStringLength,
    maxNodes: c.maxNodes,
    maxExpandedBytes: c.maxExpandedBytes,
    maxObjects: c.maxObjects,
    renderTimeoutMs: c.renderTimeout,
    renderMemoryMb: c.renderMemory,
    renderToolMemoryMb: c.renderToolMemory,
  });
}

let active: ContentLimits = DEFAULT_CONTENT_LIMITS;

/**
 * The limits parsing uses when a caller passes none. A worker (lib/isolate) sets the job's limits here
 * before it parses; elsewhere the defaults apply, so no path parses unbounded.
 */
export function activeContentLimits(): ContentLimits {
  return active;
}

/** Sets the limits {@link activeContentLimits} returns (worker threads do, per job). */
export function setActiveContentLimits(limits: ContentLimits): void {
  active = limits;
}

/**
 * The error for content over a limit: StallingError with reason ContentLimitExceeded, naming the file (and
 * line), what was found, the limit and what to change.
 */
export function contentLimitExceeded(where: string, found: string, limit: keyof ContentLimits, value: number): StallingError {
  return new StallingError(
    Reason.ContentLimitExceeded,
    `${where}: ${found}, over the limit ${limit}=${value}; change the content, or if it is meant to be deployed raise ${limitSetting(limit)} ` +
      'on the controller and every agent',
  );
}

/** How a user raises a limit: its flag and its chart value, e.g. `--max-depth (chart value limits.maxDepth)`. */
export function limitSetting(limit: keyof ContentLimits): string {
  return `${CONTENT_LIMIT_FLAGS[limit]} (chart value ${CHART_VALUES[limit]})`;
}

/** Values known to be trees (no subtree reachable by two paths), which {@link ContentMeter} walks without memo. */
const TREES = new WeakSet<object>();

/**
 * Marks `value` as a tree: no subtree of it is reachable by two paths (a document parsed without aliases,
 * a value just made by copyTree). Measuring a tree needs no memo by identity, which on millions of objects
 * costs more than the walk itself. The mark is on the value: it must not gain shared subtrees later.
 */
export function markTree(value: unknown): void {
  if (typeof value === 'object' && value !== null) TREES.add(value);
}

/** The size of a parsed value with aliases expanded. */
interface Size {
  nodes: number;
  bytes: number;
  /** Nesting below this node (0 for a scalar). */
  height: number;
}

/**
 * Measures parsed values (aliases expanded) against the limits, adding up across calls: one meter per
 * file while parsing, one per rendered bundle. Shared subgraphs are walked once (memoized by identity), so
 * measuring costs the size of the parsed graph, not of its expansion, and stops at the first limit.
 */
export class ContentMeter {
  private nodes = 0;
  private bytes = 0;
  private readonly memo = new Map<object, Size>();
  private readonly open = new Set<object>();
  /** Walking a value marked by {@link markTree}: no memo (its depth is checked on the way down all the same). */
  private tree = false;

  constructor(
    private readonly limits: ContentLimits,
    private readonly where: string,
  ) {}

  /** Estimated JSON bytes of everything added so far, aliases expanded. */
  get expandedBytes(): number {
    return this.bytes;
  }

  /** Adds one value (a document, an object); `where` (e.g. `file:line`) names it in errors. */
  add(value: unknown, where = this.where): void {
    this.tree = typeof value === 'object' && value !== null && TREES.has(value);
    const size = this.visit(value, 1, where);
    this.nodes += size.nodes;
    this.bytes += size.bytes;
    this.checkTotals(this.nodes, this.bytes, where);
  }

  private checkTotals(nodes: number, bytes: number, where: string): void {
    const { maxNodes, maxExpandedBytes } = this.limits;
    if (nodes > maxNodes) throw contentLimitExceeded(where, `more than ${maxNodes} YAML nodes once aliases are expanded`, 'maxNodes', maxNodes);
    if (bytes > maxExpandedBytes) {
      throw contentLimitExceeded(where, `more than ${maxExpandedBytes} bytes once aliases are expanded`, 'maxExpandedBytes', maxExpandedBytes);
    }
  }

  private visit(value: unknown, depth: number, where: string): Size {
    const { maxDepth, maxStringLength } = this.limits;
    if (depth > maxDepth) throw contentLimitExceeded(where, `nested deeper than ${maxDepth} levels`, 'maxDepth', maxDepth);
    if (typeof value === 'string') {
      if (value.length > maxStringLength) {
        throw contentLimitExceeded(where, `a string of ${value.length} characters`, 'maxStringLength', maxStringLength);
      }
      return { nodes: 1, bytes: value.length + 2, height: 0 };
    }
    if (typeof value !== 'object' || value === null) return { nodes: 1, bytes: 8, height: 0 };
    if (this.tree) return Array.isArray(value) ? this.visitList(value, depth, where) : this.visitMap(value as Record<string, unknown>, depth, where);
    const known = this.memo.get(value);
    if (known) {
      if (depth + known.height > maxDepth) throw contentLimitExceeded(where, `nested deeper than ${maxDepth} levels`, 'maxDepth', maxDepth);
      return known;
    }
    if (this.open.has(value)) throw contentLimitExceeded(where, 'a value that contains itself', 'maxDepth', maxDepth);
    this.open.add(value);
    const size = Array.isArray(value) ? this.visitList(value, depth, where) : this.visitMap(value as Record<string, unknown>, depth, where);
    this.open.delete(value);
    this.memo.set(value, size);
    return size;
  }

  private visitList(list: readonly unknown[], depth: number, where: string): Size {
    const size: Size = { nodes: 1, bytes: 2, height: 0 };
    for (const item of list) this.include(size, this.visit(item, depth + 1, where), 1, where);
    return size;
  }

  private visitMap(map: Record<string, unknown>, depth: number, where: string): Size {
    const { maxKeyLength } = this.limits;
    const size: Size = { nodes: 1, bytes: 2, height: 0 };
    for (const key of Object.keys(map)) {
      if (key.length > maxKeyLength) throw contentLimitExceeded(where, `a key of ${key.length} characters`, 'maxKeyLength', maxKeyLength);
      this.include(size, this.visit(map[key], depth + 1, where), key.length + 4, where);
    }
    return size;
  }

  /** Adds a child's size to its parent's; a subtree over a total limit is refused at once. */
  private include(parent: Size, child: Size, overhead: number, where: string): void {
    parent.nodes += child.nodes;
    parent.bytes += child.bytes + overhead;
    parent.height = Math.max(parent.height, child.height + 1);
    this.checkTotals(this.nodes + parent.nodes, this.bytes + parent.bytes, where);
  }
}
