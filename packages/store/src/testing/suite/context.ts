/** What the suite needs from its user, and what each of its files gets. */
import type { Store } from '../../store.js';
import type { StoreFaults } from '../store-faults.js';

/** What the suite needs from the test runner and the backend. */
export interface SuiteOptions {
  /** The runner's test function, e.g. mocha's `it` or `node:test`'s `test`. */
  readonly test: (name: string, fn: () => Promise<void>) => unknown;
  /** Creates a fresh, empty, open store at a location of its own. */
  readonly factory: () => Promise<Store>;
  /**
   * Opens the location of `store` again, whether `store` is still open or
   * closed. Required when the store declares `supports.persistent`.
   */
  readonly reopen?: (store: Store) => Promise<Store>;
  /** Runs per property-based test (default 25). */
  readonly runs?: number;
  /**
   * The store promises that `writeNow` and `syncNow` do the work (return
   * true) once the file a range lies in exists: `writeNow` of a range inside
   * the file the last `write` went to (and synced), and `syncNow` after it.
   * Without it, the suite accepts `false` (do it with `write` / `sync`) from
   * both.
   */
  readonly nowOnceCreated?: boolean;
  /**
   * For a `durable` store over a simulated file system (such as `CrashFs`):
   * the states a power loss now could leave `store` in (still open; the
   * suite closes it afterwards), each as a function opening the store's
   * location on that state — a handful up to a few dozen of them, the
   * harshest (only what was made durable) first. Given, the suite checks
   * that what `writeDurable` covered survives every one.
   */
  readonly powerLoss?: (store: Store) => Iterable<() => Promise<Store>>;
  /**
   * For a store with I/O that can fail: arms failures of `store`'s own I/O
   * (see {@link StoreFaults}; `faultFsFaults(fs)` for a store opened on a
   * `FaultFs`). Given, the suite checks the failure semantics of the
   * contract: a failed write rejects typed and latches nothing; for a
   * `durable` store, a failed sync or durable write latches `WAL_FAILED`,
   * `close()` still resolves, and a persistent store reopens (the lock was
   * released) with what was synced before.
   */
  readonly faults?: (store: Store) => StoreFaults;
}

/** The options with their defaults, and `withStore`, for the files of the suite. */
export interface SuiteContext {
  readonly test: SuiteOptions['test'];
  readonly factory: SuiteOptions['factory'];
  readonly reopen: SuiteOptions['reopen'];
  readonly runs: number;
  readonly nowOnceCreated: boolean;
  readonly powerLoss: SuiteOptions['powerLoss'];
  readonly faults: SuiteOptions['faults'];
  /** Runs `fn` on a fresh store from the factory and closes the store whatever happens. */
  withStore(fn: (store: Store) => Promise<void>): Promise<void>;
}

/** The context of one `suite(options)` call. */
export function suiteContext(options: SuiteOptions): SuiteContext {
  const { test, factory, reopen } = options;
  return {
    test,
    factory,
    reopen,
    runs: options.runs ?? 25,
    nowOnceCreated: options.nowOnceCreated ?? false,
    powerLoss: options.powerLoss,
    faults: options.faults,
    async withStore(fn) {
      const store = await factory();
      try {
        await fn(store);
      } finally {
        await store.close();
      }
    },
  };
}
