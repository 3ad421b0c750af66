// commitDelayMs and the calls that need everything durable now: close(),
// sync(), truncateAfter() and truncateBefore() do not wait out the delay of a flush pending
// for durable waits (docs/DURABILITY.md §2), and what they promise durable
// survives a power loss. Plain durable waits still wait for it.

import assert from 'node:assert/strict';
import { CrashFs, FaultFs } from '@wal/store/testing';
import type { Wal, WalOptions } from '../../src/index.js';
import { bytes, durableOnly, rejectsCode, tick, track } from '../helpers.js';
import { appendAll, collect, segmented } from './fixtures.js';

/** A commit delay no test waits out: a call taking a quarter of it has waited for it. */
const DELAY_MS = 4000;
const PROMPT_MS = DELAY_MS / 4;

const modes: ReadonlyArray<{ name: string; options: WalOptions }> = [
  { name: 'write + fdatasync', options: { durableWrites: false } },
  { name: 'durable writes', options: {} },
  { name: 'blockingSync', options: { blockingSync: true } },
];

/**
 * A log with a commit delay holding records [100, 5000, 300] written (not
 * yet durable) and a durable wait pending for each, the delay not run out.
 */
async function pendingDelay(options: WalOptions): Promise<{
  fs: CrashFs;
  wal: Wal;
  lsns: number[];
  payloads: Uint8Array[];
  waits: ReturnType<typeof track>[];
}> {
  const fs = new CrashFs();
  const wal = await segmented(fs, { ...options, commitDelayMs: DELAY_MS });
  const { lsns, payloads } = appendAll(wal, [100, 5000, 300]);
  // Written first, so that no durable write can make them durable: the
  // group commit's fdatasync must, after its delay.
  await wal.waitFor(lsns.at(-1)!, 'written');
  const waits = lsns.map((lsn) => track(wal.waitFor(lsn, 'durable')));
  for (let i = 0; i < 5; i++) await tick();
  assert.ok(
    waits.every((wait) => wait.state === 'pending'),
    'the durable waits wait out the commit delay',
  );
  assert.ok(wal.durable <= lsns[0]!);
  return { fs, wal, lsns, payloads, waits };
}

/** The records a power loss right now leaves, reopened. */
async function afterPowerLoss(fs: CrashFs): Promise<{ lsn: number; payload: Uint8Array }[]> {
  const again = await segmented(durableOnly(fs));
  try {
    return (await collect(again.iterate())).map(({ lsn, payload }) => ({ lsn, payload }));
  } finally {
    await again.close();
  }
}

async function timed(call: Promise<unknown>): Promise<number> {
  const started = performance.now();
  await call;
  return performance.now() - started;
}

describe('Wal: calls that need durability now, with commitDelayMs', () => {
  for (const { name, options } of modes) {
    describe(name, () => {
      it('close() cuts the pending delay short; every record appended before it survives a power loss', async () => {
        const { fs, wal, lsns, payloads, waits } = await pendingDelay(options);
        // One more, staged when close() is called.
        const last = appendAll(wal, [700]);
        const ms = await timed(wal.close());
        assert.ok(ms < PROMPT_MS, `close() took ${ms.toFixed(0)} ms with a ${DELAY_MS} ms delay`);
        await tick();
        assert.deepEqual(
          waits.map((wait) => wait.state),
          ['resolved', 'resolved', 'resolved'],
        );
        assert.deepEqual(await afterPowerLoss(fs), [
          ...lsns.map((lsn, i) => ({ lsn, payload: payloads[i]! })),
          { lsn: last.lsns[0]!, payload: last.payloads[0]! },
        ]);
      });

      it('close() after a failed write cuts the delay of the flush of the records before it short', async () => {
        const crash = new CrashFs();
        const fs = new FaultFs(crash);
        const wal = await segmented(fs, { ...options, preallocate: 0, commitDelayMs: DELAY_MS });
        const payload = bytes(100, 1);
        const lsn = wal.append(payload);
        await wal.waitFor(lsn, 'written');
        fs.inject({ method: options.blockingSync ? 'pwriteSync' : 'pwrite', fault: 'EIO' });
        const waited = track(wal.waitFor(lsn, 'durable'));
        // Not awaited: a blocking log may hand its rejection on only after
        // the durable wait made before it (docs/DURABILITY.md §2.1).
        const failed = wal.append(bytes(100, 2), { wait: 'written' });
        while (wal.failure === undefined) await tick();
        assert.equal(waited.state, 'pending', 'the durable wait waits out the commit delay');
        const ms = await timed(wal.close());
        assert.ok(ms < PROMPT_MS, `close() took ${ms.toFixed(0)} ms with a ${DELAY_MS} ms delay`);
        await rejectsCode(failed, 'WAL_WRITE_FAILED');
        assert.equal(waited.state, 'resolved');
        assert.deepEqual(await afterPowerLoss(crash), [{ lsn, payload }]);
      });

      it('sync() cuts the pending delay short; what it covers survives a power loss', async () => {
        const { fs, wal, lsns, payloads, waits } = await pendingDelay(options);
        const ms = await timed(wal.sync());
        assert.ok(ms < PROMPT_MS, `sync() took ${ms.toFixed(0)} ms with a ${DELAY_MS} ms delay`);
        await tick();
        assert.deepEqual(
          waits.map((wait) => wait.state),
          ['resolved', 'resolved', 'resolved'],
        );
        assert.equal(wal.durable, wal.tail);
        assert.deepEqual(
          await afterPowerLoss(fs),
          lsns.map((lsn, i) => ({ lsn, payload: payloads[i]! })),
        );
        await wal.close();
      });

      it('truncateBefore() cuts the pending delay short, and so do a close() and a truncateAfter() queued behind it', async () => {
        for (const then of ['close', 'truncateAfter'] as const) {
          const { fs, wal, lsns, payloads, waits } = await pendingDelay(options);
          const cut = wal.truncateBefore(lsns[1]!);
          const next = then === 'close' ? wal.close() : wal.truncateAfter(lsns[2]!);
          const ms = await timed(Promise.all([cut, next]));
          assert.ok(
            ms < PROMPT_MS,
            `truncateBefore() and ${then}() took ${ms.toFixed(0)} ms with a ${DELAY_MS} ms delay`,
          );
          await tick();
          assert.deepEqual(
            waits.map((wait) => wait.state),
            ['resolved', 'resolved', 'resolved'],
          );
          assert.deepEqual(
            await afterPowerLoss(fs),
            lsns.slice(1).map((lsn, i) => ({ lsn, payload: payloads[i + 1]! })),
            then,
          );
          if (then !== 'close') await wal.close();
        }
      });

      it('truncateAfter() cuts the pending delay short; the cut and the records kept survive a power loss', async () => {
        const { fs, wal, lsns, payloads, waits } = await pendingDelay(options);
        const ms = await timed(wal.truncateAfter(lsns[1]!));
        assert.ok(
          ms < PROMPT_MS,
          `truncateAfter() took ${ms.toFixed(0)} ms with a ${DELAY_MS} ms delay`,
        );
        await tick();
        assert.deepEqual(
          waits.map((wait) => wait.state),
          ['resolved', 'resolved', 'resolved'],
          'every record was durable before the cut',
        );
        assert.deepEqual(await afterPowerLoss(fs), [
          { lsn: lsns[0]!, payload: payloads[0]! },
          { lsn: lsns[1]!, payload: payloads[1]! },
        ]);
        await wal.close();
      });
    });
  }
});
