/**
 * The truncations (docs/FORMAT.md §7): `truncateAfter` drops the suffix
 * (§7.1), with the log to itself (docs/INTERNALS.md §7); `truncateBefore`
 * drops the prefix (§7.2), with only the store call alone (INTERNALS §8).
 * The callers (`Wal.truncateAfter`, `Wal.truncateBefore`) validated the
 * argument. Internal to @wal/core.
 */
import { errorCode, FailedError, outOfRange } from '@wal/errors';
import { publishTruncate } from './channels.js';
import { HEADER_SIZE } from './frame.js';
import { DURABLE_HINT_KEY, META_CUT_TO, META_TRUNCATIONS } from './meta.js';
import { BLOCK_CLOSED, BLOCK_FAILED, BLOCK_READ_ONLY, type LogState } from './state.js';

/** Keeps the record at `lsn` and those before it, drops the rest (FORMAT §7.1). */
export function truncateAfter(log: LogState, lsn: number): Promise<void> {
  return log.exclusivity.run(() => cutAfter(log, lsn));
}

/** The work of {@link truncateAfter}, its turn come. */
async function cutAfter(log: LogState, lsn: number): Promise<void> {
  {
    const { store, durability } = log;
    const length = await log.locator.locate(lsn, log.tail);
    const end = lsn + HEADER_SIZE + length;
    if (end === log.tail) return;
    try {
      // Lower the hint first (damage above the cut will be a tear), count
      // the cut so read-only followers start over, and mark it in progress
      // so that none reads past it meanwhile (FORMAT.md §7.1 step 2).
      await store.updateMeta({
        [DURABLE_HINT_KEY]: durability.loweredTo(end),
        [META_TRUNCATIONS]: log.cutCount + 1,
        [META_CUT_TO]: end,
      });
      durability.lowered(end);
      log.cutCount++;
      await store.truncate(end);
      // Done: unmarked before anything is written past it (step 3.4).
      await store.updateMeta({ [META_CUT_TO]: undefined });
      log.preallocation.cut(end);
    } catch (cause) {
      durability.fail(
        new FailedError(`truncating the log after offset ${lsn} failed`, { cause, offset: end }),
        end,
        true,
      );
      throw durability.failure;
    }
    log.gc!.reset(end);
    log.tail = end;
    log.index.truncateAfter(end);
    for (const offset of log.skipped.keys()) if (offset >= end) log.skipped.delete(offset);
    log.locator.forgetAbove(end);
    log.cuts.push(end);
    log.shared?.cut(end);
    publishTruncate(log, 'after', lsn);
  }
}

/** Drops every record before `lsn` (FORMAT §7.2). */
export function truncateBefore(log: LogState, lsn: number): Promise<void> {
  if ((log.blocked & (BLOCK_CLOSED | BLOCK_READ_ONLY | BLOCK_FAILED)) !== 0) {
    return Promise.reject(log.blockedError('truncate the log'));
  }
  // The tail at the call is a boundary, unless a truncateAfter cuts first
  // (a shared log's: what every thread was handed out).
  const tail = log.shared?.tail ?? log.tail;
  // Past the tail at the call: refused now, not when its turn comes (appends
  // meanwhile would move the tail past it, and their records would be dropped).
  if (lsn > tail) return Promise.reject(outOfRange('lsn', `<= the tail (${tail})`, lsn));
  const cuts = log.cuts.length;
  // Refused when its turn comes if close() was called before that, or the log failed.
  return log.exclusivity.enqueue(async () => {
    const { durability, locator, writer } = log;
    // Up to another thread's records not copied out of the shared ring yet.
    if (log.shared !== undefined && lsn > log.tail) await log.shared.whenCollected(lsn);
    if (lsn < log.head) throw locator.truncatedError(lsn);
    // Past the tail a truncateAfter called before it cut to.
    if (lsn > log.tail) throw outOfRange('lsn', `<= the tail (${log.tail})`, lsn);
    if (lsn === log.head) return;
    try {
      // 1. Every record below lsn durable: the head never moves past bytes
      //    a power loss could take (FORMAT.md §7.2). Without waiting out
      //    commitDelayMs: a close() or truncateAfter() queued behind this
      //    would wait it out too (docs/DURABILITY.md §2.2).
      writer.submit();
      await writer.waitTarget(lsn, 'durable', false);
      // 2. A boundary, proven from the bytes below it alone.
      if (lsn !== tail || log.cuts.length !== cuts) await locator.walk(lsn, log.written, false);
      // 3. The hint, raised to what is durable now (at least lsn).
      if (durability.hint < lsn) await durability.raiseHint(log.gc!.durable);
    } catch (error) {
      if (errorCode(error) !== 'WAL_FAILED') throw error;
      // The store latched a failure, maybe in a background call (the
      // durable hint's update) whose handler has not run yet: the log
      // stops either way, and reports its own failure.
      if (durability.hintWrite !== undefined) await durability.hintWrite;
      if (durability.failure === undefined) {
        durability.fail(
          new FailedError(`truncating the log before offset ${lsn} failed`, {
            cause: error,
            offset: lsn,
          }),
          'durable',
        );
      }
      throw durability.failure;
    }
    // 4. The store records the head, then deletes what lies below it, alone.
    await log.exclusivity.alone(
      async () => {
        try {
          await log.store.truncateBefore(lsn);
        } catch (cause) {
          durability.fail(
            new FailedError(`truncating the log before offset ${lsn} failed`, {
              cause,
              offset: lsn,
            }),
            'durable',
          );
          throw durability.failure;
        }
      },
      () => {
        // 5. Forget.
        log.head = lsn;
        log.index.truncateBefore(lsn);
        for (const offset of log.skipped.keys()) if (offset < lsn) log.skipped.delete(offset);
        locator.forgetBelow(lsn);
        publishTruncate(log, 'before', lsn);
      },
    );
  });
}
