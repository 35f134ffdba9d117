import { expect } from 'chai';
import { COSIGN_SIGNATURE_ANNOTATION, SIMPLE_SIGNING_MEDIA_TYPE, payloadDigest, signatureManifest, signatureTag, simpleSigningPayload } from './cosign.js';
import { sha256Digest } from './digest.js';
import { StallingError } from '../errors.js';

const DIGEST = `sha256:${'ab'.repeat(32)}`;

describe('cosign simple signing format', () => {
  it('names the signature tag after the digest', () => {
    expect(signatureTag(DIGEST)).to.equal(`sha256-${'ab'.repeat(32)}.sig`);
    expect(() => signatureTag('v1')).to.throw(StallingError);
  });

  it('writes a payload naming repository and digest, and reads the digest back', () => {
    const payload = simpleSigningPayload('reg:5000/flotilla/b', DIGEST);
    const json = JSON.parse(payload.toString()) as { critical: { identity: Record<string, string>; type: string } };
    expect(json.critical.identity['docker-reference']).to.equal('reg:5000/flotilla/b');
    expect(json.critical.type).to.equal('cosign container image signature');
    expect(payloadDigest(payload)).to.equal(DIGEST);
    expect(payloadDigest(Buffer.from('{"critical":{"type":"other","image":{"docker-manifest-digest":"x"}}}'))).to.equal(undefined);
    expect(payloadDigest(Buffer.from('not json'))).to.equal(undefined);
  });

  it('lays out signature manifests as cosign does: one payload layer per signature, config diff_ids matching', () => {
    const payload = simpleSigningPayload('r/b', DIGEST);
    const layer = {
      descriptor: {
        mediaType: SIMPLE_SIGNING_MEDIA_TYPE,
        digest: sha256Digest(payload),
        size: payload.length,
        annotations: { [COSIGN_SIGNATURE_ANNOTATION]: 'c2ln' },
      },
      signature: 'c2ln',
    };
    const { manifest, config } = signatureManifest([layer, layer]);
    const m = JSON.parse(manifest.toString()) as { layers: Array<{ annotations: Record<string, string> }>; config: { digest: string } };
    expect(m.layers).to.have.length(2);
    expect(m.layers[0]?.annotations[COSIGN_SIGNATURE_ANNOTATION]).to.equal('c2ln');
    expect(m.config.digest).to.equal(sha256Digest(config));
    expect((JSON.parse(config.toString()) as { rootfs: { diff_ids: string[] } }).rootfs.diff_ids).to.deep.equal([
      layer.descriptor.digest,
      layer.descriptor.digest,
    ]);
  });
});
