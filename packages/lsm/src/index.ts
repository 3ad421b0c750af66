/**
 * @wal/lsm — a durable sorted key-value store (an LSM tree) whose
 * write-ahead log is @wal/core. The on-disk format is docs/LSM-FORMAT.md.
 *
 * @packageDocumentation
 */
export { LsmIterator } from './iterator.js';
export { LsmLevel, type LsmLevelOptions, type LsmLevelWriteOptions } from './level.js';
export { Lsm } from './lsm.js';
export {
  type BatchOperation,
  DEFAULT_BITS_PER_KEY,
  DEFAULT_BLOCK_CACHE_SIZE,
  DEFAULT_BLOCK_SIZE,
  DEFAULT_LEVEL_BASE_BYTES,
  DEFAULT_RESTART_INTERVAL,
  DEFAULT_TARGET_FILE_SIZE,
  DEFAULT_WRITE_BUFFER_SIZE,
  type IteratorOptions,
  type LsmOptions,
  type LsmStats,
  type ReadOptions,
  Snapshot,
  type WriteOptions,
} from './options.js';
