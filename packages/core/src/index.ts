/**
 * @wal/core — a durable, recoverable write-ahead log for storage engines.
 * Open one with {@link Wal.open}; the normative specs are docs/FORMAT.md and
 * docs/DURABILITY.md.
 *
 * @packageDocumentation
 */
export { type BackupOptions, type BackupResult, backup } from './backup.js';
export {
  CHANNELS,
  type CommitEvent,
  type FailEvent,
  type RecoveryEvent,
  type RollEvent,
  type TruncateEvent,
} from './channels.js';
export { type Codec, type TypedRecord, TypedWal, type TypedWalOptions } from './codec.js';
export { crc32c } from './crc32c.js';
export {
  classifyDamage,
  type Damage,
  type DamageKind,
  encodeFrame,
  frameLength,
  HEADER_SIZE,
  MAX_FRAME_LENGTH,
} from './frame.js';
export {
  APPLICATION_KEY,
  DURABLE_HINT_KEY,
  FORMAT_KEY,
  FORMAT_VERSION,
  SUPPORTED_FORMATS,
} from './meta.js';
export {
  DEFAULT_INDEX_INTERVAL,
  DEFAULT_MAX_RECORD_SIZE,
  DEFAULT_PREALLOCATE,
  DEFAULT_STAGING_LIMIT,
  type Layout,
  MAX_RECORD_SIZE_LIMIT,
  WAL_DB_MAX_RECORD_SIZE,
  type WalOptions,
} from './options.js';
export { StoredRecord, type WalRecord } from './record.js';
export type { RecoveryPolicy } from './scan.js';
export type { SharedWalHandle } from './shared-log.js';
export { type SharedAppendOptions, SharedWal } from './shared-wal.js';
export { LOG2_BUCKETS, type Log2Histogram, log2Bucket, type WalStats } from './stats.js';
export {
  type AppendOptions,
  type RecoveryReport,
  type WaitLevel,
  type WaitOptions,
  Wal,
  type WalSource,
} from './wal.js';
