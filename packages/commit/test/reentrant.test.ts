/**
 * Property test of re-entrant use: `onFlush` and the continuations of
 * `syncTo` waiters call back into the coordinator (reserve, markWritten,
 * syncTo) at random, while syncs succeed or fail at random and the test
 * settles them in random order. Whatever the hooks do, at most one `sync` is
 * ever in flight, and a `syncTo(t)` resolves only after a `sync` called with
 * `written >= t` succeeded: no resolution is covered by a failed sync.
 */
import assert from 'node:assert/strict';
import { GroupCommit } from '@wal/commit';
import { errorCode } from '@wal/errors';
import fc from 'fast-check';
import { drainMicrotasks, tick } from './fake-sync.js';

interface Call {
  /** The written watermark when `sync` was called. */
  readonly written: number;
  state: 'pending' | 'ok' | 'failed';
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

interface Write {
  readonly start: number;
  readonly end: number;
}

class Run {
  readonly commit: GroupCommit;
  readonly calls: Call[] = [];
  /** Reserved writes not reported yet. */
  readonly inflight: Write[] = [];
  readonly violations: string[] = [];
  readonly waits: Promise<void>[] = [];
  /** Set for the final drain: the hooks stop calling back, so the run ends. */
  quiet = false;
  #cursor = 0;

  constructor(
    readonly start: number,
    gather: boolean,
    readonly random: readonly number[],
  ) {
    this.commit = new GroupCommit({
      start,
      gather,
      sync: () =>
        new Promise<void>((resolve, reject) => {
          const running = this.calls.filter((call) => call.state === 'pending').length;
          if (running > 0) this.violations.push(`sync called with ${running} already in flight`);
          const call: Call = {
            written: this.commit.written,
            state: 'pending',
            resolve: () => {
              call.state = 'ok';
              resolve();
            },
            reject: (error) => {
              call.state = 'failed';
              reject(error);
            },
          };
          this.calls.push(call);
        }),
      onFlush: () => this.reenter(),
    });
  }

  /** The next random number: the property's input, reused cyclically. */
  next(bound: number): number {
    const value = this.random[this.#cursor++ % this.random.length]!;
    return value % bound;
  }

  /** Up to three random calls back into the coordinator, from a hook or a continuation. */
  reenter(): void {
    if (this.quiet) return;
    for (let n = this.next(4); n > 0; n--) this.act(this.next(3));
  }

  /** One coordinator call: 0 reserves, 1 reports a write, 2 waits with syncTo. */
  act(kind: number): void {
    const { commit } = this;
    try {
      if (kind === 0) {
        const start = commit.reserved;
        const end = start + 1 + this.next(20);
        commit.reserve(end);
        this.inflight.push({ start, end });
      } else if (kind === 1) {
        if (this.inflight.length === 0) return;
        const [write] = this.inflight.splice(this.next(this.inflight.length), 1);
        commit.markWritten(write!.start, write!.end);
      } else {
        this.syncTo(commit.durable + this.next(commit.reserved - commit.durable + 1));
      }
    } catch (error) {
      // Only a latched sync failure may refuse these calls.
      if (errorCode(error) !== 'WAL_FAILED') throw error;
    }
  }

  syncTo(target: number): void {
    const promise = this.commit.syncTo(target).then(
      () => {
        const covering = this.calls.some((call) => call.state === 'ok' && call.written >= target);
        if (target > this.start && !covering) {
          this.violations.push(
            `syncTo(${target}) resolved without a successful sync called with written >= ${target}` +
              ` (syncs: ${this.calls.map((call) => `${call.written}:${call.state}`).join(', ')})`,
          );
        }
        this.reenter();
      },
      (error: unknown) => {
        if (errorCode(error) !== 'WAL_FAILED')
          this.violations.push(`syncTo(${target}): ${String(error)}`);
      },
    );
    this.waits.push(promise);
  }

  /** Settles one of the syncs in flight, picked at random; fails it one time in `failOneIn`. */
  settleSync(failOneIn: number): void {
    const pending = this.calls.filter((call) => call.state === 'pending');
    if (pending.length === 0) return;
    const call = pending[this.next(pending.length)]!;
    if (this.next(failOneIn) === 0) call.reject(new Error('fdatasync: EIO'));
    else call.resolve();
  }
}

describe('GroupCommit: calls back into the coordinator from onFlush and waiters', () => {
  it('never runs two syncs at once, and never resolves a syncTo that a failed sync covered', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 1000 }),
        fc.boolean(),
        fc.integer({ min: 2, max: 12 }),
        fc.array(fc.nat({ max: 1 << 20 }), { minLength: 50, maxLength: 400 }),
        async (start, gather, failOneIn, random) => {
          const run = new Run(start, gather, random);
          const steps = 40 + run.next(80);
          for (let i = 0; i < steps; i++) {
            const what = run.next(6);
            if (what < 3) run.act(what);
            else if (what === 3) run.settleSync(failOneIn);
            else if (what === 4) await tick();
            else await drainMicrotasks();
            await drainMicrotasks();
            assert.deepEqual(run.violations, []);
          }
          // Drain: the hooks stop calling back; report every write, let every
          // flush succeed: every waiter settles.
          run.quiet = true;
          for (let round = 0; round < 100; round++) {
            for (const write of run.inflight.splice(0)) {
              if (run.commit.failure === undefined) run.commit.markWritten(write.start, write.end);
            }
            await tick();
            await drainMicrotasks();
            const pending = run.calls.filter((call) => call.state === 'pending');
            if (pending.length === 0 && run.inflight.length === 0 && run.commit.waiters === 0)
              break;
            for (const call of pending) call.resolve();
            await drainMicrotasks();
          }
          assert.deepEqual(run.violations, []);
          assert.equal(run.commit.waiters, 0, 'every waiter settled');
          await Promise.all(run.waits);
          if (run.commit.failure === undefined) assert.equal(run.commit.idle, true);
        },
      ),
      { numRuns: 400 },
    );
  });
});
