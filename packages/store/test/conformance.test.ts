import { join } from 'node:path';
import { FileStore } from '../src/file-store.js';
import { SegmentedStore } from '../src/segmented-store.js';
import type { Store } from '../src/store.js';
import { suite } from '../src/testing/suite.js';
import { removeTempDirs, tempDir } from './fs-helpers.js';

describe('FileStore over NodeFs: conformance', () => {
  after(removeTempDirs);
  suite({
    test: it,
    nowOnceCreated: true,
    factory: async () => FileStore.open(join(await tempDir(), 'log')),
    reopen: (store: Store) => FileStore.open((store as FileStore).path),
  });
});

describe('SegmentedStore over NodeFs: conformance', () => {
  after(removeTempDirs);
  suite({
    test: it,
    nowOnceCreated: true,
    factory: async () => SegmentedStore.open(join(await tempDir(), 'log'), { segmentSize: 4096 }),
    reopen: (store: Store) => SegmentedStore.open((store as SegmentedStore).dir),
  });
});

describe('SegmentedStore over NodeFs: conformance with one open segment at most', () => {
  after(removeTempDirs);
  const options = { segmentSize: 4096, maxOpenSegments: 1 };
  suite({
    test: it,
    nowOnceCreated: true,
    factory: async () => SegmentedStore.open(join(await tempDir(), 'log'), options),
    reopen: (store: Store) => SegmentedStore.open((store as SegmentedStore).dir, options),
  });
});
