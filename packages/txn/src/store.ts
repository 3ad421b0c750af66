/**
 * The transactional store: optimistic concurrency control over multi-version
 * state in memory, with the redo of each commit as one @wal/core record.
 *
 * Commit protocol (all of steps 1–4 run synchronously, in one turn of the
 * event loop, so no other commit interleaves with them):
 * 1. validate: no version newer than the snapshot exists (committed or
 *    pending) for a key the transaction writes, and, under serializable, for
 *    a key it read or a key inside a range it scanned;
 * 2. take the next commit sequence number `seq`;
 * 3. append the commit record (throws: nothing happened);
 * 4. install the writes as versions at `seq` — invisible, since readers see
 *    only versions at or below `visible`;
 * 5. wait until the record is durable, then advance `visible` to `seq`
 *    (records become durable in log order, so every earlier commit is durable
 *    too) and resolve.
 * Invariants: `visible` only grows and only to durable commits; `nextSeq − 1`
 * is the newest installed commit; records in the log have strictly increasing
 * sequence numbers. After the log fails, `visible` never moves again.
 */
import { Wal, type WalOptions, type WalSource } from '@wal/core';
import {
  ClosedError,
  ConflictError,
  CorruptionError,
  invalidArgType,
  invalidArgValue,
  isWalError,
  RecordTooLargeError,
  validateInteger,
  type WalError,
} from '@wal/errors';
import { keyBytes, keyOf } from './keys.js';
import { commitSize, decodeCommit, encodeCommit, type Write } from './record.js';
import {
  type BeginOptions,
  type Isolation,
  Transaction,
  type TxnHost,
  TxnState,
} from './transaction.js';
import { VersionIndex } from './versions.js';

/** Options of the log, passed to `Wal.open` (its `replay` and `readOnly` are the store's own). */
export type LogOptions = Omit<WalOptions, 'replay' | 'replayReusesBuffers' | 'readOnly'>;

/** Options of {@link TxnStore.open}. */
export interface TxnStoreOptions {
  /** Options of the underlying log (`segmentSize`, `fs`, `commitDelayMs`, …); see @wal/core. */
  readonly log?: LogOptions;
}

/** Options of {@link TxnStore.run}. */
export interface RunOptions extends BeginOptions {
  /** How many times the function runs at most (an integer in [1, 1000]); 10 by default. */
  readonly attempts?: number;
  /** Upper bound of the first backoff in milliseconds (integer in [0, 60000]); 1 by default. */
  readonly backoffMs?: number;
  /** Cap of any backoff in milliseconds (integer in [0, 60000]); 100 by default. */
  readonly maxBackoffMs?: number;
}

/** Counts describing the store's memory, for monitoring and tests. */
export interface TxnStoreStats {
  /** Keys in the version index (a deleted key stays until no snapshot can see it). */
  readonly keys: number;
  /** Versions held over all keys: `keys` plus the old versions kept for snapshots. */
  readonly versions: number;
  /** Transactions begun and not yet ended. */
  readonly activeTransactions: number;
  /** Sequence number of the newest visible commit (0 for none). */
  readonly committed: number;
}

/** Test-only switches (internal: not exported from the package). */
export interface TxnTestHooks {
  /** Skip read-set and range validation (makes serializable unsound; for checker tests). */
  readonly skipReadValidation?: boolean;
  /** Skip write-write validation (makes both levels lose updates; for checker tests). */
  readonly skipWriteValidation?: boolean;
  /** Block size of the ordered key set (small, to exercise block splits and merges). */
  readonly indexBlockSize?: number;
}

let create: (wal: Wal, index: VersionIndex, last: number, hooks: TxnTestHooks) => TxnStore;

const OPTION_NAMES = new Set(['log']);
const RUN_OPTIONS = new Set(['isolation', 'attempts', 'backoffMs', 'maxBackoffMs']);

/**
 * A transactional key-value store whose durable state is a @wal/core log: each
 * commit is one log record, and opening replays the log. The whole data set is
 * held in memory. Open one with {@link TxnStore.open}.
 */
export class TxnStore {
  readonly #wal: Wal;
  readonly #index: VersionIndex;
  readonly #hooks: TxnTestHooks;
  readonly #host: TxnHost;
  /** Newest commit visible to new snapshots. */
  #visible: number;
  /** Sequence number the next commit takes. */
  #nextSeq: number;
  /** Distinct snapshots of live transactions, ascending, with their counts. */
  readonly #snapshots: number[] = [];
  #snapshotsHead = 0;
  readonly #snapshotCounts = new Map<number, number>();
  #active = 0;
  /** Keys written by installed commits, to prune once no snapshot needs their old versions. */
  readonly #reclaim: Array<{ seq: number; keys: string[] }> = [];
  #reclaimHead = 0;
  readonly #inFlight = new Set<Promise<unknown>>();
  #closing: Promise<void> | undefined;

  private constructor(wal: Wal, index: VersionIndex, last: number, hooks: TxnTestHooks) {
    this.#wal = wal;
    this.#index = index;
    this.#visible = last;
    this.#nextSeq = last + 1;
    this.#hooks = hooks;
    this.#host = {
      index,
      assertUsable: () => this.#assertUsable(),
      commit: (state) => this.#commit(state),
      end: (state) => this.#end(state),
    };
  }

  /**
   * Opens (or creates) the store on the log at `source` (a path, a `Store`,
   * or a function resolving with one, as for `Wal.open`) and replays it: the
   * state is every commit record the recovered log holds. Rejects with the
   * log's errors (`WAL_LOCKED`, `WAL_CORRUPTION`, …), with `WAL_CORRUPTION`
   * (offset: the record's LSN) when a record is not a commit record, and
   * with argument errors for bad options.
   */
  static open(source: WalSource, options: TxnStoreOptions = {}): Promise<TxnStore> {
    return openStore(source, options, {});
  }

  static {
    create = (wal, index, last, hooks) => new TxnStore(wal, index, last, hooks);
  }

  /** The log holding the store's commits (for its recovery report and watermarks; do not append to it). */
  get log(): Wal {
    return this.#wal;
  }

  /** True once `close()` was called. */
  get closed(): boolean {
    return this.#closing !== undefined;
  }

  /** Counts of the in-memory state. */
  stats(): TxnStoreStats {
    return {
      keys: this.#index.keys,
      versions: this.#index.versions,
      activeTransactions: this.#active,
      committed: this.#visible,
    };
  }

  /**
   * Begins a transaction on a snapshot of every commit whose `commit()` has
   * resolved (and possibly others that became durable with them). Throws
   * `WAL_CLOSED` after `close()`, the log's failure after a failed commit,
   * and `ERR_INVALID_ARG_VALUE` for an unknown isolation level.
   */
  begin(options: BeginOptions = {}): Transaction {
    this.#assertUsable();
    const isolation = parseIsolation(options);
    const snapshot = this.#visible;
    const count = this.#snapshotCounts.get(snapshot);
    if (count === undefined) {
      this.#snapshots.push(snapshot);
      this.#snapshotCounts.set(snapshot, 1);
      // Behind a long-lived transaction, ended snapshots pile up: keep the list
      // within twice the live ones (plus a constant).
      if (this.#snapshots.length - this.#snapshotsHead > 2 * this.#snapshotCounts.size + 1024) {
        const live = this.#snapshots
          .slice(this.#snapshotsHead)
          .filter((s) => this.#snapshotCounts.has(s));
        this.#snapshots.length = 0;
        this.#snapshots.push(...new Set(live));
        this.#snapshotsHead = 0;
      }
    } else {
      this.#snapshotCounts.set(snapshot, count + 1);
    }
    this.#active++;
    return new Transaction(this.#host, new TxnState(isolation, snapshot));
  }

  /**
   * Runs `fn` in a transaction and commits it, running it again in a fresh
   * transaction when the commit fails with `WAL_CONFLICT`: at most `attempts`
   * times (10), waiting before retry `n` a random time in
   * `[0, min(maxBackoffMs, backoffMs · 2^(n−1))]` ms ("full jitter": 1 ms
   * doubling up to 100 ms by default). Resolves with what `fn` returned once
   * the commit is durable. If `fn` throws (or rejects), the transaction is
   * aborted and the error passed on, without retry; if `fn` ended the
   * transaction itself, its result is returned as is. After the last attempt
   * the last `ConflictError` is thrown. `fn` may run several times: keep its
   * side effects inside the transaction.
   */
  async run<T>(fn: (tx: Transaction) => T | Promise<T>, options: RunOptions = {}): Promise<T> {
    if (typeof fn !== 'function') throw invalidArgType('fn', 'of type function', fn);
    const { attempts, backoffMs, maxBackoffMs, isolation } = parseRun(options);
    for (let attempt = 1; ; attempt++) {
      const tx = this.begin({ isolation });
      let result: T;
      try {
        result = await fn(tx);
      } catch (error) {
        tx.abort();
        throw error;
      }
      if (tx.status !== 'active') return result;
      try {
        await tx.commit();
        return result;
      } catch (error) {
        if (!isWalError(error, 'WAL_CONFLICT') || attempt >= attempts) throw error;
      }
      const bound = Math.min(maxBackoffMs, backoffMs * 2 ** (attempt - 1));
      const delay = Math.floor(Math.random() * (bound + 1));
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }

  /**
   * Closes the store: waits for the commits in flight to settle, then closes
   * the log. Transactions still open can no longer be used (`WAL_CLOSED`).
   * Idempotent.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      await Promise.allSettled(this.#inFlight);
      await this.#wal.close();
    })();
    return this.#closing;
  }

  #assertUsable(): void {
    if (this.#closing !== undefined) throw new ClosedError('transaction store');
    const failure = this.#wal.failure;
    if (failure !== undefined) throw failure;
  }

  async #commit(state: TxnState): Promise<void> {
    if (state.writes.size === 0) {
      state.status = 'committed';
      this.#end(state);
      return;
    }
    let seq: number;
    let lsn: number;
    try {
      while (!this.#wal.writable && this.#closing === undefined && this.#wal.failure === undefined)
        await this.#wal.drained();
      this.#assertUsable();
      const writes: Write[] = [...state.writes.keys()]
        .sort()
        .map((key) => ({ key: keyBytes(key), value: state.writes.get(key) }));
      const size = commitSize(writes);
      if (size > this.#wal.maxRecordSize)
        throw new RecordTooLargeError(size, this.#wal.maxRecordSize);
      this.#validate(state);
      seq = this.#nextSeq;
      lsn = this.#wal.append(encodeCommit(seq, writes, size));
    } catch (error) {
      state.status = 'aborted';
      this.#end(state);
      throw error;
    }
    this.#nextSeq = seq + 1;
    const keys: string[] = [];
    for (const [key, value] of state.writes) {
      this.#index.install(key, seq, value);
      keys.push(key);
    }
    this.#reclaim.push({ seq, keys });
    state.status = 'committed';
    this.#end(state);
    const durable = this.#wal.waitFor(lsn, 'durable');
    this.#inFlight.add(durable);
    try {
      await durable;
    } catch (error) {
      state.status = 'aborted';
      throw (this.#wal.failure ?? error) as WalError;
    } finally {
      this.#inFlight.delete(durable);
    }
    if (seq > this.#visible) {
      this.#visible = seq;
      this.#prune();
    }
  }

  #validate(state: TxnState): void {
    const index = this.#index;
    const snapshot = state.snapshot;
    for (const key of state.writes.keys()) {
      if (index.latestSeq(key) > snapshot && this.#hooks.skipWriteValidation !== true)
        throw new ConflictError(keyBytes(key), 'write');
    }
    if (!state.tracksReads || this.#hooks.skipReadValidation === true) return;
    for (const key of state.reads) {
      if (index.latestSeq(key) > snapshot) throw new ConflictError(keyBytes(key), 'read');
    }
    for (const range of state.ranges) {
      for (const key of index.keysIn(range)) {
        if (index.latestSeq(key) > snapshot) throw new ConflictError(keyBytes(key), 'scan');
      }
    }
  }

  #end(state: TxnState): void {
    const count = this.#snapshotCounts.get(state.snapshot)!;
    this.#active--;
    if (count > 1) {
      this.#snapshotCounts.set(state.snapshot, count - 1);
      return;
    }
    this.#snapshotCounts.delete(state.snapshot);
    const snapshots = this.#snapshots;
    while (
      this.#snapshotsHead < snapshots.length &&
      !this.#snapshotCounts.has(snapshots[this.#snapshotsHead]!)
    )
      this.#snapshotsHead++;
    if (this.#snapshotsHead > 1024 && this.#snapshotsHead * 2 > snapshots.length) {
      snapshots.splice(0, this.#snapshotsHead);
      this.#snapshotsHead = 0;
    }
    this.#prune();
  }

  /** Reclaims the versions no live or future snapshot can read. */
  #prune(): void {
    const oldest =
      this.#snapshotsHead < this.#snapshots.length
        ? this.#snapshots[this.#snapshotsHead]!
        : Infinity;
    const horizon = Math.min(oldest, this.#visible);
    const reclaim = this.#reclaim;
    while (this.#reclaimHead < reclaim.length && reclaim[this.#reclaimHead]!.seq <= horizon) {
      for (const key of reclaim[this.#reclaimHead]!.keys) this.#index.prune(key, horizon);
      reclaim[this.#reclaimHead++] = undefined as never;
    }
    if (this.#reclaimHead > 1024 && this.#reclaimHead * 2 > reclaim.length) {
      reclaim.splice(0, this.#reclaimHead);
      this.#reclaimHead = 0;
    }
  }
}

/** Opens a store with test hooks (internal: not exported from the package). */
export async function openStore(
  source: WalSource,
  options: TxnStoreOptions,
  hooks: TxnTestHooks,
): Promise<TxnStore> {
  if (typeof options !== 'object' || options === null)
    throw invalidArgType('options', 'of type object', options);
  for (const name of Object.keys(options)) {
    if (!OPTION_NAMES.has(name)) throw invalidArgValue('options', name, 'has an unknown option');
  }
  const logOptions = options.log ?? {};
  if (typeof logOptions !== 'object' || logOptions === null)
    throw invalidArgType('options.log', 'of type object', logOptions);
  for (const name of ['replay', 'replayReusesBuffers', 'readOnly']) {
    if (name in logOptions)
      throw invalidArgValue('options.log', name, 'cannot set an option the store sets itself');
  }
  const index = new VersionIndex(hooks.indexBlockSize);
  let last = 0;
  index.beginBulk();
  const wal = await Wal.open(source, {
    ...logOptions,
    replay: (records) => {
      for (const record of records) {
        const commit = decodeCommit(record.payload, record.lsn);
        if (commit.seq <= last)
          throw new CorruptionError(
            `the record at ${record.lsn} is not a transaction commit: commit sequence ${commit.seq} after ${last}`,
            { offset: record.lsn },
          );
        last = commit.seq;
        for (const { key, value } of commit.writes)
          index.replace(
            keyOf(key),
            commit.seq,
            value === undefined ? undefined : Uint8Array.from(value),
          );
      }
    },
  });
  index.endBulk();
  return create(wal, index, last, hooks);
}

function parseIsolation(options: BeginOptions): Isolation {
  if (typeof options !== 'object' || options === null)
    throw invalidArgType('options', 'of type object', options);
  const isolation = options.isolation ?? 'serializable';
  if (isolation !== 'serializable' && isolation !== 'snapshot')
    throw invalidArgValue('options.isolation', isolation, "must be 'serializable' or 'snapshot'");
  return isolation;
}

function parseRun(options: RunOptions): Required<RunOptions> {
  const isolation = parseIsolation(options);
  for (const name of Object.keys(options)) {
    if (!RUN_OPTIONS.has(name)) throw invalidArgValue('options', name, 'has an unknown option');
  }
  const { attempts = 10, backoffMs = 1, maxBackoffMs = 100 } = options;
  validateInteger('options.attempts', attempts, 1, 1000);
  validateInteger('options.backoffMs', backoffMs, 0, 60_000);
  validateInteger('options.maxBackoffMs', maxBackoffMs, 0, 60_000);
  return { attempts, backoffMs, maxBackoffMs, isolation };
}
