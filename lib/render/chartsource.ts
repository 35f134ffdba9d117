import { createHash } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import yaml from 'js-yaml';
import { Agent, request } from '../util/undici.js';
import { Reason } from '../api/constants.js';
import { CHART_FOLDER, type HelmOptions, isRemoteChart } from '../api/helm.js';
import { parseYamlDocuments } from '../bundle/manifest.js';
import { type FlotillaError, StallingError, TransientError } from '../errors.js';
import { CommandError, redact, runBounded } from './exec.js';
import { type ArchiveLimits, type ChartArchive, readChartArchive } from './untar.js';
import { type CachedFiles, type ChartCache, accessParts, chartCacheKey } from './chartcache.js';
import { sha256Digest } from '../oci/digest.js';
import { RegistryClient } from '../oci/client.js';

/**
 * Remote Helm charts, fetched by the controller when it builds a bundle (never by agents):
 * - `repo` + `chart` (+ `version`, exact or a semver constraint): an HTTP(S) Helm repository; the real helm
 *   resolves the version against the repository's index.yaml (fetched here, then `helm pull`);
 * - `chart: oci://...` (+ `version`): a chart in an OCI registry, pulled with `helm pull`, which resolves
 *   constraints against the registry's tags;
 * - `chart: https://.../x.tgz`: one archive, downloaded here with undici (one GET, size-limited).
 * helm is used where there is a resolution to make (index.yaml semantics, semver constraints as Helm reads
 * them, OCI chart manifests), so a version resolves to what `helm pull` gives a Fleet user.
 *
 * Credentials never reach an argument list, a log or an error: they are written to a private folder (mode
 * 0700, files 0600) as helm's own repositories.yaml and registry config, named through helm's environment
 * variables, and removed afterwards; every message quoted from helm is redacted. The archive helm pulled
 * is read in memory within the bundle limits (untar.ts); helm never unpacks anything.
 */

/** Where a remote chart comes from. */
export type ChartSource =
  | { kind: 'repo'; repo: string; chart: string; version?: string | undefined }
  | { kind: 'oci'; reference: string; version?: string | undefined }
  | { kind: 'url'; url: string };

/** Credentials and TLS settings for one source (from the GitRepo's helmSecretName and insecureSkipTLSVerify). */
export interface ChartAccess {
  username?: string | undefined;
  password?: string | undefined;
  /** PEM CA bundle trusted for the repository (helmSecretName `cacerts`). */
  caPem?: string | undefined;
  insecureSkipTLSVerify?: boolean | undefined;
}

/** Programs and limits of a fetch. */
export interface FetchSettings {
  helmPath: string;
  timeoutMs: number;
  limits: ArchiveLimits;
  /** Charts of Helm repositories pulled before, used again while the index is unchanged (lib/render/chartcache.ts). */
  cache?: ChartCache | undefined;
  /** The fetches of one commit (see {@link ChartScope}); none: every index is downloaded where it is needed. */
  scope?: ChartScope | undefined;
}

/**
 * What the chart fetches of one commit share: each Helm repository's index.yaml is downloaded once per
 * commit (and credentials), however many of its bundles and dependencies name the repository, so every
 * bundle of the commit resolves its version against the same index. Made per commit, never kept longer:
 * the next commit reads the index again (a constraint may resolve to a release published since). The
 * `oci://` charts of a commit share one registry client per registry and credentials (its connections and
 * tokens), closed with {@link close} when the commit's charts are fetched.
 */
export class ChartScope {
  private readonly indexes = new Map<string, Promise<Buffer>>();
  private readonly clients = new Map<string, RegistryClient>();

  /** The index of repository `repo` read with `access`: downloaded (`get`) by the first asker, shared with the rest. */
  async index(repo: string, access: ChartAccess, get: () => Promise<Buffer>): Promise<Buffer> {
    const key = chartCacheKey('index', [repo, ...accessParts(access)]);
    let pending = this.indexes.get(key);
    if (!pending) {
      pending = get();
      this.indexes.set(key, pending);
      // A failed download is not shared: the next asker tries again, and its error names its own bundle.
      pending.catch(() => this.indexes.delete(key));
    }
    return await pending;
  }

  /** The registry client for `registry` with `access`: made (`make`) by the first asker, shared with the rest until {@link close}. */
  registryClient(registry: string, access: ChartAccess, make: () => RegistryClient): RegistryClient {
    const key = chartCacheKey('registry', [registry, ...accessParts(access)]);
    let client = this.clients.get(key);
    if (!client) {
      client = make();
      this.clients.set(key, client);
    }
    return client;
  }

  /** Closes the registry clients of the commit. */
  async close(): Promise<void> {
    const clients = [...this.clients.values()];
    this.clients.clear();
    await Promise.all(clients.map((c) => c.close()));
  }
}

/** The index.yaml of Helm repository `repo` (no trailing slash): through `settings.scope` when there is one. */
export async function repositoryIndex(repo: string, access: ChartAccess, settings: FetchSettings, what: string): Promise<Buffer> {
  const get = () => download(`${repo}/index.yaml`, access, settings, what, 'repository');
  return settings.scope ? await settings.scope.index(repo, access, get) : await get();
}

/** A fetched chart. */
export interface FetchedChart {
  /** The chart's name (Chart.yaml). */
  name: string;
  /** The version fetched (Chart.yaml), i.e. a constraint resolved. */
  version: string;
  /** The chart's files, paths relative to the chart folder. */
  files: ChartArchive['files'];
}

/** The remote source named by `helm` options, or undefined for a chart of the bundle. */
export function chartSourceOf(helm: HelmOptions | undefined): ChartSource | undefined {
  if (!helm || !isRemoteChart(helm)) return undefined;
  const chart = helm.chart ?? '';
  if (helm.repo) return { kind: 'repo', repo: helm.repo.replace(/\/+$/, ''), chart, version: helm.version };
  if (/^oci:\/\//i.test(chart)) return { kind: 'oci', reference: chart, version: helm.version };
  return { kind: 'url', url: chart };
}

/** The URL credentials are matched against (helmRepoURLRegex) and that errors name. */
export function sourceURL(source: ChartSource): string {
  return source.kind === 'repo' ? source.repo : source.kind === 'oci' ? source.reference : source.url;
}

/** A one-line description without credentials, e.g. `chart web from https://charts.example/stable (version ^1.2)`. */
export function describeSource(source: ChartSource): string {
  const url = redact(sourceURL(source));
  if (source.kind === 'repo') return `chart ${source.chart} from ${url}${source.version ? ` (version ${source.version})` : ''}`;
  if (source.kind === 'oci') return `chart ${url}${source.version ? ` (version ${source.version})` : ''}`;
  return `chart ${url}`;
}

/**
 * The bundle folder a source is stored under: `.chart/<12 hex digits of the source without its version>`,
 * so a new version of the same chart keeps its paths (and unchanged files keep their layers).
 */
export function chartFolderOf(source: ChartSource): string {
  const key = source.kind === 'repo' ? `repo ${source.repo} ${source.chart}` : source.kind === 'oci' ? `oci ${source.reference}` : `url ${source.url}`;
  return `${CHART_FOLDER}/${createHash('sha256').update(key).digest('hex').slice(0, 12)}`;
}

/** True if `url` carries credentials (user:password@), which Flotilla refuses to store. */
function hasUserInfo(url: string): boolean {
  return /^[a-z][a-z0-9+.-]*:\/\/[^/@\s]*@/i.test(url);
}

/** Fetches a remote chart (see the module comment). `what` names the bundle and file in errors. */
export async function fetchChart(source: ChartSource, access: ChartAccess, settings: FetchSettings, what: string): Promise<FetchedChart> {
  const shown = describeSource(source);
  if (hasUserInfo(sourceURL(source))) {
    throw new StallingError(
      Reason.InvalidBundle,
      `${what}: ${shown}: the URL holds credentials; remove them and name a Secret in the GitRepo's helmSecretName`,
    );
  }
  const secrets = [access.password ?? ''].filter((s) => s.length > 0);
  // A repository's index is read at every fetch: a constraint may resolve to a release published since.
  const index =
    source.kind === 'repo' ? await repositoryIndex(source.repo, access, settings, `${what}: ${shown}: index.yaml of ${redact(source.repo)}`) : undefined;
  // An oci:// chart at an exact version is the manifest its tag names now.
  const manifest = source.kind === 'oci' && settings.cache ? await ociChartDigest(source, access, settings) : undefined;
  const key =
    index && settings.cache && source.kind === 'repo'
      ? chartCacheKey('chart', [source.repo, source.chart, source.version ?? '', sha256Digest(index), ...accessParts(access)])
      : manifest && source.kind === 'oci'
        ? chartCacheKey('chart', [source.reference, source.version ?? '', manifest, ...accessParts(access)])
        : undefined;
  const kept = key ? settings.cache?.get<FetchedChart>(key) : undefined;
  if (kept) return kept;
  const home = await mkdtemp(join(tmpdir(), 'flotilla-chart-'));
  try {
    await chmod(home, 0o700);
    const tgz =
      source.kind === 'url'
        ? await download(source.url, access, settings, `${what}: ${shown}`)
        : await helmPull(source, index, access, settings, home, secrets, `${what}: ${shown}`);
    const archive = readChartArchive(tgz, settings.limits, `${what}: ${shown}`);
    const meta = chartMeta(archive, `${what}: ${shown}`);
    const fetched = { ...meta, files: archive.files };
    // An OCI tag can move while helm pulls: the chart is kept only when the tag still names the manifest checked before.
    const settled = source.kind !== 'oci' || (manifest !== undefined && (await ociChartDigest(source, access, settings)) === manifest);
    if (key && settled) settings.cache?.set(key, fetched);
    return fetched;
  } finally {
    await rm(home, { recursive: true, force: true });
  }
}

/** A chart version that is no range: helm pulls the OCI tag of that name (`+` written `_`). */
const EXACT_VERSION = /^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$/;

/**
 * The digest of the manifest an `oci://` chart's exact version tag names now (one HEAD), or undefined: a
 * range (helm resolves it against the tags), or no answer from the registry (`helm pull` then says why).
 */
async function ociChartDigest(
  source: { reference: string; version?: string | undefined },
  access: ChartAccess,
  settings: FetchSettings,
): Promise<string | undefined> {
  if (!source.version || !EXACT_VERSION.test(source.version)) return undefined;
  const path = source.reference.replace(/^oci:\/\//i, '');
  const slash = path.indexOf('/');
  if (slash <= 0) return undefined;
  const registry = path.slice(0, slash);
  const make = () =>
    new RegistryClient({
      registry,
      ...(access.caPem ? { caPem: access.caPem } : {}),
      insecureSkipTLS: access.insecureSkipTLSVerify ?? false,
      ...(access.username !== undefined ? { credentials: { username: access.username, password: access.password ?? '' } } : {}),
      retry: { retries: 0 },
      timeouts: { connectMs: settings.timeoutMs, headersMs: settings.timeoutMs, bodyMs: settings.timeoutMs },
      userAgent: 'flotilla-chart-check',
    });
  // Within a commit, one client per registry and credentials (settings.scope); alone, a client for this check.
  const client = settings.scope ? settings.scope.registryClient(registry, access, make) : make();
  try {
    return await client.resolve(path.slice(slash + 1), source.version.replace(/\+/g, '_'));
  } catch {
    return undefined;
  } finally {
    if (!settings.scope) await client.close();
  }
}

/** Name and version from the archive's Chart.yaml, which must match its folder. */
function chartMeta(archive: ChartArchive, what: string): { name: string; version: string } {
  const file = archive.files.find((f) => f.path === 'Chart.yaml');
  const value = file
    ? (parseYamlDocuments(`${archive.top}/Chart.yaml`, file.content.toString('utf8'))[0]?.value as Record<string, unknown> | undefined)
    : undefined;
  const name = value?.name;
  const version = value?.version;
  if (typeof name !== 'string' || typeof version !== 'string' || name !== archive.top) {
    throw new StallingError(Reason.InvalidBundle, `${what}: ${archive.top}/Chart.yaml must name the chart ${archive.top} and give its version`);
  }
  return { name, version };
}

/** Writes a file only its owner can read (credentials, CA bundles, helm's configuration). */
export async function writePrivate(path: string, content: string): Promise<void> {
  await writeFile(path, content, { mode: 0o600 });
}

/** Runs `helm pull` against the fetched `index` (repo) or `helm pull oci://` and returns the archive's bytes. */
async function helmPull(
  source: Exclude<ChartSource, { kind: 'url' }>,
  index: Buffer | undefined,
  access: ChartAccess,
  settings: FetchSettings,
  home: string,
  secrets: string[],
  what: string,
): Promise<Buffer> {
  const out = join(home, 'out');
  await mkdir(out);
  const env: Record<string, string> = {
    HELM_REPOSITORY_CONFIG: join(home, 'repositories.yaml'),
    HELM_REPOSITORY_CACHE: join(home, 'repository-cache'),
    HELM_REGISTRY_CONFIG: join(home, 'registry.json'),
  };
  const caFile = access.caPem ? join(home, 'ca.pem') : undefined;
  if (caFile) await writePrivate(caFile, access.caPem ?? '');
  const tls = [...(caFile ? ['--ca-file', caFile] : []), ...(access.insecureSkipTLSVerify ? ['--insecure-skip-tls-verify'] : [])];
  const run = async (purpose: string, args: string[]) => {
    try {
      await runBounded({ purpose, file: settings.helmPath, args, env, timeoutMs: settings.timeoutMs, maxOutputBytes: 1024 * 1024, secrets });
    } catch (err) {
      throw classifyHelmFailure(err, what);
    }
  };
  if (source.kind === 'repo') {
    const entry = {
      name: 'source',
      url: source.repo,
      ...(access.username !== undefined ? { username: access.username, password: access.password ?? '' } : {}),
      ...(caFile ? { caFile } : {}),
      insecure_skip_tls_verify: access.insecureSkipTLSVerify ?? false,
      pass_credentials_all: false,
    };
    await writePrivate(env.HELM_REPOSITORY_CONFIG as string, yaml.dump({ apiVersion: '', generated: '0001-01-01T00:00:00Z', repositories: [entry] }));
    // The index is fetched by fetchChart rather than by `helm repo update`, which reports why it failed only on
    // standard output and without a status code; helm then resolves the version against it as `helm pull` always does.
    await mkdir(env.HELM_REPOSITORY_CACHE as string);
    await writePrivate(join(env.HELM_REPOSITORY_CACHE as string, 'source-index.yaml'), (index ?? Buffer.alloc(0)).toString('utf8'));
    await run(`helm pull (${what})`, [
      'pull',
      `source/${source.chart}`,
      ...(source.version ? ['--version', source.version] : []),
      ...tls,
      '--destination',
      out,
    ]);
  } else {
    const host = new URL(source.reference.replace(/^oci:/i, 'https:')).host;
    const auths = access.username !== undefined ? { [host]: { auth: Buffer.from(`${access.username}:${access.password ?? ''}`).toString('base64') } } : {};
    await writePrivate(env.HELM_REGISTRY_CONFIG as string, JSON.stringify({ auths }));
    await run(`helm pull (${what})`, ['pull', source.reference, ...(source.version ? ['--version', source.version] : []), ...tls, '--destination', out]);
  }
  const names = (await readdir(out)).filter((n) => n.endsWith('.tgz'));
  if (names.length !== 1) throw new StallingError(Reason.ChartNotFound, `${what}: helm pull wrote ${names.length} archives instead of one`);
  return await readFile(join(out, names[0] as string));
}

/** What to do when a chart repository refuses the credentials (both of Fleet's ways of giving them). */
const CREDENTIALS_HINT = "check the Secret named in the GitRepo's helmSecretName, or this bundle's entry in its helmSecretNameForPaths Secret";
/** What to do when a chart repository's certificate is not trusted. */
const CA_HINT =
  "put its CA in the helmSecretName Secret's cacerts (or in caBundle of this bundle's helmSecretNameForPaths entry), or set fleet.yaml helm.insecureSkipTLSVerify";

/** Translates a failed helm run into an error that says what to do (helm's message, redacted, is kept). */
export function classifyHelmFailure(err: unknown, what: string): FlotillaError | unknown {
  if (!(err instanceof CommandError) || err.failure !== 'exit') return err;
  const text = err.stderr;
  const quoted = `${what}: ${text
    .split('\n')
    .slice(-3)
    .join(' ')
    .replace(/\s*\(try 'helm repo update'\)/g, '')
    .slice(0, 600)}`;
  if (/\b401\b|\b403\b|unauthorized|forbidden|authentication required|denied/i.test(text)) {
    return new StallingError(Reason.AuthenticationFailed, `${quoted}; the chart repository refused the credentials: ${CREDENTIALS_HINT}`);
  }
  if (/x509|certificate|tls:/i.test(text)) {
    return new StallingError(Reason.ChartRepositoryTLSFailed, `${quoted}; the repository's certificate is not trusted: ${CA_HINT}`);
  }
  if (/not found|no chart version|no such chart|manifest unknown|invalid_reference|no matching/i.test(text)) {
    return new StallingError(Reason.ChartNotFound, `${quoted}; fix helm.chart or helm.version in fleet.yaml`);
  }
  return new TransientError(Reason.ChartRepositoryUnreachable, `${quoted}; the chart repository could not be reached: retried at the next poll`);
}

/** A download kept in the chart cache for a conditional GET: its bytes (one file) and the server's validators. */
interface KeptDownload extends CachedFiles {
  etag?: string;
  lastModified?: string;
}

/** One value of a response header (undici gives an array for a repeated one). */
function headerValue(value: string | string[] | undefined): string | undefined {
  const one = Array.isArray(value) ? value[0] : value;
  return one && one.length <= 1024 ? one : undefined;
}

/**
 * Downloads a chart archive or a repository index over HTTP(S) with the given access, within the limits.
 * With a chart cache, a download the server gave an `ETag` or `Last-Modified` is kept with them, and asked
 * for again conditionally: `304 Not Modified` returns the kept bytes (see {@link ChartCache}).
 */
export async function download(
  url: string,
  access: ChartAccess,
  settings: FetchSettings,
  what: string,
  field: 'chart' | 'repository' = 'chart',
): Promise<Buffer> {
  const agent = new Agent({
    connect: { ...(access.caPem ? { ca: access.caPem } : {}), rejectUnauthorized: !access.insecureSkipTLSVerify },
    headersTimeout: settings.timeoutMs,
    bodyTimeout: settings.timeoutMs,
  });
  const headers: Record<string, string> =
    access.username !== undefined ? { authorization: `Basic ${Buffer.from(`${access.username}:${access.password ?? ''}`).toString('base64')}` } : {};
  const key = settings.cache ? chartCacheKey('download', [url, ...accessParts(access)]) : undefined;
  const kept = key ? settings.cache?.peek<KeptDownload>(key) : undefined;
  const keptBytes = kept?.files[0]?.content;
  if (keptBytes && kept?.etag) headers['if-none-match'] = kept.etag;
  if (keptBytes && kept?.lastModified) headers['if-modified-since'] = kept.lastModified;
  try {
    const res = await request(url, { dispatcher: agent, headers, signal: AbortSignal.timeout(settings.timeoutMs) }).catch((err: unknown) => {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      const code = cause?.code ?? (err as NodeJS.ErrnoException).code ?? '';
      if (/CERT|VERIFY|ISSUER|SELF_SIGNED|TLS|SSL/i.test(code)) {
        throw new StallingError(Reason.ChartRepositoryTLSFailed, `${what}: the server's certificate is not trusted (${code}); ${CA_HINT}`);
      }
      throw new TransientError(Reason.ChartRepositoryUnreachable, `${what}: cannot be reached (${code || (err as Error).message}); retried at the next poll`);
    });
    if (res.statusCode === 401 || res.statusCode === 403) {
      await res.body.dump();
      throw new StallingError(Reason.AuthenticationFailed, `${what}: refused with ${res.statusCode}: ${CREDENTIALS_HINT}`);
    }
    if (res.statusCode === 404) {
      await res.body.dump();
      throw new StallingError(Reason.ChartNotFound, `${what}: not found (404); fix helm.${field === 'chart' ? 'chart' : 'repo'} in fleet.yaml`);
    }
    if (res.statusCode === 304 && keptBytes) {
      await res.body.dump();
      return keptBytes;
    }
    if (res.statusCode !== 200) {
      await res.body.dump();
      throw new TransientError(Reason.ChartRepositoryUnreachable, `${what}: answered ${res.statusCode}; retried at the next poll`);
    }
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of res.body) {
      size += (chunk as Buffer).length;
      if (size > settings.limits.maxFileBytes) {
        res.body.destroy();
        throw new StallingError(Reason.BundleTooLarge, `${what}: larger than ${settings.limits.maxFileBytes} bytes, the limit per file`);
      }
      chunks.push(chunk as Buffer);
    }
    const body = Buffer.concat(chunks);
    const etag = headerValue(res.headers.etag);
    const lastModified = headerValue(res.headers['last-modified']);
    if (key && (etag || lastModified)) {
      const entry: KeptDownload = { files: [{ path: 'download', content: body }], ...(etag ? { etag } : {}), ...(lastModified ? { lastModified } : {}) };
      settings.cache?.set(key, entry);
    }
    return body;
  } finally {
    await agent.close();
  }
}
