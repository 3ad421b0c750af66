// The recovery scan (FORMAT.md §8): where a log ends, tear versus corruption
// around the durable hint, the skip policy, over-limit lengths.
import assert from 'node:assert/strict';
import { errorCode } from '@wal/errors';
import { MemoryStore } from '@wal/store';
import fc from 'fast-check';
import { BoundaryIndex } from '../src/boundary-index.js';
import { encodeFrame, HEADER_SIZE } from '../src/frame.js';
import { scan } from '../src/scan.js';
import { tick } from './helpers.js';

async function logOf(payloads: Uint8Array[]): Promise<{ store: MemoryStore; lsns: number[] }> {
  const store = new MemoryStore();
  const lsns: number[] = [];
  let at = 0;
  for (const payload of payloads) {
    lsns.push(at);
    const frame = encodeFrame(payload);
    await store.write(at, frame);
    at += frame.length;
  }
  return { store, lsns };
}

const payloadOf = (n: number, fill = n) => new Uint8Array(n).fill(fill & 0xff);
const base = { maxRecordSize: 1 << 20, durableHint: 0, policy: 'strict' as const };

describe('recovery scan (FORMAT.md §8)', () => {
  it('walks a clean log to its end, reporting every frame', async () => {
    const { store, lsns } = await logOf([0, 1, 7, 300, 5000].map((n) => payloadOf(n)));
    const seen: Array<[number, number]> = [];
    const result = await scan(store, {
      ...base,
      windowSize: 64,
      onFrame: (lsn, length) => seen.push([lsn, length]),
    });
    assert.deepEqual(result, {
      end: store.length,
      records: 5,
      tear: undefined,
      tornBytes: 0,
      zeroTail: 0,
      droppedFrames: 0,
      skipped: [],
    });
    assert.deepEqual(
      seen.map(([lsn]) => lsn),
      lsns,
    );
    assert.deepEqual(
      seen.map(([, length]) => length),
      [0, 1, 7, 300, 5000],
    );
  });

  it('starts at the head', async () => {
    const { store, lsns } = await logOf([1, 2, 3].map((n) => payloadOf(n)));
    await store.truncateBefore(lsns[1]!);
    const result = await scan(store, base);
    assert.equal(result.records, 2);
    assert.equal(result.end, store.length);
  });

  it('ends at a cut anywhere in the last frame, above the hint (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.nat({ max: 600 }), { minLength: 1, maxLength: 8 }),
        fc.nat(),
        async (sizes, cutSeed) => {
          const { store, lsns } = await logOf(sizes.map((n) => payloadOf(n)));
          const last = lsns[lsns.length - 1]!;
          const cut = last + (cutSeed % (store.length - last));
          await store.truncate(cut);
          const left = await store.read(last, cut - last);
          const result = await scan(store, { ...base, durableHint: last, windowSize: 128 });
          assert.equal(result.end, last);
          assert.equal(result.records, sizes.length - 1);
          // Torn bytes up to the last non-zero one; the zeros after them apart.
          const zeros = left.length - (left.findLastIndex((byte) => byte !== 0) + 1);
          assert.equal(result.zeroTail, zeros);
          assert.equal(result.tornBytes, cut - last - zeros);
          assert.equal(result.tear === undefined, zeros === left.length);
          if (result.tear)
            assert.equal(
              result.tear.kind,
              cut - last < HEADER_SIZE ? 'short-header' : 'short-payload',
            );
        },
      ),
      { numRuns: 200 },
    );
  });

  it('treats a garbage tail as a tear and a zero-filled one as a zero tail, above the hint', async () => {
    for (const fill of [0x00, 0xa5]) {
      const { store } = await logOf([payloadOf(10), payloadOf(20)]);
      const end = store.length;
      await store.write(end, new Uint8Array(4096).fill(fill));
      const result = await scan(store, { ...base, durableHint: end });
      assert.equal(result.end, end);
      assert.equal(result.tear?.offset, fill === 0 ? undefined : end);
      assert.equal(result.tornBytes, fill === 0 ? 0 : 4096);
      assert.equal(result.zeroTail, fill === 0 ? 4096 : 0);
    }
  });

  it('counts the intact frames a tear drops', async () => {
    const { store, lsns } = await logOf([1, 2, 3, 4, 5].map((n) => payloadOf(n)));
    await store.write(lsns[1]! + HEADER_SIZE, Uint8Array.of(0xff)); // damage record 1's payload
    const result = await scan(store, { ...base, durableHint: lsns[1]! });
    assert.equal(result.end, lsns[1]);
    assert.equal(result.tear?.kind, 'checksum');
    assert.equal(result.droppedFrames, 3);
  });

  it('stops counting dropped frames at an intact over-limit frame after a tear', async () => {
    const { store, lsns } = await logOf([
      payloadOf(1),
      payloadOf(2),
      payloadOf(3),
      payloadOf(200),
      payloadOf(4),
    ]);
    await store.write(lsns[1]! + HEADER_SIZE, Uint8Array.of(0xff));
    const result = await scan(store, { ...base, maxRecordSize: 100, durableHint: lsns[1]! });
    assert.equal(result.end, lsns[1]);
    assert.equal(result.droppedFrames, 1);
  });

  it('reports damage below the durable hint as WAL_CORRUPTION, naming the offset', async () => {
    const { store, lsns } = await logOf([1, 2, 3].map((n) => payloadOf(n)));
    await store.write(lsns[1]! + HEADER_SIZE, Uint8Array.of(0xff));
    await assert.rejects(scan(store, { ...base, durableHint: store.length }), (error: unknown) => {
      assert.equal(errorCode(error), 'WAL_CORRUPTION');
      assert.equal((error as { offset?: number }).offset, lsns[1]);
      return true;
    });
  });

  it('reports a log shorter than the durable hint as WAL_CORRUPTION', async () => {
    const { store, lsns } = await logOf([1, 2, 3].map((n) => payloadOf(n)));
    const hint = store.length;
    await store.truncate(lsns[2]! + 3);
    await assert.rejects(scan(store, { ...base, durableHint: hint }), {
      code: 'WAL_CORRUPTION',
      offset: lsns[2],
    });
  });

  it('steps over a bad-CRC record below the hint under the skip policy, by its length only', async () => {
    const { store, lsns } = await logOf([1, 2, 3, 4].map((n) => payloadOf(n)));
    await store.write(lsns[1]! + HEADER_SIZE, Uint8Array.of(0xff));
    const seen: number[] = [];
    const result = await scan(store, {
      ...base,
      policy: 'skip',
      durableHint: store.length,
      onFrame: (lsn) => seen.push(lsn),
    });
    assert.equal(result.end, store.length);
    assert.deepEqual(seen, [lsns[0], lsns[2], lsns[3]]);
    assert.deepEqual(result.skipped, [{ offset: lsns[1], kind: 'checksum', claimedLength: 2 }]);
  });

  it('never cuts at damage right where a skip landed, but does once an intact frame proved it', async () => {
    const { store, lsns } = await logOf([10, 20, 30, 40].map((n) => payloadOf(n)));
    const torn = store.length - 3;
    // Record 1's payload is damaged (checksum), below the hint at record 2.
    await store.write(lsns[1]! + HEADER_SIZE, Uint8Array.of(0xee));
    // A tear at the very end (record 3 cut short), above the hint: record 2,
    // intact, proves the skip landed on a boundary, so it is an ordinary tear.
    await store.truncate(torn);
    const result = await scan(store, { ...base, policy: 'skip', durableHint: lsns[2]! });
    assert.equal(result.end, lsns[3]);
    assert.equal(result.tear?.offset, lsns[3]);
    // Now damage record 2 too: the skip over record 1 lands on damage, which
    // may be misalignment: WAL_CORRUPTION, even though it is above the hint.
    await store.write(lsns[2]! + HEADER_SIZE, Uint8Array.of(0xee));
    await assert.rejects(scan(store, { ...base, policy: 'skip', durableHint: lsns[2]! }), {
      code: 'WAL_CORRUPTION',
      offset: lsns[2],
    });
  });

  it('a skip landing on nothing but zeros (preallocated space) ends the log there', async () => {
    // The last record is damaged and the log's preallocated zeros follow it
    // (FORMAT.md §8.4): the skip lands on an all-zero header. Cutting there
    // drops no intact byte, so it is a tear, not WAL_CORRUPTION.
    const { store, lsns } = await logOf([10, 20, 30].map((n) => payloadOf(n)));
    const end = store.length;
    await store.write(end, new Uint8Array(3000));
    await store.write(lsns[2]! + HEADER_SIZE, Uint8Array.of(0xee));
    const options = { ...base, policy: 'skip' as const, durableHint: end, windowSize: 256 };
    const result = await scan(store, options);
    assert.equal(result.end, end);
    assert.equal(result.tear, undefined, 'zeros are no torn write');
    assert.equal(result.tornBytes, 0);
    assert.equal(result.zeroTail, 3000);
    assert.deepEqual(
      result.skipped.map((d) => d.offset),
      [lsns[2]],
    );
    // One non-zero byte anywhere after the landing: it may be misalignment.
    await store.write(end + 2500, Uint8Array.of(1));
    await assert.rejects(scan(store, options), { code: 'WAL_CORRUPTION', offset: end });
    // Zeros below the hint were durable bytes: still corruption.
    await store.write(end + 2500, Uint8Array.of(0));
    await assert.rejects(scan(store, { ...options, durableHint: end + 8 }), {
      code: 'WAL_CORRUPTION',
      offset: end,
    });
  });

  it('does not step over a record whose length cannot be trusted, even under skip', async () => {
    const { store, lsns } = await logOf([1, 2, 3].map((n) => payloadOf(n)));
    // Claim a length beyond the max record size (and the store): not steppable.
    await store.write(lsns[1]! + 4, Uint8Array.of(0xff, 0xff, 0xff, 0x7f));
    await assert.rejects(
      scan(store, { ...base, policy: 'skip', durableHint: store.length, maxRecordSize: 100 }),
      { code: 'WAL_CORRUPTION', offset: lsns[1] },
    );
  });

  it('rejects an intact over-limit record with WAL_RECORD_TOO_LARGE, in bounded memory', async () => {
    const { store, lsns } = await logOf([payloadOf(10), payloadOf(5000), payloadOf(3)]);
    await assert.rejects(scan(store, { ...base, maxRecordSize: 4096, windowSize: 256 }), {
      code: 'WAL_RECORD_TOO_LARGE',
      offset: lsns[1],
      length: 5000,
      limit: 4096,
    });
  });

  it('treats hostile lengths as damage without allocating them', async () => {
    for (const length of [0xffff_ffff, 2 ** 31, 4097]) {
      const { store, lsns } = await logOf([payloadOf(10), payloadOf(10)]);
      const header = new Uint8Array(4);
      new DataView(header.buffer).setUint32(0, length, true);
      await store.write(lsns[1]! + 4, header);
      const result = await scan(store, {
        ...base,
        maxRecordSize: 4096,
        durableHint: lsns[1]!,
        windowSize: 64,
      });
      assert.equal(result.end, lsns[1]);
      assert.equal(result.tear?.claimedLength, length);
      assert.equal(result.droppedFrames, 0);
    }
  });

  it('notes in a boundary index exactly what noting every frame would keep (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 0, max: 700 }), { minLength: 1, maxLength: 40 }),
        fc.constantFrom(16, 100, 256, 1000),
        fc.constantFrom(1, 64, 300, 4096),
        fc.boolean(),
        async (sizes, windowSize, interval, replay) => {
          const { store } = await logOf(sizes.map((n, i) => payloadOf(n, i)));
          const everyFrame = new BoundaryIndex(interval);
          const noted = new BoundaryIndex(interval);
          await scan(store, {
            ...base,
            windowSize,
            boundaries: noted,
            onFrame: (lsn) => everyFrame.note(lsn),
            ...(replay ? { onRecords: () => {} } : {}),
          });
          assert.equal(noted.size, everyFrame.size);
          for (let lsn = 0; lsn <= store.length; lsn++) {
            assert.equal(noted.floor(lsn), everyFrame.floor(lsn), `floor(${lsn})`);
          }
        },
      ),
      { numRuns: 100 },
    );
  });

  it('finds the same end, damage and frames with any window, read-ahead and replay (property)', async () => {
    // The cursor reads the next window ahead, overlapping the current one: a
    // frame cut by a window's end, a frame larger than the window, damage at
    // a window edge must all come out as with one window holding everything.
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 0, max: 700 }), { minLength: 1, maxLength: 30 }),
        fc.nat(),
        fc.constantFrom('none', 'flip', 'cut'),
        fc.constantFrom(16, 48, 100, 256, 1000),
        fc.constantFrom('strict', 'skip'),
        fc.boolean(),
        fc.boolean(),
        async (sizes, where, damage, windowSize, policy, replay, reuseBuffers) => {
          const { store, lsns } = await logOf(sizes.map((n, i) => payloadOf(n, i)));
          const at = where % store.length;
          if (damage === 'flip') {
            const byte = await store.read(at, 1);
            await store.write(at, Uint8Array.of(byte[0]! ^ 0x20));
          } else if (damage === 'cut') {
            await store.truncate(at);
          }
          const options = { ...base, policy, durableHint: lsns[Math.floor(lsns.length / 2)]! };
          const outcome = async (windowSize: number, withRecords: boolean, reuse = false) => {
            const frames: number[] = [];
            const records: number[] = [];

            let inFlight = 0;
            // A macrotask per read: a read-ahead left behind would still be in flight.
            const slowly = async <T>(read: () => Promise<T>): Promise<T> => {
              inFlight++;
              try {
                await tick();
                return await read();
              } finally {
                inFlight--;
              }
            };
            const counting = new Proxy(store, {
              get(target, key) {
                if (key === 'read') {
                  return (offset: number, length: number) =>
                    slowly(() => target.read(offset, length));
                }
                if (key === 'readInto') {
                  return (offset: number, into: Uint8Array) =>
                    slowly(() => target.readInto(offset, into));
                }
                return Reflect.get(target, key, target);
              },
            });
            let result: unknown;
            try {
              result = await scan(counting, {
                ...options,
                windowSize,
                onFrame: (lsn) => frames.push(lsn),
                ...(withRecords
                  ? {
                      reuseBuffers: reuse,
                      onRecords: (batch) => {
                        for (const r of batch) {
                          assert.equal(r.payloadEnd - r.payloadStart, sizes[lsns.indexOf(r.lsn)]);
                          records.push(r.lsn);
                        }
                      },
                    }
                  : {}),
              });
            } catch (error) {
              result = errorCode(error);
            }
            assert.equal(inFlight, 0, 'no read left in flight');
            if (withRecords) assert.deepEqual(records, frames);
            return { result, frames };
          };
          const expected = await outcome(1 << 20, false);
          assert.deepEqual(await outcome(windowSize, replay, reuseBuffers), expected);
        },
      ),
      { numRuns: 300 },
    );
  });
});
