/**
 * A failed sync, then a fresh open (docs/DURABILITY.md §4). On Linux a failed
 * writeback marks the pages clean and keeps the new bytes in the page cache:
 * they read back intact, and a later fsync succeeds without writing them.
 * After a failed fdatasync or durable write, `close()` and an open of the log
 * afresh (in this process, or in the next one after this one ended), the
 * open must not take those bytes for durable: a record appended durably
 * after them would lie beyond bytes that are not on disk, and a power loss
 * would turn them into corruption below the durable hint (the log refuses to
 * open; a repair cuts the acknowledged record away). The failed log records
 * where it resumes (`wal.cutTo`), and every later open cuts there.
 *
 * The file system here is a `CrashFs` under a small wrapper that behaves as
 * Linux does at an injected failure of a segment's `fdatasync` or
 * `pwriteDurable`: the bytes stay in the page cache, the call fails, and they
 * never reach the disk. It remembers those ranges (less what was cut or
 * written and synced over later); at the power loss the disk image is the
 * page cache, everything synced, with those ranges as zeros.
 */
import assert from 'node:assert/strict';
import type { Fs, FsFile } from '@wal/store';
import { CrashFs } from '@wal/store/testing';
import { Wal } from '../../src/index.js';

const PATH = '/log';
const SEGMENT = 4096;
const payload = (length: number, value: number): Uint8Array => new Uint8Array(length).fill(value);

type Ranges = Array<[number, number]>;

/** `ranges` less `[start, end)`. */
function without(ranges: Ranges, start: number, end: number): Ranges {
  const out: Ranges = [];
  for (const [a, b] of ranges) {
    if (b <= start || a >= end) out.push([a, b]);
    else {
      if (a < start) out.push([a, start]);
      if (b > end) out.push([end, b]);
    }
  }
  return out;
}

/** The page cache and the disk as Linux keeps them apart after a failed writeback. */
class Writeback {
  /** Bytes in the page cache that never reached the disk, by path. */
  readonly lost = new Map<string, Ranges>();
  /** Bytes written since the file's last fdatasync, by path. */
  readonly #dirty = new Map<string, Ranges>();
  /** The next `fdatasync` or `pwriteDurable` of a segment fails (EIO). */
  failNext: 'fdatasync' | 'pwriteDurable' | undefined;

  /** `fs` with the failure injected and the writeback tracked. */
  wrap(fs: CrashFs): Fs {
    const eio = (syscall: string): Error =>
      Object.assign(new Error(`EIO: i/o error, ${syscall}`), { code: 'EIO', syscall, errno: -5 });
    const segment = (file: FsFile): boolean => file.path.endsWith('.wal');
    const add = (map: Map<string, Ranges>, path: string, start: number, end: number): void => {
      map.set(path, [...without(map.get(path) ?? [], start, end), [start, end]]);
    };
    const cut = (map: Map<string, Ranges>, path: string, at: number): void => {
      map.set(path, without(map.get(path) ?? [], at, Number.POSITIVE_INFINITY));
    };
    const wrapped: Partial<Fs> = {
      pwrite: async (file, bytes, position) => {
        const count = await fs.pwrite(file, bytes, position);
        add(this.#dirty, file.path, position, position + count);
        return count;
      },
      pwriteDurable: async (file, bytes, position) => {
        if (this.failNext === 'pwriteDurable' && segment(file)) {
          this.failNext = undefined;
          // Copied into the page cache; the write-through fails.
          await fs.pwrite(file, bytes, position);
          add(this.lost, file.path, position, position + bytes.length);
          // Marked clean: an earlier write's later fdatasync writes none of it.
          this.#dirty.set(
            file.path,
            without(this.#dirty.get(file.path) ?? [], position, position + bytes.length),
          );
          throw eio('write');
        }
        const count = await fs.pwriteDurable(file, bytes, position);
        this.lost.set(
          file.path,
          without(this.lost.get(file.path) ?? [], position, position + count),
        );
        return count;
      },
      fdatasync: async (file) => {
        const dirty = this.#dirty.get(file.path) ?? [];
        this.#dirty.delete(file.path);
        if (this.failNext === 'fdatasync' && segment(file)) {
          this.failNext = undefined;
          // The writeback failed: the pages are marked clean, never written.
          for (const [a, b] of dirty) add(this.lost, file.path, a, b);
          throw eio('fdatasync');
        }
        await fs.fdatasync(file);
        let lost = this.lost.get(file.path) ?? [];
        for (const [a, b] of dirty) lost = without(lost, a, b);
        this.lost.set(file.path, lost);
      },
      ftruncate: async (file, length) => {
        await fs.ftruncate(file, length);
        cut(this.lost, file.path, length);
        cut(this.#dirty, file.path, length);
      },
      unlink: async (path) => {
        await fs.unlink(path);
        this.lost.delete(path);
        this.#dirty.delete(path);
      },
    };
    return new Proxy(fs, {
      get(target, property) {
        const own = (wrapped as Record<string | symbol, unknown>)[property];
        if (own !== undefined) return own;
        // Synchronous writes and syncs would pass the tracking by: not offered.
        if (property === 'pwriteSync' || property === 'fdatasyncSync') return undefined;
        const value: unknown = Reflect.get(target, property, target);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    }) as unknown as Fs;
  }

  /** What the disk holds after a power loss now: `fs`'s page cache, the lost ranges zeros. */
  disk(fs: CrashFs): CrashFs {
    const image = fs.snapshot();
    const files = new Map(image.files);
    for (const [path, ranges] of this.lost) {
      const bytes = files.get(path);
      if (bytes === undefined) continue;
      const copy = bytes.slice();
      for (const [a, b] of ranges) copy.fill(0, a, Math.min(b, copy.length));
      files.set(path, copy);
    }
    return new CrashFs({ image: { files, dirs: image.dirs } });
  }
}

/** Every record of the log at `fs`, by LSN. */
async function records(fs: Fs, durableWrites: boolean): Promise<Map<number, Uint8Array>> {
  const wal = await Wal.open(PATH, { fs, segmentSize: SEGMENT, durableWrites });
  try {
    const out = new Map<number, Uint8Array>();
    for await (const batch of wal.iterateBatches()) {
      for (const record of batch) out.set(record.lsn, record.payload.slice());
    }
    return out;
  } finally {
    await wal.close();
  }
}

const CASES = [
  { name: 'a failed fdatasync', fail: 'fdatasync', durableWrites: false },
  { name: 'a failed durable write', fail: 'pwriteDurable', durableWrites: true },
] as const;

describe('crash: a failed sync, close() and a fresh open', function () {
  this.timeout(60_000);

  for (const { name, fail, durableWrites } of CASES) {
    for (const process of ['the same process', 'the next process'] as const) {
      it(`after ${name}, an open in ${process} cuts what was not durable: a later durable record survives a power loss`, async () => {
        const writeback = new Writeback();
        const crash = new CrashFs();
        const options = { segmentSize: SEGMENT, durableWrites };
        let wal = await Wal.open(PATH, { fs: writeback.wrap(crash), ...options });
        const a = await wal.append(payload(100, 0x41), { wait: 'durable' });
        writeback.failNext = fail;
        await assert.rejects(wal.append(payload(100, 0x42), { wait: 'durable' }), {
          code: 'WAL_FAILED',
        });
        assert.equal(wal.failure?.code, 'WAL_FAILED');
        await wal.close();
        // The failed write's bytes are in the page cache only.
        assert.ok((writeback.lost.get(`${PATH}/${'0'.repeat(20)}.wal`) ?? []).length > 0);

        const live = process === 'the same process' ? crash : crash.processCrash();
        wal = await Wal.open(PATH, { fs: writeback.wrap(live), ...options });
        const c = wal.tail;
        await wal.append(payload(100, 0x43), { wait: 'durable' });
        await wal.close();

        // A power loss now: the disk holds what was synced, not the lost bytes.
        const got = await records(writeback.disk(live), durableWrites);
        assert.deepEqual([...got.keys()], [a, c]);
        assert.deepEqual(got.get(a), payload(100, 0x41));
        assert.deepEqual(got.get(c), payload(100, 0x43));
        // The open had resumed where the failed log's durable records end.
        assert.equal(c, 108);
      });
    }
  }

  it('a read-only open of the closed failed log ends where a writable open resumes', async () => {
    const writeback = new Writeback();
    const crash = new CrashFs();
    const fs = writeback.wrap(crash);
    const wal = await Wal.open(PATH, { fs, segmentSize: SEGMENT, durableWrites: false });
    await wal.append(payload(100, 0x41), { wait: 'durable' });
    writeback.failNext = 'fdatasync';
    await assert.rejects(wal.append(payload(100, 0x42), { wait: 'durable' }), {
      code: 'WAL_FAILED',
    });
    await wal.close();
    const follower = await Wal.open(PATH, { fs, segmentSize: SEGMENT, readOnly: true });
    try {
      // The record past the durable watermark reads back intact from the
      // page cache, but the follower stops before it, as a writer resumes.
      assert.equal(follower.recovery.end, 108);
      assert.equal(follower.recovery.tornBytes, 108);
      assert.equal(follower.tail, 108);
    } finally {
      await follower.close();
    }
  });

  it('close() of a failed log reports that where it resumes could not be recorded', async () => {
    const writeback = new Writeback();
    const crash = new CrashFs();
    const base = writeback.wrap(crash);
    let refuse = false;
    // Every fdatasync fails once the segment's did: the metadata's too.
    const fs = new Proxy(base, {
      get(target, property) {
        if (property === 'fdatasync') {
          return (file: FsFile) =>
            refuse
              ? Promise.reject(Object.assign(new Error('EIO: i/o error, fsync'), { code: 'EIO' }))
              : target.fdatasync(file);
        }
        return Reflect.get(target, property, target);
      },
    });
    const wal = await Wal.open(PATH, { fs, segmentSize: SEGMENT, durableWrites: false });
    await wal.append(payload(100, 0x41), { wait: 'durable' });
    refuse = true;
    await assert.rejects(wal.append(payload(100, 0x42), { wait: 'durable' }), {
      code: 'WAL_FAILED',
    });
    await assert.rejects(wal.close(), (error: Error & { code?: string }) => {
      assert.equal(error.code, 'WAL_FAILED');
      assert.match(error.message, /resumes at offset 108/);
      return true;
    });
  });
});
