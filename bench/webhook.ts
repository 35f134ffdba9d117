import { createHmac, randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import { applyGitRepo, deleteGitRepo, type BenchStack } from './lib/fleet.js';
import { RolloutObserver } from './lib/observer.js';
import { REAL_LABEL, type RealFleet } from './lib/realfleet.js';
import { summarizeSample, type Summary } from './lib/stats.js';

/**
 * Webhook latency: commit (push returned) -> GitHub-style push webhook sent to the controller's receiver
 * -> new content deployed and Ready on the 2 real clusters, the GitRepo polling git only every hour, so
 * every rollout is the webhook's. Commits come one after the other. The receiver listens on the address
 * main.ts hands the controller (FLOTILLA_WEBHOOK_ADDRESS); the global webhook Secret authenticates calls.
 * Target (issue 19): p95 within 2 s.
 */

/** What the scenario measured, ms. */
export interface WebhookResult {
  clusters: number;
  commits: number;
  /** Commit -> Ready on every target cluster. */
  allReady: Summary;
  /** Commit -> webhook answered (the receiver's own time, network included). */
  webhookAnswer: Summary;
  /** Commit -> Bundle with the new contents (fetch, build, store). */
  controller: Summary;
  /** Commit -> every BundleDeployment written with the new deployment ID (the Bundle reconciler's fan-out). */
  deployments: Summary;
}

const SECRET_NAME = 'flotilla-webhook';
const SYSTEM_NAMESPACE = 'flotilla-system';

/** Sends a signed GitHub push of `sha` for `repoUrl`; throws unless the receiver triggered a fetch. */
async function announce(port: number, secret: string, repoUrl: string, sha: string): Promise<void> {
  const body = JSON.stringify({ ref: 'refs/heads/main', after: sha, repository: { clone_url: repoUrl } });
  const signature = `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
  const res = await request(`http://127.0.0.1:${port}/`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-github-event': 'push', 'x-hub-signature-256': signature },
    body,
  });
  const text = await res.body.text();
  if (res.statusCode !== 200 || !text.includes('fetching')) throw new Error(`webhook answered ${res.statusCode}: ${text.trim()}`);
}

/** Runs the scenario on the real fleet, whose controller serves webhooks on 127.0.0.1:`port`. */
export async function benchWebhook(s: BenchStack, fleet: RealFleet, port: number, commits: number, say: (m: string) => void): Promise<WebhookResult> {
  const secret = randomBytes(16).toString('hex');
  await s.up.apply({ apiVersion: 'v1', kind: 'Secret', metadata: { name: SECRET_NAME, namespace: SYSTEM_NAMESPACE }, stringData: { github: secret } }, 'bench');
  const repo = s.unique('hook-real');
  const repoUrl = `${s.desc.git?.url ?? ''}/${repo}.git`;
  const file = (round: number) => `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: hook\ndata:\n  round: "${round}"\n`;
  await s.git.createRepo(repo);
  await s.git.commit(repo, { 'app/cm.yaml': file(0), 'app/fleet.yaml': 'defaultNamespace: bench-webhook\n' }, 'webhook bundle');
  const observer = new RolloutObserver(s.up, repo);
  await observer.start();
  const expected = fleet.agents.length;
  const done = async (previous: string | undefined, timeoutMs: number) => {
    for (const deadline = Date.now() + timeoutMs; Date.now() < deadline; await sleep(20)) {
      const id = observer.contentsID();
      const m = id !== undefined && id !== previous ? observer.complete(id, expected) : undefined;
      if (id !== undefined && m) return { id, m };
    }
    throw new Error(`a commit did not reach ${expected} cluster(s) within ${timeoutMs / 1000} s (polling is 1 h: did the webhook trigger?)`);
  };
  const all: number[] = [];
  const answers: number[] = [];
  const controller: number[] = [];
  const deployments: number[] = [];
  try {
    await applyGitRepo(s, {
      name: repo,
      repo,
      paths: ['app'],
      targets: [{ clusterSelector: { matchLabels: { [REAL_LABEL]: 'true' } } }],
      pollingInterval: '1h',
    });
    let previous = (await done(undefined, 600_000)).id;
    say(`webhook: first rollout done; measuring ${commits} commits`);
    for (let round = 1; round <= commits; round++) {
      const sha = await s.git.commit(repo, { 'app/cm.yaml': file(round) }, `round ${round}`);
      const t0 = Date.now();
      await announce(port, secret, repoUrl, sha);
      answers.push(Date.now() - t0);
      const { id, m } = await done(previous, 120_000);
      previous = id;
      all.push(Math.max(...m.deployments.map((d) => d.ready)) - t0);
      controller.push(m.bundle - t0);
      deployments.push(Math.max(...m.deployments.map((d) => d.seen)) - t0);
    }
  } finally {
    await observer.stop();
  }
  await deleteGitRepo(s.up, repo);
  return {
    clusters: expected,
    commits,
    allReady: summarizeSample(all),
    webhookAnswer: summarizeSample(answers),
    controller: summarizeSample(controller),
    deployments: summarizeSample(deployments),
  };
}
