import type { KubeObject } from '../lib/kube/client.js';

/**
 * Shards: several controllers share one upstream cluster, each reconciling only the GitRepos labelled for
 * it, and the Bundles and BundleDeployments made from them (which carry the same label), as Fleet's shards
 * do. An object without a shard label belongs to the default shard (a controller started without
 * `--shard-id`). Both Fleet's label and Flotilla's are read; Flotilla's wins when both are set.
 * Pure functions; the manager (controller/manager.ts) and the webhook receiver use them.
 */

/** Flotilla's shard label: the id of the shard that reconciles the object. */
export const SHARD_REF_LABEL = 'flotilla.dev/shard-ref';

/** Fleet's shard label, accepted so that Fleet GitRepos keep their shard. */
export const FLEET_SHARD_REF_LABEL = 'fleet.cattle.io/shard-ref';

/** The shard an object belongs to: its shard label, or '' (the default shard) when it has none. */
export function shardOf(labels: Record<string, string> | undefined): string {
  return labels?.[SHARD_REF_LABEL] || labels?.[FLEET_SHARD_REF_LABEL] || '';
}

/** Whether the controller of shard `shardId` ('' or undefined: the default shard) reconciles `obj`. */
export function inShard(obj: Pick<KubeObject, 'metadata'> | undefined, shardId: string | undefined): boolean {
  return obj !== undefined && shardOf(obj.metadata.labels) === (shardId ?? '');
}

/**
 * The shard labels an object made from `source` carries (a Bundle from its GitRepo, a BundleDeployment
 * from its Bundle): the ones `source` has, so the same shard owns the whole chain.
 */
export function shardLabelsOf(source: Pick<KubeObject, 'metadata'>): Record<string, string> {
  const labels = source.metadata.labels ?? {};
  const out: Record<string, string> = {};
  for (const key of [SHARD_REF_LABEL, FLEET_SHARD_REF_LABEL]) if (labels[key]) out[key] = labels[key];
  return out;
}

/** The leader-election Lease of shard `shardId`: one Lease per shard, so each shard has its own leader. */
export function shardLeaseName(leaseName: string, shardId: string | undefined): string {
  return shardId ? `${leaseName}-shard-${shardId}` : leaseName;
}

/** A shard id must fit a label value and a Lease name suffix: lower-case alphanumerics and '-', at most 40 characters. */
export const SHARD_ID = /^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$/;

/** A key filter for a controller of shard `shardId`: keys whose object (read from `cache`) belongs to the shard. */
export function shardFilter(cache: { get(key: string): Pick<KubeObject, 'metadata'> | undefined }, shardId: string | undefined): (key: string) => boolean {
  return (key) => inShard(cache.get(key), shardId);
}
