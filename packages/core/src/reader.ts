/**
 * Reading records in order for the iterators (docs/FORMAT.md §2, §7): one
 * store read per batch, the next read made ahead, every frame's length bound
 * and checksum checked, and what a truncation removed meanwhile dropped.
 * Internal to @wal/core: the log hands its iterators a {@link ReaderAccess}
 * ({@link readerAccess}) and makes them with {@link openReader}.
 */
import {
  ClosedError,
  CorruptionError,
  invalidArgType,
  outOfRange,
  rejectUnknownKeys,
  TruncatedError,
  validateOffset,
} from '@wal/errors';
import { frameIsValid, frameLength, HEADER_SIZE, lengthFits } from './frame.js';
import { READ_WINDOW } from './locate.js';
import { StoredRecord } from './record.js';
import { BLOCK_CLOSED, type LogState } from './state.js';

const noop = (): void => {};

/** What the iterators may see of a log: closures over its private state. */
export interface ReaderAccess {
  quiet(): Promise<void>;
  validateStart(lsn: number, end: number, tail: number, epoch: number): Promise<void>;
  clampEnd(end: number, epoch: number): number;
  head(): number;
  maxRecordSize(): number;
  skipped(lsn: number): boolean;
  readStore(offset: number, length: number): Promise<Uint8Array>;
  damaged(lsn: number): CorruptionError;
}

/**
 * Reads consecutive records for the iterators, one store read per batch,
 * checking every record's checksum. Internal.
 */
export class Reader {
  #position: number;
  #validated = false;
  #done = false;
  /** The next batch's read, started when the last batch was handed out. */
  #ahead: { position: number; read: Promise<Uint8Array> } | undefined;

  constructor(
    readonly wal: ReaderAccess,
    start: number,
    readonly end: number,
    readonly tail: number,
    readonly epoch: number,
    readonly batchBytes: number,
  ) {
    this.#position = start;
  }

  /** The next batch of records, or `undefined` at the end. */
  async next(): Promise<StoredRecord[] | undefined> {
    if (this.#done) return undefined;
    const wal = this.wal;
    await wal.quiet();
    if (!this.#validated) {
      await wal.validateStart(this.#position, this.end, this.tail, this.epoch);
      this.#validated = true;
    }
    for (;;) {
      const end = wal.clampEnd(this.end, this.epoch);
      const position = this.#position;
      const head = wal.head();
      const maxRecordSize = wal.maxRecordSize();
      if (position < head) {
        this.#done = true;
        throw new TruncatedError(
          `the iterator's position ${position} was removed by a truncation before ${head}`,
          { offset: position },
        );
      }
      if (position >= end) {
        this.#done = true;
        return undefined;
      }
      const ahead = this.#ahead;
      this.#ahead = undefined;
      let bytes =
        ahead !== undefined && ahead.position === position
          ? await ahead.read
          : await wal.readStore(position, Math.min(this.batchBytes, end - position));
      // A read made ahead may reach past a cut made since: never parse there.
      if (bytes.length > end - position) bytes = bytes.subarray(0, end - position);
      const records: StoredRecord[] = [];
      let at = 0;
      for (;;) {
        if (at + HEADER_SIZE > bytes.length) break;
        const length = frameLength(bytes, at);
        const lsn = position + at;
        if (!lengthFits(lsn, length, maxRecordSize, end)) {
          this.#done = true;
          throw new CorruptionError(
            `the frame at ${lsn} claims ${length} bytes, past the log's end or maximum record size`,
            { offset: lsn },
          );
        }
        if (at + HEADER_SIZE + length > bytes.length) {
          if (at > 0) break;
          // One record larger than the batch: read it whole (its length is checked).
          bytes = await wal.readStore(position, HEADER_SIZE + length);
          if (bytes.length < HEADER_SIZE + length) break;
        }
        const frameEnd = at + HEADER_SIZE + length;
        if (!frameIsValid(bytes, at, length)) {
          if (!wal.skipped(lsn)) {
            this.#done = true;
            throw wal.damaged(lsn);
          }
        } else {
          records.push(new StoredRecord(lsn, bytes, at + HEADER_SIZE, frameEnd));
        }
        at = frameEnd;
      }
      // A truncation may have run while reading: keep only what is still live.
      const liveEnd = wal.clampEnd(this.end, this.epoch);
      if (wal.head() > position) {
        this.#done = true;
        throw new TruncatedError(
          `the iterator's position ${position} was removed by a truncation before ${wal.head()}`,
          { offset: position },
        );
      }
      if (at === 0) {
        this.#done = true;
        return undefined;
      }
      this.#position = position + at;
      let kept = records.length;
      while (kept > 0 && records[kept - 1]!.lsn >= liveEnd) kept--;
      if (kept < records.length) {
        records.length = kept;
        this.#done = true;
      }
      if (records.length > 0) {
        this.#readAhead(liveEnd);
        return records;
      }
      if (this.#done) return undefined;
    }
  }

  /**
   * Starts reading the next batch while the caller works on this one. What
   * it reads is checked when used, exactly as a read made then: truncations
   * since are caught by the same checks (cuts, head).
   */
  #readAhead(end: number): void {
    const position = this.#position;
    if (this.#done || position >= end) return;
    const read = this.wal.readStore(position, Math.min(this.batchBytes, end - position));
    read.catch(noop); // used by the next call, if any
    this.#ahead = { position, read };
  }

  finish(): void {
    this.#done = true;
    this.#ahead = undefined;
  }

  /**
   * Whether the record at `lsn`, read by this reader, is still in the log:
   * false once a `truncateAfter` cut below it (the reader is then done).
   * @throws TruncatedError (`WAL_TRUNCATED`) once a `truncateBefore` moved
   *   the head past it, as the next read would (the reader is then done).
   */
  live(lsn: number): boolean {
    const head = this.wal.head();
    if (lsn < head) {
      this.finish();
      throw new TruncatedError(
        `the iterator's position ${lsn} was removed by a truncation before ${head}`,
        { offset: lsn },
      );
    }
    if (lsn < this.wal.clampEnd(this.end, this.epoch)) return true;
    this.finish();
    return false;
  }
}

/** The iterator of `Wal.iterate`: one record at a time, read in batches. */
export class RecordIterator implements AsyncIterableIterator<StoredRecord> {
  #batch: StoredRecord[] = [];
  #at = 0;

  constructor(readonly reader: Reader) {}

  [Symbol.asyncIterator](): AsyncIterableIterator<StoredRecord> {
    return this;
  }

  async next(): Promise<IteratorResult<StoredRecord>> {
    if (this.#at < this.#batch.length) {
      // Read with the batch, perhaps before a cut made since: never yielded past it.
      const record = this.#batch[this.#at++]!;
      let live = false;
      try {
        live = this.reader.live(record.lsn);
      } finally {
        if (!live) this.#batch = []; // done, or failed: nothing more from this batch
      }
      return live ? { value: record, done: false } : { value: undefined, done: true };
    }
    const batch = await this.reader.next();
    if (batch === undefined) return { value: undefined, done: true };
    this.#batch = batch;
    this.#at = 1;
    return { value: batch[0]!, done: false };
  }

  async return(): Promise<IteratorResult<StoredRecord>> {
    this.reader.finish();
    this.#batch = [];
    return { value: undefined, done: true };
  }
}

/** The iterator of `Wal.iterateBatches`: one batch (one store read) at a time. */
export class BatchIterator implements AsyncIterableIterator<StoredRecord[]> {
  constructor(readonly reader: Reader) {}

  [Symbol.asyncIterator](): AsyncIterableIterator<StoredRecord[]> {
    return this;
  }

  async next(): Promise<IteratorResult<StoredRecord[]>> {
    const batch = await this.reader.next();
    if (batch === undefined) return { value: undefined, done: true };
    return { value: batch, done: false };
  }

  async return(): Promise<IteratorResult<StoredRecord[]>> {
    this.reader.finish();
    return { value: undefined, done: true };
  }
}

const ITERATE_OPTIONS: ReadonlySet<string> = new Set(['batchBytes']);

/**
 * The batch size `Wal.iterateBatches` options ask for (default: one read
 * window). Throws `ERR_INVALID_ARG_TYPE` for options that are not an object
 * and `ERR_INVALID_ARG_VALUE` for an unknown key; the size itself is checked
 * by {@link openReader}.
 */
export function batchBytesOf(options: { batchBytes?: number } | undefined): number {
  if (options !== undefined) {
    if (typeof options !== 'object' || options === null) {
      throw invalidArgType('options', 'of type object', options);
    }
    rejectUnknownKeys('options', options, ITERATE_OPTIONS);
  }
  return options?.batchBytes ?? READ_WINDOW;
}

/**
 * A reader of `log` from `fromLsn` (default: the head) up to the written
 * watermark now, reading about `batchBytes` at a time. Throws argument
 * errors and `WAL_CLOSED`.
 */
export function openReader(
  log: LogState,
  access: ReaderAccess,
  fromLsn: number | undefined,
  batchBytes: number,
): Reader {
  if (fromLsn !== undefined) validateOffset('fromLsn', fromLsn);
  if (!Number.isInteger(batchBytes) || batchBytes < HEADER_SIZE) {
    throw outOfRange('options.batchBytes', `an integer >= ${HEADER_SIZE}`, batchBytes);
  }
  if ((log.blocked & BLOCK_CLOSED) !== 0) throw new ClosedError('log');
  return new Reader(
    access,
    fromLsn ?? log.head,
    log.written,
    log.tail,
    log.cuts.length,
    batchBytes,
  );
}

/** What the iterators may see of `log`. */
export function readerAccess(log: LogState): ReaderAccess {
  const { exclusivity, locator, writer } = log;
  // Where an iterator created at cut count `epoch` must stop, at most `end`.
  const clampEnd = (end: number, epoch: number): number => {
    const cuts = log.cuts;
    for (let i = epoch; i < cuts.length; i++) end = Math.min(end, cuts[i]!);
    return end;
  };
  return {
    // Waits while a truncateAfter runs (docs/INTERNALS.md §7).
    async quiet() {
      const quiet = exclusivity.quiet();
      if (quiet !== undefined) await quiet;
      if ((log.blocked & BLOCK_CLOSED) !== 0 && log.store.closed) throw new ClosedError('log');
    },
    async validateStart(lsn, end, tail, epoch) {
      const quiet = exclusivity.quiet();
      if (quiet !== undefined) await quiet;
      // A truncateAfter since the iterator was made cut at or below a start
      // that was in the log: the iterator ends at the cut (its first step
      // finds it done), whatever was at the start before.
      if (lsn <= tail && clampEnd(tail, epoch) <= lsn && lsn >= log.head) return;
      if ((lsn === end || lsn === tail) && lsn >= log.head) return;
      if (lsn > end && lsn < tail) {
        // Appended but not yet written when the iterator was made: nothing to
        // yield, but the start must still be a boundary.
        await writer.waitTarget(lsn + 1, 'written');
        await locator.locate(lsn, log.written);
        return;
      }
      await locator.locate(lsn, end);
    },
    clampEnd,
    head: () => log.head,
    maxRecordSize: () => log.maxRecordSize,
    skipped: (lsn) => log.skipped.has(lsn),
    readStore: (offset, length) => locator.readStore(offset, length),
    damaged: (lsn) => locator.damaged(lsn),
  };
}
