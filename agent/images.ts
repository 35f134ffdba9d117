import { Reason } from '../lib/api/index.js';
import type { BundleFile, RenderedObject } from '../lib/bundle/index.js';
import { StallingError, WaitingError } from '../lib/errors.js';
import type { KubeObject } from '../lib/kube/client.js';
import { LOCAL_REGISTRY_CONFIGMAP, localRegistryHost } from '../lib/images/localregistry.js';
import type { ImagesLock } from '../lib/images/lock.js';
import { pullSecretUsers, rewriteObjects, splitImagesLock } from '../lib/images/rewrite.js';
import type { MirrorMap } from '../lib/oci/index.js';
import type { RenderedContent } from '../lib/render/index.js';

/**
 * The agent's image rewrite (issue 17, docs/airgap.md): the bundle's images lock (a file of the verified
 * version) says what every image reference becomes on this cluster: the relocated copy, the cluster's own
 * registry for local images (KEP-1755 ConfigMap, read as the agent), or the source pinned by digest. Every
 * object is rewritten or none is: an image outside a relocating lock (ImageNotLocked, stalls until a new
 * version) or a local image on a cluster that declares no local registry (LocalRegistryNotFound, retried)
 * stops the deployment before anything is applied.
 */

/** Splits the images lock off a bundle's files (the renderers never see it); no lock: the files as they are. */
export function takeImagesLock(files: readonly BundleFile[], where: string): { files: BundleFile[]; lock: ImagesLock | undefined } {
  return splitImagesLock(files, where);
}

/** Reads the cluster's KEP-1755 ConfigMap; undefined when it is missing. */
export type ConfigMapReader = () => Promise<KubeObject | undefined>;

async function localHost(lock: ImagesLock, read: ConfigMapReader, where: string): Promise<string | undefined> {
  if (!lock.images.some((i) => i.local)) return undefined;
  const cm = await read();
  try {
    return localRegistryHost(cm?.data as Record<string, string> | undefined);
  } catch (err) {
    const { namespace, name } = LOCAL_REGISTRY_CONFIGMAP;
    throw new StallingError(
      Reason.LocalRegistryNotFound,
      `${where}: ConfigMap ${namespace}/${name}: ${(err as Error).message}; fix the ConfigMap on this cluster`,
    );
  }
}

/**
 * Rewrites `objects` from `lock` for this cluster, all or nothing (see the module comment); images pinned by
 * digest go onto this cluster's registry mirrors (`mirrors`, the agent's map in effect).
 */
export async function rewriteImages(
  objects: RenderedObject[],
  lock: ImagesLock,
  read: ConfigMapReader,
  where: string,
  mirrors?: MirrorMap,
): Promise<RenderedObject[]> {
  const out = rewriteObjects(objects, lock, { localHost: await localHost(lock, read, where), mirrors });
  if (out.ok) return out.objects;
  const images = out.problem.images.join(', ');
  if (out.problem.kind === 'no-local-registry') {
    const { namespace, name } = LOCAL_REGISTRY_CONFIGMAP;
    throw new WaitingError(
      Reason.LocalRegistryNotFound,
      `${where}: local image(s) ${images} need this cluster's registry, but it has no ConfigMap ${namespace}/${name} (KEP-1755) with localRegistryHosting.v1 host; nothing was applied. Create it, or remove the images from images.local in fleet.yaml`,
      { retryAfterMs: 30_000 },
    );
  }
  throw new StallingError(
    Reason.ImageNotLocked,
    `${where}: image(s) ${images} are not in the bundle's images lock while relocation is on (the controller could not render them${lock.unlocked?.length ? `: ${lock.unlocked.join('; ')}` : ''}); nothing was applied. Reference them from fleet.yaml values the controller renders, or add a custom images path`,
  );
}

/** {@link rewriteImages} over a Helm or Kustomize render: CRDs, objects and hooks together. */
export async function rewriteContent(
  content: RenderedContent,
  lock: ImagesLock,
  read: ConfigMapReader,
  where: string,
  mirrors?: MirrorMap,
): Promise<RenderedContent> {
  const all = [...content.crds, ...content.objects, ...content.hooks.map((h) => h.object)];
  const out = await rewriteImages(all, lock, read, where, mirrors);
  const crds = out.slice(0, content.crds.length);
  const objects = out.slice(content.crds.length, content.crds.length + content.objects.length);
  const hooks = content.hooks.map((h, i) => ({ ...h, object: out[content.crds.length + content.objects.length + i] as RenderedObject }));
  return { ...content, crds, objects, hooks };
}

/** Reads a Secret downstream; undefined when it is missing. */
export type SecretReader = (namespace: string, name: string) => Promise<KubeObject | undefined>;

/**
 * Checks that every namespace running a relocated image has the lock's pull Secret (relocation's
 * `imagePullSecret`), before anything is applied: `objects` are the rewritten, prepared objects (namespaces
 * filled in). A missing one is a WaitingError ImagePullSecretNotFound naming the bundle, the images, the
 * Secret and its namespace; the deployment is retried, so creating the Secret is enough.
 */
export async function checkPullSecrets(
  objects: readonly KubeObject[],
  lock: ImagesLock,
  read: SecretReader,
  what: { bundle: string; where: string; mirrors?: MirrorMap | undefined },
): Promise<void> {
  const secret = lock.pullSecret;
  if (secret === undefined) return;
  const byNamespace = new Map<string, Set<string>>();
  for (const { object, images } of pullSecretUsers(objects, lock, { mirrors: what.mirrors })) {
    const ns = object.metadata.namespace ?? 'default';
    const set = byNamespace.get(ns) ?? new Set<string>();
    for (const i of images) set.add(i);
    byNamespace.set(ns, set);
  }
  const missing: string[] = [];
  for (const [ns, images] of [...byNamespace].sort(([a], [b]) => a.localeCompare(b))) {
    if (!(await read(ns, secret))) missing.push(`Secret ${ns}/${secret} (for ${[...images].sort().join(', ')})`);
  }
  if (missing.length === 0) return;
  throw new WaitingError(
    Reason.ImagePullSecretNotFound,
    `bundle ${what.bundle} (${what.where}): the relocated image(s) need the pull Secret named by spec.images.relocation.imagePullSecret, which this cluster does not have: ${missing.join('; ')}; nothing was applied. Create it (a kubernetes.io/dockerconfigjson for the relocation registry) in each namespace, or remove imagePullSecret from the GitRepo`,
    { retryAfterMs: 30_000 },
  );
}
