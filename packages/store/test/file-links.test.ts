// A single-file log reached through a link: one lock per file, whatever the
// path. A symbolic link is resolved, so the lock and the metadata are the
// file's own; a file with more than one name (hard links) is refused
// writable, since a lock named after one name cannot keep out the others.
import assert from 'node:assert/strict';
import { linkSync } from 'node:fs';
import {
  link,
  mkdir,
  readdir,
  readFile,
  realpath,
  symlink,
  unlink,
  writeFile,
} from 'node:fs/promises';
import { join } from 'node:path';
import { type LockedError, WalError } from '@wal/errors';
import { FileStore } from '../src/file-store.js';
import { NodeFs } from '../src/fs/node-fs.js';
import { decodeMeta } from '../src/meta-file.js';
import { CrashFs } from '../src/testing/crash-fs.js';
import { FaultFs } from '../src/testing/fault-fs.js';
import { treeSnapshot } from '../src/testing/tree.js';
import { pattern, rejectsCode, removeTempDirs, tempDir } from './fs-helpers.js';

const enc = new TextEncoder();

/** The entries of `dir`, sorted. */
async function entries(dir: string): Promise<string[]> {
  return (await readdir(dir)).sort();
}

describe('FileStore through links', () => {
  after(removeTempDirs);

  describe('a symbolic link to the data file', () => {
    it('a second writable open through it is WAL_LOCKED, creates nothing, and loses nothing', async () => {
      const dir = await realpath(await tempDir());
      const path = join(dir, 'f.log');
      const alias = join(dir, 'alias.log');
      const first = await FileStore.open(path);
      await symlink(path, alias);
      // Every entry, its bytes and times; the directory's own times aside,
      // which the lock protocol's temporary file moves as for any held lock.
      const entriesOf = async (): Promise<string[]> =>
        (await treeSnapshot(dir)).filter((line) => !line.startsWith(`${dir}/ `));
      const before = await entriesOf();
      const error = (await rejectsCode(FileStore.open(alias), 'WAL_LOCKED')) as LockedError;
      // The lock it ran into is the file's own, held by `first`.
      assert.equal(error.path, `${path}.lock`);
      assert.equal(error.pid, process.pid);
      assert.deepEqual(await entriesOf(), before, 'nothing created beside the link');
      assert.deepEqual(await entries(dir), ['alias.log', 'f.log', 'f.log.lock', 'f.log.meta']);
      // The holder writes on; reopened, the log holds exactly its records.
      const a = enc.encode('from-a');
      await first.write(0, a);
      await first.sync();
      await first.updateMeta({ owner: 'a' });
      await first.close();
      const again = await FileStore.open(path);
      assert.equal(again.length, a.length);
      assert.deepEqual(await again.read(0, a.length), a);
      assert.deepEqual(await again.readMeta(), { owner: 'a' });
      await again.close();
    });

    it('metadata or a lock an earlier release named after the link is refused, nothing changed', async () => {
      // Before links were resolved, a log always opened through a link kept
      // `<link>.meta` (and `<link>.lock`): opening the file by its own names
      // would miss that metadata (the head among it) or that writer's lock.
      for (const suffix of ['.meta', '.lock']) {
        const dir = await realpath(await tempDir());
        const path = join(dir, 'f.log');
        const alias = join(dir, 'alias.log');
        const store = await FileStore.open(path);
        await store.write(0, pattern(300, 1));
        await store.truncateBefore(100);
        await store.close();
        await symlink(path, alias);
        if (suffix === '.meta') {
          await writeFile(`${alias}.meta`, await readFile(`${path}.meta`));
          await unlink(`${path}.meta`);
        } else {
          await writeFile(`${alias}.lock`, `${process.pid}\n`);
        }
        const before = await treeSnapshot(dir);
        for (const readOnly of [false, true]) {
          const error = await rejectsCode(FileStore.open(alias, { readOnly }), 'WAL_NOT_A_LOG');
          assert.match(String((error as Error).message), new RegExp(`alias\\.log\\${suffix}`));
        }
        assert.deepEqual(await treeSnapshot(dir), before, `nothing changed (${suffix})`);
      }
    });

    it('opened alone, it keeps its lock and metadata beside the real file', async () => {
      const dir = await realpath(await tempDir());
      const data = join(dir, 'data');
      await mkdir(data);
      const path = join(data, 'f.log');
      const alias = join(dir, 'alias.log');
      await symlink(path, alias); // dangling until the file is made through its real path
      await FileStore.open(path).then((store) => store.close());
      const store = await FileStore.open(alias);
      assert.equal(store.path, alias);
      assert.equal(store.realPath, path);
      const bytes = pattern(300, 1);
      await store.write(0, bytes);
      await store.truncateBefore(100);
      await store.updateMeta({ via: 'alias' });
      // Held through the link, the log is locked for its real path too.
      await rejectsCode(FileStore.open(path), 'WAL_LOCKED');
      assert.deepEqual(await entries(data), ['f.log', 'f.log.lock', 'f.log.meta']);
      assert.deepEqual(await entries(dir), ['alias.log', 'data']);
      await store.close();
      assert.deepEqual(await entries(data), ['f.log', 'f.log.meta']);
      assert.deepEqual(decodeMeta(await readFile(`${path}.meta`), 'm'), {
        via: 'alias',
        'store.head': 100,
      });
      // The same log, whichever path opens it.
      for (const name of [path, alias]) {
        const again = await FileStore.open(name);
        assert.equal(again.head, 100);
        assert.deepEqual(await again.read(100, 200), bytes.subarray(100));
        assert.deepEqual(await again.readMeta(), { via: 'alias' });
        await again.close();
      }
    });

    it('a read-only open through it reads the real file and its metadata, beside a writer', async () => {
      const dir = await realpath(await tempDir());
      const path = join(dir, 'f.log');
      const alias = join(dir, 'alias.log');
      const writer = await FileStore.open(path);
      await writer.write(0, pattern(64, 2));
      await writer.truncateBefore(16);
      await symlink(path, alias);
      const reader = await FileStore.open(alias, { readOnly: true });
      assert.equal(reader.head, 16);
      assert.equal(reader.length, 64);
      assert.deepEqual(await reader.read(16, 48), pattern(64, 2).subarray(16));
      await writer.truncateBefore(32);
      await reader.refresh();
      assert.equal(reader.head, 32);
      await reader.close();
      await writer.close();
      assert.deepEqual(await entries(dir), ['alias.log', 'f.log', 'f.log.meta']);
    });

    it('a dangling link: the open fails, creating nothing (not the file it points to)', async () => {
      const dir = await realpath(await tempDir());
      const alias = join(dir, 'alias.log');
      await symlink(join(dir, 'missing.log'), alias);
      const error = await rejectsCode(FileStore.open(alias), 'WAL_IO');
      assert.equal((error as { errno?: string }).errno, 'EEXIST');
      assert.deepEqual(await entries(dir), ['alias.log']);
      await rejectsCode(FileStore.open(alias, { readOnly: true }), 'WAL_IO');
      assert.deepEqual(await entries(dir), ['alias.log']);
    });

    it('a new log created through a linked directory is locked for both paths', async () => {
      const dir = await realpath(await tempDir());
      const data = join(dir, 'data');
      await mkdir(data);
      const linked = join(dir, 'linked');
      await symlink(data, linked);
      const store = await FileStore.open(join(linked, 'f.log'));
      assert.equal(store.realPath, join(data, 'f.log'));
      await rejectsCode(FileStore.open(join(data, 'f.log')), 'WAL_LOCKED');
      await store.close();
      assert.deepEqual(await entries(data), ['f.log', 'f.log.meta']);
    });
  });

  describe('a hard link to the data file', () => {
    it('a writable open of either name is WAL_LOCKED, naming the path and why; nothing is created', async () => {
      const dir = await realpath(await tempDir());
      const path = join(dir, 'f.log');
      const store = await FileStore.open(path);
      const bytes = pattern(40, 3);
      await store.write(0, bytes);
      await store.sync();
      await store.close();
      const other = join(dir, 'other.log');
      await link(path, other);
      const before = await treeSnapshot(dir);
      for (const name of [other, path]) {
        const error = (await rejectsCode(FileStore.open(name), 'WAL_LOCKED')) as LockedError;
        assert.ok(error instanceof WalError);
        assert.equal(error.path, name);
        assert.equal(error.pid, undefined);
        assert.match(error.message, /cannot be locked: the file has 2 names \(hard links\)/);
        assert.match(error.reason ?? '', /open it read-only/);
        assert.deepEqual(await treeSnapshot(dir), before, `nothing created or changed (${name})`);
      }
      // Read-only needs no lock: it works through either name.
      const reader = await FileStore.open(path, { readOnly: true });
      assert.deepEqual(await reader.read(0, 40), bytes);
      await reader.close();
    });

    it('refused while the other name is open: the holder keeps writing alone', async () => {
      const dir = await realpath(await tempDir());
      const path = join(dir, 'f.log');
      const holder = await FileStore.open(path);
      const other = join(dir, 'other.log');
      await link(path, other);
      await rejectsCode(FileStore.open(other), 'WAL_LOCKED');
      assert.deepEqual(await entries(dir), ['f.log', 'f.log.lock', 'f.log.meta', 'other.log']);
      await holder.write(0, enc.encode('only-holder'));
      await holder.sync();
      await holder.close();
      assert.equal(await readFile(path, 'utf8'), 'only-holder');
    });

    it('a link made while the open runs is seen on the descriptor, under the lock', async () => {
      const dir = await realpath(await tempDir());
      const path = join(dir, 'f.log');
      const other = join(dir, 'other.log');
      await FileStore.open(path).then((store) => store.close());
      const fs = new FaultFs(new NodeFs());
      // After the open examined the path (one name), before it opens the file.
      fs.inject({
        when: (call) => {
          if (call.method === 'lock') linkSync(path, other);
          return undefined;
        },
      });
      const error = (await rejectsCode(FileStore.open(path, { fs }), 'WAL_LOCKED')) as LockedError;
      assert.match(error.message, /^.*f\.log cannot be locked: the file has 2 names/);
      assert.equal(fs.count('links'), 2);
      assert.deepEqual(await entries(dir), ['f.log', 'f.log.meta', 'other.log'], 'lock released');
    });

    it('with the other name gone, the file opens again', async () => {
      const dir = await realpath(await tempDir());
      const path = join(dir, 'f.log');
      await writeFile(path, '');
      await link(path, join(dir, 'other.log'));
      await rejectsCode(FileStore.open(path), 'WAL_LOCKED');
      await new NodeFs().unlink(join(dir, 'other.log'));
      const store = await FileStore.open(path);
      await store.close();
    });
  });

  describe('the Fs calls', () => {
    it('NodeFs.realpath resolves links; links counts names', async () => {
      const dir = await realpath(await tempDir());
      const fs = new NodeFs();
      const path = join(dir, 'f');
      const file = await fs.open(path, 'create');
      await symlink(path, join(dir, 's'));
      assert.equal(await fs.realpath(join(dir, 's')), path);
      assert.equal(await fs.realpath(join(dir, '.', 's')), path);
      await rejectsCode(fs.realpath(join(dir, 'missing')), 'ENOENT');
      await symlink(join(dir, 'nowhere'), join(dir, 'dangling'));
      await rejectsCode(fs.realpath(join(dir, 'dangling')), 'ENOENT');
      await rejectsCode(fs.realpath(join(path, 'below')), 'ENOTDIR');
      assert.equal(await fs.links(file), 1);
      await link(path, join(dir, 'h'));
      assert.equal(await fs.links(file), 2);
      await fs.unlink(join(dir, 'h'));
      await fs.unlink(path);
      assert.equal(await fs.links(file), 0);
      await fs.close(file);
      await rejectsCode(fs.links(file), 'EBADF');
    });

    it('CrashFs.realpath normalises and checks the path; links counts its names (0 once unlinked)', async () => {
      const fs = new CrashFs();
      await fs.mkdir('/d');
      const file = await fs.open('/d/f', 'create');
      assert.equal(await fs.realpath('/d/./x/../f'), '/d/f');
      assert.equal(await fs.realpath('/d'), '/d');
      assert.equal(await fs.realpath('/'), '/');
      await rejectsCode(fs.realpath('/d/missing'), 'ENOENT');
      await rejectsCode(fs.realpath('/e/f'), 'ENOENT');
      await rejectsCode(fs.realpath('/d/f/below'), 'ENOTDIR');
      assert.equal(await fs.links(file), 1);
      await fs.rename('/d/f', '/d/g');
      assert.equal(await fs.links(file), 1);
      await fs.unlink('/d/g');
      assert.equal(await fs.links(file), 0);
      await fs.close(file);
      await rejectsCode(fs.links(file), 'EBADF');
      assert.deepEqual(
        fs.operations.filter((op) => op.call === 'realpath').map((op) => op.error ?? op.result),
        ['/d/f', '/d', '/', 'ENOENT', 'ENOENT', 'ENOTDIR'],
      );
    });

    it('FaultFs passes realpath and links on, and injects faults into them', async () => {
      const fs = new FaultFs(new CrashFs());
      const file = await fs.open('/f', 'create');
      assert.equal(await fs.realpath('/f'), '/f');
      assert.equal(await fs.links(file), 1);
      fs.inject({ method: 'links', fault: 'EIO' });
      fs.inject({ method: 'realpath', fault: { code: 'EACCES' } });
      const error = await rejectsCode(fs.links(file), 'EIO');
      assert.equal((error as NodeJS.ErrnoException).syscall, 'fstat');
      await rejectsCode(fs.realpath('/f'), 'EACCES');
      assert.equal(fs.count('links'), 2);
      assert.equal(fs.count('realpath'), 2);
    });

    it('a failing realpath or link count fails the open with WAL_IO, leaving nothing', async () => {
      const fs = new FaultFs(new CrashFs());
      await fs.mkdir('/d');
      // A new log: its directory is resolved.
      fs.inject({ method: 'realpath', fault: 'EIO' });
      await rejectsCode(FileStore.open('/d/log', { fs }), 'WAL_IO');
      assert.deepEqual(await fs.readdir('/d'), []);
      await FileStore.open('/d/log', { fs }).then((store) => store.close());
      // An existing one: the file is resolved, then its names counted.
      fs.inject({ method: 'realpath', fault: 'EIO' });
      await rejectsCode(FileStore.open('/d/log', { fs }), 'WAL_IO');
      fs.inject({ method: 'links', fault: 'EIO' });
      await rejectsCode(FileStore.open('/d/log', { fs }), 'WAL_IO');
      // The second count, on the descriptor opened for writing, under the lock.
      fs.inject({ method: 'links', at: 2, fault: 'EIO' });
      await rejectsCode(FileStore.open('/d/log', { fs }), 'WAL_IO');
      assert.deepEqual(await fs.readdir('/d'), ['log', 'log.meta']);
      const store = await FileStore.open('/d/log', { fs });
      assert.equal(store.realPath, '/d/log');
      await store.close();
    });
  });
});
