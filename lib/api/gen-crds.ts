/**
 * Writes crds/<plural>.flotilla.dev.yaml from lib/api (`npm run crds`), or with `--check` exits 1 if any
 * file would change or is not generated (`npm run crds:check`, run by CI).
 */
import { readdir, readFile, writeFile, mkdir } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderCrdFiles } from './crd.js';

/** The crds/ directory of this checkout. */
export const CRDS_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '../../crds');

/** One difference between crds/ and what the schemas generate. */
export interface CrdDrift {
  /** File name in crds/. */
  file: string;
  /** What is wrong, with the first differing line when the file exists. */
  problem: string;
}

/** Compares crds/ with the generated files; returns the differences (empty when up to date). */
export async function checkCrds(dir = CRDS_DIR): Promise<CrdDrift[]> {
  const expected = renderCrdFiles();
  const present = (await readdir(dir).catch(() => [] as string[])).filter((f) => f.endsWith('.yaml'));
  const drift: CrdDrift[] = [];
  for (const [file, text] of expected) {
    const actual = await readFile(join(dir, file), 'utf8').catch(() => undefined);
    if (actual === undefined) drift.push({ file, problem: 'missing' });
    else if (actual !== text) drift.push({ file, problem: `differs from line ${firstDifferentLine(actual, text)}` });
  }
  for (const file of present) {
    if (!expected.has(file)) drift.push({ file, problem: 'not generated from lib/api (stale or hand-written)' });
  }
  return drift;
}

function firstDifferentLine(a: string, b: string): number {
  const left = a.split('\n');
  const right = b.split('\n');
  let i = 0;
  while (i < left.length && i < right.length && left[i] === right[i]) i++;
  return i + 1;
}

/** Writes every generated CRD into `dir`; returns the file names written. */
export async function writeCrds(dir = CRDS_DIR): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const files = renderCrdFiles();
  for (const [file, text] of files) await writeFile(join(dir, file), text);
  return [...files.keys()];
}

async function main(args: string[]): Promise<number> {
  if (args.includes('--check')) {
    const drift = await checkCrds();
    for (const d of drift) process.stderr.write(`crds/${d.file}: ${d.problem}\n`);
    if (drift.length) {
      process.stderr.write('crds/ is out of date with lib/api: run `npm run crds` and commit the result.\n');
      return 1;
    }
    process.stdout.write('crds/ is up to date.\n');
    return 0;
  }
  for (const file of await writeCrds()) process.stdout.write(`wrote crds/${file}\n`);
  return 0;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
