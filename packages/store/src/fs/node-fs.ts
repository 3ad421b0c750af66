/**
 * `NodeFs`: the real {@link Fs}. A file is opened as a `node:fs/promises`
 * file handle, kept for the file's whole life and closed through it; its hot
 * calls (positional reads and writes, `fdatasync`, truncation, size) use the
 * callback API on the handle's descriptor, wrapped in one promise each, which
 * costs the event loop far less per call than the handle's own methods. Every
 * call runs on libuv's thread pool and nothing blocks the event loop (see
 * the package README, "Why promise fs calls", for the measurements behind
 * that choice), except the synchronous calls a caller asks for by name
 * (`preadSync`, `pwriteSync`, `fdatasyncSync`).
 */
import { randomBytes } from 'node:crypto';
import {
  close,
  constants,
  fdatasync,
  fdatasyncSync,
  fstat,
  ftruncate,
  open as openFd,
  read,
  readSync,
  write,
  writeSync,
} from 'node:fs';
import {
  type FileHandle,
  link,
  mkdir,
  open,
  readdir,
  realpath,
  rename,
  stat,
  unlink,
  writeFile,
} from 'node:fs/promises';
import { hostname } from 'node:os';
import { errorCode, LockedError, NotALogError } from '@wal/errors';
import type { Fs, FsFile, FsLock, OpenMode } from './fs.js';
import {
  damagedLockHint,
  holderState,
  type LockOwner,
  readLockFile,
  startTimeOf,
} from './lock-file.js';
import { DEFAULT_FILE_MODE, directoryMode } from './mode.js';
import { openChecked } from './regular-file.js';

const FLAGS: Readonly<Record<OpenMode, number>> = {
  read: constants.O_RDONLY,
  write: constants.O_RDWR,
  create: constants.O_RDWR | constants.O_CREAT,
  createExclusive: constants.O_RDWR | constants.O_CREAT | constants.O_EXCL,
};

type Done<T> = (error: NodeJS.ErrnoException | null, value: T) => void;

/** `O_DSYNC`, where the platform has it (not on Windows). */
const O_DSYNC: number | undefined = constants.O_DSYNC;

/**
 * A file open through {@link NodeFs}. Its descriptor is never used after
 * its close, nor after its number was reused by another open file: every
 * call is counted in flight; once {@link NodeFile.close} has begun, a call
 * rejects without touching the descriptor, with the error a closed
 * `FileHandle` gives (`EBADF`, "file closed", the call's `syscall`); and
 * `close` closes the handle only once no call is in flight.
 */
class NodeFile implements FsFile {
  #inFlight = 0;
  #drained: (() => void) | undefined;
  #closing: Promise<void> | undefined;
  /** The `O_DSYNC` descriptor of {@link NodeFile.pwriteDurable}, once opened. */
  #durableFd: number | undefined;
  /** Its opening, shared by the calls that wait for it. */
  #durableOpening: Promise<number> | undefined;

  constructor(
    readonly path: string,
    readonly handle: FileHandle,
    readonly writable: boolean,
  ) {}

  /**
   * One `fs.write` on a second descriptor of the file, opened on first use
   * with `O_RDWR | O_DSYNC`: the kernel has the bytes on stable storage, with
   * the size and metadata needed to read them, when the call returns, as an
   * `fdatasync` of that range would; one trip through the thread pool.
   * A failure to open or check that descriptor (its `fstat`s), or a path
   * that names another file now (`ESTALE`), rejects with `syscall` `'open'`,
   * nothing written.
   */
  pwriteDurable(bytes: Uint8Array, position: number): Promise<number> {
    if (!this.writable || this.#closing !== undefined) {
      const message = this.writable ? 'file closed' : 'bad file descriptor';
      return Promise.reject(Object.assign(new Error(message), { code: 'EBADF', syscall: 'write' }));
    }
    if (O_DSYNC === undefined) {
      return this.pwrite(bytes, position).then((count) => this.fdatasync().then(() => count));
    }
    const fd = this.#durableFd;
    if (fd !== undefined) return this.#writeDurable(fd, bytes, position);
    this.#durableOpening ??= this.#openDurable(O_DSYNC).finally(() => {
      this.#durableOpening = undefined;
    });
    return this.#durableOpening.then((durable) => this.#writeDurable(durable, bytes, position));
  }

  #writeDurable(fd: number, bytes: Uint8Array, position: number): Promise<number> {
    return this.#runOn(fd, 'write', (durable, done: Done<number>) => {
      if (bytes.length === 0) done(null, 0);
      else write(durable, bytes, 0, bytes.length, position, done);
    });
  }

  /**
   * Opens the `O_DSYNC` descriptor, checked to name the file the first one
   * names (same device and inode; `ESTALE` otherwise). Counted in flight, so
   * a `close` waits for it, then closes it.
   */
  #openDurable(dsync: number): Promise<number> {
    return this.#run('open', (fd, done: Done<number>) => {
      openFd(this.path, constants.O_RDWR | dsync, (error, durable) => {
        if (error) return done(error, -1);
        fstat(fd, (firstError, first) => {
          fstat(durable, (secondError, second) => {
            const checkError = firstError ?? secondError;
            const failure =
              checkError !== null
                ? this.#uncheckable(checkError)
                : first.dev === second.dev && first.ino === second.ino
                  ? null
                  : Object.assign(new Error(`${this.path} was replaced since it was opened`), {
                      code: 'ESTALE',
                      syscall: 'open',
                      path: this.path,
                    });
            if (failure !== null) {
              close(durable, () => done(failure, -1));
              return;
            }
            this.#durableFd = durable; // before `done`: a close waiting for this call closes it
            done(null, durable);
          });
        });
      });
    });
  }

  /**
   * The failure of the `fstat` that checks the `O_DSYNC` descriptor: a
   * failure of its opening (`syscall` `'open'`, nothing written; see
   * {@link Fs.pwriteDurable}), keeping the `code` and `errno`, with the
   * `fstat` error as its cause.
   */
  #uncheckable(error: NodeJS.ErrnoException): NodeJS.ErrnoException {
    return Object.assign(
      new Error(`cannot check the O_DSYNC descriptor of ${this.path}: ${error.message}`, {
        cause: error,
      }),
      { code: error.code, errno: error.errno, syscall: 'open', path: this.path },
    );
  }

  pwrite(bytes: Uint8Array, position: number): Promise<number> {
    return this.#run('write', (fd, done: Done<number>) => {
      // As FileHandle.write: nothing to transfer, no system call.
      if (bytes.length === 0) done(null, 0);
      else write(fd, bytes, 0, bytes.length, position, done);
    });
  }

  pread(into: Uint8Array, position: number): Promise<number> {
    return this.#run('read', (fd, done: Done<number>) => {
      // As FileHandle.read: nothing to transfer, no system call.
      if (into.length === 0) done(null, 0);
      else read(fd, into, 0, into.length, position, done);
    });
  }

  preadSync(into: Uint8Array, position: number): number {
    const fd = this.handle.fd;
    if (this.#closing !== undefined || fd === -1) {
      throw Object.assign(new Error('file closed'), { code: 'EBADF', syscall: 'read' });
    }
    return into.length === 0 ? 0 : readSync(fd, into, 0, into.length, position);
  }

  fdatasync(): Promise<void> {
    return this.#run('fdatasync', (fd, done: Done<void>) => fdatasync(fd, done));
  }

  /** `fs.writeSync` on the descriptor: blocks the event loop for the write. */
  pwriteSync(bytes: Uint8Array, position: number): number {
    const fd = this.#openFd('write');
    return bytes.length === 0 ? 0 : writeSync(fd, bytes, 0, bytes.length, position);
  }

  /** `fs.fdatasyncSync` on the descriptor: blocks the event loop for the flush. */
  fdatasyncSync(): void {
    fdatasyncSync(this.#openFd('fdatasync'));
  }

  /** The descriptor, or the error a closed `FileHandle` gives (a synchronous call is never in flight). */
  #openFd(syscall: string): number {
    const fd = this.handle.fd;
    if (this.#closing !== undefined || fd === -1) {
      throw Object.assign(new Error('file closed'), { code: 'EBADF', syscall });
    }
    return fd;
  }

  ftruncate(length: number): Promise<void> {
    return this.#run('ftruncate', (fd, done: Done<void>) => ftruncate(fd, length, done));
  }

  size(): Promise<number> {
    return this.#run('fstat', (fd, done: Done<number>) =>
      fstat(fd, (error, stats) => done(error, stats?.size)),
    );
  }

  links(): Promise<number> {
    return this.#run('fstat', (fd, done: Done<number>) =>
      fstat(fd, (error, stats) => done(error, stats?.nlink)),
    );
  }

  /** Closes the handle once no call is in flight; later calls reject. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (
      this.#inFlight === 0
        ? Promise.resolve()
        : new Promise<void>((resolve) => {
            this.#drained = resolve;
          })
    ).then(() => Promise.all([this.handle.close(), this.#closeDurable()]).then(() => undefined));
    return this.#closing;
  }

  /** Closes the `O_DSYNC` descriptor, if it was opened. */
  #closeDurable(): Promise<void> {
    const fd = this.#durableFd;
    if (fd === undefined) return Promise.resolve();
    this.#durableFd = undefined;
    return new Promise((resolve, reject) => {
      close(fd, (error) => (error ? reject(error) : resolve()));
    });
  }

  /** Runs `call` on the file's descriptor, counted in flight until `done`. */
  #run<T>(syscall: string, call: (fd: number, done: Done<T>) => void): Promise<T> {
    return this.#runOn(this.handle.fd, syscall, call);
  }

  /** `#run` on descriptor `fd`: the file's own, or its `O_DSYNC` one. */
  #runOn<T>(fd: number, syscall: string, call: (fd: number, done: Done<T>) => void): Promise<T> {
    if (this.#closing !== undefined || fd === -1) {
      return Promise.reject(Object.assign(new Error('file closed'), { code: 'EBADF', syscall }));
    }
    this.#inFlight++;
    return new Promise<T>((resolve, reject) => {
      try {
        call(fd, (error, value) => {
          this.#leave();
          if (error) reject(error);
          else resolve(value);
        });
      } catch (error) {
        this.#leave(); // an invalid argument, thrown before any I/O
        throw error;
      }
    });
  }

  #leave(): void {
    if (--this.#inFlight === 0 && this.#drained !== undefined) {
      this.#drained();
      this.#drained = undefined;
    }
  }
}

function notOurs(file: FsFile): TypeError {
  return new TypeError(`${file.path} was not opened by this NodeFs`);
}

function nodeFile(file: FsFile): NodeFile {
  if (!(file instanceof NodeFile)) throw notOurs(file);
  return file;
}

/** Whether the holder of `owner` may still run (true when unsure: another host). */
async function isAlive(owner: LockOwner): Promise<boolean> {
  return (await holderState(owner)) !== 'dead';
}

/**
 * The record in lock file `path`: `null` when the file is gone, `undefined`
 * when it holds what a power loss leaves of a record (empty, NUL bytes, or a
 * record cut short; `judgeLockText`).
 * Rejects with `WAL_NOT_A_LOG` (the file untouched) when it is not a lock
 * file of ours: another program's lock file, a user's file, a directory.
 */
async function readOwner(path: string): Promise<LockOwner | undefined | null> {
  const found = await readLockFile(path);
  if (found === 'foreign') {
    throw new NotALogError(
      path,
      `a file that is not a lock file of a log (never taken over; ${damagedLockHint(path)})`,
    );
  }
  return found === 'residue' ? undefined : found;
}

/**
 * The real file system. A file is a `FileHandle` held until `close`, which
 * closes through it (so a file dropped unclosed gets Node's usual warning
 * when collected); positional reads and writes, `fdatasync`, `ftruncate` and
 * `size` run through the callback API on its descriptor (`fs.write`,
 * `fs.read`, `fs.fdatasync`, …), one promise per call, which costs the event
 * loop much less than the handle's methods. A call on a closed file rejects
 * with `EBADF` ("file closed", like a closed `FileHandle`), and `close` waits
 * for the file's calls in flight, so a descriptor is never used once closed
 * or reused. (One difference from the handle's methods: `pread` rejects a
 * position that is not a safe integer ≥ −1 with `ERR_OUT_OF_RANGE`, which
 * `FileHandle.read` accepted.) Directory fsync opens the directory read-only
 * and calls `sync` on it. All calls are promise-based, except `pwriteSync` and
 * `fdatasyncSync` (`fs.writeSync`, `fs.fdatasyncSync`), which block the event
 * loop and serve only a log opened with `blockingSync`, and
 * {@link NodeFs.preadSync} (`fs.readSync`), which blocks it for one read.
 *
 * Locking: Node has no `flock`, so {@link NodeFs.lock} uses a lock file that
 * holds the owner's pid, host name, process start time and a random token.
 * See the method for the protocol and its caveats.
 */
export class NodeFs implements Fs {
  /**
   * Opens `path`, following symlinks. Only a regular file or a directory is
   * ever opened: anything else at the path — a FIFO, whose open would wait
   * for a writer forever, a device, a socket — rejects with `NotALogError`
   * (`WAL_NOT_A_LOG`) naming the path and its kind, before it is opened
   * (checked again on the descriptor, opened `O_NONBLOCK`, which a regular
   * file ignores, so a FIFO put there meanwhile is refused without waiting).
   */
  async open(path: string, mode: OpenMode, permissions = DEFAULT_FILE_MODE): Promise<FsFile> {
    return new NodeFile(path, await openChecked(path, FLAGS[mode], permissions), mode !== 'read');
  }

  close(file: FsFile): Promise<void> {
    return file instanceof NodeFile ? file.close() : Promise.reject(notOurs(file));
  }

  pwrite(file: FsFile, bytes: Uint8Array, position: number): Promise<number> {
    return file instanceof NodeFile ? file.pwrite(bytes, position) : Promise.reject(notOurs(file));
  }

  pread(file: FsFile, into: Uint8Array, position: number): Promise<number> {
    return file instanceof NodeFile ? file.pread(into, position) : Promise.reject(notOurs(file));
  }

  /**
   * {@link NodeFs.pread} done synchronously (`fs.readSync` on the
   * descriptor): blocks the event loop for the read. Throws `EBADF` for a
   * closed file, `ERR_OUT_OF_RANGE` for a bad position, a `TypeError` for a
   * file this `Fs` did not open, and the system's read errors.
   */
  preadSync(file: FsFile, into: Uint8Array, position: number): number {
    if (!(file instanceof NodeFile)) throw notOurs(file);
    return file.preadSync(into, position);
  }

  fdatasync(file: FsFile): Promise<void> {
    return nodeFile(file).fdatasync();
  }

  /**
   * `pwrite` through a second descriptor of the file, opened with
   * `O_RDWR | O_DSYNC` on first use and closed with the file: one `fs.write`,
   * one trip through the thread pool, durable when it resolves as a `pwrite`
   * followed by an `fdatasync` of that range would be (Linux: the bytes, and
   * the size and metadata needed to read them; other unsynced writes to the
   * file stay unsynced). Rejects with `EBADF` for a file opened read-only or
   * closed, `ESTALE` when the path no longer names the file that was opened
   * (renamed or replaced since), a `TypeError` for a file this `Fs` did not
   * open, and the system's open and write errors. Every failure to open the
   * second descriptor or to check it (`fstat`) wrote nothing and rejects with
   * `syscall` `'open'` (the system's `code` kept), as {@link Fs.pwriteDurable}
   * says; the next call tries the opening again. Without `O_DSYNC`
   * (Windows): `pwrite`, then `fdatasync`.
   */
  pwriteDurable(file: FsFile, bytes: Uint8Array, position: number): Promise<number> {
    return file instanceof NodeFile
      ? file.pwriteDurable(bytes, position)
      : Promise.reject(notOurs(file));
  }

  ftruncate(file: FsFile, length: number): Promise<void> {
    return nodeFile(file).ftruncate(length);
  }

  /** `fs.writeSync`: blocks the event loop for the write. */
  pwriteSync(file: FsFile, bytes: Uint8Array, position: number): number {
    return nodeFile(file).pwriteSync(bytes, position);
  }

  /** `fs.fdatasyncSync`: blocks the event loop for the whole flush. */
  fdatasyncSync(file: FsFile): void {
    nodeFile(file).fdatasyncSync();
  }

  size(file: FsFile): Promise<number> {
    return file instanceof NodeFile ? file.size() : Promise.reject(notOurs(file));
  }

  /** `fstat`'s `nlink` on the descriptor. */
  links(file: FsFile): Promise<number> {
    return file instanceof NodeFile ? file.links() : Promise.reject(notOurs(file));
  }

  /** `stat`'s `nlink` of `path` (symbolic links followed); nothing is opened. */
  async linksAt(path: string): Promise<number> {
    return (await stat(path)).nlink;
  }

  /** `fs.promises.realpath`: the canonical path, every symbolic link resolved. */
  realpath(path: string): Promise<string> {
    return realpath(path);
  }

  rename(from: string, to: string): Promise<void> {
    return rename(from, to);
  }

  unlink(path: string): Promise<void> {
    return unlink(path);
  }

  readdir(path: string): Promise<string[]> {
    return readdir(path);
  }

  async mkdir(path: string, permissions = directoryMode(DEFAULT_FILE_MODE)): Promise<boolean> {
    try {
      await mkdir(path, { mode: permissions });
      return true;
    } catch (error) {
      if (errorCode(error) === 'EEXIST') return false;
      throw error;
    }
  }

  async syncDir(path: string): Promise<void> {
    const handle = await open(path, constants.O_RDONLY | (constants.O_DIRECTORY ?? 0));
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  }

  /**
   * Takes the lock file `path`.
   *
   * Protocol: the owner record (pid, host, process start time, random token)
   * is written to a private temporary file, which is then hard-linked to
   * `path`. `link` fails with `EEXIST` atomically, like an exclusive (`'wx'`)
   * create, but the lock file never exists half-written, so a racing opener
   * never mistakes a lock being created for a damaged one. When `path` exists:
   * - its owner is alive (same host; `kill(pid, 0)` does not report `ESRCH`;
   *   and, where `/proc` tells, the same process start time), or runs on
   *   another host → `LockedError`, carrying the holder's `pid` and `host`
   *   (and `alive: true` when seen running) and naming it in its message.
   *   This includes this very process: a second open in the same process is
   *   refused.
   * - it holds no record of ours (`judgeLockText`: another program's lock
   *   or pid file, a user's file, a record without a token, a directory; a
   *   FIFO, a device or a socket, never opened) →
   *   `NotALogError` (`WAL_NOT_A_LOG`) naming `path`; the file is left as it
   *   is. The same for a guard `<path>.break` that is not ours.
   * - its owner is dead, or the file is empty, holds only NUL bytes or a
   *   record cut short (NUL bytes after it or not: what a power loss leaves
   *   of a record written without fsync; `judgeLockText`) → take-over. Removing a stale lock is a compare-and-delete
   *   done under a second, short-lived guard lock `<path>.break` (taken the
   *   same way): holding it, re-read `path` and delete it only if it still
   *   holds the very record judged stale; then retry. Only a guard holder ever
   *   deletes another's lock file, so among openers racing over a stale lock
   *   exactly one wins, and a live lock is never removed.
   *
   * Caveats: a pid reused by an unrelated live process keeps a dead holder's
   * lock looking alive where the start time cannot be read (off Linux, or in
   * another pid namespace), and a lock taken on another host is never judged
   * stale: delete the lock file by hand once sure no holder runs. A process
   * killed while holding the guard (a few system calls long) leaves it to be
   * removed by the next opener as stale, which reopens the race in that rare
   * case. The lock is advisory and per path, needs a file system with hard
   * links, and is not durable (a power loss may keep or drop the file; both
   * are handled).
   */
  async lock(path: string, permissions = DEFAULT_FILE_MODE): Promise<FsLock> {
    const token = randomBytes(12).toString('hex');
    const start = await startTimeOf(process.pid);
    const owner: LockOwner = {
      pid: process.pid,
      token,
      host: hostname(),
      ...(start === undefined ? {} : { start }),
    };
    // A file that is not a lock of ours is refused before anything is created.
    await readOwner(path);
    const temp = `${path}.${token}.tmp`;
    try {
      await writeFile(temp, `${JSON.stringify(owner)}\n`, { flag: 'wx', mode: permissions });
    } catch (error) {
      // Created, then its record failed to fit (ENOSPC, EDQUOT, EFBIG): never
      // leave it behind. EEXIST: not ours (its name is random), left alone.
      if (errorCode(error) !== 'EEXIST') await unlink(temp).catch(() => undefined);
      throw error;
    }
    try {
      for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
        if (await tryLink(temp, path)) return new NodeLock(path, token);
        const held = await readOwner(path);
        if (held === null) continue; // released meanwhile
        if (held !== undefined) {
          const state = await holderState(held);
          if (state !== 'dead') {
            throw new LockedError(path, {
              pid: held.pid,
              host: held.host,
              ...(state === 'alive' ? { alive: true } : {}),
            });
          }
        }
        await removeStale(path, held, temp);
      }
      throw new LockedError(path); // persistent contention over a stale lock
    } finally {
      await unlink(temp).catch(() => undefined);
    }
  }
}

const MAX_ATTEMPTS = 200;

/** Links `temp` to `path`; false when `path` exists. */
async function tryLink(temp: string, path: string): Promise<boolean> {
  try {
    await link(temp, path);
    return true;
  } catch (error) {
    if (errorCode(error) === 'EEXIST') return false;
    throw error;
  }
}

function sameRecord(a: LockOwner | undefined, b: LockOwner | undefined): boolean {
  return a === undefined ? b === undefined : b !== undefined && a.token === b.token;
}

/**
 * Deletes lock file `path` if it still holds `stale`, under the guard
 * `<path>.break` (taken by linking our own record file `temp`).
 */
async function removeStale(
  path: string,
  stale: LockOwner | undefined,
  temp: string,
): Promise<void> {
  const guard = `${path}.break`;
  if (!(await tryLink(temp, guard))) {
    const holder = await readOwner(guard);
    if (holder !== null && (holder === undefined || !(await isAlive(holder)))) {
      await unlink(guard).catch(() => undefined); // its holder died mid take-over
    } else {
      await new Promise((resolve) => setTimeout(resolve, 1)); // a take-over is running
    }
    return;
  }
  try {
    const now = await readOwner(path);
    if (now !== null && sameRecord(now, stale)) await unlink(path);
  } finally {
    await unlink(guard);
  }
}

class NodeLock implements FsLock {
  #released: Promise<void> | undefined;

  constructor(
    readonly path: string,
    readonly token: string,
  ) {}

  release(): Promise<void> {
    this.#released ??= (async () => {
      try {
        const owner = await readOwner(this.path);
        // Only remove the file if it is still ours.
        if (owner?.token === this.token) await unlink(this.path);
      } catch {
        // Never rejects: a lock file left behind is judged stale by the next opener.
      }
    })();
    return this.#released;
  }
}
