/**
 * `wal backup <path> <dir>`: an online backup of a log — a durable prefix
 * copied into a new directory while its writer goes on (`backup` of
 * @wal/core). The log is only read: no lock is taken, nothing is changed.
 */
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { backup as backupLog, DURABLE_HINT_KEY, FORMAT_KEY, type Wal } from '@wal/core';
import { isArgumentError } from '@wal/errors';
import { DEFAULT_FILE_MODE, type Store, validateMode } from '@wal/store';
import { CliError, EXIT } from '../errors.js';
import { lockStatus } from '../lock.js';
import { openLog, segmentSizeOf, type Target } from '../open.js';
import { Progress } from '../progress.js';
import { type Io, type LogOptions, readingOf, withStore } from './shared.js';

export interface BackupOptions extends LogOptions {
  /** Permissions of the copy's files (default: those of the log's metadata file). */
  readonly mode?: number;
  /** Copy the records below this LSN only. */
  readonly upTo?: number;
  readonly json?: boolean;
}

/** The permission bits of the log's metadata file, when usable as a mode; else the default. */
async function modeOfLog(target: Target): Promise<number> {
  const meta = target.layout === 'file' ? `${target.resolved}.meta` : join(target.resolved, 'meta');
  try {
    const bits = (await stat(meta)).mode & 0o777;
    return (bits & 0o600) === 0o600 ? bits : DEFAULT_FILE_MODE;
  } catch {
    return DEFAULT_FILE_MODE;
  }
}

/**
 * Refuses a backup that would copy no record of a log that holds some: none
 * is known to be durable (the durable hint, as `backup` reads it, is at the
 * head). An empty copy would pass for a backup. Nothing is created.
 */
async function refuseNothingDurable(
  path: string,
  target: Target,
  store: Store,
  wal: Wal,
): Promise<void> {
  if (wal.written === wal.head) return; // an empty log: its copy is empty too
  const meta = await store.readMeta();
  const hint = meta[DURABLE_HINT_KEY];
  const recorded = typeof hint === 'number' ? hint : wal.head;
  if (Math.max(wal.head, Math.min(recorded, wal.written)) > wal.head) return;
  const why =
    meta[FORMAT_KEY] === undefined
      ? 'a wal-db 1.x log (no metadata) records no durable hint, so none of its records is known to be durable; a writable open with @wal records one'
      : (await lockStatus(target.lockFile)).locked
        ? 'its live writer has not recorded any record as durable yet (it does at its next segment roll or close)'
        : 'none of its records is known to be durable (the log was not closed cleanly: open it once to recover it)';
  throw new CliError(`${path}: nothing to back up: ${why}; nothing was created`);
}

/** Re-words the refusal of an `--up-to` past what the backup may copy. */
function upToError(error: unknown, path: string, upTo: number | undefined): unknown {
  if (upTo === undefined || !isArgumentError(error, 'ERR_OUT_OF_RANGE')) return error;
  const message = (error as Error).message;
  if (!message.includes('"options.upTo"')) return error;
  const durable = /durable watermark \((\d+)\)/.exec(message)?.[1];
  return new CliError(
    `${path}: --up-to ${upTo} is past the log's durable hint${durable === undefined ? '' : ` (${durable})`}: a backup copies only records known to be durable`,
  );
}

export async function backup(
  path: string,
  destination: string,
  options: BackupOptions,
  io: Io,
): Promise<number> {
  if (options.mode !== undefined) validateMode('--mode', options.mode);
  return withStore(path, options, async (target, store) => {
    const wal = await openLog(store, readingOf(options));
    let progress: Progress | undefined;
    try {
      if (options.upTo === undefined) await refuseNothingDurable(path, target, store, wal);
      const segmentSize = segmentSizeOf(store);
      const result = await backupLog(wal, destination, {
        mode: options.mode ?? (await modeOfLog(target)),
        ...(segmentSize === undefined || segmentSize < 4096 ? {} : { segmentSize }),
        ...(options.upTo === undefined ? {} : { upTo: options.upTo }),
        onProgress: (copied, total) => {
          progress ??= new Progress(io.err, 0, total, 'backing up');
          progress.update(copied);
        },
      }).catch((error: unknown) => {
        throw upToError(error, path, options.upTo);
      });
      progress?.done();
      const lock = await lockStatus(target.lockFile);
      const left = wal.written - result.end;
      if (options.json === true) {
        await io.out.line(
          JSON.stringify({
            path,
            destination,
            head: result.head,
            end: result.end,
            records: result.records,
            notCopied: left,
          }),
        );
        return EXIT.ok;
      }
      await io.out.line(
        `${path}: ${result.records} record(s), LSN ${result.head} to ${result.end}, backed up into ${destination}.`,
      );
      if (left > 0) {
        const why =
          options.upTo !== undefined
            ? '--up-to stops the copy there'
            : lock.locked
              ? 'a live writer holds the log, and a backup copies only what its writer recorded as durable (at its last segment roll or close)'
              : 'they are not known to be durable (the log was not closed cleanly: open it once to recover it)';
        await io.out.line(`${left} byte(s) after LSN ${result.end} were not copied: ${why}.`);
      }
      return EXIT.ok;
    } finally {
      progress?.done();
      await wal.close();
    }
  });
}
