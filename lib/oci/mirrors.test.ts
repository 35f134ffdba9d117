import { expect } from 'chai';
import type { RegistryMirror } from '../api/mirror.js';
import { StallingError } from '../errors.js';
import {
  buildMirrorMap,
  mirrorClientOptions,
  mirrorRoute,
  mirrorStatus,
  normalizeRegistry,
  parseMirrorEndpoint,
  parseMirrorList,
  type MirrorEndpoint,
} from './mirrors.js';
import { formatReference } from './reference.js';

const PEM = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
const b64 = (s: string) => Buffer.from(s).toString('base64');
const DIGEST = `sha256:${'b'.repeat(64)}`;

describe('registry mirrors: the mapping', () => {
  describe('parseMirrorEndpoint', () => {
    const cases: Array<[string, boolean | undefined, MirrorEndpoint]> = [
      ['mirror.local:5000', undefined, { host: 'mirror.local:5000', prefix: '', basicHTTP: false, url: 'https://mirror.local:5000' }],
      ['https://mirror.local', undefined, { host: 'mirror.local', prefix: '', basicHTTP: false, url: 'https://mirror.local' }],
      ['http://10.0.0.1:80/', undefined, { host: '10.0.0.1:80', prefix: '', basicHTTP: true, url: 'http://10.0.0.1:80' }],
      ['mirror.local/proxy/hub', true, { host: 'mirror.local', prefix: 'proxy/hub', basicHTTP: true, url: 'http://mirror.local/proxy/hub' }],
      ['[::1]:5000', undefined, { host: '[::1]:5000', prefix: '', basicHTTP: false, url: 'https://[::1]:5000' }],
    ];
    for (const [input, basicHTTP, want] of cases) {
      it(`reads ${input}${basicHTTP ? ' with basicHTTP' : ''}`, () => {
        expect(parseMirrorEndpoint(input, basicHTTP)).to.deep.equal(want);
      });
    }

    const bad: Array<[string, boolean | undefined, RegExp]> = [
      ['ftp://mirror.local', undefined, /scheme ftp is not http or https/],
      ['https://mirror.local', true, /https:\/\/ mirror cannot have basicHTTP/],
      ['https://user@mirror.local', undefined, /without query, fragment or user/],
      ['mirror.local/Bad_Path', undefined, /is not a repository prefix/],
      ['https://', undefined, /is not a valid host/],
    ];
    for (const [input, basicHTTP, message] of bad) {
      it(`refuses ${input}${basicHTTP ? ' with basicHTTP' : ''}, saying why`, () => {
        expect(() => parseMirrorEndpoint(input, basicHTTP)).to.throw(StallingError, message);
      });
    }
  });

  it('normalizes Docker Hub aliases and host case, and refuses what is not host[:port]', () => {
    expect(normalizeRegistry('index.docker.io')).to.equal('docker.io');
    expect(normalizeRegistry('Registry.Example.com:5000')).to.equal('registry.example.com:5000');
    expect(() => normalizeRegistry('https://r.example.com')).to.throw(StallingError, /without scheme or path/);
    expect(() => normalizeRegistry('r.example.com/path')).to.throw(StallingError, /without scheme or path/);
    expect(() => normalizeRegistry('justaname')).to.throw(StallingError, /not a registry host/);
  });

  describe('buildMirrorMap and mirrorRoute', () => {
    const origin = 'registry.example.com:5000';
    const boot: RegistryMirror = { registry: origin, mirror: 'boot-mirror.local:5000', authSecretName: 'boot-auth' };
    const cluster: RegistryMirror = { registry: origin, mirror: 'https://cluster-mirror.local/cache', caBundle: b64(PEM) };

    it('routes a pinned reference to the mirror, keeping repository, tag and digest', () => {
      const map = buildMirrorMap({ bootstrap: [boot] });
      const route = mirrorRoute(map, `${origin}/flotilla/app@${DIGEST}`);
      expect(route && formatReference(route.reference)).to.equal(`boot-mirror.local:5000/flotilla/app@${DIGEST}`);
      expect(route?.mirror.source).to.equal('bootstrap');
      expect(route?.origin.registry).to.equal(origin);
    });

    it('lets a Cluster entry override the bootstrap entry for the same registry, and adds a path prefix', () => {
      const map = buildMirrorMap({ bootstrap: [boot], cluster: [cluster] });
      const route = mirrorRoute(map, `${origin}/flotilla/app:v1`);
      expect(route && formatReference(route.reference)).to.equal('cluster-mirror.local/cache/flotilla/app:v1');
      expect(route?.mirror.source).to.equal('cluster');
      expect(map.problems).to.deep.equal([]);
    });

    it('keeps the bootstrap entry when the Cluster entry for its registry is invalid, and reports the invalid one', () => {
      const map = buildMirrorMap({ bootstrap: [boot], cluster: [{ registry: origin, mirror: 'ftp://nope' }] });
      expect(mirrorRoute(map, `${origin}/a@${DIGEST}`)?.mirror.source).to.equal('bootstrap');
      expect(map.problems).to.have.length(1);
      expect(map.problems[0]?.error).to.match(/scheme ftp/);
    });

    it('uses the first of two entries for one registry in one source and reports the second', () => {
      const map = buildMirrorMap({ bootstrap: [boot, { registry: origin, mirror: 'other.local' }] });
      expect(mirrorRoute(map, `${origin}/a@${DIGEST}`)?.reference.registry).to.equal('boot-mirror.local:5000');
      expect(map.problems[0]?.error).to.match(/listed twice/);
    });

    it('refuses a mirror that is the registry itself and a CA bundle without certificates', () => {
      const map = buildMirrorMap({
        cluster: [
          { registry: origin, mirror: origin },
          { registry: 'b.example.com', mirror: 'm.local', caBundle: b64('x') },
        ],
      });
      expect(map.byRegistry.size).to.equal(0);
      expect(map.problems.map((p) => p.error)).to.satisfy((e: string[]) => /registry itself/.test(e[0] ?? '') && /caBundle is not base64/.test(e[1] ?? ''));
    });

    it('leaves references of other registries on their origin, and matches Docker Hub by its aliases', () => {
      const map = buildMirrorMap({ bootstrap: [boot, { registry: 'index.docker.io', mirror: 'hub-cache.local' }] });
      expect(mirrorRoute(map, `other.example.com/a@${DIGEST}`)).to.equal(undefined);
      expect(mirrorRoute(map, 'nginx:1.27')?.reference).to.deep.equal({ registry: 'hub-cache.local', repository: 'library/nginx', tag: '1.27' });
      expect(mirrorRoute(undefined, 'nginx')).to.equal(undefined);
    });
  });

  it("builds client options for the mirror with the mirror's own TLS settings and credentials", () => {
    const map = buildMirrorMap({ bootstrap: [{ registry: 'r.example.com', mirror: 'http://m.local:8080', insecureSkipTLS: false, caBundle: b64(PEM) }] });
    const mirror = map.byRegistry.get('r.example.com');
    expect(mirror).to.not.equal(undefined);
    expect(mirrorClientOptions(mirror!, { username: 'm', password: 'p' }, { userAgent: 'x' })).to.deep.equal({
      registry: 'm.local:8080',
      basicHTTP: true,
      insecureSkipTLS: false,
      caPem: PEM,
      credentials: { username: 'm', password: 'p' },
      userAgent: 'x',
    });
  });

  it('reports mirrors on status without credentials or CA bytes, invalid entries with their error', () => {
    const map = buildMirrorMap({
      bootstrap: [{ registry: 'r.example.com', mirror: 'm.local', authSecretName: 'mirror-auth', caBundle: b64(PEM), originFallback: false }],
      cluster: [{ registry: 'q.example.com', mirror: 'ftp://x' }],
    });
    const status = mirrorStatus(map);
    expect(status[0]).to.deep.equal({
      registry: 'r.example.com',
      mirror: 'https://m.local',
      source: 'bootstrap',
      authSecretName: 'mirror-auth',
      caBundle: true,
      originFallback: false,
    });
    expect(status[1]).to.include({ registry: 'q.example.com', source: 'cluster' });
    expect(status[1]?.error).to.match(/scheme ftp/);
    expect(JSON.stringify(status)).to.not.include(b64(PEM));
  });

  describe('parseMirrorList', () => {
    it('reads JSON and YAML lists, and nothing from an empty text', () => {
      expect(parseMirrorList('[{"registry":"r.example.com","mirror":"m.local"}]', 'flag')).to.deep.equal([{ registry: 'r.example.com', mirror: 'm.local' }]);
      expect(parseMirrorList('- registry: r.example.com\n  mirror: m.local\n  basicHTTP: true\n', 'file')).to.deep.equal([
        { registry: 'r.example.com', mirror: 'm.local', basicHTTP: true },
      ]);
      expect(parseMirrorList('  ', 'flag')).to.deep.equal([]);
    });

    it('names where the list came from and the field at fault', () => {
      expect(() => parseMirrorList('[{"registry":"r"}]', '--registry-mirrors')).to.throw(StallingError, /--registry-mirrors.*0\.mirror/);
      expect(() => parseMirrorList('[{"registry":"r","mirror":"m","password":"x"}]', 'f')).to.throw(StallingError, /Unrecognized key/);
      expect(() => parseMirrorList('{: bad', 'f')).to.throw(StallingError, /not JSON or YAML/);
    });
  });
});
