/**
 * The permission bits of what the file backends create: one `mode` for
 * files, from which the mode of directories follows (see {@link directoryMode}).
 */
import { invalidArgType, outOfRange } from '@wal/errors';

/**
 * Default mode of a file the stores create: `0o644` (`rw-r--r--`), as
 * LevelDB and SQLite create theirs; the process's umask applies on top.
 */
export const DEFAULT_FILE_MODE = 0o644;

/**
 * The mode of a directory that goes with file mode `mode`: each read bit
 * brings its search (execute) bit, so whoever may read the files may reach
 * them and nobody else may list them. `0o644` → `0o755`, `0o640` → `0o750`,
 * `0o600` → `0o700`. Git derives its shared directories' modes the same way.
 */
export function directoryMode(mode: number): number {
  return mode | ((mode & 0o444) >> 2);
}

/**
 * Checks a file `mode`: an integer in `[0, 0o777]` that gives the owner
 * read and write (`0o600`), without which the store could not reopen what
 * it created. Throws `TypeError` (`ERR_INVALID_ARG_TYPE`) for a non-number
 * and `RangeError` (`ERR_OUT_OF_RANGE`) for anything else invalid.
 */
export function validateMode(name: string, mode: unknown): asserts mode is number {
  if (typeof mode !== 'number') throw invalidArgType(name, 'of type number', mode);
  if (!Number.isInteger(mode) || mode < 0 || mode > 0o777 || (mode & 0o600) !== 0o600) {
    throw outOfRange(
      name,
      'an integer in [0o600, 0o777] with the owner read and write bits (0o600) set',
      mode,
    );
  }
}
