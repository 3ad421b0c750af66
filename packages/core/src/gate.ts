/**
 * The store gate (docs/INTERNALS.md §8): counts the log's calls to its store
 * and, while the store runs a call that must be alone (its own
 * `truncateBefore`, which a `Store` may refuse to run beside any other call,
 * and vice versa), holds every new one until the gate opens again. Internal
 * to @wal/core.
 */
export class StoreGate {
  /** Set while the gate is closed; resolves when it opens. */
  #closed: Promise<void> | undefined;
  /** Calls sent to the store and not settled (writes, zeros, reads, syncs, metadata). */
  #calls = 0;
  #quietWaiters: Array<() => void> = [];

  /** Ends a call counted by {@link StoreGate.enter}. */
  readonly leave = (): void => {
    if (--this.#calls === 0 && this.#quietWaiters.length > 0) {
      const waiters = this.#quietWaiters;
      this.#quietWaiters = [];
      for (const resolve of waiters) resolve();
    }
  };

  /** Resolves when the gate opens; `undefined` while it is open. */
  get closed(): Promise<void> | undefined {
    return this.#closed;
  }

  /** Counts a call sent to the store now; the caller checked that the gate is open. */
  enter(): void {
    this.#calls++;
  }

  /**
   * Sends `call` to the store now, or once the gate opens; counted in the
   * calls the gate waits for. `call` returns a promise and never throws.
   */
  call<T>(call: () => Promise<T>): Promise<T> {
    const closed = this.#closed;
    if (closed !== undefined) return closed.then(() => this.call(call));
    this.#calls++;
    return call().finally(this.leave);
  }

  /**
   * Closes the gate: calls from now on wait. Returns the function that opens
   * it again (and releases them).
   */
  close(): () => void {
    let open!: () => void;
    this.#closed = new Promise<void>((resolve) => {
      open = resolve;
    });
    return () => {
      this.#closed = undefined;
      open();
    };
  }

  /** Resolves once no counted call is in flight; `undefined` when none is now. */
  quiet(): Promise<void> | undefined {
    if (this.#calls === 0) return undefined;
    return new Promise<void>((resolve) => this.#quietWaiters.push(resolve));
  }
}
