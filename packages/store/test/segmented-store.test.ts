import assert from 'node:assert/strict';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32c } from '@node-rs/crc32';
import fc from 'fast-check';
import { NodeFs } from '../src/fs/node-fs.js';
import { decodeHead, encodeHead } from '../src/head-file.js';
import {
  DEFAULT_SEGMENT_SIZE,
  MAX_SEGMENT_SIZE,
  MIN_SEGMENT_SIZE,
  SegmentedStore,
  segmentName,
} from '../src/segmented-store.js';
import { CrashFs, type CrashState } from '../src/testing/crash-fs.js';
import { FaultFs } from '../src/testing/fault-fs.js';
import { pattern, RecordingFs, rejectsCode, removeTempDirs, tempDir, tick } from './fs-helpers.js';

const S = 4096;

async function freshDir(): Promise<string> {
  return join(await tempDir(), 'log');
}

async function listing(dir: string): Promise<string[]> {
  return (await readdir(dir)).sort();
}

describe('SegmentedStore', () => {
  after(removeTempDirs);

  describe('head file', () => {
    it('encodes head 3 as the wal-db test vector', () => {
      assert.deepEqual([...encodeHead(3)], [0x03, 0, 0, 0, 0, 0, 0, 0, 0xe3, 0x35, 0x6c, 0x57]);
      assert.equal(decodeHead(encodeHead(3)), 3);
    });

    it('round-trips any head and rejects damage (property)', () => {
      fc.assert(
        fc.property(
          fc.maxSafeNat(),
          fc.nat(11),
          fc.integer({ min: 1, max: 255 }),
          (head, at, flip) => {
            const encoded = encodeHead(head);
            assert.equal(decodeHead(encoded), head);
            const damaged = Uint8Array.from(encoded);
            damaged[at]! ^= flip;
            assert.equal(decodeHead(damaged), undefined);
          },
        ),
      );
      assert.equal(decodeHead(new Uint8Array(11)), undefined);
      const huge = Buffer.alloc(12);
      huge.writeBigUInt64LE(2n ** 60n);
      huge.writeUInt32LE(crc32c(huge.subarray(0, 8)), 8);
      assert.equal(decodeHead(huge), undefined, 'beyond 2^53 - 1');
    });
  });

  it('names segments by 20-digit index and splits writes and reads across them', async () => {
    const dir = await freshDir();
    const store = await SegmentedStore.open(dir, { segmentSize: S });
    try {
      assert.equal(segmentName(7), '00000000000000000007.wal');
      const data = pattern(2 * S + 100, 1);
      await store.write(S - 50, data); // segments 0 (last 50 bytes), 1, 2, 3
      assert.deepEqual(await listing(dir), [
        segmentName(0),
        segmentName(1),
        segmentName(2),
        segmentName(3),
        'head',
        'lock',
        'meta',
      ]);
      assert.equal((await stat(join(dir, segmentName(0)))).size, S);
      assert.equal((await stat(join(dir, segmentName(3)))).size, 50);
      const seg1 = await readFile(join(dir, segmentName(1)));
      assert.deepEqual(new Uint8Array(seg1), data.subarray(50, 50 + S));
      assert.deepEqual(await store.read(S - 50, data.length), data);
      assert.deepEqual(await store.read(0, 10), new Uint8Array(10)); // gap at the start
      assert.equal(store.length, 3 * S + 50);
    } finally {
      await store.close();
    }
    const again = await SegmentedStore.open(dir);
    try {
      assert.equal(again.length, 3 * S + 50);
      assert.equal(again.segmentSize, S);
    } finally {
      await again.close();
    }
  });

  it('creates segments lazily: gaps and missing segments read as zeros', async () => {
    const dir = await freshDir();
    const store = await SegmentedStore.open(dir, { segmentSize: S });
    try {
      await store.write(5 * S + 10, pattern(20, 2));
      const names = (await listing(dir)).filter((n) => n.endsWith('.wal'));
      assert.deepEqual(names, [segmentName(5)]);
      const all = await store.read(0, 5 * S + 30);
      assert.deepEqual(all.subarray(0, 5 * S + 10), new Uint8Array(5 * S + 10));
      assert.deepEqual(all.subarray(5 * S + 10), pattern(20, 2));
    } finally {
      await store.close();
    }
    // A missing segment below the length still reads as zeros after reopen.
    const again = await SegmentedStore.open(dir);
    try {
      assert.equal(again.length, 5 * S + 30);
      assert.deepEqual(await again.read(2 * S, 8), new Uint8Array(8));
    } finally {
      await again.close();
    }
  });

  it('readyEnd creates the segment holding the end when none does: empty, durable, open (FORMAT.md §3.2)', async () => {
    // A new log (segment 0) and an end on a segment boundary (segment 2):
    // nothing before readyEnd; once it resolved, every power loss keeps the
    // segment, every state opens with the same end, writable and read-only,
    // and the next write goes to the file in the call that makes it.
    const DIR = '/data/log';
    const segmentOf = (state: Pick<CrashState, 'files'>, index: number) =>
      state.files.get(`${DIR}/${segmentName(index)}`);
    for (const end of [0, 2 * S]) {
      const fs = new CrashFs({ image: { files: new Map(), dirs: new Set(['/data']) } });
      if (end > 0) {
        const first = await SegmentedStore.open(DIR, { fs, segmentSize: S });
        await first.write(0, pattern(end, 21));
        await first.sync();
        await first.close();
        assert.equal(segmentOf(fs.snapshot(), 2), undefined);
      }
      const index = end / S;
      const store = await SegmentedStore.open(DIR, { fs, segmentSize: S });
      assert.equal(segmentOf(fs.snapshot(), index), undefined, 'an open creates no segment');
      await store.readyEnd();
      await store.readyEnd(); // again: nothing more
      assert.equal(store.length, end);
      let states = 0;
      for (const state of fs.crashStates()) {
        assert.equal(segmentOf(state, index)?.length, 0, state.description);
        for (const readOnly of [false, true]) {
          const again = await SegmentedStore.open(DIR, { fs: state.fs(), readOnly });
          assert.equal(again.length, end, state.description);
          await again.close();
        }
        states++;
      }
      assert.ok(states >= 1);
      // Open: the first write goes to the file in the call that makes it.
      const calls = fs.operations.length;
      const first = store.write(end, pattern(10, 22));
      const made = fs.operations.slice(calls).map((op) => `${op.call} ${op.path}`);
      assert.deepEqual(made, [`pwrite ${DIR}/${segmentName(index)}`]);
      await first;
      await store.close();
    }
  });

  it('readyEnd opens the segment holding the end when it was closed to make room', async () => {
    const dir = await freshDir();
    const fs = new RecordingFs(new NodeFs());
    const store = await SegmentedStore.open(dir, { fs, segmentSize: S, maxOpenSegments: 1 });
    try {
      await store.write(0, pattern(S + 100, 25)); // the end lies inside segment 1
      await store.read(0, 10); // segment 0 takes the one slot: segment 1 is closed
      fs.log.length = 0;
      await store.readyEnd();
      assert.deepEqual(fs.log, [
        `close ${join(dir, segmentName(0))}`,
        `open ${join(dir, segmentName(1))}`,
      ]);
      fs.log.length = 0;
      const write = store.write(S + 100, pattern(10, 26));
      assert.deepEqual(fs.log, [`pwrite ${join(dir, segmentName(1))}`], 'issued in the call');
      await write;
      assert.equal(store.length, S + 110);
    } finally {
      await store.close();
    }
  });

  it('readyEnd: refused read-only (nothing created); a failed directory fsync latches', async () => {
    const dir = await freshDir();
    const store = await SegmentedStore.open(dir, { segmentSize: S });
    await store.write(0, pattern(S, 23)); // segment 0 full: the end needs segment 1
    await store.close();
    const reader = await SegmentedStore.open(dir, { readOnly: true });
    try {
      await rejectsCode(reader.readyEnd(), 'WAL_READ_ONLY');
      assert.deepEqual(
        (await listing(dir)).filter((n) => n.endsWith('.wal')),
        [segmentName(0)],
      );
    } finally {
      await reader.close();
    }
    const fs = new FaultFs(new NodeFs());
    const writer = await SegmentedStore.open(dir, { fs });
    try {
      fs.inject({ method: 'syncDir', fault: 'EIO' });
      // Whether segment 1's directory entry survives a power loss is unknown:
      // nothing may be written to it and acknowledged.
      await rejectsCode(writer.readyEnd(), 'WAL_FAILED');
      await rejectsCode(writer.write(S, pattern(10, 24)), 'WAL_FAILED');
      await rejectsCode(writer.sync(), 'WAL_FAILED');
    } finally {
      await writer.close();
    }
  });

  it('fsyncs the parent when creating the directory and the directory after each create', async () => {
    const parent = await tempDir();
    const dir = join(parent, 'log');
    const fs = new RecordingFs(new NodeFs());
    const store = await SegmentedStore.open(dir, { fs, segmentSize: S });
    try {
      assert.equal(fs.log[0], `readdir ${dir}`, 'what is there is looked at first');
      assert.equal(fs.log[1], `mkdir ${dir}`);
      assert.equal(fs.log[2], `syncDir ${parent}`);
      fs.log.length = 0;
      await store.write(0, pattern(S + 1, 3));
      assert.deepEqual(
        fs.log.filter((e) => !e.startsWith('pwrite')),
        [
          `open ${join(dir, segmentName(0))}`,
          `syncDir ${dir}`,
          `open ${join(dir, segmentName(1))}`,
          `syncDir ${dir}`,
        ],
      );
    } finally {
      await store.close();
    }
  });

  it('sync() flushes only segments written since their last flush', async () => {
    const dir = await freshDir();
    const fs = new RecordingFs(new NodeFs());
    const store = await SegmentedStore.open(dir, { fs, segmentSize: S });
    try {
      await store.write(0, pattern(3 * S, 4));
      fs.log.length = 0;
      await store.sync();
      assert.equal(fs.count('fdatasync'), 3);
      fs.log.length = 0;
      await store.sync();
      assert.equal(fs.count('fdatasync'), 0, 'nothing written: nothing flushed');
      await store.write(S + 5, pattern(10, 5));
      fs.log.length = 0;
      await store.sync();
      assert.deepEqual(fs.log, [`fdatasync ${join(dir, segmentName(1))}`, ...fs.log.slice(1)]);
      assert.equal(fs.count('fdatasync'), 1);
    } finally {
      await store.close();
    }
  });

  it('a segment written while its flush is in flight stays dirty', async () => {
    const dir = await freshDir();
    const inner = new NodeFs();
    let release: (() => void) | undefined;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    let hold = false;
    const fs = new RecordingFs(inner);
    const original = fs.fdatasync.bind(fs);
    fs.fdatasync = async (file) => {
      if (hold) await gate;
      return original(file);
    };
    const store = await SegmentedStore.open(dir, { fs, segmentSize: S });
    try {
      await store.write(0, pattern(10, 6));
      await store.sync();
      await store.write(10, pattern(10, 7));
      hold = true;
      const first = store.sync(); // flush of segment 0 held at the gate
      await tick();
      await store.write(20, pattern(10, 8)); // completes during the flush
      hold = false;
      release!();
      await first;
      fs.log.length = 0;
      await store.sync();
      assert.equal(
        fs.count('fdatasync'),
        1,
        'the write during the flush was flushed by the next sync',
      );
    } finally {
      await store.close();
    }
  });

  it('the first sync after open flushes every segment and the directory', async () => {
    const dir = await freshDir();
    const first = await SegmentedStore.open(dir, { segmentSize: S });
    await first.write(0, pattern(2 * S, 9));
    await first.close();
    const fs = new RecordingFs(new NodeFs());
    const store = await SegmentedStore.open(dir, { fs });
    try {
      fs.log.length = 0;
      await store.sync();
      assert.equal(fs.count('fdatasync'), 2);
      assert.equal(fs.count('syncDir'), 1);
      fs.log.length = 0;
      await store.sync();
      assert.equal(fs.log.length, 0);
    } finally {
      await store.close();
    }
  });

  it('truncateBefore writes the head file before deleting segments, and the head is exact', async () => {
    const dir = await freshDir();
    const fs = new RecordingFs(new NodeFs());
    const store = await SegmentedStore.open(dir, { fs, segmentSize: S });
    try {
      await store.write(0, pattern(3 * S + 10, 10));
      fs.log.length = 0;
      await store.truncateBefore(2 * S + 3);
      const head = join(dir, 'head');
      assert.deepEqual(
        fs.log.filter(
          (e) => !e.startsWith('close') && !e.startsWith('ftruncate') && !e.startsWith('pwrite'),
        ),
        [
          `open ${head}.tmp`,
          `fdatasync ${head}.tmp`,
          `rename ${head}.tmp ${head}`,
          `syncDir ${dir}`,
          `unlink ${join(dir, segmentName(0))}`,
          `unlink ${join(dir, segmentName(1))}`,
          `syncDir ${dir}`,
        ],
      );
      assert.equal(decodeHead(await readFile(head)), 2 * S + 3);
      assert.equal(store.head, 2 * S + 3);
      assert.deepEqual(
        await store.read(2 * S + 3, 10),
        pattern(3 * S + 10, 10).subarray(2 * S + 3, 2 * S + 13),
      );
    } finally {
      await store.close();
    }
    const again = await SegmentedStore.open(dir);
    try {
      assert.equal(again.head, 2 * S + 3);
      assert.equal(again.length, 3 * S + 10);
    } finally {
      await again.close();
    }
  });

  it('truncateBefore of everything keeps the numbering across reopen, in an empty segment at the end (FORMAT §3.2)', async () => {
    const dir = await freshDir();
    const store = await SegmentedStore.open(dir, { segmentSize: S });
    await store.write(0, pattern(2 * S, 11));
    await store.truncateBefore(2 * S);
    assert.deepEqual(
      (await listing(dir)).filter((n) => n.endsWith('.wal')),
      [segmentName(2)],
    );
    assert.equal((await readFile(join(dir, segmentName(2)))).length, 0);
    await store.close();
    const again = await SegmentedStore.open(dir);
    try {
      assert.equal(again.head, 2 * S);
      assert.equal(again.length, 2 * S);
      await again.write(2 * S, pattern(5, 12));
      assert.deepEqual(await again.read(2 * S, 5), pattern(5, 12));
    } finally {
      await again.close();
    }
  });

  it('open deletes segments left below the head by an interrupted truncateBefore', async () => {
    const dir = await freshDir();
    const store = await SegmentedStore.open(dir, { segmentSize: S });
    await store.write(0, pattern(3 * S, 13));
    await store.close();
    await writeFile(join(dir, 'head'), encodeHead(2 * S)); // as if the unlinks never ran
    const again = await SegmentedStore.open(dir);
    try {
      assert.equal(again.head, 2 * S);
      assert.deepEqual(
        (await listing(dir)).filter((n) => n.endsWith('.wal')),
        [segmentName(2)],
      );
    } finally {
      await again.close();
    }
  });

  for (const damage of ['missing', 'damaged', 'short'] as const) {
    it(`open fails with WAL_CORRUPTION and changes nothing when the head file is ${damage} and segment 0 is gone`, async () => {
      const dir = await freshDir();
      const store = await SegmentedStore.open(dir, { segmentSize: S });
      await store.write(0, pattern(3 * S, 14));
      await store.truncateBefore(S + 1);
      await store.close();
      const head = join(dir, 'head');
      if (damage === 'missing') await import('node:fs/promises').then((m) => m.unlink(head));
      else if (damage === 'damaged')
        await writeFile(head, Buffer.from([3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]));
      else await writeFile(head, Buffer.from([3, 0, 0]));
      const before = await snapshot(dir);
      const error = await rejectsCode(SegmentedStore.open(dir), 'WAL_CORRUPTION');
      assert.match(error.message, /head file/);
      assert.deepEqual(await snapshot(dir), before, 'open changed the directory');
    });
  }

  it('a missing head file with segment 0 present means head 0', async () => {
    const dir = await freshDir();
    const store = await SegmentedStore.open(dir, { segmentSize: S });
    await store.write(0, pattern(S + 5, 15));
    await store.close();
    await import('node:fs/promises').then((m) => m.unlink(join(dir, 'head')));
    const again = await SegmentedStore.open(dir);
    try {
      assert.equal(again.head, 0);
      assert.equal(again.length, S + 5);
    } finally {
      await again.close();
    }
  });

  it('opens a wal-db style directory (segments and head, no metadata) with segmentSize', async () => {
    const dir = await freshDir();
    await import('node:fs/promises').then((m) => m.mkdir(dir));
    await writeFile(join(dir, segmentName(1)), pattern(S, 16));
    await writeFile(join(dir, segmentName(2)), pattern(100, 17));
    await writeFile(join(dir, 'head'), encodeHead(S + 7));
    await rejectsCode(SegmentedStore.open(dir), 'ERR_INVALID_ARG_VALUE');
    const store = await SegmentedStore.open(dir, { segmentSize: S });
    try {
      assert.equal(store.head, S + 7);
      assert.equal(store.length, 2 * S + 100);
      assert.deepEqual(await store.read(S + 7, 3), pattern(S, 16).subarray(7, 10));
      assert.deepEqual(await store.readMeta(), {});
    } finally {
      await store.close();
    }
    // The segment size is now recorded.
    const again = await SegmentedStore.open(dir);
    assert.equal(again.segmentSize, S);
    await again.close();
  });

  it('refuses a segment size differing from the stored one, and invalid sizes', async () => {
    const dir = await freshDir();
    const store = await SegmentedStore.open(dir, { segmentSize: 2 * S });
    await store.close();
    await rejectsCode(SegmentedStore.open(dir, { segmentSize: S }), 'ERR_INVALID_ARG_VALUE');
    const same = await SegmentedStore.open(dir, { segmentSize: 2 * S });
    await same.close();
    for (const bad of [0, MAX_SEGMENT_SIZE + 1, 4096.5, Number.NaN]) {
      await rejectsCode(SegmentedStore.open(dir, { segmentSize: bad }), 'ERR_OUT_OF_RANGE');
    }
    // Below 4 KiB: refused for a new log, a mismatch for this one.
    await rejectsCode(
      SegmentedStore.open(dir, { segmentSize: MIN_SEGMENT_SIZE - 1 }),
      'ERR_INVALID_ARG_VALUE',
    );
    const empty = await freshDir();
    await rejectsCode(
      SegmentedStore.open(empty, { segmentSize: MIN_SEGMENT_SIZE - 1 }),
      'ERR_OUT_OF_RANGE',
    );
    await assert.rejects(readdir(empty), { code: 'ENOENT' }, 'no directory for a refused size');
    await rejectsCode(
      SegmentedStore.open(dir, { segmentSize: '4096' as never }),
      'ERR_INVALID_ARG_TYPE',
    );
    await rejectsCode(SegmentedStore.open('' as never), 'ERR_INVALID_ARG_TYPE');
    await rejectsCode(SegmentedStore.open(dir, null as never), 'ERR_INVALID_ARG_TYPE');
    const fresh = await SegmentedStore.open(await freshDir());
    assert.equal(fresh.segmentSize, DEFAULT_SEGMENT_SIZE);
    await fresh.close();
  });

  it('refuses a damaged metadata file, an invalid stored size and an oversized segment', async () => {
    const dir = await freshDir();
    const store = await SegmentedStore.open(dir, { segmentSize: S });
    await store.write(0, pattern(10, 18));
    await store.updateMeta({ a: 1 });
    await store.close();
    const meta = await readFile(join(dir, 'meta'));
    const damaged = Buffer.from(meta);
    damaged[damaged.length - 2]! ^= 1;
    await writeFile(join(dir, 'meta'), damaged);
    await rejectsCode(SegmentedStore.open(dir), 'WAL_CORRUPTION');
    await writeFile(join(dir, 'meta'), meta);
    await writeFile(join(dir, segmentName(0)), pattern(S + 1, 19));
    await rejectsCode(SegmentedStore.open(dir), 'WAL_CORRUPTION');
    const { encodeMeta } = await import('../src/meta-file.js');
    await writeFile(join(dir, 'meta'), encodeMeta({ 'store.segmentSize': 100 }));
    await rejectsCode(SegmentedStore.open(dir), 'WAL_CORRUPTION');
    // Still openable once repaired: open released the lock each time.
    await writeFile(join(dir, 'meta'), meta);
    await writeFile(join(dir, segmentName(0)), pattern(S, 19));
    const again = await SegmentedStore.open(dir);
    assert.deepEqual(await again.readMeta(), { a: 1 });
    await rejectsCode(again.updateMeta({ 'store.segmentSize': 1 }), 'ERR_INVALID_ARG_VALUE');
    await again.close();
  });

  it('truncate deletes the highest segments first, fsyncs the directory, then cuts and flushes', async () => {
    const dir = await freshDir();
    const fs = new RecordingFs(new NodeFs());
    const store = await SegmentedStore.open(dir, { fs, segmentSize: S });
    try {
      await store.write(0, pattern(4 * S, 20));
      fs.log.length = 0;
      await store.truncate(S + 100);
      assert.deepEqual(
        fs.log.filter((e) => !e.startsWith('close') && !e.startsWith('size')),
        [
          `unlink ${join(dir, segmentName(3))}`,
          `unlink ${join(dir, segmentName(2))}`,
          `syncDir ${dir}`,
          `ftruncate ${join(dir, segmentName(1))}`,
          `fdatasync ${join(dir, segmentName(1))}`,
        ],
      );
      assert.equal(store.length, S + 100);
      await store.truncate(S); // on a boundary: segment 1 goes, segment 0 stays whole
      assert.deepEqual(
        (await listing(dir)).filter((n) => n.endsWith('.wal')),
        [segmentName(0)],
      );
    } finally {
      await store.close();
    }
  });

  it('truncate into a gap keeps the length across reopen', async () => {
    const dir = await freshDir();
    const store = await SegmentedStore.open(dir, { segmentSize: S });
    await store.write(0, pattern(10, 21));
    await store.write(5 * S, pattern(10, 22));
    await store.truncate(3 * S + 7);
    await store.close();
    const again = await SegmentedStore.open(dir);
    try {
      assert.equal(again.length, 3 * S + 7);
      assert.deepEqual(await again.read(3 * S, 7), new Uint8Array(7));
    } finally {
      await again.close();
    }
  });

  it('truncate down to a segment-aligned head leaves only the empty segment at the end (FORMAT §3.2)', async () => {
    const dir = await freshDir();
    const store = await SegmentedStore.open(dir, { segmentSize: S });
    await store.write(0, pattern(3 * S, 23));
    await store.truncateBefore(2 * S);
    await store.truncate(2 * S);
    await store.truncate(2 * S);
    assert.deepEqual(
      (await listing(dir)).filter((n) => n.endsWith('.wal')),
      [segmentName(2)],
    );
    assert.equal((await readFile(join(dir, segmentName(2)))).length, 0);
    await store.close();
    const again = await SegmentedStore.open(dir);
    assert.equal(again.length, 2 * S);
    assert.equal(again.head, 2 * S);
    await again.close();
  });

  it('a write racing the creation of a segment waits for its directory sync', async () => {
    // Found by the log's sync-discipline audit: a second write into a segment
    // being created went to the file before the directory fsync finished, so
    // a sync could acknowledge data in a file a power loss could still drop.
    class SlowSyncDir extends RecordingFs {
      override async syncDir(path: string): Promise<void> {
        await new Promise((resolve) => setTimeout(resolve, 20));
        await super.syncDir(path);
        this.log.push(`synced ${path}`);
      }
    }
    const dir = await freshDir();
    const fs = new SlowSyncDir(new NodeFs());
    const store = await SegmentedStore.open(dir, { fs, segmentSize: S });
    try {
      fs.log.length = 0;
      const first = store.write(0, pattern(10, 1));
      // The second write comes while the directory fsync is in flight.
      while (!fs.log.includes(`syncDir ${dir}`)) {
        await tick();
      }
      await Promise.all([first, store.write(10, pattern(10, 2)), store.sync()]);
      const synced = fs.log.indexOf(`synced ${dir}`);
      assert.ok(synced >= 0, fs.log.join('\n'));
      const writes = fs.log.flatMap((entry, at) => (entry.startsWith('pwrite') ? [at] : []));
      assert.equal(writes.length, 2);
      for (const at of writes) assert.ok(at > synced, fs.log.join('\n'));
    } finally {
      await store.close();
    }
  });

  it('a write into an open segment issues its pwrite within the call; a new segment waits', async () => {
    // A caller staging a burst without yielding (an append loop) keeps the
    // disk busy only if each write reaches the file system at once.
    const dir = await freshDir();
    const fs = new RecordingFs(new NodeFs());
    const store = await SegmentedStore.open(dir, { fs, segmentSize: S });
    try {
      await store.write(0, pattern(10, 1)); // creates and opens segment 0
      fs.log.length = 0;
      const inOpen = store.write(10, pattern(10, 2));
      assert.deepEqual(fs.log, [`pwrite ${join(dir, segmentName(0))}`]);
      const across = store.write(S - 5, pattern(10, 3)); // two segments, one new
      const intoNew = store.write(2 * S, pattern(10, 4));
      assert.equal(fs.count('pwrite'), 1, fs.log.join('\n'));
      await Promise.all([inOpen, across, intoNew]);
      assert.deepEqual(
        await store.read(0, 20),
        new Uint8Array([...pattern(10, 1), ...pattern(10, 2)]),
      );
      assert.deepEqual(await store.read(S - 5, 10), pattern(10, 3));
      assert.deepEqual(await store.read(2 * S, 10), pattern(10, 4));
    } finally {
      await store.close();
    }
  });

  it('handles concurrent writes into a new segment with one create', async () => {
    const dir = await freshDir();
    const fs = new RecordingFs(new NodeFs());
    const store = await SegmentedStore.open(dir, { fs, segmentSize: S });
    try {
      await Promise.all([
        store.write(0, pattern(10, 24)),
        store.write(10, pattern(10, 25)),
        store.read(0, 5),
      ]);
      assert.equal(fs.count('open', segmentName(0)), 1);
      assert.deepEqual(await store.read(10, 10), pattern(10, 25));
    } finally {
      await store.close();
    }
  });
});

async function snapshot(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const name of await listing(dir)) {
    out[name] = (await readFile(join(dir, name))).toString('hex');
  }
  return out;
}
