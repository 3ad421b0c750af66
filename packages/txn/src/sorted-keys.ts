/**
 * The ordered set of keys (internal): binary strings in ascending order,
 * held as a list of sorted blocks of at most `2 · blockSize` keys, so that an
 * insertion or removal moves at most one block's keys plus the block list
 * (O(√n)-like with the default block size, instead of O(n) for one array).
 *
 * Invariants: every block is non-empty and sorted; the last key of each block
 * is below the first key of the next; `size` is the total number of keys.
 */

/** A position: block `b`, index `i` inside it; `b === blocks.length` is the end. */
interface Position {
  b: number;
  i: number;
}

export class SortedKeys {
  #blocks: string[][] = [];
  #size = 0;

  /** @param blockSize Keys per block after a split (a block splits at twice this). */
  constructor(readonly blockSize = 512) {}

  get size(): number {
    return this.#size;
  }

  /** Replaces the contents with `keys` (ascending, distinct). */
  reset(keys: readonly string[]): void {
    this.#blocks = [];
    for (let at = 0; at < keys.length; at += this.blockSize)
      this.#blocks.push(keys.slice(at, at + this.blockSize));
    this.#size = keys.length;
  }

  /** Adds `key`, which must not be present. */
  insert(key: string): void {
    const blocks = this.#blocks;
    this.#size++;
    if (blocks.length === 0) {
      blocks.push([key]);
      return;
    }
    let b = this.#block(key, false);
    if (b === blocks.length) b--; // past every key: the last block
    const block = blocks[b]!;
    block.splice(search(block, key, false), 0, key);
    if (block.length >= 2 * this.blockSize) blocks.splice(b + 1, 0, block.splice(this.blockSize));
  }

  /** Removes `key`, which must be present. */
  delete(key: string): void {
    const b = this.#block(key, false);
    const block = this.#blocks[b]!;
    block.splice(search(block, key, false), 1);
    this.#size--;
    if (block.length === 0) this.#blocks.splice(b, 1);
  }

  /**
   * The keys between `lo` and `hi` (each bound inclusive or not, `undefined`
   * for none), ascending, or descending with `reverse`. The set must not
   * change during the iteration.
   */
  *range(
    lo: string | undefined,
    loInclusive: boolean,
    hi: string | undefined,
    hiInclusive: boolean,
    reverse: boolean,
  ): Generator<string> {
    const blocks = this.#blocks;
    const start = lo === undefined ? { b: 0, i: 0 } : this.#position(lo, !loInclusive);
    const end = hi === undefined ? { b: blocks.length, i: 0 } : this.#position(hi, hiInclusive);
    if (!reverse) {
      for (let b = start.b, i = start.i; b < end.b || (b === end.b && i < end.i); ) {
        const block = blocks[b]!;
        yield block[i]!;
        if (++i === block.length) {
          b++;
          i = 0;
        }
      }
      return;
    }
    for (let b = end.b, i = end.i; b > start.b || (b === start.b && i > start.i); ) {
      if (i === 0) {
        b--;
        i = blocks[b]!.length;
      }
      yield blocks[b]![--i]!;
    }
  }

  /** The first position whose key is > `key` (`past`) or ≥ `key`. */
  #position(key: string, past: boolean): Position {
    const b = this.#block(key, past);
    if (b === this.#blocks.length) return { b, i: 0 };
    return { b, i: search(this.#blocks[b]!, key, past) };
  }

  /** The first block whose last key is > `key` (`past`) or ≥ `key`; `blocks.length` if none. */
  #block(key: string, past: boolean): number {
    const blocks = this.#blocks;
    let lo = 0;
    let hi = blocks.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const last = blocks[mid]![blocks[mid]!.length - 1]!;
      if (last < key || (past && last === key)) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

/** Binary search in a sorted array: the first index whose key is > `key` (`past`) or ≥ `key`. */
function search(keys: readonly string[], key: string, past: boolean): number {
  let lo = 0;
  let hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const k = keys[mid]!;
    if (k < key || (past && k === key)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
