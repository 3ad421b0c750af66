/**
 * Closing the log (docs/DURABILITY.md §3, `close`): truncations called before
 * finish first (or reject, when still queued behind another); then, unless the log failed, everything appended is written
 * and synced, the durable hint recorded (docs/FORMAT.md §5.2) and zeros
 * written ahead and not used cut (§8.4); then the group commit finishes
 * (after a failed write, what was written below it is synced), the log
 * waits until it is settled and no store call is in flight
 * (docs/INTERNALS.md §5, §6), and for the record of where a failed log
 * resumes (§6), and closes the store. Internal to @wal/core.
 */
import { ClosedError } from '@wal/errors';
import { BLOCK_FAILED, type LogState } from './state.js';

/** Nothing more can join a flush of the close: it does not wait out `commitDelayMs`. */
const NO_DELAY = { delay: false } as const;

/**
 * Closes `log` (its `BLOCK_CLOSED` bit already set). Rejects with the first
 * error of the final write, sync or store close, or with a failure that
 * happened during the close; the store is closed in every case.
 */
export async function closeLog(log: LogState): Promise<void> {
  const { durability, exclusivity, gc, store } = log;
  let error: unknown;
  // Whether the log failed before close() was called: taken before the first
  // await, so that a write failing while close() waits (for truncations, or
  // for nothing but the next turn) rejects this close instead of passing for
  // a failure it was told of (a resolved close promises every record durable).
  const failedBefore = durability.failure !== undefined;
  // Truncations called before close() finish first: one whose turn had come
  // (none before it pending) runs; one still queued behind another
  // truncation rejects with WAL_CLOSED.
  exclusivity.closing();
  await exclusivity.truncationsDone();
  // A shared log: no thread appends any more (since the call), and what they
  // appended is copied out of the ring, to be written and synced below. A
  // failure meanwhile is this close's; the store is closed all the same.
  try {
    await log.shared?.closing();
  } catch (cause) {
    error = cause;
  }
  if (gc !== undefined && (log.blocked & BLOCK_FAILED) === 0) {
    try {
      log.writer.submit();
      // Without waiting out commitDelayMs: no append can join the flush now.
      if (log.tail > gc.durable) await log.writer.waitTarget(log.tail, 'durable', false);
      await exclusivity.settled();
      await durability.recordFinal(gc.durable);
      // Zeros written ahead and not used (or maybe, by a failed zero write):
      // a clean close leaves no tail to cut.
      if (log.preallocation.leftover(log.tail) && durability.failure === undefined) {
        await store.truncate(log.tail);
      }
    } catch (cause) {
      error = cause;
    }
  }
  await finish(log);
  // After a failed write-back (a failed sync or durable write): the record
  // of where the log resumes (durability.ts), which a later open cuts at.
  // Its failure is this close's: an open in another process may then take
  // bytes that are not on disk for durable (docs/DURABILITY.md §4).
  const unrecorded = await durability.resumeRecorded();
  // A failure during the close (a durable-hint update in flight, say) is
  // this close's failure: the caller must not take it for a clean close.
  if (!failedBefore && durability.failure !== undefined) error ??= durability.failure;
  error ??= unrecorded;
  log.writer.rejectDrainWaiters(new ClosedError('log'));
  log.shared?.closed();
  durability.storeClosing();
  try {
    await store.close();
  } catch (cause) {
    error ??= cause;
  }
  if (error !== undefined) throw error;
}

/**
 * Lets the group commit finish before the store closes (docs/INTERNALS.md
 * §6): once every write in flight settled, the records written and not yet
 * durable are synced, unless a sync failed (latched). After a failed write
 * at `p` that is everything written below `p`: their durable waits resolve,
 * and the resume point stays at `p` (a flush scheduled or running for them
 * is joined, never cut off by the store's close, which would make it a
 * failed sync). Then waits until no operation of the log and no store call
 * (a sync, a hint update it started) is in flight.
 */
async function finish(log: LogState): Promise<void> {
  const { exclusivity, gc, gate } = log;
  let sync = gc !== undefined;
  for (;;) {
    await exclusivity.settled();
    if (sync && gc!.failure === undefined && gc!.durable < gc!.written) {
      // Its failure, if any, is the log's already (Durability.syncFailed);
      // after one, no second try.
      await gc!.syncTo(gc!.written, NO_DELAY).catch(() => {
        sync = false;
      });
      continue;
    }
    const quiet = gate.quiet();
    if (quiet === undefined) {
      if (exclusivity.isSettled) return;
      continue;
    }
    await quiet;
  }
}
