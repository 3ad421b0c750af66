import assert from 'node:assert/strict';
import { Wal } from '@wal/core';
import { MemoryStore } from '@wal/store';
import fc from 'fast-check';
import { collectMessages, type Outgoing } from '../src/batch.js';
import { LogCopy } from '../src/copy.js';
import { fenceHeaders, partHeaders, runHeaders, sealHeaders } from '../src/message.js';
import { logBytes, payload } from './fixture.js';

type Headers = { get(name: string): string };

function headersOf(pairs: [string, string][]): Headers {
  const map = new Map(pairs);
  return { get: (name: string) => map.get(name) ?? '' };
}

/** The stream messages (headers and data) of a log holding `payloads`, cut at `partSize`. */
async function messagesOf(payloads: Uint8Array[], partSize: number, epoch = 0) {
  const wal = await Wal.open(new MemoryStore());
  wal.appendBatch(payloads);
  await wal.sync();
  const out: Outgoing[] = await collectMessages(wal, 0, 0, wal.durable, {
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
});
