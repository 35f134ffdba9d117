import { expect } from 'chai';
import { readdir, readFile } from 'node:fs/promises';
import { dirname, join, posix, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

/**
 * The import boundaries that keep the folders showing the architecture (docs/layout.md): lib/ is shared by
 * both sides and depends on neither; the controller and the agent never reach into each other; nothing
 * shipped depends on the tests, the benchmarks or a test file. Every import of every .ts file in the tree
 * is checked (static, type-only, re-exports, `import()` and `typeof import()`).
 */

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** Folders never walked: dependencies, build output, git's own data. */
const SKIPPED = new Set(['node_modules', 'dist', '.build', '.git', '.flotilla']);

/** Top-level folders whose code runs in a shipped program (the image, the `flotilla` command, `flotilla dev`). */
const SHIPPED = new Set(['lib', 'controller', 'agent', 'cli', 'stack', 'bin', 'dashboard']);

/**
 * Which top-level folders each top-level folder may not import. stack/ is refused to controller/ and agent/
 * too: the image carries only lib/, controller/ and agent/ (see the Dockerfile).
 */
const FORBIDDEN: Record<string, readonly string[]> = {
  lib: ['controller', 'agent', 'cli', 'stack', 'e2e', 'bench'],
  controller: ['agent', 'cli', 'stack', 'e2e', 'bench'],
  agent: ['controller', 'cli', 'stack', 'e2e', 'bench'],
  cli: ['e2e', 'bench'],
  stack: ['e2e', 'bench'],
  // The in-cluster dashboard runs from the image (lib/, controller/, agent/, dashboard/ only).
  dashboard: ['agent', 'cli', 'stack', 'e2e', 'bench'],
};

interface SourceFile {
  path: string;
  text: string;
}

function isTestFile(path: string): boolean {
  return /\.test\.[cm]?[jt]s$/.test(path);
}

/**
 * Lists the boundary violations in `files` (paths relative to the repository root, `/`-separated), one
 * line each: `importer imports specifier (rule)`. Only relative specifiers are checked; packages and
 * `node:` built-ins are outside the tree.
 */
function violations(files: readonly SourceFile[]): string[] {
  const found: string[] = [];
  for (const file of files) {
    const from = file.path.split('/')[0] ?? '';
    for (const { fileName: specifier } of ts.preProcessFile(file.text, true, true).importedFiles) {
      if (!specifier.startsWith('.')) continue;
      const target = posix.normalize(posix.join(posix.dirname(file.path), specifier));
      const to = target.split('/')[0] ?? '';
      if (to === from && !isTestFile(target)) continue;
      if (FORBIDDEN[from]?.includes(to)) found.push(`${file.path} imports ${specifier} (${from}/ may not import ${to}/)`);
      if (SHIPPED.has(from) && !isTestFile(file.path) && isTestFile(target)) {
        found.push(`${file.path} imports ${specifier} (shipped code may not import a test file)`);
      }
    }
  }
  return found;
}

async function walk(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    if (SKIPPED.has(entry.name)) continue;
    const full = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await walk(full)));
    else if (entry.isFile() && /\.[cm]?ts$/.test(entry.name) && !entry.name.endsWith('.d.ts')) out.push(full);
  }
  return out;
}

async function repositoryFiles(): Promise<SourceFile[]> {
  const paths = await walk(ROOT);
  return Promise.all(paths.map(async (p) => ({ path: relative(ROOT, p).split(sep).join('/'), text: await readFile(p, 'utf8') })));
}

describe('import boundaries', () => {
  it('holds for every .ts file in the repository', async () => {
    const files = await repositoryFiles();
    expect(
      files.map((f) => f.path),
      'the walk found the tree',
    ).to.include.members(['lib/config.ts', 'cli/dev.ts', 'controller/main.ts', 'agent/main.ts']);
    expect(violations(files), 'fix each import listed: move the code it needs to a folder it may import (lib/ for shared code)').to.deep.equal([]);
  });

  const cases: { name: string; path: string; text: string; broken: boolean }[] = [
    { name: 'lib importing the controller', path: 'lib/kube/x.ts', text: "import { a } from '../../controller/context.js';", broken: true },
    { name: 'lib importing the local fleet by type', path: 'lib/x.ts', text: "import type { Stack } from '../stack/stack.js';", broken: true },
    { name: 'lib importing the benchmarks dynamically', path: 'lib/x.ts', text: "const m = await import('../bench/report.js');", broken: true },
    { name: 'the agent importing the controller', path: 'agent/x.ts', text: "export { b } from '../controller/bundle.js';", broken: true },
    { name: 'the controller importing the agent', path: 'controller/x.ts', text: "type T = typeof import('../agent/content.js');", broken: true },
    { name: 'the controller importing the CLI', path: 'controller/x.ts', text: "import '../cli/table.js';", broken: true },
    {
      name: 'the CLI importing the e2e stack (the old layout)',
      path: 'cli/dev.ts',
      text: "import { ensureBinaries } from '../e2e/stack/binaries.js';",
      broken: true,
    },
    { name: 'the local fleet importing e2e support', path: 'stack/x.ts', text: "import { installCrds } from '../e2e/support/crds.js';", broken: true },
    { name: 'shipped code importing a test file in its own folder', path: 'lib/oci/x.ts', text: "import { fixture } from './client.test.js';", broken: true },
    {
      name: 'the CLI importing the local fleet and lib',
      path: 'cli/dev.ts',
      text: "import { x } from '../stack/net.js';\nimport { y } from '../lib/api/index.js';",
      broken: false,
    },
    { name: 'the controller and the agent importing lib', path: 'agent/x.ts', text: "import { y } from '../lib/kube/client.js';", broken: false },
    { name: 'a test importing another test', path: 'lib/a.test.ts', text: "import { helper } from './b.test.js';", broken: false },
    { name: 'e2e and bench importing anything', path: 'e2e/x.e2e.ts', text: "import '../bench/report.js';\nimport '../controller/main.js';", broken: false },
    { name: 'packages and built-ins', path: 'lib/x.ts', text: "import { request } from 'undici';\nimport { join } from 'node:path';", broken: false },
  ];
  for (const c of cases) {
    it(`${c.broken ? 'refuses' : 'allows'} ${c.name}`, () => {
      expect(violations([{ path: c.path, text: c.text }])).to.have.length(c.broken ? 1 : 0);
    });
  }
});
