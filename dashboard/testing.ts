import { API_VERSION, Label, type BundleState } from '../lib/api/index.js';
import type { KubeObject } from '../lib/kube/client.js';
import type { Snapshot } from './model.js';
import type { FleetSource, WatchedKind } from './store.js';

/**
 * Objects for the dashboard's unit tests, shaped as the controller and the agent write them: Clusters
 * with a cluster namespace, ClusterGroups selecting by label, Bundles of a GitRepo and one
 * BundleDeployment per (bundle, cluster) whose status gives the state asked for.
 */

const T = '2026-11-29T12:00:00Z';

/** A Cluster `name` in `namespace` with `labels`; its cluster namespace is `cluster-<name>`. */
export function cluster(namespace: string, name: string, labels: Record<string, string> = {}): KubeObject {
  return {
    apiVersion: API_VERSION,
    kind: 'Cluster',
    metadata: { name, namespace, labels },
    status: { namespace: `cluster-${name}`, agent: { lastSeen: T, version: '0.1.0' }, display: { state: 'Ready', readyBundles: '1/1' } },
  };
}

/** A ClusterGroup selecting clusters whose label `key` is `value`. */
export function clusterGroup(namespace: string, name: string, key: string, value: string): KubeObject {
  return { apiVersion: API_VERSION, kind: 'ClusterGroup', metadata: { name, namespace }, spec: { selector: { matchLabels: { [key]: value } } } };
}

/** A Bundle of GitRepo `repo`, optionally with a failed Ready condition carrying `message`. */
export function bundle(namespace: string, name: string, repo: string, message?: string): KubeObject {
  const conditions = message
    ? [{ type: 'Ready', status: 'False', reason: 'ApplyFailed', message, lastTransitionTime: T }]
    : [{ type: 'Ready', status: 'True', reason: 'Succeeded', message: '', lastTransitionTime: T }];
  return {
    apiVersion: API_VERSION,
    kind: 'Bundle',
    metadata: { name, namespace, labels: { [Label.RepoName]: repo } },
    spec: { contentsID: 'sha256:c0', oci: { reference: `registry.test/x@sha256:${'a'.repeat(64)}`, digest: `sha256:${'a'.repeat(64)}` } },
    status: { conditions, display: { state: message ? 'ErrApplied' : 'Ready', readyClusters: '1/1' } },
  };
}

/** The status fields that make a BundleDeployment of deployment ID `d1` be in `state`. */
function statusFor(state: BundleState, message: string): Record<string, unknown> {
  const cond = (type: string, status: string, msg = '') => ({
    type,
    status,
    reason: status === 'True' ? 'Succeeded' : 'ApplyFailed',
    message: msg,
    lastTransitionTime: T,
  });
  switch (state) {
    case 'Ready':
      return { appliedDeploymentID: 'd1', ready: true, nonModified: true, conditions: [cond('Ready', 'True'), cond('Deployed', 'True')] };
    case 'ErrApplied':
      return { appliedDeploymentID: 'd0', conditions: [cond('Deployed', 'False', message), cond('Ready', 'False', message)] };
    case 'NotReady':
      return { appliedDeploymentID: 'd1', ready: false, nonModified: true, conditions: [cond('Ready', 'False', message), cond('Deployed', 'True')] };
    case 'Modified':
      return { appliedDeploymentID: 'd1', ready: true, nonModified: false, conditions: [cond('Deployed', 'True')] };
    case 'WaitApplied':
      return { appliedDeploymentID: 'd0' };
    default:
      return {};
  }
}

/** The BundleDeployment of bundle `namespace/bundleName` on `clusterName` (in its cluster namespace), in `state`. */
export function bundleDeployment(namespace: string, bundleName: string, clusterName: string, state: BundleState, message = ''): KubeObject {
  return {
    apiVersion: API_VERSION,
    kind: 'BundleDeployment',
    metadata: {
      name: bundleName,
      namespace: `cluster-${clusterName}`,
      labels: { [Label.BundleName]: bundleName, [Label.BundleNamespace]: namespace, [Label.Cluster]: clusterName },
    },
    spec: { deploymentID: 'd1' },
    status: statusFor(state, message),
  };
}

/** A GitRepo with a Ready condition and the given status display. */
export function gitRepo(namespace: string, name: string, display: { state?: string; message?: string } = {}): KubeObject {
  const ready = !display.message;
  return {
    apiVersion: API_VERSION,
    kind: 'GitRepo',
    metadata: { name, namespace },
    spec: { repo: `https://git.test/${name}.git`, branch: 'main' },
    status: {
      commit: 'c'.repeat(40),
      conditions: [
        { type: 'Ready', status: ready ? 'True' : 'False', reason: ready ? 'Succeeded' : 'ApplyFailed', message: display.message ?? '', lastTransitionTime: T },
      ],
      display: { readyBundleDeployments: '1/1', state: display.state ?? (ready ? '' : 'ErrApplied'), message: display.message ?? '' },
    },
  };
}

/** An empty snapshot. */
export function emptySnapshot(): Snapshot {
  return { gitRepos: [], bundles: [], bundleDeployments: [], clusters: [], clusterGroups: [] };
}

/** A {@link FleetSource} over a snapshot the test changes, with `changed(kind)` to notify listeners. */
export function memorySource(snapshot: Snapshot): FleetSource & { snapshot(): Snapshot; changed(kind: WatchedKind): void } {
  const listeners = new Set<(kind: WatchedKind) => void>();
  return {
    snapshot: () => snapshot,
    onChange(l) {
      listeners.add(l);
      return () => listeners.delete(l);
    },
    synced: () => ({ GitRepo: true, Bundle: true, BundleDeployment: true, Cluster: true, ClusterGroup: true }),
    changed(kind) {
      for (const l of listeners) l(kind);
    },
  };
}
