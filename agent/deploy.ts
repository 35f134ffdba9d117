import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import { Annotation, Reason, type ComparePatch } from '../lib/api/index.js';
import { TransientError } from '../lib/errors.js';
import { hashCanonicalJSON } from '../lib/util/json.js';
import { KubeApiError, type KubeObject } from '../lib/kube/client.js';
import { mapLimit } from '../lib/util/concurrency.js';
import type { Applier } from './applier.js';
import { compareObject, type Drift } from './drift.js';
import { applyPhases, applyRank, idKey, isCrdKind, type DesiredObject, type EnsuredNamespace } from './objects.js';

/**
 * Planning and applying the desired objects of one BundleDeployment.
 *
 * Plan: for each object, read the live object and ask the API server for a server-side apply dry run, then
 * compare (drift.ts). The dry run is sent with the deployment-id annotation the live object already has, so
 * that an object whose content did not change between two deployments compares as unchanged and is not
 * written at all: the annotation records the deployment that last changed the object. The dry runs are
 * also the validation: one object the API server rejects fails the plan, before anything is applied. A
 * deployment whose only write is an object that does not exist yet, or that is still the version this agent
 * wrote for other content, skips that dry run: its apply is the validation (see {@link planObjects}).
 *
 * A {@link VerifiedCache} remembers, per object, the live resourceVersion last found equal to the desired
 * content, or written for it: while neither changes, the next plan skips the dry run (an idle agent then costs
 * one read per object and resync, and a deployment one dry run per object). Entries expire, so that
 * server-side changes (new defaults, webhooks) are seen too.
 *
 * Apply: namespaces the bundle needs, then Namespaces and CRDs of the bundle; wait for the CRDs to be
 * Established; plan the objects that could not be verified before (in a namespace or of a kind that did
 * not exist yet), then apply the rest in kind order (same-kind objects in parallel).
 */

/** A desired object with what the plan found. */
export interface PlannedObject extends DesiredObject {
  /** The live object, if it exists. */
  live: KubeObject | undefined;
  drift: Drift;
  /** False when the dry run could not be evaluated yet (namespace or kind missing). */
  verified: boolean;
  /** The API server refuses to change it in place (an immutable field) and force is on: delete and re-create it. */
  recreate?: boolean;
}

/** What {@link planObjects} and {@link applyPlan} need. */
export interface DeployContext {
  applier: Applier;
  log: Logger;
  /** Parallel requests per step; default 8. */
  concurrency?: number;
  comparePatches?: readonly ComparePatch[] | undefined;
  verified?: VerifiedCache;
  /**
   * Delete and re-create an existing object whose change the API server refuses as immutable (Fleet's
   * `helm.force`, and `correctDrift.force`); otherwise such a refusal fails the plan and nothing is applied.
   */
  force?: boolean;
  /** Called at each read of a desired object to plan it (a GET, or a GET of its metadata alone). */
  onRead?: () => void;
}

/**
 * True when the API server refused a change because it touches an immutable field (a Job's pod template,
 * a Service's clusterIP, a selector, a StatefulSet's spec beyond its updatable fields): such an object can
 * only be changed by deleting and re-creating it. Other rejections (an invalid object) are not matched, so
 * force never deletes an object whose replacement the API server would refuse anyway.
 */
export function isImmutableRefusal(err: unknown): boolean {
  const api = err instanceof KubeApiError ? err : err instanceof Error && err.cause instanceof KubeApiError ? err.cause : undefined;
  if (api?.statusCode !== 422) return false;
  return /field is immutable|updates to \S+ spec for fields other than .* are forbidden|is immutable after creation/i.test(api.message);
}

/**
 * The refusal of a change to an immutable field, said briefly (the API server's own message repeats the
 * whole object) and with what to do: force, or a new object name.
 */
function immutableChange(desired: DesiredObject, err: unknown): TransientError {
  const text = err instanceof Error ? (err.cause instanceof Error ? err.cause.message : err.message) : String(err);
  const field = /is invalid: ([\w.[\]-]+):/.exec(text)?.[1] ?? 'a field';
  const { kind, namespace, name } = desired.id;
  return new TransientError(
    Reason.ApplyFailed,
    `the API server refuses to change ${kind} ${namespace ? `${namespace}/` : ''}${name} in place: ${field} is immutable; ` +
      'set helm.force: true in fleet.yaml to delete and re-create it, or give the object a new name',
    { cause: err },
  );
}

/** See the module comment. */
export class VerifiedCache {
  private readonly entries = new Map<string, { resourceVersion: string; at: number }>();
  /** Per object (identity key), the resourceVersion last remembered for any content, and when. */
  private readonly objects = new Map<string, { resourceVersion: string; at: number }>();

  constructor(
    private readonly ttlMs = 10 * 60_000,
    private readonly maxEntries = 50_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** The key of a desired object: its identity and a hash of its content (deployment-id aside) and comparePatches. */
  key(desired: DesiredObject, comparePatches: readonly ComparePatch[] | undefined): string {
    // Without copying the object (a bundle of large ConfigMaps would copy each at every resync): the
    // annotation is left out of a shallow copy, and the canonical bytes go straight into the hash.
    const { metadata } = desired.object;
    const annotations = metadata.annotations && { ...metadata.annotations };
    if (annotations) delete annotations[Annotation.DeploymentID];
    const hash = createHash('sha256');
    hashCanonicalJSON(hash, [{ ...desired.object, metadata: { ...metadata, annotations } }, comparePatches ?? []]);
    return `${idKey(desired.id)}|${hash.digest('hex')}`;
  }

  /** True when `live` is the very version found equal to this desired content, recently enough. */
  has(key: string, live: KubeObject): boolean {
    const entry = this.entries.get(key);
    return entry !== undefined && entry.resourceVersion === live.metadata.resourceVersion && this.now() - entry.at < this.ttlMs;
  }

  /** True when a version of the object was found equal to this desired content recently enough to be trusted again. */
  expects(key: string): boolean {
    const entry = this.entries.get(key);
    return entry !== undefined && this.now() - entry.at < this.ttlMs;
  }

  /**
   * True when `live` is the very version last found equal to, or written for, some desired content of the
   * same object, recently enough: nobody changed it since, so content that differs from that one changes it.
   */
  knows(id: string, live: KubeObject): boolean {
    const entry = this.objects.get(id);
    return entry !== undefined && entry.resourceVersion === live.metadata.resourceVersion && this.now() - entry.at < this.ttlMs;
  }

  /** Records that `live` equals the desired content of `key`. */
  remember(key: string, live: KubeObject): void {
    if (!live.metadata.resourceVersion) return;
    if (this.entries.size >= this.maxEntries) this.entries.clear();
    if (this.objects.size >= this.maxEntries) this.objects.clear();
    const entry = { resourceVersion: live.metadata.resourceVersion, at: this.now() };
    this.entries.set(key, entry);
    this.objects.set(objectOf(key), entry);
  }

  /** Forgets `key`, and what was known of its object. */
  forget(key: string): void {
    this.entries.delete(key);
    this.objects.delete(objectOf(key));
  }
}

/** The object identity part of a {@link VerifiedCache} key. */
function objectOf(key: string): string {
  return key.slice(0, key.lastIndexOf('|'));
}

/** The object to dry-run: the desired one carrying the live object's deployment-id annotation. */
function candidateFor(desired: KubeObject, live: KubeObject | undefined): KubeObject {
  const liveId = live?.metadata.annotations?.[Annotation.DeploymentID];
  if (liveId === undefined) return desired;
  const candidate = structuredClone(desired);
  candidate.metadata.annotations = { ...candidate.metadata.annotations, [Annotation.DeploymentID]: liveId };
  return candidate;
}

/** One object read for the plan: its live state, and what is known of it without a dry run. */
interface ReadObject {
  desired: DesiredObject;
  live: KubeObject | undefined;
  key: string | undefined;
  /** Found unchanged (the verified cache), or known to need a write: absent, or changed content over our own last write. */
  known?: 'unchanged' | 'missing' | 'modified';
}

/**
 * Kinds whose readiness and drift need nothing but their content and metadata (no status): while the
 * verified cache trusts the version of such an object, its metadata alone tells whether it is still that
 * version, so a resync of a bundle of large ConfigMaps does not read their content again.
 */
const WITHOUT_STATUS = new Set([
  '/ConfigMap',
  '/Secret',
  '/ServiceAccount',
  'rbac.authorization.k8s.io/Role',
  'rbac.authorization.k8s.io/RoleBinding',
  'rbac.authorization.k8s.io/ClusterRole',
  'rbac.authorization.k8s.io/ClusterRoleBinding',
]);

function withoutStatus(id: { apiVersion: string; kind: string }): boolean {
  const slash = id.apiVersion.lastIndexOf('/');
  return WITHOUT_STATUS.has(`${slash < 0 ? '' : id.apiVersion.slice(0, slash)}/${id.kind}`);
}

async function readOne(ctx: DeployContext, desired: DesiredObject): Promise<ReadObject> {
  const key = ctx.verified?.key(desired, ctx.comparePatches);
  if (!desired.served) return { desired, live: undefined, key };
  if (key !== undefined && withoutStatus(desired.id) && ctx.verified?.expects(key)) {
    ctx.onRead?.();
    const meta = await ctx.applier.getMetadata(desired.id);
    if (!meta) return { desired, live: undefined, key, known: 'missing' };
    if (ctx.verified.has(key, meta)) return { desired, live: meta, key, known: 'unchanged' };
    // Another version: read whole, to compare.
  }
  ctx.onRead?.();
  const live = await ctx.applier.get(desired.id);
  const read = { desired, live, key };
  if (!live) return { ...read, known: 'missing' };
  if (key !== undefined && ctx.verified?.has(key, live)) return { ...read, known: 'unchanged' };
  if (key !== undefined && ctx.verified?.knows(objectOf(key), live)) return { ...read, known: 'modified' };
  return read;
}

/** Plans one object (see the module comment). */
async function planOne(ctx: DeployContext, desired: DesiredObject): Promise<PlannedObject> {
  return await dryRunOne(ctx, await readOne(ctx, desired));
}

/** Plans a read object: unchanged as known, else from a server-side dry run. */
async function dryRunOne(ctx: DeployContext, read: ReadObject): Promise<PlannedObject> {
  const { desired, live, key } = read;
  if (read.known === 'unchanged') return { ...desired, live, drift: { id: desired.id, state: 'unchanged' }, verified: true };
  let dry: Awaited<ReturnType<Applier['dryRun']>>;
  try {
    // A missing object compares as missing whatever the dry run returns: of a kind without status, only its verdict is read.
    const metadataOnly = !live && withoutStatus(desired.id);
    dry = desired.served
      ? await ctx.applier.dryRun(candidateFor(desired.object, live), { metadataOnly })
      : { verified: false as const, why: 'kind not served yet' };
  } catch (err) {
    if (!(live && isImmutableRefusal(err))) throw err;
    if (!ctx.force) throw immutableChange(desired, err);
    if (key !== undefined) ctx.verified?.forget(key);
    return { ...desired, live, drift: { id: desired.id, state: 'modified' }, verified: false, recreate: true };
  }
  const drift = compareObject(desired.id, dry.verified ? dry.object : undefined, live, ctx.comparePatches);
  if (key !== undefined && live && drift.state === 'unchanged') ctx.verified?.remember(key, live);
  else if (key !== undefined) ctx.verified?.forget(key);
  return { ...desired, live, drift, verified: dry.verified };
}

/**
 * Plans every object; throws (applying nothing) if the API server rejects any of them.
 *
 * `applyValidates`: the plan is for a deployment whose apply is its own validation once a single object
 * needs a write (no hooks run before it; it is applied alone, and a refusal fails the deployment with
 * nothing written). Then that object is not dry-run when the plan knows without one that it must be written:
 * it does not exist, or it is still the version written for other content. A rollout of one-object bundles
 * costs one request less per bundle and cluster; an API server that refuses the object refuses the apply.
 */
export async function planObjects(ctx: DeployContext, objects: readonly DesiredObject[], applyValidates = false): Promise<PlannedObject[]> {
  const concurrency = ctx.concurrency ?? 8;
  const read = await mapLimit(objects, concurrency, (o) => readOne(ctx, o));
  const writes = read.filter((r) => r.known !== 'unchanged');
  const only = writes.length === 1 ? writes[0] : undefined;
  const trusted = applyValidates && (only?.known === 'missing' || only?.known === 'modified') ? only : undefined;
  return await mapLimit(read, concurrency, async (r) =>
    r === trusted
      ? {
          ...r.desired,
          live: r.live,
          drift: r.known === 'missing' ? { id: r.desired.id, state: 'missing' } : { id: r.desired.id, state: 'modified', patch: null },
          verified: true,
        }
      : await dryRunOne(ctx, r),
  );
}

/** What {@link applyPlan} did. */
export interface ApplyOutcome {
  /** The objects written, by identity key, with the object as stored. */
  written: Map<string, KubeObject>;
  /** The plan after re-planning the objects that could not be verified at first. */
  plan: PlannedObject[];
}

/** Whether a planned object must be written: it is missing or differs. */
export function needsWrite(p: PlannedObject): boolean {
  return p.drift.state !== 'unchanged';
}

/**
 * Whether drift correction re-writes a planned object: it drifted, and no other bundle deployment wrote it
 * since (two bundles that both correct drift would otherwise take one object from each other for ever;
 * a new version of this bundle still writes it, and the status names the other owner).
 */
export function needsCorrection(p: PlannedObject): boolean {
  return needsWrite(p) && p.drift.ownedBy === undefined;
}

async function writeOne(ctx: DeployContext, p: PlannedObject, force: boolean): Promise<KubeObject> {
  // What is kept of a written object is its resourceVersion (the verified cache) and what readiness reads:
  // for a kind without status, its metadata.
  const options = { metadataOnly: withoutStatus(p.id) };
  if (p.recreate) {
    ctx.log.warn({ object: idKey(p.id) }, 'the change touches an immutable field; deleting and re-creating (force)');
    return await ctx.applier.replace(p.object, options);
  }
  try {
    return await ctx.applier.apply(p.object, options);
  } catch (err) {
    // An object planned without a dry run (see planObjects) meets an immutable field here, not in the plan.
    if (!force && p.live && isImmutableRefusal(err)) throw immutableChange(p, err);
    if (!force || !p.live) throw err;
    ctx.log.warn({ object: idKey(p.id), err: (err as Error).message }, 'apply refused; deleting and re-creating (correctDrift.force)');
    return await ctx.applier.replace(p.object, options);
  }
}

/** Applies one rank group in parallel. */
async function writeGroup(ctx: DeployContext, group: readonly PlannedObject[], force: boolean, written: Map<string, KubeObject>): Promise<void> {
  await mapLimit(group, ctx.concurrency ?? 8, async (p) => {
    const stored = await writeOne(ctx, p, force);
    written.set(idKey(p.id), stored);
    // What the API server stored for the desired content is what its dry run of that content gives: the next
    // plan (the reconcile the status write starts, the next resync) needs no dry run while it stays so.
    const key = ctx.verified?.key(p, ctx.comparePatches);
    if (key !== undefined) ctx.verified?.remember(key, stored);
  });
}

/** Groups objects by apply rank, keeping their order. */
function byRank(objects: readonly PlannedObject[]): PlannedObject[][] {
  const groups: PlannedObject[][] = [];
  let rank = -1;
  for (const o of objects) {
    const r = applyRank(o.id);
    if (r !== rank || groups.length === 0) {
      groups.push([]);
      rank = r;
    }
    (groups[groups.length - 1] as PlannedObject[]).push(o);
  }
  return groups;
}

/**
 * Applies the objects `selected` chooses (see the module comment). Objects that were not verifiable in the
 * plan are planned again once namespaces and CRDs exist; `selected` then decides for them too.
 */
export async function applyPlan(
  ctx: DeployContext,
  plan: readonly PlannedObject[],
  namespaces: readonly EnsuredNamespace[],
  selected: (p: PlannedObject) => boolean,
  force: boolean,
): Promise<ApplyOutcome> {
  const written = new Map<string, KubeObject>();
  for (const ns of namespaces) await ctx.applier.ensureNamespace(ns);
  const { first } = applyPhases(plan);
  await writeGroup(ctx, first.filter(selected), force, written);
  const crds = plan.filter((p) => isCrdKind(p.id)).map((p) => p.id.name);
  if (crds.length > 0) {
    await ctx.applier.waitEstablished(crds);
    if (first.some((p) => isCrdKind(p.id) && written.has(idKey(p.id)))) ctx.applier.resetDiscovery();
  }
  const replanned = await mapLimit(plan, ctx.concurrency ?? 8, async (p) => (p.verified ? p : await planOne(ctx, { ...p, served: true })));
  const { rest } = applyPhases(replanned);
  for (const group of byRank(rest.filter(selected))) await writeGroup(ctx, group, force, written);
  return { written, plan: replanned };
}
