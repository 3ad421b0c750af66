/**
 * Finding and opening a log: layout detection, read-only store opens, and a
 * view of a store that a `Wal` may use without owning it ({@link StoreView}).
 */
import { open, readdir, realpath, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve as nodeResolve } from 'node:path';
import type { RecoveryPolicy, StoredRecord } from '@wal/core';
import { DURABLE_HINT_KEY, Wal } from '@wal/core';
import { errorCode, isArgumentError, NotALogError } from '@wal/errors';
import {
  FileStore,
  identifyLog,
  type LogIdentity,
  type MetaUpdate,
  readLockHolder,
  SegmentedStore,
  type Store,
  type StoreMeta,
  type StoreSupports,
  segmentIndex,
  segmentName,
} from '@wal/store';
import { CliError, describeError, EXIT } from './errors.js';

export type Layout = 'segmented' | 'file';

/** A log location, as found on disk. */
export interface Target {
  /** The path as given (what messages name). */
  readonly path: string;
  /**
   * The path with its symbolic links resolved: what is opened, and where the
   * lock, the metadata and any file the command writes beside the log are
   * looked for (a link's own name has no lock or metadata beside it).
   */
  readonly resolved: string;
  readonly layout: Layout;
  /** The lock file a writer holds while the log is open. */
  readonly lockFile: string;
  /** `--segment-size`, if given. */
  readonly segmentSize: number | undefined;
}

/** The metadata file's magic, "WALM" (docs/FORMAT.md §5.1). */
const META_MAGIC = Buffer.from('WALM', 'latin1');

/** True when `file` is a regular file starting with the metadata magic (never opens anything else). */
async function isLogMetadata(file: string): Promise<boolean> {
  try {
    if (!(await stat(file)).isFile()) return false;
    const handle = await open(file, 'r');
    try {
      const start = Buffer.alloc(META_MAGIC.length);
      const { bytesRead } = await handle.read(start, 0, start.length, 0);
      return bytesRead === start.length && start.equals(META_MAGIC);
    } finally {
      await handle.close();
    }
  } catch {
    return false;
  }
}

/** True when `file` holds a lock record of a log (a pid and host: a writer's lock, live or stale). */
async function isLogLock(file: string): Promise<boolean> {
  const holder = await readLockHolder(file).catch(() => undefined);
  return holder?.pid !== undefined;
}

/**
 * True when the directory `dir` (a resolved path) is, or is the remains of,
 * a segmented log's directory: the library takes it for one (`identifyLog`),
 * or it holds a metadata file of ours (`meta`), or a lock record of ours
 * (`lock`), or — `name` being a segment file in it — another segment file.
 * A directory that holds foreign files besides such entries is no longer
 * opened by the library, but it is still that log's.
 */
async function isLogDirectory(dir: string, name?: string): Promise<boolean> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return false;
  }
  const identity = await identifyLog(dir).catch(() => undefined);
  if (identity?.type === 'directory' && identity.verdict === 'log') return true;
  if (names.includes('meta') && (await isLogMetadata(join(dir, 'meta')))) return true;
  if (names.includes('lock') && (await isLogLock(join(dir, 'lock')))) return true;
  return (
    name !== undefined &&
    segmentIndex(name) !== undefined &&
    names.some((other) => other !== name && segmentIndex(other) !== undefined)
  );
}

/**
 * The log directory the entry `name` of the directory `dir` (a resolved
 * path) would lie in — `dir` itself or a directory above it — or undefined.
 * A file written there (a single-file log's `.meta` and `.lock`, a backup
 * file) would leave that log a directory holding a foreign entry, which no
 * longer opens (docs/FORMAT.md §3.1).
 */
export async function enclosingLogDirectory(
  dir: string,
  name?: string,
): Promise<string | undefined> {
  for (let at = dir, entry = name; ; entry = undefined) {
    if (await isLogDirectory(at, entry)) return at;
    const up = dirname(at);
    if (up === at) return undefined;
    at = up;
  }
}

/**
 * `path` with its symbolic links resolved, or undefined when nothing is
 * there (a link to nothing included).
 */
async function resolve(path: string): Promise<string | undefined> {
  try {
    return await realpath(path);
  } catch (error) {
    const code = errorCode(error);
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw new CliError(describeError(error, path).message);
  }
}

/**
 * Decides the layout from what `path` is — a directory is a segmented log, a
 * regular file a single-file log — by the library's own rule of what counts
 * as a log (`identifyLog`, docs/FORMAT.md §3.1): what the library opens, the
 * command line opens, and what it refuses, the command line refuses. A path
 * where nothing was ever written (an empty file or directory) holds no log to
 * look at and is refused too.
 *
 * Symbolic links are resolved first: the log is where the link leads, and
 * its lock and metadata are beside that. A file inside a log directory (a
 * segment file, or any file beside a segmented log's `meta`, `lock` or
 * segments) is refused with `WAL_NOT_A_LOG` naming that directory: taken for
 * a single-file log, it would be described wrongly, and a repair would cut a
 * segment and write files into the directory past the lock its writer holds.
 */
export async function findTarget(path: string, segmentSize: number | undefined): Promise<Target> {
  const resolved = await resolve(path);
  if (resolved === undefined) throw new CliError(`${path}: no such file or directory`);
  let identity: LogIdentity;
  try {
    identity = await identifyLog(resolved);
  } catch (error) {
    throw new CliError(describeError(error, path).message);
  }
  if (identity.type === 'missing') throw new CliError(`${path}: no such file or directory`);
  if (identity.type === 'file') {
    const name = basename(resolved);
    const dir = await enclosingLogDirectory(dirname(resolved), name);
    if (dir !== undefined) {
      // Named as given when the path is no link and the directory its own.
      const shown =
        nodeResolve(path) === resolved && dir === dirname(resolved) ? dirname(path) : dir;
      const what =
        dir === dirname(resolved) && segmentIndex(name) !== undefined
          ? `segment file ${segmentIndex(name)} of the log directory ${shown}`
          : `a file inside the log directory ${shown}`;
      const error = new NotALogError(path, `${what} (give the directory: it is the log)`);
      throw new CliError(describeError(error, path).message, EXIT.usage, { cause: error });
    }
  }
  if (identity.verdict !== 'log') throw new CliError(`${path}: not a log: ${identity.found}`);
  if (identity.type === 'directory') {
    return { path, resolved, layout: 'segmented', lockFile: join(resolved, 'lock'), segmentSize };
  }
  if (segmentSize !== undefined) {
    throw new CliError(`${path}: --segment-size applies to segmented logs (directories) only`);
  }
  return { path, resolved, layout: 'file', lockFile: `${resolved}.lock`, segmentSize };
}

/** Opens the store of `target` read-only: no lock, nothing changed. */
export async function openStoreReadOnly(target: Target): Promise<Store> {
  try {
    if (target.layout === 'file') return await FileStore.open(target.resolved, { readOnly: true });
    return await SegmentedStore.open(target.resolved, {
      readOnly: true,
      ...(target.segmentSize === undefined ? {} : { segmentSize: target.segmentSize }),
    });
  } catch (error) {
    if (isArgumentError(error) && target.segmentSize === undefined) {
      throw new CliError(
        `${target.path}: the log has no metadata (a wal-db 1.x log?): give its segment size with --segment-size`,
      );
    }
    const message = error instanceof Error ? error.message : '';
    if (isArgumentError(error) && message.includes('does not match the segment files')) {
      // No metadata: the store checked the size against the segment files,
      // and names a size only when the files show one.
      const fit = /the files fit a segment size of (\d+)\./.exec(message)?.[1];
      // With one segment file holding only bytes below the head, the size
      // may be right: a wal-db power loss leaves that too; the store names
      // the repair.
      const lost = /, or it is and (a wal-db power loss .*)\. Nothing was changed\./.exec(
        message,
      )?.[1];
      const ask = `give the segment size it was written with${
        lost === undefined ? '' : `; if it is ${target.segmentSize}, ${lost}`
      }`;
      throw new CliError(
        `${target.path}: --segment-size ${target.segmentSize} does not match the segment files of this log, which has no metadata: ${fit === undefined ? ask : `they fit a segment size of ${fit}`}`,
      );
    }
    if (isArgumentError(error)) {
      throw new CliError(
        `${target.path}: --segment-size ${target.segmentSize} does not match the log's segment size (omit it: the log records its own)`,
      );
    }
    const described = describeError(error, target.path);
    throw new CliError(described.message, described.exitCode, { cause: error });
  }
}

/** Opens the store of `target` for writing: takes the lock. Files it creates get `mode`. */
export async function openStoreWritable(target: Target, mode?: number): Promise<Store> {
  const common = mode === undefined ? {} : { mode };
  if (target.layout === 'file') return FileStore.open(target.resolved, common);
  return SegmentedStore.open(target.resolved, {
    ...common,
    ...(target.segmentSize === undefined ? {} : { segmentSize: target.segmentSize }),
  });
}

/** What a {@link StoreView} changes about the store it wraps. */
export interface ViewOptions {
  /** Present the durable hint as this value (a "what if" for the recovery scan). */
  readonly hint?: number;
  /** Told about every read, with how many bytes came back. */
  readonly onRead?: (offset: number, length: number) => void;
}

/**
 * A store that forwards to `store` but whose `close()` does nothing, so a
 * `Wal` can be opened over it (and closed) while the caller keeps the store.
 * It implements the public `Store` interface member by member: a change to
 * that interface breaks this class at compile time.
 */
export class StoreView implements Store {
  readonly #store: Store;
  readonly #hint: number | undefined;
  readonly #onRead: ((offset: number, length: number) => void) | undefined;
  /** Present only when the wrapped store has it (the scan picks its read by that). */
  readonly readInto?: (offset: number, into: Uint8Array) => Promise<number>;

  constructor(store: Store, options: ViewOptions = {}) {
    this.#store = store;
    this.#hint = options.hint;
    this.#onRead = options.onRead;
    const readInto = store.readInto;
    if (readInto !== undefined) {
      const onRead = this.#onRead;
      this.readInto = async (offset, into) => {
        const count = await readInto.call(store, offset, into);
        onRead?.(offset, count);
        return count;
      };
    }
  }

  get supports(): StoreSupports {
    return this.#store.supports;
  }
  get head(): number {
    return this.#store.head;
  }
  get length(): number {
    return this.#store.length;
  }
  get closed(): boolean {
    return this.#store.closed;
  }
  /** The wrapped store's flag (absent reads as false, as the interface says). */
  get readOnly(): boolean {
    return this.#store.readOnly === true;
  }
  /** The wrapped store's segment size, if it is segmented (the log reads it to place its hints). */
  get segmentSize(): number | undefined {
    return segmentSizeOf(this.#store);
  }

  write(offset: number, bytes: Uint8Array): Promise<void> {
    return this.#store.write(offset, bytes);
  }
  async read(offset: number, length: number): Promise<Uint8Array> {
    const bytes = await this.#store.read(offset, length);
    this.#onRead?.(offset, bytes.length);
    return bytes;
  }
  sync(): Promise<void> {
    return this.#store.sync();
  }
  truncate(length: number): Promise<void> {
    return this.#store.truncate(length);
  }
  truncateBefore(offset: number): Promise<void> {
    return this.#store.truncateBefore(offset);
  }
  /** The wrapped store's metadata, with the durable hint replaced when the view has one. */
  async readMeta(): Promise<StoreMeta> {
    const meta = await this.#store.readMeta();
    return this.#hint === undefined ? meta : { ...meta, [DURABLE_HINT_KEY]: this.#hint };
  }
  updateMeta(fields: MetaUpdate): Promise<void> {
    return this.#store.updateMeta(fields);
  }
  async refresh(): Promise<void> {
    await this.#store.refresh?.();
  }
  /** Does nothing: the caller keeps the wrapped store and closes it. */
  async close(): Promise<void> {}
}

/** How a command reads a log: the recovery policy, and a record limit if one was given. */
export interface Reading {
  readonly policy: RecoveryPolicy;
  /** `--max-record-size`: otherwise the log's own (or wal-db's 64 MiB for a log without metadata). */
  readonly maxRecordSize?: number;
}

/** The `Wal.open` options of `reading`. */
export function walOptionsOf(reading: Reading): {
  recovery: RecoveryPolicy;
  maxRecordSize?: number;
} {
  const { policy, maxRecordSize } = reading;
  return maxRecordSize === undefined ? { recovery: policy } : { recovery: policy, maxRecordSize };
}

/**
 * Opens a read-only `Wal` over `store` (which stays open after the log
 * closes); `replay`, if given, is handed the records of the opened log as
 * the recovery scan reads them (`WalOptions.replay`, buffers reused).
 */
export function openLog(
  store: Store,
  reading: Reading,
  options: ViewOptions = {},
  replay?: (records: readonly StoredRecord[]) => void,
) {
  return Wal.open(new StoreView(store, options), {
    readOnly: true,
    ...walOptionsOf(reading),
    ...(replay === undefined ? {} : { replay, replayReusesBuffers: true }),
  });
}

/** The segment size of a segmented store, undefined for a single file. */
export function segmentSizeOf(store: Store): number | undefined {
  return store instanceof SegmentedStore ? store.segmentSize : undefined;
}

/** Where byte `offset` of the log lives on disk. */
export interface Place {
  /** The file holding it: a segment name, or the single file's name. */
  readonly file: string;
  /** Its position in that file. */
  readonly fileOffset: number;
}

export function placeOf(target: Target, store: Store, offset: number): Place {
  const size = segmentSizeOf(store);
  if (size === undefined) return { file: basename(target.resolved), fileOffset: offset };
  return { file: segmentName(Math.floor(offset / size)), fileOffset: offset % size };
}

export function describePlace(place: Place, layout: Layout): string {
  return layout === 'segmented'
    ? `segment ${place.file}, byte ${place.fileOffset}`
    : `${place.file}, byte ${place.fileOffset}`;
}

/** Segment files of a segmented log and their total size (the single file's size otherwise). */
export async function diskUsage(
  target: Target,
  store: Store,
): Promise<{ segments: number | undefined; bytes: number }> {
  if (target.layout === 'file') {
    return { segments: undefined, bytes: (await stat(target.resolved)).size };
  }
  const size = segmentSizeOf(store)!;
  let segments = 0;
  let bytes = 0;
  for (const name of await readdir(target.resolved)) {
    const index = segmentIndex(name);
    if (index === undefined) continue;
    if ((index + 1) * size <= store.head) continue; // below the head: left over, ignored
    segments++;
    bytes += (await stat(join(target.resolved, name))).size;
  }
  return { segments, bytes };
}
