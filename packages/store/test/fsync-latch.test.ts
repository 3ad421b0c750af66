/**
 * Every fsync failure (data, directory, metadata, head) in every backend
 * operation latches the store, and so does a failed ftruncate, and close() still releases the lock: a
 * workload is run once to count its fsyncs, then once per fsync index N with
 * a persistent failure from the N-th fsync on.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { errorCode } from '@wal/errors';
import { FileStore } from '../src/file-store.js';
import { NodeFs } from '../src/fs/node-fs.js';
import { SegmentedStore } from '../src/segmented-store.js';
import type { Store } from '../src/store.js';
import { FaultFs, FSYNC_METHODS } from '../src/testing/fault-fs.js';
import { removeTempDirs, tempDir } from './fs-helpers.js';

const S = 4096;

type Step = [name: string, run: (store: Store) => Promise<unknown>];

const steps: Step[] = [
  ['write across segments', (s) => s.write(0, new Uint8Array(3 * S + 100).fill(1))],
  ['sync', (s) => s.sync()],
  ['updateMeta', (s) => s.updateMeta({ a: 1 })],
  ['truncateBefore', (s) => s.truncateBefore(S + 10)],
  ['write into a new segment', (s) => s.write(4 * S, new Uint8Array(10).fill(2))],
  ['sync again', (s) => s.sync()],
  ['truncate', (s) => s.truncate(2 * S + 5)],
  ['updateMeta again', (s) => s.updateMeta({ b: 2 })],
  ['write', (s) => s.write(2 * S + 5, new Uint8Array(10).fill(3))],
  ['writeDurable', (s) => s.writeDurable!(2 * S + 25, new Uint8Array(10).fill(5))],
  ['writeDurable into a new segment', (s) => s.writeDurable!(5 * S + 1, new Uint8Array(10))],
  [
    'writeNow',
    async (s) => {
      const bytes = new Uint8Array(10).fill(4);
      if (!s.writeNow!(2 * S + 15, bytes)) await s.write(2 * S + 15, bytes);
    },
  ],
  [
    'syncNow',
    async (s) => {
      if (!s.syncNow!()) await s.sync();
    },
  ],
  ['final sync', (s) => s.sync()],
];

interface Backend {
  name: string;
  open: (location: string, fs?: FaultFs) => Promise<Store>;
  location: () => Promise<string>;
}

const backends: Backend[] = [
  {
    name: 'FileStore',
    open: (path, fs) => FileStore.open(path, fs ? { fs } : {}),
    location: async () => join(await tempDir(), 'log'),
  },
  {
    name: 'SegmentedStore',
    open: (dir, fs) => SegmentedStore.open(dir, fs ? { fs, segmentSize: S } : { segmentSize: S }),
    location: async () => join(await tempDir(), 'log'),
  },
  {
    // Segments are closed to make room between writes and syncs: their
    // fdatasyncs happen during writes and reads too.
    name: 'SegmentedStore (1 open segment)',
    open: (dir, fs) =>
      SegmentedStore.open(dir, { segmentSize: S, maxOpenSegments: 1, ...(fs ? { fs } : {}) }),
    location: async () => join(await tempDir(), 'log'),
  },
];

function causeChain(error: unknown): unknown[] {
  const chain: unknown[] = [];
  for (let e = error; e !== undefined && e !== null; e = (e as { cause?: unknown }).cause)
    chain.push(e);
  return chain;
}

for (const backend of backends) {
  describe(`${backend.name}: every fsync failure latches`, () => {
    after(removeTempDirs);

    it('enumerates a persistent fsync failure at every fsync of a workload', async function () {
      this.timeout(120_000);
      const counting = new FaultFs(new NodeFs());
      const store = await backend.open(await backend.location(), counting);
      for (const [, run] of steps) await run(store);
      await store.close();
      const fsyncsOf = (fs: FaultFs) =>
        FSYNC_METHODS.reduce((sum, method) => sum + fs.count(method), 0);
      const total = fsyncsOf(counting);
      assert.ok(total >= 10, `the workload makes ${total} fsyncs`);
      const hit = new Set<string>();

      for (let n = 1; n <= total; n++) {
        const location = await backend.location();
        const fs = new FaultFs(new NodeFs());
        fs.inject({ method: FSYNC_METHODS, at: n, fault: 'EIO', persistent: true });
        const fsyncs = () => fsyncsOf(fs);
        let opened: Store | undefined;
        try {
          opened = await backend.open(location, fs);
        } catch (error) {
          assert.ok(fsyncs() >= n, `open failed before fsync ${n}: ${String(error)}`);
          assert.equal(errorCode(error), 'WAL_IO');
          hit.add(`open (${n})`);
        }
        if (opened !== undefined) {
          let failed: Error | undefined;
          for (const [name, run] of steps) {
            const before = fsyncs();
            try {
              await run(opened);
              assert.ok(failed === undefined, `${name} succeeded after the failure at fsync ${n}`);
              assert.ok(before >= n || fsyncs() < n, `${name} hit fsync ${n} but resolved`);
            } catch (error) {
              const code = errorCode(error);
              assert.equal(code, 'WAL_FAILED', `${name} at fsync ${n}: ${String(error)}`);
              if (failed === undefined) {
                assert.ok(fsyncs() >= n, `${name} failed before fsync ${n}`);
                failed = error as Error;
                hit.add(name);
              } else {
                assert.equal(error, failed, 'later calls reject with the same latched error');
              }
              const chain = causeChain(error);
              assert.ok(
                chain.some((e) => errorCode(e) === 'EIO'),
                'the cause is the failed fsync',
              );
            }
          }
          assert.ok(failed !== undefined, `fsync ${n} never surfaced`);
          await assert.rejects(opened.read(S + 10, 1), { code: 'WAL_FAILED' });
          await assert.rejects(opened.readMeta(), { code: 'WAL_FAILED' });
          await opened.close(); // never rejects for the latched failure
        }
        // The lock was released: a clean open succeeds.
        const again = await backend.open(location);
        await again.close();
      }
      // Every kind of operation met a failure at least once.
      for (const name of [
        'sync',
        'syncNow',
        'updateMeta',
        'truncateBefore',
        'truncate',
        'writeDurable',
      ]) {
        assert.ok(hit.has(name), `no failure hit ${name}: ${[...hit].join(', ')}`);
      }
    });

    it('a failed ftruncate latches too: the length is unknown, nothing after it is trusted', async () => {
      const location = await backend.location();
      const fs = new FaultFs(new NodeFs());
      const store = await backend.open(location, fs);
      await store.write(0, new Uint8Array(2 * S + 100).fill(1));
      await store.sync();
      fs.inject({ method: 'ftruncate', fault: 'EIO' });
      const error = await store.truncate(S + 10).then(
        () => assert.fail('truncate resolved'),
        (error: unknown) => error,
      );
      assert.equal(errorCode(error), 'WAL_FAILED');
      assert.ok(causeChain(error).some((e) => errorCode(e) === 'EIO'));
      assert.equal(store.length, 2 * S + 100, 'the length is not moved to the failed cut');
      for (const run of [
        () => store.write(S + 10, new Uint8Array(5)),
        () => store.sync(),
        () => store.read(0, 1),
        () => store.truncate(S),
      ]) {
        await assert.rejects(run(), (later: unknown) => later === error);
      }
      await store.close();
      const again = await backend.open(location);
      await again.close();
    });
  });
}
