import { andMore } from './status-bounds.js';
import {
  ConditionType,
  Label,
  removeCondition,
  setCondition,
  type Condition,
  MAX_HISTORY,
  Reason,
  type Bundle,
  type BundleDeployment,
  type BundleDeploymentSpec,
  type BundleResource,
  type BundleStatus,
  type BundleVersionEntry,
} from '../lib/api/index.js';
import { matchesSelector } from '../lib/bundle/target.js';
import { StallingError } from '../lib/errors.js';

/**
 * Releases: the version history a Bundle keeps on its status (written by the GitRepo reconciler after each
 * push), the digests retention must keep, and how a rollback in force (`spec.rollback`) changes what a
 * cluster's BundleDeployment pins. Pure functions, unit-tested with case tables (controller/history.test.ts).
 */

/** Parts of a Bundle these functions read. */
type BundleLike = Pick<Bundle, 'spec' | 'status'> & { metadata: { name: string; namespace?: string | undefined } };

/** The contents ID a deployment ID (`s-<contentsID>:<optionsHash>`) was built from, or undefined. */
export function contentsOfDeploymentID(id: string | undefined): string | undefined {
  if (!id?.startsWith('s-')) return undefined;
  const colon = id.lastIndexOf(':');
  return colon > 2 ? id.slice(2, colon) : undefined;
}

/**
 * The history after a push: `entry` added (or refreshed when its version is already listed), versions that
 * retention deleted removed, then at most {@link MAX_HISTORY} entries, dropping the oldest that are not in
 * `keep` first. Oldest first.
 */
export function nextHistory(
  previous: readonly BundleVersionEntry[] | undefined,
  entry: BundleVersionEntry | undefined,
  deletedDigests: Iterable<string>,
  keep: ReadonlySet<string> = new Set(),
  max = MAX_HISTORY,
): BundleVersionEntry[] {
  const deleted = new Set(deletedDigests);
  const byVersion = new Map<number, BundleVersionEntry>();
  for (const e of previous ?? []) if (!deleted.has(e.digest)) byVersion.set(e.version, e);
  if (entry) {
    const old = byVersion.get(entry.version);
    // An unchanged push (same content, a later commit) keeps the commit that first produced the version.
    byVersion.set(entry.version, old && old.digest === entry.digest ? { ...entry, ...old } : entry);
  }
  const list = [...byVersion.values()].sort((a, b) => a.version - b.version);
  while (list.length > max) {
    const newest = list.at(-1);
    const drop = list.findIndex((e) => e !== newest && !keep.has(e.digest));
    list.splice(Math.max(drop, 0), 1);
  }
  return list;
}

/**
 * Digests retention must not delete: the Bundle's own, its rollback's, every digest its BundleDeployments pin,
 * and the history versions whose contents a cluster still runs (its applied deployment ID).
 */
export function protectedDigests(bundle: BundleLike | undefined, deployments: readonly Pick<BundleDeployment, 'spec' | 'status'>[]): Set<string> {
  const keep = new Set<string>();
  if (bundle?.spec.oci?.digest) keep.add(bundle.spec.oci.digest);
  if (bundle?.spec.rollback?.digest) keep.add(bundle.spec.rollback.digest);
  const history = bundle?.status?.history ?? [];
  const rolledBack = history.find((e) => e.version === bundle?.spec.rollback?.version);
  if (rolledBack) keep.add(rolledBack.digest);
  const running = new Set<string>();
  for (const bd of deployments) {
    if (bd.spec.oci?.digest) keep.add(bd.spec.oci.digest);
    const applied = contentsOfDeploymentID(bd.status?.appliedDeploymentID);
    if (applied) running.add(applied);
  }
  for (const e of history) if (e.contentsID && running.has(e.contentsID)) keep.add(e.digest);
  return keep;
}

/** A rollback checked against the Bundle's history: the version entry its clusters pin. */
export interface ResolvedRollback {
  entry: BundleVersionEntry;
  /** Whether a targeted cluster with these labels runs the rollback's version. */
  selects(labels: Record<string, string>): boolean;
}

function refuse(bundle: BundleLike, field: string, why: string): never {
  throw new StallingError(
    Reason.InvalidRollback,
    `Bundle ${bundle.metadata.namespace ?? ''}/${bundle.metadata.name}: ${field} ${why}; nothing was rolled back (fix or remove spec.rollback: flotilla rollback ${bundle.metadata.name} --clear)`,
  );
}

/**
 * Checks `spec.rollback` (it may be written by hand): OCI mode, a version the history lists (so this bundle's,
 * not deleted by retention), the digest of that version when one is given, and a selector that selects at
 * least one targeted cluster. Undefined without a rollback; a StallingError (InvalidRollback) naming the field otherwise.
 */
export function resolveRollback(bundle: BundleLike, targetedLabels: readonly Record<string, string>[]): ResolvedRollback | undefined {
  const rollback = bundle.spec.rollback;
  if (!rollback) return undefined;
  // etcd mode keeps versions only when they came from a registry (content Secrets, controller/content-objects.ts).
  if (!bundle.spec.oci && (bundle.status?.history ?? []).length === 0)
    refuse(bundle, 'spec.rollback', 'needs OCI storage (spec.ociRegistry on the GitRepo): etcd-mode bundles keep no versions');
  const history = bundle.status?.history ?? [];
  const entry = history.find((e) => e.version === rollback.version);
  if (!entry) {
    const retained = history.map((e) => `v${e.version}`).join(', ') || 'none yet';
    refuse(bundle, 'spec.rollback.version', `v${rollback.version} is not a retained version of this bundle (retained: ${retained})`);
  }
  if (rollback.digest !== undefined && rollback.digest !== entry.digest) {
    refuse(bundle, 'spec.rollback.digest', `${rollback.digest} is not the digest of v${rollback.version} of this bundle (${entry.digest})`);
  }
  const selector = rollback.clusterSelector;
  const selects = (labels: Record<string, string>) => (selector ? matchesSelector(labels, selector) : true);
  if (targetedLabels.length > 0 && !targetedLabels.some(selects)) {
    refuse(bundle, 'spec.rollback.clusterSelector', 'selects no cluster this bundle targets');
  }
  return { entry, selects };
}

/**
 * The BundleDeployment spec of a rolled-back cluster: `spec` (the newest version's, with this cluster's
 * options) pinned to the rollback's digest and contents instead. The options stay the current ones.
 */
export function rolledBackSpec(spec: BundleDeploymentSpec, entry: BundleVersionEntry, resources?: BundleResource[]): BundleDeploymentSpec {
  if (!spec.oci) {
    // etcd mode: the version's resources from its content Secret; without them nothing is pinned.
    if (!resources) return spec;
    const { stagedDeploymentID: _s, stagedOptions: _o, paused: _p, ...rest } = spec;
    return { ...rest, deploymentID: `s-${entry.contentsID ?? entry.digest}:${spec.deploymentID.slice(spec.deploymentID.lastIndexOf(':') + 1)}`, resources };
  }
  const at = spec.oci.reference.lastIndexOf('@');
  const repository = at >= 0 ? spec.oci.reference.slice(0, at) : spec.oci.reference;
  const optionsHash = spec.deploymentID.slice(spec.deploymentID.lastIndexOf(':') + 1);
  const { stagedDeploymentID: _s, stagedOptions: _o, paused: _p, ...rest } = spec;
  return {
    ...rest,
    deploymentID: `s-${entry.contentsID ?? entry.digest}:${optionsHash}`,
    oci: { ...spec.oci, reference: `${repository}@${entry.digest}`, digest: entry.digest },
  };
}

/** The most cluster names `status.versions` lists per older version (the counts are exact). */
export const MAX_VERSION_NAMES = 5;

/** Which version each BundleDeployment's cluster runs now, by its applied deployment ID, newest version first. */
export function runningVersions(
  history: readonly BundleVersionEntry[] | undefined,
  deployments: readonly (Pick<BundleDeployment, 'spec' | 'status'> & { metadata: { labels?: Record<string, string> | undefined } })[],
): NonNullable<BundleStatus['versions']> {
  const byVersion = new Map<number, string[]>();
  for (const bd of deployments) {
    const applied = contentsOfDeploymentID(bd.status?.appliedDeploymentID);
    if (!applied) continue;
    const version = versionOf(history, applied, bd.spec.oci?.digest) ?? 0;
    const names = byVersion.get(version) ?? [];
    names.push(bd.metadata.labels?.[Label.Cluster] ?? '');
    byVersion.set(version, names);
  }
  // The newest version running needs no names (most clusters run it); the older ones list the first few.
  return [...byVersion.entries()]
    .sort(([a], [b]) => b - a)
    .map(([version, names], i) => ({ version, clusters: names.length, ...(i > 0 ? { names: names.sort().slice(0, MAX_VERSION_NAMES) } : {}) }));
}

/**
 * The history version whose contents are `contentsID`: the one pinned by `pinnedDigest` when it has them
 * (two versions may share contents: a revert in git), else the newest with them.
 */
export function versionOf(history: readonly BundleVersionEntry[] | undefined, contentsID: string, pinnedDigest?: string): number | undefined {
  const same = (history ?? []).filter((e) => (e.contentsID ?? e.digest) === contentsID);
  return (same.find((e) => e.digest === pinnedDigest) ?? same.at(-1))?.version;
}

/** The rollback in force, as the Bundle's `status.rollback` shows it. */
export type RollbackStatus = NonNullable<BundleStatus['rollback']>;

/** A person-readable account of a rollback in force, for the RolledBack condition and Ready. */
export function rollbackMessage(rollback: RollbackStatus): string {
  const waits =
    rollback.newestVersion !== undefined && rollback.newestVersion !== rollback.version ? `; the newest version v${rollback.newestVersion} waits for them` : '';
  const count = rollback.clusterCount ?? rollback.clusters.length;
  return `rolled back by spec.rollback: ${count} cluster(s) (${rollback.clusters.slice(0, 10).join(', ')}${andMore(Math.min(10, rollback.clusters.length), count)}) run v${rollback.version}, out of sync with git${waits}`.slice(
    0,
    1024,
  );
}

/** The Bundle's RolledBack condition: True with {@link rollbackMessage} while a rollback is in force, absent otherwise. */
export function rollbackCondition(
  conditions: readonly Condition[],
  bundle: Pick<Bundle, 'metadata'>,
  rollback: RollbackStatus | undefined,
  now: Date,
): Condition[] {
  if (!rollback) return removeCondition(conditions, ConditionType.RolledBack);
  return setCondition(
    conditions,
    {
      type: ConditionType.RolledBack,
      status: 'True',
      reason: Reason.RolledBack,
      message: rollbackMessage(rollback),
      observedGeneration: bundle.metadata.generation,
    },
    now,
  );
}
