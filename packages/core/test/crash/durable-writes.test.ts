/**
 * Durable commits as durable writes (docs/DURABILITY.md §2, INTERNALS.md §4):
 * a durable commit is one `pwriteDurable` and no `fdatasync`, and what it
 * acknowledges survives every power loss; the durable watermark never passes
 * a durable write still in flight or failed, whatever order the writes
 * complete in; at most two are in flight, a third chunk waits for one; bytes
 * already written but not durable are made durable by the group commit's
 * `fdatasync`.
 */
import assert from 'node:assert/strict';
import type { Fs } from '@wal/store';
import { CrashFs } from '@wal/store/testing';
import { HEADER_SIZE } from '../../src/frame.js';
import { Wal, type WalOptions } from '../../src/index.js';
import { bytes, rejectsCode, tick, track } from '../helpers.js';

/** A `pwriteDurable` call the test holds, and settles itself. */
interface HeldCall {
  /** Runs the real call, then settles the caller's promise as it did. */
  run(): Promise<void>;
  /** Rejects the caller's promise with `error`, without running the call. */
  fail(error: Error): void;
}

/**
 * A file system that counts the calls on the log's data files (not the
 * metadata's: the durable hint is persisted with syncs of its own) and,
 * while `holding`, holds every `pwriteDurable`.
 */
class ControlledFs {
  readonly fs: Fs;
  readonly calls = { pwrite: 0, pwriteDurable: 0, fdatasync: 0 };
  readonly held: HeldCall[] = [];
  holding = false;

  constructor(inner: Fs) {
    this.fs = new Proxy(inner, {
      get: (target, key, receiver) => {
        const value: unknown = Reflect.get(target, key, receiver);
        if (typeof value !== 'function') return value;
        const call = (value as (...a: unknown[]) => Promise<unknown>).bind(target);
        if (key === 'pwrite' || key === 'fdatasync') {
          return (...args: unknown[]) => {
            if (isData(args[0])) this.calls[key]++;
            return call(...args);
          };
        }
        if (key !== 'pwriteDurable') return call;
        return (...args: unknown[]) => {
          if (isData(args[0])) this.calls.pwriteDurable++;
          if (!this.holding) return call(...args);
          return new Promise((resolve, reject) => {
            this.held.push({
              run: () => call(...args).then(resolve, reject),
              fail: reject,
            });
          });
        };
      },
    });
  }

  reset(): void {
    this.calls.pwrite = this.calls.pwriteDurable = this.calls.fdatasync = 0;
  }
}

/** Whether `file` is one of the log's data files (a segment, or the single file). */
function isData(file: unknown): boolean {
  return (file as { path: string }).path.endsWith('.wal');
}

const LAYOUTS: readonly { name: string; path: string; options: WalOptions }[] = [
  { name: 'one file', path: '/log.wal', options: { layout: 'file' } },
  { name: 'segments', path: '/log', options: { segmentSize: 4096 } },
];

describe('durable commits as durable writes', () => {
  for (const layout of LAYOUTS) {
    describe(layout.name, () => {
      const open = (fs: Fs, extra: WalOptions = {}): Promise<Wal> =>
        Wal.open(layout.path, { fs, ...layout.options, ...extra });

      it('a lone durable commit is one durable write, no fdatasync, and survives every power loss', async () => {
        const crash = new CrashFs();
        const control = new ControlledFs(crash);
        const wal = await open(control.fs, { preallocate: 0 });
        control.reset();
        const payloads: Uint8Array[] = [];
        // Frames of 512 bytes: 8 to a segment of 4 KiB, none across two (a
        // chunk across segments goes as a write and a sync, writer.ts).
        for (let i = 0; i < 12; i++) {
          const payload = bytes(504, i + 1);
          payloads.push(payload);
          await wal.append(payload, { wait: 'durable' });
        }
        assert.equal(control.calls.fdatasync, 0, 'no fdatasync on the commit path');
        assert.equal(control.calls.pwrite, 0, 'no plain write of a durable commit');
        assert.equal(control.calls.pwriteDurable >= 12, true);
        assert.equal(wal.durable, wal.tail);
        const states = crash.crashStates({ limit: 150 });
        let checkedStates = 0;
        for (const state of states) {
          const again = await open(state.fs(), { preallocate: 0 });
          const records: Uint8Array[] = [];
          for await (const record of again.iterate()) records.push(record.payload);
          assert.deepEqual(records, payloads, `state ${state.index}: ${state.description}`);
          await again.close();
          checkedStates++;
        }
        assert.ok(checkedStates > 0);
        await wal.close();
      });

      it('never acknowledges the later of two concurrent durable writes while the earlier is pending', async () => {
        const control = new ControlledFs(new CrashFs());
        const wal = await open(control.fs, { preallocate: 0 });
        await wal.append(bytes(10), { wait: 'durable' });
        const durableBefore = wal.durable;
        control.holding = true;
        control.reset();
        const first = track(wal.append(bytes(10, 1), { wait: 'durable' }));
        await tick();
        const second = track(wal.append(bytes(10, 2), { wait: 'durable' }));
        await tick();
        assert.equal(control.held.length, 2, 'two durable writes in flight');
        const third = track(wal.append(bytes(10, 3), { wait: 'durable' }));
        await tick();
        assert.equal(control.held.length, 2, 'a third chunk waits for one to complete');
        await control.held[1]!.run();
        await tick();
        assert.equal(second.state, 'pending', 'the later write alone is not acknowledged');
        assert.equal(wal.durable, durableBefore);
        assert.equal(control.held.length, 3, 'the waiting chunk is sent when one completes');
        await control.held[0]!.run();
        await tick();
        assert.equal(first.state, 'resolved');
        assert.equal(second.state, 'resolved');
        assert.equal(third.state, 'pending');
        await control.held[2]!.run();
        await tick();
        assert.equal(third.state, 'resolved');
        assert.equal(wal.durable, wal.tail);
        assert.equal(control.calls.fdatasync, 0);
        await wal.close();
      });

      it('never acknowledges the later of two concurrent durable writes when the earlier fails; reopen keeps neither', async () => {
        const crash = new CrashFs();
        const control = new ControlledFs(crash);
        const wal = await open(control.fs, { preallocate: 0 });
        const kept = await wal.append(bytes(10), { wait: 'durable' });
        control.holding = true;
        const first = wal.append(bytes(10, 1), { wait: 'durable' });
        await tick();
        const second = wal.append(bytes(10, 2), { wait: 'durable' });
        await tick();
        assert.equal(control.held.length, 2);
        await control.held[1]!.run();
        await tick();
        control.held[0]!.fail(Object.assign(new Error('EIO: i/o error, write'), { code: 'EIO' }));
        const error = await rejectsCode(first, 'WAL_FAILED');
        await rejectsCode(second, 'WAL_FAILED');
        assert.equal(wal.failure?.code, 'WAL_FAILED');
        assert.equal((error as { offset?: number }).offset, kept + HEADER_SIZE + 10);
        assert.equal(wal.durable, kept + HEADER_SIZE + 10);
        await wal.close();
        control.holding = false;
        const again = await wal.reopen();
        assert.equal(again.tail, kept + HEADER_SIZE + 10, 'resumes at the last durable offset');
        await again.close();
      });

      it('a durable wait on bytes already written uses the group commit fdatasync', async () => {
        const control = new ControlledFs(new CrashFs());
        const wal = await open(control.fs, { preallocate: 0 });
        await wal.append(bytes(10), { wait: 'durable' });
        control.reset();
        const lsn = await wal.append(bytes(20), { wait: 'written' });
        await wal.waitFor(lsn, 'durable');
        assert.deepEqual(control.calls, { pwrite: 1, pwriteDurable: 0, fdatasync: 1 });
        await wal.close();
      });

      it('with durableWrites: false, a durable commit is a write and an fdatasync', async () => {
        const control = new ControlledFs(new CrashFs());
        const wal = await open(control.fs, { preallocate: 0, durableWrites: false });
        await wal.append(bytes(10), { wait: 'durable' });
        control.reset();
        await wal.append(bytes(20), { wait: 'durable' });
        assert.deepEqual(control.calls, { pwrite: 1, pwriteDurable: 0, fdatasync: 1 });
        await wal.close();
      });
    });
  }
});
