import { expect } from 'chai';
import type { KubeClient, KubeObject } from './client.js';
import { Informer } from './informer.js';

type Handler = (type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK', obj: KubeObject) => void;

/** A client whose list answers `items` and whose watch hands its handler to the test. */
function fakeClient(items: KubeObject[]) {
  const watching: { handler?: Handler } = {};
  const client = {
    list: async () => ({ items, resourceVersion: '10' }),
    watch: async (_ref: unknown, _rv: string, handler: Handler, signal: AbortSignal) => {
      watching.handler = handler;
      await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
    },
  } as unknown as KubeClient;
  return { client, watching };
}

function obj(name: string, bundle: string, rv: string): KubeObject {
  return { apiVersion: 'v1', kind: 'ConfigMap', metadata: { namespace: 'ns', name, resourceVersion: rv, labels: { bundle } } };
}

const byBundle = (o: KubeObject) => (o.metadata.labels?.bundle ? [o.metadata.labels.bundle] : []);
const names = (objects: KubeObject[]) => objects.map((o) => o.metadata.name).sort();

describe('Informer indexes', () => {
  let informer: Informer<KubeObject> | undefined;
  afterEach(async () => informer?.stop());

  async function started(items: KubeObject[]) {
    const { client, watching } = fakeClient(items);
    informer = new Informer<KubeObject>(client, { apiVersion: 'v1', kind: 'ConfigMap' }).addIndex('bundle', byBundle);
    informer.start();
    await informer.waitForSync();
    while (!watching.handler) await new Promise((r) => setImmediate(r));
    return { informer, emit: watching.handler };
  }

  it('files the listed objects under their values, and moves or drops them as watch events change them', async () => {
    const { informer, emit } = await started([obj('a', 'one', '1'), obj('b', 'one', '2'), obj('c', 'two', '3')]);
    expect(names(informer.byIndex('bundle', 'one'))).to.deep.equal(['a', 'b']);
    expect(names(informer.byIndex('bundle', 'two'))).to.deep.equal(['c']);
    emit('MODIFIED', obj('b', 'two', '11'));
    expect(names(informer.byIndex('bundle', 'one'))).to.deep.equal(['a']);
    expect(names(informer.byIndex('bundle', 'two'))).to.deep.equal(['b', 'c']);
    expect(informer.byIndex('bundle', 'two').find((o) => o.metadata.name === 'b')?.metadata.resourceVersion, 'the newest copy').to.equal('11');
    emit('DELETED', obj('c', 'two', '12'));
    emit('ADDED', obj('d', 'three', '13'));
    expect(names(informer.byIndex('bundle', 'two'))).to.deep.equal(['b']);
    expect(names(informer.byIndex('bundle', 'three'))).to.deep.equal(['d']);
    expect(informer.byIndex('bundle', 'nobody')).to.deep.equal([]);
  });

  it('indexes what is cached already when an index is added late, and leaves out objects without a value', async () => {
    const { informer } = await started([obj('a', 'one', '1'), obj('b', '', '2')]);
    informer.addIndex('name', (o) => [o.metadata.name]);
    expect(names(informer.byIndex('name', 'b'))).to.deep.equal(['b']);
    expect(names(informer.byIndex('bundle', 'one'))).to.deep.equal(['a']);
    expect(informer.byIndex('bundle', '')).to.deep.equal([]);
  });

  it('refuses an index it does not have, and a second index of the same name', async () => {
    const { informer } = await started([]);
    expect(() => informer.byIndex('nope', 'x')).to.throw(/informer of ConfigMap: no index "nope"/);
    expect(() => informer.addIndex('bundle', byBundle)).to.throw(/index "bundle" exists already/);
  });
});
