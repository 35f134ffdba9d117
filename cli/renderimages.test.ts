import { expect } from 'chai';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IMAGES_LOCK_PATH, serializeLock, type ImagesLock } from '../lib/images/lock.js';
import { runRender } from './render.js';

const D1 = `sha256:${'1'.repeat(64)}`;
const D2 = `sha256:${'2'.repeat(64)}`;
const deployment = `apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: app}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: "src:5000/team/web:v1"}, {name: side, image: "mine:2"}]
`;
const lock: ImagesLock = {
  kind: 'ImagesLock',
  formatVersion: 1,
  images: [
    { image: 'src:5000/team/web:v1', digest: D1, relocated: `reg:443/gap/team/web@${D1}` },
    { image: 'mine:2', local: true },
  ],
};

async function render(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await runRender(args, { stdout: { write: (s: string) => (out += s) }, stderr: { write: (s: string) => (err += s) } });
  return { code, out, err };
}

describe('flotilla render rewrites images as the agent does', function () {
  this.timeout(120_000);
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'render-images-'));
    await writeFile(join(dir, 'web.yaml'), deployment);
  });
  afterEach(async () => rm(dir, { recursive: true, force: true }));

  it("uses the lock of a version pulled to DIR: relocated copy by digest, local image on the cluster's registry", async () => {
    await mkdir(join(dir, '.flotilla'));
    await writeFile(join(dir, IMAGES_LOCK_PATH), serializeLock(lock));
    const r = await render([dir, '--local-registry', 'localhost:5001']);
    expect(r.code, r.err).to.equal(0);
    expect(r.out).to.contain(`image: reg:443/gap/team/web@${D1}`).and.contain('image: localhost:5001/mine:2').and.not.contain('src:5000');
    expect(r.err).to.contain('images rewritten from');
  });

  it('takes --images-lock as a line of flotilla images --json, and pins a source by digest when nothing is relocated', async () => {
    const plain: ImagesLock = { kind: 'ImagesLock', formatVersion: 1, images: [{ image: 'src:5000/team/web:v1', digest: D2 }] };
    const file = join(dir, '..', `${dir.split('/').pop()}.json`);
    await writeFile(file, `${JSON.stringify({ bundle: 'b', digest: D1, lock: plain })}\n`);
    const r = await render([dir, '--images-lock', file]);
    await rm(file, { force: true });
    expect(r.code, r.err).to.equal(0);
    expect(r.out).to.contain(`image: src:5000/team/web:v1@${D2}`).and.contain('image: mine:2');
  });

  it('prints nothing and names the images when a local image has no registry or an image is outside a relocating lock', async () => {
    await mkdir(join(dir, '.flotilla'));
    await writeFile(join(dir, IMAGES_LOCK_PATH), serializeLock(lock));
    const local = await render([dir]);
    expect(local.code).to.equal(1);
    expect(local.out).to.equal('');
    expect(local.err).to.contain('mine:2').and.contain('--local-registry');
    await writeFile(join(dir, IMAGES_LOCK_PATH), serializeLock({ ...lock, images: [lock.images[0] as ImagesLock['images'][number]] }));
    const outside = await render([dir]);
    expect(outside.code).to.equal(1);
    expect(outside.err).to.contain('image(s) mine:2 are not in').and.contain('ImageNotLocked');
  });
});
