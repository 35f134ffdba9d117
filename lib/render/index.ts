import type { BundleDeploymentOptions } from '../api/options.js';
import { type BundleFile, type RenderedObject, isManifestName, parseYamlDocuments } from '../bundle/manifest.js';
import { type RenderOptions, renderBundle, renderOptionsFrom } from '../bundle/render.js';
import { type Capabilities, type HelmDocument, helmTemplate } from './helm.js';
import { HELM_OUTPUT_FILE, kustomizationIn, kustomizeBuild, withHelmOutput } from './kustomize.js';
import type { RenderTools } from './tools.js';
import { type TemplateCluster, type Values, inlineValuesFiles, mergeValues, preprocessValues } from './values.js';

/**
 * lib/render: the objects one cluster receives from a bundle's files, for plain YAML (lib/bundle/render.ts),
 * Helm charts (helm.ts) and Kustomize folders (kustomize.ts). One plain async function,
 * {@link renderContent}, used by the agent's render step and by `flotilla render`, so that what
 * `flotilla render` prints is what a cluster gets.
 *
 * Which engine (Fleet's rules): `helm.chart` set, or a Chart.yaml at the bundle root -> Helm; else
 * `kustomize.dir` set, or a kustomization at the bundle root -> Kustomize; else plain YAML with overlays.
 * The output of helm and kustomize goes through the same namespace rules as plain YAML (objects without a
 * namespace get the release namespace: `namespace`, else `defaultNamespace`, else `default`).
 *
 * Helm and Kustomize together (Fleet's post-render): when a chart is rendered and `kustomize.dir` is set (or
 * the bundle root holds a kustomization), helm's resources are written as `fleet-manifests.yaml` into that
 * folder, listed first in its kustomization's `resources`, and `kustomize build` of the folder gives the
 * objects ({@link kustomizeOverChart}). The chart's crds/ and its hooks are not passed through kustomize
 * (Helm hands neither to a post-renderer).
 *
 * Values (Fleet's order): `helm.values`, then `valuesFiles` (merged in when the bundle is built), then the
 * cluster templating, then `valuesFrom` read downstream ({@link ContentOptions.valuesFrom}), each over the last.
 */

/** The cluster a bundle is rendered for. */
export interface RenderCluster extends TemplateCluster {
  /** The downstream cluster's version and served APIs (Helm's `.Capabilities`). */
  capabilities: Capabilities;
}

/** Programs and limits. */
export interface RenderSettings {
  tools: RenderTools;
  /** Longest one helm or kustomize run may take. */
  timeoutMs: number;
  /** Most bytes one helm or kustomize run may print. */
  maxOutputBytes: number;
  /** Most memory (RLIMIT_DATA) one helm or kustomize run may map; unset: no cap. */
  maxMemoryBytes?: number | undefined;
  /**
   * Parses helm's and kustomize's output into objects with the namespace rules; default
   * lib/bundle's renderBundle on this thread. The agent parses in a capped worker (lib/isolate).
   */
  parse?: RenderedParser | undefined;
}

/** Parses rendered manifests (as files) into objects; `label` names the bundle in errors. */
export type RenderedParser = (files: BundleFile[], options: RenderOptions, label: string) => Promise<RenderedObject[]>;

/** What to render: the bundle's name (the default release name), its deployment options for the cluster. */
export interface ContentOptions {
  bundleName: string;
  options: BundleDeploymentOptions | undefined;
  /** Decides which kinds are cluster-scoped (see lib/bundle/render.ts). */
  isClusterScoped?: RenderOptions['isClusterScoped'];
  /** The bundle's folder in the repository, shown before file paths in errors. */
  sourceDir?: string | undefined;
  /** Values of `helm.valuesFrom` read on the downstream cluster, in order (agent/valuesfrom.ts); merged last. */
  valuesFrom?: readonly Values[] | undefined;
}

/** A Helm hook object and when it is applied. */
export interface RenderedHook {
  phase: 'pre' | 'post';
  weight: number;
  deletePolicy: string[];
  object: RenderedObject;
}

/** The rendered bundle. */
export interface RenderedContent {
  engine: 'yaml' | 'helm' | 'kustomize';
  /** CustomResourceDefinitions of a chart's crds/: applied first, never pruned. */
  crds: RenderedObject[];
  /** The bundle's objects. */
  objects: RenderedObject[];
  /** pre-install/upgrade and post-install/upgrade hooks, in order. */
  hooks: RenderedHook[];
}

/** Drops a leading `./` and a trailing `/`; `.` and `''` are the bundle root (`''`). */
function bundleDir(path: string | undefined): string {
  const p = (path ?? '').replace(/^\.\//, '').replace(/\/$/, '');
  return p === '.' ? '' : p;
}

/** Which engine renders the bundle, and from which folder. */
export function engineOf(files: readonly BundleFile[], options: BundleDeploymentOptions | undefined): { engine: RenderedContent['engine']; dir: string } {
  if (options?.helm?.chart !== undefined) return { engine: 'helm', dir: bundleDir(options.helm.chart) };
  if (files.some((f) => f.path === 'Chart.yaml')) return { engine: 'helm', dir: '' };
  if (options?.kustomize?.dir !== undefined) return { engine: 'kustomize', dir: bundleDir(options.kustomize.dir) };
  if (kustomizationIn(files, '')) return { engine: 'kustomize', dir: '' };
  return { engine: 'yaml', dir: '' };
}

/** The namespace a bundle deploys into (Helm's release namespace): `targetNamespace`, `namespace`, `defaultNamespace`, else `default`. */
export function releaseNamespace(options: BundleDeploymentOptions | undefined): string {
  return options?.targetNamespace || options?.namespace || options?.defaultNamespace || 'default';
}

/** The folder whose kustomization is built over a chart's output (see the module comment); undefined for none. */
export function kustomizeOverChart(files: readonly BundleFile[], options: BundleDeploymentOptions | undefined): string | undefined {
  if (engineOf(files, options).engine !== 'helm') return undefined;
  if (options?.kustomize?.dir !== undefined) return bundleDir(options.kustomize.dir);
  return kustomizationIn(files, '') ? '' : undefined;
}

/** Helm and kustomize output as bundle files named by their source, for the manifest parser and namespace rules. */
function asFiles(docs: readonly HelmDocument[]): BundleFile[] {
  const bySource = new Map<string, string[]>();
  for (const doc of docs) {
    const name = `[rendered] ${isManifestName(doc.source.slice(doc.source.lastIndexOf('/') + 1)) ? doc.source : `${doc.source}.yaml`}`;
    bySource.set(name, [...(bySource.get(name) ?? []), doc.text]);
  }
  return [...bySource].map(([path, texts]) => ({ path, content: Buffer.from(texts.join('\n---\n')) }));
}

/**
 * The cluster's capabilities plus the APIs of the chart's crds/ (its own and its unpacked subcharts'): Helm
 * installs those CRDs before it renders, so templates see their kinds in `.Capabilities.APIVersions` on the
 * first install already; Flotilla applies them first too. A crds/ file that does not parse adds nothing
 * (the error comes from helm's output).
 */
export function withChartCrds(files: readonly BundleFile[], chartDir: string, capabilities: Capabilities): Capabilities {
  const prefix = chartDir ? `${chartDir}/` : '';
  const crdFile = /^(charts\/[^/]+\/)*crds\/[^/]+\.(ya?ml|json)$/i;
  const added: string[] = [];
  for (const file of files) {
    if (!file.path.startsWith(prefix) || !crdFile.test(file.path.slice(prefix.length))) continue;
    let docs: { value: unknown }[];
    try {
      docs = parseYamlDocuments(file.path, file.content.toString('utf8'));
    } catch {
      continue;
    }
    for (const { value } of docs) {
      const crd = value as { kind?: unknown; spec?: { group?: unknown; names?: { kind?: unknown }; versions?: { name?: unknown; served?: unknown }[] } } | null;
      if (crd?.kind !== 'CustomResourceDefinition' || typeof crd.spec?.group !== 'string' || typeof crd.spec.names?.kind !== 'string') continue;
      for (const v of Array.isArray(crd.spec.versions) ? crd.spec.versions : []) {
        if (typeof v?.name !== 'string' || v.served === false) continue;
        added.push(`${crd.spec.group}/${v.name}`, `${crd.spec.group}/${v.name}/${crd.spec.names.kind}`);
      }
    }
  }
  if (added.length === 0) return capabilities;
  return { ...capabilities, apiVersions: [...new Set([...capabilities.apiVersions, ...added])].sort() };
}

/** Limits of one helm or kustomize run, and what it renders (for messages). */
type HelmLimits = { timeoutMs: number; maxOutputBytes: number; maxMemoryBytes?: number | undefined; what: string };

/** Renders a bundle's files for one cluster (see the module comment). */
export async function renderContent(
  files: readonly BundleFile[],
  content: ContentOptions,
  cluster: RenderCluster,
  settings: RenderSettings,
): Promise<RenderedContent> {
  const options = content.options;
  const base: RenderOptions = { ...renderOptionsFrom(options), isClusterScoped: content.isClusterScoped, sourceDir: content.sourceDir };
  const { engine, dir } = engineOf(files, options);
  const label = (p: string) => (content.sourceDir && content.sourceDir !== '.' ? `${content.sourceDir}/${p}` : p);
  const what = `bundle ${content.bundleName}`;
  const limits = { timeoutMs: settings.timeoutMs, maxOutputBytes: settings.maxOutputBytes, maxMemoryBytes: settings.maxMemoryBytes, what };
  const namespace = releaseNamespace(options);
  const rendered = { ...base, overlays: [], defaultNamespace: namespace };
  const parse: RenderedParser = settings.parse ?? (async (f, o) => renderBundle(f, o));
  if (engine === 'yaml') return { engine, crds: [], objects: renderBundle(files, base), hooks: [] };
  if (engine === 'kustomize') {
    const text = await kustomizeBuild({ ...limits, files, dir, kustomizePath: settings.tools.kustomize, label });
    return { engine, crds: [], objects: await parse(asFiles([{ source: `kustomize build ${label(dir || '.')}`, text }]), rendered, what), hooks: [] };
  }
  return await renderChart(files, { ...content, dir, namespace, label, limits, rendered }, cluster, settings);
}

/** The Helm branch of {@link renderContent}: values, `helm template`, kustomize over it where asked, hooks. */
async function renderChart(
  files: readonly BundleFile[],
  c: ContentOptions & { dir: string; namespace: string; label: (p: string) => string; limits: HelmLimits; rendered: RenderOptions },
  cluster: RenderCluster,
  settings: RenderSettings,
): Promise<RenderedContent> {
  const helm = inlineValuesFiles(c.options?.helm ?? {}, files, { field: 'helm', fleetYamlName: c.label('fleet.yaml'), label: c.label });
  let values = preprocessValues(helm.values ?? {}, cluster, helm.disablePreProcess ?? false, c.label('fleet.yaml'));
  for (const extra of c.valuesFrom ?? []) values = mergeValues(values, extra);
  const out = await helmTemplate({
    ...c.limits,
    files,
    chart: c.dir || '.',
    releaseName: (helm.releaseName || c.bundleName).slice(0, 53),
    namespace: c.namespace,
    values,
    helm,
    capabilities: withChartCrds(files, c.dir, cluster.capabilities),
    helmPath: settings.tools.helm,
  });
  const parse: RenderedParser = settings.parse ?? (async (f, o) => renderBundle(f, o));
  const what = c.limits.what;
  const hooks: RenderedHook[] = [];
  for (const h of out.hooks) {
    hooks.push({ phase: h.phase, weight: h.weight, deletePolicy: h.deletePolicy, object: (await parse(asFiles([h]), c.rendered, what))[0] as RenderedObject });
  }
  const crds = await parse(asFiles(out.crds), c.rendered, what);
  const kdir = kustomizeOverChart(files, c.options);
  if (kdir === undefined) return { engine: 'helm', crds, objects: await parse(asFiles(out.resources), c.rendered, what), hooks };
  const helmYaml = out.resources.map((d) => d.text).join('\n---\n');
  const text = await kustomizeBuild({
    ...c.limits,
    files: withHelmOutput(files, kdir, helmYaml, c.label),
    dir: kdir,
    kustomizePath: settings.tools.kustomize,
    label: c.label,
  });
  const source = `kustomize build ${c.label(kdir || '.')} over ${HELM_OUTPUT_FILE}`;
  return { engine: 'helm', crds, objects: await parse(asFiles([{ source, text }]), c.rendered, what), hooks };
}

export { DEFAULT_KUBE_VERSION, DEFAULT_RENDER_LIMITS, renderToolsFromEnv } from './tools.js';
export type { RenderTools } from './tools.js';
export type { Capabilities } from './helm.js';

/** The objects of a rendered bundle in the order the agent applies them: CRDs, pre hooks, objects, post hooks. */
export function inApplyOrder(content: RenderedContent): RenderedObject[] {
  return [
    ...content.crds,
    ...content.hooks.filter((h) => h.phase === 'pre').map((h) => h.object),
    ...content.objects,
    ...content.hooks.filter((h) => h.phase === 'post').map((h) => h.object),
  ];
}
