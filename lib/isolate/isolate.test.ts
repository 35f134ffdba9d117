import { expect } from 'chai';
import { Reason } from '../api/constants.js';
import { StallingError, dispositionOf } from '../errors.js';
import { Isolate, siblingModule, type IsolateBudget } from './isolate.js';

const TASKS = siblingModule(import.meta.url, './testtasks');
// Generous: a loaded 2-core machine must not turn a normal job into a timeout; only the spinning job hits it.
const BUDGET: IsolateBudget = { timeoutMs: 3_000, memoryMb: 64 };
const job = <I>(task: string, input: I) => ({
  module: TASKS,
  task,
  input,
  label: `bundle ${task}`,
  flags: { timeout: '--render-timeout', memory: '--render-memory' },
});

async function failure(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected the job to fail');
}

describe('isolate (worker threads with a deadline and a heap cap)', function () {
  this.timeout(120_000);
  let isolate: Isolate;
  beforeEach(() => {
    isolate = new Isolate({ preload: [TASKS] });
  });
  afterEach(async () => {
    await isolate.close();
  });

  it('runs a task in a worker and returns its result', async () => {
    expect(await isolate.run(job('double', 21), BUDGET)).to.equal(42);
  });

  it('keeps a worker warm for the next job, and throws away one whose job was killed', async () => {
    await isolate.run(job('double', 1), BUDGET);
    expect(isolate.size).to.equal(1);
    await isolate.run(job('double', 2), BUDGET);
    expect(isolate.size).to.equal(1);
    await failure(isolate.run(job('spin', null), { ...BUDGET, timeoutMs: 300 }));
    expect(isolate.size).to.equal(0);
  });

  it('starts no worker before the first job, and ends a worker idle for idleMs (a fresh one takes the next job)', async () => {
    const lazy = new Isolate({ preload: [TASKS], idleMs: 100 });
    try {
      expect(lazy.size).to.equal(0);
      expect(await lazy.run(job('double', 2), BUDGET)).to.equal(4);
      expect(lazy.size).to.equal(1);
      while (lazy.size > 0) await new Promise((resolve) => setTimeout(resolve, 50));
      expect(await lazy.run(job('double', 3), BUDGET)).to.equal(6);
      expect(lazy.size).to.equal(1);
    } finally {
      await lazy.close();
    }
  });

  it('does not end a warm worker that took a job before its idle time ran out', async () => {
    const warm = new Isolate({ preload: [TASKS], idleMs: 300 });
    try {
      await warm.run(job('double', 1), BUDGET);
      expect(await warm.run(job('wait', 900), BUDGET)).to.equal(900);
      expect(warm.size).to.equal(1);
    } finally {
      await warm.close();
    }
  });

  it('stops a job past its deadline: StallingError RenderBudgetExceeded naming the bundle and the flag', async () => {
    const err = await failure(isolate.run(job('spin', null), { ...BUDGET, timeoutMs: 300 }));
    expect(err).to.be.instanceOf(StallingError);
    expect((err as StallingError).reason).to.equal(Reason.RenderBudgetExceeded);
    expect((err as Error).message).to.match(/^bundle spin: parsing and rendering took longer than 300 ms .*--render-timeout/);
  });

  it('stops a job that exhausts its heap: StallingError RenderBudgetExceeded, and the process lives on', async () => {
    const err = await failure(isolate.run(job('grow', null), { timeoutMs: 60_000, memoryMb: 32 }));
    expect((err as StallingError).reason).to.equal(Reason.RenderBudgetExceeded);
    expect((err as Error).message).to.match(/more than 32 MiB of heap .*--render-memory/);
    expect(await isolate.run(job('double', 4), BUDGET)).to.equal(8);
  });

  it('keeps other jobs going while one runs into its deadline', async () => {
    const stuck = isolate.run(job('spin', null), { ...BUDGET, timeoutMs: 50_000 });
    let stuckSettled = false;
    stuck
      .catch(() => undefined)
      .finally(() => {
        stuckSettled = true;
      });
    for (let i = 0; i < 3; i++) expect(await isolate.run(job('double', i), BUDGET)).to.equal(i * 2);
    expect(stuckSettled, 'the stuck job is still running while the others finished').to.equal(false);
    await isolate.close();
    await failure(stuck);
  });

  it('brings a Flotilla error back with its class and reason', async () => {
    const err = await failure(isolate.run(job('refuse', 'x.yaml'), BUDGET));
    expect(err).to.be.instanceOf(StallingError);
    expect((err as StallingError).reason).to.equal('ContentLimitExceeded');
    expect((err as Error).message).to.equal('refused x.yaml');
  });

  it('classifies a stack overflow in a job as content (stalling), not as a transient failure', async () => {
    const err = await failure(isolate.run(job('recurse', 0), BUDGET));
    expect(dispositionOf(err)).to.equal('stalling');
    expect((err as StallingError).reason).to.equal(Reason.RenderBudgetExceeded);
  });
});
