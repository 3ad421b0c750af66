/**
 * Enumeration of the states a power loss can leave, for `CrashFs`. Works on a
 * frozen snapshot of the model (see {@link ModelSnapshot}), so the file system
 * may keep running, or be reset, while states are drawn.
 *
 * The space of a snapshot is the product of independent choices:
 * - which pending directory operations survive: any set closed under their
 *   ordering constraints (see {@link DirOpRecord});
 * - for every file reachable in the resulting namespace, which pending writes
 *   and truncates survive (any subset, applied in issue order), how each
 *   surviving pending write is torn, whether each lost truncate cutting
 *   inside a block left its zeroing of the rest of that block, and the
 *   file's length.
 *
 * Internal to the testing entry point: `CrashFs.crashStates` is the API.
 */

import { ByteBuffer, fingerprint, mixSeed, Rng } from './crash-util.js';

/** What a lost sector of a torn write reads as after the crash. */
export type LostContent = 'old' | 'zero' | 'garbage';

/** A write or truncate of one file, as the model keeps it until it is durable. */
export interface FileOpRecord {
  /** The operation id in the trace. */
  readonly id: number;
  readonly kind: 'write' | 'truncate';
  /** Write: the position. Truncate: 0. */
  readonly position: number;
  /** Write: a private copy of the bytes. Truncate: undefined. */
  readonly bytes: Uint8Array | undefined;
  /** Write: the byte count. Truncate: the new length. */
  readonly length: number;
  /** Resolved: a later fdatasync covers it. */
  completed: boolean;
  /** Covered by a completed fdatasync: present in every crash state. */
  durable: boolean;
  /**
   * Covered by a failed `fdatasync`, or written by a failed `pwriteDurable`:
   * in the page cache but never durable (no later sync covers it), so every
   * crash state may keep, lose or tear it. Absent: false.
   */
  failed?: boolean;
  /** Written by a `pwriteDurable` (its own writeback): a failed `fdatasync` meanwhile does not mark it. Absent: false. */
  readonly durableWrite?: boolean;
}

/** One directory entry changed by a directory operation. */
export interface EntryEffect {
  readonly dir: number;
  readonly name: string;
  /** The inode the entry names afterwards; undefined when removed. */
  readonly after: number | undefined;
}

/**
 * A directory operation (create, mkdir, rename, unlink). It is durable once
 * every directory it touches was fsynced (`syncDir`) after it completed. In a
 * crash state a pending one survives or not as a whole (a rename is atomic),
 * subject to: (1) operations touching the same entry (directory, name) survive
 * in issue order — a later one only with every earlier pending one; (2) an
 * operation inside a directory created by a pending mkdir survives only with
 * that mkdir. A durable operation forces the earlier ones of rule (1).
 */
export interface DirOpRecord {
  readonly id: number;
  /** Short text such as `rename /a -> /b`. */
  readonly label: string;
  readonly effects: readonly EntryEffect[];
  /** The directory inodes whose entries change. */
  readonly dirs: readonly number[];
  /** The inode a create or mkdir brought into being. */
  readonly creates: number | undefined;
  completed: boolean;
  /** The directories of `dirs` fsynced since it completed. */
  readonly synced: Set<number>;
  durable: boolean;
}

/**
 * What each directory operation of `ops` (in issue order) depends on, by
 * index: `entry[i]`, the operations before it that last changed one of the
 * entries it changes (it cannot survive without them); `parents[i]`, the
 * ones that created a directory whose entries it changes.
 */
export function dirOpDeps(ops: readonly DirOpRecord[]): {
  entry: number[][];
  parents: number[][];
} {
  const entry: number[][] = [];
  const parents: number[][] = [];
  const lastOnEntry = new Map<string, number>();
  const creator = new Map<number, number>();
  ops.forEach((op, i) => {
    const before = new Set<number>();
    for (const effect of op.effects) {
      const key = `${effect.dir}/${effect.name}`;
      const previous = lastOnEntry.get(key);
      if (previous !== undefined) before.add(previous);
      lastOnEntry.set(key, i);
    }
    const made = new Set<number>();
    for (const dir of op.dirs) {
      const at = creator.get(dir);
      if (at !== undefined) made.add(at);
    }
    if (op.creates !== undefined) creator.set(op.creates, i);
    entry.push([...before]);
    parents.push([...made]);
  });
  return { entry, parents };
}

/** A frozen copy of what a power loss acts on. */
export interface ModelSnapshot {
  /** Durable entries of every directory inode (root is inode 1). */
  readonly dirs: ReadonlyMap<number, ReadonlyMap<string, number>>;
  /** Every file inode: durable base bytes and later operations in issue order. */
  readonly files: ReadonlyMap<number, { base: Uint8Array; ops: readonly FileOpRecord[] }>;
  /** Directory operations after the durable base, in issue order. */
  readonly dirOps: readonly DirOpRecord[];
}

/** Options of an enumeration, defaults applied. */
export interface ResolvedCrashOptions {
  readonly seed: number;
  readonly limit: number;
  readonly tear: boolean;
  readonly lengths: boolean;
  readonly lost: readonly LostContent[];
  readonly tearAt: readonly number[];
  readonly mode: 'auto' | 'exhaustive' | 'sample';
  readonly unique: boolean;
  readonly sectorSize: number;
}

/** A generated state before `CrashFs` wraps it. */
export interface RawState {
  readonly index: number;
  readonly description: string;
  readonly files: ReadonlyMap<string, Uint8Array>;
  readonly dirs: ReadonlySet<string>;
}

/** Above this many pending operations (per file, or directory-wide), counts are bounds. */
const EXACT_PENDING = 16;
/** Up to this many pieces, a torn write enumerates every surviving subset of pieces. */
const ALL_MASK_PIECES = 4;
/**
 * The file-system block (and page): a shrinking truncate zeroes the rest of
 * the block its cut falls in (ext4's `block_truncate_page`), and that
 * zeroing may reach the disk without the cut. At least the sector size.
 */
const BLOCK = 4096;

interface TearChoice {
  /** Which pieces reached the disk. */
  readonly persisted: readonly boolean[];
  readonly lost: LostContent;
}

interface FileVariant {
  /** Per pending operation: survives. */
  readonly include: readonly boolean[];
  /** Per pending operation: how a surviving write is torn (undefined: whole). */
  readonly tears: readonly (TearChoice | undefined)[];
  /** The file length; undefined for the natural length of the surviving operations. */
  readonly length: number | undefined;
  /**
   * Per pending operation: a lost truncate whose zeroing of the rest of its
   * cut's block reached the disk (absent: false).
   */
  readonly zeroed?: readonly boolean[];
}

/**
 * How many torn patterns a write of `pieces` pieces has: every one that does
 * not keep it whole. Up to {@link ALL_MASK_PIECES} pieces, every mix of kept
 * and lost pieces; n > 4 pieces: a kept prefix (n − 1), a kept suffix
 * (n − 1), every piece but one inner one kept (n − 2: a hole, as when the
 * sectors of one write reach the disk out of order), or none: 3n − 3 in
 * all (other mixes, such as two holes, only by sampling). Keeping none
 * (every piece lost, the size kept: the file at the write's end, reading as
 * `lost` says) is a pattern too, even of a one-piece write: a file system
 * may persist the size of an extending write before (or without) its data.
 */
function tearMaskCount(pieces: number): number {
  if (pieces < 1) return 0;
  return pieces <= ALL_MASK_PIECES ? 2 ** pieces - 1 : 3 * pieces - 3;
}

/**
 * The `index`-th torn pattern of `pieces` pieces: all mixes (binary order),
 * or prefixes, suffixes, then single inner holes; the last pattern keeps no
 * piece.
 */
function tearMask(pieces: number, index: number): boolean[] {
  if (index === tearMaskCount(pieces) - 1) return Array.from({ length: pieces }, () => false);
  if (pieces <= ALL_MASK_PIECES) {
    const bits = index + 1;
    return Array.from({ length: pieces }, (_, j) => ((bits >> j) & 1) === 1);
  }
  if (index < pieces - 1) return Array.from({ length: pieces }, (_, j) => j <= index);
  if (index < 2 * (pieces - 1)) {
    const keep = index - (pieces - 1) + 1;
    return Array.from({ length: pieces }, (_, j) => j >= pieces - keep);
  }
  const hole = index - 2 * (pieces - 1) + 1;
  return Array.from({ length: pieces }, (_, j) => j !== hole);
}

class FilePlan {
  readonly #base: Uint8Array;
  readonly #ops: readonly FileOpRecord[];
  /** Indices into #ops of the operations not yet durable. */
  readonly pending: readonly number[];
  /** Piece boundaries of each pending write (absolute offsets), by op index. */
  readonly #pieces = new Map<number, number[]>();
  readonly durableLength: number;
  readonly #options: ResolvedCrashOptions;
  readonly #count: { count: number; exact: boolean };
  /** Indices into #ops of the truncates that shrank the file (in the page cache, when issued). */
  readonly #shrinks = new Set<number>();

  constructor(base: Uint8Array, ops: readonly FileOpRecord[], options: ResolvedCrashOptions) {
    this.#base = base;
    this.#ops = ops;
    this.#options = options;
    let cached = base.length;
    ops.forEach((op, index) => {
      if (op.kind === 'write') cached = Math.max(cached, op.position + op.length);
      else {
        if (op.length < cached) this.#shrinks.add(index);
        cached = op.length;
      }
    });
    const pending: number[] = [];
    ops.forEach((op, index) => {
      if (op.durable) return;
      pending.push(index);
      if (op.kind === 'write') this.#pieces.set(index, this.#boundaries(op));
    });
    this.pending = pending;
    this.durableLength = this.#naturalLength(pending.map(() => false));
    this.#count = this.#computeCount();
  }

  #boundaries(op: FileOpRecord): number[] {
    const start = op.position;
    const end = op.position + op.length;
    const cuts = new Set<number>([start, end]);
    const size = this.#options.sectorSize;
    const pieces = Math.ceil((end - start) / size) + 1;
    // Sector boundaries: enough for any torn pattern we can describe.
    if (pieces <= 1 << 16) {
      for (let at = (Math.floor(start / size) + 1) * size; at < end; at += size) cuts.add(at);
    }
    for (const at of this.#options.tearAt) if (at > start && at < end) cuts.add(at);
    return [...cuts].sort((a, b) => a - b);
  }

  #tearChoices(opIndex: number): number {
    if (!this.#options.tear) return 0;
    const bounds = this.#pieces.get(opIndex);
    return bounds === undefined ? 0 : tearMaskCount(bounds.length - 1) * this.#options.lost.length;
  }

  /**
   * Extra ways a pending operation can be lost: 1 for a truncate whose cut
   * falls inside a block (its zeroing of the block's rest kept), else 0.
   */
  #lostChoices(opIndex: number): number {
    const op = this.#ops[opIndex]!;
    return this.#shrinks.has(opIndex) && op.length % this.#block !== 0 ? 1 : 0;
  }

  get #block(): number {
    return Math.max(BLOCK, this.#options.sectorSize);
  }

  #tearChoice(opIndex: number, index: number): TearChoice {
    const pieces = this.#pieces.get(opIndex)!.length - 1;
    const lost = this.#options.lost;
    return {
      persisted: tearMask(pieces, Math.floor(index / lost.length)),
      lost: lost[index % lost.length]!,
    };
  }

  #naturalLength(include: readonly boolean[]): number {
    let length = this.#base.length;
    let p = 0;
    this.#ops.forEach((op, index) => {
      const chosen = op.durable || include[p] === true;
      if (!op.durable && this.pending[p] === index) p++;
      if (!chosen) return;
      length = op.kind === 'write' ? Math.max(length, op.position + op.length) : op.length;
    });
    return length;
  }

  /** Lengths a variant may take: the natural one first, then the shorter candidates. */
  #lengths(include: readonly boolean[]): number[] {
    const natural = this.#naturalLength(include);
    const durable = this.durableLength;
    if (!this.#options.lengths || natural <= durable) return [natural];
    const cuts = new Set<number>([durable]);
    this.#ops.forEach((op) => {
      const end = op.position + op.length;
      if (op.kind === 'write' && end > durable && end < natural) cuts.add(end);
    });
    for (const at of this.#options.tearAt) if (at > durable && at < natural) cuts.add(at);
    return [natural, ...[...cuts].sort((a, b) => a - b)];
  }

  #includeAt(mask: number): boolean[] {
    return this.pending.map((_, j) => Math.floor(mask / 2 ** j) % 2 === 1);
  }

  #computeCount(): { count: number; exact: boolean } {
    const n = this.pending.length;
    if (n > EXACT_PENDING) {
      let bound = 2 ** n;
      for (const index of this.pending) {
        bound *= 1 + Math.max(this.#tearChoices(index), this.#lostChoices(index));
      }
      return { count: bound * (this.#ops.length + this.#options.tearAt.length + 2), exact: false };
    }
    let total = 0;
    for (let mask = 0; mask < 2 ** n; mask++) {
      const include = this.#includeAt(mask);
      let product = this.#lengths(include).length;
      include.forEach((chosen, j) => {
        const index = this.pending[j]!;
        product *= 1 + (chosen ? this.#tearChoices(index) : this.#lostChoices(index));
      });
      total += product;
    }
    return { count: total, exact: true };
  }

  /** How many variants this file has (exact unless `exact` is false: then a bound). */
  get count(): { count: number; exact: boolean } {
    return this.#count;
  }

  /** Every variant, deterministically: subsets in binary order, tears, then lengths. */
  *variants(): Generator<FileVariant> {
    const n = this.pending.length;
    for (let mask = 0; mask < 2 ** n; mask++) {
      const include = this.#includeAt(mask);
      const lengths = this.#lengths(include);
      const natural = lengths[0]!;
      const radix = include.map((chosen, j) => {
        const index = this.pending[j]!;
        return 1 + (chosen ? this.#tearChoices(index) : this.#lostChoices(index));
      });
      const digits = radix.map(() => 0);
      for (;;) {
        const tears = digits.map((digit, j) =>
          digit === 0 || !include[j] ? undefined : this.#tearChoice(this.pending[j]!, digit - 1),
        );
        const zeroed = digits.map((digit, j) => digit === 1 && !include[j]);
        for (const length of lengths) {
          yield { include, tears, length: length === natural ? undefined : length, zeroed };
        }
        let j = 0;
        while (j < n && ++digits[j]! >= radix[j]!) digits[j++] = 0;
        if (j === n) break;
      }
    }
  }

  /** One variant drawn at random; `bias` is the chance each pending operation survives. */
  sample(rng: Rng, bias: number, wild: boolean): FileVariant {
    const include = this.pending.map(() => rng.chance(bias));
    const tears = include.map((chosen, j) => {
      const bounds = this.#pieces.get(this.pending[j]!);
      if (!chosen || !wild || !this.#options.tear || bounds === undefined) return undefined;
      const pieces = bounds.length - 1;
      if (pieces < 1 || !rng.chance(0.5)) return undefined;
      // A torn write loses at least one piece; one in eight keeps none (the
      // size kept, the data lost), as does any one-piece tear.
      const persisted = Array.from({ length: pieces }, () => false);
      if (pieces > 1 && !rng.chance(0.125)) {
        for (let j = 0; j < pieces; j++) persisted[j] = rng.chance(0.5);
        const kept = rng.below(pieces);
        persisted[kept] = true;
        if (persisted.every(Boolean)) persisted[kept === 0 ? 1 : kept - 1] = false;
      }
      const lost = this.#options.lost[rng.below(this.#options.lost.length)]!;
      return { persisted, lost };
    });
    const zeroed = include.map(
      (chosen, j) => !chosen && wild && this.#lostChoices(this.pending[j]!) > 0 && rng.chance(0.5),
    );
    const natural = this.#naturalLength(include);
    const durable = this.durableLength;
    let length: number | undefined;
    if (wild && this.#options.lengths && natural > durable && rng.chance(0.5)) {
      length = durable + rng.below(natural - durable);
    }
    return { include, tears, length, zeroed };
  }

  /** The file's bytes under `variant`. */
  build(variant: FileVariant): Uint8Array {
    const buffer = new ByteBuffer(this.#base);
    let p = 0;
    this.#ops.forEach((op, index) => {
      let chosen = op.durable;
      let tear: TearChoice | undefined;
      let zeroed = false;
      if (!op.durable && this.pending[p] === index) {
        chosen = variant.include[p] === true;
        tear = variant.tears[p];
        zeroed = variant.zeroed?.[p] === true;
        p++;
      }
      if (!chosen) {
        // The cut lost, its zeroing of the rest of its block on the disk.
        if (zeroed && op.length < buffer.length) {
          const blockEnd = Math.ceil(op.length / this.#block) * this.#block;
          buffer.fill(op.length, Math.min(blockEnd, buffer.length), 0);
        }
        return;
      }
      if (op.kind === 'truncate') buffer.truncate(op.length);
      else if (tear === undefined) buffer.write(op.position, op.bytes!);
      else this.#writeTorn(buffer, op, index, tear);
    });
    if (variant.length !== undefined) buffer.truncate(variant.length);
    return buffer.view().slice();
  }

  #writeTorn(buffer: ByteBuffer, op: FileOpRecord, index: number, tear: TearChoice): void {
    const bounds = this.#pieces.get(index)!;
    for (let j = 0; j + 1 < bounds.length; j++) {
      const start = bounds[j]!;
      const end = bounds[j + 1]!;
      if (tear.persisted[j] === true) {
        buffer.write(start, op.bytes!.subarray(start - op.position, end - op.position));
      } else if (tear.lost === 'zero') {
        buffer.fill(start, end, 0);
      } else if (tear.lost === 'garbage') {
        const junk = new Uint8Array(end - start);
        new Rng(mixSeed(this.#options.seed, op.id, start)).fill(junk);
        buffer.write(start, junk);
      }
    }
    // The size update of the write is kept: lost 'old' sectors past the old end read as zeros.
    buffer.extend(op.position + op.length);
  }

  describe(variant: FileVariant): string {
    const parts = this.pending.map((index, j) => {
      const op = this.#ops[index]!;
      const name = op.kind === 'write' ? `w#${op.id}` : `t#${op.id}`;
      if (variant.include[j] !== true)
        return variant.zeroed?.[j] === true ? `-${name}[zeroed]` : `-${name}`;
      const tear = variant.tears[j];
      if (tear === undefined) return `+${name}`;
      const kept = tear.persisted.flatMap((keep, k) => (keep ? [k] : []));
      const what = kept.length === 0 ? 'none' : kept.join(',');
      return `~${name}[kept ${what} of ${tear.persisted.length}, lost=${tear.lost}]`;
    });
    if (variant.length !== undefined) parts.push(`len=${variant.length}`);
    return parts.join(' ');
  }
}

interface Namespace {
  readonly dirs: string[];
  readonly files: Array<[path: string, ino: number]>;
}

/** The space of crash states of one snapshot, and its enumeration. */
export class CrashPlan {
  readonly #snapshot: ModelSnapshot;
  readonly #options: ResolvedCrashOptions;
  readonly #files = new Map<number, FilePlan>();
  /** Per directory op: entry dependencies (earlier ops on the same entry). */
  readonly #entryDeps: number[][] = [];
  /** Per directory op: the pending mkdir of a directory it touches. */
  readonly #parentDeps: number[][] = [];
  readonly #forced: boolean[] = [];
  /** Number of states in the space (exact when `exact`; otherwise an upper bound). */
  readonly count: number;
  readonly exact: boolean;
  /** Pending (neither durable nor forced) directory operations. */
  readonly pendingDirOps: number;
  /** Pending file operations over all files. */
  readonly pendingFileOps: number;

  constructor(snapshot: ModelSnapshot, options: ResolvedCrashOptions) {
    this.#snapshot = snapshot;
    this.#options = options;
    let pendingFileOps = 0;
    for (const [ino, file] of snapshot.files) {
      const plan = new FilePlan(file.base, file.ops, options);
      this.#files.set(ino, plan);
      pendingFileOps += plan.pending.length;
    }
    this.pendingFileOps = pendingFileOps;
    this.#computeDeps();
    this.pendingDirOps = this.#forced.filter((forced) => !forced).length;
    const { count, exact } = this.#computeCount();
    this.count = count;
    this.exact = exact;
  }

  /** True when iteration yields the whole space (not a sample). */
  get exhaustive(): boolean {
    return this.exact && this.count <= this.#options.limit && this.#options.mode !== 'sample';
  }

  #computeDeps(): void {
    const ops = this.#snapshot.dirOps;
    const { entry, parents } = dirOpDeps(ops);
    this.#entryDeps.push(...entry);
    this.#parentDeps.push(...parents);
    for (let i = ops.length - 1; i >= 0; i--) {
      this.#forced[i] = this.#forced[i] === true || ops[i]!.durable;
      if (this.#forced[i]) for (const dep of this.#entryDeps[i]!) this.#forced[dep] = true;
    }
  }

  #allowed(i: number, chosen: readonly boolean[]): boolean {
    return (
      this.#entryDeps[i]!.every((dep) => chosen[dep]) &&
      this.#parentDeps[i]!.every((dep) => chosen[dep])
    );
  }

  /** Every closed set of surviving directory operations: "none" first. */
  *#dirSubsets(chosen: boolean[] = []): Generator<readonly boolean[]> {
    const i = chosen.length;
    if (i === this.#snapshot.dirOps.length) {
      yield chosen;
      return;
    }
    if (this.#forced[i]) {
      yield* this.#dirSubsets([...chosen, true]);
      return;
    }
    yield* this.#dirSubsets([...chosen, false]);
    if (this.#allowed(i, chosen)) yield* this.#dirSubsets([...chosen, true]);
  }

  #sampleDirs(rng: Rng, bias: number): boolean[] {
    const chosen: boolean[] = [];
    this.#snapshot.dirOps.forEach((_, i) => {
      chosen.push(this.#forced[i]! || (this.#allowed(i, chosen) && rng.chance(bias)));
    });
    return chosen;
  }

  #namespace(chosen: readonly boolean[]): Namespace {
    const entries = new Map<number, Map<string, number>>();
    for (const [ino, base] of this.#snapshot.dirs) entries.set(ino, new Map(base));
    this.#snapshot.dirOps.forEach((op, i) => {
      if (!chosen[i]) return;
      for (const effect of op.effects) {
        const dir = entries.get(effect.dir)!;
        if (effect.after === undefined) dir.delete(effect.name);
        else dir.set(effect.name, effect.after);
      }
    });
    const dirs: string[] = [];
    const files: Array<[string, number]> = [];
    const seen = new Set<number>();
    const visit = (path: string, ino: number): void => {
      seen.add(ino);
      dirs.push(path);
      const names = [...entries.get(ino)!.keys()].sort();
      for (const name of names) {
        const child = entries.get(ino)!.get(name)!;
        const childPath = path === '/' ? `/${name}` : `${path}/${name}`;
        if (entries.has(child)) {
          if (!seen.has(child)) visit(childPath, child);
        } else files.push([childPath, child]);
      }
    };
    visit('/', 1);
    return { dirs, files };
  }

  #computeCount(): { count: number; exact: boolean } {
    let bound = 1;
    let exact = true;
    for (const plan of this.#files.values()) {
      bound *= plan.count.count;
      exact &&= plan.count.exact;
    }
    if (this.pendingDirOps > EXACT_PENDING) {
      return { count: bound * 2 ** this.pendingDirOps, exact: false };
    }
    let total = 0;
    for (const chosen of this.#dirSubsets()) {
      let product = 1;
      for (const [, ino] of this.#namespace(chosen).files) {
        const count = this.#files.get(ino)!.count;
        product *= count.count;
        exact &&= count.exact;
      }
      total += product;
    }
    return { count: total, exact };
  }

  #describeDirs(chosen: readonly boolean[]): string {
    const parts: string[] = [];
    this.#snapshot.dirOps.forEach((op, i) => {
      if (!this.#forced[i]) parts.push(`${chosen[i] ? '+' : '-'}#${op.id} ${op.label}`);
    });
    return parts.length === 0 ? '' : `dirs[${parts.join(', ')}]`;
  }

  #state(
    index: number,
    chosen: readonly boolean[],
    namespace: Namespace,
    variants: readonly FileVariant[],
  ): RawState {
    const files = new Map<string, Uint8Array>();
    const parts: string[] = [];
    const dirText = this.#describeDirs(chosen);
    if (dirText !== '') parts.push(dirText);
    namespace.files.forEach(([path, ino], j) => {
      const plan = this.#files.get(ino)!;
      files.set(path, plan.build(variants[j]!));
      if (plan.pending.length > 0) parts.push(`${path}: ${plan.describe(variants[j]!)}`);
    });
    const description = `state ${index}: ${parts.length === 0 ? 'all durable' : parts.join('; ')}`;
    return { index, description, files, dirs: new Set(namespace.dirs) };
  }

  static #key(state: RawState): string {
    const parts = [...state.dirs].sort();
    for (const [path, bytes] of [...state.files].sort(([a], [b]) => (a < b ? -1 : 1))) {
      parts.push(`${path}=${fingerprint(bytes)}`);
    }
    return parts.join('\n');
  }

  /** The states: the whole space in a fixed order, or a seeded sample. */
  *states(): Generator<RawState> {
    const seen = new Set<string>();
    let yielded = 0;
    const source =
      this.#options.mode === 'exhaustive' || (this.#options.mode === 'auto' && this.exhaustive)
        ? this.#exhaustive()
        : this.#sampled();
    for (const state of source) {
      if (this.#options.unique) {
        const key = CrashPlan.#key(state);
        if (seen.has(key)) continue;
        seen.add(key);
      }
      yield state;
      if (++yielded >= this.#options.limit) return;
    }
  }

  *#exhaustive(): Generator<RawState> {
    let index = 0;
    for (const chosen of this.#dirSubsets()) {
      const namespace = this.#namespace(chosen);
      const plans = namespace.files.map(([, ino]) => this.#files.get(ino)!);
      const product = function* (j: number, picked: FileVariant[]): Generator<FileVariant[]> {
        if (j === plans.length) {
          yield picked;
          return;
        }
        for (const variant of plans[j]!.variants()) yield* product(j + 1, [...picked, variant]);
      };
      for (const variants of product(0, [])) {
        yield this.#state(index++, chosen, namespace, variants);
      }
    }
  }

  /**
   * Seeded samples. Sample 0 keeps only durable state, sample 1 keeps every
   * operation whole; later ones draw a survival bias, then each choice.
   */
  *#sampled(): Generator<RawState> {
    const attempts = this.#options.limit * 4 + 8;
    for (let index = 0; index < attempts; index++) yield this.sampleAt(index);
  }

  /** The `index`-th seeded sample (see the sampling order above). */
  sampleAt(index: number): RawState {
    const rng = new Rng(mixSeed(this.#options.seed, index));
    const bias = index === 0 ? 0 : index === 1 ? 1 : rng.next();
    const wild = index > 1;
    const chosen = this.#sampleDirs(rng, bias);
    const namespace = this.#namespace(chosen);
    const variants = namespace.files.map(([, ino]) =>
      this.#files.get(ino)!.sample(rng, bias, wild),
    );
    return this.#state(index, chosen, namespace, variants);
  }
}
