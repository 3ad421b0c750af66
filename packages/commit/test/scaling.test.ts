/**
 * Large counts: 30,000 waiters, flushes and out-of-order completions must all
 * be served correctly. How long they take is measured, not asserted here: the
 * scaling section of `tools/bench` (bench:commit) reports it.
 */
import assert from 'node:assert/strict';
import { GroupCommit } from '@wal/commit';

const N = 30_000;

describe('GroupCommit: scaling', () => {
  it(`releases ${N} waitWritten waiters as the writes complete`, async () => {
    const commit = new GroupCommit({ sync: async () => {}, start: 0 });
    const waits: Array<Promise<void>> = [];
    for (let i = 1; i <= N; i++) {
      commit.reserve(i);
      waits.push(commit.waitWritten(i));
    }
    // Each in-order completion releases one waiter; the old scan visited all.
    for (let i = 0; i < N; i++) commit.markWritten(i, i + 1);
    await Promise.all(waits);
  });

  it(`serves ${N} syncTo waiters over ${N} flushes`, async () => {
    let syncs = 0;
    const commit = new GroupCommit({
      sync: async () => {
        syncs++;
      },
      start: 0,
      gather: false,
    });
    commit.reserve(N);
    const waits: Array<Promise<void>> = [];
    for (let i = 1; i <= N; i++) waits.push(commit.syncTo(i));
    for (let i = 0; i < N; i++) {
      commit.markWritten(i, i + 1); // starts a flush covering just this write
      await commit.syncTo(i + 1);
    }
    await Promise.all(waits);
    assert.equal(syncs, N);
    assert.equal(commit.durable, N);
  });

  it(`serves ${N} concurrent committers (waitWritten, then syncTo)`, async () => {
    let syncs = 0;
    const commit = new GroupCommit({
      sync: async () => {
        syncs++;
      },
      start: 0,
    });
    const waits: Array<Promise<void>> = [];
    for (let i = 1; i <= N; i++) {
      commit.reserve(i);
      waits.push(commit.waitWritten(i).then(() => commit.syncTo(i)));
      waits.push(commit.syncTo(i));
    }
    for (let i = 0; i < N; i++) commit.markWritten(i, i + 1);
    await Promise.all(waits);
    assert.equal(commit.durable, N);
    assert.ok(syncs <= 3, `${syncs} syncs`);
  });

  it(`parks ${N} completions arriving in reverse, then drains them,`, () => {
    const commit = new GroupCommit({ sync: async () => {}, start: 0 });
    commit.reserve(N);
    for (let i = N - 1; i > 0; i--) commit.markWritten(i, i + 1);
    assert.equal(commit.parkedCompletions, N - 1);
    // Overlap checks stay exact with many parked completions.
    assert.throws(() => commit.markWritten(N - 2, N), { code: 'ERR_OUT_OF_RANGE' });
    assert.throws(() => commit.markFailed(0, 2), { code: 'ERR_OUT_OF_RANGE' });
    commit.markWritten(0, 1);
    assert.equal(commit.written, N);
    assert.equal(commit.parkedCompletions, 0);
  });

  it(`drops ${N} waiters past a failed write at once`, async () => {
    const commit = new GroupCommit({ sync: async () => {}, start: 0 });
    commit.reserve(N);
    const waits: Array<Promise<unknown>> = [];
    for (let i = 1; i <= N; i++) {
      waits.push(
        commit.waitWritten(i).then(
          () => 'ok',
          (error: { code?: string }) => error.code,
        ),
      );
    }
    commit.markWritten(0, 10);
    commit.markFailed(10, 11);
    const results = await Promise.all(waits);
    assert.deepEqual(results.slice(0, 11), Array(10).fill('ok').concat(['WAL_WRITE_FAILED']));
    assert.equal(results.filter((result) => result === 'WAL_WRITE_FAILED').length, N - 10);
  });
});
