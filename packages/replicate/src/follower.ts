/**
 * The follower (read replica): consumes the stream into its own local log,
 * record for record at the same LSNs, and can be promoted to be the writer
 * behind a fence.
 *
 * Invariants (cited as F1–F3 below):
 * - F1 The local log is a prefix of the stream's history: `#copy.seq` is the
 *   last stream sequence taken, and every complete record up to it is in the
 *   log at its LSN, byte for byte (parts of one unfinished record may be
 *   held in memory). A message delivered again, at or below `#copy.seq`,
 *   changes nothing: it is checked against the log and skipped, or stops
 *   the follower when it is not the message taken (`LogCopy.retaken`).
 * - F2 A restart starts after the stream message that ends the local log's
 *   last record, found by binary search on LSNs and checked byte for byte:
 *   nothing already in the log is fetched again, except the run the log
 *   ends inside (a restart while its records were being appended), whose
 *   records below the log's tail are skipped.
 * - F3 A promotion first publishes a seal (no expectation: stored at once);
 *   every writer's publish expects the stream's last message to be its own
 *   subject's, so nothing of an earlier epoch is stored after the seal. It
 *   then takes everything up to the seal and publishes its fence expecting
 *   the last sequence it took, so every record acknowledged `replicated` is
 *   in the log before the fence.
 */
import { DeliverPolicy } from '@nats-io/jetstream';
import { HEADER_SIZE, type StoredRecord, type Wal } from '@wal/core';
import {
  ClosedError,
  FailedError,
  isWalError,
  ReplicaFencedError,
  ReplicaMismatchError,
  type WalError,
} from '@wal/errors';
import { isWrongLastSequence, publishFence, publishSeal } from './batch.js';
import { type LastRecord, LogCopy } from './copy.js';
import { reachOf, readEpoch, readFence, readPlacement } from './message.js';
import {
  type Replicator,
  type ReplicatorOptions,
  takeOver,
  validateShipping,
} from './replicator.js';
import { afterFailure, isFinal, sleep } from './retry.js';
import {
  closeStream,
  isStreamNotFound,
  lastPlaced,
  messageAt,
  openStream,
  pullBytes,
  type StreamHandle,
  streamExtent,
} from './stream.js';
import { logHoldsMessage, logHoldsRunRecord } from './verify.js';
import { Waiters } from './waiters.js';

/**
 * Options of {@link Follower.open}: the stream to follow, and the shipping
 * options of the {@link Replicator} a promotion returns.
 */
export type FollowerOptions = Omit<ReplicatorOptions, 'replicas'>;

/** How far a follower is behind the stream. */
export interface FollowerLag {
  /** Bytes of log (LSNs) the stream holds past the follower's tail. */
  readonly lsns: number;
  /**
   * Seconds between the store time of the stream's last message and that of
   * the last message the follower applied (0 when caught up): how old the
   * follower's view of the writer is.
   */
  readonly seconds: number;
  /** Messages of the stream not taken yet. */
  readonly messages: number;
}

/** Counters of a follower. */
export interface FollowerStats {
  /** Stream messages delivered to the follower (runs of records, parts of split records). */
  readonly messages: number;
  /**
   * Of those, messages delivered again at or below the sequence already
   * taken (a consumer recreated on a replica behind the others), checked
   * against the log byte for byte and skipped. `messages - duplicates` is
   * what the follower took since it opened: after a restart, only what its
   * log did not hold (F2).
   */
  readonly duplicates: number;
  /** Records appended to the local log. */
  readonly records: number;
  /** Fences taken (promotions seen). */
  readonly fences: number;
  /**
   * Single messages read to find where to start (a binary search on LSNs),
   * and to check that a new consumer's stream continues the log.
   */
  readonly lookups: number;
  /** Failures of the consumer that were retried. */
  readonly retries: number;
  /** Message of the last error a retry followed. */
  readonly lastRetryError: string | undefined;
}

/** Milliseconds without a message, while the stream holds more, after which a consumer is replaced. */
const STALL = 3000;

/** Attempts of a promotion before it gives up (the stream keeps moving or stays unreachable). */
const PROMOTE_ATTEMPTS = 20;

/**
 * Where a follower starts: after the stream message ending the log's last
 * record, or at the run the log's tail is inside (F2).
 */
interface Start {
  readonly seq: number;
  /** Sequence of a run ending past the log's tail (its records below the tail are in the log), or 0. */
  readonly within: number;
  readonly epoch: number;
  readonly last: LastRecord | undefined;
  readonly time: number;
  readonly lookups: number;
}

async function findStart(handle: StreamHandle, wal: Wal): Promise<Start> {
  const tail = wal.tail;
  if (tail === 0) return { seq: 0, within: 0, epoch: 0, last: undefined, time: 0, lookups: 0 };
  const { lastSeq } = await streamExtent(handle);
  let lookups = 0;
  // A seal's key is the key of the message before it (-1 for none).
  const key = async (seq: number): Promise<number> => {
    lookups++;
    const placed = await lastPlaced(handle, seq);
    if (placed === undefined) return -1;
    const { header, data } = placed.message;
    const fence = readFence(header, data.length, placed.seq);
    return fence !== undefined ? fence.tail : readPlacement(header, data, placed.seq).lsn;
  };
  // LSNs (and fence tails) never decrease along the stream: the largest
  // sequence whose (first) LSN is below the tail ends the log's last record,
  // or is a seal after it, or a run the tail is inside (the follower
  // stopped while appending its records).
  let lo = 0;
  let hi = lastSeq;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if ((await key(mid)) < tail) lo = mid;
    else hi = mid - 1;
  }
  const diverged = () =>
    new ReplicaMismatchError(
      `the log's tail ${tail} is not the end of a record of stream ${handle.stream}: the log holds records the stream does not`,
      { offset: tail, sequence: lo },
    );
  const placed = lo === 0 ? undefined : await lastPlaced(handle, lo);
  if (placed === undefined) throw diverged();
  lo = placed.seq;
  const message = placed.message;
  if (readFence(message.header, message.data.length, lo) !== undefined) throw diverged();
  const placement = readPlacement(message.header, message.data, lo);
  const epoch = readEpoch(message.header, lo);
  const time = message.time.getTime();
  const reach = reachOf(placement);
  if (reach.end !== tail) {
    // Inside a run: the record ending at the tail must be the log's.
    const inside =
      placement.kind === 'run'
        ? placement.records.find((r) => r.lsn + HEADER_SIZE + r.length === tail)
        : undefined;
    if (inside === undefined || !(await logHoldsRunRecord(wal, inside, message.data))) {
      throw diverged();
    }
    const last = { lsn: inside.lsn, length: inside.length, crc: inside.crc };
    // The run is taken again, its records below the tail skipped.
    return { seq: lo - 1, within: lo, epoch, last, time, lookups: lookups + 1 };
  }
  if (reach.last === undefined || !(await logHoldsMessage(wal, placement, message.data))) {
    throw diverged();
  }
  return { seq: lo, within: 0, epoch, last: reach.last, time, lookups: lookups + 1 };
}

/**
 * A read replica: follows a stream written by a {@link Replicator} into a
 * local log, each record at the LSN it has in the writer's log, byte for
 * byte, and keeps following until closed or promoted. Read the log you
 * passed (`read`, `iterate`); never append to it yourself. Transient
 * failures (a server down, a dropped connection) are retried without limit;
 * a stream that does not continue the log, a deleted stream (the servers
 * said "stream not found" for 5 s: `WAL_REPLICA_MISMATCH`), and a
 * connection its owner closed (`WAL_CLOSED`), stop the follower
 * (`failure`): its waiters reject with it, and it holds no consumer and no
 * timer (`close()` it to close a connection it opened).
 */
export class Follower {
  readonly #wal: Wal;
  readonly #handle: StreamHandle;
  readonly #options: FollowerOptions;
  readonly #copy: LogCopy;
  #appliedAt: number;
  #messages: { close(): Promise<unknown> } | undefined;
  #running: Promise<void> | undefined;
  #stop = false;
  #closed: Promise<void> | undefined;
  #promoted = false;
  #promoting: Promise<Replicator> | undefined;
  #failure: WalError | undefined;
  readonly #waiters = new Waiters();
  #sinceSync = 0;
  #stats = {
    messages: 0,
    duplicates: 0,
    records: 0,
    fences: 0,
    lookups: 0,
    retries: 0,
    lastRetryError: undefined as string | undefined,
  };

  private constructor(wal: Wal, handle: StreamHandle, options: FollowerOptions, start: Start) {
    this.#wal = wal;
    this.#handle = handle;
    this.#options = options;
    this.#copy = new LogCopy(wal, handle.stream, start.seq, start.epoch, start.last, start.within);
    this.#appliedAt = start.time;
    this.#stats.lookups = start.lookups;
  }

  /**
   * Starts following the stream into `wal` (writable, open): an empty log
   * from the stream's first message, a non-empty one (a follower's log after
   * a restart, a restored log) after the message ending its last record,
   * which must be that record byte for byte (F2).
   *
   * @throws `WAL_REPLICA_MISMATCH` for a missing stream, or a log that holds
   *   records the stream does not (another log, or a fenced writer's records
   *   never replicated: see DURABILITY.md §7 for what to do).
   * @throws `TypeError` / `RangeError` with a `code` for bad arguments, and
   *   the client's connection errors.
   */
  static async open(wal: Wal, options: FollowerOptions): Promise<Follower> {
    validateShipping(wal, options);
    const handle = await openStream(options, undefined);
    let start: Start;
    try {
      start = await findStart(handle, wal);
    } catch (error) {
      await closeStream(handle);
      throw error;
    }
    const follower = new Follower(wal, handle, options, start);
    follower.#running = follower.#follow(() => follower.#stop);
    return follower;
  }

  /** The local log's tail: every record below it is applied. */
  get applied(): number {
    return this.#wal.tail;
  }

  /** The last stream sequence taken. */
  get sequence(): number {
    return this.#copy.seq;
  }

  /** The writer epoch the follower is in (fences seen on the stream). */
  get epoch(): number {
    return this.#copy.epoch;
  }

  /** The error that stopped the follower, or `undefined`. */
  get failure(): WalError | undefined {
    return this.#failure;
  }

  /** A snapshot of the counters. */
  get stats(): FollowerStats {
    return { ...this.#stats, records: this.#copy.records, fences: this.#copy.fences };
  }

  /** Reads the record at `lsn` from the local log (the log's `read`). */
  read(lsn: number): Promise<Uint8Array> {
    return this.#wal.read(lsn);
  }

  /** Iterates the local log's records from `fromLsn` (the log's `iterate`). */
  iterate(fromLsn?: number): AsyncIterableIterator<StoredRecord> {
    return this.#wal.iterate(fromLsn);
  }

  /**
   * Asks the stream how far behind the follower is.
   *
   * @throws `WAL_CLOSED` after `close()`, the follower's failure,
   *   `WAL_REPLICA_MISMATCH` for a stream deleted or with a gap, and the
   *   client's errors.
   */
  async lag(): Promise<FollowerLag> {
    this.#check();
    const { lastSeq } = await streamExtent(this.#handle);
    const seq = this.#copy.seq;
    if (lastSeq <= seq) return { lsns: 0, seconds: 0, messages: 0 };
    const last = await messageAt(this.#handle, lastSeq);
    // A seal carries no position: the message before it ends the history.
    const placed = await lastPlaced(this.#handle, lastSeq);
    let end = 0;
    if (placed !== undefined) {
      const { header, data } = placed.message;
      const fence = readFence(header, data.length, placed.seq);
      end = fence !== undefined ? fence.tail : reachOf(readPlacement(header, data, placed.seq)).end;
    }
    const since = seq === 0 ? (await messageAt(this.#handle, 1)).time.getTime() : this.#appliedAt;
    return {
      lsns: Math.max(0, end - this.#wal.tail),
      seconds: Math.max(0, (last.time.getTime() - since) / 1000),
      messages: lastSeq - seq,
    };
  }

  /**
   * Resolves once the follower took every message the stream held at the
   * call, and the records are durable in the local log.
   *
   * @throws `WAL_CLOSED` after `close()` or a promotion, the follower's
   *   failure, and the client's errors.
   */
  async caughtUp(): Promise<void> {
    this.#check();
    const { lastSeq } = await streamExtent(this.#handle);
    if (lastSeq > this.#copy.seq) {
      await this.#waiters.wait(lastSeq);
    }
    await this.#wal.sync();
  }

  /**
   * Makes this follower the writer (F3), in bounded time even while the old
   * writer still publishes flat out: stops following, publishes a **seal**
   * for the next epoch (expecting nothing, so it is stored at once; from
   * then on no writer of an earlier epoch can extend the stream: each of
   * its publishes expects the last message to be on its epoch's subject),
   * takes everything the stream holds up to it, and publishes a **fence**
   * expecting the last sequence it took. Once the
   * stream stored the fence, makes the log durable and returns a
   * {@link Replicator} on the log, in the next epoch; the follower is done
   * (the replicator owns the connection from then on). A record left
   * unfinished by the old writer was never acknowledged: the seal voids it.
   * The old writer's next publish fails, and it stops with
   * `WAL_REPLICA_FENCED`, rejecting every pending append.
   *
   * A second call while a promotion runs returns the same promise (one
   * promotion, one replicator). A `close()` during a promotion stops it
   * before its next publish (it rejects with `WAL_CLOSED`, and `close()`
   * resolves once it stopped); once the fence is stored the promotion
   * completes and the returned replicator owns the connection.
   *
   * @throws `WAL_CLOSED` after or during `close()`, the follower's failure,
   *   `WAL_REPLICA_FENCED` when another promotion kept taking the stream
   *   through every attempt (promote one follower at a time), and the
   *   client's errors after repeated transient failures. On a throw the
   *   follower is stopped (later calls fail with that error, or
   *   `WAL_FAILED` carrying a client's error as its cause); close it.
   */
  promote(): Promise<Replicator> {
    if (this.#promoting !== undefined) return this.#promoting;
    try {
      this.#check();
    } catch (error) {
      return Promise.reject(error);
    }
    // Settled, it is forgotten: later calls fail (WAL_CLOSED once promoted,
    // or the failure that stopped the promotion).
    this.#promoting = this.#promote().then(
      (replicator) => {
        this.#promoting = undefined;
        return replicator;
      },
      (error: unknown) => {
        this.#promoting = undefined;
        // Stopped for good: later calls (caughtUp, promote) fail with it.
        this.#fail(
          isWalError(error)
            ? error
            : new FailedError(`the promotion on stream ${this.#handle.stream} failed`, {
                cause: error,
              }),
        );
        throw error;
      },
    );
    return this.#promoting;
  }

  async #promote(): Promise<Replicator> {
    this.#stop = true;
    this.#interrupt();
    await this.#running;
    this.#running = undefined;
    const timeout = this.#options.timeout ?? 2000;
    const closing = () => this.#closed !== undefined;
    let lastError: unknown;
    for (let attempt = 0; attempt < PROMOTE_ATTEMPTS; attempt++) {
      if (closing()) throw new ClosedError('follower');
      if (this.#failure !== undefined) throw this.#failure;
      try {
        const epoch = this.#copy.epoch + 1;
        // The stream stops moving: only seals and fences can follow.
        const sealed = await publishSeal(this.#handle, epoch, timeout);
        await this.#follow(() => closing() || this.#copy.seq >= sealed);
        if (this.#failure !== undefined) throw this.#failure;
        if (closing()) throw new ClosedError('follower');
        // Another follower promoted meanwhile: seal the epoch after its.
        if (this.#copy.epoch >= epoch) continue;
        const fence = { tail: this.#wal.tail, epoch };
        const seq = await publishFence(this.#handle, fence, this.#copy.seq, timeout);
        // The fence is stored: the promotion is done, also when close()
        // was called meanwhile (the returned replicator owns the connection).
        // Durable before the replicator ships anything (its R1). A crash
        // before this sync loses nothing: restarted, the follower takes the
        // records again from the stream, up to the fence.
        await this.#wal.sync();
        this.#copy.dropUnfinished();
        this.#promoted = true;
        this.#waiters.rejectAll(new ClosedError('follower'));
        this.#closed ??= Promise.resolve();
        return takeOver(this.#wal, this.#handle, this.#options, {
          seq,
          epoch,
          last: this.#copy.last,
        });
      } catch (error) {
        if (isFinal(error)) throw error;
        lastError = error;
        if (!isWrongLastSequence(error)) await sleep(Math.min(1000, 50 * 2 ** attempt));
      }
    }
    if (lastError === undefined || isWrongLastSequence(lastError)) {
      throw new ReplicaFencedError(
        `stream ${this.#handle.stream}: another promotion took it through ${PROMOTE_ATTEMPTS} attempts; promote one follower at a time`,
        { sequence: this.#copy.seq },
      );
    }
    throw lastError;
  }

  /**
   * Stops following and closes the connection when the follower opened it;
   * the log stays open. Waiters reject with `WAL_CLOSED`. Idempotent.
   */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      this.#stop = true;
      this.#interrupt();
      await this.#running;
      // A promotion under way stops before its next publish, or completes
      // when its fence is stored already.
      await this.#promoting?.catch(() => undefined);
      this.#waiters.rejectAll(new ClosedError('follower'));
      if (!this.#promoted) await closeStream(this.#handle);
    })();
    return this.#closed;
  }

  #check(): void {
    if (this.#closed !== undefined) throw new ClosedError('follower');
    if (this.#failure !== undefined) throw this.#failure;
  }

  /** Consumes the stream from the next sequence until `done()` (F1), retrying transient failures. */
  async #follow(done: () => boolean): Promise<void> {
    let delay = 0;
    while (!done() && this.#failure === undefined) {
      try {
        const consumer = await this.#handle.js.consumers.get(this.#handle.stream, {
          deliver_policy: DeliverPolicy.StartSequence,
          opt_start_seq: this.#copy.seq + 1,
        });
        // Short heartbeats: a server lost under the consumer is noticed in
        // seconds and the consumer recreated where it stopped.
        const messages = await consumer.consume({
          max_bytes: pullBytes(this.#handle.nc),
          expires: 5000,
          idle_heartbeat: 1000,
        });
        this.#messages = messages;
        const watchdog = this.#watch(messages);
        // The consumer (this one, or one the client created again under
        // it, named anew) whose stream was checked to continue the log.
        let checked: string | undefined;
        try {
          if (done()) return;
          for await (const m of messages) {
            watchdog.last = Date.now();
            if (m.seq > this.#copy.seq && m.info.consumer !== checked) {
              await this.#checkContinues();
              checked = m.info.consumer;
            }
            this.#stats.messages++;
            if (m.seq <= this.#copy.seq) {
              // Already taken (F1). Servers before 2.11 start a consumer
              // created on a replica that is behind on applies (the one
              // of three a quorum acknowledgement did not wait for, or a
              // server just restarted) at that replica's last sequence + 1
              // when the start asked for is past it, so messages taken
              // through an earlier consumer come again. A stream never
              // changes a stored message: one that is the message taken is
              // skipped; one that is not is another stream (F1 would
              // break), WAL_REPLICA_MISMATCH.
              this.#stats.duplicates++;
              await this.#copy.retaken(m.seq, m.headers, m.data);
              continue;
            }
            await this.#copy.take(m.seq, m.headers, m.data);
            this.#appliedAt = m.time.getTime();
            if (m.info.pending === 0 || ++this.#sinceSync >= 256) {
              this.#sinceSync = 0;
              await this.#wal.sync();
            }
            this.#release();
            delay = 0;
            if (done()) break;
          }
        } finally {
          clearInterval(watchdog.timer);
          this.#messages = undefined;
          // Not awaited: it settles only once the iteration ended, which it
          // may never have begun.
          messages.close().catch(() => undefined);
        }
      } catch (caught) {
        // "Stream not found" (creating a consumer on a deleted stream):
        // asked again as the replicator asks, it is WAL_REPLICA_MISMATCH once
        // the servers kept saying so for 5 s, and retried if the stream is
        // back (a new consumer then checks it continues the log).
        const error =
          !done() && isStreamNotFound(caught)
            ? await streamExtent(this.#handle).then(
                () => caught,
                (answer: unknown) => answer,
              )
            : caught;
        const outcome = afterFailure(error, this.#handle.nc, this.#stats, delay);
        if ('stop' in outcome) {
          this.#fail(outcome.stop);
          return;
        }
        delay = outcome.retry;
        await sleep(delay);
      }
    }
  }

  /**
   * Checks, before a new consumer's first new message is taken, that the
   * stream still holds the last message taken, byte for byte (`retaken`):
   * a stream deleted and created again under the same name (another log's,
   * or one that lost messages) must not be continued from the sequence
   * reached in the old one.
   *
   * @throws `WAL_REPLICA_MISMATCH` when it does not (or lacks the message).
   */
  async #checkContinues(): Promise<void> {
    const seq = this.#copy.seq;
    if (seq === 0) return;
    this.#stats.lookups++;
    const message = await messageAt(this.#handle, seq);
    await this.#copy.retaken(seq, message.header, message.data);
  }

  /**
   * Watches a consumer: when no message came for {@link STALL} ms while the
   * stream holds more (or the stream cannot be asked), ends its iteration,
   * so that a new consumer starts after the last message taken. (A consumer
   * whose server died does not always recover on its own.) A final answer
   * about the stream (`WAL_REPLICA_MISMATCH`: deleted, or with a gap) stops
   * the follower instead.
   */
  #watch(messages: { close(): Promise<unknown> }): { last: number; timer: NodeJS.Timeout } {
    const state = { last: Date.now(), timer: undefined as unknown as NodeJS.Timeout };
    let asking = false;
    const stalled = () => {
      this.#stats.retries++;
      this.#stats.lastRetryError = 'the consumer stalled';
      messages.close().catch(() => undefined);
    };
    state.timer = setInterval(() => {
      if (asking || Date.now() - state.last < STALL) return;
      asking = true;
      streamExtent(this.#handle)
        .then(
          ({ lastSeq }) => {
            if (lastSeq > this.#copy.seq && Date.now() - state.last >= STALL) stalled();
          },
          (error: unknown) => {
            if (!isFinal(error)) return stalled();
            this.#fail(error as WalError);
            messages.close().catch(() => undefined);
          },
        )
        .finally(() => {
          asking = false;
        });
    }, STALL / 2);
    state.timer.unref();
    return state;
  }

  /** Ends the consumer's iteration, if one runs; `#follow` then checks its stop condition. */
  #interrupt(): void {
    this.#messages?.close().catch(() => undefined);
  }

  #release(): void {
    const seq = this.#copy.seq;
    this.#waiters.release((at) => at <= seq);
  }

  #fail(error: WalError): void {
    this.#failure ??= error;
    this.#waiters.rejectAll(error);
  }
}
