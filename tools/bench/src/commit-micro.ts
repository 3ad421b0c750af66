/**
 * Micro-benchmark of @wal/commit:
 * 1. nanoseconds per `markWritten`, in order and out of order;
 * 2. syncs per commit and commits per second for N concurrent committers over a
 *    fake `sync` of fixed latency (a 1 ms timer), with gathering on and off;
 * 3. scaling: the time to serve n concurrent committers at once (waitWritten
 *    and syncTo each) and to take n writes completing in reverse order, which
 *    must grow linearly (times n log n at worst), not quadratically.
 *
 * Run: `./pnpm build && ./pnpm --filter @wal/bench bench:commit`.
 */
import { GroupCommit } from '@wal/commit';
import { nsPerOp } from './shared.js';

const RECORD = 64;
const noSync = async (): Promise<void> => {};

function inOrder(count: number): () => void {
  return () => {
    const commit = new GroupCommit({ sync: noSync, start: 0 });
    commit.reserve(count * RECORD);
    for (let i = 0; i < count; i++) commit.markWritten(i * RECORD, (i + 1) * RECORD);
  };
}

/** Every other write completes before the one reserved just before it. */
function swappedPairs(count: number): () => void {
  return () => {
    const commit = new GroupCommit({ sync: noSync, start: 0 });
    commit.reserve(count * RECORD);
    for (let i = 0; i < count; i += 2) {
      commit.markWritten((i + 1) * RECORD, (i + 2) * RECORD);
      commit.markWritten(i * RECORD, (i + 1) * RECORD);
    }
  };
}

/** Blocks of `block` writes complete last-reserved first: up to block − 1 parked at once. */
function reversedBlocks(count: number, block: number): () => void {
  return () => {
    const commit = new GroupCommit({ sync: noSync, start: 0 });
    commit.reserve(count * RECORD);
    for (let base = 0; base < count; base += block) {
      for (let i = base + block - 1; i >= base; i--) {
        commit.markWritten(i * RECORD, (i + 1) * RECORD);
      }
    }
  };
}

interface GroupResult {
  readonly commits: number;
  readonly syncs: number;
  readonly seconds: number;
}

/**
 * N committers loop: reserve a record, "write" it (one macrotask, like an I/O
 * completion), report it written, wait for it to be durable. `sync` takes one
 * 1 ms timer.
 */
async function groupCommit(committers: number, gather: boolean, ms: number): Promise<GroupResult> {
  let syncs = 0;
  const commit = new GroupCommit({
    sync: () => {
      syncs++;
      return new Promise((resolve) => setTimeout(resolve, 1));
    },
    start: 0,
    gather,
  });
  let tail = 0;
  let commits = 0;
  let running = true;
  const committer = async (): Promise<void> => {
    while (running) {
      const start = tail;
      tail += RECORD;
      commit.reserve(tail);
      await new Promise((resolve) => setImmediate(resolve));
      commit.markWritten(start, start + RECORD);
      await commit.syncTo(start + RECORD);
      commits++;
    }
  };
  const started = process.hrtime.bigint();
  const all = Array.from({ length: committers }, committer);
  await new Promise((resolve) => setTimeout(resolve, ms));
  running = false;
  const measuredCommits = commits;
  const measuredSyncs = syncs;
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  await Promise.all(all);
  return { commits: measuredCommits, syncs: measuredSyncs, seconds };
}

/** Best of `rounds` wall-clock timings of `body`, in milliseconds. */
async function bestMs(rounds: number, body: () => Promise<void> | void): Promise<number> {
  let best = Number.POSITIVE_INFINITY;
  for (let round = 0; round < rounds; round++) {
    const started = process.hrtime.bigint();
    await body();
    best = Math.min(best, Number(process.hrtime.bigint() - started) / 1e6);
  }
  return best;
}

/**
 * n committers reserve a record each and wait for it (waitWritten, then
 * syncTo); the writes then complete in order, one per call, and one sync (an
 * immediately resolved promise) serves them all.
 */
async function manyCommitters(n: number): Promise<void> {
  const commit = new GroupCommit({ sync: noSync, start: 0 });
  const waits: Array<Promise<void>> = [];
  for (let i = 0; i < n; i++) {
    const end = (i + 1) * RECORD;
    commit.reserve(end);
    waits.push(commit.waitWritten(end).then(() => commit.syncTo(end)));
  }
  const durable: Array<Promise<void>> = [];
  for (let i = 0; i < n; i++) durable.push(commit.syncTo((i + 1) * RECORD));
  for (let i = 0; i < n; i++) commit.markWritten(i * RECORD, (i + 1) * RECORD);
  await Promise.all(waits);
  await Promise.all(durable);
}

/** n writes complete last-reserved first: n − 1 parked, then drained at once. */
function reversed(n: number): void {
  const commit = new GroupCommit({ sync: noSync, start: 0 });
  commit.reserve(n * RECORD);
  for (let i = n - 1; i >= 0; i--) commit.markWritten(i * RECORD, (i + 1) * RECORD);
  if (commit.written !== n * RECORD) throw new Error('reversed: the watermark did not advance');
}

function pad(text: string, width: number): string {
  return text.padStart(width);
}

async function main(): Promise<void> {
  const count = 2_000_000;
  console.log(`@wal/commit micro-benchmark (node ${process.version})`);
  console.log('');
  console.log('markWritten, ns per call (best of 5 rounds of 2,000,000 calls)');
  const rows: Array<[string, number]> = [
    ['in order', nsPerOp(count, 5, inOrder(count))],
    ['out of order: swapped pairs', nsPerOp(count, 5, swappedPairs(count))],
    ['out of order: reversed blocks of 64', nsPerOp(count, 5, reversedBlocks(count, 64))],
  ];
  for (const [name, ns] of rows) console.log(`  ${name.padEnd(38)} ${pad(ns.toFixed(1), 7)} ns`);
  console.log('');

  console.log('scaling, ms for n at once (best of 3): linear means ms/n stays flat');
  console.log(
    `  ${pad('n', 6)} | ${pad('committers: ms', 15)} ${pad('us/each', 8)} | ${pad('reversed writes: ms', 20)} ${pad('us/each', 8)}`,
  );
  for (const n of [1_000, 10_000, 20_000, 50_000]) {
    const many = await bestMs(3, () => manyCommitters(n));
    const back = await bestMs(3, () => reversed(n));
    console.log(
      `  ${pad(String(n), 6)} | ${pad(many.toFixed(1), 15)} ${pad(((many * 1000) / n).toFixed(2), 8)} | ${pad(back.toFixed(1), 20)} ${pad(((back * 1000) / n).toFixed(2), 8)}`,
    );
  }
  console.log('');

  const ms = 300;
  console.log(
    `group commit, fake sync = 1 ms timer, ${ms} ms per cell: syncs per commit and commits/s`,
  );
  console.log(
    `  ${pad('N', 5)} | ${pad('gather: syncs/commit', 21)} ${pad('commits/s', 10)} | ${pad('no gather: syncs/commit', 24)} ${pad('commits/s', 10)}`,
  );
  for (let committers = 1; committers <= 1024; committers *= 2) {
    const on = await groupCommit(committers, true, ms);
    const off = await groupCommit(committers, false, ms);
    const cell = (result: GroupResult, width: number): string =>
      `${pad((result.syncs / result.commits).toFixed(4), width)} ${pad(Math.round(result.commits / result.seconds).toString(), 10)}`;
    console.log(`  ${pad(String(committers), 5)} | ${cell(on, 21)} | ${cell(off, 24)}`);
  }
}

await main();
