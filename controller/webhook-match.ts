import type { GitRepo } from '../lib/api/index.js';

/**
 * Which GitRepos a verified push concerns, and when the GitRepo reconciler polls because of one. Pure.
 *
 * A push names its repository by several URLs (web page, https clone, ssh clone); a GitRepo names it by
 * one of them. Both are compared in a normal form: host and path, lower case, without scheme, user,
 * port, trailing ".git" or "/", and without Bitbucket Server's "scm/" prefix of https clone URLs, so
 * `git@github.com:Org/App.git`, `ssh://git@github.com:22/org/app` and `https://github.com/org/app`
 * are one repository. (Ports are dropped because a server's ssh and https ports differ.)
 */

/** One ref a push moved: `refs/heads/<branch>` or `refs/tags/<tag>`, and the commit it points at now (absent: deleted). */
export interface PushedRef {
  ref: string;
  commit?: string;
}

/** A push, as every provider's payload is read into (controller/webhook-payload.ts). */
export interface PushEvent {
  /** Every URL the payload gives for the repository. */
  repoUrls: string[];
  changes: PushedRef[];
}

/** The normal form of a git repository URL (see the module comment); '' when it has no host and path. */
export function normaliseRepoUrl(url: string): string {
  let rest = url.trim().toLowerCase();
  const scheme = /^[a-z][a-z0-9+.-]*:\/\//.exec(rest);
  if (scheme) {
    rest = rest.slice(scheme[0].length);
  } else {
    // scp-like ssh syntax: [user@]host:path
    const scp = /^(?:[^@/]+@)?([^:/]+):(?!\d+\/)(.*)$/.exec(rest);
    if (scp) rest = `${scp[1]}/${scp[2]}`;
  }
  rest = rest.replace(/^[^@/]*@/, ''); // user[:password]@
  const slash = rest.indexOf('/');
  const host = (slash < 0 ? rest : rest.slice(0, slash)).replace(/:\d*$/, '');
  let path = slash < 0 ? '' : rest.slice(slash + 1);
  path = path
    .replace(/[?#].*$/, '')
    .replace(/\/+$/, '')
    .replace(/\.git$/, '')
    .replace(/\/+$/, '');
  path = path.replace(/^scm\//, '');
  return host && path ? `${host}/${path}` : '';
}

/** The ref a GitRepo follows: its revision as a tag when set, else its branch (default "master", as in Fleet). */
export function followedRef(repo: Pick<GitRepo, 'spec'>): string {
  return repo.spec.revision ? `refs/tags/${repo.spec.revision}` : `refs/heads/${repo.spec.branch ?? 'master'}`;
}

/**
 * The commit `push` announces for `repo`: the new commit of the ref it follows when the push is of its
 * repository; undefined when the push concerns another repository or ref, or deleted the ref.
 */
export function announcedCommit(repo: Pick<GitRepo, 'spec'>, push: PushEvent): string | undefined {
  const own = normaliseRepoUrl(repo.spec.repo);
  if (!own || !push.repoUrls.some((u) => normaliseRepoUrl(u) === own)) return undefined;
  const ref = followedRef(repo);
  const change = push.changes.find((c) => c.ref === ref);
  return change?.commit && !/^0+$/.test(change.commit) ? change.commit : undefined;
}

/** Whether `push` is of the repository `repo` follows (whatever the ref): its secrets then verify the call. */
export function sameRepository(repo: Pick<GitRepo, 'spec'>, push: Pick<PushEvent, 'repoUrls'>): boolean {
  const own = normaliseRepoUrl(repo.spec.repo);
  return own !== '' && push.repoUrls.some((u) => normaliseRepoUrl(u) === own);
}

/** How many polls an announced commit gets when git does not serve it yet (a git server's replicas may lag its webhook). */
export const WEBHOOK_POLLS = 3;

/** The polls made so far for a GitRepo's announced commit (remembered by the reconciler). */
export interface WebhookPolls {
  commit: string;
  polls: number;
}

/**
 * The webhook commit a GitRepo must be polled for now, if any: `status.webhookCommit` when it differs from
 * the deployed commit and has had fewer than {@link WEBHOOK_POLLS} polls (`tried`). Bounding the polls per
 * announced commit means a push whose commit git does not serve (yet, or any more) costs a few polls, not
 * a loop; the GitRepo's own polling goes on as before.
 */
export function webhookPollDue(repo: Pick<GitRepo, 'status'>, tried: WebhookPolls | undefined): string | undefined {
  const announced = repo.status?.webhookCommit;
  if (!announced || announced === repo.status?.commit) return undefined;
  const polls = tried?.commit === announced ? tried.polls : 0;
  return polls < WEBHOOK_POLLS ? announced : undefined;
}

/** The polls of `announced` after one that resolved `resolved`: done when git served the announced commit. */
export function afterWebhookPoll(tried: WebhookPolls | undefined, announced: string, resolved: string | undefined): WebhookPolls {
  const polls = tried?.commit === announced ? tried.polls : 0;
  return { commit: announced, polls: resolved === announced ? WEBHOOK_POLLS : polls + 1 };
}
