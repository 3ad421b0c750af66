/**
 * Restore: rebuilds a log from the stream alone, for when the machine that
 * wrote it is gone.
 */
import { readdir, stat } from 'node:fs/promises';
import { DeliverPolicy } from '@nats-io/jetstream';
import { Wal, type WalOptions, type WalSource } from '@wal/core';
import {
  BoundaryError,
  ClosedError,
  FailedError,
  invalidArgValue,
  isWalError,
  outOfRange,
  validateOffset,
} from '@wal/errors';
import { LogCopy } from './copy.js';
import { lastStart, readFence, readPlacement } from './message.js';
import { isFinal, sleep } from './retry.js';
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
  /**
   * Where to build the log: a missing or empty path (directory or file; an
   * empty file becomes a one-file log unless `wal.layout` says otherwise),
   * or an empty store.
   */
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

/** Refuses a non-empty path; true when `into` is an existing empty file. */
async function refuseNonEmpty(into: WalSource): Promise<boolean> {
  if (typeof into !== 'string') return false;
  let entries: string[];
  try {
    const info = await stat(into);
    if (!info.isDirectory()) {
      if (info.size === 0) return true;
      throw invalidArgValue('options.into', into, 'must be a missing or empty path');
    }
    entries = await readdir(into);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
  if (entries.length > 0) {
    throw invalidArgValue('options.into', into, 'must be a missing or empty path');
  }
  return false;
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
 *   the stream's last complete record; `WAL_CORRUPTION` for a record failing its CRC;
 *   `WAL_RECORD_TOO_LARGE` above the restored log's maximum record size.
 * @throws `WAL_CLOSED` when the connection closes before every record is
 *   read, and `WAL_FAILED` when no message came for 60 s (a consumer
 *   that stalls for 3 s is replaced from the message after the last one
 *   taken, so servers back within that time let it complete). On these errors, and the ones above found while reading,
 *   `into` holds the records before the failure, a valid log.
 */
export async function restore(options: RestoreOptions): Promise<RestoreReport> {
  const to = options?.to;
  if (to !== undefined) validateOffset('options.to', to);
  const emptyFile = await refuseNonEmpty(options?.into);
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
        if (fence !== undefined) {
          last = fence.tail - 1;
        } else {
          const placement = readPlacement(header, data, placed.seq);
          // A record whose parts end the stream unfinished is left out: the
          // last record restored starts before it.
          const unfinished =
            placement.kind === 'part' && placement.part + placement.size < placement.length;
          last = unfinished ? placement.lsn - 1 : lastStart(placement);
        }
      }
      if (last === undefined || last < to) {
        throw outOfRange('options.to', `at most the stream's last LSN (${last ?? 'none'})`, to);
      }
    }
    // An empty file is restored into as a one-file log, unless told otherwise.
    const walOptions =
      emptyFile && options.wal?.layout === undefined
        ? { ...options.wal, layout: 'file' as const }
        : options.wal;
    const wal = await Wal.open(options.into, walOptions);
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

/**
 * Milliseconds without a message after which restore replaces its consumer
 * (its server died; a consumer does not always recover on its own).
 */
const STALL = 3000;

/** Milliseconds without progress (no message taken) after which restore gives up with `WAL_FAILED`. */
const RESTORE_GIVE_UP = 60_000;

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
  let progress = Date.now();
  let delay = 0;
  let lastError: unknown;
  const done = () => (to !== undefined && lastLsn === to) || log.seq === lastSeq;
  while (!done()) {
    if (handle.nc.isClosed()) {
      throw new ClosedError('connection', { cause: lastError });
    }
    if (Date.now() - progress >= RESTORE_GIVE_UP) {
      throw new FailedError(
        `restore took no message of stream ${handle.stream} for ${RESTORE_GIVE_UP / 1000} s (after sequence ${log.seq} of ${lastSeq}); the log restored so far is kept`,
        { cause: lastError },
      );
    }
    try {
      // A new consumer after a failure starts past the last message taken;
      // one that delivers a message again has it checked and skipped.
      const consumer = await handle.js.consumers.get(handle.stream, {
        deliver_policy: DeliverPolicy.StartSequence,
        opt_start_seq: log.seq + 1,
      });
      const messages = await consumer.consume({ max_bytes: pullBytes(handle.nc) });
      let last = Date.now();
      const timer = setInterval(() => {
        if (Date.now() - last >= STALL) messages.close().catch(() => undefined);
      }, STALL / 2);
      timer.unref();
      try {
        for await (const message of messages) {
          last = progress = Date.now();
          delay = 0;
          const lsn = await log.deliver(message.seq, message.headers, message.data, to);
          if (lsn !== undefined) lastLsn = lsn;
          if (done()) break;
        }
      } finally {
        clearInterval(timer);
        await messages.close().catch(() => undefined);
      }
    } catch (error) {
      if (isFinal(error) || isWalError(error)) throw error;
      lastError = error;
    }
    if (!done()) {
      delay = Math.min(Math.max(delay * 2, 25), 1000);
      await sleep(delay);
    }
  }
  if (to !== undefined && lastLsn !== to) {
    throw new BoundaryError(`no record of the stream starts at ${to}`, { offset: to });
  }
  return { records: log.records, end: wal.tail, lastLsn, sequence: log.seq };
}
