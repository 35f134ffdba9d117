import { parseArgs } from 'node:util';
import type { ClusterInfo } from '../lib/bundle/target.js';
import { API_VERSION, type RegistryMirror } from '../lib/api/index.js';
import type { RewriteContext } from '../lib/images/rewrite.js';
import { KubeClient, type KubeObject } from '../lib/kube/client.js';
import { buildMirrorMap, parseMirrorList } from '../lib/oci/index.js';
import { IMAGES_RENDER_OPTIONS, imagesRenderFlags, renderContext, type ImagesRenderFlags } from './renderimages.js';
import { diffVersions, type BundleObj } from '../dashboard/releases.js';
import type { RenderIO } from './render.js';
import { loadKubeConfig } from './status.js';
import { KUBE_OPTIONS, UsageError, bundlesNamed } from './history.js';
import { parseTarget } from './rollback.js';

export { lineDiff, objectDiff, objectKey } from '../lib/bundle/versiondiff.js';

/**
 * `flotilla diff BUNDLE vA vB [-l key=value...]`: the files that changed between two versions (from the
 * manifests' layer digests alone), then the objects a cluster with those labels would receive from each,
 * rendered as the agent renders them (lib/render's renderContent for Helm and Kustomize, the bundle
 * renderer for plain YAML), compared object by object. Blobs are fetched once each into one cache, so a
 * layer both versions share is downloaded once and only layers that differ add downloads.
 */

export const DIFF_USAGE = `Usage: flotilla diff BUNDLE vA vB [-l KEY=VALUE ...] [--cluster-name NAME] [-n NAMESPACE]

Shows which files changed between two retained versions of a bundle and how the objects a cluster with
the given labels receives differ (Helm and Kustomize bundles rendered as the agent does, with the
Bundle's current deployment options and target customizations).

Options:
  -l, --label KEY=VALUE   a label of the cluster to render for (repeatable)
      --cluster-name NAME the cluster's name (default local); when a Cluster of that name exists in the
                          namespace, its spec.registryMirrors apply to the images (as on its agent)
      --local-registry HOST   the cluster's KEP-1755 registry host, for images declared local
      --registry-mirrors LIST the agent's bootstrap registry mirrors (JSON or YAML list; docs/mirrors.md)
  -n, --namespace NS      namespace of the Bundle (default fleet-default)
      --kubeconfig FILE   kubeconfig to use (default $KUBECONFIG or ~/.kube/config)
      --context NAME      kubeconfig context
  -h, --help              print this help

Images are shown as the agent applies them when a version has an images lock (docs/airgap.md): relocated
copies and sources pinned by digest, on the cluster's registry mirrors, local images on --local-registry.

Exit codes: 0 ok, 1 failure (unknown version, registry or render error), 2 usage error.
`;

/** The diff report of two versions of a bundle (computed by dashboard/releases.ts diffVersions; Secret values masked). */
export async function diffReport(
  kube: KubeClient,
  bundle: BundleObj,
  from: string,
  to: string,
  cluster: ClusterInfo,
  images: RewriteContext = {},
): Promise<string> {
  const d = await diffVersions(kube, bundle, parseTarget(from), parseTarget(to), cluster, images);
  const out = [`FILES v${d.from} -> v${d.to} of bundle ${bundle.metadata.namespace}/${bundle.metadata.name} (from the manifests)`];
  for (const p of d.changes.added) out.push(`+ ${p}`);
  for (const p of d.changes.modified) out.push(`~ ${p}`);
  for (const p of d.changes.removed) out.push(`- ${p}`);
  if (out.length === 1) out.push('(no file changed)');
  const labels = Object.entries(cluster.labels).map(([k, v]) => `${k}=${v}`);
  out.push(`OBJECTS for cluster ${cluster.name}${labels.length ? ` (${labels.join(',')})` : ''}`);
  out.push(...(d.objects.length > 0 ? d.objects : ['(no object changed)']));
  out.push(`(${d.downloads} blob(s) downloaded: layers both versions share are fetched once)`);
  return `${out.join('\n')}\n`;
}

/**
 * The image rewrite context of the cluster `flotilla diff` renders for: `--local-registry`, and its mirrors as
 * its agent builds them (lib/oci/mirrors.ts): `--registry-mirrors` for the bootstrap entries, overridden per
 * registry by `spec.registryMirrors` of the Cluster `name` when it exists upstream.
 */
export async function clusterImageContext(kube: KubeClient, namespace: string, name: string, flags: ImagesRenderFlags): Promise<RewriteContext> {
  const own = renderContext(flags);
  const cluster = await kube.get<KubeObject & { spec?: { registryMirrors?: RegistryMirror[] } }>({ apiVersion: API_VERSION, kind: 'Cluster', namespace, name });
  const entries = cluster?.spec?.registryMirrors;
  if (!entries?.length) return own;
  const bootstrap = flags.registryMirrors === undefined ? [] : parseMirrorList(flags.registryMirrors, '--registry-mirrors');
  return { ...own, mirrors: buildMirrorMap({ bootstrap, cluster: entries }) };
}

/** Runs `flotilla diff`. */
export async function runDiff(argv: string[], io: RenderIO): Promise<number> {
  // biome-ignore lint/suspicious/noImplicitAnyLet: typed by the parseArgs call that assigns it below
  let parsed;
  const labels: Record<string, string> = {};
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        ...KUBE_OPTIONS,
        label: { type: 'string', short: 'l', multiple: true },
        'cluster-name': { type: 'string' },
        'local-registry': IMAGES_RENDER_OPTIONS['local-registry'],
        'registry-mirrors': IMAGES_RENDER_OPTIONS['registry-mirrors'],
      },
    });
    if (!parsed.values.help && parsed.positionals.length !== 3) throw new UsageError('expected BUNDLE vA vB');
    for (const l of parsed.values.label ?? []) {
      const eq = l.indexOf('=');
      if (eq <= 0) throw new UsageError(`--label "${l}": expected KEY=VALUE`);
      labels[l.slice(0, eq)] = l.slice(eq + 1);
    }
    for (const v of parsed.positionals.slice(1)) parseTarget(v);
  } catch (err) {
    io.stderr.write(`flotilla diff: ${(err as Error).message}\n\n${DIFF_USAGE}`);
    return 2;
  }
  if (parsed.values.help) {
    io.stdout.write(DIFF_USAGE);
    return 0;
  }
  const [name, from, to] = parsed.positionals as [string, string, string];
  let kube: KubeClient | undefined;
  try {
    kube = await KubeClient.fromKubeConfig(loadKubeConfig(parsed.values.kubeconfig, parsed.values.context));
    const namespace = parsed.values.namespace ?? 'fleet-default';
    const [bundle] = await bundlesNamed(kube, namespace, name);
    if (!bundle) throw new Error(`no Bundle ${name}`);
    const clusterName = parsed.values['cluster-name'] ?? 'local';
    const images = await clusterImageContext(kube, namespace, clusterName, imagesRenderFlags(parsed.values));
    io.stdout.write(await diffReport(kube, bundle, from, to, { name: clusterName, labels, groups: [] }, images));
    return 0;
  } catch (err) {
    io.stderr.write(`flotilla diff: ${(err as Error).message}\n`);
    return 1;
  } finally {
    await kube?.close();
  }
}
