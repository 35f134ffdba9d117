import { API_VERSION, Reason, type GitRepo } from '../lib/api/index.js';
import type { BundleLimits, LoadedBundle } from '../lib/bundle/index.js';
import { StallingError } from '../lib/errors.js';
import type { KubeClient, KubeObject } from '../lib/kube/client.js';
import { ChartScope, type ChartAccess, type ChartSource } from '../lib/render/chartsource.js';
import {
  type AccessResolver,
  type ChartFetcher,
  type ChartStatus,
  type DependencyBuilder,
  chartAccessFromPathsSecret,
  chartAccessFromSecret,
  defaultChartFetcher,
  defaultDependencyBuilder,
  withRemoteCharts,
} from '../lib/render/remotecharts.js';
import { canonicalJSON } from '../lib/util/json.js';
import type { ChartCache } from '../lib/render/chartcache.js';
import { readSecretData } from './store.js';

export { withRemoteCharts, defaultChartFetcher, defaultDependencyBuilder };
export type { AccessResolver, ChartFetcher, ChartStatus, DependencyBuilder };

/**
 * Remote charts at bundle build time: the controller's side of lib/render/remotecharts.ts (which fetches
 * them into the bundle, `.chart/<key>/<chart name>/`, the same code `flotilla render` runs). This module
 * reads the GitRepo's credentials and records what was fetched on the Bundle.
 *
 * Credentials, as in Fleet: the GitRepo's `helmSecretName` (keys `username`, `password`, `cacerts`), or, when
 * `helmSecretNameForPaths` is set (helmSecretName is then ignored), that Secret's `secrets-path.yaml` with
 * credentials per bundle folder; username and password go only to sources whose URL matches
 * `helmRepoURLRegex` (all when unset); `insecureSkipTLSVerify` applies to chart repositories too, and
 * fleet.yaml `helm.insecureSkipTLSVerify` per bundle. What was fetched is recorded in the Bundle's
 * `status.charts` (source without credentials, resolved version, folder) by its own field manager.
 */

/** The field manager of Bundle `status.charts`. */
export const CHARTS_STATUS_MANAGER = 'flotilla-gitrepo-charts';

/** The credentials of a GitRepo for chart sources of a bundle folder (see the module comment). */
export async function chartAccessOf(
  kube: Pick<KubeClient, 'get'>,
  repo: GitRepo & KubeObject,
): Promise<(source: ChartSource, bundleDir: string) => ChartAccess> {
  const ns = repo.metadata.namespace ?? 'default';
  const insecureSkipTLSVerify = repo.spec.insecureSkipTLSVerify ?? false;
  let urlPattern: RegExp | undefined;
  try {
    urlPattern = repo.spec.helmRepoURLRegex ? new RegExp(repo.spec.helmRepoURLRegex) : undefined;
  } catch (err) {
    throw new StallingError(
      Reason.InvalidSpec,
      `GitRepo ${ns}/${repo.metadata.name}: spec.helmRepoURLRegex is not a regular expression: ${(err as Error).message}`,
    );
  }
  if (repo.spec.helmSecretNameForPaths) {
    const { data } = await readSecretData(kube, ns, repo.spec.helmSecretNameForPaths, 'helmSecretNameForPaths');
    const what = `GitRepo ${ns}/${repo.metadata.name}: Secret ${ns}/${repo.spec.helmSecretNameForPaths} (helmSecretNameForPaths)`;
    return chartAccessFromPathsSecret(data, { urlPattern, insecureSkipTLSVerify }, what);
  }
  if (!repo.spec.helmSecretName) return chartAccessFromSecret(undefined, { insecureSkipTLSVerify });
  const { data } = await readSecretData(kube, ns, repo.spec.helmSecretName, 'helmSecretName');
  return chartAccessFromSecret(data, { urlPattern, insecureSkipTLSVerify });
}

/** The chart fetcher and dependency builder of the controller: helm within `limits`, charts kept in `cache` between commits (none: pulled at every commit). */
export function chartsWithCache(limits: Partial<BundleLimits>, cache: ChartCache | undefined): { fetch: ChartFetcher; build: DependencyBuilder } {
  return { fetch: defaultChartFetcher(limits, cache), build: defaultDependencyBuilder(limits, cache) };
}

/** Whether Bundle status `charts` (undefined: none recorded) already says `fetched`. */
export function sameCharts(charts: readonly ChartStatus[] | undefined, fetched: readonly ChartStatus[]): boolean {
  return canonicalJSON(charts ?? []) === canonicalJSON(fetched);
}

/**
 * Records the fetched charts in Bundle `namespace/name`'s `status.charts` with {@link CHARTS_STATUS_MANAGER};
 * an empty list removes what this manager recorded before. Returns the Bundle as written.
 */
export async function applyChartsStatus<T extends KubeObject>(
  kube: Pick<KubeClient, 'applyStatus'>,
  namespace: string,
  name: string,
  charts: readonly ChartStatus[],
): Promise<T> {
  return await kube.applyStatus<T>(
    { apiVersion: API_VERSION, kind: 'Bundle', metadata: { name, namespace }, status: charts.length > 0 ? { charts: [...charts] } : {} },
    CHARTS_STATUS_MANAGER,
  );
}

/**
 * Fetches the remote charts and chart dependencies of every bundle of a commit (all or nothing); bundles
 * that need none are kept as they are. The credentials Secret is read only when a chart needs fetching.
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
  let resolver: ReturnType<typeof chartAccessOf> | undefined;
  const access: AccessResolver = async (source, bundleDir) => {
    resolver ??= chartAccessOf(kube, repo);
    return (await resolver)(source, bundleDir);
  };
  const out: LoadedBundle[] = [];
  // One download of each repository's index for the whole commit, however many bundles name it, and one
  // client per OCI registry for the tag checks of its oci:// charts.
  const scope = new ChartScope();
  try {
    for (const bundle of bundles) {
      const got = await withRemoteCharts(bundle, access, fetch, limits, build, scope);
      out.push(got.bundle);
      charts.set(bundle.name, got.charts);
    }
  } finally {
    await scope.close();
  }
  return { bundles: out, charts };
}
