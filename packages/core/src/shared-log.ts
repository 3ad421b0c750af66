/**
 * The owner's side of a log shared with worker threads (docs/INTERNALS.md
 * §10, docs/DURABILITY.md §9): it hands out handles, copies the framed prefix
 * of the ring into the log's staging (from there the one writer and group
 * commit take over), asks the group commit for what threads wait for and
 * publishes the watermarks, and fails the log when a thread exits in the
 * middle of an append. Internal to @wal/core.
 */
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import {
  BusyError,
  ClosedError,
  FailedError,
  outOfRange,
  RecordTooLargeError,
  type WalError,
  WriteFailedError,
} from '@wal/errors';
import { HEADER_SIZE, readU32 } from './frame.js';
import {
  ARMED,
  ARMED_ANY,
  ARMED_GATHER,
  COLLECTED,
  CONTROL_BYTES,
  CUT_COUNT,
  CUT_HISTORY,
  CUTS,
  DURABLE,
  FAIL_KIND,
  FAIL_LOG,
  FAIL_OFFSET,
  FAIL_WRITE,
  GENERATION,
  IDLE,
  MAX_SLOTS,
  OWNER_SLOT,
  SharedMemory,
  SLOTS,
  STATE,
  STATE_CLOSED,
  STATE_FAILED,
  STATE_FINISHED,
  STATE_TRUNCATING,
  TAIL,
  TAKEN,
  WANT_DURABLE,
  WANT_WRITTEN,
  WAVES,
  WRITTEN,
  waitAsync,
} from './shared-memory.js';
import { BLOCK_FAILED, type LogState } from './state.js';

/**
 * What a worker thread needs to append to a shared log: pass it to
 * `SharedWal.attach` in that thread. Made by `Wal.share()`; send it with
 * `postMessage` or as `workerData`, listing `port` among the transferred
 * objects. One handle serves one thread.
 */
export interface SharedWalHandle {
  /** The control block: tail, watermarks, state, one slot per thread. */
  readonly control: SharedArrayBuffer;
  /** Where threads frame their records until the owner copies them out. */
  readonly ring: SharedArrayBuffer;
  /** Appends are refused while this many bytes are reserved and not copied out (the log's `stagingLimit`). */
  readonly ringSize: number;
  /** This handle's slot. */
  readonly slot: number;
  /** The slot's generation when it was handed out (a later holder's handle has another). */
  readonly generation: number;
  /** Largest payload a thread may append (the log's, at most `ringSize` less a header). */
  readonly maxRecordSize: number;
  /** Closes when the thread holding it exits or detaches: how the owner learns of it. */
  readonly port: MessagePort;
}

/** What the owner found when it looked ({@link SharedLog.#look}). */
const WORKED = 0;
/** Frames gather (threads keep appending, nobody waits): let more come before copying. */
const GATHERING = 1;
const IDLE_LOOK = 2;
type Look = typeof WORKED | typeof GATHERING | typeof IDLE_LOOK;

/**
 * How long frames may gather in the ring, or a want wait for the end of its
 * thread's wave of waits, before the owner copies out or serves it anyway
 * (a wait, or frames gathering past `SharedMemory.gather`, is served
 * sooner): about the longest an append nobody waits for stays in the ring.
 */
const GATHER_MS = 1;

/** One waiter for the ring to be copied out up to `target`. */
interface Collected {
  readonly target: number;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

/** The owner's side of a shared log. Internal. */
export class SharedLog {
  readonly #log: LogState;
  readonly #control: SharedArrayBuffer;
  readonly #ringBuffer: SharedArrayBuffer;
  readonly memory: SharedMemory;
  readonly maxRecordSize: number;
  /** Every frame below it is in the log's staging. */
  #collected: number;
  readonly #waiters: Collected[] = [];
  /** `drained()` calls of the owner waiting for room in the ring. */
  readonly #roomWaiters: Array<{ resolve: () => void; reject: (error: unknown) => void }> = [];
  /** Ports of the attached threads, by slot. */
  readonly #ports = new Map<number, MessagePort>();
  #listening = false;
  /** `#quiesce` calls running (each arms ARMED for itself: the loop leaves it armed). */
  #quiescing = 0;
  /** WAVES when wants were last served. */
  #wavesSeen = 0;
  /** When a want not yet served was first seen while its wave had not ended. */
  #wantSince: number | undefined;
  /** When frames not yet copied out were first seen gathering. */
  #gatherSince: number | undefined;
  #stopped = false;
  #drainScheduled = false;
  /** The targets asked of the group commit for threads (the highest per level). */
  #askedWritten = 0;
  #askedDurable = 0;

  constructor(log: LogState) {
    this.#log = log;
    const ringSize = log.stagingLimit;
    // Frames start within twice ringSize; the last may run on past it by
    // one largest frame (shared-memory.ts).
    try {
      this.#control = new SharedArrayBuffer(CONTROL_BYTES);
      this.#ringBuffer = new SharedArrayBuffer(3 * ringSize);
    } catch (error) {
      // The engine's RangeError names no option: say which one sets the size.
      throw Object.assign(
        outOfRange(
          'options.stagingLimit',
          `small enough for share() to allocate 3 × stagingLimit bytes of shared memory (allocating ${3 * ringSize} bytes failed: ${String((error as Error)?.message ?? error)})`,
          ringSize,
        ),
        { cause: error },
      );
    }
    this.memory = new SharedMemory(this.#control, this.#ringBuffer, ringSize);
    this.maxRecordSize = Math.min(log.maxRecordSize, ringSize - HEADER_SIZE);
    const memory = this.memory;
    for (let slot = 0; slot < MAX_SLOTS; slot++) Atomics.store(memory.big, SLOTS + slot, IDLE);
    this.#collected = log.tail;
    memory.store(TAIL, log.tail);
    memory.store(COLLECTED, log.tail);
    memory.store(WRITTEN, log.gc!.written);
    memory.store(DURABLE, log.gc!.durable);
    Atomics.store(memory.i32, TAKEN + OWNER_SLOT, 1);
  }

  /** The next LSN to be handed out, in any thread. */
  get tail(): number {
    return this.memory.load(TAIL);
  }

  /** Bytes reserved in the ring and not yet copied out. */
  get used(): number {
    return this.memory.used;
  }

  /**
   * A handle for one more thread. Throws `WAL_BUSY` when every slot is
   * taken.
   */
  handle(): SharedWalHandle {
    const memory = this.memory;
    let slot = -1;
    for (let i = 1; i < MAX_SLOTS; i++) {
      if (Atomics.compareExchange(memory.i32, TAKEN + i, 0, 1) === 0) {
        slot = i;
        break;
      }
    }
    if (slot === -1) {
      throw new BusyError(
        `a shared log serves at most ${MAX_SLOTS - 1} threads besides its owner; a thread that exits or detaches frees its slot`,
      );
    }
    const generation = Atomics.add(memory.i32, GENERATION + slot, 1) + 1;
    const { port1, port2 } = new MessageChannel();
    port1.on('close', () => this.#gone(slot));
    // The owner's end never keeps the process alive (the workers do).
    port1.unref();
    this.#ports.set(slot, port1);
    this.#listen();
    return {
      control: this.#control,
      ring: this.#ringBuffer,
      ringSize: memory.ringSize,
      slot,
      generation,
      maxRecordSize: this.maxRecordSize,
      port: port2,
    };
  }

  /** The owner's append: framed into the ring like any thread's, then copied out at once. */
  append(payload: Uint8Array): number {
    const lsn = this.memory.append(OWNER_SLOT, payload);
    if (lsn === -1) throw this.memory.fullError('wal.drained()');
    this.collect();
    return lsn;
  }

  /**
   * The owner's `appendBatch`: consecutive records, one reservation. Throws
   * `WAL_RECORD_TOO_LARGE` for a payload above {@link SharedLog.maxRecordSize},
   * `ERR_OUT_OF_RANGE` when the frames exceed the ring, `WAL_BUSY` when the
   * ring lacks room now.
   */
  appendBatch(payloads: readonly Uint8Array[]): number[] {
    for (const payload of payloads) {
      if (payload.length > this.maxRecordSize) {
        throw new RecordTooLargeError(payload.length, this.maxRecordSize);
      }
    }
    const lsns = this.memory.appendBatch(OWNER_SLOT, payloads);
    if (lsns === undefined) throw this.memory.fullError('wal.drained()');
    this.collect();
    return lsns;
  }

  /**
   * Copies the framed prefix of the ring into the log's staging, as far as
   * staging has room; gives that room back to the threads.
   */
  collect(): void {
    const log = this.#log;
    if ((log.blocked & BLOCK_FAILED) !== 0) return;
    const memory = this.memory;
    const ring = memory.ring;
    const span = memory.span;
    const writer = log.writer;
    const end = memory.framedEnd();
    let at = this.#collected;
    while (at < end && writer.buffered < log.stagingLimit) {
      // A run of whole frames, contiguous in the ring (it ends where the
      // next frame starts over at the ring's start), copied in one go.
      const start = at;
      const room = writer.runRoom;
      let count = 0;
      while (at < end) {
        const from = at % span;
        if (count > 0 && from < start % span) break;
        const length = readU32(ring, from + HEADER_SIZE - 4);
        const frame = HEADER_SIZE + length;
        if (length > this.maxRecordSize || at + frame > end) {
          // Not a frame any thread could have made: stop before staging it.
          if (count > 0) break;
          log.durability.fail(
            new FailedError(
              `the shared log's ring holds no valid frame at offset ${at} (length ${length})`,
              { offset: at },
            ),
            at,
          );
          return;
        }
        if (at - start + frame > room) {
          if (count === 0) {
            // More than the chunk has left: staged alone (in a new chunk,
            // or a buffer of its own when larger than a chunk).
            writer.stageFramed(ring, from, frame);
            at += frame;
          }
          break;
        }
        log.index.note(at);
        at += frame;
        count++;
      }
      if (count > 0) writer.stageFramedRun(ring, start % span, at - start, count);
    }
    if (at !== this.#collected) {
      // A thread waits for room only while the ring was full.
      const wasFull = memory.load(TAIL) - this.#collected >= memory.ringSize;
      this.#collected = at;
      memory.store(COLLECTED, at);
      this.#settle();
      if (wasFull) memory.progressed();
    }
    if (at < end && !this.#drainScheduled) {
      // Staging is full: go on once it drains.
      this.#drainScheduled = true;
      log.writer.drained().then(
        () => {
          this.#drainScheduled = false;
          this.collect();
        },
        () => {
          this.#drainScheduled = false;
        },
      );
    }
  }

  /**
   * Resolves once every frame below `target` is in the log's staging
   * (then the log's own waits apply); rejects when the log fails first.
   */
  whenCollected(target: number): Promise<void> {
    if (target <= this.#collected) return Promise.resolve();
    const failure = this.#log.durability.failure;
    if (failure !== undefined) return Promise.reject(failure);
    return new Promise((resolve, reject) => {
      this.#waiters.push({ target, resolve, reject });
      this.collect();
      this.#armForAny();
    });
  }

  /**
   * Resolves once the ring has room (the owner's `drained()`); rejects when
   * the log fails or closes first. Copying out needs a turn of the event
   * loop at least (a thread that died holding the ring is learnt of there),
   * so a loop awaiting it never spins.
   */
  whenRoom(): Promise<void> {
    const state = this.memory.state;
    const refusal = this.memory.refusal(state & ~STATE_TRUNCATING, 'wait for room');
    if (refusal !== undefined) return Promise.reject(refusal);
    if (this.used < this.memory.ringSize) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.#roomWaiters.push({ resolve, reject });
      this.collect();
      this.#armForAny();
    });
  }

  /** Whether a copy-out is waited for (`whenCollected`, `whenRoom`). */
  get #copyOutWaited(): boolean {
    return this.#waiters.length > 0 || this.#roomWaiters.length > 0;
  }

  /**
   * A copy-out is waited for: an owner asleep until frames gather is woken
   * by the next append instead (the one the wait may be for).
   */
  #armForAny(): void {
    Atomics.compareExchange(this.memory.i32, ARMED, ARMED_GATHER, ARMED_ANY);
  }

  #settle(): void {
    if (this.#roomWaiters.length > 0 && this.used < this.memory.ringSize) {
      for (const waiter of this.#roomWaiters.splice(0)) waiter.resolve();
    }
    const collected = this.#collected;
    let kept = 0;
    const waiters = this.#waiters;
    for (const waiter of waiters) {
      if (waiter.target <= collected) waiter.resolve();
      else waiters[kept++] = waiter;
    }
    waiters.length = kept;
  }

  /** `close()` was called: appends stop in every thread (`WAL_CLOSED`). */
  closeCalled(): void {
    Atomics.or(this.memory.i32, STATE, STATE_CLOSED);
    const error = new ClosedError('log');
    for (const waiter of this.#roomWaiters.splice(0)) waiter.reject(error);
  }

  /**
   * For the close: waits for the appends in progress, and copies everything
   * out of the ring (rejects when the log fails meanwhile).
   */
  closing(): Promise<void> {
    return this.#quiesce();
  }

  /** After the close: waits beyond the final watermarks reject in every thread. */
  closed(): void {
    this.publish();
    Atomics.or(this.memory.i32, STATE, STATE_FINISHED);
    const error = new ClosedError('log');
    for (const waiter of this.#waiters.splice(0)) waiter.reject(error);
    this.#stop();
  }

  /**
   * A `truncateAfter` was called (`set`) or the last one called settled:
   * appends in every thread are refused (`WAL_BUSY`) from the call on, as
   * the owner's are.
   */
  truncatingCalled(set: boolean): void {
    if (set) Atomics.or(this.memory.i32, STATE, STATE_TRUNCATING);
    else {
      Atomics.and(this.memory.i32, STATE, ~STATE_TRUNCATING);
      this.memory.progressed();
    }
  }

  /**
   * Before a `truncateAfter`'s work (and before the log makes what it keeps
   * durable): waits for the appends in progress and copies everything out
   * of the ring.
   */
  beforeCut(): Promise<void> {
    return this.#quiesce();
  }

  /**
   * After a `truncateAfter` cut the log at `end`: recorded in the cut
   * history first (a thread waiting on a record at or past it learns it was
   * cut before it can see a watermark raised again by records appended later
   * at the same LSNs), then the tail, the watermarks and the wants are the
   * log's again (the cut lowered them all).
   */
  cut(end: number): void {
    const memory = this.memory;
    const log = this.#log;
    const count = memory.cutCount;
    Atomics.store(memory.big, CUTS + (count % CUT_HISTORY), BigInt(end));
    // The tail and what was copied out lowered before the cut is counted: a
    // thread that sees the count drops its bound of COLLECTED and reads it
    // again (shared-memory.ts `reserve`).
    const tail = log.tail;
    const gc = log.gc!;
    this.#collected = tail;
    memory.store(TAIL, tail);
    memory.store(COLLECTED, tail);
    Atomics.store(memory.i32, CUT_COUNT, count + 1);
    memory.forgetCollected();
    memory.store(WRITTEN, gc.written);
    memory.store(DURABLE, gc.durable);
    memory.store(WANT_WRITTEN, Math.min(memory.load(WANT_WRITTEN), tail));
    memory.store(WANT_DURABLE, Math.min(memory.load(WANT_DURABLE), tail));
    this.#askedWritten = Math.min(this.#askedWritten, tail);
    this.#askedDurable = Math.min(this.#askedDurable, tail);
    memory.progressed();
  }

  /**
   * Waits until no thread is in the middle of an append (a thread that
   * exits in one fails the log), then copies out everything framed.
   */
  async #quiesce(): Promise<void> {
    const memory = this.memory;
    this.#quiescing++;
    try {
      for (;;) {
        if (this.#log.durability.failure !== undefined) return;
        Atomics.store(memory.i32, ARMED, ARMED_ANY);
        if (memory.busySlots().length === 0) break;
        const wait = waitAsync(memory.i32, ARMED, ARMED_ANY, 50);
        if (wait.async) await wait.value;
        else await new Promise((resolve) => setImmediate(resolve));
      }
    } finally {
      this.#quiescing--;
    }
    const end = memory.load(TAIL);
    await this.whenCollected(end);
  }

  /** The log failed with `error`: appends and waits beyond it fail in every thread. */
  failed(error: WalError): void {
    const memory = this.memory;
    const gc = this.#log.gc!;
    const write = error.code === 'WAL_WRITE_FAILED';
    memory.store(FAIL_OFFSET, error.offset ?? gc.durable);
    Atomics.store(memory.i32, FAIL_KIND, write ? FAIL_WRITE : FAIL_LOG);
    this.publish();
    Atomics.or(memory.i32, STATE, STATE_FAILED);
    for (const waiter of this.#waiters.splice(0)) waiter.reject(error);
    for (const waiter of this.#roomWaiters.splice(0)) waiter.reject(error);
    memory.progressed();
    this.#stop();
  }

  /** Publishes the watermarks and wakes the threads waiting on them. */
  publish(): void {
    const memory = this.memory;
    const gc = this.#log.gc!;
    memory.raise(WRITTEN, gc.written);
    memory.raise(DURABLE, gc.durable);
    memory.progressed();
  }

  /**
   * Asks the group commit for the highest targets threads wait for: whether
   * it asked, or `undefined` when a want waits for the end of its wave. A
   * want is served once a wave of waits ended since the last serve (every
   * record of the wave framed), or with `force`, or GATHER_MS after it was
   * first seen (a thread that does not yield after asking).
   */
  #serve(force: boolean): boolean | undefined {
    const memory = this.memory;
    // The waves first: a wave counted here ended after its wants were raised.
    const waves = Atomics.load(memory.i32, WAVES);
    // A want past the tail is no record's: ask for at most the tail.
    const tail = memory.load(TAIL);
    const durable = Math.min(memory.load(WANT_DURABLE), tail);
    const written = Math.min(memory.load(WANT_WRITTEN), tail);
    if (durable <= this.#askedDurable && written <= this.#askedWritten) {
      this.#wantSince = undefined;
      return false;
    }
    if (waves === this.#wavesSeen && !force) {
      const now = performance.now();
      this.#wantSince ??= now;
      if (now - this.#wantSince < GATHER_MS) return undefined;
    }
    this.#wavesSeen = waves;
    this.#wantSince = undefined;
    // Durable first: its wait marks the staged chunk before anything sends
    // it, so that it goes as one durable write.
    if (durable > this.#askedDurable) {
      this.#askedDurable = durable;
      this.#ask(durable, 'durable');
    }
    if (written > this.#askedWritten) {
      this.#askedWritten = written;
      this.#ask(written, 'written');
    }
    return true;
  }

  /**
   * Asks the group commit for `target` at `level`, and publishes the
   * watermarks once it is reached. What can be copied out is copied out
   * first and the wait registered at once, before the copied frames are
   * sent: a durable wait then goes out as one durable write, not a write
   * followed by an fdatasync (as an unshared log's first durable wait of a
   * turn does, docs/INTERNALS.md §3).
   */
  #ask(target: number, level: 'written' | 'durable'): void {
    if (target > this.#collected) this.collect();
    const reached =
      target <= this.#collected
        ? this.#waitCollected(target, level)
        : this.whenCollected(target).then(() => this.#waitCollected(target, level));
    reached.then(
      () => this.publish(),
      () => {
        // The failure is published by failed(); a cut by cut().
      },
    );
  }

  /**
   * The group commit's wait for `target`, copied out already, at `level`.
   * The staged chunk goes as the writer sends any (its durable writes at
   * most MAX_DURABLE_IN_FLIGHT at a time, docs/INTERNALS.md §4), a durable
   * one at once when it may.
   */
  #waitCollected(target: number, level: 'written' | 'durable'): Promise<void> {
    const writer = this.#log.writer;
    try {
      const wait = writer.waitTarget(target, level);
      if (level === 'durable') writer.submit(false);
      return wait;
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Serves the threads while any is attached: copies out what they frame
   * and asks for what they wait for, sleeping in between (`#loop`).
   */
  #listen(): void {
    if (this.#listening || this.#stopped) return;
    this.#listening = true;
    void this.#loop();
  }

  async #loop(): Promise<void> {
    const memory = this.memory;
    let force = false;
    while (!this.#stopped && this.#ports.size > 0) {
      // Awake (unarmed), look once per turn of the event loop while there is
      // something to copy out or ask for: threads do not wake an awake owner,
      // and a turn lets the writes' completions run between two looks.
      let look = this.#look(force);
      force = false;
      if (look === WORKED) {
        await new Promise((resolve) => setImmediate(resolve));
        continue;
      }
      // Nothing to do now: arm, look again (an append or want may have come
      // before the arming), and sleep until a thread wakes the owner: at any
      // append when nothing is pending (or a copy-out is waited for, or a
      // truncation or close waits for appends in progress), else, while
      // frames gather, at an append that takes them past a multiple of
      // memory.gather; and, while frames gather or a want waits for the end
      // of its wave, after GATHER_MS at most, then copying out what came.
      const mode =
        look === GATHERING && this.#quiescing === 0 && !this.#copyOutWaited
          ? ARMED_GATHER
          : ARMED_ANY;
      Atomics.store(memory.i32, ARMED, mode);
      look = this.#look(false);
      if (look !== WORKED) {
        // A timeout whenever frames gather or a want waits (the second look
        // may have found staging full: the first one's mode still holds).
        const timeout = mode === ARMED_GATHER || look === GATHERING ? GATHER_MS : undefined;
        const wait = waitAsync(memory.i32, ARMED, mode, timeout);
        if (wait.async) force = (await wait.value) === 'timed-out';
        else await new Promise((resolve) => setImmediate(resolve));
      }
      // Disarm, unless a thread did, or a quiesce armed it for itself.
      if (this.#quiescing === 0) Atomics.compareExchange(memory.i32, ARMED, mode, 0);
    }
    // The last thread gone: what it framed is copied out now, not at the
    // owner's next append or wait.
    if (!this.#stopped) this.collect();
    this.#listening = false;
  }

  /**
   * Asks for what threads wait for, and copies out what they framed. While
   * threads keep appending and nobody waits, frames are copied out by runs
   * of at least `memory.gather` bytes, or GATHER_MS after they were first
   * seen (or with `force`), so that the writes stay large; a want (once its
   * wave ended) copies out at once, as do a copy-out waited for and a ring
   * half full. {@link WORKED} when it asked or copied something,
   * {@link GATHERING} when frames or a want wait (and will be served
   * within GATHER_MS without a wake-up), else {@link IDLE_LOOK}.
   */
  #look(force: boolean): Look {
    const served = this.#serve(force);
    const pending = this.memory.framedEnd() - this.#collected;
    const before = this.#collected;
    if (pending > 0) {
      const now = performance.now();
      this.#gatherSince ??= now;
      if (
        force ||
        now - this.#gatherSince >= GATHER_MS ||
        pending >= this.memory.gather ||
        this.used >= this.memory.ringSize / 2 ||
        this.#copyOutWaited
      ) {
        this.collect();
      }
    }
    if (pending <= 0 || this.#collected !== before) this.#gatherSince = undefined;
    if (served === true || this.#collected !== before) return WORKED;
    // Frames held back by a full staging are not work for the next turn:
    // the drain's callback copies them out (the owner may sleep meanwhile).
    if (pending > 0 && !this.#drainScheduled) return GATHERING;
    return served === undefined ? GATHERING : IDLE_LOOK;
  }

  #stop(): void {
    this.#stopped = true;
    Atomics.store(this.memory.i32, ARMED, 0);
    Atomics.notify(this.memory.i32, ARMED);
  }

  /**
   * The thread holding `slot` exited or detached. In the middle of an
   * append, it leaves a reservation that will never be framed: the log fails
   * there, as at a failed write (the watermarks never pass it). Otherwise
   * its slot is free again.
   */
  #gone(slot: number): void {
    this.#ports.delete(slot);
    const memory = this.memory;
    const start = Atomics.load(memory.big, SLOTS + slot);
    // An announcement below what was copied out is no reservation (a live
    // one holds the copy-out at its start): one left by a thread that read
    // the tail, was overtaken and announced it late.
    if (start === IDLE || Number(start) < this.#collected) {
      Atomics.store(memory.big, SLOTS + slot, IDLE);
      Atomics.store(memory.i32, TAKEN + slot, 0);
      // Its frames are all published: copied out now, not left gathering.
      if (!this.#stopped) this.collect();
      return;
    }
    const offset = Number(start);
    const log = this.#log;
    if ((log.blocked & BLOCK_FAILED) === 0) {
      // What lies below the hole and fits in staging is sent (it may reach
      // the disk; its waits reject with the failure, as at a failed write).
      this.collect();
      log.writer.submit();
      log.durability.fail(
        new WriteFailedError(offset, {
          cause: new Error(
            `the thread holding slot ${slot} of the shared log exited in the middle of an append at offset ${offset}`,
          ),
        }),
        offset,
      );
    }
    // Its slot stays taken and announced: nothing passes the hole.
  }
}
