/**
 * What the modules of the log share (docs/INTERNALS.md §1, §2): the store and
 * its gate, the group commit, the positions, the blocked bits, and the
 * modules themselves, wired once by `Wal`'s constructor. Each field says
 * which module writes it; the others only read it. Internal to @wal/core.
 */
import type { GroupCommit } from '@wal/commit';
import { BusyError, ClosedError, ReadOnlyError } from '@wal/errors';
import type { Store } from '@wal/store';
import type { BoundaryIndex } from './boundary-index.js';
import type { Durability } from './durability.js';
import type { Exclusivity } from './exclusive.js';
import { StoreGate } from './gate.js';
import type { Locator } from './locate.js';
import type { Preallocation } from './preallocation.js';
import type { SharedLog } from './shared-log.js';
import type { FlushStats } from './stats.js';
import type { Wal } from './wal.js';
import type { Writer } from './writer.js';

// Why appends are refused: the bits of LogState.blocked (docs/INTERNALS.md §2).
/** `close()` was called (set by `Wal.close`; never cleared). */
export const BLOCK_CLOSED = 1;
/** Opened read-only (set at open; never cleared). */
export const BLOCK_READ_ONLY = 2;
/** The log failed (set by `Durability.fail`; never cleared). */
export const BLOCK_FAILED = 4;
/** A `truncateAfter` is requested and not finished (set and cleared by `Exclusivity`). */
export const BLOCK_TRUNCATING = 8;
/** Staging is full (set and cleared by `Writer`'s buffered accounting). */
export const BLOCK_FULL = 16;
/**
 * The log is shared with worker threads (set by `Wal.share`; never
 * cleared): appends take the shared path (shared-log.ts), where the ring,
 * not staging, is the back-pressure.
 */
export const BLOCK_SHARED = 32;

/** The log's shared state. Internal. */
export class LogState {
  readonly store: Store;
  /** The group commit; `undefined` for a read-only log. */
  readonly gc: GroupCommit | undefined;
  /** The store gate (docs/INTERNALS.md §8): every store call of the log goes through it. */
  readonly gate = new StoreGate();
  readonly index: BoundaryIndex;
  /** Offsets and claimed lengths of damaged records stepped over by the skip policy. */
  readonly skipped: Map<number, number>;
  /** The largest payload accepted (read-only: raised by `refresh` when the writer raised it). */
  maxRecordSize: number;
  readonly stagingLimit: number;
  readonly readOnly: boolean;
  /** Writes and syncs run synchronously when the store can (`WalOptions.blockingSync`; blocking.ts). */
  readonly blockingSync: boolean;
  /**
   * Durable commits are durable writes (`WalOptions.durableWrites` and the
   * store has them; writer.ts). Turned off for the handle when a durable
   * write could not start (docs/DURABILITY.md §2.2).
   */
  durableWrites: boolean;

  /** First live offset (written by the truncations and `refresh`). */
  head: number;
  /** The next LSN to be handed out (written by `Writer.stage`, `truncateAfter`, `refresh`). */
  tail: number;
  /** Read-only: end of the intact log as last scanned (written by `refresh`). */
  scannedEnd: number;
  /** A bit set of BLOCK_*; 0 on the fast path of `append` (docs/INTERNALS.md §2). */
  blocked: number;
  /** Cut offsets of every `truncateAfter`, in order: open readers clamp to them. */
  readonly cuts: number[] = [];
  /** Cuts of the log's end made or (read-only) last seen (persisted as `wal.truncations`). */
  cutCount: number;

  // The modules, wired by Wal's constructor (they call one another).
  writer!: Writer;
  preallocation!: Preallocation;
  durability!: Durability;
  exclusivity!: Exclusivity;
  locator!: Locator;
  stats!: FlushStats;
  /** The public log, named in the events of channels.ts. */
  wal!: Wal;
  /** The shared side, once `Wal.share` was called (shared-log.ts). */
  shared: SharedLog | undefined;

  constructor(init: {
    store: Store;
    gc: GroupCommit | undefined;
    index: BoundaryIndex;
    skipped: Map<number, number>;
    maxRecordSize: number;
    stagingLimit: number;
    readOnly: boolean;
    blockingSync?: boolean;
    durableWrites?: boolean;
    end: number;
    truncations: number;
  }) {
    this.store = init.store;
    this.gc = init.gc;
    this.index = init.index;
    this.skipped = init.skipped;
    this.maxRecordSize = init.maxRecordSize;
    this.stagingLimit = init.stagingLimit;
    this.readOnly = init.readOnly;
    this.blockingSync = init.blockingSync ?? false;
    this.durableWrites =
      (init.durableWrites ?? true) && !this.blockingSync && init.store.writeDurable !== undefined;
    this.head = init.store.head;
    this.tail = init.end;
    this.scannedEnd = init.end;
    this.cutCount = init.truncations;
    this.blocked = init.readOnly ? BLOCK_READ_ONLY : 0;
  }

  /** The written watermark (read-only logs: the scanned end). */
  get written(): number {
    return this.gc?.written ?? this.scannedEnd;
  }

  /**
   * The error for what the blocked bits refuse, by priority (closed,
   * read-only, failed, truncating, full): the most permanent reason first.
   */
  blockedError(what = 'append to the log'): Error {
    const blocked = this.blocked;
    if ((blocked & BLOCK_CLOSED) !== 0) return new ClosedError('log');
    if ((blocked & BLOCK_READ_ONLY) !== 0) return new ReadOnlyError(what);
    if ((blocked & BLOCK_FAILED) !== 0) return this.durability.failure!;
    if ((blocked & BLOCK_TRUNCATING) !== 0) {
      return new BusyError('a truncateAfter of the log is running; append after it resolves', {
        offset: this.tail,
      });
    }
    return new BusyError(
      `the log's staging memory is full (${this.writer.buffered} of ${this.stagingLimit} bytes): await wal.drained() before appending more`,
      { offset: this.tail },
    );
  }
}
