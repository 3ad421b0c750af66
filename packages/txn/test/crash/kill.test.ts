/**
 * Process kills on a real directory: a child commits transactions from
 * several clients and is SIGKILLed at a random moment (some during open and
 * replay); the store is reopened and checked (tagged.ts): every acknowledged
 * transaction is there whole, none is there in part, and the counters match.
 * The same directory is reused across kills.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TxnStore } from '../../src/index.js';
import { rng } from '../checker/workload.js';
import { onLines, temporaryDirectory } from '../helpers.js';
import { checkTagged } from './tagged.js';

const CHILD = join(dirname(fileURLToPath(import.meta.url)), 'kill-child.js');
const KILLS = 12;

/**
 * Runs the child and kills it `killAtMs` after it printed `O` (the store is
 * open), or, with `early`, that long after it was started.
 */
function runChild(
  dir: string,
  firstId: number,
  killAtMs: number,
  early: boolean,
): Promise<{ acked: Map<number, string>; opened: boolean; errors: string[] }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CHILD, dir, String(firstId), '4'], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const acked = new Map<number, string>();
    const errors: string[] = [];
    let opened = false;
    onLines(child.stdout, (line) => {
      const [tag, a, b] = line.split(' ');
      if (tag === 'O') {
        opened = true;
        if (!early) timer = setTimeout(() => child.kill('SIGKILL'), killAtMs);
      } else if (tag === 'A') acked.set(Number(a), b!);
      else errors.push(line);
    });
    let timer = early ? setTimeout(() => child.kill('SIGKILL'), killAtMs) : undefined;
    child.on('error', reject);
    child.on('exit', () => {
      clearTimeout(timer);
      resolve({ acked, opened, errors });
    });
  });
}

describe('crash: process kills (real directory, SIGKILL at random moments)', () => {
  const directory = temporaryDirectory('wal-txn-kill-', false);

  it(`keeps every acknowledged commit whole, and no commit in part, over ${KILLS} kills`, async function () {
    this.timeout(120_000);
    const random = rng(0x7a11);
    const everAcked = new Map<number, string>();
    let unopened = 0;
    for (let kill = 0; kill < KILLS; kill++) {
      const early = kill % 4 === 0;
      const killAt = early ? 20 + random() * 300 : 50 + random() * 400;
      const { acked, opened, errors } = await runChild(
        directory(),
        (kill + 1) * 1_000_000,
        killAt,
        early,
      );
      assert.deepEqual(errors, []);
      if (!opened) unopened++;
      for (const [id, client] of acked) everAcked.set(id, client);
      const store = await TxnStore.open(directory(), { log: { segmentSize: 64 * 1024 } });
      try {
        await checkTagged(store, everAcked.keys(), `after kill ${kill}`);
      } finally {
        await store.close();
      }
    }
    console.log(
      `      ${KILLS} kills (${unopened} before the store opened), ${everAcked.size} acknowledged commits checked`,
    );
    assert.ok(everAcked.size > 100, `only ${everAcked.size} acknowledgements`);
  });
});
