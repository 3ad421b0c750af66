// truncateBefore(lsn): the head moves durably, segments below it go, the
// records below it are made durable first (beside concurrent writers:
// ../truncate-before.test.ts).

import assert from 'node:assert/strict';
import { MemoryStore } from '@wal/store';
import { CrashFs } from '@wal/store/testing';
import { Wal } from '../../src/index.js';
import { bytes, rejectsCode } from '../helpers.js';
import { appendAll, collect, DIR, segmented } from './fixtures.js';

describe('Wal', () => {
  describe('truncation', () => {
    it('truncateBefore moves the head durably, deletes segments below it, reopen sees the same head', async () => {
      const fs = new CrashFs();
      const wal = await segmented(fs);
      const { lsns } = appendAll(
        wal,
        Array.from({ length: 12 }, (_, i) => 1500 + i),
      );
      await wal.sync();
      const before = (await fs.readdir(DIR)).filter(
        (name) => !name.startsWith('meta') && name !== 'head',
      );
      await wal.truncateBefore(lsns[8]!);
      assert.equal(wal.head, lsns[8]);
      const after = (await fs.readdir(DIR)).filter(
        (name) => !name.startsWith('meta') && name !== 'head',
      );
      assert.ok(after.length < before.length, `${before.join(',')} -> ${after.join(',')}`);
      assert.equal(wal.store.head, lsns[8]);
      // The head itself is fine; non-boundaries and truncated offsets are refused.
      await wal.truncateBefore(lsns[8]!);
      await rejectsCode(wal.truncateBefore(lsns[2]!), 'WAL_TRUNCATED');
      await rejectsCode(wal.truncateBefore(lsns[9]! + 1), 'WAL_NOT_BOUNDARY');
      await rejectsCode(wal.truncateBefore(wal.tail + 1), 'ERR_OUT_OF_RANGE');
      await rejectsCode(wal.truncateBefore(-1), 'ERR_OUT_OF_RANGE');
      await wal.close();
      const again = await segmented(fs.powerLoss({ seed: 2 }).fs());
      assert.equal(again.head, lsns[8]);
      assert.equal(again.recovery.head, lsns[8]);
      assert.deepEqual(
        (await collect(again.iterate())).map((r) => r.lsn),
        lsns.slice(8),
      );
      // Everything, up to the tail.
      await again.truncateBefore(again.tail);
      assert.equal(again.head, again.tail);
      assert.deepEqual(await collect(again.iterate()), []);
      const next = again.append(bytes(3));
      assert.equal(next, again.head);
      await again.close();
    });

    it('truncateBefore makes the records up to lsn durable first', async () => {
      const wal = await Wal.open(new MemoryStore());
      const { lsns } = appendAll(wal, [10, 20, 30]);
      await wal.truncateBefore(lsns[2]!);
      assert.ok(wal.durable > lsns[2]!);
      assert.equal(wal.head, lsns[2]);
      await wal.close();
    });
  });
});
