/**
 * The stream's message format: a **run** of whole consecutive records of
 * the log, their frames (docs/FORMAT.md §2) exactly as the log holds them,
 * as many as fit in the server's maximum payload; or, for a record whose
 * frame does not fit, a **part**: the record split into consecutive parts.
 * A run's headers carry its first record's LSN, its record count and the
 * CRC-32C of its data; a part's carry the record's LSN, its payload length,
 * its frame CRC and where the part starts in the payload. The package
 * README's "Stream format" section is the prose version of this module.
 */
import { crc32c, HEADER_SIZE } from '@wal/core';
import { CorruptionError, ReplicaMismatchError } from '@wal/errors';

/** Header naming the record's LSN (decimal). */
export const LSN_HEADER = 'Wal-Lsn';
/** Header naming the record's payload length in bytes (decimal). */
export const LENGTH_HEADER = 'Wal-Length';
/** Header carrying the record's frame CRC (8 lowercase hex digits). */
export const CRC_HEADER = 'Wal-Crc';
/** Header naming where this part starts in the payload (decimal). */
export const PART_HEADER = 'Wal-Part';
/** Header of a run naming how many records it holds (decimal, at least 1). */
export const COUNT_HEADER = 'Wal-Count';

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

/** A record of the log, named by its LSN, payload length and frame CRC. */
export interface RecordId {
  readonly lsn: number;
  readonly length: number;
  readonly crc: number;
}

/** A record of a run, and where its payload lies in the run's data. */
export interface RunRecord extends RecordId {
  /** Offset of the payload in the message data. */
  readonly at: number;
}

/** Where a run lies in the log: whole records from `lsn` to `lsn + size`. */
export interface RunPosition {
  /** LSN of the first record. */
  readonly lsn: number;
  /** Records in the run (at least 1). */
  readonly count: number;
  /** CRC-32C of the message data (every frame of the run). */
  readonly crc: number;
  /** Bytes of data: the frames, so the run ends at LSN `lsn + size`. */
  readonly size: number;
}

/** A run read back from a message, its records checked. */
export interface Run extends RunPosition {
  readonly records: readonly RunRecord[];
}

/** What a data message is: a part of one record, or a run of whole records. */
export type Placement =
  | ({ readonly kind: 'part' } & PartPosition)
  | ({ readonly kind: 'run' } & Run);

/**
 * The data of a run holding `payloads`: their frames (FORMAT.md §2), one
 * after the other, as the log holds them.
 */
export function encodeRun(payloads: readonly Uint8Array[]): Uint8Array {
  let size = 0;
  for (const payload of payloads) size += HEADER_SIZE + payload.length;
  const data = new Uint8Array(size);
  let at = 0;
  for (const payload of payloads) {
    writeU32(data, at, recordCrc(payload));
    writeU32(data, at + 4, payload.length);
    data.set(payload, at + HEADER_SIZE);
    at += HEADER_SIZE + payload.length;
  }
  return data;
}

/** The header fields of a run. */
export function runHeaders(run: RunPosition, epoch = 0): [string, string][] {
  const fields: [string, string][] = [
    [LSN_HEADER, String(run.lsn)],
    [COUNT_HEADER, String(run.count)],
    [CRC_HEADER, crcHex(run.crc)],
  ];
  if (epoch !== 0) fields.push([EPOCH_HEADER, String(epoch)]);
  return fields;
}

/**
 * The JetStream message id of a run: first LSN, count and the data's CRC
 * (`+` keeps it apart from a part's id). Like {@link messageId}, a different
 * run at a reused LSN has a different id.
 */
export function runId(run: RunPosition, epoch = 0): string {
  const id = `${run.lsn}+${run.count}.${crcHex(run.crc)}`;
  return epoch === 0 ? id : `${id}.${epoch}`;
}

/** The message id of a run or a part ({@link runId}, {@link messageId}). */
export function placementId(placement: Placement, epoch = 0): string {
  return placement.kind === 'run' ? runId(placement, epoch) : messageId(placement, epoch);
}

/**
 * Where the stream is shipped once a data message is stored: `end`, below
 * which every record is complete, `partial` bytes of the record at `end`,
 * and the last record the message completes (`undefined` for a part that
 * does not end its record).
 */
export interface Reach {
  readonly end: number;
  readonly partial: number;
  readonly last: RecordId | undefined;
}

/** The {@link Reach} of a data message. */
export function reachOf(placement: Placement): Reach {
  if (placement.kind === 'run') {
    const last = placement.records[placement.records.length - 1]!;
    return {
      end: placement.lsn + placement.size,
      partial: 0,
      last: { lsn: last.lsn, length: last.length, crc: last.crc },
    };
  }
  const partEnd = placement.part + placement.size;
  if (partEnd < placement.length) return { end: placement.lsn, partial: partEnd, last: undefined };
  const { lsn, length, crc } = placement;
  return { end: recordEnd(lsn, length), partial: 0, last: { lsn, length, crc } };
}

/** LSN of the last record that starts in a data message. */
export function lastStart(placement: Placement): number {
  return placement.kind === 'run'
    ? placement.records[placement.records.length - 1]!.lsn
    : placement.lsn;
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

function writeU32(into: Uint8Array, at: number, value: number): void {
  into[at] = value & 0xff;
  into[at + 1] = (value >>> 8) & 0xff;
  into[at + 2] = (value >>> 16) & 0xff;
  into[at + 3] = (value >>> 24) & 0xff;
}

function readU32(bytes: Uint8Array, at: number): number {
  return (
    (bytes[at]! | (bytes[at + 1]! << 8) | (bytes[at + 2]! << 16) | (bytes[at + 3]! << 24)) >>> 0
  );
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

/**
 * Reads a data message (a run or a part) from its headers and data,
 * checking everything: for a run, every frame's length against the data
 * left (before anything is sized by it), every frame's CRC, the count and
 * the data's CRC.
 *
 * @throws `WAL_REPLICA_MISMATCH` for a message that is not a part or a run
 *   (bad headers, a frame's length past the data, a count other than the
 *   frames'); `WAL_CORRUPTION` for a frame or a run failing its CRC.
 */
export function readPlacement(
  headers: HeaderSource | undefined,
  data: Uint8Array,
  seq: number,
): Placement {
  if (headers === undefined || headers.get(COUNT_HEADER) === '') {
    return { kind: 'part', ...readPosition(headers, data.length, seq) };
  }
  return { kind: 'run', ...readRun(headers, data, seq) };
}

function readRun(headers: HeaderSource, data: Uint8Array, seq: number): Run {
  const lsn = decimal(headers, LSN_HEADER, seq);
  const count = decimal(headers, COUNT_HEADER, seq);
  const crcText = headers.get(CRC_HEADER);
  const refuse = (why: string, offset = lsn) =>
    new ReplicaMismatchError(`stream message ${seq} is not a run of log records: ${why}`, {
      sequence: seq,
      offset,
    });
  if (!HEX.test(crcText)) throw refuse(`bad ${CRC_HEADER}`);
  if (headers.get(PART_HEADER) !== '' || headers.get(LENGTH_HEADER) !== '') {
    throw refuse(`${PART_HEADER} or ${LENGTH_HEADER} on a run`);
  }
  if (count === 0 || data.length === 0) throw refuse('it is empty');
  if (!Number.isSafeInteger(lsn + data.length)) throw refuse('it ends past the largest LSN');
  const crc = Number.parseInt(crcText, 16);
  if (crc32c(data, 0, data.length) !== crc) {
    throw new CorruptionError(`stream message ${seq} (a run from LSN ${lsn}) fails its checksum`, {
      offset: lsn,
    });
  }
  const records: RunRecord[] = [];
  let at = 0;
  while (at < data.length) {
    if (records.length === count) throw refuse(`more frames than its count ${count}`);
    if (data.length - at < HEADER_SIZE) throw refuse(`a frame header cut short at ${at}`, lsn + at);
    const length = readU32(data, at + 4);
    if (length > data.length - at - HEADER_SIZE) {
      throw refuse(`a frame at ${at} claims ${length} bytes past the data`, lsn + at);
    }
    const frameCrc = readU32(data, at);
    if (crc32c(data, at + 4, at + HEADER_SIZE + length) !== frameCrc) {
      throw new CorruptionError(
        `the record at LSN ${lsn + at} (stream message ${seq}) fails its checksum`,
        { offset: lsn + at },
      );
    }
    records.push({ lsn: lsn + at, length, crc: frameCrc, at: at + HEADER_SIZE });
    at += HEADER_SIZE + length;
  }
  if (records.length !== count) throw refuse(`${records.length} frames, not its count ${count}`);
  return { lsn, count, crc, size: data.length, records };
}
