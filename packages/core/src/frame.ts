/**
 * The record frame (docs/FORMAT.md §2): an 8-byte little-endian header
 * `[crc32c u32][length u32]` followed by `length` payload bytes, where the CRC
 * is CRC-32C over the 4 length bytes followed by the payload.
 *
 * The one place that knows the frame: encoding, header decoding, the length
 * bound, the CRC check (whole, or incremental across read windows) and the
 * classification of damage (FORMAT.md §8 step 4). The recovery scan, the
 * reads and iterators of the log and the command line's diagnosis all go
 * through it.
 */
import { crc32c } from './crc32c.js';

/** Bytes in a frame header. */
export const HEADER_SIZE = 8;
/** Largest length a header can express (2^32 − 1). */
export const MAX_FRAME_LENGTH = 0xffff_ffff;

const LENGTH_SCRATCH = new Uint8Array(4);

/** The CRC a frame of `payload` carries: CRC-32C over `length (u32 LE) ‖ payload`. */
export function frameCrc(payload: Uint8Array, start = 0, end = payload.length): number {
  const length = end - start;
  const lengthBytes = LENGTH_SCRATCH;
  lengthBytes[0] = length & 0xff;
  lengthBytes[1] = (length >>> 8) & 0xff;
  lengthBytes[2] = (length >>> 16) & 0xff;
  lengthBytes[3] = (length >>> 24) & 0xff;
  return crc32c(payload, start, end, crc32c(lengthBytes, 0, 4));
}

/**
 * `Uint8Array.prototype.set`, called through this reference: a `.set` looked
 * up on each call compiled, in the optimised append path, to a generic
 * property lookup per record (about 16 ns of a 100-byte append).
 */
export const copyInto = Uint8Array.prototype.set;

/**
 * Writes the frame of `payload` into `into` at `at` (header, then payload,
 * then the CRC over both); returns the offset after it. The caller
 * guarantees the room.
 */
export function writeFrame(into: Uint8Array, at: number, payload: Uint8Array): number {
  const length = payload.length;
  const end = at + HEADER_SIZE + length;
  into[at + 4] = length & 0xff;
  into[at + 5] = (length >>> 8) & 0xff;
  into[at + 6] = (length >>> 16) & 0xff;
  into[at + 7] = (length >>> 24) & 0xff;
  // A detached payload reads as empty (length 0) but `set` would throw on it.
  if (length > 0) copyInto.call(into, payload, at + HEADER_SIZE);
  const crc = crc32c(into, at + 4, end);
  into[at] = crc & 0xff;
  into[at + 1] = (crc >>> 8) & 0xff;
  into[at + 2] = (crc >>> 16) & 0xff;
  into[at + 3] = (crc >>> 24) & 0xff;
  return end;
}

/** A new buffer holding the frame of `payload`. */
export function encodeFrame(payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(HEADER_SIZE + payload.length);
  writeFrame(out, 0, payload);
  return out;
}

/** The fields of a frame header. */
export interface FrameHeader {
  readonly crc: number;
  readonly length: number;
}

/** The little-endian u32 at `at`; the caller guarantees 4 bytes. */
export function readU32(bytes: Uint8Array, at: number): number {
  return (
    (bytes[at]! | (bytes[at + 1]! << 8) | (bytes[at + 2]! << 16) | (bytes[at + 3]! << 24)) >>> 0
  );
}

/** Reads the header at `at`; the caller guarantees 8 bytes. */
export function readHeader(bytes: Uint8Array, at: number): FrameHeader {
  return { crc: readU32(bytes, at), length: readU32(bytes, at + 4) };
}

/** The payload length the header at `at` claims (unchecked); the caller guarantees 8 bytes. */
export function frameLength(bytes: Uint8Array, at: number): number {
  return readU32(bytes, at + 4);
}

/**
 * The length bound: whether a frame at `offset` claiming `length` payload
 * bytes may be read at all — at most `maxRecordSize`, and ending by `end`.
 * Checked before any buffer is sized by the length.
 */
export function lengthFits(
  offset: number,
  length: number,
  maxRecordSize: number,
  end: number,
): boolean {
  return length <= maxRecordSize && offset + HEADER_SIZE + length <= end;
}

/**
 * True when the frame at `at` claiming `length` payload bytes (header and
 * whole payload present in `bytes`) carries the right CRC.
 */
export function frameIsValid(bytes: Uint8Array, at: number, length: number): boolean {
  return crc32c(bytes, at + 4, at + HEADER_SIZE + length) === readU32(bytes, at);
}

/**
 * The CRC check across read windows: continues `crc` (0 to start, at the
 * frame's length field, `offset + 4`) over `bytes[from, to)`, the next bytes
 * the frame's CRC covers. The frame is intact when, after `4 + length` bytes,
 * the result equals its header's `crc`.
 */
export function continueFrameCrc(crc: number, bytes: Uint8Array, from: number, to: number): number {
  return crc32c(bytes, from, to, crc);
}

/** Why a frame is damaged (docs/FORMAT.md §8 step 4). */
export type DamageKind = 'short-header' | 'short-payload' | 'checksum';

/** A damaged frame. */
export interface Damage {
  /** Offset of the damaged frame's header. */
  readonly offset: number;
  readonly kind: DamageKind;
  /** The length its header claims (undefined for a short header). */
  readonly claimedLength: number | undefined;
}

/**
 * The damage of a frame at `offset` that is not intact, in a log ending at
 * `end`: a **short header** when fewer than 8 bytes are left, a **short
 * payload** when its `length` (the header's, given when the header is there)
 * reaches past `end`, else **checksum** damage.
 */
export function classifyDamage(offset: number, end: number, length: number | undefined): Damage {
  if (end - offset < HEADER_SIZE || length === undefined) {
    return { offset, kind: 'short-header', claimedLength: undefined };
  }
  const kind = offset + HEADER_SIZE + length > end ? 'short-payload' : 'checksum';
  return { offset, kind, claimedLength: length };
}
