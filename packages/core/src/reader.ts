/**
 * Reading records in order for the iterators (docs/FORMAT.md §2, §7): one
 * store read per batch, the next read made ahead, every frame's length bound
 * and checksum checked, and what a truncation removed meanwhile dropped.
 * Internal to @wal/core: the log hands its iterators a {@link ReaderAccess}.
 */
import { CorruptionError, TruncatedError } from '@wal/errors';
import { frameIsValid, frameLength, HEADER_SIZE, lengthFits } from './frame.js';
import { StoredRecord } from './record.js';

const noop = (): void => {};

/** What the iterators may see of a log: closures over its private state. */
export interface ReaderAccess {
  quiet(): Promise<void>;
  validateStart(lsn: number, end: number, tail: number): Promise<void>;
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
      await wal.validateStart(this.#position, this.end, this.tail);
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
    if (this.#at < this.#batch.length) return { value: this.#batch[this.#at++]!, done: false };
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
