/**
 * File-I/O helpers shared by the file backends: full positional writes and
 * reads over an {@link Fs}, the atomic replace of a small file, and the
 * per-file dirty tracking behind `sync()`. `writeAll` and `readFull` are
 * exported for engines that keep files of their own through an `Fs`.
 */
import { dirname } from 'node:path';
import {
  CorruptionError,
  errorCode,
  IoError,
  invalidArgType,
  rejectUnknownKeys,
  toWalError,
} from '@wal/errors';
import type { Fs, FsFile } from './fs.js';

/** The error of a write that returned 0 (or less) at `offset`. */
function noProgress(file: FsFile, offset: number): IoError {
  return new IoError(`write to ${file.path} made no progress at position ${offset}`, {
    syscall: 'write',
    offset,
  });
}

/**
 * Writes all of `bytes` at `position`, looping over short writes. A write that
 * makes no progress is an `IoError` (`WAL_IO`), never an endless loop.
 */
export async function writeAll(
  fs: Fs,
  file: FsFile,
  bytes: Uint8Array,
  position: number,
): Promise<void> {
  let done = 0;
  while (done < bytes.length) {
    const count = await fs.pwrite(file, bytes.subarray(done), position + done);
    if (!(count > 0)) {
      throw noProgress(file, position + done);
    }
    done += count;
  }
}

/**
 * `writeAll` with `fs.pwriteSync` (which the caller checked `fs` has): on
 * the calling thread, blocking it.
 */
export function writeAllSync(fs: Fs, file: FsFile, bytes: Uint8Array, position: number): void {
  let done = 0;
  while (done < bytes.length) {
    const count = fs.pwriteSync!(file, bytes.subarray(done), position + done);
    if (!(count > 0)) {
      throw noProgress(file, position + done);
    }
    done += count;
  }
}

/**
 * Called with a failed durable write call that began at `position` of the
 * file; must throw (a store latches it).
 */
export type DurableWriteFailure = (cause: unknown, position: number) => never;

/**
 * `writeAll` with `fs.pwriteDurable` (which the caller checked `fs` has):
 * every byte is durable once it resolves. A failure of a `pwriteDurable`
 * call, or one that makes no progress, goes to `failed` (the bytes'
 * durability is unknown: a store latches it), except a rejection with
 * `syscall` `'open'`, which wrote nothing (see {@link Fs.pwriteDurable})
 * and rejects as it is. One call in the usual case (no short write) and no
 * `async` layer: a durable commit waits on it.
 */
export function writeAllDurable(
  fs: Fs,
  file: FsFile,
  bytes: Uint8Array,
  position: number,
  failed: DurableWriteFailure,
): Promise<void> {
  return fs.pwriteDurable!(file, bytes, position).then(
    (count) => {
      if (count === bytes.length) return undefined;
      if (!(count > 0)) return failed(noProgress(file, position), position);
      return writeAllDurable(fs, file, bytes.subarray(count), position + count, failed);
    },
    (error: unknown) => {
      if (wroteNothing(error)) throw error;
      return failed(error, position);
    },
  );
}

/** True for a rejection of `pwriteDurable` that wrote nothing: its `syscall` is `'open'`. */
function wroteNothing(error: unknown): boolean {
  return (error as { syscall?: unknown } | null)?.syscall === 'open';
}

/**
 * {@link readFull} with {@link Fs.preadSync}: returns the count read.
 * Throws `ERR_INVALID_ARG_TYPE` when `fs` has no `preadSync`, and what it throws.
 */
export function readFullSync(fs: Fs, file: FsFile, into: Uint8Array, position: number): number {
  if (fs.preadSync === undefined) throw invalidArgType('fs', 'an Fs with preadSync', fs);
  let done = 0;
  while (done < into.length) {
    const count = fs.preadSync(file, into.subarray(done), position + done);
    if (count <= 0) break;
    done += count;
  }
  return done;
}

/** Reads into `into` from `position` until it is full or the file ends; resolves the count read. */
export async function readFull(
  fs: Fs,
  file: FsFile,
  into: Uint8Array,
  position: number,
): Promise<number> {
  let done = 0;
  while (done < into.length) {
    const count = await fs.pread(file, into.subarray(done), position + done);
    if (count <= 0) break;
    done += count;
  }
  return done;
}

/** `path` opened for reading, or `undefined` when it does not exist. */
export async function openIfExists(fs: Fs, path: string): Promise<FsFile | undefined> {
  try {
    return await fs.open(path, 'read');
  } catch (error) {
    if (errorCode(error) === 'ENOENT') return undefined;
    throw error;
  }
}

/**
 * Reads a whole small file, or `undefined` when it does not exist. A file
 * larger than `limit` bytes is `WAL_CORRUPTION` naming it and its size,
 * checked before anything is allocated or read for it.
 */
export async function readWhole(
  fs: Fs,
  path: string,
  limit: number,
): Promise<Uint8Array | undefined> {
  const file = await openIfExists(fs, path);
  if (file === undefined) return undefined;
  try {
    const size = await fs.size(file);
    if (size > limit) {
      throw new CorruptionError(
        `${path} is damaged: it holds ${size} bytes, more than the ${limit} it can hold`,
      );
    }
    const bytes = new Uint8Array(size);
    const count = await readFull(fs, file, bytes, 0);
    return bytes.subarray(0, count);
  } finally {
    await fs.close(file);
  }
}

/** Called with a failed fsync; must throw (a store latches it). */
export type FsyncFailure = (cause: unknown, what: string) => never;

/**
 * The {@link FsyncFailure} of an open, before there is a store to latch: the
 * failure rejects the open as a `WalError` (`WAL_IO`, `WAL_NO_SPACE`).
 */
export const failOpen: FsyncFailure = (cause, what) => {
  throw toWalError(cause, what);
};

/**
 * Checks the arguments every file backend's `open(location, options)` takes:
 * `options` holds only keys of `known` (a misspelt option is
 * `ERR_INVALID_ARG_VALUE` naming it, never silently ignored), and the common
 * `options.readOnly` is a boolean when given. Throws before anything is done.
 */
export function validateOpenArguments(
  name: string,
  location: unknown,
  options: unknown,
  known: ReadonlySet<string>,
): void {
  if (typeof location !== 'string' || location.length === 0) {
    throw invalidArgType(name, 'a non-empty string', location);
  }
  if (typeof options !== 'object' || options === null) {
    throw invalidArgType('options', 'an object', options);
  }
  rejectUnknownKeys('options', options, known);
  const { readOnly } = options as { readOnly?: unknown };
  if (readOnly !== undefined && typeof readOnly !== 'boolean') {
    throw invalidArgType('options.readOnly', 'a boolean', readOnly);
  }
}

/**
 * The rejection of a read-only open whose log does not exist: `WAL_IO` with
 * `errno` `ENOENT`, naming `location`. Other errors are returned as they are.
 */
export function missingForReadOnly(error: unknown, what: string, location: string): unknown {
  if (errorCode(error) !== 'ENOENT') return error;
  const { syscall } = error as { syscall?: unknown };
  return new IoError(`cannot open ${what} ${location} read-only: it does not exist`, {
    cause: error,
    errno: 'ENOENT',
    ...(typeof syscall === 'string' ? { syscall } : {}),
  });
}

/**
 * Replaces `path` with `bytes` atomically: write `<path>.tmp` (created with
 * `permissions`), fdatasync it, rename it over `path`, fsync the directory. After a crash `path` holds the
 * old or the new bytes, never a mix. A failed fdatasync or directory fsync is
 * handed to `failed` (which latches); other failures reject as they are (the
 * old file is then intact, except after a failed rename whose outcome the OS
 * did not report, which the directory fsync never got to make durable).
 * When it fails after creating `<path>.tmp`, before or at the rename, it
 * removes `<path>.tmp` (best effort, not made durable) and rejects with the
 * original error.
 *
 * `<path>.tmp` is only ever created, exclusively (`createExclusive`), never
 * opened as it is: one found there (a replacement a killed process began,
 * or a name another program made — a hard link to a file of its own, such
 * as `cp -al` leaves, or a symbolic link) is removed first, which takes
 * away that name (never following it) and leaves the file any other name
 * shares as it was. So the bytes go into a file this call created, never
 * through a name it did not make, whenever that name appeared. Should `<path>.tmp` be there again once it was
 * removed, the call rejects (`EEXIST`) having written nothing. The rename
 * is by name, so a program that swaps a file of its own in under
 * `<path>.tmp` between the create and the rename has that file put in place
 * (nothing is written through it): outside what the lock protects, as is
 * any other program writing in the log's directory.
 */
export async function replaceFile(
  fs: Fs,
  path: string,
  bytes: Uint8Array,
  failed: FsyncFailure,
  permissions?: number,
): Promise<void> {
  const temp = `${path}.tmp`;
  const file = await createTemporary(fs, temp, permissions);
  let closed = false;
  try {
    await writeAll(fs, file, bytes, 0);
    try {
      await fs.fdatasync(file);
    } catch (error) {
      failed(error, `fdatasync of ${temp}`);
    }
    closed = true;
    await fs.close(file);
    await fs.rename(temp, path);
  } catch (error) {
    if (!closed) await fs.close(file).catch(() => undefined);
    // Left behind, a temporary file of ours beside nothing would block every
    // later open of a new log (docs/FORMAT.md §3.1). After a rename that did
    // happen although it failed, there is no temporary file left to remove.
    await fs.unlink(temp).catch(() => undefined);
    throw error;
  }
  await syncDir(fs, dirname(path), failed);
}

/**
 * Creates `temp` exclusively; when a file is already there (`EEXIST`),
 * removes that name and creates it again, once. Never opens a file it did not
 * create: writing through a leftover name would write into whatever file it
 * names, another name's too (a hard link).
 */
async function createTemporary(fs: Fs, temp: string, permissions?: number): Promise<FsFile> {
  try {
    return await fs.open(temp, 'createExclusive', permissions);
  } catch (error) {
    if (errorCode(error) !== 'EEXIST') throw error;
  }
  try {
    await fs.unlink(temp);
  } catch (error) {
    if (errorCode(error) !== 'ENOENT') throw error;
  }
  return fs.open(temp, 'createExclusive', permissions);
}

/** Fsyncs directory `path`, handing a failure to `failed`. */
export async function syncDir(fs: Fs, path: string, failed: FsyncFailure): Promise<void> {
  try {
    await fs.syncDir(path);
  } catch (error) {
    failed(error, `fsync of directory ${path}`);
  }
}

/**
 * Dirty tracking for one file. A write bumps the generation when it
 * completes; a flush covers the generation current when it starts, so a file
 * written during an in-flight flush stays dirty. A flush is skipped when the
 * file is clean and shared when one in flight already covers it.
 */
export class SyncState {
  #generation: number;
  #synced = 0;
  #flushing: { readonly generation: number; readonly done: Promise<void> } | undefined;

  /** `dirty`: start dirty (a file found at open may hold unsynced bytes). */
  constructor(dirty: boolean) {
    this.#generation = dirty ? 1 : 0;
  }

  /** True when written since the last completed flush. */
  get dirty(): boolean {
    return this.#generation > this.#synced;
  }

  /**
   * True while an asynchronous flush (`flush`) is in flight. `flushNow` must
   * not run beside it: of two fdatasyncs of one file in flight together, the
   * one that does not report a write-back error may return success after the
   * other reported it (Linux), and a synchronous one would return before the
   * store could learn of the failure.
   */
  get flushing(): boolean {
    return this.#flushing !== undefined;
  }

  /** Records a completed write (or truncate). */
  written(): void {
    this.#generation++;
  }

  /** Flushes with `fdatasync` unless clean or already being flushed far enough. */
  flush(fdatasync: () => Promise<void>): Promise<void> {
    const target = this.#generation;
    if (this.#synced >= target) return Promise.resolve();
    if (this.#flushing !== undefined && this.#flushing.generation >= target) {
      return this.#flushing.done;
    }
    const done = this.#run(fdatasync, target);
    this.#flushing = { generation: target, done };
    return done;
  }

  /**
   * `flush` done synchronously with `fdatasyncSync`, unless clean. It covers
   * every write completed before it; callers do not call it while a flush
   * is in flight (see `flushing`).
   */
  flushNow(fdatasyncSync: () => void): void {
    const target = this.#generation;
    if (this.#synced >= target) return;
    fdatasyncSync();
    if (target > this.#synced) this.#synced = target;
  }

  async #run(fdatasync: () => Promise<void>, target: number): Promise<void> {
    await Promise.resolve(); // let flush() record this run first
    try {
      await fdatasync();
      if (target > this.#synced) this.#synced = target;
    } finally {
      if (this.#flushing?.generation === target) this.#flushing = undefined;
    }
  }
}

/** Waits for every promise, then rejects with the first failure (no rejection is left unhandled). */
export async function settleAll(work: readonly Promise<unknown>[]): Promise<void> {
  const results = await Promise.allSettled(work);
  for (const result of results) if (result.status === 'rejected') throw result.reason;
}

/**
 * The `Fs` a store uses once open: every call passes through, except that
 * `fdatasync`, `fdatasyncSync`, `pwriteDurable` and `syncDir` are refused
 * (with the latched failure) once the store has latched one. An operation already in flight when another one's
 * fsync failed must not issue a second fsync: after a failed fsync no later
 * one can be trusted (the kernel may have marked the lost pages clean).
 */
export function latchedFs(fs: Fs, latched: () => Error | undefined): Fs {
  const fdatasync: Fs['fdatasync'] = (file) => {
    const failure = latched();
    return failure === undefined ? fs.fdatasync(file) : Promise.reject(failure);
  };
  const syncDir: Fs['syncDir'] = (path) => {
    const failure = latched();
    return failure === undefined ? fs.syncDir(path) : Promise.reject(failure);
  };
  const fdatasyncSync: Fs['fdatasyncSync'] =
    fs.fdatasyncSync === undefined
      ? undefined
      : (file) => {
          const failure = latched();
          if (failure !== undefined) throw failure;
          fs.fdatasyncSync!(file);
        };
  const pwriteDurable: Fs['pwriteDurable'] =
    fs.pwriteDurable === undefined
      ? undefined
      : (file, bytes, position) => {
          const failure = latched();
          return failure === undefined
            ? fs.pwriteDurable!(file, bytes, position)
            : Promise.reject(failure);
        };
  return new Proxy(fs, {
    get(target, property) {
      if (property === 'fdatasync') return fdatasync;
      if (property === 'fdatasyncSync') return fdatasyncSync;
      if (property === 'pwriteDurable') return pwriteDurable;
      if (property === 'syncDir') return syncDir;
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}
