/**
 * Replication benchmark (needs `nats-server` on PATH): replicated commits per
 * second and latency at 1, 16 and 64 committers against local `durable`
 * commits, the cost of one JetStream round trip with one replica and with a
 * quorum of three, and a follower's lag under the heaviest load. Starts its
 * own three-node cluster on loopback. Never part of the test run.
 *
 *   node dist/src/replication.js [seconds per run, default 5] [--dir=PATH]
 *
 * Every directory it writes (the logs, the nodes' JetStream storage) is
 * under the data directory of the benches (`--dir`, else `WAL_BENCH_DIR`,
 * else `.bench/` at the repository root), on a disk: each is refused when
 * it is in memory (tmpfs, ramfs), as the other durable benches refuse theirs.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { jetstream, jetstreamManager, StorageType } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { Wal } from '@wal/core';
import { Follower, Replicator, restore } from '@wal/replicate';
import { NatsCluster } from '@wal/replicate/testing';
import { type Committer, PAYLOAD_SIZE, runCommitters, walCommitter } from './committers.js';
import {
  checkDisk,
  checkEqual,
  checkLine,
  dataDirectory,
  failedTargets,
  fixed,
  int,
  now,
  quantile,
  table,
} from './shared.js';

// `pnpm <script> -- 5` passes the `--` through: skip it, and the options.
const secondsArg = process.argv.slice(2).find((arg) => !arg.startsWith('--'));
const seconds = Number(secondsArg ?? 5);
if (!(seconds > 0)) {
  throw new RangeError(`seconds per run must be a positive number, not ${secondsArg}`);
}
const COMMITTERS = [1, 16, 64];
/** The last run is repeated with a follower on the stream, sampling its lag. */
const RUNS = [...COMMITTERS, COMMITTERS[COMMITTERS.length - 1]!];

async function main(): Promise<void> {
  const root = await dataDirectory(); // refuses a directory in memory
  const cluster = await NatsCluster.start({ directory: root });
  const dirs: string[] = [];
  /** A fresh directory for a log, on a disk. */
  const dir = async () => {
    const d = await mkdtemp(join(root, 'wal-bench-repl-'));
    dirs.push(d);
    await checkDisk(d);
    return d;
  };
  try {
    // The nodes' JetStream storage, where the replicated commits land.
    const nodes = (await readdir(root)).filter((name) => name.startsWith('wal-nats-'));
    for (const name of nodes) await checkDisk(join(root, name));
  } catch (error) {
    await cluster.stop();
    throw error;
  }
  const nc = await connect(cluster.connectOptions());
  let streams = 0;
  try {
    // One publish at a time: the round trip to the stream leader, and the
    // Raft round to a quorum on top of it.
    const jsm = await jetstreamManager(nc);
    const js = jetstream(nc);
    const roundTrips: string[][] = [];
    for (const replicas of [1, 3]) {
      const name = `rt${replicas}`;
      await jsm.streams.add({
        name,
        subjects: [name],
        num_replicas: replicas,
        storage: StorageType.File,
      });
      const payload = randomBytes(PAYLOAD_SIZE);
      for (let i = 0; i < 100; i++) await js.publish(name, payload);
      const samples: number[] = [];
      for (let i = 0; i < 1000; i++) {
        const t0 = now();
        await js.publish(name, payload);
        samples.push(now() - t0);
      }
      const sorted = Float64Array.from(samples).sort();
      roundTrips.push([
        `R=${replicas}`,
        fixed(3)(quantile(sorted, 0.5)),
        fixed(3)(quantile(sorted, 0.99)),
      ]);
    }
    const t0 = now();
    for (let i = 0; i < 1000; i++) await nc.flush();
    roundTrips.push(['client ping (no JetStream)', fixed(3)((now() - t0) / 1000), '']);

    const rows: string[][] = [];
    /** Per local run: records a reopen of its log finds, commits acknowledged. */
    const recoveredPairs: Array<readonly [number, number, string]> = [];
    /** Per replicated run: records a restore from the stream finds, appends acknowledged. */
    const restoredPairs: Array<readonly [number, number, string]> = [];
    let lagRow: string[] = [];
    for (const [run, k] of RUNS.entries()) {
      const following = run === RUNS.length - 1;
      const durable = await walCommitter(await dir());
      const local = await runCommitters(durable, k, seconds);
      recoveredPairs.push([
        local.recovered ?? Number.NaN,
        local.acknowledged ?? Number.NaN,
        `K=${k}${following ? ' (the run with a follower)' : ''}`,
      ]);
      const stream = `bench${++streams}`;
      const wal = await Wal.open(await dir());
      const replicator = await Replicator.attach(wal, { nats: nc, stream, replicas: 3 });
      let follower: Follower | undefined;
      const lags: { lsns: number; seconds: number }[] = [];
      let sampling: Promise<void> | undefined;
      let stop = false;
      const target: Committer = {
        commit: (payload) => replicator.append(payload),
        counts: () => ({ fsyncs: Number.NaN, writes: Number.NaN }),
        close: async () => {
          stop = true;
          await sampling;
          await follower?.close();
          await replicator.close();
          await wal.close();
        },
      };
      if (following) {
        await replicator.append(randomBytes(PAYLOAD_SIZE)); // creates the stream
        const replica = await Wal.open(await dir());
        follower = await Follower.open(replica, { nats: nc, stream });
        sampling = (async () => {
          while (!stop) {
            await new Promise((resolve) => setTimeout(resolve, 250));
            lags.push(await follower!.lag());
          }
          await replica.close().catch(() => undefined);
        })();
      }
      const replicated = await runCommitters(target, k, seconds);
      // The replicated side: a log rebuilt from the stream alone holds every
      // append acknowledged (and the one that created the stream).
      const restored = await restore({ nats: nc, stream, into: await dir() });
      restoredPairs.push([
        restored.records,
        (replicated.acknowledged ?? Number.NaN) + (following ? 1 : 0),
        `K=${k}${following ? ' (the run with a follower)' : ''}`,
      ]);
      rows.push([
        following ? `${k} + follower` : String(k),
        int(local.commits / local.seconds),
        fixed(2)(local.p50),
        fixed(2)(local.p99),
        int(replicated.commits / replicated.seconds),
        fixed(2)(replicated.p50),
        fixed(2)(replicated.p99),
      ]);
      if (lags.length > 0) {
        const byLsn = Float64Array.from(lags.map((l) => l.lsns)).sort();
        const bySec = Float64Array.from(lags.map((l) => l.seconds)).sort();
        lagRow = [
          String(k),
          String(lags.length),
          int(quantile(byLsn, 0.5)),
          int(byLsn[byLsn.length - 1]!),
          fixed(3)(quantile(bySec, 0.5)),
          fixed(3)(bySec[bySec.length - 1]!),
        ];
      }
    }
    console.log(
      `Node ${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? '?'}, ${Math.round(totalmem() / 2 ** 30)} GiB; ` +
        `3 nats-server nodes on loopback; ${PAYLOAD_SIZE}-byte records; ${seconds} s per run\n`,
    );
    console.log('One publish at a time, milliseconds:\n');
    console.log(table(['stream', 'p50', 'p99'], roundTrips));
    console.log('\nCommits (awaited, each committer one at a time):\n');
    console.log(
      table(
        [
          'committers',
          'durable/s',
          'durable p50 ms',
          'durable p99 ms',
          'replicated/s',
          'replicated p50 ms',
          'replicated p99 ms',
        ],
        rows,
      ),
    );
    console.log('\nFollower lag, sampled every 250 ms during the replicated run:\n');
    console.log(
      table(['committers', 'samples', 'p50 LSNs', 'max LSNs', 'p50 s', 'max s'], [lagRow]),
    );
    const checks = [
      checkEqual(
        'local durable commits: records found by reopening the log after close = commits acknowledged',
        recoveredPairs,
      ),
      checkEqual(
        'replicated commits: records restored from the stream alone = appends acknowledged',
        restoredPairs,
      ),
    ];
    for (const c of checks) process.stderr.write(`${checkLine(c)}\n`);
    failedTargets(0, 0, 0, checks);
  } finally {
    await nc.close();
    await cluster.stop();
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  }
}

await main();
