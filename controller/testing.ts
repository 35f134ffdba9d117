import { createHash } from 'node:crypto';
import { rm } from 'node:fs/promises';
import pino from 'pino';
import { getCondition, type Condition } from '../lib/api/index.js';
import { writeTree, type Tree } from '../lib/bundle/testing.js';
import { KubeApiError, type KubeObject, type ObjectRef } from '../lib/kube/client.js';
import { isPlainObject, jsonEqual } from '../lib/util/json.js';
import { formatTime } from '../lib/util/time.js';
import type { ArtifactFile, Credentials, PushVersionResult, Reference } from '../lib/oci/index.js';
import { parseControllerConfig, type ControllerConfig } from './config.js';
import type { ReconcilerContext } from './context.js';
import type { GitFetchTarget, GitSource } from './git.js';
import { createMetrics } from './manager.js';
import { INDEXES_BY_KIND } from './indexes.js';
import type { EventSink, ObjectCache, ReconcilerKube, RegistryAccess, RegistrySession, StorageRegistry } from './ports.js';

/**
 * In-memory fakes of the ports of controller/ports.ts, for the case-table unit tests of the GitRepo and
 * Bundle reconcilers (controller/gitrepo.test.ts, controller/bundle.test.ts). They keep just enough of the
 * real behaviour for a reconcile to mean something: the API server's resourceVersion preconditions,
 * generations, finalizers on delete and server-side apply of status per field manager; git commits and
 * trees; registry repositories with versions. Every write is recorded, and any call can be made to fail.
 */

type Obj = KubeObject & { status?: Record<string, unknown> & { conditions?: Condition[] } };
type Ref = ObjectRef & { name: string };

/** One recorded write. */
export interface KubeWrite {
  op: 'apply' | 'applyStatus' | 'mergePatch' | 'mergePatchStatus' | 'delete';
  kind: string;
  namespace: string;
  name: string;
  fieldManager?: string;
  body?: unknown;
}

const keyOf = (kind: string, namespace: string | undefined, name: string) => `${kind}/${namespace ?? ''}/${name}`;
const clone = <T>(value: T): T => structuredClone(value);

/** RFC 7386 JSON merge patch of `target` with `patch`. */
function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isPlainObject(patch)) return clone(patch);
  const out: Record<string, unknown> = isPlainObject(target) ? { ...target } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete out[key];
    else out[key] = mergePatch(out[key], value);
  }
  return out;
}

/**
 * An in-memory API server for {@link ReconcilerKube}: objects by kind, namespace and name. Its caches
 * ({@link FakeKube.cache}) read the stored objects as a synced informer would.
 */
export class FakeKube implements ReconcilerKube {
  private readonly objects = new Map<string, Obj>();
  /** Status keys and condition types each field manager applied, by object. */
  private readonly statusOwners = new Map<string, Map<string, { keys: string[]; conditions: string[] }>>();
  private version = 0;
  private uids = 0;
  /**
   * Whether an apply records its manager's fields in `metadata.managedFields`, as the API server does (top-level
   * spec keys, labels and annotations; replacing that manager's earlier entry). Off by default: most tests compare
   * stored objects whole.
   */
  recordApplyFields = false;
  /** Every write, in order. */
  readonly writes: KubeWrite[] = [];
  /** Errors to throw, by `op kind` (e.g. `apply BundleDeployment`, `get Secret`). */
  readonly failures = new Map<string, unknown>();

  constructor(private readonly now: () => Date = () => new Date('2026-01-01T00:00:00Z')) {}

  /** Stores `obj` as it is (plus uid, resourceVersion and generation when missing); returns the stored copy. */
  seed<T extends KubeObject>(obj: T): T {
    const stored = clone(obj) as unknown as Obj;
    stored.metadata.uid ??= `uid-${++this.uids}`;
    stored.metadata.resourceVersion = String(++this.version);
    stored.metadata.generation ??= 1;
    this.objects.set(keyOf(stored.kind, stored.metadata.namespace, stored.metadata.name), stored);
    return clone(stored) as unknown as T;
  }

  /** The stored object, or undefined. */
  find<T extends KubeObject>(kind: string, namespace: string | undefined, name: string): T | undefined {
    const obj = this.objects.get(keyOf(kind, namespace, name));
    return obj ? (clone(obj) as unknown as T) : undefined;
  }

  /** The stored object; throws naming it when it is gone. */
  mustFind<T extends KubeObject>(kind: string, namespace: string | undefined, name: string): T {
    const obj = this.find<T>(kind, namespace, name);
    if (!obj) throw new Error(`${kind} ${namespace ?? ''}/${name} is gone`);
    return obj;
  }

  /** Condition `type` of the stored object as `status/reason`, or undefined without it. */
  condition(kind: string, namespace: string | undefined, name: string, type: string): string | undefined {
    const c = getCondition(this.find<Obj>(kind, namespace, name)?.status?.conditions, type);
    return c ? `${c.status}/${c.reason}` : undefined;
  }

  /** Every stored object of `kind`. */
  all<T extends KubeObject>(kind: string): T[] {
    return [...this.objects.values()].filter((o) => o.kind === kind).map((o) => clone(o) as unknown as T);
  }

  /** The recorded writes of `op` on objects of `kind`. */
  writesOf(op: KubeWrite['op'], kind: string): KubeWrite[] {
    return this.writes.filter((w) => w.op === op && w.kind === kind);
  }

  /** A read-only cache of `kind`, as a synced informer (keys `namespace/name`). */
  cache<T extends KubeObject>(kind: string): ObjectCache<T> {
    return {
      get: (key) => {
        const [namespace, name] = key.includes('/') ? key.split('/') : ['', key];
        return this.find<T>(kind, namespace || undefined, name ?? '');
      },
      list: () => this.all<T>(kind),
      byIndex: (name, value) => {
        const fn = INDEXES_BY_KIND[kind]?.[name];
        if (!fn) throw new Error(`fake cache of ${kind}: no index "${name}"`);
        return this.all<T>(kind).filter((o) => fn(o).includes(value));
      },
    };
  }

  private readonly pending = new Map<string, () => Promise<void>>();

  /** Runs `action` once, just before the next `op` on an object of `kind`: another writer's write in a race. */
  before(op: KubeWrite['op'] | 'get', kind: string, action: () => Promise<void>): void {
    this.pending.set(`${op} ${kind}`, action);
  }

  private async check(op: string, kind: string): Promise<void> {
    const action = this.pending.get(`${op} ${kind}`);
    if (action) {
      this.pending.delete(`${op} ${kind}`);
      await action();
    }
    const failure = this.failures.get(`${op} ${kind}`);
    if (failure !== undefined) throw failure;
  }

  private store(obj: Obj, specBefore: unknown): Obj {
    obj.metadata.resourceVersion = String(++this.version);
    if (specBefore !== undefined && !jsonEqual(specBefore, obj.spec)) obj.metadata.generation = (obj.metadata.generation ?? 1) + 1;
    this.objects.set(keyOf(obj.kind, obj.metadata.namespace, obj.metadata.name), obj);
    return clone(obj);
  }

  async get<T extends KubeObject>(ref: Ref): Promise<T | undefined> {
    await this.check('get', ref.kind);
    return this.find<T>(ref.kind, ref.namespace, ref.name);
  }

  async apply<T extends KubeObject>(obj: KubeObject, fieldManager: string): Promise<T> {
    await this.check('apply', obj.kind);
    const { namespace, name } = obj.metadata;
    this.writes.push({ op: 'apply', kind: obj.kind, namespace: namespace ?? '', name, fieldManager, body: clone(obj) });
    const existing = this.objects.get(keyOf(obj.kind, namespace, name));
    if (this.recordApplyFields) obj = withAppliedFields(obj, fieldManager, existing?.metadata.managedFields);
    if (!existing) return this.seed(obj) as T;
    const { status: _ignored, ...desired } = clone(obj);
    const next: Obj = {
      ...existing,
      ...desired,
      metadata: { ...existing.metadata, ...desired.metadata, labels: { ...existing.metadata.labels, ...desired.metadata.labels } },
    };
    return this.store(next, existing.spec) as unknown as T;
  }

  async applyStatus<T extends KubeObject>(obj: KubeObject, fieldManager: string): Promise<T> {
    await this.check('applyStatus', obj.kind);
    const { namespace, name } = obj.metadata;
    this.writes.push({ op: 'applyStatus', kind: obj.kind, namespace: namespace ?? '', name, fieldManager, body: clone(obj) });
    const key = keyOf(obj.kind, namespace, name);
    const existing = this.objects.get(key);
    if (!existing) throw new KubeApiError(404, 'NotFound', `${key} not found`);
    const applied = clone((obj as Obj).status ?? {});
    const owners = this.statusOwners.get(key) ?? new Map<string, { keys: string[]; conditions: string[] }>();
    const before = owners.get(fieldManager) ?? { keys: [], conditions: [] };
    const conditionsApplied = applied.conditions ?? [];
    const ownedElsewhere = new Set([...owners].filter(([m]) => m !== fieldManager).flatMap(([, o]) => o.conditions));
    // Server-side apply of a list-map keyed by type: this manager's entries are replaced, the others' kept.
    const kept = (existing.status?.conditions ?? []).filter((c) => !before.conditions.includes(c.type) || ownedElsewhere.has(c.type));
    const conditions = [...kept.filter((c) => !conditionsApplied.some((a) => a.type === c.type)), ...conditionsApplied];
    const status: Record<string, unknown> = { ...(existing.status ?? {}) };
    for (const k of before.keys) if (!(k in applied)) delete status[k];
    Object.assign(status, applied, { conditions });
    owners.set(fieldManager, { keys: Object.keys(applied).filter((k) => k !== 'conditions'), conditions: conditionsApplied.map((c) => c.type) });
    this.statusOwners.set(key, owners);
    return this.store({ ...existing, status }, undefined) as unknown as T;
  }

  async mergePatch<T extends KubeObject>(ref: Ref, patch: unknown, subresource?: 'status'): Promise<T> {
    await this.check(subresource ? 'mergePatchStatus' : 'mergePatch', ref.kind);
    this.writes.push({
      op: subresource ? 'mergePatchStatus' : 'mergePatch',
      kind: ref.kind,
      namespace: ref.namespace ?? '',
      name: ref.name,
      body: clone(patch),
    });
    const key = keyOf(ref.kind, ref.namespace, ref.name);
    const existing = this.objects.get(key);
    if (!existing) throw new KubeApiError(404, 'NotFound', `${key} not found`);
    const precondition = (patch as { metadata?: { resourceVersion?: string } }).metadata?.resourceVersion;
    if (precondition !== undefined && precondition !== existing.metadata.resourceVersion) {
      throw new KubeApiError(409, 'Conflict', `${key}: the object has been modified`);
    }
    const body = patch as { status?: unknown };
    const next = subresource
      ? ({ ...existing, status: mergePatch(existing.status, body.status) } as Obj)
      : ({ ...(mergePatch(existing, { ...body, status: undefined }) as Obj), status: existing.status } as Obj);
    if (next.metadata.deletionTimestamp && (next.metadata.finalizers ?? []).length === 0) {
      this.objects.delete(key);
      return clone(next) as unknown as T;
    }
    return this.store(next, subresource ? undefined : existing.spec) as unknown as T;
  }

  async delete(ref: Ref): Promise<boolean> {
    await this.check('delete', ref.kind);
    const key = keyOf(ref.kind, ref.namespace, ref.name);
    const existing = this.objects.get(key);
    if (!existing) return false;
    this.writes.push({ op: 'delete', kind: ref.kind, namespace: ref.namespace ?? '', name: ref.name });
    if ((existing.metadata.finalizers ?? []).length === 0) this.objects.delete(key);
    else if (!existing.metadata.deletionTimestamp)
      this.store({ ...existing, metadata: { ...existing.metadata, deletionTimestamp: formatTime(this.now()) } }, undefined);
    return true;
  }
}

/** An event as the fake recorder kept it. */
export interface RecordedEvent {
  object: string;
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
}

/** Records events instead of writing them. */
export class FakeEvents implements EventSink {
  readonly events: RecordedEvent[] = [];
  async emit(obj: KubeObject, type: 'Normal' | 'Warning', reason: string, message: string): Promise<void> {
    this.events.push({ object: `${obj.kind}/${obj.metadata.namespace ?? ''}/${obj.metadata.name}`, type, reason, message });
  }
}

/** A git server in memory: the commit each repository URL points at and the tree of each commit, checked out into temporary folders. */
export class FakeGit implements GitSource {
  readonly heads = new Map<string, string>();
  readonly trees = new Map<string, Tree>();
  readonly calls: string[] = [];
  /** Thrown by `resolve` when set. */
  resolveFailure: unknown;
  private readonly folders: string[] = [];

  /** Points `repo` at `commit` with `tree`. */
  push(repo: string, commit: string, tree: Tree): void {
    this.heads.set(repo, commit);
    this.trees.set(commit, tree);
  }

  async resolve(target: GitFetchTarget): Promise<string> {
    this.calls.push(`resolve ${target.repo}`);
    if (this.resolveFailure !== undefined) throw this.resolveFailure;
    const head = this.heads.get(target.repo);
    if (!head) throw new Error(`fake git: no repository ${target.repo}`);
    return head;
  }

  async checkout(key: string, _target: GitFetchTarget, commit: string): Promise<string> {
    this.calls.push(`checkout ${key} ${commit}`);
    const tree = this.trees.get(commit);
    if (!tree) throw new Error(`fake git: no commit ${commit}`);
    const folder = await writeTree(tree);
    this.folders.push(folder);
    return folder;
  }

  async forget(key: string): Promise<void> {
    this.calls.push(`forget ${key}`);
  }

  /** Removes every checkout folder. */
  async dispose(): Promise<void> {
    await Promise.all(this.folders.splice(0).map((f) => rm(f, { recursive: true, force: true })));
  }
}

/** One stored artifact version. */
interface FakeVersion {
  digest: string;
  files: string[];
}

/** `obj` with `manager`'s Apply entry in its managedFields: the keys it sets at the top of spec, in labels and in annotations. */
function withAppliedFields(obj: KubeObject, manager: string, before: unknown[] | undefined): KubeObject {
  const keys = (o: unknown) => Object.fromEntries(Object.keys((o as Record<string, unknown> | undefined) ?? {}).map((k) => [`f:${k}`, {}]));
  const entry = {
    manager,
    operation: 'Apply',
    fieldsV1: { 'f:metadata': { 'f:labels': keys(obj.metadata.labels), 'f:annotations': keys(obj.metadata.annotations) }, 'f:spec': keys(obj.spec) },
  };
  const others = (before ?? []).filter((e) => (e as { manager?: string }).manager !== manager);
  return { ...obj, metadata: { ...obj.metadata, managedFields: [...others, entry] } };
}

/** OCI registries in memory: versions by `registry/repository`; every push and delete recorded; pushes can be made to fail. */
export class FakeRegistry implements RegistryAccess {
  readonly repositories = new Map<string, FakeVersion[]>();
  readonly pushes: string[] = [];
  /** Repositories asked whether they still hold a Bundle's version (hasVersion). */
  readonly checks: string[] = [];
  readonly deletes: string[] = [];
  /** Sessions opened, with the user they authenticate as. */
  readonly sessions: { registry: string; username: string | undefined }[] = [];
  /** Sessions opened and not closed yet. */
  openSessions = 0;
  /** Thrown by pushes (and deletes, with `failDeletes`) when set. */
  failure: unknown;
  failDeletes = false;
  /** Called after each repository is deleted (a test's hook into the middle of a clean-up). */
  onDelete?: (repository: string) => void;
  /** Awaited at the start of each push, before `failure` is looked at (a test's hook to hold pushes). */
  beforePush?: (repository: string) => Promise<void>;
  /** Pushes running now, and the most that ever ran at once. */
  pushesRunning = 0;
  mostPushesRunning = 0;

  open(registry: StorageRegistry, credentials: Credentials | undefined): RegistrySession {
    this.openSessions += 1;
    this.sessions.push({ registry: registry.reference, username: credentials?.username });
    const name = (r: Reference) => `${r.registry}/${r.repository}`;
    return {
      pushVersion: async (repository: Reference, files: readonly ArtifactFile[]): Promise<PushVersionResult> => {
        this.pushesRunning += 1;
        this.mostPushesRunning = Math.max(this.mostPushesRunning, this.pushesRunning);
        try {
          await this.beforePush?.(name(repository));
        } finally {
          this.pushesRunning -= 1;
        }
        if (this.failure !== undefined) throw this.failure;
        const paths = files.map((f) => ('content' in f ? `${f.path}:${f.content.toString('base64')}` : f.path));
        const digest = `sha256:${createHash('sha256').update(paths.join('\n')).digest('hex')}`;
        const versions = this.repositories.get(name(repository)) ?? [];
        const unchanged = versions.at(-1)?.digest === digest;
        if (!unchanged) versions.push({ digest, files: paths });
        this.repositories.set(name(repository), versions);
        this.pushes.push(name(repository));
        const reference = `${name(repository)}@${digest}`;
        const pushed = unchanged ? 0 : files.length + 1;
        return {
          digest,
          reference,
          repository,
          tag: `v${versions.length}`,
          pushedBlobs: pushed,
          skippedBlobs: 0,
          bytesUploaded: 0,
          sequence: versions.length,
          unchanged,
          deleted: [],
        };
      },
      hasVersion: async (repository: Reference, digest: string) => {
        this.checks.push(name(repository));
        if (this.failure !== undefined) throw this.failure;
        return (this.repositories.get(name(repository)) ?? []).some((v) => v.digest === digest);
      },
      deleteAll: async (repository: Reference) => {
        if (this.failDeletes && this.failure !== undefined) throw this.failure;
        this.deletes.push(name(repository));
        const n = this.repositories.get(name(repository))?.length ?? 0;
        this.repositories.delete(name(repository));
        this.onDelete?.(name(repository));
        return n;
      },
      close: async () => {
        this.openSessions -= 1;
      },
    };
  }
}

/** A reconciler context on fakes, and the fakes behind it. */
export interface FakeContext {
  ctx: ReconcilerContext;
  kube: FakeKube;
  events: FakeEvents;
  /** Sets the clock. */
  setNow(now: Date): void;
}

let sharedConfig: ControllerConfig | undefined;

/**
 * A {@link ReconcilerContext} on a {@link FakeKube}, {@link FakeEvents} and a settable clock. The
 * configuration is the default one, shared by every call (the controller keeps one bundle reader per
 * configuration object).
 */
export function fakeContext(now = new Date('2026-01-01T00:00:00Z')): FakeContext {
  let time = now;
  const clock = () => time;
  const kube = new FakeKube(clock);
  const events = new FakeEvents();
  sharedConfig ??= parseControllerConfig([], {});
  const ctx: ReconcilerContext = {
    kube,
    informers: {
      gitRepos: kube.cache('GitRepo'),
      bundles: kube.cache('Bundle'),
      bundleDeployments: kube.cache('BundleDeployment'),
      clusters: kube.cache('Cluster'),
      clusterGroups: kube.cache('ClusterGroup'),
    },
    config: sharedConfig,
    log: pino({ level: 'silent' }),
    events,
    metrics: createMetrics({ defaultMetrics: false }),
    now: clock,
  };
  return {
    ctx,
    kube,
    events,
    setNow: (d) => {
      time = d;
    },
  };
}
