/**
 * `wal repair <path>`: cuts a log at its first damage (or, with `--skip`,
 * steps over what the skip policy can), after saving the cut bytes.
 */
import { access, type FileHandle, open, realpath, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { createInterface } from 'node:readline/promises';
import { DURABLE_HINT_KEY, FORMAT_KEY, FORMAT_VERSION, Wal } from '@wal/core';
import { isWalError, type LockedError } from '@wal/errors';
import { DEFAULT_FILE_MODE, type Store, validateMode } from '@wal/store';
import { type Diagnosis, diagnose } from '../diagnose.js';
import { CliError, describeError, EXIT } from '../errors.js';
import { lockStatus } from '../lock.js';
import {
  enclosingLogDirectory,
  findTarget,
  openStoreWritable,
  segmentSizeOf,
  type Target,
  walOptionsOf,
} from '../open.js';
import {
  describeDamage,
  describeHardDamage,
  describePendingCut,
  describeZeroTail,
  type Io,
  type LogOptions,
  readingOf,
  withTarget,
} from './shared.js';

export interface RepairOptions extends LogOptions {
  readonly yes?: boolean;
  readonly dryRun?: boolean;
  readonly backupDir?: string;
  /** Permissions of the backup file and of any file of the log the repair creates. */
  readonly mode?: number;
}

const CHUNK = 1024 * 1024;

/** The metadata key of the log's maximum record size (docs/FORMAT.md §5.2). */
const MAX_RECORD_SIZE_KEY = 'wal.maxRecordSize';

/** `<name>.repair-20261125T160422.123Z.bak`, beside the log (where a link to it leads) or in `backupDir`. */
function backupPath(target: Target, backupDir: string | undefined): string {
  const stamp = new Date().toISOString().replace(/[-:]/g, '');
  const name = `${basename(target.resolved)}.repair-${stamp}.bak`;
  return join(backupDir ?? dirname(target.resolved), name);
}

/**
 * Refuses a backup directory inside a log directory — the repaired log's or
 * any other's — before anything is created: the backup file there would
 * leave that log a directory holding a foreign entry, which no longer opens
 * (docs/FORMAT.md §3.1). A directory that does not exist is left to the
 * creation of the backup file, which names it.
 */
async function refuseBackupInsideLog(target: Target, backupDir: string | undefined): Promise<void> {
  const dir = backupDir ?? dirname(target.resolved);
  const resolved = await realpath(dir).catch(() => undefined);
  if (resolved === undefined) return;
  const log = await enclosingLogDirectory(resolved);
  if (log === undefined) return;
  const named =
    backupDir === undefined ? `the directory beside the log, ${dir},` : `--backup-dir ${backupDir}`;
  const within = resolved === log ? 'is' : 'is inside';
  const which =
    log === target.resolved ? 'the directory of the log repaired' : `the log directory ${log}`;
  throw new CliError(
    `${target.path}: ${named} ${within} ${which}: a backup file there would leave that log unopenable; nothing was changed${backupDir === undefined ? ' (give --backup-dir)' : ''}`,
  );
}

/** Creates the backup file `file` (it must not exist) with `mode`: before anything touches the log. */
async function createBackup(file: string, mode: number): Promise<FileHandle> {
  try {
    return await open(file, 'wx', mode);
  } catch (error) {
    throw new CliError(
      `cannot create the backup file ${describeError(error, file).message}; nothing was changed`,
    );
  }
}

/**
 * Writes all of `bytes` at `position` of `handle`: a write may take fewer
 * bytes than given (a nearly full disk), so it goes on with the rest; a write
 * that takes none means no space.
 */
async function writeAll(handle: FileHandle, bytes: Uint8Array, position: number): Promise<void> {
  for (let done = 0; done < bytes.length; ) {
    const { bytesWritten } = await repairFiles.write(
      handle,
      bytes,
      done,
      bytes.length - done,
      position + done,
    );
    if (bytesWritten === 0) {
      throw Object.assign(new Error('no space left on the device'), { code: 'ENOSPC' });
    }
    done += bytesWritten;
  }
}

/**
 * Copies the log's bytes `[from, to)` into the backup file open as `handle`,
 * durably (the file's data, its size checked, then its name), and closes it.
 */
async function fillBackup(
  store: Store,
  from: number,
  to: number,
  handle: FileHandle,
  file: string,
): Promise<void> {
  try {
    for (let at = from; at < to; ) {
      const bytes = await store.read(at, Math.min(CHUNK, to - at));
      if (bytes.length === 0) throw new CliError(`the log ended at ${at} while backing it up`);
      await writeAll(handle, bytes, at - from);
      at += bytes.length;
    }
    await handle.datasync();
    const { size } = await handle.stat();
    if (size !== to - from) {
      throw new CliError(`it holds ${size} byte(s) after writing, not the ${to - from} to save`);
    }
  } finally {
    await handle.close();
  }
  // Make the new file's name durable too.
  const dir = await open(dirname(file), 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}

/** Removes the backup file of a repair that failed (it holds nothing the log lost). */
async function discardBackup(handle: FileHandle, file: string): Promise<void> {
  await handle.close().catch(() => {}); // closed already after a failed fill
  await unlink(file).catch(() => {});
}

/**
 * The file operations of a repair that tests replace to simulate what a
 * full disk does (a short write). Not exported from the package.
 */
export const repairFiles = {
  write: (
    handle: FileHandle,
    bytes: Uint8Array,
    offset: number,
    length: number,
    position: number,
  ): Promise<{ bytesWritten: number }> => handle.write(bytes, offset, length, position),
};

/** The metadata file of the log at `target` (present or not). */
function metaFileOf(target: Target): string {
  return target.layout === 'file' ? `${target.resolved}.meta` : join(target.resolved, 'meta');
}

async function exists(file: string): Promise<boolean> {
  return access(file).then(
    () => true,
    () => false,
  );
}

/** The plan of a repair, from a diagnosis. */
interface Plan {
  /** Where the log is cut (its new end). */
  readonly cut: number;
  readonly storeLength: number;
  /** The durable hint is lowered to the cut when above it. */
  readonly lowerHint: boolean;
}

function planOf(diagnosis: Diagnosis): Plan {
  const { report } = diagnosis;
  return {
    cut: report.end,
    storeLength: report.storeLength,
    lowerHint: diagnosis.durableHint > report.end,
  };
}

async function confirm(io: Io): Promise<boolean> {
  const prompt = createInterface({ input: io.stdin, output: io.err, terminal: true });
  try {
    const answer = await prompt.question('Repair the log? [y/N] ');
    return /^y(es)?$/i.test(answer.trim());
  } finally {
    prompt.close();
  }
}

export async function repair(path: string, options: RepairOptions, io: Io): Promise<number> {
  if (options.mode !== undefined) validateMode('--mode', options.mode);
  const reading = readingOf(options);
  const target = await findTarget(path, options.segmentSize);
  const lock = await lockStatus(target.lockFile);
  if (lock.locked) {
    throw new CliError(
      `${path}: the log is locked by process ${lock.pid}${lock.holder === 'unknown' ? ` on host ${lock.host}` : ''}: stop it before repairing`,
    );
  }
  await refuseBackupInsideLog(target, options.backupDir);
  const say = (line: string) => io.out.line(line);

  // What is wrong, read-only.
  const diagnosis = await withTarget(target, (_target, store) => diagnose(store, reading));
  const plan = planOf(diagnosis);
  const { report, damage } = diagnosis;
  if (plan.cut === plan.storeLength && !plan.lowerHint) {
    await say(
      `${path}: nothing to repair: ${diagnosis.records} record(s), LSN ${report.head} to ${report.end}.`,
    );
    if (diagnosis.pendingCut !== undefined) await say(`  ${describePendingCut(diagnosis)}.`);
    if (report.skipped.length > 0) {
      await say(
        `  ${report.skipped.length} damaged record(s) stay in the log; opening it with recovery 'skip' steps over them.`,
      );
    }
    return EXIT.ok;
  }
  const backup = backupPath(target, options.backupDir);
  await withTarget(target, async (_target, store) => {
    await say(
      `${path}: ${diagnosis.records} intact record(s) from LSN ${report.head} to ${report.end}.`,
    );
    if (damage !== undefined) {
      await say(`  damage: ${describeHardDamage(target, store, damage, diagnosis)}.`);
    } else if (report.tear !== undefined) {
      await say(`  torn tail: ${describeDamage(target, store, report.tear)}.`);
    }
    if (diagnosis.pendingCut !== undefined) await say(`  ${describePendingCut(diagnosis)}.`);
    else if (damage === undefined && report.zeroTail > 0) {
      await say(`  ${describeZeroTail(report)}.`);
    }
    await say('wal repair will:');
    let step = 0;
    if (plan.cut < plan.storeLength) {
      await say(
        `  ${++step}. copy the ${plan.storeLength - plan.cut} byte(s) from LSN ${plan.cut} to the end into ${backup}`,
      );
    }
    if (plan.lowerHint) {
      await say(`  ${++step}. lower the durable hint from ${diagnosis.durableHint} to ${plan.cut}`);
    }
    if (plan.cut < plan.storeLength) {
      await say(
        `  ${++step}. truncate the log at LSN ${plan.cut}` +
          (report.droppedFrames > 0
            ? `, dropping ${report.droppedFrames} intact-looking record(s) after the damage`
            : ''),
      );
    }
    const meta = await store.readMeta();
    const recordedMax = meta[MAX_RECORD_SIZE_KEY];
    if (meta[FORMAT_KEY] === undefined) {
      const size = segmentSizeOf(store);
      await say(
        `  ${++step}. record metadata in the log, which has none (a wal-db 1.x log), as any @wal writer does: ` +
          `format ${FORMAT_VERSION}${size === undefined ? '' : `, segment size ${size}`}, maximum record size ${diagnosis.maxRecordSize}`,
      );
    } else if (typeof recordedMax === 'number' && diagnosis.maxRecordSize > recordedMax) {
      await say(
        `  ${++step}. raise the log's recorded maximum record size from ${recordedMax} to ${diagnosis.maxRecordSize} (--max-record-size)`,
      );
    }
    if (report.skipped.length > 0) {
      await say(
        `  and leave ${report.skipped.length} damaged record(s) in the log, stepped over by recovery 'skip'`,
      );
    }
  });
  if (options.dryRun === true) {
    await say('Dry run: nothing done.');
    return EXIT.ok;
  }
  if (options.yes !== true) {
    if (io.stdin.isTTY !== true) {
      throw new CliError(
        'refusing to repair without confirmation: the input is not a terminal (pass --yes)',
      );
    }
    if (!(await confirm(io))) {
      await say('Nothing done.');
      return EXIT.declined;
    }
  }

  // The repair. The backup file first: failing to create it changes nothing in the log.
  const saving = plan.cut < plan.storeLength;
  const handle = saving ? await createBackup(backup, options.mode ?? DEFAULT_FILE_MODE) : undefined;
  // A log without metadata (wal-db 1.x) gets it from the writable open; a
  // repair that fails before changing the log removes it again.
  const metaFile = metaFileOf(target);
  const hadMeta = await exists(metaFile);
  let store: Store;
  try {
    store = await openStoreWritable(target, options.mode);
  } catch (error) {
    if (handle !== undefined) await discardBackup(handle, backup);
    if (isWalError(error, 'WAL_LOCKED')) {
      const { pid } = error as LockedError;
      const by = pid === undefined ? 'another process' : `process ${pid}`;
      throw new CliError(`${path}: the log is locked by ${by}: stop it before repairing`);
    }
    throw error;
  }
  try {
    const again = planOf(await diagnose(store, reading));
    if (
      again.cut !== plan.cut ||
      again.storeLength !== plan.storeLength ||
      again.lowerHint !== plan.lowerHint
    ) {
      throw new CliError(
        `${path}: the log changed since it was examined; nothing done (run wal repair again)`,
      );
    }
    if (handle !== undefined) {
      try {
        await fillBackup(store, plan.cut, plan.storeLength, handle, backup);
      } catch (error) {
        throw new CliError(
          `${path}: cannot save the cut bytes to ${backup}: ${describeError(error).message}; nothing was changed (the backup file is removed)`,
        );
      }
    }
  } catch (error) {
    // Nothing of the log changed yet: leave it as it was found.
    await store.close();
    if (handle !== undefined) await discardBackup(handle, backup);
    if (!hadMeta) await unlink(metaFile).catch(() => {});
    throw error;
  }
  try {
    if (saving) await say(`Saved ${plan.storeLength - plan.cut} byte(s) to ${backup}.`);
    // Hint first: interrupted after it, the damage is a torn tail any open cuts.
    if (plan.lowerHint) {
      await store.updateMeta({ [DURABLE_HINT_KEY]: plan.cut });
      await say(`Lowered the durable hint to ${plan.cut}.`);
    }
    if (saving) {
      await store.truncate(plan.cut);
      await say(`Truncated the log at LSN ${plan.cut}.`);
    }
  } catch (error) {
    await store.close();
    throw error;
  }
  // The store belongs to the log from here on: the log closes it.
  const wal = await Wal.open(store, walOptionsOf(reading));
  const reopened = wal.recovery;
  await wal.close();

  const after = await withTarget(target, (_target, check) => diagnose(check, reading));
  await say(
    `Done: the log opens ${after.status === 'clean' ? 'clean' : `but is ${after.status}`}: ${after.records} record(s), LSN ${after.report.head} to ${after.report.end}` +
      (reopened.skipped.length > 0
        ? `; ${reopened.skipped.length} damaged record(s) stepped over with recovery 'skip'.`
        : '.'),
  );
  return after.status === 'clean' ? EXIT.ok : EXIT.damaged;
}
