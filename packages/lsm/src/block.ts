/**
 * Blocks (docs/LSM-FORMAT.md §3): sorted entries with key prefix compression
 * and restart points, followed by the restart array and its count; on disk
 * each block is followed by a 5-byte trailer (type byte, CRC-32C).
 */
import { crc32c } from '@wal/core';
import { CorruptionError } from '@wal/errors';
import {
  compareInternalAt,
  getU32,
  Malformed,
  Output,
  putU32,
  Reader,
  sequenceAt,
  TRAILER_SIZE,
} from './coding.js';

/** Size of the trailer after every block: type u8, CRC-32C u32. */
export const BLOCK_TRAILER_SIZE = 5;
/** The only block type written and read: uncompressed. */
export const BLOCK_TYPE_PLAIN = 0;

/**
 * The most a block's keys may decode to, as a multiple of the bytes of its
 * entries (docs/LSM-FORMAT.md §3): decoding a block takes memory in
 * proportion to its size, whatever its bytes say.
 */
export const KEY_EXPANSION = 64;

/** The damage of a block whose keys, up to the entry at `at`, decode past {@link KEY_EXPANSION}. */
function keysTooLarge(entriesEnd: number, at: number): Malformed {
  return new Malformed(
    `keys decode to more than ${KEY_EXPANSION} times the block's ${entriesEnd} bytes of entries`,
    at,
  );
}

/** Builds one block's contents from entries added in sorted order. */
export class BlockBuilder {
  readonly #out = new Output();
  readonly #restarts: number[] = [0];
  #sinceRestart = 0;
  /** The last key added: its first `#lastLength` bytes (a copy, so callers may reuse their buffers). */
  #last = new Uint8Array(32);
  #lastLength = 0;
  #count = 0;
  /** Bytes of the keys added, whole: what a reader decodes them to. */
  #keyBytes = 0;

  constructor(readonly restartInterval: number) {}

  /** Entries added. */
  get count(): number {
    return this.#count;
  }

  /** Size of the contents if finished now. */
  get estimatedSize(): number {
    return this.#out.length + 4 * this.#restarts.length + 4;
  }

  /**
   * Adds an entry: key `key[0, keyLength)`, value `value[valueStart,
   * valueEnd)` (both copied: the caller may reuse its buffers once this
   * returns). The key must sort after the previous one (not checked here).
   */
  add(
    key: Uint8Array,
    value: Uint8Array,
    keyLength: number,
    valueStart: number,
    valueEnd: number,
  ): void {
    let shared = 0;
    let restart = this.#sinceRestart === this.restartInterval;
    if (!restart) {
      const last = this.#last;
      const limit = Math.min(keyLength, this.#lastLength);
      while (shared < limit && key[shared] === last[shared]) shared++;
      // Keys decode to at most KEY_EXPANSION times the entries' bytes
      // (§3): an entry that would break that is a restart point instead.
      // (A restart stores its whole key: the bound still holds after it.)
      const bytes = this.#out.length + keyLength - shared + (valueEnd - valueStart) + 3;
      if (shared > 0 && this.#keyBytes + keyLength > KEY_EXPANSION * bytes) {
        shared = 0;
        restart = true;
      }
    }
    if (restart) {
      this.#restarts.push(this.#out.length);
      this.#sinceRestart = 0;
    }
    this.#keyBytes += keyLength;
    const out = this.#out;
    out.varint(shared);
    out.varint(keyLength - shared);
    out.varint(valueEnd - valueStart);
    out.range(key, shared, keyLength);
    if (valueStart === 0 && valueEnd === value.length) out.bytes(value);
    else out.range(value, valueStart, valueEnd);
    // The first `shared` bytes are there already.
    if (keyLength > this.#last.length) {
      const grown = new Uint8Array(Math.max(keyLength, 2 * this.#last.length));
      for (let i = 0; i < shared; i++) grown[i] = this.#last[i]!;
      this.#last = grown;
    }
    const last = this.#last;
    for (let i = shared; i < keyLength; i++) last[i] = key[i]!;
    this.#lastLength = keyLength;
    this.#sinceRestart++;
    this.#count++;
  }

  /** Forgets the entries, keeping the buffers, to build the next block. */
  reset(): void {
    this.#out.clear();
    this.#restarts.length = 1;
    this.#sinceRestart = 0;
    this.#lastLength = 0;
    this.#count = 0;
    this.#keyBytes = 0;
  }

  /**
   * The finished contents: entries, restart offsets (u32 each), restart
   * count (u32). A view, valid until {@link BlockBuilder.reset}.
   */
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
 * Checks the restart array of block contents (a count that fits; first
 * restart 0, increasing, inside the entries, or a lone 0 when there are
 * none) and returns where the entries end and the count. Throws
 * {@link Malformed}.
 */
function restartArray(contents: Uint8Array): { entriesEnd: number; count: number } {
  const size = contents.length;
  if (size < 4) throw new Malformed('block shorter than its restart count', 0);
  const count = getU32(contents, size - 4);
  if (count < 1 || count > (size - 4) / 4) {
    throw new Malformed(`block claims ${count} restart points`, size - 4);
  }
  const entriesEnd = size - 4 - 4 * count;
  let previous = -1;
  for (let i = 0; i < count; i++) {
    const restart = getU32(contents, entriesEnd + 4 * i);
    if (
      (i === 0 && restart !== 0) ||
      restart <= previous ||
      (restart >= entriesEnd && !(restart === 0 && entriesEnd === 0))
    ) {
      throw new Malformed(
        `restart point ${i} (${restart}) out of order or range`,
        entriesEnd + 4 * i,
      );
    }
    previous = restart;
  }
  return { entriesEnd, count };
}

/**
 * Decodes block contents, checking every length, the restart array (first
 * restart 0, increasing, each at an entry with no shared prefix), that
 * keys are at least `minKeyLength` bytes and decode to at most
 * {@link KEY_EXPANSION} times the entries' bytes (checked before each key
 * is allocated: memory stays in proportion to the block), and, without
 * `prefixes` (a block of restart interval 1), that no entry shares a
 * prefix. Throws {@link Malformed} with offsets relative to `contents`.
 */
export function decodeBlock(
  contents: Uint8Array,
  minKeyLength: number,
  prefixes = true,
): DecodedBlock {
  const { entriesEnd, count } = restartArray(contents);
  const budget = KEY_EXPANSION * entriesEnd;
  let keyBytes = 0;
  const restarts: number[] = [];
  for (let i = 0; i < count; i++) restarts.push(getU32(contents, entriesEnd + 4 * i));
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
    if (!prefixes && shared !== 0) {
      throw new Malformed('entry of a block with restart interval 1 shares a prefix', start);
    }
    const unshared = reader.bounded('key length', entriesEnd);
    const valueLength = reader.bounded('value length', entriesEnd);
    const suffix = reader.take(unshared, 'key');
    const value = reader.take(valueLength, 'value');
    keyBytes += shared + unshared;
    if (keyBytes > budget) {
      throw keysTooLarge(entriesEnd, start);
    }
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

/**
 * A checked data block kept encoded (docs/LSM-FORMAT.md §3): what the block
 * cache holds. Its entries are decoded as they are read, by a
 * {@link BlockScanner}; {@link checkDataBlock} made sure that cannot fail.
 */
export interface DataBlock {
  /** The block's contents (entries, restart array, restart count). */
  readonly contents: Uint8Array;
  /** Offset of the restart array: the end of the entries. */
  readonly entriesEnd: number;
  /** Number of restart points. */
  readonly restarts: number;
  /**
   * Readers holding the block (a cursor on it, a get scanning it, a block
   * read ahead): while any does, its buffer is not reused.
   */
  pins: number;
  /** Set when the block cache let go of it: its buffer is reused once no reader holds it. */
  dropped: boolean;
  /** The table file the block was read from ('' when not from a file): for errors. */
  path: string;
  /** The offset of the block in that file: for errors. */
  offset: number;
}

/**
 * Above this many bytes, a key buffer shared by every check or read
 * ({@link dataBlockValid}'s, `Table.get`'s scanner) is let go of once the
 * call that needed it is done: a huge key once is not held for good. A key
 * buffer grows past it only for a key longer than it ({@link ensure}), so
 * keys up to it settle on one buffer.
 */
export const KEY_BUFFER_CAP = 64 * 1024;
/** The size of a key buffer when it is made: most keys fit. */
const KEY_BUFFER_SIZE = 64;

/** `WAL_CORRUPTION` for what is wrong at file offset `offset` of table `path`. */
export function damaged(path: string, offset: number, what: string): CorruptionError {
  return new CorruptionError(`table ${path} is damaged at offset ${offset}: ${what}`, { offset });
}

/**
 * `WAL_CORRUPTION` for what is wrong at `at` in `block`'s contents, naming
 * the table and the file offset.
 */
function damagedBlock(block: DataBlock, at: number, what: string): CorruptionError {
  return damaged(block.path, block.offset + at, what);
}

/**
 * The varint at `at` in checked block contents; its end goes to
 * `varintEnd`. Throws {@link Malformed} if it runs to `end` (the end of the
 * entries): the contents were checked once, but a block read again is only
 * known by its CRC, so its bytes are never trusted to stay in bounds.
 */
let varintEnd = 0;
function varintAt(bytes: Uint8Array, at: number, end: number): number {
  const start = at;
  let value = 0;
  let scale = 1;
  for (;;) {
    if (at >= end) throw new Malformed('varint runs past the entries', start);
    const byte = bytes[at++]!;
    value += (byte & 0x7f) * scale;
    if (byte < 0x80) {
      varintEnd = at;
      return value;
    }
    scale *= 128;
  }
}

/**
 * Grows `buffer` to hold at least `length` bytes, keeping its first `keep`
 * bytes: to twice `length`, but not past {@link KEY_BUFFER_CAP} unless
 * `length` is.
 */
function ensure(buffer: Uint8Array, length: number, keep: number): Uint8Array {
  if (buffer.length >= length) return buffer;
  const grown = new Uint8Array(Math.max(length, Math.min(2 * length, KEY_BUFFER_CAP)));
  grown.set(buffer.subarray(0, keep));
  return grown;
}

/**
 * Whether the internal key `key[0, length)` sorts after `last[0, lastLength)`
 * (both at least {@link TRAILER_SIZE} bytes), given that they share their
 * first `shared` bytes: the user keys are compared from there on, and only
 * equal ones by their trailers.
 */
function follows(
  last: Uint8Array,
  lastLength: number,
  key: Uint8Array,
  length: number,
  shared: number,
): boolean {
  const userLength = length - TRAILER_SIZE;
  const lastUserLength = lastLength - TRAILER_SIZE;
  const limit = Math.min(userLength, lastUserLength);
  for (let i = shared; i < limit; i++) {
    const difference = key[i]! - last[i]!;
    if (difference !== 0) return difference > 0;
  }
  if (userLength !== lastUserLength) return userLength > lastUserLength;
  return compareInternalAt(last, 0, lastLength, key, 0, length) < 0;
}

/**
 * Checks data block contents as {@link decodeBlock} does (every length, the
 * restart array, keys of at least `minKeyLength` bytes), and also that there
 * is an entry, that the keys are in strictly increasing internal order and
 * that the last one is `lastKey`, without decoding them into arrays. Throws
 * {@link Malformed} with offsets relative to `contents`.
 *
 * A block read from a table is checked on every cache miss, so the check
 * is one pass that allocates nothing ({@link dataBlockValid}); only a block
 * it refuses goes through {@link explainDataBlock}, which says what is wrong.
 */
export function checkDataBlock(
  contents: Uint8Array,
  minKeyLength: number,
  lastKey: Uint8Array,
): DataBlock {
  const { entriesEnd, count } = restartArray(contents);
  const valid = dataBlockValid(contents, entriesEnd, count, minKeyLength, lastKey);
  if (checkKey.length > KEY_BUFFER_CAP) checkKey = new Uint8Array(KEY_BUFFER_SIZE);
  if (!valid) {
    explainDataBlock(contents, entriesEnd, count, minKeyLength, lastKey);
    // Unreachable unless the two checks disagree: refuse the block anyway.
    throw new Malformed('data block refused by its check', 0);
  }
  return { contents, entriesEnd, restarts: count, pins: 0, dropped: false, path: '', offset: 0 };
}

/**
 * The {@link DataBlock} of contents whose entries passed
 * {@link checkDataBlock} before (the same bytes, read again): only the
 * restart array is checked again. Throws {@link Malformed}.
 */
export function checkedDataBlock(contents: Uint8Array): DataBlock {
  const { entriesEnd, count } = restartArray(contents);
  return { contents, entriesEnd, restarts: count, pins: 0, dropped: false, path: '', offset: 0 };
}

/**
 * The key buffer of {@link dataBlockValid} (used synchronously, so shared);
 * back to {@link KEY_BUFFER_SIZE} bytes after a check that grew it past
 * {@link KEY_BUFFER_CAP}.
 */
let checkKey: Uint8Array = new Uint8Array(KEY_BUFFER_SIZE);

/** @internal For tests: the key buffer the next check starts with. */
export function checkKeyBuffer(): Uint8Array {
  return checkKey;
}

/**
 * Whether the entries of data block `contents` (with a checked restart
 * array of `count` points ending them at `entriesEnd`) pass every check of
 * {@link checkDataBlock}. Each key is built in place over the previous one
 * (it keeps the previous key's first `shared` bytes), after its new bytes
 * were compared with the previous key's.
 */
function dataBlockValid(
  contents: Uint8Array,
  entriesEnd: number,
  count: number,
  minKeyLength: number,
  lastKey: Uint8Array,
): boolean {
  if (entriesEnd === 0) return false;
  let key = checkKey;
  let keyLength = 0;
  let at = 0;
  let nextRestart = 0;
  let restart = getU32(contents, entriesEnd);
  let entry = 0;
  let keyBytes = 0;
  while (at < entriesEnd) {
    const start = at;
    if (restart !== -1 && restart < start) return false;
    const shared = varintBelow(contents, at, entriesEnd);
    if (shared < 0 || shared > keyLength) return false;
    at = varintEnd;
    if (restart === start) {
      if (shared !== 0) return false;
      nextRestart++;
      restart = nextRestart < count ? getU32(contents, entriesEnd + 4 * nextRestart) : -1;
    }
    const unshared = varintBelow(contents, at, entriesEnd);
    if (unshared < 0) return false;
    const valueLength = varintBelow(contents, varintEnd, entriesEnd);
    if (valueLength < 0) return false;
    at = varintEnd;
    if (unshared > entriesEnd - at) return false;
    const length = shared + unshared;
    if (length < minKeyLength) return false;
    keyBytes += length;
    if (keyBytes > KEY_EXPANSION * entriesEnd) return false;
    if (length > key.length) {
      key = ensure(key, length, keyLength);
      checkKey = key;
    }
    if (entry > 0) {
      // User keys first: equal up to `shared`, then the new bytes decide.
      const user = length - TRAILER_SIZE;
      const previousUser = keyLength - TRAILER_SIZE;
      const limit = Math.min(user, previousUser);
      let difference = 0;
      for (let i = shared; i < limit && difference === 0; i++) {
        difference = contents[at + i - shared]! - key[i]!;
      }
      if (difference < 0 || (difference === 0 && user < previousUser)) return false;
      if (difference === 0 && user === previousUser) {
        // One user key: its versions come newest (highest sequence) first.
        const previousSequence = sequenceAt(key, keyLength);
        for (let i = shared; i < length; i++) key[i] = contents[at + i - shared]!;
        if (sequenceAt(key, length) >= previousSequence) return false;
      }
    }
    for (let i = shared; i < length; i++) key[i] = contents[at + i - shared]!;
    at += unshared;
    if (valueLength > entriesEnd - at) return false;
    at += valueLength;
    keyLength = length;
    entry++;
  }
  return nextRestart === count && compareInternalAt(key, 0, keyLength, lastKey) === 0;
}

/**
 * The varint at `at` in `bytes` (at most 8 bytes, all before `end`) if it
 * is at most `end`, else −1; its end goes to `varintEnd`.
 */
function varintBelow(bytes: Uint8Array, at: number, end: number): number {
  let value = 0;
  let scale = 1;
  for (let i = 0; i < 8 && at < end; i++) {
    const byte = bytes[at++]!;
    value += (byte & 0x7f) * scale;
    if (byte < 0x80) {
      varintEnd = at;
      return value <= end ? value : -1;
    }
    scale *= 128;
  }
  return -1;
}

/**
 * Throws {@link Malformed} saying what is wrong with the entries of data
 * block `contents` (see {@link dataBlockValid}), decoding them one by one.
 */
function explainDataBlock(
  contents: Uint8Array,
  entriesEnd: number,
  count: number,
  minKeyLength: number,
  lastKey: Uint8Array,
): void {
  if (entriesEnd === 0) throw new Malformed('empty data block', 0);
  const reader = new Reader(contents, 0, entriesEnd);
  let key: Uint8Array = new Uint8Array(64);
  let last: Uint8Array = new Uint8Array(64);
  let lastLength = 0;
  let nextRestart = 0;
  let entry = 0;
  let keyBytes = 0;
  while (!reader.done) {
    const start = reader.at;
    const restart = nextRestart < count ? getU32(contents, entriesEnd + 4 * nextRestart) : -1;
    if (restart !== -1 && restart < start) {
      throw new Malformed('restart point inside an entry', start);
    }
    const shared = reader.bounded('shared key length', lastLength);
    if (restart === start) {
      if (shared !== 0) throw new Malformed('entry at a restart point shares a prefix', start);
      nextRestart++;
    }
    const unshared = reader.bounded('key length', entriesEnd);
    const valueLength = reader.bounded('value length', entriesEnd);
    reader.need(unshared, 'key');
    const keyLength = shared + unshared;
    keyBytes += keyLength;
    if (keyBytes > KEY_EXPANSION * entriesEnd) {
      throw keysTooLarge(entriesEnd, start);
    }
    key = ensure(key, keyLength, 0);
    for (let i = 0; i < shared; i++) key[i] = last[i]!;
    for (let i = shared; i < keyLength; i++) key[i] = contents[reader.at++]!;
    reader.need(valueLength, 'value');
    reader.at += valueLength;
    if (keyLength < minKeyLength) throw new Malformed(`key of ${keyLength} bytes`, start);
    if (entry > 0 && !follows(last, lastLength, key, keyLength, shared)) {
      throw new Malformed(`keys out of order at entry ${entry}`, start);
    }
    [key, last] = [last, key];
    lastLength = keyLength;
    entry++;
  }
  if (nextRestart < count) throw new Malformed('restart point past the last entry', entriesEnd);
  if (compareInternalAt(last, 0, lastLength, lastKey) !== 0) {
    throw new Malformed('data block does not end at its index key', 0);
  }
}

/**
 * Reads the entries of a {@link DataBlock} in order, one at a time, into a
 * key buffer it reuses (LevelDB's block iterator): `key[0, keyLength)` is
 * the current internal key, `contents[valueStart, valueEnd)` its value.
 * Positioned by {@link BlockScanner.seek} or {@link BlockScanner.start},
 * moved by {@link BlockScanner.advance}.
 */
export class BlockScanner {
  block: DataBlock | undefined;
  key: Uint8Array = new Uint8Array(KEY_BUFFER_SIZE);
  keyLength = 0;
  valueStart = 0;
  valueEnd = 0;
  #next = 0;

  /** Before the first entry of `block`: {@link BlockScanner.advance} reads it. */
  start(block: DataBlock): void {
    this.#restart(block, 0);
  }

  #restart(block: DataBlock, restart: number): void {
    this.block = block;
    this.#next = getU32(block.contents, block.entriesEnd + 4 * restart);
    this.keyLength = 0;
  }

  /**
   * Reads the next entry; false (and unchanged) past the last one. Throws
   * `WAL_CORRUPTION` for an entry that does not fit in the block's entries
   * (bytes that changed since their check while keeping their CRC).
   */
  advance(): boolean {
    const block = this.block;
    const start = this.#next;
    if (block === undefined || start >= block.entriesEnd) return false;
    const contents = block.contents;
    const end = block.entriesEnd;
    let shared: number;
    let unshared: number;
    let valueLength: number;
    try {
      shared = varintAt(contents, start, end);
      unshared = varintAt(contents, varintEnd, end);
      valueLength = varintAt(contents, varintEnd, end);
    } catch (error) {
      throw damagedBlock(block, (error as Malformed).at, (error as Malformed).message);
    }
    let at = varintEnd;
    if (shared > this.keyLength || unshared + valueLength > end - at) {
      throw damagedBlock(block, start, 'entry runs past the entries');
    }
    const keyLength = shared + unshared;
    this.key = ensure(this.key, keyLength, shared);
    const key = this.key;
    for (let i = shared; i < keyLength; i++) key[i] = contents[at++]!;
    this.keyLength = keyLength;
    this.valueStart = at;
    this.valueEnd = at + valueLength;
    this.#next = this.valueEnd;
    return true;
  }

  /**
   * To the first entry whose internal key is ≥ `target`; false when every
   * entry of `block` is smaller. Binary search over the restart points (a
   * restart entry's key is whole in the contents), then a scan.
   */
  seek(block: DataBlock, target: Uint8Array): boolean {
    const contents = block.contents;
    let low = 0;
    let high = block.restarts - 1;
    while (low < high) {
      const mid = (low + high + 1) >>> 1;
      const length = restartKeyLength(block, getU32(contents, block.entriesEnd + 4 * mid));
      if (compareInternalAt(contents, varintEnd, length, target) < 0) low = mid;
      else high = mid - 1;
    }
    this.#restart(block, low);
    while (this.advance()) {
      if (compareInternalAt(this.key, 0, this.keyLength, target) >= 0) return true;
    }
    return false;
  }

  /** The current value (a view into the block's contents). */
  value(): Uint8Array {
    return this.block!.contents.subarray(this.valueStart, this.valueEnd);
  }

  /**
   * Lets go of a key buffer grown past {@link KEY_BUFFER_CAP} (a scanner
   * shared by every read keeps no huge key's buffer). Only once the current
   * key is no longer needed.
   */
  shrink(): void {
    if (this.key.length > KEY_BUFFER_CAP) {
      this.key = new Uint8Array(KEY_BUFFER_SIZE);
      this.keyLength = 0;
    }
  }
}

/**
 * The key length of the entry at restart offset `at` of `block` (its key
 * starts at `varintEnd`). Throws as {@link BlockScanner.advance}.
 */
function restartKeyLength(block: DataBlock, at: number): number {
  const { contents, entriesEnd } = block;
  let length: number;
  try {
    varintAt(contents, at, entriesEnd); // shared: 0 at a restart point
    length = varintAt(contents, varintEnd, entriesEnd);
    varintAt(contents, varintEnd, entriesEnd);
  } catch (error) {
    throw damagedBlock(block, (error as Malformed).at, (error as Malformed).message);
  }
  if (length > entriesEnd - varintEnd) throw damagedBlock(block, at, 'key runs past the entries');
  return length;
}
