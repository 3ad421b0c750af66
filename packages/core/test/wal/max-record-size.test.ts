// The maximum record size: checked at append, persisted in the log, and
// enforced at open.

import assert from 'node:assert/strict';
import { FileStore, MemoryStore } from '@wal/store';
import { CrashFs } from '@wal/store/testing';
import { HEADER_SIZE } from '../../src/frame.js';
import { Wal } from '../../src/index.js';
import { bytes, rejectsCode, throwsCode } from '../helpers.js';
import { appendAll, FILE, segmented, single } from './fixtures.js';

describe('Wal', () => {
  describe('maximum record size', () => {
    it('an over-limit append throws WAL_RECORD_TOO_LARGE synchronously', async () => {
      const wal = await Wal.open(new MemoryStore(), { maxRecordSize: 100 });
      assert.equal(wal.maxRecordSize, 100);
      wal.append(bytes(100));
      const error = throwsCode(() => wal.append(bytes(101)), 'WAL_RECORD_TOO_LARGE');
      assert.equal((error as { length?: number }).length, 101);
      assert.equal((error as { limit?: number }).limit, 100);
      // The size and the limit, and no offset: nothing was written at the tail.
      assert.equal((error as { offset?: number }).offset, undefined);
      assert.equal(
        error.message,
        'a record of 101 bytes exceeds the maximum record size of 100 bytes',
      );
      assert.doesNotMatch(error.message, /offset|\b108\b/);
      await rejectsCode(wal.append(bytes(101), { wait: 'written' }), 'WAL_RECORD_TOO_LARGE');
      assert.equal(wal.tail, HEADER_SIZE + 100);
      await wal.close();
    });

    it('is persisted; a smaller one is refused (nothing changes), a larger one is raised', async () => {
      const fs = new CrashFs();
      const wal = await segmented(fs, { maxRecordSize: 5000 });
      const { lsns } = appendAll(wal, [5000, 10]);
      await wal.close();
      const persisted = await segmented(fs);
      assert.equal(persisted.maxRecordSize, 5000);
      throwsCode(() => persisted.append(bytes(5001)), 'WAL_RECORD_TOO_LARGE');
      await persisted.close();
      const snapshot = fs.snapshot();
      await rejectsCode(segmented(fs, { maxRecordSize: 4999 }), 'ERR_OUT_OF_RANGE');
      assert.deepEqual(fs.snapshot().files, snapshot.files, 'a refused open changes nothing');
      const same = await segmented(fs, { maxRecordSize: 5000 });
      await same.close();
      const raised = await segmented(fs, { maxRecordSize: 8000 });
      assert.equal(raised.maxRecordSize, 8000);
      raised.append(bytes(8000));
      await raised.close();
      const again = await segmented(fs);
      assert.equal(again.maxRecordSize, 8000);
      assert.deepEqual(await again.read(lsns[0]!), bytes(5000, 1));
      await rejectsCode(segmented(fs, { maxRecordSize: 5000 }), 'WAL_LOCKED');
      await again.close();
      await rejectsCode(segmented(fs, { maxRecordSize: 5000 }), 'ERR_OUT_OF_RANGE');
    });

    it('an intact record above the persisted maximum fails the open without cutting', async () => {
      const fs = new CrashFs();
      const wal = await single(fs, { maxRecordSize: 2000 });
      appendAll(wal, [10, 1500]);
      await wal.close();
      // Forge a smaller persisted maximum through the store itself.
      const store = await FileStore.open(FILE, { fs });
      await store.updateMeta({ 'wal.maxRecordSize': 1000 });
      await store.close();
      const before = fs.snapshot().files;
      const error = await rejectsCode(single(fs), 'WAL_RECORD_TOO_LARGE');
      assert.equal((error as { offset?: number }).offset, HEADER_SIZE + 10);
      assert.deepEqual(fs.snapshot().files, before, 'nothing is cut');
      // Raising the maximum again opens it.
      const raised = await single(fs, { maxRecordSize: 1500 });
      assert.equal(raised.recovery.records, 2);
      await raised.close();
    });
  });
});
