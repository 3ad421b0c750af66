/**
 * Turns of the event loop for a blocking log (`WalOptions.blockingSync`,
 * docs/DURABILITY.md §2.1). Its writes and fdatasyncs run on the calling
 * thread, so its waits settle in a microtask: a loop of awaited appends
 * would never let the event loop turn, and timers, I/O callbacks, the log's
 * own asynchronous steps (a segment to create) and a consumer's background
 * work (an LSM's flush, a checkpoint) would wait for the loop to end. So
 * once at least {@link LOOP_TURN_MS} passed since a wait last let the loop
 * turn, the next wait settles after one turn (`setImmediate`) instead; the
 * waits made until it settles settle after it, so waits still settle in the
 * order they were made. The clock is read at every `durable` wait (whose
 * fdatasync dwarfs the read) and every {@link CHECK_WAITS} `written` ones.
 * Only the wait is paced: the record is written (and durable) as soon as
 * the others. Internal to @wal/core.
 */
import { setImmediate as nextTurn } from 'node:timers/promises';

/** Milliseconds at most between two turns a loop of awaited waits lets the event loop take. */
export const LOOP_TURN_MS = 1;
/** `written` waits between two reads of the clock. */
const CHECK_WAITS = 16;

/** Paces the waits of a blocking log (see the module comment). */
export class LoopTurns {
  /** When a wait last let the event loop turn (`performance.now()`). */
  #turned = performance.now();
  /** `written` waits since the clock was last read. */
  #unchecked = 0;
  /** The last wait made to take a turn, or made after one, until it settles. */
  #turning: Promise<unknown> | undefined;

  /**
   * `wait` as it is, or the same outcome after one turn of the event loop
   * (a rejection passes at once). `durable`: a durable wait (or a sync).
   */
  pace<T>(wait: Promise<T>, durable: boolean): Promise<T> {
    const before = this.#turning;
    if (before !== undefined) {
      // After the earlier one, whatever its outcome; with its own.
      return this.#inOrder(
        wait.then((value) =>
          before.then(
            () => value,
            () => value,
          ),
        ),
      );
    }
    if (!durable && ++this.#unchecked < CHECK_WAITS) return wait;
    this.#unchecked = 0;
    const now = performance.now();
    if (now - this.#turned < LOOP_TURN_MS) return wait;
    this.#turned = now;
    return this.#inOrder(wait.then((value) => nextTurn(value)));
  }

  /**
   * Makes `wait` the one later waits settle after, until it settles. The
   * reaction that lets it go is registered before the caller's: once it
   * settles, the caller's next wait reads the clock again.
   */
  #inOrder<T>(wait: Promise<T>): Promise<T> {
    this.#turning = wait;
    const settled = (): void => {
      if (this.#turning === wait) this.#turning = undefined;
    };
    wait.then(settled, settled);
    return wait;
  }
}
