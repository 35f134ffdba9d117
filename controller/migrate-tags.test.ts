import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { buildArtifact, parseReference, type Descriptor, type RegistryClient } from '../lib/oci/index.js';
import { copyVersion, type CopyClient } from './migrate-versions.js';
import { pushVersionAt, tagState } from './migrate-tags.js';
import { StallingError } from '../lib/errors.js';

/**
 * A migration never overwrites a `v<N>` tag of the target (controller/migrate-tags.ts): same digest is
 * skipped, another digest stalls naming the GitRepo, bundle, tag and both digests. On an in-memory registry
 * with the calls of lib/oci's RegistryClient; the real registries are in e2e/migration.e2e.ts.
 */

const sha = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** One registry in memory: tags, manifests and blobs per repository; every manifest write recorded. */
class MemoryRegistry {
  readonly tags = new Map<string, string>();
  readonly manifests = new Map<string, Buffer>();
  readonly blobs = new Map<string, Buffer>();
  readonly writes: string[] = [];
  readonly concurrency = 1;
  constructor(readonly registry: string) {}
  checkReference(): void {}
  async resolve(repo: string, tag: string): Promise<string> {
    const d = this.tags.get(`${repo}:${tag}`);
    if (!d) throw new Error(`MANIFEST_UNKNOWN ${repo}:${tag}`);
    return d;
  }
  async hasManifest(repo: string, digest: string): Promise<boolean> {
    return this.manifests.has(`${repo}@${digest}`);
  }
  async getManifest(repo: string, ref: string) {
    const digest = ref.startsWith('sha256:') ? ref : await this.resolve(repo, ref);
    const bytes = this.manifests.get(`${repo}@${digest}`);
    if (!bytes) throw new Error(`MANIFEST_UNKNOWN ${repo}@${ref}`);
    return { bytes, digest, mediaType: 'application/vnd.oci.image.manifest.v1+json' };
  }
  async blobSize(repo: string, digest: string): Promise<number | undefined> {
    return this.blobs.get(`${repo}@${digest}`)?.length;
  }
  async fetchBlob(repo: string, desc: Descriptor): Promise<string> {
    return this.blobs.get(`${repo}@${desc.digest}`)?.toString('base64') ?? '';
  }
  async pushBlob(repo: string, desc: Descriptor, source: unknown): Promise<'uploaded' | 'skipped'> {
    const bytes = Buffer.isBuffer(source) ? source : Buffer.from(String((source as { file?: string }).file ?? source), 'base64');
    this.blobs.set(`${repo}@${desc.digest}`, bytes);
    return 'uploaded';
  }
  async putManifest(repo: string, ref: string, bytes: Buffer): Promise<string> {
    const digest = sha(bytes);
    this.writes.push(`${repo}:${ref}`);
    this.manifests.set(`${repo}@${digest}`, bytes);
    if (!ref.startsWith('sha256:')) this.tags.set(`${repo}:${ref}`, digest);
    return digest;
  }
}

const client = (r: MemoryRegistry) => r as unknown as CopyClient & RegistryClient;
const OWNER = 'GitRepo ws/apps, bundle apps-web';
const files = (text: string) => [{ path: 'cm.yaml', content: Buffer.from(text) }];
const meta = { bundleName: 'apps-web', bundleNamespace: 'ws' };

/** Puts an artifact of `text` into `repo` of `reg` under `tag`; returns its digest. */
async function seed(reg: MemoryRegistry, repo: string, tag: string, text: string): Promise<string> {
  const a = await buildArtifact(files(text), meta);
  for (const b of a.blobs) reg.blobs.set(`${repo}@${b.descriptor.digest}`, b.source as Buffer);
  await reg.putManifest(repo, tag, a.manifest);
  return a.digest;
}

describe('tags a storage migration writes into the target registry', () => {
  it('copies a version whose tag is free, and skips it when the tag holds the same digest', async () => {
    const one = new MemoryRegistry('one.example');
    const two = new MemoryRegistry('two.example');
    const digest = await seed(one, 'a/ws-apps-web', 'v1', 'v1 content');
    const first = await copyVersion(client(one), 'a/ws-apps-web', client(two), 'b/ws-apps-web', { version: 1, digest }, OWNER);
    expect(first.copied).to.equal(true);
    expect(two.tags.get('b/ws-apps-web:v1')).to.equal(digest);
    const again = await copyVersion(client(one), 'a/ws-apps-web', client(two), 'b/ws-apps-web', { version: 1, digest }, OWNER);
    expect(again.copied).to.equal(false);
    expect(two.writes).to.deep.equal(['b/ws-apps-web:v1']);
  });

  it('refuses to overwrite a tag holding another digest, naming the GitRepo, bundle, tag and both digests', async () => {
    const one = new MemoryRegistry('one.example');
    const two = new MemoryRegistry('two.example');
    const moving = await seed(one, 'a/ws-apps-web', 'v1', 'the version that moves');
    const other = await seed(two, 'b/ws-apps-web', 'v1', 'something else');
    const writes = two.writes.length;
    const err = await copyVersion(client(one), 'a/ws-apps-web', client(two), 'b/ws-apps-web', { version: 1, digest: moving }, OWNER).catch((e: unknown) => e);
    expect(err).to.be.instanceOf(StallingError);
    expect((err as StallingError).reason).to.equal('ArtifactTagConflict');
    const message = (err as Error).message;
    for (const part of [OWNER, 'tag v1', 'two.example/b/ws-apps-web', moving, other, 'delete tag v1', 'another reference']) expect(message).to.include(part);
    expect(two.tags.get('b/ws-apps-web:v1')).to.equal(other);
    expect(two.writes.length).to.equal(writes);
  });

  it('pushes a version etcd kept under its tag once, and refuses a tag that holds another version', async () => {
    const reg = new MemoryRegistry('one.example');
    const repository = parseReference('one.example/a/ws-apps-web');
    const pushed = await pushVersionAt(client(reg), repository, files('kept'), meta, 'v1', OWNER);
    expect(pushed).to.deep.equal({ digest: (await buildArtifact(files('kept'), meta)).digest, pushed: true });
    expect(await pushVersionAt(client(reg), repository, files('kept'), meta, 'v1', OWNER)).to.deep.equal({ ...pushed, pushed: false });
    const err = await pushVersionAt(client(reg), repository, files('changed'), meta, 'v1', OWNER).catch((e: unknown) => e);
    expect((err as Error).message).to.include(`already holds ${pushed.digest}`);
    expect(reg.writes).to.deep.equal(['a/ws-apps-web:v1']);
  });

  it('counts a tag that is not there as absent', async () => {
    expect(await tagState(client(new MemoryRegistry('r.example')), 'a/b', 'v3', sha('x'), OWNER)).to.equal('absent');
  });
});
