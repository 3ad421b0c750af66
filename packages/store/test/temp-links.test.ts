// The temporary file of an atomic replacement — `<path>.meta.tmp` beside a
// single-file log, `head.tmp` and `meta.tmp` in a log directory — found as a
// name the store did not create: a hard link to another file (a `cp -al`
// copy, another program), a symbolic link, a leftover of a killed process.
// A replacement never writes through it: it removes the name (which leaves
// the file any other name shares as it was) and creates its own file
// exclusively, whether the name was there at open or appeared later.
import assert from 'node:assert/strict';
import { link, lstat, readFile, realpath, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { errorCode, IoError } from '@wal/errors';
import { FileStore } from '../src/file-store.js';
import type { Fs } from '../src/fs/fs.js';
import { SegmentedStore } from '../src/segmented-store.js';
import type { Store } from '../src/store.js';
import { CrashFs, type CrashStates } from '../src/testing/crash-fs.js';
import { FaultFs } from '../src/testing/fault-fs.js';
import { pattern, rejectsCode, removeTempDirs, tempDir, tick } from './fs-helpers.js';

const S = 4096;
/** What the other file holds: longer than any metadata or head file. */
const OTHERS = Buffer.from('another program keeps these bytes\n'.repeat(200));

/** Whether anything is at `path` (not following a symbolic link). */
const exists = (path: string) =>
  lstat(path).then(
    () => true,
    (error: unknown) => {
      if (errorCode(error) === 'ENOENT') return false;
      throw error;
    },
  );

/**
 * Another program's file `<parent>/other`, made a second name of (a hard
 * link, or a symbolic link) at `temp`. `check` asserts that its bytes are
 * as they were and that the store's replacement removed the name at `temp`.
 */
async function otherAt(
  parent: string,
  temp: string,
  how: 'hard link' | 'symbolic link' = 'hard link',
): Promise<{ check(what: string): Promise<void> }> {
  const other = join(parent, 'other');
  await writeFile(other, OTHERS);
  if (how === 'hard link') await link(other, temp);
  else await symlink(other, temp);
  return {
    async check(what) {
      assert.deepEqual(await readFile(other), OTHERS, `${what}: the other file's bytes changed`);
      assert.equal((await stat(other)).nlink, 1, `${what}: the name at ${temp} is still there`);
      assert.equal(await exists(temp), false, `${what}: ${temp} is still there`);
    },
  };
}

/** Updates the metadata and the head, writes; then reopens and checks all of it. */
async function useAndReopen(open: () => Promise<Store>, store: Store, length: number) {
  await store.updateMeta({ owner: 'this log' });
  await store.truncateBefore(10);
  await store.write(length, pattern(100, 2));
  await store.sync();
  await store.close();
  const again = await open();
  try {
    assert.equal((await again.readMeta()).owner, 'this log');
    assert.deepEqual([again.head, again.length], [10, length + 100]);
    assert.deepEqual(await again.read(length, 100), pattern(100, 2));
  } finally {
    await again.close();
  }
}

describe('a temporary file of a replacement that is a name of another file', () => {
  after(removeTempDirs);

  describe('FileStore over NodeFs: <path>.meta.tmp', () => {
    /** A log of 100 bytes at `<parent>/log`, with its metadata, closed. */
    async function makeLog(): Promise<{ parent: string; path: string }> {
      const parent = await realpath(await tempDir());
      const path = join(parent, 'log');
      const store = await FileStore.open(path);
      await store.write(0, pattern(100, 1));
      await store.sync();
      await store.close();
      return { parent, path };
    }

    it('a hard link left beside a log: the open and every metadata update leave its bytes alone; the log works', async () => {
      const { parent, path } = await makeLog();
      const other = await otherAt(parent, `${path}.meta.tmp`);
      const store = await FileStore.open(path);
      await useAndReopen(() => FileStore.open(path), store, 100);
      await other.check('after the metadata updates');
    });

    it('a hard link beside a file without metadata: the first metadata the open writes goes into a file of its own', async () => {
      const parent = await realpath(await tempDir());
      const path = join(parent, 'log');
      await writeFile(path, ''); // an empty file: a new log, without metadata
      const other = await otherAt(parent, `${path}.meta.tmp`);
      const store = await FileStore.open(path);
      await other.check('after the open');
      assert.equal(await exists(`${path}.meta`), true);
      await store.write(0, pattern(100, 1));
      await useAndReopen(() => FileStore.open(path), store, 100);
    });

    it('a hard link made after the open: the next metadata update does not write through it', async () => {
      const { parent, path } = await makeLog();
      const store = await FileStore.open(path);
      const other = await otherAt(parent, `${path}.meta.tmp`);
      await store.updateMeta({ owner: 'this log' });
      await other.check('after updateMeta');
      await useAndReopen(() => FileStore.open(path), store, 100);
    });

    it('a symbolic link to another file: the update does not write into the file it names', async () => {
      const { parent, path } = await makeLog();
      const store = await FileStore.open(path);
      const other = await otherAt(parent, `${path}.meta.tmp`, 'symbolic link');
      await store.truncateBefore(10);
      await other.check('after truncateBefore');
      await useAndReopen(() => FileStore.open(path), store, 100);
    });
  });

  describe('SegmentedStore over NodeFs', () => {
    /** A log of 100 bytes in `<parent>/log`, closed. */
    async function makeLog(): Promise<{ parent: string; log: string }> {
      const parent = await realpath(await tempDir());
      const log = join(parent, 'log');
      const store = await SegmentedStore.open(log, { segmentSize: S });
      await store.write(0, pattern(100, 1));
      await store.sync();
      await store.close();
      return { parent, log };
    }

    for (const temp of ['head.tmp', 'meta.tmp']) {
      it(`a hard link left as ${temp}: opened; the replacements leave its bytes alone; the log works`, async () => {
        const { parent, log } = await makeLog();
        const other = await otherAt(parent, join(log, temp));
        const store = await SegmentedStore.open(log);
        await useAndReopen(() => SegmentedStore.open(log), store, 100);
        await other.check('after the replacements');
      });

      it(`a hard link made as ${temp} after the open: the next replacement does not write through it`, async () => {
        const { parent, log } = await makeLog();
        const store = await SegmentedStore.open(log);
        const other = await otherAt(parent, join(log, temp));
        await (temp === 'head.tmp' ? store.truncateBefore(10) : store.updateMeta({ n: 1 }));
        await other.check('after the replacement');
        await useAndReopen(() => SegmentedStore.open(log), store, 100);
      });
    }
  });

  describe('over simulated file systems', () => {
    const PARENT = '/data';
    const backends = [
      {
        name: 'FileStore',
        temps: ['/data/log.meta.tmp'],
        open: (fs: Fs) => FileStore.open('/data/log', { fs }),
      },
      {
        name: 'SegmentedStore',
        temps: ['/data/log/head.tmp', '/data/log/meta.tmp'],
        open: (fs: Fs) => SegmentedStore.open('/data/log', { fs, segmentSize: S }),
      },
    ];

    for (const { name, temps, open } of backends) {
      it(`${name} over CrashFs: a leftover temporary file is removed, never opened; each is created exclusively`, async () => {
        const crash = new CrashFs({ image: { files: new Map(), dirs: new Set([PARENT]) } });
        const fs = new FaultFs(crash);
        const first = await open(fs);
        await first.write(0, pattern(100, 1));
        await first.sync();
        await first.close();
        // Leftovers: what a replacement a killed process began leaves.
        for (const temp of temps) {
          const file = await crash.open(temp, 'create');
          await crash.pwrite(file, OTHERS, 0);
          await crash.close(file);
        }
        const store = await open(fs);
        await useAndReopen(() => open(fs), store, 100);
        // Read (to tell ours from another's, FORMAT.md §3.1), never opened to write.
        const writable = fs.calls.filter(
          (call) => call.method === 'open' && call.path.endsWith('.tmp') && call.args[0] !== 'read',
        );
        assert.ok(writable.length >= 2 * temps.length, `${writable.length} temporary files`);
        for (const call of writable) {
          assert.equal(
            call.args[0],
            'createExclusive',
            `open ${call.path} ${String(call.args[0])}`,
          );
        }
        for (const temp of temps) {
          assert.ok(
            fs.calls.some((call) => call.method === 'unlink' && call.path === temp),
            `${temp} was never removed`,
          );
          assert.equal(crash.snapshot().files.has(temp), false, `${temp} is left`);
        }
      });

      it(`${name} over CrashFs: power loss while a replacement removes a leftover temporary file: the old metadata or the new`, async () => {
        const setup = new CrashFs({ image: { files: new Map(), dirs: new Set([PARENT]) } });
        const first = await open(setup);
        await first.updateMeta({ n: 1 });
        await first.close();
        // The log, durable, with a leftover beside it.
        const image = setup.snapshot();
        const files = new Map(image.files);
        for (const temp of temps) files.set(temp, OTHERS);
        const crash = new CrashFs({ image: { files, dirs: image.dirs } });
        const store = await open(crash);
        const snapshots: CrashStates[] = [];
        let settled = false;
        const done = store.updateMeta({ n: 2 }).finally(() => {
          settled = true;
        });
        while (!settled) {
          snapshots.push(crash.crashStates({ limit: 100 }));
          await tick();
        }
        await done;
        snapshots.push(crash.crashStates({ limit: 100 }));
        await store.close();
        const seen = new Set<unknown>();
        for (const snapshot of snapshots) {
          for (const state of snapshot) {
            const later = await open(state.fs()).catch((error: unknown) => {
              throw new Error(`${state.description}: ${String(error)}`);
            });
            const { n } = await later.readMeta();
            seen.add(n);
            assert.ok(n === 1 || n === 2, `${state.description}: n is ${String(n)}`);
            // Whatever temporary file the state holds, the next replacement goes on.
            await later.updateMeta({ n: 3 });
            assert.equal((await later.readMeta()).n, 3);
            await later.close();
          }
        }
        assert.deepEqual([...seen].sort(), [1, 2]);
      });

      it(`${name} over FaultFs: a temporary file there again once removed fails the update (EEXIST), writing nothing; not latched`, async () => {
        const crash = new CrashFs({ image: { files: new Map(), dirs: new Set([PARENT]) } });
        const fs = new FaultFs(crash);
        const store = await open(fs);
        try {
          await store.updateMeta({ n: 1 });
          const rule = fs.inject({
            method: 'open',
            when: (call) => call.path.endsWith('.tmp'),
            fault: { code: 'EEXIST' },
            persistent: true,
          });
          const before = crash.snapshot();
          const error = await rejectsCode(store.updateMeta({ n: 2 }), 'WAL_IO');
          assert.ok(error instanceof IoError && error.errno === 'EEXIST', String(error));
          assert.equal(rule.fired, 2, 'created, removed, created again');
          assert.deepEqual(crash.snapshot(), before, 'nothing changed');
          rule.remove();
          // Not latched: the store goes on.
          await store.updateMeta({ n: 3 });
          assert.deepEqual(await store.readMeta(), { n: 3 });
        } finally {
          await store.close();
        }
        const again = await open(fs);
        assert.deepEqual(await again.readMeta(), { n: 3 });
        await again.close();
      });
    }
  });
});
