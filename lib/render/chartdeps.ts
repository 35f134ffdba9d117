import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve, sep } from 'node:path';
import yaml from 'js-yaml';
import { Reason } from '../api/constants.js';
import { type BundleFile, parseYamlDocuments } from '../bundle/manifest.js';
import { StallingError } from '../errors.js';
import { type ChartAccess, type FetchSettings, classifyHelmFailure, repositoryIndex, writePrivate } from './chartsource.js';
import { runBounded } from './exec.js';
import { type CachedFiles, accessParts, chartCacheKey } from './chartcache.js';
import { sha256Digest } from '../oci/digest.js';

/**
 * Chart dependencies at bundle build time (Fleet runs `helm dependency update` unless
 * `disableDependencyUpdate`): a chart whose Chart.yaml lists dependencies from an HTTP(S) or `oci://`
 * repository that its `charts/` folder does not hold gets them with the real `helm dependency build`
 * (which honours Chart.lock when there is one), and the archives join the chart's files. As for charts
 * (chartsource.ts): repository indexes are fetched here with the credentials the GitRepo allows for each URL,
 * credentials live only in 0600 files of a private folder, and every archive is read within the limits.
 */

/** A dependency of Chart.yaml that comes from a repository. */
export interface RemoteDependency {
  name: string;
  version: string;
  repository: string;
}

/** The dependencies (paths relative to the chart folder) to fetch: from a repository, and not in charts/ yet. */
export function missingDependencies(files: readonly BundleFile[], what: string): RemoteDependency[] {
  const chartYaml = files.find((f) => f.path === 'Chart.yaml');
  if (!chartYaml) return [];
  const value = parseYamlDocuments(`${what} Chart.yaml`, chartYaml.content.toString('utf8'))[0]?.value as { dependencies?: unknown } | undefined;
  const deps = Array.isArray(value?.dependencies) ? (value.dependencies as Record<string, unknown>[]) : [];
  const present = (name: string) =>
    files.some((f) => f.path.startsWith(`charts/${name}-`) && f.path.endsWith('.tgz')) || files.some((f) => f.path === `charts/${name}/Chart.yaml`);
  return deps
    .filter((d) => typeof d?.name === 'string' && typeof d.repository === 'string' && /^(https?|oci):\/\//.test(d.repository))
    .map((d) => ({ name: d.name as string, version: typeof d.version === 'string' ? d.version : '', repository: (d.repository as string).replace(/\/+$/, '') }))
    .filter((d) => !present(d.name));
}

/** Writes the chart's files into `dir` (paths checked to stay inside). */
async function writeChart(dir: string, files: readonly BundleFile[]): Promise<void> {
  for (const f of files) {
    const abs = resolve(dir, f.path);
    if (!abs.startsWith(dir + sep)) throw new StallingError(Reason.InvalidBundle, `${f.path} is a path outside the chart`);
    await mkdir(dirname(abs), { recursive: true });
    await writeFile(abs, f.content);
  }
}

/** Private repositories.yaml, cached indexes and registry config for the dependencies' repositories. */
async function prepareRepositories(
  home: string,
  deps: readonly RemoteDependency[],
  access: (url: string) => ChartAccess,
  settings: FetchSettings,
  what: string,
) {
  const env = {
    HELM_REPOSITORY_CONFIG: join(home, 'repositories.yaml'),
    HELM_REPOSITORY_CACHE: join(home, 'repository-cache'),
    HELM_REGISTRY_CONFIG: join(home, 'registry.json'),
  };
  await mkdir(env.HELM_REPOSITORY_CACHE);
  const repositories: Record<string, unknown>[] = [];
  const auths: Record<string, { auth: string }> = {};
  const secrets: string[] = [];
  const cas: string[] = [];
  let insecure = false;
  /** Per repository of HTTP(S): its URL, the hash of the index fetched and the access it was fetched with. */
  const indexes: string[] = [];
  for (const url of [...new Set(deps.map((d) => d.repository))]) {
    const a = access(url);
    if (a.password) secrets.push(a.password);
    if (a.caPem) cas.push(a.caPem);
    insecure ||= a.insecureSkipTLSVerify ?? false;
    if (url.startsWith('oci://')) {
      if (a.username !== undefined)
        auths[new URL(url.replace(/^oci:/, 'https:')).host] = { auth: Buffer.from(`${a.username}:${a.password ?? ''}`).toString('base64') };
      continue;
    }
    const name = `dependency-${repositories.length}`;
    const caFile = a.caPem ? join(home, `${name}-ca.pem`) : undefined;
    if (caFile) await writePrivate(caFile, a.caPem ?? '');
    repositories.push({
      name,
      url,
      ...(a.username !== undefined ? { username: a.username, password: a.password ?? '' } : {}),
      ...(caFile ? { caFile } : {}),
      insecure_skip_tls_verify: a.insecureSkipTLSVerify ?? false,
      pass_credentials_all: false,
    });
    const index = await repositoryIndex(url.replace(/\/+$/, ''), a, settings, `${what}: index.yaml of dependency repository ${url}`);
    await writePrivate(join(env.HELM_REPOSITORY_CACHE, `${name}-index.yaml`), index.toString('utf8'));
    indexes.push(url, sha256Digest(index), ...accessParts(a));
  }
  await writePrivate(env.HELM_REPOSITORY_CONFIG, yaml.dump({ apiVersion: '', generated: '0001-01-01T00:00:00Z', repositories }));
  await writePrivate(env.HELM_REGISTRY_CONFIG, JSON.stringify({ auths }));
  const caFile = cas.length > 0 ? join(home, 'oci-ca.pem') : undefined;
  if (caFile) await writePrivate(caFile, cas.join('\n'));
  const flags = [...(caFile ? ['--ca-file', caFile] : []), ...(insecure ? ['--insecure-skip-tls-verify'] : [])];
  return { env, secrets, flags, indexes };
}

/** The files of a chart `helm dependency build` reads besides charts/. */
const DEPENDENCY_INPUTS = new Set(['Chart.yaml', 'Chart.lock', 'requirements.yaml', 'requirements.lock']);

/**
 * Runs `helm dependency build` on a copy of the chart `files` (paths relative to the chart folder) and
 * returns the archives it added to `charts/` (paths relative to the chart folder). `access` gives the
 * credentials for a repository URL.
 */
export async function buildDependencies(
  files: readonly BundleFile[],
  deps: readonly RemoteDependency[],
  access: (url: string) => ChartAccess,
  settings: FetchSettings,
  what: string,
): Promise<BundleFile[]> {
  const home = await mkdtemp(join(tmpdir(), 'flotilla-deps-'));
  try {
    await chmod(home, 0o700);
    const { env, secrets, flags, indexes } = await prepareRepositories(home, deps, access, settings, what);
    // What helm dependency build reads (Chart.yaml, the lock, charts/) and the same indexes give the same
    // archives (chartcache.ts); templates and values do not count.
    const read = files.filter((f) => DEPENDENCY_INPUTS.has(f.path) || f.path.startsWith('charts/'));
    const key =
      settings.cache && deps.every((d) => !d.repository.startsWith('oci://'))
        ? chartCacheKey('dependencies', [...read.flatMap((f) => [f.path, sha256Digest(f.content)]), '', ...indexes])
        : undefined;
    const kept = key ? settings.cache?.get<CachedFiles>(key) : undefined;
    if (kept) return [...kept.files];
    // The chart is copied out for helm only when helm runs.
    const chart = join(home, 'chart');
    await mkdir(chart);
    await writeChart(chart, files);
    try {
      await runBounded({
        purpose: `helm dependency build (${what})`,
        file: settings.helmPath,
        args: ['dependency', 'build', chart, '--skip-refresh', ...flags],
        env,
        timeoutMs: settings.timeoutMs,
        maxOutputBytes: 1024 * 1024,
        secrets,
      });
    } catch (err) {
      throw classifyHelmFailure(err, `${what}: dependencies ${deps.map((d) => `${d.name} ${d.version} from ${d.repository}`).join(', ')}`);
    }
    const known = new Set(files.map((f) => f.path));
    const added: BundleFile[] = [];
    for (const name of (await readdir(join(chart, 'charts')).catch(() => [] as string[])).sort()) {
      const path = `charts/${name}`;
      if (known.has(path) || !name.endsWith('.tgz')) continue;
      const size = (await stat(join(chart, path))).size;
      if (size > settings.limits.maxFileBytes)
        throw new StallingError(
          Reason.BundleTooLarge,
          `${what}: dependency ${path} is ${size} bytes, more than the limit of ${settings.limits.maxFileBytes} bytes per file`,
        );
      added.push({ path, content: await readFile(join(chart, path)) });
    }
    if (key) settings.cache?.set(key, { files: added });
    return added;
  } finally {
    await rm(home, { recursive: true, force: true });
  }
}
