/**
 * Reading one record and proving record boundaries (docs/FORMAT.md §2,
 * "record boundary", and §7.4): an LSN is validated by walking frame headers
 * from the nearest known boundary, never by checking that "a frame parses
 * here"; every store read of the log is counted (docs/INTERNALS.md §5) and
 * goes through the store gate (§8). Internal to @wal/core.
 */
import {
  BoundaryError,
  ClosedError,
  CorruptionError,
  outOfRange,
  TruncatedError,
} from '@wal/errors';
import { frameIsValid, frameLength, HEADER_SIZE, lengthFits } from './frame.js';
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
    const length = await this.locate(lsn, log.written);
    const bytes = await this.readStore(lsn, HEADER_SIZE + length);
    if (bytes.length < HEADER_SIZE + length || !frameIsValid(bytes, 0, length)) {
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
   * bytes below it. A `truncateBefore` that moves the head past the walk
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

  async #walkFrom(lsn: number, bound: number, withLength: boolean): Promise<number> {
    const log = this.#log;
    let position =
      this.#knownBoundary >= 0 && this.#knownBoundary <= lsn
        ? Math.max(this.#knownBoundary, log.index.floor(lsn) ?? log.head)
        : (log.index.floor(lsn) ?? log.head);
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
      const at = position - windowStart;
      const length = frameLength(window, at);
      if (!lengthFits(position, length, log.maxRecordSize, bound)) {
        throw new CorruptionError(
          `the frame at ${position} claims ${length} bytes, past the log's end or maximum record size`,
          { offset: position },
        );
      }
      if (position === lsn) return length;
      position += HEADER_SIZE + length;
      if (position > lsn) break;
    }
    throw new BoundaryError(`${lsn} is not a record boundary of the log`, { offset: lsn });
  }

  /**
   * Reads from the store, counted so a truncation waits for it. Rejects with
   * `WAL_TRUNCATED` when a `truncateBefore` moved the head past `offset`
   * while the read waited for the store gate.
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
    } finally {
      log.exclusivity.end();
    }
  }
}
