/**
 * The replicator: ships a writable log's durable records, in LSN order and in
 * batches, to a JetStream stream, and offers the `replicated` level.
 *
 * Invariants (cited as R1–R4 below):
 * - R1 The stream holds a prefix of the local durable log: only records the
 *   log made durable are published, in LSN order, on the epoch's subject,
 *   in messages sent one at a time (a run of whole records, or a part of a
 *   record too large for one), each expecting the stream's last sequence
 *   and its subject's last sequence to be the message before it, so nothing
 *   can be published out of order or on top of another writer's message, a
 *   seal or a fence.
 * - R2 `#seq` is the stream's last sequence and `#end` the end of the last
 *   record whose every message the stream acknowledged (`#partial` bytes of the
 *   next one, `#open`, are acknowledged too), updated at each acknowledgement.
 *   Both only grow, except when a resume re-reads them from the stream.
 * - R3 After any failed publish the stream is the authority: the next round
 *   first re-reads its last message and checks it against the local log
 *   (a publish whose acknowledgement was lost is then adopted, never sent a
 *   second time under a new sequence).
 * - R4 A waiter resolves only once `#end` passed its LSN, so its record is
 *   durable locally (R1) and stored by the stream's quorum.
 * - R5 A `truncateAfter` that drops bytes the stream holds (below `#end`, or
 *   the record `#open` is a part of), or turns out to hold (the message
 *   whose publish failed, `#unsure`, found stored when the stream is read
 *   again), stops the replicator with `WAL_REPLICA_MISMATCH` once known; a
 *   round publishes nothing after a cut it hears and resolves no waiter past
 *   it, so a record taking a dropped LSN is acknowledged only for its own
 *   bytes. Another writer's message after `#seq` is `WAL_REPLICA_FENCED`,
 *   cut or not.
 */
import diagnosticsChannel from 'node:diagnostics_channel';
import type { StoredMsg } from '@nats-io/jetstream';
import { CHANNELS, type TruncateEvent, type Wal } from '@wal/core';
import {
  ClosedError,
  invalidArgType,
  invalidArgValue,
  outOfRange,
  ReplicaFencedError,
  ReplicaMismatchError,
  TruncatedError,
  validateInteger,
  validateOffset,
  type WalError,
} from '@wal/errors';
import { collectMessages, isWrongLastSequence, type Outgoing, publishMessages } from './batch.js';
import type { LastRecord } from './copy.js';
import {
  type Placement,
  placementId,
  reachOf,
  readEpoch,
  readFence,
  readPlacement,
  readSeal,
} from './message.js';
import { afterFailure, sleep } from './retry.js';
import {
  closeStream,
  messageAt,
  openStream,
  partSize,
  type StreamHandle,
  type StreamTarget,
  streamExtent,
} from './stream.js';
import { logHolds, logHoldsMessage } from './verify.js';
import { Waiters } from './waiters.js';

/** Options of {@link Replicator.attach}. */
export interface ReplicatorOptions extends StreamTarget {
  /**
   * Replicas of the stream when the replicator creates it (1–5, default 3).
   * An existing stream keeps its own configuration.
   */
  readonly replicas?: number;
  /** Most messages published in one round (default 128). */
  readonly batchMessages?: number;
  /** Most payload bytes published in one round (default 4 MiB). */
  readonly batchBytes?: number;
  /** Milliseconds to wait for a publish's acknowledgement before retrying (default 2000). */
  readonly timeout?: number;
  /**
   * Milliseconds between checks for records made durable by someone else
   * (a `sync()` on the log itself), which are then shipped (default 100).
   */
  readonly interval?: number;
}

/** Counters of a replicator; they never hold a secret. */
export interface ReplicatorStats {
  /** Rounds: each ships up to a batch of messages. */
  readonly rounds: number;
  /** Messages the stream acknowledged (runs of records, and parts of split records). */
  readonly messages: number;
  /** Of those, acknowledged as duplicates of a message the stream already held. */
  readonly duplicates: number;
  /** Message data bytes acknowledged (a run's frames, a part's payload bytes). */
  readonly bytes: number;
  /** Failed rounds that were retried after re-reading the stream. */
  readonly retries: number;
  /** Message of the last error a retry followed (no secret: client errors carry none). */
  readonly lastRetryError: string | undefined;
}

/** The last record whose parts were all acknowledged. */
type Shipped = LastRecord;

/** Where a promoted follower's replicator starts: right after its fence. */
export interface TakeOverState {
  /** The fence's sequence. */
  readonly seq: number;
  /** The epoch the fence started. */
  readonly epoch: number;
  /** The log's last record (it ends at the fence's tail), if any. */
  readonly last: LastRecord | undefined;
}

/**
 * Makes the replicator of a follower whose fence the stream stored (not
 * exported from the package: {@link Follower.promote} is the way in).
 */
export let takeOver: (
  wal: Wal,
  handle: StreamHandle,
  options: ReplicatorOptions,
  state: TakeOverState,
) => Replicator;

/**
 * Checks the log (writable, open) and the shipping options.
 * @throws `ERR_INVALID_ARG_TYPE` / `ERR_INVALID_ARG_VALUE` / `ERR_OUT_OF_RANGE`, `WAL_CLOSED`.
 */
export function validateShipping(wal: Wal, options: ReplicatorOptions): void {
  if (typeof wal !== 'object' || wal === null || typeof wal.append !== 'function') {
    throw invalidArgType('wal', 'a Wal', wal);
  }
  if (wal.readOnly) throw invalidArgValue('wal', 'read-only', 'must be a writable log');
  if (wal.closed) throw new ClosedError('log');
  for (const name of ['batchMessages', 'batchBytes', 'timeout', 'interval'] as const) {
    if (options?.[name] !== undefined) {
      validateInteger(`options.${name}`, options[name], 1, 2 ** 31 - 1);
    }
  }
}

/**
 * Ships a writable {@link Wal} to a JetStream stream and offers the
 * `replicated` durability level: {@link Replicator.append},
 * {@link Replicator.appendBatch} and {@link Replicator.waitFor} resolve once
 * a record is durable locally and stored by the stream (a quorum of its
 * replicas). Concurrent waiters share fsyncs and publishes. Transient
 * failures (a server down, a lost acknowledgement, a leader election) are
 * retried without limit; a stream that does not hold this log, another
 * writer extending it or a promotion (`WAL_REPLICA_FENCED`), and a
 * connection its owner closed (`WAL_CLOSED`) stop the replicator
 * (`failure`) and reject every waiter.
 */
export class Replicator {
  readonly #wal: Wal;
  readonly #handle: StreamHandle;
  readonly #batchMessages: number;
  readonly #batchBytes: number;
  readonly #timeout: number;
  readonly #timer: NodeJS.Timeout;
  readonly #onTruncate: (message: unknown) => void;
  #seq = 0;
  #epoch = 0;
  #end = 0;
  #partial = 0;
  #last: Shipped | undefined;
  /** The record `#partial` bytes of which the stream holds, if any. */
  #open: Shipped | undefined;
  /** `truncateAfter` cuts of the log heard, and the lowest tail one left during this round. */
  #cuts = 0;
  #cutFloor = Number.POSITIVE_INFINITY;
  /**
   * The id of the message whose publish failed (stored or not, its
   * acknowledgement never came), until the stream is read again (R3, R5).
   */
  #unsure: string | undefined;
  #stale = false;
  #verifying: Promise<void> | undefined;
  #want = -1;
  readonly #waiters = new Waiters();
  #running: Promise<void> | undefined;
  #failure: WalError | undefined;
  #closed: Promise<void> | undefined;
  #stats = {
    rounds: 0,
    messages: 0,
    duplicates: 0,
    bytes: 0,
    retries: 0,
    lastRetryError: undefined as string | undefined,
  };

  static {
    takeOver = (wal, handle, options, state) => {
      const replicator = new Replicator(wal, handle, options);
      replicator.#seq = state.seq;
      replicator.#epoch = state.epoch;
      replicator.#end = wal.tail;
      replicator.#last = state.last;
      return replicator;
    };
  }

  private constructor(wal: Wal, handle: StreamHandle, options: ReplicatorOptions) {
    this.#wal = wal;
    this.#handle = handle;
    this.#batchMessages = options.batchMessages ?? 128;
    this.#batchBytes = options.batchBytes ?? 4 * 1024 * 1024;
    this.#timeout = options.timeout ?? 2000;
    this.#timer = setInterval(() => {
      if (this.#wal.durable > this.#end) this.#kick();
    }, options.interval ?? 100);
    this.#timer.unref();
    // A cut of this log: published once durable, before an append can take
    // a dropped LSN again, so the waiters of dropped records are told first.
    this.#onTruncate = (message) => {
      const event = message as TruncateEvent;
      if (event.wal === this.#wal && event.side === 'after') this.#cut(event.tail);
    };
    diagnosticsChannel.subscribe(CHANNELS.truncate, this.#onTruncate);
  }

  /**
   * Attaches to `wal` (writable, open) and to the stream, creating the stream
   * when it does not exist. An empty stream is shipped from offset 0; a
   * non-empty one is resumed from its last message, which must be a record
   * of this log, byte for byte.
   *
   * @throws `WAL_REPLICA_MISMATCH` when the stream holds another log's
   *   records, records this log does not have, has a gap or a message that is
   *   not a record, or when the stream is empty and the log's head is past 0
   *   (a restore could not give the records their LSNs).
   * @throws `WAL_REPLICA_FENCED` when a follower was promoted on the stream
   *   (it ends with a fence, or with a later writer's record this log does
   *   not hold): this log must follow the stream before it writes again.
   * @throws `TypeError` / `RangeError` with a `code` for bad options, and the
   *   client's connection errors (they name no secret).
   */
  static async attach(wal: Wal, options: ReplicatorOptions): Promise<Replicator> {
    validateShipping(wal, options);
    const handle = await openStream(options, options.replicas ?? 3);
    const replicator = new Replicator(wal, handle, options);
    try {
      await replicator.#resume(false);
    } catch (error) {
      await replicator.close();
      throw error;
    }
    return replicator;
  }

  /** End offset below which every record is acknowledged by the stream. */
  get replicated(): number {
    return this.#end;
  }

  /** The stream's last sequence as this replicator knows it. */
  get sequence(): number {
    return this.#seq;
  }

  /**
   * The writer epoch: 0 for the stream's first writer, one more for each
   * follower promoted since. Every record this replicator publishes carries it.
   */
  get epoch(): number {
    return this.#epoch;
  }

  /** The error that stopped the replicator, or `undefined`. */
  get failure(): WalError | undefined {
    return this.#failure;
  }

  /** A snapshot of the counters. */
  get stats(): ReplicatorStats {
    return { ...this.#stats };
  }

  /**
   * Appends `payload` to the log (its LSN reserved at once, in call order)
   * and resolves with the LSN once the record is `replicated`. Rejects with
   * the log's append errors, `WAL_CLOSED`, and the replicator's failure.
   */
  async append(payload: Uint8Array): Promise<number> {
    this.#check();
    const lsn = this.#wal.append(payload);
    await this.#await(lsn);
    return lsn;
  }

  /** {@link Replicator.append} for several payloads, all or none appended. */
  async appendBatch(payloads: readonly Uint8Array[]): Promise<number[]> {
    this.#check();
    const lsns = this.#wal.appendBatch(payloads);
    if (lsns.length > 0) await this.#await(lsns[lsns.length - 1]!);
    return lsns;
  }

  /**
   * Resolves once the record at `lsn` (appended to the log by anyone) is
   * `replicated`: durable locally and stored by the stream. Rejects with
   * `ERR_OUT_OF_RANGE` for an LSN not below the log's tail, `WAL_CLOSED`
   * after `close()`, and the replicator's failure.
   */
  async waitFor(lsn: number): Promise<void> {
    this.#check();
    validateOffset('lsn', lsn);
    if (lsn >= this.#wal.tail) {
      throw outOfRange('lsn', `< the log's tail (${this.#wal.tail})`, lsn);
    }
    await this.#await(lsn);
  }

  /** Resolves once every record appended to the log before the call is `replicated`. */
  async flush(): Promise<void> {
    this.#check();
    const tail = this.#wal.tail;
    if (tail > this.#end) await this.#await(tail - 1);
  }

  /**
   * Stops shipping: waits for the round in flight, rejects the waiters left
   * with `WAL_CLOSED` and closes the connection when the replicator opened
   * it. The log stays open. Idempotent.
   */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      clearInterval(this.#timer);
      diagnosticsChannel.unsubscribe(CHANNELS.truncate, this.#onTruncate);
      await this.#running;
      this.#settle(new ClosedError('replicator'));
      await closeStream(this.#handle);
    })();
    return this.#closed;
  }

  #check(): void {
    if (this.#closed !== undefined) throw new ClosedError('replicator');
    if (this.#failure !== undefined) throw this.#failure;
  }

  #await(lsn: number): Promise<void> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    if (lsn < this.#end) {
      // Below what was shipped: only if the log still holds what the stream
      // does (a truncateAfter may have handed this LSN out again).
      this.#verifying ??= this.#checkLast().finally(() => {
        this.#verifying = undefined;
      });
      return this.#verifying.catch((error: unknown) => {
        this.#fail(error as WalError);
        throw error;
      });
    }
    const promise = this.#waiters.wait(lsn);
    if (lsn > this.#want) this.#want = lsn;
    this.#kick();
    return promise;
  }

  #kick(): void {
    if (this.#running !== undefined || this.#closed !== undefined) return;
    if (this.#failure !== undefined) return;
    this.#running = this.#run().finally(() => {
      this.#running = undefined;
      // A waiter that arrived while the last round was ending.
      if (this.#want >= this.#end || this.#wal.durable > this.#end) this.#kick();
    });
  }

  /** Rounds until everything wanted and everything durable is shipped (R3 on failure). */
  async #run(): Promise<void> {
    let delay = 0;
    while (this.#closed === undefined && this.#failure === undefined) {
      if (this.#want >= this.#wal.tail) this.#dropCut();
      const wanted = this.#want >= this.#end;
      if (!wanted && this.#wal.durable <= this.#end) return;
      try {
        if (this.#stale) {
          await this.#resume(true);
          this.#stale = false;
        }
        if (wanted && this.#wal.durable <= this.#want) await this.#wal.sync();
        if (!(await this.#round()) && this.#wal.durable <= this.#end && !this.#stale) {
          // Nothing durable left to ship and no retry pending.
          if (this.#want >= this.#end) continue;
          return;
        }
        delay = 0;
      } catch (error) {
        const outcome = afterFailure(error, this.#handle.nc, this.#stats, delay);
        if ('stop' in outcome) {
          this.#fail(outcome.stop);
          return;
        }
        delay = outcome.retry;
        this.#stale = true;
        await sleep(delay);
      }
    }
  }

  /**
   * Re-reads the stream's last message and checks it against the local log
   * (R3); sets `#seq`, `#end`, `#partial`. During shipping, a stream grown by
   * a message this log does not hold means another writer: fenced.
   */
  async #resume(shipping: boolean): Promise<void> {
    const { lastSeq } = await streamExtent(this.#handle);
    if (shipping && lastSeq < this.#seq) {
      throw new ReplicaMismatchError(
        `stream ${this.#handle.stream} lost messages it acknowledged: its last sequence is ${lastSeq}, not ${this.#seq}`,
        { sequence: lastSeq },
      );
    }
    if (lastSeq === 0) {
      if (this.#wal.head !== 0) {
        throw new ReplicaMismatchError(
          `the log's head is ${this.#wal.head}: a stream must hold the log from offset 0, so that a restore gives its records the same LSNs`,
          { offset: this.#wal.head },
        );
      }
      this.#seq = 0;
      this.#end = 0;
      this.#partial = 0;
      this.#last = undefined;
      this.#open = undefined;
      this.#unsure = undefined;
      return;
    }
    const message = await messageAt(this.#handle, lastSeq);
    const seal = readSeal(message.header, message.data.length, lastSeq);
    if (seal !== undefined) {
      throw new ReplicaFencedError(
        `stream ${this.#handle.stream} is being taken over by a follower promoted to epoch ${seal}; this log may write again only after following the stream`,
        { sequence: this.#seq },
      );
    }
    const fence = readFence(message.header, message.data.length, lastSeq);
    if (fence !== undefined) {
      // Only the follower that published this fence writes after it.
      if (shipping && fence.epoch === this.#epoch && lastSeq === this.#seq) {
        this.#end = fence.tail;
        this.#partial = 0;
        this.#open = undefined;
        this.#unsure = undefined;
        this.#release();
        return;
      }
      throw new ReplicaFencedError(
        `stream ${this.#handle.stream} was taken over by a promoted follower (epoch ${fence.epoch}, at LSN ${fence.tail}); this log may write again only after following the stream`,
        { sequence: this.#seq, offset: fence.tail },
      );
    }
    const position = readPlacement(message.header, message.data, lastSeq);
    const epoch = readEpoch(message.header, lastSeq);
    if (shipping && epoch !== this.#epoch) {
      throw new ReplicaFencedError(
        `stream ${this.#handle.stream} was taken over by a writer of epoch ${epoch} past sequence ${this.#seq}; this replicator stopped`,
        { sequence: this.#seq, offset: position.lsn },
      );
    }
    const matches = await logHoldsMessage(this.#wal, position, message.data);
    if (!matches) {
      const dropped =
        shipping && lastSeq > this.#seq && (await this.#storedDropped(lastSeq, message));
      if (dropped !== false) {
        // Our own message, whose acknowledgement was lost, of records a cut dropped (R5).
        throw new ReplicaMismatchError(
          `stream ${this.#handle.stream} holds this replicator's message (sequence ${this.#seq + 1}, LSN ${dropped}), whose acknowledgement was lost, of records a truncateAfter dropped: replicated records cannot be cut`,
          { sequence: this.#seq + 1, offset: dropped },
        );
      }
      if ((shipping && lastSeq > this.#seq) || (!shipping && epoch > 0)) {
        throw new ReplicaFencedError(
          `another writer extended stream ${this.#handle.stream} past sequence ${this.#seq}; this replicator stopped`,
          { sequence: this.#seq, offset: position.lsn },
        );
      }
      throw new ReplicaMismatchError(
        `stream ${this.#handle.stream} does not hold this log: its message ${lastSeq} (LSN ${position.lsn}) differs from the log's record`,
        { sequence: lastSeq, offset: position.lsn },
      );
    }
    this.#end = position.lsn;
    this.#last = undefined;
    this.#epoch = epoch;
    this.#unsure = undefined;
    this.#stored(position, lastSeq);
    this.#release();
  }

  /**
   * Whether the message after `#seq` (the last one, `last`, at `lastSeq`,
   * or one before it) is the one whose publish failed (`#unsure`), and the
   * log no longer holds it: a cut dropped records the stream stored (R5).
   * Returns its LSN, or false when it is not this replicator's message
   * (another writer's: fenced) or the log still holds it.
   */
  async #storedDropped(lastSeq: number, last: StoredMsg): Promise<number | false> {
    if (this.#unsure === undefined) return false;
    const seq = this.#seq + 1;
    const { header, data } = seq === lastSeq ? last : await messageAt(this.#handle, seq);
    if (readSeal(header, data.length, seq) !== undefined) return false;
    if (readFence(header, data.length, seq) !== undefined) return false;
    const placement = readPlacement(header, data, seq);
    if (placementId(placement, readEpoch(header, seq)) !== this.#unsure) return false;
    // The last message is known not to be the log's; an earlier one is asked.
    if (seq !== lastSeq && (await logHoldsMessage(this.#wal, placement, data))) return false;
    return placement.lsn;
  }

  /**
   * Ships up to one batch of durable records (R1). Returns false when there
   * was nothing to ship.
   */
  async #round(): Promise<boolean> {
    // A cut lowers `durable` at once and is heard once durable: either way
    // the records read (or being published) may no longer be the log's (R5).
    const cuts = this.#cuts;
    this.#cutFloor = Number.POSITIVE_INFINITY;
    const durable = this.#wal.durable;
    const cut = () => this.#cuts !== cuts || this.#wal.durable < durable;
    if (durable <= this.#end) return false;
    await this.#checkLast();
    let messages: Outgoing[];
    try {
      messages = await collectMessages(this.#wal, this.#end, this.#partial, durable, {
        messages: this.#batchMessages,
        bytes: this.#batchBytes,
        partSize: partSize(this.#handle.nc),
      });
    } catch (error) {
      if (cut()) return true; // read again, after the cut
      throw error;
    }
    // Read while the log was being cut: read again (R1).
    if (cut()) return true;
    if (messages.length === 0) return false;
    this.#stats.rounds++;
    const { acks, failure } = await publishMessages(
      this.#handle,
      messages,
      this.#seq,
      this.#timeout,
      this.#epoch,
      {
        proceed: () => !cut() && this.#failure === undefined,
        acked: (ack, i) => {
          if (ack.duplicate) this.#stats.duplicates++;
          const { placement, data } = messages[i]!;
          this.#stats.messages++;
          this.#stats.bytes += data.length;
          this.#stored(placement, ack.seq);
        },
      },
    );
    // A message whose publish failed may be stored all the same (its
    // acknowledgement lost): the next read of the stream tells (R3, R5).
    const unsure = failure === undefined ? undefined : messages[acks.length];
    if (unsure !== undefined) this.#unsure = placementId(unsure.placement, this.#epoch);
    if (cut()) this.#refuseCut(Math.min(this.#cutFloor, this.#wal.durable));
    this.#release();
    if (failure === undefined) return true;
    if (!isWrongLastSequence(failure)) throw failure;
    // R3: the stream moved; the next round re-reads it.
    this.#stale = true;
    this.#stats.retries++;
    this.#stats.lastRetryError = String(failure);
    return true;
  }

  /** The log must still hold the last record shipped: a cut below it is refused. */
  async #checkLast(): Promise<void> {
    if (this.#below(this.#wal.tail)) {
      throw new ReplicaMismatchError(
        `the log was truncated to ${this.#wal.tail}, below ${this.#reach()}, which the stream already holds: replicated records cannot be cut`,
        { offset: this.#wal.tail, sequence: this.#seq },
      );
    }
    for (const record of [this.#last, this.#partial > 0 ? this.#open : undefined]) {
      if (record === undefined) continue;
      const same = await logHolds(this.#wal, { ...record, part: 0, size: 0 });
      if (!same) {
        throw new ReplicaMismatchError(
          `the log's record at ${record.lsn} is no longer the one the stream holds: replicated records cannot be cut`,
          { offset: record.lsn, sequence: this.#seq },
        );
      }
    }
  }

  /** True when a log cut to `tail` lost bytes the stream holds: a whole record, or a part (R5). */
  #below(tail: number): boolean {
    return tail < this.#end || (tail === this.#end && this.#partial > 0);
  }

  /** What the stream holds, for messages: `#end`, or where in the record at `#end` it stops. */
  #reach(): string {
    return this.#partial > 0
      ? `${this.#end} (part of its record up to byte ${this.#partial})`
      : String(this.#end);
  }

  /**
   * After a round that heard a cut to `floor`: the waiters below both are
   * replicated; if the stream holds bytes past `floor`, stops (R5).
   */
  #refuseCut(floor: number): void {
    if (!this.#below(floor)) return;
    const end = Math.min(this.#end, floor);
    this.#waiters.release((lsn) => lsn < end);
    throw new ReplicaMismatchError(
      `the log was truncated to ${floor} while the stream stored messages up to ${this.#reach()}: replicated records cannot be cut`,
      { offset: floor, sequence: this.#seq },
    );
  }

  /** The stream stored the message `placement` at `seq`, and every message before it (R2). */
  #stored(placement: Placement, seq: number): void {
    const reach = reachOf(placement);
    this.#seq = seq;
    this.#end = reach.end;
    this.#partial = reach.partial;
    if (reach.last !== undefined) this.#last = reach.last;
    this.#open =
      reach.partial > 0 && placement.kind === 'part'
        ? { lsn: placement.lsn, length: placement.length, crc: placement.crc }
        : undefined;
  }

  /** Resolves the waiters whose record is below `#end` (R4). */
  #release(): void {
    const end = this.#end;
    this.#waiters.release((lsn) => lsn < end);
  }

  /**
   * A `truncateAfter` of the log left its tail at `tail`: below what the
   * stream holds (a whole record, or a part of the record at `#end`), the
   * replicator stops (`WAL_REPLICA_MISMATCH`); otherwise the waiters of the
   * records it dropped reject with `WAL_TRUNCATED`, and a round in flight
   * publishes no more and checks what it got acknowledged (R5).
   */
  #cut(tail: number): void {
    this.#cuts++;
    if (tail < this.#cutFloor) this.#cutFloor = tail;
    if (this.#closed !== undefined || this.#failure !== undefined) return;
    if (this.#below(tail)) {
      this.#fail(
        new ReplicaMismatchError(
          `the log was truncated to ${tail}, below ${this.#reach()}, which the stream already holds: replicated records cannot be cut`,
          { offset: tail, sequence: this.#seq },
        ),
      );
      return;
    }
    this.#dropCut(tail);
  }

  /**
   * Rejects the waiters whose record a `truncateAfter` dropped before it was
   * shipped (`WAL_TRUNCATED`): those at or past `tail`, the log's tail after
   * the cut. What was shipped is checked by the next round.
   */
  #dropCut(tail = this.#wal.tail): void {
    this.#want = this.#waiters.release(
      () => false,
      (waiter) => {
        if (waiter.at < tail) return true;
        waiter.reject(
          new TruncatedError(
            `the record at ${waiter.at} was dropped by a truncateAfter before it was replicated`,
            { offset: waiter.at },
          ),
        );
        return false;
      },
    );
  }

  #fail(error: WalError): void {
    this.#failure ??= error;
    this.#settle(error);
  }

  #settle(error: unknown): void {
    this.#waiters.rejectAll(error);
  }
}
