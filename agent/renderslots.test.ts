import { expect } from 'chai';
import { siblingModule, type IsolateBudget } from '../lib/isolate/isolate.js';
import { SlottedIsolate } from './renderslots.js';

const TASKS = siblingModule(new URL('../lib/isolate/isolate.ts', import.meta.url).href, './testtasks');
const BUDGET: IsolateBudget = { timeoutMs: 30_000, memoryMb: 64 };
const job = <I>(task: string, input: I) => ({ module: TASKS, task, input, label: `bundle ${task}` });

describe('agent render slots (SlottedIsolate)', function () {
  this.timeout(120_000);
  let isolate: SlottedIsolate;
  afterEach(async () => {
    await isolate.close();
  });

  it('runs one job at a time with one slot, in order, in a single worker', async () => {
    isolate = new SlottedIsolate(1, { preload: [TASKS], maxIdle: 1 });
    const order: string[] = [];
    const first = isolate.run<number, number>(job('wait', 200), BUDGET).then((v) => order.push(`wait ${v}`));
    const second = isolate.run<number, number>(job('double', 2), BUDGET).then((v) => order.push(`double ${v}`));
    const third = isolate.run<number, number>(job('double', 5), BUDGET).then((v) => order.push(`double ${v}`));
    expect(isolate.queued).to.equal(2);
    expect(isolate.size).to.equal(1);
    await Promise.all([first, second, third]);
    expect(order).to.deep.equal(['wait 200', 'double 4', 'double 10']);
    expect(isolate.queued).to.equal(0);
    expect(isolate.size).to.equal(1);
  });

  it('passes the slot on when a job fails, and keeps the job’s error', async () => {
    isolate = new SlottedIsolate(1, { preload: [TASKS], maxIdle: 1 });
    const refused = isolate.run(job('refuse', 'x'), BUDGET).then(
      () => 'resolved',
      (err: unknown) => (err instanceof Error ? err.message : String(err)),
    );
    const next = isolate.run<number, number>(job('double', 21), BUDGET);
    expect(isolate.queued).to.equal(1);
    expect(await refused).to.contain('refused x');
    expect(await next).to.equal(42);
  });

  it('hands the slot of a quick job to the next rather than opening another: one worker for a rollout of small renders', async () => {
    isolate = new SlottedIsolate(2, { preload: [TASKS], maxIdle: 2 }, 10_000);
    const jobs = [isolate.run(job('wait', 100), BUDGET), isolate.run(job('wait', 100), BUDGET), isolate.run(job('double', 1), BUDGET)];
    expect(isolate.active).to.equal(1);
    expect(isolate.queued).to.equal(2);
    expect(await Promise.all(jobs)).to.deep.equal([100, 100, 2]);
    expect(isolate.size, 'workers started').to.equal(1);
  });

  it('opens another slot when the running job has run for the spill delay, so a slow render holds no one up for long', async () => {
    isolate = new SlottedIsolate(2, { preload: [TASKS], maxIdle: 2 }, 200);
    const order: string[] = [];
    const slow = isolate.run<number, number>(job('wait', 4000), BUDGET).then((v) => order.push(`wait ${v}`));
    const quick = isolate.run<number, number>(job('double', 2), BUDGET).then((v) => order.push(`double ${v}`));
    await Promise.all([slow, quick]);
    expect(order, 'the quick job ran beside the slow one').to.deep.equal(['double 4', 'wait 4000']);
    expect(isolate.size).to.equal(2);
  });

  it('never runs more jobs at once than it has slots, however slow they are', async () => {
    isolate = new SlottedIsolate(2, { preload: [TASKS], maxIdle: 2 }, 0);
    const jobs = [0, 1, 2].map(() => isolate.run<number, number>(job('wait', 1500), BUDGET));
    const seen = { active: isolate.active, queued: isolate.queued };
    const sampler = setInterval(() => {
      seen.active = Math.max(seen.active, isolate.active);
      seen.queued = Math.max(seen.queued, isolate.queued);
    }, 20);
    try {
      expect(await Promise.all(jobs)).to.deep.equal([1500, 1500, 1500]);
    } finally {
      clearInterval(sampler);
    }
    expect(seen).to.deep.equal({ active: 2, queued: 2 });
    expect(isolate.size).to.equal(2);
  });

  it('refuses a slot count that is not a positive integer', () => {
    expect(() => new SlottedIsolate(0)).to.throw(RangeError, 'positive integer');
    expect(() => new SlottedIsolate(2, {}, -1)).to.throw(RangeError, 'duration');
    isolate = new SlottedIsolate(1);
  });
});
