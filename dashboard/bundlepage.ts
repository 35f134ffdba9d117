import type { Bundle } from '../lib/api/index.js';
import { groupsOf, type ClusterInfo } from '../lib/bundle/target.js';
import type { Ref, Snapshot } from './model.js';
import type { BundleHistory, VersionDiff } from './releases.js';

/**
 * The release parts of the dashboard's Bundle page, as pure functions: the staged rollout's progress per
 * partition (Bundle.status.rollout, the data of `flotilla status`'s ROLLOUTS table), the key that tells the
 * page when to read the history again, the cluster a diff is rendered for, and the parsing of a diff
 * request. The history and the diff themselves are read by dashboard/releases.ts, through
 * {@link ReleasesPort}, with the caller's credentials.
 */

/** One partition of a rollout, as the page shows it. */
export interface PartitionView {
  name: string;
  phase: string;
  count: number;
  upToDate: number;
  unavailable: number;
  maxUnavailable: number;
  offline: number;
  startedAt: string;
  succeededAt: string;
  /** The first unavailable clusters. */
  unavailableClusters: string[];
}

/** The rollout section of the Bundle page. */
export interface RolloutView {
  /** The Bundle has a spec.rolloutStrategy. */
  strategy: boolean;
  /** Progressing, Complete, Halted or RolledBack; empty when no rollout status is written (yet). */
  phase: string;
  version?: number | undefined;
  previousVersion?: number | undefined;
  message: string;
  /** Per partition, in rollout order (what `flotilla status` prints as `name:Phase up-to-date/count`, and more). */
  partitions: PartitionView[];
}

/** The rollout's progress per partition, from the Bundle's status. */
export function rolloutView(b: Pick<Bundle, 'spec' | 'status'>): RolloutView {
  const r = b.status?.rollout;
  const partitions = (r?.partitions ?? []).map(
    (p): PartitionView => ({
      name: p.name,
      phase: p.phase,
      count: p.count,
      upToDate: p.upToDate,
      unavailable: p.unavailable,
      maxUnavailable: p.maxUnavailable,
      offline: p.offline ?? 0,
      startedAt: p.startedAt ?? '',
      succeededAt: p.succeededAt ?? '',
      unavailableClusters: p.names ?? [],
    }),
  );
  return {
    strategy: b.spec.rolloutStrategy !== undefined,
    phase: r?.phase ?? '',
    version: r?.version,
    previousVersion: r?.previousVersion,
    message: r?.message ?? '',
    partitions,
  };
}

/**
 * A key that changes whenever the bundle's history as `flotilla history` shows it may have changed: a new
 * version, retention, which clusters run which version, a rollback. The page reads the history again only
 * when it changes, not on every watch event.
 */
export function releasesKey(b: Pick<Bundle, 'spec' | 'status'>): string {
  return JSON.stringify([
    b.spec.oci?.digest ?? '',
    (b.status?.history ?? []).map((h) => h.digest),
    (b.status?.versions ?? []).map((v) => [v.version, v.clusters]),
    b.spec.rollback?.version ?? 0,
  ]);
}

/** Reads a bundle's releases: its history and diffs of two versions. Held by the server when the dashboard can reach the API. */
export interface ReleasesPort {
  /** The history of Bundle `namespace/name`; undefined when there is no such Bundle. */
  history(namespace: string, name: string): Promise<BundleHistory | undefined>;
  /** The diff of versions `from` and `to` for `cluster`; undefined when there is no such Bundle. */
  diff(namespace: string, name: string, from: number, to: number, cluster: ClusterInfo): Promise<VersionDiff | undefined>;
}

/** A diff request from the page: two version sequences and, optionally, the cluster (namespace/name) to render for. */
export interface DiffRequest {
  from: number;
  to: number;
  cluster?: Ref | undefined;
}

const VERSION = /^v?([1-9][0-9]{0,8})$/;

/** Parses `from`, `to` (`3` or `v3`) and `cluster` (`namespace/name`, optional); returns an error message when they are wrong. */
export function parseDiffRequest(params: URLSearchParams): DiffRequest | string {
  const from = VERSION.exec(params.get('from') ?? '');
  const to = VERSION.exec(params.get('to') ?? '');
  if (!from || !to) return 'from and to must be versions such as v1 and v2';
  const cluster = params.get('cluster') ?? '';
  if (cluster === '') return { from: Number(from[1]), to: Number(to[1]) };
  const slash = cluster.indexOf('/');
  if (slash <= 0 || slash === cluster.length - 1) return `cluster must be namespace/name, not "${cluster}"`;
  return { from: Number(from[1]), to: Number(to[1]), cluster: { namespace: cluster.slice(0, slash), name: cluster.slice(slash + 1) } };
}

/** The cluster a diff renders for without a chosen cluster: `flotilla diff`'s default (named local, no labels). */
export const DEFAULT_DIFF_CLUSTER: ClusterInfo = { name: 'local', labels: {}, groups: [] };

/** The cluster `ref` as the renderer targets it (its labels and ClusterGroups); undefined when there is no such Cluster. */
export function clusterInfoOf(s: Snapshot, ref: Ref): ClusterInfo | undefined {
  const c = s.clusters.find((x) => x.metadata.namespace === ref.namespace && x.metadata.name === ref.name);
  if (!c) return undefined;
  const labels = c.metadata.labels ?? {};
  const groups = s.clusterGroups
    .filter((g) => g.metadata.namespace === ref.namespace)
    .map((g) => ({ name: g.metadata.name, labels: g.metadata.labels ?? {}, selector: g.spec?.selector }));
  return { name: c.metadata.name, labels, groups: groupsOf(labels, groups) };
}
