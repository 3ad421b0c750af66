/**
 * What the replicator's and the follower's loops do after a failure: stop
 * for good, or count it and try again after a backoff.
 */
import { ClosedError, isWalError, type WalError } from '@wal/errors';

/** Resolves after `ms` milliseconds (the retry backoff). */
export const sleep = (ms: number): Promise<void> =>
  new Promise((resolve) => setTimeout(resolve, ms));

/** True for a programming error or a typed storage failure: retrying cannot help. */
export function isFinal(error: unknown): boolean {
  return isWalError(error) || error instanceof TypeError || error instanceof RangeError;
}

/** The retry counters of a loop's stats. */
export interface RetryCounters {
  retries: number;
  lastRetryError: string | undefined;
}

/** After a failure: stop with `stop`, or retry after `retry` milliseconds. */
export type Outcome = { readonly stop: WalError } | { readonly retry: number };

/**
 * Decides what `error`, thrown by a loop using connection `nc`, leads to:
 * a final error ({@link isFinal}) stops the loop as it is; any other error
 * on a connection its owner closed (it never reconnects) stops it with
 * `WAL_CLOSED` (the error as its cause); anything else is transient:
 * counted in `stats` (`retries`, `lastRetryError`) and retried after a delay
 * doubling from the last one, `delay` (0 at first), within 25 ms to 1 s.
 */
export function afterFailure(
  error: unknown,
  nc: { isClosed(): boolean },
  stats: RetryCounters,
  delay: number,
): Outcome {
  if (isFinal(error)) return { stop: error as WalError };
  if (nc.isClosed()) return { stop: new ClosedError('connection', { cause: error }) };
  stats.retries++;
  stats.lastRetryError = String(error);
  return { retry: Math.min(Math.max(delay * 2, 25), 1000) };
}
