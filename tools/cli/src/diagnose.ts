/**
 * What is wrong with a log, found with read-only opens of `@wal/core` (the
 * same recovery scan a writable open runs): a clean log, a torn tail that
 * recovery cuts, or damage below the durable hint that it refuses; and a cut
 * of the log's end left in progress by a crash, which the next writable open
 * finishes.
 */
import type { Damage, RecoveryReport, Wal } from '@wal/core';
import { classifyDamage, DURABLE_HINT_KEY, frameLength, HEADER_SIZE } from '@wal/core';
import { isWalError } from '@wal/errors';
import type { Store } from '@wal/store';
import { openLog, type Reading, type ViewOptions } from './open.js';

/** Why a frame is damaged; `missing` when the log ends below its durable hint. */
export type Kind = Damage['kind'] | 'missing';

/** Damage found below the durable hint. */
export interface HardDamage {
  readonly offset: number;
  readonly kind: Kind;
  readonly claimedLength: number | undefined;
  /** The log ends below its durable hint (durable bytes are missing). */
  readonly shorterThanHint: boolean;
}

/**
 * A cut of the log's end in progress (`wal.cutTo`, docs/FORMAT.md §5.2): a
 * `truncateAfter`, or a recovery's cut, that a crash interrupted after it
 * marked the cut and before it removed the mark (or, beside a live writer,
 * one running now). The log ends at the mark: the bytes past it are neither
 * torn nor damage but what the cut drops, and the next writable open
 * finishes it (FORMAT.md §8 step 7).
 */
export interface PendingCut {
  /** Where the cut ends the log (`wal.cutTo`; the head, if that is below it): the recovery report's `end`. */
  readonly lsn: number;
  /** Bytes past it that the cut drops: the store's length less `lsn` (0: the cut is done, only its mark is left). */
  readonly cutBytes: number;
  /** Intact records past it, dropped with it. */
  readonly records: number;
}

export interface Diagnosis {
  readonly status: 'clean' | 'torn-tail' | 'damaged';
  /** The durable hint as stored (the head when none is stored). */
  readonly durableHint: number;
  /**
   * The recovery report of the log, or for a damaged log of the log with its
   * durable hint lowered to the damage: then `end` is where a repair cuts,
   * `tear` the damage, `tornBytes` what is cut.
   */
  readonly report: RecoveryReport;
  readonly maxRecordSize: number;
  /** The first damage below the durable hint that the policy does not step over. */
  readonly damage: HardDamage | undefined;
  /**
   * A cut of the log's end in progress that ends the log (`report.end` is
   * its mark), if any. The report's `tornBytes` then counts the bytes past
   * the mark too, and a `tear` it reports lies past the mark, among them.
   */
  readonly pendingCut: PendingCut | undefined;
  /**
   * Intact records from the head to `report.end`: the report's `records`,
   * which counts every intact record the scan read, less those past a cut
   * in progress.
   */
  readonly records: number;
}

/** The metadata key of a cut of the log's end in progress (docs/FORMAT.md §5.2). */
const CUT_TO_KEY = 'wal.cutTo';

/** Classifies the frame at `offset` as the recovery scan does (the library's own rule). */
async function frameKind(
  store: Store,
  offset: number,
): Promise<{ kind: Kind; claimedLength: number | undefined }> {
  if (offset >= store.length) return { kind: 'missing', claimedLength: undefined };
  const header = await store.read(offset, HEADER_SIZE);
  const length = header.length < HEADER_SIZE ? undefined : frameLength(header, 0);
  return classifyDamage(offset, store.length, length);
}

/**
 * The recovery report of a read-only open of `store`, with the count of the
 * records it holds (the report's own count takes in records past a cut in
 * progress; the log hands only those below it to a replay) when `count`.
 */
async function reportOf(
  store: Store,
  reading: Reading,
  options: ViewOptions,
  count: boolean,
): Promise<{ report: RecoveryReport; maxRecordSize: number; held: number | undefined }> {
  let held = 0;
  const replay = count
    ? (records: readonly unknown[]) => {
        held += records.length;
      }
    : undefined;
  const wal: Wal = await openLog(store, reading, options, replay);
  const result = {
    report: wal.recovery,
    maxRecordSize: wal.maxRecordSize,
    held: count ? held : undefined,
  };
  await wal.close();
  return result;
}

/**
 * The cut in progress that ends the log the report describes, if any: the
 * mark `cutTo` counts (not below the durable hint the scan used, FORMAT.md
 * §5.2) and the log ends at it (the head, if above it). A mark past the end
 * (damage, or a tear below it, ends the log first) leaves the end to them.
 */
function pendingCutOf(
  report: RecoveryReport,
  cutTo: number | undefined,
  hint: number,
  held: number | undefined,
): PendingCut | undefined {
  if (cutTo === undefined || cutTo < hint || report.end !== Math.max(cutTo, report.head)) {
    return undefined;
  }
  return {
    lsn: report.end,
    cutBytes: report.storeLength - report.end,
    records: report.records - (held ?? report.records),
  };
}

/**
 * Diagnoses `store` read as `reading` says (policy, record limit). Damage below the durable hint is located
 * by the rejection of the read-only open; the log is then scanned again as if
 * its hint stood at the damage, which tells what a cut there drops. Rejects
 * with what is not damage at a place (damaged metadata, an oversized intact
 * record, I/O).
 */
export async function diagnose(
  store: Store,
  reading: Reading,
  onRead?: (offset: number, length: number) => void,
): Promise<Diagnosis> {
  const meta = await store.readMeta();
  const stored = meta[DURABLE_HINT_KEY];
  const durableHint = typeof stored === 'number' ? stored : store.head;
  const mark = meta[CUT_TO_KEY];
  const cutTo = Number.isSafeInteger(mark) ? (mark as number) : undefined;
  const read = onRead === undefined ? {} : { onRead };
  let damage: HardDamage | undefined;
  let hint: number | undefined;
  let shorterThanHint = false;
  // Each round can only find damage lower than the last: a few rounds at most.
  for (let round = 0; round < 16; round++) {
    try {
      const { report, maxRecordSize, held } = await reportOf(
        store,
        reading,
        hint === undefined ? read : { ...read, hint },
        cutTo !== undefined,
      );
      const status = damage !== undefined ? 'damaged' : report.tear ? 'torn-tail' : 'clean';
      const pendingCut = pendingCutOf(report, cutTo, hint ?? durableHint, held);
      return {
        status,
        durableHint,
        report,
        maxRecordSize,
        damage,
        pendingCut,
        records: report.records - (pendingCut?.records ?? 0),
      };
    } catch (error) {
      const offset = isWalError(error, 'WAL_CORRUPTION') ? error.offset : undefined;
      if (offset === undefined || (hint !== undefined && offset >= hint)) throw error;
      const { kind, claimedLength } = await frameKind(store, offset);
      if (kind === 'missing') shorterThanHint = true;
      damage = { offset, kind, claimedLength, shorterThanHint };
      hint = offset;
    }
  }
  throw new Error('the recovery scan did not settle on a point of damage');
}
