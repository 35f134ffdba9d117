/**
 * Finding and rewriting the image references of rendered Kubernetes objects (pure, no I/O).
 *
 * An image reference lives in a pod spec's `containers`, `initContainers` and `ephemeralContainers`
 * (`.image` of each). The pod spec is the object's own `spec` for a Pod, `template.spec` for a
 * PodTemplate, `spec.template.spec` for Deployment, StatefulSet, DaemonSet, ReplicaSet, Job and
 * ReplicationController, and `spec.jobTemplate.spec.template.spec` for a CronJob. Custom resources add
 * their own paths (fleet.yaml `images.paths`): dot-separated field names where `[*]` walks every item of a
 * list, e.g. `spec.containers[*].image` or `spec.image`.
 */

/** Where the pod spec of each workload kind is (core and apps/batch groups only). */
const POD_SPEC_PATHS: Readonly<Record<string, readonly string[]>> = {
  Pod: ['spec'],
  PodTemplate: ['template', 'spec'],
  Deployment: ['spec', 'template', 'spec'],
  StatefulSet: ['spec', 'template', 'spec'],
  DaemonSet: ['spec', 'template', 'spec'],
  ReplicaSet: ['spec', 'template', 'spec'],
  ReplicationController: ['spec', 'template', 'spec'],
  Job: ['spec', 'template', 'spec'],
  CronJob: ['spec', 'jobTemplate', 'spec', 'template', 'spec'],
};

const WORKLOAD_GROUPS = new Set(['v1', 'apps/v1', 'batch/v1', 'batch/v1beta1', 'extensions/v1beta1', 'apps/v1beta1', 'apps/v1beta2']);

/** The container lists of a pod spec that hold images. */
export const CONTAINER_LISTS = ['containers', 'initContainers', 'ephemeralContainers'] as const;

/** Extra image paths for a custom resource kind (fleet.yaml `images.paths`). */
export interface ImagePathRule {
  /** The kind the paths apply to. */
  kind: string;
  /** Its apiVersion; any when omitted. */
  apiVersion?: string | undefined;
  /** Field paths to image strings, e.g. `spec.image` or `spec.sidecars[*].image`. */
  paths: readonly string[];
}

/** One image reference found in an object: where it is and what it says. */
export interface ImageRefAt {
  /** Field path segments (names and list indexes) from the object's root. */
  path: ReadonlyArray<string | number>;
  /** The reference as written. */
  image: string;
}

type Segment = { field: string; each: boolean };

/** Parses `a.b[*].c` into segments; throws a TypeError naming the path when it is malformed. */
export function parseImagePath(path: string): Segment[] {
  const parts = path.split('.');
  return parts.map((part) => {
    const each = part.endsWith('[*]');
    const field = each ? part.slice(0, -3) : part;
    if (!/^[A-Za-z0-9_-]+$/.test(field)) throw new TypeError(`image path "${path}": "${part}" is not a field name (optionally followed by [*])`);
    return { field, each };
  });
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Walks `segments` from `node`, calling `found` for every string at the end. */
function walk(node: unknown, segments: readonly Segment[], at: ReadonlyArray<string | number>, found: (ref: ImageRefAt) => void): void {
  const [head, ...rest] = segments;
  if (head === undefined) {
    if (typeof node === 'string' && node !== '') found({ path: at, image: node });
    return;
  }
  if (!isRecord(node)) return;
  const child = node[head.field];
  if (!head.each) {
    walk(child, rest, [...at, head.field], found);
    return;
  }
  if (!Array.isArray(child)) return;
  for (const [i, item] of child.entries()) walk(item, rest, [...at, head.field, i], found);
}

function podSpecPaths(object: Record<string, unknown>): Segment[][] {
  const kind = typeof object.kind === 'string' ? object.kind : '';
  const apiVersion = typeof object.apiVersion === 'string' ? object.apiVersion : '';
  const base = POD_SPEC_PATHS[kind];
  if (base === undefined || !WORKLOAD_GROUPS.has(apiVersion)) return [];
  return CONTAINER_LISTS.map((list) => [...base.map((field) => ({ field, each: false })), { field: list, each: true }, { field: 'image', each: false }]);
}

/**
 * The pod spec of a workload object (the same kinds and groups whose images {@link findImageRefs} finds), or
 * undefined for any other object. The object itself, not a copy: callers that change it copy first.
 */
export function podSpecOf(object: unknown): Record<string, unknown> | undefined {
  if (!isRecord(object)) return undefined;
  const kind = typeof object.kind === 'string' ? object.kind : '';
  const base = POD_SPEC_PATHS[kind];
  if (base === undefined || !WORKLOAD_GROUPS.has(typeof object.apiVersion === 'string' ? object.apiVersion : '')) return undefined;
  let node: unknown = object;
  for (const field of base) node = isRecord(node) ? node[field] : undefined;
  return isRecord(node) ? node : undefined;
}

function rulePaths(object: Record<string, unknown>, rules: readonly ImagePathRule[]): Segment[][] {
  return rules
    .filter((r) => r.kind === object.kind && (r.apiVersion === undefined || r.apiVersion === object.apiVersion))
    .flatMap((r) => r.paths.map(parseImagePath));
}

/** Every image reference in `object` (workload pod specs and the matching `rules`), in document order of the paths. */
export function findImageRefs(object: unknown, rules: readonly ImagePathRule[] = []): ImageRefAt[] {
  if (!isRecord(object)) return [];
  const out: ImageRefAt[] = [];
  for (const segments of [...podSpecPaths(object), ...rulePaths(object, rules)]) walk(object, segments, [], (ref) => out.push(ref));
  return out;
}

/** The distinct image references of many objects, sorted. */
export function distinctImages(objects: readonly unknown[], rules: readonly ImagePathRule[] = []): string[] {
  return [...new Set(objects.flatMap((o) => findImageRefs(o, rules).map((r) => r.image)))].sort();
}

/** The result of {@link rewriteImageRefs}. */
export type RewriteResult<T> = { ok: true; object: T; rewritten: number } | { ok: false; missing: string[] };

/**
 * Returns a copy of `object` with every image reference replaced by `map(image)`, or, when `map` has no
 * answer (undefined) for any of them, the list of those images and no object at all: an object is never
 * rewritten in part. `object` itself is never modified.
 */
export function rewriteImageRefs<T>(object: T, map: (image: string) => string | undefined, rules: readonly ImagePathRule[] = []): RewriteResult<T> {
  const refs = findImageRefs(object, rules);
  const missing = [...new Set(refs.filter((r) => map(r.image) === undefined).map((r) => r.image))];
  if (missing.length > 0) return { ok: false, missing };
  if (refs.length === 0) return { ok: true, object, rewritten: 0 };
  const copy = structuredClone(object) as T;
  let rewritten = 0;
  for (const ref of refs) {
    const next = map(ref.image) as string;
    if (next === ref.image) continue;
    setAt(copy, ref.path, next);
    rewritten++;
  }
  return { ok: true, object: copy, rewritten };
}

function setAt(root: unknown, path: ReadonlyArray<string | number>, value: string): void {
  let node = root as Record<string | number, unknown>;
  for (const key of path.slice(0, -1)) node = node[key] as Record<string | number, unknown>;
  const last = path[path.length - 1];
  if (last !== undefined) node[last] = value;
}
