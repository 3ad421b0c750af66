/**
 * Preallocation (docs/FORMAT.md §8.4, `WalOptions.preallocate`): zeros
 * written ahead of the end of the log, so that the syncs of the records that
 * go there have no file size to commit; never over data, never into a file
 * that may not exist yet (docs/INTERNALS.md §4). Internal to @wal/core.
 */
import { errorCode, FailedError } from '@wal/errors';
import { writeNow } from './blocking.js';
import { BLOCK_FAILED, type LogState } from './state.js';

/** Shared zeros for preallocation (never written to). */
let zeroBytes = new Uint8Array(0);
function zeros(length: number): Uint8Array {
  if (zeroBytes.length < length) zeroBytes = new Uint8Array(length);
  return zeroBytes.subarray(0, length);
}

/** The space the log's files have ahead of its end. Internal. */
export class Preallocation {
  readonly #log: LogState;
  /** Segment size of the store (preallocation stays within a segment), or 0. */
  readonly #segmentSize: number;
  /** Bytes to keep allocated ahead of the end; 0 when off (or after a failed preallocation). */
  #preallocate: number;
  /** End of the space the files have: data, or zeros written ahead. */
  #allocated: number;
  /** A sync was asked for since the last preallocation (buffered logs gain nothing from it). */
  #syncAsked = false;
  /** Start of the zeros being written, while they are; writes reaching past it wait. */
  #padding: number | undefined;
  /** A zero write failed: it may have extended the files past what the store counts. */
  #padFailed = false;

  constructor(log: LogState, preallocate: number, segmentSize: number, end: number) {
    this.#log = log;
    this.#preallocate = preallocate;
    this.#segmentSize = segmentSize;
    this.#allocated = end;
  }

  /** Whether a write ending at `end` must wait for the zeros in flight (it would reach them). */
  holds(end: number): boolean {
    return this.#padding !== undefined && end > this.#padding;
  }

  /** Notes a write sent up to `end`. */
  extend(end: number): void {
    if (end > this.#allocated) this.#allocated = end;
  }

  /** Notes that a `truncateAfter` cut the files at `end`. */
  cut(end: number): void {
    this.#allocated = end;
  }

  /** Notes that the group commit asked for a sync. */
  syncAsked(): void {
    if (this.#preallocate > 0) this.#syncAsked = true;
  }

  /**
   * Whether the files may hold bytes past `tail` that a clean close must cut:
   * zeros written ahead and not used, or (after a failed zero write) maybe.
   */
  leftover(tail: number): boolean {
    return this.#log.store.length > tail || this.#padFailed;
  }

  /**
   * After a write ending at `written` landed: once syncs are asked for and
   * less than half of `preallocate` is left ahead, writes zeros after the
   * allocated end (up to `preallocate` bytes, within the segment holding it),
   * so that the syncs of the records that will go there have no file size to
   * commit. Never over data: nothing is written at or past the allocated end
   * until these zeros land. Never into a file that may not exist yet (its
   * creation takes a directory sync, which belongs to records): only into the
   * segment the landed write ended in. A write failure turns preallocation
   * off; a failure the store latched stops the log.
   */
  afterWrite(written: number): void {
    const log = this.#log;
    if (
      this.#preallocate <= 0 ||
      !this.#syncAsked ||
      this.#padding !== undefined ||
      log.gate.closed !== undefined ||
      (log.blocked & BLOCK_FAILED) !== 0 ||
      this.#allocated - written >= this.#preallocate / 2
    ) {
      return;
    }
    const start = this.#allocated;
    let end = start + this.#preallocate;
    const segment = this.#segmentSize;
    if (segment > 0) {
      const index = Math.floor((start - 1) / segment);
      if (start % segment === 0 || index !== Math.floor((written - 1) / segment)) return;
      end = Math.min(end, (index + 1) * segment);
    }
    this.#syncAsked = false;
    this.#padding = start;
    log.exclusivity.begin();
    log.gate.enter();
    const done = (ok: boolean, cause?: unknown): void => {
      log.gate.leave();
      this.#padding = undefined;
      if (ok) {
        this.#allocated = Math.max(this.#allocated, end);
      } else {
        this.#preallocate = 0;
        this.#padFailed = true;
        if (errorCode(cause) === 'WAL_FAILED') {
          log.durability.fail(
            new FailedError('the store failed while the log preallocated space', {
              cause,
              offset: log.gc!.durable,
            }),
            'durable',
          );
        }
      }
      log.writer.releaseHeld();
      log.exclusivity.end();
    };
    const bytes = zeros(end - start);
    const now = writeNow(log, start, bytes);
    if (now === true) done(true);
    else if (now !== false) queueMicrotask(() => done(false, now.cause));
    else {
      log.store.write(start, bytes).then(
        () => done(true),
        (cause: unknown) => done(false, cause),
      );
    }
  }
}
