import { posix } from 'node:path';
import { StallingError } from '../errors.js';
import { Reason } from '../api/constants.js';
import { GlobSyntaxError, globToRegExp } from './glob.js';

/**
 * `.fleetignore` support, with Fleet's documented semantics:
 * - one glob per line, matched against the *base name* of every file and directory at any depth below
 *   the directory that holds the `.fleetignore` (so `foo.yaml` ignores `./foo.yaml` and `./a/b/foo.yaml`);
 * - a line `dir/*` ignores directories named `dir` (and so everything in them);
 * - empty lines and lines starting with an unescaped `#` are skipped; trailing spaces are dropped unless
 *   escaped with `\`; `\` escapes any character (`\#x` matches a file named `#x`);
 * - several `.fleetignore` files add up: a file's rules apply to its directory and everything below it,
 *   never to sibling directories. Flotilla reads them from the checkout root down to each bundle.
 * Negation (`!pattern`) is not supported (Fleet does not support it either): such a line matches names
 * starting with `!`.
 */

/** Name of the ignore file looked for in every directory. */
export const IGNORE_FILE = '.fleetignore';

/** One parsed `.fleetignore` line. */
export interface IgnoreRule {
  /** Matches a base name. */
  readonly name: RegExp;
  /** Only directories (the `dir/*` form). */
  readonly dirOnly: boolean;
}

/** The rules in force in one directory: its own plus those of every ancestor up to the checkout root. */
export class IgnoreRules {
  private constructor(private readonly rules: readonly IgnoreRule[]) {}

  /** No rules: nothing is ignored. */
  static readonly none = new IgnoreRules([]);

  /**
   * Returns the rules for a child directory: these rules plus the lines of its `.fleetignore` (`text`,
   * undefined when there is none). `file` is the repository-relative path, used in error messages.
   */
  extend(text: string | undefined, file: string): IgnoreRules {
    if (text === undefined) return this;
    return new IgnoreRules([...this.rules, ...parseIgnoreFile(text, file)]);
  }

  /** True if an entry with this base name (a directory if `isDir`) is ignored. */
  ignores(baseName: string, isDir: boolean): boolean {
    return this.rules.some((rule) => (isDir || !rule.dirOnly) && rule.name.test(baseName));
  }
}

/** Drops unescaped trailing spaces (and a trailing CR) from a line. */
function trimLine(line: string): string {
  let end = line.length;
  while (end > 0 && (line[end - 1] === ' ' || line[end - 1] === '\r' || line[end - 1] === '\t')) {
    if (end >= 2 && line[end - 2] === '\\') break;
    end--;
  }
  return line.slice(0, end);
}

/** Parses the text of one `.fleetignore`; an invalid glob is a StallingError naming file and line. */
export function parseIgnoreFile(text: string, file: string): IgnoreRule[] {
  const rules: IgnoreRule[] = [];
  text.split('\n').forEach((raw, index) => {
    const line = trimLine(raw).replace(/^\s+/, '');
    if (line === '' || line.startsWith('#')) return;
    const dirOnly = line.endsWith('/*') && !line.endsWith('\\/*');
    let pattern = dirOnly ? line.slice(0, -2) : line;
    // `dir/` names a directory too; any other path separator is matched against the base name only.
    if (pattern.endsWith('/')) pattern = pattern.slice(0, -1);
    const baseNamePattern = posix.basename(pattern) || pattern;
    try {
      rules.push({ name: globToRegExp(baseNamePattern), dirOnly: dirOnly || line.endsWith('/') });
    } catch (err) {
      if (!(err instanceof GlobSyntaxError)) throw err;
      throw new StallingError(Reason.InvalidBundle, `${file}:${index + 1}: ${err.message}`, { cause: err });
    }
  });
  return rules;
}
