import { setTimeout as sleep } from 'node:timers/promises';
import { expect } from 'chai';
import pino from 'pino';
import { Controller } from './controller.js';
import type { Informer } from './informer.js';
import type { KubeObject } from './client.js';

/** Just enough of an informer to deliver events by hand. */
function handInformer() {
  const handlers: ((type: 'ADDED' | 'MODIFIED' | 'DELETED', obj: KubeObject) => void)[] = [];
  const informer = { on: (h: (typeof handlers)[number]) => handlers.push(h) } as unknown as Informer<KubeObject>;
  const emit = (name: string) => {
    for (const h of handlers) h('MODIFIED', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: 'ns' } });
  };
  return { informer, emit };
}

/** A controller of one worker that records each key it reconciles, and when. */
function recordingController(options: { accepts?: (key: string) => boolean } = {}) {
  const seen: { key: string; at: number }[] = [];
  const controller = new Controller(
    'test',
    async (key) => {
      seen.push({ key, at: Date.now() });
    },
    { log: pino({ level: 'silent' }), workers: 1, ...options },
  );
  return { controller, seen };
}

describe('Controller', () => {
  it('reconciles only the keys `accepts` lets through, however they were enqueued', async () => {
    const { controller, seen } = recordingController({ accepts: (key) => key.startsWith('mine/') });
    controller.start();
    for (const key of ['mine/a', 'theirs/b', 'mine/c']) controller.queue.add(key);
    controller.queue.addAfter('theirs/d', 1);
    for (let i = 0; i < 100 && seen.length < 2; i++) await sleep(5);
    await sleep(20);
    await controller.stop();
    expect(seen.map((s) => s.key).sort()).to.deep.equal(['mine/a', 'mine/c']);
  });

  it('with coalesceMs, reconciles a key once for every change within the window, after the window', async () => {
    const { controller, seen } = recordingController();
    const { informer, emit } = handInformer();
    controller.watch(informer, (obj) => [`group/${obj.metadata.name.split('-')[0]}`], { coalesceMs: 150 });
    controller.start();
    const t0 = Date.now();
    for (const name of ['a-1', 'a-2', 'b-1', 'a-3']) emit(name);
    await sleep(20);
    expect(seen, 'nothing before the window ends').to.deep.equal([]);
    for (let i = 0; i < 100 && seen.length < 2; i++) await sleep(10);
    await sleep(50);
    await controller.stop();
    expect(seen.map((s) => s.key).sort()).to.deep.equal(['group/a', 'group/b']);
    for (const s of seen) expect(s.at - t0).to.be.at.least(140);
  });

  it('without coalesceMs, reconciles at once', async () => {
    const { controller, seen } = recordingController();
    const { informer, emit } = handInformer();
    controller.watch(informer, (obj) => [`ns/${obj.metadata.name}`]);
    controller.start();
    emit('x');
    for (let i = 0; i < 20 && seen.length < 1; i++) await sleep(2);
    await controller.stop();
    expect(seen.map((s) => s.key)).to.deep.equal(['ns/x']);
  });
});
