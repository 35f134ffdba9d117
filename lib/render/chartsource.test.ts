import { expect } from 'chai';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { DEFAULT_BUNDLE_LIMITS } from '../bundle/index.js';
import { FlotillaError } from '../errors.js';
import { ChartScope, repositoryIndex, type FetchSettings } from './chartsource.js';

describe("a commit's chart scope: each repository index downloaded once", () => {
  let server: Server;
  let base: string;
  /** Requests so far: path and the user of their basic auth. */
  const requests: { path: string; user: string }[] = [];
  /** Answers to give before the index (status codes); then 200. */
  const failures: number[] = [];
  before(async () => {
    server = createServer((req, res) => {
      const user =
        Buffer.from((req.headers.authorization ?? '').replace(/^Basic /, ''), 'base64')
          .toString()
          .split(':')[0] ?? '';
      requests.push({ path: req.url ?? '', user });
      const status = failures.shift() ?? 200;
      res.writeHead(status).end(status === 200 ? `apiVersion: v1\nentries: {}\n# for ${user}\n` : 'busy\n');
    });
    await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    await new Promise((ok) => server.close(ok));
  });
  beforeEach(() => {
    requests.length = 0;
    failures.length = 0;
  });
  const settings = (scope?: ChartScope): FetchSettings => ({ helmPath: 'helm', timeoutMs: 5000, limits: DEFAULT_BUNDLE_LIMITS, scope });

  it('shares the index between the bundles of a commit that read it with the same credentials', async () => {
    const scope = new ChartScope();
    const one = await repositoryIndex(`${base}/stable`, { username: 'a' }, settings(scope), 'bundle one');
    const two = await repositoryIndex(`${base}/stable`, { username: 'a' }, settings(scope), 'bundle two');
    expect(two).to.equal(one);
    const other = await repositoryIndex(`${base}/stable`, { username: 'b' }, settings(scope), 'bundle three');
    await repositoryIndex(`${base}/incubator`, { username: 'a' }, settings(scope), 'bundle four');
    expect(other.toString()).to.contain('for b');
    expect(requests).to.deep.equal([
      { path: '/stable/index.yaml', user: 'a' },
      { path: '/stable/index.yaml', user: 'b' },
      { path: '/incubator/index.yaml', user: 'a' },
    ]);
    expect(scope.downloads).to.equal(3);
  });

  it('downloads at every call without a scope, and in each new scope (the next commit)', async () => {
    await repositoryIndex(`${base}/stable`, {}, settings(), 'bundle one');
    await repositoryIndex(`${base}/stable`, {}, settings(), 'bundle two');
    await repositoryIndex(`${base}/stable`, {}, settings(new ChartScope()), 'bundle one');
    await repositoryIndex(`${base}/stable`, {}, settings(new ChartScope()), 'bundle one');
    expect(requests).to.have.length(4);
  });

  it('does not share a failure: the next bundle downloads again, and each error names its own bundle', async () => {
    const scope = new ChartScope();
    failures.push(503);
    const err = await repositoryIndex(`${base}/stable`, {}, settings(scope), 'bundle one').catch((e: unknown) => e);
    expect(err).to.be.instanceOf(FlotillaError);
    expect((err as Error).message)
      .to.contain('bundle one')
      .and.contain('503');
    const index = await repositoryIndex(`${base}/stable`, {}, settings(scope), 'bundle two');
    expect(index.toString()).to.contain('entries');
    expect(requests).to.have.length(2);
  });
});
