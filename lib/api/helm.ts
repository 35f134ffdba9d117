/**
 * The `helm` and `kustomize` deployment options, with Fleet's field names (fleet.yaml, Bundle and
 * BundleDeployment `options`, `targetCustomizations[]`).
 *
 * What Flotilla does with each field, beside Fleet:
 * - `chart`, `repo`, `version`: a chart folder (or `.`) inside the bundle; or a remote chart: an HTTP(S) URL of a
 *   chart `.tgz`, an `oci://` reference (with `version`), or a chart name in the HTTP(S) Helm repository `repo`
 *   (with `version`: exact or a semver constraint). The controller fetches remote charts when it builds the
 *   bundle (lib/render/chartsource.ts) and stores them in the bundle's files, so agents never reach a chart
 *   repository; the Bundle and BundleDeployments name the fetched folder in `chart` (see {@link CHART_FOLDER}).
 * - `releaseName`, `values`, `valuesFiles` (files of the bundle, merged over `values` as Fleet does),
 *   `disablePreProcess` (no `${ }` cluster templating in values), `skipSchemaValidation`, `disableDNS`: as Fleet.
 * - `takeOwnership`, `force`: Flotilla applies with server-side apply and a field manager, so there are no
 *   Helm ownership annotations to check; `force` also re-creates objects that cannot be patched, like
 *   `correctDrift.force`.
 * - `waitForJobs`: a Job is reported not ready until it completes, always; accepted for Fleet compatibility.
 * - `maxHistory`: Flotilla writes no Helm release history, so there is nothing to limit; accepted.
 * - `disableDependencyUpdate`: the controller runs `helm dependency build` for a chart whose Chart.yaml lists
 *   dependencies from repositories unless this is set (then the chart's `charts/` folder must hold them).
 * - `valuesFrom`: ConfigMap and Secret keys read by the agent on the downstream cluster when it renders
 *   (agent/valuesfrom.ts), merged over `values` in order, a ConfigMap before a Secret in one entry (Fleet's order).
 * - `timeoutSeconds`: Fleet waits that long (helm --wait --timeout) for the release's workloads to become ready
 *   and reports the deploy failed if they do not. Flotilla applies without blocking, so the agent counts from
 *   the moment it applied the version: objects still not ready `timeoutSeconds` later make the
 *   BundleDeployment `Deployed` False with reason `ReadyTimeout` (state ErrApplied, as Fleet's failed wait), until
 *   they become ready (agent/readytimeout.ts). 0 or absent: no limit (Fleet's default too).
 * - `atomic`: Helm's `--atomic`, per cluster and controller-side (controller/atomic.ts): a cluster whose newest
 *   version fails there (a failed apply, or `ReadyTimeout` after `timeoutSeconds`) gets the version it ran
 *   before again, until the revision changes. It needs retained versions (OCI storage); without `timeoutSeconds`
 *   only a failed apply counts (Flotilla does not block on readiness, so there is no implied wait).
 *   `templateValues` is refused by name (see {@link UNSUPPORTED_HELM_FIELDS}). {@link dropNoOpHelmFields} removes
 *   `atomic: false` before fleet.yaml is checked.
 */
import { z } from 'zod';
import { atomic, crdExtensions, freeForm } from './crd-extensions.js';
import { lazySchema } from './lazy.js';

/** Values given to Helm: any YAML mapping (free-form in the CRDs). */
export function helmValues(description: string) {
  const schema = z.record(z.string(), freeForm('A value: any YAML.')).describe(description);
  crdExtensions.add(schema, { preserveUnknownFields: true });
  return schema;
}

/** `.`, or a relative `/`-separated path without `.` or `..` segments, optionally starting with `./`. */
// Segments as in options.ts BUNDLE_PATH (not imported: options.ts imports this module).
const INSIDE_BUNDLE = /^(\.|(\.\/)?([^/.][^/]*|\.[^/.][^/]*|\.\.[^/]+)(\/([^/.][^/]*|\.[^/.][^/]*|\.\.[^/]+))*)\/?$/;

/** Folder of the bundle the controller stores fetched remote charts under (`.chart/<source key>/<chart name>`). */
export const CHART_FOLDER = '.chart';

/** A remote chart URL in `chart`: `oci://`, `http://` or `https://`. */
export const REMOTE_CHART = /^(oci|https?):\/\/\S+$/;

/** True if `helm` names a remote chart (a `repo`, or an `oci://` or `http(s)://` `chart`), which the controller fetches. */
export function isRemoteChart(helm: Pick<HelmOptions, 'chart' | 'repo'> | undefined): boolean {
  return Boolean(helm?.repo) || REMOTE_CHART.test(helm?.chart ?? '');
}

/** A path inside the bundle. */
function bundleRelativePath(description: string, message = 'must be a path inside the bundle (relative, no ".." segment)') {
  return z.string().min(1).max(4096).regex(INSIDE_BUNDLE, message).describe(description);
}

/** A key of a ConfigMap or Secret downstream holding Helm values (Fleet `configMapKeyRef` / `secretKeyRef`). */
function valuesKeyRef(kind: 'ConfigMap' | 'Secret') {
  return z
    .strictObject({
      name: z
        .string()
        .min(1)
        .max(253)
        .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/, 'must be a lowercase DNS-1123 subdomain')
        .describe(`Name of the ${kind} downstream.`),
      namespace: z
        .string()
        .max(63)
        .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, 'must be a lowercase DNS-1123 label')
        .optional()
        .describe(`Namespace of the ${kind} (default: the namespace the bundle deploys into).`),
      key: z.string().max(253).optional().describe(`Key of the ${kind} holding a YAML mapping of values (default: values.yaml).`),
    })
    .describe(`A key of a ${kind} on the downstream cluster holding Helm values.`);
}

/** One `helm.valuesFrom` entry: values read downstream by the agent when it renders. */
export const ValuesFromSchema = lazySchema(() =>
  z
    .strictObject({
      configMapKeyRef: valuesKeyRef('ConfigMap').optional(),
      secretKeyRef: valuesKeyRef('Secret').optional(),
    })
    .describe('Values read on the downstream cluster; the ConfigMap is merged first, then the Secret.'),
);

/** One `helm.valuesFrom` entry. */
export type ValuesFrom = z.infer<typeof ValuesFromSchema>;

/**
 * Fleet `helm` options (the ones Flotilla honours; see the module comment). Atomic for server-side
 * apply: the controller writes them whole, and managedFields name `helm` once instead of every key of
 * every Helm value (a chart's values can hold thousands).
 */
export const HelmOptionsSchema = lazySchema(() =>
  atomic(
    z
      .strictObject({
        // (No CEL rule for the pattern: a regex on a string inside the unbounded targets list exceeds the API server's
        // validation cost budget, and the CRD is refused.)
        chart: z
          .string()
          .min(1)
          .max(4096)
          .regex(
            new RegExp(`^(?:${INSIDE_BUNDLE.source.slice(1, -1)}|${REMOTE_CHART.source.slice(1, -1)})$`),
            'must be a chart folder inside the bundle (relative, no ".." segment), an oci:// reference, an http(s):// URL of a chart .tgz, or a chart name with helm.repo',
          )
          .optional()
          .describe(
            'Chart folder inside the bundle (default: the bundle folder when it holds a Chart.yaml), an oci:// reference, an http(s):// URL of a chart .tgz, or the chart name in helm.repo.',
          ),
        repo: z
          .string()
          .max(4096)
          .regex(/^https?:\/\/\S+$/, 'must be the http(s):// URL of a Helm repository (the folder of its index.yaml)')
          .optional()
          .describe('HTTP(S) Helm repository (index.yaml) holding the chart named in chart; fetched by the controller.'),
        version: z
          .string()
          .max(256)
          .optional()
          .describe('Version of a remote chart: exact or a semver constraint (e.g. ^1.2.0), resolved at each commit; default the latest.'),
        releaseName: z
          .string()
          .max(53)
          .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/, 'must be a lowercase DNS name of at most 53 characters')
          .optional()
          .describe('Release name the chart is rendered with (.Release.Name); default: the bundle name.'),
        values: helmValues('Values given to the chart; ${ } cluster templating and global.fleet.clusterLabels.* apply.').optional(),
        valuesFiles: z
          .array(bundleRelativePath('A values file of the bundle.'))
          .optional()
          .describe('Values files of the bundle, merged over values in order (Fleet order).'),
        valuesFrom: z
          .array(ValuesFromSchema)
          .optional()
          .describe('ConfigMap and Secret keys read downstream by the agent, merged over values and valuesFiles in order.'),
        takeOwnership: z.boolean().optional().describe('Take over objects that exist downstream (server-side apply always does).'),
        force: z.boolean().optional().describe('Delete and re-create objects that cannot be patched.'),
        waitForJobs: z.boolean().optional().describe('Jobs count as ready only once complete (always true in Flotilla).'),
        maxHistory: z.int32().min(0).optional().describe('Accepted for Fleet compatibility: Flotilla keeps no Helm history.'),
        timeoutSeconds: z
          .int32()
          .min(0)
          .optional()
          .describe(
            'Seconds the applied version has to become ready; objects still not ready then make the deployment fail (Deployed False, reason ReadyTimeout) until they are ready. 0: no limit.',
          ),
        atomic: z
          .boolean()
          .optional()
          .describe(
            'Roll a cluster back to the version it ran before when the newest version fails there (apply failure, or ReadyTimeout after timeoutSeconds), until the revision changes. Needs OCI storage (retained versions).',
          ),
        skipSchemaValidation: z.boolean().optional().describe("Do not validate values against the chart's values.schema.json."),
        disableDNS: z.boolean().optional().describe('Templates may not resolve host names (Fleet enables DNS by default).'),
        disablePreProcess: z.boolean().optional().describe('Do not apply ${ } cluster templating to values.'),
        disableDependencyUpdate: z.boolean().optional().describe("Do not fetch the chart's dependencies: take them from its charts/ folder."),
        insecureSkipTLSVerify: z
          .boolean()
          .optional()
          .describe(
            "Do not verify the TLS certificate of this bundle's remote chart repository (and its dependencies' repositories) when the controller fetches them.",
          ),
      })
      .describe('Helm options: which chart of the bundle and how it is rendered.'),
  ),
);

/** Fleet `helm` options. */
export type HelmOptions = z.infer<typeof HelmOptionsSchema>;

/** Fleet `kustomize` options. */
export const KustomizeOptionsSchema = lazySchema(() =>
  z
    .strictObject({
      dir: bundleRelativePath('Folder of the bundle holding the kustomization.yaml to build (default: the bundle folder).').optional(),
    })
    .describe('Kustomize options.'),
);

/** Fleet `kustomize` options. */
export type KustomizeOptions = z.infer<typeof KustomizeOptionsSchema>;

/** Fleet `helm` fields Flotilla refuses, with the reason shown to the user. */
export const UNSUPPORTED_HELM_FIELDS = {
  templateValues:
    'Fleet has no "helm.templateValues" in fleet.yaml: per-cluster values come from the Cluster\'s spec.templateValues, ' +
    'read in helm.values as ${ .ClusterValues.<key> }',
} as const;

/** The `helm` mappings of a parsed fleet.yaml document: the top-level one and each target customization's. */
function helmSections(doc: Record<string, unknown>): Record<string, unknown>[] {
  const isMapping = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  const targets = Array.isArray(doc.targetCustomizations) ? doc.targetCustomizations : [];
  return [doc.helm, ...targets.map((t: unknown) => (isMapping(t) ? t.helm : undefined))].filter(isMapping);
}

/**
 * Removes Fleet `helm` fields whose value means "do nothing" in Flotilla, from the top-level `helm` of a parsed
 * fleet.yaml document and from each `targetCustomizations[].helm`: `atomic: false` (Fleet's default). Any other
 * value stays, and the schema checks it (`true` is honoured, anything but a boolean refused).
 */
export function dropNoOpHelmFields(doc: Record<string, unknown>): void {
  for (const helm of helmSections(doc)) if (helm.atomic === false) delete helm.atomic;
}
