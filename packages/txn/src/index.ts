/**
 * @wal/txn — a transactional key-value store on a @wal/core log: serializable
 * (default) or snapshot-isolated transactions by optimistic concurrency
 * control over multi-version state in memory; each commit is one durable log
 * record, and opening replays the log. Open one with {@link TxnStore.open}.
 *
 * @packageDocumentation
 */
export type { Bytes } from './keys.js';
export {
  type CheckpointInfo,
  type CheckpointOptions,
  DEFAULT_CHECKPOINT_LOG_BYTES,
  type LogOptions,
  type RunOptions,
  TXN_APPLICATION,
  TxnStore,
  type TxnStoreOptions,
  type TxnStoreStats,
} from './store.js';
export {
  type BeginOptions,
  type Entry,
  type Isolation,
  type ScanOptions,
  Transaction,
  type TransactionStatus,
} from './transaction.js';
