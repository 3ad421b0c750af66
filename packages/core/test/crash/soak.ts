/**
 * The process-kill soak: the code of kill.test.ts for as many kills as asked.
 *
 *   pnpm soak 10000                          (from the repository root: builds, then runs)
 *   pnpm --filter @wal/core soak:kill 10000  (after a build)
 *   node packages/core/dist/test/crash/soak.js 10000 [lanes] [seed] [threads]
 *
 * Arguments (or WAL_SOAK_KILLS, WAL_SOAK_LANES, WAL_SOAK_SEED,
 * WAL_SOAK_THREADS): total kills (default 10000), concurrent lanes (default
 * 4, each in its own temporary directory reused across its kills, segments
 * of 4 KiB and 64 KiB in turn), the seed (default: the time; printed, so a
 * failing run can be repeated), and worker threads appending through a
 * shared log in every other lane (default 0; `Wal.share`). Prints progress every 500 kills and one summary line; exits 1 on
 * any lost acknowledged record, garbage record or other violation, leaving
 * the directories in place for inspection.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { killTmpdir, type LaneResult, runLane } from './kill-lane.js';

function argument(index: number, env: string, fallback: number): number {
  const text = process.argv[2 + index] ?? process.env[env];
  if (text === undefined || text === '') return fallback;
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < 0) {
    process.stderr.write(`soak: ${text} is not a count\n`);
    process.exit(2);
  }
  return value;
}

async function main(): Promise<void> {
  const total = argument(0, 'WAL_SOAK_KILLS', 10_000);
  const lanes = Math.max(1, argument(1, 'WAL_SOAK_LANES', 4));
  const seed = argument(2, 'WAL_SOAK_SEED', Date.now() % 2 ** 31);
  const threads = argument(3, 'WAL_SOAK_THREADS', 0);
  const started = Date.now();
  console.log(
    `soak: ${total} kills in ${lanes} lanes, seed ${seed}${threads > 0 ? `, ${threads} worker threads in every other lane` : ''}`,
  );
  let done = 0;
  let nextReport = 500;
  const dirs: string[] = [];
  const runs: Promise<LaneResult>[] = [];
  for (let lane = 0; lane < lanes; lane++) {
    const kills = Math.floor(total / lanes) + (lane < total % lanes ? 1 : 0);
    const dir = await mkdtemp(join(killTmpdir(), 'wal-soak-'));
    dirs.push(dir);
    let counted = 0;
    runs.push(
      runLane({
        dir,
        kills,
        seed: seed + lane * 7919,
        segmentSize: lane % 2 === 0 ? 4096 : 64 * 1024,
        maxLogBytes: 2 * 1024 * 1024,
        threads: lane % 2 === 1 ? threads : 0,
        onRound: (_, result) => {
          done += result.kills - counted;
          counted = result.kills;
          if (done >= nextReport) {
            nextReport += 500;
            const seconds = ((Date.now() - started) / 1000).toFixed(0);
            console.log(`soak: ${done} kills, ${seconds} s`);
          }
        },
      }),
    );
  }
  const results = await Promise.all(runs);
  const sum = (key: 'kills' | 'acked' | 'threadAcked' | 'earlyKills' | 'lost' | 'garbage') =>
    results.reduce((n, r) => n + r[key], 0);
  const problems = results.flatMap((r) => r.problems);
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  console.log(
    `soak: ${sum('kills')} kills (${sum('earlyKills')} during startup or recovery), ` +
      `${sum('acked')} acknowledged records checked` +
      (threads > 0 ? ` (${sum('threadAcked')} appended by worker threads)` : '') +
      `, ${sum('lost')} lost, ${sum('garbage')} garbage, ${seconds} s`,
  );
  if (problems.length > 0) {
    for (const problem of problems.slice(0, 50)) console.error(`soak: ${problem}`);
    console.error(`soak: FAILED (seed ${seed}); directories kept: ${dirs.join(' ')}`);
    process.exit(1);
  }
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
