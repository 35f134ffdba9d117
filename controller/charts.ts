import { API_VERSION, Reason, type BundleStatus, type GitRepo } from '../lib/api/index.js';
import type { FleetYaml } from '../lib/api/fleetyaml.js';
import type { HelmOptions } from '../lib/api/helm.js';
import type { BundleDeploymentOptions } from '../lib/api/options.js';
import { DEFAULT_BUNDLE_LIMITS, fleetYamlOptions, mergeOptions, validateBundle, type BundleLimits, type LoadedBundle } from '../lib/bundle/index.js';
import type { BundleFile } from '../lib/bundle/manifest.js';
import { StallingError } from '../lib/errors.js';
import type { KubeClient, KubeObject } from '../lib/kube/client.js';
import {
  type ChartAccess,
  type ChartSource,
  type FetchedChart,
  type FetchSettings,
  chartFolderOf,
  chartSourceOf,
  describeSource,
  fetchChart,
  sourceURL,
} from '../lib/render/chartsource.js';
import { DEFAULT_RENDER_LIMITS, engineOf, renderToolsFromEnv } from '../lib/render/index.js';
import { buildDependencies, missingDependencies, type RemoteDependency } from '../lib/render/chartdeps.js';
import { readSecretData } from './store.js';

/**
 * Remote charts at bundle build time (the controller's side of lib/render/chartsource.ts): after a commit's
 * bundles are read, every variant of a bundle (its fleet.yaml `helm`, and each target customization merged
 * over it) that names a remote chart gets it fetched, once per source and version; the chart's files join
 * the bundle's under `.chart/<key>/<chart name>/`, and the variant's `helm.chart` is rewritten to that folder
 * (`repo` and `version` dropped), so the Bundle, its artifact and every BundleDeployment carry the chart and
 * agents render it as an in-repository chart, with no network. Then every chart a variant renders (fetched
 * or in the repository) whose Chart.yaml lists dependencies from HTTP(S) or `oci://` repositories missing
 * from its `charts/` gets them with `helm dependency build` (lib/render/chartdeps.ts), unless the variant sets
 * `disableDependencyUpdate`. The bundle is then validated again with its new files and the bundle limits
 * counted over all of them.
 *
 * Credentials: the GitRepo's `helmSecretName` (keys `username`, `password`, `cacerts`) goes to sources
 * whose URL matches `helmRepoURLRegex` (all when unset), as in Fleet; `insecureSkipTLSVerify` applies to
 * chart repositories too. What was fetched is recorded in the Bundle's `status.charts` (source without
 * credentials, resolved version, folder) by its own field manager.
 */

/** The field manager of Bundle `status.charts`. */
export const CHARTS_STATUS_MANAGER = 'flotilla-gitrepo-charts';

/** One chart recorded on a Bundle. */
export type ChartStatus = NonNullable<BundleStatus['charts']>[number];

/** Fetches charts (injectable for tests). */
export type ChartFetcher = (source: ChartSource, access: ChartAccess, what: string) => Promise<FetchedChart>;

/** Fetches a chart's dependencies: the archives to add, paths relative to the chart folder (injectable for tests). */
export type DependencyBuilder = (
  chartFiles: readonly BundleFile[],
  deps: readonly RemoteDependency[],
  access: (url: string) => ChartAccess,
  what: string,
) => Promise<BundleFile[]>;

/** Credentials for a source, read when first needed. */
export type AccessResolver = (source: ChartSource) => ChartAccess | Promise<ChartAccess>;

/** The credentials of a GitRepo for chart sources (see the module comment). */
export async function chartAccessOf(kube: Pick<KubeClient, 'get'>, repo: GitRepo & KubeObject): Promise<(source: ChartSource) => ChartAccess> {
  const ns = repo.metadata.namespace ?? 'default';
  const insecureSkipTLSVerify = repo.spec.insecureSkipTLSVerify ?? false;
  if (!repo.spec.helmSecretName) return () => ({ insecureSkipTLSVerify });
  const { data } = await readSecretData(kube, ns, repo.spec.helmSecretName, 'helmSecretName');
  let pattern: RegExp | undefined;
  try {
    pattern = repo.spec.helmRepoURLRegex ? new RegExp(repo.spec.helmRepoURLRegex) : undefined;
  } catch (err) {
    throw new StallingError(
      Reason.InvalidSpec,
      `GitRepo ${ns}/${repo.metadata.name}: spec.helmRepoURLRegex is not a regular expression: ${(err as Error).message}`,
    );
  }
  return (source) => {
    const send = !pattern || pattern.test(sourceURL(source));
    return {
      insecureSkipTLSVerify,
      ...(data.cacerts ? { caPem: data.cacerts } : {}),
      ...(send && data.username !== undefined ? { username: data.username, password: data.password ?? '' } : {}),
    };
  };
}

function fetchSettings(limits: Partial<BundleLimits>): FetchSettings {
  return { helmPath: renderToolsFromEnv().helm, timeoutMs: DEFAULT_RENDER_LIMITS.timeoutMs, limits: { ...DEFAULT_BUNDLE_LIMITS, ...limits } };
}

/** The default fetcher: the real helm (FLOTILLA_HELM or PATH) within the bundle limits. */
export function defaultChartFetcher(limits: Partial<BundleLimits>): ChartFetcher {
  const settings = fetchSettings(limits);
  return (source, access, what) => fetchChart(source, access, settings, what);
}

/** The default dependency builder: `helm dependency build` (lib/render/chartdeps.ts) within the bundle limits. */
export function defaultDependencyBuilder(limits: Partial<BundleLimits>): DependencyBuilder {
  const settings = fetchSettings(limits);
  return (files, deps, access, what) => buildDependencies(files, deps, access, settings, what);
}

interface Variant {
  /** undefined for the fleet.yaml options, else the index of the target customization. */
  target: number | undefined;
  options: BundleDeploymentOptions;
  helm: HelmOptions;
}

function variantsOf(fy: FleetYaml): Variant[] {
  const base = fleetYamlOptions(fy);
  const out: Variant[] = [{ target: undefined, options: base, helm: base.helm ?? {} }];
  (fy.targetCustomizations ?? []).forEach((t, i) => {
    const options = mergeOptions(base, t);
    out.push({ target: i, options, helm: options.helm ?? {} });
  });
  return out;
}

/** The source a dependency repository URL is matched as (helmRepoURLRegex, credentials). */
function dependencySource(url: string): ChartSource {
  return url.startsWith('oci://') ? { kind: 'oci', reference: url } : { kind: 'repo', repo: url, chart: '' };
}

/**
 * The dependency archives every chart the bundle's variants render needs (unless the variant sets
 * `disableDependencyUpdate`), paths relative to the bundle.
 */
async function dependencyFiles(
  files: readonly BundleFile[],
  fy: FleetYaml,
  access: AccessResolver,
  build: DependencyBuilder,
  what: string,
): Promise<BundleFile[]> {
  const out: BundleFile[] = [];
  const done = new Set<string>();
  for (const v of variantsOf(fy)) {
    const { engine, dir } = engineOf(files, v.options);
    if (engine !== 'helm' || v.helm.disableDependencyUpdate || done.has(dir)) continue;
    done.add(dir);
    const prefix = dir ? `${dir}/` : '';
    const chartFiles = files.filter((f) => f.path.startsWith(prefix)).map((f) => ({ path: f.path.slice(prefix.length), content: f.content }));
    const deps = missingDependencies(chartFiles, `${what}: chart ${dir || '.'}`);
    if (deps.length === 0) continue;
    const byURL = new Map<string, ChartAccess>();
    for (const d of deps) byURL.set(d.repository, await access(dependencySource(d.repository)));
    const added = await build(chartFiles, deps, (url) => byURL.get(url) ?? {}, `${what}: chart ${dir || '.'}`);
    for (const f of added) out.push({ path: `${prefix}${f.path}`, content: f.content });
  }
  return out;
}

/** `helm` with the chart pointing at the fetched folder. */
function pointAt(helm: HelmOptions | undefined, chart: string): HelmOptions {
  const { repo: _repo, version: _version, ...rest } = helm ?? {};
  return { ...rest, chart };
}

/**
 * Fetches the remote charts of one bundle (see the module comment) and returns the bundle with them and
 * what was fetched; a bundle without remote charts is returned as it is.
 */
export async function withRemoteCharts(
  bundle: LoadedBundle,
  access: AccessResolver,
  fetch: ChartFetcher,
  limits: Partial<BundleLimits> = {},
  build?: DependencyBuilder,
): Promise<{ bundle: LoadedBundle; charts: ChartStatus[] }> {
  const fleetYamlName = bundle.dir === '.' ? 'fleet.yaml' : `${bundle.dir}/fleet.yaml`;
  const what = `bundle ${bundle.name} (${fleetYamlName})`;
  const variants = variantsOf(bundle.fleetYaml).filter((v) => chartSourceOf(v.helm));
  const fetched = new Map<string, { path: string; status: ChartStatus }>();
  const folders = new Set<string>();
  const added: BundleFile[] = [];
  const fy: FleetYaml = structuredClone(bundle.fleetYaml);
  for (const v of variants) {
    const source = chartSourceOf(v.helm) as ChartSource;
    const field = v.target === undefined ? 'helm' : `targetCustomizations[${v.target}].helm`;
    if (source.kind === 'repo' && !source.chart)
      throw new StallingError(Reason.InvalidBundle, `${what}: ${field}.repo needs helm.chart, the chart's name in the repository`);
    const key = JSON.stringify(source);
    let got = fetched.get(key);
    if (!got) {
      const chart = await fetch(source, await access(source), what);
      let folder = chartFolderOf(source);
      for (let n = 2; folders.has(folder); n++) folder = `${chartFolderOf(source)}-${n}`;
      folders.add(folder);
      const path = `${folder}/${chart.name}`;
      for (const f of chart.files) added.push({ path: `${path}/${f.path}`, content: f.content });
      got = { path, status: { source: describeSource(source).replace(/ \(version [^)]*\)$/, ''), version: chart.version, path } };
      fetched.set(key, got);
    }
    if (v.target === undefined) fy.helm = pointAt(fy.helm, got.path);
    else {
      const target = fy.targetCustomizations?.[v.target];
      if (target) target.helm = pointAt(target.helm, got.path);
    }
  }
  const fetchedFiles = [...bundle.files, ...added];
  const deps = build ? await dependencyFiles(fetchedFiles, fy, access, build, what) : [];
  if (added.length === 0 && deps.length === 0) return { bundle, charts: [] };
  const files = [...fetchedFiles, ...deps].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  checkLimits(files, { ...DEFAULT_BUNDLE_LIMITS, ...limits }, what);
  validateBundle(files, fy, { sourceDir: bundle.dir, fleetYamlName });
  return { bundle: { ...bundle, fleetYaml: fy, files }, charts: [...fetched.values()].map((f) => f.status) };
}

function checkLimits(files: readonly BundleFile[], limits: BundleLimits, what: string): void {
  if (files.length > limits.maxFiles)
    throw new StallingError(Reason.BundleTooLarge, `${what}: with its fetched charts it has ${files.length} files, more than the limit of ${limits.maxFiles}`);
  const total = files.reduce((n, f) => n + f.content.length, 0);
  if (total > limits.maxTotalBytes)
    throw new StallingError(Reason.BundleTooLarge, `${what}: with its fetched charts it holds ${total} bytes, more than the limit of ${limits.maxTotalBytes}`);
}

/**
 * Records the fetched charts in Bundle `namespace/name`'s `status.charts` with {@link CHARTS_STATUS_MANAGER};
 * an empty list removes what this manager recorded before.
 */
export async function applyChartsStatus(kube: Pick<KubeClient, 'applyStatus'>, namespace: string, name: string, charts: readonly ChartStatus[]): Promise<void> {
  await kube.applyStatus(
    { apiVersion: API_VERSION, kind: 'Bundle', metadata: { name, namespace }, status: charts.length > 0 ? { charts: [...charts] } : {} },
    CHARTS_STATUS_MANAGER,
  );
}

/**
 * Fetches the remote charts and chart dependencies of every bundle of a commit (all or nothing); bundles
 * that need none are kept as they are. The helmSecretName Secret is read only when a chart needs fetching.
 */
export async function withCommitCharts(
  kube: Pick<KubeClient, 'get'>,
  repo: GitRepo & KubeObject,
  bundles: readonly LoadedBundle[],
  limits: Partial<BundleLimits>,
  fetch: ChartFetcher = defaultChartFetcher(limits),
  build: DependencyBuilder = defaultDependencyBuilder(limits),
): Promise<{ bundles: LoadedBundle[]; charts: Map<string, ChartStatus[]> }> {
  const charts = new Map<string, ChartStatus[]>();
  let resolver: Promise<(source: ChartSource) => ChartAccess> | undefined;
  const access: AccessResolver = async (source) => {
    resolver ??= chartAccessOf(kube, repo);
    return (await resolver)(source);
  };
  const out: LoadedBundle[] = [];
  for (const bundle of bundles) {
    const got = await withRemoteCharts(bundle, access, fetch, limits, build);
    out.push(got.bundle);
    charts.set(bundle.name, got.charts);
  }
  return { bundles: out, charts };
}
