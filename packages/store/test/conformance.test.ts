import { join } from 'node:path';
import { FileStore } from '../src/file-store.js';
import { NodeFs } from '../src/fs/node-fs.js';
import { SegmentedStore } from '../src/segmented-store.js';
import type { Store } from '../src/store.js';
import { FaultFs } from '../src/testing/fault-fs.js';
import { faultFsFaults } from '../src/testing/store-faults.js';
import { suite } from '../src/testing/suite.js';
import { openedOn, removeTempDirs, tempDir } from './fs-helpers.js';

/**
 * Every store is opened on a FaultFs of its own over NodeFs (which passes
 * every call through until a rule is armed), so the suite's `faults` can
 * make its I/O fail; a reopen goes through the same FaultFs.
 */
const { remember, of: faultFsOf } = openedOn<FaultFs>();

const faults = (store: Store) => faultFsFaults(faultFsOf(store));

describe('FileStore over NodeFs (through FaultFs): conformance', () => {
  after(removeTempDirs);
  suite({
    test: it,
    nowOnceCreated: true,
    factory: async () => {
      const fs = new FaultFs(new NodeFs());
      return remember(await FileStore.open(join(await tempDir(), 'log'), { fs }), fs);
    },
    reopen: async (store: Store) => {
      const fs = faultFsOf(store);
      return remember(await FileStore.open((store as FileStore).path, { fs }), fs);
    },
    faults,
  });
});

for (const maxOpenSegments of [undefined, 1]) {
  const cap = maxOpenSegments === undefined ? '' : ' with one open segment at most';
  describe(`SegmentedStore over NodeFs (through FaultFs): conformance${cap}`, () => {
    after(removeTempDirs);
    const options = {
      segmentSize: 4096,
      ...(maxOpenSegments === undefined ? {} : { maxOpenSegments }),
    };
    suite({
      test: it,
      nowOnceCreated: true,
      factory: async () => {
        const fs = new FaultFs(new NodeFs());
        return remember(
          await SegmentedStore.open(join(await tempDir(), 'log'), { fs, ...options }),
          fs,
        );
      },
      reopen: async (store: Store) => {
        const fs = faultFsOf(store);
        return remember(
          await SegmentedStore.open((store as SegmentedStore).dir, { fs, ...options }),
          fs,
        );
      },
      faults,
    });
  });
}
