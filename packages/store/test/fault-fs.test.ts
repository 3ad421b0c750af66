import assert from 'node:assert/strict';
import { stat } from 'node:fs/promises';
import { constants as os } from 'node:os';
import { join } from 'node:path';
import { FS_METHODS, type Fs } from '../src/fs/fs.js';
import { NodeFs } from '../src/fs/node-fs.js';
import { CrashFs } from '../src/testing/crash-fs.js';
import { FaultFs, FSYNC_METHODS, systemError } from '../src/testing/fault-fs.js';
import { rejectsCode, removeTempDirs, tempDir } from './fs-helpers.js';

async function setup(): Promise<{ fs: FaultFs; dir: string; path: string }> {
  const dir = await tempDir();
  return { fs: new FaultFs(new NodeFs()), dir, path: join(dir, 'f') };
}

describe('FS_METHODS', () => {
  it('names every required Fs method once, and each file system has them all', () => {
    assert.ok(Object.isFrozen(FS_METHODS));
    assert.equal(new Set(FS_METHODS).size, FS_METHODS.length);
    for (const optional of ['preadSync', 'pwriteSync', 'fdatasyncSync', 'pwriteDurable', 'linksAt'])
      assert.ok(!FS_METHODS.includes(optional as never), optional);
    const all: Fs[] = [new NodeFs(), new CrashFs(), new FaultFs(new CrashFs())];
    for (const fs of all) {
      for (const method of FS_METHODS)
        assert.equal(typeof fs[method], 'function', `${fs.constructor.name}.${method}`);
    }
  });
});

describe('FaultFs', () => {
  after(removeTempDirs);

  it('passes calls through and counts and logs them', async () => {
    const { fs, dir, path } = await setup();
    const file = await fs.open(path, 'create');
    assert.equal(await fs.pwrite(file, Buffer.from('abcd'), 0), 4);
    const into = new Uint8Array(4);
    assert.equal(await fs.pread(file, into, 0), 4);
    await fs.fdatasync(file);
    await fs.ftruncate(file, 2);
    assert.equal(await fs.size(file), 2);
    await fs.close(file);
    await fs.rename(path, `${path}2`);
    assert.deepEqual(await fs.readdir(dir), ['f2']);
    await fs.unlink(`${path}2`);
    assert.equal(await fs.mkdir(join(dir, 'd')), true);
    await fs.syncDir(dir);
    const lock = await fs.lock(join(dir, 'lock'));
    await lock.release();
    assert.equal(fs.count(), 13);
    assert.equal(fs.count('pwrite'), 1);
    assert.equal(fs.count('lock'), 1);
    assert.deepEqual(
      fs.calls.map((c) => c.method),
      [
        'open',
        'pwrite',
        'pread',
        'fdatasync',
        'ftruncate',
        'size',
        'close',
        'rename',
        'readdir',
        'unlink',
        'mkdir',
        'syncDir',
        'lock',
      ],
    );
    assert.deepEqual(fs.calls[7]!.args, [`${path}2`]);
    assert.equal(fs.calls[1]!.methodIndex, 1);
    fs.resetCounts();
    assert.equal(fs.count(), 0);
  });

  it('passes the permissions of created files, directories and locks through', async () => {
    const { fs, dir, path } = await setup();
    const old = process.umask(0o022);
    try {
      await fs.close(await fs.open(path, 'create', 0o600));
      await fs.mkdir(join(dir, 'd'), 0o700);
      const lock = await fs.lock(join(dir, 'lock'), 0o600);
      await lock.release();
      const mode = async (p: string) => (await stat(p)).mode & 0o777;
      assert.equal(await mode(path), 0o600);
      assert.equal(await mode(join(dir, 'd')), 0o700);
    } finally {
      process.umask(old);
    }
  });

  it('fails the N-th call overall, once, with a Node-style error', async () => {
    const { fs, dir } = await setup();
    const rule = fs.inject({ at: 3, fault: 'EIO' });
    await fs.readdir(dir);
    await fs.readdir(dir);
    const error = (await rejectsCode(fs.syncDir(dir), 'EIO')) as NodeJS.ErrnoException;
    assert.equal(error.syscall, 'fsync');
    assert.equal(error.path, dir);
    assert.equal(error.errno, -5);
    assert.equal(rule.fired, 1);
    await fs.syncDir(dir);
    assert.deepEqual(fs.calls[2]!.fault, 'EIO');
    assert.equal(fs.calls[3]!.fault, undefined);
  });

  it('fails the N-th call of given methods, persistently if asked', async () => {
    const { fs, dir, path } = await setup();
    fs.inject({ method: FSYNC_METHODS, at: 2, fault: 'EIO', persistent: true });
    const file = await fs.open(path, 'create');
    await fs.fdatasync(file);
    await fs.readdir(dir); // not watched
    await rejectsCode(fs.syncDir(dir), 'EIO');
    await rejectsCode(fs.fdatasync(file), 'EIO');
    await rejectsCode(fs.syncDir(dir), 'EIO');
    fs.clear();
    await fs.fdatasync(file);
    await fs.close(file);
  });

  it('injects ENOSPC, custom codes and short writes and reads', async () => {
    const { fs, path } = await setup();
    const file = await fs.open(path, 'create');
    fs.inject({ method: 'pwrite', fault: 'ENOSPC' });
    const error = (await rejectsCode(
      fs.pwrite(file, Buffer.from('abcd'), 0),
      'ENOSPC',
    )) as NodeJS.ErrnoException;
    assert.equal(error.syscall, 'write');
    fs.inject({ method: 'pwrite', fault: 'short' });
    assert.equal(await fs.pwrite(file, Buffer.from('abcd'), 0), 2);
    fs.inject({ method: 'pwrite', fault: { short: 0 } });
    assert.equal(await fs.pwrite(file, Buffer.from('abcd'), 0), 0);
    fs.inject({ method: 'pread', fault: { short: 1 } });
    const into = new Uint8Array(2);
    assert.equal(await fs.pread(file, into, 0), 1);
    assert.equal(into[0], 'a'.charCodeAt(0));
    fs.inject({ method: 'size', fault: { code: 'EBADF' } });
    const own = (await rejectsCode(fs.size(file), 'EBADF')) as NodeJS.ErrnoException;
    assert.equal(own.syscall, 'fstat', "the method's own system call");
    fs.inject({ method: 'size', fault: { code: 'EMFILE', syscall: 'open' } });
    const named = (await rejectsCode(fs.size(file), 'EMFILE')) as NodeJS.ErrnoException;
    assert.equal(named.syscall, 'open', 'the system call the fault names');
    assert.equal(named.errno, -os.errno.EMFILE);
    fs.inject({ method: 'size', fault: 'short' }); // ignored off pwrite/pread
    assert.equal(await fs.size(file), 2);
    await fs.close(file);
    assert.equal(systemError('EWHATEVER', 'open').errno, undefined);
  });

  it('fails where a predicate says, seeing method, path and arguments', async () => {
    const { fs, dir, path } = await setup();
    const seen: string[] = [];
    const rule = fs.inject({
      when: (call) => {
        seen.push(`${call.method}:${call.index}`);
        return call.method === 'pwrite' && (call.args[1] as number) >= 100 ? 'ENOSPC' : undefined;
      },
    });
    const file = await fs.open(path, 'create');
    await fs.pwrite(file, Buffer.from('x'), 0);
    await rejectsCode(fs.pwrite(file, Buffer.from('x'), 100), 'ENOSPC');
    await fs.pwrite(file, Buffer.from('x'), 100); // once: the rule is spent
    assert.equal(rule.fired, 1);
    assert.deepEqual(seen, ['open:1', 'pwrite:2', 'pwrite:3']);
    const persistent = fs.inject({
      method: 'syncDir',
      when: () => true,
      fault: 'EIO',
      persistent: true,
      at: 2,
    });
    await fs.syncDir(dir);
    await rejectsCode(fs.syncDir(dir), 'EIO');
    await rejectsCode(fs.syncDir(dir), 'EIO');
    persistent.remove();
    await fs.syncDir(dir);
    fs.inject({ when: () => false });
    await fs.syncDir(dir);
    await fs.close(file);
  });

  it('fails the next watched call when given neither at nor when', async () => {
    const { fs, dir } = await setup();
    fs.inject({ method: 'readdir' });
    await rejectsCode(fs.readdir(dir), 'EIO');
    await fs.readdir(dir);
  });

  it('validates its arguments', () => {
    assert.throws(() => new FaultFs(null as never), { code: 'ERR_INVALID_ARG_TYPE' });
    const fs = new FaultFs(new NodeFs());
    assert.throws(() => fs.inject(null as never), { code: 'ERR_INVALID_ARG_TYPE' });
    assert.throws(() => fs.inject({ at: 0 }), { code: 'ERR_OUT_OF_RANGE' });
    assert.throws(() => fs.inject({ when: 1 as never }), { code: 'ERR_INVALID_ARG_TYPE' });
    assert.throws(() => fs.inject({ fault: 'EBAD' as never }), { code: 'ERR_INVALID_ARG_VALUE' });
    assert.throws(() => fs.inject({ fault: { short: -1 } }), { code: 'ERR_INVALID_ARG_VALUE' });
    for (const syscall of ['', 1]) {
      assert.throws(() => fs.inject({ fault: { code: 'EIO', syscall: syscall as never } }), {
        code: 'ERR_INVALID_ARG_VALUE',
      });
    }
    assert.throws(() => fs.inject({ method: 'nope' as never }), { code: 'ERR_INVALID_ARG_VALUE' });
  });
});
