/**
 * Retry policy for transient registry failures: exponential backoff with jitter, and the registry's
 * `Retry-After` honoured when it sends one (capped, so a registry cannot park a reconciler for hours).
 */

/** How transient failures are retried. */
export interface RetryPolicy {
  /** Retries after the first attempt (0 = no retry). */
  retries: number;
  /** Delay before the first retry, doubled each time. */
  minDelayMs: number;
  /** Largest backoff delay. */
  maxDelayMs: number;
  /** Largest `Retry-After` honoured in place; a longer one ends the retries with `retryAfterMs` on the error. */
  maxRetryAfterMs: number;
}

/** The default policy: 4 retries, 200 ms doubling to at most 5 s, Retry-After up to 30 s. */
export const DEFAULT_RETRY_POLICY: RetryPolicy = { retries: 4, minDelayMs: 200, maxDelayMs: 5_000, maxRetryAfterMs: 30_000 };

/** A function that waits `ms` milliseconds (injected so tests do not wait). */
export type Sleep = (ms: number) => Promise<void>;

/** Waits for real. */
export const realSleep: Sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The delay before retry number `attempt` (0-based): `minDelayMs * 2^attempt`, capped at `maxDelayMs`,
 * with "equal jitter" (between half and all of it) so that many clients do not retry in lockstep.
 */
export function backoffDelay(policy: RetryPolicy, attempt: number, random: () => number = Math.random): number {
  const base = Math.min(policy.maxDelayMs, policy.minDelayMs * 2 ** Math.max(0, attempt));
  return Math.round(base / 2 + (base / 2) * random());
}

/**
 * Parses a `Retry-After` header: delta-seconds or an HTTP date. Returns milliseconds from `nowMs`
 * (never negative), or undefined when absent or unparseable.
 */
export function parseRetryAfter(value: string | undefined, nowMs: number): number | undefined {
  if (value === undefined) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const date = Date.parse(trimmed);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - nowMs);
}
