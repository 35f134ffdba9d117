import { expect } from 'chai';
import { generateKeyPairSync, randomBytes, scryptSync } from 'node:crypto';
import { xsalsa20poly1305 } from '@noble/ciphers/salsa.js';
import { StallingError } from '../errors.js';
import { parsePublicKeys, parseSigningKey, publicKeyPem, signPayload, verifyPayload } from './sign.js';

function p256() {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  return {
    pkcs8: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
    sec1: privateKey.export({ format: 'pem', type: 'sec1' }).toString(),
    der: privateKey.export({ format: 'der', type: 'pkcs8' }),
    pub: publicKey.export({ format: 'pem', type: 'spki' }).toString(),
  };
}

/** A key in cosign's encrypted envelope (scrypt + secretbox), made here the way the format describes it. */
function encryptedCosignKey(der: Buffer, password: string, label = 'ENCRYPTED SIGSTORE PRIVATE KEY'): string {
  const salt = randomBytes(32);
  const nonce = randomBytes(24);
  const secret = scryptSync(password, salt, 32, { N: 1024, r: 8, p: 1 });
  const ciphertext = Buffer.from(xsalsa20poly1305(secret, nonce).encrypt(der));
  const envelope = JSON.stringify({
    kdf: { name: 'scrypt', params: { N: 1024, r: 8, p: 1 }, salt: salt.toString('base64') },
    cipher: { name: 'nacl/secretbox', nonce: nonce.toString('base64') },
    ciphertext: ciphertext.toString('base64'),
  });
  const body = Buffer.from(envelope)
    .toString('base64')
    .replace(/(.{64})/g, '$1\n');
  return `-----BEGIN ${label}-----\n${body}\n-----END ${label}-----\n`;
}

describe('signing keys (ECDSA P-256)', () => {
  const payload = Buffer.from('{"critical":{}}');

  for (const form of ['pkcs8', 'sec1'] as const) {
    it(`signs with a ${form} PEM key and verifies with its public key only`, () => {
      const k = p256();
      const key = parseSigningKey(k[form], undefined, 'Secret ns/s');
      const sig = signPayload(key, payload);
      const [pub] = parsePublicKeys(k.pub, 'test');
      expect(verifyPayload(pub!, payload, sig)).to.equal(true);
      expect(verifyPayload(pub!, Buffer.from('{"critical":{"x":1}}'), sig)).to.equal(false);
      const [other] = parsePublicKeys(p256().pub, 'test');
      expect(verifyPayload(other!, payload, sig)).to.equal(false);
      expect(publicKeyPem(key.publicKey)).to.equal(k.pub);
    });
  }

  for (const label of ['ENCRYPTED SIGSTORE PRIVATE KEY', 'ENCRYPTED COSIGN PRIVATE KEY']) {
    it(`reads a cosign encrypted key (${label}) with its password and refuses a wrong one`, () => {
      const k = p256();
      const pem = encryptedCosignKey(k.der, 'pw', label);
      const key = parseSigningKey(pem, 'pw', 'Secret ns/s');
      expect(publicKeyPem(key.publicKey)).to.equal(k.pub);
      expect(() => parseSigningKey(pem, 'nope', 'Secret ns/s')).to.throw(StallingError, /wrong password/);
      expect(() => parseSigningKey(pem, undefined, 'Secret ns/s')).to.throw(StallingError, /no "password"/);
    });
  }

  it('refuses keys that are not P-256, and texts without keys', () => {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
    expect(() => parseSigningKey(rsa, undefined, 'Secret ns/s')).to.throw(StallingError, /expected ECDSA P-256/);
    const p384 = generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).publicKey.export({ format: 'pem', type: 'spki' }).toString();
    expect(() => parsePublicKeys(p384, 'Secret ns/v')).to.throw(StallingError, /Secret ns\/v.*P-256/);
    expect(() => parsePublicKeys('nothing here', 'Secret ns/v')).to.throw(StallingError, /no PEM PUBLIC KEY/);
    expect(() => parseSigningKey('nothing', undefined, 'Secret ns/s')).to.throw(StallingError, /no PEM private key/);
  });

  it('reads several public keys (rotation) and never verifies a malformed signature', () => {
    const a = p256();
    const b = p256();
    const keys = parsePublicKeys(`${a.pub}\n${b.pub}`, 'test');
    expect(keys).to.have.length(2);
    const sig = signPayload(parseSigningKey(b.pkcs8, undefined, 't'), payload);
    expect(keys.map((k) => verifyPayload(k, payload, sig))).to.deep.equal([false, true]);
    expect(verifyPayload(keys[0]!, payload, 'not base64 at all!')).to.equal(false);
  });
});
