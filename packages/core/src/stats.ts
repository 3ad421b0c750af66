/**
 * `Wal.stats()`: counters kept by the writer and the group commit's flush
 * report, read into a snapshot on demand. Nothing is allocated per append:
 * an append adds to two counters (`Writer.stage`); a flush adds to three
 * histograms. Internal; `WalStats` and `Log2Histogram` are re-exported.
 */
import type { FlushReport } from '@wal/commit';
import { publishCommit } from './channels.js';
import type { LogState } from './state.js';

/**
 * Counts by powers of two: `counts[0]` counts values below 1, `counts[i]`
 * (1 ≤ i ≤ 31) values in `[2^(i−1), 2^i)`, `counts[32]` values of 2^31 and
 * more. Always 33 entries.
 */
export type Log2Histogram = readonly number[];

/** Number of buckets of a {@link Log2Histogram}. */
export const LOG2_BUCKETS = 33;

/** A snapshot of a log's counters since it was opened; see `Wal.stats()`. */
export interface WalStats {
  /** Records appended (by `append` and `appendBatch`). */
  readonly appends: number;
  /** Payload bytes of those records. */
  readonly appendedBytes: number;
  /**
   * Flushes that made records durable: group-commit syncs that succeeded
   * (each one store sync), and durable writes that moved the durable
   * watermark (docs/DURABILITY.md §2.2).
   */
  readonly fsyncs: number;
  /** Bytes those flushes made durable (frames). */
  readonly syncedBytes: number;
  /** Per flush: durable waits it released (the group-commit batch size). */
  readonly batchWaiters: Log2Histogram;
  /** Per flush: bytes it made durable. */
  readonly batchBytes: Log2Histogram;
  /** Per flush: its sync's (or durable write's) duration in microseconds. */
  readonly fsyncMicros: Log2Histogram;
  /** Bytes of appended records held in memory, staged or being written (`wal.bufferedBytes`). */
  readonly bufferedBytes: number;
  /** Waits pending now: written and durable waits (appends, `waitFor`, `sync`) and `drained()` calls. */
  readonly waiters: number;
}

/** The bucket of `value` in a {@link Log2Histogram}. */
export function log2Bucket(value: number): number {
  if (!(value >= 1)) return 0;
  if (value >= 0x80000000) return LOG2_BUCKETS - 1;
  return 32 - Math.clz32(value);
}

/** The flush counters of one log. Internal. */
export class FlushStats {
  readonly #log: LogState;
  #fsyncs = 0;
  #syncedBytes = 0;
  readonly #batchWaiters = new Float64Array(LOG2_BUCKETS);
  readonly #batchBytes = new Float64Array(LOG2_BUCKETS);
  readonly #fsyncMicros = new Float64Array(LOG2_BUCKETS);

  constructor(log: LogState) {
    this.#log = log;
  }

  /** The group commit's `onFlush`: counts the flush, then publishes it (channels.ts). */
  readonly flushed = (report: FlushReport): void => {
    // Waiting appends of one chunk share one group-commit waiter (writer.ts).
    const shared = this.#log.writer.releasedDurable(report.end);
    const flush = shared === 0 ? report : { ...report, waiters: report.waiters + shared };
    const bytes = flush.end - flush.start;
    this.#fsyncs++;
    this.#syncedBytes += bytes;
    this.#batchWaiters[log2Bucket(flush.waiters)]!++;
    this.#batchBytes[log2Bucket(bytes)]!++;
    this.#fsyncMicros[log2Bucket(flush.syncMs * 1000)]!++;
    publishCommit(this.#log, flush);
  };

  /** A snapshot of every counter of the log. */
  snapshot(): WalStats {
    const log = this.#log;
    const writer = log.writer;
    return {
      appends: writer.appends,
      appendedBytes: writer.appendedBytes,
      fsyncs: this.#fsyncs,
      syncedBytes: this.#syncedBytes,
      batchWaiters: counts(this.#batchWaiters),
      batchBytes: counts(this.#batchBytes),
      fsyncMicros: counts(this.#fsyncMicros),
      bufferedBytes: writer.buffered,
      waiters: (log.gc?.waiters ?? 0) + writer.sharedWaiters + writer.drainWaiters,
    };
  }
}

/** A copy of `histogram` as a plain array. */
function counts(histogram: Float64Array): number[] {
  const out = new Array<number>(LOG2_BUCKETS);
  for (let i = 0; i < LOG2_BUCKETS; i++) out[i] = histogram[i]!;
  return out;
}
