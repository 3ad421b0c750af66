/**
 * The log: append with a synchronous reservation and coalesced positional
 * writes, group commit, recovery, read, iterate, truncation at both ends,
 * fail-stop. Normative behaviour: docs/FORMAT.md §5–§8 and docs/DURABILITY.md.
 *
 * `Wal` is the public face; the work is done by one module per idea
 * (docs/INTERNALS.md §1): recovery.ts (open), writer.ts (staging, writes,
 * back-pressure), preallocation.ts, durability.ts (sync, durable hint,
 * fail-stop), exclusive.ts (who runs alone, who waits), locate.ts (reads by
 * LSN), reader.ts (iterators) and truncation.ts, sharing state.ts.
 */
import { GroupCommit } from '@wal/commit';
import {
  ClosedError,
  errorCode,
  invalidArgType,
  invalidArgValue,
  outOfRange,
  ReadOnlyError,
  RecordTooLargeError,
  TruncatedError,
  validateOffset,
  type WalError,
} from '@wal/errors';
import type { Store, StoreMeta } from '@wal/store';
import { abortable, abortError, cancellable } from './abort.js';
import { appendAndWait } from './append-wait.js';
import { syncNow } from './blocking.js';
import type { BoundaryIndex } from './boundary-index.js';
import { publishRecovery } from './channels.js';
import { closeLog } from './close.js';
import { Durability } from './durability.js';
import { Exclusivity } from './exclusive.js';
import { Locator, READ_WINDOW } from './locate.js';
import { LoopTurns } from './loop-turns.js';
import {
  appendSignal,
  DEFAULT_PREALLOCATE,
  type ResolvedOptions,
  resolveOptions,
  validateWait,
  type WaitLevel,
  type WalOptions,
  waitLevel,
} from './options.js';
import { Preallocation } from './preallocation.js';
import {
  BatchIterator,
  batchBytesOf,
  openReader,
  type ReaderAccess,
  RecordIterator,
  readerAccess,
} from './reader.js';
import type { StoredRecord } from './record.js';
import {
  isStore,
  openStore,
  type RecoveryReport,
  recover,
  rescan,
  type WalSource,
} from './recovery.js';
import { SharedLog, type SharedWalHandle } from './shared-log.js';
import {
  BLOCK_CLOSED,
  BLOCK_FAILED,
  BLOCK_FULL,
  BLOCK_READ_ONLY,
  BLOCK_SHARED,
  BLOCK_TRUNCATING,
  LogState,
} from './state.js';
import { FlushStats, type WalStats } from './stats.js';
import { claimStore, releaseStore } from './store-claims.js';
import { truncateAfter, truncateBefore } from './truncation.js';
import { Writer } from './writer.js';

export type { WaitLevel } from './options.js';
export type { RecoveryReport, WalSource } from './recovery.js';

/** Options of a waiting append. */
export interface AppendOptions {
  readonly wait: WaitLevel;
  /**
   * Cancels the wait (docs/DURABILITY.md §3): once it aborts, the promise
   * rejects with a `DOMException` named `'AbortError'` (`cause`: the
   * signal's reason). The record stays appended and becomes durable like any
   * other. A signal already aborted at the call appends nothing.
   */
  readonly signal?: AbortSignal;
}

/** Options of {@link Wal.waitFor}, {@link Wal.sync} and {@link Wal.drained}. */
export interface WaitOptions {
  /**
   * Cancels the wait: once it aborts, the promise rejects with a
   * `DOMException` named `'AbortError'` (`cause`: the signal's reason). What
   * is waited for goes on (docs/DURABILITY.md §3). A signal already aborted
   * at the call starts nothing.
   */
  readonly signal?: AbortSignal;
}

const noop = (): void => {};

/**
 * The metadata of `wal`'s store, read through the log's store gate (docs/
 * INTERNALS.md §8), so that the read never runs beside the store's
 * `truncateBefore`, which a store refuses to run beside any other call (a
 * log whose cut met another call in flight would fail). Internal to
 * @wal/core (backup.ts); not exported from the package. Set by the class's
 * static block below.
 */
export let gatedMeta: (wal: Wal) => Promise<StoreMeta>;

/**
 * A write-ahead log over a {@link Store}: records appended with a synchronous
 * LSN, written in coalesced positional writes, made durable by group commit,
 * recovered on open, read and iterated by LSN, truncated at either end.
 *
 * Durability (docs/DURABILITY.md): a record is `written` once every byte up to
 * its end reached the operating system (a process crash keeps it), `durable`
 * once a sync covering it succeeded (a power loss keeps it). Nothing is
 * acknowledged at a level it has not reached.
 *
 * Errors: synchronous methods throw, promise-returning ones reject, with
 * `WalError`s (`WAL_CLOSED`, `WAL_BUSY`, `WAL_FAILED`, `WAL_WRITE_FAILED`,
 * `WAL_READ_ONLY`, `WAL_RECORD_TOO_LARGE`, `WAL_NOT_BOUNDARY`,
 * `WAL_TRUNCATED`, `WAL_CORRUPTION`, and at open `WAL_NOT_A_LOG`,
 * `WAL_LOCKED`, `WAL_UNSUPPORTED_FORMAT`, `WAL_IO`) or Node-style argument
 * errors.
 *
 * Single-threaded: use it from the event loop that opened it.
 */
export class Wal {
  static {
    gatedMeta = (wal) => {
      const log = wal.#log;
      return log.gate.call(() => log.store.readMeta());
    };
  }

  readonly #log: LogState;
  readonly #source: WalSource;
  readonly #application: string | undefined;
  readonly #options: ResolvedOptions;
  readonly #recovery: RecoveryReport;
  #closing: Promise<void> | undefined;
  /** What iterators may see of the log. */
  readonly #access: ReaderAccess;
  /** With `blockingSync` (writable): paces the waits so that awaiting loops let the event loop turn. */
  readonly #turns: LoopTurns | undefined;
  /** `#append` and the paced wait of an append, made once (no closure per append). */
  readonly #appendOne = (payload: Uint8Array): number => this.#append(payload);
  readonly #waitAppendedPaced = (target: number, level: WaitLevel): Promise<void> =>
    this.#paced(this.#waitAppended(target, level), level);

  private constructor(init: {
    store: Store;
    source: WalSource;
    options: ResolvedOptions;
    index: BoundaryIndex;
    maxRecordSize: number;
    end: number;
    hint: number;
    skipped: Map<number, number>;
    recovery: RecoveryReport;
    truncations: number;
    application: string | undefined;
  }) {
    const { store, options, end } = init;
    this.#source = init.source;
    this.#application = init.application;
    this.#options = options;
    this.#recovery = init.recovery;
    const segmentSize = (store as { segmentSize?: unknown }).segmentSize;
    const segment = typeof segmentSize === 'number' && segmentSize > 0 ? segmentSize : 0;
    const log = new LogState({
      store,
      gc: options.readOnly
        ? undefined
        : new GroupCommit({
            start: end,
            delayMs: options.commitDelayMs,
            // Blocking: a sync starts inside the write that lets it, with no macrotask.
            gather: !options.blockingSync,
            sync: options.blockingSync ? () => syncNow(log) : () => log.durability.syncStore(),
            onFlush: (flush) => log.stats.flushed(flush),
          }),
      index: init.index,
      skipped: init.skipped,
      maxRecordSize: init.maxRecordSize,
      stagingLimit: options.stagingLimit,
      readOnly: options.readOnly,
      blockingSync: options.blockingSync,
      durableWrites: options.durableWrites,
      end,
      truncations: init.truncations,
    });
    const preallocate =
      options.preallocate ?? (typeof init.source === 'string' ? DEFAULT_PREALLOCATE : 0);
    log.writer = new Writer(log, segment);
    log.preallocation = new Preallocation(log, preallocate, segment, end);
    log.durability = new Durability(log, init.hint, segment);
    log.exclusivity = new Exclusivity(log);
    log.locator = new Locator(log);
    log.stats = new FlushStats(log);
    log.wal = this;
    this.#log = log;
    this.#access = readerAccess(log);
    this.#turns = options.blockingSync && !options.readOnly ? new LoopTurns() : undefined;
    publishRecovery(this, init.recovery);
  }

  /**
   * Opens (creating if needed) the log at `source` and recovers it
   * (docs/FORMAT.md §8): scans from the head, cuts a torn tail, makes the
   * recovered files and directory durable, has the store get the end ready
   * for the next write (`Store.readyEnd`: a segmented log creates the empty
   * segment holding the end when none does, §3.2), then accepts appends. A store
   * passed in (or made by a function) belongs to the log from then on: it is
   * closed by `close()`, and when `open` rejects (except with `WAL_LOCKED`
   * for a store another log holds). A store instance serves one log at a
   * time: from its open until its `close()` settled, another `Wal.open` of
   * the same instance (writable or read-only) rejects with `WAL_LOCKED` and
   * leaves it as it is; after that the store is closed, and an open of it
   * rejects with `WAL_CLOSED`.
   *
   * Read-only (`options.readOnly`): takes no lock, changes nothing, and
   * `recovery` reports what a writable open would do.
   *
   * Rejects with `TypeError`/`RangeError` for invalid options (a
   * `maxRecordSize` below the persisted one is `ERR_OUT_OF_RANGE`),
   * `WAL_NOT_A_LOG` when the path holds something that is not a log (a
   * user's file or directory: docs/FORMAT.md §3.1; nothing is changed),
   * `WAL_LOCKED` when another handle holds the log (or another open log
   * the store instance), `WAL_CORRUPTION` for
   * damage below the durable hint (strict policy) or a log shorter than its
   * durable hint, `WAL_RECORD_TOO_LARGE` for an intact record above the
   * maximum (nothing is cut), `WAL_UNSUPPORTED_FORMAT` for a log written in
   * a format version this release cannot read (nothing is changed),
   * `WAL_IO`/`WAL_FAILED` for I/O failures.
   */
  static async open(source: WalSource, options?: WalOptions): Promise<Wal> {
    return Wal.#open(source, resolveOptions(options), undefined);
  }

  static async #open(
    source: WalSource,
    options: ResolvedOptions,
    resumeAt: number | undefined,
  ): Promise<Wal> {
    const store = await openStore(source, options);
    // Before the store is read: one held by another open log is refused as
    // it is (neither read, changed nor closed).
    claimStore(store);
    try {
      const where = typeof source === 'string' ? source : 'the store';
      const recovered = await recover(store, options, resumeAt, where);
      if (!options.readOnly) await readyEnd(store);
      return new Wal({ store, source, options, ...recovered });
    } catch (error) {
      await store.close().catch(noop);
      releaseStore(store);
      throw error;
    }
  }

  // ---------------------------------------------------------------- state

  /**
   * The store under the log. Do not write to it, and do not call it while
   * the log may truncate (a store may refuse a call beside its own
   * `truncateBefore`, and the log then fails).
   */
  get store(): Store {
    return this.#log.store;
  }
  /** What recovery found and did at open. */
  get recovery(): RecoveryReport {
    return this.#recovery;
  }
  /**
   * The name of the program the log's records belong to, as the log records
   * it (`WalOptions.application`, docs/FORMAT.md §5.2): the name it was
   * created with, `undefined` for a log created without one.
   */
  get application(): string | undefined {
    return this.#application;
  }
  /** First live offset (LSN of the first record, if any). */
  get head(): number {
    return this.#log.head;
  }
  /** The next LSN to be handed out: one past the last appended record (by any thread of a shared log). */
  get tail(): number {
    const log = this.#log;
    return log.shared === undefined ? log.tail : log.shared.tail;
  }
  /**
   * The written watermark: every record ending at or below it is written.
   * Read-only logs: the end of the intact records scanned (by open or `refresh()`).
   */
  get written(): number {
    return this.#log.written;
  }
  /**
   * The durable watermark: every record ending at or below it survives a
   * power loss. Read-only logs cannot know it (another process may be
   * writing): they report the scanned end, as `written` does.
   */
  get durable(): number {
    return this.#log.gc?.durable ?? this.#log.scannedEnd;
  }
  /** The largest payload accepted, in bytes. */
  get maxRecordSize(): number {
    return this.#log.maxRecordSize;
  }
  /** Bytes of appended records held in memory (staged or being written; a shared log's ring too). */
  get bufferedBytes(): number {
    const log = this.#log;
    return log.writer.buffered + (log.shared?.used ?? 0);
  }
  /**
   * False when the staging memory is full (a shared log: its ring): the
   * next append would throw `WAL_BUSY`. Wait for {@link Wal.drained} before
   * appending more.
   */
  get writable(): boolean {
    const log = this.#log;
    const shared = log.shared;
    // Set exactly while the writer's buffered bytes reach the staging limit.
    if (shared === undefined) return (log.blocked & BLOCK_FULL) === 0;
    return shared.used < shared.memory.ringSize;
  }
  /** True when opened read-only. */
  get readOnly(): boolean {
    return this.#options.readOnly;
  }
  /** True once `close()` was called. */
  get closed(): boolean {
    return this.#closing !== undefined;
  }
  /** The failure that stopped the log (a failed write or sync), or `undefined`. */
  get failure(): WalError | undefined {
    return this.#log.durability.failure;
  }

  /**
   * A snapshot of the log's counters since it was opened: appends, bytes,
   * group-commit flushes with histograms of their batch sizes and sync
   * times, staged bytes and pending waits. Cheap (a few hundred bytes
   * copied); the counters cost no allocation per append. Never throws, also
   * after `close()` or a failure. Events as they happen: the `wal:*`
   * diagnostics channels (`CHANNELS`).
   */
  stats(): WalStats {
    return this.#log.stats.snapshot();
  }

  // ---------------------------------------------------------------- append

  /**
   * Appends `payload` as one record and returns its LSN at once. The record
   * is `buffered`: it is written in the background (with other records, in
   * one positional write); nothing is waited for. Use {@link Wal.waitFor},
   * {@link Wal.sync} or a waiting append to learn it is written or durable.
   *
   * @throws `TypeError` (`ERR_INVALID_ARG_TYPE`) for a non-`Uint8Array`.
   * @throws `WAL_RECORD_TOO_LARGE` above {@link Wal.maxRecordSize}.
   * @throws `WAL_BUSY` while a `truncateAfter` runs or when staging is full
   *   ({@link Wal.writable}); never because of a `truncateBefore`.
   * @throws `WAL_WRITE_FAILED` after a failed write, `WAL_FAILED` after a failed
   *   sync, `WAL_CLOSED` after `close()`, `WAL_READ_ONLY` on a read-only log.
   */
  append(payload: Uint8Array): number;
  /**
   * Appends `payload` (reserving its LSN synchronously, in call order) and
   * resolves with its LSN once the record is `written` or `durable`.
   * Rejects with the errors the synchronous form throws, and with
   * `WAL_WRITE_FAILED` / `WAL_FAILED` when the write or the sync fails.
   * With `options.signal`: rejects with an `AbortError` when it aborts (the
   * record is kept); an already aborted signal appends nothing and rejects
   * with an `AbortError` at once.
   */
  append(payload: Uint8Array, options: AppendOptions): Promise<number>;
  append(payload: Uint8Array, options?: AppendOptions): number | Promise<number> {
    if (options === undefined) {
      // The common case checked here, in the few bytes V8 compiles first;
      // anything else goes through #append, which says what is wrong.
      const log = this.#log;
      if (
        log.blocked === 0 &&
        payload instanceof Uint8Array &&
        payload.length <= log.maxRecordSize
      ) {
        return log.writer.stage(payload);
      }
      return this.#append(payload);
    }
    return appendAndWait(payload, options, this.#appendOne, this.#waitAppendedPaced);
  }

  /**
   * Appends every payload, in order, as consecutive records; returns their
   * LSNs. All or nothing: every payload is checked before any is reserved.
   * With `options.wait`, resolves once the last one is written or durable.
   * Throws (or rejects) as {@link Wal.append} does; an `options.signal`
   * already aborted appends none of them.
   */
  appendBatch(payloads: readonly Uint8Array[]): number[];
  appendBatch(payloads: readonly Uint8Array[], options: AppendOptions): Promise<number[]>;
  appendBatch(
    payloads: readonly Uint8Array[],
    options?: AppendOptions,
  ): number[] | Promise<number[]> {
    let lsns: number[];
    let level: WaitLevel | undefined;
    let signal: AbortSignal | undefined;
    try {
      if (options !== undefined) {
        level = waitLevel(options);
        signal = appendSignal(options);
      }
      if (!Array.isArray(payloads)) throw invalidArgType('payloads', 'an array', payloads);
      for (let i = 0; i < payloads.length; i++) {
        const payload: unknown = payloads[i];
        if (!(payload instanceof Uint8Array)) {
          throw invalidArgType(`payloads[${i}]`, 'an instance of Uint8Array', payload);
        }
        if (payload.length > this.#log.maxRecordSize) {
          // No offset: nothing was written, and the batch reserved nothing.
          throw new RecordTooLargeError(payload.length, this.#log.maxRecordSize);
        }
      }
      if (signal?.aborted === true) throw abortError(signal);
      const log = this.#log;
      if (log.blocked !== 0) {
        const shared = log.shared;
        if (refused(log) !== 0 || shared === undefined) throw log.blockedError();
        lsns = shared.appendBatch(payloads);
      } else {
        lsns = new Array<number>(payloads.length);
        for (let i = 0; i < payloads.length; i++) lsns[i] = log.writer.stage(payloads[i]!);
      }
    } catch (error) {
      if (options === undefined) throw error;
      return Promise.reject(error);
    }
    if (level === undefined) return lsns;
    if (lsns.length === 0) return Promise.resolve(lsns);
    return abortable(
      this.#paced(
        this.#waitAppended(lsns[lsns.length - 1]! + 1, level).then(() => lsns),
        level,
      ),
      signal,
    );
  }

  /**
   * The wait of an append just made, up to `target`: a shared log's once
   * the ring is copied out that far (another thread's append in progress
   * may hold it back).
   */
  #waitAppended(target: number, level: WaitLevel): Promise<void> {
    const log = this.#log;
    const shared = log.shared;
    if (shared === undefined) return log.writer.waitAppended(target, level);
    return shared.whenCollected(target).then(() => log.writer.waitTarget(target, level));
  }

  /**
   * Shares this log with one more worker thread: returns the handle that
   * thread passes to `SharedWal.attach` (send it with `postMessage` or as
   * `workerData`, with `handle.port` in the transfer list). Every thread
   * then appends with an LSN returned synchronously — one compare-and-swap
   * on the shared tail, no lock, no message — and its `written` and
   * `durable` waits are served by this log's one group commit; this thread
   * writes every record. From the first call on, this log's own appends take
   * the same path, and its back-pressure is the shared ring (`stagingLimit`
   * bytes; it takes three times that of shared memory), which also bounds
   * a record (`stagingLimit` less an 8-byte header). A thread that exits in
   * the middle of an append fails the log (`WAL_WRITE_FAILED` at its
   * reservation); one that exits otherwise, or detaches, frees its slot.
   * A `truncateAfter` refuses every thread's appends while it runs, and a
   * thread's waits on the records it cut reject `WAL_TRUNCATED`.
   * docs/DURABILITY.md §9.
   *
   * Throws `WAL_CLOSED`, `WAL_READ_ONLY`, the log's failure, and `WAL_BUSY`
   * while a `truncateAfter` runs or when 63 threads are attached; the first
   * call throws `ERR_OUT_OF_RANGE` (naming `stagingLimit`) when the shared
   * memory cannot be allocated, and the log goes on unshared.
   */
  share(): SharedWalHandle {
    const log = this.#log;
    if ((log.blocked & (BLOCK_CLOSED | BLOCK_READ_ONLY | BLOCK_FAILED | BLOCK_TRUNCATING)) !== 0) {
      throw log.blockedError('share the log');
    }
    if (log.shared === undefined) {
      log.shared = new SharedLog(log);
      log.blocked |= BLOCK_SHARED;
    }
    return log.shared.handle();
  }

  /**
   * Resolves once the record at `lsn` (any LSN this log handed out) is
   * `written` or `durable`. Rejects with `WAL_WRITE_FAILED` when a write at or
   * before it failed (also `close()`'s final write), `WAL_FAILED` after a
   * failed sync (also `close()`'s final one), `ERR_OUT_OF_RANGE` for an LSN
   * not below the tail, and `WAL_TRUNCATED`
   * when a `truncateAfter` called before it (and still running at the call)
   * cut the record, durable or not: it never resolves for a record appended later at the
   * same LSN. Rejects with an `AbortError` once `options.signal` aborts (at
   * once if it is). During and after `close()` it settles as the close did:
   * a close that resolved made every record durable, so the wait resolves.
   * After a failed sync (the group commit latched) a `written` wait for a
   * record past the durable watermark rejects with `WAL_FAILED`, during
   * `close()` too: a reopen drops the record.
   */
  waitFor(lsn: number, level: WaitLevel, options?: WaitOptions): Promise<void> {
    try {
      validateOffset('lsn', lsn);
      validateWait('level', level);
      const tail = this.tail;
      if (lsn >= tail) throw outOfRange('lsn', `< the tail (${tail})`, lsn);
      if (this.#options.readOnly) throw new ReadOnlyError('wait for durability');
    } catch (error) {
      return Promise.reject(error);
    }
    // The cuts made from here on may take the record back (the LSN may then
    // be handed out again, to another record).
    const epoch = this.#log.cuts.length;
    return cancellable(options, () => this.#paced(this.#waitFor(lsn, level, epoch), level));
  }

  /**
   * `wait` as it is, or, on a blocking log, after a turn of the event loop
   * now and then (loop-turns.ts): a loop awaiting a blocking log's waits
   * would otherwise never let timers and I/O callbacks run.
   */
  #paced<T>(wait: Promise<T>, level: WaitLevel): Promise<T> {
    const turns = this.#turns;
    return turns === undefined ? wait : turns.pace(wait, level === 'durable');
  }

  #waitFor(lsn: number, level: WaitLevel, epoch: number, afterTruncation = false): Promise<void> {
    const cut = this.#cutError(lsn, epoch);
    if (cut !== undefined) return Promise.reject(cut);
    // A truncateAfter pending may cut the record, durable or not: its cut is
    // known once it finished.
    const quiet = this.#log.exclusivity.quiet();
    if (quiet !== undefined) return quiet.then(() => this.#waitFor(lsn, level, epoch, true));
    // One that failed instead (the log failed with it) may have cut the
    // record without recording the cut: the wait rejects with the failure.
    const failure = this.#log.durability.failure;
    if (afterTruncation && failure !== undefined) return Promise.reject(failure);
    if (lsn < this.durable) return Promise.resolve();
    const closing = this.#closing;
    if (closing !== undefined) {
      // close() writes and syncs every record appended before it.
      return closing.then(noop, noop).then(() => {
        const cut = this.#cutError(lsn, epoch);
        if (cut !== undefined) throw cut;
        // After a failure, a record at or past where a reopen resumes is
        // not kept: not even `written` holds for it (docs/DURABILITY.md §4).
        const reached = level === 'durable' ? this.durable : this.written;
        if (lsn < reached && lsn < this.#resumeAt()) return;
        // Not reached: the close's final write or sync failed (or an earlier one).
        throw this.#log.durability.failure ?? new ClosedError('log', { offset: lsn });
      });
    }
    const shared = this.#log.shared;
    if (shared !== undefined && lsn + 1 > this.#log.tail) {
      // Not copied out of the shared ring yet.
      return shared.whenCollected(lsn + 1).then(() => this.#waitFor(lsn, level, epoch));
    }
    return this.#log.writer.waitTarget(lsn + 1, level);
  }

  /** Where a reopen would resume (records below it are kept); +∞ without a failure. */
  #resumeAt(): number {
    return this.#log.durability.resumeAt() ?? Number.POSITIVE_INFINITY;
  }

  /**
   * `WAL_TRUNCATED` when a `truncateAfter` made since the log's cut count was
   * `epoch` cut the record at `lsn` (its cut is at or below `lsn`), else `undefined`.
   */
  #cutError(lsn: number, epoch: number): WalError | undefined {
    const cuts = this.#log.cuts;
    for (let i = epoch; i < cuts.length; i++) {
      const end = cuts[i]!;
      if (end <= lsn) {
        return new TruncatedError(
          `the record at ${lsn} was dropped by a truncateAfter cutting the log at ${end}`,
          { offset: lsn },
        );
      }
    }
    return undefined;
  }

  /**
   * Makes every record appended so far durable (one group-commit flush shared
   * with concurrent callers), without waiting out `commitDelayMs`. Rejects with `WAL_WRITE_FAILED` or `WAL_FAILED`
   * after a failure, `WAL_CLOSED` after `close()`, `WAL_READ_ONLY` read-only,
   * and with an `AbortError` once `options.signal` aborts (the sync goes on;
   * an already aborted signal asks for none).
   */
  sync(options?: WaitOptions): Promise<void> {
    return cancellable(options, () => this.#paced(this.#sync(), 'durable'));
  }

  #sync(): Promise<void> {
    const log = this.#log;
    if ((log.blocked & (BLOCK_CLOSED | BLOCK_READ_ONLY | BLOCK_FAILED)) !== 0) {
      return Promise.reject(log.blockedError('sync the log'));
    }
    const quiet = log.exclusivity.quiet();
    if (quiet !== undefined) return quiet.then(() => this.#sync());
    const shared = log.shared;
    if (shared !== undefined) {
      // Every append that returned, in any thread: the framed prefix.
      const framed = shared.memory.framedEnd();
      if (framed > log.tail) return shared.whenCollected(framed).then(() => this.#sync());
    }
    const target = log.tail;
    if (target <= this.durable) return Promise.resolve();
    // Waiting first lets the staged chunk go as a durable write (writer.ts).
    // An explicit sync does not wait out commitDelayMs (docs/DURABILITY.md §2).
    const durable = log.writer.waitTarget(target, 'durable', false);
    log.writer.submit();
    return durable;
  }

  /**
   * Resolves once staging is below its limit ({@link Wal.writable} is true),
   * at once if it is. Rejects after a failure or `close()`, and with an
   * `AbortError` once `options.signal` aborts (at once if it is).
   */
  drained(options?: WaitOptions): Promise<void> {
    return cancellable(options, () => {
      const log = this.#log;
      if ((log.blocked & (BLOCK_CLOSED | BLOCK_FAILED)) !== 0) {
        return Promise.reject(log.blockedError());
      }
      const shared = log.shared;
      if (shared !== undefined) return shared.whenRoom();
      return log.writer.drained();
    });
  }

  #append(payload: Uint8Array): number {
    if (!(payload instanceof Uint8Array)) {
      throw invalidArgType('payload', 'an instance of Uint8Array', payload);
    }
    const log = this.#log;
    const shared = log.shared;
    if (shared === undefined) {
      if (log.blocked !== 0) throw log.blockedError();
      if (payload.length > log.maxRecordSize) {
        // No offset: the record was refused before it had one.
        throw new RecordTooLargeError(payload.length, log.maxRecordSize);
      }
      return log.writer.stage(payload);
    }
    if (refused(log) !== 0) throw log.blockedError();
    if (payload.length > shared.maxRecordSize) {
      throw new RecordTooLargeError(payload.length, shared.maxRecordSize);
    }
    return shared.append(payload);
  }

  // ---------------------------------------------------------------- truncation

  /**
   * Keeps the record at `lsn` and every record before it, drops every record
   * after it, durably, before resolving; the next append gets the LSN just
   * after the kept record. Exclusive: appends made before the call are
   * written and synced first, without waiting out `commitDelayMs` (then
   * dropped, if after `lsn`); appends during it
   * throw `WAL_BUSY`; reads, `sync` and `waitFor` wait for it; open iterators
   * end at the cut. (It takes back LSNs already handed out: nothing may be
   * written at them before the cut is durable; docs/FORMAT.md §7.) Waits for
   * truncations called before it. A `close()` called after it waits for it
   * (unless it is still queued behind another truncation then).
   *
   * Rejects with `WAL_NOT_BOUNDARY` when `lsn` is not a record boundary,
   * `WAL_TRUNCATED` below the head, `ERR_OUT_OF_RANGE` at or past the tail,
   * `WAL_FAILED`/`WAL_WRITE_FAILED` after a failure (a failure during the
   * truncation stops the log), `WAL_CLOSED`, `WAL_READ_ONLY`.
   */
  truncateAfter(lsn: number): Promise<void> {
    try {
      validateOffset('lsn', lsn);
    } catch (error) {
      return Promise.reject(error);
    }
    return truncateAfter(this.#log, lsn);
  }

  /**
   * Drops every record before `lsn` (after a checkpoint): the head becomes
   * `lsn`, durably, before resolving; whole segments below it are deleted.
   * `lsn` may be the tail at the call (drops everything appended so far).
   *
   * Not exclusive: appends go on during it, get their LSNs at once and are
   * staged as usual; their writes, syncs and reads wait only while the store
   * records the head and deletes segments. It first waits until every record
   * below `lsn` is durable, without waiting out `commitDelayMs` (records from
   * `lsn` on are not waited for: use `sync()` or a durable wait for them). Truncations run one at a time, in
   * call order. Reads and iterators below the new head reject with
   * `WAL_TRUNCATED` once it moved. A `close()` called after it waits for
   * it (unless it is still queued behind another truncation then).
   * Algorithm: docs/FORMAT.md §7.2.
   *
   * Rejects with `WAL_NOT_BOUNDARY`, `WAL_TRUNCATED` (below the head),
   * `ERR_OUT_OF_RANGE` (past the tail at the call, even if appends then reach
   * past `lsn`; or past the tail a `truncateAfter` called before it cut
   * to), `WAL_CLOSED` (called after
   * `close()`, or still queued behind another truncation when `close()` was
   * called), `WAL_READ_ONLY`, and the failure errors: `WAL_WRITE_FAILED` or
   * `WAL_FAILED` when the log failed before the head moved (nothing changed),
   * `WAL_FAILED` when recording the head failed (the log stops; a reopen
   * finds the old head or the new one).
   */
  truncateBefore(lsn: number): Promise<void> {
    try {
      validateOffset('lsn', lsn);
    } catch (error) {
      return Promise.reject(error);
    }
    return truncateBefore(this.#log, lsn);
  }

  // ---------------------------------------------------------------- read

  /**
   * Reads the record at `lsn`. A record appended but not yet written is
   * waited for. Rejects with `WAL_NOT_BOUNDARY` when `lsn` is not a record
   * boundary, `WAL_TRUNCATED` below the head, `ERR_OUT_OF_RANGE` at or past
   * the tail, `WAL_CORRUPTION` when the stored record fails its checksum (or
   * was stepped over by the skip policy), `WAL_CLOSED`. A `truncateAfter`
   * called while it runs waits for it: it reads the log as it was before
   * the cut. (A read called while a `truncateAfter` runs waits for that one,
   * and for any called meanwhile, and reads the log after them.)
   */
  async read(lsn: number): Promise<Uint8Array> {
    validateOffset('lsn', lsn);
    const log = this.#log;
    if ((log.blocked & BLOCK_CLOSED) !== 0) throw new ClosedError('log');
    const quiet = log.exclusivity.quiet();
    if (quiet !== undefined) await quiet;
    const shared = log.shared;
    // Another thread's record, not copied out of the shared ring yet.
    if (shared !== undefined && lsn >= log.tail && lsn < shared.tail) {
      await shared.whenCollected(lsn + 1);
    }
    // In flight from here to its end, not only during its store reads: a
    // truncateAfter called meanwhile cuts only once it is done (between two
    // of its store reads, it would read the cut range).
    log.exclusivity.begin();
    try {
      return await log.locator.read(lsn);
    } finally {
      log.exclusivity.end();
    }
  }

  /**
   * Iterates the records from `fromLsn` (default: the head) up to the
   * written watermark at the time of the call, one record per step. The
   * first step rejects with `WAL_NOT_BOUNDARY` when `fromLsn` is not a record
   * boundary; any step rejects with `WAL_TRUNCATED` once a `truncateBefore`
   * passed its position and `WAL_CORRUPTION` for a record failing its
   * checksum. A `truncateAfter` below its end ends it at the cut (one at or
   * below `fromLsn`, made before the first step, ends it with no record and
   * no error, also when `fromLsn` was appended but not yet written).
   */
  iterate(fromLsn?: number): AsyncIterableIterator<StoredRecord> {
    return new RecordIterator(openReader(this.#log, this.#access, fromLsn, READ_WINDOW));
  }

  /**
   * The batched form of {@link Wal.iterate}, for fast replay: yields arrays
   * of consecutive records, each array read with one store read of about
   * `batchBytes` (default 1 MiB; a larger record comes alone). Same bounds
   * and errors as `iterate`.
   */
  iterateBatches(
    fromLsn?: number,
    options?: { batchBytes?: number },
  ): AsyncIterableIterator<StoredRecord[]> {
    const batchBytes = batchBytesOf(options);
    return new BatchIterator(openReader(this.#log, this.#access, fromLsn, batchBytes));
  }

  /**
   * Read-only logs: re-reads the store (records another process appended,
   * a truncation it made) and extends the readable end through the intact
   * records found; resolves with the new end. Stops quietly at a partial
   * record (the writer may be writing it). Writable logs: resolves with the
   * written watermark.
   */
  async refresh(): Promise<number> {
    const log = this.#log;
    if ((log.blocked & BLOCK_CLOSED) !== 0) throw new ClosedError('log');
    if (!log.readOnly) return log.written;
    return rescan(log);
  }

  // ---------------------------------------------------------------- close and reopen

  /**
   * Closes the log. Appends after the call throw `WAL_CLOSED`. Records
   * appended before it are written and synced (their waiters resolve), the
   * durable hint is recorded, then the store is closed and its lock released.
   * Its syncs do not wait out `commitDelayMs`. Resolves when all that is done; rejects if that final write or sync
   * fails (the lock is released anyway). After an earlier failure it writes
   * nothing new, waits for writes in flight, syncs what was written before a
   * failed write (unless a sync failed), waits for the record of where the
   * log resumes (after a failed sync: `wal.cutTo`, docs/FORMAT.md §8.3),
   * releases everything and resolves, or rejects when that record failed.
   * Idempotent: later calls return the same promise.
   */
  close(): Promise<void> {
    if (this.#closing !== undefined) return this.#closing;
    this.#log.blocked |= BLOCK_CLOSED;
    this.#log.shared?.closeCalled();
    const store = this.#log.store;
    // The store is held until its close settled: a log opened on it then
    // finds it closed (WAL_CLOSED), as any closed store.
    this.#closing = closeLog(this.#log).finally(() => releaseStore(store));
    return this.#closing;
  }

  /**
   * Continues after a failure, in this process: closes this log (releasing
   * its lock), opens `source` afresh (default: what this log was opened from;
   * a store instance cannot be reused, so pass a new one or a function), runs
   * recovery, and truncates at the failed write's offset, or after a failed
   * sync at the last durable offset, making that durable before accepting
   * appends. Records past that point were never acknowledged at the level
   * that failed; they are dropped even if the page cache still holds them.
   * Without a failure it is a close followed by an open.
   */
  async reopen(source?: WalSource): Promise<Wal> {
    const from = source ?? this.#source;
    if (source === undefined && isStore(this.#source)) {
      throw invalidArgValue(
        'source',
        source,
        'is required: this log was opened from a store instance, which close() closes; pass a new store or a function making one',
      );
    }
    await this.close().catch(noop);
    const resumeAt = this.#log.durability.resumeAt();
    return Wal.#open(from, { ...this.#options, replay: undefined }, resumeAt);
  }
}

/**
 * The file the next append goes to, created and open now (`Store.readyEnd`,
 * docs/FORMAT.md §3.2): a burst of appends right after open then has its
 * chunks written while it goes on, not all at its first turn of the event
 * loop. Only a speed-up: a failure that leaves the store usable (the file
 * could not be created: a full disk, too many open files) is left to the
 * first write, which creates the file as before; a latched one
 * (`WAL_FAILED`: a directory fsync failed) fails the open.
 */
async function readyEnd(store: Store): Promise<void> {
  try {
    await store.readyEnd?.();
  } catch (error) {
    if (errorCode(error) === 'WAL_FAILED') throw error;
  }
}

/**
 * The blocked bits that refuse an append of a shared log: all but
 * `BLOCK_SHARED`, and `BLOCK_FULL` (its ring is the back-pressure; a full
 * staging only holds the ring's copy out).
 */
function refused(log: LogState): number {
  return log.blocked & ~(BLOCK_SHARED | BLOCK_FULL);
}
