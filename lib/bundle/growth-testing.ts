import { StallingError } from '../errors.js';
import type { BundleFile } from './manifest.js';

/** Test helpers for the growth budget of overlay patches (growth.ts): bundles grown to an exact size. */

/** A ConfigMap with data {v: "1"}. */
export const BASE = 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: base\ndata:\n  v: "1"\n';
/** Nodes of BASE: the object, apiVersion, kind, metadata, name, data, v. */
export const BASE_NODES = 7;

/**
 * JSON Patch operations that make BASE exactly `total` nodes: `copy` /data into itself while it fits
 * (each doubles it: the k-th copy, `c{k}`, adds 2^(k+1) nodes), then copies of the `c{k}` that still fit,
 * then single values.
 */
export function patchToNodes(total: number): unknown[] {
  const ops: unknown[] = [];
  let size = BASE_NODES;
  let k = 0;
  for (; size + 2 ** (k + 1) <= total; k++) {
    ops.push({ op: 'copy', from: '/data', path: `/data/c${k}` });
    size += 2 ** (k + 1);
  }
  let j = 0;
  for (let i = k - 1; i >= 0; i--) {
    if (size + 2 ** (i + 1) > total) continue;
    ops.push({ op: 'copy', from: `/data/c${i}`, path: `/data/d${j++}` });
    size += 2 ** (i + 1);
  }
  for (; size < total; size++) ops.push({ op: 'add', path: `/data/e${j++}`, value: 1 });
  return ops;
}

/** BASE and an overlay `grow` whose patch file holds `patch` (`ext` yaml: the text itself), and `more` files. */
export function grownBundle(patch: unknown, ext = 'json', more: BundleFile[] = []): BundleFile[] {
  const text = ext === 'json' ? JSON.stringify(patch) : String(patch);
  return [{ path: 'base.yaml', content: Buffer.from(BASE) }, ...more, { path: `overlays/grow/base_patch.${ext}`, content: Buffer.from(text) }];
}

/** Runs `fn`; returns the StallingError it threw (a refusal by a content limit), or undefined when it passed. */
export function refusal(fn: () => unknown): StallingError | undefined {
  try {
    fn();
    return undefined;
  } catch (err) {
    if (err instanceof StallingError) return err;
    throw err;
  }
}
