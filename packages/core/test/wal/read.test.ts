// read(lsn): waits for staged records, large records, boundaries and the
// live range, checksums, damaged headers.

import assert from 'node:assert/strict';
import { MemoryStore } from '@wal/store';
import { CrashFs } from '@wal/store/testing';
import { HEADER_SIZE } from '../../src/frame.js';
import { Wal } from '../../src/index.js';
import { bytes, rejectsCode, tick, track } from '../helpers.js';
import { appendAll, collect, GatedStore, segmented } from './fixtures.js';

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
  });
});
