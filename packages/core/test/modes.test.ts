// The `mode` option: every file and directory a log creates gets it (less
// the umask), in both layouts, through appends, segment rolls, both
// truncations, metadata updates and close.
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { directoryMode } from '@wal/store';
import { permissionsUnder, withUmask } from '@wal/store/testing';
import { type Layout, Wal } from '../src/index.js';
import { bytes, rejectsCode } from './helpers.js';

/** Appends across segments, truncates both ways, and returns the permissions seen while open. */
async function exercise(path: string, layout: Layout, mode: number | undefined) {
  const wal = await Wal.open(path, {
    layout,
    segmentSize: 4096,
    ...(mode === undefined ? {} : { mode }),
  });
  const lsns: number[] = [];
  for (let i = 0; i < 40; i++) lsns.push(wal.append(bytes(300, i)) as number);
  await wal.sync();
  await wal.truncateAfter(lsns[35]!);
  await wal.truncateBefore(lsns[15]!);
  return { wal, lsns };
}

describe('Wal.open mode', () => {
  let parent: string;

  beforeEach(async () => {
    parent = await mkdtemp(join(tmpdir(), 'wal-modes-'));
  });

  afterEach(async () => {
    await rm(parent, { recursive: true, force: true });
  });

  for (const mask of [0o022, 0o077]) {
    for (const mode of [undefined, 0o600, 0o640]) {
      const file = (mode ?? 0o644) & ~mask;
      const label = `mode ${mode?.toString(8) ?? 'default'}, umask ${mask.toString(8).padStart(3, '0')}`;

      it(`segmented: files ${file.toString(8)}, directory ${(directoryMode(mode ?? 0o644) & ~mask).toString(8)} (${label})`, async () => {
        const path = join(parent, 'log');
        const seen = await withUmask(mask, async () => {
          const { wal } = await exercise(path, 'segmented', mode);
          const open = await permissionsUnder(path);
          await wal.close();
          return open;
        });
        assert.ok(seen.has('lock') && seen.has('head') && seen.has('meta'));
        assert.ok([...seen.keys()].filter((name) => name.endsWith('.wal')).length >= 2);
        for (const [name, bits] of seen) {
          const expected = name === '' ? directoryMode(mode ?? 0o644) & ~mask : file;
          assert.equal(bits, expected, `${name || 'the directory'}: ${bits.toString(8)}`);
        }
      });

      it(`single file: the file, metadata and lock ${file.toString(8)} (${label})`, async () => {
        const path = join(parent, 'log.wal');
        const seen = await withUmask(mask, async () => {
          const { wal } = await exercise(path, 'file', mode);
          const open = await permissionsUnder(parent);
          await wal.close();
          return open;
        });
        assert.deepEqual([...seen.keys()].sort(), ['', 'log.wal', 'log.wal.lock', 'log.wal.meta']);
        for (const [name, bits] of seen) if (name !== '') assert.equal(bits, file, name);
      });
    }
  }

  it('an invalid mode is ERR_OUT_OF_RANGE or ERR_INVALID_ARG_TYPE, and nothing is created', async () => {
    const path = join(parent, 'log');
    for (const mode of [0o444, 0o1600, -1, 0.5]) {
      const error = await rejectsCode(Wal.open(path, { mode }), 'ERR_OUT_OF_RANGE');
      assert.ok(error instanceof RangeError);
    }
    await rejectsCode(Wal.open(path, { mode: '600' as never }), 'ERR_INVALID_ARG_TYPE');
    assert.deepEqual(await readdir(parent), []);
  });
});
