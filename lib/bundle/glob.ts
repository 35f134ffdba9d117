/**
 * A small glob matcher for GitRepo `paths` and `.fleetignore` lines (no dependency, same result on every
 * Node version; `path.matchesGlob` is still experimental in Node 20).
 *
 * Syntax, matched against `/`-separated relative paths:
 * - `*` any run of characters except `/`; `?` one character except `/`;
 * - `[abc]`, `[a-z]`, `[!a-z]` / `[^a-z]` one character of (or not of) a class, never `/`;
 * - `**` as a whole segment: zero or more segments (`apps/**` matches `apps` and everything below it);
 * - `\x` the character `x` literally.
 * A pattern with an unterminated `[` is invalid.
 */

/** Thrown (as a plain Error; callers wrap it with the file or field it came from) for an invalid pattern. */
export class GlobSyntaxError extends Error {}

const REGEXP_SPECIAL = /[.*+?^${}()|[\]\\/]/g;

function escapeRegExp(text: string): string {
  return text.replace(REGEXP_SPECIAL, '\\$&');
}

/** Translates one path segment of a glob (no `/`) into a regular-expression source. */
function segmentSource(segment: string, pattern: string): string {
  let out = '';
  for (let i = 0; i < segment.length; i++) {
    const ch = segment[i] as string;
    if (ch === '\\') {
      const next = segment[i + 1];
      if (next === undefined) throw new GlobSyntaxError(`pattern "${pattern}" ends with a lone backslash`);
      out += escapeRegExp(next);
      i++;
    } else if (ch === '*') {
      out += '[^/]*';
    } else if (ch === '?') {
      out += '[^/]';
    } else if (ch === '[') {
      const end = segment.indexOf(']', i + 2);
      if (end < 0) throw new GlobSyntaxError(`pattern "${pattern}" has an unterminated "["`);
      let body = segment.slice(i + 1, end);
      const negated = body.startsWith('!') || body.startsWith('^');
      if (negated) body = body.slice(1);
      const cls = body.replace(/[\\\]^]/g, '\\$&');
      out += negated ? `(?!/)[^${cls}]` : `[${cls}]`;
      i = end;
    } else {
      out += escapeRegExp(ch);
    }
  }
  return out;
}

/** Compiles a glob into an anchored RegExp over `/`-separated relative paths. */
export function globToRegExp(pattern: string): RegExp {
  const segments = pattern.split('/').filter((s, _i, all) => s !== '' || all.length === 1);
  let source = '';
  segments.forEach((segment, index) => {
    const last = index === segments.length - 1;
    if (segment === '**') {
      // Zero or more whole segments, with the separators that go with them.
      source += last ? (index === 0 ? '.*' : '(?:/.*)?') : index === 0 ? '(?:.*/)?' : '(?:/.*)?/';
      return;
    }
    const prevWasGlobstar = index > 0 && segments[index - 1] === '**';
    if (index > 0 && !prevWasGlobstar) source += '/';
    source += segmentSource(segment, pattern);
  });
  return new RegExp(`^${source}$`);
}

/** True if `path` (relative, `/`-separated, no leading `./`) matches the glob `pattern`. */
export function matchGlob(pattern: string, path: string): boolean {
  return globToRegExp(pattern).test(path);
}

/** True if the pattern uses any glob syntax (otherwise it names one path literally). */
export function hasGlobSyntax(pattern: string): boolean {
  return /[*?[\\]/.test(pattern);
}
