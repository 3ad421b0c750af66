// truncateBefore beside the writers (FORMAT.md §7.2): appends go on during
// it, their store calls wait only while the store records the head and
// deletes segments, it waits only for the records below its LSN, and reads,
// iterators, waits, sync and close behave as documented meanwhile. Power
// loss during it: test/crash/power-loss.test.ts ("checkpoints beside
// writers").

import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { errorCode } from '@wal/errors';
import { MemoryStore, type MetaUpdate } from '@wal/store';
import { CrashFs } from '@wal/store/testing';
import fc from 'fast-check';
import { HEADER_SIZE } from '../src/frame.js';
import { Wal } from '../src/index.js';
import { bytes, isCode, tick, track } from './helpers.js';

/** A promise released by hand. */
class Latch {
  readonly promise: Promise<void>;
  release!: () => void;
  constructor() {
    this.promise = new Promise((resolve) => {
      this.release = resolve;
    });
  }
}

/**
 * A MemoryStore that watches the log's calls: which calls arrive while its
 * own `truncateBefore` runs (the Store contract lets a store refuse them),
 * how far its syncs reached when the head moved, and holds chosen calls.
 */
class WatchedStore extends MemoryStore {
  /** Calls that arrived while `truncateBefore` ran. */
  readonly overlaps: string[] = [];
  /** Heads recorded while bytes below them were not synced. */
  readonly early: string[] = [];
  syncs = 0;
  /** End of the highest write that completed, and where the durable bytes from 0 end. */
  writtenEnd = 0;
  syncedEnd = 0;
  /** Durable writes that completed above `syncedEnd` (start, end). */
  readonly #durableAbove: [number, number][] = [];
  holdSync: Latch | undefined;
  holdTruncate: Latch | undefined;
  /** Set when `truncateBefore` was called (and is held, if `holdTruncate`). */
  truncating: Latch = new Latch();
  #inTruncate = false;

  #watch(call: string): void {
    if (this.#inTruncate) this.overlaps.push(call);
  }

  override async write(offset: number, data: Uint8Array): Promise<void> {
    this.#watch('write');
    await super.write(offset, data);
    this.writtenEnd = Math.max(this.writtenEnd, offset + data.length);
  }

  override async sync(): Promise<void> {
    this.#watch('sync');
    this.syncs++;
    const covered = this.writtenEnd;
    await this.holdSync?.promise;
    await super.sync();
    this.#durableUpTo(covered);
  }

  /** A durable write makes its own bytes durable, as a sync would (held with `holdSync` too). */
  override async writeDurable(offset: number, data: Uint8Array): Promise<void> {
    this.#watch('writeDurable');
    await this.holdSync?.promise;
    await super.writeDurable(offset, data);
    const end = offset + data.length;
    this.writtenEnd = Math.max(this.writtenEnd, end);
    this.#durableAbove.push([offset, end]);
    this.#durableUpTo(this.syncedEnd);
  }

  /** Bytes below `end` are durable: extends `syncedEnd` to it and across contiguous durable writes. */
  #durableUpTo(end: number): void {
    this.syncedEnd = Math.max(this.syncedEnd, end);
    this.#durableAbove.sort((a, b) => a[0] - b[0]);
    while (this.#durableAbove.length > 0 && this.#durableAbove[0]![0] <= this.syncedEnd) {
      this.syncedEnd = Math.max(this.syncedEnd, this.#durableAbove.shift()![1]);
    }
  }

  override read(offset: number, length: number): Promise<Uint8Array> {
    this.#watch('read');
    return super.read(offset, length);
  }

  override updateMeta(fields: MetaUpdate): Promise<void> {
    this.#watch('updateMeta');
    return super.updateMeta(fields);
  }

  override async truncateBefore(offset: number): Promise<void> {
    this.#watch('truncateBefore');
    if (offset > this.syncedEnd) {
      this.early.push(`head ${offset} recorded with bytes synced only up to ${this.syncedEnd}`);
    }
    this.#inTruncate = true;
    this.truncating.release();
    try {
      await this.holdTruncate?.promise;
      await super.truncateBefore(offset);
    } finally {
      this.#inTruncate = false;
    }
  }
}

describe('truncateBefore beside the writers', () => {
  it('appends during it get their LSN at once, are written, made durable and read back', async () => {
    const store = new WatchedStore();
    const wal = await Wal.open(store);
    const before = [wal.append(bytes(100, 1)), wal.append(bytes(200, 2))];
    const head = wal.append(bytes(300, 3));
    // The store's own truncateBefore takes a few turns (a durable commit may
    // take less than one: the truncation must still see appends beside it).
    store.holdTruncate = new Latch();
    const truncation = wal.truncateBefore(head);
    const during: number[] = [];
    const waits: Promise<number>[] = [];
    let step = 0;
    const state = track(truncation);
    while (!state.settled) {
      // Plain, batch and waiting appends, at every step of the truncation.
      const tail = wal.tail;
      during.push(wal.append(bytes(50 + step, 100 + step)));
      assert.equal(during.at(-1), tail, 'the LSN is handed out at once');
      during.push(...wal.appendBatch([bytes(7, 200 + step)]));
      const waiting = wal.append(bytes(9, 300 + step), { wait: 'durable' });
      during.push(wal.tail - HEADER_SIZE - 9);
      waits.push(waiting);
      step++;
      if (step === 3) store.holdTruncate.release();
      await tick();
    }
    await truncation;
    assert.ok(step >= 3, `the truncation took ${step} steps`);
    assert.equal(wal.head, head);
    assert.deepEqual(store.overlaps, []);
    assert.deepEqual(store.early, []);
    await Promise.all(waits);
    await wal.sync();
    assert.equal(wal.failure, undefined);
    for (const lsn of before) await assert.rejects(wal.read(lsn), isCode('WAL_TRUNCATED', lsn));
    const lsns: number[] = [];
    for await (const rec of wal.iterate()) lsns.push(rec.lsn);
    assert.deepEqual(lsns, [head, ...during]);
    await wal.close();
  });

  it('does not wait for the records from its LSN on: no sync for them', async () => {
    const store = new WatchedStore();
    const wal = await Wal.open(store);
    await wal.append(bytes(100, 1), { wait: 'durable' });
    const head = wal.append(bytes(100, 2), { wait: 'written' });
    const lsn = await head;
    const syncs = store.syncs;
    // Everything below lsn is durable already: the head moves without a sync,
    // though the record at lsn is not durable.
    await wal.truncateBefore(lsn);
    assert.equal(store.syncs, syncs, 'truncateBefore synced the records it keeps');
    assert.ok(wal.durable <= lsn);
    assert.equal(wal.head, lsn);
    await wal.close();
  });

  it('while it waits for the records below its LSN, appends are written (not refused)', async () => {
    const store = new WatchedStore();
    const wal = await Wal.open(store);
    const lsns = [wal.append(bytes(10, 1)), wal.append(bytes(20, 2))];
    const head = lsns[1]!;
    await wal.waitFor(head, 'written');
    store.holdSync = new Latch();
    const truncation = wal.truncateBefore(head);
    const state = track(truncation);
    // The sync making lsns[0] durable is held: the truncation cannot move the
    // head, and appends go on regardless.
    const written = wal.append(bytes(30, 3), { wait: 'written' });
    const lsn = await written;
    assert.deepEqual(await wal.read(lsn), bytes(30, 3));
    await tick();
    assert.equal(state.settled, false, 'the head moved before the records below it were durable');
    assert.equal(wal.head, 0);
    store.holdSync.release();
    store.holdSync = undefined;
    await truncation;
    assert.equal(wal.head, head);
    assert.deepEqual(store.early, []);
    await wal.close();
  });

  it('records the head only once every record below it is durable, never beside another store call', async () => {
    const store = new WatchedStore();
    const wal = await Wal.open(store);
    for (let round = 0; round < 20; round++) {
      const lsns: number[] = [];
      for (let i = 0; i < 5; i++) lsns.push(wal.append(bytes(1 + ((round * 5 + i) % 90), i)));
      const pick = lsns[round % 5]!;
      const truncation = wal.truncateBefore(round % 2 === 0 ? pick : wal.tail);
      // Keep the log busy: durable appends, reads, syncs, iterators.
      const busy: Promise<unknown>[] = [];
      for (let i = 0; i < 3; i++) {
        busy.push(wal.append(bytes(40, i), { wait: 'durable' }));
        busy.push(wal.sync());
        await tick();
      }
      await truncation;
      await Promise.all(busy);
    }
    assert.deepEqual(store.early, []);
    assert.deepEqual(store.overlaps, []);
    assert.equal(wal.failure, undefined);
    await wal.close();
  });

  it("appends' writes, syncs, reads and waits wait while the store records the head, then go on", async () => {
    const store = new WatchedStore();
    const wal = await Wal.open(store);
    const old = wal.append(bytes(10, 1));
    const head = wal.append(bytes(20, 2));
    const kept = wal.append(bytes(30, 3));
    await wal.sync();
    store.holdTruncate = new Latch();
    const truncation = track(wal.truncateBefore(head));
    await store.truncating.promise;
    // The store is inside its truncateBefore: everything the log sends waits.
    const writes = store.writtenEnd;
    const appended = wal.append(bytes(40, 4), { wait: 'written' });
    const durable = wal.append(bytes(50, 5), { wait: 'durable' });
    const pending = [
      track(appended),
      track(durable),
      track(wal.sync()),
      track(wal.read(kept)),
      track(wal.waitFor(kept, 'durable')),
    ];
    const below = wal.read(old);
    const iterator = wal.iterate(kept);
    const first = iterator.next();
    for (let i = 0; i < 5; i++) await tick();
    assert.equal(store.writtenEnd, writes, 'a write reached the store during its truncateBefore');
    assert.ok(
      pending.slice(0, 4).every((p) => !p.settled),
      'a call settled during the head write',
    );
    assert.equal(truncation.settled, false);
    store.holdTruncate.release();
    await assert.rejects(below, isCode('WAL_TRUNCATED', old));
    const lsn = await appended;
    await durable;
    for (let i = 0; i < 5; i++) await tick();
    assert.ok(pending.every((p) => p.settled && p.error === undefined));
    assert.equal(truncation.settled, true);
    assert.equal(((await first).value as { lsn: number }).lsn, kept);
    assert.deepEqual(await wal.read(lsn), bytes(40, 4));
    assert.deepEqual(store.overlaps, []);
    await wal.close();
  });

  it('close() during it lets it finish, then closes; a truncation queued behind it is refused', async () => {
    const store = new WatchedStore();
    const wal = await Wal.open(store);
    const lsns = [wal.append(bytes(10, 1)), wal.append(bytes(20, 2)), wal.append(bytes(30, 3))];
    store.holdTruncate = new Latch();
    const first = wal.truncateBefore(lsns[1]!);
    const second = wal.truncateBefore(lsns[2]!);
    const last = wal.append(bytes(5, 9));
    await store.truncating.promise;
    const closing = wal.close();
    assert.throws(() => wal.append(bytes(1, 1)), isCode('WAL_CLOSED'));
    await assert.rejects(wal.truncateBefore(lsns[2]!), isCode('WAL_CLOSED'));
    store.holdTruncate.release();
    await first;
    await assert.rejects(second, isCode('WAL_CLOSED'));
    await closing;
    assert.equal(wal.head, lsns[1]);
    assert.equal(store.head, lsns[1]);
    assert.ok(wal.durable > last, 'close made the record appended before it durable');
    assert.deepEqual(store.overlaps, []);
  });

  it('close() in the same turn as it (nothing queued before it) lets it finish; one queued behind another truncation is refused', async () => {
    const gaps = ['same turn', 'microtask', 'macrotask', 'first done'] as const;
    for (const gap of gaps) {
      const fs = new CrashFs();
      const wal = await Wal.open('/wal', { fs, segmentSize: 4096 });
      const lsns = [wal.append(bytes(10, 1)), wal.append(bytes(20, 2)), wal.append(bytes(30, 3))];
      const first = wal.truncateBefore(lsns[1]!);
      const queued = wal.truncateBefore(lsns[2]!); // behind the first
      if (gap === 'microtask') await Promise.resolve();
      if (gap === 'macrotask') await tick();
      if (gap === 'first done') await first;
      const last = wal.append(bytes(5, 4));
      const closing = wal.close();
      await assert.rejects(wal.truncateBefore(lsns[2]!), isCode('WAL_CLOSED')); // after close()
      await first;
      if (gap === 'first done')
        await queued; // its turn had come
      else await assert.rejects(queued, isCode('WAL_CLOSED'), gap);
      await closing;
      const head = gap === 'first done' ? lsns[2] : lsns[1];
      assert.equal(wal.head, head, gap);
      const again = await Wal.open('/wal', { fs, segmentSize: 4096 });
      assert.equal(again.head, head, gap);
      assert.deepEqual(await again.read(last), bytes(5, 4));
      await again.close();
    }
    // Behind a truncateAfter called before it: the truncateAfter's turn had
    // come, so it finishes; this one, queued behind it, is refused.
    const fs = new CrashFs();
    const wal = await Wal.open('/wal', { fs, segmentSize: 4096 });
    const lsns = [wal.append(bytes(10, 1)), wal.append(bytes(20, 2)), wal.append(bytes(30, 3))];
    const cut = wal.truncateAfter(lsns[1]!);
    const queued = wal.truncateBefore(lsns[1]!);
    await wal.close();
    await cut;
    await assert.rejects(queued, isCode('WAL_CLOSED'));
    assert.equal(wal.head, 0);
    const again = await Wal.open('/wal', { fs, segmentSize: 4096 });
    assert.equal(again.tail, lsns[2], 'the cut is durable');
    assert.equal(again.head, 0);
    await again.close();
  });

  it('model: close() among truncateBefores and pauses: those whose turn had come finish, the rest are refused, in call order', async () => {
    type Pause = 'none' | 'microtask' | 'macrotask';
    const pause = fc.constantFrom<Pause>('none', 'microtask', 'macrotask');
    await fc.assert(
      fc.asyncProperty(
        fc.array(pause, { minLength: 1, maxLength: 6 }),
        fc.nat(),
        async (pauses, at) => {
          const fs = new CrashFs();
          const wal = await Wal.open('/wal', { fs, segmentSize: 4096 });
          const lsns = pauses.map((_, i) => wal.append(bytes(10 + i, i)));
          const closeAt = at % (pauses.length + 1); // close() before the truncation numbered so
          const settled: boolean[] = [];
          const outcomes: Array<Promise<string>> = [];
          let closing: Promise<void> | undefined;
          // The truncations whose turn had come when close() was called: those
          // finished, and the first one not finished (none before it pending).
          const turns = (): number =>
            settled.filter(Boolean).length + (settled.includes(false) ? 1 : 0);
          let mustRun = 0;
          for (const [i, p] of pauses.entries()) {
            if (i === closeAt) {
              mustRun = turns();
              closing = wal.close();
            }
            const promise = wal.truncateBefore(lsns[i]!);
            settled.push(false);
            // Noted in the first reaction to the promise, as the log notes it finished.
            outcomes.push(
              promise.then(
                () => {
                  settled[i] = true;
                  return 'resolved';
                },
                (error: unknown) => {
                  settled[i] = true;
                  return errorCode(error) ?? String(error);
                },
              ),
            );
            if (p === 'microtask') await Promise.resolve();
            if (p === 'macrotask') await tick();
          }
          if (closing === undefined) {
            mustRun = turns();
            closing = wal.close();
          }
          await closing;
          const results = await Promise.all(outcomes);
          const ran = results.filter((r) => r === 'resolved').length;
          // Resolved first, then refused, nothing else; the ones whose turn had come ran.
          assert.deepEqual(results, [
            ...Array<string>(ran).fill('resolved'),
            ...Array<string>(results.length - ran).fill('WAL_CLOSED'),
          ]);
          assert.equal(ran, mustRun);
          const head = ran === 0 ? 0 : lsns[ran - 1]!;
          assert.equal(wal.head, head);
          const again = await Wal.open('/wal', { fs, segmentSize: 4096 });
          assert.equal(again.head, head);
          await again.close();
        },
      ),
      { numRuns: 60 },
    );
  });

  it('a truncateAfter called during it waits its turn; appends are refused from that call', async () => {
    const store = new WatchedStore();
    const wal = await Wal.open(store);
    const lsns = [wal.append(bytes(10, 1)), wal.append(bytes(20, 2)), wal.append(bytes(30, 3))];
    const before = wal.truncateBefore(lsns[1]!);
    const extra = wal.append(bytes(40, 4));
    const after = wal.truncateAfter(lsns[2]!);
    assert.throws(() => wal.append(bytes(1, 5)), isCode('WAL_BUSY'));
    await before;
    await after;
    assert.equal(wal.head, lsns[1]);
    assert.equal(wal.tail, extra);
    assert.equal(wal.append(bytes(1, 6)), extra);
    await wal.close();
  });

  it('validates its LSN against the log when its turn comes', async () => {
    const wal = await Wal.open(new MemoryStore());
    const lsns = [wal.append(bytes(10, 1)), wal.append(bytes(20, 2)), wal.append(bytes(30, 3))];
    // A truncateAfter ahead of it cuts below the LSN: past the tail by then.
    const cut = wal.truncateAfter(lsns[0]!);
    const late = wal.truncateBefore(lsns[2]!);
    await cut;
    await assert.rejects(late, isCode('ERR_OUT_OF_RANGE'));
    wal.append(bytes(50, 4));
    await assert.rejects(wal.truncateBefore(lsns[1]! + 4), isCode('WAL_NOT_BOUNDARY'));
    await assert.rejects(wal.truncateBefore(wal.tail + 1), isCode('ERR_OUT_OF_RANGE'));
    await assert.rejects(wal.truncateBefore(-1), isCode('ERR_OUT_OF_RANGE'));
    await wal.truncateBefore(lsns[1]!);
    await assert.rejects(wal.truncateBefore(lsns[0]!), isCode('WAL_TRUNCATED', lsns[0]));
    await wal.close();
  });

  it('an LSN past the tail at the call is refused, though appends in the same turn reach past it; nothing appended after it is dropped', async () => {
    const wal = await Wal.open(new MemoryStore());
    wal.append(bytes(10, 1));
    await wal.sync();
    const past = wal.tail + HEADER_SIZE + 5; // where the next 5-byte record ends
    const refused = assert.rejects(wal.truncateBefore(past), (error: unknown) => {
      assert.equal(errorCode(error), 'ERR_OUT_OF_RANGE');
      assert.match(String(error), new RegExp(`Received ${past}\\b`));
      return true;
    });
    const lsn = wal.append(bytes(5, 2));
    assert.equal(lsn + HEADER_SIZE + 5, past); // a boundary once appended
    await refused;
    assert.equal(wal.head, 0);
    assert.deepEqual(await wal.read(lsn), bytes(5, 2));
    await wal.close();
  });

  it('model: truncateBefores and appends in one turn: past the tail at the call is refused, every record from the final head is kept', async () => {
    type Step = { op: 'append'; size: number } | { op: 'truncate'; pick: number; past: number };
    const step: fc.Arbitrary<Step> = fc.oneof(
      fc.record({ op: fc.constant('append' as const), size: fc.integer({ min: 0, max: 30 }) }),
      // past 0: an LSN handed out (or the tail); past > 0: that far past the tail
      fc.record({
        op: fc.constant('truncate' as const),
        pick: fc.nat(),
        past: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 80 })),
      }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 14 }), async (steps) => {
        const wal = await Wal.open(new MemoryStore());
        const records: Array<{ lsn: number; payload: Uint8Array }> = [];
        let head = 0; // the model's head once the truncations ran, in call order
        const outcomes: Array<Promise<void>> = [];
        for (const [i, s] of steps.entries()) {
          if (s.op === 'append') {
            const payload = bytes(s.size, i);
            records.push({ lsn: wal.append(payload), payload });
            continue;
          }
          const tail = wal.tail;
          const boundaries = [...records.map((r) => r.lsn), tail];
          const lsn = s.past === 0 ? boundaries[s.pick % boundaries.length]! : tail + s.past;
          let expected: string;
          if (lsn > tail) expected = 'ERR_OUT_OF_RANGE';
          else if (lsn < head) expected = 'WAL_TRUNCATED';
          else {
            expected = 'resolved';
            head = lsn;
          }
          outcomes.push(
            wal.truncateBefore(lsn).then(
              () => assert.equal('resolved', expected, `truncateBefore(${lsn})`),
              (error: unknown) =>
                assert.equal(errorCode(error), expected, `truncateBefore(${lsn})`),
            ),
          );
        }
        await Promise.all(outcomes);
        assert.equal(wal.head, head);
        for (const record of records) {
          if (record.lsn >= head) assert.deepEqual(await wal.read(record.lsn), record.payload);
          else await assert.rejects(wal.read(record.lsn), isCode('WAL_TRUNCATED'));
        }
        await wal.close();
      }),
      { numRuns: 150 },
    );
  });

  it('50 writers append durably without pause while checkpoints run: none refused, none lost', async function () {
    this.timeout(120_000);
    const root = await mkdtemp(join(tmpdir(), 'wal-checkpoints-'));
    const dir = join(root, 'log');
    try {
      const wal = await Wal.open(dir, { segmentSize: 4096 });
      const WRITERS = 50;
      const EACH = 30;
      const acknowledged = new Map<number, Uint8Array>();
      const refused: unknown[] = [];
      let running = WRITERS;
      const writers = Array.from({ length: WRITERS }, async (_, w) => {
        for (let i = 0; i < EACH; i++) {
          const payload = bytes(20 + ((w * 31 + i * 7) % 200), w * 1000 + i);
          try {
            acknowledged.set(await wal.append(payload, { wait: 'durable' }), payload);
          } catch (error) {
            refused.push(error);
          }
        }
        running--;
      });
      // Checkpoints at a recent boundary: the tail, taken while writers append.
      let checkpoints = 0;
      let segmentsDeleted = false;
      const checkpointer = (async () => {
        while (running > 0) {
          const lsn = wal.tail;
          await wal.truncateBefore(lsn);
          checkpoints++;
          assert.ok(wal.head >= lsn);
          const names = await readdir(dir);
          if (!names.includes('00000000000000000000.wal')) segmentsDeleted = true;
          await tick();
        }
      })();
      await Promise.all([...writers, checkpointer]);
      assert.deepEqual(refused, []);
      assert.equal(acknowledged.size, WRITERS * EACH);
      assert.ok(checkpoints >= 5, `only ${checkpoints} checkpoints ran`);
      assert.ok(segmentsDeleted, 'no checkpoint deleted a segment');
      const head = wal.head;
      const live = [...acknowledged.keys()].filter((lsn) => lsn >= head).sort((a, b) => a - b);
      assert.ok(live.length < WRITERS * EACH);
      const check = async (log: Wal, what: string): Promise<void> => {
        const got: number[] = [];
        for await (const rec of log.iterate()) {
          assert.deepEqual(rec.payload, acknowledged.get(rec.lsn), `${what}: record ${rec.lsn}`);
          got.push(rec.lsn);
        }
        assert.deepEqual(got, live, `${what}: the records from the head on`);
      };
      await check(wal, 'read back');
      await wal.close();
      const again = await Wal.open(dir);
      assert.equal(again.head, head);
      await check(again, 'after reopening');
      await again.close();
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
