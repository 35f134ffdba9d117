import { expect } from 'chai';
import { StallingError } from '../errors.js';
import {
  TokenCache,
  basicAuthorization,
  credentialsFromSecretData,
  normalizeAuthKey,
  parseTokenResponse,
  parseWWWAuthenticate,
  repositoryScope,
  type Challenge,
} from './auth.js';

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');
const dockerconfig = (auths: Record<string, unknown>) => ({ '.dockerconfigjson': b64(JSON.stringify({ auths })) });

describe('WWW-Authenticate parsing', () => {
  const cases: Array<[string, Challenge[]]> = [
    [
      'Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:a/b:pull"',
      [{ scheme: 'bearer', params: { realm: 'https://auth.example.com/token', service: 'registry.example.com', scope: 'repository:a/b:pull' } }],
    ],
    ['Basic realm="flotilla"', [{ scheme: 'basic', params: { realm: 'flotilla' } }]],
    [
      'Basic realm="a, b", Bearer realm="https://t/x", service=reg',
      [
        { scheme: 'basic', params: { realm: 'a, b' } },
        { scheme: 'bearer', params: { realm: 'https://t/x', service: 'reg' } },
      ],
    ],
    [
      'Bearer realm="https://t",error="insufficient_scope",scope="repository:a:pull,push repository:b:pull"',
      [{ scheme: 'bearer', params: { realm: 'https://t', error: 'insufficient_scope', scope: 'repository:a:pull,push repository:b:pull' } }],
    ],
    ['BEARER Realm = "q\\"uoted"', [{ scheme: 'bearer', params: { realm: 'q"uoted' } }]],
    ['Negotiate', [{ scheme: 'negotiate', params: {} }]],
    ['', []],
  ];
  for (const [header, expected] of cases) {
    it(`parses ${JSON.stringify(header).slice(0, 60)}`, () => {
      expect(parseWWWAuthenticate(header)).to.deep.equal(expected);
    });
  }
});

describe('registry credentials from a Secret', () => {
  const host = '127.0.0.1:5000';
  const ok: Array<[string, string | undefined, Record<string, string>]> = [
    ['username/password keys', 'Opaque', { username: b64('u'), password: b64('p:w') }],
    ['basic-auth Secret', 'kubernetes.io/basic-auth', { username: b64('u'), password: b64('p:w') }],
    ['dockerconfigjson with username/password', 'kubernetes.io/dockerconfigjson', dockerconfig({ [host]: { username: 'u', password: 'p:w' } })],
    ['dockerconfigjson with auth', 'kubernetes.io/dockerconfigjson', dockerconfig({ [`https://${host}/v1/`]: { auth: b64('u:p:w') } })],
    [
      'dockerconfigjson among other hosts',
      'kubernetes.io/dockerconfigjson',
      dockerconfig({ 'other:1': { auth: b64('x:y') }, [`http://${host}`]: { auth: b64('u:p:w') } }),
    ],
    ['an untyped Secret holding .dockerconfigjson', undefined, dockerconfig({ [host]: { auth: b64('u:p:w') } })],
  ];
  for (const [what, type, data] of ok) {
    it(`reads ${what}`, () => {
      expect(credentialsFromSecretData(type, data, host)).to.deep.equal({ username: 'u', password: 'p:w' });
    });
  }

  it('matches Docker Hub under any of its names', () => {
    const data = dockerconfig({ 'https://index.docker.io/v1/': { auth: b64('u:p') } });
    expect(credentialsFromSecretData('kubernetes.io/dockerconfigjson', data, 'docker.io')).to.deep.equal({ username: 'u', password: 'p' });
  });

  const bad: Array<[string, string | undefined, Record<string, string> | undefined, string, RegExp]> = [
    ['no data', 'Opaque', undefined, 'SecretNotFound', /username is missing/],
    ['no password', 'Opaque', { username: b64('u') }, 'SecretNotFound', /password is missing/],
    [
      'no entry for the host',
      'kubernetes.io/dockerconfigjson',
      dockerconfig({ 'other:1': { auth: b64('u:secretpw') } }),
      'SecretNotFound',
      /no entry for registry 127\.0\.0\.1:5000/,
    ],
    ['malformed JSON', 'kubernetes.io/dockerconfigjson', { '.dockerconfigjson': b64('{nope secretpw') }, 'InvalidSpec', /not valid JSON/],
    ['no auths', 'kubernetes.io/dockerconfigjson', { '.dockerconfigjson': b64('{}') }, 'InvalidSpec', /no "auths"/],
    ['an entry without credentials', 'kubernetes.io/dockerconfigjson', dockerconfig({ [host]: { auth: b64('secretpw') } }), 'InvalidSpec', /neither/],
    ['missing .dockerconfigjson', 'kubernetes.io/dockerconfigjson', {}, 'SecretNotFound', /\.dockerconfigjson is missing/],
  ];
  for (const [what, type, data, reason, message] of bad) {
    it(`refuses ${what} with ${reason}, naming no secret value`, () => {
      try {
        credentialsFromSecretData(type, data, host);
        expect.fail('expected an error');
      } catch (err) {
        expect(err).to.be.instanceOf(StallingError);
        expect((err as StallingError).reason).to.equal(reason);
        expect((err as Error).message).to.match(message);
        expect((err as Error).message).to.not.include('secretpw');
      }
    });
  }

  it('normalizes docker config keys to host[:port]', () => {
    expect(normalizeAuthKey('https://Reg.Example.com:5000/v1/')).to.equal('reg.example.com:5000');
    expect(normalizeAuthKey('reg.example.com')).to.equal('reg.example.com');
  });

  it('encodes basic authorization', () => {
    expect(basicAuthorization({ username: 'u', password: 'p' })).to.equal(`Basic ${b64('u:p')}`);
  });

  it('builds repository scopes', () => {
    expect(repositoryScope('a/b', ['pull', 'push'])).to.equal('repository:a/b:pull,push');
  });
});

describe('Bearer token cache', () => {
  it('keeps a token per scope until shortly before it expires', () => {
    let now = 1_000_000;
    const cache = new TokenCache(() => now, 10_000);
    cache.set('repository:a:pull', 'tok-a', 300);
    cache.set('repository:b:pull', 'tok-b', 300);
    expect(cache.get('repository:a:pull')).to.equal('tok-a');
    expect(cache.get('repository:b:pull')).to.equal('tok-b');
    expect(cache.get('repository:a:pull,push')).to.equal(undefined);
    now += 289_000;
    expect(cache.get('repository:a:pull')).to.equal('tok-a');
    now += 2_000;
    expect(cache.get('repository:a:pull')).to.equal(undefined);
  });

  it('keeps short-lived tokens for 90% of their life', () => {
    let now = 0;
    const cache = new TokenCache(() => now, 10_000);
    cache.set('s', 't', 10);
    now = 8_900;
    expect(cache.get('s')).to.equal('t');
    now = 9_000;
    expect(cache.get('s')).to.equal(undefined);
  });

  it('forgets a refused token', () => {
    const cache = new TokenCache(() => 0);
    cache.set('s', 't', 60);
    cache.delete('s');
    expect(cache.get('s')).to.equal(undefined);
  });

  const responses: Array<[unknown, ReturnType<typeof parseTokenResponse>]> = [
    [
      { token: 'a', expires_in: 300 },
      { token: 'a', expiresIn: 300 },
    ],
    [{ access_token: 'b' }, { token: 'b', expiresIn: 60 }],
    [
      { token: '', access_token: 'c', expires_in: -5 },
      { token: 'c', expiresIn: 60 },
    ],
    [{ expires_in: 300 }, undefined],
    ['token', undefined],
  ];
  for (const [json, expected] of responses) {
    it(`reads token response ${JSON.stringify(json)}`, () => {
      expect(parseTokenResponse(json)).to.deep.equal(expected);
    });
  }
});
