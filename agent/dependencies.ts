import { Label, type BundleDeployment, type BundleRef } from '../lib/api/index.js';
import { matchesSelector } from '../lib/bundle/index.js';

/**
 * `dependsOn`: a BundleDeployment waits until the bundles it depends on are ready on the same cluster.
 * A dependency by `name` is the BundleDeployment (in this cluster namespace) of the bundle with that name
 * in the same bundle namespace; one by `selector` is every BundleDeployment whose labels match (at least
 * one must exist). Ready means status.ready with the current spec.deploymentID applied.
 */

type Dependent = Pick<BundleDeployment, 'metadata' | 'spec' | 'status'>;

function isReady(bd: Dependent): boolean {
  return bd.status?.ready === true && bd.status.appliedDeploymentID === bd.spec.deploymentID;
}

function describeRef(ref: BundleRef): string {
  if (ref.name) return `bundle ${ref.name}`;
  const labels = Object.entries(ref.selector?.matchLabels ?? {})
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
  return `bundles matching ${labels || 'a selector'}`;
}

/**
 * The dependencies of `bd` that are not ready among the BundleDeployments `others` of its cluster
 * namespace, described for a message; empty when every dependency is ready.
 */
export function unreadyDependencies(bd: Dependent, others: readonly Dependent[]): string[] {
  const bundleNamespace = bd.metadata.labels?.[Label.BundleNamespace];
  const out: string[] = [];
  for (const ref of bd.spec.dependsOn ?? []) {
    const matches = others.filter((o) => {
      if (o.metadata.name === bd.metadata.name) return false;
      const labels = o.metadata.labels ?? {};
      if (ref.name && (labels[Label.BundleName] ?? o.metadata.name) !== ref.name) return false;
      if (ref.name && bundleNamespace !== undefined && labels[Label.BundleNamespace] !== bundleNamespace) return false;
      return ref.selector ? matchesSelector(labels, ref.selector) : true;
    });
    if (matches.length === 0) out.push(`${describeRef(ref)} (not deployed to this cluster)`);
    else if (!matches.every(isReady)) out.push(`${describeRef(ref)} (not ready)`);
  }
  return out;
}
