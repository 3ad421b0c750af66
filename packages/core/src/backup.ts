/**
 * Online backup (docs/DURABILITY.md §3, "Backup"): a consistent, durable
 * prefix of a live log copied into a new directory while appends go on.
 */
import { randomBytes } from 'node:crypto';
import { realpath, rm } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import {
  BusyError,
  CorruptionError,
  errorCode,
  IoError,
  invalidArgType,
  invalidArgValue,
  isWalError,
  outOfRange,
  rejectUnknownKeys,
  toWalError,
  validateInteger,
  validateOffset,
} from '@wal/errors';
import {
  DEFAULT_FILE_MODE,
  DEFAULT_SEGMENT_SIZE,
  type Fs,
  identifyLog,
  type LogIdentity,
  MAX_SEGMENT_SIZE,
  MIN_SEGMENT_SIZE,
  NodeFs,
  SegmentedStore,
  segmentIndex,
  validateMode,
} from '@wal/store';
import { HEADER_SIZE, writeFrame } from './frame.js';
import {
  DURABLE_HINT_KEY,
  FORMAT_KEY,
  FORMAT_VERSION,
  META_MAX_RECORD,
  META_TRUNCATIONS,
} from './meta.js';
import { gatedMeta, Wal } from './wal.js';

/** Options of {@link backup}. */
export interface BackupOptions {
  /**
   * Where the copy ends: a record boundary (an LSN, or the end of the last
   * record) at or below the log's durable watermark when the backup starts.
   * Default: that durable watermark. The copy holds every record below it.
   */
  readonly upTo?: number;
  /** Segment size of the copy (a segmented log). Default: the source's, else 64 MiB. */
  readonly segmentSize?: number;
  /**
   * Permission bits of every file of the copy, less the umask, as
   * `WalOptions.mode`; its directory gets the matching directory mode.
   * Default: the mode the source's store creates files with, else `0o644`.
   */
  readonly mode?: number;
  /** Called as the copy advances: bytes copied so far and bytes to copy. */
  readonly onProgress?: (copied: number, total: number) => void;
  /** The file system of the destination (default: the real one). Tests pass `CrashFs`. */
  readonly fs?: Fs;
}

/** What {@link backup} copied. */
export interface BackupResult {
  /** The destination path, as given. */
  readonly destination: string;
  /** The copy's head: the source's head (the head it had moved to, when a `truncateBefore` ran meanwhile). */
  readonly head: number;
  /** The copy's tail: every record below it, from the head, is in the copy at the same LSN. */
  readonly end: number;
  /** Records copied. */
  readonly records: number;
}

const KNOWN = new Set(['upTo', 'segmentSize', 'mode', 'onProgress', 'fs']);
/** Bytes gathered before one write to the copy. */
const CHUNK = 1024 * 1024;

/**
 * Copies a consistent prefix of the live log `source` — every record from
 * its head up to its durable watermark when the call starts (or `upTo`) —
 * into a new segmented log at `destination`, without stopping the writers:
 * appends, syncs and `truncateBefore` go on meanwhile. Only durable bytes are
 * copied, read through the log (every record's checksum is checked on the
 * way). The copy has the same records at the same LSNs and the same head, and
 * opens with `Wal.open(destination)`. A read-only `source` (a log another
 * process writes) cannot know its durable watermark: its copy ends by
 * default at the durable hint the writer last recorded (at its last segment
 * roll or close; docs/FORMAT.md §5.2), the only offset known to be durable.
 *
 * Crash-safe: the copy is built in a temporary sibling directory
 * (`.<name>.backup-<random>.tmp`), its files and directory fsynced, then
 * renamed to `destination` and the parent directory fsynced. After a power
 * loss at any moment `destination` is either absent or the complete copy,
 * never a partial log (a temporary directory may be left beside it: remove
 * it). `destination` must not exist; nothing that exists is ever written,
 * replaced or removed.
 *
 * Rejects with `WAL_IO` (`errno` `EEXIST`) when `destination` exists,
 * `ERR_INVALID_ARG_VALUE` when it lies where a log (the source or another)
 * keeps its files (inside a log directory, at any depth and through
 * symbolic links; `<path>.meta`, `<path>.lock`, … beside a single-file log),
 * `ERR_OUT_OF_RANGE` for an `upTo` past the durable watermark,
 * `WAL_NOT_BOUNDARY` for an `upTo` where no record starts, `WAL_TRUNCATED`
 * for one below the head, `WAL_BUSY` when a `truncateAfter` ran during the
 * copy (retry), `WAL_CORRUPTION` when the source has records its `skip`
 * policy stepped over (a copy would not be a valid log), `WAL_CLOSED` and the
 * source's failure errors, and the file system's errors (`WAL_IO`,
 * `WAL_NO_SPACE`, also for the final fsyncs and the rename). On rejection
 * the temporary directory is removed (with a custom `fs`, emptied) and
 * `destination` does not exist: when the parent directory's fsync failed
 * after the rename, the copy is renamed back and that made durable first.
 * Should that fail too, the complete copy is left whole: in the temporary
 * directory (the rename back was made but not made durable), or at
 * `destination` (the rename back failed; the only case where a rejected
 * backup leaves `destination`, a complete copy that may not survive a
 * power loss).
 */
export async function backup(
  source: Wal,
  destination: string,
  options: BackupOptions = {},
): Promise<BackupResult> {
  if (!(source instanceof Wal)) throw invalidArgType('source', 'an instance of Wal', source);
  if (typeof destination !== 'string' || destination.length === 0) {
    throw invalidArgType('destination', 'a non-empty string', destination);
  }
  if (typeof options !== 'object' || options === null) {
    throw invalidArgType('options', 'of type object', options);
  }
  rejectUnknownKeys('options', options, KNOWN);
  const { upTo, onProgress } = options;
  if (upTo !== undefined) validateOffset('options.upTo', upTo);
  if (onProgress !== undefined && typeof onProgress !== 'function') {
    throw invalidArgType('options.onProgress', 'of type function', onProgress);
  }
  const sourceStore = source.store as { segmentSize?: unknown; mode?: unknown };
  const mode =
    options.mode ?? (typeof sourceStore.mode === 'number' ? sourceStore.mode : DEFAULT_FILE_MODE);
  validateMode('options.mode', mode);
  const segmentSize =
    options.segmentSize ??
    (typeof sourceStore.segmentSize === 'number' && sourceStore.segmentSize >= MIN_SEGMENT_SIZE
      ? sourceStore.segmentSize
      : DEFAULT_SEGMENT_SIZE);
  validateInteger('options.segmentSize', segmentSize, MIN_SEGMENT_SIZE, MAX_SEGMENT_SIZE);
  const fs = options.fs ?? new NodeFs();
  const parent = dirname(resolve(destination));
  const name = basename(resolve(destination));
  await refuseInsideLog(fs, destination, parent, name);

  // The prefix to copy, fixed now: durable, so its bytes never change
  // (unless a truncateAfter cuts them, which the counter below detects).
  const meta = await gatedMeta(source);
  const durable = source.readOnly ? durableHint(source, meta[DURABLE_HINT_KEY]) : source.durable;
  let head = source.head;
  const end = upTo ?? durable;
  if (end > durable) {
    throw outOfRange('options.upTo', `<= the durable watermark (${durable})`, end);
  }
  if (end < durable) await source.read(end); // WAL_NOT_BOUNDARY, WAL_TRUNCATED

  await refuseExisting(fs, parent, name, destination);
  const temp = join(parent, `.${name}.backup-${randomBytes(6).toString('hex')}.tmp`);
  const target = resolve(destination);
  let store: SegmentedStore | undefined;
  /** Set once the copy was renamed to `destination`. */
  let renamed = false;
  try {
    store = await SegmentedStore.open(temp, { fs, mode, segmentSize });
    let records = 0;
    const copy = async (from: number): Promise<number> => {
      const buffer = new Uint8Array(CHUNK);
      let start = from; // offset of buffer[0]
      let used = 0;
      let at = from;
      const flush = async () => {
        if (used > 0) await store!.write(start, buffer.subarray(0, used));
        start += used;
        used = 0;
        onProgress?.(start - head, end - head);
      };
      for await (const record of source.iterate(from)) {
        if (record.lsn >= end) break;
        if (record.lsn !== at) {
          throw new CorruptionError(
            `the source has damaged bytes at ${at} its recovery policy stepped over; a copy would not be a valid log`,
            { offset: at },
          );
        }
        const length = HEADER_SIZE + record.payload.length;
        if (used + length > CHUNK) await flush();
        if (length > CHUNK) {
          await store!.write(start, frameOf(record.payload));
          start += length;
        } else {
          writeFrame(buffer, used, record.payload);
          used += length;
        }
        at += length;
        records++;
        if (at >= end) break;
      }
      await flush();
      return at;
    };
    let reached: number;
    for (;;) {
      try {
        reached = head < end ? await copy(head) : head;
        break;
      } catch (error) {
        // A truncateBefore moved the source's head past the copy: go on
        // from the new head (the copy gets that head too).
        if (!isWalError(error, 'WAL_TRUNCATED') || source.head <= head) throw error;
        head = Math.min(source.head, end);
        records = 0;
      }
    }
    const truncations = (await gatedMeta(source))[META_TRUNCATIONS];
    if (reached !== end || truncations !== meta[META_TRUNCATIONS]) {
      throw new BusyError(
        'a truncateAfter ran on the source during the backup; nothing was kept: back up again',
      );
    }
    if (head > 0) {
      // The copy's length must reach its head: a byte below it, never read.
      if (store.length < head) await store.write(head - 1, new Uint8Array(1));
      await store.sync();
      await store.truncateBefore(head);
    }
    const { [DURABLE_HINT_KEY]: _hint, ...kept } = meta;
    await store.updateMeta({
      ...kept,
      [FORMAT_KEY]: typeof meta[FORMAT_KEY] === 'number' ? meta[FORMAT_KEY] : FORMAT_VERSION,
      [META_MAX_RECORD]: source.maxRecordSize,
      [DURABLE_HINT_KEY]: end,
    });
    await store.sync();
    await store.close();
    store = undefined;
    await typedIo(() => fs.syncDir(temp), `directory fsync of ${temp}`); // the lock file's removal
    await refuseExisting(fs, parent, name, destination);
    await typedIo(() => fs.rename(temp, target), `rename of ${temp} to ${target}`);
    renamed = true;
    await typedIo(() => fs.syncDir(parent), `directory fsync of ${parent}`);
    return Object.freeze({ destination, head, end, records });
  } catch (error) {
    await store?.close().catch(() => undefined);
    // The rename happened but was not made durable: move the copy back, so
    // that a rejected backup leaves no destination.
    if (renamed && !(await moveBack(fs, target, temp, parent))) throw error;
    await removeTemporary(fs, temp);
    throw error;
  }
}

/** Runs `call`, its failure as a typed error (`WAL_IO`, `WAL_NO_SPACE`; a `WalError` as it is). */
async function typedIo(call: () => Promise<void>, what: string): Promise<void> {
  try {
    await call();
  } catch (error) {
    throw toWalError(error, what);
  }
}

/**
 * After the parent's fsync failed: renames the copy at `target` back to
 * `temp` and makes that durable. True when done: `temp` may then be
 * emptied. False when either step failed: a copy renamed back that the
 * disk may still hold at `target` is left whole in `temp` (never a partial
 * log at `target` after a power loss), and one that could not be renamed
 * back stays at `target`, complete.
 */
async function moveBack(fs: Fs, target: string, temp: string, parent: string): Promise<boolean> {
  try {
    await fs.rename(target, temp);
  } catch {
    return false;
  }
  try {
    await fs.syncDir(parent);
    return true;
  } catch {
    return false;
  }
}

/**
 * What a read-only source knows to be durable: the durable hint its writer
 * last recorded (at a segment roll or a close), never past the scanned end.
 */
function durableHint(source: Wal, hint: unknown): number {
  const recorded = typeof hint === 'number' ? hint : source.head;
  return Math.max(source.head, Math.min(recorded, source.written));
}

function frameOf(payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(HEADER_SIZE + payload.length);
  writeFrame(out, 0, payload);
  return out;
}

/**
 * A name a single-file log keeps beside itself (docs/FORMAT.md §3.1): its
 * path, then `.meta`, `.meta.tmp`, `.lock`, `.lock.break` or a temporary
 * file of the lock protocol. Group 1: the log's name.
 */
const BESIDE_FILE_LOG =
  /^(.+)\.(?:meta|meta\.tmp|lock|lock\.break|lock(?:\.break)?\.[0-9a-f]+\.tmp)$/;

/**
 * `path` with its symbolic links resolved on the real file system, as far
 * as it exists there (the rest appended as given).
 */
async function real(path: string): Promise<string> {
  try {
    return await realpath(path);
  } catch {
    const up = dirname(path);
    return up === path ? path : join(await real(up), basename(path));
  }
}

/** The verdict of `identifyLog` on `path`, `undefined` when it cannot be told. */
function identity(fs: Fs, path: string): Promise<LogIdentity | undefined> {
  return identifyLog(path, { fs }).catch(() => undefined);
}

/**
 * Rejects with `ERR_INVALID_ARG_VALUE` when the destination (`name` in
 * `parent`) lies where a log — the source or any other — keeps its files:
 * inside a log directory, at any depth (one holding metadata, a segment or
 * a `head`: a directory holding only `lost+found` is not taken for one), or
 * beside a single-file log under a name it keeps there (`<path>.meta`,
 * `<path>.lock`, …). A copy there would leave that log a directory holding
 * a foreign entry, or with a directory for its lock, which no longer opens.
 * Checked before anything is created, through symbolic links; reads only.
 */
async function refuseInsideLog(
  fs: Fs,
  destination: string,
  parent: string,
  name: string,
): Promise<void> {
  const refuse = (where: string) =>
    invalidArgValue(
      'destination',
      destination,
      `must not be ${where}: the backup would leave that log unopenable; nothing was changed`,
    );
  const start = await real(parent);
  const beside = BESIDE_FILE_LOG.exec(name)?.[1];
  if (beside !== undefined) {
    const found = await identity(fs, join(start, beside));
    if (found?.type === 'file' && found.verdict === 'log') {
      throw refuse(`a file the single-file log ${join(start, beside)} keeps beside it`);
    }
  }
  for (let dir = start; ; dir = dirname(dir)) {
    const found = await identity(fs, dir);
    if (found?.type === 'directory' && found.verdict === 'log') {
      const names = await fs.readdir(dir).catch(() => [] as string[]);
      if (
        found.metadata ||
        names.some((entry) => entry === 'head' || segmentIndex(entry) !== undefined)
      ) {
        throw refuse(`inside the log directory ${dir}`);
      }
    }
    if (dirname(dir) === dir) return;
  }
}

/** Rejects with `WAL_IO` (`EEXIST`) when `parent` holds `name`. */
async function refuseExisting(fs: Fs, parent: string, name: string, destination: string) {
  let names: string[];
  try {
    names = await fs.readdir(parent);
  } catch (error) {
    const errno = errorCode(error);
    throw new IoError(`cannot back up into ${destination}: its parent directory cannot be read`, {
      cause: error,
      ...(errno === undefined ? {} : { errno }),
      syscall: 'readdir',
    });
  }
  if (names.includes(name)) {
    throw new IoError(
      `cannot back up into ${destination}: it exists (a backup only creates a new directory); nothing was changed`,
      { errno: 'EEXIST', syscall: 'backup' },
    );
  }
}

/**
 * Removes the temporary directory this backup created (only we write in it:
 * its name is random). Through an `Fs` other than `NodeFs`, which cannot
 * remove a directory, it is emptied.
 */
async function removeTemporary(fs: Fs, temp: string): Promise<void> {
  if (fs instanceof NodeFs) {
    await rm(temp, { recursive: true, force: true }).catch(() => undefined);
    return;
  }
  const names = await fs.readdir(temp).catch(() => [] as string[]);
  for (const entry of names) await fs.unlink(join(temp, entry)).catch(() => undefined);
}
