// close(): records appended before it are durable after it, later calls
// reject WAL_CLOSED, the lock is released.

import assert from 'node:assert/strict';
import { MemoryStore } from '@wal/store';
import { CrashFs, FaultFs } from '@wal/store/testing';
import { Wal } from '../../src/index.js';
import { bytes, rejectsCode, throwsCode, tick } from '../helpers.js';
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

    const crashes = {
      // The machine is off: the log reopens from what a power loss left.
      'a power loss': (fs: CrashFs) => fs.powerLoss({ seed: 3 }).fs(),
      // The process is killed: the next one reads the same page cache.
      'a process crash': (fs: CrashFs) => fs.processCrash(),
    };
    for (const [crash, reboot] of Object.entries(crashes)) {
      it(`a close() after ${crash} reaches nothing of the state the log reopens from`, async () => {
        // The harness itself: the program that crashed goes on with a head
        // replacement it began (writing head.tmp, renaming it, or removing
        // it) and close() with its own calls; none of it may land.
        const fs = new CrashFs();
        const wal = await segmented(fs);
        const { lsns } = appendAll(wal, [100, 5000, 300]);
        await wal.sync();
        const written = appendAll(wal, [200, 6000]).lsns; // written maybe, never durable
        await wal.waitFor(wal.tail - 1, 'written');
        // The crash comes once the replacement's temporary file is open.
        const from = fs.operations.length;
        const cut = wal.truncateBefore(lsns[1]!);
        cut.catch(() => {});
        const tempOpen = () =>
          fs.operations
            .slice(from)
            .some(
              (op) =>
                op.call === 'open' && op.path === '/wal/head.tmp' && op.settledAt !== undefined,
            );
        for (let turns = 0; !tempOpen(); turns++) {
          assert.ok(turns < 1000, 'the head replacement never opened its temporary file');
          await tick();
        }
        const next = reboot(fs);
        const image = next.snapshot();
        const crashed = fs.operations.length;
        await wal.close().catch(() => {});
        const late = fs.operations.slice(crashed);
        assert.ok(
          late.some((op) => op.call === 'rename' || op.call === 'unlink'),
          'the crashed program tried to write by path',
        );
        for (const op of late) assert.ok(op.error !== undefined, `${op.call} ${op.args} landed`);
        assert.deepEqual(next.snapshot(), image);
        const again = await segmented(next);
        try {
          const found = (await collect(again.iterate())).map((r) => r.lsn);
          // After a kill, the page cache holds the records written, not synced.
          const kept = crash === 'a process crash' ? [...lsns, ...written] : lsns;
          assert.deepEqual(found.slice(0, kept.length), kept);
        } finally {
          await again.close();
        }
      });
    }

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

    it('a write failing once close() is called rejects the close, at every moment it may land', async () => {
      // A write in flight fails (a pwrite making no progress) a few turns of
      // the event loop's microtasks after the append: before close(), just
      // after it (while close() waits for earlier truncations), or later.
      // Resolving would promise the lost record durable (DURABILITY.md §3).
      const outcomes = new Set<string>();
      for (let turns = 0; turns < 40; turns++) {
        const faults = new FaultFs(new CrashFs());
        // No zeros written ahead: the fault is for the records' write.
        const wal = await segmented(faults, { preallocate: 0 });
        await wal.append(bytes(300), { wait: 'durable' });
        faults.inject({ method: 'pwrite', fault: { short: 0 } });
        wal.appendBatch([bytes(100), bytes(5000)]);
        for (let turn = 0; turn < turns; turn++) await Promise.resolve();
        const failedBefore = wal.failure !== undefined;
        let closeError: unknown;
        await wal.close().catch((error: unknown) => {
          closeError = error;
        });
        assert.ok(wal.failure !== undefined, `${turns} turns: the write failed`);
        if (failedBefore) {
          assert.equal(closeError, undefined, 'a failed log closes and resolves');
        } else {
          assert.equal(
            (closeError as { code?: string } | undefined)?.code,
            'WAL_WRITE_FAILED',
            `${turns} turns`,
          );
        }
        outcomes.add(failedBefore ? 'before' : 'during');
      }
      // The sweep crossed the moment the failure lands.
      assert.deepEqual([...outcomes].sort(), ['before', 'during']);
    });

    it('a waitFor made during a close whose final write or sync fails rejects with that failure, not WAL_CLOSED', async () => {
      const outcome = (promise: Promise<unknown>): Promise<string> =>
        promise.then(
          () => 'resolved',
          (error: unknown) => (error as { code?: string }).code ?? String(error),
        );
      // The final write fails: both levels get the write's failure.
      for (const level of ['written', 'durable'] as const) {
        const fs = new FaultFs(new CrashFs());
        const wal = await segmented(fs, { durableWrites: false });
        await wal.append(bytes(10), { wait: 'durable' });
        const lsn = wal.append(bytes(10));
        fs.inject({ method: ['pwrite', 'pwriteSync'], fault: 'EIO' });
        const closed = outcome(wal.close());
        const wait = outcome(wal.waitFor(lsn, level));
        assert.equal(await closed, 'WAL_WRITE_FAILED');
        assert.equal(await wait, 'WAL_WRITE_FAILED', level);
        assert.equal(wal.failure?.code, 'WAL_WRITE_FAILED');
      }
      // The final sync fails: the record is written, not durable, and a
      // reopen drops it (it resumes at the durable watermark): the written
      // wait rejects too, as the same call made after the failure outside a
      // close does (docs/DURABILITY.md §4, WAL_FAILED).
      {
        const fs = new FaultFs(new CrashFs());
        const wal = await segmented(fs, { durableWrites: false, preallocate: 0 });
        await wal.append(bytes(10), { wait: 'durable' });
        const lsn = wal.append(bytes(10));
        fs.inject({ method: ['fdatasync', 'fdatasyncSync'], fault: 'EIO', persistent: true });
        const closed = outcome(wal.close());
        const written = outcome(wal.waitFor(lsn, 'written'));
        const durable = outcome(wal.waitFor(lsn, 'durable'));
        assert.equal(await closed, 'WAL_FAILED');
        assert.equal(await written, 'WAL_FAILED');
        assert.equal(await durable, 'WAL_FAILED');
        assert.equal(await outcome(wal.waitFor(lsn, 'written')), 'WAL_FAILED', 'after the close');
        fs.clear();
        const again = await wal.reopen();
        assert.equal(again.tail, lsn, 'the record is dropped');
        await again.close();
      }
      // The same without a close: the written wait made after the failed sync rejects.
      {
        const fs = new FaultFs(new CrashFs());
        const wal = await segmented(fs, { durableWrites: false, preallocate: 0 });
        await wal.append(bytes(10), { wait: 'durable' });
        const lsn = await wal.append(bytes(10), { wait: 'written' });
        fs.inject({ method: ['fdatasync', 'fdatasyncSync'], fault: 'EIO', persistent: true });
        await rejectsCode(wal.sync(), 'WAL_FAILED');
        assert.equal(await outcome(wal.waitFor(lsn, 'written')), 'WAL_FAILED');
        // The fault is persistent: the record of where the log resumes (its
        // metadata's fdatasync) fails too, and close() reports it.
        await rejectsCode(wal.close(), 'WAL_FAILED');
      }
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
