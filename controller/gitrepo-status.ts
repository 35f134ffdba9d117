import { Index, indexKey } from './indexes.js';
import { BundleState, ConditionType, Reason, getCondition, type Bundle, type GitRepo } from '../lib/api/index.js';
import { dispositionOf, messageOf, reasonOf } from '../lib/errors.js';
import type { KubeObject } from '../lib/kube/client.js';
import type { StatusSpec } from '../lib/kube/reconciler.js';
import { mergeStatusWriter, type Readiness } from '../lib/kube/reconciler-status.js';
import type { ReconcilerContext } from './context.js';
import type { Run } from './gitrepo.js';
import { rollUpGitRepo } from './rollup.js';
import { dropOldStorageRecord } from './cleanup.js';
import type { StorageStatus } from './migrate.js';

/**
 * The end of a GitRepo reconcile: the roll-up of its Bundles and BundleDeployments, the Ready verdict
 * (the skeleton adds Reconciling and Stalled), the display, and the events on transitions.
 */

type GitRepoObject = GitRepo & KubeObject;

/** True when the GitRepo's status shows a git, build or storage failure (Stalled, or Ready False for a reason other than a rollout). */
export function hasFailure(repo: GitRepo): boolean {
  return (
    (repo.status?.conditions ?? []).some((c) => c.type === ConditionType.Stalled && c.status === 'True') ||
    (repo.status?.conditions ?? []).some(
      (c) => c.type === ConditionType.Ready && c.status === 'False' && c.reason !== Reason.Progressing && c.reason !== Reason.ResourcesNotReady,
    )
  );
}

/**
 * The GitRepo's Ready verdict when the steps succeeded: Ready once every Bundle shows the result of the
 * commit and every BundleDeployment is Ready for it. A roll-up between polls keeps the last git or build
 * failure until a poll says otherwise (clearing it made Stalled flap and announced a recovery that had not happened).
 */
export function gitRepoReadiness(repo: GitRepo, polled: boolean, state: string | undefined, message: string): Readiness {
  if (!polled && hasFailure(repo)) return 'unchanged';
  const ready = state === BundleState.Ready;
  return {
    status: ready ? 'True' : 'False',
    reason: ready ? Reason.Succeeded : Reason.ResourcesNotReady,
    message,
    progressing: state === BundleState.WaitApplied || state === BundleState.Pending,
  };
}

/** The status part of the GitRepo reconciler's definition; `bundlesOf` lists the GitRepo's Bundles, current (controller/bundle-writes.ts). */
export function gitRepoStatusSpec(ctx: ReconcilerContext, bundlesOf: (repo: GitRepoObject) => (Bundle & KubeObject)[]): StatusSpec<GitRepoObject, Run> {
  return {
    fallbackReason: Reason.GitOperationFailed,
    readiness(run, error) {
      const { repo } = run;
      // The cache with this reconciler's own undelivered writes, creations of this run included.
      const bundles = bundlesOf(repo);
      const bds = ctx.informers.bundleDeployments.byIndex(Index.repo, indexKey(repo.metadata.namespace, repo.metadata.name));
      const rollup = rollUpGitRepo(bundles, bds);
      Object.assign(run.status, rollup);
      if (error !== undefined) return { status: 'False', reason: reasonOf(error, Reason.GitOperationFailed), message: messageOf(error) };
      return gitRepoReadiness(repo, run.polled === true, rollup.display?.state, rollup.display?.message ?? '');
    },
    build(run, conditions, error) {
      const status = { ...run.status, conditions };
      if (error !== undefined) {
        const stalled = dispositionOf(error) === 'stalling';
        status.display = { ...status.display, state: stalled ? 'Stalled' : 'Error', message: messageOf(error).slice(0, 1024), error: true };
      } else if (!run.polled && hasFailure(run.repo) && run.repo.status?.display) {
        status.display = run.repo.status.display;
      }
      return status;
    },
    writer: mergeStatusWriter(ctx.kube),
    async transitions(run, before, after, error) {
      const { repo } = run;
      // The clean-up after a storage migration is written: only now does its record of the old registry go.
      await dropOldStorageRecord(ctx.kube, repo, before?.storage as StorageStatus | undefined, after.storage as StorageStatus | undefined);
      if (error !== undefined) {
        if (dispositionOf(error) === 'conflict') return;
        const message = messageOf(error);
        const readyMessage = getCondition(repo.status?.conditions, ConditionType.Ready)?.message;
        if (!hasFailure(repo) || readyMessage !== message) await ctx.events.emit(repo, 'Warning', reasonOf(error, Reason.GitOperationFailed), message);
      } else if (run.polled && hasFailure(repo)) {
        await ctx.events.emit(repo, 'Normal', 'Recovered', `commit ${run.status.commit?.slice(0, 12) ?? ''} reconciled`);
      }
    },
  };
}
