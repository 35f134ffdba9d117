import { readFile, stat } from 'node:fs/promises';
import { basename, posix, resolve, sep } from 'node:path';
import { parseArgs } from 'node:util';
import yaml from 'js-yaml';
import { FlotillaError } from '../lib/errors.js';
import type { BundleDeploymentOptions } from '../lib/api/options.js';
import { bundleName } from '../lib/bundle/discover.js';
import { inlineFleetYamlValuesFiles } from '../lib/render/values.js';
import { DEFAULT_KUBE_VERSION, DEFAULT_RENDER_LIMITS, engineOf, inApplyOrder, renderContent, renderToolsFromEnv } from '../lib/render/index.js';
import { renderOptionsFrom } from '../lib/bundle/render.js';
import { CONTENT_LIMIT_CONFIG_SHAPE, DEFAULT_CONTENT_LIMITS, contentLimitsFromConfig, type ContentLimits } from '../lib/bundle/limits.js';
import { BundleRenderer } from '../lib/isolate/bundle.js';
import { z } from 'zod';
import { type ClusterInfo, customizationFor, mergeOptions } from '../lib/bundle/target.js';
import { fleetYamlOptions } from '../lib/bundle/validate.js';
import type { RenderedObject } from '../lib/bundle/manifest.js';
import { decodeSecretData } from '../lib/kube/secret.js';
import type { LoadedBundle } from '../lib/bundle/read.js';
import {
  type AccessResolver,
  type HelmSecretData,
  SECRETS_PATH_KEY,
  chartAccessFromPathsSecret,
  chartAccessFromSecret,
  defaultChartFetcher,
  defaultDependencyBuilder,
  withRemoteCharts,
} from '../lib/render/remotecharts.js';
import { IMAGES_RENDER_OPTIONS, IMAGES_RENDER_USAGE, imagesRenderFlags, loadRenderLock, rewriteForRender, type ImagesRenderFlags } from './renderimages.js';

/**
 * `flotilla render`: prints, as multi-document YAML, what a cluster with the given name, labels and
 * cluster groups would receive from the bundle in a directory (fleet.yaml target customizations and
 * overlays applied), like `fleet test`. Helm charts and kustomizations are rendered by lib/render's
 * renderContent, the code the agent runs, with the helm and kustomize on PATH (or FLOTILLA_HELM,
 * FLOTILLA_KUSTOMIZE). Remote charts (helm.repo, oci://, https:// .tgz) and chart dependencies are fetched
 * first by lib/render/remotecharts.ts, the code the controller runs when it builds the bundle, with the
 * credentials and TLS settings of the --helm-* flags; everything else is offline.
 */

/** Where the command writes. */
export interface RenderIO {
  stdout: { write(chunk: string): unknown };
  stderr: { write(chunk: string): unknown };
}

/** Exit codes: scripts can rely on them. */
export const RenderExit = { Ok: 0, BadInput: 1, Usage: 2 } as const;

/** The usage text printed by `--help` and after a usage error. */
export const RENDER_USAGE = `Usage: flotilla render DIR [options]

Prints, as multi-document YAML, the resources a cluster would receive from the bundle in DIR:
fleet.yaml's first matching targetCustomization and its yaml overlays are applied, then the
namespace rules. Helm charts (helm template) and kustomizations (kustomize build) are rendered by
the code the agent runs, and printed in the order the agent applies them: CRDs of the chart's
crds/, pre-install/upgrade hooks, the objects, post-install/upgrade hooks (test hooks are skipped).
No cluster is needed. Remote charts (helm.repo, oci://, https:// .tgz) and chart dependencies
are fetched as the controller fetches them when it builds the bundle; everything else is offline.
helm and kustomize are found on PATH, or at FLOTILLA_HELM and FLOTILLA_KUSTOMIZE.

Options:
  -l, --label KEY=VALUE     a label of the cluster (repeatable)
  -g, --cluster-group NAME  a cluster group the cluster belongs to (repeatable)
  -n, --cluster-name NAME   the name of the cluster (default "local")
      --namespace NS        force every namespaced resource into NS (as GitRepo targetNamespace)
      --bundle-name NAME    the bundle's name, Helm's default release name (default: DIR's name as a bundle name)
      --cluster-namespace NS  the cluster's namespace upstream (.ClusterNamespace; default "fleet-default")
      --kube-version V      the cluster's Kubernetes version for Helm (default "${DEFAULT_KUBE_VERSION}")
      --api-versions GV     an API the cluster serves, for Helm's .Capabilities.APIVersions (repeatable)
  -h, --help                print this help

Chart repository credentials (as the GitRepo's; a password is never taken on the command line):
      --helm-secret-file F    a Secret (YAML) as named by helmSecretName (username, password, cacerts)
                              or helmSecretNameForPaths (secrets-path.yaml; DIR is the bundle path)
      --helm-username U       username for remote charts
      --helm-password-file F  file holding the password (a trailing newline is dropped)
      --helm-ca-file F        PEM CA bundle trusted for chart repositories
      --helm-insecure-skip-tls-verify  do not verify chart repositories' certificates
      --helm-repo-url-regex R  send the username and password only to chart URLs matching R

${IMAGES_RENDER_USAGE}
Content limits (the controller's and agents' flags of the same names; see the README):
  --max-documents N (${DEFAULT_CONTENT_LIMITS.maxDocuments})  --max-depth N (${DEFAULT_CONTENT_LIMITS.maxDepth})  --max-aliases N (${DEFAULT_CONTENT_LIMITS.maxAliases})
  --max-line-length N (${DEFAULT_CONTENT_LIMITS.maxLineLength})  --max-key-length N (${DEFAULT_CONTENT_LIMITS.maxKeyLength})
  --max-string-length N (${DEFAULT_CONTENT_LIMITS.maxStringLength})  --max-nodes N (${DEFAULT_CONTENT_LIMITS.maxNodes})
  --max-expanded-bytes N (${DEFAULT_CONTENT_LIMITS.maxExpandedBytes})  --max-objects N (${DEFAULT_CONTENT_LIMITS.maxObjects})
  --render-timeout D (${DEFAULT_CONTENT_LIMITS.renderTimeoutMs / 1000}s)  --render-memory MIB (${DEFAULT_CONTENT_LIMITS.renderMemoryMb})
  --render-tool-memory MIB (${DEFAULT_CONTENT_LIMITS.renderToolMemoryMb}: each helm or kustomize run)

Exit codes: 0 rendered (or the cluster is excluded by doNotDeploy: nothing is printed),
1 invalid bundle (the message names the file, line and cause), 2 usage error.
`;

/** The parsed command line. */
interface RenderArgs {
  dir: string;
  cluster: ClusterInfo;
  targetNamespace: string | undefined;
  bundleName: string | undefined;
  clusterNamespace: string;
  kubeVersion: string;
  apiVersions: string[];
  limits: ContentLimits;
  helm: HelmAccessFlags;
  images: ImagesRenderFlags;
}

/** The --helm-* flags. */
interface HelmAccessFlags {
  secretFile?: string | undefined;
  username?: string | undefined;
  passwordFile?: string | undefined;
  caFile?: string | undefined;
  insecureSkipTLSVerify: boolean;
  urlRegex?: string | undefined;
}

/** The content limit flags: `--max-depth` for `maxDepth`, ... (the same names as the controller's and agent's). */
const LIMIT_KEYS = [...Object.keys(CONTENT_LIMIT_CONFIG_SHAPE), 'maxObjects'];
const kebab = (key: string) => key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
const LimitFlagsSchema = z.strictObject({
  ...CONTENT_LIMIT_CONFIG_SHAPE,
  maxObjects: z.coerce.number().int().min(1).default(DEFAULT_CONTENT_LIMITS.maxObjects),
});

function parseLimits(values: Record<string, unknown>): ContentLimits {
  const raw = Object.fromEntries(LIMIT_KEYS.filter((k) => values[kebab(k)] !== undefined).map((k) => [k, values[kebab(k)]]));
  const parsed = LimitFlagsSchema.safeParse(raw);
  if (!parsed.success) throw new UsageError(parsed.error.issues.map((i) => `--${kebab(String(i.path[0] ?? ''))}: ${i.message}`).join('; '));
  return contentLimitsFromConfig(parsed.data);
}

class UsageError extends Error {}

function parseLabels(values: readonly string[]): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const value of values) {
    const eq = value.indexOf('=');
    if (eq <= 0) throw new UsageError(`--label "${value}": expected KEY=VALUE`);
    labels[value.slice(0, eq)] = value.slice(eq + 1);
  }
  return labels;
}

function kubeVersionArg(value: string | undefined): string {
  if (value === undefined) return DEFAULT_KUBE_VERSION;
  if (!/^v?\d+\.\d+(\.\d+)?$/.test(value)) throw new UsageError(`--kube-version "${value}": expected a version like v1.31.2`);
  return value.startsWith('v') ? value : `v${value}`;
}

function parseRenderArgs(argv: readonly string[]): RenderArgs | 'help' {
  // biome-ignore lint/suspicious/noImplicitAnyLet: typed by the parseArgs call that assigns it below
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      allowPositionals: true,
      options: {
        label: { type: 'string', short: 'l', multiple: true },
        'cluster-group': { type: 'string', short: 'g', multiple: true },
        'cluster-name': { type: 'string', short: 'n' },
        namespace: { type: 'string' },
        'cluster-namespace': { type: 'string' },
        'bundle-name': { type: 'string' },
        'kube-version': { type: 'string' },
        'api-versions': { type: 'string', multiple: true },
        help: { type: 'boolean', short: 'h' },
        'helm-secret-file': { type: 'string' },
        'helm-username': { type: 'string' },
        'helm-password-file': { type: 'string' },
        'helm-ca-file': { type: 'string' },
        'helm-insecure-skip-tls-verify': { type: 'boolean' },
        'helm-repo-url-regex': { type: 'string' },
        ...IMAGES_RENDER_OPTIONS,
        ...Object.fromEntries(LIMIT_KEYS.map((k) => [kebab(k), { type: 'string' as const }])),
      },
    });
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : String(err));
  }
  const { values, positionals } = parsed;
  if (values.help) return 'help';
  if (positionals.length !== 1) {
    throw new UsageError(positionals.length === 0 ? 'missing DIR' : `expected one DIR, got ${positionals.length}`);
  }
  return {
    dir: positionals[0] as string,
    cluster: {
      name: values['cluster-name'] ?? 'local',
      labels: parseLabels(values.label ?? []),
      groups: (values['cluster-group'] ?? []).map((name) => ({ name, labels: {} })),
    },
    targetNamespace: values.namespace as string | undefined,
    bundleName: values['bundle-name'] as string | undefined,
    clusterNamespace: (values['cluster-namespace'] as string | undefined) ?? 'fleet-default',
    kubeVersion: kubeVersionArg(values['kube-version'] as string | undefined),
    apiVersions: (values['api-versions'] as string[] | undefined) ?? [],
    limits: parseLimits(values),
    helm: helmFlags(values),
    images: imagesRenderFlags(values),
  };
}

function helmFlags(values: Record<string, unknown>): HelmAccessFlags {
  const str = (k: string) => values[k] as string | undefined;
  if (str('helm-secret-file') && (str('helm-username') || str('helm-password-file') || str('helm-ca-file'))) {
    throw new UsageError('--helm-secret-file: give either it or --helm-username, --helm-password-file and --helm-ca-file');
  }
  if (str('helm-password-file') && str('helm-username') === undefined) throw new UsageError('--helm-password-file: needs --helm-username');
  if (str('helm-repo-url-regex') !== undefined) {
    try {
      new RegExp(str('helm-repo-url-regex') ?? '');
    } catch (err) {
      throw new UsageError(`--helm-repo-url-regex: ${(err as Error).message}`);
    }
  }
  return {
    secretFile: str('helm-secret-file'),
    username: str('helm-username'),
    passwordFile: str('helm-password-file'),
    caFile: str('helm-ca-file'),
    insecureSkipTLSVerify: values['helm-insecure-skip-tls-verify'] === true,
    urlRegex: str('helm-repo-url-regex'),
  };
}

async function readFlagFile(flag: string, path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    throw new Error(`${flag} ${path}: cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
}

/** The data of a Secret manifest: `data` (base64) and `stringData`, as the API server merges them. */
export function secretManifestData(text: string, where: string): HelmSecretData {
  let doc: unknown;
  try {
    doc = yaml.load(text, { schema: yaml.CORE_SCHEMA });
  } catch (err) {
    throw new Error(`${where}: not YAML (${(err as Error).message.split('\n')[0]})`);
  }
  const secret = doc as { kind?: unknown; data?: unknown; stringData?: unknown } | null;
  if (typeof secret !== 'object' || secret === null || secret.kind !== 'Secret') throw new Error(`${where}: expected a Secret manifest (kind: Secret)`);
  const stringData = typeof secret.stringData === 'object' && secret.stringData !== null ? (secret.stringData as Record<string, unknown>) : {};
  const plain = Object.fromEntries(Object.entries(stringData).filter((e): e is [string, string] => typeof e[1] === 'string'));
  return { ...decodeSecretData(secret.data), ...plain };
}

/** The chart credentials the --helm-* flags give (see the usage). */
async function helmAccess(flags: HelmAccessFlags): Promise<AccessResolver> {
  const settings = { insecureSkipTLSVerify: flags.insecureSkipTLSVerify, urlPattern: flags.urlRegex ? new RegExp(flags.urlRegex) : undefined };
  if (flags.secretFile) {
    const data = secretManifestData(await readFlagFile('--helm-secret-file', flags.secretFile), `--helm-secret-file ${flags.secretFile}`);
    if (data[SECRETS_PATH_KEY] !== undefined) return chartAccessFromPathsSecret(data, settings, `--helm-secret-file ${flags.secretFile}`);
    return chartAccessFromSecret(data, settings);
  }
  const data: HelmSecretData = {};
  if (flags.username !== undefined) data.username = flags.username;
  if (flags.passwordFile) data.password = (await readFlagFile('--helm-password-file', flags.passwordFile)).replace(/\r?\n$/, '');
  if (flags.caFile) data.cacerts = await readFlagFile('--helm-ca-file', flags.caFile);
  return chartAccessFromSecret(data, settings);
}

/** The bundle with its remote charts and chart dependencies fetched, as the controller stores it. */
async function withCharts(bundle: LoadedBundle, flags: HelmAccessFlags, bundlePath: string): Promise<LoadedBundle> {
  let resolver: Promise<AccessResolver> | undefined;
  const access: AccessResolver = async (source) => {
    resolver ??= helmAccess(flags);
    return (await resolver)(source, bundlePath);
  };
  return (await withRemoteCharts(bundle, access, defaultChartFetcher({}), {}, defaultDependencyBuilder({}))).bundle;
}

/** Formats objects as multi-document YAML, each document starting with `---`. */
export function toMultiDocumentYaml(objects: readonly RenderedObject[]): string {
  return objects.map((o) => `---\n${yaml.dump(o, { noRefs: true, lineWidth: -1 })}`).join('');
}

/** Reads, customizes and renders the bundle; returns the YAML and a one-line note for stderr. */
async function render(args: RenderArgs): Promise<{ yaml: string; note: string }> {
  const dir = resolve(args.dir);
  const st = await stat(dir).catch(() => undefined);
  if (!st?.isDirectory()) throw new Error(`${args.dir}: not a directory`);
  // Parsed and rendered in a capped worker with the same limits as the controller and agents.
  const renderer = new BundleRenderer({ limits: args.limits, cacheBytes: 0 });
  try {
    const found = await loadRenderLock(dir, args.images);
    const out = await renderWith(renderer, dir, args, found && ((objects) => rewriteForRender(objects, found.lock, args.images, found.file)));
    return found ? { ...out, note: `${out.note}images rewritten from ${found.file}\n` } : out;
  } finally {
    await renderer.close();
  }
}

async function renderWith(
  renderer: BundleRenderer,
  dir: string,
  args: RenderArgs,
  rewrite: ((objects: RenderedObject[]) => { objects: RenderedObject[] }) | undefined,
): Promise<{ yaml: string; note: string }> {
  const images = (objects: RenderedObject[]) => (rewrite ? rewrite(objects).objects : objects);
  const read = await renderer.readBundle(dir, args.bundleName ?? bundleName(basename(dir), '.'));
  // Remote charts fetched into the bundle by the controller's code; DIR as typed is the bundle path (helmSecretNameForPaths).
  const bundle = await withCharts(read, args.helm, posix.normalize(args.dir.split(sep).join('/')).replace(/\/+$/, ''));
  // As the controller stores it in the Bundle: values files merged into values, for fleet.yaml and each target.
  const fleetYaml = inlineFleetYamlValuesFiles(bundle.fleetYaml, bundle.files, { fleetYamlName: 'fleet.yaml', label: (p) => p });
  const targets = fleetYaml.targetCustomizations ?? [];
  const customization = customizationFor(targets, args.cluster);
  const label = customization ? `targetCustomizations[${targets.indexOf(customization)}]` : '';
  const named = customization?.name ? ` "${customization.name}"` : '';
  if (customization?.doNotDeploy) {
    return { yaml: '', note: `cluster excluded by ${label}${named} (doNotDeploy): nothing is deployed\n` };
  }
  const options: BundleDeploymentOptions = mergeOptions(fleetYamlOptions(fleetYaml), customization);
  if (args.targetNamespace) options.targetNamespace = args.targetNamespace;
  const overlays = options.yaml?.overlays ?? [];
  const where = customization
    ? `using ${label}${named}; overlays: ${overlays.length > 0 ? overlays.join(', ') : 'none'}`
    : 'no target customization matches; base options';
  if (engineOf(bundle.files, options).engine === 'yaml') {
    // Plain YAML: parsed and rendered in the capped worker, as the agent does.
    return { yaml: toMultiDocumentYaml(images(await renderer.render(bundle.files, renderOptionsFrom(options), `bundle ${args.dir}`))), note: `${where}\n` };
  }
  // Helm and Kustomize: lib/render's renderContent, the agent's code (helm and kustomize are bounded subprocesses).
  const content = await renderContent(
    bundle.files,
    { bundleName: bundle.name, options },
    {
      name: args.cluster.name,
      namespace: args.clusterNamespace,
      labels: args.cluster.labels,
      capabilities: { kubeVersion: args.kubeVersion, apiVersions: args.apiVersions },
    },
    { tools: renderToolsFromEnv(), ...DEFAULT_RENDER_LIMITS, ...renderer.renderSettings() },
  );
  return { yaml: toMultiDocumentYaml(images(inApplyOrder(content))), note: `${where}; rendered with ${content.engine}\n` };
}

/**
 * Runs `flotilla render` with the arguments after `render`. Returns the exit code: 0 rendered (also when
 * the cluster is excluded), 1 invalid bundle or unreadable input, 2 usage error; `--help` prints the
 * usage and returns 0.
 */
export async function runRender(argv: string[], io: RenderIO): Promise<number> {
  try {
    const args = parseRenderArgs(argv);
    if (args === 'help') {
      io.stdout.write(RENDER_USAGE);
      return RenderExit.Ok;
    }
    const { yaml: text, note } = await render(args);
    io.stderr.write(note);
    io.stdout.write(text);
    return RenderExit.Ok;
  } catch (err) {
    if (err instanceof UsageError) {
      io.stderr.write(`flotilla render: ${err.message}\n\n${RENDER_USAGE}`);
      return RenderExit.Usage;
    }
    if (err instanceof FlotillaError) {
      io.stderr.write(`flotilla render: ${err.message}\n`);
      return RenderExit.BadInput;
    }
    io.stderr.write(`flotilla render: ${err instanceof Error ? err.message : String(err)}\n`);
    return RenderExit.BadInput;
  }
}
