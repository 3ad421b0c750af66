/**
 * `syncNow` of the file backends under power loss (CrashFs): bytes that
 * `writeNow` wrote and a `syncNow` that returned true covered survive every
 * crash state; bytes written after it may be lost. (The conformance suite
 * cannot tell a `syncNow` that syncs from one that only says so: a reopen
 * reads the page cache.)
 */
import assert from 'node:assert/strict';
import { FileStore } from '../src/file-store.js';
import type { Fs } from '../src/fs/fs.js';
import { SegmentedStore } from '../src/segmented-store.js';
import type { Store } from '../src/store.js';
import { CrashFs } from '../src/testing/crash-fs.js';
import { pattern } from './fs-helpers.js';

const SEGMENT = 4096;
const LOCATION = '/log';

const BACKENDS: ReadonlyArray<{ name: string; open(fs: Fs): Promise<Store> }> = [
  { name: 'FileStore', open: (fs) => FileStore.open(LOCATION, { fs }) },
  {
    name: 'SegmentedStore',
    open: (fs) => SegmentedStore.open(LOCATION, { fs, segmentSize: SEGMENT }),
  },
];

/** Written with `writeNow` into files that exist, then covered by `syncNow`: in two segments. */
const SYNCED: ReadonlyArray<readonly [number, Uint8Array]> = [
  [100, pattern(900, 2)],
  [1500, pattern(1000, 3)],
  [SEGMENT + 10, pattern(500, 4)],
];
/** Written with `writeNow` after the `syncNow`: never synced. */
const UNSYNCED = [SEGMENT + 510, pattern(700, 5)] as const;

describe('syncNow under power loss (CrashFs)', () => {
  for (const backend of BACKENDS) {
    it(`${backend.name}: what writeNow wrote and syncNow covered survives every crash state`, async () => {
      const fs = new CrashFs();
      const store = await backend.open(fs);
      // The files exist and are durable: the writes below can be done at once.
      await store.write(0, pattern(100, 1));
      await store.write(SEGMENT, pattern(10, 6));
      await store.sync();
      const expected = new Uint8Array(SEGMENT + 510);
      expected.set(pattern(100, 1), 0);
      expected.set(pattern(10, 6), SEGMENT);
      for (const [at, bytes] of SYNCED) {
        assert.equal(store.writeNow!(at, bytes), true, `writeNow at ${at}`);
        expected.set(bytes, at);
      }
      assert.equal(store.syncNow!(), true, 'syncNow');
      assert.equal(store.writeNow!(UNSYNCED[0], UNSYNCED[1]), true, 'writeNow after syncNow');
      const states = fs.crashStates({ limit: 400 });
      let count = 0;
      let lost = 0;
      for (const state of states) {
        count++;
        const again = await backend.open(state.fs());
        try {
          assert.ok(
            (again.length as number) >= expected.length,
            `length ${again.length} in ${state.description}`,
          );
          const got = await again.read(0, expected.length);
          assert.ok(
            Buffer.from(got).equals(expected),
            `synced bytes differ in state ${state.index}: ${state.description}`,
          );
          const tail = await again.read(UNSYNCED[0], UNSYNCED[1].length);
          if (!Buffer.from(tail).equals(UNSYNCED[1])) lost++;
        } finally {
          await again.close();
        }
      }
      assert.ok(count > 1, `${count} crash states`);
      assert.ok(lost > 0, 'some crash state loses the write made after the syncNow');
      await store.close();
    });
  }
});
