/**
 * The shared memory of a log shared with worker threads (docs/INTERNALS.md
 * §10): the control block's layout and the append protocol every thread runs
 * on it, the owner's included. Internal to @wal/core.
 *
 * A thread appends without a lock and without a message:
 * 1. it announces, in its own slot, the tail it read (a lower bound of the
 *    start it is about to reserve);
 * 2. it reserves the record's frame with one compare-and-swap on the shared
 *    tail (retried from step 1 while other threads move it), refusing when
 *    the ring is full: when `ringSize` bytes or more are reserved and not
 *    yet copied out (so, as with the log's staging, the append that reaches
 *    the limit is accepted, and a batch started below it);
 * 3. it frames the record (header, CRC, payload) into the ring at
 *    `lsn mod (2 × ringSize)`: what is reserved and not copied out spans
 *    less than twice `ringSize`, so live frames never overlap, and a frame
 *    never wraps (the buffer has room for one largest frame, `ringSize`,
 *    past that span);
 * 4. it clears its slot, which publishes the frame (Atomics order every
 *    write before it), and wakes the owner if the owner sleeps.
 * The owner copies the framed prefix — up to the lowest announced slot, or
 * the tail when none is — into its staging, where the log's one writer and
 * group commit take over; the ring's room is given back as it is copied.
 */
import {
  BusyError,
  ClosedError,
  FailedError,
  outOfRange,
  TruncatedError,
  WriteFailedError,
} from '@wal/errors';
import { HEADER_SIZE, writeFrame } from './frame.js';

/** Threads (slots) a shared log serves at most, the owner's included. */
export const MAX_SLOTS = 64;
/** The owner's slot. */
export const OWNER_SLOT = 0;
/** A slot with no append in progress. */
export const IDLE = -1n;

// 64-bit words (BigInt64Array indexes).
/** The next LSN to be handed out. */
export const TAIL = 0;
/** Every frame below it was copied out of the ring (its room is free). */
export const COLLECTED = 1;
/** The written watermark, as the owner last published it. */
export const WRITTEN = 2;
/** The durable watermark, as the owner last published it. */
export const DURABLE = 3;
/** The highest `written` target a thread asked for. */
export const WANT_WRITTEN = 4;
/** The highest `durable` target a thread asked for. */
export const WANT_DURABLE = 5;
/** Where the log failed (its failure's offset). */
export const FAIL_OFFSET = 6;
/** The first of the {@link MAX_SLOTS} slots: the start (or a lower bound) of an append in progress. */
export const SLOTS = 8;
/** Cuts remembered (`truncateAfter`s): a wait pending across more of them cannot tell whether one cut it. */
export const CUT_HISTORY = 1024;
/** The first of the {@link CUT_HISTORY} cut offsets: cut number `n` at `CUTS + n % CUT_HISTORY`. */
export const CUTS = SLOTS + MAX_SLOTS;
const BIG_WORDS = CUTS + CUT_HISTORY;

// 32-bit words (indexes of the Int32Array placed after the 64-bit words).
const I32_BASE = 0;
/** Bits of {@link SharedState} (STATE_*). */
export const STATE = I32_BASE;
/**
 * Non-zero while the owner sleeps: {@link ARMED_ANY} until any append,
 * {@link ARMED_GATHER} until an append whose frame ends past a multiple of
 * {@link SharedMemory.gather} (frames are gathering); a thread that clears
 * it wakes the owner. A thread's want ({@link SharedMemory.ask}) and the
 * end of its wave of waits ({@link SharedMemory.waveEnded}) wake it in
 * either case.
 */
export const ARMED = I32_BASE + 1;
/** {@link ARMED}: the owner sleeps until any append. */
export const ARMED_ANY = 1;
/** {@link ARMED}: the owner sleeps until an append ends past a multiple of {@link SharedMemory.gather}. */
export const ARMED_GATHER = 2;
/**
 * While threads keep appending and nobody waits, the owner lets this many
 * bytes of frames gather before it copies them out (writes stay large), or
 * a quarter of the ring when that is less ({@link SharedMemory.gather}).
 */
export const GATHER_BYTES = 256 * 1024;
/** Bumped (and notified) by the owner each time it publishes something threads wait for. */
export const PROGRESS = I32_BASE + 2;
/** What failed: 1 a write (`WAL_WRITE_FAILED` at FAIL_OFFSET), 2 the log (`WAL_FAILED`). */
export const FAIL_KIND = I32_BASE + 3;
/** `truncateAfter`s made on the log since it was shared; cut `n`'s offset is in CUTS. */
export const CUT_COUNT = I32_BASE + 4;
/**
 * Bumped by a thread at the end of each wave of microtasks in which it asked
 * for waits (the wants themselves are raised at once): the owner serves a
 * want once the wave that raised it has ended (its records are all framed
 * then), or a little later in any case (a thread that does not yield).
 */
export const WAVES = I32_BASE + 5;
/** The first of the slots' taken flags (1: handed to a thread). */
export const TAKEN = I32_BASE + 6;
/**
 * The first of the slots' generations: bumped each time the slot is handed
 * out, so that a handle of an earlier holder (detached, or its thread gone)
 * can no longer append through it.
 */
export const GENERATION = TAKEN + MAX_SLOTS;
const I32_WORDS = 6 + 2 * MAX_SLOTS;
/** 32-bit words of the control block (after its 64-bit ones). */
export const I32_COUNT = I32_WORDS;

/** Bytes of the control block. */
export const CONTROL_BYTES = BIG_WORDS * 8 + I32_WORDS * 4;

// STATE bits.
/** The log was closed (or the handle detached): appends are refused. */
export const STATE_CLOSED = 1;
/** The log failed: appends are refused with its failure. */
export const STATE_FAILED = 2;
/** A `truncateAfter` runs: appends are refused with `WAL_BUSY`. */
export const STATE_TRUNCATING = 4;
/** The owner's close finished: waits beyond the final watermarks reject. */
export const STATE_FINISHED = 8;

export const FAIL_WRITE = 1;
export const FAIL_LOG = 2;

/** `Atomics.waitAsync`'s result (ES2024; Node.js has it since 16). */
export type AsyncWait =
  | { readonly async: false; readonly value: 'not-equal' | 'timed-out' }
  | { readonly async: true; readonly value: Promise<'ok' | 'timed-out'> };

/** `Atomics.waitAsync(array, index, value, timeout)`: never blocks the thread. */
export function waitAsync(
  array: Int32Array,
  index: number,
  value: number,
  timeout?: number,
): AsyncWait {
  return (
    Atomics as unknown as {
      waitAsync(array: Int32Array, index: number, value: number, timeout?: number): AsyncWait;
    }
  ).waitAsync(array, index, value, timeout);
}

/** The views of one shared log's memory. */
export class SharedMemory {
  readonly big: BigInt64Array;
  readonly i32: Int32Array;
  readonly ring: Uint8Array;
  /** Reservations start only while less than this is reserved and not copied out. */
  readonly ringSize: number;
  /** Frames start at their LSN modulo this (twice `ringSize`). */
  readonly span: number;
  /**
   * Bytes of frames the owner lets gather before copying them out while
   * nobody waits: {@link GATHER_BYTES}, or a quarter of the ring when less
   * (a ring smaller than it would fill first).
   */
  readonly gather: number;
  /** COLLECTED as this thread last read it. */
  #collected = 0n;
  /** CUT_COUNT when `#collected` was read. */
  #collectedCuts = 0;

  constructor(control: SharedArrayBuffer, ring: SharedArrayBuffer, ringSize: number) {
    this.big = new BigInt64Array(control, 0, BIG_WORDS);
    this.i32 = new Int32Array(control, BIG_WORDS * 8, I32_WORDS);
    this.ring = new Uint8Array(ring);
    this.ringSize = ringSize;
    this.span = 2 * ringSize;
    this.gather = Math.min(GATHER_BYTES, Math.floor(ringSize / 4));
  }

  load(word: number): number {
    return Number(Atomics.load(this.big, word));
  }

  store(word: number, value: number): void {
    Atomics.store(this.big, word, BigInt(value));
  }

  /** Raises `word` to at least `value`; whether this call raised it. */
  raise(word: number, value: number): boolean {
    const target = BigInt(value);
    for (;;) {
      const seen = Atomics.load(this.big, word);
      if (seen >= target) return false;
      if (Atomics.compareExchange(this.big, word, seen, target) === seen) return true;
    }
  }

  get state(): number {
    return Atomics.load(this.i32, STATE);
  }

  /** Bytes reserved and not yet copied out of the ring. */
  get used(): number {
    return this.load(TAIL) - this.load(COLLECTED);
  }

  /**
   * The error for what `state` refuses, or `undefined` when appends may go
   * on. `what` names the refused call.
   */
  refusal(state: number, what: string): Error | undefined {
    if (state === 0) return undefined;
    if ((state & STATE_FAILED) !== 0) return this.failure();
    if ((state & STATE_CLOSED) !== 0) return new ClosedError('log');
    return new BusyError(`a truncateAfter of the log is running; ${what} after it resolves`, {
      offset: this.load(TAIL),
    });
  }

  /** The failure the owner published, as an error of this thread. */
  failure(): Error {
    const offset = this.load(FAIL_OFFSET);
    return Atomics.load(this.i32, FAIL_KIND) === FAIL_WRITE
      ? new WriteFailedError(offset)
      : new FailedError(
          `the shared log failed; nothing after offset ${offset} can be trusted (the owner's wal.failure has the cause)`,
          { offset },
        );
  }

  /**
   * Appends `payload` as thread `slot` (steps 1–4 above): its LSN, or -1
   * when the ring lacks room for it (nothing reserved). Throws the state's
   * refusal. The caller checked the payload.
   */
  append(slot: number, payload: Uint8Array): number {
    const lsn = this.reserve(slot, HEADER_SIZE + payload.length);
    if (lsn === -1) return -1;
    this.#noteEpoch();
    writeFrame(this.ring, lsn % this.span, payload);
    this.#published(slot, lsn, lsn + HEADER_SIZE + payload.length);
    return lsn;
  }

  /**
   * Appends `payloads` as consecutive records, one reservation for all:
   * their LSNs, or `undefined` when the ring lacks room for them all
   * (nothing reserved). Throws as {@link SharedMemory.append}, and
   * `ERR_OUT_OF_RANGE` when their frames exceed the ring.
   */
  appendBatch(slot: number, payloads: readonly Uint8Array[]): number[] | undefined {
    let size = 0;
    for (const payload of payloads) size += HEADER_SIZE + payload.length;
    if (size > this.ringSize) {
      throw outOfRange(
        'payloads',
        `at most ${this.ringSize} bytes of frames (the shared log's ring)`,
        `${size} bytes of frames`,
      );
    }
    const start = this.reserve(slot, size);
    if (start === -1) return undefined;
    this.#noteEpoch();
    const lsns: number[] = [];
    let lsn = start;
    for (const payload of payloads) {
      lsns.push(lsn);
      writeFrame(this.ring, lsn % this.span, payload);
      lsn += HEADER_SIZE + payload.length;
    }
    this.#published(slot, start, lsn);
    return lsns;
  }

  /**
   * Reserves `size` bytes of LSN space as thread `slot`, its start announced
   * in the slot: the start, or -1 (the slot left idle) when the ring is full
   * (`ringSize` bytes or more reserved and not copied out). The caller keeps
   * `size` within `ringSize` (one record, or one batch).
   */
  reserve(slot: number, size: number): number {
    const big = this.big;
    const bytes = BigInt(size);
    const limit = BigInt(this.ringSize);
    const at = SLOTS + slot;
    for (;;) {
      const start = Atomics.load(big, TAIL);
      // `#collected` is a lower bound while no cut was made since it was
      // read (the word only grows between cuts; a cut lowers it, and stores
      // it before it counts the cut): read the word when the bound says the
      // ring may be full, or a cut was counted since.
      const cuts = Atomics.load(this.i32, CUT_COUNT);
      if (cuts !== this.#collectedCuts || start - this.#collected >= limit) {
        this.#collectedCuts = cuts;
        this.#collected = Atomics.load(big, COLLECTED);
        if (start - this.#collected >= limit) {
          Atomics.store(big, at, IDLE);
          return -1;
        }
      }
      Atomics.store(big, at, start);
      // Read after the announcement: a close or truncation that began before
      // it finds the slot taken and waits for this append; one that began
      // after it is seen here.
      const state = Atomics.load(this.i32, STATE);
      if (state !== 0) {
        Atomics.store(big, at, IDLE);
        throw this.refusal(state, 'append') as Error;
      }
      if (Atomics.compareExchange(big, TAIL, start, start + bytes) === start) return Number(start);
      // Another thread moved the tail: no reservation here until the next
      // announcement (a thread that dies now leaves nothing behind).
      Atomics.store(big, at, IDLE);
    }
  }

  /**
   * The cut count of the last append of this thread, read while its slot
   * was announced: exact, since a cut is counted only once no slot is
   * (a reservation made before a cut is waited for by it; one after it is
   * made once it was counted).
   */
  lastEpoch = 0;

  #noteEpoch(): void {
    this.lastEpoch = Atomics.load(this.i32, CUT_COUNT);
  }

  /**
   * Step 4: the slot's frames, `[start, end)`, are published; wakes the
   * owner if it sleeps until any append, or until frames gather past a
   * multiple of {@link SharedMemory.gather} and these do.
   */
  #published(slot: number, start: number, end: number): void {
    Atomics.store(this.big, SLOTS + slot, IDLE);
    const armed = Atomics.load(this.i32, ARMED);
    if (
      armed !== 0 &&
      (armed === ARMED_ANY || Math.floor(start / this.gather) !== Math.floor(end / this.gather)) &&
      Atomics.compareExchange(this.i32, ARMED, armed, 0) === armed
    ) {
      Atomics.notify(this.i32, ARMED);
    }
  }

  /**
   * The error for a wait on the record at `lsn` made when the cut count was
   * `epoch`, if a `truncateAfter` since cut it (its cut at or below `lsn`);
   * also when more cuts than the history holds were made since (none can
   * tell then: the wait is taken as cut).
   */
  cutError(lsn: number, epoch: number, count: number): Error | undefined {
    if (count - epoch > CUT_HISTORY) {
      return new TruncatedError(
        `more than ${CUT_HISTORY} truncateAfter calls were made while the wait on the record at ${lsn} was pending: it may have been cut`,
        { offset: lsn },
      );
    }
    for (let n = epoch; n < count; n++) {
      const cut = Number(Atomics.load(this.big, CUTS + (n % CUT_HISTORY)));
      if (cut <= lsn) {
        return new TruncatedError(
          `the record at ${lsn} was dropped by a truncateAfter cutting the log at ${cut}`,
          { offset: lsn },
        );
      }
    }
    return undefined;
  }

  /** The `truncateAfter`s made since the log was shared. */
  get cutCount(): number {
    return Atomics.load(this.i32, CUT_COUNT);
  }

  /** A `truncateAfter` lowered COLLECTED: this thread's bound of it is no bound any more. */
  forgetCollected(): void {
    this.#collected = 0n;
  }

  /** Wakes the owner, asleep or about to sleep (a thread asked for a wait). */
  wake(): void {
    Atomics.store(this.i32, ARMED, 0);
    Atomics.notify(this.i32, ARMED);
  }

  /**
   * A thread's want: raises WANT_WRITTEN or WANT_DURABLE to `target`, and
   * wakes the owner if it sleeps (it then serves the want once the wave
   * ends, or GATHER_MS later: it may have copied the frames out already,
   * and a thread that does not yield never ends its wave).
   */
  ask(level: 'written' | 'durable', target: number): void {
    this.raise(level === 'durable' ? WANT_DURABLE : WANT_WRITTEN, target);
    const armed = Atomics.load(this.i32, ARMED);
    if (armed !== 0 && Atomics.compareExchange(this.i32, ARMED, armed, 0) === armed) {
      Atomics.notify(this.i32, ARMED);
    }
  }

  /** Counts a wave of waits ended ({@link WAVES}) and wakes the owner. */
  waveEnded(): void {
    Atomics.add(this.i32, WAVES, 1);
    this.wake();
  }

  /**
   * The end of the framed prefix: the tail, or the lowest start announced by
   * a slot (an append in progress), whichever is lower. Read in that order:
   * a slot announces before it moves the tail.
   */
  framedEnd(): number {
    const big = this.big;
    let end = Atomics.load(big, TAIL);
    for (let slot = SLOTS; slot < SLOTS + MAX_SLOTS; slot++) {
      const start = Atomics.load(big, slot);
      if (start !== IDLE && start < end) end = start;
    }
    return Number(end);
  }

  /** Slots with an append in progress (a start announced). */
  busySlots(): number[] {
    const out: number[] = [];
    for (let slot = 0; slot < MAX_SLOTS; slot++) {
      if (Atomics.load(this.big, SLOTS + slot) !== IDLE) out.push(slot);
    }
    return out;
  }

  /** `WAL_BUSY` for a full ring; `drained` names the call to await. */
  fullError(drained: string): BusyError {
    return new BusyError(
      `the shared log's ring is full (${this.used} of ${this.ringSize} bytes): await ${drained} before appending more`,
      { offset: this.load(TAIL) },
    );
  }

  /** Publishes progress: wakes every thread waiting on PROGRESS. */
  progressed(): void {
    Atomics.add(this.i32, PROGRESS, 1);
    Atomics.notify(this.i32, PROGRESS);
  }
}
