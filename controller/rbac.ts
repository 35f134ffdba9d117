import { createHash } from 'node:crypto';
import { isStatus, type KubeClient, type KubeObject } from '../lib/kube/client.js';
import { decodeSecretData, encodeSecretData } from '../lib/kube/secret.js';
import { StallingError, WaitingError } from '../lib/errors.js';
import { AGENT_SERVICE_ACCOUNT, API_VERSION, Label, MANAGED_LABEL_VALUE } from '../lib/api/index.js';

/**
 * The upstream objects that give agents (and agents-to-be) their access: namespaces, ServiceAccounts,
 * Roles and RoleBindings as pure desired-state builders, applied with server-side apply under one field
 * manager so that every reconcile is idempotent; plus the TokenRequest call that issues credentials.
 * The rules here ARE the trust boundary between clusters: change them only with the e2e RBAC tests.
 */

/** Field manager of every object the controller applies. */
export const CONTROLLER_FIELD_MANAGER = 'flotilla-controller';

/** One RBAC policy rule (rbac.authorization.k8s.io/v1 PolicyRule). */
export interface PolicyRule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
  resourceNames?: string[];
}

/** An owner reference (same namespace only: Kubernetes ignores cross-namespace owners). */
export interface OwnerRef {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
}

/**
 * Returns `name` if it has at most `max` characters, otherwise a prefix of it followed by `-` and the
 * first 8 hex digits of its sha256, `max` characters long at most, so that distinct long names stay distinct.
 */
export function boundedName(name: string, max: number): string {
  if (name.length <= max) return name;
  const hash = createHash('sha256').update(name).digest('hex').slice(0, 8);
  const prefix = name.slice(0, max - hash.length - 1).replace(/[-.]+$/, '');
  return `${prefix}-${hash}`;
}

/** Labels every object the controller creates carries, plus `extra`. */
export function managedLabels(extra: Record<string, string> = {}): Record<string, string> {
  return { [Label.Managed]: MANAGED_LABEL_VALUE, ...extra };
}

/** Owner reference to a Flotilla object (for garbage collection of what it caused, same namespace only). */
export function ownerRefTo(obj: { kind: string; metadata: { name: string; uid?: string | undefined } }): OwnerRef[] {
  return obj.metadata.uid ? [{ apiVersion: API_VERSION, kind: obj.kind, name: obj.metadata.name, uid: obj.metadata.uid }] : [];
}

function meta(name: string, namespace: string | undefined, labels: Record<string, string>, owners: OwnerRef[]): KubeObject['metadata'] {
  return {
    name,
    ...(namespace ? { namespace } : {}),
    labels,
    ...(owners.length > 0 ? { ownerReferences: owners } : {}),
  };
}

/** A Namespace with `labels`. */
export function namespaceObject(name: string, labels: Record<string, string>): KubeObject {
  return { apiVersion: 'v1', kind: 'Namespace', metadata: meta(name, undefined, labels, []) };
}

/** A ServiceAccount whose token is never mounted (it is only used through TokenRequest). */
export function serviceAccountObject(namespace: string, name: string, labels: Record<string, string>, owners: OwnerRef[] = []): KubeObject {
  return { apiVersion: 'v1', kind: 'ServiceAccount', metadata: meta(name, namespace, labels, owners), automountServiceAccountToken: false };
}

/** A Role with exactly `rules`. */
export function roleObject(namespace: string, name: string, rules: PolicyRule[], labels: Record<string, string>, owners: OwnerRef[] = []): KubeObject {
  return { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: meta(name, namespace, labels, owners), rules };
}

/** A RoleBinding of Role `roleName` (same namespace) to one ServiceAccount. */
export function roleBindingObject(
  namespace: string,
  name: string,
  roleName: string,
  subject: { namespace: string; name: string },
  labels: Record<string, string>,
  owners: OwnerRef[] = [],
): KubeObject {
  return {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'RoleBinding',
    metadata: meta(name, namespace, labels, owners),
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: roleName },
    subjects: [{ kind: 'ServiceAccount', namespace: subject.namespace, name: subject.name }],
  };
}

const GROUP = API_VERSION.split('/')[0] ?? 'flotilla.dev';

/**
 * What an import token (registration step 1) may do: create and get ClusterRegistrations in the workspace
 * namespace, and get (never list or watch) Secrets in the registration namespace, so that it can read only
 * the credential whose name it knows.
 */
export function importRules(): { workspace: PolicyRule[]; registration: PolicyRule[] } {
  return {
    workspace: [{ apiGroups: [GROUP], resources: ['clusterregistrations'], verbs: ['create', 'get'] }],
    registration: [{ apiGroups: [''], resources: ['secrets'], verbs: ['get'] }],
  };
}

/**
 * What a registered agent may do (registration step 4): in its cluster namespace, read BundleDeployments
 * and Secrets (registry credentials), patch BundleDeployments (their finalizer) and their status, renew its own token and record
 * events; in the workspace namespace, read and update the status of its own Cluster only.
 */
export function agentRules(clusterName: string): { clusterNamespace: PolicyRule[]; workspace: PolicyRule[] } {
  return {
    clusterNamespace: [
      // patch: the agent adds and removes its finalizer (it prunes downstream before a BundleDeployment goes).
      { apiGroups: [GROUP], resources: ['bundledeployments'], verbs: ['get', 'list', 'watch', 'patch'] },
      { apiGroups: [GROUP], resources: ['bundledeployments/status'], verbs: ['get', 'patch', 'update'] },
      { apiGroups: [''], resources: ['secrets'], verbs: ['get', 'list', 'watch'] },
      { apiGroups: [''], resources: ['serviceaccounts/token'], verbs: ['create'], resourceNames: [AGENT_SERVICE_ACCOUNT] },
      { apiGroups: [''], resources: ['events'], verbs: ['create', 'patch'] },
    ],
    workspace: [
      { apiGroups: [GROUP], resources: ['clusters'], verbs: ['get'], resourceNames: [clusterName] },
      { apiGroups: [GROUP], resources: ['clusters/status'], verbs: ['get', 'patch', 'update'], resourceNames: [clusterName] },
    ],
  };
}

/**
 * Applies `objects` in order with server-side apply and returns them as applied. A namespace being deleted becomes a WaitingError
 * (it will be gone soon and can then be created again); an object the API server rejects as invalid
 * becomes a StallingError naming it.
 */
export async function applyObjects(kube: KubeClient, objects: readonly KubeObject[]): Promise<KubeObject[]> {
  const applied: KubeObject[] = [];
  for (const obj of objects) {
    const what = `${obj.kind} ${obj.metadata.namespace ? `${obj.metadata.namespace}/` : ''}${obj.metadata.name}`;
    try {
      applied.push(await kube.apply(obj, CONTROLLER_FIELD_MANAGER));
    } catch (err) {
      if (isStatus(err, 403) && /being terminated/.test((err as Error).message)) {
        throw new WaitingError('NamespaceTerminating', `cannot create ${what}: its namespace is being deleted`, { cause: err, retryAfterMs: 5000 });
      }
      if (isStatus(err, 422)) throw new StallingError('InvalidSpec', `the API server rejected ${what}: ${(err as Error).message}`, { cause: err });
      throw err;
    }
  }
  return applied;
}

/** Throws a WaitingError when namespace `name` exists and is being deleted. */
export async function ensureNotTerminating(kube: KubeClient, name: string): Promise<void> {
  const ns = await kube.get({ apiVersion: 'v1', kind: 'Namespace', name });
  if (ns?.metadata.deletionTimestamp) {
    throw new WaitingError('NamespaceTerminating', `namespace ${name} is being deleted; waiting before creating it again`, { retryAfterMs: 5000 });
  }
}

/** A credential issued by the TokenRequest API. Never log it or put it in status. */
export interface IssuedToken {
  token: string;
  expires: Date;
}

/** The shortest lifetime the API server accepts in a TokenRequest. */
export const MIN_TOKEN_SECONDS = 600;

/**
 * Issues a token for ServiceAccount `namespace/name` via the TokenRequest API, valid for
 * `expirationSeconds` (at least {@link MIN_TOKEN_SECONDS}; the API server may shorten it, the returned
 * `expires` is what it granted).
 */
export async function requestToken(kube: KubeClient, namespace: string, name: string, expirationSeconds: number): Promise<IssuedToken> {
  const path = `/api/v1/namespaces/${encodeURIComponent(namespace)}/serviceaccounts/${encodeURIComponent(name)}/token`;
  const res = await kube.raw<{ status?: { token?: string; expirationTimestamp?: string } }>('POST', path, {
    apiVersion: 'authentication.k8s.io/v1',
    kind: 'TokenRequest',
    spec: { expirationSeconds: Math.max(MIN_TOKEN_SECONDS, Math.ceil(expirationSeconds)) },
  });
  const token = res.status?.token;
  const expires = res.status?.expirationTimestamp;
  if (!token || !expires)
    throw new WaitingError('TokenNotIssued', `the API server issued no token for ServiceAccount ${namespace}/${name}`, { retryAfterMs: 5000 });
  return { token, expires: new Date(expires) };
}

/** A Secret of type Opaque holding `values` (base64-encoded here; apply never sends stringData). */
export function secretObject(
  namespace: string,
  name: string,
  values: Record<string, string>,
  labels: Record<string, string>,
  annotations: Record<string, string> = {},
  owners: OwnerRef[] = [],
): KubeObject {
  const data = encodeSecretData(values);
  const metadata = meta(name, namespace, labels, owners);
  if (Object.keys(annotations).length > 0) metadata.annotations = annotations;
  return { apiVersion: 'v1', kind: 'Secret', metadata, type: 'Opaque', data };
}

/** Decodes one key of a Secret's data; undefined when absent. */
export function secretValue(secret: KubeObject | undefined, key: string): string | undefined {
  return decodeSecretData((secret as { data?: unknown } | undefined)?.data)[key];
}
