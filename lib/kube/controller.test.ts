import { setTimeout as sleep } from 'node:timers/promises';
import { expect } from 'chai';
import pino from 'pino';
import { Controller } from './controller.js';

describe('Controller', () => {
  it('reconciles only the keys `accepts` lets through, however they were enqueued', async () => {
    const seen: string[] = [];
    const controller = new Controller(
      'test',
      async (key) => {
        seen.push(key);
      },
      { log: pino({ level: 'silent' }), workers: 1, accepts: (key) => key.startsWith('mine/') },
    );
    controller.start();
    for (const key of ['mine/a', 'theirs/b', 'mine/c']) controller.queue.add(key);
    controller.queue.addAfter('theirs/d', 1);
    for (let i = 0; i < 100 && seen.length < 2; i++) await sleep(5);
    await sleep(20);
    await controller.stop();
    expect(seen.sort()).to.deep.equal(['mine/a', 'mine/c']);
  });
});
