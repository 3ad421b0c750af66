import assert from 'node:assert/strict';
import { isWalError, LockedError } from '@wal/errors';
import type { FsFile } from '@wal/store';
import { CrashFs, type CrashState } from '@wal/store/testing';
import fc from 'fast-check';

const enc = new TextEncoder();
const dec = new TextDecoder();
const bytes = (text: string): Uint8Array => enc.encode(text);
const text = (data: Uint8Array | undefined): string | undefined =>
  data === undefined ? undefined : dec.decode(data);

/** All states, exhaustively, of a small trace. */
function all(fs: CrashFs, options: Parameters<CrashFs['crashStates']>[0] = {}): CrashState[] {
  const states = fs.crashStates({ limit: 100_000, ...options });
  assert.ok(states.exhaustive, `expected an exhaustive enumeration, count ${states.count}`);
  return [...states];
}

function fileTexts(states: readonly CrashState[], path: string): Set<string | undefined> {
  return new Set(states.map((state) => text(state.files.get(path))));
}

function hexOf(data: Uint8Array): string {
  return Buffer.from(data).toString('hex');
}

async function rejectsWith(promise: Promise<unknown>, code: string, syscall?: string) {
  await assert.rejects(promise, (error: NodeJS.ErrnoException) => {
    assert.ok(error instanceof Error);
    assert.equal(error.code, code);
    if (syscall !== undefined) assert.equal(error.syscall, syscall);
    return true;
  });
}

/** A file created and dir-synced under `/`, empty and durable. */
async function durableEmpty(fs: CrashFs, path = '/f'): Promise<FsFile> {
  const file = await fs.open(path, 'create');
  await fs.syncDir('/');
  return file;
}

/**
 * A machine about to crash: `/d/LOCK` held, `/d/log` durable as `durable`
 * then `+pending` in the page cache only, and a write of `!` at 20 in flight.
 */
async function beforeACrash(): Promise<{
  fs: CrashFs;
  file: FsFile;
  held: { release(): Promise<void> };
  inFlight: Promise<number>;
}> {
  const fs = new CrashFs();
  await fs.mkdir('/d');
  await fs.syncDir('/');
  const held = await fs.lock('/d/LOCK');
  const file = await fs.open('/d/log', 'create');
  await fs.syncDir('/d');
  await fs.pwrite(file, bytes('durable'), 0);
  await fs.fdatasync(file);
  await fs.pwrite(file, bytes('+pending'), 7); // in the page cache
  const inFlight = fs.pwrite(file, bytes('!'), 20); // issued before the crash
  return { fs, file, held, inFlight };
}

/**
 * Makes every call code still running from before a crash may make on `fs`:
 * through its handle, its lock and by path (creating, renaming, unlinking,
 * writing and syncing a new file, making directories); asserts that each
 * fails with `EIO`.
 */
async function assertEveryCallFails(
  fs: CrashFs,
  file: FsFile,
  held: { release(): Promise<void> },
): Promise<void> {
  const calls: Array<[string, () => unknown]> = [
    ['open', () => fs.open('/d/meta.tmp', 'create')],
    ['open', () => fs.open('/d/log', 'write')],
    ['open', () => fs.open('/d/log', 'read')],
    ['pwrite', () => fs.pwrite(file, bytes('x'), 0)],
    ['pwriteDurable', () => fs.pwriteDurable(file, bytes('x'), 0)],
    ['pwriteSync', () => fs.pwriteSync(file, bytes('x'), 0)],
    ['pread', () => fs.pread(file, new Uint8Array(1), 0)],
    ['preadSync', () => fs.preadSync(file, new Uint8Array(1), 0)],
    ['fdatasync', () => fs.fdatasync(file)],
    ['fdatasyncSync', () => fs.fdatasyncSync(file)],
    ['ftruncate', () => fs.ftruncate(file, 0)],
    ['size', () => fs.size(file)],
    ['close', () => fs.close(file)],
    ['rename', () => fs.rename('/d/log', '/d/moved')],
    ['unlink', () => fs.unlink('/d/log')],
    ['mkdir', () => fs.mkdir('/e')],
    ['readdir', () => fs.readdir('/d')],
    ['syncDir', () => fs.syncDir('/d')],
    ['lock', () => fs.lock('/d/OTHER')],
    ['release', () => held.release()],
    ['reset', () => fs.reset({ files: new Map([['/d/log', bytes('reset')]]) })],
  ];
  for (const [call, run] of calls) {
    let result: unknown;
    try {
      result = run();
    } catch (error) {
      assert.equal((error as NodeJS.ErrnoException).code, 'EIO', (error as Error).message);
      assert.equal((error as NodeJS.ErrnoException).syscall, call);
      continue;
    }
    await rejectsWith(result as Promise<unknown>, 'EIO', call);
  }
}

describe('CrashFs', () => {
  describe('as a file system', () => {
    it('creates, writes, reads, lists and sizes', async () => {
      const fs = new CrashFs();
      assert.equal(await fs.mkdir('/d'), true);
      assert.equal(await fs.mkdir('d'), false, 'relative paths resolve from /');
      assert.equal(await fs.mkdir('/'), false);
      const file = await fs.open('/d/../d/x', 'createExclusive');
      assert.equal(file.path, '/d/x');
      assert.equal(await fs.pwrite(file, bytes('hello'), 2), 5);
      assert.equal(await fs.pwrite(file, new Uint8Array(0), 100), 0);
      assert.equal(await fs.size(file), 7);
      const into = new Uint8Array(10);
      assert.equal(await fs.pread(file, into, 0), 7);
      assert.deepEqual(into.subarray(0, 7), Uint8Array.of(0, 0, ...bytes('hello')));
      assert.equal(await fs.pread(file, into, 7), 0);
      await fs.ftruncate(file, 3);
      assert.equal(await fs.size(file), 3);
      await fs.ftruncate(file, 5);
      assert.equal(await fs.pread(file, into, 0), 5);
      assert.deepEqual(into.subarray(0, 5), Uint8Array.of(0, 0, 104, 0, 0));
      assert.deepEqual(await fs.readdir('/'), ['d']);
      assert.deepEqual(await fs.readdir('/d'), ['x']);
      await fs.rename('/d/x', '/y');
      await fs.rename('/y', '/y');
      assert.deepEqual(await fs.readdir('/d'), []);
      const again = await fs.open('/y', 'read');
      assert.equal(await fs.size(again), 5);
      await fs.unlink('/y');
      assert.deepEqual(await fs.readdir('/'), ['d']);
      // The unlinked inode lives on for its open handles.
      assert.equal(await fs.pwrite(file, bytes('!'), 0), 1);
      await fs.close(file);
      await fs.close(again);
      const snapshot = fs.snapshot();
      assert.deepEqual([...snapshot.dirs], ['/', '/d']);
      assert.equal(snapshot.files.size, 0);
    });

    it('moves directories with their contents and replaces files atomically', async () => {
      const fs = new CrashFs();
      await fs.mkdir('/a');
      await fs.mkdir('/b');
      const x = await fs.open('/a/x', 'create');
      await fs.pwrite(x, bytes('new'), 0);
      const y = await fs.open('/b/y', 'create');
      await fs.pwrite(y, bytes('old'), 0);
      await fs.rename('/a/x', '/b/y');
      await fs.rename('/a', '/c');
      await fs.mkdir('/e');
      await fs.rename('/c', '/e');
      const snapshot = fs.snapshot();
      assert.deepEqual([...snapshot.dirs], ['/', '/b', '/e']);
      assert.deepEqual([...snapshot.files.keys()], ['/b/y']);
      assert.equal(text(snapshot.files.get('/b/y')), 'new');
    });

    it('fails like node:fs, with code and syscall', async () => {
      const fs = new CrashFs();
      const file = await fs.open('/f', 'create');
      await fs.mkdir('/d');
      await fs.mkdir('/d/sub');
      await rejectsWith(fs.open('/missing', 'read'), 'ENOENT', 'open');
      await rejectsWith(fs.open('/missing', 'write'), 'ENOENT', 'open');
      await rejectsWith(fs.open('/no/such', 'create'), 'ENOENT', 'open');
      await rejectsWith(fs.open('/f/x', 'create'), 'ENOTDIR', 'open');
      await rejectsWith(fs.open('/f', 'createExclusive'), 'EEXIST', 'open');
      await rejectsWith(fs.open('/d', 'read'), 'EISDIR', 'open');
      await rejectsWith(fs.open('/', 'create'), 'EISDIR', 'open');
      await rejectsWith(fs.open('/g', 'bogus' as 'read'), 'EINVAL', 'open');
      await rejectsWith(fs.mkdir('/f'), 'EEXIST', 'mkdir');
      await rejectsWith(fs.mkdir('/no/such'), 'ENOENT', 'mkdir');
      await rejectsWith(fs.readdir('/f'), 'ENOTDIR', 'scandir');
      await rejectsWith(fs.readdir('/nope'), 'ENOENT', 'scandir');
      await rejectsWith(fs.readdir('/f/x'), 'ENOTDIR', 'scandir');
      await rejectsWith(fs.syncDir('/f'), 'ENOTDIR', 'fsync');
      await rejectsWith(fs.unlink('/d'), 'EISDIR', 'unlink');
      await rejectsWith(fs.unlink('/'), 'EISDIR', 'unlink');
      await rejectsWith(fs.unlink('/nope'), 'ENOENT', 'unlink');
      await rejectsWith(fs.rename('/nope', '/x'), 'ENOENT', 'rename');
      await rejectsWith(fs.rename('/f', '/no/x'), 'ENOENT', 'rename');
      await rejectsWith(fs.rename('/f', '/d'), 'EISDIR', 'rename');
      await rejectsWith(fs.rename('/d', '/f'), 'ENOTDIR', 'rename');
      await rejectsWith(fs.rename('/d', '/d/sub/x'), 'EINVAL', 'rename');
      await rejectsWith(fs.rename('/', '/x'), 'EBUSY', 'rename');
      await fs.mkdir('/e');
      await rejectsWith(fs.rename('/e', '/d'), 'ENOTEMPTY', 'rename');
      await fs.rename('/d/sub', '/e');
      const error = await fs.rename('/nope', '/x').catch((caught: unknown) => caught);
      assert.match(String((error as Error).message), /^ENOENT: .*rename '\/nope' -> '\/x'/);
      assert.equal((error as { dest?: string }).dest, '/x');

      const reader = await fs.open('/f', 'read');
      await rejectsWith(fs.pwrite(reader, bytes('x'), 0), 'EBADF', 'write');
      await rejectsWith(fs.ftruncate(reader, 0), 'EINVAL', 'ftruncate');
      await fs.fdatasync(reader);
      await fs.close(file);
      await rejectsWith(fs.close(file), 'EBADF', 'close');
      await rejectsWith(fs.pwrite(file, bytes('x'), 0), 'EBADF');
      await rejectsWith(fs.pread(file, new Uint8Array(1), 0), 'EBADF');
      await rejectsWith(fs.fdatasync(file), 'EBADF');
      await rejectsWith(fs.size(file), 'EBADF');
      const foreign = await new CrashFs().open('/z', 'create');
      await rejectsWith(fs.size(foreign), 'EBADF');
      await rejectsWith(fs.size({ path: '/f' }), 'EBADF');

      await assert.rejects(fs.pwrite(reader, 'x' as never, 0), { code: 'ERR_INVALID_ARG_TYPE' });
      await assert.rejects(fs.pread(reader, new Uint8Array(1), -1), { code: 'ERR_OUT_OF_RANGE' });
      await assert.rejects(fs.ftruncate(reader, 1.5), { code: 'ERR_OUT_OF_RANGE' });
      assert.throws(() => new CrashFs({ sectorSize: 0 }), { code: 'ERR_OUT_OF_RANGE' });
      assert.throws(() => fs.crashStates({ limit: 0 }), { code: 'ERR_OUT_OF_RANGE' });
      assert.throws(() => fs.crashStates({ lost: [] }), RangeError);
      assert.throws(() => fs.crashStates({ tearAt: [-1] }), { code: 'ERR_OUT_OF_RANGE' });
    });
  });

  describe('power loss', () => {
    it('an unsynced write can vanish; a synced one survives in every state', async () => {
      const fs = new CrashFs();
      const file = await durableEmpty(fs);
      await fs.pwrite(file, bytes('one'), 0);
      // Lost, kept, or its size kept and its sector lost (zeros).
      const zero = { lost: ['zero'] } as const;
      assert.deepEqual(fileTexts(all(fs, zero), '/f'), new Set(['', 'one', '\0\0\0']));
      await fs.fdatasync(file);
      await fs.pwrite(file, bytes('two'), 3);
      const states = all(fs);
      assert.deepEqual(fileTexts(all(fs, zero), '/f'), new Set(['one', 'onetwo', 'one\0\0\0']));
      for (const state of states) assert.ok(text(state.files.get('/f'))!.startsWith('one'));
    });

    it('a created file vanishes unless its directory was synced', async () => {
      const fs = new CrashFs();
      await fs.mkdir('/d');
      await fs.syncDir('/');
      const file = await fs.open('/d/x', 'create');
      await fs.pwrite(file, bytes('data'), 0);
      await fs.fdatasync(file);
      const before = all(fs);
      assert.ok(before.some((state) => !state.files.has('/d/x')));
      assert.ok(before.some((state) => text(state.files.get('/d/x')) === 'data'));
      // fdatasync made the data durable but not the name; only syncDir does that.
      await fs.syncDir('/d');
      for (const state of all(fs)) assert.equal(text(state.files.get('/d/x')), 'data');
    });

    it('a directory made by mkdir is an entry of its parent; its files go with it', async () => {
      const fs = new CrashFs();
      await fs.mkdir('/d');
      await fs.open('/d/x', 'create');
      await fs.syncDir('/d');
      const states = all(fs);
      assert.ok(states.some((state) => !state.dirs.has('/d') && state.files.size === 0));
      for (const state of states) assert.equal(state.dirs.has('/d'), state.files.has('/d/x'));
      await fs.syncDir('/');
      for (const state of all(fs)) assert.ok(state.files.has('/d/x'));
    });

    it('a rename without a directory fsync can revert; with one it cannot', async () => {
      const fs = new CrashFs();
      const tmp = await fs.open('/tmp', 'create');
      await fs.pwrite(tmp, bytes('new'), 0);
      await fs.fdatasync(tmp);
      const old = await fs.open('/head', 'create');
      await fs.pwrite(old, bytes('old'), 0);
      await fs.fdatasync(old);
      await fs.syncDir('/');
      await fs.rename('/tmp', '/head');
      const states = all(fs);
      assert.deepEqual(fileTexts(states, '/head'), new Set(['old', 'new']));
      for (const state of states) {
        // Atomic: either the old name pair or the new one, never a mix.
        const reverted = text(state.files.get('/head')) === 'old';
        assert.equal(state.files.has('/tmp'), reverted, state.description);
      }
      await fs.syncDir('/');
      for (const state of all(fs)) {
        assert.equal(text(state.files.get('/head')), 'new');
        assert.ok(!state.files.has('/tmp'));
      }
    });

    it('a cross-directory rename is durable only once both directories are synced', async () => {
      const fs = new CrashFs();
      await fs.mkdir('/a');
      await fs.mkdir('/b');
      await fs.open('/a/x', 'create');
      await fs.syncDir('/a');
      await fs.syncDir('/');
      await fs.rename('/a/x', '/b/x');
      await fs.syncDir('/b');
      const states = all(fs);
      assert.deepEqual(
        new Set(states.map((state) => [...state.files.keys()].join())),
        new Set(['/a/x', '/b/x']),
      );
      await fs.syncDir('/a');
      for (const state of all(fs)) assert.deepEqual([...state.files.keys()], ['/b/x']);
    });

    it('an unlink without a directory fsync can be undone', async () => {
      const fs = new CrashFs();
      const file = await durableEmpty(fs);
      await fs.pwrite(file, bytes('keep'), 0);
      await fs.fdatasync(file);
      await fs.close(file);
      await fs.unlink('/f');
      const states = all(fs);
      assert.deepEqual(fileTexts(states, '/f'), new Set([undefined, 'keep']));
      await fs.syncDir('/');
      assert.deepEqual(fileTexts(all(fs), '/f'), new Set([undefined]));
    });

    it('operations on the same name survive in order', async () => {
      const fs = new CrashFs();
      await fs.open('/a', 'create');
      await fs.rename('/a', '/b');
      await fs.unlink('/b');
      const shapes = new Set(all(fs).map((state) => [...state.files.keys()].join() || '-'));
      // Never /b without its create: only none, /a, /b, or none again after the unlink.
      assert.deepEqual(shapes, new Set(['-', '/a', '/b']));
    });

    it('tears a write at sectors, lost sectors reading as old bytes, zeros or garbage', async () => {
      const fs = new CrashFs({
        sectorSize: 4,
        image: { files: new Map([['/f', bytes('AAAAAAAA')]]) },
      });
      const file = await fs.open('/f', 'write');
      await fs.pwrite(file, bytes('BBBBBBBB'), 0);
      const states = all(fs);
      const seen = fileTexts(states, '/f');
      for (const expected of ['AAAAAAAA', 'BBBBBBBB', 'BBBBAAAA', 'AAAABBBB']) {
        assert.ok(seen.has(expected), expected);
      }
      assert.ok(seen.has('BBBB\0\0\0\0') && seen.has('\0\0\0\0BBBB'));
      // No sector kept, too.
      assert.ok(seen.has('\0\0\0\0\0\0\0\0'));
      const garbage = states.filter((state) => state.description.includes('lost=garbage'));
      assert.equal(garbage.length, 3);
      for (const state of garbage) {
        const data = state.files.get('/f')!;
        const lost = state.description.includes('kept none of')
          ? [data.subarray(0, 4), data.subarray(4)]
          : state.description.includes('kept 0 of')
            ? [data.subarray(4)]
            : [data.subarray(0, 4)];
        for (const sector of lost) {
          assert.notDeepEqual(sector, bytes('AAAA'));
          assert.notDeepEqual(sector, new Uint8Array(4));
        }
      }
      // No tearing inside a sector: apart from garbage, each sector is all old, new or zero.
      for (const state of states) {
        if (state.description.includes('garbage')) continue;
        const value = text(state.files.get('/f'))!;
        for (const half of [value.slice(0, 4), value.slice(4)]) {
          assert.ok(['AAAA', 'BBBB', '\0\0\0\0'].includes(half), state.description);
        }
      }
      assert.equal(all(fs, { tear: false }).length, 2);
      assert.deepEqual(fileTexts(all(fs, { lost: ['zero'] }), '/f').size, 5);
    });

    it('tears at chosen byte offsets, and tears long writes by prefix, suffix or one inner hole', async () => {
      const fs = new CrashFs({ sectorSize: 512 });
      const file = await durableEmpty(fs);
      await fs.pwrite(file, new Uint8Array(10).fill(7), 0);
      const torn = all(fs, { tearAt: [3], lost: ['zero'], lengths: false });
      const seen = torn.map((state) => [...state.files.get('/f')!].join(''));
      assert.deepEqual(
        new Set(seen),
        new Set(['', '7777777777', '7770000000', '0007777777', '0000000000']),
      );
      // Eight sectors: a kept prefix or a kept suffix (7 each), one inner
      // sector lost (6), or none; never two holes (those only by sampling).
      const big = new CrashFs({ sectorSize: 4 });
      const bigFile = await durableEmpty(big);
      await big.pwrite(bigFile, new Uint8Array(32).fill(9), 0);
      const states = all(big, { lost: ['zero'], lengths: false });
      assert.equal(states.length, 2 + 7 + 7 + 6 + 1);
      const holes = new Set<string>();
      for (const state of states) {
        const pattern = [...state.files.get('/f')!].map((b) => (b === 9 ? '9' : '0')).join('');
        assert.match(pattern, /^(9*0*|0*9*|9+0000(9{4})+)$/);
        if (/^9+0+9+$/.test(pattern)) holes.add(pattern);
      }
      assert.equal(holes.size, 6, 'each inner sector lost alone');
    });

    it('leaves the length anywhere between the durable and the last written one', async () => {
      const fs = new CrashFs();
      const file = await durableEmpty(fs);
      await fs.pwrite(file, bytes('0123'), 0);
      await fs.fdatasync(file);
      await fs.pwrite(file, bytes('4567'), 4);
      await fs.pwrite(file, bytes('89'), 8);
      const lengths = new Set(
        all(fs, { tear: false }).map((state) => state.files.get('/f')!.length),
      );
      assert.deepEqual(
        [...lengths].sort((a, b) => a - b),
        [4, 8, 10],
      );
      // Sampling draws any length in between.
      const sampled = fs.crashStates({ mode: 'sample', limit: 200, seed: 3 });
      assert.equal(sampled.exhaustive, false);
      const drawn = new Set([...sampled].map((state) => state.files.get('/f')!.length));
      for (const length of drawn) assert.ok(length >= 4 && length <= 10);
      assert.ok(
        [5, 7, 9].some((length) => drawn.has(length)),
        [...drawn].join(),
      );
      // Without length variation the length follows the surviving writes.
      const natural = new Set(
        all(fs, { tear: false, lengths: false }).map((s) => s.files.get('/f')!.length),
      );
      assert.deepEqual(
        [...natural].sort((a, b) => a - b),
        [4, 8, 10],
      );
    });

    it('a pending truncate may or may not survive; a synced one always does', async () => {
      const fs = new CrashFs({ image: { files: new Map([['/f', bytes('abcdef')]]) } });
      const file = await fs.open('/f', 'write');
      await fs.ftruncate(file, 2);
      // Or lost with its zeroing of the rest of its block on the disk.
      assert.deepEqual(fileTexts(all(fs), '/f'), new Set(['abcdef', 'ab', 'ab\0\0\0\0']));
      await fs.fdatasync(file);
      assert.deepEqual(fileTexts(all(fs), '/f'), new Set(['ab']));
    });

    it('a pending truncate survives or not whatever the later writes do (more states than a journal leaves)', async () => {
      const fs = new CrashFs({ image: { files: new Map([['/f', bytes('abcdef')]]) } });
      const file = await fs.open('/f', 'write');
      await fs.ftruncate(file, 2);
      await fs.pwrite(file, bytes('XY'), 3); // past the cut
      const texts = fileTexts(all(fs, { tear: false, lengths: false }), '/f');
      // Neither, the cut alone, both, and the write without the cut it
      // followed; the cut lost with its block's rest zeroed, with or without the write.
      assert.deepEqual(
        texts,
        new Set(['abcdef', 'ab', 'ab\0XY', 'abcXYf', 'ab\0\0\0\0', 'ab\0XY\0']),
      );
      // Still pending however long ago it completed, until a covering sync.
      await fs.fdatasync(file);
      assert.deepEqual(fileTexts(all(fs), '/f'), new Set(['ab\0XY']));
    });

    it("a lost cut may leave its zeroing of the rest of its block (ext4's partial block), never more", async () => {
      const old = new Uint8Array(10000).fill(0x61);
      const fs = new CrashFs({ image: { files: new Map([['/f', old]]) } });
      const file = await fs.open('/f', 'write');
      await fs.ftruncate(file, 100);
      const zeroedTail = Uint8Array.from(old).fill(0, 100, 4096);
      const images = all(fs).map((state) => hexOf(state.files.get('/f')!));
      assert.deepEqual(
        new Set(images),
        new Set([hexOf(old), hexOf(old.subarray(0, 100)), hexOf(zeroedTail)]),
      );
      const description = all(fs).find(
        (state) => hexOf(state.files.get('/f')!) === hexOf(zeroedTail),
      )!.description;
      assert.match(description, /-t#\d+\[zeroed\]/);
      // A cut on a block boundary zeroes nothing: kept or lost, no third state.
      const aligned = new CrashFs({ image: { files: new Map([['/f', old]]) } });
      await aligned.ftruncate(await aligned.open('/f', 'write'), 8192);
      assert.equal(all(aligned).length, 2);
      assert.equal(aligned.crashStates().count, 2);
      // Nor does a truncate that grows the file.
      const grown = new CrashFs({ image: { files: new Map([['/f', old]]) } });
      await grown.ftruncate(await grown.open('/f', 'write'), 12345);
      assert.equal(grown.crashStates({ lengths: false }).count, 2);
      // Sampling draws it too.
      const sampled = new Set(
        [...fs.crashStates({ mode: 'sample', limit: 50 })].map((state) =>
          hexOf(state.files.get('/f')!),
        ),
      );
      assert.ok(sampled.has(hexOf(zeroedTail)));
    });

    it('a sync covers exactly the writes completed when it was called', async () => {
      const fs = new CrashFs();
      const file = await durableEmpty(fs);
      await fs.pwrite(file, bytes('done'), 0);
      const inFlight = fs.pwrite(file, bytes('late'), 4);
      const sync = fs.fdatasync(file);
      const record = fs.operations.at(-1)!;
      assert.equal(record.call, 'fdatasync');
      const done = fs.operations.find((op) => op.call === 'pwrite' && op.position === 0)!;
      assert.deepEqual(record.covers, [done.id]);
      // Until the sync completes, nothing it covers is durable yet.
      assert.ok(fileTexts(all(fs), '/f').has(''));
      await Promise.all([inFlight, sync]);
      const states = all(fs, { tear: false });
      assert.deepEqual(fileTexts(states, '/f'), new Set(['done', 'donelate']));
      assert.ok(states.some((state) => state.description.includes(`-w#${done.id + 1}`)));
    });

    it('ignores in-flight completions after a reset', async () => {
      const fs = new CrashFs();
      const file = await durableEmpty(fs);
      await fs.pwrite(file, bytes('x'), 0);
      const sync = fs.fdatasync(file);
      fs.reset({ files: new Map([['/g', bytes('g')]]) });
      await sync;
      assert.deepEqual([...fs.snapshot().files.keys()], ['/g']);
      await rejectsWith(fs.pwrite(file, bytes('y'), 0), 'EBADF');
    });
  });

  describe('enumeration', () => {
    it('counts a tiny trace exactly', async () => {
      const fs = new CrashFs();
      const file = await fs.open('/a', 'create');
      await fs.pwrite(file, bytes('xy'), 0);
      // Create pending: {gone} + {created: write lost | write kept, whole or
      // with its one sector lost (× 3 lost contents), at length 2 or 0}.
      const states = fs.crashStates();
      assert.equal(states.count, 10);
      assert.ok(states.exhaustive);
      assert.deepEqual(states.pending, { files: 1, directories: 1 });
      assert.equal([...fs.crashStates({ unique: false })].length, 10);
      const texts = fileTexts([...fs.crashStates({ lost: ['zero'] })], '/a');
      assert.deepEqual(texts, new Set([undefined, '', 'xy', '\0\0']));
      assert.equal(fs.crashStates({ tear: false }).count, 4);

      const torn = new CrashFs({
        sectorSize: 4,
        image: { files: new Map([['/f', bytes('AAAAAAAA')]]) },
      });
      const handle = await torn.open('/f', 'write');
      await torn.pwrite(handle, bytes('BBBBBBBB'), 0);
      // Lost, or kept: whole, or torn in 3 ways (one sector or none kept) × 3
      // lost contents; keeping none with the old bytes repeats "lost".
      assert.equal(torn.crashStates().count, 11);
      assert.equal([...torn.crashStates()].length, 10);
      assert.equal(torn.crashStates({ tear: false }).count, 2);
    });

    it('is deterministic from the seed', async () => {
      const build = async (): Promise<CrashFs> => {
        const fs = new CrashFs({ sectorSize: 8 });
        const file = await durableEmpty(fs);
        for (let i = 0; i < 24; i++) await fs.pwrite(file, new Uint8Array(20).fill(i), i * 20);
        return fs;
      };
      const a = await build();
      const b = await build();
      const draw = (fs: CrashFs, seed: number) =>
        [...fs.crashStates({ seed, limit: 50 })].map((state) => ({
          description: state.description,
          data: state.files.get('/f'),
        }));
      const first = draw(a, 7);
      assert.equal(a.crashStates().exhaustive, false);
      assert.equal(first.length, 50);
      assert.deepEqual(draw(b, 7), first);
      assert.deepEqual(draw(a, 7), first, 'iterating again repeats the states');
      assert.notDeepEqual(draw(a, 8), first);
      // Sample 0 keeps only durable state, sample 1 everything.
      assert.equal(first[0]!.data!.length, 0);
      assert.equal(first[1]!.data!.length, 480);
      const exhaustiveOrder = [...a.crashStates({ mode: 'exhaustive', limit: 5 })];
      assert.equal(exhaustiveOrder.length, 5);
      assert.equal(exhaustiveOrder[0]!.files.get('/f')!.length, 0);
    });

    it('takes a snapshot: later calls do not change the states', async () => {
      const fs = new CrashFs();
      const file = await durableEmpty(fs);
      await fs.pwrite(file, bytes('a'), 0);
      const states = fs.crashStates({ tear: false });
      await fs.pwrite(file, bytes('b'), 1);
      await fs.fdatasync(file);
      assert.deepEqual(fileTexts([...states], '/f'), new Set(['', 'a']));
    });

    it('bounds the count when too many operations are pending', async () => {
      const fs = new CrashFs();
      const file = await durableEmpty(fs);
      for (let i = 0; i < 20; i++) await fs.pwrite(file, Uint8Array.of(i), i);
      for (let i = 0; i < 18; i++) await fs.mkdir(`/d${i}`);
      const states = fs.crashStates({ limit: 30 });
      assert.equal(states.exhaustive, false);
      assert.ok(states.count > 2 ** 30);
      assert.deepEqual(states.pending, { files: 20, directories: 18 });
      const drawn = [...states];
      assert.equal(drawn.length, 30);
      for (const state of drawn) {
        // Any subset of the mkdirs; the durable empty file is always there.
        assert.ok(state.files.has('/f'));
        assert.ok(state.description.startsWith(`state ${state.index}: dirs[`));
      }
    });

    it('drops states whose image repeats, unless asked not to', async () => {
      const fs = new CrashFs();
      const file = await durableEmpty(fs);
      await fs.pwrite(file, bytes('same'), 0);
      await fs.fdatasync(file);
      await fs.pwrite(file, bytes('same'), 0);
      const whole = { tear: false } as const;
      assert.equal([...fs.crashStates(whole)].length, 1);
      assert.equal([...fs.crashStates({ ...whole, unique: false })].length, 2);
      assert.match([...fs.crashStates(whole)][0]!.description, /^state 0: \/f: -w#\d+$/);
    });
  });

  describe('crashes and locks', () => {
    it('locks exclusively; release is idempotent', async () => {
      const fs = new CrashFs();
      const lock = await fs.lock('/LOCK');
      await assert.rejects(fs.lock('/LOCK'), (error: unknown) => {
        assert.ok(error instanceof LockedError);
        assert.ok(isWalError(error, 'WAL_LOCKED'));
        assert.equal(error.path, '/LOCK');
        return true;
      });
      await fs.lock('/other').then((other) => other.release());
      await rejectsWith(fs.lock('/no/LOCK'), 'ENOENT');
      await lock.release();
      await lock.release();
      const again = await fs.lock('LOCK');
      await again.release();
    });

    it('a power loss drops every lock and reopens the crashed state', async () => {
      const fs = new CrashFs();
      const stale = await fs.lock('/LOCK');
      const file = await durableEmpty(fs, '/log');
      await fs.pwrite(file, bytes('durable'), 0);
      await fs.fdatasync(file);
      await fs.pwrite(file, bytes('+lost?'), 7);
      for (const state of all(fs)) {
        const reopened = state.fs();
        assert.equal(reopened.sectorSize, 512);
        const lock = await reopened.lock('/LOCK');
        const handle = await reopened.open('/log', 'write');
        const into = new Uint8Array(7);
        assert.equal(await reopened.pread(handle, into, 0), 7);
        assert.equal(text(into), 'durable');
        // Reopened contents are all durable.
        assert.equal(reopened.crashStates().count, 1);
        await lock.release();
      }
      const state = fs.powerLoss({ seed: 1 });
      assert.ok(text(fs.snapshot().files.get('/log'))!.startsWith('durable'));
      assert.ok(state.description.startsWith('state 2'));
      assert.ok(fs.poweredOff);
      await rejectsWith(fs.pwrite(file, bytes('x'), 0), 'EIO');
      const rebooted = state.fs();
      assert.equal(rebooted.poweredOff, false);
      const lock = await rebooted.lock('/LOCK');
      await rejectsWith(stale.release(), 'EIO'); // must not release the new holder
      await assert.rejects(rebooted.lock('/LOCK'), LockedError);
      await lock.release();
      assert.ok(fs.operations.some((op) => op.call === 'reset'));
    });

    it('after a power loss, nothing the machine that lost power still runs reaches the state', async () => {
      // The log's close() after a crash used to write its metadata file into
      // the image it was reopened from: a state no power loss leaves.
      const { fs, file, held, inFlight } = await beforeACrash();
      const state = fs.powerLoss({ seed: 1 });
      const image = fs.snapshot();
      await assertEveryCallFails(fs, file, held);
      assert.equal(await inFlight, 1, 'a call in flight at the crash settles');
      assert.deepEqual(fs.snapshot(), image, 'the machine that lost power changed');
      const rebooted = state.fs();
      assert.deepEqual(rebooted.snapshot(), image);
      assert.deepEqual([...rebooted.snapshot().files.keys()], ['/d/log']);
      assert.equal(text(rebooted.snapshot().files.get('/d/log'))!.slice(0, 7), 'durable');
      // The rebooted machine works, and the old one still does not.
      const again = await rebooted.lock('/d/LOCK');
      await again.release();
      await rejectsWith(fs.readdir('/'), 'EIO', 'readdir');
    });

    it('a process crash keeps the page cache and the pending state, and drops locks', async () => {
      const fs = new CrashFs();
      await fs.lock('/LOCK');
      const file = await durableEmpty(fs);
      await fs.pwrite(file, bytes('cached'), 0);
      const next = fs.processCrash();
      assert.ok(fs.killed && !next.killed && !next.poweredOff);
      await rejectsWith(next.size(file), 'EBADF'); // not open in the next process
      await (await next.lock('/LOCK')).release();
      assert.equal(text(next.snapshot().files.get('/f')), 'cached');
      // Not durable: a later power loss may still lose it.
      assert.deepEqual(fileTexts(all(next, { tear: false }), '/f'), new Set(['', 'cached']));
    });

    it('after a process crash, nothing the killed process still runs reaches the next one', async () => {
      // The model of a kill -9: the page cache survives, the program does not.
      const { fs, file, held, inFlight } = await beforeACrash();
      const next = fs.processCrash({ inFlight: 'ran' });
      assert.equal(await inFlight, 1, 'a call in flight at the crash completes');
      const image = next.snapshot();
      assert.equal(text(image.files.get('/d/log')), 'durable+pending\0\0\0\0\0!');
      await assertEveryCallFails(fs, file, held);
      assert.throws(() => fs.processCrash(), { code: 'EIO', syscall: 'processCrash' });
      assert.deepEqual(next.snapshot(), image, 'the killed process changed the page cache');
      assert.deepEqual(fs.snapshot(), image, 'both see the one machine');
      // The next process reads the page cache through files of its own.
      const log = await next.open('/d/log', 'write');
      const into = new Uint8Array(15);
      assert.equal(await next.pread(log, into, 0), 15);
      assert.equal(text(into), 'durable+pending');
      await rejectsWith(next.size(file), 'EBADF');
      assert.deepEqual(await next.readdir('/d'), ['log']);
      // The killed process's lock is free; once taken again, its old release
      // (run by the dead program) does not free it.
      const lock = await next.lock('/d/LOCK');
      await rejectsWith(held.release(), 'EIO', 'release');
      await assert.rejects(next.lock('/d/LOCK'), LockedError);
      await lock.release();
      await (await next.lock('/d/LOCK')).release();
      // One trace: the calls of both processes, with the crash between them.
      assert.equal(fs.operations, next.operations);
      assert.equal(fs.operations.filter((op) => op.call === 'processCrash').length, 2);
    });

    it("reset on a killed instance is refused: the next process's files, locks and page cache stay; its own reset works", async () => {
      const { fs } = await beforeACrash();
      const next = fs.processCrash({ inFlight: 'ran' });
      const log = await next.open('/d/log', 'write');
      const lock = await next.lock('/d/LOCK');
      const image = next.snapshot();
      const states = all(next).length;
      assert.throws(() => fs.reset({ files: new Map() }), { code: 'EIO', syscall: 'reset' });
      assert.equal(fs.operations.at(-1)!.error, 'EIO', 'traced as a failed call');
      assert.deepEqual(next.snapshot(), image);
      assert.equal(all(next).length, states, 'the pending operations stay pending');
      assert.equal(await next.size(log), 21, 'the file stays open');
      await assert.rejects(next.lock('/d/LOCK'), LockedError);
      await lock.release();
      next.reset({ files: new Map([['/g', bytes('g')]]) });
      assert.deepEqual([...next.snapshot().files.keys()], ['/g']);
      await rejectsWith(next.size(log), 'EBADF');
    });

    it('a call in flight at a process crash completes on the machine, ordered with the next process calls', async () => {
      const picked: string[] = [];
      const last = {
        next(inFlight: readonly { call: string }[]): number {
          picked.push(inFlight.map((op) => op.call).join(','));
          return inFlight.length - 1;
        },
      };
      const fs = new CrashFs({ order: last });
      const file = await durableEmpty(fs);
      await fs.pwrite(file, bytes('synced'), 0);
      const syncing = fs.fdatasync(file); // in the kernel at the kill, and it ran
      const next = fs.processCrash({ inFlight: 'ran' });
      const opening = next.open('/g', 'create');
      await Promise.all([syncing, opening]);
      assert.deepEqual(picked.slice(-2), ['fdatasync,open', 'fdatasync']);
      assert.deepEqual(fileTexts(all(next), '/f'), new Set(['synced']));
    });

    it('a power loss after a process crash loses what neither process synced, keeps what one did', async () => {
      const { fs, inFlight } = await beforeACrash();
      const next = fs.processCrash({ inFlight: 'ran' });
      await inFlight;
      // Pending writes of the killed process stay pending in the next one.
      const texts = fileTexts(all(next), '/d/log');
      assert.ok(texts.has('durable'), 'the unsynced writes may be lost');
      assert.ok(texts.has('durable+pending\0\0\0\0\0!'), 'or kept');
      for (const t of texts) assert.equal(t!.slice(0, 7), 'durable');
      // The next process makes them durable; a power loss keeps them.
      const log = await next.open('/d/log', 'write');
      await next.fdatasync(log);
      assert.deepEqual(fileTexts(all(next), '/d/log'), new Set(['durable+pending\0\0\0\0\0!']));
      await next.pwrite(log, bytes('?'), 0); // pending at the power loss
      const state = next.powerLoss({ seed: 3 });
      assert.ok(next.poweredOff && fs.poweredOff, 'the machine is off for every process');
      await rejectsWith(next.readdir('/'), 'EIO', 'readdir');
      await rejectsWith(fs.readdir('/'), 'EIO', 'readdir');
      assert.throws(() => next.processCrash(), { code: 'EIO' });
      assert.match(text(state.files.get('/d/log'))!, /^[d?]urable\+pending\0{5}!$/);
      const rebooted = state.fs();
      await (await rebooted.lock('/d/LOCK')).release();
      assert.ok(!rebooted.killed && !rebooted.poweredOff);
    });

    describe('calls in flight at a process crash', () => {
      /** A durable file `/f` holding 'base', a pending write, then calls in flight. */
      async function inFlightCalls(fs: CrashFs): Promise<Promise<unknown>[]> {
        const file = await durableEmpty(fs);
        await fs.pwrite(file, bytes('base'), 0);
        await fs.fdatasync(file);
        await fs.pwrite(file, bytes('+synced?'), 4); // completed, pending
        await fs.mkdir('/d');
        await fs.syncDir('/');
        const made = await fs.open('/d/old', 'create');
        await fs.close(made);
        await fs.syncDir('/d');
        return [
          fs.pwrite(file, bytes('!'), 20), // an extending write
          fs.ftruncate(file, 30),
          fs.fdatasync(file), // covers '+synced?' only
          fs.rename('/d/old', '/d/new'),
          fs.open('/d/created', 'create'),
          fs.mkdir('/d/sub'),
          fs.unlink('/f2').catch(() => undefined), // fails: no effect either way
        ];
      }

      it('lists the calls in flight', async () => {
        const fs = new CrashFs();
        const calls = await inFlightCalls(fs);
        assert.deepEqual(
          fs.inFlight.map((op) => op.call),
          ['pwrite', 'ftruncate', 'fdatasync', 'rename', 'open', 'mkdir', 'unlink'],
        );
        fs.processCrash({ inFlight: 'ran' });
        await Promise.all(calls);
        assert.deepEqual(fs.inFlight, []);
      });

      it("'lost': none ran — every effect is undone and no sync made anything durable", async () => {
        const fs = new CrashFs();
        const calls = await inFlightCalls(fs);
        const next = fs.processCrash({ inFlight: 'lost' });
        const image = next.snapshot();
        assert.equal(
          text(image.files.get('/f')),
          'base+synced?',
          'neither the write nor the truncate',
        );
        assert.deepEqual([...image.dirs], ['/', '/d']);
        assert.deepEqual([...image.files.keys()], ['/d/old', '/f']);
        // The fdatasync in flight never ran: '+synced?' is still pending.
        assert.deepEqual(
          fileTexts(all(next, { tear: false }), '/f'),
          new Set(['base', 'base+synced?']),
        );
        // The dead process's promises settle all the same (it cannot see them).
        await Promise.all(calls);
        assert.deepEqual(next.snapshot(), image, 'their completions changed nothing');
        const fates = fs.operations.filter((op) => op.atCrash !== undefined);
        assert.deepEqual(
          fates.map((op) => `${op.call}:${op.atCrash}`),
          [
            'pwrite:lost',
            'ftruncate:lost',
            'fdatasync:lost',
            'rename:lost',
            'open:lost',
            'mkdir:lost',
          ],
        );
        // The next process's sync covers the completed write, as before.
        const file = await next.open('/f', 'write');
        await next.fdatasync(file);
        assert.deepEqual(fileTexts(all(next), '/f'), new Set(['base+synced?']));
      });

      it("'ran': every one ran — effects kept whole, the sync made its writes durable", async () => {
        const fs = new CrashFs();
        await inFlightCalls(fs);
        const next = fs.processCrash({ inFlight: 'ran' });
        const image = next.snapshot();
        const expected = `base+synced?${'\0'.repeat(8)}!${'\0'.repeat(9)}`;
        assert.equal(text(image.files.get('/f')), expected);
        assert.deepEqual([...image.files.keys()], ['/d/created', '/d/new', '/f']);
        const texts = fileTexts(all(next, { tear: false, lengths: false }), '/f');
        assert.ok(texts.has('base+synced?'), 'the synced write is durable');
        assert.ok(![...texts].some((t) => t === 'base'));
        // A write in flight that ran completed: the next process's sync covers it.
        const file = await next.open('/f', 'write');
        await next.fdatasync(file);
        assert.deepEqual(fileTexts(all(next), '/f'), new Set([expected]));
      });

      it('a predicate picks: a later write kept without an earlier one, an fdatasync without its write', async () => {
        const fs = new CrashFs();
        const file = await durableEmpty(fs);
        await fs.pwrite(file, bytes('aaaa'), 0);
        const calls = [
          fs.pwrite(file, bytes('B'), 0),
          fs.pwrite(file, bytes('C'), 2),
          fs.fdatasync(file), // covers 'aaaa' only
        ];
        const lose = calls.length === 3 ? fs.inFlight[0]!.id : -1;
        const next = fs.processCrash({ inFlight: (call) => call.id !== lose });
        await Promise.all(calls);
        assert.equal(text(next.snapshot().files.get('/f')), 'aaCa');
        // 'aaaa' is durable (the sync ran); 'C' completed and is pending.
        assert.deepEqual(fileTexts(all(next, { tear: false }), '/f'), new Set(['aaaa', 'aaCa']));
      });

      it('directory operations stay consistent: no rename without its create, no create inside a lost mkdir; a call settled after one in flight proves it ran', async () => {
        const fs = new CrashFs();
        await fs.mkdir('/d');
        await fs.syncDir('/');
        const created = fs.open('/d/a', 'create');
        const moved = fs.rename('/d/a', '/d/b');
        const made = fs.mkdir('/d/s');
        const inside = fs.open('/d/s/x', 'create');
        const [create, rename, mkdir, nested] = fs.inFlight.map((op) => op.id);
        // Asked: the rename and the create inside /d/s ran, their create and mkdir did not.
        const ran = new Set([rename, nested]);
        const next = fs.processCrash({ inFlight: (call) => ran.has(call.id) });
        await Promise.all([created, moved, made, inside]);
        // Made consistent: the rename of /d/a could not run without its create;
        // the create inside /d/s not without its mkdir.
        const fate = (id: number | undefined) => fs.operations.find((op) => op.id === id)!.atCrash;
        assert.deepEqual(
          [fate(create), fate(rename), fate(mkdir), fate(nested)],
          ['lost', 'lost', 'lost', 'lost'],
        );
        assert.deepEqual(await next.readdir('/d'), []);
        // A settled call issued after one in flight proves it ran.
        const ordered = new CrashFs({ order: { next: (inFlight) => inFlight.length - 1 } });
        await ordered.mkdir('/d');
        const first = ordered.open('/d/a', 'create');
        await ordered.rename('/d/a', '/d/b'); // settles first: the order picks the last
        const after = ordered.processCrash({ inFlight: 'lost' });
        await first;
        assert.equal(ordered.operations.find((op) => op.call === 'open')!.atCrash, 'ran');
        assert.deepEqual(await after.readdir('/d'), ['b']);
      });

      it('by default a seeded draw: deterministic, and different seeds differ', async () => {
        const outcome = async (seed?: number): Promise<string> => {
          const fs = new CrashFs();
          const file = await durableEmpty(fs);
          const calls = Array.from({ length: 12 }, (_, i) => fs.pwrite(file, bytes('x'), i));
          const next = fs.processCrash(seed === undefined ? {} : { seed });
          await Promise.all(calls);
          return (
            fs.operations
              .filter((op) => op.atCrash !== undefined)
              .map((op) => (op.atCrash === 'ran' ? '1' : '0'))
              .join('') + text(next.snapshot().files.get('/f'))
          );
        };
        const zero = await outcome();
        assert.equal(await outcome(0), zero);
        assert.match(zero, /^(?=[01]*1)(?=[01]*0)[01]{12}/, 'some ran, some did not');
        assert.notEqual(await outcome(1), zero);
        assert.throws(() => new CrashFs().processCrash({ seed: -1 }), RangeError);
      });
    });

    it('builds a file system from an image with nested directories', async () => {
      const fs = new CrashFs({
        image: { files: new Map([['/a/b/c', bytes('c')]]), dirs: new Set(['/e', '/a']) },
      });
      assert.deepEqual([...fs.snapshot().dirs], ['/', '/a', '/a/b', '/e']);
      assert.throws(
        () =>
          new CrashFs({
            image: {
              files: new Map([
                ['/a/b', bytes('x')],
                ['/a/b/c', bytes('y')],
              ]),
            },
          }),
        { code: 'ENOTDIR' },
      );
      assert.throws(
        () =>
          new CrashFs({ image: { files: new Map([['/a', bytes('x')]]), dirs: new Set(['/a']) } }),
        { code: 'EEXIST' },
      );
    });
  });

  describe('trace', () => {
    it('records every call with its arguments, result and clock readings', async () => {
      const fs = new CrashFs();
      const file = await fs.open('/f', 'create');
      await fs.pwrite(file, bytes('abc'), 5);
      const ack = fs.mark('ack 1');
      await fs.fdatasync(file);
      await fs.open('/nope', 'read').catch(() => undefined);
      const ops = fs.operations;
      assert.deepEqual(
        ops.map((op) => op.call),
        ['open', 'pwrite', 'mark', 'fdatasync', 'open'],
      );
      const [open, write, mark, sync, failed] = ops as [
        (typeof ops)[0],
        (typeof ops)[0],
        (typeof ops)[0],
        (typeof ops)[0],
        (typeof ops)[0],
      ];
      assert.equal(open.result, `inode ${open.inode}`);
      assert.equal(write.position, 5);
      assert.equal(write.length, 3);
      assert.equal(write.inode, open.inode);
      assert.ok(write.settledAt! > write.issuedAt);
      assert.equal(mark.issuedAt, ack);
      assert.equal(mark.args, 'ack 1');
      assert.deepEqual(sync.covers, [write.id]);
      // The audit "no ack before its covering fdatasync" catches this early ack.
      assert.ok(sync.settledAt! > ack);
      assert.equal(failed.error, 'ENOENT');
      assert.ok(fs.clock >= failed.settledAt!);
    });
  });

  describe('property', () => {
    it('every crash state keeps all durable data', async () => {
      const opArb = fc.oneof(
        fc.record({ kind: fc.constant('create' as const), file: fc.nat(2) }),
        fc.record({
          kind: fc.constant('write' as const),
          file: fc.nat(2),
          position: fc.nat(40),
          length: fc.integer({ min: 1, max: 24 }),
          fill: fc.integer({ min: 1, max: 255 }),
          wait: fc.boolean(),
        }),
        fc.record({ kind: fc.constant('truncate' as const), file: fc.nat(2), length: fc.nat(48) }),
        fc.record({ kind: fc.constant('sync' as const), file: fc.nat(2) }),
        fc.record({ kind: fc.constant('syncDir' as const) }),
        fc.record({ kind: fc.constant('unlink' as const), file: fc.nat(2) }),
      );
      await fc.assert(
        fc.asyncProperty(fc.array(opArb, { maxLength: 14 }), fc.nat(1000), async (ops, seed) => {
          const fs = new CrashFs({ sectorSize: 8 });
          await fs.mkdir('/d');
          await fs.syncDir('/');
          // Test-side oracle. Per path: the open handle; per handle: the
          // durable bytes, the byte ranges of later writes and the least later truncate.
          interface Tracked {
            file: FsFile;
            durable: Uint8Array;
            current: Uint8Array;
            touched: Array<[number, number]>;
            cut: number;
          }
          const open = new Map<number, Tracked>();
          const durableNames = new Map<string, Tracked>();
          const dirtyNames = new Set<string>();
          const inFlight: Promise<unknown>[] = [];
          for (const op of ops) {
            const path = `/d/f${'file' in op ? op.file : 0}`;
            const tracked = 'file' in op ? open.get(op.file) : undefined;
            if (op.kind === 'create') {
              if (tracked !== undefined) continue;
              const file = await fs.open(path, 'createExclusive');
              open.set(op.file, {
                file,
                durable: new Uint8Array(0),
                current: new Uint8Array(0),
                touched: [],
                cut: Number.POSITIVE_INFINITY,
              });
              dirtyNames.add(path);
            } else if (op.kind === 'syncDir') {
              await Promise.all(inFlight);
              await fs.syncDir('/d');
              for (const name of dirtyNames) durableNames.delete(name);
              for (const [index, entry] of open) durableNames.set(`/d/f${index}`, entry);
              dirtyNames.clear();
            } else if (tracked === undefined) {
            } else if (op.kind === 'write') {
              const data = new Uint8Array(op.length).fill(op.fill);
              const end = op.position + op.length;
              const grown = new Uint8Array(Math.max(tracked.current.length, end));
              grown.set(tracked.current);
              grown.set(data, op.position);
              tracked.current = grown;
              tracked.touched.push([op.position, end]);
              const write = fs.pwrite(tracked.file, data, op.position);
              if (op.wait) await write;
              else inFlight.push(write);
            } else if (op.kind === 'truncate') {
              await fs.ftruncate(tracked.file, op.length);
              const next = new Uint8Array(op.length);
              next.set(tracked.current.subarray(0, op.length));
              tracked.current = next;
              tracked.cut = Math.min(tracked.cut, op.length);
            } else if (op.kind === 'sync') {
              // Make every write complete first, so the sync covers all of them.
              await Promise.all(inFlight);
              await fs.fdatasync(tracked.file);
              tracked.durable = tracked.current;
              tracked.touched = [];
              tracked.cut = Number.POSITIVE_INFINITY;
            } else {
              await fs.unlink(path);
              open.delete(op.file);
              dirtyNames.add(path);
            }
          }
          await Promise.all(inFlight);
          for (const state of fs.crashStates({ seed, limit: 60 })) {
            for (const [name, tracked] of durableNames) {
              if (dirtyNames.has(name)) continue;
              const data = state.files.get(name);
              assert.ok(data !== undefined, `${name} lost in ${state.description}`);
              const guaranteed = Math.min(tracked.durable.length, tracked.cut);
              for (let i = 0; i < guaranteed; i++) {
                if (tracked.touched.some(([start, end]) => i >= start && i < end)) continue;
                assert.equal(data[i], tracked.durable[i], `${name}[${i}] in ${state.description}`);
              }
            }
          }
        }),
        { numRuns: 300, seed: 4242 },
      );
    });
  });
});
