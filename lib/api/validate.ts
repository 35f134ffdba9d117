/**
 * Turning zod issues into messages that name the field, the way `kubectl` users expect:
 * `spec.targets[0].clusterSelector.matchLabels.env: expected string, received number`.
 */
import type { z } from 'zod';
import { StallingError } from '../errors.js';

/** Formats a zod path as `a.b[0].c` (keys that are not identifiers are quoted: `labels["x/y"]`). */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else if (typeof key === 'string' && /^[A-Za-z_$][A-Za-z0-9_$-]*$/.test(key)) out += out ? `.${key}` : key;
    else out += `[${JSON.stringify(String(key))}]`;
  }
  return out;
}

/** Message for a field that exists in Fleet but that Flotilla does not implement (yet). */
export type UnsupportedFields = Readonly<Record<string, string>>;

/**
 * Returns one line per problem, each starting with the field path (prefixed by `prefix` if given).
 * Unknown fields are reported one per line as "unknown field"; fields listed in `unsupported` get that
 * message instead, so users learn a Fleet feature is missing rather than that they made a typo.
 */
export function formatIssues(error: z.ZodError, prefix: readonly PropertyKey[] = [], unsupported: UnsupportedFields = {}): string[] {
  const lines: string[] = [];
  for (const issue of error.issues) {
    const path = [...prefix, ...issue.path];
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) {
        const where = formatPath([...path, key]);
        lines.push(`${where}: ${Object.hasOwn(unsupported, key) ? unsupported[key] : 'unknown field'}`);
      }
      continue;
    }
    lines.push(`${formatPath(path) || '(root)'}: ${issue.message}`);
  }
  return lines;
}

/**
 * Validates `value` against `schema` and returns the typed result, or throws a StallingError with
 * `reason` whose message starts with `what` (e.g. `GitRepo flotilla-default/app`) and lists every problem.
 */
export function validateOrThrow<S extends z.ZodType>(schema: S, value: unknown, what: string, reason: string): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  throw new StallingError(reason, `${what}: ${formatIssues(result.error).join('; ')}`, { cause: result.error });
}
