import {
  BusyError,
  FailedError,
  invalidArgType,
  outOfRange,
  rejectUnknownKeys,
  validateInteger,
  validateOffset,
  WriteFailedError,
} from '@wal/errors';
import { RangeSet, WaiterQueue } from './ordered.js';

/** Options of {@link GroupCommit}. */
export interface GroupCommitOptions {
  /**
   * Makes every write that has resolved before the call durable (an
   * `fdatasync`). Called at most once at a time, and never again after it
   * rejects (or throws). Anything but a promise or thenable as its return
   * value latches the coordinator too (a forgotten `return` must not claim
   * durability).
   */
  readonly sync: () => Promise<void>;
  /**
   * Offset where the log ends when the coordinator is created, e.g. the end of
   * the last intact record found by recovery. All three watermarks start here,
   * so every byte below it must already be durable.
   */
  readonly start: number;
  /**
   * Whether a flush waits one macrotask (`setImmediate`) before taking its
   * batch, so every committer released in the current turn of the event loop
   * joins it. Default `true`. With `false` a flush starts synchronously, inside
   * the call that made it necessary.
   */
  readonly gather?: boolean;
  /**
   * Extra batching delay in milliseconds before a flush takes its batch, like
   * PostgreSQL's `commit_delay`: more committers join, each waits longer. An
   * integer in `[0, 2^31 − 1]`; default `0` (off). When positive it replaces
   * gathering (a timer is itself a macrotask). A latched failure clears the
   * timer of a scheduled flush. A `syncTo` with `delay: false` (a caller that
   * needs durability now, such as a close) cuts it short: while such a wait is
   * pending, flushes start as with `delayMs: 0` ({@link SyncToOptions.delay}).
   */
  readonly delayMs?: number;
  /**
   * Called after each flush whose `sync` resolved, and after each durable
   * write that moved the durable watermark, once the watermark moved and the
   * waiters were released (they resume after it returns): what was made
   * durable, how many waiters shared it, and how long `sync` (or the write)
   * took. For metrics; it must not throw (an exception is
   * rethrown from a microtask, as an uncaught error) and should be cheap: it
   * runs once per flush, never per write. Not called for a failed `sync`.
   * It may call back into the coordinator: after a `sync`, the flush counts as
   * running until it returns (no flush starts from inside it; the next one,
   * if a waiter needs it, starts after it).
   */
  readonly onFlush?: (flush: FlushReport) => void;
}

/** Options of {@link GroupCommit.syncTo}. */
export interface SyncToOptions {
  /**
   * Whether the flushes this wait needs may wait out
   * {@link GroupCommitOptions.delayMs}. Default `true`. With `false`, for a
   * caller that needs the bytes durable now and that no other committer can
   * join (a close, say): while this wait is pending, no flush waits for the
   * delay. A flush already waiting for it starts at once, and the next one,
   * if this wait needs it, starts without it: as with `delayMs: 0`, after one
   * macrotask of gathering, or synchronously with `gather: false`.
   */
  readonly delay?: boolean;
}

/** One successful flush, as given to {@link GroupCommitOptions.onFlush}. */
export interface FlushReport {
  /** The durable watermark before the flush. */
  readonly start: number;
  /** The durable watermark after it: everything written when `sync` was called. */
  readonly end: number;
  /** `syncTo` waiters the flush released (committers sharing one `sync`). */
  readonly waiters: number;
  /**
   * How long `sync` took, in milliseconds (`performance.now()` resolution); for
   * a durable write, the time its owner reported with it.
   */
  readonly syncMs: number;
  /**
   * What made the bytes durable: `'sync'` (a call of `sync`) or `'write'` (a
   * durable write reported with {@link GroupCommit.markDurable}).
   */
  readonly by: 'sync' | 'write';
}

/** No flush is scheduled or running. */
const IDLE = 0;
/** A flush is scheduled (gathering or delaying) but has not called `sync` yet. */
const SCHEDULED = 1;
/** `sync` has been called and has not settled yet. */
const SYNCING = 2;
/**
 * `sync` resolved and the flush is being reported (`onFlush` runs): a call
 * back into the coordinator from the hook starts no flush; the next one is
 * decided once the hook returned.
 */
const REPORTING = 3;

type FlushState = typeof IDLE | typeof SCHEDULED | typeof SYNCING | typeof REPORTING;

const MAX_DELAY_MS = 2 ** 31 - 1;
/** The keys of {@link GroupCommitOptions}. */
const OPTION_KEYS: ReadonlySet<string> = new Set(['sync', 'start', 'gather', 'delayMs', 'onFlush']);
/** The keys of {@link SyncToOptions}. */
const SYNC_TO_KEYS: ReadonlySet<string> = new Set(['delay']);
const RESOLVED: Promise<void> = Promise.resolve();

/**
 * The contiguous-written watermark and group commit of one log. It knows
 * nothing of files: its owner reserves byte ranges ({@link GroupCommit.reserve}),
 * reports each range's write as done ({@link GroupCommit.markWritten}) or failed
 * ({@link GroupCommit.markFailed}), and asks for durability
 * ({@link GroupCommit.syncTo}); the coordinator decides when to call `sync`.
 *
 * Guarantees:
 * - `written` is the highest offset below which every reserved byte was
 *   reported written, without gaps. Completions that arrive out of order are
 *   parked until the gap before them fills; only completed writes above a gap
 *   are ever parked.
 * - `durable` is the highest offset below which every byte was made durable,
 *   without gaps: by a `sync` that was called after those bytes were written
 *   and that resolved, or by a durable write reported with
 *   {@link GroupCommit.markDurable} (which makes its own range durable, and no
 *   other). `syncTo(target)` resolves only once `durable >= target`.
 * - At most one `sync` runs at a time. A flush covers everything written when
 *   it calls `sync`; a waiter whose target was written by then is released by
 *   that flush, any other by a later one. A flush starts only when some waiter
 *   needs it, so a coordinator nobody waits on never calls `sync`.
 * - After a write fails at offset `p` ({@link GroupCommit.markFailed}), nothing
 *   at or after `p` ever becomes written or durable; targets at or below `p`
 *   are still served.
 * - After a durable write fails ({@link GroupCommit.markDurableFailed}), both
 *   hold: the log is poisoned from its start, and the failure is latched.
 * - After `sync` rejects, the failure is latched: the waiters of that flush,
 *   all other waiters and every later call fail with the same
 *   {@link @wal/errors!FailedError | FailedError}, and `sync` is never called again.
 *
 * Every promise it returns settles once the reserved writes are reported and
 * the flushes they need have settled. Single-threaded: call it from the event
 * loop that created it.
 */
export class GroupCommit {
  readonly #sync: () => Promise<void>;
  readonly #gather: boolean;
  readonly #delayMs: number;
  readonly #onFlush: ((flush: FlushReport) => void) | undefined;
  /** `performance.now()` when the running `sync` was called (with `onFlush` only). */
  #syncStartedAt = 0;

  #reserved: number;
  #written: number;
  #durable: number;
  /** Bytes reserved but not yet reported written or failed: writes in flight. */
  #unreported = 0;

  /** Completed writes above a gap, keyed by start, valued by end; disjoint. */
  readonly #parked = new RangeSet();
  /** Smallest start in `#parked`, or Infinity when it is empty. */
  #lowestParked = Number.POSITIVE_INFINITY;
  /** Writes reported durable above the durable watermark, keyed by start, valued by end; disjoint. */
  readonly #durableRanges = new RangeSet();

  /** Start of the lowest failed write, or Infinity when none failed. */
  #poison = Number.POSITIVE_INFINITY;
  #poisonCause: unknown;
  #failure: FailedError | undefined;

  #flush: FlushState = IDLE;
  /**
   * Whether a `sync` call has not settled yet. Usually the same as `#flush ===
   * SYNCING`, but a latch by a failed durable write ends the flush while its
   * `sync` still runs.
   */
  #syncRunning = false;
  /** The timer or immediate of a scheduled flush (`SCHEDULED`), so a latch can cancel it. */
  #scheduled: ReturnType<typeof setTimeout> | ReturnType<typeof setImmediate> | undefined;
  /** Whether `#scheduled` is a `delayMs` timer (else an immediate). */
  #scheduledTimer = false;
  /** `syncTo` waiters with `delay: false` not yet settled: while any is, no flush waits for `delayMs`. */
  #undelayed = 0;
  /** The written watermark when the running `sync` was called. */
  #flushTarget = 0;

  /** `syncTo` waiters by target; those released together settle in arrival order. */
  readonly #durableWaiters = new WaiterQueue();
  /** Smallest target in `#durableWaiters`, or Infinity. */
  #lowestDurableTarget = Number.POSITIVE_INFINITY;
  /** `waitWritten` waiters by target; those released together settle in arrival order. */
  readonly #writtenWaiters = new WaiterQueue();
  /** Smallest target in `#writtenWaiters`, or Infinity. */
  #lowestWrittenTarget = Number.POSITIVE_INFINITY;

  // Bound once, so that scheduling a flush allocates no closure.
  readonly #beginFlush = (): void => {
    this.#scheduled = undefined;
    this.#scheduledTimer = false;
    // A latch cancels a scheduled flush; should its callback run all the same, it does nothing.
    if (this.#failure !== undefined) return;
    if (this.#flush !== SCHEDULED) throw invariant('a scheduled flush began in another state');
    this.#startSync();
  };
  readonly #onSynced = (): void => this.#synced();
  readonly #onSyncFailed = (cause: unknown): void => {
    this.#syncRunning = false;
    this.#latch(cause);
  };

  /**
   * @throws `TypeError` (`ERR_INVALID_ARG_TYPE`) when `options` is not an
   *   object, `sync` not a function or `gather` not a boolean.
   * @throws `TypeError` (`ERR_INVALID_ARG_VALUE`) for an unknown key of `options`.
   * @throws `RangeError` (`ERR_OUT_OF_RANGE`) when `start` is not an offset in
   *   `[0, 2^53 − 1]` or `delayMs` not an integer in `[0, 2^31 − 1]`.
   */
  constructor(options: GroupCommitOptions) {
    if (typeof options !== 'object' || options === null) {
      throw invalidArgType('options', 'of type object', options);
    }
    rejectUnknownKeys('options', options, OPTION_KEYS);
    const { sync, start, gather = true, delayMs = 0, onFlush } = options;
    if (typeof sync !== 'function') throw invalidArgType('options.sync', 'a function', sync);
    if (onFlush !== undefined && typeof onFlush !== 'function') {
      throw invalidArgType('options.onFlush', 'a function', onFlush);
    }
    validateOffset('options.start', start);
    if (typeof gather !== 'boolean') throw invalidArgType('options.gather', 'a boolean', gather);
    validateInteger('options.delayMs', delayMs, 0, MAX_DELAY_MS);
    this.#sync = sync;
    this.#gather = gather;
    this.#delayMs = delayMs;
    this.#onFlush = onFlush;
    this.#reserved = start;
    this.#written = start;
    this.#durable = start;
  }

  /** End of the reserved space: every offset below it has been handed out by the owner. */
  get reserved(): number {
    return this.#reserved;
  }

  /** The written watermark: every byte below it was reported written, without gaps. */
  get written(): number {
    return this.#written;
  }

  /**
   * The durable watermark: every byte below it was covered by a `sync` that
   * resolved or by a durable write ({@link GroupCommit.markDurable}).
   */
  get durable(): number {
    return this.#durable;
  }

  /**
   * Offset of the lowest failed write reported with {@link GroupCommit.markFailed},
   * or `undefined`. Nothing at or after it can become written or durable.
   */
  get poisonedAt(): number | undefined {
    return this.#poison === Number.POSITIVE_INFINITY ? undefined : this.#poison;
  }

  /** The latched {@link @wal/errors!FailedError | FailedError} after `sync` rejected, or `undefined`. */
  get failure(): FailedError | undefined {
    return this.#failure;
  }

  /**
   * Number of completed writes parked above a gap, waiting for an earlier
   * write to complete. Never more than the writes reserved above the written
   * watermark, minus the one that leaves the gap.
   */
  get parkedCompletions(): number {
    return this.#parked.size;
  }

  /** Waiters not yet settled: `syncTo` and `waitWritten` promises pending. */
  get waiters(): number {
    return this.#durableWaiters.size + this.#writtenWaiters.size;
  }

  /**
   * True when no write is in flight (every reserved byte was reported written
   * or failed), no flush is scheduled or running and no `sync` call is
   * unsettled (one still running after a latch counts): the state in which
   * {@link GroupCommit.reset} is allowed (unless a `sync` failure is latched:
   * then `reset` always throws).
   */
  get idle(): boolean {
    return this.#unreported === 0 && this.#flush === IDLE && !this.#syncRunning;
  }

  /**
   * Extends the reserved space to `end`: the owner has handed out every offset
   * below `end` and will report each byte once, with `markWritten` or
   * `markFailed`. `end` equal to the current reserved end does nothing, even
   * after a failed write.
   *
   * @throws `RangeError` (`ERR_OUT_OF_RANGE`) when `end` is not an offset or
   *   lies below the reserved end.
   * @throws {@link @wal/errors!FailedError | FailedError} (`WAL_FAILED`) after a `sync` failed.
   * @throws {@link @wal/errors!WriteFailedError | WriteFailedError} (`WAL_WRITE_FAILED`) after a write failed,
   *   unless `end` is the reserved end: space reserved past a failed write
   *   could never become durable.
   */
  reserve(end: number): void {
    validateOffset('end', end);
    if (this.#failure !== undefined) throw this.#failure;
    if (end === this.#reserved) return;
    if (this.#poison !== Number.POSITIVE_INFINITY) throw this.#writeFailed();
    if (end < this.#reserved) {
      throw outOfRange('end', `>= the reserved end (${this.#reserved})`, end);
    }
    this.#unreported += end - this.#reserved;
    this.#reserved = end;
  }

  /**
   * Reports that the write of `[start, end)` resolved. When `start` is the
   * written watermark, the watermark advances to `end` and across any parked
   * completions that now follow without a gap; otherwise the range is parked.
   * A range at or past a failed write is accepted and dropped: it can never
   * become written. The in-order case allocates nothing.
   *
   * @throws `RangeError` (`ERR_OUT_OF_RANGE`) when an offset is invalid,
   *   `end <= start`, `end` is past the reserved end, `start` is below the
   *   written watermark, or the range overlaps one already reported.
   * @throws {@link @wal/errors!FailedError | FailedError} (`WAL_FAILED`) after a `sync` failed.
   */
  markWritten(start: number, end: number): void {
    validateOffset('start', start);
    validateOffset('end', end);
    if (this.#failure !== undefined) throw this.#failure;
    if (end <= start || end > this.#reserved) throw this.#badEnd(start, end);
    if (start === this.#written) {
      this.#advanceWritten(start, end);
      if (this.#written >= this.#lowestWrittenTarget) this.#releaseWritten();
      if (this.#flush === IDLE && this.#written >= this.#lowestDurableTarget) this.#scheduleFlush();
      return;
    }
    this.#markOutOfOrder(start, end);
  }

  /**
   * Reports that a durable write of `[start, end)` resolved: the range is
   * written (as with {@link GroupCommit.markWritten}) and durable, and it
   * makes no other range durable. The durable watermark advances over the
   * contiguous prefix of ranges that are durable, by durable writes or by a
   * `sync` covering them; a durable range above a gap (a write still in
   * flight, or written but not yet synced) waits there, and the gap is made
   * durable by its own durable write or by the next flush. `elapsedMs`
   * (default 0) is how long the write took, for
   * {@link GroupCommitOptions.onFlush}, which is called when the watermark
   * moves.
   *
   * @throws `RangeError` (`ERR_OUT_OF_RANGE`) as {@link GroupCommit.markWritten} does.
   * @throws {@link @wal/errors!FailedError | FailedError} (`WAL_FAILED`) after a `sync` failed.
   */
  markDurable(start: number, end: number, elapsedMs = 0): void {
    validateOffset('start', start);
    validateOffset('end', end);
    if (this.#failure !== undefined) throw this.#failure;
    if (end <= start || end > this.#reserved) throw this.#badEnd(start, end);
    if (start === this.#written) this.#advanceWritten(start, end);
    else if (this.#markOutOfOrder(start, end)) return;
    const before = this.#durable;
    if (start === before) {
      this.#durable = end;
      this.#drainDurable();
    } else {
      this.#durableRanges.insert(start, end);
    }
    if (this.#written >= this.#lowestWrittenTarget) this.#releaseWritten();
    if (this.#durable > before) this.#releaseDurable(before, elapsedMs, 'write');
    if (this.#flush === IDLE && this.#written >= this.#lowestDurableTarget) this.#scheduleFlush();
  }

  /**
   * Reports that a durable write of `[start, end)` failed: the failure is
   * latched as a failed `sync` is, since whether its bytes reached the disk
   * is unknown, and the log is poisoned from `start`, as by
   * {@link GroupCommit.markFailed}. Every waiter and every later call rejects
   * with {@link @wal/errors!FailedError | FailedError} (`WAL_FAILED`, `cause`
   * = `cause`); `sync` is never called again. Never throws for a failure
   * already latched.
   *
   * @throws `RangeError` (`ERR_OUT_OF_RANGE`) as {@link GroupCommit.markFailed} does.
   */
  markDurableFailed(start: number, end: number, cause?: unknown): void {
    this.#fail(start, end, cause, true);
  }

  /** `markFailed`, latching first with `latch` (a failed durable write). */
  #fail(start: number, end: number, cause: unknown, latch: boolean): void {
    validateOffset('start', start);
    validateOffset('end', end);
    if (end <= start || end > this.#reserved) throw this.#badEnd(start, end);
    // Only the lowest failed write poisons.
    const lowest = !this.#settle(start, end);
    if (lowest) {
      this.#poison = start;
      this.#poisonCause = cause;
      this.#parked.dropFrom(start);
      this.#durableRanges.dropFrom(start);
      this.#lowestParked = this.#parked.firstStart;
    }
    if (latch) this.#latch(cause, `a durable write at offset ${start} failed`);
    if (lowest && this.#failure === undefined) this.#rejectPastPoison();
  }

  /**
   * Reports that the write of `[start, end)` failed. The log is poisoned from
   * `start`: nothing at or after it can become written or durable, and every
   * waiter whose target lies past it rejects with {@link @wal/errors!WriteFailedError | WriteFailedError}
   * naming `start`, with `cause` as its cause. Parked completions at or after
   * `start` are dropped. Only the lowest failed write counts; later ones just
   * settle their bytes. Never throws for a latched `sync` failure, so an
   * owner's error path needs no guard.
   *
   * @throws `RangeError` (`ERR_OUT_OF_RANGE`) when an offset is invalid,
   *   `end <= start`, `end` is past the reserved end, `start` is below the
   *   written watermark, or the range overlaps one already reported.
   */
  markFailed(start: number, end: number, cause?: unknown): void {
    this.#fail(start, end, cause, false);
  }

  /**
   * Resolves once `durable >= target`, joining the running flush if `target`
   * was written when it called `sync`, else a later one. Resolves at once,
   * without a `sync`, when `target <= durable`. With `options.delay` false,
   * no flush waits for `delayMs` while this wait is pending: one waiting for
   * it starts at once ({@link SyncToOptions.delay}).
   *
   * Rejects with `TypeError`/`RangeError` (`ERR_INVALID_ARG_TYPE`,
   * `ERR_OUT_OF_RANGE`) when `target` is not an offset or lies past the
   * reserved end; with `TypeError` (`ERR_INVALID_ARG_TYPE`,
   * `ERR_INVALID_ARG_VALUE`) when `options` is not an object, has an unknown
   * key or a `delay` that is not a boolean; with {@link @wal/errors!WriteFailedError | WriteFailedError} (`WAL_WRITE_FAILED`, `offset` =
   * the failed write, `cause` = its error) when `target` lies past a failed
   * write, now or later; with {@link @wal/errors!FailedError | FailedError} (`WAL_FAILED`, `cause` = the
   * sync's error) once a `sync` has failed. Never throws synchronously.
   */
  syncTo(target: number, options?: SyncToOptions): Promise<void> {
    const error = this.#checkTarget(target) ?? checkSyncToOptions(options);
    if (error !== undefined) return Promise.reject(error);
    if (target <= this.#durable) return RESOLVED;
    if (options?.delay === false) return this.#syncToUndelayed(target);
    return new Promise<void>((resolve, reject) => {
      this.#durableWaiters.push({ target, resolve, reject });
      if (target < this.#lowestDurableTarget) this.#lowestDurableTarget = target;
      if (this.#flush === IDLE && target <= this.#written) this.#scheduleFlush();
    });
  }

  /** {@link GroupCommit.syncTo} with `delay: false`, for a valid target above `durable`. */
  #syncToUndelayed(target: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      // Counted until it settles, however (released, poisoned, latched).
      this.#undelayed++;
      this.#durableWaiters.push({
        target,
        resolve: () => {
          this.#undelayed--;
          resolve();
        },
        reject: (error) => {
          this.#undelayed--;
          reject(error);
        },
      });
      if (target < this.#lowestDurableTarget) this.#lowestDurableTarget = target;
      if (this.#flush === IDLE) {
        if (target <= this.#written) this.#scheduleFlush();
      } else if (this.#flush === SCHEDULED && this.#scheduledTimer) {
        // A flush waiting out the delay: it starts now instead.
        clearTimeout(this.#scheduled as ReturnType<typeof setTimeout>);
        this.#scheduled = undefined;
        this.#scheduledTimer = false;
        this.#flush = IDLE;
        this.#scheduleFlush();
      }
    });
  }

  /**
   * Resolves once `written >= target`: every byte below `target` is in the
   * operating system's hands (a process crash keeps it; a power loss may not).
   * Calls no `sync`.
   *
   * Rejects exactly as {@link GroupCommit.syncTo} does: argument errors, a
   * target past a failed write (`WAL_WRITE_FAILED`), a latched sync failure
   * (`WAL_FAILED`). Never throws synchronously.
   */
  waitWritten(target: number): Promise<void> {
    const error = this.#checkTarget(target);
    if (error !== undefined) return Promise.reject(error);
    if (target <= this.#written) return RESOLVED;
    return new Promise<void>((resolve, reject) => {
      this.#writtenWaiters.push({ target, resolve, reject });
      if (target < this.#lowestWrittenTarget) this.#lowestWrittenTarget = target;
    });
  }

  /**
   * Moves the end of the log to `offset`, for a truncation: `reserved` and
   * `written` become `offset`, `durable` becomes `min(durable, offset)` (a
   * reset never claims durability; the next `syncTo` past it calls `sync`),
   * and a write failure (poison) and parked completions are cleared. Allowed
   * only while {@link GroupCommit.idle}, so no write or waiter is stranded.
   *
   * A latched `sync` failure is never cleared: after a failed fsync the kernel
   * may have dropped the dirty pages and marked them clean, so no later sync
   * can tell what reached the disk. Build a new coordinator over a reopened
   * store instead.
   *
   * @throws `RangeError` (`ERR_OUT_OF_RANGE`) when `offset` is not an offset or
   *   lies past the written watermark.
   * @throws {@link @wal/errors!FailedError | FailedError} (`WAL_FAILED`) after a `sync` failed.
   * @throws {@link @wal/errors!BusyError | BusyError} (`WAL_BUSY`) while a write is in flight or a
   *   flush is scheduled or running.
   */
  reset(offset: number): void {
    validateOffset('offset', offset);
    if (this.#failure !== undefined) throw this.#failure;
    if (this.#unreported !== 0) {
      throw new BusyError(
        `cannot reset the commit coordinator: ${this.#unreported} reserved bytes are not yet reported written or failed`,
        { offset },
      );
    }
    if (this.#flush !== IDLE) {
      throw new BusyError('cannot reset the commit coordinator while a flush is pending', {
        offset,
      });
    }
    if (offset > this.#written) {
      throw outOfRange('offset', `<= the written watermark (${this.#written})`, offset);
    }
    this.#reserved = offset;
    this.#written = offset;
    if (offset < this.#durable) this.#durable = offset;
    this.#parked.clear();
    this.#durableRanges.clear();
    this.#lowestParked = Number.POSITIVE_INFINITY;
    this.#poison = Number.POSITIVE_INFINITY;
    this.#poisonCause = undefined;
  }

  /** Moves the written watermark from `start` (where it is) to `end` and across parked completions. */
  #advanceWritten(start: number, end: number): void {
    if (end > this.#lowestParked || end > this.#poison) throw this.#overlap(start, end);
    this.#unreported -= end - start;
    this.#written = end;
    if (end === this.#lowestParked) this.#drainParked();
  }

  /** Parks an out-of-order completion; true when it lies past a failed write (dropped). */
  #markOutOfOrder(start: number, end: number): boolean {
    // Past a failed write, it can never become written, so it is not parked.
    if (this.#settle(start, end)) return true;
    this.#parked.insert(start, end);
    if (start < this.#lowestParked) this.#lowestParked = start;
    return false;
  }

  /**
   * Advances the durable watermark across the durable ranges it now reaches.
   * They are reported ranges, so it never passes the written watermark.
   */
  #drainDurable(): void {
    const ranges = this.#durableRanges;
    while (ranges.firstStart <= this.#durable) {
      const end = ranges.shift();
      if (end > this.#durable) this.#durable = end;
    }
  }

  /**
   * After the durable watermark moved from `start`: releases the waiters it
   * reached, then reports the flush to `onFlush`.
   */
  #releaseDurable(start: number, ms: number, by: 'sync' | 'write'): void {
    const before = this.#durableWaiters.size;
    this.#lowestDurableTarget = this.#durableWaiters.release(this.#durable);
    const onFlush = this.#onFlush;
    if (onFlush === undefined) return;
    const report: FlushReport = {
      start,
      end: this.#durable,
      waiters: before - this.#durableWaiters.size,
      syncMs: ms,
      by,
    };
    try {
      onFlush(report);
    } catch (error) {
      queueMicrotask(() => {
        throw error;
      });
    }
  }

  /**
   * Counts `[start, end)`, an unreported range at or past the written
   * watermark, as reported; true when it lies at or past a failed write
   * (nothing more to do for it).
   *
   * @throws `RangeError` (`ERR_OUT_OF_RANGE`) when the range overlaps one
   *   already reported, or straddles the failed write.
   */
  #settle(start: number, end: number): boolean {
    if (start < this.#written || end - start > this.#unreported) throw this.#overlap(start, end);
    const pastPoison = start >= this.#poison;
    if (!pastPoison && (end > this.#poison || this.#overlapsParked(start, end))) {
      throw this.#overlap(start, end);
    }
    this.#unreported -= end - start;
    return pastPoison;
  }

  /**
   * Whether `[start, end)` overlaps a parked completion. Parked ranges are
   * disjoint, so their ends rise with their starts: only the last one starting
   * below `end` can reach past `start`. O(log parked).
   */
  #overlapsParked(start: number, end: number): boolean {
    return this.#parked.endBefore(end) > start;
  }

  /**
   * Advances the watermark across parked completions; the first starts at
   * `#written`. They are the lowest parked, so this takes them from the front:
   * O(drained) amortised.
   */
  #drainParked(): void {
    const parked = this.#parked;
    while (parked.firstStart === this.#written) this.#written = parked.shift();
    this.#lowestParked = parked.firstStart;
  }

  #checkTarget(target: number): Error | undefined {
    try {
      validateOffset('target', target);
    } catch (error) {
      return error as Error;
    }
    if (this.#failure !== undefined) return this.#failure;
    if (target > this.#reserved) {
      return outOfRange('target', `<= the reserved end (${this.#reserved})`, target);
    }
    if (target > this.#poison) return this.#writeFailed();
    return undefined;
  }

  #scheduleFlush(): void {
    if (this.#flush !== IDLE || this.#syncRunning) {
      throw invariant('a flush was scheduled while another is scheduled or running');
    }
    if (this.#delayMs > 0 && this.#undelayed === 0) {
      this.#flush = SCHEDULED;
      this.#scheduledTimer = true;
      this.#scheduled = setTimeout(this.#beginFlush, this.#delayMs);
    } else if (this.#gather) {
      this.#flush = SCHEDULED;
      this.#scheduled = setImmediate(this.#beginFlush);
    } else {
      this.#startSync();
    }
  }

  /**
   * Calls `sync`. Some waiter's target is written here: a flush is scheduled
   * only then, and until it starts nothing removes such a waiter (a poison lies
   * at or above the written watermark; a latch needs a sync; a reset needs idle).
   */
  #startSync(): void {
    if (this.#syncRunning) throw invariant('sync was called while another sync runs');
    this.#flush = SYNCING;
    this.#flushTarget = this.#written;
    if (this.#onFlush !== undefined) this.#syncStartedAt = performance.now();
    let pending: unknown;
    try {
      pending = this.#sync();
      if (!isThenable(pending)) {
        this.#latch(invalidSyncResult(pending));
        return;
      }
    } catch (error) {
      this.#latch(error);
      return;
    }
    this.#syncRunning = true;
    Promise.resolve(pending).then(this.#onSynced, this.#onSyncFailed);
  }

  #synced(): void {
    this.#syncRunning = false;
    // A durable write's failure latched the coordinator while `sync` ran.
    if (this.#failure !== undefined) return;
    // Not IDLE while `onFlush` runs: a call back into the coordinator from it
    // (markWritten, markDurable, syncTo) must not start a second flush, which
    // would run alongside the one started below and share its target.
    this.#flush = REPORTING;
    const start = this.#durable;
    if (this.#flushTarget > start) this.#durable = this.#flushTarget;
    this.#drainDurable();
    const ms = this.#onFlush === undefined ? 0 : performance.now() - this.#syncStartedAt;
    // Waiters resume only after this returns: scheduling the next flush first is safe.
    this.#releaseDurable(start, ms, 'sync');
    // `onFlush` may have latched the coordinator (markDurableFailed): then it is IDLE.
    if (this.#failure !== undefined) return;
    this.#flush = IDLE;
    if (this.#lowestDurableTarget <= this.#written) this.#scheduleFlush();
  }

  #latch(cause: unknown, what = 'sync failed'): void {
    if (this.#failure !== undefined) return;
    // A scheduled flush is pointless now; its timer must not keep the process alive.
    if (this.#scheduled !== undefined) {
      if (this.#scheduledTimer) clearTimeout(this.#scheduled as ReturnType<typeof setTimeout>);
      else clearImmediate(this.#scheduled as ReturnType<typeof setImmediate>);
      this.#scheduled = undefined;
      this.#scheduledTimer = false;
    }
    // A `sync` still running keeps `idle` false (`#syncRunning`) until it settles.
    this.#flush = IDLE;
    const failure = new FailedError(
      `${what}: nothing at or after offset ${this.#durable} can be made durable, and this commit coordinator accepts no more work`,
      { cause, offset: this.#durable },
    );
    this.#failure = failure;
    const waiters = [...this.#durableWaiters.takeAll(), ...this.#writtenWaiters.takeAll()];
    this.#lowestDurableTarget = Number.POSITIVE_INFINITY;
    this.#lowestWrittenTarget = Number.POSITIVE_INFINITY;
    this.#parked.clear();
    this.#durableRanges.clear();
    this.#lowestParked = Number.POSITIVE_INFINITY;
    for (const waiter of waiters) waiter.reject(failure);
  }

  #releaseWritten(): void {
    this.#lowestWrittenTarget = this.#writtenWaiters.release(this.#written);
  }

  /** Rejects every waiter whose target lies past the poison: O(rejected + log waiters). */
  #rejectPastPoison(): void {
    const poison = this.#poison;
    const rejected = [
      ...this.#durableWaiters.takeAbove(poison),
      ...this.#writtenWaiters.takeAbove(poison),
    ];
    this.#lowestDurableTarget = this.#durableWaiters.firstTarget;
    this.#lowestWrittenTarget = this.#writtenWaiters.firstTarget;
    for (const waiter of rejected) waiter.reject(this.#writeFailed());
  }

  #writeFailed(): WriteFailedError {
    return new WriteFailedError(
      this.#poison,
      this.#poisonCause === undefined ? {} : { cause: this.#poisonCause },
    );
  }

  #badEnd(start: number, end: number): RangeError {
    return outOfRange(
      'end',
      `> start (${start}) and <= the reserved end (${this.#reserved})`,
      end,
    ) as RangeError;
  }

  #overlap(start: number, end: number): RangeError {
    return outOfRange(
      'start',
      `>= the written watermark (${this.#written}) with [start, end) = [${start}, ${end}) overlapping no range already reported`,
      start,
    ) as RangeError;
  }
}

/** The argument error of `syncTo`'s `options`, or `undefined` when they are valid. */
function checkSyncToOptions(options: SyncToOptions | undefined): Error | undefined {
  if (options === undefined) return undefined;
  try {
    if (typeof options !== 'object' || options === null) {
      throw invalidArgType('options', 'of type object', options);
    }
    rejectUnknownKeys('options', options, SYNC_TO_KEYS);
    const { delay } = options;
    if (delay !== undefined && typeof delay !== 'boolean') {
      throw invalidArgType('options.delay', 'a boolean', delay);
    }
  } catch (error) {
    return error as Error;
  }
  return undefined;
}

/** An internal invariant was broken: a bug of this module, never of its caller. */
function invariant(what: string): Error {
  return new Error(`GroupCommit invariant broken: ${what}`);
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    (typeof value === 'object' || typeof value === 'function') &&
    value !== null &&
    typeof (value as { then?: unknown }).then === 'function'
  );
}

/** `TypeError` (`ERR_INVALID_RETURN_VALUE`) for a `sync` that returned no promise. */
function invalidSyncResult(value: unknown): TypeError {
  const shown =
    value === null
      ? 'null'
      : typeof value === 'object'
        ? `an instance of ${(value as object).constructor?.name ?? 'Object'}`
        : `type ${typeof value}${typeof value === 'number' ? ` (${value})` : ''}`;
  const error = new TypeError(
    `Expected options.sync to return a promise (or thenable), but it returned ${shown}`,
  );
  Object.defineProperty(error, 'code', { value: 'ERR_INVALID_RETURN_VALUE', enumerable: true });
  return error;
}
