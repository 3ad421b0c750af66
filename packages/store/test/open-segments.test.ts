/**
 * The cap on open segment files (`maxOpenSegments`): validated, never
 * exceeded, least recently used closed first, never a segment in use, unsynced
 * writes fdatasynced on their own descriptor before it is closed (a failure
 * latches), and a long log read under a low descriptor limit in a child process.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import type { Fs, FsFile, OpenMode } from '../src/fs/fs.js';
import { NodeFs } from '../src/fs/node-fs.js';
import {
  DEFAULT_MAX_OPEN_SEGMENTS,
  MAX_OPEN_SEGMENTS_LIMIT,
  SegmentedStore,
  segmentName,
} from '../src/segmented-store.js';
import { CrashFs } from '../src/testing/crash-fs.js';
import { FaultFs } from '../src/testing/fault-fs.js';
import {
  pattern,
  RecordingFs,
  rejectsCode,
  removeTempDirs,
  tempDir,
  tick,
  unsyncedCloses,
} from './fs-helpers.js';

const S = 4096;

/** Records calls, and how many segment files are open now and at most. */
class CountingFs extends RecordingFs {
  openNow = 0;
  most = 0;

  override async open(path: string, mode: OpenMode): Promise<FsFile> {
    const file = await super.open(path, mode);
    if (path.endsWith('.wal')) this.most = Math.max(this.most, ++this.openNow);
    return file;
  }

  override close(file: FsFile): Promise<void> {
    if (file.path.endsWith('.wal')) this.openNow--;
    return super.close(file);
  }
}

/** Opens `/data/log` on `fs` with 4 KiB segments and at most `cap` open. */
function openCapped(fs: Fs, cap: number, readOnly = false) {
  return SegmentedStore.open('/data/log', {
    fs,
    segmentSize: S,
    maxOpenSegments: cap,
    ...(readOnly ? { readOnly } : {}),
  });
}

function crashFs(): CrashFs {
  return new CrashFs({ image: { files: new Map(), dirs: new Set(['/data']) } });
}

describe('SegmentedStore: bounded open segments', () => {
  after(removeTempDirs);

  it('validates maxOpenSegments with coded TypeError and RangeError', async () => {
    const dir = join(await tempDir(), 'log');
    for (const bad of ['2', null, 2n, true]) {
      const error = await rejectsCode(
        SegmentedStore.open(dir, { maxOpenSegments: bad as never }),
        'ERR_INVALID_ARG_TYPE',
      );
      assert.ok(error instanceof TypeError);
      assert.match(error.message, /options\.maxOpenSegments/);
    }
    for (const bad of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 31]) {
      for (const readOnly of [false, true]) {
        const error = await rejectsCode(
          SegmentedStore.open(dir, { maxOpenSegments: bad, readOnly }),
          'ERR_OUT_OF_RANGE',
        );
        assert.ok(error instanceof RangeError);
        assert.match(error.message, /options\.maxOpenSegments/);
      }
    }
    const store = await SegmentedStore.open(dir, { segmentSize: S });
    assert.equal(store.maxOpenSegments, DEFAULT_MAX_OPEN_SEGMENTS);
    await store.close();
    const most = await SegmentedStore.open(dir, { maxOpenSegments: MAX_OPEN_SEGMENTS_LIMIT });
    assert.equal(most.maxOpenSegments, MAX_OPEN_SEGMENTS_LIMIT);
    await most.close();
    assert.equal(DEFAULT_MAX_OPEN_SEGMENTS, 64);
  });

  it('closes the least recently used segment first, and fdatasyncs it first when written', async () => {
    const fs = new CountingFs(crashFs());
    const store = await openCapped(fs, 2);
    await store.write(0, pattern(3 * S, 1)); // 0, 1, 2: 0 is closed to open 2
    await store.sync();
    await store.read(S + 1, 1); // 1 is now more recent than 2
    fs.log.length = 0;
    await store.read(0, 1); // closes 2, the least recently used
    assert.deepEqual(
      fs.log.filter((e) => !e.startsWith('pread')),
      [`close /data/log/${segmentName(2)}`, `open /data/log/${segmentName(0)}`],
    );
    await store.write(S + 5, pattern(10, 2)); // 1 written, not synced
    await store.read(0, 1); // 0 most recent: 1 is next out
    fs.log.length = 0;
    await store.read(2 * S, 1);
    assert.deepEqual(
      fs.log.filter((e) => !e.startsWith('pread')),
      [
        `fdatasync /data/log/${segmentName(1)}`,
        `close /data/log/${segmentName(1)}`,
        `open /data/log/${segmentName(2)}`,
      ],
    );
    fs.log.length = 0;
    await store.sync(); // nothing left to flush: 1 was flushed when closed
    assert.equal(fs.count('fdatasync'), 0);
    assert.equal(fs.most, 2);
    await store.close();
    assert.equal(fs.openNow, 0);
  });

  it('keeps every byte through concurrent writes, reads and syncs, never over the cap (property)', async () => {
    const op = fc.oneof(
      fc.record({
        kind: fc.constant('write' as const),
        segment: fc.nat(7),
        at: fc.nat(S - 1),
        length: fc.integer({ min: 1, max: 2 * S }),
      }),
      fc.record({
        kind: fc.constant('read' as const),
        at: fc.nat(8 * S),
        length: fc.integer({ min: 1, max: 3 * S }),
      }),
      fc.record({ kind: fc.constant('sync' as const) }),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 3 }),
        fc.array(fc.array(op, { minLength: 1, maxLength: 6 }), { minLength: 1, maxLength: 6 }),
        fc.nat(8 * S),
        async (cap, batches, cut) => {
          const crash = crashFs();
          const fs = new CountingFs(crash);
          const store = await openCapped(fs, cap);
          let model = new Uint8Array(0);
          let seed = 0;
          for (const batch of batches) {
            // Writes of one batch go to distinct segments (concurrent writes
            // to overlapping ranges may land in either order); a read checks
            // only bytes no write of its batch touches.
            const taken = new Set<number>();
            const writes: [number, Uint8Array][] = [];
            for (const o of batch) {
              if (o.kind !== 'write') continue;
              const spans = [o.segment, o.segment + 1, o.segment + 2]; // 2 S bytes reach 3 segments
              if (spans.some((k) => taken.has(k))) continue;
              for (const k of spans) taken.add(k);
              writes.push([o.segment * S + o.at, pattern(o.length, ++seed)]);
            }
            const before = model;
            const touched = (offset: number) =>
              writes.some(([w, bytes]) => offset >= w && offset < w + bytes.length);
            const work = batch.map(async (o) => {
              if (o.kind === 'sync') return store.sync();
              if (o.kind === 'read') {
                const got = await store.read(o.at, o.length);
                for (let i = 0; i < Math.min(got.length, before.length - o.at); i++) {
                  if (!touched(o.at + i)) assert.equal(got[i], before[o.at + i], `at ${o.at + i}`);
                }
                return undefined;
              }
              return undefined;
            });
            for (const [offset, bytes] of writes) {
              work.push(store.write(offset, bytes));
              const end = Math.max(model.length, offset + bytes.length);
              if (end > model.length) {
                const grown = new Uint8Array(end);
                grown.set(model);
                model = grown;
              }
              model.set(bytes, offset);
            }
            await Promise.all(work);
            assert.ok(fs.most <= cap, `${fs.most} segment files open with a cap of ${cap}`);
          }
          // The exclusive calls with whatever is open or closed now.
          const length = Math.min(cut, model.length);
          await store.truncate(length);
          model = model.slice(0, length);
          const head = Math.floor(length / 2);
          await store.truncateBefore(head);
          assert.deepEqual(await store.read(head, length), model.subarray(head));
          await store.sync();
          const end = crash.mark('close');
          await store.close();
          assert.equal(fs.openNow, 0, 'close() closes every segment file');
          assert.ok(fs.most <= cap);
          assert.deepEqual(unsyncedCloses(crash.operations, end), []);
          // What was synced is there after a power loss.
          for (const state of crash.crashStates({ limit: 3 })) {
            const again = await openCapped(state.fs(), cap);
            assert.deepEqual(await again.read(head, length), model.subarray(head));
            await again.close();
          }
        },
      ),
      { numRuns: 40 },
    );
  });

  it('never closes a segment in use: with one slot, calls wait their turn', async () => {
    // Every segment's pread is held until released, so all reads are in use at once.
    const held: (() => void)[] = [];
    class SlowFs extends CountingFs {
      override async pread(file: FsFile, into: Uint8Array, position: number): Promise<number> {
        if (file.path.endsWith('.wal')) await new Promise<void>((resolve) => held.push(resolve));
        return super.pread(file, into, position);
      }
    }
    const base = crashFs();
    const writer = await openCapped(base, 4);
    await writer.write(0, pattern(4 * S, 3));
    await writer.close();
    const fs = new SlowFs(base);
    const store = await openCapped(fs, 1);
    const reads = [3, 0, 2, 1, 0].map((k) => store.read(k * S + 10, 100));
    const written = store.write(2 * S + 1000, pattern(50, 4)); // beside the reads
    const synced = store.sync();
    let settled = 0;
    for (const p of [...reads, written, synced]) p.finally(() => settled++).catch(() => undefined);
    for (let i = 0; settled < 7; i++) {
      assert.ok(i < 100_000, `${settled} of 7 calls settled`);
      await tick();
      if (i % 20 === 19) for (const resolve of held.splice(0)) resolve(); // others run meanwhile
      assert.ok(fs.openNow <= 1);
    }
    const got = await Promise.all(reads);
    [3, 0, 2, 1, 0].forEach((k, i) => {
      assert.deepEqual(got[i], pattern(4 * S, 3).subarray(k * S + 10, k * S + 110));
    });
    await written;
    await synced;
    assert.equal(fs.most, 1);
    await store.close();
  });

  it('a failed fdatasync of a segment closed to make room latches the store', async () => {
    const dir = join(await tempDir(), 'log');
    const fs = new FaultFs(new NodeFs());
    const store = await SegmentedStore.open(dir, { fs, segmentSize: S, maxOpenSegments: 1 });
    await store.write(0, pattern(100, 5));
    await store.sync();
    await store.write(100, pattern(100, 6)); // segment 0 dirty again
    fs.inject({ method: 'fdatasync', fault: 'EIO' });
    // Creating segment 1 closes segment 0, whose fdatasync fails.
    const error = await rejectsCode(store.write(S, pattern(10, 7)), 'WAL_FAILED');
    assert.match(error.message, /fdatasync of .*00000000000000000000\.wal/);
    assert.equal((error.cause as { errno?: string }).errno, 'EIO');
    // The failed fdatasync went to segment 0's own descriptor, which was then closed.
    const calls = fs.calls.map((c) => `${c.method} ${c.path.slice(-24)}`);
    const fsync = calls.lastIndexOf(`fdatasync ${segmentName(0)}`);
    assert.ok(
      fsync >= 0 && calls.indexOf(`close ${segmentName(0)}`, fsync) > fsync,
      calls.join('\n'),
    );
    for (const later of [store.sync(), store.read(0, 10), store.write(0, pattern(1, 8))]) {
      await assert.rejects(later, (e: unknown) => e === error);
    }
    await store.close();
    // The lock is released and the synced bytes are there.
    const again = await SegmentedStore.open(dir, { maxOpenSegments: 1 });
    assert.deepEqual(await again.read(0, 100), pattern(100, 5));
    await again.close();
  });

  it('a failed close of a segment closed to make room fails that call only, unless its flush failed', async () => {
    const fs = new FaultFs(crashFs());
    const store = await openCapped(fs, 1);
    await store.write(0, pattern(2 * S, 9));
    await store.sync();
    fs.inject({ method: 'close', fault: 'EIO' });
    const error = await rejectsCode(store.read(0, 10), 'WAL_IO');
    assert.equal((error as { errno?: string }).errno, 'EIO');
    assert.deepEqual(await store.read(0, 10), pattern(2 * S, 9).subarray(0, 10));
    assert.deepEqual(await store.read(S, 10), pattern(2 * S, 9).subarray(S, S + 10));
    // A failed fdatasync and a failed close: the latched failure is what the call sees.
    await store.write(S + 5, pattern(3, 10));
    fs.inject({ method: 'fdatasync', fault: 'EIO' });
    fs.inject({ method: 'close', fault: 'EIO' });
    await rejectsCode(store.read(0, 10), 'WAL_FAILED');
    await store.close();
  });

  it('read-only handles stay under the cap through reads and refresh()', async () => {
    const base = crashFs();
    const writer = await openCapped(base, 8);
    await writer.write(0, pattern(6 * S, 10));
    const fs = new CountingFs(base);
    const reader = await openCapped(fs, 2, true);
    for (let k = 5; k >= 0; k--) {
      assert.deepEqual(
        await reader.read(k * S, S),
        pattern(6 * S, 10).subarray(k * S, (k + 1) * S),
      );
    }
    await writer.write(6 * S, pattern(2 * S, 11));
    await writer.truncateBefore(2 * S);
    const pending = reader.read(2 * S, 2 * S); // in flight across the refresh
    await reader.refresh();
    assert.deepEqual(await pending, pattern(6 * S, 10).subarray(2 * S, 4 * S));
    assert.equal(reader.head, 2 * S);
    assert.equal(reader.length, 8 * S);
    const all = await reader.read(2 * S, 6 * S);
    assert.deepEqual(all.subarray(0, 4 * S), pattern(6 * S, 10).subarray(2 * S));
    assert.deepEqual(all.subarray(4 * S), pattern(2 * S, 11));
    assert.ok(fs.most <= 2, `${fs.most} open`);
    assert.equal(fs.count('fdatasync'), 0);
    await reader.close();
    assert.equal(fs.openNow, 0);
    await writer.close();
  });

  describe('a long log under a low descriptor limit (child process)', function () {
    this.timeout(60_000);
    const child = fileURLToPath(new URL('./many-segments.js', import.meta.url));
    const run = (dir: string, cap: string) =>
      spawnSync(
        'bash',
        ['-c', 'ulimit -n 128 && exec "$@"', 'bash', process.execPath, child, dir, '160', cap],
        { encoding: 'utf8' },
      );

    it('writes, syncs, reopens and reads 160 segments with the default cap', async () => {
      for (const cap of ['default']) {
        const result = run(join(await tempDir(), 'log'), cap);
        assert.equal(result.status, 0, `${cap}: ${result.stderr}`);
        assert.match(result.stdout, /read 160 segments twice/);
      }
    });

    it('fails with EMFILE when reopened without the cap, so the limit is in force', async () => {
      const result = run(join(await tempDir(), 'log'), String(MAX_OPEN_SEGMENTS_LIMIT));
      assert.notEqual(result.status, 0, result.stdout);
      assert.match(result.stderr, /EMFILE/);
    });
  });
});
