/**
 * `updateMetaAfterFailure`: after a failed fsync or durable write of a data
 * file the latched store still replaces its metadata (a file of its own),
 * durably, for the next open to read; after a failed fsync of the metadata
 * or of the directory it refuses (a second fsync would prove nothing).
 */
import assert from 'node:assert/strict';
import { FileStore } from '../src/file-store.js';
import { SegmentedStore } from '../src/segmented-store.js';
import type { Store } from '../src/store.js';
import { CrashFs } from '../src/testing/crash-fs.js';
import { FaultFs } from '../src/testing/fault-fs.js';

const S = 4096;

const backends: Array<{
  name: string;
  open: (fs: FaultFs | CrashFs) => Promise<Store>;
  data: RegExp;
}> = [
  { name: 'FileStore', open: (fs) => FileStore.open('/log', { fs }), data: /^\/log$/ },
  {
    name: 'SegmentedStore',
    open: (fs) => SegmentedStore.open('/log', { fs, segmentSize: S }),
    data: /\.wal$/,
  },
];

describe('updateMetaAfterFailure', () => {
  for (const { name, open, data } of backends) {
    describe(name, () => {
      for (const kind of ['fdatasync', 'pwriteDurable'] as const) {
        it(`after a failed ${kind} of the data: the metadata is replaced, durably`, async () => {
          const crash = new CrashFs();
          const fs = new FaultFs(crash);
          const store = await open(fs);
          await store.updateMeta({ kept: 1 });
          fs.inject({
            when: (call) => (call.method === kind && data.test(call.path) ? 'EIO' : undefined),
          });
          const failing =
            kind === 'fdatasync'
              ? store.write(0, new Uint8Array(100).fill(1)).then(() => store.sync())
              : store.writeDurable!(0, new Uint8Array(100).fill(1));
          await assert.rejects(failing, { code: 'WAL_FAILED' });
          await assert.rejects(store.updateMeta({ mark: 5 }), { code: 'WAL_FAILED' });
          await store.updateMetaAfterFailure!({ mark: 5 });
          // The rest stays refused.
          await assert.rejects(store.readMeta(), { code: 'WAL_FAILED' });
          await store.close();
          // A power loss now: the record is on disk.
          const reopened = await open(crash.powerLoss({ mode: 'sample' }).fs());
          assert.deepEqual(await reopened.readMeta(), { kept: 1, mark: 5 });
          await reopened.close();
        });
      }

      it('after a failed directory fsync: refused with the latched failure, nothing written', async () => {
        const crash = new CrashFs();
        const fs = new FaultFs(crash);
        const store = await open(fs);
        fs.inject({ method: 'syncDir', fault: 'EIO', persistent: true });
        await assert.rejects(store.updateMeta({ a: 1 }), { code: 'WAL_FAILED' });
        const calls = fs.calls.length;
        await assert.rejects(store.updateMetaAfterFailure!({ mark: 5 }), { code: 'WAL_FAILED' });
        assert.equal(fs.calls.length, calls);
        await store.close();
      });

      it('without a failure: updateMeta', async () => {
        const store = await open(new CrashFs());
        await store.updateMetaAfterFailure!({ a: 1 });
        assert.deepEqual(await store.readMeta(), { a: 1 });
        await store.close();
      });
    });
  }
});
