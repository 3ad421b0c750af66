/**
 * The log's events on `node:diagnostics_channel` (public API: the channel
 * names in {@link CHANNELS} and the payload types below). A payload is built
 * only when the channel has a subscriber, so nobody listening costs one
 * property read per event, nothing per append. Internal publishers; the
 * names and types are re-exported by the package.
 */
import diagnosticsChannel from 'node:diagnostics_channel';
import type { FlushReport } from '@wal/commit';
import type { WalError } from '@wal/errors';
import type { RecoveryReport } from './recovery.js';
import type { LogState } from './state.js';
import type { Wal } from './wal.js';

/**
 * The names of the log's diagnostics channels: subscribe with
 * `diagnostics_channel.subscribe(CHANNELS.commit, listener)`. Stable: a
 * renamed channel or a removed payload field is a breaking change.
 */
export const CHANNELS = Object.freeze({
  /** Every group-commit flush whose sync succeeded: a {@link CommitEvent}. */
  commit: 'wal:commit',
  /** Every `truncateAfter` or `truncateBefore` that cut something: a {@link TruncateEvent}. */
  truncate: 'wal:truncate',
  /** Every log opened (writable or read-only), once recovery finished: a {@link RecoveryEvent}. */
  recovery: 'wal:recovery',
  /** A log stopping after a failed write, sync, hint update or truncation: a {@link FailEvent}. */
  fail: 'wal:fail',
  /** Segmented logs: the first write landing in each segment (a segment roll): a {@link RollEvent}. */
  roll: 'wal:roll',
} as const);

/**
 * Payload of {@link CHANNELS}`.commit`: one fsync, or one durable write,
 * shared by a group of committers.
 */
export interface CommitEvent {
  /** The log that flushed. */
  readonly wal: Wal;
  /** The durable watermark before the flush. */
  readonly start: number;
  /** The durable watermark after it. */
  readonly end: number;
  /** Bytes made durable by it (`end - start`; frames, not just payloads). */
  readonly bytes: number;
  /** Durable waits (waiting appends, `waitFor`, `sync`) the flush released. */
  readonly waiters: number;
  /**
   * How long the store's sync (with the durable hint's update) or the
   * durable write took, in milliseconds.
   */
  readonly syncMs: number;
  /** What made the records durable: a group-commit sync, or a durable write. */
  readonly by: 'sync' | 'write';
}

/** Payload of {@link CHANNELS}`.truncate`, published once the cut is durable. */
export interface TruncateEvent {
  readonly wal: Wal;
  /** `'after'`: records after `lsn` were dropped; `'before'`: records before `lsn`. */
  readonly side: 'after' | 'before';
  /** The argument of the call. */
  readonly lsn: number;
  /** The head after the cut. */
  readonly head: number;
  /** The tail after the cut. */
  readonly tail: number;
}

/** Payload of {@link CHANNELS}`.recovery`: published when `Wal.open` (or `reopen`) is about to resolve. */
export interface RecoveryEvent {
  readonly wal: Wal;
  /** The same report as `wal.recovery`. */
  readonly report: RecoveryReport;
}

/** Payload of {@link CHANNELS}`.fail`, published once per log, at its first failure. */
export interface FailEvent {
  readonly wal: Wal;
  /** The same error as `wal.failure`: `WAL_WRITE_FAILED` or `WAL_FAILED`. */
  readonly error: WalError;
}

/**
 * Payload of {@link CHANNELS}`.roll`: the log's first write into a segment
 * landed (the store created the segment for it). Published for each segment
 * a write reaches into, the first one of a new log included; a segment
 * written again after a `truncateAfter` cut it away is published again.
 */
export interface RollEvent {
  readonly wal: Wal;
  /** The segment's first offset (a multiple of `segmentSize`). */
  readonly offset: number;
  /** The store's segment size. */
  readonly segmentSize: number;
}

const commitChannel = diagnosticsChannel.channel(CHANNELS.commit);
const truncateChannel = diagnosticsChannel.channel(CHANNELS.truncate);
const recoveryChannel = diagnosticsChannel.channel(CHANNELS.recovery);
const failChannel = diagnosticsChannel.channel(CHANNELS.fail);
const rollChannel = diagnosticsChannel.channel(CHANNELS.roll);

/** Publishes a flush, if anyone listens. */
export function publishCommit(log: LogState, flush: FlushReport): void {
  if (!commitChannel.hasSubscribers) return;
  const event: CommitEvent = {
    wal: log.wal,
    start: flush.start,
    end: flush.end,
    bytes: flush.end - flush.start,
    waiters: flush.waiters,
    syncMs: flush.syncMs,
    by: flush.by,
  };
  commitChannel.publish(event);
}

/** Publishes a truncation that cut something, if anyone listens. */
export function publishTruncate(log: LogState, side: 'after' | 'before', lsn: number): void {
  if (!truncateChannel.hasSubscribers) return;
  const event: TruncateEvent = { wal: log.wal, side, lsn, head: log.head, tail: log.tail };
  truncateChannel.publish(event);
}

/** Publishes an open's recovery report, if anyone listens. */
export function publishRecovery(wal: Wal, report: RecoveryReport): void {
  if (!recoveryChannel.hasSubscribers) return;
  const event: RecoveryEvent = { wal, report };
  recoveryChannel.publish(event);
}

/** Publishes the first failure of a log, if anyone listens. */
export function publishFail(log: LogState, error: WalError): void {
  if (!failChannel.hasSubscribers) return;
  const event: FailEvent = { wal: log.wal, error };
  failChannel.publish(event);
}

/**
 * Publishes the segments a landed write `[start, end)` began, if anyone
 * listens: every multiple of `segmentSize` in the range (writes never
 * overlap, so each segment start is in one write only).
 */
export function publishRolls(log: LogState, start: number, end: number, segmentSize: number): void {
  if (!rollChannel.hasSubscribers) return;
  for (
    let offset = Math.ceil(start / segmentSize) * segmentSize;
    offset < end;
    offset += segmentSize
  ) {
    const event: RollEvent = { wal: log.wal, offset, segmentSize };
    rollChannel.publish(event);
  }
}
