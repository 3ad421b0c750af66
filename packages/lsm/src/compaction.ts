/**
 * Leveled compaction (docs/LSM-FORMAT.md §11): which tables to merge, and
 * which versions the merge may drop.
 *
 * - Level 0 is compacted once it holds `level0Trigger` tables: its oldest
 *   table that overlaps no other level-0 table and no level-1 table alone
 *   (so moved, as sequential writes make them), else all of it with the
 *   level-1 tables it overlaps.
 * - A level L ≥ 1 is compacted once its bytes exceed
 *   `levelBaseBytes · levelRatio^(L−1)`: one table of it (round robin over
 *   the key space) with the level-(L+1) tables it overlaps. Level 6 is never
 *   compacted.
 * - A single input that overlaps nothing below is moved, not rewritten.
 */

import { CorruptionError } from '@wal/errors';
import type { Fs } from '@wal/store';
import { BlockScanner, type DataBlock } from './block.js';
import {
  compareBytes,
  compareInternalAt,
  KIND_DELETE,
  KIND_VALUE,
  sequenceAt,
  TRAILER_SIZE,
} from './coding.js';
import { tablePath } from './files.js';
import { LEVELS, type TableEntry } from './manifest.js';
import { coveringSequence, type RangeTombstone } from './range-delete.js';
import type { Table, TableLayout } from './table.js';
import { TableWriter } from './table-writer.js';
import { monotonicClock, SLICE_MS, type SliceClock, Timeslice } from './timeslice.js';
import type { LiveTable, Version } from './version.js';

/** Compaction options, resolved. */
export interface CompactionShape {
  /** Level-0 tables that start a compaction. */
  readonly level0Trigger: number;
  /** Byte budget of level 1. */
  readonly levelBaseBytes: number;
  /** Growth of the budget from one level to the next. */
  readonly levelRatio: number;
}

/** One compaction: `inputs` of `level` merged with the `next` tables of `level + 1`. */
export interface CompactionPlan {
  readonly level: number;
  readonly inputs: readonly LiveTable[];
  readonly next: readonly LiveTable[];
  /** True when no deeper level holds any key of the range: tombstones can go. */
  readonly bottom: boolean;
  /** A move: one input overlapping nothing in `level + 1`, re-filed without rewriting. */
  readonly move: boolean;
}

function range(tables: readonly LiveTable[]): [Uint8Array, Uint8Array] {
  let low = tables[0]!.smallest;
  let high = tables[0]!.largest;
  for (const table of tables) {
    if (compareBytes(table.smallest, low) < 0) low = table.smallest;
    if (compareBytes(table.largest, high) > 0) high = table.largest;
  }
  return [low, high];
}

/**
 * The oldest level-0 table whose key range meets no other level-0 table's
 * and no level-1 table's, or `undefined`: moved down alone, it keeps every
 * level's order (nothing in level 0 or 1 shares a key with it).
 */
function disjointLevel0Table(version: Version): LiveTable | undefined {
  const level0 = version.levels[0]!;
  // Newest first: the oldest is last.
  for (let i = level0.length - 1; i >= 0; i--) {
    const table = level0[i]!;
    const { smallest, largest } = table;
    if (level0.some((other) => other !== table && other.overlaps(smallest, largest))) continue;
    if (version.overlapping(1, smallest, largest).length === 0) return table;
  }
  return undefined;
}

/** The budget in bytes of `level` (≥ 1). */
export function levelBudget(shape: CompactionShape, level: number): number {
  return shape.levelBaseBytes * shape.levelRatio ** (level - 1);
}

/**
 * The compaction `version` needs first, or `undefined`. `pointers[L]` is the
 * largest key of the last table compacted out of level L; it is advanced.
 */
export function pickCompaction(
  version: Version,
  shape: CompactionShape,
  pointers: (Uint8Array | undefined)[],
): CompactionPlan | undefined {
  let level = -1;
  let inputs: LiveTable[] = [];
  if (version.levels[0]!.length >= shape.level0Trigger) {
    level = 0;
    const alone = disjointLevel0Table(version);
    inputs = alone === undefined ? [...version.levels[0]!] : [alone];
  } else {
    for (let l = 1; l < LEVELS - 1; l++) {
      if (version.bytes(l) <= levelBudget(shape, l)) continue;
      const tables = version.levels[l]!;
      const pointer = pointers[l];
      const chosen =
        (pointer === undefined
          ? undefined
          : tables.find((table) => compareBytes(table.smallest, pointer) > 0)) ?? tables[0]!;
      pointers[l] = chosen.largest;
      level = l;
      inputs = [chosen];
      break;
    }
  }
  if (level === -1) return undefined;
  const [low, high] = range(inputs);
  const next = version.overlapping(level + 1, low, high);
  // Deeper levels are checked against the whole output range: `next` may reach past the inputs.
  const [outLow, outHigh] = range([...inputs, ...next]);
  let bottom = true;
  for (let deeper = level + 2; deeper < LEVELS && bottom; deeper++) {
    if (version.overlapping(deeper, outLow, outHigh).length > 0) bottom = false;
  }
  return { level, inputs, next, bottom, move: inputs.length === 1 && next.length === 0 };
}

/**
 * The range deletions a compaction keeps, ordered by start key: all of its
 * inputs', except those at or below `smallestSnapshot` when the compaction
 * is at the bottom (nothing older is left for them to hide).
 */
export function survivingRanges(plan: CompactionPlan, smallestSnapshot: number): RangeTombstone[] {
  const kept: RangeTombstone[] = [];
  for (const live of [...plan.inputs, ...plan.next]) {
    for (const tombstone of live.table.ranges) {
      if (!(plan.bottom && tombstone.sequence <= smallestSnapshot)) kept.push(tombstone);
    }
  }
  return kept.sort((a, b) => compareBytes(a.start, b.start));
}

/** A window of data blocks read for a compaction: see `Table.inputBlocks`. */
interface Window {
  /** Index of its table in the run. */
  readonly table: number;
  readonly blocks: readonly DataBlock[];
  /** The buffer the blocks are views into. */
  readonly buffer: Uint8Array<ArrayBuffer>;
}

/**
 * A forward scan of one sorted run of input tables (a level-0 table, or the
 * tables of a level ≥ 1 in key order), one window of data blocks at a time
 * (`Table.inputBlocks`: one read of up to `windowSize` bytes, through the
 * thread pool, past the block cache, every block checked): its entries are
 * read without waiting, and the next window is read while this one is
 * merged. It holds two buffers of about `windowSize` bytes (more only for
 * a block larger than that), read into in turn.
 * `scanner.key[0, scanner.keyLength)` is the current internal key once
 * {@link InputRun.load} resolved true.
 */
class InputRun {
  readonly scanner = new BlockScanner();
  /** The window the scanner is in, and the index of the next block of it to scan. */
  #window: Window | undefined;
  #next = 0;
  /** The read of the window after it, if any. */
  #ahead: Promise<Window> | undefined;
  /** Where the window after that one starts (table, block), or `undefined` past the end. */
  #from: [number, number] | undefined;
  /** A buffer no block in use is a view into, to read into next. */
  #spare: Uint8Array<ArrayBuffer> | undefined;
  /** Reads in flight. */
  readonly #reads = new Set<Promise<Window>>();
  #stopped = false;
  /** Bytes of the buffers to allocate: the window size, or less for a smaller run. */
  readonly #capacity: number;

  constructor(
    readonly tables: readonly Table[],
    readonly windowSize: number,
  ) {
    this.#from = this.#after(0, -1);
    this.#capacity = Math.min(
      windowSize,
      tables.reduce((sum, table) => sum + table.size, 0),
    );
  }

  /** The table and block after the given one, or undefined past the last. */
  #after(table: number, block: number): [number, number] | undefined {
    for (block++; table < this.tables.length; table++, block = 0) {
      if (block < this.tables[table]!.blocks) return [table, block];
    }
    return undefined;
  }

  /** Starts reading the next window into the spare buffer; `undefined` past the end or once stopped. */
  #read(): Promise<Window> | undefined {
    const from = this.#from;
    if (from === undefined || this.#stopped) return undefined;
    const [index, first] = from;
    const table = this.tables[index]!;
    const end = table.windowEnd(first, this.windowSize);
    this.#from = this.#after(index, end - 1);
    const spare = this.#spare;
    this.#spare = undefined;
    const read = table
      .inputBlocks(first, end, spare, this.#capacity)
      .then(({ blocks, buffer }) => ({ table: index, blocks, buffer }));
    this.#reads.add(read);
    // Rejects again when it is awaited; settled either way before the merge ends.
    read.then(
      () => this.#reads.delete(read),
      () => this.#reads.delete(read),
    );
    return read;
  }

  /**
   * To the first entry of the next block that has one; false once the run
   * is exhausted (or stopped). Rejects with the tables' read errors.
   */
  async load(): Promise<boolean> {
    for (;;) {
      const window = this.#window;
      if (window !== undefined && this.#next < window.blocks.length) {
        this.scanner.start(window.blocks[this.#next++]!);
        if (this.scanner.advance()) return true;
        continue;
      }
      // This window is merged: its buffer takes the read after the next window's.
      this.scanner.block = undefined;
      this.#window = undefined;
      if (window !== undefined) this.#spare = window.buffer;
      const next = this.#ahead ?? this.#read();
      if (next === undefined) return false;
      this.#ahead = this.#read();
      this.#window = await next;
      this.#next = 0;
    }
  }

  /** Starts no more reads and resolves once those in flight are done (failed or not). */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.scanner.block = undefined;
    await Promise.allSettled([...this.#reads]);
  }

  /** The table of the current entry (for errors). */
  get table(): Table {
    return this.tables[this.#window?.table ?? 0]!;
  }
}

/**
 * The merge of a compaction's inputs in internal order; `current` is the run
 * positioned at the next version. Waits only to read a window of blocks.
 * Reads at most about `readSize` bytes ahead: each run reads windows of
 * `readSize / (2 · runs)` bytes, one merged while the next is read.
 */
class InputMerge {
  current: InputRun | undefined;
  readonly #runs: InputRun[];
  /** Every run, exhausted ones included. */
  readonly #all: readonly InputRun[];

  constructor(plan: CompactionPlan, readSize: number) {
    const runs = [
      ...plan.inputs.map((live) => [live.table]),
      plan.next.map((live) => live.table),
    ].filter((tables) => tables.length > 0);
    const windowSize = Math.max(1, Math.floor(readSize / (2 * runs.length)));
    this.#all = runs.map((tables) => new InputRun(tables, windowSize));
    this.#runs = [...this.#all];
  }

  /** Positions every run at its first entry (reads overlap). */
  async open(): Promise<void> {
    const loaded = await Promise.all(this.#runs.map((run) => run.load()));
    this.#runs.splice(0, this.#runs.length, ...this.#runs.filter((_, i) => loaded[i]));
    this.#pick();
  }

  /** To the next version: `undefined` when no read was needed, else the read's promise. */
  step(): Promise<void> | undefined {
    const run = this.current!;
    if (run.scanner.advance()) {
      this.#pick();
      return undefined;
    }
    return run.load().then((more) => {
      if (!more) this.#runs.splice(this.#runs.indexOf(run), 1);
      this.#pick();
    });
  }

  /**
   * Ends the merge: no read starts after this, and it resolves once every
   * read in flight is done, so that no read of a table outlives the
   * compaction (the store may close the table right after).
   */
  async stop(): Promise<void> {
    await Promise.all(this.#all.map((run) => run.stop()));
  }

  #pick(): void {
    let best: InputRun | undefined;
    for (const run of this.#runs) {
      if (
        best === undefined ||
        compareInternalAt(
          run.scanner.key,
          0,
          run.scanner.keyLength,
          best.scanner.key,
          0,
          best.scanner.keyLength,
        ) < 0
      ) {
        best = run;
      }
    }
    this.current = best;
  }
}

/** Whether `key[0, length)` equals `other`. */
function sameBytes(key: Uint8Array, length: number, other: Uint8Array): boolean {
  if (length !== other.length) return false;
  for (let i = length - 1; i >= 0; i--) if (key[i] !== other[i]) return false;
  return true;
}

/** Takes a version a compaction keeps (see {@link survivors}). */
type Keep = (
  userKey: Uint8Array,
  key: Uint8Array,
  keyLength: number,
  value: Uint8Array,
  valueStart: number,
  valueEnd: number,
) => Promise<void> | undefined;

/**
 * Passes the entries a compaction keeps to `keep` in internal order, with
 * their user key (a copy the callee owns, one per user key), internal key
 * `key[0, keyLength)` and value `value[valueStart, valueEnd)` (buffers
 * valid until what it returns settles), awaiting what it returns: for each user key, the
 * versions some reader may still need — every version newer than
 * `smallestSnapshot`, and the newest one at or below it — except a deletion
 * at or below it when the compaction is at the bottom (nothing older can be
 * hidden by it any more), and except a version hidden by a range deletion
 * of the inputs at or below `smallestSnapshot`. Rejects with the read errors
 * of the inputs (`WAL_CORRUPTION` for an entry of unknown kind), once no
 * read of theirs is in flight. Reads about `readSize` bytes of the inputs
 * ahead of the merge (see {@link InputMerge}). Gives the turn back once a
 * slice is over by `sliceClock` (see {@link Timeslice}).
 */
export async function survivors(
  plan: CompactionPlan,
  smallestSnapshot: number,
  keep: Keep,
  readSize: number,
  sliceClock: SliceClock = monotonicClock,
): Promise<void> {
  // The range deletions by start; `covering` holds those covering the current key.
  const ranges = [...plan.inputs, ...plan.next]
    .flatMap((t) => t.table.ranges)
    .sort((a, b) => compareBytes(a.start, b.start));
  let nextRange = 0;
  let covering: RangeTombstone[] = [];
  let deletedBelow = 0;
  const merge = new InputMerge(plan, readSize);
  try {
    await merge.open();
    // Gives the turn back now and then: writes waiting on the log go on meanwhile.
    const slice = new Timeslice(SLICE_MS, sliceClock);
    /** The current user key (a copy). */
    let key: Uint8Array | undefined;
    let newer = Number.POSITIVE_INFINITY;
    for (let run = merge.current; run !== undefined; run = merge.current) {
      const bytes = run.scanner.key;
      const end = run.scanner.keyLength;
      const kind = bytes[end - TRAILER_SIZE]!;
      if (kind !== KIND_DELETE && kind !== KIND_VALUE) {
        throw new CorruptionError(`table ${run.table.path} holds an entry of unknown kind ${kind}`);
      }
      if (key === undefined || !sameBytes(bytes, end - TRAILER_SIZE, key)) {
        key = bytes.slice(0, end - TRAILER_SIZE);
        newer = Number.POSITIVE_INFINITY;
        // Keys ascend: ranges start covering in start order and stop at their end.
        const at = key;
        while (nextRange < ranges.length && compareBytes(ranges[nextRange]!.start, at) <= 0) {
          covering.push(ranges[nextRange++]!);
        }
        if (covering.length > 0) covering = covering.filter((r) => compareBytes(at, r.end) < 0);
        deletedBelow = coveringSequence(covering, key, smallestSnapshot);
      }
      const sequence = sequenceAt(bytes, end);
      const shadowed = newer <= smallestSnapshot;
      const deadTombstone = kind === KIND_DELETE && sequence <= smallestSnapshot && plan.bottom;
      const rangeDeleted = deletedBelow > sequence;
      newer = sequence;
      if (!shadowed && !deadTombstone && !rangeDeleted) {
        const scanner = run.scanner;
        const writing = keep(
          key,
          bytes,
          end,
          scanner.block!.contents,
          scanner.valueStart,
          scanner.valueEnd,
        );
        if (writing !== undefined) await slice.after(writing);
      }
      const next = slice.after(merge.step());
      if (next !== undefined) await next;
    }
  } finally {
    await merge.stop();
  }
}

/** What {@link writeOutputs} writes with. */
export interface OutputContext {
  readonly fs: Fs;
  readonly dir: string;
  readonly layout: TableLayout;
  readonly targetFileSize: number;
  /** Bytes of the inputs read ahead of the merge, at most (about; see {@link InputMerge}). */
  readonly readSize: number;
  /** The oldest sequence number a reader may still ask for. */
  readonly smallestSnapshot: number;
  /** The clock of the merge's slices (default: {@link monotonicClock}). */
  readonly sliceClock?: SliceClock;
  /** Allocates the next table number. */
  allocate(): number;
  /** Counts `size` bytes of table written. */
  written(size: number): void;
}

/**
 * Writes the survivors of `plan` as tables of about `targetFileSize` each
 * (each written and fdatasynced; the directory is the caller's to fsync);
 * returns their entries. A table is cut only between two user keys and
 * never inside a surviving range deletion, so the key ranges of the
 * outputs (range deletions counted in) stay disjoint.
 */
export async function writeOutputs(
  plan: CompactionPlan,
  context: OutputContext,
): Promise<TableEntry[]> {
  const { fs, dir, layout, targetFileSize, smallestSnapshot, readSize } = context;
  const ranges = survivingRanges(plan, smallestSnapshot);
  const outputs: TableEntry[] = [];
  let writer: TableWriter | undefined;
  let number = 0;
  let outputBytes = 0;
  let lastKey: Uint8Array | undefined;
  /** Ranges before this index are in earlier outputs. */
  let rangeAt = 0;
  /** The ranges starting below `cut` (all when `undefined`), if none reaches `cut`. */
  const rangesBefore = (cut: Uint8Array | undefined): RangeTombstone[] | undefined => {
    let end = rangeAt;
    while (
      end < ranges.length &&
      (cut === undefined || compareBytes(ranges[end]!.start, cut) < 0)
    ) {
      if (cut !== undefined && compareBytes(ranges[end]!.end, cut) >= 0) return undefined;
      end++;
    }
    return ranges.slice(rangeAt, end);
  };
  const start = async (): Promise<TableWriter> => {
    number = context.allocate();
    return TableWriter.create(fs, tablePath(dir, number), layout);
  };
  const finish = async (mine: RangeTombstone[]): Promise<void> => {
    if (writer === undefined && mine.length === 0) return;
    writer ??= await start();
    const { size, summary } = await writer.finish(mine);
    outputs.push({ level: plan.level + 1, number, size, ...summary });
    context.written(size);
    rangeAt += mine.length;
    writer = undefined;
    outputBytes = 0;
  };
  /** Adds an entry; waits only to start or finish a table, or to write out its blocks. */
  const keep: Keep = (userKey, key, keyLength, value, valueStart, valueEnd) => {
    // A new table only between user keys: the tables of a level never share one.
    if (
      writer === undefined ||
      (outputBytes >= targetFileSize && compareBytes(userKey, lastKey!) !== 0)
    ) {
      return (async () => {
        if (writer !== undefined) {
          const mine = rangesBefore(userKey);
          if (mine !== undefined) await finish(mine);
        }
        writer ??= await start();
        await add(userKey, key, keyLength, value, valueStart, valueEnd);
      })();
    }
    return add(userKey, key, keyLength, value, valueStart, valueEnd);
  };
  const add: Keep = (userKey, key, keyLength, value, valueStart, valueEnd) => {
    outputBytes += keyLength + (valueEnd - valueStart) + 8;
    lastKey = userKey;
    return writer!.add(key, value, keyLength, valueStart, valueEnd);
  };
  try {
    await survivors(plan, smallestSnapshot, keep, readSize, context.sliceClock);
    await finish(rangesBefore(undefined)!);
  } finally {
    await writer?.abandon();
  }
  return outputs;
}
