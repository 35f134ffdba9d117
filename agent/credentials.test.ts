import { expect } from 'chai';
import { FlotillaError } from '../lib/errors.js';
import { decodeSecretData, encodeSecretData } from '../lib/kube/secret.js';
import {
  DEFAULT_REGISTRATION_NAMESPACE,
  DEFAULT_TOKEN_SECONDS,
  newClientRandom,
  parseBootstrap,
  registrationName,
  renewalDueAt,
  renewalSeconds,
  sanitizeClientID,
  stateFromSecret,
  stateToSecret,
  tokenTimes,
  upstreamKubeConfig,
} from './credentials.js';

/** An unsigned JWT with the given claims (the agent never verifies tokens, it only reads their times). */
function jwt(claims: Record<string, unknown>): string {
  const part = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  return `${part({ alg: 'RS256' })}.${part(claims)}.signature`;
}

const bootstrap = { apiServerURL: 'https://127.0.0.1:6443', apiServerCA: '-----BEGIN CERTIFICATE-----', token: 't', namespace: 'flotilla-default' };

describe('agent credentials', () => {
  describe('registration names', () => {
    const cases: { clientID: string; want: string }[] = [
      { clientID: '6a3f0e0c-1b2d-4c5e-9f00-112233445566', want: '6a3f0e0c-1b2d-4c5e-9f00-112233445566-abcdefghij' },
      { clientID: 'My_Cluster.Prod', want: 'my-cluster-prod-abcdefghij' },
      { clientID: `${'x'.repeat(39)}--y`, want: `${'x'.repeat(39)}-abcdefghij` },
      { clientID: `${'a'.repeat(60)}`, want: `${'a'.repeat(40)}-abcdefghij` },
    ];
    for (const c of cases)
      it(`names the registration of "${c.clientID.slice(0, 20)}..." ${c.want.slice(0, 24)}...`, () => {
        expect(registrationName(c.clientID, 'abcdefghij')).to.equal(c.want);
      });
    it('gives a clientID with no usable character a hashed prefix', () => {
      expect(sanitizeClientID('___')).to.match(/^[0-9a-f]{12}$/);
    });
    it('makes clientRandom 10 lowercase alphanumerics', () => {
      expect(newClientRandom()).to.match(/^[a-z0-9]{10}$/);
      expect(newClientRandom(() => 0)).to.equal('aaaaaaaaaa');
    });
  });

  describe('renewal', () => {
    const iat = Date.parse('2026-01-01T00:00:00Z') / 1000;
    const cases: { name: string; token: string; expires?: string; want: string | undefined }[] = [
      { name: "at 2/3 of the token's own life", token: jwt({ iat, exp: iat + 3 * 3600 }), want: '2026-01-01T02:00:00.000Z' },
      {
        name: "from expires and a day's life when the token carries no times",
        token: 'opaque',
        expires: '2026-01-02T00:00:00Z',
        want: '2026-01-01T16:00:00.000Z',
      },
      { name: 'never when nothing says when it expires', token: 'opaque', want: undefined },
    ];
    for (const c of cases)
      it(`renews ${c.name}`, () => {
        const due = renewalDueAt({ token: c.token, ...(c.expires ? { expires: c.expires } : {}) });
        expect(due === undefined ? undefined : new Date(due).toISOString()).to.equal(c.want);
      });
    it('asks for the same lifetime again, at least ten minutes, else a day', () => {
      expect(renewalSeconds(jwt({ iat, exp: iat + 7200 }))).to.equal(7200);
      expect(renewalSeconds(jwt({ iat, exp: iat + 60 }))).to.equal(600);
      expect(renewalSeconds('opaque')).to.equal(DEFAULT_TOKEN_SECONDS);
    });
    it('reads no times from a token that is not a JWT', () => {
      expect(tokenTimes('a.%%%.c')).to.deep.equal({});
    });
  });

  describe('bootstrap Secret', () => {
    it('reads the required keys, with the default registration namespace', () => {
      const b = parseBootstrap({ ...bootstrap, clusterLabels: '{"env":"prod"}' }, 'ns/b');
      expect(b.clusterLabels).to.deep.equal({ env: 'prod' });
      expect(b.registrationNamespace).to.equal(DEFAULT_REGISTRATION_NAMESPACE);
    });
    const bad: { name: string; values: Record<string, string>; error: RegExp }[] = [
      { name: 'a missing token', values: { ...bootstrap, token: '' }, error: /token/ },
      { name: 'a missing namespace', values: { apiServerURL: bootstrap.apiServerURL, apiServerCA: 'x', token: 't' }, error: /namespace/ },
      { name: 'labels that are not a JSON object of strings', values: { ...bootstrap, clusterLabels: '{"a":1}' }, error: /clusterLabels/ },
      { name: 'a URL that is not one', values: { ...bootstrap, apiServerURL: 'nope' }, error: /apiServerURL/ },
    ];
    for (const c of bad)
      it(`refuses ${c.name}, naming the key but not the value`, () => {
        expect(() => parseBootstrap(c.values, 'ns/b'))
          .to.throw(FlotillaError, c.error)
          .and.not.to.match(/-----BEGIN/);
      });
  });

  describe('state Secret', () => {
    it('round-trips a state through base64 Secret data', () => {
      const state = {
        clientRandom: 'abcdefghij',
        credential: { token: 't', clusterName: 'c', clusterNamespace: 'cn', apiServerURL: 'https://x', apiServerCA: 'ca', expires: '2026-01-01T00:00:00Z' },
      };
      expect(stateFromSecret(decodeSecretData(encodeSecretData(stateToSecret(state))))).to.deep.equal(state);
    });
    it('counts a credential missing a key as none, keeping clientRandom', () => {
      expect(stateFromSecret({ clientRandom: 'r', token: 't', clusterName: 'c' })).to.deep.equal({ clientRandom: 'r' });
    });
  });

  it('builds an upstream kubeconfig that reads the current token on every use', async () => {
    let token = 'first';
    const kc = upstreamKubeConfig('https://127.0.0.1:1', 'CA', () => token);
    const headers = async () => {
      const opts: { headers?: Record<string, string> } = {};
      await kc.applyToHTTPSOptions(opts);
      return opts.headers?.Authorization;
    };
    expect(await headers()).to.equal('Bearer first');
    token = 'second';
    expect(await headers()).to.equal('Bearer second');
    const tls: { ca?: unknown } = {};
    await kc.applyToHTTPSOptions(tls);
    expect(tls.ca).to.deep.equal(Buffer.from('CA'));
    expect(kc.getCurrentCluster()).to.deep.equal({ server: 'https://127.0.0.1:1', skipTLSVerify: false });
  });
});
