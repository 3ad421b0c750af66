// Waiting for a level: append's `wait` option, waitFor(lsn, level) and sync()
// (drained(): back-pressure.test.ts).

import assert from 'node:assert/strict';
import { errorCode } from '@wal/errors';
import { MemoryStore } from '@wal/store';
import { CrashFs, FaultFs } from '@wal/store/testing';
import fc from 'fast-check';
import { HEADER_SIZE } from '../../src/frame.js';
import { Wal } from '../../src/index.js';
import { bytes, rejectsCode, throwsCode, tick, track } from '../helpers.js';
import { appendAll, GatedStore, segmented, single } from './fixtures.js';

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

    // Waiting appends of one write share one group-commit wait (writer.ts):
    // sharing must never reach past that write, nor hide a waiter.
    it('waiting appends resolve with their own LSN once their own write is covered, never with an earlier write', async () => {
      const store = new GatedStore();
      const wal = await Wal.open(store);
      const waiting = (tag: number, level: 'written' | 'durable'): Promise<number> =>
        wal.append(bytes(10, tag), { wait: level }).then((lsn) => {
          assert.ok((level === 'durable' ? wal.durable : wal.written) > lsn, `${level} ${lsn}`);
          return lsn;
        });
      const first = [waiting(1, 'durable'), waiting(2, 'written'), waiting(3, 'durable')];
      const firstWritten = waiting(4, 'written');
      const batch = wal.appendBatch([bytes(4), bytes(5)], { wait: 'durable' });
      const tail = wal.tail;
      await Promise.resolve(); // the first write is sent
      store.hold(wal.tail); // writes from here on wait
      const second = [
        waiting(6, 'durable'),
        waiting(7, 'written'),
        waiting(8, 'durable'),
        waiting(9, 'written'),
      ];
      const tracked = second.map(track);
      assert.equal(wal.stats().waiters, 9);
      const lsns = await Promise.all(first);
      assert.deepEqual(lsns, [0, 18, 36]);
      assert.equal(await firstWritten, 54);
      assert.deepEqual(await batch, [72, 84]);
      for (let i = 0; i < 5; i++) await tick();
      assert.ok(tracked.every((t) => t.state === 'pending'));
      assert.equal(wal.stats().waiters, 4);
      assert.equal(wal.durable, tail);
      store.release();
      assert.deepEqual(await Promise.all(second), [97, 115, 133, 151]);
      assert.equal(wal.stats().waiters, 0);
      await wal.truncateAfter(0); // the watermarks move back below the shared waits
      assert.equal(wal.stats().waiters, 0);
      await wal.close();
    });

    it('every waiting append of a failed write rejects with WAL_WRITE_FAILED, of a failed sync or durable write with WAL_FAILED', async () => {
      // A write then a sync (durableWrites: false): the write fails, or the sync.
      const writeFs = new FaultFs(new CrashFs());
      const broken = await single(writeFs, { durableWrites: false });
      writeFs.inject({ method: 'pwrite' });
      const failedWrite = [
        broken.append(bytes(10), { wait: 'durable' }),
        broken.append(bytes(20), { wait: 'written' }),
        broken.append(bytes(30), { wait: 'durable' }),
      ];
      for (const wait of failedWrite) await rejectsCode(wait, 'WAL_WRITE_FAILED');
      assert.equal(broken.stats().waiters, 0);
      await broken.close();

      const syncFs = new FaultFs(new CrashFs());
      const wal = await single(syncFs, { durableWrites: false });
      syncFs.inject({ method: 'fdatasync' });
      const written = wal.append(bytes(10), { wait: 'written' });
      const failedSync = [
        wal.append(bytes(20), { wait: 'durable' }),
        wal.append(bytes(30), { wait: 'durable' }),
      ];
      assert.equal(await written, 0);
      for (const wait of failedSync) await rejectsCode(wait, 'WAL_FAILED');
      assert.equal(wal.stats().waiters, 0);
      await wal.close();

      // A durable write (the default): whether its bytes reached the disk is
      // unknown, as after a failed sync, so every waiter of it, written ones
      // too, rejects with WAL_FAILED, and a reopen keeps none of it.
      const durableFs = new FaultFs(new CrashFs());
      const log = await single(durableFs);
      const kept = await log.append(bytes(5), { wait: 'durable' });
      durableFs.inject({ method: 'pwriteDurable' });
      const failedDurable = [
        log.append(bytes(10), { wait: 'durable' }),
        log.append(bytes(20), { wait: 'written' }),
        log.append(bytes(30), { wait: 'durable' }),
      ];
      for (const wait of failedDurable) await rejectsCode(wait, 'WAL_FAILED');
      assert.equal(log.failure?.code, 'WAL_FAILED');
      assert.equal(log.stats().waiters, 0);
      await log.close();
      const again = await log.reopen();
      assert.equal(again.tail, kept + HEADER_SIZE + 5);
      await again.close();
    });

    it('waitFor on an LSN a pending truncateAfter cuts rejects WAL_TRUNCATED, also once the LSN is handed out again', async () => {
      for (const level of ['written', 'durable'] as const) {
        const wal = await Wal.open(new MemoryStore());
        const kept = await wal.append(bytes(1), { wait: 'durable' });
        const cut = wal.append(bytes(1));
        const truncation = wal.truncateAfter(kept);
        const wait = rejectsCode(wal.waitFor(cut, level), 'WAL_TRUNCATED');
        await truncation;
        assert.equal(wal.append(bytes(50)), cut); // the LSN now names another record
        assert.equal(((await wait) as { offset?: number }).offset, cut);
        // Nothing appended after the cut: the same, not an internal RangeError.
        const alone = wal.append(bytes(1));
        const again = wal.truncateAfter(cut);
        const lone = rejectsCode(wal.waitFor(alone, level), 'WAL_TRUNCATED');
        await again;
        await lone;
        await wal.close();
      }
    });

    it('waitFor on a durable LSN a pending truncateAfter cuts rejects WAL_TRUNCATED; on one it keeps it resolves', async () => {
      for (const level of ['written', 'durable'] as const) {
        const wal = await Wal.open(new MemoryStore());
        const kept = await wal.append(bytes(1), { wait: 'durable' });
        const cut = await wal.append(bytes(2), { wait: 'durable' });
        assert.ok(wal.durable > cut, 'the record to cut is durable before the truncation');
        const truncation = wal.truncateAfter(kept);
        const settled: string[] = [];
        const onCut = rejectsCode(wal.waitFor(cut, level), 'WAL_TRUNCATED').then(() =>
          settled.push('cut'),
        );
        const onKept = wal.waitFor(kept, level).then(() => settled.push('kept'));
        await truncation;
        assert.equal(wal.tail, cut);
        await Promise.all([onCut, onKept]);
        assert.deepEqual(settled.sort(), ['cut', 'kept']);
        // A wait made after the cut is for the record then at the LSN.
        const again = await wal.append(bytes(3), { wait: 'durable' });
        assert.equal(again, cut);
        await wal.waitFor(cut, level);
        await wal.close();
      }
    });

    it('waitFor on a durable LSN made while a truncateAfter is pending rejects with the failure when that truncateAfter fails', async () => {
      // Each of the truncation's metadata replaces and its cut fails in turn:
      // the cut may or may not have happened, and is not recorded.
      for (const [method, at] of [
        ['rename', 1],
        ['ftruncate', 1],
        ['rename', 2],
      ] as const) {
        const fs = new FaultFs(new CrashFs());
        const wal = await single(fs);
        const kept = await wal.append(bytes(10), { wait: 'durable' });
        const cut = await wal.append(bytes(20), { wait: 'durable' });
        assert.ok(wal.durable > cut);
        fs.inject({ method, at, fault: 'EIO' });
        const truncation = wal.truncateAfter(kept);
        const wait = wal.waitFor(cut, 'durable');
        await rejectsCode(truncation, 'WAL_FAILED');
        await rejectsCode(wait, 'WAL_FAILED');
        await wal.close();
      }
    });

    it('model: waits made in one turn with appends and truncateAfters resolve, or reject WAL_TRUNCATED when a truncateAfter called before them cut their record', async () => {
      type Step =
        | { op: 'append'; size: number }
        | { op: 'cut'; pick: number }
        | { op: 'wait'; pick: number; level: 'written' | 'durable' };
      const step: fc.Arbitrary<Step> = fc.oneof(
        fc.record({ op: fc.constant('append' as const), size: fc.integer({ min: 0, max: 40 }) }),
        fc.record({ op: fc.constant('cut' as const), pick: fc.nat() }),
        fc.record({
          op: fc.constant('wait' as const),
          pick: fc.nat(),
          level: fc.constantFrom('written' as const, 'durable' as const),
        }),
      );
      await fc.assert(
        fc.asyncProperty(
          fc.array(step, { minLength: 1, maxLength: 16 }),
          fc.integer({ min: 0, max: 4 }),
          async (steps, reused) => {
            const wal = await Wal.open(new MemoryStore());
            const first = await wal.append(bytes(3), { wait: 'durable' });
            const ends = new Map<number, number>([[first, first + HEADER_SIZE + 3]]);
            const lsns = [first];
            let tail = wal.tail; // the model's tail once the truncations ran
            let cutCalled = false;
            const truncations: Promise<string>[] = [];
            const waits: Array<{ lsn: number; afterCut: boolean; result: Promise<string> }> = [];
            const outcome = (promise: Promise<unknown>): Promise<string> =>
              promise.then(
                () => 'resolved',
                (error: unknown) => errorCode(error) ?? String(error),
              );
            for (const s of steps) {
              if (s.op === 'append') {
                if (cutCalled) throwsCode(() => wal.append(bytes(s.size)), 'WAL_BUSY');
                else {
                  const lsn = wal.append(bytes(s.size, lsns.length));
                  lsns.push(lsn);
                  ends.set(lsn, lsn + HEADER_SIZE + s.size);
                  tail = ends.get(lsn)!;
                }
              } else if (s.op === 'cut') {
                const lsn = lsns[s.pick % lsns.length]!;
                const expected = lsn < tail ? 'resolved' : 'ERR_OUT_OF_RANGE';
                if (lsn < tail) tail = ends.get(lsn)!;
                cutCalled = true;
                truncations.push(
                  outcome(wal.truncateAfter(lsn)).then((got) => {
                    assert.equal(got, expected, `truncateAfter(${lsn})`);
                    return got;
                  }),
                );
              } else {
                const lsn = lsns[s.pick % lsns.length]!;
                waits.push({
                  lsn,
                  afterCut: cutCalled,
                  result: outcome(wal.waitFor(lsn, s.level)),
                });
              }
            }
            await Promise.all(truncations);
            assert.equal(wal.tail, tail);
            // LSNs taken back are handed out again, to other records.
            for (let i = 0; i < reused; i++) wal.append(bytes(7, 200 + i));
            for (const wait of waits) {
              const expected = wait.afterCut && wait.lsn >= tail ? 'WAL_TRUNCATED' : 'resolved';
              assert.equal(await wait.result, expected, `waitFor(${wait.lsn})`);
            }
            await wal.close();
          },
        ),
        { numRuns: 150 },
      );
    });
  });
});
