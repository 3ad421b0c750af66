/**
 * Blocks (docs/LSM-FORMAT.md §3): sorted entries with key prefix compression
 * and restart points, followed by the restart array and its count; on disk
 * each block is followed by a 5-byte trailer (type byte, CRC-32C).
 */
import { crc32c } from '@wal/core';
import { getU32, Malformed, Output, putU32, Reader } from './coding.js';

/** Size of the trailer after every block: type u8, CRC-32C u32. */
export const BLOCK_TRAILER_SIZE = 5;
/** The only block type written and read: uncompressed. */
export const BLOCK_TYPE_PLAIN = 0;

/** Builds one block's contents from entries added in sorted order. */
export class BlockBuilder {
  readonly #out = new Output();
  readonly #restarts: number[] = [0];
  #sinceRestart = 0;
  #last: Uint8Array = new Uint8Array(0);
  #count = 0;

  constructor(readonly restartInterval: number) {}

  /** Entries added. */
  get count(): number {
    return this.#count;
  }

  /** Size of the contents if finished now. */
  get estimatedSize(): number {
    return this.#out.length + 4 * this.#restarts.length + 4;
  }

  /** Adds an entry; `key` must sort after the previous one (not checked here). */
  add(key: Uint8Array, value: Uint8Array): void {
    let shared = 0;
    if (this.#sinceRestart === this.restartInterval) {
      this.#restarts.push(this.#out.length);
      this.#sinceRestart = 0;
    } else {
      const limit = Math.min(key.length, this.#last.length);
      while (shared < limit && key[shared] === this.#last[shared]) shared++;
    }
    const out = this.#out;
    out.varint(shared);
    out.varint(key.length - shared);
    out.varint(value.length);
    out.bytes(key.subarray(shared));
    out.bytes(value);
    this.#last = key;
    this.#sinceRestart++;
    this.#count++;
  }

  /** The finished contents: entries, restart offsets (u32 each), restart count (u32). */
  finish(): Uint8Array {
    for (const restart of this.#restarts) this.#out.u32(restart);
    this.#out.u32(this.#restarts.length);
    return this.#out.view();
  }
}

/** Appends `contents` and its trailer to `out`. */
export function writeBlock(out: Output, contents: Uint8Array): void {
  out.bytes(contents);
  const trailer = out.reserve(BLOCK_TRAILER_SIZE);
  const at = out.length;
  trailer[at] = BLOCK_TYPE_PLAIN;
  // CRC over the contents and the type byte.
  const crc = crc32c(trailer.subarray(at - contents.length, at + 1));
  putU32(trailer, at + 1, crc);
  out.length += BLOCK_TRAILER_SIZE;
}

/**
 * Checks the trailer of a block read as `contents ‖ trailer` (`raw`), and
 * returns the contents. Throws {@link Malformed} (offsets relative to `raw`).
 */
export function checkBlock(raw: Uint8Array): Uint8Array {
  const size = raw.length - BLOCK_TRAILER_SIZE;
  if (size < 0) throw new Malformed('block shorter than its trailer', 0);
  const stored = getU32(raw, size + 1);
  if (crc32c(raw.subarray(0, size + 1)) !== stored) {
    throw new Malformed('block checksum mismatch', size);
  }
  if (raw[size] !== BLOCK_TYPE_PLAIN) throw new Malformed(`unknown block type ${raw[size]}`, size);
  return raw.subarray(0, size);
}

/** A decoded block: its keys and values in order (values are views into the block's bytes). */
export interface DecodedBlock {
  readonly keys: Uint8Array[];
  readonly values: Uint8Array[];
}

/**
 * Decodes block contents, checking every length, the restart array (first
 * restart 0, increasing, each at an entry with no shared prefix) and that
 * keys are at least `minKeyLength` bytes. Throws {@link Malformed} with
 * offsets relative to `contents`.
 */
export function decodeBlock(contents: Uint8Array, minKeyLength: number): DecodedBlock {
  const size = contents.length;
  if (size < 4) throw new Malformed('block shorter than its restart count', 0);
  const count = getU32(contents, size - 4);
  if (count < 1 || count > (size - 4) / 4) {
    throw new Malformed(`block claims ${count} restart points`, size - 4);
  }
  const entriesEnd = size - 4 - 4 * count;
  const restarts: number[] = [];
  for (let i = 0; i < count; i++) {
    const restart = getU32(contents, entriesEnd + 4 * i);
    const previous = restarts.at(-1);
    if (
      (i === 0 && restart !== 0) ||
      (previous !== undefined && restart <= previous) ||
      (restart >= entriesEnd && !(restart === 0 && entriesEnd === 0))
    ) {
      throw new Malformed(
        `restart point ${i} (${restart}) out of order or range`,
        entriesEnd + 4 * i,
      );
    }
    restarts.push(restart);
  }
  const keys: Uint8Array[] = [];
  const values: Uint8Array[] = [];
  const reader = new Reader(contents, 0, entriesEnd);
  let last = new Uint8Array(0);
  let nextRestart = 0;
  while (!reader.done) {
    const start = reader.at;
    const atRestart = nextRestart < restarts.length && restarts[nextRestart] === start;
    if (nextRestart < restarts.length && restarts[nextRestart]! < start) {
      throw new Malformed('restart point inside an entry', start);
    }
    const shared = reader.bounded('shared key length', last.length);
    if (atRestart) {
      if (shared !== 0) throw new Malformed('entry at a restart point shares a prefix', start);
      nextRestart++;
    }
    const unshared = reader.bounded('key length', entriesEnd);
    const valueLength = reader.bounded('value length', entriesEnd);
    const suffix = reader.take(unshared, 'key');
    const value = reader.take(valueLength, 'value');
    const key = new Uint8Array(shared + unshared);
    key.set(last.subarray(0, shared));
    key.set(suffix, shared);
    if (key.length < minKeyLength) throw new Malformed(`key of ${key.length} bytes`, start);
    keys.push(key);
    values.push(value);
    last = key;
  }
  if (nextRestart < restarts.length && !(entriesEnd === 0 && restarts.length === 1)) {
    throw new Malformed('restart point past the last entry', entriesEnd);
  }
  return { keys, values };
}
