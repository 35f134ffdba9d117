import { Label, type Bundle, type BundleDeployment, type BundleResource } from '../lib/api/index.js';
import { contentsOfDeploymentID } from './history.js';
import { filesToResources, type BundleFile } from '../lib/bundle/index.js';
import type { KubeClient, KubeObject } from '../lib/kube/client.js';
import type { NeededVersion } from './migrate-versions.js';

/**
 * Content objects: how etcd mode keeps bundle versions other than the current one. A Bundle in etcd mode
 * carries its current files inline; an older version that a cluster still needs (a rollback pin, a version
 * the history retains when the bundle came from a registry) is kept in a Secret of type
 * {@link CONTENT_SECRET_TYPE} in the GitRepo's namespace, keyed by the version's contents ID (so the
 * BundleDeployments pinned to it keep their deployment ID and nothing is re-applied). A Secret, not a
 * ConfigMap: bundle files may hold Secret manifests. The Bundle reconciler reads them for rollback pins in
 * etcd mode (controller/rollout-targets.ts); a migration away from etcd deletes them per policy.
 */

/** The type of a content Secret. */
export const CONTENT_SECRET_TYPE = 'flotilla.dev/bundle-content';
/** Label on content Secrets: the contents ID they hold (first 63 characters). */
export const CONTENTS_LABEL = 'flotilla.dev/contents-id';
/** The key of a content Secret holding the resources (JSON of BundleResource[]). */
const RESOURCES_KEY = 'resources.json';

type SecretObject = KubeObject & { type?: string; data?: Record<string, string> };

/** The name of the content Secret of bundle `bundleName` with contents `contentsID` (at most 253 characters). */
export function contentSecretName(bundleName: string, contentsID: string): string {
  return `${bundleName.slice(0, 200)}-content-${contentsID.slice(0, 16)}`;
}

/** The content Secret object for `resources` (pure). */
export function contentSecret(namespace: string, repoName: string, bundleName: string, contentsID: string, resources: readonly BundleResource[]) {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    type: CONTENT_SECRET_TYPE,
    metadata: {
      name: contentSecretName(bundleName, contentsID),
      namespace,
      labels: { [Label.RepoName]: repoName, [Label.BundleName]: bundleName, [CONTENTS_LABEL]: contentsID.slice(0, 63) },
      annotations: { 'flotilla.dev/contents-id': contentsID },
    },
    data: { [RESOURCES_KEY]: Buffer.from(JSON.stringify(resources), 'utf8').toString('base64') },
  };
}

/** The resources a content Secret holds, or undefined when there is none for these contents. */
export async function readContentObject(
  kube: Pick<KubeClient, 'get'>,
  namespace: string,
  bundleName: string,
  contentsID: string,
): Promise<BundleResource[] | undefined> {
  const secret = await kube.get<SecretObject>({ apiVersion: 'v1', kind: 'Secret', namespace, name: contentSecretName(bundleName, contentsID) });
  const raw = secret?.type === CONTENT_SECRET_TYPE ? secret.data?.[RESOURCES_KEY] : undefined;
  if (raw === undefined || secret?.metadata.annotations?.['flotilla.dev/contents-id'] !== contentsID) return undefined;
  return JSON.parse(Buffer.from(raw, 'base64').toString('utf8')) as BundleResource[];
}

/**
 * Registry to etcd: pulls (`pull`, digests verified) every version in `versions` except the one with
 * `currentContentsID` (it goes inline into the Bundle) and writes it as a content Secret.
 * Versions without a contents ID cannot be keyed and are skipped. Returns how many were written.
 */
export async function keepVersionsInEtcd(
  kube: Pick<KubeClient, 'get' | 'apply'>,
  fieldManager: string,
  repo: { namespace: string; name: string },
  bundleName: string,
  versions: readonly NeededVersion[],
  currentContentsID: string,
  pull: (digest: string) => Promise<BundleFile[]>,
): Promise<number> {
  let written = 0;
  for (const v of versions) {
    const contentsID = v.contentsID;
    if (!contentsID || contentsID === currentContentsID) continue;
    if (await readContentObject(kube, repo.namespace, bundleName, contentsID)) continue;
    const resources = filesToResources(await pull(v.digest));
    await kube.apply(contentSecret(repo.namespace, repo.name, bundleName, contentsID, resources), fieldManager);
    written++;
  }
  return written;
}

/** Deletes the content Secrets of GitRepo `repoName` (the old etcd storage after a move to a registry); returns how many. */
export async function deleteContentObjects(kube: Pick<KubeClient, 'list' | 'delete'>, namespace: string, repoName: string): Promise<number> {
  const list = await kube.list<SecretObject>({ apiVersion: 'v1', kind: 'Secret', namespace }, `${Label.RepoName}=${repoName},${CONTENTS_LABEL}`);
  let deleted = 0;
  for (const s of list.items) {
    if (s.type !== CONTENT_SECRET_TYPE) continue;
    await kube.delete({ apiVersion: 'v1', kind: 'Secret', namespace, name: s.metadata.name });
    deleted++;
  }
  return deleted;
}

/**
 * The kept versions an etcd-mode Bundle's reconcile needs, by contents ID: the version `spec.rollback` pins
 * and those of BundleDeployments still reading a registry (moved here by a migration). Empty in OCI mode.
 */
export async function keptContents(
  kube: Pick<KubeClient, 'get'>,
  bundle: Pick<Bundle, 'spec' | 'status'> & { metadata: { name: string; namespace?: string | undefined } },
  deployments: readonly (Pick<BundleDeployment, 'spec'> | undefined)[],
): Promise<Map<string, BundleResource[]>> {
  const out = new Map<string, BundleResource[]>();
  if (bundle.spec.oci || !bundle.spec.resources) return out;
  const ids = new Set<string>();
  const rolledBack = bundle.status?.history?.find((e) => e.version === bundle.spec.rollback?.version)?.contentsID;
  if (bundle.spec.rollback && rolledBack) ids.add(rolledBack);
  for (const bd of deployments) {
    const id = bd?.spec.oci ? contentsOfDeploymentID(bd.spec.deploymentID) : undefined;
    if (id) ids.add(id);
  }
  for (const id of ids) {
    const resources = await readContentObject(kube, bundle.metadata.namespace ?? 'default', bundle.metadata.name, id);
    if (resources) out.set(id, resources);
  }
  return out;
}
