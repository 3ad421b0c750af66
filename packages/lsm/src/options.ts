/**
 * Options, defaults and the small public types of @wal/lsm.
 */
import { invalidArgType, rejectUnknownKeys, validateInteger } from '@wal/errors';
import { FS_METHODS, type Fs, MAX_SEGMENT_SIZE, MIN_SEGMENT_SIZE, NodeFs } from '@wal/store';
import { BlockCache } from './block-cache.js';
import type { CompactionShape } from './compaction.js';
import { LSM_OPTION_KEYS } from './option-keys.js';
import type { TableLayout } from './table.js';
import { monotonicClock, type SliceClock } from './timeslice.js';

/** What a {@link Snapshot} needs of its store. */
export interface SnapshotOwner {
  releaseSnapshot(snapshot: Snapshot): void;
}

/** Options of {@link Lsm.open}. */
export interface LsmOptions {
  /** File system (default: the real one). Tests pass `CrashFs` or `FaultFs` from `@wal/store/testing`. */
  readonly fs?: Fs;
  /** Memtable size, in estimated bytes, at which it is frozen and flushed. Default 4 MiB. */
  readonly writeBufferSize?: number;
  /** Target size of a table's data block. Default 4096. */
  readonly blockSize?: number;
  /** Entries between restart points in a data block. Default 16. */
  readonly restartInterval?: number;
  /** Bloom filter bits per key (0: no filter). Default 10 (about 1 % false positives). */
  readonly bitsPerKey?: number;
  /** Segment size of the data and manifest logs (see @wal/core). Default: @wal/core's. */
  readonly segmentSize?: number;
  /** Level-0 tables that start a compaction into level 1. Default 4. */
  readonly level0Trigger?: number;
  /** Level-0 tables at which each write is delayed by 1 ms. Default 8. */
  readonly level0SlowdownTrigger?: number;
  /** Level-0 tables at which writes wait for compaction. Default 12. */
  readonly level0StopTrigger?: number;
  /** Byte budget of level 1; level L has `levelBaseBytes · levelRatio^(L−1)`. Default 10 MiB. */
  readonly levelBaseBytes?: number;
  /** Growth of the byte budget per level. Default 10. */
  readonly levelRatio?: number;
  /** Size at which a compaction starts a new output table. Default 2 MiB. */
  readonly targetFileSize?: number;
  /**
   * Bytes of its input tables a compaction reads ahead of its merge, at
   * most (a block larger than its share counts whole): each input (a
   * level-0 table, or the next level's tables) reads windows of
   * `compactionReadSize / (2 · inputs)` bytes with one read each, one
   * merged while the next is read. Default 4 MiB.
   */
  readonly compactionReadSize?: number;
  /** Bytes of data blocks kept in memory (as stored, checked), shared by all tables (0: none). Default 8 MiB. */
  readonly blockCacheSize?: number;
  /** Manifest log size past which it is rewritten as one snapshot edit. Default 4 MiB. */
  readonly maxManifestBytes?: number;
  /**
   * `true` (default): a get or a seek reads a data block missing from the
   * block cache with a synchronous positional read (`Fs.preadSync`, when the
   * file system has it), which blocks the event loop for the read: a few
   * microseconds from the page cache, a disk's latency when the block is
   * not there. `false`: every read goes through libuv's thread pool.
   */
  readonly syncReads?: boolean;
  /**
   * `false` (default): the data log's writes and fdatasyncs run on libuv's
   * thread pool. `true`: the data log is opened with @wal/core's
   * `blockingSync` (docs/DURABILITY.md §2.1), for a program with one writer
   * at a time: each put's (or batch's) write, and each `sync: true` write's
   * fdatasync, runs synchronously on the event-loop thread in the microtask
   * after the writes of the current turn, which saves a thread-pool round
   * trip per write. The cost: the event loop is blocked for every write
   * (microseconds into the page cache) and every fdatasync (about 0.1–2 ms
   * on an SSD, far more on a slow disk); concurrent writers still share one
   * write and one fdatasync, but no longer overlap them with the disk. Each
   * write resolves in a microtask, yet a loop of awaited writes lets the
   * event loop turn about once a millisecond, as @wal/core paces a blocking
   * log's waits (a write whose log wait is due for a turn is applied and
   * resolves after one, through `setImmediate`, and the writes made until
   * then after it: writes resolve in call order): the store's flushes and
   * compactions go on while the writes do, and timers and I/O callbacks
   * wait about a millisecond plus the write or fdatasync in progress. What a resolved put or batch guarantees does not change
   * (README, "Guarantees"). Tables and the manifest are written as without
   * it.
   */
  readonly blockingSync?: boolean;
}

/** Defaults of {@link LsmOptions}. */
export const DEFAULT_WRITE_BUFFER_SIZE = 4 * 1024 * 1024;
/** Default {@link LsmOptions.blockSize}. */
export const DEFAULT_BLOCK_SIZE = 4096;
/** Default {@link LsmOptions.restartInterval}. */
export const DEFAULT_RESTART_INTERVAL = 16;
/** Default {@link LsmOptions.bitsPerKey}. */
export const DEFAULT_BITS_PER_KEY = 10;
/** Default {@link LsmOptions.targetFileSize}. */
export const DEFAULT_TARGET_FILE_SIZE = 2 * 1024 * 1024;
/** Default {@link LsmOptions.blockCacheSize}. */
export const DEFAULT_BLOCK_CACHE_SIZE = 8 * 1024 * 1024;
/** Default {@link LsmOptions.compactionReadSize}. */
export const DEFAULT_COMPACTION_READ_SIZE = 4 * 1024 * 1024;
/** Default {@link LsmOptions.levelBaseBytes}. */
export const DEFAULT_LEVEL_BASE_BYTES = 10 * 1024 * 1024;

/** Per-write options. */
export interface WriteOptions {
  /**
   * `true`: resolve once the write is durable (fsynced through the log's
   * group commit; survives a power loss). Default `false`: once it is
   * written to the operating system (survives a process crash).
   */
  readonly sync?: boolean;
}

/** One operation of {@link Lsm.batch}. */
export type BatchOperation =
  | { readonly type: 'put'; readonly key: Uint8Array; readonly value: Uint8Array }
  | { readonly type: 'del'; readonly key: Uint8Array }
  /** Deletes every key `k` with `start ≤ k < end` (nothing when `start ≥ end`). */
  | { readonly type: 'delRange'; readonly start: Uint8Array; readonly end: Uint8Array };

/** A consistent read view: every write applied at or before its sequence number. */
export class Snapshot {
  #released = false;
  /** @internal */
  constructor(
    /** The last sequence number the snapshot sees. */
    readonly sequence: number,
    /** @internal The store that made the snapshot. */
    readonly owner: SnapshotOwner,
  ) {}

  /** True once {@link Snapshot.release} was called. */
  get released(): boolean {
    return this.#released;
  }

  /**
   * Releases the snapshot (idempotent): compactions may then drop the
   * versions only it needed. Reads through it then throw `ERR_INVALID_ARG_VALUE`.
   */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    this.owner.releaseSnapshot(this);
  }
}

/** Options of reads. */
export interface ReadOptions {
  /** Read at this snapshot (default: the latest applied write). */
  readonly snapshot?: Snapshot;
}

/** Options of {@link Lsm.iterator}: a key range, a direction, a limit, a snapshot. */
export interface IteratorOptions extends ReadOptions {
  readonly gt?: Uint8Array;
  readonly gte?: Uint8Array;
  readonly lt?: Uint8Array;
  readonly lte?: Uint8Array;
  /** Largest-first. Default false. */
  readonly reverse?: boolean;
  /** Most entries yielded (default: no limit; -1 also means none). */
  readonly limit?: number;
}

/** What {@link Lsm.stats} reports. */
export interface LsmStats {
  /** Last sequence number applied. */
  readonly sequence: number;
  /** Live tables per level. */
  readonly tables: readonly number[];
  /** Estimated bytes in the active memtable. */
  readonly memtableBytes: number;
  /** True while a frozen memtable is being flushed. */
  readonly flushing: boolean;
  /** Bytes written to tables by flushes. */
  readonly flushedBytes: number;
  /** Bytes written to tables by compactions. */
  readonly compactedBytes: number;
  /** Compactions run (moves included). */
  readonly compactions: number;
  /** Bytes of keys and values applied by writes since open. */
  readonly userBytes: number;
  /** Bytes appended to the data log since open. */
  readonly logBytes: number;
  /**
   * Write amplification since open: bytes written to the log and to tables
   * per byte of keys and values written (0 before any write).
   */
  readonly writeAmplification: number;
  /** Table bytes per level. */
  readonly levelBytes: readonly number[];
  /** Bytes held by the block cache: its blocks' contents plus a fixed overhead each; at most `blockCacheSize`. */
  readonly blockCacheBytes: number;
  /**
   * Bytes the live tables hold in memory while open: their indexes (the
   * last key and the handle of each data block), their bloom filters and
   * their range deletions. It grows with the data: about `bitsPerKey / 8`
   * bytes per key plus the key length + 16 bytes per data block.
   */
  readonly tableMemoryBytes: number;
}

export function positive(
  name: string,
  value: number | undefined,
  fallback: number,
  min: number,
  max: number,
): number {
  if (value === undefined) return fallback;
  validateInteger(name, value, min, max);
  return value;
}

/** {@link LsmOptions} checked, with their defaults. */
export interface ResolvedOptions {
  readonly fs: Fs;
  readonly layout: TableLayout;
  readonly writeBufferSize: number;
  readonly shape: CompactionShape;
  readonly slowdown: number;
  readonly stop: number;
  readonly cache: BlockCache;
  readonly maxManifestBytes: number;
  readonly targetFileSize: number;
  readonly compactionReadSize: number;
  /** Options of the data and manifest logs. */
  readonly logOptions: {
    readonly fs: Fs;
    readonly segmentSize?: number;
    readonly durableWrites?: boolean;
  };
  /** {@link LsmOptions.blockingSync}: for the data log only. */
  readonly blockingSync: boolean;
  /** The clock of the slices of flushes and compactions (see {@link SLICE_CLOCK}). */
  readonly sliceClock: SliceClock;
}

/**
 * Internal (not exported from the package): under this key, an options
 * object may carry `{ durableWrites }` for the store's logs (@wal/core's
 * option), so that tests run the engine over logs that commit with a write
 * and then an fdatasync.
 */
export const LOG_OPTIONS: unique symbol = Symbol('@wal/lsm log options');

/**
 * Internal (not exported from the package): under this key, an options
 * object may carry the clock (a {@link SliceClock}) by which flushes and
 * compactions decide that a slice is over and give the turn back, so that
 * tests can make every slice end after its first look at the clock.
 */
export const SLICE_CLOCK: unique symbol = Symbol('@wal/lsm slice clock');

/**
 * Checks `options` and fills in the defaults. Throws Node-style argument
 * errors: an unknown key (a misspelt option) is `ERR_INVALID_ARG_VALUE`.
 */
export function resolveOptions(options: LsmOptions): ResolvedOptions {
  if (typeof options !== 'object' || options === null) {
    throw invalidArgType('options', 'of type object', options);
  }
  rejectUnknownKeys('options', options, LSM_OPTION_KEYS);
  const fs = options.fs ?? new NodeFs();
  if (
    typeof fs !== 'object' ||
    fs === null ||
    FS_METHODS.some(
      (method) => typeof (fs as unknown as Record<string, unknown>)[method] !== 'function',
    )
  ) {
    throw invalidArgType('options.fs', `an Fs object (with ${FS_METHODS.join(', ')})`, fs);
  }
  // Checked here, before anything is created: the logs would check it only
  // after the store's directory and marker were made.
  const segmentSize = positive(
    'options.segmentSize',
    options.segmentSize,
    0,
    MIN_SEGMENT_SIZE,
    MAX_SEGMENT_SIZE,
  );
  const layout: TableLayout = {
    blockSize: positive('options.blockSize', options.blockSize, DEFAULT_BLOCK_SIZE, 64, 1 << 24),
    restartInterval: positive(
      'options.restartInterval',
      options.restartInterval,
      DEFAULT_RESTART_INTERVAL,
      1,
      1024,
    ),
    bitsPerKey: positive('options.bitsPerKey', options.bitsPerKey, DEFAULT_BITS_PER_KEY, 0, 64),
  };
  const writeBufferSize = positive(
    'options.writeBufferSize',
    options.writeBufferSize,
    DEFAULT_WRITE_BUFFER_SIZE,
    1024,
    1 << 30,
  );
  const level0Trigger = positive('options.level0Trigger', options.level0Trigger, 4, 1, 1000);
  const slowdown = positive(
    'options.level0SlowdownTrigger',
    options.level0SlowdownTrigger,
    Math.max(8, level0Trigger),
    level0Trigger,
    1000,
  );
  const stop = positive(
    'options.level0StopTrigger',
    options.level0StopTrigger,
    Math.max(12, slowdown),
    slowdown,
    1000,
  );
  const shape: CompactionShape = {
    level0Trigger,
    levelBaseBytes: positive(
      'options.levelBaseBytes',
      options.levelBaseBytes,
      DEFAULT_LEVEL_BASE_BYTES,
      1024,
      Number.MAX_SAFE_INTEGER,
    ),
    levelRatio: positive('options.levelRatio', options.levelRatio, 10, 2, 1000),
  };
  if (options.syncReads !== undefined && typeof options.syncReads !== 'boolean') {
    throw invalidArgType('options.syncReads', 'a boolean', options.syncReads);
  }
  const cache = new BlockCache(
    positive(
      'options.blockCacheSize',
      options.blockCacheSize,
      DEFAULT_BLOCK_CACHE_SIZE,
      0,
      Number.MAX_SAFE_INTEGER,
    ),
    options.syncReads ?? true,
  );
  const maxManifestBytes = positive(
    'options.maxManifestBytes',
    options.maxManifestBytes,
    4 * 1024 * 1024,
    1024,
    Number.MAX_SAFE_INTEGER,
  );
  const targetFileSize = positive(
    'options.targetFileSize',
    options.targetFileSize,
    DEFAULT_TARGET_FILE_SIZE,
    1024,
    1 << 30,
  );
  const compactionReadSize = positive(
    'options.compactionReadSize',
    options.compactionReadSize,
    DEFAULT_COMPACTION_READ_SIZE,
    1024,
    1 << 30,
  );
  if (options.blockingSync !== undefined && typeof options.blockingSync !== 'boolean') {
    throw invalidArgType('options.blockingSync', 'a boolean', options.blockingSync);
  }
  const durableWrites = (options as { [LOG_OPTIONS]?: { durableWrites?: boolean } })[LOG_OPTIONS]
    ?.durableWrites;
  const sliceClock = (options as { [SLICE_CLOCK]?: SliceClock })[SLICE_CLOCK] ?? monotonicClock;
  const logOptions = {
    fs,
    ...(options.segmentSize === undefined ? {} : { segmentSize }),
    ...(durableWrites === undefined ? {} : { durableWrites }),
  };

  return {
    fs,
    layout,
    writeBufferSize,
    shape,
    slowdown,
    stop,
    cache,
    maxManifestBytes,
    targetFileSize,
    compactionReadSize,
    logOptions,
    blockingSync: options.blockingSync ?? false,
    sliceClock,
  };
}
