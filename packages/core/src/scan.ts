/**
 * The recovery scan (docs/FORMAT.md §8): walks frames from the head of a
 * store, in bounded memory, and says where the log ends and why. It reads
 * only; the caller decides what to truncate. Internal to @wal/core.
 */
import { CorruptionError, RecordTooLargeError } from '@wal/errors';
import type { Store } from '@wal/store';
import type { BoundaryIndex } from './boundary-index.js';
import {
  classifyDamage,
  continueFrameCrc,
  type Damage,
  frameIsValid,
  frameLength,
  HEADER_SIZE,
  lengthFits,
  readHeader,
} from './frame.js';
import { refill, StoredRecord } from './record.js';

/**
 * What recovery does with damage below the durable hint.
 * - `strict`: it is `WAL_CORRUPTION`; nothing is truncated.
 * - `skip`: a record whose CRC fails is stepped over by its length (its LSN
 *   stays unreadable); damage that cannot be stepped over is still
 *   `WAL_CORRUPTION`, and so is damage right where a skip lands (even above
 *   the hint): until an intact frame follows, that offset is not a proven
 *   record boundary, so the damage cannot be told from misalignment and is
 *   never cut.
 * Damage at or above the hint is a torn tail under both policies (unless it
 * lies right where a skip landed).
 */
export type RecoveryPolicy = 'strict' | 'skip';

export type { Damage, DamageKind } from './frame.js';

/** The outcome of a scan. */
export interface ScanResult {
  /** End of the last intact frame: where the log resumes. */
  readonly end: number;
  /** Intact frames between the head and `end`. */
  readonly records: number;
  /**
   * The damage that ended the log: set when a non-zero byte follows `end`;
   * undefined when the log ends at the store's end or only zeros follow it.
   */
  readonly tear: Damage | undefined;
  /** Bytes from `end` through the last non-zero byte after it (0 without a tear). */
  readonly tornBytes: number;
  /**
   * Zero bytes that end the store after `end` (and after the torn bytes):
   * space the log preallocated, never written (FORMAT.md §8.4). A truncation
   * to `end` drops `tornBytes + zeroTail` bytes.
   */
  readonly zeroTail: number;
  /**
   * Intact-looking frames found after the tear by stepping over the damaged
   * frame by its claimed length: valid data that truncation drops. After a
   * power loss above the durable hint this is expected (writeback has no
   * order); the report shows it so an operator can tell.
   */
  readonly droppedFrames: number;
  /** Records stepped over under the `skip` policy. */
  readonly skipped: readonly Damage[];
}

/** Options of {@link scan}. */
export interface ScanOptions {
  readonly maxRecordSize: number;
  /** Offset below which every byte was durable: damage there is corruption. */
  readonly durableHint: number;
  readonly policy: RecoveryPolicy;
  /** Read-ahead window in bytes (default {@link SCAN_WINDOW}). */
  readonly windowSize?: number;
  /** Where to start: a record boundary at or above the head (default: the head). */
  readonly from?: number;
  /**
   * Where to stop: no byte at or past it is read (default, and at most: the
   * store's length). A follower stops at a cut the writer is making.
   */
  readonly end?: number;
  /** Called for every intact frame, in order, with its LSN and payload length. */
  readonly onFrame?: (lsn: number, length: number) => void;
  /** Notes the record boundaries found (cheaper than `onFrame`: only those it keeps). */
  readonly boundaries?: BoundaryIndex;
  /**
   * Replay: called with the intact records, in order, in batches (one per
   * read window), each checked once by the scan itself; a promise it returns
   * is awaited before the scan goes on. Every record before the scan's end is
   * delivered, nothing after it. With it, a record up to `maxRecordSize` is
   * read whole (memory: the window or the largest record).
   */
  readonly onRecords?: (records: StoredRecord[]) => void | Promise<void>;
  /**
   * With `onRecords`: read the windows into buffers used in turn, and refill
   * the same record objects and array, so the records of a batch are valid
   * only until `onRecords` returns (or its promise settles). Without
   * `onRecords` the scan always reuses its buffers (it hands out no bytes).
   */
  readonly reuseBuffers?: boolean;
}

/**
 * The scan's default read window: 2 MiB. Measured here against 1 MiB, a
 * replay of 4 KiB records ran about 30 % faster and one of 100-byte records
 * about 5 % (fewer reads and hops per byte); three windows stay in memory.
 */
export const SCAN_WINDOW = 2 * 1024 * 1024;
const noop = (): void => {};

/** Bytes read, and the pooled buffer holding them (when the cursor reuses buffers). */
interface Read {
  readonly bytes: Uint8Array;
  readonly owner: Uint8Array | undefined;
}

/**
 * A forward reader over a store that keeps one window of bytes, so walking
 * many small frames costs one read per window, and reads the next windows
 * ahead (two in flight) while the current one is walked. Each overlaps the
 * one before by a sixteenth, so a frame cut by a window's end is usually
 * whole in the next one. It never holds more than three windows, or those and
 * one read of a length the caller has already checked. With `reuse` (and a
 * store that has `readInto`), windows are read into buffers used in turn: the
 * bytes of a window are valid until the cursor moves past it (why that is
 * safe: docs/INTERNALS.md §9).
 */
class Cursor {
  #buffer: Uint8Array = new Uint8Array(0);
  #owner: Uint8Array | undefined;
  #start = 0;
  /** The read-aheads in flight: the windows after the current one, in order. */
  readonly #ahead: Array<{ start: number; read: Promise<Read> }> = [];
  readonly #spare: Uint8Array[] = [];
  readonly #reuse: boolean;
  readonly #end: number;
  readonly #overlap: number;

  constructor(
    readonly store: Store,
    readonly window: number,
    reuse: boolean,
  ) {
    this.#end = store.length;
    this.#overlap = Math.floor(window / 16);
    this.#reuse = reuse && typeof store.readInto === 'function';
  }

  /** Reads at least a window from `offset` (more when `length` is larger). */
  async #read(offset: number, length: number): Promise<Read> {
    if (!this.#reuse || length > this.window) {
      return {
        bytes: await this.store.read(offset, Math.max(length, this.window)),
        owner: undefined,
      };
    }
    const owner = this.#spare.pop() ?? new Uint8Array(this.window);
    const count = await this.store.readInto!(offset, owner);
    return { bytes: owner.subarray(0, count), owner };
  }

  /**
   * The next read-ahead holding `offset`, made the window; undefined (and
   * every read-ahead dropped) when none does. `whole`: it must hold
   * `[offset, offset + length)`, or all the store has of it.
   */
  async #advance(offset: number, length: number, whole: boolean): Promise<number | undefined> {
    while (this.#ahead.length > 0 && offset >= this.#ahead[0]!.start) {
      const { start, read } = this.#ahead.shift()!;
      const bytes = (await read).bytes;
      const at = offset - start;
      const usable = whole
        ? at + length <= bytes.length || start + bytes.length >= this.#end
        : at < bytes.length;
      if (usable) {
        this.#window(await read, start);
        return at;
      }
      const { owner } = await read;
      if (owner !== undefined) this.#spare.push(owner);
    }
    await this.settle();
    return undefined;
  }

  /** The bytes `[offset, offset + length)`, short only at the store's end. */
  async bytes(
    offset: number,
    length: number,
  ): Promise<{ buffer: Uint8Array; at: number; available: number }> {
    const end = this.#start + this.#buffer.length;
    if (offset >= this.#start && offset + length <= end) {
      return { buffer: this.#buffer, at: offset - this.#start, available: length };
    }
    const at = await this.#advance(offset, length, true);
    if (at !== undefined) {
      const buffer = this.#buffer;
      return { buffer, at, available: Math.max(0, Math.min(length, buffer.length - at)) };
    }
    this.#window(await this.#read(offset, length), offset);
    return { buffer: this.#buffer, at: 0, available: Math.min(length, this.#buffer.length) };
  }

  /** Makes `read` the window and keeps two reads ahead of it. */
  #window(read: Read, start: number): void {
    if (this.#owner !== undefined) this.#spare.push(this.#owner);
    this.#buffer = read.bytes;
    this.#owner = read.owner;
    this.#start = start;
    const last = this.#ahead.at(-1);
    if (last === undefined && read.bytes.length < this.window) return; // the store's end
    let from =
      last === undefined
        ? start + read.bytes.length - this.#overlap
        : last.start + this.window - this.#overlap;
    while (this.#ahead.length < 2 && from + this.#overlap < this.#end) {
      const next = this.#read(from, this.window);
      // Awaited when used, or by settle(); never an unhandled rejection.
      next.catch(noop);
      this.#ahead.push({ start: from, read: next });
      from += this.window - this.#overlap;
    }
  }

  /** Waits for the read-aheads in flight (results unused): the scan leaves no read behind. */
  async settle(): Promise<void> {
    const ahead = this.#ahead.splice(0);
    for (const { read } of ahead) {
      const owner = await read.then(
        (r) => r.owner,
        () => undefined,
      );
      if (owner !== undefined) this.#spare.push(owner);
    }
  }

  /**
   * Up to `length` bytes from `offset` (at least one unless at the store's
   * end): what the window or a read-ahead holds from there, else a read of
   * one window. For walking ranges larger than a window.
   */
  async span(
    offset: number,
    length: number,
  ): Promise<{ buffer: Uint8Array; at: number; available: number }> {
    const at = offset - this.#start;
    if (at >= 0 && at < this.#buffer.length) {
      return { buffer: this.#buffer, at, available: Math.min(length, this.#buffer.length - at) };
    }
    const within = await this.#advance(offset, length, false);
    if (within !== undefined) {
      const buffer = this.#buffer;
      return { buffer, at: within, available: Math.min(length, buffer.length - within) };
    }
    return this.bytes(offset, Math.min(length, this.window));
  }

  /** Where `[offset, offset + length)` lies in the current window, or -1 when not wholly in it. */
  within(offset: number, length: number): number {
    const at = offset - this.#start;
    return at >= 0 && at + length <= this.#buffer.length ? at : -1;
  }

  /** The current window (valid for positions `within` returned). */
  get bytesRead(): Uint8Array {
    return this.#buffer;
  }

  /** The store offset of the current window's first byte. */
  get windowStart(): number {
    return this.#start;
  }

  /**
   * Reads so that the frame at `offset` lies wholly in the window, when its
   * header is there to read, its length is at most `maxRecordSize` and it ends
   * by `storeEnd`. Resolves true when it read and the frame is now in the
   * window; false when it was already there (or cannot be: damage).
   */
  async fill(offset: number, storeEnd: number, maxRecordSize: number): Promise<boolean> {
    if (storeEnd - offset < HEADER_SIZE) return false;
    let filled = false;
    if (this.within(offset, HEADER_SIZE) < 0) {
      await this.bytes(offset, HEADER_SIZE);
      filled = true;
    }
    const at = this.within(offset, HEADER_SIZE);
    if (at < 0) return false;
    const length = frameLength(this.#buffer, at);
    if (!lengthFits(offset, length, maxRecordSize, storeEnd)) return false;
    const frame = HEADER_SIZE + length;
    if (this.within(offset, frame) < 0) {
      await this.bytes(offset, frame);
      filled = true;
    }
    return filled && this.within(offset, frame) >= 0;
  }

  /** CRC-32C of `[offset, offset + length)` (all present), read in windows. */
  async crc(offset: number, length: number, crc: number): Promise<number> {
    let done = 0;
    while (done < length) {
      const { buffer, at, available } = await this.span(offset + done, length - done);
      if (available === 0) break; // the store ended: the CRC cannot match
      crc = continueFrameCrc(crc, buffer, at, at + available);
      done += available;
    }
    return crc;
  }
}

/** Read size of {@link trailingZeros}. */
const ZERO_WINDOW = 256 * 1024;

/**
 * How many zero bytes end `[from, end)` of `store`: read backwards from
 * `end` in windows, so a tail of garbage costs one window and a zero tail
 * (preallocated space, typically up to 1 MiB) one read of itself.
 */
async function trailingZeros(store: Store, from: number, end: number): Promise<number> {
  let at = end;
  while (at > from) {
    const start = Math.max(from, at - ZERO_WINDOW);
    const bytes = await store.read(start, at - start);
    // A short read: the store ended early (it never does below its length).
    for (let i = Math.min(bytes.length, at - start) - 1; i >= 0; i--) {
      if (bytes[i] !== 0) return end - (start + i + 1);
    }
    at = start;
  }
  return end - from;
}

type Step =
  | { kind: 'end' }
  | { kind: 'frame'; length: number }
  | { kind: 'damage'; damage: Damage };

async function step(
  cursor: Cursor,
  offset: number,
  storeEnd: number,
  maxRecordSize: number,
): Promise<Step> {
  if (offset === storeEnd) return { kind: 'end' };
  if (storeEnd - offset < HEADER_SIZE) {
    return { kind: 'damage', damage: classifyDamage(offset, storeEnd, undefined) };
  }
  const head = await cursor.bytes(offset, HEADER_SIZE);
  const header = readHeader(head.buffer, head.at);
  // The CRC covers the length field (4 bytes at offset + 4) and the payload,
  // read in windows: never a buffer sized by an unchecked length.
  if (
    offset + HEADER_SIZE + header.length > storeEnd ||
    (await cursor.crc(offset + 4, 4 + header.length, 0)) !== header.crc
  ) {
    return { kind: 'damage', damage: classifyDamage(offset, storeEnd, header.length) };
  }
  if (header.length > maxRecordSize) {
    throw new RecordTooLargeError(header.length, maxRecordSize, { offset });
  }
  return { kind: 'frame', length: header.length };
}

/**
 * Scans `store` from its head (or `from`). Resolves with where the log ends; rejects with
 * `CorruptionError` (`WAL_CORRUPTION`) for damage below the durable hint that
 * the policy does not step over, and `RecordTooLargeError`
 * (`WAL_RECORD_TOO_LARGE`) for an intact frame above `maxRecordSize` (nothing
 * is a tear in either case). Memory is bounded by the window size.
 */
export async function scan(store: Store, options: ScanOptions): Promise<ScanResult> {
  const reuse = options.onRecords === undefined || options.reuseBuffers === true;
  // No window larger than what there is to scan (a small log opens without
  // allocating full windows), but at least a page.
  const span = endOf(store, options) - (options.from ?? store.head);
  const window = Math.min(options.windowSize ?? SCAN_WINDOW, Math.max(span, 4096));
  const cursor = new Cursor(store, window, reuse);
  try {
    return await walk(store, cursor, options);
  } finally {
    await cursor.settle();
  }
}

/** Where the scan of `store` stops: `options.end`, at most the store's length. */
function endOf(store: Store, options: ScanOptions): number {
  return Math.min(options.end ?? store.length, store.length);
}

async function walk(store: Store, cursor: Cursor, options: ScanOptions): Promise<ScanResult> {
  const { maxRecordSize, durableHint, policy, onFrame, onRecords, boundaries } = options;
  /** Frames from here on are offered to `boundaries` (which keeps one per interval). */
  let nextBoundary = boundaries === undefined ? Number.POSITIVE_INFINITY : 0;
  let batch: StoredRecord[] = [];
  /** Records of `batch` filled so far (the rest are left from an earlier batch). */
  let count = 0;
  const reuseRecords = options.reuseBuffers === true;
  const storeEnd = endOf(store, options);
  const skipped: Damage[] = [];
  let offset = options.from ?? store.head;
  let records = 0;
  /** True right after a skip, until an intact frame confirms the landing offset. */
  let unproven = false;
  for (;;) {
    // Fast path, without an await: intact frames wholly inside the window
    // (which no read replaces until the next await).
    const bytes = cursor.bytesRead;
    const base = cursor.windowStart;
    // Frames must end by the store's end, and wholly inside the window.
    const limit = Math.min(bytes.length, storeEnd - base);
    let at = offset - base;
    if (at >= 0) {
      while (at + HEADER_SIZE <= limit) {
        const length = frameLength(bytes, at);
        if (!lengthFits(at, length, maxRecordSize, limit)) break;
        if (!frameIsValid(bytes, at, length)) break;
        const frameEnd = at + HEADER_SIZE + length;
        const lsn = base + at;
        if (lsn >= nextBoundary) nextBoundary = boundaries!.note(lsn);
        onFrame?.(lsn, length);
        if (onRecords !== undefined) {
          if (count < batch.length) refill(batch[count]!, lsn, bytes, at + HEADER_SIZE, frameEnd);
          else batch.push(new StoredRecord(lsn, bytes, at + HEADER_SIZE, frameEnd));
          count++;
        }
        records++;
        unproven = false;
        at = frameEnd;
      }
      offset = base + at;
    }
    if (onRecords !== undefined) {
      if (count > 0) {
        if (batch.length > count) batch.length = count;
        const delivered = batch;
        // Reused buffers: the records (and the array) are valid only until
        // onRecords returns, so they are refilled for the next batch.
        if (!reuseRecords) batch = [];
        count = 0;
        await onRecords(delivered);
      }
      // Bring the next frame wholly into the window (its length checked
      // first) and go round again; what still stops the fast path is damage.
      if (await cursor.fill(offset, storeEnd, maxRecordSize)) continue;
    }
    const next = await step(cursor, offset, storeEnd, maxRecordSize);
    if (next.kind === 'end') {
      return {
        end: offset,
        records,
        tear: undefined,
        tornBytes: 0,
        zeroTail: 0,
        droppedFrames: 0,
        skipped,
      };
    }
    if (next.kind === 'frame') {
      // With onRecords, every intact frame up to maxRecordSize went through
      // the fast path after fill(); an intact one above it threw in step().
      if (onRecords !== undefined) {
        throw new CorruptionError(`the record at offset ${offset} changed while recovery read it`, {
          offset,
        });
      }
      unproven = false;
      if (offset >= nextBoundary) nextBoundary = boundaries!.note(offset);
      onFrame?.(offset, next.length);
      records++;
      offset += HEADER_SIZE + next.length;
      continue;
    }
    const { damage } = next;
    // Zeros ending the store after `offset` (FORMAT.md §8 step 5a); below the hint damage is
    // never a tail, so none are looked for there.
    const zeroTail = offset >= durableHint ? await trailingZeros(store, offset, storeEnd) : 0;
    if (zeroTail === storeEnd - offset) {
      // Nothing but zeros from here: no torn write, only space the log wrote
      // ahead of its records. Even where a skip landed: however the damaged
      // length misled it, cutting here drops no intact byte.
      return {
        end: offset,
        records,
        tear: undefined,
        tornBytes: 0,
        zeroTail,
        droppedFrames: 0,
        skipped,
      };
    }
    if (unproven) {
      // A skip steps over a record by the length its damaged header claims:
      // until an intact frame follows, where it landed is not a proven record
      // boundary, and damage there may be misalignment, not a tear.
      throw new CorruptionError(
        `damaged record (${damage.kind}) at offset ${offset}, right after the damaged record at ` +
          `${skipped[skipped.length - 1]!.offset} was stepped over: this offset is not a proven record boundary, ` +
          'so the damage cannot be told from a tear; nothing was cut',
        { offset },
      );
    }
    if (offset >= durableHint) {
      const droppedFrames = await countAfter(cursor, damage, storeEnd, maxRecordSize);
      return {
        end: offset,
        records,
        tear: damage,
        tornBytes: storeEnd - offset - zeroTail,
        zeroTail,
        droppedFrames,
        skipped,
      };
    }
    const steppable =
      policy === 'skip' &&
      damage.kind === 'checksum' &&
      (damage.claimedLength ?? Number.POSITIVE_INFINITY) <= maxRecordSize;
    if (!steppable) {
      throw new CorruptionError(
        `damaged record (${damage.kind}) at offset ${offset}, below the durable hint ${durableHint}: ` +
          'these bytes were durable, so this is not a torn tail',
        { offset },
      );
    }
    skipped.push(damage);
    unproven = true;
    offset += HEADER_SIZE + (damage.claimedLength ?? 0);
  }
}

/** Counts intact frames after a damaged one, stepping over it by its claimed length. */
async function countAfter(
  cursor: Cursor,
  damage: Damage,
  storeEnd: number,
  maxRecordSize: number,
): Promise<number> {
  if (damage.kind !== 'checksum' || (damage.claimedLength ?? 0) > maxRecordSize) return 0;
  let offset = damage.offset + HEADER_SIZE + (damage.claimedLength ?? 0);
  let count = 0;
  for (;;) {
    let next: Step;
    try {
      next = await step(cursor, offset, storeEnd, maxRecordSize);
    } catch {
      return count;
    }
    if (next.kind !== 'frame') return count;
    count++;
    offset += HEADER_SIZE + next.length;
  }
}
