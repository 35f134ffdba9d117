import { expect } from 'chai';
import { FlotillaError } from '../lib/errors.js';
import type { KubeObject } from '../lib/kube/client.js';
import {
  INVENTORY_OWNER_ANNOTATION,
  INVENTORY_TRUST_MS,
  InventoryStore,
  type InventoryClient,
  inventoryFromConfigMap,
  inventoryName,
  inventoryToConfigMap,
  normalizeIds,
  pruneList,
  sameInventory,
  unionIds,
  type Inventory,
} from './inventory.js';
import type { ObjectId } from './objects.js';

const cm = (name: string, namespace = 'app'): ObjectId => ({ apiVersion: 'v1', kind: 'ConfigMap', namespace, name });
const ns = (name: string): ObjectId => ({ apiVersion: 'v1', kind: 'Namespace', name });
const deploy = (name: string, apiVersion = 'apps/v1'): ObjectId => ({ apiVersion, kind: 'Deployment', namespace: 'app', name });
const show = (ids: ObjectId[]) => ids.map((i) => `${i.kind}:${i.namespace ?? ''}/${i.name}`);

describe('agent inventory', () => {
  describe('pruneList', () => {
    const cases: { name: string; previous: ObjectId[]; desired: ObjectId[]; want: string[] }[] = [
      { name: 'prunes nothing when nothing left the bundle', previous: [cm('a'), cm('b')], desired: [cm('a'), cm('b')], want: [] },
      { name: 'prunes what left the bundle', previous: [cm('a'), cm('b')], desired: [cm('a')], want: ['ConfigMap:app/b'] },
      { name: 'keeps what only moved to a new apiVersion', previous: [deploy('d', 'apps/v1beta1')], desired: [deploy('d')], want: [] },
      { name: 'prunes an object that moved to another namespace from the old one', previous: [cm('a', 'x')], desired: [cm('a', 'y')], want: ['ConfigMap:x/a'] },
      {
        name: 'prunes everything for an empty bundle, the namespace last',
        previous: [ns('app'), cm('a'), deploy('d')],
        desired: [],
        want: ['Deployment:app/d', 'ConfigMap:app/a', 'Namespace:/app'],
      },
      { name: 'prunes nothing on the first deployment', previous: [], desired: [cm('a')], want: [] },
    ];
    for (const c of cases) it(c.name, () => expect(show(pruneList(c.previous, c.desired))).to.deep.equal(c.want));
  });

  it('records the union of what was there and what is about to be applied, once each', () => {
    expect(show(unionIds([cm('a'), cm('b')], [cm('b'), cm('c')]))).to.deep.equal(['ConfigMap:app/a', 'ConfigMap:app/b', 'ConfigMap:app/c']);
  });

  it('normalizes ids: sorted, duplicates dropped, the later apiVersion kept', () => {
    const out = normalizeIds([deploy('d', 'apps/v1beta1'), cm('b'), deploy('d')]);
    expect(out.map((i) => i.apiVersion)).to.deep.equal(['v1', 'apps/v1']);
  });

  describe('inventoryName', () => {
    it('prefixes the BundleDeployment name', () => expect(inventoryName('web')).to.equal('flotilla-inv-web'));
    it('keeps long names valid and distinct', () => {
      const a = inventoryName(`${'a'.repeat(250)}-1`);
      const b = inventoryName(`${'a'.repeat(250)}-2`);
      expect(a.length).to.be.at.most(253);
      expect(a).to.not.equal(b);
    });
  });

  describe('sameInventory: whether a write would change the stored record', () => {
    const inv: Inventory = { bundleDeployment: 'web', deploymentID: 's-1:2', syncGeneration: 3, keepResources: false, objects: [cm('b'), ns('app')] };
    it('is true for the same record, whatever the order of its objects', () =>
      expect(sameInventory(inv, { ...inv, objects: [ns('app'), cm('b'), cm('b')] })).to.equal(true));
    it('is false with nothing stored yet', () => expect(sameInventory(undefined, inv)).to.equal(false));
    for (const [what, change] of [
      ['another object', { objects: [cm('b'), cm('c'), ns('app')] }],
      ['another deployment', { deploymentID: 's-1:3' }],
      ['another sync generation', { syncGeneration: 4 }],
      ['another apply time', { appliedAt: '2026-11-30T08:00:00.000Z' }],
      ['keepResources changed', { keepResources: true }],
      ['a namespace to delete', { deleteNamespace: 'app' }],
    ] as [string, Partial<Inventory>][]) {
      it(`is false with ${what}`, () => expect(sameInventory(inv, { ...inv, ...change })).to.equal(false));
    }
  });

  it('round-trips through its ConfigMap', () => {
    const inv: Inventory = { bundleDeployment: 'web', deploymentID: 's-1:2', syncGeneration: 3, keepResources: true, objects: [cm('b'), ns('app')] };
    const stored = inventoryToConfigMap(inv, 'flotilla-system', 'cluster-ns');
    expect(stored.metadata.annotations?.[INVENTORY_OWNER_ANNOTATION]).to.equal('cluster-ns/web');
    expect(inventoryFromConfigMap(stored)).to.deep.equal({ ...inv, objects: normalizeIds(inv.objects) });
  });

  it('refuses an inventory whose object list is unreadable rather than guessing', () => {
    const stored = inventoryToConfigMap({ bundleDeployment: 'web', deploymentID: '', syncGeneration: 0, keepResources: false, objects: [] }, 'ns', 'c');
    (stored.data as Record<string, string>).objects = '[{"kind":"ConfigMap"}]';
    expect(() => inventoryFromConfigMap(stored)).to.throw(FlotillaError, /data.objects/);
  });

  it('round-trips the CRDs and the namespace recorded for deletion (deleteCRDResources, deleteNamespace)', () => {
    const crd = { apiVersion: 'apiextensions.k8s.io/v1', kind: 'CustomResourceDefinition', name: 'widgets.example.com' };
    const inv: Inventory = {
      bundleDeployment: 'web',
      deploymentID: 'd',
      syncGeneration: 0,
      keepResources: false,
      objects: [cm('b')],
      crds: [crd],
      deleteNamespace: 'app',
    };
    const back = inventoryFromConfigMap(inventoryToConfigMap(inv, 'flotilla-system', 'cluster-ns'));
    expect(back).to.deep.equal(inv);
    const plain = inventoryFromConfigMap(inventoryToConfigMap({ ...inv, crds: [], deleteNamespace: undefined }, 'flotilla-system', 'cluster-ns'));
    expect(plain, 'nothing recorded for deletion without the options').to.not.have.any.keys('crds', 'deleteNamespace');
  });

  it('refuses an inventory whose CRD list is unreadable rather than guessing', () => {
    const stored = inventoryToConfigMap({ bundleDeployment: 'web', deploymentID: '', syncGeneration: 0, keepResources: false, objects: [] }, 'ns', 'c');
    (stored.data as Record<string, string>).crds = 'not json';
    expect(() => inventoryFromConfigMap(stored)).to.throw(FlotillaError, /data.crds/);
  });

  describe('InventoryStore: the agent remembers what it read and wrote', () => {
    /** ConfigMaps by name, and the requests the store made. */
    function fakeClient() {
      const stored = new Map<string, KubeObject>();
      const calls: string[] = [];
      const client = {
        get: async (ref: { name: string }) => {
          calls.push(`GET ${ref.name}`);
          const o = stored.get(ref.name);
          return o && structuredClone(o);
        },
        apply: async (o: KubeObject) => {
          calls.push(`APPLY ${o.metadata.name}`);
          stored.set(o.metadata.name, structuredClone(o));
          return o;
        },
        delete: async (ref: { name: string }) => {
          calls.push(`DELETE ${ref.name}`);
          return stored.delete(ref.name);
        },
        list: async () => ({ items: [...stored.values()], resourceVersion: '1' }),
      };
      return { stored, calls, client: client as unknown as InventoryClient };
    }
    const inv: Inventory = { bundleDeployment: 'web', deploymentID: 'd1', syncGeneration: 0, keepResources: false, objects: [cm('b'), cm('a')] };

    it('reads an inventory once, and what it wrote not at all, while it trusts them', async () => {
      let now = 0;
      const f = fakeClient();
      const store = new InventoryStore(f.client, 'flotilla-system', 'cluster-ns', () => now);
      expect(await store.get('web')).to.equal(undefined);
      expect(await store.get('web'), 'absence is remembered too').to.equal(undefined);
      await store.put(inv);
      const read = await store.get('web');
      expect(read?.deploymentID).to.equal('d1');
      expect(show(read?.objects ?? []), 'as a read of the stored ConfigMap gives it: ids normalized').to.deep.equal(['ConfigMap:app/a', 'ConfigMap:app/b']);
      expect(f.calls).to.deep.equal(['GET flotilla-inv-web', 'APPLY flotilla-inv-web']);
      // A caller changing what it got changes nothing remembered.
      read?.objects.push(cm('c'));
      expect(show((await store.get('web'))?.objects ?? [])).to.deep.equal(['ConfigMap:app/a', 'ConfigMap:app/b']);
      // Past the trust period it reads again: an inventory deleted by hand is seen.
      f.stored.clear();
      now += INVENTORY_TRUST_MS;
      expect(await store.get('web')).to.equal(undefined);
      expect(f.calls.filter((c) => c.startsWith('GET'))).to.have.length(2);
    });

    it('starts from one listing: no GET for what it listed, nor for a BundleDeployment that has none', async () => {
      const f = fakeClient();
      const writer = new InventoryStore(f.client, 'flotilla-system', 'cluster-ns', () => 0);
      await writer.put(inv);
      await writer.put({ ...inv, bundleDeployment: 'db', deploymentID: 'd9' });
      await writer.put({ ...inv, bundleDeployment: 'broken' });
      const broken = f.stored.get('flotilla-inv-broken');
      if (broken) (broken.data as Record<string, string>).objects = 'not json';
      // Another cluster namespace's inventory (the agent registered again elsewhere) is listed but not named.
      f.stored.set('flotilla-inv-old', inventoryToConfigMap({ ...inv, bundleDeployment: 'old' }, 'flotilla-system', 'other-ns'));
      f.calls.length = 0;
      const store = new InventoryStore(f.client, 'flotilla-system', 'cluster-ns', () => 0);
      expect((await store.list()).sort()).to.deep.equal(['broken', 'db', 'web']);
      expect((await store.get('db'))?.deploymentID).to.equal('d9');
      expect(await store.get('new-one'), 'not listed: none').to.equal(undefined);
      expect((await store.get('old'))?.bundleDeployment, 'listed under its ConfigMap name, whoever owns it').to.equal('old');
      expect(f.calls, 'nothing read beyond the listing').to.deep.equal([]);
      let refused: unknown;
      await store.get('broken').catch((err: unknown) => {
        refused = err;
      });
      expect(refused, 'an unreadable inventory is read again and refused with its reason').to.be.instanceOf(FlotillaError);
      expect(f.calls).to.deep.equal(['GET flotilla-inv-broken']);
    });

    it('forgets an inventory whose write failed, and remembers a deleted one as absent', async () => {
      const f = fakeClient();
      const store = new InventoryStore(f.client, 'flotilla-system', 'cluster-ns', () => 0);
      await store.put(inv);
      const failing = { ...f.client, apply: async () => Promise.reject(new Error('connection reset')) } as InventoryClient;
      const flaky = new InventoryStore(failing, 'flotilla-system', 'cluster-ns', () => 0);
      expect((await flaky.get('web'))?.deploymentID).to.equal('d1');
      await flaky.put({ ...inv, deploymentID: 'd2' }).then(
        () => expect.fail('the write should fail'),
        () => undefined,
      );
      const gets = f.calls.filter((c) => c.startsWith('GET')).length;
      expect((await flaky.get('web'))?.deploymentID, 'read again after the failed write').to.equal('d1');
      expect(f.calls.filter((c) => c.startsWith('GET'))).to.have.length(gets + 1);
      await store.delete('web');
      expect(await store.get('web')).to.equal(undefined);
      expect(f.calls.at(-1)).to.equal('DELETE flotilla-inv-web');
    });
  });
});
