// A FIFO, a device or a socket where the store reads (docs/FORMAT.md §3.1):
// never opened (an open of a FIFO would wait for a writer forever), refused
// with WAL_NOT_A_LOG naming it, and nothing changed.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { constants } from 'node:fs';
import { open, rm, symlink } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import type { NotALogError } from '@wal/errors';
import {
  FileStore,
  identifyLog,
  NodeFs,
  readLockHolder,
  SegmentedStore,
  segmentName,
} from '@wal/store';
import { treeSnapshot } from '@wal/store/testing';
import { rejectsCode, removeTempDirs, tempDir } from './fs-helpers.js';

/** How long an open may take to refuse before it counts as hanging. */
const PROMPT_MS = 5000;

function mkfifo(path: string): void {
  execFileSync('mkfifo', [path]);
}

/**
 * `promise`, or a failure once {@link PROMPT_MS} passed. A call stuck opening
 * one of `fifos` is then released (a writer opens it), so the test run ends.
 */
async function promptly<T>(promise: Promise<T>, fifos: readonly string[]): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(async () => {
      for (const fifo of fifos) {
        const writer = await open(fifo, constants.O_WRONLY | constants.O_NONBLOCK).catch(
          () => undefined,
        );
        await writer?.close();
      }
      reject(new Error(`still waiting after ${PROMPT_MS} ms: the open blocked on a FIFO`));
    }, PROMPT_MS);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

type Open = (path: string, readOnly: boolean) => Promise<{ close(): Promise<void> }>;
const openFile: Open = (path, readOnly) => FileStore.open(path, { readOnly });
const openDir: Open = (path, readOnly) =>
  SegmentedStore.open(path, { readOnly, segmentSize: 4096 });

/** A single-file log with a few bytes, at `path`. */
async function fileLog(path: string): Promise<void> {
  const store = await FileStore.open(path);
  await store.write(0, new Uint8Array([1, 2, 3]));
  await store.sync();
  await store.close();
}

/** A segmented log over two segments, at `path`. */
async function dirLog(path: string): Promise<void> {
  const store = await SegmentedStore.open(path, { segmentSize: 4096 });
  await store.write(0, new Uint8Array(5000).fill(9));
  await store.sync();
  await store.close();
}

describe('a FIFO, a device or a socket where a log keeps a file', () => {
  after(removeTempDirs);

  // [what, how the log is opened, what to make, the FIFO's path under `path`,
  // what a writable open does before it reads that file (the log's lock
  // taken and released: the directory's entries as they were, its times
  // changed), whether a read-only open reads it at all]
  type Case = [
    string,
    Open,
    (path: string) => Promise<void>,
    string,
    (Lock | undefined)?,
    'unread'?,
  ];
  type Lock = 'locks first';
  const cases: Case[] = [
    ['FileStore: a FIFO at the path', openFile, async () => {}, ''],
    ['FileStore: a FIFO as <path>.meta beside a log', openFile, fileLog, '.meta'],
    ['FileStore: a FIFO as <path>.meta, nothing at the path', openFile, async () => {}, '.meta'],
    ['FileStore: a FIFO as <path>.meta.tmp', openFile, async () => {}, '.meta.tmp'],
    [
      'FileStore: a FIFO as <path>.lock beside a log',
      openFile,
      fileLog,
      '.lock',
      undefined,
      'unread',
    ],
    ['FileStore: a FIFO as <path>.lock.break', openFile, async () => {}, '.lock.break'],
    ['SegmentedStore: a FIFO at the path', openDir, async () => {}, ''],
    ['SegmentedStore: a FIFO as lock', openDir, dirLog, '/lock'],
    ['SegmentedStore: a FIFO as head', openDir, dirLog, '/head', 'locks first'],
    ['SegmentedStore: a FIFO as meta', openDir, dirLog, '/meta'],
    [
      'SegmentedStore: a FIFO as a segment past the end',
      openDir,
      dirLog,
      `/${segmentName(5)}`,
      'locks first',
    ],
    [
      'SegmentedStore: a FIFO as the last segment',
      openDir,
      dirLog,
      `/${segmentName(1)}`,
      'locks first',
    ],
  ];
  /** The tree under `parent`, without the times of directories when `lock` (see above). */
  const snapshot = async (parent: string, lock: Lock | undefined) =>
    (await treeSnapshot(parent)).map((line) =>
      lock === undefined ? line : line.replace(/\/ mtime \d+ ctime \d+ /, '/ '),
    );

  for (const [name, openLog, make, suffix, lock, readOnlyRead] of cases) {
    for (const readOnly of [false, true]) {
      const opens = readOnly && readOnlyRead === 'unread';
      const what = opens ? 'opens without reading it' : 'refused at once, nothing changed';
      it(`${name}${readOnly ? ' (read-only)' : ''}: ${what}`, async () => {
        const parent = await tempDir();
        const path = join(parent, 'log');
        await make(path);
        const fifo = `${path}${suffix}`;
        await rm(fifo, { force: true });
        mkfifo(fifo);
        const before = await snapshot(parent, readOnly ? undefined : lock);
        if (opens) {
          await (await promptly(openLog(path, readOnly), [fifo])).close();
        } else {
          const error = (await rejectsCode(
            promptly(openLog(path, readOnly), [fifo]),
            'WAL_NOT_A_LOG',
          )) as NotALogError;
          assert.equal(error.path, fifo);
          assert.match(error.found, /^a FIFO, not a regular file/);
        }
        assert.deepEqual(
          await snapshot(parent, readOnly ? undefined : lock),
          before,
          'not one byte or entry',
        );
      });
    }
  }

  it('identifyLog refuses a FIFO at the path or beside a log, without waiting', async () => {
    const parent = await tempDir();
    const fifo = join(parent, 'fifo');
    mkfifo(fifo);
    await rejectsCode(promptly(identifyLog(fifo), [fifo]), 'WAL_NOT_A_LOG');
    const log = join(parent, 'log');
    await dirLog(log);
    await rm(join(log, 'lock'), { force: true });
    mkfifo(join(log, 'lock'));
    await rejectsCode(promptly(identifyLog(log), [join(log, 'lock')]), 'WAL_NOT_A_LOG');
  });

  it('the lock refuses a FIFO as its lock file; readLockHolder calls it foreign', async () => {
    const parent = await tempDir();
    const lock = join(parent, 'lock');
    mkfifo(lock);
    const before = await treeSnapshot(parent);
    const holder = await promptly(readLockHolder(lock), [lock]);
    assert.deepEqual(holder, { pid: undefined, host: undefined, state: 'foreign' });
    const error = await rejectsCode(promptly(new NodeFs().lock(lock), [lock]), 'WAL_NOT_A_LOG');
    assert.match(error.message, /lock is not a log: a FIFO, not a regular file/);
    assert.deepEqual(await treeSnapshot(parent), before);
  });

  it('a character device (/dev/null, /dev/zero) is not an empty file: refused', async () => {
    // Reached through a symlink in a directory of the test's own: were the
    // refusal to regress, a writable open would create its metadata and lock
    // files beside the link, not beside the device.
    for (const device of ['/dev/null', '/dev/zero']) {
      const parent = await tempDir();
      const path = join(parent, 'log');
      await symlink(device, path);
      const before = await treeSnapshot(parent);
      for (const readOnly of [false, true]) {
        const error = (await rejectsCode(
          FileStore.open(path, { readOnly }),
          'WAL_NOT_A_LOG',
        )) as NotALogError;
        assert.equal(error.path, path);
        assert.match(error.found, /^a character device, not a regular file/);
      }
      await rejectsCode(new NodeFs().open(path, 'write'), 'WAL_NOT_A_LOG');
      assert.deepEqual(await treeSnapshot(parent), before);
    }
  });

  it('a socket at the path: refused', async () => {
    const parent = await tempDir();
    const path = join(parent, 'log');
    const server: Server = createServer();
    await new Promise<void>((resolve) => server.listen(path, resolve));
    try {
      for (const readOnly of [false, true]) {
        const error = (await rejectsCode(
          openFile(path, readOnly),
          'WAL_NOT_A_LOG',
        )) as NotALogError;
        assert.match(error.found, /^a socket, not a regular file/);
      }
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
