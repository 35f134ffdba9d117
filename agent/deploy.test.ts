import { expect } from 'chai';
import { Annotation } from '../lib/api/index.js';
import { KubeApiError, type KubeObject } from '../lib/kube/client.js';
import { TransientError } from '../lib/errors.js';
import { Reason } from '../lib/api/index.js';
import { isImmutableRefusal, VerifiedCache } from './deploy.js';
import type { DesiredObject } from './objects.js';

function desired(data: Record<string, string>, deploymentID = 'd1'): DesiredObject {
  const object: KubeObject = {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: 'c', namespace: 'a', annotations: { [Annotation.DeploymentID]: deploymentID } },
    data,
  };
  return { object, id: { apiVersion: 'v1', kind: 'ConfigMap', namespace: 'a', name: 'c' }, namespaced: true, served: true };
}
const live = (resourceVersion: string): KubeObject => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c', namespace: 'a', resourceVersion } });

describe('agent verified cache (skipping dry runs of unchanged objects)', () => {
  it('keys by content, not by the deployment that last applied it', () => {
    const cache = new VerifiedCache();
    expect(cache.key(desired({ k: 'v' }, 'd1'), undefined)).to.equal(cache.key(desired({ k: 'v' }, 'd2'), undefined));
    expect(cache.key(desired({ k: 'v' }), undefined)).to.not.equal(cache.key(desired({ k: 'w' }), undefined));
    expect(cache.key(desired({ k: 'v' }), undefined)).to.not.equal(cache.key(desired({ k: 'v' }), [{ jsonPointers: ['/data'] }]));
  });

  const cases: { name: string; rv: string; elapsedMs: number; want: boolean }[] = [
    { name: 'trusts the version it verified', rv: '5', elapsedMs: 1000, want: true },
    { name: 'checks again once the live object changed', rv: '6', elapsedMs: 1000, want: false },
    { name: 'checks again once the entry expired', rv: '5', elapsedMs: 11 * 60_000, want: false },
  ];
  for (const c of cases) {
    it(c.name, () => {
      let now = 0;
      const cache = new VerifiedCache(10 * 60_000, 100, () => now);
      const key = cache.key(desired({ k: 'v' }), undefined);
      cache.remember(key, live('5'));
      now += c.elapsedMs;
      expect(cache.has(key, live(c.rv))).to.equal(c.want);
    });
  }

  it('forgets an entry when told, and stays bounded', () => {
    const cache = new VerifiedCache(60_000, 2);
    const keys = ['a', 'b', 'c'];
    for (const k of keys) cache.remember(k, live('1'));
    expect(cache.has('c', live('1'))).to.equal(true);
    expect(cache.has('a', live('1'))).to.equal(false);
    cache.forget('c');
    expect(cache.has('c', live('1'))).to.equal(false);
  });
});

describe('isImmutableRefusal (what force may delete and re-create)', () => {
  const api = (status: number, message: string) => new KubeApiError(status, 'Invalid', `PATCH /apis/batch/v1/namespaces/a/jobs/once: ${status} ${message}`);
  const cases: [string, unknown, boolean][] = [
    ["a Job's pod template", api(422, 'Job.batch "once" is invalid: spec.template: Invalid value: core.PodTemplateSpec{...}: field is immutable'), true],
    ['a Service clusterIP', api(422, 'Service "web" is invalid: spec.clusterIP: Invalid value: "10.0.0.9": field is immutable'), true],
    [
      "a StatefulSet's volumeClaimTemplates",
      api(
        422,
        "StatefulSet.apps \"db\" is invalid: spec: Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
      ),
      true,
    ],
    [
      'wrapped as the applier wraps it',
      new TransientError(Reason.ApplyFailed, 'the API server rejects Job a/once', { cause: api(422, 'spec.selector: field is immutable') }),
      true,
    ],
    [
      'an invalid object (its replacement would be refused too)',
      api(422, 'ConfigMap "c" is invalid: data[a b]: Invalid value: "a b": a valid config key must consist of alphanumeric characters'),
      false,
    ],
    ['a conflict', api(409, 'field is immutable'), false],
    ['a forbidden write', api(403, 'jobs.batch "once" is forbidden'), false],
    ['not an API error', new Error('field is immutable'), false],
  ];
  for (const [name, err, expected] of cases) {
    it(`${expected ? 'matches' : 'does not match'} ${name}`, () => {
      expect(isImmutableRefusal(err)).to.equal(expected);
    });
  }
});
