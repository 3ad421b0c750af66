/**
 * A transaction: reads from its snapshot plus its own writes, buffers its
 * writes, and records what the store must validate at commit (the keys it
 * read and the ranges it scanned, under serializable isolation).
 */
import { ClosedError, invalidArgType, invalidArgValue, validateInteger } from '@wal/errors';
import { type Bytes, keyBytes, keyString, storedString } from './keys.js';
import {
  type Chain,
  type KeyRange,
  type Version,
  type VersionIndex,
  versionIn,
} from './versions.js';

/**
 * Isolation levels. `'serializable'` (the default): every committed
 * transaction behaves as if transactions ran one at a time, in commit order.
 * `'snapshot'`: reads come from a snapshot and two transactions that write the
 * same key cannot both commit, but write skew is allowed.
 */
export type Isolation = 'serializable' | 'snapshot';

/** Options of `TxnStore.begin`. */
export interface BeginOptions {
  /** The isolation level; `'serializable'` by default. */
  readonly isolation?: Isolation;
}

/** A range of keys for {@link Transaction.scan}; every bound is optional. */
export interface ScanOptions {
  /** Keys strictly greater than this. Not with `gte`. */
  readonly gt?: Bytes;
  /** Keys greater than or equal to this. Not with `gt`. */
  readonly gte?: Bytes;
  /** Keys strictly less than this. Not with `lte`. */
  readonly lt?: Bytes;
  /** Keys less than or equal to this. Not with `lt`. */
  readonly lte?: Bytes;
  /** At most this many entries (an integer ≥ 0); all by default. */
  readonly limit?: number;
  /** Descending key order instead of ascending. */
  readonly reverse?: boolean;
}

/** A key and its value, as returned by {@link Transaction.scan}. */
export interface Entry {
  readonly key: Uint8Array;
  readonly value: Uint8Array;
}

/**
 * Where a transaction is in its life: `'active'` (reads and writes allowed),
 * `'committing'` (`commit()` called, being validated), `'committed'`
 * (validated and logged, visible to new transactions; `commit()` resolves
 * once durable) or `'aborted'`
 * (`abort()`, a conflict, or a failure of the log — after which the record
 * may still be found when the store is reopened, as `commit()` documents).
 */
export type TransactionStatus = 'active' | 'committing' | 'committed' | 'aborted';

/** What a transaction's store does for it (internal). */
export interface TxnHost {
  readonly index: VersionIndex;
  /** Throws when the store is closed or failed. */
  assertUsable(): void;
  /** Validates, logs and publishes the transaction; rejects with the reason it cannot. */
  commit(state: TxnState): Promise<void>;
  /** The transaction ended (committed, aborted or failed): its snapshot is released. */
  end(state: TxnState): void;
}

/** A snapshot (the newest commit it sees) and how many live transactions read from it (internal). */
export interface SnapshotHold {
  readonly seq: number;
  count: number;
}

/** The internal state of a transaction, shared with its store. */
export class TxnState {
  /** Own writes by binary-string key, values as binary strings; `undefined` is a delete. */
  readonly writes = new Map<string, string | undefined>();
  /**
   * Keys read from the snapshot, with the index's chain of versions of each
   * as found (validation and installing reuse it instead of a lookup). Under
   * serializable, validation checks them.
   */
  readonly reads = new Map<string, Chain | undefined>();
  /** Ranges scanned over the snapshot (serializable only); made by the first scan. */
  ranges: KeyRange[] | undefined;
  /**
   * The newest commit whose version this transaction read (0: none). That
   * commit may not be durable yet: nothing read may reach the user before
   * it is (the store's commit and `run` wait for it).
   */
  depends = 0;
  /** The commit sequence number this transaction took, once its record is appended. */
  seq = 0;
  /** The promise `commit()` returned, once called. */
  outcome: Promise<void> | undefined;
  /** Resolves `outcome` once the commit is durable (set by the store when it appends the record). */
  acknowledge: () => void = noop;
  /** Rejects `outcome` when the commit cannot be made durable. */
  refuse: (error: unknown) => void = noop;
  status: TransactionStatus = 'active';

  /** The newest commit the transaction sees. */
  readonly snapshot: number;

  constructor(
    readonly isolation: Isolation,
    /** The store's record of the snapshot, released when the transaction ends. */
    readonly hold: SnapshotHold,
  ) {
    this.snapshot = hold.seq;
  }

  get tracksReads(): boolean {
    return this.isolation === 'serializable';
  }

  /** Notes that the transaction read `version` (a dependency); returns its value. */
  saw(version: Version | undefined): string | undefined {
    if (version === undefined) return undefined;
    if (version.seq > this.depends) this.depends = version.seq;
    return version.value;
  }
}

function noop(): void {}

const SCAN_OPTIONS = new Set(['gt', 'gte', 'lt', 'lte', 'limit', 'reverse']);

/**
 * A transaction, made by `TxnStore.begin` (or given to the function of
 * `TxnStore.run`). Reads see the state as of `begin` (the snapshot: every
 * commit validated by then, durable or pending) plus the transaction's own
 * writes; what they return is provisional until `commit()` resolves (a
 * pending commit read from may still be lost). Writes stay private until
 * `commit()` validates them. Every method throws `WAL_CLOSED` once the transaction
 * has committed or aborted (or its store closed), and argument errors
 * (`ERR_INVALID_ARG_*`) for bad keys, values or options. Returned keys and
 * values are copies the caller owns.
 */
export class Transaction {
  readonly #host: TxnHost;
  readonly #state: TxnState;

  /** @internal Made by the store (`TxnStore.begin`). */
  constructor(host: TxnHost, state: TxnState) {
    this.#host = host;
    this.#state = state;
  }

  /** The isolation level this transaction runs at. */
  get isolation(): Isolation {
    return this.#state.isolation;
  }

  /** Where the transaction is: `'active'`, `'committing'`, `'committed'` or `'aborted'`. */
  get status(): TransactionStatus {
    return this.#state.status;
  }

  /** The value of `key` (a copy), or `undefined` when it is absent. */
  get(key: Bytes): Uint8Array | undefined {
    const state = this.#active();
    const k = keyString('key', key);
    if (state.writes.size !== 0 && state.writes.has(k)) return copy(state.writes.get(k));
    const chain = this.#host.index.chain(k);
    state.reads.set(k, chain);
    return copy(state.saw(versionIn(chain, state.snapshot)));
  }

  /** Sets `key` to `value` (both copied) in this transaction. */
  put(key: Bytes, value: Bytes): void {
    const state = this.#active();
    state.writes.set(storedString('key', key), storedString('value', value));
  }

  /** Deletes `key` in this transaction (whether or not it exists). */
  delete(key: Bytes): void {
    const state = this.#active();
    state.writes.set(storedString('key', key), undefined);
  }

  /**
   * The entries in the range, in key order (bytewise; descending with
   * `reverse`), as of the snapshot plus this transaction's writes. Under
   * serializable isolation the range read is validated at commit: a
   * concurrent commit that adds, changes or deletes a key in it (up to the
   * last entry returned when `limit` cut the scan short) makes this
   * transaction fail with `WAL_CONFLICT`.
   */
  scan(options: ScanOptions = {}): Entry[] {
    const state = this.#active();
    const { range, limit, reverse } = parseScan(options);
    const entries: Entry[] = [];
    let last: string | undefined;
    let full = limit === 0;
    if (!full) {
      for (const [key, value] of this.#merged(range, reverse)) {
        last = key;
        if (value !== undefined) entries.push({ key: keyBytes(key), value: keyBytes(value) });
        if (entries.length >= limit) {
          full = true;
          break;
        }
      }
    }
    if (state.tracksReads) {
      // A scan cut short by its limit depends only on the keys up to its last one.
      let read = range;
      if (full && last !== undefined) {
        read = reverse
          ? { ...range, lo: last, loInclusive: true }
          : { ...range, hi: last, hiInclusive: true };
      }
      if (!(full && limit === 0)) {
        if (state.ranges === undefined) state.ranges = [read];
        else state.ranges.push(read);
      }
    }
    return entries;
  }

  /**
   * Commits: validates, appends the record (from then on transactions that
   * begin see the writes), and resolves once the record is durable in the
   * log — and with it every commit this transaction read from, since
   * records become durable in log order. A transaction without writes
   * commits without a record, and resolves once the newest commit it read
   * from is durable (at once if it already is). Rejects with
   * `WAL_CONFLICT` (a `ConflictError` naming the key) when a concurrent
   * commit makes this one impossible at its isolation level, and with the
   * log's error (`WAL_FAILED`, `WAL_WRITE_FAILED`, `WAL_IO`, …) when the
   * record, or a commit it read from, could not be made durable — then the store is failed and must be
   * reopened, and the commit may or may not be found in the log after a
   * reopen. `WAL_RECORD_TOO_LARGE` when the writes do not fit in one log
   * record. After a rejection nothing of the transaction is visible (after
   * the log's failure the store refuses every read).
   */
  commit(): Promise<void> {
    try {
      const state = this.#active();
      state.status = 'committing';
      state.outcome = this.#host.commit(state);
      return state.outcome;
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** Discards the transaction's writes and releases its snapshot. Does nothing if it already ended. */
  abort(): void {
    const state = this.#state;
    if (state.status !== 'active') return;
    state.status = 'aborted';
    this.#host.end(state);
  }

  /** The keys in `range` with their values, snapshot and own writes merged, in scan order. */
  *#merged(range: KeyRange, reverse: boolean): Generator<[string, string | undefined]> {
    const state = this.#state;
    const index = this.#host.index;
    const own = [...state.writes.keys()].filter((k) => inRange(range, k)).sort();
    if (reverse) own.reverse();
    const before = (a: string, b: string) => (reverse ? a > b : a < b);
    let o = 0;
    for (const key of index.keysIn(range, reverse)) {
      for (; o < own.length && before(own[o]!, key); o++)
        yield [own[o]!, state.writes.get(own[o]!)];
      if (own[o] === key) yield [key, state.writes.get(own[o++]!)];
      else yield [key, state.saw(index.version(key, state.snapshot))];
    }
    for (; o < own.length; o++) yield [own[o]!, state.writes.get(own[o]!)];
  }

  #active(): TxnState {
    const state = this.#state;
    if (state.status !== 'active') throw new ClosedError(`transaction (${state.status})`);
    this.#host.assertUsable();
    return state;
  }
}

/** The bytes of a binary-string value (a new array), or `undefined`. */
function copy(value: string | undefined): Uint8Array | undefined {
  return value === undefined ? undefined : keyBytes(value);
}

function inRange(range: KeyRange, key: string): boolean {
  if (range.lo !== undefined && (range.loInclusive ? key < range.lo : key <= range.lo))
    return false;
  if (range.hi !== undefined && (range.hiInclusive ? key > range.hi : key >= range.hi))
    return false;
  return true;
}

function parseScan(options: ScanOptions): { range: KeyRange; limit: number; reverse: boolean } {
  if (typeof options !== 'object' || options === null)
    throw invalidArgType('options', 'of type object', options);
  for (const name of Object.keys(options)) {
    if (!SCAN_OPTIONS.has(name))
      throw invalidArgValue('options', name, 'has an unknown scan option');
  }
  if (options.gt !== undefined && options.gte !== undefined)
    throw invalidArgValue('options.gt', options.gt, 'cannot be given with gte');
  if (options.lt !== undefined && options.lte !== undefined)
    throw invalidArgValue('options.lt', options.lt, 'cannot be given with lte');
  let limit = Number.POSITIVE_INFINITY;
  if (options.limit !== undefined) {
    validateInteger('options.limit', options.limit);
    limit = options.limit;
  }
  if (options.reverse !== undefined && typeof options.reverse !== 'boolean')
    throw invalidArgType('options.reverse', 'of type boolean', options.reverse);
  const lo = options.gt ?? options.gte;
  const hi = options.lt ?? options.lte;
  return {
    range: {
      lo:
        lo === undefined
          ? undefined
          : keyString(options.gt === undefined ? 'options.gte' : 'options.gt', lo),
      loInclusive: options.gt === undefined,
      hi:
        hi === undefined
          ? undefined
          : keyString(options.lt === undefined ? 'options.lte' : 'options.lt', hi),
      hiInclusive: options.lt === undefined,
    },
    limit,
    reverse: options.reverse === true,
  };
}
