/**
 * Durable commits as durable writes (docs/DURABILITY.md §2, INTERNALS.md §4):
 * a durable commit is one `pwriteDurable` and no `fdatasync`, and what it
 * acknowledges survives every power loss; the durable watermark never passes
 * a durable write still in flight or failed, whatever order the writes
 * complete in; the flush starts at most two, a third chunk waits for one; bytes
 * already written but not durable are made durable by the group commit's
 * `fdatasync`.
 */
import assert from 'node:assert/strict';
import type { Fs } from '@wal/store';
import { CrashFs, FaultFs } from '@wal/store/testing';
import { HEADER_SIZE } from '../../src/frame.js';
import { Wal, type WalOptions } from '../../src/index.js';
import { bytes, durableOnly, rejectsCode, tick, track } from '../helpers.js';

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
 * while `holding`, holds every `pwriteDurable`; while `holdingSyncs`, every
 * `fdatasync` of a data file.
 */
class ControlledFs {
  readonly fs: Fs;
  readonly calls = { pwrite: 0, pwriteDurable: 0, fdatasync: 0 };
  readonly held: HeldCall[] = [];
  readonly heldSyncs: HeldCall[] = [];
  holding = false;
  holdingSyncs = false;

  constructor(inner: Fs) {
    this.fs = new Proxy(inner, {
      get: (target, key, receiver) => {
        const value: unknown = Reflect.get(target, key, receiver);
        if (typeof value !== 'function') return value;
        const call = (value as (...a: unknown[]) => Promise<unknown>).bind(target);
        const hold = (into: HeldCall[], args: unknown[]): Promise<unknown> =>
          new Promise((resolve, reject) => {
            into.push({ run: () => call(...args).then(resolve, reject), fail: reject });
          });
        if (key === 'pwrite') {
          return (...args: unknown[]) => {
            if (isData(args[0])) this.calls.pwrite++;
            return call(...args);
          };
        }
        if (key === 'fdatasync') {
          return (...args: unknown[]) => {
            if (!isData(args[0])) return call(...args);
            this.calls.fdatasync++;
            return this.holdingSyncs ? hold(this.heldSyncs, args) : call(...args);
          };
        }
        if (key !== 'pwriteDurable') return call;
        return (...args: unknown[]) => {
          if (isData(args[0])) this.calls.pwriteDurable++;
          return this.holding ? hold(this.held, args) : call(...args);
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

      it('a durable commit of a record larger than a chunk is a durable write too (within one segment); records around it read back', async () => {
        const crash = new CrashFs();
        const control = new ControlledFs(crash);
        // Chunks of 16 KiB; segments of 64 KiB, so the record lies within one.
        const wal = await open(control.fs, {
          preallocate: 0,
          stagingLimit: 64 * 1024,
          ...(layout.options.segmentSize === undefined ? {} : { segmentSize: 64 * 1024 }),
        });
        await wal.append(bytes(10), { wait: 'durable' });
        control.reset();
        const payloads = [bytes(20 * 1024, 1), bytes(30, 2), bytes(17 * 1024, 3), bytes(40, 4)];
        await wal.append(payloads[0]!, { wait: 'durable' });
        assert.deepEqual(control.calls, { pwrite: 0, pwriteDurable: 1, fdatasync: 0 });
        // Small records after it (a pooled chunk), a large one and a small
        // one in one turn (the large one goes as a plain write when the
        // small one needs a chunk, before any durable waiter: an fdatasync
        // makes it durable): each read back as appended.
        await wal.append(payloads[1]!, { wait: 'durable' });
        wal.append(payloads[2]!);
        await wal.append(payloads[3]!, { wait: 'durable' });
        const records = await reopened(durableOnly(crash), layout.path, {
          ...layout.options,
          ...(layout.options.segmentSize === undefined ? {} : { segmentSize: 64 * 1024 }),
        });
        assert.deepEqual(records.slice(1), payloads);
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

/** The payloads a log at `path` on `fs` reads back after reopening. */
async function reopened(fs: Fs, path: string, options: WalOptions): Promise<Uint8Array[]> {
  const wal = await Wal.open(path, { fs, ...options });
  const records: Uint8Array[] = [];
  for await (const record of wal.iterate()) records.push(record.payload);
  await wal.close();
  return records;
}

/**
 * Checks every power-loss state of `crash`: the log reads back a prefix of
 * `payloads` holding at least the first `acknowledged`.
 */
async function checkStates(
  crash: CrashFs,
  path: string,
  options: WalOptions,
  payloads: readonly Uint8Array[],
  acknowledged: number,
): Promise<number> {
  let checked = 0;
  for (const state of crash.crashStates({ limit: 120 })) {
    const records = await reopened(state.fs(), path, options);
    const where = `state ${state.index}: ${state.description}`;
    assert.ok(records.length >= acknowledged, `${where}: ${records.length} < ${acknowledged}`);
    assert.deepEqual(records, payloads.slice(0, records.length), where);
    checked++;
  }
  return checked;
}

/** `count` turns of the event loop. */
async function ticks(count: number): Promise<void> {
  for (let i = 0; i < count; i++) await tick();
}

/** Stops holding `fdatasync`, runs the held ones, and lets their waiters settle. */
async function releaseSyncs(control: ControlledFs): Promise<void> {
  control.holdingSyncs = false;
  for (const held of control.heldSyncs.splice(0)) await held.run();
  await ticks(5);
}

describe('durable writes with failures and plain writes in flight', () => {
  const path = '/log.wal';
  const options: WalOptions = { layout: 'file', preallocate: 0 };

  it('a durable write that could not start (EMFILE opening its descriptor) turns durable writes off; commits stay durable', async () => {
    const crash = new CrashFs();
    const control = new ControlledFs(crash);
    const fs = new FaultFs(control.fs);
    const wal = await Wal.open(path, { fs, ...options });
    const payloads = [bytes(40, 1)];
    await wal.append(payloads[0]!, { wait: 'durable' });
    fs.inject({ method: 'pwriteDurable', fault: { code: 'EMFILE', syscall: 'open' } });
    control.reset();
    for (let i = 2; i <= 6; i++) {
      const payload = bytes(40, i);
      payloads.push(payload);
      await wal.append(payload, { wait: 'durable' });
      assert.equal(wal.durable, wal.tail, `commit ${i} durable`);
    }
    assert.equal(wal.failure, undefined);
    assert.equal(control.calls.pwriteDurable, 0, 'durable writes turned off');
    assert.ok(control.calls.fdatasync >= 5, 'each commit takes a group-commit fdatasync');
    assert.ok((await checkStates(crash, path, options, payloads, payloads.length)) > 0);
    await wal.close();
  });

  it('an unlatched failure of one of two durable writes in flight: both commits stay pending until durable', async () => {
    const crash = new CrashFs();
    const control = new ControlledFs(crash);
    const wal = await Wal.open(path, { fs: control.fs, ...options });
    const payloads = [bytes(40, 1), bytes(40, 2), bytes(40, 3)];
    await wal.append(payloads[0]!, { wait: 'durable' });
    control.holding = true;
    control.holdingSyncs = true;
    const first = track(wal.append(payloads[1]!, { wait: 'durable' }));
    await tick();
    const second = track(wal.append(payloads[2]!, { wait: 'durable' }));
    await tick();
    assert.equal(control.held.length, 2);
    const emfile = Object.assign(new Error('EMFILE'), { code: 'WAL_IO', syscall: 'open' });
    // The later write completes first, then the earlier one could not start.
    await control.held[1]!.run();
    control.held[0]!.fail(emfile);
    await ticks(5);
    assert.equal(first.state, 'pending', 'its bytes are written again, not yet durable');
    assert.equal(second.state, 'pending', 'not acknowledged over a range not yet durable');
    assert.equal(wal.failure, undefined);
    assert.ok((await checkStates(crash, path, options, payloads, 1)) > 0);
    await releaseSyncs(control);
    assert.equal(first.state, 'resolved');
    assert.equal(second.state, 'resolved');
    assert.ok((await checkStates(crash, path, options, payloads, 3)) > 0);
    await wal.close();
  });

  it('a durable write above bytes written and not synced waits for the fdatasync; power loss keeps what was acknowledged', async () => {
    const crash = new CrashFs();
    const control = new ControlledFs(crash);
    const wal = await Wal.open(path, { fs: control.fs, ...options });
    const payloads = [bytes(40, 1), bytes(40, 2), bytes(40, 3)];
    await wal.append(payloads[0]!, { wait: 'durable' });
    control.holdingSyncs = true;
    control.reset();
    await wal.append(payloads[1]!, { wait: 'written' });
    // In a later turn: a durable write of its own, above the plain write.
    const durable = track(wal.append(payloads[2]!, { wait: 'durable' }));
    await ticks(5);
    assert.equal(control.calls.pwriteDurable, 1, 'the commit went as a durable write');
    assert.equal(durable.state, 'pending', 'not durable before the fdatasync completes');
    assert.equal(control.heldSyncs.length, 1, 'the written bytes take the group commit fdatasync');
    assert.ok((await checkStates(crash, path, options, payloads, 1)) > 0);
    await releaseSyncs(control);
    assert.equal(durable.state, 'resolved');
    assert.equal(wal.durable, wal.tail);
    assert.ok((await checkStates(crash, path, options, payloads, 3)) > 0);
    await wal.close();
  });
});
