// The part of a durable window during which a log's flush was in flight
// (bench:lsm's note on the durable puts at 64 writers).
import assert from 'node:assert/strict';
import { flushTimes, seededRandom } from '../src/shared.js';

/** Busy fraction by brute force: every millisecond step of the window whose middle some flush covers. */
function busyModel(flushes: ReadonlyArray<readonly [number, number]>, from: number, to: number) {
  let busy = 0;
  for (let t = from; t < to; t++) {
    const mid = t + 0.5;
    if (flushes.some(([end, ms]) => end - ms < mid && mid < end)) busy++;
  }
  return busy / (to - from);
}

describe('flushTimes: flushes in flight over a window', () => {
  it('counts the union of overlapping flushes once, clipped to the window', () => {
    // [5, 15) and [10, 20) overlap; [30, 40) straddles the end; [−5, 2) the start.
    const times = flushTimes(
      [
        [15, 10],
        [20, 10],
        [40, 10],
        [2, 7],
      ],
      0,
      35,
    );
    assert.deepEqual(times, { count: 3, busy: (2 + 15 + 5) / 35, medianMs: 10 });
  });

  it('is undefined when no flush ended in the window', () => {
    assert.equal(flushTimes([], 0, 10), undefined);
    assert.equal(flushTimes([[50, 5]], 0, 10), undefined);
  });

  it('agrees with a brute-force count on random flushes (integer times)', () => {
    const next = seededRandom(7);
    for (let run = 0; run < 200; run++) {
      const flushes: Array<[number, number]> = [];
      const n = 1 + Math.floor(next() * 12);
      for (let i = 0; i < n; i++) {
        flushes.push([Math.floor(next() * 120), 1 + Math.floor(next() * 30)]);
      }
      const from = Math.floor(next() * 40);
      const to = from + 1 + Math.floor(next() * 80);
      const times = flushTimes(flushes, from, to);
      const ended = flushes.filter(([end]) => end >= from && end < to);
      if (ended.length === 0) {
        assert.equal(times, undefined, `run ${run}`);
        continue;
      }
      assert.ok(times !== undefined, `run ${run}`);
      assert.equal(times.count, ended.length, `run ${run}`);
      assert.ok(Math.abs(times.busy - busyModel(flushes, from, to)) < 1e-9, `run ${run}`);
    }
  });
});
