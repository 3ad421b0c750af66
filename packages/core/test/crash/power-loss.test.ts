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
import type { WalOptions } from '../../src/index.js';
import { pattern, tick } from '../helpers.js';
import {
  DIR,
  type Expect,
  endOf,
  LogRun,
  newTally,
  type OnState,
  openIn,
  type Rec,
  type Recovered,
  report,
  SEGMENT,
  type Tally,
} from './harness.js';

const totals: { name: string; tally: Tally; ms: number; reordered: number }[] = [];

/**
 * Reorderings tried per burst of concurrent file-system calls (exhaustive up
 * to this many orders, seeded samples beyond); `WAL_ORDERS` raises it for
 * the long run (`pnpm --filter @wal/core soak:orders`).
 */
const ORDERS = Number(process.env.WAL_ORDERS ?? 3);
/** Seed of the sampled orders; `WAL_ORDER_SEED` changes it. */
const ORDER_SEED = Number(process.env.WAL_ORDER_SEED ?? 1);
/**
 * Concurrent bursts explored per workload (spread evenly; the CI time
 * budget); `WAL_ORDER_BURSTS` raises it, the long run explores all.
 */
const BURSTS = Number(process.env.WAL_ORDER_BURSTS ?? 6);

/**
 * Runs `body` in call order, then again under reordered completions of each
 * burst of concurrent calls (`CompletionExplorer`), checking every distinct
 * state of every run. `orders: false` for the call order only.
 */
async function runWorkload(
  name: string,
  body: (run: LogRun) => Promise<void>,
  perStep: number,
  walOptions: WalOptions = {},
  onState?: OnState,
  bursts = BURSTS,
): Promise<Tally> {
  const t0 = Date.now();
  const seed = totals.length + 1;
  const explorer = new CompletionExplorer({ seed: ORDER_SEED, limit: ORDERS, bursts });
  const tally = newTally();
  const seen = new Set<string>();
  const run = new LogRun(name, { perStep, seed, walOptions, order: explorer.baseline() });
  await body(run);
  await run.check(tally, seen, onState);
  const inOrder = tally.states;
  for (const order of explorer.orders()) {
    const rerun = new LogRun(name, { perStep, seed, walOptions, order });
    await body(rerun);
    await rerun.check(tally, seen, onState);
  }
  const reordered = tally.states - inOrder;
  totals.push({ name, tally, ms: Date.now() - t0, reordered });
  const f = explorer.figures;
  console.log(
    `power loss (log): ${name}: ${f.concurrent} of ${f.bursts} bursts concurrent (${f.exhaustive} in every order, ${f.sampled} sampled, ${f.skipped} not explored), ${f.orders} reordered runs, ${reordered} states found only by them`,
  );
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

/**
 * `truncateBefore(lsn)` with writers beside it: at every macrotask until it
 * resolves (the first {@link WRITER_STEPS}), a durable append, and in turn a buffered append waited for with
 * `waitFor(lsn, 'durable')` and a `sync()` (for the first `quiet` steps,
 * buffered appends only: nobody else asks for a sync). The model counts each
 * as acknowledged when it resolves; until the truncation resolves the head
 * may be the old one or `lsn`.
 */
async function checkpointBesideWriters(
  run: LogRun,
  lsn: number,
  tag: number,
  quiet = 0,
): Promise<void> {
  const kept = run.model.records.find((rec) => endOf(rec) === lsn);
  if (kept !== undefined) lastBelow.set(`${run.workload}:${lsn}`, kept);
  run.model.heading(lsn);
  await run.step(`truncateBefore(${lsn}) beside writers`, async () => {
    const truncation = run.w.truncateBefore(lsn);
    let settled = false;
    const done = (): void => {
      settled = true;
    };
    truncation.then(done, done);
    const acks: Promise<unknown>[] = [];
    for (let i = 0; !settled; i++) {
      if (i >= WRITER_STEPS) {
        // Enough writers: one completion per macrotask (reordered runs)
        // would otherwise let them outrun the truncation without end.
        await tick();
        continue;
      }
      if (i < quiet) {
        run.appendBuffered(pattern(25 + i, tag + 900 + i));
        await tick();
        continue;
      }
      acks.push(run.appendDurable(pattern(30 + (((tag + i) * 53) % 400), tag + i)));
      if (i % 3 === 1) {
        const payload = pattern(20 + (i % 50), tag + 500 + i);
        const at = run.appendBuffered(payload);
        const end = at + 8 + payload.length;
        acks.push(run.w.waitFor(at, 'durable').then(() => run.model.acknowledged(end)));
      }
      if (i % 4 === 2) {
        const tail = run.w.tail;
        acks.push(run.w.sync().then(() => run.model.acknowledged(tail)));
      }
      await tick();
    }
    await truncation;
    await Promise.all(acks);
  });
  run.model.headed(lsn);
  run.snap(`truncateBefore(${lsn}) beside writers (model updated)`);
}

/** Macrotasks of a checkpoint that start writers (later ones only wait for it). */
const WRITER_STEPS = 40;

/** The record ending at each checkpoint's LSN, by workload and LSN: it must be durable before the head moves. */
const lastBelow = new Map<string, Rec>();

/**
 * Checkpoints beside writers: inside a segment, across segments (deleting
 * some), at the tail; the last two start with the records below their LSN
 * not yet durable (buffered, never waited for).
 */
async function checkpoints(run: LogRun): Promise<void> {
  await run.open();
  for (let i = 0; i < 8; i++) {
    await run.step(`append #${i}`, () => run.appendDurable(pattern(700, 700 + i)));
  }
  await checkpointBesideWriters(run, run.model.records[2]!.lsn, 1000);
  const buffered = Array.from({ length: 6 }, (_, i) => run.appendBuffered(pattern(600, 1500 + i)));
  assert.ok(buffered[4]! >= 2 * SEGMENT);
  await checkpointBesideWriters(run, buffered[4]!, 2000);
  run.appendBuffered(pattern(300, 2900));
  run.appendBuffered(pattern(40, 2901));
  await checkpointBesideWriters(run, run.w.tail, 3000, 12);
  await run.step('append after the checkpoints', () => run.appendDurable(pattern(90, 3999)));
}

describe('power loss (log over CrashFs)', function () {
  this.timeout(240_000);

  after(() => {
    let states = 0;
    let bad = 0;
    let ms = 0;
    let reordered = 0;
    for (const { tally, ms: took, reordered: found } of totals) {
      states += tally.states;
      bad += tally.violations.length;
      ms += took;
      reordered += found;
    }
    console.log(
      `power loss (log): ${states} crash states in total (${reordered} by reordered completions), ${bad} violations, ${(ms / 1000).toFixed(1)} s`,
    );
  });

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

  it('checkpoints beside writers: truncateBefore with durable appends, waits and syncs at every step', async function () {
    this.timeout(480_000);
    // In every crash state the record just below the head is there, intact:
    // the head never moved before it was durable (FORMAT.md §7.2 step 2).
    const below: string[] = [];
    const holds = (workload: string, head: number, byteAt: (offset: number) => number): void => {
      const rec = lastBelow.get(`${workload}:${head}`);
      if (rec === undefined) return;
      const start = Math.max(rec.lsn + 8, Math.floor((head - 1) / SEGMENT) * SEGMENT);
      for (let at = start; at < head; at++) {
        if (byteAt(at) !== rec.payload[at - rec.lsn - 8]) {
          below.push(
            `${workload}: head ${head}, the record at ${rec.lsn} below it differs at ${at}`,
          );
          return;
        }
      }
    };
    const segmented: OnState = (state) => {
      const file = state.files.get(`${DIR}/head`);
      if (file === undefined) return;
      const head = Number(new DataView(file.buffer, file.byteOffset).getBigUint64(0, true));
      const index = Math.floor((head - 1) / SEGMENT);
      const segment = state.files.get(`${DIR}/${String(index).padStart(20, '0')}.wal`);
      holds('checkpoints (segmented)', head, (at) => segment?.[at - index * SEGMENT] ?? -1);
    };
    const single: OnState = (state) => {
      const meta = state.files.get(`${DIR}.meta`);
      if (meta === undefined) return;
      const fields = JSON.parse(Buffer.from(meta.subarray(16)).toString('utf8')) as {
        'store.head'?: number;
      };
      const log = state.files.get(DIR);
      holds('checkpoints (file layout)', fields['store.head'] ?? 0, (at) => log?.[at] ?? -1);
    };
    // The longest workloads: half the bursts explored in CI.
    const bursts = Math.ceil(BURSTS / 2);
    await runWorkload('checkpoints (segmented)', checkpoints, 5, {}, segmented, bursts);
    await runWorkload(
      'checkpoints (file layout)',
      checkpoints,
      4,
      { layout: 'file' },
      single,
      bursts,
    );
    assert.deepEqual(
      below.slice(0, 5),
      [],
      `${below.length} crash states lost bytes below the head`,
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
