/**
 * The file-system layer under the file backends. Every file-system call a
 * backend makes goes through an {@link Fs}, so tests can swap in a simulated
 * power-loss file system (`CrashFs`) or a fault injector (`FaultFs`), and
 * audits can record the exact calls.
 *
 * Errors: implementations reject with Node-style errors carrying `code`
 * (`ENOENT`, `EEXIST`, `EIO`, `ENOSPC`, …) and `syscall`, as `node:fs` does;
 * the stores translate them into `WalError`s. `lock` rejects with
 * `LockedError` (`WAL_LOCKED`) when the lock is held.
 */

/** An open file. Opaque: only the `Fs` that opened it may use it. */
export interface FsFile {
  /** The path it was opened with. */
  readonly path: string;
}

/**
 * How to open a file: `read` (must exist, read-only), `write` (must exist,
 * read-write), `create` (read-write, created empty if missing),
 * `createExclusive` (read-write, must not exist: `EEXIST`).
 */
export type OpenMode = 'read' | 'write' | 'create' | 'createExclusive';

/** A held exclusive lock. */
export interface FsLock {
  /** Releases the lock. Idempotent; never rejects. */
  release(): Promise<void>;
}

/**
 * The file-system calls @wal's file backends make. All asynchronous, except
 * the optional synchronous pair `pwriteSync` / `fdatasyncSync`, which a store
 * uses only for `writeNow` / `syncNow` (a log opened with `blockingSync`),
 * and the optional `preadSync`, which @wal/lsm uses for a small table read.
 */
export interface Fs {
  /**
   * Opens `path` in `mode`. A file the call creates gets the permission bits
   * `permissions` (default `0o644`) less the process's umask; an existing
   * file keeps its own. An implementation without permissions (an
   * in-memory one) ignores them.
   */
  open(path: string, mode: OpenMode, permissions?: number): Promise<FsFile>;
  /** Closes a file. A file is closed at most once. */
  close(file: FsFile): Promise<void>;
  /** Writes `bytes` at `position`; resolves with the count written (may be short). */
  pwrite(file: FsFile, bytes: Uint8Array, position: number): Promise<number>;
  /** Reads into `into` from `position`; resolves with the count read (0 at end of file). */
  pread(file: FsFile, into: Uint8Array, position: number): Promise<number>;
  /**
   * Optional: {@link Fs.pread} done synchronously, returning the count read
   * (0 at end of file) and throwing what `pread` would reject with. It
   * blocks the event loop for the read: worth it for a small read the page
   * cache most likely holds (a few microseconds, where a trip through
   * libuv's thread pool costs tens), not for large or cold reads. Callers
   * fall back to `pread` when an `Fs` does not have it.
   */
  preadSync?(file: FsFile, into: Uint8Array, position: number): number;
  /** Flushes the file's data (and the size) to stable storage. */
  fdatasync(file: FsFile): Promise<void>;
  /**
   * `pwrite`, done synchronously on the calling thread (it blocks the event
   * loop for the call); returns the count written (may be short); throws
   * what `pwrite` rejects with. Optional: a file system without it is never
   * written synchronously.
   */
  pwriteSync?(file: FsFile, bytes: Uint8Array, position: number): number;
  /**
   * `fdatasync`, done synchronously on the calling thread (it blocks the
   * event loop for the whole flush); throws what `fdatasync` rejects with.
   * Optional, like `pwriteSync`.
   */
  fdatasyncSync?(file: FsFile): void;
  /**
   * `pwrite` whose bytes are durable when it resolves, as if an `fdatasync`
   * covering exactly the bytes written had followed it (an `O_DSYNC` write:
   * one call where `pwrite` + `fdatasync` take two). Resolves with the count
   * written (may be short; what was written is durable). Need not make any
   * other write to the file durable (callers must not rely on it doing so or
   * not). A rejection with `syscall` `'open'` wrote nothing: the call could
   * not open (or check) the descriptor it writes through, and the file is as
   * it was. After any other failure the durability of the bytes is unknown,
   * as after a failed `fdatasync`: callers latch it. Optional: callers fall
   * back to `pwrite` + `fdatasync` when an `Fs` does not have it.
   */
  pwriteDurable?(file: FsFile, bytes: Uint8Array, position: number): Promise<number>;
  /** Sets the file's length, cutting or zero-extending. */
  ftruncate(file: FsFile, length: number): Promise<void>;
  /** The file's current length. */
  size(file: FsFile): Promise<number>;
  /**
   * The file's link count (`st_nlink` of its `fstat`): how many directory
   * entries name it — 1 for a file with one name, more once hard links were
   * made to it, 0 once every name was removed. A file store refuses to open
   * a file with more than one name writable: its lock, named after one name,
   * would not keep out a writer that came through another.
   */
  links(file: FsFile): Promise<number>;
  /**
   * Optional: the link count of the file at `path` (`stat`'s `nlink`,
   * symbolic links followed), as {@link Fs.links} gives it for an open file,
   * without opening it: one call where an open, a `links` and a close take
   * three. Rejects with `ENOENT` when nothing is at `path`. A segmented store
   * counts the names of the segments a writable open would write in place
   * with it (falling back to `open`, `links` and `close` when an `Fs` does
   * not have it).
   */
  linksAt?(path: string): Promise<number>;
  /**
   * The canonical absolute path of `path`, as `realpath(3)` gives it: every
   * symbolic link in it resolved, no `.` or `..` components. Rejects with
   * `ENOENT` when `path`, or a link it goes through, names nothing (a
   * dangling link too), and `ENOTDIR` when a component is not a directory.
   * A file store names its lock and metadata files after the resolved path
   * of its data file, so that every path to one file reaches one lock.
   */
  realpath(path: string): Promise<string>;
  /** Renames `from` to `to`, replacing `to` atomically. */
  rename(from: string, to: string): Promise<void>;
  /** Removes a file. */
  unlink(path: string): Promise<void>;
  /** Names of the entries of a directory, in no particular order. */
  readdir(path: string): Promise<string[]>;
  /**
   * Creates a directory with the permission bits `permissions` (default
   * `0o755`) less the umask; resolves `false` when it already existed (its
   * permissions unchanged). Not recursive.
   */
  mkdir(path: string, permissions?: number): Promise<boolean>;
  /** Flushes a directory's entries (creates, renames, unlinks) to stable storage. */
  syncDir(path: string): Promise<void>;
  /**
   * Takes the exclusive lock named by `path` (a lock file). Rejects with
   * `LockedError` when another holder, in this process or another, has it; a
   * lock whose holder died is taken over. The lock file (and any file the
   * protocol creates beside it) gets `permissions` (default `0o644`) less
   * the umask.
   */
  lock(path: string, permissions?: number): Promise<FsLock>;
}

/** The {@link Fs} methods, as named in call logs, fault rules and audits. */
export type FsMethod = keyof Fs;

/** The methods of {@link Fs} that are not optional. */
type RequiredFsMethod = { [K in FsMethod]-?: undefined extends Fs[K] ? never : K }[FsMethod];

/** Every required method once (the compiler refuses a missing or optional one). */
const REQUIRED: Record<RequiredFsMethod, true> = {
  open: true,
  close: true,
  pwrite: true,
  pread: true,
  fdatasync: true,
  ftruncate: true,
  size: true,
  links: true,
  realpath: true,
  rename: true,
  unlink: true,
  readdir: true,
  mkdir: true,
  syncDir: true,
  lock: true,
};

/**
 * The methods every {@link Fs} has, its optional ones (`preadSync`,
 * `pwriteSync`, `fdatasyncSync`, `pwriteDurable`, `linksAt`) aside: what a wrapper must
 * pass on, and what an option taking an `Fs` can check for.
 */
export const FS_METHODS: readonly FsMethod[] = Object.freeze(
  Object.keys(REQUIRED) as RequiredFsMethod[],
);
