/**
 * The lock file of {@link NodeFs.lock}: what it records (pid, host, process
 * start time, token) and whether its holder still runs. Read here for the
 * lock protocol and, through {@link readLockHolder}, for tools that show who
 * holds a log, with one parser and one liveness rule for both.
 */
import { constants } from 'node:fs';
import { type FileHandle, readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { errorCode, isWalError } from '@wal/errors';
import { openChecked } from './regular-file.js';

/** What a lock file holds: who took the lock, and a token unique to that taking. */
export interface LockOwner {
  readonly pid: number;
  readonly host: string;
  /** Unique to one taking of the lock; absent only in a file not written by a lock. */
  readonly token?: string;
  /** The holder's start time in clock ticks since boot (Linux `/proc/<pid>/stat`), when known. */
  readonly start?: string;
}

/** Whether a lock file's holder runs: `alive`, `dead` (stale lock), `unknown` (another host). */
export type HolderState = 'alive' | 'dead' | 'unknown';

/**
 * Who holds a log's lock, as its lock file records it, and what this process
 * can tell about that holder.
 */
export interface LockHolder {
  /** The holder's process id; undefined when the file holds no record of ours. */
  readonly pid: number | undefined;
  /** The holder's host name; undefined when the file holds no record of ours. */
  readonly host: string | undefined;
  /**
   * `alive`: the process runs on this host (`kill(pid, 0)` finds it, and
   * where Linux's `/proc` tells, it started when the lock was taken; a pid
   * owned by another user counts as alive). `dead`: it does not run; the
   * lock is stale and the next writable open takes it over. `unknown`:
   * another host, so no check is possible. `unreadable`: the file is empty,
   * only NUL bytes or a strict prefix of a record of ours, NUL bytes after
   * it or not (what a power loss leaves of a lock file): stale too.
   * `foreign`: not a lock file of ours (another program's lock or pid file,
   * a record without a token, a directory, a FIFO), which a writable open
   * refuses with `WAL_NOT_A_LOG` and never removes.
   */
  readonly state: HolderState | 'unreadable' | 'foreign';
}

/** Parses a lock file's text; undefined when it holds no valid record. */
export function parseOwner(text: string): LockOwner | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (value === null || typeof value !== 'object') return undefined;
  const { pid, host, token, start } = value as Record<string, unknown>;
  if (!Number.isSafeInteger(pid) || (pid as number) <= 0 || typeof host !== 'string') {
    return undefined;
  }
  return {
    pid: pid as number,
    host,
    ...(typeof token === 'string' ? { token } : {}),
    ...(typeof start === 'string' ? { start } : {}),
  };
}

/**
 * Bytes of the largest lock file taken for ours: a record is about a hundred
 * bytes; anything longer is somebody else's file, and is not read further.
 */
export const LOCK_FILE_LIMIT = 4096;

/**
 * One piece of the text `NodeFs.lock` writes (`JSON.stringify` of a
 * {@link LockOwner} in its fixed key order, then a newline): a literal, or a
 * run of `min`…`max` characters matching `chars`.
 */
type RecordPiece =
  | string
  | { readonly chars: (char: string) => boolean; readonly min: number; readonly max: number };

const DIGITS = { chars: (char: string) => char >= '0' && char <= '9', min: 1, max: 20 };
const RECORD_HEAD: readonly RecordPiece[] = [
  '{"pid":',
  DIGITS,
  ',"token":"',
  { chars: (char: string) => /^[0-9a-f]$/.test(char), min: 1, max: 64 },
  '","host":"',
  // A host name never holds a quote or a control character.
  { chars: (char: string) => char !== '"' && char >= ' ', min: 0, max: LOCK_FILE_LIMIT },
  '"',
];
/** The two shapes of a lock record: with and without the holder's start time. */
const RECORD_SHAPES: ReadonlyArray<readonly RecordPiece[]> = [
  [...RECORD_HEAD, ',"start":"', DIGITS, '"}\n'],
  [...RECORD_HEAD, '}\n'],
];

/** Whether `text` is a prefix of some text of the shape `pieces` (matched greedily). */
function isPrefixOf(text: string, pieces: readonly RecordPiece[]): boolean {
  let at = 0;
  for (const piece of pieces) {
    if (at === text.length) return true;
    if (typeof piece === 'string') {
      const part = text.slice(at, at + piece.length);
      if (!piece.startsWith(part)) return false;
      at += part.length;
    } else {
      let run = 0;
      while (run < piece.max && at + run < text.length && piece.chars(text[at + run] ?? '')) {
        run++;
      }
      if (at + run < text.length && run < piece.min) return false;
      at += run;
    }
  }
  return at === text.length;
}

/**
 * What a lock file's text is, by the one rule that decides whether a lock
 * file may be taken over or removed (docs/FORMAT.md §3.1), trailing NUL
 * bytes set aside:
 * - a {@link LockOwner} with a token: a record written by `NodeFs.lock`;
 * - `residue`: what a power loss can leave of such a record (it is written
 *   without fsync): nothing, NUL bytes, or a strict prefix of a record as
 *   `NodeFs.lock` serializes it (`{"pid":4242,"tok`, its key order is
 *   fixed), possibly followed by NUL bytes: stale, as its holder is gone;
 * - `foreign`: anything else (another program's lock or pid file, a user's
 *   file, a record without a token): not ours, never taken over or removed.
 */
export function judgeLockText(text: string): LockOwner | 'residue' | 'foreign' {
  if (text.length > LOCK_FILE_LIMIT) return 'foreign';
  const kept = text.replace(/\0+$/, '');
  if (kept === '') return 'residue';
  const owner = parseOwner(kept);
  if (owner?.token !== undefined) return owner;
  return RECORD_SHAPES.some((shape) => isPrefixOf(kept, shape)) ? 'residue' : 'foreign';
}

/**
 * What a refusal of a lock file that is not ours adds, naming `path`: it
 * may still be a lock file of ours damaged beyond recognition (by a file
 * system that shows other bytes after a power loss), which only a person
 * can tell and remove.
 */
export function damagedLockHint(path: string): string {
  return `if it is a log's lock file damaged by a power loss and no process of the log runs, remove ${path}`;
}

/** A process's start time (field 22 of `/proc/<pid>/stat`), or undefined off Linux. */
export async function startTimeOf(pid: number): Promise<string | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'latin1');
    // The command name (field 2) is parenthesised and may hold spaces.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[19];
  } catch {
    return undefined;
  }
}

/** Whether the process that wrote `owner` runs (see {@link LockHolder.state}). */
export async function holderState(owner: LockOwner): Promise<HolderState> {
  if (owner.host !== hostname()) return 'unknown'; // another machine's pid means nothing here
  try {
    process.kill(owner.pid, 0);
  } catch (error) {
    return errorCode(error) === 'ESRCH' ? 'dead' : 'alive'; // EPERM: alive, owned by another user
  }
  if (owner.start === undefined) return 'alive';
  const start = await startTimeOf(owner.pid);
  // Same pid, different start time: the pid was reused by an unrelated process.
  return start === undefined || start === owner.start ? 'alive' : 'dead';
}

/**
 * Reads lock file `path` and judges it by {@link judgeLockText}, reading at
 * most {@link LOCK_FILE_LIMIT} + 1 bytes: `null` when there is no such file;
 * a directory is `foreign`. Rejects with `NotALogError` (`WAL_NOT_A_LOG`)
 * for a FIFO, a device or a socket (never opened, so never waited on), and
 * with the file system's error for anything else (`EACCES`, `ENOTDIR`, …).
 */
export async function readLockFile(
  path: string,
): Promise<LockOwner | 'residue' | 'foreign' | null> {
  let handle: FileHandle;
  try {
    handle = await openChecked(path, constants.O_RDONLY);
  } catch (error) {
    if (errorCode(error) === 'ENOENT') return null;
    throw error;
  }
  try {
    const bytes = Buffer.alloc(LOCK_FILE_LIMIT + 1);
    const { bytesRead } = await handle.read(bytes, 0, bytes.length, 0);
    return judgeLockText(bytes.toString('utf8', 0, bytesRead));
  } catch (error) {
    if (errorCode(error) === 'EISDIR') return 'foreign';
    throw error;
  } finally {
    await handle.close();
  }
}

/**
 * Reads the lock file at `path` (a log directory's `lock`, or a single-file
 * log's `<path>.lock`) without taking, breaking or changing it, and tells
 * whether its holder runs, by the rules the lock itself applies. Resolves
 * `undefined` when there is no lock file (the log is not held); a FIFO, a
 * device or a socket there is `foreign`, never opened. Rejects with the file
 * system's error for anything but a missing file (`EACCES`, `ENOTDIR`, …).
 */
export async function readLockHolder(path: string): Promise<LockHolder | undefined> {
  const found = await readLockFile(path).catch((error: unknown) => {
    if (isWalError(error, 'WAL_NOT_A_LOG')) return 'foreign' as const; // a FIFO, a device
    throw error;
  });
  if (found === null) return undefined;
  if (typeof found === 'string') {
    return {
      pid: undefined,
      host: undefined,
      state: found === 'residue' ? 'unreadable' : 'foreign',
    };
  }
  return { pid: found.pid, host: found.host, state: await holderState(found) };
}
