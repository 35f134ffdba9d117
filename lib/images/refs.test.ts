import { expect } from 'chai';
import { distinctImages, findImageRefs, parseImagePath, rewriteImageRefs, type ImagePathRule } from './refs.js';

const pod = (containers: object) => ({ containers: [{ name: 'a', image: 'app:1' }], ...containers });

describe('image references in rendered objects', () => {
  const cases: Array<{ name: string; object: unknown; rules?: ImagePathRule[]; images: string[] }> = [
    {
      name: 'a Pod: containers, initContainers and ephemeralContainers',
      object: {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: 'p' },
        spec: pod({ initContainers: [{ image: 'init:2' }], ephemeralContainers: [{ image: 'debug:3' }] }),
      },
      images: ['app:1', 'init:2', 'debug:3'],
    },
    { name: 'a Deployment', object: { apiVersion: 'apps/v1', kind: 'Deployment', spec: { template: { spec: pod({}) } } }, images: ['app:1'] },
    {
      name: 'a StatefulSet',
      object: { apiVersion: 'apps/v1', kind: 'StatefulSet', spec: { template: { spec: pod({ initContainers: [{ image: 'i' }] }) } } },
      images: ['app:1', 'i'],
    },
    { name: 'a DaemonSet', object: { apiVersion: 'apps/v1', kind: 'DaemonSet', spec: { template: { spec: pod({}) } } }, images: ['app:1'] },
    { name: 'a ReplicaSet', object: { apiVersion: 'apps/v1', kind: 'ReplicaSet', spec: { template: { spec: pod({}) } } }, images: ['app:1'] },
    { name: 'a Job', object: { apiVersion: 'batch/v1', kind: 'Job', spec: { template: { spec: pod({}) } } }, images: ['app:1'] },
    {
      name: 'a CronJob (job template)',
      object: { apiVersion: 'batch/v1', kind: 'CronJob', spec: { jobTemplate: { spec: { template: { spec: pod({}) } } } } },
      images: ['app:1'],
    },
    { name: 'a PodTemplate', object: { apiVersion: 'v1', kind: 'PodTemplate', template: { spec: pod({}) } }, images: ['app:1'] },
    {
      name: 'a ConfigMap that mentions image: is not a workload',
      object: { apiVersion: 'v1', kind: 'ConfigMap', data: { image: 'x' }, spec: pod({}) },
      images: [],
    },
    {
      name: 'a custom kind named Deployment in another group is not a workload',
      object: { apiVersion: 'example.com/v1', kind: 'Deployment', spec: { template: { spec: pod({}) } } },
      images: [],
    },
    {
      name: 'a container without image and a non-string image are skipped',
      object: { apiVersion: 'v1', kind: 'Pod', spec: { containers: [{ name: 'x' }, { image: 7 }, { image: '' }, 'junk'] } },
      images: [],
    },
    { name: 'a Pod with no spec', object: { apiVersion: 'v1', kind: 'Pod' }, images: [] },
    {
      name: 'custom resource paths from fleet.yaml',
      object: { apiVersion: 'example.com/v1', kind: 'App', spec: { image: 'cr:1', sidecars: [{ image: 's:1' }, { image: 's:2' }] } },
      rules: [{ kind: 'App', apiVersion: 'example.com/v1', paths: ['spec.image', 'spec.sidecars[*].image'] }],
      images: ['cr:1', 's:1', 's:2'],
    },
    {
      name: 'custom paths for another apiVersion do not apply',
      object: { apiVersion: 'example.com/v2', kind: 'App', spec: { image: 'cr:1' } },
      rules: [{ kind: 'App', apiVersion: 'example.com/v1', paths: ['spec.image'] }],
      images: [],
    },
    {
      name: 'custom paths without apiVersion apply to every version',
      object: { apiVersion: 'example.com/v2', kind: 'App', spec: { image: 'cr:1' } },
      rules: [{ kind: 'App', paths: ['spec.image'] }],
      images: ['cr:1'],
    },
  ];
  for (const c of cases) {
    it(`finds the images of ${c.name}`, () => {
      expect(findImageRefs(c.object, c.rules).map((r) => r.image)).to.deep.equal(c.images);
    });
  }

  it('lists distinct images of many objects, sorted', () => {
    const d = (image: string) => ({ apiVersion: 'apps/v1', kind: 'Deployment', spec: { template: { spec: { containers: [{ image }] } } } });
    expect(distinctImages([d('b:1'), d('a:1'), d('b:1')])).to.deep.equal(['a:1', 'b:1']);
  });

  it('refuses malformed custom paths by name', () => {
    expect(() => parseImagePath('spec..image')).to.throw(TypeError, 'spec..image');
    expect(() => parseImagePath('spec.containers[0].image')).to.throw(TypeError, 'containers[0]');
  });

  it('rewrites every image of a copy and leaves the original alone', () => {
    const object = { apiVersion: 'v1', kind: 'Pod', spec: { containers: [{ image: 'a' }, { image: 'b' }], initContainers: [{ image: 'a' }] } };
    const result = rewriteImageRefs(object, (i) => `r/${i}@sha256:1`);
    expect(result.ok).to.equal(true);
    if (!result.ok) return;
    expect(result.rewritten).to.equal(3);
    expect(findImageRefs(result.object).map((r) => r.image)).to.deep.equal(['r/a@sha256:1', 'r/b@sha256:1', 'r/a@sha256:1']);
    expect(object.spec.containers[0]?.image).to.equal('a');
  });

  it('rewrites nothing when one image has no replacement', () => {
    const object = { apiVersion: 'v1', kind: 'Pod', spec: { containers: [{ image: 'a' }, { image: 'b' }] } };
    expect(rewriteImageRefs(object, (i) => (i === 'a' ? 'x' : undefined))).to.deep.equal({ ok: false, missing: ['b'] });
  });
});
