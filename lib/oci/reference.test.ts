import { expect } from 'chai';
import { StallingError } from '../errors.js';
import {
  bundleRepository,
  formatReference,
  parseReference,
  parseRepositoryReference,
  pinnedReference,
  sanitizePathComponent,
  MAX_NAME_LENGTH,
  type Reference,
} from './reference.js';

const D = `sha256:${'a'.repeat(64)}`;

describe('OCI references', () => {
  const valid: Array<[string, Reference]> = [
    ['127.0.0.1:5000/flotilla/bundle', { registry: '127.0.0.1:5000', repository: 'flotilla/bundle' }],
    ['127.0.0.1:5000/flotilla/bundle:v3', { registry: '127.0.0.1:5000', repository: 'flotilla/bundle', tag: 'v3' }],
    [`127.0.0.1:5000/flotilla/bundle@${D}`, { registry: '127.0.0.1:5000', repository: 'flotilla/bundle', digest: D }],
    [`reg.example.com/a/b/c:t@${D}`, { registry: 'reg.example.com', repository: 'a/b/c', tag: 't', digest: D }],
    ['localhost/x', { registry: 'localhost', repository: 'x' }],
    ['localhost:5000/x:latest', { registry: 'localhost:5000', repository: 'x', tag: 'latest' }],
    ['[::1]:5000/x/y', { registry: '[::1]:5000', repository: 'x/y' }],
    ['ubuntu', { registry: 'docker.io', repository: 'library/ubuntu' }],
    ['ubuntu:22.04', { registry: 'docker.io', repository: 'library/ubuntu', tag: '22.04' }],
    ['rancher/fleet:v0.9', { registry: 'docker.io', repository: 'rancher/fleet', tag: 'v0.9' }],
    ['index.docker.io/rancher/fleet', { registry: 'docker.io', repository: 'rancher/fleet' }],
    ['ghcr.io/org/my_app.x-y__z', { registry: 'ghcr.io', repository: 'org/my_app.x-y__z' }],
  ];
  for (const [input, expected] of valid) {
    it(`parses ${input}`, () => {
      expect(parseReference(input)).to.deep.equal(expected);
    });
  }

  const invalid: Array<[string, RegExp]> = [
    ['', /empty/],
    ['https://reg.example.com/a', /scheme/],
    ['reg.example.com/A/b', /repository path/],
    ['reg.example.com/a//b', /repository path/],
    ['reg.example.com/a/b:', /tag/],
    ['reg.example.com/a/b:-x', /tag/],
    ['reg.example.com/a/b@sha256:abc', /digest/],
    [`reg.example.com/a/b@md5:${'a'.repeat(32)}`, /digest/],
    ['reg.example.com/a..b', /repository path/],
    ['bad_host:5000/a', /host/],
    [`reg.example.com/${'a'.repeat(MAX_NAME_LENGTH)}`, /longer than/],
  ];
  for (const [input, message] of invalid) {
    it(`refuses "${input.slice(0, 40)}" with a message saying why`, () => {
      expect(() => parseReference(input)).to.throw(StallingError, message);
    });
  }

  it('formats a parsed reference back to the same string', () => {
    for (const s of ['127.0.0.1:5000/a/b', '127.0.0.1:5000/a/b:v1', `127.0.0.1:5000/a/b:v1@${D}`, `r.io/a@${D}`]) {
      expect(formatReference(parseReference(s))).to.equal(s);
    }
  });

  it('pins a repository by digest', () => {
    expect(pinnedReference({ registry: 'r:1', repository: 'a/b' }, D)).to.equal(`r:1/a/b@${D}`);
  });

  it('refuses a tag or digest where only a repository is expected', () => {
    expect(parseRepositoryReference('r.io/a').repository).to.equal('a');
    expect(() => parseRepositoryReference('r.io/a:v1')).to.throw(StallingError, /without tag or digest/);
    expect(() => parseRepositoryReference(`r.io/a@${D}`)).to.throw(StallingError, /without tag or digest/);
  });
});

describe('bundle repositories', () => {
  const cases: Array<[string, string, string, string]> = [
    ['127.0.0.1:5000/flotilla', 'fleet-default', 'hello', 'flotilla/fleet-default-hello'],
    ['127.0.0.1:5000/a/b', 'NS', 'My.App', 'a/b/ns-my.app'],
    ['r.io/x', 'ns', 'a..b--c', 'x/ns-a-b-c'],
    ['r.io/x', 'ns', '-lead-', 'x/ns-lead'],
  ];
  for (const [base, ns, name, repository] of cases) {
    it(`puts bundle ${ns}/${name} under ${base} as ${repository}`, () => {
      const ref = bundleRepository(base, ns, name);
      expect(ref.repository).to.equal(repository);
      expect(parseReference(`${ref.registry}/${ref.repository}`).repository).to.equal(repository);
    });
  }

  it('shortens a long name with a hash, so different long bundles never share a repository', () => {
    const a = bundleRepository('r.io/x', 'ns', `${'n'.repeat(300)}-a`);
    const b = bundleRepository('r.io/x', 'ns', `${'n'.repeat(300)}-b`);
    expect(a.repository).to.not.equal(b.repository);
    expect(a.registry.length + 1 + a.repository.length).to.be.at.most(MAX_NAME_LENGTH);
    expect(() => parseReference(`${a.registry}/${a.repository}`)).to.not.throw();
  });

  it('sanitizes what a path component cannot hold', () => {
    expect(sanitizePathComponent('A B/C')).to.equal('a-b-c');
    expect(sanitizePathComponent('...')).to.equal('x');
    expect(sanitizePathComponent('a__b')).to.equal('a__b');
  });
});
