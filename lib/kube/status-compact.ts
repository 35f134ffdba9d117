import { ConditionType, type Condition } from '../api/index.js';

/**
 * What a status leaves out because it says nothing: every byte of a Bundle or BundleDeployment is kept in
 * etcd (once per cluster for BundleDeployments), together with its writer's field paths in managedFields.
 */

/** The kstatus summary conditions that are "abnormal-true": absent reads the same as False. */
const IDLE_WHEN_FALSE: readonly string[] = [ConditionType.Reconciling, ConditionType.Stalled];

/**
 * Drops Reconciling and Stalled while they are False: kstatus reads an absent one as False, and on a
 * Bundle or BundleDeployment they would only repeat Ready ("reconciled", "retrying"). True ones stay, and
 * so does every other condition whatever its status.
 */
export function withoutIdleSummary(conditions: readonly Condition[]): Condition[] {
  return conditions.filter((c) => !(IDLE_WHEN_FALSE.includes(c.type) && c.status === 'False'));
}
