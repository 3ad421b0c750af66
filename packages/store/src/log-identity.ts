/**
 * What counts as a log (docs/FORMAT.md §3.1): the one rule by which the file
 * backends, `Wal.open` and the `wal` command line decide whether a path may be
 * opened as a log, so that a user's file or directory is never taken over.
 */
import { basename, join } from 'node:path';
import { crc32c } from '@node-rs/crc32';
import { errorCode, NotALogError } from '@wal/errors';
import type { Fs, FsFile } from './fs/fs.js';
import { readFull } from './fs/io.js';
import { damagedLockHint, judgeLockText, LOCK_FILE_LIMIT } from './fs/lock-file.js';
import { NodeFs } from './fs/node-fs.js';

/** A segment file name as wal-db 1.x names it: 20-digit zero-padded index + `.wal`. */
const SEGMENT_NAME = /^(\d{20})\.wal$/;
/**
 * Entries of a log directory besides segments: the head and metadata files,
 * the lock file, the temporary files of their atomic replacement and of the
 * lock protocol (`lock.<token>.tmp`, the guard `lock.break`), and the
 * `lost+found` of a file system's root (a log directory may be a mount point).
 */
const LOG_ENTRY =
  /^(?:head|meta|lock|head\.tmp|meta\.tmp|lock\.break|lock(?:\.break)?\.[0-9a-f]+\.tmp|lost\+found)$/;
/** The metadata file's magic, "WALM" (docs/FORMAT.md §5.1). */
const META_MAGIC = Buffer.from('WALM', 'latin1');
/** Bytes of a frame header (docs/FORMAT.md §2). */
const FRAME_HEADER = 8;
/** Bytes checksummed per read when checking a first frame: memory stays bounded whatever the length says. */
const CHECK_CHUNK = 1024 * 1024;

/** The index of a segment file named as wal-db 1.x and `@wal` name them, or `undefined`. */
export function segmentIndex(name: string): number | undefined {
  const digits = SEGMENT_NAME.exec(name)?.[1];
  if (digits === undefined) return undefined;
  const index = Number(digits);
  return Number.isSafeInteger(index) ? index : undefined;
}

/** True when `name` may appear in a log directory (docs/FORMAT.md §3.1). */
export function isLogEntry(name: string): boolean {
  return segmentIndex(name) !== undefined || LOG_ENTRY.test(name);
}

/** What a path holds, as judged by {@link identifyLog}. */
export interface LogIdentity {
  /** What is at the path. */
  readonly type: 'missing' | 'file' | 'directory';
  /**
   * - `new`: nothing, an empty file or an empty directory: an open creates a
   *   new log there.
   * - `log`: a log: with our metadata (`metadata`: a metadata file starting
   *   with the magic, or one without it — damaged — where the rest is a
   *   log), or a wal-db 1.x log without it (a file whose first frame checks,
   *   a directory whose entries are all on the allow-list).
   * - `not-a-log`: anything else; every open refuses it with `WAL_NOT_A_LOG`.
   */
  readonly verdict: 'new' | 'log' | 'not-a-log';
  /** True when the log has our metadata file (`<path>.meta`, or `meta` in the directory). */
  readonly metadata: boolean;
  /** What was found, in words, e.g. `a directory holding photo.jpg (and 3 more entries not part of a log)`. */
  readonly found: string;
  /**
   * `not-a-log` only: a file without metadata whose first frame does not
   * check (for example a wal-db log whose only record was torn), which an
   * open with `adopt: true` takes over anyway.
   */
  readonly adoptable: boolean;
  /**
   * `file` only: the file's path with every symbolic link resolved
   * (`Fs.realpath`), beside which its metadata (`<realPath>.meta`) was
   * looked for — where a single-file log keeps its metadata and its lock.
   */
  readonly realPath?: string;
  /**
   * `file` only: its link count (`Fs.links`): how many names it has. More
   * than one (hard links) and a writable open refuses it with `WAL_LOCKED`:
   * a lock named after one name would not keep out a writer using another.
   */
  readonly links?: number;
}

/** Options of {@link identifyLog}. */
export interface IdentifyOptions {
  /** The file system to go through (default: a {@link NodeFs}). */
  readonly fs?: Fs;
}

/**
 * Looks at `path` and says whether it is a log, by the rule of
 * docs/FORMAT.md §3.1. Reads only: nothing is created, changed or locked.
 * A file reached through a symbolic link is judged with the metadata beside
 * the file it names (`<realPath>.meta`), as a single-file log keeps it.
 * Of a metadata file only the magic is read (an open then checks the rest:
 * damage is `WAL_CORRUPTION`); of a file without metadata only the first
 * frame, checksummed in bounded chunks, so a damaged length never causes a
 * large allocation.
 *
 * Rejects with the file system's error (`EACCES`, `EIO`, … as `code`) when
 * the path cannot be examined, and, through a {@link NodeFs}, with
 * `NotALogError` (`WAL_NOT_A_LOG`) naming a FIFO, a device or a socket at
 * the path or at a metadata or lock file it looks at (never opened).
 */
export async function identifyLog(
  path: string,
  options: IdentifyOptions = {},
): Promise<LogIdentity> {
  const fs = options.fs ?? new NodeFs();
  let names: string[];
  try {
    names = await fs.readdir(path);
  } catch (error) {
    const code = errorCode(error);
    if (code === 'ENOENT') return missing();
    if (code !== 'ENOTDIR') throw error;
    return identifyFile(fs, path);
  }
  return identifyDirectory(fs, path, names);
}

/**
 * The `WAL_NOT_A_LOG` error for opening `identity` as a log of `expected`
 * type, or `undefined` when the open may go on: the path is missing, new, or
 * a log of that type (or, with `adopt`, an adoptable file).
 */
export function refusal(
  path: string,
  identity: LogIdentity,
  expected: 'file' | 'directory',
  adopt = false,
): NotALogError | undefined {
  if (identity.type === 'missing') return undefined;
  if (identity.type !== expected) {
    const wanted = expected === 'file' ? 'a single-file log' : 'a log directory';
    return new NotALogError(path, `${identity.found}, where ${wanted} was expected`);
  }
  if (identity.verdict !== 'not-a-log' || (adopt && identity.adoptable)) return undefined;
  const hint = identity.adoptable ? ' (open with adopt: true to take it over as a log)' : '';
  return new NotALogError(path, `${identity.found}${hint}`);
}

function missing(): LogIdentity {
  return { type: 'missing', verdict: 'new', metadata: false, found: 'nothing', adoptable: false };
}

/**
 * What is at `path`: nothing (also below a file), a file whose first bytes
 * (at most `limit`) `ours` accepts, or something else (a directory too).
 */
async function fileAt(
  fs: Fs,
  path: string,
  limit: number,
  ours: (start: Buffer) => boolean,
): Promise<'missing' | 'ours' | 'other'> {
  let file: FsFile;
  try {
    file = await fs.open(path, 'read');
  } catch (error) {
    if (errorCode(error) === 'ENOENT' || errorCode(error) === 'ENOTDIR') return 'missing';
    if (errorCode(error) === 'EISDIR') return 'other';
    throw error;
  }
  try {
    const start = Buffer.alloc(limit);
    const count = await readFull(fs, file, start, 0).catch((error: unknown) => {
      if (errorCode(error) === 'EISDIR') return -1; // a directory named like it
      throw error;
    });
    return count >= 0 && ours(start.subarray(0, count)) ? 'ours' : 'other';
  } finally {
    await fs.close(file);
  }
}

/**
 * What is at a metadata file's path: nothing, a file starting with the
 * metadata magic (ours, sound or not: its open checks the rest), or
 * something else.
 */
function metadataAt(fs: Fs, path: string): Promise<'missing' | 'ours' | 'other'> {
  return fileAt(fs, path, META_MAGIC.length, (start) => start.equals(META_MAGIC));
}

/**
 * What is at a lock file's path (`lock`, `lock.break` of a log directory),
 * read through `fs`: nothing, a lock file of ours (a record of
 * `NodeFs.lock`, or what a power loss leaves of one: see `judgeLockText`),
 * or something else (a directory too). At most 4,097 (the lock-file limit + 1)
 * bytes are read; nothing is changed. Exported so that a directory holding
 * such files next to its own (an @wal/lsm store) applies the same rule.
 */
export function lockFileAt(fs: Fs, path: string): Promise<'missing' | 'ours' | 'other'> {
  return fileAt(
    fs,
    path,
    LOCK_FILE_LIMIT + 1,
    (start) => judgeLockText(start.toString('utf8')) !== 'foreign',
  );
}

/**
 * The `WAL_NOT_A_LOG` error for creating a single-file log at `path`, where
 * nothing is (docs/FORMAT.md §3.1), when a file the log would keep beside
 * it is already there and is not ours — `<path>.meta` or `<path>.meta.tmp`
 * not starting with the metadata magic, `<path>.lock` or `<path>.lock.break`
 * not a lock file of ours — or `undefined`. Reads only. Rejects with that
 * error when one of them is a FIFO, a device or a socket (never opened).
 */
export async function foreignSibling(
  path: string,
  options: IdentifyOptions = {},
): Promise<NotALogError | undefined> {
  const fs = options.fs ?? new NodeFs();
  const siblings = [
    ['.meta', metadataAt],
    ['.meta.tmp', metadataAt],
    ['.lock', lockFileAt],
    ['.lock.break', lockFileAt],
  ] as const;
  for (const [suffix, judge] of siblings) {
    if ((await judge(fs, `${path}${suffix}`)) === 'other') {
      const name = `${basename(path)}${suffix}`;
      return new NotALogError(
        path,
        suffix.startsWith('.meta')
          ? `nothing, but a ${name} beside it that is not log metadata`
          : `nothing, but a ${name} beside it that is not a log's lock file (${damagedLockHint(`${path}${suffix}`)})`,
      );
    }
  }
  return undefined;
}

async function identifyFile(fs: Fs, path: string): Promise<LogIdentity> {
  let file: FsFile;
  try {
    file = await fs.open(path, 'read');
  } catch (error) {
    // A path below a file (`notes.txt/log`): nothing is there.
    if (errorCode(error) === 'ENOENT' || errorCode(error) === 'ENOTDIR') return missing();
    throw error;
  }
  let realPath: string;
  let meta: 'missing' | 'ours' | 'other';
  try {
    // The metadata is beside the file the path names, not beside a link to it.
    realPath = await fs.realpath(path);
    meta = await metadataAt(fs, `${realPath}.meta`);
  } catch (error) {
    await fs.close(file);
    throw error;
  }
  let size: number;
  let links: number;
  let checks = false;
  try {
    links = await fs.links(file);
    size = await fs.size(file);
    if (meta !== 'ours' && size > 0) checks = await firstFrameChecks(fs, file, size);
  } finally {
    await fs.close(file);
  }
  const bytes = `a ${size}-byte file`;
  const identity = (verdict: LogIdentity['verdict'], found: string, adoptable = false) => ({
    type: 'file' as const,
    verdict,
    metadata: verdict === 'log' && meta !== 'missing',
    found,
    adoptable,
    realPath,
    links,
  });
  const metaName = `${basename(realPath)}.meta`;
  // A metadata file without the magic is ours but damaged when the file is
  // a log otherwise (its open then reports WAL_CORRUPTION); beside anything
  // else it is a user's file too.
  if (meta === 'ours' || (meta === 'other' && (size === 0 || checks))) {
    return identity('log', `a log file (${bytes} with ${metaName} beside it)`);
  }
  if (meta === 'other') {
    return identity('not-a-log', `${bytes} beside a ${metaName} that is not log metadata`);
  }
  if (size === 0) return identity('new', 'an empty file');
  if (checks) {
    return identity(
      'log',
      `${bytes} without log metadata whose first frame checks (a wal-db 1.x log)`,
    );
  }
  return identity(
    'not-a-log',
    `${bytes} without log metadata whose first frame does not check`,
    true,
  );
}

/**
 * True when the file starts with a whole frame whose CRC-32C (over the length
 * field and the payload) matches. The length is checked against the file's
 * size before anything is read for it.
 */
async function firstFrameChecks(fs: Fs, file: FsFile, size: number): Promise<boolean> {
  if (size < FRAME_HEADER) return false;
  const header = Buffer.alloc(FRAME_HEADER);
  if ((await readFull(fs, file, header, 0)) < FRAME_HEADER) return false;
  const length = header.readUInt32LE(4);
  if (length > size - FRAME_HEADER) return false;
  let crc = crc32c(header.subarray(4, 8));
  const chunk = Buffer.alloc(Math.min(length, CHECK_CHUNK));
  for (let done = 0; done < length; ) {
    const want = chunk.subarray(0, Math.min(chunk.length, length - done));
    const got = await readFull(fs, file, want, FRAME_HEADER + done);
    if (got < want.length) return false; // the file shrank meanwhile
    crc = crc32c(want, crc);
    done += got;
  }
  return crc === header.readUInt32LE(0);
}

async function identifyDirectory(fs: Fs, path: string, names: string[]): Promise<LogIdentity> {
  if (names.length === 0) {
    return {
      type: 'directory',
      verdict: 'new',
      metadata: false,
      found: 'an empty directory',
      adoptable: false,
    };
  }
  const meta = names.includes('meta') ? await metadataAt(fs, join(path, 'meta')) : 'missing';
  const foreign = names.filter((name) => !isLogEntry(name));
  // Only we write `lock` (wal-db keeps no lock file): one that holds no lock
  // record of ours is a user's file, and so is its directory.
  const locks: string[] = [];
  for (const name of ['lock', 'lock.break']) {
    if (names.includes(name) && (await lockFileAt(fs, join(path, name))) === 'other') {
      locks.push(name);
    }
  }
  foreign.push(...locks);
  // A `meta` without the magic is ours but damaged among log entries only
  // (its open then reports WAL_CORRUPTION); among a user's files it is theirs.
  if (meta === 'ours' || (meta === 'other' && foreign.length === 0)) {
    return {
      type: 'directory',
      verdict: 'log',
      metadata: true,
      found: 'a log directory',
      adoptable: false,
    };
  }
  if (meta === 'other') foreign.push('meta');
  if (foreign.length === 0) {
    const segments = names.filter((name) => segmentIndex(name) !== undefined).length;
    return {
      type: 'directory',
      verdict: 'log',
      metadata: false,
      found: `a log directory without metadata (a wal-db 1.x log, ${segments} segment file(s))`,
      adoptable: false,
    };
  }
  foreign.sort();
  const more =
    foreign.length === 1
      ? ''
      : ` (and ${foreign.length - 1} more ${foreign.length === 2 ? 'entry' : 'entries'} not part of a log)`;
  return {
    type: 'directory',
    verdict: 'not-a-log',
    metadata: false,
    found: `a directory holding ${foreign[0]}${more}${locks
      .map(
        (name) => `; its ${name} is not a log's lock file (${damagedLockHint(join(path, name))})`,
      )
      .join('')}`,
    adoptable: false,
  };
}
