/**
 * Restore: rebuilds a log from the stream alone, for when the machine that
 * wrote it is gone.
 */
import { readdir, stat } from 'node:fs/promises';
import { DeliverPolicy } from '@nats-io/jetstream';
import { Wal, type WalOptions, type WalSource } from '@wal/core';
import { BoundaryError, invalidArgValue, outOfRange, validateOffset } from '@wal/errors';
import { LogCopy } from './copy.js';
import { lastStart, readFence, readPlacement } from './message.js';
import {
  closeStream,
  lastPlaced,
  openStream,
  pullBytes,
  type StreamHandle,
  type StreamTarget,
  streamExtent,
} from './stream.js';

/** Options of {@link restore}. */
export interface RestoreOptions extends StreamTarget {
  /** Where to build the log: a missing or empty path (directory or file), or an empty store. */
  readonly into: WalSource;
  /** LSN of the last record to restore (default: every record the stream holds). */
  readonly to?: number;
  /** Options of the restored log (its layout, segment size, maximum record size). */
  readonly wal?: WalOptions;
}

/** What {@link restore} rebuilt. */
export interface RestoreReport {
  /** Records restored. */
  readonly records: number;
  /** The restored log's tail: the end of its last record. */
  readonly end: number;
  /** LSN of the last record restored, or `undefined` when none was. */
  readonly lastLsn: number | undefined;
  /** Stream sequence of the last message read. */
  readonly sequence: number;
}

async function refuseNonEmpty(into: WalSource): Promise<void> {
  if (typeof into !== 'string') return;
  let entries: string[];
  try {
    const info = await stat(into);
    if (!info.isDirectory()) {
      if (info.size === 0) return;
      throw invalidArgValue('options.into', into, 'must be a missing or empty path');
    }
    entries = await readdir(into);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  }
  if (entries.length > 0) {
    throw invalidArgValue('options.into', into, 'must be a missing or empty path');
  }
}

/**
 * Rebuilds a log from the stream: every record, in order, with the LSN it
 * had in the writer's log, up to the last complete record the stream holds
 * or up to the record at `to`. The result is byte-identical to the writer's
 * log over that range. Each record's frame CRC is checked after its parts
 * are joined; a message the consumer delivers again is checked against
 * the log (it must be the one taken) and skipped; a record whose parts end the stream unfinished (the writer
 * stopped mid-record) was never acknowledged and is left out.
 *
 * @throws `ERR_INVALID_ARG_VALUE` when `into` is not empty (nothing touched).
 * @throws `WAL_REPLICA_MISMATCH` for a missing stream, a gap in sequences or
 *   LSNs, or a message that is not a record; `WAL_NOT_BOUNDARY` when no
 *   record of the stream starts at `to`; `ERR_OUT_OF_RANGE` when `to` is past
 *   the stream's last record; `WAL_CORRUPTION` for a record failing its CRC;
 *   `WAL_RECORD_TOO_LARGE` above the restored log's maximum record size. On
 *   these errors, found while reading, `into` holds the records before the
 *   failure, a valid log.
 */
export async function restore(options: RestoreOptions): Promise<RestoreReport> {
  const to = options?.to;
  if (to !== undefined) validateOffset('options.to', to);
  await refuseNonEmpty(options?.into);
  const handle = await openStream(options, undefined);
  try {
    const { lastSeq } = await streamExtent(handle);
    if (to !== undefined) {
      // A seal carries no position: the message before it is the last.
      const placed = await lastPlaced(handle, lastSeq);
      let last: number | undefined;
      if (placed !== undefined) {
        const { header, data } = placed.message;
        const fence = readFence(header, data.length, placed.seq);
        // After a fence, the last record starts before the fence's tail.
        last =
          fence !== undefined ? fence.tail - 1 : lastStart(readPlacement(header, data, placed.seq));
      }
      if (last === undefined || last < to) {
        throw outOfRange('options.to', `at most the stream's last LSN (${last ?? 'none'})`, to);
      }
    }
    const wal = await Wal.open(options.into, options.wal);
    try {
      if (wal.tail !== 0 || wal.head !== 0) {
        throw invalidArgValue('options.into', 'a log', 'must be a missing or empty path');
      }
      const report = await copy(handle, wal, lastSeq, to);
      await wal.sync();
      return report;
    } finally {
      await wal.close();
    }
  } finally {
    await closeStream(handle);
  }
}

/** Appends the stream's records to `wal` (sequences 1..`lastSeq`), stopping after `to`. */
async function copy(
  handle: StreamHandle,
  wal: Wal,
  lastSeq: number,
  to: number | undefined,
): Promise<RestoreReport> {
  const log = new LogCopy(wal, handle.stream, 0, 0);
  let lastLsn: number | undefined;
  if (lastSeq === 0) return { records: 0, end: wal.tail, lastLsn, sequence: 0 };
  const consumer = await handle.js.consumers.get(handle.stream, {
    deliver_policy: DeliverPolicy.StartSequence,
    opt_start_seq: 1,
  });
  const messages = await consumer.consume({ max_bytes: pullBytes(handle.nc) });
  try {
    for await (const message of messages) {
      // A message delivered again is checked against the log and skipped.
      const lsn = await log.deliver(message.seq, message.headers, message.data, to);
      if (lsn !== undefined) lastLsn = lsn;
      if (lsn === to && to !== undefined) break;
      if (log.seq === lastSeq) break;
    }
  } finally {
    await messages.close();
  }
  if (to !== undefined && lastLsn !== to) {
    throw new BoundaryError(`no record of the stream starts at ${to}`, { offset: to });
  }
  return { records: log.records, end: wal.tail, lastLsn, sequence: log.seq };
}
