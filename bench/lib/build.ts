import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * Production runs compiled JavaScript (the Dockerfile compiles with tsc; the charts run
 * `node --enable-source-maps <controller|agent>/main.js`), not tsx: the benchmarks measure the same, so that
 * no TypeScript loader adds start-up time or memory. The sources are compiled into `bench/.build`
 * (ignored by git) once per run.
 */

/** The folder of the compiled sources below the repository root. */
export const BUILD_DIR = join('bench', '.build');

/**
 * Compiles the repository with tsc into `<root>/bench/.build`. Type errors elsewhere in a checkout that
 * others are editing do not stop the emit; only missing entry points do.
 */
export async function compileForBench(root: string, say: (m: string) => void): Promise<string> {
  const out = join(root, BUILD_DIR);
  await rm(out, { recursive: true, force: true });
  try {
    await run(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json', '--outDir', out], {
      cwd: root,
      maxBuffer: 32 << 20,
    });
  } catch (err) {
    const stdout = (err as { stdout?: string }).stdout ?? '';
    say(`tsc reported errors (the emitted JavaScript is used all the same):\n${stdout.split('\n').slice(0, 10).join('\n')}`);
  }
  for (const entry of ['controller/main.js', 'agent/main.js', 'bench/lib/tap.js', 'bench/lib/transfer-worker.js']) {
    if (!existsSync(join(out, entry))) throw new Error(`compiling for the benchmarks produced no ${join(out, entry)}`);
  }
  return out;
}
