/**
 * The log's keys in the store's metadata map (docs/FORMAT.md §5.2) and how
 * they are read back.
 */
import { CorruptionError, NotALogError, UnsupportedFormatError } from '@wal/errors';
import type { StoreMeta } from '@wal/store';

/**
 * The metadata key of the log's format version (docs/FORMAT.md §5.2, the
 * compatibility rule in §5.4): `1` is the only version this code writes and
 * reads.
 */
export const FORMAT_KEY = 'wal.format';
/** The record size limit the log was created with. */
export const META_MAX_RECORD = 'wal.maxRecordSize';
/**
 * The metadata key of the durable hint (docs/FORMAT.md §5.2): an offset below
 * which every byte of the log was durable, so that damage below it is
 * corruption and never a torn tail. Absent, the head stands for it.
 */
export const DURABLE_HINT_KEY = 'wal.durableHint';
/**
 * The metadata key of the name of the program the log's records belong to
 * (`WalOptions.application`), recorded when a log is created with one.
 */
export const APPLICATION_KEY = 'wal.application';
/**
 * The metadata key of the count of cuts of the log's end (docs/FORMAT.md
 * §5.2): every `truncateAfter`, and every recovery that cuts bytes other than
 * zeros, adds one, durably, before the bytes past the cut can be written
 * again, so that a read-only follower knows that offsets it read were reused.
 */
export const META_TRUNCATIONS = 'wal.truncations';
/**
 * The metadata key of a cut of the log's end in progress (docs/FORMAT.md
 * §5.2): the offset the log is being cut to, stored with the count of cuts
 * before the cut and removed once it is done, before anything is written past
 * it. A follower reads no further; a writable open finishes the cut.
 */
export const META_CUT_TO = 'wal.cutTo';
/** The format version this code writes in a new log (docs/FORMAT.md §5.4). */
export const FORMAT_VERSION = 1;
/** Every format version this code reads, ascending (docs/FORMAT.md §5.4). */
export const SUPPORTED_FORMATS: readonly number[] = Object.freeze([1]);

/**
 * The log's format version as `meta` records it, `undefined` when absent (a
 * new log, or a wal-db 1.x log).
 *
 * @throws {@link CorruptionError} (`WAL_CORRUPTION`) when the value is not a
 *   positive integer: damaged, not a version.
 * @throws {@link UnsupportedFormatError} (`WAL_UNSUPPORTED_FORMAT`) for a
 *   version this code does not read (docs/FORMAT.md §5.4).
 */
export function checkFormat(meta: StoreMeta): number | undefined {
  const format = metaInteger(meta, FORMAT_KEY, 1, Number.MAX_SAFE_INTEGER);
  if (format !== undefined && !SUPPORTED_FORMATS.includes(format)) {
    throw new UnsupportedFormatError(format, SUPPORTED_FORMATS);
  }
  return format;
}

/**
 * The integer at `key`, `undefined` when absent.
 *
 * @throws {@link CorruptionError} (`WAL_CORRUPTION`) when the value is not an
 *   integer in `[min, max]`.
 */
export function metaInteger(
  meta: StoreMeta,
  key: string,
  min: number,
  max: number,
): number | undefined {
  const value = meta[key];
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new CorruptionError(`the log's metadata holds an invalid ${key}: ${String(value)}`);
  }
  return value;
}

/** The count of cuts of the log's end `meta` records (`wal.truncations`; absent: 0). */
export function metaTruncations(meta: StoreMeta): number {
  return metaInteger(meta, META_TRUNCATIONS, 0, Number.MAX_SAFE_INTEGER) ?? 0;
}

/**
 * The offset a cut of the log's end in progress brings it to (`wal.cutTo`),
 * `undefined` when no cut is in progress. `hint` is the durable hint `meta`
 * records (or the head): a cut in progress always lowered it to at most the
 * cut (docs/FORMAT.md §7.1 step 2), so a mark below it is a stale one, left
 * by a crash and ignored by a writer of a release without this key, and
 * counts for nothing.
 *
 * @throws {@link CorruptionError} (`WAL_CORRUPTION`) for a damaged value.
 */
export function metaCutTo(meta: StoreMeta, hint: number): number | undefined {
  const cutTo = metaInteger(meta, META_CUT_TO, 0, Number.MAX_SAFE_INTEGER);
  return cutTo !== undefined && cutTo >= hint ? cutTo : undefined;
}

/**
 * The application name the log records (`wal.application`), `undefined` when
 * it records none.
 *
 * @throws {@link CorruptionError} (`WAL_CORRUPTION`) when the value is not a
 *   non-empty string.
 */
export function metaApplication(meta: StoreMeta): string | undefined {
  const value = meta[APPLICATION_KEY];
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value.length === 0) {
    throw new CorruptionError(
      `the log's metadata holds an invalid ${APPLICATION_KEY}: ${JSON.stringify(value)}`,
    );
  }
  return value;
}

/**
 * Checks the application name the log records against `asked` (the
 * `application` option): returns the recorded name, `undefined` when none.
 *
 * @throws {@link NotALogError} (`WAL_NOT_A_LOG`, naming `where`) when both
 *   are given and differ: another program's log.
 * @throws {@link CorruptionError} (`WAL_CORRUPTION`) for a damaged value.
 */
export function checkApplication(
  meta: StoreMeta,
  asked: string | undefined,
  where: string,
): string | undefined {
  const recorded = metaApplication(meta);
  if (asked !== undefined && recorded !== undefined && asked !== recorded) {
    throw new NotALogError(
      where,
      `a log of ${JSON.stringify(recorded)}, opened as one of ${JSON.stringify(asked)}`,
    );
  }
  return recorded;
}
