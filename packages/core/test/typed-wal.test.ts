// TypedWal (codec.ts): the typed view of a log is complete — append and
// appendBatch, waitFor, sync, close, read, iterate and iterateBatches, and a
// typed replay at open — and every codec failure is a typed WAL_CODEC error.
import assert from 'node:assert/strict';
import { CodecError, isWalError } from '@wal/errors';
import { MemoryStore } from '@wal/store';
import { CrashFs } from '@wal/store/testing';
import fc from 'fast-check';
import { type Codec, TypedWal, type TypedWalOptions, Wal } from '../src/index.js';
import { durableOnly } from './helpers.js';

const DIR = '/wal';
const SEGMENT = 4096;

interface Entry {
  readonly key: string;
  readonly value: number;
}

const json: Codec<Entry> = {
  encode: (entry) => new TextEncoder().encode(JSON.stringify(entry)),
  decode: (payload) => JSON.parse(new TextDecoder().decode(payload)) as Entry,
};

const entry = (i: number): Entry => ({ key: `k${i}`, value: i * 7 });

const openTyped = (fs: CrashFs, options: TypedWalOptions<Entry> = {}) =>
  TypedWal.open(DIR, json, { fs, segmentSize: SEGMENT, ...options });

/** Asserts a WAL_CODEC error of `operation` (at `offset`, with `cause`); returns true for assert.rejects. */
function isCodec(operation: 'encode' | 'decode', offset?: number, cause?: unknown) {
  return (error: unknown): boolean => {
    assert.ok(isWalError(error, 'WAL_CODEC'), String(error));
    assert.ok(error instanceof CodecError);
    assert.equal(error.operation, operation);
    assert.equal(error.offset, offset);
    if (cause !== undefined) assert.equal(error.cause, cause);
    return true;
  };
}

describe('TypedWal', () => {
  it('round-trips values through append, read and iterate', async () => {
    const wal = await Wal.open(new MemoryStore());
    const typed = new TypedWal(wal, json);
    const entries: Entry[] = Array.from({ length: 10 }, (_, i) => ({
      key: `k${i}`,
      value: i * i,
    }));
    const lsns = entries.map((entry) => typed.append(entry));
    lsns.push(await typed.append({ key: 'last', value: -1 }, { wait: 'durable' }));
    assert.deepEqual(await typed.read(lsns[3]!), entries[3]);
    const seen: Array<{ lsn: number; value: Entry }> = [];
    for await (const record of typed.iterate()) seen.push(record);
    assert.deepEqual(
      seen.map((r) => r.lsn),
      lsns,
    );
    assert.deepEqual(
      seen.map((r) => r.value),
      [...entries, { key: 'last', value: -1 }],
    );
    const fromMiddle: Entry[] = [];
    for await (const record of typed.iterate(lsns[8])) fromMiddle.push(record.value);
    assert.equal(fromMiddle.length, 3);
    await wal.close();
  });

  it('rejects a bad codec, and an encode failure of a waiting append', async () => {
    const wal = await Wal.open(new MemoryStore());
    assert.throws(() => new TypedWal(wal, {} as Codec<Entry>), { code: 'ERR_INVALID_ARG_TYPE' });
    assert.throws(() => new TypedWal(wal, null as unknown as Codec<Entry>), {
      code: 'ERR_INVALID_ARG_TYPE',
    });
    const failing = new TypedWal<Entry>(wal, {
      encode: () => {
        throw new Error('cannot encode');
      },
      decode: json.decode,
    });
    assert.throws(() => failing.append({ key: 'a', value: 1 }), /cannot encode/);
    await assert.rejects(
      failing.append({ key: 'a', value: 1 }, { wait: 'written' }),
      /cannot encode/,
    );
    assert.equal(wal.tail, 0);
    await wal.close();
  });
  it('sync, waitFor and close act on the log: synced values survive a power loss', async () => {
    const fs = new CrashFs();
    const typed = await openTyped(fs);
    const lsns = Array.from({ length: 20 }, (_, i) => typed.append(entry(i)));
    await typed.waitFor(lsns[4]!, 'written');
    assert.ok(typed.wal.written > lsns[4]!);
    await typed.waitFor(lsns[9]!, 'durable');
    assert.ok(typed.wal.durable > lsns[9]!);
    await typed.sync();
    assert.equal(typed.wal.durable, typed.wal.tail);
    // Appended after the last sync, never made durable: lost by a power loss.
    typed.append(entry(99));
    await typed.waitFor(typed.wal.tail - 1, 'written');
    const survivor = durableOnly(fs);
    const seen: Entry[] = [];
    const reopened = await openTyped(survivor, {
      replay: (records) => {
        for (const record of records) seen.push(record.value);
      },
    });
    assert.deepEqual(
      seen,
      Array.from({ length: 20 }, (_, i) => entry(i)),
    );
    await reopened.close();
    await typed.close();
    assert.equal(typed.wal.closed, true);
    assert.throws(() => typed.append(entry(1)), { code: 'WAL_CLOSED' });
    await assert.rejects(typed.sync(), { code: 'WAL_CLOSED' });
    // close released the lock: the log opens again, holding every value.
    const again = await openTyped(fs);
    assert.equal(again.recovery.records, 21);
    await again.close();
  });

  it('replays the recovered values at open, in order, with or without reused buffers (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record(
            { key: fc.string({ maxLength: 300 }), value: fc.integer() },
            { noNullPrototype: true },
          ),
          {
            maxLength: 60,
          },
        ),
        fc.boolean(),
        async (entries, reuse) => {
          const fs = new CrashFs();
          const typed = await openTyped(fs);
          const lsns = typed.appendBatch(entries);
          await typed.close();
          const seen: Array<{ lsn: number; value: Entry }> = [];
          const reopened = await openTyped(fs, {
            replayReusesBuffers: reuse,
            replay: (records) => {
              seen.push(...records);
            },
          });
          assert.deepEqual(
            seen.map((r) => r.lsn),
            lsns,
          );
          assert.deepEqual(
            seen.map((r) => r.value),
            entries,
          );
          const batches: Entry[] = [];
          for await (const batch of reopened.iterateBatches(undefined, { batchBytes: 256 })) {
            batches.push(...batch.map((r) => r.value));
          }
          assert.deepEqual(batches, entries);
          await reopened.close();
        },
      ),
      { numRuns: 40 },
    );
  });

  it('a value that does not decode is WAL_CODEC naming its LSN, in replay (no open), read and iterate', async () => {
    const fs = new CrashFs();
    const typed = await openTyped(fs);
    const good = typed.append(entry(1));
    const bad = typed.wal.append(new TextEncoder().encode('{not json'));
    typed.append(entry(2));
    await typed.close();

    let cause: unknown;
    const strict: Codec<Entry> = {
      encode: json.encode,
      decode: (payload, lsn) => {
        try {
          return json.decode(payload, lsn);
        } catch (error) {
          cause = error;
          throw error;
        }
      },
    };
    const delivered: number[] = [];
    await assert.rejects(
      TypedWal.open(DIR, strict, {
        fs,
        segmentSize: SEGMENT,
        replay: (records) => {
          delivered.push(...records.map((r) => r.lsn));
        },
      }),
      (error: unknown) => isCodec('decode', bad, cause)(error),
    );
    assert.ok(cause instanceof SyntaxError);
    assert.deepEqual(delivered, [], 'a batch that does not decode is not delivered');
    // The refused open released the log: it opens, untyped records intact.
    const log = await openTyped(fs);
    assert.deepEqual(await log.read(good), entry(1));
    await assert.rejects(log.read(bad), isCodec('decode', bad));
    const seen: number[] = [];
    await assert.rejects(
      async () => {
        for await (const record of log.iterate()) seen.push(record.lsn);
      },
      isCodec('decode', bad),
    );
    assert.deepEqual(seen, [good]);
    await log.close();
  });

  it('iterate stops at a truncation made between two steps, as Wal.iterate, even before records it read', async () => {
    // Steps after the first of each iterator, once a truncation was made
    // after that first step: the LSNs yielded, then the error code if any.
    const steps = async (
      iterator: AsyncIterator<{ readonly lsn: number }>,
    ): Promise<Array<number | string>> => {
      const out: Array<number | string> = [];
      try {
        for (;;) {
          const step = await iterator.next();
          if (step.done) return out;
          out.push(step.value.lsn);
        }
      } catch (error) {
        out.push((error as { code?: string }).code ?? String(error));
        return out;
      }
    };
    for (const cut of ['truncateAfter', 'truncateBefore'] as const) {
      const seen: Record<string, Array<number | string>> = {};
      for (const which of ['Wal', 'TypedWal'] as const) {
        const typed = await TypedWal.open(new MemoryStore(), json);
        const lsns: number[] = [];
        for (let i = 0; i < 5; i++) lsns.push(await typed.append(entry(i), { wait: 'durable' }));
        const iterator = which === 'Wal' ? typed.wal.iterate() : typed.iterate();
        // The first step reads all five records (one store read).
        const first = await iterator.next();
        assert.equal(first.value?.lsn, lsns[0]);
        if (cut === 'truncateAfter') await typed.wal.truncateAfter(lsns[1]!);
        else await typed.wal.truncateBefore(lsns[4]!);
        seen[which] = await steps(iterator);
        await typed.close();
        if (which === 'Wal') {
          assert.deepEqual(
            seen[which],
            cut === 'truncateAfter' ? [lsns[1]] : ['WAL_TRUNCATED'],
            `Wal.iterate after ${cut}`,
          );
        }
      }
      assert.deepEqual(seen.TypedWal, seen.Wal, `TypedWal.iterate after ${cut}`);
    }
  });

  it('a value that does not encode is WAL_CODEC and appends nothing (batch: none of them)', async () => {
    const thrown = new Error('cannot encode');
    const picky: Codec<Entry> = {
      encode: (value) => {
        if (value.value < 0) throw thrown;
        if (value.value === 0) return 'not bytes' as unknown as Uint8Array;
        return json.encode(value);
      },
      decode: json.decode,
    };
    const typed = new TypedWal(await Wal.open(new MemoryStore()), picky);
    assert.throws(
      () => typed.append({ key: 'a', value: -1 }),
      isCodec('encode', undefined, thrown),
    );
    await assert.rejects(
      typed.append({ key: 'a', value: -1 }, { wait: 'written' }),
      isCodec('encode', undefined, thrown),
    );
    assert.throws(() => typed.append({ key: 'a', value: 0 }), isCodec('encode'));
    assert.throws(() => typed.appendBatch([entry(1), { key: 'b', value: -5 }]), isCodec('encode'));
    await assert.rejects(
      typed.appendBatch([entry(1), { key: 'b', value: -5 }], { wait: 'durable' }),
      isCodec('encode'),
    );
    assert.throws(() => typed.appendBatch('x' as unknown as Entry[]), {
      code: 'ERR_INVALID_ARG_TYPE',
    });
    assert.equal(typed.wal.tail, 0, 'nothing was appended');
    const lsns = await typed.appendBatch([entry(1), entry(2)], { wait: 'durable' });
    assert.equal(lsns.length, 2);
    assert.ok(typed.wal.durable > lsns[1]!);
    await typed.close();
  });

  it('open refuses a bad codec or replay before opening anything', async () => {
    const fs = new CrashFs();
    const before = fs.snapshot();
    await assert.rejects(TypedWal.open(DIR, {} as Codec<Entry>, { fs }), {
      code: 'ERR_INVALID_ARG_TYPE',
    });
    await assert.rejects(
      TypedWal.open(DIR, json, { fs, replay: 5 } as unknown as TypedWalOptions<Entry>),
      { code: 'ERR_INVALID_ARG_TYPE' },
    );
    await assert.rejects(TypedWal.open(DIR, json, null as unknown as TypedWalOptions<Entry>), {
      code: 'ERR_INVALID_ARG_TYPE',
    });
    assert.deepEqual(fs.snapshot(), before, 'nothing was created');
    const typed = await TypedWal.open(new MemoryStore(), json);
    assert.equal(typed.recovery.records, 0);
    await typed.close();
  });
});
