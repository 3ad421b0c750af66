/**
 * The log: append with a synchronous reservation and coalesced positional
 * writes, group commit, recovery, read, iterate, truncation at both ends,
 * fail-stop. Normative behaviour: docs/FORMAT.md §5–§8 and docs/DURABILITY.md.
 */
import { GroupCommit } from '@wal/commit';
import {
  BoundaryError,
  BusyError,
  ClosedError,
  CorruptionError,
  errorCode,
  FailedError,
  invalidArgType,
  invalidArgValue,
  outOfRange,
  ReadOnlyError,
  RecordTooLargeError,
  rejectUnknownKeys,
  TruncatedError,
  validateOffset,
  type WalError,
  WriteFailedError,
} from '@wal/errors';
import type { Store } from '@wal/store';
import type { BoundaryIndex } from './boundary-index.js';
import { frameIsValid, frameLength, HEADER_SIZE, lengthFits, writeFrame } from './frame.js';
import { StoreGate } from './gate.js';
import { DURABLE_HINT_KEY, META_TRUNCATIONS, metaInteger } from './meta.js';
import {
  DEFAULT_PREALLOCATE,
  type ResolvedOptions,
  resolveOptions,
  type WalOptions,
} from './options.js';
import { BatchIterator, Reader, type ReaderAccess, RecordIterator } from './reader.js';
import type { StoredRecord } from './record.js';
import { isStore, openStore, type RecoveryReport, recover, type WalSource } from './recovery.js';
import { scan } from './scan.js';

export type { RecoveryReport, WalSource } from './recovery.js';

/** What an append waits for: `written` (a process crash keeps it) or `durable` (a power loss keeps it). */
export type WaitLevel = 'written' | 'durable';

/** Options of a waiting append. */
export interface AppendOptions {
  readonly wait: WaitLevel;
}

/** Durable-hint spacing when the store has no segment size. */
const DEFAULT_HINT_INTERVAL = 64 * 1024 * 1024;
/** Staging chunk size: one positional write carries at most this, unless one record is larger. */
const MAX_CHUNK = 1024 * 1024;
/** Read window of iterators and LSN validation. */
const READ_WINDOW = 1024 * 1024;

const BLOCK_CLOSED = 1;
const BLOCK_READ_ONLY = 2;
const BLOCK_FAILED = 4;
const BLOCK_TRUNCATING = 8;
const BLOCK_FULL = 16;

const noop = (): void => {};

/** Shared zeros for preallocation (never written to). */
let zeroBytes = new Uint8Array(0);
function zeros(length: number): Uint8Array {
  if (zeroBytes.length < length) zeroBytes = new Uint8Array(length);
  return zeroBytes.subarray(0, length);
}

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
 * `WAL_TRUNCATED`, `WAL_CORRUPTION`) or Node-style argument errors.
 *
 * Single-threaded: use it from the event loop that opened it.
 */
export class Wal {
  readonly #store: Store;
  readonly #source: WalSource;
  readonly #options: ResolvedOptions;
  readonly #gc: GroupCommit | undefined;
  readonly #index: BoundaryIndex;
  readonly #maxRecordSize: number;
  readonly #stagingLimit: number;
  readonly #chunkSize: number;
  readonly #hintInterval: number;
  /** Segment size of the store (preallocation stays within a segment), or 0. */
  readonly #segmentSize: number;
  /** Offsets and claimed lengths of damaged records stepped over by the skip policy. */
  readonly #skipped: Map<number, number>;
  readonly #recovery: RecoveryReport;

  #head: number;
  #tail: number;
  /** Read-only: end of the intact log as last scanned. */
  #scannedEnd: number;

  // Staging: the chunk being filled, and free chunks for reuse (docs/INTERNALS.md §3).
  #chunk: Uint8Array | undefined;
  #chunkStart = 0;
  #chunkUsed = 0;
  readonly #pool: Uint8Array[] = [];
  /** Bytes staged or being written. */
  #buffered = 0;
  #flushScheduled = false;
  readonly #flushStage = (): void => {
    this.#flushScheduled = false;
    if ((this.#blocked & (BLOCK_FAILED | BLOCK_READ_ONLY)) === 0) this.#submit();
  };

  /** Why appends are refused: a bit set of BLOCK_*; 0 on the fast path (docs/INTERNALS.md §2). */
  #blocked = 0;
  #failure: WalError | undefined;
  /** Where a reopen resumes after the failure. */
  #resumeAt: number | undefined;
  /**
   * Whether a reopen also resumes at most at the durable watermark as it
   * stands once this log is closed (after a failed sync, hint or truncation:
   * records acknowledged durable after the failure are kept, others dropped).
   */
  #resumeAtDurable = false;

  #writesInFlight = 0;

  // Preallocation (WalOptions.preallocate): zeros written ahead of the end.
  /** Bytes to keep allocated ahead of the end; 0 when off (or after a failed preallocation). */
  #preallocate: number;
  /** End of the space the files have: data, or zeros written ahead. */
  #allocated: number;
  /** A sync was asked for since the last preallocation (buffered logs gain nothing from it). */
  #syncAsked = false;
  /** Start of the zeros being written, while they are; writes reaching past it wait. */
  #padding: number | undefined;
  /** A zero write failed: it may have extended the files past what the store counts. */
  #padFailed = false;
  /**
   * Writes waiting for the zeros in flight to land (so zeros never land over
   * data), or for the store gate to open (docs/INTERNALS.md §4, §8).
   */
  #held: Array<{ start: number; bytes: Uint8Array; recycle: Uint8Array | undefined }> = [];
  #readsInFlight = 0;
  /** Resolvers waiting for reads, writes and the hint write to settle (docs/INTERNALS.md §5). */
  #settleWaiters: Array<() => void> = [];
  #drainWaiters: Array<{ resolve: () => void; reject: (error: unknown) => void }> = [];

  /** The durable hint as persisted. */
  #hint: number;
  #hintWrite: Promise<void> | undefined;
  #hintWanted: number | undefined;

  /** Settles once every `truncateAfter` requested so far finished (reads and waits wait for it). */
  #exclusive: Promise<void> | undefined;
  /** `truncateAfter`s requested and not finished. */
  #exclusiveCount = 0;
  /** Settles once every truncation requested so far finished: they run one at a time. */
  #truncations: Promise<void> | undefined;

  /**
   * The store gate: while the store runs its own truncateBefore, every store
   * call of the log waits. Appends are still accepted and staged
   * (docs/INTERNALS.md §8).
   */
  readonly #gate = new StoreGate();
  #closing: Promise<void> | undefined;
  /** Cut offsets of every `truncateAfter`, in order: open readers clamp to them. */
  readonly #cuts: number[] = [];
  /** `truncateAfter`s made on this log (persisted as `wal.truncations`). */
  #cutCount: number;
  /** A boundary proven by the last read: sequential reads skip the index walk. */
  #knownBoundary = -1;
  /** What iterators may see of the log. */
  readonly #access: ReaderAccess = {
    quiet: () => this.#quiet(),
    validateStart: (lsn, end, tail) => this.#validateStart(lsn, end, tail),
    clampEnd: (end, epoch) => this.#clampEnd(end, epoch),
    head: () => this.#head,
    maxRecordSize: () => this.#maxRecordSize,
    skipped: (lsn) => this.#skipped.has(lsn),
    readStore: (offset, length) => this.#readStore(offset, length),
    damaged: (lsn) => this.#damaged(lsn),
  };

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
  }) {
    this.#store = init.store;
    this.#source = init.source;
    this.#options = init.options;
    this.#index = init.index;
    this.#maxRecordSize = init.maxRecordSize;
    this.#stagingLimit = init.options.stagingLimit;
    this.#chunkSize = Math.min(MAX_CHUNK, Math.floor(init.options.stagingLimit / 4));
    const segmentSize = (init.store as { segmentSize?: unknown }).segmentSize;
    this.#segmentSize = typeof segmentSize === 'number' && segmentSize > 0 ? segmentSize : 0;
    this.#hintInterval = this.#segmentSize || DEFAULT_HINT_INTERVAL;
    this.#preallocate =
      init.options.preallocate ?? (typeof init.source === 'string' ? DEFAULT_PREALLOCATE : 0);
    this.#allocated = init.end;
    this.#skipped = init.skipped;
    this.#recovery = init.recovery;
    this.#head = init.store.head;
    this.#tail = init.end;
    this.#scannedEnd = init.end;
    this.#hint = init.hint;
    this.#cutCount = init.truncations;
    if (init.options.readOnly) {
      this.#blocked = BLOCK_READ_ONLY;
      this.#gc = undefined;
    } else {
      this.#gc = new GroupCommit({
        start: init.end,
        delayMs: init.options.commitDelayMs,
        sync: () => this.#syncStore(),
      });
    }
  }

  /**
   * Opens (creating if needed) the log at `source` and recovers it
   * (docs/FORMAT.md §8): scans from the head, cuts a torn tail, makes the
   * recovered files and directory durable, then accepts appends. A store
   * passed in (or made by a function) belongs to the log from then on: it is
   * closed by `close()`, and when `open` rejects.
   *
   * Read-only (`options.readOnly`): takes no lock, changes nothing, and
   * `recovery` reports what a writable open would do.
   *
   * Rejects with `TypeError`/`RangeError` for invalid options (a
   * `maxRecordSize` below the persisted one is `ERR_OUT_OF_RANGE`),
   * `WAL_NOT_A_LOG` when the path holds something that is not a log (a
   * user's file or directory: docs/FORMAT.md §3.1; nothing is changed),
   * `WAL_LOCKED` when another handle holds the log, `WAL_CORRUPTION` for
   * damage below the durable hint (strict policy) or a log shorter than its
   * durable hint, `WAL_RECORD_TOO_LARGE` for an intact record above the
   * maximum (nothing is cut), `WAL_IO`/`WAL_FAILED` for I/O failures.
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
    try {
      return new Wal({ store, source, options, ...(await recover(store, options, resumeAt)) });
    } catch (error) {
      await store.close().catch(noop);
      throw error;
    }
  }

  // ---------------------------------------------------------------- state

  /** The store under the log. Do not write to it. */
  get store(): Store {
    return this.#store;
  }
  /** What recovery found and did at open. */
  get recovery(): RecoveryReport {
    return this.#recovery;
  }
  /** First live offset (LSN of the first record, if any). */
  get head(): number {
    return this.#head;
  }
  /** The next LSN to be handed out: one past the last appended record. */
  get tail(): number {
    return this.#tail;
  }
  /**
   * The written watermark: every record ending at or below it is written.
   * Read-only logs: the end of the intact records scanned (by open or `refresh()`).
   */
  get written(): number {
    return this.#gc?.written ?? this.#scannedEnd;
  }
  /**
   * The durable watermark: every record ending at or below it survives a
   * power loss. Read-only logs cannot know it (another process may be
   * writing): they report the scanned end, as `written` does.
   */
  get durable(): number {
    return this.#gc?.durable ?? this.#scannedEnd;
  }
  /** The largest payload accepted, in bytes. */
  get maxRecordSize(): number {
    return this.#maxRecordSize;
  }
  /** Bytes of appended records held in memory (staged or being written). */
  get bufferedBytes(): number {
    return this.#buffered;
  }
  /**
   * False when the staging memory is full: the next append would throw
   * `WAL_BUSY`. Wait for {@link Wal.drained} before appending more.
   */
  get writable(): boolean {
    return this.#buffered < this.#stagingLimit;
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
    return this.#failure;
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
   */
  append(payload: Uint8Array, options: AppendOptions): Promise<number>;
  append(payload: Uint8Array, options?: AppendOptions): number | Promise<number> {
    if (options === undefined) return this.#append(payload);
    let lsn: number;
    let level: WaitLevel;
    try {
      level = waitLevel(options);
      lsn = this.#append(payload);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#waitLsn(lsn, level).then(() => lsn);
  }

  /**
   * Appends every payload, in order, as consecutive records; returns their
   * LSNs. All or nothing: every payload is checked before any is reserved.
   * With `options.wait`, resolves once the last one is written or durable.
   * Throws (or rejects) as {@link Wal.append} does.
   */
  appendBatch(payloads: readonly Uint8Array[]): number[];
  appendBatch(payloads: readonly Uint8Array[], options: AppendOptions): Promise<number[]>;
  appendBatch(
    payloads: readonly Uint8Array[],
    options?: AppendOptions,
  ): number[] | Promise<number[]> {
    let lsns: number[];
    let level: WaitLevel | undefined;
    try {
      if (options !== undefined) level = waitLevel(options);
      if (!Array.isArray(payloads)) throw invalidArgType('payloads', 'an array', payloads);
      for (let i = 0; i < payloads.length; i++) {
        const payload: unknown = payloads[i];
        if (!(payload instanceof Uint8Array)) {
          throw invalidArgType(`payloads[${i}]`, 'an instance of Uint8Array', payload);
        }
        if (payload.length > this.#maxRecordSize) {
          // No offset: nothing was written, and the batch reserved nothing.
          throw new RecordTooLargeError(payload.length, this.#maxRecordSize);
        }
      }
      if (this.#blocked !== 0) throw this.#blockedError();
      lsns = new Array<number>(payloads.length);
      for (let i = 0; i < payloads.length; i++) lsns[i] = this.#stage(payloads[i]!);
    } catch (error) {
      if (options === undefined) throw error;
      return Promise.reject(error);
    }
    if (level === undefined) return lsns;
    if (lsns.length === 0) return Promise.resolve(lsns);
    return this.#waitLsn(lsns[lsns.length - 1]!, level).then(() => lsns);
  }

  /**
   * Resolves once the record at `lsn` (any LSN this log handed out) is
   * `written` or `durable`. Rejects with `WAL_WRITE_FAILED` when a write at or
   * before it failed, `WAL_FAILED` after a failed sync, `WAL_CLOSED` after
   * `close()` finished, and `ERR_OUT_OF_RANGE` for an LSN not below the tail.
   */
  waitFor(lsn: number, level: WaitLevel): Promise<void> {
    try {
      validateOffset('lsn', lsn);
      validateWait('level', level);
      if (lsn >= this.#tail) throw outOfRange('lsn', `< the tail (${this.#tail})`, lsn);
      if (this.#options.readOnly) throw new ReadOnlyError('wait for durability');
    } catch (error) {
      return Promise.reject(error);
    }
    if (lsn < this.durable) return Promise.resolve();
    const closing = this.#closing;
    if (closing !== undefined) {
      // close() writes and syncs every record appended before it.
      return closing.then(noop, noop).then(() => {
        if (lsn < (level === 'durable' ? this.durable : this.written)) return;
        throw new ClosedError('log', { offset: lsn });
      });
    }
    if (this.#exclusive !== undefined) {
      return this.#exclusive.then(() => this.waitFor(lsn, level));
    }
    return this.#waitLsn(lsn, level);
  }

  /**
   * Makes every record appended so far durable (one group-commit flush shared
   * with concurrent callers). Rejects with `WAL_WRITE_FAILED` or `WAL_FAILED`
   * after a failure, `WAL_CLOSED` after `close()`, `WAL_READ_ONLY` read-only.
   */
  sync(): Promise<void> {
    if ((this.#blocked & (BLOCK_CLOSED | BLOCK_READ_ONLY | BLOCK_FAILED)) !== 0) {
      return Promise.reject(this.#blockedError('sync the log'));
    }
    if (this.#exclusive !== undefined) return this.#exclusive.then(() => this.sync());
    const target = this.#tail;
    if (target <= this.durable) return Promise.resolve();
    this.#submit();
    return this.#waitTarget(target, 'durable');
  }

  /**
   * Resolves once staging is below its limit ({@link Wal.writable} is true),
   * at once if it is. Rejects after a failure or `close()`.
   */
  drained(): Promise<void> {
    if ((this.#blocked & (BLOCK_CLOSED | BLOCK_FAILED)) !== 0) {
      return Promise.reject(this.#blockedError());
    }
    if (this.#buffered < this.#stagingLimit) return Promise.resolve();
    return new Promise((resolve, reject) => this.#drainWaiters.push({ resolve, reject }));
  }

  #append(payload: Uint8Array): number {
    if (!(payload instanceof Uint8Array)) {
      throw invalidArgType('payload', 'an instance of Uint8Array', payload);
    }
    if (this.#blocked !== 0) throw this.#blockedError();
    if (payload.length > this.#maxRecordSize) {
      // No offset: the record was refused before it had one.
      throw new RecordTooLargeError(payload.length, this.#maxRecordSize);
    }
    return this.#stage(payload);
  }

  /** Frames `payload` into staging; the caller checked everything. */
  #stage(payload: Uint8Array): number {
    const frame = HEADER_SIZE + payload.length;
    const lsn = this.#tail;
    if (frame > this.#chunkSize) {
      this.#submit();
      const bytes = new Uint8Array(frame);
      writeFrame(bytes, 0, payload);
      this.#tail = lsn + frame;
      this.#addBuffered(frame);
      this.#write(lsn, bytes, undefined);
    } else {
      let chunk = this.#chunk;
      if (chunk === undefined || this.#chunkUsed + frame > chunk.length) {
        this.#submit();
        chunk = this.#pool.pop() ?? new Uint8Array(this.#chunkSize);
        this.#chunk = chunk;
        this.#chunkStart = lsn;
        this.#chunkUsed = 0;
      }
      writeFrame(chunk, this.#chunkUsed, payload);
      this.#chunkUsed += frame;
      this.#tail = lsn + frame;
      this.#addBuffered(frame);
      if (!this.#flushScheduled) {
        // A microtask: every append made in this turn of the event loop (and
        // by committers released together, which resume in one wave of
        // microtasks) shares the write, without waiting for a macrotask.
        this.#flushScheduled = true;
        queueMicrotask(this.#flushStage);
      }
    }
    this.#index.note(lsn);
    return lsn;
  }

  #addBuffered(bytes: number): void {
    this.#buffered += bytes;
    if (this.#buffered >= this.#stagingLimit) this.#blocked |= BLOCK_FULL;
  }

  #releaseBuffered(bytes: number): void {
    this.#buffered -= bytes;
    if (this.#buffered < this.#stagingLimit && (this.#blocked & BLOCK_FULL) !== 0) {
      this.#blocked &= ~BLOCK_FULL;
      const waiters = this.#drainWaiters;
      this.#drainWaiters = [];
      for (const waiter of waiters) waiter.resolve();
    }
  }

  /** Sends the staged chunk to the store as one positional write. */
  #submit(): void {
    const chunk = this.#chunk;
    if (chunk === undefined || this.#chunkUsed === 0) return;
    const start = this.#chunkStart;
    const bytes = chunk.subarray(0, this.#chunkUsed);
    this.#chunk = undefined;
    this.#chunkUsed = 0;
    this.#write(start, bytes, chunk);
  }

  #write(start: number, bytes: Uint8Array, recycle: Uint8Array | undefined): void {
    const end = start + bytes.length;
    const gc = this.#gc!;
    if (end > gc.reserved) gc.reserve(end);
    this.#writesInFlight++;
    this.#issue(start, bytes, recycle);
  }

  /**
   * Sends a counted write to the store, or holds it while zeros are written
   * where it goes, or while the store gate is closed.
   */
  #issue(start: number, bytes: Uint8Array, recycle: Uint8Array | undefined): void {
    const end = start + bytes.length;
    if (this.#gate.closed !== undefined || (this.#padding !== undefined && end > this.#padding)) {
      // Two writes in flight to the same range land in any order: wait.
      this.#held.push({ start, bytes, recycle });
      return;
    }
    if (end > this.#allocated) this.#allocated = end;
    this.#gate.enter();
    this.#store.write(start, bytes).then(
      () => this.#writeDone(start, end, recycle, undefined, true),
      (cause: unknown) => this.#writeDone(start, end, recycle, cause, false),
    );
  }

  /**
   * After a write ending at `written` landed: once syncs are asked for and
   * less than half of `preallocate` is left ahead, writes zeros after the
   * allocated end (up to `preallocate` bytes, within the segment holding it),
   * so that the syncs of the records that will go there have no file size to
   * commit. Never over data: nothing is written at or past the allocated end
   * until these zeros land. Never into a file that may not exist yet (its
   * creation takes a directory sync, which belongs to records): only into the
   * segment the landed write ended in. A write failure turns preallocation
   * off; a failure the store latched stops the log.
   */
  #padAhead(written: number): void {
    if (
      !this.#syncAsked ||
      this.#padding !== undefined ||
      this.#gate.closed !== undefined ||
      (this.#blocked & BLOCK_FAILED) !== 0 ||
      this.#allocated - written >= this.#preallocate / 2
    ) {
      return;
    }
    const start = this.#allocated;
    let end = start + this.#preallocate;
    const segment = this.#segmentSize;
    if (segment > 0) {
      const index = Math.floor((start - 1) / segment);
      if (start % segment === 0 || index !== Math.floor((written - 1) / segment)) return;
      end = Math.min(end, (index + 1) * segment);
    }
    this.#syncAsked = false;
    this.#padding = start;
    this.#writesInFlight++;
    this.#gate.enter();
    const done = (ok: boolean, cause?: unknown): void => {
      this.#gate.leave();
      this.#writesInFlight--;
      this.#padding = undefined;
      if (ok) {
        this.#allocated = Math.max(this.#allocated, end);
      } else {
        this.#preallocate = 0;
        this.#padFailed = true;
        if (errorCode(cause) === 'WAL_FAILED') {
          this.#fail(
            new FailedError('the store failed while the log preallocated space', {
              cause,
              offset: this.#gc!.durable,
            }),
            'durable',
          );
        }
      }
      const held = this.#held;
      this.#held = [];
      for (const write of held) this.#issue(write.start, write.bytes, write.recycle);
      this.#settled();
    };
    this.#store.write(start, zeros(end - start)).then(
      () => done(true),
      (cause: unknown) => done(false, cause),
    );
  }

  #writeDone(
    start: number,
    end: number,
    recycle: Uint8Array | undefined,
    cause: unknown,
    ok: boolean,
  ): void {
    this.#gate.leave();
    this.#writesInFlight--;
    const gc = this.#gc!;
    if (ok) {
      if (recycle !== undefined && this.#pool.length * this.#chunkSize < this.#stagingLimit) {
        this.#pool.push(recycle);
      }
      if (gc.failure === undefined) gc.markWritten(start, end);
      if (this.#preallocate > 0) this.#padAhead(end);
    } else {
      gc.markFailed(start, end, cause);
      this.#fail(new WriteFailedError(start, { cause }), gc.poisonedAt ?? start);
    }
    this.#releaseBuffered(end - start);
    this.#settled();
  }

  /**
   * Stops the log: appends throw `error`, staged records are dropped (their
   * waiters reject), and a reopen resumes at `resumeAt` ('durable': at the
   * durable watermark when the log is closed). docs/INTERNALS.md §6.
   */
  #fail(error: WalError, resumeAt: number | 'durable'): void {
    if (this.#failure === undefined) this.#failure = error;
    if (resumeAt === 'durable') this.#resumeAtDurable = true;
    else this.#resumeAt = Math.min(this.#resumeAt ?? Number.POSITIVE_INFINITY, resumeAt);
    this.#blocked |= BLOCK_FAILED;
    const gc = this.#gc;
    if (this.#chunk !== undefined && this.#chunkUsed > 0 && gc !== undefined) {
      const start = this.#chunkStart;
      const reservedEnd = Math.min(gc.reserved, start + this.#chunkUsed);
      if (reservedEnd > start) gc.markFailed(start, reservedEnd, error);
      this.#releaseBuffered(this.#chunkUsed);
      this.#chunkUsed = 0;
    }
    const waiters = this.#drainWaiters;
    this.#drainWaiters = [];
    for (const waiter of waiters) waiter.reject(error);
  }

  /**
   * The sync the group commit calls: the store's, then the durable hint.
   * Waits while the store gate is closed: the writes it covers are those
   * that resolved before the store's sync is called, as the group commit
   * requires.
   */
  #syncStore(): Promise<void> {
    const closed = this.#gate.closed;
    if (closed !== undefined) return closed.then(() => this.#syncStore());
    const target = this.#gc!.written;
    if (this.#preallocate > 0) this.#syncAsked = true;
    this.#gate.enter();
    return this.#store.sync().then(
      () => {
        this.#gate.leave();
        if (Math.floor(target / this.#hintInterval) > Math.floor(this.#hint / this.#hintInterval)) {
          this.#writeHint(target);
        }
      },
      (cause: unknown) => {
        this.#gate.leave();
        this.#fail(
          new FailedError(
            'a sync of the log failed; nothing after the last durable offset can be trusted',
            {
              cause,
              offset: this.#gc!.durable,
            },
          ),
          'durable',
        );
        throw cause;
      },
    );
  }

  /** Persists the durable hint (in the background; one update at a time). */
  #writeHint(value: number): void {
    if (this.#hintWrite !== undefined) {
      this.#hintWanted = Math.max(this.#hintWanted ?? 0, value);
      return;
    }
    this.#hintWrite = this.#gate
      .call(() => this.#store.updateMeta({ [DURABLE_HINT_KEY]: value }))
      .then(
        () => {
          this.#hint = Math.max(this.#hint, value);
          this.#hintWrite = undefined;
          const wanted = this.#hintWanted;
          this.#hintWanted = undefined;
          if (wanted !== undefined && wanted > this.#hint) this.#writeHint(wanted);
          this.#settled();
        },
        (cause: unknown) => {
          this.#hintWrite = undefined;
          this.#hintWanted = undefined;
          this.#fail(
            new FailedError('writing the durable hint to the metadata failed', {
              cause,
              offset: this.#gc?.durable ?? 0,
            }),
            'durable',
          );
          this.#settled();
        },
      );
  }

  #waitLsn(lsn: number, level: WaitLevel): Promise<void> {
    return this.#waitTarget(lsn + 1, level);
  }

  #waitTarget(target: number, level: WaitLevel): Promise<void> {
    const gc = this.#gc!;
    if (target > gc.reserved) {
      try {
        gc.reserve(this.#tail);
      } catch (error) {
        return Promise.reject(error);
      }
    }
    return level === 'durable' ? gc.syncTo(target) : gc.waitWritten(target);
  }

  #blockedError(what = 'append to the log'): Error {
    const blocked = this.#blocked;
    if ((blocked & BLOCK_CLOSED) !== 0) return new ClosedError('log');
    if ((blocked & BLOCK_READ_ONLY) !== 0) return new ReadOnlyError(what);
    if ((blocked & BLOCK_FAILED) !== 0) return this.#failure!;
    if ((blocked & BLOCK_TRUNCATING) !== 0) {
      return new BusyError('a truncateAfter of the log is running; append after it resolves', {
        offset: this.#tail,
      });
    }
    return new BusyError(
      `the log's staging memory is full (${this.#buffered} of ${this.#stagingLimit} bytes): await wal.drained() before appending more`,
      { offset: this.#tail },
    );
  }

  // ---------------------------------------------------------------- settle

  /** Calls waiters when no read, write or hint update is in flight. */
  #settled(): void {
    if (!this.#isSettled()) return;
    const waiters = this.#settleWaiters;
    this.#settleWaiters = [];
    for (const resolve of waiters) resolve();
  }

  #isSettled(): boolean {
    return this.#writesInFlight === 0 && this.#readsInFlight === 0 && this.#hintWrite === undefined;
  }

  #whenSettled(): Promise<void> {
    if (this.#isSettled()) return Promise.resolve();
    return new Promise((resolve) => this.#settleWaiters.push(resolve));
  }

  /**
   * Runs `call` (a store call that must be alone: the store's
   * `truncateBefore`) with the store gate closed: once every store call in
   * flight settled, and before any waiting one is sent. Appends meanwhile are
   * staged as usual; their writes (and syncs, reads, metadata updates) wait
   * for the gate, no longer. `after` runs when `call` succeeded, before the
   * gate opens (so that what waited sees its effect).
   */
  async #alone(call: () => Promise<void>, after: () => void): Promise<void> {
    const open = this.#gate.close();
    try {
      const quiet = this.#gate.quiet();
      if (quiet !== undefined) await quiet;
      // A failure while in-flight calls settled: nothing is changed.
      if (this.#failure !== undefined) throw this.#failure;
      await call();
      after();
    } finally {
      open();
      const held = this.#held;
      this.#held = [];
      for (const write of held) this.#issue(write.start, write.bytes, write.recycle);
    }
  }

  /**
   * Runs the truncations one at a time, in call order. Resolves or rejects
   * as `work` does.
   */
  #enqueue<T>(work: () => Promise<T>): Promise<T> {
    const run = (this.#truncations ?? Promise.resolve()).then(work);
    const tracked = run.then(noop, noop);
    this.#truncations = tracked;
    void tracked.then(() => {
      if (this.#truncations === tracked) this.#truncations = undefined;
    });
    return run;
  }

  /**
   * Runs `work` with the log to itself: appends refused, writes, syncs and
   * reads settled (docs/INTERNALS.md §7).
   */
  #runExclusive<T>(work: () => Promise<T>): Promise<T> {
    if ((this.#blocked & (BLOCK_CLOSED | BLOCK_READ_ONLY | BLOCK_FAILED)) !== 0) {
      return Promise.reject(this.#blockedError('truncate the log'));
    }
    // Appends are refused from this call on, not from when the work starts:
    // a record appended in the same turn would be acknowledged, then cut.
    this.#exclusiveCount++;
    this.#blocked |= BLOCK_TRUNCATING;
    const run = this.#enqueue(async () => {
      try {
        if ((this.#blocked & (BLOCK_CLOSED | BLOCK_FAILED)) !== 0) {
          throw this.#blockedError('truncate the log');
        }
        this.#submit();
        const gc = this.#gc!;
        // Every write and every flush (with its waiters) finishes first, and
        // everything appended before is made durable.
        for (;;) {
          if (gc.failure !== undefined || this.#failure !== undefined) break;
          if (gc.reserved < this.#tail) gc.reserve(this.#tail);
          if (gc.durable < gc.reserved) await gc.syncTo(gc.reserved);
          await this.#whenSettled();
          if (gc.idle && this.#isSettled() && gc.durable >= this.#tail) break;
          // A flush scheduled for other waiters runs on a later macrotask.
          if (!gc.idle) await new Promise<void>((resolve) => setImmediate(resolve));
        }
        if (this.#failure !== undefined) throw this.#failure;
        return await work();
      } finally {
        if (--this.#exclusiveCount === 0) this.#blocked &= ~BLOCK_TRUNCATING;
      }
    });
    const tracked = run.then(noop, noop);
    this.#exclusive = tracked;
    void tracked.then(() => {
      if (this.#exclusive === tracked) this.#exclusive = undefined;
    });
    return run;
  }

  // ---------------------------------------------------------------- truncation

  /**
   * Keeps the record at `lsn` and every record before it, drops every record
   * after it, durably, before resolving; the next append gets the LSN just
   * after the kept record. Exclusive: appends made before the call are
   * written and synced first (then dropped, if after `lsn`); appends during it
   * throw `WAL_BUSY`; reads, `sync` and `waitFor` wait for it; open iterators
   * end at the cut. (It takes back LSNs already handed out: nothing may be
   * written at them before the cut is durable; docs/FORMAT.md §7.) Waits for
   * truncations called before it.
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
    return this.#runExclusive(async () => {
      const length = await this.#locate(lsn, this.#tail);
      const end = lsn + HEADER_SIZE + length;
      if (end === this.#tail) return;
      try {
        // Lower the hint first (damage above the cut will be a tear), and
        // count the truncation so read-only followers rescan.
        await this.#store.updateMeta({
          [DURABLE_HINT_KEY]: Math.min(this.#hint, end),
          [META_TRUNCATIONS]: this.#cutCount + 1,
        });
        this.#hint = Math.min(this.#hint, end);
        this.#cutCount++;
        await this.#store.truncate(end);
        this.#allocated = end;
      } catch (cause) {
        this.#fail(
          new FailedError(`truncating the log after offset ${lsn} failed`, { cause, offset: end }),
          end,
        );
        this.#resumeAtDurable = true;
        throw this.#failure;
      }
      this.#gc!.reset(end);
      this.#tail = end;
      this.#index.truncateAfter(end);
      for (const offset of this.#skipped.keys()) if (offset >= end) this.#skipped.delete(offset);
      if (this.#knownBoundary > end) this.#knownBoundary = -1;
      this.#cuts.push(end);
    });
  }

  /**
   * Drops every record before `lsn` (after a checkpoint): the head becomes
   * `lsn`, durably, before resolving; whole segments below it are deleted.
   * `lsn` may be the tail at the call (drops everything appended so far).
   *
   * Not exclusive: appends go on during it, get their LSNs at once and are
   * staged as usual; their writes, syncs and reads wait only while the store
   * records the head and deletes segments. It first waits until every record
   * below `lsn` is durable (records from `lsn` on are not waited for: use
   * `sync()` or a durable wait for them). Truncations run one at a time, in
   * call order. Reads and iterators below the new head reject with
   * `WAL_TRUNCATED` once it moved. A `close()` waits for it.
   * Algorithm: docs/FORMAT.md §7.2.
   *
   * Rejects with `WAL_NOT_BOUNDARY`, `WAL_TRUNCATED` (below the head),
   * `ERR_OUT_OF_RANGE` (past the tail), `WAL_CLOSED` (called after
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
    if ((this.#blocked & (BLOCK_CLOSED | BLOCK_READ_ONLY | BLOCK_FAILED)) !== 0) {
      return Promise.reject(this.#blockedError('truncate the log'));
    }
    // The tail at the call is a boundary, unless a truncateAfter cuts first.
    const tail = this.#tail;
    const cuts = this.#cuts.length;
    return this.#enqueue(async () => {
      if ((this.#blocked & (BLOCK_CLOSED | BLOCK_FAILED)) !== 0) {
        throw this.#blockedError('truncate the log');
      }
      if (lsn < this.#head) throw this.#truncatedError(lsn);
      if (lsn > this.#tail) throw outOfRange('lsn', `<= the tail (${this.#tail})`, lsn);
      if (lsn === this.#head) return;
      try {
        // 1. Every record below lsn durable: the head never moves past bytes
        //    a power loss could take (FORMAT.md §7.2).
        this.#submit();
        await this.#waitTarget(lsn, 'durable');
        // 2. A boundary, proven from the bytes below it alone.
        if (lsn !== tail || this.#cuts.length !== cuts) await this.#walk(lsn, this.written, false);
        // 3. The hint, raised to what is durable now (at least lsn).
        if (this.#hint < lsn) await this.#raiseHint(this.#gc!.durable);
      } catch (error) {
        if (errorCode(error) !== 'WAL_FAILED') throw error;
        // The store latched a failure, maybe in a background call (the
        // durable hint's update) whose handler has not run yet: the log
        // stops either way, and reports its own failure.
        if (this.#hintWrite !== undefined) await this.#hintWrite;
        if (this.#failure === undefined) {
          this.#fail(
            new FailedError(`truncating the log before offset ${lsn} failed`, {
              cause: error,
              offset: lsn,
            }),
            'durable',
          );
        }
        throw this.#failure;
      }
      // 4. The store records the head, then deletes what lies below it, alone.
      await this.#alone(
        async () => {
          try {
            await this.#store.truncateBefore(lsn);
          } catch (cause) {
            this.#fail(
              new FailedError(`truncating the log before offset ${lsn} failed`, {
                cause,
                offset: lsn,
              }),
              'durable',
            );
            throw this.#failure;
          }
        },
        () => {
          // 5. Forget.
          this.#head = lsn;
          this.#index.truncateBefore(lsn);
          for (const offset of this.#skipped.keys()) if (offset < lsn) this.#skipped.delete(offset);
          if (this.#knownBoundary < lsn) this.#knownBoundary = -1;
        },
      );
    });
  }

  /** Raises the persisted durable hint to at least `value` (durable already). */
  async #raiseHint(value: number): Promise<void> {
    while (this.#hint < value) {
      if (this.#failure !== undefined) throw this.#failure;
      if (this.#hintWrite === undefined) this.#writeHint(value);
      else this.#hintWanted = Math.max(this.#hintWanted ?? 0, value);
      await this.#hintWrite;
    }
  }

  // ---------------------------------------------------------------- read

  /**
   * Reads the record at `lsn`. A record appended but not yet written is
   * waited for. Rejects with `WAL_NOT_BOUNDARY` when `lsn` is not a record
   * boundary, `WAL_TRUNCATED` below the head, `ERR_OUT_OF_RANGE` at or past
   * the tail, `WAL_CORRUPTION` when the stored record fails its checksum (or
   * was stepped over by the skip policy), `WAL_CLOSED`.
   */
  async read(lsn: number): Promise<Uint8Array> {
    validateOffset('lsn', lsn);
    if ((this.#blocked & BLOCK_CLOSED) !== 0) throw new ClosedError('log');
    while (this.#exclusive !== undefined) await this.#exclusive;
    const bound = this.#options.readOnly ? this.#scannedEnd : this.#tail;
    this.#checkRange(lsn, bound);
    if (!this.#options.readOnly && lsn >= this.written) {
      this.#submit();
      await this.#waitTarget(lsn + 1, 'written');
    }
    const length = await this.#locate(lsn, this.written);
    const bytes = await this.#readStore(lsn, HEADER_SIZE + length);
    if (bytes.length < HEADER_SIZE + length || !frameIsValid(bytes, 0, length)) {
      throw this.#damaged(lsn);
    }
    this.#knownBoundary = lsn + HEADER_SIZE + length;
    return bytes.subarray(HEADER_SIZE);
  }

  #checkRange(lsn: number, bound: number): void {
    if (lsn < this.#head) throw this.#truncatedError(lsn);
    if (lsn >= bound) throw outOfRange('lsn', `< the end of the log (${bound})`, lsn);
  }

  #truncatedError(lsn: number): TruncatedError {
    return new TruncatedError(`no record at ${lsn}: the log was truncated before ${this.#head}`, {
      offset: lsn,
    });
  }

  /** The error for a record at `lsn` that fails its checksum. */
  #damaged(lsn: number): CorruptionError {
    const skipped = this.#skipped.has(lsn);
    return new CorruptionError(
      skipped
        ? `the record at ${lsn} is damaged; recovery stepped over it (skip policy)`
        : `the record at ${lsn} fails its checksum`,
      { offset: lsn },
    );
  }

  /**
   * Validates that `lsn` is a record boundary below `bound` by walking frame
   * headers from the nearest known boundary; resolves with its payload length.
   */
  async #locate(lsn: number, bound: number): Promise<number> {
    this.#checkRange(lsn, bound);
    return this.#walk(lsn, bound, true);
  }

  /**
   * Walks frame headers up to `lsn` (reading nothing at or past `bound`):
   * with `withLength`, resolves with the payload length of the record at
   * `lsn`; without, resolves (with 0) on reaching `lsn`, having read only
   * bytes below it. A `truncateBefore` that moves the head past the walk
   * meanwhile restarts it from the new head (or rejects with
   * `WAL_TRUNCATED` when `lsn` is below it).
   */
  async #walk(lsn: number, bound: number, withLength: boolean): Promise<number> {
    for (;;) {
      const head = this.#head;
      try {
        return await this.#walkFrom(lsn, bound, withLength);
      } catch (error) {
        if (this.#head === head || !(error instanceof TruncatedError)) throw error;
        if (lsn < this.#head) throw this.#truncatedError(lsn);
      }
    }
  }

  async #walkFrom(lsn: number, bound: number, withLength: boolean): Promise<number> {
    let position =
      this.#knownBoundary >= 0 && this.#knownBoundary <= lsn
        ? Math.max(this.#knownBoundary, this.#index.floor(lsn) ?? this.#head)
        : (this.#index.floor(lsn) ?? this.#head);
    let window: Uint8Array = new Uint8Array(0);
    let windowStart = position;
    for (;;) {
      if (!withLength && position === lsn) return 0;
      if (position + HEADER_SIZE > windowStart + window.length) {
        windowStart = position;
        // Enough for every header up to `lsn` (at least a page), at most one window.
        const want = Math.max(lsn + HEADER_SIZE - position, 4096);
        window = await this.#readStore(position, Math.min(READ_WINDOW, want, bound - position));
        if (window.length < HEADER_SIZE) break;
      }
      const at = position - windowStart;
      const length = frameLength(window, at);
      if (!lengthFits(position, length, this.#maxRecordSize, bound)) {
        throw new CorruptionError(
          `the frame at ${position} claims ${length} bytes, past the log's end or maximum record size`,
          { offset: position },
        );
      }
      if (position === lsn) return length;
      position += HEADER_SIZE + length;
      if (position > lsn) break;
    }
    throw new BoundaryError(`${lsn} is not a record boundary of the log`, { offset: lsn });
  }

  /**
   * Reads from the store, counted so a truncation waits for it. Rejects with
   * `WAL_TRUNCATED` when a `truncateBefore` moved the head past `offset`
   * while the read waited for the store gate.
   */
  async #readStore(offset: number, length: number): Promise<Uint8Array> {
    if ((this.#blocked & BLOCK_CLOSED) !== 0 && this.#store.closed) throw new ClosedError('log');
    this.#readsInFlight++;
    try {
      return await this.#gate.call(() =>
        offset < this.#head
          ? Promise.reject(this.#truncatedError(offset))
          : this.#store.read(offset, length),
      );
    } finally {
      this.#readsInFlight--;
      this.#settled();
    }
  }

  /**
   * Iterates the records from `fromLsn` (default: the head) up to the
   * written watermark at the time of the call, one record per step. The
   * first step rejects with `WAL_NOT_BOUNDARY` when `fromLsn` is not a record
   * boundary; any step rejects with `WAL_TRUNCATED` once a `truncateBefore`
   * passed its position and `WAL_CORRUPTION` for a record failing its
   * checksum. A `truncateAfter` below its end ends it at the cut.
   */
  iterate(fromLsn?: number): AsyncIterableIterator<StoredRecord> {
    return new RecordIterator(this.#reader(fromLsn, READ_WINDOW));
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
    if (options !== undefined) {
      if (typeof options !== 'object' || options === null) {
        throw invalidArgType('options', 'of type object', options);
      }
      rejectUnknownKeys('options', options, ITERATE_OPTIONS);
    }
    const batchBytes = options?.batchBytes ?? READ_WINDOW;
    return new BatchIterator(this.#reader(fromLsn, batchBytes));
  }

  #reader(fromLsn: number | undefined, batchBytes: number): Reader {
    if (fromLsn !== undefined) validateOffset('fromLsn', fromLsn);
    if (!Number.isInteger(batchBytes) || batchBytes < HEADER_SIZE) {
      throw outOfRange('options.batchBytes', `an integer >= ${HEADER_SIZE}`, batchBytes);
    }
    if ((this.#blocked & BLOCK_CLOSED) !== 0) throw new ClosedError('log');
    return new Reader(
      this.#access,
      fromLsn ?? this.#head,
      this.written,
      this.#tail,
      this.#cuts.length,
      batchBytes,
    );
  }

  /** Validates an iterator's start. */
  async #validateStart(lsn: number, end: number, tail: number): Promise<void> {
    while (this.#exclusive !== undefined) await this.#exclusive;
    if ((lsn === end || lsn === tail) && lsn >= this.#head) return;
    if (lsn > end && lsn < tail) {
      // Appended but not yet written when the iterator was made: nothing to
      // yield, but the start must still be a boundary.
      await this.#waitTarget(lsn + 1, 'written');
      await this.#locate(lsn, this.written);
      return;
    }
    await this.#locate(lsn, end);
  }

  /** Where an iterator created at cut count `epoch` must stop, at most `end`. */
  #clampEnd(end: number, epoch: number): number {
    for (let i = epoch; i < this.#cuts.length; i++) end = Math.min(end, this.#cuts[i]!);
    return end;
  }

  /** Waits while a truncation runs. */
  async #quiet(): Promise<void> {
    while (this.#exclusive !== undefined) await this.#exclusive;
    if ((this.#blocked & BLOCK_CLOSED) !== 0 && this.#store.closed) throw new ClosedError('log');
  }

  /**
   * Read-only logs: re-reads the store (records another process appended,
   * a truncation it made) and extends the readable end through the intact
   * records found; resolves with the new end. Stops quietly at a partial
   * record (the writer may be writing it). Writable logs: resolves with the
   * written watermark.
   */
  async refresh(): Promise<number> {
    if ((this.#blocked & BLOCK_CLOSED) !== 0) throw new ClosedError('log');
    if (!this.#options.readOnly) return this.written;
    await this.#store.refresh?.();
    const store = this.#store;
    let from = this.#scannedEnd;
    const truncations =
      metaInteger(await store.readMeta(), META_TRUNCATIONS, 0, Number.MAX_SAFE_INTEGER) ?? 0;
    if (
      store.head > this.#head ||
      store.length < this.#scannedEnd ||
      truncations !== this.#cutCount
    ) {
      this.#cutCount = truncations;
      // The writer truncated: start over from its head.
      from = store.head;
      this.#head = store.head;
      this.#index.truncateBefore(store.head);
      this.#index.truncateAfter(from);
      this.#cuts.push(from);
      this.#knownBoundary = -1;
    }
    const found = await scan(store, {
      from,
      maxRecordSize: this.#maxRecordSize,
      durableHint: 0,
      policy: 'strict',
      boundaries: this.#index,
    });
    this.#scannedEnd = found.end;
    this.#tail = found.end;
    return found.end;
  }

  // ---------------------------------------------------------------- close and reopen

  /**
   * Closes the log. Appends after the call throw `WAL_CLOSED`. Records
   * appended before it are written and synced (their waiters resolve), the
   * durable hint is recorded, then the store is closed and its lock released.
   * Resolves when all that is done; rejects if that final write or sync
   * fails (the lock is released anyway). After an earlier failure it writes
   * nothing, waits for writes in flight, releases everything and resolves.
   * Idempotent: later calls return the same promise.
   */
  close(): Promise<void> {
    if (this.#closing !== undefined) return this.#closing;
    this.#blocked |= BLOCK_CLOSED;
    this.#closing = this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    let error: unknown;
    // Truncations called before close() finish first (those not yet started
    // reject with WAL_CLOSED).
    while (this.#truncations !== undefined) await this.#truncations;
    const failedBefore = this.#failure !== undefined;
    const gc = this.#gc;
    if (gc !== undefined && (this.#blocked & BLOCK_FAILED) === 0) {
      try {
        this.#submit();
        if (this.#tail > this.durable) await this.#waitTarget(this.#tail, 'durable');
        await this.#whenSettled();
        if (this.#hint < gc.durable && this.#failure === undefined) {
          await this.#store.updateMeta({ [DURABLE_HINT_KEY]: gc.durable });
          this.#hint = gc.durable;
        }
        // Zeros written ahead and not used (or maybe, by a failed zero write):
        // a clean close leaves no tail to cut.
        if ((this.#store.length > this.#tail || this.#padFailed) && this.#failure === undefined) {
          await this.#store.truncate(this.#tail);
        }
      } catch (cause) {
        error = cause;
      }
    }
    await this.#whenSettled();
    // A failure during the close (a durable-hint update in flight, say) is
    // this close's failure: the caller must not take it for a clean close.
    if (!failedBefore && this.#failure !== undefined) error ??= this.#failure;
    const waiters = this.#drainWaiters;
    this.#drainWaiters = [];
    for (const waiter of waiters) waiter.reject(new ClosedError('log'));
    try {
      await this.#store.close();
    } catch (cause) {
      error ??= cause;
    }
    if (error !== undefined) throw error;
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
    let resumeAt = this.#resumeAt;
    if (this.#resumeAtDurable && this.#gc !== undefined) {
      resumeAt = Math.min(resumeAt ?? Number.POSITIVE_INFINITY, this.#gc.durable);
    }
    return Wal.#open(from, { ...this.#options, replay: undefined }, resumeAt);
  }
}

const APPEND_OPTIONS: ReadonlySet<string> = new Set(['wait']);
const ITERATE_OPTIONS: ReadonlySet<string> = new Set(['batchBytes']);

/** The wait level of append options; a misspelt key is named, as `open` names one. */
function waitLevel(options: unknown): WaitLevel {
  if (typeof options !== 'object' || options === null) {
    throw invalidArgType('options', 'of type object', options);
  }
  // The common shape ({ wait }) costs one comparison per key (an inherited key, too, takes the slow check).
  for (const key in options) {
    if (key !== 'wait') {
      rejectUnknownKeys('options', options, APPEND_OPTIONS);
      break;
    }
  }
  const { wait } = options as { wait?: unknown };
  validateWait('options.wait', wait);
  return wait;
}

/** Throws `ERR_INVALID_ARG_VALUE`, naming `name`, unless `value` is a {@link WaitLevel}. */
function validateWait(name: string, value: unknown): asserts value is WaitLevel {
  if (value !== 'written' && value !== 'durable') {
    throw invalidArgValue(name, value, "must be 'written' or 'durable'");
  }
}
