import { ConditionType, Reason, getCondition, removeCondition, setCondition, type Condition, type ConditionInput } from '../api/index.js';
import { dispositionOf, messageOf, reasonOf } from '../errors.js';
import { jsonEqual, mergePatchForKeys } from '../util/json.js';
import type { KubeClient, KubeObject } from './client.js';

/**
 * The end of every reconcile: the kstatus summary conditions (Ready, Reconciling, Stalled), computed in
 * one place for every kind from the reconciler's verdict and the error the steps ended with, and the
 * status writers that patch status once, only when it changed.
 */

/** A reconciler's verdict on Ready when its steps are done; 'unchanged' keeps Ready, Reconciling and Stalled as they are. */
export type Readiness =
  | (Omit<ConditionInput, 'type' | 'observedGeneration'> & {
      /** Work is under way (a rollout): Reconciling is True while Ready is not. */
      progressing?: boolean;
    })
  | 'unchanged';

/** Input of {@link summarize}. */
export interface SummaryInput {
  /** The conditions as the steps left them (the reconciler's detailed conditions, and the previous summary). */
  conditions: readonly Condition[] | undefined;
  /** metadata.generation of the object, recorded as each summary condition's observedGeneration. */
  generation: number | undefined;
  /** What the steps ended with (undefined: success). */
  error: unknown;
  /** Reason of a failure whose error carries none of its own. */
  fallbackReason: string;
  readiness: Readiness;
  now: Date;
}

/** The longest message a summary condition carries. */
const MAX_MESSAGE = 1024;

/**
 * Sets Ready, Reconciling and Stalled (kstatus), as Flux's summarize helper does:
 * - a stalling error (the user must act): Stalled True and Ready False with the error's reason, Reconciling False;
 * - any other error (it is retried): Reconciling True, Stalled False, Ready False with the error's reason
 *   (or the reconciler's own False verdict, which is more specific);
 * - success: Stalled removed; Ready is the reconciler's verdict; Reconciling True only while it says `progressing`.
 * Every summary condition records `generation` as its observedGeneration, so `kubectl wait
 * --for=condition=Ready` and kstatus read every Flotilla kind the same way.
 */
export function summarize(input: SummaryInput): Condition[] {
  const { error, readiness, now } = input;
  if (readiness === 'unchanged' && error === undefined) return [...(input.conditions ?? [])];
  const gen = input.generation !== undefined ? { observedGeneration: input.generation } : {};
  const set = (list: Condition[], type: string, status: ConditionInput['status'], reason: string, message: string): Condition[] =>
    setCondition(list, { type, status, reason, message: message.slice(0, MAX_MESSAGE), ...gen }, now);
  let list = [...(input.conditions ?? [])];
  if (error !== undefined) {
    const reason = reasonOf(error, input.fallbackReason);
    const message = messageOf(error);
    const verdict = readiness !== 'unchanged' && readiness.status === 'False' ? readiness : { reason, message };
    if (dispositionOf(error) === 'stalling') {
      list = set(list, ConditionType.Stalled, 'True', reason, message);
      list = set(list, ConditionType.Reconciling, 'False', reason, 'waiting for a change to the object or its inputs');
    } else {
      list = set(list, ConditionType.Stalled, 'False', Reason.Progressing, 'retrying');
      list = set(list, ConditionType.Reconciling, 'True', Reason.Progressing, `retrying: ${message}`);
    }
    return set(list, ConditionType.Ready, 'False', verdict.reason, verdict.message);
  }
  if (readiness === 'unchanged') return list;
  list = removeCondition(list, ConditionType.Stalled);
  const progressing = readiness.progressing === true && readiness.status !== 'True';
  list = progressing
    ? set(list, ConditionType.Reconciling, 'True', Reason.Progressing, readiness.message)
    : set(list, ConditionType.Reconciling, 'False', Reason.Succeeded, 'reconciled');
  return set(list, ConditionType.Ready, readiness.status, readiness.reason, readiness.message);
}

/** The condition types {@link summarize} sets. */
export const SUMMARY_CONDITIONS: readonly string[] = [ConditionType.Ready, ConditionType.Reconciling, ConditionType.Stalled];

/** A status, as a plain object. */
export type StatusFields = Record<string, unknown>;

/** Writes the status a reconciler owns; the skeleton calls it once per reconcile, only when {@link StatusWriter.changed}. */
export interface StatusWriter {
  /** Whether writing `desired` would change `current` (the object's status as read). */
  changed(current: StatusFields | undefined, desired: StatusFields): boolean;
  /** Writes `desired` onto `obj`; returns the object as the server returned it (undefined from clients that return nothing). */
  write(obj: KubeObject, current: StatusFields | undefined, desired: StatusFields): Promise<KubeObject | undefined>;
}

/** The client calls the writers make. */
export type StatusClient = Pick<KubeClient, 'mergePatch' | 'applyStatus'>;

function refOf(obj: KubeObject) {
  return { apiVersion: obj.apiVersion, kind: obj.kind, namespace: obj.metadata.namespace, name: obj.metadata.name };
}

/**
 * A writer for a status with one writer per top-level key: a JSON merge patch of what changed under the
 * keys it owns (a key set to undefined is removed). `ownedKeys` names the keys this writer owns when others write
 * other keys of the same status (the agent writes a Cluster's `agent`); without it, it owns every key.
 */
export function mergeStatusWriter(kube: StatusClient, ownedKeys?: readonly string[]): StatusWriter {
  const keysOf = (current: StatusFields | undefined, desired: StatusFields): string[] =>
    ownedKeys ? [...ownedKeys] : [...new Set([...Object.keys(current ?? {}), ...Object.keys(desired)])];
  const diff = (current: StatusFields | undefined, desired: StatusFields): StatusFields => {
    const named: StatusFields = {};
    for (const key of keysOf(current, desired)) named[key] = desired[key];
    return mergePatchForKeys(current, named);
  };
  return {
    changed: (current, desired) => Object.keys(diff(current, desired)).length > 0,
    async write(obj, current, desired) {
      return await kube.mergePatch({ ...refOf(obj), name: obj.metadata.name }, { status: diff(current, desired) }, 'status');
    },
  };
}

/**
 * A writer for a status several writers share: server-side apply of the status subresource with its own
 * field manager. It owns `ownedKeys` and, of `conditions` (a list-map keyed by type), the entries of
 * `ownedConditions`: the other writers' conditions are neither sent nor lost.
 */
export function applyStatusWriter(kube: StatusClient, fieldManager: string, ownedKeys: readonly string[], ownedConditions: readonly string[]): StatusWriter {
  const owned = (list: unknown): Condition[] =>
    ((list ?? []) as Condition[]).filter((c) => ownedConditions.includes(c.type)).sort((a, b) => a.type.localeCompare(b.type));
  const body = (desired: StatusFields): StatusFields => {
    const status: StatusFields = {};
    for (const key of ownedKeys) if (desired[key] !== undefined) status[key] = key === 'conditions' ? owned(desired[key]) : desired[key];
    return status;
  };
  return {
    changed(current, desired) {
      return ownedKeys.some((key) =>
        key === 'conditions' ? !jsonEqual(owned(current?.conditions), owned(desired.conditions)) : !jsonEqual(current?.[key], desired[key]),
      );
    },
    async write(obj, _current, desired) {
      return await kube.applyStatus(
        {
          apiVersion: obj.apiVersion,
          kind: obj.kind,
          metadata: { name: obj.metadata.name, ...(obj.metadata.namespace ? { namespace: obj.metadata.namespace } : {}) },
          status: body(desired),
        },
        fieldManager,
      );
    },
  };
}

/** Returns the condition of `type` in a status, if any (for event decisions). */
export function conditionIn(status: { conditions?: readonly Condition[] | undefined } | undefined, type: string): Condition | undefined {
  return getCondition(status?.conditions, type);
}
