// Back-pressure: WAL_BUSY once staging is full, drained(), batches and large
// records against the limit.

import assert from 'node:assert/strict';
import { errorCode } from '@wal/errors';
import { CrashFs, FaultFs } from '@wal/store/testing';
import { HEADER_SIZE } from '../../src/frame.js';
import { DEFAULT_STAGING_LIMIT, Wal } from '../../src/index.js';
import { bytes, rejectsCode, throwsCode, tick, track } from '../helpers.js';
import { collect, GatedStore } from './fixtures.js';

describe('Wal', () => {
  describe('back-pressure', () => {
    it('throws WAL_BUSY when staging is full, drained() resolves once writes finish', async () => {
      const limit = 64 * 1024;
      const store = new GatedStore();
      const wal = await Wal.open(store, { stagingLimit: limit });
      assert.equal(wal.writable, true);
      await wal.drained();
      store.hold();
      const size = 1000;
      const payloads: Uint8Array[] = [];
      const lsns: number[] = [];
      let busy: unknown;
      for (let i = 0; i < 1000; i++) {
        try {
          const payload = bytes(size, i);
          lsns.push(wal.append(payload));
          payloads.push(payload);
        } catch (error) {
          busy = error;
          break;
        }
        assert.ok(wal.bufferedBytes <= limit + HEADER_SIZE + size, `${wal.bufferedBytes}`);
        if (i % 10 === 0) await tick(); // let staged chunks be submitted (and held)
      }
      assert.equal(errorCode(busy), 'WAL_BUSY');
      assert.equal(wal.writable, false);
      assert.ok(wal.bufferedBytes >= limit);
      assert.ok(wal.bufferedBytes <= limit + HEADER_SIZE + size);
      throwsCode(() => wal.appendBatch([bytes(1)]), 'WAL_BUSY');
      const drained = track(wal.drained());
      await tick();
      await tick();
      assert.equal(drained.state, 'pending');
      store.release();
      await wal.drained();
      assert.equal(drained.state, 'resolved');
      assert.equal(wal.writable, true);
      lsns.push(wal.append(bytes(size, 5000)));
      payloads.push(bytes(size, 5000));
      await wal.sync();
      assert.equal(wal.bufferedBytes, 0);
      const all = await collect(wal.iterate());
      assert.deepEqual(
        all.map((r) => r.lsn),
        lsns,
      );
      for (let i = 0; i < all.length; i++) assert.deepEqual(all[i]!.payload, payloads[i]);
      await wal.close();
    });

    it('the default limit is DEFAULT_STAGING_LIMIT (4 MiB): a held store turns the log unwritable there', async () => {
      assert.equal(DEFAULT_STAGING_LIMIT, 4 * 1024 * 1024);
      const store = new GatedStore();
      const wal = await Wal.open(store);
      store.hold();
      const payload = bytes(4096 - HEADER_SIZE);
      let appended = 0;
      while (wal.writable) {
        wal.append(payload);
        appended++;
        if (appended % 64 === 0) await tick();
      }
      assert.equal(appended * 4096, DEFAULT_STAGING_LIMIT, 'unwritable at exactly the limit');
      throwsCode(() => wal.append(payload), 'WAL_BUSY');
      store.release();
      await wal.drained();
      assert.equal(wal.writable, true);
      await wal.close();
    });

    it('a burst right after open has its full chunks written before it yields (docs/FORMAT.md §3.2)', async () => {
      // Writes go to their file in the call that makes them only once the
      // file exists and is open: Wal.open has the store create the segment
      // the next append goes to (a new log, an end on a segment boundary).
      const segmentSize = 64 * 1024;
      const options = { segmentSize, stagingLimit: 64 * 1024 }; // 16 KiB chunks
      for (const end of [0, segmentSize]) {
        const fs = new FaultFs(new CrashFs());
        if (end > 0) {
          const first = await Wal.open('/log', { fs, ...options });
          for (let i = 0; i < 64; i++) first.append(bytes(1024 - HEADER_SIZE, i));
          await first.close();
        }
        const wal = await Wal.open('/log', { fs, ...options });
        assert.equal(wal.tail, end);
        const before = fs.count('pwrite');
        const lsns: number[] = [];
        for (let i = 0; i < 40; i++) lsns.push(wal.append(bytes(1024 - HEADER_SIZE, 100 + i)));
        assert.ok(fs.count('pwrite') >= before + 2, `${fs.count('pwrite') - before} pwrites`);
        await wal.sync();
        await wal.close();
        const again = await Wal.open('/log', { fs, ...options });
        for (let i = 0; i < 40; i++) {
          assert.deepEqual(await again.read(lsns[i]!), bytes(1024 - HEADER_SIZE, 100 + i));
        }
        await again.close();
      }
    });

    it('a batch is accepted whole while there is room, even past the limit (all or nothing)', async () => {
      const limit = 64 * 1024;
      const store = new GatedStore();
      const wal = await Wal.open(store, { stagingLimit: limit });
      store.hold();
      // Only the state before the batch is checked: a batch is never split.
      const lsns = wal.appendBatch(Array.from({ length: 100 }, (_, i) => bytes(1000, i)));
      assert.equal(lsns.length, 100);
      assert.equal(wal.bufferedBytes, 100 * (1000 + HEADER_SIZE));
      assert.equal(wal.writable, false);
      throwsCode(() => wal.appendBatch([bytes(1)]), 'WAL_BUSY');
      store.release();
      await wal.drained();
      await wal.sync();
      assert.deepEqual(await wal.read(lsns[99]!), bytes(1000, 99));
      await wal.close();
    });

    it('large records count against the limit too', async () => {
      const limit = 64 * 1024;
      const store = new GatedStore();
      const wal = await Wal.open(store, { stagingLimit: limit });
      store.hold();
      wal.append(bytes(40000));
      assert.equal(wal.writable, true);
      wal.append(bytes(40000));
      assert.equal(wal.writable, false);
      assert.equal(wal.bufferedBytes, 2 * (40000 + HEADER_SIZE));
      throwsCode(() => wal.append(bytes(1)), 'WAL_BUSY');
      const closing = wal.close();
      await tick();
      store.release();
      await closing;
    });

    it('drained() waiters reject when the log closes', async () => {
      const store = new GatedStore();
      const wal = await Wal.open(store, { stagingLimit: 64 * 1024 });
      store.hold();
      wal.append(bytes(70000));
      const drained = wal.drained();
      const closing = wal.close();
      await rejectsCode(wal.drained(), 'WAL_CLOSED');
      store.release();
      await closing;
      // Either it drained before close finished, or close rejected it.
      await drained.catch((error: unknown) => {
        assert.equal(errorCode(error), 'WAL_CLOSED');
      });
    });
  });
});
