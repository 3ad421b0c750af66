/**
 * Power loss at every step (CrashFs): four clients run bank transfers under
 * serializable isolation, sharing fsyncs through group commit, while
 * checkpoints run (explicit ones, and automatic ones from a small
 * `logBytes`). Before every file-system call the store makes, the states a
 * power loss at that moment could leave are drawn (torn and lost unsynced
 * writes, lost renames and unlinks not covered by a directory fsync); in
 * each, the reopened store passes the bank check (bank.ts). For some of
 * them, power is lost again at every step of that recovery, and the states
 * it could leave pass the same check.
 */
import assert from 'node:assert/strict';
import { CrashFs, type CrashState } from '@wal/store/testing';
import { TxnStore } from '../../src/index.js';
import {
  type BankProgress,
  checkBank,
  createAccounts,
  LOG_MODES,
  steppingFs,
  transfer,
} from './bank.js';

const DIR = '/bank';
const OPTIONS = { checkpoint: { logBytes: 3000 } };
const CLIENTS = 4;
const TRANSFERS = 24;

interface Moment {
  readonly step: number;
  readonly method: string;
  readonly progress: BankProgress;
  readonly states: CrashState[];
}

/** Opens the store over `fs`, recording the crash states before each of its calls. */
function capture(crash: CrashFs, progress: () => BankProgress, perStep: number, into: Moment[]) {
  let step = 0;
  return steppingFs(crash, (method) => {
    step++;
    into.push({
      step,
      method,
      progress: progress(),
      states: [...crash.crashStates({ seed: step, limit: perStep })],
    });
  });
}

for (const { name, blockingSync } of LOG_MODES) {
  const LOG = { segmentSize: 4096, blockingSync };

  async function check(state: CrashState, progress: BankProgress, where: string): Promise<number> {
    const store = await TxnStore.open(DIR, { ...OPTIONS, log: { ...LOG, fs: state.fs() } });
    try {
      return await checkBank(store, progress, where);
    } finally {
      await store.close();
    }
  }

  describe(`crash: power loss at every step of bank transfers, group commit and checkpoints (CrashFs)${name}`, () => {
    it('keeps the total, every acknowledged transfer, and no transfer in part', async function () {
      this.timeout(240_000);
      const crash = new CrashFs();
      const acked = new Array<number>(CLIENTS).fill(0);
      const begun = new Array<number>(CLIENTS).fill(0);
      const moments: Moment[] = [];
      const fs = capture(crash, () => ({ acked: [...acked], begun: [...begun] }), 2, moments);
      const store = await TxnStore.open(DIR, { ...OPTIONS, log: { ...LOG, fs } });
      await createAccounts(store);
      let checkpoints = 0;
      let running = true;
      const explicit: Array<Promise<void>> = [];
      const checkpoint = async () => {
        if ((await store.checkpoint()) !== undefined) checkpoints++;
      };
      const clients = Array.from({ length: CLIENTS }, async (_, client) => {
        for (let i = 1; i <= TRANSFERS; i++) {
          begun[client] = i;
          await transfer(store, client, i);
          acked[client] = i;
          // Also between commits, for a blocking log, whose commits may
          // leave the timers below no turn.
          if (client === 0 && i % 8 === 0) explicit.push(checkpoint());
        }
      });
      const checkpointer = (async () => {
        while (running) {
          await new Promise((resolve) => setTimeout(resolve, 2));
          await checkpoint();
        }
      })();
      await Promise.all(clients);
      await Promise.all(explicit);
      running = false;
      await checkpointer;
      await store.close();
      const methods = new Set(moments.map((m) => m.method));
      const blocking = blockingSync ? ['pwriteSync', 'fdatasyncSync'] : [];
      for (const method of ['pwrite', 'fdatasync', 'rename', 'syncDir', 'unlink', ...blocking])
        assert.ok(methods.has(method), `no power loss before a ${method}`);
      assert.ok(checkpoints >= 2, `${checkpoints} explicit checkpoints`);

      let states = 0;
      let recoveries = 0;
      const found = new Set<number>();
      for (const [m, moment] of moments.entries()) {
        for (const state of moment.states) {
          const where = `power loss before call ${moment.step} (${moment.method}), ${state.description}`;
          states++;
          if (m % 25 !== 0) {
            found.add(await check(state, moment.progress, where));
            continue;
          }
          // Power lost again at every step of this recovery.
          recoveries++;
          const again = new CrashFs({ image: state.fs().snapshot() });
          const during: Moment[] = [];
          const fsAgain = capture(again, () => moment.progress, 1, during);
          const reopened = await TxnStore.open(DIR, { ...OPTIONS, log: { ...LOG, fs: fsAgain } });
          found.add(await checkBank(reopened, moment.progress, where));
          await reopened.close();
          for (const inner of during)
            for (const next of inner.states)
              await check(
                next,
                moment.progress,
                `${where}; then before recovery call ${inner.step}`,
              );
        }
      }
      console.log(
        `      ${moments.length} steps, ${states} crash states (${recoveries} with power lost again during recovery), ${checkpoints} explicit checkpoints, ${found.size} distinct outcomes`,
      );
      assert.ok(found.size > 20);
    });
  });
}
