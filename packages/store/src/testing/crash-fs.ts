/**
 * `CrashFs`: an in-memory {@link Fs} that records every call and yields the
 * file-system states a power loss (or a process crash) could leave.
 *
 * ## Model
 * - **Inodes.** A directory entry names an inode; a rename moves the name.
 *   File data durability is per inode, independent of its names.
 * - **Asynchrony.** Every call takes effect when it is made (later reads see
 *   it) and *completes* when its promise settles: by default one macrotask
 *   later (`setImmediate`, in call order); with a {@link CompletionOrder}
 *   (option `order`), one call per macrotask, the one the order picks among
 *   the calls in flight (see `crash-orders.ts`). An `fdatasync` covers exactly the writes
 *   and truncates of that inode that had completed when it was called; they
 *   become durable when the `fdatasync` itself completes. A `pwriteDurable`
 *   (an `O_DSYNC` write) is a write that becomes durable when it completes,
 *   itself only: until then a power loss may keep it, lose it or tear it as
 *   any pending write; other pending writes of the file stay pending, as
 *   after Linux's range-limited sync. A `syncDir` does the
 *   same for the completed creates, mkdirs, renames and unlinks touching that
 *   directory; an operation touching two directories (a cross-directory
 *   rename) is durable once both were synced.
 * - **Failed syncs** (injected by a `FaultFs` over a `CrashFs`: it tells
 *   the `CrashFs` before rejecting) behave as Linux's after a writeback
 *   error: the pages are marked clean and keep the new bytes. A failed
 *   `fdatasync` makes every write of the file not yet durable *never
 *   durable* (writes still in flight too: their bytes were in the page
 *   cache; not a `pwriteDurable`'s own): reads still see them, a power loss
 *   may keep, lose or tear them, and no `fdatasync` — one already in
 *   flight, a later one of this process or of the next, after a
 *   {@link CrashFs.processCrash} — makes them durable (it succeeds without
 *   writing them back). Its truncates stay pending, for a later sync to cover. A
 *   failed `pwriteDurable` (any code but `ENOSPC`, unless the fault names
 *   another `syscall`, e.g. a failed `open`) had copied its bytes into the
 *   page cache: they are visible to reads and never durable, on the same
 *   terms. Writes made after the failure are synced as usual (a later
 *   write over the same bytes can still become durable).
 * - **Truncates** (`ftruncate`) are file operations like writes: pending
 *   until an `fdatasync` called after they completed completes, and in a
 *   crash state kept or lost whole (never torn), independently of the
 *   file's other pending operations, applied in issue order. This errs on
 *   the side of more states than a journaling file system leaves, on
 *   purpose: there an unsynced truncate becomes durable at the next journal
 *   commit (seconds), and a later size change (a write past the cut) commits
 *   only with it, while here it stays pending until a sync covers it, and
 *   a later write may survive without it (the bytes it cut back under the
 *   write). Extra states can fail a test that a disk would pass, never hide
 *   a state a disk leaves; syncing after a truncate, as the stores do,
 *   removes them. A lost cut inside a block (4096 bytes, or the sector if
 *   larger) may also leave its zeroing of the rest of that block on the
 *   disk, as ext4 may (it zeroes that block's tail in the page cache, and
 *   writeback can persist it before the cut commits): the length as if the
 *   truncate were lost, zeros from the cut to the block's end (or the file's
 *   end), later surviving writes over them. Code must treat everything past
 *   an unsynced cut as possibly damaged (the log does: it lowers its durable
 *   hint to the cut first, and damage above the hint is a torn tail). A
 *   kept cut always reads as zeros past it when a later write regrows the
 *   file (the blocks are freed), as on a real file system.
 * - **Power loss.** Each pending (non-durable) operation may or may not
 *   survive; see {@link CrashFs.crashStates} for the exact space. The machine
 *   that lost power runs nothing more: {@link CrashFs.powerLoss} turns its
 *   instance off (every later call fails), and the state it returns is
 *   reopened as a fresh instance, which nothing of the old one can reach.
 * - **Process crash.** {@link CrashFs.processCrash} kills the process an
 *   instance stands for and returns the instance of the next process on the
 *   same machine (same page cache, same pending operations); the killed one
 *   runs nothing more (every later call fails with `EIO`). A call it had in
 *   flight may or may not have run in the kernel (a seeded draw, or the
 *   test's choice): one that ran keeps its effect, whole, and completes; one
 *   that did not is undone (a sync that did not run made nothing durable).
 * - **Locks** live in the machine (no lock file appears in the namespace),
 *   are released with the process holding them and dropped by a power loss.
 *
 * Strictly POSIX: an `fdatasync` of a file does not make its name durable,
 * even where a journaling file system would in practice.
 */

import { posix } from 'node:path';
import {
  errorCode,
  LockedError,
  validateBytes,
  validateInteger,
  validateOffset,
} from '@wal/errors';
import type { Fs, FsFile, FsLock, FsMethod, OpenMode } from '../fs/fs.js';
import type { CompletionOrder } from './crash-orders.js';
import {
  CrashPlan,
  type DirOpRecord,
  dirOpDeps,
  type EntryEffect,
  type FileOpRecord,
  type LostContent,
  type ModelSnapshot,
  type RawState,
  type ResolvedCrashOptions,
} from './crash-states.js';
import { ByteBuffer, fsError, mixSeed, normalisePath, splitPath } from './crash-util.js';
import { SYNC_FAILED, type SyncFailure } from './fault-fs.js';

export type { LostContent } from './crash-states.js';

/**
 * A whole file-system image: file contents by absolute path, and the
 * directories (parents of listed paths are implied; `/` always exists).
 */
export interface CrashImage {
  /** File contents by absolute, normalised path. */
  readonly files: ReadonlyMap<string, Uint8Array>;
  /** Directories by absolute path, including empty ones. Optional on input. */
  readonly dirs?: ReadonlySet<string>;
}

/** Options of a {@link CrashFs}. */
export interface CrashFsOptions {
  /** Sector size: the unit a write may be torn at after a power loss. Default 512. */
  readonly sectorSize?: number;
  /** Initial contents, all durable (as after a clean mount). Default: only `/`. */
  readonly image?: CrashImage;
  /**
   * Which call in flight completes next, one per macrotask (see
   * {@link CompletionOrder}). Default: each call settles one macrotask after
   * it was made, in call order.
   */
  readonly order?: CompletionOrder;
}

/** Options of {@link CrashFs.crashStates} and {@link CrashFs.powerLoss}. */
export interface CrashStatesOptions {
  /** Seed of sampling and of garbage bytes. Default 0. */
  readonly seed?: number;
  /** Most states yielded. Default 1000. */
  readonly limit?: number;
  /** Include torn writes (sector-granular and at `tearAt`). Default true. */
  readonly tear?: boolean;
  /** Include file lengths short of the natural one (size persisted, data not). Default true. */
  readonly lengths?: boolean;
  /** What a lost sector of a torn write reads as. Default all three. */
  readonly lost?: readonly LostContent[];
  /** Extra absolute file offsets a write may tear at (and a length may stop at). */
  readonly tearAt?: readonly number[];
  /**
   * `auto` (default): the whole space when it is exactly known and at most
   * `limit` states, a seeded sample otherwise; `exhaustive`: the whole space
   * in its fixed order, cut at `limit`; `sample`: always sample.
   */
  readonly mode?: 'auto' | 'exhaustive' | 'sample';
  /** Skip states whose image equals one already yielded. Default true. */
  readonly unique?: boolean;
}

/**
 * Options of {@link CrashFs.processCrash}: which calls in flight at the kill
 * the kernel had run.
 */
export interface ProcessCrashOptions {
  /**
   * `'ran'`: every call in flight had run in the kernel (its effect kept, its
   * completion done: a covering `fdatasync` made its writes durable);
   * `'lost'`: none had (each effect undone, as if never issued); a predicate:
   * called once per call in flight (issue order), true when it ran. Default:
   * a seeded draw, each call running with probability 1/2 (see `seed`).
   * Either way the choice is then made consistent: a directory operation runs
   * when a later one on the same entry, or inside the directory it created,
   * had settled or runs; it does not run when such an earlier one does not.
   */
  readonly inFlight?: 'ran' | 'lost' | ((call: CrashFsOperation) => boolean);
  /** Seed of the default draw (mixed with each call's id). Default 0. */
  readonly seed?: number;
}

/** One state a power loss could leave; reopen it with {@link CrashState.fs}. */
export interface CrashState extends CrashImage {
  /** Position in the enumeration (the combination or sample number). */
  readonly index: number;
  /** Which pending operations survived, for failure messages (`+` kept, `-` lost, `~` torn). */
  readonly description: string;
  /** Every directory, `/` included. */
  readonly dirs: ReadonlySet<string>;
  /** A fresh `CrashFs` holding this state as its durable contents, with no locks held. */
  fs(options?: CrashFsOptions): CrashFs;
}

/**
 * The states of one power loss, drawn lazily. Iterating again repeats the same
 * states (deterministic from the seed); the file system may change meanwhile.
 */
export interface CrashStates extends Iterable<CrashState> {
  /**
   * Size of the space of choice combinations (several may give the same
   * image). Exact when the pending operations are few (≤ 16 per file and
   * directory-wide); otherwise an upper bound.
   */
  readonly count: number;
  /** True when iteration yields every state of the space rather than a sample. */
  readonly exhaustive: boolean;
  /** Pending operations: file writes and truncates, and directory operations. */
  readonly pending: { readonly files: number; readonly directories: number };
}

/** Calls recorded in {@link CrashFs.operations}. */
export type CrashFsCall = FsMethod | 'release' | 'mark' | 'processCrash' | 'reset';

/**
 * One recorded call. `issuedAt` and `settledAt` are readings of one logical
 * clock ({@link CrashFs.clock}), so audits can order calls, completions and
 * their own marks: e.g. "every acknowledged write was covered by an
 * `fdatasync` that settled before the acknowledgement".
 */
export interface CrashFsOperation {
  /** 1-based call number. File and directory operations are named `#id` in state descriptions. */
  readonly id: number;
  readonly call: CrashFsCall;
  /** The normalised path (of the file for file-handle calls; the source of a rename). */
  readonly path: string | undefined;
  /** The target of a rename. */
  readonly dest: string | undefined;
  /** The inode concerned, when there is one. */
  readonly inode: number | undefined;
  /** Position of a `pwrite` / `pread`. */
  readonly position: number | undefined;
  /** Byte count of a `pwrite` / `pread`, new length of an `ftruncate`. */
  readonly length: number | undefined;
  /** A short summary of the arguments. */
  readonly args: string;
  /** Clock reading when called. */
  readonly issuedAt: number;
  /** Clock reading when its promise settled; undefined while in flight. */
  readonly settledAt: number | undefined;
  /** A short summary of the result, once known. */
  readonly result: string | undefined;
  /** The error code when it failed. */
  readonly error: string | undefined;
  /** `fdatasync` / `syncDir`: ids of the operations it covers; `pwriteDurable`: its own id. */
  readonly covers: readonly number[] | undefined;
  /**
   * For a call still in flight when its process was killed
   * ({@link CrashFs.processCrash}): `'ran'` when the kernel had run it (its
   * effect and completion kept), `'lost'` when it never ran (its effect
   * undone; its promise, which only the dead process could see, still
   * settles as it would have). Undefined otherwise.
   */
  readonly atCrash?: 'ran' | 'lost';
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

interface FileNode {
  readonly kind: 'file';
  readonly ino: number;
  /** Durable bytes: the base every crash state starts from. */
  readonly base: ByteBuffer;
  /** Operations after `base`, in issue order (a durable prefix is folded into `base`). */
  readonly ops: FileOpRecord[];
  /** What reads see now (the page cache). */
  readonly data: ByteBuffer;
}

interface DirNode {
  readonly kind: 'dir';
  readonly ino: number;
  /** Entries now. */
  readonly entries: Map<string, number>;
  /** Durable entries. */
  readonly base: Map<string, number>;
}

type Node = FileNode | DirNode;

interface Handle {
  readonly ino: number;
  readonly path: string;
  readonly writable: boolean;
  closed: boolean;
}

interface Model {
  readonly nodes: Map<number, Node>;
  readonly dirOps: DirOpRecord[];
  nextIno: number;
}

/**
 * One simulated machine: what every process running on it shares (the page
 * cache and the durable image, the locks, the trace and the clock, the calls
 * in flight in the kernel). Each process is one `CrashFs` view of it.
 */
interface Machine {
  readonly sectorSize: number;
  model: Model;
  /** The process running now; the views before it were killed by `processCrash`. */
  live: CrashFs;
  /** Locks held, by path: a token per acquisition and the process holding it. */
  readonly locks: Map<string, { readonly token: object; readonly owner: CrashFs }>;
  readonly trace: Mutable<CrashFsOperation>[];
  clock: number;
  /** Bumped by `reset`: completions of calls made before it no longer touch the model. */
  epoch: number;
  /** Set by `powerLoss`: every later call of every process fails, so nothing reaches the crash image. */
  off: boolean;
  readonly order: CompletionOrder | undefined;
  /** With an order: calls made and not yet settled, in call order. */
  readonly inFlight: { readonly record: CrashFsOperation; readonly settle: () => void }[];
  pumping: boolean;
  /** Every asynchronous call issued and not yet settled, in issue order. */
  readonly running: Set<RunningCall>;
}

/** An asynchronous call in flight: its effect is in the model, its completions not run. */
interface RunningCall {
  readonly record: Mutable<CrashFsOperation>;
  /** The process that issued it. */
  readonly owner: CrashFs;
  readonly epoch: number;
  /** Undefined when the call failed (no effect). */
  readonly completions: Array<() => void> | undefined;
  /** Settled at a process crash: its completions ran (or were dropped) then. */
  finished: boolean;
}

/** Set by `processCrash` for the constructor: the machine the next process runs on. */
let nextProcessOf: Machine | undefined;

const ROOT = 1;
const ALL_LOST: readonly LostContent[] = ['old', 'zero', 'garbage'];

function emptyModel(): Model {
  const root: DirNode = { kind: 'dir', ino: ROOT, entries: new Map(), base: new Map() };
  return { nodes: new Map([[ROOT, root]]), dirOps: [], nextIno: ROOT + 1 };
}

class StateImpl implements CrashState {
  readonly index: number;
  readonly description: string;
  readonly files: ReadonlyMap<string, Uint8Array>;
  readonly dirs: ReadonlySet<string>;
  readonly #options: CrashFsOptions;

  constructor(raw: RawState, options: CrashFsOptions) {
    this.index = raw.index;
    this.description = raw.description;
    this.files = raw.files;
    this.dirs = raw.dirs;
    this.#options = options;
  }

  fs(options: CrashFsOptions = {}): CrashFs {
    return new CrashFs({ ...this.#options, ...options, image: this });
  }
}

class StatesImpl implements CrashStates {
  readonly #plan: CrashPlan;
  readonly #fsOptions: CrashFsOptions;

  constructor(plan: CrashPlan, fsOptions: CrashFsOptions) {
    this.#plan = plan;
    this.#fsOptions = fsOptions;
  }

  get count(): number {
    return this.#plan.count;
  }

  get exhaustive(): boolean {
    return this.#plan.exhaustive;
  }

  get pending(): { files: number; directories: number } {
    return { files: this.#plan.pendingFileOps, directories: this.#plan.pendingDirOps };
  }

  *[Symbol.iterator](): Iterator<CrashState> {
    for (const raw of this.#plan.states()) yield new StateImpl(raw, this.#fsOptions);
  }
}

/**
 * An in-memory {@link Fs} that simulates power loss. Guarantees:
 * - it behaves as a POSIX file system for a single process (Node-style errors
 *   `ENOENT`, `EEXIST`, `EISDIR`, `ENOTDIR`, `ENOTEMPTY`, `EINVAL`, `EBADF`
 *   with `code` and `syscall`; `LockedError` for a held lock);
 * - every call is recorded in {@link CrashFs.operations};
 * - {@link CrashFs.crashStates} yields only states a power loss could leave
 *   under the model of this module's documentation (exhaustive mode
 *   enumerates the model's fixed patterns: every tear of up to 4 pieces,
 *   fewer of longer writes, lengths at write ends and `tearAt` offsets;
 *   sampling draws more); every state holds all durable data (bytes covered by a
 *   completed `fdatasync`, under names covered by a completed `syncDir`);
 * - everything is deterministic from the seed.
 */
export class CrashFs implements Fs {
  /** Sector size in bytes: the unit a write may be torn at. */
  readonly sectorSize: number;
  /** The machine this process runs on: shared with the processes before and after a crash. */
  readonly #m: Machine;
  /** This process's open files (its descriptor table). */
  #handles = new WeakMap<FsFile, Handle>();
  #open = new Set<Handle>();
  /** Set by `processCrash`: this process is dead, every later call fails. */
  #killed = false;

  constructor(options: CrashFsOptions = {}) {
    const shared = nextProcessOf;
    nextProcessOf = undefined;
    if (shared !== undefined) {
      this.sectorSize = shared.sectorSize;
      this.#m = shared;
    } else {
      const sectorSize = options.sectorSize ?? 512;
      validateInteger('options.sectorSize', sectorSize, 1);
      this.sectorSize = sectorSize;
      this.#m = {
        sectorSize,
        model: options.image === undefined ? emptyModel() : CrashFs.#fromImage(options.image),
        live: this,
        locks: new Map(),
        trace: [],
        clock: 0,
        epoch: 0,
        off: false,
        order: options.order,
        inFlight: [],
        pumping: false,
        running: new Set(),
      };
    }
  }

  /** Every call so far, in call order (live view; do not modify). */
  get operations(): readonly CrashFsOperation[] {
    return this.#m.trace;
  }

  /**
   * True once {@link CrashFs.powerLoss} turned this machine off (called on
   * this instance or on another process of it, before or after a
   * {@link CrashFs.processCrash}): every call then fails with `EIO`.
   */
  get poweredOff(): boolean {
    return this.#m.off;
  }

  /**
   * True once {@link CrashFs.processCrash} killed the process this instance
   * is: every call then fails with `EIO`.
   */
  get killed(): boolean {
    return this.#killed;
  }

  /** The logical clock: incremented at every call and every completion. */
  get clock(): number {
    return this.#m.clock;
  }

  /** Adds a labelled marker to the trace (for audits) and returns its clock reading. */
  mark(label: string): number {
    const record = this.#record('mark', label);
    record.settledAt = record.issuedAt;
    return record.issuedAt;
  }

  // ---- Fs -------------------------------------------------------------------

  open(path: string, mode: OpenMode): Promise<FsFile> {
    const at = normalisePath(path);
    const record = this.#record('open', `${at} ${mode}`, { path: at });
    return this.#run(record, (onComplete) => {
      if (!['read', 'write', 'create', 'createExclusive'].includes(mode)) {
        throw fsError('EINVAL', 'open', at);
      }
      const parent = this.#parentDir(at, 'open');
      const name = splitPath(at)[1];
      let ino = at === '/' ? ROOT : parent.entries.get(name);
      if (ino !== undefined) {
        if (this.#m.model.nodes.get(ino)!.kind === 'dir') throw fsError('EISDIR', 'open', at);
        if (mode === 'createExclusive') throw fsError('EEXIST', 'open', at);
      } else {
        if (mode === 'read' || mode === 'write') throw fsError('ENOENT', 'open', at);
        ino = this.#m.model.nextIno++;
        this.#m.model.nodes.set(ino, {
          kind: 'file',
          ino,
          base: new ByteBuffer(),
          ops: [],
          data: new ByteBuffer(),
        });
        this.#dirOp(
          record,
          `create ${at}`,
          [{ dir: parent.ino, name, after: ino }],
          ino,
          onComplete,
        );
      }
      record.inode = ino;
      const handle: Handle = { ino, path: at, writable: mode !== 'read', closed: false };
      const file: FsFile = Object.freeze({ path: at });
      this.#handles.set(file, handle);
      this.#open.add(handle);
      record.result = `inode ${ino}`;
      return file;
    });
  }

  close(file: FsFile): Promise<void> {
    const record = this.#record('close', '', { path: file?.path });
    return this.#run(record, () => {
      const handle = this.#handle(file, 'close');
      record.inode = handle.ino;
      handle.closed = true;
      this.#open.delete(handle);
    });
  }

  pwrite(file: FsFile, bytes: Uint8Array, position: number): Promise<number> {
    const record = this.#writeRecord('pwrite', file, bytes, position);
    return this.#run(record, (onComplete) =>
      this.#write(record, file, bytes, position, onComplete),
    );
  }

  /**
   * `pwrite` whose bytes (and the length they need) are durable once it
   * resolves: an `O_DSYNC` write. It takes effect when called, as `pwrite`
   * does, and is a pending write until it completes (a power loss before
   * then may keep, lose or tear it); its completion makes it durable and
   * nothing else: earlier writes not yet synced stay pending.
   */
  pwriteDurable(file: FsFile, bytes: Uint8Array, position: number): Promise<number> {
    const record = this.#writeRecord('pwriteDurable', file, bytes, position);
    return this.#run(record, (onComplete) =>
      this.#write(record, file, bytes, position, onComplete, true),
    );
  }

  /**
   * `pwrite` done synchronously: the bytes are in the page cache when it
   * returns (durable only once a later `fdatasync` covers them).
   */
  pwriteSync(file: FsFile, bytes: Uint8Array, position: number): number {
    const record = this.#writeRecord('pwriteSync', file, bytes, position);
    return this.#runSync(record, (onComplete) =>
      this.#write(record, file, bytes, position, onComplete),
    );
  }

  #writeRecord(
    call: 'pwrite' | 'pwriteSync' | 'pwriteDurable',
    file: FsFile,
    bytes: Uint8Array,
    position: number,
  ): Mutable<CrashFsOperation> {
    return this.#record(call, `${bytes?.length} bytes at ${position}`, {
      path: file?.path,
      position,
      length: bytes?.length,
    });
  }

  /**
   * Copies `bytes` into `file`'s page cache at `position` as a pending write
   * operation of `record` in the state given; `undefined` (nothing recorded)
   * for no bytes. Validates the arguments and the descriptor first.
   */
  #intoPageCache(
    record: Mutable<CrashFsOperation>,
    file: FsFile,
    bytes: Uint8Array,
    position: number,
    state: Pick<FileOpRecord, 'completed' | 'failed' | 'durableWrite'>,
  ): { node: FileNode; op: FileOpRecord } | undefined {
    validateBytes('bytes', bytes);
    validateOffset('position', position);
    const node = this.#fileOf(file, 'write');
    record.inode = node.ino;
    if (bytes.length === 0) return undefined;
    const copy = Uint8Array.from(bytes);
    const op: FileOpRecord = {
      id: record.id,
      kind: 'write',
      position,
      bytes: copy,
      length: copy.length,
      durable: false,
      ...state,
    };
    node.ops.push(op);
    node.data.write(position, copy);
    return { node, op };
  }

  #write(
    record: Mutable<CrashFsOperation>,
    file: FsFile,
    bytes: Uint8Array,
    position: number,
    onComplete: (fn: () => void) => void,
    durable = false,
  ): number {
    const written = this.#intoPageCache(
      record,
      file,
      bytes,
      position,
      durable ? { completed: false, durableWrite: true } : { completed: false },
    );
    record.result = `${bytes.length}`;
    if (written === undefined) return 0;
    const { node, op } = written;
    if (durable) record.covers = [record.id];
    onComplete(() => {
      op.completed = true;
      if (!durable) return;
      op.durable = true;
      CrashFs.#compactFile(node);
    });
    return bytes.length;
  }

  pread(file: FsFile, into: Uint8Array, position: number): Promise<number> {
    const record = this.#readRecord('pread', file, into, position);
    return this.#run(record, () => this.#read(record, file, into, position));
  }

  /**
   * {@link CrashFs.pread} done synchronously: takes effect and settles at
   * once (recorded as `preadSync`, never held by a completion order).
   */
  preadSync(file: FsFile, into: Uint8Array, position: number): number {
    const record = this.#readRecord('preadSync', file, into, position);
    try {
      this.#refuseIfOff(record);
      return this.#read(record, file, into, position);
    } catch (error) {
      record.error = errorCode(error) ?? 'Error';
      throw error;
    } finally {
      record.settledAt = ++this.#m.clock;
    }
  }

  #readRecord(
    call: 'pread' | 'preadSync',
    file: FsFile,
    into: Uint8Array,
    position: number,
  ): Mutable<CrashFsOperation> {
    return this.#record(call, `${into?.length} bytes at ${position}`, {
      path: file?.path,
      position,
      length: into?.length,
    });
  }

  /** The read of `pread` and `preadSync`: what reads see now (the page cache). */
  #read(
    record: Mutable<CrashFsOperation>,
    file: FsFile,
    into: Uint8Array,
    position: number,
  ): number {
    validateBytes('into', into);
    validateOffset('position', position);
    const node = this.#fileOf(file, 'read');
    record.inode = node.ino;
    const count = node.data.read(into, position);
    record.result = `${count}`;
    return count;
  }

  fdatasync(file: FsFile): Promise<void> {
    const record = this.#record('fdatasync', '', { path: file?.path });
    return this.#run(record, (onComplete) => this.#datasync(record, file, onComplete));
  }

  /**
   * `fdatasync` done synchronously: every write to the file completed before
   * the call is durable when it returns.
   */
  fdatasyncSync(file: FsFile): void {
    const record = this.#record('fdatasyncSync', '', { path: file?.path });
    this.#runSync(record, (onComplete) => this.#datasync(record, file, onComplete));
  }

  #datasync(
    record: Mutable<CrashFsOperation>,
    file: FsFile,
    onComplete: (fn: () => void) => void,
  ): void {
    const node = this.#fileOf(file, 'fdatasync');
    record.inode = node.ino;
    const covered = node.ops.filter((op) => op.completed && !op.durable && op.failed !== true);
    record.covers = covered.map((op) => op.id);
    onComplete(() => {
      // A sync failing meanwhile marked some never durable: this one, waiting
      // on the same failed writeback, may succeed without writing them.
      for (const op of covered) if (op.failed !== true) op.durable = true;
      CrashFs.#compactFile(node);
    });
  }

  /**
   * A sync failure injected by a `FaultFs` over this file system (see
   * `SYNC_FAILED`): a failed `fdatasync` makes the writes it would have
   * covered never durable; a failed `pwriteDurable` puts its bytes in the
   * page cache, never durable. Traced as the failed call (covering nothing).
   * On a dead instance, or a file it does not know, it changes nothing.
   */
  [SYNC_FAILED](failure: SyncFailure): void {
    const { method, file } = failure;
    const record =
      failure.method === 'pwriteDurable'
        ? this.#writeRecord('pwriteDurable', file, failure.bytes, failure.position)
        : this.#record(method, '', { path: file?.path });
    try {
      this.#refuseIfOff(record);
      record.covers = [];
      if (failure.method === 'pwriteDurable') {
        this.#intoPageCache(record, file, failure.bytes, failure.position, {
          completed: true,
          failed: true,
        });
      } else {
        const node = this.#fileOf(file, 'fdatasync');
        record.inode = node.ino;
        // Every write in the page cache, completed or still in flight (its
        // bytes were copied when it was called), but a durable write's own
        // (its own writeback reports its own outcome).
        for (const op of node.ops) {
          if (op.kind === 'write' && !op.durable && op.durableWrite !== true) op.failed = true;
        }
      }
    } catch {
      // A closed file or a dead process: the call changes nothing.
    } finally {
      record.error = failure.code;
      record.settledAt = ++this.#m.clock;
    }
  }

  ftruncate(file: FsFile, length: number): Promise<void> {
    const record = this.#record('ftruncate', `to ${length}`, { path: file?.path, length });
    return this.#run(record, (onComplete) => {
      validateOffset('length', length);
      const node = this.#fileOf(file, 'ftruncate');
      record.inode = node.ino;
      const op: FileOpRecord = {
        id: record.id,
        kind: 'truncate',
        position: 0,
        bytes: undefined,
        length,
        completed: false,
        durable: false,
      };
      node.ops.push(op);
      node.data.truncate(length);
      onComplete(() => {
        op.completed = true;
      });
    });
  }

  size(file: FsFile): Promise<number> {
    const record = this.#record('size', '', { path: file?.path });
    return this.#run(record, () => {
      const node = this.#fileOf(file, 'fstat');
      record.inode = node.ino;
      record.result = `${node.data.length}`;
      return node.data.length;
    });
  }

  /**
   * How many entries of the namespace (as the process sees it: pending
   * operations included) name the file: 1, or 0 once it was unlinked or
   * renamed over. CrashFs has no hard links, so never more than 1.
   */
  links(file: FsFile): Promise<number> {
    const record = this.#record('links', '', { path: file?.path });
    return this.#run(record, () => {
      const ino = this.#handle(file, 'fstat').ino;
      record.inode = ino;
      let count = 0;
      for (const node of this.#m.model.nodes.values()) {
        if (node.kind !== 'dir') continue;
        for (const entry of node.entries.values()) if (entry === ino) count++;
      }
      record.result = `${count}`;
      return count;
    });
  }

  /**
   * `path` normalised (CrashFs has no symbolic links): resolves once every
   * component exists, rejects with `ENOENT` or `ENOTDIR` as `realpath(3)`.
   */
  realpath(path: string): Promise<string> {
    const at = normalisePath(path);
    const record = this.#record('realpath', at, { path: at });
    return this.#run(record, () => {
      if (at !== '/') {
        const ino = this.#parentDir(at, 'realpath').entries.get(splitPath(at)[1]);
        if (ino === undefined) throw fsError('ENOENT', 'realpath', at);
        record.inode = ino;
      }
      record.result = at;
      return at;
    });
  }

  rename(from: string, to: string): Promise<void> {
    const source = normalisePath(from);
    const target = normalisePath(to);
    const record = this.#record('rename', `${source} -> ${target}`, {
      path: source,
      dest: target,
    });
    return this.#run(record, (onComplete) => {
      const fail = (code: string): never => {
        throw fsError(code, 'rename', source, target);
      };
      if (source === '/' || target === '/') fail('EBUSY');
      const fromDir = this.#parentDir(source, 'rename', target);
      const toDir = this.#parentDir(target, 'rename', source);
      const fromName = splitPath(source)[1];
      const toName = splitPath(target)[1];
      const ino = fromDir.entries.get(fromName);
      if (ino === undefined) return fail('ENOENT');
      record.inode = ino;
      const moving = this.#m.model.nodes.get(ino)!;
      const replaced = toDir.entries.get(toName);
      if (replaced === ino) return;
      if (moving.kind === 'dir' && target.startsWith(`${source}/`)) fail('EINVAL');
      if (replaced !== undefined) {
        const victim = this.#m.model.nodes.get(replaced)!;
        if (moving.kind === 'file' && victim.kind === 'dir') fail('EISDIR');
        if (moving.kind === 'dir' && victim.kind === 'file') fail('ENOTDIR');
        if (victim.kind === 'dir' && victim.entries.size > 0) fail('ENOTEMPTY');
      }
      this.#dirOp(
        record,
        `rename ${source} -> ${target}`,
        [
          { dir: fromDir.ino, name: fromName, after: undefined },
          { dir: toDir.ino, name: toName, after: ino },
        ],
        undefined,
        onComplete,
      );
    });
  }

  unlink(path: string): Promise<void> {
    const at = normalisePath(path);
    const record = this.#record('unlink', at, { path: at });
    return this.#run(record, (onComplete) => {
      if (at === '/') throw fsError('EISDIR', 'unlink', at);
      const dir = this.#parentDir(at, 'unlink');
      const name = splitPath(at)[1];
      const ino = dir.entries.get(name);
      if (ino === undefined) throw fsError('ENOENT', 'unlink', at);
      if (this.#m.model.nodes.get(ino)!.kind === 'dir') throw fsError('EISDIR', 'unlink', at);
      record.inode = ino;
      this.#dirOp(
        record,
        `unlink ${at}`,
        [{ dir: dir.ino, name, after: undefined }],
        undefined,
        onComplete,
      );
    });
  }

  readdir(path: string): Promise<string[]> {
    const at = normalisePath(path);
    const record = this.#record('readdir', at, { path: at });
    return this.#run(record, () => {
      const dir = this.#dirAt(at, 'scandir');
      record.inode = dir.ino;
      const names = [...dir.entries.keys()].sort();
      record.result = `${names.length} entries`;
      return names;
    });
  }

  mkdir(path: string): Promise<boolean> {
    const at = normalisePath(path);
    const record = this.#record('mkdir', at, { path: at });
    return this.#run(record, (onComplete) => {
      if (at === '/') {
        record.result = 'false';
        return false;
      }
      const parent = this.#parentDir(at, 'mkdir');
      const name = splitPath(at)[1];
      const existing = parent.entries.get(name);
      if (existing !== undefined) {
        if (this.#m.model.nodes.get(existing)!.kind === 'file')
          throw fsError('EEXIST', 'mkdir', at);
        record.inode = existing;
        record.result = 'false';
        return false;
      }
      const ino = this.#m.model.nextIno++;
      this.#m.model.nodes.set(ino, { kind: 'dir', ino, entries: new Map(), base: new Map() });
      record.inode = ino;
      record.result = 'true';
      this.#dirOp(record, `mkdir ${at}`, [{ dir: parent.ino, name, after: ino }], ino, onComplete);
      return true;
    });
  }

  syncDir(path: string): Promise<void> {
    const at = normalisePath(path);
    const record = this.#record('syncDir', at, { path: at });
    return this.#run(record, (onComplete) => {
      const ino = this.#dirAt(at, 'fsync').ino;
      record.inode = ino;
      const covered = this.#m.model.dirOps.filter(
        (op) => op.completed && !op.durable && op.dirs.includes(ino) && !op.synced.has(ino),
      );
      record.covers = covered.map((op) => op.id);
      onComplete(() => {
        for (const op of covered) {
          op.synced.add(ino);
          op.durable = op.dirs.every((dir) => op.synced.has(dir));
        }
        this.#compactDirs();
      });
    });
  }

  lock(path: string): Promise<FsLock> {
    const at = normalisePath(path);
    const record = this.#record('lock', at, { path: at });
    return this.#run(record, () => {
      this.#parentDir(at, 'open');
      if (this.#m.locks.has(at)) throw new LockedError(at);
      const token = {};
      this.#m.locks.set(at, { token, owner: this });
      const release = (): Promise<void> => {
        const entry = this.#record('release', at, { path: at });
        return this.#run(entry, () => {
          if (this.#m.locks.get(at)?.token === token) this.#m.locks.delete(at);
        });
      };
      return { release };
    });
  }

  // ---- Crashes --------------------------------------------------------------

  /**
   * The states a power loss now could leave, drawn lazily (see
   * {@link CrashStatesOptions}). Taken from a snapshot: later calls on this
   * file system do not change them.
   *
   * The space: (1) any set of pending directory operations closed under their
   * order on each entry (a later create, rename or unlink of the same name
   * survives only with the earlier ones), and an operation inside a directory
   * whose mkdir is pending survives only with that mkdir; (2) for every file
   * reachable in that namespace, any subset of its pending writes and
   * truncates, applied in issue order; with `tear`, each surviving pending
   * write whole or torn — at most 4 pieces (split at sector boundaries and
   * `tearAt`): every mix of kept and lost pieces, n > 4 pieces: a kept
   * prefix, a kept suffix or every piece but one inner one (3n − 3 patterns
   * with the next one; other mixes only by sampling, which draws any); and, whatever the count (one piece too), no piece kept — its
   * lost pieces reading as `lost` says (`old` keeps what was there before
   * it), a torn write keeping its size (an extending write lost whole but for
   * its length reads as zeros, or garbage, up to its end); (3) with `lengths`, when the surviving operations
   * grow the file past its durable length D to N, the length N or any of D,
   * a pending write's end or a `tearAt` offset in between (sampling draws
   * any byte length in `[D, N)`). Unreachable inodes are gone.
   *
   * Sampling is seeded: sample 0 keeps only durable state, sample 1 keeps
   * every operation whole, later ones draw a survival bias, then each choice.
   */
  crashStates(options: CrashStatesOptions = {}): CrashStates {
    const resolved = this.#resolve(options);
    return new StatesImpl(new CrashPlan(this.#snapshot(), resolved), {
      sectorSize: this.sectorSize,
    });
  }

  /**
   * Simulates a power loss: draws one seeded, random crash state (as sampling
   * does) and returns it; reopen it with `state.fs()`. This instance (with
   * every process of its machine: those before and after a
   * {@link CrashFs.processCrash}) is the machine that lost power: it shows
   * the crash state (`snapshot`, `crashStates`) but runs nothing more: every
   * later call on it (from a handle, a lock or a path, by code still running
   * from before the crash) fails with `EIO` and changes nothing, so no call
   * made after the crash can reach the state the log is reopened from. Calls
   * in flight settle and change nothing; every lock is dropped.
   */
  powerLoss(options: CrashStatesOptions = {}): CrashState {
    const plan = new CrashPlan(this.#snapshot(), this.#resolve(options));
    const state = new StateImpl(plan.sampleAt(2), { sectorSize: this.sectorSize });
    this.#reset(this.#record('reset', `${state.files.size} files`), state);
    this.#m.off = true;
    return state;
  }

  /**
   * The calls this process issued whose promises have not settled yet, in
   * issue order: what a {@link CrashFs.processCrash} now would decide on.
   */
  get inFlight(): readonly CrashFsOperation[] {
    return [...this.#m.running].filter((call) => call.owner === this).map((call) => call.record);
  }

  /**
   * Simulates a crash of the process only (a `kill -9`) and returns the
   * `CrashFs` of the next process on the same machine: it shares the page
   * cache, so every call that had run keeps its effect and what was not
   * durable stays pending for a later power loss (on either instance: they
   * share the machine, its trace and its clock). This instance is the killed
   * process: it runs nothing more; every later call on it (from a handle, a
   * lock or a path, by code still running from before the crash: a pending
   * promise, a timer, a `close()`) fails with `EIO` and changes nothing.
   * Its locks are released, as the kernel releases a dead process's locks;
   * its files are not open in the next process (`EBADF`).
   *
   * Calls in flight at the kill (issued, promise not settled: see
   * {@link CrashFs.inFlight}) may or may not have run in the kernel; `options`
   * decides which did (default: a seeded draw). One that ran keeps its effect
   * whole (a write is in the page cache entire: a kill stopping a long write
   * part-way, as Linux may, is not simulated) and
   * completes now: a later `fdatasync` covers its writes, a covering
   * `fdatasync` or `syncDir` makes its operations durable, a `pwriteDurable`
   * is durable. One that never ran is undone: its write, truncate, create,
   * mkdir, rename or unlink is gone from the page cache (reads of the next
   * process, and every crash state, are as if it was never issued), and a
   * sync makes nothing durable. Each call's fate is traced (`atCrash`). Their
   * promises still settle, as they would have, for the dead process only.
   * Inspection (`snapshot`, `crashStates`, `operations`, `mark`) still works
   * on this instance.
   *
   * @throws `EIO` when this process was already killed or the machine lost power.
   */
  processCrash(options: ProcessCrashOptions = {}): CrashFs {
    const seed = options.seed ?? 0;
    validateInteger('options.seed', seed, 0, 2 ** 53 - 1);
    const choice =
      options.inFlight ?? ((call: CrashFsOperation) => (mixSeed(seed, call.id) & 1) === 1);
    if (choice !== 'ran' && choice !== 'lost' && typeof choice !== 'function') {
      throw new RangeError(`options.inFlight must be 'ran', 'lost' or a function`);
    }
    const record = this.#record('processCrash', '');
    record.settledAt = record.issuedAt;
    if (this.#m.off || this.#killed) {
      record.error = 'EIO';
      throw fsError('EIO', 'processCrash');
    }
    this.#killed = true;
    this.#dropHandles();
    this.#settleInFlight(choice);
    for (const [path, lock] of this.#m.locks) {
      if (lock.owner === this) this.#m.locks.delete(path);
    }
    nextProcessOf = this.#m;
    const next = new CrashFs();
    this.#m.live = next;
    return next;
  }

  /**
   * Replaces the whole contents with `image`, all durable, as a reboot after a
   * power loss would: drops every lock, invalidates every open file (`EBADF`),
   * and detaches calls still in flight (they settle but change nothing). The
   * trace is kept. For a test that edits the disk between two runs (a
   * damaged byte, a deleted file), on the live instance; to reboot after a
   * power loss, open the returned state instead (`state.fs()`).
   *
   * @throws `EIO` (nothing changed) on a dead instance: once this process
   * was killed ({@link CrashFs.processCrash}: call it on the instance that
   * returned) or the machine lost power ({@link CrashFs.powerLoss}).
   */
  reset(image: CrashImage): void {
    const record = this.#record('reset', `${image.files.size} files`);
    if (this.#m.off || this.#killed) {
      record.settledAt = record.issuedAt;
      record.error = 'EIO';
      throw fsError('EIO', 'reset');
    }
    this.#reset(record, image);
  }

  /** `reset`'s work, traced as `record`: also what a power loss leaves. */
  #reset(record: Mutable<CrashFsOperation>, image: CrashImage): void {
    this.#m.live.#dropHandles();
    this.#m.locks.clear();
    this.#m.epoch++;
    this.#m.model = CrashFs.#fromImage(image);
    record.settledAt = record.issuedAt;
  }

  /** The current contents as a process would read them (the page cache), as copies. */
  snapshot(): CrashImage & { readonly dirs: ReadonlySet<string> } {
    const files = new Map<string, Uint8Array>();
    const dirs = new Set<string>();
    const visit = (path: string, dir: DirNode): void => {
      dirs.add(path);
      for (const name of [...dir.entries.keys()].sort()) {
        const child = this.#m.model.nodes.get(dir.entries.get(name)!)!;
        const childPath = posix.join(path, name);
        if (child.kind === 'dir') visit(childPath, child);
        else files.set(childPath, child.data.view().slice());
      }
    };
    visit('/', this.#m.model.nodes.get(ROOT) as DirNode);
    return { files, dirs };
  }

  // ---- Internals ------------------------------------------------------------

  #record(
    call: CrashFsCall,
    args: string,
    fields: Partial<Pick<CrashFsOperation, 'path' | 'dest' | 'position' | 'length'>> = {},
  ): Mutable<CrashFsOperation> {
    const record: Mutable<CrashFsOperation> = {
      id: this.#m.trace.length + 1,
      call,
      path: fields.path,
      dest: fields.dest,
      inode: undefined,
      position: fields.position,
      length: fields.length,
      args,
      issuedAt: ++this.#m.clock,
      settledAt: undefined,
      result: undefined,
      error: undefined,
      covers: undefined,
    };
    this.#m.trace.push(record);
    return record;
  }

  /**
   * Runs `effect` now and settles it at once, as a synchronous call does
   * (never reordered: nothing else runs before it returns).
   */
  #runSync<T>(
    record: Mutable<CrashFsOperation>,
    effect: (onComplete: (fn: () => void) => void) => T,
  ): T {
    const completions: Array<() => void> = [];
    try {
      this.#refuseIfOff(record);
      const value = effect((fn) => completions.push(fn));
      for (const fn of completions) fn();
      return value;
    } catch (error) {
      record.error = errorCode(error) ?? 'Error';
      throw error;
    } finally {
      record.settledAt = ++this.#m.clock;
    }
  }

  /**
   * Runs `effect` now and settles its promise one macrotask later; the
   * completions `effect` registered run just before it resolves (unless a
   * `reset` intervened).
   */
  #run<T>(
    record: Mutable<CrashFsOperation>,
    effect: (onComplete: (fn: () => void) => void) => T,
  ): Promise<T> {
    const epoch = this.#m.epoch;
    const completions: Array<() => void> = [];
    let value: T;
    let failure: { error: unknown } | undefined;
    try {
      this.#refuseIfOff(record);
      value = effect((fn) => completions.push(fn));
    } catch (error) {
      failure = { error };
      record.error = errorCode(error) ?? 'Error';
    }
    const call: RunningCall = {
      record,
      owner: this,
      epoch,
      completions: failure === undefined ? completions : undefined,
      finished: false,
    };
    this.#m.running.add(call);
    return new Promise<T>((resolve, reject) => {
      const settle = (): void => {
        this.#m.running.delete(call);
        record.settledAt = ++this.#m.clock;
        if (failure !== undefined) {
          reject(failure.error);
          return;
        }
        if (epoch === this.#m.epoch && !call.finished) for (const fn of completions) fn();
        resolve(value);
      };
      if (this.#m.order === undefined) setImmediate(settle);
      else {
        this.#m.inFlight.push({ record, settle });
        this.#pump();
      }
    });
  }

  /** After `powerLoss` or `processCrash`: the call fails before any effect. */
  #refuseIfOff(record: Mutable<CrashFsOperation>): void {
    if (this.#m.off || this.#killed) throw fsError('EIO', record.call, record.path, record.dest);
  }

  /** With an order: settles one call in flight in the next macrotask, then the next. */
  #pump(): void {
    if (this.#m.pumping) return;
    this.#m.pumping = true;
    setImmediate(() => {
      this.#m.pumping = false;
      const inFlight = this.#m.inFlight;
      const index = this.#m.order!.next(inFlight.map((entry) => entry.record));
      if (!Number.isInteger(index) || index < 0 || index >= inFlight.length) {
        throw new RangeError(
          `the completion order picked ${String(index)} of ${inFlight.length} calls in flight`,
        );
      }
      inFlight.splice(index, 1)[0]!.settle();
      if (inFlight.length > 0) this.#pump();
    });
  }

  #dirOp(
    record: Mutable<CrashFsOperation>,
    label: string,
    effects: EntryEffect[],
    creates: number | undefined,
    onComplete: (fn: () => void) => void,
  ): void {
    const dirs = [...new Set(effects.map((effect) => effect.dir))];
    const op: DirOpRecord = {
      id: record.id,
      label,
      effects,
      dirs,
      creates,
      completed: false,
      synced: new Set(),
      durable: false,
    };
    this.#m.model.dirOps.push(op);
    for (const effect of effects) {
      const dir = this.#m.model.nodes.get(effect.dir) as DirNode;
      if (effect.after === undefined) dir.entries.delete(effect.name);
      else dir.entries.set(effect.name, effect.after);
    }
    onComplete(() => {
      op.completed = true;
    });
  }

  #handle(file: FsFile, syscall: string): Handle {
    const handle = file === null || typeof file !== 'object' ? undefined : this.#handles.get(file);
    if (handle === undefined || handle.closed) throw fsError('EBADF', syscall);
    return handle;
  }

  #fileOf(file: FsFile, syscall: string): FileNode {
    const handle = this.#handle(file, syscall);
    if (!handle.writable && (syscall === 'write' || syscall === 'ftruncate')) {
      throw fsError(syscall === 'write' ? 'EBADF' : 'EINVAL', syscall);
    }
    return this.#m.model.nodes.get(handle.ino) as FileNode;
  }

  /** The directory node at `path`, or ENOENT / ENOTDIR. */
  #dirAt(path: string, syscall: string, dest?: string): DirNode {
    let node: Node = this.#m.model.nodes.get(ROOT)!;
    for (const name of path.split('/').filter((part) => part !== '')) {
      if (node.kind !== 'dir') throw fsError('ENOTDIR', syscall, path, dest);
      const next = node.entries.get(name);
      if (next === undefined) throw fsError('ENOENT', syscall, path, dest);
      node = this.#m.model.nodes.get(next)!;
    }
    if (node.kind !== 'dir') throw fsError('ENOTDIR', syscall, path, dest);
    return node;
  }

  /** The parent directory of `path`, or ENOENT / ENOTDIR (reported against `path`). */
  #parentDir(path: string, syscall: string, dest?: string): DirNode {
    const parent = splitPath(path)[0];
    try {
      return this.#dirAt(parent, syscall);
    } catch (error) {
      throw fsError((error as { code: string }).code, syscall, path, dest);
    }
  }

  /**
   * At this process's kill: decides which of its calls in flight ran (see
   * {@link ProcessCrashOptions}), completes those, undoes the others.
   */
  #settleInFlight(choice: NonNullable<ProcessCrashOptions['inFlight']>): void {
    const calls = [...this.#m.running].filter(
      (call) => call.owner === this && !call.finished && call.epoch === this.#m.epoch,
    );
    const ran = new Map<number, boolean>();
    for (const call of calls) {
      if (call.completions === undefined) continue; // It failed: no effect to keep or undo.
      const id = call.record.id;
      ran.set(
        id,
        choice === 'ran' ? true : choice === 'lost' ? false : choice(call.record) === true,
      );
    }
    this.#closeDirChoices(ran);
    const lost = new Set<number>();
    for (const call of calls) {
      call.finished = true;
      if (call.completions === undefined) continue;
      if (ran.get(call.record.id) === true) {
        call.record.atCrash = 'ran';
        for (const fn of call.completions) fn();
      } else {
        call.record.atCrash = 'lost';
        lost.add(call.record.id);
      }
    }
    if (lost.size > 0) this.#undo(lost);
  }

  /**
   * Makes the choice of directory operations in flight consistent: one that a
   * later operation that had settled depends on (same entry, or inside the
   * directory it created) ran; one that depends on an earlier one in flight
   * that did not run did not run either.
   */
  #closeDirChoices(ran: Map<number, boolean>): void {
    const ops = this.#m.model.dirOps;
    const { entry, parents } = dirOpDeps(ops);
    const deps = entry.map((before, i) => [...new Set([...before, ...parents[i]!])]);
    const inFlight = (i: number): boolean => ran.has(ops[i]!.id);
    const forced = new Set<number>();
    for (let i = ops.length - 1; i >= 0; i--) {
      if (inFlight(i) && !forced.has(i)) continue;
      for (const dep of deps[i]!) {
        if (!inFlight(dep)) continue;
        forced.add(dep);
        ran.set(ops[dep]!.id, true);
      }
    }
    ops.forEach((op, i) => {
      if (!inFlight(i) || ran.get(op.id) !== true) return;
      if (deps[i]!.some((dep) => inFlight(dep) && ran.get(ops[dep]!.id) !== true)) {
        ran.set(op.id, false);
      }
    });
  }

  /** Removes the effects of the operations `lost` from the page cache and the pending state. */
  #undo(lost: ReadonlySet<number>): void {
    const model = this.#m.model;
    for (const node of model.nodes.values()) {
      if (node.kind !== 'file' || !node.ops.some((op) => lost.has(op.id))) continue;
      const kept = node.ops.filter((op) => !lost.has(op.id));
      node.ops.splice(0, node.ops.length, ...kept);
      CrashFs.#compactFile(node);
      node.data.truncate(0);
      node.data.write(0, node.base.view());
      for (const op of node.ops) {
        if (op.kind === 'write') node.data.write(op.position, op.bytes!);
        else node.data.truncate(op.length);
      }
    }
    if (!model.dirOps.some((op) => lost.has(op.id))) return;
    const kept = model.dirOps.filter((op) => !lost.has(op.id));
    model.dirOps.splice(0, model.dirOps.length, ...kept);
    this.#compactDirs();
    for (const node of model.nodes.values()) {
      if (node.kind !== 'dir') continue;
      node.entries.clear();
      for (const [name, ino] of node.base) node.entries.set(name, ino);
    }
    for (const op of model.dirOps) {
      for (const effect of op.effects) {
        const dir = model.nodes.get(effect.dir) as DirNode;
        if (effect.after === undefined) dir.entries.delete(effect.name);
        else dir.entries.set(effect.name, effect.after);
      }
    }
  }

  #dropHandles(): void {
    for (const handle of this.#open) handle.closed = true;
    this.#open = new Set();
    this.#handles = new WeakMap();
  }

  static #compactFile(node: FileNode): void {
    let done = 0;
    for (const op of node.ops) {
      if (!op.durable) break;
      if (op.kind === 'write') node.base.write(op.position, op.bytes!);
      else node.base.truncate(op.length);
      done++;
    }
    node.ops.splice(0, done);
  }

  #compactDirs(): void {
    const ops = this.#m.model.dirOps;
    let done = 0;
    for (const op of ops) {
      if (!op.durable) break;
      for (const effect of op.effects) {
        const dir = this.#m.model.nodes.get(effect.dir) as DirNode;
        if (effect.after === undefined) dir.base.delete(effect.name);
        else dir.base.set(effect.name, effect.after);
      }
      done++;
    }
    ops.splice(0, done);
  }

  #snapshot(): ModelSnapshot {
    const dirs = new Map<number, ReadonlyMap<string, number>>();
    const files = new Map<number, { base: Uint8Array; ops: readonly FileOpRecord[] }>();
    for (const node of this.#m.model.nodes.values()) {
      if (node.kind === 'dir') dirs.set(node.ino, new Map(node.base));
      else {
        const ops = node.ops.map((op) => ({ ...op }));
        files.set(node.ino, { base: node.base.view().slice(), ops });
      }
    }
    const dirOps = this.#m.model.dirOps.map((op) => ({ ...op, synced: new Set(op.synced) }));
    return { dirs, files, dirOps };
  }

  #resolve(options: CrashStatesOptions): ResolvedCrashOptions {
    const seed = options.seed ?? 0;
    const limit = options.limit ?? 1000;
    validateInteger('options.seed', seed, 0, 2 ** 53 - 1);
    validateInteger('options.limit', limit, 1, 2 ** 31 - 1);
    const lost = options.lost ?? ALL_LOST;
    if (lost.length === 0 || lost.some((kind) => !ALL_LOST.includes(kind))) {
      throw new RangeError(`options.lost must list some of 'old', 'zero', 'garbage'`);
    }
    const tearAt = options.tearAt ?? [];
    tearAt.forEach((at, i) => {
      validateOffset(`options.tearAt[${i}]`, at);
    });
    return {
      seed,
      limit,
      tear: options.tear ?? true,
      lengths: options.lengths ?? true,
      lost: [...new Set(lost)],
      tearAt: [...new Set(tearAt)],
      mode: options.mode ?? 'auto',
      unique: options.unique ?? true,
      sectorSize: this.sectorSize,
    };
  }

  static #fromImage(image: CrashImage): Model {
    const model = emptyModel();
    const dirAt = (path: string): DirNode => {
      if (path === '/') return model.nodes.get(ROOT) as DirNode;
      const [parentPath, name] = splitPath(path);
      const parent = dirAt(parentPath);
      const existing = parent.base.get(name);
      if (existing !== undefined) {
        const node = model.nodes.get(existing)!;
        if (node.kind === 'dir') return node;
        throw fsError('ENOTDIR', 'mkdir', path);
      }
      const node: DirNode = {
        kind: 'dir',
        ino: model.nextIno++,
        entries: new Map(),
        base: new Map(),
      };
      model.nodes.set(node.ino, node);
      parent.base.set(name, node.ino);
      parent.entries.set(name, node.ino);
      return node;
    };
    for (const dir of image.dirs ?? []) dirAt(normalisePath(dir));
    for (const [path, bytes] of image.files) {
      const at = normalisePath(path);
      const [parentPath, name] = splitPath(at);
      const parent = dirAt(parentPath);
      if (at === '/' || parent.base.has(name)) throw fsError('EEXIST', 'open', at);
      const ino = model.nextIno++;
      model.nodes.set(ino, {
        kind: 'file',
        ino,
        base: new ByteBuffer(bytes),
        ops: [],
        data: new ByteBuffer(bytes),
      });
      parent.base.set(name, ino);
      parent.entries.set(name, ino);
    }
    return model;
  }
}
