import { Index, deploymentsOfBundle, indexKey } from './indexes.js';
import { OwnWrites } from '../lib/kube/ownwrites.js';
import {
  API_VERSION,
  Annotation,
  ConditionType,
  Finalizer,
  Label,
  Reason,
  getCondition,
  parseDurationMs,
  setCondition,
  removeCondition,
  type Bundle,
  type BundleSpec,
  type BundleVersionEntry,
  type Condition,
  type GitRepo,
  type GitRepoStatus,
} from '../lib/api/index.js';
import { inlineFleetYamlValuesFiles } from '../lib/render/values.js';
import { contentsID, fleetYamlOptions, type LoadedBundle } from '../lib/bundle/index.js';
import { messageOf, reasonOf, StallingError } from '../lib/errors.js';
import { Controller, type Reconcile, type ReconcileResult } from '../lib/kube/controller.js';
import { reconciler, type RunState, type Step } from '../lib/kube/reconciler.js';
import type { KubeClient, KubeObject } from '../lib/kube/client.js';
import { Ref, type ControllerContext, type ControllerMetrics, type GitRepoPorts, type ReconcilerContext } from './context.js';
import { CONTROLLER_FIELD_MANAGER } from './rbac.js';
import { bundleLimitsOf } from './config.js';
import { readCommitBundles } from './render.js';
import { applyChartsStatus, sameCharts, withCommitCharts, type ChartStatus } from './charts.js';
import type { GitAuth, GitFetchTarget } from './git.js';
import { readSecretData } from './store.js';
import type { BundleStoreSession, StoredContent } from './ports.js';
import { gitRepoStatusSpec, hasFailure } from './gitrepo-status.js';
import { WrittenBundles, sameBundle } from './bundle-writes.js';
import { nextHistory, protectedDigests } from './history.js';
import { formatTime } from '../lib/util/time.js';
import { mapLimit } from '../lib/util/concurrency.js';
import { shardFilter, shardLabelsOf } from './shard.js';
import { WEBHOOK_POLLS, afterWebhookPoll, webhookPollDue, type WebhookPolls } from './webhook-match.js';
import { StorageTracker, moveRetainedVersions, storageChanged } from './migrate.js';
import { cleanUpOldStorage, recordOldStorage } from './cleanup.js';

/**
 * The GitRepo reconciler: git -> Bundles (-> OCI artifacts).
 *
 * On the reconciler skeleton (lib/kube/reconciler.ts): get -> deletion -> finalizer -> steps: poll due? -> resolve commit -> (unchanged: done) ->
 * checkout -> read + validate every bundle (all or nothing) -> store every bundle (registry or inline;
 * all or nothing) -> write Bundles, delete the ones that left git -> finally: roll up and patch status once.
 */

type GitRepoObject = GitRepo & KubeObject;
type BundleObject = Bundle & KubeObject;

const FIELD_MANAGER = CONTROLLER_FIELD_MANAGER;
const DEFAULT_POLL_MS = 15_000;
/**
 * Bundles one sync stores at once (each push also uploads its own blobs a few at a time). A commit of 1,000
 * bundles took about 35 s to store 8 at a time on the benchmark's 2 cores (bench/README.md).
 */
const STORE_CONCURRENCY = 8;

/** Per-reconcile working state; the status is computed from it once, at the end. */
export interface Run extends RunState<GitRepoObject> {
  repo: GitRepoObject;
  status: GitRepoStatus;
  /** Whether this run asked git (a poll); otherwise it only rolls up Bundle status. */
  polled?: boolean;
  auth?: GitAuth;
  /** The commit git resolved this time. */
  commit?: string;
  /** The webhook-announced commit this run already checked out, and where (the sync reuses it when git resolved that commit). */
  prefetched?: { commit: string; dir: string };
}

function setCond(run: Run, type: string, ok: boolean, reason: string, message: string): void {
  run.conditions = setCondition(
    run.conditions,
    {
      type,
      status: ok ? 'True' : 'False',
      reason,
      message: message.slice(0, 1024),
      observedGeneration: run.repo.metadata.generation,
    },
    run.now,
  );
}

/** The GitRepo's polling interval in ms. */
export function pollingIntervalMs(repo: GitRepo, fallback = DEFAULT_POLL_MS): number {
  return (repo.spec.pollingInterval && parseDurationMs(repo.spec.pollingInterval)) || fallback;
}

/** True when git must be asked again: spec changed, never fetched, or the polling interval has passed. */
export function pollDue(repo: GitRepo, now: Date, fallbackMs = DEFAULT_POLL_MS): boolean {
  const status = repo.status ?? {};
  if (status.observedGeneration !== repo.metadata.generation || !status.commit || !status.lastPollingTime) return true;
  if (repo.spec.disablePolling) return false;
  return now.getTime() - Date.parse(status.lastPollingTime) >= pollingIntervalMs(repo, fallbackMs) - 500;
}

async function gitAuth(ctx: ReconcilerContext, repo: GitRepoObject): Promise<GitAuth> {
  const auth: GitAuth = { insecureSkipTLSVerify: repo.spec.insecureSkipTLSVerify };
  if (repo.spec.caBundle) auth.caPem = Buffer.from(repo.spec.caBundle, 'base64').toString('utf8');
  if (repo.spec.clientSecretName) {
    const { data } = await readSecretData(ctx.kube, repo.metadata.namespace ?? 'default', repo.spec.clientSecretName, 'clientSecretName');
    if (data['ssh-privatekey']) auth.ssh = { privateKey: data['ssh-privatekey'], knownHosts: data.known_hosts };
    else if (data.username !== undefined && data.password !== undefined) auth.basic = { username: data.username, password: data.password };
    else throw new StallingError(Reason.SecretNotFound, `Secret ${repo.spec.clientSecretName} has neither username/password nor ssh-privatekey`);
  }
  return auth;
}

/** Builds the Bundle object for one bundle of the repository. */
export function bundleObject(repo: GitRepoObject, bundle: LoadedBundle, content: StoredContent, id: string, commit: string): BundleObject {
  const fy = inlineFleetYamlValuesFiles(bundle.fleetYaml, bundle.files, { fleetYamlName: `${bundle.dir}/fleet.yaml`, label: (p) => `${bundle.dir}/${p}` });
  const spec: BundleSpec = {
    ...fleetYamlOptions(fy),
    ...(repo.spec.targetNamespace ? { targetNamespace: repo.spec.targetNamespace } : {}),
    ...(repo.spec.serviceAccount ? { serviceAccount: repo.spec.serviceAccount } : {}),
    ...(repo.spec.keepResources !== undefined ? { keepResources: repo.spec.keepResources } : {}),
    ...(repo.spec.correctDrift ? { correctDrift: repo.spec.correctDrift } : {}),
    ...(fy.paused || repo.spec.paused ? { paused: true } : {}),
    ...(repo.spec.forceSyncGeneration ? { forceSyncGeneration: repo.spec.forceSyncGeneration } : {}),
    ...(content.oci ? { oci: content.oci } : {}),
    ...(content.resources ? { resources: content.resources } : {}),
    contentsID: id,
    ...(fy.targetCustomizations ? { targets: fy.targetCustomizations } : {}),
    // fleet.yaml overrideTargets replace the GitRepo's targets for this bundle (Fleet).
    ...((fy.overrideTargets ?? repo.spec.targets ?? []).length > 0 ? { targetRestrictions: fy.overrideTargets ?? repo.spec.targets } : {}),
    ...(fy.dependsOn ? { dependsOn: fy.dependsOn } : {}),
    ...(fy.rolloutStrategy ? { rolloutStrategy: fy.rolloutStrategy } : {}),
  };
  return {
    apiVersion: API_VERSION,
    kind: 'Bundle',
    metadata: {
      name: bundle.name,
      namespace: repo.metadata.namespace,
      labels: { ...(fy.labels ?? {}), ...shardLabelsOf(repo), [Label.RepoName]: repo.metadata.name, [Label.BundleName]: bundle.name },
      annotations: { [Annotation.Commit]: commit, [Annotation.SourceDir]: bundle.dir },
      // The Bundle reconciler's finalizer comes with the Bundle: a write (and a managedFields entry) less
      // per Bundle than adding it afterwards. That reconciler still adds it when it is missing.
      finalizers: [Finalizer.Bundle],
      ownerReferences: [
        { apiVersion: API_VERSION, kind: 'GitRepo', name: repo.metadata.name, uid: repo.metadata.uid ?? '', controller: true, blockOwnerDeletion: true },
      ],
    },
    spec,
  } as BundleObject;
}

/**
 * Field manager of the GitRepo reconciler's part of Bundle status: the ArtifactsStored condition. The
 * Bundle reconciler applies its own conditions with its own manager; `conditions` is a list-map keyed by
 * type, so server-side apply keeps both writers' entries whatever the order of their writes.
 */
export const ARTIFACTS_STATUS_MANAGER = 'flotilla-gitrepo-artifacts';

/**
 * The status the GitRepo reconciler applies to a Bundle: its ArtifactsStored condition and the version
 * history (`history`, else the current one: a field this manager leaves out of an apply would be removed).
 */
export function artifactsStoredStatus(
  bundle: Pick<BundleObject, 'status'> | undefined,
  ok: boolean,
  reason: string,
  message: string,
  now: Date,
  history?: BundleVersionEntry[],
): { conditions: Condition[]; history?: BundleVersionEntry[] } {
  const previous = getCondition(bundle?.status?.conditions, ConditionType.ArtifactsStored);
  const conditions = setCondition(
    previous ? [previous] : [],
    { type: ConditionType.ArtifactsStored, status: ok ? 'True' : 'False', reason, message: message.slice(0, 1024) },
    now,
  );
  const versions = history ?? bundle?.status?.history;
  return versions && versions.length > 0 ? { conditions, history: versions } : { conditions };
}

/** Applies the ArtifactsStored condition of Bundle `namespace/name` with {@link ARTIFACTS_STATUS_MANAGER}; `current` gives its transition time. */
export async function applyArtifactsStored(
  kube: Pick<KubeClient, 'applyStatus'>,
  namespace: string,
  name: string,
  current: Pick<BundleObject, 'status'> | undefined,
  ok: boolean,
  reason: string,
  message: string,
  now: Date,
  history?: BundleVersionEntry[],
): Promise<void> {
  await kube.applyStatus(
    { apiVersion: API_VERSION, kind: 'Bundle', metadata: { name, namespace }, status: artifactsStoredStatus(current, ok, reason, message, now, history) },
    ARTIFACTS_STATUS_MANAGER,
  );
}

/** The ArtifactsStored message of a stored Bundle: the reference is spec.oci.reference, not repeated (every byte of a Bundle stays in etcd). */
const STORED_MESSAGE = 'stored in the registry (spec.oci.reference)';

/** True when the Bundle already says its artifacts are stored ({@link STORED_MESSAGE}): a kept version needs no status write. */
function storedAlready(bundle: BundleObject): boolean {
  const stored = getCondition(bundle.status?.conditions, ConditionType.ArtifactsStored);
  return stored?.status === 'True' && stored.reason === Reason.Succeeded && stored.message === STORED_MESSAGE;
}

/** Sets the `ArtifactsStored` condition on a Bundle (registry errors must show on Bundles too). */
async function markBundleStorage(
  ctx: ReconcilerContext,
  namespace: string,
  name: string,
  ok: boolean,
  reason: string,
  message: string,
  bundle?: BundleObject,
  history?: BundleVersionEntry[],
): Promise<void> {
  const current = bundle ?? ctx.informers.bundles.get(`${namespace}/${name}`);
  await applyArtifactsStored(ctx.kube, namespace, name, current, ok, reason, message, ctx.now(), history).catch((err: unknown) =>
    ctx.log.warn({ bundle: `${namespace}/${name}`, err: messageOf(err) }, 'could not record artifact storage on Bundle'),
  );
}

function bundlesOf(ctx: ReconcilerContext, repo: GitRepoObject): BundleObject[] {
  return ctx.informers.bundles.byIndex(Index.repo, indexKey(repo.metadata.namespace, repo.metadata.name));
}

function deploymentsOfRepo(ctx: ReconcilerContext, repo: GitRepoObject) {
  return ctx.informers.bundleDeployments.byIndex(Index.repo, indexKey(repo.metadata.namespace, repo.metadata.name));
}

/** The Bundle's version history once `content` is stored (OCI mode; undefined in etcd mode). */
function historyAfter(
  previous: BundleObject | undefined,
  content: StoredContent,
  bundle: LoadedBundle,
  commit: string,
  commitTime: string | undefined,
  id: string,
  protect: ReadonlySet<string>,
): BundleVersionEntry[] | undefined {
  if (!content.oci || content.push?.sequence === undefined) return undefined;
  const entry: BundleVersionEntry = {
    version: content.push.sequence,
    digest: content.oci.digest,
    commit,
    ...(commitTime ? { commitTime } : {}),
    contentsID: id,
    files: bundle.files.length,
    size: bundle.files.reduce((n, f) => n + Buffer.byteLength(f.content), 0),
  };
  return nextHistory(previous?.status?.history, entry, content.push.deleted ?? [], protect);
}

/** Builds, stores and writes every bundle of `commit`. All or nothing up to the writes. */
async function syncCommit(
  ctx: ReconcilerContext,
  ports: GitRepoPorts,
  run: Run,
  commit: string,
  auth: GitAuth,
  written: (object: KubeObject) => void,
  bundleWrites: WrittenBundles,
): Promise<void> {
  const { repo } = run;
  const ns = repo.metadata.namespace ?? 'default';
  const dir =
    run.prefetched?.commit === commit
      ? run.prefetched.dir
      : await ports.git.checkout(`${ns}/${repo.metadata.name}`, { repo: repo.spec.repo, branch: repo.spec.branch, revision: repo.spec.revision, auth }, commit);
  let bundles: LoadedBundle[];
  let charts: Map<string, ChartStatus[]>;
  try {
    bundles = await readCommitBundles(
      ctx.config,
      dir,
      { repoName: repo.metadata.name, paths: repo.spec.paths, limits: bundleLimitsOf(ctx.config) },
      `${ns}/${repo.metadata.name}`,
      commit,
    );
    ({ bundles, charts } = await withCommitCharts(ctx.kube, repo, bundles, bundleLimitsOf(ctx.config), ports.charts?.fetch, ports.charts?.build));
  } catch (err) {
    setCond(run, ConditionType.BundlesBuilt, false, reasonOf(err, Reason.InvalidBundle), `commit ${commit.slice(0, 12)}: ${messageOf(err)}`);
    throw err;
  }
  setCond(run, ConditionType.BundlesBuilt, true, Reason.Succeeded, `${bundles.length} bundle(s) from commit ${commit.slice(0, 12)}`);

  const stored = new Map<string, { content: StoredContent; id: string; history?: BundleVersionEntry[] }>();
  const store = await ports.store.open(repo);
  const { registry } = store;
  // Storage migration (controller/migrate.ts): the same contents IDs in the new storage, so nothing downstream is re-applied.
  const storage = new StorageTracker(ctx.kube, (o, t, r, m) => ctx.events.emit(o, t, r, m), repo, store, bundles.length, run.now, written);
  await storage.begin();
  if (storage.migration) await recordOldStorage(ctx.kube, FIELD_MANAGER, repo, storage.migration.from, bundlesOf(ctx, repo), deploymentsOfRepo(ctx, repo));
  const commitTime = registry ? await ports.git.commitTime?.(`${ns}/${repo.metadata.name}`, commit) : undefined;
  // Bundles are stored a few at a time (each push is its own set of requests to the registry); a migration
  // stores one at a time, its progress writes in order. The first failure starts no further push.
  let failure: { bundle: string; err: unknown } | undefined;
  try {
    await mapLimit(
      bundles,
      storage.migration ? 1 : STORE_CONCURRENCY,
      async (source) => {
        let bundle = source;
        let id = contentsID(bundle.files);
        try {
          // The images lock is part of the version (controller/images.ts), so it counts in the contents ID.
          if (store.prepare) {
            bundle = await store.prepare(source);
            id = contentsID(bundle.files);
          }
          // Retention keeps what is pinned, rolled back to or still running (controller/history.ts).
          let previous = ctx.informers.bundles.get(`${ns}/${bundle.name}`);
          const protect = protectedDigests(previous, deploymentsOfBundle(ctx.informers, ns, bundle.name));
          if (storage.migration) {
            const current = { contentsID: id, files: bundle.files };
            const moved = await moveRetainedVersions(store, ctx.kube, bundle.name, previous, deploymentsOfBundle(ctx.informers, ns, bundle.name), current);
            await storage.copied(moved.moved);
            // etcd to a registry: the history names the versions as the registry now holds them (controller/migrate-etcd.ts).
            if (previous && moved.history) previous = { ...previous, status: { ...previous.status, history: moved.history } };
            for (const digest of moved.protect ?? []) protect.add(digest);
          }
          // A bundle this commit left as it was keeps its version (controller/store.ts): a commit costs the
          // registry what it changed, not a tag listing and a manifest read per bundle of the repository.
          const current = storage.migration || !previous ? undefined : { contentsID: previous.spec.contentsID, oci: previous.spec.oci };
          const content = await store.store(bundle, commit, id, { ...(commitTime ? { commitTime } : {}), protect, ...(current ? { current } : {}) });
          stored.set(bundle.name, { content, id, history: historyAfter(previous, content, bundle, commit, commitTime, id, protect) });
          await storage.stored(stored.size);
        } catch (err) {
          failure ??= { bundle: bundle.name, err };
          throw err;
        }
      },
      { stopOnFailure: true },
    ).catch(() => undefined);
  } finally {
    await store.close();
  }
  if (failure) {
    const { bundle, err } = failure;
    await storage.failed(`bundle ${bundle}: ${messageOf(err)}`);
    run.status.storage = storage.storage();
    if (!registry) throw err;
    const message = `storing bundle ${bundle} in ${registry.reference} failed: ${messageOf(err)}`;
    const reason = reasonOf(err, Reason.ArtifactPushFailed);
    ctx.log.error({ gitrepo: `${ns}/${repo.metadata.name}`, bundle, registry: registry.reference, reason, err: messageOf(err) }, 'artifact push failed');
    // Nothing of this commit is applied: every Bundle of the repository keeps its last good artifact and says why.
    for (const existing of bundlesOf(ctx, repo)) await markBundleStorage(ctx, ns, existing.metadata.name, false, reason, message, existing);
    setCond(run, ConditionType.ArtifactsStored, false, reason, message);
    throw err;
  }
  if (registry) {
    const pushed = [...stored.values()].reduce((n, s) => n + (s.content.push?.pushedBlobs ?? 0), 0);
    setCond(run, ConditionType.ArtifactsStored, true, Reason.Succeeded, `${stored.size} artifact(s) in ${registry.reference} (${pushed} blob(s) uploaded)`);
  } else {
    run.conditions = removeCondition(run.conditions, ConditionType.ArtifactsStored);
  }

  // Every bundle is built and stored: now, and only now, write the Bundles.
  await storage.switching();
  run.status.commit = commit;
  // One at a time, on purpose: with 1,000 bundles on 10 clusters, writing 8 at once finished the writes sooner
  // but the whole rollout later (203 s against 161 s) and raised the controller's peak from 133 to 169 MiB,
  // because every Bundle written starts a Bundle reconcile and a GitRepo roll-up on the same API server; one
  // at a time paces the rollout at what the rest can follow (bench/README.md).
  // A Bundle the commit left as it was is not written (controller/bundle-writes.ts): it keeps the commit that last
  // changed it, and no Bundle pass or roll-up starts for it.
  const repoKey = `${ns}/${repo.metadata.name}`;
  for (const bundle of bundles) {
    const s = stored.get(bundle.name);
    if (!s) continue;
    const desired = bundleObject(repo, bundle, s.content, s.id, commit);
    const live = bundleWrites.get(`${ns}/${bundle.name}`);
    let applied: BundleObject;
    if (live && sameBundle(live, desired, FIELD_MANAGER)) {
      applied = live;
    } else {
      applied = await ctx.kube.apply<BundleObject>(desired, FIELD_MANAGER);
      bundleWrites.record(repoKey, live, applied);
    }
    // The charts as fetched this time; an unchanged record is not written again (each write is a Bundle event).
    const fetched = charts.get(bundle.name) ?? [];
    if (!sameCharts(applied.status?.charts, fetched)) {
      const written = await applyChartsStatus<BundleObject>(ctx.kube, ns, bundle.name, fetched);
      bundleWrites.record(repoKey, applied, written);
      applied = written;
    }
    if (registry && !(s.content.push?.reused && storedAlready(applied))) {
      await markBundleStorage(ctx, ns, bundle.name, true, Reason.Succeeded, STORED_MESSAGE, applied, s.history);
    }
  }
  await storage.done();
  run.status.storage = storage.storage();
  const keep = new Set(bundles.map((b) => b.name));
  for (const old of bundlesOf(ctx, repo).filter((b) => !keep.has(b.metadata.name))) {
    await ctx.kube.delete(Ref.bundle(ns, old.metadata.name));
    if (registry) await deleteArtifactsQuietly(ctx, ports, repo, old.metadata.name);
  }
  run.status.artifacts = registry
    ? bundles
        .slice(0, 100)
        .map((b) => ({ bundle: b.name, reference: stored.get(b.name)?.content.oci?.reference ?? '', digest: stored.get(b.name)?.content.oci?.digest ?? '' }))
    : undefined;
  if (repo.status?.commit !== commit) {
    run.status.lastSyncedCommitTime = formatTime(run.now);
    await ctx.events.emit(
      repo,
      'Normal',
      'CommitSynced',
      `commit ${commit.slice(0, 12)}: ${bundles.length} bundle(s) ${registry ? `stored in ${registry.reference}` : 'stored inline'}`,
    );
  }
}

/** Counts the blobs a push uploaded (and their bytes) or skipped: the bundle store's `onRegistryEvent` in production. */
export function countRegistryEvent(metrics: ControllerMetrics, event: { type: string; size?: number }): void {
  // 'blob-uploaded' events carry the blob's size (lib/oci/stats.ts).
  if (event.type === 'blob-uploaded') {
    metrics.blobsPushed.inc();
    metrics.bytesPushed.inc({}, event.size ?? 0);
  }
  if (event.type === 'blob-skipped') metrics.blobsSkipped.inc();
}

async function deleteArtifactsQuietly(ctx: ReconcilerContext, ports: GitRepoPorts, repo: GitRepoObject, bundleName: string): Promise<boolean> {
  let store: BundleStoreSession | undefined;
  try {
    store = await ports.store.open(repo);
    await store.deleteArtifacts(bundleName);
    return true;
  } catch (err) {
    await ctx.events.emit(
      repo,
      'Warning',
      'ArtifactDeleteFailed',
      `deleting the artifacts of bundle ${bundleName} from ${store?.registry?.reference ?? repo.status?.storage?.reference ?? 'the registry'} failed: ${messageOf(err)}`,
    );
    return false;
  } finally {
    await store?.close();
  }
}

/** Deletion: Bundles first (their finalizers remove BundleDeployments), then the artifacts; then the finalizer goes. */
async function finalize(ctx: ReconcilerContext, ports: GitRepoPorts, repo: GitRepoObject): Promise<'done' | ReconcileResult> {
  const ns = repo.metadata.namespace ?? 'default';
  const bundles = bundlesOf(ctx, repo);
  for (const b of bundles) await ctx.kube.delete(Ref.bundle(ns, b.metadata.name));
  if (bundles.length > 0) return { requeueAfterMs: 1000 };
  if ((repo.status?.artifacts ?? []).length > 0) {
    const names = new Set((repo.status?.artifacts ?? []).map((a) => a.bundle));
    let ok = true;
    for (const name of names) ok = (await deleteArtifactsQuietly(ctx, ports, repo, name)) && ok;
    if (!ok) return { requeueAfterMs: 10_000 };
  }
  await ports.git.forget(`${ns}/${repo.metadata.name}`);
  return 'done';
}

/** Checks the webhook-announced `commit` out under `key` ahead of the sync; the folder, or undefined when that failed (never throws). */
async function prefetchAnnounced(git: GitRepoPorts['git'], key: string, target: GitFetchTarget, commit: string): Promise<string | undefined> {
  return await git.checkout(key, target, commit).catch(() => undefined);
}

/** The GitRepo reconcile function, on the reconciler skeleton; unit tests run it on fake ports (controller/gitrepo.test.ts). */
export function gitRepoReconciler(ctx: ReconcilerContext, ports: GitRepoPorts): Reconcile {
  const { git } = ports;
  /** The polls made for each GitRepo's announced webhook commit (controller/webhook-match.ts): a few, never a loop. */
  const webhookPolls = new Map<string, WebhookPolls>();
  const own = new OwnWrites(ctx.informers.gitRepos);
  /** The Bundles as this reconciler wrote them, while the cache lags behind (the roll-up must not see older ones). */
  const bundleWrites = new WrittenBundles(ctx.informers.bundles);
  const keyOf = (repo: GitRepoObject) => `${repo.metadata.namespace ?? 'default'}/${repo.metadata.name}`;
  /** Asks git for the commit when a poll is due; otherwise the run only rolls up Bundle status. */
  const resolve: Step<Run> = async (run) => {
    const { repo } = run;
    const key = keyOf(repo);
    const announced = webhookPollDue(repo, webhookPolls.get(key));
    if (!announced && !pollDue(repo, run.now, ctx.config.defaultPollingInterval)) return 'stop';
    if (announced) webhookPolls.set(key, afterWebhookPoll(webhookPolls.get(key), announced, undefined));
    run.polled = true;
    run.auth = await gitAuth(ctx, repo);
    ctx.metrics.gitFetches.inc();
    const target = { repo: repo.spec.repo, branch: repo.spec.branch, revision: repo.spec.revision, auth: run.auth };
    // A webhook named the commit: fetch it while git is asked where the ref points. What git answers is
    // still what gets synced: the sync uses this checkout only when git answered the announced commit, and
    // checks its answer out otherwise; a failed prefetch is ignored.
    const prefetch = announced ? prefetchAnnounced(git, key, target, announced) : undefined;
    try {
      run.commit = await git.resolve(target);
      if (announced && run.commit === announced) webhookPolls.set(key, afterWebhookPoll(undefined, announced, run.commit));
    } catch (err) {
      setCond(run, ConditionType.GitFetched, false, reasonOf(err, Reason.GitOperationFailed), messageOf(err));
      throw err;
    } finally {
      // One git command at a time in the GitRepo's folder: the sync's checkout starts after this one.
      const dir = await prefetch;
      if (announced && dir) run.prefetched = { commit: announced, dir };
    }
    run.status.lastPollingTime = formatTime(run.now);
    return 'continue';
  };
  /** A new commit (or spec, or a failure to retry): build, store and write every bundle. */
  const sync: Step<Run> = async (run) => {
    const { repo } = run;
    const commit = run.commit ?? '';
    const unchanged =
      commit === repo.status?.commit &&
      repo.status.observedGeneration === repo.metadata.generation &&
      !hasFailure(repo) &&
      !(await storageChanged(ports.store, repo));
    // The migration's progress writes: read back by the next reconcile (OwnWrites), and the base the final
    // status write diffs against (RunState.statusWritten), so the final write never leaves a progress value.
    const written = (w: KubeObject) => {
      own.record(keyOf(repo), run.statusWritten ?? repo, w);
      run.statusWritten = w;
    };
    if (!unchanged) await syncCommit(ctx, ports, run, commit, run.auth ?? {}, written, bundleWrites);
    const deleteFrom = ports.store.deleteFrom?.bind(ports.store);
    run.status.storage = await cleanUpOldStorage(ctx.kube, deleteFrom, repo, run.status.storage, bundlesOf(ctx, repo), deploymentsOfRepo(ctx, repo));
    setCond(run, ConditionType.GitFetched, true, Reason.Succeeded, `commit ${commit.slice(0, 12)}`);
    run.status.observedGeneration = repo.metadata.generation;
    return 'continue';
  };
  return reconciler<GitRepoObject, Run>({
    name: 'gitrepo',
    log: ctx.log,
    now: ctx.now,
    kube: ctx.kube,
    // The informer's GitRepo with this reconciler's own writes: Bundle status changes trigger most
    // reconciles of a rollout, and each GET cost a request.
    get: async (key) => own.get(key),
    ownWrites: own,
    finalizer: { name: Finalizer.GitRepo, finalize: async (repo) => await finalize(ctx, ports, repo) },
    start: (repo, now) => ({ object: repo, repo, now, status: { ...(repo.status ?? {}) }, conditions: [...(repo.status?.conditions ?? [])] }),
    steps: () => [resolve, sync],
    status: gitRepoStatusSpec(ctx, (repo) => bundleWrites.of(keyOf(repo), bundlesOf(ctx, repo))),
    requeue: (run) => {
      if (run.repo.spec.disablePolling) return {};
      // Polls go on whatever happened; a transient failure backs off at most to the polling interval, so a
      // recovered git server or registry is noticed when the GitRepo would have been polled anyway.
      const pollMs = pollingIntervalMs(run.repo, ctx.config.defaultPollingInterval);
      // Git did not serve the announced commit yet (a lagging replica): look again soon, a few times.
      const tried = webhookPolls.get(keyOf(run.repo));
      if (run.polled && tried && tried.polls < WEBHOOK_POLLS && run.commit !== tried.commit)
        return { requeueAfterMs: Math.min(2000 * tried.polls, pollMs), maxBackoffMs: pollMs };
      return { requeueAfterMs: pollMs, maxBackoffMs: pollMs };
    },
  });
}

/** Creates the GitRepo controller: {@link gitRepoReconciler} fed by the GitRepo and Bundle informers. */
export function setupGitRepoController(ctx: ControllerContext, ports: GitRepoPorts): Controller {
  const controller = new Controller('gitrepo', gitRepoReconciler(ctx, ports), {
    log: ctx.log,
    workers: ctx.config.workers,
    observer: observer(ctx),
    accepts: shardFilter(ctx.informers.gitRepos, ctx.config.shardId),
  });
  controller.watch(ctx.informers.gitRepos);
  // Bundle status changes roll up into the GitRepo (no git work: the poll is not due).
  controller.watch(ctx.informers.bundles, (b) => {
    const repoName = b.metadata.labels?.[Label.RepoName];
    return repoName ? [`${b.metadata.namespace}/${repoName}`] : [];
  });
  return controller;
}

/** Shared observer that feeds reconcile metrics. */
export function observer(ctx: Pick<ReconcilerContext, 'metrics'>) {
  return {
    observe(controller: string, outcome: 'success' | 'error', seconds: number) {
      ctx.metrics.reconciles.inc({ controller, outcome });
      if (outcome === 'error') ctx.metrics.reconcileErrors.inc({ controller });
      ctx.metrics.reconcileDuration.observe({ controller }, seconds);
    },
  };
}
