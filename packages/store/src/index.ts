/**
 * Storage backends for @wal over one flat byte space. See the README's
 * "The Store contract" for the normative semantics.
 *
 * @packageDocumentation
 */
export type { Fs, FsFile, FsLock, OpenMode } from './fs/fs.js';
export { MemoryStore } from './memory-store.js';
export {
  MAX_META_BYTES,
  type MetaUpdate,
  type MetaValue,
  type Store,
  type StoreMeta,
  type StoreSupports,
} from './store.js';
