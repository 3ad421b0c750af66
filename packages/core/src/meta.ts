/**
 * The log's keys in the store's metadata map (docs/FORMAT.md §5.2) and how
 * they are read back.
 */
import { CorruptionError } from '@wal/errors';
import type { StoreMeta } from '@wal/store';

/**
 * The metadata key of the log's format version (docs/FORMAT.md §5.2): `1`
 * is the only version this code writes and reads.
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
/** Count of `truncateAfter`s: tells a read-only follower that offsets were reused. */
export const META_TRUNCATIONS = 'wal.truncations';
/** The only format version this code writes and reads. */
export const FORMAT_VERSION = 1;

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
