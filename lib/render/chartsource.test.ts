import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { createServer, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { DEFAULT_BUNDLE_LIMITS } from '../bundle/index.js';
import { FlotillaError } from '../errors.js';
import { RegistryClient } from '../oci/client.js';
import { ChartCache } from './chartcache.js';
import { ChartScope, download, repositoryIndex, type FetchSettings } from './chartsource.js';

/** Serves `handler` on a loopback port for the tests of the enclosing `describe`; returns its base URL once started. */
function localServer(handler: RequestListener): () => string {
  let server: Server | undefined;
  let base = '';
  before(async () => {
    const started = createServer(handler);
    server = started;
    await new Promise<void>((ok) => started.listen(0, '127.0.0.1', ok));
    base = `http://127.0.0.1:${(started.address() as AddressInfo).port}`;
  });
  after(async () => {
    await new Promise((ok) => server?.close(ok));
  });
  return () => base;
}

describe("a commit's chart scope: each repository index downloaded once", () => {
  /** Requests so far: path and the user of their basic auth. */
  const requests: { path: string; user: string }[] = [];
  /** Answers to give before the index (status codes); then 200. */
  const failures: number[] = [];
  const base = localServer((req, res) => {
    const user =
      Buffer.from((req.headers.authorization ?? '').replace(/^Basic /, ''), 'base64')
        .toString()
        .split(':')[0] ?? '';
    requests.push({ path: req.url ?? '', user });
    const status = failures.shift() ?? 200;
    res.writeHead(status).end(status === 200 ? `apiVersion: v1\nentries: {}\n# for ${user}\n` : 'busy\n');
  });
  beforeEach(() => {
    requests.length = 0;
    failures.length = 0;
  });
  const settings = (scope?: ChartScope): FetchSettings => ({ helmPath: 'helm', timeoutMs: 5000, limits: DEFAULT_BUNDLE_LIMITS, scope });

  it('shares the index between the bundles of a commit that read it with the same credentials', async () => {
    const scope = new ChartScope();
    const one = await repositoryIndex(`${base()}/stable`, { username: 'a' }, settings(scope), 'bundle one');
    const two = await repositoryIndex(`${base()}/stable`, { username: 'a' }, settings(scope), 'bundle two');
    expect(two).to.equal(one);
    const other = await repositoryIndex(`${base()}/stable`, { username: 'b' }, settings(scope), 'bundle three');
    await repositoryIndex(`${base()}/incubator`, { username: 'a' }, settings(scope), 'bundle four');
    expect(other.toString()).to.contain('for b');
    expect(requests).to.deep.equal([
      { path: '/stable/index.yaml', user: 'a' },
      { path: '/stable/index.yaml', user: 'b' },
      { path: '/incubator/index.yaml', user: 'a' },
    ]);
  });

  it('downloads at every call without a scope, and in each new scope (the next commit)', async () => {
    await repositoryIndex(`${base()}/stable`, {}, settings(), 'bundle one');
    await repositoryIndex(`${base()}/stable`, {}, settings(), 'bundle two');
    await repositoryIndex(`${base()}/stable`, {}, settings(new ChartScope()), 'bundle one');
    await repositoryIndex(`${base()}/stable`, {}, settings(new ChartScope()), 'bundle one');
    expect(requests).to.have.length(4);
  });

  it('does not share a failure: the next bundle downloads again, and each error names its own bundle', async () => {
    const scope = new ChartScope();
    failures.push(503);
    const err = await repositoryIndex(`${base()}/stable`, {}, settings(scope), 'bundle one').catch((e: unknown) => e);
    expect(err).to.be.instanceOf(FlotillaError);
    expect((err as Error).message)
      .to.contain('bundle one')
      .and.contain('503');
    const index = await repositoryIndex(`${base()}/stable`, {}, settings(scope), 'bundle two');
    expect(index.toString()).to.contain('entries');
    expect(requests).to.have.length(2);
  });
});

describe('chart downloads kept with their validators: a conditional GET at the next commit', () => {
  /** What the server serves now, and how it validates it. */
  let body = 'apiVersion: v1\nentries: {}\n# one\n';
  let validators: 'etag' | 'last-modified' | 'none' = 'etag';
  /** Answers 304 whatever it is asked. */
  let rogue = false;
  /** Each request: path, its conditional headers, the status answered. */
  const seen: { path: string; ifNoneMatch?: string; ifModifiedSince?: string; status: number }[] = [];
  const etagOf = (text: string) => `"${createHash('sha256').update(text).digest('hex').slice(0, 16)}"`;
  const LAST_MODIFIED = 'Tue, 01 Dec 2026 10:00:00 GMT';
  const base = localServer((req, res) => {
    const ifNoneMatch = req.headers['if-none-match'];
    const ifModifiedSince = req.headers['if-modified-since'];
    const headers: Record<string, string> =
      validators === 'etag' ? { etag: etagOf(body) } : validators === 'last-modified' ? { 'last-modified': LAST_MODIFIED } : {};
    const fresh =
      (validators === 'etag' && ifNoneMatch === etagOf(body)) ||
      (validators === 'last-modified' && ifNoneMatch === undefined && ifModifiedSince === LAST_MODIFIED);
    const status = fresh || rogue ? 304 : 200;
    seen.push({ path: req.url ?? '', ...(ifNoneMatch ? { ifNoneMatch } : {}), ...(ifModifiedSince ? { ifModifiedSince } : {}), status });
    res.writeHead(status, headers).end(status === 200 ? body : undefined);
  });
  beforeEach(() => {
    seen.length = 0;
    body = 'apiVersion: v1\nentries: {}\n# one\n';
    validators = 'etag';
    rogue = false;
  });
  const settings = (cache?: ChartCache): FetchSettings => ({
    helmPath: 'helm',
    timeoutMs: 5000,
    limits: DEFAULT_BUNDLE_LIMITS,
    cache,
    scope: new ChartScope(),
  });

  it('asks again with If-None-Match and takes 304 for the bytes it kept; a changed index comes whole', async () => {
    const lookups: boolean[] = [];
    const cache = new ChartCache(undefined, { lookup: (hit) => lookups.push(hit), held: () => {} });
    const first = await repositoryIndex(`${base()}/stable`, { username: 'a' }, settings(cache), 'bundle one');
    const again = await repositoryIndex(`${base()}/stable`, { username: 'a' }, settings(cache), 'bundle one');
    expect(again.toString()).to.equal(first.toString());
    body = 'apiVersion: v1\nentries: {}\n# two\n';
    const changed = await repositoryIndex(`${base()}/stable`, { username: 'a' }, settings(cache), 'bundle one');
    const after = await repositoryIndex(`${base()}/stable`, { username: 'a' }, settings(cache), 'bundle one');
    expect(changed.toString()).to.contain('# two');
    expect(after.toString()).to.contain('# two');
    expect(seen.map((r) => [r.ifNoneMatch ?? '-', r.status])).to.deep.equal([
      ['-', 200],
      [etagOf('apiVersion: v1\nentries: {}\n# one\n'), 304],
      [etagOf('apiVersion: v1\nentries: {}\n# one\n'), 200],
      [etagOf(body), 304],
    ]);
    // Kept for the conditional GET, not counted as a lookup of a pulled chart.
    expect(lookups).to.deep.equal([]);
  });

  it('uses If-Modified-Since where the server gives only Last-Modified, also for a plain .tgz URL', async () => {
    validators = 'last-modified';
    const cache = new ChartCache();
    const first = await download(`${base()}/web-1.0.0.tgz`, {}, settings(cache), 'bundle one');
    const again = await download(`${base()}/web-1.0.0.tgz`, {}, settings(cache), 'bundle one');
    expect(again.equals(first)).to.equal(true);
    expect(seen.map((r) => [r.ifModifiedSince ?? '-', r.status])).to.deep.equal([
      ['-', 200],
      [LAST_MODIFIED, 304],
    ]);
  });

  it('asks unconditionally with other credentials, without a cache, and where the server gave no validator', async () => {
    const cache = new ChartCache();
    await repositoryIndex(`${base()}/stable`, { username: 'a' }, settings(cache), 'bundle one');
    await repositoryIndex(`${base()}/stable`, { username: 'b' }, settings(cache), 'bundle two');
    await repositoryIndex(`${base()}/stable`, { username: 'a' }, settings(), 'bundle three');
    validators = 'none';
    await repositoryIndex(`${base()}/incubator`, {}, settings(cache), 'bundle four');
    await repositoryIndex(`${base()}/incubator`, {}, settings(cache), 'bundle four');
    expect(seen.map((r) => [r.path, r.ifNoneMatch ?? r.ifModifiedSince ?? '-', r.status])).to.deep.equal([
      ['/stable/index.yaml', '-', 200],
      ['/stable/index.yaml', '-', 200],
      ['/stable/index.yaml', '-', 200],
      ['/incubator/index.yaml', '-', 200],
      ['/incubator/index.yaml', '-', 200],
    ]);
  });

  it('refuses a 304 it did not ask for, naming the bundle: no empty chart', async () => {
    rogue = true;
    const err = await download(`${base()}/x.tgz`, {}, settings(new ChartCache()), 'bundle two').catch((e: unknown) => e);
    expect(seen.map((r) => [r.ifNoneMatch ?? '-', r.status])).to.deep.equal([['-', 304]]);
    expect(err).to.be.instanceOf(FlotillaError);
    expect((err as Error).message)
      .to.contain('bundle two')
      .and.contain('answered 304');
  });
});

describe("a commit's chart scope: one registry client per OCI registry and credentials", () => {
  /** Clients made through the scope, and how often each was closed. */
  function maker() {
    const made: { registry: string; client: RegistryClient; closed: number }[] = [];
    const make = (registry: string) => () => {
      const client = new RegistryClient({ registry });
      const entry = { registry, client, closed: 0 };
      const close = client.close.bind(client);
      client.close = async () => {
        entry.closed += 1;
        await close();
      };
      made.push(entry);
      return client;
    };
    return { made, make };
  }

  it('shares a client between the oci:// charts of one registry read with the same credentials, and closes each once', async () => {
    const scope = new ChartScope();
    const { made, make } = maker();
    const one = scope.registryClient('charts.example:5000', { username: 'a', password: 'p' }, make('charts.example:5000'));
    const two = scope.registryClient('charts.example:5000', { username: 'a', password: 'p' }, make('charts.example:5000'));
    const otherUser = scope.registryClient('charts.example:5000', { username: 'b', password: 'p' }, make('charts.example:5000'));
    const otherRegistry = scope.registryClient('other.example', { username: 'a', password: 'p' }, make('other.example'));
    expect(two).to.equal(one);
    expect(otherUser).to.not.equal(one);
    expect(otherRegistry).to.not.equal(one);
    expect(made.map((m) => m.registry)).to.deep.equal(['charts.example:5000', 'charts.example:5000', 'other.example']);
    await scope.close();
    expect(made.map((m) => m.closed)).to.deep.equal([1, 1, 1]);
    // A scope closed is empty: a later asker gets a new client.
    expect(scope.registryClient('charts.example:5000', { username: 'a', password: 'p' }, make('charts.example:5000'))).to.not.equal(one);
    await scope.close();
  });
});
