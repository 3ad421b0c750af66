/**
 * LsmLevel beyond abstract-level's own suite (test/abstract-level.suite.ts):
 * reopening keeps data, durable writes through the Level API survive a power
 * loss, clear() as of its call over tables and memtables, a model-based run
 * against a sorted map, the extra methods, and the errors surfaced.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CrashFs, type CrashStates, FaultFs } from '@wal/store/testing';
import fc from 'fast-check';
import { Lsm, LsmLevel, type LsmLevelOptions } from '../src/index.js';
import { isCode } from './helpers.js';

const DIR = '/db';
/** Small enough that a few hundred entries make tables and compactions. */
const SMALL: LsmLevelOptions = {
  segmentSize: 4096,
  writeBufferSize: 1024,
  blockSize: 256,
  level0Trigger: 2,
  levelBaseBytes: 2048,
  levelRatio: 2,
  targetFileSize: 1024,
};

function memoryLevel(fs = new CrashFs(), options: LsmLevelOptions = {}): LsmLevel {
  return new LsmLevel(DIR, { fs, ...SMALL, ...options });
}

/** The open error's cause (abstract-level wraps it in LEVEL_DATABASE_NOT_OPEN). */
async function openFailure(db: LsmLevel): Promise<unknown> {
  try {
    await db.open();
  } catch (error) {
    assert.equal((error as { code?: unknown }).code, 'LEVEL_DATABASE_NOT_OPEN');
    return (error as Error).cause;
  }
  assert.fail('open resolved');
}

describe('LsmLevel: reopening', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lsm-level-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('keeps every write across close and open, in tables and in the log', async () => {
    const location = join(dir, 'db');
    const db = new LsmLevel<string, unknown>(location, {
      valueEncoding: 'json',
      writeBufferSize: 4096,
    });
    await db.open();
    const expected: [string, unknown][] = [];
    for (let i = 0; i < 300; i++) expected.push([`k${String(i).padStart(3, '0')}`, { i }]);
    await db.batch(expected.map(([key, value]) => ({ type: 'put', key, value })));
    await db.del('k000');
    await db.sublevel<string, unknown>('sub', { valueEncoding: 'json' }).put('s', { sub: true });
    await db.compact(); // everything so far in tables
    await db.put('late', { memtable: true }); // only in the log
    assert.ok(db.stats().tables.reduce((a, b) => a + b, 0) > 0, 'tables were written');
    await db.close();

    const again = new LsmLevel<string, unknown>(location, { valueEncoding: 'json' });
    await again.open();
    assert.equal(await again.get('k000'), undefined);
    assert.deepEqual(await again.get('k123'), { i: 123 });
    assert.deepEqual(await again.get('late'), { memtable: true });
    assert.deepEqual(
      await again.sublevel<string, unknown>('sub', { valueEncoding: 'json' }).get('s'),
      {
        sub: true,
      },
    );
    const keys = await again.keys({ gte: 'k', lt: 'l' }).all();
    assert.deepEqual(
      keys,
      expected.slice(1).map(([key]) => key),
    );
    await again.close();
  });

  it('opens the store again after a close in the same handle', async () => {
    const db = new LsmLevel(join(dir, 'db'));
    await db.open();
    await db.put('a', '1');
    await db.close();
    await db.open();
    assert.equal(await db.get('a'), '1');
    await db.close();
  });
});

/** Per sync:true write acknowledged: the crash states of that moment and the data then. */
interface Moment {
  readonly label: string;
  readonly states: CrashStates;
  readonly data: [string, string][];
}

describe('LsmLevel: power loss (over CrashFs)', function () {
  this.timeout(60_000);

  it('keeps every write acknowledged with sync: true, whatever the API call', async () => {
    const fs = new CrashFs();
    const db = memoryLevel(fs);
    await db.open();
    const model = new Map<string, string>();
    const moments: Moment[] = [];
    let seed = 1;
    const acknowledged = (label: string): void => {
      const data = [...model].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
      moments.push({
        label,
        states: fs.crashStates({ mode: 'sample', limit: 4, seed: seed++ }),
        data,
      });
    };
    const sub = db.sublevel('s');
    for (let i = 0; i < 24; i++) {
      const key = `k${String(i % 9).padStart(2, '0')}`;
      const value = `v${i}-${'x'.repeat(i * 7)}`;
      switch (i % 6) {
        case 0:
          await db.put(key, value, { sync: true });
          model.set(key, value);
          break;
        case 1:
          await db.batch(
            [
              { type: 'put', key, value },
              { type: 'del', key: 'k00' },
            ],
            { sync: true },
          );
          model.set(key, value);
          model.delete('k00');
          break;
        case 2:
          await db.batch().put(key, value).put(`${key}b`, value).write({ sync: true });
          model.set(key, value);
          model.set(`${key}b`, value);
          break;
        case 3:
          await db.del(key, { sync: true });
          model.delete(key);
          break;
        case 4:
          // A sublevel passes the option on to its database.
          await sub.put(key, value, { sync: true } as object);
          model.set(`!s!${key}`, value);
          break;
        default:
          await db.clear({ gte: 'k05', lt: 'k07', sync: true });
          for (const k of [...model.keys()]) if (k >= 'k05' && k < 'k07') model.delete(k);
      }
      acknowledged(`write ${i}`);
    }
    await db.close();

    let checked = 0;
    let unchecked = 0;
    for (const moment of moments) {
      const before = checked;
      for (const state of moment.states) {
        const reopened = memoryLevel(state.fs());
        await reopened.open();
        assert.deepEqual(
          await reopened.iterator().all(),
          moment.data,
          `${moment.label}: ${state.description}`,
        );
        await reopened.close();
        checked++;
      }
      if (checked === before) unchecked++;
    }
    // At least one state per acknowledged write (a log committing with
    // durable writes leaves few pending operations at those moments).
    assert.equal(moments.length, 24);
    assert.equal(unchecked, 0, 'every acknowledged write had a crash state checked');
    assert.ok(checked >= moments.length, `${checked} crash states checked`);
  });
});

describe('LsmLevel: iterators reading ahead', () => {
  const name = (i: number) => `k${String(i).padStart(3, '0')}`;
  type Step =
    | { op: 'next' }
    | { op: 'nextv'; size: number }
    | { op: 'seek'; to: number }
    | { op: 'all' };

  it('next(), nextv(), all() and seek() in any order agree with a sorted array, forward and reverse', async () => {
    const db = memoryLevel();
    const keys: string[] = [];
    for (let i = 0; i < 300; i += 2) keys.push(name(i)); // even numbers: seeks land between keys too
    await db.batch(
      keys.slice(0, 100).map((key) => ({ type: 'put' as const, key, value: `v${key}` })),
    );
    await db.compact(); // some in tables, some in the memtable
    await db.batch(keys.slice(100).map((key) => ({ type: 'put' as const, key, value: `v${key}` })));
    const step: fc.Arbitrary<Step> = fc.oneof(
      fc.constant({ op: 'next' as const }),
      fc.record({ op: fc.constant('nextv' as const), size: fc.integer({ min: 1, max: 80 }) }),
      fc.record({ op: fc.constant('seek' as const), to: fc.integer({ min: -1, max: 301 }) }),
      fc.constant({ op: 'all' as const }),
    );
    await fc.assert(
      fc.asyncProperty(fc.boolean(), fc.array(step, { maxLength: 25 }), async (reverse, steps) => {
        const order = reverse ? [...keys].reverse() : keys;
        const iterator = db.iterator({ reverse });
        let at = 0;
        for (const s of steps) {
          if (s.op === 'seek') {
            const target = s.to < 0 ? '' : name(s.to);
            iterator.seek(target);
            at = order.findIndex((key) => (reverse ? key <= target : key >= target));
            if (at === -1) at = order.length;
            continue;
          }
          const count = s.op === 'next' ? 1 : s.op === 'nextv' ? s.size : order.length;
          const expected = order.slice(at, at + count).map((key) => [key, `v${key}`]);
          at += expected.length;
          if (s.op === 'next') assert.deepEqual(await iterator.next(), expected[0]);
          else if (s.op === 'nextv') assert.deepEqual(await iterator.nextv(s.size), expected);
          else {
            assert.deepEqual(await iterator.all(), expected);
            return; // all() closes the iterator
          }
        }
        await iterator.close();
      }),
      {
        numRuns: 120,
        // Back to the key just read, and past the end then back.
        examples: [
          [false, [{ op: 'next' }, { op: 'seek', to: 0 }, { op: 'next' }]],
          [true, [{ op: 'next' }, { op: 'seek', to: 298 }, { op: 'nextv', size: 3 }]],
          [false, [{ op: 'seek', to: 301 }, { op: 'next' }, { op: 'seek', to: 10 }, { op: 'all' }]],
        ],
      },
    );
    await db.close();
  });
});

describe('LsmLevel: clear()', () => {
  it('deletes a range as of the call, in the memtable and in tables, not writes made after it', async () => {
    const db = memoryLevel();
    await db.open();
    for (let i = 0; i < 200; i++) await db.put(`k${String(i).padStart(3, '0')}`, 'x'.repeat(20));
    await db.compact();
    await db.put('k150', 'memtable'); // the memtable's largest key is below the tables'
    await db.clear({ gt: 'k100' });
    assert.equal((await db.keys().all()).at(-1), 'k100');
    const before = db.put('k500', 'in flight'); // issued before clear(): cleared
    const cleared = db.clear({ gt: 'k100' });
    const after = db.put('k999', 'after'); // issued after: kept
    await Promise.all([before, cleared, after]);
    const keys = await db.keys().all();
    assert.equal(keys.length, 102);
    assert.equal(keys.at(-2), 'k100');
    assert.equal(keys.at(-1), 'k999');
    await db.clear({ lte: 'k050' });
    assert.equal((await db.keys().all())[0], 'k051');
    await db.clear({ limit: 10, reverse: true });
    assert.deepEqual(await db.keys({ limit: 1, reverse: true }).all(), ['k091']);
    await db.clear();
    assert.deepEqual(await db.keys().all(), []);
    await db.clear(); // nothing to delete
    await db.close();
  });

  it('clears a put called before it and held back by a flush', async () => {
    const db = memoryLevel(new CrashFs(), { writeBufferSize: 1024, valueEncoding: 'view' });
    await db.open();
    // One memtable flushing, the next full: the next write is held back.
    await db.put('a', new Uint8Array(1500));
    await db.put('b', new Uint8Array(1500));
    await Promise.all([db.put('zzz', new Uint8Array(1)), db.clear()]);
    assert.deepEqual(await db.keys().all(), []);
    await db.close();
  });

  it('close() completes a clear() in batches called before it (a limit, a snapshot)', async () => {
    const fs = new CrashFs();
    const key = (i: number) => `k${String(i).padStart(5, '0')}`;
    const db = memoryLevel(fs);
    await db.open();
    await db.batch(
      Array.from({ length: 3000 }, (_, i) => ({ type: 'put', key: key(i), value: 'v' })),
    );
    // More keys than one batch of deletions: the clear goes on after awaits.
    const limited = db.clear({ limit: 2500 });
    await db.close();
    await limited;
    await db.open();
    assert.deepEqual(
      await db.keys().all(),
      Array.from({ length: 500 }, (_, i) => key(2500 + i)),
    );
    const snapshot = db.snapshot();
    await db.put('later', 'kept');
    const cleared = db.clear({ snapshot });
    const closing = db.close();
    await assert.rejects(db.clear({ limit: 1 }), isCode('LEVEL_DATABASE_NOT_OPEN'));
    await closing;
    await cleared;
    await db.open();
    assert.deepEqual(await db.keys().all(), ['later']);
    await db.close();
  });

  it('agrees with a sorted map through random writes, clears, compactions and reopens', async () => {
    const key = fc.stringMatching(/^[a-e]{1,3}$/);
    const op = fc.oneof(
      fc.record({ type: fc.constant('put' as const), key, value: fc.string({ maxLength: 30 }) }),
      fc.record({ type: fc.constant('del' as const), key }),
      fc.record({
        type: fc.constant('clear' as const),
        gt: fc.option(key, { nil: undefined }),
        lte: fc.option(key, { nil: undefined }),
        limit: fc.constantFrom(-1, 2),
        reverse: fc.boolean(),
      }),
      fc.constant({ type: 'compact' as const }),
      fc.constant({ type: 'reopen' as const }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(op, { maxLength: 60 }), async (ops) => {
        const fs = new CrashFs();
        let db = memoryLevel(fs);
        await db.open();
        const model = new Map<string, string>();
        const sorted = (): [string, string][] =>
          [...model].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
        try {
          for (const o of ops) {
            if (o.type === 'put') {
              await db.put(o.key, o.value);
              model.set(o.key, o.value);
            } else if (o.type === 'del') {
              await db.del(o.key);
              model.delete(o.key);
            } else if (o.type === 'clear') {
              const range: { gt?: string; lte?: string } = {};
              if (o.gt !== undefined) range.gt = o.gt;
              if (o.lte !== undefined) range.lte = o.lte;
              let hit = sorted().filter(
                ([k]) => (o.gt === undefined || k > o.gt) && (o.lte === undefined || k <= o.lte),
              );
              if (o.reverse) hit.reverse();
              if (o.limit !== -1) hit = hit.slice(0, o.limit);
              await db.clear({ ...range, limit: o.limit, reverse: o.reverse });
              for (const [k] of hit) model.delete(k);
            } else if (o.type === 'compact') {
              await db.compact();
            } else {
              await db.close();
              db = memoryLevel(fs);
              await db.open();
            }
            assert.deepEqual(await db.iterator().all(), sorted());
          }
        } finally {
          await db.close();
        }
      }),
      { numRuns: 40 },
    );
  });
});

describe('LsmLevel: put', () => {
  /**
   * What a put did: the stored entries as bytes, or the code of the error it
   * rejected with (or threw synchronously: a put must never throw).
   */
  async function outcome(db: LsmLevel, put: () => Promise<void>): Promise<string> {
    const codeOf = (error: unknown) => (error as { code?: string }).code ?? (error as Error).name;
    let returned: Promise<void>;
    try {
      returned = put();
    } catch (error) {
      return `threw ${codeOf(error)}`;
    }
    try {
      await returned;
    } catch (error) {
      return `error ${codeOf(error)}`;
    }
    const entries = await db.iterator({ keyEncoding: 'view', valueEncoding: 'view' }).all();
    return entries
      .map(([k, v]) => `${Buffer.from(k).toString('hex')}=${Buffer.from(v).toString('hex')}`)
      .join(' ');
  }

  it("stores and rejects exactly as abstract-level's own put, whatever the keys, values and per-call encodings (property)", async () => {
    const encoding = fc.constantFrom(undefined, 'utf8', 'hex', 'json', 'view', 'buffer', 'nope');
    const datum = fc.oneof(
      fc.string({ maxLength: 6 }),
      fc.constantFrom('ab', '0f', 'zz', null, undefined, 7),
      fc.uint8Array({ maxLength: 4 }),
    );
    const call = fc.record({
      key: datum,
      value: datum,
      options: fc.option(
        fc.oneof(
          fc.record({ keyEncoding: encoding, valueEncoding: encoding, sync: fc.boolean() }),
          // Options whose `sync` getter throws.
          fc.constant({
            get sync(): boolean {
              throw new RangeError('sync');
            },
          }),
        ),
        { nil: undefined },
      ),
    });
    await fc.assert(
      fc.asyncProperty(fc.array(call, { minLength: 1, maxLength: 12 }), async (calls) => {
        // A `write` listener sends every put of `reference` through abstract-level's put.
        const ours = memoryLevel();
        const reference = memoryLevel();
        reference.on('write', () => {});
        await ours.open();
        await reference.open();
        for (const { key, value, options } of calls) {
          const put = (db: LsmLevel) => () =>
            db.put(key as never, value as never, options as never);
          assert.equal(await outcome(ours, put(ours)), await outcome(reference, put(reference)));
        }
        await ours.close();
        await reference.close();
      }),
      { numRuns: 60 },
    );
  });

  it('runs prewrite hooks, emits write events and waits for open as abstract-level does', async () => {
    const db = memoryLevel();
    const opening = db.open();
    await db.put('early', '1'); // deferred until open
    await opening;
    const hook = (op: { type: string; key: unknown }, batch: { add(op: object): void }) => {
      if (op.type === 'put')
        batch.add({ type: 'put', key: `${String(op.key)}-copy`, value: 'hooked' });
    };
    db.hooks.prewrite.add(hook);
    await db.put('hooked', '3');
    db.hooks.prewrite.delete(hook);
    const written: unknown[] = [];
    db.on('write', (ops: { key: unknown }[]) => written.push(...ops.map((op) => op.key)));
    await db.put('seen', '2');
    assert.deepEqual(written, ['seen']);
    assert.deepEqual(await db.keys().all(), ['early', 'hooked', 'hooked-copy', 'seen']);
    await db.close();
  });
});

describe('LsmLevel: the caller may reuse its buffers once a call returns', () => {
  /** A store whose key `k5` lies in an older table, under a newer table spanning it: a get reads past a yield. */
  async function layered(): Promise<LsmLevel<Buffer, Buffer>> {
    const fs = new CrashFs();
    const options = { fs, level0Trigger: 100 }; // no compaction merges the two tables
    const engine = await Lsm.open(DIR, options);
    for (const k of ['k1', 'k5', 'k9']) await engine.put(Buffer.from(k), Buffer.from('old'));
    await engine.flush();
    for (const k of ['k0', 'k8']) await engine.put(Buffer.from(k), Buffer.from('new'));
    await engine.flush();
    await engine.close();
    const db = new LsmLevel<Buffer, Buffer>(DIR, {
      ...options,
      keyEncoding: 'buffer',
      valueEncoding: 'buffer',
      syncReads: false, // every table read through the thread pool
    });
    await db.open();
    return db;
  }

  it('get, getMany and has: a key reused before they resolve changes nothing', async () => {
    const db = await layered();
    const key = Buffer.from('k5');
    const got = db.get(key);
    key.fill(0x7a);
    assert.equal((await got)?.toString(), 'old');
    const keys = [Buffer.from('k5'), Buffer.from('k9')];
    const many = db.getMany(keys);
    for (const k of keys) k.fill(0x7a);
    assert.deepEqual(
      (await many).map((v) => v?.toString()),
      ['old', 'old'],
    );
    const other = Buffer.from('k5');
    const has = db.has(other);
    other.fill(0x7a);
    assert.equal(await has, true);
    await db.close();
  });

  it('a chained batch: keys and values reused before write() change nothing', async () => {
    const db = memoryLevel();
    await db.open();
    const batch = db.batch();
    const key = Buffer.from('key-A');
    const value = Buffer.from('val-A');
    const gone = Buffer.from('k5');
    batch.put(key, value, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
    batch.del(gone, { keyEncoding: 'buffer' });
    key.write('key-B');
    value.write('val-B');
    gone.write('k6');
    await db.put('k5', 'five');
    await db.put('k6', 'six');
    await batch.write();
    assert.equal(await db.get('key-A'), 'val-A');
    assert.equal(await db.get('key-B'), undefined);
    assert.equal(await db.get('k5'), undefined);
    assert.equal(await db.get('k6'), 'six');
    await db.close();
  });
});

describe('LsmLevel: extra methods and errors', () => {
  it('reports stats() and compact() only while open', async () => {
    const db = memoryLevel();
    assert.throws(() => db.stats(), isCode('LEVEL_DATABASE_NOT_OPEN'));
    await assert.rejects(db.compact(), isCode('LEVEL_DATABASE_NOT_OPEN'));
    await db.open();
    await db.put('a', 'b');
    assert.ok(db.stats().sequence >= 1);
    await db.compact();
    assert.equal(db.stats().memtableBytes, 0);
    assert.equal(db.location, DIR);
    assert.equal(db.supports.explicitSnapshots, true);
    await db.close();
  });

  it('rejects a bad location and bad options with Node-style codes', async () => {
    assert.throws(() => new LsmLevel(''), isCode('ERR_INVALID_ARG_TYPE'));
    assert.throws(() => new LsmLevel(7 as never), isCode('ERR_INVALID_ARG_TYPE'));
    const cause = await openFailure(memoryLevel(new CrashFs(), { blockSize: 1 }));
    assert.ok(isCode('ERR_OUT_OF_RANGE')(cause));
    const db = memoryLevel();
    await db.open();
    await assert.rejects(
      db.put('a', 'b', { sync: 'yes' } as never),
      isCode('ERR_INVALID_ARG_TYPE'),
    );
    await db.close();
  });

  it('surfaces WAL_LOCKED, WAL_NOT_A_LOG, createIfMissing and errorIfExists as the open error cause', async () => {
    const fs = new CrashFs();
    const first = memoryLevel(fs);
    await first.open();
    assert.ok(isCode('WAL_LOCKED')(await openFailure(memoryLevel(fs))));
    await first.close();

    const exists = await openFailure(new LsmLevel(DIR, { fs, errorIfExists: true }));
    assert.ok(isCode('ERR_INVALID_ARG_VALUE', /already exists/)(exists));
    const missing = await openFailure(new LsmLevel('/nothing', { fs, createIfMissing: false }));
    assert.ok(isCode('ERR_INVALID_ARG_VALUE', /does not exist/)(missing));
    assert.deepEqual(await fs.readdir('/'), ['db'], 'nothing created');
  });

  it('leaves a path that is not a store exactly as it was', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'lsm-level-'));
    try {
      const file = join(dir, 'notes.txt');
      await writeFile(file, 'mine');
      assert.ok(isCode('WAL_NOT_A_LOG')(await openFailure(new LsmLevel(file))));
      assert.ok(isCode('WAL_NOT_A_LOG')(await openFailure(new LsmLevel(dir))));
      assert.equal(await readFile(file, 'utf8'), 'mine');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('after a failed close, rejects reads with WAL_CLOSED and closes on a second close()', async () => {
    const fs = new FaultFs(new CrashFs());
    const db = new LsmLevel(DIR, { fs: fs as never, ...SMALL });
    await db.open();
    await db.put('a', 'b');
    fs.inject({ method: 'fdatasync', persistent: true });
    await assert.rejects(db.close(), isCode('LEVEL_DATABASE_NOT_CLOSED'));
    assert.equal(db.status, 'open');
    await assert.rejects(db.get('a'), isCode('WAL_CLOSED'));
    // Writes reject (a promise, never a synchronous throw), put's fast path too.
    for (const write of [
      () => db.put('a', 'c'),
      () => db.put('a', 'c', { sync: true }),
      () => db.del('a'),
      () => db.batch([{ type: 'put', key: 'a', value: 'c' }]),
    ]) {
      let returned: unknown;
      assert.doesNotThrow(() => {
        returned = write();
      });
      assert.ok(returned instanceof Promise);
      await assert.rejects(returned, isCode('WAL_CLOSED'));
    }
    fs.clear();
    await db.close();
    assert.equal(db.status, 'closed');
    await db.open(); // the lock was released: it opens again
    assert.equal(await db.get('a'), 'b');
    await db.close();
  });

  it('close() completes the writes held back by a write stall; later ones get LEVEL_DATABASE_NOT_OPEN', async () => {
    const fs = new CrashFs();
    const store = await Lsm.open(DIR, { fs, segmentSize: 4096, level0Trigger: 10 });
    for (let i = 0; i < 2; i++) {
      await store.put(new TextEncoder().encode(`t${i}`), new TextEncoder().encode('v'));
      await store.flush();
    }
    await store.close();
    // Two level-0 tables: at the stop threshold, the writes wait for a compaction.
    const stop = { level0Trigger: 2, level0SlowdownTrigger: 2, level0StopTrigger: 2 };
    const db = memoryLevel(fs, stop);
    await db.open();
    assert.equal(db.stats().tables[0], 2);
    const writes = Array.from({ length: 20 }, (_, i) => db.put(`k${i}`, `v${i}`));
    const closing = db.close();
    await assert.rejects(db.put('late', 'v'), isCode('LEVEL_DATABASE_NOT_OPEN'));
    await closing;
    await Promise.all(writes);
    await db.open();
    assert.deepEqual(
      await db.getMany(writes.map((_, i) => `k${i}`)),
      writes.map((_, i) => `v${i}`),
    );
    assert.equal(await db.get('late'), undefined);
    await db.close();
  });

  it('rejects operations after close with LEVEL_DATABASE_NOT_OPEN', async () => {
    const db = memoryLevel();
    await db.open();
    const iterator = db.iterator();
    await db.close();
    await assert.rejects(db.get('a'), isCode('LEVEL_DATABASE_NOT_OPEN'));
    await assert.rejects(db.put('a', 'b'), isCode('LEVEL_DATABASE_NOT_OPEN'));
    await assert.rejects(iterator.next(), isCode('LEVEL_ITERATOR_NOT_OPEN'));
  });
});
