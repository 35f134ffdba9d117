import { ConditionType, Label, type Bundle, type BundleDeployment, type GitRepo } from '../lib/api/index.js';
import type { Credentials } from '../lib/oci/index.js';
import { credentialsFromSecretData } from '../lib/oci/index.js';
import type { KubeClient, KubeObject } from '../lib/kube/client.js';
import { decodeSecretData, encodeSecretData } from '../lib/kube/secret.js';
import { contentSecretName } from './content-objects.js';
import { artifactRepository } from './migrate-versions.js';
import type { StorageRegistry } from './ports.js';

/**
 * Cleanup of the old storage after a migration (docs/storage.md). The policy is the GitRepo annotation
 * {@link OLD_STORAGE_ANNOTATION}: `delete` (the default, as Fleet deletes the content objects and OCI
 * artifacts nothing references any more) or `keep`. Nothing is deleted while any BundleDeployment of the
 * GitRepo still reads the old storage or has not been processed by its agent since it was switched.
 *
 * How the old registry is reached after the switch: when a migration away from a registry begins, the
 * controller records its address, TLS settings, the bundle repositories and the credentials it could read
 * (the storage Secret while it still names that registry, else an agent's copy next to a
 * BundleDeployment) in a Secret {@link oldStorageSecretName} owned by the GitRepo. The copy of old versions
 * and the cleanup read it; it is deleted once the status that records the finished cleanup is written.
 */

/** GitRepo annotation: what happens to the old storage after a migration, `keep` or `delete` (default). */
export const OLD_STORAGE_ANNOTATION = 'flotilla.dev/old-storage';
/** Type of the Secret recording the old registry. */
export const OLD_STORAGE_SECRET_TYPE = 'flotilla.dev/old-storage';

type GitRepoObject = GitRepo & KubeObject;
type SecretObject = KubeObject & { type?: string; data?: Record<string, string> };

/** The cleanup policy of `repo` (anything but `keep` deletes). */
export function cleanupPolicy(repo: Pick<KubeObject, 'metadata'>): 'keep' | 'delete' {
  return repo.metadata.annotations?.[OLD_STORAGE_ANNOTATION]?.trim() === 'keep' ? 'keep' : 'delete';
}

/** The name of the Secret recording GitRepo `repoName`'s old registry. */
export function oldStorageSecretName(repoName: string): string {
  return `${repoName.slice(0, 200)}-old-storage`;
}

/** The old registry as recorded: settings, repositories, credentials. */
export interface OldStorageRecord {
  registry: StorageRegistry;
  repositories: string[];
  credentials?: Credentials;
}

/** Reads the record of GitRepo `repoName`'s old registry, when there is one for `host`. */
export async function readOldStorage(kube: Pick<KubeClient, 'get'>, namespace: string, repoName: string, host?: string): Promise<OldStorageRecord | undefined> {
  const secret = await kube.get<SecretObject>({ apiVersion: 'v1', kind: 'Secret', namespace, name: oldStorageSecretName(repoName) });
  if (secret?.type !== OLD_STORAGE_SECRET_TYPE) return undefined;
  const data = decodeSecretData(secret.data);
  const settings = JSON.parse(data.settings ?? '{}') as { registry?: StorageRegistry; repositories?: string[] };
  if (!settings.registry || (host !== undefined && settings.registry.reference !== host)) return undefined;
  return {
    registry: settings.registry,
    repositories: settings.repositories ?? [],
    ...(data.username ? { credentials: { username: data.username, password: data.password ?? '' } } : {}),
  };
}

async function credentialsOf(kube: Pick<KubeClient, 'get'>, namespace: string, name: string, host: string): Promise<Credentials | undefined> {
  const secret = await kube.get<SecretObject>({ apiVersion: 'v1', kind: 'Secret', namespace, name });
  if (!secret) return undefined;
  const values = decodeSecretData(secret.data);
  if (values.reference !== undefined) {
    // A storage Secret: only while it still names this registry (never send credentials to another host).
    if (values.reference.trim().split('/')[0] !== host || !values.username) return undefined;
    return { username: values.username, password: values.password ?? '' };
  }
  try {
    return credentialsFromSecretData(secret.type, secret.data, host);
  } catch {
    return undefined;
  }
}

/**
 * Records the registry a migration moves `bundles` away from, `from` (the migration's `from`: a registry
 * reference, or etcd, which needs no record). Only Bundles still in that registry are read, so a Bundle
 * already switched (a resumed migration, or a reconcile that read an older status) never replaces the record
 * with the new registry; when none is left there, the record is kept as it is. Credentials: the Bundle's
 * Secret while it still names that registry, else the agents' copy of a BundleDeployment.
 */
export async function recordOldStorage(
  kube: Pick<KubeClient, 'get' | 'apply'>,
  fieldManager: string,
  repo: GitRepoObject,
  from: string,
  bundles: readonly (Pick<Bundle, 'spec'> & KubeObject)[],
  deployments: readonly (Pick<BundleDeployment, 'spec'> & KubeObject)[],
): Promise<void> {
  if (from === 'etcd') return;
  const host = from.split('/')[0] ?? '';
  const oci = bundles.find((b) => b.spec.oci && artifactRepository(b.spec.oci).host === host)?.spec.oci;
  if (!oci) return;
  const namespace = repo.metadata.namespace ?? 'default';
  const registry: StorageRegistry = {
    reference: host,
    ...(oci.basicHTTP ? { basicHTTP: true } : {}),
    ...(oci.insecureSkipTLS ? { insecureSkipTLS: true } : {}),
    ...(oci.caBundle ? { caBundle: oci.caBundle } : {}),
  };
  let credentials = oci.secretName ? await credentialsOf(kube, namespace, oci.secretName, host) : undefined;
  for (const bd of deployments) {
    if (credentials || !bd.spec.oci?.secretName || artifactRepository(bd.spec.oci).host !== host) continue;
    credentials = await credentialsOf(kube, bd.metadata.namespace ?? '', bd.spec.oci.secretName, host);
  }
  const recorded = await readOldStorage(kube, namespace, repo.metadata.name, host);
  const repositories = [
    ...new Set([
      ...(recorded?.repositories ?? []),
      ...bundles.flatMap((b) => (b.spec.oci && artifactRepository(b.spec.oci).host === host ? [artifactRepository(b.spec.oci).repository] : [])),
    ]),
  ];
  credentials ??= recorded?.credentials;
  const data: Record<string, string> = { settings: JSON.stringify({ registry, repositories }) };
  if (credentials?.username) Object.assign(data, { username: credentials.username, password: credentials.password ?? '' });
  await kube.apply(
    {
      apiVersion: 'v1',
      kind: 'Secret',
      type: OLD_STORAGE_SECRET_TYPE,
      metadata: {
        name: oldStorageSecretName(repo.metadata.name),
        namespace,
        labels: { [Label.RepoName]: repo.metadata.name },
        ...(repo.metadata.uid ? { ownerReferences: [{ apiVersion: repo.apiVersion, kind: 'GitRepo', name: repo.metadata.name, uid: repo.metadata.uid }] } : {}),
      },
      data: encodeSecretData(data),
    },
    fieldManager,
  );
}

/** Whether every BundleDeployment reads `storage` (a registry reference prefix, or etcd) and its agent has processed that spec. */
export function allOnNewStorage(deployments: readonly (Pick<BundleDeployment, 'spec' | 'status'> & KubeObject)[], to: string): boolean {
  return deployments.every((bd) => {
    const here = to === 'etcd' ? !bd.spec.oci : (bd.spec.oci?.reference.startsWith(`${to}/`) ?? false);
    const seen = bd.status?.conditions?.some((c) => c.type === ConditionType.Ready && c.observedGeneration === bd.metadata.generation);
    return here && seen === true;
  });
}

/** The content Secrets etcd storage kept for `bundles` (by their history), to delete once they moved to a registry. */
export function contentSecretsOf(bundles: readonly (Pick<Bundle, 'status'> & KubeObject)[]): string[] {
  return bundles.flatMap((b) => (b.status?.history ?? []).flatMap((e) => (e.contentsID ? [contentSecretName(b.metadata.name, e.contentsID)] : [])));
}

/** The `status.storage` of a GitRepo (lib/api). */
type StorageStatus = NonNullable<NonNullable<GitRepo['status']>['storage']>;
type Cleanup = NonNullable<NonNullable<StorageStatus['migration']>['cleanup']>;

/**
 * Applies the cleanup policy once a migration is done and every BundleDeployment runs from the new storage:
 * deletes the old registry's bundle repositories (every version, through `deleteFrom`) or the content
 * Secrets etcd kept, or keeps them; then drops the record of the old registry. Returns `status` with the
 * outcome on `migration.cleanup` (Failed with the cause, retried at the next poll).
 */
export async function cleanUpOldStorage(
  kube: Pick<KubeClient, 'get' | 'delete'>,
  deleteFrom: ((registry: StorageRegistry, credentials: Credentials | undefined, repositories: readonly string[]) => Promise<number>) | undefined,
  repo: GitRepoObject,
  status: StorageStatus | undefined,
  bundles: readonly (Pick<Bundle, 'status'> & KubeObject)[],
  deployments: readonly (Pick<BundleDeployment, 'spec' | 'status'> & KubeObject)[],
): Promise<StorageStatus | undefined> {
  const m = status?.migration;
  if (!status || !m || m.phase !== 'Done' || (m.cleanup?.phase !== 'Pending' && m.cleanup?.phase !== 'Failed')) return status;
  const namespace = repo.metadata.namespace ?? 'default';
  const policy = cleanupPolicy(repo);
  const outcome = (cleanup: Cleanup): StorageStatus => ({ ...status, migration: { ...m, cleanup } });
  if (!allOnNewStorage(deployments, m.to)) {
    return outcome({ policy, phase: 'Pending', message: `waiting until every BundleDeployment reads ${m.to} and its agent has seen it` });
  }
  let deleted = 0;
  try {
    if (policy === 'delete' && m.from === 'etcd') {
      for (const name of contentSecretsOf(bundles)) if (await kube.delete({ apiVersion: 'v1', kind: 'Secret', namespace, name })) deleted++;
    } else if (policy === 'delete') {
      const record = await readOldStorage(kube, namespace, repo.metadata.name, m.from.split('/')[0]);
      if (!record)
        throw new Error(`no record of how to reach ${m.from} (Secret ${namespace}/${oldStorageSecretName(repo.metadata.name)}); delete its artifacts by hand`);
      if (deleteFrom) deleted = await deleteFrom(record.registry, record.credentials, record.repositories);
    }
    // The record goes only once the status that says so is written (dropOldStorageRecord): should that write
    // fail, the next reconcile still finds the record and repeats the clean-up, which deletes nothing twice.
    return outcome({ policy, phase: policy === 'keep' ? 'Kept' : 'Deleted', deleted });
  } catch (err) {
    const message = `cleaning up ${m.from} failed: ${err instanceof Error ? err.message : String(err)}; retried at the next poll`;
    return outcome({ policy, phase: 'Failed', deleted, message: message.slice(0, 1024) });
  }
}

/** Whether `storage` records a finished clean-up (Deleted or Kept), and of which migration. */
function finishedCleanup(storage: StorageStatus | undefined): string | undefined {
  const m = storage?.migration;
  const phase = m?.cleanup?.phase;
  return m && (phase === 'Deleted' || phase === 'Kept') ? `${m.from} ${m.to} ${m.startedAt ?? ''}` : undefined;
}

/**
 * After the GitRepo's status was written (the reconciler's transitions): deletes the record of the old registry
 * when that write is the one that finished a clean-up (`before` did not show it finished, `after` does).
 * A failure to delete is left alone: the record is owned by the GitRepo, and the next migration replaces it.
 */
export async function dropOldStorageRecord(
  kube: Pick<KubeClient, 'delete'>,
  repo: Pick<GitRepoObject, 'metadata'>,
  before: StorageStatus | undefined,
  after: StorageStatus | undefined,
): Promise<boolean> {
  const done = finishedCleanup(after);
  if (!done || finishedCleanup(before) === done) return false;
  const namespace = repo.metadata.namespace ?? 'default';
  return await kube.delete({ apiVersion: 'v1', kind: 'Secret', namespace, name: oldStorageSecretName(repo.metadata.name) }).catch(() => false);
}
