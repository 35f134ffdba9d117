import type { Logger } from 'pino';
import type { Condition } from '../api/index.js';
import { dispositionOf, messageOf } from '../errors.js';
import { KubeApiError, type KubeClient, type KubeObject } from './client.js';
import type { Reconcile, ReconcileResult } from './controller.js';
import { summarize, type Readiness, type StatusFields, type StatusWriter } from './reconciler-status.js';
import type { OwnWrites } from './ownwrites.js';

/**
 * The one shape of every Flotilla reconciler (controller and agent):
 *
 *   get -> gone? -> deletion (finalize, then remove the finalizer) -> add the finalizer -> suspended? ->
 *   the ordered steps -> finally: summarize Ready/Reconciling/Stalled and write status once, if it changed.
 *
 * A reconciler is a {@link ReconcilerDefinition}: how to read its object, its finalizer, its steps (one
 * signature, a closed result) and its status. {@link reconciler} turns it into the {@link Reconcile}
 * function a {@link Controller} runs; the controller decides requeue timing from what it returns.
 */

/** What a step says about the remaining steps. */
export type StepResult = 'continue' | 'stop';

/** One step of a reconcile: does its part on the run's working state (and throws to fail the reconcile). */
export type Step<R> = (run: R) => Promise<StepResult>;

/** The working state every run starts from; a reconciler extends it with its own fields. */
export interface RunState<T extends KubeObject> {
  /** The object as read at the start of this reconcile (with the finalizer, once added). */
  readonly object: T;
  /** The time of this reconcile (injected clock). */
  readonly now: Date;
  /** The object's conditions: steps set the reconciler's detailed ones; the summary is added at the end. */
  conditions: Condition[];
  /**
   * The object as a step's own status write left it during the run (a storage migration reports its progress
   * as it goes), as the server returned it. The final status write is then a diff against this status, not
   * against {@link object}'s: a field the step changed and the run's final status sets back is written too.
   */
  statusWritten?: KubeObject;
}

/** The client calls finalizer helpers make. */
export type FinalizerClient = Pick<KubeClient, 'mergePatch'>;

function refOf(obj: KubeObject) {
  return { apiVersion: obj.apiVersion, kind: obj.kind, namespace: obj.metadata.namespace, name: obj.metadata.name };
}

/**
 * Adds finalizer `name` to `obj` (a merge patch with resourceVersion as precondition: a concurrent change
 * is a conflict, re-read at once). Returns the object as the server returned it.
 */
export async function addFinalizer<T extends KubeObject>(kube: FinalizerClient, obj: T, name: string): Promise<T> {
  if (obj.metadata.finalizers?.includes(name)) return obj;
  return await kube.mergePatch<T>(refOf(obj), {
    metadata: { finalizers: [...(obj.metadata.finalizers ?? []), name], resourceVersion: obj.metadata.resourceVersion },
  });
}

/** Removes finalizer `name` from `obj` (same precondition as {@link addFinalizer}); nothing when it is not there. */
export async function removeFinalizer(kube: FinalizerClient, obj: KubeObject, name: string): Promise<void> {
  const finalizers = obj.metadata.finalizers ?? [];
  if (!finalizers.includes(name)) return;
  await kube.mergePatch(refOf(obj), { metadata: { finalizers: finalizers.filter((f) => f !== name), resourceVersion: obj.metadata.resourceVersion } });
}

/** A reconciler's finalizer: the clean-up an object's deletion waits for. */
export interface FinalizerSpec<T extends KubeObject> {
  name: string;
  /** Cleans up after a deleted object; 'done' lets the finalizer go, a result comes back later (still cleaning). */
  finalize(obj: T): Promise<'done' | ReconcileResult>;
  /** Run {@link finalize} also when the finalizer is not on the object (the agent, which may not be allowed to set it). */
  always?: boolean;
  /** Whether to add the finalizer now (default: always). */
  shouldAdd?(): boolean;
  /**
   * The API server refused to add it (HTTP 403): called instead of failing, and the reconcile goes on
   * (the agent then relies on its downstream inventory). Without it a 403 fails the reconcile.
   */
  onForbidden?(err: unknown): void;
}

/** How a reconciler computes and writes its status, in `finally`. */
export interface StatusSpec<T extends KubeObject, R extends RunState<T>> {
  /** Reason of a failure whose error carries none (the reconciler's main step, e.g. GitOperationFailed). */
  fallbackReason: string;
  /** The Ready verdict after the steps (see {@link Readiness}); `error` is what they ended with. */
  readiness(run: R, error: unknown): Readiness;
  /** The status fields this reconciler owns, given the summarized conditions. */
  build(run: R, conditions: Condition[], error: unknown): StatusFields;
  writer: StatusWriter;
  /** Called after a write (or when nothing changed) with the status before and after: emit events on transitions. */
  transitions?(run: R, before: StatusFields | undefined, after: StatusFields, error: unknown): void | Promise<void>;
  /**
   * True when a run that succeeded should leave its status to the next run: it changed objects whose watch
   * events start that run shortly, and the status it would write now would be out of date by then (the Bundle
   * reconciler after writing BundleDeployments, whose agents report within a second). No status write and no
   * transitions this run; the reconciler's `requeue` must bring the next run even if no event does. A run that
   * failed always writes its status.
   */
  postpone?(run: R): boolean;
}

/** Everything the skeleton needs to know about one reconciler. */
export interface ReconcilerDefinition<T extends KubeObject, R extends RunState<T>> {
  /** Used in logs. */
  name: string;
  log: Logger;
  now: () => Date;
  /** Reads the object named by `key` (current state: from the API server, or a cache where that is enough). */
  get(key: string): Promise<T | undefined>;
  /**
   * Told of every write the skeleton makes to the object (the finalizer, the status) with the object it was
   * made from and the server's response: a `get` that reads an informer's cache reads through it
   * ({@link OwnWrites}), so a reconcile never starts from a status older than its own last write.
   */
  ownWrites?: Pick<OwnWrites<T>, 'record'>;
  /** The object is gone: clean up what it left (objects it cannot own). */
  // biome-ignore lint/suspicious/noConfusingVoidType: a clean-up with nothing to ask for simply returns
  gone?(key: string): Promise<ReconcileResult | void>;
  finalizer?: FinalizerSpec<T>;
  /** Used to add and remove the finalizer. */
  kube?: FinalizerClient;
  /** True when the object asks to be left alone: no steps, no status write. */
  suspended?(obj: T): boolean;
  /** The working state of a new run. */
  start(obj: T, now: Date): R;
  /** The ordered steps of this run (a reconciler may choose them by the object, e.g. paused). */
  steps(run: R): readonly Step<R>[];
  status: StatusSpec<T, R>;
  /** What comes next (polling, heartbeats, a backoff bound), given what the run ended with. */
  requeue?(run: R, error: unknown): Omit<ReconcileResult, 'error'>;
}

/** Turns a definition into the {@link Reconcile} function a Controller runs. */
export function reconciler<T extends KubeObject, R extends RunState<T>>(def: ReconcilerDefinition<T, R>): Reconcile {
  return async (key) => {
    const found = await def.get(key);
    if (!found) return (await def.gone?.(key)) ?? {};
    if (found.metadata.deletionTimestamp) return await deletion(def, found);
    const obj = await ensureFinalizer(def, found);
    if (obj !== found) def.ownWrites?.record(key, found, obj);
    if (def.suspended?.(obj)) return {};
    const run = def.start(obj, def.now());
    let error: unknown;
    try {
      for (const step of def.steps(run)) if ((await step(run)) === 'stop') break;
    } catch (err) {
      error = err;
    } finally {
      error = await finish(def, key, run, error);
    }
    return { ...def.requeue?.(run, error), ...(error !== undefined ? { error } : {}) };
  };
}

async function deletion<T extends KubeObject, R extends RunState<T>>(def: ReconcilerDefinition<T, R>, obj: T): Promise<ReconcileResult> {
  const fin = def.finalizer;
  if (!fin) return {};
  const present = obj.metadata.finalizers?.includes(fin.name) ?? false;
  if (!present && !fin.always) return {};
  const result = await fin.finalize(obj);
  if (result !== 'done') return result;
  if (present && def.kube) await removeFinalizer(def.kube, obj, fin.name);
  return {};
}

async function ensureFinalizer<T extends KubeObject, R extends RunState<T>>(def: ReconcilerDefinition<T, R>, obj: T): Promise<T> {
  const fin = def.finalizer;
  if (!fin || !def.kube || obj.metadata.finalizers?.includes(fin.name) || fin.shouldAdd?.() === false) return obj;
  try {
    return await addFinalizer(def.kube, obj, fin.name);
  } catch (err) {
    if (fin.onForbidden && err instanceof KubeApiError && err.statusCode === 403) {
      fin.onForbidden(err);
      return obj;
    }
    throw err;
  }
}

/**
 * Summarizes and writes the status once. Returns the error the reconcile ends with: the steps' error, or
 * the write's when the steps succeeded. A conflict (the run acted on a stale view) writes nothing: the
 * immediate retry will.
 */
async function finish<T extends KubeObject, R extends RunState<T>>(def: ReconcilerDefinition<T, R>, key: string, run: R, error: unknown): Promise<unknown> {
  if (error !== undefined && dispositionOf(error) === 'conflict') return error;
  const spec = def.status;
  if (error === undefined && spec.postpone?.(run)) return error;
  const before = (run.object as { status?: StatusFields }).status;
  // What the server holds: the status at the start, or what a step wrote since (RunState.statusWritten).
  const base = run.statusWritten ?? run.object;
  const current = (base as { status?: StatusFields }).status;
  try {
    // The verdict first: it may set the run's detailed conditions (from a roll-up) that the summary starts from.
    const readiness = spec.readiness(run, error);
    const conditions = summarize({
      conditions: run.conditions,
      generation: run.object.metadata.generation,
      error,
      fallbackReason: spec.fallbackReason,
      readiness,
      now: run.now,
    });
    const after = spec.build(run, conditions, error);
    if (spec.writer.changed(current, after)) {
      const written = await spec.writer.write(run.object, current, after);
      def.ownWrites?.record(key, base, written);
    }
    await spec.transitions?.(run, before, after, error);
    return error;
  } catch (err) {
    if (error === undefined) return err;
    def.log.warn(
      { reconciler: def.name, object: `${run.object.metadata.namespace ?? ''}/${run.object.metadata.name}`, err: messageOf(err) },
      'could not write status',
    );
    return error;
  }
}
