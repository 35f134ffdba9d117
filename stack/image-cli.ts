/**
 * `npm run image -- [--registry HOST:PORT] [--ref REPO:TAG]`: builds Flotilla's image without Docker
 * (stack/image.ts), pushes it, runs its programs from the exported file system (chroot, as root on
 * this machine) and prints the reference, digest, sizes and build time. Without --registry it pushes to a
 * throwaway plain-HTTP registry of the stack (the build and the smoke check still run).
 */
import { join } from 'node:path';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { ensureBinaries } from './binaries.js';
import { buildImage, IMAGE_USER, smokeImage } from './image.js';
import { ensureNodeBinaries } from './node-binaries.js';
import { disposeRegistry, startRegistry, type RegistryHandle } from './registry.js';

function flag(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

async function main(args: string[]): Promise<void> {
  const bins = await ensureBinaries({ extras: true });
  const node = await ensureNodeBinaries();
  const work = await mkdtemp(join(tmpdir(), 'flotilla-image-'));
  let registry: RegistryHandle | undefined;
  try {
    let host = flag(args, '--registry');
    if (!host) {
      registry = await startRegistry({ mode: 'http', rootDir: join(work, 'registry') });
      host = registry.host;
    }
    const version = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
    const ref = `${host}/${flag(args, '--ref') ?? `flotilla:${version.version}`}`;
    const built = await buildImage({ crane: node.crane, helm: bins.helm, kustomize: bins.kustomize, ref, work });
    const smoke = await smokeImage({ crane: node.crane, ref, work });
    const mib = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MiB`;
    process.stdout.write(
      `image ${built.ref}@${built.digest}\n  size: ${mib(built.compressedBytes)} compressed, ${mib(built.unpackedBytes)} unpacked\n` +
        `  build time: ${(built.buildMs / 1000).toFixed(1)} s\n  smoke (chroot as ${IMAGE_USER}): ${smoke.join(' | ')}\n`,
    );
  } finally {
    if (registry) await disposeRegistry(registry);
    await rm(work, { recursive: true, force: true });
  }
}

main(process.argv.slice(2)).then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`[flotilla-image] ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
