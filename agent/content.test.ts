import { expect } from 'chai';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KubeClient } from '../lib/kube/client.js';
import { FlotillaError, dispositionOf } from '../lib/errors.js';
import { ArtifactError, RegistryRefusedError, RegistryUnavailableError, buildArtifact } from '../lib/oci/index.js';
import type { BundleDeployment } from '../lib/api/index.js';
import { ContentLoader, translatePullError } from './content.js';

const ref = `127.0.0.1:5000/b@sha256:${'a'.repeat(64)}`;

describe('agent content: what a failed pull means', () => {
  const cases: { name: string; err: unknown; reason: string; disposition: string }[] = [
    {
      name: 'an unreachable registry is retried with backoff',
      err: new RegistryUnavailableError('connection refused', { registry: 'r', code: 'ECONNREFUSED' }),
      reason: 'RegistryUnreachable',
      disposition: 'transient',
    },
    {
      name: 'a missing manifest is retried (it may be pushed yet)',
      err: new RegistryRefusedError('unknown', { registry: 'r', code: 'MANIFEST_UNKNOWN', status: 404 }),
      reason: 'ArtifactPullFailed',
      disposition: 'transient',
    },
    {
      name: 'refused credentials are retried (the Secret may be fixed)',
      err: new RegistryRefusedError('denied', { registry: 'r', code: 'UNAUTHORIZED', status: 401 }),
      reason: 'AuthenticationFailed',
      disposition: 'transient',
    },
    {
      name: 'tampered bytes are retried but keep their reason',
      err: new ArtifactError('ArtifactTampered', 'digest mismatch'),
      reason: 'ArtifactTampered',
      disposition: 'transient',
    },
    {
      name: 'an invalid artifact stalls: the pinned content never changes',
      err: new ArtifactError('InvalidBundle', 'not a bundle'),
      reason: 'InvalidBundle',
      disposition: 'stalling',
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const out = translatePullError(c.err, ref);
      expect(out).to.be.instanceOf(FlotillaError);
      expect((out as FlotillaError).reason).to.equal(c.reason);
      expect(dispositionOf(out)).to.equal(c.disposition);
    });
  }

  it('names the artifact in the message', () => {
    const out = translatePullError(new RegistryUnavailableError('connection refused', { registry: 'r', code: 'ECONNREFUSED' }), ref) as Error;
    expect(out.message).to.contain(ref).and.contain('connection refused');
  });
});

describe('agent content: pruning the blob cache', () => {
  const digest = (c: string) => `sha256:${c.repeat(64)}`;
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'flotilla-prune-'));
    await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true });
    for (const c of ['a', 'b']) await writeFile(join(dir, 'blobs', 'sha256', c.repeat(64)), c);
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  const loader = () => new ContentLoader({ upstream: undefined as unknown as KubeClient, clusterNamespace: 'c', cacheDir: dir });

  it('removes nothing while a referenced artifact was not pulled by this process (its blobs are unknown)', async () => {
    const result = await loader().pruneCache([digest('f')]);
    expect(result).to.deep.equal({ pruned: false, why: '1 referenced artifacts not pulled yet' });
    expect((await readdir(join(dir, 'blobs', 'sha256'))).sort()).to.deep.equal(['a'.repeat(64), 'b'.repeat(64)]);
  });

  it('removes every blob when no BundleDeployment pins an artifact any more', async () => {
    expect(await loader().pruneCache([])).to.deep.equal({ pruned: true, removed: 2, kept: 0 });
    expect(await readdir(join(dir, 'blobs', 'sha256'))).to.deep.equal([]);
  });
});

describe('agent content: one registry client for many pulls', () => {
  let dir: string;
  let server: Server;
  let host: string;
  let connections: number;
  const requests: string[] = [];
  const served = new Map<string, Buffer>();
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'flotilla-pulls-'));
    // A registry of two paths: manifests and blobs by digest, as the pinned pulls ask for them.
    server = createServer((req, res) => {
      requests.push(`${req.method} ${req.url}`);
      const digest = /\/(?:manifests|blobs)\/(sha256:[a-f0-9]{64})$/.exec(req.url ?? '')?.[1];
      const bytes = digest ? served.get(digest) : undefined;
      if (!bytes) return void res.writeHead(req.url === '/v2/' ? 200 : 404).end('{}');
      const manifest = req.url?.includes('/manifests/');
      res.writeHead(200, {
        'content-type': manifest ? 'application/vnd.oci.image.manifest.v1+json' : 'application/octet-stream',
        'docker-content-digest': digest,
      });
      res.end(bytes);
    });
    server.on('connection', () => connections++);
    await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
    host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    await new Promise((ok) => server.close(ok));
    await rm(dir, { recursive: true, force: true });
  });

  async function deployment(name: string, text: string): Promise<BundleDeployment> {
    const built = await buildArtifact([{ path: 'cm.yaml', content: Buffer.from(text) }], { bundleName: name, bundleNamespace: 'ws' });
    served.set(built.digest, built.manifest);
    for (const b of built.blobs) served.set(b.descriptor.digest, b.source as Buffer);
    const oci = { reference: `${host}/ws/${name}@${built.digest}`, digest: built.digest, basicHTTP: true };
    return {
      apiVersion: 'flotilla.dev/v1alpha1',
      kind: 'BundleDeployment',
      metadata: { namespace: 'c', name },
      spec: { deploymentID: 'x', oci },
    } as BundleDeployment;
  }

  it('pulls the next bundle over the connections the first one opened, and closes them when told', async () => {
    const loader = new ContentLoader({ upstream: undefined as unknown as KubeClient, clusterNamespace: 'c', cacheDir: dir });
    connections = 0;
    const first = await loader.load(await deployment('one', 'kind: ConfigMap # one\n'));
    expect(first.files.map((f) => f.content.toString())).to.deep.equal(['kind: ConfigMap # one\n']);
    const opened = connections;
    expect(opened).to.be.greaterThan(0);
    for (const n of ['two', 'three', 'four']) await loader.load(await deployment(n, `kind: ConfigMap # ${n}\n`));
    expect(connections, 'no new connection for the next pulls').to.equal(opened);
    await loader.close();
    // The server sees each close when the client's FIN arrives: wait for it, up to 5 s.
    const open = () => new Promise<number>((ok, fail) => server.getConnections((err, n) => (err ? fail(err) : ok(n))));
    for (let i = 0; i < 100 && (await open()) > 0; i++) await new Promise((r) => setTimeout(r, 50));
    expect(await open(), 'connections left open after close').to.equal(0);
  });

  it('reads a bundle it pulled before from its blob cache, manifest included, once it left the memory', async () => {
    const bd = await deployment('five', 'kind: ConfigMap # five\n');
    const first = new ContentLoader({ upstream: undefined as unknown as KubeClient, clusterNamespace: 'c', cacheDir: dir });
    await first.load(bd);
    await first.close();
    requests.length = 0;
    // A new loader has nothing in memory (as after a restart, or once 32 other bundles pushed this one out).
    const again = new ContentLoader({ upstream: undefined as unknown as KubeClient, clusterNamespace: 'c', cacheDir: dir });
    const files = await again.load(bd);
    expect(files.files.map((f) => f.content.toString())).to.deep.equal(['kind: ConfigMap # five\n']);
    expect(requests, 'requests to the registry').to.deep.equal([]);
    // A cached manifest that no longer matches its digest is dropped and fetched again.
    const digest = bd.spec.oci?.digest ?? '';
    await writeFile(join(dir, 'blobs', 'sha256', digest.slice('sha256:'.length)), '{"mediaType":"application/vnd.oci.image.manifest.v1+json"}');
    const third = new ContentLoader({ upstream: undefined as unknown as KubeClient, clusterNamespace: 'c', cacheDir: dir });
    await third.load(bd);
    expect(requests.filter((r) => r.includes('/manifests/'))).to.deep.equal([`GET /v2/ws/five/manifests/${digest}`]);
    await Promise.all([again.close(), third.close()]);
  });

  it('keeps in memory what fits its bound on bytes, least recently used out first, and reads the rest from its blob cache', async () => {
    const text = (c: string) => `kind: ConfigMap # ${c.repeat(100)}\n`;
    const [a, b, c] = await Promise.all(['a', 'b', 'c'].map((x) => deployment(`bound-${x}`, text(x))));
    const size = Buffer.byteLength(text('a'));
    const loader = new ContentLoader({ upstream: undefined as unknown as KubeClient, clusterNamespace: 'c', cacheDir: dir, memoryBytes: 2 * size });
    for (const bd of [a, b, c]) await loader.load(bd as BundleDeployment);
    expect(loader.inMemory).to.deep.equal({ entries: 2, bytes: 2 * size });
    requests.length = 0;
    const first = await loader.load(a as BundleDeployment);
    expect(first.files.map((f) => f.content.toString())).to.deep.equal([text('a')]);
    expect(requests, 'read from the blob cache, not the registry').to.deep.equal([]);
    expect(loader.inMemory).to.deep.equal({ entries: 2, bytes: 2 * size });
    expect((await loader.load(a as BundleDeployment)).files, 'now held in memory: the same files').to.equal(first.files);
    const small = new ContentLoader({ upstream: undefined as unknown as KubeClient, clusterNamespace: 'c', cacheDir: dir, memoryBytes: size - 1 });
    expect((await small.load(c as BundleDeployment)).files).to.have.length(1);
    expect(small.inMemory, 'a bundle larger than the bound is not kept').to.deep.equal({ entries: 0, bytes: 0 });
    await Promise.all([loader.close(), small.close()]);
  });
});
