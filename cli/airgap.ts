import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { API_VERSION, Label, type GitRepo } from '../lib/api/index.js';
import { Clients } from '../controller/images.js';
import { KubeClient, type KubeObject } from '../lib/kube/client.js';
import { AIRGAP_ANNOTATION, LayoutReader, createLayout } from '../lib/images/layout.js';
import { IMAGES_LOCK_PATH, imageSource, parseLock, type ImagesLock } from '../lib/images/lock.js';
import { attachedManifests, type AttachedManifest } from '../lib/images/signatures.js';
import { readSecretData } from '../controller/store.js';
import { exportToLayout, importLayout, type ExportItem, type TransferProgress } from '../lib/images/transfer.js';
import {
  ANNOTATION_ENCRYPTION_KEY,
  RegistryClient,
  decryptLayer,
  formatReference,
  keyRingEntry,
  listVersions,
  parseBundleKey,
  parseReference,
  pullBundle,
  type PulledBundle,
  type Reference,
} from '../lib/oci/index.js';
import type { RenderIO } from './render.js';
import { loadKubeConfig } from './status.js';
import { KUBE_OPTIONS, UsageError, bundlesNamed, openBundleRepository, readVersion, type BundleObj } from './history.js';

/** `flotilla airgap export|import` (docs/airgap.md, "Across an air gap"). */
export const AIRGAP_USAGE = `Usage:
  flotilla airgap export GITREPO|BUNDLE... -o FILE.tar|DIR [--all-versions] [-n NAMESPACE] [--kubeconfig FILE] [--context NAME]
  flotilla airgap import FILE.tar|DIR --registry HOST[:PORT] [--namespace PATH] [--username USER --password-stdin]
                         [--ca-file PEM] [--insecure-skip-tls] [--plain-http]

export writes an OCI image layout (a tar archive when -o ends in .tar, else a directory) holding the bundle
version each Bundle pins (every retained version with --all-versions) and every image its images lock names,
by digest (a multi-platform image with every platform), and each version's cosign signatures (.sig tag)
and referrers. Encrypted versions travel as their ciphertext; no key is exported. Images are read from
their relocated copy when the GitRepo relocates them, else from their source, with the GitRepo's
spec.images access settings.

import pushes everything in a layout into one registry, keeping every digest: an image host/path:tag
becomes HOST/PATH/path:tag@digest, a bundle version HOST/PATH/<its repository>. Every blob and manifest is
verified before it is sent; what the registry already has is skipped, so an interrupted import is resumed
by running it again. Inside the gap, point the GitRepo's spec.images.sources[].mirror at HOST/PATH and its
relocation at HOST with imageNamespace PATH.

Options:
  -o, --output PATH       export: the layout to write (FILE.tar or a directory)
      --all-versions      export: every retained version, not only the pinned one
  -n, --namespace NS      export: namespace of the GitRepos/Bundles (default fleet-default);
                          import (as --namespace): repository path prefix in the registry
      --registry HOST     import: the registry to push to
      --username USER     import: registry user; the password is read from stdin (--password-stdin)
                          or from FLOTILLA_REGISTRY_PASSWORD
      --ca-file PEM       import: CA bundle that verifies the registry's certificate
      --insecure-skip-tls import: do not verify the certificate (tests only)
      --plain-http        import: plain HTTP (tests only)
  -h, --help              print this help

Exit codes: 0 ok, 1 failure (the message names the object, file or image and the cause), 2 usage error.
`;

const MiB = 1024 * 1024;

/** A one-line progress bar: `[#####-----] 5/10 blobs, 12.0/24.0 MiB  what`. */
export function progressLine(p: TransferProgress): string {
  const ratio = p.bytesTotal > 0 ? p.bytesDone / p.bytesTotal : p.blobsTotal > 0 ? p.blobsDone / p.blobsTotal : 1;
  const filled = Math.round(ratio * 20);
  return `[${'#'.repeat(filled)}${'-'.repeat(20 - filled)}] ${p.blobsDone}/${p.blobsTotal} blobs, ${(p.bytesDone / MiB).toFixed(1)}/${(p.bytesTotal / MiB).toFixed(1)} MiB  ${p.what}`;
}

function progressTo(io: RenderIO): (p: TransferProgress) => void {
  const tty = (io.stderr as { isTTY?: boolean }).isTTY === true;
  return (p) => io.stderr.write(tty ? `\r${progressLine(p)}\x1b[K${p.blobsDone === p.blobsTotal ? '\n' : ''}` : `${progressLine(p)}\n`);
}

async function repoOf(kube: KubeClient, bundle: BundleObj): Promise<(GitRepo & KubeObject) | undefined> {
  const name = bundle.metadata.labels?.[Label.RepoName];
  return name ? await kube.get<GitRepo & KubeObject>({ apiVersion: API_VERSION, kind: 'GitRepo', namespace: bundle.metadata.namespace, name }) : undefined;
}

/** The bundle versions and locked images of one Bundle, as export items (clients are closed by the caller). */
async function itemsOf(kube: KubeClient, bundle: BundleObj, allVersions: boolean, opened: Array<{ close(): Promise<void> }>): Promise<ExportItem[]> {
  const where = `Bundle ${bundle.metadata.namespace}/${bundle.metadata.name}`;
  const { client, repository } = await openBundleRepository(kube, bundle);
  opened.push(client);
  const pinned = parseReference(bundle.spec.oci?.reference ?? '').digest;
  const versions: Array<{ digest: string; tag?: string }> = allVersions
    ? await Promise.all(
        (await listVersions(client, repository)).map(async (v) => ({ digest: (await readVersion(client, repository, v.sequence, v.tag)).digest, tag: v.tag })),
      )
    : pinned
      ? [{ digest: pinned }]
      : [];
  if (versions.length === 0) throw new Error(`${where} pins no version yet: wait until its GitRepo is Ready`);
  const repo = await repoOf(kube, bundle);
  const clients = new Clients({ kube }, bundle.metadata.namespace ?? 'default', repo?.spec.images ?? {});
  opened.push(clients);
  const bundleName = `${bundle.metadata.namespace}/${bundle.metadata.name}`;
  const items: ExportItem[] = [];
  const images = new Map<string, ExportItem>();
  for (const v of versions) {
    items.push(bundleItem(client, repository, v, bundleName));
    for (const a of await attachedManifests(client, repository.repository, v.digest)) items.push(attachedItem(client, repository, a, bundleName));
    const lock = await lockOf(kube, bundle, await pullBundle(client, { ...repository, digest: v.digest }), `${where} version ${v.digest}`);
    for (const i of lock?.images ?? []) {
      if (i.local || !i.digest || images.has(`${i.image}@${i.digest}`)) continue;
      images.set(`${i.image}@${i.digest}`, await imageItem(clients, repo, i.image, i.digest, i.relocated, bundleName));
    }
  }
  return [...items, ...images.values()];
}

/**
 * The images lock of a pulled version. An encrypted version's lock is decrypted in memory with the key
 * the Bundle names (spec.oci.decryptionSecretName, "key" or "key-<id>"), only to learn which images to
 * export: the version's layers themselves are exported as the ciphertext they are, and no key is exported.
 */
async function lockOf(kube: KubeClient, bundle: BundleObj, pulled: PulledBundle, where: string): Promise<ImagesLock | undefined> {
  const file = pulled.files.find((f) => f.path === IMAGES_LOCK_PATH);
  if (!file) return undefined;
  const keyID = pulled.annotations[ANNOTATION_ENCRYPTION_KEY];
  if (keyID === undefined) return parseLock(file.content, where);
  const ns = bundle.metadata.namespace ?? 'default';
  const secret = bundle.spec.oci?.decryptionSecretName;
  if (!secret) throw new Error(`${where} is encrypted (key ${keyID}) but the Bundle names no decryptionSecretName: its images lock cannot be read`);
  const { data } = await readSecretData(kube, ns, secret, 'spec.encryption.secretRef');
  const named = `Secret ${ns}/${secret}`;
  const candidates = [data[keyRingEntry(keyID)], data.key].filter((v): v is string => v !== undefined).map((v) => parseBundleKey(v.trim(), named));
  const key = candidates.find((k) => k.id === keyID);
  if (!key)
    throw new Error(`${where}: its layers are encrypted under key ${keyID}, which ${named} no longer holds: export a version built with the current key`);
  return parseLock(decryptLayer(key, file.content, `${where}: ${IMAGES_LOCK_PATH}`), where);
}

function attachedItem(client: RegistryClient, repository: Reference, a: AttachedManifest, bundle: string): ExportItem {
  return {
    client,
    repository: repository.repository,
    digest: a.digest,
    manifest: { bytes: a.bytes, mediaType: a.mediaType },
    annotations: {
      [AIRGAP_ANNOTATION.refName]: `${repository.registry}/${repository.repository}:${a.tag}`,
      [AIRGAP_ANNOTATION.kind]: a.kind,
      [AIRGAP_ANNOTATION.repository]: repository.repository,
      [AIRGAP_ANNOTATION.bundle]: bundle,
      [AIRGAP_ANNOTATION.tag]: a.tag,
    },
  };
}

function bundleItem(client: RegistryClient, repository: Reference, v: { digest: string; tag?: string }, bundle: string): ExportItem {
  return {
    client,
    repository: repository.repository,
    digest: v.digest,
    annotations: {
      [AIRGAP_ANNOTATION.refName]: formatReference({ ...repository, digest: v.digest }),
      [AIRGAP_ANNOTATION.kind]: 'bundle',
      [AIRGAP_ANNOTATION.repository]: repository.repository,
      [AIRGAP_ANNOTATION.bundle]: bundle,
      ...(v.tag ? { [AIRGAP_ANNOTATION.tag]: v.tag } : {}),
    },
  };
}

async function imageItem(
  clients: Clients,
  repo: GitRepo | undefined,
  image: string,
  digest: string,
  relocated: string | undefined,
  bundle: string,
): Promise<ExportItem> {
  const src = imageSource(image);
  const tag = parseReference(image).tag;
  const relocation = repo?.spec.images?.relocation;
  const from =
    relocated && relocation
      ? { client: await clients.destination(relocation), repository: parseReference(relocated).repository }
      : { client: await clients.source(src.registry), repository: clients.sourceRepository(image) };
  return {
    ...from,
    digest,
    annotations: {
      [AIRGAP_ANNOTATION.refName]: image,
      [AIRGAP_ANNOTATION.kind]: 'image',
      [AIRGAP_ANNOTATION.repository]: src.repository,
      [AIRGAP_ANNOTATION.bundle]: bundle,
      ...(tag ? { [AIRGAP_ANNOTATION.tag]: tag } : {}),
    },
  };
}

async function runExport(argv: string[], io: RenderIO): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { ...KUBE_OPTIONS, output: { type: 'string', short: 'o' }, 'all-versions': { type: 'boolean' } },
  });
  if (values.help) return help(io);
  if (positionals.length === 0 || !values.output) throw new UsageError('expected GITREPO|BUNDLE... and -o FILE.tar|DIR');
  const kube = await KubeClient.fromKubeConfig(loadKubeConfig(values.kubeconfig, values.context));
  const opened: Array<{ close(): Promise<void> }> = [kube];
  const writer = await createLayout(values.output, values.output.endsWith('.tar'));
  try {
    const items: ExportItem[] = [];
    for (const name of positionals) {
      for (const b of await bundlesNamed(kube, values.namespace ?? 'fleet-default', name))
        items.push(...(await itemsOf(kube, b, values['all-versions'] ?? false, opened)));
    }
    const s = await exportToLayout(items, writer, progressTo(io));
    io.stdout.write(`exported ${s.entries} entries (${s.manifests} manifests, ${s.blobs} blobs, ${(s.bytes / MiB).toFixed(1)} MiB) to ${values.output}\n`);
    return 0;
  } catch (err) {
    await writer.abort();
    throw err;
  } finally {
    for (const o of opened.reverse()) await o.close();
  }
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '');
}

async function runImport(argv: string[], io: RenderIO, env: NodeJS.ProcessEnv): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      registry: { type: 'string' },
      namespace: { type: 'string', short: 'n' },
      username: { type: 'string' },
      'password-stdin': { type: 'boolean' },
      'ca-file': { type: 'string' },
      'insecure-skip-tls': { type: 'boolean' },
      'plain-http': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return help(io);
  if (positionals.length !== 1 || !values.registry) throw new UsageError('expected one FILE.tar|DIR and --registry HOST[:PORT]');
  const password = values['password-stdin'] ? await readStdin() : env.FLOTILLA_REGISTRY_PASSWORD;
  if (values.username && password === undefined) throw new UsageError('--username needs --password-stdin or FLOTILLA_REGISTRY_PASSWORD');
  const reader = await LayoutReader.open(positionals[0] as string);
  const client = new RegistryClient({
    registry: values.registry,
    basicHTTP: values['plain-http'] ?? false,
    insecureSkipTLS: values['insecure-skip-tls'] ?? false,
    ...(values['ca-file'] ? { caPem: await readFile(values['ca-file'], 'utf8') } : {}),
    ...(values.username ? { credentials: { username: values.username, password: password ?? '' } } : {}),
    userAgent: 'flotilla-airgap',
  });
  try {
    const s = await importLayout(reader, client, values.namespace ?? '', progressTo(io));
    for (const r of s.references) io.stdout.write(`${r}\n`);
    io.stdout.write(
      `imported ${s.entries} entries into ${values.registry}: ${s.manifestsPushed} manifests pushed, ${s.manifestsPresent} present; ${s.blobsUploaded} blobs uploaded (${(s.bytesUploaded / MiB).toFixed(1)} MiB), ${s.blobsSkipped} present, ${s.blobsMounted} mounted\n`,
    );
    return 0;
  } finally {
    await client.close();
    await reader.close();
  }
}

function help(io: RenderIO): number {
  io.stdout.write(AIRGAP_USAGE);
  return 0;
}

/** Runs `flotilla airgap export|import`. */
export async function runAirgap(argv: string[], io: RenderIO, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const [sub, ...rest] = argv;
  try {
    if (sub === 'export') return await runExport(rest, io);
    if (sub === 'import') return await runImport(rest, io, env);
    if (sub === '-h' || sub === '--help' || sub === 'help') return help(io);
    throw new UsageError(sub ? `unknown subcommand ${sub}` : 'expected export or import');
  } catch (err) {
    if (err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      io.stderr.write(`flotilla airgap: ${(err as Error).message}\n\n${AIRGAP_USAGE}`);
      return 2;
    }
    io.stderr.write(`flotilla airgap ${sub}: ${(err as Error).message}\n`);
    return 1;
  }
}
