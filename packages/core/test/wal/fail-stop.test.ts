// Fail-stop: a failed write, fdatasync, truncation or durable-hint update
// stops the log; reopen resumes where the durable state says.

import assert from 'node:assert/strict';
import { MemoryStore } from '@wal/store';
import { CrashFs, FaultFs } from '@wal/store/testing';
import { HEADER_SIZE } from '../../src/frame.js';
import { Wal } from '../../src/index.js';
import {
  bytes,
  durableOnly,
  rejectsCode,
  type Tracked,
  throwsCode,
  tick,
  track,
} from '../helpers.js';
import { appendAll, collect, collectBatches, segmented, single } from './fixtures.js';

/**
 * The three ways a log calls its file system: asynchronously with durable
 * writes (the default: a durable commit's write is its sync, so a failed
 * sync is a failed `pwriteDurable`), asynchronously with a write then an
 * `fdatasync`, or on the calling thread (`blockingSync`); a failure must
 * stop the log the same way in all.
 */
const MODES = [
  {
    name: '',
    options: {},
    pwrite: 'pwrite',
    fdatasync: 'pwriteDurable',
    // A durable commit's write: its failure leaves its durability unknown, as a failed sync does.
    durablePwrite: 'pwriteDurable',
    durablePwriteFails: 'WAL_FAILED',
  },
  {
    name: ' (write + fdatasync)',
    options: { durableWrites: false },
    pwrite: 'pwrite',
    fdatasync: 'fdatasync',
    durablePwrite: 'pwrite',
    durablePwriteFails: 'WAL_WRITE_FAILED',
  },
  {
    name: ' (blockingSync)',
    options: { blockingSync: true },
    pwrite: 'pwriteSync',
    fdatasync: 'fdatasyncSync',
    durablePwrite: 'pwriteSync',
    durablePwriteFails: 'WAL_WRITE_FAILED',
  },
] as const;

/**
 * After a failed plain write at `failAt` and the close: the durable wait of a
 * record below it resolved, the failure is the write's, every byte below it
 * is durable, and `reopen()` resumes there (DURABILITY §4, `WAL_WRITE_FAILED`).
 */
async function assertResumesAtFailedWrite(wal: Wal, waited: Tracked, failAt: number) {
  assert.equal(waited.state, 'resolved', String(waited.error));
  assert.equal(wal.failure?.code, 'WAL_WRITE_FAILED');
  assert.equal(wal.durable, failAt);
  const again = await wal.reopen();
  assert.equal(again.tail, failAt);
  await again.close();
}

describe('Wal', () => {
  for (const mode of MODES)
    describe(`fail-stop${mode.name}`, () => {
      it('EIO on a write: later appends throw WAL_WRITE_FAILED, earlier records stay, reopen resumes at the failed write', async () => {
        const fs = new FaultFs(new CrashFs());
        const wal = await single(fs, { stagingLimit: 64 * 1024, ...mode.options });
        const { lsns, payloads } = appendAll(wal, [100, 200]);
        await wal.sync();
        const durableBefore = wal.durable;
        // Two large records: one plain write each (no durable wait: with
        // one, the first would be a durable write). The first fails, the
        // second lands.
        const failAt = wal.tail;
        fs.inject({ method: mode.pwrite, when: (call) => call.args[1] === failAt });
        const a = wal.append(bytes(20000, 7), { wait: 'written' });
        const b = wal.append(bytes(20000, 8), { wait: 'written' });
        const aError = await rejectsCode(a, 'WAL_WRITE_FAILED');
        assert.equal((aError as { offset?: number }).offset, failAt);
        await rejectsCode(b, 'WAL_WRITE_FAILED');
        assert.equal(wal.failure?.code, 'WAL_WRITE_FAILED');
        throwsCode(() => wal.append(bytes(1)), 'WAL_WRITE_FAILED');
        await rejectsCode(wal.append(bytes(1), { wait: 'written' }), 'WAL_WRITE_FAILED');
        await rejectsCode(wal.sync(), 'WAL_WRITE_FAILED');
        await rejectsCode(wal.drained(), 'WAL_WRITE_FAILED');
        await rejectsCode(wal.truncateAfter(lsns[0]!), 'WAL_WRITE_FAILED');
        await rejectsCode(wal.waitFor(failAt, 'durable'), 'WAL_WRITE_FAILED');
        // Earlier records: readable and still durable.
        await wal.waitFor(lsns[1]!, 'durable');
        assert.equal(wal.durable, durableBefore);
        assert.deepEqual(await wal.read(lsns[1]!), payloads[1]);
        const again = await wal.reopen();
        assert.equal(wal.closed, true);
        assert.equal(again.tail, failAt);
        assert.equal(again.failure, undefined);
        assert.deepEqual(
          (await collect(again.iterate())).map((r) => r.lsn),
          lsns,
        );
        const next = await again.append(bytes(3), { wait: 'durable' });
        assert.equal(next, failAt);
        await again.close();
        // And the lock was released by both.
        const last = await single(fs);
        assert.equal(last.tail, failAt + HEADER_SIZE + 3);
        await last.close();
      });

      it('EIO on fdatasync: everything rejects WAL_FAILED, close resolves, reopen resumes at the last durable offset', async () => {
        const fs = new FaultFs(new CrashFs());
        const wal = await single(fs, mode.options);
        const { lsns, payloads } = appendAll(wal, [100, 200]);
        await wal.sync();
        const durable = wal.durable;
        fs.inject({ method: mode.fdatasync });
        const lost = wal.append(bytes(300, 3), { wait: 'durable' });
        await rejectsCode(lost, 'WAL_FAILED');
        assert.equal(wal.failure?.code, 'WAL_FAILED');
        throwsCode(() => wal.append(bytes(1)), 'WAL_FAILED');
        await rejectsCode(wal.sync(), 'WAL_FAILED');
        await rejectsCode(
          wal.waitFor(lsns[0]!, 'written').then(() => wal.waitFor(durable, 'durable')),
          'WAL_FAILED',
        );
        await rejectsCode(wal.truncateBefore(lsns[1]!), 'WAL_FAILED');
        await rejectsCode(wal.drained(), 'WAL_FAILED');
        // Records made durable before the failure resolve their waits at once.
        await wal.waitFor(lsns[1]!, 'durable');
        // The store latched its failure: reads are refused too, with the
        // log's failure (its offset the durable watermark).
        const readError = await rejectsCode(wal.read(lsns[0]!), 'WAL_FAILED');
        assert.equal(readError, wal.failure);
        assert.equal((readError as { offset?: number }).offset, durable);
        const iterateError = await rejectsCode(collect(wal.iterate()), 'WAL_FAILED');
        assert.equal((iterateError as { offset?: number }).offset, durable);
        const batchError = await rejectsCode(collectBatches(wal.iterateBatches()), 'WAL_FAILED');
        assert.equal((batchError as { offset?: number }).offset, durable);
        await wal.close();
        await wal.close();
        const again = await wal.reopen();
        assert.equal(again.tail, durable, 'cut at the last durable offset');
        assert.equal(again.recovery.truncated, true);
        assert.equal(again.recovery.end, durable);
        const next = await again.append(bytes(5), { wait: 'durable' });
        assert.equal(next, durable);
        assert.deepEqual(await again.read(lsns[1]!), payloads[1]);
        await again.close();
      });

      it('a failed write on a SegmentedStore with records in flight: reopen drops everything from the failure', async () => {
        const inner = new CrashFs();
        const fs = new FaultFs(inner);
        const wal = await segmented(fs, mode.options);
        const first = await wal.append(bytes(1000, 1), { wait: 'durable' });
        fs.inject({ method: mode.durablePwrite });
        const failed = wal.append(bytes(100, 2), { wait: 'durable' });
        await rejectsCode(failed, mode.durablePwriteFails);
        assert.equal(wal.failure?.code, mode.durablePwriteFails);
        const closing = wal.close();
        await closing;
        const again = await wal.reopen();
        assert.equal(again.tail, first + HEADER_SIZE + 1000);
        assert.deepEqual(await again.read(first), bytes(1000, 1));
        await again.close();
      });

      it('a write failing on the directory fsync of a new segment: reopen resumes at the durable watermark, with no durable wait before', async () => {
        const fs = new FaultFs(new CrashFs());
        const wal = await segmented(fs, mode.options);
        const first = await wal.append(bytes(100, 1), { wait: 'durable' });
        const durable = wal.durable;
        assert.equal(durable, first + HEADER_SIZE + 100);
        let last = 0;
        for (let i = 0; i < 6; i++) last = wal.append(bytes(500, 2 + i)); // segment 0
        await wal.waitFor(last, 'written');
        const failAt = wal.tail;
        assert.ok(failAt > durable && failAt < 4096);
        // The record crossing into segment 1 makes the store create it and
        // fsync the directory: the store latches the failure.
        fs.inject({ method: 'syncDir', fault: 'EIO', persistent: true });
        const error = await rejectsCode(
          wal.append(bytes(2000, 9), { wait: 'written' }),
          'WAL_WRITE_FAILED',
        );
        assert.equal((error as { offset?: number }).offset, failAt);
        assert.equal((error.cause as { code?: string }).code, 'WAL_FAILED');
        assert.equal(wal.durable, durable);
        // No durable wait, no sync: the reopen alone must drop what was
        // written after the last durable offset (docs/DURABILITY.md §4).
        fs.clear();
        const again = await wal.reopen();
        assert.equal(again.tail, durable);
        assert.deepEqual(
          (await collect(again.iterate())).map((r) => r.lsn),
          [first],
        );
        await again.close();
      });

      for (const how of ['waitFor', 'sync', 'a durable append'] as const)
        it(`a failed write while a durable wait (${how}) is pending on records written before it: close() and reopen() at once keep them, durable, and the wait resolves`, async () => {
          const inner = new CrashFs();
          const fs = new FaultFs(inner);
          const wal = await segmented(fs, { preallocate: 0, ...mode.options });
          const first = await wal.append(bytes(100, 1), { wait: 'durable' });
          const { lsns } = appendAll(wal, [200]);
          const last = wal.tail;
          lsns.push(last);
          // Written first, then waited for as durable: the group commit's
          // flush makes them durable (with durable writes on too), except
          // for the durable append, sent as a durable write when it can.
          let pending: Promise<unknown>;
          if (how === 'a durable append') {
            pending = wal.append(bytes(300, 3), { wait: 'durable' });
            await wal.waitFor(last, 'written');
          } else {
            wal.append(bytes(300, 3));
            await wal.waitFor(last, 'written');
            pending = how === 'sync' ? wal.sync() : wal.waitFor(last, 'durable');
          }
          const failAt = wal.tail;
          // The next plain write fails; the group commit has a flush
          // scheduled (or running) for the records written before it.
          fs.inject({ method: mode.pwrite });
          const waited = track(pending);
          await rejectsCode(wal.append(bytes(50, 9), { wait: 'written' }), 'WAL_WRITE_FAILED');
          assert.equal(wal.failure?.offset, failAt);
          // The caller reacts at once (docs/DURABILITY.md §4).
          const again = await wal.reopen();
          assert.equal(waited.state, 'resolved', String(waited.error));
          assert.equal(
            wal.failure?.code,
            'WAL_WRITE_FAILED',
            'the failure is the write, not a sync',
          );
          assert.equal(
            wal.durable,
            failAt,
            'the close made everything written before the failure durable',
          );
          assert.equal(again.tail, failAt, 'reopen resumes at the failed write');
          assert.deepEqual(
            (await collect(again.iterate())).map((r) => r.lsn),
            [first, ...lsns],
          );
          await again.close();
          // And they survive a power loss.
          const after = await segmented(durableOnly(inner));
          assert.equal(after.tail, failAt);
          await after.close();
        });

      it('a write failing while close() runs, with a durable wait pending on records written before it: the close rejects, the wait resolves, reopen keeps them', async () => {
        const fs = new FaultFs(new CrashFs());
        const wal = await segmented(fs, { preallocate: 0, ...mode.options });
        await wal.append(bytes(100, 1), { wait: 'durable' });
        wal.append(bytes(200, 2));
        const last = wal.tail;
        wal.append(bytes(300, 3));
        await wal.waitFor(last, 'written');
        const failAt = wal.tail;
        const waited = track(wal.waitFor(last, 'durable'));
        fs.inject({ method: mode.pwrite });
        wal.append(bytes(50, 9));
        await rejectsCode(wal.close(), 'WAL_WRITE_FAILED');
        await assertResumesAtFailedWrite(wal, waited, failAt);
      });
    });

  describe('a failed write with a commit delay', () => {
    it('close() serves the flush scheduled for the records before the failed write: the wait resolves before close() does, no timer outlives it', async () => {
      const fs = new FaultFs(new CrashFs());
      const wal = await segmented(fs, { preallocate: 0, durableWrites: false, commitDelayMs: 200 });
      const lsn = wal.append(bytes(100, 1));
      await wal.waitFor(lsn, 'written');
      const failAt = wal.tail;
      fs.inject({ method: 'pwrite', fault: 'EIO' });
      const waited = track(wal.waitFor(lsn, 'durable'));
      await rejectsCode(wal.append(bytes(100, 2), { wait: 'written' }), 'WAL_WRITE_FAILED');
      await wal.close();
      await assertResumesAtFailedWrite(wal, waited, failAt);
    });
  });

  describe('failures outside appends', () => {
    it('a failed truncation stops the log; reopen completes it', async () => {
      const fs = new FaultFs(new CrashFs());
      const wal = await single(fs);
      const { lsns } = appendAll(wal, [100, 200, 300]);
      fs.inject({ method: 'ftruncate' });
      const error = await rejectsCode(wal.truncateAfter(lsns[0]!), 'WAL_FAILED');
      assert.equal((error as { offset?: number }).offset, lsns[1]);
      assert.equal(wal.failure, error);
      throwsCode(() => wal.append(bytes(1)), 'WAL_FAILED');
      await rejectsCode(wal.truncateBefore(lsns[0]!), 'WAL_FAILED');
      await wal.close();
      const again = await wal.reopen();
      assert.equal(again.tail, lsns[1]);
      await again.close();
    });

    it('a failed truncateBefore stops the log; the head is unchanged', async () => {
      const fs = new FaultFs(new CrashFs());
      const wal = await single(fs);
      const { lsns } = appendAll(wal, [100, 200, 300]);
      fs.inject({ method: 'rename' });
      await rejectsCode(wal.truncateBefore(lsns[1]!), 'WAL_FAILED');
      assert.equal(wal.head, 0);
      throwsCode(() => wal.append(bytes(1)), 'WAL_FAILED');
      const again = await wal.reopen();
      assert.ok(again.head === 0 || again.head === lsns[1]);
      assert.equal(again.tail, lsns[2]! + HEADER_SIZE + 300, 'every record was durable');
      await again.close();
    });

    it('a failed durable-hint update stops the log; durable records survive the reopen', async () => {
      const fs = new FaultFs(new CrashFs());
      const wal = await segmented(fs);
      const first = await wal.append(bytes(100), { wait: 'durable' });
      fs.inject({ method: 'rename', persistent: false });
      // Crosses a segment: the sync is followed by a hint update, which fails.
      const second = await wal.append(bytes(5000), { wait: 'durable' });
      for (let i = 0; i < 20 && wal.failure === undefined; i++) await tick();
      assert.equal(wal.failure?.code, 'WAL_FAILED');
      throwsCode(() => wal.append(bytes(1)), 'WAL_FAILED');
      await wal.close();
      const again = await wal.reopen();
      assert.deepEqual(await again.read(first), bytes(100));
      assert.deepEqual(await again.read(second), bytes(5000));
      await again.close();
    });

    it('a failed durable-hint update (the store not latched): close() syncs what was written meanwhile, and reopen() keeps it', async () => {
      const fs = new FaultFs(new CrashFs());
      const wal = await segmented(fs, { durableWrites: false, preallocate: 0 });
      await wal.append(bytes(100), { wait: 'durable' });
      // Crosses a segment: the sync making it durable starts a hint update,
      // whose rename fails (the store latches only a failed fsync).
      const big = await wal.append(bytes(5000), { wait: 'written' });
      fs.inject({ method: 'rename' });
      await wal.waitFor(big, 'durable');
      // Written while the hint update runs, not synced.
      const last = await wal.append(bytes(10), { wait: 'written' });
      const failure = (): string | undefined => wal.failure?.code;
      assert.equal(failure(), undefined, 'written before the hint update failed');
      for (let i = 0; i < 20 && failure() === undefined; i++) await tick();
      assert.equal(failure(), 'WAL_FAILED');
      assert.ok(wal.durable <= last);
      // The data path did not fail: the record stays written, and the close
      // makes it durable (the resume point is the durable watermark as it
      // stands once the log is closed).
      await wal.waitFor(last, 'written');
      await wal.close();
      const end = last + HEADER_SIZE + 10;
      assert.equal(wal.durable, end);
      const again = await wal.reopen();
      assert.equal(again.tail, end);
      await again.close();
    });

    for (const broken of ['throws', 'returns no promise'] as const)
      it(`a Store whose sync() ${broken} (the contract forbids it) fails the log as a failed sync, whole`, async () => {
        const store = new MemoryStore();
        let breakSync = false;
        const sync = store.sync.bind(store);
        store.sync = (): Promise<void> => {
          if (!breakSync) return sync();
          if (broken === 'throws') throw Object.assign(new Error('sync broke'), { code: 'EIO' });
          return undefined as unknown as Promise<void>;
        };
        const wal = await Wal.open(store, { durableWrites: false });
        await wal.append(bytes(10, 1), { wait: 'durable' });
        const durable = wal.durable;
        breakSync = true;
        wal.append(bytes(10, 2));
        const error = await rejectsCode(wal.sync(), 'WAL_FAILED');
        assert.equal((error as { offset?: number }).offset, durable);
        // The log stopped, not only its group commit: appends are refused
        // at once (an accepted one failed later, uncaught, in a microtask).
        assert.equal(wal.failure?.code, 'WAL_FAILED');
        assert.equal(wal.failure?.offset, durable);
        throwsCode(() => wal.append(bytes(10, 3)), 'WAL_FAILED');
        for (let i = 0; i < 3; i++) await tick();
        await wal.close();
      });
  });
});
