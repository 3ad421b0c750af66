// One-pass replay at open (`WalOptions.replay`, DURABILITY.md "Replay at
// open"): the records handed to the callback are exactly the records the
// opened log holds, in order, each delivered once, whatever the record sizes
// (across read windows and segments), after a torn tail, under the skip
// policy; an error ends the open and releases the lock.
import assert from 'node:assert/strict';
import { CrashFs } from '@wal/store/testing';
import fc from 'fast-check';
import { crc32c, type StoredRecord, Wal, type WalOptions } from '../src/index.js';
import { SCAN_WINDOW } from '../src/scan.js';
import { isCode } from './helpers.js';

const PARENT = '/data';
const DIR = '/data/log';
const SEGMENT = 64 * 1024;

function freshFs(): CrashFs {
  return new CrashFs({ sectorSize: 512, image: { files: new Map(), dirs: new Set([PARENT]) } });
}

const open = (fs: CrashFs, options: WalOptions = {}): Promise<Wal> =>
  Wal.open(DIR, { fs, segmentSize: SEGMENT, ...options });

/** A distinct payload for record `i`. */
function payload(i: number, size: number): Uint8Array {
  const out = new Uint8Array(size);
  for (let j = 0; j < size; j++) out[j] = (i * 31 + j * 7 + 1) & 0xff;
  return out;
}

interface Seen {
  lsn: number;
  payload: Uint8Array;
}

/** Opens with a replay callback; returns the log and what the callback saw, batch by batch. */
async function replayed(
  fs: CrashFs,
  options: WalOptions = {},
): Promise<{ wal: Wal; seen: Seen[]; batches: number }> {
  const seen: Seen[] = [];
  let batches = 0;
  const wal = await open(fs, {
    ...options,
    replay: (records) => {
      assert.ok(records.length > 0, 'no empty batch');
      batches++;
      for (const record of records) {
        // The in-place offsets and the payload view agree.
        assert.deepEqual(
          record.buffer.subarray(record.payloadStart, record.payloadEnd),
          record.payload,
        );
        seen.push({ lsn: record.lsn, payload: Uint8Array.from(record.payload) });
      }
    },
  });
  return { wal, seen, batches };
}

async function iterated(wal: Wal): Promise<Seen[]> {
  const out: Seen[] = [];
  for await (const record of wal.iterate()) out.push({ lsn: record.lsn, payload: record.payload });
  return out;
}

/** Writes records of `sizes` and closes the log; returns what was appended. */
async function writeLog(fs: CrashFs, sizes: readonly number[], options: WalOptions = {}) {
  const wal = await open(fs, options);
  const appended: Seen[] = [];
  for (const [i, size] of sizes.entries()) {
    const bytes = payload(i, size);
    if (!wal.writable) await wal.drained();
    appended.push({ lsn: wal.append(bytes), payload: bytes });
  }
  await wal.close();
  return appended;
}

/** Flips one bit of the byte at flat offset `offset` of the segmented log. */
function flip(fs: CrashFs, offset: number): void {
  const image = fs.snapshot();
  const path = `${DIR}/${String(Math.floor(offset / SEGMENT)).padStart(20, '0')}.wal`;
  const file = Uint8Array.from(image.files.get(path)!);
  file[offset % SEGMENT]! ^= 0x10;
  const files = new Map(image.files);
  files.set(path, file);
  fs.reset({ files, dirs: image.dirs });
}

describe('Wal.open({ replay }): one-pass replay during recovery', () => {
  it('delivers exactly the appended records, in order, for any mix of sizes, with or without reused buffers (property)', async () => {
    // Records across read windows and segments; with replayReusesBuffers the
    // callback copies each record, so reused buffers must not show.
    const size = fc.oneof(
      { weight: 8, arbitrary: fc.integer({ min: 0, max: 3000 }) },
      { weight: 1, arbitrary: fc.integer({ min: 60_000, max: 1_500_000 }) },
    );
    await fc.assert(
      fc.asyncProperty(fc.array(size, { maxLength: 60 }), fc.boolean(), async (sizes, reuse) => {
        const fs = freshFs();
        const appended = await writeLog(fs, sizes, { maxRecordSize: 2 * 1024 * 1024 });
        const { wal, seen } = await replayed(fs, { replayReusesBuffers: reuse });
        try {
          assert.deepEqual(seen, appended);
          assert.equal(wal.recovery.records, appended.length);
          assert.deepEqual(await iterated(wal), seen);
        } finally {
          await wal.close();
        }
      }),
      { numRuns: 40 },
    );
  });

  it('reads records larger than the read window whole, checking each once', async () => {
    const fs = freshFs();
    const sizes = [10, 1_500_000, 20, 2_200_000, 0, 30];
    const appended = await writeLog(fs, sizes, { maxRecordSize: 4 * 1024 * 1024 });
    const { wal, seen } = await replayed(fs);
    try {
      assert.deepEqual(seen, appended);
    } finally {
      await wal.close();
    }
  });

  it('delivers nothing after a torn tail, and the log keeps what was delivered', async () => {
    const fs = freshFs();
    const wal = await open(fs);
    const appended: Seen[] = [];
    for (let i = 0; i < 30; i++) {
      const bytes = payload(i, 500);
      appended.push({ lsn: wal.append(bytes), payload: bytes });
    }
    await wal.sync();
    for (let i = 30; i < 40; i++) wal.append(payload(i, 500));
    await wal.waitFor(wal.tail - 1, 'written');
    // Power losses: the unsynced tail is dropped, cut or torn at sectors.
    let states = 0;
    for (const state of fs.crashStates({ seed: 7, limit: 30 })) {
      states++;
      const { wal: reopened, seen } = await replayed(state.fs());
      try {
        assert.ok(seen.length >= 30 && seen.length <= 40, `${seen.length} records replayed`);
        assert.deepEqual(seen.slice(0, 30), appended);
        assert.equal(reopened.tail, seen.at(-1)!.lsn + 8 + 500);
        assert.deepEqual(await iterated(reopened), seen);
      } finally {
        await reopened.close();
      }
    }
    assert.ok(states > 1, `${states} crash states`);
    await wal.close();
  });

  it('skips what the skip policy steps over, and rejects under the strict policy', async () => {
    const fs = freshFs();
    const appended = await writeLog(
      fs,
      Array.from({ length: 20 }, () => 300),
    );
    const damaged = 7;
    flip(fs, appended[damaged]!.lsn + 8 + 100); // a payload byte: the CRC fails, the length holds
    const strict: Seen[] = [];
    await assert.rejects(
      open(fs, { replay: (records) => void strict.push(...records) }),
      isCode('WAL_CORRUPTION'),
    );
    // What was delivered before the damage was genuine.
    assert.deepEqual(
      strict.map((r) => r.lsn),
      appended.slice(0, damaged).map((r) => r.lsn),
    );
    const { wal, seen } = await replayed(fs, { recovery: 'skip' });
    try {
      assert.deepEqual(
        seen,
        appended.filter((_, i) => i !== damaged),
      );
    } finally {
      await wal.close();
    }
  });

  it('awaits a returned promise before the next batch', async () => {
    const fs = freshFs();
    const appended = await writeLog(
      fs,
      Array.from({ length: 12 }, () => 300_000),
    );
    let busy = false;
    let batches = 0;
    let count = 0;
    const wal = await open(fs, {
      replay: async (records) => {
        assert.equal(busy, false, 'batches do not overlap');
        busy = true;
        batches++;
        count += records.length;
        await new Promise((resolve) => setTimeout(resolve, 2));
        busy = false;
      },
    });
    await wal.close();
    assert.equal(count, appended.length);
    assert.ok(batches > 1, `${batches} batches`);
  });

  it('an error thrown by the callback rejects the open and releases the lock', async () => {
    const fs = freshFs();
    await writeLog(fs, [10, 20, 30]);
    const boom = new Error('apply failed');
    await assert.rejects(
      open(fs, {
        replay: () => {
          throw boom;
        },
      }),
      (error) => error === boom,
    );
    const wal = await open(fs);
    assert.equal(wal.recovery.records, 3);
    await wal.close();
  });

  it('replays a read-only open, and reopen() does not replay again', async () => {
    const fs = freshFs();
    const appended = await writeLog(fs, [1, 2, 3, 4]);
    const { wal: reader, seen } = await replayed(fs, { readOnly: true });
    assert.deepEqual(seen, appended);
    await reader.close();
    const calls: StoredRecord[][] = [];
    const wal = await open(fs, { replay: (records) => void calls.push([...records]) });
    assert.equal(calls.length, 1);
    const again = await wal.reopen();
    assert.equal(calls.length, 1);
    assert.equal(again.recovery.records, 4);
    await again.close();
  });

  it('rejects a replay option that is not a function', async () => {
    await assert.rejects(
      open(freshFs(), { replay: 'yes' as never }),
      isCode('ERR_INVALID_ARG_TYPE'),
    );
  });

  it('hands out buffers the log never reuses', async () => {
    const fs = freshFs();
    await writeLog(fs, [100, 100, 100]);
    const kept: StoredRecord[] = [];
    const wal = await open(fs, { replay: (records) => void kept.push(...records) });
    const before = kept.map((r) => crc32c(r.payload));
    for (let i = 0; i < 50; i++) wal.append(payload(1000 + i, 100));
    await wal.sync();
    for await (const _ of wal.iterateBatches()) {
      // reading again must not disturb what replay handed out
    }
    assert.deepEqual(
      kept.map((r) => crc32c(r.payload)),
      before,
    );
    await wal.close();
  });

  describe('replayReusesBuffers', () => {
    it('reuses its read buffers: a record kept past its batch is overwritten', async () => {
      const fs = freshFs();
      // Six read windows of 1,000-byte records.
      const appended = await writeLog(
        fs,
        Array.from({ length: (6 * SCAN_WINDOW) / 1000 }, () => 1000),
      );
      const memories = new Set<ArrayBufferLike>();
      // Where the first record lay (taken during its batch: the record object
      // itself is refilled afterwards), and a copy of its payload.
      let first: { buffer: Uint8Array; start: number; end: number } | undefined;
      let firstCopy: Uint8Array | undefined;
      let count = 0;
      const wal = await open(fs, {
        replayReusesBuffers: true,
        replay: (records) => {
          for (const record of records) memories.add(record.buffer.buffer);
          if (first === undefined) {
            const { buffer, payloadStart, payloadEnd } = records[0]!;
            first = { buffer, start: payloadStart, end: payloadEnd };
            firstCopy = Uint8Array.from(records[0]!.payload);
          }
          count += records.length;
        },
      });
      await wal.close();
      assert.equal(count, appended.length);
      assert.ok(memories.size <= 3, `${memories.size} buffers for six windows`);
      assert.notDeepEqual(
        first!.buffer.subarray(first!.start, first!.end),
        firstCopy,
        'the first window was read over',
      );
    });

    it('refills its record objects from batch to batch, each with the right payload', async () => {
      const fs = freshFs();
      // Six read windows, so six batches over the same records.
      const appended = await writeLog(
        fs,
        Array.from({ length: (6 * SCAN_WINDOW) / 1000 }, (_, i) => 900 + (i % 200)),
      );
      const objects = new Set<StoredRecord>();
      let largest = 0;
      const { wal, seen, batches } = await replayed(fs, { replayReusesBuffers: true });
      await wal.close();
      assert.deepEqual(seen, appended);
      assert.ok(batches >= 5, `${batches} batches`);
      // Again, counting the record objects handed out.
      const again = await open(fs, {
        replayReusesBuffers: true,
        replay: (records) => {
          largest = Math.max(largest, records.length);
          for (const record of records) objects.add(record);
        },
      });
      await again.close();
      assert.ok(
        objects.size <= largest + batches,
        `${objects.size} record objects for ${appended.length} records in batches of at most ${largest}`,
      );
    });

    it('works over a store without readInto, and validates the option', async () => {
      const fs = freshFs();
      const appended = await writeLog(fs, [10, 20, 30]);
      const { SegmentedStore } = await import('@wal/store');
      const store = await SegmentedStore.open(DIR, { fs, segmentSize: SEGMENT });
      const plain = new Proxy(store, {
        get: (target, key) => {
          if (key === 'readInto') return undefined;
          const value: unknown = Reflect.get(target, key, target);
          return typeof value === 'function' ? value.bind(target) : value;
        },
      });
      const seen: Seen[] = [];
      const wal = await Wal.open(plain, {
        replayReusesBuffers: true,
        replay: (records) => {
          for (const r of records) seen.push({ lsn: r.lsn, payload: Uint8Array.from(r.payload) });
        },
      });
      await wal.close();
      assert.deepEqual(seen, appended);
      await assert.rejects(
        open(fs, { replayReusesBuffers: 'yes' as never }),
        isCode('ERR_INVALID_ARG_TYPE'),
      );
    });
  });
});
