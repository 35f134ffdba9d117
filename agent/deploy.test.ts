import { expect } from 'chai';
import { Annotation } from '../lib/api/index.js';
import { KubeApiError, type KubeObject } from '../lib/kube/client.js';
import { TransientError } from '../lib/errors.js';
import { Reason } from '../lib/api/index.js';
import pino from 'pino';
import { applyPlan, isImmutableRefusal, planObjects, VerifiedCache } from './deploy.js';
import type { Applier } from './applier.js';
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

describe('agent deploy: dry runs per deployment', () => {
  /** An API server of one namespace in memory, counting dry runs. */
  function memoryApplier() {
    const objects = new Map<string, KubeObject>();
    let version = 0;
    const key = (o: { kind: string; namespace?: string | undefined; name: string }) => `${o.kind}/${o.namespace}/${o.name}`;
    const stats = { dryRuns: 0, applies: 0 };
    const reads = { whole: 0, metadata: 0 };
    const applier = {
      get: async (id: { kind: string; namespace?: string; name: string }) => {
        reads.whole += 1;
        return structuredClone(objects.get(key(id)));
      },
      getMetadata: async (id: { apiVersion: string; kind: string; namespace?: string; name: string }) => {
        reads.metadata += 1;
        const o = objects.get(key(id));
        return o && { apiVersion: id.apiVersion, kind: id.kind, metadata: structuredClone(o.metadata) };
      },
      dryRun: async (obj: KubeObject) => {
        stats.dryRuns += 1;
        return { verified: true as const, object: structuredClone(obj) };
      },
      apply: async (obj: KubeObject) => {
        stats.applies += 1;
        const stored = { ...structuredClone(obj), metadata: { ...obj.metadata, resourceVersion: String(++version) } };
        objects.set(key({ kind: obj.kind, namespace: obj.metadata.namespace, name: obj.metadata.name }), stored);
        return structuredClone(stored);
      },
      ensureNamespace: async () => undefined,
      waitEstablished: async () => undefined,
      resetDiscovery: () => undefined,
    };
    return { applier: applier as unknown as Applier, stats, objects, reads };
  }

  it('dry-runs a new object once: what it wrote needs no dry run at the next plan', async () => {
    const { applier, stats } = memoryApplier();
    const ctx = { applier, log: pino({ level: 'silent' }), verified: new VerifiedCache() };
    const want = [desired({ k: 'v' })];
    const plan = await planObjects(ctx, want);
    expect(plan[0]?.drift.state).to.not.equal('unchanged');
    await applyPlan(ctx, plan, [], () => true, false);
    expect(stats).to.deep.equal({ dryRuns: 1, applies: 1 });
    const again = await planObjects(ctx, want);
    expect(again[0]?.drift.state).to.equal('unchanged');
    expect(stats.dryRuns, 'the next plan reads the object and trusts what was written').to.equal(1);
  });

  it('reads only the metadata of a ConfigMap it verified, and the whole object once its version changed; reports each read', async () => {
    const { applier, objects, reads } = memoryApplier();
    let told = 0;
    const onRead = () => {
      told += 1;
    };
    const ctx = { applier, log: pino({ level: 'silent' }), verified: new VerifiedCache(), onRead };
    await applyPlan(ctx, await planObjects(ctx, [desired({ k: 'v' })]), [], () => true, false);
    expect(reads).to.deep.equal({ whole: 1, metadata: 0 });
    const resync = await planObjects(ctx, [desired({ k: 'v' })]);
    expect(resync[0]?.drift.state).to.equal('unchanged');
    expect(resync[0]?.live?.metadata.resourceVersion).to.equal(objects.get('ConfigMap/a/c')?.metadata.resourceVersion);
    expect(reads, 'the resync reads the metadata alone').to.deep.equal({ whole: 1, metadata: 1 });
    const stored = objects.get('ConfigMap/a/c') as KubeObject;
    objects.set('ConfigMap/a/c', { ...stored, metadata: { ...stored.metadata, resourceVersion: '99' }, data: { k: 'edited' } });
    const drifted = await planObjects(ctx, [desired({ k: 'v' })]);
    expect(drifted[0]?.drift.state).to.equal('modified');
    expect(reads, 'another version: read whole to compare').to.deep.equal({ whole: 2, metadata: 2 });
    expect(told, 'every read is reported (the metrics count them)').to.equal(4);
    objects.delete('ConfigMap/a/c');
    expect((await planObjects(ctx, [desired({ k: 'v' })]))[0]?.drift.state).to.not.equal('unchanged');
  });

  it('reads a kind with a status whole at every plan, and a ConfigMap whole before it was verified', async () => {
    const { applier, reads } = memoryApplier();
    const ctx = { applier, log: pino({ level: 'silent' }), verified: new VerifiedCache() };
    const deployment: DesiredObject = {
      object: { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web', namespace: 'a' }, spec: { replicas: 1 } },
      id: { apiVersion: 'apps/v1', kind: 'Deployment', namespace: 'a', name: 'web' },
      namespaced: true,
      served: true,
    };
    await applyPlan(ctx, await planObjects(ctx, [deployment]), [], () => true, false);
    expect((await planObjects(ctx, [deployment]))[0]?.drift.state).to.equal('unchanged');
    expect(reads, 'its readiness is in its status').to.deep.equal({ whole: 2, metadata: 0 });
    await planObjects(ctx, [desired({ k: 'never applied' })]);
    expect(reads).to.deep.equal({ whole: 3, metadata: 0 });
  });

  it('dry-runs again once the object changed on the server, or the content did', async () => {
    const { applier, stats, objects } = memoryApplier();
    const ctx = { applier, log: pino({ level: 'silent' }), verified: new VerifiedCache() };
    await applyPlan(ctx, await planObjects(ctx, [desired({ k: 'v' })]), [], () => true, false);
    const stored = objects.get('ConfigMap/a/c') as KubeObject;
    objects.set('ConfigMap/a/c', { ...stored, metadata: { ...stored.metadata, resourceVersion: '99' }, data: { k: 'edited' } });
    const drifted = await planObjects(ctx, [desired({ k: 'v' })]);
    expect(stats.dryRuns).to.equal(2);
    expect(drifted[0]?.drift.state).to.equal('modified');
    await planObjects(ctx, [desired({ k: 'new' })]);
    expect(stats.dryRuns).to.equal(3);
  });

  it('skips the dry run of a deployment whose one write is a new object, or content changed over its own last write', async () => {
    const { applier, stats } = memoryApplier();
    const ctx = { applier, log: pino({ level: 'silent' }), verified: new VerifiedCache() };
    const first = await planObjects(ctx, [desired({ k: 'v' })], true);
    expect(first[0]?.drift.state).to.equal('missing');
    await applyPlan(ctx, first, [], () => true, false);
    expect(stats).to.deep.equal({ dryRuns: 0, applies: 1 });
    const changed = await planObjects(ctx, [desired({ k: 'v2' })], true);
    expect(changed[0]?.drift.state, 'still the version written for {k: v}').to.equal('modified');
    await applyPlan(ctx, changed, [], () => true, false);
    expect(stats).to.deep.equal({ dryRuns: 0, applies: 2 });
    expect((await planObjects(ctx, [desired({ k: 'v2' })], true))[0]?.drift.state).to.equal('unchanged');
    expect(stats.dryRuns).to.equal(0);
  });

  it('dry-runs when the object changed on the server, when two objects need writes, or when the apply does not validate', async () => {
    const { applier, stats, objects } = memoryApplier();
    const ctx = { applier, log: pino({ level: 'silent' }), verified: new VerifiedCache() };
    await applyPlan(ctx, await planObjects(ctx, [desired({ k: 'v' })], true), [], () => true, false);
    const stored = objects.get('ConfigMap/a/c') as KubeObject;
    objects.set('ConfigMap/a/c', { ...stored, metadata: { ...stored.metadata, resourceVersion: '99' }, data: { k: 'edited' } });
    await planObjects(ctx, [desired({ k: 'v2' })], true);
    expect(stats.dryRuns, 'someone else wrote it: only a dry run tells').to.equal(1);
    const other = { ...desired({ x: '1' }), id: { ...desired({}).id, name: 'd' } };
    other.object = { ...other.object, metadata: { ...other.object.metadata, name: 'd' } };
    await planObjects(ctx, [desired({ k: 'v3' }), other], true);
    expect(stats.dryRuns, 'two writes: both dry-run before either is applied').to.equal(3);
    await planObjects(ctx, [other], false);
    expect(stats.dryRuns, 'not a deployment (a drift check)').to.equal(4);
  });
});
