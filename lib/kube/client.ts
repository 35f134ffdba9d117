import type { Dispatcher } from 'undici';
import { Agent, request } from '../util/undici.js';
import { FlotillaError, StallingError, TransientError, WaitingError, type ErrorDisposition } from '../errors.js';
import { Reason } from '../api/constants.js';
import type { KubeAccess } from './kubeconfig.js';
import { utf8Lines } from './lines.js';

/**
 * The Kubernetes adapter: a small REST client for any kind, built on undici with the authentication a
 * kubeconfig describes (client certificates, bearer tokens; exec plugins via client-node, see kubeconfig.ts). It speaks the
 * API directly so that server-side apply, the status subresource, discovery and watches with bookmarks
 * are all first-class. Errors are translated into Flotilla's error classes here and nowhere else.
 */

/** Any Kubernetes object. */
export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    uid?: string;
    resourceVersion?: string;
    generation?: number;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    finalizers?: string[];
    ownerReferences?: { apiVersion: string; kind: string; name: string; uid: string; controller?: boolean; blockOwnerDeletion?: boolean }[];
    deletionTimestamp?: string;
    creationTimestamp?: string;
    managedFields?: unknown[];
    [key: string]: unknown;
  };
  [key: string]: unknown;
}

/** Identifies an object (or, without name, a collection). */
export interface ObjectRef {
  apiVersion: string;
  kind: string;
  namespace?: string;
  name?: string;
}

/**
 * What an HTTP status of the Kubernetes API means for the caller, decided here once:
 * 403 and 422 stall (RBAC or the object sent must change; retrying the same request fails the same way),
 * 404 stalls too (what the request needs is gone; its return is an event), 409 is a conflict (the caller
 * acted on a stale view: re-read and retry at once), everything else (401, 429, 5xx) is transient.
 * A caller that knows better (the agent's apply errors, say) wraps the error in its own class.
 */
export const KUBE_STATUS: Readonly<Record<number, { reason: string; disposition: ErrorDisposition }>> = {
  403: { reason: Reason.Forbidden, disposition: 'stalling' },
  404: { reason: Reason.NotFound, disposition: 'stalling' },
  409: { reason: Reason.Conflict, disposition: 'conflict' },
  422: { reason: Reason.Invalid, disposition: 'stalling' },
  429: { reason: Reason.TooManyRequests, disposition: 'transient' },
};

/** An API error from the server: the HTTP status, the server's Status reason, and the disposition the status implies. */
export class KubeApiError extends FlotillaError {
  readonly disposition: ErrorDisposition;

  constructor(
    readonly statusCode: number,
    readonly apiReason: string,
    message: string,
  ) {
    const known = KUBE_STATUS[statusCode];
    super(known?.reason ?? Reason.ApiServerError, message);
    this.disposition = known?.disposition ?? 'transient';
  }
}

interface ResourceInfo {
  plural: string;
  namespaced: boolean;
}

/** Options for {@link KubeClient}. */
export interface KubeClientOptions {
  /** Request timeout for non-watch calls; default 30 s. */
  timeoutMs?: number;
  /**
   * Field manager recorded for writes other than server-side apply (creates, merge and JSON patches);
   * without it the API server records them under "unknown". Applies name their manager themselves.
   */
  fieldManager?: string;
}

/** Builds a path for `ref` under its API group. */
function groupPath(apiVersion: string): string {
  return apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
}

/** Longest wait before a request to an unreachable API server is tried again (the work queue's backoff cap for it). */
export const API_SERVER_RETRY_MS = 10_000;

/** The media type that asks the API server for an object's metadata alone (with JSON as the fallback it must not use). */
export const PARTIAL_OBJECT_METADATA = 'application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1';

/** A REST client for one cluster. */
export class KubeClient {
  readonly server: string;
  private readonly dispatcher: Dispatcher;
  private readonly resources = new Map<string, Promise<Map<string, ResourceInfo>>>();
  private readonly timeoutMs: number;

  private constructor(
    private readonly kc: KubeAccess,
    server: string,
    dispatcher: Dispatcher,
    options: KubeClientOptions,
    private readonly impersonate?: { user: string; groups: string[] },
  ) {
    this.server = server.replace(/\/$/, '');
    this.dispatcher = dispatcher;
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.options = options;
  }

  private readonly options: KubeClientOptions;

  /**
   * A client that acts as `user` (and `groups`) through Kubernetes impersonation, sharing this client's
   * credentials and connections; the caller needs the `impersonate` verb. Closing it closes nothing shared.
   */
  impersonating(user: string, groups: string[] = []): KubeClient {
    return new KubeClient(this.kc, this.server, this.dispatcher, this.options, { user, groups });
  }

  /** Acting as a ServiceAccount: its user name and the groups the API server gives ServiceAccount tokens. */
  impersonatingServiceAccount(namespace: string, name: string): KubeClient {
    return this.impersonating(`system:serviceaccount:${namespace}:${name}`, [
      'system:serviceaccounts',
      `system:serviceaccounts:${namespace}`,
      'system:authenticated',
    ]);
  }

  /** Creates a client from a loaded kubeconfig (its current context): kubeconfig.ts's, or client-node's KubeConfig. */
  static async fromKubeConfig(kc: KubeAccess, options: KubeClientOptions = {}): Promise<KubeClient> {
    const cluster = kc.getCurrentCluster();
    if (!cluster) throw new StallingError(Reason.InvalidKubeconfig, 'the kubeconfig has no current cluster');
    const tls: { ca?: unknown; cert?: unknown; key?: unknown; rejectUnauthorized?: boolean; headers?: unknown } = {};
    await kc.applyToHTTPSOptions(tls);
    const connect = {
      ca: tls.ca as string | Buffer | undefined,
      cert: tls.cert as string | Buffer | undefined,
      key: tls.key as string | Buffer | undefined,
      rejectUnauthorized: cluster.skipTLSVerify ? false : (tls.rejectUnauthorized ?? true),
    };
    const dispatcher = new Agent({ connect, keepAliveTimeout: 30_000, connections: 16 });
    return new KubeClient(kc, cluster.server, dispatcher, options);
  }

  /** Closes the connection pool (of the client it was made from, for an impersonating client: nothing). */
  async close(): Promise<void> {
    if (this.impersonate) return;
    await this.dispatcher.close();
  }

  private async authHeaders(): Promise<Record<string, string | string[]>> {
    const opts: { headers?: Record<string, string> } = { headers: {} };
    await this.kc.applyToHTTPSOptions(opts);
    const headers: Record<string, string | string[]> = { ...opts.headers };
    if (this.impersonate) {
      headers['impersonate-user'] = this.impersonate.user;
      if (this.impersonate.groups.length > 0) headers['impersonate-group'] = this.impersonate.groups;
    }
    return headers;
  }

  /** Sends a request; returns the parsed JSON body, or throws a translated error. */
  async raw<T>(method: Dispatcher.HttpMethod, path: string, body?: unknown, contentType = 'application/json', accept = 'application/json'): Promise<T> {
    const headers: Record<string, string | string[]> = { accept, ...(await this.authHeaders()) };
    let payload: string | undefined;
    if (body !== undefined) {
      headers['content-type'] = contentType;
      payload = typeof body === 'string' ? body : JSON.stringify(body);
    }
    let res: Dispatcher.ResponseData;
    try {
      res = await request(`${this.server}${path}`, {
        method,
        headers,
        body: payload,
        dispatcher: this.dispatcher,
        headersTimeout: this.timeoutMs,
        bodyTimeout: this.timeoutMs,
      });
    } catch (err) {
      const code = (err as { code?: string }).code ?? '';
      // Retried at least every API_SERVER_RETRY_MS however many attempts failed: a restart that outlasts a
      // few backoff doublings must still be noticed within seconds of its end, not minutes.
      throw new TransientError(Reason.ApiServerUnreachable, `cannot reach the Kubernetes API server ${this.server}: ${code || (err as Error).message}`, {
        cause: err,
        retryAfterMs: API_SERVER_RETRY_MS,
      });
    }
    const text = await res.body.text();
    if (res.statusCode >= 200 && res.statusCode < 300) return (text ? JSON.parse(text) : {}) as T;
    let reason = '';
    let message = text.slice(0, 500);
    try {
      const status = JSON.parse(text) as { reason?: string; message?: string };
      reason = status.reason ?? '';
      message = status.message ?? message;
    } catch {
      /* not a Status */
    }
    throw new KubeApiError(res.statusCode, reason, `${method} ${path}: ${res.statusCode} ${message}`);
  }

  /** Discovers the plural and scope of `kind` in `apiVersion` (cached per group version). */
  async resourceFor(apiVersion: string, kind: string): Promise<ResourceInfo> {
    let entry = this.resources.get(apiVersion);
    if (!entry) {
      entry = this.raw<{ resources: { name: string; kind: string; namespaced: boolean }[] }>('GET', groupPath(apiVersion)).then(
        (list) => new Map(list.resources.filter((r) => !r.name.includes('/')).map((r) => [r.kind, { plural: r.name, namespaced: r.namespaced }])),
      );
      this.resources.set(apiVersion, entry);
      entry.catch(() => this.resources.delete(apiVersion));
    }
    let info: ResourceInfo | undefined;
    try {
      info = (await entry).get(kind);
    } catch (err) {
      if (err instanceof KubeApiError && err.statusCode === 404) info = undefined;
      else throw err;
    }
    if (!info) {
      this.resources.delete(apiVersion); // a CRD may be installed later
      throw new WaitingError(Reason.KindNotFound, `the API server does not serve kind ${kind} in ${apiVersion}`, { retryAfterMs: 5000 });
    }
    return info;
  }

  /** Forgets discovery results (after installing CRDs). */
  resetDiscovery(): void {
    this.resources.clear();
  }

  /** The REST path of `ref` (a collection when `ref.name` is unset). */
  async pathFor(ref: ObjectRef, subresource?: string): Promise<string> {
    const info = await this.resourceFor(ref.apiVersion, ref.kind);
    let path = groupPath(ref.apiVersion);
    if (info.namespaced && ref.namespace) path += `/namespaces/${encodeURIComponent(ref.namespace)}`;
    path += `/${info.plural}`;
    if (ref.name) path += `/${encodeURIComponent(ref.name)}`;
    if (subresource) path += `/${subresource}`;
    return path;
  }

  /** Whether `kind` is namespaced (cluster-scoped kinds ignore namespaces). */
  async isNamespaced(apiVersion: string, kind: string): Promise<boolean> {
    return (await this.resourceFor(apiVersion, kind)).namespaced;
  }

  /** Reads an object; undefined when it does not exist. */
  async get<T extends KubeObject>(ref: ObjectRef & { name: string }): Promise<T | undefined> {
    try {
      return await this.raw<T>('GET', await this.pathFor(ref));
    } catch (err) {
      if (err instanceof KubeApiError && err.statusCode === 404) return undefined;
      throw err;
    }
  }

  /**
   * Reads an object's metadata only (the API server's PartialObjectMetadata: names, labels, annotations,
   * resourceVersion, no content): what tells whether an object changed, without moving its content.
   * undefined when it does not exist. The answer carries `apiVersion: meta.k8s.io/v1`, `kind: PartialObjectMetadata`.
   */
  async getMetadata(ref: ObjectRef & { name: string }): Promise<KubeObject | undefined> {
    try {
      return await this.raw<KubeObject>('GET', await this.pathFor(ref), undefined, undefined, PARTIAL_OBJECT_METADATA);
    } catch (err) {
      if (err instanceof KubeApiError && err.statusCode === 404) return undefined;
      throw err;
    }
  }

  /** Lists objects, optionally in one namespace and filtered by a label selector string. */
  async list<T extends KubeObject>(ref: ObjectRef, labelSelector?: string): Promise<{ items: T[]; resourceVersion: string }> {
    const query = labelSelector ? `?labelSelector=${encodeURIComponent(labelSelector)}` : '';
    const list = await this.raw<{ items: T[]; metadata: { resourceVersion: string } }>('GET', `${await this.pathFor(ref)}${query}`);
    for (const item of list.items) {
      item.apiVersion = ref.apiVersion;
      item.kind = ref.kind;
    }
    return { items: list.items, resourceVersion: list.metadata.resourceVersion };
  }

  /** Creates an object. */
  async create<T extends KubeObject>(obj: T): Promise<T> {
    const ref = { apiVersion: obj.apiVersion, kind: obj.kind, namespace: obj.metadata.namespace };
    return await this.raw<T>('POST', `${await this.pathFor(ref)}${this.managerQuery()}`, obj);
  }

  /** Server-side apply with `fieldManager`; `force` takes ownership of conflicting fields. */
  async apply<T extends KubeObject>(obj: KubeObject, fieldManager: string, force = true): Promise<T> {
    const ref = { apiVersion: obj.apiVersion, kind: obj.kind, namespace: obj.metadata.namespace, name: obj.metadata.name };
    const query = `?fieldManager=${encodeURIComponent(fieldManager)}${force ? '&force=true' : ''}`;
    return await this.raw<T>('PATCH', `${await this.pathFor(ref)}${query}`, obj, 'application/apply-patch+yaml');
  }

  /**
   * Server-side apply of the status subresource with `fieldManager`: `obj` carries apiVersion, kind, the
   * name (and namespace) and the status fields this manager owns. Fields it applied before and leaves out
   * are removed; fields of other managers (other entries of a list-map such as `conditions`) are kept.
   */
  async applyStatus<T extends KubeObject>(obj: KubeObject, fieldManager: string, force = true): Promise<T> {
    const ref = { apiVersion: obj.apiVersion, kind: obj.kind, namespace: obj.metadata.namespace, name: obj.metadata.name };
    const query = `?fieldManager=${encodeURIComponent(fieldManager)}${force ? '&force=true' : ''}`;
    return await this.raw<T>('PATCH', `${await this.pathFor(ref, 'status')}${query}`, obj, 'application/apply-patch+yaml');
  }

  /** `?fieldManager=...` for a write that is not an apply, when the client has a field manager. */
  private managerQuery(): string {
    return this.options.fieldManager ? `?fieldManager=${encodeURIComponent(this.options.fieldManager)}` : '';
  }

  /** JSON merge patch of an object (or of its status subresource). */
  async mergePatch<T extends KubeObject>(ref: ObjectRef & { name: string }, patch: unknown, subresource?: 'status'): Promise<T> {
    return await this.raw<T>('PATCH', `${await this.pathFor(ref, subresource)}${this.managerQuery()}`, patch, 'application/merge-patch+json');
  }

  /** JSON patch (RFC 6902) of an object. */
  async jsonPatch<T extends KubeObject>(ref: ObjectRef & { name: string }, ops: unknown[]): Promise<T> {
    return await this.raw<T>('PATCH', `${await this.pathFor(ref)}${this.managerQuery()}`, ops, 'application/json-patch+json');
  }

  /** Replaces the status of an object (merge patch on /status). */
  async patchStatus<T extends KubeObject>(ref: ObjectRef & { name: string }, status: unknown): Promise<T> {
    return await this.mergePatch<T>(ref, { status }, 'status');
  }

  /** Deletes an object; returns false when it did not exist. */
  async delete(ref: ObjectRef & { name: string }, propagationPolicy: 'Background' | 'Foreground' | 'Orphan' = 'Background'): Promise<boolean> {
    try {
      await this.raw('DELETE', await this.pathFor(ref), { kind: 'DeleteOptions', apiVersion: 'v1', propagationPolicy });
      return true;
    } catch (err) {
      if (err instanceof KubeApiError && err.statusCode === 404) return false;
      throw err;
    }
  }

  /**
   * Opens a watch from `resourceVersion`; calls `onEvent` per event until the stream ends (returns)
   * or fails (throws). Bookmarks are requested so that restarts resume where they left off.
   */
  async watch<T extends KubeObject>(
    ref: ObjectRef,
    resourceVersion: string,
    onEvent: (type: string, obj: T) => void,
    signal?: AbortSignal,
    labelSelector?: string,
  ): Promise<void> {
    const params = new URLSearchParams({ watch: '1', resourceVersion, allowWatchBookmarks: 'true', timeoutSeconds: '300' });
    if (labelSelector) params.set('labelSelector', labelSelector);
    const res = await request(`${this.server}${await this.pathFor(ref)}?${params.toString()}`, {
      method: 'GET',
      headers: { accept: 'application/json', ...(await this.authHeaders()) },
      dispatcher: this.dispatcher,
      signal,
      headersTimeout: this.timeoutMs,
      bodyTimeout: 0,
    });
    if (res.statusCode !== 200) {
      const text = await res.body.text();
      throw new KubeApiError(res.statusCode, '', `watch ${ref.kind}: ${res.statusCode} ${text.slice(0, 300)}`);
    }
    for await (const line of utf8Lines(res.body)) {
      const event = JSON.parse(line) as { type: string; object: T };
      if (event.type === 'ERROR') {
        const status = event.object as unknown as { code?: number; message?: string };
        throw new KubeApiError(status.code ?? 500, 'WatchError', `watch ${ref.kind}: ${status.message ?? 'error'}`);
      }
      if (event.type !== 'BOOKMARK') {
        event.object.apiVersion = ref.apiVersion;
        event.object.kind = ref.kind;
      }
      onEvent(event.type, event.object);
    }
  }
}

/** True when `err` is an API error with HTTP status `code`. */
export function isStatus(err: unknown, code: number): boolean {
  return err instanceof KubeApiError && err.statusCode === code;
}
