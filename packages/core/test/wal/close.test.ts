// close(): records appended before it are durable after it, later calls
// reject WAL_CLOSED, the lock is released.

import assert from 'node:assert/strict';
import { MemoryStore } from '@wal/store';
import { CrashFs } from '@wal/store/testing';
import { Wal } from '../../src/index.js';
import { bytes, rejectsCode, throwsCode } from '../helpers.js';
import { appendAll, collect, segmented, single } from './fixtures.js';

describe('Wal', () => {
  describe('close', () => {
    it('records appended before close are durable after it; their waiters resolve', async () => {
      const fs = new CrashFs();
      const wal = await segmented(fs);
      const { lsns, payloads } = appendAll(wal, [100, 5000, 300]);
      const durable = wal.append(bytes(400, 4), { wait: 'durable' });
      const written = wal.append(bytes(500, 5), { wait: 'written' });
      const closing = wal.close();
      // A wait made while closing resolves: close makes the record durable.
      await wal.waitFor(lsns[2]!, 'durable');
      await wal.waitFor(lsns[1]!, 'written');
      await closing;
      const lastDurable = await durable;
      const lastWritten = await written;
      assert.equal(wal.durable, wal.tail);
      // A power loss after close loses nothing.
      const again = await segmented(fs.powerLoss({ seed: 3 }).fs());
      const seen = await collect(again.iterate());
      assert.deepEqual(
        seen.map((r) => r.lsn),
        [...lsns, lastDurable, lastWritten],
      );
      assert.deepEqual(
        seen.map((r) => r.payload),
        [...payloads, bytes(400, 4), bytes(500, 5)],
      );
      await again.close();
    });

    it('after close: append throws WAL_CLOSED; read, iterate, sync, truncations reject', async () => {
      const wal = await Wal.open(new MemoryStore());
      const lsn = wal.append(bytes(10));
      const iterator = wal.iterate();
      const closing = wal.close();
      assert.equal(wal.close(), closing, 'idempotent: the same promise');
      throwsCode(() => wal.append(bytes(1)), 'WAL_CLOSED');
      throwsCode(() => wal.appendBatch([bytes(1)]), 'WAL_CLOSED');
      await rejectsCode(wal.append(bytes(1), { wait: 'written' }), 'WAL_CLOSED');
      await rejectsCode(wal.read(lsn), 'WAL_CLOSED');
      assert.throws(() => wal.iterate(), { code: 'WAL_CLOSED' });
      assert.throws(() => wal.iterateBatches(), { code: 'WAL_CLOSED' });
      await rejectsCode(wal.sync(), 'WAL_CLOSED');
      await rejectsCode(wal.truncateAfter(lsn), 'WAL_CLOSED');
      await rejectsCode(wal.truncateBefore(lsn), 'WAL_CLOSED');
      await rejectsCode(wal.refresh(), 'WAL_CLOSED');
      await rejectsCode(wal.drained(), 'WAL_CLOSED');
      await closing;
      await wal.close();
      await rejectsCode(wal.read(lsn), 'WAL_CLOSED');
      await rejectsCode(iterator.next(), 'WAL_CLOSED');
    });

    it('releases the lock: a second open gets WAL_LOCKED before close and succeeds after', async () => {
      for (const open of [segmented, single]) {
        const fs = new CrashFs();
        const wal = await open(fs);
        wal.append(bytes(10));
        await rejectsCode(open(fs), 'WAL_LOCKED');
        await wal.close();
        const second = await open(fs);
        assert.equal(second.recovery.records, 1);
        await second.close();
      }
    });
  });
});
