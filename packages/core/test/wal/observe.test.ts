// Observing a log: the diagnostics channels (channels.ts) and wal.stats().

import assert from 'node:assert/strict';
import diagnosticsChannel from 'node:diagnostics_channel';
import { MemoryStore, type Store } from '@wal/store';
import { CrashFs, FaultFs } from '@wal/store/testing';
import fc from 'fast-check';
import {
  CHANNELS,
  type CommitEvent,
  type FailEvent,
  LOG2_BUCKETS,
  log2Bucket,
  type RecoveryEvent,
  type RollEvent,
  type TruncateEvent,
  Wal,
} from '../../src/index.js';
import { bytes, rejectsCode, tick, track } from '../helpers.js';
import { collect, GatedStore, SEGMENT, segmented } from './fixtures.js';

/** Collects what every channel publishes while `work` runs. */
async function listen(
  work: (events: Map<string, unknown[]>) => Promise<void>,
): Promise<Map<string, unknown[]>> {
  const events = new Map<string, unknown[]>(Object.values(CHANNELS).map((name) => [name, []]));
  const listeners = new Map<string, (message: unknown) => void>();
  for (const name of Object.values(CHANNELS)) {
    const listener = (message: unknown): void => {
      events.get(name)!.push(message);
    };
    listeners.set(name, listener);
    diagnosticsChannel.subscribe(name, listener);
  }
  try {
    await work(events);
  } finally {
    for (const [name, listener] of listeners) diagnosticsChannel.unsubscribe(name, listener);
  }
  return events;
}

const sum = (histogram: readonly number[]): number => histogram.reduce((a, b) => a + b, 0);

describe('Wal', () => {
  describe('diagnostics channels and stats()', () => {
    it('publishes recovery, every commit (bytes adding up to the durable watermark), truncations', async () => {
      const fs = new CrashFs();
      let wal!: Wal;
      const events = await listen(async () => {
        wal = await segmented(fs);
        const waits = [];
        for (let i = 0; i < 20; i++) waits.push(wal.append(bytes(100, i), { wait: 'durable' }));
        await Promise.all(waits);
        await wal.append(bytes(7), { wait: 'durable' });
        const keep = wal.append(bytes(5));
        wal.append(bytes(6));
        await wal.truncateAfter(keep);
        await wal.truncateBefore(keep);
        await wal.truncateBefore(keep); // nothing to cut: no event
      });
      const [recovery] = events.get(CHANNELS.recovery) as RecoveryEvent[];
      assert.equal(recovery!.wal, wal);
      assert.equal(recovery!.report, wal.recovery);
      const commits = events.get(CHANNELS.commit) as CommitEvent[];
      assert.ok(commits.length >= 2);
      let durable = 0;
      for (const commit of commits) {
        assert.equal(commit.wal, wal);
        assert.equal(commit.start, durable);
        assert.equal(commit.bytes, commit.end - commit.start);
        assert.ok(commit.syncMs >= 0);
        durable = commit.end;
      }
      // The 21 durable appends, and the truncateAfter's own durable wait.
      assert.equal(
        commits.reduce((n, c) => n + c.waiters, 0),
        22,
      );
      const truncations = events.get(CHANNELS.truncate) as TruncateEvent[];
      assert.deepEqual(
        truncations.map(({ side, lsn, head, tail }) => ({ side, lsn, head, tail })),
        [
          { side: 'after', lsn: wal.head, head: 0, tail: wal.tail },
          { side: 'before', lsn: wal.head, head: wal.head, tail: wal.tail },
        ],
      );
      const stats = wal.stats();
      assert.equal(stats.appends, 23);
      assert.equal(stats.appendedBytes, 20 * 100 + 7 + 5 + 6);
      assert.equal(stats.fsyncs, commits.length);
      assert.equal(stats.syncedBytes, durable);
      for (const histogram of [stats.batchWaiters, stats.batchBytes, stats.fsyncMicros]) {
        assert.equal(histogram.length, LOG2_BUCKETS);
        assert.equal(sum(histogram), commits.length);
      }
      for (const commit of commits) assert.ok(stats.batchWaiters[log2Bucket(commit.waiters)]! > 0);
      await wal.close();
      assert.equal(wal.stats().appends, 23);
    });

    it('publishes the first failure once; nothing after unsubscribing', async () => {
      const fs = new FaultFs(new CrashFs());
      let wal!: Wal;
      const events = await listen(async () => {
        wal = await segmented(fs, { stagingLimit: 64 * 1024 });
        // Two writes fail (each record larger than a staging chunk): the log fails twice, publishes once.
        fs.inject({ method: 'pwrite', fault: { code: 'EIO' }, persistent: true });
        const first = wal.append(bytes(20000, 1), { wait: 'written' });
        const second = wal.append(bytes(20000, 2), { wait: 'written' });
        await rejectsCode(first, 'WAL_WRITE_FAILED');
        await rejectsCode(second, 'WAL_WRITE_FAILED');
        await rejectsCode(wal.sync(), 'WAL_WRITE_FAILED');
        await wal.close(); // waits for the second write to settle
      });
      const fails = events.get(CHANNELS.fail) as FailEvent[];
      assert.equal(fails.length, 1);
      assert.equal(fails[0]!.wal, wal);
      assert.equal(fails[0]!.error, wal.failure);
      assert.equal((events.get(CHANNELS.commit) as unknown[]).length, 0);
      assert.equal(wal.stats().fsyncs, 0);
      const after = await listen(async () => {});
      const quiet = await segmented(new CrashFs());
      await quiet.append(bytes(1), { wait: 'durable' });
      await quiet.close();
      for (const list of after.values()) assert.equal(list.length, 0);
    });

    it('publishes each segment a write begins (segment rolls), again after a cut; none without segments', async () => {
      let wal!: Wal;
      const events = await listen(async () => {
        wal = await segmented(new CrashFs());
        for (let i = 0; i < 30; i++) wal.append(bytes(500 + i * 37, i));
        wal.append(bytes(3 * SEGMENT, 99)); // spans whole segments in one write
        await wal.sync();
        await wal.truncateAfter(0);
        await wal.append(bytes(2 * SEGMENT), { wait: 'written' });
        const memory = await Wal.open(new GatedStore());
        await memory.append(bytes(10 * SEGMENT), { wait: 'written' });
        await memory.close();
      });
      const rolls = events.get(CHANNELS.roll) as RollEvent[];
      assert.ok(rolls.every((roll) => roll.wal === wal && roll.segmentSize === SEGMENT));
      const offsets = rolls.map((roll) => roll.offset);
      const cut = offsets.findIndex((offset, i) => i > 0 && offset <= offsets[i - 1]!);
      assert.ok(cut > 0, `${offsets}`);
      const first = offsets.slice(0, cut);
      assert.deepEqual(
        first,
        first.map((_, i) => i * SEGMENT),
      );
      assert.ok(first.length >= 5);
      // After truncateAfter(0) the log is one record in segment 0: the next write begins segment 1 again.
      assert.deepEqual(offsets.slice(cut), [SEGMENT, 2 * SEGMENT]);
      await wal.close();
    });

    it('a roll subscriber may append: in blocking mode too, every acknowledged record is kept, at its own LSN', async () => {
      // A store with segments that writes a new segment at once (writeNow), so
      // the rolls of a blocking log are found while an append sends a chunk.
      const reopenable = (memory: MemoryStore): Store => {
        let closed = false;
        return new Proxy(memory, {
          get(target, key) {
            if (key === 'segmentSize') return SEGMENT;
            if (key === 'closed') return closed;
            if (key === 'close') {
              return async () => {
                closed = true; // keeps the bytes for the reopen
              };
            }
            const value = Reflect.get(target, key, target);
            return typeof value === 'function' ? value.bind(target) : value;
          },
        });
      };
      for (const blockingSync of [true, false]) {
        const memory = new MemoryStore();
        const wal = await Wal.open(reopenable(memory), { blockingSync, stagingLimit: 64 * 1024 });
        const acked = new Map<number, Uint8Array>();
        const waits: Promise<void>[] = [];
        let tag = 0;
        const add = (length: number): void => {
          const payload = bytes(length, ++tag);
          waits.push(
            wal.append(payload, { wait: 'durable' }).then((lsn) => {
              assert.ok(!acked.has(lsn), `LSN ${lsn} acknowledged twice`);
              acked.set(lsn, payload);
            }),
          );
        };
        const onRoll = (message: unknown): void => {
          if ((message as RollEvent).wal === wal) add(40);
        };
        diagnosticsChannel.subscribe(CHANNELS.roll, onRoll);
        try {
          for (let i = 0; i < 40; i++) {
            add(700 + ((i * 131) % 900));
            if (i % 20 === 19) await Promise.all(waits); // most sends happen inside an append
          }
          await Promise.all(waits);
        } finally {
          diagnosticsChannel.unsubscribe(CHANNELS.roll, onRoll);
        }
        assert.ok(acked.size > 45, `${acked.size} records, ${blockingSync}`);
        await wal.close();
        const reopened = await Wal.open(reopenable(memory));
        const records = await collect(reopened.iterate());
        assert.deepEqual(
          records.map(({ lsn, payload }) => [lsn, payload]),
          [...acked].sort(([a], [b]) => a - b),
          `blockingSync: ${blockingSync}`,
        );
        await reopened.close();
      }
    });

    it('stats() counts pending waits and staged bytes', async () => {
      const store = new GatedStore();
      const wal = await Wal.open(store, { stagingLimit: 64 * 1024 });
      store.hold();
      const waits = [wal.append(bytes(1000), { wait: 'written' }), wal.sync()];
      while (wal.writable) wal.append(bytes(1000));
      const drained = track(wal.drained());
      await tick();
      const stats = wal.stats();
      assert.equal(stats.waiters, 3);
      assert.equal(stats.bufferedBytes, wal.bufferedBytes);
      assert.ok(stats.bufferedBytes >= 64 * 1024);
      store.release();
      await Promise.all(waits);
      await tick();
      assert.equal(drained.state, 'resolved');
      assert.equal(wal.stats().waiters, 0);
      assert.equal(wal.stats().bufferedBytes, 0);
      await wal.close();
    });

    it('log2Bucket: bucket i holds [2^(i-1), 2^i), 0 below 1, the last from 2^31', () => {
      fc.assert(
        fc.property(fc.double({ min: 1, max: 2 ** 31 - 1, noNaN: true }), (value) => {
          const bucket = log2Bucket(value);
          assert.ok(2 ** (bucket - 1) <= value && value < 2 ** bucket, `${value} -> ${bucket}`);
        }),
      );
      assert.equal(log2Bucket(0), 0);
      assert.equal(log2Bucket(0.5), 0);
      assert.equal(log2Bucket(Number.NaN), 0);
      assert.equal(log2Bucket(2 ** 31), LOG2_BUCKETS - 1);
      assert.equal(log2Bucket(2 ** 40), LOG2_BUCKETS - 1);
    });
  });
});
