// A blocking log's waits let the event loop turn (loop-turns.ts; README,
// "Blocking commits"): its writes and fdatasyncs run on the calling thread,
// so without it a loop of awaited appends would hold timers, I/O callbacks
// and a consumer's background work until it ends.

import assert from 'node:assert/strict';
import { CrashFs, FaultFs } from '@wal/store/testing';
import { Wal } from '../../src/index.js';
import { bytes, tick, track } from '../helpers.js';
import { GatedStore, single } from './fixtures.js';

/**
 * Runs `writer` (given a `running()` check to loop on) while a 1 ms timer,
 * set again each time it fires, tries to fire `times` times; resolves with
 * how often it did. The writer stops once it has, or on its own bound.
 */
async function timerFires(
  writer: (running: () => boolean) => Promise<void>,
  times = 3,
): Promise<number> {
  let fired = 0;
  let timer: NodeJS.Timeout | undefined;
  const arm = (): void => {
    timer = setTimeout(() => {
      fired++;
      if (fired < times) arm();
    }, 1);
  };
  arm();
  try {
    await writer(() => fired < times);
  } finally {
    clearTimeout(timer);
  }
  return fired;
}

/** One awaited step of a writer's loop, in each form a wait takes. */
const STEPS: ReadonlyArray<readonly [string, (wal: Wal) => Promise<unknown>]> = [
  ['durable appends', (wal) => wal.append(bytes(100), { wait: 'durable' })],
  ['written appends', (wal) => wal.append(bytes(100), { wait: 'written' })],
  ['durable batches', (wal) => wal.appendBatch([bytes(40), bytes(60)], { wait: 'durable' })],
  ['written batches', (wal) => wal.appendBatch([bytes(40), bytes(60)], { wait: 'written' })],
  ['durable waitFor', (wal) => wal.waitFor(wal.append(bytes(100)), 'durable')],
  ['written waitFor', (wal) => wal.waitFor(wal.append(bytes(100)), 'written')],
  [
    'syncs',
    (wal) => {
      wal.append(bytes(100));
      return wal.sync();
    },
  ],
];

/** Counts the turns of the event loop (one `setImmediate` each) until `stop()`. */
function turnCounter(): { readonly turns: number; stop(): void } {
  let turns = 0;
  let stopped = false;
  const count = (): void => {
    turns++;
    if (!stopped) setImmediate(count);
  };
  setImmediate(count);
  return {
    get turns() {
      return turns;
    },
    stop() {
      stopped = true;
    },
  };
}

/** Opens a single-file log (no segment to create: every write and sync runs on this thread). */
const blocking = (fs: CrashFs | FaultFs = new CrashFs()): Promise<Wal> =>
  single(fs, { blockingSync: true, stagingLimit: 1024 * 1024 });

/** Counts the fdatasyncs run on the calling thread. */
class CountingFs extends CrashFs {
  syncsNow = 0;
  override fdatasyncSync(file: Parameters<CrashFs['fdatasyncSync']>[0]): void {
    this.syncsNow++;
    super.fdatasyncSync(file);
  }
}

describe('Wal: a blocking log lets the event loop turn', () => {
  for (const [name, step] of STEPS) {
    it(`blockingSync: a timer fires again and again while a loop of awaited ${name} goes on`, async () => {
      const fs = new CountingFs();
      const wal = await blocking(fs);
      try {
        await step(wal);
        const syncsBefore = fs.syncsNow;
        let steps = 0;
        const fired = await timerFires(async (running) => {
          while (running() && steps < 50_000) {
            await step(wal);
            steps++;
          }
        });
        assert.equal(fired, 3, `the timer fired ${fired} times in ${steps} ${name}`);
        if (name.startsWith('durable') || name === 'syncs') {
          // Each step did run its fdatasync on this thread, before it resolved.
          assert.ok(fs.syncsNow - syncsBefore >= steps, 'blocking syncs');
        }
      } finally {
        await wal.close();
      }
    });
  }

  for (const level of ['written', 'durable'] as const) {
    it(`blockingSync: a timer fires again and again while two loops of awaited ${level} appends go on together`, async () => {
      const wal = await blocking();
      try {
        let appends = 0;
        const fired = await timerFires(async (running) => {
          const loop = async (): Promise<void> => {
            while (running() && appends < 50_000) {
              await wal.append(bytes(100), { wait: level });
              appends++;
            }
          };
          await Promise.all([loop(), loop()]);
        });
        assert.equal(fired, 3, `the timer fired ${fired} times in ${appends} appends`);
      } finally {
        await wal.close();
      }
    });

    it(`blockingSync: a timer fires again and again while a writer keeps one ${level} append ahead of the one it awaits`, async () => {
      const wal = await blocking();
      try {
        let appends = 0;
        const fired = await timerFires(async (running) => {
          let ahead = wal.append(bytes(100), { wait: level });
          while (running() && appends < 50_000) {
            const next = wal.append(bytes(100), { wait: level });
            await ahead;
            ahead = next;
            appends++;
          }
          await ahead;
        });
        assert.equal(fired, 3, `the timer fired ${fired} times in ${appends} appends`);
      } finally {
        await wal.close();
      }
    });
  }

  it('blockingSync: committers released together still share one write and one fdatasync, turns of the event loop included', async () => {
    const fs = new CountingFs();
    const wal = await blocking(fs);
    try {
      await wal.append(bytes(100), { wait: 'durable' });
      const syncsBefore = fs.syncsNow;
      let commits = 0;
      const loop = turnCounter();
      // Until the loop has turned 11 times (bounded, should it never turn):
      // a count, not a time window, so a busy machine only makes it longer.
      const committer = async (): Promise<void> => {
        while (loop.turns <= 10 && commits < 200_000) {
          await wal.append(bytes(100), { wait: 'durable' });
          commits++;
        }
      };
      try {
        await Promise.all(Array.from({ length: 64 }, committer));
      } finally {
        loop.stop();
      }
      const syncs = fs.syncsNow - syncsBefore;
      // Released by one flush, the 64 resume in one wave and append together:
      // held for a turn one by one, each would get a flush of its own.
      assert.ok(commits / syncs > 32, `${commits} commits in ${syncs} fdatasyncs`);
      assert.ok(loop.turns > 10, `the event loop turned ${loop.turns} times`);
    } finally {
      await wal.close();
    }
  });

  it('blockingSync: a wait held for a turn settles only once its own wait did, however many turns pass', async () => {
    /** Writes go through the asynchronous path, held by the gate. */
    class AsyncGatedStore extends GatedStore {
      override writeNow(): boolean {
        return false;
      }
    }
    const store = new AsyncGatedStore();
    const wal = await Wal.open(store, { blockingSync: true });
    try {
      // A turn is due: the next wait is held for it.
      await new Promise((resolve) => setTimeout(resolve, 5));
      store.hold();
      // A durable wait reads the clock (a written one, every 16th).
      const first = wal.append(bytes(100), { wait: 'durable' });
      const held = track(first);
      const later = track(wal.append(bytes(100), { wait: 'written' }));
      for (let i = 0; i < 5; i++) await tick();
      assert.equal(held.settled, false, 'resolved before its record was written');
      assert.equal(later.settled, false, 'a later wait settled first');
      assert.equal(wal.written, 0);
      store.release();
      const lsn = await first;
      assert.ok(wal.durable > lsn);
      await tick();
      assert.equal(later.state, 'resolved');
    } finally {
      store.release();
      await wal.close();
    }
  });

  it('blockingSync: a timer waits for at most a durable append or two when each fdatasync outlasts the turn interval', async () => {
    /** Each fdatasync takes 3 ms, on this thread: more than the 1 ms between turns. */
    class SlowSyncFs extends CrashFs {
      override fdatasyncSync(file: Parameters<CrashFs['fdatasyncSync']>[0]): void {
        const until = performance.now() + 3;
        while (performance.now() < until);
        super.fdatasyncSync(file);
      }
    }
    const wal = await blocking(new SlowSyncFs());
    try {
      await wal.append(bytes(100), { wait: 'durable' });
      let appends = 0;
      const fired = await timerFires(async (running) => {
        while (running() && appends < 40) {
          await wal.append(bytes(100), { wait: 'durable' });
          appends++;
        }
      }, 1);
      // Counted every 16 waits instead of read at each durable one, the clock
      // would let 16 fdatasyncs pass.
      assert.ok(fired === 1 && appends <= 3, `the timer waited through ${appends} durable appends`);
    } finally {
      await wal.close();
    }
  });

  it('blockingSync: concurrent waits resolve in call order, turns of the event loop included', async () => {
    const wal = await blocking();
    const loop = turnCounter();
    try {
      // Rounds of 32 concurrent appends until the loop has turned 11 times
      // (bounded): the wait that takes a turn (about every millisecond, the
      // clock read every 16 written waits) falls mid-round most of the time.
      let rounds = 0;
      while ((loop.turns <= 10 || rounds <= 10) && rounds < 20_000) {
        const level = rounds % 2 === 0 ? 'written' : 'durable';
        const order: number[] = [];
        const lsns = await Promise.all(
          Array.from({ length: 32 }, (_, i) =>
            wal.append(bytes(20, i), { wait: level }).then((lsn) => {
              order.push(i);
              return lsn;
            }),
          ),
        );
        assert.deepEqual(
          order,
          Array.from({ length: 32 }, (_, i) => i),
          `round ${rounds} (${level})`,
        );
        // Only the wait was paced: every record is written (and, when asked, durable).
        assert.ok(wal.written > lsns[31]!);
        if (level === 'durable') assert.ok(wal.durable > lsns[31]!);
        rounds++;
      }
      assert.ok(rounds > 10, `only ${rounds} rounds`);
      assert.ok(loop.turns > 10, `the event loop turned ${loop.turns} times`);
    } finally {
      loop.stop();
      await wal.close();
    }
  });

  it('blockingSync: a failure does not overtake an earlier wait held for its turn', async () => {
    const fs = new FaultFs(new CrashFs());
    const wal = await blocking(fs);
    try {
      // A turn is due: the first wait takes it.
      await new Promise((resolve) => setTimeout(resolve, 5));
      const settled: string[] = [];
      const first = wal.append(bytes(100), { wait: 'durable' }).then(
        () => settled.push('first resolved'),
        (error: { code?: string }) => settled.push(`first rejected ${error.code}`),
      );
      // Its write and fdatasync run in microtasks after the append; it waits for its turn.
      for (let i = 0; i < 20; i++) await null;
      assert.ok(wal.durable > 0, 'the first record is durable');
      fs.inject({ method: 'pwriteSync' });
      const second = wal.append(bytes(100), { wait: 'written' }).then(
        () => settled.push('second resolved'),
        (error: { code?: string }) => settled.push(`second rejected ${error.code}`),
      );
      await Promise.all([first, second]);
      assert.deepEqual(settled, ['first resolved', 'second rejected WAL_WRITE_FAILED']);
    } finally {
      await wal.close().catch(() => {});
    }
  });

  it('blockingSync: an aborted wait held for its turn rejects at once, and later waits still take turns', async () => {
    const wal = await blocking();
    try {
      await new Promise((resolve) => setTimeout(resolve, 5));
      const abort = new AbortController();
      const held = wal.append(bytes(100), { wait: 'durable', signal: abort.signal });
      for (let i = 0; i < 20; i++) await null;
      assert.ok(wal.durable > 0, 'the record is durable');
      abort.abort();
      let turned = false;
      setImmediate(() => {
        turned = true;
      });
      await assert.rejects(held, { name: 'AbortError' });
      assert.equal(turned, false, 'the abort waited for the turn');
      let appends = 0;
      const fired = await timerFires(async (running) => {
        while (running() && appends < 50_000) {
          await wal.append(bytes(100), { wait: 'durable' });
          appends++;
        }
      });
      assert.equal(fired, 3, `the timer fired ${fired} times in ${appends} appends`);
    } finally {
      await wal.close();
    }
  });
});
