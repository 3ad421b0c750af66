/**
 * The test helpers shared by the store tests: temporary directories, a
 * recording Fs, deterministic bytes, ticks and assertions on error codes.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { errorCode } from '@wal/errors';
import type { Fs, FsFile, FsLock, OpenMode } from '../src/fs/fs.js';
import type { Store } from '../src/store.js';
import type { CrashFsOperation } from '../src/testing/crash-fs.js';
import type { FaultFs, FsCall } from '../src/testing/fault-fs.js';

const made: string[] = [];

/** Deterministic pseudo-random bytes, different per `tag`. */
export function pattern(length: number, tag: number): Uint8Array {
  const out = new Uint8Array(length);
  let x = (tag * 2654435761) >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = (x & 0xff) | 1; // never 0, so a zero always means "not written"
  }
  return out;
}

/** One turn of the event loop. */
export const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** A fresh temporary directory, removed by {@link removeTempDirs}. */
export async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'wal-store-test-'));
  made.push(dir);
  return dir;
}

/** Removes every directory made by {@link tempDir}. */
export async function removeTempDirs(): Promise<void> {
  for (const dir of made.splice(0)) await rm(dir, { recursive: true, force: true });
}

/** An Fs that forwards to another and records `method path` for every call. */
export class RecordingFs implements Fs {
  readonly log: string[] = [];
  constructor(readonly inner: Fs) {}

  /** Calls of `method`, by path. */
  count(method: string, pathEnd = ''): number {
    return this.log.filter((e) => e.startsWith(`${method} `) && e.endsWith(pathEnd)).length;
  }

  open(path: string, mode: OpenMode): Promise<FsFile> {
    this.log.push(`open ${path}`);
    return this.inner.open(path, mode);
  }
  close(file: FsFile): Promise<void> {
    this.log.push(`close ${file.path}`);
    return this.inner.close(file);
  }
  pwrite(file: FsFile, bytes: Uint8Array, position: number): Promise<number> {
    this.log.push(`pwrite ${file.path}`);
    return this.inner.pwrite(file, bytes, position);
  }
  pread(file: FsFile, into: Uint8Array, position: number): Promise<number> {
    this.log.push(`pread ${file.path}`);
    return this.inner.pread(file, into, position);
  }
  fdatasync(file: FsFile): Promise<void> {
    this.log.push(`fdatasync ${file.path}`);
    return this.inner.fdatasync(file);
  }
  ftruncate(file: FsFile, length: number): Promise<void> {
    this.log.push(`ftruncate ${file.path}`);
    return this.inner.ftruncate(file, length);
  }
  size(file: FsFile): Promise<number> {
    this.log.push(`size ${file.path}`);
    return this.inner.size(file);
  }
  links(file: FsFile): Promise<number> {
    this.log.push(`links ${file.path}`);
    return this.inner.links(file);
  }
  realpath(path: string): Promise<string> {
    this.log.push(`realpath ${path}`);
    return this.inner.realpath(path);
  }
  rename(from: string, to: string): Promise<void> {
    this.log.push(`rename ${from} ${to}`);
    return this.inner.rename(from, to);
  }
  unlink(path: string): Promise<void> {
    this.log.push(`unlink ${path}`);
    return this.inner.unlink(path);
  }
  readdir(path: string): Promise<string[]> {
    this.log.push(`readdir ${path}`);
    return this.inner.readdir(path);
  }
  mkdir(path: string): Promise<boolean> {
    this.log.push(`mkdir ${path}`);
    return this.inner.mkdir(path);
  }
  syncDir(path: string): Promise<void> {
    this.log.push(`syncDir ${path}`);
    return this.inner.syncDir(path);
  }
  lock(path: string): Promise<FsLock> {
    this.log.push(`lock ${path}`);
    return this.inner.lock(path);
  }
}

/** Asserts that `promise` rejects with an error carrying `code`; returns the error. */
export async function rejectsCode(promise: Promise<unknown>, code: string): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    const actual = errorCode(error);
    if (actual !== code) {
      throw new Error(`expected ${code}, got ${String(actual)}: ${String(error)}`, {
        cause: error,
      });
    }
    return error as Error;
  }
  throw new Error(`expected a rejection with ${code}, but it resolved`);
}

/** True when the next call naming the path `close` closed unlinks it: a file being deleted needs no flush. */
function unlinkedNext(operations: readonly CrashFsOperation[], close: CrashFsOperation): boolean {
  const next = operations.find(
    (op) => op.id > close.id && op.path === close.path && op.call !== 'close',
  );
  return next?.call === 'unlink';
}

/**
 * Closes of segment files that dropped written bytes no completed fdatasync
 * had covered, among calls issued before clock reading `until`. Such a close
 * may lose a write error the kernel reports only to descriptors open at the
 * time (Linux reports it once per open file), so a later fsync through a new
 * descriptor could succeed without the bytes. A close followed by the file's
 * unlink is not counted.
 */
export function unsyncedCloses(operations: readonly CrashFsOperation[], until: number): string[] {
  const events: { at: number; op: CrashFsOperation; what: 'done' | 'issued' }[] = [];
  for (const op of operations) {
    if (op.error !== undefined) continue;
    if (
      op.call === 'close' &&
      op.path?.endsWith('.wal') === true &&
      op.issuedAt < until &&
      !unlinkedNext(operations, op)
    ) {
      events.push({ at: op.issuedAt, op, what: 'issued' });
    }
    const settled = op.settledAt;
    if (settled !== undefined && ['pwrite', 'ftruncate', 'fdatasync'].includes(op.call)) {
      events.push({ at: settled, op, what: 'done' });
    }
  }
  events.sort((a, b) => a.at - b.at);
  const unsynced = new Map<number, Set<number>>();
  const found: string[] = [];
  for (const { op, what } of events) {
    const ids = unsynced.get(op.inode!) ?? new Set<number>();
    unsynced.set(op.inode!, ids);
    if (what === 'issued') {
      if (ids.size > 0) found.push(`close #${op.id} of ${op.path} drops unsynced #${[...ids]}`);
    } else if (op.call === 'fdatasync') {
      for (const id of op.covers ?? []) ids.delete(id);
    } else {
      ids.add(op.id);
    }
  }
  return found;
}

/** Picks a call to fail, given whether a `.meta.tmp` file was renamed over its target yet. */
export type MetaStepFailure = (call: Omit<FsCall, 'fault'>, renamed: boolean) => boolean;

/**
 * Makes `fs` fail with `ENOSPC` the calls `fails` picks, telling it whether a
 * `.meta.tmp` was renamed yet: a step of a metadata file's atomic replace.
 */
export function failMetaStep(fs: FaultFs, fails: MetaStepFailure): void {
  let renamed = false;
  fs.inject({
    fault: 'ENOSPC',
    when: (call) => {
      const fire = fails(call, renamed);
      if (call.method === 'rename' && call.path.endsWith('.meta.tmp')) renamed = true;
      return fire;
    },
  });
}

/**
 * What each store of a test was opened on (a file system), so that a
 * reopen, or the suite's fault hook, finds the same one: `remember` the
 * store as it opens, `of` it later (throws for a store it never saw).
 */
export function openedOn<T>(): {
  remember<S extends Store>(store: S, on: T): S;
  of(store: Store): T;
} {
  const seen = new WeakMap<Store, T>();
  return {
    remember(store, on) {
      seen.set(store, on);
      return store;
    },
    of(store) {
      const on = seen.get(store);
      if (on === undefined) throw new Error('store was not opened by this test');
      return on;
    },
  };
}
