/**
 * Cursors over the sources of a read — memtables and tables — in internal
 * order, and the merge of them. A cursor is positioned by `seek` in one
 * direction and then stepped in that direction.
 */
import { CorruptionError } from '@wal/errors';
import { BlockScanner, type DataBlock, type DecodedBlock } from './block.js';
import { bloomHash } from './bloom.js';
import {
  compareBytes,
  internalKey,
  KIND_DELETE,
  KIND_VALUE,
  type Kind,
  MAX_SEQUENCE,
  sequenceAt,
  TRAILER_SIZE,
  userKeyOf,
} from './coding.js';
import type { MemEntry, Memtable } from './memtable.js';
import { lowerBound, type Table } from './table.js';
import { firstEndingAtOrAfter } from './version.js';

/**
 * A positioned source of versions. `key` is `undefined` once exhausted;
 * `key` and `value` may be views that the next step or seek overwrites.
 */
export interface Cursor {
  key: Uint8Array | undefined;
  sequence: number;
  kind: Kind;
  value: Uint8Array | undefined;
  /**
   * Forward: to the first version whose user key is ≥ `key` (the first of
   * all when `undefined`). Reverse: to the last version whose user key is
   * ≤ `key` (the last of all when `undefined`). Done when it returns
   * `undefined`, else once the promise (a block read) resolves.
   */
  seek(key: Uint8Array | undefined, reverse: boolean): Promise<void> | undefined;
  /**
   * To the next version in the direction of the last seek: done when it
   * returns `undefined`, else once the promise (a block read) resolves.
   */
  step(): Promise<void> | undefined;
  /** Lets go of the blocks it holds; it is not used after this. Idempotent. */
  close(): void;
  /**
   * False when the source certainly holds no version of the user key `key`
   * (its bloom filters say so, or no table of it covers the key), without
   * reading a block; true when it may. `hash` is the key's {@link bloomHash}.
   * Sources without it are always sought.
   */
  mayHold?(key: Uint8Array, hash: number): boolean;
}

/** A cursor over a memtable. */
export class MemCursor implements Cursor {
  key: Uint8Array | undefined;
  sequence = 0;
  kind: Kind = KIND_VALUE;
  #entry: MemEntry | undefined;
  #reverse = false;

  constructor(readonly memtable: Memtable) {}

  /** The current entry's value (made on demand: most steps never read it). */
  get value(): Uint8Array | undefined {
    return this.#entry?.value;
  }

  #set(entry: MemEntry | undefined): void {
    this.#entry = entry;
    this.key = entry?.key;
    if (entry !== undefined) {
      this.sequence = entry.sequence;
      this.kind = entry.kind;
    }
  }

  seek(key: Uint8Array | undefined, reverse: boolean): undefined {
    this.#reverse = reverse;
    const memtable = this.memtable;
    if (reverse) {
      // (key, -1) sorts after every version of key.
      this.#set(key === undefined ? memtable.last() : memtable.seekBefore(key, -1));
    } else {
      this.#set(key === undefined ? memtable.first() : memtable.seek(key, MAX_SEQUENCE));
    }
  }

  step(): undefined {
    const entry = this.#entry;
    if (entry === undefined) return;
    this.#set(this.#reverse ? this.memtable.seekBefore(entry.key, entry.sequence) : entry.next);
  }

  close(): void {}
}

/**
 * A cursor over a table. Forward, it reads the entries of the cached,
 * still encoded data blocks one at a time ({@link BlockScanner}); reverse,
 * it decodes each block it enters into arrays.
 */
export class TableCursor implements Cursor {
  key: Uint8Array | undefined;
  sequence = 0;
  kind: Kind = KIND_VALUE;
  value: Uint8Array | undefined;
  #block = -1;
  /** Forward: the scanner over block `#block`. */
  readonly #scanner = new BlockScanner();
  /** Forward: the block the scanner is on, held (see `Table.dataBlock`). */
  #held: DataBlock | undefined;
  /** The block read ahead of a forward scan. */
  #ahead: { readonly block: number; readonly data: Promise<DataBlock> } | undefined;
  /** Reverse: block `#block` decoded. */
  #decoded: DecodedBlock | undefined;
  #position = 0;
  #reverse = false;

  constructor(readonly table: Table) {}

  #end(): void {
    this.#decoded = undefined;
    this.#hold(undefined);
    this.key = undefined;
  }

  /** Makes `data` the held block, letting go of the one held before. */
  #hold(data: DataBlock | undefined): void {
    const held = this.#held;
    this.#held = data;
    this.#scanner.block = undefined;
    if (held !== undefined) this.table.release(held);
  }

  /** Lets go of the block read ahead, once its read is done. */
  #dropAhead(): void {
    const ahead = this.#ahead;
    this.#ahead = undefined;
    const table = this.table;
    ahead?.data.then(
      (data) => table.release(data),
      () => undefined,
    );
  }

  close(): void {
    this.#dropAhead();
    this.#end();
  }

  mayHold(key: Uint8Array, hash: number): boolean {
    return this.table.mayContain(key, hash);
  }

  /** Forward: to the first entry of the first block from `block` on with an entry ≥ `target`. */
  async #forward(block: number, target: Uint8Array | undefined, sequential = false): Promise<void> {
    const scanner = this.#scanner;
    for (; block < this.table.blocks; block++) {
      this.#block = block;
      const data = await this.#read(block, sequential);
      this.#hold(data);
      if (target === undefined) {
        scanner.start(data);
        if (scanner.advance()) return this.#settleScanned();
      } else if (scanner.seek(data, target)) return this.#settleScanned();
      target = undefined;
      sequential = true;
    }
    this.#end();
  }

  /**
   * Data block `block`: the one read ahead when it is that one, else read
   * now. A read that steps into the next block (a sequential scan) starts
   * reading the block after it, so the read overlaps the scan of this one;
   * a seek reads only the block it needs.
   */
  #read(block: number, sequential = false): Promise<DataBlock> {
    const ahead = this.#ahead;
    let data: Promise<DataBlock>;
    if (ahead !== undefined && ahead.block === block) {
      this.#ahead = undefined;
      data = ahead.data;
    } else {
      this.#dropAhead();
      data = this.table.dataBlock(block);
    }
    if (sequential && block + 1 < this.table.blocks) {
      const next = this.table.dataBlock(block + 1, true);
      next.catch(() => undefined); // rejects again, to its reader, if it is read
      this.#ahead = { block: block + 1, data: next };
    }
    return data;
  }

  #settleScanned(): void {
    const scanner = this.#scanner;
    const end = scanner.keyLength;
    this.#settle(scanner.key, end, scanner.value());
    // A view, valid until the next step (the scanner reuses its key buffer).
    this.key = scanner.key.subarray(0, end - TRAILER_SIZE);
  }

  /** Reverse: to entry `position` (or the last) of `block`. */
  async #backward(block: number, position: number | 'last'): Promise<void> {
    this.#block = block;
    if (block < 0 || block >= this.table.blocks) return this.#end();
    this.#decoded = await this.table.readData(block);
    this.#position = position === 'last' ? this.#decoded.keys.length - 1 : position;
    this.#settleDecoded();
  }

  #settleDecoded(): void {
    const key = this.#decoded!.keys[this.#position]!;
    this.#settle(key, key.length, this.#decoded!.values[this.#position]!);
    this.key = userKeyOf(key);
  }

  /** Sequence, kind and value of the internal key `key[0, end)`. */
  #settle(key: Uint8Array, end: number, value: Uint8Array): void {
    const kind = key[end - TRAILER_SIZE]!;
    if (kind !== KIND_DELETE && kind !== KIND_VALUE) {
      throw new CorruptionError(`table ${this.table.path} holds an entry of unknown kind ${kind}`);
    }
    this.sequence = sequenceAt(key, end);
    this.kind = kind;
    this.value = value;
  }

  seek(key: Uint8Array | undefined, reverse: boolean): Promise<void> | undefined {
    this.#reverse = reverse;
    const table = this.table;
    if (!reverse) {
      this.#decoded = undefined;
      if (key === undefined) return this.#forward(0, undefined);
      const target = internalKey(key, MAX_SEQUENCE, KIND_VALUE);
      const block = table.blockFor(target);
      if (block === undefined) {
        this.#dropAhead();
        this.#end();
        return;
      }
      // The block from the cache or read synchronously: no wait.
      const data = table.blockNow(block);
      if (data === undefined) return this.#forward(block, target);
      this.#dropAhead();
      this.#block = block;
      this.#hold(data);
      // The block's last key is ≥ target: the seek ends in it.
      if (!this.#scanner.seek(data, target)) return this.#forward(block + 1, undefined, true);
      this.#settleScanned();
      return;
    }
    return this.#seekBackward(key);
  }

  async #seekBackward(key: Uint8Array | undefined): Promise<void> {
    const table = this.table;
    this.#dropAhead();
    this.#hold(undefined);
    if (key === undefined) return this.#backward(table.blocks - 1, 'last');
    // The last version with user key ≤ key: before the first entry past (key, 0).
    const target = internalKey(key, 0, KIND_DELETE);
    const block = table.blockFor(target);
    if (block === undefined) return this.#backward(table.blocks - 1, 'last');
    const decoded = await table.readData(block);
    let position = lowerBound(decoded.keys, target);
    if (position < decoded.keys.length && compareBytes(decoded.keys[position]!, target) === 0) {
      position++;
    }
    if (position === 0) return this.#backward(block - 1, 'last');
    return this.#backward(block, position - 1);
  }

  step(): Promise<void> | undefined {
    if (this.key === undefined) return;
    if (!this.#reverse) {
      if (!this.#scanner.advance()) return this.#forward(this.#block + 1, undefined, true);
      this.#settleScanned();
    } else if (this.#position > 0) {
      this.#position--;
      this.#settleDecoded();
    } else return this.#backward(this.#block - 1, 'last');
    return undefined;
  }
}

/** Internal order of two positioned cursors (user key ascending, sequence descending). */
function order(a: Cursor, b: Cursor): number {
  const byKey = compareBytes(a.key!, b.key!);
  return byKey !== 0 ? byKey : b.sequence - a.sequence;
}

/**
 * The merge of several cursors; `current` is the one positioned at the next
 * version.
 *
 * A forward seek to a key positions lazily. It seeks, in the order given
 * (newest first: every version a source holds is newer than the versions
 * of the same user key in the sources after it), the sources that may hold
 * a version of the key itself (every memtable, and the tables whose filter
 * does not rule the key out), and none after one that landed on the key
 * without waiting. When a sought source is on the key, the smallest user
 * key of the merge is the key and its newest version is in the sources
 * sought; the others are sought only once the merge steps past that
 * version. A seek followed by one read (a point lookup by iterator) then
 * reads one block instead of one per source.
 */
export class MergedCursor {
  current: Cursor | undefined;
  #reverse = false;
  /** Per source: not sought yet by the last (forward) seek, which was to `#pendingKey`. */
  readonly #pending: boolean[];
  #pendingKey: Uint8Array | undefined;

  constructor(readonly sources: readonly Cursor[]) {
    this.#pending = sources.map(() => false);
  }

  /**
   * Forward to `key`: the sources that may hold it, then (see the class) the
   * others; reverse, or from the start: every source. Their table reads
   * overlap on the thread pool.
   */
  seek(key: Uint8Array | undefined, reverse: boolean): Promise<void> | undefined {
    this.#reverse = reverse;
    this.#pendingKey = undefined;
    const hash = key !== undefined && !reverse ? bloomHash(key) : undefined;
    let reads: Promise<void>[] | undefined;
    let deferred = false;
    /** A source sought landed on the key: the sources after it hold only older versions of it. */
    let landed = false;
    const last = this.sources.length - 1;
    for (let i = 0; i <= last; i++) {
      const source = this.sources[i]!;
      // The last source left pending would be sought at once unless one before it
      // landed on the key, and then it is left pending without asking its filter.
      if (landed || (hash !== undefined && i < last && source.mayHold?.(key!, hash) === false)) {
        this.#pending[i] = true;
        deferred = true;
        continue;
      }
      this.#pending[i] = false;
      const reading = source.seek(key, reverse);
      if (reading === undefined) {
        landed =
          hash !== undefined && source.key !== undefined && compareBytes(source.key, key!) === 0;
        continue;
      }
      if (reads === undefined) reads = [reading];
      else reads.push(reading);
    }
    if (deferred) this.#pendingKey = key;
    if (reads === undefined) return this.#settleSeek();
    return Promise.all(reads).then(() => this.#settleSeek());
  }

  /** After the eager sources of a seek were positioned: the rest too, unless one is on the key. */
  #settleSeek(): Promise<void> | undefined {
    this.#pick();
    const key = this.#pendingKey;
    if (key === undefined) return;
    const current = this.current;
    if (current !== undefined && compareBytes(current.key!, key) === 0) return;
    const reading = this.#seekPending();
    if (reading === undefined) {
      this.#pick();
      return;
    }
    return reading.then(() => this.#pick());
  }

  /** Seeks the sources the last seek left pending, to its key. */
  #seekPending(): Promise<void> | undefined {
    const key = this.#pendingKey!;
    this.#pendingKey = undefined;
    let reads: Promise<void>[] | undefined;
    for (let i = 0; i < this.sources.length; i++) {
      if (!this.#pending[i]) continue;
      this.#pending[i] = false;
      const reading = this.sources[i]!.seek(key, false);
      if (reading === undefined) continue;
      if (reads === undefined) reads = [reading];
      else reads.push(reading);
    }
    if (reads === undefined) return undefined;
    return reads.length === 1 ? reads[0] : Promise.all(reads).then(() => undefined);
  }

  /** To the next version: done when it returns `undefined`, else once the promise resolves. */
  step(): Promise<void> | undefined {
    // The pending sources hold nothing at or before the current version's key: seek them now.
    const pending = this.#pendingKey === undefined ? undefined : this.#seekPending();
    const reading = this.current?.step();
    if (reading === undefined && pending === undefined) {
      this.#pick();
      return undefined;
    }
    const both =
      reading === undefined
        ? pending!
        : pending === undefined
          ? reading
          : Promise.all([reading, pending]);
    return both.then(() => this.#pick());
  }

  /** Closes every source. */
  close(): void {
    for (const source of this.sources) source.close();
    this.#pendingKey = undefined;
    this.current = undefined;
  }

  #pick(): void {
    let best: Cursor | undefined;
    const pending = this.#pendingKey === undefined ? undefined : this.#pending;
    for (let i = 0; i < this.sources.length; i++) {
      const source = this.sources[i]!;
      if (source.key === undefined || pending?.[i] === true) continue;
      if (best === undefined) best = source;
      else {
        const c = order(source, best);
        if (this.#reverse ? c > 0 : c < 0) best = source;
      }
    }
    this.current = best;
  }
}

/**
 * A cursor over one level ≥ 1: its tables never share a user key and are
 * given in key order, so only one of them is read at a time.
 */
export class LevelCursor implements Cursor {
  key: Uint8Array | undefined;
  sequence = 0;
  kind: Kind = KIND_VALUE;
  value: Uint8Array | undefined;
  #index = -1;
  #inner: TableCursor | undefined;
  #reverse = false;

  /** @param tables The level's tables, ordered by key, with their smallest and largest user keys. */
  constructor(
    readonly tables: readonly { table: Table; smallest: Uint8Array; largest: Uint8Array }[],
  ) {}

  #copy(): void {
    const inner = this.#inner;
    this.key = inner?.key;
    if (inner?.key !== undefined) {
      this.sequence = inner.sequence;
      this.kind = inner.kind;
      this.value = inner.value;
    }
  }

  /** Positions on table `index` at `key` (or its first / last entry), moving on past empty ends. */
  #open(index: number, key: Uint8Array | undefined): Promise<void> | undefined {
    for (;;) {
      this.#index = index;
      const entry = this.tables[index];
      if (entry === undefined) {
        this.close();
        return;
      }
      // A seek within the table already open reuses its cursor.
      if (this.#inner?.table !== entry.table) {
        this.#inner?.close();
        this.#inner = new TableCursor(entry.table);
      }
      const inner = this.#inner!;
      const reading = inner.seek(key, this.#reverse);
      if (reading !== undefined) return reading.then(() => this.#opened(inner, index));
      if (inner.key !== undefined) {
        this.#copy();
        return;
      }
      index += this.#reverse ? -1 : 1;
      key = undefined;
    }
  }

  /** After `inner`, on table `index`, was positioned: its version, or the next table's first. */
  #opened(inner: TableCursor, index: number): Promise<void> | undefined {
    if (inner.key !== undefined) {
      this.#copy();
      return;
    }
    return this.#open(index + (this.#reverse ? -1 : 1), undefined);
  }

  seek(key: Uint8Array | undefined, reverse: boolean): Promise<void> | undefined {
    this.#reverse = reverse;
    const tables = this.tables;
    if (key === undefined) return this.#open(reverse ? tables.length - 1 : 0, undefined);
    if (!reverse) return this.#open(firstEndingAtOrAfter(tables, key), key);
    // The last table whose smallest key is ≤ key.
    let low = 0;
    let high = tables.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (compareBytes(tables[mid]!.smallest, key) <= 0) low = mid + 1;
      else high = mid;
    }
    return this.#open(low - 1, key);
  }

  close(): void {
    this.#inner?.close();
    this.#inner = undefined;
    this.key = undefined;
  }

  mayHold(key: Uint8Array, hash: number): boolean {
    const entry = this.tables[firstEndingAtOrAfter(this.tables, key)];
    return (
      entry !== undefined &&
      compareBytes(entry.smallest, key) <= 0 &&
      entry.table.mayContain(key, hash)
    );
  }

  step(): Promise<void> | undefined {
    const inner = this.#inner;
    if (inner === undefined) return;
    const reading = inner.step();
    if (reading !== undefined) return reading.then(() => this.#stepped(inner));
    return this.#stepped(inner);
  }

  /** After `inner` stepped: its version, or the next table's first. */
  #stepped(inner: TableCursor): Promise<void> | undefined {
    if (inner.key === undefined)
      return this.#open(this.#index + (this.#reverse ? -1 : 1), undefined);
    this.#copy();
    return undefined;
  }
}
