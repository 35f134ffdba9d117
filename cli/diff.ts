import { parseArgs } from 'node:util';
import yaml from 'js-yaml';
import type { BundleDeploymentOptions } from '../lib/api/index.js';
import { customizationFor, mergeOptions, type ClusterInfo } from '../lib/bundle/target.js';
import { renderOptionsFrom } from '../lib/bundle/render.js';
import type { BundleFile, RenderedObject } from '../lib/bundle/manifest.js';
import { BundleRenderer } from '../lib/isolate/bundle.js';
import { KubeClient } from '../lib/kube/client.js';
import { pullBundle, pinnedReference } from '../lib/oci/index.js';
import { DEFAULT_KUBE_VERSION, DEFAULT_RENDER_LIMITS, engineOf, inApplyOrder, renderContent, renderToolsFromEnv } from '../lib/render/index.js';
import { baseOptions } from '../controller/bundle.js';
import type { RenderIO } from './render.js';
import { loadKubeConfig } from './status.js';
import { KUBE_OPTIONS, UsageError, bundlesNamed, fileChanges, openBundleRepository, readVersion, type BundleObj } from './history.js';
import { parseTarget } from './rollback.js';

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
      --cluster-name NAME the cluster's name (default local)
  -n, --namespace NS      namespace of the Bundle (default fleet-default)
      --kubeconfig FILE   kubeconfig to use (default $KUBECONFIG or ~/.kube/config)
      --context NAME      kubeconfig context
  -h, --help              print this help

Exit codes: 0 ok, 1 failure (unknown version, registry or render error), 2 usage error.
`;

/** Identity of a rendered object. */
export function objectKey(o: RenderedObject): string {
  const meta = (o.metadata ?? {}) as { namespace?: string; name?: string };
  return `${o.apiVersion}/${o.kind} ${meta.namespace ? `${meta.namespace}/` : ''}${meta.name ?? ''}`;
}

/** A line diff (longest common subsequence): lines only in `a` prefixed "- ", only in `b` "+ " (removals first). */
export function lineDiff(a: readonly string[], b: readonly string[]): string[] {
  const n = a.length;
  const m = b.length;
  const lcs: number[][] = Array.from({ length: n + 1 }, () => new Array<number>(m + 1).fill(0));
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      const row = lcs[i] as number[];
      row[j] = a[i] === b[j] ? (lcs[i + 1]?.[j + 1] ?? 0) + 1 : Math.max(lcs[i + 1]?.[j] ?? 0, row[j + 1] ?? 0);
    }
  }
  const out: string[] = [];
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[i] === b[j]) {
      i++;
      j++;
    } else if (i < n && (j >= m || (lcs[i + 1]?.[j] ?? 0) >= (lcs[i]?.[j + 1] ?? 0))) {
      out.push(`- ${a[i++]}`);
    } else {
      out.push(`+ ${b[j++]}`);
    }
  }
  return out;
}

/** The object diff of two renders: removed, added, and changed objects with their YAML line diff. */
export function objectDiff(before: readonly RenderedObject[], after: readonly RenderedObject[]): string[] {
  const dump = (o: RenderedObject) => yaml.dump(o, { noRefs: true, lineWidth: -1, sortKeys: true }).trimEnd().split('\n');
  const a = new Map(before.map((o) => [objectKey(o), o]));
  const b = new Map(after.map((o) => [objectKey(o), o]));
  const out: string[] = [];
  for (const [key, o] of a) if (!b.has(key)) out.push(`- ${key}`, ...dump(o).map((l) => `    - ${l}`));
  for (const [key, o] of b) {
    const old = a.get(key);
    if (!old) out.push(`+ ${key}`, ...dump(o).map((l) => `    + ${l}`));
    else {
      const lines = lineDiff(dump(old), dump(o));
      if (lines.length > 0) out.push(`~ ${key}`, ...lines.map((l) => `    ${l}`));
    }
  }
  return out;
}

async function render(renderer: BundleRenderer, bundle: BundleObj, files: BundleFile[], cluster: ClusterInfo, label: string): Promise<RenderedObject[]> {
  const customization = customizationFor(bundle.spec.targets, cluster);
  if (customization?.doNotDeploy) return [];
  const options: BundleDeploymentOptions = mergeOptions(baseOptions(bundle.spec), customization);
  if (engineOf(files, options).engine === 'yaml') return await renderer.render(files, renderOptionsFrom(options), label);
  const content = await renderContent(
    files,
    { bundleName: bundle.metadata.name, options },
    {
      name: cluster.name,
      namespace: bundle.metadata.namespace ?? 'fleet-default',
      labels: cluster.labels,
      capabilities: { kubeVersion: DEFAULT_KUBE_VERSION, apiVersions: [] },
    },
    { tools: renderToolsFromEnv(), ...DEFAULT_RENDER_LIMITS },
  );
  return inApplyOrder(content);
}

/** The diff report of two versions of a bundle. */
export async function diffReport(kube: KubeClient, bundle: BundleObj, from: string, to: string, cluster: ClusterInfo): Promise<string> {
  let downloads = 0;
  const { client, repository } = await openBundleRepository(kube, bundle, (e) => {
    if (e.type === 'blob-downloaded') downloads += 1;
  });
  const renderer = new BundleRenderer({ cacheBytes: 0 });
  try {
    const version = async (text: string) => {
      const t = parseTarget(text);
      return 'version' in t ? await readVersion(client, repository, t.version) : await readVersion(client, repository, 0, t.digest);
    };
    const [a, b] = [await version(from), await version(to)];
    const changes = fileChanges(a.files, b.files);
    const out = [`FILES v${a.version} -> v${b.version} of bundle ${bundle.metadata.namespace}/${bundle.metadata.name} (from the manifests)`];
    for (const p of changes.added) out.push(`+ ${p}`);
    for (const p of changes.modified) out.push(`~ ${p}`);
    for (const p of changes.removed) out.push(`- ${p}`);
    if (out.length === 1) out.push('(no file changed)');
    const pulled = async (digest: string) =>
      (await pullBundle(client, pinnedReference(repository, digest))).files.map((f) => ({ path: f.path, content: f.content }));
    const before = await render(renderer, bundle, await pulled(a.digest), cluster, `v${a.version}`);
    const after = await render(renderer, bundle, await pulled(b.digest), cluster, `v${b.version}`);
    const labels = Object.entries(cluster.labels).map(([k, v]) => `${k}=${v}`);
    out.push(`OBJECTS for cluster ${cluster.name}${labels.length ? ` (${labels.join(',')})` : ''}`);
    const objects = objectDiff(before, after);
    out.push(...(objects.length > 0 ? objects : ['(no object changed)']));
    out.push(`(${downloads} blob(s) downloaded: layers both versions share are fetched once)`);
    return `${out.join('\n')}\n`;
  } finally {
    await renderer.close();
    await client.close();
  }
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
      options: { ...KUBE_OPTIONS, label: { type: 'string', short: 'l', multiple: true }, 'cluster-name': { type: 'string' } },
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
    const [bundle] = await bundlesNamed(kube, parsed.values.namespace ?? 'fleet-default', name);
    if (!bundle) throw new Error(`no Bundle ${name}`);
    io.stdout.write(await diffReport(kube, bundle, from, to, { name: parsed.values['cluster-name'] ?? 'local', labels, groups: [] }));
    return 0;
  } catch (err) {
    io.stderr.write(`flotilla diff: ${(err as Error).message}\n`);
    return 1;
  } finally {
    await kube?.close();
  }
}
