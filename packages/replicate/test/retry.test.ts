import assert from 'node:assert/strict';
import { CorruptionError, ReplicaFencedError } from '@wal/errors';
import fc from 'fast-check';
import { afterFailure, isFinal } from '../src/retry.js';

const open = { isClosed: () => false };
const closed = { isClosed: () => true };
const counters = () => ({ retries: 0, lastRetryError: undefined as string | undefined });

describe('after a failure: retry or stop (the replicator and the follower)', () => {
  it('a typed error or a bad argument stops the loop as it is, counting nothing', () => {
    for (const error of [
      new ReplicaFencedError('fenced'),
      new CorruptionError('bad', { offset: 3 }),
      new TypeError('bad'),
      new RangeError('bad'),
    ]) {
      for (const nc of [open, closed]) {
        const stats = counters();
        assert.ok(isFinal(error));
        assert.deepEqual(afterFailure(error, nc, stats, 100), { stop: error });
        assert.deepEqual(stats, counters());
      }
    }
  });

  it('any other error on a connection its owner closed stops with WAL_CLOSED, the error as cause', () => {
    const error = new Error('connection closed');
    const stats = counters();
    const outcome = afterFailure(error, closed, stats, 0);
    assert.ok('stop' in outcome);
    assert.equal(outcome.stop.code, 'WAL_CLOSED');
    assert.equal(outcome.stop.cause, error);
    assert.deepEqual(stats, counters());
  });

  it('a transient error is counted and retried after a delay doubling from 25 ms to 1 s', () => {
    fc.assert(
      fc.property(fc.array(fc.string(), { minLength: 1, maxLength: 20 }), (messages) => {
        const stats = counters();
        let delay = 0;
        const delays = [];
        for (const message of messages) {
          const outcome = afterFailure(new Error(message), open, stats, delay);
          assert.ok('retry' in outcome);
          delay = outcome.retry;
          delays.push(delay);
        }
        assert.deepEqual(
          delays,
          messages.map((_, i) => Math.min(25 * 2 ** i, 1000)),
        );
        assert.equal(stats.retries, messages.length);
        assert.equal(stats.lastRetryError, String(new Error(messages.at(-1))));
        assert.equal(isFinal(new Error('x')), false);
      }),
    );
  });
});
