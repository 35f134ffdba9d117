/** The registry of every Flotilla kind, in the order CRDs are generated and installed. */
import { BundleKind } from './bundle.js';
import { BundleDeploymentKind } from './bundledeployment.js';
import { ClusterGroupKind, ClusterKind } from './cluster.js';
import { GitRepoKind } from './gitrepo.js';
import type { KindDefinition } from './kind.js';
import { ClusterRegistrationKind, ClusterRegistrationTokenKind } from './registration.js';

/** Every Flotilla kind, in the order CRDs are generated and installed. */
export const kinds: readonly KindDefinition[] = [
  GitRepoKind,
  BundleKind,
  BundleDeploymentKind,
  ClusterKind,
  ClusterGroupKind,
  ClusterRegistrationTokenKind,
  ClusterRegistrationKind,
];

/** Returns the kind definition for a kind name ("GitRepo"), or undefined. */
export function kindByName(kind: string): KindDefinition | undefined {
  return kinds.find((k) => k.kind === kind);
}
