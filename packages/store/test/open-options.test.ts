// Options of the file stores' open that concern what the open creates or
// accepts: `checkMeta` (a caller's veto before anything changes).
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { UnsupportedFormatError } from '@wal/errors';
import { FileStore, SegmentedStore, type StoreMeta } from '../src/index.js';
import { treeSnapshot } from '../src/testing/tree.js';
import { removeTempDirs, tempDir } from './fs-helpers.js';

const veto = (meta: StoreMeta): void => {
  if (meta['app.version'] === 2) throw new UnsupportedFormatError(2, [1]);
};

describe('open options', () => {
  after(removeTempDirs);

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
