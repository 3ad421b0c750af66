// Wal.open over every store and source, reopen(), and what open refuses
// (the maximum record size at open: max-record-size.test.ts).

import assert from 'node:assert/strict';
import { errorCode, FailedError, NoSpaceError } from '@wal/errors';
import { FileStore, MemoryStore, SegmentedStore, type Store } from '@wal/store';
import { CrashFs, FaultFs } from '@wal/store/testing';
import { HEADER_SIZE } from '../../src/frame.js';
import { Wal } from '../../src/index.js';
import { bytes, rejectsCode } from '../helpers.js';
import { appendAll, collect, segmented, single } from './fixtures.js';

describe('Wal', () => {
  describe('open and close', () => {
    it('readyEnd is only a speed-up: a store left usable opens anyway; a latched one fails the open', async () => {
      // A real file system: the segment cannot be created at open (a full
      // disk); the open succeeds and the first write creates it.
      const fs = new FaultFs(new CrashFs());
      const full = fs.inject({
        method: 'open',
        when: (call) => call.path.endsWith('.wal'),
        fault: 'ENOSPC',
        persistent: true,
      });
      const wal = await Wal.open('/log', { fs, segmentSize: 64 * 1024 });
      assert.equal(full.fired, 1);
      full.remove();
      const lsn = wal.append(bytes(10, 1));
      await wal.sync();
      assert.deepEqual(await wal.read(lsn), bytes(10, 1));
      await wal.close();
      // A store whose readyEnd fails: usable (not latched) or latched.
      class Failing extends MemoryStore {
        constructor(readonly refusal: Error) {
          super();
        }
        override readyEnd(): Promise<void> {
          return Promise.reject(this.refusal);
        }
      }
      const usable = new Failing(new NoSpaceError('no space for the end segment'));
      const opened = await Wal.open(usable);
      await opened.append(bytes(5, 2), { wait: 'durable' });
      await opened.close();
      const latched = new Failing(new FailedError('directory fsync failed'));
      await rejectsCode(Wal.open(latched), 'WAL_FAILED');
      assert.equal(latched.closed, true, 'the failed open closed its store');
    });

    it('opens an empty MemoryStore log, appends, reads, closes', async () => {
      const wal = await Wal.open(new MemoryStore());
      assert.equal(wal.head, 0);
      assert.equal(wal.tail, 0);
      assert.equal(wal.written, 0);
      assert.equal(wal.durable, 0);
      assert.equal(wal.readOnly, false);
      assert.equal(wal.closed, false);
      assert.equal(wal.failure, undefined);
      assert.equal(wal.recovery.records, 0);
      assert.equal(wal.recovery.truncated, false);
      const lsn = wal.append(bytes(10));
      assert.equal(lsn, 0);
      assert.deepEqual(await wal.read(lsn), bytes(10));
      assert.ok(wal.store instanceof MemoryStore);
      await wal.close();
      assert.equal(wal.closed, true);
    });

    it('opens from a function making a store, and rejects a non-store', async () => {
      const wal = await Wal.open(async () => new MemoryStore());
      wal.append(bytes(3));
      await wal.close();
      await rejectsCode(
        Wal.open(async () => ({}) as Store),
        'ERR_INVALID_ARG_TYPE',
      );
      await rejectsCode(Wal.open(42 as unknown as string), 'ERR_INVALID_ARG_TYPE');
      await rejectsCode(Wal.open(null as unknown as string), 'ERR_INVALID_ARG_TYPE');
    });

    it('keeps records across close and reopen over a SegmentedStore on CrashFs (records span segments)', async () => {
      const fs = new CrashFs();
      const wal = await segmented(fs);
      const sizes = [100, 5000, 0, 3000, 9000, 1, 4088];
      const { lsns, payloads } = appendAll(wal, sizes);
      await wal.sync();
      const tail = wal.tail;
      await wal.close();
      const again = await segmented(fs);
      assert.equal(again.tail, tail);
      assert.equal(again.recovery.records, sizes.length);
      assert.equal(again.recovery.end, tail);
      assert.equal(again.recovery.tornBytes, 0);
      assert.equal(again.recovery.tear, undefined);
      assert.ok(again.store instanceof SegmentedStore);
      for (let i = 0; i < lsns.length; i++)
        assert.deepEqual(await again.read(lsns[i]!), payloads[i]);
      assert.deepEqual(
        (await collect(again.iterate())).map((r) => r.lsn),
        lsns,
      );
      await again.close();
    });

    it('keeps records across close and reopen over a FileStore (layout file)', async () => {
      const fs = new CrashFs();
      const wal = await single(fs);
      const { lsns, payloads } = appendAll(wal, [1, 2, 3000, 70000]);
      await wal.close();
      const again = await single(fs);
      assert.ok(again.store instanceof FileStore);
      assert.equal(again.recovery.records, 4);
      for (let i = 0; i < lsns.length; i++)
        assert.deepEqual(await again.read(lsns[i]!), payloads[i]);
      await again.close();
    });

    it('reopen() without a failure is a close and an open of the same path', async () => {
      const fs = new CrashFs();
      const wal = await segmented(fs);
      const { lsns } = appendAll(wal, [10, 20]);
      const again = await wal.reopen();
      assert.equal(wal.closed, true);
      assert.equal(again.tail, lsns[1]! + HEADER_SIZE + 20);
      await again.close();
    });

    it('reopen() of a log opened from a store instance needs a source', async () => {
      const wal = await Wal.open(new MemoryStore());
      await rejectsCode(wal.reopen(), 'ERR_INVALID_ARG_VALUE');
      assert.equal(wal.closed, false, 'a refused reopen leaves the log open');
      const again = await wal.reopen(new MemoryStore());
      assert.equal(again.tail, 0);
      await again.close();
      await wal.close();
    });

    it('a store instance serves one log at a time: a second open of it is WAL_LOCKED and changes nothing', async () => {
      const fs = new CrashFs();
      const store = await SegmentedStore.open('/shared', { fs, segmentSize: 4096 });
      const first = await Wal.open(store);
      const kept = await first.append(bytes(17, 1), { wait: 'durable' });
      const sources = [store, async () => store];
      for (const source of sources) {
        for (const readOnly of [false, true]) {
          const refused = await rejectsCode(Wal.open(source, { readOnly }), 'WAL_LOCKED');
          assert.match(refused.message, /locked by this process/);
        }
      }
      assert.equal(store.closed, false, 'the refused opens left the store open');
      // The holder is unaffected: its next record follows its first.
      const next = await first.append(bytes(5, 2), { wait: 'durable' });
      assert.equal(next, kept + HEADER_SIZE + 17);
      assert.deepEqual(await first.read(kept), bytes(17, 1));
      // Two opens racing for a free store: one gets it.
      const free = new MemoryStore();
      const race = await Promise.allSettled([Wal.open(free), Wal.open(free)]);
      const won = race.filter((r) => r.status === 'fulfilled');
      const lost = race.filter((r) => r.status === 'rejected');
      assert.equal(won.length, 1);
      assert.equal(errorCode(lost[0]?.reason), 'WAL_LOCKED');
      await won[0]!.value.close();
      // close() closes the store: an open of it then finds it closed.
      await first.close();
      assert.equal(store.closed, true);
      await rejectsCode(Wal.open(store), 'WAL_CLOSED');
      const again = await Wal.open('/shared', { fs });
      assert.deepEqual(
        (await collect(again.iterate())).map((r) => [r.lsn, r.payload]),
        [
          [kept, bytes(17, 1)],
          [next, bytes(5, 2)],
        ],
      );
      await again.close();
    });

    it('rejects a log whose metadata holds another format or a bad value', async () => {
      const store = new MemoryStore();
      await store.updateMeta({ 'wal.format': 2 });
      await rejectsCode(Wal.open(store), 'WAL_UNSUPPORTED_FORMAT');
      assert.equal(store.closed, true, 'open closes the store it rejects');
      const other = new MemoryStore();
      await other.updateMeta({ 'wal.maxRecordSize': 'big' });
      await rejectsCode(Wal.open(other), 'WAL_CORRUPTION');
    });

    it('rejects a log shorter than its durable hint', async () => {
      const store = new MemoryStore();
      await store.write(0, new Uint8Array(10));
      await store.updateMeta({ 'wal.durableHint': 100 });
      const error = await rejectsCode(Wal.open(store), 'WAL_CORRUPTION');
      assert.equal((error as { offset?: number }).offset, 10);
    });
  });
});
