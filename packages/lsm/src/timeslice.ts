/**
 * Background work (flushes, compactions) in short slices of the event
 * loop: a slice gives the turn back once it has run for a while, so that
 * the I/O callbacks waiting meanwhile (a group commit's fdatasync, and the
 * writes it releases) run within a slice's length instead of after a whole
 * stretch of table building. The work fills the loop's waits for the disk
 * rather than delaying the next round of writes.
 */
import { performance } from 'node:perf_hooks';
import { setImmediate as nextTurn } from 'node:timers/promises';

/** How long a slice runs before it gives the turn back, in milliseconds. */
export const SLICE_MS = 0.25;
/** Steps between two looks at the clock. */
const STEPS_PER_LOOK = 16;

/** A monotonic clock in milliseconds, looked at between slices. */
export type SliceClock = () => number;

/** The clock of the slices unless told otherwise: `performance.now()`. */
export const monotonicClock: SliceClock = () => performance.now();

/**
 * The clock of one piece of background work. Call {@link Timeslice.step}
 * once per unit of work (an entry added); when it returns a promise, await
 * it before the next unit: it resolves on a later turn of the event loop.
 */
export class Timeslice {
  #steps = 0;
  #ends: number;

  /** A slice starts now, by `now` (tests give a clock of their own). */
  constructor(
    readonly sliceMs = SLICE_MS,
    readonly now: SliceClock = monotonicClock,
  ) {
    this.#ends = now() + sliceMs;
  }

  /** `undefined` while the slice lasts; else a promise of the next turn (a new slice starts then). */
  step(): Promise<void> | undefined {
    if (++this.#steps < STEPS_PER_LOOK) return undefined;
    this.#steps = 0;
    if (this.now() < this.#ends) return undefined;
    return nextTurn().then(() => {
      this.#ends = this.now() + this.sliceMs;
    });
  }

  /** Starts a new slice (after the work awaited something else, which gave the turn back). */
  restart(): void {
    this.#steps = 0;
    this.#ends = this.now() + this.sliceMs;
  }

  /**
   * After a unit of work that may have to wait (`waiting`, or `undefined`):
   * what to await before the next one. The wait itself, followed by a new
   * slice (it gave the turn back), or else {@link Timeslice.step}'s turn.
   */
  after(waiting: Promise<void> | undefined): Promise<void> | undefined {
    if (waiting === undefined) return this.step();
    return waiting.then(() => this.restart());
  }
}
