/**
 * `wal repair <path>`: cuts a log at its first damage (or, with `--skip`,
 * steps over what the skip policy can), after saving the cut bytes.
 */
import { open } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline/promises';
import { DURABLE_HINT_KEY, Wal } from '@wal/core';
import { isWalError, type LockedError } from '@wal/errors';
import { DEFAULT_FILE_MODE, type Store, validateMode } from '@wal/store';
import { type Diagnosis, diagnose } from '../diagnose.js';
import { CliError, EXIT } from '../errors.js';
import { lockStatus } from '../lock.js';
import { findTarget, openStoreWritable, type Target, walOptionsOf } from '../open.js';
import {
  describeDamage,
  describeHardDamage,
  describeZeroTail,
  type Io,
  type LogOptions,
  readingOf,
  withStore,
} from './shared.js';

export interface RepairOptions extends LogOptions {
  readonly yes?: boolean;
  readonly dryRun?: boolean;
  readonly backupDir?: string;
  /** Permissions of the backup file and of any file of the log the repair creates. */
  readonly mode?: number;
}

const CHUNK = 1024 * 1024;

/** `<name>.repair-20261125T160422.123Z.bak`, beside the log or in `backupDir`. */
function backupPath(target: Target, backupDir: string | undefined): string {
  const full = resolve(target.path);
  const stamp = new Date().toISOString().replace(/[-:]/g, '');
  const name = `${basename(full)}.repair-${stamp}.bak`;
  return join(backupDir ?? dirname(full), name);
}

/** Copies the log's bytes `[from, to)` into a new file `file` (created with `mode`), durably. */
async function writeBackup(
  store: Store,
  from: number,
  to: number,
  file: string,
  mode: number,
): Promise<void> {
  const handle = await open(file, 'wx', mode).catch((error: unknown) => {
    throw new CliError(`cannot create the backup file ${file}: ${(error as Error).message}`);
  });
  try {
    for (let at = from; at < to; ) {
      const bytes = await store.read(at, Math.min(CHUNK, to - at));
      if (bytes.length === 0) throw new CliError(`the log ended at ${at} while backing it up`);
      await handle.write(bytes);
      at += bytes.length;
    }
    await handle.datasync();
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
  const say = (line: string) => io.out.line(line);

  // What is wrong, read-only.
  const diagnosis = await withStore(path, options, (_target, store) => diagnose(store, reading));
  const plan = planOf(diagnosis);
  const { report, damage } = diagnosis;
  if (plan.cut === plan.storeLength && !plan.lowerHint) {
    await say(
      `${path}: nothing to repair: ${report.records} record(s), LSN ${report.head} to ${report.end}.`,
    );
    if (report.skipped.length > 0) {
      await say(
        `  ${report.skipped.length} damaged record(s) stay in the log; opening it with recovery 'skip' steps over them.`,
      );
    }
    return EXIT.ok;
  }
  const backup = backupPath(target, options.backupDir);
  await withStore(path, options, async (_target, store) => {
    await say(
      `${path}: ${report.records} intact record(s) from LSN ${report.head} to ${report.end}.`,
    );
    if (damage !== undefined) {
      await say(`  damage: ${describeHardDamage(target, store, damage, diagnosis)}.`);
    } else if (report.tear !== undefined) {
      await say(`  torn tail: ${describeDamage(target, store, report.tear)}.`);
    }
    if (damage === undefined && report.zeroTail > 0) await say(`  ${describeZeroTail(report)}.`);
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

  // The repair, under the lock.
  let store: Store;
  try {
    store = await openStoreWritable(target, options.mode);
  } catch (error) {
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
    if (plan.cut < plan.storeLength) {
      await writeBackup(
        store,
        plan.cut,
        plan.storeLength,
        backup,
        options.mode ?? DEFAULT_FILE_MODE,
      );
      await say(`Saved ${plan.storeLength - plan.cut} byte(s) to ${backup}.`);
    }
    // Hint first: interrupted after it, the damage is a torn tail any open cuts.
    if (plan.lowerHint) {
      await store.updateMeta({ [DURABLE_HINT_KEY]: plan.cut });
      await say(`Lowered the durable hint to ${plan.cut}.`);
    }
    if (plan.cut < plan.storeLength) {
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

  const after = await withStore(path, options, (_target, check) => diagnose(check, reading));
  await say(
    `Done: the log opens ${after.status === 'clean' ? 'clean' : `but is ${after.status}`}: ${after.report.records} record(s), LSN ${after.report.head} to ${after.report.end}` +
      (reopened.skipped.length > 0
        ? `; ${reopened.skipped.length} damaged record(s) stepped over with recovery 'skip'.`
        : '.'),
  );
  return after.status === 'clean' ? EXIT.ok : EXIT.damaged;
}
