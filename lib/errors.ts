/**
 * Flotilla's error model: every error that crosses a boundary says what happens next.
 *
 * - {@link StallingError}: the user must act (bad input, wrong credentials); no retry until the object changes.
 * - {@link WaitingError}: a known precondition is not met yet; retry after `retryAfterMs`.
 * - {@link TransientError}: something flaky (network, 5xx, 429); retry with backoff.
 * - disposition `conflict` (a Kubernetes 409): the reconcile acted on a stale view; re-read and retry at once.
 *
 * Adapters (undici, the git runner, client-node) translate library errors into these at the boundary.
 * Code above an adapter matches on `reason`, never on message text.
 */

/** What the caller should do after an error. */
export type ErrorDisposition = 'stalling' | 'waiting' | 'transient' | 'conflict';

/** Options shared by every Flotilla error. */
export interface FlotillaErrorOptions {
  /** The underlying error, kept for logs; never shown in status. */
  cause?: unknown;
  /** For waiting errors: when to try again; for transient errors: the longest the backoff may wait. */
  retryAfterMs?: number;
}

/** Base class: a stable PascalCase `reason` (used as a condition reason) and a disposition. */
export abstract class FlotillaError extends Error {
  abstract readonly disposition: ErrorDisposition;
  readonly reason: string;
  readonly retryAfterMs: number | undefined;

  constructor(reason: string, message: string, options: FlotillaErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.reason = reason;
    this.retryAfterMs = options.retryAfterMs;
  }
}

/** The user must change something; retrying the same input gives the same failure. */
export class StallingError extends FlotillaError {
  readonly disposition = 'stalling' as const;
}

/** A precondition is not met yet (e.g. a referenced Secret does not exist); retry later. */
export class WaitingError extends FlotillaError {
  readonly disposition = 'waiting' as const;
}

/** A transient failure (network, server error, rate limit); retry with backoff. */
export class TransientError extends FlotillaError {
  readonly disposition = 'transient' as const;
}

/** Returns the disposition of any thrown value; unknown errors are treated as transient. */
export function dispositionOf(err: unknown): ErrorDisposition {
  return err instanceof FlotillaError ? err.disposition : 'transient';
}

/** A stable PascalCase condition reason, as conditions accept it. */
const PASCAL_CASE = /^[A-Z][A-Za-z0-9]*$/;

/**
 * The condition reason for any thrown value: a Flotilla error's own `reason` (when it is PascalCase),
 * else `fallback` (the reason of the step that failed, e.g. GitOperationFailed).
 */
export function reasonOf(err: unknown, fallback: string): string {
  return err instanceof FlotillaError && PASCAL_CASE.test(err.reason) ? err.reason : fallback;
}

/** The error's `retryAfterMs` (see {@link FlotillaErrorOptions}); undefined for other thrown values. */
export function retryAfterOf(err: unknown): number | undefined {
  return err instanceof FlotillaError ? err.retryAfterMs : undefined;
}

/** Returns a one-line message for any thrown value, suitable for status (callers must not put secrets in messages). */
export function messageOf(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
