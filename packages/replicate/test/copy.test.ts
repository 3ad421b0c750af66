import assert from 'node:assert/strict';
import { Wal } from '@wal/core';
import { isWalError, type ReplicaMismatchError } from '@wal/errors';
import { MemoryStore } from '@wal/store';
import fc from 'fast-check';
import { collectMessages, type Outgoing, publishFence, publishMessages } from '../src/batch.js';
import { LogCopy } from '../src/copy.js';
import { fenceHeaders, partHeaders, runHeaders, sealHeaders } from '../src/message.js';
import type { StreamHandle } from '../src/stream.js';
import { logBytes, payload } from './fixture.js';

type Headers = { get(name: string): string };

function headersOf(pairs: [string, string][]): Headers {
  const map = new Map(pairs);
  return { get: (name: string) => map.get(name) ?? '' };
}

/** The stream messages (headers and data) of a log holding `payloads`, cut at `partSize`. */
async function messagesOf(payloads: Uint8Array[], partSize: number, epoch = 0, from = 0) {
  const wal = await Wal.open(new MemoryStore());
  wal.appendBatch(payloads);
  await wal.sync();
  const out: Outgoing[] = await collectMessages(wal, from, 0, wal.durable, {
    messages: 1e6,
    bytes: 1e9,
    partSize,
  });
  const bytes = await logBytes(wal);
  await wal.close();
  return {
    bytes,
    messages: out.map(({ placement, data }) => ({
      headers: headersOf(
        placement.kind === 'run' ? runHeaders(placement, epoch) : partHeaders(placement, epoch),
      ),
      data,
      placement,
    })),
  };
}

/** Every byte flipped: the same sizes, so the same LSNs and message cuts, other bytes. */
const flipped = (p: Uint8Array) => p.map((b) => b ^ 0xff);

describe('a follower sees a message again (LogCopy.retaken)', () => {
  it('a message taken before is accepted and changes nothing; another one at that sequence is WAL_REPLICA_MISMATCH', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 1, max: 3000 }), { minLength: 1, maxLength: 25 }),
        fc.integer({ min: 64, max: 2048 }),
        fc.array(fc.tuple(fc.nat(), fc.boolean()), { maxLength: 40 }),
        async (sizes, partSize, redeliveries) => {
          const payloads = sizes.map((s, i) => payload(s, i));
          const ours = await messagesOf(payloads, partSize);
          const theirs = await messagesOf(payloads.map(flipped), partSize);
          assert.equal(theirs.messages.length, ours.messages.length);
          const wal = await Wal.open(new MemoryStore());
          const copy = new LogCopy(wal, 's', 0, 0);
          let r = 0;
          for (const [i, m] of ours.messages.entries()) {
            await copy.take(i + 1, m.headers, m.data);
            // Deliveries again of messages 1..i+1, ours or another stream's.
            for (; r < redeliveries.length && redeliveries[r]![0] % 3 !== 0; r++) {
              const [pick, other] = redeliveries[r]!;
              const seq = (pick % (i + 1)) + 1;
              await wal.sync();
              const before = await logBytes(wal);
              const again = (other ? theirs : ours).messages[seq - 1]!;
              const checked = copy.retaken(seq, again.headers, again.data);
              if (other) {
                await assert.rejects(
                  checked,
                  (error: Error & { code?: string; sequence?: number }) => {
                    assert.equal(error.code, 'WAL_REPLICA_MISMATCH');
                    assert.equal(error.sequence, seq);
                    return true;
                  },
                );
              } else {
                await checked;
              }
              assert.deepEqual(await logBytes(wal), before, 'the log is unchanged');
              assert.equal(copy.seq, i + 1);
            }
            r++;
          }
          assert.equal(copy.unfinished, false);
          await wal.sync();
          assert.deepEqual(await logBytes(wal), ours.bytes);
          await wal.close();
        },
      ),
      { numRuns: 60 },
    );
  });

  it("deliver (restore): messages delivered again in any order are skipped; the log is the stream's", async () => {
    // restore() docs: a message the consumer delivers again is checked and skipped.
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 1, max: 3000 }), { minLength: 1, maxLength: 25 }),
        fc.integer({ min: 64, max: 2048 }),
        fc.array(fc.nat(), { maxLength: 30 }),
        async (sizes, partSize, again) => {
          const payloads = sizes.map((s, i) => payload(s, i));
          const ours = await messagesOf(payloads, partSize);
          const theirs = await messagesOf(payloads.map(flipped), partSize);
          const wal = await Wal.open(new MemoryStore());
          const copy = new LogCopy(wal, 's', 0, 0);
          // A consumer's deliveries: each message in order, some followed by
          // earlier ones again (a consumer created again further back).
          let a = 0;
          for (const [i, m] of ours.messages.entries()) {
            await copy.deliver(i + 1, m.headers, m.data);
            for (; a < again.length && again[a]! % 3 !== 0; a++) {
              const seq = (again[a]! % (i + 1)) + 1;
              const m = ours.messages[seq - 1]!;
              assert.equal(await copy.deliver(seq, m.headers, m.data), undefined);
              assert.equal(copy.seq, i + 1);
            }
            a++;
          }
          await wal.sync();
          assert.deepEqual(await logBytes(wal), ours.bytes);
          // Another stream's message at a sequence taken is refused.
          const seq = ((again[0] ?? 0) % ours.messages.length) + 1;
          const other = theirs.messages[seq - 1]!;
          await assert.rejects(copy.deliver(seq, other.headers, other.data), {
            code: 'WAL_REPLICA_MISMATCH',
          });
          await wal.close();
        },
      ),
      { numRuns: 40 },
    );
  });

  it('a seal again is accepted; a fence again must be one the log passed', async () => {
    const wal = await Wal.open(new MemoryStore());
    const { messages } = await messagesOf([payload(10, 1), payload(20, 2)], 30);
    const copy = new LogCopy(wal, 's', 0, 0);
    await copy.take(1, messages[0]!.headers, messages[0]!.data);
    const seal = headersOf(sealHeaders(1));
    await copy.take(2, seal, new Uint8Array(0));
    const fence = headersOf(fenceHeaders({ tail: wal.tail, epoch: 1 }));
    await copy.take(3, fence, new Uint8Array(0));
    await copy.retaken(2, seal, new Uint8Array(0));
    await copy.retaken(3, fence, new Uint8Array(0));
    for (const wrong of [
      { tail: wal.tail + 1, epoch: 1 },
      { tail: wal.tail, epoch: 2 },
    ]) {
      await assert.rejects(copy.retaken(3, headersOf(fenceHeaders(wrong)), new Uint8Array(0)), {
        code: 'WAL_REPLICA_MISMATCH',
      });
    }
    // A record message again past the log's tail was never taken.
    await assert.rejects(copy.retaken(1, messages[1]!.headers, messages[1]!.data), {
      code: 'WAL_REPLICA_MISMATCH',
    });
    // A damaged message is refused as such.
    await assert.rejects(copy.retaken(1, messages[0]!.headers, new Uint8Array(3)), {
      code: 'WAL_CORRUPTION',
    });
    await wal.close();
  });

  it('a part of a record a promotion voided, delivered again, is skipped', async () => {
    // Epoch 0 stores record 0 and the first part of record 1, then dies; a
    // promotion seals and fences at record 1's LSN, and epoch 1 writes
    // another record there.
    const old = await messagesOf([payload(10, 1), payload(300, 2)], 100);
    const now = await messagesOf([payload(10, 1), payload(20, 3)], 20, 1);
    const wal = await Wal.open(new MemoryStore());
    const copy = new LogCopy(wal, 's', 0, 0);
    const [first, voided] = old.messages;
    await copy.take(1, first!.headers, first!.data);
    await copy.take(2, voided!.headers, voided!.data);
    assert.equal(copy.unfinished, true);
    await copy.take(3, headersOf(sealHeaders(1)), new Uint8Array(0));
    // Between the seal and the fence, and after the new record took its LSN.
    await copy.retaken(2, voided!.headers, voided!.data);
    await copy.take(4, headersOf(fenceHeaders({ tail: wal.tail, epoch: 1 })), new Uint8Array(0));
    await copy.take(5, now.messages[1]!.headers, now.messages[1]!.data);
    await copy.retaken(2, voided!.headers, voided!.data);
    // Not voided: epoch 1's own record must match.
    const other = await messagesOf([payload(10, 1), payload(20, 4)], 20, 1);
    await assert.rejects(copy.retaken(5, other.messages[1]!.headers, other.messages[1]!.data), {
      code: 'WAL_REPLICA_MISMATCH',
    });
    await wal.sync();
    assert.deepEqual(await logBytes(wal), now.bytes);
    await wal.close();
  });

  it("a voided part delivered again while the next epoch's record at its LSN is being joined is skipped", async () => {
    // The voided record and epoch 1's first record both start at the
    // fence's tail; epoch 1's record comes in several parts.
    const old = await messagesOf([payload(10, 1), payload(300, 2)], 100);
    const now = await messagesOf([payload(10, 1), payload(200, 3)], 50, 1);
    const wal = await Wal.open(new MemoryStore());
    const copy = new LogCopy(wal, 's', 0, 0);
    const [first, voided] = old.messages;
    await copy.take(1, first!.headers, first!.data);
    await copy.take(2, voided!.headers, voided!.data);
    await copy.take(3, headersOf(sealHeaders(1)), new Uint8Array(0));
    await copy.take(4, headersOf(fenceHeaders({ tail: wal.tail, epoch: 1 })), new Uint8Array(0));
    await copy.take(5, now.messages[1]!.headers, now.messages[1]!.data);
    assert.equal(copy.unfinished, true);
    await copy.retaken(2, voided!.headers, voided!.data);
    assert.equal(copy.unfinished, true);
    for (const [i, m] of now.messages.slice(2).entries()) await copy.take(6 + i, m.headers, m.data);
    assert.equal(copy.unfinished, false);
    await wal.sync();
    assert.deepEqual(await logBytes(wal), now.bytes);
    await wal.close();
  });

  it('after a promotion, a seal, fence or voided part again is accepted only as taken, or where it can be; the log is unchanged', async () => {
    const empty = new Uint8Array(0);
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          a: fc.array(fc.integer({ min: 1, max: 400 }), { maxLength: 6 }),
          b: fc.array(fc.integer({ min: 1, max: 400 }), { maxLength: 6 }),
          voided: fc.integer({ min: 200, max: 900 }),
          partSize: fc.integer({ min: 64, max: 190 }),
          newPartSize: fc.integer({ min: 64, max: 500 }),
          kept: fc.nat(),
          cut: fc.nat(),
          restarted: fc.boolean(),
          lsns: fc.array(fc.nat(), { minLength: 1, maxLength: 6 }),
          epochs: fc.array(fc.integer({ min: 1, max: 3 }), { minLength: 1, maxLength: 3 }),
          seqs: fc.array(fc.nat(), { minLength: 1, maxLength: 4 }),
        }),
        async (t) => {
          // Epoch 0 stores records a and some parts of a record, then dies;
          // a promotion seals, fences at the voided record's LSN, and epoch 1
          // stores records b from there (the follower takes `cut` of them).
          const a = t.a.map((s, i) => payload(s, i));
          const b = t.b.map((s, i) => payload(s, 100 + i));
          const old = await messagesOf([...a, payload(t.voided, 99)], t.partSize);
          const from = old.messages.at(-1)!.placement.lsn;
          const now = await messagesOf([...a, ...b], t.newPartSize, 1, from);
          const first = old.messages.findIndex((m) => m.placement.lsn === from);
          const parts = old.messages.slice(
            first,
            first + 1 + (t.kept % (old.messages.length - first - 1)),
          );
          const cut = t.restarted ? now.messages.length : t.cut % (now.messages.length + 1);
          const seal = first + parts.length + 1;
          const stream = [
            ...old.messages.slice(0, first),
            ...parts,
            { headers: headersOf(sealHeaders(1)), data: empty },
            { headers: headersOf(fenceHeaders({ tail: from, epoch: 1 })), data: empty },
            ...now.messages.slice(0, cut),
          ];
          const wal = await Wal.open(new MemoryStore());
          let copy = new LogCopy(wal, 's', 0, 0);
          for (const [i, m] of stream.entries()) await copy.take(i + 1, m.headers, m.data);
          if (t.restarted) copy = new LogCopy(wal, 's', stream.length, 1, copy.last);
          await wal.sync();
          const bytes = await logBytes(wal);
          // Where a record starts in the log, and its tail.
          const starts = new Set([wal.tail]);
          for (const { placement } of [
            ...old.messages.slice(0, first),
            ...now.messages.slice(0, cut),
          ]) {
            if (placement.kind === 'part') starts.add(placement.lsn);
            else for (const r of placement.records) starts.add(r.lsn);
          }
          const check = async (
            seq: number,
            headers: Headers,
            data: Uint8Array,
            accepted: boolean,
          ) => {
            const checked = copy.retaken(seq, headers, data);
            if (accepted) await checked;
            else await assert.rejects(checked, { code: 'WAL_REPLICA_MISMATCH', sequence: seq });
            assert.equal(copy.seq, stream.length);
            await wal.sync();
            assert.deepEqual(await logBytes(wal), bytes, 'the log is unchanged');
          };
          // Every message again, as taken.
          for (const [i, m] of stream.entries()) await check(i + 1, m.headers, m.data, true);
          // A voided part again at another LSN: only where the voided record
          // started (the fence's tail), or for a restarted copy, which did
          // not see the fence, a record boundary of the log.
          for (const lsn of t.lsns.map((n) => n % (wal.tail + 40))) {
            const [pick] = t.seqs;
            const p = parts[pick! % parts.length]!;
            if (p.placement.kind !== 'part') throw new Error('a part expected');
            const moved = headersOf(partHeaders({ ...p.placement, lsn }, 0));
            const seq = first + 1 + (pick! % parts.length);
            await check(seq, moved, p.data, t.restarted ? starts.has(lsn) : lsn === from);
          }
          // A seal or fence again: the one taken at that sequence.
          for (const [i, epoch] of t.epochs.entries()) {
            const tail = t.lsns[i % t.lsns.length]! % (wal.tail + 40);
            const fence = headersOf(fenceHeaders({ tail, epoch }));
            await check(
              seal + 1,
              fence,
              empty,
              t.restarted ? epoch <= 1 && starts.has(tail) : epoch === 1 && tail === from,
            );
            await check(seal, headersOf(sealHeaders(epoch)), empty, t.restarted || epoch === 1);
          }
          // A seal or fence where a record was taken, a record where one was.
          const fence = headersOf(fenceHeaders({ tail: from, epoch: 1 }));
          for (const n of t.seqs) {
            const seq = (n % stream.length) + 1;
            await check(seq, headersOf(sealHeaders(1)), empty, t.restarted || seq === seal);
            await check(seq, fence, empty, t.restarted || seq === seal + 1);
          }
          // The first message is a record the log holds (or a voided part at
          // the fence's tail): a restarted copy cannot tell.
          for (const seq of [seal, seal + 1]) {
            await check(seq, stream[0]!.headers, stream[0]!.data, t.restarted);
          }
          await wal.close();
        },
      ),
      { numRuns: 80 },
    );
  });
});

describe('a server acknowledging a publish at another sequence', () => {
  /** A stream handle whose server acknowledges every publish at sequence `seq`. */
  const acking = (seq: number) =>
    ({
      stream: 's',
      subject: 'wal.s',
      js: { publish: async () => ({ stream: 's', seq, duplicate: true }) },
    }) as unknown as StreamHandle;

  it('a message: the run acknowledged so far ends with WAL_REPLICA_MISMATCH at the expected sequence', async () => {
    const { messages } = await messagesOf([payload(10, 1)], 1000);
    const outgoing = messages.map(({ placement, data }) => ({ placement, data }));
    const { acks, failure } = await publishMessages(acking(3), outgoing, 6, 1000);
    assert.equal(acks.length, 0);
    assert.ok(isWalError(failure, 'WAL_REPLICA_MISMATCH'), String(failure));
    assert.equal((failure as ReplicaMismatchError).sequence, 7);
  });

  it('a fence: WAL_REPLICA_MISMATCH at the expected sequence', async () => {
    await assert.rejects(publishFence(acking(3), { tail: 40, epoch: 1 }, 6, 1000), {
      code: 'WAL_REPLICA_MISMATCH',
      sequence: 7,
      offset: 40,
    });
  });
});
