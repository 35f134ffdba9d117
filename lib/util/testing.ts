import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/**
 * Runs `setup` (an ES module body, from the repository root, under tsx) in a fresh node process and returns
 * the CommonJS module files it loaded by then: how a test shows that importing a module does not load a
 * library it must not (each process's memory depends on it).
 */
export function modulesLoadedBy(setup: string): string[] {
  const script = `${setup}\nconst { createRequire } = await import('node:module');\nconsole.log(JSON.stringify(Object.keys(createRequire(import.meta.url).cache)));`;
  const out = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', cwd: ROOT });
  return JSON.parse(out.trim().split('\n').at(-1) ?? '[]') as string[];
}
