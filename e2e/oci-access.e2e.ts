import { expect } from 'chai';
import { createServer, request as httpRequest, type Server } from 'node:http';
import {
  ArtifactError,
  RegistryClient,
  RegistryRefusedError,
  RegistryTLSError,
  RegistryUnavailableError,
  bundleRepository,
  listVersions,
  pullBundle,
  pushBundle,
  pushBundleVersion,
  type ArtifactFile,
} from '../lib/oci/index.js';
import { disposeRegistry, registryClientFor, startRegistry, type RegistryHandle } from '../stack/registry.js';

/**
 * Reaching the real registry: credentials (basic and the Bearer token flow against `auth: token`), TLS
 * verification, the HTTP/HTTPS mix-ups users make, transient failures and restarts, and version retention.
 */

const META = { bundleName: 'hello', bundleNamespace: 'fleet-default' };
const FILES: ArtifactFile[] = [{ path: 'cm.yaml', content: Buffer.from('kind: ConfigMap\n') }];

async function failure(p: Promise<unknown>): Promise<Error> {
  return await p.then(
    () => {
      throw new Error('expected a failure, got success');
    },
    (e: unknown) => e as Error,
  );
}

/**
 * A loopback HTTP proxy in front of a real registry that answers the first requests from `faults`
 * (status and Retry-After) instead of forwarding them: a registry under load, without faking one.
 */
async function faultProxy(target: RegistryHandle, faults: Array<{ status: number; retryAfter?: string }>): Promise<{ host: string; close(): Promise<void> }> {
  const upstream = new URL(target.url);
  const server: Server = createServer((req, res) => {
    const fault = faults.shift();
    if (fault) {
      res.writeHead(fault.status, fault.retryAfter ? { 'retry-after': fault.retryAfter } : {});
      req.resume();
      res.end();
      return;
    }
    const proxied = httpRequest(
      { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: { ...req.headers, host: upstream.host } },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    proxied.on('error', () => res.destroy());
    req.pipe(proxied);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('proxy has no port');
  return {
    host: `127.0.0.1:${address.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

describe('OCI registry access: credentials, TLS, failures and versions', function () {
  this.timeout(300_000);
  const regs: Partial<Record<RegistryHandle['mode'], RegistryHandle>> = {};
  const reg = (mode: RegistryHandle['mode']) => regs[mode] as RegistryHandle;

  before(async () => {
    for (const mode of ['http', 'tls', 'tls-auth', 'token'] as const) regs[mode] = await startRegistry({ mode });
  });
  after(async () => {
    for (const r of Object.values(regs)) await disposeRegistry(r);
  });

  it('refuses a wrong password with UNAUTHORIZED, never echoing it (htpasswd)', async () => {
    const client = registryClientFor(reg('tls-auth'), { credentials: { username: 'flotilla', password: 'wrong-Pa55word' } });
    const err = await failure(pushBundle(client, `${reg('tls-auth').host}/flotilla/x`, FILES, META));
    await client.close();
    expect(err).to.be.instanceOf(RegistryRefusedError);
    expect([(err as RegistryRefusedError).code, (err as RegistryRefusedError).reason]).to.deep.equal(['UNAUTHORIZED', 'AuthenticationFailed']);
    expect(err.message).to.include(reg('tls-auth').host).and.not.include('wrong-Pa55word');
  });

  it('says a TLS registry is not trusted, naming it, when its CA is not given', async () => {
    const client = registryClientFor(reg('tls'), { caPem: undefined });
    const err = await failure(pushBundle(client, `${reg('tls').host}/flotilla/x`, FILES, META));
    await client.close();
    expect(err).to.be.instanceOf(RegistryTLSError);
    expect((err as RegistryTLSError).code).to.equal('TLS_UNKNOWN_CA');
    expect(err.message)
      .to.include(`registry ${reg('tls').host}`)
      .and.include('not signed by a trusted CA');
  });

  it('talks to a TLS registry without its CA only with insecureSkipTLS', async () => {
    const client = registryClientFor(reg('tls'), { caPem: undefined, insecureSkipTLS: true });
    const pushed = await pushBundle(client, `${reg('tls').host}/flotilla/insecure`, FILES, META);
    expect((await pullBundle(client, pushed.reference)).files[0]?.content.toString()).to.equal('kind: ConfigMap\n');
    await client.close();
  });

  it('says to set basicHTTP when the registry serves plain HTTP', async () => {
    const client = registryClientFor(reg('http'), { basicHTTP: false });
    const err = await failure(pushBundle(client, `${reg('http').host}/flotilla/x`, FILES, META));
    await client.close();
    expect(err).to.be.instanceOf(RegistryTLSError);
    expect((err as RegistryTLSError).code).to.equal('TLS_TO_PLAIN_HTTP');
    expect(err.message).to.include(reg('http').host).and.include('set basicHTTP: true');
  });

  it('says to unset basicHTTP when the registry serves HTTPS', async () => {
    const client = registryClientFor(reg('tls'), { basicHTTP: true });
    const err = await failure(pushBundle(client, `${reg('tls').host}/flotilla/x`, FILES, META));
    await client.close();
    expect((err as RegistryTLSError).code).to.equal('PLAIN_HTTP_TO_TLS');
    expect(err.message).to.include(reg('tls').host).and.include('unset basicHTTP');
  });

  it('pushes and pulls with the Bearer token flow, one token per scope, reused until it expires', async () => {
    const r = reg('token');
    let now = Date.now();
    const client = registryClientFor(r, { now: () => now });
    const serverBefore = r.tokenRequests?.() ?? 0;
    const pushed = await pushBundle(client, `${r.host}/flotilla/bearer`, FILES, META, 'v1');
    const pulled = await pullBundle(client, pushed.reference);
    expect(pulled.files[0]?.content.toString()).to.equal('kind: ConfigMap\n');
    expect(client.stats.tokenRequests, 'tokens for pull,push and for pull').to.equal(2);
    // A second pull of the same bundle reads everything from the client's blob cache, the pinned manifest too,
    // and sends no request at all: a manifest fetched past the cache asks the registry.
    const repository = 'flotilla/bearer';
    await client.getManifest(repository, pushed.digest);
    expect(client.stats.tokenRequests, 'cached tokens reused').to.equal(2);
    now += 301_000; // the token server issues 300 s tokens
    await client.getManifest(repository, pushed.digest);
    expect(client.stats.tokenRequests, 'a new token after expiry').to.equal(3);
    expect((r.tokenRequests?.() ?? 0) - serverBefore, 'requests the token server received').to.equal(3);
    await client.close();
  });

  it('gives read-only credentials pull access and refuses their push (token)', async () => {
    const r = reg('token');
    const writer = registryClientFor(r);
    const pushed = await pushBundle(writer, `${r.host}/flotilla/read-only`, FILES, META, 'v1');
    await writer.close();
    const reader = registryClientFor(r, { credentials: { username: r.readerUsername ?? '', password: r.readerPassword ?? '' } });
    expect((await pullBundle(reader, pushed.reference)).digest).to.equal(pushed.digest);
    const err = await failure(pushBundle(reader, `${r.host}/flotilla/read-only`, [{ path: 'x', content: Buffer.from('new') }], META, 'v2'));
    await reader.close();
    expect(err).to.be.instanceOf(RegistryRefusedError);
    expect((err as RegistryRefusedError).reason).to.equal('AuthenticationFailed');
  });

  it('refuses wrong and missing credentials at the token service with UNAUTHORIZED', async () => {
    const r = reg('token');
    for (const credentials of [{ username: 'flotilla', password: 'wrong-Pa55word' }, undefined]) {
      const client = registryClientFor(r, { credentials });
      const err = await failure(pushBundle(client, `${r.host}/flotilla/x`, FILES, META));
      await client.close();
      expect(err).to.be.instanceOf(RegistryRefusedError);
      expect((err as RegistryRefusedError).code).to.equal('UNAUTHORIZED');
      expect(err.message).to.not.include('wrong-Pa55word');
    }
  });

  it('retries 503 and 429 answers after the Retry-After the registry sent', async () => {
    const proxy = await faultProxy(reg('http'), [{ status: 503, retryAfter: '2' }, { status: 429, retryAfter: '1' }, { status: 502 }]);
    const sleeps: number[] = [];
    const client = new RegistryClient({
      registry: proxy.host,
      basicHTTP: true,
      concurrency: 1,
      sleep: async (ms) => {
        sleeps.push(ms);
      },
      retry: { minDelayMs: 10, maxDelayMs: 10 },
    });
    try {
      const pushed = await pushBundle(client, `${proxy.host}/flotilla/retry`, FILES, META);
      expect((await pullBundle(client, pushed.reference)).files).to.have.length(1);
      expect(sleeps.slice(0, 2)).to.deep.equal([2000, 1000]);
      expect(sleeps[2]).to.be.within(5, 10);
      expect(client.stats.retries).to.equal(3);
    } finally {
      await client.close();
      await proxy.close();
    }
  });

  it('gives up after its retry budget with a transient error carrying the status', async () => {
    const proxy = await faultProxy(
      reg('http'),
      Array.from({ length: 10 }, () => ({ status: 503 })),
    );
    const sleeps: number[] = [];
    const client = new RegistryClient({
      registry: proxy.host,
      basicHTTP: true,
      sleep: async (ms) => {
        sleeps.push(ms);
      },
      retry: { retries: 2 },
    });
    const err = await failure(client.listTags('flotilla/x'));
    await client.close();
    await proxy.close();
    expect(err).to.be.instanceOf(RegistryUnavailableError);
    expect([(err as RegistryUnavailableError).status, (err as RegistryUnavailableError).reason]).to.deep.equal([503, 'RegistryUnreachable']);
    expect(sleeps).to.have.length(2);
  });

  it('reports a stopped registry as unreachable (ECONNREFUSED) and serves the same bundle after a restart', async () => {
    const r = reg('http');
    const client = registryClientFor(r, { retry: { retries: 1 } });
    const pushed = await pushBundle(client, `${r.host}/flotilla/restart`, FILES, META, 'v1');
    await r.stop();
    const fresh = registryClientFor(r, { retry: { retries: 1 } });
    const err = await failure(pullBundle(fresh, pushed.reference));
    await fresh.close();
    expect(err).to.be.instanceOf(RegistryUnavailableError);
    expect((err as RegistryUnavailableError).code).to.equal('ECONNREFUSED');
    expect(err.message).to.include(r.host);
    await r.start();
    expect((await pullBundle(client, pushed.reference)).digest).to.equal(pushed.digest);
    await client.close();
  });

  it('tags versions v1, v2, ..., pushes nothing for unchanged content and deletes versions beyond the retention count', async () => {
    const r = reg('tls-auth');
    const repo = bundleRepository(`${r.host}/flotilla`, 'fleet-default', 'versioned');
    const client = registryClientFor(r);
    const version = (n: number) => [{ path: 'cm.yaml', content: Buffer.from(`v: ${n}\n`) }];
    const first = await pushBundleVersion(client, repo, version(1), { ...META, revision: 'c1' }, { retain: 2 });
    const same = await pushBundleVersion(client, repo, version(1), { ...META, revision: 'c2' }, { retain: 2 });
    expect([first.sequence, same.sequence, same.unchanged, same.digest]).to.deep.equal([1, 1, true, first.digest]);
    const second = await pushBundleVersion(client, repo, version(2), META, { retain: 2 });
    const third = await pushBundleVersion(client, repo, version(3), META, { retain: 2, protect: [second.digest] });
    expect(third.deleted.map((d) => d.tag)).to.deep.equal(['v1']);
    const fourth = await pushBundleVersion(client, repo, version(4), META, { retain: 2 });
    expect(fourth.deleted).to.deep.equal([{ tag: 'v2', digest: second.digest }]);
    expect((await listVersions(client, repo)).map((v) => v.tag)).to.deep.equal(['v3', 'v4']);
    const gone = await failure(pullBundle(client, first.reference));
    expect((gone as RegistryRefusedError).code).to.equal('MANIFEST_UNKNOWN');
    expect(gone).to.not.be.instanceOf(ArtifactError);
    expect((await pullBundle(client, third.reference)).files[0]?.content.toString()).to.equal('v: 3\n');
    await client.close();
  });
});
