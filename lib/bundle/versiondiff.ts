import yaml from 'js-yaml';
import type { RenderedObject } from './manifest.js';

/**
 * What changed between two versions of a bundle, as pure functions shared by `flotilla history`, `flotilla
 * diff` and the dashboard's Bundle page: files by layer digest, and rendered objects as YAML line diffs.
 * A Secret's values are never part of a diff: like `kubectl diff`, each value of `data` and `stringData`
 * is shown as `***`, or as `*** (before)` / `*** (after)` when it changed, so a diff says which keys
 * changed without showing them.
 */

/** A file of a version: its layer digest and size. */
export interface VersionFile {
  digest: string;
  size: number;
}

/** Files that differ between two versions, by layer digest (no blob is fetched). */
export interface FileChanges {
  added: string[];
  removed: string[];
  modified: string[];
}

/** Compares two versions' files by path and layer digest. */
export function fileChanges(from: ReadonlyMap<string, VersionFile> | undefined, to: ReadonlyMap<string, VersionFile>): FileChanges {
  const before = from ?? new Map<string, VersionFile>();
  const changes: FileChanges = { added: [], removed: [], modified: [] };
  for (const [path, f] of to) {
    const old = before.get(path);
    if (!old) changes.added.push(path);
    else if (old.digest !== f.digest) changes.modified.push(path);
  }
  for (const path of before.keys()) if (!to.has(path)) changes.removed.push(path);
  return changes;
}

/** Identity of a rendered object. */
export function objectKey(o: RenderedObject): string {
  const meta = (o.metadata ?? {}) as { namespace?: string; name?: string };
  return `${o.apiVersion}/${o.kind} ${meta.namespace ? `${meta.namespace}/` : ''}${meta.name ?? ''}`;
}

/** A line diff (longest common subsequence): lines only in `a` prefixed "- ", only in `b` "+ " (removals first). */
export function lineDiff(a: readonly string[], b: readonly string[]): string[] {
  const n = a.length;
  const m = b.length;
  const lcs: number[][] = Array.from({ length: n + 1 }, () => new Array<number>(m + 1).fill(0));
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      const row = lcs[i] as number[];
      row[j] = a[i] === b[j] ? (lcs[i + 1]?.[j + 1] ?? 0) + 1 : Math.max(lcs[i + 1]?.[j] ?? 0, row[j + 1] ?? 0);
    }
  }
  const out: string[] = [];
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[i] === b[j]) {
      i++;
      j++;
    } else if (i < n && (j >= m || (lcs[i + 1]?.[j] ?? 0) >= (lcs[i]?.[j + 1] ?? 0))) {
      out.push(`- ${a[i++]}`);
    } else {
      out.push(`+ ${b[j++]}`);
    }
  }
  return out;
}

/** The text a Secret value is replaced with. */
export const MASK = '***';
const SECRET_FIELDS = ['data', 'stringData'] as const;

const isSecret = (o: RenderedObject | undefined): boolean => o !== undefined && o.kind === 'Secret' && o.apiVersion === 'v1';

function masked(o: RenderedObject, other: RenderedObject | undefined, side: 'before' | 'after'): RenderedObject {
  const out: RenderedObject = { ...o };
  for (const field of SECRET_FIELDS) {
    const values = o[field];
    if (typeof values !== 'object' || values === null) continue;
    const theirs = (other?.[field] ?? {}) as Record<string, unknown>;
    out[field] = Object.fromEntries(
      Object.entries(values as Record<string, unknown>).map(([k, v]) => [
        k,
        other !== undefined && k in theirs && theirs[k] !== v ? `${MASK} (${side})` : MASK,
      ]),
    );
  }
  return out;
}

/**
 * Hides the values of a Secret (`v1/Secret` `data` and `stringData`); other objects are returned as they are.
 * With the same object from the other version, a value that differs there is marked `(before)` or `(after)`.
 */
export function maskSecret(o: RenderedObject, other: RenderedObject | undefined, side: 'before' | 'after'): RenderedObject {
  return isSecret(o) ? masked(o, isSecret(other) ? other : undefined, side) : o;
}

/** The object diff of two renders: removed, added, and changed objects with their YAML line diff; Secret values masked. */
export function objectDiff(before: readonly RenderedObject[], after: readonly RenderedObject[]): string[] {
  const dump = (o: RenderedObject) => yaml.dump(o, { noRefs: true, lineWidth: -1, sortKeys: true }).trimEnd().split('\n');
  const a = new Map(before.map((o) => [objectKey(o), o]));
  const b = new Map(after.map((o) => [objectKey(o), o]));
  const out: string[] = [];
  for (const [key, o] of a) if (!b.has(key)) out.push(`- ${key}`, ...dump(maskSecret(o, undefined, 'before')).map((l) => `    - ${l}`));
  for (const [key, o] of b) {
    const old = a.get(key);
    if (!old) out.push(`+ ${key}`, ...dump(maskSecret(o, undefined, 'after')).map((l) => `    + ${l}`));
    else {
      const lines = lineDiff(dump(maskSecret(old, o, 'before')), dump(maskSecret(o, old, 'after')));
      if (lines.length > 0) out.push(`~ ${key}`, ...lines.map((l) => `    ${l}`));
    }
  }
  return out;
}
