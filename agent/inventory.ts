import { createHash } from 'node:crypto';
import { Label, MANAGED_LABEL_VALUE } from '../lib/api/index.js';
import { StallingError } from '../lib/errors.js';
import type { KubeClient, KubeObject } from '../lib/kube/client.js';
import { AGENT_FIELD_MANAGER, idKey, sortForPrune, type ObjectId } from './objects.js';

/**
 * The inventory: for each BundleDeployment, a ConfigMap in the agent's namespace downstream listing every
 * object the agent applied for it (apiVersion, kind, namespace, name), the deployment ID and sync
 * generation last applied, and whether resources are kept on deletion. Pruning and deletion rely on this
 * list, not on labels: a label can be removed or copied, the inventory is the agent's own record.
 *
 * It is kept level-based and crash-safe: before applying, the agent records the union of what was there
 * and what it is about to apply; after applying and pruning, exactly what is desired. An agent killed in
 * between finds every object it may have created still listed.
 */

/** Label on inventory ConfigMaps (value "true"), used to list them. */
export const INVENTORY_LABEL = 'flotilla.dev/inventory';
/** Annotation on inventory ConfigMaps: `<cluster namespace>/<BundleDeployment name>`. */
export const INVENTORY_OWNER_ANNOTATION = 'flotilla.dev/bundle-deployment';
/** Name prefix of inventory ConfigMaps. */
export const INVENTORY_PREFIX = 'flotilla-inv-';

/** What the inventory records for one BundleDeployment. */
export interface Inventory {
  /** Name of the BundleDeployment (in the agent's cluster namespace). */
  bundleDeployment: string;
  /** Deployment ID of the last completed apply ("" before the first one completed). */
  deploymentID: string;
  /** spec.forceSyncGeneration of the last completed apply. */
  syncGeneration: number;
  /** When that deployment was applied (ISO 8601); helm.timeoutSeconds counts from it (agent/readytimeout.ts). */
  appliedAt?: string;
  /** Keep the objects when the BundleDeployment goes away. */
  keepResources: boolean;
  /** Objects applied, in identity order. */
  objects: ObjectId[];
  /** A chart's crds/ CRDs, recorded only to be deleted with the bundle (deleteCRDResources); never pruned otherwise. */
  crds?: ObjectId[];
  /** The namespace to delete when the BundleDeployment goes away (deleteNamespace). */
  deleteNamespace?: string;
}

/** The ConfigMap name of a BundleDeployment's inventory (hashed when the name would be too long). */
export function inventoryName(bundleDeploymentName: string): string {
  const name = `${INVENTORY_PREFIX}${bundleDeploymentName}`;
  if (name.length <= 253) return name;
  const hash = createHash('sha256').update(bundleDeploymentName).digest('hex').slice(0, 10);
  return `${name.slice(0, 253 - 11).replace(/[-.]+$/, '')}-${hash}`;
}

/** Sorts ids by identity and drops duplicates (the later apiVersion of one identity wins). */
export function normalizeIds(ids: readonly ObjectId[]): ObjectId[] {
  const byKey = new Map<string, ObjectId>();
  for (const id of ids) {
    const clean: ObjectId = { apiVersion: id.apiVersion, kind: id.kind, name: id.name };
    if (id.namespace) clean.namespace = id.namespace;
    byKey.set(idKey(clean), clean);
  }
  return [...byKey.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, id]) => id);
}

/** The ids of both lists (for the record written before applying); `next` wins for apiVersion. */
export function unionIds(previous: readonly ObjectId[], next: readonly ObjectId[]): ObjectId[] {
  return normalizeIds([...previous, ...next]);
}

/**
 * The objects to prune: recorded before but no longer desired, by identity (group, kind, namespace, name;
 * a new apiVersion of the same object is not a new object), in prune order (Namespaces and CRDs last).
 */
export function pruneList(previous: readonly ObjectId[], desired: readonly ObjectId[]): ObjectId[] {
  const keep = new Set(desired.map(idKey));
  return sortForPrune(normalizeIds(previous).filter((id) => !keep.has(idKey(id))));
}

/** True when `a` and `b` would be stored as the same ConfigMap data (its keys come in one fixed order). */
export function sameInventory(a: Inventory | undefined, b: Inventory): boolean {
  const data = (inv: Inventory) => JSON.stringify(inventoryToConfigMap(inv, '', '').data);
  return a !== undefined && data(a) === data(b);
}

/** The ConfigMap that stores an inventory. */
export function inventoryToConfigMap(inv: Inventory, namespace: string, clusterNamespace: string): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: {
      name: inventoryName(inv.bundleDeployment),
      namespace,
      labels: { [INVENTORY_LABEL]: 'true', [Label.Managed]: MANAGED_LABEL_VALUE },
      annotations: { [INVENTORY_OWNER_ANNOTATION]: `${clusterNamespace}/${inv.bundleDeployment}` },
    },
    data: {
      bundleDeployment: inv.bundleDeployment,
      deploymentID: inv.deploymentID,
      syncGeneration: String(inv.syncGeneration),
      ...(inv.appliedAt ? { appliedAt: inv.appliedAt } : {}),
      keepResources: String(inv.keepResources),
      objects: JSON.stringify(normalizeIds(inv.objects)),
      ...(inv.crds?.length ? { crds: JSON.stringify(normalizeIds(inv.crds)) } : {}),
      ...(inv.deleteNamespace ? { deleteNamespace: inv.deleteNamespace } : {}),
    },
  };
}

function isObjectId(value: unknown): value is ObjectId {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return (
    typeof v.apiVersion === 'string' &&
    typeof v.kind === 'string' &&
    typeof v.name === 'string' &&
    (v.namespace === undefined || typeof v.namespace === 'string')
  );
}

/**
 * Reads an inventory back from its ConfigMap. A ConfigMap whose object list is unreadable is an error
 * (StallingError InventoryCorrupt): pruning from a guess could delete what it should not.
 */
export function inventoryFromConfigMap(cm: KubeObject): Inventory {
  const data = (cm.data ?? {}) as Record<string, string | undefined>;
  const ids = (key: 'objects' | 'crds'): ObjectId[] => {
    let list: unknown;
    try {
      list = JSON.parse(data[key] ?? '[]');
    } catch {
      list = undefined;
    }
    if (!Array.isArray(list) || !list.every(isObjectId)) {
      throw new StallingError(
        'InventoryCorrupt',
        `inventory ConfigMap ${cm.metadata.namespace}/${cm.metadata.name}: data.${key} is not a list of objects; fix or delete it`,
      );
    }
    return normalizeIds(list);
  };
  const objects = ids('objects');
  const crds = ids('crds');
  const generation = Number(data.syncGeneration ?? '0');
  return {
    bundleDeployment: data.bundleDeployment ?? cm.metadata.name.slice(INVENTORY_PREFIX.length),
    deploymentID: data.deploymentID ?? '',
    syncGeneration: Number.isInteger(generation) ? generation : 0,
    ...(data.appliedAt ? { appliedAt: data.appliedAt } : {}),
    keepResources: data.keepResources === 'true',
    objects,
    ...(crds.length > 0 ? { crds } : {}),
    ...(data.deleteNamespace ? { deleteNamespace: data.deleteNamespace } : {}),
  };
}

/** How long an inventory this agent read or wrote is trusted before it is read again. */
export const INVENTORY_TRUST_MS = 10 * 60_000;
/** The most inventories remembered (an agent has one per BundleDeployment; beyond this it starts over). */
const MAX_REMEMBERED = 20_000;

/** What the store needs of a Kubernetes client. */
export type InventoryClient = Pick<KubeClient, 'get' | 'apply' | 'delete' | 'list'>;

/**
 * Reads and writes inventories in the agent's namespace downstream.
 *
 * The agent is the only writer of its inventories, so what it last read, listed or wrote is what is
 * stored: a reconcile (a resync every 30 s per BundleDeployment) takes it from memory rather than with a
 * GET, for {@link INVENTORY_TRUST_MS}, after which it is read again (so that an inventory edited or
 * deleted by hand is seen). The listing at start-up ({@link list}) seeds it: one LIST instead of one GET
 * per BundleDeployment, and a BundleDeployment new to the cluster needs no read to know it has none.
 * A failed write forgets it: whether it was stored is unknown. Entries are keyed by ConfigMap name.
 */
export class InventoryStore {
  private readonly known = new Map<string, { inventory: Inventory | undefined; at: number }>();
  /** When the last complete listing was made, and the inventory ConfigMaps it found. */
  private listing: { at: number; names: Set<string> } | undefined;

  constructor(
    private readonly client: InventoryClient,
    private readonly namespace: string,
    private readonly clusterNamespace: string,
    private readonly now: () => number = Date.now,
  ) {}

  /** The inventory of a BundleDeployment, if it has one. */
  async get(bundleDeploymentName: string): Promise<Inventory | undefined> {
    const name = inventoryName(bundleDeploymentName);
    const entry = this.known.get(name);
    if (entry && this.fresh(entry.at)) return entry.inventory && structuredClone(entry.inventory);
    if (!entry && this.listing && this.fresh(this.listing.at) && !this.listing.names.has(name)) return undefined;
    const cm = await this.client.get({ apiVersion: 'v1', kind: 'ConfigMap', namespace: this.namespace, name });
    const inventory = cm ? inventoryFromConfigMap(cm) : undefined;
    this.remember(name, inventory);
    return inventory && structuredClone(inventory);
  }

  /** Writes (creates or replaces) an inventory. */
  async put(inv: Inventory): Promise<void> {
    const cm = inventoryToConfigMap(inv, this.namespace, this.clusterNamespace);
    this.forget(cm.metadata.name);
    await this.client.apply(cm, AGENT_FIELD_MANAGER, true);
    // Remembered as a read of what was written would give it (ids normalized).
    this.remember(cm.metadata.name, inventoryFromConfigMap(cm));
  }

  /** Deletes an inventory. */
  async delete(bundleDeploymentName: string): Promise<void> {
    const name = inventoryName(bundleDeploymentName);
    this.forget(name);
    await this.client.delete({ apiVersion: 'v1', kind: 'ConfigMap', namespace: this.namespace, name });
    this.remember(name, undefined);
  }

  private fresh(at: number): boolean {
    return this.now() - at < INVENTORY_TRUST_MS;
  }

  /** Unknown from now on: read again, even if a listing did not have it. */
  private forget(name: string): void {
    this.known.delete(name);
    this.listing?.names.add(name);
  }

  private remember(name: string, inventory: Inventory | undefined, at = this.now()): void {
    if (this.known.size >= MAX_REMEMBERED) {
      this.known.clear();
      this.listing = undefined;
    }
    this.known.set(name, { inventory, at });
  }

  /**
   * Names of the BundleDeployments of this cluster namespace that have an inventory; remembers every
   * inventory listed (an unreadable one is left to {@link get}, which says what is wrong with it).
   */
  async list(): Promise<string[]> {
    const at = this.now();
    const { items } = await this.client.list({ apiVersion: 'v1', kind: 'ConfigMap', namespace: this.namespace }, `${INVENTORY_LABEL}=true`);
    this.listing = { at, names: new Set(items.map((cm) => cm.metadata.name)) };
    for (const cm of items) {
      try {
        if (!this.known.has(cm.metadata.name)) this.remember(cm.metadata.name, inventoryFromConfigMap(cm), at);
      } catch {
        // Read again, and refused with its reason, when its BundleDeployment is reconciled.
      }
    }
    return items.flatMap((cm) => {
      const owner = cm.metadata.annotations?.[INVENTORY_OWNER_ANNOTATION];
      const slash = owner?.indexOf('/') ?? -1;
      return owner && slash > 0 && owner.slice(0, slash) === this.clusterNamespace ? [owner.slice(slash + 1)] : [];
    });
  }
}
