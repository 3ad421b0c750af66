/**
 * Injected I/O faults (FaultFs over CrashFs) while clients commit: the
 * commits the fault hits reject with the log's typed error and are never
 * acknowledged, the store refuses everything after it (fail-stop), and in
 * every state a power loss could then leave, the reopened store holds every
 * commit acknowledged before the fault, whole, and no commit in part.
 */
import assert from 'node:assert/strict';
import { isWalError } from '@wal/errors';
import { CrashFs, type Fault, FaultFs, type FsMethod } from '@wal/store/testing';
import { TxnStore } from '../../src/index.js';
import { checkTagged, commitTagged } from './tagged.js';

const DIR = '/db';
const LOG = { segmentSize: 4096 };

/** The faults; a short write is not a failure (the log writes the rest), so no commit fails. */
const FAULTS: Array<{ method: FsMethod; fault: Fault; fails: boolean }> = [
  { method: 'fdatasync', fault: 'EIO', fails: true },
  { method: 'pwrite', fault: 'EIO', fails: true },
  { method: 'pwrite', fault: 'ENOSPC', fails: true },
  { method: 'pwrite', fault: 'short', fails: false },
];

describe('crash: I/O faults during commits (FaultFs)', () => {
  for (const { method, fault, fails } of FAULTS) {
    it(`${method} ${typeof fault === 'string' ? fault : JSON.stringify(fault)}: ${fails ? 'fails the commits it hits, acknowledges none of them' : 'fails no commit'}, loses none acknowledged`, async () => {
      const crash = new CrashFs();
      const fs = new FaultFs(crash);
      const store = await TxnStore.open(DIR, { log: { ...LOG, fs } });
      const acked: number[] = [];
      for (let id = 1; id <= 20; id++) {
        await commitTagged(store, id, 'before');
        acked.push(id);
      }
      // The first call after the 20 commits above: 40 concurrent commits on four hot
      // counters may all be durable after two or three syncs (a retry reads the
      // pending commit it lost to), so a later call might come after them all.
      fs.inject({ method, at: 1, fault });
      const outcomes = await Promise.allSettled(
        Array.from({ length: 40 }, async (_, i) => {
          await commitTagged(store, 100 + i, `c${i % 4}`);
          acked.push(100 + i);
        }),
      );
      const failures = outcomes
        .filter((o) => o.status === 'rejected')
        .map((o) => (o as PromiseRejectedResult).reason);
      for (const error of failures)
        assert.ok(isWalError(error) && error.code !== 'WAL_CONFLICT', String(error));
      if (fails) {
        assert.ok(failures.length > 0, 'the fault failed no commit');
        assert.throws(
          () => store.begin(),
          (e) => isWalError(e),
        );
      } else {
        assert.deepEqual(failures, []);
      }
      await store.close();
      let states = 0;
      for (const state of crash.crashStates({ seed: 1, limit: 10 })) {
        states++;
        const reopened = await TxnStore.open(DIR, { log: { ...LOG, fs: state.fs() } });
        try {
          await checkTagged(reopened, acked, state.description);
        } finally {
          await reopened.close();
        }
      }
      assert.ok(states > 0);
    });
  }
});
