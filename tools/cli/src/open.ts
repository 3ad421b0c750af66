/**
 * Finding and opening a log: layout detection, read-only store opens, and a
 * view of a store that a `Wal` may use without owning it.
 */
import { readdir, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { RecoveryPolicy } from '@wal/core';
import { Wal } from '@wal/core';
import { isArgumentError } from '@wal/errors';
import { FileStore, SegmentedStore, type Store, segmentName } from '@wal/store';
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

const SEGMENT_FILE = /^\d{20}\.wal$/;

/**
 * Decides the layout from what `path` is: a directory is a segmented log, a
 * regular file a single-file log. Refuses what is neither, or a directory or
 * file that holds no log.
 */
export async function findTarget(path: string, segmentSize: number | undefined): Promise<Target> {
  let info: Awaited<ReturnType<typeof stat>>;
  try {
    info = await stat(path);
  } catch (error) {
    throw new CliError(describeError(error, path).message);
  }
  if (info.isDirectory()) {
    const names = await readdir(path).catch((error: unknown) => {
      throw new CliError(describeError(error, path).message);
    });
    const hasSegments = names.some((name) => SEGMENT_FILE.test(name));
    const hasMeta = names.includes('meta');
    if (!hasSegments && !hasMeta && !names.includes('head')) {
      throw new CliError(`${path}: not a log (no segment files, no metadata)`);
    }
    if (hasSegments && !hasMeta && segmentSize === undefined) {
      throw new CliError(
        `${path}: the log has no metadata (a wal-db 1.x log?): give its segment size with --segment-size`,
      );
    }
    return { path, layout: 'segmented', lockFile: join(path, 'lock'), segmentSize };
  }
  if (info.isFile()) {
    if (segmentSize !== undefined) {
      throw new CliError(`${path}: --segment-size applies to segmented logs (directories) only`);
    }
    const meta = await stat(`${path}.meta`).catch(() => undefined);
    if (meta === undefined) {
      throw new CliError(`${path}: not a log (no ${basename(path)}.meta beside it)`);
    }
    return { path, layout: 'file', lockFile: `${path}.lock`, segmentSize };
  }
  throw new CliError(`${path}: not a log (neither a directory nor a regular file)`);
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
    if (isArgumentError(error) && target.segmentSize !== undefined) {
      throw new CliError(
        `${target.path}: --segment-size ${target.segmentSize} does not match the log's segment size (omit it: the log records its own)`,
      );
    }
    throw new CliError(describeError(error, target.path).message, describeError(error).exitCode);
  }
}

/** Opens the store of `target` for writing: takes the lock. */
export async function openStoreWritable(target: Target): Promise<Store> {
  if (target.layout === 'file') return FileStore.open(target.path);
  return SegmentedStore.open(
    target.path,
    target.segmentSize === undefined ? {} : { segmentSize: target.segmentSize },
  );
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
        return async () => ({ ...(await target.readMeta()), 'wal.durableHint': hint });
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

/** Opens a read-only `Wal` over `store` (which stays open after the log closes). */
export function openLog(store: Store, policy: RecoveryPolicy, options: ViewOptions = {}) {
  return Wal.open(view(store, options), { readOnly: true, recovery: policy });
}

/** The segment size of a segmented store, undefined for a single file. */
export function segmentSizeOf(store: Store): number | undefined {
  const size = (store as { segmentSize?: unknown }).segmentSize;
  return typeof size === 'number' ? size : undefined;
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
  const names = (await readdir(target.path)).filter((name) => SEGMENT_FILE.test(name));
  let segments = 0;
  let bytes = 0;
  for (const name of names) {
    const index = Number(name.slice(0, 20));
    if ((index + 1) * size <= store.head) continue; // below the head: left over, ignored
    segments++;
    bytes += (await stat(join(target.path, name))).size;
  }
  return { segments, bytes };
}
