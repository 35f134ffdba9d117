import { expect } from 'chai';
import pino from 'pino';
import type { KubeObject } from '../lib/kube/client.js';
import type { Applier } from './applier.js';
import { runHooks, type PreparedHook } from './charts.js';
import { idKey, idOf, type ObjectId } from './objects.js';

/** An in-memory stand-in for the Applier port: records calls; Jobs complete or fail as told. */
function fakeApplier(jobOutcome: 'Complete' | 'Failed' = 'Complete') {
  const live = new Map<string, KubeObject>();
  const calls: string[] = [];
  const applier = {
    ensureNamespace: async (ns: { name: string }) => {
      calls.push(`ns ${ns.name}`);
    },
    deleteAndWait: async (id: ObjectId) => {
      calls.push(`replace-delete ${id.name}`);
      live.delete(idKey(id));
    },
    delete: async (id: ObjectId) => {
      calls.push(`delete ${id.name}`);
      return live.delete(idKey(id));
    },
    apply: async (obj: KubeObject) => {
      calls.push(`apply ${obj.metadata.name}`);
      const stored = obj.kind === 'Job' ? { ...obj, status: { conditions: [{ type: jobOutcome, status: 'True' }] } } : obj;
      live.set(idKey(idOf(obj)), stored);
      return stored;
    },
    get: async (id: ObjectId) => live.get(idKey(id)),
  };
  return { applier: applier as unknown as Applier, calls, live };
}

function hook(name: string, phase: 'pre' | 'post', deletePolicy: string[], kind = 'ConfigMap'): PreparedHook {
  const object: KubeObject = { apiVersion: kind === 'Job' ? 'batch/v1' : 'v1', kind, metadata: { name, namespace: 'apps' } };
  return { phase, deletePolicy, desired: { object, id: idOf(object), namespaced: true, served: true } };
}

const log = pino({ level: 'silent' });
const noSleep = async () => {};

describe('runHooks', () => {
  it('applies the hooks of one phase in order, ensuring namespaces first and honouring delete policies', async () => {
    const { applier, calls, live } = fakeApplier();
    const hooks = [hook('a', 'pre', ['before-hook-creation']), hook('b', 'pre', ['hook-succeeded'], 'Job'), hook('c', 'post', ['before-hook-creation'])];
    expect(await runHooks(applier, hooks, 'pre', [{ name: 'apps' } as never], log, noSleep)).to.equal(2);
    expect(calls).to.deep.equal(['ns apps', 'replace-delete a', 'apply a', 'apply b', 'delete b']);
    expect([...live.keys()].map((k) => k.split('/').pop())).to.deep.equal(['a']);
  });

  it('fails on a failed Job hook, deleting it under hook-failed', async () => {
    const { applier, calls } = fakeApplier('Failed');
    const err = await runHooks(applier, [hook('migrate', 'post', ['hook-failed'], 'Job')], 'post', [], log, noSleep).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect((err as Error).message).to.match(/post-install\/upgrade hook Job apps\/migrate.* failed/);
    expect(calls).to.deep.equal(['apply migrate', 'delete migrate']);
  });

  it('does nothing for a phase without hooks', async () => {
    const { applier, calls } = fakeApplier();
    expect(await runHooks(applier, [hook('a', 'pre', [])], 'post', [{ name: 'apps' } as never], log, noSleep)).to.equal(0);
    expect(calls).to.deep.equal([]);
  });
});
