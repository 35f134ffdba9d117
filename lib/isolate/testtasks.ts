import { StallingError } from '../errors.js';

/**
 * Tasks for the isolate's tests (isolate.test.ts): they run in worker threads, so they must live in a module
 * of their own.
 */

/** Returns its input doubled. */
export function double(input: number): number {
  return input * 2;
}

/** Never returns (a render that loops). */
export function spin(): never {
  for (;;) {
    /* busy */
  }
}

/** Allocates until the heap is exhausted (a render that grows without bound). */
export function grow(): number {
  const kept: string[][] = [];
  for (;;) kept.push(Array.from({ length: 10_000 }, (_, i) => `${i}-${kept.length}`));
}

/** Throws a Flotilla error, which must come back with its class and reason. */
export function refuse(input: string): never {
  throw new StallingError('ContentLimitExceeded', `refused ${input}`);
}

/** Recurses without end (stack overflow). */
export function recurse(depth = 0): number {
  return recurse(depth + 1) + 1;
}

/** Resolves after `ms` (a job that outlasts an idle timeout). */
export async function wait(ms: number): Promise<number> {
  await new Promise((resolve) => setTimeout(resolve, ms));
  return ms;
}
