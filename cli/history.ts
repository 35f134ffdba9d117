import { parseArgs } from 'node:util';
import { API_VERSION, Label, type GitRepo } from '../lib/api/index.js';
import type { FileChanges } from '../lib/bundle/versiondiff.js';
import { KubeClient, type KubeObject } from '../lib/kube/client.js';
import { bundleHistory, type BundleObj } from '../dashboard/releases.js';
import type { RenderIO } from './render.js';
import { loadKubeConfig } from './status.js';
import { table } from './table.js';

export { fileChanges, type FileChanges } from '../lib/bundle/versiondiff.js';
export {
  clustersByVersion,
  deploymentsOf,
  openBundleRepository,
  readVersion,
  readVersions,
  type BundleObj,
  type VersionInfo,
} from '../dashboard/releases.js';

/**
 * `flotilla history GITREPO|BUNDLE`: every retained version of a bundle, read from its OCI repository
 * (dashboard/releases.ts reads it, for this command and the dashboard's Bundle page alike), with the
 * clusters that run each version now. Also the shared helpers of `flotilla rollback` and `diff`.
 */

export const HISTORY_USAGE = `Usage: flotilla history GITREPO|BUNDLE [-n NAMESPACE] [--kubeconfig FILE] [--context NAME]

Lists every retained version of a bundle (or of each bundle of a GitRepo): its sequence, manifest digest,
git commit and commit date, files changed against the previous version, size, and the clusters that run
it now. Needs OCI storage (spec.ociRegistry); reads the registry with the GitRepo's credentials.

Options:
  -n, --namespace NS      namespace of the GitRepo or Bundle (default fleet-default)
      --kubeconfig FILE   kubeconfig to use (default $KUBECONFIG or ~/.kube/config)
      --context NAME      kubeconfig context
  -h, --help              print this help

Exit codes: 0 ok, 1 failure (not found, no OCI storage, registry error), 2 usage error.
`;

type Obj<T> = T & KubeObject;

/** A usage error: exit code 2. */
export class UsageError extends Error {}

/** The Bundles `name` stands for in `namespace`: that Bundle, else every Bundle of that GitRepo. Throws naming what is missing. */
export async function bundlesNamed(kube: KubeClient, namespace: string, name: string): Promise<BundleObj[]> {
  const bundle = await kube.get<BundleObj>({ apiVersion: API_VERSION, kind: 'Bundle', namespace, name });
  if (bundle) return [bundle];
  const repo = await kube.get<Obj<GitRepo>>({ apiVersion: API_VERSION, kind: 'GitRepo', namespace, name });
  if (!repo) throw new Error(`no Bundle or GitRepo ${namespace}/${name} (use -n NAMESPACE for another namespace)`);
  const all = await kube.list<BundleObj>({ apiVersion: API_VERSION, kind: 'Bundle', namespace });
  const bundles = all.items.filter((b) => b.metadata.labels?.[Label.RepoName] === name);
  if (bundles.length === 0) throw new Error(`GitRepo ${namespace}/${name} has no Bundles yet`);
  return bundles.sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
}

const short = (digest: string) => digest.replace(/^sha256:/, '').slice(0, 12);

function changesText(c: FileChanges | undefined): string {
  if (!c) return 'initial';
  const parts = [...c.added.map((p) => `+${p}`), ...c.modified.map((p) => `~${p}`), ...c.removed.map((p) => `-${p}`)];
  return parts.length === 0 ? 'none' : parts.join(' ');
}

/** The history table of one bundle. */
export async function historyReport(kube: KubeClient, bundle: BundleObj): Promise<string> {
  const { repository, entries } = await bundleHistory(kube, bundle);
  const rows = entries.map((v) => [
    `v${v.version}${v.newest ? '*' : ''}${v.rollback ? ' (rollback)' : ''}`,
    short(v.digest),
    (v.commit ?? '-').slice(0, 12),
    v.commitTime ?? '-',
    changesText(v.changes),
    String(v.size),
    v.clusters.join(',') || '-',
  ]);
  const head = `BUNDLE ${bundle.metadata.namespace}/${bundle.metadata.name} (${repository}; * = newest from git)\n`;
  return `${head}${table(['VERSION', 'DIGEST', 'COMMIT', 'DATE', 'CHANGED', 'SIZE', 'CLUSTERS'], rows)}`;
}

/** The common options of the release commands. */
export const KUBE_OPTIONS = {
  kubeconfig: { type: 'string' },
  context: { type: 'string' },
  namespace: { type: 'string', short: 'n' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** Runs `flotilla history`. */
export async function runHistory(argv: string[], io: RenderIO): Promise<number> {
  // biome-ignore lint/suspicious/noImplicitAnyLet: typed by the parseArgs call that assigns it below
  let parsed;
  try {
    parsed = parseArgs({ args: argv, allowPositionals: true, options: KUBE_OPTIONS });
    if (!parsed.values.help && parsed.positionals.length !== 1) throw new UsageError('expected one GITREPO or BUNDLE name');
  } catch (err) {
    io.stderr.write(`flotilla history: ${(err as Error).message}\n\n${HISTORY_USAGE}`);
    return 2;
  }
  if (parsed.values.help) {
    io.stdout.write(HISTORY_USAGE);
    return 0;
  }
  let kube: KubeClient | undefined;
  try {
    kube = await KubeClient.fromKubeConfig(loadKubeConfig(parsed.values.kubeconfig, parsed.values.context));
    const bundles = await bundlesNamed(kube, parsed.values.namespace ?? 'fleet-default', parsed.positionals[0] as string);
    for (const b of bundles) io.stdout.write(`${await historyReport(kube, b)}\n`);
    return 0;
  } catch (err) {
    io.stderr.write(`flotilla history: ${(err as Error).message}\n`);
    return 1;
  } finally {
    await kube?.close();
  }
}
