/**
 * Finding and opening a log: layout detection, read-only store opens, and a
 * view of a store that a `Wal` may use without owning it ({@link StoreView}).
 */
import { readdir, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { RecoveryPolicy } from '@wal/core';
import { DURABLE_HINT_KEY, Wal } from '@wal/core';
import { isArgumentError } from '@wal/errors';
import {
  FileStore,
  identifyLog,
  type LogIdentity,
  type MetaUpdate,
  SegmentedStore,
  type Store,
  type StoreMeta,
  type StoreSupports,
  segmentIndex,
  segmentName,
} from '@wal/store';
import { CliError, describeError } from './errors.js';

export type Layout = 'segmented' | 'file';

/** A log location, as found on disk. */
export interface Target {
  /** The path as given. */
  readonly path: string;
  readonly layout: Layout;
  /** The lock file a writer holds while the log is open. */
  readonly lockFile: string;
  /** `--segment-size`, if given. */
  readonly segmentSize: number | undefined;
}

/**
 * Decides the layout from what `path` is — a directory is a segmented log, a
 * regular file a single-file log — by the library's own rule of what counts
 * as a log (`identifyLog`, docs/FORMAT.md §3.1): what the library opens, the
 * command line opens, and what it refuses, the command line refuses. A path
 * where nothing was ever written (an empty file or directory) holds no log to
 * look at and is refused too.
 */
export async function findTarget(path: string, segmentSize: number | undefined): Promise<Target> {
  let identity: LogIdentity;
  try {
    identity = await identifyLog(path);
  } catch (error) {
    throw new CliError(describeError(error, path).message);
  }
  if (identity.type === 'missing') throw new CliError(`${path}: no such file or directory`);
  if (identity.verdict !== 'log') throw new CliError(`${path}: not a log: ${identity.found}`);
  if (identity.type === 'directory') {
    return { path, layout: 'segmented', lockFile: join(path, 'lock'), segmentSize };
  }
  if (segmentSize !== undefined) {
    throw new CliError(`${path}: --segment-size applies to segmented logs (directories) only`);
  }
  return { path, layout: 'file', lockFile: `${path}.lock`, segmentSize };
}

/** Opens the store of `target` read-only: no lock, nothing changed. */
export async function openStoreReadOnly(target: Target): Promise<Store> {
  try {
    if (target.layout === 'file') return await FileStore.open(target.path, { readOnly: true });
    return await SegmentedStore.open(target.path, {
      readOnly: true,
      ...(target.segmentSize === undefined ? {} : { segmentSize: target.segmentSize }),
    });
  } catch (error) {
    if (isArgumentError(error) && target.segmentSize === undefined) {
      throw new CliError(
        `${target.path}: the log has no metadata (a wal-db 1.x log?): give its segment size with --segment-size`,
      );
    }
    const message = error instanceof Error ? error.message : '';
    if (isArgumentError(error) && message.includes('does not match the segment files')) {
      // No metadata: the store checked the size against the segment files,
      // and names a size only when the files show one.
      const fit = /the files fit a segment size of (\d+)\./.exec(message)?.[1];
      // With one segment file holding only bytes below the head, the size
      // may be right: a wal-db power loss leaves that too; the store names
      // the repair.
      const lost = /, or it is and (a wal-db power loss .*)\. Nothing was changed\./.exec(
        message,
      )?.[1];
      const ask = `give the segment size it was written with${
        lost === undefined ? '' : `; if it is ${target.segmentSize}, ${lost}`
      }`;
      throw new CliError(
        `${target.path}: --segment-size ${target.segmentSize} does not match the segment files of this log, which has no metadata: ${fit === undefined ? ask : `they fit a segment size of ${fit}`}`,
      );
    }
    if (isArgumentError(error)) {
      throw new CliError(
        `${target.path}: --segment-size ${target.segmentSize} does not match the log's segment size (omit it: the log records its own)`,
      );
    }
    const described = describeError(error, target.path);
    throw new CliError(described.message, described.exitCode, { cause: error });
  }
}

/** Opens the store of `target` for writing: takes the lock. Files it creates get `mode`. */
export async function openStoreWritable(target: Target, mode?: number): Promise<Store> {
  const common = mode === undefined ? {} : { mode };
  if (target.layout === 'file') return FileStore.open(target.path, common);
  return SegmentedStore.open(target.path, {
    ...common,
    ...(target.segmentSize === undefined ? {} : { segmentSize: target.segmentSize }),
  });
}

/** What a {@link StoreView} changes about the store it wraps. */
export interface ViewOptions {
  /** Present the durable hint as this value (a "what if" for the recovery scan). */
  readonly hint?: number;
  /** Told about every read, with how many bytes came back. */
  readonly onRead?: (offset: number, length: number) => void;
}

/**
 * A store that forwards to `store` but whose `close()` does nothing, so a
 * `Wal` can be opened over it (and closed) while the caller keeps the store.
 * It implements the public `Store` interface member by member: a change to
 * that interface breaks this class at compile time.
 */
export class StoreView implements Store {
  readonly #store: Store;
  readonly #hint: number | undefined;
  readonly #onRead: ((offset: number, length: number) => void) | undefined;
  /** Present only when the wrapped store has it (the scan picks its read by that). */
  readonly readInto?: (offset: number, into: Uint8Array) => Promise<number>;

  constructor(store: Store, options: ViewOptions = {}) {
    this.#store = store;
    this.#hint = options.hint;
    this.#onRead = options.onRead;
    const readInto = store.readInto;
    if (readInto !== undefined) {
      const onRead = this.#onRead;
      this.readInto = async (offset, into) => {
        const count = await readInto.call(store, offset, into);
        onRead?.(offset, count);
        return count;
      };
    }
  }

  get supports(): StoreSupports {
    return this.#store.supports;
  }
  get head(): number {
    return this.#store.head;
  }
  get length(): number {
    return this.#store.length;
  }
  get closed(): boolean {
    return this.#store.closed;
  }
  /** The wrapped store's flag (absent reads as false, as the interface says). */
  get readOnly(): boolean {
    return this.#store.readOnly === true;
  }
  /** The wrapped store's segment size, if it is segmented (the log reads it to place its hints). */
  get segmentSize(): number | undefined {
    return segmentSizeOf(this.#store);
  }

  write(offset: number, bytes: Uint8Array): Promise<void> {
    return this.#store.write(offset, bytes);
  }
  async read(offset: number, length: number): Promise<Uint8Array> {
    const bytes = await this.#store.read(offset, length);
    this.#onRead?.(offset, bytes.length);
    return bytes;
  }
  sync(): Promise<void> {
    return this.#store.sync();
  }
  truncate(length: number): Promise<void> {
    return this.#store.truncate(length);
  }
  truncateBefore(offset: number): Promise<void> {
    return this.#store.truncateBefore(offset);
  }
  /** The wrapped store's metadata, with the durable hint replaced when the view has one. */
  async readMeta(): Promise<StoreMeta> {
    const meta = await this.#store.readMeta();
    return this.#hint === undefined ? meta : { ...meta, [DURABLE_HINT_KEY]: this.#hint };
  }
  updateMeta(fields: MetaUpdate): Promise<void> {
    return this.#store.updateMeta(fields);
  }
  async refresh(): Promise<void> {
    await this.#store.refresh?.();
  }
  /** Does nothing: the caller keeps the wrapped store and closes it. */
  async close(): Promise<void> {}
}

/** How a command reads a log: the recovery policy, and a record limit if one was given. */
export interface Reading {
  readonly policy: RecoveryPolicy;
  /** `--max-record-size`: otherwise the log's own (or wal-db's 64 MiB for a log without metadata). */
  readonly maxRecordSize?: number;
}

/** The `Wal.open` options of `reading`. */
export function walOptionsOf(reading: Reading): {
  recovery: RecoveryPolicy;
  maxRecordSize?: number;
} {
  const { policy, maxRecordSize } = reading;
  return maxRecordSize === undefined ? { recovery: policy } : { recovery: policy, maxRecordSize };
}

/** Opens a read-only `Wal` over `store` (which stays open after the log closes). */
export function openLog(store: Store, reading: Reading, options: ViewOptions = {}) {
  return Wal.open(new StoreView(store, options), { readOnly: true, ...walOptionsOf(reading) });
}

/** The segment size of a segmented store, undefined for a single file. */
export function segmentSizeOf(store: Store): number | undefined {
  return store instanceof SegmentedStore ? store.segmentSize : undefined;
}

/** Where byte `offset` of the log lives on disk. */
export interface Place {
  /** The file holding it: a segment name, or the single file's name. */
  readonly file: string;
  /** Its position in that file. */
  readonly fileOffset: number;
}

export function placeOf(target: Target, store: Store, offset: number): Place {
  const size = segmentSizeOf(store);
  if (size === undefined) return { file: basename(target.path), fileOffset: offset };
  return { file: segmentName(Math.floor(offset / size)), fileOffset: offset % size };
}

export function describePlace(place: Place, layout: Layout): string {
  return layout === 'segmented'
    ? `segment ${place.file}, byte ${place.fileOffset}`
    : `${place.file}, byte ${place.fileOffset}`;
}

/** Segment files of a segmented log and their total size (the single file's size otherwise). */
export async function diskUsage(
  target: Target,
  store: Store,
): Promise<{ segments: number | undefined; bytes: number }> {
  if (target.layout === 'file') {
    return { segments: undefined, bytes: (await stat(target.path)).size };
  }
  const size = segmentSizeOf(store)!;
  let segments = 0;
  let bytes = 0;
  for (const name of await readdir(target.path)) {
    const index = segmentIndex(name);
    if (index === undefined) continue;
    if ((index + 1) * size <= store.head) continue; // below the head: left over, ignored
    segments++;
    bytes += (await stat(join(target.path, name))).size;
  }
  return { segments, bytes };
}
