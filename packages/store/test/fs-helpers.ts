/** Helpers for the file-backend tests: temporary directories and a recording Fs. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Fs, FsFile, FsLock, OpenMode } from '../src/fs/fs.js';

const made: string[] = [];

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
    const actual = (error as { code?: unknown }).code;
    if (actual !== code) {
      throw new Error(`expected ${code}, got ${String(actual)}: ${String(error)}`, {
        cause: error,
      });
    }
    return error as Error;
  }
  throw new Error(`expected a rejection with ${code}, but it resolved`);
}
