// Observing a log: a live summary from wal.stats() and the log's events on
// node:diagnostics_channel, while 32 writers make durable appends for about
// three seconds. Everything happens in a fresh temporary directory, removed
// at the end. Run: `./pnpm build && ./pnpm --filter @wal/examples observe`.
import diagnosticsChannel from 'node:diagnostics_channel';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CHANNELS,
  type CommitEvent,
  type Log2Histogram,
  type RecoveryEvent,
  type TruncateEvent,
  Wal,
  type WalStats,
} from '@wal/core';

const WRITERS = 32;
const RUN_MS = 3000;
const EVERY_MS = 500;

function say(text = ''): void {
  process.stdout.write(`${text}\n`);
}

/** The upper bound of the bucket holding the `q`-quantile of `histogram`. */
function quantile(histogram: Log2Histogram, q: number): number {
  const total = histogram.reduce((a, b) => a + b, 0);
  let seen = 0;
  for (let i = 0; i < histogram.length; i++) {
    seen += histogram[i]!;
    if (seen > 0 && seen >= q * total) return 2 ** i;
  }
  return Number.NaN;
}

/** One line: what happened since `before`. */
function summary(now: WalStats, before: WalStats, seconds: number, slowest: number): string {
  const appends = now.appends - before.appends;
  const fsyncs = now.fsyncs - before.fsyncs;
  return [
    `${(appends / seconds).toFixed(0).padStart(7)} appends/s`,
    `${(fsyncs / seconds).toFixed(0).padStart(6)} fsyncs/s`,
    `${(fsyncs === 0 ? 0 : appends / fsyncs).toFixed(1).padStart(5)} appends/fsync`,
    `fsync p50 ≤ ${quantile(now.fsyncMicros, 0.5)} µs, p99 ≤ ${quantile(now.fsyncMicros, 0.99)} µs`,
    `slowest ${slowest.toFixed(2)} ms`,
    `${now.waiters} waiting`,
  ].join(' | ');
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'wal-observe-'));
  let slowest = 0;
  const onCommit = (message: unknown): void => {
    const { syncMs } = message as CommitEvent;
    if (syncMs > slowest) slowest = syncMs;
  };
  const onRecovery = (message: unknown): void => {
    const { report } = message as RecoveryEvent;
    say(`wal:recovery  ${JSON.stringify(report)}`);
  };
  const onTruncate = (message: unknown): void => {
    const { side, lsn, head, tail } = message as TruncateEvent;
    say(`wal:truncate  ${side} ${lsn}: the log is now [${head}, ${tail})`);
  };
  diagnosticsChannel.subscribe(CHANNELS.commit, onCommit);
  diagnosticsChannel.subscribe(CHANNELS.recovery, onRecovery);
  diagnosticsChannel.subscribe(CHANNELS.truncate, onTruncate);
  try {
    const wal = await Wal.open(join(dir, 'log'));
    const payload = new Uint8Array(100);
    const until = Date.now() + RUN_MS;
    const writer = async (): Promise<void> => {
      while (Date.now() < until) await wal.append(payload, { wait: 'durable' });
    };
    let before = wal.stats();
    let last = performance.now();
    const timer = setInterval(() => {
      const now = wal.stats();
      const at = performance.now();
      say(summary(now, before, (at - last) / 1000, slowest));
      before = now;
      last = at;
      slowest = 0;
    }, EVERY_MS);
    await Promise.all(Array.from({ length: WRITERS }, writer));
    clearInterval(timer);
    const total = wal.stats();
    say(
      `total: ${total.appends} appends, ${total.fsyncs} fsyncs, ${total.syncedBytes} bytes made durable`,
    );
    await wal.truncateBefore(wal.tail);
    await wal.close();
    const again = await Wal.open(join(dir, 'log'));
    await again.close();
  } finally {
    diagnosticsChannel.unsubscribe(CHANNELS.commit, onCommit);
    diagnosticsChannel.unsubscribe(CHANNELS.recovery, onRecovery);
    diagnosticsChannel.unsubscribe(CHANNELS.truncate, onTruncate);
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
