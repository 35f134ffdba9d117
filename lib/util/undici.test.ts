import { expect } from 'chai';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Agent, request } from './undici.js';
import { modulesLoadedBy } from './testing.js';

describe('undici without its index: Agent and request', () => {
  let server: Server;
  let base: string;
  const seen: { method: string; url: string; body: string; auth: string }[] = [];
  const agent = new Agent({ connections: 2 });

  before(async () => {
    server = createServer((req: IncomingMessage, res) => {
      let body = '';
      req.setEncoding('utf8').on('data', (c: string) => {
        body += c;
      });
      req.on('end', () => {
        seen.push({ method: req.method ?? '', url: req.url ?? '', body, auth: String(req.headers.authorization ?? '') });
        res.writeHead(req.url === '/missing' ? 404 : 200, { 'content-type': 'text/plain', 'x-echo': req.method ?? '' }).end(`${req.method} ${req.url}`);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  after(async () => {
    await agent.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('sends a GET with the path and query of the URL, through the given dispatcher', async () => {
    const res = await request(`${base}/v2/repo/tags/list?n=10&last=v1`, { dispatcher: agent, headers: { authorization: 'Bearer t' } });
    expect(res.statusCode).to.equal(200);
    expect(res.headers['x-echo']).to.equal('GET');
    expect(await res.body.text()).to.equal('GET /v2/repo/tags/list?n=10&last=v1');
    expect(seen.at(-1)).to.deep.include({ method: 'GET', url: '/v2/repo/tags/list?n=10&last=v1', auth: 'Bearer t' });
  });

  it('sends the method and body it is given, takes a URL object, and defaults to PUT with a body as undici does', async () => {
    const post = await request(new URL(`${base}/apis/x`), { dispatcher: agent, method: 'POST', body: '{"a":1}' });
    expect(await post.body.text()).to.equal('POST /apis/x');
    expect(seen.at(-1)).to.deep.include({ method: 'POST', body: '{"a":1}' });
    const put = await request(`${base}/blob`, { dispatcher: agent, body: 'bytes' });
    expect(await put.body.text()).to.equal('PUT /blob');
  });

  it('returns error statuses as responses, and rejects when nothing listens', async () => {
    const res = await request(`${base}/missing`, { dispatcher: agent });
    expect(res.statusCode).to.equal(404);
    await res.body.dump();
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const err = await request(`http://127.0.0.1:${port}/`, { dispatcher: agent }).then(
      () => undefined,
      (e: unknown) => e as { code?: string },
    );
    expect(err?.code).to.equal('ECONNREFUSED');
  });

  it("loads neither undici's index nor its fetch, mocks and caches", function () {
    this.timeout(60_000);
    const loaded = modulesLoadedBy("const { Agent } = await import('./lib/util/undici.ts');\nawait new Agent().close();").filter((f) => f.includes('/undici/'));
    expect(
      loaded.some((f) => f.endsWith('/lib/dispatcher/agent.js')),
      'the Agent loaded',
    ).to.equal(true);
    expect(loaded.filter((f) => /\/undici\/index\.js$/.test(f) || f.includes('/lib/mock/') || f.includes('/lib/web/fetch/'))).to.deep.equal([]);
  });
});
