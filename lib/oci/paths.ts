/**
 * Paths of files inside a bundle (layer titles). Registry content is untrusted: a title is accepted only
 * if it is a clean relative path that stays inside the bundle on every platform `oras pull` runs on.
 */

/** The longest path accepted, in UTF-8 bytes. */
export const MAX_PATH_BYTES = 4096;
/** The longest single path segment accepted, in UTF-8 bytes (common file-system limit). */
export const MAX_SEGMENT_BYTES = 255;

/**
 * Why `path` is not a clean relative bundle path, or undefined if it is. Rejected: empty, too long,
 * control characters, backslashes, absolute paths (`/x`, `C:x`), empty segments (`a//b`, `a/`), `.` and `..`.
 */
export function bundlePathProblem(path: string): string | undefined {
  if (path === '') return 'is empty';
  if (Buffer.byteLength(path, 'utf8') > MAX_PATH_BYTES) return `is longer than ${MAX_PATH_BYTES} bytes`;
  // biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is this check's purpose
  if (/[\u0000-\u001f\u007f]/.test(path)) return 'contains a control character';
  if (path.includes('\\')) return 'contains a backslash';
  if (path.startsWith('/')) return 'is absolute';
  if (/^[A-Za-z]:/.test(path)) return 'starts with a drive letter';
  for (const segment of path.split('/')) {
    if (segment === '') return 'has an empty segment ("//" or a trailing "/")';
    if (segment === '..') return 'contains ".." (it would leave the bundle)';
    if (segment === '.') return 'contains a "." segment (not a clean path)';
    if (Buffer.byteLength(segment, 'utf8') > MAX_SEGMENT_BYTES) return `has a segment longer than ${MAX_SEGMENT_BYTES} bytes`;
  }
  return undefined;
}

/**
 * The first conflict among clean paths, or undefined: a duplicate, or a path that is both a file and a
 * directory of another (`a` and `a/b`), which no file system can hold.
 */
export function pathConflict(paths: readonly string[]): { path: string; problem: string } | undefined {
  const files = new Set<string>();
  for (const p of paths) {
    if (files.has(p)) return { path: p, problem: 'appears twice' };
    files.add(p);
  }
  for (const p of paths) {
    const segments = p.split('/');
    for (let i = 1; i < segments.length; i++) {
      const dir = segments.slice(0, i).join('/');
      if (files.has(dir)) return { path: p, problem: `is inside "${dir}", which is also a file` };
    }
  }
  return undefined;
}

/** Orders paths by their UTF-8 bytes (the same order in every language, unlike UTF-16 comparison). */
export function compareUtf8(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}
