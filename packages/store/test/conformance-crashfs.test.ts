/**
 * The Store conformance suite over CrashFs: every backend call goes through the
 * simulated file system (each call settles one macrotask later), so the suite
 * also checks that the backends tolerate its asynchrony and strict POSIX model.
 * One CrashFs per store; reopening opens the same path on the same CrashFs.
 */
import { FileStore } from '../src/file-store.js';
import { SegmentedStore } from '../src/segmented-store.js';
import type { Store } from '../src/store.js';
import { CrashFs } from '../src/testing/crash-fs.js';
import { suite } from '../src/testing/suite.js';

/** The CrashFs each store was opened on, so `reopen` finds the same file system. */
const fsOf = new WeakMap<Store, CrashFs>();

function remember<T extends Store>(store: T, fs: CrashFs): T {
  fsOf.set(store, fs);
  return store;
}

function crashFsOf(store: Store): CrashFs {
  const fs = fsOf.get(store);
  if (fs === undefined) throw new Error('store was not opened by this test');
  return fs;
}

/**
 * The suite's `powerLoss`: up to 40 states of a power loss of the store's
 * CrashFs now (every one when there are no more), each reopened with `open`.
 */
function powerLoss<T extends Store>(open: (store: T, fs: CrashFs) => Promise<T>) {
  return (store: Store): Iterable<() => Promise<Store>> =>
    [...crashFsOf(store).crashStates({ limit: 40 })].map((state) => () => {
      const fs = state.fs();
      return open(store as T, fs).then((again) => remember(again, fs));
    });
}

describe('FileStore over CrashFs: conformance', () => {
  suite({
    test: it,
    nowOnceCreated: true,
    factory: async () => {
      const fs = new CrashFs();
      return remember(await FileStore.open('/log', { fs }), fs);
    },
    reopen: async (store: Store) => {
      const fs = crashFsOf(store);
      return remember(await FileStore.open((store as FileStore).path, { fs }), fs);
    },
    powerLoss: powerLoss((store: FileStore, fs) => FileStore.open(store.path, { fs })),
  });
});

for (const maxOpenSegments of [undefined, 1, 2]) {
  const cap = maxOpenSegments === undefined ? '' : `, at most ${maxOpenSegments} open`;
  describe(`SegmentedStore over CrashFs: conformance (4 KiB segments${cap})`, () => {
    const options = maxOpenSegments === undefined ? {} : { maxOpenSegments };
    suite({
      test: it,
      nowOnceCreated: true,
      factory: async () => {
        const fs = new CrashFs();
        return remember(
          await SegmentedStore.open('/log', { fs, segmentSize: 4096, ...options }),
          fs,
        );
      },
      reopen: async (store: Store) => {
        const fs = crashFsOf(store);
        return remember(
          await SegmentedStore.open((store as SegmentedStore).dir, { fs, ...options }),
          fs,
        );
      },
      powerLoss: powerLoss((store: SegmentedStore, fs) =>
        SegmentedStore.open(store.dir, { fs, ...options }),
      ),
    });
  });
}
