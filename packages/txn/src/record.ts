/**
 * The commit record (internal): the payload of the one @wal/core record each
 * commit appends — the redo of its writes. The layout is specified in
 * docs/TXN-FORMAT.md (with a test vector); this module is its only reader and
 * writer.
 *
 *   kind u8 (0x01) · seq u64 LE · count u32 LE · count × write
 *   write = op u8 (0x01 put, 0x02 delete) · keyLength u32 LE · key
 *           [· valueLength u32 LE · value]   (put only)
 */
import { CorruptionError } from '@wal/errors';

/** The record kind of a commit in format 1. */
export const COMMIT_KIND = 0x01;
const PUT = 0x01;
const DELETE = 0x02;
const HEADER = 1 + 8 + 4;

/** One write of a commit: a key and its new value (`undefined` deletes it). */
export interface Write {
  readonly key: Uint8Array;
  readonly value: Uint8Array | undefined;
}

/** A decoded commit record. */
export interface Commit {
  readonly seq: number;
  readonly writes: Write[];
}

/**
 * A write to encode: as {@link Write}, or with the key and value in
 * binary-string form (one byte per UTF-16 code unit, each below 256), as the
 * store holds them.
 */
export interface WriteInput {
  readonly key: Uint8Array | string;
  readonly value: Uint8Array | string | undefined;
}

/** A key or value to encode: bytes, or its binary-string form. */
type Field = Uint8Array | string;

/** Size in bytes of the record {@link encodeCommit} makes of `writes`. */
export function commitSize(writes: readonly WriteInput[]): number {
  return writesSize(
    writes.map((w) => w.key),
    writes.map((w) => w.value),
  );
}

/** Size in bytes of the record of the writes `keys[i]` → `values[i]` ({@link encodeWrites}). */
export function writesSize(keys: readonly Field[], values: readonly (Field | undefined)[]): number {
  let size = HEADER;
  for (let i = 0; i < keys.length; i++) {
    const value = values[i];
    size += 5 + keys[i]!.length + (value === undefined ? 0 : 4 + value.length);
  }
  return size;
}

/**
 * Encodes a commit at `seq` (a positive safe integer) into `size` bytes
 * ({@link commitSize}): at the start of `into` when it is given and long
 * enough (the result is then `into` itself when it has exactly `size` bytes,
 * else a view of it; valid until `into` is reused), else into a new array.
 */
export function encodeCommit(
  seq: number,
  writes: readonly WriteInput[],
  size: number,
  into?: Uint8Array,
): Uint8Array {
  return encodeWrites(
    seq,
    writes.map((w) => w.key),
    writes.map((w) => w.value),
    size,
    into,
  );
}

/**
 * {@link encodeCommit} of the writes `keys[i]` → `values[i]` (a value
 * `undefined` deletes its key), in `size` bytes ({@link writesSize}).
 */
export function encodeWrites(
  seq: number,
  keys: readonly Field[],
  values: readonly (Field | undefined)[],
  size: number,
  into?: Uint8Array,
): Uint8Array {
  const bytes =
    into === undefined || into.length < size
      ? new Uint8Array(size)
      : into.length === size
        ? into
        : into.subarray(0, size);
  bytes[0] = COMMIT_KIND;
  putU32(bytes, 1, seq >>> 0);
  putU32(bytes, 5, Math.floor(seq / 2 ** 32));
  putU32(bytes, 9, keys.length);
  let at = HEADER;
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i]!;
    const value = values[i];
    bytes[at] = value === undefined ? DELETE : PUT;
    putU32(bytes, at + 1, key.length);
    at = putBytes(bytes, at + 5, key);
    if (value !== undefined) {
      putU32(bytes, at, value.length);
      at = putBytes(bytes, at + 4, value);
    }
  }
  return bytes;
}

/** Writes `input` (bytes, or a binary string) at `at`; returns the offset after it. */
function putBytes(bytes: Uint8Array, at: number, input: Field): number {
  if (typeof input === 'string') {
    for (let i = 0; i < input.length; i++) bytes[at + i] = input.charCodeAt(i);
  } else {
    bytes.set(input, at);
  }
  return at + input.length;
}

/** Writes the u32 `value` little-endian at `at`. */
function putU32(bytes: Uint8Array, at: number, value: number): void {
  bytes[at] = value & 0xff;
  bytes[at + 1] = (value >>> 8) & 0xff;
  bytes[at + 2] = (value >>> 16) & 0xff;
  bytes[at + 3] = value >>> 24;
}

/**
 * Decodes the commit record stored at `lsn`. The keys and values are views
 * into `payload`. Throws `WAL_CORRUPTION` (offset `lsn`) for anything that is
 * not a well-formed commit record; no length read from the record is trusted
 * before it is checked against the bytes present.
 */
export function decodeCommit(payload: Uint8Array, lsn: number): Commit {
  const damaged = (what: string) =>
    new CorruptionError(`the record at ${lsn} is not a transaction commit: ${what}`, {
      offset: lsn,
    });
  if (payload.length < HEADER) throw damaged(`${payload.length} bytes is too short`);
  if (payload[0] !== COMMIT_KIND) throw damaged(`unknown record kind ${payload[0]}`);
  const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  const seq = view.getBigUint64(1, true);
  if (seq === 0n || seq > BigInt(Number.MAX_SAFE_INTEGER)) throw damaged(`commit sequence ${seq}`);
  const count = view.getUint32(9, true);
  // Every write takes at least 5 bytes: a count beyond that is damage.
  if (count > (payload.length - HEADER) / 5) throw damaged(`${count} writes cannot fit`);
  const writes: Write[] = [];
  let at = HEADER;
  const take = (length: number, what: string): Uint8Array => {
    if (length > payload.length - at)
      throw damaged(`${what} of ${length} bytes overruns the record`);
    const bytes = payload.subarray(at, at + length);
    at += length;
    return bytes;
  };
  for (let i = 0; i < count; i++) {
    if (payload.length - at < 5) throw damaged('a write is cut short');
    const op = payload[at]!;
    if (op !== PUT && op !== DELETE) throw damaged(`unknown write op ${op}`);
    const keyLength = view.getUint32(at + 1, true);
    at += 5;
    const key = take(keyLength, 'a key');
    let value: Uint8Array | undefined;
    if (op === PUT) {
      if (payload.length - at < 4) throw damaged('a value length is cut short');
      const valueLength = view.getUint32(at, true);
      at += 4;
      value = take(valueLength, 'a value');
    }
    writes.push({ key, value });
  }
  if (at !== payload.length) throw damaged(`${payload.length - at} bytes after the last write`);
  return { seq: Number(seq), writes };
}
