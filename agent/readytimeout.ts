import { Reason, type ConditionInput } from '../lib/api/index.js';
import type { MonitorResult } from './status.js';

/**
 * fleet.yaml `helm.timeoutSeconds`, as Flotilla honours it. Fleet runs `helm upgrade --wait --timeout` with
 * it: the deploy fails when the release's workloads are not ready in time (Fleet's state ErrApplied). The
 * agent applies without blocking, so it counts from the moment it applied the version (recorded in the
 * inventory, so an agent restart does not reset the clock): while objects are still not ready
 * `timeoutSeconds` after that, the BundleDeployment's `Deployed` (and so `Ready`) condition is False with
 * reason {@link Reason.ReadyTimeout}. It is level-based: once every object is ready, Deployed is True again.
 * A drift correction does not restart the clock; a new version (or a forced re-apply) does.
 */

/** When the applied version must be ready by. */
export interface ReadyDeadline {
  /** `helm.timeoutSeconds` (> 0). */
  timeoutSeconds: number;
  /** When the agent applied the version. */
  appliedAt: Date;
}

/** The deadline of an applied version, or undefined when there is none (no timeout, 0, or no apply time recorded). */
export function readyDeadlineOf(timeoutSeconds: number | undefined, appliedAt: string | undefined): ReadyDeadline | undefined {
  if (!timeoutSeconds || timeoutSeconds <= 0 || !appliedAt) return undefined;
  const at = new Date(appliedAt);
  return Number.isNaN(at.getTime()) ? undefined : { timeoutSeconds, appliedAt: at };
}

/** Milliseconds from `now` until the deadline passes (0 when it has). */
export function msUntilDeadline(deadline: ReadyDeadline, now: Date): number {
  return Math.max(0, deadline.appliedAt.getTime() + deadline.timeoutSeconds * 1000 - now.getTime());
}

/**
 * The Deployed condition to report instead of `deployed` when the version missed its deadline: objects are
 * still not ready and the deadline has passed. Undefined otherwise (also while nothing was checked, or when
 * `deployed` is not True: a failure to apply says more than a timeout).
 */
export function readyTimeoutCondition(
  deployed: ConditionInput,
  deadline: ReadyDeadline | undefined,
  monitor: MonitorResult | undefined,
  deploymentID: string,
  now: Date,
): ConditionInput | undefined {
  if (!deadline || !monitor || deployed.status !== 'True' || monitor.nonReady.length === 0) return undefined;
  if (msUntilDeadline(deadline, now) > 0) return undefined;
  const n = monitor.nonReady.length;
  return {
    ...deployed,
    status: 'False',
    reason: Reason.ReadyTimeout,
    message:
      `deployment ${deploymentID} applied, but ${n} ${n === 1 ? 'resource is' : 'resources are'} not ready within ` +
      `helm.timeoutSeconds (${deadline.timeoutSeconds}s); see nonReadyStatus, fix the workload or raise helm.timeoutSeconds`,
  };
}
