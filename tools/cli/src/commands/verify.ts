/** `wal verify <path>`: a full read-only scan, checking every record's checksum. */
import { isWalError, type WalError } from '@wal/errors';
import { diagnose } from '../diagnose.js';
import { CliError, describeError, EXIT } from '../errors.js';
import { findTarget, type Layout } from '../open.js';
import { Progress } from '../progress.js';
import {
  cutBytes,
  damageJson,
  describeDamage,
  describeHardDamage,
  describePendingCut,
  describeZeroTail,
  type Io,
  type LogOptions,
  pendingCutJson,
  readingOf,
  tearCutBytes,
  withStore,
} from './shared.js';

export interface VerifyOptions extends LogOptions {
  readonly json?: boolean;
}

/**
 * Reports damage that has no place in the frames (damaged metadata, an
 * oversized intact record) as the README shows: exit 1.
 */
async function reportUnplaced(
  path: string,
  layout: Layout,
  error: WalError,
  options: VerifyOptions,
  io: Io,
): Promise<number> {
  const message = describeError(error).message;
  if (options.json === true) {
    await io.out.line(
      JSON.stringify({
        path,
        layout,
        status: 'damaged',
        damage: { lsn: error.offset ?? null, kind: 'other', message },
      }),
    );
  } else {
    await io.out.line(`${path}: DAMAGED: ${message}`);
  }
  io.err.write(`wal: ${path}: ${message}\n`);
  return EXIT.damaged;
}

/** The damage a failed open of the log's store stands for, if it is damage. */
function damageOf(error: unknown): WalError | undefined {
  const cause = error instanceof CliError ? error.cause : undefined;
  return isWalError(cause, 'WAL_CORRUPTION') ? cause : undefined;
}

export async function verify(path: string, options: VerifyOptions, io: Io): Promise<number> {
  try {
    return await verifyLog(path, options, io);
  } catch (error) {
    // The metadata is read by the open, before the scan.
    const damage = damageOf(error);
    if (damage === undefined) throw error;
    const { layout } = await findTarget(path, options.segmentSize);
    return reportUnplaced(path, layout, damage, options, io);
  }
}

async function verifyLog(path: string, options: VerifyOptions, io: Io): Promise<number> {
  return withStore(path, options, async (target, store) => {
    const progress = new Progress(io.err, store.head, store.length, 'verifying');
    let diagnosis: Awaited<ReturnType<typeof diagnose>>;
    try {
      diagnosis = await diagnose(store, readingOf(options), (offset, length) =>
        progress.update(offset + length),
      ).finally(() => progress.done());
    } catch (error) {
      // Damage without a place in the frames: metadata, an oversized record.
      if (!isWalError(error, 'WAL_CORRUPTION') && !isWalError(error, 'WAL_RECORD_TOO_LARGE')) {
        throw error;
      }
      return reportUnplaced(path, target.layout, error, options, io);
    }
    const { report, damage } = diagnosis;
    // With --skip, damage stepped over is not a failure; without, test whether it could be.
    let skippable: boolean | null = null;
    if (damage !== undefined && options.skip !== true) {
      skippable = await diagnose(store, { ...readingOf(options), policy: 'skip' }).then(
        (found) => found.damage === undefined,
        () => false,
      );
    }
    const tear = damage === undefined ? report.tear : undefined;
    const json = {
      path,
      layout: target.layout,
      status: diagnosis.status,
      head: report.head,
      end: report.end,
      records: diagnosis.records,
      storeLength: report.storeLength,
      durableHint: diagnosis.durableHint,
      zeroTail: report.zeroTail,
      tear:
        tear === undefined
          ? null
          : {
              ...damageJson(target, store, tear),
              cutBytes: tearCutBytes(diagnosis),
              droppedFrames: report.droppedFrames,
            },
      damage:
        damage === undefined
          ? null
          : {
              ...damageJson(target, store, damage),
              shorterThanHint: damage.shorterThanHint,
              cutBytes: cutBytes(report),
              droppedFrames: report.droppedFrames,
              skippable,
            },
      pendingCut: pendingCutJson(diagnosis),
      skipped: report.skipped.map((skipped) => damageJson(target, store, skipped)),
    };
    if (options.json === true) {
      await io.out.line(JSON.stringify(json));
    } else {
      const lines: string[] = [];
      if (damage !== undefined) {
        lines.push(`${path}: DAMAGED: ${describeHardDamage(target, store, damage, diagnosis)}.`);
        lines.push(
          `  ${diagnosis.records} intact record(s) before it (LSN ${report.head} to ${report.end}).`,
        );
        lines.push(
          `  wal repair cuts ${cutBytes(report)} byte(s) at LSN ${report.end}` +
            (report.droppedFrames > 0
              ? `, dropping ${report.droppedFrames} intact-looking record(s) after the damage.`
              : '.'),
        );
        if (skippable === true) {
          lines.push('  wal repair --skip can step over the damaged record(s) instead.');
        }
      } else {
        lines.push(
          `${path}: ${tear === undefined ? 'OK' : 'OK with a torn tail'}: ${diagnosis.records} record(s), LSN ${report.head} to ${report.end}.`,
        );
        if (tear !== undefined) {
          lines.push(
            `  torn tail: ${describeDamage(target, store, tear)}, above the durable hint ${diagnosis.durableHint} (normal after a crash).`,
          );
        }
        const zeros = describeZeroTail(report);
        if (diagnosis.pendingCut !== undefined) {
          // What is cut past it, zeros included, is the cut's.
          lines.push(`  ${describePendingCut(diagnosis)}.`);
        } else if (zeros !== '') {
          lines.push(`  ${zeros}.`);
        }
        if (diagnosis.pendingCut === undefined && cutBytes(report) > 0) {
          lines.push(
            `  recovery (the next writable open) will cut ${cutBytes(report)} byte(s) at LSN ${report.end}` +
              (report.droppedFrames > 0
                ? `, dropping ${report.droppedFrames} intact-looking record(s) after the tear.`
                : '.'),
          );
        }
      }
      for (const skipped of report.skipped) {
        lines.push(`  stepped over (--skip): ${describeDamage(target, store, skipped)}.`);
      }
      for (const line of lines) await io.out.line(line);
    }
    if (damage === undefined) return EXIT.ok;
    io.err.write(
      `wal: ${path}: damaged below the durable hint at LSN ${damage.offset} (see wal repair)\n`,
    );
    return EXIT.damaged;
  });
}
