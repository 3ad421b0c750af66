/**
 * Power loss at every step of the log's workloads: each workload runs over a
 * CrashFs (segmented layout, 4 KiB segments, 512-byte sectors), a snapshot of
 * the states a power loss could leave is taken between operations and after
 * every macrotask while one is in flight, and every distinct state is
 * recovered with `Wal.open` and checked by the harness (no acknowledged
 * record lost, an exact prefix of what was appended, recovery idempotent and
 * durable, appends work after it).
 *
 * A failure names the workload, the step, the enumeration seed and the state,
 * so it can be replayed with `crashStates({ seed, limit })` on the same trace.
 */
import { strict as assert } from 'node:assert';
import { CompletionExplorer, type CompletionSchedule, type CrashState } from '@wal/store/testing';
import { pattern } from '../helpers.js';
import { type Expect, endOf, LogRun, newTally, openIn, type Recovered, report } from './harness.js';
import {
  appends,
  BelowHead,
  BURSTS,
  checkpoints,
  close,
  fileLayout,
  ORDER_SEED,
  ORDERS,
  printTotals,
  segmentRolls,
  type Total,
  truncateAfter,
  truncateBefore,
  workloadRunner,
} from './workloads.js';

const totals: Total[] = [];
const runWorkload = workloadRunner(totals);

describe('power loss (log over CrashFs)', function () {
  this.timeout(240_000);

  after(() => printTotals(totals));

  for (const [call, walOptions] of [
    ['pwriteDurable', {}],
    ['fdatasync', { durableWrites: false }],
    ['fdatasyncSync', { blockingSync: true }],
  ] as const) {
    it(`self-test: a log whose ${call} does nothing shows lost records`, async () => {
      // Only `call` lies: the log must have used it (the others sync for real).
      const run = new LogRun(`lying ${call}`, {
        perStep: 10,
        lyingSync: call,
        walOptions,
      });
      await run.open();
      for (let i = 0; i < 4; i++) {
        await run.step(`append #${i}`, () => run.appendDurable(pattern(100 + i, 900 + i)));
      }
      assert.ok(run.lies.count >= 3, `the log called ${call} ${run.lies.count} times`);
      const tally = newTally();
      await run.check(tally, new Set());
      assert.ok(tally.lost > 0, 'the harness did not notice acknowledged records lost');
      console.log(
        `power loss (log): self-test: ${tally.states} crash states of a log without ${call}, ${tally.lost} acknowledged records lost (expected), not counted`,
      );
    });
  }

  it('blocking commits (blockingSync): appends, segment rolls, committers sharing a flush', async () => {
    for (const [name, body] of [
      ['appends', appends],
      ['segment rolls', segmentRolls],
    ] as const) {
      await runWorkload(
        `${name} (blockingSync)`,
        async (run) => {
          await body(run);
          await run.commit('3 committers', [pattern(40, 950), pattern(41, 951), pattern(42, 952)]);
          run.appendBuffered(pattern(43, 953));
          await run.sync();
          // The calling thread wrote and synced the segments itself.
          const calls = (call: string): number =>
            run.fs.operations.filter((op) => op.call === call && op.path?.endsWith('.wal') === true)
              .length;
          assert.ok(calls('pwriteSync') >= 10, `${calls('pwriteSync')} synchronous writes`);
          assert.ok(calls('fdatasyncSync') >= 10, `${calls('fdatasyncSync')} synchronous syncs`);
        },
        12,
        { blockingSync: true },
        undefined,
        2,
      );
    }
  });

  it('plain appends with durable waits', async () => {
    await runWorkload('appends', appends, 60);
  });

  it('plain appends with durable waits, as writes and group-commit fdatasyncs (durableWrites: false)', async () => {
    await runWorkload(
      'appends (durableWrites: false)',
      async (run) => {
        await appends(run);
        const calls = (call: string): number =>
          run.fs.operations.filter((op) => op.call === call && op.path?.endsWith('.wal') === true)
            .length;
        assert.equal(calls('pwriteDurable'), 0);
        assert.ok(calls('fdatasync') >= 5, `${calls('fdatasync')} segment fdatasyncs`);
      },
      30,
      { durableWrites: false },
      undefined,
      2,
    );
  });

  it('group commit: concurrent committers share flushes', async () => {
    await runWorkload(
      'group commit',
      async (run) => {
        await run.open();
        for (let round = 0; round < 4; round++) {
          const payloads = Array.from({ length: 5 }, (_, j) =>
            pattern(20 + (((round * 5 + j) * 37) % 230), 200 + round * 5 + j),
          );
          if (round === 2) run.appendBuffered(pattern(33, 299));
          await run.commit(`group commit round ${round} (5 committers)`, payloads);
        }
        // The committers of a round shared flushes (durable writes, or
        // fdatasyncs): fewer than commits.
        const syncs = run.fs.operations.filter(
          (op) =>
            (op.call === 'fdatasync' || op.call === 'pwriteDurable') &&
            op.path?.endsWith('.wal') === true,
        ).length;
        assert.ok(
          syncs < 20,
          `${syncs} segment durable writes and fdatasyncs for 20 durable commits`,
        );
      },
      60,
    );
  });

  it('segment rolls: records crossing 4 KiB segments, durable hint at rolls', async () => {
    await runWorkload('segment rolls', segmentRolls, 40);
  });

  it('truncateAfter: the cut is durable, cut records never resurface, LSNs reused', async () => {
    await runWorkload('truncateAfter', truncateAfter, 40);
  });

  it('truncateBefore: head-file replacement and segment deletion', async () => {
    await runWorkload('truncateBefore', truncateBefore, 30);
  });

  it('checkpoints beside writers: truncateBefore with durable appends, waits and syncs at every step', async function () {
    this.timeout(480_000);
    // In every crash state the record just below the head is there, intact:
    // the head never moved before it was durable (FORMAT.md §7.2 step 2).
    const below = new BelowHead();
    // The longest workloads: half the bursts explored in CI.
    const bursts = Math.ceil(BURSTS / 2);
    const segmented = 'checkpoints (segmented)';
    await runWorkload(segmented, checkpoints, 5, {}, below.segmented(segmented), bursts);
    const single = 'checkpoints (file layout)';
    await runWorkload(single, checkpoints, 4, { layout: 'file' }, below.single(single), bursts);
    below.assertNone();
  });

  it('close: the final sync and the durable-hint replacement; reopen', async () => {
    await runWorkload('close', close, 40);
  });

  it('single-file layout: appends, both truncations, close (FileStore over CrashFs)', async () => {
    await runWorkload('file layout', fileLayout, 30, { layout: 'file' });
  });

  it('recovery itself: power loss during recovery of a torn tail', async () => {
    // Crash states with a torn tail, from the appends and segment-roll workloads.
    const sources: { state: CrashState; exp: Expect }[] = [];
    for (const [name, body] of [
      ['appends', appends],
      ['segment rolls', segmentRolls],
    ] as const) {
      const source = new LogRun(`${name} (source)`, { perStep: 20, seed: 90 + sources.length });
      await body(source);
      await source.w.close().catch(() => undefined);
      let taken = 0;
      let index = 0;
      for (const { state, exp } of source.allStates()) {
        if (index++ % 5 !== 0) continue;
        if (exp.minEnd === 0) continue;
        if (!(await hasTornTail(state))) continue;
        sources.push({ state, exp });
        if (++taken >= 10) break;
      }
    }
    assert.ok(sources.length >= 12, `only ${sources.length} torn states found`);
    const tally = newTally();
    const seen = new Set<string>();
    const t0 = Date.now();
    let reordered = 0;
    let reorderedRuns = 0;
    const recover = async (i: number, order: CompletionSchedule): Promise<void> => {
      const { state, exp } = sources[i]!;
      const fs = state.fs({ order });
      const run = new LogRun('recovery', { fs, perStep: 40, seed: 200 + i, order });
      run.model.records = [...exp.records];
      run.model.heads = new Set(exp.heads);
      run.model.minEnd = exp.minEnd;
      const wal = await run.open();
      assert.ok(wal.recovery.tornBytes + wal.recovery.zeroTail > 0);
      // What recovery kept is now durable (it fsynced before resolving).
      const kept: Recovered = { head: wal.head, tail: wal.tail, records: [] };
      run.model.records = run.model.records.filter(
        (rec) => rec.lsn >= kept.head && endOf(rec) <= kept.tail,
      );
      run.model.heads = new Set([kept.head]);
      run.model.acknowledged(kept.tail);
      run.snap('recovered (model updated)');
      await run.step('append after recovery', () => run.appendDurable(pattern(300, 600 + i)));
      await run.close();
      await run.check(tally, seen);
    };
    for (let i = 0; i < sources.length; i++) {
      const explorer = new CompletionExplorer({
        seed: ORDER_SEED + i,
        limit: ORDERS,
        bursts: Math.max(1, Math.floor(BURSTS / 3)),
      });
      await recover(i, explorer.baseline());
      const inOrder = tally.states;
      for (const order of explorer.orders()) await recover(i, order);
      reordered += tally.states - inOrder;
      reorderedRuns += explorer.figures.orders;
    }
    totals.push({ name: 'recovery', tally, ms: Date.now() - t0, reordered });
    console.log(
      `power loss (log): recovery: ${reorderedRuns} reordered runs, ${reordered} states found only by them`,
    );
    report('recovery', tally);
  });
});

/** True when recovering `state` cuts a tail, torn or zeros (checked on a copy). */
async function hasTornTail(state: CrashState): Promise<boolean> {
  const wal = await openIn(state.fs(), { readOnly: true }).catch(() => undefined);
  if (wal === undefined) return false;
  const torn = wal.recovery.tornBytes + wal.recovery.zeroTail > 0;
  await wal.close();
  return torn;
}
