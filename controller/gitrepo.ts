import {
  API_VERSION, Annotation, ConditionType, Finalizer, Label, Reason, parseDurationMs, setCondition, removeCondition,
  type Bundle, type BundleSpec, type Condition, type GitRepo, type GitRepoStatus, type OCIRegistry,
} from '../lib/api/index.js';
import { contentsID, fleetYamlOptions, type LoadedBundle } from '../lib/bundle/index.js';
import { dispositionOf, messageOf, StallingError, TransientError } from '../lib/errors.js';
import { Controller, type ReconcileResult } from '../lib/kube/controller.js';
import { splitKey } from '../lib/kube/informer.js';
import type { KubeObject } from '../lib/kube/client.js';
import type { RegistryClient } from '../lib/oci/index.js';
import { Ref, type ControllerContext } from './context.js';
import { CONTROLLER_FIELD_MANAGER } from './rbac.js';
import { bundleLimitsOf } from './config.js';
import { readCommitBundles } from './render.js';
import type { GitAuth, GitSource } from './git.js';
import { deleteBundleArtifacts, pushCredentials, readSecretData, registryClient, storeInline, storeInRegistry, type StoredContent } from './store.js';
import { rollUpGitRepo } from './rollup.js';
import { formatTime } from '../lib/util/time.js';

/**
 * The GitRepo reconciler: git -> Bundles (-> OCI artifacts).
 *
 * get -> deletion -> finalizer -> paused? -> poll due? -> resolve commit -> (unchanged: done) ->
 * checkout -> read + validate every bundle (all or nothing) -> store every bundle (registry or inline;
 * all or nothing) -> write Bundles, delete the ones that left git -> finally: roll up and patch status once.
 */

type GitRepoObject = GitRepo & KubeObject;
type BundleObject = Bundle & KubeObject;

const FIELD_MANAGER = CONTROLLER_FIELD_MANAGER;
const DEFAULT_POLL_MS = 15_000;

/** Per-reconcile working state; the status is computed from it once, at the end. */
interface Run {
  repo: GitRepoObject;
  status: GitRepoStatus;
  conditions: Condition[];
  now: Date;
  /** The Bundles written by this run, as the API server returned them (the informer may not have them yet). */
  written: BundleObject[];
  /** Whether this run asked git (a poll); otherwise it only rolls up Bundle status. */
  polled?: boolean;
}

function setCond(run: Run, type: string, ok: boolean, reason: string, message: string): void {
  run.conditions = setCondition(run.conditions, {
    type, status: ok ? 'True' : 'False', reason, message: message.slice(0, 1024), observedGeneration: run.repo.metadata.generation,
  }, run.now);
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

async function gitAuth(ctx: ControllerContext, repo: GitRepoObject): Promise<GitAuth> {
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
  const fy = bundle.fleetYaml;
  const spec: BundleSpec = {
    ...fleetYamlOptions(fy),
    ...(repo.spec.targetNamespace ? { targetNamespace: repo.spec.targetNamespace } : {}),
    ...(repo.spec.serviceAccount ? { serviceAccount: repo.spec.serviceAccount } : {}),
    ...(repo.spec.keepResources !== undefined ? { keepResources: repo.spec.keepResources } : {}),
    ...(repo.spec.correctDrift ? { correctDrift: repo.spec.correctDrift } : {}),
    ...(fy.paused || repo.spec.paused ? { paused: true } : {}),
    ...(repo.spec.forceSyncGeneration ? { forceSyncGeneration: repo.spec.forceSyncGeneration } : {}),
    ...content.oci ? { oci: content.oci } : {},
    ...content.resources ? { resources: content.resources } : {},
    contentsID: id,
    ...(fy.targetCustomizations ? { targets: fy.targetCustomizations } : {}),
    ...(repo.spec.targets && repo.spec.targets.length > 0 ? { targetRestrictions: repo.spec.targets } : {}),
    ...(fy.dependsOn ? { dependsOn: fy.dependsOn } : {}),
  };
  return {
    apiVersion: API_VERSION, kind: 'Bundle',
    metadata: {
      name: bundle.name, namespace: repo.metadata.namespace,
      labels: { ...(fy.labels ?? {}), [Label.RepoName]: repo.metadata.name, [Label.BundleName]: bundle.name },
      annotations: { [Annotation.Commit]: commit, [Annotation.SourceDir]: bundle.dir },
      ownerReferences: [{ apiVersion: API_VERSION, kind: 'GitRepo', name: repo.metadata.name, uid: repo.metadata.uid ?? '', controller: true, blockOwnerDeletion: true }],
    },
    spec,
  } as BundleObject;
}

/** Sets the `ArtifactsStored` condition on a Bundle (registry errors must show on Bundles too). */
async function markBundleStorage(ctx: ControllerContext, namespace: string, name: string, ok: boolean, reason: string, message: string): Promise<void> {
  const current = ctx.informers.bundles.get(`${namespace}/${name}`);
  if (!current) return;
  const conditions = setCondition(current.status?.conditions, { type: ConditionType.ArtifactsStored, status: ok ? 'True' : 'False', reason, message }, ctx.now());
  await ctx.kube.patchStatus(Ref.bundle(namespace, name), { conditions }).catch((err: unknown) =>
    ctx.log.warn({ bundle: `${namespace}/${name}`, err: messageOf(err) }, 'could not record storage failure on Bundle'));
}

function bundlesOf(ctx: ControllerContext, repo: GitRepoObject): BundleObject[] {
  return ctx.informers.bundles.list().filter((b) => b.metadata.namespace === repo.metadata.namespace && b.metadata.labels?.[Label.RepoName] === repo.metadata.name);
}

/** Builds, stores and writes every bundle of `commit`. All or nothing up to the writes. */
async function syncCommit(ctx: ControllerContext, git: GitSource, run: Run, commit: string, auth: GitAuth): Promise<void> {
  const { repo } = run;
  const ns = repo.metadata.namespace ?? 'default';
  const dir = await git.checkout(`${ns}/${repo.metadata.name}`, { repo: repo.spec.repo, branch: repo.spec.branch, revision: repo.spec.revision, auth }, commit);
  let bundles: LoadedBundle[];
  try {
    bundles = await readCommitBundles(ctx.config, dir, { repoName: repo.metadata.name, paths: repo.spec.paths, limits: bundleLimitsOf(ctx.config) },
      `${ns}/${repo.metadata.name}`, commit);
  } catch (err) {
    setCond(run, ConditionType.BundlesBuilt, false, (err as { reason?: string }).reason ?? Reason.InvalidBundle, `commit ${commit.slice(0, 12)}: ${messageOf(err)}`);
    throw err;
  }
  setCond(run, ConditionType.BundlesBuilt, true, Reason.Succeeded, `${bundles.length} bundle(s) from commit ${commit.slice(0, 12)}`);

  const stored = new Map<string, { content: StoredContent; id: string }>();
  const registry = repo.spec.ociRegistry;
  if (registry) {
    const client = registryClient(registry, await pushCredentials(ctx.kube, ns, registry), (e) => countRegistryEvent(ctx, e));
    try {
      for (const bundle of bundles) {
        const id = contentsID(bundle.files);
        try {
          stored.set(bundle.name, { content: await storeInRegistry(client, repo, bundle, commit, id, ctx.config.artifactRetention), id });
        } catch (err) {
          const message = `storing bundle ${bundle.name} in ${registry.reference} failed: ${messageOf(err)}`;
          ctx.log.error({ gitrepo: `${ns}/${repo.metadata.name}`, bundle: bundle.name, registry: registry.reference, reason: (err as { reason?: string }).reason, err: messageOf(err) }, 'artifact push failed');
          // Nothing of this commit is applied: every Bundle of the repository keeps its last good artifact and says why.
          for (const existing of bundlesOf(ctx, repo)) {
            await markBundleStorage(ctx, ns, existing.metadata.name, false, (err as { reason?: string }).reason ?? Reason.ArtifactPushFailed, message);
          }
          setCond(run, ConditionType.ArtifactsStored, false, (err as { reason?: string }).reason ?? Reason.ArtifactPushFailed, message);
          throw err;
        }
      }
    } finally {
      await client.close();
    }
    const pushed = [...stored.values()].reduce((n, s) => n + (s.content.push?.pushedBlobs ?? 0), 0);
    setCond(run, ConditionType.ArtifactsStored, true, Reason.Succeeded, `${stored.size} artifact(s) in ${registry.reference} (${pushed} blob(s) uploaded)`);
  } else {
    for (const bundle of bundles) {
      const id = contentsID(bundle.files);
      stored.set(bundle.name, { content: storeInline(bundle, ctx.config.maxBundleBytesInEtcd), id });
    }
    run.conditions = removeCondition(run.conditions, ConditionType.ArtifactsStored);
  }

  // Every bundle is built and stored: now, and only now, write the Bundles.
  run.status.commit = commit;
  for (const bundle of bundles) {
    const s = stored.get(bundle.name);
    if (!s) continue;
    run.written.push(await ctx.kube.apply<BundleObject>(bundleObject(repo, bundle, s.content, s.id, commit), FIELD_MANAGER));
    if (registry) await markBundleStorage(ctx, ns, bundle.name, true, Reason.Succeeded, `stored as ${s.content.oci?.reference ?? ''}`);
  }
  const keep = new Set(bundles.map((b) => b.name));
  for (const old of bundlesOf(ctx, repo).filter((b) => !keep.has(b.metadata.name))) {
    await ctx.kube.delete(Ref.bundle(ns, old.metadata.name));
    if (registry) await deleteArtifactsQuietly(ctx, repo, registry, old.metadata.name);
  }
  run.status.artifacts = registry
    ? bundles.slice(0, 100).map((b) => ({ bundle: b.name, reference: stored.get(b.name)?.content.oci?.reference ?? '', digest: stored.get(b.name)?.content.oci?.digest ?? '' }))
    : undefined;
  if (repo.status?.commit !== commit) {
    run.status.lastSyncedCommitTime = formatTime(run.now);
    await ctx.events.emit(repo, 'Normal', 'CommitSynced', `commit ${commit.slice(0, 12)}: ${bundles.length} bundle(s) ${registry ? `stored in ${registry.reference}` : 'stored inline'}`);
  }
}

function countRegistryEvent(ctx: ControllerContext, event: { type: string; size?: number }): void {
  // 'blob-uploaded' events carry the blob's size (lib/oci/stats.ts).
  if (event.type === 'blob-uploaded') { ctx.metrics.blobsPushed.inc(); ctx.metrics.bytesPushed.inc({}, event.size ?? 0); }
  if (event.type === 'blob-skipped') ctx.metrics.blobsSkipped.inc();
}

async function deleteArtifactsQuietly(ctx: ControllerContext, repo: GitRepoObject, registry: OCIRegistry, bundleName: string): Promise<boolean> {
  const ns = repo.metadata.namespace ?? 'default';
  let client: RegistryClient | undefined;
  try {
    client = registryClient(registry, await pushCredentials(ctx.kube, ns, registry));
    await deleteBundleArtifacts(client, registry, ns, bundleName);
    return true;
  } catch (err) {
    await ctx.events.emit(repo, 'Warning', 'ArtifactDeleteFailed', `deleting the artifacts of bundle ${bundleName} from ${registry.reference} failed: ${messageOf(err)}`);
    return false;
  } finally {
    await client?.close();
  }
}

/** Deletion: Bundles first (their finalizers remove BundleDeployments), then the artifacts, then our finalizer. */
async function finalize(ctx: ControllerContext, git: GitSource, repo: GitRepoObject): Promise<ReconcileResult | void> {
  const ns = repo.metadata.namespace ?? 'default';
  const bundles = bundlesOf(ctx, repo);
  for (const b of bundles) await ctx.kube.delete(Ref.bundle(ns, b.metadata.name));
  if (bundles.length > 0) return { requeueAfterMs: 1000 };
  const registry = repo.spec.ociRegistry;
  if (registry) {
    const names = new Set((repo.status?.artifacts ?? []).map((a) => a.bundle));
    let ok = true;
    for (const name of names) ok = (await deleteArtifactsQuietly(ctx, repo, registry, name)) && ok;
    if (!ok) return { requeueAfterMs: 10_000 };
  }
  await git.forget(`${ns}/${repo.metadata.name}`);
  const finalizers = (repo.metadata.finalizers ?? []).filter((f) => f !== Finalizer.GitRepo);
  await ctx.kube.mergePatch(Ref.gitRepo(ns, repo.metadata.name), { metadata: { finalizers, resourceVersion: repo.metadata.resourceVersion } });
}

/** Creates the GitRepo controller. */
export function setupGitRepoController(ctx: ControllerContext, git: GitSource): Controller {
  const reconcile = async (key: string): Promise<ReconcileResult | void> => {
    const { namespace = 'default', name } = splitKey(key);
    const repo = await ctx.kube.get<GitRepoObject>(Ref.gitRepo(namespace, name));
    if (!repo) return;
    if (repo.metadata.deletionTimestamp) return await finalize(ctx, git, repo);
    if (!repo.metadata.finalizers?.includes(Finalizer.GitRepo)) {
      await ctx.kube.mergePatch(Ref.gitRepo(namespace, name), { metadata: { finalizers: [...(repo.metadata.finalizers ?? []), Finalizer.GitRepo], resourceVersion: repo.metadata.resourceVersion } });
      return { requeueAfterMs: 0 };
    }
    const run: Run = { repo, status: { ...(repo.status ?? {}) }, conditions: [...(repo.status?.conditions ?? [])], now: ctx.now(), written: [] };
    const pollMs = pollingIntervalMs(repo, ctx.config.defaultPollingInterval);
    let failure: unknown;
    try {
      if (pollDue(repo, run.now, ctx.config.defaultPollingInterval)) {
        run.polled = true;
        const auth = await gitAuth(ctx, repo);
        ctx.metrics.gitFetches.inc();
        let commit: string;
        try {
          commit = await git.resolve({ repo: repo.spec.repo, branch: repo.spec.branch, revision: repo.spec.revision, auth });
        } catch (err) {
          setCond(run, ConditionType.GitFetched, false, (err as { reason?: string }).reason ?? Reason.GitOperationFailed, messageOf(err));
          throw err;
        }
        run.status.lastPollingTime = formatTime(run.now);
        const unchanged = commit === repo.status?.commit && repo.status.observedGeneration === repo.metadata.generation && !hasFailure(repo);
        if (!unchanged) await syncCommit(ctx, git, run, commit, auth);
        setCond(run, ConditionType.GitFetched, true, Reason.Succeeded, `commit ${commit.slice(0, 12)}`);
        run.status.observedGeneration = repo.metadata.generation;
      }
    } catch (err) {
      failure = err;
    } finally {
      await finishStatus(ctx, run, failure);
    }
    if (failure && dispositionOf(failure) === 'transient' && !repo.spec.disablePolling) {
      // Back off, but never beyond the polling interval: after a long git or registry outage the GitRepo
      // is tried again as soon as it would have been polled, not minutes later.
      throw new TransientError((failure as { reason?: string }).reason ?? Reason.GitOperationFailed, messageOf(failure), { cause: failure, retryAfterMs: pollMs });
    }
    if (failure && dispositionOf(failure) !== 'stalling') throw failure;
    if (repo.spec.disablePolling) return;
    return { requeueAfterMs: pollMs };
  };
  const controller = new Controller('gitrepo', reconcile, { log: ctx.log, workers: ctx.config.workers, observer: observer(ctx) });
  controller.watch(ctx.informers.gitRepos);
  // Bundle status changes roll up into the GitRepo (no git work: the poll is not due).
  controller.watch(ctx.informers.bundles, (b) => {
    const repoName = b.metadata.labels?.[Label.RepoName];
    return repoName ? [`${b.metadata.namespace}/${repoName}`] : [];
  });
  return controller;
}

function hasFailure(repo: GitRepo): boolean {
  return (repo.status?.conditions ?? []).some((c) => c.type === ConditionType.Stalled && c.status === 'True')
    || (repo.status?.conditions ?? []).some((c) => c.type === ConditionType.Ready && c.status === 'False' && c.reason !== Reason.Progressing && c.reason !== Reason.ResourcesNotReady);
}

/** Shared observer that feeds reconcile metrics. */
export function observer(ctx: ControllerContext) {
  return {
    observe(controller: string, outcome: 'success' | 'error', seconds: number) {
      ctx.metrics.reconciles.inc({ controller, outcome });
      if (outcome === 'error') ctx.metrics.reconcileErrors.inc({ controller });
      ctx.metrics.reconcileDuration.observe({ controller }, seconds);
    },
  };
}

/** Computes Ready/Stalled/Reconciling and the roll-up, then patches the status once. */
async function finishStatus(ctx: ControllerContext, run: Run, failure: unknown): Promise<void> {
  const { repo } = run;
  const written = new Map(run.written.map((b) => [b.metadata.name, b]));
  const bundles = bundlesOf(ctx, repo).map((b) => written.get(b.metadata.name) ?? b);
  const rollup = rollUpGitRepo([...bundles, ...run.written.filter((b) => !bundles.includes(b))], ctx.informers.bundleDeployments.list().filter((bd) =>
    bd.metadata.labels?.[Label.RepoName] === repo.metadata.name && bd.metadata.labels?.[Label.BundleNamespace] === repo.metadata.namespace));
  Object.assign(run.status, rollup);
  if (failure) {
    const reason = (failure as { reason?: string }).reason ?? Reason.GitOperationFailed;
    const message = messageOf(failure);
    const stalled = dispositionOf(failure) === 'stalling';
    setCond(run, ConditionType.Stalled, stalled, stalled ? reason : Reason.Progressing, stalled ? message : 'retrying');
    setCond(run, ConditionType.Reconciling, !stalled, stalled ? reason : Reason.Progressing, stalled ? 'waiting for a change to the GitRepo or its inputs' : `retrying: ${message}`);
    setCond(run, ConditionType.Ready, false, reason, message);
    run.status.display = { ...run.status.display, state: stalled ? 'Stalled' : 'Error', message: message.slice(0, 1024), error: true };
    if (!hasFailure(repo) || getReadyMessage(repo) !== message) await ctx.events.emit(repo, 'Warning', reason, message);
  } else if (!run.polled && hasFailure(repo)) {
    // A roll-up of Bundle status between polls: the last git or build failure stands until a poll says otherwise
    // (clearing it here made Stalled flap between polls and announced a recovery that had not happened).
    if (repo.status?.display) run.status.display = repo.status.display;
  } else {
    run.conditions = removeCondition(run.conditions, ConditionType.Stalled);
    setCond(run, ConditionType.Reconciling, false, Reason.Succeeded, 'reconciled');
    const ready = rollup.display?.state === 'Ready';
    setCond(run, ConditionType.Ready, ready, ready ? Reason.Succeeded : Reason.ResourcesNotReady, rollup.display?.message ?? '');
    if (hasFailure(repo)) await ctx.events.emit(repo, 'Normal', 'Recovered', `commit ${run.status.commit?.slice(0, 12) ?? ''} reconciled`);
  }
  run.status.conditions = run.conditions;
  try {
    await ctx.kube.patchStatus(Ref.gitRepo(repo.metadata.namespace ?? 'default', repo.metadata.name), run.status);
  } catch (err) {
    ctx.log.warn({ gitrepo: `${repo.metadata.namespace}/${repo.metadata.name}`, err: messageOf(err) }, 'status patch failed');
  }
}

function getReadyMessage(repo: GitRepo): string | undefined {
  return repo.status?.conditions?.find((c) => c.type === ConditionType.Ready)?.message;
}
