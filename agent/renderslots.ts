import { Isolate, type IsolateBudget, type IsolateJob, type IsolateOptions } from '../lib/isolate/isolate.js';
import { TASKS } from '../lib/isolate/bundle.js';

/** How long the running renders must all have been running before a waiting one opens another slot. */
export const DEFAULT_SPILL_AFTER_MS = 1000;

/** One job holding a slot; `startedAt` is set when a ready worker receives it. */
interface Slot {
  startedAt?: number;
}

/**
 * The agent's render isolate with elastic slots. Each render worker is a V8 isolate of its own (16-20 MiB
 * resident once the render modules are loaded), the largest part of an agent's memory beyond the idle
 * process, and most renders take milliseconds. So a render that finds another running waits for it and takes
 * its slot when it ends; only when every running render has been running for `spillAfterMs` (a slow chart, a
 * bundle that runs into its deadline) does the waiting one open another slot, up to `slots`. A bundle that
 * takes its whole deadline therefore delays the others by at most `spillAfterMs` once, and an agent rolling out
 * small bundles holds one isolate, not `slots`. Deadlines and heap caps are the Isolate's as always (the
 * deadline starts when a ready worker receives the job; a worker still starting never counts as slow).
 */
export class SlottedIsolate extends Isolate {
  private readonly running = new Set<Slot>();
  private readonly waiting: { slot: Slot; resolve: () => void }[] = [];
  private spillTimer: NodeJS.Timeout | undefined;

  /** An isolate running at most `slots` jobs at once (at least 1), opening a slot beyond the first only for slow jobs. */
  constructor(
    private readonly slots: number,
    options: IsolateOptions = {},
    private readonly spillAfterMs = DEFAULT_SPILL_AFTER_MS,
    private readonly now: () => number = Date.now,
  ) {
    super(options);
    if (!Number.isInteger(slots) || slots < 1) throw new RangeError(`render slots must be a positive integer, not ${slots}`);
    if (!Number.isFinite(spillAfterMs) || spillAfterMs < 0) throw new RangeError(`the render spill delay must be a duration, not ${spillAfterMs}`);
  }

  /** Jobs waiting for a slot. */
  get queued(): number {
    return this.waiting.length;
  }

  /** Slots in use. */
  get active(): number {
    return this.running.size;
  }

  /** Waits for a slot, then runs the job as {@link Isolate.run} does; the slot passes to the next job after. */
  override async run<I, O>(job: IsolateJob<I>, budget: IsolateBudget): Promise<O> {
    const slot: Slot = {};
    if (this.running.size === 0) this.running.add(slot);
    else {
      await new Promise<void>((resolve) => {
        this.waiting.push({ slot, resolve });
        this.schedule();
      });
    }
    try {
      return await super.run<I, O>(job, budget, () => {
        slot.startedAt = this.now();
        this.schedule();
      });
    } finally {
      this.running.delete(slot);
      // The slot passes to the next job at once (counted as taken before it runs, so no newcomer slips in).
      this.admitNext();
      this.schedule();
    }
  }

  override async close(): Promise<void> {
    clearTimeout(this.spillTimer);
    this.spillTimer = undefined;
    await super.close();
  }

  /** Gives a slot to the first waiting job, if any. */
  private admitNext(): void {
    const next = this.waiting.shift();
    if (!next) return;
    this.running.add(next.slot);
    next.resolve();
  }

  /** Opens a slot for the first waiting job if every running job is slow; otherwise sets a timer for when they would be. */
  private schedule(): void {
    clearTimeout(this.spillTimer);
    this.spillTimer = undefined;
    if (this.waiting.length === 0 || this.running.size >= this.slots) return;
    const started = [...this.running].map((s) => s.startedAt);
    // A job whose worker is still starting is not slow yet: its start calls this again.
    if (started.some((t) => t === undefined)) return;
    const youngest = Math.max(...(started as number[]));
    const wait = youngest + this.spillAfterMs - this.now();
    if (wait <= 0) {
      this.admitNext();
      this.schedule();
      return;
    }
    this.spillTimer = setTimeout(() => this.schedule(), wait);
    this.spillTimer.unref();
  }
}

/**
 * The agent's render pool: at most `slots` render workers, a slot beyond the first opened only after
 * `spillAfterMs` of slow renders, the render tasks preloaded, idle workers kept up to `slots`.
 */
export function renderPool(slots: number, spillAfterMs = DEFAULT_SPILL_AFTER_MS): SlottedIsolate {
  return new SlottedIsolate(slots, { preload: [TASKS], maxIdle: slots }, spillAfterMs);
}
