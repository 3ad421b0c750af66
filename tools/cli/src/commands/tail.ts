/** `wal tail <path>`: the last records, and with `--follow` the ones appended after. */
import { crc32c, HEADER_SIZE, type Wal, type WalRecord } from '@wal/core';
import { isWalError } from '@wal/errors';
import type { Store } from '@wal/store';
import { EXIT } from '../errors.js';
import { openLog } from '../open.js';
import { formatRecord, type RecordFormat } from '../output.js';
import { type Io, type LogOptions, readingOf, withStore } from './shared.js';

export interface TailOptions extends LogOptions {
  readonly lines?: number;
  readonly follow?: boolean;
  readonly format?: RecordFormat;
  readonly json?: boolean;
  readonly interval?: number;
}

/**
 * A record `tail --follow` went past: where it is, and its frame header's
 * fields (its length, and the CRC-32C over the length and the payload,
 * docs/FORMAT.md §2), which tell whether that record is still in the log.
 */
interface Seen {
  readonly lsn: number;
  readonly length: number;
  readonly crc: number;
}

/** How many records a follower remembers, at least (more with a larger `-n`), to find where a cut went. */
const REMEMBERED = 4096;

const LENGTH = new Uint8Array(4);

/** What `tail --follow` remembers of `record`. */
function seenOf(record: WalRecord): Seen {
  const { lsn, payload } = record;
  const length = payload.length;
  new DataView(LENGTH.buffer).setUint32(0, length, true);
  return { lsn, length, crc: crc32c(payload, 0, length, crc32c(LENGTH, 0, 4)) };
}

/** The offset after `record`'s frame. */
const after = (record: Seen): number => record.lsn + HEADER_SIZE + record.length;

/**
 * The last `count` records of `wal` (read forward once and kept in a ring),
 * and what a follower remembers of the last `remember` ones (none when 0),
 * with whether those are every record from the head.
 */
async function lastRecords(
  wal: Wal,
  count: number,
  remember: number,
): Promise<{ records: WalRecord[]; seen: Seen[]; all: boolean }> {
  const records: WalRecord[] = [];
  let seen: Seen[] = [];
  let all = true;
  for await (const batch of wal.iterateBatches()) {
    for (const record of batch) {
      if (count > 0) {
        records.push({ lsn: record.lsn, payload: record.payload.slice() });
        if (records.length > count) records.shift();
      }
      if (remember > 0) {
        seen.push(seenOf(record));
        if (seen.length >= 2 * remember) {
          seen = seen.slice(-remember);
          all = false;
        }
      }
    }
  }
  if (seen.length > remember) {
    seen = seen.slice(-remember);
    all = false;
  }
  return { records, seen, all };
}

/**
 * Where a follower goes on after the writer changed the log under it: a
 * truncation of the head past its position, or a cut of the end (with
 * `truncateAfter`, or a recovery) below a record it went past — refilled
 * since or not.
 */
interface Resync {
  /** The LSN to follow from. */
  readonly from: number;
  /** True when records written after the cut, below `from`, may not be shown. */
  readonly unsure: boolean;
}

/**
 * The records a follower went past, newest last, and the cuts it finds by
 * them: each look checks that the last one is still in the log, at its LSN,
 * with the same length and checksum, which a cut below it changes even when
 * the writer appended past the old end before the look (the readable end
 * alone cannot tell). After a cut, the newest record still in the log is
 * where following goes on.
 */
class Trail {
  readonly #store: Store;
  readonly #limit: number;
  #records: Seen[] = [];
  /** Every record from this LSN to the position is remembered. */
  #since: number;

  constructor(store: Store, limit: number, records: Seen[], since: number) {
    this.#store = store;
    this.#limit = limit;
    this.#records = records;
    this.#since = since;
  }

  /** Remembers `record`, the next one after the last remembered. */
  add(record: WalRecord): void {
    this.#records.push(seenOf(record));
    if (this.#records.length >= 2 * this.#limit) {
      this.#records = this.#records.slice(-this.#limit);
      this.#since = this.#records[0]!.lsn;
    }
  }

  /** Forgets every record: the follower goes on from `from`. */
  #reset(from: number): void {
    this.#records = [];
    this.#since = from;
  }

  /** Whether `record` is still in the log read up to `end`, unchanged. */
  async #intact(record: Seen, head: number, end: number): Promise<boolean> {
    if (record.lsn < head || after(record) > end) return false;
    let header: Uint8Array;
    try {
      header = await this.#store.read(record.lsn, HEADER_SIZE);
    } catch {
      return false;
    }
    if (header.length < HEADER_SIZE) return false;
    const view = new DataView(header.buffer, header.byteOffset, HEADER_SIZE);
    return view.getUint32(0, true) === record.crc && view.getUint32(4, true) === record.length;
  }

  /**
   * Checks the log, read up to `end` with its head at `head`, against what
   * was followed up to `position`: `undefined` when following goes on there,
   * else where it goes on.
   */
  async check(position: number, head: number, end: number): Promise<Resync | undefined> {
    if (position <= head) {
      // The head reached the position: nothing of the log is left behind it.
      this.#reset(head);
      return position < head ? { from: head, unsure: false } : undefined;
    }
    const records = this.#records;
    const newest = records.length - 1;
    if (newest < 0) return position <= end ? undefined : this.lost(end);
    if (await this.#intact(records[newest]!, head, end)) {
      // Damaged records stepped over after it (--skip) may have been cut.
      return position <= end ? undefined : { from: after(records[newest]!), unsure: false };
    }
    for (let i = newest - 1; i >= 0 && records[i]!.lsn >= head; i--) {
      if (await this.#intact(records[i]!, head, end)) {
        records.length = i + 1;
        return { from: after(records[i]!), unsure: false };
      }
    }
    // None is left: the cut went to the head, when every record from the
    // head on is remembered; else below them, to a place unknown.
    if (this.#since <= head) {
      this.#reset(head);
      return { from: head, unsure: false };
    }
    return this.lost(end);
  }

  /** Goes on from the end `end`, where the cut is unknown. */
  lost(end: number): Resync {
    this.#reset(end);
    return { from: end, unsure: true };
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export async function tail(path: string, options: TailOptions, io: Io): Promise<number> {
  const format: RecordFormat = options.json === true ? 'json' : (options.format ?? 'utf8');
  return withStore(path, options, async (_target, store) => {
    const wal = await openLog(store, readingOf(options));
    let stop = false;
    const onSignal = () => {
      stop = true;
    };
    try {
      const count = options.lines ?? 10;
      if (count === 0 && options.follow !== true) return EXIT.ok;
      const follow = options.follow === true;
      const limit = Math.max(REMEMBERED, count + 1);
      const last = await lastRecords(wal, count, follow ? limit : 0);
      for (const record of last.records) await io.out.line(formatRecord(record, format));
      if (!follow) return EXIT.ok;
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      const trail = new Trail(store, limit, last.seen, last.all ? wal.head : last.seen[0]!.lsn);
      let position = wal.tail;
      /** Reading at `position` failed: the log changed under it. */
      let failed = false;
      const interval = options.interval ?? 150;
      while (!stop && !io.out.closed) {
        await sleep(interval);
        if (stop) break;
        const end = await wal.refresh();
        let resync = await trail.check(position, wal.head, end);
        // Reading failed, yet the last record looks unchanged: where the cut
        // went is unknown.
        if (resync === undefined && failed) resync = trail.lost(end);
        failed = false;
        if (resync !== undefined) {
          // The writer truncated below our position: go on from where the log now is.
          position = resync.from;
          io.err.write(
            `wal: the log was truncated (now LSN ${wal.head} to ${end}); following from LSN ${position}${
              resync.unsure
                ? ' (the cut was below the records remembered: records written after it, below that LSN, are not shown)'
                : ''
            }\n`,
          );
        }
        if (end <= position) continue;
        try {
          for await (const batch of wal.iterateBatches(position)) {
            for (const record of batch) {
              await io.out.line(formatRecord(record, format));
              trail.add(record);
              position = record.lsn + HEADER_SIZE + record.payload.length;
            }
          }
          // Past damaged records stepped over (--skip) too.
          position = Math.max(position, end);
        } catch (error) {
          // A truncation raced the read: the next look finds where to go on.
          if (!isWalError(error, 'WAL_TRUNCATED') && !isWalError(error, 'WAL_NOT_BOUNDARY')) {
            throw error;
          }
          failed = true;
        }
      }
      return EXIT.ok;
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      await wal.close();
    }
  });
}
