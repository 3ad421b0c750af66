/**
 * Opening only what a log can be made of: a regular file or a directory.
 * A FIFO at a path the store reads would block its open forever (waiting for
 * a writer); a device or socket is nobody's log. Internal to @wal/store.
 */
import { constants, type Stats } from 'node:fs';
import { type FileHandle, open, stat } from 'node:fs/promises';
import { errorCode, NotALogError } from '@wal/errors';

/** `O_NONBLOCK`, where the platform has it (not on Windows, which has no FIFOs to wait on). */
const O_NONBLOCK: number = constants.O_NONBLOCK ?? 0;

/**
 * What `stats` describes in words when it is neither a regular file nor a
 * directory (`a FIFO`, `a character device`, …), else `undefined`.
 */
function specialKind(stats: Stats): string | undefined {
  if (stats.isFile() || stats.isDirectory()) return undefined;
  if (stats.isFIFO()) return 'a FIFO';
  if (stats.isCharacterDevice()) return 'a character device';
  if (stats.isBlockDevice()) return 'a block device';
  if (stats.isSocket()) return 'a socket';
  return 'a file that is neither a regular file nor a directory';
}

function refuseSpecial(path: string, kind: string): NotALogError {
  return new NotALogError(path, `${kind}, not a regular file (never opened as part of a log)`);
}

/**
 * `open(path, flags | O_NONBLOCK, permissions)` of a regular file or a
 * directory only: what `stat` shows to be anything else is refused with
 * `NotALogError` without being opened, and so is a descriptor whose `fstat`
 * shows it (replaced meanwhile), closed at once.
 */
export async function openChecked(
  path: string,
  flags: number,
  permissions?: number,
): Promise<FileHandle> {
  const before = await stat(path).then(specialKind, (error: unknown) => {
    if (errorCode(error) === 'ENOENT') return undefined; // an open with O_CREAT creates it
    throw error;
  });
  if (before !== undefined) throw refuseSpecial(path, before);
  const handle = await open(path, flags | O_NONBLOCK, permissions);
  let kind: string | undefined;
  try {
    kind = specialKind(await handle.stat());
  } catch (error) {
    await handle.close();
    throw error;
  }
  if (kind !== undefined) {
    await handle.close();
    throw refuseSpecial(path, kind);
  }
  return handle;
}
