/**
 * Exclusivity (docs/INTERNALS.md §5, §7, §8): the one place where the log
 * runs something alone and where calls wait until it is done. It counts the
 * log's operations in flight (writes, zeros, reads, the hint update) and
 * tells when they all settled; runs the truncations one at a time, in call
 * order; gives a `truncateAfter` the log to itself (appends refused,
 * everything before it written, durable and settled, readers and waiters
 * held until it finished); and runs the store's own `truncateBefore` with the
 * store gate closed. Every wait is a promise resolved by the event it waits
 * for: no timer, no polling. Internal to @wal/core.
 */
import {
  BLOCK_CLOSED,
  BLOCK_FAILED,
  BLOCK_READ_ONLY,
  BLOCK_TRUNCATING,
  type LogState,
} from './state.js';

const noop = (): void => {};
/** The flushes a `truncateAfter` waits for do not wait out `commitDelayMs`. */
const NO_DELAY = { delay: false } as const;

/** A promise and the function resolving it. */
interface Signal {
  readonly promise: Promise<void>;
  readonly resolve: () => void;
}

function signal(): Signal {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

/** Who may run while whom waits. Internal. */
export class Exclusivity {
  readonly #log: LogState;
  /** Operations in flight: writes (sent or held), zeros, reads, the hint update (§5). */
  #inFlight = 0;
  /** Resolvers waiting for {@link Exclusivity.settled}. */
  #settleWaiters: Array<() => void> = [];
  /** `truncateAfter`s requested and not finished (§7). */
  #exclusives = 0;
  /** Resolved when the last requested `truncateAfter` finished; set while one is requested. */
  #quiet: Signal | undefined;
  /** Settles once every truncation requested so far finished: they run one at a time. */
  #truncations: Promise<void> | undefined;
  /** Truncations requested so far (numbered from 0, in call order) and finished. */
  #requested = 0;
  #finished = 0;
  /** The truncations numbered below this had their turn when `close()` was called. */
  #turnAtClose = Number.POSITIVE_INFINITY;

  constructor(log: LogState) {
    this.#log = log;
  }

  // ---------------------------------------------------------------- settle (§5)

  /** Counts an operation in flight; {@link Exclusivity.end} ends it. */
  begin(): void {
    this.#inFlight++;
  }

  /** Ends an operation counted by {@link Exclusivity.begin}; wakes the settle waiters at zero. */
  end(): void {
    if (--this.#inFlight > 0 || this.#settleWaiters.length === 0) return;
    const waiters = this.#settleWaiters;
    this.#settleWaiters = [];
    for (const resolve of waiters) resolve();
  }

  /** True when no write, zero write, read or hint update of the log is in flight. */
  get isSettled(): boolean {
    return this.#inFlight === 0;
  }

  /** Resolves once the log is settled (at once if it is). */
  settled(): Promise<void> {
    if (this.#inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.#settleWaiters.push(resolve));
  }

  // ---------------------------------------------------------------- truncations, in order

  /**
   * Runs the truncations one at a time, in call order. Resolves or rejects
   * as `work` does; when its turn comes, rejects instead with `WAL_CLOSED`
   * if `close()` was called before it (while it was queued behind another
   * truncation: one whose turn had come, also in the same turn as the call,
   * runs and the close waits for it), or with the log's failure.
   */
  enqueue<T>(work: () => Promise<T>): Promise<T> {
    const turn = this.#requested++;
    const log = this.#log;
    const run = (this.#truncations ?? Promise.resolve()).then(() => {
      if ((log.blocked & BLOCK_CLOSED) !== 0 && turn >= this.#turnAtClose) {
        throw log.blockedError('truncate the log');
      }
      if ((log.blocked & BLOCK_FAILED) !== 0) throw log.durability.failure!;
      return work();
    });
    const finished = (): void => {
      this.#finished++;
    };
    const tracked = run.then(finished, finished);
    this.#truncations = tracked;
    void tracked.then(() => {
      if (this.#truncations === tracked) this.#truncations = undefined;
    });
    return run;
  }

  /**
   * Notes, as `close()` is called, which truncations have had their turn:
   * the finished ones and the one running or about to start (no earlier one
   * still pending).
   */
  closing(): void {
    if (this.#turnAtClose === Number.POSITIVE_INFINITY) this.#turnAtClose = this.#finished + 1;
  }

  /** Resolves once every truncation requested so far (and while waiting) finished. */
  async truncationsDone(): Promise<void> {
    while (this.#truncations !== undefined) await this.#truncations;
  }

  // ---------------------------------------------------------------- the log alone (§7)

  /**
   * Resolves once no `truncateAfter` is requested or running (one requested
   * while waiting is waited for too); `undefined` when none is now, so the
   * common path costs one comparison. `read`, `sync`, `waitFor` and the
   * iterators wait for it before they look at the log.
   */
  quiet(): Promise<void> | undefined {
    return this.#quiet === undefined ? undefined : this.#whenQuiet();
  }

  async #whenQuiet(): Promise<void> {
    while (this.#quiet !== undefined) await this.#quiet.promise;
  }

  /**
   * Runs `work` with the log to itself (docs/INTERNALS.md §7): appends
   * refused from this call on, after every truncation called before it, once
   * everything appended before it is written and durable, every flush (with
   * its waiters) finished and the log settled. A failure meanwhile ends it
   * with that failure.
   */
  run<T>(work: () => Promise<T>): Promise<T> {
    const log = this.#log;
    if ((log.blocked & (BLOCK_CLOSED | BLOCK_READ_ONLY | BLOCK_FAILED)) !== 0) {
      return Promise.reject(log.blockedError('truncate the log'));
    }
    // Appends are refused from this call on, not from when the work starts:
    // a record appended in the same turn would be acknowledged, then cut.
    if (this.#exclusives++ === 0) this.#quiet = signal();
    log.blocked |= BLOCK_TRUNCATING;
    // A shared log: the other threads' appends are refused from the call on too.
    log.shared?.truncatingCalled(true);
    const run = this.enqueue(async () => {
      // What threads appended before the call, copied out first: it is
      // written and made durable below like the rest.
      await log.shared?.beforeCut();
      await this.#drain();
      return work();
    });
    const done = (): void => {
      if (--this.#exclusives > 0) return;
      log.blocked &= ~BLOCK_TRUNCATING;
      log.shared?.truncatingCalled(false);
      const quiet = this.#quiet!;
      this.#quiet = undefined;
      quiet.resolve();
    };
    run.then(done, done);
    return run;
  }

  /**
   * Writes and makes durable everything appended so far, and waits until
   * every flush with its waiters finished (`gc.idle`) and the log is settled.
   * A flush scheduled for other waiters is waited for through the group
   * commit itself: one is scheduled or running only while `durable <
   * written` (a flush starts only for a waiter at or below `written` and above
   * `durable`, and ends by raising `durable` to what was written when it
   * began), so `syncTo(written)` resolves once it ended, and calls no sync of
   * its own. Rejects with the log's failure if it failed meanwhile.
   */
  async #drain(): Promise<void> {
    const log = this.#log;
    const gc = log.gc!;
    log.writer.submit();
    for (;;) {
      if (gc.failure !== undefined || log.durability.failure !== undefined) break;
      if (gc.reserved < log.tail) gc.reserve(log.tail);
      // Appends are refused: waiting out commitDelayMs would gather nobody.
      if (gc.durable < gc.reserved) await gc.syncTo(gc.reserved, NO_DELAY);
      await this.settled();
      if (gc.idle && this.isSettled && gc.durable >= log.tail) break;
      // A flush for other waiters is pending: wait for it (a failure ends the loop above).
      if (!gc.idle && gc.durable < gc.written) await gc.syncTo(gc.written, NO_DELAY).catch(noop);
    }
    if (log.durability.failure !== undefined) throw log.durability.failure;
  }

  // ---------------------------------------------------------------- the store alone (§8)

  /**
   * Runs `call` (a store call that must be alone: the store's
   * `truncateBefore`) with the store gate closed: once every store call in
   * flight settled, and before any waiting one is sent. Appends meanwhile are
   * staged as usual; their writes (and syncs, reads, metadata updates) wait
   * for the gate, no longer. `after` runs when `call` succeeded, before the
   * gate opens (so that what waited sees its effect).
   */
  async alone(call: () => Promise<void>, after: () => void): Promise<void> {
    const log = this.#log;
    const open = log.gate.close();
    try {
      const quiet = log.gate.quiet();
      if (quiet !== undefined) await quiet;
      // A failure while in-flight calls settled: nothing is changed.
      if (log.durability.failure !== undefined) throw log.durability.failure;
      await call();
      after();
    } finally {
      open();
      log.writer.releaseHeld();
    }
  }
}
