/**
 * Version edits (docs/LSM-FORMAT.md §8): the manifest is a @wal/core log of
 * edits; replaying them in order gives the live tables, the last sequence
 * number in tables and the next file number.
 */
import { Malformed, Output, Reader, TRAILER_SIZE } from './coding.js';

/** Number of levels (0 … 6). */
export const LEVELS = 7;

const TAG_SNAPSHOT = 1;
const TAG_LAST_SEQUENCE = 2;
const TAG_NEXT_FILE = 3;
const TAG_ADD = 4;
const TAG_REMOVE = 5;

/** A live table as the manifest records it. */
export interface TableEntry {
  readonly level: number;
  readonly number: number;
  readonly size: number;
  readonly entries: number;
  readonly smallest: Uint8Array;
  readonly largest: Uint8Array;
}

/** One edit. `snapshot` edits replace the whole state instead of changing it. */
export interface VersionEdit {
  readonly snapshot?: boolean;
  readonly lastSequence?: number;
  readonly nextFile?: number;
  readonly add?: readonly TableEntry[];
  readonly remove?: readonly { readonly level: number; readonly number: number }[];
}

/** The state the manifest describes. */
export interface VersionState {
  lastSequence: number;
  nextFile: number;
  /** Live tables by number. */
  tables: Map<number, TableEntry>;
}

/** The state of an empty store. */
export function emptyState(): VersionState {
  return { lastSequence: 0, nextFile: 1, tables: new Map() };
}

/** Encodes an edit as tagged fields, in the order of §8. */
export function encodeEdit(edit: VersionEdit): Uint8Array {
  const out = new Output(256);
  if (edit.snapshot === true) out.u8(TAG_SNAPSHOT);
  if (edit.lastSequence !== undefined) {
    out.u8(TAG_LAST_SEQUENCE);
    out.varint(edit.lastSequence);
  }
  if (edit.nextFile !== undefined) {
    out.u8(TAG_NEXT_FILE);
    out.varint(edit.nextFile);
  }
  for (const table of edit.add ?? []) {
    out.u8(TAG_ADD);
    out.u8(table.level);
    out.varint(table.number);
    out.varint(table.size);
    out.varint(table.entries);
    out.lengthPrefixed(table.smallest);
    out.lengthPrefixed(table.largest);
  }
  for (const table of edit.remove ?? []) {
    out.u8(TAG_REMOVE);
    out.u8(table.level);
    out.varint(table.number);
  }
  return out.view();
}

/** Decodes an edit. Throws {@link Malformed} (offsets in `payload`) for bytes that break §8. */
export function decodeEdit(payload: Uint8Array): VersionEdit {
  const reader = new Reader(payload, 0, payload.length);
  let snapshot = false;
  let lastSequence: number | undefined;
  let nextFile: number | undefined;
  const add: TableEntry[] = [];
  const remove: { level: number; number: number }[] = [];
  const level = (): number => {
    const at = reader.at;
    const value = reader.u8('level');
    if (value >= LEVELS) throw new Malformed(`level ${value}`, at);
    return value;
  };
  if (reader.done) throw new Malformed('empty edit', 0);
  while (!reader.done) {
    const at = reader.at;
    const tag = reader.u8('tag');
    switch (tag) {
      case TAG_SNAPSHOT:
        if (at !== 0) throw new Malformed('snapshot tag not first', at);
        snapshot = true;
        break;
      case TAG_LAST_SEQUENCE:
        lastSequence = reader.varint('last sequence');
        break;
      case TAG_NEXT_FILE:
        nextFile = reader.varint('next file');
        break;
      case TAG_ADD: {
        const entry = {
          level: level(),
          number: reader.varint('table number'),
          size: reader.varint('table size'),
          entries: reader.varint('table entries'),
          smallest: reader.lengthPrefixed('smallest key').slice(),
          largest: reader.lengthPrefixed('largest key').slice(),
        };
        if (entry.smallest.length < TRAILER_SIZE || entry.largest.length < TRAILER_SIZE) {
          throw new Malformed('table key shorter than its trailer', at);
        }
        add.push(entry);
        break;
      }
      case TAG_REMOVE:
        remove.push({ level: level(), number: reader.varint('table number') });
        break;
      default:
        throw new Malformed(`unknown tag ${tag}`, at);
    }
  }
  return {
    snapshot,
    ...(lastSequence === undefined ? {} : { lastSequence }),
    ...(nextFile === undefined ? {} : { nextFile }),
    add,
    remove,
  };
}

/**
 * Applies `edit` to `state` (in place). Throws {@link Malformed} (offset 0)
 * when it removes a table that is not live or adds one twice, or when the
 * sequence number or file number go backwards.
 */
export function applyEdit(state: VersionState, edit: VersionEdit): void {
  if (edit.snapshot === true) {
    state.tables.clear();
    state.lastSequence = 0;
    state.nextFile = 1;
  }
  if (edit.lastSequence !== undefined) {
    if (edit.lastSequence < state.lastSequence) {
      throw new Malformed(`last sequence goes back to ${edit.lastSequence}`, 0);
    }
    state.lastSequence = edit.lastSequence;
  }
  if (edit.nextFile !== undefined) {
    if (edit.nextFile < state.nextFile)
      throw new Malformed(`next file goes back to ${edit.nextFile}`, 0);
    state.nextFile = edit.nextFile;
  }
  for (const { level, number } of edit.remove ?? []) {
    const live = state.tables.get(number);
    if (live === undefined || live.level !== level) {
      throw new Malformed(`removes table ${number} at level ${level}, which is not live`, 0);
    }
    state.tables.delete(number);
  }
  for (const table of edit.add ?? []) {
    if (state.tables.has(table.number)) throw new Malformed(`adds table ${table.number} twice`, 0);
    if (table.number >= state.nextFile) {
      throw new Malformed(`adds table ${table.number} at or past the next file number`, 0);
    }
    state.tables.set(table.number, table);
  }
}

/** The snapshot edit that recreates `state`. */
export function snapshotEdit(state: VersionState): VersionEdit {
  return {
    snapshot: true,
    lastSequence: state.lastSequence,
    nextFile: state.nextFile,
    add: [...state.tables.values()],
  };
}
