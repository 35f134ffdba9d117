import type { NonReadyStatus } from '../lib/api/index.js';
import { apiGroup } from '../lib/bundle/index.js';
import type { KubeObject } from '../lib/kube/client.js';
import { isPlainObject } from '../lib/util/json.js';

/**
 * Readiness of applied objects, from their status alone (kstatus-like, simplified):
 * - Deployment: the controller observed the current generation and updated, ready and available replicas
 *   all reach spec.replicas (default 1);
 * - StatefulSet: observed generation, ready and updated replicas reach spec.replicas;
 * - DaemonSet: observed generation, numberReady and updatedNumberScheduled reach desiredNumberScheduled;
 * - ReplicaSet / ReplicationController: observed generation and readyReplicas reach spec.replicas;
 * - Job: a Complete condition is ready, a Failed condition is an error, otherwise in progress;
 * - Pod: Succeeded, or Running with condition Ready; Failed is an error;
 * - PersistentVolumeClaim: phase Bound;
 * - CustomResourceDefinition: condition Established; Namespace: phase Active (or no phase yet);
 * - any other object with a `Ready` condition: that condition; with a `Stalled`=True condition: an error.
 * Everything else (ConfigMaps, Secrets, Services, RBAC, custom resources without conditions...) has no
 * readiness to wait for and counts as ready as soon as it exists. That rule also covers clusters without
 * kubelets (the e2e stack), where only kinds whose readiness the API server itself reports can be judged.
 *
 * Fleet's `ignore.conditions`: a condition of the object that has every field of one of the given entries
 * (e.g. `{type: Active, status: "False"}`) is left out before any rule above looks at the conditions.
 */

/** The readiness of one object. */
export interface Readiness {
  ready: boolean;
  /** Short state: "ready", "in-progress", "error". */
  state: 'ready' | 'in-progress' | 'error';
  message?: string;
}

type Obj = Record<string, unknown>;

const READY: Readiness = { ready: true, state: 'ready' };

function inProgress(message: string): Readiness {
  return { ready: false, state: 'in-progress', message };
}

function failed(message: string): Readiness {
  return { ready: false, state: 'error', message };
}

function num(value: unknown, fallback = 0): number {
  return typeof value === 'number' ? value : fallback;
}

function field(obj: Obj, key: string): Obj {
  const v = obj[key];
  return isPlainObject(v) ? v : {};
}

interface Condition {
  type?: string;
  status?: string;
  reason?: string;
  message?: string;
}

function conditionOf(status: Obj, type: string): Condition | undefined {
  const list = status.conditions;
  if (!Array.isArray(list)) return undefined;
  return (list as Condition[]).find((c) => c && c.type === type);
}

/** The controller has not yet seen the latest spec. */
function staleGeneration(obj: KubeObject, status: Obj): Readiness | undefined {
  const generation = obj.metadata.generation;
  if (generation !== undefined && num(status.observedGeneration, -1) < generation) {
    return inProgress(`waiting for the controller to observe generation ${generation}`);
  }
  return undefined;
}

function replicas(kind: string, obj: KubeObject, spec: Obj, status: Obj): Readiness {
  const stale = staleGeneration(obj, status);
  if (stale) return stale;
  const want = num(spec.replicas, 1);
  const checks: [string, unknown][] =
    kind === 'Deployment'
      ? [
          ['updated', status.updatedReplicas],
          ['ready', status.readyReplicas],
          ['available', status.availableReplicas],
        ]
      : kind === 'StatefulSet'
        ? [
            ['ready', status.readyReplicas],
            ['updated', status.updatedReplicas],
          ]
        : [['ready', status.readyReplicas]];
  for (const [what, have] of checks) {
    if (num(have) < want) return inProgress(`${num(have)} of ${want} replicas ${what}`);
  }
  if (kind === 'Deployment' && num(status.replicas) > want) {
    return inProgress(`${num(status.replicas) - want} old replicas pending termination`);
  }
  return READY;
}

function daemonSet(obj: KubeObject, status: Obj): Readiness {
  const stale = staleGeneration(obj, status);
  if (stale) return stale;
  const want = num(status.desiredNumberScheduled);
  if (num(status.updatedNumberScheduled) < want) return inProgress(`${num(status.updatedNumberScheduled)} of ${want} pods updated`);
  if (num(status.numberReady) < want) return inProgress(`${num(status.numberReady)} of ${want} pods ready`);
  return READY;
}

function job(status: Obj): Readiness {
  const failedCond = conditionOf(status, 'Failed');
  if (failedCond?.status === 'True') return failed(failedCond.message ?? failedCond.reason ?? 'job failed');
  if (conditionOf(status, 'Complete')?.status === 'True') return READY;
  return inProgress('job has not completed');
}

function pod(status: Obj): Readiness {
  const phase = status.phase;
  if (phase === 'Succeeded') return READY;
  if (phase === 'Failed') return failed(typeof status.message === 'string' ? status.message : 'pod failed');
  if (phase === 'Running' && conditionOf(status, 'Ready')?.status === 'True') return READY;
  return inProgress(`pod is ${typeof phase === 'string' ? phase : 'Pending'}`);
}

function byConditions(status: Obj): Readiness {
  const stalled = conditionOf(status, 'Stalled');
  if (stalled?.status === 'True') return failed(stalled.message ?? stalled.reason ?? 'stalled');
  const ready = conditionOf(status, 'Ready');
  if (ready === undefined || ready.status === 'True') return READY;
  return inProgress(ready.message || ready.reason || 'not ready');
}

/** `status` without the conditions that match one of `ignored` (every field equal, as strings). */
function withoutIgnored(status: Obj, ignored: readonly Readonly<Record<string, string>>[] | undefined): Obj {
  if (!ignored || ignored.length === 0 || !Array.isArray(status.conditions)) return status;
  const matches = (c: unknown) =>
    isPlainObject(c) && ignored.some((rule) => Object.keys(rule).length > 0 && Object.entries(rule).every(([k, v]) => String(c[k]) === v));
  return { ...status, conditions: status.conditions.filter((c) => !matches(c)) };
}

/** The readiness of a live object (see the module comment for the rules); `ignored` are Fleet's ignore.conditions. */
export function readinessOf(obj: KubeObject, ignored?: readonly Readonly<Record<string, string>>[]): Readiness {
  const o = obj as unknown as Obj;
  const spec = field(o, 'spec');
  const status = withoutIgnored(field(o, 'status'), ignored);
  const group = apiGroup(obj.apiVersion);
  if (obj.metadata.deletionTimestamp) return inProgress('being deleted');
  if (group === 'apps' && (obj.kind === 'Deployment' || obj.kind === 'StatefulSet' || obj.kind === 'ReplicaSet')) {
    return replicas(obj.kind, obj, spec, status);
  }
  if (group === '' && obj.kind === 'ReplicationController') return replicas(obj.kind, obj, spec, status);
  if (group === 'apps' && obj.kind === 'DaemonSet') return daemonSet(obj, status);
  if (group === 'batch' && obj.kind === 'Job') return job(status);
  if (group === '' && obj.kind === 'Pod') return pod(status);
  if (group === '' && obj.kind === 'PersistentVolumeClaim') {
    return status.phase === 'Bound' ? READY : inProgress(`claim is ${typeof status.phase === 'string' ? status.phase : 'Pending'}`);
  }
  if (group === '' && obj.kind === 'Namespace') {
    return status.phase === undefined || status.phase === 'Active' ? READY : inProgress(`namespace is ${String(status.phase)}`);
  }
  if (group === 'apiextensions.k8s.io' && obj.kind === 'CustomResourceDefinition') {
    return conditionOf(status, 'Established')?.status === 'True' ? READY : inProgress('CRD is not established');
  }
  return byConditions(status);
}

/** The status entry of a non-ready object. */
export function nonReadyStatusOf(obj: KubeObject, readiness: Readiness): NonReadyStatus {
  const entry: NonReadyStatus = {
    apiVersion: obj.apiVersion,
    kind: obj.kind,
    name: obj.metadata.name,
    summary: { state: readiness.state },
  };
  if (obj.metadata.namespace) entry.namespace = obj.metadata.namespace;
  if (readiness.message) entry.summary.message = readiness.message.slice(0, 1024);
  if (readiness.state === 'error') entry.summary.error = true;
  if (readiness.state === 'in-progress') entry.summary.transitioning = true;
  return entry;
}
