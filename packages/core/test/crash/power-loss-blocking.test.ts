/**
 * Power loss at every step of the log's workloads with blocking commits
 * (`blockingSync`, docs/DURABILITY.md §2.1): the writes and fdatasyncs run on
 * the calling thread (`pwriteSync`, `fdatasyncSync`) whenever the store can,
 * and asynchronously otherwise. The workloads are those of
 * `power-loss.test.ts` (appends, segment rolls and committers sharing a
 * flush in blocking mode are there), run here with `blockingSync: true` and
 * fewer states per step, each checking that the log did write and sync on
 * the calling thread; and the fallback while `truncateBefore` holds the
 * store gate: syncs asked for meanwhile (durable waits, durable appends,
 * `sync()`) go the asynchronous way, the writes held meanwhile then run on
 * the calling thread, and every crash state keeps what they acknowledged.
 */
import { strict as assert } from 'node:assert';
import type { Fs } from '@wal/store';
import type { CrashFs, CrashFsOperation } from '@wal/store/testing';
import type { WalOptions } from '../../src/index.js';
import { pattern, tick } from '../helpers.js';
import { DIR, endOf, type LogRun, newTally, type Rec, LogRun as Run, report } from './harness.js';
import {
  BelowHead,
  BURSTS,
  checkpoints,
  close,
  fileLayout,
  printTotals,
  type Total,
  truncateAfter,
  truncateBefore,
  workloadRunner,
} from './workloads.js';

/**
 * Concurrent bursts reordered per workload: one in CI (the default mode's
 * suite explores more of the same workloads); `WAL_ORDER_BURSTS` as there.
 */
const BURSTS_HERE = process.env.WAL_ORDER_BURSTS === undefined ? 1 : BURSTS;

const BLOCKING: WalOptions = { blockingSync: true };
const FILE: WalOptions = { blockingSync: true, layout: 'file' };

/** Whether `path` is a data file of the log: a segment, or the single file. */
const isData = (path: string | undefined): boolean =>
  path?.endsWith('.wal') === true || path === DIR;

/** Calls of `call` on the log's data files, among `run`'s file-system calls from `from` on. */
function dataCalls(run: LogRun, call: string, from = 0): number {
  return run.fs.operations.slice(from).filter((op) => op.call === call && isData(op.path)).length;
}

/** `body`, then a check that the log wrote and synced its data on the calling thread. */
function blocking(body: (run: LogRun) => Promise<void>, min = 5): (run: LogRun) => Promise<void> {
  return async (run) => {
    await body(run);
    const writes = dataCalls(run, 'pwriteSync');
    const syncs = dataCalls(run, 'fdatasyncSync');
    assert.ok(writes >= min, `${writes} synchronous writes`);
    assert.ok(syncs >= min, `${syncs} synchronous fdatasyncs`);
  };
}

/**
 * A file system whose calls matching a predicate wait, once armed, until
 * released: `hold(match)` arms one, `reached` resolves when a call met it.
 */
class Holds {
  #holds: {
    match: (call: string, path: string) => boolean;
    reached: () => void;
    gate: Promise<void>;
  }[] = [];

  hold(match: (call: string, path: string) => boolean): {
    reached: Promise<void>;
    release: () => void;
  } {
    let reached!: () => void;
    let release!: () => void;
    const reachedPromise = new Promise<void>((resolve) => {
      reached = resolve;
    });
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    this.#holds.push({ match, reached, gate });
    return { reached: reachedPromise, release };
  }

  wrap(fs: CrashFs): Fs {
    return new Proxy(fs, {
      get: (target, property) => {
        const value = Reflect.get(target, property, target) as unknown;
        if (typeof value !== 'function') return value;
        const bound = (value as (...args: unknown[]) => unknown).bind(target);
        return (...args: unknown[]) => {
          const path = typeof args[0] === 'string' ? args[0] : '';
          const index = this.#holds.findIndex((h) => h.match(String(property), path));
          if (index < 0) return bound(...args);
          const [held] = this.#holds.splice(index, 1);
          held!.reached();
          return held!.gate.then(() => bound(...args));
        };
      },
    }) as Fs;
  }
}

describe('power loss (log over CrashFs), blocking commits (blockingSync)', function () {
  this.timeout(120_000);
  const totals: Total[] = [];
  const runWorkload = workloadRunner(totals);
  after(() => printTotals(totals, 'power loss (log, blockingSync)'));

  it('truncateAfter: the cut is durable, cut records never resurface, LSNs reused', async () => {
    await runWorkload(
      'truncateAfter (blockingSync)',
      blocking(truncateAfter),
      6,
      BLOCKING,
      undefined,
      BURSTS_HERE,
    );
  });

  it('truncateBefore: head-file replacement and segment deletion', async () => {
    await runWorkload(
      'truncateBefore (blockingSync)',
      blocking(truncateBefore),
      6,
      BLOCKING,
      undefined,
      BURSTS_HERE,
    );
  });

  it('checkpoints beside writers: truncateBefore with durable appends, waits and syncs at every step, segmented and single-file', async () => {
    const below = new BelowHead();
    const segmented = 'checkpoints (segmented, blockingSync)';
    await runWorkload(
      segmented,
      blocking(checkpoints),
      2,
      BLOCKING,
      below.segmented(segmented),
      BURSTS_HERE,
    );
    const single = 'checkpoints (file layout, blockingSync)';
    await runWorkload(single, blocking(checkpoints), 2, FILE, below.single(single), BURSTS_HERE);
    below.assertNone();
  });

  it('close: the final sync and the durable-hint replacement; reopen', async () => {
    await runWorkload(
      'close (blockingSync)',
      blocking(close, 2),
      6,
      BLOCKING,
      undefined,
      BURSTS_HERE,
    );
  });

  it('single-file layout: appends, both truncations, close (FileStore over CrashFs)', async () => {
    await runWorkload(
      'file layout (blockingSync)',
      blocking(fileLayout),
      4,
      FILE,
      undefined,
      BURSTS_HERE,
    );
  });

  it('while truncateBefore holds the store gate, syncs go the asynchronous way (held writes then run on the calling thread); every state keeps what they acknowledged', async () => {
    const t0 = Date.now();
    const tally = newTally();
    const seen = new Set<string>();
    const observed: [string, unknown][] = [];
    for (const [layout, walOptions] of [
      ['segmented', BLOCKING],
      ['file', FILE],
    ] as const) {
      const holds = new Holds();
      const name = `gate fallback (${layout}, blockingSync)`;
      const run = new Run(name, {
        perStep: 4,
        seed: 50,
        walOptions,
        wrapFs: (fs) => holds.wrap(fs),
      });
      await run.open();
      for (let i = 0; i < 4; i++) {
        await run.step(`append #${i}`, () => run.appendDurable(pattern(300, 60 + i)));
      }
      const lsn = run.model.records[2]!.lsn;
      // The hint's update (before the gate closes) and the store's own
      // truncateBefore (the gate closed), held until released.
      const hint = holds.hold((call, path) => call === 'open' && path.endsWith('meta.tmp'));
      const store = holds.hold(
        (call, path) => call === 'open' && (path.endsWith('head.tmp') || path.endsWith('meta.tmp')),
      );
      // Operation counts: when the gate closed, when it opened, at the
      // first acknowledgement; and the clock then.
      const at = { closed: 0, opened: 0, acked: 0, ackedClock: 0 };
      let ackedWhileClosed = false;
      const ack = (): void => {
        if (at.closed !== 0 && at.opened === 0) ackedWhileClosed = true;
        if (at.acked !== 0) return;
        at.acked = run.fs.operations.length;
        at.ackedClock = run.fs.clock;
      };
      run.model.heading(lsn);
      await run.step(`truncateBefore(${lsn}), the store gate held`, async () => {
        const truncation = run.w.truncateBefore(lsn);
        await hint.reached;
        // The gate is open: written on the calling thread, not synced.
        const written: Rec[] = [];
        for (let i = 0; i < 3; i++) {
          const payload = pattern(40 + i, 70 + i);
          const lsn = run.appendBuffered(payload);
          await run.w.waitFor(lsn, 'written');
          written.push({ lsn, payload });
        }
        hint.release();
        await store.reached;
        // The gate is closed (the store's truncateBefore runs): a durable
        // wait for written bytes, durable appends and a sync.
        at.closed = run.fs.operations.length;
        const last = written.at(-1)!;
        const acks = [
          run.w.waitFor(last.lsn, 'durable').then(() => {
            ack();
            run.model.acknowledged(endOf(last));
          }),
          run.appendDurable(pattern(50, 80)).then(ack),
        ];
        const tail = run.w.tail;
        acks.push(
          run.w.sync().then(() => {
            ack();
            run.model.acknowledged(tail);
          }),
        );
        acks.push(run.appendDurable(pattern(60, 81)).then(ack));
        for (let i = 0; i < 5; i++) await tick();
        at.opened = run.fs.operations.length;
        store.release();
        await truncation;
        await Promise.all(acks);
      });
      run.model.headed(lsn);
      run.snap(`truncateBefore(${lsn}) (model updated)`);
      await run.step('append after', () => run.appendDurable(pattern(70, 90)));
      await run.close();
      await run.check(tally, seen);
      // What the log did, checked once every crash state was.
      const data = (from: number, to: number): CrashFsOperation[] =>
        run.fs.operations.slice(from, to).filter((op) => isData(op.path) && op.call !== 'syncDir');
      observed.push([
        layout,
        {
          ackedWhileClosed,
          callsWhileClosed: data(at.closed, at.opened).map((op) => op.call),
          // The writes held meanwhile run on the calling thread once it opens.
          writesBeforeAck: [
            ...new Set(
              data(at.opened, at.acked)
                .filter((op) => op.call.startsWith('pwrite'))
                .map((op) => op.call),
            ),
          ],
          // The fallback: an asynchronous fdatasync of the data, settled
          // before the first acknowledgement; none on the calling thread.
          syncsBeforeAck: data(at.opened, at.acked)
            .filter((op) => op.call === 'fdatasync' || op.call === 'fdatasyncSync')
            .map(
              (op) =>
                `${op.call}${(op.settledAt ?? Number.POSITIVE_INFINITY) <= at.ackedClock ? '' : ' (unsettled)'}`,
            ),
        },
      ]);
    }
    totals.push({ name: 'gate fallback', tally, ms: Date.now() - t0, reordered: 0 });
    report('gate fallback (blockingSync)', tally);
    const fallback = {
      ackedWhileClosed: false,
      callsWhileClosed: [],
      writesBeforeAck: ['pwriteSync'],
      syncsBeforeAck: ['fdatasync'],
    };
    assert.deepEqual(observed, [
      ['segmented', fallback],
      ['file', fallback],
    ]);
  });
});
