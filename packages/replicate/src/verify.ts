/**
 * The check that keeps the stream and the log one history: does the local
 * log hold, at the same LSN, the record a stream message belongs to?
 */
import type { Wal } from '@wal/core';
import { BoundaryError, TruncatedError } from '@wal/errors';
import {
  type PartPosition,
  type Placement,
  type RunRecord,
  recordCrc,
  recordEnd,
} from './message.js';

/**
 * True when `wal` durably holds the record `position` describes: a record at
 * the same LSN with the same length and frame CRC, and, when `data` is
 * given, the same bytes in that part. A record before the log's head
 * (truncated by a checkpoint) can only be checked by its offsets: it must end
 * within the durable log. False when no such record is there.
 *
 * @throws the log's read errors other than "no record there".
 */
export async function logHolds(
  wal: Wal,
  position: PartPosition,
  data?: Uint8Array,
): Promise<boolean> {
  if (position.lsn >= wal.durable) return false;
  if (position.lsn < wal.head) return recordEnd(position.lsn, position.length) <= wal.durable;
  let payload: Uint8Array;
  try {
    payload = await wal.read(position.lsn);
  } catch (error) {
    if (error instanceof BoundaryError || error instanceof TruncatedError) return false;
    throw error;
  }
  if (payload.length !== position.length || recordCrc(payload) !== position.crc) return false;
  if (data === undefined) return true;
  const part = payload.subarray(position.part, position.part + position.size);
  return Buffer.from(part.buffer, part.byteOffset, part.length).equals(data);
}

/**
 * True when `wal` holds the last record a data message `data` carries, byte
 * for byte ({@link logHolds}): the part itself, or a run's last record.
 *
 * @throws the log's read errors other than "no record there".
 */
export function logHoldsMessage(
  wal: Wal,
  placement: Placement,
  data: Uint8Array,
): Promise<boolean> {
  if (placement.kind === 'part') return logHolds(wal, placement, data);
  const last = placement.records[placement.records.length - 1]!;
  return logHoldsRunRecord(wal, last, data);
}

/** {@link logHolds} for the record `record` of a run whose data is `data`. */
export function logHoldsRunRecord(wal: Wal, record: RunRecord, data: Uint8Array): Promise<boolean> {
  const { lsn, length, crc, at } = record;
  return logHolds(wal, { lsn, length, crc, part: 0, size: length }, data.subarray(at, at + length));
}
