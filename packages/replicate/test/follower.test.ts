import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { jetstream, jetstreamManager, type StoredMsg } from '@nats-io/jetstream';
import { connect, headers } from '@nats-io/transport-node';
import { Wal } from '@wal/core';
import { ReplicaMismatchError } from '@wal/errors';
import { Follower, Replicator, restore } from '@wal/replicate';
import { CrashFs } from '@wal/store/testing';
import {
  HeldSync,
  logBytes,
  logContents,
  payload,
  type Stored,
  signal,
  startChild,
  storedMessages,
  streamName,
  until,
  untilPlaceable,
  useCluster,
  within,
  writer,
} from './fixture.js';
import { Partition } from './proxy.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Numbers in [0, 1), the same sequence for the same `seed` (hashes of the seed and a counter). */
function seeded(seed: number): () => number {
  let drawn = 0;
  return () => createHash('sha256').update(`${seed}.${drawn++}`).digest().readUInt32LE(0) / 2 ** 32;
}

/**
 * Checks F2 for a follower that started after stream sequence `seq` on a
 * log ending at `tail`: message `seq` is all in the log (nothing skipped),
 * message `seq + 1` is not (nothing the log holds fetched again; it may be
 * the run the log ends inside).
 */
function assertStartsAfterLog(stored: Stored[], seq: number, tail: number): void {
  if (seq > 0)
    assert.ok(stored[seq - 1]!.end <= tail, `message ${seq} is in the log (tail ${tail})`);
  else assert.equal(tail, 0);
  const next = stored[seq];
  if (next !== undefined) {
    assert.ok(next.end > tail, `message ${seq + 1} is not all in the log (tail ${tail})`);
  }
}

/** Sizes with every 5th record split in parts (the servers' payload is 64 KiB). */
const size = (i: number) => (i % 5 === 0 ? 100_000 : (i * 53) % 700);

describe('followers and fenced failover (real servers)', function () {
  this.timeout(90_000);
  const { cluster, nc, dir } = useCluster({ maxPayload: 64 * 1024 });

  /** Connection options reaching the cluster only through `partition`. */
  const through = (partition: Partition) =>
    cluster().connectOptions({
      servers: [partition.url],
      ignoreClusterUpdates: true,
      reconnectTimeWait: 100,
      maxReconnectAttempts: -1,
    });

  async function appendMany(replicator: Replicator, from: number, count: number) {
    const lsns: number[] = [];
    for (let i = from; i < from + count; i += 16) {
      const batch = [];
      for (let j = i; j < Math.min(i + 16, from + count); j++) batch.push(payload(size(j), j));
      lsns.push(...(await replicator.appendBatch(batch)));
    }
    return lsns;
  }

  it('follows into its own log with the same LSNs and bytes, serves reads, reports lag', async () => {
    const w = await writer(nc(), await dir());
    const lsns = await appendMany(w.replicator, 0, 40);
    const store = new HeldSync();
    const local = await Wal.open(store);
    const follower = await Follower.open(local, { nats: nc(), stream: w.stream });
    await follower.caughtUp();
    assert.deepEqual(await logBytes(local), await logBytes(w.wal));
    assert.equal(follower.applied, w.wal.tail);
    assert.deepEqual(await follower.read(lsns[7]!), payload(size(7), 7));
    const seen: number[] = [];
    for await (const r of follower.iterate()) seen.push(r.lsn);
    assert.deepEqual(seen, lsns);
    assert.deepEqual(await follower.lag(), { lsns: 0, seconds: 0, messages: 0 });
    // Hold the follower's fdatasync: it stops at its next sync, behind.
    const { promise: hold, fire: release } = signal();
    store.hold = hold;
    const first = await w.replicator.append(payload(10, 1000));
    await sleep(1100);
    await appendMany(w.replicator, 1001, 300);
    const lag = await follower.lag();
    assert.ok(lag.lsns > 0 && lag.lsns <= w.wal.tail - first, `lag ${lag.lsns}`);
    assert.ok(lag.messages > 0);
    assert.ok(lag.seconds >= 1, `lag ${lag.seconds} s`);
    release();
    await follower.caughtUp();
    assert.deepEqual(await follower.lag(), { lsns: 0, seconds: 0, messages: 0 });
    assert.deepEqual(await logBytes(local), await logBytes(w.wal));
    await follower.close();
    await assert.rejects(follower.lag(), { code: 'WAL_CLOSED' });
    await assert.rejects(follower.caughtUp(), { code: 'WAL_CLOSED' });
    await assert.rejects(follower.promote(), { code: 'WAL_CLOSED' });
    await w.replicator.close();
    await Promise.all([w.wal.close(), local.close()]);
  });

  it('restarted, resumes from its own log without fetching what it has; a restored log follows too', async () => {
    const w = await writer(nc(), await dir());
    await appendMany(w.replicator, 0, 30);
    const path = await dir();
    let local = await Wal.open(path);
    let follower = await Follower.open(local, { nats: nc(), stream: w.stream });
    await follower.caughtUp();
    const firstRun = follower.stats.messages;
    assert.equal(firstRun, (await storedMessages(nc(), w.stream)).length);
    await follower.close();
    await local.close();
    await appendMany(w.replicator, 30, 20); // records 30..49: 4 of them in 2 parts
    const total = (await storedMessages(nc(), w.stream)).length;
    local = await Wal.open(path);
    follower = await Follower.open(local, { nats: nc(), stream: w.stream });
    await follower.caughtUp();
    assert.equal(follower.stats.messages, total - firstRun, 'only the new messages fetched');
    assert.ok(follower.stats.lookups <= Math.ceil(Math.log2(total)) + 2);
    assert.deepEqual(await logBytes(local), await logBytes(w.wal));
    await follower.close();
    await local.close();
    // A log restored to an LSN becomes a follower, fetching only the rest.
    const restoredPath = join(await dir(), 'r');
    const lsns: number[] = [];
    for await (const r of w.wal.iterate()) lsns.push(r.lsn);
    const report = await restore({
      nats: nc(),
      stream: w.stream,
      into: restoredPath,
      to: lsns[20]!,
    });
    const restored = await Wal.open(restoredPath);
    const again = await Follower.open(restored, { nats: nc(), stream: w.stream });
    await again.caughtUp();
    assert.equal(again.stats.messages, total - report.sequence);
    assert.deepEqual(await logBytes(restored), await logBytes(w.wal));
    await again.close();
    await restored.close();
    // Restored to a record inside a run (records 21..24 share one): the
    // follower takes that run again, skipping what its log holds.
    const stored = await storedMessages(nc(), w.stream);
    const holder = stored.find((m) => m.starts.includes(lsns[22]!))!;
    assert.ok(holder.starts.at(-1)! > lsns[22]!, 'record 22 is inside a run');
    const midPath = join(await dir(), 'm');
    const mid = await restore({ nats: nc(), stream: w.stream, into: midPath, to: lsns[22]! });
    assert.equal(mid.sequence, holder.seq);
    const midLog = await Wal.open(midPath);
    assert.equal(midLog.tail, lsns[23]);
    const inside = await Follower.open(midLog, { nats: nc(), stream: w.stream });
    await inside.caughtUp();
    assert.equal(inside.stats.messages, total - mid.sequence + 1);
    assert.deepEqual(await logBytes(midLog), await logBytes(w.wal));
    await inside.close();
    await midLog.close();
    // A log that holds a record the stream does not is refused, untouched.
    const other = await Wal.open(await dir());
    other.append(payload(5, 99));
    await other.sync();
    await assert.rejects(Follower.open(other, { nats: nc(), stream: w.stream }), {
      code: 'WAL_REPLICA_MISMATCH',
    });
    assert.deepEqual(await other.read(0), payload(5, 99));
    await other.close();
    await w.replicator.close();
    await w.wal.close();
  });

  it('SIGKILLed at random moments while catching up, resumes each time from its own log, fetching nothing it holds', async () => {
    // WAL_TEST_SEED=<seed> replays the kill moments and record sizes.
    const seed = Number(process.env.WAL_TEST_SEED ?? Math.floor(Math.random() * 2 ** 31));
    const random = seeded(seed);
    try {
      await killedFollower(random);
    } catch (error) {
      const why = (error as Error).message;
      throw new Error(`${why} (seed ${seed}: WAL_TEST_SEED=${seed} replays it)`, { cause: error });
    }
  });

  /**
   * A live writer; a follower process SIGKILLed at seeded moments while it
   * catches up and restarted on its directory. Each start must be after the
   * stream message ending the log (F2) and each message fetched once; in the
   * end the log is the writer's, byte for byte.
   */
  async function killedFollower(random: () => number) {
    const wal = await Wal.open(await dir());
    const stream = streamName();
    // One replica: no replica behind the others can start a consumer before
    // where it was asked (see `stats.duplicates`), so every message fetched
    // twice would be the follower's doing.
    const replicator = await Replicator.attach(wal, { nats: nc(), stream, replicas: 1 });
    const sizeOf = (i: number) => (random() < 0.15 ? 70_000 + (i % 50_000) : (i * 53) % 900);
    const appendSome = async (from: number, count: number) => {
      const batch = [];
      for (let i = from; i < from + count; i++) batch.push(payload(sizeOf(i), i));
      await replicator.appendBatch(batch);
    };
    let n = 0;
    let stop = false;
    const live = (async () => {
      for (; !stop; n += 4) {
        await appendSome(n, 4);
        await sleep(10);
      }
    })();
    const path = await dir();
    const starts: { seq: number; tail: number }[] = [];
    const wrong: string[] = [];
    try {
      for (let round = 0; round < 5; round++) {
        // A backlog to catch up with, on top of the live writer's trickle.
        for (let i = 0; i < 20; i++) {
          await appendSome(1e6 * (round + 1) + 20 * i, 20);
        }
        let start: { seq: number; tail: number } | undefined;
        let last = '';
        const child = startChild('follower-child', cluster(), path, stream, (line) => {
          last = line;
          const [what, a, b, c] = line.split(' ');
          if (what === 'open') {
            start = { seq: Number(a), tail: Number(b) };
            starts.push(start);
            return;
          }
          // Each message past the start fetched once, none again.
          if (what !== 'at' || Number(c) !== 0 || Number(b) !== Number(a) - start!.seq) {
            wrong.push(`round ${round}, started after ${start?.seq}: ${line}`);
          }
        });
        await until(
          'the follower started',
          () => start !== undefined || child.process.exitCode !== null,
          30_000,
        );
        assert.equal(child.process.exitCode, null, `the follower runs (${last})`);
        await sleep(Math.floor(random() * 200));
        child.process.kill('SIGKILL');
        await child.exited;
        assert.ok(wrong.length === 0, `each message fetched once: ${wrong.join('; ')}`);
      }
    } finally {
      stop = true;
      await live;
    }
    await replicator.flush();
    // The last restart, in this process, takes the rest.
    const local = await Wal.open(path);
    const opened = { seq: 0, tail: local.tail };
    const follower = await Follower.open(local, { nats: nc(), stream });
    opened.seq = follower.sequence;
    starts.push(opened);
    await follower.caughtUp();
    const lastSeq = replicator.sequence;
    assert.equal(follower.sequence, lastSeq);
    assert.equal(follower.stats.duplicates, 0);
    assert.equal(follower.stats.messages, lastSeq - opened.seq, 'only what the log lacked');
    await follower.close();
    // Every start was right after the message ending the log, or at the run
    // the log ended inside (F2): nothing held fetched again, nothing skipped.
    const stored = await storedMessages(nc(), stream);
    assert.ok(
      starts.some((s) => s.seq > 0 && s.seq < lastSeq),
      'a restart found something to do',
    );
    for (const { seq, tail } of starts) assertStartsAfterLog(stored, seq, tail);
    // The writer's log, record for record, contiguous.
    const mine: [number, Uint8Array][] = [];
    for await (const r of local.iterate()) mine.push([r.lsn, r.payload]);
    const theirs: [number, Uint8Array][] = [];
    for await (const r of wal.iterate()) theirs.push([r.lsn, r.payload]);
    assert.equal(mine.length, theirs.length);
    for (const [i, [lsn, p]] of mine.entries()) {
      assert.equal(lsn, i === 0 ? 0 : mine[i - 1]![0] + 8 + mine[i - 1]![1].length, 'contiguous');
      assert.equal(lsn, theirs[i]![0]);
      assert.deepEqual(p, theirs[i]![1], `record at ${lsn}`);
    }
    assert.equal(local.tail, wal.tail);
    assert.deepEqual(await logBytes(local), await logBytes(wal));
    await replicator.close();
    await Promise.all([wal.close(), local.close()]);
  }

  it('power loss under a follower: what caughtUp() resolved for survives; reopened, it fetches only what the log lost', async () => {
    const w = await writer(nc(), await dir());
    await appendMany(w.replicator, 0, 40);
    const fs = new CrashFs();
    const local = await Wal.open('/follower', { fs });
    const follower = await Follower.open(local, { nats: nc(), stream: w.stream });
    await follower.caughtUp();
    const kept = local.tail;
    // The power goes while the follower holds records not durable yet.
    const more = appendMany(w.replicator, 40, 40);
    const deadline = Date.now() + 20_000;
    while (local.durable === local.tail) {
      assert.ok(Date.now() < deadline, 'the follower appends records');
      await new Promise(setImmediate);
    }
    const space = fs.crashStates({ limit: 4, seed: 7 });
    await more;
    let states = 0;
    for (const state of space) {
      states++;
      const again = await Wal.open('/follower', { fs: state.fs() });
      const tail = again.tail;
      assert.ok(tail >= kept, `caughtUp() resolved at ${kept}; the log kept ${tail}`);
      const resumed = await Follower.open(again, { nats: nc(), stream: w.stream });
      const start = resumed.sequence;
      assertStartsAfterLog(await storedMessages(nc(), w.stream), start, tail);
      await resumed.caughtUp();
      // (A consumer on a replica behind the others may deliver messages
      // again; they are checked and counted apart.)
      const { messages, duplicates } = resumed.stats;
      assert.equal(messages - duplicates, resumed.sequence - start, 'each message taken once');
      assert.deepEqual(await logBytes(again), await logBytes(w.wal));
      await resumed.close();
      await again.close();
    }
    assert.equal(states, 4);
    await follower.close();
    await local.close();
    await w.replicator.close();
    await w.wal.close();
  });

  it('a server starting a new consumer below where it was asked: the messages again are checked, skipped when the same, WAL_REPLICA_MISMATCH when not', async () => {
    // The stream is created again holding its first messages only: a
    // consumer asked to start past its last sequence starts right after it
    // (servers before 2.11 do so on a replica behind on applies, the cause
    // of duplicate deliveries), so what is published next comes again to a
    // follower that took those sequences already. Later servers start
    // where asked: then nothing comes again, which the test checks instead.
    const [major, minor] = (nc().info?.version ?? '0.0').split('.').map(Number);
    const startsBelow = major! < 2 || (major === 2 && minor! < 11);
    const w = await writer(nc(), await dir());
    await appendMany(w.replicator, 0, 12);
    await w.replicator.close();
    const jsm = await jetstreamManager(nc());
    const { state, config } = await jsm.streams.info(w.stream);
    const originals: StoredMsg[] = [];
    for (let seq = 1; seq <= state.last_seq; seq++) {
      originals.push((await jsm.streams.getMessage(w.stream, { seq }))!);
    }
    const recreate = async (count: number) => {
      await jsm.streams.delete(w.stream);
      await jsm.streams.add({ ...config, num_replicas: 1 });
      for (const m of originals.slice(0, count)) await republish(m);
      // The follower's consumer comes back (created again by the client or
      // the follower), at the stream's last sequence + 1.
      await until(
        'a consumer on the new stream',
        async () => (await jsm.streams.info(w.stream)).state.consumer_count > 0,
        30_000,
      );
    };
    /** Publishes `m` again; `shift` moves it to other LSNs (a well-formed, different message). */
    const republish = async (m: StoredMsg, shift = 0) => {
      const h = headers();
      for (const [name, values] of m.header) {
        if (!name.startsWith('Nats-')) h.set(name, values[0]!);
      }
      h.set('Wal-Lsn', String(Number(m.header.get('Wal-Lsn')) + shift));
      await jetstream(nc()).publish(m.subject, m.data, { headers: h });
    };
    const local = await Wal.open(await dir());
    const follower = await Follower.open(local, { nats: nc(), stream: w.stream });
    await follower.caughtUp();
    const n = follower.sequence;
    const bytes = await logBytes(local);
    assert.ok(n >= 6);
    // The same messages again: checked against the log, skipped.
    await recreate(n - 4);
    for (const m of originals.slice(n - 4)) await republish(m);
    if (!startsBelow) {
      await sleep(2000);
      assert.equal(follower.stats.duplicates, 0);
      assert.equal(follower.failure, undefined);
      await follower.close();
      await Promise.all([local.close(), w.wal.close()]);
      return;
    }
    await until('the follower saw them again', () => follower.stats.duplicates === 4, 30_000);
    assert.equal(follower.failure, undefined);
    assert.equal(follower.sequence, n);
    assert.deepEqual(await logBytes(local), bytes);
    // Another message at a sequence taken: the follower stops, its log as it was.
    await recreate(n - 2);
    await republish(originals[n - 2]!, 1);
    const failure = () => follower.failure;
    await until('the follower stopped', () => failure() !== undefined, 30_000);
    assert.ok(failure() instanceof ReplicaMismatchError);
    assert.equal((failure() as ReplicaMismatchError).sequence, n - 1);
    assert.deepEqual(await logBytes(local), bytes);
    await follower.close();
    await Promise.all([local.close(), w.wal.close()]);
  });

  it('a stream deleted and created again by another, longer log: none of its records applied, WAL_REPLICA_MISMATCH', async () => {
    // README (Follower): a stream deleted and created again under the same
    // name stops the follower with WAL_REPLICA_MISMATCH; its log keeps what
    // it had. The new stream is longer, with records of the same sizes: a
    // consumer created again after the last sequence taken sees only new
    // sequences, so the check is the follower's own.
    const stream = streamName();
    const first = await Wal.open(await dir());
    const replicator = await Replicator.attach(first, { nats: nc(), stream });
    for (let i = 0; i < 5; i++) await replicator.append(payload(50, i));
    await replicator.close();
    const local = await Wal.open(await dir());
    const follower = await Follower.open(local, { nats: nc(), stream });
    await follower.caughtUp();
    const taken = follower.sequence;
    const bytes = await logBytes(local);
    await (await jetstreamManager(nc())).streams.delete(stream);
    const other = await Wal.open(await dir());
    const intruder = await Replicator.attach(other, { nats: nc(), stream });
    for (let i = 0; i < 8; i++) await intruder.append(payload(50, 1000 + i));
    await until('the follower stopped', () => follower.failure !== undefined, 30_000);
    assert.equal(follower.failure?.code, 'WAL_REPLICA_MISMATCH');
    assert.equal((follower.failure as ReplicaMismatchError).sequence, taken);
    assert.equal(follower.sequence, taken);
    assert.deepEqual(await logBytes(local), bytes);
    await follower.close();
    await intruder.close();
    await Promise.all([first.close(), other.close(), local.close()]);
  });

  it('a deleted stream stops the follower with WAL_REPLICA_MISMATCH after 5 s: its pending wait rejects, it stops retrying', async () => {
    // README (transient failures): a stream the servers keep saying does not
    // exist for 5 s is deleted; the follower stops as the replicator does.
    const w = await writer(nc(), await dir());
    await appendMany(w.replicator, 0, 10);
    const store = new HeldSync();
    const local = await Wal.open(store);
    const follower = await Follower.open(local, { nats: nc(), stream: w.stream });
    await follower.caughtUp();
    // Its fdatasync held back, the follower stops taking messages; the
    // stream holds far more than its consumer pulls ahead (8 MiB), so some
    // are never delivered once the stream is gone.
    const { promise: hold, fire: release } = signal();
    store.hold = hold;
    for (let i = 0; i < 24; i++) {
      await w.replicator.appendBatch(
        Array.from({ length: 8 }, (_, j) => payload(100_000, 100 + i * 8 + j)),
      );
    }
    const pending = follower.caughtUp().then(
      () => 'caught up',
      (error: unknown) => error,
    );
    await w.replicator.close();
    await (await jetstreamManager(nc())).streams.delete(w.stream);
    const deleted = Date.now();
    release();
    const outcome = await within('the wait pending across the deletion', pending, 30_000);
    assert.ok(outcome instanceof ReplicaMismatchError, String(outcome));
    assert.match(outcome.message, /does not exist/);
    assert.ok(Date.now() - deleted >= 5000, 'not before the servers said so for 5 s');
    assert.ok(follower.failure instanceof ReplicaMismatchError, String(follower.failure));
    await assert.rejects(follower.caughtUp(), (error) => error === follower.failure);
    await assert.rejects(follower.lag(), (error) => error === follower.failure);
    await assert.rejects(follower.promote(), (error) => error === follower.failure);
    // Stopped: no consumer is created again, nothing is retried.
    const { retries, lookups } = follower.stats;
    await sleep(3000);
    assert.equal(follower.stats.retries, retries);
    assert.equal(follower.stats.lookups, lookups);
    await within('close()', follower.close(), 5000);
    await Promise.all([w.wal.close(), local.close()]);
  });

  it('a stream deleted while the follower was cut off: once it reaches the servers again, WAL_REPLICA_MISMATCH after 5 s', async () => {
    // The follower is between consumers (each one it creates fails while
    // partitioned) when the stream is deleted: the servers' "stream not
    // found" for its next consumer is asked again for 5 s, not retried
    // forever.
    const w = await writer(nc(), await dir());
    await appendMany(w.replicator, 0, 10);
    const partition = await Partition.start(Number(new URL(cluster().servers[0]!).port));
    try {
      const local = await Wal.open(await dir());
      const follower = await Follower.open(local, { nats: through(partition), stream: w.stream });
      await follower.caughtUp();
      partition.cut();
      await until('the follower retries', () => follower.stats.retries >= 2, 60_000);
      await w.replicator.close();
      await (await jetstreamManager(nc())).streams.delete(w.stream);
      partition.heal();
      const healed = Date.now();
      await until('the follower stopped', () => follower.failure !== undefined, 30_000);
      assert.ok(follower.failure instanceof ReplicaMismatchError, String(follower.failure));
      assert.match(follower.failure.message, /does not exist/);
      assert.ok(Date.now() - healed >= 5000, 'not before the servers said so for 5 s');
      await assert.rejects(follower.caughtUp(), (error) => error === follower.failure);
      const { retries } = follower.stats;
      await sleep(3000);
      assert.equal(follower.stats.retries, retries, 'nothing retried once stopped');
      await within('close()', follower.close(), 5000);
      await Promise.all([w.wal.close(), local.close()]);
    } finally {
      await partition.stop();
    }
  });

  it('promotion fences the old writer; the new writer continues the same history', async () => {
    const w = await writer(nc(), await dir());
    const acked = await appendMany(w.replicator, 0, 20);
    const local = await Wal.open(await dir());
    const follower = await Follower.open(local, { nats: nc(), stream: w.stream });
    const promoted = await follower.promote();
    assert.equal(promoted.epoch, 1);
    for (const lsn of acked) assert.deepEqual(await local.read(lsn), await w.wal.read(lsn));
    // The old writer cannot extend the stream: fail-stop, typed.
    await assert.rejects(w.replicator.append(payload(10, 500)), { code: 'WAL_REPLICA_FENCED' });
    assert.equal(w.replicator.failure?.code, 'WAL_REPLICA_FENCED');
    await assert.rejects(w.replicator.append(payload(10, 501)), { code: 'WAL_REPLICA_FENCED' });
    await w.replicator.close();
    // Restarted against the stream that ends with the fence: refused.
    await assert.rejects(Replicator.attach(w.wal, { nats: nc(), stream: w.stream }), {
      code: 'WAL_REPLICA_FENCED',
    });
    const tail = local.tail;
    assert.equal(await promoted.append(payload(40, 600)), tail);
    // Still refused once the new writer's records follow the fence.
    await assert.rejects(Replicator.attach(w.wal, { nats: nc(), stream: w.stream }), {
      code: 'WAL_REPLICA_FENCED',
    });
    // Restore reads through the fence: the new writer's log, byte for byte.
    const restoredPath = join(await dir(), 'r');
    await restore({ nats: nc(), stream: w.stream, into: restoredPath });
    assert.deepEqual((await logContents(restoredPath)).bytes, await logBytes(local));
    await assert.rejects(
      restore({ nats: nc(), stream: w.stream, into: join(await dir(), 'x'), to: local.tail }),
      { code: 'ERR_OUT_OF_RANGE' },
    );
    // The old writer's log, with the record the fence refused dropped, follows.
    const lsns: number[] = [];
    for await (const r of w.wal.iterate()) lsns.push(r.lsn);
    await assert.rejects(Follower.open(w.wal, { nats: nc(), stream: w.stream }), {
      code: 'WAL_REPLICA_MISMATCH',
    });
    await w.wal.truncateAfter(acked[acked.length - 1]!);
    const old = await Follower.open(w.wal, { nats: nc(), stream: w.stream });
    await old.caughtUp();
    assert.equal(old.epoch, 1);
    assert.deepEqual(await logBytes(w.wal), await logBytes(local));
    // A second promotion: epoch 2, and the first promoted writer is fenced.
    const again = await old.promote();
    assert.equal(again.epoch, 2);
    await assert.rejects(promoted.append(payload(3, 700)), { code: 'WAL_REPLICA_FENCED' });
    await again.append(payload(3, 701));
    await Promise.all([promoted.close(), again.close()]);
    await Promise.all([w.wal.close(), local.close()]);
  });

  it('promote() twice at once is one promotion: the same writer, epoch 1, not fenced by itself', async () => {
    // README (Promotion): a second promote() while one runs returns the same promise.
    const w = await writer(nc(), await dir());
    await appendMany(w.replicator, 0, 5);
    const local = await Wal.open(await dir());
    const follower = await Follower.open(local, { nats: nc(), stream: w.stream });
    await follower.caughtUp();
    const [a, b] = await within(
      'promotions',
      Promise.all([follower.promote(), follower.promote()]),
      60_000,
    );
    assert.equal(a, b);
    assert.equal(a.epoch, 1);
    const tail = local.tail;
    assert.equal(await a.append(payload(10, 99)), tail);
    assert.equal(a.failure, undefined);
    await assert.rejects(follower.promote(), { code: 'WAL_CLOSED' });
    await a.close();
    await w.replicator.close();
    await Promise.all([w.wal.close(), local.close()]);
  });

  it('close() during promote(): promote rejects WAL_CLOSED, nothing is published', async () => {
    // README (Promotion): close() during a promotion stops it before its next publish.
    const w = await writer(nc(), await dir());
    await appendMany(w.replicator, 0, 5);
    const local = await Wal.open(await dir());
    const own = await connect(cluster().connectOptions());
    const follower = await Follower.open(local, { nats: own, stream: w.stream });
    await follower.caughtUp();
    const jsm = await jetstreamManager(nc());
    const before = (await jsm.streams.info(w.stream)).state.last_seq;
    const promoting = follower.promote();
    await follower.close();
    await within('the promotion', assert.rejects(promoting, { code: 'WAL_CLOSED' }), 30_000);
    await sleep(500);
    assert.equal((await jsm.streams.info(w.stream)).state.last_seq, before);
    // The old writer was never fenced.
    await w.replicator.append(payload(10, 100));
    await own.close();
    await w.replicator.close();
    await Promise.all([w.wal.close(), local.close()]);
  });

  it('a promotion that fails stops the follower: caughtUp() and promote() reject with its error instead of waiting', async function () {
    // promote() docs: on a throw the follower is stopped. Cut off from the
    // servers, every attempt's seal times out: after 20 attempts (about
    // 17 s of backoff) promote() gives up with the client's error.
    this.timeout(120_000);
    const w = await writer(nc(), await dir());
    await appendMany(w.replicator, 0, 5);
    const partition = await Partition.start(Number(new URL(cluster().servers[0]!).port));
    try {
      const local = await Wal.open(await dir());
      const follower = await Follower.open(local, {
        nats: through(partition),
        stream: w.stream,
        timeout: 100,
      });
      await follower.caughtUp();
      partition.cut();
      const failed = await follower.promote().then(
        () => assert.fail('the promotion succeeded'),
        (error: unknown) => error,
      );
      partition.heal();
      assert.equal(follower.failure?.code, 'WAL_FAILED');
      assert.equal(follower.failure?.cause, failed);
      const stopped = { code: 'WAL_FAILED', cause: failed } as Partial<Error>;
      await within('caughtUp', assert.rejects(follower.caughtUp(), stopped), 20_000);
      await assert.rejects(follower.promote(), stopped);
      await follower.close();
      await local.close();
    } finally {
      await partition.stop();
    }
    await w.replicator.close();
    await w.wal.close();
  });

  for (let round = 0; round < 3; round++) {
    it(`promotion while the old writer commits flat out (round ${round}): bounded, nothing acknowledged lost, the writer fail-stops`, async () => {
      const w = await writer(nc(), await dir());
      const acked: number[] = [];
      const failures: unknown[] = [];
      // No pause between commits; every 7th record is split in two parts,
      // so a seal can land between the parts of an unfinished record.
      const committers = Array.from({ length: 4 }, async (_, c) => {
        for (let i = 0; ; i++) {
          try {
            const n = c * 1e6 + i;
            acked.push(await w.replicator.append(payload(i % 7 === 0 ? 100_000 : 300, n)));
          } catch (error) {
            failures.push(error);
            return;
          }
        }
      });
      await until('commits flow', () => acked.length >= 100);
      const local = await Wal.open(await dir());
      const follower = await Follower.open(local, { nats: nc(), stream: w.stream });
      const started = Date.now();
      const promoted = await within('promote()', follower.promote(), 15_000);
      const took = Date.now() - started;
      // Every committer of the old writer fail-stops, typed; none hangs.
      await within("the old writer's appends", Promise.all(committers), 15_000);
      assert.equal(failures.length, 4);
      for (const failure of failures) {
        assert.equal((failure as { code?: string }).code, 'WAL_REPLICA_FENCED', String(failure));
      }
      assert.equal(w.replicator.failure?.code, 'WAL_REPLICA_FENCED');
      await assert.rejects(
        within('an append after the fence', w.replicator.append(payload(5, 1)), 15_000),
        { code: 'WAL_REPLICA_FENCED' },
      );
      // Everything acknowledged is in the promoted log, at its LSN; the
      // promoted log is a prefix of the old writer's, byte for byte.
      assert.ok(acked.length > 100);
      const ackedEnd = Math.max(...acked.map((lsn) => lsn));
      assert.ok(ackedEnd < local.tail, `acknowledged LSN ${ackedEnd} past the promoted tail`);
      assert.deepEqual(await w.wal.store.read(0, local.tail), await logBytes(local));
      const seen: number[] = [];
      for await (const r of local.iterate()) seen.push(r.lsn);
      for (const lsn of acked) assert.ok(seen.includes(lsn), `acknowledged ${lsn} kept`);
      // The stream has one history: the promoted writer continues it, and a
      // restore gives its log byte for byte (nothing of the old writer after the fence).
      await within("the promoted writer's append", promoted.append(payload(3, 1)), 15_000);
      const restoredPath = join(await dir(), 'r');
      await restore({ nats: nc(), stream: w.stream, into: restoredPath });
      assert.deepEqual((await logContents(restoredPath)).bytes, await logBytes(local));
      await Promise.all([w.replicator.close(), promoted.close()]);
      await Promise.all([w.wal.close(), local.close()]);
      // A bound far above what it takes (well under a second here), far
      // below a livelock's: the promotion does not chase the writer.
      assert.ok(took < 10_000, `promotion took ${took} ms`);
    });
  }

  it('the writer SIGKILLed during replicated commits: the promoted follower has every acknowledged record, the old writer is fenced', async () => {
    const path = await dir();
    const stream = streamName();
    const acked: number[] = [];
    const { process: writerProcess, exited } = startChild(
      'writer-child',
      cluster(),
      path,
      stream,
      (line) => acked.push(Number(line)),
    );
    await until(
      'the writer acknowledges',
      () => acked.length > 0 || writerProcess.exitCode !== null,
      30_000,
    );
    const local = await Wal.open(await dir());
    const follower = await Follower.open(local, { nats: nc(), stream });
    await sleep(200 + Math.floor(Math.random() * 1500));
    writerProcess.kill('SIGKILL');
    await exited;
    const promoted = await follower.promote();
    const old = await Wal.open(path);
    assert.ok(acked.length > 0);
    // Every acknowledged record, byte for byte; the follower's log is a
    // prefix of the old writer's durable log.
    for (const lsn of acked) assert.deepEqual(await local.read(lsn), await old.read(lsn));
    const prefix = await old.store.read(0, local.tail);
    assert.deepEqual(prefix, await logBytes(local));
    await promoted.append(payload(7, 1));
    await assert.rejects(Replicator.attach(old, { nats: nc(), stream }), {
      code: 'WAL_REPLICA_FENCED',
    });
    await promoted.close();
    await Promise.all([old.close(), local.close()]);
  });

  it('keeps catching up while the server it is connected to is killed', async function () {
    // Above its until() bounds added up (110 s): a stall fails with the
    // message of the wait it stalled in.
    this.timeout(150_000);
    const w = await writer(nc(), await dir());
    await appendMany(w.replicator, 0, 600);
    const fnc = await connect(cluster().connectOptions());
    const local = await Wal.open(await dir());
    const follower = await Follower.open(local, { nats: fnc, stream: w.stream });
    await until('the follower is catching up', () => follower.stats.messages > 20);
    const victim = [0, 1, 2].find((i) => cluster().name(i) === fnc.info?.server_name)!;
    await cluster().kill(victim);
    try {
      // Catching up again waits for the client to reconnect elsewhere, the
      // follower's consumer to be created again and, when the victim led
      // the stream, a leader election (seconds; a split vote takes another
      // round): 10 to 15 s measured on two loaded CPUs. A bound far above.
      await until('the follower caught up', () => follower.applied === w.wal.tail, 60_000);
    } finally {
      await cluster().restart(victim);
      // The next test creates a stream on all three servers.
      await untilPlaceable(nc(), 3);
    }
    assert.ok(follower.stats.messages < 600 * 2, 'no restart from the beginning');
    assert.deepEqual(await logBytes(local), await logBytes(w.wal));
    await follower.close();
    await fnc.close();
    await w.replicator.close();
    await Promise.all([w.wal.close(), local.close()]);
  });

  it('a partitioned old writer acknowledges nothing as replicated after the promotion', async () => {
    const stream = streamName();
    const partition = await Partition.start(Number(new URL(cluster().servers[0]!).port));
    try {
      const wal = await Wal.open(await dir());
      const old = await Replicator.attach(wal, {
        nats: through(partition),
        stream,
        timeout: 500,
      });
      await old.appendBatch([payload(20, 1), payload(20, 2)]);
      const local = await Wal.open(await dir());
      const follower = await Follower.open(local, { nats: nc(), stream });
      await follower.caughtUp();
      partition.cut();
      const replicated = old.replicated;
      let settled: unknown;
      const pending = old.append(payload(20, 3)).then(
        () => (settled = 'replicated'),
        (error: unknown) => (settled = error),
      );
      const promoted = await follower.promote();
      await promoted.append(payload(20, 4));
      await sleep(1500);
      assert.equal(settled, undefined, 'nothing acknowledged during the partition');
      assert.equal(old.replicated, replicated);
      partition.heal();
      await pending;
      assert.equal((settled as unknown as { code?: string }).code, 'WAL_REPLICA_FENCED');
      assert.equal(old.replicated, replicated);
      // The stream: the old writer's two records, the fence, the new one.
      const restoredPath = join(await dir(), 'r');
      const report = await restore({ nats: nc(), stream, into: restoredPath });
      assert.equal(report.records, 3);
      assert.deepEqual((await logContents(restoredPath)).bytes, await logBytes(local));
      await Promise.all([old.close(), promoted.close()]);
      await Promise.all([wal.close(), local.close()]);
    } finally {
      await partition.stop();
    }
  });
});
