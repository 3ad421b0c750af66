// The Wal API (wal.ts): open and close over every store, append and its
// waits, read, iterate, truncation at both ends, the maximum record size,
// options, back-pressure, read-only opens, fail-stop (the typed wrapper: typed-wal.test.ts).

import assert from 'node:assert/strict';
import { FileStore, MemoryStore, SegmentedStore, type Store } from '@wal/store';
import { CrashFs, FaultFs } from '@wal/store/testing';
import fc from 'fast-check';
import { BoundaryIndex } from '../src/boundary-index.js';
import { HEADER_SIZE } from '../src/frame.js';
import { Wal, type WalOptions, type WalRecord } from '../src/index.js';
import { bytes, rejectsCode, throwsCode, tick } from './helpers.js';

const SEGMENT = 4096;
const DIR = '/wal';
const FILE = '/wal.log';

/** A file system holding only what `fs` made durable (the harshest power loss). */
function durableOnly(fs: CrashFs): CrashFs {
  const [state] = fs.crashStates({ mode: 'sample', limit: 1 });
  return state!.fs();
}

/** Tracks a promise's state without awaiting it. */
function track<T>(promise: Promise<T>): {
  state: 'pending' | 'resolved' | 'rejected';
  error?: unknown;
} {
  const tracked: { state: 'pending' | 'resolved' | 'rejected'; error?: unknown } = {
    state: 'pending',
  };
  promise.then(
    () => {
      tracked.state = 'resolved';
    },
    (error: unknown) => {
      tracked.state = 'rejected';
      tracked.error = error;
    },
  );
  return tracked;
}

async function collect(iterator: AsyncIterable<WalRecord>): Promise<WalRecord[]> {
  const out: WalRecord[] = [];
  for await (const record of iterator) out.push(record);
  return out;
}

async function collectBatches(iterator: AsyncIterable<WalRecord[]>): Promise<WalRecord[][]> {
  const out: WalRecord[][] = [];
  for await (const batch of iterator) out.push(batch);
  return out;
}

/** A MemoryStore whose writes wait on a gate the test opens and closes. */
class GatedStore extends MemoryStore {
  #gate: Promise<void> | undefined;
  #open: (() => void) | undefined;
  /** Writes begun (held or not). */
  writes = 0;

  hold(): void {
    if (this.#gate !== undefined) return;
    this.#gate = new Promise((resolve) => {
      this.#open = resolve;
    });
  }

  release(): void {
    const open = this.#open;
    this.#gate = undefined;
    this.#open = undefined;
    open?.();
  }

  override async write(offset: number, data: Uint8Array): Promise<void> {
    this.writes++;
    while (this.#gate !== undefined) await this.#gate;
    return super.write(offset, data);
  }
}

const segmented = (fs: CrashFs | FaultFs, extra: WalOptions = {}): Promise<Wal> =>
  Wal.open(DIR, { fs, segmentSize: SEGMENT, ...extra });
const single = (fs: CrashFs | FaultFs, extra: WalOptions = {}): Promise<Wal> =>
  Wal.open(FILE, { fs, layout: 'file', ...extra });

/** Appends `sizes` records and returns their LSNs and payloads. */
function appendAll(wal: Wal, sizes: readonly number[]): { lsns: number[]; payloads: Uint8Array[] } {
  const lsns: number[] = [];
  const payloads: Uint8Array[] = [];
  for (const size of sizes) {
    const payload = bytes(size, lsns.length + 1);
    payloads.push(payload);
    lsns.push(wal.append(payload));
  }
  return { lsns, payloads };
}

describe('BoundaryIndex', () => {
  it('finds, for every live boundary, an entry at or below it in the same interval (property)', () => {
    // What LSN validation relies on: a walk from floor(lsn) reads at most
    // about one interval. Notes, cuts and new heads in any order.
    const op = fc.oneof(
      fc.record({ kind: fc.constant('note' as const), step: fc.integer({ min: 1, max: 70 }) }),
      fc.record({ kind: fc.constant('after' as const), pick: fc.nat() }),
      fc.record({ kind: fc.constant('before' as const), pick: fc.nat() }),
    );
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 64 }),
        fc.array(op, { maxLength: 80 }),
        (interval, ops) => {
          const index = new BoundaryIndex(interval);
          const live: number[] = [0]; // boundaries of the log, ascending
          index.note(0);
          for (const o of ops) {
            if (o.kind === 'note') {
              const lsn = live.at(-1)! + o.step;
              live.push(lsn);
              index.note(lsn);
            } else if (o.kind === 'after') {
              const end = live[o.pick % live.length]!;
              live.splice(live.indexOf(end) + 1);
              index.truncateAfter(end);
            } else {
              const head = live[o.pick % live.length]!;
              live.splice(0, live.indexOf(head));
              index.truncateBefore(head);
            }
            for (const b of live) {
              const f = index.floor(b);
              assert.ok(f !== undefined && f <= b && f >= live[0]!, `floor(${b}) = ${f}`);
              assert.equal(
                Math.floor(f / interval),
                Math.floor(b / interval),
                `floor(${b}) = ${f}`,
              );
            }
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('keeps the first boundary of each interval, finds floors, truncates at both ends', () => {
    const index = new BoundaryIndex(100);
    assert.equal(index.size, 0);
    assert.equal(index.floor(50), undefined);
    const noted: number[] = [];
    for (let lsn = 0; lsn < 100 * 200; lsn += 30) {
      index.note(lsn);
      if (noted.length === 0 || Math.floor(lsn / 100) > Math.floor(noted.at(-1)! / 100))
        noted.push(lsn);
    }
    assert.equal(index.size, noted.length);
    assert.ok(index.size > 64, 'grew past its initial capacity');
    for (const probe of [0, 29, 30, 99, 100, 5555, 19_999]) {
      assert.equal(index.floor(probe), noted.filter((lsn) => lsn <= probe).at(-1));
    }
    index.truncateAfter(5000);
    assert.equal(index.floor(19_999), 5000);
    index.truncateBefore(4000);
    assert.equal(index.floor(3999), undefined);
    assert.equal(index.floor(4000), 4000);
    index.truncateBefore(4005);
    assert.equal(index.floor(4004), undefined);
    assert.equal(index.floor(4005), 4005);
    // Empty, then a head in front once full.
    index.truncateBefore(10_000);
    assert.equal(index.size, 1);
    const full = new BoundaryIndex(1);
    for (let lsn = 1; lsn <= 64; lsn++) full.note(lsn);
    assert.equal(full.size, 64);
    full.truncateBefore(0); // a head below every entry, into a full index
    assert.equal(full.size, 65);
    assert.equal(full.floor(0), 0);
    full.truncateAfter(63);
    full.truncateBefore(10);
    assert.equal(full.floor(9), undefined);
    assert.equal(full.floor(63), 63);
    const empty = new BoundaryIndex(10);
    empty.truncateAfter(0);
    assert.equal(empty.floor(5), 0);
  });
});

describe('Wal', () => {
  describe('open and close', () => {
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

  describe('append', () => {
    it('hands out LSNs synchronously and in order (lsn[i+1] = lsn[i] + 8 + len[i])', async () => {
      const wal = await Wal.open(new MemoryStore());
      const sizes = [0, 1, 7, 100, 5000, 20000, 3];
      const { lsns } = appendAll(wal, sizes);
      assert.equal(lsns[0], 0);
      for (let i = 1; i < lsns.length; i++) {
        assert.equal(lsns[i], lsns[i - 1]! + HEADER_SIZE + sizes[i - 1]!);
      }
      assert.equal(wal.tail, lsns.at(-1)! + HEADER_SIZE + sizes.at(-1)!);
      await wal.close();
    });

    it('copies the payload: changing it after append changes nothing; views and Buffers work', async () => {
      const wal = await Wal.open(new MemoryStore(), { stagingLimit: 64 * 1024 });
      const small = bytes(100);
      const large = bytes(30_000); // larger than a staging chunk: written on its own
      const a = wal.append(small);
      const b = wal.append(large);
      small.fill(0);
      large.fill(0);
      const backing = bytes(64, 7);
      const c = wal.append(backing.subarray(16, 48));
      const d = wal.append(Buffer.from('hello'));
      assert.deepEqual(await wal.read(a), bytes(100));
      assert.deepEqual(await wal.read(b), bytes(30_000));
      assert.deepEqual(await wal.read(c), bytes(64, 7).subarray(16, 48));
      assert.equal(new TextDecoder().decode(await wal.read(d)), 'hello');
      await wal.close();
    });

    it('rejects a non-Uint8Array payload and bad wait options', async () => {
      const wal = await Wal.open(new MemoryStore());
      throwsCode(() => wal.append('x' as unknown as Uint8Array), 'ERR_INVALID_ARG_TYPE');
      await rejectsCode(
        wal.append(bytes(1), null as unknown as { wait: 'written' }),
        'ERR_INVALID_ARG_TYPE',
      );
      await rejectsCode(
        wal.append(bytes(1), { wait: 'soon' as 'written' }),
        'ERR_INVALID_ARG_VALUE',
      );
      assert.equal(wal.tail, 0, 'nothing was reserved');
      await wal.close();
    });

    it('names a misspelt or unknown key of append, appendBatch and iterate options, as open does', async () => {
      const wal = await Wal.open(new MemoryStore());
      const openError = await rejectsCode(
        Wal.open(new MemoryStore(), { waitt: 1 } as unknown as WalOptions),
        'ERR_INVALID_ARG_VALUE',
      );
      assert.match(openError.message, /"options\.waitt" argument is not an option/);
      const misspelt = { waitt: 'durable' } as unknown as { wait: 'durable' };
      const extra = { wait: 'durable', timeout: 5 } as unknown as { wait: 'durable' };
      for (const error of [
        await rejectsCode(wal.append(bytes(1), misspelt), 'ERR_INVALID_ARG_VALUE'),
        await rejectsCode(wal.appendBatch([bytes(1)], misspelt), 'ERR_INVALID_ARG_VALUE'),
      ]) {
        assert.ok(error instanceof TypeError);
        assert.match(error.message, /"options\.waitt" argument is not an option \(known: wait\)/);
        assert.doesNotMatch(error.message, /options\.wait"/);
      }
      const extraError = await rejectsCode(wal.append(bytes(1), extra), 'ERR_INVALID_ARG_VALUE');
      assert.match(extraError.message, /"options\.timeout"/);
      // Inherited keys are not options given (as for open).
      const inherited = Object.create({ other: 1 }) as { wait: 'written' };
      inherited.wait = 'written';
      assert.equal(await wal.append(bytes(1), inherited), 0);
      assert.equal(wal.tail, HEADER_SIZE + 1, 'nothing refused was reserved');
      throwsCode(
        () =>
          wal.iterateBatches(undefined, { batchbytes: 10 } as unknown as { batchBytes: number }),
        'ERR_INVALID_ARG_VALUE',
      );
      throwsCode(
        () => wal.iterateBatches(undefined, 5 as unknown as { batchBytes: number }),
        'ERR_INVALID_ARG_TYPE',
      );
      await wal.close();
    });

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

    it('appendBatch: consecutive LSNs; all or nothing on a bad or over-limit element', async () => {
      const wal = await Wal.open(new MemoryStore(), { maxRecordSize: 1000 });
      const lsns = wal.appendBatch([bytes(1), bytes(2), bytes(3)]);
      assert.deepEqual(lsns, [0, 9, 19]);
      assert.deepEqual(wal.appendBatch([]), []);
      const tail = wal.tail;
      throwsCode(
        () => wal.appendBatch([bytes(1), 'x' as unknown as Uint8Array]),
        'ERR_INVALID_ARG_TYPE',
      );
      const tooLarge = throwsCode(
        () => wal.appendBatch([bytes(10), bytes(1001)]),
        'WAL_RECORD_TOO_LARGE',
      );
      assert.equal((tooLarge as { offset?: number }).offset, undefined, 'nothing was written');
      assert.equal(
        tooLarge.message,
        'a record of 1001 bytes exceeds the maximum record size of 1000 bytes',
      );
      throwsCode(() => wal.appendBatch('x' as unknown as Uint8Array[]), 'ERR_INVALID_ARG_TYPE');
      await rejectsCode(
        wal.appendBatch([bytes(1001)], { wait: 'written' }),
        'WAL_RECORD_TOO_LARGE',
      );
      await rejectsCode(
        wal.appendBatch([bytes(1)], { wait: 'x' as 'written' }),
        'ERR_INVALID_ARG_VALUE',
      );
      assert.equal(wal.tail, tail, 'no failed batch reserved anything');
      const waited = await wal.appendBatch([bytes(4), bytes(5)], { wait: 'durable' });
      assert.deepEqual(waited, [tail, tail + HEADER_SIZE + 4]);
      assert.ok(wal.durable > waited[1]!);
      assert.deepEqual(await wal.appendBatch([], { wait: 'durable' }), []);
      for (const [i, lsn] of lsns.entries()) assert.deepEqual(await wal.read(lsn), bytes(i + 1));
      await wal.close();
    });
  });

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

  describe('iterate and iterateBatches', () => {
    it('iterates from the head and from a middle LSN, in record and batch form', async () => {
      const wal = await Wal.open(new MemoryStore());
      const sizes = Array.from({ length: 30 }, (_, i) => (i * 37) % 500);
      const { lsns, payloads } = appendAll(wal, sizes);
      await wal.waitFor(lsns.at(-1)!, 'written');
      const all = await collect(wal.iterate());
      assert.deepEqual(
        all.map((r) => r.lsn),
        lsns,
      );
      for (let i = 0; i < all.length; i++) assert.deepEqual(all[i]!.payload, payloads[i]);
      const middle = await collect(wal.iterate(lsns[12]));
      assert.deepEqual(
        middle.map((r) => r.lsn),
        lsns.slice(12),
      );
      const batches = await collectBatches(wal.iterateBatches(lsns[3], { batchBytes: 1024 }));
      assert.ok(batches.length > 1);
      for (const batch of batches) assert.ok(batch.length > 0);
      assert.deepEqual(
        batches.flat().map((r) => r.lsn),
        lsns.slice(3),
      );
      // From the tail: nothing.
      assert.deepEqual(await collect(wal.iterate(wal.tail)), []);
      await wal.close();
    });

    it('is bounded by the written watermark when created', async () => {
      const wal = await Wal.open(new MemoryStore());
      const { lsns } = appendAll(wal, [10, 20, 30]);
      await wal.waitFor(lsns[2]!, 'written');
      const iterator = wal.iterate();
      const batches = wal.iterateBatches();
      const later = await wal.append(bytes(40), { wait: 'written' });
      const seen = await collect(iterator);
      assert.deepEqual(
        seen.map((r) => r.lsn),
        lsns,
      );
      assert.deepEqual(
        (await collectBatches(batches)).flat().map((r) => r.lsn),
        lsns,
      );
      assert.deepEqual(
        (await collect(wal.iterate())).map((r) => r.lsn),
        [...lsns, later],
      );
      // Staged but not yet written: not seen.
      const staged = wal.append(bytes(5));
      const now = await collect(wal.iterate(later));
      assert.ok(now.every((r) => r.lsn < staged));
      await wal.close();
    });

    it('rejects a non-boundary fromLsn on the first next(), and bad arguments at once', async () => {
      const wal = await Wal.open(new MemoryStore());
      const { lsns } = appendAll(wal, [10, 20, 30]);
      await wal.sync();
      const iterator = wal.iterate(lsns[1]! + 1);
      const error = await rejectsCode(iterator.next(), 'WAL_NOT_BOUNDARY');
      assert.equal((error as { offset?: number }).offset, lsns[1]! + 1);
      await rejectsCode(wal.iterateBatches(3).next(), 'WAL_NOT_BOUNDARY');
      await rejectsCode(wal.iterate(wal.tail + 1).next(), 'ERR_OUT_OF_RANGE');
      assert.throws(() => wal.iterate(-1), { code: 'ERR_OUT_OF_RANGE' });
      assert.throws(() => wal.iterateBatches(0, { batchBytes: 4 }), { code: 'ERR_OUT_OF_RANGE' });
      assert.throws(() => wal.iterateBatches(0, { batchBytes: 1.5 }), { code: 'ERR_OUT_OF_RANGE' });
      await wal.close();
    });

    // BUG: an iterator from an LSN the log handed out but has not written yet
    // (here: the tail, with records still staged) rejects ERR_OUT_OF_RANGE,
    // with a message naming the written watermark as "the end of the log",
    // while the same call resolves empty once the writes land. Expected: an
    // empty iterator (its bound, the written watermark, is below its start).
    it('iterate(tail) with records still staged is an empty iteration', async () => {
      const wal = await Wal.open(new MemoryStore());
      wal.append(bytes(10));
      const tail = wal.tail;
      let error: unknown;
      const seen: WalRecord[] = [];
      try {
        for await (const record of wal.iterate(tail)) seen.push(record);
      } catch (caught) {
        error = caught;
      }
      await wal.close();
      assert.equal(error, undefined, `iterate(${tail}) rejected: ${String(error)}`);
      assert.deepEqual(seen, []);
    });

    it('yields records larger than batchBytes alone', async () => {
      const wal = await Wal.open(new MemoryStore());
      const { lsns, payloads } = appendAll(wal, [10, 5000, 20, 30, 9000, 1]);
      await wal.sync();
      const batches = await collectBatches(wal.iterateBatches(undefined, { batchBytes: 256 }));
      assert.deepEqual(
        batches.flat().map((r) => r.lsn),
        lsns,
      );
      assert.deepEqual(
        batches.flat().map((r) => r.payload),
        payloads,
      );
      const big = batches.find((batch) => batch.some((r) => r.lsn === lsns[1]));
      assert.equal(big?.length, 1);
      await wal.close();
    });

    it('return() ends an iterator early', async () => {
      const wal = await Wal.open(new MemoryStore());
      appendAll(wal, [1, 2, 3, 4]);
      await wal.sync();
      const seen: number[] = [];
      for await (const record of wal.iterate()) {
        seen.push(record.lsn);
        if (seen.length === 2) break;
      }
      assert.equal(seen.length, 2);
      const batches = wal.iterateBatches();
      assert.ok((await batches.next()).done === false);
      assert.deepEqual(await batches.return!(), { value: undefined, done: true });
      assert.equal((await batches.next()).done, true);
      const records = wal.iterate();
      await records.next();
      await records.return!();
      assert.equal((await records.next()).done, true);
      await wal.close();
    });

    it('an iterator across a truncateAfter ends at the cut', async () => {
      const wal = await Wal.open(new MemoryStore());
      const { lsns } = appendAll(
        wal,
        Array.from({ length: 20 }, () => 100),
      );
      await wal.sync();
      const iterator = wal.iterateBatches(undefined, { batchBytes: 256 });
      const first = await iterator.next();
      assert.equal(first.done, false);
      const seen = [...(first.value as WalRecord[])];
      await wal.truncateAfter(lsns[9]!);
      for await (const batch of iterator) seen.push(...batch);
      assert.deepEqual(
        seen.map((r) => r.lsn),
        lsns.slice(0, 10),
      );
      // An iterator created before the cut but not started ends there too.
      const fresh = wal.iterate();
      await wal.truncateAfter(lsns[4]!);
      assert.deepEqual(
        (await collect(fresh)).map((r) => r.lsn),
        lsns.slice(0, 5),
      );
      await wal.close();
    });

    it('a batch read ahead before a truncateAfter and new appends yields only what the cut kept', async () => {
      // The iterator reads the next batch while the caller holds this one;
      // the cut and the appends after it rewrite the bytes it read.
      const wal = await Wal.open(new MemoryStore());
      const payloads = Array.from({ length: 12 }, (_, i) => new Uint8Array(100).fill(i + 1));
      const lsns = payloads.map((p) => wal.append(p));
      await wal.sync();
      const iterator = wal.iterateBatches(undefined, { batchBytes: 256 });
      const first = await iterator.next();
      assert.equal(first.done, false);
      const seen = [...(first.value as WalRecord[])];
      assert.deepEqual(
        seen.map((r) => r.lsn),
        lsns.slice(0, 2),
      );
      await wal.truncateAfter(lsns[2]!); // inside the batch read ahead
      for (let i = 0; i < 10; i++) wal.append(new Uint8Array(37).fill(0xee));
      await wal.waitFor(wal.tail - 45, 'written');
      for await (const batch of iterator) seen.push(...batch);
      assert.deepEqual(
        seen.map((r) => [r.lsn, r.payload[0]]),
        lsns.slice(0, 3).map((lsn, i) => [lsn, i + 1]),
      );
      await wal.close();
    });

    it('an iterator below a truncateBefore rejects WAL_TRUNCATED', async () => {
      const wal = await Wal.open(new MemoryStore());
      const { lsns } = appendAll(
        wal,
        Array.from({ length: 20 }, () => 100),
      );
      await wal.sync();
      const iterator = wal.iterateBatches(undefined, { batchBytes: 256 });
      assert.equal((await iterator.next()).done, false);
      await wal.truncateBefore(lsns[15]!);
      const error = await rejectsCode(iterator.next(), 'WAL_TRUNCATED');
      assert.ok(((error as { offset?: number }).offset ?? 0) < lsns[15]!);
      assert.equal((await iterator.next()).done, true, 'a failed iterator is done');
      // Created before the truncation, started after it.
      const late = wal.iterate(lsns[0]);
      await wal.truncateBefore(lsns[16]!);
      await rejectsCode(late.next(), 'WAL_TRUNCATED');
      assert.deepEqual(
        (await collect(wal.iterate())).map((r) => r.lsn),
        lsns.slice(16),
      );
      await wal.close();
    });
  });

  describe('truncation', () => {
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

    it('truncateBefore moves the head durably, deletes segments below it, reopen sees the same head', async () => {
      const fs = new CrashFs();
      const wal = await segmented(fs);
      const { lsns } = appendAll(
        wal,
        Array.from({ length: 12 }, (_, i) => 1500 + i),
      );
      await wal.sync();
      const before = (await fs.readdir(DIR)).filter(
        (name) => !name.startsWith('meta') && name !== 'head',
      );
      await wal.truncateBefore(lsns[8]!);
      assert.equal(wal.head, lsns[8]);
      const after = (await fs.readdir(DIR)).filter(
        (name) => !name.startsWith('meta') && name !== 'head',
      );
      assert.ok(after.length < before.length, `${before.join(',')} -> ${after.join(',')}`);
      assert.equal(wal.store.head, lsns[8]);
      // The head itself is fine; non-boundaries and truncated offsets are refused.
      await wal.truncateBefore(lsns[8]!);
      await rejectsCode(wal.truncateBefore(lsns[2]!), 'WAL_TRUNCATED');
      await rejectsCode(wal.truncateBefore(lsns[9]! + 1), 'WAL_NOT_BOUNDARY');
      await rejectsCode(wal.truncateBefore(wal.tail + 1), 'ERR_OUT_OF_RANGE');
      await rejectsCode(wal.truncateBefore(-1), 'ERR_OUT_OF_RANGE');
      await wal.close();
      const again = await segmented(fs.powerLoss({ seed: 2 }).fs());
      assert.equal(again.head, lsns[8]);
      assert.equal(again.recovery.head, lsns[8]);
      assert.deepEqual(
        (await collect(again.iterate())).map((r) => r.lsn),
        lsns.slice(8),
      );
      // Everything, up to the tail.
      await again.truncateBefore(again.tail);
      assert.equal(again.head, again.tail);
      assert.deepEqual(await collect(again.iterate()), []);
      const next = again.append(bytes(3));
      assert.equal(next, again.head);
      await again.close();
    });

    it('truncateBefore makes the records up to lsn durable first', async () => {
      const wal = await Wal.open(new MemoryStore());
      const { lsns } = appendAll(wal, [10, 20, 30]);
      await wal.truncateBefore(lsns[2]!);
      assert.ok(wal.durable > lsns[2]!);
      assert.equal(wal.head, lsns[2]);
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
        (error as { code?: unknown } | undefined)?.code,
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
  });

  describe('maximum record size', () => {
    it('an over-limit append throws WAL_RECORD_TOO_LARGE synchronously', async () => {
      const wal = await Wal.open(new MemoryStore(), { maxRecordSize: 100 });
      assert.equal(wal.maxRecordSize, 100);
      wal.append(bytes(100));
      const error = throwsCode(() => wal.append(bytes(101)), 'WAL_RECORD_TOO_LARGE');
      assert.equal((error as { length?: number }).length, 101);
      assert.equal((error as { limit?: number }).limit, 100);
      // The size and the limit, and no offset: nothing was written at the tail.
      assert.equal((error as { offset?: number }).offset, undefined);
      assert.equal(
        error.message,
        'a record of 101 bytes exceeds the maximum record size of 100 bytes',
      );
      assert.doesNotMatch(error.message, /offset|\b108\b/);
      await rejectsCode(wal.append(bytes(101), { wait: 'written' }), 'WAL_RECORD_TOO_LARGE');
      assert.equal(wal.tail, HEADER_SIZE + 100);
      await wal.close();
    });

    it('is persisted; a smaller one is refused (nothing changes), a larger one is raised', async () => {
      const fs = new CrashFs();
      const wal = await segmented(fs, { maxRecordSize: 5000 });
      const { lsns } = appendAll(wal, [5000, 10]);
      await wal.close();
      const persisted = await segmented(fs);
      assert.equal(persisted.maxRecordSize, 5000);
      throwsCode(() => persisted.append(bytes(5001)), 'WAL_RECORD_TOO_LARGE');
      await persisted.close();
      const snapshot = fs.snapshot();
      await rejectsCode(segmented(fs, { maxRecordSize: 4999 }), 'ERR_OUT_OF_RANGE');
      assert.deepEqual(fs.snapshot().files, snapshot.files, 'a refused open changes nothing');
      const same = await segmented(fs, { maxRecordSize: 5000 });
      await same.close();
      const raised = await segmented(fs, { maxRecordSize: 8000 });
      assert.equal(raised.maxRecordSize, 8000);
      raised.append(bytes(8000));
      await raised.close();
      const again = await segmented(fs);
      assert.equal(again.maxRecordSize, 8000);
      assert.deepEqual(await again.read(lsns[0]!), bytes(5000, 1));
      await rejectsCode(segmented(fs, { maxRecordSize: 5000 }), 'WAL_LOCKED');
      await again.close();
      await rejectsCode(segmented(fs, { maxRecordSize: 5000 }), 'ERR_OUT_OF_RANGE');
    });

    it('an intact record above the persisted maximum fails the open without cutting', async () => {
      const fs = new CrashFs();
      const wal = await single(fs, { maxRecordSize: 2000 });
      appendAll(wal, [10, 1500]);
      await wal.close();
      // Forge a smaller persisted maximum through the store itself.
      const store = await FileStore.open(FILE, { fs });
      await store.updateMeta({ 'wal.maxRecordSize': 1000 });
      await store.close();
      const before = fs.snapshot().files;
      const error = await rejectsCode(single(fs), 'WAL_RECORD_TOO_LARGE');
      assert.equal((error as { offset?: number }).offset, HEADER_SIZE + 10);
      assert.deepEqual(fs.snapshot().files, before, 'nothing is cut');
      // Raising the maximum again opens it.
      const raised = await single(fs, { maxRecordSize: 1500 });
      assert.equal(raised.recovery.records, 2);
      await raised.close();
    });
  });

  describe('options', () => {
    const cases: Array<[string, unknown, string]> = [
      ['options', 5, 'ERR_INVALID_ARG_TYPE'],
      ['options', null, 'ERR_INVALID_ARG_TYPE'],
      ['maxRecordSize', '1', 'ERR_INVALID_ARG_TYPE'],
      ['maxRecordSize', 0, 'ERR_OUT_OF_RANGE'],
      ['maxRecordSize', 2 ** 30 + 1, 'ERR_OUT_OF_RANGE'],
      ['maxRecordSize', 1.5, 'ERR_OUT_OF_RANGE'],
      ['recovery', 'lenient', 'ERR_INVALID_ARG_VALUE'],
      ['recovery', 1, 'ERR_INVALID_ARG_VALUE'],
      ['stagingLimit', 64 * 1024 - 1, 'ERR_OUT_OF_RANGE'],
      ['stagingLimit', 2 ** 30 + 1, 'ERR_OUT_OF_RANGE'],
      ['stagingLimit', '1', 'ERR_INVALID_ARG_TYPE'],
      ['indexInterval', 4095, 'ERR_OUT_OF_RANGE'],
      ['indexInterval', Number.NaN, 'ERR_OUT_OF_RANGE'],
      ['indexInterval', true, 'ERR_INVALID_ARG_TYPE'],
      ['readOnly', 'yes', 'ERR_INVALID_ARG_TYPE'],
      ['readOnly', 1, 'ERR_INVALID_ARG_TYPE'],
      ['commitDelayMs', -1, 'ERR_OUT_OF_RANGE'],
      ['commitDelayMs', 2 ** 31, 'ERR_OUT_OF_RANGE'],
      ['commitDelayMs', '0', 'ERR_INVALID_ARG_TYPE'],
      ['layout', 'dir', 'ERR_INVALID_ARG_VALUE'],
      ['segmentSize', 0, 'ERR_OUT_OF_RANGE'],
      ['segmentSize', 'big', 'ERR_INVALID_ARG_TYPE'],
      ['maxOpenSegments', 0, 'ERR_OUT_OF_RANGE'],
      ['maxOpenSegments', 2 ** 31, 'ERR_OUT_OF_RANGE'],
      ['maxOpenSegments', '8', 'ERR_INVALID_ARG_TYPE'],
      ['fs', 'x', 'ERR_INVALID_ARG_TYPE'],
      ['fs', null, 'ERR_INVALID_ARG_TYPE'],
      ['segmentsize', 4096, 'ERR_INVALID_ARG_VALUE'],
      ['sync', true, 'ERR_INVALID_ARG_VALUE'],
    ];
    for (const [key, value, code] of cases) {
      it(`${key} = ${String(value)} → ${code}`, async () => {
        const options = key === 'options' ? value : { [key]: value };
        const store = new MemoryStore();
        const error = await rejectsCode(Wal.open(store, options as WalOptions), code);
        assert.ok(error instanceof (code === 'ERR_OUT_OF_RANGE' ? RangeError : TypeError));
        assert.equal(store.closed, false, 'validated before the store is touched');
      });
    }

    it('accepts every option at a valid value', async () => {
      const fs = new CrashFs();
      const wal = await Wal.open(DIR, {
        maxRecordSize: 1,
        recovery: 'skip',
        stagingLimit: 64 * 1024,
        indexInterval: 4096,
        readOnly: false,
        commitDelayMs: 1,
        layout: 'segmented',
        segmentSize: SEGMENT,
        maxOpenSegments: 2,
        fs,
      });
      await wal.append(bytes(1), { wait: 'durable' });
      assert.equal((wal.store as SegmentedStore).maxOpenSegments, 2, 'passed to the store');
      await wal.close();
      const unset = await Wal.open(new MemoryStore(), {});
      assert.equal(unset.maxRecordSize, 16 * 1024 * 1024);
      await unset.close();
    });
  });

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
      assert.equal((busy as { code?: unknown }).code, 'WAL_BUSY');
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
        assert.equal((error as { code?: unknown }).code, 'WAL_CLOSED');
      });
    });
  });

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

  describe('read-only', () => {
    it('takes no lock, refuses changes, and refresh() sees what the writer appends', async () => {
      const fs = new CrashFs();
      const writer = await segmented(fs);
      const { lsns } = appendAll(writer, [100, 5000]);
      await writer.sync();
      const reader = await segmented(fs, { readOnly: true });
      assert.equal(reader.readOnly, true);
      assert.equal(reader.tail, writer.tail);
      assert.equal(reader.written, writer.tail);
      assert.equal(reader.durable, writer.tail);
      throwsCode(() => reader.append(bytes(1)), 'WAL_READ_ONLY');
      throwsCode(() => reader.appendBatch([bytes(1)]), 'WAL_READ_ONLY');
      await rejectsCode(reader.append(bytes(1), { wait: 'written' }), 'WAL_READ_ONLY');
      await rejectsCode(reader.truncateAfter(lsns[0]!), 'WAL_READ_ONLY');
      await rejectsCode(reader.truncateBefore(lsns[1]!), 'WAL_READ_ONLY');
      await rejectsCode(reader.sync(), 'WAL_READ_ONLY');
      await rejectsCode(reader.waitFor(lsns[0]!, 'written'), 'WAL_READ_ONLY');
      assert.deepEqual(await reader.read(lsns[1]!), bytes(5000, 2));
      const more = appendAll(writer, [7000, 10]);
      await writer.sync();
      await rejectsCode(reader.read(more.lsns[0]!), 'ERR_OUT_OF_RANGE');
      assert.equal(await reader.refresh(), writer.tail);
      assert.equal(reader.tail, writer.tail);
      assert.deepEqual(await reader.read(more.lsns[0]!), bytes(7000, 1));
      assert.deepEqual(
        (await collect(reader.iterate())).map((r) => r.lsn),
        [...lsns, ...more.lsns],
      );
      // The writer truncates: refresh follows.
      await writer.truncateBefore(lsns[1]!);
      await writer.truncateAfter(more.lsns[0]!);
      assert.equal(await reader.refresh(), more.lsns[0]! + HEADER_SIZE + 7000);
      assert.equal(reader.head, lsns[1]);
      assert.deepEqual(
        (await collect(reader.iterate())).map((r) => r.lsn),
        [lsns[1], more.lsns[0]],
      );
      assert.equal(await writer.refresh(), writer.written);
      await reader.close();
      await writer.close();
    });

    // BUG: refresh() detects a writer's truncateAfter only when the store got
    // shorter than the reader's scanned end. Truncated and then grown past it,
    // the reader rescans from its old end, which now falls inside a new
    // record: the scan stops there as at a tear, so refresh() keeps returning
    // the old end, never sees the new records, and still indexes the dropped
    // ones.
    it('refresh() follows a writer that truncated after and grew past the old end', async () => {
      const fs = new CrashFs();
      const writer = await segmented(fs);
      const { lsns } = appendAll(writer, [100, 200, 300]);
      await writer.sync();
      const reader = await segmented(fs, { readOnly: true });
      assert.equal(reader.tail, writer.tail);
      await writer.truncateAfter(lsns[0]!);
      const grown = await writer.append(bytes(2000, 9), { wait: 'durable' });
      assert.ok(writer.tail > lsns[2]! + HEADER_SIZE + 300, 'the log grew past the old end');
      assert.equal(await reader.refresh(), writer.tail);
      assert.deepEqual(
        (await collect(reader.iterate())).map((r) => r.lsn),
        [lsns[0], grown],
      );
      assert.deepEqual(await reader.read(grown), bytes(2000, 9));
      await reader.close();
      await writer.close();
    });

    it('a skipped record (skip policy) is unreadable, and iterators step over it', async () => {
      const fs = new CrashFs();
      const writer = await single(fs);
      const { lsns } = appendAll(writer, [100, 200, 300]);
      await writer.close(); // records the durable hint at the end
      const file = await fs.open(FILE, 'write');
      await fs.pwrite(file, new Uint8Array([0xee, 0xee]), lsns[1]! + HEADER_SIZE + 5);
      await fs.close(file);
      await rejectsCode(single(fs), 'WAL_CORRUPTION');
      const wal = await single(fs, { recovery: 'skip' });
      assert.deepEqual(
        wal.recovery.skipped.map((d) => d.offset),
        [lsns[1]],
      );
      assert.equal(wal.tail, lsns[2]! + HEADER_SIZE + 300);
      const error = await rejectsCode(wal.read(lsns[1]!), 'WAL_CORRUPTION');
      assert.match(error.message, /skip/);
      assert.deepEqual(await wal.read(lsns[2]!), bytes(300, 3));
      assert.deepEqual(
        (await collect(wal.iterate())).map((r) => r.lsn),
        [lsns[0], lsns[2]],
      );
      assert.deepEqual(
        (await collectBatches(wal.iterateBatches(lsns[1], { batchBytes: 64 })))
          .flat()
          .map((r) => r.lsn),
        [lsns[2]],
      );
      const next = await wal.append(bytes(5), { wait: 'durable' });
      await wal.truncateAfter(lsns[0]!);
      assert.equal(wal.tail, lsns[1]);
      assert.ok(next > lsns[2]!);
      await wal.close();
      const again = await single(fs);
      assert.equal(again.recovery.skipped.length, 0);
      assert.equal(again.tail, lsns[1]);
      await again.close();
    });

    it('reports the torn bytes it would cut without cutting', async () => {
      const fs = new CrashFs();
      const writer = await single(fs);
      const { lsns } = appendAll(writer, [100, 200]);
      await writer.close();
      // A torn append: a header claiming more bytes than follow.
      const file = await fs.open(FILE, 'write');
      const end = lsns[1]! + HEADER_SIZE + 200;
      await fs.pwrite(file, new Uint8Array([1, 2, 3, 4, 100, 0, 0, 0, 9, 9, 9]), end);
      await fs.close(file);
      const before = fs.snapshot().files.get(FILE);
      const reader = await single(fs, { readOnly: true });
      assert.equal(reader.recovery.tornBytes, 11);
      assert.equal(reader.recovery.truncated, false);
      assert.equal(reader.recovery.end, end);
      assert.equal(reader.recovery.storeLength, end + 11);
      assert.equal(reader.recovery.tear?.kind, 'short-payload');
      assert.equal(reader.tail, end);
      assert.deepEqual(
        (await collect(reader.iterate())).map((r) => r.lsn),
        lsns,
      );
      await reader.close();
      assert.deepEqual(fs.snapshot().files.get(FILE), before, 'the file is unchanged');
      // A writable open cuts it.
      const writable = await single(fs);
      assert.equal(writable.recovery.tornBytes, 11);
      assert.equal(writable.recovery.truncated, true);
      assert.equal(writable.tail, end);
      await writable.close();
      assert.equal(fs.snapshot().files.get(FILE)?.length, end);
    });
  });

  describe('fail-stop', () => {
    it('EIO on a write: later appends throw WAL_WRITE_FAILED, earlier records stay, reopen resumes at the failed write', async () => {
      const fs = new FaultFs(new CrashFs());
      const wal = await single(fs, { stagingLimit: 64 * 1024 });
      const { lsns, payloads } = appendAll(wal, [100, 200]);
      await wal.sync();
      const durableBefore = wal.durable;
      // Two large records: one write each. The first fails, the second lands.
      const failAt = wal.tail;
      fs.inject({ method: 'pwrite', when: (call) => call.args[1] === failAt });
      const a = wal.append(bytes(20000, 7), { wait: 'durable' });
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
      const wal = await single(fs);
      const { lsns, payloads } = appendAll(wal, [100, 200]);
      await wal.sync();
      const durable = wal.durable;
      fs.inject({ method: 'fdatasync' });
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
      // The store latched its failure: reads are refused too.
      await rejectsCode(wal.read(lsns[0]!), 'WAL_FAILED');
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
      const wal = await segmented(fs);
      const first = await wal.append(bytes(1000, 1), { wait: 'durable' });
      fs.inject({ method: 'pwrite' });
      const failed = wal.append(bytes(100, 2), { wait: 'durable' });
      await rejectsCode(failed, 'WAL_WRITE_FAILED');
      const closing = wal.close();
      await closing;
      const again = await wal.reopen();
      assert.equal(again.tail, first + HEADER_SIZE + 1000);
      assert.deepEqual(await again.read(first), bytes(1000, 1));
      await again.close();
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

    it('commitDelayMs delays a flush but still makes records durable', async () => {
      const wal = await Wal.open(new MemoryStore(), { commitDelayMs: 2 });
      const lsns = await Promise.all([
        wal.append(bytes(1), { wait: 'durable' }),
        wal.append(bytes(2), { wait: 'durable' }),
      ]);
      assert.deepEqual(lsns, [0, HEADER_SIZE + 1]);
      await wal.close();
    });
  });
});
