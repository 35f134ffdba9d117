import { parseReference, OCI_MANIFEST_MEDIA_TYPE, signatureTag, versionTag, type Credentials, type RegistryClient, type Descriptor } from '../lib/oci/index.js';
import { credentialsFromSecretData } from '../lib/oci/index.js';
import type { Bundle, BundleDeployment, BundleDeploymentSpec, BundleResource, BundleVersionEntry, OCIArtifactRef } from '../lib/api/index.js';
import type { KubeClient, KubeObject } from '../lib/kube/client.js';
import { decodeSecretData } from '../lib/kube/secret.js';
import { contentsOfDeploymentID } from './history.js';
import { normalizeReference } from './storageconfig.js';
import { readOldStorage } from './cleanup.js';
import { tagState } from './migrate-tags.js';
import type { StorageRegistry } from './ports.js';

/**
 * The bundle versions a migration moves besides the current commit's: every version the Bundle's history
 * retains, the version `spec.rollback` pins, and every digest a BundleDeployment pins (a staged rollout's
 * clusters still on the previous version, a rollback's clusters). Registry to registry they are copied by
 * digest (manifest bytes unchanged, blobs the target has are not sent, the `v<N>` tag and a cosign `.sig`
 * tag go along), so every pinned reference stays valid with only its repository changed. Registry to etcd,
 * the versions other than the current one become content Secrets (controller/content-objects.ts) keyed by
 * the same contents ID, so a rolled-back cluster keeps its exact content. Pure parts are unit-tested
 * (controller/migrate-versions.test.ts); the copy runs against real registries in e2e/migration.e2e.ts.
 */

/** One version a migration must keep. */
export interface NeededVersion {
  /** Its sequence (`v<N>`), when the history names it. */
  version?: number;
  digest: string;
  contentsID?: string;
}

type BundleLike = Pick<Bundle, 'spec' | 'status'>;

/**
 * Every version of `bundle` the controller still needs, oldest first (history order, then digests only
 * BundleDeployments pin). The Bundle's current digest is included: copying it first keeps its tag.
 */
export function neededVersions(bundle: BundleLike, deployments: readonly Pick<BundleDeployment, 'spec'>[]): NeededVersion[] {
  const out: NeededVersion[] = [];
  const seen = new Set<string>();
  const add = (v: NeededVersion) => {
    if (seen.has(v.digest)) return;
    seen.add(v.digest);
    out.push(v);
  };
  const history = [...(bundle.status?.history ?? [])].sort((a, b) => a.version - b.version);
  const entry = (e: BundleVersionEntry): NeededVersion => ({ version: e.version, digest: e.digest, ...(e.contentsID ? { contentsID: e.contentsID } : {}) });
  for (const e of history) add(entry(e));
  const rollback = bundle.spec.rollback;
  if (rollback?.digest) add({ version: rollback.version, digest: rollback.digest });
  if (bundle.spec.oci?.digest) add({ digest: bundle.spec.oci.digest });
  for (const bd of deployments) {
    const digest = bd.spec.oci?.digest;
    if (!digest) continue;
    const contents = contentsOfDeploymentID(bd.spec.deploymentID);
    add({ digest, ...(contents ? { contentsID: contents } : {}) });
  }
  return out;
}

/** The repository (`path`, no host) and registry settings of a pinned artifact reference. */
export function artifactRepository(oci: Pick<OCIArtifactRef, 'reference'>): { host: string; repository: string } {
  const ref = parseReference(oci.reference);
  return { host: ref.registry, repository: ref.repository };
}

/**
 * How the controller reads the old registry of a Bundle: the settings its `spec.oci` carries, with the
 * credentials of the Secret it names when that Secret still belongs to that registry (a storage Secret
 * whose `reference` moved to another registry is never sent to the old one: then anonymous).
 */
export async function oldRegistry(
  kube: Pick<KubeClient, 'get'>,
  namespace: string,
  oci: OCIArtifactRef,
  repoName?: string,
): Promise<{ registry: StorageRegistry; credentials?: Credentials }> {
  const { host } = artifactRepository(oci);
  // Recorded when the migration began (controller/cleanup.ts): the credentials may be gone from the Secret since.
  const recorded = repoName ? await readOldStorage(kube, namespace, repoName, host) : undefined;
  if (recorded) return { registry: recorded.registry, ...(recorded.credentials ? { credentials: recorded.credentials } : {}) };
  const registry: StorageRegistry = {
    reference: host,
    ...(oci.basicHTTP ? { basicHTTP: true } : {}),
    ...(oci.insecureSkipTLS ? { insecureSkipTLS: true } : {}),
    ...(oci.caBundle ? { caBundle: oci.caBundle } : {}),
  };
  if (!oci.secretName) return { registry };
  const secret = await kube.get<KubeObject & { type?: string; data?: Record<string, string> }>({
    apiVersion: 'v1',
    kind: 'Secret',
    namespace,
    name: oci.secretName,
  });
  if (!secret) return { registry };
  const values = decodeSecretData(secret.data);
  if (values.reference !== undefined) {
    const now = normalizeReference(values.reference)?.split('/')[0];
    if (now !== host || !values.username) return { registry };
    return { registry, credentials: { username: values.username, password: values.password ?? '' } };
  }
  try {
    return { registry, credentials: credentialsFromSecretData(secret.type, secret.data, host) };
  } catch {
    return { registry };
  }
}

/** What {@link copyVersion} did. */
export interface CopyOutcome {
  /** False when the target had the manifest under the tag already. */
  copied: boolean;
  uploadedBlobs: number;
  skippedBlobs: number;
}

function manifestBlobs(bytes: Buffer): Descriptor[] {
  const m = JSON.parse(bytes.toString('utf8')) as { config?: Descriptor; layers?: Descriptor[] };
  const blobs = [...(m.config ? [m.config] : []), ...(m.layers ?? [])];
  const seen = new Set<string>();
  return blobs.filter((d) => !seen.has(d.digest) && seen.add(d.digest));
}

/** The registry calls a copy makes. */
export type CopyClient = Pick<RegistryClient, 'registry' | 'resolve' | 'hasManifest' | 'getManifest' | 'blobSize' | 'fetchBlob' | 'pushBlob' | 'putManifest'>;

/**
 * Copies one manifest by digest (its blobs first, those the target has skipped), under `tag` or its digest.
 * A `v<N>` tag already holding this digest is skipped; holding another, it is a tagConflict error naming
 * `owner` (controller/migrate-tags.ts). A signature tag (`sig`) holding another signature is left as it is.
 */
async function copyManifest(
  from: CopyClient,
  fromRepo: string,
  to: CopyClient,
  toRepo: string,
  digest: string,
  tag: string | undefined,
  owner: string,
  sig = false,
): Promise<CopyOutcome> {
  const unchanged = { copied: false, uploadedBlobs: 0, skippedBlobs: 0 };
  if (tag && sig) {
    if ((await to.resolve(toRepo, tag).catch(() => undefined)) !== undefined) return unchanged;
  } else if (tag) {
    if ((await tagState(to, toRepo, tag, digest, owner)) === 'same') return unchanged;
  } else if (await to.hasManifest(toRepo, digest)) return unchanged;
  const manifest = await from.getManifest(fromRepo, digest, { accept: [OCI_MANIFEST_MEDIA_TYPE] });
  let uploadedBlobs = 0;
  let skippedBlobs = 0;
  for (const blob of manifestBlobs(manifest.bytes)) {
    if ((await to.blobSize(toRepo, blob.digest)) === blob.size) {
      skippedBlobs++;
      continue;
    }
    const file = await from.fetchBlob(fromRepo, blob, `blob ${blob.digest} of ${fromRepo}@${digest}`);
    if ((await to.pushBlob(toRepo, blob, { file })) === 'uploaded') uploadedBlobs++;
    else skippedBlobs++;
  }
  await to.putManifest(toRepo, tag ?? digest, manifest.bytes, manifest.mediaType || OCI_MANIFEST_MEDIA_TYPE);
  return { copied: true, uploadedBlobs, skippedBlobs };
}

/**
 * Copies version `v` of a bundle from `fromRepo` to `toRepo` by digest (same manifest bytes, so the same
 * digest), tagged `v<N>` when its sequence is known, with its cosign signature manifest when it has one.
 */
export async function copyVersion(from: CopyClient, fromRepo: string, to: CopyClient, toRepo: string, v: NeededVersion, owner = toRepo): Promise<CopyOutcome> {
  const outcome = await copyManifest(from, fromRepo, to, toRepo, v.digest, v.version !== undefined ? versionTag(v.version) : undefined, owner);
  const sigTag = signatureTag(v.digest);
  const signature = await from.resolve(fromRepo, sigTag).catch(() => undefined);
  if (signature) await copyManifest(from, fromRepo, to, toRepo, signature, sigTag, owner, true);
  return outcome;
}

/**
 * Copies `versions` of one bundle from `fromRepo` on `from` (the old registry) into `toRepo` on `to` (the new
 * storage). Returns how many versions were copied (those already there are not counted). `owner` names the
 * GitRepo and bundle in a tag conflict.
 */
export async function copyBundleVersions(
  from: CopyClient,
  fromRepo: string,
  to: CopyClient,
  toRepo: string,
  versions: readonly NeededVersion[],
  owner = toRepo,
): Promise<number> {
  let copied = 0;
  for (const v of versions) if ((await copyVersion(from, fromRepo, to, toRepo, v, owner)).copied) copied++;
  return copied;
}

/** `host/path` of a pinned reference (without `@digest`). */
function repositoryOf(oci: Pick<OCIArtifactRef, 'reference'>): string {
  const at = oci.reference.lastIndexOf('@');
  return at >= 0 ? oci.reference.slice(0, at) : oci.reference;
}

/**
 * etcd to a registry: a BundleDeployment holding its version inline moves to the digest the history lists
 * for its contents (pushed there by the migration, controller/migrate-etcd.ts); unchanged when none does.
 */
function inlineToRegistry(spec: BundleDeploymentSpec, desired: OCIArtifactRef, history: readonly BundleVersionEntry[]): BundleDeploymentSpec {
  const contentsID = contentsOfDeploymentID(spec.deploymentID);
  const entry = contentsID ? history.find((e) => e.contentsID === contentsID) : undefined;
  if (!entry) return spec;
  const { resources: _r, ...rest } = spec;
  return { ...rest, oci: { ...desired, reference: `${repositoryOf(desired)}@${entry.digest}`, digest: entry.digest } };
}

/** Resources of versions kept in etcd, by contents ID (content Secrets, controller/content-objects.ts). */
export type KeptContents = ReadonlyMap<string, BundleResource[]>;

/**
 * A BundleDeployment spec that stays on its version (a staged rollout's cluster not updated yet, or a pin)
 * moved to the storage the Bundle now uses, with its deployment ID unchanged so nothing is re-applied:
 * the same digest in the Bundle's repository (registry to registry; the version was copied by digest), or
 * the version's resources from a content Secret (registry to etcd). Unchanged when it already is there or
 * when the content is not known (then it keeps reading the old storage, and cleanup waits for it). From etcd
 * to a registry, an inline spec moves to the digest `history` lists for its contents.
 */
export function rehomeSpec(
  spec: BundleDeploymentSpec,
  desired: BundleDeploymentSpec,
  contents: KeptContents = new Map(),
  history: readonly BundleVersionEntry[] = [],
): BundleDeploymentSpec {
  if (!spec.oci) return desired.oci ? inlineToRegistry(spec, desired.oci, history) : spec;
  if (desired.oci) {
    const repository = repositoryOf(desired.oci);
    if (spec.oci.reference.startsWith(`${repository}@`)) return spec;
    return { ...spec, oci: { ...desired.oci, reference: `${repository}@${spec.oci.digest}`, digest: spec.oci.digest } };
  }
  const contentsID = contentsOfDeploymentID(spec.deploymentID);
  const resources = contentsID ? contents.get(contentsID) : undefined;
  if (!resources) return spec;
  const { oci: _o, ...rest } = spec;
  return { ...rest, resources };
}
