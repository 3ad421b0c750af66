/**
 * The store directory (docs/LSM-FORMAT.md §6, §9): telling a store from what
 * is not one, the marker, and orphan tables.
 */
import { dirname, join } from 'node:path';
import { errorCode, NotALogError } from '@wal/errors';
import { type Fs, identifyLog, lockFileAt, readFull, writeAll } from '@wal/store';
import { compareBytes } from './coding.js';
import {
  ioError,
  isLockEntry,
  LOCK_BREAK_NAME,
  LOCK_NAME,
  MANIFEST_DIR,
  MARKER,
  MARKER_NAME,
  MARKER_TEMP_NAME,
  tableNumber,
  WAL_DIR,
} from './files.js';
import type { VersionState } from './manifest.js';

const noop = (): void => {};

/**
 * What {@link claimDirectory} found: `created` (missing, created now and its
 * parent fsynced), `new` (an empty directory, or one holding only what a
 * crash during the marker's creation leaves: a marker being written under
 * its temporary name, or, from a release that wrote it in place, a prefix of
 * the marker maybe followed by NULs) or `store` (the complete marker).
 */
export type Claim = 'created' | 'new' | 'store';

/**
 * Checks that `path` is missing, an empty directory, or a store
 * (docs/LSM-FORMAT.md §6); creates it when missing, and then fsyncs its
 * parent. Rejects with `WAL_NOT_A_LOG`, changing nothing, when it is
 * something else.
 */
export async function claimDirectory(fs: Fs, path: string): Promise<Claim> {
  let created: boolean;
  try {
    created = await fs.mkdir(path);
  } catch (error) {
    if (errorCode(error) === 'ENOTDIR' || errorCode(error) === 'EEXIST')
      throw notAStore(path, 'a file');
    throw ioError(error, `creating directory ${path}`);
  }
  if (created) {
    await syncDirectory(fs, dirname(path));
    return 'created';
  }
  let names: string[];
  try {
    names = await fs.readdir(path);
  } catch (error) {
    if (errorCode(error) === 'ENOTDIR') throw notAStore(path, 'a file');
    throw ioError(error, `listing ${path}`);
  }
  if (!names.includes(MARKER_NAME)) {
    const others = await foreignEntries(fs, path, names);
    if (others.length > 0) {
      const listed = [...others].sort().slice(0, 3).join(', ');
      const more = others.length > 3 ? ` and ${others.length - 3} more` : '';
      throw notAStore(path, `a directory holding files that are not a store (${listed}${more})`);
    }
    return 'new';
  }
  const marker = await readMarker(fs, path);
  if (compareBytes(marker, MARKER) === 0) return 'store';
  // A marker cut short by a crash while the store was being created (nothing
  // else written yet) is ours: the creation starts again.
  if (unfinishedMarker(marker) && (await foreignEntries(fs, path, names)).length === 0) {
    return 'new';
  }
  throw notAStore(path, `a directory whose ${MARKER_NAME} file is not an @wal/lsm marker`);
}

/**
 * True when `marker` (the marker file's bytes) is what a crash during
 * {@link writeMarker} can leave of it: a prefix of the marker (empty too),
 * then only NULs, no longer than the marker — a power loss may keep the
 * file's new size and lose its bytes, which then read as zeros.
 */
function unfinishedMarker(marker: Uint8Array): boolean {
  if (marker.length > MARKER.length) return false;
  let at = 0;
  while (at < marker.length && marker[at] === MARKER[at]) at++;
  return marker.subarray(at).every((byte) => byte === 0);
}

/**
 * The entries of directory `path` (named `names`) that are neither the
 * marker, a marker being written (a file named {@link MARKER_TEMP_NAME} no
 * longer than the marker), nor files of the lock protocol: any other name,
 * and a `lock` or `lock.break` that is not a lock file of ours (@wal/store's
 * `lockFileAt`, the rule it applies to a log directory's). Reads only.
 */
async function foreignEntries(fs: Fs, path: string, names: string[]): Promise<string[]> {
  const others = names.filter(
    (name) => !isLockEntry(name) && name !== MARKER_NAME && name !== MARKER_TEMP_NAME,
  );
  if (names.includes(MARKER_TEMP_NAME) && !(await isMarkerTemp(fs, join(path, MARKER_TEMP_NAME)))) {
    others.push(`${MARKER_TEMP_NAME} (not a marker being written)`);
  }
  for (const name of [LOCK_NAME, LOCK_BREAK_NAME]) {
    if (!names.includes(name)) continue;
    const at = join(path, name);
    let found: Awaited<ReturnType<typeof lockFileAt>>;
    try {
      found = await lockFileAt(fs, at);
    } catch (error) {
      // A FIFO, a device or a socket: never opened, not ours.
      if (errorCode(error) !== 'WAL_NOT_A_LOG') throw ioError(error, `reading ${at}`);
      found = 'other';
    }
    if (found === 'other') others.push(`${name} (not a lock file of ours)`);
  }
  return others;
}

/**
 * True when `path` is a directory holding an @wal/lsm marker (a store, or
 * one a crash cut short while it was created); false when it is missing,
 * a file or a directory without one. Rejects with `WAL_IO`.
 */
export async function hasStore(fs: Fs, path: string): Promise<boolean> {
  try {
    return (await fs.readdir(path)).includes(MARKER_NAME);
  } catch (error) {
    if (errorCode(error) === 'ENOENT' || errorCode(error) === 'ENOTDIR') return false;
    throw ioError(error, `listing ${path}`);
  }
}

/** What an existing store's directory holds besides its marker. */
export interface Survey {
  /** `manifest/` holds a log (not missing, not an empty directory). */
  readonly manifest: boolean;
  /** `wal/` holds a log (not missing, not an empty directory). */
  readonly wal: boolean;
  /** Number of table files. */
  readonly tables: number;
}

/**
 * Looks, reading only, at what the store at `dir` holds, so that a lost
 * manifest or data log is refused before anything is created or deleted
 * (§9 step 2). Rejects with `WAL_IO`.
 */
export async function survey(fs: Fs, dir: string): Promise<Survey> {
  let names: string[];
  try {
    names = await fs.readdir(dir);
  } catch (error) {
    throw ioError(error, `listing ${dir}`);
  }
  const holdsLog = async (name: string): Promise<boolean> => {
    const at = join(dir, name);
    try {
      return (await identifyLog(at, { fs })).verdict !== 'new';
    } catch (error) {
      throw ioError(error, `examining ${at}`);
    }
  };
  return {
    manifest: await holdsLog(MANIFEST_DIR),
    wal: await holdsLog(WAL_DIR),
    tables: names.filter((name) => tableNumber(name) !== undefined).length,
  };
}

/** `WAL_NOT_A_LOG` for a path holding something that is not an @wal/lsm store. */
function notAStore(path: string, found: string): NotALogError {
  return new NotALogError(path, `${found}, not an @wal/lsm store`);
}

async function readMarker(fs: Fs, dir: string): Promise<Uint8Array> {
  const path = join(dir, MARKER_NAME);
  try {
    const file = await fs.open(path, 'read');
    try {
      const size = await fs.size(file);
      const bytes = new Uint8Array(Math.min(size, MARKER.length + 1));
      const count = await readFull(fs, file, bytes, 0);
      return bytes.subarray(0, count);
    } finally {
      await fs.close(file).catch(noop);
    }
  } catch (error) {
    if (errorCode(error) === 'EISDIR') {
      throw notAStore(dir, `a directory whose ${MARKER_NAME} is a directory`);
    }
    throw ioError(error, `reading ${path}`);
  }
}

/**
 * True when `path` is a regular file no longer than the marker: what a crash
 * during {@link writeMarker} leaves under the temporary name, whatever its
 * bytes (a power loss may keep the file's size and lose its data). Anything
 * else by that name (a directory, a larger file) is a user's. Reads only.
 */
async function isMarkerTemp(fs: Fs, path: string): Promise<boolean> {
  let file: Awaited<ReturnType<Fs['open']>>;
  try {
    file = await fs.open(path, 'read');
  } catch (error) {
    // A directory, or a FIFO, device or socket (never opened): a user's.
    if (errorCode(error) === 'EISDIR' || errorCode(error) === 'WAL_NOT_A_LOG') return false;
    throw ioError(error, `reading ${path}`);
  }
  try {
    return (await fs.size(file)) <= MARKER.length;
  } catch (error) {
    throw ioError(error, `reading ${path}`);
  } finally {
    await fs.close(file).catch(noop);
  }
}

/** fsyncs directory `path`. Rejects with `WAL_IO` or `WAL_NO_SPACE`. */
export async function syncDirectory(fs: Fs, path: string): Promise<void> {
  try {
    await fs.syncDir(path);
  } catch (error) {
    throw ioError(error, `fsync of directory ${path}`);
  }
}

/**
 * Writes the marker durably and whole (§9 step 2): under its temporary name
 * (a leftover one removed first, never written through), fdatasync, renamed
 * to the marker's name, directory fsync. A crash leaves no marker (maybe a
 * temporary one, which {@link claimDirectory} takes for a creation cut
 * short) or the complete one: never a marker whose bytes a power loss lost.
 */
export async function writeMarker(fs: Fs, dir: string): Promise<void> {
  const path = join(dir, MARKER_NAME);
  const temp = join(dir, MARKER_TEMP_NAME);
  try {
    await fs.unlink(temp).catch((error: unknown) => {
      if (errorCode(error) !== 'ENOENT') throw error;
    });
    // Exclusively: a name that appeared since the unlink is never opened.
    const file = await fs.open(temp, 'createExclusive');
    try {
      await writeAll(fs, file, MARKER, 0);
      await fs.fdatasync(file);
    } finally {
      await fs.close(file).catch(noop);
    }
    await fs.rename(temp, path);
    await fs.syncDir(dir);
  } catch (error) {
    throw ioError(error, `creating the marker ${path}`);
  }
}

/**
 * Makes the complete marker found in place durable: fdatasync, directory
 * fsync (§9 step 2). A process killed after it wrote the marker and before
 * the fdatasync left it in the page cache only, where a power loss could
 * still take it back.
 */
export async function syncMarker(fs: Fs, dir: string): Promise<void> {
  const path = join(dir, MARKER_NAME);
  try {
    const file = await fs.open(path, 'write');
    try {
      await fs.fdatasync(file);
    } finally {
      await fs.close(file).catch(noop);
    }
    await fs.syncDir(dir);
  } catch (error) {
    throw ioError(error, `fsync of the marker ${path}`);
  }
}

/**
 * Deletes table files the manifest does not name (I4), then fsyncs the
 * directory. A file already gone (ENOENT) is not an error: its deletion
 * is the goal.
 */
export async function removeOrphans(fs: Fs, dir: string, state: VersionState): Promise<void> {
  let names: string[];
  try {
    names = await fs.readdir(dir);
  } catch (error) {
    throw ioError(error, `listing ${dir}`);
  }
  let removed = false;
  for (const name of names) {
    const number = tableNumber(name);
    if (number === undefined || state.tables.has(number)) continue;
    try {
      await fs.unlink(join(dir, name));
    } catch (error) {
      if (errorCode(error) === 'ENOENT') continue;
      throw ioError(error, `removing orphan table ${join(dir, name)}`);
    }
    removed = true;
  }
  if (removed) {
    try {
      await fs.syncDir(dir);
    } catch (error) {
      throw ioError(error, `fsync of directory ${dir}`);
    }
  }
}
