import assert from 'node:assert/strict';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { isWalError } from '@wal/errors';
import {
  FileStore,
  type Fs,
  type FsFile,
  MemoryStore,
  NodeFs,
  type OpenMode,
  SegmentedStore,
  segmentName,
} from '@wal/store';
import { CrashFs, type CrashFsOperation } from '@wal/store/testing';
import { encodeHead } from '../src/head-file.js';
import { encodeMeta } from '../src/meta-file.js';
import { pattern, RecordingFs, rejectsCode, removeTempDirs, tempDir } from './fs-helpers.js';

const S = 4096;

/** Where a test runs: a file system, a parent directory that exists, a way to list what is there. */
interface Env {
  readonly fs: Fs;
  readonly parent: string;
  /** Every file under `parent` with its bytes (hex), sorted; directories as `<path>/`. */
  contents(): Promise<string[]>;
}

async function nodeEnv(): Promise<Env> {
  const parent = await tempDir();
  const contents = async (): Promise<string[]> => {
    const out: string[] = [];
    const visit = async (dir: string): Promise<void> => {
      for (const entry of await readdir(dir, { withFileTypes: true })) {
        const path = join(dir, entry.name);
        if (entry.isDirectory()) {
          out.push(`${path}/`);
          await visit(path);
        } else out.push(`${path} ${(await readFile(path)).toString('hex')}`);
      }
    };
    await visit(parent);
    return out.sort();
  };
  return { fs: new NodeFs(), parent, contents };
}

function crashEnv(
  fs = new CrashFs({ image: { files: new Map(), dirs: new Set(['/data']) } }),
): Env & {
  fs: CrashFs;
} {
  const contents = (): Promise<string[]> => {
    const { files, dirs } = fs.snapshot();
    return Promise.resolve(
      [
        ...[...dirs].map((dir) => `${dir}/`),
        ...[...files].map(([path, bytes]) => `${path} ${Buffer.from(bytes).toString('hex')}`),
      ].sort(),
    );
  };
  return { fs, parent: '/data', contents };
}

type AnyStore = FileStore | SegmentedStore;

interface Backend {
  readonly name: string;
  readonly segmented: boolean;
  open(location: string, fs: Fs, readOnly?: boolean): Promise<AnyStore>;
}

const BACKENDS: readonly Backend[] = [
  {
    name: 'FileStore',
    segmented: false,
    open: (location, fs, readOnly = false) => FileStore.open(location, { fs, readOnly }),
  },
  {
    name: 'SegmentedStore',
    segmented: true,
    open: (location, fs, readOnly = false) =>
      SegmentedStore.open(location, { fs, segmentSize: S, readOnly }),
  },
];

const ENVS: ReadonlyArray<{ name: string; make: () => Promise<Env> }> = [
  { name: 'NodeFs', make: nodeEnv },
  { name: 'CrashFs', make: () => Promise.resolve(crashEnv()) },
];

/** Writes a whole file through `fs` (test set-up, bypassing any store). */
async function put(fs: Fs, path: string, bytes: Uint8Array): Promise<void> {
  const file = await fs.open(path, 'create');
  await fs.ftruncate(file, 0);
  await fs.pwrite(file, bytes, 0);
  await fs.close(file);
}

const MUTATING = new Set([
  'pwrite',
  'ftruncate',
  'rename',
  'unlink',
  'mkdir',
  'fdatasync',
  'syncDir',
  'lock',
  'release',
]);

/** The calls of `operations` that could change anything (or take a lock). */
function mutations(operations: readonly CrashFsOperation[]): string[] {
  return operations
    .filter((op) => MUTATING.has(op.call) || (op.call === 'open' && !op.args.endsWith(' read')))
    .map((op) => `${op.call} ${op.args}`);
}

/** An Fs over another whose `readdir` also lists `extra` names (a listing raced by a writer). */
class PhantomFs extends RecordingFs {
  constructor(
    inner: Fs,
    readonly extra: string[],
  ) {
    super(inner);
  }
  override async readdir(path: string): Promise<string[]> {
    return [...(await super.readdir(path)), ...this.extra];
  }
}

describe('read-only stores', () => {
  after(removeTempDirs);

  for (const env of ENVS) {
    for (const backend of BACKENDS) {
      describe(`${backend.name} over ${env.name}`, () => {
        it('opens without the lock while a writer holds it, and reads the same bytes', async () => {
          const { fs, parent } = await env.make();
          const location = join(parent, 'log');
          const writer = await backend.open(location, fs);
          try {
            const data = pattern(2 * S + 300, 1);
            await writer.write(0, data);
            await writer.updateMeta({ epoch: 3 });
            await writer.sync();
            const reader = await backend.open(location, fs, true);
            const second = await backend.open(location, fs, true);
            try {
              assert.equal(reader.readOnly, true);
              assert.equal(writer.readOnly, false);
              assert.equal(reader.length, writer.length);
              assert.equal(reader.head, 0);
              assert.deepEqual(reader.supports, writer.supports);
              assert.deepEqual(await reader.read(0, data.length + 10), data);
              assert.deepEqual(await second.read(S - 5, 10), data.subarray(S - 5, S + 5));
              assert.deepEqual(await reader.readMeta(), { epoch: 3 });
              // A writable second opener is still refused.
              await rejectsCode(backend.open(location, fs), 'WAL_LOCKED');
            } finally {
              await reader.close();
              await second.close();
            }
            // The writer is unaffected.
            await writer.write(data.length, pattern(10, 2));
            await writer.sync();
          } finally {
            await writer.close();
          }
        });

        it('refuses every mutating call with WAL_READ_ONLY, and WAL_CLOSED once closed', async () => {
          const { fs, parent } = await env.make();
          const location = join(parent, 'log');
          const writer = await backend.open(location, fs);
          await writer.write(0, pattern(100, 3));
          await writer.close();
          const reader = await backend.open(location, fs, true);
          const calls: Array<[string, () => Promise<unknown>]> = [
            ['write', () => reader.write(100, pattern(5, 4))],
            ['sync', () => reader.sync()],
            ['truncate', () => reader.truncate(50)],
            ['truncateBefore', () => reader.truncateBefore(50)],
            ['updateMeta', () => reader.updateMeta({ a: 1 })],
          ];
          for (const [what, call] of calls) {
            const error = await rejectsCode(call(), 'WAL_READ_ONLY');
            assert.equal(error.message, `cannot ${what}: opened read-only`);
            assert.equal(error.name, 'ReadOnlyError');
          }
          // Argument errors come first, as for every call.
          await rejectsCode(reader.write(-1, new Uint8Array(1)), 'ERR_OUT_OF_RANGE');
          await rejectsCode(reader.updateMeta({ 'store.x': 1 }), 'ERR_INVALID_ARG_VALUE');
          assert.equal(reader.length, 100);
          assert.deepEqual(await reader.read(0, 100), pattern(100, 3));
          await reader.refresh();
          await reader.close();
          await reader.close();
          for (const [, call] of calls) await rejectsCode(call(), 'WAL_CLOSED');
          await rejectsCode(reader.read(0, 1), 'WAL_CLOSED');
          await rejectsCode(reader.readMeta(), 'WAL_CLOSED');
          await rejectsCode(reader.refresh(), 'WAL_CLOSED');
        });

        it('rejects a missing log with WAL_IO (ENOENT) and creates nothing', async () => {
          const e = await env.make();
          const location = join(e.parent, 'absent');
          const before = await e.contents();
          const error = await rejectsCode(backend.open(location, e.fs, true), 'WAL_IO');
          assert.ok(isWalError(error, 'WAL_IO'));
          assert.equal((error as { errno?: string }).errno, 'ENOENT');
          assert.ok(error.message.includes(location), error.message);
          assert.match(error.message, /read-only/);
          assert.deepEqual(await e.contents(), before);
        });

        it('refresh() follows appends, suffix truncations and head moves', async () => {
          const { fs, parent } = await env.make();
          const location = join(parent, 'log');
          const writer = await backend.open(location, fs);
          const reader0 = await backend.open(location, fs, true);
          try {
            assert.equal(reader0.length, 0);
            await reader0.refresh();
            assert.equal(reader0.length, 0);
            const first = pattern(S - 100, 5);
            await writer.write(0, first);
            const reader = await backend.open(location, fs, true);
            try {
              assert.equal(reader.length, S - 100);
              assert.deepEqual(await reader.read(0, S), first);

              // Appends across a segment boundary, into a segment new since open.
              const more = pattern(S + 400, 6);
              await writer.write(first.length, more);
              await writer.updateMeta({ checkpoint: 'c1' });
              assert.equal(reader.length, S - 100, 'unchanged before refresh');
              assert.deepEqual(await reader.read(S - 200, 1000), first.subarray(S - 200));
              await reader.refresh();
              assert.equal(reader.length, 2 * S + 300);
              assert.deepEqual(await reader.readMeta(), { checkpoint: 'c1' });
              const all = await reader.read(0, 3 * S);
              assert.equal(all.length, 2 * S + 300);
              assert.deepEqual(all.subarray(first.length), more);

              // A suffix truncation shrinks the length.
              await writer.truncate(S + 10);
              await reader.refresh();
              assert.equal(reader.length, S + 10);
              assert.equal((await reader.read(S, 100)).length, 10);

              // Re-append over the cut: new bytes, not the old ones.
              const again = pattern(S, 7);
              await writer.write(S + 10, again);
              await reader.refresh();
              assert.equal(reader.length, 2 * S + 10);
              assert.deepEqual(await reader.read(S + 10, S), again);

              // A head move.
              await writer.truncateBefore(S + 20);
              await reader.refresh();
              assert.equal(reader.head, S + 20);
              await rejectsCode(reader.read(0, 1), 'ERR_OUT_OF_RANGE');
              await rejectsCode(reader.read(S + 19, 1), 'ERR_OUT_OF_RANGE');
              assert.deepEqual(await reader.read(S + 20, 10), again.subarray(10, 20));
              assert.equal(reader.length, writer.length);

              // Refresh with reads in flight: both settle, the reads with the bytes.
              const reads = [reader.read(S + 20, 100), reader.read(2 * S, 10)];
              await Promise.all([reader.refresh(), reader.refresh(), ...reads]);
              assert.deepEqual(await reads[0], again.subarray(10, 110));
              assert.deepEqual(await reads[1], again.subarray(S - 10));
            } finally {
              await reader.close();
            }
          } finally {
            await reader0.close();
            await writer.close();
          }
          // The writer's files reopen as they were.
          const reopened = await backend.open(location, fs);
          assert.equal(reopened.head, S + 20);
          assert.equal(reopened.length, 2 * S + 10);
          await reopened.close();
        });

        it('validates readOnly as a boolean', async () => {
          const { fs, parent } = await env.make();
          for (const bad of ['yes', 1, null]) {
            await rejectsCode(
              (backend.segmented ? SegmentedStore.open : FileStore.open)(join(parent, 'log'), {
                fs,
                readOnly: bad as unknown as boolean,
              }),
              'ERR_INVALID_ARG_TYPE',
            );
          }
          const writable = await backend.open(join(parent, 'log'), fs, false);
          assert.equal(writable.readOnly, false);
          await writable.refresh(); // a no-op on a writable handle
          await writable.close();
        });
      });
    }
  }

  describe('change nothing on disk (CrashFs trace)', () => {
    for (const backend of BACKENDS) {
      it(`${backend.name}: open, read, refresh and close make no mutating call`, async () => {
        const env = crashEnv();
        const location = '/data/log';
        const writer = await backend.open(location, env.fs);
        await writer.write(0, pattern(2 * S + 10, 8));
        await writer.updateMeta({ k: 'v' });
        await writer.truncateBefore(S + 1);
        await writer.close();
        const before = await env.contents();
        const from = env.fs.operations.length;
        const reader = await backend.open(location, env.fs, true);
        assert.deepEqual(
          await reader.read(S + 1, 10),
          pattern(2 * S + 10, 8).subarray(S + 1, S + 11),
        );
        await reader.readMeta();
        await reader.refresh();
        await reader.write(0, new Uint8Array(1)).catch(() => undefined);
        await reader.sync().catch(() => undefined);
        await reader.close();
        const ops = env.fs.operations.slice(from);
        assert.deepEqual(mutations(ops), []);
        assert.ok(ops.some((op) => op.call === 'open' && op.args.endsWith(' read')));
        assert.deepEqual(await env.contents(), before);
      });
    }

    it('SegmentedStore: leftover segments below the head stay, and are not read', async () => {
      const files = new Map<string, Uint8Array>([
        [`/data/log/${segmentName(0)}`, pattern(S, 1)],
        [`/data/log/${segmentName(1)}`, pattern(S, 2)],
        [`/data/log/${segmentName(2)}`, pattern(100, 3)],
        ['/data/log/head', encodeHead(2 * S + 10)],
        ['/data/log/meta', encodeMeta({ 'store.segmentSize': S, user: 1 })],
      ]);
      const env = crashEnv(new CrashFs({ image: { files, dirs: new Set(['/data/log']) } }));
      const before = await env.contents();
      const reader = await SegmentedStore.open('/data/log', { fs: env.fs, readOnly: true });
      assert.equal(reader.head, 2 * S + 10);
      assert.equal(reader.length, 2 * S + 100);
      assert.deepEqual(await reader.readMeta(), { user: 1 });
      assert.deepEqual(await reader.read(2 * S + 10, 1000), pattern(100, 3).subarray(10));
      await rejectsCode(reader.read(0, 1), 'ERR_OUT_OF_RANGE');
      await reader.refresh();
      await reader.close();
      assert.deepEqual(mutations(env.fs.operations), []);
      assert.ok(
        !env.fs.operations.some(
          (op) => op.call === 'open' && op.path?.endsWith(segmentName(0)) === true,
        ),
        'segment 0 is never opened',
      );
      assert.deepEqual(await env.contents(), before);
    });

    it('SegmentedStore: a wal-db directory (no meta) opens read-only without gaining one', async () => {
      const files = new Map<string, Uint8Array>([
        [`/data/log/${segmentName(0)}`, pattern(S, 4)],
        [`/data/log/${segmentName(1)}`, pattern(50, 5)],
      ]);
      const env = crashEnv(new CrashFs({ image: { files, dirs: new Set(['/data/log']) } }));
      const before = await env.contents();
      // Same rule as a writable open: the segment size must be given.
      await rejectsCode(
        SegmentedStore.open('/data/log', { fs: env.fs, readOnly: true }),
        'ERR_INVALID_ARG_VALUE',
      );
      const reader = await SegmentedStore.open('/data/log', {
        fs: env.fs,
        segmentSize: S,
        readOnly: true,
      });
      assert.equal(reader.segmentSize, S);
      assert.equal(reader.head, 0, 'no head file, segment 0 present: head 0');
      assert.equal(reader.length, S + 50);
      const expected = Buffer.concat([pattern(S, 4).subarray(S - 10), pattern(50, 5)]);
      assert.deepEqual(await reader.read(S - 10, 100), new Uint8Array(expected));
      await reader.refresh();
      assert.deepEqual(await env.contents(), before);
      assert.deepEqual(mutations(env.fs.operations), []);

      // A writer that then records a different segment size: the reader's refresh refuses it.
      await put(env.fs, '/data/log/meta', encodeMeta({ 'store.segmentSize': 2 * S }));
      await rejectsCode(reader.refresh(), 'WAL_CORRUPTION');
      assert.equal(reader.length, S + 50, 'a failed refresh changes nothing');
      await put(env.fs, '/data/log/meta', encodeMeta({ 'store.segmentSize': S, n: 2 }));
      await reader.refresh();
      assert.deepEqual(await reader.readMeta(), { n: 2 });
      await reader.close();
    });

    it('an empty directory is an empty log', async () => {
      const env = crashEnv(
        new CrashFs({ image: { files: new Map(), dirs: new Set(['/data/log']) } }),
      );
      const reader = await SegmentedStore.open('/data/log', { fs: env.fs, readOnly: true });
      assert.equal(reader.length, 0);
      assert.equal(reader.head, 0);
      assert.equal(reader.segmentSize, 64 * 1024 * 1024);
      assert.deepEqual(await reader.read(0, 10), new Uint8Array(0));
      await reader.close();
      assert.deepEqual(mutations(env.fs.operations), []);
      assert.deepEqual(env.fs.snapshot().files.size, 0);
    });
  });

  describe('validation as a writable open', () => {
    it('SegmentedStore: a missing or damaged head with segment 0 gone is WAL_CORRUPTION', async () => {
      for (const head of [undefined, Uint8Array.of(1, 2, 3)]) {
        const files = new Map<string, Uint8Array>([
          [`/data/log/${segmentName(1)}`, pattern(10, 1)],
          ['/data/log/meta', encodeMeta({ 'store.segmentSize': S })],
        ]);
        if (head !== undefined) files.set('/data/log/head', head);
        const env = crashEnv(new CrashFs({ image: { files, dirs: new Set(['/data/log']) } }));
        const before = await env.contents();
        const error = await rejectsCode(
          SegmentedStore.open('/data/log', { fs: env.fs, segmentSize: S, readOnly: true }),
          'WAL_CORRUPTION',
        );
        assert.match(error.message, head === undefined ? /missing/ : /damaged/);
        assert.deepEqual(await env.contents(), before);
        assert.deepEqual(mutations(env.fs.operations), []);
      }
    });

    it('SegmentedStore: the same checks over NodeFs, with no mutating call', async () => {
      const parent = await tempDir();
      const dir = join(parent, 'log');
      const writer = await SegmentedStore.open(dir, { segmentSize: S });
      await writer.write(0, pattern(2 * S + 5, 2));
      await writer.truncateBefore(S);
      await writer.close();
      const fs = new RecordingFs(new NodeFs());
      // Stored size differs from the option: same error as a writable open.
      await rejectsCode(
        SegmentedStore.open(dir, { fs, segmentSize: 2 * S, readOnly: true }),
        'ERR_INVALID_ARG_VALUE',
      );
      // Head file gone, segment 0 gone.
      const { unlink, writeFile } = await import('node:fs/promises');
      const headBytes = await readFile(join(dir, 'head'));
      await unlink(join(dir, 'head'));
      await rejectsCode(SegmentedStore.open(dir, { fs, readOnly: true }), 'WAL_CORRUPTION');
      await writeFile(join(dir, 'head'), headBytes);
      // A segment larger than the segment size.
      await writeFile(join(dir, segmentName(2)), pattern(S + 1, 3));
      await rejectsCode(SegmentedStore.open(dir, { fs, readOnly: true }), 'WAL_CORRUPTION');
      await writeFile(join(dir, segmentName(2)), pattern(5, 3));
      const reader = await SegmentedStore.open(dir, { fs, readOnly: true });
      assert.equal(reader.length, 2 * S + 5);
      // Grown past the segment size after open: refresh refuses, state unchanged.
      await writeFile(join(dir, segmentName(2)), pattern(S + 1, 3));
      await rejectsCode(reader.refresh(), 'WAL_CORRUPTION');
      assert.equal(reader.length, 2 * S + 5);
      assert.deepEqual(await reader.read(2 * S, 5), pattern(S + 1, 3).subarray(0, 5));
      await reader.close();
      for (const method of MUTATING) assert.equal(fs.count(method), 0, method);
      await assert.rejects(stat(join(dir, 'lock')), { code: 'ENOENT' });
      assert.deepEqual((await readdir(dir)).sort(), [
        segmentName(1),
        segmentName(2),
        'head',
        'meta',
      ]);
    });

    it('FileStore: a damaged metadata file is WAL_CORRUPTION, at open and at refresh', async () => {
      const env = crashEnv();
      const writer = await FileStore.open('/data/log', { fs: env.fs });
      await writer.write(0, pattern(50, 1));
      await writer.truncateBefore(10);
      await writer.close();
      const reader = await FileStore.open('/data/log', { fs: env.fs, readOnly: true });
      assert.equal(reader.head, 10);
      await put(env.fs, '/data/log.meta', Buffer.from('WALM\x01\x02\x03')); // ours, cut short
      await rejectsCode(reader.refresh(), 'WAL_CORRUPTION');
      assert.equal(reader.head, 10);
      assert.equal(reader.length, 50);
      await rejectsCode(
        FileStore.open('/data/log', { fs: env.fs, readOnly: true }),
        'WAL_CORRUPTION',
      );
      await reader.close();
    });
  });

  describe('segments that come and go', () => {
    it('a read of a segment deleted since the last refresh is WAL_TRUNCATED', async () => {
      for (const env of [await nodeEnv(), crashEnv()]) {
        const dir = join(env.parent, 'log');
        const writer = await SegmentedStore.open(dir, { fs: env.fs, segmentSize: S });
        await writer.write(0, pattern(3 * S, 1));
        const reader = await SegmentedStore.open(dir, {
          fs: env.fs,
          readOnly: true,
        });
        await writer.truncateBefore(S + 5);
        const error = await rejectsCode(reader.read(0, 10), 'WAL_TRUNCATED');
        assert.equal((error as { offset?: number }).offset, 0);
        assert.equal(error.name, 'TruncatedError');
        await reader.refresh();
        assert.equal(reader.head, S + 5);
        assert.deepEqual(await reader.read(S + 5, 10), pattern(3 * S, 1).subarray(S + 5, S + 15));
        await reader.close();
        await writer.close();
      }
    });

    it('a segment listed but gone when measured is skipped (a racing truncation)', async () => {
      const env = crashEnv();
      const writer = await SegmentedStore.open('/data/log', { fs: env.fs, segmentSize: S });
      await writer.write(0, pattern(S + 7, 1));
      const fs = new PhantomFs(env.fs, [segmentName(5)]);
      const reader = await SegmentedStore.open('/data/log', { fs, readOnly: true });
      assert.equal(reader.length, S + 7);
      await writer.write(S + 7, pattern(3, 2));
      await reader.refresh();
      assert.equal(reader.length, S + 10);
      await reader.close();
      await writer.close();
    });

    it('opening a read-only segment that fails otherwise rejects with WAL_IO', async () => {
      const env = crashEnv();
      const writer = await SegmentedStore.open('/data/log', { fs: env.fs, segmentSize: S });
      await writer.write(0, pattern(2 * S, 1));
      await writer.close();
      class FailingOpen extends RecordingFs {
        fail = false;
        override open(path: string, mode: OpenMode): Promise<FsFile> {
          if (this.fail && path.endsWith(segmentName(0))) {
            return Promise.reject(
              Object.assign(new Error('EIO'), { code: 'EIO', syscall: 'open' }),
            );
          }
          return super.open(path, mode);
        }
      }
      const fs = new FailingOpen(env.fs);
      const reader = await SegmentedStore.open('/data/log', { fs, readOnly: true });
      fs.fail = true;
      await rejectsCode(reader.read(0, 10), 'WAL_IO');
      // A measuring failure other than ENOENT rejects the open.
      fs.fail = false;
      await reader.close();
      const failing = new FailingOpen(env.fs);
      failing.fail = true;
      await env.fs.unlink(`/data/log/${segmentName(1)}`);
      await rejectsCode(
        SegmentedStore.open('/data/log', { fs: failing, readOnly: true }),
        'WAL_IO',
      );
    });
  });

  it('MemoryStore is never read-only; its refresh resolves', async () => {
    const store = new MemoryStore();
    assert.equal(store.readOnly, false);
    await store.write(0, pattern(3, 1));
    await store.refresh();
    assert.equal(store.length, 3);
    await store.close();
    await rejectsCode(store.refresh(), 'WAL_CLOSED');
  });
});
