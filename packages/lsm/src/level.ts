/**
 * The store as an `abstract-level` 3.x database: the public API, encodings,
 * sublevels, events and hooks come from abstract-level; this file maps its
 * private methods onto {@link Lsm}.
 */

import { ClosedError, invalidArgType, invalidArgValue } from '@wal/errors';
import { NodeFs } from '@wal/store';
import type {
  AbstractBatchOperation,
  AbstractBatchOptions,
  AbstractClearOptions,
  AbstractDatabaseOptions,
  AbstractDelOptions,
  AbstractPutOptions,
} from 'abstract-level';
import {
  AbstractChainedBatch,
  AbstractIterator,
  AbstractLevel,
  AbstractSnapshot,
} from 'abstract-level';
import { copyBytes } from './coding.js';
import { hasStore } from './directory.js';
import type { LsmIterator } from './iterator.js';
import { Lsm } from './lsm.js';
import { LSM_OPTION_KEYS, rejectMisspeltLevelOptions } from './option-keys.js';
import type {
  BatchOperation,
  IteratorOptions,
  LsmOptions,
  LsmStats,
  Snapshot,
  WriteOptions,
} from './options.js';

/** Options of `new LsmLevel(location, options)`: abstract-level's and {@link LsmOptions}. */
export interface LsmLevelOptions<K = string, V = string>
  extends AbstractDatabaseOptions<K, V>,
    LsmOptions {}

/** The write option LsmLevel adds to abstract-level's, as classic-level does. */
export interface LsmLevelWriteOptions {
  /**
   * `true`: resolve once the write is durable (fdatasync through the log's
   * group commit; survives a power loss). Default `false`: once it is
   * written to the operating system (survives a process crash, not a power
   * loss).
   */
  readonly sync?: boolean | undefined;
}

/**
 * The write methods' signatures with {@link LsmLevelWriteOptions} (merged
 * into the class, as classic-level's typings declare theirs).
 */
export interface LsmLevel<KDefault = string, VDefault = string> {
  /** Sets `key` to `value`; resolves once written (survives a process crash). */
  put(key: KDefault, value: VDefault): Promise<void>;
  /** Sets `key` to `value`; with `sync: true`, resolves once durable (survives a power loss). */
  put<K = KDefault, V = VDefault>(
    key: K,
    value: V,
    options: AbstractPutOptions<K, V> & LsmLevelWriteOptions,
  ): Promise<void>;
  /** Deletes `key`; resolves once written. */
  del(key: KDefault): Promise<void>;
  /** Deletes `key`; with `sync: true`, resolves once durable. */
  del<K = KDefault>(key: K, options: AbstractDelOptions<K> & LsmLevelWriteOptions): Promise<void>;
  /** Applies `operations` atomically (one log record); resolves once written. */
  batch(operations: AbstractBatchOperation<this, KDefault, VDefault>[]): Promise<void>;
  /** Applies `operations` atomically; with `sync: true`, resolves once durable. */
  batch<K = KDefault, V = VDefault>(
    operations: AbstractBatchOperation<this, K, V>[],
    options: AbstractBatchOptions<K, V> & LsmLevelWriteOptions,
  ): Promise<void>;
  /** A chained batch; its `write({ sync: true })` resolves once durable. */
  batch(): AbstractChainedBatch<this, KDefault, VDefault>;
  /** Deletes every entry as of the call (one range deletion); resolves once written. */
  clear(): Promise<void>;
  /** Deletes a range as of the call; with `sync: true`, resolves once durable. */
  clear<K = KDefault>(options: AbstractClearOptions<K> & LsmLevelWriteOptions): Promise<void>;
}

/** What abstract-level hands to the private write methods. */
interface PrivateWriteOptions {
  readonly sync?: unknown;
}

/** What abstract-level hands to the private read methods. */
interface PrivateReadOptions {
  readonly snapshot?: LsmLevelSnapshot | undefined;
}

/** Range options as abstract-level hands them over (keys already encoded). */
interface PrivateRangeOptions extends PrivateReadOptions, PrivateWriteOptions {
  readonly gt?: Uint8Array;
  readonly gte?: Uint8Array;
  readonly lt?: Uint8Array;
  readonly lte?: Uint8Array;
  readonly reverse: boolean;
  readonly limit: number;
}

interface PrivateBatchOperation {
  readonly type: 'put' | 'del';
  readonly key: Uint8Array;
  readonly value?: Uint8Array;
}

/** abstract-level's methods used by {@link LsmLevel.put}, as its JavaScript has them. */
interface UntypedLevel {
  _assertValidKey(key: unknown): void;
  _assertValidValue(value: unknown): void;
  keyEncoding(encoding: unknown): { encode(key: unknown): Uint8Array; readonly format: string };
  valueEncoding(encoding: unknown): { encode(value: unknown): Uint8Array };
  prefixKey(key: Uint8Array, format: string, local: boolean): Uint8Array;
}

/** Most entries an iterator's `next()` reads ahead at once. */
const MAX_BATCH = 64;
/** Keys to delete per batch when `clear()` has a limit. */
const CLEAR_CHUNK = 1000;
const EMPTY = new Uint8Array(0);

function writeOptions(options: PrivateWriteOptions): WriteOptions {
  return options.sync === undefined ? {} : { sync: options.sync as boolean };
}

/** `key` followed by a 0x00 byte: the smallest key greater than `key`. */
function successor(key: Uint8Array): Uint8Array {
  const next = new Uint8Array(key.length + 1);
  next.set(key);
  return next;
}

/**
 * A durable sorted key-value store as an
 * [`abstract-level`](https://github.com/Level/abstract-level) 3.x database: a
 * drop-in for `new ClassicLevel(location, options)`, over {@link Lsm} (an
 * LSM tree whose write-ahead log is @wal/core).
 *
 * Supports what `db.supports` states: `put`/`get`/`del`/`batch` (array and
 * chained), `getMany`, `has`/`hasMany`, iterators with ranges and `seek`,
 * implicit and explicit snapshots, `clear` with ranges, every encoding,
 * sublevels, events and hooks; not `getSync` nor abort signals on
 * iterators. `sync: true` on a write resolves once it is durable (survives a
 * power loss); without it, once written (survives a process crash).
 *
 * Errors: abstract-level's `LEVEL_*` codes where it sets them (an open that
 * fails rejects with `LEVEL_DATABASE_NOT_OPEN` whose `cause` is the store's
 * error, e.g. `WAL_LOCKED`); storage failures are @wal/errors' `WalError`s
 * (`WAL_CORRUPTION`, `WAL_IO`, …). The constructor throws
 * `ERR_INVALID_ARG_TYPE` for a `location` that is not a non-empty string, and
 * `ERR_INVALID_ARG_VALUE` for an option key that misspells one of
 * {@link LsmLevelOptions} (`writeBufferSise`, `valueencoding`), before
 * anything is created; other keys are userland options that abstract-level
 * forwards to `open()` and its hooks.
 */
// biome-ignore lint/suspicious/noUnsafeDeclarationMerging: the interface declares only signatures the class inherits from AbstractLevel, widened with `sync`
export class LsmLevel<KDefault = string, VDefault = string> extends AbstractLevel<
  Uint8Array,
  KDefault,
  VDefault
> {
  readonly #location: string;
  readonly #engineOptions: LsmOptions;
  #lsm: Lsm | undefined;
  /** The `clear()` calls deleting in batches, in progress: `close()` waits for them. */
  readonly #clears = new Set<Promise<void>>();

  constructor(location: string, options: LsmLevelOptions<KDefault, VDefault> = {}) {
    if (typeof location !== 'string' || location === '') {
      throw invalidArgType('location', 'a non-empty string', location);
    }
    if (typeof options === 'object' && options !== null) rejectMisspeltLevelOptions(options);
    super(
      {
        encodings: { view: true },
        has: true,
        implicitSnapshots: true,
        explicitSnapshots: true,
        permanence: true,
        seek: true,
        createIfMissing: true,
        errorIfExists: true,
        additionalMethods: { stats: true, compact: true },
      },
      options,
    );
    this.#location = location;
    const engine: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(options)) {
      if (LSM_OPTION_KEYS.has(key)) engine[key] = value;
    }
    this.#engineOptions = engine as LsmOptions;
  }

  /** The directory of the store. */
  get location(): string {
    return this.#location;
  }

  /**
   * The open store. abstract-level calls the private methods only while it
   * deems the database open, which it does again after a failed `close()`:
   * the store is closed all the same, so they reject with `WAL_CLOSED`, and a
   * second `close()` succeeds.
   */
  get #store(): Lsm {
    if (this.#lsm === undefined) throw new ClosedError('store');
    return this.#lsm;
  }

  /** @internal abstract-level's private `_open`. */
  async _open(options: { createIfMissing: boolean; errorIfExists: boolean }): Promise<void> {
    if (!options.createIfMissing || options.errorIfExists) {
      const exists = await hasStore(this.#engineOptions.fs ?? new NodeFs(), this.#location);
      if (!exists && !options.createIfMissing) {
        throw invalidArgValue(
          'options.createIfMissing',
          false,
          `is false and no store exists at ${this.#location} (the store does not exist)`,
        );
      }
      if (exists && options.errorIfExists) {
        throw invalidArgValue(
          'options.errorIfExists',
          true,
          `is true and a store already exists at ${this.#location}`,
        );
      }
    }
    this.#lsm = await Lsm.open(this.#location, this.#engineOptions);
  }

  /** @internal abstract-level's private `_close`. */
  async _close(): Promise<void> {
    // A clear() in batches was accepted: it completes (or fails) first.
    await Promise.all(this.#clears);
    const lsm = this.#lsm;
    this.#lsm = undefined;
    await lsm?.close();
  }

  /** @internal abstract-level's private `_get`. */
  _get(key: Uint8Array, options: PrivateReadOptions): Promise<Uint8Array | undefined> {
    const snapshot = options.snapshot?.snapshot;
    return this.#store.get(key, snapshot === undefined ? undefined : { snapshot });
  }

  /** Reads every key at one snapshot (the one given, or one taken now). */
  async #readMany<T>(
    options: PrivateReadOptions,
    read: (store: Lsm, snapshot: Snapshot) => Promise<T>,
  ): Promise<T> {
    const store = this.#store;
    const given = options.snapshot?.snapshot;
    const snapshot = given ?? store.snapshot();
    try {
      return await read(store, snapshot);
    } finally {
      if (given === undefined) snapshot.release();
    }
  }

  /** @internal abstract-level's private `_getMany`. */
  _getMany(
    keys: readonly Uint8Array[],
    options: PrivateReadOptions,
  ): Promise<(Uint8Array | undefined)[]> {
    return this.#readMany(options, (store, snapshot) =>
      Promise.all(keys.map((key) => store.get(key, { snapshot }))),
    );
  }

  /** @internal abstract-level's private `_has`. */
  async _has(key: Uint8Array, options: PrivateReadOptions): Promise<boolean> {
    return (await this._get(key, options)) !== undefined;
  }

  /** @internal abstract-level's private `_hasMany`. */
  _hasMany(keys: readonly Uint8Array[], options: PrivateReadOptions): Promise<boolean[]> {
    return this.#readMany(options, (store, snapshot) =>
      Promise.all(keys.map(async (key) => (await store.get(key, { snapshot })) !== undefined)),
    );
  }

  /**
   * `put` as abstract-level's, without its `async` wrapper (a promise and
   * two turns of the microtask queue per put, a copy of the options) when
   * nothing but the write is to be done: the database open, no prewrite
   * hook and no `write` listener. Otherwise abstract-level's `put` runs
   * (deferring while opening, running hooks, emitting events). Keys and
   * values are checked and encoded as abstract-level does; its errors reject.
   */
  override put(key: unknown, value: unknown, options?: unknown): Promise<void> {
    if (
      this.status !== 'open' ||
      !(this.hooks.prewrite as unknown as { noop: boolean }).noop ||
      this.listenerCount('write') > 0
    ) {
      return (super.put as (k: unknown, v: unknown, o?: unknown) => Promise<void>)(
        key,
        value,
        options,
      );
    }
    const given = typeof options === 'object' && options !== null ? options : undefined;
    const level = this as unknown as UntypedLevel;
    try {
      level._assertValidKey(key);
      level._assertValidValue(value);
      const encodings = given as { keyEncoding?: unknown; valueEncoding?: unknown } | undefined;
      const keyEncoding = level.keyEncoding(encodings?.keyEncoding);
      const encodedKey = level.prefixKey(keyEncoding.encode(key), keyEncoding.format, true);
      const encodedValue = level.valueEncoding(encodings?.valueEncoding).encode(value);
      // Inside the try: after a failed close() the store is gone (WAL_CLOSED)
      // and the options' getters may throw; put rejects, never throws.
      return this._put(encodedKey, encodedValue, (given ?? {}) as PrivateWriteOptions);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** @internal abstract-level's private `_put`. */
  _put(key: Uint8Array, value: Uint8Array, options: PrivateWriteOptions): Promise<void> {
    return this.#store.put(key, value, writeOptions(options));
  }

  /** @internal abstract-level's private `_del`. */
  _del(key: Uint8Array, options: PrivateWriteOptions): Promise<void> {
    return this.#store.del(key, writeOptions(options));
  }

  /** @internal abstract-level's private `_batch`. */
  _batch(
    operations: readonly PrivateBatchOperation[],
    options: PrivateWriteOptions,
  ): Promise<void> {
    const ops: BatchOperation[] = operations.map((op) =>
      op.type === 'put'
        ? { type: 'put', key: op.key, value: op.value! }
        : { type: 'del', key: op.key },
    );
    return this.#store.batch(ops, writeOptions(options));
  }

  /**
   * @internal abstract-level's private `_chainedBatch`: a batch that copies
   * each operation's key and value when it is added (abstract-level's own
   * keeps the caller's buffers until `write()`).
   */
  _chainedBatch(): AbstractChainedBatch<this, KDefault, VDefault> {
    return new LsmChainedBatch(this as never) as unknown as AbstractChainedBatch<
      this,
      KDefault,
      VDefault
    >;
  }

  /** @internal abstract-level's private `_iterator`. */
  _iterator(options: PrivateRangeOptions): LsmLevelIterator {
    // Over a closed snapshot, the iterator's reads reject (abstract-level's rule).
    const inner = snapshotOpen(options.snapshot)
      ? this.#store.iterator(iteratorOptions(options), true)
      : undefined;
    return new LsmLevelIterator(this, options, inner);
  }

  /**
   * @internal abstract-level's private `_snapshot`; `options.owner` (set by
   * abstract-level) is the database or sublevel that closes it.
   */
  _snapshot(options: { owner: object }): LsmLevelSnapshot {
    return new LsmLevelSnapshot(options, this.#store.snapshot());
  }

  /**
   * @internal abstract-level's private `_clear`. Deletes a range as of the
   * call: without a limit or a snapshot, one range deletion (writes made
   * after the call are not affected); else the keys an iterator at the
   * snapshot (given, or taken now) finds, in batches; `close()` waits for
   * those. `sync: true` (not a standard option of `clear()`) makes it
   * durable.
   */
  async _clear(options: PrivateRangeOptions): Promise<void> {
    const store = this.#store;
    assertSnapshotOpen(options.snapshot);
    if (options.limit === -1 && options.snapshot === undefined) {
      const start = options.gte ?? (options.gt !== undefined ? successor(options.gt) : EMPTY);
      const end = options.lte !== undefined ? successor(options.lte) : options.lt;
      return store.delRange(start, end, writeOptions(options));
    }
    const clearing = this.#clearInBatches(store, options);
    const done: Promise<void> = clearing
      .catch(() => undefined)
      .finally(() => this.#clears.delete(done));
    this.#clears.add(done);
    return clearing;
  }

  /** The keys of the range an iterator at the snapshot finds, deleted in batches. */
  async #clearInBatches(store: Lsm, options: PrivateRangeOptions): Promise<void> {
    const given = options.snapshot?.snapshot;
    const snapshot = given ?? store.snapshot();
    try {
      const iterator = store.iterator({ ...iteratorOptions(options), snapshot });
      let keys: BatchOperation[] = [];
      let left = options.limit === -1 ? Number.POSITIVE_INFINITY : options.limit;
      for await (const [key] of iterator) {
        if (left-- <= 0) break;
        keys.push({ type: 'del', key });
        if (keys.length === CLEAR_CHUNK) {
          await store.batch(keys, writeOptions(options));
          keys = [];
        }
      }
      await store.batch(keys, writeOptions(options));
    } finally {
      if (given === undefined) snapshot.release();
    }
  }

  /** The store's counters and sizes ({@link LsmStats}). Throws `LEVEL_DATABASE_NOT_OPEN` unless open. */
  stats(): LsmStats {
    this.#assertOpen();
    return this.#store.stats();
  }

  /**
   * Flushes the memtable and runs compactions until every level is within
   * its budget. Rejects with `LEVEL_DATABASE_NOT_OPEN` unless open, and
   * with the failure that latched the store.
   */
  async compact(): Promise<void> {
    this.#assertOpen();
    const store = this.#store;
    await store.flush();
    await store.compact();
  }

  #assertOpen(): void {
    if (this.status !== 'open') {
      throw Object.assign(new Error('Database is not open'), { code: 'LEVEL_DATABASE_NOT_OPEN' });
    }
  }
}

/**
 * The store's iterator options for abstract-level's: `gte` wins over `gt`
 * and `lte` over `lt` (abstract-level's rule; the store's is the opposite);
 * no limit (abstract-level counts, across seeks).
 */
function iteratorOptions(options: PrivateRangeOptions): IteratorOptions {
  const result: { -readonly [K in keyof IteratorOptions]: IteratorOptions[K] } = {
    reverse: options.reverse,
  };
  if (options.gte !== undefined) result.gte = options.gte;
  else if (options.gt !== undefined) result.gt = options.gt;
  if (options.lte !== undefined) result.lte = options.lte;
  else if (options.lt !== undefined) result.lt = options.lt;
  if (options.snapshot !== undefined) result.snapshot = options.snapshot.snapshot;
  return result;
}

/**
 * Throws abstract-level's `LEVEL_SNAPSHOT_NOT_OPEN` when `snapshot` is
 * closed or closing (its `ref()` does).
 */
function assertSnapshotOpen(snapshot: LsmLevelSnapshot | undefined): void {
  if (snapshot === undefined) return;
  snapshot.ref();
  snapshot.unref();
}

/** False when `snapshot` is closed or closing. */
function snapshotOpen(snapshot: LsmLevelSnapshot | undefined): boolean {
  try {
    assertSnapshotOpen(snapshot);
    return true;
  } catch {
    return false;
  }
}

/**
 * A chained batch of {@link LsmLevel}: the operations, their keys and
 * values copied as they are added, written as one atomic batch by `write()`.
 */
class LsmChainedBatch extends AbstractChainedBatch<object, Uint8Array, Uint8Array> {
  readonly #level: { _batch: LsmLevel['_batch'] };
  #ops: PrivateBatchOperation[] = [];

  constructor(level: LsmLevel<unknown, unknown>) {
    super(level as never);
    this.#level = level;
  }

  _put(key: Uint8Array, value: Uint8Array): void {
    this.#ops.push({ type: 'put', key: copyBytes(key), value: copyBytes(value) });
  }

  _del(key: Uint8Array): void {
    this.#ops.push({ type: 'del', key: copyBytes(key) });
  }

  _clear(): void {
    this.#ops = [];
  }

  _write(options: PrivateWriteOptions): Promise<void> {
    return this.#level._batch(this.#ops, options);
  }
}

/** abstract-level's snapshot base class, typed with the constructor it has. */
const SnapshotBase = AbstractSnapshot as unknown as new (options: {
  owner: object;
}) => AbstractSnapshot;

/** An explicit snapshot (`db.snapshot()`): holds a {@link Snapshot} of the store until closed. */
class LsmLevelSnapshot extends SnapshotBase {
  constructor(
    options: { owner: object },
    readonly snapshot: Snapshot,
  ) {
    super(options);
  }

  async _close(): Promise<void> {
    this.snapshot.release();
  }
}

/** An iterator of entries over an {@link LsmIterator}. */
class LsmLevelIterator extends AbstractIterator<object, Uint8Array, Uint8Array> {
  readonly #inner: LsmIterator | undefined;
  readonly #snapshot: LsmLevelSnapshot | undefined;
  /** Entries read ahead by `_next`, from `#at` on. */
  #buffer: [Uint8Array, Uint8Array][] = [];
  #at = 0;
  /** Entries the next read ahead of `_next` asks for. */
  #batch = 1;

  /** `inner` is `undefined` when the snapshot was closed: every read rejects. */
  constructor(db: object, options: PrivateRangeOptions, inner: LsmIterator | undefined) {
    super(db, options as never);
    this.#inner = inner;
    this.#snapshot = options.snapshot;
  }

  /** The store's iterator; throws `LEVEL_SNAPSHOT_NOT_OPEN` when there is none. */
  get #entries(): LsmIterator {
    if (this.#inner === undefined) assertSnapshotOpen(this.#snapshot);
    return this.#inner!;
  }

  async _next(): Promise<[Uint8Array, Uint8Array] | undefined> {
    if (this.#at === this.#buffer.length) {
      // Read ahead, more each time while nothing seeks: a scan gets batches, a seek one entry.
      this.#buffer = await this.#entries.nextEntries(
        Math.min(this.#batch, this.limit - this.count),
      );
      this.#at = 0;
      this.#batch = Math.min(2 * this.#batch, MAX_BATCH);
    }
    return this.#buffer[this.#at++];
  }

  async _nextv(size: number): Promise<[Uint8Array, Uint8Array][]> {
    const buffered = this.#buffer.slice(this.#at, this.#at + size);
    this.#at += buffered.length;
    if (buffered.length === size) return buffered;
    const read = await this.#entries.nextEntries(size - buffered.length);
    return buffered.length === 0 ? read : buffered.concat(read);
  }

  async _all(): Promise<[Uint8Array, Uint8Array][]> {
    return this._nextv(this.limit - this.count);
  }

  _seek(target: Uint8Array): void {
    this.#buffer = [];
    this.#at = 0;
    this.#batch = 1;
    this.#inner?.seek(target);
  }

  async _close(): Promise<void> {
    await this.#inner?.return();
  }
}
