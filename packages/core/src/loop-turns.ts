/**
 * Turns of the event loop for a blocking log (`WalOptions.blockingSync`,
 * docs/DURABILITY.md §2.1). Its writes and fdatasyncs run on the calling
 * thread, so its waits settle in a microtask: a loop of awaited appends
 * would never let the event loop turn, and timers, I/O callbacks, the log's
 * own asynchronous steps (a segment to create) and a consumer's background
 * work (an LSM's flush, a checkpoint) would wait for the loop to end. So
 * once at least {@link LOOP_TURN_MS} passed since a wait last let the loop
 * turn, the next wait settles after one turn (`setImmediate`) instead; the
 * waits made until it settles settle after it (whether it succeeds or fails),
 * so waits still settle in the order they were made. The clock is read at every `durable` wait (whose
 * fdatasync dwarfs the read) and every {@link CHECK_WAITS} `written` ones.
 * Only the wait is paced: the record is written (and durable) as soon as
 * the others. Internal to @wal/core.
 */
import { setImmediate as nextTurn } from 'node:timers/promises';

/** Milliseconds at most between two turns a loop of awaited waits lets the event loop take. */
export const LOOP_TURN_MS = 1;
/** `written` waits between two reads of the clock. */
const CHECK_WAITS = 16;

/** `value`, one turn of the event loop later. */
const afterTurn = <T>(value: T): Promise<T> => nextTurn(value);

/** Paces the waits of a blocking log (see the module comment). */
export class LoopTurns {
  /** When a wait last let the event loop turn (`performance.now()`). */
  #turned = performance.now();
  /** `written` waits since the clock was last read. */
  #unchecked = 0;
  /** The last wait made to take a turn, or made after one, until it settles. */
  #turning: Promise<unknown> | undefined;

  /**
   * `wait` with the same outcome, settling after the waits made before it
   * that are still held for a turn, and itself after one turn of the event
   * loop when one is due. `durable`: a durable wait (or a sync).
   */
  pace<T>(wait: Promise<T>, durable: boolean): Promise<T> {
    // Read for every wait, held or not: waits made while an earlier one is
    // held (concurrent writers, a writer keeping an append ahead) would
    // otherwise chain on each other and never turn again.
    const turn = this.#due(durable);
    const before = this.#turning;
    if (before === undefined) return turn ? this.#inOrder(wait.then(afterTurn)) : wait;
    // After the earlier one, whatever its outcome; with its own, a
    // rejection included (it must not overtake an earlier wait's success).
    const after = wait.then(
      (value) =>
        before.then(
          () => value,
          () => value,
        ),
      (error: unknown) =>
        before.then(
          () => Promise.reject(error),
          () => Promise.reject(error),
        ),
    );
    return this.#inOrder(turn ? after.then(afterTurn) : after);
  }

  /** Whether the next wait takes a turn: {@link LOOP_TURN_MS} passed since the last one. */
  #due(durable: boolean): boolean {
    if (!durable && ++this.#unchecked < CHECK_WAITS) return false;
    this.#unchecked = 0;
    const now = performance.now();
    if (now - this.#turned < LOOP_TURN_MS) return false;
    this.#turned = now;
    return true;
  }

  /**
   * Makes `wait` the one later waits settle after, until it settles (then
   * they need not chain: the reaction that lets it go is registered before
   * the caller's).
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
