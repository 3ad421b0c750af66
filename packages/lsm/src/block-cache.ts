/**
 * The block cache: data blocks as read from their tables (checked, still
 * encoded), shared by every table of a store, least recently used first
 * out, bounded by the bytes the blocks hold. The buffers of the blocks it
 * evicts are read into again once no reader holds them.
 */
import { Buffer } from 'node:buffer';
import type { DataBlock } from './block.js';

/** Bytes counted per cached block beyond its contents: the block's objects and the cache's entry. */
export const BLOCK_OVERHEAD = 160;

/** Blocks are read into buffers of a multiple of this size, so that a freed one fits the next read. */
export const BUFFER_GRAIN = 256;
/** Bytes of freed block buffers kept for reuse, at most. */
export const MAX_FREE_BYTES = 256 * 1024;

/** Blocks per table a cache key can tell apart. */
export const TABLE_KEY_SPAN = 2 ** 29;
const MAX_TABLES = 2 ** 24;

/** A cached block, linked in recency order. */
interface Entry {
  readonly key: number;
  readonly block: DataBlock;
  readonly size: number;
  /** The next more recently used, or `undefined` for the most recent. */
  newer: Entry | undefined;
  /** The next less recently used, or `undefined` for the least recent. */
  older: Entry | undefined;
}

/**
 * An LRU cache of data blocks, bounded in bytes: a map from key to entry
 * and a list of the entries in recency order, so that a hit and an
 * eviction take constant time (a `Map`'s insertion order would make each
 * eviction skip the holes left by the entries deleted before it).
 */
export class BlockCache {
  readonly #blocks = new Map<number, Entry>();
  #newest: Entry | undefined;
  #oldest: Entry | undefined;
  #bytes = 0;
  #tables = 0;
  /** Freed block buffers by size. */
  readonly #free = new Map<number, Uint8Array<ArrayBuffer>[]>();
  #freeBytes = 0;

  /**
   * @param capacity Bytes the cache may hold; 0 caches nothing.
   * @param syncReads Whether the tables sharing it read a block they miss
   *   for a get or a seek with the file system's synchronous `preadSync`
   *   (when it has one; blocks read ahead of a scan always go through the
   *   thread pool).
   */
  constructor(
    readonly capacity: number,
    readonly syncReads = true,
  ) {}

  /** Bytes held: the blocks' buffers plus {@link BLOCK_OVERHEAD} each. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Bytes of freed block buffers kept for reuse (at most {@link MAX_FREE_BYTES}). */
  get freeBytes(): number {
    return this.#freeBytes;
  }

  /**
   * A buffer of `length` bytes, not zero-filled, to read a block into: a
   * freed one of the same size class when there is one, else a new one of
   * `length` rounded up to {@link BUFFER_GRAIN}.
   */
  buffer(length: number): Uint8Array<ArrayBuffer> {
    const capacity = Math.ceil(length / BUFFER_GRAIN) * BUFFER_GRAIN;
    const reused = this.#free.get(capacity)?.pop();
    if (reused !== undefined) {
      this.#freeBytes -= capacity;
      return reused.subarray(0, length);
    }
    return new Uint8Array(Buffer.allocUnsafeSlow(capacity).buffer, 0, length);
  }

  /**
   * Lets go of a reader's hold on `block` (taken by `Table.dataBlock`):
   * once the cache evicted it and no reader holds it, its buffer is read
   * into again, so a reader must not touch the block (or a view into it)
   * after this.
   */
  release(block: DataBlock): void {
    if (block.pins === 0) return;
    block.pins--;
    if (block.pins === 0 && block.dropped) this.#recycle(block);
  }

  /**
   * A number for a newly opened table: its cache keys are
   * `table · 2^29 + block`. A table has fewer than 2^29 blocks (its index
   * block, at most 2^32 bytes, takes at least 13 bytes per block), so keys
   * stay exact integers for the first 2^24 tables a store opens (32 TiB of
   * 2 MiB tables); after those, `undefined`: the table reads uncached.
   */
  newTable(): number | undefined {
    return this.#tables < MAX_TABLES ? ++this.#tables : undefined;
  }

  /** The block cached under `key`, made the most recently used. */
  get(key: number): DataBlock | undefined {
    const hit = this.#blocks.get(key);
    if (hit === undefined) return undefined;
    if (hit !== this.#newest) {
      this.#unlink(hit);
      this.#link(hit);
    }
    return hit.block;
  }

  /** Caches `block`, evicting the least recently used. */
  set(key: number, block: DataBlock): void {
    const size = block.contents.buffer.byteLength + BLOCK_OVERHEAD;
    if (size > this.capacity) return;
    const old = this.#blocks.get(key);
    if (old !== undefined) this.#remove(old);
    const entry: Entry = { key, block, size, newer: undefined, older: undefined };
    this.#blocks.set(key, entry);
    this.#link(entry);
    this.#bytes += size;
    while (this.#bytes > this.capacity) this.#remove(this.#oldest!);
  }

  /**
   * Evicts the blocks cached under keys `[from, from + count)` (those of a
   * table being deleted), as an eviction does: a block a reader still
   * holds stays valid until released.
   */
  evict(from: number, count: number): void {
    for (let key = from; key < from + count; key++) {
      const entry = this.#blocks.get(key);
      if (entry !== undefined) this.#remove(entry);
    }
  }

  #remove(entry: Entry): void {
    this.#unlink(entry);
    this.#blocks.delete(entry.key);
    this.#bytes -= entry.size;
    const block = entry.block;
    block.dropped = true;
    if (block.pins === 0) this.#recycle(block);
  }

  /** Keeps the buffer of `block` (evicted, held by no reader) for a later read, within {@link MAX_FREE_BYTES}. */
  #recycle(block: DataBlock): void {
    const buffer = block.contents.buffer as ArrayBuffer;
    const capacity = buffer.byteLength;
    // Only the buffers this cache handed out (a whole buffer of a size class).
    if (capacity % BUFFER_GRAIN !== 0 || block.contents.byteOffset !== 0) return;
    if (this.#freeBytes + capacity > MAX_FREE_BYTES) return;
    const list = this.#free.get(capacity);
    if (list === undefined) this.#free.set(capacity, [new Uint8Array(buffer)]);
    else list.push(new Uint8Array(buffer));
    this.#freeBytes += capacity;
  }

  /** Makes `entry` (not linked) the most recent. */
  #link(entry: Entry): void {
    entry.older = this.#newest;
    entry.newer = undefined;
    if (this.#newest !== undefined) this.#newest.newer = entry;
    else this.#oldest = entry;
    this.#newest = entry;
  }

  #unlink(entry: Entry): void {
    if (entry.newer !== undefined) entry.newer.older = entry.older;
    else this.#newest = entry.older;
    if (entry.older !== undefined) entry.older.newer = entry.newer;
    else this.#oldest = entry.newer;
  }
}
