import { expect } from 'chai';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ANNOTATION_TITLE, READ_ONCE_MAX_BYTES, buildArtifact } from './artifact.js';
import { pushBundle } from './bundle.js';
import { RegistryClient } from './client.js';
import { sha256Digest } from './digest.js';

/**
 * Blob pushes against a minimal in-process registry (only the blob endpoints), in three flavours: one
 * that mounts from the same repository (as Distribution does), one that ignores mount parameters (answers
 * 202 and opens a session, as the spec allows), and one that refuses them (400).
 */
type Flavour = 'mounts' | 'ignores-mount' | 'refuses-mount';

interface FakeRegistry {
  host: string;
  blobs: Map<string, Buffer>;
  requests: string[];
  /** TCP connections accepted so far. */
  connections(): number;
  close(): Promise<void>;
}

async function body(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

async function startFake(flavour: Flavour): Promise<FakeRegistry> {
  const blobs = new Map<string, Buffer>();
  const requests: string[] = [];
  let sessions = 0;
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://x');
    const mount = url.searchParams.get('mount');
    requests.push(`${req.method} ${url.pathname}${mount ? ' mount' : ''}`);
    const data = await body(req);
    const blob = /^\/v2\/(.+)\/blobs\/(sha256:[a-f0-9]+)$/.exec(url.pathname);
    if (req.method === 'HEAD' && blob) {
      const have = blobs.get(blob[2] ?? '');
      res.writeHead(have ? 200 : 404, have ? { 'content-length': String(have.length) } : {}).end();
      return;
    }
    if (req.method === 'POST' && url.pathname.endsWith('/blobs/uploads/')) {
      if (mount && flavour === 'refuses-mount') return void res.writeHead(400).end();
      if (mount && flavour === 'mounts' && blobs.has(mount)) return void res.writeHead(201, { location: `/v2/r/blobs/${mount}` }).end();
      return void res.writeHead(202, { location: `/v2/r/blobs/uploads/s${++sessions}` }).end();
    }
    if (req.method === 'PUT' && url.pathname.includes('/blobs/uploads/')) {
      const digest = url.searchParams.get('digest') ?? '';
      if (sha256Digest(data) !== digest) return void res.writeHead(400).end();
      blobs.set(digest, data);
      return void res.writeHead(201).end();
    }
    if (req.method === 'DELETE' && url.pathname.includes('/blobs/uploads/')) return void res.writeHead(204).end();
    if (req.method === 'PUT' && url.pathname.includes('/manifests/')) {
      blobs.set(url.pathname, data);
      return void res.writeHead(201, { 'docker-content-digest': sha256Digest(data) }).end();
    }
    res.writeHead(404).end();
  };
  const server: Server = createServer((req, res) => void handle(req, res));
  let connections = 0;
  server.on('connection', () => {
    connections += 1;
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { host, blobs, requests, connections: () => connections, close: () => new Promise((ok) => server.close(() => ok())) };
}

const blob = (text: string) => {
  const bytes = Buffer.from(text);
  return { desc: { mediaType: 'application/octet-stream', digest: sha256Digest(bytes), size: bytes.length }, bytes };
};

describe('blob push existence check', () => {
  let fake: FakeRegistry;
  let client: RegistryClient;
  const open = async (flavour: Flavour, blobCheck?: 'mount' | 'head') => {
    fake = await startFake(flavour);
    client = new RegistryClient({ registry: fake.host, basicHTTP: true, blobCheck, retry: { retries: 0 } });
  };
  afterEach(async () => {
    await client.close();
    await fake.close();
  });

  it('checks and opens the session in one request on a registry that mounts, and skips what it has without a HEAD', async () => {
    await open('mounts');
    const a = blob('a');
    expect(await client.pushBlob('r', a.desc, a.bytes)).to.equal('uploaded');
    // The first upload is followed by one probe of the blob just sent, which proves that mounts work.
    expect(fake.requests).to.deep.equal(['POST /v2/r/blobs/uploads/ mount', 'PUT /v2/r/blobs/uploads/s1', 'POST /v2/r/blobs/uploads/ mount']);
    fake.requests.length = 0;
    const b = blob('b');
    expect(await client.pushBlob('r', a.desc, a.bytes)).to.equal('skipped');
    expect(await client.pushBlob('r', b.desc, b.bytes)).to.equal('uploaded');
    expect(fake.requests).to.deep.equal(['POST /v2/r/blobs/uploads/ mount', 'POST /v2/r/blobs/uploads/ mount', 'PUT /v2/r/blobs/uploads/s2']);
    expect(fake.blobs.get(b.desc.digest)?.equals(b.bytes)).to.equal(true);
  });

  it('falls back to HEAD for good on a registry that ignores mounts, cancelling the probe session', async () => {
    await open('ignores-mount');
    const a = blob('a');
    expect(await client.pushBlob('r', a.desc, a.bytes)).to.equal('uploaded');
    expect(fake.requests).to.deep.equal([
      'POST /v2/r/blobs/uploads/ mount',
      'PUT /v2/r/blobs/uploads/s1',
      'POST /v2/r/blobs/uploads/ mount',
      'DELETE /v2/r/blobs/uploads/s2',
    ]);
    fake.requests.length = 0;
    // Without the fallback, the probe would open a session and upload the blob the registry has.
    expect(await client.pushBlob('r', a.desc, a.bytes)).to.equal('skipped');
    const b = blob('b');
    expect(await client.pushBlob('r', b.desc, b.bytes)).to.equal('uploaded');
    expect(fake.requests).to.deep.equal([
      `HEAD /v2/r/blobs/${a.desc.digest}`,
      `HEAD /v2/r/blobs/${b.desc.digest}`,
      'POST /v2/r/blobs/uploads/',
      'PUT /v2/r/blobs/uploads/s3',
    ]);
  });

  it('falls back to HEAD and a plain POST on a registry that refuses mount parameters', async () => {
    await open('refuses-mount');
    const a = blob('a');
    expect(await client.pushBlob('r', a.desc, a.bytes)).to.equal('uploaded');
    expect(await client.pushBlob('r', a.desc, a.bytes)).to.equal('skipped');
    expect(fake.requests).to.deep.equal([
      'POST /v2/r/blobs/uploads/ mount',
      `HEAD /v2/r/blobs/${a.desc.digest}`,
      'POST /v2/r/blobs/uploads/',
      'PUT /v2/r/blobs/uploads/s1',
      `HEAD /v2/r/blobs/${a.desc.digest}`,
    ]);
  });

  it('pushes a bundle of files on disk: every distinct blob once, the manifest last, with the digests it names', async () => {
    await open('mounts');
    const dir = await mkdtemp(join(tmpdir(), 'flotilla-push-'));
    try {
      const big = Buffer.alloc(READ_ONCE_MAX_BYTES + 10, 1);
      await writeFile(join(dir, 'a'), 'same');
      await writeFile(join(dir, 'b'), 'same');
      await writeFile(join(dir, 'c'), big);
      const files = ['c', 'a', 'b'].map((path) => ({ path, file: join(dir, path) }));
      const pushed = await pushBundle(client, `${fake.host}/r`, files, { bundleName: 'n', bundleNamespace: 'ns' }, 'v1');
      // Config, "same" (two files) and the big file.
      expect([pushed.pushedBlobs, pushed.skippedBlobs]).to.deep.equal([3, 0]);
      const stored = [...fake.blobs].filter(([key]) => key.startsWith('sha256:'));
      expect(pushed.bytesUploaded).to.equal(stored.reduce((n, [, v]) => n + v.length, 0));
      expect(fake.requests.at(-1)).to.equal('PUT /v2/r/manifests/v1');
      expect(fake.requests.filter((r) => r.startsWith('PUT /v2/r/blobs/uploads/'))).to.have.length(3);
      const manifest = JSON.parse(fake.blobs.get('/v2/r/manifests/v1')?.toString() ?? '{}') as {
        layers: Array<{ digest: string; annotations: Record<string, string> }>;
      };
      expect(manifest.layers.map((l) => l.annotations[ANNOTATION_TITLE])).to.deep.equal(['a', 'b', 'c']);
      expect(manifest.layers.map((l) => l.digest)).to.deep.equal([sha256Digest('same'), sha256Digest('same'), sha256Digest(big)]);
      expect(fake.blobs.get(sha256Digest(big))?.equals(big)).to.equal(true);
      // The same bytes as the two-step build: the pipeline changes when blobs go, not what is pushed.
      expect(pushed.digest).to.equal((await buildArtifact(files, { bundleName: 'n', bundleNamespace: 'ns' })).digest);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('sends only HEADs when told to', async () => {
    await open('mounts', 'head');
    const a = blob('a');
    expect(await client.pushBlob('r', a.desc, a.bytes)).to.equal('uploaded');
    expect(fake.requests.filter((r) => r.endsWith(' mount'))).to.deep.equal([]);
  });

  it('keeps its connection open across HEADs, found or not (undici would close it after each)', async () => {
    await open('mounts', 'head');
    const a = blob('a');
    const b = blob('b');
    expect(await client.pushBlob('r', a.desc, a.bytes)).to.equal('uploaded');
    for (let i = 0; i < 5; i++) {
      expect(await client.pushBlob('r', a.desc, a.bytes)).to.equal('skipped');
      expect(await client.hasManifest('r', b.desc.digest)).to.equal(false);
    }
    expect(fake.requests.filter((r) => r.startsWith('HEAD '))).to.have.length(11);
    // A second connection may open while the first is being handed back to the pool; one per HEAD may not.
    expect(fake.connections(), 'TCP connections for 13 requests one after the other').to.be.at.most(2);
  });
});
