/**
 * What observing a log costs: the same workloads with nobody subscribed to
 * the log's diagnostics channels and with a subscriber on every one of them
 * (`CHANNELS` of @wal/core), run alternately, best of several rounds each.
 * 1. buffered appends (100-byte records): nanoseconds per append — an append
 *    publishes nothing, so both must be equal;
 * 2. durable commits by 64 concurrent committers on an in-memory store (its
 *    sync costs nothing, so the group commit and the `wal:commit` event are
 *    all there is): nanoseconds per commit and per flush;
 * 3. `wal.stats()`: nanoseconds per snapshot.
 *
 * Run: `./pnpm build && ./pnpm --filter @wal/bench bench:channels`.
 */
import diagnosticsChannel from 'node:diagnostics_channel';
import { CHANNELS, Wal } from '@wal/core';
import { MemoryStore } from '@wal/store';
import { nsPerOp } from './shared.js';

const ROUNDS = 7;
const APPENDS = 200_000;
const COMMITTERS = 64;
const COMMITS = 20_000;
const payload = new Uint8Array(100);

let received = 0;
const listener = (): void => {
  received++;
};

function subscribe(on: boolean): void {
  for (const name of Object.values(CHANNELS)) {
    if (on) diagnosticsChannel.subscribe(name, listener);
    else diagnosticsChannel.unsubscribe(name, listener);
  }
}

async function appendsNs(): Promise<number> {
  const wal = await Wal.open(new MemoryStore(), { stagingLimit: 1 << 30 });
  const ns = nsPerOp(APPENDS, 1, () => {
    for (let i = 0; i < APPENDS; i++) wal.append(payload);
  });
  await wal.close();
  return ns;
}

async function commitsNs(): Promise<{ perCommit: number; perFlush: number }> {
  const wal = await Wal.open(new MemoryStore());
  let left = COMMITS;
  const committer = async (): Promise<void> => {
    while (left-- > 0) await wal.append(payload, { wait: 'durable' });
  };
  const started = process.hrtime.bigint();
  await Promise.all(Array.from({ length: COMMITTERS }, committer));
  const elapsed = Number(process.hrtime.bigint() - started);
  const { fsyncs } = wal.stats();
  await wal.close();
  return { perCommit: elapsed / COMMITS, perFlush: elapsed / fsyncs };
}

async function statsNs(): Promise<number> {
  const wal = await Wal.open(new MemoryStore());
  await wal.append(payload, { wait: 'durable' });
  let sink = 0;
  const ns = nsPerOp(100_000, 1, () => {
    for (let i = 0; i < 100_000; i++) sink += wal.stats().appends;
  });
  await wal.close();
  if (sink < 0) throw new Error('unreachable');
  return ns;
}

async function main(): Promise<void> {
  const best = {
    off: { append: Infinity, commit: Infinity, flush: Infinity },
    on: { append: Infinity, commit: Infinity, flush: Infinity },
  };
  for (let round = 0; round < ROUNDS; round++) {
    for (const on of [false, true]) {
      subscribe(on);
      const side = on ? best.on : best.off;
      side.append = Math.min(side.append, await appendsNs());
      const { perCommit, perFlush } = await commitsNs();
      side.commit = Math.min(side.commit, perCommit);
      side.flush = Math.min(side.flush, perFlush);
      subscribe(false);
    }
  }
  const stats = await statsNs();
  const line = (name: string, off: number, on: number): string =>
    `${name.padEnd(34)} ${off.toFixed(1).padStart(9)} ns ${on.toFixed(1).padStart(9)} ns   ${((on / off - 1) * 100).toFixed(1).padStart(6)} %`;
  process.stdout.write(
    `best of ${ROUNDS} rounds, Node ${process.version}\n` +
      `${''.padEnd(34)} ${'no subscriber'.padStart(12)} ${'subscribed'.padStart(12)}   change\n` +
      `${line('buffered append (100 B)', best.off.append, best.on.append)}\n` +
      `${line(`durable commit (${COMMITTERS} committers)`, best.off.commit, best.on.commit)}\n` +
      `${line('  per group-commit flush', best.off.flush, best.on.flush)}\n` +
      `wal.stats(): ${stats.toFixed(1)} ns per snapshot; events received: ${received}\n`,
  );
}

await main();
