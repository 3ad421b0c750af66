/**
 * The synchronous pair of `Fs` (`pwriteSync`, `fdatasyncSync`) in every file
 * system: NodeFs does them on the calling thread, CrashFs settles them at
 * once with the durability of their asynchronous forms, FaultFs injects the
 * same faults into them.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { NodeFs } from '../src/fs/node-fs.js';
import { CrashFs } from '../src/testing/crash-fs.js';
import { FaultFs } from '../src/testing/fault-fs.js';
import { removeTempDirs, tempDir } from './fs-helpers.js';

const enc = new TextEncoder();
const text = (data: Uint8Array | undefined): string | undefined =>
  data === undefined ? undefined : new TextDecoder().decode(data);

describe('synchronous Fs calls', () => {
  after(removeTempDirs);

  it('NodeFs: writes and syncs on the calling thread; a closed or foreign file is refused', async () => {
    const fs = new NodeFs();
    const path = join(await tempDir(), 'f');
    const file = await fs.open(path, 'create');
    assert.equal(fs.pwriteSync(file, enc.encode('hello'), 3), 5);
    assert.equal(fs.pwriteSync(file, new Uint8Array(0), 100), 0);
    fs.fdatasyncSync(file);
    assert.equal(text(await readFile(path)), '\0\0\0hello');
    await fs.close(file);
    assert.throws(() => fs.pwriteSync(file, enc.encode('x'), 0), {
      code: 'EBADF',
      syscall: 'write',
    });
    assert.throws(() => fs.fdatasyncSync(file), { code: 'EBADF', syscall: 'fdatasync' });
    assert.throws(() => fs.fdatasyncSync({ path }), TypeError);
  });

  it('CrashFs: a synchronous write is durable once a synchronous sync covers it, not before', async () => {
    const fs = new CrashFs();
    const file = await fs.open('/f', 'create');
    await fs.syncDir('/');
    assert.equal(fs.pwriteSync(file, enc.encode('abc'), 0), 3);
    const before = new Set(
      [...fs.crashStates({ limit: 1000 })].map((s) => text(s.files.get('/f'))),
    );
    assert.ok(before.has(''), 'an unsynced write may be lost');
    fs.fdatasyncSync(file);
    const after = new Set([...fs.crashStates({ limit: 1000 })].map((s) => text(s.files.get('/f'))));
    assert.deepEqual([...after], ['abc']);
    const calls = fs.operations.filter((op) => op.call.endsWith('Sync'));
    assert.deepEqual(
      calls.map((op) => [op.call, op.settledAt! > op.issuedAt]),
      [
        ['pwriteSync', true],
        ['fdatasyncSync', true],
      ],
    );
    await fs.close(file);
    assert.throws(() => fs.pwriteSync(file, enc.encode('x'), 0), { code: 'EBADF' });
    assert.equal(fs.operations.at(-1)!.error, 'EBADF');
  });

  it('FaultFs: injects errors and short writes into them; absent when the inner Fs lacks them', async () => {
    const inner = new CrashFs();
    const fs = new FaultFs(inner);
    const file = await fs.open('/f', 'create');
    fs.inject({ method: 'pwriteSync', fault: 'short' });
    assert.equal(fs.pwriteSync!(file, enc.encode('abcd'), 0), 2);
    fs.inject({ method: 'pwriteSync', fault: { short: 0 } });
    assert.equal(fs.pwriteSync!(file, enc.encode('abcd'), 0), 0);
    fs.inject({ method: 'pwriteSync', fault: 'ENOSPC' });
    assert.throws(() => fs.pwriteSync!(file, enc.encode('abcd'), 0), {
      code: 'ENOSPC',
      syscall: 'write',
    });
    assert.equal(fs.pwriteSync!(file, enc.encode('wxyz'), 0), 4);
    fs.inject({ method: 'fdatasyncSync' });
    assert.throws(() => fs.fdatasyncSync!(file), { code: 'EIO', syscall: 'fdatasync' });
    fs.fdatasyncSync!(file);
    assert.equal(fs.count('pwriteSync'), 4);
    assert.equal(fs.count('fdatasyncSync'), 2);
    const bare = new FaultFs({ ...inner, open: inner.open.bind(inner) } as never);
    assert.equal(bare.pwriteSync, undefined);
    assert.equal(bare.fdatasyncSync, undefined);
  });
});
