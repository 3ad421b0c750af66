/** The store's calls one by one: reads, writes, scans, commit, visibility, replay, errors. */
import assert from 'node:assert/strict';
import { Wal } from '@wal/core';
import { ConflictError, isArgumentError } from '@wal/errors';
import { MemoryStore } from '@wal/store';
import fc from 'fast-check';
import { type Isolation, type Transaction, TxnStore } from '../src/index.js';
import { commitSize, decodeCommit, encodeCommit } from '../src/record.js';
import {
  entries,
  GatedStore,
  isCode,
  LEVELS,
  memoryStore,
  temporaryDirectory,
  text,
} from './helpers.js';

const bytes = (...values: number[]) => new Uint8Array(values);

describe('TxnStore', () => {
  let store: TxnStore;
  beforeEach(async () => {
    store = await memoryStore();
  });
  afterEach(async () => {
    await store.close();
  });

  describe('reads and writes', () => {
    it('reads its own writes, hides them from others until commit', async () => {
      const t1 = store.begin();
      const t2 = store.begin();
      t1.put('a', '1');
      assert.equal(text(t1.get('a')), '1');
      assert.equal(t2.get('a'), undefined);
      t1.delete('a');
      assert.equal(t1.get('a'), undefined);
      t1.put('a', '2');
      await t1.commit();
      assert.equal(t2.get('a'), undefined, 'a snapshot does not move');
      const t3 = store.begin();
      assert.equal(text(t3.get('a')), '2');
      t3.delete('a');
      await t3.commit();
      assert.equal(store.begin().get('a'), undefined);
      t2.abort();
    });

    it('takes keys and values as bytes or UTF-8 text, and returns copies', async () => {
      const key = bytes(0xff, 0x00, 0x80);
      const value = bytes(1, 2, 3);
      await store.run((tx) => {
        tx.put(key, value);
        tx.put('é', 'ü');
      });
      value[0] = 9;
      key[0] = 0;
      const tx = store.begin();
      const got = tx.get(bytes(0xff, 0x00, 0x80))!;
      assert.deepEqual(got, bytes(1, 2, 3));
      got[0] = 7;
      assert.deepEqual(tx.get(bytes(0xff, 0x00, 0x80)), bytes(1, 2, 3));
      assert.deepEqual(tx.get(bytes(0xc3, 0xa9)), bytes(0xc3, 0xbc));
      assert.equal(tx.get(''), undefined);
      tx.put('', '');
      assert.deepEqual(tx.get(''), bytes());
      tx.abort();
    });

    it('rejects bad keys, values and options with argument errors', () => {
      const tx = store.begin();
      const bad: Array<() => unknown> = [
        () => tx.get(1 as never),
        () => tx.put('a', null as never),
        () => tx.put([1] as never, 'b'),
        () => tx.delete({} as never),
        () => tx.scan(null as never),
        () => tx.scan({ from: 'a' } as never),
        () => tx.scan({ gt: 'a', gte: 'a' }),
        () => tx.scan({ lt: 'a', lte: 'a' }),
        () => tx.scan({ limit: -1 }),
        () => tx.scan({ limit: 1.5 }),
        () => tx.scan({ reverse: 'yes' as never }),
        () => tx.scan({ gt: 5 as never }),
        () => store.begin({ isolation: 'read committed' as never }),
        () => store.begin(null as never),
      ];
      for (const call of bad) assert.throws(call, (e) => isArgumentError(e), String(call));
      tx.abort();
    });
  });

  describe('scan', () => {
    beforeEach(async () => {
      await store.run((tx) => {
        for (const k of ['a', 'b', 'c', 'd', 'e']) tx.put(k, k.toUpperCase());
      });
    });

    it('honours gt, gte, lt, lte, limit and reverse, in bytewise order', () => {
      const tx = store.begin();
      const keys = (options = {}) => entries(tx, options).map(([k]) => k);
      assert.deepEqual(keys(), ['a', 'b', 'c', 'd', 'e']);
      assert.deepEqual(keys({ gt: 'a', lt: 'e' }), ['b', 'c', 'd']);
      assert.deepEqual(keys({ gte: 'b', lte: 'd' }), ['b', 'c', 'd']);
      assert.deepEqual(keys({ gte: 'bb' }), ['c', 'd', 'e']);
      assert.deepEqual(keys({ lt: 'c', reverse: true }), ['b', 'a']);
      assert.deepEqual(keys({ limit: 2 }), ['a', 'b']);
      assert.deepEqual(keys({ limit: 2, reverse: true }), ['e', 'd']);
      assert.deepEqual(keys({ limit: 0 }), []);
      assert.deepEqual(keys({ gt: 'e' }), []);
      assert.deepEqual(entries(tx, { gte: 'c', limit: 1 }), [['c', 'C']]);
      tx.abort();
    });

    it('merges the transaction’s own puts and deletes', () => {
      const tx = store.begin();
      tx.put('bb', 'own');
      tx.delete('c');
      tx.put('d', 'new');
      tx.put('z', 'Z');
      tx.delete('nothing');
      assert.deepEqual(entries(tx), [
        ['a', 'A'],
        ['b', 'B'],
        ['bb', 'own'],
        ['d', 'new'],
        ['e', 'E'],
        ['z', 'Z'],
      ]);
      assert.deepEqual(
        entries(tx, { reverse: true, limit: 3 }).map(([k]) => k),
        ['z', 'e', 'd'],
      );
      assert.deepEqual(
        entries(tx, { gt: 'a', lt: 'e', limit: 2 }).map(([k]) => k),
        ['b', 'bb'],
      );
      tx.delete('a');
      tx.delete('b');
      tx.delete('bb');
      assert.deepEqual(entries(tx, { limit: 1 }), [['d', 'new']]);
      tx.abort();
    });

    it('serializable: a commit into a scanned range conflicts; past a limited scan’s last key it does not', async () => {
      const scanned = store.begin();
      scanned.scan({ gte: 'b', limit: 2 }); // reads b, c: the range [b, c]
      scanned.put('x', '1');
      const beyond = store.begin();
      beyond.scan({ gte: 'b', limit: 2 });
      beyond.put('y', '1');
      await store.run((tx) => tx.put('cc', 'new')); // past c: outside [b, c]
      await beyond.commit();
      await store.run((tx) => tx.put('bb', 'new')); // inside [b, c]
      await assert.rejects(scanned.commit(), (e) => {
        assert.ok(e instanceof ConflictError);
        assert.equal(e.access, 'scan');
        assert.equal(text(e.key), 'bb');
        return true;
      });
      assert.equal(scanned.status, 'aborted');
    });

    it('serializable: a delete inside a scanned range conflicts; snapshot ignores ranges', async () => {
      for (const isolation of LEVELS) {
        const tx = store.begin({ isolation });
        tx.scan({ gt: 'a', lt: 'e' });
        tx.put('other', isolation);
        await store.run((t) => t.delete('c'));
        await store.run((t) => t.put('c', 'C'));
        if (isolation === 'serializable') await assert.rejects(tx.commit(), isCode('WAL_CONFLICT'));
        else await tx.commit();
      }
    });
  });

  describe('conflicts', () => {
    it('serializable: a read key changed since the snapshot conflicts, with the key and access', async () => {
      const tx = store.begin();
      tx.get('k');
      tx.put('other', 'x');
      await store.run((t) => t.put('k', 'v'));
      await assert.rejects(tx.commit(), (e) => {
        assert.ok(e instanceof ConflictError);
        assert.equal(e.code, 'WAL_CONFLICT');
        assert.equal(e.access, 'read');
        assert.equal(text(e.key), 'k');
        return true;
      });
      assert.equal(store.begin().get('other'), undefined, 'nothing of it applied');
    });

    it('both levels: a written key changed since the snapshot conflicts (first committer wins)', async () => {
      for (const isolation of LEVELS) {
        const tx = store.begin({ isolation });
        tx.put('w', isolation);
        await store.run((t) => t.delete('w'));
        await assert.rejects(
          tx.commit(),
          (e) => e instanceof ConflictError && e.access === 'write',
        );
      }
    });

    it('a key read, then dropped from the index (a pruned delete) and written again, still conflicts', async () => {
      // The transactions keep the key's version chain from their read; pruning
      // empties it, and the next write makes a new one, which installing must
      // go to and validation must find.
      const gated = new GatedStore();
      const s = await TxnStore.open(gated);
      try {
        await s.run((t) => t.put('k', '1'));
        gated.hold();
        const deleter = s.begin();
        deleter.delete('k');
        const deleted = deleter.commit();
        const [first, ...writers] = ['serializable', ...LEVELS].map((isolation) =>
          s.begin({ isolation: isolation as Isolation }),
        );
        for (const tx of [first!, ...writers]) {
          assert.equal(tx.get('k'), undefined, 'the pending delete');
          tx.put('k', tx.isolation);
        }
        const reader = s.begin();
        assert.equal(reader.get('k'), undefined);
        reader.put('other', 'x');
        gated.release();
        await deleted;
        assert.equal(s.stats().keys, 0, 'the deleted key left the index');
        await first!.commit();
        assert.equal(text(s.begin().get('k')), 'serializable');
        for (const tx of writers)
          await assert.rejects(
            tx.commit(),
            (e) => e instanceof ConflictError && e.access === 'write',
          );
        await assert.rejects(
          reader.commit(),
          (e) => e instanceof ConflictError && e.access === 'read',
        );
        assert.equal(text(s.begin().get('k')), 'serializable');
        assert.equal(s.begin().get('other'), undefined);
      } finally {
        await s.close();
      }
    });

    it('snapshot: reads alone never conflict', async () => {
      const tx = store.begin({ isolation: 'snapshot' });
      tx.get('k');
      tx.put('other', 'x');
      await store.run((t) => t.put('k', 'v'));
      await tx.commit();
      assert.equal(text(store.begin().get('other')), 'x');
    });

    it('a read-only transaction commits without a record', async () => {
      const before = store.log.tail;
      const tx = store.begin();
      tx.get('a');
      await store.run((t) => t.put('a', '1'));
      await tx.commit();
      assert.equal(tx.status, 'committed');
      const tail = store.log.tail;
      assert.ok(tail > before); // the run's record
      await store.run((t) => t.get('a'));
      assert.equal(store.log.tail, tail);
    });
  });

  describe('durability and visibility', () => {
    /** Records how each promise settles, by name, in `into`: `name`, or `name: code or message`. */
    const settle = (into: string[], name: string, promise: Promise<unknown>) =>
      promise.then(
        () => into.push(name),
        (e: { code?: string; message: string }) => into.push(`${name}: ${e.code ?? e.message}`),
      );
    const turn = () => new Promise((resolve) => setTimeout(resolve, 10));

    /** What {@link readPending} starts, in sorted order. */
    const DEPENDENTS = [
      'read-only serializable',
      'read-only snapshot',
      'run',
      'run aborts',
      'run throws',
      'scan',
      'writer',
    ];

    /**
     * Starts on `s` every kind of transaction that reads the pending value
     * `k` = `1` (checking it reads it), recording in `settled` how each
     * settles; returns their promises.
     */
    function readPending(s: TxnStore, settled: string[]): Array<Promise<unknown>> {
      const waits: Array<Promise<unknown>> = [];
      for (const isolation of LEVELS) {
        const reader = s.begin({ isolation });
        assert.equal(text(reader.get('k')), '1', isolation);
        waits.push(settle(settled, `read-only ${isolation}`, reader.commit()));
      }
      const scanner = s.begin();
      assert.deepEqual(entries(scanner, { gte: 'k', lte: 'k' }), [['k', '1']]);
      waits.push(settle(settled, 'scan', scanner.commit()));
      waits.push(
        settle(
          settled,
          'run',
          s.run((tx) => text(tx.get('k'))),
        ),
      );
      waits.push(
        settle(
          settled,
          'run throws',
          s.run((tx) => {
            throw new Error(`read ${text(tx.get('k'))}`);
          }),
        ),
      );
      waits.push(
        settle(
          settled,
          'run aborts',
          s.run((tx) => {
            const value = text(tx.get('k'));
            tx.abort();
            return value;
          }),
        ),
      );
      // A read-modify-write on top of it commits (no conflict), acknowledged after it.
      const writer = s.begin();
      writer.put('k', `${text(writer.get('k'))}+1`);
      waits.push(settle(settled, 'writer', writer.commit()));
      return waits;
    }

    /**
     * A store over a `GatedStore` holding `k` = `0` and `other` = `x`
     * (durable), a transaction `older` begun then, and, with syncs held
     * back, transaction `t1` that made `change` and is committing (pending).
     */
    async function pending(change: (tx: Transaction) => void) {
      const gated = new GatedStore();
      const s = await TxnStore.open(gated);
      await s.run((tx) => {
        tx.put('k', '0');
        tx.put('other', 'x');
      });
      const older = s.begin();
      gated.hold();
      const t1 = s.begin();
      change(t1);
      const settled: string[] = [];
      const waits: Array<Promise<unknown>> = [settle(settled, 't1', t1.commit())];
      const close = async () => {
        gated.release();
        await s.close();
      };
      return { gated, s, older, t1, settled, waits, close };
    }

    it('a pending commit is visible at once; what is read of it reaches no one before it is durable', async () => {
      const { gated, s, older, settled, waits, close } = await pending((tx) => tx.put('k', '1'));
      try {
        await turn();
        assert.deepEqual(settled, [], 'not acknowledged before the sync');
        assert.deepEqual([s.stats().committed, s.stats().pending], [1, 1]);
        // Visible to every transaction that begins now; what any of them read
        // of it waits for it.
        waits.push(...readPending(s, settled));
        // A transaction that read only durable commits is not held back.
        const independent = s.begin();
        assert.equal(text(independent.get('other')), 'x');
        assert.equal(independent.get('absent'), undefined);
        await independent.commit();
        // One whose snapshot is older than the pending commit still conflicts with it.
        older.put('k', '2');
        await assert.rejects(older.commit(), isCode('WAL_CONFLICT'));
        await turn();
        assert.deepEqual(
          settled,
          [],
          'nothing that read the pending commit settled before it is durable',
        );
        assert.equal(s.stats().pending, 2);
        gated.release();
        await Promise.all(waits);
        assert.deepEqual(settled.slice(0, 1), ['t1']);
        assert.deepEqual(
          settled.slice(1).sort(),
          DEPENDENTS.map((name) => (name === 'run throws' ? 'run throws: read 1' : name)),
        );
        assert.equal(text(s.begin().get('k')), '1+1');
        assert.deepEqual([s.stats().committed, s.stats().pending], [3, 0]);
      } finally {
        await close();
      }
    });

    it('a pending delete is a dependency too', async () => {
      const { gated, s, older, settled, waits, close } = await pending((tx) => tx.delete('k'));
      try {
        // No older snapshot keeps the deleted key's versions: the pending
        // delete itself must stay, for its readers to depend on it.
        older.abort();
        const getter = s.begin();
        assert.equal(getter.get('k'), undefined);
        waits.push(settle(settled, 'get', getter.commit()));
        const scanner = s.begin();
        assert.deepEqual(scanner.scan({ gte: 'k', lte: 'k' }), []);
        waits.push(settle(settled, 'scan', scanner.commit()));
        await turn();
        assert.deepEqual(settled, []);
        gated.release();
        await Promise.all(waits);
        assert.deepEqual(settled, ['t1', 'get', 'scan']);
      } finally {
        await close();
      }
    });

    it('a failed sync of a pending commit fails every commit that read it, acknowledging none', async () => {
      const { gated, s, t1, settled, waits, close } = await pending((tx) => tx.put('k', '1'));
      try {
        waits.push(...readPending(s, settled));
        await turn();
        gated.failSyncs = true;
        gated.release();
        await Promise.all(waits);
        assert.deepEqual(
          settled.sort(),
          [...DEPENDENTS, 't1'].map((name) => `${name}: WAL_FAILED`).sort(),
        );
        assert.equal(t1.status, 'aborted');
        assert.equal(s.stats().committed, 1);
        assert.throws(() => s.begin(), isCode('WAL_FAILED'));
      } finally {
        await close();
      }
    });

    it('concurrent commits share syncs (group commit)', async () => {
      const counting = new GatedStore();
      const s = await TxnStore.open(counting);
      try {
        const before = counting.syncs;
        await Promise.all(
          Array.from({ length: 64 }, (_, i) =>
            s.run((tx) => {
              tx.put(`k${i}`, String(i));
            }),
          ),
        );
        const syncs = counting.syncs - before;
        assert.ok(syncs >= 1 && syncs <= 4, `${syncs} syncs for 64 commits`);
        assert.equal(s.stats().committed, 64);
      } finally {
        await s.close();
      }
    });

    it('commits wait for the log to drain when its staging memory is full (back-pressure)', async () => {
      const s = await TxnStore.open(new MemoryStore(), { log: { stagingLimit: 64 * 1024 } });
      try {
        const big = 'x'.repeat(10_000);
        await Promise.all(
          Array.from({ length: 30 }, (_, i) =>
            s.run((tx) => {
              tx.put(`k${String(i).padStart(2, '0')}`, big);
            }),
          ),
        );
        assert.equal(s.stats().committed, 30);
        assert.equal((await s.run((tx) => tx.scan())).length, 30);
      } finally {
        await s.close();
      }
    });

    it('a failed sync fails the commit, hides it, and latches the store', async () => {
      const failing = new GatedStore();
      const s = await TxnStore.open(failing);
      await s.run((tx) => tx.put('a', 'kept'));
      const reader = s.begin();
      failing.failSyncs = true;
      const tx = s.begin();
      tx.put('a', 'lost');
      await assert.rejects(tx.commit(), isCode('WAL_FAILED'));
      assert.equal(tx.status, 'aborted');
      assert.throws(() => s.begin(), isCode('WAL_FAILED'));
      assert.throws(() => reader.get('a'), isCode('WAL_FAILED'));
      assert.equal(s.stats().committed, 1);
      await s.close();
    });

    it('a commit larger than a log record is refused whole', async () => {
      const s = await TxnStore.open(new MemoryStore(), { log: { maxRecordSize: 64 } });
      try {
        const tx = s.begin();
        tx.put('big', 'x'.repeat(100));
        await assert.rejects(tx.commit(), isCode('WAL_RECORD_TOO_LARGE'));
        assert.equal(tx.status, 'aborted');
        assert.equal(s.begin().get('big'), undefined);
        assert.equal(s.stats().activeTransactions, 1);
      } finally {
        await s.close();
      }
    });
  });

  describe('replay at open', () => {
    const directory = temporaryDirectory('wal-txn-');

    it('reopening replays every commit: puts, deletes, and the sequence goes on', async () => {
      let s = await TxnStore.open(directory());
      await s.run((tx) => {
        tx.put('a', '1');
        tx.put('b', '2');
        tx.put('c', '3');
      });
      await s.run((tx) => {
        tx.delete('b');
        tx.put('a', '10');
      });
      await s.close();
      s = await TxnStore.open(directory());
      assert.deepEqual(await s.run((tx) => entries(tx)), [
        ['a', '10'],
        ['c', '3'],
      ]);
      assert.equal(s.stats().committed, 2);
      await s.run((tx) => tx.put('b', 'back'));
      await s.close();
      s = await TxnStore.open(directory(), { log: {} });
      assert.deepEqual(await s.run((tx) => entries(tx)), [
        ['a', '10'],
        ['b', 'back'],
        ['c', '3'],
      ]);
      assert.deepEqual(s.stats(), {
        keys: 2 + 1,
        versions: 3,
        activeTransactions: 0,
        committed: 3,
        pending: 0,
      });
      await s.close();
    });

    it('a commit record lists each written key once, in ascending bytewise order (TXN-FORMAT.md)', async () => {
      // Puts and deletes in any order, some keys twice; few keys and more than 16.
      const key = fc.uint8Array({ maxLength: 3 });
      const write = fc.record({ key, value: fc.option(fc.uint8Array({ maxLength: 2 })) });
      await fc.assert(
        fc.asyncProperty(
          fc.array(write, { minLength: 1, maxLength: 40, size: 'max' }),
          async (writes) => {
            const s = await memoryStore();
            await s.run((tx) => {
              for (const { key, value } of writes) {
                if (value === null) tx.delete(key);
                else tx.put(key, value);
              }
            });
            const records = [];
            for await (const record of s.log.iterate()) records.push(record);
            await s.close();
            assert.equal(records.length, 1);
            // Latin-1 strings: one code unit per byte, so string order is bytewise order.
            const latin1 = (b: Uint8Array) => Buffer.from(b).toString('latin1');
            const logged = decodeCommit(records[0]!.payload, records[0]!.lsn).writes;
            const expected = [...new Set(writes.map((w) => latin1(w.key)))].sort();
            assert.deepEqual(
              logged.map((w) => latin1(w.key)),
              expected,
            );
          },
        ),
        { numRuns: 200 },
      );
    });

    it('a record that is not a commit, or out of sequence, is WAL_CORRUPTION with its LSN', async () => {
      const wal = await Wal.open(directory());
      const writes = [{ key: bytes(97), value: bytes(49) }];
      await wal.append(encodeCommit(5, writes, commitSize(writes)), { wait: 'durable' });
      const bad = await wal.append(encodeCommit(5, [], commitSize([])), { wait: 'durable' });
      await wal.close();
      await assert.rejects(TxnStore.open(directory()), (e) => {
        isCode('WAL_CORRUPTION')(e);
        assert.equal((e as { offset?: number }).offset, bad);
        assert.match(String(e), /sequence 5 after 5/);
        return true;
      });
    });

    it('rejects bad options, and options the store sets itself', async () => {
      const calls = [
        () => TxnStore.open(directory(), null as never),
        () => TxnStore.open(directory(), { logs: {} } as never),
        () => TxnStore.open(directory(), { log: 5 } as never),
        () => TxnStore.open(directory(), { log: { replay: () => {} } } as never),
        () => TxnStore.open(directory(), { log: { readOnly: true } } as never),
      ];
      for (const call of calls) await assert.rejects(call(), (e) => isArgumentError(e));
    });

    it('refuses a log fs that is not an object with ERR_INVALID_ARG_TYPE, touching nothing', async () => {
      for (const fs of [42, 'fs', null]) {
        const error = await TxnStore.open('/no/such/place/db', { log: { fs } } as never).catch(
          (e: unknown) => e,
        );
        assert.ok(isCode('ERR_INVALID_ARG_TYPE')(error));
        assert.match(String(error), /options\.log\.fs/);
      }
    });

    it("refuses the log's recovery 'skip' (it would replay commits after a damaged one), takes 'strict'", async () => {
      const error = await TxnStore.open(new MemoryStore(), { log: { recovery: 'skip' } }).catch(
        (e: unknown) => e,
      );
      assert.ok(isCode('ERR_INVALID_ARG_VALUE')(error));
      assert.match(String(error), /options\.log\.recovery/);
      await (await TxnStore.open(new MemoryStore(), { log: { recovery: 'strict' } })).close();
    });
  });

  describe('run', () => {
    it('retries a conflicting transaction and returns the function’s result', async () => {
      let attempts = 0;
      const result = await store.run(async (tx) => {
        attempts++;
        const n = Number(text(tx.get('n')) ?? '0');
        if (attempts === 1) await store.run((t) => t.put('n', '100')); // a concurrent commit
        tx.put('n', String(n + 1));
        return n + 1;
      });
      assert.equal(attempts, 2);
      assert.equal(result, 101);
    });

    it('gives up after `attempts` with the last conflict', async () => {
      let attempts = 0;
      await assert.rejects(
        store.run(
          async (tx) => {
            attempts++;
            tx.get('hot');
            tx.put('x', '1');
            await store.run((t) => t.put('hot', String(attempts)));
          },
          { attempts: 3, backoffMs: 0 },
        ),
        isCode('WAL_CONFLICT'),
      );
      assert.equal(attempts, 3);
    });

    it('passes other errors on without retry, aborting the transaction', async () => {
      let seen: import('../src/index.js').Transaction | undefined;
      await assert.rejects(
        store.run((tx) => {
          seen = tx;
          tx.put('a', '1');
          throw new Error('boom');
        }),
        /boom/,
      );
      assert.equal(seen!.status, 'aborted');
      assert.equal(store.stats().activeTransactions, 0);
    });

    it('leaves a transaction the function ended itself', async () => {
      assert.equal(
        await store.run((tx) => {
          tx.put('a', '1');
          tx.abort();
          return 'aborted';
        }),
        'aborted',
      );
      assert.equal(store.begin().get('a'), undefined);
      assert.equal(
        await store.run(async (tx) => {
          tx.put('a', '2');
          await tx.commit();
          return 'done';
        }),
        'done',
      );
    });

    it('checks its arguments', async () => {
      const bad = [
        () => store.run(5 as never),
        () => store.run(() => {}, { attempts: 0 }),
        () => store.run(() => {}, { backoffMs: -1 }),
        () => store.run(() => {}, { maxBackoffMs: 1e9 }),
        () => store.run(() => {}, { tries: 3 } as never),
        () => store.run(() => {}, { isolation: 'none' as never }),
      ];
      for (const call of bad) await assert.rejects(call(), (e) => isArgumentError(e));
    });
  });

  describe('lifecycle', () => {
    it('a finished transaction refuses every call with WAL_CLOSED', async () => {
      const tx = store.begin();
      tx.put('a', '1');
      await tx.commit();
      for (const call of [
        () => tx.get('a'),
        () => tx.put('a', '2'),
        () => tx.delete('a'),
        () => tx.scan(),
      ])
        assert.throws(call, isCode('WAL_CLOSED'));
      await assert.rejects(tx.commit(), isCode('WAL_CLOSED'));
      tx.abort(); // no effect
      assert.equal(tx.status, 'committed');
      assert.equal(tx.isolation, 'serializable');
    });

    it('close waits for commits in flight, then refuses everything with WAL_CLOSED', async () => {
      const open = store.begin();
      const tx = store.begin({ isolation: 'snapshot' });
      tx.put('a', '1');
      const committing = tx.commit();
      const closing = store.close();
      assert.equal(store.closed, true);
      await committing;
      await closing;
      await store.close();
      assert.throws(() => store.begin(), isCode('WAL_CLOSED'));
      assert.throws(() => open.get('a'), isCode('WAL_CLOSED'));
      await assert.rejects(open.commit(), isCode('WAL_CLOSED'));
      await assert.rejects(
        store.run(() => {}),
        isCode('WAL_CLOSED'),
      );
    });
  });

  describe('close under back-pressure', () => {
    it('settles the appended commits; those still waiting for room reject with WAL_CLOSED, never applied', async () => {
      const memory = new MemoryStore();
      const small = await TxnStore.open(memory, { log: { stagingLimit: 64 * 1024 } });
      const big = 'x'.repeat(20_000);
      const outcomes = Array.from({ length: 12 }, (_, i) => {
        const tx = small.begin();
        tx.put(`k${i}`, big);
        return tx.commit().then(
          () => 'ok',
          (e: unknown) => (e as { code?: string }).code,
        );
      });
      await small.close();
      const settled = await Promise.all(outcomes);
      const ok = settled.filter((o) => o === 'ok').length;
      assert.ok(ok >= 1 && ok < 12, settled.join());
      assert.deepEqual(settled.slice(ok), new Array(12 - ok).fill('WAL_CLOSED'), settled.join());
    });
  });

  describe('memory: old versions are reclaimed once no snapshot can see them', () => {
    it('keeps versions for an old snapshot, drops them when it ends, drops deleted keys', async () => {
      await store.run((tx) => tx.put('k', '0'));
      const old = store.begin();
      for (let i = 1; i <= 10; i++) await store.run((tx) => tx.put('k', String(i)));
      assert.equal(store.stats().versions, 11);
      assert.equal(text(old.get('k')), '0');
      old.abort();
      assert.equal(
        store.stats().versions,
        1,
        'reclaimed when the last snapshot that saw them ends',
      );
      await store.run((tx) => tx.put('k', '11'));
      assert.deepEqual(store.stats(), {
        keys: 1,
        versions: 1,
        activeTransactions: 0,
        committed: 12,
        pending: 0,
      });
      await store.run((tx) => tx.delete('k'));
      assert.deepEqual(store.stats(), {
        keys: 0,
        versions: 0,
        activeTransactions: 0,
        committed: 13,
        pending: 0,
      });
    });

    it('behind one long-lived transaction, keeps its versions and forgets ended snapshots', async () => {
      await store.run((tx) => tx.put('k', 'old'));
      const old = store.begin();
      const middle = [];
      for (let i = 0; i < 2500; i++) {
        const tx = store.begin(); // a new snapshot each time
        if (i === 1200) middle.push(tx);
        else {
          tx.put('k', String(i));
          await tx.commit();
        }
      }
      assert.equal(text(old.get('k')), 'old');
      assert.equal(text(middle[0]!.get('k')), '1199');
      assert.equal(store.stats().versions, 2500);
      old.abort();
      assert.equal(
        store.stats().versions,
        2500 - 1200,
        'versions only the middle one can read remain',
      );
      middle[0]!.abort();
      assert.deepEqual(store.stats(), {
        keys: 1,
        versions: 1,
        activeTransactions: 0,
        committed: 2500,
        pending: 0,
      });
    });

    it('reclaims across many snapshots and commits', async () => {
      const open = [];
      for (let i = 0; i < 3000; i++) {
        if (i % 7 === 0) open.push(store.begin());
        if (open.length > 5) open.shift()!.abort();
        await store.run((tx) => tx.put(`k${i % 10}`, String(i)));
      }
      for (const tx of open) tx.abort();
      await store.run((tx) => tx.put('k0', 'last'));
      assert.deepEqual(store.stats(), {
        keys: 10,
        versions: 10,
        activeTransactions: 0,
        committed: 3001,
        pending: 0,
      });
    });
  });
});

describe('TxnStore: blocking commits let the event loop turn', () => {
  // On disk: a checkpoint's file I/O and the log's new segments complete
  // through the event loop, as in use.
  const directory = temporaryDirectory('wal-txn-blocking-');

  it('blockingSync: a timer set before a loop of awaited commits fires while the loop goes on', async () => {
    // No checkpoint: nothing but the timer needs the loop.
    const store = await TxnStore.open(directory(), {
      log: { blockingSync: true },
      checkpoint: { logBytes: 0 },
    });
    // The first commit creates the log's segment, through the thread pool.
    await store.run((tx) => tx.put('first', '0'));
    let fired = false;
    const timer = setTimeout(() => {
      fired = true;
    }, 1);
    let commits = 0;
    while (!fired && commits < 20_000) {
      await store.run((tx) => tx.put(`k${commits % 1000}`, `v${commits}`));
      commits++;
    }
    clearTimeout(timer);
    assert.ok(fired, `the timer waited through ${commits} commits`);
    await store.close();
  });

  it('blockingSync: an automatic checkpoint completes, and drops the log prefix, while a loop of awaited commits goes on', async () => {
    const store = await TxnStore.open(directory(), {
      // Segments the loop does not fill: no wait for a new one lets it turn.
      log: { blockingSync: true, segmentSize: 4 * 1024 * 1024 },
      checkpoint: { logBytes: 16 * 1024 },
    });
    let commits = 0;
    while (store.log.head === 0 && commits < 10_000) {
      await store.run((tx) => tx.put(`k${commits % 100}`, `v${commits}`));
      commits++;
    }
    assert.ok(store.log.head > 0, `no checkpoint went through in ${commits} commits`);
    await store.close();
  });

  it('blockingSync: concurrent commits resolve in call order, turns of the event loop included', async () => {
    const store = await TxnStore.open(directory(), {
      log: { blockingSync: true },
      checkpoint: { logBytes: 0 },
    });
    await store.run((tx) => tx.put('first', '0'));
    // Rounds of 32 concurrent commits (distinct keys) until the event loop has turned 11
    // times (a count, bounded, not a time window: a busy machine only makes
    // it longer): many rounds hold the one that waits for a turn (about
    // every millisecond), most often mid-round.
    let turns = 0;
    let counting = true;
    const count = (): void => {
      turns++;
      if (counting) setImmediate(count);
    };
    setImmediate(count);
    let rounds = 0;
    while ((turns <= 10 || rounds <= 10) && rounds < 5000) {
      const order: number[] = [];
      await Promise.all(
        Array.from({ length: 32 }, (_, i) => {
          const tx = store.begin();
          tx.put(`k${i}`, `v${rounds}`);
          return tx.commit().then(() => order.push(i));
        }),
      );
      assert.deepEqual(
        order,
        Array.from({ length: 32 }, (_, i) => i),
        `round ${rounds}`,
      );
      rounds++;
    }
    counting = false;
    assert.ok(turns > 10, `the event loop turned ${turns} times in ${rounds} rounds`);
    assert.ok(rounds > 10, `only ${rounds} rounds`);
    await store.close();
  });
});
