import type { HelmOptions } from '../api/helm.js';
import { type BundleFile, decodeUtf8, invalidBundle, parseYamlDocuments } from '../bundle/manifest.js';
import { TemplateError, expandTemplate } from './template.js';
import { isPlainObject } from '../util/json.js';

/**
 * Helm values as Fleet computes them.
 *
 * 1. {@link inlineValuesFiles}: `helm.values` with each of `helm.valuesFiles` merged over it, in order (Fleet
 *    reads values files when it builds the bundle, for fleet.yaml and for each target customization, so a
 *    target's values files override the base's values). Done before targets are merged.
 * 2. Target customizations deep-merge their `helm.values` over the base's (lib/bundle/target.ts mergeOptions).
 * 3. {@link preprocessValues}, per cluster: every string value that starts with `global.fleet.clusterLabels.`
 *    becomes that cluster label's value ("" when the cluster lacks it); then, unless `disablePreProcess`,
 *    `${ ... }` actions in strings are expanded (template.ts) and the result is read back as a YAML scalar,
 *    as Fleet's re-parse of the templated values does (`"${ .ClusterValues.replicas }"` can become 3).
 */

/** A plain mapping of values. */
export type Values = Record<string, unknown>;

/** The cluster a bundle is rendered for, as templates see it. */
export interface TemplateCluster {
  name: string;
  /** The cluster namespace upstream (`.ClusterNamespace`). */
  namespace?: string | undefined;
  labels?: Readonly<Record<string, string>> | undefined;
  annotations?: Readonly<Record<string, string>> | undefined;
  /** The Cluster's templateValues (`.ClusterValues`). */
  values?: Readonly<Record<string, unknown>> | undefined;
}

const CLUSTER_LABEL_PREFIX = 'global.fleet.clusterLabels.';
const MAX_DEPTH = 50;

function isMap(v: unknown): v is Values {
  return isPlainObject(v);
}

/** Deep merge of mappings (Helm's and Fleet's): `over` wins, except that mappings merge key by key. */
export function mergeValues(base: Values, over: Values): Values {
  const out: Values = { ...base };
  for (const [key, value] of Object.entries(over)) {
    const prev = out[key];
    out[key] = isMap(prev) && isMap(value) ? mergeValues(prev, value) : value;
  }
  return out;
}

/** Reads one values file of the bundle; `field` and `fileLabel` name it in errors. */
function readValuesFile(files: readonly BundleFile[], path: string, field: string, fleetYamlName: string, label: (p: string) => string): Values {
  const normalized = path.replace(/^\.\//, '');
  const file = files.find((f) => f.path === normalized);
  if (!file) throw invalidBundle(fleetYamlName, undefined, `${field}: values file ${label(normalized)} is not in the bundle`);
  // Untrusted content: parsed within the content limits (aliases, depth, expansion), like every manifest.
  const doc = parseYamlDocuments(label(normalized), decodeUtf8(label(normalized), file.content))[0]?.value;
  if (doc === undefined || doc === null) return {};
  if (!isMap(doc)) throw invalidBundle(label(normalized), undefined, 'a values file must be a mapping');
  return doc;
}

/**
 * Step 1 of the module comment: returns `helm` with its values files merged into `values` and
 * `valuesFiles` removed. `field` is the fleet.yaml path of `helm` (e.g. `targetCustomizations[0].helm`).
 */
export function inlineValuesFiles(
  helm: HelmOptions,
  files: readonly BundleFile[],
  where: { field: string; fleetYamlName: string; label: (p: string) => string },
): HelmOptions {
  const { valuesFiles, ...rest } = helm;
  if (!valuesFiles || valuesFiles.length === 0) return helm;
  let values: Values = helm.values ?? {};
  valuesFiles.forEach((path, i) => {
    values = mergeValues(values, readValuesFile(files, path, `${where.field}.valuesFiles[${i}]`, where.fleetYamlName, where.label));
  });
  return { ...rest, values };
}

/** Replaces `global.fleet.clusterLabels.<name>` strings by the label's value, in place of a copy. */
function substituteLabels(value: unknown, labels: Readonly<Record<string, string>>, depth: number): unknown {
  if (depth > MAX_DEPTH) throw new TemplateError(`values nested deeper than ${MAX_DEPTH} levels`);
  if (typeof value === 'string' && value.startsWith(CLUSTER_LABEL_PREFIX)) return labels[value.slice(CLUSTER_LABEL_PREFIX.length)] ?? '';
  if (Array.isArray(value)) return value.map((v) => substituteLabels(v, labels, depth + 1));
  if (isMap(value)) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, substituteLabels(v, labels, depth + 1)]));
  return value;
}

/** Expands `${ }` in every string (keys too) and reads expanded strings back as YAML scalars. */
function expandAll(value: unknown, ctx: Values, depth: number): unknown {
  if (depth > MAX_DEPTH) throw new TemplateError(`values nested deeper than ${MAX_DEPTH} levels`);
  if (typeof value === 'string') {
    if (!value.includes('${')) return value;
    const text = expandTemplate(value, ctx);
    try {
      const back = parseYamlDocuments('templated value', text)[0]?.value;
      return back === undefined ? '' : back;
    } catch {
      return text;
    }
  }
  if (Array.isArray(value)) return value.map((v) => expandAll(v, ctx, depth + 1));
  if (isMap(value)) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k.includes('${') ? expandTemplate(k, ctx) : k, expandAll(v, ctx, depth + 1)]));
  }
  return value;
}

/**
 * Step 3 of the module comment, for one cluster. Throws InvalidBundle naming `source` (e.g. the bundle's
 * fleet.yaml) and the failing action.
 */
export function preprocessValues(values: Values, cluster: TemplateCluster, disablePreProcess: boolean, source: string): Values {
  try {
    const labelled = substituteLabels(values, cluster.labels ?? {}, 0) as Values;
    if (disablePreProcess) return labelled;
    const ctx: Values = {
      ClusterName: cluster.name,
      ClusterNamespace: cluster.namespace ?? '',
      ClusterLabels: { ...cluster.labels },
      ClusterAnnotations: { ...cluster.annotations },
      ClusterValues: { ...cluster.values },
    };
    return expandAll(labelled, ctx, 0) as Values;
  } catch (err) {
    if (!(err instanceof TemplateError)) throw err;
    throw invalidBundle(source, undefined, `helm.values for cluster ${cluster.name}: ${err.message} (set helm.disablePreProcess to keep \${ } as text)`, err);
  }
}

/**
 * Step 1 for a whole fleet.yaml, as Fleet does when it builds a bundle: the values files of `helm` and of
 * every target customization's `helm` merged into their `values` (read from the bundle's files). The
 * controller stores the result in the Bundle, so that step 3 can run per cluster on the controller.
 */
export function inlineFleetYamlValuesFiles<
  T extends { helm?: HelmOptions | undefined; targetCustomizations?: { helm?: HelmOptions | undefined }[] | undefined },
>(fleetYaml: T, files: readonly BundleFile[], where: { fleetYamlName: string; label: (p: string) => string }): T {
  const out: T = { ...fleetYaml };
  if (fleetYaml.helm) out.helm = inlineValuesFiles(fleetYaml.helm, files, { ...where, field: 'helm' });
  if (fleetYaml.targetCustomizations) {
    out.targetCustomizations = fleetYaml.targetCustomizations.map((t, i) =>
      t.helm ? { ...t, helm: inlineValuesFiles(t.helm, files, { ...where, field: `targetCustomizations[${i}].helm` }) } : t,
    );
  }
  return out;
}
