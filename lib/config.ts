import type { z } from 'zod';

/**
 * Configuration from flags and environment, the same way for every Flotilla process: a flag
 * `--kebab-case[=value]` or the environment variable `FLOTILLA_UPPER_SNAKE` names a key of the zod
 * object schema (flags win); zod parses everything once and every problem is reported together.
 */

function camel(flag: string): string {
  return flag.replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase());
}

/** The environment variable of a config key: `cacheDir` -> `FLOTILLA_CACHE_DIR`. */
export function envName(key: string): string {
  return `FLOTILLA_${key.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`;
}

/** Parses `argv` and `env` with `schema`; throws `invalid <what> configuration: ...` naming each problem. */
export function parseConfig<S extends z.ZodObject>(schema: S, argv: readonly string[], env: NodeJS.ProcessEnv, what: string): z.output<S> {
  const raw: Record<string, unknown> = {};
  for (const key of Object.keys(schema.shape)) {
    const value = env[envName(key)];
    if (value !== undefined) raw[key] = value;
  }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (!arg.startsWith('--')) throw new Error(`unexpected argument ${arg}`);
    const eq = arg.indexOf('=');
    const name = camel(arg.slice(2, eq < 0 ? undefined : eq));
    raw[name] = eq < 0 ? argv[++i] : arg.slice(eq + 1);
  }
  const known = new Set(Object.keys(schema.shape));
  const problems = Object.keys(raw)
    .filter((k) => !known.has(k))
    .map((k) => `${k}: unknown option`);
  const parsed = schema.safeParse(Object.fromEntries(Object.entries(raw).filter(([k]) => known.has(k))));
  if (!parsed.success) problems.push(...parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`));
  if (problems.length > 0 || !parsed.success) throw new Error(`invalid ${what} configuration: ${problems.join('; ')}`);
  return parsed.data;
}
