/**
 * The stream's message format: one record per message, or a record split
 * into consecutive parts when it is larger than the server's maximum
 * payload. Every message carries, in headers, the record's LSN, its payload
 * length, its frame CRC (docs/FORMAT.md §2: CRC-32C over `length ‖ payload`)
 * and where its part starts in the payload. The package README's "Stream
 * format" section is the prose version of this module.
 */
import { crc32c, HEADER_SIZE } from '@wal/core';
import { ReplicaMismatchError } from '@wal/errors';

/** Header naming the record's LSN (decimal). */
export const LSN_HEADER = 'Wal-Lsn';
/** Header naming the record's payload length in bytes (decimal). */
export const LENGTH_HEADER = 'Wal-Length';
/** Header carrying the record's frame CRC (8 lowercase hex digits). */
export const CRC_HEADER = 'Wal-Crc';
/** Header naming where this part starts in the payload (decimal). */
export const PART_HEADER = 'Wal-Part';

/**
 * Header naming the writer's epoch: 0 (or absent) for the first writer, and
 * one more at every promotion. A fence message carries the epoch it starts.
 */
export const EPOCH_HEADER = 'Wal-Epoch';
/**
 * Header of a fence message (no data): the tail (next LSN) of the promoted
 * follower's log when it took over. A reader drops a record left unfinished
 * before it; the next record starts at that tail.
 */
export const FENCE_HEADER = 'Wal-Fence';

/**
 * Header of a seal message (no data), naming the epoch a promotion is about
 * to start. It is published without any expectation, so it is stored at
 * once even while a writer publishes flat out, and it is on the new epoch's
 * subject: every writer's publish expects the stream's last message to be on
 * its own subject ({@link epochSubject}), so no writer publishes after a seal.
 * Readers skip it; a record left unfinished before it can never be finished.
 */
export const SEAL_HEADER = 'Wal-Seal';

/**
 * The subject a writer of `epoch` publishes on: the stream's subject for
 * epoch 0, `<subject>.<epoch>` after a promotion. The stream captures both
 * forms; a publish expecting the last sequence of its own subject fails once
 * a message of another epoch (a seal, a fence) follows its last one.
 */
export function epochSubject(subject: string, epoch: number): string {
  return epoch === 0 ? subject : `${subject}.${epoch}`;
}

/** Room left in every message for the headers above and the client's own. */
export const HEADER_ROOM = 1024;

/** Where one message of the stream lies in the log. */
export interface PartPosition {
  /** LSN of the record the message belongs to. */
  readonly lsn: number;
  /** The record's payload length. */
  readonly length: number;
  /** The record's frame CRC. */
  readonly crc: number;
  /** Offset of this part in the payload. */
  readonly part: number;
  /** Bytes of payload in this part. */
  readonly size: number;
}

/** Header access the client's `MsgHdrs` offers. */
export interface HeaderSource {
  get(name: string): string;
}

const LENGTH_SCRATCH = new Uint8Array(4);

/** The frame CRC of `payload`, as FORMAT.md §2 defines it. */
export function recordCrc(payload: Uint8Array): number {
  const n = payload.length;
  LENGTH_SCRATCH[0] = n & 0xff;
  LENGTH_SCRATCH[1] = (n >>> 8) & 0xff;
  LENGTH_SCRATCH[2] = (n >>> 16) & 0xff;
  LENGTH_SCRATCH[3] = (n >>> 24) & 0xff;
  return crc32c(payload, 0, n, crc32c(LENGTH_SCRATCH, 0, 4));
}

/** End offset (next LSN) of the record at `lsn` with a payload of `length` bytes. */
export function recordEnd(lsn: number, length: number): number {
  return lsn + HEADER_SIZE + length;
}

/**
 * The JetStream message id of a part: LSN, part offset and the record's CRC.
 * A `truncateAfter` hands LSNs out again; a different record at a reused LSN
 * has a different CRC, so its id differs and de-duplication cannot swallow it.
 */
export function messageId(position: PartPosition, epoch = 0): string {
  const id = `${position.lsn}.${position.part}.${crcHex(position.crc)}`;
  // The first writer's ids stay as they were; a later writer's record at an
  // LSN an unfinished record of an earlier one used must not be a duplicate.
  return epoch === 0 ? id : `${id}.${epoch}`;
}

/** The CRC as 8 lowercase hex digits. */
export function crcHex(crc: number): string {
  return crc.toString(16).padStart(8, '0');
}

/** The header fields of a part. */
export function partHeaders(position: PartPosition, epoch = 0): [string, string][] {
  const fields: [string, string][] = [
    [LSN_HEADER, String(position.lsn)],
    [LENGTH_HEADER, String(position.length)],
    [CRC_HEADER, crcHex(position.crc)],
    [PART_HEADER, String(position.part)],
  ];
  if (epoch !== 0) fields.push([EPOCH_HEADER, String(epoch)]);
  return fields;
}

/** A fence: a promoted follower took over at `tail`, starting `epoch`. */
export interface Fence {
  readonly tail: number;
  readonly epoch: number;
}

/** The header fields of a fence message. */
export function fenceHeaders(fence: Fence): [string, string][] {
  return [
    [FENCE_HEADER, String(fence.tail)],
    [EPOCH_HEADER, String(fence.epoch)],
  ];
}

/**
 * The fence a message is, or `undefined` for a message without the fence
 * header.
 *
 * @throws `WAL_REPLICA_MISMATCH` for a fence with bad headers or data.
 */
export function readFence(
  headers: HeaderSource | undefined,
  size: number,
  seq: number,
): Fence | undefined {
  if (headers === undefined || headers.get(FENCE_HEADER) === '') return undefined;
  const tail = decimal(headers, FENCE_HEADER, seq);
  const epoch = decimal(headers, EPOCH_HEADER, seq);
  if (size !== 0 || epoch === 0) {
    throw new ReplicaMismatchError(`stream message ${seq} is not a valid fence`, {
      sequence: seq,
      offset: tail,
    });
  }
  return { tail, epoch };
}

/** The header fields of a seal for `epoch`. */
export function sealHeaders(epoch: number): [string, string][] {
  return [[SEAL_HEADER, String(epoch)]];
}

/**
 * The epoch a seal message names, or `undefined` for a message without the
 * seal header.
 *
 * @throws `WAL_REPLICA_MISMATCH` for a seal with a bad epoch or with data.
 */
export function readSeal(
  headers: HeaderSource | undefined,
  size: number,
  seq: number,
): number | undefined {
  if (headers === undefined || headers.get(SEAL_HEADER) === '') return undefined;
  const epoch = decimal(headers, SEAL_HEADER, seq);
  if (size !== 0 || epoch === 0) {
    throw new ReplicaMismatchError(`stream message ${seq} is not a valid seal`, { sequence: seq });
  }
  return epoch;
}

/** The writer epoch a record message carries (0 when absent). */
export function readEpoch(headers: HeaderSource, seq: number): number {
  return headers.get(EPOCH_HEADER) === '' ? 0 : decimal(headers, EPOCH_HEADER, seq);
}

const DECIMAL = /^(0|[1-9][0-9]{0,15})$/;
const HEX = /^[0-9a-f]{8}$/;

function decimal(headers: HeaderSource, name: string, seq: number): number {
  const text = headers.get(name);
  const value = DECIMAL.test(text) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(value)) {
    throw new ReplicaMismatchError(
      `stream message ${seq} is not a log record: header ${name} is missing or invalid`,
      { sequence: seq },
    );
  }
  return value;
}

/**
 * Reads where a stream message lies in the log from its headers, checking
 * them. `size` is the message's data length.
 *
 * @throws `WAL_REPLICA_MISMATCH` for a message that is not a part of a record.
 */
export function readPosition(
  headers: HeaderSource | undefined,
  size: number,
  seq: number,
): PartPosition {
  if (headers === undefined) {
    throw new ReplicaMismatchError(`stream message ${seq} is not a log record: it has no headers`, {
      sequence: seq,
    });
  }
  const lsn = decimal(headers, LSN_HEADER, seq);
  const length = decimal(headers, LENGTH_HEADER, seq);
  const part = decimal(headers, PART_HEADER, seq);
  const crcText = headers.get(CRC_HEADER);
  if (!HEX.test(crcText)) {
    throw new ReplicaMismatchError(`stream message ${seq} is not a log record: bad ${CRC_HEADER}`, {
      sequence: seq,
      offset: lsn,
    });
  }
  if (part + size > length || (size === 0 && length !== 0)) {
    throw new ReplicaMismatchError(
      `stream message ${seq} is not a log record: part ${part}+${size} outside a ${length}-byte record`,
      { sequence: seq, offset: lsn },
    );
  }
  return { lsn, length, crc: Number.parseInt(crcText, 16), part, size };
}
