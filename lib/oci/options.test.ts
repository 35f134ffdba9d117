import { expect } from 'chai';
import { StallingError } from '../errors.js';
import { decodeCABundle, registryClientOptions } from './options.js';

const PEM = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
const b64 = (s: string) => Buffer.from(s).toString('base64');

describe('registry client options from API objects', () => {
  it('takes the registry from a pinned reference and decodes the CA bundle', () => {
    const options = registryClientOptions(
      { reference: `127.0.0.1:5000/flotilla/x@sha256:${'a'.repeat(64)}`, caBundle: b64(PEM), insecureSkipTLS: false },
      { username: 'u', password: 'p' },
      { blobCacheDir: '/cache' },
    );
    expect(options).to.deep.equal({
      registry: '127.0.0.1:5000',
      basicHTTP: false,
      insecureSkipTLS: false,
      caPem: PEM,
      credentials: { username: 'u', password: 'p' },
      blobCacheDir: '/cache',
    });
  });

  it('keeps plain HTTP and anonymous access as configured', () => {
    const options = registryClientOptions({ reference: 'r.example.com:80/a', basicHTTP: true }, undefined);
    expect(options).to.deep.equal({ registry: 'r.example.com:80', basicHTTP: true, insecureSkipTLS: false });
  });

  it('refuses a CA bundle that holds no certificate', () => {
    expect(() => decodeCABundle(b64('not a cert'))).to.throw(StallingError, /caBundle is not base64 of PEM/);
  });
});
