import { parseArgs } from 'node:util';
import { API_VERSION, Label, type Bundle, type BundleDeployment, type GitRepo } from '../lib/api/index.js';
import { KubeClient, type KubeObject } from '../lib/kube/client.js';
import {
  ANNOTATION_CREATED,
  ANNOTATION_REVISION,
  OCI_MANIFEST_MEDIA_TYPE,
  bundleRepository,
  listVersions,
  parseBundleManifest,
  type Reference,
  type RegistryClient,
  type RegistryEvent,
} from '../lib/oci/index.js';
import { pushCredentials, registryClient } from '../controller/store.js';
import { contentsOfDeploymentID, versionOf } from '../controller/history.js';
import type { RenderIO } from './render.js';
import { loadKubeConfig } from './status.js';
import { table } from './table.js';

/**
 * `flotilla history GITREPO|BUNDLE`: every retained version of a bundle, read from its OCI repository
 * (tags v1, v2, ...; manifest annotations give the commit and its date; layer digests give the files
 * changed against the previous version), with the clusters that run each version now (from their
 * BundleDeployments' applied deployment IDs). Also the shared helpers of `flotilla rollback` and `diff`.
 */

export const HISTORY_USAGE = `Usage: flotilla history GITREPO|BUNDLE [-n NAMESPACE] [--kubeconfig FILE] [--context NAME]

Lists every retained version of a bundle (or of each bundle of a GitRepo): its sequence, manifest digest,
git commit and commit date, files changed against the previous version, size, and the clusters that run
it now. Needs OCI storage (spec.ociRegistry); reads the registry with the GitRepo's credentials.

Options:
  -n, --namespace NS      namespace of the GitRepo or Bundle (default fleet-default)
      --kubeconfig FILE   kubeconfig to use (default $KUBECONFIG or ~/.kube/config)
      --context NAME      kubeconfig context
  -h, --help              print this help

Exit codes: 0 ok, 1 failure (not found, no OCI storage, registry error), 2 usage error.
`;

type Obj<T> = T & KubeObject;
/** A Bundle object as the CLI reads it. */
export type BundleObj = Obj<Bundle>;

/** A usage error: exit code 2. */
export class UsageError extends Error {}

/** One version of a bundle, as read from its registry repository. */
export interface VersionInfo {
  version: number;
  digest: string;
  commit?: string | undefined;
  commitTime?: string | undefined;
  /** File path -> layer digest and size. */
  files: Map<string, { digest: string; size: number }>;
  size: number;
}

/** Files that differ between two versions, by layer digest (no blob is fetched). */
export interface FileChanges {
  added: string[];
  removed: string[];
  modified: string[];
}

/** Compares two versions' files by path and layer digest. */
export function fileChanges(from: VersionInfo['files'] | undefined, to: VersionInfo['files']): FileChanges {
  const before = from ?? new Map();
  const changes: FileChanges = { added: [], removed: [], modified: [] };
  for (const [path, f] of to) {
    const old = before.get(path);
    if (!old) changes.added.push(path);
    else if (old.digest !== f.digest) changes.modified.push(path);
  }
  for (const path of before.keys()) if (!to.has(path)) changes.removed.push(path);
  return changes;
}

/** The Bundles `name` stands for in `namespace`: that Bundle, else every Bundle of that GitRepo. Throws naming what is missing. */
export async function bundlesNamed(kube: KubeClient, namespace: string, name: string): Promise<BundleObj[]> {
  const bundle = await kube.get<BundleObj>({ apiVersion: API_VERSION, kind: 'Bundle', namespace, name });
  if (bundle) return [bundle];
  const repo = await kube.get<Obj<GitRepo>>({ apiVersion: API_VERSION, kind: 'GitRepo', namespace, name });
  if (!repo) throw new Error(`no Bundle or GitRepo ${namespace}/${name} (use -n NAMESPACE for another namespace)`);
  const all = await kube.list<BundleObj>({ apiVersion: API_VERSION, kind: 'Bundle', namespace });
  const bundles = all.items.filter((b) => b.metadata.labels?.[Label.RepoName] === name);
  if (bundles.length === 0) throw new Error(`GitRepo ${namespace}/${name} has no Bundles yet`);
  return bundles.sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
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
  const registry = repo?.spec.ociRegistry;
  if (!bundle.spec.oci || !registry) {
    throw new Error(`${where} is stored inline (etcd mode): only bundles in an OCI registry (GitRepo spec.ociRegistry) keep versions`);
  }
  const client = registryClient(registry, await pushCredentials(kube, namespace, registry), onEvent);
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

const short = (digest: string) => digest.replace(/^sha256:/, '').slice(0, 12);

function changesText(c: FileChanges, first: boolean): string {
  if (first) return 'initial';
  const parts = [...c.added.map((p) => `+${p}`), ...c.modified.map((p) => `~${p}`), ...c.removed.map((p) => `-${p}`)];
  return parts.length === 0 ? 'none' : parts.join(' ');
}

/** The history table of one bundle. */
export async function historyReport(kube: KubeClient, bundle: BundleObj): Promise<string> {
  const { client, repository } = await openBundleRepository(kube, bundle);
  try {
    const versions = await readVersions(client, repository);
    const running = clustersByVersion(bundle, await deploymentsOf(kube, bundle), versions);
    const rollback = bundle.spec.rollback;
    const rows = versions.map((v, i) => [
      `v${v.version}${v.digest === bundle.spec.oci?.digest ? '*' : ''}${rollback?.version === v.version ? ' (rollback)' : ''}`,
      short(v.digest),
      (v.commit ?? '-').slice(0, 12),
      v.commitTime ?? '-',
      changesText(fileChanges(versions[i - 1]?.files, v.files), i === 0),
      String(v.size),
      (running.get(v.version) ?? []).join(',') || '-',
    ]);
    const head = `BUNDLE ${bundle.metadata.namespace}/${bundle.metadata.name} (${repository.registry}/${repository.repository}; * = newest from git)\n`;
    return `${head}${table(['VERSION', 'DIGEST', 'COMMIT', 'DATE', 'CHANGED', 'SIZE', 'CLUSTERS'], rows)}`;
  } finally {
    await client.close();
  }
}

/** The common options of the release commands. */
export const KUBE_OPTIONS = {
  kubeconfig: { type: 'string' },
  context: { type: 'string' },
  namespace: { type: 'string', short: 'n' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** Runs `flotilla history`. */
export async function runHistory(argv: string[], io: RenderIO): Promise<number> {
  // biome-ignore lint/suspicious/noImplicitAnyLet: typed by the parseArgs call that assigns it below
  let parsed;
  try {
    parsed = parseArgs({ args: argv, allowPositionals: true, options: KUBE_OPTIONS });
    if (!parsed.values.help && parsed.positionals.length !== 1) throw new UsageError('expected one GITREPO or BUNDLE name');
  } catch (err) {
    io.stderr.write(`flotilla history: ${(err as Error).message}\n\n${HISTORY_USAGE}`);
    return 2;
  }
  if (parsed.values.help) {
    io.stdout.write(HISTORY_USAGE);
    return 0;
  }
  let kube: KubeClient | undefined;
  try {
    kube = await KubeClient.fromKubeConfig(loadKubeConfig(parsed.values.kubeconfig, parsed.values.context));
    const bundles = await bundlesNamed(kube, parsed.values.namespace ?? 'fleet-default', parsed.positionals[0] as string);
    for (const b of bundles) io.stdout.write(`${await historyReport(kube, b)}\n`);
    return 0;
  } catch (err) {
    io.stderr.write(`flotilla history: ${(err as Error).message}\n`);
    return 1;
  } finally {
    await kube?.close();
  }
}
