/**
 * Power loss (CrashFs): clients commit concurrently on a simulated file
 * system; at several moments the states a power loss could leave are drawn
 * (torn writes, lost unsynced writes and file lengths included), and in each
 * the reopened store holds every commit acknowledged by then, whole, and no
 * commit in part (tagged.ts).
 */
import assert from 'node:assert/strict';
import { CrashFs } from '@wal/store/testing';
import { TxnStore } from '../../src/index.js';
import { rng } from '../checker/workload.js';
import { tick } from '../helpers.js';
import { checkTagged, commitTagged } from './tagged.js';

const DIR = '/db';
const LOG = { segmentSize: 4096 };

describe('crash: power loss at random moments of concurrent commits (CrashFs)', () => {
  it('every acknowledged commit survives whole; no commit survives in part', async function () {
    this.timeout(120_000);
    const random = rng(0xc0ffee);
    const fs = new CrashFs();
    const store = await TxnStore.open(DIR, { log: { ...LOG, fs } });
    const acked = new Set<number>();
    let next = 1;
    let stop = false;
    let resume: () => void = () => {};
    let paused: Promise<void> | undefined;
    const client = async (name: string) => {
      while (!stop) {
        await paused;
        const id = next++;
        await commitTagged(store, id, name);
        acked.add(id);
        if (random() < 0.3) await tick();
      }
    };
    const clients = Promise.all(['c0', 'c1', 'c2', 'c3', 'c4'].map(client));
    let states = 0;
    let withPending = 0;
    for (let moment = 0; moment < 8; moment++) {
      // Let some commits through, then crash "now": in the middle of others.
      for (let i = 0, n = 5 + Math.floor(random() * 40); i < n; i++) await tick();
      const known = [...acked];
      // The clients wait while the states are checked (the commits in flight finish).
      paused = new Promise((resolve) => {
        resume = resolve;
      });
      for (const state of fs.crashStates({ seed: moment, limit: 12 })) {
        states++;
        const reopened = await TxnStore.open(DIR, { log: { ...LOG, fs: state.fs() } });
        try {
          const found = await checkTagged(
            reopened,
            known,
            `moment ${moment}, state ${state.description}`,
          );
          if (found > known.length) withPending++;
        } finally {
          await reopened.close();
        }
      }
      paused = undefined;
      resume();
    }
    stop = true;
    await clients;
    await store.close();
    console.log(
      `      ${states} crash states checked, ${withPending} holding commits not yet acknowledged, ${acked.size} commits`,
    );
    assert.ok(states >= 40);
    assert.ok(acked.size > 50);
  });
});
