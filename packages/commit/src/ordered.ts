/**
 * The ordered structures behind {@link GroupCommit}: waiters by target, and
 * parked completions by start. Internal to @wal/commit.
 */

/** Someone waiting for a watermark to reach `target`. */
export interface Waiter {
  readonly target: number;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

interface Entry {
  readonly target: number;
  /** Arrival number: orders equal targets. */
  readonly seq: number;
  readonly waiter: Waiter;
}

function before(a: Entry, b: Entry): boolean {
  return a.target < b.target || (a.target === b.target && a.seq < b.seq);
}

/**
 * Waiters ordered by target, equal targets in arrival order. Targets arrive
 * almost in order (reservations are monotonic), so a waiter whose target is
 * not below the last one's is appended to a sorted run (O(1)), and only a
 * straggler goes to a binary min-heap (O(log n)). Taking the first waiter is
 * O(1) amortised from the run, O(log n) from the heap: releasing `k` waiters
 * costs O(k) when they arrived in order, O(k log n) at worst, never O(n).
 *
 * Waiters released or taken together settle in arrival order, whatever their
 * targets. The run is in arrival order already, so this costs nothing (and
 * allocates nothing) unless a straggler is among them.
 */
export class WaiterQueue {
  /** Sorted by (target, seq); live in `[#head, #run.length)`. */
  #run: Array<Entry | undefined> = [];
  #head = 0;
  /** Binary min-heap by (target, seq) of waiters that arrived out of order. */
  readonly #heap: Entry[] = [];
  #seq = 0;

  get size(): number {
    return this.#run.length - this.#head + this.#heap.length;
  }

  /** Smallest target, or Infinity when empty. */
  get firstTarget(): number {
    const run = this.#head < this.#run.length ? (this.#run[this.#head] as Entry).target : Infinity;
    const heap = this.#heap.length > 0 ? (this.#heap[0] as Entry).target : Infinity;
    return Math.min(run, heap);
  }

  push(waiter: Waiter): void {
    const entry: Entry = { target: waiter.target, seq: this.#seq++, waiter };
    const run = this.#run;
    if (run.length === this.#head || (run[run.length - 1] as Entry).target <= entry.target) {
      run.push(entry);
    } else {
      heapPush(this.#heap, entry);
    }
  }

  /**
   * Resolves every waiter whose target is `<= limit`, in arrival order, and
   * returns the lowest target left (Infinity when none is).
   */
  release(limit: number): number {
    const heap = this.#heap;
    if (heap.length === 0 || (heap[0] as Entry).target > limit) {
      // Only the run: it is in arrival order.
      const run = this.#run;
      while (this.#head < run.length && (run[this.#head] as Entry).target <= limit) {
        this.#shift().waiter.resolve();
      }
    } else {
      const batch: Entry[] = [];
      while (this.firstTarget <= limit) batch.push(this.#shift());
      for (const waiter of inArrivalOrder(batch)) waiter.resolve();
    }
    return this.firstTarget;
  }

  /** Removes and returns the first entry (lowest target, earliest arrival); only when not empty. */
  #shift(): Entry {
    const run = this.#run;
    const head = this.#head;
    const heap = this.#heap;
    if (head === run.length || (heap.length > 0 && before(heap[0] as Entry, run[head] as Entry))) {
      return heapPop(heap);
    }
    const entry = run[head] as Entry;
    run[head] = undefined;
    if (head + 1 === run.length) {
      run.length = 0;
      this.#head = 0;
    } else {
      this.#head = head + 1;
      // Drop the dead prefix once it outweighs the live part: O(1) amortised.
      if (head >= 1024 && head + 1 >= run.length - head) {
        run.splice(0, head + 1);
        this.#head = 0;
      }
    }
    return entry;
  }

  /** Removes every waiter whose target is `> limit`; returns them in arrival order. */
  takeAbove(limit: number): Waiter[] {
    const run = this.#run;
    let low = this.#head;
    let high = run.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if ((run[mid] as Entry).target <= limit) low = mid + 1;
      else high = mid;
    }
    const taken = run.splice(low) as Entry[];
    if (low === this.#head) this.#clearRun();
    const heap = this.#heap;
    if (heap.length > 0) {
      const kept: Entry[] = [];
      for (const entry of heap) (entry.target > limit ? taken : kept).push(entry);
      heap.length = 0;
      for (const entry of kept) heapPush(heap, entry);
    }
    return inArrivalOrder(taken);
  }

  /** Removes every waiter; returns them in arrival order. */
  takeAll(): Waiter[] {
    const taken = this.#run.slice(this.#head) as Entry[];
    taken.push(...this.#heap);
    this.#clearRun();
    this.#heap.length = 0;
    return inArrivalOrder(taken);
  }

  #clearRun(): void {
    this.#run.length = 0;
    this.#head = 0;
  }
}

function inArrivalOrder(entries: Entry[]): Waiter[] {
  entries.sort((a, b) => a.seq - b.seq);
  return entries.map((entry) => entry.waiter);
}

function heapPush(heap: Entry[], entry: Entry): void {
  let at = heap.length;
  heap.push(entry);
  while (at > 0) {
    const parent = (at - 1) >>> 1;
    const above = heap[parent] as Entry;
    if (!before(entry, above)) break;
    heap[at] = above;
    at = parent;
  }
  heap[at] = entry;
}

function heapPop(heap: Entry[]): Entry {
  const top = heap[0] as Entry;
  const last = heap.pop() as Entry;
  const length = heap.length;
  if (length > 0) {
    let at = 0;
    for (;;) {
      let child = 2 * at + 1;
      if (child >= length) break;
      const right = child + 1;
      if (right < length && before(heap[right] as Entry, heap[child] as Entry)) child = right;
      const below = heap[child] as Entry;
      if (!before(below, last)) break;
      heap[at] = below;
      at = child;
    }
    heap[at] = last;
  }
  return top;
}

const MIN_CAPACITY = 16;

/**
 * Disjoint ranges `[start, end)` sorted by start, in two `Float64Array`s
 * (exact for every offset up to 2^53 − 1) live in `[#head, #tail)`, with free
 * slots on both sides. Because the ranges are disjoint, ends rise with starts.
 * - the first range and the last range starting below an offset are found in
 *   O(1) and O(log n);
 * - taking the first range is O(1);
 * - inserting is a binary search, then a memmove of the shorter side: O(1)
 *   amortised at either end (completions arrive almost in order, or in
 *   reversed runs), O(distance to the nearer end) in the middle. A side
 *   without room is made some by recentring or doubling, O(n) once per Ω(n)
 *   insertions.
 */
export class RangeSet {
  #starts = new Float64Array(MIN_CAPACITY);
  #ends = new Float64Array(MIN_CAPACITY);
  #head = MIN_CAPACITY >>> 1;
  #tail = MIN_CAPACITY >>> 1;

  get size(): number {
    return this.#tail - this.#head;
  }

  /** Start of the first range, or Infinity when empty. */
  get firstStart(): number {
    return this.#head < this.#tail ? (this.#starts[this.#head] as number) : Infinity;
  }

  /** Removes the first range and returns its end; only when not empty. */
  shift(): number {
    const end = this.#ends[this.#head] as number;
    this.#head++;
    if (this.#head === this.#tail) this.clear();
    return end;
  }

  /** End of the last range whose start is `< offset`, or -1 when there is none. */
  endBefore(offset: number): number {
    const at = this.#lowerBound(offset) - 1;
    return at >= this.#head ? (this.#ends[at] as number) : -1;
  }

  /** Inserts `[start, end)`, which must overlap no range already present. */
  insert(start: number, end: number): void {
    for (;;) {
      const head = this.#head;
      const tail = this.#tail;
      const at = this.#lowerBound(start);
      const starts = this.#starts;
      const ends = this.#ends;
      if (at - head < tail - at) {
        if (head > 0) {
          starts.copyWithin(head - 1, head, at);
          ends.copyWithin(head - 1, head, at);
          starts[at - 1] = start;
          ends[at - 1] = end;
          this.#head = head - 1;
          return;
        }
      } else if (tail < starts.length) {
        starts.copyWithin(at + 1, at, tail);
        ends.copyWithin(at + 1, at, tail);
        starts[at] = start;
        ends[at] = end;
        this.#tail = tail + 1;
        return;
      }
      this.#makeRoom();
    }
  }

  /** Removes every range whose start is `>= offset`. */
  dropFrom(offset: number): void {
    this.#tail = this.#lowerBound(offset);
    if (this.#head === this.#tail) this.clear();
  }

  clear(): void {
    this.#head = this.#tail = this.#starts.length >>> 1;
  }

  /** First index in `[head, tail)` whose start is `>= offset`. */
  #lowerBound(offset: number): number {
    const starts = this.#starts;
    let low = this.#head;
    let high = this.#tail;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if ((starts[mid] as number) < offset) low = mid + 1;
      else high = mid;
    }
    return low;
  }

  /** Centres the ranges, in a buffer twice as large when more than half full. */
  #makeRoom(): void {
    const size = this.size;
    const capacity = size * 2 > this.#starts.length ? this.#starts.length * 2 : this.#starts.length;
    const head = (capacity - size) >>> 1;
    const starts = new Float64Array(capacity);
    const ends = new Float64Array(capacity);
    starts.set(this.#starts.subarray(this.#head, this.#tail), head);
    ends.set(this.#ends.subarray(this.#head, this.#tail), head);
    this.#starts = starts;
    this.#ends = ends;
    this.#head = head;
    this.#tail = head + size;
  }
}
