import { setImmediate as nextTurn } from 'node:timers/promises';
import type { Wal } from '@wal/core';
import {
  BusyError,
  ClosedError,
  invalidArgType,
  invalidArgValue,
  isWalError,
  validateBytes,
  validateInteger,
  type WalError,
} from '@wal/errors';
import type { Fs } from '@wal/store';
import { type BatchOp, batchOps, encodeBatch, RecordSlab, syncOption } from './batch.js';
import type { BlockCache } from './block-cache.js';
import {
  compareBytes,
  copyBytes,
  KIND_DELETE,
  KIND_RANGE_DELETE,
  KIND_VALUE,
  TRAILER_SIZE,
  writeTrailer,
} from './coding.js';
import { type CompactionShape, pickCompaction, writeOutputs } from './compaction.js';
import { MergedCursor } from './cursor.js';
import { ioError, tablePath } from './files.js';
import { LsmIterator } from './iterator.js';
import {
  applyEdit,
  encodeEdit,
  snapshotEdit,
  type TableEntry,
  type VersionEdit,
  type VersionState,
} from './manifest.js';
import { Memtable } from './memtable.js';
import {
  type BatchOperation,
  type IteratorOptions,
  type LsmOptions,
  type LsmStats,
  type ReadOptions,
  type ResolvedOptions,
  resolveOptions,
  Snapshot,
  type WriteOptions,
} from './options.js';
import { lookup, readSources } from './reads.js';
import { type Recovered, recover } from './recovery.js';
import { Table, type TableLayout } from './table.js';
import { TableWriter } from './table-writer.js';
import { SLICE_MS, type SliceClock, Timeslice } from './timeslice.js';
import { emptyLevels, LiveTable, sortLevel, Version } from './version.js';

const noop = (): void => {};

/** What holds a write back (see {@link Lsm.#stall}). */
const GO = 0;
const STOP = 1;
const SLOW = 2;
const FULL = 3;
type Stall = typeof GO | typeof STOP | typeof SLOW | typeof FULL;
const EMPTY = new Uint8Array(0);
const RESOLVED = Promise.resolve();

interface PendingWrite {
  readonly sequence: number;
  readonly lsn: number;
  /** Keys and values are views into the write's log record. */
  readonly ops: readonly BatchOp[];
  /** Applied only once durable (else once written). */
  readonly sync: boolean;
  ready: boolean;
  resolve(): void;
  reject(error: unknown): void;
}

interface Frozen {
  readonly memtable: Memtable;
  /** Log offset before which every record is in this memtable or older ones. */
  readonly cut: number;
}

/**
 * A sorted key-value store on a directory: byte-string keys and values,
 * atomic batches, range deletions, snapshots, range iterators. Writes go through a
 * @wal/core log; flushed memtables become sorted tables recorded in a
 * manifest log.
 *
 * Errors: `WAL_LOCKED` (opened twice), `WAL_CLOSED` after `close()`,
 * `WAL_CORRUPTION` (a damaged table, manifest or log, with file and offset),
 * `WAL_IO`/`WAL_NO_SPACE`/`WAL_FAILED` for I/O failures (after one, writes
 * fail until the store is closed and opened again; reads go on), and
 * Node-style argument errors.
 */
export class Lsm {
  readonly #dir: string;
  readonly #fs: Fs;
  readonly #layout: TableLayout;
  readonly #writeBufferSize: number;
  /** Where this store's records are encoded (the memtable keeps views into it). */
  readonly #slab = new RecordSlab();
  readonly #lock: { release(): Promise<void> };
  readonly #wal: Wal;
  readonly #manifest: Wal;
  readonly #state: VersionState;
  readonly #shape: CompactionShape;
  readonly #slowdown: number;
  readonly #stop: number;
  readonly #targetFileSize: number;
  readonly #compactionReadSize: number;
  /** The clock of the slices of flushes and compactions. */
  readonly #sliceClock: SliceClock;
  readonly #maxManifestBytes: number;
  readonly #cache: BlockCache;
  /** The current version (holds one reference to it). */
  #version: Version;
  /** Every open table, current or still held by a reader. */
  readonly #open = new Set<LiveTable>();
  /** Deletions of tables no reader holds any more, in flight. */
  readonly #retiring = new Set<Promise<void>>();
  /**
   * Background work: flushes on one queue, compactions (and manifest
   * rewrites) on another, so a flush never waits for a compaction; their
   * manifest edits are serialized by `#editing`.
   */
  #flushWork: Promise<void> = Promise.resolve();
  #compactionWork: Promise<void> = Promise.resolve();
  #editing: Promise<void> = Promise.resolve();
  /** The next table number to allocate (at or above the manifest's nextFile). */
  #nextFile: number;
  #compactionQueued = false;
  readonly #pointers: (Uint8Array | undefined)[] = [];
  /** Live snapshots. */
  readonly #snapshots = new Set<Snapshot>();
  #compactedBytes = 0;
  #compactions = 0;
  #userBytes = 0;
  #logBytes = 0;
  #memtable = new Memtable();
  #frozen: Frozen | undefined;
  #flushing: Promise<void> | undefined;
  #nextSequence: number;
  #visible: number;
  /**
   * The writes appended and not applied yet, in sequence order, from
   * `#queueHead` on (applied ones are dropped from the front in bulk: a
   * `shift()` per write costs a move of the whole queue).
   */
  #queue: (PendingWrite | undefined)[] = [];
  #queueHead = 0;
  /**
   * The largest LSN appended in this turn of the event loop that waits for
   * `written` (`durableWait`: for `durable`), or -1: one wait on the log per
   * level and turn, shared by every write of that turn (see {@link Lsm.#awaitLog}).
   */
  #writtenWait = -1;
  #durableWait = -1;
  /** The LSN the turn's first durable write waited for at once, or -1. */
  #durableFirst = -1;
  /**
   * The operations of the writes in {@link Lsm.#writeAfterStall}, not
   * appended yet; later writes queue behind them.
   */
  readonly #held = new Set<readonly BatchOp[]>();
  /** Resolves once the last write to enter {@link Lsm.#writeAfterStall} has left it. */
  #stallQueue: Promise<void> = RESOLVED;
  /** The promise of the last write appended. */
  #lastWrite: Promise<void> | undefined;
  #failure: WalError | undefined;
  #closing: Promise<void> | undefined;
  /**
   * Set by `close()` once the writes held back by a stall when it was called
   * are appended (or failed): from then on no compaction starts. Until then
   * compactions go on, as a write held at the level-0 stop threshold waits
   * for one.
   */
  #stopped = false;
  /** The `flush()` calls in progress (each settles without rejecting); `close()` waits for them. */
  readonly #flushCalls = new Set<Promise<void>>();
  #flushedBytes = 0;

  private constructor(dir: string, options: ResolvedOptions, recovered: Recovered) {
    this.#dir = dir;
    this.#fs = options.fs;
    this.#layout = options.layout;
    this.#writeBufferSize = options.writeBufferSize;
    this.#shape = options.shape;
    this.#slowdown = options.slowdown;
    this.#stop = options.stop;
    this.#targetFileSize = options.targetFileSize;
    this.#compactionReadSize = options.compactionReadSize;
    this.#sliceClock = options.sliceClock;
    this.#cache = options.cache;
    this.#maxManifestBytes = options.maxManifestBytes;
    this.#lock = recovered.lock;
    this.#wal = recovered.wal;
    this.#manifest = recovered.manifest;
    this.#state = recovered.state;
    this.#nextFile = recovered.state.nextFile;
    const levels = emptyLevels();
    for (const table of recovered.tables) {
      levels[table.entry.level]!.push(table);
      this.#open.add(table);
    }
    this.#version = new Version(levels.map((tables, level) => sortLevel(level, tables)));
    this.#version.refs++;
    this.#memtable = recovered.memtable;
    this.#visible = Math.max(recovered.state.lastSequence, recovered.memtable.lastSequence);
    this.#nextSequence = this.#visible + 1;
  }

  /**
   * Opens (creating if missing or empty) the store in directory `path`
   * (docs/LSM-FORMAT.md §9): takes the lock, replays the manifest, opens
   * the live tables, recovers the data log and replays it into the
   * memtable, then deletes orphan tables.
   *
   * Rejects with `WAL_NOT_A_LOG` (`NotALogError`) when `path` exists and is not a
   * store (a file, or a directory holding anything but a store) — left
   * untouched; `WAL_LOCKED` when another handle holds the store;
   * `WAL_CORRUPTION` for a damaged manifest, table or log record;
   * `WAL_IO`/`WAL_FAILED` for I/O failures. Nothing stays open on rejection.
   */
  static async open(path: string, options: LsmOptions = {}): Promise<Lsm> {
    if (typeof path !== 'string' || path.length === 0) {
      throw invalidArgType('path', 'a non-empty string', path);
    }
    const resolved = resolveOptions(options);
    const recovered = await recover(path, resolved);
    const db = new Lsm(path, resolved, recovered);
    db.#scheduleCompaction();
    return db;
  }

  // ------------------------------------------------------------- writes

  /**
   * Sets `key` to `value`. Resolves once the write is applied and, with
   * `sync: true`, durable (else written: survives a process crash).
   * Rejects with argument errors, `WAL_CLOSED`, and the log's failure errors.
   */
  put(key: Uint8Array, value: Uint8Array, options?: WriteOptions): Promise<void> {
    try {
      validateBytes('key', key);
      validateBytes('value', value);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#write([{ kind: KIND_VALUE, key, value }], options);
  }

  /** Deletes `key` (a tombstone). Resolves and rejects as {@link Lsm.put}. */
  del(key: Uint8Array, options?: WriteOptions): Promise<void> {
    try {
      validateBytes('key', key);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#write([{ kind: KIND_DELETE, key, value: undefined }], options);
  }

  /**
   * Deletes every key `k` with `start ≤ k < end` (one range tombstone,
   * docs/LSM-FORMAT.md §7): keys written after it are not affected. With
   * `start ≥ end` nothing is deleted and nothing is written. Without `end`,
   * every key from `start` on that the store holds at this call (or has a
   * write in flight for) is deleted. Resolves and rejects as {@link Lsm.put}.
   */
  delRange(start: Uint8Array, end?: Uint8Array, options?: WriteOptions): Promise<void> {
    if (end !== undefined) return this.batch([{ type: 'delRange', start, end }], options);
    // Open-ended: up to just past the largest key the store may hold now
    // (fixed at this call, so later writes are not affected).
    const bound = this.#keyBound();
    return this.batch(
      bound === undefined ? [] : [{ type: 'delRange', start, end: bound }],
      options,
    );
  }

  /**
   * A key greater than every key the store holds or has a write in flight
   * for, appended or held back by a stall (the largest such key followed by
   * a 0x00 byte), or `undefined` when it holds none. Synchronous, so it is
   * fixed at the caller's point in time.
   */
  #keyBound(): Uint8Array | undefined {
    let largest: Uint8Array | undefined;
    const consider = (key: Uint8Array | undefined): void => {
      if (key !== undefined && (largest === undefined || compareBytes(key, largest) > 0))
        largest = key;
    };
    consider(this.#memtable.last()?.key);
    consider(this.#frozen?.memtable.last()?.key);
    for (const table of this.#version.tables()) consider(table.largest);
    for (let i = this.#queueHead; i < this.#queue.length; i++) {
      for (const op of this.#queue[i]!.ops) consider(op.key);
    }
    for (const ops of this.#held) for (const op of ops) consider(op.key);
    if (largest === undefined) return undefined;
    const bound = new Uint8Array(largest.length + 1);
    bound.set(largest);
    return bound;
  }

  /**
   * Applies `operations` atomically: one log record; after a crash either all
   * of them are there or none. Resolves and rejects as {@link Lsm.put}.
   */
  batch(operations: readonly BatchOperation[], options?: WriteOptions): Promise<void> {
    let ops: BatchOp[];
    try {
      ops = batchOps(operations);
    } catch (error) {
      return Promise.reject(error);
    }
    if (ops.length === 0)
      return this.#closing === undefined
        ? Promise.resolve()
        : Promise.reject(new ClosedError('store'));
    return this.#write(ops, options);
  }

  /**
   * Appends `ops` (the caller's buffers: copied into the log record before
   * this returns) as one record and resolves once it is applied. Without a
   * stall, synchronously up to the append; else after waiting out the stall.
   */
  #write(ops: readonly BatchOp[], options: WriteOptions | undefined): Promise<void> {
    let sync: boolean;
    try {
      sync = syncOption(options);
      // A write held back by a stall before close() is still written; a later one is refused.
      if (this.#closing !== undefined) throw new ClosedError('store');
      // Behind writes held back by a stall: after them, in call order.
      if (this.#held.size === 0 && this.#stall(false) === GO) {
        const written = this.#append(ops, sync);
        if (written !== undefined) return written;
      }
    } catch (error) {
      return Promise.reject(error);
    }
    // Copied: the caller may reuse its buffers once the call returns.
    const copies = ops.map((op) => ({
      ...op,
      key: copyBytes(op.key),
      value: op.value === undefined ? undefined : copyBytes(op.value),
    }));
    return this.#writeAfterStall(copies, sync);
  }

  /**
   * {@link Lsm.#write} past a stall: waits for the writes held back before
   * it to be appended, then for what holds writes back, then appends. Writes
   * are appended in call order: none overtakes one held back (a write held
   * while a flush runs is not passed by one made once it is done).
   */
  async #writeAfterStall(ops: readonly BatchOp[], sync: boolean): Promise<void> {
    const before = this.#stallQueue;
    let appended!: () => void;
    this.#stallQueue = new Promise((resolve) => {
      appended = resolve;
    });
    this.#held.add(ops);
    let written: Promise<void>;
    try {
      await before;
      [written] = await this.#appendPastStall(ops, sync);
    } finally {
      this.#held.delete(ops);
      appended();
    }
    return written;
  }

  /** Waits out the stalls, appends; the write's promise, in an array (not awaited here). */
  async #appendPastStall(ops: readonly BatchOp[], sync: boolean): Promise<[Promise<void>]> {
    let slowed = false;
    for (;;) {
      const stall = this.#stall(slowed);
      if (stall === STOP) {
        // Too many level-0 tables: wait for compaction to catch up.
        this.#scheduleCompaction();
        await this.#compactionWork;
        if (this.#version.levels[0]!.length >= this.#stop && this.#failure === undefined) {
          await nextTurn();
        }
      } else if (stall === SLOW) {
        slowed = true;
        await new Promise((resolve) => setTimeout(resolve, 1));
      } else if (stall === FULL) {
        await this.#flushing?.catch(noop);
      } else {
        const written = this.#append(ops, sync);
        if (written !== undefined) return [written];
        // The log's staging is full (back-pressure): wait until it drains.
        await this.#wal.drained();
      }
    }
  }

  /**
   * What holds a write back now: {@link GO} when nothing (freezing a full
   * memtable when no flush is running). Throws when the store failed (not
   * when it is closing: `close()` waits for the writes held back).
   * `slowed`: the write was delayed once already for level 0.
   */
  #stall(slowed: boolean): Stall {
    if (this.#failure !== undefined) throw this.#failure;
    const level0 = this.#version.levels[0]!.length;
    if (level0 >= this.#stop) return STOP;
    if (level0 >= this.#slowdown && !slowed) return SLOW;
    // Memory bound: one frozen memtable at most; past that, wait for its flush.
    if (this.#memtable.bytes >= this.#writeBufferSize) {
      if (this.#frozen !== undefined) return FULL;
      this.#freeze();
    }
    return GO;
  }

  /**
   * Appends the record of `ops` to the log and queues the write; its promise
   * resolves once the write is applied. `undefined` when the log's staging
   * is full; throws the log's other errors.
   */
  #append(ops: readonly BatchOp[], sync: boolean): Promise<void> | undefined {
    const sequence = this.#nextSequence;
    const views: BatchOp[] = [];
    const payload = encodeBatch(sequence, ops, views, this.#slab);
    let lsn: number;
    try {
      lsn = this.#wal.append(payload);
    } catch (error) {
      if (error instanceof BusyError) return undefined;
      throw error;
    }
    this.#nextSequence = sequence + ops.length;
    this.#logBytes += payload.length + 8;
    const written = new Promise<void>((resolve, reject) => {
      this.#queue.push({ sequence, lsn, ops: views, sync, ready: false, resolve, reject });
    });
    this.#lastWrite = written;
    this.#awaitLog(lsn, sync);
    return written;
  }

  /**
   * Notes that the record at `lsn` waits for the log (`durable` when
   * `sync`). The first write of a turn of the event loop schedules one
   * microtask that waits once per level for the largest LSN of the turn:
   * concurrent writers share one wait (and so one group-commit flush), not
   * one each. The turn's first durable write also waits at once, so that
   * the log knows before it sends the staged records that they are to be
   * made durable: they go as one durable write, not a write and then an
   * fdatasync (the microtask runs after the log has sent them).
   */
  #awaitLog(lsn: number, sync: boolean): void {
    // A resolved promise's reaction: a microtask without the async-hooks
    // resource Node's queueMicrotask makes for each call.
    if (this.#writtenWait === -1 && this.#durableWait === -1) RESOLVED.then(this.#waitLog);
    if (!sync) {
      this.#writtenWait = lsn;
      return;
    }
    if (this.#durableWait === -1) {
      this.#durableFirst = lsn;
      this.#waitDurable(lsn);
    }
    this.#durableWait = lsn;
  }

  readonly #waitLog = (): void => {
    const durable = this.#durableWait;
    const written = this.#writtenWait;
    const first = this.#durableFirst;
    this.#durableWait = -1;
    this.#writtenWait = -1;
    this.#durableFirst = -1;
    if (durable !== first) this.#waitDurable(durable);
    if (written !== -1) {
      this.#wal.waitFor(written, 'written').then(
        () => this.#logged(written, false),
        (error: unknown) => this.#fail(error),
      );
    }
  };

  /** Applies the writes up to `lsn` that wait for `durable` once the log holds it durably. */
  #waitDurable(lsn: number): void {
    this.#wal.waitFor(lsn, 'durable').then(
      () => this.#logged(lsn, true),
      (error: unknown) => this.#fail(error),
    );
  }

  /**
   * The log holds every record up to `lsn` (`durable`: durably): the writes
   * at or below it that waited for that are ready; applies them in order.
   */
  #logged(lsn: number, durable: boolean): void {
    const queue = this.#queue;
    for (let i = this.#queueHead; i < queue.length; i++) {
      const write = queue[i]!;
      if (write.lsn > lsn) break;
      if (durable || !write.sync) write.ready = true;
    }
    this.#apply();
  }

  /** Applies ready writes in sequence order (I1). */
  #apply(): void {
    const queue = this.#queue;
    let head = this.#queueHead;
    while (head < queue.length && queue[head]!.ready) {
      const write = queue[head]!;
      queue[head++] = undefined; // let go of it
      this.#queueHead = head;
      for (let i = 0; i < write.ops.length; i++) {
        const op = write.ops[i]!;
        if (op.kind === KIND_RANGE_DELETE)
          this.#memtable.deleteRange(op.key, op.value!, write.sequence + i);
        else this.#memtable.insert(op.key, write.sequence + i, op.kind, op.value);
        this.#userBytes += op.key.length + (op.value?.length ?? 0);
      }
      this.#visible = write.sequence + write.ops.length - 1;
      write.resolve();
    }
    if (head === queue.length) {
      queue.length = 0;
      head = 0;
    } else if (head >= 1024 && 2 * head >= queue.length) {
      queue.splice(0, head);
      head = 0;
    }
    this.#queueHead = head;
    if (this.#memtable.bytes >= this.#writeBufferSize && this.#frozen === undefined) this.#freeze();
  }

  /** Latches a write failure: every pending write rejects; later writes throw it. */
  #fail(error: unknown): void {
    this.#failure ??= isWalError(error)
      ? error
      : ioError(error, `writing to the store in ${this.#dir}`);
    const queue = this.#queue.slice(this.#queueHead);
    this.#queue = [];
    this.#queueHead = 0;
    for (const write of queue) write!.reject(this.#failure);
  }

  // ------------------------------------------------------------- flush

  /** Freezes the memtable and starts its flush in the background. */
  #freeze(): void {
    if (this.#memtable.count === 0) return;
    const cut = this.#queue[this.#queueHead]?.lsn ?? this.#wal.tail;
    this.#frozen = { memtable: this.#memtable, cut };
    this.#memtable = new Memtable();
    this.#slab.renew();
    const frozen = this.#frozen;
    const flushing = this.#enqueue('flush', () => this.#flush(frozen)).finally(() => {
      if (this.#flushing === flushing) this.#flushing = undefined;
    });
    flushing.catch(noop);
    this.#flushing = flushing;
  }

  /**
   * Writes the frozen memtable as a level-0 table (docs/LSM-FORMAT.md §10):
   * table file written and fdatasynced, directory fsynced; edit appended to
   * the manifest durably; the table installed; the log before the cut
   * dropped. A failure latches the store (writes fail; reads go on).
   */
  async #flush(frozen: Frozen): Promise<void> {
    try {
      const number = this.#nextFile++;
      const path = tablePath(this.#dir, number);
      const writer = await TableWriter.create(this.#fs, path, this.#layout);
      let written: Awaited<ReturnType<TableWriter['finish']>>;
      try {
        // One internal-key buffer, rewritten per entry (the writer copies it).
        let key = EMPTY;
        // Gives the turn back now and then: writes waiting on the log go on meanwhile.
        const slice = new Timeslice(SLICE_MS, this.#sliceClock);
        for (let entry = frozen.memtable.first(); entry !== undefined; entry = entry.next) {
          const { keyBytes, keyAt, keyLength } = entry;
          if (key.length !== keyLength + TRAILER_SIZE)
            key = new Uint8Array(keyLength + TRAILER_SIZE);
          for (let i = 0; i < keyLength; i++) key[i] = keyBytes[keyAt + i]!;
          writeTrailer(key, keyLength, entry.sequence, entry.kind);
          const next = slice.after(writer.add(key, entry.value ?? EMPTY));
          if (next !== undefined) await next;
        }
        written = await writer.finish(frozen.memtable.ranges);
      } finally {
        await writer.abandon();
      }
      const { size, summary } = written;
      await this.#syncDir();
      const entry: TableEntry = {
        level: 0,
        number,
        size,
        entries: summary.entries,
        smallest: summary.smallest,
        largest: summary.largest,
      };
      const edit: VersionEdit = {
        lastSequence: frozen.memtable.lastSequence,
        add: [entry],
      };
      await this.#record(edit);
      const table = new LiveTable(entry, await Table.open(this.#fs, path, this.#cache));
      this.#open.add(table);
      this.#install(this.#version.edit(new Set(), [table]));
      this.#flushedBytes += size;
      this.#frozen = undefined;
      // Appends go on while the log truncates (docs/FORMAT.md §7.2).
      await this.#wal.truncateBefore(frozen.cut);
      this.#scheduleCompaction();
    } catch (error) {
      this.#fail(error);
      throw this.#failure;
    }
  }

  /**
   * Appends `edit` (with nextFile past every table number allocated so far)
   * to the manifest, waits until it is durable, applies it; rewrites the
   * manifest when it outgrew `maxManifestBytes`. One edit at a time.
   */
  #record(edit: VersionEdit): Promise<void> {
    return this.#exclusiveEdit(async () => {
      const full: VersionEdit = { ...edit, nextFile: this.#nextFile };
      await this.#manifest.append(encodeEdit(full), { wait: 'durable' });
      applyEdit(this.#state, full);
      if (this.#manifest.tail - this.#manifest.head > this.#maxManifestBytes) {
        await this.#rewriteManifest();
      }
    });
  }

  /** Runs `job` once the manifest edits before it are done; no other edit runs meanwhile. */
  #exclusiveEdit(job: () => Promise<void>): Promise<void> {
    const run = this.#editing.then(job);
    this.#editing = run.catch(noop);
    return run;
  }

  /**
   * Rewrites the manifest as one snapshot edit (docs/LSM-FORMAT.md §8):
   * appended, durable, then the edits before it dropped. Only inside
   * {@link Lsm.#exclusiveEdit}, so no other edit lands in between.
   */
  async #rewriteManifest(): Promise<void> {
    const lsn = await this.#manifest.append(encodeEdit(snapshotEdit(this.#state)), {
      wait: 'durable',
    });
    await this.#manifest.truncateBefore(lsn);
  }

  /** Runs `job` after the work queued before it on `queue`; one job per queue at a time. */
  #enqueue(queue: 'flush' | 'compaction', job: () => Promise<void>): Promise<void> {
    if (queue === 'flush') {
      const run = this.#flushWork.then(job);
      this.#flushWork = run.catch(noop);
      return run;
    }
    const run = this.#compactionWork.then(job);
    this.#compactionWork = run.catch(noop);
    return run;
  }

  /** Resolves once the background work queued so far (flushes, then compactions) is done. */
  async #idle(): Promise<void> {
    await this.#flushWork;
    await this.#compactionWork;
  }

  /** Makes `version` current; the old one goes once its readers are done. */
  #install(version: Version): void {
    const old = this.#version;
    version.refs++;
    this.#version = version;
    this.#unref(old);
  }

  /**
   * Drops a reference to `version`; tables no version holds any more and
   * that an edit dropped are closed and deleted. Once the store is
   * closing, only the counts drop: close() closes every open table and
   * deletes the dropped ones itself, so that no deletion outlives it.
   */
  #unref(version: Version): void {
    if (--version.refs > 0) return;
    for (const live of version.tables()) {
      if (--live.refs > 0 || !live.obsolete || this.#closing !== undefined) continue;
      this.#open.delete(live);
      // A table it was moved from shares its file: while a reader holds
      // one, that one closes and deletes the file once released.
      let from = live.movedFrom;
      while (from !== undefined && from.refs === 0) from = from.movedFrom;
      if (from !== undefined) {
        from.obsolete = true;
        this.#open.add(from);
        continue;
      }
      // The edit that dropped it is durable; a crash before the unlink
      // leaves an orphan, deleted at the next open.
      const retired: Promise<void> = live.table
        .close()
        .then(() => this.#fs.unlink(live.table.path))
        .catch(noop)
        .finally(() => this.#retiring.delete(retired));
      this.#retiring.add(retired);
    }
  }

  /** The oldest sequence number a reader may still ask for. */
  #smallestSnapshot(): number {
    let smallest = this.#visible;
    for (const snapshot of this.#snapshots) smallest = Math.min(smallest, snapshot.sequence);
    return smallest;
  }

  /** Queues a compaction if the current version needs one and none is queued. */
  #scheduleCompaction(): void {
    if (this.#compactionQueued || this.#failure !== undefined || this.#stopped) return;
    if (pickCompaction(this.#version, this.#shape, [...this.#pointers]) === undefined) return;
    this.#compactionQueued = true;
    this.#enqueue('compaction', async () => {
      this.#compactionQueued = false;
      if (this.#failure !== undefined || this.#stopped) return;
      await this.#compactOnce();
      this.#scheduleCompaction();
    }).catch(noop);
  }

  /**
   * Runs one compaction (docs/LSM-FORMAT.md §11): output tables written,
   * fdatasynced and the directory fsynced; then one manifest edit removing
   * the inputs and adding the outputs, durable; then the new version
   * installed, and the inputs deleted once no reader holds them. A failure
   * latches the store as a failed flush does.
   */
  async #compactOnce(): Promise<void> {
    const plan = pickCompaction(this.#version, this.#shape, this.#pointers);
    if (plan === undefined) return;
    const version = this.#version;
    version.refs++;
    try {
      const removed = [...plan.inputs, ...plan.next];
      let outputs: TableEntry[];
      if (plan.move) {
        outputs = [{ ...plan.inputs[0]!.entry, level: plan.level + 1 }];
      } else {
        outputs = await writeOutputs(plan, {
          fs: this.#fs,
          dir: this.#dir,
          layout: this.#layout,
          targetFileSize: this.#targetFileSize,
          readSize: this.#compactionReadSize,
          sliceClock: this.#sliceClock,
          smallestSnapshot: this.#smallestSnapshot(),
          allocate: () => this.#nextFile++,
          written: (size) => {
            this.#compactedBytes += size;
          },
        });
        if (outputs.length > 0) await this.#syncDir();
      }
      const edit: VersionEdit = {
        remove: removed.map((t) => ({ level: t.entry.level, number: t.entry.number })),
        add: outputs,
      };
      await this.#record(edit);
      const added: LiveTable[] = [];
      for (const entry of outputs) {
        const table = plan.move
          ? plan.inputs[0]!.table
          : await Table.open(this.#fs, tablePath(this.#dir, entry.number), this.#cache);
        const live = new LiveTable(entry, table);
        if (plan.move) live.movedFrom = plan.inputs[0];
        this.#open.add(live);
        added.push(live);
      }
      if (plan.move) this.#open.delete(plan.inputs[0]!);
      else for (const live of removed) live.obsolete = true;
      // Onto the current version: a flush may have added a level-0 table meanwhile.
      this.#install(this.#version.edit(new Set(removed.map((t) => t.entry.number)), added));
      this.#compactions++;
    } catch (error) {
      this.#fail(error);
      throw this.#failure;
    } finally {
      this.#unref(version);
    }
  }

  async #syncDir(): Promise<void> {
    try {
      await this.#fs.syncDir(this.#dir);
    } catch (error) {
      throw ioError(error, `fsync of directory ${this.#dir}`);
    }
  }

  /**
   * Runs compactions until none is needed (waiting for background work
   * first). Resolves when the levels are within their budgets and the tables
   * no reader holds any more are deleted; rejects with
   * the failure that latched the store.
   */
  async compact(): Promise<void> {
    if (this.#closing !== undefined) throw new ClosedError('store');
    for (;;) {
      await this.#idle();
      if (this.#failure !== undefined) throw this.#failure;
      if (this.#closing !== undefined) throw new ClosedError('store');
      if (pickCompaction(this.#version, this.#shape, [...this.#pointers]) === undefined) break;
      this.#scheduleCompaction();
    }
    await Promise.all(this.#retiring);
  }

  /**
   * Flushes the memtable to a table now (waiting for a flush in progress
   * first) and drops the log records it covers: it covers every write called
   * before it (appended, or held back by a stall). Resolves when done;
   * rejects with the failure that latched the store, or `WAL_CLOSED` when
   * called after `close()`. A flush called before `close()` completes
   * before the store closes (`close()` waits for it).
   */
  flush(): Promise<void> {
    if (this.#closing !== undefined) return Promise.reject(new ClosedError('store'));
    // close() waits for it: the flush it starts after its waits is done
    // before the logs close and the lock is released.
    const flushing = this.#flushNow();
    const done = flushing.catch(noop).finally(() => this.#flushCalls.delete(done));
    this.#flushCalls.add(done);
    return flushing;
  }

  async #flushNow(): Promise<void> {
    // Writes held back by a stall at this call: appended (or failed) first.
    await this.#stallQueue;
    await this.#flushing?.catch(noop);
    if (this.#failure !== undefined) throw this.#failure;
    // Writes already called are applied first, so the flush covers them.
    await this.#settled();
    const covered = this.#visible;
    // Meanwhile a write may have filled the memtable and started its flush
    // (`#apply`), later writes going on in a new memtable: that flush holds
    // the writes to cover only when it was frozen after the last of them.
    for (;;) {
      if (this.#failure !== undefined) throw this.#failure;
      const frozen = this.#frozen;
      if (frozen === undefined) break;
      await this.#flushing?.catch(noop);
      if (frozen.memtable.lastSequence >= covered) {
        if (this.#failure !== undefined) throw this.#failure;
        return;
      }
    }
    this.#freeze();
    await this.#flushing;
  }

  /**
   * Resolves once every write appended so far has settled: writes settle in
   * sequence order (I1), or all at once on a failure, so the last one is enough.
   */
  async #settled(): Promise<void> {
    await this.#lastWrite?.catch(noop);
  }

  // ------------------------------------------------------------- reads

  /** The last sequence number applied (visible to new reads). */
  get sequence(): number {
    return this.#visible;
  }

  /** A snapshot of the store as of now. Throws `WAL_CLOSED` after close. */
  snapshot(): Snapshot {
    if (this.#closing !== undefined) throw new ClosedError('store');
    const snapshot = new Snapshot(this.#visible, this);
    this.#snapshots.add(snapshot);
    return snapshot;
  }

  /** @internal Called by {@link Snapshot.release}. */
  releaseSnapshot(snapshot: Snapshot): void {
    this.#snapshots.delete(snapshot);
  }

  #readSequence(options: ReadOptions | undefined): number {
    if (options === undefined) return this.#visible;
    if (typeof options !== 'object' || options === null) {
      throw invalidArgType('options', 'of type object', options);
    }
    const snapshot = options.snapshot;
    if (snapshot === undefined) return this.#visible;
    if (!(snapshot instanceof Snapshot) || snapshot.owner !== this) {
      throw invalidArgType('options.snapshot', 'a Snapshot of this store', snapshot);
    }
    if (snapshot.released) throw invalidArgValue('options.snapshot', 'released', 'was released');
    return snapshot.sequence;
  }

  /**
   * The value of `key` (a copy), or `undefined` when it is absent or deleted,
   * at the snapshot given or the latest applied write. Looks in the
   * memtable, the frozen memtable, then tables newest first (bloom filters
   * skip tables). Rejects with `WAL_CORRUPTION`, `WAL_IO`, `WAL_CLOSED`.
   */
  async get(key: Uint8Array, options?: ReadOptions): Promise<Uint8Array | undefined> {
    validateBytes('key', key);
    const sequence = this.#readSequence(options);
    if (this.#closing !== undefined) throw new ClosedError('store');
    const memtables = [this.#memtable, this.#frozen?.memtable].filter((m) => m !== undefined);
    const version = this.#version;
    version.refs++;
    try {
      return await lookup(memtables, version, key, sequence);
    } finally {
      this.#unref(version);
    }
  }

  /**
   * An iterator over the entries in a key range at a snapshot (the one
   * given, or the latest applied write at this call), forward or reverse.
   * It sees that snapshot while writes and flushes go on. Throws argument
   * errors and `WAL_CLOSED`.
   *
   * With `hold`, the iterator keeps its tables at the end, until `return()`,
   * so that `seek` can restart it (as abstract-level's iterators do).
   */
  iterator(options: IteratorOptions = {}, hold = false): LsmIterator {
    if (typeof options !== 'object' || options === null) {
      throw invalidArgType('options', 'of type object', options);
    }
    const sequence = this.#readSequence(options);
    if (this.#closing !== undefined) throw new ClosedError('store');
    for (const name of ['gt', 'gte', 'lt', 'lte'] as const) {
      if (options[name] !== undefined) validateBytes(`options.${name}`, options[name]);
    }
    const limit = options.limit ?? -1;
    if (limit !== -1) validateInteger('options.limit', limit, 0);
    const memtables = [this.#memtable, this.#frozen?.memtable].filter((m) => m !== undefined);
    const version = this.#version;
    version.refs++;
    const { sources, ranges } = readSources(memtables, version, sequence);
    return new LsmIterator(
      this,
      new MergedCursor(sources),
      sequence,
      ranges,
      options,
      limit,
      () => this.#unref(version),
      hold,
    );
  }

  /** @internal */
  get isClosed(): boolean {
    return this.#closing !== undefined;
  }

  /** Counters and sizes; see {@link LsmStats}. */
  stats(): LsmStats {
    const version = this.#version;
    const written = this.#logBytes + this.#flushedBytes + this.#compactedBytes;
    return {
      sequence: this.#visible,
      tables: version.levels.map((level) => level.length),
      levelBytes: version.levels.map((_, level) => version.bytes(level)),
      memtableBytes: this.#memtable.bytes,
      flushing: this.#frozen !== undefined,
      flushedBytes: this.#flushedBytes,
      compactedBytes: this.#compactedBytes,
      compactions: this.#compactions,
      userBytes: this.#userBytes,
      logBytes: this.#logBytes,
      writeAmplification: this.#userBytes === 0 ? 0 : written / this.#userBytes,
      blockCacheBytes: this.#cache.bytes,
      tableMemoryBytes: tableMemory(version),
    };
  }

  // ------------------------------------------------------------- close

  /**
   * Closes the store: refuses new calls (`WAL_CLOSED`) at once; then waits
   * for the writes called before it, those held back by a write stall
   * included (they are written in call order, after the flushes and
   * compactions they wait for; if the store fails meanwhile they reject
   * with its failure), for the `flush()` calls in progress (each flushes,
   * or rejects with that failure) and for a flush in progress; closes the
   * logs (making every write durable) and the tables, deletes the tables
   * compactions dropped (those readers still held too: a reader let go
   * after this call deletes nothing), releases the lock; nothing touches
   * the directory after that. The memtable is
   * not flushed: the log holds it and the next open replays it. Idempotent.
   * Rejects if closing a log fails (everything is released anyway).
   */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    let error: unknown;
    // Writes held back by a stall were accepted: appended first (or failed
    // with the store's failure), as abstract-level's contract asks of a
    // store: close once the operations in flight are done.
    if (this.#held.size > 0) await this.#stallQueue;
    this.#stopped = true;
    await this.#settled();
    // A flush() called before close() starts its flush only after its own
    // waits: done before anything closes.
    await Promise.all(this.#flushCalls);
    await this.#idle();
    await Promise.all(this.#retiring);
    try {
      await this.#wal.close();
    } catch (cause) {
      error = cause;
    }
    try {
      await this.#manifest.close();
    } catch (cause) {
      error ??= cause;
    }
    // A reader let go from here on leaves its tables to this loop (#unref).
    for (const live of this.#open) {
      await live.table.close();
      if (live.obsolete) await this.#fs.unlink(live.table.path).catch(noop);
    }
    this.#open.clear();
    await this.#lock.release();
    if (error !== undefined) throw error;
  }

  /**
   * Rewrites the manifest as one snapshot edit and drops the edits before it
   * (docs/LSM-FORMAT.md §8): crash-safe, as the snapshot is durable before
   * the log's head moves past the older edits.
   */
  async compactManifest(): Promise<void> {
    if (this.#closing !== undefined) throw new ClosedError('store');
    await this.#exclusiveEdit(async () => {
      if (this.#failure !== undefined) throw this.#failure;
      await this.#rewriteManifest();
    });
  }
}

/** Bytes the tables of `version` hold in memory ({@link LsmStats.tableMemoryBytes}). */
function tableMemory(version: Version): number {
  let total = 0;
  for (const { table } of version.tables()) total += table.memoryBytes;
  return total;
}
