/**
 * Flotilla's own version, from the package.json that ships with the code (the repository's, or /app's in
 * the image), so that agents can report what they run and the controller can log what it is.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let cached: string | undefined;

/**
 * The `version` of the nearest package.json named "flotilla" above this file; "unknown" when none is
 * found (a bundled copy without its package.json).
 */
export function flotillaVersion(): string {
  if (cached !== undefined) return cached;
  cached = 'unknown';
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: unknown; version?: unknown };
      if (pkg.name === 'flotilla' && typeof pkg.version === 'string') {
        cached = pkg.version;
        break;
      }
    } catch {
      /* no package.json here: look further up */
    }
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  return cached;
}
