/**
 * The options of `Wal.open`, validated once into a complete set, and the
 * wait level of appends and waits. Internal.
 */
import { invalidArgType, invalidArgValue, rejectUnknownKeys, validateInteger } from '@wal/errors';
import { type Fs, MAX_OPEN_SEGMENTS_LIMIT, validateMode } from '@wal/store';
import { validateSignal } from './abort.js';
import type { StoredRecord } from './record.js';
import type { RecoveryPolicy } from './scan.js';

/** How a log opened from a path is laid out on disk. */
export type Layout = 'segmented' | 'file';

/** Options of {@link Wal.open}. Every field is optional. */
export interface WalOptions {
  /**
   * Largest payload in bytes, in `[1, 2^30]`. Persisted in the log's metadata:
   * omitted, the persisted value applies, or for a log without one 16 MiB
   * (a new log) or 64 MiB (wal-db 1.x's default, for a wal-db log being
   * adopted: one that holds records or a head but none of our metadata); larger
   * than the persisted value, it is raised and persisted; smaller, `open`
   * rejects with `ERR_OUT_OF_RANGE` (never a truncation).
   */
  readonly maxRecordSize?: number;
  /**
   * The name of the program or format the log's records belong to (like
   * SQLite's `application_id`), a string of 1 to 256 characters such as
   * `'@wal/txn'`. A new log records it in its metadata (docs/FORMAT.md §5.2).
   * An existing log that records another name is refused with
   * `WAL_NOT_A_LOG` before any of its records is scanned, cut or written,
   * so that a program never writes into another program's log. An existing log that records none
   * (created without this option, or by wal-db 1.x) opens as before and
   * keeps none: `Wal.application` is then `undefined`, and the caller decides
   * whether its records are its own. Omitted, any log opens, whatever it records.
   */
  readonly application?: string;
  /**
   * What recovery does with damage below the durable hint: `'strict'`
   * (default) rejects with `WAL_CORRUPTION`; `'skip'` steps over a record
   * whose checksum fails by its length (its LSN stays unreadable).
   */
  readonly recovery?: RecoveryPolicy;
  /**
   * Bytes of appended records the log holds in memory, staged or being
   * written, before it refuses appends with `WAL_BUSY` (back-pressure; see
   * `Wal.writable` and `Wal.drained()`). In `[64 KiB, 2^30]`; default 4 MiB.
   */
  readonly stagingLimit?: number;
  /**
   * Spacing in bytes of the in-memory index of record boundaries used to
   * validate LSNs (`read`, `iterate`, truncations): one 8-byte entry per
   * interval of live log, and a validation reads at most about one interval.
   * In `[4 KiB, 2^30]`; default 256 KiB.
   */
  readonly indexInterval?: number;
  /**
   * Open without a lock and without changing anything: appends and
   * truncations throw `WAL_READ_ONLY`; `recovery` reports what a writable open
   * would do. Default `false`.
   */
  readonly readOnly?: boolean;
  /**
   * Extra group-commit delay in milliseconds (like PostgreSQL's
   * `commit_delay`); default 0: a flush gathers every committer released in
   * the current turn of the event loop, without a timer.
   */
  readonly commitDelayMs?: number;
  /**
   * Blocking commits, for a program with one writer that wants the lowest
   * latency per durable commit (docs/DURABILITY.md §2.1). Default `false`.
   * With `true`, the log's writes and syncs run synchronously on the calling
   * thread (the store's `writeNow` / `syncNow`: `fs.writeSync`,
   * `fs.fdatasyncSync`) whenever the store can run them without waiting, in
   * the microtask after the appends of the current turn, and a durable
   * append's record is durable when that returns (its promise resolved, or
   * held for a turn of the event loop, below); a sync starts
   * as soon as a waiter's record is written (no gathering macrotask). The
   * cost: the event loop is blocked for every write and for every fsync
   * (about 0.1–2 ms each on an SSD, far more on a slow or busy disk), so
   * timers, I/O callbacks and other requests of the process wait behind
   * them; committers released together still share one write and one fsync,
   * but concurrent committers no longer overlap their commits with the disk.
   * A loop of awaited appends still lets the event loop turn about once a
   * millisecond (a wait made that long after the last turn settles after
   * one; waits still settle in the order they were made). What a resolved
   * `durable` promise means does not change.
   */
  readonly blockingSync?: boolean;
  /**
   * Whether a durable commit is one durable write (the store's
   * `writeDurable`: on files, a write on an `O_DSYNC` descriptor) rather than
   * a write followed by a group-commit `fdatasync` (docs/DURABILITY.md §2.2).
   * Default `true`; without effect with `blockingSync` or on a store without
   * `writeDurable`. What a resolved `durable` promise means does not change;
   * `false` may suit a device whose `O_DSYNC` writes cost more than one
   * shared `fdatasync` per group.
   */
  readonly durableWrites?: boolean;
  /** Path opens only: `'segmented'` (a directory of segments, default) or `'file'` (one file). */
  readonly layout?: Layout;
  /**
   * Path opens of a segmented log only: the segment size. Stored in a new
   * log's metadata; required for a log without metadata (one written by
   * wal-db 1.x).
   */
  readonly segmentSize?: number;
  /**
   * Path opens of a segmented log only: most segment files open at once, an
   * integer in `[1, 2^31 − 1]`; default 64 (`DEFAULT_MAX_OPEN_SEGMENTS` of
   * `@wal/store`). The least recently used segment nothing is using is closed
   * (fdatasynced first if it holds unsynced records) to open another, so
   * reading a log of thousands of segments needs no more descriptors.
   */
  readonly maxOpenSegments?: number;
  /**
   * Path opens with layout `'file'` only: take over an existing file without
   * metadata even though its first frame does not check (default `false`:
   * such a file is refused with `WAL_NOT_A_LOG`, as it is most likely not a
   * log; docs/FORMAT.md §3.1). For a wal-db 1.x log whose only record was
   * torn. Recovery then cuts what does not check — the whole file when not
   * one frame does. A directory holding entries that are not part of a log
   * is never taken over.
   */
  readonly adopt?: boolean;
  /** Path opens only: the file system (default: the real one). Tests pass `CrashFs` or `FaultFs`. */
  readonly fs?: Fs;
  /**
   * Path opens only: permission bits of every file the log creates —
   * segments or the single file, metadata, head and lock files and their
   * temporary files — less the process's umask. An integer in `[0o600,
   * 0o777]` with the owner read and write bits set (`ERR_OUT_OF_RANGE`
   * otherwise; `ERR_INVALID_ARG_TYPE` for a non-number). Default `0o644`, as
   * LevelDB and SQLite. The log directory, when the open creates it, gets the
   * matching directory mode: each read bit adds its search bit (`0o755` by
   * default, `0o700` for `0o600`). Existing files keep their permissions.
   * Use `0o600` for a log holding private data.
   */
  readonly mode?: number;
  /**
   * Preallocation: once syncs are being asked for, the log writes zeros
   * ahead of its end, this many bytes at a time whenever less than half of
   * that is left, so that most syncs flush records into space the file
   * already has, with no file-size change to commit (on ext4 and XFS that
   * saves a journal commit per sync). In `[0, 2^30]`; 0 turns it off;
   * default 1 MiB for a log opened from a path, 0 for a store passed in.
   * Never past the end of the segment holding the last record; `close()` and
   * a `truncateAfter` that drops records cut what is unused; after a crash,
   * recovery cuts the zeros as a torn tail (docs/FORMAT.md §8.4).
   */
  readonly preallocate?: number;
  /**
   * Replays the log in the same pass as recovery: called with every record
   * of the recovered log, in LSN order, in batches (about one per MiB read),
   * before `open` resolves. The recovery scan reads and checks each record
   * once, so a start-up replay costs one read and one checksum per record
   * instead of an open followed by `iterateBatches()`. A promise it returns is
   * awaited before the next batch (back-pressure). The records are exactly
   * those the opened log holds from its head: nothing after a torn tail,
   * nothing the `skip` policy stepped over. If `open` rejects (damage under
   * the strict policy, an error thrown by this function, an I/O error), the
   * records delivered were intact but the log did not open: discard what was
   * built from them. `reopen()` does not replay.
   */
  readonly replay?: (records: readonly StoredRecord[]) => void | Promise<void>;
  /**
   * With `replay`: the records handed to it, and the array holding them, are
   * valid only until it returns (or the promise it returns settles); the log
   * then reads the next batches into the same memory, as LevelDB's log reader
   * does, and refills the same record objects, which saves an allocation per
   * MiB read and one per record. Copy what you keep
   * (`Uint8Array.from(payload)`).
   * Default `false`: every batch has buffers of its own, which the caller may
   * keep.
   */
  readonly replayReusesBuffers?: boolean;
}

/** Default {@link WalOptions.maxRecordSize} of a new log: 16 MiB. */
export const DEFAULT_MAX_RECORD_SIZE = 16 * 1024 * 1024;
/**
 * Default {@link WalOptions.maxRecordSize} of a wal-db 1.x log adopted
 * without metadata: 64 MiB, wal-db's own default.
 */
export const WAL_DB_MAX_RECORD_SIZE = 64 * 1024 * 1024;
/** Largest accepted {@link WalOptions.maxRecordSize}: 1 GiB. */
export const MAX_RECORD_SIZE_LIMIT = 1024 * 1024 * 1024;
/** Default {@link WalOptions.stagingLimit}: 4 MiB. */
export const DEFAULT_STAGING_LIMIT = 4 * 1024 * 1024;
/** Default {@link WalOptions.preallocate} of a log opened from a path: 1 MiB. */
export const DEFAULT_PREALLOCATE = 1024 * 1024;
/** Default {@link WalOptions.indexInterval}: 256 KiB. */
export const DEFAULT_INDEX_INTERVAL = 256 * 1024;

const MIN_STAGING_LIMIT = 64 * 1024;
const MIN_INDEX_INTERVAL = 4 * 1024;
const LIMIT = 1024 * 1024 * 1024;

export interface ResolvedOptions {
  readonly maxRecordSize: number | undefined;
  readonly application: string | undefined;
  readonly recovery: RecoveryPolicy;
  readonly stagingLimit: number;
  readonly indexInterval: number;
  readonly readOnly: boolean;
  readonly commitDelayMs: number;
  readonly blockingSync: boolean;
  readonly durableWrites: boolean;
  readonly layout: Layout;
  readonly segmentSize: number | undefined;
  readonly maxOpenSegments: number | undefined;
  readonly adopt: boolean;
  readonly fs: Fs | undefined;
  readonly mode: number | undefined;
  readonly preallocate: number | undefined;
  readonly replay: ((records: readonly StoredRecord[]) => void | Promise<void>) | undefined;
  readonly replayReusesBuffers: boolean;
}

const KNOWN = new Set([
  'maxRecordSize',
  'application',
  'recovery',
  'stagingLimit',
  'indexInterval',
  'readOnly',
  'commitDelayMs',
  'blockingSync',
  'durableWrites',
  'layout',
  'segmentSize',
  'maxOpenSegments',
  'adopt',
  'fs',
  'mode',
  'preallocate',
  'replay',
  'replayReusesBuffers',
]);

/**
 * Validates `options`. Throws `TypeError`/`RangeError` with Node-style codes;
 * an unknown key is `ERR_INVALID_ARG_VALUE` (a misspelt option must not be
 * silently ignored by a storage library).
 */
export function resolveOptions(options: unknown): ResolvedOptions {
  if (options === undefined) options = {};
  if (typeof options !== 'object' || options === null) {
    throw invalidArgType('options', 'of type object', options);
  }
  const given = options as Record<string, unknown>;
  rejectUnknownKeys('options', given, KNOWN);
  const {
    maxRecordSize,
    application,
    recovery = 'strict',
    stagingLimit = DEFAULT_STAGING_LIMIT,
    indexInterval = DEFAULT_INDEX_INTERVAL,
    readOnly = false,
    commitDelayMs = 0,
    blockingSync = false,
    durableWrites = true,
    layout = 'segmented',
    segmentSize,
    maxOpenSegments,
    adopt = false,
    fs,
    mode,
    preallocate,
    replay,
    replayReusesBuffers = false,
  } = given;
  if (maxRecordSize !== undefined) {
    validateInteger('options.maxRecordSize', maxRecordSize, 1, MAX_RECORD_SIZE_LIMIT);
  }
  if (application !== undefined) validateApplication('options.application', application);
  if (recovery !== 'strict' && recovery !== 'skip') {
    throw invalidArgValue('options.recovery', recovery, "must be 'strict' or 'skip'");
  }
  validateInteger('options.stagingLimit', stagingLimit, MIN_STAGING_LIMIT, LIMIT);
  validateInteger('options.indexInterval', indexInterval, MIN_INDEX_INTERVAL, LIMIT);
  if (typeof readOnly !== 'boolean') {
    throw invalidArgType('options.readOnly', 'of type boolean', readOnly);
  }
  validateInteger('options.commitDelayMs', commitDelayMs, 0, 2 ** 31 - 1);
  if (typeof blockingSync !== 'boolean') {
    throw invalidArgType('options.blockingSync', 'of type boolean', blockingSync);
  }
  if (typeof durableWrites !== 'boolean') {
    throw invalidArgType('options.durableWrites', 'of type boolean', durableWrites);
  }
  if (layout !== 'segmented' && layout !== 'file') {
    throw invalidArgValue('options.layout', layout, "must be 'segmented' or 'file'");
  }
  if (segmentSize !== undefined) validateInteger('options.segmentSize', segmentSize, 1, LIMIT);
  if (maxOpenSegments !== undefined) {
    validateInteger('options.maxOpenSegments', maxOpenSegments, 1, MAX_OPEN_SEGMENTS_LIMIT);
  }
  if (typeof adopt !== 'boolean') throw invalidArgType('options.adopt', 'of type boolean', adopt);
  if (fs !== undefined && (typeof fs !== 'object' || fs === null)) {
    throw invalidArgType('options.fs', 'an Fs object', fs);
  }
  if (mode !== undefined) validateMode('options.mode', mode);
  if (preallocate !== undefined) validateInteger('options.preallocate', preallocate, 0, LIMIT);
  if (replay !== undefined && typeof replay !== 'function') {
    throw invalidArgType('options.replay', 'of type function', replay);
  }
  if (typeof replayReusesBuffers !== 'boolean') {
    throw invalidArgType('options.replayReusesBuffers', 'of type boolean', replayReusesBuffers);
  }
  return {
    maxRecordSize: maxRecordSize as number | undefined,
    application: application as string | undefined,
    recovery,
    stagingLimit,
    indexInterval,
    readOnly,
    commitDelayMs,
    blockingSync,
    durableWrites,
    layout,
    segmentSize: segmentSize as number | undefined,
    maxOpenSegments: maxOpenSegments as number | undefined,
    adopt,
    fs: fs as Fs | undefined,
    mode: mode as number | undefined,
    preallocate: preallocate as number | undefined,
    replay: replay as ResolvedOptions['replay'],
    replayReusesBuffers,
  };
}

/** What an append waits for: `written` (a process crash keeps it) or `durable` (a power loss keeps it). */
export type WaitLevel = 'written' | 'durable';

const APPEND_OPTIONS: ReadonlySet<string> = new Set(['wait', 'signal']);

/** The wait level of `Wal.append` options; a misspelt key is named, as `open` names one. */
export function waitLevel(options: unknown): WaitLevel {
  if (typeof options !== 'object' || options === null) {
    throw invalidArgType('options', 'of type object', options);
  }
  // The common shape ({ wait }, { wait, signal }) costs a comparison or two per key (an inherited key, too, takes the slow check).
  for (const key in options) {
    if (key !== 'wait' && key !== 'signal') {
      rejectUnknownKeys('options', options, APPEND_OPTIONS);
      break;
    }
  }
  const { wait } = options as { wait?: unknown };
  validateWait('options.wait', wait);
  return wait;
}

/** Throws `ERR_INVALID_ARG_VALUE`, naming `name`, unless `value` is a {@link WaitLevel}. */
export function validateWait(name: string, value: unknown): asserts value is WaitLevel {
  if (value !== 'written' && value !== 'durable') {
    throw invalidArgValue(name, value, "must be 'written' or 'durable'");
  }
}

/**
 * The `signal` of options already checked by {@link waitLevel}: `undefined`
 * or an `AbortSignal` (`ERR_INVALID_ARG_TYPE` otherwise).
 */
export function appendSignal(options: object): AbortSignal | undefined {
  const { signal } = options as { signal?: unknown };
  validateSignal('options.signal', signal);
  return signal;
}

/** Longest {@link WalOptions.application}, in UTF-16 code units. */
export const MAX_APPLICATION_LENGTH = 256;

/**
 * Throws `ERR_INVALID_ARG_TYPE` unless `value` is a string of 1 to
 * {@link MAX_APPLICATION_LENGTH} characters without control characters.
 */
export function validateApplication(name: string, value: unknown): asserts value is string {
  if (
    typeof value !== 'string' ||
    value.length === 0 ||
    value.length > MAX_APPLICATION_LENGTH ||
    // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it refuses
    /[\u0000-\u001f\u007f]/.test(value)
  ) {
    throw invalidArgType(
      name,
      `a string of 1 to ${MAX_APPLICATION_LENGTH} characters without control characters`,
      value,
    );
  }
}
