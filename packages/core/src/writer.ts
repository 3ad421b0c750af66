/**
 * The writer (docs/FORMAT.md §6, docs/DURABILITY.md §2): records framed into
 * staging chunks synchronously, each chunk sent to the store as one
 * positional write, every write reserved in the group commit before it is
 * sent, writes held while zeros land where they go or while the store gate
 * is closed, and the back-pressure of a bounded staging memory. Who may touch
 * the staging buffers, and when: docs/INTERNALS.md §3; writes in flight and
 * holding: §4. Internal to @wal/core.
 */
import { WriteFailedError } from '@wal/errors';
import { writeNow } from './blocking.js';
import { publishRolls } from './channels.js';
import { copyInto, HEADER_SIZE, writeFrame } from './frame.js';
import type { WaitLevel } from './options.js';
import { BLOCK_FAILED, BLOCK_FULL, BLOCK_READ_ONLY, type LogState } from './state.js';

/** Staging chunk size: one positional write carries at most this, unless one record is larger. */
const MAX_CHUNK = 1024 * 1024;
/**
 * Durable writes in flight at most before the microtask flush leaves a
 * staged chunk with durable waiters to wait for one to complete
 * (docs/INTERNALS.md §4): two let the committers released by one complete
 * and submit their next records while the other runs. A chunk sent at once
 * (full, `sync`, a read, a truncation, `close`) is not held by it.
 */
const MAX_DURABLE_IN_FLIGHT = 2;

/** A write waiting to be sent (docs/INTERNALS.md §4). */
interface HeldWrite {
  start: number;
  bytes: Uint8Array;
  recycle: Uint8Array | undefined;
  durable: boolean;
}

/**
 * One group-commit wait shared by the waiting appends of one staged chunk
 * (docs/INTERNALS.md §3): `target` is the first one's, `extra` counts the
 * appends that joined it after.
 */
interface SharedWait {
  readonly target: number;
  readonly promise: Promise<void>;
  extra: number;
}

/** The log's write pipeline. Internal. */
export class Writer {
  readonly #log: LogState;
  readonly #chunkSize: number;
  /** The store's segment size, 0 for a store without segments (for the roll events). */
  readonly #segmentSize: number;

  // Staging: the chunk being filled, and free chunks for reuse (docs/INTERNALS.md §3).
  #chunk: Uint8Array | undefined;
  #chunkStart = 0;
  #chunkUsed = 0;
  readonly #pool: Uint8Array[] = [];
  /** Bytes staged or being written. */
  #buffered = 0;
  /** Records staged since open (`Wal.stats()`). */
  appends = 0;
  /** Payload bytes of those records (`Wal.stats()`). */
  appendedBytes = 0;
  #flushScheduled = false;
  readonly #flushStage = (): void => {
    this.#flushScheduled = false;
    if ((this.#log.blocked & (BLOCK_FAILED | BLOCK_READ_ONLY)) === 0) this.submit(false);
  };
  /** Some waiter of the staged chunk waits for `durable` (docs/INTERNALS.md §3). */
  #chunkDurable = false;
  /** Durable writes sent and not settled. */
  #durableInFlight = 0;
  /** A staged chunk with durable waiters waits for a durable write to complete. */
  #deferred = false;
  /**
   * Writes waiting for the zeros in flight to land (so zeros never land over
   * data), or for the store gate to open (docs/INTERNALS.md §4, §8).
   */
  #held: HeldWrite[] = [];
  /** The durable and written waits shared by the appends of the current chunk. */
  #sharedDurable: SharedWait | undefined;
  #sharedWritten: SharedWait | undefined;
  /**
   * Shared waits not yet released, in target order, for the waiter counts of
   * the stats: durable ones leave at the flush releasing them
   * ({@link Writer.releasedDurable}), written ones when their write lands.
   */
  readonly #pendingDurable: SharedWait[] = [];
  readonly #pendingWritten: SharedWait[] = [];
  readonly #drainWaiters: Array<{ resolve: () => void; reject: (error: unknown) => void }> = [];

  constructor(log: LogState, segmentSize = 0) {
    this.#log = log;
    this.#segmentSize = segmentSize;
    this.#chunkSize = Math.min(MAX_CHUNK, Math.floor(log.stagingLimit / 4));
  }

  /** Bytes of appended records held in memory (staged or being written). */
  get buffered(): number {
    return this.#buffered;
  }

  /**
   * Frames `payload` into staging and returns its LSN; the caller checked
   * everything. The common case — the record fits the chunk being filled,
   * whose flush is already scheduled — is kept this small so that V8
   * compiles it early and whole; the rest is {@link Writer.#stageSlow}.
   */
  stage(payload: Uint8Array): number {
    const chunk = this.#chunk;
    const at = this.#chunkUsed;
    const end = at + HEADER_SIZE + payload.length;
    if (chunk === undefined || end > chunk.length || !this.#flushScheduled) {
      return this.#stageSlow(payload);
    }
    const log = this.#log;
    const lsn = log.tail;
    writeFrame(chunk, at, payload);
    this.#chunkUsed = end;
    log.tail = lsn + (end - at);
    this.appends++;
    this.appendedBytes += payload.length;
    this.#addBuffered(end - at);
    log.index.note(lsn);
    return lsn;
  }

  /** {@link Writer.stage} for a record that needs a new chunk, its own buffer, or a flush scheduled. */
  #stageSlow(payload: Uint8Array): number {
    return this.#place(HEADER_SIZE + payload.length, payload, 0, false);
  }

  /**
   * Stages a frame made elsewhere — a shared log's, copied out of its ring
   * (docs/INTERNALS.md §10): the `frame` bytes of `src` from `from`, whose
   * header says so (the caller checked it). Returns its LSN, the tail.
   */
  stageFramed(src: Uint8Array, from: number, frame: number): number {
    return this.#place(frame, src, from, true);
  }

  /**
   * Bytes a run of frames may take in one {@link Writer.stageFramedRun}: what
   * the chunk being filled has left, or a whole chunk when that is less
   * than a header.
   */
  get runRoom(): number {
    const chunk = this.#chunk;
    const left = chunk === undefined ? 0 : chunk.length - this.#chunkUsed;
    return left < HEADER_SIZE ? this.#chunkSize : left;
  }

  /**
   * Stages `count` whole frames made elsewhere, back to back, the first at
   * the tail: the `bytes` bytes of `src` from `from`, in one copy (a shared
   * log's, docs/INTERNALS.md §10). The caller noted their boundaries in the
   * index and keeps `bytes` within {@link Writer.runRoom}.
   */
  stageFramedRun(src: Uint8Array, from: number, bytes: number, count: number): void {
    const chunk = this.#chunkFor(bytes);
    copyInto.call(chunk, src.subarray(from, from + bytes), this.#chunkUsed);
    this.#filled(bytes);
    this.appends += count;
    this.appendedBytes += bytes - count * HEADER_SIZE;
  }

  /** The chunk being filled, or a new one (the current one sent) when it has not `bytes` left. */
  #chunkFor(bytes: number): Uint8Array {
    let chunk = this.#chunk;
    if (chunk === undefined || this.#chunkUsed + bytes > chunk.length) {
      this.submit();
      chunk = this.#pool.pop() ?? new Uint8Array(this.#chunkSize);
      this.#chunk = chunk;
      this.#chunkStart = this.#log.tail;
      this.#chunkUsed = 0;
    }
    return chunk;
  }

  /** `bytes` just put at the end of the chunk: counted in it and in staging, the tail moved, its flush scheduled. */
  #filled(bytes: number): void {
    this.#chunkUsed += bytes;
    this.#log.tail += bytes;
    this.#addBuffered(bytes);
    if (!this.#flushScheduled) {
      // A microtask: every append made in this turn of the event loop (and
      // by committers released together, which resume in one wave of
      // microtasks) shares the write, without waiting for a macrotask.
      this.#flushScheduled = true;
      queueMicrotask(this.#flushStage);
    }
  }

  /**
   * Stages one record of `frame` bytes at the tail: framed from the payload
   * `src` (`framed` false), or copied from `src[from, from + frame)`.
   */
  #place(frame: number, src: Uint8Array, from: number, framed: boolean): number {
    const log = this.#log;
    const lsn = log.tail;
    this.appends++;
    this.appendedBytes += frame - HEADER_SIZE;
    if (frame > this.#chunkSize) {
      // A chunk of its own (never pooled), staged like any other: sent by
      // the flush of this turn, or by whatever sends the next chunk, so
      // that a durable waiter made right after the append makes it a
      // durable write (docs/DURABILITY.md §2.2).
      this.submit();
      const bytes = new Uint8Array(frame);
      if (framed) copyInto.call(bytes, src.subarray(from, from + frame), 0);
      else writeFrame(bytes, 0, src);
      this.#chunk = bytes;
      this.#chunkStart = lsn;
      this.#chunkUsed = 0;
      this.#filled(frame);
    } else {
      const chunk = this.#chunkFor(frame);
      if (framed) copyInto.call(chunk, src.subarray(from, from + frame), this.#chunkUsed);
      else writeFrame(chunk, this.#chunkUsed, src);
      this.#filled(frame);
    }
    log.index.note(lsn);
    return lsn;
  }

  /**
   * Sends the staged chunk to the store as one positional write: a durable
   * write when some waiter of it waits for `durable` and the log uses them
   * (`LogState.durableWrites`). Unless `force`, a chunk that would be a
   * durable write stays staged while {@link MAX_DURABLE_IN_FLIGHT} are in
   * flight; the first of them to complete sends it (docs/INTERNALS.md §4).
   */
  submit(force = true): void {
    const chunk = this.#chunk;
    if (chunk === undefined || this.#chunkUsed === 0) return;
    const start = this.#chunkStart;
    const durable =
      this.#chunkDurable && this.#log.durableWrites && this.#oneSegment(start, this.#chunkUsed);
    if (durable && !force && this.#durableInFlight >= MAX_DURABLE_IN_FLIGHT) {
      this.#deferred = true;
      return;
    }
    const used = this.#chunkUsed;
    const bytes = chunk.subarray(0, used);
    this.#chunk = undefined;
    this.#chunkUsed = 0;
    this.#chunkDurable = false;
    this.#deferred = false;
    this.#sharedDurable = undefined;
    this.#sharedWritten = undefined;
    // A record larger than a chunk had a buffer of its own: never pooled.
    this.#write(start, bytes, chunk.length === this.#chunkSize ? chunk : undefined, durable);
  }

  /**
   * Whether `length` bytes from `start` lie in one segment (always, for a
   * store without segments). A chunk across segments goes as a write and a
   * sync: the store would make it durable piece by piece, one call after the
   * other, and give each segment passed through a descriptor of its own for
   * durable writes.
   */
  #oneSegment(start: number, length: number): boolean {
    const size = this.#segmentSize;
    return size === 0 || Math.floor(start / size) === Math.floor((start + length - 1) / size);
  }

  /**
   * {@link Writer.waitTarget} for a waiting append (`target` past the first
   * byte of a record just staged). The waiting appends of one staged chunk
   * share one group-commit wait per level: the chunk goes to the store as
   * one write and the watermarks move over whole writes, so every target
   * inside it is reached at the same moment, or a failure rejects them all
   * (docs/INTERNALS.md §3). The promise may be shared: callers chain their
   * own result onto it.
   */
  waitAppended(target: number, level: WaitLevel): Promise<void> {
    const start = this.#chunkStart;
    if (this.#chunk === undefined || target <= start || target > start + this.#chunkUsed) {
      return this.waitTarget(target, level);
    }
    const durable = level === 'durable';
    const shared = durable ? this.#sharedDurable : this.#sharedWritten;
    if (shared !== undefined) {
      shared.extra++;
      return shared.promise;
    }
    const wait: SharedWait = { target, promise: this.waitTarget(target, level), extra: 0 };
    if (durable) {
      this.#sharedDurable = wait;
      this.#pendingDurable.push(wait);
    } else {
      this.#sharedWritten = wait;
      this.#pendingWritten.push(wait);
    }
    return wait.promise;
  }

  /**
   * The waiting appends that joined a shared durable wait released by a
   * flush that made everything below `durable` durable (counted once).
   */
  releasedDurable(durable: number): number {
    return releaseShared(this.#pendingDurable, durable);
  }

  /** Waiting appends pending on a shared wait besides the group commit's own waiter. */
  get sharedWaiters(): number {
    const gc = this.#log.gc;
    if (gc === undefined || gc.failure !== undefined) return 0;
    const limit = gc.poisonedAt ?? Number.POSITIVE_INFINITY;
    return (
      pendingShared(this.#pendingDurable, gc.durable, limit) +
      pendingShared(this.#pendingWritten, gc.written, limit)
    );
  }

  /**
   * Resolves once every byte below `target` is `written` or `durable`,
   * reserving what is staged first (docs/INTERNALS.md §3). With `delay`
   * false, a durable wait does not wait out `commitDelayMs`: for callers no
   * committer can join, or that need the bytes durable now (`sync()`,
   * `close()`, a `truncateAfter`; docs/DURABILITY.md §2).
   */
  waitTarget(target: number, level: WaitLevel, delay = true): Promise<void> {
    const gc = this.#log.gc!;
    if (target > gc.reserved) {
      try {
        gc.reserve(this.#log.tail);
      } catch (error) {
        return Promise.reject(error);
      }
    }
    if (level === 'written') return gc.waitWritten(target);
    if (this.#chunkUsed > 0 && target > this.#chunkStart) this.#chunkDurable = true;
    return delay ? gc.syncTo(target) : gc.syncTo(target, NO_DELAY);
  }

  /**
   * Resolves once staging is below its limit, at once if it is; rejects with
   * `error` if the log fails or closes first.
   */
  drained(): Promise<void> {
    if (this.#buffered < this.#log.stagingLimit) return Promise.resolve();
    return new Promise((resolve, reject) => this.#drainWaiters.push({ resolve, reject }));
  }

  /** `drained()` calls pending. */
  get drainWaiters(): number {
    return this.#drainWaiters.length;
  }

  /** Rejects every `drained()` waiter with `error` (a failure, or close). */
  rejectDrainWaiters(error: unknown): void {
    const waiters = this.#drainWaiters.splice(0);
    for (const waiter of waiters) waiter.reject(error);
  }

  /**
   * After a failure: drops the staged chunk (its records' waiters reject
   * with `error`) and releases its bytes (docs/INTERNALS.md §6).
   */
  dropStaged(error: unknown): void {
    const gc = this.#log.gc;
    if (this.#chunk !== undefined && this.#chunkUsed > 0 && gc !== undefined) {
      const start = this.#chunkStart;
      const reservedEnd = Math.min(gc.reserved, start + this.#chunkUsed);
      if (reservedEnd > start) gc.markFailed(start, reservedEnd, error);
      this.#releaseBuffered(this.#chunkUsed);
      this.#chunkUsed = 0;
    }
    this.#chunkDurable = false;
    this.#deferred = false;
    this.#sharedDurable = undefined;
    this.#sharedWritten = undefined;
  }

  /** Sends the writes held meanwhile, in order (they may be held again). */
  releaseHeld(): void {
    const held = this.#held;
    this.#held = [];
    for (const write of held) this.#issue(write.start, write.bytes, write.recycle, write.durable);
  }

  #addBuffered(bytes: number): void {
    this.#buffered += bytes;
    if (this.#buffered >= this.#log.stagingLimit) this.#log.blocked |= BLOCK_FULL;
  }

  #releaseBuffered(bytes: number): void {
    const log = this.#log;
    this.#buffered -= bytes;
    if (this.#buffered < log.stagingLimit && (log.blocked & BLOCK_FULL) !== 0) {
      log.blocked &= ~BLOCK_FULL;
      const waiters = this.#drainWaiters.splice(0);
      for (const waiter of waiters) waiter.resolve();
    }
  }

  #write(start: number, bytes: Uint8Array, recycle: Uint8Array | undefined, durable = false): void {
    const end = start + bytes.length;
    const gc = this.#log.gc!;
    if (end > gc.reserved) gc.reserve(end);
    this.#log.exclusivity.begin();
    if (durable) {
      this.#durableInFlight++;
      // The files gain from zeros written ahead as fdatasync does (FORMAT §8.4).
      this.#log.preallocation.syncAsked();
    }
    this.#issue(start, bytes, recycle, durable);
  }

  /**
   * Sends a counted write to the store, or holds it while zeros are written
   * where it goes, or while the store gate is closed.
   */
  #issue(
    start: number,
    bytes: Uint8Array,
    recycle: Uint8Array | undefined,
    durable: boolean,
  ): void {
    const log = this.#log;
    const end = start + bytes.length;
    if (log.gate.closed !== undefined || log.preallocation.holds(end)) {
      // Two writes in flight to the same range land in any order: wait.
      this.#held.push({ start, bytes, recycle, durable });
      return;
    }
    log.preallocation.extend(end);
    if (durable) {
      log.gate.enter();
      const sent = performance.now();
      log.store.writeDurable!(start, bytes).then(
        () => this.#durableDone(start, bytes, recycle, true, performance.now() - sent),
        (cause: unknown) => this.#durableDone(start, bytes, recycle, false, 0, cause),
      );
      return;
    }
    const now = writeNow(log, start, bytes);
    log.gate.enter();
    if (now === true) {
      this.#writeDone(start, end, recycle, undefined, true, true);
      return;
    }
    if (now !== false) {
      // Settled as a failed write in flight is, never inside the caller (an append).
      queueMicrotask(() => this.#writeDone(start, end, recycle, now.cause, false));
      return;
    }
    log.store.write(start, bytes).then(
      () => this.#writeDone(start, end, recycle, undefined, true),
      (cause: unknown) => this.#writeDone(start, end, recycle, cause, false),
    );
  }

  /**
   * Settles a durable write (`ok` after `elapsedMs`, or failed with `cause`),
   * then sends the chunk staged meanwhile if it waited for one to complete.
   * A failure the store latched (`WAL_FAILED`: the durable call itself
   * failed) poisons and latches the group commit and stops the log (a
   * reopen resumes at most at the durable watermark): whether its bytes, or
   * the earlier writes', reached the disk is unknown. A failure before the
   * durable call (the store did not latch it: nothing was written) turns
   * durable writes off for the handle and sends the chunk again as a plain
   * write, its waiters then waiting for the group commit's fdatasync
   * (docs/DURABILITY.md §2.2).
   */
  #durableDone(
    start: number,
    bytes: Uint8Array,
    recycle: Uint8Array | undefined,
    ok: boolean,
    elapsedMs: number,
    cause?: unknown,
  ): void {
    const log = this.#log;
    const end = start + bytes.length;
    log.gate.leave();
    const gc = log.gc!;
    this.#durableInFlight--;
    if (!ok && !latched(cause) && gc.failure === undefined) {
      log.durableWrites = false;
      // The write keeps the exclusivity and the staged bytes counted.
      this.#issue(start, bytes, recycle, false);
      if (this.#deferred && (log.blocked & (BLOCK_FAILED | BLOCK_READ_ONLY)) === 0) this.submit();
      return;
    }
    if (ok) {
      if (gc.failure === undefined) {
        const before = gc.durable;
        gc.markDurable(start, end, elapsedMs);
        if (gc.durable > before) log.durability.synced(gc.durable);
      }
      this.#landed(start, end, recycle, false);
    } else {
      gc.markDurableFailed(start, end, cause);
      log.durability.syncFailed(cause, start);
    }
    if (this.#deferred && (log.blocked & (BLOCK_FAILED | BLOCK_READ_ONLY)) === 0) this.submit();
    this.#releaseBuffered(end - start);
    log.exclusivity.end();
  }

  /**
   * Settles a write: `inline` when it was done synchronously inside
   * {@link Writer.submit} (a blocking write), whose caller must not meet a
   * subscriber. A failed write stops the log; a reopen resumes at its
   * offset, or at most at the durable watermark when the store latched the
   * failure.
   */
  #writeDone(
    start: number,
    end: number,
    recycle: Uint8Array | undefined,
    cause: unknown,
    ok: boolean,
    inline = false,
  ): void {
    const log = this.#log;
    log.gate.leave();
    const gc = log.gc!;
    if (ok) {
      if (gc.failure === undefined) gc.markWritten(start, end);
      this.#landed(start, end, recycle, inline);
    } else {
      gc.markFailed(start, end, cause);
      // A failure the store latched (`WAL_FAILED`: the directory fsync of a
      // new segment inside the write) is a failed sync as well: a reopen
      // resumes at most at the durable watermark, whether or not a durable
      // wait met the failure first (docs/DURABILITY.md §4, WAL_WRITE_FAILED).
      log.durability.fail(
        new WriteFailedError(start, { cause }),
        gc.poisonedAt ?? start,
        latched(cause),
        latched(cause),
      );
    }
    this.#releaseBuffered(end - start);
    log.exclusivity.end();
  }

  /** After the write of `[start, end)` landed and was reported: its buffer, zeros ahead, roll events. */
  #landed(start: number, end: number, recycle: Uint8Array | undefined, inline: boolean): void {
    const log = this.#log;
    if (recycle !== undefined && this.#pool.length * this.#chunkSize < log.stagingLimit) {
      this.#pool.push(recycle);
    }
    if (log.gc!.failure === undefined) releaseShared(this.#pendingWritten, log.gc!.written);
    log.preallocation.afterWrite(end);
    const segmentSize = this.#segmentSize;
    if (segmentSize !== 0 && inline) {
      // Subscribers run in a later microtask, as after a write in flight,
      // never inside the caller: an append may be sending the chunk before
      // it frames its record and moves the tail, and a subscriber may append.
      queueMicrotask(() => publishRolls(log, start, end, segmentSize));
    } else if (segmentSize !== 0) {
      publishRolls(log, start, end, segmentSize);
    }
  }
}

/** The `syncTo` options of a wait that does not wait out `commitDelayMs`. */
const NO_DELAY = { delay: false } as const;

/** Whether the store latched the failure `cause` of a write (`WAL_FAILED`, Store contract). */
function latched(cause: unknown): boolean {
  return (cause as { code?: unknown } | null)?.code === 'WAL_FAILED';
}

/**
 * Drops the shared waits of `pending` (in target order) whose target is at
 * most `watermark`; returns the appends that had joined them.
 */
function releaseShared(pending: SharedWait[], watermark: number): number {
  let extra = 0;
  while (pending.length > 0 && pending[0]!.target <= watermark) extra += pending.shift()!.extra;
  return extra;
}

/** The appends joined to the shared waits of `pending` above `watermark` and at most `limit`. */
function pendingShared(pending: readonly SharedWait[], watermark: number, limit: number): number {
  let extra = 0;
  for (const wait of pending)
    if (wait.target > watermark && wait.target <= limit) extra += wait.extra;
  return extra;
}
