import { dirname, join } from 'node:path';
import {
  CorruptionError,
  errorCode,
  invalidArgValue,
  isArgumentError,
  LockedError,
  outOfRange,
  TruncatedError,
  toWalError,
  validateInteger,
} from '@wal/errors';
import type { Fs, FsFile, FsLock, OpenMode } from './fs/fs.js';
import {
  failOpen,
  latchedFs,
  missingForReadOnly,
  openIfExists,
  readFull,
  readWhole,
  replaceFile,
  SyncState,
  settleAll,
  syncDir,
  validateOpenArguments,
  writeAll,
  writeAllDurable,
  writeAllSync,
} from './fs/io.js';
import { DEFAULT_FILE_MODE, directoryMode, validateMode } from './fs/mode.js';
import { NodeFs } from './fs/node-fs.js';
import { decodeHead, encodeHead, HEAD_FILE_SIZE } from './head-file.js';
import { identifyLog, refusal, segmentIndex } from './log-identity.js';
import { decodeMeta, encodeMeta, MAX_META_FILE_SIZE, splitMeta } from './meta-file.js';
import type { StoreMeta, StoreSupports } from './store.js';
import { StoreBase } from './store-base.js';

/** Metadata key holding the segment size. */
const SEGMENT_SIZE_KEY = 'store.segmentSize';

/**
 * Smallest segment size of a new {@link SegmentedStore}: 4 KiB (one page). A
 * log that already exists (with a stored size, or a wal-db 1.x directory,
 * which records none) opens with any size of at least 1 byte, as wal-db
 * accepts any size above 0.
 */
export const MIN_SEGMENT_SIZE = 4 * 1024;
/** Largest segment size {@link SegmentedStore} accepts: 1 GiB. */
export const MAX_SEGMENT_SIZE = 1024 * 1024 * 1024;
/** Segment size of a new {@link SegmentedStore} when none is given: 64 MiB. */
export const DEFAULT_SEGMENT_SIZE = 64 * 1024 * 1024;
/** Segment files a {@link SegmentedStore} keeps open at most when no cap is given: 64. */
export const DEFAULT_MAX_OPEN_SEGMENTS = 64;
/** Largest cap {@link SegmentedStoreOptions.maxOpenSegments} accepts: 2^31 − 1 (in effect no cap). */
export const MAX_OPEN_SEGMENTS_LIMIT = 2 ** 31 - 1;

/** Options of {@link SegmentedStore.open}. */
export interface SegmentedStoreOptions {
  /** The file system to go through (default: a {@link NodeFs}). Tests pass `CrashFs` or `FaultFs`. */
  readonly fs?: Fs;
  /**
   * Bytes per segment: an integer in [1, {@link MAX_SEGMENT_SIZE}], at least
   * {@link MIN_SEGMENT_SIZE} for a new log. Used when creating a log (default
   * {@link DEFAULT_SEGMENT_SIZE}); required to open a directory of segments
   * without metadata (a wal-db 1.x log, whose size, any value above 0, is
   * then recorded in the metadata), and then checked against the segment
   * files (docs/FORMAT.md §5.3): no segment may hold more than this many
   * bytes, one below the highest (if any) must hold exactly that many, and
   * a single segment file must hold the head the head file names;
   * otherwise optional, and when given it must equal the stored size.
   */
  readonly segmentSize?: number;
  /**
   * Open read-only (default false): take no lock and change nothing on disk
   * (no directory, head, metadata or segment created, nothing deleted,
   * written or fsynced; the directory must exist). Mutating calls reject with
   * `WAL_READ_ONLY`; {@link SegmentedStore.refresh} re-reads the head, the
   * metadata and the length. Works while a writable handle holds the lock.
   */
  readonly readOnly?: boolean;
  /**
   * Most segment files open at once: an integer in [1,
   * {@link MAX_OPEN_SEGMENTS_LIMIT}], default {@link DEFAULT_MAX_OPEN_SEGMENTS}.
   * When a segment must be opened and the cap is reached, the least recently
   * used open segment that no read, write or flush is using is closed first
   * (fdatasynced before it is closed if it holds unsynced writes); when every
   * open segment is in use, the call waits for one to be free. Besides the
   * segments the store opens, briefly, the directory to fsync it and the head,
   * metadata or lock file being read or written. (An open segment written
   * with `writeDurable` through `NodeFs` holds two descriptors: see
   * {@link NodeFs.pwriteDurable}.)
   */
  readonly maxOpenSegments?: number;
  /**
   * Called with the metadata map (the caller's keys) once the open has read
   * it, before the open changes anything on disk (head, metadata or segment
   * files); a `WalError` it throws rejects the open as it is (anything
   * else as `WAL_IO` with it as the cause), and the open then releases the
   * lock and closes every file. A log uses it to refuse a format version it
   * cannot read (`WAL_UNSUPPORTED_FORMAT`) without touching the log. Not
   * called by a read-only open (which changes nothing anyway).
   */
  readonly checkMeta?: (meta: StoreMeta) => void;
  /**
   * Permission bits of every file this store creates (segments, the head
   * and metadata files, the lock file and their temporary files), less the
   * process's umask: an integer in `[0o600, 0o777]` with the owner read and
   * write bits set (`ERR_OUT_OF_RANGE` otherwise). Default `0o644`
   * ({@link DEFAULT_FILE_MODE}), as LevelDB and SQLite. The log directory,
   * when the open creates it, gets {@link directoryMode}`(mode)`: `0o755` by
   * default, `0o700` for `0o600`. Existing files and directories keep their
   * permissions. `0o600` keeps a log holding private data readable by its
   * owner only.
   */
  readonly mode?: number;
}

/** The keys of {@link SegmentedStoreOptions}: any other is refused. */
const OPTION_KEYS: ReadonlySet<string> = new Set(
  Object.keys({
    fs: true,
    segmentSize: true,
    readOnly: true,
    maxOpenSegments: true,
    checkMeta: true,
    mode: true,
  } satisfies Record<keyof SegmentedStoreOptions, true>),
);

/** File name of segment `index`: 20-digit zero-padded index + `.wal`. */
export function segmentName(index: number): string {
  return `${String(index).padStart(20, '0')}.wal`;
}

/**
 * One segment file that exists on disk. Its file is open (`file`), being
 * opened or created (`opening`), being closed (`closing`), or closed; each of
 * the first three holds one of the store's open-file slots.
 */
interface Segment {
  file: FsFile | undefined;
  opening: Promise<FsFile> | undefined;
  closing: Promise<void> | undefined;
  readonly sync: SyncState;
  /** Reads, writes, flushes and size checks using the segment right now: never closed while > 0. */
  pins: number;
  /** Replaced by a `refresh()`: closed once nothing uses it. */
  retired: boolean;
}

function newSegment(dirty: boolean): Segment {
  return {
    file: undefined,
    opening: undefined,
    closing: undefined,
    sync: new SyncState(dirty),
    pins: 0,
    retired: false,
  };
}

/** What a log directory holds, read and checked before anything is changed. */
interface Inspection {
  /** Segment indexes present, ascending. */
  readonly indexes: number[];
  /** The caller's metadata. */
  readonly user: StoreMeta;
  /** The segment size in the metadata, if any. */
  readonly stored: number | undefined;
  readonly segmentSize: number;
  /** The head file's bytes, if present. */
  readonly headBytes: Uint8Array | undefined;
  /** The head the head file holds, if it is sound. */
  readonly recorded: number | undefined;
  readonly head: number;
}

/** Picks the segment size from the stored one (if any); `fresh`: no segments and no metadata. */
type SegmentSizeRule = (stored: number | undefined, fresh: boolean) => number;

/**
 * A `Store` over a directory of segment files: segment `k` holds the bytes
 * `[k·S, (k+1)·S)` in the file named {@link segmentName}(k); a write or read
 * spanning segments is split across them. Beside the segments: `meta` (the
 * metadata map, including the store's `store.segmentSize`), `head` (12 bytes:
 * u64 LE head + CRC-32C) and `lock`.
 *
 * Guarantees:
 * - Lazy creation: a segment is created on its first write; a segment never
 *   written (a gap, or missing below the length) reads as zeros. Every create,
 *   rename and unlink is followed by an fsync of the directory; creating the
 *   directory fsyncs its parent.
 * - `sync()` fdatasyncs only segments written since their last flush (a
 *   segment written while its flush is in flight stays dirty); the first
 *   `sync()` after open flushes every segment and the directory, since a
 *   killed process may have left unflushed bytes.
 * - `truncateBefore(offset)` writes the head file atomically (temp file,
 *   fdatasync, rename, directory fsync) and only then deletes the segments
 *   wholly below `offset` (then fsyncs the directory). The head is exactly
 *   `offset`; space is reclaimed in whole segments.
 * - `truncate(length)` deletes the highest segments first, fsyncs the
 *   directory, then cuts the segment holding the new end and fdatasyncs it.
 * - On open the length is the end of the highest segment's data (or the head,
 *   if larger). Segments wholly below the head (left by an interrupted
 *   `truncateBefore`) are deleted.
 * - A segment file reaching the length always exists once the length is
 *   above 0: a step that would delete the last one first creates the segment
 *   holding the length (empty on a segment boundary) and fsyncs the
 *   directory, so a reader deriving the end from the highest segment file
 *   (wal-db 1.x) never hands out an LSN twice (FORMAT.md §3.2).
 * - At most {@link maxOpenSegments} segment files are open at once: the least
 *   recently used one no call is using is closed to open another (and a call
 *   waits when all are in use). A segment with unflushed writes is
 *   fdatasynced through its own descriptor before it is closed (a failure
 *   latches `WAL_FAILED`), so `sync()` never relies on a descriptor that was
 *   closed in between.
 *
 * Read-only (`readOnly: true`): no lock, and nothing on disk changes — no
 * directory, head, metadata or segment file is created, nothing is deleted
 * (segments left below the head are ignored), written, truncated or
 * fsynced; segments are opened with mode `read`, lazily. `write`, `sync`,
 * `truncate`, `truncateBefore` and `updateMeta` reject with `WAL_READ_ONLY`.
 * `refresh()` re-reads the head, the metadata and the length, so a reader
 * follows a writer in another handle or process; a read of a segment the
 * writer deleted since then rejects with `WAL_TRUNCATED`.
 *
 * What it opens (docs/FORMAT.md §3.1): a missing path or an empty
 * directory (a new log), a directory with log metadata, or one whose entries
 * are all on the allow-list (a wal-db 1.x log). Anything else — a directory
 * holding a user's files, a file — is refused with `WAL_NOT_A_LOG` before
 * anything is created or taken: no directory, lock, head or metadata file.
 *
 * Files another directory shares (hard links: a copy made with `cp -al`): a
 * writable open refuses, with `WAL_LOCKED` (`reason` set, no holder) before
 * the lock is taken or anything is created, a log whose segment not wholly
 * below the head has more than one name: this store writes those in place,
 * so it would write into the other directory's log, which no lock of this
 * one guards. The head, the metadata and the lock files are only ever
 * replaced (rename, link) or removed, as are segments below the head, so
 * their other names keep what they hold; a segment created later has one
 * name. A `head.tmp` or `meta.tmp` found there (left by a killed process,
 * or a name another program made) is never written: a replacement removes
 * that name and creates its own file, exclusively, so it writes into no
 * file another name shares, whenever that name appeared. Read-only opens
 * are not refused.
 *
 * Errors: `open` rejects with `WAL_NOT_A_LOG` (see above), `WAL_LOCKED` (held elsewhere, or
 * files shared with another directory, see above; never for a
 * read-only open), `WAL_IO` with `errno` `ENOENT` (read-only open of a missing
 * directory), `WAL_CORRUPTION`
 * (damaged metadata; a head or metadata file larger than it can be; a head
 * file missing or damaged while segment 0 is gone — then nothing is changed;
 * a segment larger than the segment size; segments of a directory without
 * metadata that fit no single size), `ERR_INVALID_ARG_VALUE` (a
 * `segmentSize` differing from the stored one, missing for a directory
 * without metadata, or one its segment files do not fit (a segment larger,
 * none below the highest exactly that size, or the head outside a single
 * segment file) — then nothing is changed; an option key that is not one of
 * {@link SegmentedStoreOptions}, before anything is done), `ERR_OUT_OF_RANGE` (a
 * `segmentSize` below {@link MIN_SEGMENT_SIZE} for a new log), `WAL_IO` / `WAL_NO_SPACE`; it
 * releases everything before rejecting. Afterwards as the `Store` contract
 * says: any failed fsync (data, directory, metadata, head) latches
 * `WAL_FAILED`, and so does any failure once a truncation has begun changing
 * files.
 */
export class SegmentedStore extends StoreBase {
  /** Durable, persistent, locked; reclaims prefix space in whole segments. */
  readonly supports: StoreSupports = Object.freeze({
    durable: true,
    persistent: true,
    prefixReclaim: true,
    locking: true,
  });

  /** The log directory. */
  readonly dir: string;
  /** Bytes per segment. */
  readonly segmentSize: number;
  /** Most segment files open at once ({@link SegmentedStoreOptions.maxOpenSegments}). */
  readonly maxOpenSegments: number;
  /** Permission bits of the files this store creates (before the umask): the `mode` option. */
  readonly mode: number;
  readonly #fs: Fs;
  /** The file system as given, not latched: for `updateMetaAfterFailure` only. */
  readonly #rawFs: Fs;
  readonly #lock: FsLock | undefined;
  #segments = new Map<number, Segment>();
  #dirDirty: boolean;
  /** Segments holding an open-file slot: open, being opened, or being closed. */
  #slots = 0;
  /** Open segments (not being closed), least recently used first. */
  readonly #recent = new Set<Segment>();
  /** Calls waiting for a slot; woken whenever one may have become free. */
  #waiters: Array<() => void> = [];

  private constructor(
    dir: string,
    fs: Fs,
    lock: FsLock | undefined,
    state: {
      segmentSize: number;
      head: number;
      length: number;
      user: StoreMeta;
      segments: number[];
      maxOpenSegments: number;
      mode: number;
    },
  ) {
    super('segmented store', lock === undefined);
    this.dir = dir;
    this.#fs = latchedFs(fs, () => this.failure);
    this.#rawFs = fs;
    this.#lock = lock;
    this.segmentSize = state.segmentSize;
    this.maxOpenSegments = state.maxOpenSegments;
    this.mode = state.mode;
    this.headOffset = state.head;
    this.lengthOffset = state.length;
    // A writable open finds segments a killed process may have left unsynced.
    for (const index of state.segments) this.#addSegment(index, lock !== undefined);
    this.#dirDirty = true;
    this.initMeta(state.user);
  }

  /**
   * Opens (creating if missing) the segmented store in directory `dir`.
   * First checks that `dir` is a log or nothing (docs/FORMAT.md §3.1),
   * reading only, and that no file it would write in place has another name
   * (`WAL_LOCKED` otherwise; checked again under the lock for files that
   * appeared meanwhile). Creates the directory if needed (and fsyncs its parent), takes the lock
   * `<dir>/lock`, reads `meta` and `head`, and finds the length from the
   * highest segment. A new log gets a head file (0) and a metadata file
   * holding its segment size; a directory of segments without metadata gets
   * the metadata file once its head has been checked (the segment size
   * checks, reading only, run before the lock is taken too, so that a
   * refused open touches nothing). Then, when no segment file reaches the
   * head, the segment holding it is created or extended with zeros up to
   * it (FORMAT.md §3.2), and segments wholly below the head are deleted.
   *
   * With `readOnly: true` the directory must exist; it is only read (no
   * lock, no file created or deleted, no fsync), with the same checks.
   *
   * Rejects as the class documentation says; on rejection nothing stays open
   * or locked, and a `WAL_CORRUPTION` rejection changed nothing on disk.
   */
  static async open(dir: string, options: SegmentedStoreOptions = {}): Promise<SegmentedStore> {
    validateOpenArguments('dir', dir, options, OPTION_KEYS);
    const asked = options.segmentSize;
    if (asked !== undefined) {
      validateInteger('options.segmentSize', asked, 1, MAX_SEGMENT_SIZE);
    }
    const { maxOpenSegments = DEFAULT_MAX_OPEN_SEGMENTS } = options;
    validateInteger('options.maxOpenSegments', maxOpenSegments, 1, MAX_OPEN_SEGMENTS_LIMIT);
    const { mode = DEFAULT_FILE_MODE } = options;
    validateMode('options.mode', mode);
    const fs = options.fs ?? new NodeFs();
    const tooSmall = () =>
      outOfRange(
        'options.segmentSize',
        `>= ${MIN_SEGMENT_SIZE} for a new log (smaller sizes open only logs that exist)`,
        asked,
      );
    const rule: SegmentSizeRule = (stored, fresh) => {
      if (fresh && asked !== undefined && asked < MIN_SEGMENT_SIZE) throw tooSmall();
      if (stored !== undefined && asked !== undefined && stored !== asked) {
        throw invalidArgValue(
          'options.segmentSize',
          asked,
          `differs from the segment size ${stored} of the log in ${dir}`,
        );
      }
      if (stored === undefined && !fresh && asked === undefined) {
        throw invalidArgValue(
          'options.segmentSize',
          asked,
          `is required to open ${dir}: it holds segments but no metadata`,
        );
      }
      return stored ?? asked ?? DEFAULT_SEGMENT_SIZE;
    };
    // What counts as a log (FORMAT.md §3.1), before anything is created or taken.
    const identity = await identifyLog(dir, { fs }).catch((error: unknown) => {
      throw toWalError(error, `examining ${dir}`);
    });
    const refused = refusal(dir, identity, 'directory');
    if (refused !== undefined) throw refused;
    if (identity.verdict === 'new' && asked !== undefined && asked < MIN_SEGMENT_SIZE) {
      throw tooSmall();
    }
    if (options.readOnly === true) {
      return SegmentedStore.#openReadOnly(dir, fs, rule, maxOpenSegments, mode);
    }
    // Files this open has found with one name (see refuseShared).
    const checked = new Set<string>();
    if (identity.verdict === 'log') {
      // The segment-size checks, reading only, before the lock is taken or
      // anything fsynced: a refused open touches nothing. They run again
      // under the lock, since another writer may change the files meanwhile;
      // any other failure is left to that second run.
      const early = await SegmentedStore.#inspectChecked(fs, dir, rule, false).catch(
        (error: unknown) => {
          if (isArgumentError(error)) throw error;
        },
      );
      // Files shared with another directory, before the lock file is created.
      if (early !== undefined) {
        await refuseShared(fs, dir, early, checked, maxOpenSegments).catch((error: unknown) => {
          throw toWalError(error, `examining the files of ${dir}`);
        });
      }
    }
    let lock: FsLock | undefined;
    let store: SegmentedStore | undefined;
    try {
      const created = await fs.mkdir(dir, directoryMode(mode));
      if (created) await syncDir(fs, dirname(dir), failOpen);
      lock = await fs.lock(join(dir, 'lock'), mode);
      if (!created) {
        // A process that crashed during an earlier open may have left the
        // directory, or entries in it (the head file), in the page cache
        // only: make both durable before relying on what they hold.
        await syncDir(fs, dirname(dir), failOpen);
        await syncDir(fs, dir, failOpen);
      }
      const inspection = await SegmentedStore.#inspectChecked(fs, dir, rule, false);
      const { indexes, user, stored, segmentSize, headBytes, recorded, head } = inspection;
      // What appeared since the check above (or all, had it not run).
      await refuseShared(fs, dir, inspection, checked, maxOpenSegments);
      options.checkMeta?.(user);

      // The length, from the highest segment, before changing anything.
      const live = indexes.filter((index) => (index + 1) * segmentSize > head);
      store = new SegmentedStore(dir, fs, lock, {
        segmentSize,
        head,
        length: head,
        user,
        segments: live,
        maxOpenSegments,
        mode,
      });
      const last = live.at(-1);
      let reached = 0; // where the highest segment file ends
      if (last !== undefined) {
        const size = await store.#segmentSize(last);
        if (size > segmentSize) throw tooLarge(dir, last, size, segmentSize);
        reached = last * segmentSize + size;
        store.lengthOffset = Math.max(head, reached);
      }

      // Changes, now that the log is known to be sound.
      if (headBytes === undefined && recorded === undefined) {
        await replaceFile(fs, join(dir, 'head'), encodeHead(0), failOpen, mode);
      }
      if (stored === undefined) {
        await replaceFile(
          fs,
          join(dir, 'meta'),
          encodeMeta({ ...user, [SEGMENT_SIZE_KEY]: segmentSize }),
          failOpen,
          mode,
        );
      }
      // A segment file reaching the head, so that a wal-db reader finds the
      // end there (FORMAT.md §3.2), when none does: a head file left alone,
      // only segments below the head, or the one holding the head short of
      // it (a power loss lost bytes below the head, or cut short this very
      // step). After the metadata: a directory without metadata never holds
      // a segment shorter than the head's place in it from us (§5.3).
      if (last === undefined) await store.#anchorEnd(head);
      else if (reached < head) {
        await store.#extend(last, store.#segments.get(last)!, head - last * segmentSize);
      }
      const below = indexes.filter((index) => (index + 1) * segmentSize <= head);
      if (below.length > 0) {
        // The segments below the head go only now that a file marks the end
        // for wal-db (the anchor above): deleting the last of them would
        // otherwise let it derive an end of 0.
        for (const index of below) await fs.unlink(join(dir, segmentName(index)));
        await syncDir(fs, dir, failOpen);
      }
      return store;
    } catch (error) {
      if (store !== undefined) await store.#closeFiles().catch(() => undefined);
      await lock?.release();
      throw isArgumentError(error) ? error : toWalError(error, `opening segmented store ${dir}`);
    }
  }

  /** The read-only open: reads the directory, changes nothing. */
  static async #openReadOnly(
    dir: string,
    fs: Fs,
    rule: SegmentSizeRule,
    maxOpenSegments: number,
    mode: number,
  ): Promise<SegmentedStore> {
    let store: SegmentedStore | undefined;
    try {
      const { indexes, user, segmentSize, head } = await SegmentedStore.#inspectChecked(
        fs,
        dir,
        rule,
        true,
      ).catch((error: unknown) => {
        throw missingForReadOnly(error, 'segmented store', dir);
      });
      const live = indexes.filter((index) => (index + 1) * segmentSize > head);
      store = new SegmentedStore(dir, fs, undefined, {
        segmentSize,
        head,
        length: head,
        user,
        segments: live,
        maxOpenSegments,
        mode,
      });
      store.lengthOffset = await store.#measure(store.#segments, head);
      return store;
    } catch (error) {
      if (store !== undefined) await store.#closeFiles().catch(() => undefined);
      throw isArgumentError(error)
        ? error
        : toWalError(error, `opening segmented store ${dir} read-only`);
    }
  }

  /**
   * {@link #inspect}, then, for a directory without metadata, the segment
   * size against the segment files ({@link checkSegmentSizes}). Reads only.
   */
  static async #inspectChecked(
    fs: Fs,
    dir: string,
    rule: SegmentSizeRule,
    readOnly: boolean,
  ): Promise<Inspection> {
    const inspection = await SegmentedStore.#inspect(fs, dir, rule);
    const { stored, indexes, segmentSize, head } = inspection;
    if (stored === undefined) {
      await checkSegmentSizes(fs, dir, indexes, segmentSize, head, readOnly);
    }
    return inspection;
  }

  /**
   * Reads the directory listing, the metadata and the head, and checks them:
   * a damaged metadata file, an invalid stored segment size, or a head file
   * missing or damaged while segment 0 is gone is `WAL_CORRUPTION`. Reads
   * only.
   */
  static async #inspect(fs: Fs, dir: string, rule: SegmentSizeRule): Promise<Inspection> {
    const names = await fs.readdir(dir);
    const indexes = names
      .map(segmentIndex)
      .filter((index): index is number => index !== undefined)
      .sort((a, b) => a - b);
    const metaPath = join(dir, 'meta');
    const encoded = names.includes('meta')
      ? await readWhole(fs, metaPath, MAX_META_FILE_SIZE)
      : undefined;
    const { own, user } = splitMeta(encoded === undefined ? {} : decodeMeta(encoded, metaPath));
    const stored = own[SEGMENT_SIZE_KEY];
    if (stored !== undefined && !isSegmentSize(stored)) {
      throw new CorruptionError(`metadata file ${metaPath} holds an invalid segment size`);
    }
    // A head file is only ever replaced whole, by wal-db too (which rewrites
    // it in place): one larger than 12 bytes was written by neither.
    const headBytes = names.includes('head')
      ? await readWhole(fs, join(dir, 'head'), HEAD_FILE_SIZE)
      : undefined;
    const recorded = headBytes === undefined ? undefined : decodeHead(headBytes);
    // Fresh: nothing was ever written, so any segment size fits. A head file
    // naming a non-zero head without segments or metadata is a wal-db log
    // whose records were all consumed: its segment size must be given.
    const fresh =
      indexes.length === 0 && stored === undefined && (headBytes === undefined || recorded === 0);
    const segmentSize = rule(stored as number | undefined, fresh);

    // The head: a missing or damaged head file with segment 0 gone is
    // corruption (wal-db would start at 0 and truncate the whole log).
    const segmentZero = indexes[0] === 0;
    if (recorded === undefined && !segmentZero && !(fresh && headBytes === undefined)) {
      throw new CorruptionError(
        `the head file of ${dir} is ${headBytes === undefined ? 'missing' : 'damaged'} and segment 0 is gone: the log's start is unknown`,
      );
    }
    return {
      indexes,
      user,
      stored: stored as number | undefined,
      segmentSize,
      headBytes,
      recorded,
      head: recorded ?? 0,
    };
  }

  /**
   * Read-only handles: the length from the highest segment of `segments`
   * (or `head`, if larger). A segment deleted since it was listed (a writer
   * truncating) is dropped from `segments` and the next lower one measured.
   */
  async #measure(segments: Map<number, Segment>, head: number): Promise<number> {
    const size = this.segmentSize;
    for (const index of [...segments.keys()].sort((a, b) => b - a)) {
      let bytes: number;
      try {
        bytes = await this.#use(index, segments.get(index)!, (file) => this.#fs.size(file));
      } catch (error) {
        if (errorCode(error) !== 'ENOENT') throw error;
        segments.delete(index);
        continue;
      }
      if (bytes > size) throw tooLarge(this.dir, index, bytes, size);
      return Math.max(head, index * size + bytes);
    }
    return head;
  }

  /**
   * `refresh()` of a read-only handle: re-reads the listing, the metadata and
   * the head with the checks of open, measures the length, then swaps in the
   * new segment set. Files of the old set are closed once no read uses them
   * (a segment the writer deleted and re-created must not be read through
   * its old file). Nothing changes when it fails.
   */
  protected override async doRefresh(): Promise<void> {
    const { indexes, user, head } = await SegmentedStore.#inspect(this.#fs, this.dir, (stored) => {
      if (stored !== undefined && stored !== this.segmentSize) {
        throw new CorruptionError(
          `the metadata of ${this.dir} now holds segment size ${stored}, not ${this.segmentSize} as when opened`,
        );
      }
      return this.segmentSize;
    });
    const next = new Map<number, Segment>();
    for (const index of indexes) {
      if ((index + 1) * this.segmentSize > head) next.set(index, newSegment(false));
    }
    let length: number;
    try {
      length = await this.#measure(next, head);
    } catch (error) {
      for (const segment of next.values()) await this.#release(segment);
      throw error;
    }
    const old = this.#segments;
    this.#segments = next;
    this.headOffset = head;
    this.lengthOffset = length;
    this.initMeta(user);
    for (const segment of old.values()) {
      segment.retired = true;
      if (segment.pins === 0) await this.#release(segment);
    }
  }

  // ---- segments -------------------------------------------------------------

  #path(index: number): string {
    return join(this.dir, segmentName(index));
  }

  #addSegment(index: number, dirty: boolean): Segment {
    const segment = newSegment(dirty);
    this.#segments.set(index, segment);
    return segment;
  }

  /**
   * Runs `work` with the open file of an existing segment, opening it first
   * if needed (mode `read` on a read-only handle, `write` otherwise). The
   * segment is pinned from the call until `work` settles: never closed to
   * make room meanwhile. `work` must not use another segment (a pinned
   * segment waiting for a slot could otherwise wait forever).
   */
  async #use<T>(index: number, segment: Segment, work: (file: FsFile) => Promise<T>): Promise<T> {
    segment.pins++;
    try {
      return await work(await this.#fileOf(index, segment));
    } finally {
      if (--segment.pins === 0) {
        if (segment.retired) await this.#release(segment);
        this.#wake(); // it may be closed to make room now
      }
    }
  }

  /** The open file of a pinned segment, waiting for an open or close in progress, opening it if needed. */
  async #fileOf(index: number, segment: Segment): Promise<FsFile> {
    for (;;) {
      if (segment.opening !== undefined) return segment.opening;
      if (segment.closing !== undefined) {
        await segment.closing.catch(() => undefined);
      } else if (segment.file !== undefined) {
        this.#recent.delete(segment);
        this.#recent.add(segment); // now the most recently used
        return segment.file;
      } else {
        const mode = this.readOnly ? 'read' : 'write';
        this.#startOpening(segment, () => this.#openFile(index, segment, mode));
      }
    }
  }

  /**
   * Runs `open` as the segment's `opening` (every caller wanting the file
   * waits for it); once it resolves the file may be closed to make room.
   */
  #startOpening(segment: Segment, open: () => Promise<FsFile>): void {
    const opening = open().then(
      (file) => {
        segment.opening = undefined;
        this.#recent.add(segment);
        return file;
      },
      (error: unknown) => {
        segment.opening = undefined;
        throw error;
      },
    );
    opening.catch(() => undefined); // the callers waiting for it see the failure
    segment.opening = opening;
  }

  /** Takes a slot and opens the segment's file in `mode` (giving the slot back if that fails). */
  async #openFile(index: number, segment: Segment, mode: OpenMode): Promise<FsFile> {
    await this.#takeSlot();
    try {
      segment.file = await this.#fs.open(this.#path(index), mode, this.mode);
    } catch (error) {
      this.#freeSlot();
      throw error;
    }
    return segment.file;
  }

  /**
   * Reserves one of the {@link maxOpenSegments} slots: closes the least
   * recently used open segment nothing is using when all are taken, and
   * waits when every open segment is in use.
   */
  async #takeSlot(): Promise<void> {
    while (this.#slots >= this.maxOpenSegments) {
      const victim = this.#victim();
      if (victim === undefined) await new Promise<void>((resolve) => this.#waiters.push(resolve));
      else await this.#evict(victim);
    }
    this.#slots++;
  }

  #victim(): Segment | undefined {
    for (const segment of this.#recent) if (segment.pins === 0) return segment;
    return undefined;
  }

  #freeSlot(): void {
    this.#slots--;
    this.#wake();
  }

  /** Wakes every call waiting for a slot: each looks again. */
  #wake(): void {
    if (this.#waiters.length === 0) return;
    const waiting = this.#waiters;
    this.#waiters = [];
    for (const resolve of waiting) resolve();
  }

  /**
   * Closes an open segment nothing is using, to make room. Written bytes not
   * yet flushed are fdatasynced on this very file first: the kernel reports
   * a write-back error to the descriptors open when it happened and marks
   * the failed pages clean, so a later `sync()` through a new descriptor
   * could succeed without the bytes. A failed fdatasync latches the store (the file is
   * closed all the same).
   */
  #evict(segment: Segment): Promise<void> {
    const file = segment.file!;
    this.#recent.delete(segment); // synchronously: no second caller picks it
    segment.closing = (async () => {
      const failures: unknown[] = [];
      await this.#flushFile(segment, file).catch((error: unknown) => failures.push(error));
      segment.file = undefined;
      await this.#fs.close(file).catch((error: unknown) => failures.push(error));
      segment.closing = undefined;
      this.#freeSlot();
      if (failures.length > 0) throw failures[0]; // the latched failure first
    })();
    return segment.closing;
  }

  /**
   * Closes a segment's file without flushing it, if it is open, once an open
   * or close in progress settles: for a segment being deleted, a read-only
   * handle's retired segment, and `close()`. Rejects when `close` fails.
   */
  async #closeFile(segment: Segment): Promise<void> {
    if (segment.opening !== undefined) await segment.opening.catch(() => undefined);
    if (segment.closing !== undefined) await segment.closing.catch(() => undefined);
    const file = segment.file;
    if (file === undefined) return;
    segment.file = undefined;
    this.#recent.delete(segment);
    try {
      await this.#fs.close(file);
    } finally {
      this.#freeSlot();
    }
  }

  /** Closes a segment's file, if open, ignoring a failure to close (read-only handles). */
  async #release(segment: Segment): Promise<void> {
    await this.#closeFile(segment).catch(() => undefined);
  }

  async #segmentSize(index: number): Promise<number> {
    return this.#use(index, this.#segments.get(index)!, (file) => this.#fs.size(file));
  }

  /**
   * The segment `index` for writing. A missing one is created: its file is
   * handed out (to this write and to concurrent ones, through `opening`)
   * only once its directory entry is durable, since a write landing in it
   * earlier could be synced and acknowledged while a power loss can still
   * lose the whole file.
   */
  #writable(index: number): Segment {
    const found = this.#segments.get(index);
    if (found !== undefined) return found;
    const segment = this.#addSegment(index, false);
    this.#startOpening(segment, async () => {
      let file: FsFile;
      try {
        file = await this.#openFile(index, segment, 'create');
      } catch (error) {
        this.#segments.delete(index); // not created
        throw error;
      }
      await syncDir(this.#fs, this.dir, this.#fsyncFailed); // on failure close() closes the file
      return file;
    });
    return segment;
  }

  /**
   * Creates the segment holding the length, with exactly `length mod S`
   * bytes (none, on a segment boundary), and fsyncs the directory, so that a
   * reader that takes the log's end from its highest segment file (wal-db
   * 1.x) finds this length and never hands out an LSN below it again
   * (FORMAT.md §3.2). Called only when no segment reaches the length.
   */
  async #anchorEnd(length: number): Promise<void> {
    if (length === 0) return;
    const index = Math.floor(length / this.segmentSize);
    // Created, directory fsynced; then extended to the length.
    await this.#extend(index, this.#writable(index), length - index * this.segmentSize);
  }

  /**
   * Extends segment `index` (shorter than `size` bytes, all below the head)
   * with zeros to `size` bytes and fdatasyncs it: the segment holding the
   * end then reaches it (FORMAT.md §3.2).
   */
  async #extend(index: number, segment: Segment, size: number): Promise<void> {
    await this.#use(index, segment, async (file) => {
      if (size === 0) return;
      await this.#fs.ftruncate(file, size);
      segment.sync.written();
      await this.#flushFile(segment, file);
    });
  }

  /** Calls `each(index, within, from, count)` for every segment piece of `[offset, offset + length)`. */
  async #pieces(
    offset: number,
    length: number,
    each: (index: number, within: number, done: number, count: number) => Promise<void>,
  ): Promise<void> {
    const size = this.segmentSize;
    let done = 0;
    while (done < length) {
      const at = offset + done;
      const index = Math.floor(at / size);
      const within = at - index * size;
      const count = Math.min(size - within, length - done);
      await each(index, within, done, count);
      done += count;
    }
  }

  async #deleteSegment(index: number): Promise<void> {
    const segment = this.#segments.get(index);
    if (segment !== undefined) await this.#closeFile(segment);
    await this.#fs.unlink(this.#path(index));
    this.#segments.delete(index);
  }

  readonly #fsyncFailed = (cause: unknown, what: string): never =>
    this.latch(toWalError(cause, what), what);

  /** A failed fdatasync of a segment: `updateMetaAfterFailure` may still record. */
  readonly #dataFsyncFailed = (cause: unknown, what: string): never =>
    this.latchData(toWalError(cause, what), what);

  /** Fdatasyncs the segment through `file` (open, and pinned or being evicted) if it is dirty. */
  #flushFile(segment: Segment, file: FsFile): Promise<void> {
    return segment.sync.flush(async () => {
      try {
        await this.#fs.fdatasync(file);
      } catch (error) {
        this.#dataFsyncFailed(error, `fdatasync of ${file.path}`);
      }
    });
  }

  /** Fdatasyncs the segment if it is dirty, opening it if it is closed. */
  async #flush(index: number, segment: Segment): Promise<void> {
    if (!segment.sync.dirty) return;
    await this.#use(index, segment, (file) => this.#flushFile(segment, file));
  }

  // ---- the contract ---------------------------------------------------------

  /**
   * A range inside one segment whose file is open (not being opened, closed
   * or retired): its first `pwrite` is issued in this very call, the segment
   * pinned until the write settles, so a caller staging a burst without
   * yielding keeps the disk busy. Otherwise piece by piece, each piece's
   * segment created (directory entry durable first) or opened as needed.
   */
  protected doWrite(offset: number, bytes: Uint8Array): Promise<void> {
    const size = this.segmentSize;
    const index = Math.floor(offset / size);
    const segment = this.#segments.get(index);
    const file =
      segment === undefined || Math.floor((offset + bytes.length - 1) / size) !== index
        ? undefined
        : this.#openNow(segment);
    if (file === undefined) return this.#writePieces(offset, bytes);
    segment!.pins++; // not closed to make room while the write runs
    return writeAll(this.#fs, file, bytes, offset - index * size).then(
      () => {
        segment!.sync.written(); // before the pin drops: an eviction must see it dirty
        this.#unpin(segment!);
      },
      (error: unknown) => {
        this.#unpin(segment!);
        throw error;
      },
    );
  }

  /**
   * The segment holding the end, open: created empty when missing (a new
   * log, an end on a segment boundary), its directory entry durable before
   * it is handed out, as for a write (FORMAT.md §3.2); opened when closed.
   */
  protected override async doReadyEnd(): Promise<void> {
    const index = Math.floor(this.lengthOffset / this.segmentSize);
    await this.#use(index, this.#writable(index), () => Promise.resolve());
  }

  /** `doWrite` of a range that could not take the direct path. */
  async #writePieces(offset: number, bytes: Uint8Array): Promise<void> {
    await this.#pieces(offset, bytes.length, async (index, within, done, count) => {
      const segment = this.#writable(index);
      await this.#use(index, segment, async (file) => {
        await writeAll(this.#fs, file, bytes.subarray(done, done + count), within);
        segment.sync.written(); // before the pin drops: an eviction must see it dirty
      });
    });
  }

  /**
   * A range inside one segment whose file is open and whose creation is
   * durable (not being opened: a new segment's file is handed out only once
   * the directory fsync after its create is done), on an `Fs` with
   * `pwriteDurable`: one `pwriteDurable` on that file, the segment pinned
   * meanwhile. Otherwise piece by piece, in order: each piece's segment is
   * created if missing (its directory entry made durable before any byte is
   * written to it) or opened, then written with `pwriteDurable`, or, on an
   * `Fs` without it, written and fdatasynced. The directory needs no fsync
   * otherwise: open fsyncs it, and every later create is fsynced at once.
   * A failed `pwriteDurable`, fdatasync or directory fsync latches; a failed
   * open or create of a segment, or a failed plain write, does not.
   */
  protected doWriteDurable(offset: number, bytes: Uint8Array): Promise<void> {
    const size = this.segmentSize;
    const index = Math.floor(offset / size);
    const segment = this.#segments.get(index);
    const file =
      segment === undefined ||
      this.#fs.pwriteDurable === undefined ||
      Math.floor((offset + bytes.length - 1) / size) !== index
        ? undefined
        : this.#openNow(segment);
    if (file === undefined) {
      return this.#pieces(offset, bytes.length, (at, within, done, count) =>
        this.#writeDurablePiece(at, within, bytes.subarray(done, done + count)),
      );
    }
    segment!.pins++; // not closed to make room while the write runs
    const start = index * size;
    return writeAllDurable(this.#fs, file, bytes, offset - start, (cause, within) =>
      this.durableWriteFailed(cause, start + within),
    ).then(
      () => this.#unpin(segment!),
      (error: unknown) => {
        this.#unpin(segment!);
        throw error;
      },
    );
  }

  /** One segment's piece of a durable write that could not take the direct path. */
  async #writeDurablePiece(index: number, within: number, piece: Uint8Array): Promise<void> {
    const segment = this.#writable(index);
    await this.#use(index, segment, async (file) => {
      if (this.#fs.pwriteDurable !== undefined) {
        const start = index * this.segmentSize;
        await writeAllDurable(this.#fs, file, piece, within, (cause, at) =>
          this.durableWriteFailed(cause, start + at),
        );
        return;
      }
      await writeAll(this.#fs, file, piece, within);
      segment.sync.written();
      await this.#flushFile(segment, file);
    });
  }

  /** Drops a pin taken without {@link #use} (a writable handle: its segments are never retired). */
  #unpin(segment: Segment): void {
    if (--segment.pins === 0) this.#wake();
  }

  protected override doWriteNow(offset: number, bytes: Uint8Array): boolean {
    const size = this.segmentSize;
    const index = Math.floor(offset / size);
    if (Math.floor((offset + bytes.length - 1) / size) !== index) return false;
    const segment = this.#segments.get(index);
    const file = segment === undefined ? undefined : this.#openNow(segment);
    if (file === undefined || this.#fs.pwriteSync === undefined) return false;
    writeAllSync(this.#fs, file, bytes, offset - index * size);
    segment!.sync.written();
    return true;
  }

  protected override doSyncNow(): boolean {
    if (this.#dirDirty || this.#fs.fdatasyncSync === undefined) return false;
    const dirty: Array<[Segment, FsFile]> = [];
    for (const segment of this.#segments.values()) {
      if (!segment.sync.dirty) continue;
      // Not beside an fdatasync in flight: its failure could go unseen here.
      if (segment.sync.flushing) return false;
      const file = this.#openNow(segment);
      if (file === undefined) return false;
      dirty.push([segment, file]);
    }
    for (const [segment, file] of dirty) {
      segment.sync.flushNow(() => {
        try {
          this.#fs.fdatasyncSync!(file);
        } catch (error) {
          this.#dataFsyncFailed(error, `fdatasync of ${file.path}`);
        }
      });
    }
    return true;
  }

  /**
   * The segment's file when it is open and may be used at once (not being
   * opened, closed or retired), now the most recently used; else undefined.
   */
  #openNow(segment: Segment): FsFile | undefined {
    const file = segment.file;
    if (
      file === undefined ||
      segment.opening !== undefined ||
      segment.closing !== undefined ||
      segment.retired
    ) {
      return undefined;
    }
    this.#recent.delete(segment);
    this.#recent.add(segment);
    return file;
  }

  protected async doReadInto(offset: number, out: Uint8Array): Promise<void> {
    await this.#pieces(offset, out.length, async (index, within, done, count) => {
      const segment = this.#segments.get(index);
      if (segment === undefined) {
        out.fill(0, done, done + count); // never written: zeros
        return;
      }
      const got = await this.#use(index, segment, (file) =>
        readFull(this.#fs, file, out.subarray(done, done + count), within),
      ).catch((error: unknown) => {
        throw this.#gone(error, index, offset + done);
      });
      out.fill(0, done + got, done + count); // past the file's end: zeros
    });
  }

  /**
   * A read-only handle's segment that was listed but is gone when first
   * opened was deleted by a writer's truncation: `WAL_TRUNCATED` at `offset`.
   * Other errors, and every error of a writable handle, are returned as is.
   */
  #gone(error: unknown, index: number, offset: number): unknown {
    if (!this.readOnly || errorCode(error) !== 'ENOENT') return error;
    return new TruncatedError(
      `segment ${segmentName(index)} of ${this.dir} was removed by a truncation: the bytes at ${offset} are gone (refresh() to see the log as it is now)`,
      { offset, cause: error },
    );
  }

  protected async doSync(): Promise<void> {
    const dirty = [...this.#segments].filter(([, segment]) => segment.sync.dirty);
    // At most as many flushes at once as segments may be open: the first sync
    // after open flushes every segment, and a queue of thousands of callers
    // waiting for a slot would be woken over and over.
    const work = [
      eachBounded(dirty, this.maxOpenSegments, ([index, segment]) => this.#flush(index, segment)),
    ];
    if (this.#dirDirty) {
      work.push(
        syncDir(this.#fs, this.dir, this.#fsyncFailed).then(() => {
          this.#dirDirty = false;
        }),
      );
    }
    await settleAll(work);
  }

  protected async doTruncate(length: number): Promise<void> {
    try {
      const size = this.segmentSize;
      // Highest first. The unlinks become durable together at the directory
      // fsync below, so a crash before it may keep any subset of them: every
      // such segment lies above the cut, where the caller asked for nothing to
      // survive, and the log's recovery ends at the first gap it finds.
      // With nothing left between the head and a new end on a segment
      // boundary, the empty segment starting at the end marks it (§3.2).
      const anchor = length > 0 && length === this.headOffset && length % size === 0;
      const doomed = [...this.#segments.keys()]
        .filter((index) => index * size >= length && !(anchor && index === length / size))
        .sort((a, b) => b - a);
      for (const index of doomed) await this.#deleteSegment(index);
      if (doomed.length > 0) await syncDir(this.#fs, this.dir, this.#fsyncFailed);
      if (length === 0) return;
      const index = anchor ? length / size : Math.floor((length - 1) / size);
      const end = length - index * size;
      // The segment holding the new end gets exactly that size, so a reopen finds this length.
      const segment = this.#writable(index);
      await this.#use(index, segment, async (file) => {
        if ((await this.#fs.size(file)) !== end) {
          await this.#fs.ftruncate(file, end);
          segment.sync.written();
        }
        await this.#flushFile(segment, file);
      });
    } catch (error) {
      this.latch(toWalError(error, 'truncate'), `truncating ${this.dir} to ${length}`);
    }
  }

  protected async doTruncateBefore(offset: number): Promise<void> {
    // The head first, durably; only then may the segments below it go.
    await replaceFile(
      this.#fs,
      join(this.dir, 'head'),
      encodeHead(offset),
      this.#fsyncFailed,
      this.mode,
    );
    try {
      const doomed = [...this.#segments.keys()]
        .filter((index) => (index + 1) * this.segmentSize <= offset)
        .sort((a, b) => a - b);
      // Dropping every segment (the head is the length, on a segment
      // boundary): first the empty segment that marks the end (§3.2).
      if (doomed.length > 0 && doomed.length === this.#segments.size) {
        await this.#anchorEnd(this.lengthOffset);
      }
      for (const index of doomed) await this.#deleteSegment(index);
      if (doomed.length > 0) await syncDir(this.#fs, this.dir, this.#fsyncFailed);
    } catch (error) {
      this.latch(toWalError(error, 'truncateBefore'), `truncating ${this.dir} before ${offset}`);
    }
  }

  protected async doUpdateMeta(next: StoreMeta): Promise<void> {
    const meta = encodeMeta({ ...next, [SEGMENT_SIZE_KEY]: this.segmentSize });
    await replaceFile(this.#fs, join(this.dir, 'meta'), meta, this.#fsyncFailed, this.mode);
  }

  protected override async doUpdateMetaAfterFailure(next: StoreMeta): Promise<void> {
    const meta = encodeMeta({ ...next, [SEGMENT_SIZE_KEY]: this.segmentSize });
    await replaceFile(this.#rawFs, join(this.dir, 'meta'), meta, failOpen, this.mode);
  }

  async #closeFiles(): Promise<void> {
    let failure: unknown;
    for (const segment of this.#segments.values()) {
      await this.#closeFile(segment).catch((error: unknown) => {
        failure ??= error;
      });
    }
    if (failure !== undefined) throw failure;
  }

  protected async doClose(): Promise<void> {
    let failure: unknown;
    await this.#closeFiles().catch((error: unknown) => {
      failure = error;
    });
    await this.#lock?.release();
    if (failure !== undefined && this.failure === undefined) {
      throw toWalError(failure, `closing ${this.dir}`);
    }
  }
}

/**
 * Calls `each` for every item, at most `limit` at a time; waits for all of
 * them, then rejects with the first failure.
 */
async function eachBounded<T>(
  items: readonly T[],
  limit: number,
  each: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  let failed = false;
  let failure: unknown;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      await each(items[next++]!).catch((error: unknown) => {
        if (!failed) failure = error;
        failed = true;
      });
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failed) throw failure;
}

/**
 * Rejects with `WAL_LOCKED` when a file of the log in `dir` that a writable
 * handle would write in place has more than one name (hard links): another
 * directory (a copy made with `cp -al`, say) shares it, and a writer here
 * would write into that directory's log too — no lock named after one
 * directory keeps out a writer of the other. Those files are the segments
 * that are not wholly below the head (written, cut and extended in place).
 * Not the head, the metadata or the lock files: they are only ever replaced
 * by a rename or a link, or removed, which changes this directory's name
 * and never the file another name shares; nor a leftover `head.tmp` or
 * `meta.tmp`, which the next replacement removes (`replaceFile` creates its
 * temporary file exclusively); nor the segments below the head, which the
 * open only removes. A segment created later is new, with one name. Skips
 * the names in `checked` and adds those it finds with one name; a file
 * removed since the listing is skipped. Reads only: each file's link count is taken with
 * `Fs.linksAt` (on an `Fs` without it, the file is opened for reading,
 * counted with `Fs.links` and closed again), a few files at a time (never
 * more than `maxOpenSegments`: no segment of the store is open yet) — less
 * than the first `sync()` after a writable open costs anyway, which opens
 * every segment to fdatasync it.
 */
async function refuseShared(
  fs: Fs,
  dir: string,
  { indexes, segmentSize, head }: Inspection,
  checked: Set<string>,
  maxOpenSegments: number,
): Promise<void> {
  const names = indexes
    .filter((index) => (index + 1) * segmentSize > head)
    .map(segmentName)
    .filter((name) => !checked.has(name));
  // A few at a time (a log may hold thousands of segments); judged in order
  // once all are counted, so the refusal names the first shared file.
  const counts: Array<number | undefined> = [];
  const failures: unknown[] = [];
  const entries = names.map((name, at) => ({ name, at }));
  const limit = Math.min(SHARED_CHECKS_AT_ONCE, maxOpenSegments);
  await eachBounded(entries, limit, async ({ name, at }) => {
    counts[at] = await linksOf(fs, join(dir, name)).catch((error: unknown) => {
      failures[at] = error;
      return undefined;
    });
  });
  for (const [at, name] of names.entries()) {
    if (at in failures) throw failures[at];
    const links = counts[at];
    if (links === undefined) continue; // removed since the listing
    if (links > 1) throw sharedError(dir, name, links);
  }
  for (const [at, name] of names.entries()) if (counts[at] !== undefined) checked.add(name);
}

/** Files {@link refuseShared} examines at once. */
const SHARED_CHECKS_AT_ONCE = 8;

/**
 * The link count of the file at `path` (`Fs.linksAt`, or, on an `Fs`
 * without it, opened for reading, counted and closed again), or undefined
 * when nothing is there.
 */
async function linksOf(fs: Fs, path: string): Promise<number | undefined> {
  if (fs.linksAt !== undefined) {
    return fs.linksAt(path).catch((error: unknown) => {
      if (errorCode(error) === 'ENOENT') return undefined;
      throw error;
    });
  }
  const file = await openIfExists(fs, path);
  if (file === undefined) return undefined;
  try {
    return await fs.links(file);
  } finally {
    await fs.close(file);
  }
}

/**
 * The `WAL_LOCKED` refusal of a writable open of the log in `dir` whose
 * segment file `name` has `links` names (see {@link refuseShared}).
 */
function sharedError(dir: string, name: string, links: number): LockedError {
  return new LockedError(dir, {
    reason:
      `its segment file ${name} has ${links} names (hard links): another directory shares it ` +
      '(a copy made with hard links, such as cp -al, shares every file), and a writer ' +
      "here would write into that directory's log too, which no lock of one directory " +
      'keeps out; copy the log without links (cp -a), remove the other names, ' +
      'or open it read-only',
  });
}

function isSegmentSize(value: unknown): boolean {
  return (
    typeof value === 'number' && Number.isInteger(value) && value >= 1 && value <= MAX_SEGMENT_SIZE
  );
}

/**
 * For a directory whose metadata records no segment size (a wal-db 1.x log,
 * or one whose metadata was lost), where the `segmentSize` option alone says
 * where each byte is: checks the size against the segment files before
 * anything relies on it (FORMAT.md §5.3). A segment never holds more than the
 * real size, and with the real size every segment below the highest is full
 * except those a power loss tore. So it rejects, with
 * `ERR_INVALID_ARG_VALUE` and reading only, when a segment holds more than
 * `segmentSize` bytes, or when segments below the highest exist and none
 * holds exactly `segmentSize` bytes (no evidence that the size is right; a
 * size too large leaves every lower segment short). The latter still lets a
 * read-only open through unless the files name a size (see
 * {@link fittingSize}): it changes nothing, and recovery reports the tear.
 * A shorter segment below the highest otherwise is a tear, cut by recovery.
 * With a single segment file, `head` (the head file's value, 0 without one)
 * is the evidence: it must lie within the bytes that file holds under
 * `segmentSize` (see {@link headOutsideSegment}); otherwise it rejects,
 * writable or read-only. A segment deleted since the listing (a writer
 * truncating, seen by a read-only open) is skipped.
 */
async function checkSegmentSizes(
  fs: Fs,
  dir: string,
  indexes: readonly number[],
  segmentSize: number,
  head: number,
  readOnly: boolean,
): Promise<void> {
  const sizes: { index: number; size: number }[] = [];
  for (const index of indexes) {
    let file: FsFile;
    try {
      file = await fs.open(join(dir, segmentName(index)), 'read');
    } catch (error) {
      if (errorCode(error) === 'ENOENT') continue;
      throw error;
    }
    try {
      sizes.push({ index, size: await fs.size(file) });
    } finally {
      await fs.close(file);
    }
  }
  const lower = sizes.slice(0, -1);
  const fit = fittingSize(sizes);
  const refuse = (what: string, advice?: string) =>
    invalidArgValue(
      'options.segmentSize',
      segmentSize,
      `does not match the segment files of ${dir}, which has no metadata to check it against: ${what}; ${
        advice ??
        (fit === undefined
          ? 'the files show no size: pass the segment size the log was written with'
          : `the files fit a segment size of ${fit}`)
      }. Nothing was changed`,
    );
  const larger = sizes.find((segment) => segment.size > segmentSize);
  if (larger !== undefined) {
    throw refuse(
      `segment ${segmentName(larger.index)} holds ${larger.size} bytes, more than the segment size ${segmentSize} given`,
    );
  }
  const outside =
    sizes.length === 1 ? headOutsideSegment(dir, sizes[0]!, segmentSize, head) : undefined;
  if (outside !== undefined) throw refuse(outside.what, outside.advice);
  if (lower.length === 0 || lower.some((segment) => segment.size === segmentSize)) return;
  if (readOnly && fit === undefined) return;
  throw refuse(
    `no segment below the highest holds exactly the segment size ${segmentSize} given (segment ${segmentName(lower[0]!.index)} holds ${lower[0]!.size} bytes), so nothing shows that size is right`,
  );
}

/**
 * With segment `index` the only segment file, holding `size` bytes: what is
 * wrong with the head `head` under segment size `segmentSize`, and what to
 * do about it, or undefined when it lies within the bytes that file holds,
 * `[index·S, index·S + size]` (FORMAT.md §5.3). A wrong size maps the file
 * elsewhere: the open would read nothing from the head, delete the segment
 * as lying below the head, or let recovery cut it. Under the right size
 * such a state holds no record a reader reaches from the head either: a
 * wal-db power loss (no directory fsync, the head rewritten in place) can
 * leave a segment holding only bytes below the head, or lose the segment
 * holding it. Past the end, the advice names a repair that keeps a segment
 * file reaching the end (FORMAT.md §3.2).
 */
function headOutsideSegment(
  dir: string,
  { index, size }: { index: number; size: number },
  segmentSize: number,
  head: number,
): { what: string; advice: string } | undefined {
  const start = index * segmentSize;
  const end = start + size;
  if (head >= start && head <= end) return undefined;
  const segment = segmentName(index);
  const where = `the head file ${join(dir, 'head')} names the head ${head}, ${
    head < start ? 'below' : 'past the end of'
  } segment ${segment}, the only segment file, which with the segment size ${segmentSize} given would hold the bytes [${start}, ${end}]; the head must lie in [${start}, ${end}]`;
  if (head < start) {
    return {
      what: `${where}: no file would hold the bytes from the head on`,
      advice: `pass the segment size the log was written with (were it ${segmentSize}, a reader would find no record from the head on)`,
    };
  }
  const holding = Math.floor(head / segmentSize);
  const reach = head - holding * segmentSize;
  return {
    what: `${where}: ${
      holding > index
        ? 'the segment would lie wholly below the head, and no file would reach the head'
        : 'the bytes below the head would be missing'
    }`,
    advice: `either ${segmentSize} is not the segment size the log was written with (then pass that size), or it is and a wal-db power loss left ${segment} holding only bytes below the head (the repair loses none of them: whatever the power loss took from the head on is gone either way); then, to open the log, ${
      holding > index
        ? `create segment ${segmentName(holding)} ${reach === 0 ? 'empty' : `holding ${reach} zero bytes`}, then remove ${segment}`
        : `extend ${segment} with zeros to ${reach} bytes`
    }, so that a segment file reaches the head (docs/FORMAT.md §5.3)`,
  };
}

/**
 * The segment size the files show, if they show one: the size of the
 * largest segment, when at least two segments below the highest hold exactly
 * that many bytes (more than 0). One segment alone, or segments that
 * disagree, may all be torn: they name no size.
 */
function fittingSize(sizes: readonly { size: number }[]): number | undefined {
  // A loop, not a spread: a log may have more segments than a call has arguments.
  const largest = sizes.reduce((most, segment) => Math.max(most, segment.size), 0);
  const agreeing = sizes.slice(0, -1).filter((segment) => segment.size === largest).length;
  return largest > 0 && agreeing >= 2 ? largest : undefined;
}

function tooLarge(dir: string, index: number, size: number, segmentSize: number): CorruptionError {
  return new CorruptionError(
    `segment ${segmentName(index)} in ${dir} holds ${size} bytes, more than the segment size ${segmentSize}`,
  );
}
