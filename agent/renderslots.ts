import { Isolate, type IsolateBudget, type IsolateJob, type IsolateOptions } from '../lib/isolate/isolate.js';
import { TASKS } from '../lib/isolate/bundle.js';

/**
 * The agent's render isolate with a bound on concurrent jobs. Each render worker is a V8 isolate of its own
 * (16-20 MiB resident once the render modules are loaded), and with two reconciles at once an agent held two
 * of them through a rollout: the largest part of its memory beyond the idle process. With `slots` jobs
 * running, the next waits its turn before it is handed to a worker; its deadline and heap cap are the
 * Isolate's as always (the deadline starts when a ready worker receives the job), so a slow render delays
 * the queue by at most its deadline and never runs outside a worker.
 */
export class SlottedIsolate extends Isolate {
  private active = 0;
  private readonly waiting: (() => void)[] = [];

  /** An isolate running at most `slots` jobs at once (at least 1). */
  constructor(
    private readonly slots: number,
    options: IsolateOptions = {},
  ) {
    super(options);
    if (!Number.isInteger(slots) || slots < 1) throw new RangeError(`render slots must be a positive integer, not ${slots}`);
  }

  /** Jobs waiting for a slot. */
  get queued(): number {
    return this.waiting.length;
  }

  /** Waits for a free slot, then runs the job as {@link Isolate.run} does; the slot passes to the next job after. */
  override async run<I, O>(job: IsolateJob<I>, budget: IsolateBudget): Promise<O> {
    if (this.active < this.slots) this.active++;
    else await new Promise<void>((resolve) => this.waiting.push(resolve));
    try {
      return await super.run<I, O>(job, budget);
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.active--;
    }
  }
}

/** The agent's render pool: `slots` render workers at most, the render tasks preloaded, idle workers kept up to `slots`. */
export function renderPool(slots: number): SlottedIsolate {
  return new SlottedIsolate(slots, { preload: [TASKS], maxIdle: slots });
}
