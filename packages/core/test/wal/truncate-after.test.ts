// truncateAfter(lsn): the cut is durable and survives power loss; bad
// arguments; appends, reads and syncs during a truncation.

import assert from 'node:assert/strict';
import { errorCode } from '@wal/errors';
import { MemoryStore } from '@wal/store';
import { CrashFs } from '@wal/store/testing';
import fc from 'fast-check';
import { HEADER_SIZE } from '../../src/frame.js';
import { Wal } from '../../src/index.js';
import { bytes, durableOnly, rejectsCode, throwsCode, tick, track } from '../helpers.js';
import { appendAll, collect, GatedStore, ReadGatedStore, segmented } from './fixtures.js';

describe('Wal', () => {
  describe('truncation', () => {
    it('close() called after truncateAfter (same turn, a microtask or a turn later) waits for it: the cut is made and durable; a second one queued behind it is refused', async () => {
      for (const gap of ['same turn', 'microtask', 'macrotask'] as const) {
        const fs = new CrashFs();
        const wal = await segmented(fs);
        const { lsns } = appendAll(wal, [500, 3000, 4000, 100]);
        const cut = wal.truncateAfter(lsns[1]!);
        const queued = wal.truncateAfter(lsns[0]!); // behind the first
        if (gap === 'microtask') await Promise.resolve();
        if (gap === 'macrotask') await tick();
        const closing = wal.close();
        await rejectsCode(wal.truncateAfter(lsns[0]!), 'WAL_CLOSED'); // called after close()
        await cut;
        await rejectsCode(queued, 'WAL_CLOSED');
        await closing;
        const end = lsns[1]! + HEADER_SIZE + 3000;
        const again = await segmented(fs);
        assert.equal(again.tail, end, gap);
        assert.deepEqual(await again.read(lsns[1]!), bytes(3000, 2));
        await again.close();
        // And after a power loss: the cut was durable before close() resolved.
        const after = await segmented(fs.powerLoss({ seed: 5 }).fs());
        assert.equal(after.tail, end, `${gap}, after a power loss`);
        await after.close();
      }
    });

    it('truncateAfter keeps the record at lsn, is durable, and reopen sees the same', async () => {
      const fs = new CrashFs();
      const wal = await segmented(fs);
      const { lsns } = appendAll(wal, [500, 3000, 4000, 100, 6000]);
      await wal.truncateAfter(lsns[2]!);
      const end = lsns[2]! + HEADER_SIZE + 4000;
      assert.equal(wal.tail, end);
      assert.equal(wal.written, end);
      assert.deepEqual(await wal.read(lsns[2]!), bytes(4000, 3));
      await rejectsCode(wal.read(lsns[3]!), 'ERR_OUT_OF_RANGE');
      const next = wal.append(bytes(7));
      assert.equal(next, end);
      await wal.sync();
      // Truncating after the last record changes nothing.
      await wal.truncateAfter(next);
      assert.equal(wal.tail, next + HEADER_SIZE + 7);
      // A power loss now keeps the truncation (it resolved durably).
      const again = await segmented(durableOnly(fs));
      assert.equal(again.tail, next + HEADER_SIZE + 7);
      assert.deepEqual(
        (await collect(again.iterate())).map((r) => r.lsn),
        [...lsns.slice(0, 3), next],
      );
      await again.close();
      await wal.close();
    });

    it('truncateAfter makes the records it keeps durable before it resolves, though never synced', async () => {
      const fs = new CrashFs();
      const wal = await segmented(fs);
      // Never synced: the kept records span segments 0 and 1, the cut is in segment 1.
      const { lsns, payloads } = appendAll(wal, [500, 3000, 4000, 100, 6000]);
      await wal.truncateAfter(lsns[2]!);
      const end = lsns[2]! + HEADER_SIZE + 4000;
      // A power loss now, before anything else is synced: every kept record survives.
      const again = await segmented(durableOnly(fs));
      assert.equal(again.tail, end);
      const kept = await collect(again.iterate());
      assert.deepEqual(
        kept.map((r) => r.lsn),
        lsns.slice(0, 3),
      );
      assert.deepEqual(
        kept.map((r) => r.payload),
        payloads.slice(0, 3),
      );
      await again.close();
      await wal.close();
    });

    it('truncateAfter survives a power loss right after it resolves (every crash state)', async () => {
      const fs = new CrashFs({ sectorSize: 512 });
      const wal = await segmented(fs);
      const { lsns } = appendAll(wal, [1000, 5000, 200, 3000]);
      await wal.sync();
      await wal.truncateAfter(lsns[1]!);
      const end = lsns[1]! + HEADER_SIZE + 5000;
      let states = 0;
      for (const state of fs.crashStates({ limit: 40 })) {
        states++;
        const again = await segmented(state.fs());
        assert.equal(again.tail, end, state.description);
        await again.close();
      }
      assert.ok(states > 0);
      await wal.close();
    });

    it('truncateAfter rejects a non-boundary, below the head, at or past the tail, bad input', async () => {
      const wal = await Wal.open(new MemoryStore());
      const { lsns } = appendAll(wal, [10, 20, 30]);
      await rejectsCode(wal.truncateAfter(lsns[1]! + 2), 'WAL_NOT_BOUNDARY');
      await rejectsCode(wal.truncateAfter(wal.tail), 'ERR_OUT_OF_RANGE');
      await rejectsCode(wal.truncateAfter(-5), 'ERR_OUT_OF_RANGE');
      await rejectsCode(wal.truncateAfter('1' as unknown as number), 'ERR_INVALID_ARG_TYPE');
      await wal.truncateBefore(lsns[1]!);
      await rejectsCode(wal.truncateAfter(lsns[0]!), 'WAL_TRUNCATED');
      // The log still works after rejected truncations.
      const lsn = wal.append(bytes(1));
      assert.deepEqual(await wal.read(lsn), bytes(1));
      await wal.close();
    });

    it('appends during a truncateAfter throw WAL_BUSY; appends before it are written first', async () => {
      const store = new GatedStore();
      const wal = await Wal.open(store);
      const { lsns } = appendAll(wal, [100, 200]);
      store.hold();
      const inflight = wal.append(bytes(300, 9), { wait: 'written' });
      const inflightLsn = lsns[1]! + HEADER_SIZE + 200;
      const truncation = wal.truncateAfter(lsns[1]!);
      const truncated = track(truncation);
      const busy = throwsCode(() => wal.append(bytes(1)), 'WAL_BUSY');
      assert.equal((busy as { offset?: number }).offset, inflightLsn + HEADER_SIZE + 300);
      throwsCode(() => wal.appendBatch([bytes(1)]), 'WAL_BUSY');
      await rejectsCode(wal.append(bytes(1), { wait: 'durable' }), 'WAL_BUSY');
      await tick();
      assert.equal(truncated.state, 'pending', 'the truncation waits for the held write');
      store.release();
      assert.equal(await inflight, inflightLsn, 'the in-flight append is written first');
      await truncation;
      assert.equal(wal.tail, inflightLsn);
      assert.equal(wal.append(bytes(4)), inflightLsn);
      // truncateBefore is not exclusive (test/truncate-before.test.ts).
      await wal.truncateBefore(lsns[1]!);
      assert.equal(wal.head, lsns[1]);
      await wal.close();
    });

    // Regression: the log must be busy from the call on, not from when the
    // truncation's work starts a microtask later (the append would be
    // accepted, then silently cut).
    it('an append in the same turn as truncateAfter() throws WAL_BUSY', async () => {
      const wal = await Wal.open(new MemoryStore());
      const a = wal.append(bytes(10));
      wal.append(bytes(10));
      const truncation = wal.truncateAfter(a);
      let accepted: number | undefined;
      let error: unknown;
      try {
        accepted = wal.append(bytes(10, 3));
      } catch (caught) {
        error = caught;
      }
      await truncation;
      assert.equal(wal.tail, a + HEADER_SIZE + 10);
      assert.equal(
        errorCode(error),
        'WAL_BUSY',
        `the append was accepted at LSN ${accepted} and dropped by the truncation`,
      );
      await wal.close();
    });

    it('reads and syncs during a truncation wait for it', async () => {
      const wal = await Wal.open(new MemoryStore());
      const { lsns } = appendAll(wal, [10, 20, 30]);
      await wal.waitFor(lsns[2]!, 'written');
      const truncation = wal.truncateAfter(lsns[0]!);
      const read = wal.read(lsns[2]!);
      const sync = wal.sync();
      const wait = wal.waitFor(lsns[0]!, 'durable');
      const iterate = collect(wal.iterate());
      await truncation;
      await rejectsCode(read, 'ERR_OUT_OF_RANGE');
      await sync;
      await wait;
      assert.deepEqual(
        (await iterate).map((r) => r.lsn),
        [lsns[0]],
      );
      // Two truncations queue.
      appendAll(wal, [1, 2, 3]);
      const first = wal.truncateAfter(lsns[0]!);
      const second = wal.truncateBefore(lsns[0]!);
      await Promise.all([first, second]);
      assert.equal(wal.tail, lsns[1]);
      await wal.close();
    });

    it('a read called before a truncateAfter reads the log as it was, however its store reads and the cut interleave (property)', async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.boolean(),
          fc.array(fc.nat(), { minLength: 1, maxLength: 12 }),
          async (staged, choices) => {
            const store = new ReadGatedStore();
            const wal = await Wal.open(store);
            const { lsns, payloads } = appendAll(wal, [10, 20]);
            if (!staged) await wal.sync();
            // Staged: appended in this turn, so the read first waits for its write.
            const last = wal.append(bytes(30, 3));
            if (!staged) await wal.sync();
            store.holding = true;
            const read = wal.read(last);
            const truncation = wal.truncateAfter(lsns[0]!);
            const outcome = Promise.allSettled([read, truncation]);
            // The held store reads (the read's, the truncation's) go one at a time, in the order drawn.
            for (const choice of choices) {
              await tick();
              const [go] = store.held.splice(choice % Math.max(1, store.held.length), 1);
              go?.go();
            }
            store.releaseAll();
            const [got, cut] = await outcome;
            assert.equal(cut.status, 'fulfilled', String((cut as PromiseRejectedResult).reason));
            assert.equal(got.status, 'fulfilled', String((got as PromiseRejectedResult).reason));
            assert.deepEqual((got as PromiseFulfilledResult<Uint8Array>).value, bytes(30, 3));
            assert.equal(wal.tail, lsns[1]);
            await rejectsCode(wal.read(last), 'ERR_OUT_OF_RANGE');
            // The LSNs cut are reused: a read there finds the new record.
            const again = wal.append(bytes(50, 7));
            assert.equal(again, lsns[1]);
            assert.deepEqual(await wal.read(again), bytes(50, 7));
            assert.deepEqual(await wal.read(lsns[0]!), payloads[0]);
            await wal.close();
          },
        ),
        { numRuns: 60 },
      );
    });

    it('an iterator yields no record a truncateAfter cut after it read it, though it holds it already', async () => {
      for (const size of [10, 5000]) {
        const wal = await Wal.open(new MemoryStore());
        const { lsns } = appendAll(wal, [size, size, size, size]);
        await wal.sync();
        const records = wal.iterate();
        // Its first read takes all four records.
        assert.equal((await records.next()).value.lsn, lsns[0]);
        assert.equal((await records.next()).value.lsn, lsns[1]);
        await wal.truncateAfter(lsns[1]!);
        // The LSNs cut are reused, by other records.
        const next = appendAll(wal, [7, 8]).lsns;
        assert.equal(next[0], lsns[2]);
        await wal.sync();
        assert.equal((await records.next()).done, true);
        assert.equal((await records.next()).done, true);
        assert.deepEqual(
          (await collect(wal.iterate())).map((r) => [r.lsn, r.payload.length]),
          [
            [lsns[0], size],
            [lsns[1], size],
            [next[0], 7],
            [next[1], 8],
          ],
        );
        await wal.close();
      }
    });
  });
});
