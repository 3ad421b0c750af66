/**
 * Injected I/O faults (FaultFs over CrashFs) in the log's writes and fsyncs
 * while bank transfers commit: the transfers they hit reject with a typed
 * error and are never acknowledged, the store stops, and every crash state
 * after it passes the bank check. And in every file-system call a
 * checkpoint makes, while bank transfers commit: `checkpoint()` rejects with
 * a typed error, the store then refuses new work with that error, every
 * commit that was in flight either resolved (acknowledged) or rejected with
 * a typed error, and in every state a power loss could then leave the
 * reopened store passes the bank check — whichever checkpoint it finds.
 */
import assert from 'node:assert/strict';
import { isWalError } from '@wal/errors';
import { CrashFs, type Fault, FaultFs, type FsMethod } from '@wal/store/testing';
import { TxnStore } from '../../src/index.js';
import { type BankProgress, checkBank, createAccounts, LOG_MODES, transfer } from './bank.js';

const DIR = '/bank';
const CKPT = '/bank.checkpoints';
const OPTIONS = { checkpoint: { logBytes: 0 } };
const CLIENTS = 3;

const FAULTS: Array<{ method: FsMethod; fault: Fault }> = [
  { method: 'mkdir', fault: 'EIO' },
  { method: 'open', fault: 'EIO' },
  { method: 'pwrite', fault: 'EIO' },
  { method: 'pwrite', fault: 'ENOSPC' },
  { method: 'fdatasync', fault: 'EIO' },
  { method: 'rename', fault: 'EIO' },
  { method: 'syncDir', fault: 'EIO' },
  { method: 'unlink', fault: 'EIO' },
];

for (const { name, blockingSync } of LOG_MODES) {
  const LOG = { segmentSize: 4096, blockingSync };

  /** A store of bank accounts on a FaultFs over a CrashFs, with the clients' progress. */
  async function openBank() {
    const crash = new CrashFs();
    const fs = new FaultFs(crash);
    const store = await TxnStore.open(DIR, { ...OPTIONS, log: { ...LOG, fs } });
    await createAccounts(store);
    const acked = new Array<number>(CLIENTS).fill(0);
    const begun = new Array<number>(CLIENTS).fill(0);
    return { crash, fs, store, acked, begun };
  }

  /** Reopens the store in crash states a power loss could leave now; each passes the bank check. */
  async function checkCrashStates(crash: CrashFs, progress: BankProgress, seed: number) {
    let states = 0;
    for (const state of crash.crashStates({ seed, limit: 12 })) {
      states++;
      const reopened = await TxnStore.open(DIR, { ...OPTIONS, log: { ...LOG, fs: state.fs() } });
      try {
        await checkBank(reopened, progress, state.description);
      } finally {
        await reopened.close();
      }
    }
    assert.ok(states > 0);
  }

  const LOG_FAULTS: Array<{ method: FsMethod; fault: Fault }> = [
    { method: 'pwrite', fault: 'EIO' },
    { method: 'pwrite', fault: 'ENOSPC' },
    { method: 'fdatasync', fault: 'EIO' },
  ];

  describe(`crash: I/O faults in the log during bank transfers (FaultFs)${name}`, () => {
    for (const { method, fault } of LOG_FAULTS) {
      it(`${method} ${String(fault)}: the transfers it hits reject with a typed error, none acknowledged is lost`, async () => {
        const { crash, fs, store, acked, begun } = await openBank();
        let failures = 0;
        const run = async (client: number, count: number) => {
          for (let n = 0; n < count; n++) {
            const i = begun[client]! + 1;
            begun[client] = i;
            try {
              await transfer(store, client, i);
            } catch (error) {
              assert.ok(isWalError(error) && error.code !== 'WAL_CONFLICT', String(error));
              failures++;
              return;
            }
            acked[client] = i;
          }
        };
        await Promise.all(Array.from({ length: CLIENTS }, (_, c) => run(c, 5)));
        // A blocking log writes and syncs through the synchronous calls.
        const methods = [method, `${method}Sync` as FsMethod];
        fs.inject({
          method: methods,
          fault,
          at: 2,
          when: (call) => call.path.startsWith(`${DIR}/`),
        });
        await Promise.all(Array.from({ length: CLIENTS }, (_, c) => run(c, 30)));
        assert.ok(failures > 0, 'the fault failed no transfer');
        if (blockingSync) assert.ok(fs.count(`${method}Sync` as FsMethod) > 0, `no ${method}Sync`);
        assert.throws(
          () => store.begin(),
          (e) => isWalError(e),
        );
        await store.close();
        await checkCrashStates(crash, { acked, begun }, 5);
      });
    }
  });

  describe(`crash: I/O faults during a checkpoint (FaultFs)${name}`, () => {
    for (const { method, fault } of FAULTS) {
      for (const first of [true, false]) {
        it(`${method} ${String(fault)} in the ${first ? 'first' : 'second'} checkpoint: a typed error, the store stops, nothing acknowledged is lost`, async () => {
          const { crash, fs, store, acked, begun } = await openBank();
          const run = async (client: number, count: number) => {
            for (let n = 0; n < count; n++) {
              const i = begun[client]! + 1;
              begun[client] = i;
              await transfer(store, client, i);
              acked[client] = i;
            }
          };
          await Promise.all(Array.from({ length: CLIENTS }, (_, c) => run(c, 10)));
          if (!first) {
            await store.checkpoint();
            await Promise.all(Array.from({ length: CLIENTS }, (_, c) => run(c, 5)));
          }
          // Fail the checkpoint's first call of `method` on the checkpoint directory.
          fs.inject({
            method,
            fault,
            when: (call) =>
              call.path.startsWith(CKPT) || (method === 'syncDir' && call.path === '/'),
          });
          const outcomes = Promise.allSettled(
            Array.from({ length: CLIENTS }, (_, c) => run(c, 20)),
          );
          const error = await store.checkpoint().catch((e: unknown) => e);
          if (method === 'unlink' && first) {
            // Nothing to remove in a first checkpoint: no fault fired.
            assert.equal(isWalError(error), false, String(error));
          } else {
            assert.ok(isWalError(error) && error.code !== 'WAL_CONFLICT', String(error));
            assert.throws(
              () => store.begin(),
              (e) => e === error,
            );
          }
          for (const outcome of await outcomes) {
            if (outcome.status === 'rejected')
              assert.ok(isWalError(outcome.reason), String(outcome.reason));
          }
          await store.close();
          await checkCrashStates(crash, { acked, begun }, 3);
        });
      }
    }
  });
}
