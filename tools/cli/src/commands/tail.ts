/** `wal tail <path>`: the last records, and with `--follow` the ones appended after. */
import { HEADER_SIZE, type Wal, type WalRecord } from '@wal/core';
import { isWalError } from '@wal/errors';
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

/** The last `count` records of `wal`, read forward once and kept in a ring. */
async function lastRecords(wal: Wal, count: number): Promise<WalRecord[]> {
  if (count === 0) return [];
  const ring: WalRecord[] = [];
  for await (const batch of wal.iterateBatches()) {
    for (const record of batch) {
      ring.push({ lsn: record.lsn, payload: record.payload.slice() });
      if (ring.length > count) ring.shift();
    }
  }
  return ring;
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
      for (const record of await lastRecords(wal, options.lines ?? 10)) {
        await io.out.line(formatRecord(record, format));
      }
      if (options.follow !== true) return EXIT.ok;
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      let position = wal.tail;
      const interval = options.interval ?? 150;
      while (!stop && !io.out.closed) {
        await sleep(interval);
        if (stop) break;
        const end = await wal.refresh();
        if (position < wal.head || position > end) {
          // The writer truncated past our position: go on from where the log now is.
          io.err.write(
            `wal: the log was truncated (now LSN ${wal.head} to ${end}); following from LSN ${position < wal.head ? wal.head : end}\n`,
          );
          position = position < wal.head ? wal.head : end;
        }
        if (end === position) continue;
        try {
          for await (const batch of wal.iterateBatches(position)) {
            for (const record of batch) {
              await io.out.line(formatRecord(record, format));
              position = record.lsn + HEADER_SIZE + record.payload.length;
            }
          }
          position = Math.max(position, end);
        } catch (error) {
          // A truncation raced the read: go on from where the log now is.
          if (isWalError(error, 'WAL_TRUNCATED')) position = wal.head;
          else if (isWalError(error, 'WAL_NOT_BOUNDARY')) position = end;
          else throw error;
          io.err.write(`wal: the log was truncated; following from LSN ${position}\n`);
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
