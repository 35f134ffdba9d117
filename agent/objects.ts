import { Annotation, Label, Reason } from '../lib/api/index.js';
import { apiGroup, type RenderedObject } from '../lib/bundle/index.js';
import { StallingError, WaitingError } from '../lib/errors.js';
import type { KubeObject } from '../lib/kube/client.js';

/**
 * The desired downstream objects of one BundleDeployment, as pure functions: their identity, how rendered
 * objects become applicable objects (namespaces, the bundle-id label, the deployment-id annotation, no
 * server-owned fields), the checks done before anything is applied, and the order of apply and prune.
 */

/** The server-side apply field manager of every write the agent makes downstream. */
export const AGENT_FIELD_MANAGER = 'flotilla-agent';

/** Field manager for namespaces the agent creates (or labels) because the bundle deploys into them. */
export const NAMESPACE_FIELD_MANAGER = 'flotilla-agent-namespace';

/** Namespace of namespaced objects when neither the bundle nor the options name one (Fleet's default). */
export const FALLBACK_NAMESPACE = 'default';

/** Identifies one downstream object. */
export interface ObjectId {
  apiVersion: string;
  kind: string;
  namespace?: string;
  name: string;
}

/** The identity of an object: its API group (not version), kind, namespace and name. */
export function idKey(id: ObjectId): string {
  return `${apiGroup(id.apiVersion)}/${id.kind}/${id.namespace ?? ''}/${id.name}`;
}

/** The ObjectId of an object. */
export function idOf(obj: { apiVersion: string; kind: string; metadata: { name: string; namespace?: string } }): ObjectId {
  const id: ObjectId = { apiVersion: obj.apiVersion, kind: obj.kind, name: obj.metadata.name };
  if (obj.metadata.namespace) id.namespace = obj.metadata.namespace;
  return id;
}

/** `Kind namespace/name` for messages. */
export function describeId(id: ObjectId): string {
  return `${id.kind} ${id.namespace ? `${id.namespace}/` : ''}${id.name}`;
}

/** Whether a kind is namespaced: true, false, or undefined when the cluster does not serve it (yet). */
export type ScopeLookup = (apiVersion: string, kind: string) => boolean | undefined;

/** True for the Namespace kind of the core group. */
export function isNamespaceKind(id: { apiVersion: string; kind: string }): boolean {
  return id.apiVersion === 'v1' && id.kind === 'Namespace';
}

/** True for CustomResourceDefinitions. */
export function isCrdKind(id: { apiVersion: string; kind: string }): boolean {
  return apiGroup(id.apiVersion) === 'apiextensions.k8s.io' && id.kind === 'CustomResourceDefinition';
}

/**
 * The kinds defined by CRDs in the bundle itself, with their scope (true = namespaced), keyed
 * `group/kind`: a custom resource next to its CRD can be placed before the API server serves it.
 */
export function crdScopes(objects: readonly RenderedObject[]): Map<string, boolean> {
  const scopes = new Map<string, boolean>();
  for (const obj of objects) {
    if (!isCrdKind(obj)) continue;
    const spec = (obj as { spec?: { group?: unknown; names?: { kind?: unknown }; scope?: unknown } }).spec;
    if (typeof spec?.group === 'string' && typeof spec.names?.kind === 'string') {
      scopes.set(`${spec.group}/${spec.names.kind}`, spec.scope !== 'Cluster');
    }
  }
  return scopes;
}

/** Metadata fields owned by the API server; a manifest that carries them would break server-side apply. */
const SERVER_METADATA = [
  'uid',
  'resourceVersion',
  'generation',
  'creationTimestamp',
  'deletionTimestamp',
  'deletionGracePeriodSeconds',
  'managedFields',
  'selfLink',
];

/** What {@link prepareObjects} needs besides the rendered objects. */
export interface PrepareContext {
  /** The BundleDeployment name: value of the bundle-id label. */
  bundleDeploymentName: string;
  /** The deployment ID written to the deployment-id annotation. */
  deploymentID: string;
  /** Scope of kinds the cluster serves (CRDs of the bundle are looked up first). */
  isNamespaced: ScopeLookup;
  /** Namespace for namespaced objects that still have none after rendering. */
  fallbackNamespace?: string;
}

/** A desired object, ready to apply, and whether its kind is known to the cluster now. */
export interface DesiredObject {
  /** Shares its content (all but the top level and metadata) with the rendered object: copy before changing it. */
  object: KubeObject;
  id: ObjectId;
  namespaced: boolean;
  /** False when the kind is only defined by a CRD of this bundle that the cluster does not serve yet. */
  served: boolean;
}

/**
 * Turns rendered objects into applicable ones: cluster-scoped objects lose any namespace, namespaced ones
 * without one get the fallback, server-owned metadata and `status` are dropped, and every object gets the
 * bundle-id label and deployment-id annotation. A kind neither served nor defined by the bundle's CRDs is
 * an error (KindNotFound, waiting: another bundle may install it).
 */
export function prepareObjects(rendered: readonly RenderedObject[], ctx: PrepareContext): DesiredObject[] {
  const bundleCrds = crdScopes(rendered);
  const missingKinds = new Set<string>();
  const missingObjects: string[] = [];
  const out: DesiredObject[] = [];
  for (const source of rendered) {
    const served = ctx.isNamespaced(source.apiVersion, source.kind);
    const fromBundle = bundleCrds.get(`${apiGroup(source.apiVersion)}/${source.kind}`);
    const namespaced = served ?? fromBundle;
    if (namespaced === undefined) {
      missingKinds.add(`${source.kind} (${source.apiVersion})`);
      missingObjects.push(`${source.kind} ${source.metadata.namespace ? `${source.metadata.namespace}/` : ''}${source.metadata.name}`);
      continue;
    }
    // A shallow copy: the content below the top level and metadata stays shared with the render cache (never
    // changed in place), so a resync of a large bundle does not copy it again.
    const { status: _status, ...top } = source as unknown as KubeObject & { status?: unknown };
    const object = { ...top, metadata: { ...source.metadata } } as KubeObject;
    for (const field of SERVER_METADATA) delete object.metadata[field];
    if (!namespaced) delete object.metadata.namespace;
    else if (!object.metadata.namespace) object.metadata.namespace = ctx.fallbackNamespace ?? FALLBACK_NAMESPACE;
    object.metadata.labels = { ...object.metadata.labels, [Label.BundleID]: ctx.bundleDeploymentName };
    object.metadata.annotations = { ...object.metadata.annotations, [Annotation.DeploymentID]: ctx.deploymentID };
    out.push({ object, id: idOf(object), namespaced, served: served !== undefined });
  }
  if (missingKinds.size > 0) {
    // Waiting, not stalling: another bundle may install the CRD.
    const objects = missingObjects.sort();
    const more = objects.length > 3 ? ` and ${objects.length - 3} more` : '';
    throw new WaitingError(
      'KindNotFound',
      `the cluster does not serve ${[...missingKinds].sort().join(', ')} and the bundle defines no CRD for it ` +
        `(objects: ${objects.slice(0, 3).join(', ')}${more}); nothing was applied`,
      { retryAfterMs: 15_000 },
    );
  }
  return out;
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** Objects in the agent's namespace that a bundle must never overwrite (the agent's own state). */
export interface ReservedObjects {
  namespace: string;
  /** Secret and ConfigMap names the agent owns (state, bootstrap). */
  names: readonly string[];
  /** Name prefix of inventory ConfigMaps. */
  inventoryPrefix: string;
}

/**
 * Checks the prepared objects before anything is applied: names and namespaces are valid, the bundle
 * does not touch the agent's own state, and it is not larger than `maxObjects`. Throws StallingError
 * (InvalidBundle or BundleTooLarge) naming the first offending object.
 */
export function validateObjects(objects: readonly DesiredObject[], reserved: ReservedObjects, maxObjects: number): void {
  if (objects.length > maxObjects) {
    throw new StallingError(Reason.BundleTooLarge, `the bundle renders ${objects.length} objects, more than the limit of ${maxObjects}`);
  }
  for (const { id } of objects) {
    const what = describeId(id);
    if (id.name.length > 253 || !isPathSafeName(id.name)) {
      throw new StallingError(Reason.InvalidBundle, `${what}: metadata.name "${id.name}" is not a valid object name`);
    }
    if (id.namespace !== undefined && (id.namespace.length > 63 || !DNS_LABEL.test(id.namespace))) {
      throw new StallingError(Reason.InvalidBundle, `${what}: metadata.namespace "${id.namespace}" is not a valid namespace name`);
    }
    const inAgentNamespace = id.namespace === reserved.namespace && (id.kind === 'Secret' || id.kind === 'ConfigMap') && id.apiVersion === 'v1';
    if (inAgentNamespace && (reserved.names.includes(id.name) || id.name.startsWith(reserved.inventoryPrefix))) {
      throw new StallingError(Reason.InvalidBundle, `${what}: the bundle may not overwrite the agent's own state`);
    }
  }
}

/**
 * Names must be usable in a URL path; each kind's own rules (DNS subdomain for most, looser for RBAC's
 * "system:..." names) are checked by the API server in the dry run that precedes every apply.
 */
function isPathSafeName(name: string): boolean {
  return name !== '.' && name !== '..' && !/[/%]/.test(name) && name.length > 0;
}

/**
 * Apply order of kinds in the second phase (Helm's install order, which follows dependencies: what is
 * referenced comes before what references it). Kinds not listed, custom resources above all, come last.
 */
const KIND_ORDER = [
  'NetworkPolicy',
  'ResourceQuota',
  'LimitRange',
  'PodSecurityPolicy',
  'PodDisruptionBudget',
  'ServiceAccount',
  'Secret',
  'ConfigMap',
  'StorageClass',
  'PersistentVolume',
  'PersistentVolumeClaim',
  'ClusterRole',
  'ClusterRoleBinding',
  'Role',
  'RoleBinding',
  'Service',
  'DaemonSet',
  'Pod',
  'ReplicationController',
  'ReplicaSet',
  'Deployment',
  'HorizontalPodAutoscaler',
  'StatefulSet',
  'Job',
  'CronJob',
  'IngressClass',
  'Ingress',
  'APIService',
  'MutatingWebhookConfiguration',
  'ValidatingWebhookConfiguration',
];

/** Rank of an object in apply order: Namespaces, then CRDs, then {@link KIND_ORDER}, then everything else. */
export function applyRank(id: { apiVersion: string; kind: string }): number {
  if (isNamespaceKind(id)) return 0;
  if (isCrdKind(id)) return 1;
  const index = KIND_ORDER.indexOf(id.kind);
  return index < 0 ? 2 + KIND_ORDER.length : 2 + index;
}

function compareIds(a: ObjectId, b: ObjectId): number {
  const ka = idKey(a);
  const kb = idKey(b);
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}

/** Sorts objects into apply order (stable and deterministic: rank, then identity). */
export function sortForApply<T extends { id: ObjectId }>(objects: readonly T[]): T[] {
  return [...objects].sort((a, b) => applyRank(a.id) - applyRank(b.id) || compareIds(a.id, b.id));
}

/**
 * Splits objects into the two apply phases: first Namespaces and CRDs (the agent then waits for the
 * CRDs to be Established), then everything else in {@link sortForApply} order.
 */
export function applyPhases<T extends { id: ObjectId }>(objects: readonly T[]): { first: T[]; rest: T[] } {
  const sorted = sortForApply(objects);
  return { first: sorted.filter((o) => applyRank(o.id) <= 1), rest: sorted.filter((o) => applyRank(o.id) > 1) };
}

/** Sorts object ids into prune order: the reverse of apply order, so Namespaces and CRDs go last. */
export function sortForPrune(ids: readonly ObjectId[]): ObjectId[] {
  return [...ids].sort((a, b) => applyRank(b) - applyRank(a) || compareIds(a, b));
}

/** A namespace the agent makes sure exists, with the labels and annotations the options ask for. */
export interface EnsuredNamespace {
  name: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

/** The options that decide namespace labels: the target namespace and what to put on it. */
export interface NamespaceOptions {
  /** The namespace the bundle deploys into (targetNamespace, else namespace, else defaultNamespace). */
  target?: string | undefined;
  labels?: Record<string, string> | undefined;
  annotations?: Record<string, string> | undefined;
}

/**
 * The namespaces of a deployment, as Fleet has them: the agent creates the target namespace (as
 * `helm install --create-namespace` creates the release namespace), without owning its lifecycle (it is
 * never pruned), and puts `namespaceLabels`/`namespaceAnnotations` on it: merged into the bundle's own
 * Namespace object when it has one (in place), else on the ensured namespace. Any other namespace an
 * object lives in must be defined by the bundle or exist already: `required` lists those, for the agent
 * to check before it applies anything (a typo in a namespace must not create namespaces across a fleet).
 */
export function namespacesOf(objects: readonly DesiredObject[], options: NamespaceOptions = {}): { ensure: EnsuredNamespace[]; required: string[] } {
  const defined = new Map(objects.filter((o) => isNamespaceKind(o.id)).map((o) => [o.id.name, o.object]));
  const used = new Set(objects.flatMap((o) => (o.id.namespace ? [o.id.namespace] : [])));
  const target = options.target;
  const decorate = target !== undefined && (options.labels !== undefined || options.annotations !== undefined);
  const ensure: EnsuredNamespace[] = [];
  if (target !== undefined) {
    const own = defined.get(target);
    if (own && decorate) {
      // The options (a cluster's customization) win over the manifest; the bundle-id label stays ours.
      own.metadata.labels = { ...own.metadata.labels, ...options.labels, [Label.BundleID]: own.metadata.labels?.[Label.BundleID] ?? '' };
      own.metadata.annotations = { ...own.metadata.annotations, ...options.annotations };
    } else if (!own && (used.has(target) || decorate)) {
      const ns: EnsuredNamespace = { name: target };
      if (decorate && options.labels) ns.labels = { ...options.labels };
      if (decorate && options.annotations) ns.annotations = { ...options.annotations };
      ensure.push(ns);
    }
  }
  const required = [...used].filter((ns) => ns !== target && !defined.has(ns)).sort();
  return { ensure, required };
}
