import type { Bundle, BundleDeployment, BundleResource, BundleVersionEntry, GitRepo } from '../lib/api/index.js';
import { resourcesToFiles, type BundleFile } from '../lib/bundle/index.js';
import type { KubeClient, KubeObject } from '../lib/kube/client.js';
import { bundleRepository, versionTag, type Reference } from '../lib/oci/index.js';
import { readContentObject } from './content-objects.js';
import { contentsOfDeploymentID } from './history.js';
import type { RegistrySession, StorageRegistry } from './ports.js';
import type { SupplyChain } from './supplychain.js';

/**
 * Storage migration from etcd to a registry: the versions etcd holds besides the current commit's move too
 * (docs/storage.md). Where etcd holds a version: inline in the Bundle (its current contents), inline in a
 * BundleDeployment (a staged rollout's cluster not updated yet, a rolled-back cluster), or in a content
 * Secret (a version the history retains since an earlier move from a registry, controller/content-objects.ts).
 * Each is pushed under its `v<N>` tag with the metadata of its history entry (commit, commit time, contents
 * ID; the GitRepo's source and encryption key), so the artifact, which is deterministic, has the digest the
 * version had in the registry it came from: rollback pins and digests named in status stay valid. A version
 * only a BundleDeployment holds gets the next sequence after the history's. The history is then rewritten
 * with the digests pushed (the same ones, unless the source URL or the key changed since), and the rollout
 * planner moves the BundleDeployments that stay on such a version to the registry by contents ID
 * (controller/migrate-versions.ts rehomeSpec). A version whose files are nowhere is dropped from the history.
 */

type BundleLike = Pick<Bundle, 'spec' | 'status'> & KubeObject;

/** One version etcd holds that moves to the registry. */
export interface EtcdVersion {
  version: number;
  contentsID: string;
  /** Its history entry, when the history lists it. */
  entry?: BundleVersionEntry;
  /** Its files, when known without reading a content Secret. */
  files?: BundleFile[];
}

/** The current commit's contents, stored by the migration's normal push. */
export interface CurrentContents {
  contentsID: string;
  files: readonly BundleFile[];
}

/**
 * The versions etcd holds for `bundle` (pure): every history entry with a contents ID (its files from the
 * current commit, the Bundle or a BundleDeployment when one holds them inline, else left to a content
 * Secret), then the contents only BundleDeployments hold, numbered after the history. Oldest first.
 */
export function etcdVersions(bundle: BundleLike, deployments: readonly Pick<BundleDeployment, 'spec'>[], current: CurrentContents): EtcdVersion[] {
  const inline = new Map<string, BundleResource[]>();
  if (bundle.spec.contentsID && bundle.spec.resources) inline.set(bundle.spec.contentsID, bundle.spec.resources);
  for (const bd of deployments) {
    const id = contentsOfDeploymentID(bd.spec.deploymentID);
    if (id && !bd.spec.oci && bd.spec.resources && !inline.has(id)) inline.set(id, bd.spec.resources);
  }
  const filesOf = (id: string): BundleFile[] | undefined => {
    if (id === current.contentsID) return [...current.files];
    const resources = inline.get(id);
    return resources ? resourcesToFiles(resources) : undefined;
  };
  const out: EtcdVersion[] = [];
  const seen = new Set<string>();
  const history = [...(bundle.status?.history ?? [])].sort((a, b) => a.version - b.version);
  for (const entry of history) {
    if (!entry.contentsID) continue;
    const files = filesOf(entry.contentsID);
    out.push({ version: entry.version, contentsID: entry.contentsID, entry, ...(files ? { files } : {}) });
    seen.add(entry.contentsID);
  }
  let next = (history.at(-1)?.version ?? 0) + 1;
  for (const bd of deployments) {
    const id = contentsOfDeploymentID(bd.spec.deploymentID);
    if (!id || bd.spec.oci || id === current.contentsID || seen.has(id)) continue;
    const files = filesOf(id);
    if (!files) continue;
    seen.add(id);
    out.push({ version: next++, contentsID: id, files });
  }
  return out;
}

/** A version pushed to the registry. */
export interface PushedVersion {
  version: number;
  contentsID: string;
  digest: string;
  pushed: boolean;
  entry?: BundleVersionEntry;
  files: number;
  size: number;
}

/** What a bundle's move from etcd did: the versions in the registry, the history to write, the digests to protect. */
export interface MovedFromEtcd {
  moved: number;
  history: BundleVersionEntry[];
  /** Digests of versions BundleDeployments run (retention keeps them). */
  protect: string[];
}

/** The history after the move (pure): each moved version with the digest it has in the registry. */
export function historyInRegistry(pushed: readonly PushedVersion[]): BundleVersionEntry[] {
  return pushed.map((p) => ({
    ...(p.entry ?? {}),
    version: p.version,
    digest: p.digest,
    contentsID: p.contentsID,
    files: p.files,
    size: p.size,
  }));
}

/** Pushes one bundle's etcd versions into `repository` of `session`; the GitRepo's source and key go into the metadata. */
export async function pushEtcdVersions(
  session: Pick<RegistrySession, 'pushAt' | 'sign'>,
  registry: StorageRegistry,
  repo: GitRepo & KubeObject,
  chain: SupplyChain,
  bundleName: string,
  versions: readonly (EtcdVersion & { files: BundleFile[] })[],
): Promise<PushedVersion[]> {
  const namespace = repo.metadata.namespace ?? 'default';
  const repository: Reference = bundleRepository(registry.reference, namespace, bundleName);
  const owner = `GitRepo ${namespace}/${repo.metadata.name}, bundle ${bundleName}`;
  const out: PushedVersion[] = [];
  if (!session.pushAt) return out;
  for (const v of versions) {
    const meta = {
      bundleName,
      bundleNamespace: namespace,
      source: repo.spec.repo,
      ...(v.entry?.commit ? { revision: v.entry.commit } : {}),
      ...(v.entry?.commitTime ? { commitTime: v.entry.commitTime } : {}),
      contentsID: v.contentsID,
      ...(chain.encryption ? { encryptWith: chain.encryption.key } : {}),
    };
    const result = await session.pushAt(repository, v.files, meta, versionTag(v.version), owner);
    if (chain.signer && session.sign) await session.sign(repository, result.digest, chain.signer);
    const size = v.files.reduce((n, f) => n + f.content.length, 0);
    out.push({
      version: v.version,
      contentsID: v.contentsID,
      digest: result.digest,
      pushed: result.pushed,
      files: v.files.length,
      size,
      ...(v.entry ? { entry: v.entry } : {}),
    });
  }
  return out;
}

/**
 * Moves the versions etcd holds for bundle `bundleName` (see the module comment): reads the content Secrets
 * the other sources do not cover, pushes through `push` (the store session's `storeVersions`), and returns
 * the history and the digests BundleDeployments run.
 */
export async function moveEtcdVersions(
  push: (bundleName: string, versions: readonly (EtcdVersion & { files: BundleFile[] })[]) => Promise<PushedVersion[]>,
  kube: Pick<KubeClient, 'get'>,
  bundleName: string,
  previous: BundleLike,
  deployments: readonly Pick<BundleDeployment, 'spec'>[],
  current: CurrentContents,
): Promise<MovedFromEtcd> {
  const namespace = previous.metadata.namespace ?? 'default';
  const ready: (EtcdVersion & { files: BundleFile[] })[] = [];
  for (const v of etcdVersions(previous, deployments, current)) {
    const files = v.files ?? (await readContentObject(kube, namespace, bundleName, v.contentsID).then((r) => (r ? resourcesToFiles(r) : undefined)));
    if (files) ready.push({ ...v, files });
  }
  const pushed = await push(bundleName, ready);
  const running = new Set(deployments.map((bd) => contentsOfDeploymentID(bd.spec.deploymentID)));
  return {
    moved: pushed.filter((p) => p.pushed).length,
    history: historyInRegistry(pushed),
    protect: pushed.filter((p) => running.has(p.contentsID)).map((p) => p.digest),
  };
}
