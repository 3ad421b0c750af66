/**
 * Cursors over the sources of a read — memtables and tables — in internal
 * order, and the merge of them. A cursor is positioned by `seek` in one
 * direction and then stepped in that direction.
 */
import { CorruptionError } from '@wal/errors';
import type { DecodedBlock } from './block.js';
import {
  compareBytes,
  internalKey,
  KIND_DELETE,
  KIND_VALUE,
  type Kind,
  MAX_SEQUENCE,
  trailerKind,
  trailerSequence,
  userKeyOf,
} from './coding.js';
import type { MemEntry, Memtable } from './memtable.js';
import { lowerBound, type Table } from './table.js';
import { firstEndingAtOrAfter } from './version.js';

/** A positioned source of versions. `key` is `undefined` once exhausted. */
export interface Cursor {
  key: Uint8Array | undefined;
  sequence: number;
  kind: Kind;
  value: Uint8Array | undefined;
  /**
   * Forward: to the first version whose user key is ≥ `key` (the first of
   * all when `undefined`). Reverse: to the last version whose user key is
   * ≤ `key` (the last of all when `undefined`).
   */
  seek(key: Uint8Array | undefined, reverse: boolean): Promise<void>;
  /** To the next version in the direction of the last seek. */
  step(): Promise<void>;
}

/** A cursor over a memtable. */
export class MemCursor implements Cursor {
  key: Uint8Array | undefined;
  sequence = 0;
  kind: Kind = KIND_VALUE;
  value: Uint8Array | undefined;
  #entry: MemEntry | undefined;
  #reverse = false;

  constructor(readonly memtable: Memtable) {}

  #set(entry: MemEntry | undefined): void {
    this.#entry = entry;
    this.key = entry?.key;
    if (entry !== undefined) {
      this.sequence = entry.sequence;
      this.kind = entry.kind;
      this.value = entry.value;
    }
  }

  async seek(key: Uint8Array | undefined, reverse: boolean): Promise<void> {
    this.#reverse = reverse;
    const memtable = this.memtable;
    if (reverse) {
      // (key, -1) sorts after every version of key.
      this.#set(key === undefined ? memtable.last() : memtable.seekBefore(key, -1));
    } else {
      this.#set(key === undefined ? memtable.first() : memtable.seek(key, MAX_SEQUENCE));
    }
  }

  async step(): Promise<void> {
    const entry = this.#entry;
    if (entry === undefined) return;
    this.#set(this.#reverse ? this.memtable.seekBefore(entry.key, entry.sequence) : entry.next[0]);
  }
}

/** A cursor over a table. */
export class TableCursor implements Cursor {
  key: Uint8Array | undefined;
  sequence = 0;
  kind: Kind = KIND_VALUE;
  value: Uint8Array | undefined;
  #block = -1;
  #decoded: DecodedBlock | undefined;
  #position = 0;
  #reverse = false;

  constructor(readonly table: Table) {}

  async #load(block: number, position: number | 'last'): Promise<void> {
    this.#block = block;
    if (block < 0 || block >= this.table.blocks) {
      this.#decoded = undefined;
      this.key = undefined;
      return;
    }
    this.#decoded = await this.table.readData(block);
    this.#position = position === 'last' ? this.#decoded.keys.length - 1 : position;
    this.#settle();
  }

  #settle(): void {
    const keys = this.#decoded!.keys;
    const key = keys[this.#position]!;
    const kind = trailerKind(key);
    if (kind !== KIND_DELETE && kind !== KIND_VALUE) {
      throw new CorruptionError(`table ${this.table.path} holds an entry of unknown kind ${kind}`);
    }
    this.key = userKeyOf(key);
    this.sequence = trailerSequence(key);
    this.kind = kind;
    this.value = this.#decoded!.values[this.#position];
  }

  async seek(key: Uint8Array | undefined, reverse: boolean): Promise<void> {
    this.#reverse = reverse;
    const table = this.table;
    if (key === undefined) {
      await this.#load(reverse ? table.blocks - 1 : 0, reverse ? 'last' : 0);
      return;
    }
    if (!reverse) {
      const target = internalKey(key, MAX_SEQUENCE, KIND_VALUE);
      const block = table.blockFor(target);
      if (block === undefined) return this.#load(table.blocks, 0);
      const decoded = await table.readData(block);
      return this.#load(block, lowerBound(decoded.keys, target));
    }
    // The last version with user key ≤ key: before the first entry past (key, 0).
    const target = internalKey(key, 0, KIND_DELETE);
    const block = table.blockFor(target);
    if (block === undefined) return this.#load(table.blocks - 1, 'last');
    const decoded = await table.readData(block);
    let position = lowerBound(decoded.keys, target);
    if (position < decoded.keys.length && compareBytes(decoded.keys[position]!, target) === 0) {
      position++;
    }
    if (position === 0) return this.#load(block - 1, 'last');
    return this.#load(block, position - 1);
  }

  async step(): Promise<void> {
    if (this.#decoded === undefined) return;
    if (this.#reverse) {
      if (this.#position > 0) {
        this.#position--;
        this.#settle();
      } else await this.#load(this.#block - 1, 'last');
    } else if (this.#position + 1 < this.#decoded.keys.length) {
      this.#position++;
      this.#settle();
    } else await this.#load(this.#block + 1, 0);
  }
}

/** Internal order of two positioned cursors (user key ascending, sequence descending). */
function order(a: Cursor, b: Cursor): number {
  const byKey = compareBytes(a.key!, b.key!);
  return byKey !== 0 ? byKey : b.sequence - a.sequence;
}

/** The merge of several cursors; `current` is the one positioned at the next version. */
export class MergedCursor {
  current: Cursor | undefined;
  #reverse = false;

  constructor(readonly sources: readonly Cursor[]) {}

  async seek(key: Uint8Array | undefined, reverse: boolean): Promise<void> {
    this.#reverse = reverse;
    for (const source of this.sources) await source.seek(key, reverse);
    this.#pick();
  }

  async step(): Promise<void> {
    await this.current?.step();
    this.#pick();
  }

  #pick(): void {
    let best: Cursor | undefined;
    for (const source of this.sources) {
      if (source.key === undefined) continue;
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
  async #open(index: number, key: Uint8Array | undefined): Promise<void> {
    for (;;) {
      this.#index = index;
      const entry = this.tables[index];
      if (entry === undefined) {
        this.#inner = undefined;
        this.key = undefined;
        return;
      }
      this.#inner = new TableCursor(entry.table);
      await this.#inner.seek(key, this.#reverse);
      if (this.#inner.key !== undefined) {
        this.#copy();
        return;
      }
      index += this.#reverse ? -1 : 1;
      key = undefined;
    }
  }

  async seek(key: Uint8Array | undefined, reverse: boolean): Promise<void> {
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

  async step(): Promise<void> {
    const inner = this.#inner;
    if (inner === undefined) return;
    await inner.step();
    if (inner.key !== undefined) this.#copy();
    else await this.#open(this.#index + (this.#reverse ? -1 : 1), undefined);
  }
}
