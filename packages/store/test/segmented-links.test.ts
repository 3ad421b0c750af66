// A log directory whose files another directory shares (hard links: a copy
// made with `cp -al`): a writable open refuses it when a file it would write
// in place has more than one name, since a writer here would write into the
// other directory's log too, past any lock. What is only ever replaced by a
// rename (head, meta) or removed (segments below the head, a leftover
// head.tmp or meta.tmp) is not refused.
import assert from 'node:assert/strict';
import { linkSync } from 'node:fs';
import {
  copyFile,
  link,
  mkdir,
  readdir,
  readFile,
  realpath,
  symlink,
  unlink,
} from 'node:fs/promises';
import { join } from 'node:path';
import { type LockedError, WalError } from '@wal/errors';
import { NodeFs } from '../src/fs/node-fs.js';
import { SegmentedStore, segmentName } from '../src/segmented-store.js';
import { CrashFs } from '../src/testing/crash-fs.js';
import { FaultFs } from '../src/testing/fault-fs.js';
import { treeSnapshot } from '../src/testing/tree.js';
import { pattern, RecordingFs, rejectsCode, removeTempDirs, tempDir } from './fs-helpers.js';

const S = 4096;

/** A log in `<parent>/log` of `length` bytes (tag 1) with the head at `head`, closed. */
async function makeLog(length: number, head = 0): Promise<{ parent: string; log: string }> {
  const parent = await realpath(await tempDir());
  const log = join(parent, 'log');
  const store = await SegmentedStore.open(log, { segmentSize: S });
  await store.write(0, pattern(length, 1));
  await store.sync();
  if (head > 0) await store.truncateBefore(head);
  await store.close();
  return { parent, log };
}

/** `cp -al from to`: a directory whose every entry is a hard link to the one in `from`. */
async function copyLinked(from: string, to: string, only?: (name: string) => boolean) {
  await mkdir(to);
  for (const name of await readdir(from)) {
    if (only === undefined || only(name)) await link(join(from, name), join(to, name));
    else await copyFile(join(from, name), join(to, name));
  }
}

/** Every file under `parent`, its bytes and times. */
const snapshot = (parent: string) => treeSnapshot(parent);

describe('SegmentedStore: files shared with another directory (hard links)', () => {
  after(removeTempDirs);

  it('a hard-linked copy (cp -al) is refused writable, either directory; nothing is created or changed', async () => {
    const { parent, log } = await makeLog(2 * S + 100);
    const copy = join(parent, 'copy');
    await copyLinked(log, copy);
    const before = await snapshot(parent);
    for (const dir of [copy, log]) {
      const error = (await rejectsCode(
        SegmentedStore.open(dir, { segmentSize: S }),
        'WAL_LOCKED',
      )) as LockedError;
      assert.ok(error instanceof WalError);
      assert.equal(error.path, dir);
      assert.equal(error.pid, undefined, 'no holder: nobody holds the lock');
      assert.match(
        error.message,
        new RegExp(
          `^${dir}/? cannot be locked: its segment file ${segmentName(0)} has 2 names \\(hard links\\)`,
        ),
      );
      assert.match(error.reason ?? '', /cp -al.*open it read-only/);
      assert.deepEqual(await snapshot(parent), before, `nothing created or changed (${dir})`);
    }
    // Read-only takes no lock and writes nothing: it reads either directory.
    const reader = await SegmentedStore.open(copy, { readOnly: true });
    assert.equal(reader.length, 2 * S + 100);
    assert.deepEqual(await reader.read(0, 2 * S + 100), pattern(2 * S + 100, 1));
    await reader.close();
    assert.deepEqual(await snapshot(parent), before);
  });

  it('once the copy holds files of its own, each log is written alone', async () => {
    const { parent, log } = await makeLog(S + 10);
    const copy = join(parent, 'copy');
    await copyLinked(log, copy);
    await rejectsCode(SegmentedStore.open(copy), 'WAL_LOCKED');
    // Break the links: copy the segments' bytes into files of the copy's own.
    for (const name of await readdir(copy)) {
      if (!name.endsWith('.wal')) continue;
      await unlink(join(copy, name));
      await copyFile(join(log, name), join(copy, name));
    }
    const writer = await SegmentedStore.open(copy);
    await writer.truncate(5);
    await writer.write(5, pattern(50, 2));
    await writer.sync();
    await writer.close();
    const original = await SegmentedStore.open(log);
    assert.equal(original.length, S + 10);
    assert.deepEqual(await original.read(0, S + 10), pattern(S + 10, 1));
    await original.close();
  });

  it('the head and metadata files shared: opened, and replaced without touching the other name', async () => {
    const { parent, log } = await makeLog(S + 10);
    const copy = join(parent, 'copy');
    // Every file linked but the segments, which the copy holds of its own.
    await copyLinked(log, copy, (name) => !name.endsWith('.wal'));
    const head = await readFile(join(log, 'head'));
    const meta = await readFile(join(log, 'meta'));
    const writer = await SegmentedStore.open(copy);
    await writer.write(S + 10, pattern(2 * S, 3)); // into a new segment, its own
    await writer.updateMeta({ owner: 'copy' }); // replaces meta by a rename
    await writer.truncateBefore(S); // replaces head by a rename, removes segment 0
    await writer.sync();
    await writer.close();
    // The original's head and metadata are as they were, and so is the log.
    assert.deepEqual(await readFile(join(log, 'head')), head);
    assert.deepEqual(await readFile(join(log, 'meta')), meta);
    const original = await SegmentedStore.open(log);
    assert.deepEqual([original.head, original.length], [0, S + 10]);
    assert.deepEqual(await original.readMeta(), {});
    assert.deepEqual(await original.read(0, S + 10), pattern(S + 10, 1));
    await original.close();
  });

  it('a segment wholly below the head shared: opened; the open removes only its own name', async () => {
    // Segment 0 lies below the head 4096 (left by a truncateBefore a crash cut short).
    const { parent, log } = await makeLog(S + 10);
    const other = join(parent, 'other.wal');
    await copyFile(join(log, segmentName(1)), join(parent, 'keep'));
    const store = await SegmentedStore.open(log);
    await store.truncateBefore(S);
    await store.close();
    // Put back a segment 0 that another name shares, as if its unlink never ran.
    await copyFile(join(parent, 'keep'), other);
    await link(other, join(log, segmentName(0)));
    const reopened = await SegmentedStore.open(log);
    assert.deepEqual([reopened.head, reopened.length], [S, S + 10]);
    await reopened.close();
    assert.deepEqual((await readdir(log)).filter((name) => name.endsWith('.wal')).sort(), [
      segmentName(1),
    ]);
    assert.deepEqual(await readFile(other), await readFile(join(parent, 'keep')));
  });

  // A shared leftover head.tmp or meta.tmp is not refused: a replacement
  // removes that name and creates its own file (temp-links.test.ts).

  it('a shared file appearing while the open runs is seen under the lock; the lock is released', async () => {
    const { parent, log } = await makeLog(100);
    const other = join(parent, 'other');
    await copyFile(join(log, segmentName(0)), other);
    const fs = new FaultFs(new NodeFs());
    // After the open checked the files (one segment, one name), before the lock.
    fs.inject({
      when: (call) => {
        if (call.method === 'lock') linkSync(other, join(log, segmentName(1)));
        return undefined;
      },
    });
    const error = (await rejectsCode(
      SegmentedStore.open(log, { fs }),
      'WAL_LOCKED',
    )) as LockedError;
    assert.match(error.message, new RegExp(`its segment file ${segmentName(1)} has 2 names`));
    // Each file's names counted once: segment 0 before the lock, 1 under it.
    assert.equal(fs.count('linksAt'), 2);
    assert.deepEqual((await readdir(log)).sort(), [segmentName(0), segmentName(1), 'head', 'meta']);
  });

  it('each live segment is counted once (Fs.linksAt), nothing opened; a read-only open counts none', async () => {
    const { log } = await makeLog(3 * S + 10, S);
    const fs = new FaultFs(new NodeFs());
    const store = await SegmentedStore.open(log, { fs });
    // Segments 1 to 3 (segment 0 was below the head, and is gone).
    const counted = fs.calls
      .filter((call) => call.method === 'linksAt')
      .map((call) => call.path)
      .sort(); // counted a few at a time, in no particular order
    assert.deepEqual(
      counted,
      [1, 2, 3].map((index) => join(log, segmentName(index))),
    );
    assert.equal(fs.count('links'), 0);
    await store.close();
    const before = fs.count('linksAt');
    await SegmentedStore.open(log, { fs, readOnly: true }).then((reader) => reader.close());
    assert.equal(fs.count('linksAt'), before);
  });

  it('an Fs without linksAt: each file opened for reading, counted and closed again', async () => {
    const { parent, log } = await makeLog(3 * S + 10, S);
    const fs = new RecordingFs(new NodeFs());
    await SegmentedStore.open(log, { fs }).then((store) => store.close());
    const segments = [1, 2, 3].map((index) => join(log, segmentName(index)));
    assert.deepEqual(fs.log.filter((entry) => entry.startsWith('links ')).sort(), [
      ...segments.map((path) => `links ${path}`),
    ]);
    // The same refusal of a hard-linked copy.
    const copy = join(parent, 'copy');
    await copyLinked(log, copy);
    const before = await snapshot(parent);
    const error = (await rejectsCode(
      SegmentedStore.open(copy, { fs }),
      'WAL_LOCKED',
    )) as LockedError;
    assert.match(error.message, new RegExp(`its segment file ${segmentName(1)} has 2 names`));
    assert.deepEqual(await snapshot(parent), before);
  });

  for (const method of ['linksAt', 'links'] as const) {
    it(`a failing link count (${method}) fails the open with WAL_IO, before anything is taken`, async () => {
      const { parent, log } = await makeLog(100);
      const fs = new FaultFs(method === 'linksAt' ? new NodeFs() : new RecordingFs(new NodeFs()));
      fs.inject({ method, fault: 'EIO' });
      const before = await snapshot(parent);
      const error = await rejectsCode(SegmentedStore.open(log, { fs }), 'WAL_IO');
      assert.equal(
        (error as { syscall?: string }).syscall,
        method === 'linksAt' ? 'stat' : 'fstat',
      );
      assert.equal(fs.count('lock'), 0);
      assert.equal(fs.count('open'), fs.count('close'), 'every file closed');
      assert.deepEqual(await snapshot(parent), before);
    });
  }

  it('NodeFs.linksAt counts the names of the file a path names; FaultFs has it when its inner Fs does', async () => {
    const dir = await realpath(await tempDir());
    const fs = new NodeFs();
    const path = join(dir, 'f');
    await fs.open(path, 'create').then((file) => fs.close(file));
    assert.equal(await fs.linksAt(path), 1);
    await link(path, join(dir, 'g'));
    assert.equal(await fs.linksAt(path), 2);
    await symlink(path, join(dir, 's'));
    assert.equal(await fs.linksAt(join(dir, 's')), 2, 'through a symbolic link: the file it names');
    await rejectsCode(fs.linksAt(join(dir, 'missing')), 'ENOENT');
    assert.equal(new FaultFs(new CrashFs()).linksAt, undefined);
    const faulty = new FaultFs(fs);
    faulty.inject({ method: 'linksAt', fault: { code: 'EACCES' } });
    const error = await rejectsCode(faulty.linksAt!(path), 'EACCES');
    assert.equal((error as NodeJS.ErrnoException).syscall, 'stat');
    assert.equal(await faulty.linksAt!(path), 2);
  });
});
