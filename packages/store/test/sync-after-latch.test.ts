/**
 * A durable call that completes after the store latched a failure rejects
 * with it. Two fsyncs of one file can be in flight together (a write landed
 * between two `sync()` calls); on Linux, when the first reports a write-back
 * error, the second may return success: the error was reported once and the
 * lost pages were marked clean. Its success proves nothing, so the call that
 * issued it must not resolve.
 *
 * The durable calls are held at a gate under the store (between it and a
 * `FaultFs`), so the test decides the order in which they complete: the first
 * fails with EIO (the store latches), then the second completes successfully.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { errorCode } from '@wal/errors';
import { FileStore } from '../src/file-store.js';
import type { Fs } from '../src/fs/fs.js';
import { NodeFs } from '../src/fs/node-fs.js';
import { SegmentedStore } from '../src/segmented-store.js';
import { FaultFs } from '../src/testing/fault-fs.js';
import { removeTempDirs, tempDir } from './fs-helpers.js';

const S = 4096;
const DURABLE_CALLS = new Set<PropertyKey>(['fdatasync', 'pwriteDurable', 'syncDir']);

/** Holds every durable call made while armed until the test releases it. */
class Gates {
  armed = false;
  readonly held: Array<{ readonly method: string; readonly release: () => void }> = [];

  /** `inner` with its durable calls gated; `durableWrites: false` hides `pwriteDurable`. */
  wrap(inner: Fs, durableWrites = true): Fs {
    const held = this.held;
    const gates = this;
    return new Proxy(inner, {
      get(target, property) {
        if (property === 'pwriteDurable' && !durableWrites) return undefined;
        const value: unknown = Reflect.get(target, property, target);
        if (typeof value !== 'function') return value;
        if (!DURABLE_CALLS.has(property)) return value.bind(target);
        return async (...args: unknown[]) => {
          if (gates.armed) {
            await new Promise<void>((release) => held.push({ method: String(property), release }));
          }
          return value.apply(target, args);
        };
      },
    });
  }

  /** Disarms and releases every held call (so a failed test can close its store). */
  open(): void {
    this.armed = false;
    for (const { release } of this.held) release();
  }

  /** Waits until `count` calls are held. */
  async waitHeld(count: number): Promise<void> {
    const deadline = Date.now() + 10_000;
    while (this.held.length < count) {
      if (Date.now() > deadline) {
        throw new Error(`only ${this.held.length} of ${count} durable calls held`);
      }
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
  }
}

type Outcome = { ok: true } | { ok: false; code: string | undefined };
const settle = (promise: Promise<unknown>): Promise<Outcome> =>
  promise.then(
    () => ({ ok: true }),
    (error: unknown) => ({ ok: false, code: errorCode(error) }),
  );

interface Backend {
  readonly name: string;
  readonly open: (location: string, fs: Fs) => Promise<FileStore | SegmentedStore>;
}

const backends: Backend[] = [
  { name: 'FileStore', open: (path, fs) => FileStore.open(path, { fs }) },
  { name: 'SegmentedStore', open: (dir, fs) => SegmentedStore.open(dir, { fs, segmentSize: S }) },
];

/**
 * Opens a store over gates over a FaultFs, with `[0, 300)` written and
 * synced, then arms the gates and the fault: the first durable call to
 * complete fails with EIO.
 */
async function setup(backend: Backend, durableWrites = true) {
  const fault = new FaultFs(new NodeFs());
  const gates = new Gates();
  const store = await backend.open(join(await tempDir(), 'log'), gates.wrap(fault, durableWrites));
  await store.write(0, new Uint8Array(300).fill(1));
  await store.sync();
  gates.armed = true;
  fault.resetCounts();
  fault.inject({ method: ['fdatasync', 'pwriteDurable', 'syncDir'], at: 1 });
  return { store, gates, fault };
}

/** Releases the first held call (it fails, the store latches), then the second (it succeeds). */
async function failFirstThenSucceed(
  store: FileStore | SegmentedStore,
  gates: Gates,
  first: Promise<Outcome>,
): Promise<void> {
  gates.held[0]!.release();
  assert.deepEqual(await first, { ok: false, code: 'WAL_FAILED' });
  assert.equal(store.failure?.code, 'WAL_FAILED');
  gates.held[1]!.release();
}

/** Both held calls reached the file system: the first failed there, the second succeeded. */
function assertFirstFailedSecondSucceeded(fault: FaultFs): void {
  const durable = fault.calls.filter((c) => DURABLE_CALLS.has(c.method));
  assert.equal(durable.length, 2);
  assert.equal(durable[0]!.fault, 'EIO');
  assert.equal(durable[1]!.fault, undefined);
}

describe('a durable call completing after the store latched rejects with the failure', () => {
  after(removeTempDirs);

  for (const backend of backends) {
    describe(backend.name, () => {
      it('sync(): its fdatasync succeeds after a concurrent one failed', async () => {
        const { store, gates, fault } = await setup(backend);
        try {
          await store.write(100, new Uint8Array(100).fill(2));
          const a = settle(store.sync());
          await gates.waitHeld(1);
          await store.write(200, new Uint8Array(100).fill(3)); // dirty again: a second flush
          const b = settle(store.sync());
          await gates.waitHeld(2);
          assert.deepEqual(
            gates.held.map((h) => h.method),
            ['fdatasync', 'fdatasync'],
          );
          await failFirstThenSucceed(store, gates, a);
          assert.deepEqual(await b, { ok: false, code: 'WAL_FAILED' });
          assertFirstFailedSecondSucceeded(fault);
        } finally {
          gates.open();
          await store.close();
        }
      });

      it('writeDurable() on an Fs without pwriteDurable: its write then fdatasync', async () => {
        const { store, gates, fault } = await setup(backend, false);
        try {
          await store.write(100, new Uint8Array(100).fill(2));
          const a = settle(store.sync());
          await gates.waitHeld(1);
          const b = settle(store.writeDurable!(200, new Uint8Array(100).fill(3)));
          await gates.waitHeld(2);
          assert.deepEqual(
            gates.held.map((h) => h.method),
            ['fdatasync', 'fdatasync'],
          );
          await failFirstThenSucceed(store, gates, a);
          assert.deepEqual(await b, { ok: false, code: 'WAL_FAILED' });
          assertFirstFailedSecondSucceeded(fault);
        } finally {
          gates.open();
          await store.close();
        }
      });

      it('writeDurable(): its pwriteDurable succeeds after a concurrent one failed', async () => {
        const { store, gates, fault } = await setup(backend);
        try {
          const a = settle(store.writeDurable!(0, new Uint8Array(100).fill(2)));
          await gates.waitHeld(1);
          const b = settle(store.writeDurable!(100, new Uint8Array(100).fill(3)));
          await gates.waitHeld(2);
          assert.deepEqual(
            gates.held.map((h) => h.method),
            ['pwriteDurable', 'pwriteDurable'],
          );
          await failFirstThenSucceed(store, gates, a);
          assert.deepEqual(await b, { ok: false, code: 'WAL_FAILED' });
          assertFirstFailedSecondSucceeded(fault);
        } finally {
          gates.open();
          await store.close();
        }
      });

      it('updateMeta(): its directory fsync succeeds after a concurrent fdatasync failed', async () => {
        const { store, gates, fault } = await setup(backend);
        fault.clear();
        // Only the data file's fdatasync fails; the metadata's calls succeed.
        fault.inject({
          method: 'fdatasync',
          when: (call) => !call.path.includes('meta'),
        });
        try {
          await store.write(100, new Uint8Array(100).fill(2));
          const a = settle(store.sync());
          await gates.waitHeld(1);
          const b = settle(store.updateMeta({ x: 1 }));
          await gates.waitHeld(2);
          gates.held[1]!.release(); // the new metadata file's fdatasync
          await gates.waitHeld(3);
          assert.deepEqual(
            gates.held.map((h) => h.method),
            ['fdatasync', 'fdatasync', 'syncDir'],
          );
          gates.held[0]!.release();
          assert.deepEqual(await a, { ok: false, code: 'WAL_FAILED' });
          gates.held[2]!.release();
          assert.deepEqual(await b, { ok: false, code: 'WAL_FAILED' });
          const calls = fault.calls.filter((c) => DURABLE_CALLS.has(c.method));
          assert.deepEqual(
            calls.map((c) => [c.method, c.fault]),
            [
              ['fdatasync', undefined],
              ['fdatasync', 'EIO'],
              ['syncDir', undefined],
            ],
          );
        } finally {
          gates.open();
          await store.close();
        }
      });

      it('syncNow() does not fdatasync beside an fdatasync in flight: false, use sync()', async () => {
        const { store, gates, fault } = await setup(backend);
        try {
          await store.write(100, new Uint8Array(100).fill(2));
          const a = settle(store.sync());
          await gates.waitHeld(1);
          await store.write(200, new Uint8Array(100).fill(3));
          // A synchronous fdatasync here could return success after the one in
          // flight consumed a write-back error, before the store can latch it.
          assert.equal(store.syncNow(), false);
          assert.equal(fault.count('fdatasyncSync'), 0);
          gates.held[0]!.release();
          assert.deepEqual(await a, { ok: false, code: 'WAL_FAILED' });
          assert.throws(() => store.syncNow(), { code: 'WAL_FAILED' });
        } finally {
          gates.open();
          await store.close();
        }
      });
    });
  }
});
