import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { BundleFile } from '../../lib/bundle/manifest.js';

/** Every regular file under `dir`, as bundle files with `/`-separated paths relative to `dir`, sorted. */
export async function filesUnder(dir: string, prefix = ''): Promise<BundleFile[]> {
  const out: BundleFile[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const rel = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isDirectory()) out.push(...(await filesUnder(join(dir, entry.name), rel)));
    else if (entry.isFile()) out.push({ path: rel, content: await readFile(join(dir, entry.name)) });
  }
  return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}
