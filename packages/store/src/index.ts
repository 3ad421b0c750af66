/**
 * Storage backends for `@wal` over one flat byte space. See the README's
 * "The Store contract" for the normative semantics.
 *
 * @packageDocumentation
 */
export { FileStore, type FileStoreOptions } from './file-store.js';
export {
  FS_METHODS,
  type Fs,
  type FsFile,
  type FsLock,
  type FsMethod,
  type OpenMode,
} from './fs/fs.js';
export { readFull, readFullSync, writeAll } from './fs/io.js';
export { type HolderState, type LockHolder, readLockHolder } from './fs/lock-file.js';
export { DEFAULT_FILE_MODE, directoryMode, validateMode } from './fs/mode.js';
export { NodeFs } from './fs/node-fs.js';
export {
  type IdentifyOptions,
  identifyLog,
  isLogEntry,
  type LogIdentity,
  lockFileAt,
  segmentIndex,
} from './log-identity.js';
export { MemoryStore } from './memory-store.js';
export {
  DEFAULT_MAX_OPEN_SEGMENTS,
  DEFAULT_SEGMENT_SIZE,
  MAX_OPEN_SEGMENTS_LIMIT,
  MAX_SEGMENT_SIZE,
  MIN_SEGMENT_SIZE,
  SegmentedStore,
  type SegmentedStoreOptions,
  segmentName,
} from './segmented-store.js';
export {
  MAX_META_BYTES,
  type MetaUpdate,
  type MetaValue,
  STORE_META_PREFIX,
  type Store,
  type StoreMeta,
  type StoreSupports,
} from './store.js';
