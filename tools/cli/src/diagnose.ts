/**
 * What is wrong with a log, found with read-only opens of `@wal/core` (the
 * same recovery scan a writable open runs): a clean log, a torn tail that
 * recovery cuts, or damage below the durable hint that it refuses.
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
}

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

async function reportOf(
  store: Store,
  reading: Reading,
  options: ViewOptions,
): Promise<{ report: RecoveryReport; maxRecordSize: number }> {
  const wal: Wal = await openLog(store, reading, options);
  const result = { report: wal.recovery, maxRecordSize: wal.maxRecordSize };
  await wal.close();
  return result;
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
  const read = onRead === undefined ? {} : { onRead };
  let damage: HardDamage | undefined;
  let hint: number | undefined;
  let shorterThanHint = false;
  // Each round can only find damage lower than the last: a few rounds at most.
  for (let round = 0; round < 16; round++) {
    try {
      const { report, maxRecordSize } = await reportOf(
        store,
        reading,
        hint === undefined ? read : { ...read, hint },
      );
      const status = damage !== undefined ? 'damaged' : report.tear ? 'torn-tail' : 'clean';
      return { status, durableHint, report, maxRecordSize, damage };
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
