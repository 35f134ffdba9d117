import { expect } from 'chai';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { ArtifactError, pullBundle, pullBundleToDirectory, pushBundle, type ArtifactFile } from '../lib/oci/index.js';
import {
  disposeRegistry,
  registryClientFor,
  requestsSince,
  settledLog,
  startRegistry,
  type AccessLogEntry,
  type RegistryHandle,
  type RegistryImplementation,
  type RegistryMode,
} from '../stack/registry.js';

/**
 * The OCI client and the bundle format against the real Docker Distribution, in each serving mode (and
 * Distribution v3 over plain HTTP, the registry the benchmarks run on):
 * exact round trips, no re-upload of known blobs, only changed layers moving, bounded memory for a large
 * bundle, and tampering detected. What the registry received is read from its own access log.
 */

const META = { bundleName: 'hello', bundleNamespace: 'fleet-default', source: 'https://git.example.com/r.git', revision: 'c0ffee' };
const MiB = 1024 * 1024;

const isUpload = (e: AccessLogEntry) => e.path.includes('/blobs/uploads/');
/** An upload session opened: a POST answered 202 (a plain one, or a mount probe of a blob the registry lacks). */
const isSession = (e: AccessLogEntry) => e.method === 'POST' && isUpload(e) && e.status === 202;
/** The registry said it has a blob: a HEAD answered 200, or a mount probe answered 201 (see lib/oci/upload.ts). */
const isBlobFound = (e: AccessLogEntry) =>
  (e.method === 'HEAD' && /\/blobs\/sha256:/.test(e.path) && e.status === 200) || (e.method === 'POST' && isUpload(e) && e.status === 201);
const isBlobGet = (e: AccessLogEntry) => e.method === 'GET' && /\/blobs\/sha256:/.test(e.path);

// A garbage collector to call: V8 frees the buffers of finished chunks only when it collects, so the
// memory bound is measured on live memory (RSS right after a collection), not on uncollected garbage.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** Memory growth while an operation ran (bytes). */
interface MemoryGrowth {
  /** Peak of heap + external (Buffers), sampled every 100 ms right after a forced collection: memory held. */
  live: number;
  /** Peak RSS, sampled every 5 ms (includes garbage not yet collected and memory the allocator keeps). */
  rss: number;
}

// `external` includes the backing stores of every Buffer (arrayBuffers is a part of it).
const held = () => {
  const m = process.memoryUsage();
  return m.heapUsed + m.external;
};

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Memory held now: collected twice with a pause between, so freed Buffer memory has been swept. */
async function heldAfterCollection(): Promise<number> {
  gc();
  await pause(1);
  gc();
  return held();
}

/** Measures {@link MemoryGrowth} over the values just before `fn`. */
async function memoryGrowth(fn: () => Promise<void>): Promise<MemoryGrowth> {
  const baseLive = await heldAfterCollection();
  const baseRss = process.memoryUsage().rss;
  let rss = baseRss;
  let live = baseLive;
  let running = true;
  const rssTimer = setInterval(() => {
    rss = Math.max(rss, process.memoryUsage().rss);
  }, 5);
  const liveSampler = (async () => {
    while (running) {
      live = Math.max(live, await heldAfterCollection());
      await pause(100);
    }
  })();
  try {
    await fn();
  } finally {
    running = false;
    clearInterval(rssTimer);
    await liveSampler;
  }
  return { live: live - baseLive, rss: rss - baseRss };
}

/** Writes `size` random bytes to `path` in 1 MiB pieces; returns their sha256 hex. */
async function writeRandomFile(path: string, size: number): Promise<string> {
  const hash = createHash('sha256');
  const out = createWriteStream(path);
  for (let written = 0; written < size; written += MiB) {
    const chunk = randomBytes(Math.min(MiB, size - written));
    hash.update(chunk);
    if (!out.write(chunk)) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
  return hash.digest('hex');
}

async function sha256OfFile(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

function hundredFiles(changed?: number): ArtifactFile[] {
  return Array.from({ length: 100 }, (_, i) => ({
    path: `manifests/cm-${String(i).padStart(3, '0')}.yaml`,
    content: Buffer.from(`apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-${i}\ndata:\n  v: "${i === changed ? 'changed' : 'original'}"\n`),
  }));
}

// Debian's Distribution 2.8.2 in each serving mode, and Distribution v3 (the benchmarks' registry) over plain HTTP.
const SETUPS: { mode: RegistryMode; implementation: RegistryImplementation }[] = [
  { mode: 'http', implementation: 'distribution-2' },
  { mode: 'tls', implementation: 'distribution-2' },
  { mode: 'tls-auth', implementation: 'distribution-2' },
  { mode: 'http', implementation: 'distribution-3' },
];

for (const { mode, implementation } of SETUPS) {
  describe(`OCI bundles on Docker Distribution (${mode}${implementation === 'distribution-3' ? ', v3' : ''})`, function () {
    this.timeout(300_000);
    let reg: RegistryHandle;
    let work: string;

    before(async () => {
      work = await mkdtemp(join(tmpdir(), `flotilla-oci-e2e-${mode}-`));
      reg = await startRegistry({ mode, implementation, rootDir: join(work, 'registry') });
    });
    after(async () => {
      if (reg) await disposeRegistry(reg);
      await rm(work, { recursive: true, force: true });
    });

    it('round-trips a bundle with exact bytes', async () => {
      const files: ArtifactFile[] = [
        { path: 'deploy.yaml', content: Buffer.from('apiVersion: apps/v1\nkind: Deployment\n') },
        { path: 'overlays/prod/x_patch.yaml', content: Buffer.from('spec:\n  replicas: 3\n') },
        { path: 'empty.yaml', content: Buffer.alloc(0) },
        { path: 'bin/data.bin', content: randomBytes(70_000) },
        { path: 'ünïcode name.yaml', content: Buffer.from('a: "ü"\n') },
        { path: 'copy-of-deploy.yaml', content: Buffer.from('apiVersion: apps/v1\nkind: Deployment\n') },
      ];
      const client = registryClientFor(reg);
      try {
        const pushed = await pushBundle(client, `${reg.host}/flotilla/round-trip`, files, META, 'v1');
        expect(pushed.reference).to.equal(`${reg.host}/flotilla/round-trip@${pushed.digest}`);
        const pulled = await pullBundle(client, pushed.reference);
        expect(pulled.digest).to.equal(pushed.digest);
        const byPath = new Map(pulled.files.map((f) => [f.path, f.content]));
        expect([...byPath.keys()].sort()).to.deep.equal(files.map((f) => f.path).sort());
        for (const f of files) expect(byPath.get(f.path)?.equals((f as { content: Buffer }).content), f.path).to.equal(true);
        expect(pulled.annotations).to.include({ 'org.opencontainers.image.revision': 'c0ffee' });
        const dir = join(work, 'round-trip-out');
        const written = await pullBundleToDirectory(client, pushed.reference, dir);
        for (const f of files) expect((await readFile(join(dir, f.path))).equals((f as { content: Buffer }).content)).to.equal(true);
        expect(written.files).to.have.length(files.length);
      } finally {
        await client.close();
      }
    });

    it('uploads no blob when the same content is pushed again (registry access log)', async () => {
      const files = hundredFiles().slice(0, 10);
      const first = registryClientFor(reg);
      await pushBundle(first, `${reg.host}/flotilla/same-again`, files, META, 'v1');
      await first.close();
      const mark = (await settledLog(reg)).length;
      const second = registryClientFor(reg);
      try {
        const again = await pushBundle(second, `${reg.host}/flotilla/same-again`, files, META, 'v1');
        const received = await requestsSince(reg, mark);
        expect(
          received.filter((e) => isSession(e) || (isUpload(e) && e.method !== 'POST')),
          'blob upload requests',
        ).to.deep.equal([]);
        expect(received.filter(isBlobFound)).to.have.length(11);
        expect(received.filter((e) => e.method === 'PUT' && e.path.includes('/manifests/'))).to.have.length(1);
        expect([again.pushedBlobs, again.skippedBlobs, again.bytesUploaded]).to.deep.equal([0, 11, 0]);
        expect(second.stats.blobsUploaded).to.equal(0);
      } finally {
        await second.close();
      }
    });

    it('moves only the changed layer and the manifest when 1 file of 100 changes', async () => {
      const repo = `${reg.host}/flotilla/one-of-hundred`;
      const cacheDir = join(work, 'agent-cache');
      const controller = registryClientFor(reg);
      const agent = registryClientFor(reg, { blobCacheDir: cacheDir });
      try {
        const v1 = await pushBundle(controller, repo, hundredFiles(), META, 'v1');
        expect(v1.pushedBlobs).to.equal(101);
        await pullBundle(agent, v1.reference);
        expect(agent.stats.blobsDownloaded).to.equal(101);

        let mark = (await settledLog(reg)).length;
        const v2 = await pushBundle(controller, repo, hundredFiles(57), META, 'v2');
        let received = await requestsSince(reg, mark);
        expect(v2.digest).to.not.equal(v1.digest);
        expect([v2.pushedBlobs, v2.skippedBlobs]).to.deep.equal([1, 100]);
        expect(received.filter(isSession), 'upload sessions').to.have.length(1);
        expect(
          received.filter((e) => (e.method === 'PUT' || e.method === 'PATCH') && isUpload(e)),
          'upload bodies',
        ).to.have.length(1);
        expect(received.filter((e) => e.method === 'PUT' && e.path.includes('/manifests/'))).to.have.length(1);

        mark = (await settledLog(reg)).length;
        const before = { ...agent.stats };
        const pulled = await pullBundle(agent, v2.reference);
        received = await requestsSince(reg, mark);
        const changed = hundredFiles(57)[57]!;
        expect(pulled.files.find((f) => f.path === changed.path)?.content.equals((changed as { content: Buffer }).content)).to.equal(true);
        const blobGets = received.filter(isBlobGet);
        expect(blobGets, 'blob downloads').to.have.length(1);
        expect(blobGets[0]?.path).to.include(
          createHash('sha256')
            .update((changed as { content: Buffer }).content)
            .digest('hex'),
        );
        expect(received.filter((e) => e.method === 'GET' && e.path.includes('/manifests/'))).to.have.length(1);
        expect(agent.stats.blobsDownloaded - before.blobsDownloaded).to.equal(1);
        expect(agent.stats.cacheHits - before.cacheHits).to.equal(100);
      } finally {
        await controller.close();
        await agent.close();
      }
    });

    it('round-trips a 50 MiB bundle with memory bounded well below its size', async () => {
      const src = join(work, 'big-src');
      await mkdir(src, { recursive: true });
      const hashes = new Map<string, string>();
      const files: ArtifactFile[] = [];
      for (let i = 0; i < 5; i++) {
        const path = join(src, `part-${i}.bin`);
        hashes.set(`data/part-${i}.bin`, await writeRandomFile(path, 10 * MiB));
        files.push({ path: `data/part-${i}.bin`, file: path });
      }
      const controller = registryClientFor(reg);
      const agent = registryClientFor(reg, { blobCacheDir: join(work, 'big-cache') });
      try {
        // Warm up with one 10 MiB file (chunked too), so that one-time growth (code, connection pools, the
        // allocator's arenas) is not counted: what remains is what grows with the bundle.
        const warm = await pushBundle(controller, `${reg.host}/flotilla/big-warm-up`, [files[0]!], META, 'v1');
        await pullBundleToDirectory(agent, warm.reference, join(work, 'big-warm-up-out'));
        let reference = '';
        const pushGrowth = await memoryGrowth(async () => {
          reference = (await pushBundle(controller, `${reg.host}/flotilla/big`, files, { ...META, revision: 'big' }, 'v1')).reference;
        });
        const out = join(work, 'big-out');
        const pullGrowth = await memoryGrowth(async () => {
          await pullBundleToDirectory(agent, reference, out);
        });
        const mib = (n: number) => (n / MiB).toFixed(1);
        console.log(
          `      [${mode}] 50 MiB bundle, growth of memory held (peak RSS): ` +
            `push ${mib(pushGrowth.live)} MiB (${mib(pushGrowth.rss)} MiB), pull ${mib(pullGrowth.live)} MiB (${mib(pullGrowth.rss)} MiB); ` +
            `${controller.stats.requestsByMethod.PATCH ?? 0} PATCH chunks`,
        );
        for (const [path, hex] of hashes) expect(await sha256OfFile(join(out, path)), path).to.equal(hex);
        expect(controller.stats.bytesUploaded).to.be.at.least(60 * MiB); // 10 MiB warm-up (another repository) + 50 MiB
        expect(controller.stats.requestsByMethod.PATCH ?? 0, 'large blobs go in 8 MiB PATCH chunks').to.equal(12);
        expect(pushGrowth.live, 'memory held during push').to.be.below(25 * MiB);
        expect(pullGrowth.live, 'memory held during pull').to.be.below(25 * MiB);
        expect(Math.max(pushGrowth.rss, pullGrowth.rss), 'RSS growth').to.be.below(50 * MiB);
      } finally {
        await controller.close();
        await agent.close();
      }
    });

    it('rejects a blob tampered on the registry disk with a digest error, writing nothing', async () => {
      const files: ArtifactFile[] = [
        { path: 'a.yaml', content: Buffer.from('kind: A\n') },
        { path: 'victim.yaml', content: Buffer.from('replicas: 1\n') },
      ];
      const controller = registryClientFor(reg);
      const pushed = await pushBundle(controller, `${reg.host}/flotilla/tamper`, files, META, 'v1');
      await controller.close();
      const victim = createHash('sha256').update('replicas: 1\n').digest('hex');
      await writeFile(reg.blobPath(`sha256:${victim}`), 'replicas: 9\n'); // same size, other bytes
      const agent = registryClientFor(reg);
      const out = join(work, 'tamper-out');
      try {
        const err = await pullBundleToDirectory(agent, pushed.reference, out).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(err).to.be.instanceOf(ArtifactError);
        expect((err as ArtifactError).reason).to.equal('ArtifactTampered');
        expect((err as Error).message)
          .to.include('layer "victim.yaml"')
          .and.include('digest mismatch')
          .and.include(`sha256:${victim}`);
        expect(await readdir(out).catch(() => [])).to.deep.equal([]);
        const again = await pullBundle(agent, pushed.reference).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect((again as ArtifactError).reason, 'a second attempt is rejected too (nothing bad was cached)').to.equal('ArtifactTampered');
      } finally {
        await agent.close();
      }
    });
  });
}
