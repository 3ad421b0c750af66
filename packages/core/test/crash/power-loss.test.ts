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
import type { CrashState } from '@wal/store/testing';
import type { WalOptions } from '../../src/index.js';
import {
  type Expect,
  endOf,
  LogRun,
  newTally,
  openIn,
  pattern,
  type Recovered,
  report,
  SEGMENT,
  type Tally,
} from './harness.js';

const totals: { name: string; tally: Tally; ms: number }[] = [];

async function runWorkload(
  name: string,
  body: (run: LogRun) => Promise<void>,
  perStep: number,
  walOptions: WalOptions = {},
): Promise<Tally> {
  const t0 = Date.now();
  const run = new LogRun(name, { perStep, seed: totals.length + 1, walOptions });
  await body(run);
  const tally = newTally();
  await run.check(tally, new Set());
  totals.push({ name, tally, ms: Date.now() - t0 });
  report(name, tally);
  return tally;
}

const SIZES = [0, 1, 7, 100, 300, 9, 511, 50, 200, 1000, 3, 64];

async function appends(run: LogRun): Promise<void> {
  await run.open();
  for (let i = 0; i < SIZES.length; i++) {
    if (i === 4 || i === 9) run.appendBuffered(pattern(40 + i, 500 + i)); // never waited for
    await run.step(`append #${i} (${SIZES[i]} bytes, durable)`, () =>
      run.appendDurable(pattern(SIZES[i]!, i)),
    );
  }
}

async function segmentRolls(run: LogRun): Promise<void> {
  await run.open();
  const sizes = [1500, 1500, 1500, 5000, 700, 3000, 10, 2500, 2600];
  for (let i = 0; i < sizes.length; i++) {
    await run.step(`append #${i} (${sizes[i]} bytes, durable)`, () =>
      run.appendDurable(pattern(sizes[i]!, 100 + i)),
    );
  }
}

describe('power loss (log over CrashFs)', function () {
  this.timeout(240_000);

  after(() => {
    let states = 0;
    let bad = 0;
    let ms = 0;
    for (const { tally, ms: took } of totals) {
      states += tally.states;
      bad += tally.violations.length;
      ms += took;
    }
    console.log(
      `power loss (log): ${states} crash states in total, ${bad} violations, ${(ms / 1000).toFixed(1)} s`,
    );
  });

  it('self-test: a log whose fdatasync does nothing shows lost records', async () => {
    const run = new LogRun('lying fdatasync', { perStep: 10, lyingSync: true });
    await run.open();
    for (let i = 0; i < 4; i++) {
      await run.step(`append #${i}`, () => run.appendDurable(pattern(100 + i, 900 + i)));
    }
    const tally = newTally();
    await run.check(tally, new Set());
    assert.ok(tally.lost > 0, 'the harness did not notice acknowledged records lost');
    console.log(
      `power loss (log): self-test: ${tally.states} crash states of a log without fdatasync, ${tally.lost} acknowledged records lost (expected), not counted`,
    );
  });

  it('plain appends with durable waits', async () => {
    await runWorkload('appends', appends, 60);
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
        // The committers of a round shared flushes: fewer segment fdatasyncs than commits.
        const syncs = run.fs.operations.filter(
          (op) => op.call === 'fdatasync' && op.path?.endsWith('.wal') === true,
        ).length;
        assert.ok(syncs < 20, `${syncs} segment fdatasyncs for 20 durable commits`);
      },
      60,
    );
  });

  it('segment rolls: records crossing 4 KiB segments, durable hint at rolls', async () => {
    await runWorkload('segment rolls', segmentRolls, 40);
  });

  it('truncateAfter: the cut is durable, cut records never resurface, LSNs reused', async () => {
    await runWorkload(
      'truncateAfter',
      async (run) => {
        await run.open();
        const lsns: number[] = [];
        for (let i = 0; i < 8; i++) {
          lsns.push(await run.step(`append #${i}`, () => run.appendDurable(pattern(700, 300 + i))));
        }
        await run.truncateAfter(lsns[2]!); // deletes segment 1, cuts segment 0
        for (let i = 0; i < 3; i++) {
          await run.step(`re-append #${i}`, () => run.appendDurable(pattern(900, 320 + i)));
        }
        run.appendBuffered(pattern(50, 330)); // unacknowledged, then cut by the truncation
        const keep = run.model.records.at(-2)!.lsn;
        await run.truncateAfter(keep);
        await run.step('append after the cut', () => run.appendDurable(pattern(60, 331)));
      },
      40,
    );
  });

  it('truncateBefore: head-file replacement and segment deletion', async () => {
    await runWorkload(
      'truncateBefore',
      async (run) => {
        await run.open();
        for (let i = 0; i < 14; i++) {
          await run.step(`append #${i}`, () => run.appendDurable(pattern(1000, 400 + i)));
        }
        const records = run.model.records;
        await run.truncateBefore(records[1]!.lsn); // inside segment 0: head file only
        const inSegment2 = records.find((rec) => rec.lsn >= 2 * SEGMENT)!;
        await run.truncateBefore(inSegment2.lsn); // deletes segments 0 and 1
        run.appendBuffered(pattern(70, 420));
        await run.step('append', () => run.appendDurable(pattern(500, 421)));
        await run.truncateBefore(run.w.tail); // drops everything
        await run.step('append after dropping all', () => run.appendDurable(pattern(80, 422)));
      },
      30,
    );
  });

  it('close: the final sync and the durable-hint replacement; reopen', async () => {
    await runWorkload(
      'close',
      async (run) => {
        await run.open();
        for (let i = 0; i < 6; i++) run.appendBuffered(pattern(300 + i * 250, 500 + i));
        await run.close();
        await run.open();
        run.appendBuffered(pattern(900, 510));
        await run.step('append', () => run.appendDurable(pattern(4000, 511)));
        run.appendBuffered(pattern(20, 512));
        await run.sync();
        run.appendBuffered(pattern(3000, 513));
        await run.close();
      },
      40,
    );
  });

  it('single-file layout: appends, both truncations, close (FileStore over CrashFs)', async () => {
    await runWorkload(
      'file layout',
      async (run) => {
        await run.open();
        for (let i = 0; i < 6; i++) {
          await run.step(`append #${i}`, () => run.appendDurable(pattern(150 * i, 800 + i)));
        }
        await run.truncateBefore(run.model.records[2]!.lsn); // the head lives in the same file
        await run.truncateAfter(run.model.records[2]!.lsn);
        run.appendBuffered(pattern(90, 810));
        await run.step('append', () => run.appendDurable(pattern(700, 811)));
        run.appendBuffered(pattern(30, 812));
        await run.close();
      },
      30,
      { layout: 'file' },
    );
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
    for (let i = 0; i < sources.length; i++) {
      const { state, exp } = sources[i]!;
      const run = new LogRun('recovery', { fs: state.fs(), perStep: 40, seed: 200 + i });
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
    }
    totals.push({ name: 'recovery', tally, ms: Date.now() - t0 });
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
