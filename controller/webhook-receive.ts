import type { GitRepo } from '../lib/api/index.js';
import type { KubeObject } from '../lib/kube/client.js';
import { announcedCommit, sameRepository } from './webhook-match.js';
import { detectEvent, isPush, readPush } from './webhook-payload.js';
import { AUTH_HEADER, secretFor, verifyCall } from './webhook-verify.js';

/**
 * What the webhook receiver does with one call, behind small ports (unit-tested with in-memory ones):
 * detect the provider -> read the payload -> find the GitRepos of the pushed repository (of this shard)
 * -> authenticate the call with each one's secret (its `spec.webhookSecret`, else the global webhook
 * Secret) -> announce the pushed commit on every GitRepo whose secret verified the call and which follows
 * the pushed ref. A call no secret verifies is refused and changes nothing: 401 when it carries no
 * signature or token, or when no secret is configured for the repository; 403 when it carries a wrong one.
 */

type GitRepoObject = GitRepo & KubeObject;

/** What the receiver reads and writes. */
export interface ReceiverPorts {
  /** The GitRepos this controller reconciles (its shard's). */
  gitRepos(): GitRepoObject[];
  /** The decoded data of Secret `namespace/name`, undefined when it does not exist. */
  readSecret(namespace: string, name: string): Promise<Record<string, string> | undefined>;
  /** The global webhook Secret (for GitRepos without `spec.webhookSecret`). */
  globalSecret: { namespace: string; name: string };
  /** Records `commit` as announced for `repo` (status.webhookCommit), which makes its reconciler poll. */
  announce(repo: GitRepoObject, commit: string): Promise<void>;
}

/** The answer to a call. */
export interface ReceiveResult {
  /** HTTP status: 200, 400, 401 or 403. */
  status: number;
  /** A short reason for the caller and the log (never a secret or a signature). */
  reason: string;
  /** `namespace/name` of the GitRepos announced a new commit. */
  triggered: string[];
  /** Provider and first repository URL of the call, for the log. */
  provider?: string;
  repository?: string;
}

const keyOf = (r: GitRepoObject) => `${r.metadata.namespace ?? 'default'}/${r.metadata.name}`;

async function secretsByValue(ports: ReceiverPorts, provider: Parameters<typeof secretFor>[0], repos: GitRepoObject[]): Promise<Map<string, GitRepoObject[]>> {
  const global = secretFor(provider, await ports.readSecret(ports.globalSecret.namespace, ports.globalSecret.name));
  const byValue = new Map<string, GitRepoObject[]>();
  // The global secret verifies calls about repositories no GitRepo follows too (a ping, a new repository).
  if (global) byValue.set(global, []);
  for (const repo of repos) {
    const name = repo.spec.webhookSecret;
    const value = name ? secretFor(provider, await ports.readSecret(repo.metadata.namespace ?? 'default', name)) : global;
    if (value) byValue.set(value, [...(byValue.get(value) ?? []), repo]);
  }
  return byValue;
}

/** Handles one call: `headers` as Node gives them (lower-case names), `body` the raw bytes received. */
export async function receive(ports: ReceiverPorts, headers: Record<string, string | string[] | undefined>, body: Buffer): Promise<ReceiveResult> {
  const event = detectEvent(headers);
  if (!event) return { status: 400, reason: 'unknown provider: no GitHub, GitLab, Gitea, Gogs or Bitbucket event header', triggered: [] };
  let json: unknown;
  try {
    json = JSON.parse(body.toString('utf8'));
  } catch {
    return { status: 400, reason: 'the body is not JSON (configure the webhook with content type application/json)', triggered: [], provider: event.provider };
  }
  const push = readPush(event, json);
  const about = { provider: event.provider, ...(push.repoUrls[0] ? { repository: push.repoUrls[0] } : {}) };
  const candidates = ports.gitRepos().filter((r) => sameRepository(r, push));
  const secrets = await secretsByValue(ports, event.provider, candidates);
  const headerName = AUTH_HEADER[event.provider];
  const raw = headers[headerName];
  const credential = Array.isArray(raw) ? raw[0] : raw;
  if (secrets.size === 0) return { status: 401, reason: `no ${event.provider} webhook secret is configured for this repository`, triggered: [], ...about };
  if (!credential) return { status: 401, reason: `missing ${headerName} header`, triggered: [], ...about };
  const verified: GitRepoObject[] = [];
  let any = false;
  for (const [secret, repos] of secrets) {
    if (verifyCall(event.provider, credential, body, secret) !== 'ok') continue;
    any = true;
    verified.push(...repos);
  }
  if (!any) return { status: 403, reason: `${headerName} does not match the webhook secret`, triggered: [], ...about };
  if (!isPush(event)) return { status: 200, reason: `verified; ${event.event} is not a push, nothing to do`, triggered: [], ...about };
  const triggered: string[] = [];
  for (const repo of verified) {
    const commit = announcedCommit(repo, push);
    if (!commit || commit === repo.status?.webhookCommit || commit === repo.status?.commit) continue;
    await ports.announce(repo, commit);
    triggered.push(keyOf(repo));
  }
  return {
    status: 200,
    reason: triggered.length > 0 ? `fetching ${triggered.length} GitRepo(s)` : 'verified; no GitRepo follows the pushed ref',
    triggered,
    ...about,
  };
}
