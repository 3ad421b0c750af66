/**
 * A worker thread's handle on a shared log (docs/DURABILITY.md §9, core
 * README "Sharing a log with worker threads"): appends that return their
 * LSN synchronously, with no lock and no message, and `written` / `durable`
 * waits served by the owner's group commit.
 */
import type { MessagePort } from 'node:worker_threads';
import {
  ClosedError,
  invalidArgType,
  invalidArgValue,
  outOfRange,
  RecordTooLargeError,
  validateOffset,
} from '@wal/errors';
import { appendAndWait } from './append-wait.js';
import { type WaitLevel, waitLevel } from './options.js';
import type { SharedWalHandle } from './shared-log.js';
import {
  CONTROL_BYTES,
  DURABLE,
  GENERATION,
  I32_COUNT,
  MAX_SLOTS,
  PROGRESS,
  SharedMemory,
  STATE_CLOSED,
  STATE_FAILED,
  STATE_FINISHED,
  STATE_TRUNCATING,
  TAIL,
  WRITTEN,
  waitAsync,
} from './shared-memory.js';

/** A resolved promise: its reactions are microtasks without the async-hooks resource `queueMicrotask` makes. */
const RESOLVED = Promise.resolve();
/** The ports of the handles attached in this thread: a handle attaches once. */
const ATTACHED = new WeakSet<MessagePort>();

/** A wait of this thread: for the watermark of `level` to pass `target`. */
interface Wait {
  readonly target: number;
  readonly level: WaitLevel | 'collected';
  /** The cut count when the record was appended or the wait made (shared-memory.ts `cutError`). */
  readonly epoch: number;
  /**
   * Made while a `truncateAfter` ran: settled only once it finished (then
   * rejected if it cut the record), as the owner's waits are.
   */
  readonly duringCut: boolean;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

/** Options of {@link SharedWal.append}. */
export interface SharedAppendOptions {
  /** Resolve once the record is `written` or `durable` (default: return the LSN at once). */
  readonly wait?: WaitLevel;
  /** Rejects the wait with an `AbortError` once it aborts (the record is kept); aborted already: appends nothing. */
  readonly signal?: AbortSignal;
}

/**
 * One thread's handle on a log shared by its owner (`Wal.share()`). Appends
 * reserve their LSNs with an atomic compare-and-swap on the shared tail and
 * frame the record in shared memory; the owner's thread writes it, and its
 * one group commit makes it durable, for every thread at once. Durability
 * is the log's: a `durable` wait resolves once the record is on disk
 * (docs/DURABILITY.md §9).
 */
export class SharedWal {
  readonly #memory: SharedMemory;
  readonly #slot: number;
  readonly #generation: number;
  readonly #port: MessagePort;
  readonly #maxRecordSize: number;
  readonly #waits: Wait[] = [];
  #watching = false;
  #detached = false;
  /** The end of this wave of waits is queued (a microtask). */
  #waveQueued = false;
  readonly #endWave = (): void => {
    this.#waveQueued = false;
    this.#memory.waveEnded();
  };
  /** `#append` and `#wait`, made once (no closure per append). */
  readonly #appendOne = (payload: Uint8Array): number => this.#append(payload);
  /** The wait of the append just made: its cut count read with the reservation (shared-memory.ts). */
  readonly #waitOne = (target: number, level: WaitLevel): Promise<void> =>
    this.#wait(target, level, this.#memory.lastEpoch);

  private constructor(handle: SharedWalHandle) {
    this.#memory = new SharedMemory(handle.control, handle.ring, handle.ringSize);
    this.#slot = handle.slot;
    this.#generation = handle.generation;
    this.#port = handle.port;
    this.#maxRecordSize = handle.maxRecordSize;
    ATTACHED.add(handle.port);
    // The owner's end closes when its thread exits (or its log is gone):
    // nothing would serve this handle's waits any more.
    this.#port.on('close', () => this.#lost());
    // The port keeps this thread alive only while a wait is pending.
    this.#port.unref();
  }

  /**
   * Attaches this thread to a shared log through `handle` (from the
   * owner's `wal.share()`, received by `postMessage` or as `workerData`).
   * A handle attaches once. Throws `ERR_INVALID_ARG_TYPE` /
   * `ERR_INVALID_ARG_VALUE` for anything else, and for a handle attached
   * before or whose slot went to another thread since.
   */
  static attach(handle: SharedWalHandle): SharedWal {
    if (typeof handle !== 'object' || handle === null) {
      throw invalidArgType('handle', 'a handle made by wal.share()', handle);
    }
    const { control, ring, ringSize, slot, generation, maxRecordSize, port } = handle;
    if (
      !(control instanceof SharedArrayBuffer) ||
      control.byteLength !== CONTROL_BYTES ||
      !(ring instanceof SharedArrayBuffer) ||
      !Number.isSafeInteger(ringSize) ||
      ring.byteLength !== 3 * ringSize ||
      !Number.isSafeInteger(slot) ||
      slot < 1 ||
      slot >= MAX_SLOTS ||
      !Number.isSafeInteger(maxRecordSize) ||
      maxRecordSize < 0 ||
      !Number.isSafeInteger(generation) ||
      typeof port?.postMessage !== 'function'
    ) {
      throw invalidArgValue(
        'handle',
        handle,
        'is not a handle made by wal.share() (pass it whole, with its port transferred)',
      );
    }
    const current = Atomics.load(
      new Int32Array(control, CONTROL_BYTES - 4 * I32_COUNT),
      GENERATION + slot,
    );
    if (ATTACHED.has(port) || current !== generation) {
      throw invalidArgValue(
        'handle',
        handle,
        'was attached before and detached (or its thread exited): ask the owner for a new one with wal.share()',
      );
    }
    return new SharedWal(handle);
  }

  /** The next LSN to be handed out, in any thread. */
  get tail(): number {
    return this.#memory.load(TAIL);
  }

  /** Every byte below it reached the operating system (as the owner last published). */
  get written(): number {
    return this.#memory.load(WRITTEN);
  }

  /** Every byte below it is durable (as the owner last published). */
  get durable(): number {
    return this.#memory.load(DURABLE);
  }

  /** Largest payload this handle appends. */
  get maxRecordSize(): number {
    return this.#maxRecordSize;
  }

  /** Whether an append may go on now: the log is open, no `truncateAfter` runs, and the shared ring has room. */
  get writable(): boolean {
    const memory = this.#memory;
    return !this.#detached && memory.state === 0 && memory.used < memory.ringSize;
  }

  /**
   * Appends `payload` and returns its LSN, unique across every thread of
   * the log (no lock, no message). Returned, the record is in shared memory:
   * a later `waitFor` or a `wait` option says when it is written or durable.
   * With `options.wait`, resolves with the LSN once it is.
   *
   * Throws `WAL_BUSY` when the ring is full or the owner's `truncateAfter`
   * runs (`await drained()`; also right after `writable` said true, when
   * another thread took the room meanwhile: nothing is appended),
   * `WAL_CLOSED` after the owner's
   * `close()`, `detach()` or the owner's thread exiting, the log's failure
   * (`WAL_WRITE_FAILED` / `WAL_FAILED`) after one, `WAL_RECORD_TOO_LARGE`
   * above `maxRecordSize`, and `ERR_INVALID_ARG_TYPE` for a payload that is
   * not a `Uint8Array`. With `options.signal`: the wait rejects with an
   * `AbortError` once it aborts (the record is kept).
   */
  append(payload: Uint8Array): number;
  append(payload: Uint8Array, options: SharedAppendOptions): Promise<number>;
  append(payload: Uint8Array, options?: SharedAppendOptions): number | Promise<number> {
    if (options === undefined) return this.#append(payload);
    return appendAndWait(payload, options, this.#appendOne, this.#waitOne);
  }

  /**
   * Appends every payload, in order, as consecutive records (one
   * reservation); returns their LSNs. All or nothing. Throws as
   * {@link SharedWal.append}; a batch whose frames exceed the ring is
   * `ERR_OUT_OF_RANGE`.
   */
  appendBatch(payloads: readonly Uint8Array[]): number[] {
    if (!Array.isArray(payloads)) throw invalidArgType('payloads', 'an array', payloads);
    for (const payload of payloads) this.#check(payload);
    this.#refuseIfDetached();
    const lsns = this.#memory.appendBatch(this.#slot, payloads);
    if (lsns === undefined) throw this.#full();
    return lsns;
  }

  /**
   * Resolves once the record at `lsn` is `written` or `durable`. Rejects
   * with the log's failure when the log fails first, `WAL_CLOSED` when the
   * owner closed the log without reaching it (or this handle detached, or
   * the owner's thread exited), `WAL_TRUNCATED` when the owner's
   * `truncateAfter` cut the record (a wait made while one runs settles after
   * it; it never resolves for a record appended later at the same LSN),
   * `ERR_OUT_OF_RANGE` for an LSN not below the tail.
   */
  waitFor(lsn: number, level: WaitLevel): Promise<void> {
    // The cut count before the tail: a cut counted after it stored the tail
    // it lowered, so the LSN is checked against a tail no older than the count.
    const epoch = this.#memory.cutCount;
    try {
      validateOffset('lsn', lsn);
      waitLevel({ wait: level });
      const tail = this.tail;
      if (lsn >= tail) throw outOfRange('lsn', `< the tail (${tail})`, lsn);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#wait(lsn + 1, level, epoch);
  }

  /**
   * Resolves once appends may go on ({@link SharedWal.writable}): the ring
   * has room and no `truncateAfter` runs; rejects with `WAL_CLOSED` or the
   * log's failure when appends can no longer go on.
   */
  drained(): Promise<void> {
    const memory = this.#memory;
    const refusal = memory.refusal(memory.state & ~STATE_TRUNCATING, 'append');
    if (refusal !== undefined) return Promise.reject(refusal);
    if (this.writable) return Promise.resolve();
    return this.#wait(this.tail, 'collected');
  }

  /**
   * Detaches this thread: its pending waits reject with `WAL_CLOSED`, its
   * appends throw it, and its slot is free for another thread. (A thread
   * that exits detaches too; one that exits in the middle of an append
   * fails the log.)
   */
  detach(): void {
    if (this.#detached) return;
    this.#detached = true;
    this.#port.close();
    const waits = this.#waits.splice(0);
    for (const wait of waits) wait.reject(new ClosedError('log'));
  }

  #append(payload: Uint8Array): number {
    this.#check(payload);
    this.#refuseIfDetached();
    const lsn = this.#memory.append(this.#slot, payload);
    if (lsn === -1) throw this.#full();
    return lsn;
  }

  #check(payload: Uint8Array): void {
    if (!(payload instanceof Uint8Array)) {
      throw invalidArgType('payload', 'an instance of Uint8Array', payload);
    }
    if (payload.length > this.#maxRecordSize) {
      throw new RecordTooLargeError(payload.length, this.#maxRecordSize);
    }
  }

  /** `WAL_CLOSED` once detached, or once the slot went to another handle. */
  #refuseIfDetached(): void {
    if (this.#detached) throw new ClosedError('log');
    if (Atomics.load(this.#memory.i32, GENERATION + this.#slot) !== this.#generation) {
      this.#detached = true;
      throw new ClosedError('log');
    }
  }

  /** The owner's end of the port closed: this handle serves no more. */
  #lost(): void {
    if (this.#detached) return;
    this.#detached = true;
    const waits = this.#waits.splice(0);
    for (const wait of waits) wait.reject(new ClosedError('log'));
  }

  #full(): Error {
    const memory = this.#memory;
    return memory.refusal(memory.state, 'append') ?? memory.fullError('drained()');
  }

  #wait(
    target: number,
    level: WaitLevel | 'collected',
    epoch = this.#memory.cutCount,
  ): Promise<void> {
    if (this.#detached) return Promise.reject(new ClosedError('log'));
    return new Promise<void>((resolve, reject) => {
      const duringCut = (this.#memory.state & STATE_TRUNCATING) !== 0;
      this.#waits.push({ target, level, epoch, duringCut, resolve, reject });
      this.#ask(target, level);
      this.#settle();
      this.#watch();
    });
  }

  /** Tells the owner what this thread waits for. */
  #ask(target: number, level: WaitLevel | 'collected'): void {
    const memory = this.#memory;
    // Raised at once (waking a sleeping owner), and the wave ended, waking
    // the owner, once per wave of microtasks, after the reactions already
    // queued: committers released together append and wait in one wave, and
    // the owner serves their wants once it ended, all of their records
    // framed, as one write (served at the first, that record would go
    // alone). A thread that does not yield is served GATHER_MS after the
    // owner saw its want (shared-log.ts `#serve`).
    if (level !== 'collected') memory.ask(level, target);
    this.#queueWave();
  }

  /** Ends this wave of waits (and wakes the owner) in a microtask, once per wave. */
  #queueWave(): void {
    if (this.#waveQueued) return;
    this.#waveQueued = true;
    RESOLVED.then(this.#endWave);
  }

  /** Settles the waits the published watermarks or state decide. */
  #settle(): void {
    const memory = this.#memory;
    const state = memory.state;
    const written = memory.load(WRITTEN);
    const durable = memory.load(DURABLE);
    // Read after the watermarks: a cut is recorded before the watermarks can
    // pass a cut record's LSN again (shared-log.ts `cut`).
    const cuts = memory.cutCount;
    const room = memory.used < memory.ringSize;
    const waits = this.#waits;
    let kept = 0;
    for (const wait of waits) {
      const cut =
        wait.level === 'collected' || wait.epoch === cuts
          ? undefined
          : memory.cutError(wait.target - 1, wait.epoch, cuts);
      if (cut !== undefined) {
        wait.reject(cut);
        continue;
      }
      // Made while a truncateAfter ran that failed instead (the log failed
      // with it, its cut unknown): the record may be gone, durable or not.
      if (wait.duringCut && (state & STATE_FAILED) !== 0) {
        wait.reject(memory.failure());
        continue;
      }
      const reached =
        wait.duringCut && (state & STATE_TRUNCATING) !== 0 && (state & STATE_FAILED) === 0
          ? false
          : wait.level === 'durable'
            ? wait.target <= durable
            : wait.level === 'written'
              ? wait.target <= written
              : room && state === 0; // appends may go on (no truncateAfter running)
      if (reached) wait.resolve();
      else if ((state & STATE_FAILED) !== 0) wait.reject(memory.failure());
      else if (
        (state & STATE_FINISHED) !== 0 ||
        (wait.level === 'collected' && (state & STATE_CLOSED) !== 0)
      ) {
        wait.reject(new ClosedError('log', { offset: wait.target - 1 }));
      } else waits[kept++] = wait;
    }
    waits.length = kept;
  }

  /** Wakes on the owner's progress while any wait is pending (the port keeps the thread alive). */
  #watch(): void {
    if (this.#watching || this.#waits.length === 0) return;
    this.#watching = true;
    this.#port.ref();
    void this.#loop();
  }

  async #loop(): Promise<void> {
    const memory = this.#memory;
    while (this.#waits.length > 0) {
      const seen = Atomics.load(memory.i32, PROGRESS);
      this.#settle();
      if (this.#waits.length === 0) break;
      const wait = waitAsync(memory.i32, PROGRESS, seen);
      if (wait.async) await wait.value;
    }
    this.#watching = false;
    if (!this.#detached) this.#port.unref();
  }
}
