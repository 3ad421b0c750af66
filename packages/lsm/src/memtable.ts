/**
 * The memtable: versions ordered by internal key (user key ascending,
 * sequence number descending), in sorted leaves of at most {@link LEAF}
 * entries (a two-level B-tree: an insert binary-searches the leaves' last
 * entries, then one leaf, and moves at most a leaf's worth of references),
 * and chained in that order through `next`. Entries are never removed (a
 * flushed memtable is dropped whole), so cursors stay valid while writes go
 * on.
 *
 * Each entry carries the first 18 bytes of its key as six 24-bit integers:
 * a search compares those first, on the entry itself, and reads the key's
 * bytes only when they tie (fewer cache misses per step).
 */
import { compareBytesAt, type Kind } from './coding.js';
import type { RangeTombstone } from './range-delete.js';

/** Entries per leaf at most. */
const LEAF = 64;
/** Estimated bytes of a node beyond its key and value (arrays, object headers). */
export const NODE_OVERHEAD = 80;

/**
 * Bytes `at`, `at + 1`, `at + 2` of the key `bytes[start, start + length)`
 * as a big-endian 24-bit word, zeros past its end.
 */
function word(bytes: Uint8Array, start: number, length: number, at: number): number {
  if (at + 3 <= length) {
    const from = start + at;
    return (bytes[from]! << 16) | (bytes[from + 1]! << 8) | bytes[from + 2]!;
  }
  let value = 0;
  for (let i = at; i < at + 3; i++) value = (value << 8) | (i < length ? bytes[start + i]! : 0);
  return value;
}

/**
 * One version in a memtable. Its key and value are kept as ranges of their
 * buffer (a view of all of it, shared with the other entries from that
 * buffer), not as views of their own: entries live until their memtable is
 * flushed, and two objects fewer each is less for the garbage collector to
 * copy and trace.
 */
export class MemEntry {
  /** The key's first 18 bytes, three per word (see {@link word}). */
  readonly w0: number;
  readonly w1: number;
  readonly w2: number;
  readonly w3: number;
  readonly w4: number;
  readonly w5: number;
  /** The next entry in internal order (set as entries are inserted). */
  next: MemEntry | undefined = undefined;
  /** The key is `keyBytes[keyAt, keyAt + keyLength)`. */
  readonly keyBytes: Uint8Array;
  readonly keyAt: number;
  readonly keyLength: number;
  /** The value is `#valueBytes[#valueAt, #valueAt + #valueLength)` (`undefined` for a tombstone). */
  readonly #valueBytes: Uint8Array | undefined;
  readonly #valueAt: number;
  readonly #valueLength: number;

  constructor(
    keyBytes: Uint8Array,
    keyAt: number,
    keyLength: number,
    readonly sequence: number,
    readonly kind: Kind,
    valueBytes: Uint8Array | undefined,
    valueAt: number,
    valueLength: number,
  ) {
    this.keyBytes = keyBytes;
    this.keyAt = keyAt;
    this.keyLength = keyLength;
    this.w0 = word(keyBytes, keyAt, keyLength, 0);
    this.w1 = word(keyBytes, keyAt, keyLength, 3);
    this.w2 = word(keyBytes, keyAt, keyLength, 6);
    this.w3 = word(keyBytes, keyAt, keyLength, 9);
    this.w4 = word(keyBytes, keyAt, keyLength, 12);
    this.w5 = word(keyBytes, keyAt, keyLength, 15);
    this.#valueBytes = valueBytes;
    this.#valueAt = valueAt;
    this.#valueLength = valueLength;
  }

  /** The key (a new view of the bytes inserted, not a copy). */
  get key(): Uint8Array {
    return this.keyBytes.subarray(this.keyAt, this.keyAt + this.keyLength);
  }

  /** The value (a new view of the bytes inserted, not a copy), or `undefined` for a tombstone. */
  get value(): Uint8Array | undefined {
    return this.#valueBytes?.subarray(this.#valueAt, this.#valueAt + this.#valueLength);
  }
}

/**
 * Compares (`key`, `sequence`) with `entry` in internal order; `probe` is a
 * node built for `key` (its prefix words). Equal prefix words order as the
 * bytes they hold do (zeros past the end tie with a zero byte, which the
 * full comparison then settles).
 */
function compare(probe: MemEntry, sequence: number, entry: MemEntry): number {
  const byPrefix =
    probe.w0 - entry.w0 ||
    probe.w1 - entry.w1 ||
    probe.w2 - entry.w2 ||
    probe.w3 - entry.w3 ||
    probe.w4 - entry.w4 ||
    probe.w5 - entry.w5;
  if (byPrefix !== 0) return byPrefix;
  const byKey = compareBytesAt(
    probe.keyBytes,
    probe.keyAt,
    probe.keyLength,
    entry.keyBytes,
    entry.keyAt,
    entry.keyLength,
  );
  return byKey !== 0 ? byKey : entry.sequence - sequence;
}

/** A node standing for `key` in a search (never linked in). */
function probe(key: Uint8Array): MemEntry {
  return new MemEntry(key, 0, key.length, 0, 0, undefined, 0, 0);
}

/** The first index of `entries` (sorted) at or after (probe, sequence); `entries.length` when none. */
function lowerBound(entries: MemEntry[], probe: MemEntry, sequence: number): number {
  let low = 0;
  let high = entries.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if (compare(probe, sequence, entries[mid]!) > 0) low = mid + 1;
    else high = mid;
  }
  return low;
}

/** A sorted in-memory table of versions. */
export class Memtable {
  /** Sorted leaves of entries, in order; none is empty. */
  readonly #leaves: MemEntry[][] = [];
  /** The last entry of each leaf (searched without touching the leaves). */
  readonly #lasts: MemEntry[] = [];
  #first: MemEntry | undefined;
  /** Estimated memory held, in bytes. */
  bytes = 0;
  /** Entries inserted. */
  count = 0;
  /** Largest sequence number inserted (0 when empty). */
  lastSequence = 0;
  /** Range deletions, in sequence order (appended only). */
  readonly ranges: RangeTombstone[] = [];

  /** The buffer of the last key or value inserted, and a view of all of it. */
  #buffer: ArrayBufferLike | undefined;
  #bufferView: Uint8Array = new Uint8Array(0);

  /**
   * A view of all of the buffer that `bytes` views: one for the entries of
   * a buffer after another (the log records of consecutive small writes
   * share a buffer).
   */
  #whole(bytes: Uint8Array): Uint8Array {
    const buffer = bytes.buffer;
    if (buffer !== this.#buffer) {
      this.#buffer = buffer;
      this.#bufferView = new Uint8Array(buffer);
    }
    return this.#bufferView;
  }

  /** The entry before position `at` of leaf `leaf` in internal order, or `undefined`. */
  #previous(leaf: number, at: number): MemEntry | undefined {
    return at > 0 ? this.#leaves[leaf]![at - 1] : leaf > 0 ? this.#lasts[leaf - 1] : undefined;
  }

  /**
   * Inserts a version. (key, sequence) pairs are unique by construction. A
   * version that sorts after every other (keys written in order) goes at the
   * end without a search.
   */
  insert(key: Uint8Array, sequence: number, kind: Kind, value: Uint8Array | undefined): void {
    const entry = new MemEntry(
      this.#whole(key),
      key.byteOffset,
      key.length,
      sequence,
      kind,
      value === undefined ? undefined : this.#whole(value),
      value?.byteOffset ?? 0,
      value?.length ?? 0,
    );
    const leaves = this.#leaves;
    const lasts = this.#lasts;
    const end = leaves.length - 1;
    if (end < 0 || compare(entry, sequence, lasts[end]!) > 0) {
      // After every entry: at the end of the last leaf, or in a new one.
      if (end < 0) this.#first = entry;
      else lasts[end]!.next = entry;
      if (end < 0 || leaves[end]!.length >= LEAF) {
        leaves.push([entry]);
        lasts.push(entry);
      } else {
        leaves[end]!.push(entry);
        lasts[end] = entry;
      }
    } else {
      const index = lowerBound(lasts, entry, sequence); // ≤ end: the last entry is after it
      const leaf = leaves[index]!;
      const at = lowerBound(leaf, entry, sequence); // < leaf.length
      const before = this.#previous(index, at);
      entry.next = leaf[at];
      if (before === undefined) this.#first = entry;
      else before.next = entry;
      // Shifted by hand: `splice` allocates the array of removed entries.
      for (let i = leaf.length; i > at; i--) leaf[i] = leaf[i - 1]!;
      leaf[at] = entry;
      if (leaf.length > LEAF) {
        const right = leaf.splice(LEAF / 2);
        leaves.splice(index + 1, 0, right);
        lasts.splice(index, 0, leaf[leaf.length - 1]!);
      }
    }
    this.bytes += key.length + (value?.length ?? 0) + NODE_OVERHEAD;
    this.count++;
    if (sequence > this.lastSequence) this.lastSequence = sequence;
  }

  /** Records a range deletion of `[start, end)` at `sequence`. */
  deleteRange(start: Uint8Array, end: Uint8Array, sequence: number): void {
    this.ranges.push({ start, end, sequence });
    this.bytes += start.length + end.length + NODE_OVERHEAD;
    this.count++;
    if (sequence > this.lastSequence) this.lastSequence = sequence;
  }

  /** The first entry ≥ (key, sequence) in internal order, or `undefined`. */
  seek(key: Uint8Array, sequence: number): MemEntry | undefined {
    const target = probe(key);
    const index = lowerBound(this.#lasts, target, sequence);
    const leaf = this.#leaves[index];
    return leaf === undefined ? undefined : leaf[lowerBound(leaf, target, sequence)];
  }

  /** The last entry < (key, sequence) in internal order, or `undefined`. */
  seekBefore(key: Uint8Array, sequence: number): MemEntry | undefined {
    const target = probe(key);
    const index = lowerBound(this.#lasts, target, sequence);
    const leaf = this.#leaves[index];
    if (leaf === undefined) return this.last();
    return this.#previous(index, lowerBound(leaf, target, sequence));
  }

  /** The first entry, or `undefined` when empty. */
  first(): MemEntry | undefined {
    return this.#first;
  }

  /** The last entry, or `undefined` when empty. */
  last(): MemEntry | undefined {
    return this.#lasts[this.#lasts.length - 1];
  }

  /**
   * The newest version of `key` with sequence ≤ `sequence`, or `undefined`
   * when the memtable holds none.
   */
  get(key: Uint8Array, sequence: number): MemEntry | undefined {
    const entry = this.seek(key, sequence);
    return entry !== undefined &&
      compareBytesAt(entry.keyBytes, entry.keyAt, entry.keyLength, key, 0, key.length) === 0
      ? entry
      : undefined;
  }

  /** Every entry in internal order. */
  *entries(): IterableIterator<MemEntry> {
    for (let node = this.#first; node !== undefined; node = node.next) yield node;
  }
}
