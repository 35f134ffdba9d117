import { join } from 'node:path';
import { type ArtifactFile, RegistryClient, pullBundleToDirectory, pushBundle } from '../../lib/oci/index.js';

/**
 * Flotilla's side of one throughput round, as both places that run it call it: the transfer worker
 * (transfer-worker.ts, a process of its own) and the benchmark's own process (`BENCH_TP_FLOTILLA=in-process`).
 * A fresh RegistryClient per operation, as a first push and a first pull meet the registry.
 */

/** Pushes `names` (relative to `src`) as a bundle to `repository` with tag v1; resolves to the pinned reference. */
export async function pushRound(registry: string, repository: string, src: string, names: readonly string[]): Promise<string> {
  const files: ArtifactFile[] = names.map((path) => ({ path, file: join(src, path) }));
  const client = new RegistryClient({ registry, basicHTTP: true });
  try {
    return (await pushBundle(client, repository, files, { bundleName: 'tp', bundleNamespace: 'bench' }, 'v1')).reference;
  } finally {
    await client.close();
  }
}

/** Pulls `reference` into the empty folder `out`, with an empty blob cache in `cacheDir`. */
export async function pullRound(registry: string, reference: string, out: string, cacheDir: string): Promise<void> {
  const client = new RegistryClient({ registry, basicHTTP: true, blobCacheDir: cacheDir });
  try {
    await pullBundleToDirectory(client, reference, out);
  } finally {
    await client.close();
  }
}
