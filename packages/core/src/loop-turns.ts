/**
 * Turns of the event loop for a blocking log (`WalOptions.blockingSync`,
 * docs/DURABILITY.md §2.1). Its writes and fdatasyncs run on the calling
 * thread, so its waits settle in a microtask: a loop of awaited appends
 * would never let the event loop turn, and timers, I/O callbacks, the log's
 * own asynchronous steps (a segment to create) and a consumer's background
 * work (an LSM's flush, a checkpoint) would wait for the loop to end. So
 * once at least {@link LOOP_TURN_MS} passed since a wait last let the loop
 * turn, the next wait is held for one turn (`setImmediate`), and so is every
 * wait made until that turn has come and the held ones are let go. They are
 * let go together, in the order they were made, each with its own outcome
 * (a failure never overtakes an earlier success): committers released by
 * one flush still resume in one wave, so that their next appends share a
 * write and an fdatasync. The clock is read at every `durable` wait (whose
 * fdatasync dwarfs the read) and every {@link CHECK_WAITS} `written` ones.
 * Only the wait is paced: the record is written (and durable) as soon as
 * the others. Internal to @wal/core.
 */

/** Milliseconds at most between two turns a loop of awaited waits lets the event loop take. */
export const LOOP_TURN_MS = 1;
/** `written` waits between two reads of the clock. */
const CHECK_WAITS = 16;

/** A wait held for a turn: its outcome once known, and how to hand it on. */
interface Held {
  settled: boolean;
  ok: boolean;
  outcome: unknown;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: unknown) => void;
}

/** The waits held for one turn, in the order they were made. */
interface HeldGroup {
  readonly waits: Held[];
  /** The turn has come: waits are let go, in order, as soon as theirs settled. */
  turned: boolean;
  /** How many were let go. */
  released: number;
}

/** Paces the waits of a blocking log (see the module comment). */
export class LoopTurns {
  /** When a wait last let the event loop turn (`performance.now()`). */
  #turned = performance.now();
  /** `written` waits since the clock was last read. */
  #unchecked = 0;
  /** The waits held for the coming turn, until all of them are let go. */
  #group: HeldGroup | undefined;

  /**
   * `wait` as it is, or a promise with the same outcome that settles once
   * the held waits' turn has come, after the waits held before it.
   * `durable`: a durable wait (or a sync).
   */
  pace<T>(wait: Promise<T>, durable: boolean): Promise<T> {
    let group = this.#group;
    if (group === undefined) {
      if (!this.#due(durable)) return wait;
      group = { waits: [], turned: false, released: 0 };
      this.#group = group;
      const held = group;
      setImmediate(() => {
        held.turned = true;
        this.#release(held);
      });
    }
    return this.#hold(group, wait);
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

  #hold<T>(group: HeldGroup, wait: Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const held: Held = {
        settled: false,
        ok: true,
        outcome: undefined,
        resolve: resolve as (value: unknown) => void,
        reject,
      };
      group.waits.push(held);
      wait.then(
        (value) => {
          held.settled = true;
          held.outcome = value;
          this.#release(group);
        },
        (error: unknown) => {
          held.settled = true;
          held.ok = false;
          held.outcome = error;
          this.#release(group);
        },
      );
    });
  }

  /**
   * Once the turn has come, lets go, in one go, every held wait whose own
   * wait settled, up to the first that has not; the group ends once all are.
   */
  #release(group: HeldGroup): void {
    if (!group.turned) return;
    const waits = group.waits;
    while (group.released < waits.length && waits[group.released]!.settled) {
      const held = waits[group.released++]!;
      if (held.ok) held.resolve(held.outcome);
      else held.reject(held.outcome);
    }
    if (group.released === waits.length && this.#group === group) this.#group = undefined;
  }
}
