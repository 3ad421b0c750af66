/**
 * The user-level iterator: versions merged from every source, collapsed to
 * the newest one visible at the iterator's sequence number, deletions
 * skipped, within a key range, forward or reverse.
 */
import { ClosedError, validateBytes } from '@wal/errors';
import { compareBytes, copyBytes, KIND_DELETE } from './coding.js';
import type { MergedCursor } from './cursor.js';
import type { IteratorOptions } from './options.js';
import { coveringSequence, type RangeTombstone } from './range-delete.js';

/** Bytes of the buffers an iterator copies the keys and values it returns into. */
const SLAB_SIZE = 8192;

/** What an iterator needs of its store. */
export interface IteratorOwner {
  readonly isClosed: boolean;
}

/**
 * An iterator over a key range at a snapshot. Use `for await`, or
 * {@link LsmIterator.next} (resolves `undefined` at the end). Entries are
 * `[key, value]` copies.
 */
export class LsmIterator implements AsyncIterableIterator<[Uint8Array, Uint8Array]> {
  readonly #owner: IteratorOwner;
  readonly #merged: MergedCursor;
  readonly #sequence: number;
  /** Range deletions at or below the snapshot. */
  readonly #ranges: readonly RangeTombstone[];
  readonly #reverse: boolean;
  readonly #lower: Uint8Array | undefined;
  readonly #lowerInclusive: boolean;
  readonly #upper: Uint8Array | undefined;
  readonly #upperInclusive: boolean;
  #remaining: number;
  #target: Uint8Array | undefined;
  #positioned = false;
  /** Forward: the key last returned or deleted; its older versions are skipped. */
  #skip: Uint8Array | undefined;
  #done = false;
  /** The buffer entries are copied into ({@link LsmIterator.#copyOut}) and its used bytes. */
  #slab = new Uint8Array(0);
  #slabAt = 0;
  #release: (() => void) | undefined;
  /** Keep the tables at the natural end (until `return()`), so `seek` can restart. */
  readonly #hold: boolean;

  /** Ends the iteration and, unless held, lets go of the tables it reads. Idempotent. */
  #finish(): void {
    this.#done = true;
    if (!this.#hold) this.#letGo();
  }

  #letGo(): void {
    const release = this.#release;
    this.#release = undefined;
    if (release === undefined) return;
    this.#merged.close();
    release();
  }

  /** @internal */
  constructor(
    owner: IteratorOwner,
    merged: MergedCursor,
    sequence: number,
    ranges: readonly RangeTombstone[],
    options: IteratorOptions,
    limit: number,
    release: () => void,
    hold: boolean,
  ) {
    this.#release = release;
    this.#hold = hold;
    this.#owner = owner;
    this.#merged = merged;
    this.#sequence = sequence;
    this.#ranges = ranges;
    this.#reverse = options.reverse === true;
    // Copies: the caller may reuse its buffers once the call returns.
    const lower = options.gt ?? options.gte;
    const upper = options.lt ?? options.lte;
    this.#lower = lower === undefined ? undefined : copyBytes(lower);
    this.#lowerInclusive = options.gt === undefined;
    this.#upper = upper === undefined ? undefined : copyBytes(upper);
    this.#upperInclusive = options.lt === undefined;
    this.#remaining = limit === -1 ? Number.POSITIVE_INFINITY : limit;
  }

  /** True when a range deletion the snapshot sees hides the version (`key`, `sequence`). */
  #rangeDeleted(key: Uint8Array, sequence: number): boolean {
    return (
      this.#ranges.length > 0 && coveringSequence(this.#ranges, key, this.#sequence) > sequence
    );
  }

  #belowUpper(key: Uint8Array): boolean {
    if (this.#upper === undefined) return true;
    const c = compareBytes(key, this.#upper);
    return c < 0 || (c === 0 && this.#upperInclusive);
  }

  #aboveLower(key: Uint8Array): boolean {
    if (this.#lower === undefined) return true;
    const c = compareBytes(key, this.#lower);
    return c > 0 || (c === 0 && this.#lowerInclusive);
  }

  /**
   * Moves to `target`: the next entry is the first at or after it (before or
   * at it, reverse), still within the range. Throws `ERR_INVALID_ARG_TYPE`.
   */
  seek(target: Uint8Array): void {
    validateBytes('target', target);
    this.#target = copyBytes(target);
    this.#positioned = false;
    this.#skip = undefined;
    // An iterator that ended and let go of its tables stays ended; a held one restarts.
    if (this.#release !== undefined) this.#done = false;
  }

  #position(): Promise<void> | undefined {
    let start = this.#reverse ? this.#upper : this.#lower;
    const target = this.#target;
    if (target !== undefined) {
      // The further of the range bound and the seek target.
      if (
        start === undefined ||
        (this.#reverse ? compareBytes(target, start) < 0 : compareBytes(target, start) > 0)
      ) {
        start = target;
      }
    }
    this.#positioned = true;
    return this.#merged.seek(start, this.#reverse);
  }

  /** The next entry, or `undefined` at the end. Rejects with `WAL_CLOSED`, `WAL_CORRUPTION`, `WAL_IO`. */
  async nextEntry(): Promise<[Uint8Array, Uint8Array] | undefined> {
    return (await this.nextEntries(1))[0];
  }

  /**
   * Up to `size` next entries, fewer only at the end (none once ended).
   * Entries in memory are gathered without waiting; a block read waits.
   * Rejects as {@link LsmIterator.nextEntry}.
   */
  async nextEntries(size: number): Promise<[Uint8Array, Uint8Array][]> {
    const entries: [Uint8Array, Uint8Array][] = [];
    while (entries.length < size) {
      if (this.#owner.isClosed) throw new ClosedError('store');
      if (this.#done) break;
      if (this.#remaining <= 0) {
        this.#finish();
        break;
      }
      let entry: [Uint8Array, Uint8Array] | undefined | Promise<void>;
      try {
        if (!this.#positioned) {
          const reading = this.#position();
          if (reading !== undefined) await reading;
        }
        entry = this.#reverse ? await this.#previousVisible() : this.#nextVisible();
        if (entry instanceof Promise) {
          await entry; // a block read: then look again
          continue;
        }
      } catch (error) {
        this.#finish();
        throw error;
      }
      if (entry === undefined) {
        this.#finish();
        break;
      }
      this.#remaining--;
      entries.push(entry);
    }
    return entries;
  }

  /**
   * Forward: the next visible entry, `undefined` at the end of the range, or
   * the read to wait for before looking again.
   */
  #nextVisible(): [Uint8Array, Uint8Array] | undefined | Promise<void> {
    const merged = this.#merged;
    for (let current = merged.current; current !== undefined; current = merged.current) {
      const key = current.key!;
      if (!this.#belowUpper(key)) return undefined;
      const skip = this.#skip;
      if (
        current.sequence > this.#sequence ||
        (skip !== undefined && compareBytes(key, skip) === 0) ||
        !this.#aboveLower(key)
      ) {
        const reading = merged.step();
        if (reading !== undefined) return reading;
        continue;
      }
      // A copy: a cursor's key may be a view its next step overwrites.
      const copy = this.#copyOut(key);
      this.#skip = copy;
      if (current.kind === KIND_DELETE || this.#rangeDeleted(key, current.sequence)) {
        const reading = merged.step();
        if (reading !== undefined) return reading;
        continue;
      }
      // The older versions of this key are stepped past by the next call.
      return [copy, this.#copyOut(current.value!)];
    }
    return undefined;
  }

  async #previousVisible(): Promise<[Uint8Array, Uint8Array] | undefined> {
    const merged = this.#merged;
    while (merged.current !== undefined) {
      const key = merged.current.key!;
      if (!this.#aboveLower(key)) return undefined;
      // Versions of one key arrive oldest first: the last visible one wins.
      let newest: { kind: number; value: Uint8Array | undefined; sequence: number } | undefined;
      while (merged.current !== undefined && compareBytes(merged.current.key!, key) === 0) {
        const current = merged.current;
        if (current.sequence <= this.#sequence)
          newest = { kind: current.kind, value: current.value, sequence: current.sequence };
        await merged.step();
      }
      if (
        newest === undefined ||
        newest.kind === KIND_DELETE ||
        !this.#belowUpper(key) ||
        this.#rangeDeleted(key, newest.sequence)
      )
        continue;
      return [this.#copyOut(key), this.#copyOut(newest.value!)];
    }
    return undefined;
  }

  /**
   * A copy of `bytes` for the caller to keep: small ones are views into
   * one buffer of {@link SLAB_SIZE} bytes shared by the entries copied
   * after each other (as Node's `Buffer` pool does), one allocation for
   * many entries instead of two each.
   */
  #copyOut(bytes: Uint8Array): Uint8Array {
    const length = bytes.length;
    if (length > SLAB_SIZE / 8) return bytes.slice();
    let at = this.#slabAt;
    if (at + length > this.#slab.length) {
      this.#slab = new Uint8Array(SLAB_SIZE);
      at = 0;
    }
    this.#slabAt = at + length;
    const copy = this.#slab.subarray(at, at + length);
    copy.set(bytes);
    return copy;
  }

  /** Async-iterator protocol: `{ value: [key, value] }` until `{ done: true }`. */
  async next(): Promise<IteratorResult<[Uint8Array, Uint8Array]>> {
    const entry = await this.nextEntry();
    return entry === undefined ? { done: true, value: undefined } : { done: false, value: entry };
  }

  /** Ends the iteration (for `break` in `for await`). */
  async return(): Promise<IteratorResult<[Uint8Array, Uint8Array]>> {
    this.#done = true;
    this.#letGo();
    return { done: true, value: undefined };
  }

  /** The iterator itself, so that `for await … of` can walk it. */
  [Symbol.asyncIterator](): LsmIterator {
    return this;
  }
}
