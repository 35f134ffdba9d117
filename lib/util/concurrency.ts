/** Bounded concurrency over a list. */

/** Options of {@link mapLimit}. */
export interface MapLimitOptions {
  /**
   * After the first failure, start no further items (those running finish). Default false: every item
   * runs, as when each is independent of the others (one cluster's write failing must not hold up the rest).
   */
  stopOnFailure?: boolean;
}

/**
 * Runs `fn` over `items` with at most `limit` at a time and resolves with the results in the order of
 * `items`; the first failure rejects, once every running item has finished.
 */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>, options: MapLimitOptions = {}): Promise<R[]> {
  const results: R[] = new Array<R>(items.length);
  let next = 0;
  let failed = false;
  const worker = async () => {
    while (next < items.length && !(failed && options.stopOnFailure)) {
      const i = next++;
      try {
        results[i] = await fn(items[i] as T);
      } catch (err) {
        failed = true;
        throw err;
      }
    }
  };
  const workers = Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker);
  const settled = await Promise.allSettled(workers);
  const rejected = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (rejected) throw rejected.reason;
  return results;
}
