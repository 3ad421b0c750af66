/**
 * The memtable: a skip list of versions ordered by internal key (user key
 * ascending, sequence number descending). Inserts are O(log n); entries are
 * never removed (a flushed memtable is dropped whole), so cursors stay valid
 * while writes go on.
 *
 * Each node carries the first 18 bytes of its key as six 24-bit integers:
 * a search compares those first, on the node itself, and reads the key's
 * bytes only when they tie (fewer cache misses per step).
 */
import { compareBytes, type Kind } from './coding.js';
import type { RangeTombstone } from './range-delete.js';

const MAX_HEIGHT = 12;
/** Estimated bytes of a node beyond its key and value (arrays, object headers). */
export const NODE_OVERHEAD = 80;

/** Bytes `at`, `at + 1`, `at + 2` of `key` as a big-endian 24-bit word, zeros past its end. */
function word(key: Uint8Array, at: number): number {
  const length = key.length;
  if (at + 3 <= length) return (key[at]! << 16) | (key[at + 1]! << 8) | key[at + 2]!;
  let value = 0;
  for (let i = at; i < at + 3; i++) value = (value << 8) | (i < length ? key[i]! : 0);
  return value;
}

/** One version in a memtable. */
export class MemEntry {
  /** The key's first 18 bytes, three per word (see {@link word}). */
  readonly w0: number;
  readonly w1: number;
  readonly w2: number;
  readonly w3: number;
  readonly w4: number;
  readonly w5: number;

  constructor(
    readonly key: Uint8Array,
    readonly sequence: number,
    readonly kind: Kind,
    readonly value: Uint8Array | undefined,
    readonly next: (MemEntry | undefined)[],
  ) {
    this.w0 = word(key, 0);
    this.w1 = word(key, 3);
    this.w2 = word(key, 6);
    this.w3 = word(key, 9);
    this.w4 = word(key, 12);
    this.w5 = word(key, 15);
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
  const byKey = compareBytes(probe.key, entry.key);
  return byKey !== 0 ? byKey : entry.sequence - sequence;
}

const NO_LINKS: (MemEntry | undefined)[] = [];

/** A node standing for `key` in a search (never linked in). */
function probe(key: Uint8Array): MemEntry {
  return new MemEntry(key, 0, 0, undefined, NO_LINKS);
}

/** A sorted in-memory table of versions. */
export class Memtable {
  readonly #head = new MemEntry(new Uint8Array(0), 0, 0, undefined, new Array(MAX_HEIGHT));
  #height = 1;
  /** Scratch for {@link Memtable.insert}: the node before the new one at each level. */
  readonly #previous: MemEntry[] = new Array(MAX_HEIGHT).fill(this.#head);
  /** The last node at each level (the head where a level is empty). */
  readonly #tails: MemEntry[] = new Array(MAX_HEIGHT).fill(this.#head);
  #seed = 0x2545f491;
  /** Estimated memory held, in bytes. */
  bytes = 0;
  /** Entries inserted. */
  count = 0;
  /** Largest sequence number inserted (0 when empty). */
  lastSequence = 0;
  /** Range deletions, in sequence order (appended only). */
  readonly ranges: RangeTombstone[] = [];

  #randomHeight(): number {
    let height = 1;
    // xorshift32; a quarter of the nodes rise one more level.
    while (height < MAX_HEIGHT) {
      let x = this.#seed;
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      this.#seed = x >>> 0;
      if ((this.#seed & 3) !== 0) break;
      height++;
    }
    return height;
  }

  /**
   * The last node before (key, sequence) in internal order (the head when
   * none); with `previous`, also that node at every level, for an insert.
   */
  #before(probe: MemEntry, sequence: number, previous?: MemEntry[]): MemEntry {
    let node = this.#head;
    for (let level = this.#height - 1; level >= 0; level--) {
      let next = node.next[level];
      while (next !== undefined && compare(probe, sequence, next) > 0) {
        node = next;
        next = node.next[level];
      }
      if (previous !== undefined) previous[level] = node;
    }
    return node;
  }

  /**
   * Inserts a version. (key, sequence) pairs are unique by construction. A
   * version that sorts after every other (keys written in order) is linked
   * after the last node of each level without a search.
   */
  insert(key: Uint8Array, sequence: number, kind: Kind, value: Uint8Array | undefined): void {
    const previous = this.#previous;
    const tails = this.#tails;
    const entry = new MemEntry(key, sequence, kind, value, new Array(this.#randomHeight()));
    const last = tails[0]!;
    if (last === this.#head || compare(entry, sequence, last) > 0) {
      for (let level = 0; level < this.#height; level++) previous[level] = tails[level]!;
    } else this.#before(entry, sequence, previous);
    const height = entry.next.length;
    if (height > this.#height) {
      for (let level = this.#height; level < height; level++) previous[level] = this.#head;
      this.#height = height;
    }
    for (let level = 0; level < height; level++) {
      const next = previous[level]!.next[level];
      entry.next[level] = next;
      previous[level]!.next[level] = entry;
      if (next === undefined) tails[level] = entry;
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
    return this.#before(probe(key), sequence).next[0];
  }

  /** The last entry < (key, sequence) in internal order, or `undefined`. */
  seekBefore(key: Uint8Array, sequence: number): MemEntry | undefined {
    const node = this.#before(probe(key), sequence);
    return node === this.#head ? undefined : node;
  }

  /** The first entry, or `undefined` when empty. */
  first(): MemEntry | undefined {
    return this.#head.next[0];
  }

  /** The last entry, or `undefined` when empty. */
  last(): MemEntry | undefined {
    const node = this.#tails[0]!;
    return node === this.#head ? undefined : node;
  }

  /**
   * The newest version of `key` with sequence ≤ `sequence`, or `undefined`
   * when the memtable holds none.
   */
  get(key: Uint8Array, sequence: number): MemEntry | undefined {
    const entry = this.seek(key, sequence);
    return entry !== undefined && compareBytes(entry.key, key) === 0 ? entry : undefined;
  }

  /** Every entry in internal order. */
  *entries(): IterableIterator<MemEntry> {
    for (let node = this.#head.next[0]; node !== undefined; node = node.next[0]) yield node;
  }
}
