import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve, sep } from 'node:path';
import type { BundleFile } from '../bundle/manifest.js';
import { invalidBundle } from '../bundle/manifest.js';

/**
 * A private temporary copy of a bundle's files for helm or kustomize to read, removed afterwards. Paths come
 * from the artifact (untrusted): one that would land outside the copy is refused.
 */
export async function withBundleCopy<T>(files: readonly BundleFile[], fn: (root: string) => Promise<T>): Promise<T> {
  const top = await mkdtemp(join(tmpdir(), 'flotilla-render-'));
  const root = join(top, 'bundle');
  try {
    await mkdir(root);
    for (const file of files) {
      const abs = resolve(root, file.path);
      if (!abs.startsWith(root + sep)) throw invalidBundle(file.path, undefined, 'is a path outside the bundle');
      await mkdir(dirname(abs), { recursive: true });
      await writeFile(abs, file.content);
    }
    return await fn(root);
  } finally {
    await rm(top, { recursive: true, force: true });
  }
}
