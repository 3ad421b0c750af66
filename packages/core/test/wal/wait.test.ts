// Waiting for a level: append's `wait` option, waitFor(lsn, level) and sync()
// (drained(): back-pressure.test.ts).

import assert from 'node:assert/strict';
import { MemoryStore } from '@wal/store';
import { CrashFs } from '@wal/store/testing';
import { HEADER_SIZE } from '../../src/frame.js';
import { Wal } from '../../src/index.js';
import { bytes, rejectsCode } from '../helpers.js';
import { appendAll, segmented } from './fixtures.js';

describe('Wal', () => {
  describe('waitFor and sync', () => {
    it("waits for 'written' and for 'durable' (durable ⇒ wal.durable > lsn)", async () => {
      const fs = new CrashFs();
      const wal = await segmented(fs);
      const a = await wal.append(bytes(100), { wait: 'written' });
      assert.equal(a, 0);
      assert.ok(wal.written > a);
      const b = await wal.append(bytes(200), { wait: 'durable' });
      assert.equal(b, HEADER_SIZE + 100);
      assert.ok(wal.durable > b);
      assert.ok(wal.written >= wal.durable);
      await wal.close();
    });

    it('waitFor a handed-out LSN; rejects bad arguments', async () => {
      const wal = await Wal.open(new MemoryStore());
      const lsn = wal.append(bytes(50));
      await wal.waitFor(lsn, 'written');
      assert.ok(wal.written > lsn);
      await wal.waitFor(lsn, 'durable');
      assert.ok(wal.durable > lsn);
      await wal.waitFor(lsn, 'durable'); // already durable: at once
      await rejectsCode(wal.waitFor(wal.tail, 'written'), 'ERR_OUT_OF_RANGE');
      await rejectsCode(wal.waitFor(-1, 'written'), 'ERR_OUT_OF_RANGE');
      await rejectsCode(wal.waitFor(0, 'soon' as 'written'), 'ERR_INVALID_ARG_VALUE');
      await wal.close();
    });

    it('sync makes everything appended durable; with nothing pending it resolves at once', async () => {
      const wal = await Wal.open(new MemoryStore());
      await wal.sync();
      appendAll(wal, [10, 20, 30]);
      await wal.sync();
      assert.equal(wal.durable, wal.tail);
      await wal.close();
    });
  });
});
