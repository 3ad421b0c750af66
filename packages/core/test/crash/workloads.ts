/**
 * The log's power-loss workloads, shared by the suites that run them in each
 * commit mode (`power-loss.test.ts`: the default, durable writes and group
 * commit; `power-loss-blocking.test.ts`: `blockingSync`). Each workload is a
 * body over a {@link LogRun}; {@link workloadRunner} runs one in call order,
 * then under reordered completions, and checks every distinct crash state.
 */
import { strict as assert } from 'node:assert';
import { CompletionExplorer } from '@wal/store/testing';
import type { WalOptions } from '../../src/index.js';
import { pattern, tick } from '../helpers.js';
import {
  DIR,
  endOf,
  LogRun,
  newTally,
  type OnState,
  type Rec,
  report,
  SEGMENT,
  type Tally,
} from './harness.js';

/**
 * Reorderings tried per burst of concurrent file-system calls (exhaustive up
 * to this many orders, seeded samples beyond); `WAL_ORDERS` raises it for
 * the long run (`pnpm --filter @wal/core soak:orders`).
 */
export const ORDERS = Number(process.env.WAL_ORDERS ?? 3);
/** Seed of the sampled orders; `WAL_ORDER_SEED` changes it. */
export const ORDER_SEED = Number(process.env.WAL_ORDER_SEED ?? 1);
/**
 * Concurrent bursts explored per workload (spread evenly; the CI time
 * budget); `WAL_ORDER_BURSTS` raises it, the long run explores all.
 */
export const BURSTS = Number(process.env.WAL_ORDER_BURSTS ?? 6);

/** The figures of one workload run by a suite. */
export interface Total {
  readonly name: string;
  readonly tally: Tally;
  readonly ms: number;
  readonly reordered: number;
}

/** Runs `body` over a log: see {@link workloadRunner}. */
export type RunWorkload = (
  name: string,
  body: (run: LogRun) => Promise<void>,
  perStep: number,
  walOptions?: WalOptions,
  onState?: OnState,
  bursts?: number,
) => Promise<Tally>;

/**
 * The runner of one suite, adding each workload's figures to `totals` (whose
 * length also seeds the next workload's enumerations): runs `body` in call
 * order, then again under reordered completions of each burst of concurrent
 * calls (`CompletionExplorer`), checking every distinct state of every run.
 */
export function workloadRunner(totals: Total[]): RunWorkload {
  return async (name, body, perStep, walOptions = {}, onState, bursts = BURSTS) => {
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
  };
}

/** Prints the figures of a suite's workloads (its `after` hook). */
export function printTotals(totals: readonly Total[], label = 'power loss (log)'): void {
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
    `${label}: ${states} crash states in total (${reordered} by reordered completions), ${bad} violations, ${(ms / 1000).toFixed(1)} s`,
  );
}

const SIZES = [0, 1, 7, 100, 300, 9, 511, 50, 200, 1000, 3, 64];

/** Durable appends of assorted sizes, two buffered ones among them. */
export async function appends(run: LogRun): Promise<void> {
  await run.open();
  for (let i = 0; i < SIZES.length; i++) {
    if (i === 4 || i === 9) run.appendBuffered(pattern(40 + i, 500 + i)); // never waited for
    await run.step(`append #${i} (${SIZES[i]} bytes, durable)`, () =>
      run.appendDurable(pattern(SIZES[i]!, i)),
    );
  }
}

/** Durable appends crossing 4 KiB segments. */
export async function segmentRolls(run: LogRun): Promise<void> {
  await run.open();
  const sizes = [1500, 1500, 1500, 5000, 700, 3000, 10, 2500, 2600];
  for (let i = 0; i < sizes.length; i++) {
    await run.step(`append #${i} (${sizes[i]} bytes, durable)`, () =>
      run.appendDurable(pattern(sizes[i]!, 100 + i)),
    );
  }
}

/** `truncateAfter` deleting a segment and cutting one, appends after each cut. */
export async function truncateAfter(run: LogRun): Promise<void> {
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
}

/** `truncateBefore` inside a segment, deleting segments, and dropping everything. */
export async function truncateBefore(run: LogRun): Promise<void> {
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
}

/** `close()` of buffered appends, a reopen, then appends, a sync and a close again. */
export async function close(run: LogRun): Promise<void> {
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
}

/** The single-file layout (run it with `layout: 'file'`): appends, both truncations, close. */
export async function fileLayout(run: LogRun): Promise<void> {
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
}

/**
 * `truncateBefore(lsn)` with writers beside it: at every macrotask until it
 * resolves (the first {@link WRITER_STEPS}), a durable append, and in turn a buffered append waited for with
 * `waitFor(lsn, 'durable')` and a `sync()` (for the first `quiet` steps,
 * buffered appends only: nobody else asks for a sync). The model counts each
 * as acknowledged when it resolves; until the truncation resolves the head
 * may be the old one or `lsn`.
 */
export async function checkpointBesideWriters(
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
export async function checkpoints(run: LogRun): Promise<void> {
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

/**
 * Checks of the checkpoint workloads: in every crash state the record just
 * below the head is there, intact (the head never moved before it was
 * durable, FORMAT.md §7.2 step 2). `segmented(workload)` and
 * `single(workload)` read the head of each layout; `problems` collects what
 * failed.
 */
export class BelowHead {
  readonly problems: string[] = [];

  #holds(workload: string, head: number, byteAt: (offset: number) => number): void {
    const rec = lastBelow.get(`${workload}:${head}`);
    if (rec === undefined) return;
    const start = Math.max(rec.lsn + 8, Math.floor((head - 1) / SEGMENT) * SEGMENT);
    for (let at = start; at < head; at++) {
      if (byteAt(at) !== rec.payload[at - rec.lsn - 8]) {
        this.problems.push(
          `${workload}: head ${head}, the record at ${rec.lsn} below it differs at ${at}`,
        );
        return;
      }
    }
  }

  segmented(workload: string): OnState {
    return (state) => {
      const file = state.files.get(`${DIR}/head`);
      if (file === undefined) return;
      const head = Number(new DataView(file.buffer, file.byteOffset).getBigUint64(0, true));
      const index = Math.floor((head - 1) / SEGMENT);
      const segment = state.files.get(`${DIR}/${String(index).padStart(20, '0')}.wal`);
      this.#holds(workload, head, (at) => segment?.[at - index * SEGMENT] ?? -1);
    };
  }

  single(workload: string): OnState {
    return (state) => {
      const meta = state.files.get(`${DIR}.meta`);
      if (meta === undefined) return;
      const fields = JSON.parse(Buffer.from(meta.subarray(16)).toString('utf8')) as {
        'store.head'?: number;
      };
      const log = state.files.get(DIR);
      this.#holds(workload, fields['store.head'] ?? 0, (at) => log?.[at] ?? -1);
    };
  }

  /** Fails when a crash state lost bytes below its head. */
  assertNone(): void {
    assert.deepEqual(
      this.problems.slice(0, 5),
      [],
      `${this.problems.length} crash states lost bytes below the head`,
    );
  }
}
