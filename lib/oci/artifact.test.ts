import { expect } from 'chai';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ANNOTATION_REVISION,
  ANNOTATION_SOURCE,
  ANNOTATION_TITLE,
  BUNDLE_ARTIFACT_TYPE,
  BUNDLE_CONFIG_MEDIA_TYPE,
  BUNDLE_FILE_MEDIA_TYPE,
  buildArtifact,
  sanitizeSourceURL,
  type ArtifactMeta,
  type ArtifactFile,
} from './artifact.js';
import { canonicalJSON } from '../util/json.js';
import { sha256Digest } from './digest.js';
import { ArtifactError } from './errors.js';
import { parseBundleConfig, parseBundleManifest } from './manifest.js';

const meta: ArtifactMeta = { bundleName: 'hello', bundleNamespace: 'fleet-default', source: 'https://git.example.com/r.git', revision: 'abc123' };
const file = (path: string, text: string): ArtifactFile => ({ path, content: Buffer.from(text) });
const files = [file('b.yaml', 'kind: B\n'), file('a.yaml', 'kind: A\n'), file('dir/c.yaml', 'kind: C\n')];

describe('bundle artifact format', () => {
  it('gives the same bytes and digest for the same files in any order', async () => {
    const one = await buildArtifact(files, meta);
    const two = await buildArtifact([...files].reverse(), { ...meta });
    expect(two.manifest.equals(one.manifest)).to.equal(true);
    expect(two.digest).to.equal(one.digest);
    expect(one.digest).to.equal(sha256Digest(one.manifest));
  });

  const changes: Array<[string, ArtifactFile[], ArtifactMeta]> = [
    ['one byte of one file', [file('b.yaml', 'kind: B \n'), files[1]!, files[2]!], meta],
    ['a file path', [file('b2.yaml', 'kind: B\n'), files[1]!, files[2]!], meta],
    ['a file added', [...files, file('d.yaml', '')], meta],
    ['the revision', files, { ...meta, revision: 'def456' }],
    ['the bundle name', files, { ...meta, bundleName: 'other' }],
    ['the contents ID', files, { ...meta, contentsID: 's-123' }],
  ];
  for (const [what, changedFiles, changedMeta] of changes) {
    it(`gives a different digest when ${what} changes`, async () => {
      const base = await buildArtifact(files, meta);
      expect((await buildArtifact(changedFiles, changedMeta)).digest).to.not.equal(base.digest);
    });
  }

  it('writes an OCI 1.1 manifest: artifactType, config, one titled raw layer per file sorted by path, source and revision', async () => {
    const built = await buildArtifact(files, meta);
    const m = JSON.parse(built.manifest.toString('utf8')) as Record<string, unknown>;
    expect(m.schemaVersion).to.equal(2);
    expect(m.mediaType).to.equal('application/vnd.oci.image.manifest.v1+json');
    expect(m.artifactType).to.equal(BUNDLE_ARTIFACT_TYPE);
    expect((m.config as { mediaType: string }).mediaType).to.equal(BUNDLE_CONFIG_MEDIA_TYPE);
    const layers = m.layers as Array<{ mediaType: string; digest: string; size: number; annotations: Record<string, string> }>;
    expect(layers.map((l) => l.annotations[ANNOTATION_TITLE])).to.deep.equal(['a.yaml', 'b.yaml', 'dir/c.yaml']);
    expect(layers.every((l) => l.mediaType === BUNDLE_FILE_MEDIA_TYPE)).to.equal(true);
    expect(layers[0]).to.include({ digest: sha256Digest('kind: A\n'), size: 8 });
    expect(m.annotations).to.deep.equal({ [ANNOTATION_REVISION]: 'abc123', [ANNOTATION_SOURCE]: 'https://git.example.com/r.git' });
    expect(built.manifest.toString('utf8')).to.equal(canonicalJSON(m));
  });

  it('writes a small canonical config naming the bundle', async () => {
    const built = await buildArtifact(files, { ...meta, contentsID: 's-1' });
    const config = built.blobs[0]!;
    expect(config.descriptor).to.deep.equal(built.config);
    expect(Buffer.isBuffer(config.source) && config.source.toString('utf8')).to.equal(
      '{"bundle":{"name":"hello","namespace":"fleet-default"},"contentsID":"s-1","formatVersion":1}',
    );
    expect(parseBundleConfig(config.source as Buffer, 'x')).to.deep.equal({
      formatVersion: 1,
      bundle: { name: 'hello', namespace: 'fleet-default' },
      contentsID: 's-1',
    });
  });

  it('stores files with equal bytes once, keeping a layer per path', async () => {
    const built = await buildArtifact([file('x.yaml', 'same'), file('y.yaml', 'same')], meta);
    expect(built.layers).to.have.length(2);
    expect(built.blobs).to.have.length(2);
  });

  it('omits annotations it has no value for, and never writes credentials of the source URL', async () => {
    const bare = JSON.parse((await buildArtifact(files, { bundleName: 'a', bundleNamespace: 'b' })).manifest.toString()) as Record<string, unknown>;
    expect(bare).to.not.have.property('annotations');
    const withCreds = await buildArtifact(files, { ...meta, source: 'https://user:s3cret@git.example.com/r.git' });
    expect(withCreds.manifest.toString()).to.not.include('s3cret').and.to.not.include('user@');
    expect(sanitizeSourceURL('git@github.com:org/repo.git')).to.equal('github.com:org/repo.git');
  });

  it('hashes files on disk like the same bytes in memory', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'flotilla-artifact-'));
    try {
      await writeFile(join(dir, 'big'), Buffer.alloc(3 * 1024 * 1024, 7));
      const fromDisk = await buildArtifact([{ path: 'big.bin', file: join(dir, 'big') }], meta);
      const fromMemory = await buildArtifact([{ path: 'big.bin', content: Buffer.alloc(3 * 1024 * 1024, 7) }], meta);
      expect(fromDisk.digest).to.equal(fromMemory.digest);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  const invalid: Array<[string, ArtifactFile[], RegExp]> = [
    ['an absolute path', [file('/etc/x', '')], /"\/etc\/x" is absolute/],
    ['a path leaving the bundle', [file('a/../../x', '')], /contains "\.\."/],
    ['a duplicate path', [file('a', '1'), file('a', '2')], /"a" appears twice/],
    ['a file that is also a directory', [file('a', '1'), file('a/b', '2')], /"a\/b" is inside "a"/],
  ];
  for (const [what, bad, message] of invalid) {
    it(`refuses to build ${what} (InvalidBundle naming the file)`, async () => {
      const err = await buildArtifact(bad, meta).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).to.be.instanceOf(ArtifactError);
      expect((err as ArtifactError).reason).to.equal('InvalidBundle');
      expect((err as Error).message).to.match(message);
    });
  }

  it('reads back what it builds', async () => {
    const built = await buildArtifact(files, meta);
    const parsed = parseBundleManifest(built.manifest, 'test');
    expect(parsed.layers.map((l) => l.path)).to.deep.equal(['a.yaml', 'b.yaml', 'dir/c.yaml']);
    expect(parsed.config).to.deep.include({ digest: built.config.digest });
    expect(parsed.totalBytes).to.equal(24);
  });
});
