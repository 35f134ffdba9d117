import { setTimeout as sleep } from 'node:timers/promises';
import { Label, Reason } from '../lib/api/index.js';
import { TransientError, WaitingError, messageOf } from '../lib/errors.js';
import { KubeApiError, PARTIAL_OBJECT_METADATA, type KubeClient, type KubeObject } from '../lib/kube/client.js';
import { AGENT_FIELD_MANAGER, NAMESPACE_FIELD_MANAGER, describeId, idOf, type EnsuredNamespace, type ObjectId } from './objects.js';

/**
 * The downstream adapter: reads, dry-runs, applies and deletes objects in the agent's cluster with
 * server-side apply as {@link AGENT_FIELD_MANAGER}. API errors become ApplyFailed (transient: retried with
 * backoff, since the cluster may change), except that a dry run which cannot be evaluated yet (its
 * namespace does not exist, its kind is not served) is reported as such rather than as a failure.
 */

/** The outcome of a dry run. */
export type DryRun = { verified: true; object: KubeObject } | { verified: false; why: string };

/** Options of an {@link Applier}. */
export interface ApplierOptions {
  /** How long to wait for CRDs to become Established; default 60 s. */
  crdTimeoutMs?: number;
  /** How long to wait for a deleted object to disappear before re-creating it; default 30 s. */
  deleteTimeoutMs?: number;
  /** Poll interval for both waits; default 250 ms. */
  pollMs?: number;
}

/**
 * How long a namespace this applier found or created is trusted to exist before {@link Applier.ensureNamespace}
 * reads it again (a deployment into it then costs no GET). An object refused because its namespace is
 * missing (404) makes it forget, so the retry creates the namespace again.
 */
export const NAMESPACE_TRUST_MS = 10 * 60_000;

function applyFailed(what: string, err: unknown): TransientError {
  return new TransientError(Reason.ApplyFailed, `${what}: ${messageOf(err)}`, { cause: err });
}

/** How an apply or its dry run answers. */
export interface WriteOptions {
  /**
   * Ask for the stored object's metadata alone (PartialObjectMetadata), not its content: for a caller that
   * needs only its resourceVersion, such as a write of a large ConfigMap whose readiness needs no status.
   */
  metadataOnly?: boolean;
}

/** Reads and writes objects in the downstream cluster. */
export class Applier {
  private readonly crdTimeoutMs: number;
  private readonly deleteTimeoutMs: number;
  private readonly pollMs: number;
  private readonly asAccount = new Map<string, Applier>();
  /** Namespaces found or created, and when (see {@link NAMESPACE_TRUST_MS}). */
  private readonly namespaces = new Map<string, number>();

  constructor(
    readonly client: KubeClient,
    private readonly options: ApplierOptions = {},
    private readonly now: () => number = Date.now,
  ) {
    this.crdTimeoutMs = options.crdTimeoutMs ?? 60_000;
    this.deleteTimeoutMs = options.deleteTimeoutMs ?? 30_000;
    this.pollMs = options.pollMs ?? 250;
  }

  /**
   * An applier that acts as ServiceAccount `namespace/name` (Kubernetes impersonation), as Fleet's agent
   * does for a GitRepo's `serviceAccount`: the bundle can then do only what that account's RBAC allows.
   * The account must exist; otherwise nothing is applied and the error says which one to create.
   */
  async impersonating(namespace: string, name: string): Promise<Applier> {
    if (!(await this.client.get({ apiVersion: 'v1', kind: 'ServiceAccount', namespace, name }))) {
      throw new WaitingError(
        Reason.ServiceAccountNotFound,
        `service account ${namespace}/${name} (spec.serviceAccount) does not exist downstream; nothing was applied. ` +
          "Create it, with the RBAC the bundle needs, in the agent's namespace",
        { retryAfterMs: 15_000 },
      );
    }
    const key = `${namespace}/${name}`;
    let applier = this.asAccount.get(key);
    if (!applier) {
      applier = new Applier(this.client.impersonatingServiceAccount(namespace, name), this.options);
      this.asAccount.set(key, applier);
    }
    return applier;
  }

  /** Whether a kind is namespaced; undefined when the cluster does not serve it. */
  async isNamespaced(apiVersion: string, kind: string): Promise<boolean | undefined> {
    try {
      return await this.client.isNamespaced(apiVersion, kind);
    } catch (err) {
      if (err instanceof WaitingError && err.reason === 'KindNotFound') return undefined;
      throw err;
    }
  }

  /** Resolves the scope of every distinct kind of `objects` (one discovery call per group version). */
  async scopes(objects: readonly { apiVersion: string; kind: string }[]): Promise<(apiVersion: string, kind: string) => boolean | undefined> {
    const known = new Map<string, boolean | undefined>();
    for (const { apiVersion, kind } of objects) {
      const key = `${apiVersion}|${kind}`;
      if (!known.has(key)) known.set(key, await this.isNamespaced(apiVersion, kind));
    }
    return (apiVersion, kind) => known.get(`${apiVersion}|${kind}`);
  }

  /** Forgets discovery (after CRDs were installed). */
  resetDiscovery(): void {
    this.client.resetDiscovery();
  }

  /** The live object, or undefined when it (or its kind) does not exist. */
  async get(id: ObjectId): Promise<KubeObject | undefined> {
    try {
      return await this.client.get({ ...id });
    } catch (err) {
      if (err instanceof WaitingError && err.reason === 'KindNotFound') return undefined;
      throw applyFailed(`reading ${describeId(id)}`, err);
    }
  }

  /**
   * The live object's metadata alone (see KubeClient.getMetadata), as an object of its own apiVersion and
   * kind without content; undefined when it (or its kind) does not exist.
   */
  async getMetadata(id: ObjectId): Promise<KubeObject | undefined> {
    try {
      const meta = await this.client.getMetadata({ ...id });
      return meta && { apiVersion: id.apiVersion, kind: id.kind, metadata: meta.metadata };
    } catch (err) {
      if (err instanceof WaitingError && err.reason === 'KindNotFound') return undefined;
      throw applyFailed(`reading ${describeId(id)}`, err);
    }
  }

  private async applyPath(obj: KubeObject, manager: string, dryRun: boolean): Promise<string> {
    const path = await this.client.pathFor({ apiVersion: obj.apiVersion, kind: obj.kind, namespace: obj.metadata.namespace, name: obj.metadata.name });
    return `${path}?fieldManager=${encodeURIComponent(manager)}&force=true${dryRun ? '&dryRun=All' : ''}`;
  }

  /**
   * Server-side apply dry run: the object as the API server would store it (defaults, normalisation,
   * admission). A rejection is ApplyFailed; a missing namespace or kind means "cannot verify yet".
   */
  async dryRun(obj: KubeObject, options: WriteOptions = {}): Promise<DryRun> {
    const id = idOf(obj);
    let path: string;
    try {
      path = await this.applyPath(obj, AGENT_FIELD_MANAGER, true);
    } catch (err) {
      if (err instanceof WaitingError && err.reason === 'KindNotFound') return { verified: false, why: `kind ${obj.kind} is not served yet` };
      throw applyFailed(`checking ${describeId(id)}`, err);
    }
    try {
      return { verified: true, object: await this.patch(path, obj, options) };
    } catch (err) {
      if (this.namespaceMissing(err, id.namespace)) return { verified: false, why: `namespace ${id.namespace} does not exist yet` };
      throw applyFailed(`the API server rejects ${describeId(id)}`, err);
    }
  }

  /**
   * Whether `err`, the answer to an apply in `namespace`, says the namespace does not exist (apply creates
   * missing objects, so a 404 can mean nothing else); if so the namespace is no longer trusted to exist.
   */
  private namespaceMissing(err: unknown, namespace: string | undefined): namespace is string {
    if (!(err instanceof KubeApiError && err.statusCode === 404 && namespace)) return false;
    this.namespaces.delete(namespace);
    return true;
  }

  /** The apply patch itself; with `metadataOnly` the answer is the object's metadata under its own apiVersion and kind. */
  private async patch(path: string, obj: KubeObject, options: WriteOptions): Promise<KubeObject> {
    if (!options.metadataOnly) return await this.client.raw<KubeObject>('PATCH', path, obj, 'application/apply-patch+yaml');
    const meta = await this.client.raw<KubeObject>('PATCH', path, obj, 'application/apply-patch+yaml', PARTIAL_OBJECT_METADATA);
    return { apiVersion: obj.apiVersion, kind: obj.kind, metadata: meta.metadata };
  }

  /** Applies an object (server-side apply, forced); returns the object as stored (see {@link WriteOptions}). */
  async apply(obj: KubeObject, options: WriteOptions = {}): Promise<KubeObject> {
    try {
      return await this.patch(await this.applyPath(obj, AGENT_FIELD_MANAGER, false), obj, options);
    } catch (err) {
      this.namespaceMissing(err, obj.metadata.namespace);
      throw applyFailed(`applying ${describeId(idOf(obj))}`, err);
    }
  }

  /** Deletes an object and re-creates it from `obj` (correctDrift.force, when apply is refused). */
  async replace(obj: KubeObject, options: WriteOptions = {}): Promise<KubeObject> {
    const id = idOf(obj);
    await this.deleteAndWait(id);
    return await this.apply(obj, options);
  }

  /** Deletes an object and waits until it is gone (finalizers may hold it for a while). */
  async deleteAndWait(id: ObjectId): Promise<void> {
    await this.delete(id);
    const deadline = Date.now() + this.deleteTimeoutMs;
    while (await this.get(id)) {
      if (Date.now() > deadline) throw new WaitingError(Reason.ApplyFailed, `${describeId(id)} is still being deleted`, { retryAfterMs: 10_000 });
      await sleep(this.pollMs);
    }
  }

  /** Deletes an object; false when it was already gone. */
  async delete(id: ObjectId): Promise<boolean> {
    if (id.kind === 'Namespace' && !id.namespace) this.namespaces.delete(id.name);
    try {
      return await this.client.delete({ ...id });
    } catch (err) {
      if (err instanceof WaitingError && err.reason === 'KindNotFound') return false;
      throw new TransientError(Reason.ApplyFailed, `deleting ${describeId(id)}: ${messageOf(err)}`, { cause: err });
    }
  }

  /**
   * Deletes an object listed in an inventory, unless the live object no longer carries this bundle
   * deployment's label (another bundle took it over, or a person re-created it): then it is left alone.
   * Returns what happened.
   */
  async prune(id: ObjectId, bundleDeploymentName: string): Promise<'deleted' | 'absent' | 'foreign'> {
    const live = await this.get(id);
    if (!live) return 'absent';
    if (live.metadata.labels?.[Label.BundleID] !== bundleDeploymentName) return 'foreign';
    return (await this.delete(id)) ? 'deleted' : 'absent';
  }

  /** Waits until every named CRD is Established (WaitingError after the timeout). */
  async waitEstablished(names: readonly string[]): Promise<void> {
    const deadline = Date.now() + this.crdTimeoutMs;
    for (const name of names) {
      for (;;) {
        const crd = await this.get({ apiVersion: 'apiextensions.k8s.io/v1', kind: 'CustomResourceDefinition', name });
        const conditions = (crd?.status as { conditions?: { type: string; status: string }[] } | undefined)?.conditions ?? [];
        if (conditions.some((c) => c.type === 'Established' && c.status === 'True')) break;
        if (Date.now() > deadline) {
          throw new WaitingError(Reason.ApplyFailed, `CustomResourceDefinition ${name} is not Established after ${this.crdTimeoutMs} ms`, {
            retryAfterMs: 10_000,
          });
        }
        await sleep(this.pollMs);
      }
    }
  }

  /**
   * Makes sure a namespace exists, with the given labels and annotations (owned by a field manager of its
   * own, so that they never compete with the bundle's objects). A namespace that exists and needs no
   * labels is not touched.
   */
  async ensureNamespace(ns: EnsuredNamespace): Promise<void> {
    const id = { apiVersion: 'v1', kind: 'Namespace', name: ns.name };
    const plain = !ns.labels && !ns.annotations;
    const seen = this.namespaces.get(ns.name);
    if (plain && seen !== undefined && this.now() - seen < NAMESPACE_TRUST_MS) return;
    if (plain && (await this.get(id))) {
      this.namespaces.set(ns.name, this.now());
      return;
    }
    const obj: KubeObject = { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns.name } };
    if (ns.labels) obj.metadata.labels = ns.labels;
    if (ns.annotations) obj.metadata.annotations = ns.annotations;
    try {
      await this.client.raw('PATCH', await this.applyPath(obj, NAMESPACE_FIELD_MANAGER, false), obj, 'application/apply-patch+yaml');
      this.namespaces.set(ns.name, this.now());
    } catch (err) {
      throw applyFailed(`creating namespace ${ns.name}`, err);
    }
  }
}
