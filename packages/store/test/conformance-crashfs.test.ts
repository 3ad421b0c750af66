/**
 * The Store conformance suite over CrashFs: every backend call goes through the
 * simulated file system (each call settles one macrotask later), so the suite
 * also checks that the backends tolerate its asynchrony and strict POSIX model.
 * One CrashFs per store, under a FaultFs of its own (passing every call
 * through until the suite's `faults` arms a rule); reopening opens the same
 * path on the same FaultFs.
 */
import { FileStore } from '../src/file-store.js';
import { SegmentedStore } from '../src/segmented-store.js';
import type { Store } from '../src/store.js';
import { CrashFs } from '../src/testing/crash-fs.js';
import { FaultFs } from '../src/testing/fault-fs.js';
import { faultFsFaults } from '../src/testing/store-faults.js';
import { suite } from '../src/testing/suite.js';
import { openedOn } from './fs-helpers.js';

/** The CrashFs each store was opened on, so `reopen` finds the same file system. */
const { remember, of: crashFsOf } = openedOn<CrashFs>();

/** The FaultFs over its CrashFs each store of a factory was opened on. */
const faultFsOf = new WeakMap<Store, FaultFs>();

/** Opens a store with `open` on a FaultFs over a new CrashFs. */
async function fresh<T extends Store>(open: (fs: FaultFs) => Promise<T>): Promise<T> {
  const crash = new CrashFs();
  const fs = new FaultFs(crash);
  const store = remember(await open(fs), crash);
  faultFsOf.set(store, fs);
  return store;
}

/** Opens `store`'s location again with `open`, on the same FaultFs. */
async function again<T extends Store>(store: Store, open: (fs: FaultFs) => Promise<T>): Promise<T> {
  const fs = faultFsOf.get(store);
  if (fs === undefined) throw new Error('store was not opened by this test');
  const reopened = remember(await open(fs), crashFsOf(store));
  faultFsOf.set(reopened, fs);
  return reopened;
}

const faults = (store: Store) => {
  const fs = faultFsOf.get(store);
  if (fs === undefined) throw new Error('store was not opened by this test');
  return faultFsFaults(fs);
};

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
    factory: () => fresh((fs) => FileStore.open('/log', { fs })),
    reopen: (store: Store) =>
      again(store, (fs) => FileStore.open((store as FileStore).path, { fs })),
    powerLoss: powerLoss((store: FileStore, fs) => FileStore.open(store.path, { fs })),
    faults,
  });
});

for (const maxOpenSegments of [undefined, 1, 2]) {
  const cap = maxOpenSegments === undefined ? '' : `, at most ${maxOpenSegments} open`;
  describe(`SegmentedStore over CrashFs: conformance (4 KiB segments${cap})`, () => {
    const options = maxOpenSegments === undefined ? {} : { maxOpenSegments };
    suite({
      test: it,
      nowOnceCreated: true,
      factory: () =>
        fresh((fs) => SegmentedStore.open('/log', { fs, segmentSize: 4096, ...options })),
      reopen: (store: Store) =>
        again(store, (fs) =>
          SegmentedStore.open((store as SegmentedStore).dir, { fs, ...options }),
        ),
      faults,
      powerLoss: powerLoss((store: SegmentedStore, fs) =>
        SegmentedStore.open(store.dir, { fs, ...options }),
      ),
    });
  });
}
