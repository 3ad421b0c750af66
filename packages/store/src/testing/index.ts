/**
 * Test utilities of @wal/store, for our backends and for users testing theirs:
 * the Store conformance suite and the simulated file systems.
 *
 * @packageDocumentation
 */

// CrashFs: simulated power loss and process crashes (this block: CrashFs only).
export {
  CrashFs,
  type CrashFsCall,
  type CrashFsOperation,
  type CrashFsOptions,
  type CrashImage,
  type CrashState,
  type CrashStates,
  type CrashStatesOptions,
  type LostContent,
  type ProcessCrashOptions,
} from './crash-fs.js';
// Completion orders of a CrashFs: reordered completions of concurrent calls.
export {
  CompletionExplorer,
  type CompletionExplorerOptions,
  type CompletionOrder,
  CompletionSchedule,
  type ExplorationFigures,
} from './crash-orders.js';

// FaultFs: fault injection over any Fs.
export {
  type Fault,
  FaultFs,
  type FaultRule,
  FSYNC_METHODS,
  type FsCall,
  type FsMethod,
  type Injection,
  SYNC_FAILED,
  type SyncFailure,
  systemError,
} from './fault-fs.js';
// The Store conformance suite, and the failures it can make a store's I/O meet.
export { faultFsFaults, type StoreFaults } from './store-faults.js';
export { ConformanceError, type SuiteOptions, suite } from './suite.js';
// A directory tree: a snapshot, to prove that an operation changed nothing, and
// the permissions of what an operation created, under a chosen umask.
export { permissionsUnder, treeSnapshot, withUmask } from './tree.js';
