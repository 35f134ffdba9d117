import { expect } from 'chai';
import { StallingError } from '../errors.js';
import { imageSource, localReference, parseLock, relocatedRepository, serializeLock, type ImagesLock } from './lock.js';
import { localRegistryHost } from './localregistry.js';
import { rewriteObjects } from './rewrite.js';

const D1 = `sha256:${'1'.repeat(64)}`;
const D2 = `sha256:${'2'.repeat(64)}`;
const deploy = (...images: string[]) => ({
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name: 'd' },
  spec: { template: { spec: { containers: images.map((image, i) => ({ name: `c${i}`, image })) } } },
});
const imagesOf = (o: ReturnType<typeof deploy>) => o.spec.template.spec.containers.map((c) => c.image);

describe('images lock', () => {
  it('serializes canonically (sorted images) and parses back', () => {
    const lock: ImagesLock = {
      kind: 'ImagesLock',
      formatVersion: 1,
      images: [
        { image: 'b', digest: D1 },
        { image: 'a', local: true },
      ],
    };
    const bytes = serializeLock(lock);
    expect(serializeLock({ ...lock, images: [...lock.images].reverse() }).equals(bytes)).to.equal(true);
    expect(parseLock(bytes, 'bundle x').images.map((i) => i.image)).to.deep.equal(['a', 'b']);
  });

  const bad: Array<[string, string, string]> = [
    ['not JSON', '{', 'not JSON'],
    ['a newer format', JSON.stringify({ kind: 'ImagesLock', formatVersion: 9, images: [] }), 'upgrade the agent'],
    ['a bad digest', JSON.stringify({ kind: 'ImagesLock', formatVersion: 1, images: [{ image: 'a', digest: 'sha256:x' }] }), 'images.0.digest'],
    ['an unknown field', JSON.stringify({ kind: 'ImagesLock', formatVersion: 1, images: [], extra: 1 }), 'extra'],
  ];
  for (const [name, text, says] of bad) {
    it(`refuses ${name}, naming the bundle`, () => {
      expect(() => parseLock(Buffer.from(text), 'bundle ns/x'))
        .to.throw(StallingError, says)
        .with.property('message')
        .that.contains('bundle ns/x');
    });
  }

  const sources: Array<[string, ReturnType<typeof imageSource>]> = [
    ['nginx', { registry: 'docker.io', repository: 'library/nginx', reference: 'latest' }],
    ['127.0.0.1:5000/team/app:v2', { registry: '127.0.0.1:5000', repository: 'team/app', reference: 'v2' }],
    [`ghcr.io/x/y:v1@${D1}`, { registry: 'ghcr.io', repository: 'x/y', reference: D1 }],
  ];
  for (const [image, want] of sources) it(`resolves ${image} in its source repository`, () => expect(imageSource(image)).to.deep.equal(want));

  it('relocates under the endpoint and namespace, keeping the whole source path', () => {
    expect(relocatedRepository('127.0.0.1:5000/team/app:v2', { registryEndpoint: 'reg.local:443', imageNamespace: '/airgap/' })).to.deep.equal({
      registry: 'reg.local:443',
      repository: 'airgap/team/app',
    });
    expect(relocatedRepository('nginx', { registryEndpoint: 'reg.local' }).repository).to.equal('library/nginx');
  });

  it('puts a local image on the cluster host', () => {
    expect(localReference('app:1', 'localhost:5001')).to.equal('localhost:5001/app:1');
    expect(localReference(`127.0.0.1:9/team/app@${D1}`, 'registry:5000')).to.equal(`registry:5000/team/app@${D1}`);
  });
});

describe('KEP-1755 local registry host', () => {
  const cases: Array<[string, Record<string, string> | undefined, string | undefined]> = [
    ['no ConfigMap', undefined, undefined],
    ['no key', { other: 'x' }, undefined],
    ['host only', { 'localRegistryHosting.v1': 'host: "localhost:5001"\nhelp: "https://kind.sigs.k8s.io"' }, 'localhost:5001'],
    [
      'hostFromContainerRuntime wins',
      { 'localRegistryHosting.v1': 'host: localhost:5001\nhostFromContainerRuntime: kind-registry:5000' },
      'kind-registry:5000',
    ],
    ['an empty document', { 'localRegistryHosting.v1': '' }, undefined],
  ];
  for (const [name, data, host] of cases) it(`reads ${name}`, () => expect(localRegistryHost(data)).to.equal(host));

  it('refuses a host with a scheme, naming the field', () => {
    expect(() => localRegistryHost({ 'localRegistryHosting.v1': 'host: http://x:5000' })).to.throw('host "http://x:5000" is not host[:port]');
    expect(() => localRegistryHost({ 'localRegistryHosting.v1': '- a' })).to.throw('is not a mapping');
  });
});

describe('rewriting objects from a lock', () => {
  const relocated = `reg:443/ns/team/app@${D1}`;
  const lock: ImagesLock = {
    kind: 'ImagesLock',
    formatVersion: 1,
    images: [
      { image: 'src:5000/team/app:v1', repository: 'src:5000/team/app', digest: D1, relocated },
      { image: 'mine:1', local: true },
    ],
  };

  it('rewrites relocated and local images of every object', () => {
    const out = rewriteObjects([deploy('src:5000/team/app:v1', 'mine:1'), deploy('src:5000/team/app:v1')], lock, { localHost: 'localhost:5001' });
    expect(out.ok).to.equal(true);
    if (!out.ok) return;
    expect(out.objects.map(imagesOf)).to.deep.equal([[relocated, 'localhost:5001/mine:1'], [relocated]]);
    expect(out.rewritten).to.equal(3);
  });

  it('applies nothing when one image is outside a relocating lock', () => {
    expect(rewriteObjects([deploy('src:5000/team/app:v1'), deploy('src:5000/team/app:v1', 'other:2')], lock, { localHost: 'h' })).to.deep.equal({
      ok: false,
      problem: { kind: 'not-locked', images: ['other:2'] },
    });
  });

  it('applies nothing when a local image has no local registry', () => {
    expect(rewriteObjects([deploy('mine:1')], lock, {})).to.deep.equal({ ok: false, problem: { kind: 'no-local-registry', images: ['mine:1'] } });
  });

  it('pins a locked image by digest when nothing is relocated, and leaves unknown images alone', () => {
    const plain: ImagesLock = { kind: 'ImagesLock', formatVersion: 1, images: [{ image: 'src:5000/app:v1', digest: D2 }] };
    const out = rewriteObjects([deploy('src:5000/app:v1', 'unknown:1')], plain);
    expect(out.ok && out.objects.map(imagesOf)).to.deep.equal([[`src:5000/app:v1@${D2}`, 'unknown:1']]);
  });

  it('uses custom resource paths recorded in the lock', () => {
    const withPaths: ImagesLock = { ...lock, paths: [{ kind: 'App', paths: ['spec.image'] }] };
    const out = rewriteObjects([{ apiVersion: 'x/v1', kind: 'App', spec: { image: 'src:5000/team/app:v1' } }], withPaths);
    expect(out.ok && out.objects[0]).to.deep.equal({ apiVersion: 'x/v1', kind: 'App', spec: { image: relocated } });
  });
});
