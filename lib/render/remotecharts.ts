import yaml from 'js-yaml';
import { Reason } from '../api/constants.js';
import type { BundleStatus } from '../api/index.js';
import type { FleetYaml } from '../api/fleetyaml.js';
import type { HelmOptions } from '../api/helm.js';
import type { BundleDeploymentOptions } from '../api/options.js';
import { DEFAULT_BUNDLE_LIMITS, type BundleLimits, type LoadedBundle } from '../bundle/read.js';
import type { BundleFile } from '../bundle/manifest.js';
import { mergeOptions } from '../bundle/target.js';
import { fleetYamlOptions, validateBundle } from '../bundle/validate.js';
import { StallingError } from '../errors.js';
import {
  type ChartAccess,
  type ChartScope,
  type ChartSource,
  type FetchedChart,
  chartFolderOf,
  chartSourceOf,
  describeSource,
  fetchChart,
  sourceURL,
} from './chartsource.js';
import { buildDependencies, missingDependencies, type RemoteDependency } from './chartdeps.js';
import type { ChartCache } from './chartcache.js';
import { DEFAULT_RENDER_LIMITS, engineOf, renderToolsFromEnv } from './index.js';

/**
 * Remote charts put into a bundle (shared by the controller, which does it at bundle build time, and
 * `flotilla render`, which does it before rendering, so both render the same chart): every variant of a
 * bundle (its fleet.yaml `helm`, and each target customization merged over it) that names a remote chart
 * gets it fetched, once per source and version; the chart's files join the bundle's under
 * `.chart/<key>/<chart name>/`, and the variant's `helm.chart` is rewritten to that folder (`repo` and
 * `version` dropped), so agents render it as an in-repository chart, with no network. Then every chart a
 * variant renders whose Chart.yaml lists dependencies from HTTP(S) or `oci://` repositories missing from its
 * `charts/` gets them (lib/render/chartdeps.ts), unless the variant sets `disableDependencyUpdate`. The
 * bundle is then validated again with its new files and the bundle limits counted over all of them.
 *
 * Credentials come from an {@link AccessResolver}: {@link chartAccessFromSecret} for a helmSecretName
 * Secret, {@link chartAccessFromPathsSecret} for Fleet's helmSecretNameForPaths. fleet.yaml
 * `helm.insecureSkipTLSVerify` (per variant, as in Fleet) turns TLS verification off for that variant's
 * chart and dependencies on top of what the resolver says.
 */

/** One chart recorded on a Bundle. */
export type ChartStatus = NonNullable<BundleStatus['charts']>[number];

/** Fetches charts (injectable for tests). */
export type ChartFetcher = (source: ChartSource, access: ChartAccess, what: string, scope?: ChartScope) => Promise<FetchedChart>;

/** Fetches a chart's dependencies: the archives to add, paths relative to the chart folder (injectable for tests). */
export type DependencyBuilder = (
  chartFiles: readonly BundleFile[],
  deps: readonly RemoteDependency[],
  access: (url: string) => ChartAccess,
  what: string,
  scope?: ChartScope,
) => Promise<BundleFile[]>;

/** Credentials for a source of the bundle in folder `bundleDir` (repository-relative), read when first needed. */
export type AccessResolver = (source: ChartSource, bundleDir: string) => ChartAccess | Promise<ChartAccess>;

/** A helmSecretName-style Secret's data (decoded): `username`, `password`, `cacerts`. */
export type HelmSecretData = Record<string, string | undefined>;

/**
 * The access a helmSecretName Secret gives `source`: its `cacerts` always, its username and password only
 * when the source's URL matches `urlPattern` (helmRepoURLRegex; all when unset), as in Fleet.
 */
export function chartAccessFromSecret(
  data: HelmSecretData | undefined,
  settings: { urlPattern?: RegExp | undefined; insecureSkipTLSVerify?: boolean | undefined },
): (source: ChartSource) => ChartAccess {
  const insecureSkipTLSVerify = settings.insecureSkipTLSVerify ?? false;
  return (source) => {
    if (!data) return { insecureSkipTLSVerify };
    const send = !settings.urlPattern || settings.urlPattern.test(sourceURL(source));
    return {
      insecureSkipTLSVerify,
      ...(data.cacerts ? { caPem: data.cacerts } : {}),
      ...(send && data.username !== undefined ? { username: data.username, password: data.password ?? '' } : {}),
    };
  };
}

/** The key of a helmSecretNameForPaths Secret that holds the per-path credentials (Fleet's name). */
export const SECRETS_PATH_KEY = 'secrets-path.yaml';

/** One entry of Fleet's `secrets-path.yaml`. */
interface PathCredential {
  username?: string;
  password?: string;
  caPem?: string;
  insecureSkipVerify?: boolean;
}

function pathCredential(value: unknown, where: string): PathCredential {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error(`${where}: expected a mapping`);
  const out: PathCredential = {};
  for (const [key, v] of Object.entries(value)) {
    if (key === 'username' || key === 'password') {
      if (typeof v !== 'string') throw new Error(`${where}.${key}: expected a string`);
      out[key] = v;
    } else if (key === 'caBundle') {
      if (typeof v !== 'string') throw new Error(`${where}.caBundle: expected base64 PEM`);
      out.caPem = Buffer.from(v, 'base64').toString('utf8');
    } else if (key === 'insecureSkipVerify') {
      if (typeof v !== 'boolean') throw new Error(`${where}.insecureSkipVerify: expected true or false`);
      out.insecureSkipVerify = v;
    } else if (key === 'sshPrivateKey') {
      throw new Error(`${where}.sshPrivateKey: Flotilla fetches charts over HTTPS and OCI only; remove it`);
    } else throw new Error(`${where}.${key}: unknown field (username, password, caBundle, insecureSkipVerify)`);
  }
  return out;
}

/**
 * The access a helmSecretNameForPaths Secret gives: its `secrets-path.yaml` maps a bundle folder (the full
 * repository path of a folder holding a fleet.yaml) to `username`, `password`, `caBundle` (base64 PEM) and
 * `insecureSkipVerify`, as in Fleet; a bundle not listed gets no credentials. The username and password go
 * only to URLs matching `urlPattern` (helmRepoURLRegex). `what` names the Secret in errors (never its values).
 */
export function chartAccessFromPathsSecret(
  data: HelmSecretData,
  settings: { urlPattern?: RegExp | undefined; insecureSkipTLSVerify?: boolean | undefined },
  what: string,
): (source: ChartSource, bundleDir: string) => ChartAccess {
  const text = data[SECRETS_PATH_KEY];
  if (text === undefined) {
    throw new StallingError(
      Reason.InvalidSpec,
      `${what}: has no key ${SECRETS_PATH_KEY}; create it with kubectl create secret generic --from-file=${SECRETS_PATH_KEY}`,
    );
  }
  const byPath = new Map<string, PathCredential>();
  try {
    const doc = yaml.load(text, { schema: yaml.CORE_SCHEMA }) ?? {};
    if (typeof doc !== 'object' || Array.isArray(doc)) throw new Error('expected a mapping of bundle paths');
    for (const [path, value] of Object.entries(doc)) byPath.set(path.replace(/^\.\/|\/+$/g, ''), pathCredential(value, path));
  } catch (err) {
    throw new StallingError(Reason.InvalidSpec, `${what}: ${SECRETS_PATH_KEY}: ${(err as Error).message}`);
  }
  return (source, bundleDir) => {
    const entry = byPath.get(bundleDir.replace(/^\.\/|\/+$/g, '') || '.');
    const access = chartAccessFromSecret(entry && { username: entry.username, password: entry.password, cacerts: entry.caPem }, {
      urlPattern: settings.urlPattern,
      insecureSkipTLSVerify: (settings.insecureSkipTLSVerify ?? false) || (entry?.insecureSkipVerify ?? false),
    });
    return access(source);
  };
}

/** Fetch settings from the environment's helm, the render time limit and the bundle limits. */
function fetchSettings(limits: Partial<BundleLimits>) {
  return { helmPath: renderToolsFromEnv().helm, timeoutMs: DEFAULT_RENDER_LIMITS.timeoutMs, limits: { ...DEFAULT_BUNDLE_LIMITS, ...limits } };
}

/** The default fetcher: the real helm (FLOTILLA_HELM or PATH) within the bundle limits; with `cache`, charts of Helm repositories are kept between fetches (chartcache.ts). */
export function defaultChartFetcher(limits: Partial<BundleLimits>, cache?: ChartCache): ChartFetcher {
  const settings = { ...fetchSettings(limits), cache };
  return (source, access, what, scope) => fetchChart(source, access, { ...settings, scope }, what);
}

/** The default dependency builder: `helm dependency build` (lib/render/chartdeps.ts) within the bundle limits; with `cache`, as for {@link defaultChartFetcher}. */
export function defaultDependencyBuilder(limits: Partial<BundleLimits>, cache?: ChartCache): DependencyBuilder {
  const settings = { ...fetchSettings(limits), cache };
  return (files, deps, access, what, scope) => buildDependencies(files, deps, access, { ...settings, scope }, what);
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

/** The resolver with the variant's fleet.yaml `helm.insecureSkipTLSVerify` on top. */
function forVariant(access: AccessResolver, helm: HelmOptions, bundleDir: string): (source: ChartSource) => Promise<ChartAccess> {
  return async (source) => {
    const got = await access(source, bundleDir);
    return helm.insecureSkipTLSVerify ? { ...got, insecureSkipTLSVerify: true } : got;
  };
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
  bundleDir: string,
  build: DependencyBuilder,
  what: string,
  scope: ChartScope | undefined,
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
    const variantAccess = forVariant(access, v.helm, bundleDir);
    for (const d of deps) byURL.set(d.repository, await variantAccess(dependencySource(d.repository)));
    const added = await build(chartFiles, deps, (url) => byURL.get(url) ?? {}, `${what}: chart ${dir || '.'}`, scope);
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
  scope?: ChartScope,
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
      const chart = await fetch(source, await forVariant(access, v.helm, bundle.dir)(source), what, scope);
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
  const deps = build ? await dependencyFiles(fetchedFiles, fy, access, bundle.dir, build, what, scope) : [];
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
