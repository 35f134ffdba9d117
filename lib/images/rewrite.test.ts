import { expect } from 'chai';
import { Reason } from '../api/constants.js';
import { StallingError } from '../errors.js';
import { buildMirrorMap } from '../oci/index.js';
import { IMAGES_LOCK_PATH, serializeLock, type ImagesLock } from './lock.js';
import { imageMapping, pullSecretUsers, rewriteObjects, rewriteOrExplain, splitImagesLock } from './rewrite.js';

const D1 = `sha256:${'1'.repeat(64)}`;
const D2 = `sha256:${'2'.repeat(64)}`;
const relocated = `dst:5443/gap/team/app@${D1}`;
const lock: ImagesLock = {
  kind: 'ImagesLock',
  formatVersion: 1,
  images: [
    { image: 'src:5000/team/app:v1', digest: D1, relocated },
    { image: 'mine:1', local: true },
  ],
};
const pinned: ImagesLock = { kind: 'ImagesLock', formatVersion: 1, images: [{ image: 'src:5000/team/app:v1', digest: D2 }] };
type Workload = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
  spec: { template: { spec: { containers: Array<{ name: string; image: string }>; imagePullSecrets?: Array<{ name: string }> } } };
};
const deploy = (name: string, ...images: string[]): Workload => ({
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name, namespace: 'app' },
  spec: { template: { spec: { containers: images.map((image, i) => ({ name: `c${i}`, image })) } } },
});
const imagesOf = (o: Workload) => o.spec.template.spec.containers.map((c) => c.image);

describe('image rewrite with registry mirrors', () => {
  const mirrors = buildMirrorMap({
    bootstrap: [
      { registry: 'dst:5443', mirror: 'mirror.eu:5000/cache' },
      { registry: 'src:5000', mirror: 'https://near:443' },
    ],
  });
  const cases: Array<[string, ImagesLock, string, string]> = [
    ['a relocated copy goes onto the mirror of the relocation registry, digest kept', lock, 'src:5000/team/app:v1', `mirror.eu:5000/cache/gap/team/app@${D1}`],
    ['a source pinned by digest goes onto its own mirror, tag and digest kept', pinned, 'src:5000/team/app:v1', `near:443/team/app:v1@${D2}`],
    ["a local image stays on the cluster's own registry", lock, 'mine:1', 'localhost:5001/mine:1'],
    [
      'an image outside a non-relocating lock is not pinned, so it is left alone (a mirror could serve anything)',
      pinned,
      'src:5000/other:v1',
      'src:5000/other:v1',
    ],
  ];
  for (const [name, l, image, want] of cases) {
    it(name, () => {
      expect(imageMapping(l, { localHost: 'localhost:5001', mirrors })(image)).to.equal(want);
    });
  }

  it('uses no mirror for a registry the cluster has none for', () => {
    const other = buildMirrorMap({ cluster: [{ registry: 'elsewhere:1', mirror: 'm:1' }] });
    expect(imageMapping(lock, { mirrors: other })('src:5000/team/app:v1')).to.equal(relocated);
  });
});

describe('image rewrite with a pull Secret', () => {
  const withSecret: ImagesLock = { ...lock, pullSecret: 'gap-pull' };

  it('adds the pull Secret once to pods that run a relocated copy, and to no other pod', () => {
    const already = deploy('b', 'src:5000/team/app:v1');
    already.spec.template.spec.imagePullSecrets = [{ name: 'gap-pull' }, { name: 'other' }];
    const out = rewriteObjects([deploy('a', 'src:5000/team/app:v1', 'mine:1'), already, deploy('c', 'mine:1')], withSecret, { localHost: 'h:1' });
    expect(out.ok).to.equal(true);
    if (!out.ok) return;
    expect(out.objects.map((o) => o.spec.template.spec.imagePullSecrets)).to.deep.equal([
      [{ name: 'gap-pull' }],
      [{ name: 'gap-pull' }, { name: 'other' }],
      undefined,
    ]);
    expect(already.spec.template.spec.imagePullSecrets).to.have.length(2);
  });

  it('lists the objects that need the Secret with the images (as written in the bundle) they run, mirrors included', () => {
    const mirrors = buildMirrorMap({ bootstrap: [{ registry: 'dst:5443', mirror: 'mirror.eu:5000' }] });
    const out = rewriteObjects([deploy('a', 'src:5000/team/app:v1'), deploy('c', 'mine:1')], withSecret, { localHost: 'h:1', mirrors });
    if (!out.ok) throw new Error('rewrite failed');
    const users = pullSecretUsers(out.objects, withSecret, { mirrors });
    expect(users.map((u) => [u.object.metadata.name, u.images])).to.deep.equal([['a', ['src:5000/team/app:v1']]]);
    expect(pullSecretUsers(out.objects, lock)).to.deep.equal([]);
  });

  it('adds no Secret when the lock names none', () => {
    const out = rewriteObjects([deploy('a', 'src:5000/team/app:v1')], lock);
    expect(out.ok && out.objects[0]?.spec.template.spec.imagePullSecrets).to.equal(undefined);
  });
});

describe('the rewrite of render and diff', () => {
  it('splits the lock off the files', () => {
    const files = [
      { path: 'a.yaml', content: Buffer.from('x') },
      { path: IMAGES_LOCK_PATH, content: serializeLock(lock) },
    ];
    const out = splitImagesLock(files, 'v1');
    expect(out.files.map((f) => f.path)).to.deep.equal(['a.yaml']);
    expect(out.lock?.images).to.have.length(2);
  });

  it('explains an image outside a relocating lock (ImageNotLocked) and a local image without a host, naming the source', () => {
    expect(() => rewriteOrExplain([deploy('a', 'other:1')], lock, {}, 'the images lock of v2')).to.throw(StallingError, /other:1.*the images lock of v2/);
    try {
      rewriteOrExplain([deploy('a', 'mine:1')], lock, {}, 'v2');
      expect.fail('expected a StallingError');
    } catch (err) {
      expect(err).to.be.instanceOf(StallingError).with.property('reason', Reason.LocalRegistryNotFound);
      expect((err as Error).message)
        .to.contain('mine:1')
        .and.contain('--local-registry');
    }
    expect(imagesOf(rewriteOrExplain([deploy('a', 'src:5000/team/app:v1')], lock, {}, 'v2').objects[0] as Workload)).to.deep.equal([relocated]);
  });
});
