import type { PushEvent, PushedRef } from './webhook-match.js';
import type { Provider } from './webhook-verify.js';

/**
 * Reading webhook calls: which provider sent it (from its event header) and, for a push, which repository
 * and refs it moved. Pure; the payload is untrusted JSON already bounded in size, read field by field
 * (a field of the wrong type reads as absent), so a hostile body can only fail to match.
 */

/** A call's provider and event name. */
export interface WebhookEvent {
  provider: Provider;
  event: string;
}

type Headers = Record<string, string | string[] | undefined>;

const header = (headers: Headers, name: string): string | undefined => {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
};

/**
 * The provider and event of a call, from its headers; undefined when no provider's event header is there.
 * Gitea also sends Gogs's and GitHub's headers, and Gogs GitHub's, so the most specific one is read first.
 */
export function detectEvent(headers: Headers): WebhookEvent | undefined {
  const gitea = header(headers, 'x-gitea-event');
  if (gitea) return { provider: 'gitea', event: gitea };
  const gogs = header(headers, 'x-gogs-event');
  if (gogs) return { provider: 'gogs', event: gogs };
  const github = header(headers, 'x-github-event');
  if (github) return { provider: 'github', event: github };
  const gitlab = header(headers, 'x-gitlab-event');
  if (gitlab) return { provider: 'gitlab', event: gitlab };
  const bitbucket = header(headers, 'x-event-key');
  // repo:refs_changed and diagnostics:ping are Bitbucket Server's; repo:push is Bitbucket Cloud's.
  if (bitbucket) return { provider: bitbucket === 'repo:push' ? 'bitbucket' : 'bitbucket-server', event: bitbucket };
  return undefined;
}

/** Whether the event is a push (the only events that trigger a fetch; others are verified and acknowledged). */
export function isPush({ provider, event }: WebhookEvent): boolean {
  switch (provider) {
    case 'gitlab':
      return event === 'Push Hook' || event === 'Tag Push Hook';
    case 'bitbucket':
      return event === 'repo:push';
    case 'bitbucket-server':
      return event === 'repo:refs_changed';
    default:
      return event === 'push';
  }
}

type Json = Record<string, unknown>;
const obj = (v: unknown): Json => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Json) : {});
const str = (v: unknown): string | undefined => (typeof v === 'string' && v.length > 0 && v.length <= 4096 ? v : undefined);
const list = (v: unknown): unknown[] => (Array.isArray(v) ? v.slice(0, 1000) : []);
const strings = (...values: unknown[]): string[] => values.map(str).filter((s): s is string => s !== undefined);

function githubLike(body: Json): PushEvent {
  const repo = obj(body.repository);
  const ref = str(body.ref);
  return {
    repoUrls: strings(repo.html_url, repo.clone_url, repo.ssh_url, repo.git_url, repo.url),
    changes: ref ? [{ ref, ...(str(body.after) ? { commit: str(body.after) } : {}) }] : [],
  };
}

function gitlab(body: Json): PushEvent {
  const project = obj(body.project);
  const repo = obj(body.repository);
  const ref = str(body.ref);
  const commit = str(body.checkout_sha) ?? str(body.after);
  return {
    repoUrls: strings(project.web_url, project.git_http_url, project.git_ssh_url, repo.homepage, repo.git_http_url, repo.git_ssh_url),
    changes: ref ? [{ ref, ...(commit ? { commit } : {}) }] : [],
  };
}

function bitbucketCloud(body: Json): PushEvent {
  const repo = obj(body.repository);
  const fullName = str(repo.full_name);
  const changes: PushedRef[] = [];
  for (const change of list(obj(body.push).changes)) {
    const next = obj(obj(change).new);
    const name = str(next.name);
    const kind = next.type === 'tag' ? 'tags' : next.type === 'branch' ? 'heads' : undefined;
    const commit = str(obj(next.target).hash);
    if (name && kind) changes.push({ ref: `refs/${kind}/${name}`, ...(commit ? { commit } : {}) });
  }
  return {
    repoUrls: [...strings(obj(obj(repo.links).html).href), ...(fullName ? [`https://bitbucket.org/${fullName}`] : [])],
    changes,
  };
}

function bitbucketServer(body: Json): PushEvent {
  const links = obj(obj(body.repository).links);
  const changes: PushedRef[] = [];
  for (const change of list(body.changes)) {
    const c = obj(change);
    const ref = str(obj(c.ref).id);
    const commit = str(c.toHash);
    if (ref) changes.push({ ref, ...(commit ? { commit } : {}) });
  }
  return { repoUrls: strings(...list(links.clone).map((l) => obj(l).href)), changes };
}

/** The repository URLs and moved refs of a call's payload (no changes for events other than pushes). */
export function readPush(event: WebhookEvent, body: unknown): PushEvent {
  const json = obj(body);
  const push = (() => {
    switch (event.provider) {
      case 'gitlab':
        return gitlab(json);
      case 'bitbucket':
        return bitbucketCloud(json);
      case 'bitbucket-server':
        return bitbucketServer(json);
      default:
        return githubLike(json);
    }
  })();
  return isPush(event) ? push : { repoUrls: push.repoUrls, changes: [] };
}
