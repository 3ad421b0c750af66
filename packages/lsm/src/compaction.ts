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

import type { Fs } from '@wal/store';
import { compareBytes, internalKey, KIND_DELETE } from './coding.js';
import { type Cursor, MergedCursor, TableCursor } from './cursor.js';
import { tablePath } from './files.js';
import { LEVELS, type TableEntry } from './manifest.js';
import { coveringSequence, type RangeTombstone } from './range-delete.js';
import type { TableLayout } from './table.js';
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
 * The entries a compaction keeps, in internal order: for each user key, the
 * versions some reader may still need — every version newer than
 * `smallestSnapshot`, and the newest one at or below it — except a deletion
 * at or below it when the compaction is at the bottom (nothing older can be
 * hidden by it any more), and except a version hidden by a range deletion
 * of the inputs at or below `smallestSnapshot`. Rejects with the read errors
 * of the inputs.
 */
export async function* survivors(
  plan: CompactionPlan,
  smallestSnapshot: number,
): AsyncIterableIterator<readonly [Uint8Array, Uint8Array, Uint8Array]> {
  // The range deletions by start; `covering` holds those covering the current key.
  const ranges = [...plan.inputs, ...plan.next]
    .flatMap((t) => t.table.ranges)
    .sort((a, b) => compareBytes(a.start, b.start));
  let nextRange = 0;
  let covering: RangeTombstone[] = [];
  let deletedBelow = 0;
  const sources: Cursor[] = [...plan.inputs, ...plan.next].map((t) => new TableCursor(t.table));
  const merged = new MergedCursor(sources);
  await merged.seek(undefined, false);
  let key: Uint8Array | undefined;
  let newer = Number.POSITIVE_INFINITY;
  for (let current = merged.current; current !== undefined; current = merged.current) {
    if (key === undefined || compareBytes(current.key!, key) !== 0) {
      key = current.key!.slice();
      newer = Number.POSITIVE_INFINITY;
      // Keys ascend: ranges start covering in start order and stop at their end.
      const at = key;
      while (nextRange < ranges.length && compareBytes(ranges[nextRange]!.start, at) <= 0) {
        covering.push(ranges[nextRange++]!);
      }
      if (covering.length > 0) covering = covering.filter((r) => compareBytes(at, r.end) < 0);
      deletedBelow = coveringSequence(covering, key, smallestSnapshot);
    }
    const sequence = current.sequence;
    const shadowed = newer <= smallestSnapshot;
    const deadTombstone =
      current.kind === KIND_DELETE && sequence <= smallestSnapshot && plan.bottom;
    const rangeDeleted = deletedBelow > sequence;
    newer = sequence;
    if (!shadowed && !deadTombstone && !rangeDeleted) {
      yield [key, internalKey(key, sequence, current.kind), current.value!] as const;
    }
    await merged.step();
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
  try {
    for await (const [userKey, key, value] of survivors(plan, smallestSnapshot)) {
      // A new table only between user keys: the tables of a level never share one.
      if (outputBytes >= targetFileSize && compareBytes(userKey, lastKey!) !== 0) {
        const mine = rangesBefore(userKey);
        if (mine !== undefined) await finish(mine);
      }
      writer ??= await start();
      const writing = writer.add(key, value);
      if (writing !== undefined) await writing;
      outputBytes += key.length + value.length + 8;
      lastKey = userKey;
    }
    await finish(rangesBefore(undefined)!);
  } finally {
    await writer?.abandon();
  }
  return outputs;
}
