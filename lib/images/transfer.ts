import { Reason } from '../api/constants.js';
import { ArtifactError, type Descriptor, type RegistryClient } from '../oci/index.js';
import { CopySession, IMAGE_MANIFEST_TYPES, manifestParts } from './copy.js';
import { AIRGAP_ANNOTATION, type LayoutReader, type LayoutWriter } from './layout.js';
import { parseReference } from '../oci/index.js';

/**
 * Moving images and bundle versions across an air gap (`flotilla airgap export` / `import`): from registries
 * into an OCI layout, and from a layout into one private registry, keeping every digest. Both first read
 * every manifest (small) to know the whole work, then move blobs with progress, then write manifests
 * children first, so nothing is visible half-copied. Import is resumable: a blob or manifest the registry
 * already has is skipped, so running it again after an interruption only sends what is missing.
 */

/** Progress of a transfer: blobs and bytes done of the totals known after the manifests were read. */
export interface TransferProgress {
  blobsDone: number;
  blobsTotal: number;
  bytesDone: number;
  bytesTotal: number;
  /** What was just done, e.g. "blob sha256:… (12.0 MiB) of team/app". */
  what: string;
}

/** A manifest with its children (an index's manifests) and blobs (config and layers). */
interface ManifestNode {
  desc: Descriptor;
  bytes: Buffer;
  children: ManifestNode[];
  blobs: Descriptor[];
}

type ManifestGetter = (desc: Descriptor | string) => Promise<{ bytes: Buffer; mediaType: string; digest: string }>;

async function planTree(get: ManifestGetter, top: Descriptor | string, where: string, depth = 0): Promise<ManifestNode> {
  if (depth > 2) throw new ArtifactError(Reason.InvalidBundle, `${where}: indexes nested deeper than 2`);
  const fetched = await get(top);
  const parts = manifestParts(fetched, `${where}@${fetched.digest}`);
  const children: ManifestNode[] = [];
  for (const c of parts.children) children.push(await planTree(get, c, where, depth + 1));
  return { desc: { mediaType: parts.mediaType, digest: fetched.digest, size: fetched.bytes.length }, bytes: fetched.bytes, children, blobs: parts.blobs };
}

function postOrder(node: ManifestNode, out: ManifestNode[] = []): ManifestNode[] {
  for (const c of node.children) postOrder(c, out);
  out.push(node);
  return out;
}

function blobsOf(node: ManifestNode): Descriptor[] {
  return postOrder(node).flatMap((n) => n.blobs);
}

/** One top-level thing to export: an image or a bundle version, by digest, in its registry. */
export interface ExportItem {
  client: RegistryClient;
  repository: string;
  digest: string;
  /** index.json annotations ({@link AIRGAP_ANNOTATION}). */
  annotations: Record<string, string>;
  /** The top manifest's bytes when they were already read (a referrers API answer, stored under no digest). */
  manifest?: { bytes: Buffer; mediaType: string };
}

/** What an export wrote. */
export interface ExportSummary {
  entries: number;
  manifests: number;
  blobs: number;
  bytes: number;
}

/**
 * Writes every item (its manifests and blobs, each blob once) into `writer` and finishes the layout with an
 * index.json entry per item. Blobs are downloaded through the client's verified blob cache.
 */
export async function exportToLayout(items: ExportItem[], writer: LayoutWriter, onProgress?: (p: TransferProgress) => void): Promise<ExportSummary> {
  const trees: Array<{ item: ExportItem; tree: ManifestNode }> = [];
  for (const item of items) {
    const where = `${item.client.registry}/${item.repository}`;
    const get: ManifestGetter = async (d) =>
      d === item.digest && item.manifest
        ? { ...item.manifest, digest: item.digest }
        : await item.client.getManifest(item.repository, typeof d === 'string' ? d : d.digest, { accept: IMAGE_MANIFEST_TYPES });
    trees.push({ item, tree: await planTree(get, item.digest, where) });
  }
  const blobs = new Map<string, { desc: Descriptor; item: ExportItem }>();
  for (const { item, tree } of trees) for (const b of blobsOf(tree)) if (!blobs.has(b.digest)) blobs.set(b.digest, { desc: b, item });
  const p: TransferProgress = {
    blobsDone: 0,
    blobsTotal: blobs.size,
    bytesDone: 0,
    bytesTotal: [...blobs.values()].reduce((n, b) => n + b.desc.size, 0),
    what: '',
  };
  for (const { desc, item } of blobs.values()) {
    const file = await item.client.fetchBlob(item.repository, desc, `blob ${desc.digest} of ${item.client.registry}/${item.repository}`);
    await writer.put(desc, { file });
    p.blobsDone++;
    p.bytesDone += desc.size;
    onProgress?.({ ...p, what: `blob ${desc.digest.slice(0, 19)} of ${item.repository}` });
  }
  let manifests = 0;
  const index: Descriptor[] = [];
  const seen = new Set<string>();
  for (const { item, tree } of trees) {
    for (const n of postOrder(tree)) {
      if (!writer.has(n.desc.digest)) manifests++;
      await writer.put(n.desc, n.bytes);
    }
    const key = JSON.stringify([tree.desc.digest, item.annotations]);
    if (!seen.has(key)) index.push({ ...tree.desc, annotations: item.annotations });
    seen.add(key);
  }
  await writer.finish(index);
  return { entries: index.length, manifests, blobs: blobs.size, bytes: p.bytesTotal };
}

/** What an import did. */
export interface ImportSummary {
  entries: number;
  manifestsPushed: number;
  manifestsPresent: number;
  blobsUploaded: number;
  bytesUploaded: number;
  blobsSkipped: number;
  blobsMounted: number;
  /** Every top reference written, `registry/repository@digest` (with its tag when it had one). */
  references: string[];
}

/** The destination repository (under `namespace`) and tag of an index.json entry; an ArtifactError when it names none. */
export function importTarget(entry: Descriptor, namespace: string, where: string): { repository: string; tag: string | undefined } {
  const a = entry.annotations ?? {};
  let repository = a[AIRGAP_ANNOTATION.repository];
  let tag = a[AIRGAP_ANNOTATION.tag];
  if (repository === undefined && a[AIRGAP_ANNOTATION.refName] !== undefined) {
    try {
      const ref = parseReference(a[AIRGAP_ANNOTATION.refName] as string);
      repository = ref.repository;
      tag ??= ref.tag;
    } catch {
      repository = undefined;
    }
  }
  if (repository === undefined || !/^[a-z0-9]+([._/-]+[a-z0-9]+)*$/.test(repository) || repository.includes('..')) {
    throw new ArtifactError(
      Reason.InvalidBundle,
      `${where}: index.json entry ${entry.digest} names no repository (annotation ${AIRGAP_ANNOTATION.repository} or a full ${AIRGAP_ANNOTATION.refName})`,
    );
  }
  const ns = namespace.replace(/^\/+|\/+$/g, '');
  return { repository: ns === '' ? repository : `${ns}/${repository}`, tag: tag && /^[\w][\w.-]{0,127}$/.test(tag) ? tag : undefined };
}

async function pushBlobs(
  reader: LayoutReader,
  dst: RegistryClient,
  plans: Array<{ repository: string; tree: ManifestNode }>,
  session: CopySession,
  onProgress?: (p: TransferProgress) => void,
): Promise<void> {
  const work = plans.flatMap(({ repository, tree }) => [...new Map(blobsOf(tree).map((b) => [b.digest, b])).values()].map((desc) => ({ repository, desc })));
  const p: TransferProgress = { blobsDone: 0, blobsTotal: work.length, bytesDone: 0, bytesTotal: work.reduce((n, w) => n + w.desc.size, 0), what: '' };
  for (const { repository, desc } of work) {
    let how = 'present';
    if ((await dst.blobSize(repository, desc.digest)) === desc.size) session.stats.blobsSkipped++;
    else {
      const from = session.holderOf(desc.digest);
      if (from !== undefined && from !== repository && (await dst.mountBlob(repository, desc.digest, from))) {
        session.stats.blobsMounted++;
        how = 'mounted';
      } else {
        const file = await reader.blobFile(desc);
        try {
          if ((await dst.pushBlob(repository, desc, { file })) === 'uploaded') {
            session.stats.blobsUploaded++;
            session.stats.bytesUploaded += desc.size;
            how = 'uploaded';
          } else session.stats.blobsSkipped++;
        } finally {
          await reader.discard(file);
        }
      }
    }
    session.holds(desc.digest, repository);
    p.blobsDone++;
    p.bytesDone += desc.size;
    onProgress?.({ ...p, what: `blob ${desc.digest.slice(0, 19)} ${how} in ${repository}` });
  }
}

/**
 * Pushes every index.json entry of `reader` into `dst` under `namespace` (see {@link importTarget}), keeping
 * digests: every blob and manifest is verified against its digest before it is sent, and the digest the
 * registry computes for each manifest is checked. Resumable (see the module comment).
 */
export async function importLayout(
  reader: LayoutReader,
  dst: RegistryClient,
  namespace: string,
  onProgress?: (p: TransferProgress) => void,
): Promise<ImportSummary> {
  const entries = await reader.index();
  const plans: Array<{ repository: string; tag: string | undefined; tree: ManifestNode }> = [];
  for (const entry of entries) {
    const { repository, tag } = importTarget(entry, namespace, reader.where);
    const get: ManifestGetter = async (d) => {
      const desc = typeof d === 'string' ? { ...entry, digest: d } : d;
      return { bytes: await reader.manifest(desc), mediaType: desc.mediaType, digest: desc.digest };
    };
    plans.push({ repository, tag, tree: await planTree(get, entry, reader.where) });
  }
  const session = new CopySession();
  await pushBlobs(reader, dst, plans, session, onProgress);
  const summary: ImportSummary = {
    entries: entries.length,
    manifestsPushed: 0,
    manifestsPresent: 0,
    blobsUploaded: session.stats.blobsUploaded,
    bytesUploaded: session.stats.bytesUploaded,
    blobsSkipped: session.stats.blobsSkipped,
    blobsMounted: session.stats.blobsMounted,
    references: [],
  };
  for (const { repository, tag, tree } of plans) {
    for (const n of postOrder(tree)) {
      if (await dst.hasManifest(repository, n.desc.digest)) summary.manifestsPresent++;
      else {
        const got = await dst.putManifest(repository, n.desc.digest, n.bytes, n.desc.mediaType);
        if (got !== n.desc.digest) {
          throw new ArtifactError(
            Reason.ArtifactTampered,
            `${dst.registry}/${repository}: the registry stored manifest ${n.desc.digest} as ${got}; it changes what it is sent`,
          );
        }
        summary.manifestsPushed++;
      }
    }
    if (tag !== undefined) await dst.putManifest(repository, tag, tree.bytes, tree.desc.mediaType);
    summary.references.push(`${dst.registry}/${repository}${tag ? `:${tag}` : ''}@${tree.desc.digest}`);
  }
  return summary;
}
