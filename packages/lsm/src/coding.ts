/**
 * Integer and key encodings of docs/LSM-FORMAT.md §1: little-endian fixed
 * integers, unsigned LEB128 varints, and the internal key (user key and an
 * 8-byte trailer holding the sequence number and the kind). Decoders check
 * every length against the bytes they are given and throw {@link Malformed}
 * (a plain marker the callers turn into a `WAL_CORRUPTION` naming the file
 * and offset).
 */

/** The largest sequence number: 2^53 − 1 (exact in a JS number; fits the 56-bit field). */
export const MAX_SEQUENCE = Number.MAX_SAFE_INTEGER;

/** Kind of an entry: a deletion marker (tombstone) or a value. Numbers are on disk. */
export const KIND_DELETE = 0;
/** See {@link KIND_DELETE}. */
export const KIND_VALUE = 1;
/** An entry kind stored on disk. */
export type Kind = typeof KIND_DELETE | typeof KIND_VALUE;
/**
 * Kind of a range deletion (docs/LSM-FORMAT.md §1): in a batch record and in
 * a table's range-deletion block, never among a table's point entries.
 */
export const KIND_RANGE_DELETE = 2;

/** Size of the internal-key trailer. */
export const TRAILER_SIZE = 8;

/** Thrown by the decoders for bytes that break the format; `at` is the offset in the input. */
export class Malformed extends Error {
  constructor(
    message: string,
    readonly at: number,
  ) {
    super(message);
  }
}

/** Writes `value` (0 ≤ value < 2^32) as a u32 LE at `at`. */
export function putU32(into: Uint8Array, at: number, value: number): void {
  into[at] = value & 0xff;
  into[at + 1] = (value >>> 8) & 0xff;
  into[at + 2] = (value >>> 16) & 0xff;
  into[at + 3] = (value >>> 24) & 0xff;
}

/** Reads a u32 LE at `at` (the caller checked the bounds). */
export function getU32(from: Uint8Array, at: number): number {
  return (from[at]! | (from[at + 1]! << 8) | (from[at + 2]! << 16) | (from[at + 3]! << 24)) >>> 0;
}

/** Writes `value` (0 ≤ value ≤ 2^53 − 1) as a u64 LE at `at`. */
export function putU64(into: Uint8Array, at: number, value: number): void {
  putU32(into, at, value >>> 0);
  putU32(into, at + 4, Math.floor(value / 0x1_0000_0000));
}

/** Reads a u64 LE at `at`; throws {@link Malformed} above 2^53 − 1. */
export function getU64(from: Uint8Array, at: number): number {
  const high = getU32(from, at + 4);
  if (high > 0x1f_ffff) throw new Malformed('a 64-bit integer above 2^53 - 1', at);
  return high * 0x1_0000_0000 + getU32(from, at);
}

/** Bytes a varint of `value` takes. */
export function varintSize(value: number): number {
  let size = 1;
  while (value >= 0x80) {
    value = Math.floor(value / 128);
    size++;
  }
  return size;
}

/** Writes `value` (0 ≤ value ≤ 2^53 − 1) as an unsigned LEB128 varint at `at`; returns the end. */
export function putVarint(into: Uint8Array, at: number, value: number): number {
  while (value >= 0x80) {
    into[at++] = (value % 128) | 0x80;
    value = Math.floor(value / 128);
  }
  into[at++] = value;
  return at;
}

/**
 * A cursor decoding a byte range `[at, end)` of `bytes`: every read checks
 * the bound first and throws {@link Malformed} past it.
 */
export class Reader {
  constructor(
    readonly bytes: Uint8Array,
    public at: number,
    readonly end: number,
  ) {}

  /** True when the range is consumed. */
  get done(): boolean {
    return this.at >= this.end;
  }

  /** A varint of at most 8 bytes (values up to 2^53 − 1). */
  varint(what: string): number {
    const start = this.at;
    let value = 0;
    let scale = 1;
    for (let i = 0; i < 8; i++) {
      if (this.at >= this.end) throw new Malformed(`${what}: varint runs past the end`, start);
      const byte = this.bytes[this.at++]!;
      value += (byte & 0x7f) * scale;
      if (byte < 0x80) {
        if (value > MAX_SEQUENCE) throw new Malformed(`${what}: varint above 2^53 - 1`, start);
        return value;
      }
      scale *= 128;
    }
    throw new Malformed(`${what}: varint longer than 8 bytes`, start);
  }

  /** A varint no larger than `limit`. */
  bounded(what: string, limit: number): number {
    const start = this.at;
    const value = this.varint(what);
    if (value > limit) throw new Malformed(`${what} ${value} exceeds ${limit}`, start);
    return value;
  }

  /** One byte. */
  u8(what: string): number {
    if (this.at >= this.end) throw new Malformed(`${what}: past the end`, this.at);
    return this.bytes[this.at++]!;
  }

  /** A u64 LE. */
  u64(what: string): number {
    this.need(8, what);
    const value = getU64(this.bytes, this.at);
    this.at += 8;
    return value;
  }

  /** `length` bytes (a view, not a copy). */
  take(length: number, what: string): Uint8Array {
    this.need(length, what);
    const view = this.bytes.subarray(this.at, this.at + length);
    this.at += length;
    return view;
  }

  /** A varint length followed by that many bytes. */
  lengthPrefixed(what: string): Uint8Array {
    const length = this.bounded(`${what} length`, this.end - this.at);
    return this.take(length, what);
  }

  need(length: number, what: string): void {
    if (length > this.end - this.at) {
      throw new Malformed(`${what}: ${length} bytes claimed, ${this.end - this.at} left`, this.at);
    }
  }
}

/**
 * A buffer grown past this many bytes is let go of at {@link Output.clear}
 * (for one huge value; the builders' usual contents stay far below it).
 */
export const OUTPUT_KEEP_LIMIT = 1024 * 1024;

/** Growable byte output. */
export class Output {
  #bytes: Uint8Array;
  readonly #initial: number;
  length = 0;

  constructor(initial = 4096) {
    this.#initial = initial;
    this.#bytes = new Uint8Array(initial);
  }

  /** Bytes the buffer holds now (written or not). */
  get capacity(): number {
    return this.#bytes.length;
  }

  /** Makes room for `more` bytes and returns the buffer to write into at {@link Output.length}. */
  reserve(more: number): Uint8Array {
    if (this.length + more > this.#bytes.length) {
      const grown = new Uint8Array(Math.max(this.#bytes.length * 2, this.length + more));
      grown.set(this.#bytes.subarray(0, this.length));
      this.#bytes = grown;
    }
    return this.#bytes;
  }

  bytes(data: Uint8Array): void {
    this.reserve(data.length).set(data, this.length);
    this.length += data.length;
  }

  /** Appends `data[start, end)` (short ranges byte by byte: no view to make). */
  range(data: Uint8Array, start: number, end: number): void {
    const into = this.reserve(end - start);
    if (end - start > 32) into.set(data.subarray(start, end), this.length);
    else for (let i = start, at = this.length; i < end; i++, at++) into[at] = data[i]!;
    this.length += end - start;
  }

  u8(value: number): void {
    this.reserve(1)[this.length++] = value;
  }

  u32(value: number): void {
    putU32(this.reserve(4), this.length, value);
    this.length += 4;
  }

  varint(value: number): void {
    this.length = putVarint(this.reserve(8), this.length, value);
  }

  lengthPrefixed(data: Uint8Array): void {
    this.varint(data.length);
    this.bytes(data);
  }

  /** The bytes written so far (a view). */
  view(): Uint8Array {
    return this.#bytes.subarray(0, this.length);
  }

  /** Forgets the contents, keeping the buffer unless it grew past {@link OUTPUT_KEEP_LIMIT}. */
  clear(): void {
    this.length = 0;
    if (this.#bytes.length > OUTPUT_KEEP_LIMIT) this.#bytes = new Uint8Array(this.#initial);
  }
}

/** Keys up to this length are compared in JavaScript: cheaper than a call into C++. */
const SHORT_COMPARE = 64;

/**
 * A copy of `bytes` in memory of its own. Not `bytes.slice()`: a Node
 * `Buffer`'s `slice` is a view of the caller's memory.
 */
export function copyBytes(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(bytes);
}

/** Byte-wise comparison of two keys: negative, zero or positive. */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  return compareBytesAt(a, 0, a.length, b, 0, b.length);
}

/**
 * {@link compareBytes} of `a[aStart, aStart + aLength)` and `b[bStart,
 * bStart + bLength)`, without viewing either (unless longer than
 * {@link SHORT_COMPARE}).
 */
export function compareBytesAt(
  a: Uint8Array,
  aStart: number,
  aLength: number,
  b: Uint8Array,
  bStart: number,
  bLength: number,
): number {
  const length = Math.min(aLength, bLength);
  if (length > SHORT_COMPARE) {
    return Buffer.compare(
      a.subarray(aStart, aStart + aLength),
      b.subarray(bStart, bStart + bLength),
    );
  }
  for (let i = 0; i < length; i++) {
    const difference = a[aStart + i]! - b[bStart + i]!;
    if (difference !== 0) return difference;
  }
  return aLength - bLength;
}

/** The internal key: `userKey ‖ trailer`, trailer = u64 LE of `sequence · 2^8 + kind`. */
export function internalKey(userKey: Uint8Array, sequence: number, kind: number): Uint8Array {
  const key = new Uint8Array(userKey.length + TRAILER_SIZE);
  key.set(userKey);
  writeTrailer(key, userKey.length, sequence, kind);
  return key;
}

/** Writes the trailer of (`sequence`, `kind`) at `at`. */
export function writeTrailer(into: Uint8Array, at: number, sequence: number, kind: number): void {
  into[at] = kind;
  // Bytes 1..7: the sequence number as a 56-bit little-endian integer.
  let value = sequence;
  for (let i = 1; i < 8; i++) {
    into[at + i] = value % 256;
    value = Math.floor(value / 256);
  }
}

/** The sequence number in the trailer of internal key `key` (length ≥ 8, checked by the caller). */
export function trailerSequence(key: Uint8Array): number {
  return sequenceAt(key, key.length);
}

/** The kind in the trailer of internal key `key`. */
export function trailerKind(key: Uint8Array): number {
  return key[key.length - TRAILER_SIZE]!;
}

/** The user-key part of internal key `key` (a view). */
export function userKeyOf(key: Uint8Array): Uint8Array {
  return key.subarray(0, key.length - TRAILER_SIZE);
}

/**
 * Order of internal keys: user key ascending, then sequence number
 * descending (the newest version of a key first).
 */
export function compareInternal(a: Uint8Array, b: Uint8Array): number {
  return compareInternalAt(a, 0, a.length, b);
}

/** Longest user-key prefix compared byte by byte in JavaScript (longer: one native call). */
const LOOP_COMPARE_LIMIT = 64;

/**
 * {@link compareInternal} of the internal keys `a[aStart, aStart + aLength)`
 * and `b[bStart, bStart + bLength)` (default: all of `b`), without copying
 * or viewing either.
 */
export function compareInternalAt(
  a: Uint8Array,
  aStart: number,
  aLength: number,
  b: Uint8Array,
  bStart = 0,
  bLength = b.length,
): number {
  const aUser = aLength - TRAILER_SIZE;
  const bUser = bLength - TRAILER_SIZE;
  const common = Math.min(aUser, bUser);
  if (common > LOOP_COMPARE_LIMIT) {
    const byUser = Buffer.compare(
      a.subarray(aStart, aStart + aUser),
      b.subarray(bStart, bStart + bUser),
    );
    if (byUser !== 0) return byUser;
  } else {
    for (let i = 0; i < common; i++) {
      const diff = a[aStart + i]! - b[bStart + i]!;
      if (diff !== 0) return diff < 0 ? -1 : 1;
    }
    if (aUser !== bUser) return aUser < bUser ? -1 : 1;
  }
  return sequenceAt(b, bStart + bLength) - sequenceAt(a, aStart + aLength);
}

/** The sequence number of the internal key ending at `end` in `bytes`. */
export function sequenceAt(bytes: Uint8Array, end: number): number {
  const at = end - TRAILER_SIZE;
  let value = 0;
  for (let i = 7; i >= 1; i--) value = value * 256 + bytes[at + i]!;
  return value;
}
