import { API_VERSION, Label, type Bundle, type BundleDeployment, type BundleDeploymentOptions, type GitRepo } from '../lib/api/index.js';
import { customizationFor, mergeOptions, type ClusterInfo } from '../lib/bundle/target.js';
import { renderOptionsFrom } from '../lib/bundle/render.js';
import type { BundleFile, RenderedObject } from '../lib/bundle/manifest.js';
import { fileChanges, objectDiff, type FileChanges, type VersionFile } from '../lib/bundle/versiondiff.js';
import { BundleRenderer } from '../lib/isolate/bundle.js';
import { rewriteOrExplain, splitImagesLock, type RewriteContext } from '../lib/images/rewrite.js';
import type { Logger } from 'pino';
import type { KubeClient, KubeObject } from '../lib/kube/client.js';
import {
  ANNOTATION_CREATED,
  ANNOTATION_REVISION,
  OCI_MANIFEST_MEDIA_TYPE,
  bundleRepository,
  listVersions,
  parseBundleManifest,
  pinnedReference,
  pullBundle,
  type Reference,
  type RegistryClient,
  type RegistryEvent,
} from '../lib/oci/index.js';
import { DEFAULT_KUBE_VERSION, DEFAULT_RENDER_LIMITS, engineOf, inApplyOrder, renderContent, renderToolsFromEnv } from '../lib/render/index.js';
import { baseOptions } from '../controller/bundle.js';
import { contentsOfDeploymentID, versionOf } from '../controller/history.js';
import { resolveStorage } from '../controller/storageconfig.js';
import { pushCredentials, registryClient } from '../controller/store.js';
import type { ReleasesPort } from './bundlepage.js';

/**
 * A bundle's versions read from its OCI repository, shared by `flotilla history`, `flotilla diff`,
 * `flotilla rollback` and the dashboard's Bundle page (it lives here, not in cli/, because the in-cluster
 * dashboard runs from the image, which carries lib/, controller/ and dashboard/ only). Tags v1, v2, ...;
 * manifest annotations give the commit and its date; layer digests give the files changed; the clusters
 * running each version come from their BundleDeployments' applied deployment IDs. Every read is made with
 * the caller's Kubernetes identity (the GitRepo's registry credentials are read with it) and no blob is
 * fetched except by {@link diffVersions}.
 */

type Obj<T> = T & KubeObject;
/** A Bundle object as read from the API. */
export type BundleObj = Obj<Bundle>;

/** One version of a bundle, as read from its registry repository. */
export interface VersionInfo {
  version: number;
  digest: string;
  commit?: string | undefined;
  commitTime?: string | undefined;
  /** File path -> layer digest and size. */
  files: Map<string, VersionFile>;
  size: number;
}

/** A registry client for a Bundle's repository, with its GitRepo's credentials; throws for an etcd-mode bundle. */
export async function openBundleRepository(
  kube: KubeClient,
  bundle: BundleObj,
  onEvent?: (event: RegistryEvent) => void,
): Promise<{ client: RegistryClient; repository: Reference }> {
  const namespace = bundle.metadata.namespace ?? 'default';
  const where = `Bundle ${namespace}/${bundle.metadata.name}`;
  const repoName = bundle.metadata.labels?.[Label.RepoName];
  const repo = repoName ? await kube.get<Obj<GitRepo>>({ apiVersion: API_VERSION, kind: 'GitRepo', namespace, name: repoName }) : undefined;
  const storage = repo
    ? await resolveStorage(repo, { kube, hostField: 'host', pushCredentials: (ns, registry) => pushCredentials(kube, ns, registry) })
    : undefined;
  if (!bundle.spec.oci || storage?.mode !== 'oci') {
    throw new Error(`${where} is stored inline (etcd mode): only bundles in an OCI registry (GitRepo spec.ociRegistry or ociRegistrySecret) keep versions`);
  }
  const { registry } = storage;
  const client = registryClient(registry, storage.credentials, onEvent);
  return { client, repository: bundleRepository(registry.reference, namespace, bundle.metadata.name) };
}

/** Reads one version (by tag `v<N>` or digest) from the registry: its manifest only, no blob. */
export async function readVersion(client: RegistryClient, repository: Reference, version: number, reference = `v${version}`): Promise<VersionInfo> {
  const fetched = await client.getManifest(repository.repository, reference, { accept: [OCI_MANIFEST_MEDIA_TYPE] });
  const manifest = parseBundleManifest(fetched.bytes, `${repository.registry}/${repository.repository}:${reference}`);
  const files = new Map(manifest.layers.map((l) => [l.path, { digest: l.descriptor.digest, size: l.descriptor.size }]));
  return {
    version,
    digest: fetched.digest,
    commit: manifest.annotations[ANNOTATION_REVISION],
    commitTime: manifest.annotations[ANNOTATION_CREATED],
    files,
    size: [...files.values()].reduce((n, f) => n + f.size, 0),
  };
}

/** Every retained version of a bundle repository, oldest first. */
export async function readVersions(client: RegistryClient, repository: Reference): Promise<VersionInfo[]> {
  const versions = await listVersions(client, repository);
  const out: VersionInfo[] = [];
  for (const v of versions) out.push(await readVersion(client, repository, v.sequence, v.tag));
  return out;
}

/** The BundleDeployments of a Bundle (in every cluster namespace). */
export async function deploymentsOf(kube: KubeClient, bundle: BundleObj): Promise<Obj<BundleDeployment>[]> {
  const list = await kube.list<Obj<BundleDeployment>>(
    { apiVersion: API_VERSION, kind: 'BundleDeployment' },
    `${Label.BundleName}=${bundle.metadata.name},${Label.BundleNamespace}=${bundle.metadata.namespace ?? ''}`,
  );
  return list.items;
}

/** Which clusters run which version now: version -> cluster names (from applied deployment IDs and the Bundle's history). */
export function clustersByVersion(bundle: BundleObj, deployments: readonly Obj<BundleDeployment>[], versions: readonly VersionInfo[]): Map<number, string[]> {
  const byDigest = new Map(versions.map((v) => [v.digest, v.version]));
  const out = new Map<number, string[]>();
  for (const bd of deployments) {
    const applied = bd.status?.appliedDeploymentID;
    if (!applied) continue;
    const pinned = bd.spec.oci?.digest;
    // The version the agent applied: the pinned one when it applied the current spec, else by contents.
    const version =
      applied === bd.spec.deploymentID && pinned && byDigest.has(pinned)
        ? byDigest.get(pinned)
        : versionOf(bundle.status?.history, contentsOfDeploymentID(applied) ?? '', pinned);
    if (version === undefined) continue;
    const names = out.get(version) ?? [];
    names.push(bd.metadata.labels?.[Label.Cluster] ?? bd.metadata.namespace ?? '');
    out.set(version, names.sort());
  }
  return out;
}

/** One row of a bundle's history. */
export interface HistoryEntry {
  version: number;
  digest: string;
  /** The version the Bundle points at (the newest from git). */
  newest: boolean;
  /** The version spec.rollback pins. */
  rollback: boolean;
  commit?: string | undefined;
  commitTime?: string | undefined;
  /** Files changed against the previous retained version; undefined for the first one. */
  changes?: FileChanges | undefined;
  size: number;
  files: number;
  /** Clusters that run it now. */
  clusters: string[];
}

/** A bundle's history: its repository and every retained version, oldest first. */
export interface BundleHistory {
  repository: string;
  entries: HistoryEntry[];
}

/** How {@link readVersionsIncluding} reads a tag list again that lacks the version the Bundle points at. */
export interface RereadOptions {
  /** Reads in all (default 3). */
  attempts?: number;
  /** Between two reads (default 1 s). */
  delayMs?: number;
  /** Told of each read that lacked the digest. */
  onMissing?: (attempt: number) => void;
  sleep?: (ms: number) => Promise<void>;
}

/**
 * Runs `read` until the versions it returns include `digest` (the one the Bundle points at, always kept by
 * retention), at most `attempts` times: a registry may list tags partially (OCI distribution spec, "Listing
 * Tags"), and a history without the current version would mislead. Returns the last read either way.
 */
export async function readVersionsIncluding(
  digest: string | undefined,
  read: () => Promise<VersionInfo[]>,
  options: RereadOptions = {},
): Promise<VersionInfo[]> {
  const attempts = Math.max(1, options.attempts ?? 3);
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  let versions = await read();
  for (let attempt = 1; attempt < attempts && digest !== undefined && !versions.some((v) => v.digest === digest); attempt++) {
    options.onMissing?.(attempt);
    await sleep(options.delayMs ?? 1000);
    versions = await read();
  }
  return versions;
}

/** Reads the history of one bundle (what `flotilla history` prints). */
export async function bundleHistory(kube: KubeClient, bundle: BundleObj, reread: RereadOptions = {}): Promise<BundleHistory> {
  const { client, repository } = await openBundleRepository(kube, bundle);
  try {
    const versions = await readVersionsIncluding(bundle.spec.oci?.digest, () => readVersions(client, repository), reread);
    const running = clustersByVersion(bundle, await deploymentsOf(kube, bundle), versions);
    const entries = versions.map(
      (v, i): HistoryEntry => ({
        version: v.version,
        digest: v.digest,
        newest: v.digest === bundle.spec.oci?.digest,
        rollback: bundle.spec.rollback?.version === v.version,
        commit: v.commit,
        commitTime: v.commitTime,
        changes: i === 0 ? undefined : fileChanges(versions[i - 1]?.files, v.files),
        size: v.size,
        files: v.files.size,
        clusters: running.get(v.version) ?? [],
      }),
    );
    return { repository: `${repository.registry}/${repository.repository}`, entries };
  } finally {
    await client.close();
  }
}

/** The objects `cluster` gets from `withLock`, images rewritten from the version's images lock as the agent does (docs/airgap.md). */
async function renderFor(
  renderer: BundleRenderer,
  bundle: BundleObj,
  withLock: BundleFile[],
  cluster: ClusterInfo,
  label: string,
  images: RewriteContext,
): Promise<RenderedObject[]> {
  const { files, lock } = splitImagesLock(withLock, `${label} of bundle ${bundle.metadata.name}`);
  const objects = await renderPlain(renderer, bundle, files, cluster, label);
  return lock ? rewriteOrExplain(objects, lock, images, `the images lock of ${label}`).objects : objects;
}

async function renderPlain(renderer: BundleRenderer, bundle: BundleObj, files: BundleFile[], cluster: ClusterInfo, label: string): Promise<RenderedObject[]> {
  const customization = customizationFor(bundle.spec.targets, cluster);
  if (customization?.doNotDeploy) return [];
  const options: BundleDeploymentOptions = mergeOptions(baseOptions(bundle.spec), customization);
  if (engineOf(files, options).engine === 'yaml') return await renderer.render(files, renderOptionsFrom(options), label);
  const content = await renderContent(
    files,
    { bundleName: bundle.metadata.name, options },
    {
      name: cluster.name,
      namespace: bundle.metadata.namespace ?? 'fleet-default',
      labels: cluster.labels,
      capabilities: { kubeVersion: DEFAULT_KUBE_VERSION, apiVersions: [] },
    },
    { tools: renderToolsFromEnv(), ...DEFAULT_RENDER_LIMITS },
  );
  return inApplyOrder(content);
}

/** A version named by sequence or by manifest digest. */
export type VersionTarget = { version: number } | { digest: string };

/** Two versions compared (what `flotilla diff` prints). */
export interface VersionDiff {
  from: number;
  to: number;
  /** Files changed, from the manifests' layer digests. */
  changes: FileChanges;
  /** The object diff lines for the cluster (see lib/bundle/versiondiff.ts objectDiff; Secret values masked). */
  objects: string[];
  /** Blobs downloaded: layers both versions share are fetched once. */
  downloads: number;
}

/**
 * Compares two versions: the files that changed, then the objects `cluster` gets from each, rendered as the
 * agent renders them, images rewritten for the cluster described by `images` (its KEP-1755 host, its mirrors).
 */
export async function diffVersions(
  kube: KubeClient,
  bundle: BundleObj,
  from: VersionTarget,
  to: VersionTarget,
  cluster: ClusterInfo,
  images: RewriteContext = {},
): Promise<VersionDiff> {
  let downloads = 0;
  const { client, repository } = await openBundleRepository(kube, bundle, (e) => {
    if (e.type === 'blob-downloaded') downloads += 1;
  });
  const renderer = new BundleRenderer({ cacheBytes: 0 });
  try {
    const version = async (t: VersionTarget) =>
      'version' in t ? await readVersion(client, repository, t.version) : await readVersion(client, repository, 0, t.digest);
    const [a, b] = [await version(from), await version(to)];
    const pulled = async (digest: string) =>
      (await pullBundle(client, pinnedReference(repository, digest))).files.map((f) => ({ path: f.path, content: f.content }));
    const before = await renderFor(renderer, bundle, await pulled(a.digest), cluster, `v${a.version}`, images);
    const after = await renderFor(renderer, bundle, await pulled(b.digest), cluster, `v${b.version}`, images);
    return { from: a.version, to: b.version, changes: fileChanges(a.files, b.files), objects: objectDiff(before, after), downloads };
  } finally {
    await renderer.close();
    await client.close();
  }
}

/** The dashboard's {@link ReleasesPort}: reads the Bundle afresh, then its history or a diff, all with `kube` (the caller's credentials). */
export function kubeReleases(kube: KubeClient, log?: Pick<Logger, 'warn'>): ReleasesPort {
  const bundleNamed = (namespace: string, name: string) => kube.get<BundleObj>({ apiVersion: API_VERSION, kind: 'Bundle', namespace, name });
  return {
    async history(namespace, name) {
      const bundle = await bundleNamed(namespace, name);
      const onMissing = (attempt: number) =>
        log?.warn(
          { kind: 'Bundle', namespace, name, digest: bundle?.spec.oci?.digest, attempt },
          'the registry listed no version with the digest the Bundle points at; listing its tags again',
        );
      return bundle ? await bundleHistory(kube, bundle, { onMissing }) : undefined;
    },
    async diff(namespace, name, from, to, cluster) {
      const bundle = await bundleNamed(namespace, name);
      return bundle ? await diffVersions(kube, bundle, { version: from }, { version: to }, cluster) : undefined;
    },
  };
}
