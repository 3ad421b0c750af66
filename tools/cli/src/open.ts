/**
 * Finding and opening a log: layout detection, read-only store opens, and a
 * view of a store that a `Wal` may use without owning it.
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
  SegmentedStore,
  type Store,
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
    if (isArgumentError(error)) {
      throw new CliError(
        `${target.path}: --segment-size ${target.segmentSize} does not match the log's segment size (omit it: the log records its own)`,
      );
    }
    throw new CliError(describeError(error, target.path).message, describeError(error).exitCode);
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

/** What a {@link view} changes about the store it wraps. */
export interface ViewOptions {
  /** Present the durable hint as this value (a "what if" for the recovery scan). */
  readonly hint?: number;
  /** Told about every read, with how many bytes came back. */
  readonly onRead?: (offset: number, length: number) => void;
}

/**
 * A store that forwards to `store` but whose `close()` does nothing, so a
 * `Wal` can be opened over it (and closed) while the caller keeps the store.
 */
export function view(store: Store, options: ViewOptions = {}): Store {
  const { hint, onRead } = options;
  return new Proxy(store, {
    get(target, property) {
      if (property === 'close') return async () => {};
      if (property === 'readMeta' && hint !== undefined) {
        return async () => ({ ...(await target.readMeta()), [DURABLE_HINT_KEY]: hint });
      }
      if (property === 'read' && onRead !== undefined) {
        return async (offset: number, length: number) => {
          const bytes = await target.read(offset, length);
          onRead(offset, bytes.length);
          return bytes;
        };
      }
      if (property === 'readInto' && onRead !== undefined && target.readInto !== undefined) {
        return async (offset: number, into: Uint8Array) => {
          const count = await target.readInto!(offset, into);
          onRead(offset, count);
          return count;
        };
      }
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
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
  return Wal.open(view(store, options), { readOnly: true, ...walOptionsOf(reading) });
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
