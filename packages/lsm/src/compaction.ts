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

/**
 * A forward scan of one sorted run of input tables (a level-0 table, or the
 * tables of a level ≥ 1 in key order), one data block at a time: its
 * entries are read without waiting, and the next block is read (through
 * the thread pool, past the block cache: `Table.inputBlock`) while this
 * one is scanned. `scanner.key[0, scanner.keyLength)` is the current
 * internal key once {@link InputRun.load} resolved true.
 */
class InputRun {
  readonly scanner = new BlockScanner();
  #table = 0;
  #block = -1;
  #ahead: Promise<DataBlock> | undefined;
  /** The block the scanner is on, held. */
  #held: { readonly table: Table; readonly block: DataBlock } | undefined;

  constructor(readonly tables: readonly Table[]) {}

  /** The table and block after the current one, or undefined past the last. */
  #after(table: number, block: number): [number, number] | undefined {
    for (block++; table < this.tables.length; table++, block = 0) {
      if (block < this.tables[table]!.blocks) return [table, block];
    }
    return undefined;
  }

  /**
   * To the first entry of the next block that has one; false once the run
   * is exhausted. Rejects with the tables' read errors.
   */
  async load(): Promise<boolean> {
    for (;;) {
      const at = this.#after(this.#table, this.#block);
      if (at === undefined) {
        this.#letGo();
        return false;
      }
      [this.#table, this.#block] = at;
      const table = this.tables[at[0]]!;
      const data = this.#ahead ?? table.inputBlock(at[1]);
      const next = this.#after(at[0], at[1]);
      this.#ahead = next === undefined ? undefined : this.tables[next[0]]!.inputBlock(next[1]);
      this.#ahead?.catch(() => undefined); // rejects again when it is awaited
      const block = await data;
      this.#letGo();
      this.#held = { table, block };
      this.scanner.start(block);
      if (this.scanner.advance()) return true;
    }
  }

  /** Lets go of the block the scanner is on (see `Table.inputBlock`). */
  #letGo(): void {
    const held = this.#held;
    this.#held = undefined;
    this.scanner.block = undefined;
    held?.table.release(held.block);
  }

  /** The table of the current entry (for errors). */
  get table(): Table {
    return this.tables[this.#table]!;
  }
}

/**
 * The merge of a compaction's inputs in internal order; `current` is the run
 * positioned at the next version. Waits only to read a block.
 */
class InputMerge {
  current: InputRun | undefined;
  readonly #runs: InputRun[];

  private constructor(runs: InputRun[]) {
    this.#runs = runs;
    this.#pick();
  }

  /** Positions every run at its first entry (reads overlap). */
  static async open(plan: CompactionPlan): Promise<InputMerge> {
    const runs = [
      ...plan.inputs.map((live) => new InputRun([live.table])),
      new InputRun(plan.next.map((live) => live.table)),
    ];
    const loaded = await Promise.all(runs.map((run) => run.load()));
    return new InputMerge(runs.filter((_, i) => loaded[i]));
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
 * of the inputs (`WAL_CORRUPTION` for an entry of unknown kind).
 */
export async function survivors(
  plan: CompactionPlan,
  smallestSnapshot: number,
  keep: Keep,
): Promise<void> {
  // The range deletions by start; `covering` holds those covering the current key.
  const ranges = [...plan.inputs, ...plan.next]
    .flatMap((t) => t.table.ranges)
    .sort((a, b) => compareBytes(a.start, b.start));
  let nextRange = 0;
  let covering: RangeTombstone[] = [];
  let deletedBelow = 0;
  const merge = await InputMerge.open(plan);
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
      if (writing !== undefined) await writing;
    }
    const stepping = merge.step();
    if (stepping !== undefined) await stepping;
  }
}

/** What {@link writeOutputs} writes with. */
export interface OutputContext {
  readonly fs: Fs;
  readonly dir: string;
  readonly layout: TableLayout;
  readonly targetFileSize: number;
  /** The oldest sequence number a reader may still ask for. */
  readonly smallestSnapshot: number;
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
  const { fs, dir, layout, targetFileSize, smallestSnapshot } = context;
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
    await survivors(plan, smallestSnapshot, keep);
    await finish(rangesBefore(undefined)!);
  } finally {
    await writer?.abandon();
  }
  return outputs;
}
