import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { StallingError } from '../errors.js';
import { buildArtifact } from './artifact.js';
import { ANNOTATION_ENCRYPTION_KEY, ENCRYPTED_FILE_MEDIA_TYPE, decryptLayer, encryptLayer, keyRingEntry, parseBundleKey, parseKeyRing } from './encrypt.js';
import { ArtifactError } from './errors.js';
import { parseBundleManifest } from './manifest.js';

const newKey = () => randomBytes(32).toString('base64');

describe('bundle layer encryption (AES-256-GCM-SIV, deterministic)', () => {
  const secret = 'apiVersion: v1\nkind: Secret\nstringData:\n  token: MARKER-1234\n';

  it('is deterministic per key, differs between files and keys, and round-trips', () => {
    const k1 = parseBundleKey(newKey(), 't');
    const k2 = parseBundleKey(newKey(), 't');
    const a = encryptLayer(k1, Buffer.from(secret));
    expect(encryptLayer(k1, Buffer.from(secret)).equals(a)).to.equal(true);
    expect(encryptLayer(k2, Buffer.from(secret)).equals(a)).to.equal(false);
    expect(
      encryptLayer(k1, Buffer.from(`${secret} `))
        .subarray(0, 12)
        .equals(a.subarray(0, 12)),
    ).to.equal(false);
    expect(a.includes(Buffer.from('MARKER-1234'))).to.equal(false);
    expect(a.length).to.equal(secret.length + 28);
    expect(decryptLayer(k1, a, 'f').toString()).to.equal(secret);
    expect(decryptLayer(k1, encryptLayer(k1, Buffer.alloc(0)), 'empty').length).to.equal(0);
  });

  it('refuses a wrong key, flipped bits and a nonce that does not derive from the plaintext', () => {
    const k1 = parseBundleKey(newKey(), 't');
    const a = encryptLayer(k1, Buffer.from(secret));
    expect(() => decryptLayer(parseBundleKey(newKey(), 't'), a, 'file "s.yaml"')).to.throw(StallingError, /file "s.yaml" does not decrypt/);
    const flipped = Buffer.from(a);
    flipped[20] = (flipped[20] ?? 0) ^ 1;
    expect(() => decryptLayer(k1, flipped, 'f')).to.throw(StallingError, /does not decrypt/);
    const b = encryptLayer(k1, Buffer.from('other'));
    const spliced = Buffer.concat([a.subarray(0, 12), b.subarray(12)]);
    expect(() => decryptLayer(k1, spliced, 'f')).to.throw(StallingError);
    expect(() => decryptLayer(k1, Buffer.alloc(10), 'f')).to.throw(StallingError);
  });

  it('accepts only the base64 of 32 bytes as a key, and checks key ring entries against their IDs', () => {
    expect(() => parseBundleKey('c2hvcnQ=', 'Secret ns/k key "key"')).to.throw(StallingError, /Secret ns\/k key "key".*openssl rand -base64 32/);
    const v = newKey();
    const k = parseBundleKey(v, 't');
    expect(k.id).to.match(/^[0-9a-f]{16}$/);
    expect(parseBundleKey(v, 't').id).to.equal(k.id);
    expect([...parseKeyRing({ [keyRingEntry(k.id)]: v, other: 'x' }, 'ring').keys()]).to.deep.equal([k.id]);
    expect(() => parseKeyRing({ 'key-0000000000000000': v }, 'ring')).to.throw(StallingError, /not the key its name says/);
  });

  it('builds encrypted artifacts whose unchanged files keep their layer digests', async () => {
    const key = parseBundleKey(newKey(), 't');
    const meta = { bundleName: 'b', bundleNamespace: 'ns', encryptWith: key };
    const one = await buildArtifact(
      [
        { path: 'a.yaml', content: Buffer.from('a') },
        { path: 's.yaml', content: Buffer.from(secret) },
      ],
      meta,
    );
    const two = await buildArtifact(
      [
        { path: 'a.yaml', content: Buffer.from('a2') },
        { path: 's.yaml', content: Buffer.from(secret) },
      ],
      meta,
    );
    expect(one.layers.map((l) => l.mediaType)).to.deep.equal([ENCRYPTED_FILE_MEDIA_TYPE, ENCRYPTED_FILE_MEDIA_TYPE]);
    expect(two.layers[1]?.digest).to.equal(one.layers[1]?.digest);
    expect(two.layers[0]?.digest).to.not.equal(one.layers[0]?.digest);
    expect(one.manifest.includes(Buffer.from('MARKER'))).to.equal(false);
    const parsed = parseBundleManifest(one.manifest, 'test');
    expect(parsed.annotations[ANNOTATION_ENCRYPTION_KEY]).to.equal(key.id);
    const plain = await buildArtifact([{ path: 'a.yaml', content: Buffer.from('a') }], { bundleName: 'b', bundleNamespace: 'ns' });
    const mixed = JSON.parse(plain.manifest.toString()) as { annotations?: Record<string, string> };
    mixed.annotations = { [ANNOTATION_ENCRYPTION_KEY]: key.id };
    expect(() => parseBundleManifest(Buffer.from(JSON.stringify(mixed)), 'test')).to.throw(
      ArtifactError,
      /expected application\/vnd.flotilla.bundle.file.v1.encrypted/,
    );
  });
});
