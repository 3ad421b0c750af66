/** `wal dump <path>`: the records, one per line. */
import type { Wal } from '@wal/core';
import { isArgumentError, isWalError } from '@wal/errors';
import { CliError, EXIT } from '../errors.js';
import { openLog } from '../open.js';
import { formatRecord, type RecordFormat } from '../output.js';
import { type Io, type LogOptions, readingOf, withStore } from './shared.js';

export interface DumpOptions extends LogOptions {
  readonly from?: number;
  readonly limit?: number;
  readonly format?: RecordFormat;
  readonly json?: boolean;
}

/** Re-words the errors of a start LSN given by the user. */
export function startError(error: unknown, from: number, wal: Wal): unknown {
  if (isWalError(error, 'WAL_NOT_BOUNDARY')) {
    return new CliError(`--from ${from} is not a record boundary (no record starts there)`);
  }
  if (isWalError(error, 'WAL_TRUNCATED')) {
    return new CliError(`--from ${from} is below the head of the log (${wal.head})`);
  }
  if (isArgumentError(error, 'ERR_OUT_OF_RANGE')) {
    return new CliError(`--from ${from} is past the end of the log (${wal.tail})`);
  }
  return error;
}

export async function dump(path: string, options: DumpOptions, io: Io): Promise<number> {
  const format: RecordFormat = options.json === true ? 'json' : (options.format ?? 'utf8');
  return withStore(path, options, async (_target, store) => {
    const wal = await openLog(store, readingOf(options));
    try {
      let left = options.limit ?? Number.POSITIVE_INFINITY;
      if (left === 0) return EXIT.ok;
      const from = options.from ?? wal.head;
      let first = true;
      try {
        for await (const batch of wal.iterateBatches(from)) {
          first = false;
          for (const record of batch) {
            await io.out.line(formatRecord(record, format));
            if (--left === 0 || io.out.closed) return EXIT.ok;
          }
        }
      } catch (error) {
        throw first ? startError(error, from, wal) : error;
      }
      return EXIT.ok;
    } finally {
      await wal.close();
    }
  });
}
