import { parseArgs } from 'node:util';
import { KubeConfig } from '@kubernetes/client-node';
import { API_VERSION, type Bundle, type Cluster, type GitRepo } from '../lib/api/index.js';
import { KubeClient, type KubeObject } from '../lib/kube/client.js';
import type { RenderIO } from './render.js';
import { table } from './table.js';

/**
 * `flotilla status`: a table of GitRepos, Bundles and Clusters of an upstream cluster, with their
 * states and artifact digests. Exit codes: 0 every GitRepo Ready, 3 some not Ready, 1 error, 2 usage.
 */

export const STATUS_USAGE = `Usage: flotilla status [--kubeconfig FILE] [--context NAME] [-n NAMESPACE | -A]

Prints the GitRepos, Bundles and Clusters of an upstream cluster with their states and, in OCI mode,
the artifact digests the bundles are pinned to, and the versions of the remote charts fetched into them.

Options:
      --kubeconfig FILE   kubeconfig to use (default $KUBECONFIG or ~/.kube/config)
      --context NAME      kubeconfig context
  -n, --namespace NS      only this namespace (default: all namespaces)
  -h, --help              print this help

Exit codes: 0 all GitRepos Ready, 3 some GitRepo not Ready, 1 error, 2 usage error.
`;

type Obj<T> = T & KubeObject;
const ready = (o: { status?: { conditions?: { type: string; status: string }[] } }) =>
  o.status?.conditions?.find((c) => c.type === 'Ready')?.status ?? 'Unknown';
const short = (digest: string | undefined) => (digest ? digest.replace(/^sha256:/, '').slice(0, 12) : '-');

/** Loads a KubeConfig from flags or the usual defaults. */
export function loadKubeConfig(file: string | undefined, context: string | undefined): KubeConfig {
  const kc = new KubeConfig();
  if (file) kc.loadFromFile(file);
  else kc.loadFromDefault();
  if (context) kc.setCurrentContext(context);
  return kc;
}

/** One row of the ROLLOUTS table: a Bundle's staged rollout, partitions as `name:Phase up/count`. */
export function rolloutRow(b: Pick<Bundle, 'status'> & { metadata: { name: string; namespace?: string | undefined } }): string[] {
  const r = b.status?.rollout;
  const parts = (r?.partitions ?? []).map((p) => `${p.name}:${p.phase} ${p.upToDate}/${p.count}${p.offline ? ` (${p.offline} offline)` : ''}`);
  return [
    b.metadata.namespace ?? '',
    b.metadata.name,
    r?.version !== undefined ? `v${r.version}${r.previousVersion !== undefined ? ` (from v${r.previousVersion})` : ''}` : '-',
    r?.phase ?? '-',
    parts.join(', ') || '-',
    (r?.message ?? '').slice(0, 100),
  ];
}

/** Builds the status tables text; returns it with whether every GitRepo is Ready. */
export async function statusReport(kube: KubeClient, namespace: string | undefined): Promise<{ text: string; allReady: boolean }> {
  const list = async <T>(kind: string) => (await kube.list<Obj<T>>({ apiVersion: API_VERSION, kind, namespace })).items;
  const [repos, bundles, clusters] = await Promise.all([list<GitRepo>('GitRepo'), list<Bundle>('Bundle'), list<Cluster>('Cluster')]);
  const out: string[] = [];
  out.push(
    `GITREPOS\n${table(
      ['NAMESPACE', 'NAME', 'COMMIT', 'READY', 'DEPLOYMENTS', 'STATE', 'MESSAGE'],
      repos.map((r) => [
        r.metadata.namespace ?? '',
        r.metadata.name,
        (r.status?.commit ?? '').slice(0, 12),
        ready(r),
        r.status?.display?.readyBundleDeployments ?? '-',
        r.status?.display?.state ?? '-',
        (r.status?.display?.message ?? '').slice(0, 80),
      ]),
    )}`,
  );
  const migrations = repos.flatMap((r) => migrationLine(r));
  if (migrations.length > 0) out.push(`STORAGE MIGRATIONS\n${migrations.join('\n')}\n`);
  out.push(
    `BUNDLES\n${table(
      ['NAMESPACE', 'NAME', 'CLUSTERS', 'STATE', 'STORAGE', 'DIGEST', 'CHARTS'],
      bundles.map((b) => [
        b.metadata.namespace ?? '',
        b.metadata.name,
        b.status?.display?.readyClusters ?? '-',
        b.status?.display?.state ?? '-',
        b.spec.oci ? 'oci' : 'etcd',
        short(b.spec.oci?.digest),
        (b.status?.charts ?? []).map((c) => `${c.path.slice(c.path.lastIndexOf('/') + 1)}@${c.version}`).join(',') || '-',
      ]),
    )}`,
  );
  const rolling = bundles.filter((b) => b.status?.rollout);
  if (rolling.length > 0) {
    out.push(
      `ROLLOUTS\n${table(
        ['NAMESPACE', 'BUNDLE', 'VERSION', 'PHASE', 'PARTITIONS (phase up-to-date/count)', 'MESSAGE'],
        rolling.map((b) => rolloutRow(b)),
      )}`,
    );
  }
  out.push(
    `CLUSTERS\n${table(
      ['NAMESPACE', 'NAME', 'LABELS', 'BUNDLES', 'STATE', 'LAST SEEN'],
      clusters.map((c) => [
        c.metadata.namespace ?? '',
        c.metadata.name,
        Object.entries(c.metadata.labels ?? {})
          .filter(([k]) => !k.startsWith('flotilla.dev/'))
          .map(([k, v]) => `${k}=${v}`)
          .join(','),
        c.status?.display?.readyBundles ?? '-',
        c.status?.display?.state ?? '-',
        c.status?.agent?.lastSeen ?? '-',
      ]),
    )}`,
  );
  return { text: out.join('\n'), allReady: repos.every((r) => ready(r) === 'True') };
}

/** Runs `flotilla status`. */
export async function runStatus(argv: string[], io: RenderIO): Promise<number> {
  // biome-ignore lint/suspicious/noImplicitAnyLet: typed by the parseArgs call that assigns it below
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        kubeconfig: { type: 'string' },
        context: { type: 'string' },
        namespace: { type: 'string', short: 'n' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    io.stderr.write(`flotilla status: ${(err as Error).message}\n\n${STATUS_USAGE}`);
    return 2;
  }
  if (values.help) {
    io.stdout.write(STATUS_USAGE);
    return 0;
  }
  let kube: KubeClient | undefined;
  try {
    kube = await KubeClient.fromKubeConfig(loadKubeConfig(values.kubeconfig, values.context));
    const { text, allReady } = await statusReport(kube, values.namespace);
    io.stdout.write(text);
    return allReady ? 0 : 3;
  } catch (err) {
    io.stderr.write(`flotilla status: ${(err as Error).message}\n`);
    return 1;
  } finally {
    await kube?.close();
  }
}

/** The storage migration of a GitRepo, when it had one (controller/migrate.ts), as one line. */
export function migrationLine(r: Obj<GitRepo>): string[] {
  const m = r.status?.storage?.migration;
  if (!m) return [];
  const message = m.message ? `: ${m.message.slice(0, 120)}` : '';
  return [`${r.metadata.namespace ?? ''}/${r.metadata.name}: ${m.from} -> ${m.to} ${m.phase}, ${m.moved}/${m.bundles} bundle(s)${message}`];
}
