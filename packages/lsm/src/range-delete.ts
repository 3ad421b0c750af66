/**
 * Range deletions (docs/LSM-FORMAT.md §1, §7, §5a): a tombstone hiding every
 * version of the user keys in `[start, end)` whose sequence number is below
 * its own. They live in a memtable's list, then in a table's range-deletion
 * block; reads take the newest one covering a key at their snapshot.
 */
import { compareBytes } from './coding.js';

/** One range tombstone: keys `start ≤ k < end`, versions older than `sequence`. */
export interface RangeTombstone {
  readonly start: Uint8Array;
  readonly end: Uint8Array;
  readonly sequence: number;
}

/** True when `tombstone` covers user key `key`. */
export function covers(tombstone: RangeTombstone, key: Uint8Array): boolean {
  return compareBytes(tombstone.start, key) <= 0 && compareBytes(key, tombstone.end) < 0;
}

/**
 * The largest sequence number ≤ `readSequence` of the tombstones covering
 * `key` (0 when none): a version of `key` older than it is deleted for a
 * reader at `readSequence`.
 */
export function coveringSequence(
  tombstones: Iterable<RangeTombstone>,
  key: Uint8Array,
  readSequence: number,
): number {
  let newest = 0;
  for (const tombstone of tombstones) {
    if (tombstone.sequence > newest && tombstone.sequence <= readSequence && covers(tombstone, key))
      newest = tombstone.sequence;
  }
  return newest;
}
