/**
 * Process kills on a real file system: child processes append from several
 * concurrent committers and are SIGKILLed at seeded random moments (some
 * during startup and recovery); after each kill the log is recovered and
 * checked (kill-lane.ts). Several lanes run at once, each reusing its own
 * directory across kills, with 4 KiB and 64 KiB segments.
 *
 * The soak runs the same code for as many kills as asked: see soak.ts.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { killTmpdir, runLane } from './kill-lane.js';
import { checked, found } from './reliability.js';

const LANES = 4;
const KILLS_PER_LANE = 52;
/** A fifth lane: the log shared with worker threads appending (Wal.share). */
const THREAD_KILLS = 40;

describe('crash: process kills (real directory, SIGKILL at random moments)', () => {
  const dirs: string[] = [];
  after(async () => {
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });

  it(`survives ${LANES * KILLS_PER_LANE + THREAD_KILLS} kills with no acknowledged record lost (${THREAD_KILLS} with worker threads appending)`, async function () {
    // A fixed number of child processes, each a fresh Node: about 90 s on
    // an idle 2-vCPU machine, 130–170 s when the machine is shared.
    this.timeout(300_000);
    const lanes = [];
    for (let lane = 0; lane < LANES; lane++) {
      const dir = await mkdtemp(join(killTmpdir(), 'wal-kill-'));
      dirs.push(dir);
      lanes.push(
        runLane({
          dir,
          segmentSize: lane % 2 === 0 ? 4096 : 64 * 1024,
          seed: 0x5eed + lane,
          kills: KILLS_PER_LANE,
        }),
      );
    }
    const dir = await mkdtemp(join(killTmpdir(), 'wal-kill-threads-'));
    dirs.push(dir);
    lanes.push(runLane({ dir, segmentSize: 4096, seed: 0x7ead, kills: THREAD_KILLS, threads: 2 }));
    const results = await Promise.all(lanes);
    const kills = results.reduce((n, r) => n + r.kills, 0);
    const acked = results.reduce((n, r) => n + r.acked, 0);
    const threadAcked = results[LANES]!.threadAcked;
    const early = results.reduce((n, r) => n + r.earlyKills, 0);
    const lost = results.reduce((n, r) => n + r.lost, 0);
    const garbage = results.reduce((n, r) => n + r.garbage, 0);
    const failedRecoveries = results.reduce((n, r) => n + r.failedRecoveries, 0);
    found({ lost, garbage, failedRecoveries });
    console.log(
      `      ${kills} kills (${early} before recovery finished), ${acked} acknowledged records checked (${threadAcked} appended by worker threads)`,
    );
    assert.deepEqual(
      results.flatMap((r) => r.problems),
      [],
    );
    assert.ok(kills >= 240);
    // Every round of the threads lane not killed during startup is killed
    // after a worker thread's first acknowledgement (kill-lane.ts).
    assert.ok(threadAcked > 0, 'no acknowledgement from a worker thread');
    assert.ok(early > 0, 'some kills hit startup or recovery');
    assert.ok(acked > 1000, `only ${acked} acknowledgements`);
    checked({ kills });
  });
});
