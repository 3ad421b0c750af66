/**
 * The Store conformance suite. Every backend, ours or a user's, runs it with a
 * few lines:
 *
 * ```ts
 * import { suite } from '@wal/store/testing';
 * describe('MyStore', () => suite({ test: it, factory: () => MyStore.open(tmp()) }));
 * ```
 *
 * The suite branches on what the store declares in `store.supports`, never on
 * options: a `persistent` store must be given `reopen`, and is then checked for
 * persistence and (when `locking`) for the exclusive lock. A `durable` store
 * given `powerLoss` (states of a simulated power loss) is checked through
 * power losses too. Given `faults` (a way to make the store's own I/O fail),
 * the suite checks the failure semantics: typed I/O errors, and the latch
 * after a failed fsync or durable write.
 *
 * Its checks live in `suite/`, one file per operation; the checks every
 * operation shares (on a closed store, with invalid arguments) are traits in
 * `suite/traits/`, registered by each operation's file.
 */
import { closeTests } from './suite/close.js';
import { type SuiteOptions, suiteContext } from './suite/context.js';
import { durableTests } from './suite/durable.js';
import { exclusiveTests } from './suite/exclusive.js';
import { faultTests } from './suite/faults.js';
import { lockTests } from './suite/lock.js';
import { metaTests } from './suite/meta.js';
import { modelTests } from './suite/model.js';
import { nowTests } from './suite/now.js';
import { openTests } from './suite/open.js';
import { persistenceTests } from './suite/persistence.js';
import { readTests } from './suite/read.js';
import { readyEndTests } from './suite/ready-end.js';
import { syncTests } from './suite/sync.js';
import { truncateTests } from './suite/truncate.js';
import { truncateBeforeTests } from './suite/truncate-before.js';
import { writeTests } from './suite/write.js';

export { ConformanceError } from './suite/check.js';
export type { SuiteOptions } from './suite/context.js';

/**
 * Registers the conformance tests with `options.test`. Each test creates its
 * own store with `options.factory` and closes it. A failed check throws a
 * ConformanceError saying what the contract requires.
 */
export function suite(options: SuiteOptions): void {
  const context = suiteContext(options);
  openTests(context);
  modelTests(context);
  readTests(context);
  writeTests(context);
  truncateTests(context);
  truncateBeforeTests(context);
  metaTests(context);
  syncTests(context);
  nowTests(context);
  readyEndTests(context);
  durableTests(context);
  exclusiveTests(context);
  closeTests(context);
  persistenceTests(context);
  lockTests(context);
  faultTests(context);
}
