/**
 * The sparse index of known record boundaries (docs/FORMAT.md §2, "record
 * boundary"): for every interval of `interval` bytes of the log that holds the
 * start of a record, the first record boundary in it. An LSN is validated by
 * walking frames from the nearest entry at or below it, never by checking
 * that "a frame parses here". Internal to @wal/core.
 *
 * Memory: one 8-byte entry per interval of live log: at the default 256 KiB
 * interval, 32 bytes per MiB of log, 32 MiB for a 1 TiB log.
 */
export class BoundaryIndex {
  #entries: Float64Array;
  #count = 0;
  /** Where the interval after the last entry's starts (0 when empty): a note below it keeps nothing. */
  #nextStart = 0;

  constructor(readonly interval: number) {
    // Stored twice on purpose: V8 compiles a field stored only once as a
    // constant, and the first growth (64 entries: 16 MiB of log at the
    // default interval) would then deoptimise every append that inlined
    // `note`, in the middle of a burst.
    this.#entries = new Float64Array(0);
    this.#entries = new Float64Array(64);
  }

  /** Number of entries held. */
  get size(): number {
    return this.#count;
  }

  /**
   * Notes that `lsn` is a record boundary. Boundaries must be noted in
   * increasing order; only the first one of each interval is kept. Cheap
   * enough to call for every record. Returns the smallest boundary a next
   * note would keep: notes below it may be left out.
   */
  note(lsn: number): number {
    if (lsn < this.#nextStart) return this.#nextStart;
    this.#ensureRoom();
    this.#entries[this.#count++] = lsn;
    this.#setLast(Math.floor(lsn / this.interval));
    return this.#nextStart;
  }

  /** Records that the last entry lies in interval number `interval` (-1: no entry). */
  #setLast(interval: number): void {
    this.#nextStart = (interval + 1) * this.interval;
  }

  /** Doubles the entry array when it is full. */
  #ensureRoom(): void {
    if (this.#count < this.#entries.length) return;
    const grown = new Float64Array(this.#entries.length * 2);
    grown.set(this.#entries);
    this.#entries = grown;
  }

  /** The largest known boundary at or below `lsn`, or `undefined` when none is. */
  floor(lsn: number): number | undefined {
    let low = 0;
    let high = this.#count - 1;
    let found: number | undefined;
    while (low <= high) {
      const middle = (low + high) >>> 1;
      const entry = this.#entries[middle]!;
      if (entry <= lsn) {
        found = entry;
        low = middle + 1;
      } else {
        high = middle - 1;
      }
    }
    return found;
  }

  /** Forgets every entry above `end` (a suffix truncation to `end`), then notes `end`. */
  truncateAfter(end: number): void {
    while (this.#count > 0 && this.#entries[this.#count - 1]! > end) this.#count--;
    this.#setLast(
      this.#count === 0 ? -1 : Math.floor(this.#entries[this.#count - 1]! / this.interval),
    );
    this.note(end);
  }

  /** Forgets every entry below `head` (a prefix truncation), keeping `head` itself. */
  truncateBefore(head: number): void {
    let drop = 0;
    while (drop < this.#count && this.#entries[drop]! < head) drop++;
    this.#entries.copyWithin(0, drop, this.#count);
    this.#count -= drop;
    if (this.#count === 0 || this.#entries[0] !== head) {
      // Insert `head` in front: it is the first boundary of the live log.
      this.#ensureRoom();
      this.#entries.copyWithin(1, 0, this.#count);
      this.#entries[0] = head;
      this.#count++;
    }
    this.#setLast(Math.floor(this.#entries[this.#count - 1]! / this.interval));
  }
}
