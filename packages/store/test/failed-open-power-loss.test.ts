// A first open of a single-file log that fails after creating the data file
// removes what it created (`<path>`, and `<path>.meta.tmp` / `<path>.meta`
// when it began writing them), the metadata durably before the data file:
// a metadata file left beside nothing is what a later open must refuse
// (docs/FORMAT.md §3.1). Every state a power loss can leave during such a
// failed open, and during its clean-up, must open cleanly later.
import assert from 'node:assert/strict';
import { isWalError } from '@wal/errors';
import { FileStore } from '../src/index.js';
import { CrashFs, type CrashStates } from '../src/testing/crash-fs.js';
import { FaultFs } from '../src/testing/fault-fs.js';
import { failMetaStep, type MetaStepFailure, tick } from './fs-helpers.js';

const PARENT = '/data';
const PATH = `${PARENT}/journal`;

/** Where the first open fails: a failing call (or a refusing `checkMeta`), and the metadata files it leaves to clean up. */
const FAILURES: Array<{
  readonly step: string;
  readonly fails?: MetaStepFailure;
  readonly refuse?: boolean;
}> = [
  { step: 'the caller refuses the metadata (checkMeta)', refuse: true },
  {
    step: 'pwrite of journal.meta.tmp (ENOSPC)',
    fails: (call) => call.method === 'pwrite' && call.path.endsWith('.meta.tmp'),
  },
  {
    step: 'fdatasync of journal.meta.tmp',
    fails: (call) => call.method === 'fdatasync' && call.path.endsWith('.meta.tmp'),
  },
  {
    step: 'rename of journal.meta.tmp',
    fails: (call) => call.method === 'rename' && call.path.endsWith('.meta.tmp'),
  },
  {
    step: 'the directory fsync after the rename',
    fails: (call, renamed) => call.method === 'syncDir' && renamed,
  },
  {
    step: 'measuring the data file, the metadata written',
    fails: (call, renamed) => call.method === 'size' && renamed,
  },
];

describe('FileStore: power loss during a failed first open and its clean-up', () => {
  for (const { step, fails, refuse } of FAILURES) {
    it(`${step}: every state opens later as a new log`, async () => {
      const crash = new CrashFs({ image: { files: new Map(), dirs: new Set([PARENT]) } });
      const fs = new FaultFs(crash);
      if (fails !== undefined) failMetaStep(fs, fails);
      const checkMeta = (): never => {
        throw new Error('a format this caller cannot read');
      };
      // The states a power loss could leave after every file-system call.
      const snapshots: CrashStates[] = [];
      let settled = false;
      const opened = FileStore.open(PATH, { fs, ...(refuse ? { checkMeta } : {}) }).finally(() => {
        settled = true;
      });
      opened.catch(() => undefined);
      while (!settled) {
        snapshots.push(crash.crashStates({ limit: 200 }));
        await tick();
      }
      snapshots.push(crash.crashStates({ limit: 200 }));
      const error = await opened.then(
        () => assert.fail('the open succeeded'),
        (failure: unknown) => failure,
      );
      assert.ok(isWalError(error), String(error));
      assert.deepEqual([...crash.snapshot().files.keys()], [], 'the failed open left files');

      let states = 0;
      const seen = new Set<string>();
      for (const snapshot of snapshots) {
        for (const state of snapshot) {
          states++;
          seen.add([...state.files.keys()].sort().join(' '));
          const later = state.fs();
          const store = await FileStore.open(PATH, { fs: later }).catch((failure: unknown) => {
            throw new Error(`${state.description}: ${String(failure)}`);
          });
          await store.write(0, new Uint8Array([1, 2, 3]));
          await store.close();
          assert.deepEqual(
            [...later.snapshot().files.keys()].sort(),
            [PATH, `${PATH}.meta`],
            state.description,
          );
        }
      }
      // The clean-up's states: the data file alone, beside the metadata, or nothing.
      assert.ok(states > 10, `${states} states`);
      assert.ok(seen.has(PATH) && seen.has(''), [...seen].join(' | '));
      if (fails !== undefined) {
        assert.ok(
          [...seen].some((files) => files.includes('.meta')),
          [...seen].join(' | '),
        );
      }
    });
  }
});
