/**
 * File-system failures become typed errors naming the file, and a typed error
 * raised below the engine keeps its code and offset (it is not re-wrapped as
 * a generic `WAL_IO`).
 */
import assert from 'node:assert/strict';
import { errorCode, IoError, NoSpaceError } from '@wal/errors';
import type { FsFile } from '@wal/store';
import { CrashFs, type Fault, FaultFs } from '@wal/store/testing';
import { Lsm } from '../src/index.js';
import { bytes, text } from './helpers.js';

const DIR = '/db';
/** The marker is written under its temporary name, then renamed (docs/LSM-FORMAT.md §9). */
const MARKER = `${DIR}/LSM.tmp`;

/** Opens a new store whose marker write or sync fails with `fault`; resolves the rejection. */
async function failedCreation(method: 'pwrite' | 'fdatasync', fault: Fault): Promise<unknown> {
  const fs = new FaultFs(new CrashFs());
  fs.inject({ method, when: (call) => call.path === MARKER, fault });
  try {
    const db = await Lsm.open(DIR, { fs: fs as never });
    await db.close();
  } catch (error) {
    return error;
  }
  assert.fail('the open succeeded');
}

describe('I/O errors', () => {
  it('ENOSPC writing a file is WAL_NO_SPACE naming the file, with errno and syscall', async () => {
    const error = await failedCreation('pwrite', 'ENOSPC');
    assert.ok(error instanceof NoSpaceError, String(error));
    assert.equal(error.code, 'WAL_NO_SPACE');
    assert.equal(error.errno, 'ENOSPC');
    assert.equal(error.syscall, 'write');
    assert.match(error.message, /creating the marker \/db\/LSM failed \(ENOSPC\)/);
  });

  it('EIO from fdatasync is WAL_IO naming the file, with errno and syscall', async () => {
    const error = await failedCreation('fdatasync', 'EIO');
    assert.ok(error instanceof IoError && !(error instanceof NoSpaceError), String(error));
    assert.equal(error.code, 'WAL_IO');
    assert.equal(error.errno, 'EIO');
    assert.equal(error.syscall, 'fdatasync');
    assert.match(error.message, /\/db\/LSM failed \(EIO\)/);
  });

  it('a typed error from below keeps its own message and offset', async () => {
    // A write that makes no progress is refused by @wal/store as WAL_IO at
    // the offset concerned; the engine passes that error on as it is.
    const error = await failedCreation('pwrite', { short: 0 });
    assert.ok(error instanceof IoError, String(error));
    assert.equal(error.code, 'WAL_IO');
    assert.equal(error.offset, 0);
    assert.match(error.message, /\/db\/LSM\.tmp made no progress at position 0/);
  });

  /**
   * Holds the writes to the data log (`pwrite`, `pwriteDurable`) counted
   * from `holding()` on, each until its turn is released; a write released
   * with `fail` meets an injected `EIO`.
   */
  class HeldLog extends FaultFs {
    readonly #gates: (() => void)[] = [];
    readonly #held: Promise<void>[] = [];
    #holding = false;
    /** Writes to the log that reached the hold. */
    arrived = 0;

    holding(count: number): void {
      this.#holding = true;
      for (let i = 0; i < count; i++) {
        this.#held.push(new Promise<void>((resolve) => this.#gates.push(resolve)));
      }
    }

    /**
     * Lets a held write go (the `which`-th of those still held; default the
     * first); `fail`: it fails with EIO (the log's writes after it too, or,
     * `once`, only it): every write in the log's directory, or
     * (`segmentsOnly`) those of its segments, the metadata's going through.
     */
    release(fail = false, { which = 0, once = false, segmentsOnly = false } = {}): void {
      if (fail)
        this.inject({
          method: ['pwrite', 'pwriteDurable'],
          when: (call) =>
            call.path.startsWith(`${DIR}/wal/`) && (!segmentsOnly || call.path.endsWith('.wal')),
          persistent: !once,
        });
      this.#gates.splice(which, 1)[0]!();
    }

    async #hold(file: FsFile): Promise<void> {
      if (!this.#holding || !file.path.startsWith(`${DIR}/wal/`)) return;
      const gate = this.#held[this.arrived++];
      if (gate !== undefined) await gate;
    }

    override async pwrite(file: FsFile, data: Uint8Array, position: number): Promise<number> {
      await this.#hold(file);
      return super.pwrite(file, data, position);
    }

    constructor(inner: CrashFs) {
      super(inner);
      const durable = this.pwriteDurable!;
      Object.assign(this, {
        pwriteDurable: async (file: FsFile, data: Uint8Array, position: number) => {
          await this.#hold(file);
          return durable(file, data, position);
        },
      });
    }
  }

  const settle = (writes: Promise<void>[]) => Promise.allSettled(writes);
  const visible = async (store: Lsm): Promise<string[]> => {
    const seen: string[] = [];
    for await (const [key] of store.iterator()) seen.push(text(key)!);
    return seen;
  };
  const keys = (prefix: string, count: number) =>
    Array.from({ length: count }, (_, i) => bytes(`${prefix}${String(i).padStart(5, '0')}`));

  for (const [applied, pending] of [
    [1500, 1500],
    [1100, 2000],
  ] as const) {
    for (const [sync, segmentsOnly] of [
      [false, false],
      [true, true],
      [true, false],
    ] as const) {
      const scope = segmentsOnly ? "the log's segments fail" : 'every write in its directory fails';
      const kept = !sync
        ? 'the rest'
        : segmentsOnly
          ? 'the durable writes only'
          : 'the rest, the failed write whole or not at all';
      it(`EIO writing the data log with ${pending} ${sync ? 'durable' : 'written-level'} writes pending, ${applied} applied just before (${scope}): each pending write rejects, none is visible, later writes are refused, a reopen keeps ${kept}`, async () => {
        const crash = new CrashFs();
        const fs = new HeldLog(crash);
        const options = { fs: fs as never, segmentSize: 1 << 22, writeBufferSize: 16 << 20 };
        let db = await Lsm.open(DIR, options);
        await db.put(bytes('durable'), bytes('before'), { sync: true });
        // Two turns of writes, each one write to the log, held: the second
        // turn is queued behind the first when the first is applied.
        fs.holding(2);
        const first = keys('applied-', applied).map((key) => db.put(key, bytes('a')));
        await new Promise((resolve) => setImmediate(resolve));
        const second = keys('pending-', pending).map((key) => db.put(key, bytes('p'), { sync }));
        while (fs.arrived < 2) await new Promise((resolve) => setImmediate(resolve));
        fs.release();
        assert.ok((await settle(first)).every((result) => result.status === 'fulfilled'));
        // The first turn is visible; the second waits for its write, which fails.
        assert.equal(
          text(await db.get(bytes(`applied-${String(applied - 1).padStart(5, '0')}`))),
          'a',
        );
        assert.equal(await db.get(bytes('pending-00000')), undefined);
        fs.release(true, { segmentsOnly });
        const results = await settle(second);
        const failure = (results[0] as PromiseRejectedResult).reason;
        const code = errorCode(failure);
        assert.ok(code === 'WAL_WRITE_FAILED' || code === 'WAL_FAILED', String(failure));
        let root: unknown = failure;
        while ((root as Error).cause !== undefined) root = (root as Error).cause;
        assert.equal(errorCode(root), 'EIO', String(failure));
        for (const [i, result] of results.entries()) {
          assert.equal(result.status, 'rejected', `pending write ${i}`);
          assert.equal((result as PromiseRejectedResult).reason, failure, `pending write ${i}`);
        }
        const expected = ['durable', ...keys('applied-', applied).map((key) => text(key)!)].sort();
        assert.deepEqual(await visible(db), expected);
        for (const key of keys('pending-', pending)) assert.equal(await db.get(key), undefined);
        await assert.rejects(db.put(bytes('later'), bytes('x')), (error) => error === failure);
        await assert.rejects(
          db.batch([{ type: 'put', key: bytes('later'), value: bytes('x') }]),
          (error) => error === failure,
        );
        // A power loss right after the failure: the durable write is there,
        // an applied one may be (it was written, not synced), and so may a
        // pending one of durable writes: their write failed as a sync, yet
        // its bytes were in the page cache and may have reached the disk.
        for (const lost of crash.crashStates({ mode: 'sample', limit: 6, seed: applied })) {
          const reopened = await Lsm.open(DIR, { ...options, fs: lost.fs() });
          const seen = await visible(reopened);
          assert.ok(seen.includes('durable'), `${lost.description}: ${seen.join()}`);
          const foreign = seen.filter(
            (key) =>
              key !== 'durable' &&
              !key.startsWith('applied-') &&
              !(sync && key.startsWith('pending-')),
          );
          assert.deepEqual(foreign, [], lost.description);
          await reopened.close();
        }
        // The failed durable write's bytes are in the page cache (a writeback
        // error: DURABILITY.md §4). The log records where it resumes in its
        // metadata, and its close waits for that record: when the metadata's
        // writes fail too, it cannot be made and the close says so.
        const recorded = !sync || segmentsOnly;
        const closed = await db.close().then(
          () => undefined,
          (error: unknown) => error,
        );
        if (sync && !segmentsOnly) {
          assert.equal(errorCode(closed), 'WAL_FAILED', String(closed));
          assert.match(String((closed as Error).message), /resume/);
        } else assert.equal(closed, undefined, String(closed));
        // A restart (the page cache kept). After a failed write: what was
        // written before it, nothing after. After a failed durable write (a
        // failed sync), the log resumes at the durable watermark: the applied
        // writes were never durable (the failed fdatasync covered them) and
        // are dropped although they read back intact (DURABILITY.md §4).
        // Unless the resume point could not be recorded: then the failed
        // write reads back from the page cache too, all of it or none.
        db = await Lsm.open(DIR, { ...options, fs: crash });
        const restarted = await visible(db);
        if (!sync) assert.deepEqual(restarted, expected);
        else if (recorded) assert.deepEqual(restarted, ['durable']);
        else {
          const back = restarted.filter((key) => key.startsWith('pending-')).length;
          assert.ok(back === 0 || back === pending, `${back} of ${pending} pending writes back`);
          assert.deepEqual(
            restarted.filter((key) => !key.startsWith('pending-')),
            expected,
          );
        }
        await db.put(bytes('later'), bytes('x'), { sync: true });
        await db.close();
        // A power loss: at least every durable write. Without the record, the
        // documented window (DURABILITY.md §4): the bytes read back from the
        // page cache were never durable, and the log may refuse to open,
        // WAL_CORRUPTION below the durable hint, rather than lose 'later'.
        for (const lost of crash.crashStates({ mode: 'sample', limit: recorded ? 1 : 6 })) {
          const opened = await Lsm.open(DIR, { ...options, fs: lost.fs() }).then(
            (store) => store,
            (error: unknown) => error,
          );
          if (!(opened instanceof Lsm)) {
            assert.ok(!recorded, `${lost.description}: ${String(opened)}`);
            assert.equal(errorCode(opened), 'WAL_CORRUPTION', String(opened));
            continue;
          }
          const seen = await visible(opened);
          assert.ok(seen.includes('durable') && seen.includes('later'), seen.join());
          const back = seen.filter((key) => key.startsWith('pending-')).length;
          if (recorded) {
            assert.equal(back, 0, seen.join());
            if (sync) assert.deepEqual(seen, ['durable', 'later'], lost.description);
          } else assert.ok(back === 0 || back === pending, `${lost.description}: ${back} pending`);
          await opened.close();
        }
      });
    }
  }

  it('a log write still in flight lands after a later one failed: after a restart or a power loss each of its batches is whole or absent, every acknowledged write there', async () => {
    const crash = new CrashFs();
    const fs = new HeldLog(crash);
    const options = { fs: fs as never, segmentSize: 1 << 22, writeBufferSize: 16 << 20 };
    const db = await Lsm.open(DIR, options);
    await db.put(bytes('durable'), bytes('before'), { sync: true });
    // Batches of 8 keys, durable and written-level in turn.
    const batch = (prefix: string, n: number) =>
      db.batch(
        keys(`${prefix}${String(n).padStart(3, '0')}-`, 8).map((key) => ({
          type: 'put' as const,
          key,
          value: new Uint8Array(300).fill(n),
        })),
        { sync: n % 2 === 0 },
      );
    // Two log writes in flight: the first turn's, and the second's queued behind it.
    fs.holding(2);
    const first = Array.from({ length: 40 }, (_, n) => batch('first-', n));
    await new Promise((resolve) => setImmediate(resolve));
    const second = Array.from({ length: 40 }, (_, n) => batch('second-', n));
    while (fs.arrived < 2) await new Promise((resolve) => setImmediate(resolve));
    // The second fails before the first completes; the first then lands.
    fs.release(true, { which: 1, once: true });
    const failed = await settle(second);
    assert.ok(failed.every((result) => result.status === 'rejected'));
    fs.release();
    const outcomes = await settle(first);
    const acknowledged = outcomes.flatMap((result, n) =>
      result.status === 'fulfilled' ? [n] : [],
    );
    /**
     * Every batch of the first turn whole or absent, the acknowledged ones
     * present; none of the second, or (`failedMayLand`: after a power loss,
     * its write having failed as a sync, its bytes in the page cache) each
     * of its batches whole or absent.
     */
    const check = async (store: Lsm, where: string, failedMayLand = false): Promise<void> => {
      const seen = await visible(store);
      assert.ok(seen.includes('durable'), where);
      if (failedMayLand) {
        for (let n = 0; n < second.length; n++) {
          const prefix = `second-${String(n).padStart(3, '0')}-`;
          const count = seen.filter((key) => key.startsWith(prefix)).length;
          assert.ok(count === 0 || count === 8, `${where}: failed batch ${n} torn`);
        }
      } else assert.ok(!seen.some((key) => key.startsWith('second-')), where);
      for (let n = 0; n < first.length; n++) {
        const mine = keys(`first-${String(n).padStart(3, '0')}-`, 8);
        const values = await Promise.all(mine.map((key) => store.get(key)));
        const present = values.filter((value) => value !== undefined);
        assert.ok(
          present.length === 0 || present.length === mine.length,
          `${where}: batch ${n} torn`,
        );
        for (const value of present) assert.deepEqual(value, new Uint8Array(300).fill(n), where);
        if (acknowledged.includes(n))
          assert.equal(present.length, mine.length, `${where}: batch ${n}`);
      }
    };
    for (const lost of crash.crashStates({ mode: 'sample', limit: 8 })) {
      const reopened = await Lsm.open(DIR, { ...options, fs: lost.fs() });
      await check(reopened, lost.description, true);
      await reopened.close();
    }
    await db.close().catch(() => undefined);
    const restarted = await Lsm.open(DIR, { ...options, fs: crash });
    await check(restarted, 'restart');
    // The write landed whole, but past the durable watermark of the failed
    // log, which recorded that it resumes there (docs/FORMAT.md §8.3): after a
    // restart (the page cache kept), as after a reopen(), the batches it held
    // that were not acknowledged are gone.
    for (let n = 0; n < first.length; n++) {
      if (acknowledged.includes(n)) continue;
      assert.equal(
        await restarted.get(bytes(`first-${String(n).padStart(3, '0')}-00000`)),
        undefined,
        `batch ${n}`,
      );
    }
    await restarted.close();
  });
});
