import { createHmac } from 'node:crypto';
import { expect } from 'chai';
import { detectEvent, isPush, readPush } from './webhook-payload.js';
import { secretFor, verifyCall, type Provider } from './webhook-verify.js';

const BODY = Buffer.from('{"ref":"refs/heads/main"}');
const SECRET = 'test-secret-1';
const hex = (secret: string, body = BODY) => createHmac('sha256', secret).update(body).digest('hex');

describe('webhook verification', () => {
  const cases: { provider: Provider; good: string; bad: string }[] = [
    { provider: 'github', good: `sha256=${hex(SECRET)}`, bad: `sha256=${hex('other')}` },
    { provider: 'gitea', good: hex(SECRET), bad: hex('other') },
    { provider: 'gogs', good: hex(SECRET), bad: `${hex(SECRET).slice(0, 63)}0` },
    { provider: 'bitbucket', good: `sha256=${hex(SECRET)}`, bad: hex(SECRET) },
    { provider: 'bitbucket-server', good: `sha256=${hex(SECRET)}`, bad: 'sha256=zz' },
    { provider: 'gitlab', good: SECRET, bad: `${SECRET}x` },
  ];
  for (const c of cases) {
    it(`${c.provider}: accepts the right credential, refuses a wrong or missing one`, () => {
      expect(verifyCall(c.provider, c.good, BODY, SECRET)).to.equal('ok');
      expect(verifyCall(c.provider, c.bad, BODY, SECRET)).to.equal('mismatch');
      expect(verifyCall(c.provider, undefined, BODY, SECRET)).to.equal('missing');
    });
  }

  it('refuses a signature of other bytes', () => {
    expect(verifyCall('github', `sha256=${hex(SECRET, Buffer.from('{}'))}`, BODY, SECRET)).to.equal('mismatch');
  });

  it("reads each provider's key of a webhook Secret (Gitea falls back to Gogs's)", () => {
    expect(secretFor('github', { github: 'g', gitlab: 'l' })).to.equal('g');
    expect(secretFor('gitea', { gogs: 'o' })).to.equal('o');
    expect(secretFor('bitbucket-server', { bitbucket: 'b' })).to.equal(undefined);
    expect(secretFor('gitlab', undefined)).to.equal(undefined);
  });
});

describe('webhook payloads', () => {
  it('detects the provider, the most specific header first', () => {
    expect(detectEvent({ 'x-gitea-event': 'push', 'x-gogs-event': 'push', 'x-github-event': 'push' })?.provider).to.equal('gitea');
    expect(detectEvent({ 'x-gogs-event': 'push', 'x-github-event': 'push' })?.provider).to.equal('gogs');
    expect(detectEvent({ 'x-github-event': 'ping' })).to.deep.equal({ provider: 'github', event: 'ping' });
    expect(detectEvent({ 'x-gitlab-event': 'Push Hook' })?.provider).to.equal('gitlab');
    expect(detectEvent({ 'x-event-key': 'repo:push' })?.provider).to.equal('bitbucket');
    expect(detectEvent({ 'x-event-key': 'repo:refs_changed' })?.provider).to.equal('bitbucket-server');
    expect(detectEvent({ 'user-agent': 'curl' })).to.equal(undefined);
  });

  const C = 'c'.repeat(40);
  const cases: { name: string; headers: Record<string, string>; body: unknown; urls: string[]; ref: string }[] = [
    {
      name: 'GitHub',
      headers: { 'x-github-event': 'push' },
      body: { ref: 'refs/heads/main', after: C, repository: { html_url: 'https://github.com/o/a', clone_url: 'https://github.com/o/a.git' } },
      urls: ['https://github.com/o/a', 'https://github.com/o/a.git'],
      ref: 'refs/heads/main',
    },
    {
      name: 'GitLab',
      headers: { 'x-gitlab-event': 'Push Hook' },
      body: { ref: 'refs/heads/main', checkout_sha: C, project: { web_url: 'https://gitlab.com/o/a', git_ssh_url: 'git@gitlab.com:o/a.git' } },
      urls: ['https://gitlab.com/o/a', 'git@gitlab.com:o/a.git'],
      ref: 'refs/heads/main',
    },
    {
      name: 'Bitbucket Cloud',
      headers: { 'x-event-key': 'repo:push' },
      body: { push: { changes: [{ new: { type: 'branch', name: 'main', target: { hash: C } } }] }, repository: { full_name: 'o/a' } },
      urls: ['https://bitbucket.org/o/a'],
      ref: 'refs/heads/main',
    },
    {
      name: 'Bitbucket Server',
      headers: { 'x-event-key': 'repo:refs_changed' },
      body: { changes: [{ ref: { id: 'refs/heads/main' }, toHash: C }], repository: { links: { clone: [{ href: 'https://bb.example/scm/p/a.git' }] } } },
      urls: ['https://bb.example/scm/p/a.git'],
      ref: 'refs/heads/main',
    },
  ];
  for (const c of cases) {
    it(`reads a ${c.name} push`, () => {
      const event = detectEvent(c.headers);
      if (!event) throw new Error('no event');
      expect(isPush(event)).to.equal(true);
      expect(readPush(event, c.body)).to.deep.equal({ repoUrls: c.urls, changes: [{ ref: c.ref, commit: C }] });
    });
  }

  it('reads fields of the wrong type as absent and other events as no changes', () => {
    expect(readPush({ provider: 'github', event: 'push' }, { ref: 7, repository: 'x' })).to.deep.equal({ repoUrls: [], changes: [] });
    expect(readPush({ provider: 'github', event: 'ping' }, { ref: 'refs/heads/main', after: C, repository: {} }).changes).to.deep.equal([]);
    expect(readPush({ provider: 'gitlab', event: 'Push Hook' }, null)).to.deep.equal({ repoUrls: [], changes: [] });
  });
});
