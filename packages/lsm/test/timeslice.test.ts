/**
 * Background work's slices: a slice gives the turn back once its time is
 * up (the I/O callbacks and immediates queued meanwhile run before the
 * work goes on), and not before.
 */
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { SLICE_MS, Timeslice } from '../src/timeslice.js';

/** Steps `slice` until it gives the turn back: the turn, and the time since `since`. */
function untilYield(slice: Timeslice, since: number): { ms: number; turn: Promise<void> } {
  for (;;) {
    const turn = slice.step();
    if (turn !== undefined) return { ms: performance.now() - since, turn };
    if (performance.now() - since > 5000) throw new Error('the slice never gave the turn back');
  }
}

describe('Timeslice', () => {
  it('runs for a slice, then gives the turn back: what was queued meanwhile runs first', async () => {
    const started = performance.now();
    const slice = new Timeslice();
    let ran = false;
    setImmediate(() => {
      ran = true;
    });
    const { ms, turn } = untilYield(slice, started);
    assert.ok(ms >= SLICE_MS, `yielded after ${ms} ms`);
    assert.equal(ran, false);
    await turn;
    assert.equal(ran, true);
  });

  it('starts a new slice on the next turn and on restart()', async () => {
    const slice = new Timeslice(50);
    await untilYield(slice, performance.now()).turn;
    // A fresh slice: the next look at the clock finds it running.
    for (let i = 0; i < 16; i++) assert.equal(slice.step(), undefined);
    const restarted = performance.now();
    slice.restart();
    assert.ok(untilYield(slice, restarted).ms >= 50);
  });

  it('after(): a unit that waited starts a new slice once its wait is over; one that did not steps', async () => {
    const slice = new Timeslice(50);
    // Nothing to wait for: a step, within the slice.
    assert.equal(slice.after(undefined), undefined);
    let resolveWait!: () => void;
    const waiting = new Promise<void>((resolve) => {
      resolveWait = resolve;
    });
    const next = slice.after(waiting)!;
    // Run the slice out while the wait is pending: the clock says it is over...
    await new Promise((resolve) => setTimeout(resolve, 60));
    resolveWait();
    await next;
    // ...but the wait gave the turn back: a fresh slice.
    for (let i = 0; i < 16; i++) assert.equal(slice.after(undefined), undefined);
    await assert.rejects(slice.after(Promise.reject(new Error('failed')))!, /failed/);
  });

  it('looks at its clock once every 16 steps, and gives the turn back once the clock says the slice is over', async () => {
    let now = 100;
    let looks = 0;
    const slice = new Timeslice(1, () => {
      looks++;
      return now;
    });
    assert.equal(looks, 1, 'the slice starts by the clock');
    // The clock stands still: the slice lasts, however many steps.
    for (let i = 0; i < 1600; i++) assert.equal(slice.step(), undefined);
    assert.equal(looks, 1 + 100);
    now = 101; // over
    for (let i = 1; i < 16; i++) assert.equal(slice.step(), undefined);
    const turn = slice.step();
    assert.ok(turn !== undefined, 'the 16th step after the clock moved gives the turn back');
    await turn;
    // A new slice, by the clock, from the turn on.
    for (let i = 0; i < 32; i++) assert.equal(slice.step(), undefined);
    now = 102;
    slice.restart();
    now = 103;
    for (let i = 1; i < 16; i++) assert.equal(slice.step(), undefined);
    assert.ok(slice.step() !== undefined);
  });
});
