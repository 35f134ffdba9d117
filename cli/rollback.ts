import { parseArgs } from 'node:util';
import { API_VERSION, Label, type BundleRollback, type Cluster, type LabelSelector } from '../lib/api/index.js';
import { matchesSelector } from '../lib/bundle/target.js';
import { KubeClient, type KubeObject } from '../lib/kube/client.js';
import { listVersions } from '../lib/oci/index.js';
import type { RenderIO } from './render.js';
import { loadKubeConfig } from './status.js';
import { KUBE_OPTIONS, UsageError, bundlesNamed, deploymentsOf, openBundleRepository, readVersions, type BundleObj } from './history.js';

/**
 * `flotilla rollback BUNDLE|GITREPO --to vN [--clusters SELECTOR]` and `--clear`: records a rollback in the
 * Bundle's `spec.rollback` (kept across commits and restarts, visible to kubectl), after checking that the
 * version is still in the bundle's registry repository and history, and that every selected cluster is
 * targeted by the bundle. Nothing is written unless every bundle named passes. The Bundle reconciler then
 * pins the selected clusters' BundleDeployments to that version (controller/history.ts).
 */

export const ROLLBACK_USAGE = `Usage: flotilla rollback BUNDLE|GITREPO --to vN [--clusters SELECTOR] [-n NAMESPACE]
       flotilla rollback BUNDLE|GITREPO --clear [-n NAMESPACE]

Makes the selected clusters run version N of the bundle again (of every bundle of a GitRepo), without
touching git. The rollback is recorded in the Bundle's spec.rollback: it survives restarts and new
commits (a new commit does not move the rolled-back clusters; the Bundle's RolledBack condition says a
newer version waits) until --clear returns them to the newest version.

Options:
      --to VERSION        vN (or N, or the version's sha256 digest) as 'flotilla history' lists it
      --clusters SEL      label selector of the clusters to roll back: key=value[,key=value...]
                          (default: every cluster the bundle targets)
      --clear             remove the rollback: every cluster returns to the newest version
  -n, --namespace NS      namespace of the GitRepo or Bundle (default fleet-default)
      --kubeconfig FILE   kubeconfig to use (default $KUBECONFIG or ~/.kube/config)
      --context NAME      kubeconfig context
  -h, --help              print this help

Refused, with nothing changed: a version retention deleted, a digest of another bundle, a selector
that matches a cluster the bundle does not target (or no cluster at all).
Exit codes: 0 ok, 1 refused or failed, 2 usage error.
`;

/** Parses `key=value[,key=value...]` into a label selector. */
export function parseClusterSelector(text: string): LabelSelector {
  const matchLabels: Record<string, string> = {};
  for (const part of text.split(',').map((p) => p.trim())) {
    const eq = part.indexOf('=');
    if (eq <= 0) throw new UsageError(`--clusters "${text}": expected key=value[,key=value...]`);
    matchLabels[part.slice(0, eq)] = part.slice(eq + 1);
  }
  return { matchLabels };
}

/** Parses `--to`: a version number or a digest. */
export function parseTarget(text: string): { version: number } | { digest: string } {
  if (/^sha256:[0-9a-f]{64}$/.test(text)) return { digest: text };
  const m = /^v?([1-9][0-9]{0,14})$/.exec(text);
  if (!m) throw new UsageError(`--to "${text}": expected vN (e.g. v3) or a sha256 digest`);
  return { version: Number(m[1]) };
}

/** Checks a rollback of one bundle; returns its spec.rollback or throws a message that names what is wrong. */
export async function planRollback(
  kube: KubeClient,
  bundle: BundleObj,
  to: { version: number } | { digest: string },
  selector: LabelSelector | undefined,
): Promise<BundleRollback> {
  const where = `bundle ${bundle.metadata.namespace}/${bundle.metadata.name}`;
  const { client, repository } = await openBundleRepository(kube, bundle);
  let version: number;
  let digest: string;
  try {
    const retained = (await listVersions(client, repository)).map((v) => v.tag).join(', ') || 'none';
    const versions = await readVersions(client, repository);
    const found = 'version' in to ? versions.find((v) => v.version === to.version) : versions.find((v) => v.digest === to.digest);
    if (!found) {
      throw new Error(
        'version' in to
          ? `${where}: version v${to.version} is not in ${repository.registry}/${repository.repository}: retention deleted it or it never existed (retained: ${retained})`
          : `${where}: ${to.digest} is not a version of this bundle (a version of another bundle?); its versions are ${retained}`,
      );
    }
    ({ version, digest } = found);
  } finally {
    await client.close();
  }
  if (!(bundle.status?.history ?? []).some((e) => e.version === version && e.digest === digest)) {
    throw new Error(`${where}: v${version} is in the registry but not in the Bundle's status.history, so the controller cannot pin it`);
  }
  const targeted = new Set((await deploymentsOf(kube, bundle)).map((bd) => bd.metadata.labels?.[Label.Cluster] ?? ''));
  if (selector) {
    const clusters = await kube.list<Cluster & KubeObject>({ apiVersion: API_VERSION, kind: 'Cluster', namespace: bundle.metadata.namespace });
    const matched = clusters.items.filter((c) => matchesSelector(c.metadata.labels ?? {}, selector)).map((c) => c.metadata.name);
    if (matched.length === 0) throw new Error(`${where}: --clusters matches no cluster in namespace ${bundle.metadata.namespace}`);
    const untargeted = matched.filter((c) => !targeted.has(c));
    if (untargeted.length > 0) throw new Error(`${where}: cluster(s) ${untargeted.join(', ')} match --clusters but the bundle does not target them`);
  } else if (targeted.size === 0) {
    throw new Error(`${where}: targets no cluster yet`);
  }
  return { version, digest, ...(selector ? { clusterSelector: selector } : {}) };
}

interface RollbackArgs {
  name: string;
  namespace: string;
  to?: { version: number } | { digest: string };
  selector?: LabelSelector;
  kubeconfig?: string | undefined;
  context?: string | undefined;
}

function parseRollbackArgs(argv: string[]): RollbackArgs | 'help' {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { ...KUBE_OPTIONS, to: { type: 'string' }, clusters: { type: 'string' }, clear: { type: 'boolean' } },
  });
  if (values.help) return 'help';
  if (positionals.length !== 1) throw new UsageError('expected one BUNDLE or GITREPO name');
  if (values.clear === (values.to !== undefined)) throw new UsageError('give exactly one of --to VERSION or --clear');
  if (values.clear && values.clusters !== undefined) throw new UsageError('--clusters goes with --to, not --clear');
  return {
    name: positionals[0] as string,
    namespace: values.namespace ?? 'fleet-default',
    ...(values.to !== undefined ? { to: parseTarget(values.to) } : {}),
    ...(values.clusters !== undefined ? { selector: parseClusterSelector(values.clusters) } : {}),
    kubeconfig: values.kubeconfig,
    context: values.context,
  };
}

function whichClusters(rollback: BundleRollback): string {
  const labels = Object.entries(rollback.clusterSelector?.matchLabels ?? {}).map(([k, v]) => `${k}=${v}`);
  return labels.length > 0 ? `clusters matching ${labels.join(',')}` : 'all targeted clusters';
}

/** Runs `flotilla rollback`. */
export async function runRollback(argv: string[], io: RenderIO): Promise<number> {
  let args: RollbackArgs | 'help';
  try {
    args = parseRollbackArgs(argv);
  } catch (err) {
    io.stderr.write(`flotilla rollback: ${(err as Error).message}\n\n${ROLLBACK_USAGE}`);
    return 2;
  }
  if (args === 'help') {
    io.stdout.write(ROLLBACK_USAGE);
    return 0;
  }
  let kube: KubeClient | undefined;
  try {
    kube = await KubeClient.fromKubeConfig(loadKubeConfig(args.kubeconfig, args.context));
    const bundles = await bundlesNamed(kube, args.namespace, args.name);
    const plans: { bundle: BundleObj; rollback: BundleRollback | null }[] = [];
    // Every bundle is checked before any is written: all or nothing.
    for (const bundle of bundles) plans.push({ bundle, rollback: args.to ? await planRollback(kube, bundle, args.to, args.selector) : null });
    for (const { bundle, rollback } of plans) {
      const ref = { apiVersion: API_VERSION, kind: 'Bundle', namespace: bundle.metadata.namespace, name: bundle.metadata.name };
      await kube.mergePatch(ref, { spec: { rollback } });
      const where = `bundle ${bundle.metadata.namespace}/${bundle.metadata.name}`;
      io.stdout.write(
        rollback
          ? `${where}: ${whichClusters(rollback)} roll back to v${rollback.version} (${rollback.digest}); clear with: flotilla rollback ${bundle.metadata.name} --clear -n ${args.namespace}\n`
          : `${where}: rollback cleared; every cluster returns to the newest version\n`,
      );
    }
    return 0;
  } catch (err) {
    io.stderr.write(`flotilla rollback: ${(err as Error).message}; nothing was changed\n`);
    return 1;
  } finally {
    await kube?.close();
  }
}
