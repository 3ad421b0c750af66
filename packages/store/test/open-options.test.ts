// Options of the file stores' open that concern what the open creates or
// accepts: only known keys (a misspelt one is refused), `checkMeta` (a
// caller's veto before anything changes) and `mode` (the permissions of every
// file and directory it creates).
import assert from 'node:assert/strict';
import { readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { UnsupportedFormatError } from '@wal/errors';
import fc from 'fast-check';
import {
  DEFAULT_FILE_MODE,
  directoryMode,
  FileStore,
  SegmentedStore,
  type StoreMeta,
} from '../src/index.js';
import { CrashFs } from '../src/testing/crash-fs.js';
import { permissionsUnder, treeSnapshot, withUmask } from '../src/testing/tree.js';
import { removeTempDirs, tempDir } from './fs-helpers.js';

const veto = (meta: StoreMeta): void => {
  if (meta['app.version'] === 2) throw new UnsupportedFormatError(2, [1]);
};

describe('open options', () => {
  after(removeTempDirs);

  describe('option keys', () => {
    /** Each backend, the keys its options document, and a valid value for each. */
    const backends = [
      {
        name: 'FileStore',
        open: (path: string, options: object) => FileStore.open(path, options),
        valid: { readOnly: false, adopt: true, checkMeta: () => undefined, mode: 0o600 },
      },
      {
        name: 'SegmentedStore',
        open: (path: string, options: object) => SegmentedStore.open(path, options),
        valid: {
          segmentSize: 4096,
          readOnly: false,
          maxOpenSegments: 2,
          checkMeta: () => undefined,
          mode: 0o600,
        },
      },
    ];

    for (const { name, open, valid } of backends) {
      const known = new Set(['fs', ...Object.keys(valid)]);
      // Mostly near-misses of real keys (`syncc`, `Mode`), some any string.
      const unknownKey = fc
        .oneof(
          fc
            .tuple(fc.constantFrom(...known, 'sync'), fc.constantFrom('', 'c', 's', '_'))
            .map(([key, extra]) => `${extra === '_' ? key.toUpperCase() : key}${extra}`),
          fc.string({ maxLength: 12 }),
        )
        .filter((key) => !known.has(key));

      it(`${name}.open rejects an unknown key with ERR_INVALID_ARG_VALUE naming it, creating nothing`, async () => {
        const parent = await tempDir();
        await fc.assert(
          fc.asyncProperty(
            unknownKey,
            fc.anything(),
            fc.subarray(Object.keys(valid)),
            async (key, value, others) => {
              const path = join(parent, 'log');
              const given = Object.fromEntries([
                ...others.map((other) => [other, valid[other as keyof typeof valid]]),
                [key, value],
              ]);
              await assert.rejects(open(path, given), (error: TypeError & { code: string }) => {
                assert.ok(error instanceof TypeError, String(error));
                assert.equal(error.code, 'ERR_INVALID_ARG_VALUE');
                assert.ok(error.message.includes(`options.${key}`), error.message);
                return true;
              });
              assert.deepEqual(await readdir(parent), [], 'nothing created');
            },
          ),
          { numRuns: 60 },
        );
      });

      it(`${name}.open accepts every documented key, and undefined for each`, async () => {
        await fc.assert(
          fc.asyncProperty(
            fc.subarray(Object.keys(valid)),
            fc.subarray(Object.keys(valid)),
            async (given, unset) => {
              const fs = new CrashFs();
              const options = Object.fromEntries([
                ['fs', fs],
                ...given.map((key) => [key, valid[key as keyof typeof valid]]),
                ...unset.filter((key) => !given.includes(key)).map((key) => [key, undefined]),
              ]);
              const store = await open('/log', options);
              await store.write(0, new Uint8Array([1]));
              await store.close();
            },
          ),
          { numRuns: 30 },
        );
      });
    }
  });

  describe('checkMeta', () => {
    it('a segmented open calls it with the caller’s keys; a throw rejects before anything changes', async () => {
      const dir = join(await tempDir(), 'log');
      const store = await SegmentedStore.open(dir, { segmentSize: 4096 });
      await store.write(0, new Uint8Array([1, 2, 3]));
      await store.updateMeta({ 'app.version': 2 });
      await store.close();
      // Without its head file the open would write one: the veto comes first.
      await rm(join(dir, 'head'));
      const before = await treeSnapshot(dir);
      const seen: StoreMeta[] = [];
      await assert.rejects(
        SegmentedStore.open(dir, {
          checkMeta: (meta) => {
            seen.push(meta);
            veto(meta);
          },
        }),
        UnsupportedFormatError,
      );
      assert.deepEqual(seen, [{ 'app.version': 2 }]);
      const after = await treeSnapshot(dir);
      // Only the lock's coming and going moved the directory's times.
      const files = (lines: string[]) => lines.filter((line) => !line.startsWith(`${dir}/ `));
      assert.deepEqual(files(after), files(before));
      const again = await SegmentedStore.open(dir); // the lock was released
      await again.close();
    });

    it('a single-file open calls it too, and lets a fine map through', async () => {
      const path = join(await tempDir(), 'log.wal');
      const store = await FileStore.open(path, { checkMeta: veto });
      await store.updateMeta({ 'app.version': 2 });
      await store.close();
      await assert.rejects(FileStore.open(path, { checkMeta: veto }), UnsupportedFormatError);
      const again = await FileStore.open(path, { checkMeta: () => undefined });
      assert.equal((await again.readMeta())['app.version'], 2);
      await again.close();
    });
  });
});

describe('mode', () => {
  after(removeTempDirs);

  it('directoryMode adds the search bit to each read bit', () => {
    assert.equal(DEFAULT_FILE_MODE, 0o644);
    assert.equal(directoryMode(0o644), 0o755);
    assert.equal(directoryMode(0o640), 0o750);
    assert.equal(directoryMode(0o600), 0o700);
    assert.equal(directoryMode(0o660), 0o770);
    assert.equal(directoryMode(0o777), 0o777);
  });

  for (const mask of [0o022, 0o077]) {
    for (const mode of [undefined, 0o600, 0o640, 0o660]) {
      const file = (mode ?? 0o644) & ~mask;
      const dir = directoryMode(mode ?? 0o644) & ~mask;
      const label = `mode ${mode === undefined ? 'default' : mode.toString(8)}, umask ${mask.toString(8).padStart(3, '0')}`;

      it(`segmented: every file ${file.toString(8)}, the directory ${dir.toString(8)} (${label})`, async () => {
        const path = join(await tempDir(), 'log');
        const seen = await withUmask(mask, async () => {
          const store = await SegmentedStore.open(path, {
            segmentSize: 4096,
            ...(mode === undefined ? {} : { mode }),
          });
          assert.equal(store.mode, mode ?? 0o644);
          await store.write(0, new Uint8Array(10_000).fill(7)); // three segments
          await store.sync();
          await store.truncateBefore(5000); // a new head file, segment 0 deleted
          await store.updateMeta({ 'app.x': 1 }); // a new metadata file
          const open = await permissionsUnder(path); // the lock file exists now
          await store.close();
          return open;
        });
        assert.deepEqual([...seen.keys()].sort(), [
          '',
          '00000000000000000001.wal',
          '00000000000000000002.wal',
          'head',
          'lock',
          'meta',
        ]);
        for (const [name, bits] of seen) {
          assert.equal(
            bits,
            name === '' ? dir : file,
            `${name || 'the directory'}: ${bits.toString(8)}`,
          );
        }
      });

      it(`single file: the file, its metadata and lock ${file.toString(8)} (${label})`, async () => {
        const root = await tempDir();
        const path = join(root, 'log.wal');
        const seen = await withUmask(mask, async () => {
          const store = await FileStore.open(path, mode === undefined ? {} : { mode });
          await store.write(0, new Uint8Array(100));
          await store.truncateBefore(10);
          const open = await permissionsUnder(root);
          await store.close();
          return open;
        });
        assert.deepEqual([...seen.keys()].sort(), ['', 'log.wal', 'log.wal.lock', 'log.wal.meta']);
        for (const [name, bits] of seen) if (name !== '') assert.equal(bits, file, name);
      });
    }
  }

  it('existing files and directories keep their permissions', async () => {
    const path = join(await tempDir(), 'log');
    const store = await SegmentedStore.open(path, { segmentSize: 4096, mode: 0o640 });
    await store.write(0, new Uint8Array(10));
    await store.close();
    const before = await permissionsUnder(path);
    const again = await SegmentedStore.open(path, { mode: 0o600 });
    await again.write(10, new Uint8Array(10));
    await again.close();
    assert.deepEqual(await permissionsUnder(path), before);
  });

  it('refuses a mode the owner could not reopen, or not a mode at all', async () => {
    const dir = join(await tempDir(), 'never');
    for (const mode of [0o400, 0o200, 0o477, 0o1644, 0o4755, -1, 1.5, Number.NaN, 0o10000]) {
      for (const open of [
        () => SegmentedStore.open(dir, { mode }),
        () => FileStore.open(`${dir}.wal`, { mode }),
      ]) {
        await assert.rejects(open(), (error: RangeError & { code: string }) => {
          assert.ok(error instanceof RangeError);
          assert.equal(error.code, 'ERR_OUT_OF_RANGE');
          assert.match(error.message, /options\.mode/);
          return true;
        });
      }
    }
    for (const mode of ['644', null, 420n]) {
      await assert.rejects(SegmentedStore.open(dir, { mode: mode as never }), {
        name: 'TypeError',
        code: 'ERR_INVALID_ARG_TYPE',
      });
    }
    await assert.rejects(stat(dir), { code: 'ENOENT' });
    await assert.rejects(stat(`${dir}.wal`), { code: 'ENOENT' });
  });
});
