import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ArtifactError, OCI_MANIFEST_MEDIA_TYPE, sha256Digest, type Descriptor } from '../oci/index.js';
import { AIRGAP_ANNOTATION, LayoutReader, blobPath, createLayout } from './layout.js';
import { TarWriter, readTarIndex } from './tar.js';
import { importTarget } from './transfer.js';

const blob = (text: string): { desc: Descriptor; bytes: Buffer } => {
  const bytes = Buffer.from(text);
  return { desc: { mediaType: 'application/octet-stream', digest: sha256Digest(bytes), size: bytes.length }, bytes };
};

async function failure(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    return (err as Error).message;
  }
  return 'no error';
}

describe('OCI layout (airgap export/import)', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'layout-test-'));
  });
  afterEach(async () => rm(dir, { recursive: true, force: true }));

  const layer = blob('a layer '.repeat(200));
  const config = blob('{"os":"linux"}');
  const manifest = blob(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST_MEDIA_TYPE, config: config.desc, layers: [layer.desc] }));
  const top = {
    ...manifest.desc,
    mediaType: OCI_MANIFEST_MEDIA_TYPE,
    annotations: { [AIRGAP_ANNOTATION.repository]: 'team/app', [AIRGAP_ANNOTATION.tag]: 'v1' },
  };

  async function write(path: string, tar: boolean): Promise<void> {
    const w = await createLayout(path, tar);
    const layerFile = join(dir, 'layer.src');
    await writeFile(layerFile, layer.bytes);
    await w.put(layer.desc, { file: layerFile });
    await w.put(layer.desc, layer.bytes);
    await w.put(config.desc, config.bytes);
    await w.put(manifest.desc, manifest.bytes);
    await w.finish([top]);
  }

  for (const tar of [true, false]) {
    const kind = tar ? 'tar archive' : 'directory';
    it(`writes a ${kind} and reads back every entry and blob, verified`, async () => {
      const path = join(dir, tar ? 'out.tar' : 'out');
      await write(path, tar);
      const r = await LayoutReader.open(path);
      try {
        expect(await r.index()).to.deep.equal([top]);
        expect((await r.manifest(top)).equals(manifest.bytes)).to.equal(true);
        const file = await r.blobFile(layer.desc);
        expect((await readFile(file)).equals(layer.bytes)).to.equal(true);
      } finally {
        await r.close();
      }
    });

    it(`refuses a tampered blob in a ${kind}, naming the layout and the file`, async () => {
      const path = join(dir, tar ? 'out.tar' : 'out');
      await write(path, tar);
      if (tar) {
        const fh = await open(path, 'r+');
        const entry = (await readTarIndex(fh, path)).get(blobPath(layer.desc.digest));
        await fh.write(Buffer.from('X'), 0, 1, (entry?.offset ?? 0) + 10);
        await fh.close();
      } else {
        const bytes = Buffer.from(layer.bytes);
        bytes[10] = 88;
        await writeFile(join(path, blobPath(layer.desc.digest)), bytes);
      }
      const r = await LayoutReader.open(path);
      try {
        const err = await r.blobFile(layer.desc).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(err).to.be.instanceOf(ArtifactError).with.property('reason', 'ArtifactTampered');
        expect((err as Error).message)
          .to.contain(path)
          .and.contain(blobPath(layer.desc.digest))
          .and.contain('hashes to');
      } finally {
        await r.close();
      }
    });
  }

  it('names a missing blob and a blob of the wrong size', async () => {
    const path = join(dir, 'out');
    await write(path, false);
    await rm(join(path, blobPath(config.desc.digest)));
    await writeFile(join(path, blobPath(layer.desc.digest)), 'short');
    const r = await LayoutReader.open(path);
    try {
      expect(await failure(r.blobFile(config.desc))).to.contain(`${blobPath(config.desc.digest)}: missing`);
      expect(await failure(r.blobFile(layer.desc))).to.contain(`5 bytes where the manifest declares ${layer.desc.size}`);
    } finally {
      await r.close();
    }
  });

  it('refuses what is not a layout: no oci-layout, a corrupt tar header, a truncated tar, index.json not JSON', async () => {
    expect(await failure(LayoutReader.open(dir))).to.contain(`${dir}: oci-layout is missing`);
    const junk = join(dir, 'junk.tar');
    await writeFile(junk, Buffer.alloc(1024, 7));
    expect(await failure(LayoutReader.open(junk))).to.contain('bad header checksum at byte 0');
    const path = join(dir, 'out.tar');
    await write(path, true);
    const whole = await readFile(path);
    await writeFile(join(dir, 'cut.tar'), whole.subarray(0, 1536 + 100));
    expect(await failure(LayoutReader.open(join(dir, 'cut.tar')))).to.contain('truncated');
    const d = join(dir, 'bad');
    await write(d, false);
    await writeFile(join(d, 'index.json'), '{');
    const r = await LayoutReader.open(d);
    expect(await failure(r.index())).to.contain(`${d}: index.json is not JSON`);
    await r.close();
  });

  it('reads a layout archived by the system tar (other tools write ./ paths and PAX headers)', async () => {
    const path = join(dir, 'out');
    await write(path, false);
    const tarFile = join(dir, 'system.tar');
    execFileSync('tar', ['--format=pax', '-cf', tarFile, '-C', path, '.']);
    const r = await LayoutReader.open(tarFile);
    try {
      expect((await r.index())[0]?.digest).to.equal(manifest.desc.digest);
      expect((await readFile(await r.blobFile(layer.desc))).equals(layer.bytes)).to.equal(true);
    } finally {
      await r.close();
    }
  });

  it('archives long paths with the ustar prefix and reads them back', async () => {
    const long = `${'d'.repeat(120)}/${'f'.repeat(90)}`;
    const path = join(dir, 'long.tar');
    const fh = await open(path, 'w+');
    const w = new TarWriter(fh);
    await w.file(long, 3, [Buffer.from('abc')]);
    await w.finish();
    const entries = await readTarIndex(fh, path);
    await fh.close();
    expect(entries.get(long)).to.deep.equal({ offset: 512, size: 3 });
    expect(execFileSync('tar', ['-tf', path]).toString().trim()).to.equal(long);
  });

  const targets: Array<[string, Record<string, string>, string, { repository: string; tag: string | undefined } | string]> = [
    [
      'the repository annotation under the namespace',
      { [AIRGAP_ANNOTATION.repository]: 'team/app', [AIRGAP_ANNOTATION.tag]: 'v1' },
      'gap',
      { repository: 'gap/team/app', tag: 'v1' },
    ],
    ['a full ref.name (oras, skopeo)', { [AIRGAP_ANNOTATION.refName]: 'src:5000/team/app:v2' }, '', { repository: 'team/app', tag: 'v2' }],
    [
      "a version's cosign signature, next to it under its .sig tag",
      { [AIRGAP_ANNOTATION.repository]: 'bundles/app', [AIRGAP_ANNOTATION.kind]: 'signature', [AIRGAP_ANNOTATION.tag]: `sha256-${'a'.repeat(64)}.sig` },
      'gap',
      { repository: 'gap/bundles/app', tag: `sha256-${'a'.repeat(64)}.sig` },
    ],
    [
      "a version's referrers index, under the referrers tag",
      { [AIRGAP_ANNOTATION.repository]: 'bundles/app', [AIRGAP_ANNOTATION.kind]: 'referrers', [AIRGAP_ANNOTATION.tag]: `sha256-${'b'.repeat(64)}` },
      'gap',
      { repository: 'gap/bundles/app', tag: `sha256-${'b'.repeat(64)}` },
    ],
    ['a path that escapes', { [AIRGAP_ANNOTATION.repository]: '../etc' }, 'gap', 'names no repository'],
    ['no annotation', {}, 'gap', 'names no repository'],
  ];
  for (const [name, annotations, ns, want] of targets) {
    it(`imports to ${name}`, () => {
      const entry = { ...manifest.desc, annotations };
      if (typeof want === 'string') expect(() => importTarget(entry, ns, 'x.tar')).to.throw(ArtifactError, want);
      else expect(importTarget(entry, ns, 'x.tar')).to.deep.equal(want);
    });
  }
});
