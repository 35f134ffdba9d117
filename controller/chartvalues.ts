import type { BundleDeploymentOptions } from '../lib/api/options.js';
import type { TemplateCluster } from '../lib/render/values.js';
import { preprocessValues } from '../lib/render/values.js';

/**
 * Per-cluster Helm values, computed by the controller as Fleet's controller does: for each cluster a
 * bundle targets, `global.fleet.clusterLabels.<label>` strings become the cluster's label values and
 * `${ }` actions (unless `helm.disablePreProcess`) are expanded against the cluster (lib/render/values.ts).
 * The BundleDeployment then carries the final values with `disablePreProcess: true`, so the agent (which
 * does not know the cluster's labels) renders them as they are; a label change changes the options and so
 * the deployment ID, and the cluster gets the chart again with the new values. `flotilla render` computes
 * the same values from `-l` labels through lib/render's renderContent.
 */

/** The options of one cluster's BundleDeployment with its Helm values templated (see the module comment). */
export function clusterHelmOptions(options: BundleDeploymentOptions, cluster: TemplateCluster, bundle: string): BundleDeploymentOptions {
  const helm = options.helm;
  if (!helm?.values || Object.keys(helm.values).length === 0) return options;
  const values = preprocessValues(helm.values, cluster, helm.disablePreProcess ?? false, `bundle ${bundle}`);
  return { ...options, helm: { ...helm, values, disablePreProcess: true } };
}
