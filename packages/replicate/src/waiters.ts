/**
 * Promises waiting for a position (an LSN, a stream sequence) to be reached,
 * shared by the replicator and the follower.
 */

/** One waiter: the position it waits for and how to settle it. */
export interface Waiter {
  readonly at: number;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

/** The waiters of one replicator or follower. */
export class Waiters {
  #list: Waiter[] = [];

  /** A promise settled once the position `at` is released or everything is rejected. */
  wait(at: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#list.push({ at, resolve, reject });
    });
  }

  /**
   * Resolves the waiters `reached` says are done; `keep` may reject others
   * (returning false drops them). Returns the largest position left, or -1.
   */
  release(reached: (at: number) => boolean, keep?: (waiter: Waiter) => boolean): number {
    let largest = -1;
    const left: Waiter[] = [];
    for (const waiter of this.#list) {
      if (reached(waiter.at)) waiter.resolve();
      else if (keep === undefined || keep(waiter)) {
        left.push(waiter);
        if (waiter.at > largest) largest = waiter.at;
      }
    }
    this.#list = left;
    return largest;
  }

  /** Rejects every waiter with `error`. */
  rejectAll(error: unknown): void {
    const list = this.#list;
    this.#list = [];
    for (const waiter of list) waiter.reject(error);
  }
}
