import assert from 'node:assert/strict';
import diagnosticsChannel from 'node:diagnostics_channel';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { inspect } from 'node:util';
import {
  DiscardPolicy,
  jetstream,
  jetstreamManager,
  RetentionPolicy,
  StorageType,
} from '@nats-io/jetstream';
import { connect, errors, headers, nkeyAuthenticator, nkeys } from '@nats-io/transport-node';
import { CHANNELS, crc32c, encodeFrame, HEADER_SIZE, Wal, type WalOptions } from '@wal/core';
import { isWalError } from '@wal/errors';
import { Follower, Replicator, restore } from '@wal/replicate';
import { MemoryStore } from '@wal/store';
import fc from 'fast-check';
import { recordCrc } from '../src/message.js';
import {
  HeldSync,
  interceptable,
  logBytes,
  logContents,
  payload,
  signal,
  storedMessages,
  streamName,
  until,
  useCluster,
  within,
} from './fixture.js';

// A small max_payload makes split records cheap: 64 KiB, read by the client from INFO.
const MAX_PAYLOAD = 64 * 1024;

describe('Replicator on a 3-node cluster', function () {
  this.timeout(60_000);
  const { cluster, nc, dir } = useCluster({ maxPayload: MAX_PAYLOAD });

  /** The stream holds every record of the log at `path` once, in order. */
  async function assertEachRecordOnce(stream: string, path: string): Promise<void> {
    const stored = await storedMessages(nc(), stream);
    const { records } = await logContents(path);
    assert.deepEqual(
      stored.flatMap((m) => m.starts),
      records.map(([lsn]) => lsn),
    );
  }

  /** A replicated log on a store whose fdatasync is held back until `release()`. */
  async function heldWriter(interval: number) {
    const store = new HeldSync();
    const wal = await Wal.open(store);
    const stream = streamName();
    const replicator = await Replicator.attach(wal, { nats: nc(), stream, interval });
    const { promise: hold, fire: release } = signal();
    store.hold = hold;
    return { store, wal, stream, replicator, release };
  }

  async function writer(): Promise<{ path: string; wal: Wal }> {
    const path = await dir();
    return { path, wal: await Wal.open(path) };
  }

  it('refuses a client without credentials or with a wrong password', async () => {
    const servers = [...cluster().servers];
    await assert.rejects(connect({ servers, reconnect: false }), /authorization/i);
    await assert.rejects(
      connect({ servers, user: 'wal', pass: 'wrong', reconnect: false }),
      /authorization/i,
    );
  });

  it('ships every record in LSN order, R=3, and restore rebuilds the same bytes', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.nat({ max: 3 * MAX_PAYLOAD }), { minLength: 1, maxLength: 12 }),
        async (sizes) => {
          const { path, wal } = await writer();
          const stream = streamName();
          const replicator = await Replicator.attach(wal, { nats: nc(), stream, replicas: 3 });
          const lsns = await Promise.all(
            sizes.map((size, i) => replicator.append(payload(size, i + 1))),
          );
          assert.deepEqual(
            lsns,
            [...lsns].sort((a, b) => a - b),
          );
          assert.equal(replicator.replicated, wal.tail);
          assert.ok(wal.durable >= wal.tail, 'replicated implies durable');
          await replicator.close();
          await wal.close();

          const info = await (await jetstreamManager(nc())).streams.info(stream);
          assert.equal(info.config.num_replicas, 3);
          // Every record once, in LSN order: records whose frame fits in a
          // message in runs, a larger one in parts, consecutive.
          const stored = await storedMessages(nc(), stream);
          assert.deepEqual(
            stored.flatMap((m) => m.starts),
            lsns,
          );
          const partSize = MAX_PAYLOAD - 1024;
          for (const [i, size] of sizes.entries()) {
            const parts = stored.filter((m) => m.count === 0 && m.lsn === lsns[i]);
            const split = 8 + size > partSize;
            assert.equal(parts.length, split ? Math.ceil(size / partSize) : 0);
            assert.deepEqual(
              parts.map((m) => m.seq - parts[0]!.seq),
              parts.map((_, j) => j),
            );
          }
          for (const m of stored) assert.ok(m.size <= partSize, `message ${m.seq} too large`);

          const into = join(await dir(), 'restored');
          const report = await restore({ nats: nc(), stream, into });
          assert.equal(report.records, sizes.length);
          const original = await logContents(path);
          const restored = await logContents(into);
          assert.equal(restored.tail, original.tail);
          assert.deepEqual(restored.bytes, original.bytes);
          assert.deepEqual(restored.records, original.records);
        },
      ),
      { numRuns: 6 },
    );
  });

  it('publishes nothing before it is durable locally', async () => {
    const { wal, stream, replicator, release } = await heldWriter(5);
    let settled = false;
    const lsn = wal.append(payload(100, 1));
    await wal.waitFor(lsn, 'written');
    const appended = replicator
      .waitFor(lsn)
      .then(() => lsn)
      .finally(() => {
        settled = true;
      });
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.ok(wal.written > 0 && wal.durable === 0, 'written, not durable');
    assert.equal(settled, false);
    assert.equal((await storedMessages(nc(), stream)).length, 0);
    release();
    assert.equal(await appended, 0);
    assert.equal((await storedMessages(nc(), stream)).length, 1);
    await replicator.close();
    await wal.close();
  });

  it('concurrent waiters share publishes: many records per message, few rounds', async () => {
    const { wal } = await writer();
    const replicator = await Replicator.attach(wal, { nats: nc(), stream: streamName() });
    const lsns = await Promise.all(
      Array.from({ length: 200 }, (_, i) => replicator.append(payload(100, i))),
    );
    const last = lsns[lsns.length - 1]!;
    await Promise.all(lsns.map((lsn) => replicator.waitFor(lsn)));
    const stats = replicator.stats;
    // 200 frames of 108 bytes fit in one message: one per round.
    assert.ok(stats.messages <= stats.rounds, `${stats.messages} messages`);
    assert.equal(stats.duplicates, 0);
    assert.ok(stats.rounds <= 10, `rounds ${stats.rounds}`);
    assert.ok(replicator.replicated > last);
    await replicator.close();
    await wal.close();
  });

  it('a round stops at its batch limits: with batchBytes 1, one record per message', async () => {
    const { path, wal } = await writer();
    const stream = streamName();
    const replicator = await Replicator.attach(wal, { nats: nc(), stream, batchBytes: 1 });
    await Promise.all(Array.from({ length: 20 }, (_, i) => replicator.append(payload(100, i))));
    assert.equal(replicator.stats.messages, 20);
    assert.equal(replicator.stats.rounds, 20);
    await replicator.close();
    await wal.close();
    await assertEachRecordOnce(stream, path);
    assert.ok((await storedMessages(nc(), stream)).every((m) => m.count === 1));
  });

  it('ships records appended to the log directly once they are durable', async () => {
    const { path, wal } = await writer();
    const stream = streamName();
    const replicator = await Replicator.attach(wal, { nats: nc(), stream, interval: 10 });
    wal.append(payload(10, 1));
    const lsn = wal.append(payload(10, 2));
    await wal.sync();
    const deadline = Date.now() + 10_000;
    while (replicator.replicated <= lsn && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    assert.equal(replicator.replicated, wal.tail);
    wal.append(payload(10, 3));
    await replicator.flush();
    assert.equal(replicator.replicated, wal.tail);
    await replicator.close();
    await wal.close();
    await assertEachRecordOnce(stream, path);
    assert.equal((await logContents(path)).records.length, 3);
  });

  it('resumes after a restart from what the stream holds, without duplicates', async () => {
    const { path, wal } = await writer();
    const stream = streamName();
    let replicator = await Replicator.attach(wal, { nats: nc(), stream });
    for (let i = 0; i < 5; i++) await replicator.append(payload(50, i));
    await replicator.close();
    // Appended and made durable while nothing ships.
    for (let i = 5; i < 9; i++) wal.append(payload(50, i));
    await wal.close();

    const reopened = await Wal.open(path);
    replicator = await Replicator.attach(reopened, { nats: nc(), stream });
    assert.equal(replicator.sequence, 5);
    await replicator.append(payload(50, 9));
    // Records 5..9 in one run, or two when the first round began before the append.
    assert.ok(replicator.stats.messages <= 2, `${replicator.stats.messages} messages`);
    await replicator.close();
    await reopened.close();
    await assertEachRecordOnce(stream, path);
  });

  it('a publish retried after a lost acknowledgement is stored once', async () => {
    // A 1 ms acknowledgement timeout loses most acknowledgements: the
    // replicator must re-read the stream and adopt what it stored.
    const { path, wal } = await writer();
    const stream = streamName();
    const replicator = await Replicator.attach(wal, { nats: nc(), stream, timeout: 1 });
    // Records of 20 kB: three to a message, so there are many messages.
    await Promise.all(Array.from({ length: 40 }, (_, i) => replicator.append(payload(20_000, i))));
    assert.ok(replicator.stats.retries > 0, 'acknowledgements were lost');
    await replicator.close();
    await wal.close();
    await assertEachRecordOnce(stream, path);

    // The same message id and expectation sent twice: the second is a duplicate.
    const js = jetstream(nc());
    const other = streamName();
    const jsm = await jetstreamManager(nc());
    await jsm.streams.add({ name: other, subjects: [`x.${other}`], storage: StorageType.File });
    const h = headers();
    h.set('Wal-Lsn', '0');
    const options = { msgID: '0.0.00000000', expect: { lastSequence: 0 }, headers: h };
    const first = await js.publish(`x.${other}`, new Uint8Array(1), options);
    const again = await js.publish(`x.${other}`, new Uint8Array(1), options);
    assert.equal(first.seq, 1);
    assert.equal(again.duplicate, true);
    assert.equal(again.seq, 1);
    assert.equal((await jsm.streams.info(other)).state.messages, 1);
  });

  it("refuses another log's stream, and merges nothing", async () => {
    const a = await writer();
    const stream = streamName();
    const replicator = await Replicator.attach(a.wal, { nats: nc(), stream });
    await replicator.append(payload(20, 1));
    await replicator.append(payload(20, 2));
    await replicator.close();
    const b = await writer();
    b.wal.append(payload(20, 7));
    b.wal.append(payload(20, 8));
    await b.wal.sync();
    await assert.rejects(Replicator.attach(b.wal, { nats: nc(), stream }), (error) =>
      isWalError(error, 'WAL_REPLICA_MISMATCH'),
    );
    // A log shorter than the stream does not hold its records either.
    const c = await writer();
    await assert.rejects(Replicator.attach(c.wal, { nats: nc(), stream }), (error) =>
      isWalError(error, 'WAL_REPLICA_MISMATCH'),
    );
    assert.equal((await storedMessages(nc(), stream)).length, 2);
    await Promise.all([a.wal.close(), b.wal.close(), c.wal.close()]);
  });

  it('refuses an existing stream whose settings let the server drop messages, publishing nothing', async () => {
    // README (Guarantees): the stream keeps the whole history for restore; a
    // limit would drop acknowledged records, so such a stream is refused.
    const jsm = await jetstreamManager(nc());
    const settings = [
      ['max_msgs', { max_msgs: 3 }],
      ['max_bytes', { max_bytes: 1_000_000 }],
      ['max_age', { max_age: 3_600_000_000_000 }],
      ['max_msgs_per_subject', { max_msgs_per_subject: 5 }],
      ['retention workqueue', { retention: RetentionPolicy.Workqueue }],
      ['retention interest', { retention: RetentionPolicy.Interest }],
    ] as const;
    const { wal } = await writer();
    for (const [name, setting] of settings) {
      const stream = streamName();
      await jsm.streams.add({
        name: stream,
        subjects: [`wal.${stream}`, `wal.${stream}.*`],
        ...setting,
      });
      const refused = (error: unknown) =>
        isWalError(error, 'WAL_REPLICA_MISMATCH') && (error as Error).message.includes(name);
      await assert.rejects(Replicator.attach(wal, { nats: nc(), stream }), refused, name);
      await assert.rejects(Follower.open(wal, { nats: nc(), stream }), refused, name);
      await assert.rejects(restore({ nats: nc(), stream, into: join(await dir(), 'r') }), refused);
      assert.equal((await jsm.streams.info(stream)).state.last_seq, 0, name);
    }
    // Without limits (discard policy set or not) it is accepted.
    const stream = streamName();
    await jsm.streams.add({
      name: stream,
      subjects: [`wal.${stream}`, `wal.${stream}.*`],
      max_msgs: -1,
      discard: DiscardPolicy.New,
    });
    const replicator = await Replicator.attach(wal, { nats: nc(), stream });
    await replicator.append(payload(20, 1));
    await replicator.close();
    await wal.close();
  });

  it('refuses a stream with a gap or a message that is not a record', async () => {
    const jsm = await jetstreamManager(nc());
    const { wal } = await writer();
    // A stream the user made without deny_delete, so a message can be deleted.
    const gap = streamName();
    await jsm.streams.add({
      name: gap,
      subjects: [`wal.${gap}`, `wal.${gap}.*`],
      storage: StorageType.File,
    });
    const replicator = await Replicator.attach(wal, { nats: nc(), stream: gap });
    for (let i = 0; i < 3; i++) await replicator.append(payload(20, i));
    await replicator.close();
    await jsm.streams.deleteMessage(gap, 2);
    await assert.rejects(Replicator.attach(wal, { nats: nc(), stream: gap }), (error) =>
      isWalError(error, 'WAL_REPLICA_MISMATCH'),
    );
    const into = join(await dir(), 'r');
    await assert.rejects(restore({ nats: nc(), stream: gap, into }), (error) =>
      isWalError(error, 'WAL_REPLICA_MISMATCH'),
    );

    const foreign = streamName();
    await jsm.streams.add({
      name: foreign,
      subjects: [`wal.${foreign}`, `wal.${foreign}.*`],
      storage: StorageType.File,
    });
    await jetstream(nc()).publish(`wal.${foreign}`, new TextEncoder().encode('hello'));
    const fresh = await writer();
    await assert.rejects(Replicator.attach(fresh.wal, { nats: nc(), stream: foreign }), (error) =>
      isWalError(error, 'WAL_REPLICA_MISMATCH'),
    );
    await assert.rejects(
      restore({ nats: nc(), stream: foreign, into: join(await dir(), 'r') }),
      (error) => isWalError(error, 'WAL_REPLICA_MISMATCH'),
    );
    // A stream capturing more than the log's subjects, or fewer (a later
    // epoch could not publish).
    for (const subjects of [
      ['wal.wide', 'wal.wide.*', 'other.wide'],
      ['wal.wide', 'other.wide'],
      ['wal.wide'],
    ]) {
      const wide = streamName();
      await jsm.streams.add({ name: wide, subjects: subjects.map((s) => s.replace('wide', wide)) });
      await assert.rejects(Replicator.attach(fresh.wal, { nats: nc(), stream: wide }), (error) =>
        isWalError(error, 'WAL_REPLICA_MISMATCH'),
      );
    }
    await assert.rejects(
      restore({ nats: nc(), stream: 'missing', into: join(await dir(), 'm') }),
      (error) => isWalError(error, 'WAL_REPLICA_MISMATCH'),
    );
    await Promise.all([wal.close(), fresh.wal.close()]);
  });

  it('stops with WAL_REPLICA_MISMATCH when the stream is deleted, not retrying forever', async () => {
    // Like attaching to a missing stream: the stream held the log, and it is
    // gone (the servers keep saying so for 5 s; a server recovering might not know it).
    const { wal } = await writer();
    const stream = streamName();
    const replicator = await Replicator.attach(wal, { nats: nc(), stream });
    await replicator.append(payload(20, 1));
    const jsm = await jetstreamManager(nc());
    await jsm.streams.delete(stream);
    const started = Date.now();
    await assert.rejects(
      within('the append after the deletion', replicator.append(payload(20, 2)), 30_000),
      (error) => {
        assert.ok(isWalError(error, 'WAL_REPLICA_MISMATCH'), String(error));
        assert.match(error.message, /does not exist/);
        return true;
      },
    );
    assert.ok(Date.now() - started >= 5000, 'not before the servers said so for 5 s');
    assert.ok(isWalError(replicator.failure, 'WAL_REPLICA_MISMATCH'));
    await replicator.close();
    await wal.close();
  });

  it('stops when the stream lost messages it acknowledged', async () => {
    const { wal } = await writer();
    const stream = streamName();
    const replicator = await Replicator.attach(wal, { nats: nc(), stream });
    await replicator.append(payload(20, 1));
    await replicator.append(payload(20, 2));
    // Deleted and made again behind the replicator's back: empty.
    const jsm = await jetstreamManager(nc());
    await jsm.streams.delete(stream);
    await jsm.streams.add({
      name: stream,
      subjects: [`wal.${stream}`, `wal.${stream}.*`],
      num_replicas: 3,
    });
    await assert.rejects(replicator.append(payload(20, 3)), (error) =>
      isWalError(error, 'WAL_REPLICA_MISMATCH'),
    );
    assert.equal((await jsm.streams.info(stream)).state.messages, 0);
    await replicator.close();
    await wal.close();
  });

  it('a waiter whose record a truncateAfter dropped before shipping gets WAL_TRUNCATED', async () => {
    const { wal, stream, replicator, release } = await heldWriter(60_000);
    const a = wal.append(payload(10, 1));
    const shipped = replicator.waitFor(a);
    const b = wal.append(payload(10, 2));
    // Rejected as soon as the cut is durable.
    const dropped = assert.rejects(replicator.waitFor(b), (error) =>
      isWalError(error, 'WAL_TRUNCATED'),
    );
    const cut = wal.truncateAfter(a);
    release();
    await cut;
    await shipped;
    await dropped;
    // Nothing shipped was cut: the replicator goes on.
    assert.equal(replicator.failure, undefined);
    await replicator.append(payload(10, 3));
    await replicator.close();
    await wal.close();
    assert.equal((await storedMessages(nc(), stream)).length, 2);
  });

  it('a waiter whose dropped record another record replaced at its LSN before shipping still gets WAL_TRUNCATED', async () => {
    // README (truncateAfter): a waiter whose record a truncateAfter dropped
    // before it was shipped rejects with WAL_TRUNCATED; the replicator goes
    // on. The LSN is taken again before the replicator runs a round.
    const listened = diagnosticsChannel.hasSubscribers(CHANNELS.truncate);
    const { store, wal, stream, replicator, release } = await heldWriter(60_000);
    const first = wal.append(payload(10, 1));
    const a = wal.append(payload(10, 2));
    await wal.waitFor(a, 'written');
    const shipped = replicator.waitFor(a).then(
      () => 'replicated',
      (error: unknown) => error,
    );
    // The round's fdatasync (held back) covers `first` and `a` only: `b` is
    // appended after it started, so no round can read `b` before the cut.
    await until('the round syncs', () => store.syncing > 0);
    const b = wal.append(payload(10, 3));
    const dropped = replicator.waitFor(b).then(
      () => 'replicated',
      (error: unknown) => error,
    );
    // Another log's cut, to a tail below `a`, does not concern this replicator.
    const other = await Wal.open(new MemoryStore());
    const kept = other.append(payload(1, 0));
    other.append(payload(10, 0));
    await other.truncateAfter(kept);
    assert.ok(other.tail <= a);
    const cut = wal.truncateAfter(a);
    release();
    await cut;
    const refill = wal.append(payload(200, 3));
    assert.equal(refill, b);
    const outcome = await within("the dropped record's waiter", dropped, 10_000);
    assert.ok(isWalError(outcome, 'WAL_TRUNCATED'), String(outcome));
    assert.equal((outcome as { offset?: number }).offset, b);
    // The record at its LSN now is shipped.
    await replicator.waitFor(refill);
    assert.equal(await shipped, 'replicated');
    assert.equal(replicator.failure, undefined);
    await replicator.close();
    assert.equal(diagnosticsChannel.hasSubscribers(CHANNELS.truncate), listened);
    const stored = await storedMessages(nc(), stream);
    assert.deepEqual(
      stored.flatMap((m) => m.starts),
      [first, a, refill],
    );
    // The stream holds the refill's bytes, not the dropped record's.
    const into = join(await dir(), 'r');
    await restore({ nats: nc(), stream, into });
    assert.deepEqual((await logContents(into)).bytes, await logBytes(wal));
    await Promise.all([wal.close(), other.close()]);
  });

  it('refuses truncateAfter below what was replicated: fail-stop, stream unchanged', async () => {
    const { wal } = await writer();
    const stream = streamName();
    const replicator = await Replicator.attach(wal, { nats: nc(), stream });
    const first = await replicator.append(payload(20, 1));
    await replicator.append(payload(20, 2));
    await wal.truncateAfter(first);
    await assert.rejects(replicator.append(payload(20, 3)), (error) =>
      isWalError(error, 'WAL_REPLICA_MISMATCH'),
    );
    assert.ok(isWalError(replicator.failure, 'WAL_REPLICA_MISMATCH'));
    await assert.rejects(replicator.waitFor(first), (error) =>
      isWalError(error, 'WAL_REPLICA_MISMATCH'),
    );
    await replicator.close();
    assert.equal((await storedMessages(nc(), stream)).length, 2);
    await wal.close();
  });

  /** The stream's last sequence, asked of the servers. */
  async function lastSequence(stream: string): Promise<number> {
    const jsm = await jetstreamManager(nc());
    return (await jsm.streams.info(stream)).state.last_seq;
  }

  // A record of 200 parts: a round ships it one part at a time, long enough
  // to cut the log while the round is in flight.
  const PARTS = 200;
  const big = (seed: number) => payload(PARTS * (MAX_PAYLOAD - 1024), seed);

  it('a truncateAfter while a round ships a record stops the replicator; the record taking the LSN is never acknowledged', async () => {
    // README (truncateAfter): a cut below what the stream holds stops the
    // replicator with WAL_REPLICA_MISMATCH and nothing more is published.
    const wal = await Wal.open(new MemoryStore());
    const stream = streamName();
    const replicator = await Replicator.attach(wal, {
      nats: nc(),
      stream,
      batchMessages: 100_000,
      batchBytes: 2 ** 30,
    });
    const a = await replicator.append(payload(10, 1));
    const shippedA = await lastSequence(stream);
    const r = wal.append(big(2));
    const waitR = replicator.waitFor(r).then(
      () => 'replicated',
      (error: unknown) => error,
    );
    await wal.sync();
    // Some parts of R are in the stream, the round still publishing the rest.
    await until(
      'the stream holds a part of R',
      async () => (await lastSequence(stream)) > shippedA,
    );
    await wal.truncateAfter(a);
    const outcome = await within("R's waiter", waitR, 15_000);
    assert.ok(isWalError(outcome, 'WAL_REPLICA_MISMATCH'), String(outcome));
    // A record at R's LSN is not R: never acknowledged as replicated.
    const r2 = wal.append(payload(100, 3));
    assert.equal(r2, r);
    await assert.rejects(within("R2's waiter", replicator.waitFor(r2), 15_000), (error) =>
      isWalError(error, 'WAL_REPLICA_MISMATCH'),
    );
    assert.ok(isWalError(replicator.failure, 'WAL_REPLICA_MISMATCH'));
    await replicator.close();
    // Nothing was published after the cut: R is not complete in the stream.
    const stored = await storedMessages(nc(), stream);
    assert.ok(stored.length < 1 + PARTS, `${stored.length} messages`);
    await wal.close();
  });

  it('a truncateAfter of a record the stream holds only parts of stops the replicator; restore still works', async () => {
    // The writer's connection dies mid-record: the stream ends inside R. A
    // replicator attached again resumes inside R; cutting R must stop it
    // (the stream holds bytes of R), not ship another record as R's rest.
    const path = await dir();
    const wal = await Wal.open(path);
    const stream = streamName();
    const own = await connect(cluster().connectOptions());
    const first = await Replicator.attach(wal, { nats: own, stream });
    const a = await first.append(payload(10, 1));
    const shippedA = first.sequence;
    const r = wal.append(big(2));
    const waitR = first.waitFor(r).catch(() => undefined);
    await until(
      'the stream holds a part of R',
      async () => (await lastSequence(stream)) > shippedA,
    );
    await own.close();
    await waitR;
    await first.close();
    const second = await Replicator.attach(wal, { nats: nc(), stream, interval: 2 ** 31 - 1 });
    assert.equal(second.replicated, r, 'resumed inside R');
    const partsOfR = second.sequence - shippedA;
    assert.ok(partsOfR > 0 && partsOfR < PARTS, `${partsOfR} parts of R`);
    await wal.truncateAfter(a);
    assert.ok(isWalError(second.failure, 'WAL_REPLICA_MISMATCH'), String(second.failure));
    await assert.rejects(
      within("the append at R's LSN", second.append(payload(100, 3)), 15_000),
      (error) => isWalError(error, 'WAL_REPLICA_MISMATCH'),
    );
    await second.close();
    // Nothing more was published, and the stream still restores: A, and R left out.
    assert.equal(await lastSequence(stream), shippedA + partsOfR);
    const into = join(await dir(), 'r');
    const report = await restore({ nats: nc(), stream, into });
    assert.equal(report.records, 1);
    assert.equal(report.end, r);
    await wal.close();
  });

  it('a publish refused because another writer extended the stream during a cut: WAL_REPLICA_FENCED', async () => {
    // README (Guarantees): another writer extending the stream stops this
    // one with WAL_REPLICA_FENCED. A truncateAfter heard while the refused
    // publish was in flight dropped only records never stored: the stream
    // holds nothing the log lost, so this is not a cut of shipped records.
    const { nc: conn, control } = interceptable(nc());
    const wal = await Wal.open(new MemoryStore());
    const stream = streamName();
    const replicator = await Replicator.attach(wal, { nats: conn, stream });
    const a = await replicator.append(payload(10, 1));
    // The next publish is held back before it reaches the server.
    const { promise: released, fire: release } = signal();
    const { promise: holding, fire: held } = signal();
    control.onRequest = async (subject, forward) => {
      if (subject !== `wal.${stream}`) return forward();
      control.onRequest = undefined;
      held();
      await released;
      return forward();
    };
    const b = wal.append(payload(10, 2));
    const waitB = replicator.waitFor(b).then(
      () => 'replicated',
      (error: unknown) => error,
    );
    await within('the publish of b', holding, 15_000);
    // A second writer of the same epoch (a log restored from the stream)
    // extends it at b's LSN with other bytes, in two messages (the one
    // after the last acknowledged is not the last).
    const into = join(await dir(), 'second');
    await restore({ nats: nc(), stream, into });
    const otherWal = await Wal.open(into);
    const second = await Replicator.attach(otherWal, { nats: nc(), stream });
    assert.equal(await second.append(payload(10, 3)), b);
    await second.append(payload(10, 5));
    assert.equal(await lastSequence(stream), 3);
    await wal.truncateAfter(a);
    assert.ok(isWalError(await within("b's waiter", waitB, 15_000), 'WAL_TRUNCATED'));
    release(); // refused: the stream's last sequence is the second writer's
    const c = wal.append(payload(10, 4));
    assert.equal(c, b);
    await assert.rejects(within("c's waiter", replicator.waitFor(c), 15_000), (error) => {
      assert.ok(isWalError(error, 'WAL_REPLICA_FENCED'), String(error));
      assert.match(error.message, /another writer/);
      return true;
    });
    assert.ok(isWalError(replicator.failure, 'WAL_REPLICA_FENCED'));
    await Promise.all([replicator.close(), second.close()]);
    await Promise.all([wal.close(), otherWal.close()]);
  });

  it('a message stored with its acknowledgement lost, then cut from the log: WAL_REPLICA_MISMATCH, not fenced', async () => {
    // README (truncateAfter): the stream holds bytes the cut dropped (the
    // replicator's own message, not another writer's): WAL_REPLICA_MISMATCH,
    // also when the cut is heard after the failed publish.
    const { nc: conn, control } = interceptable(nc());
    const wal = await Wal.open(new MemoryStore());
    const stream = streamName();
    const replicator = await Replicator.attach(wal, { nats: conn, stream });
    const a = await replicator.append(payload(10, 1));
    const { promise: released, fire: release } = signal();
    const { promise: holding, fire: held } = signal();
    let lost = false;
    control.onRequest = async (subject, forward) => {
      if (subject === `wal.${stream}`) {
        // Stored, its acknowledgement lost on the way back.
        await forward();
        lost = true;
        throw new errors.TimeoutError();
      }
      if (lost && subject.startsWith('$JS.API.STREAM.INFO.')) {
        // The replicator reads the stream again after the failure: the cut
        // lands first.
        control.onRequest = undefined;
        held();
        await released;
      }
      return forward();
    };
    const b = wal.append(payload(10, 2));
    const waitB = replicator.waitFor(b).then(
      () => 'replicated',
      (error: unknown) => error,
    );
    await within('the stream read after the lost acknowledgement', holding, 15_000);
    assert.equal(await lastSequence(stream), 2, 'b is stored');
    await wal.truncateAfter(a);
    // Dropped before it was acknowledged: its waiter is told so.
    assert.ok(isWalError(await within("b's waiter", waitB, 15_000), 'WAL_TRUNCATED'));
    release();
    const c = wal.append(payload(10, 4));
    await assert.rejects(within("c's waiter", replicator.waitFor(c), 15_000), (error) => {
      assert.ok(isWalError(error, 'WAL_REPLICA_MISMATCH'), String(error));
      assert.match(error.message, /truncateAfter/);
      return true;
    });
    assert.ok(isWalError(replicator.failure, 'WAL_REPLICA_MISMATCH'));
    await replicator.close();
    await wal.close();
  });

  it('restore to an LSN stops exactly there; to must be a record of the stream', async () => {
    const { path, wal } = await writer();
    const stream = streamName();
    const replicator = await Replicator.attach(wal, { nats: nc(), stream });
    const lsns: number[] = [];
    for (let i = 0; i < 8; i++) lsns.push(await replicator.append(payload(i * 9000, i)));
    await replicator.close();
    await wal.close();
    const original = await logContents(path);
    for (const k of [0, 3, 7]) {
      const into = join(await dir(), 'r');
      const report = await restore({ nats: nc(), stream, into, to: lsns[k]! });
      assert.equal(report.lastLsn, lsns[k]);
      const restored = await logContents(into);
      assert.equal(restored.records.length, k + 1);
      assert.deepEqual(restored.bytes, original.bytes.subarray(0, restored.tail));
      assert.equal(restored.tail, lsns[k + 1] ?? original.tail);
    }
    await assert.rejects(
      restore({ nats: nc(), stream, into: join(await dir(), 'r'), to: lsns[2]! + 1 }),
      (error) => isWalError(error, 'WAL_NOT_BOUNDARY'),
    );
    await assert.rejects(
      restore({ nats: nc(), stream, into: join(await dir(), 'r'), to: original.tail }),
      { code: 'ERR_OUT_OF_RANGE' },
    );
  });

  it('restore to a record inside a run stops there; to inside a run but at no record is WAL_NOT_BOUNDARY', async () => {
    // restore() docs: WAL_NOT_BOUNDARY when no record of the stream starts at `to`.
    const { path, wal } = await writer();
    const stream = streamName();
    const replicator = await Replicator.attach(wal, { nats: nc(), stream });
    const run = await replicator.appendBatch([payload(100, 1), payload(100, 2), payload(100, 3)]);
    await replicator.append(payload(100, 4));
    await replicator.close();
    await wal.close();
    assert.equal((await storedMessages(nc(), stream)).length, 2, 'the batch is one run');
    const original = await logContents(path);
    const into = join(await dir(), 'r');
    const report = await restore({ nats: nc(), stream, into, to: run[1]! });
    assert.equal(report.lastLsn, run[1]);
    assert.deepEqual((await logContents(into)).bytes, original.bytes.subarray(0, run[2]!));
    for (const to of [run[0]! + 1, run[1]! + 1, run[2]! - 1]) {
      const at = join(await dir(), 'r');
      await assert.rejects(restore({ nats: nc(), stream, into: at, to }), (error) => {
        assert.ok(isWalError(error, 'WAL_NOT_BOUNDARY'), String(error));
        assert.equal(error.offset, to);
        return true;
      });
      // What it holds is a valid log, a prefix of the writer's.
      const left = await logContents(at);
      assert.deepEqual(left.bytes, original.bytes.subarray(0, left.tail));
    }
  });

  it('restore leaves a non-empty target untouched', async () => {
    const { wal } = await writer();
    const stream = streamName();
    const replicator = await Replicator.attach(wal, { nats: nc(), stream });
    await replicator.append(payload(5, 1));
    await replicator.close();
    await wal.close();
    const target = await dir();
    await writeFile(join(target, 'mine'), 'not a log');
    await assert.rejects(restore({ nats: nc(), stream, into: target }), {
      code: 'ERR_INVALID_ARG_VALUE',
    });
    await assert.rejects(restore({ nats: nc(), stream, into: join(target, 'mine') }), {
      code: 'ERR_INVALID_ARG_VALUE',
    });
    assert.deepEqual((await logContents(join(target, 'x'))).records, []);
  });

  it('an empty stream restores an empty log', async () => {
    const { wal } = await writer();
    const stream = streamName();
    const replicator = await Replicator.attach(wal, { nats: nc(), stream });
    await replicator.flush();
    await replicator.close();
    await wal.close();
    const into = join(await dir(), 'r');
    const report = await restore({ nats: nc(), stream, into });
    assert.equal(report.records, 0);
    assert.equal(report.end, 0);
  });

  it('truncateBefore up to what was replicated is fine, also across a restart', async () => {
    const { path, wal } = await writer();
    const stream = streamName();
    let replicator = await Replicator.attach(wal, { nats: nc(), stream });
    for (let i = 0; i < 3; i++) await replicator.append(payload(40, i));
    const head = await replicator.append(payload(40, 3));
    await wal.truncateBefore(head);
    await replicator.append(payload(40, 4));
    await wal.truncateBefore(wal.tail);
    await replicator.close();
    await wal.close();
    const reopened = await Wal.open(path);
    replicator = await Replicator.attach(reopened, { nats: nc(), stream });
    await replicator.append(payload(40, 5));
    await replicator.close();
    await reopened.close();
    const into = join(await dir(), 'r');
    assert.equal((await restore({ nats: nc(), stream, into })).records, 6);
    const original = await logContents(path);
    const restored = await logContents(into);
    assert.equal(restored.tail, original.tail);
    assert.deepEqual(restored.records.slice(5), original.records);
    assert.ok(original.head > 0);
    assert.deepEqual(restored.bytes.subarray(original.head), original.bytes);
  });

  it('truncateBefore past what was replicated stops the replicator with WAL_TRUNCATED', async () => {
    const { wal } = await writer();
    const stream = streamName();
    const replicator = await Replicator.attach(wal, { nats: nc(), stream, interval: 60_000 });
    await replicator.append(payload(40, 1));
    wal.append(payload(40, 2));
    await wal.sync();
    await wal.truncateBefore(wal.tail);
    await assert.rejects(replicator.flush(), (error) => isWalError(error, 'WAL_TRUNCATED'));
    assert.equal((await storedMessages(nc(), stream)).length, 1);
    await replicator.close();
    await wal.close();
  });

  it('refuses to start a stream from a log whose head is past 0', async () => {
    const { wal } = await writer();
    wal.append(payload(5, 1));
    const second = wal.append(payload(5, 2));
    await wal.sync();
    await wal.truncateBefore(second);
    await assert.rejects(Replicator.attach(wal, { nats: nc(), stream: streamName() }), (error) =>
      isWalError(error, 'WAL_REPLICA_MISMATCH'),
    );
    await wal.close();
  });

  it('a connection its owner closes stops the replicator and the follower with WAL_CLOSED, no waiter left hanging', async () => {
    const store = new HeldSync();
    const wal = await Wal.open(store);
    const stream = streamName();
    const own = await connect(cluster().connectOptions());
    const replicator = await Replicator.attach(wal, { nats: own, stream });
    await replicator.append(payload(5, 1));
    const followed = await Wal.open(new MemoryStore());
    const follower = await Follower.open(followed, { nats: own, stream });
    await follower.caughtUp();
    // An append waiting for its fdatasync when the connection goes away.
    const { promise: hold, fire: release } = signal();
    store.hold = hold;
    const pending = replicator.append(payload(5, 2));
    await own.close();
    release();
    await assert.rejects(within('the pending append', pending, 15_000), { code: 'WAL_CLOSED' });
    assert.equal(replicator.failure?.code, 'WAL_CLOSED');
    await until('the follower stops', () => follower.failure !== undefined, 15_000);
    assert.equal(follower.failure?.code, 'WAL_CLOSED');
    await Promise.all([replicator.close(), follower.close()]);
    await Promise.all([wal.close(), followed.close()]);
  });

  it('rejects after close with WAL_CLOSED, and bad arguments with codes', async () => {
    const { wal } = await writer();
    const replicator = await Replicator.attach(wal, { nats: nc(), stream: streamName() });
    const lsn = await replicator.append(payload(5, 1));
    await assert.rejects(replicator.waitFor(wal.tail), { code: 'ERR_OUT_OF_RANGE' });
    await assert.rejects(replicator.waitFor(-1), { code: 'ERR_OUT_OF_RANGE' });
    await replicator.close();
    await replicator.close();
    for (const call of [
      () => replicator.append(payload(1, 1)),
      () => replicator.appendBatch([payload(1, 1)]),
      () => replicator.waitFor(lsn),
      () => replicator.flush(),
    ]) {
      await assert.rejects(call(), (error) => isWalError(error, 'WAL_CLOSED'));
    }
    await assert.rejects(Replicator.attach(wal, { nats: nc(), stream: 'bad name' }), {
      code: 'ERR_INVALID_ARG_VALUE',
    });
    await assert.rejects(Replicator.attach(wal, { nats: nc(), stream: streamName(), timeout: 0 }), {
      code: 'ERR_OUT_OF_RANGE',
    });
    await assert.rejects(Replicator.attach({} as Wal, { nats: nc(), stream: streamName() }), {
      code: 'ERR_INVALID_ARG_TYPE',
    });
    await wal.close();
    await assert.rejects(Replicator.attach(wal, { nats: nc(), stream: streamName() }), (error) =>
      isWalError(error, 'WAL_CLOSED'),
    );
  });

  it('appendBatch resolves once the whole batch is replicated', async () => {
    const { wal } = await writer();
    const replicator = await Replicator.attach(wal, { nats: nc(), stream: streamName() });
    const lsns = await replicator.appendBatch([payload(3, 1), payload(4, 2), payload(5, 3)]);
    assert.equal(lsns.length, 3);
    assert.equal(replicator.replicated, wal.tail);
    assert.deepEqual(await replicator.appendBatch([]), []);
    await replicator.close();
    await wal.close();
  });
});

describe('secrets', function () {
  this.timeout(60_000);
  // An NKey user admitted by the servers, and one they do not know.
  const admitted = nkeys.createUser();
  const stranger = nkeys.createUser();
  const { cluster, dir } = useCluster({ nkeys: [admitted.getPublicKey()] });

  it('passes NKey authentication through; an unknown NKey is refused', async () => {
    const path = await dir();
    const wal = await Wal.open(path);
    const servers = [...cluster().servers];
    const seed = (user: typeof admitted) => nkeyAuthenticator(user.getSeed());
    await assert.rejects(
      Replicator.attach(wal, {
        nats: { servers, authenticator: seed(stranger), reconnect: false },
        stream: 'nk',
      }),
      /authorization/i,
    );
    const replicator = await Replicator.attach(wal, {
      nats: { servers, authenticator: seed(admitted) },
      stream: 'nk',
    });
    await replicator.append(payload(10, 1));
    assert.equal(replicator.replicated, wal.tail);
    await replicator.close();
    await wal.close();
  });

  it('never shows a password or an NKey seed in an error, a stat or an output line', async () => {
    const secret = cluster().password;
    const wrong = `not-${secret}`;
    const written: string[] = [];
    const { stdout, stderr } = process;
    const writes = [stdout.write, stderr.write] as const;
    const capture = (chunk: unknown) => {
      written.push(String(chunk));
      return true;
    };
    stdout.write = capture as typeof stdout.write;
    stderr.write = capture as typeof stderr.write;
    const seen: string[] = [];
    try {
      const path = await dir();
      const wal = await Wal.open(path);
      const servers = [...cluster().servers];
      for (const attempt of [
        () =>
          Replicator.attach(wal, {
            nats: { servers, user: 'wal', pass: wrong, reconnect: false },
            stream: 's1',
          }),
        () =>
          Replicator.attach(wal, {
            nats: {
              servers,
              authenticator: nkeyAuthenticator(stranger.getSeed()),
              reconnect: false,
            },
            stream: 's1',
          }),
        () =>
          restore({
            nats: { servers, user: 'wal', pass: wrong, reconnect: false },
            stream: 's1',
            into: join(path, 'r'),
          }),
      ]) {
        const error = await attempt().then(
          () => assert.fail('refused'),
          (e: unknown) => e,
        );
        seen.push(inspect(error, { depth: null }), String(error));
      }
      // A connection the replicator opens from options, with the right password.
      const replicator = await Replicator.attach(wal, {
        nats: cluster().connectOptions({ name: 'writer' }),
        stream: 's1',
      });
      await replicator.append(payload(10, 1));
      seen.push(JSON.stringify(replicator.stats), inspect(replicator, { depth: null }));
      await replicator.close();
      await wal.close();
    } finally {
      [stdout.write, stderr.write] = writes;
    }
    const seeds = [admitted, stranger].map((user) => new TextDecoder().decode(user.getSeed()));
    for (const text of [...seen, ...written]) {
      for (const hidden of [secret, wrong, ...seeds]) {
        assert.ok(!text.includes(hidden), `a secret in: ${text.slice(0, 200)}`);
      }
    }
    assert.ok(
      seen.some((text) => /authorization/i.test(text)),
      'the refusal is explained',
    );
  });
});

describe('restore from a hostile stream', function () {
  this.timeout(60_000);
  const { nc, dir } = useCluster();

  interface Raw {
    lsn: number;
    length: number;
    crc?: number;
    part: number;
    data: Uint8Array;
    /** Extra headers (an epoch; a fence's) replacing the record's when `fence` is set. */
    extra?: [string, string][];
    fence?: boolean;
  }

  /** A stream made by hand, holding `messages` in order. */
  async function handMade(messages: Raw[]): Promise<string> {
    const stream = streamName();
    const jsm = await jetstreamManager(nc());
    await jsm.streams.add({
      name: stream,
      subjects: [`wal.${stream}`, `wal.${stream}.*`],
      storage: StorageType.File,
    });
    const js = jetstream(nc());
    for (const m of messages) {
      const h = headers();
      if (m.fence !== true) {
        h.set('Wal-Lsn', String(m.lsn));
        h.set('Wal-Length', String(m.length));
        h.set('Wal-Crc', (m.crc ?? 0).toString(16).padStart(8, '0'));
        h.set('Wal-Part', String(m.part));
      }
      for (const [name, value] of m.extra ?? []) h.set(name, value);
      await js.publish(`wal.${stream}`, m.data, { headers: h });
    }
    return stream;
  }

  const record = (lsn: number, bytes: Uint8Array, part = 0, size = bytes.length): Raw => ({
    lsn,
    length: bytes.length,
    crc: recordCrc(bytes),
    part,
    data: bytes.subarray(part, part + size),
  });

  /** A run of `payloads` from `lsn`; `replace` overrides its headers. */
  const run = (lsn: number, payloads: Uint8Array[], replace: [string, string][] = []): Raw => {
    const data = Buffer.concat(payloads.map((p) => encodeFrame(p)));
    const fields = new Map([
      ['Wal-Lsn', String(lsn)],
      ['Wal-Count', String(payloads.length)],
      ['Wal-Crc', crc32c(data).toString(16).padStart(8, '0')],
      ...replace,
    ]);
    // `fence` set: only the headers in `extra`.
    return { lsn, length: 0, part: 0, data, fence: true, extra: [...fields] };
  };

  it('checks every record: LSN order, parts, runs, CRC, size', async () => {
    const a = payload(100, 1);
    const b = payload(100, 2);
    const cases: [string, Raw[], string, WalOptions?][] = [
      ['an LSN gap', [record(0, a), record(200, b)], 'WAL_REPLICA_MISMATCH'],
      ['a part out of order', [record(0, a, 0, 50), record(0, a, 60, 40)], 'WAL_REPLICA_MISMATCH'],
      ['a record starting mid-way', [record(0, a, 50, 50)], 'WAL_REPLICA_MISMATCH'],
      ['a wrong CRC', [{ ...record(0, a), crc: 1 }], 'WAL_CORRUPTION'],
      ['a record above the maximum', [record(0, a)], 'WAL_RECORD_TOO_LARGE', { maxRecordSize: 50 }],
      ['a run at a wrong LSN', [run(8, [a, b])], 'WAL_REPLICA_MISMATCH'],
      ['a run after a gap', [run(0, [a]), run(300, [b])], 'WAL_REPLICA_MISMATCH'],
      ['a run inside a record', [record(0, a, 0, 50), run(0, [b])], 'WAL_REPLICA_MISMATCH'],
      ['a run of another epoch', [run(0, [a], [['Wal-Epoch', '1']])], 'WAL_REPLICA_MISMATCH'],
      ['a run miscounted', [run(0, [a, b], [['Wal-Count', '3']])], 'WAL_REPLICA_MISMATCH'],
      ['a run failing its CRC', [run(0, [a], [['Wal-Crc', '00000001']])], 'WAL_CORRUPTION'],
      [
        'a run record above the maximum',
        [run(0, [a])],
        'WAL_RECORD_TOO_LARGE',
        { maxRecordSize: 50 },
      ],
    ];
    for (const [what, messages, code, wal] of cases) {
      const stream = await handMade(messages);
      const into = join(await dir(), 'r');
      await assert.rejects(
        restore({ nats: nc(), stream, into, ...(wal === undefined ? {} : { wal }) }),
        (error) => isWalError(error) && error.code === code,
        what,
      );
    }
  });

  const fence = (tail: number, epoch: number, data: Uint8Array = new Uint8Array(0)): Raw => ({
    lsn: 0,
    length: 0,
    part: 0,
    data,
    fence: true,
    extra: [
      ['Wal-Fence', String(tail)],
      ['Wal-Epoch', String(epoch)],
    ],
  });
  const epoch = (raw: Raw, e: number): Raw => ({ ...raw, extra: [['Wal-Epoch', String(e)]] });
  const seal = (e: number, data: Uint8Array = new Uint8Array(0)): Raw => ({
    lsn: 0,
    length: 0,
    part: 0,
    data,
    fence: true,
    extra: [['Wal-Seal', String(e)]],
  });

  it('checks fences: at the log tail, a later epoch, no data; records after in that epoch', async () => {
    const a = payload(100, 1);
    const b = payload(100, 2);
    const end = HEADER_SIZE + 100;
    const cases: [string, Raw[]][] = [
      ['a fence past the tail', [record(0, a), fence(end + 1, 1)]],
      ['a fence not starting a later epoch', [record(0, a), fence(end, 1), fence(end, 1)]],
      ['a fence of epoch 0', [record(0, a), fence(end, 0)]],
      ['a fence with data', [record(0, a), fence(end, 1, a)]],
      ['an old epoch after a fence', [record(0, a), fence(end, 1), record(end, b)]],
      ['a new epoch without a fence', [record(0, a), epoch(record(end, b), 1)]],
      ['an epoch change inside a record', [record(0, a, 0, 50), epoch(record(0, a, 50, 50), 1)]],
      ['a seal with data', [record(0, a), seal(1, a)]],
      ['a seal of epoch 0', [record(0, a), seal(0)]],
      ['a record continued after a seal', [record(0, a, 0, 50), seal(1), record(0, a, 50, 50)]],
    ];
    for (const [what, messages] of cases) {
      const stream = await handMade(messages);
      await assert.rejects(
        restore({ nats: nc(), stream, into: join(await dir(), 'r') }),
        { code: 'WAL_REPLICA_MISMATCH' },
        what,
      );
    }
    // A fence voids the unfinished record before it; its LSN is used again.
    const stream = await handMade([record(0, a, 0, 50), fence(0, 1), epoch(record(0, b), 1)]);
    const into = join(await dir(), 'r');
    const report = await restore({ nats: nc(), stream, into });
    assert.equal(report.records, 1);
    assert.deepEqual((await logContents(into)).records, [[0, b]]);
    // Seals are skipped; one voids the unfinished record before it too. A
    // restore to an LSN and a follower restarting behind a seal find their
    // place (a seal has no LSN: the message before it stands for it).
    const sealed = await handMade([
      record(0, a),
      record(end, b, 0, 50),
      seal(1),
      seal(1),
      fence(end, 1),
      epoch(record(end, b), 1),
      seal(2),
    ]);
    const whole = join(await dir(), 'w');
    assert.equal((await restore({ nats: nc(), stream: sealed, into: whole })).records, 2);
    assert.deepEqual((await logContents(whole)).records, [
      [0, a],
      [end, b],
    ]);
    const part = join(await dir(), 'p');
    await restore({ nats: nc(), stream: sealed, into: part, to: 0 });
    const behind = await Wal.open(part);
    const follower = await Follower.open(behind, { nats: nc(), stream: sealed });
    await follower.caughtUp();
    assert.deepEqual(await logBytes(behind), (await logContents(whole)).bytes);
    assert.deepEqual(await follower.lag(), { lsns: 0, seconds: 0, messages: 0 });
    await follower.close();
    await behind.close();
    await assert.rejects(
      restore({ nats: nc(), stream: sealed, into: join(await dir(), 'x'), to: end + 1 }),
      { code: 'ERR_OUT_OF_RANGE' },
    );
  });

  it('leaves out a record whose parts end the stream unfinished', async () => {
    const a = payload(100, 1);
    const b = payload(100, 2);
    const stream = await handMade([record(0, a), record(108, b, 0, 40)]);
    const into = join(await dir(), 'r');
    const report = await restore({ nats: nc(), stream, into });
    assert.deepEqual(report, { records: 1, end: 108, lastLsn: 0, sequence: 2 });
    // Restoring "to" the unfinished record is past the last record restored.
    await assert.rejects(
      restore({ nats: nc(), stream, into: join(await dir(), 'r'), to: 108 }),
      (error) => {
        assert.equal((error as { code?: string }).code, 'ERR_OUT_OF_RANGE', String(error));
        return true;
      },
    );
    // Inside it too; the record before it is restored.
    await assert.rejects(restore({ nats: nc(), stream, into: join(await dir(), 'r'), to: 120 }), {
      code: 'ERR_OUT_OF_RANGE',
    });
    assert.equal(
      (await restore({ nats: nc(), stream, into: join(await dir(), 'r'), to: 0 })).lastLsn,
      0,
    );
  });

  it('restores into an empty file or an empty store, and refuses a store that holds a log', async () => {
    const a = payload(10, 1);
    const stream = await handMade([record(0, a)]);
    const file = join(await dir(), 'log');
    await writeFile(file, '');
    assert.equal(
      (await restore({ nats: nc(), stream, into: file, wal: { layout: 'file' } })).records,
      1,
    );
    // Without options too: an empty file becomes a one-file log.
    const bare = join(await dir(), 'log');
    await writeFile(bare, '');
    assert.equal((await restore({ nats: nc(), stream, into: bare })).records, 1);
    const reopened = await Wal.open(bare, { layout: 'file' });
    assert.deepEqual(await reopened.read(0), a);
    await reopened.close();
    const store = new MemoryStore();
    assert.equal((await restore({ nats: nc(), stream, into: store })).records, 1);
    const used = new MemoryStore();
    await used.write(0, encodeFrame(a));
    await assert.rejects(restore({ nats: nc(), stream, into: used }), {
      code: 'ERR_INVALID_ARG_VALUE',
    });
    await assert.rejects(
      restore({ nats: nc(), stream: 'empty-none', into: store, to: 0 }),
      (error) => isWalError(error, 'WAL_REPLICA_MISMATCH'),
    );
  });

  it('refuses bad targets with argument codes', async () => {
    const into = join(await dir(), 'r');
    for (const [options, code] of [
      [null, 'ERR_INVALID_ARG_TYPE'],
      [{ nats: nc(), stream: 7, into }, 'ERR_INVALID_ARG_TYPE'],
      [{ nats: nc(), stream: 'a', subject: 'x.*', into }, 'ERR_INVALID_ARG_VALUE'],
      [{ nats: null, stream: 'a', into }, 'ERR_INVALID_ARG_TYPE'],
      [{ nats: nc(), stream: 'a', into, to: -1 }, 'ERR_OUT_OF_RANGE'],
    ] as const) {
      await assert.rejects(restore(options as never), { code });
    }
  });
});
