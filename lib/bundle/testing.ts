import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

/**
 * Test helpers for lib/bundle: build a directory tree in a fresh temporary directory.
 * A string value is a file's content; `{ symlink: target }` is a symbolic link.
 */
export type Tree = Record<string, string | Buffer | { symlink: string }>;

/** Creates a temporary directory holding `tree`; returns its path. */
export async function writeTree(tree: Tree): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'flotilla-bundle-'));
  for (const [path, value] of Object.entries(tree)) {
    const abs = join(root, path);
    await mkdir(dirname(abs), { recursive: true });
    if (typeof value === 'object' && !Buffer.isBuffer(value)) await symlink(value.symlink, abs);
    else await writeFile(abs, value);
  }
  return root;
}

/** Removes a directory made by {@link writeTree}. */
export async function removeTree(root: string): Promise<void> {
  await rm(root, { recursive: true, force: true });
}
