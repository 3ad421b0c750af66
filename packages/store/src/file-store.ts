import { basename, dirname, join, resolve } from 'node:path';
import {
  CorruptionError,
  errorCode,
  invalidArgType,
  isArgumentError,
  LockedError,
  NotALogError,
  toWalError,
} from '@wal/errors';
import type { Fs, FsFile, FsLock } from './fs/fs.js';
import {
  failOpen,
  latchedFs,
  missingForReadOnly,
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
import { DEFAULT_FILE_MODE, validateMode } from './fs/mode.js';
import { NodeFs } from './fs/node-fs.js';
import { foreignSibling, identifyLog, refusal } from './log-identity.js';
import { decodeMeta, encodeMeta, MAX_META_FILE_SIZE, splitMeta } from './meta-file.js';
import type { MetaValue, StoreMeta, StoreSupports } from './store.js';
import { StoreBase } from './store-base.js';

/** Metadata key holding the head of a {@link FileStore}. */
const HEAD_KEY = 'store.head';

/** Options of {@link FileStore.open}. */
export interface FileStoreOptions {
  /** The file system to go through (default: a {@link NodeFs}). Tests pass `CrashFs` or `FaultFs`. */
  readonly fs?: Fs;
  /**
   * Open read-only (default false): take no lock and change nothing on disk
   * (the file and its metadata are only read; the file must exist). Mutating
   * calls reject with `WAL_READ_ONLY`; {@link FileStore.refresh} re-reads the
   * head and the length. Works while a writable handle holds the lock.
   */
  readonly readOnly?: boolean;
  /**
   * Take over an existing file without metadata even though its first frame
   * does not check (default false: such a file is refused with
   * `WAL_NOT_A_LOG`, since it is most likely not a log). For a wal-db 1.x
   * log whose only record was torn. A writable open then writes the
   * metadata file, and the log's recovery cuts what does not check — all of
   * the file's bytes when not one frame does. Never applies to a file whose
   * `<path>.meta` is not log metadata, nor to a directory.
   */
  readonly adopt?: boolean;
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
   * Permission bits of every file this store creates (the data file, the
   * metadata file, the lock file and their temporary files), less the
   * process's umask: an integer in `[0o600, 0o777]` with the owner read and
   * write bits set (`ERR_OUT_OF_RANGE` otherwise). Default `0o644`
   * ({@link DEFAULT_FILE_MODE}), as LevelDB and SQLite. Existing files keep
   * their permissions. `0o600` keeps a log holding private data readable by
   * its owner only.
   */
  readonly mode?: number;
}

/** The keys of {@link FileStoreOptions}: any other is refused. */
const OPTION_KEYS: ReadonlySet<string> = new Set(
  Object.keys({
    fs: true,
    readOnly: true,
    adopt: true,
    checkMeta: true,
    mode: true,
  } satisfies Record<keyof FileStoreOptions, true>),
);

/**
 * A `Store` in one file, written and read positionally, with two sidecar files:
 * `<path>.meta` (the metadata map, replaced atomically) and `<path>.lock` (the
 * exclusive lock), where `<path>` is the file's resolved path
 * ({@link FileStore.realPath}: symbolic links resolved), so that every path
 * to the file meets one lock. A file with more than one name (hard links) is
 * refused writable with `WAL_LOCKED`: no lock named after one name guards it.
 *
 * Guarantees: `sync()` fdatasyncs the data file (skipped when nothing was
 * written since the last flush; the first `sync()` after open always flushes,
 * and fsyncs the directory, since a killed process may have left unflushed
 * bytes). Creating the data file fsyncs its directory, and so does writing
 * the first metadata of a file found without it. `truncate()` cuts the
 * file and fdatasyncs it before resolving; a failed ftruncate latches the
 * store (`WAL_FAILED`), as a failed fsync does. `truncateBefore()` records the new
 * head durably in the metadata file but reclaims no space
 * (`supports.prefixReclaim` is false): the bytes below the head stay in the
 * file and are never read again through this store.
 *
 * Read-only (`readOnly: true`): no lock, no file created, no write, truncate
 * or fsync; the data file is opened with mode `read` and `<path>.meta` only
 * read. `write`, `sync`, `truncate`, `truncateBefore` and `updateMeta` reject
 * with `WAL_READ_ONLY`; `refresh()` re-reads the head (from `<path>.meta`) and
 * the length (the file's size), so a reader follows a writer in another
 * handle or process.
 *
 * What it opens (docs/FORMAT.md §3.1): a missing path or an empty file
 * (a new log), a file with log metadata, or a file without metadata whose
 * first frame checks (a wal-db 1.x log). Anything else — a user's file, a
 * directory — is refused with `WAL_NOT_A_LOG` before anything is taken or
 * written: no lock file, no metadata, no truncation. So is a missing path
 * beside a `<path>.meta`, `<path>.meta.tmp`, `<path>.lock` or
 * `<path>.lock.break` that is not ours, and a `<path>.lock` that is not a
 * lock file of ours beside a log. A writable open leaves
 * the file with a metadata file (written at once when there was none); one
 * that created the file and then fails removes it again.
 *
 * Errors: `open` rejects with `WAL_NOT_A_LOG` (see above; `adopt` takes over
 * a file without metadata whose first frame does not check), `WAL_LOCKED` when another handle (in this or
 * another process) holds the lock (never for a read-only open), `WAL_IO` with
 * `errno` `ENOENT` for a read-only open of a missing file, `WAL_CORRUPTION` when the metadata file is
 * damaged, `WAL_IO` / `WAL_NO_SPACE` on I/O failures; it releases everything
 * it took before rejecting. Afterwards as the `Store` contract says: any failed
 * fsync (data, directory, metadata) latches `WAL_FAILED`.
 */
export class FileStore extends StoreBase {
  /** Durable, persistent, locked; no prefix reclaim (one file). */
  readonly supports: StoreSupports = Object.freeze({
    durable: true,
    persistent: true,
    prefixReclaim: false,
    locking: true,
  });

  /** Path of the data file, as given to {@link FileStore.open}. */
  readonly path: string;
  /**
   * The data file's resolved path: {@link FileStore.path} with every
   * symbolic link resolved (`Fs.realpath`; for a file the open created, the
   * resolved directory joined with its name). The lock (`<realPath>.lock`)
   * and the metadata (`<realPath>.meta`) are named after it, so every path
   * to the file reaches the same lock and metadata.
   */
  readonly realPath: string;
  /** Permission bits of the files this store creates (before the umask): the `mode` option. */
  readonly mode: number;
  readonly #fs: Fs;
  /** The file system as given, not latched: for `updateMetaAfterFailure` only. */
  readonly #rawFs: Fs;
  readonly #file: FsFile;
  readonly #lock: FsLock | undefined;
  readonly #data: SyncState;
  #dirDirty: boolean;

  private constructor(
    path: string,
    realPath: string,
    fs: Fs,
    file: FsFile,
    lock: FsLock | undefined,
    state: { head: number; length: number; user: StoreMeta; dirty: boolean; mode: number },
  ) {
    super('file store', lock === undefined);
    this.path = path;
    this.realPath = realPath;
    this.mode = state.mode;
    this.#fs = latchedFs(fs, () => this.failure);
    this.#rawFs = fs;
    this.#file = file;
    this.#lock = lock;
    this.headOffset = state.head;
    this.lengthOffset = state.length;
    this.#data = new SyncState(state.dirty);
    this.#dirDirty = state.dirty;
    this.initMeta(state.user);
  }

  /**
   * Opens (creating if missing) the file store at `path`. First checks that
   * `path` is a log or nothing (docs/FORMAT.md §3.1), reading only, and
   * resolves it (symbolic links; a writable open refuses a file with more
   * than one name with `WAL_LOCKED`, before anything is taken); then, `<path>`
   * standing for the resolved path, takes the lock `<path>.lock`, opens the
   * file (refusing it if it gained a name meanwhile), reads the head from
   * `<path>.meta` (and writes that file if it is missing); the length is the
   * file's size (or the head, if larger: bytes between read as zeros).
   *
   * With `readOnly: true` the file must exist: it is opened with mode `read`,
   * no lock is taken and nothing is written.
   *
   * Rejects with `ERR_INVALID_ARG_VALUE` for an option key that is not one of
   * {@link FileStoreOptions} (a misspelt option), before anything is done.
   * Rejects with `WAL_NOT_A_LOG` (nothing changed), `WAL_LOCKED`,
   * `WAL_CORRUPTION` (damaged metadata), `WAL_IO` or `WAL_NO_SPACE`; on
   * rejection nothing stays open or locked.
   */
  static async open(path: string, options: FileStoreOptions = {}): Promise<FileStore> {
    validateOpenArguments('path', path, options, OPTION_KEYS);
    if (options.adopt !== undefined && typeof options.adopt !== 'boolean') {
      throw invalidArgType('options.adopt', 'a boolean', options.adopt);
    }
    const { mode = DEFAULT_FILE_MODE } = options;
    validateMode('options.mode', mode);
    const fs = options.fs ?? new NodeFs();
    const readOnly = options.readOnly === true;
    const identity = await identifyLog(path, { fs }).catch((error: unknown) => {
      throw toWalError(error, `examining ${path}`);
    });
    if (!readOnly && identity.links !== undefined && identity.links > 1) {
      // Before anything is taken or created; and before judging the file by
      // the metadata beside this one name, which another name may not share.
      throw linkedError(path, identity.links);
    }
    // Opened through a link, before the file is judged by the metadata beside
    // its real name: none of an earlier release may wait beside the link.
    if (identity.realPath !== undefined && identity.realPath !== resolve(path)) {
      const stray = await linkSidecar(fs, path, identity.realPath).catch((error: unknown) => {
        throw toWalError(error, `examining the files beside ${path}`);
      });
      if (stray !== undefined) {
        throw new NotALogError(
          path,
          `a link to ${identity.realPath} beside ${stray}, a file an earlier release named after the link (it kept a log's lock and metadata beside the name it was opened by); once no writer of that release holds the log, ${stray.endsWith('.meta') ? `move ${stray} to ${identity.realPath}.meta` : `remove ${stray}`}, then open it again`,
        );
      }
    }
    const refused =
      refusal(path, identity, 'file', options.adopt === true) ??
      (identity.type === 'missing'
        ? await foreignSibling(path, { fs }).catch((error: unknown) => {
            throw toWalError(error, `examining the files beside ${path}`);
          })
        : undefined);
    if (refused !== undefined) throw refused;
    // Every name below is the resolved one: a log opened through a symbolic
    // link takes the lock (and reads the metadata) of the file it names.
    const real =
      identity.realPath ??
      (await resolveMissing(fs, path).catch((error: unknown) => {
        throw toWalError(error, `resolving ${path}`);
      }));
    if (readOnly) return FileStore.#openReadOnly(path, real, fs, mode);
    let lock: FsLock | undefined;
    let file: FsFile | undefined;
    let created = false;
    let wroteMeta = false;
    try {
      lock = await fs.lock(`${real}.lock`, mode);
      try {
        file = await fs.open(real, 'write');
      } catch (error) {
        if (errorCode(error) !== 'ENOENT') throw error;
        file = await fs.open(real, 'createExclusive', mode);
        created = true;
        await syncDir(fs, dirname(real), failOpen);
      }
      if (!created) await refuseLinked(fs, file, path);
      const { head, user, stored } = await readHead(fs, real);
      options.checkMeta?.(user);
      if (!stored) {
        // A file found here may have been created by a killed open whose
        // directory fsync never ran: make its entry durable before creating
        // `<path>.meta.tmp`, so that no power loss leaves that file beside
        // nothing (docs/FORMAT.md §3.1 refuses a .meta.tmp beside nothing).
        if (!created) await syncDir(fs, dirname(real), failOpen);
        wroteMeta = true;
        await replaceFile(fs, `${real}.meta`, encodeMeta(user), failOpen, mode);
      }
      const size = await fs.size(file);
      return new FileStore(path, real, fs, file, lock, {
        head,
        length: Math.max(size, head),
        user,
        dirty: !created,
        mode,
      });
    } catch (error) {
      if (file !== undefined) await fs.close(file).catch(() => undefined);
      // A refused open leaves nothing behind: not even the empty file it
      // created, nor the metadata it began to write beside it.
      if (created) await removeCreated(fs, real, wroteMeta);
      await lock?.release();
      throw isArgumentError(error) ? error : toWalError(error, `opening file store ${path}`);
    }
  }

  static async #openReadOnly(path: string, real: string, fs: Fs, mode: number): Promise<FileStore> {
    let file: FsFile | undefined;
    try {
      file = await fs.open(real, 'read').catch((error: unknown) => {
        throw missingForReadOnly(error, 'file store', path);
      });
      const { head, user } = await readHead(fs, real);
      const size = await fs.size(file);
      return new FileStore(path, real, fs, file, undefined, {
        head,
        length: Math.max(size, head),
        user,
        dirty: false,
        mode,
      });
    } catch (error) {
      if (file !== undefined) await fs.close(file).catch(() => undefined);
      throw toWalError(error, `opening file store ${path} read-only`);
    }
  }

  /**
   * `refresh()` of a read-only handle: re-reads the head and the metadata
   * from `<path>.meta` and the length from the file's size.
   */
  protected override async doRefresh(): Promise<void> {
    const { head, user } = await readHead(this.#fs, this.realPath);
    const size = await this.#fs.size(this.#file);
    this.headOffset = head;
    this.lengthOffset = Math.max(size, head);
    this.initMeta(user);
  }

  protected async doWrite(offset: number, bytes: Uint8Array): Promise<void> {
    await writeAll(this.#fs, this.#file, bytes, offset);
    this.#data.written();
  }

  /**
   * One `pwriteDurable` (through {@link writeAllDurable}: more only after a
   * short write) once the file's directory entry is known durable and the
   * `Fs` has the call. Otherwise — the first durable write after opening a
   * file that existed (a killed process may have left its entry unsynced),
   * or an `Fs` without `pwriteDurable` — `doWrite`, then `doSync` (the
   * file's fdatasync and, when due, its directory's fsync). A failed
   * `pwriteDurable`, fdatasync or directory fsync latches; a failed
   * `doWrite` does not.
   */
  protected doWriteDurable(offset: number, bytes: Uint8Array): Promise<void> {
    if (!this.#dirDirty && this.#fs.pwriteDurable !== undefined) {
      return writeAllDurable(this.#fs, this.#file, bytes, offset, this.#durableWriteFailed);
    }
    return this.doWrite(offset, bytes).then(() => this.doSync());
  }

  protected override doWriteNow(offset: number, bytes: Uint8Array): boolean {
    if (this.#fs.pwriteSync === undefined) return false;
    writeAllSync(this.#fs, this.#file, bytes, offset);
    this.#data.written();
    return true;
  }

  protected override doSyncNow(): boolean {
    if (this.#dirDirty || this.#fs.fdatasyncSync === undefined) return false;
    // Not beside an fdatasync in flight: its failure could go unseen here.
    if (this.#data.dirty && this.#data.flushing) return false;
    this.#data.flushNow(() => {
      try {
        this.#fs.fdatasyncSync!(this.#file);
      } catch (error) {
        this.#dataFsyncFailed(error, `fdatasync of ${this.path}`);
      }
    });
    return true;
  }

  protected async doReadInto(offset: number, into: Uint8Array): Promise<void> {
    const count = await readFull(this.#fs, this.#file, into, offset);
    into.fill(0, count); // past the file's end: zeros
  }

  protected async doSync(): Promise<void> {
    const work = [
      this.#data.flush(async () => {
        try {
          await this.#fs.fdatasync(this.#file);
        } catch (error) {
          this.#dataFsyncFailed(error, `fdatasync of ${this.path}`);
        }
      }),
    ];
    if (this.#dirDirty) {
      work.push(
        syncDir(this.#fs, dirname(this.realPath), this.#fsyncFailed).then(() => {
          this.#dirDirty = false;
        }),
      );
    }
    await settleAll(work);
  }

  protected async doTruncate(length: number): Promise<void> {
    try {
      await this.#fs.ftruncate(this.#file, length);
    } catch (error) {
      // The file's length is unknown now: bytes past the cut may or may not
      // be there, so no later write or sync can be trusted (as SegmentedStore).
      this.latch(toWalError(error, 'truncate'), `truncating ${this.path} to ${length}`);
    }
    this.#data.written();
    await this.doSync();
  }

  protected async doTruncateBefore(offset: number): Promise<void> {
    await this.#writeMeta(this.currentMeta, offset);
  }

  protected async doUpdateMeta(next: StoreMeta): Promise<void> {
    await this.#writeMeta(next, this.headOffset);
  }

  protected override async doUpdateMetaAfterFailure(next: StoreMeta): Promise<void> {
    await this.#writeMeta(next, this.headOffset, true);
  }

  /** `afterFailure`: through the file system as given, latching nothing (`updateMetaAfterFailure`). */
  async #writeMeta(user: StoreMeta, head: number, afterFailure = false): Promise<void> {
    const meta: Record<string, MetaValue> = { ...user };
    if (head > 0) meta[HEAD_KEY] = head;
    await replaceFile(
      afterFailure ? this.#rawFs : this.#fs,
      `${this.realPath}.meta`,
      encodeMeta(meta),
      afterFailure ? failOpen : this.#fsyncFailed,
      this.mode,
    );
  }

  readonly #fsyncFailed = (cause: unknown, what: string): never =>
    this.latch(toWalError(cause, what), what);

  /** A failed fdatasync of the log's file: `updateMetaAfterFailure` may still record. */
  readonly #dataFsyncFailed = (cause: unknown, what: string): never =>
    this.latchData(toWalError(cause, what), what);

  /** Latches a failed `pwriteDurable` at `position` (the store's offset: one file). */
  readonly #durableWriteFailed = (cause: unknown, position: number): never =>
    this.durableWriteFailed(cause, position);

  protected async doClose(): Promise<void> {
    let failure: unknown;
    await this.#fs.close(this.#file).catch((error: unknown) => {
      failure = error;
    });
    await this.#lock?.release();
    if (failure !== undefined && this.failure === undefined) {
      throw toWalError(failure, `closing ${this.path}`);
    }
  }
}

/**
 * The resolved path of a missing `path` (`identifyLog` resolves one that is
 * there): its directory's resolved path (`Fs.realpath`) joined with its
 * name, so that a log created through a linked directory is named as it
 * will resolve once created; `path` as given when its directory is missing
 * too, or below a file (the open then fails on it). A dangling symbolic link
 * keeps its own name: its open fails (`EEXIST`) as it always did, and never
 * creates the file it points to.
 */
async function resolveMissing(fs: Fs, path: string): Promise<string> {
  try {
    return join(await fs.realpath(dirname(path)), basename(path));
  } catch (error) {
    if (errorCode(error) === 'ENOENT' || errorCode(error) === 'ENOTDIR') return path;
    throw error;
  }
}

/**
 * The `WAL_LOCKED` refusal of a writable open of `path`, whose file has
 * `links` names (hard links): its lock and metadata are named after one
 * name, so a writer coming through another would take another lock, read
 * other metadata and write over this one's records.
 */
/**
 * The `.meta` or `.lock` beside `path`, when `path` is a link to another
 * file (`real`) and that sidecar is not the file's own: what a release that
 * named them after the path given (before the link rule, FORMAT.md §3.1)
 * left there. Opening the file by its own names would miss its metadata
 * (its head, its durable hint) or a writer of that release holding it.
 */
async function linkSidecar(fs: Fs, path: string, real: string): Promise<string | undefined> {
  for (const suffix of ['.meta', '.lock']) {
    const beside = `${path}${suffix}`;
    let resolved: string;
    try {
      resolved = await fs.realpath(beside);
    } catch (error) {
      if (errorCode(error) === 'ENOENT') continue;
      throw error;
    }
    if (resolved !== `${real}${suffix}`) return beside;
  }
  return undefined;
}

function linkedError(path: string, links: number): LockedError {
  return new LockedError(path, {
    reason:
      `the file has ${links} names (hard links), and a lock named after one of them ` +
      'would not keep out a writer opening it through another; open it through a ' +
      'single name (remove the other links) or open it read-only',
  });
}

/**
 * Rejects with {@link linkedError} when the file opened for writing has more
 * than one name: checked again on the descriptor, under the lock and before
 * anything is written, for a link made since the open examined the path. A
 * read-only open takes no lock and skips it.
 */
async function refuseLinked(fs: Fs, file: FsFile, path: string): Promise<void> {
  const links = await fs.links(file);
  if (links > 1) throw linkedError(path, links);
}

/**
 * Reads the head and the caller's metadata from `<path>.meta` (both empty
 * when it is missing; `stored` tells).
 */
async function readHead(
  fs: Fs,
  path: string,
): Promise<{ head: number; user: StoreMeta; stored: boolean }> {
  const encoded = await readWhole(fs, `${path}.meta`, MAX_META_FILE_SIZE);
  const meta = encoded === undefined ? {} : decodeMeta(encoded, `${path}.meta`);
  const { own, user } = splitMeta(meta);
  const head = own[HEAD_KEY] ?? 0;
  if (typeof head !== 'number' || !Number.isSafeInteger(head) || head < 0) {
    throw new CorruptionError(`metadata file ${path}.meta holds an invalid head`);
  }
  return { head, user, stored: encoded !== undefined };
}

/**
 * The clean-up of an open that created the data file `path` and then
 * failed: removes `<path>.meta.tmp` and `<path>.meta` when this open began to
 * write them (`wroteMeta`; none was there before, as the file was new), fsyncs
 * the directory so that those removals are durable before the data file's,
 * then removes the data file — which it keeps (empty, what a killed open
 * leaves) when that fsync fails. Best effort: other failures are ignored,
 * and the open's own error is what its caller sees. Without the fsync a
 * power loss could bring back a `.meta.tmp` beside nothing, which every
 * later open would refuse (docs/FORMAT.md §3.1).
 */
async function removeCreated(fs: Fs, path: string, wroteMeta: boolean): Promise<void> {
  const ignore = (): undefined => undefined;
  if (wroteMeta) {
    await fs.unlink(`${path}.meta.tmp`).catch(ignore);
    await fs.unlink(`${path}.meta`).catch(ignore);
    try {
      await fs.syncDir(dirname(path));
    } catch {
      return;
    }
  }
  await fs.unlink(path).catch(ignore);
}
