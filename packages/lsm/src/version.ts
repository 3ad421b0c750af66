/**
 * Versions: the set of live tables by level, reference-counted so that
 * reads (gets, iterators) keep the tables they started on open while flushes
 * and compactions replace them. A table leaves the disk only once no version
 * holds it and the edit that dropped it is durable (the caller's job to
 * order).
 *
 * Level 0 tables may overlap and are kept newest first (by number); the
 * tables of a level ≥ 1 never overlap and are kept by smallest key.
 */
import { compareBytes, userKeyOf } from './coding.js';
import { LEVELS, type TableEntry } from './manifest.js';
import type { Table } from './table.js';

/** An open table and how many versions hold it. */
export class LiveTable {
  refs = 0;
  /** Set once an edit dropped it: closed and deleted when `refs` reaches 0. */
  obsolete = false;
  /**
   * The table this one was moved from (the same file and `Table`, a level
   * up): older versions may still read it, so the file is closed and
   * deleted only once neither is held.
   */
  movedFrom: LiveTable | undefined;

  /** Smallest user key. */
  readonly smallest: Uint8Array;
  /** Largest user key. */
  readonly largest: Uint8Array;

  constructor(
    readonly entry: TableEntry,
    readonly table: Table,
  ) {
    this.smallest = userKeyOf(entry.smallest);
    this.largest = userKeyOf(entry.largest);
  }

  /** True when [smallest, largest] meets the user-key range [low, high]. */
  overlaps(low: Uint8Array, high: Uint8Array): boolean {
    return compareBytes(this.largest, low) >= 0 && compareBytes(this.smallest, high) <= 0;
  }
}

/**
 * In the key-ordered tables of a level ≥ 1, the index of the first one whose
 * largest user key is ≥ `key` (`tables.length` when none).
 */
export function firstEndingAtOrAfter(
  tables: readonly { readonly largest: Uint8Array }[],
  key: Uint8Array,
): number {
  let low = 0;
  let high = tables.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if (compareBytes(tables[mid]!.largest, key) < 0) low = mid + 1;
    else high = mid;
  }
  return low;
}

/** Orders one level's tables: level 0 newest first, others by smallest key. */
export function sortLevel(level: number, tables: LiveTable[]): LiveTable[] {
  return level === 0
    ? tables.sort((a, b) => b.entry.number - a.entry.number)
    : tables.sort((a, b) => compareBytes(a.smallest, b.smallest));
}

/** An immutable set of live tables by level. */
export class Version {
  refs = 0;

  constructor(readonly levels: readonly (readonly LiveTable[])[]) {
    for (const level of levels) for (const table of level) table.refs++;
  }

  /** Every table, level 0 first. */
  *tables(): IterableIterator<LiveTable> {
    for (const level of this.levels) yield* level;
  }

  /** Total file bytes of `level`. */
  bytes(level: number): number {
    let total = 0;
    for (const table of this.levels[level]!) total += table.entry.size;
    return total;
  }

  /**
   * The tables a get of `key` must look at, in the order they must be
   * looked at: level 0 newest first, then at most one per deeper level.
   */
  *candidates(key: Uint8Array): IterableIterator<LiveTable> {
    for (const table of this.levels[0]!) {
      if (table.overlaps(key, key)) yield table;
    }
    for (let level = 1; level < LEVELS; level++) {
      const tables = this.levels[level]!;
      const table = tables[firstEndingAtOrAfter(tables, key)];
      if (table !== undefined && compareBytes(table.smallest, key) <= 0) yield table;
    }
  }

  /** The tables of `level` that meet [low, high]. */
  overlapping(level: number, low: Uint8Array, high: Uint8Array): LiveTable[] {
    return this.levels[level]!.filter((table) => table.overlaps(low, high));
  }

  /**
   * A new version: this one without the tables numbered in `removed`, with
   * `added` (already sorted into their levels).
   */
  edit(removed: ReadonlySet<number>, added: readonly LiveTable[]): Version {
    const levels = this.levels.map((level) => level.filter((t) => !removed.has(t.entry.number)));
    for (const table of added) levels[table.entry.level]!.push(table);
    return new Version(levels.map((tables, level) => sortLevel(level, tables)));
  }
}

/** An empty version: no tables at any level. */
export function emptyLevels(): LiveTable[][] {
  return Array.from({ length: LEVELS }, () => []);
}
