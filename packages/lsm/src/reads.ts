/**
 * The read path (docs/LSM-FORMAT.md §11): a point lookup through the
 * memtables and the tables a key may be in, and the sources an iterator
 * merges. Both honour range deletions (§1): a version older than the newest
 * range deletion covering its key, at the reader's sequence, is deleted.
 */
import { internalKey, KIND_VALUE, TRAILER_SIZE, trailerKind, trailerSequence } from './coding.js';
import { type Cursor, LevelCursor, MemCursor, type MergedCursor, TableCursor } from './cursor.js';
import type { Memtable } from './memtable.js';
import { coveringSequence, type RangeTombstone } from './range-delete.js';
import type { Version } from './version.js';

/**
 * The value of `key` (a copy) at `sequence`, or `undefined` when absent or
 * deleted: `memtables` newest first, then `version`'s candidate tables
 * (bloom filters skip tables). Rejects with the tables' read errors.
 */
export async function lookup(
  memtables: readonly Memtable[],
  version: Version,
  key: Uint8Array,
  sequence: number,
): Promise<Uint8Array | undefined> {
  let deleted = 0;
  for (const memtable of memtables) {
    if (memtable.ranges.length > 0) {
      deleted = Math.max(deleted, coveringSequence(memtable.ranges, key, sequence));
    }
  }
  // A version in a memtable is newer than any range deletion in a table
  // (tables hold what earlier memtables held): the tables need no look.
  for (const memtable of memtables) {
    const entry = memtable.get(key, sequence);
    if (entry !== undefined) {
      return entry.kind === KIND_VALUE && entry.sequence > deleted
        ? entry.value!.slice()
        : undefined;
    }
  }
  const candidates = [...version.candidates(key)];
  for (const { table } of candidates) {
    if (table.ranges.length > 0) {
      deleted = Math.max(deleted, coveringSequence(table.ranges, key, sequence));
    }
  }
  const target = internalKey(key, sequence, KIND_VALUE);
  // From here on the reads wait: the caller's key may be reused meanwhile
  // (abstract-level hands its own object); the target holds a copy of it.
  const own = target.subarray(0, target.length - TRAILER_SIZE);
  for (const { table } of candidates) {
    const found = await table.get(own, target);
    if (found !== undefined) {
      return trailerKind(found.key) === KIND_VALUE && trailerSequence(found.key) > deleted
        ? found.value // a copy already
        : undefined;
    }
  }
  return undefined;
}

/**
 * What an iterator at `sequence` merges: a cursor per memtable (newest
 * first), per level-0 table (newest first) and per deeper level (in level
 * order), so that every version a source holds is newer than any version
 * of the same user key in the sources after it ({@link MergedCursor} seeks
 * rely on it); and every range deletion
 * at or below `sequence` (later ones cannot apply to it).
 */
export function readSources(
  memtables: readonly Memtable[],
  version: Version,
  sequence: number,
): { sources: Cursor[]; ranges: RangeTombstone[] } {
  const sources: Cursor[] = [];
  const ranges: RangeTombstone[] = [];
  const keep = (tombstones: readonly RangeTombstone[]): void => {
    for (const tombstone of tombstones) if (tombstone.sequence <= sequence) ranges.push(tombstone);
  };
  for (const memtable of memtables) {
    sources.push(new MemCursor(memtable));
    keep(memtable.ranges);
  }
  for (const { table } of version.tables()) keep(table.ranges);
  for (const { table } of version.levels[0]!) sources.push(new TableCursor(table));
  for (const level of version.levels.slice(1)) {
    if (level.length > 0) sources.push(new LevelCursor(level));
  }
  return { sources, ranges };
}
