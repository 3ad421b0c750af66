/**
 * File names of a store directory (docs/LSM-FORMAT.md §6) and the
 * translation of file-system failures into typed errors.
 */
import { join } from 'node:path';

/** The marker file that makes a directory an @wal/lsm store. */
export const MARKER_NAME = 'LSM';
/** Contents of the marker file (format version 1). */
export const MARKER = new TextEncoder().encode('@wal/lsm 1\n');
/**
 * The marker being written (docs/LSM-FORMAT.md §6, §9 step 2): made in full
 * and synced under this name, then renamed to {@link MARKER_NAME}, so that a
 * crash leaves either no marker or the complete one. One no longer than the
 * marker, alone in a directory, is a creation a crash cut short.
 */
export const MARKER_TEMP_NAME = 'LSM.tmp';
/** The lock file. */
export const LOCK_NAME = 'lock';
/** The guard file of @wal/store's lock protocol, next to the lock file. */
export const LOCK_BREAK_NAME = 'lock.break';
/**
 * The names of the lock file and of the files of @wal/store's lock protocol
 * next to it: `lock.<token>.tmp` (a lock being written), the guard
 * `lock.break` and its `lock.break.<token>.tmp`. Another opener's, or a
 * crash's, leftovers: not foreign files, as in a log directory; `lock` and
 * `lock.break` only when they hold a lock file of ours (checked by their
 * contents, as @wal/store checks them: `claimDirectory`).
 */
const LOCK_ENTRY = /^lock(?:\.break)?(?:\.[0-9a-f]+\.tmp)?$/;

/** True when `name` is named as the lock file or a file of the lock protocol ({@link LOCK_ENTRY}). */
export function isLockEntry(name: string): boolean {
  return LOCK_ENTRY.test(name);
}

/** Directory of the data log (a @wal/core segmented log). */
export const WAL_DIR = 'wal';
/** Directory of the manifest log (a @wal/core segmented log). */
export const MANIFEST_DIR = 'manifest';

const TABLE_NAME = /^(\d{20})\.sst$/;

/** The file name of table `number`: 20-digit zero-padded decimal, then `.sst`. */
export function tableName(number: number): string {
  return `${String(number).padStart(20, '0')}.sst`;
}

/** The table number a file name denotes, or `undefined` when it is not a table name. */
export function tableNumber(name: string): number | undefined {
  const digits = TABLE_NAME.exec(name)?.[1];
  if (digits === undefined) return undefined;
  const value = Number(digits);
  return Number.isSafeInteger(value) ? value : undefined;
}

/** Path of table `number` in `dir`. */
export function tablePath(dir: string, number: number): string {
  return join(dir, tableName(number));
}

/**
 * Translates a file-system failure into `WAL_NO_SPACE` or `WAL_IO` naming what
 * was done; a `WalError` is returned unchanged (see `toWalError`).
 */
export { toWalError as ioError } from '@wal/errors';
