import type { LabelSelector } from '../api/meta.js';
import type { BundleDeploymentOptions, BundleTarget, TargetRestriction } from '../api/options.js';
import { isPlainObject } from '../util/json.js';

/**
 * Pure targeting: which clusters get a bundle, and with which options (Fleet semantics).
 *
 * - A target (a GitRepo `targets[]` entry or a fleet.yaml `targetCustomizations[]` entry) matches a
 *   cluster when every criterion it sets holds: `clusterName` equals the cluster's name, `clusterSelector`
 *   matches the cluster's labels, and one ClusterGroup the cluster belongs to satisfies both `clusterGroup`
 *   (its name) and `clusterGroupSelector` (its labels). Unset criteria (absent, null or "") are dropped; a
 *   selector `{}` matches everything. A target that sets no criterion at all matches no cluster, so that a
 *   half-written target never deploys everywhere.
 * - A cluster gets a bundle when it matches any GitRepo target (its first match decides; `doNotDeploy`
 *   there excludes it). A GitRepo without targets uses {@link DEFAULT_TARGETS}: the ClusterGroup named
 *   "default", as Fleet does; with no such group, nothing is deployed.
 * - fleet.yaml `targetCustomizations` only customize: the first that matches (in order) gives its options
 *   on top of the bundle's options; `doNotDeploy: true` there excludes the cluster. They never add a
 *   cluster that no GitRepo target matches.
 */

/** Labels as on Kubernetes objects. */
export type Labels = Readonly<Record<string, string>>;

/** A ClusterGroup as targeting sees it. A group without selector has no members (Kubernetes: nil selects nothing). */
export interface GroupInfo {
  name: string;
  labels: Labels;
  selector?: LabelSelector | null | undefined;
}

/** A cluster as targeting sees it: its name, labels and the groups it belongs to. */
export interface ClusterInfo {
  name: string;
  labels: Labels;
  groups: readonly { name: string; labels: Labels }[];
}

/** The fields of a target that select clusters. */
export interface TargetMatch {
  name?: string | undefined;
  clusterName?: string | null | undefined;
  clusterSelector?: LabelSelector | null | undefined;
  clusterGroup?: string | null | undefined;
  clusterGroupSelector?: LabelSelector | null | undefined;
}

/** Targets used when a GitRepo has none: the ClusterGroup named "default" (Fleet's default). */
export const DEFAULT_TARGETS: readonly (TargetRestriction & { doNotDeploy?: boolean })[] = [{ name: 'default', clusterGroup: 'default' }];

/**
 * True if the labels satisfy the selector, as Kubernetes evaluates a metav1.LabelSelector: matchLabels and
 * every matchExpression must hold; an empty selector matches everything. `In` needs the key with one of the
 * values; `NotIn` holds when the key is absent or has none of the values; `Exists` / `DoesNotExist` test the key.
 */
export function matchesSelector(labels: Labels, selector: LabelSelector): boolean {
  for (const [key, value] of Object.entries(selector.matchLabels ?? {})) {
    if (labels[key] !== value) return false;
  }
  for (const req of selector.matchExpressions ?? []) {
    const has = Object.hasOwn(labels, req.key);
    const value = labels[req.key];
    const values = req.values ?? [];
    switch (req.operator) {
      case 'In':
        if (!has || !values.includes(value as string)) return false;
        break;
      case 'NotIn':
        if (has && values.includes(value as string)) return false;
        break;
      case 'Exists':
        if (!has) return false;
        break;
      case 'DoesNotExist':
        if (has) return false;
        break;
    }
  }
  return true;
}

function isSet<T>(value: T | null | undefined | ''): value is T {
  return value !== undefined && value !== null && value !== '';
}

/** True if the target sets at least one criterion. */
export function hasCriteria(target: TargetMatch): boolean {
  return isSet(target.clusterName) || isSet(target.clusterSelector) || isSet(target.clusterGroup) || isSet(target.clusterGroupSelector);
}

/** True if the target matches the cluster (see the module comment for the rules). */
export function matchTarget(target: TargetMatch, cluster: ClusterInfo): boolean {
  if (!hasCriteria(target)) return false;
  if (isSet(target.clusterName) && target.clusterName !== cluster.name) return false;
  if (isSet(target.clusterSelector) && !matchesSelector(cluster.labels, target.clusterSelector)) return false;
  if (isSet(target.clusterGroup) || isSet(target.clusterGroupSelector)) {
    return cluster.groups.some(
      (group) =>
        (!isSet(target.clusterGroup) || group.name === target.clusterGroup) &&
        (!isSet(target.clusterGroupSelector) || matchesSelector(group.labels, target.clusterGroupSelector)),
    );
  }
  return true;
}

/** The groups (name and labels) whose selector matches the cluster's labels. */
export function groupsOf(clusterLabels: Labels, groups: readonly GroupInfo[]): { name: string; labels: Labels }[] {
  return groups.filter((g) => isSet(g.selector) && matchesSelector(clusterLabels, g.selector)).map((g) => ({ name: g.name, labels: g.labels }));
}

/** The first target that matches the cluster (fleet.yaml targetCustomizations: first match wins), if any. */
export function customizationFor<T extends TargetMatch>(targets: readonly T[] | undefined, cluster: ClusterInfo): T | undefined {
  return (targets ?? []).find((t) => matchTarget(t, cluster));
}

const MATCH_FIELDS = new Set(['name', 'clusterName', 'clusterSelector', 'clusterGroup', 'clusterGroupSelector', 'doNotDeploy']);

function mergeValues(base: unknown, override: unknown): unknown {
  if (!isPlainObject(base) || !isPlainObject(override)) return override;
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(override)) {
    if (value !== undefined) out[key] = mergeValues(base[key], value);
  }
  return out;
}

/**
 * Applies a target customization to deployment options: every option field the customization sets
 * replaces the base value, except objects (correctDrift, diff, yaml, namespaceLabels, namespaceAnnotations),
 * which are merged key by key; lists (such as `yaml.overlays`) are replaced. Target match fields (name,
 * clusterName, selectors, doNotDeploy) are not options and are dropped.
 */
export function mergeOptions(base: BundleDeploymentOptions, customization: BundleTarget | undefined): BundleDeploymentOptions {
  if (!customization) return { ...base };
  const overrides = Object.fromEntries(Object.entries(customization).filter(([key]) => !MATCH_FIELDS.has(key)));
  return mergeValues(base, overrides) as BundleDeploymentOptions;
}

/** A cluster that gets a BundleDeployment, and the options it gets. */
export interface ClusterSelection {
  /** Cluster name. */
  cluster: string;
  /** Name of the target customization used, if one matched. */
  customization?: string | undefined;
  /** Bundle options with the customization applied. */
  options: BundleDeploymentOptions;
}

/**
 * Decides, for every cluster, whether it gets the bundle and with which options (see the module comment).
 * `gitRepoTargets` empty or absent means {@link DEFAULT_TARGETS}. `groups` are all ClusterGroups in the
 * workspace; cluster membership is computed from their selectors. Result order follows `clusters`.
 */
export function selectClusters(
  gitRepoTargets: readonly (TargetMatch & { doNotDeploy?: boolean | undefined })[] | undefined,
  targetCustomizations: readonly BundleTarget[] | undefined,
  clusters: readonly { name: string; labels: Labels }[],
  groups: readonly GroupInfo[],
  baseOptions: BundleDeploymentOptions = {},
): ClusterSelection[] {
  const targets: readonly (TargetMatch & { doNotDeploy?: boolean | undefined })[] =
    gitRepoTargets && gitRepoTargets.length > 0 ? gitRepoTargets : DEFAULT_TARGETS;
  const selected: ClusterSelection[] = [];
  for (const c of clusters) {
    const cluster: ClusterInfo = { name: c.name, labels: c.labels, groups: groupsOf(c.labels, groups) };
    const target = customizationFor(targets, cluster);
    if (!target || target.doNotDeploy) continue;
    const customization = customizationFor(targetCustomizations, cluster);
    if (customization?.doNotDeploy) continue;
    selected.push({ cluster: c.name, customization: customization?.name, options: mergeOptions(baseOptions, customization) });
  }
  return selected;
}
