/**
 * The durable write: `Fs.pwriteDurable` in every file system (NodeFs's
 * `O_DSYNC` descriptor, CrashFs's model of it, FaultFs's faults) and
 * `Store.writeDurable` in the file backends: the direct path (one
 * `pwriteDurable`, nothing else), the fallbacks, what survives a power loss
 * and the latch of a failure.
 */
import assert from 'node:assert/strict';
import nodeFs, { constants, existsSync } from 'node:fs';
import {
  copyFile,
  readdir,
  readFile,
  readlink,
  realpath,
  rename,
  writeFile,
} from 'node:fs/promises';
import { syncBuiltinESMExports } from 'node:module';
import { join } from 'node:path';
import { errorCode } from '@wal/errors';
import { FileStore } from '../src/file-store.js';
import type { Fs } from '../src/fs/fs.js';
import { NodeFs } from '../src/fs/node-fs.js';
import { SegmentedStore, segmentName } from '../src/segmented-store.js';
import type { Store } from '../src/store.js';
import { CrashFs, type CrashState } from '../src/testing/crash-fs.js';
import { CompletionExplorer, type CompletionSchedule } from '../src/testing/crash-orders.js';
import { type Fault, FaultFs } from '../src/testing/fault-fs.js';
import { pattern, rejectsCode, removeTempDirs, tempDir, tick } from './fs-helpers.js';

const S = 4096;

/** `fs` without `pwriteDurable`, as a file system that lacks it. */
function withoutDurable<T extends Fs>(fs: T): T {
  return Object.assign(fs, { pwriteDurable: undefined });
}

/** The descriptors this process has open (Linux). */
async function openDescriptors(): Promise<number> {
  return (await readdir('/proc/self/fd')).length;
}

/** The access-mode bits of open-file flags (Linux; node:fs has no constant for it). */
const O_ACCMODE = 0o3;

/**
 * The open-file flags (`flags:` of /proc/self/fdinfo, octal) of every
 * descriptor of this process that names `path` (Linux).
 */
async function descriptorFlags(path: string): Promise<number[]> {
  const target = await realpath(path);
  const flags: number[] = [];
  for (const fd of await readdir('/proc/self/fd')) {
    const names = await readlink(`/proc/self/fd/${fd}`).catch(() => undefined);
    if (names !== target) continue;
    const info = await readFile(`/proc/self/fdinfo/${fd}`, 'utf8');
    const found = /^flags:\s*([0-7]+)$/m.exec(info);
    assert.ok(found, info);
    flags.push(Number.parseInt(found[1]!, 8));
  }
  return flags;
}

function causeCodes(error: unknown): unknown[] {
  const codes: unknown[] = [];
  for (let e = error; e !== undefined && e !== null; e = (e as { cause?: unknown }).cause) {
    codes.push(errorCode(e));
  }
  return codes;
}

/**
 * Makes the `which`-th next `fs.fstat` of this process fail with `EIO`, as
 * seen by every module (`node:fs`'s exports, synced to its ESM bindings);
 * the returned function restores it. For the identity check of NodeFs's
 * `O_DSYNC` descriptor, which no `Fs` wrapper can reach.
 */
function failFstat(which: number): () => void {
  const real = nodeFs.fstat;
  let seen = 0;
  nodeFs.fstat = ((fd: number, ...rest: unknown[]) => {
    const done = rest[rest.length - 1] as (error: NodeJS.ErrnoException | null) => void;
    if (++seen !== which) return (real as (...args: unknown[]) => void)(fd, ...rest);
    const error = Object.assign(new Error('EIO: i/o error, fstat'), {
      code: 'EIO',
      errno: -5,
      syscall: 'fstat',
    });
    process.nextTick(() => done(error));
  }) as typeof nodeFs.fstat;
  syncBuiltinESMExports();
  return () => {
    nodeFs.fstat = real;
    syncBuiltinESMExports();
  };
}

/** Every state of a power loss now (at most `limit`). */
function states(fs: CrashFs, limit = 400): CrashState[] {
  return [...fs.crashStates({ limit })];
}

function bytesAt(state: CrashState, path: string, offset: number, length: number): Uint8Array {
  return (state.files.get(path) ?? new Uint8Array(0)).subarray(offset, offset + length);
}

function same(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}

describe('Fs.pwriteDurable', () => {
  after(removeTempDirs);

  it('NodeFs: one write through a second O_DSYNC descriptor, opened once, closed with the file', async () => {
    const fs = new NodeFs();
    const path = join(await tempDir(), 'f');
    const before = await openDescriptors();
    const file = await fs.open(path, 'create');
    await fs.pwrite(file, pattern(100, 1), 0);
    // Concurrent first calls share the opening of the second descriptor.
    const counts = await Promise.all([
      fs.pwriteDurable(file, pattern(50, 2), 100),
      fs.pwriteDurable(file, pattern(50, 3), 200),
      fs.pwriteDurable(file, new Uint8Array(0), 500),
    ]);
    assert.deepEqual(counts, [50, 50, 0]);
    assert.equal(await openDescriptors(), before + 2, 'the file and its O_DSYNC descriptor');
    assert.equal(await fs.pwriteDurable(file, pattern(10, 4), 120), 10);
    assert.equal(await openDescriptors(), before + 2, 'still one O_DSYNC descriptor');
    assert.equal(await fs.size(file), 250);
    const expected = new Uint8Array(250);
    expected.set(pattern(100, 1));
    expected.set(pattern(50, 2), 100);
    expected.set(pattern(10, 4), 120);
    expected.set(pattern(50, 3), 200);
    // A write in flight when the file is closed finishes first.
    const last = fs.pwriteDurable(file, pattern(5, 5), 250);
    const closing = fs.close(file);
    assert.equal(await last, 5);
    await closing;
    assert.equal(await openDescriptors(), before, 'both descriptors are closed');
    const onDisk = new Uint8Array(await readFile(path));
    assert.deepEqual(onDisk.subarray(0, 250), expected);
    assert.deepEqual(onDisk.subarray(250), pattern(5, 5));
    await assert.rejects(fs.pwriteDurable(file, pattern(1, 1), 0), {
      code: 'EBADF',
      syscall: 'write',
    });
  });

  it("NodeFs: the second descriptor carries O_DSYNC, the file's own does not (Linux: /proc/self/fdinfo)", async function () {
    if (!existsSync('/proc/self/fdinfo')) {
      console.log("      not run: no /proc/self/fdinfo here to read a descriptor's flags from");
      this.skip();
    }
    const dsync = constants.O_DSYNC;
    assert.ok(dsync > 0, 'the platform has O_DSYNC');
    const fs = new NodeFs();
    const path = join(await tempDir(), 'f');
    const file = await fs.open(path, 'create');
    await fs.pwrite(file, pattern(10, 1), 0);
    const before = await descriptorFlags(path);
    assert.equal(before.length, 1);
    assert.equal(before[0]! & dsync, 0, 'a plain write is not synchronous');
    assert.equal(await fs.pwriteDurable(file, pattern(10, 2), 10), 10);
    const after = await descriptorFlags(path);
    assert.equal(after.length, 2, 'the file and its durable descriptor');
    const durable = after.filter((flags) => (flags & dsync) !== 0);
    assert.equal(durable.length, 1, `flags ${after.map((flags) => flags.toString(8))}`);
    assert.equal(durable[0]! & O_ACCMODE, constants.O_RDWR);
    await fs.close(file);
    assert.deepEqual(await descriptorFlags(path), []);
  });

  it('NodeFs: refuses a read-only file, a foreign one, and a path that names another file now', async () => {
    const fs = new NodeFs();
    const dir = await tempDir();
    const path = join(dir, 'f');
    await writeFile(path, 'abc');
    const reader = await fs.open(path, 'read');
    await assert.rejects(fs.pwriteDurable(reader, pattern(1, 1), 0), { code: 'EBADF' });
    await fs.close(reader);
    await assert.rejects(fs.pwriteDurable({ path }, pattern(1, 1), 0), TypeError);
    const file = await fs.open(path, 'write');
    await rename(path, join(dir, 'moved'));
    await writeFile(path, 'another file');
    const before = await openDescriptors();
    // Nothing written: the failure is its descriptor's open (see Fs.pwriteDurable).
    await assert.rejects(fs.pwriteDurable(file, pattern(1, 1), 0), {
      code: 'ESTALE',
      syscall: 'open',
    });
    assert.equal(await openDescriptors(), before, 'the descriptor of the other file is closed');
    await fs.close(file);
    assert.equal(await readFile(path, 'utf8'), 'another file');
    assert.equal(await readFile(join(dir, 'moved'), 'utf8'), 'abc');
    await rename(join(dir, 'moved'), path);
    const gone = await fs.open(path, 'write');
    await rename(path, join(dir, 'moved'));
    await assert.rejects(fs.pwriteDurable(gone, pattern(1, 1), 0), {
      code: 'ENOENT',
      syscall: 'open',
    });
    await fs.close(gone);
  });

  it('NodeFs: a failed fstat of the check is a failure of the opening (syscall open, nothing written, nothing left open)', async () => {
    const fs = new NodeFs();
    const path = join(await tempDir(), 'f');
    const file = await fs.open(path, 'create');
    await fs.pwrite(file, pattern(10, 1), 0);
    const before = await openDescriptors();
    for (const which of [1, 2]) {
      const restore = failFstat(which);
      try {
        await assert.rejects(fs.pwriteDurable(file, pattern(5, 2), 10), (error: unknown) => {
          const failure = error as NodeJS.ErrnoException & { cause?: { syscall?: string } };
          assert.deepEqual(
            [failure.code, failure.syscall, failure.path, failure.cause?.syscall],
            ['EIO', 'open', path, 'fstat'],
          );
          return true;
        });
      } finally {
        restore();
      }
      assert.equal(await openDescriptors(), before, 'the O_DSYNC descriptor is closed');
      assert.equal(await fs.size(file), 10, 'nothing written');
    }
    assert.equal(await fs.pwriteDurable(file, pattern(5, 3), 10), 5, 'the next call opens it');
    await fs.close(file);
    assert.deepEqual(new Uint8Array(await readFile(path)).subarray(10), pattern(5, 3));
  });

  it('CrashFs: durable on resolve, itself only; before that a pending write like any other', async () => {
    const fs = new CrashFs();
    const file = await fs.open('/f', 'create');
    await fs.syncDir('/');
    await fs.pwrite(file, pattern(1000, 1), 0); // completed, never synced
    const writing = fs.pwriteDurable(file, pattern(1500, 2), 1000);
    // In flight: a power loss may keep it, lose it or tear it (sectors of 512).
    const early = states(fs);
    const durablePart = (state: CrashState) => bytesAt(state, '/f', 1000, 1500);
    assert.ok(early.some((state) => same(durablePart(state), pattern(1500, 2))));
    assert.ok(early.some((state) => durablePart(state).length === 0));
    assert.ok(early.some((state) => /~w#\d+\[kept/.test(state.description)));
    assert.equal(await writing, 1500);
    const record = fs.operations.find((op) => op.call === 'pwriteDurable')!;
    assert.deepEqual(record.covers, [record.id]);
    // Resolved: in every state; the earlier write is still pending.
    const late = states(fs);
    assert.ok(late.length > 1);
    for (const state of late) {
      assert.deepEqual(durablePart(state), pattern(1500, 2), state.description);
    }
    assert.ok(late.some((state) => !same(bytesAt(state, '/f', 0, 1000), pattern(1000, 1))));
    assert.ok(late.some((state) => same(bytesAt(state, '/f', 0, 1000), pattern(1000, 1))));
    // A later write over it is pending; where it is lost, the durable bytes are there.
    await fs.pwrite(file, pattern(10, 3), 1100);
    const over = fs.operations.at(-1)!.id;
    const lostOver = states(fs).filter((state) => state.description.includes(`-w#${over}`));
    assert.ok(lostOver.length > 0);
    for (const state of lostOver) {
      assert.deepEqual(bytesAt(state, '/f', 1100, 10), pattern(1500, 2).subarray(100, 110));
    }
    const reader = await fs.open('/f', 'read');
    await assert.rejects(fs.pwriteDurable(reader, pattern(1, 1), 0), { code: 'EBADF' });
  });

  it('FaultFs: injects EIO, ENOSPC, custom codes and short writes; absent when the inner Fs lacks it', async () => {
    const fs = new FaultFs(new CrashFs());
    const file = await fs.open('/f', 'create');
    const faults: Fault[] = ['EIO', 'ENOSPC', { code: 'EROFS' }];
    for (const fault of faults) {
      fs.inject({ method: 'pwriteDurable', fault });
      await assert.rejects(fs.pwriteDurable!(file, pattern(10, 1), 0), {
        code: typeof fault === 'string' ? fault : (fault as { code: string }).code,
        syscall: 'write',
      });
    }
    fs.inject({ method: 'pwriteDurable', fault: { short: 3 } });
    assert.equal(await fs.pwriteDurable!(file, pattern(10, 1), 0), 3);
    fs.inject({ method: 'pwriteDurable', fault: { short: 0 } });
    assert.equal(await fs.pwriteDurable!(file, pattern(10, 1), 0), 0);
    assert.equal(await fs.pwriteDurable!(file, pattern(10, 2), 3), 10);
    assert.equal(fs.count('pwriteDurable'), 6);
    assert.deepEqual(
      fs.calls.filter((call) => call.method === 'pwriteDurable').map((call) => call.fault),
      [...faults, { short: 3 }, { short: 0 }, undefined],
    );
    assert.equal(new FaultFs(withoutDurable(new CrashFs())).pwriteDurable, undefined);
  });
});

/** A store of `backend` over a `FaultFs` over `crash`, holding 100 synced bytes. */
async function openSynced(backend: Backend, crash: CrashFs = new CrashFs()) {
  const fs = new FaultFs(crash);
  const store = await backend.open(fs);
  await store.write(0, pattern(100, 1));
  await store.sync();
  return { crash, fs, store };
}

/**
 * After a failure that was not latched: `write`, `sync` and `writeDurable`
 * at `end` (the store's length) all work, and what they made durable
 * survives every power-loss state of `crash`.
 */
async function expectUsable(
  backend: Backend,
  store: Store,
  crash: CrashFs,
  end: number,
): Promise<void> {
  await store.write(end, pattern(30, 7));
  await store.sync();
  await store.writeDurable!(end + 30, pattern(40, 8));
  assert.equal(store.length, end + 70);
  const expected = new Uint8Array(70);
  expected.set(pattern(30, 7));
  expected.set(pattern(40, 8), 30);
  for (const state of states(crash)) {
    const again = await backend.open(state.fs());
    assert.deepEqual(await again.read(end, 70), expected, state.description);
    await again.close();
  }
}

interface Backend {
  readonly name: string;
  /** Opens the store at `/log` of `fs`. */
  open(fs: Fs): Promise<Store>;
  /** The file holding `offset`. */
  fileOf(offset: number): string;
  /** Where `offset` lies in that file. */
  within(offset: number): number;
}

/** The bytes `[offset, offset + length)` of the store in `state`, from its files (short where missing). */
function storeBytes(state: CrashState, backend: Backend, offset: number, length: number) {
  const out: number[] = [];
  for (let at = offset; at < offset + length; ) {
    const file = state.files.get(backend.fileOf(at)) ?? new Uint8Array(0);
    const from = backend.within(at);
    const count = Math.min(length - (at - offset), S - (at % S));
    const piece = file.subarray(from, from + count);
    out.push(...piece);
    if (piece.length < count) break;
    at += count;
  }
  return Uint8Array.from(out);
}

const backends: Backend[] = [
  {
    name: 'FileStore',
    open: (fs) => FileStore.open('/log', { fs }),
    fileOf: () => '/log',
    within: (offset) => offset,
  },
  {
    name: 'SegmentedStore',
    open: (fs) => SegmentedStore.open('/log', { fs, segmentSize: S }),
    fileOf: (offset) => `/log/${String(Math.floor(offset / S)).padStart(20, '0')}.wal`,
    within: (offset) => offset % S,
  },
];

for (const backend of backends) {
  describe(`${backend.name}.writeDurable`, () => {
    it('inside a file that exists: one pwriteDurable, no other call, the earlier unsynced write still pending', async () => {
      const crash = new CrashFs();
      const fs = new FaultFs(crash);
      const store = await backend.open(fs);
      await store.write(0, pattern(1000, 1));
      await store.sync();
      await store.write(1000, pattern(500, 2)); // not synced
      fs.resetCounts();
      await store.writeDurable!(1500, pattern(700, 3));
      assert.deepEqual(
        fs.calls.map((call) => call.method),
        ['pwriteDurable'],
      );
      let lost = 0;
      for (const state of states(crash)) {
        const path = backend.fileOf(1500);
        assert.deepEqual(bytesAt(state, path, 1500, 700), pattern(700, 3), state.description);
        if (!same(bytesAt(state, path, 1000, 500), pattern(500, 2))) lost++;
      }
      assert.ok(lost > 0, 'the earlier write was made durable too: not a range-limited write');
      // Nothing left to flush for the durable write; the plain one still is.
      fs.resetCounts();
      await store.sync();
      assert.equal(fs.count('fdatasync'), 1);
      await store.close();
    });

    it('without pwriteDurable in the Fs: write, then fdatasync (and the directory when due)', async () => {
      const { crash, fs, store } = await openSynced(backend, withoutDurable(new CrashFs()));
      fs.resetCounts();
      await store.writeDurable!(3000, pattern(2000, 2)); // across a segment boundary
      assert.equal(fs.count('pwriteDurable'), 0);
      assert.ok(fs.count('pwrite') >= 1 && fs.count('fdatasync') >= 1);
      for (const state of states(crash)) {
        const again = await backend.open(state.fs());
        assert.deepEqual(await again.read(3000, 2000), pattern(2000, 2), state.description);
        await again.close();
      }
      await store.close();
    });

    for (const fault of ['EIO', 'ENOSPC'] as const) {
      it(`a failed pwriteDurable (${fault}) latches the store: WAL_FAILED, the failure as cause`, async () => {
        const { crash, fs, store } = await openSynced(backend);
        fs.inject({ method: 'pwriteDurable', fault });
        const error = await store.writeDurable!(100, pattern(50, 2)).then(
          () => assert.fail('writeDurable resolved'),
          (failure: unknown) => failure,
        );
        assert.equal(errorCode(error), 'WAL_FAILED');
        assert.ok(causeCodes(error).includes(fault), String(causeCodes(error)));
        assert.equal((error as { cause?: { offset?: number } }).cause?.offset, 100);
        assert.equal(store.length, 100, 'the length does not move');
        for (const later of [
          () => store.writeDurable!(100, pattern(50, 2)),
          () => store.write(100, pattern(50, 2)),
          () => store.sync(),
          () => store.read(0, 1),
        ]) {
          await assert.rejects(later(), (e: unknown) => e === error);
        }
        await store.close();
        const again = await backend.open(crash);
        assert.deepEqual(await again.read(0, 100), pattern(100, 1));
        await again.close();
      });
    }

    it('a failure on the fallback path latches too (a new segment or file, or no pwriteDurable)', async () => {
      const fs = new FaultFs(withoutDurable(new CrashFs()));
      const store = await backend.open(fs);
      fs.inject({ method: 'fdatasync', fault: 'EIO' });
      await assert.rejects(store.writeDurable!(10, pattern(50, 2)), (e: unknown) => {
        return errorCode(e) === 'WAL_FAILED' && causeCodes(e).includes('EIO');
      });
      await assert.rejects(store.sync(), { code: 'WAL_FAILED' });
      await store.close();
      const opening = new FaultFs(new CrashFs());
      const other = await backend.open(opening);
      opening.inject({ method: 'pwriteDurable', fault: 'ENOSPC', persistent: true });
      await assert.rejects(other.writeDurable!(5 * S, pattern(50, 2)), (e: unknown) => {
        return errorCode(e) === 'WAL_FAILED' && causeCodes(e).includes('ENOSPC');
      });
      await other.close();
    });

    it('a durable write whose descriptor could not be opened (nothing written) is not latched', async () => {
      const { crash, fs, store } = await openSynced(backend);
      fs.inject({ method: 'pwriteDurable', fault: { code: 'EMFILE', syscall: 'open' } });
      const error = await store.writeDurable!(100, pattern(50, 2)).then(
        () => assert.fail('writeDurable resolved'),
        (failure: unknown) => failure as { code: string; errno?: string; offset?: number },
      );
      assert.equal(error.code, 'WAL_IO');
      assert.equal(error.errno, 'EMFILE');
      assert.equal(error.offset, 100);
      assert.equal((store as { failure?: unknown }).failure, undefined);
      assert.equal(store.length, 100);
      await expectUsable(backend, store, crash, 100);
      await store.close();
    });

    it('a failed plain write of the fallback (no pwriteDurable) is not latched: WAL_NO_SPACE with the offset', async () => {
      const { crash, fs, store } = await openSynced(backend, withoutDurable(new CrashFs()));
      fs.inject({ method: 'pwrite', fault: 'ENOSPC' });
      await assert.rejects(store.writeDurable!(100, pattern(50, 2)), {
        code: 'WAL_NO_SPACE',
        offset: 100,
      });
      assert.equal((store as { failure?: unknown }).failure, undefined);
      await expectUsable(backend, store, crash, 100);
      await store.close();
    });

    it('a failed write (and writeNow) carries its offset, as a failed durable write does', async () => {
      const fs = new FaultFs(new CrashFs());
      const store = await backend.open(fs);
      fs.inject({ method: 'pwrite', fault: 'EIO' });
      const error = await rejectsCode(store.write(S + 7, pattern(10, 1)), 'WAL_IO');
      assert.equal((error as { offset?: number }).offset, S + 7);
      assert.match(error.message, new RegExp(`at offset ${S + 7}`));
      fs.inject({ method: 'pwriteSync', fault: 'EIO' });
      assert.throws(() => store.writeNow!(S + 7, pattern(10, 2)), {
        code: 'WAL_IO',
        offset: S + 7,
      });
      assert.equal(fs.count('pwriteSync'), 1, 'writeNow reached the Fs');
      await store.close();
    });

    it('a short durable write goes on until every byte is durable', async () => {
      const crash = new CrashFs();
      const fs = new FaultFs(crash);
      const store = await backend.open(fs);
      await store.write(0, pattern(10, 1));
      await store.sync();
      fs.inject({ method: 'pwriteDurable', fault: { short: 7 } });
      await store.writeDurable!(10, pattern(100, 2));
      assert.equal(fs.count('pwriteDurable'), 2);
      for (const state of states(crash)) {
        assert.deepEqual(bytesAt(state, backend.fileOf(10), 10, 100), pattern(100, 2));
      }
      fs.inject({ method: 'pwriteDurable', fault: { short: 0 } });
      await assert.rejects(store.writeDurable!(10, pattern(5, 3)), (e: unknown) => {
        return errorCode(e) === 'WAL_FAILED' && causeCodes(e).includes('WAL_IO');
      });
      await store.close();
    });

    it('read-only: WAL_READ_ONLY, nothing written', async () => {
      const fs = new CrashFs();
      const store = await backend.open(fs);
      await store.write(0, pattern(10, 1));
      await store.close();
      const reader =
        backend.name === 'FileStore'
          ? await FileStore.open('/log', { fs, readOnly: true })
          : await SegmentedStore.open('/log', { fs, readOnly: true });
      const calls = fs.operations.length;
      await assert.rejects(reader.writeDurable(0, pattern(1, 1)), {
        code: 'WAL_READ_ONLY',
        message: /writeDurable/,
      });
      assert.equal(fs.operations.length, calls);
      await reader.close();
    });
  });
}

describe('writeDurable and directory entries', () => {
  it('FileStore: a file whose create may not be durable gets its directory fsynced first', async () => {
    // A log whose metadata is durable but whose data file a killed process
    // created without fsyncing the directory.
    const first = new CrashFs();
    await (await FileStore.open('/log', { fs: first })).close();
    const meta = first.snapshot().files.get('/log.meta')!;
    const fs = new CrashFs({ image: { files: new Map([['/log.meta', meta]]) } });
    await fs.close(await fs.open('/log', 'create'));
    const store = await FileStore.open('/log', { fs });
    await store.writeDurable(0, pattern(300, 1));
    for (const state of states(fs)) {
      const again = await FileStore.open('/log', { fs: state.fs() });
      assert.deepEqual(await again.read(0, 300), pattern(300, 1), state.description);
      await again.close();
    }
    // Now durable: the next one takes the direct path.
    const count = fs.operations.length;
    await store.writeDurable(300, pattern(10, 2));
    assert.deepEqual(
      fs.operations.slice(count).map((op) => op.call),
      ['pwriteDurable'],
    );
    await store.close();
  });

  it('SegmentedStore: a segment a killed process created unsynced is durable once opened (the open fsyncs the directory)', async () => {
    const first = new CrashFs();
    await (await SegmentedStore.open('/log', { fs: first, segmentSize: S })).close();
    const { files } = first.snapshot();
    const image = new Map([...files].filter(([path]) => /\/(meta|head)$/.test(path)));
    const fs = new CrashFs({ image: { files: image } });
    const segment = `/log/${String(0).padStart(20, '0')}.wal`;
    const killed = await fs.open(segment, 'create');
    await fs.pwrite(killed, pattern(100, 1), 0);
    const store = await SegmentedStore.open('/log', { fs, segmentSize: S });
    const count = fs.operations.length;
    await store.writeDurable(100, pattern(50, 2));
    assert.deepEqual(
      fs.operations.slice(count).map((op) => op.call),
      ['pwriteDurable'],
    );
    for (const state of states(fs)) {
      assert.deepEqual(bytesAt(state, segment, 100, 50), pattern(50, 2), state.description);
    }
    await store.close();
  });

  it('SegmentedStore: a segment being created is written only once its directory entry is durable', async () => {
    // Durable writes complete before anything else in flight.
    const order = {
      next: (inFlight: readonly { call: string }[]) =>
        Math.max(
          0,
          inFlight.findIndex((op) => op.call === 'pwriteDurable'),
        ),
    };
    const fs = new CrashFs({ order });
    const store = await SegmentedStore.open('/log', { fs, segmentSize: S });
    const segment = `/log/${String(5).padStart(20, '0')}.wal`;
    const writing = store.write(5 * S, pattern(10, 1)); // creates segment 5
    // Wait until the segment is open and its directory fsync in flight.
    for (;;) {
      await tick();
      const open = fs.operations.find((op) => op.call === 'open' && op.path === segment);
      if (open?.settledAt !== undefined) break;
    }
    let seen: CrashState[] = [];
    await store.writeDurable(5 * S + 100, pattern(20, 2)).then(() => {
      seen = states(fs);
    });
    await writing;
    assert.ok(seen.length > 0);
    for (const state of seen) {
      assert.deepEqual(bytesAt(state, segment, 100, 20), pattern(20, 2), state.description);
    }
    await store.close();
  });
});

describe('writeDurable: what latches', () => {
  after(removeTempDirs);

  const segment = (index: number) => `/log/${segmentName(index)}`;

  it('SegmentedStore: a segment that could not be created (nothing written) is not latched', async () => {
    const crash = new CrashFs();
    const fs = new FaultFs(crash);
    const store = await SegmentedStore.open('/log', { fs, segmentSize: S });
    await store.write(0, pattern(100, 1));
    await store.sync();
    fs.inject({
      when: (call) => call.method === 'open' && call.path === segment(5),
      fault: 'ENOSPC',
    });
    await assert.rejects(store.writeDurable(5 * S, pattern(50, 2)), {
      code: 'WAL_NO_SPACE',
      offset: 5 * S,
    });
    assert.equal(store.failure, undefined);
    assert.equal(fs.count('pwriteDurable'), 0);
    await store.writeDurable(5 * S, pattern(50, 3)); // created now
    await expectUsable(backends[1]!, store, crash, 5 * S + 50);
    for (const state of states(crash)) {
      assert.deepEqual(bytesAt(state, segment(5), 0, 50), pattern(50, 3), state.description);
    }
    await store.close();
  });

  it('SegmentedStore: a closed segment that could not be opened again (EMFILE) is not latched', async () => {
    const crash = new CrashFs();
    const fs = new FaultFs(crash);
    const store = await SegmentedStore.open('/log', { fs, segmentSize: S, maxOpenSegments: 1 });
    await store.write(0, pattern(100, 1));
    await store.write(S, pattern(100, 2)); // segment 0 is closed to make room
    await store.sync();
    fs.inject({
      when: (call) => call.method === 'open' && call.path === segment(0),
      fault: { code: 'EMFILE' },
    });
    await assert.rejects(store.writeDurable(100, pattern(50, 3)), {
      code: 'WAL_IO',
      errno: 'EMFILE',
      offset: 100,
    });
    assert.equal(store.failure, undefined);
    await store.writeDurable(100, pattern(50, 4));
    await expectUsable(backends[1]!, store, crash, S + 100);
    for (const state of states(crash)) {
      assert.deepEqual(bytesAt(state, segment(0), 100, 50), pattern(50, 4), state.description);
    }
    await store.close();
  });

  it('SegmentedStore: across two segments, a failed second piece latches, its offset in the cause', async () => {
    const fs = new FaultFs(new CrashFs());
    const store = await SegmentedStore.open('/log', { fs, segmentSize: S });
    await store.write(0, pattern(100, 1));
    await store.sync();
    fs.inject({ method: 'pwriteDurable', at: 2, fault: 'EIO' });
    const error = await rejectsCode(store.writeDurable(S - 50, pattern(100, 2)), 'WAL_FAILED');
    assert.equal(store.failure, error);
    assert.deepEqual(
      fs.calls.filter((call) => call.method === 'pwriteDurable').map((call) => call.path),
      [segment(0), segment(1)],
    );
    assert.equal((error.cause as { offset?: number }).offset, S, 'where the failed piece began');
    await store.close();
  });

  it('SegmentedStore: a durable write in flight when a sync fails issues no piece after the latch', async () => {
    const fs = new FaultFs(new CrashFs());
    const store = await SegmentedStore.open('/log', { fs, segmentSize: S });
    await store.write(0, pattern(100, 1));
    await store.write(S + 200, pattern(10, 2)); // segment 1 exists and is open
    await store.sync();
    await store.write(100, pattern(100, 3)); // dirty: the next sync fdatasyncs segment 0
    fs.resetCounts();
    fs.inject({ method: 'fdatasync', fault: 'EIO' });
    const durable = store.writeDurable(S - 50, pattern(100, 4)); // two pieces
    const sync = store.sync();
    const synced = await rejectsCode(sync, 'WAL_FAILED');
    const written = await rejectsCode(durable, 'WAL_FAILED');
    assert.equal(written, synced, 'the latched failure');
    assert.ok(causeCodes(written).includes('EIO'));
    const durableCalls = fs.calls.filter((call) => call.method === 'pwriteDurable');
    // The first piece was in flight when the fdatasync failed; the second never reached the Fs.
    assert.deepEqual(
      durableCalls.map((call) => call.path),
      [segment(0)],
    );
    assert.ok(
      fs.calls.findIndex((call) => call.method === 'fdatasync') >
        fs.calls.indexOf(durableCalls[0]!),
    );
    await store.close();
  });

  const onDisk = [
    {
      name: 'FileStore',
      open: (path: string) => FileStore.open(path),
      fileOf: (path: string) => path,
    },
    {
      name: 'SegmentedStore',
      open: (path: string) => SegmentedStore.open(path, { segmentSize: S }),
      fileOf: (path: string) => join(path, segmentName(0)),
    },
  ];

  for (const backend of onDisk) {
    /** A store of `backend` over NodeFs with 100 synced bytes (the direct path from there). */
    const synced = async () => {
      const path = join(await tempDir(), 'log');
      const store = await backend.open(path);
      await store.write(0, pattern(100, 1));
      await store.sync();
      return { store, file: backend.fileOf(path) };
    };

    /** Then: a durable write, a write and a sync work and land in the file. */
    const goesOn = async (store: Store, file: string) => {
      await store.writeDurable!(100, pattern(50, 3));
      await store.write(150, pattern(10, 4));
      await store.sync();
      await store.close();
      const bytes = new Uint8Array(await readFile(file));
      assert.deepEqual(bytes.subarray(0, 100), pattern(100, 1));
      assert.deepEqual(bytes.subarray(100, 150), pattern(50, 3));
      assert.deepEqual(bytes.subarray(150, 160), pattern(10, 4));
    };

    for (const errno of ['ENOENT', 'ESTALE']) {
      const how = errno === 'ENOENT' ? 'moved away' : 'replaced by a copy';
      it(`${backend.name} over NodeFs: its file ${how} fails the durable open (${errno}), not latched; back in place, all goes on`, async () => {
        const { store, file } = await synced();
        await rename(file, `${file}.away`);
        if (errno === 'ESTALE') await copyFile(`${file}.away`, file); // same bytes, another file
        await assert.rejects(store.writeDurable!(100, pattern(50, 2)), {
          code: 'WAL_IO',
          errno,
          syscall: 'open',
          offset: 100,
        });
        assert.equal(store.failure, undefined);
        assert.equal(store.length, 100);
        assert.deepEqual(await store.read(0, 100), pattern(100, 1));
        await rename(`${file}.away`, file); // the store's own file back in place
        await goesOn(store, file);
      });
    }

    for (const which of [1, 2]) {
      it(`${backend.name} over NodeFs: a failed fstat (${which === 1 ? "the file's" : 'the new descriptor'}) of the durable open's check is not latched`, async () => {
        const { store, file } = await synced();
        const restore = failFstat(which);
        let error: unknown;
        try {
          error = await store.writeDurable(100, pattern(50, 2)).then(
            () => assert.fail('writeDurable resolved'),
            (failure: unknown) => failure,
          );
        } finally {
          restore();
        }
        assert.equal(errorCode(error), 'WAL_IO', String(error));
        assert.deepEqual(
          {
            errno: (error as { errno?: unknown }).errno,
            offset: (error as { offset?: unknown }).offset,
          },
          { errno: 'EIO', offset: 100 },
        );
        assert.equal(store.failure, undefined);
        assert.equal(store.length, 100);
        await goesOn(store, file);
      });
    }
  }
});

describe('writeDurable under reordered completions', () => {
  for (const backend of backends) {
    it(`${backend.name}: a resolved durable write is in every state, at every completion of every explored order`, async function () {
      this.timeout(60_000);
      const explorer = new CompletionExplorer({ seed: 1, limit: 8 });
      let checked = 0;
      const run = async (order: CompletionSchedule): Promise<void> => {
        const fs = new CrashFs({ order });
        const store = await backend.open(fs);
        await store.write(0, pattern(100, 1));
        await store.sync();
        const resolved: Array<[number, Uint8Array]> = [];
        const durable = (offset: number, bytes: Uint8Array) =>
          store.writeDurable!(offset, bytes).then(() => {
            resolved.push([offset, bytes]);
          });
        const check = (): void => {
          if (!order.exploring) return;
          for (const state of fs.crashStates({ limit: 20, seed: checked })) {
            for (const [offset, bytes] of resolved) {
              const found = storeBytes(state, backend, offset, bytes.length);
              assert.deepEqual(found, bytes, `${offset}: ${state.description}`);
            }
            checked++;
          }
        };
        let settled = false;
        const work = Promise.all([
          store.write(100, pattern(3000, 2)),
          durable(3100, pattern(2000, 3)), // across a segment boundary, into a new segment
          durable(3 * S + 10, pattern(50, 4)), // a new segment past a gap
          store.sync(),
          durable(50, pattern(20, 5)), // inside synced bytes
          store.write(5 * S, pattern(10, 6)), // creates a segment (FileStore: extends the file)
          // Into that segment, while it is being created (some turns later).
          ...[1, 2, 3].map(async (turns) => {
            for (let i = 0; i < turns; i++) await tick();
            await durable(5 * S + 100 * turns, pattern(30, 6 + turns));
          }),
        ]).finally(() => {
          settled = true;
        });
        while (!settled) {
          check();
          await tick();
        }
        await work;
        check();
        assert.equal(resolved.length, 6);
        await store.close();
      };
      await run(explorer.baseline());
      for (const order of explorer.orders()) await run(order);
      assert.ok(explorer.figures.orders > 0 && checked > 0, JSON.stringify(explorer.figures));
    });
  }
});
