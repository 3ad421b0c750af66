// A thread attached across a truncateAfter: its bound of what was copied out
// of the ring must not outlive the cut (docs/INTERNALS.md §10).

import assert from 'node:assert/strict';
import { errorCode } from '@wal/errors';
import { MemoryStore } from '@wal/store';
import { HEADER_SIZE } from '../src/frame.js';
import { SharedWal, Wal } from '../src/index.js';

const RING = 64 * 1024;
const SIZE = 1000;
const payload = (n: number): Uint8Array => new Uint8Array(SIZE).fill(n % 251);

describe('shared log: a thread attached across a cut', () => {
  it('stops at a full ring after the cut (its bound of what was copied out is read again), and nothing it appends is overwritten', async () => {
    const wal = await Wal.open(new MemoryStore(), { stagingLimit: RING });
    const t = SharedWal.attach(wal.share());
    const keep = t.append(payload(0));
    await t.waitFor(keep, 'durable');
    let n = 1;
    // Fill the ring and let it be copied out, several times: the thread's
    // bound of what was copied out climbs far above the record kept.
    for (let round = 0; round < 5; round++) {
      for (;;) {
        try {
          t.append(payload(n++));
        } catch (error) {
          assert.equal(errorCode(error), 'WAL_BUSY');
          break;
        }
      }
      await t.drained();
      await wal.sync();
    }
    await wal.truncateAfter(keep);
    const end = wal.tail;
    assert.ok(t.tail === end);
    // No turn of the event loop: nothing is copied out meanwhile.
    const appended: Array<[number, number]> = [];
    for (;;) {
      try {
        appended.push([t.append(payload(n)), n]);
        n++;
      } catch (error) {
        assert.equal(errorCode(error), 'WAL_BUSY');
        break;
      }
      assert.ok(
        t.tail - end <= RING + HEADER_SIZE + SIZE,
        `${t.tail - end} bytes in a ${RING}-byte ring`,
      );
    }
    await wal.sync();
    assert.equal(wal.failure, undefined);
    const back = new Map<number, Uint8Array>();
    for await (const rec of wal.iterate(end)) back.set(rec.lsn, rec.payload.slice());
    for (const [lsn, k] of appended) {
      assert.deepEqual(back.get(lsn), payload(k), `the record at ${lsn}`);
    }
    t.detach();
    await wal.close();
  });
});
