import assert from 'node:assert/strict';
import { type FlushReport, GroupCommit, type GroupCommitOptions } from '@wal/commit';
import { BusyError, FailedError, isArgumentError, isWalError, WriteFailedError } from '@wal/errors';
import { drainMicrotasks, FakeSync, observe, tick } from './fake-sync.js';

function setup(options: Partial<GroupCommitOptions> = {}): { commit: GroupCommit; fake: FakeSync } {
  const fake = new FakeSync();
  const commit = new GroupCommit({ sync: fake.sync, start: 0, ...options });
  fake.commit = commit;
  return { commit, fake };
}

function assertOutOfRange(error: unknown): true {
  assert.ok(error instanceof RangeError, `expected a RangeError, got ${String(error)}`);
  assert.ok(isArgumentError(error, 'ERR_OUT_OF_RANGE'));
  return true;
}

describe('GroupCommit: the written watermark', () => {
  it('advances in order (reference: in-order completion advances committed)', () => {
    const { commit } = setup();
    commit.reserve(25);
    commit.markWritten(0, 10);
    assert.equal(commit.written, 10);
    commit.markWritten(10, 25);
    assert.equal(commit.written, 25);
    assert.equal(commit.parkedCompletions, 0);
  });

  it('holds an out-of-order completion until the gap fills (reference)', () => {
    const { commit } = setup();
    commit.reserve(25);
    commit.markWritten(10, 25);
    assert.equal(commit.written, 0);
    assert.equal(commit.parkedCompletions, 1);
    commit.markWritten(0, 10);
    assert.equal(commit.written, 25);
    assert.equal(commit.parkedCompletions, 0);
  });

  it('merges a chain of parked completions and stops at the next gap', () => {
    const { commit } = setup();
    commit.reserve(60);
    commit.markWritten(40, 50);
    commit.markWritten(20, 30);
    commit.markWritten(10, 20);
    assert.equal(commit.parkedCompletions, 3);
    commit.markWritten(0, 10);
    assert.equal(commit.written, 30);
    assert.equal(commit.parkedCompletions, 1);
    commit.markWritten(30, 40);
    assert.equal(commit.written, 50);
    commit.markWritten(50, 60);
    assert.equal(commit.written, 60);
    assert.equal(commit.parkedCompletions, 0);
    assert.equal(commit.durable, 0);
  });

  it('waitWritten resolves when the gap below the target fills, and at once when written', async () => {
    const { commit, fake } = setup();
    commit.reserve(30);
    const early = observe(commit.waitWritten(30));
    const middle = observe(commit.waitWritten(20));
    commit.markWritten(10, 30);
    await drainMicrotasks();
    assert.equal(early.state, 'pending');
    assert.equal(middle.state, 'pending');
    commit.markWritten(0, 10);
    await drainMicrotasks();
    assert.equal(early.state, 'resolved');
    assert.equal(middle.state, 'resolved');
    await commit.waitWritten(30);
    await commit.waitWritten(0);
    await tick();
    assert.equal(fake.calls.length, 0, 'waiting for written calls no sync');
  });

  it('keeps a waitWritten pending past a written target', async () => {
    const { commit } = setup();
    commit.reserve(30);
    const near = observe(commit.waitWritten(10));
    const far = observe(commit.waitWritten(30));
    commit.markWritten(0, 10);
    await drainMicrotasks();
    assert.equal(near.state, 'resolved');
    assert.equal(far.state, 'pending');
    commit.markWritten(10, 30);
    await drainMicrotasks();
    assert.equal(far.state, 'resolved');
  });
});

describe('GroupCommit: release order', () => {
  it('releases the waiters of one event in arrival order, whatever their targets', async () => {
    const { commit, fake } = setup({ gather: false });
    commit.reserve(40);
    const order: string[] = [];
    const wait = (name: string, promise: Promise<void>): void => {
      promise.then(() => order.push(name));
    };
    wait('w30', commit.waitWritten(30));
    wait('w10a', commit.waitWritten(10));
    wait('w20', commit.waitWritten(20));
    wait('w10b', commit.waitWritten(10));
    wait('w40', commit.waitWritten(40));
    wait('d30', commit.syncTo(30));
    wait('d10', commit.syncTo(10));
    wait('d20', commit.syncTo(20));
    commit.markWritten(0, 30);
    await drainMicrotasks();
    assert.deepEqual(order, ['w30', 'w10a', 'w20', 'w10b']);
    fake.resolvePending();
    await drainMicrotasks();
    assert.deepEqual(order.slice(4), ['d30', 'd10', 'd20']);
    commit.markWritten(30, 40);
    await drainMicrotasks();
    assert.deepEqual(order.slice(7), ['w40']);
  });

  it('rejects every waiter past a failed write in arrival order, keeping the rest', async () => {
    const { commit } = setup();
    commit.reserve(50);
    const order: string[] = [];
    const wait = (name: string, promise: Promise<void>): void => {
      promise.then(
        () => order.push(name),
        (error: { code?: string }) => order.push(`${name}:${error.code}`),
      );
    };
    wait('w50', commit.waitWritten(50));
    wait('w20', commit.waitWritten(20));
    wait('w40', commit.waitWritten(40));
    wait('w10', commit.waitWritten(10));
    commit.markFailed(30, 50);
    await drainMicrotasks();
    assert.deepEqual(order, ['w50:WAL_WRITE_FAILED', 'w40:WAL_WRITE_FAILED']);
    commit.markWritten(0, 30);
    await drainMicrotasks();
    assert.deepEqual(order.slice(2), ['w20', 'w10']);
  });
});

describe('GroupCommit: syncTo and group commit', () => {
  it('makes a covered target durable, and a second syncTo needs no sync (reference)', async () => {
    const { commit, fake } = setup();
    commit.reserve(32);
    commit.markWritten(0, 32);
    const first = commit.syncTo(32);
    await tick();
    assert.equal(fake.calls.length, 1);
    assert.equal(fake.calls[0]?.written, 32);
    fake.resolvePending();
    await first;
    assert.equal(commit.durable, 32);
    await commit.syncTo(32);
    await commit.syncTo(5);
    await tick();
    assert.equal(fake.calls.length, 1);
  });

  it('resolves a target at or below durable at once, without calling sync', async () => {
    const { commit, fake } = setup({ start: 100 });
    const done = observe(commit.syncTo(100));
    await drainMicrotasks();
    assert.equal(done.state, 'resolved');
    await tick();
    assert.equal(fake.calls.length, 0);
  });

  it('calls no sync until some waiter target is written', async () => {
    const { commit, fake } = setup();
    commit.reserve(20);
    const waiting = observe(commit.syncTo(20));
    commit.markWritten(0, 10);
    await tick();
    assert.equal(fake.calls.length, 0, 'nothing the waiter needs is written yet');
    commit.markWritten(10, 20);
    await tick();
    assert.equal(fake.calls.length, 1);
    assert.equal(fake.calls[0]?.written, 20);
    fake.resolvePending();
    await drainMicrotasks();
    assert.equal(waiting.state, 'resolved');
  });

  it('flushes everything written when the sync starts, not just the target', async () => {
    const { commit, fake } = setup();
    commit.reserve(30);
    commit.markWritten(0, 10);
    commit.markWritten(10, 30);
    const done = commit.syncTo(10);
    await tick();
    fake.resolvePending();
    await done;
    assert.equal(commit.durable, 30);
    await commit.syncTo(30);
    assert.equal(fake.calls.length, 1);
  });

  it('serves a caller whose target was written when the running flush started; the next flush serves the rest', async () => {
    const { commit, fake } = setup();
    commit.reserve(30);
    commit.markWritten(0, 10);
    const first = observe(commit.syncTo(10));
    await tick();
    assert.equal(fake.calls.length, 1);
    // Joins the running flush: 10 was written when it started.
    const joins = observe(commit.syncTo(10));
    // Written after the flush started: must wait for the next one.
    commit.markWritten(10, 30);
    const next = observe(commit.syncTo(30));
    await tick();
    assert.equal(fake.calls.length, 1, 'at most one sync in flight');
    fake.resolvePending();
    await drainMicrotasks();
    assert.equal(first.state, 'resolved');
    assert.equal(joins.state, 'resolved');
    assert.equal(next.state, 'pending', 'bytes written after the sync started are not durable');
    assert.equal(commit.durable, 10);
    await tick();
    assert.equal(fake.calls.length, 2);
    assert.equal(fake.calls[1]?.written, 30);
    fake.resolvePending();
    await drainMicrotasks();
    assert.equal(next.state, 'resolved');
    assert.equal(commit.durable, 30);
  });

  it('shares one sync among many callers whose targets are written', async () => {
    const { commit, fake } = setup();
    commit.reserve(640);
    for (let i = 0; i < 64; i++) commit.markWritten(i * 10, i * 10 + 10);
    const all = Array.from({ length: 64 }, (_, i) => commit.syncTo(i * 10 + 10));
    await tick();
    assert.equal(fake.calls.length, 1);
    fake.resolvePending();
    await Promise.all(all);
    assert.equal(fake.calls.length, 1);
  });

  it('gathers: committers released in one turn share one sync', async () => {
    const { commit, fake } = setup();
    commit.reserve(40);
    // Four committers whose writes complete in this turn, each asking for durability at once.
    const commits = [0, 1, 2, 3].map((i) => {
      commit.markWritten(i * 10, i * 10 + 10);
      return commit.syncTo(i * 10 + 10);
    });
    assert.equal(fake.calls.length, 0, 'the flush waits one macrotask');
    await tick();
    assert.equal(fake.calls.length, 1);
    assert.equal(fake.calls[0]?.written, 40);
    fake.resolvePending();
    await Promise.all(commits);
    assert.equal(fake.calls.length, 1);
  });

  it('without gathering, the first committer of a turn syncs alone and the rest share the next sync', async () => {
    const { commit, fake } = setup({ gather: false });
    commit.reserve(40);
    const commits = [0, 1, 2, 3].map((i) => {
      commit.markWritten(i * 10, i * 10 + 10);
      return commit.syncTo(i * 10 + 10);
    });
    assert.equal(fake.calls.length, 1, 'the flush starts synchronously');
    assert.equal(fake.calls[0]?.written, 10);
    fake.resolvePending();
    await drainMicrotasks();
    assert.equal(fake.calls.length, 2, 'the next flush starts as soon as the first settles');
    assert.equal(fake.calls[1]?.written, 40);
    fake.resolvePending();
    await Promise.all(commits);
    assert.equal(fake.calls.length, 2);
  });

  it('without gathering, a write that completes for a waiting committer starts the flush at once', () => {
    const { commit, fake } = setup({ gather: false });
    commit.reserve(10);
    void commit.syncTo(10);
    assert.equal(fake.calls.length, 0);
    commit.markWritten(0, 10);
    assert.equal(fake.calls.length, 1);
  });

  it('delayMs waits before taking the batch, and committers arriving meanwhile join', async () => {
    const { commit, fake } = setup({ delayMs: 30 });
    commit.reserve(20);
    commit.markWritten(0, 10);
    const first = commit.syncTo(10);
    await tick();
    assert.equal(fake.calls.length, 0, 'a delayed flush does not start after one macrotask');
    commit.markWritten(10, 20);
    const second = commit.syncTo(20);
    await new Promise((resolve) => setTimeout(resolve, 60));
    assert.equal(fake.calls.length, 1);
    assert.equal(fake.calls[0]?.written, 20);
    fake.resolvePending();
    await Promise.all([first, second]);
    assert.equal(fake.calls.length, 1);
  });

  it('accepts a sync that returns a thenable or a plain resolved promise', async () => {
    let calls = 0;
    const commit = new GroupCommit({
      sync: async () => {
        calls++;
      },
      start: 0,
    });
    commit.reserve(10);
    commit.markWritten(0, 10);
    await commit.syncTo(10);
    assert.equal(calls, 1);
    assert.equal(commit.durable, 10);
  });
});

/** Timers alive in this process (a `delayMs` flush scheduled holds one). */
function timers(): number {
  return process.getActiveResourcesInfo().filter((kind) => kind === 'Timeout').length;
}

describe('GroupCommit: syncTo with delay: false', () => {
  it('starts a flush waiting out delayMs at once, covering every waiter written', async () => {
    const { commit, fake } = setup({ delayMs: 60_000 });
    commit.reserve(20);
    commit.markWritten(0, 10);
    const before = timers();
    const first = observe(commit.syncTo(10));
    assert.equal(timers(), before + 1, 'the flush waits out the delay');
    await tick();
    assert.equal(fake.calls.length, 0, 'the plain wait waits out the delay');
    commit.markWritten(10, 20);
    const armed = timers();
    const now = observe(commit.syncTo(20, { delay: false }));
    assert.equal(timers(), armed - 1, 'the delay timer is cleared');
    await tick();
    assert.equal(fake.calls.length, 1, 'the flush started after one macrotask of gathering');
    assert.equal(fake.calls[0]?.written, 20);
    fake.resolvePending();
    await drainMicrotasks();
    assert.deepEqual([first.state, now.state], ['resolved', 'resolved']);
    assert.equal(commit.durable, 20);
    assert.equal(commit.idle, true);
  });

  it('with gather: false, starts the flush inside the call', () => {
    const { commit, fake } = setup({ delayMs: 60_000, gather: false });
    commit.reserve(10);
    commit.markWritten(0, 10);
    void commit.syncTo(10);
    assert.equal(fake.calls.length, 0);
    void commit.syncTo(10, { delay: false });
    assert.equal(fake.calls.length, 1);
    fake.resolvePending();
  });

  it('keeps every flush undelayed while it is pending: one for a target written later, and the next after a running one', async () => {
    const { commit, fake } = setup({ delayMs: 60_000 });
    commit.reserve(30);
    const now = observe(commit.syncTo(30, { delay: false }));
    await tick();
    assert.equal(fake.calls.length, 0, 'nothing written: no flush');
    commit.markWritten(0, 10);
    await tick();
    assert.equal(fake.calls.length, 0, 'no waiter is written yet');
    commit.markWritten(10, 20);
    const plain = observe(commit.syncTo(20));
    await tick();
    assert.equal(fake.calls.length, 1, 'the flush for the plain waiter does not wait the delay');
    assert.equal(fake.calls[0]?.written, 20);
    commit.markWritten(20, 30);
    fake.resolvePending();
    await drainMicrotasks();
    assert.equal(plain.state, 'resolved');
    assert.equal(now.state, 'pending');
    await tick();
    assert.equal(fake.calls.length, 2, 'the next flush does not wait the delay either');
    assert.equal(fake.calls[1]?.written, 30);
    fake.resolvePending();
    await drainMicrotasks();
    assert.equal(now.state, 'resolved');
  });

  it('stops counting once it settled: later flushes wait out delayMs again', async () => {
    const { commit, fake } = setup({ delayMs: 60_000 });
    commit.reserve(30);
    // Released by a flush.
    commit.markWritten(0, 10);
    const served = observe(commit.syncTo(10, { delay: false }));
    await tick();
    fake.resolvePending();
    await drainMicrotasks();
    assert.equal(served.state, 'resolved');
    // Rejected by a failed write below its target.
    const poisoned = observe(commit.syncTo(30, { delay: false }));
    commit.markFailed(20, 30, new Error('EIO'));
    await drainMicrotasks();
    assert.equal(poisoned.state, 'rejected');
    commit.markWritten(10, 20);
    const before = timers();
    const plain = observe(commit.syncTo(20));
    assert.equal(timers(), before + 1, 'no undelayed wait is pending: the delay applies');
    await tick();
    assert.equal(fake.calls.length, 1, 'no flush after one macrotask');
    // Cut short, so that no timer outlives the test.
    const last = observe(commit.syncTo(20, { delay: false }));
    await tick();
    assert.equal(fake.calls.length, 2);
    fake.resolvePending();
    await drainMicrotasks();
    assert.deepEqual([plain.state, last.state], ['resolved', 'resolved']);
    assert.equal(commit.durable, 20);
  });

  it('resolves at once at or below durable, and rejects as syncTo does', async () => {
    const { commit, fake } = setup({ delayMs: 60_000, start: 10 });
    await commit.syncTo(10, { delay: false });
    await commit.syncTo(10, { delay: true });
    await commit.syncTo(10, {});
    assert.equal(fake.calls.length, 0);
    await assert.rejects(commit.syncTo(11, { delay: false }), assertOutOfRange);
    commit.reserve(20);
    commit.markFailed(15, 20, new Error('EIO'));
    await assert.rejects(commit.syncTo(20, { delay: false }), { code: 'WAL_WRITE_FAILED' });
  });

  it('rejects, never throws, options that are not valid', async () => {
    const { commit } = setup();
    commit.reserve(10);
    for (const [options, code] of [
      [null, 'ERR_INVALID_ARG_TYPE'],
      [false, 'ERR_INVALID_ARG_TYPE'],
      [{ delay: 0 }, 'ERR_INVALID_ARG_TYPE'],
      [{ delay: 'no' }, 'ERR_INVALID_ARG_TYPE'],
      [{ dealy: false }, 'ERR_INVALID_ARG_VALUE'],
    ] as const) {
      await assert.rejects(commit.syncTo(10, options as never), (error: unknown) => {
        assert.ok(error instanceof TypeError);
        assert.ok(isArgumentError(error, code), `${JSON.stringify(options)}: ${String(error)}`);
        return true;
      });
    }
    assert.equal(commit.waiters, 0);
  });
});

describe('GroupCommit: durable writes', () => {
  it('acknowledges a durable write without a sync', async () => {
    const reports: FlushReport[] = [];
    const { commit, fake } = setup({ onFlush: (report) => reports.push(report) });
    commit.reserve(10);
    const done = observe(commit.syncTo(10));
    commit.markDurable(0, 10, 0.5);
    await drainMicrotasks();
    assert.equal(done.state, 'resolved');
    assert.equal(commit.durable, 10);
    assert.equal(commit.written, 10);
    await tick();
    assert.equal(fake.calls.length, 0, 'no sync for bytes a durable write made durable');
    assert.deepEqual(reports, [{ start: 0, end: 10, waiters: 1, syncMs: 0.5, by: 'write' }]);
  });

  it('keeps the later of two durable writes unacknowledged while the earlier is pending', async () => {
    const { commit, fake } = setup();
    commit.reserve(20);
    const first = observe(commit.syncTo(10));
    const second = observe(commit.syncTo(20));
    commit.markDurable(10, 20);
    await tick();
    assert.equal(second.state, 'pending');
    assert.equal(commit.durable, 0);
    assert.equal(fake.calls.length, 0);
    commit.markDurable(0, 10);
    await drainMicrotasks();
    assert.equal(first.state, 'resolved');
    assert.equal(second.state, 'resolved');
    assert.equal(commit.durable, 20);
  });

  it('never acknowledges the later of two durable writes when the earlier fails, and latches', async () => {
    const { commit, fake } = setup();
    commit.reserve(20);
    const first = observe(commit.syncTo(10));
    const second = observe(commit.syncTo(20));
    commit.markDurable(10, 20);
    const cause = new Error('EIO');
    commit.markDurableFailed(0, 10, cause);
    await tick();
    for (const waiter of [first, second]) {
      assert.equal(waiter.state, 'rejected');
      assert.ok(waiter.error instanceof FailedError);
      assert.equal((waiter.error as FailedError).cause, cause);
    }
    assert.equal(commit.durable, 0);
    assert.equal(commit.failure?.cause, cause);
    assert.equal(commit.poisonedAt, 0);
    assert.equal(fake.calls.length, 0, 'no sync after the latch');
    await assert.rejects(commit.syncTo(0), FailedError);
  });

  it('a durable write above bytes written but not durable waits for a sync covering them', async () => {
    const { commit, fake } = setup();
    commit.reserve(20);
    commit.markWritten(0, 10);
    const done = observe(commit.syncTo(20));
    commit.markDurable(10, 20);
    await tick();
    assert.equal(done.state, 'pending');
    assert.equal(fake.calls.length, 1, 'the written bytes below still take a sync');
    assert.equal(fake.calls[0]!.written, 20);
    fake.resolvePending();
    await drainMicrotasks();
    assert.equal(done.state, 'resolved');
    assert.equal(commit.durable, 20);
  });

  it('a sync that ends after a durable write moved the watermark further never lowers it', async () => {
    const { commit, fake } = setup();
    commit.reserve(20);
    commit.markWritten(0, 10);
    const low = observe(commit.syncTo(10));
    await tick();
    assert.equal(fake.calls.length, 1);
    const high = observe(commit.syncTo(20));
    commit.markDurable(10, 20);
    await drainMicrotasks();
    assert.equal(high.state, 'pending');
    fake.resolvePending();
    await drainMicrotasks();
    assert.equal(low.state, 'resolved');
    assert.equal(high.state, 'resolved');
    assert.equal(commit.durable, 20);
  });

  it('a sync in flight when a durable write fails raises nothing', async () => {
    const { commit, fake } = setup();
    commit.reserve(20);
    commit.markWritten(0, 10);
    const low = observe(commit.syncTo(10));
    await tick();
    commit.markDurableFailed(10, 20, new Error('EIO'));
    fake.resolvePending();
    await tick();
    assert.equal(low.state, 'rejected');
    assert.equal(commit.durable, 0);
    assert.equal(fake.calls.length, 1);
  });
});

describe('GroupCommit: a latch while a flush is pending', () => {
  for (const gather of [false, true]) {
    it(`is not idle until a sync running when a durable write failed settles (gather: ${gather})`, async () => {
      const { commit, fake } = setup({ gather });
      commit.reserve(20);
      commit.markWritten(0, 10);
      const low = observe(commit.syncTo(10));
      await tick();
      assert.ok(fake.pending !== undefined);
      commit.markDurableFailed(10, 20, new Error('EIO'));
      await drainMicrotasks();
      assert.equal(low.state, 'rejected');
      assert.equal(commit.idle, false, 'sync still runs');
      fake.resolvePending();
      await drainMicrotasks();
      assert.equal(commit.idle, true);
      assert.equal(commit.durable, 0);
    });
  }

  it('is not idle until a failed sync settles after a latch', async () => {
    const { commit, fake } = setup({ gather: false });
    commit.reserve(20);
    commit.markWritten(0, 10);
    const low = observe(commit.syncTo(10));
    const cause = new Error('EIO');
    commit.markDurableFailed(10, 20, cause);
    assert.equal(commit.idle, false);
    fake.rejectPending(new Error('EIO again'));
    await drainMicrotasks();
    assert.equal(low.state, 'rejected');
    assert.equal(commit.idle, true);
    assert.equal(commit.failure?.cause, cause, 'the first failure stays latched');
  });

  for (const [name, options, resource] of [
    ['delayMs timer', { delayMs: 60_000 }, 'Timeout'],
    ['gathering immediate', { gather: true }, 'Immediate'],
  ] as const) {
    it(`cancels a scheduled flush's ${name}, so it keeps nothing alive`, async () => {
      const count = (): number =>
        process.getActiveResourcesInfo().filter((kind) => kind === resource).length;
      const { commit, fake } = setup(options);
      commit.reserve(20);
      commit.markWritten(0, 10);
      const before = count();
      const low = observe(commit.syncTo(10));
      assert.equal(count(), before + 1, 'the flush is scheduled');
      commit.markDurableFailed(10, 20, new Error('EIO'));
      assert.equal(count(), before, 'the latch cancelled it');
      assert.equal(commit.idle, true);
      await tick();
      await drainMicrotasks();
      assert.equal(low.state, 'rejected');
      assert.equal(fake.calls.length, 0);
    });
  }
});

describe('GroupCommit: a failed write poisons the log', () => {
  it('rejects syncs past the failed write and serves those at or below it (reference)', async () => {
    const { commit, fake } = setup();
    commit.reserve(20);
    commit.markWritten(0, 10);
    const cause = new Error('EIO');
    commit.markFailed(10, 20, cause);
    assert.equal(commit.poisonedAt, 10);
    const below = commit.syncTo(10);
    await tick();
    fake.resolvePending();
    await below;
    await assert.rejects(commit.syncTo(11), (error: unknown) => {
      assert.ok(error instanceof WriteFailedError);
      assert.equal(error.code, 'WAL_WRITE_FAILED');
      assert.equal(error.offset, 10);
      assert.equal(error.cause, cause);
      return true;
    });
    await assert.rejects(commit.waitWritten(20), { code: 'WAL_WRITE_FAILED', offset: 10 });
    await commit.waitWritten(10);
  });

  it('rejects waiters above the poison when it arrives, and still serves waiters below it', async () => {
    const { commit, fake } = setup();
    commit.reserve(30);
    const below = observe(commit.syncTo(10));
    const above = observe(commit.syncTo(30));
    const writtenAbove = observe(commit.waitWritten(25));
    const writtenBelow = observe(commit.waitWritten(10));
    commit.markWritten(20, 30);
    assert.equal(commit.parkedCompletions, 1);
    commit.markFailed(10, 20);
    assert.equal(commit.parkedCompletions, 0, 'a completion past the poison is dropped');
    await drainMicrotasks();
    assert.equal(above.state, 'rejected');
    assert.ok(isWalError(above.error, 'WAL_WRITE_FAILED'));
    assert.equal((above.error as WriteFailedError).offset, 10);
    assert.equal((above.error as WriteFailedError).cause, undefined);
    assert.equal(writtenAbove.state, 'rejected');
    assert.equal(below.state, 'pending');
    assert.equal(writtenBelow.state, 'pending');
    commit.markWritten(0, 10);
    assert.equal(commit.written, 10);
    await tick();
    assert.equal(fake.calls.length, 1);
    fake.resolvePending();
    await drainMicrotasks();
    assert.equal(below.state, 'resolved');
    assert.equal(writtenBelow.state, 'resolved');
    assert.equal(commit.durable, 10);
  });

  it('never moves the written watermark past the poison', async () => {
    const { commit } = setup();
    commit.reserve(40);
    commit.markFailed(0, 10);
    commit.markWritten(10, 20);
    commit.markWritten(30, 40);
    assert.equal(commit.written, 0);
    assert.equal(commit.parkedCompletions, 0);
    assert.throws(() => commit.markWritten(0, 10), assertOutOfRange);
    commit.markFailed(20, 30);
    assert.equal(commit.poisonedAt, 0, 'only the lowest failed write counts');
    assert.equal(commit.idle, true);
  });

  it('lowers the poison when an earlier write fails later', async () => {
    const { commit } = setup();
    commit.reserve(30);
    const pending = observe(commit.syncTo(15));
    commit.markFailed(20, 30, new Error('late'));
    await drainMicrotasks();
    assert.equal(pending.state, 'pending');
    const cause = new Error('early');
    commit.markFailed(10, 20, cause);
    await drainMicrotasks();
    assert.equal(pending.state, 'rejected');
    assert.equal((pending.error as WriteFailedError).offset, 10);
    assert.equal((pending.error as WriteFailedError).cause, cause);
    assert.equal(commit.poisonedAt, 10);
  });

  it('keeps a parked completion below a later failed write', () => {
    const { commit } = setup();
    commit.reserve(40);
    commit.markWritten(10, 20);
    commit.markWritten(30, 40);
    commit.markFailed(20, 30);
    assert.equal(commit.parkedCompletions, 1);
    commit.markWritten(0, 10);
    assert.equal(commit.written, 20);
  });

  it('accepts reserve(end) at the reserved end after a failed write, as a no-op', () => {
    const { commit } = setup();
    commit.reserve(20);
    commit.markFailed(0, 10);
    commit.reserve(20);
    assert.equal(commit.reserved, 20);
    assert.throws(() => commit.reserve(21), WriteFailedError);
    assert.throws(() => commit.reserve(19), WriteFailedError);
  });

  it('refuses new reservations after a failed write', () => {
    const { commit } = setup();
    commit.reserve(10);
    commit.markFailed(0, 10);
    assert.throws(() => commit.reserve(20), { code: 'WAL_WRITE_FAILED', offset: 0 });
  });
});

describe('GroupCommit: a failed sync is latched', () => {
  it('rejects the waiters of the failed flush and those queued for the next one, and never syncs again', async () => {
    const { commit, fake } = setup();
    commit.reserve(40);
    commit.markWritten(0, 10);
    const inFlight = observe(commit.syncTo(10));
    await tick();
    assert.equal(fake.calls.length, 1);
    commit.markWritten(10, 20);
    const queued = observe(commit.syncTo(20));
    const notWritten = observe(commit.syncTo(40));
    const waitingWritten = observe(commit.waitWritten(40));
    const cause = Object.assign(new Error('fdatasync failed'), { code: 'EIO' });
    fake.rejectPending(cause);
    await drainMicrotasks();
    for (const observed of [inFlight, queued, notWritten, waitingWritten]) {
      assert.equal(observed.state, 'rejected');
      assert.ok(observed.error instanceof FailedError);
      assert.equal(observed.error.code, 'WAL_FAILED');
      assert.equal(observed.error.cause, cause);
      assert.equal(observed.error.offset, 0);
    }
    assert.equal(commit.failure, inFlight.error);
    assert.equal(commit.durable, 0);

    // Every later call fails the same way; sync is never called again.
    await assert.rejects(commit.syncTo(0), { code: 'WAL_FAILED' });
    await assert.rejects(commit.syncTo(20), { code: 'WAL_FAILED' });
    await assert.rejects(commit.waitWritten(0), { code: 'WAL_FAILED' });
    assert.throws(() => commit.markWritten(20, 30), { code: 'WAL_FAILED' });
    assert.throws(() => commit.reserve(50), { code: 'WAL_FAILED' });
    assert.throws(() => commit.reset(0), { code: 'WAL_FAILED' });
    commit.markFailed(20, 30, new Error('write failed too'));
    await tick();
    assert.equal(fake.calls.length, 1);
  });

  it('latches a sync that throws synchronously', async () => {
    const cause = new Error('boom');
    const commit = new GroupCommit({
      sync: () => {
        throw cause;
      },
      start: 0,
      gather: false,
    });
    commit.reserve(10);
    commit.markWritten(0, 10);
    await assert.rejects(commit.syncTo(10), (error: unknown) => {
      assert.ok(error instanceof FailedError);
      assert.equal(error.cause, cause);
      return true;
    });
    assert.equal(commit.failure?.cause, cause);
  });

  for (const [name, value] of [
    ['undefined (a forgotten return)', undefined],
    ['null', null],
    ['an Error object', new Error('not thrown')],
    ['a number', 0],
    ['an object whose then is no function', Object.defineProperty({}, 'then', { value: 1 })],
  ] as const) {
    it(`latches a sync that returns ${name}, never claiming durability`, async () => {
      let calls = 0;
      const commit = new GroupCommit({
        sync: (() => {
          calls++;
          return value;
        }) as unknown as () => Promise<void>,
        start: 0,
      });
      commit.reserve(20);
      commit.markWritten(0, 10);
      const pending = commit.waitWritten(20);
      await assert.rejects(commit.syncTo(10), (error: unknown) => {
        assert.ok(error instanceof FailedError);
        assert.ok(error.cause instanceof TypeError);
        assert.equal((error.cause as { code?: string }).code, 'ERR_INVALID_RETURN_VALUE');
        return true;
      });
      await assert.rejects(pending, FailedError);
      assert.equal(commit.durable, 0);
      assert.ok(commit.failure instanceof FailedError);
      assert.throws(() => commit.markWritten(10, 20), FailedError);
      await assert.rejects(commit.syncTo(10), FailedError);
      await tick();
      assert.equal(calls, 1);
    });
  }

  it('latches a sync whose then getter throws', async () => {
    const cause = new Error('getter');
    const commit = new GroupCommit({
      sync: (() =>
        Object.defineProperty({}, 'then', {
          get() {
            throw cause;
          },
        })) as unknown as () => Promise<void>,
      start: 0,
    });
    commit.reserve(10);
    commit.markWritten(0, 10);
    await assert.rejects(commit.syncTo(10), (error: unknown) => {
      assert.ok(error instanceof FailedError);
      assert.equal(error.cause, cause);
      return true;
    });
  });

  it('names the durable watermark in the latched error', async () => {
    const { commit, fake } = setup({ start: 5 });
    commit.reserve(20);
    commit.markWritten(5, 10);
    const first = commit.syncTo(10);
    await tick();
    fake.resolvePending();
    await first;
    commit.markWritten(10, 20);
    const second = commit.syncTo(20);
    await tick();
    fake.rejectPending(new Error('EIO'));
    await assert.rejects(second, { code: 'WAL_FAILED', offset: 10 });
  });
});

describe('GroupCommit: start offset and reset', () => {
  it('starts every watermark at a non-zero offset', async () => {
    const { commit, fake } = setup({ start: 4096 });
    assert.equal(commit.reserved, 4096);
    assert.equal(commit.written, 4096);
    assert.equal(commit.durable, 4096);
    await commit.syncTo(4096);
    await commit.syncTo(100);
    await commit.waitWritten(4096);
    commit.reserve(4196);
    assert.throws(() => commit.markWritten(0, 100), assertOutOfRange);
    commit.markWritten(4096, 4196);
    const done = commit.syncTo(4196);
    await tick();
    assert.equal(fake.calls[0]?.written, 4196);
    fake.resolvePending();
    await done;
    assert.equal(commit.durable, 4196);
  });

  it('rejects a reset while a write is in flight', () => {
    const { commit } = setup();
    commit.reserve(20);
    commit.markWritten(10, 20);
    assert.equal(commit.idle, false);
    assert.throws(
      () => commit.reset(0),
      (error: unknown) => error instanceof BusyError && error.code === 'WAL_BUSY',
    );
    commit.markWritten(0, 10);
    assert.equal(commit.idle, true);
    commit.reset(5);
    assert.equal(commit.written, 5);
    assert.equal(commit.reserved, 5);
  });

  it('rejects a reset while a flush is scheduled or running', async () => {
    const { commit, fake } = setup();
    commit.reserve(10);
    commit.markWritten(0, 10);
    const done = commit.syncTo(10);
    assert.throws(() => commit.reset(0), { code: 'WAL_BUSY' });
    await tick();
    assert.equal(fake.calls.length, 1);
    assert.throws(() => commit.reset(0), { code: 'WAL_BUSY' });
    fake.resolvePending();
    await done;
    commit.reset(0);
    assert.equal(commit.durable, 0);
  });

  it('clears a poison and lowers, never raises, the durable watermark', async () => {
    const { commit, fake } = setup();
    commit.reserve(30);
    commit.markWritten(0, 10);
    commit.markFailed(10, 20);
    commit.markWritten(20, 30);
    assert.equal(commit.idle, true);
    commit.reset(10);
    assert.equal(commit.poisonedAt, undefined);
    assert.equal(commit.durable, 0, 'reset makes nothing durable');
    commit.reserve(20);
    commit.markWritten(10, 20);
    const done = commit.syncTo(20);
    await tick();
    assert.equal(fake.calls.length, 1, 'bytes below the reset offset still need a sync');
    fake.resolvePending();
    await done;
    commit.reset(5);
    assert.equal(commit.durable, 5);
    assert.equal(commit.written, 5);
  });

  it('rejects a reset past the written watermark', () => {
    const { commit } = setup({ start: 10 });
    assert.throws(() => commit.reset(11), assertOutOfRange);
  });
});

describe('GroupCommit: argument errors', () => {
  const sync = async (): Promise<void> => {};

  it('validates the options', () => {
    const cases: Array<[unknown, string]> = [
      [null, 'ERR_INVALID_ARG_TYPE'],
      ['options', 'ERR_INVALID_ARG_TYPE'],
      [{ start: 0 }, 'ERR_INVALID_ARG_TYPE'],
      [{ sync, start: '0' }, 'ERR_INVALID_ARG_TYPE'],
      [{ sync, start: -1 }, 'ERR_OUT_OF_RANGE'],
      [{ sync, start: 1.5 }, 'ERR_OUT_OF_RANGE'],
      [{ sync, start: 2 ** 53 }, 'ERR_OUT_OF_RANGE'],
      [{ sync, start: 0, gather: 'yes' }, 'ERR_INVALID_ARG_TYPE'],
      [{ sync, start: 0, delayMs: -1 }, 'ERR_OUT_OF_RANGE'],
      [{ sync, start: 0, delayMs: 2 ** 31 }, 'ERR_OUT_OF_RANGE'],
      [{ sync, start: 0, delay: 5 }, 'ERR_INVALID_ARG_VALUE'],
      [{ sync, start: 0, gathr: false }, 'ERR_INVALID_ARG_VALUE'],
    ];
    for (const [options, code] of cases) {
      assert.throws(
        () => new GroupCommit(options as GroupCommitOptions),
        (error: unknown) => isArgumentError(error, code as 'ERR_OUT_OF_RANGE'),
        `${JSON.stringify(options)} should throw ${code}`,
      );
    }
    assert.doesNotThrow(() => new GroupCommit({ sync, start: 2 ** 53 - 1, gather: false }));
    assert.throws(() => new GroupCommit({ sync, start: 0, delay: 5 } as GroupCommitOptions), {
      message:
        /"options\.delay" argument is not an option \(known: sync, start, gather, delayMs, onFlush\)/,
    });
  });

  it('validates reservations', () => {
    const commit = new GroupCommit({ sync, start: 10 });
    assert.throws(() => commit.reserve(9), assertOutOfRange);
    assert.throws(() => commit.reserve(Number.NaN), assertOutOfRange);
    assert.throws(() => commit.reserve('20' as unknown as number), {
      code: 'ERR_INVALID_ARG_TYPE',
    });
    commit.reserve(10);
    commit.reserve(20);
    assert.equal(commit.reserved, 20);
  });

  it('validates reported ranges', () => {
    const commit = new GroupCommit({ sync, start: 0 });
    commit.reserve(100);
    commit.markWritten(0, 10);
    commit.markWritten(50, 60);
    const bad: Array<[number, number]> = [
      [10, 10], // empty
      [20, 15], // end before start
      [90, 101], // past the reserved end
      [5, 20], // below the written watermark
      [10, 55], // in order, overlapping a parked range
      [50, 60], // reported twice
      [45, 55], // overlapping a parked range from below
      [55, 65], // overlapping a parked range from above
      [-1, 5],
      [10.5, 20],
    ];
    for (const [start, end] of bad) {
      assert.throws(() => commit.markWritten(start, end), assertOutOfRange, `[${start}, ${end})`);
      assert.throws(() => commit.markFailed(start, end), assertOutOfRange, `[${start}, ${end})`);
    }
    assert.throws(() => commit.markWritten(null as unknown as number, 5), {
      code: 'ERR_INVALID_ARG_TYPE',
    });
    assert.equal(commit.written, 10);
    assert.equal(commit.parkedCompletions, 1);
    assert.equal(commit.poisonedAt, undefined);
  });

  it('validates reported ranges around a failed write', () => {
    const commit = new GroupCommit({ sync, start: 0 });
    commit.reserve(100);
    commit.markFailed(50, 60);
    assert.throws(() => commit.markWritten(0, 55), assertOutOfRange);
    assert.throws(() => commit.markWritten(40, 55), assertOutOfRange);
    assert.throws(() => commit.markFailed(40, 55), assertOutOfRange);
    commit.markWritten(60, 100);
    commit.markWritten(0, 50);
    assert.equal(commit.written, 50);
    assert.equal(commit.idle, true);
    // Past the poison only the byte count can be checked: every byte is reported.
    assert.throws(() => commit.markWritten(60, 61), assertOutOfRange);
    assert.throws(() => commit.markFailed(60, 61), assertOutOfRange);
  });

  it('rejects, never throws, from the promise-returning calls', async () => {
    const commit = new GroupCommit({ sync, start: 0 });
    commit.reserve(10);
    await assert.rejects(commit.syncTo('1' as unknown as number), {
      code: 'ERR_INVALID_ARG_TYPE',
    });
    await assert.rejects(commit.syncTo(-1), assertOutOfRange);
    await assert.rejects(commit.syncTo(11), assertOutOfRange);
    await assert.rejects(commit.waitWritten(1.5), assertOutOfRange);
    await assert.rejects(commit.waitWritten(11), assertOutOfRange);
    assert.throws(() => commit.reset(-1), assertOutOfRange);
  });
});

describe('GroupCommit: onFlush', () => {
  it('reports each successful flush: the durable range, the waiters released, the sync time', async () => {
    const reports: FlushReport[] = [];
    const { commit, fake } = setup({ onFlush: (report) => reports.push(report) });
    assert.equal(commit.waiters, 0);
    commit.reserve(100);
    commit.markWritten(0, 30);
    const first = [commit.syncTo(10), commit.syncTo(30), commit.waitWritten(60)];
    assert.equal(commit.waiters, 3);
    await tick();
    commit.markWritten(30, 60);
    const second = commit.syncTo(60);
    await new Promise((resolve) => setTimeout(resolve, 5));
    fake.resolvePending();
    await Promise.all(first.slice(0, 2));
    assert.deepEqual(
      reports.map(({ start, end, waiters }) => ({ start, end, waiters })),
      [{ start: 0, end: 30, waiters: 2 }],
    );
    assert.ok(reports[0]!.syncMs >= 4, `${reports[0]!.syncMs}`);
    await tick();
    fake.resolvePending();
    await second;
    assert.deepEqual(
      reports.map(({ start, end, waiters }) => ({ start, end, waiters })),
      [
        { start: 0, end: 30, waiters: 2 },
        { start: 30, end: 60, waiters: 1 },
      ],
    );
    await first[2];
    assert.equal(commit.waiters, 0);
  });

  it('is not called for a failed sync; a throwing onFlush does not stop the commit', async () => {
    let calls = 0;
    const { commit, fake } = setup({
      onFlush: () => {
        calls++;
        throw new Error('metrics bug');
      },
    });
    const uncaught: unknown[] = [];
    const listeners = process.listeners('uncaughtException');
    process.removeAllListeners('uncaughtException');
    process.on('uncaughtException', (error) => uncaught.push(error));
    try {
      commit.reserve(20);
      commit.markWritten(0, 10);
      const a = commit.syncTo(10);
      await tick();
      fake.resolvePending();
      await a;
      await tick();
      assert.equal(calls, 1);
      assert.equal((uncaught[0] as Error).message, 'metrics bug');
      commit.markWritten(10, 20);
      const b = commit.syncTo(20);
      await tick();
      fake.pending!.reject(new Error('EIO'));
      await assert.rejects(b, FailedError);
      assert.equal(calls, 1);
    } finally {
      process.removeAllListeners('uncaughtException');
      for (const listener of listeners) process.on('uncaughtException', listener);
    }
  });

  for (const gather of [false, true]) {
    it(`runs one sync at a time when onFlush calls back into the coordinator (gather: ${gather})`, async () => {
      const flushes: string[] = [];
      let commit: GroupCommit;
      let late: ReturnType<typeof observe> | undefined;
      const { commit: made, fake } = setup({
        gather,
        onFlush: ({ start, end }) => {
          flushes.push(`${start}->${end}`);
          if (end === 10) {
            // A hook that reports more writes and waits for them, inside the flush.
            commit.markWritten(10, 20);
            late = observe(commit.syncTo(20));
            commit.markWritten(20, 30);
          }
        },
      });
      commit = made;
      let most = 0;
      fake.onCall = () => {
        most = Math.max(most, fake.calls.filter((call) => !call.settled).length);
      };
      commit.reserve(30);
      commit.markWritten(0, 10);
      const low = observe(commit.syncTo(10));
      const high = observe(commit.syncTo(30));
      await tick();
      fake.resolvePending();
      await drainMicrotasks();
      await tick();
      assert.equal(low.state, 'resolved');
      assert.deepEqual(flushes, ['0->10']);
      // The next flush starts once the hook returned, covering what it wrote.
      assert.deepEqual(
        fake.calls.map((call) => call.written),
        [10, 30],
      );
      assert.equal(most, 1, 'never two syncs in flight');
      assert.equal(commit.idle, false);
      // The only sync covering [10, 30) fails: neither waiter may resolve.
      fake.rejectPending(new Error('EIO'));
      await drainMicrotasks();
      assert.equal(high.state, 'rejected');
      assert.equal(late?.state, 'rejected');
      assert.equal(commit.durable, 10);
      assert.equal(fake.calls.length, 2);
    });
  }

  it('counts the flush as running while onFlush runs: not idle, and reset is WAL_BUSY', async () => {
    let commit: GroupCommit;
    const inside: Array<boolean | string> = [];
    const { commit: made, fake } = setup({
      onFlush: () => {
        inside.push(commit.idle);
        try {
          commit.reset(10);
          inside.push('reset');
        } catch (error) {
          inside.push(String((error as { code?: unknown }).code));
        }
      },
    });
    commit = made;
    commit.reserve(10);
    commit.markWritten(0, 10);
    const done = commit.syncTo(10);
    await tick();
    fake.resolvePending();
    await done;
    assert.deepEqual(inside, [false, 'WAL_BUSY']);
    assert.equal(commit.idle, true);
  });

  it('starts no flush after an onFlush that latched the coordinator', async () => {
    let commit: GroupCommit;
    const { commit: made, fake } = setup({
      gather: false,
      onFlush: () => commit.markDurableFailed(20, 30, new Error('EIO')),
    });
    commit = made;
    commit.reserve(30);
    commit.markWritten(0, 10);
    const low = observe(commit.syncTo(10));
    commit.markWritten(10, 20);
    const high = observe(commit.syncTo(20));
    fake.resolvePending();
    await drainMicrotasks();
    await tick();
    assert.equal(low.state, 'resolved');
    assert.equal(high.state, 'rejected');
    assert.equal(fake.calls.length, 1);
    assert.equal(commit.idle, true);
  });

  it('rejects an onFlush that is not a function', () => {
    assert.throws(
      () => setup({ onFlush: 1 as unknown as () => void }),
      (error) => isArgumentError(error, 'ERR_INVALID_ARG_TYPE'),
    );
  });
});
