/**
 * Process kills on a real directory, with checkpoints: a child runs bank
 * transfers from four clients under serializable isolation, with automatic
 * checkpoints every 32 KiB of log, and is SIGKILLed after a random number
 * of acknowledged transfers, or (one kill in five) at a random moment near
 * the start, during open: reading the checkpoint and replaying the log; after
 * each kill the store is reopened and passes the bank check (bank.ts). The
 * same directory is reused across kills. `TXN_KILL_SCALE` multiplies the
 * kills (`pnpm --filter @wal/txn soak:kill`).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TxnStore } from '../../src/index.js';
import { rng } from '../checker/workload.js';
import { onLines, temporaryDirectory } from '../helpers.js';
import { BANK_KILL_OPTIONS, checkBank } from './bank.js';

const CHILD = join(dirname(fileURLToPath(import.meta.url)), 'bank-kill-child.js');
const CLIENTS = 4;
const KILLS = 10 * Number(process.env.TXN_KILL_SCALE ?? 1);

interface Run {
  readonly acked: number[];
  readonly begun: number[];
  readonly opened: boolean;
  readonly errors: string[];
}

/**
 * When to kill the child: after `acks` acknowledged transfers in this run
 * (progress, not wall-clock time, so that a slow or loaded machine still
 * reaches the checkpoints), or at `ms` after the start for the kills aimed
 * at the open, whichever comes first.
 */
interface KillAt {
  readonly acks: number;
  readonly ms: number;
}

function runChild(dir: string, killAt: KillAt): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CHILD, dir, String(CLIENTS)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const acked = new Array<number>(CLIENTS).fill(0);
    const begun = new Array<number>(CLIENTS).fill(0);
    const errors: string[] = [];
    let opened = false;
    let acks = 0;
    onLines(child.stdout, (line) => {
      const [tag, c, i] = line.split(' ');
      if (tag === 'O') opened = true;
      else if (tag === 'B') begun[Number(c)] = Math.max(begun[Number(c)]!, Number(i));
      else if (tag === 'A') {
        acked[Number(c)] = Math.max(acked[Number(c)]!, Number(i));
        if (++acks === killAt.acks) child.kill('SIGKILL');
      } else errors.push(line);
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), killAt.ms);
    child.on('error', reject);
    // 'close', not 'exit': the lines still in the pipe when the child dies count too.
    child.on('close', () => {
      clearTimeout(timer);
      resolve({ acked, begun, opened, errors });
    });
  });
}

describe('crash: process kills during bank transfers and checkpoints (real directory, SIGKILL)', () => {
  const directory = temporaryDirectory('wal-txn-bank-kill-', false);

  it(`keeps the total, every acknowledged transfer, and no transfer in part, over ${KILLS} kills`, async function () {
    this.timeout(60_000 + KILLS * 5_000);
    const random = rng(0xba4c);
    const acked = new Array<number>(CLIENTS).fill(0);
    const begun = new Array<number>(CLIENTS).fill(0);
    let unopened = 0;
    for (let kill = 0; kill < KILLS; kill++) {
      // One kill in five aims at the open (reading the checkpoint, replaying
      // the log); the others land after a random number of acknowledged
      // transfers, enough over the run for automatic checkpoints.
      const run = await runChild(
        directory(),
        random() < 0.2
          ? { acks: 0, ms: random() * 300 }
          : { acks: 100 + Math.floor(random() * 400), ms: 20_000 },
      );
      assert.deepEqual(run.errors, []);
      if (!run.opened) unopened++;
      for (let c = 0; c < CLIENTS; c++) {
        acked[c] = Math.max(acked[c]!, run.acked[c]!);
        begun[c] = Math.max(begun[c]!, run.begun[c]!);
      }
      const store = await TxnStore.open(directory(), BANK_KILL_OPTIONS);
      try {
        await checkBank(store, { acked, begun }, `after kill ${kill}`);
      } finally {
        await store.close();
      }
    }
    const checkpoints = await readdir(`${directory()}.checkpoints`).catch(() => []);
    console.log(
      `      ${KILLS} kills (${unopened} before the store opened), ${acked.reduce((a, b) => a + b, 0)} acknowledged transfers, ${checkpoints.length} checkpoint file(s) at the end`,
    );
    assert.ok(checkpoints.length >= 1, 'no checkpoint was ever written');
    assert.ok(acked.reduce((a, b) => a + b, 0) > 100);
  });
});
