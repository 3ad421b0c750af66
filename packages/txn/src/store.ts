/**
 * The transactional store: optimistic concurrency control over multi-version
 * state in memory, with the redo of each commit as one @wal/core record.
 *
 * Commit protocol (all of steps 1–4 run synchronously, in one turn of the
 * event loop, so no other commit interleaves with them):
 * 1. validate: no version newer than the snapshot exists (durable or
 *    pending) for a key the transaction writes, and, under serializable, for
 *    a key it read or a key inside a range it scanned;
 * 2. take the next commit sequence number `seq`;
 * 3. append the commit record (throws: nothing happened);
 * 4. install the writes as versions at `seq`: transactions that begin from
 *    now on see them (early visibility), although the record is not durable
 *    yet — the commit is *pending*;
 * 5. wait until the record is durable, then resolve.
 *
 * Commit dependencies (early lock release, as in Silo's epochs or Aether's
 * controlled lock violation): a transaction that read a pending version
 * depends on that commit, and nothing it read may reach its user before that
 * commit is durable. Records become durable in log order (LSN order, which is
 * `seq` order), so a read-write transaction, acknowledged once its own record
 * is durable, never needs more; a read-only one (no record) waits until the
 * newest commit it read from (`TxnState.depends`) is durable, and `run`
 * waits for the same before passing on what `fn` returned or threw when
 * `fn` did not commit. If the log fails, every such wait rejects with the
 * log's failure: no dependent is ever acknowledged.
 *
 * Invariants: `nextSeq − 1` is the newest installed commit and every
 * snapshot is at most that; `durableSeq` only grows, and only to commits
 * whose records are durable; `pendingLsns` holds the LSNs of the commits
 * after `durableSeq`, in order; records in the log have strictly increasing
 * sequence numbers.
 */

import { Buffer } from 'node:buffer';
import { randomBytes } from 'node:crypto';
import { dirname, resolve } from 'node:path';
import { type StoredRecord, Wal, type WalOptions, type WalSource } from '@wal/core';
import {
  ClosedError,
  ConflictError,
  CorruptionError,
  errorCode,
  invalidArgType,
  invalidArgValue,
  isWalError,
  NotALogError,
  RecordTooLargeError,
  toWalError,
  validateInteger,
  type WalError,
} from '@wal/errors';
import { type Fs, type FsLock, NodeFs } from '@wal/store';
import {
  type CheckpointEntry,
  type CheckpointPosition,
  checkpointName,
  foreignCheckpoint,
  LOG_ID_BYTES,
  listCheckpoints,
  readCheckpoint,
  readHeader,
  removeOlder,
  unlessDamaged,
  writeCheckpoint,
} from './checkpoint.js';
import { keyBytes, keyOf } from './keys.js';
import { decodeCommit, encodeWrites, writesSize } from './record.js';
import {
  type BeginOptions,
  type Isolation,
  type SnapshotHold,
  Transaction,
  type TxnHost,
  TxnState,
} from './transaction.js';
import { type Chain, VersionIndex } from './versions.js';

const noop = (): void => undefined;
const NO_OPTIONS: BeginOptions = Object.freeze({});

/** Size of the buffer commit records are encoded in, when they fit. */
const SCRATCH_BYTES = 4096;

/**
 * Options of the log, passed to `Wal.open` (its `replay`, `readOnly` and
 * `application` are the store's own).
 */
export type LogOptions = Omit<
  WalOptions,
  'replay' | 'replayReusesBuffers' | 'readOnly' | 'application'
>;

/**
 * The application name a transaction store's log records (@wal/core's
 * `application` option): a log that records another is refused with
 * `WAL_NOT_A_LOG`, nothing changed.
 */
export const TXN_APPLICATION = '@wal/txn';

/** Options of {@link TxnStore.open}. */
export interface TxnStoreOptions {
  /** Options of the underlying log (`segmentSize`, `fs`, `commitDelayMs`, …); see @wal/core. */
  readonly log?: LogOptions;
  /** Where and when checkpoints are written; see {@link CheckpointOptions}. */
  readonly checkpoint?: CheckpointOptions;
}

/** Options of checkpoints (snapshots of the committed state that let the log's prefix go). */
export interface CheckpointOptions {
  /**
   * The directory of the checkpoint files, through the log's `fs`. Default:
   * `<source>.checkpoints` beside the log when it is opened by path (from
   * its absolute path: `.` is the current directory, whose sibling holds
   * them; a log at `/` needs this option); without a path and without this
   * option, the store has no checkpoints.
   */
  readonly dir?: string;
  /**
   * A checkpoint starts by itself once the log holds at least this many
   * bytes (from its head to its tail); 0 turns automatic checkpoints off.
   * An integer in [0, 2^53 − 1]; 64 MiB by default.
   */
  readonly logBytes?: number;
}

/** What a checkpoint wrote. */
export interface CheckpointInfo {
  /** The newest commit it holds: the state after commit `seq`. */
  readonly seq: number;
  /** The log position replay starts from; the log's head after the checkpoint. */
  readonly lsn: number;
  /** The checkpoint file. */
  readonly path: string;
  /** Its size in bytes. */
  readonly bytes: number;
  /** The live keys it holds. */
  readonly entries: number;
}

/** Automatic checkpoints start once the log holds this many bytes, by default. */
export const DEFAULT_CHECKPOINT_LOG_BYTES = 64 * 1024 * 1024;

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
  /** Sequence number of the newest durable commit (0 for none). */
  readonly committed: number;
  /** Commits whose versions are visible but whose records are not known durable yet. */
  readonly pending: number;
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

/** How the store writes checkpoints (resolved options). */
interface Checkpoints {
  readonly fs: Fs;
  readonly dir: string | undefined;
  readonly logBytes: number;
  /** The identity of the store's log, which its checkpoints record (set by open when `dir` is). */
  readonly log?: Uint8Array | undefined;
  /** The version 1 checkpoint (naming no log) the store opened from: its sequence number. */
  readonly legacy?: number | undefined;
  /** The lock of the checkpoint directory ({@link CHECKPOINT_LOCK}), held while the store is open. */
  readonly lock?: FsLock | undefined;
}

/**
 * The lock file of a checkpoint directory, held by the one open store whose
 * checkpoints it keeps: a second store given the same directory meets it
 * (`WAL_LOCKED`) before it writes or removes anything there.
 */
const CHECKPOINT_LOCK = 'txn.lock';

/**
 * The key of the log's metadata (docs/FORMAT.md §5.2: keys other than
 * `store.` and `wal.` ones are the caller's) holding the log's identity: 16
 * random bytes in hex, written by the first open that has a checkpoint
 * directory. Every checkpoint records it; open and the removal of old
 * checkpoints tell the store's own from another's by it.
 */
export const LOG_ID_KEY = 'txn.logId';
const LOG_ID = /^[0-9a-f]{32}$/;

/** What open found: the state's newest commit and where its record is. */
interface Opened {
  readonly last: number;
  readonly lastLsn: number;
  readonly checkpoint: CheckpointPosition | undefined;
}

let create: (
  wal: Wal,
  index: VersionIndex,
  opened: Opened,
  checkpoints: Checkpoints,
  hooks: TxnTestHooks,
) => TxnStore;

const OPTION_NAMES = new Set(['log', 'checkpoint']);
const CHECKPOINT_OPTIONS = new Set(['dir', 'logBytes']);
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
  /** Sequence number the next commit takes; new snapshots see every commit before it. */
  #nextSeq: number;
  /** LSN of the record of commit `#nextSeq − 1` (where a checkpoint of it lets the log start). */
  #lastLsn: number;
  /** Newest commit known durable. */
  #durableSeq: number;
  /** LSNs of commits `#durableSeq + 1 …` (from `#pendingHead`): appended, not known durable. */
  readonly #pendingLsns: number[] = [];
  #pendingHead = 0;
  /**
   * Snapshots transactions began on, ascending, from `#snapshotsHead` on:
   * the first has live transactions (or the list is empty); later ones may
   * have none left (`count` 0) until the head passes them.
   */
  readonly #snapshots: SnapshotHold[] = [];
  #snapshotsHead = 0;
  /** Holds in `#snapshots` with live transactions. */
  #liveSnapshots = 0;
  #active = 0;
  /**
   * Installed commits whose keys' old versions are pruned once no snapshot
   * needs them: their sequence numbers, how many keys each wrote, and those
   * keys with their chains (flat, in commit order), from the heads on.
   */
  readonly #reclaimSeqs: number[] = [];
  readonly #reclaimCounts: number[] = [];
  readonly #reclaimKeys: string[] = [];
  readonly #reclaimChains: Chain[] = [];
  #reclaimHead = 0;
  #reclaimKeyHead = 0;
  /**
   * Scratch buffer commit records up to its size are encoded in (the log
   * copies an appended payload at once). A larger record gets an array of
   * its own, dropped after the append: one large commit does not keep the
   * store's memory at its size.
   */
  readonly #scratch = new Uint8Array(SCRATCH_BYTES);
  /** The last view of `#scratch` records were encoded in (records of one size in a row reuse it). */
  #scratchView = this.#scratch;
  /** Waits (checkpoints, read-only commits) in flight, which `close()` lets settle. */
  readonly #inFlight = new Set<Promise<unknown>>();
  /** Commits appended whose durability is not settled yet; `close()` lets them settle. */
  #committing = 0;
  /** Called once `#committing` drops to 0 (set by `close()`). */
  #committed: (() => void) | undefined;
  /** A commit's durability settled (`#committing` goes down). */
  readonly #settled = (): void => {
    if (--this.#committing === 0 && this.#committed !== undefined) {
      const resolve = this.#committed;
      this.#committed = undefined;
      resolve();
    }
  };
  /**
   * Transactions of the commits `#durableSeq + 1 …` (from `#pendingHead`,
   * beside `#pendingLsns`), whose `commit()` resolves once the durable
   * watermark passes their record; `undefined` once one is failed.
   */
  readonly #pendingStates: Array<TxnState | undefined> = [];
  /**
   * The first commit of the cohort being gathered (0: none). The commits
   * appended in one wave of the event loop's work (one turn, with the
   * microtasks it queues) wait for durability together: the first one
   * waits for its record at once, so the log knows before it writes the
   * records that they are to be made durable, and `#waitCohort` (a
   * microtask, queued then, which runs once the wave's commits are
   * appended) waits for the last one's. Two waiters per cohort instead of
   * one per commit; each cohort waits on its own, so the log may make one
   * durable while it writes the next.
   */
  #cohortFirst = 0;
  readonly #waitCohort = (): void => {
    const first = this.#cohortFirst;
    const last = this.#nextSeq - 1;
    this.#cohortFirst = 0;
    if (last === first) return;
    this.#wal
      .waitFor(this.#lastLsn, 'durable')
      .then(this.#durableCohort, (error: unknown) => this.#failCohort(first + 1, last, error));
  };
  readonly #durableCohort = (): void => this.#advanceDurable();
  /** `resolve` and `reject` of the promise `#capture` made last. */
  #resolveNext: () => void = noop;
  #rejectNext: (error: unknown) => void = noop;
  /** The executor of the promise each commit returns (one function for every commit). */
  readonly #capture = (resolve: () => void, reject: (error: unknown) => void): void => {
    this.#resolveNext = resolve;
    this.#rejectNext = reject;
  };
  #closing: Promise<void> | undefined;
  readonly #checkpoints: Checkpoints;
  /** The newest durable checkpoint (written or found at open). */
  #checkpointed: CheckpointPosition | undefined;
  /** The checkpoint running or queued last. */
  #checkpointing: Promise<CheckpointInfo | undefined> | undefined;
  #checkpointRunning = false;
  /** A checkpoint's failure: the store refuses work until reopened. */
  #failure: WalError | undefined;

  private constructor(
    wal: Wal,
    index: VersionIndex,
    opened: Opened,
    checkpoints: Checkpoints,
    hooks: TxnTestHooks,
  ) {
    this.#wal = wal;
    this.#index = index;
    this.#durableSeq = opened.last;
    this.#lastLsn = opened.lastLsn;
    this.#nextSeq = opened.last + 1;
    this.#checkpoints = checkpoints;
    this.#checkpointed = opened.checkpoint;
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
   * (offset: the record's LSN) when a record is not a commit record, with
   * `WAL_NOT_A_LOG` (nothing changed) for a log that records another
   * application name than {@link TXN_APPLICATION} or, recording none, holds
   * no record and has no checkpoint, and with argument errors for bad options.
   */
  static open(source: WalSource, options: TxnStoreOptions = {}): Promise<TxnStore> {
    return openStore(source, options, {});
  }

  static {
    create = (wal, index, opened, checkpoints, hooks) =>
      new TxnStore(wal, index, opened, checkpoints, hooks);
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
      committed: this.#durableSeq,
      pending: this.#nextSeq - 1 - this.#durableSeq,
    };
  }

  /**
   * Begins a transaction on a snapshot of every commit that passed
   * validation so far: every commit whose `commit()` resolved, and the
   * pending ones whose records are appended but not yet durable (what it
   * reads of those reaches its user only once they are durable: see
   * `commit()`). Throws `WAL_CLOSED` after `close()`, the log's failure
   * after a failed commit, and `ERR_INVALID_ARG_VALUE` for an unknown
   * isolation level.
   */
  begin(options: BeginOptions = NO_OPTIONS): Transaction {
    this.#assertUsable();
    return new Transaction(this.#host, this.#beginState(parseIsolation(options)));
  }

  /** Registers a new snapshot of every installed commit (the store is usable). */
  #beginState(isolation: Isolation): TxnState {
    const seq = this.#nextSeq - 1;
    const snapshots = this.#snapshots;
    let hold = snapshots.length > this.#snapshotsHead ? snapshots[snapshots.length - 1] : undefined;
    if (hold !== undefined && hold.seq === seq) {
      if (hold.count++ === 0) this.#liveSnapshots++;
    } else {
      hold = { seq, count: 1 };
      snapshots.push(hold);
      this.#liveSnapshots++;
      // Behind a long-lived transaction, ended snapshots pile up: keep the list
      // within twice the live ones (plus a constant).
      if (snapshots.length - this.#snapshotsHead > 2 * this.#liveSnapshots + 1024) {
        const live = snapshots.slice(this.#snapshotsHead).filter((h) => h.count > 0);
        snapshots.length = 0;
        snapshots.push(...live);
        this.#snapshotsHead = 0;
      }
    }
    this.#active++;
    return new TxnState(isolation, hold);
  }

  /**
   * Runs `fn` in a transaction and commits it, running it again in a fresh
   * transaction when the commit fails with `WAL_CONFLICT`: at most `attempts`
   * times (10), waiting before retry `n` a random time in
   * `[0, min(maxBackoffMs, backoffMs · 2^(n−1))]` ms ("full jitter": 1 ms
   * doubling up to 100 ms by default). Resolves with what `fn` returned once
   * the commit is durable. If `fn` throws (or rejects), the transaction is
   * aborted and the error passed on, without retry; if `fn` ended the
   * transaction itself, its result is returned as is. Either way, since
   * what `fn` returns or throws may carry what it read, `run` first waits
   * until every commit the transaction read from (and its own, when `fn`
   * committed it) is durable, and rejects with the log's failure if one
   * cannot be. After the last attempt the last `ConflictError` is thrown.
   * `fn` may run several times: keep its side effects inside the
   * transaction. A commit `fn` starts without awaiting it is waited for
   * but its outcome is not `run`'s: when it fails (a `WAL_CONFLICT`
   * included, which is then not retried) `run` still resolves with what
   * `fn` returned, and only the promise `tx.commit()` returned rejects.
   * Await `tx.commit()` inside `fn`, or leave the commit to `run`.
   */
  async run<T>(fn: (tx: Transaction) => T | Promise<T>, options: RunOptions = {}): Promise<T> {
    if (typeof fn !== 'function') throw invalidArgType('fn', 'of type function', fn);
    const { attempts, backoffMs, maxBackoffMs, isolation } = parseRun(options);
    for (let attempt = 1; ; attempt++) {
      this.#assertUsable();
      const state = this.#beginState(isolation);
      const tx = new Transaction(this.#host, state);
      let result: T;
      try {
        result = await fn(tx);
      } catch (error) {
        tx.abort();
        await this.#released(state);
        throw error;
      }
      if (tx.status !== 'active') {
        await this.#released(state);
        return result;
      }
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
   * Writes a checkpoint of every commit whose `commit()` resolved before the
   * call (and possibly later ones), then drops the log's prefix before it
   * with `truncateBefore`, then removes the older checkpoint files.
   * Only durable commits go in: it first waits for the pending commits its
   * snapshot holds. Transactions go on committing meanwhile. Resolves once the checkpoint is
   * durable (temporary file fdatasynced, renamed, directory fsynced) and the
   * log's head moved, with what was written, or `undefined` when the newest
   * checkpoint already holds every commit. Calls run one after the
   * other.
   *
   * Rejects with `WAL_CLOSED` after `close()`, `ERR_INVALID_ARG_VALUE` when
   * the store has no checkpoint directory (see {@link CheckpointOptions}),
   * and with `WAL_IO`, `WAL_NO_SPACE` or the log's failure when writing
   * failed: the store is then failed (every later call throws that error)
   * until reopened, and reopening finds the previous checkpoint or the new
   * one, whole, with the log after it.
   */
  checkpoint(): Promise<CheckpointInfo | undefined> {
    try {
      this.#assertUsable();
      if (this.#checkpoints.dir === undefined)
        throw invalidArgValue(
          'options.checkpoint.dir',
          undefined,
          'is needed for checkpoints when the log is not opened by path',
        );
    } catch (error) {
      return Promise.reject(error);
    }
    const previous = this.#checkpointing;
    const next = (async () => {
      if (previous !== undefined) await previous.catch(() => undefined);
      return this.#checkpointOnce();
    })();
    this.#checkpointing = next;
    return next;
  }

  async #checkpointOnce(): Promise<CheckpointInfo | undefined> {
    this.#assertUsable();
    const position = { seq: this.#nextSeq - 1, lsn: this.#lastLsn };
    if (position.seq <= (this.#checkpointed?.seq ?? 0)) return undefined;
    const { fs, dir, log, legacy } = this.#checkpoints as Checkpoints & {
      dir: string;
      log: Uint8Array;
    };
    this.#checkpointRunning = true;
    // A snapshot transaction at `position.seq` keeps its versions from being reclaimed.
    const tx = this.begin({ isolation: 'snapshot' });
    const work = (async () => {
      // Read the index directly (not through `tx`, which a close() would stop),
      // a bounded number of keys per turn of the event loop.
      const index = this.#index;
      let after: string | undefined;
      const batch = (): CheckpointEntry[] | undefined => {
        const range = { lo: after, loInclusive: false, hi: undefined, hiInclusive: false };
        const entries: CheckpointEntry[] = [];
        let visited = 0;
        for (const key of index.keysIn(range)) {
          after = key;
          const value = index.read(key, position.seq);
          if (value !== undefined) entries.push({ key: keyBytes(key), value: keyBytes(value) });
          if (++visited >= 1024) break;
        }
        return visited === 0 ? undefined : entries;
      };
      try {
        // Only durable commits go in a checkpoint: the log must keep the
        // power to lose a pending one.
        await this.#whenDurable(position.seq);
        const written = await writeCheckpoint(fs, dir, log, position, batch);
        tx.abort();
        if (position.lsn > this.#wal.head) await this.#wal.truncateBefore(position.lsn);
        this.#checkpointed = position;
        await removeOlder(fs, dir, position.seq, log, legacy);
        return { ...position, ...written };
      } catch (error) {
        if (tx.status === 'active') tx.abort();
        const failure = (this.#wal.failure ?? error) as WalError;
        this.#failure ??= failure;
        throw failure;
      } finally {
        this.#checkpointRunning = false;
      }
    })();
    this.#inFlight.add(work);
    try {
      return await work;
    } finally {
      this.#inFlight.delete(work);
    }
  }

  /** Starts a checkpoint when the log has grown past the threshold and none runs. */
  #maybeCheckpoint(): void {
    const { dir, logBytes } = this.#checkpoints;
    if (dir === undefined || logBytes === 0 || this.#checkpointRunning) return;
    if (this.#wal.tail - this.#wal.head < logBytes || this.#closing !== undefined) return;
    if (this.#failure !== undefined || this.#wal.failure !== undefined) return;
    // Its failure fails the store (#failure): commits then report it.
    this.checkpoint().catch(() => undefined);
  }

  /**
   * Closes the store: waits for the commits in flight (appended) and the
   * checkpoint to settle, then closes the log. A commit still waiting for
   * the log to take appends (back-pressure: the log's staging memory is
   * full) is not appended once `close()` is called: it rejects with
   * `WAL_CLOSED`, nothing of it applied. Transactions still open can no
   * longer be used (`WAL_CLOSED`). Idempotent.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      while (this.#inFlight.size > 0 || this.#checkpointRunning || this.#committing > 0) {
        if (this.#committing > 0)
          await new Promise<void>((resolve) => {
            this.#committed = resolve;
          });
        await Promise.allSettled(this.#inFlight);
        if (this.#checkpointing !== undefined) await this.#checkpointing.catch(() => undefined);
      }
      try {
        await this.#wal.close();
      } finally {
        await this.#checkpoints.lock?.release();
      }
    })();
    return this.#closing;
  }

  /**
   * Resolves once what `state`'s transaction read (and, if it committed,
   * its own commit) is durable: then what it read may reach its user.
   * Rejects with the log's failure when that cannot happen.
   */
  async #released(state: TxnState): Promise<void> {
    await state.outcome?.catch(() => undefined);
    await this.#whenDurable(Math.max(state.depends, state.seq));
  }

  /** Resolves once commit `seq` (and so every earlier one) is durable; rejects with the log's failure. */
  #whenDurable(seq: number): Promise<void> {
    if (seq <= this.#durableSeq) return Promise.resolve();
    const lsn = this.#pendingLsns[this.#pendingHead + (seq - this.#durableSeq - 1)]!;
    const durable = this.#wal.waitFor(lsn, 'durable').then(
      () => this.#advanceDurable(),
      (error: unknown) => {
        throw (this.#wal.failure ?? error) as WalError;
      },
    );
    this.#inFlight.add(durable);
    return durable.finally(() => this.#inFlight.delete(durable));
  }

  /** Moves `#durableSeq` up to the newest commit whose record the log's durable watermark covers. */
  #advanceDurable(): void {
    const lsns = this.#pendingLsns;
    const durable = this.#wal.durable;
    let head = this.#pendingHead;
    while (head < lsns.length && lsns[head]! < durable) head++;
    if (head === this.#pendingHead) return;
    const states = this.#pendingStates;
    for (let at = this.#pendingHead; at < head; at++) {
      const state = states[at];
      if (state === undefined) continue;
      states[at] = undefined;
      this.#settled();
      state.acknowledge();
    }
    this.#durableSeq += head - this.#pendingHead;
    compact(states, head);
    this.#pendingHead = compact(lsns, head);
    this.#prune();
    this.#maybeCheckpoint();
  }

  #assertUsable(): void {
    if (this.#closing !== undefined) throw new ClosedError('transaction store');
    const failure = this.#failure ?? this.#wal.failure;
    if (failure !== undefined) throw failure;
  }

  #commit(state: TxnState): Promise<void> {
    if (state.writes.size === 0) return this.#commitReadOnly(state);
    if (!this.#wal.writable) return this.#commitWhenWritable(state);
    return this.#commitNow(state);
  }

  /** A commit without writes: no record; it serializes at its snapshot. */
  async #commitReadOnly(state: TxnState): Promise<void> {
    // Acknowledged once every commit it read from is durable.
    state.status = 'committed';
    this.#end(state);
    if (state.depends <= this.#durableSeq) return;
    try {
      await this.#whenDurable(state.depends);
    } catch (error) {
      state.status = 'aborted';
      throw error;
    }
  }

  /** Waits until the log takes appends again (or closes, or fails), then commits. */
  async #commitWhenWritable(state: TxnState): Promise<void> {
    try {
      while (!this.#wal.writable && this.#closing === undefined && this.#wal.failure === undefined)
        await this.#wal.drained();
    } catch (error) {
      state.status = 'aborted';
      this.#end(state);
      throw error;
    }
    return this.#commitNow(state);
  }

  /**
   * Steps 1–4 of the commit protocol, synchronously; the promise resolves
   * once the record is durable (step 5).
   */
  #commitNow(state: TxnState): Promise<void> {
    let seq: number;
    let lsn: number;
    const keys = sortedKeys(state.writes);
    const values = keys.map((key) => state.writes.get(key));
    try {
      this.#assertUsable();
      const size = writesSize(keys, values);
      if (size > this.#wal.maxRecordSize)
        throw new RecordTooLargeError(size, this.#wal.maxRecordSize);
      this.#validate(state, keys);
      seq = this.#nextSeq;
      lsn = this.#wal.append(encodeWrites(seq, keys, values, size, this.#scratchOf(size)));
    } catch (error) {
      state.status = 'aborted';
      this.#end(state);
      return Promise.reject(error);
    }
    this.#nextSeq = seq + 1;
    this.#lastLsn = lsn;
    this.#pendingLsns.push(lsn);
    this.#pendingStates.push(state);
    state.seq = seq;
    const reads = state.reads;
    const index = this.#index;
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i]!;
      this.#reclaimKeys.push(key);
      this.#reclaimChains.push(index.install(key, seq, values[i], reads.get(key)));
    }
    this.#reclaimSeqs.push(seq);
    this.#reclaimCounts.push(keys.length);
    state.status = 'committed';
    this.#end(state);
    this.#committing++;
    if (this.#cohortFirst === 0) {
      this.#cohortFirst = seq;
      queueMicrotask(this.#waitCohort);
      this.#wal
        .waitFor(lsn, 'durable')
        .then(this.#durableCohort, (error: unknown) => this.#failCohort(seq, seq, error));
    }
    // Settled by `#advanceDurable` (or `#failCohort`), with no promise in between.
    const outcome = new Promise<void>(this.#capture);
    state.acknowledge = this.#resolveNext;
    state.refuse = this.#rejectNext;
    return outcome;
  }

  /**
   * The durable wait of the cohort of commits `first … last` failed: those
   * not durable by now fail with the log's failure (never acknowledged).
   */
  #failCohort(first: number, last: number, error: unknown): void {
    this.#advanceDurable();
    const failure = (this.#wal.failure ?? error) as WalError;
    const states = this.#pendingStates;
    for (let seq = Math.max(first, this.#durableSeq + 1); seq <= last; seq++) {
      const at = this.#pendingHead + (seq - this.#durableSeq - 1);
      const state = states[at];
      if (state === undefined) continue;
      states[at] = undefined;
      state.status = 'aborted';
      this.#settled();
      state.refuse(failure);
    }
  }

  /** Where a record of `size` bytes is encoded: `#scratch` (a view of exactly `size` bytes when it fits). */
  #scratchOf(size: number): Uint8Array {
    if (size > SCRATCH_BYTES || size === this.#scratchView.length) return this.#scratchView;
    this.#scratchView = this.#scratch.subarray(0, size);
    return this.#scratchView;
  }

  /** Throws `WAL_CONFLICT` unless `state` (which writes `keys`) may commit now (step 1). */
  #validate(state: TxnState, keys: readonly string[]): void {
    const index = this.#index;
    const snapshot = state.snapshot;
    const reads = state.reads;
    const writes = state.writes;
    const checkWrites = this.#hooks.skipWriteValidation !== true;
    if (checkWrites) {
      for (const key of keys) {
        if (index.latestSeq(key, reads.get(key)) > snapshot)
          throw new ConflictError(keyBytes(key), 'write');
      }
    }
    if (!state.tracksReads || this.#hooks.skipReadValidation === true) return;
    for (const [key, chain] of reads) {
      // A key also written passed the same check above.
      if (checkWrites && writes.has(key)) continue;
      if (index.latestSeq(key, chain) > snapshot) throw new ConflictError(keyBytes(key), 'read');
    }
    if (state.ranges === undefined) return;
    for (const range of state.ranges) {
      for (const key of index.keysIn(range)) {
        if (index.latestSeq(key) > snapshot) throw new ConflictError(keyBytes(key), 'scan');
      }
    }
  }

  #end(state: TxnState): void {
    this.#active--;
    if (--state.hold.count > 0) return;
    this.#liveSnapshots--;
    const snapshots = this.#snapshots;
    let head = this.#snapshotsHead;
    while (head < snapshots.length && snapshots[head]!.count === 0) head++;
    this.#snapshotsHead = compact(snapshots, head);
    this.#prune();
  }

  /** Reclaims the versions no live or future snapshot can read. */
  #prune(): void {
    const oldest =
      this.#snapshotsHead < this.#snapshots.length
        ? this.#snapshots[this.#snapshotsHead]!.seq
        : Infinity;
    // Not past the durable commits: a pending delete must stay in the index
    // (as a tombstone) for its readers to depend on it.
    const horizon = Math.min(oldest, this.#durableSeq);
    const seqs = this.#reclaimSeqs;
    const counts = this.#reclaimCounts;
    const keys = this.#reclaimKeys;
    const chains = this.#reclaimChains;
    let head = this.#reclaimHead;
    let keyHead = this.#reclaimKeyHead;
    while (head < seqs.length && seqs[head]! <= horizon) {
      const end = keyHead + counts[head++]!;
      for (; keyHead < end; keyHead++) {
        this.#index.prune(keys[keyHead]!, horizon, chains[keyHead]);
        keys[keyHead] = undefined as never;
        chains[keyHead] = undefined as never;
      }
    }
    if (head === seqs.length) {
      seqs.length = counts.length = keys.length = chains.length = 0;
      head = keyHead = 0;
    } else if (head > 1024 && head * 2 > seqs.length) {
      seqs.splice(0, head);
      counts.splice(0, head);
      keys.splice(0, keyHead);
      chains.splice(0, keyHead);
      head = keyHead = 0;
    }
    this.#reclaimHead = head;
    this.#reclaimKeyHead = keyHead;
  }
}

/**
 * Compacts a queue whose items before `head` are consumed: empties it when
 * all are, drops the consumed ones once they are more than 1024 and half of
 * it; returns the head after.
 */
function compact(items: unknown[], head: number): number {
  if (head === items.length) {
    items.length = 0;
    return 0;
  }
  if (head > 1024 && head * 2 > items.length) {
    items.splice(0, head);
    return 0;
  }
  return head;
}

/**
 * The keys of `writes` in ascending order (the order commit records list
 * them in): an insertion sort for the few keys of a typical transaction,
 * which costs far less than `Array.prototype.sort`.
 */
function sortedKeys(writes: ReadonlyMap<string, unknown>): string[] {
  const keys = [...writes.keys()];
  if (keys.length > 16) return keys.sort();
  for (let i = 1; i < keys.length; i++) {
    const key = keys[i]!;
    let j = i - 1;
    for (; j >= 0 && keys[j]! > key; j--) keys[j + 1] = keys[j]!;
    keys[j + 1] = key;
  }
  return keys;
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
  for (const name of ['replay', 'replayReusesBuffers', 'readOnly', 'application']) {
    if (name in logOptions)
      throw invalidArgValue('options.log', name, 'cannot set an option the store sets itself');
  }
  // `'skip'` would step over a damaged commit record and replay the later
  // ones, which may have read what it wrote: a state no serial execution
  // of the committed transactions produces.
  if (logOptions.recovery !== undefined && logOptions.recovery !== 'strict')
    throw invalidArgValue(
      'options.log.recovery',
      logOptions.recovery,
      "must be 'strict' (the default): a transaction store cannot step over a damaged commit, the commits after it may have read its writes",
    );
  const checkpoints = parseCheckpoints(source, options.checkpoint, logOptions.fs);
  const index = new VersionIndex(hooks.indexBlockSize);
  index.beginBulk();
  // The newest checkpoint first (the state after its commit), then the
  // log's records after it. The checkpoints are read only once the log is
  // open, and so locked: a racing opener gets `WAL_LOCKED`, never a
  // checkpoint another store is writing or removing. The replay loads it
  // before its first batch (records of commits it holds are skipped); a log
  // without records loads it after the open.
  let checkpoint: (CheckpointPosition & { path: string; log: Uint8Array | undefined }) | undefined;
  /** The logs the older checkpoints of the directory name (`undefined`: version 1, none). */
  const older: Array<{ path: string; log: Uint8Array | undefined }> = [];
  let loaded = false;
  let last = 0;
  let lastLsn = 0;
  const load = async (): Promise<void> => {
    loaded = true;
    if (checkpoints.dir === undefined) return;
    const { published } = await listCheckpoints(checkpoints.fs, checkpoints.dir);
    const newest = published[published.length - 1];
    if (newest === undefined) return;
    // Only the headers of the older ones, to tell whose they are (a damaged
    // one says nothing, and is not used either; an I/O error fails).
    for (const seq of published.slice(0, -1)) {
      const log = await readHeader(checkpoints.fs, checkpoints.dir, seq).then(
        (header) => header.log,
        unlessDamaged,
      );
      older.push({ path: `${checkpoints.dir}/${checkpointName(seq)}`, log });
    }
    checkpoint = await readCheckpoint(checkpoints.fs, checkpoints.dir, newest, (key, value) =>
      index.replace(keyOf(key), newest, keyOf(value)),
    );
    lastLsn = checkpoint.lsn;
  };
  const apply = (records: readonly StoredRecord[]): void => {
    const base = checkpoint?.seq ?? 0;
    for (const record of records) {
      const commit = decodeCommit(record.payload, record.lsn);
      if (commit.seq <= last)
        throw new CorruptionError(
          `the record at ${record.lsn} is not a transaction commit: commit sequence ${commit.seq} after ${last}`,
          { offset: record.lsn },
        );
      last = commit.seq;
      if (commit.seq <= base) continue;
      lastLsn = record.lsn;
      for (const { key, value } of commit.writes)
        index.replace(keyOf(key), commit.seq, value === undefined ? undefined : keyOf(value));
    }
  };
  const wal = await Wal.open(source, {
    ...logOptions,
    application: TXN_APPLICATION,
    replay: (records) => {
      if (loaded) return apply(records);
      return load().then(() => apply(records));
    },
  });
  if (!loaded) {
    try {
      await load();
    } catch (error) {
      await wal.close();
      throw error;
    }
  }
  const base = checkpoint?.seq ?? 0;
  index.endBulk();
  // A log that records no application name was not created by a store of
  // this release: its records, checked above as commits, make it a store's
  // log; without records and checkpoints nothing says it is one.
  if (wal.application === undefined && wal.head === wal.tail && checkpoint === undefined) {
    await wal.close();
    throw new NotALogError(
      typeof source === 'string' ? source : 'the store',
      `an existing log without records or an application name (a transaction store's log records ${JSON.stringify(TXN_APPLICATION)}); another program's empty log is not taken over`,
    );
  }
  // The log's identity, and the checkpoints of the directory all its own
  // (or of version 1, which name no log): another store's is refused, and
  // left as it is.
  let log: Uint8Array | undefined;
  let legacy: number | undefined;
  if (checkpoints.dir !== undefined) {
    let meta: Record<string, unknown>;
    try {
      meta = await wal.store.readMeta();
    } catch (error) {
      await wal.close();
      throw toWalError(error, 'reading the log metadata');
    }
    const id = meta[LOG_ID_KEY];
    if (id !== undefined && (typeof id !== 'string' || !LOG_ID.test(id))) {
      await wal.close();
      throw new CorruptionError(
        `the log's ${LOG_ID_KEY} is ${JSON.stringify(id)}, not 32 hexadecimal digits`,
      );
    }
    log = id === undefined ? undefined : Uint8Array.from(Buffer.from(id, 'hex'));
    for (const found of checkpoint === undefined ? older : [...older, checkpoint]) {
      if (found.log !== undefined && (log === undefined || Buffer.compare(found.log, log) !== 0)) {
        await wal.close();
        throw foreignCheckpoint(found.path, found.log, log);
      }
    }
    if (checkpoint !== undefined && checkpoint.log === undefined) legacy = checkpoint.seq;
  }
  // The log must reach back to the checkpoint, and hold the checkpoint's own commit.
  const start = checkpoint?.lsn ?? 0;
  const where = checkpoint === undefined ? 'no checkpoint' : `the checkpoint ${checkpoint.path}`;
  let missing: string | undefined;
  if (wal.head > start)
    missing = `the log starts at ${wal.head}, after ${where} (which needs it from ${start})`;
  else if (checkpoint !== undefined && wal.tail <= checkpoint.lsn)
    missing = `the log ends at ${wal.tail}, before the record of commit ${checkpoint.seq} that ${where} starts at (${checkpoint.lsn})`;
  if (missing !== undefined) {
    await wal.close();
    throw new CorruptionError(`the transaction store is incomplete: ${missing}`, {
      offset: wal.head > start ? wal.head : wal.tail,
    });
  }
  let lock: FsLock | undefined;
  if (checkpoints.dir !== undefined) {
    try {
      await ensureDirectory(checkpoints.fs, checkpoints.dir);
    } catch (error) {
      await wal.close();
      throw error;
    }
    try {
      lock = await checkpoints.fs.lock(`${checkpoints.dir}/${CHECKPOINT_LOCK}`);
    } catch (error) {
      await wal.close();
      throw toWalError(error, `locking the checkpoint directory ${checkpoints.dir}`);
    }
  }
  // A log without an identity gets one (before any checkpoint records it).
  if (checkpoints.dir !== undefined && log === undefined) {
    log = randomBytes(LOG_ID_BYTES);
    try {
      await wal.store.updateMeta({ [LOG_ID_KEY]: Buffer.from(log).toString('hex') });
    } catch (error) {
      await lock?.release();
      await wal.close();
      throw toWalError(error, 'recording the log identity in its metadata');
    }
  }
  const opened = { last: Math.max(base, last), lastLsn, checkpoint };
  return create(wal, index, opened, { ...checkpoints, log, legacy, lock }, hooks);
}

/**
 * Creates the checkpoint directory `dir` when it is missing (not its
 * parents: a missing parent is `ERR_INVALID_ARG_VALUE` naming it), then
 * fsyncs its parent, whoever created it: a directory that exists may not be
 * durable yet (made and not synced by the application, or by a process
 * that died before syncing its parent), and a checkpoint in it must not
 * vanish with it after the log's head moved past that checkpoint.
 */
async function ensureDirectory(fs: Fs, dir: string): Promise<void> {
  try {
    await fs.mkdir(dir);
  } catch (error) {
    const code = errorCode(error);
    if (code === 'ENOENT' || code === 'ENOTDIR')
      throw invalidArgValue(
        'options.checkpoint.dir',
        dir,
        `must be a directory, or a name in an existing directory (${dirname(dir)} is not one); it is not created with its parents`,
      );
    throw toWalError(error, `creating the checkpoint directory ${dir}`);
  }
  try {
    await fs.syncDir(dirname(dir));
  } catch (error) {
    throw toWalError(error, `syncing the directory holding ${dir}`);
  }
}

function parseCheckpoints(source: WalSource, options: unknown, fs: Fs | undefined): Checkpoints {
  const given = (options ?? {}) as CheckpointOptions;
  if (typeof given !== 'object' || given === null)
    throw invalidArgType('options.checkpoint', 'of type object', options);
  for (const name of Object.keys(given)) {
    if (!CHECKPOINT_OPTIONS.has(name))
      throw invalidArgValue('options.checkpoint', name, 'has an unknown option');
  }
  const { dir, logBytes = DEFAULT_CHECKPOINT_LOG_BYTES } = given;
  // Checked here, before anything touches it (the log checks it too).
  if (fs !== undefined && (typeof fs !== 'object' || fs === null))
    throw invalidArgType('options.log.fs', 'an Fs object', fs);
  if (dir !== undefined && (typeof dir !== 'string' || dir.length === 0))
    throw invalidArgType('options.checkpoint.dir', 'a non-empty string', dir);
  validateInteger('options.checkpoint.logBytes', logBytes, 0, Number.MAX_SAFE_INTEGER);
  return { fs: fs ?? new NodeFs(), dir: dir ?? checkpointsBeside(source), logBytes };
}

/**
 * The default checkpoint directory of a log opened by path: `<path>.checkpoints`
 * beside it, from the absolute path (so `.` or `dir/` name the directory's
 * sibling, not a file inside it). A log at the root of the file system has
 * no sibling: `options.checkpoint.dir` is then required.
 */
function checkpointsBeside(source: WalSource): string | undefined {
  if (typeof source !== 'string') return undefined;
  const absolute = resolve(source);
  if (dirname(absolute) === absolute) {
    throw invalidArgValue(
      'options.checkpoint.dir',
      undefined,
      `is needed for a log at the root of the file system (${absolute}), which has no sibling to hold checkpoints`,
    );
  }
  return `${absolute}.checkpoints`;
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
