import { expect } from 'chai';
import type { GitRepo } from '../lib/api/index.js';
import { WEBHOOK_POLLS, afterWebhookPoll, announcedCommit, normaliseRepoUrl, webhookPollDue } from './webhook-match.js';

const repo = (spec: Partial<GitRepo['spec']>, status?: GitRepo['status']) => ({
  spec: { repo: 'https://github.com/org/app', ...spec },
  ...(status ? { status } : {}),
});
const C1 = 'a'.repeat(40);
const C2 = 'b'.repeat(40);

describe('webhook matching', () => {
  const same: [string, string][] = [
    ['https://github.com/Org/App.git', 'github.com/org/app'],
    ['git@github.com:org/app.git', 'github.com/org/app'],
    ['ssh://git@github.com:22/org/app', 'github.com/org/app'],
    ['https://user:pw@github.com:443/org/app/', 'github.com/org/app'],
    ['http://127.0.0.1:3000/app.git', '127.0.0.1/app'],
    ['https://bitbucket.example.com/scm/proj/app.git', 'bitbucket.example.com/proj/app'],
    ['ssh://git@bitbucket.example.com:7999/proj/app.git', 'bitbucket.example.com/proj/app'],
    ['not a url', ''],
    ['https://github.com', ''],
  ];
  for (const [url, normal] of same) {
    it(`reads ${url} as ${normal || 'no repository'}`, () => expect(normaliseRepoUrl(url)).to.equal(normal));
  }

  it('announces the commit of the followed branch for any URL form of the repository', () => {
    const push = { repoUrls: ['git@github.com:org/app.git'], changes: [{ ref: 'refs/heads/main', commit: C1 }] };
    expect(announcedCommit(repo({ branch: 'main' }), push)).to.equal(C1);
  });

  it('announces nothing for another branch, another repository, a deleted branch or a tag the GitRepo does not pin', () => {
    const main = repo({ branch: 'main' });
    expect(announcedCommit(main, { repoUrls: ['https://github.com/org/app'], changes: [{ ref: 'refs/heads/dev', commit: C1 }] })).to.equal(undefined);
    expect(announcedCommit(main, { repoUrls: ['https://github.com/org/other'], changes: [{ ref: 'refs/heads/main', commit: C1 }] })).to.equal(undefined);
    expect(announcedCommit(main, { repoUrls: ['https://github.com/org/app'], changes: [{ ref: 'refs/heads/main', commit: '0'.repeat(40) }] })).to.equal(
      undefined,
    );
    expect(announcedCommit(repo({}), { repoUrls: ['https://github.com/org/app'], changes: [{ ref: 'refs/heads/main', commit: C1 }] })).to.equal(undefined);
  });

  it('follows master by default and a tag when the GitRepo pins a revision', () => {
    const urls = ['https://github.com/org/app'];
    expect(announcedCommit(repo({}), { repoUrls: urls, changes: [{ ref: 'refs/heads/master', commit: C1 }] })).to.equal(C1);
    expect(announcedCommit(repo({ revision: 'v1' }), { repoUrls: urls, changes: [{ ref: 'refs/tags/v1', commit: C2 }] })).to.equal(C2);
  });

  it('polls for an announced commit until git serves it, at most WEBHOOK_POLLS times', () => {
    const pending = repo({}, { commit: C1, webhookCommit: C2 });
    expect(webhookPollDue(pending, undefined)).to.equal(C2);
    let tried = afterWebhookPoll(undefined, C2, C1); // git still served the old commit
    expect(webhookPollDue(pending, tried)).to.equal(C2);
    for (let i = 1; i < WEBHOOK_POLLS; i++) tried = afterWebhookPoll(tried, C2, C1);
    expect(webhookPollDue(pending, tried)).to.equal(undefined);
    expect(webhookPollDue(pending, afterWebhookPoll(undefined, C2, C2))).to.equal(undefined);
    // A newer announcement starts again.
    expect(webhookPollDue(repo({}, { commit: C1, webhookCommit: 'e'.repeat(40) }), tried)).to.equal('e'.repeat(40));
    expect(webhookPollDue(repo({}, { commit: C2, webhookCommit: C2 }), undefined)).to.equal(undefined);
    expect(webhookPollDue(repo({}, { commit: C1 }), undefined)).to.equal(undefined);
  });
});
