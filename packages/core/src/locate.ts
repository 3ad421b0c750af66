/**
 * Reading one record and proving record boundaries (docs/FORMAT.md §2,
 * "record boundary", and §7.4): an LSN is validated by walking frame headers
 * from the nearest known boundary, never by checking that "a frame parses
 * here", and checked frame by frame only when that walk fails, so that a
 * damaged length on the way is reported as such; every store read of the log is counted (docs/INTERNALS.md §5) and
 * goes through the store gate (§8). Internal to @wal/core.
 */
import {
  BoundaryError,
  ClosedError,
  CorruptionError,
  FailedError,
  outOfRange,
  TruncatedError,
} from '@wal/errors';
import {
  continueFrameCrc,
  frameIsValid,
  frameLength,
  HEADER_SIZE,
  lengthFits,
  readU32,
} from './frame.js';
import { BLOCK_CLOSED, type LogState } from './state.js';

/** Read window of iterators and LSN validation. */
export const READ_WINDOW = 1024 * 1024;

/** Reads records by LSN. Internal. */
export class Locator {
  readonly #log: LogState;
  /** A boundary proven by the last read: sequential reads skip the index walk. */
  #knownBoundary = -1;

  constructor(log: LogState) {
    this.#log = log;
  }

  /** Forgets the boundary proven last if it lies below `head` (a `truncateBefore`). */
  forgetBelow(head: number): void {
    if (this.#knownBoundary < head) this.#knownBoundary = -1;
  }

  /** Forgets the boundary proven last if it lies past `end` (a `truncateAfter`), or always. */
  forgetAbove(end = -1): void {
    if (this.#knownBoundary > end) this.#knownBoundary = -1;
  }

  /** `Wal.read`, once the log is quiet: see there. */
  async read(lsn: number): Promise<Uint8Array> {
    const log = this.#log;
    const bound = log.readOnly ? log.scannedEnd : log.tail;
    this.checkRange(lsn, bound);
    if (!log.readOnly && lsn >= log.written) {
      log.writer.submit();
      await log.writer.waitTarget(lsn + 1, 'written');
    }
    const written = log.written;
    const length = await this.locate(lsn, written);
    const bytes = await this.readStore(lsn, HEADER_SIZE + length);
    if (bytes.length < HEADER_SIZE + length || !frameIsValid(bytes, 0, length)) {
      // The walk may have reached `lsn` through a damaged length: name the
      // first damaged frame on the way, if one is.
      try {
        await this.#checkedWalk(this.#walkStart(lsn), lsn, written, false);
      } catch (error) {
        if (!(error instanceof TruncatedError)) throw error;
        if (lsn < log.head) throw this.truncatedError(lsn);
      }
      throw this.damaged(lsn);
    }
    this.#knownBoundary = lsn + HEADER_SIZE + length;
    return bytes.subarray(HEADER_SIZE);
  }

  checkRange(lsn: number, bound: number): void {
    if (lsn < this.#log.head) throw this.truncatedError(lsn);
    if (lsn >= bound) throw outOfRange('lsn', `< the end of the log (${bound})`, lsn);
  }

  truncatedError(lsn: number): TruncatedError {
    return new TruncatedError(
      `no record at ${lsn}: the log was truncated before ${this.#log.head}`,
      { offset: lsn },
    );
  }

  /** The error for a record at `lsn` that fails its checksum. */
  damaged(lsn: number): CorruptionError {
    const skipped = this.#log.skipped.has(lsn);
    return new CorruptionError(
      skipped
        ? `the record at ${lsn} is damaged; recovery stepped over it (skip policy)`
        : `the record at ${lsn} fails its checksum`,
      { offset: lsn },
    );
  }

  /**
   * Validates that `lsn` is a record boundary below `bound` by walking frame
   * headers from the nearest known boundary; resolves with its payload length.
   */
  async locate(lsn: number, bound: number): Promise<number> {
    this.checkRange(lsn, bound);
    return this.walk(lsn, bound, true);
  }

  /**
   * Walks frame headers up to `lsn` (reading nothing at or past `bound`):
   * with `withLength`, resolves with the payload length of the record at
   * `lsn`; without, resolves (with 0) on reaching `lsn`, having read only
   * bytes below it. Rejects with `WAL_CORRUPTION` at the first damaged frame
   * on the way (a length it cannot follow, or, found when the walk failed,
   * a checksum), else `WAL_NOT_BOUNDARY` when `lsn` lies inside a record.
   * A `truncateBefore` that moves the head past the walk
   * meanwhile restarts it from the new head (or rejects with
   * `WAL_TRUNCATED` when `lsn` is below it).
   */
  async walk(lsn: number, bound: number, withLength: boolean): Promise<number> {
    const log = this.#log;
    for (;;) {
      const head = log.head;
      try {
        return await this.#walkFrom(lsn, bound, withLength);
      } catch (error) {
        if (log.head === head || !(error instanceof TruncatedError)) throw error;
        if (lsn < log.head) throw this.truncatedError(lsn);
      }
    }
  }

  /** Where a walk to `lsn` starts: the nearest known boundary at or below it. */
  #walkStart(lsn: number): number {
    const log = this.#log;
    const floor = log.index.floor(lsn) ?? log.head;
    return this.#knownBoundary >= 0 && this.#knownBoundary <= lsn
      ? Math.max(this.#knownBoundary, floor)
      : floor;
  }

  /**
   * {@link Locator.walk} from the nearest known boundary, by frame headers
   * alone (no checksum: the normal path). Stepping past `lsn`, or a header
   * that cannot be read, may come from a damaged length on the way rather
   * than from `lsn`: then the walk is made again checking every frame
   * ({@link Locator.#checkedWalk}), which names the first damaged one.
   */
  async #walkFrom(lsn: number, bound: number, withLength: boolean): Promise<number> {
    const start = this.#walkStart(lsn);
    let position = start;
    let window: Uint8Array = new Uint8Array(0);
    let windowStart = position;
    for (;;) {
      if (!withLength && position === lsn) return 0;
      if (position + HEADER_SIZE > windowStart + window.length) {
        windowStart = position;
        // Enough for every header up to `lsn` (at least a page), at most one window.
        const want = Math.max(lsn + HEADER_SIZE - position, 4096);
        window = await this.readStore(position, Math.min(READ_WINDOW, want, bound - position));
        if (window.length < HEADER_SIZE) break;
      }
      const length = frameLength(window, position - windowStart);
      if (!lengthFits(position, length, this.#log.maxRecordSize, bound)) break;
      if (position === lsn) return length;
      position += HEADER_SIZE + length;
      if (position > lsn) break;
    }
    return this.#checkedWalk(start, lsn, bound, withLength);
  }

  /**
   * The walk of {@link Locator.#walkFrom} from the boundary `start`, checking
   * the checksum of every frame before `lsn` (a frame recovery stepped over,
   * `recovery: 'skip'`, is stepped over again by its length): rejects with
   * `WAL_CORRUPTION` at the first frame that fails it or whose length
   * cannot be (past the maximum record size or `bound`), with
   * `WAL_NOT_BOUNDARY` only when intact frames step past `lsn`. Buffers are
   * at most one read window, whatever a length claims. Only after a walk
   * failed, or a read found damage: the normal path never checks twice.
   */
  async #checkedWalk(
    start: number,
    lsn: number,
    bound: number,
    withLength: boolean,
  ): Promise<number> {
    const log = this.#log;
    let window: Uint8Array = new Uint8Array(0);
    let windowStart = start;
    /**
     * Where `offset` is in the window, reading a new window from it (of
     * `want` bytes, at least a page, at most a read window) unless it holds
     * `need` bytes from there; fewer only at `bound`.
     */
    const bring = async (offset: number, need: number, want: number): Promise<number> => {
      const at = offset - windowStart;
      if (at >= 0 && window.length - at >= need) return at;
      windowStart = offset;
      window = await this.readStore(
        offset,
        Math.min(READ_WINDOW, Math.max(want, 4096), bound - offset),
      );
      return 0;
    };
    let position = start;
    for (;;) {
      if (!withLength && position === lsn) return 0;
      const at = await bring(position, HEADER_SIZE, lsn + HEADER_SIZE - position);
      if (window.length - at < HEADER_SIZE) break;
      const crc = readU32(window, at);
      const length = frameLength(window, at);
      if (!lengthFits(position, length, log.maxRecordSize, bound)) {
        throw new CorruptionError(
          `the frame at ${position} claims ${length} bytes, past the log's end or maximum record size`,
          { offset: position },
        );
      }
      if (position === lsn) return length;
      // The checksum covers the length field and the payload, read window by window.
      const end = position + HEADER_SIZE + length;
      let next = position + 4;
      let sum = 0;
      while (next < end) {
        const from = await bring(next, 1, end - next);
        const to = Math.min(window.length, from + (end - next));
        if (to <= from) throw this.damaged(position); // the store is shorter than `bound`
        sum = continueFrameCrc(sum, window, from, to);
        next += to - from;
      }
      if (sum !== crc && !log.skipped.has(position)) throw this.damaged(position);
      position = end;
      if (position > lsn) break;
    }
    throw new BoundaryError(`${lsn} is not a record boundary of the log`, { offset: lsn });
  }

  /**
   * Reads from the store, counted so a truncation waits for it. Rejects with
   * `WAL_TRUNCATED` when a `truncateBefore` moved the head past `offset`
   * while the read waited for the store gate, and with the log's failure
   * when the store refuses reads after a failure it latched (a `WAL_FAILED`
   * carrying the durable watermark, as `sync()` rejects with).
   */
  async readStore(offset: number, length: number): Promise<Uint8Array> {
    const log = this.#log;
    if ((log.blocked & BLOCK_CLOSED) !== 0 && log.store.closed) throw new ClosedError('log');
    log.exclusivity.begin();
    try {
      return await log.gate.call(() =>
        offset < log.head
          ? Promise.reject(this.truncatedError(offset))
          : log.store.read(offset, length),
      );
    } catch (error) {
      throw this.#readFailure(error);
    } finally {
      log.exclusivity.end();
    }
  }

  /**
   * The error a read rejects with for the store's `error`: a store's latched
   * `WAL_FAILED` (it names no offset) becomes the log's `WAL_FAILED`, or,
   * when the log's failure is another (a failed write whose cause the store
   * latched) or not known yet, one carrying the durable watermark
   * (docs/DURABILITY.md §4).
   */
  #readFailure(error: unknown): unknown {
    const log = this.#log;
    const gc = log.gc;
    if ((error as { code?: unknown } | null)?.code !== 'WAL_FAILED' || gc === undefined) {
      return error;
    }
    const failure = log.durability.failure;
    if (failure?.code === 'WAL_FAILED') return failure;
    return new FailedError(
      'the store refuses reads after a failure it latched; nothing after the last durable offset can be trusted',
      { cause: error, offset: gc.durable },
    );
  }
}
