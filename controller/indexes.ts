import { Label, type Bundle, type BundleDeployment, type Cluster, type ClusterGroup } from '../lib/api/index.js';
import type { KubeObject } from '../lib/kube/client.js';
import type { IndexFunc } from '../lib/kube/informer.js';
import type { ReconcilerCaches } from './ports.js';

/**
 * The secondary indexes of the controller's informers (lib/kube/informer.ts `addIndex`), so that a reconcile
 * finds "this Bundle's BundleDeployments" or "the Clusters of this workspace" without a scan of every cached
 * object: a scan per pass made a rollout of N bundles cost N² label checks. The in-memory caches of the unit
 * tests (controller/testing.ts) answer the same names with the same functions.
 */

/** Index names. */
export const Index = {
  /** Every kind here: the object's namespace. */
  namespace: 'namespace',
  /** BundleDeployments: `namespace/name` of their Bundle (from its labels). */
  bundle: 'bundle',
  /** Bundles and BundleDeployments: `namespace/name` of their GitRepo (from their labels). */
  repo: 'repo',
} as const;

/** The value {@link Index.bundle} and {@link Index.repo} file objects under. */
export function indexKey(namespace: string | undefined, name: string): string {
  return `${namespace ?? ''}/${name}`;
}

/** The BundleDeployments of Bundle `namespace/name`. */
export function deploymentsOfBundle(caches: Pick<ReconcilerCaches, 'bundleDeployments'>, namespace: string, name: string): (BundleDeployment & KubeObject)[] {
  return caches.bundleDeployments.byIndex(Index.bundle, indexKey(namespace, name));
}

const byNamespace = (o: KubeObject) => [o.metadata.namespace ?? ''];

/** What each informer indexes, by the informer's name in `Informers`. */
export const INDEXES = {
  bundles: {
    [Index.namespace]: byNamespace,
    [Index.repo]: (b) => {
      const repo = b.metadata.labels?.[Label.RepoName];
      return repo ? [indexKey(b.metadata.namespace, repo)] : [];
    },
  } as Record<string, IndexFunc<Bundle & KubeObject>>,
  bundleDeployments: {
    [Index.namespace]: byNamespace,
    [Index.bundle]: (bd) => {
      const name = bd.metadata.labels?.[Label.BundleName];
      return name ? [indexKey(bd.metadata.labels?.[Label.BundleNamespace], name)] : [];
    },
    [Index.repo]: (bd) => {
      const repo = bd.metadata.labels?.[Label.RepoName];
      return repo ? [indexKey(bd.metadata.labels?.[Label.BundleNamespace], repo)] : [];
    },
  } as Record<string, IndexFunc<BundleDeployment & KubeObject>>,
  clusters: { [Index.namespace]: byNamespace } as Record<string, IndexFunc<Cluster & KubeObject>>,
  clusterGroups: { [Index.namespace]: byNamespace } as Record<string, IndexFunc<ClusterGroup & KubeObject>>,
};

/** {@link INDEXES} by the kind each informer caches. */
export const INDEXES_BY_KIND: Record<string, Record<string, IndexFunc<KubeObject>> | undefined> = {
  Bundle: INDEXES.bundles as Record<string, IndexFunc<KubeObject>>,
  BundleDeployment: INDEXES.bundleDeployments as Record<string, IndexFunc<KubeObject>>,
  Cluster: INDEXES.clusters as Record<string, IndexFunc<KubeObject>>,
  ClusterGroup: INDEXES.clusterGroups as Record<string, IndexFunc<KubeObject>>,
};
