import { createHmac } from 'node:crypto';
import { request } from 'undici';
import { expect } from 'chai';
import { stack } from './fixture.js';
import { freePort } from '../stack/net.js';
import { API_VERSION, type GitRepo, type GitRepoSpec } from '../lib/api/index.js';
import type { KubeObject } from '../lib/kube/client.js';
import { startFleet, fleetSuiteTeardown, type Fleet } from './support/processes.js';
import { applyCredentials, gitRepoObject, gitRepoReadyAt } from './support/fleetobjects.js';

/**
 * Git webhooks on the real stack (controller with its receiver, two agents, git server): GitRepos poll
 * only every hour, so a new commit reaches the clusters within the test's time only through a webhook.
 * For every provider: an unsigned call is refused (401), a wrong signature or token is refused (403),
 * and neither changes anything; the right one makes the GitRepo fetch and become Ready at the pushed
 * commit. A push of another branch does nothing; the global Secret serves GitRepos without their own.
 */
describe('webhooks: each provider triggers a fetch only when authenticated', function () {
  this.timeout(600_000);
  const WS = 'webhooks-e2e';
  const REPO = 'webhooks-e2e-app';
  const OWN = 'hooks-own'; // GitRepo with spec.webhookSecret
  const GLOBAL = 'hooks-global'; // GitRepo served by the global Secret
  const SECRETS = { github: 'gh-own-1', gitlab: 'gl-own-2', gitea: 'gt-own-3', gogs: 'go-own-4', bitbucket: 'bb-own-5', 'bitbucket-server': 'bs-own-6' };
  const GLOBAL_SECRET = 'gh-global-7';
  let fleet: Fleet;
  let port = 0;
  const git = () => stack().git!;
  const repoUrl = () => `${git().url}/${REPO}.git`;
  const cm = (name: string, v: string) => `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${name}\ndata:\n  v: "${v}"\n`;
  const gitRepo = async (name: string) =>
    (await fleet.upstream.get<GitRepo & KubeObject>({ apiVersion: API_VERSION, kind: 'GitRepo', namespace: WS, name }))?.status ?? {};
  let n = 0;
  const commit = async (branch = 'main') => {
    n++;
    return await git().commit(REPO, { 'own/cm.yaml': cm('hooks-own', String(n)), 'global/cm.yaml': cm('hooks-global', String(n)) }, `change ${n}`, branch);
  };

  async function call(headers: Record<string, string>, body: string | Buffer, method = 'POST') {
    const res = await request(`http://127.0.0.1:${port}/`, { method: method as 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
    return { status: res.statusCode, text: await res.body.text() };
  }

  const hmac = (secret: string, body: string) => createHmac('sha256', secret).update(body).digest('hex');
  /** A push of `ref` to `sha` as each provider sends it: headers (with `secret`, or none) and body. */
  function push(provider: keyof typeof SECRETS, sha: string, secret: string | undefined, ref = 'refs/heads/main') {
    const branch = ref.replace('refs/heads/', '');
    const bodies: Record<string, unknown> = {
      github: { ref, after: sha, repository: { clone_url: repoUrl(), html_url: repoUrl().replace(/\.git$/, '') } },
      gitea: { ref, after: sha, repository: { clone_url: repoUrl() } },
      gogs: { ref, after: sha, repository: { clone_url: repoUrl() } },
      gitlab: { ref, after: sha, checkout_sha: sha, project: { git_http_url: repoUrl() } },
      bitbucket: {
        push: { changes: [{ new: { type: 'branch', name: branch, target: { hash: sha } } }] },
        repository: { links: { html: { href: repoUrl() } } },
      },
      'bitbucket-server': { changes: [{ ref: { id: ref }, toHash: sha }], repository: { links: { clone: [{ href: repoUrl(), name: 'http' }] } } },
    };
    const body = JSON.stringify(bodies[provider]);
    const sign: Record<string, (s: string) => Record<string, string>> = {
      github: (s) => ({ 'x-hub-signature-256': `sha256=${hmac(s, body)}` }),
      gitea: (s) => ({ 'x-gitea-signature': hmac(s, body) }),
      gogs: (s) => ({ 'x-gogs-signature': hmac(s, body) }),
      gitlab: (s) => ({ 'x-gitlab-token': s }),
      bitbucket: (s) => ({ 'x-hub-signature': `sha256=${hmac(s, body)}` }),
      'bitbucket-server': (s) => ({ 'x-hub-signature': `sha256=${hmac(s, body)}` }),
    };
    const event: Record<string, Record<string, string>> = {
      github: { 'x-github-event': 'push' },
      gitea: { 'x-gitea-event': 'push', 'x-gogs-event': 'push', 'x-github-event': 'push' },
      gogs: { 'x-gogs-event': 'push' },
      gitlab: { 'x-gitlab-event': 'Push Hook' },
      bitbucket: { 'x-event-key': 'repo:push' },
      'bitbucket-server': { 'x-event-key': 'repo:refs_changed' },
    };
    return { headers: { ...event[provider], ...(secret ? sign[provider]?.(secret) : {}) }, body };
  }

  before(async function () {
    this.timeout(8 * 60_000);
    port = await freePort();
    fleet = await startFleet(stack(), {
      workspace: WS,
      clusters: [
        { name: 'downstream-1', labels: { env: 'hooks' } },
        { name: 'downstream-2', labels: { env: 'hooks' } },
      ],
      controllerArgs: ['--webhook-address', `127.0.0.1:${port}`],
    });
    await applyCredentials(fleet.upstream, WS, 'webhooks-e2e', git());
    await fleet.upstream.apply({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'hooks', namespace: WS }, stringData: SECRETS }, 'webhooks-e2e');
    await fleet.upstream.apply(
      { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'flotilla-webhook', namespace: `${WS}-system` }, stringData: { github: GLOBAL_SECRET } },
      'webhooks-e2e',
    );
    await git().createRepo(REPO);
    const first = await commit();
    const repos: [string, Partial<GitRepoSpec>][] = [
      [OWN, { paths: ['own'], webhookSecret: 'hooks' }],
      [GLOBAL, { paths: ['global'] }],
    ];
    for (const [name, extra] of repos) {
      await fleet.upstream.apply(gitRepoObject(name, WS, git(), REPO, { ...extra, pollingInterval: '1h' }), 'webhooks-e2e');
    }
    await gitRepoReadyAt(fleet, WS, OWN, first, 240_000);
    await gitRepoReadyAt(fleet, WS, GLOBAL, first, 120_000);
  });
  fleetSuiteTeardown(() => fleet);

  for (const provider of Object.keys(SECRETS) as (keyof typeof SECRETS)[]) {
    it(`${provider}: refuses unsigned and wrongly signed pushes, and fetches at once on a good one`, async () => {
      const before = await gitRepo(OWN);
      const sha = await commit();
      const unsigned = push(provider, sha, undefined);
      const r401 = await call(unsigned.headers, unsigned.body);
      expect(r401.status, r401.text).to.equal(401);
      const wrong = push(provider, sha, `${SECRETS[provider]}-wrong`);
      const r403 = await call(wrong.headers, wrong.body);
      expect(r403.status, r403.text).to.equal(403);
      // A refused call writes nothing: with polling at 1 h, nothing else moves the GitRepo either.
      const after = await gitRepo(OWN);
      expect([after.webhookCommit, after.commit]).to.deep.equal([before.webhookCommit, before.commit]);

      const good = push(provider, sha, SECRETS[provider]);
      const ok = await call(good.headers, good.body);
      expect(ok.status, ok.text).to.equal(200);
      expect(ok.text).to.include('fetching 1 GitRepo');
      await gitRepoReadyAt(fleet, WS, OWN, sha, 90_000);
      expect((await gitRepo(OWN)).webhookCommit).to.equal(sha);
      // The GitRepo served by the global Secret was not triggered by the per-GitRepo secret.
      expect((await gitRepo(GLOBAL)).webhookCommit).to.not.equal(sha);
    });
  }

  it('the global Secret triggers only the GitRepos without their own secret', async () => {
    const sha = await commit();
    const good = push('github', sha, GLOBAL_SECRET);
    const ok = await call(good.headers, good.body);
    expect(ok.status, ok.text).to.equal(200);
    await gitRepoReadyAt(fleet, WS, GLOBAL, sha, 90_000);
    expect((await gitRepo(OWN)).webhookCommit).to.not.equal(sha);
  });

  it('a verified push of another branch, a call without a provider and a GET change nothing', async () => {
    const before = await gitRepo(OWN);
    const sha = await commit('dev');
    const other = push('github', sha, SECRETS.github, 'refs/heads/dev');
    const r = await call(other.headers, other.body);
    expect(r.status, r.text).to.equal(200);
    expect(r.text).to.include('no GitRepo follows the pushed ref');
    const anonymous = await call({}, JSON.stringify({ ref: 'refs/heads/main', after: sha }));
    expect(anonymous.status, anonymous.text).to.equal(400);
    const get = await request(`http://127.0.0.1:${port}/`);
    expect(get.statusCode).to.equal(405);
    await get.body.dump();
    const form = await call({ ...push('github', sha, SECRETS.github).headers, 'content-type': 'application/x-www-form-urlencoded' }, 'payload=%7B%7D');
    expect(form.status, form.text).to.equal(415);
    const huge = await call(push('github', sha, SECRETS.github).headers, Buffer.alloc(6 * 1024 * 1024, 32));
    expect(huge.status, huge.text).to.equal(413);
    const after = await gitRepo(OWN);
    expect([after.webhookCommit, after.commit]).to.deep.equal([before.webhookCommit, before.commit]);
  });

  it('never logs a secret or a signature', async () => {
    const logs = await fleet.controller.logs();
    expect(logs).to.include('webhook refused').and.include('webhook received');
    for (const s of [...Object.values(SECRETS), GLOBAL_SECRET]) expect(logs).to.not.include(s);
    expect(logs).to.not.match(/sha256=[0-9a-f]{64}/);
  });
});
