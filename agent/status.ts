import {
  BundleState,
  ConditionType,
  MAX_RESOURCE_STATUS_ITEMS,
  MAX_STATUS_RESOURCES,
  Reason,
  setCondition,
  type BundleDeploymentStatus,
  type Condition,
  type ConditionInput,
  type ModifiedStatus,
  type NonReadyStatus,
} from '../lib/api/index.js';
import { describeId, type ObjectId } from './objects.js';
import { readyTimeoutCondition, type ReadyDeadline } from './readytimeout.js';

/**
 * The status of a BundleDeployment, as a pure function of what one reconcile found. Conditions:
 * - Deployed: True when the objects downstream are those of spec.deploymentID; False with the failing
 *   step's reason (ArtifactPullFailed, RegistryUnreachable, ArtifactTampered, InvalidBundle, ApplyFailed...)
 *   or Paused; or False with ReadyTimeout while objects are still not ready helm.timeoutSeconds after the
 *   version was applied (agent/readytimeout.ts);
 * - Monitored: True when readiness and drift of every desired object were checked this time;
 * - Ready: True when deployed, monitored, every object ready and none modified or missing.
 * Lists are bounded: nonReadyStatus and modifiedStatus hold the first 10 (by identity), resources the first
 * 100; messages say how many there are in all. Empty lists are omitted, and so are the kstatus summary
 * conditions while they are False (lib/kube/status-compact.ts, when the status is built): each byte of a BundleDeployment is stored
 * in etcd once per cluster, with the field paths of its writer in managedFields. When a reconcile could not look at the objects (content
 * unavailable), the previous lists are kept rather than cleared.
 */

/** A failure of one reconcile, as shown on status. */
export interface StepFailure {
  /** PascalCase reason (a lib/api Reason or an error's own reason). */
  reason: string;
  message: string;
  /** Whether the failure happened before (`deploy`) or while looking at the objects (`monitor`). */
  stage: 'deploy' | 'monitor';
}

/** What a reconcile found, the input of {@link computeStatus}. */
export interface StatusInput {
  previous: BundleDeploymentStatus | undefined;
  generation: number | undefined;
  deploymentID: string;
  forceSyncGeneration: number | undefined;
  /** Deployment ID of the objects downstream (from the inventory), if any were applied. */
  appliedDeploymentID: string | undefined;
  paused: boolean;
  failure: StepFailure | undefined;
  /** The result of checking the objects; undefined when they were not looked at this time. */
  monitor: MonitorResult | undefined;
  now: Date;
  /** When the applied version must be ready by (helm.timeoutSeconds; agent/readytimeout.ts). */
  readyDeadline?: ReadyDeadline | undefined;
}

/** Readiness and drift of the desired objects. */
export interface MonitorResult {
  /** Every desired object, in identity order. */
  resources: ObjectId[];
  nonReady: NonReadyStatus[];
  modified: ModifiedStatus[];
}

const MAX_MESSAGE_ITEMS = 3;

/** The Deployed message once the desired deployment is applied (its ID is `status.appliedDeploymentID`). */
export const DEPLOYED_MESSAGE = 'deployment applied';

function entryName(e: { apiVersion: string; kind: string; name: string; namespace?: string | undefined }): string {
  return describeId({ apiVersion: e.apiVersion, kind: e.kind, name: e.name, ...(e.namespace ? { namespace: e.namespace } : {}) });
}

/** "1 resource", "3 resources". */
function resourceCount(n: number): string {
  return `${n} ${n === 1 ? 'resource' : 'resources'}`;
}

/** "3 resources not ready: A (why), B (why), C (why)", listing at most three. */
export function listMessage(what: string, items: readonly string[]): string {
  const shown = items.slice(0, MAX_MESSAGE_ITEMS).join(', ');
  const more = items.length > MAX_MESSAGE_ITEMS ? ` and ${items.length - MAX_MESSAGE_ITEMS} more` : '';
  return `${resourceCount(items.length)} ${what}: ${shown}${more}`;
}

/** Keeps the first `max` entries of a list (callers sort it first). */
export function bounded<T>(list: readonly T[], max = MAX_RESOURCE_STATUS_ITEMS): T[] {
  return list.slice(0, max);
}

function deployedCondition(input: StatusInput, generation: number | undefined): ConditionInput {
  const base = { type: ConditionType.Deployed, ...(generation !== undefined ? { observedGeneration: generation } : {}) };
  if (input.failure?.stage === 'deploy') return { ...base, status: 'False', reason: input.failure.reason, message: input.failure.message };
  if (input.appliedDeploymentID === input.deploymentID) {
    // The ID is status.appliedDeploymentID (and spec.deploymentID): not repeated here, every byte is kept in etcd.
    return { ...base, status: 'True', reason: Reason.Succeeded, message: DEPLOYED_MESSAGE };
  }
  if (input.paused) {
    return { ...base, status: 'False', reason: Reason.Paused, message: `paused: deployment ${input.deploymentID} is not applied` };
  }
  return { ...base, status: 'Unknown', reason: Reason.Progressing, message: `applying deployment ${input.deploymentID}` };
}

function monitoredCondition(input: StatusInput, generation: number | undefined): ConditionInput {
  const base = { type: ConditionType.Monitored, ...(generation !== undefined ? { observedGeneration: generation } : {}) };
  const m = input.monitor;
  if (m) {
    return {
      ...base,
      status: 'True',
      reason: Reason.Succeeded,
      message: `${resourceCount(m.resources.length)} checked: ${m.nonReady.length} not ready, ${m.modified.length} modified or missing`,
    };
  }
  const failure = input.failure;
  return {
    ...base,
    status: 'False',
    reason: failure?.reason ?? Reason.Progressing,
    message: failure ? `resources not checked: ${failure.message}` : 'resources not checked yet',
  };
}

function readyCondition(input: StatusInput, deployed: ConditionInput, monitored: ConditionInput, generation: number | undefined): ConditionInput {
  const base = { type: ConditionType.Ready, ...(generation !== undefined ? { observedGeneration: generation } : {}) };
  if (deployed.status !== 'True') return { ...base, status: 'False', reason: deployed.reason, message: deployed.message };
  if (monitored.status !== 'True') return { ...base, status: 'False', reason: monitored.reason, message: monitored.message };
  const m = input.monitor as MonitorResult;
  if (m.modified.length > 0) {
    return {
      ...base,
      status: 'False',
      reason: Reason.Drifted,
      message: listMessage(
        'modified or missing',
        m.modified.map((e) => `${entryName(e)}${e.missing ? ' (missing)' : ''}${e.ownedBy ? ` (also deployed by ${e.ownedBy}: keep it in one bundle)` : ''}`),
      ),
    };
  }
  if (m.nonReady.length > 0) {
    return {
      ...base,
      status: 'False',
      reason: Reason.ResourcesNotReady,
      message: listMessage(
        'not ready',
        m.nonReady.map((e) => `${entryName(e)}${e.summary.message ? ` (${e.summary.message})` : ''}`),
      ),
    };
  }
  return { ...base, status: 'True', reason: Reason.Succeeded, message: `${resourceCount(m.resources.length)} ready` };
}

/** The bundle state shown in display.state. */
export function bundleStateOf(input: StatusInput, deployed: ConditionInput): BundleState {
  if (input.failure?.stage === 'deploy' || deployed.reason === Reason.ReadyTimeout) return BundleState.ErrApplied;
  if (deployed.status !== 'True') return input.paused ? BundleState.OutOfSync : BundleState.WaitApplied;
  if (input.failure || !input.monitor) return BundleState.NotReady;
  if (input.monitor.modified.length > 0) return BundleState.Modified;
  if (input.monitor.nonReady.length > 0) return BundleState.NotReady;
  return BundleState.Ready;
}

/** Computes the whole status (see the module comment). */
export function computeStatus(input: StatusInput): BundleDeploymentStatus {
  const generation = input.generation;
  const applied = deployedCondition(input, generation);
  const deployed = readyTimeoutCondition(applied, input.readyDeadline, input.monitor, input.deploymentID, input.now) ?? applied;
  const monitored = monitoredCondition(input, generation);
  const m = input.monitor;
  const ready = readyCondition(input, deployed, monitored, generation);
  let conditions: Condition[] | undefined = input.previous?.conditions;
  for (const c of [ready, deployed, monitored]) conditions = setCondition(conditions, c, input.now);
  const status: BundleDeploymentStatus = {
    ...(generation !== undefined ? { observedGeneration: generation } : {}),
    conditions,
    ready: ready.status === 'True',
    display: { deployed: deployed.status, monitored: monitored.status, state: bundleStateOf(input, deployed) },
  };
  if (input.appliedDeploymentID) status.appliedDeploymentID = input.appliedDeploymentID;
  if (input.appliedDeploymentID === input.deploymentID && input.forceSyncGeneration !== undefined) {
    status.syncGeneration = input.forceSyncGeneration;
  } else if (input.previous?.syncGeneration !== undefined) {
    status.syncGeneration = input.previous.syncGeneration;
  }
  if (m) {
    status.nonModified = m.modified.length === 0;
    // Empty lists are left out (Fleet's omitempty): readers treat a missing list as empty.
    if (m.nonReady.length > 0) status.nonReadyStatus = bounded(m.nonReady);
    if (m.modified.length > 0) status.modifiedStatus = bounded(m.modified);
    status.resources = bounded(m.resources, MAX_STATUS_RESOURCES).map((id) => ({ ...id }));
  } else {
    for (const key of ['nonModified', 'nonReadyStatus', 'modifiedStatus', 'resources'] as const) {
      if (input.previous?.[key] !== undefined) (status as Record<string, unknown>)[key] = input.previous[key];
    }
  }
  return status;
}
