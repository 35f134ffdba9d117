import { API_VERSION, Label, MANAGED_LABEL_VALUE, type Bundle, type BundleDeployment, type OCIArtifactRef } from '../lib/api/index.js';
import type { KubeObject } from '../lib/kube/client.js';
import { decodeSecretData } from '../lib/kube/secret.js';
import { jsonEqual } from '../lib/util/json.js';
import { keyRingEntry, parseBundleKey } from '../lib/oci/index.js';
import type { ReconcilerContext } from './context.js';
import { CONTROLLER_FIELD_MANAGER } from './rbac.js';
import { readSecretData } from './store.js';

/**
 * Encryption keys for agents: the Bundle reconciler copies the GitRepo's bundle key (spec.encryption,
 * carried by the Bundle as `spec.oci.decryptionSecretName`) into each targeted cluster namespace only,
 * next to the BundleDeployment, as a key ring Secret (`key-<id>` entries). After a rotation the old key
 * stays in every copy until every BundleDeployment of the bundle pins a version under the new key and
 * its agent has caught up with it (status.observedGeneration), so no cluster is left unable to read
 * what it runs; then it is dropped.
 */

type BundleDeploymentObject = BundleDeployment & KubeObject;

/** Name of the key ring Secret of one BundleDeployment (in its cluster namespace). */
export function keysSecretName(bdName: string): string {
  return `${bdName.slice(0, 247)}-keys`;
}

/** The `spec.oci` fields a BundleDeployment gets for decryption: its own key ring Secret. */
export function deploymentKeysRef(oci: OCIArtifactRef, bdName: string): Partial<OCIArtifactRef> {
  return oci.decryptionSecretName ? { decryptionSecretName: keysSecretName(bdName) } : {};
}

/** What the key ring needs to know of one BundleDeployment of the bundle. */
export interface DeploymentKeyUse {
  /** The key its pinned version is encrypted under. */
  keyID: string | undefined;
  /** Its agent has observed its current generation. */
  settled: boolean;
}

/**
 * The key ring every copy holds: the current key, plus each older key of the existing copies while a
 * BundleDeployment still pins a version under it or any agent has not caught up yet.
 */
export function desiredKeyRing(
  current: { id: string; value: string },
  existing: ReadonlyArray<Record<string, string>>,
  uses: readonly DeploymentKeyUse[],
): Record<string, string> {
  const ring: Record<string, string> = { [keyRingEntry(current.id)]: current.value };
  const pinned = new Set(uses.map((u) => u.keyID).filter((id): id is string => id !== undefined));
  const waiting = uses.some((u) => !u.settled);
  for (const copy of existing) {
    for (const [name, value] of Object.entries(copy)) {
      if (!name.startsWith('key-') || name in ring) continue;
      if (waiting || pinned.has(name.slice(4))) ring[name] = value;
    }
  }
  return ring;
}

function keyUse(bd: BundleDeploymentObject): DeploymentKeyUse {
  return {
    keyID: bd.spec.oci?.encryptionKeyID,
    settled: bd.status?.observedGeneration !== undefined && bd.status.observedGeneration === bd.metadata.generation,
  };
}

/**
 * Writes the key ring Secret next to each of `deployments` (the targeted ones, as applied or desired)
 * when `bundle` is encrypted; `existingDeployments` are every BundleDeployment of the bundle now.
 * A copy already equal is not written again.
 */
export async function writeBundleKeys(
  ctx: Pick<ReconcilerContext, 'kube'>,
  bundle: Bundle & KubeObject,
  deployments: readonly BundleDeploymentObject[],
  existingDeployments: readonly BundleDeploymentObject[],
): Promise<void> {
  const source = bundle.spec.oci?.decryptionSecretName;
  if (!source || deployments.length === 0) return;
  const ns = bundle.metadata.namespace ?? '';
  const { data } = await readSecretData(ctx.kube, ns, source, 'spec.encryption.secretRef');
  const value = (data.key ?? '').trim();
  const current = { id: parseBundleKey(value, `Secret ${ns}/${source} (spec.encryption.secretRef) key "key"`).id, value };
  const copies = new Map<string, Record<string, string>>();
  for (const bd of deployments) {
    const secret = await ctx.kube.get<KubeObject>({
      apiVersion: 'v1',
      kind: 'Secret',
      namespace: bd.metadata.namespace ?? '',
      name: keysSecretName(bd.metadata.name),
    });
    if (secret) copies.set(bd.metadata.namespace ?? '', decodeSecretData(secret.data));
  }
  const ring = desiredKeyRing(current, [...copies.values()], [...existingDeployments, ...deployments].map(keyUse));
  for (const bd of deployments) {
    const clusterNs = bd.metadata.namespace ?? '';
    if (jsonEqual(copies.get(clusterNs) ?? {}, ring)) continue;
    await ctx.kube.apply(
      {
        apiVersion: 'v1',
        kind: 'Secret',
        type: 'Opaque',
        metadata: {
          name: keysSecretName(bd.metadata.name),
          namespace: clusterNs,
          labels: { [Label.Managed]: MANAGED_LABEL_VALUE, [Label.BundleName]: bd.metadata.name },
          ...(bd.metadata.uid
            ? { ownerReferences: [{ apiVersion: API_VERSION, kind: 'BundleDeployment', name: bd.metadata.name, uid: bd.metadata.uid, controller: true }] }
            : {}),
        },
        data: Object.fromEntries(Object.entries(ring).map(([k, v]) => [k, Buffer.from(v, 'utf8').toString('base64')])),
      },
      CONTROLLER_FIELD_MANAGER,
    );
  }
}
