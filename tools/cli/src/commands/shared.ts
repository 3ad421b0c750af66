/**
 * What the commands share: option parsers, opening a log read-only for a
 * command, and the description of damage.
 */
import type { RecoveryPolicy, RecoveryReport } from '@wal/core';
import type { Store } from '@wal/store';
import type { Diagnosis, HardDamage } from '../diagnose.js';
import { CliError, describeError } from '../errors.js';
import {
  describePlace,
  findTarget,
  openStoreReadOnly,
  placeOf,
  type Reading,
  type Target,
} from '../open.js';
import type { Output } from '../output.js';

/** Options every command that opens a log takes. */
export interface LogOptions {
  readonly segmentSize?: number;
  readonly maxRecordSize?: number;
  readonly skip?: boolean;
}

/** What a command runs with: where to write, and the terminal for messages. */
export interface Io {
  readonly out: Output;
  readonly err: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  readonly stdin: NodeJS.ReadableStream & { isTTY?: boolean };
}

/** How the command reads the log: `--skip` and `--max-record-size`. */
export function readingOf(options: LogOptions): Reading {
  const policy: RecoveryPolicy = options.skip === true ? 'skip' : 'strict';
  return options.maxRecordSize === undefined
    ? { policy }
    : { policy, maxRecordSize: options.maxRecordSize };
}

/** Finds the log at `path` and opens its store read-only for `work`, closing it after. */
export async function withStore<T>(
  path: string,
  options: LogOptions,
  work: (target: Target, store: Store) => Promise<T>,
): Promise<T> {
  return withTarget(await findTarget(path, options.segmentSize), work);
}

/** Opens the store of `target` (found already) read-only for `work`, closing it after. */
export async function withTarget<T>(
  target: Target,
  work: (target: Target, store: Store) => Promise<T>,
): Promise<T> {
  const store = await openStoreReadOnly(target);
  try {
    return await work(target, store);
  } catch (error) {
    const { message, exitCode } = describeError(error, target.path);
    throw error instanceof CliError ? error : new CliError(message, exitCode);
  } finally {
    await store.close();
  }
}

const KIND_TEXT: Record<string, string> = {
  checksum: 'checksum mismatch',
  'short-payload': 'record cut short',
  'short-header': 'header cut short',
  missing: 'bytes missing',
};

/** A damage or tear as JSON: where it is, on disk too. */
export function damageJson(
  target: Target,
  store: Store,
  damage: { offset: number; kind: string; claimedLength: number | undefined },
) {
  const place = placeOf(target, store, damage.offset);
  return {
    lsn: damage.offset,
    kind: damage.kind,
    claimedLength: damage.claimedLength ?? null,
    file: place.file,
    fileOffset: place.fileOffset,
  };
}

/** One phrase for a damaged frame: `checksum mismatch at LSN 700 (segment …, byte 700)`. */
export function describeDamage(
  target: Target,
  store: Store,
  damage: { offset: number; kind: string; claimedLength: number | undefined },
): string {
  const place = describePlace(placeOf(target, store, damage.offset), target.layout);
  const claimed =
    damage.claimedLength === undefined ? '' : `, header claims ${damage.claimedLength} bytes`;
  return `${KIND_TEXT[damage.kind] ?? damage.kind} at LSN ${damage.offset} (${place}${claimed})`;
}

/**
 * The phrase for the zeros that end a log after its records, as the recovery
 * report classifies them (`zeroTail`, FORMAT.md §8.4); empty when there are none.
 */
export function describeZeroTail(report: RecoveryReport): string {
  if (report.zeroTail === 0) return '';
  const from = report.end + report.tornBytes;
  return `${report.zeroTail} byte(s) of zeros from LSN ${from} to the end (space the log preallocates ahead of its records, left by a crash)`;
}

/**
 * The phrase for a cut of the log's end in progress (`wal.cutTo`): where it
 * ends the log and what it drops, whose bytes are neither torn nor damage.
 */
export function describePendingCut(diagnosis: Diagnosis): string {
  const cut = diagnosis.pendingCut!;
  const { report } = diagnosis;
  const what =
    `a cut of the log's end to LSN ${cut.lsn} is in progress (wal.cutTo: a truncateAfter, ` +
    'or a recovery, that a crash interrupted; a log stopped by a failed sync; or a writer cutting now)';
  if (cut.cutBytes === 0) {
    return `${what}, done already: the next writable open removes its mark`;
  }
  const parts = [`${cut.records} intact record(s)`];
  if (report.tear !== undefined) parts.push(`a torn record at LSN ${report.tear.offset}`);
  if (report.zeroTail > 0) parts.push(`${report.zeroTail} byte(s) of zeros`);
  return `${what}: the next writable open finishes it, cutting the ${cut.cutBytes} byte(s) past it (${parts.join(', then ')})`;
}

/**
 * Bytes from the tear to the end of the store, which recovery cuts: the torn
 * bytes and any zero tail after them (past a cut in progress, the bytes
 * between its mark and the tear are the cut's: see {@link describePendingCut}).
 */
export function tearCutBytes(diagnosis: Diagnosis): number {
  const { report } = diagnosis;
  return diagnosis.pendingCut === undefined || report.tear === undefined
    ? cutBytes(report)
    : report.storeLength - report.tear.offset;
}

/** A cut in progress as JSON, `null` when there is none. */
export function pendingCutJson(diagnosis: Diagnosis) {
  const cut = diagnosis.pendingCut;
  return cut === undefined ? null : { lsn: cut.lsn, cutBytes: cut.cutBytes, records: cut.records };
}

/** Bytes recovery (or a repair) cuts after the end: the torn bytes and the zeros after them. */
export function cutBytes(report: RecoveryReport): number {
  return report.tornBytes + report.zeroTail;
}

/** The sentence for damage below the hint. */
export function describeHardDamage(
  target: Target,
  store: Store,
  damage: HardDamage,
  diagnosis: Diagnosis,
): string {
  const short = damage.shorterThanHint
    ? `the log ends at ${diagnosis.report.storeLength}, below its durable hint ${diagnosis.durableHint}; `
    : '';
  return `${short}${describeDamage(target, store, damage)}, below the durable hint ${diagnosis.durableHint}`;
}
