import { BundleState, Label, type BundleDeployment, type BundleRef } from '../lib/api/index.js';
import { matchesSelector } from '../lib/bundle/index.js';

/**
 * `dependsOn`: a BundleDeployment waits until the bundles it depends on are ready on the same cluster.
 * A dependency by `name` is the BundleDeployment (in this cluster namespace) of the bundle with that name
 * in the same bundle namespace; one by `selector` is every BundleDeployment whose labels match (at least
 * one must exist). Ready means status.ready with the current spec.deploymentID applied. With Fleet's
 * `acceptedStates`, the dependency's state on this cluster (Ready, or else the state its agent reported,
 * WaitApplied while its current deployment is not applied) must be one of them instead.
 */

type Dependent = Pick<BundleDeployment, 'metadata' | 'spec' | 'status'>;

function isReady(bd: Dependent): boolean {
  return bd.status?.ready === true && bd.status.appliedDeploymentID === bd.spec.deploymentID;
}

const STATES = new Set<string>(Object.values(BundleState));

/** The dependency's state on this cluster (see the module comment). */
function stateOf(bd: Dependent): BundleState {
  if (isReady(bd)) return BundleState.Ready;
  const reported = bd.status?.display?.state;
  if (reported !== undefined && STATES.has(reported) && reported !== BundleState.Ready) return reported as BundleState;
  return bd.status?.appliedDeploymentID === bd.spec.deploymentID ? BundleState.NotReady : BundleState.WaitApplied;
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
    else if (!ref.acceptedStates || ref.acceptedStates.length === 0) {
      if (!matches.every(isReady)) out.push(`${describeRef(ref)} (not ready)`);
    } else {
      const accepted = new Set<string>(ref.acceptedStates);
      const states = [...new Set(matches.map(stateOf))];
      if (!states.every((st) => accepted.has(st))) out.push(`${describeRef(ref)} (${states.join(', ')}; accepted: ${ref.acceptedStates.join(', ')})`);
    }
  }
  return out;
}
