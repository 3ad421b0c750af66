/**
 * `Fs.preadSync`, the synchronous positional read, on every Fs that has one:
 * the same bytes and counts as `pread`, and the same errors, thrown.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import fc from 'fast-check';
import type { Fs, FsFile } from '../src/fs/fs.js';
import { readFull, readFullSync } from '../src/fs/io.js';
import { NodeFs } from '../src/fs/node-fs.js';
import { CrashFs } from '../src/testing/crash-fs.js';
import { FaultFs } from '../src/testing/fault-fs.js';
import { pattern, removeTempDirs, tempDir } from './fs-helpers.js';

/** The reads every Fs with a `preadSync` passes; `where` gives a fresh directory. */
function preadSyncContract(name: string, make: () => Fs, where: () => Promise<string>): void {
  describe(`${name}: preadSync`, () => {
    after(removeTempDirs);

    it('reads what pread reads, at any position and length, 0 at the end', async () => {
      const fs = make();
      const path = join(await where(), 'f');
      const file = await fs.open(path, 'create');
      const contents = pattern(3000, 7);
      await fs.pwrite(file, contents, 0);
      await fc.assert(
        fc.asyncProperty(fc.nat(3100), fc.nat(700), async (position, length) => {
          const sync = new Uint8Array(length);
          const async = new Uint8Array(length);
          const count = fs.preadSync!(file, sync, position);
          assert.equal(count, await fs.pread(file, async, position));
          assert.equal(count, Math.max(0, Math.min(length, contents.length - position)));
          assert.deepEqual(sync, async);
        }),
        { numRuns: 60 },
      );
      assert.equal(fs.preadSync!(file, new Uint8Array(0), 10), 0);
      const whole = new Uint8Array(3100);
      assert.equal(readFullSync(fs, file, whole, 0), await readFull(fs, file, whole.slice(), 0));
      assert.deepEqual(whole.subarray(0, 3000), contents);
      await fs.close(file);
    });

    it('throws EBADF on a closed file and ERR_OUT_OF_RANGE for a bad position', async () => {
      const fs = make();
      const path = join(await where(), 'f');
      const file = await fs.open(path, 'create');
      await fs.pwrite(file, pattern(10, 1), 0);
      assert.throws(() => fs.preadSync!(file, new Uint8Array(1), -2), {
        code: 'ERR_OUT_OF_RANGE',
      });
      await fs.close(file);
      assert.throws(() => fs.preadSync!(file, new Uint8Array(1), 0), { code: 'EBADF' });
    });
  });
}

const onDisk = () => tempDir();
const inMemory = async () => '/';
preadSyncContract('NodeFs', () => new NodeFs(), onDisk);
preadSyncContract('CrashFs', () => new CrashFs(), inMemory);
preadSyncContract('FaultFs over NodeFs', () => new FaultFs(new NodeFs()), onDisk);
preadSyncContract('FaultFs over CrashFs', () => new FaultFs(new CrashFs()), inMemory);

describe('preadSync, per file system', () => {
  after(removeTempDirs);

  it('NodeFs: a file another Fs opened is a TypeError', async () => {
    const foreign = await new CrashFs().open('/x', 'create');
    assert.throws(() => new NodeFs().preadSync(foreign, new Uint8Array(1), 0), TypeError);
  });

  it('CrashFs: sees writes not yet synced, settles at once, traced as preadSync; EBADF after a crash', async () => {
    const fs = new CrashFs();
    const file = await fs.open('/f', 'create');
    await fs.pwrite(file, pattern(8, 3), 0);
    const into = new Uint8Array(8);
    const before = fs.clock;
    assert.equal(fs.preadSync(file, into, 0), 8);
    assert.deepEqual(into, pattern(8, 3));
    const last = fs.operations.at(-1)!;
    assert.equal(last.call, 'preadSync');
    assert.equal(last.result, '8');
    assert.equal(last.settledAt, before + 2);
    // A crash invalidates the files open before it: the next process does
    // not have them, and the killed one runs nothing more.
    const next = fs.processCrash();
    assert.throws(() => next.preadSync(file, into, 0), { code: 'EBADF' });
    assert.throws(() => fs.preadSync(file, into, 0), { code: 'EIO' });
  });

  it('FaultFs: faults by method preadSync (a code throws, short transfers part); none without an inner one', async () => {
    const fs = new FaultFs(new CrashFs());
    const file = await fs.open('/f', 'create');
    await fs.pwrite(file, pattern(8, 5), 0);
    const into = new Uint8Array(8);
    fs.inject({ method: 'preadSync', fault: 'EIO' });
    assert.throws(() => fs.preadSync!(file, into, 0), { code: 'EIO', syscall: 'read' });
    fs.inject({ method: 'preadSync', fault: { short: 3 } });
    assert.equal(fs.preadSync!(file, into, 0), 3);
    fs.inject({ method: 'preadSync', fault: { short: 0 } });
    assert.equal(fs.preadSync!(file, into, 0), 0);
    assert.equal(fs.preadSync!(file, into, 0), 8);
    assert.equal(fs.count('preadSync'), 4);
    assert.equal(fs.count('pread'), 0);
    const { preadSync: _, ...withoutSync } = {
      ...Object.fromEntries(
        (['open', 'close', 'pwrite', 'pread'] as const).map((m) => [m, () => undefined]),
      ),
      preadSync: undefined,
    };
    const plain = new FaultFs(withoutSync as unknown as Fs);
    assert.equal(plain.preadSync, undefined);
    await assert.rejects(
      () => Promise.resolve().then(() => readFullSync(plain, file as FsFile, into, 0)),
      { code: 'ERR_INVALID_ARG_TYPE' },
    );
  });
});
