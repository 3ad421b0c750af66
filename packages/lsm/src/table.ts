/**
 * Sorted tables (docs/LSM-FORMAT.md §2–§5): immutable files of internal-key
 * entries in data blocks, an index block, a bloom filter block and a footer.
 * {@link buildTable} makes the bytes; {@link Table} reads them, checking
 * every block's CRC-32C and every length against the file before using it.
 */

import { Buffer } from 'node:buffer';
import { crc32c } from '@wal/core';
import { ClosedError, CorruptionError, errorCode } from '@wal/errors';
import { type Fs, type FsFile, readFull, readFullSync } from '@wal/store';
import {
  BLOCK_TRAILER_SIZE,
  BlockBuilder,
  BlockScanner,
  checkBlock,
  checkDataBlock,
  checkedDataBlock,
  type DataBlock,
  type DecodedBlock,
  damaged,
  decodeBlock,
  writeBlock,
} from './block.js';
import { type BlockCache, TABLE_KEY_SPAN } from './block-cache.js';
import { bloomHash, buildFilter, filterMayContain } from './bloom.js';
import {
  compareBytes,
  compareInternal,
  compareInternalAt,
  getU32,
  getU64,
  internalKey,
  KIND_RANGE_DELETE,
  Malformed,
  Output,
  putU32,
  putU64,
  Reader,
  TRAILER_SIZE,
  trailerKind,
  trailerSequence,
  userKeyOf,
} from './coding.js';
import { ioError } from './files.js';
import type { RangeTombstone } from './range-delete.js';

/** Size of the table footer. */
export const FOOTER_SIZE = 48;
/** The footer's last 8 bytes: ASCII `@wal/sst`. */
export const TABLE_MAGIC = new TextEncoder().encode('@wal/sst');
/** The table format version of a table without range deletions (48-byte footer). */
export const TABLE_VERSION = 1;
/** The table format version of a table with a range-deletion block (60-byte footer). */
export const TABLE_VERSION_RANGES = 2;
/** Bytes a version-2 footer has before the version-1 layout: the range-deletion block's handle. */
const RANGE_HANDLE_SIZE = 12;

/** How tables are laid out (options of the store). */
export interface TableLayout {
  /** Target size of a data block's contents, in bytes. */
  readonly blockSize: number;
  /** Entries between restart points. */
  readonly restartInterval: number;
  /** Bloom filter bits per key (0: no filter). */
  readonly bitsPerKey: number;
}

/** Whether `key[0, length)` equals `other[0, length)`. */
function samePrefix(key: Uint8Array, other: Uint8Array, length: number): boolean {
  for (let i = 0; i < length; i++) if (key[i] !== other[i]) return false;
  return true;
}

/** What a built table holds, recorded in the manifest. */
export interface TableSummary {
  /** Entries (versions) in the table. */
  readonly entries: number;
  /** Smallest internal key. */
  readonly smallest: Uint8Array;
  /** Largest internal key. */
  readonly largest: Uint8Array;
}

/**
 * Builds a table incrementally (docs/LSM-FORMAT.md §2–§5): entries are added
 * in internal-key order (user key ascending, sequence descending); finished
 * data blocks are handed out by {@link TableBuilder.take} so a writer can
 * put them in the file as they fill. What it holds between two takes is the
 * blocks finished since the last take, the block being filled, one index
 * entry per data block and one 4-byte hash per distinct user key (for the
 * filter).
 */
export class TableBuilder {
  readonly #layout: TableLayout;
  readonly #out = new Output(4096);
  readonly #index = new BlockBuilder(1);
  readonly #hashes: number[] = [];
  readonly #handle = new Output(16);
  readonly #block: BlockBuilder;
  /** Bytes handed out by `take` so far: the file offset of `#out`'s first byte. */
  #base = 0;
  /** The last internal key added: its first `#lastLength` bytes (a copy); -1 before the first. */
  #last = new Uint8Array(32);
  #lastLength = -1;
  #smallest: Uint8Array | undefined;
  #count = 0;

  constructor(layout: TableLayout) {
    this.#layout = layout;
    this.#block = new BlockBuilder(layout.restartInterval);
  }

  /** Bytes of finished blocks not taken yet. */
  get pending(): number {
    return this.#out.length;
  }

  /**
   * Adds an entry: internal key `key[0, keyLength)`, value `value[valueStart,
   * valueEnd)`, both copied (the caller may reuse its buffers once this
   * returns); the key must sort after the previous one's.
   */
  add(
    key: Uint8Array,
    value: Uint8Array,
    keyLength = key.length,
    valueStart = 0,
    valueEnd = value.length,
  ): void {
    this.#smallest ??= key.slice(0, keyLength);
    const userLength = keyLength - TRAILER_SIZE;
    if (this.#lastLength !== keyLength || !samePrefix(key, this.#last, userLength)) {
      this.#hashes.push(bloomHash(key, userLength));
    }
    this.#block.add(key, value, keyLength, valueStart, valueEnd);
    if (keyLength > this.#last.length)
      this.#last = new Uint8Array(Math.max(keyLength, 2 * this.#last.length));
    const last = this.#last;
    for (let i = 0; i < keyLength; i++) last[i] = key[i]!;
    this.#lastLength = keyLength;
    this.#count++;
    if (this.#block.estimatedSize >= this.#layout.blockSize) this.#finishBlock();
  }

  /** A copy of the last internal key added, or `undefined` when none was. */
  #lastKey(): Uint8Array | undefined {
    return this.#lastLength < 0 ? undefined : this.#last.slice(0, this.#lastLength);
  }

  #finishBlock(): void {
    const offset = this.#base + this.#out.length;
    const contents = this.#block.finish();
    writeBlock(this.#out, contents);
    this.#handle.clear();
    this.#handle.varint(offset);
    this.#handle.varint(contents.length);
    const handle = this.#handle.view();
    this.#index.add(this.#last, handle, this.#lastLength, 0, handle.length);
    // Its contents are copied out: the next block reuses its buffers.
    this.#block.reset();
  }

  /** Hands out the finished blocks not taken yet (a copy; empty when none). */
  take(): Uint8Array {
    const chunk = this.#out.view().slice();
    this.#base += chunk.length;
    this.#out.clear();
    return chunk;
  }

  /**
   * Finishes the table with `ranges` (any order; a table with some is
   * format version 2): returns the bytes not taken yet, the table's size and
   * its summary. Throws `RangeError` for a table with no entry and no range
   * deletion.
   */
  finish(ranges: readonly RangeTombstone[] = []): {
    rest: Uint8Array;
    size: number;
    summary: TableSummary;
  } {
    const out = this.#out;
    let smallest: Uint8Array | undefined = this.#smallest;
    let largest: Uint8Array | undefined = this.#lastKey();
    let count = this.#count;
    if (this.#block.count > 0) this.#finishBlock();
    const filterOffset = this.#base + out.length;
    const filter = buildFilter(this.#hashes, this.#layout.bitsPerKey);
    writeBlock(out, filter);
    // The range-deletion block (version 2 only): start ‖ trailer → end, in internal order.
    const rangeOffset = this.#base + out.length;
    let rangeSize = 0;
    if (ranges.length > 0) {
      const sorted = ranges
        .map((r) => ({ key: internalKey(r.start, r.sequence, KIND_RANGE_DELETE), end: r.end, r }))
        .sort((a, b) => compareInternal(a.key, b.key));
      const rangeBlock = new BlockBuilder(this.#layout.restartInterval);
      for (const { key, end, r } of sorted) {
        rangeBlock.add(key, end, key.length, 0, end.length);
        // The table's key range covers every range deletion (its end counted in).
        const last = internalKey(end, r.sequence, KIND_RANGE_DELETE);
        if (smallest === undefined || compareInternal(key, smallest) < 0) smallest = key;
        if (largest === undefined || compareInternal(last, largest) > 0) largest = last;
        count++;
      }
      const contents = rangeBlock.finish();
      rangeSize = contents.length;
      writeBlock(out, contents);
    }
    if (smallest === undefined || largest === undefined) {
      throw new RangeError('a table holds at least one entry');
    }
    const indexOffset = this.#base + out.length;
    const indexContents = this.#index.finish();
    writeBlock(out, indexContents);
    const footerStart = out.length;
    if (ranges.length > 0) {
      const head = out.reserve(RANGE_HANDLE_SIZE);
      putU64(head, out.length, rangeOffset);
      putU32(head, out.length + 8, rangeSize);
      out.length += RANGE_HANDLE_SIZE;
    }
    const footer = out.reserve(FOOTER_SIZE);
    const at = out.length;
    putU64(footer, at, indexOffset);
    putU32(footer, at + 8, indexContents.length);
    putU64(footer, at + 12, filterOffset);
    putU32(footer, at + 20, filter.length);
    putU64(footer, at + 24, count);
    putU32(footer, at + 32, ranges.length > 0 ? TABLE_VERSION_RANGES : TABLE_VERSION);
    putU32(footer, at + 36, crc32c(footer.subarray(footerStart, at + 36)));
    footer.set(TABLE_MAGIC, at + 40);
    out.length += FOOTER_SIZE;
    const rest = this.take();
    return {
      rest,
      size: this.#base,
      summary: { entries: count, smallest: smallest.slice(), largest: largest.slice() },
    };
  }
}

/**
 * Builds a whole table in memory from entries given in internal-key order
 * and range deletions (any order); see {@link TableBuilder}. At least one
 * entry or range deletion; throws `RangeError` otherwise.
 */
export function buildTable(
  entries: Iterable<readonly [key: Uint8Array, value: Uint8Array]>,
  layout: TableLayout,
  ranges: readonly RangeTombstone[] = [],
): { bytes: Uint8Array; summary: TableSummary } {
  const builder = new TableBuilder(layout);
  for (const [key, value] of entries) builder.add(key, value);
  const { rest, summary } = builder.finish(ranges);
  return { bytes: rest, summary };
}

/** An entry found by {@link Table.get}: the internal key and the value (copies the caller keeps). */
export interface Found {
  readonly key: Uint8Array;
  readonly value: Uint8Array;
}

interface Handle {
  readonly offset: number;
  readonly size: number;
}

/**
 * An open table file. Holds its index and filter in memory (their size is
 * bounded by the file's size); reads data blocks on demand.
 */
export class Table {
  readonly #fs: Fs;
  readonly #file: FsFile;
  /** Last internal key of each data block. */
  readonly #index: TableIndex;
  readonly #filter: Uint8Array;
  readonly #cache: BlockCache | undefined;
  /** This table's number in the cache's keys. */
  readonly #cacheBase: number;
  /** Read a missed block for a get or a seek with `preadSync`. */
  readonly #syncReads: boolean;
  #closed = false;

  private constructor(
    fs: Fs,
    file: FsFile,
    readonly path: string,
    readonly size: number,
    readonly entries: number,
    /** The table's range deletions (empty for a version-1 table). */
    readonly ranges: readonly RangeTombstone[],
    index: TableIndex,
    filter: Uint8Array,
    cache: BlockCache | undefined,
  ) {
    const number = cache?.newTable();
    this.#cache = number === undefined ? undefined : cache;
    this.#cacheBase = (number ?? 0) * TABLE_KEY_SPAN;
    this.#syncReads = (cache?.syncReads ?? true) && fs.preadSync !== undefined;
    this.#fs = fs;
    this.#file = file;
    this.#index = index;
    this.#filter = filter;
  }

  /**
   * Opens the table at `path`: reads and checks the footer, the index and the
   * filter. Rejects with `WAL_CORRUPTION` (naming the file and the offset)
   * for a file that is not a table, a wrong version, an index whose data
   * blocks do not lie end to end from offset 0 to the filter block, or any
   * other damage, and with
   * `WAL_IO` when the file cannot be read. Nothing stays open on rejection.
   */
  static async open(fs: Fs, path: string, cache?: BlockCache): Promise<Table> {
    let file: FsFile;
    try {
      file = await fs.open(path, 'read');
    } catch (error) {
      throw errorCode(error) === 'ENOENT'
        ? new CorruptionError(`table ${path} is missing`, { cause: error })
        : ioError(error, `opening table ${path}`);
    }
    try {
      return await Table.#load(fs, file, path, cache);
    } catch (error) {
      await fs.close(file).catch(() => undefined);
      throw error;
    }
  }

  static async #load(
    fs: Fs,
    file: FsFile,
    path: string,
    cache: BlockCache | undefined,
  ): Promise<Table> {
    let size: number;
    try {
      size = await fs.size(file);
    } catch (error) {
      throw ioError(error, `measuring table ${path}`);
    }
    if (size < FOOTER_SIZE) {
      throw damaged(path, 0, `${size} bytes, shorter than a footer`);
    }
    const footerAt = size - FOOTER_SIZE;
    const footer = await readExactly(fs, file, path, footerAt, FOOTER_SIZE);
    if (compareBytes(footer.subarray(40), TABLE_MAGIC) !== 0) {
      throw damaged(path, footerAt + 40, 'no table magic (not a table, or damaged)');
    }
    // Version 2 puts the range-deletion block's handle before the 48 bytes.
    const version = getU32(footer, 32);
    let rangeHead: Uint8Array = new Uint8Array(0);
    let footerStart = footerAt;
    if (version === TABLE_VERSION_RANGES && size >= FOOTER_SIZE + RANGE_HANDLE_SIZE) {
      footerStart = footerAt - RANGE_HANDLE_SIZE;
      rangeHead = await readExactly(fs, file, path, footerStart, RANGE_HANDLE_SIZE);
    }
    const covered = new Uint8Array(rangeHead.length + 36);
    covered.set(rangeHead);
    covered.set(footer.subarray(0, 36), rangeHead.length);
    if (crc32c(covered) !== getU32(footer, 36)) {
      throw damaged(path, footerAt, 'footer checksum mismatch');
    }
    if (version !== TABLE_VERSION && version !== TABLE_VERSION_RANGES) {
      throw damaged(
        path,
        footerAt + 32,
        `table format version ${version}, expected ${TABLE_VERSION} or ${TABLE_VERSION_RANGES}`,
      );
    }
    let index: Handle;
    let filterHandle: Handle;
    let entries: number;
    try {
      index = { offset: getU64(footer, 0), size: getU32(footer, 8) };
      filterHandle = { offset: getU64(footer, 12), size: getU32(footer, 20) };
      entries = getU64(footer, 24);
    } catch (error) {
      throw damaged(path, footerAt + (error as Malformed).at, (error as Malformed).message);
    }
    checkHandle(path, index, footerStart, footerAt);
    checkHandle(path, filterHandle, footerStart, footerAt + 12);
    const ranges: RangeTombstone[] = [];
    if (rangeHead.length > 0) {
      const handle = { offset: getU64(rangeHead, 0), size: getU32(rangeHead, 8) };
      checkHandle(path, handle, footerStart, footerStart);
      const contents = await readBlock(fs, file, path, handle);
      const block = decode(path, handle.offset, contents, TRAILER_SIZE);
      for (let i = 0; i < block.keys.length; i++) {
        const key = block.keys[i]!;
        const start = userKeyOf(key);
        const end = block.values[i]!;
        if (trailerKind(key) !== KIND_RANGE_DELETE || compareBytes(start, end) >= 0) {
          throw damaged(path, handle.offset, `range deletion ${i} is not a range deletion`);
        }
        if (i > 0 && compareInternal(block.keys[i - 1]!, key) >= 0) {
          throw damaged(path, handle.offset, `range deletions out of order at entry ${i}`);
        }
        ranges.push({ start, end, sequence: trailerSequence(key) });
      }
    }
    const filter = await readBlock(fs, file, path, filterHandle);
    const indexContents = await readBlock(fs, file, path, index);
    // Restart interval 1 (§3): no entry shares a prefix.
    const decoded = decode(path, index.offset, indexContents, TRAILER_SIZE, false);
    const handles: Handle[] = [];
    // The data blocks lie end to end from offset 0 to the filter block, in
    // the index's order (§2): a compaction reads runs of them with one read.
    let next = 0;
    for (let i = 0; i < decoded.keys.length; i++) {
      const value = decoded.values[i]!;
      const reader = new Reader(value, 0, value.length);
      let handle: Handle;
      try {
        handle = { offset: reader.varint('block offset'), size: reader.varint('block size') };
        if (!reader.done) throw new Malformed('trailing bytes in a block handle', reader.at);
      } catch (error) {
        throw damaged(path, index.offset, `index entry ${i}: ${(error as Error).message}`);
      }
      checkHandle(path, handle, filterHandle.offset, index.offset);
      if (handle.offset !== next) {
        throw damaged(
          path,
          index.offset,
          `index entry ${i}: data block at offset ${handle.offset}, expected at ${next}`,
        );
      }
      next = handle.offset + handle.size + BLOCK_TRAILER_SIZE;
      if (i > 0 && compareInternal(decoded.keys[i - 1]!, decoded.keys[i]!) >= 0) {
        throw damaged(path, index.offset, `index keys out of order at entry ${i}`);
      }
      handles.push(handle);
    }
    if (next !== filterHandle.offset) {
      throw damaged(
        path,
        footerAt + 12,
        `filter block at offset ${filterHandle.offset}, expected at ${next} after the data blocks`,
      );
    }
    const compact = packIndex(decoded.keys, handles);
    return new Table(fs, file, path, size, entries, ranges, compact, filter, cache);
  }

  /** Number of data blocks. */
  get blocks(): number {
    return this.#index.offsets.length;
  }

  /**
   * Bytes this open table holds in memory for as long as it is open: its
   * packed index, its filter and its range deletions' keys (plus a few
   * hundred bytes of objects and a file handle).
   */
  get memoryBytes(): number {
    let ranges = 0;
    for (const range of this.ranges) ranges += range.start.length + range.end.length;
    return indexBytes(this.#index) + this.#filter.byteLength + ranges;
  }

  /**
   * True when the filter says `userKey` may be present (false: certainly
   * absent); `hash` is its {@link bloomHash}, when the caller has it.
   */
  mayContain(userKey: Uint8Array, hash = bloomHash(userKey)): boolean {
    return filterMayContain(this.#filter, hash);
  }

  /** Index of the first data block whose last key is ≥ `target`, or `undefined`. */
  blockFor(target: Uint8Array): number | undefined {
    const { keys, keyStarts, offsets } = this.#index;
    let low = 0;
    let high = offsets.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      const start = keyStarts[mid]!;
      if (compareInternalAt(keys, start, keyStarts[mid + 1]! - start, target) < 0) low = mid + 1;
      else high = mid;
    }
    return low < offsets.length ? low : undefined;
  }

  /**
   * The newest version of `userKey` with a sequence number ≤ that of
   * `target` (an internal key of `userKey`), or `undefined` when the table
   * holds none. Uses the filter first, then one data block, searched
   * without decoding it. Rejects with `WAL_CORRUPTION`, `WAL_IO`,
   * `WAL_CLOSED`.
   */
  async get(userKey: Uint8Array, target: Uint8Array): Promise<Found | undefined> {
    if (!this.mayContain(userKey)) return undefined;
    const block = this.blockFor(target);
    if (block === undefined) return undefined;
    const data = this.blockNow(block) ?? (await this.dataBlock(block));
    try {
      const scanner = SCANNER;
      if (!scanner.seek(data, target)) return undefined;
      const key = scanner.key;
      const userLength = scanner.keyLength - TRAILER_SIZE;
      if (userLength !== userKey.length) return undefined;
      for (let i = 0; i < userLength; i++) if (key[i] !== userKey[i]) return undefined;
      return { key: key.slice(0, scanner.keyLength), value: scanner.value().slice() };
    } finally {
      SCANNER.shrink();
      this.release(data);
    }
  }

  /**
   * Data block `block`, checked (docs/LSM-FORMAT.md §3: CRC, lengths,
   * restart points, key order, last key = its index key), from the block
   * cache or read and then cached. A block missing from the cache is read
   * synchronously (`Fs.preadSync`, when the file system has it and the
   * store's `syncReads` allows it) unless it is read `ahead` of a scan.
   * Shared: do not modify it. The block comes held for the caller, who
   * must hand it back with {@link Table.release} once done with it and
   * every view into it (its buffer is then reused when the cache evicted
   * it; a block never released is only left to the garbage collector).
   * Rejects with `WAL_CORRUPTION`, `WAL_IO`, or `WAL_CLOSED` once the
   * store closed it.
   */
  async dataBlock(block: number, ahead = false): Promise<DataBlock> {
    if (!ahead) {
      const now = this.blockNow(block);
      if (now !== undefined) return now;
    } else {
      const cached = this.#cached(block);
      if (cached !== undefined) return cached;
    }
    const handle = this.#handle(block);
    const raw = this.#buffer(handle);
    await readExactly(this.#fs, this.#file, this.path, handle.offset, raw.length, raw);
    return this.#keep(block, handle, raw);
  }

  /**
   * The end of the window of data blocks a compaction reads from block
   * `first` on with one read of about `size` bytes: the blocks
   * `[first, end)` (end to end in the file, as {@link Table.open} checked
   * every data block is), from block `first` (always in it, whatever its
   * size) up to the last one that keeps the window within `size` bytes.
   */
  windowEnd(first: number, size: number): number {
    const { offsets, sizes } = this.#index;
    let end = offsets[first]! + sizes[first]! + BLOCK_TRAILER_SIZE;
    let block = first + 1;
    for (; block < offsets.length; block++) {
      const next = end + sizes[block]! + BLOCK_TRAILER_SIZE;
      if (next - offsets[first]! > size) break;
      end = next;
    }
    return block;
  }

  /**
   * The data blocks `[first, end)` (a window from {@link Table.windowEnd})
   * for a compaction, read with one read through the thread pool (never
   * `Fs.preadSync`: a compaction does not block the event loop) into
   * `buffer` (when too small or missing, a new one of at least `capacity`
   * bytes, handed back with the blocks), and each checked as {@link Table.dataBlock} checks a block.
   * Past the block cache, as LevelDB reads a compaction's inputs
   * (`fill_cache = false`): a compaction neither inserts the blocks of
   * tables it is about to delete nor evicts a reader's working set. The
   * blocks are views into the buffer, not to be released: they are valid
   * until the buffer is read into again. Rejects with `WAL_CORRUPTION`
   * (naming the table and the offset), `WAL_IO`, or `WAL_CLOSED` once the
   * store closed the table.
   */
  async inputBlocks(
    first: number,
    end: number,
    buffer: Uint8Array<ArrayBuffer> | undefined,
    capacity = 0,
  ): Promise<{ blocks: DataBlock[]; buffer: Uint8Array<ArrayBuffer> }> {
    if (this.#closed) throw new ClosedError('store');
    const { offsets, sizes } = this.#index;
    const start = offsets[first]!;
    // The handles come from the checked index: blocks end to end, within the table's data.
    const length = offsets[end - 1]! + sizes[end - 1]! + BLOCK_TRAILER_SIZE - start;
    const into =
      buffer !== undefined && buffer.length >= length
        ? buffer
        : new Uint8Array(Buffer.allocUnsafeSlow(Math.max(length, capacity)).buffer);
    await readExactly(this.#fs, this.#file, this.path, start, length, into.subarray(0, length));
    const blocks: DataBlock[] = [];
    for (let block = first; block < end; block++) {
      const handle = this.#handle(block);
      const at = handle.offset - start;
      blocks.push(
        this.#check(block, handle, into.subarray(at, at + handle.size + BLOCK_TRAILER_SIZE)),
      );
    }
    return { blocks, buffer: into };
  }

  /**
   * {@link Table.dataBlock} without waiting: the block from the cache, or
   * read with `Fs.preadSync` when the store reads synchronously;
   * `undefined` when it can only be read through the thread pool. Throws
   * what that rejects with.
   */
  blockNow(block: number): DataBlock | undefined {
    const cached = this.#cached(block);
    if (cached !== undefined || !this.#syncReads) return cached;
    const handle = this.#handle(block);
    const raw = this.#buffer(handle);
    readExactlySync(this.#fs, this.#file, this.path, handle.offset, raw);
    return this.#keep(block, handle, raw);
  }

  /** Block `block` from the cache, held; throws `WAL_CLOSED` once the store closed the table. */
  #cached(block: number): DataBlock | undefined {
    // Only a store's close() closes a table a reader may still hold.
    if (this.#closed) throw new ClosedError('store');
    const cached = this.#cache?.get(this.#cacheBase + block);
    if (cached !== undefined) cached.pins++;
    return cached;
  }

  #handle(block: number): Handle {
    return { offset: this.#index.offsets[block]!, size: this.#index.sizes[block]! };
  }

  /** A buffer to read the block at `handle` and its trailer into. */
  #buffer(handle: Handle): Uint8Array<ArrayBuffer> {
    const length = handle.size + BLOCK_TRAILER_SIZE;
    return this.#cache?.buffer(length) ?? new Uint8Array(length);
  }

  /**
   * Checks block `block` (`raw`: its contents and trailer, read at
   * `handle`), caches it and returns it held. The CRC is checked on every
   * read; the entries only when no copy of the block with this CRC passed
   * their check before (the file never changes, so a block with the CRC of
   * a checked one is that block).
   */
  #keep(block: number, handle: Handle, raw: Uint8Array): DataBlock {
    const data = this.#check(block, handle, raw);
    this.#cache?.set(this.#cacheBase + block, data);
    return data;
  }

  /** {@link Table.#keep} without caching: block `block` checked and held. */
  #check(block: number, handle: Handle, raw: Uint8Array): DataBlock {
    const contents = checked(this.path, handle, raw);
    const crc = getU32(raw, contents.length + 1);
    const index = this.#index;
    let data: DataBlock;
    try {
      if (index.checked[block] === 1 && index.crcs[block] === crc)
        data = checkedDataBlock(contents);
      else {
        const last = index.keys.subarray(index.keyStarts[block]!, index.keyStarts[block + 1]!);
        data = checkDataBlock(contents, TRAILER_SIZE, last);
        index.crcs[block] = crc;
        index.checked[block] = 1;
      }
    } catch (error) {
      if (!(error instanceof Malformed)) throw error;
      throw damaged(this.path, handle.offset + error.at, error.message);
    }
    data.pins = 1;
    data.path = this.path;
    data.offset = handle.offset;
    return data;
  }

  /** Hands back a block {@link Table.dataBlock} gave; see there. */
  release(data: DataBlock): void {
    this.#cache?.release(data);
  }

  /**
   * Data block `block` decoded into arrays of copies (a new decoding each
   * call; for reverse iteration and tests). Rejects as {@link Table.dataBlock}.
   */
  async readData(block: number): Promise<DecodedBlock> {
    const data = await this.dataBlock(block);
    try {
      const decoded = decode(this.path, data.offset, data.contents, TRAILER_SIZE);
      const values = decoded.values;
      for (let i = 0; i < values.length; i++) values[i] = values[i]!.slice();
      return decoded;
    } finally {
      this.release(data);
    }
  }

  /**
   * Closes the file and evicts the table's blocks from the block cache
   * (blocks readers still hold stay valid until released). Idempotent.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#cache?.evict(this.#cacheBase, this.blocks);
    await this.#fs.close(this.#file).catch(() => undefined);
  }
}

/** Index of the first key ≥ `target` in the sorted `keys` (internal order). */
export function lowerBound(keys: readonly Uint8Array[], target: Uint8Array): number {
  let low = 0;
  let high = keys.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if (compareInternal(keys[mid]!, target) < 0) low = mid + 1;
    else high = mid;
  }
  return low;
}

/**
 * A table's index, packed: the last keys of the data blocks end to end
 * (block `i`'s is `keys[keyStarts[i], keyStarts[i + 1])`) and the blocks'
 * handles. Its memory is its bytes: no object per block.
 */
interface TableIndex {
  readonly keys: Uint8Array;
  readonly keyStarts: Uint32Array;
  readonly offsets: Float64Array;
  readonly sizes: Uint32Array;
  /** Per block: 1 once a copy of it passed `checkDataBlock`, with the CRC in `crcs`. */
  readonly checked: Uint8Array;
  readonly crcs: Uint32Array;
}

function packIndex(keys: readonly Uint8Array[], handles: readonly Handle[]): TableIndex {
  const keyStarts = new Uint32Array(keys.length + 1);
  for (let i = 0; i < keys.length; i++) keyStarts[i + 1] = keyStarts[i]! + keys[i]!.length;
  const packed = new Uint8Array(keyStarts[keys.length]!);
  for (let i = 0; i < keys.length; i++) packed.set(keys[i]!, keyStarts[i]!);
  return {
    keys: packed,
    keyStarts,
    offsets: Float64Array.from(handles, (h) => h.offset),
    sizes: Uint32Array.from(handles, (h) => h.size),
    checked: new Uint8Array(handles.length),
    crcs: new Uint32Array(handles.length),
  };
}

/** Bytes a packed index holds. */
function indexBytes(index: TableIndex): number {
  return (
    index.keys.byteLength +
    index.keyStarts.byteLength +
    index.offsets.byteLength +
    index.sizes.byteLength +
    index.checked.byteLength +
    index.crcs.byteLength
  );
}

/** The scanner of {@link Table.get}: used synchronously, between awaits, so one serves every table. */
const SCANNER = new BlockScanner();

/** @internal For tests: the key buffer of {@link Table.get}'s scanner. */
export function tableScannerKeyBuffer(): Uint8Array {
  return SCANNER.key;
}

function checkHandle(path: string, handle: Handle, end: number, at: number): void {
  if (handle.offset + handle.size + BLOCK_TRAILER_SIZE > end) {
    throw damaged(path, at, `block [${handle.offset}, +${handle.size}) runs past offset ${end}`);
  }
}

/** {@link decodeBlock} of the block at file offset `base` of table `path`; damage is `WAL_CORRUPTION` naming both. */
function decode(
  path: string,
  base: number,
  contents: Uint8Array,
  minKey: number,
  prefixes = true,
): DecodedBlock {
  try {
    return decodeBlock(contents, minKey, prefixes);
  } catch (error) {
    if (!(error instanceof Malformed)) throw error;
    throw damaged(path, base + error.at, error.message);
  }
}

async function readExactly(
  fs: Fs,
  file: FsFile,
  path: string,
  offset: number,
  length: number,
  bytes = new Uint8Array(length),
): Promise<Uint8Array> {
  let count: number;
  try {
    count = await readFull(fs, file, bytes, offset);
  } catch (error) {
    throw ioError(error, `reading table ${path} at ${offset}`);
  }
  if (count < length) throw damaged(path, offset + count, 'file ends inside a block');
  return bytes;
}

/** Reads the block at `handle` into `raw` (its size plus the trailer's; not zero-filled: a short read is refused) and checks it. */
async function readBlock(
  fs: Fs,
  file: FsFile,
  path: string,
  handle: Handle,
  raw = new Uint8Array(handle.size + BLOCK_TRAILER_SIZE),
): Promise<Uint8Array> {
  await readExactly(fs, file, path, handle.offset, raw.length, raw);
  return checked(path, handle, raw);
}

/** {@link readExactly} into `bytes` with `fs.preadSync` (which the caller made sure exists). */
function readExactlySync(
  fs: Fs,
  file: FsFile,
  path: string,
  offset: number,
  bytes: Uint8Array,
): void {
  let count: number;
  try {
    count = readFullSync(fs, file, bytes, offset);
  } catch (error) {
    throw ioError(error, `reading table ${path} at ${offset}`);
  }
  if (count < bytes.length) throw damaged(path, offset + count, 'file ends inside a block');
}

/** The contents of the block `raw` (contents ‖ trailer) read at `handle`, checked. */
function checked(path: string, handle: Handle, raw: Uint8Array): Uint8Array {
  try {
    return checkBlock(raw);
  } catch (error) {
    if (!(error instanceof Malformed)) throw error;
    throw damaged(path, handle.offset + error.at, error.message);
  }
}
