import { expect } from 'chai';
import { WorkQueue, type Timers } from './queue.js';

/** Manual timers: `tick(ms)` fires what is due. */
function manualTimers(): Timers & { tick(ms: number): void; now(): number } {
  let now = 0;
  let seq = 0;
  const pending = new Map<number, { at: number; fn: () => void }>();
  return {
    setTimeout(fn, ms) {
      const id = ++seq;
      pending.set(id, { at: now + ms, fn });
      return id;
    },
    clearTimeout(h) {
      pending.delete(h as number);
    },
    tick(ms) {
      now += ms;
      for (const [id, t] of [...pending].sort((a, b) => a[1].at - b[1].at)) {
        if (t.at <= now) {
          pending.delete(id);
          t.fn();
        }
      }
    },
    now: () => now,
  };
}

describe('WorkQueue', () => {
  it('hands out a key once however often it was added', async () => {
    const q = new WorkQueue();
    q.add('a');
    q.add('a');
    q.add('b');
    expect(await q.get()).to.equal('a');
    expect(await q.get()).to.equal('b');
    expect(q.length).to.equal(0);
  });

  it('re-queues a key added while it was being processed, only after done()', async () => {
    const q = new WorkQueue();
    q.add('a');
    const key = await q.get();
    q.add('a');
    expect(q.length, 'not handed to a second worker while processing').to.equal(0);
    q.done(key!);
    expect(await q.get()).to.equal('a');
  });

  it('delays addAfter until the time has passed, keeping the earliest', async () => {
    const timers = manualTimers();
    const q = new WorkQueue(undefined, timers, timers.now);
    q.addAfter('a', 1000);
    q.addAfter('a', 5000);
    timers.tick(999);
    expect(q.length).to.equal(0);
    timers.tick(1);
    expect(q.length).to.equal(1);
  });

  it('backs off exponentially per key and resets after forget()', () => {
    const timers = manualTimers();
    const q = new WorkQueue({ baseMs: 100, maxMs: 1000 }, timers, timers.now);
    const delays = [1, 2, 3, 4, 5].map(() => q.addRateLimited('a'));
    expect(delays).to.deep.equal([100, 200, 400, 800, 1000]);
    q.forget('a');
    expect(q.addRateLimited('a')).to.equal(100);
  });

  it('bounds one backoff by the cap given, without forgetting the failures', () => {
    const timers = manualTimers();
    const q = new WorkQueue({ baseMs: 100, maxMs: 100_000 }, timers, timers.now);
    const delays = [1, 2, 3, 4, 5].map(() => q.addRateLimited('a', 300));
    expect(delays).to.deep.equal([100, 200, 300, 300, 300]);
    expect(q.addRateLimited('a')).to.equal(3200);
  });

  it('releases waiting workers with undefined on shutdown', async () => {
    const q = new WorkQueue();
    const pending = q.get();
    q.shutDown();
    expect(await pending).to.equal(undefined);
  });
});
