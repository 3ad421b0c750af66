// Cancellable waits: an AbortSignal ends a caller's wait, never the record
// (docs/DURABILITY.md §3). Every test ends by proving, after a power loss
// keeping only what was made durable, that the records are still there.

import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import type { Fs } from '@wal/store';
import { CrashFs, FaultFs } from '@wal/store/testing';
import fc from 'fast-check';
import { type WaitOptions, Wal, type WalOptions } from '../../src/index.js';
import { bytes, durableOnly, rejectsCode, tick, track } from '../helpers.js';
import { collect, DIR, SEGMENT, segmented } from './fixtures.js';

/** A segmented log on `held`'s file system. */
const openHeld = (held: HeldFs, extra: WalOptions = {}): Promise<Wal> =>
  Wal.open(DIR, { fs: held.fs, segmentSize: SEGMENT, ...extra });

/**
 * `fs` whose `pwrite` or `fdatasync` calls wait while held; holding either
 * holds `pwriteDurable` too (it writes bytes and makes them durable).
 */
class HeldFs {
  readonly fs: Fs;
  #gate: Promise<void> | undefined;
  #open: (() => void) | undefined;
  #method: string | undefined;
  syncs = 0;

  constructor(inner: Fs) {
    this.fs = new Proxy(inner, {
      get: (target, key, receiver) => {
        const value: unknown = Reflect.get(target, key, receiver);
        if (typeof value !== 'function') return value;
        if (key === 'fdatasync') this.syncs++;
        const held =
          key === this.#method || (this.#method !== undefined && key === 'pwriteDurable');
        if (!held) return value.bind(target);
        return async (...args: unknown[]): Promise<unknown> => {
          while (this.#gate !== undefined) await this.#gate;
          return (value as (...a: unknown[]) => unknown).apply(target, args);
        };
      },
    });
  }

  hold(method: 'pwrite' | 'fdatasync'): void {
    this.#method = method;
    this.#gate ??= new Promise((resolve) => {
      this.#open = resolve;
    });
  }

  release(): void {
    const open = this.#open;
    this.#gate = undefined;
    this.#open = undefined;
    this.#method = undefined;
    open?.();
  }
}

function isAbort(reason: unknown): (error: unknown) => boolean {
  return (error) => {
    assert.ok(error instanceof DOMException, String(error));
    assert.equal(error.name, 'AbortError');
    assert.equal(error.cause, reason);
    return true;
  };
}

/** The payloads of the log on `crash` after a power loss keeping only what was synced. */
async function durablePayloads(crash: CrashFs): Promise<Uint8Array[]> {
  const wal = await segmented(durableOnly(crash));
  const records = await collect(wal.iterate());
  await wal.close();
  return records.map((r) => r.payload);
}

describe('Wal', () => {
  describe('cancellable waits (signal)', () => {
    it('an already aborted signal starts nothing: append and appendBatch append nothing, sync asks for no fsync', async () => {
      const crash = new CrashFs();
      const held = new HeldFs(crash);
      const wal = await openHeld(held);
      const controller = new AbortController();
      const reason = new Error('gone');
      controller.abort(reason);
      const { signal } = controller;
      const tail = wal.tail;
      await assert.rejects(wal.append(bytes(10), { wait: 'durable', signal }), isAbort(reason));
      await assert.rejects(
        wal.appendBatch([bytes(1), bytes(2)], { wait: 'written', signal }),
        isAbort(reason),
      );
      assert.equal(wal.tail, tail);
      const lsn = wal.append(bytes(10, 1));
      const syncs = held.syncs;
      await assert.rejects(wal.sync({ signal }), isAbort(reason));
      await assert.rejects(wal.waitFor(lsn, 'durable', { signal }), isAbort(reason));
      await assert.rejects(wal.drained({ signal }), isAbort(reason));
      await tick();
      await tick();
      assert.equal(held.syncs, syncs);
      assert.equal(wal.durable, tail);
      await wal.sync();
      await wal.close();
      assert.deepEqual(await durablePayloads(crash), [bytes(10, 1)]);
    });

    it('rejects a signal that is not an AbortSignal and unknown keys', async () => {
      const wal = await segmented(new CrashFs());
      const lsn = wal.append(bytes(1));
      await rejectsCode(
        wal.append(bytes(1), { wait: 'written', signal: {} as AbortSignal }),
        'ERR_INVALID_ARG_TYPE',
      );
      await rejectsCode(wal.sync({ signal: 1 as unknown as AbortSignal }), 'ERR_INVALID_ARG_TYPE');
      await rejectsCode(wal.sync(null as unknown as WaitOptions), 'ERR_INVALID_ARG_TYPE');
      await rejectsCode(
        wal.drained({ sigal: 1 } as unknown as WaitOptions),
        'ERR_INVALID_ARG_VALUE',
      );
      await rejectsCode(
        wal.waitFor(lsn, 'written', { x: 1 } as unknown as WaitOptions),
        'ERR_INVALID_ARG_VALUE',
      );
      assert.equal(wal.tail, lsn + 1 + 8);
      await wal.close();
    });

    for (const level of ['written', 'durable'] as const) {
      it(`aborting a pending '${level}' wait rejects it; the record stays and becomes durable`, async () => {
        const crash = new CrashFs();
        const held = new HeldFs(crash);
        const wal = await openHeld(held);
        held.hold(level === 'written' ? 'pwrite' : 'fdatasync');
        const controller = new AbortController();
        const { signal } = controller;
        const one = track(wal.append(bytes(100, 1), { wait: level, signal }));
        const two = track(wal.appendBatch([bytes(5, 2), bytes(6, 3)], { wait: level, signal }));
        const three = track(wal.waitFor(0, level, { signal }));
        const four = track(wal.sync({ signal }));
        await tick();
        assert.equal(one.state, 'pending');
        controller.abort();
        await tick();
        for (const t of [one, two, three, four]) {
          assert.equal(t.state, 'rejected');
          isAbort(signal.reason)(t.error);
        }
        assert.equal(getEventListeners(signal, 'abort').length, 0);
        held.release();
        await wal.sync();
        await wal.close();
        assert.deepEqual(await durablePayloads(crash), [bytes(100, 1), bytes(5, 2), bytes(6, 3)]);
      });
    }

    it('AbortSignal.timeout() ends a wait on a sync that does not return', async () => {
      const crash = new CrashFs();
      const held = new HeldFs(crash);
      const wal = await openHeld(held);
      held.hold('fdatasync');
      const signal = AbortSignal.timeout(20);
      await assert.rejects(wal.append(bytes(3, 9), { wait: 'durable', signal }), (error) => {
        assert.equal((error as Error).name, 'AbortError');
        assert.equal(((error as Error).cause as Error).name, 'TimeoutError');
        return true;
      });
      held.release();
      await wal.close();
      assert.deepEqual(await durablePayloads(crash), [bytes(3, 9)]);
    });

    it('during back-pressure: drained() and a waiting append abort; every record is kept', async () => {
      const crash = new CrashFs();
      const held = new HeldFs(crash);
      const wal = await openHeld(held, { stagingLimit: 64 * 1024 });
      held.hold('pwrite');
      const payloads: Uint8Array[] = [];
      const controller = new AbortController();
      const { signal } = controller;
      const waits: ReturnType<typeof track>[] = [];
      while (wal.writable) {
        const payload = bytes(1000, payloads.length);
        payloads.push(payload);
        waits.push(track(wal.append(payload, { wait: 'written', signal })));
        if (payloads.length % 10 === 0) await tick();
      }
      const drained = track(wal.drained({ signal }));
      await tick();
      assert.equal(drained.state, 'pending');
      controller.abort();
      await tick();
      assert.equal(drained.state, 'rejected');
      isAbort(signal.reason)(drained.error);
      for (const wait of waits) assert.equal(wait.state, 'rejected');
      assert.equal(wal.writable, false);
      assert.equal(getEventListeners(signal, 'abort').length, 0);
      held.release();
      await wal.drained();
      await wal.close();
      assert.deepEqual(await durablePayloads(crash), payloads);
    });

    it('during a truncateAfter: a waitFor waiting for it aborts; the kept record is durable', async () => {
      const crash = new CrashFs();
      const held = new HeldFs(crash);
      const wal = await openHeld(held);
      const kept = wal.append(bytes(10, 1));
      wal.append(bytes(10, 2));
      held.hold('fdatasync');
      const cut = wal.truncateAfter(kept);
      const controller = new AbortController();
      const wait = track(wal.waitFor(kept, 'durable', { signal: controller.signal }));
      const sync = track(wal.sync({ signal: controller.signal }));
      await tick();
      controller.abort();
      await tick();
      assert.equal(wait.state, 'rejected');
      assert.equal(sync.state, 'rejected');
      isAbort(controller.signal.reason)(wait.error);
      held.release();
      await cut;
      await wal.close();
      assert.deepEqual(await durablePayloads(crash), [bytes(10, 1)]);
    });

    it('during close: a waitFor waiting for close aborts; close still makes the record durable', async () => {
      const crash = new CrashFs();
      const held = new HeldFs(crash);
      const wal = await openHeld(held);
      const lsn = wal.append(bytes(10, 1));
      held.hold('fdatasync');
      const closing = wal.close();
      const controller = new AbortController();
      const wait = track(wal.waitFor(lsn, 'durable', { signal: controller.signal }));
      await tick();
      controller.abort();
      await tick();
      assert.equal(wait.state, 'rejected');
      isAbort(controller.signal.reason)(wait.error);
      held.release();
      await closing;
      // After close: the closed error comes first, an aborted signal or not.
      await rejectsCode(wal.sync({ signal: new AbortController().signal }), 'WAL_CLOSED');
      assert.deepEqual(await durablePayloads(crash), [bytes(10, 1)]);
    });

    it('after a fail-stop: a wait rejected by the failure stays so; aborting earlier wins; no listener stays', async () => {
      const fs = new FaultFs(new CrashFs());
      const held = new HeldFs(fs);
      const wal = await openHeld(held);
      const good = await wal.append(bytes(10, 1), { wait: 'durable' });
      held.hold('fdatasync');
      // The records' durable write, or a sync (durableWrites: false), fails.
      fs.inject({ method: 'fdatasync', fault: { code: 'EIO' } });
      fs.inject({ method: 'pwriteDurable', fault: { code: 'EIO' } });
      const early = new AbortController();
      const late = new AbortController();
      const a = track(wal.append(bytes(10, 2), { wait: 'durable', signal: early.signal }));
      const b = track(wal.append(bytes(10, 3), { wait: 'durable', signal: late.signal }));
      await tick();
      early.abort();
      await tick();
      held.release();
      await assert.rejects(wal.waitFor(good + 18, 'durable'), { code: 'WAL_FAILED' });
      await tick();
      late.abort();
      isAbort(early.signal.reason)(a.error);
      assert.equal((b.error as { code?: string }).code, 'WAL_FAILED');
      assert.equal(getEventListeners(late.signal, 'abort').length, 0);
      await rejectsCode(wal.sync({ signal: new AbortController().signal }), 'WAL_FAILED');
      await wal.waitFor(good, 'durable', { signal: new AbortController().signal }); // durable before
      // The fdatasync fault a failed durable write left unused hits the
      // metadata's replacement recording where the log resumes: close()
      // reports it (docs/DURABILITY.md §4).
      await wal.close().catch((error: unknown) => {
        assert.equal((error as { code?: string }).code, 'WAL_FAILED');
      });
    });

    it('many waits on one long-lived signal leave no listener behind', async () => {
      const wal = await segmented(new CrashFs());
      const { signal } = new AbortController();
      const waits: Promise<unknown>[] = [];
      for (let i = 0; i < 500; i++) {
        waits.push(wal.append(bytes(8, i), { wait: i % 2 === 0 ? 'written' : 'durable', signal }));
        waits.push(wal.sync({ signal }), wal.drained({ signal }));
      }
      assert.equal(getEventListeners(signal, 'abort').length, 1);
      await Promise.all(waits);
      await wal.waitFor(0, 'durable', { signal });
      assert.equal(getEventListeners(signal, 'abort').length, 0);
      await wal.close();
    });

    it('1000 pending waits on one signal: one listener, no warning; aborting rejects them in call order', async () => {
      const warnings: Error[] = [];
      const onWarning = (warning: Error): void => {
        warnings.push(warning);
      };
      process.on('warning', onWarning);
      try {
        const crash = new CrashFs();
        const held = new HeldFs(crash);
        const wal = await openHeld(held);
        held.hold('fdatasync');
        const controller = new AbortController();
        const { signal } = controller;
        const order: number[] = [];
        const waits: Promise<void>[] = [];
        const payloads: Uint8Array[] = [];
        for (let i = 0; i < 1000; i++) {
          const kind = i % 3;
          let wait: Promise<unknown>;
          if (kind === 0) {
            const payload = bytes(8, i);
            payloads.push(payload);
            wait = wal.append(payload, { wait: 'durable', signal });
          } else if (kind === 1) {
            wait = wal.sync({ signal });
          } else {
            wait = wal.waitFor(0, 'durable', { signal });
          }
          waits.push(
            wait.then(
              () => assert.fail(`wait ${i} resolved`),
              (error: unknown) => {
                isAbort(signal.reason)(error);
                order.push(i);
              },
            ),
          );
        }
        await tick();
        await tick();
        assert.equal(getEventListeners(signal, 'abort').length, 1);
        controller.abort(new Error('enough'));
        await Promise.all(waits);
        assert.deepEqual(order, [...Array(1000).keys()]);
        assert.equal(getEventListeners(signal, 'abort').length, 0);
        held.release();
        await wal.sync();
        await wal.close();
        assert.deepEqual(await durablePayloads(crash), payloads);
        await tick();
        assert.deepEqual(
          warnings.map((w) => w.name),
          [],
        );
      } finally {
        process.off('warning', onWarning);
      }
    });

    it('1000 waits on one signal that settle: one listener while pending, none after, no warning', async () => {
      const warnings: Error[] = [];
      const onWarning = (warning: Error): void => {
        warnings.push(warning);
      };
      process.on('warning', onWarning);
      try {
        const held = new HeldFs(new CrashFs());
        const wal = await openHeld(held);
        held.hold('fdatasync');
        const { signal } = new AbortController();
        const waits: Promise<unknown>[] = [];
        for (let i = 0; i < 1000; i++) {
          waits.push(wal.append(bytes(8, i), { wait: 'durable', signal }));
        }
        await tick();
        await tick();
        assert.equal(getEventListeners(signal, 'abort').length, 1);
        held.release();
        await Promise.all(waits);
        assert.equal(getEventListeners(signal, 'abort').length, 0);
        // A signal with no pending wait serves new ones as a fresh one does.
        await wal.sync({ signal });
        assert.equal(getEventListeners(signal, 'abort').length, 0);
        await wal.close();
        await tick();
        assert.deepEqual(
          warnings.map((w) => w.name),
          [],
        );
      } finally {
        process.off('warning', onWarning);
      }
    });

    it('model: whatever waits abort and when, every appended record is durable after a sync', async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.array(
            fc.record({
              size: fc.integer({ min: 0, max: 3000 }),
              level: fc.constantFrom('written' as const, 'durable' as const),
              abortAfter: fc.option(fc.integer({ min: -1, max: 3 })),
            }),
            { minLength: 1, maxLength: 20 },
          ),
          async (steps) => {
            const crash = new CrashFs();
            const wal = await segmented(crash);
            const expected: Uint8Array[] = [];
            const pending: Promise<unknown>[] = [];
            for (const [i, step] of steps.entries()) {
              const controller = new AbortController();
              if (step.abortAfter === -1) controller.abort();
              const payload = bytes(step.size, i);
              const wait = wal.append(payload, { wait: step.level, signal: controller.signal });
              if (step.abortAfter !== -1) expected.push(payload);
              pending.push(
                wait.catch((error: unknown) => assert.equal((error as Error).name, 'AbortError')),
              );
              if (step.abortAfter !== null && step.abortAfter >= 0) {
                const after = step.abortAfter;
                pending.push(
                  (async () => {
                    for (let t = 0; t < after; t++) await tick();
                    controller.abort();
                  })(),
                );
              }
            }
            await Promise.all(pending);
            await wal.sync();
            await wal.close();
            assert.deepEqual(await durablePayloads(crash), expected);
          },
        ),
        { numRuns: 40 },
      );
    });
  });
});
