import { expect } from 'chai';
import { Reason } from '../lib/api/index.js';
import { StallingError, WaitingError } from '../lib/errors.js';
import { IMAGES_LOCK_PATH, serializeLock, type ImagesLock } from '../lib/images/lock.js';
import type { KubeObject } from '../lib/kube/client.js';
import { buildMirrorMap } from '../lib/oci/index.js';
import { checkPullSecrets, rewriteContent, rewriteImages, takeImagesLock } from './images.js';

const D = `sha256:${'a'.repeat(64)}`;
const lock: ImagesLock = {
  kind: 'ImagesLock',
  formatVersion: 1,
  images: [
    { image: 'src:5000/app:v1', digest: D, relocated: `dst:443/ns/app@${D}` },
    { image: 'mine:1', local: true },
  ],
};
const pod = (name: string, ...images: string[]) => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name },
  spec: { containers: images.map((image, i) => ({ name: `c${i}`, image })) },
});
const cm = (host: string) => async () => ({
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: { name: 'local-registry-hosting' },
  data: { 'localRegistryHosting.v1': `host: ${host}` },
});
const none = async () => undefined;

describe('agent image rewrite', () => {
  it('splits the lock off the files the renderers get', () => {
    const files = [
      { path: 'a.yaml', content: Buffer.from('x') },
      { path: IMAGES_LOCK_PATH, content: serializeLock(lock) },
    ];
    const out = takeImagesLock(files, 'bd');
    expect(out.files.map((f) => f.path)).to.deep.equal(['a.yaml']);
    expect(out.lock?.images).to.have.length(2);
    expect(takeImagesLock(files.slice(0, 1), 'bd').lock).to.equal(undefined);
  });

  it('rewrites relocated and local images with the cluster host', async () => {
    const out = await rewriteImages([pod('p', 'src:5000/app:v1', 'mine:1')], lock, cm('localhost:5001'), 'bd');
    expect((out[0] as ReturnType<typeof pod>).spec.containers.map((c) => c.image)).to.deep.equal([`dst:443/ns/app@${D}`, 'localhost:5001/mine:1']);
  });

  it('waits with LocalRegistryNotFound, naming the image, on a cluster without the ConfigMap', async () => {
    const err = await rewriteImages([pod('p', 'mine:1')], lock, none, 'BundleDeployment x').catch((e: unknown) => e);
    expect(err).to.be.instanceOf(WaitingError).with.property('reason', Reason.LocalRegistryNotFound);
    expect((err as Error).message)
      .to.contain('mine:1')
      .and.contain('BundleDeployment x')
      .and.contain('kube-public/local-registry-hosting');
  });

  it('stalls with ImageNotLocked when an image is outside a relocating lock, and rewrites no object', async () => {
    const err = await rewriteImages([pod('a', 'src:5000/app:v1'), pod('b', 'other:2')], lock, none, 'bd').catch((e: unknown) => e);
    expect(err).to.be.instanceOf(StallingError).with.property('reason', Reason.ImageNotLocked);
    expect((err as Error).message).to.contain('other:2');
  });

  it('stalls on a ConfigMap whose host is not host[:port]', async () => {
    const err = await rewriteImages([pod('p', 'mine:1')], lock, cm('http://x'), 'bd').catch((e: unknown) => e);
    expect(err).to.be.instanceOf(StallingError).with.property('reason', Reason.LocalRegistryNotFound);
  });

  it('rewrites the objects and hooks of a chart render together', async () => {
    const content = {
      engine: 'helm' as const,
      crds: [],
      objects: [pod('o', 'src:5000/app:v1')],
      hooks: [{ phase: 'pre' as const, weight: 0, deletePolicy: [], object: pod('h', 'src:5000/app:v1') }],
    };
    const out = await rewriteContent(content, lock, none, 'bd');
    expect((out.hooks[0] as unknown as { object: ReturnType<typeof pod> }).object.spec.containers[0]?.image).to.equal(`dst:443/ns/app@${D}`);
    expect((out.objects[0] as ReturnType<typeof pod>).spec.containers[0]?.image).to.equal(`dst:443/ns/app@${D}`);
  });
});

describe('agent image rewrite: mirrors and the pull Secret', () => {
  const withSecret: ImagesLock = { ...lock, pullSecret: 'gap-pull' };
  const inNs = (ns: string, ...images: string[]) => ({ ...pod(`p-${ns}`, ...images), metadata: { name: `p-${ns}`, namespace: ns } });

  it("writes a relocated copy onto the cluster's mirror of the relocation registry", async () => {
    const mirrors = buildMirrorMap({ cluster: [{ registry: 'dst:443', mirror: 'mirror.local:5000/cache' }] });
    const out = await rewriteImages([pod('p', 'src:5000/app:v1')], lock, none, 'bd', mirrors);
    expect((out[0] as ReturnType<typeof pod>).spec.containers[0]?.image).to.equal(`mirror.local:5000/cache/ns/app@${D}`);
  });

  it('waits with ImagePullSecretNotFound naming the bundle, the image, the Secret and its namespace when one namespace lacks it', async () => {
    const rewritten = await rewriteImages([inNs('a', 'src:5000/app:v1'), inNs('b', 'src:5000/app:v1')], withSecret, none, 'bd');
    const have = new Set(['a/gap-pull']);
    const read = async (ns: string, name: string) => (have.has(`${ns}/${name}`) ? { apiVersion: 'v1', kind: 'Secret', metadata: { name } } : undefined);
    const err = await checkPullSecrets(rewritten as unknown as KubeObject[], withSecret, read, { bundle: 'repo-app', where: 'BundleDeployment x' }).catch(
      (e: unknown) => e,
    );
    expect(err).to.be.instanceOf(WaitingError).with.property('reason', Reason.ImagePullSecretNotFound);
    expect((err as Error).message)
      .to.contain('bundle repo-app')
      .and.contain('Secret b/gap-pull')
      .and.contain('src:5000/app:v1')
      .and.not.contain('Secret a/gap-pull');
    have.add('b/gap-pull');
    await checkPullSecrets(rewritten as unknown as KubeObject[], withSecret, read, { bundle: 'repo-app', where: 'BundleDeployment x' });
  });

  it('asks for no Secret when the lock names none', async () => {
    const rewritten = await rewriteImages([inNs('a', 'src:5000/app:v1')], lock, none, 'bd');
    await checkPullSecrets(rewritten as unknown as KubeObject[], lock, async () => undefined, { bundle: 'b', where: 'bd' });
  });
});
