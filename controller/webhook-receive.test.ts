import { createHmac } from 'node:crypto';
import { expect } from 'chai';
import type { GitRepo } from '../lib/api/index.js';
import type { KubeObject } from '../lib/kube/client.js';
import { receive, type ReceiverPorts } from './webhook-receive.js';

type GitRepoObject = GitRepo & KubeObject;
const C = 'd'.repeat(40);
const URL = 'https://git.example/org/app.git';

const gitRepo = (name: string, spec: Partial<GitRepo['spec']> = {}): GitRepoObject =>
  ({
    apiVersion: 'flotilla.dev/v1alpha1',
    kind: 'GitRepo',
    metadata: { name, namespace: 'ws' },
    spec: { repo: URL, branch: 'main', ...spec },
  }) as GitRepoObject;

function ports(repos: GitRepoObject[], secrets: Record<string, Record<string, string>>): ReceiverPorts & { announced: string[] } {
  const announced: string[] = [];
  return {
    announced,
    gitRepos: () => repos,
    readSecret: async (namespace, name) => secrets[`${namespace}/${name}`],
    globalSecret: { namespace: 'sys', name: 'flotilla-webhook' },
    announce: async (repo, commit) => void announced.push(`${repo.metadata.name}@${commit}`),
  };
}

const body = (ref = 'refs/heads/main') => Buffer.from(JSON.stringify({ ref, after: C, repository: { clone_url: URL } }));
const signed = (secret: string, b: Buffer) => ({
  'x-github-event': 'push',
  'x-hub-signature-256': `sha256=${createHmac('sha256', secret).update(b).digest('hex')}`,
});

describe('webhook receiver', () => {
  it('announces the pushed commit to the GitRepos whose own secret verifies the call', async () => {
    const p = ports([gitRepo('own', { webhookSecret: 'hook' }), gitRepo('global')], {
      'ws/hook': { github: 'own-secret' },
      'sys/flotilla-webhook': { github: 'global' },
    });
    const b = body();
    const result = await receive(p, signed('own-secret', b), b);
    expect(result.status).to.equal(200);
    expect(p.announced).to.deep.equal([`own@${C}`]);
  });

  it('uses the global Secret for GitRepos without their own', async () => {
    const p = ports([gitRepo('own', { webhookSecret: 'hook' }), gitRepo('global')], {
      'ws/hook': { github: 'own-secret' },
      'sys/flotilla-webhook': { github: 'global' },
    });
    const b = body();
    expect((await receive(p, signed('global', b), b)).triggered).to.deep.equal(['ws/global']);
    expect(p.announced).to.deep.equal([`global@${C}`]);
  });

  const refusals: { name: string; headers: (b: Buffer) => Record<string, string>; secrets: Record<string, Record<string, string>>; status: number }[] = [
    { name: 'an unsigned call', headers: () => ({ 'x-github-event': 'push' }), secrets: { 'sys/flotilla-webhook': { github: 's' } }, status: 401 },
    { name: 'a wrong signature', headers: (b) => signed('wrong', b), secrets: { 'sys/flotilla-webhook': { github: 's' } }, status: 403 },
    { name: 'a call when no secret is configured', headers: (b) => signed('s', b), secrets: {}, status: 401 },
    { name: 'a call of an unknown provider', headers: () => ({ 'x-hub-signature-256': 'sha256=00' }), secrets: {}, status: 400 },
  ];
  for (const r of refusals) {
    it(`refuses ${r.name} with ${r.status} and announces nothing`, async () => {
      const p = ports([gitRepo('a')], r.secrets);
      const b = body();
      const result = await receive(p, r.headers(b), b);
      expect(result.status).to.equal(r.status);
      expect(p.announced).to.deep.equal([]);
      expect(result.reason).to.not.include('s"');
    });
  }

  it('acknowledges a verified push of another branch and announces nothing', async () => {
    const p = ports([gitRepo('a')], { 'sys/flotilla-webhook': { github: 's' } });
    const b = body('refs/heads/dev');
    const result = await receive(p, signed('s', b), b);
    expect([result.status, p.announced]).to.deep.equal([200, []]);
  });

  it('refuses a body that is not JSON with 400', async () => {
    const p = ports([gitRepo('a')], { 'sys/flotilla-webhook': { github: 's' } });
    const b = Buffer.from('payload=%7B%7D');
    expect((await receive(p, signed('s', b), b)).status).to.equal(400);
  });
});
