// read(lsn): waits for staged records, large records, boundaries and the
// live range, checksums, damaged headers.

import assert from 'node:assert/strict';
import { MemoryStore } from '@wal/store';
import { CrashFs } from '@wal/store/testing';
import fc from 'fast-check';
import { HEADER_SIZE } from '../../src/frame.js';
import { Wal } from '../../src/index.js';
import { bytes, rejectsCode, tick, track } from '../helpers.js';
import { appendAll, collect, FILE, GatedStore, segmented, single } from './fixtures.js';

describe('Wal', () => {
  describe('read', () => {
    it('waits for a record staged but not yet written', async () => {
      const store = new GatedStore();
      const wal = await Wal.open(store);
      store.hold();
      const lsn = wal.append(bytes(300));
      const read = wal.read(lsn);
      const state = track(read);
      await tick();
      await tick();
      assert.equal(state.state, 'pending');
      assert.ok(wal.written <= lsn);
      store.release();
      assert.deepEqual(await read, bytes(300));
      await wal.close();
    });

    it('reads a record larger than a chunk, and a record straight after open', async () => {
      const fs = new CrashFs();
      const wal = await segmented(fs, { stagingLimit: 64 * 1024 });
      const big = wal.append(bytes(40000));
      const small = wal.append(bytes(5));
      assert.deepEqual(await wal.read(big), bytes(40000));
      assert.deepEqual(await wal.read(small), bytes(5));
      await wal.close();
      const again = await segmented(fs);
      assert.deepEqual(await again.read(small), bytes(5));
      assert.deepEqual(await again.read(big), bytes(40000));
      await again.close();
    });

    it('rejects a non-boundary (WAL_NOT_BOUNDARY with offset), below the head, at or past the tail', async () => {
      const wal = await Wal.open(new MemoryStore(), { indexInterval: 4096 });
      const { lsns } = appendAll(
        wal,
        Array.from({ length: 40 }, (_, i) => 100 + i * 13),
      );
      await wal.sync();
      for (const bad of [1, lsns[5]! + 3, lsns[20]! + HEADER_SIZE, lsns[39]! + 1]) {
        const error = await rejectsCode(wal.read(bad), 'WAL_NOT_BOUNDARY');
        assert.equal((error as { offset?: number }).offset, bad);
      }
      await rejectsCode(wal.read(wal.tail), 'ERR_OUT_OF_RANGE');
      await rejectsCode(wal.read(wal.tail + 100), 'ERR_OUT_OF_RANGE');
      await rejectsCode(wal.read(-1), 'ERR_OUT_OF_RANGE');
      await rejectsCode(wal.read(1.5), 'ERR_OUT_OF_RANGE');
      await wal.truncateBefore(lsns[10]!);
      const below = await rejectsCode(wal.read(lsns[2]!), 'WAL_TRUNCATED');
      assert.equal((below as { offset?: number }).offset, lsns[2]);
      // Every live record still reads, in any order (the index is walked from a floor).
      for (const i of [39, 10, 25, 11, 38]) {
        assert.deepEqual(await wal.read(lsns[i]!), bytes(100 + i * 13, i + 1));
      }
      await wal.close();
    });

    it('rejects a record whose stored bytes fail the checksum (WAL_CORRUPTION)', async () => {
      const store = new MemoryStore();
      const wal = await Wal.open(store);
      const lsn = await wal.append(bytes(50), { wait: 'written' });
      const next = await wal.append(bytes(50, 2), { wait: 'written' });
      await store.write(lsn + HEADER_SIZE + 3, new Uint8Array([0xff ^ bytes(50)[3]!]));
      await rejectsCode(wal.read(lsn), 'WAL_CORRUPTION');
      await rejectsCode(collect(wal.iterate()), 'WAL_CORRUPTION');
      assert.deepEqual(await wal.read(next), bytes(50, 2));
      await wal.close();
    });
  });

  describe('damaged headers', () => {
    it('a frame claiming more than the log holds is WAL_CORRUPTION for read and iterate', async () => {
      const store = new MemoryStore();
      const wal = await Wal.open(store, { maxRecordSize: 1000 });
      const { lsns } = appendAll(wal, [10, 20, 30, 40]);
      await wal.sync();
      // The length field of the second record now claims 0xffff bytes.
      await store.write(lsns[1]! + 4, new Uint8Array([0xff, 0xff, 0, 0]));
      const error = await rejectsCode(wal.read(lsns[3]!), 'WAL_CORRUPTION');
      assert.equal((error as { offset?: number }).offset, lsns[1]);
      const iterated = await rejectsCode(collect(wal.iterate()), 'WAL_CORRUPTION');
      assert.equal((iterated as { offset?: number }).offset, lsns[1]);
      assert.deepEqual(await wal.read(lsns[0]!), bytes(10, 1));
      await wal.close();
    });

    it('a damaged length before an intact record: WAL_CORRUPTION at the damaged frame, never WAL_NOT_BOUNDARY or a phantom frame', async () => {
      // Lengths that overshoot the next record, land inside the damaged
      // record's own payload, or claim nothing.
      for (const damaged of [100, 0, 5, 0xffff_ffff]) {
        const store = new MemoryStore();
        const wal = await Wal.open(store);
        const { lsns, payloads } = appendAll(
          wal,
          Array.from({ length: 10 }, () => 10),
        );
        await wal.sync();
        const length = new Uint8Array(4);
        new DataView(length.buffer).setUint32(0, damaged, true);
        await store.write(lsns[4]! + 4, length);
        for (const i of [6, 5, 9, 4]) {
          const error = await rejectsCode(wal.read(lsns[i]!), 'WAL_CORRUPTION');
          assert.equal((error as { offset?: number }).offset, lsns[4], `read of record ${i}`);
        }
        const started = await rejectsCode(collect(wal.iterate(lsns[6]!)), 'WAL_CORRUPTION');
        assert.equal((started as { offset?: number }).offset, lsns[4]);
        // Inside the damaged record: the walk cannot prove it either way.
        const inside = await rejectsCode(wal.read(lsns[4]! + 1), 'WAL_CORRUPTION');
        assert.equal((inside as { offset?: number }).offset, lsns[4]);
        for (const i of [0, 3]) assert.deepEqual(await wal.read(lsns[i]!), payloads[i]);
        await wal.close();
      }
    });

    it("property: after a record's length is damaged, every later record reads intact or rejects WAL_CORRUPTION at or before the damage", async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.array(fc.integer({ min: 0, max: 700 }), { minLength: 2, maxLength: 60 }),
          fc.nat(),
          fc.oneof(
            fc.integer({ min: 0, max: 0xffff_ffff }),
            fc.integer({ min: 0, max: 2000 }),
            // A length that lands on a later record boundary.
            fc.constant(-1),
          ),
          fc.nat(),
          fc.boolean(),
          async (sizes, pick, claimed, seed, reopen) => {
            const options = { indexInterval: 4096, maxRecordSize: 64 * 1024 };
            const store = new MemoryStore();
            const crash = new CrashFs();
            let wal = reopen ? await single(crash, options) : await Wal.open(store, options);
            const { lsns, payloads } = appendAll(wal, sizes);
            await wal.sync();
            if (reopen) {
              // The boundary index from the recovery scan instead of the appends.
              await wal.close();
              wal = await single(crash, options);
            }
            const damage = async (offset: number, field: Uint8Array): Promise<void> => {
              if (!reopen) return void (await store.write(offset, field));
              const file = await crash.open(FILE, 'write');
              await crash.pwrite(file, field, offset);
              await crash.close(file);
            };
            const k = pick % (lsns.length - 1);
            const original = sizes[k]!;
            let length = claimed;
            if (claimed === -1) {
              const to = k + 1 + (seed % (lsns.length - k - 1));
              length = (to + 1 < lsns.length ? lsns[to + 1]! : wal.tail) - lsns[k]! - HEADER_SIZE;
            }
            if (length === original) length = original + 1;
            const field = new Uint8Array(4);
            new DataView(field.buffer).setUint32(0, length, true);
            await damage(lsns[k]! + 4, field);
            // Every record from the damaged one on, in an order of the seed.
            const order = Array.from({ length: lsns.length - k }, (_, i) => k + i);
            for (let i = order.length - 1; i > 0; i--) {
              const j = (seed + i * 7919) % (i + 1);
              [order[i], order[j]] = [order[j]!, order[i]!];
            }
            for (const i of order) {
              let outcome: Uint8Array | Error;
              try {
                outcome = await wal.read(lsns[i]!);
              } catch (error) {
                outcome = error as Error;
              }
              if (outcome instanceof Uint8Array) {
                assert.notEqual(i, k, 'the damaged record reads');
                assert.deepEqual(outcome, payloads[i], `record ${i}`);
              } else {
                assert.equal(
                  (outcome as { code?: string }).code,
                  'WAL_CORRUPTION',
                  String(outcome),
                );
                const offset = (outcome as { offset?: number }).offset;
                assert.ok(
                  offset !== undefined && offset <= lsns[k]!,
                  `offset ${offset} of record ${i}`,
                );
              }
            }
            // Records before the damage are untouched.
            for (let i = 0; i < k; i++) assert.deepEqual(await wal.read(lsns[i]!), payloads[i]);
            await wal.close();
          },
        ),
        { numRuns: 200 },
      );
    });
  });
});
