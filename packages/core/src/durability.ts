/**
 * Fail-stop and the durable hint (docs/DURABILITY.md §4, docs/FORMAT.md §5.2,
 * §8.3): the sync the group commit calls, the durable hint persisted after
 * syncs, and the stop of the log when a write, a sync or a hint update fails
 * (docs/INTERNALS.md §6). Internal to @wal/core.
 */
import { ClosedError, FailedError, type WalError } from '@wal/errors';
import { publishFail } from './channels.js';
import { DURABLE_HINT_KEY, META_CUT_TO, META_TRUNCATIONS } from './meta.js';
import { BLOCK_FAILED, type LogState } from './state.js';

/** Durable-hint spacing when the store has no segment size. */
const DEFAULT_HINT_INTERVAL = 64 * 1024 * 1024;

/** What the log knows is durable, and what stopped it. Internal. */
export class Durability {
  readonly #log: LogState;
  readonly #hintInterval: number;
  #failure: WalError | undefined;
  /** Where a reopen resumes after the failure. */
  #resumeAt: number | undefined;
  /**
   * Whether a reopen also resumes at most at the durable watermark as it
   * stands once this log is closed (after a failed sync, hint or truncation:
   * records acknowledged durable after the failure are kept, others dropped).
   */
  #resumeAtDurable = false;
  /** The durable hint as persisted. */
  #hint: number;
  /** Set by the close once it closes the store. */
  #storeClosed = false;
  /** The hint's metadata update in flight (one at a time). */
  #hintWrite: Promise<void> | undefined;
  /** A newer value to persist once the update in flight settled. */
  #hintWanted: number | undefined;
  /**
   * The resume point's record in the metadata (`wal.cutTo`), once a failure
   * made the bytes past the durable watermark untrusted: resolves with
   * `undefined` once recorded (or when there is nothing to record), with the
   * error when recording failed. Never rejects.
   */
  #mark: Promise<WalError | undefined> | undefined;

  constructor(log: LogState, hint: number, segmentSize: number) {
    this.#log = log;
    this.#hint = hint;
    this.#hintInterval = segmentSize || DEFAULT_HINT_INTERVAL;
  }

  /** Notes that the log's close is closing the store: no sync is sent to it from now on. */
  storeClosing(): void {
    this.#storeClosed = true;
  }

  /** The failure that stopped the log, or `undefined`. */
  get failure(): WalError | undefined {
    return this.#failure;
  }

  /** The durable hint as persisted. */
  get hint(): number {
    return this.#hint;
  }

  /** The hint's update in flight, if any. */
  get hintWrite(): Promise<void> | undefined {
    return this.#hintWrite;
  }

  /**
   * Where a reopen resumes (docs/FORMAT.md §8.3): the failed write's offset,
   * or at most the durable watermark after a failed sync, hint or truncation;
   * `undefined` without a failure.
   */
  resumeAt(): number | undefined {
    let resumeAt = this.#resumeAt;
    const gc = this.#log.gc;
    if (this.#resumeAtDurable && gc !== undefined) {
      resumeAt = Math.min(resumeAt ?? Number.POSITIVE_INFINITY, gc.durable);
    }
    return resumeAt;
  }

  /**
   * Stops the log: appends throw `error`, staged records are dropped (their
   * waiters reject), and a reopen resumes at `resumeAt` ('durable': at the
   * durable watermark when the log is closed; with `durableToo`, at the
   * lower of both). `untrusted`: a write-back failed (a failed sync or
   * durable write, which the store latched), so the bytes past the resume
   * point may be in the page cache only: it is recorded for every later
   * open. docs/INTERNALS.md §6.
   */
  fail(error: WalError, resumeAt: number | 'durable', durableToo = false, untrusted = false): void {
    const first = this.#failure === undefined;
    if (first) this.#failure = error;
    if (resumeAt === 'durable') this.#resumeAtDurable = true;
    else this.#resumeAt = Math.min(this.#resumeAt ?? Number.POSITIVE_INFINITY, resumeAt);
    if (durableToo) this.#resumeAtDurable = true;
    const log = this.#log;
    log.blocked |= BLOCK_FAILED;
    log.writer.dropStaged(error);
    log.writer.rejectDrainWaiters(error);
    if (first) {
      log.shared?.failed(error);
      publishFail(log, error);
    }
    if (untrusted && (resumeAt === 'durable' || durableToo)) this.#recordResume();
  }

  /**
   * Settles once the resume point's record in the metadata (after a failed
   * sync or durable write, or another failure the store latched) is done:
   * with `undefined` when recorded or when there was none to record, with
   * the error when recording failed. Never rejects.
   */
  resumeRecorded(): Promise<WalError | undefined> {
    return this.#mark ?? Promise.resolve(undefined);
  }

  /**
   * Records where the log resumes (the durable watermark, or lower) in the
   * metadata as a cut of its end in progress (`wal.cutTo`, counted in
   * `wal.truncations`, the hint lowered to it: docs/FORMAT.md §5.2, §8
   * step 8), in the background, so that any later open, in any process,
   * cuts there as a `reopen()` does: bytes past it may be in the page cache
   * only, never to reach the disk, although they read back intact and a
   * later fsync succeeds (docs/DURABILITY.md §4). Called after a failed
   * sync or durable write (the group commit latched it) or a write whose
   * fsync inside failed (the store latched it: every later sync or durable
   * write rejects, and so does every one completing after the latch): the
   * durable watermark no longer moves, so the resume point is final. The
   * metadata is its own file, replaced through a new one: the store writes
   * it although it refuses all else (`Store.updateMetaAfterFailure`).
   */
  #recordResume(): void {
    const log = this.#log;
    const store = log.store;
    if (this.#mark !== undefined || log.readOnly || store.updateMetaAfterFailure === undefined) {
      return;
    }
    const at = this.resumeAt();
    if (at === undefined) return;
    const hint = Math.min(this.#hint, at);
    log.exclusivity.begin();
    this.#mark = log.gate
      .call(() =>
        store.updateMetaAfterFailure!({
          [DURABLE_HINT_KEY]: hint,
          [META_TRUNCATIONS]: log.cutCount + 1,
          [META_CUT_TO]: at,
        }),
      )
      .then(
        () => {
          this.#hint = hint;
          log.cutCount++;
          log.exclusivity.end();
          return undefined;
        },
        (cause: unknown) => {
          log.exclusivity.end();
          return new FailedError(
            `recording in the metadata that the failed log resumes at offset ${at} failed: an open after this process ends may take the bytes past it for durable, though they may not be on disk`,
            { cause, offset: at },
          );
        },
      );
  }

  /**
   * The sync the group commit calls: the store's, then the durable hint.
   * Waits while the store gate is closed: the writes it covers are those
   * that resolved before the store's sync is called, as the group commit
   * requires. Never throws: a store sync that throws (or returns no
   * promise) is a failed sync.
   */
  syncStore(): Promise<void> {
    const log = this.#log;
    // A flush asked for after this log's close closed the store (a thread's
    // wait racing the close's last step): not a failed fsync, so the log's
    // resume point stays (docs/INTERNALS.md §6).
    if (this.#storeClosed) return Promise.reject(new ClosedError('log'));
    const closed = log.gate.closed;
    if (closed !== undefined) return closed.then(() => this.syncStore());
    const target = log.gc!.written;
    log.preallocation.syncAsked();
    log.gate.enter();
    let pending: Promise<void>;
    try {
      pending = log.store.sync();
      if (typeof (pending as { then?: unknown } | null)?.then !== 'function') {
        throw new TypeError('Store.sync() returned no promise');
      }
    } catch (cause) {
      // The Store contract forbids it: a throw (or no promise) is a failed
      // sync, settled as one in flight is, never half (the group commit
      // latched, the log running on).
      pending = Promise.reject(cause);
    }
    return pending.then(
      () => {
        log.gate.leave();
        this.synced(target);
      },
      (cause: unknown) => {
        log.gate.leave();
        this.syncFailed(cause);
        throw cause;
      },
    );
  }

  /** After a store sync covering `target` succeeded: persists the hint when due. */
  synced(target: number): void {
    if (Math.floor(target / this.#hintInterval) > Math.floor(this.#hint / this.#hintInterval)) {
      this.#writeHint(target);
    }
  }

  /**
   * After a store sync failed with `cause`, or the durable write at `write`:
   * stops the log (a reopen resumes at most at the durable watermark).
   */
  syncFailed(cause: unknown, write?: number): void {
    const what =
      write === undefined ? 'a sync of the log' : `a durable write of the log at offset ${write}`;
    this.fail(
      new FailedError(`${what} failed; nothing after the last durable offset can be trusted`, {
        cause,
        offset: this.#log.gc!.durable,
      }),
      'durable',
      false,
      true,
    );
  }

  /** Raises the persisted durable hint to at least `value` (durable already). */
  async raiseHint(value: number): Promise<void> {
    while (this.#hint < value) {
      if (this.#failure !== undefined) throw this.#failure;
      if (this.#hintWrite === undefined) this.#writeHint(value);
      else this.#hintWanted = Math.max(this.#hintWanted ?? 0, value);
      await this.#hintWrite;
    }
  }

  /**
   * At a clean close: persists the durable watermark as the hint, unless the
   * hint already covers it or the log failed.
   */
  async recordFinal(durable: number): Promise<void> {
    if (this.#hint < durable && this.#failure === undefined) {
      await this.#log.store.updateMeta({ [DURABLE_HINT_KEY]: durable });
      this.#hint = durable;
    }
  }

  /**
   * The hint a `truncateAfter` cutting at `end` persists before it cuts
   * (damage above the cut will be a tear, docs/FORMAT.md §7.1).
   */
  loweredTo(end: number): number {
    return Math.min(this.#hint, end);
  }

  /** Records that the hint was persisted lowered to (at most) `end`. */
  lowered(end: number): void {
    this.#hint = Math.min(this.#hint, end);
  }

  /** Persists the durable hint (in the background; one update at a time). */
  #writeHint(value: number): void {
    if (this.#hintWrite !== undefined) {
      this.#hintWanted = Math.max(this.#hintWanted ?? 0, value);
      return;
    }
    const log = this.#log;
    log.exclusivity.begin();
    this.#hintWrite = log.gate
      .call(() => log.store.updateMeta({ [DURABLE_HINT_KEY]: value }))
      .then(
        () => {
          this.#hint = Math.max(this.#hint, value);
          this.#hintWrite = undefined;
          const wanted = this.#hintWanted;
          this.#hintWanted = undefined;
          if (wanted !== undefined && wanted > this.#hint) this.#writeHint(wanted);
          log.exclusivity.end();
        },
        (cause: unknown) => {
          this.#hintWrite = undefined;
          this.#hintWanted = undefined;
          this.fail(
            new FailedError('writing the durable hint to the metadata failed', {
              cause,
              offset: log.gc?.durable ?? 0,
            }),
            'durable',
          );
          log.exclusivity.end();
        },
      );
  }
}
