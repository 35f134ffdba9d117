import { expect } from 'chai';
import { mapLimit } from './concurrency.js';

/** A promise and the functions that settle it. */
function deferred<T>() {
  let resolve!: (value: T) => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

const tick = () => new Promise((r) => setImmediate(r));

describe('mapLimit', () => {
  it('keeps the order of the items and never runs more than the limit at once', async () => {
    let running = 0;
    let most = 0;
    const out = await mapLimit([5, 1, 4, 2, 3, 0], 3, async (n) => {
      running++;
      most = Math.max(most, running);
      await new Promise((r) => setTimeout(r, n));
      running--;
      return n * 10;
    });
    expect(out).to.deep.equal([50, 10, 40, 20, 30, 0]);
    expect(most).to.equal(3);
  });

  it('runs nothing and resolves empty for no items', async () => {
    expect(await mapLimit([], 4, async () => 1)).to.deep.equal([]);
  });

  it('by default runs every item after a failure and rejects with it once all are done', async () => {
    const started: number[] = [];
    const gates = [deferred<void>(), deferred<void>(), deferred<void>(), deferred<void>()];
    const result = mapLimit([0, 1, 2, 3], 2, async (i) => {
      started.push(i);
      await gates[i]?.promise;
      return i;
    });
    gates[0]?.reject(new Error('item 0 failed'));
    await tick();
    gates[1]?.resolve();
    gates[2]?.resolve();
    gates[3]?.resolve();
    let caught: unknown;
    await result.catch((err: unknown) => {
      caught = err;
    });
    expect((caught as Error).message).to.equal('item 0 failed');
    expect(started).to.deep.equal([0, 1, 2, 3]);
  });

  it('with stopOnFailure starts no item after the first failure, and waits for the running ones', async () => {
    const started: number[] = [];
    const finished: number[] = [];
    const gates = [deferred<void>(), deferred<void>(), deferred<void>(), deferred<void>()];
    const result = mapLimit(
      [0, 1, 2, 3],
      2,
      async (i) => {
        started.push(i);
        await gates[i]?.promise;
        finished.push(i);
        return i;
      },
      { stopOnFailure: true },
    );
    let settled = false;
    void result.then(
      () => (settled = true),
      () => (settled = true),
    );
    gates[0]?.reject(new Error('item 0 failed'));
    await tick();
    expect(settled, 'rejected while item 1 still runs').to.equal(false);
    gates[1]?.resolve();
    let caught: unknown;
    await result.catch((err: unknown) => {
      caught = err;
    });
    expect((caught as Error).message).to.equal('item 0 failed');
    expect(started).to.deep.equal([0, 1]);
    expect(finished).to.deep.equal([1]);
  });
});
