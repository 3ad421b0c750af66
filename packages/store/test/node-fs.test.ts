import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, open, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { errorCode, type LockedError } from '@wal/errors';
import fc from 'fast-check';
import { FileStore } from '../src/file-store.js';
import type { FsFile } from '../src/fs/fs.js';
import { readLockHolder } from '../src/fs/lock-file.js';
import { NodeFs } from '../src/fs/node-fs.js';
import { SegmentedStore } from '../src/segmented-store.js';
import { pattern, rejectsCode, removeTempDirs, tempDir } from './fs-helpers.js';

const nodeFsModule = pathToFileURL(
  join(fileURLToPath(new URL('.', import.meta.url)), '../src/fs/node-fs.js'),
).href;

/** Spawns a node process that takes `lock` through NodeFs and waits; resolves once it holds it. */
async function lockInChild(lock: string): Promise<{ kill: () => Promise<void>; pid: number }> {
  const script = `const { NodeFs } = await import(${JSON.stringify(nodeFsModule)});
await new NodeFs().lock(${JSON.stringify(lock)});
process.stdout.write('locked\\n');
setInterval(() => {}, 1000);`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (chunk: Buffer) => {
      if (chunk.toString().includes('locked')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`child exited early (${code})`)));
  });
  return {
    pid: child.pid!,
    kill: async () => {
      child.kill('SIGKILL');
      await exited;
    },
  };
}

describe('NodeFs', () => {
  after(removeTempDirs);
  const fs = new NodeFs();

  it('does positional I/O, sizes, truncation and directory calls', async () => {
    const dir = await tempDir();
    const path = join(dir, 'f');
    await rejectsCode(fs.open(path, 'write'), 'ENOENT');
    const file = await fs.open(path, 'createExclusive');
    await rejectsCode(fs.open(path, 'createExclusive'), 'EEXIST');
    assert.equal(await fs.pwrite(file, Buffer.from('hello'), 3), 5);
    assert.equal(await fs.size(file), 8);
    const into = new Uint8Array(8);
    assert.equal(await fs.pread(file, into, 0), 8);
    assert.deepEqual([...into.subarray(0, 3)], [0, 0, 0]);
    assert.equal(await fs.pread(file, into, 100), 0);
    await fs.fdatasync(file);
    await fs.ftruncate(file, 4);
    assert.equal(await fs.size(file), 4);
    await fs.close(file);
    const again = await fs.open(path, 'create');
    assert.equal(await fs.size(again), 4, "'create' keeps an existing file");
    await fs.close(again);
    const reader = await fs.open(path, 'read');
    await assert.rejects(fs.pwrite(reader, Buffer.from('x'), 0));
    await fs.close(reader);
    await fs.rename(path, `${path}2`);
    assert.deepEqual(await fs.readdir(dir), ['f2']);
    await fs.unlink(`${path}2`);
    assert.equal(await fs.mkdir(join(dir, 'd')), true);
    assert.equal(await fs.mkdir(join(dir, 'd')), false);
    await rejectsCode(fs.mkdir(join(dir, 'no', 'd')), 'ENOENT');
    await fs.syncDir(join(dir, 'd'));
    await rejectsCode(fs.syncDir(join(dir, 'missing')), 'ENOENT');
    const foreign = { path: 'x' };
    assert.throws(() => fs.fdatasync(foreign), TypeError);
    assert.throws(() => fs.ftruncate(foreign, 0), TypeError);
    await assert.rejects(fs.pwrite(foreign, Buffer.from('x'), 0), TypeError);
    await assert.rejects(fs.pread(foreign, new Uint8Array(1), 0), TypeError);
    await assert.rejects(fs.size(foreign), TypeError);
    await assert.rejects(fs.close(foreign), TypeError);
  });

  describe('close', () => {
    /** Each file call, by the system call a closed FileHandle names in its error. */
    const calls: Record<string, (file: FsFile) => Promise<unknown>> = {
      write: (file) => fs.pwrite(file, Buffer.from('late'), 0),
      read: (file) => fs.pread(file, new Uint8Array(4), 0),
      fdatasync: (file) => fs.fdatasync(file),
      ftruncate: (file) => fs.ftruncate(file, 0),
      fstat: (file) => fs.size(file),
    };

    it('a call on a closed file rejects as on a closed FileHandle, and never reaches a file opened since', async () => {
      const dir = await tempDir();
      const handle = await open(join(dir, 'reference'), 'w+');
      await handle.close();
      const file = await fs.open(join(dir, 'old'), 'create');
      await fs.close(file);
      // The closed descriptor's number is free again: the next open most likely reuses it.
      const reused = await fs.open(join(dir, 'new'), 'create');
      await fs.pwrite(reused, Buffer.from('kept'), 0);
      const reference = {
        write: handle.write(Buffer.from('late'), 0, 4, 0),
        read: handle.read(new Uint8Array(4), 0, 4, 0),
        fdatasync: handle.datasync(),
        ftruncate: handle.truncate(0),
        fstat: handle.stat(),
      };
      for (const [syscall, call] of Object.entries(calls)) {
        const expected = await rejectsCode(reference[syscall as keyof typeof reference], 'EBADF');
        const error = await rejectsCode(call(file), 'EBADF');
        assert.equal(error.message, expected.message);
        assert.equal((error as NodeJS.ErrnoException).syscall, syscall);
        assert.equal((expected as NodeJS.ErrnoException).syscall, syscall);
      }
      await fs.close(file); // closing again is harmless
      assert.equal(await fs.size(reused), 4);
      assert.equal(await readFile(join(dir, 'new'), 'utf8'), 'kept');
      await fs.close(reused);
    });

    it('an argument refused before any I/O rejects, and does not keep the file from closing', async () => {
      const file = await fs.open(join(await tempDir(), 'f'), 'create');
      await rejectsCode(fs.pread(file, new Uint8Array(4), 1.5), 'ERR_OUT_OF_RANGE');
      await fs.close(file);
    });

    it('waits for the calls in flight, which complete; calls made once closing has begun reject', async () => {
      const dir = await tempDir();
      let run = 0;
      await fc.assert(
        fc.asyncProperty(
          fc.array(fc.constantFrom(...Object.keys(calls), 'write'), {
            minLength: 0,
            maxLength: 12,
          }),
          fc.array(fc.constantFrom(...Object.keys(calls)), { minLength: 1, maxLength: 4 }),
          async (before, after) => {
            const path = join(dir, `f${run++}`);
            const file = await fs.open(path, 'createExclusive');
            const settled: string[] = [];
            const inFlight = before.map((syscall, i) =>
              (syscall === 'write'
                ? fs.pwrite(file, pattern(100, i), i * 100)
                : syscall === 'ftruncate'
                  ? fs.ftruncate(file, 2000) // beyond every write: keeps their outcome certain
                  : calls[syscall]!(file)
              ).then(() => settled.push(`${syscall} ${i}`)),
            );
            const writes = before.flatMap((syscall, i) => (syscall === 'write' ? [i] : []));
            const closed = fs.close(file).then(() => settled.push('close'));
            const late = after.map((syscall) => rejectsCode(calls[syscall]!(file), 'EBADF'));
            await Promise.all([...inFlight, closed, ...late]);
            assert.equal(settled.at(-1), 'close', settled.join(', '));
            assert.equal(settled.length, before.length + 1);
            const content = await readFile(path);
            for (const i of writes) {
              assert.deepEqual(
                content.subarray(i * 100, i * 100 + 100),
                Buffer.from(pattern(100, i)),
              );
            }
          },
        ),
        { numRuns: 40 },
      );
    });
  });

  describe('lock', () => {
    it('refuses a second holder in the same process, and releases idempotently', async () => {
      const path = join(await tempDir(), 'lock');
      const lock = await fs.lock(path);
      const record = JSON.parse(await readFile(path, 'utf8')) as { pid: number; token: string };
      assert.equal(record.pid, process.pid);
      const error = await rejectsCode(fs.lock(path), 'WAL_LOCKED');
      assert.match(error.message, new RegExp(`locked by this process \\(pid ${process.pid}\\)`));
      assert.equal((error as LockedError).pid, process.pid);
      assert.equal((error as LockedError).alive, true);
      await lock.release();
      await lock.release();
      await rejectsCode(stat(path), 'ENOENT');
      const again = await fs.lock(path);
      await again.release();
    });

    it('is refused while another process holds it, and recovered once that process is killed', async () => {
      const path = join(await tempDir(), 'lock');
      const child = await lockInChild(path);
      try {
        const error = (await rejectsCode(fs.lock(path), 'WAL_LOCKED')) as LockedError;
        // The holder, named from its lock file.
        assert.equal(error.pid, child.pid);
        assert.equal(error.host, hostname());
        assert.equal(error.alive, true);
        assert.equal(error.message, `${path} is locked by process ${child.pid}, which is running`);
        assert.deepEqual(await readLockHolder(path), {
          pid: child.pid,
          host: hostname(),
          state: 'alive',
        });
      } finally {
        await child.kill();
      }
      const lock = await fs.lock(path);
      const record = JSON.parse(await readFile(path, 'utf8')) as { pid: number };
      assert.equal(record.pid, process.pid);
      await lock.release();
    });

    it('a store lock left by a killed process is recovered by both file stores', async () => {
      const dir = await tempDir();
      const child = await lockInChild(join(dir, 'log.lock'));
      await rejectsCode(FileStore.open(join(dir, 'log')), 'WAL_LOCKED');
      await child.kill();
      const store = await FileStore.open(join(dir, 'log'));
      await store.close();
      const segDir = join(dir, 'seg');
      await fs.mkdir(segDir);
      const other = await lockInChild(join(segDir, 'lock'));
      await rejectsCode(SegmentedStore.open(segDir), 'WAL_LOCKED');
      await other.kill();
      const segmented = await SegmentedStore.open(segDir);
      await segmented.close();
    });

    it('takes over a lock file emptied by a power loss or naming a dead process or a reused pid', async () => {
      const path = join(await tempDir(), 'lock');
      for (const content of [
        '',
        '\0\0\0\0\0\0\0\0',
        JSON.stringify({ pid: 2 ** 22 + 12345, token: 't', host: hostname() }),
        JSON.stringify({ pid: process.pid, token: 't', host: hostname(), start: 'not-my-start' }),
      ]) {
        await writeFile(path, content);
        const lock = await fs.lock(path);
        await lock.release();
      }
      // A holder on another host, or a live pid without start time, is respected.
      for (const [content, pid, alive] of [
        [
          JSON.stringify({ pid: 2 ** 22 + 12345, token: 't', host: `${hostname()}-elsewhere` }),
          2 ** 22 + 12345,
          undefined,
        ],
        [JSON.stringify({ pid: process.pid, token: 't', host: hostname() }), process.pid, true],
        [JSON.stringify({ pid: 1, token: 't', host: hostname() }), 1, true],
      ] as const) {
        await writeFile(path, content);
        const error = (await rejectsCode(fs.lock(path), 'WAL_LOCKED')) as LockedError;
        assert.equal(error.pid, pid);
        assert.equal(error.alive, alive);
        if (alive === undefined)
          assert.match(
            error.message,
            /on host .*-elsewhere \(whether it still runs cannot be checked/,
          );
      }
    });

    it('leaves no temporary record file when writing the record fails (the file system full)', async () => {
      // A child whose file-size limit is 0: creating the record file works,
      // writing the record into it fails (EFBIG, as ENOSPC on a full disk).
      const dir = await tempDir();
      const path = join(dir, 'lock');
      const script = `const { NodeFs } = await import(${JSON.stringify(nodeFsModule)});
try { await new NodeFs().lock(${JSON.stringify(path)}); process.stdout.write('locked'); }
catch (error) { process.stdout.write(String(error.code)); }`;
      const child = spawn(
        'sh',
        ['-c', 'ulimit -f 0 && exec "$0" --input-type=module -e "$1"', process.execPath, script],
        { stdio: ['ignore', 'pipe', 'inherit'] },
      );
      let out = '';
      child.stdout.on('data', (chunk: Buffer) => {
        out += chunk.toString();
      });
      await new Promise((resolve) => child.once('exit', resolve));
      assert.equal(out, 'EFBIG');
      assert.deepEqual(await readdir(dir), [], 'no lock file, no temporary file left');
    });

    it('never takes over or removes a file that is not a lock file of ours', async () => {
      const dir = await tempDir();
      const path = join(dir, 'lock');
      for (const content of ['garbage', '4242\n', '{"pid":1.5}', '{"pid":7,"host":"h"}', ' ']) {
        await writeFile(path, content);
        const error = await rejectsCode(fs.lock(path), 'WAL_NOT_A_LOG');
        assert.match(error.message, /is not a log: a file that is not a lock file of a log/);
        assert.equal(await readFile(path, 'utf8'), content);
        assert.deepEqual(await readdir(dir), ['lock'], 'nothing created, nothing removed');
      }
    });

    it('among openers racing over a stale lock, exactly one wins', async () => {
      const path = join(await tempDir(), 'lock');
      for (let round = 0; round < 30; round++) {
        const stale = JSON.stringify({
          pid: 2 ** 22 + 12345,
          token: `s${round}`,
          host: hostname(),
        });
        await writeFile(path, round % 3 === 0 ? '' : stale);
        const racers = Array.from({ length: 6 }, () => new NodeFs().lock(path));
        const results = await Promise.allSettled(racers);
        const held = results.filter((r) => r.status === 'fulfilled');
        const refused = results.filter(
          (r) => r.status === 'rejected' && errorCode(r.reason) === 'WAL_LOCKED',
        );
        assert.equal(held.length, 1, `round ${round}: exactly one racer takes the stale lock`);
        assert.equal(refused.length, 5);
        await (held[0] as PromiseFulfilledResult<{ release(): Promise<void> }>).value.release();
        await rejectsCode(stat(path), 'ENOENT');
      }
    });

    it('removes a take-over guard left by a dead process', async () => {
      const path = join(await tempDir(), 'lock');
      const dead = JSON.stringify({ pid: 2 ** 22 + 12345, token: 'd', host: hostname() });
      await writeFile(path, dead);
      await writeFile(`${path}.break`, dead);
      const lock = await fs.lock(path);
      await lock.release();
      await rejectsCode(stat(`${path}.break`), 'ENOENT');
    });

    it('readLockHolder reads who holds a lock file and whether it runs, changing nothing', async () => {
      const dir = await tempDir();
      const path = join(dir, 'lock');
      assert.equal(await readLockHolder(path), undefined, 'no lock file');
      const lock = await fs.lock(path);
      const text = await readFile(path, 'utf8');
      assert.deepEqual(await readLockHolder(path), {
        pid: process.pid,
        host: hostname(),
        state: 'alive',
      });
      assert.equal(await readFile(path, 'utf8'), text, 'the lock file is unchanged');
      await lock.release();
      const dead = 2 ** 22 + 12345;
      const cases: Array<[string, unknown]> = [
        [
          JSON.stringify({ pid: dead, token: 't', host: hostname() }),
          { pid: dead, host: hostname(), state: 'dead' },
        ],
        [
          JSON.stringify({ pid: process.pid, token: 't', host: hostname(), start: 'other' }),
          {
            pid: process.pid,
            host: hostname(),
            state: process.platform === 'linux' ? 'dead' : 'alive',
          },
        ],
        [
          JSON.stringify({ pid: 7, token: 't', host: 'elsewhere' }),
          { pid: 7, host: 'elsewhere', state: 'unknown' },
        ],
        // Emptied by a power loss: stale.
        ['', { pid: undefined, host: undefined, state: 'unreadable' }],
        ['\0\0\0', { pid: undefined, host: undefined, state: 'unreadable' }],
        // Not a lock file of ours: never taken over.
        ['{"pid":7,"host":"elsewhere"}', { pid: undefined, host: undefined, state: 'foreign' }],
        ['4242\n', { pid: undefined, host: undefined, state: 'foreign' }],
        ['{not json', { pid: undefined, host: undefined, state: 'foreign' }],
        ['null', { pid: undefined, host: undefined, state: 'foreign' }],
        ['{"pid":0,"host":"h"}', { pid: undefined, host: undefined, state: 'foreign' }],
        ['{"pid":1.5,"host":"h"}', { pid: undefined, host: undefined, state: 'foreign' }],
        ['{"pid":3}', { pid: undefined, host: undefined, state: 'foreign' }],
      ];
      for (const [content, expected] of cases) {
        await writeFile(path, content);
        assert.deepEqual(await readLockHolder(path), expected, content);
      }
      const folder = join(dir, 'folder');
      await mkdir(folder);
      assert.deepEqual(await readLockHolder(folder), {
        pid: undefined,
        host: undefined,
        state: 'foreign',
      });
      // Anything but a missing file, a file or a directory rejects.
      await rejectsCode(readLockHolder(join(path, 'below-a-file')), 'ENOTDIR');
    });

    it('release leaves a lock file that is no longer its own', async () => {
      const path = join(await tempDir(), 'lock');
      const lock = await fs.lock(path);
      await writeFile(path, JSON.stringify({ pid: process.pid, token: 'someone-else', host: 'h' }));
      await lock.release();
      assert.ok((await stat(path)).isFile());
    });
  });
});
