import type { Logger } from 'pino';
import { Reason, type GitRepo, type GitRepoImages, type ImageRelocation } from '../lib/api/index.js';
import { fleetYamlOptions, renderBundle, renderOptionsFrom, type LoadedBundle, type RenderedObject } from '../lib/bundle/index.js';
import { mergeOptions } from '../lib/bundle/target.js';
import { type FlotillaError, StallingError, TransientError, WaitingError, messageOf } from '../lib/errors.js';
import type { KubeClient, KubeObject } from '../lib/kube/client.js';
import { CopySession, copyImage } from '../lib/images/copy.js';
import {
  IMAGES_LOCK_FORMAT_VERSION,
  IMAGES_LOCK_KIND,
  IMAGES_LOCK_PATH,
  imageSource,
  localName,
  mirrorHost,
  mirroredRepository,
  relocatedRepository,
  serializeLock,
  type ImagesLock,
  type LockedImage,
} from '../lib/images/lock.js';
import { distinctImages, type ImagePathRule } from '../lib/images/refs.js';
import { resolveImage } from '../lib/images/resolve.js';
import { RegistryClient, credentialsFromSecretData, formatReference, isRegistryError, type RegistryEvent } from '../lib/oci/index.js';
import { DEFAULT_KUBE_VERSION, DEFAULT_RENDER_LIMITS, engineOf, inApplyOrder, renderContent, renderToolsFromEnv } from '../lib/render/index.js';
import { inlineFleetYamlValuesFiles } from '../lib/render/values.js';

/**
 * The controller's images step (issue 17, docs/airgap.md): when a GitRepo sets `spec.images` or a bundle's
 * fleet.yaml has `images`, every image the bundle's objects reference is resolved to a digest when the
 * version is built, copied to the relocation registry when one is set, and recorded in the images lock, a
 * file of the version ({@link IMAGES_LOCK_PATH}), before the version is stored. Agents rewrite references
 * from that lock only.
 *
 * Objects are rendered here with the bundle's base options and once per fleet.yaml target customization
 * (Helm charts with `helm template` and the default capabilities, as `flotilla render` does). What only a
 * cluster can render (values read downstream, `${ }` templating that fails without cluster labels) is listed
 * in the lock's `unlocked`; an agent that meets an image outside a relocating lock applies nothing and says
 * which (ImageNotLocked).
 */

type SecretReader = Pick<KubeClient, 'get'>;

/** What {@link lockBundleImages} needs. */
export interface ImagesStepOptions {
  kube: SecretReader;
  log?: Logger | undefined;
  onRegistryEvent?: ((event: RegistryEvent) => void) | undefined;
}

/** True when the images lock is on for `bundle` of `repo`. */
export function imagesEnabled(repo: GitRepo, bundle: LoadedBundle): boolean {
  return repo.spec.images !== undefined || bundle.fleetYaml.images !== undefined;
}

/** The objects the controller can render for the lock, and what it could not render. */
export async function renderForLock(bundle: LoadedBundle): Promise<{ objects: RenderedObject[]; unlocked: string[] }> {
  const fy = inlineFleetYamlValuesFiles(bundle.fleetYaml, bundle.files, { fleetYamlName: `${bundle.dir}/fleet.yaml`, label: (p) => `${bundle.dir}/${p}` });
  const base = fleetYamlOptions(fy);
  const variants = [
    { name: 'default', options: base },
    ...(fy.targetCustomizations ?? []).map((t, i) => ({ name: t.name ?? `targetCustomizations[${i}]`, options: mergeOptions(base, t) })),
  ];
  const objects: RenderedObject[] = [];
  const unlocked: string[] = [];
  for (const v of variants) {
    try {
      if (engineOf(bundle.files, v.options).engine === 'yaml') {
        objects.push(...renderBundle(bundle.files, renderOptionsFrom(v.options)));
        continue;
      }
      const content = await renderContent(
        bundle.files,
        { bundleName: bundle.name, options: v.options, sourceDir: bundle.dir },
        { name: 'images-lock', namespace: 'images-lock', labels: {}, capabilities: { kubeVersion: DEFAULT_KUBE_VERSION, apiVersions: [] } },
        { tools: renderToolsFromEnv(), ...DEFAULT_RENDER_LIMITS },
      );
      objects.push(...inApplyOrder(content));
    } catch (err) {
      unlocked.push(`${v.name}: ${messageOf(err).slice(0, 300)}`);
    }
  }
  return { objects, unlocked };
}

async function secretCredentials(kube: SecretReader, namespace: string, name: string | undefined, host: string, field: string) {
  if (!name) return undefined;
  const secret = await kube.get<KubeObject & { type?: string; data?: Record<string, string> }>({ apiVersion: 'v1', kind: 'Secret', namespace, name });
  if (!secret) throw new WaitingError(Reason.SecretNotFound, `Secret ${namespace}/${name} (${field}) does not exist`, { retryAfterMs: 10_000 });
  return credentialsFromSecretData(secret.type, secret.data, host);
}

/** Registry clients of one images step (and of `flotilla airgap export`), one per host, closed together. */
export class Clients {
  private readonly byHost = new Map<string, RegistryClient>();
  constructor(
    private readonly o: ImagesStepOptions,
    private readonly namespace: string,
    private readonly images: GitRepoImages,
  ) {}

  /** The client of a source registry: its `mirror` when spec.images.sources gives one. */
  async source(host: string): Promise<RegistryClient> {
    const known = this.byHost.get(host);
    if (known) return known;
    const s = this.images.sources?.find((x) => x.registry === host);
    const field = `spec.images.sources[${host}].authSecretName`;
    const at = s?.mirror ? mirrorHost(s.mirror) : host;
    return this.open(host, s ?? {}, await secretCredentials(this.o.kube, this.namespace, s?.authSecretName, at, field), at);
  }

  /** Where `image` is read: its source repository, or the same path under the source's mirror. */
  sourceRepository(image: string): string {
    const src = imageSource(image);
    const mirror = this.images.sources?.find((x) => x.registry === src.registry)?.mirror;
    return mirror ? mirroredRepository(src.repository, mirror) : src.repository;
  }

  /** The client of the relocation registry. */

  async destination(r: ImageRelocation): Promise<RegistryClient> {
    const creds = await secretCredentials(this.o.kube, this.namespace, r.authSecretName, r.registryEndpoint, 'spec.images.relocation.authSecretName');
    const client = this.open(`dst:${r.registryEndpoint}`, r, creds, r.registryEndpoint);
    return client;
  }

  private open(
    key: string,
    s: { basicHTTP?: boolean | undefined; insecureSkipTLS?: boolean | undefined; caBundle?: string | undefined },
    credentials: Awaited<ReturnType<typeof secretCredentials>>,
    host = key,
  ): RegistryClient {
    const client = new RegistryClient({
      registry: host,
      basicHTTP: s.basicHTTP ?? false,
      insecureSkipTLS: s.insecureSkipTLS ?? false,
      ...(s.caBundle ? { caPem: Buffer.from(s.caBundle, 'base64').toString('utf8') } : {}),
      ...(credentials ? { credentials } : {}),
      userAgent: 'flotilla-controller',
      ...(this.o.onRegistryEvent ? { onEvent: this.o.onRegistryEvent } : {}),
    });
    this.byHost.set(key, client);
    return client;
  }

  /** Closes every client. */
  async close(): Promise<void> {
    await Promise.all([...this.byHost.values()].map((c) => c.close()));
  }
}

const UNKNOWN_CODES = ['MANIFEST_UNKNOWN', 'NAME_UNKNOWN', 'NOT_FOUND'];

/**
 * A registry failure of one image, as an error naming the bundle and the image. Copies go by the locked
 * digest, never by tag, so a tag moved since the lock changes nothing; only a locked digest deleted from the
 * source fails the copy, and says so (ImageRelocationFailed, stalls until a new commit locks again).
 */
export function imageError(err: unknown, bundle: string, image: string, step: 'resolving' | 'copying', digest?: string): FlotillaError {
  const what = `bundle ${bundle}: ${step} image ${image}: ${messageOf(err)}`;
  if (step === 'copying' && digest && isRegistryError(err) && UNKNOWN_CODES.includes(err.code)) {
    return new StallingError(
      Reason.ImageRelocationFailed,
      `${what}; the locked digest ${digest} is gone from the source (its tag moved after the lock and the old manifest was deleted). Push that digest again, or commit again so the version locks what the tag points at now`,
      { cause: err },
    );
  }
  if (step === 'resolving' && isRegistryError(err) && UNKNOWN_CODES.includes(err.code)) {
    return new WaitingError(Reason.ImageNotFound, `${what}; push the image or fix the reference (retrying)`, { retryAfterMs: 30_000, cause: err });
  }
  if (err instanceof TransientError)
    return new TransientError(step === 'resolving' ? Reason.ImageNotFound : Reason.ImageRelocationFailed, what, { cause: err });
  const reason = step === 'resolving' ? Reason.ImageNotFound : Reason.ImageRelocationFailed;
  return new StallingError(reason, `${what}; check the registry, its credentials and spec.images`, { cause: err });
}

/**
 * Returns `bundle` with its images lock added (see the module comment), or `bundle` unchanged when the lock
 * is off. Errors name the bundle and the image: ImageNotFound, ImageRelocationFailed, SecretNotFound.
 */
export async function lockBundleImages(o: ImagesStepOptions, repo: GitRepo & KubeObject, bundle: LoadedBundle): Promise<LoadedBundle> {
  if (!imagesEnabled(repo, bundle)) return bundle;
  const namespace = repo.metadata.namespace ?? 'default';
  const settings = repo.spec.images ?? {};
  const rules: ImagePathRule[] = bundle.fleetYaml.images?.paths ?? [];
  const local = new Set(bundle.fleetYaml.images?.local ?? []);
  const { objects, unlocked } = await renderForLock(bundle);
  const clients = new Clients(o, namespace, settings);
  const session = new CopySession();
  const images: LockedImage[] = [];
  try {
    const dst = settings.relocation ? await clients.destination(settings.relocation) : undefined;
    for (const image of distinctImages(objects, rules)) {
      if (local.has(localName(image))) {
        images.push({ image, local: true });
        continue;
      }
      const src = imageSource(image);
      let locked: LockedImage;
      try {
        locked = await resolveImage(await clients.source(src.registry), image, clients.sourceRepository(image));
      } catch (err) {
        throw imageError(err, bundle.name, image, 'resolving');
      }
      if (dst && settings.relocation && locked.digest) {
        const target = relocatedRepository(image, settings.relocation);
        try {
          await copyImage(
            { client: await clients.source(src.registry), repository: clients.sourceRepository(image) },
            { client: dst, repository: target.repository },
            locked.digest,
            session,
          );
        } catch (err) {
          throw imageError(err, bundle.name, image, 'copying', locked.digest);
        }
        locked.relocated = formatReference({ ...target, digest: locked.digest });
      }
      images.push(locked);
    }
  } finally {
    await clients.close();
  }
  const lock: ImagesLock = {
    kind: IMAGES_LOCK_KIND,
    formatVersion: IMAGES_LOCK_FORMAT_VERSION,
    images,
    ...(rules.length > 0 ? { paths: rules.map((r) => ({ ...r, paths: [...r.paths] })) } : {}),
    ...(settings.relocation?.imagePullSecret ? { pullSecret: settings.relocation.imagePullSecret } : {}),
    ...(unlocked.length > 0 ? { unlocked } : {}),
  };
  o.log?.info(
    {
      gitrepo: `${namespace}/${repo.metadata.name}`,
      bundle: bundle.name,
      images: images.length,
      relocated: settings.relocation?.registryEndpoint,
      ...session.stats,
    },
    'images locked',
  );
  const files = bundle.files.filter((f) => f.path !== IMAGES_LOCK_PATH);
  return { ...bundle, files: [...files, { path: IMAGES_LOCK_PATH, content: serializeLock(lock) }] };
}
