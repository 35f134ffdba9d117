import { expect } from 'chai';
import { createHash, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { bundleReferrers, checkSigstoreBundle, dssePae, isSigstoreBundleType } from './sigstore.js';

const BUNDLE_TYPE = 'application/vnd.dev.sigstore.bundle.v0.3+json';
const ec = () => generateKeyPairSync('ec', { namedCurve: 'P-256' });
const trusted = ec();
const other = ec();
const hex = (s: string) => createHash('sha256').update(s).digest('hex');
const DIGEST = `sha256:${hex('version one')}`;

/** A DSSE bundle in the shape cosign v3 writes, signing an in-toto statement of `subjectDigest` with `key`. */
function dsseBundle(subjectDigest: string, key: KeyObject, payloadType = 'application/vnd.in-toto+json'): Buffer {
  const statement = Buffer.from(
    JSON.stringify({
      _type: 'https://in-toto.io/Statement/v1',
      subject: [{ digest: { sha256: subjectDigest.slice(7) }, annotations: {} }],
      predicateType: 'https://sigstore.dev/cosign/sign/v1',
      predicate: {},
    }),
  );
  const sig = sign('sha256', dssePae(payloadType, statement), key).toString('base64');
  return Buffer.from(
    JSON.stringify({
      mediaType: BUNDLE_TYPE,
      verificationMaterial: { publicKey: { hint: 'test' } },
      dsseEnvelope: { payload: statement.toString('base64'), payloadType, signatures: [{ sig }] },
    }),
  );
}

function messageBundle(artifact: Buffer, key: KeyObject): Buffer {
  return Buffer.from(
    JSON.stringify({
      mediaType: BUNDLE_TYPE,
      messageSignature: {
        messageDigest: { algorithm: 'SHA2_256', digest: createHash('sha256').update(artifact).digest('base64') },
        signature: sign('sha256', artifact, key).toString('base64'),
      },
    }),
  );
}

describe('sigstore bundle signatures (cosign v3)', () => {
  it('encodes DSSE PAE with byte lengths', () => {
    expect(dssePae('t/é', Buffer.from('ab')).toString('utf8')).to.equal('DSSEv1 4 t/é 2 ab');
  });

  it('verifies a DSSE bundle by a trusted key whose statement names the digest, with the key index', () => {
    expect(checkSigstoreBundle(dsseBundle(DIGEST, trusted.privateKey), DIGEST, [other.publicKey, trusted.publicKey])).to.deep.equal({
      status: 'verified',
      keyIndex: 1,
    });
  });

  it('refuses a DSSE bundle by another key as untrusted, and one of another digest as other-digest', () => {
    expect(checkSigstoreBundle(dsseBundle(DIGEST, other.privateKey), DIGEST, [trusted.publicKey]).status).to.equal('untrusted');
    const otherDigest = `sha256:${hex('version two')}`;
    expect(checkSigstoreBundle(dsseBundle(otherDigest, trusted.privateKey), DIGEST, [trusted.publicKey])).to.deep.equal({
      status: 'other-digest',
      signed: otherDigest,
    });
  });

  it('refuses a DSSE payload edited after signing, another payload type, and malformed bundles', () => {
    const bundle = JSON.parse(dsseBundle(DIGEST, trusted.privateKey).toString()) as { dsseEnvelope: { payload: string } };
    const edited = Buffer.from(bundle.dsseEnvelope.payload, 'base64').toString().replace('sign/v1', 'sign/v2');
    bundle.dsseEnvelope.payload = Buffer.from(edited).toString('base64');
    expect(checkSigstoreBundle(Buffer.from(JSON.stringify(bundle)), DIGEST, [trusted.publicKey]).status).to.equal('untrusted');
    expect(checkSigstoreBundle(dsseBundle(DIGEST, trusted.privateKey, 'text/plain'), DIGEST, [trusted.publicKey]).status).to.equal('invalid');
    expect(checkSigstoreBundle(Buffer.from('not json'), DIGEST, [trusted.publicKey]).status).to.equal('invalid');
    expect(checkSigstoreBundle(Buffer.from('{"mediaType":"application/json","dsseEnvelope":{}}'), DIGEST, [trusted.publicKey]).status).to.equal('invalid');
  });

  it('verifies a messageSignature bundle over the manifest bytes and checks messageDigest', () => {
    const manifest = Buffer.from('{"schemaVersion":2}');
    const digest = `sha256:${createHash('sha256').update(manifest).digest('hex')}`;
    expect(checkSigstoreBundle(messageBundle(manifest, trusted.privateKey), digest, [trusted.publicKey], manifest).status).to.equal('verified');
    expect(checkSigstoreBundle(messageBundle(manifest, other.privateKey), digest, [trusted.publicKey], manifest).status).to.equal('untrusted');
    expect(checkSigstoreBundle(messageBundle(manifest, trusted.privateKey), DIGEST, [trusted.publicKey], manifest).status).to.equal('other-digest');
    expect(checkSigstoreBundle(messageBundle(manifest, trusted.privateKey), digest, [trusted.publicKey], Buffer.from('{}')).status).to.equal('invalid');
  });

  it('lists only sigstore bundle referrers of an index, bounded', () => {
    const d = (n: number) => `sha256:${hex(String(n))}`;
    const index = (n: number, artifactType: string) =>
      Buffer.from(JSON.stringify({ schemaVersion: 2, manifests: Array.from({ length: n }, (_, i) => ({ digest: d(i), artifactType, size: 1 })) }));
    expect(bundleReferrers(index(2, BUNDLE_TYPE))).to.deep.equal([d(0), d(1)]);
    expect(bundleReferrers(index(2, 'application/vnd.example.sbom+json'))).to.deep.equal([]);
    expect(bundleReferrers(index(100, BUNDLE_TYPE))).to.have.length(16);
    expect(bundleReferrers(Buffer.from('nope'))).to.deep.equal([]);
    expect(isSigstoreBundleType('application/vnd.dev.sigstore.bundle+json;version=0.2')).to.equal(true);
    expect(isSigstoreBundleType('application/vnd.dev.sigstore.bundle.v0.3+json')).to.equal(true);
    expect(isSigstoreBundleType('application/vnd.dev.sigstore.bundlex')).to.equal(false);
    expect(isSigstoreBundleType(3)).to.equal(false);
  });
});
