import { parseArgs } from 'node:util';
import { KubeClient } from '../lib/kube/client.js';
import { IMAGES_LOCK_PATH, parseLock, type ImagesLock } from '../lib/images/lock.js';
import { pullBundle } from '../lib/oci/index.js';
import type { RenderIO } from './render.js';
import { loadKubeConfig } from './status.js';
import { KUBE_OPTIONS, UsageError, bundlesNamed, openBundleRepository, type BundleObj } from './history.js';

/** `flotilla images BUNDLE|GITREPO`: the images lock of the version each Bundle pins (docs/airgap.md). */
export const IMAGES_USAGE = `Usage: flotilla images BUNDLE|GITREPO [-n NAMESPACE] [--json] [--kubeconfig FILE] [--context NAME]

Prints the images lock of the bundle version each Bundle pins: every image its objects reference, the
digest it was resolved to when the version was built, its platforms, and where it was relocated (or
"local": the cluster's own registry, KEP-1755). Reads the version from the registry and verifies it.

Options:
  -n, --namespace NS   namespace of the Bundle or GitRepo (default fleet-default)
      --json           print the lock as JSON
      --kubeconfig FILE, --context NAME
  -h, --help           print this help

Exit codes: 0 ok, 1 failure (no lock, registry error), 2 usage error.
`;

/** The lock as a table, one image per line. */
export function formatLock(bundle: string, digest: string, lock: ImagesLock): string {
  const lines = [`BUNDLE ${bundle} @ ${digest}`, 'IMAGE\tDIGEST\tPLATFORMS\tRELOCATED'];
  for (const i of lock.images) {
    lines.push(
      [i.image, i.local ? 'local' : (i.digest ?? '-'), (i.platforms ?? []).join(',') || '-', i.local ? 'local registry (KEP-1755)' : (i.relocated ?? '-')].join(
        '\t',
      ),
    );
  }
  for (const u of lock.unlocked ?? []) lines.push(`(not rendered by the controller: ${u})`);
  return `${lines.join('\n')}\n`;
}

async function lockOf(kube: KubeClient, bundle: BundleObj): Promise<{ digest: string; lock: ImagesLock }> {
  const where = `Bundle ${bundle.metadata.namespace}/${bundle.metadata.name}`;
  const { client } = await openBundleRepository(kube, bundle);
  try {
    const pulled = await pullBundle(client, bundle.spec.oci?.reference ?? '');
    const file = pulled.files.find((f) => f.path === IMAGES_LOCK_PATH);
    if (!file) throw new Error(`${where}: version ${pulled.digest} has no images lock (set GitRepo spec.images or fleet.yaml images)`);
    return { digest: pulled.digest, lock: parseLock(file.content, where) };
  } finally {
    await client.close();
  }
}

/** Runs `flotilla images`. */
export async function runImages(argv: string[], io: RenderIO): Promise<number> {
  // biome-ignore lint/suspicious/noImplicitAnyLet: typed by the parseArgs call that assigns it below
  let parsed;
  try {
    parsed = parseArgs({ args: argv, allowPositionals: true, options: { ...KUBE_OPTIONS, json: { type: 'boolean' } } });
    if (!parsed.values.help && parsed.positionals.length !== 1) throw new UsageError('expected one BUNDLE or GITREPO name');
  } catch (err) {
    io.stderr.write(`flotilla images: ${(err as Error).message}\n\n${IMAGES_USAGE}`);
    return 2;
  }
  if (parsed.values.help) {
    io.stdout.write(IMAGES_USAGE);
    return 0;
  }
  let kube: KubeClient | undefined;
  try {
    kube = await KubeClient.fromKubeConfig(loadKubeConfig(parsed.values.kubeconfig, parsed.values.context));
    for (const b of await bundlesNamed(kube, parsed.values.namespace ?? 'fleet-default', parsed.positionals[0] as string)) {
      const { digest, lock } = await lockOf(kube, b);
      io.stdout.write(parsed.values.json ? `${JSON.stringify({ bundle: b.metadata.name, digest, lock })}\n` : formatLock(b.metadata.name, digest, lock));
    }
    return 0;
  } catch (err) {
    io.stderr.write(`flotilla images: ${(err as Error).message}\n`);
    return 1;
  } finally {
    await kube?.close();
  }
}
