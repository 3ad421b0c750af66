/**
 * The engine's API: writes, reads, snapshots, iterators, flush and reopen,
 * the lock, refusing what is not a store, closed handles, argument errors,
 * orphans and damaged files, and I/O faults during a flush.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { link, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { crc32c, Wal } from '@wal/core';
import { errorCode } from '@wal/errors';
import { CrashFs, FaultFs, type FsCall } from '@wal/store/testing';
import fc from 'fast-check';
import { BLOCK_OVERHEAD, BlockCache } from '../src/block-cache.js';
import { getU64, putU32 } from '../src/coding.js';
import { Lsm, type LsmOptions } from '../src/index.js';
import { resolveOptions } from '../src/options.js';
import { type Recovered, recover } from '../src/recovery.js';
import { WRITE_CHUNK } from '../src/table-writer.js';
import { bytes, isCode, tempRoot, text, tick } from './helpers.js';
import { endToEnd, relayout } from './relayout.js';

const DIR = '/db';

async function openMemory(
  options: LsmOptions = {},
  fs = new CrashFs(),
): Promise<{ db: Lsm; fs: CrashFs }> {
  return { db: await Lsm.open(DIR, { fs, segmentSize: 4096, ...options }), fs };
}

/** A closed store in DIR holding `k` = `v` in table 1. */
async function storeWithOneTable(): Promise<CrashFs> {
  const { db, fs } = await openMemory();
  await db.put(bytes('k'), bytes('v'));
  await db.flush();
  await db.close();
  return fs;
}

async function entries(db: Lsm, options = {}): Promise<string[]> {
  const out: string[] = [];
  for await (const [key, value] of db.iterator(options)) out.push(`${text(key)}=${text(value)}`);
  return out;
}

describe('Lsm: writes and reads', () => {
  it('put, get, overwrite, del and batch', async () => {
    const { db } = await openMemory();
    await db.put(bytes('a'), bytes('1'));
    await db.put(bytes('b'), bytes('2'), { sync: true });
    await db.put(bytes('a'), bytes('3'));
    await db.del(bytes('b'));
    await db.batch([
      { type: 'put', key: bytes('c'), value: bytes('4') },
      { type: 'del', key: bytes('a') },
      { type: 'put', key: bytes('d'), value: bytes('5') },
    ]);
    await db.batch([]);
    assert.equal(text(await db.get(bytes('a'))), undefined);
    assert.equal(text(await db.get(bytes('b'))), undefined);
    assert.equal(text(await db.get(bytes('c'))), '4');
    assert.deepEqual(await entries(db), ['c=4', 'd=5']);
    assert.equal(db.sequence, 7);
    await db.close();
  });

  it('concurrent durable writers share the log fsyncs (group commit), as durable writes', async () => {
    // Segments large enough that no write crosses into a new one (such a write goes as a write and an fdatasync).
    const { db, fs } = await openMemory({ segmentSize: 1024 * 1024 });
    const calls = (call: string): number =>
      fs.operations.filter((op) => op.call === call && op.path?.startsWith(`${DIR}/wal/`)).length;
    // A durable write (O_DSYNC) makes its bytes durable as an fdatasync would.
    const flushes = (): number => calls('fdatasync') + calls('pwriteDurable');
    const before = { flushes: flushes(), fdatasyncs: calls('fdatasync') };
    await Promise.all(
      Array.from({ length: 64 }, (_, i) => db.put(bytes(`k${i}`), bytes('v'), { sync: true })),
    );
    const shared = flushes() - before.flushes;
    assert.ok(shared >= 1 && shared <= 4, `${shared} fsyncs for 64 durable writes`);
    // The log knew they were to be durable before it sent them: durable
    // writes, not writes each followed by an fdatasync.
    assert.equal(calls('fdatasync') - before.fdatasyncs, 0);
    // A turn mixing both: the durable ones still go as durable writes.
    const mixed = calls('fdatasync');
    await Promise.all(
      Array.from({ length: 64 }, (_, i) =>
        db.put(bytes(`m${i}`), bytes('v'), i % 2 === 0 ? undefined : { sync: true }),
      ),
    );
    assert.equal(calls('fdatasync'), mixed);
    // Writes without sync wait for no fsync at all.
    const quiet = flushes();
    await Promise.all(Array.from({ length: 64 }, (_, i) => db.put(bytes(`q${i}`), bytes('v'))));
    assert.equal(flushes(), quiet);
    await db.close();
  });

  it('writes held back by a flush keep their call order: none is passed by a later one', async () => {
    const { db } = await openMemory({ writeBufferSize: 1024 });
    const writes: Promise<void>[] = [];
    const last = new Map<string, string>();
    for (let i = 0; i < 300; i++) {
      const key = `k${i % 3}`;
      writes.push(db.put(bytes(key), bytes(`v${i}`), { sync: true }));
      last.set(key, `v${i}`);
      await tick();
    }
    await Promise.all(writes);
    assert.ok(db.stats().flushedBytes > 0, 'flushes ran');
    for (const [key, value] of last) assert.equal(text(await db.get(bytes(key))), value, key);
    await db.close();
  });

  it('thousands of writes in flight settle in call order, each visible once settled', async () => {
    const { db } = await openMemory();
    // Where the durable writes sit decides how far each application reaches
    // before it waits: the queue of writes is dropped from the front past
    // 1024 applied and beyond half of it, or emptied.
    for (const durable of [[], [1999], [1100, 2500], [0, 1023, 1024, 2999]]) {
      const settled: number[] = [];
      const visible: Promise<Uint8Array | undefined>[] = [];
      const writes = Array.from({ length: 3000 }, (_, i) => {
        const key = bytes(`d${durable.length}-${String(i).padStart(4, '0')}`);
        return db.put(key, bytes(`v${i}`), { sync: durable.includes(i) }).then(() => {
          settled.push(i);
          visible.push(db.get(key));
        });
      });
      await Promise.all(writes);
      assert.deepEqual(
        settled,
        Array.from({ length: 3000 }, (_, i) => i),
      );
      const values = (await Promise.all(visible)).map(text);
      assert.deepEqual(
        values,
        Array.from({ length: 3000 }, (_, i) => `v${i}`),
      );
    }
    assert.equal((await entries(db)).length, 12_000);
    await db.close();
  });

  it('copies keys and values on the way in and out', async () => {
    const { db } = await openMemory();
    const key = bytes('k');
    const value = bytes('v');
    await db.put(key, value);
    key[0] = 0;
    value[0] = 0;
    const got = (await db.get(bytes('k')))!;
    assert.equal(text(got), 'v');
    got[0] = 0;
    assert.equal(text(await db.get(bytes('k'))), 'v');
    await db.close();
  });

  it('takes keys and values at the call: buffers reused before the write resolves change nothing', async () => {
    // Stalled: a full memtable while the one before it is still being
    // flushed; the writes wait for that flush, holding the caller's
    // operations meanwhile. Node Buffers too, whose `slice` is a view.
    const kinds: [string, (s: string) => Uint8Array][] = [
      ['Uint8Array', bytes],
      ['Buffer', (s) => Buffer.from(s)],
    ];
    for (const [kind, make] of kinds)
      for (const stalled of [false, true]) {
        const { db } = await openMemory({ writeBufferSize: 1024 });
        if (stalled) {
          await db.put(bytes('a'), new Uint8Array(1024)); // frozen, flushing
          await db.put(bytes('b'), new Uint8Array(1024)); // full
          assert.equal(db.stats().flushing, true);
        }
        const key = make('k');
        const value = make('v');
        const end = make('z');
        const writes = [
          db.put(key, value),
          db.batch([
            { type: 'put', key, value },
            { type: 'delRange', start: key, end },
          ]),
          db.put(key, value, { sync: true }),
        ];
        key[0] = 0x6a; // 'j'
        value[0] = 0x77; // 'w'
        end[0] = 0x6b; // 'k'
        await Promise.all(writes);
        const where = `${kind}, ${stalled ? 'stalled' : 'at once'}`;
        assert.equal(text(await db.get(bytes('k'))), 'v', where);
        assert.equal(text(await db.get(bytes('j'))), undefined, where);
        assert.deepEqual(await entries(db, { gte: bytes('j'), lt: bytes('s') }), ['k=v'], where);
        await db.close();
      }
  });

  it("takes an iterator's range and seek target at the call: buffers reused afterwards change nothing", async () => {
    const { db } = await openMemory();
    for (const k of ['a', 'b', 'c', 'd', 'e']) await db.put(bytes(k), bytes(k));
    for (const make of [bytes, (s: string) => Buffer.from(s)]) {
      const gte = make('b');
      const lt = make('e');
      const iterator = db.iterator({ gte, lt });
      gte[0] = 0x61; // 'a'
      lt[0] = 0x66; // 'f'
      const target = make('c');
      iterator.seek(target);
      target[0] = 0x62; // 'b'
      const seen: string[] = [];
      for (
        let entry = await iterator.nextEntry();
        entry !== undefined;
        entry = await iterator.nextEntry()
      ) {
        seen.push(text(entry[0])!);
      }
      await iterator.return();
      assert.deepEqual(seen, ['c', 'd']);
    }
    await db.close();
  });

  it('snapshots keep seeing their sequence through overwrites, deletes and flushes', async () => {
    const { db } = await openMemory();
    await db.put(bytes('a'), bytes('1'));
    await db.put(bytes('b'), bytes('1'));
    const snapshot = db.snapshot();
    await db.put(bytes('a'), bytes('2'));
    await db.del(bytes('b'));
    await db.put(bytes('c'), bytes('2'));
    const iterator = db.iterator({ snapshot });
    await db.flush();
    await db.put(bytes('a'), bytes('3'));
    await db.flush();
    assert.equal(text(await db.get(bytes('a'), { snapshot })), '1');
    assert.equal(text(await db.get(bytes('b'), { snapshot })), '1');
    assert.equal(await db.get(bytes('c'), { snapshot }), undefined);
    const seen: string[] = [];
    for await (const [key, value] of iterator) seen.push(`${text(key)}=${text(value)}`);
    assert.deepEqual(seen, ['a=1', 'b=1']);
    assert.deepEqual(await entries(db, { snapshot, reverse: true }), ['b=1', 'a=1']);
    assert.deepEqual(await entries(db), ['a=3', 'c=2']);
    snapshot.release();
    assert.ok(snapshot.released);
    await assert.rejects(db.get(bytes('a'), { snapshot }), isCode('ERR_INVALID_ARG_VALUE'));
    const other = await openMemory();
    await assert.rejects(
      db.get(bytes('a'), { snapshot: other.db.snapshot() }),
      isCode('ERR_INVALID_ARG_TYPE'),
    );
    await other.db.close();
    await db.close();
  });

  it('iterates ranges forward and reverse, with limits and seeks, across memtables and tables', async () => {
    const { db } = await openMemory({ writeBufferSize: 1024, blockSize: 64, level0Trigger: 50 });
    const keys = Array.from({ length: 60 }, (_, i) => `k${String(i).padStart(2, '0')}`);
    for (const [i, key] of keys.entries()) {
      await db.put(bytes(key), bytes(`v${i}`));
      if (i % 17 === 0) await db.flush();
    }
    for (let i = 0; i < 60; i += 3) await db.del(bytes(keys[i]!));
    const live = keys.filter((_, i) => i % 3 !== 0);
    const all = live.map((key) => `${key}=v${Number(key.slice(1))}`);
    assert.ok(db.stats().tables[0]! >= 3, JSON.stringify(db.stats()));
    assert.deepEqual(await entries(db), all);
    assert.deepEqual(await entries(db, { reverse: true }), [...all].reverse());
    const inRange = (key: string): boolean => key > 'k10' && key <= 'k20';
    const range = all.filter((entry) => inRange(entry.slice(0, 3)));
    assert.deepEqual(await entries(db, { gt: bytes('k10'), lte: bytes('k20') }), range);
    assert.deepEqual(
      await entries(db, { gt: bytes('k10'), lte: bytes('k20'), reverse: true }),
      [...range].reverse(),
    );
    assert.deepEqual(
      await entries(db, { gte: bytes('k10'), lt: bytes('k20'), limit: 2 }),
      all.filter((e) => e >= 'k10').slice(0, 2),
    );
    assert.deepEqual(await entries(db, { limit: 0 }), []);
    assert.deepEqual(await entries(db, { gte: bytes('k99') }), []);
    assert.deepEqual(await entries(db, { lt: bytes('k00'), reverse: true }), []);

    const iterator = db.iterator({ gte: bytes('k05') });
    iterator.seek(bytes('k40'));
    assert.equal(text((await iterator.nextEntry())![0]), 'k40');
    iterator.seek(bytes('k00')); // before the range: the range bound wins
    assert.equal(text((await iterator.nextEntry())![0]), 'k05');
    const reverse = db.iterator({ reverse: true, lt: bytes('k50') });
    reverse.seek(bytes('k31'));
    assert.equal(text((await reverse.nextEntry())![0]), 'k31');
    reverse.seek(bytes('k30')); // deleted: the one before it
    assert.equal(text((await reverse.nextEntry())![0]), 'k29');
    reverse.seek(bytes('k99'));
    assert.equal(text((await reverse.nextEntry())![0]), 'k49');
    for await (const _ of reverse) break;
    assert.equal(await reverse.nextEntry(), undefined);
    await db.close();
  });

  it('replays the log at open, and reads flushed tables after a reopen', async () => {
    const fs = new CrashFs();
    let { db } = await openMemory({}, fs);
    await db.put(bytes('flushed'), bytes('1'));
    await db.flush();
    await db.put(bytes('logged'), bytes('2'));
    await db.del(bytes('flushed'));
    await db.close();
    ({ db } = await openMemory({}, fs));
    assert.equal(await db.get(bytes('flushed')), undefined);
    assert.equal(text(await db.get(bytes('logged'))), '2');
    assert.equal(db.sequence, 3);
    await db.put(bytes('after'), bytes('3'));
    assert.equal(db.sequence, 4);
    await db.close();
  });

  it('a flush writes its table in chunks as blocks fill, not whole at the end', async () => {
    const fs = new FaultFs(new CrashFs());
    const { db } = await openMemory({ writeBufferSize: 4 << 20 }, fs as never);
    const value = bytes('v'.repeat(100));
    for (let i = 0; i < 3000; i++) await db.put(bytes(`key${String(i).padStart(5, '0')}`), value);
    await db.flush();
    const writes = fs.calls.filter((c) => c.method === 'pwrite' && c.path.endsWith('.sst'));
    const sizes = writes.map((c) => (c.args[0] as Uint8Array).length);
    const total = sizes.reduce((a, b) => a + b, 0);
    assert.ok(total > 300_000, `${total} bytes of table`);
    assert.ok(sizes.length >= 4, `${sizes.length} writes`);
    // At most one chunk of finished blocks plus one block is held at a time.
    assert.ok(
      Math.max(...sizes) <= WRITE_CHUNK + 4096 + 256,
      `largest write ${Math.max(...sizes)}`,
    );
    await db.close();
  });

  it('a flush drops the log prefix it covers', async () => {
    const fs = new CrashFs();
    const { db } = await openMemory({}, fs);
    const value = new Uint8Array(1000);
    for (let i = 0; i < 20; i++) await db.put(bytes(`k${i}`), value);
    const segments = async (): Promise<number> =>
      (await fs.readdir(`${DIR}/wal`)).filter((name) => name.endsWith('.wal')).length;
    assert.ok((await segments()) >= 4);
    await db.flush();
    assert.ok((await segments()) <= 1, `${await segments()} segments left`);
    assert.equal(db.stats().flushedBytes > 20_000, true);
    await db.flush(); // nothing to flush
    assert.deepEqual(db.stats().tables[0], 1);
    await db.close();
  });

  it('writes go on while flushes and log truncations run, and all of them land', async () => {
    const fs = new CrashFs();
    let { db } = await openMemory({ writeBufferSize: 2048 }, fs);
    // Waves of concurrent writers: each wave is appended before any is applied.
    for (let wave = 0; wave < 20; wave++) {
      const writes: Promise<void>[] = [];
      for (let i = wave * 20; i < wave * 20 + 20; i++) {
        const key = bytes(`key${String(i).padStart(3, '0')}`);
        writes.push(db.put(key, bytes(`value-${i}`), { sync: i % 7 === 0 }));
      }
      await Promise.all(writes);
    }
    const stats = db.stats();
    assert.ok(stats.flushedBytes > 0 && stats.compactions > 0, JSON.stringify(stats));
    assert.equal((await entries(db)).length, 400);
    await db.close();
    ({ db } = await openMemory({ writeBufferSize: 2048 }, fs));
    assert.equal((await entries(db)).length, 400);
    assert.equal(text(await db.get(bytes('key399'))), 'value-399');
    await db.close();
  });

  it('rewrites the manifest once it outgrows maxManifestBytes', async () => {
    const fs = new CrashFs();
    let { db } = await openMemory({ maxManifestBytes: 1024, level0Trigger: 1000 }, fs);
    for (let i = 0; i < 40; i++) {
      await db.put(bytes(`key-${i}`), bytes(`${i}`));
      await db.flush();
    }
    await db.close();
    const manifest = await Wal.open(`${DIR}/manifest`, { fs, segmentSize: 4096 });
    assert.ok(manifest.tail - manifest.head <= 2048, `${manifest.tail - manifest.head} bytes`);
    assert.ok(manifest.head > 0);
    await manifest.close();
    ({ db } = await openMemory({}, fs));
    assert.equal(db.stats().tables[0], 40);
    assert.equal((await entries(db)).length, 40);
    await db.close();
  });

  it('compacts the manifest into one snapshot edit', async () => {
    const fs = new CrashFs();
    let { db } = await openMemory({}, fs);
    for (let i = 0; i < 5; i++) {
      await db.put(bytes(`k${i}`), bytes(`${i}`));
      await db.flush();
    }
    await db.compactManifest();
    await db.put(bytes('k9'), bytes('9'));
    const tables = db.stats().tables;
    await db.close();
    const manifest = await Wal.open(`${DIR}/manifest`, { fs, segmentSize: 4096 });
    let records = 0;
    for await (const _ of manifest.iterate()) records++;
    await manifest.close();
    assert.equal(records, 1);
    ({ db } = await openMemory({}, fs));
    assert.deepEqual(db.stats().tables, tables);
    assert.deepEqual(await entries(db), ['k0=0', 'k1=1', 'k2=2', 'k3=3', 'k4=4', 'k9=9']);
    await db.close();
  });
});

describe('Lsm: compaction', () => {
  const SMALL: LsmOptions = {
    writeBufferSize: 1024,
    level0Trigger: 2,
    levelBaseBytes: 2048,
    levelRatio: 2,
    targetFileSize: 1024,
    blockSize: 256,
  };
  const tableFiles = async (fs: CrashFs): Promise<number> =>
    (await fs.readdir(DIR)).filter((name) => name.endsWith('.sst')).length;
  const total = (db: Lsm): number => db.stats().tables.reduce((a, b) => a + b, 0);
  const keyOf = (i: number): Uint8Array => bytes(`key${String(i).padStart(4, '0')}`);

  it('merges levels, drops shadowed versions and bottom tombstones, keeps what snapshots need', async () => {
    const fs = new CrashFs();
    let { db } = await openMemory(SMALL, fs);
    for (let i = 0; i < 300; i++) await db.put(keyOf(i), bytes(`first-${i}`));
    const snapshot = db.snapshot();
    for (let i = 0; i < 300; i++) {
      if (i % 2 === 0) await db.del(keyOf(i));
      else await db.put(keyOf(i), bytes(`second-${i}`));
    }
    await db.flush();
    await db.compact();
    const stats = db.stats();
    assert.ok(stats.compactions > 3, JSON.stringify(stats));
    assert.ok(
      stats.tables.slice(2).some((n) => n > 0),
      `deeper levels used: ${stats.tables}`,
    );
    assert.ok(stats.writeAmplification > 1, JSON.stringify(stats));
    for (let level = 1; level < 7; level++) {
      assert.ok(
        level === 6 || stats.levelBytes[level]! <= 2048 * 2 ** (level - 1),
        `level ${level}`,
      );
    }
    // The snapshot still sees the first values, deleted keys included.
    assert.equal(text(await db.get(keyOf(10), { snapshot })), 'first-10');
    assert.equal(text(await db.get(keyOf(11), { snapshot })), 'first-11');
    assert.equal((await entries(db, { snapshot })).length, 300);
    assert.equal(await db.get(keyOf(10)), undefined);
    assert.equal(text(await db.get(keyOf(11))), 'second-11');
    const live = await entries(db);
    assert.equal(live.length, 150);
    assert.equal(await tableFiles(fs), total(db), 'inputs of finished compactions are deleted');
    const withSnapshot = db.stats().levelBytes.reduce((a, b) => a + b, 0);
    await db.close();
    ({ db } = await openMemory(SMALL, fs));
    assert.deepEqual(await entries(db), live);
    assert.equal(await tableFiles(fs), total(db));
    await db.close();

    // The same writes with no snapshot held: the first values are dropped.
    const other = (await openMemory(SMALL)).db;
    for (let i = 0; i < 300; i++) await other.put(keyOf(i), bytes(`first-${i}`));
    for (let i = 0; i < 300; i++) {
      if (i % 2 === 0) await other.del(keyOf(i));
      else await other.put(keyOf(i), bytes(`second-${i}`));
    }
    await other.flush();
    await other.compact();
    const without = other.stats().levelBytes.reduce((a, b) => a + b, 0);
    assert.ok(without < withSnapshot, `${without} bytes without a snapshot, ${withSnapshot} with`);
    assert.deepEqual(await entries(other), live);
    await other.close();
  });

  it('range deletions hide older versions in memtables and tables, across flushes and reopens', async () => {
    const fs = new CrashFs();
    let { db } = await openMemory(SMALL, fs);
    for (let i = 0; i < 60; i++) await db.put(keyOf(i), bytes(`old-${i}`));
    await db.flush();
    for (let i = 60; i < 80; i++) await db.put(keyOf(i), bytes(`old-${i}`));
    const before = db.snapshot();
    // [10, 70): in a table and in the memtable; an empty range writes nothing.
    await db.delRange(keyOf(10), keyOf(70));
    const sequence = db.sequence;
    await db.delRange(keyOf(5), keyOf(5));
    await db.batch([{ type: 'delRange', start: keyOf(9), end: keyOf(1) }]);
    assert.equal(db.sequence, sequence);
    await db.put(keyOf(20), bytes('new-20'));
    await db.batch([
      { type: 'delRange', start: keyOf(75), end: keyOf(77) },
      { type: 'put', key: keyOf(76), value: bytes('new-76') },
    ]);
    const expected = [
      ...Array.from({ length: 10 }, (_, i) => `${text(keyOf(i))}=old-${i}`),
      `${text(keyOf(20))}=new-20`,
      ...[70, 71, 72, 73, 74, 77, 78, 79].map((i) => `${text(keyOf(i))}=old-${i}`),
    ].sort();
    expected.splice(
      expected.indexOf(`${text(keyOf(74))}=old-74`) + 1,
      0,
      `${text(keyOf(76))}=new-76`,
    );
    const check = async (): Promise<void> => {
      assert.equal(text(await db.get(keyOf(9))), 'old-9');
      assert.equal(await db.get(keyOf(10)), undefined);
      assert.equal(await db.get(keyOf(69)), undefined);
      assert.equal(text(await db.get(keyOf(20))), 'new-20');
      assert.equal(text(await db.get(keyOf(70))), 'old-70');
      assert.equal(text(await db.get(keyOf(76))), 'new-76');
      assert.deepEqual(await entries(db), expected);
      assert.deepEqual(await entries(db, { reverse: true }), [...expected].reverse());
    };
    await check();
    assert.equal(text(await db.get(keyOf(30), { snapshot: before })), 'old-30');
    assert.equal((await entries(db, { snapshot: before })).length, 80);
    before.release();
    // Replayed from the log at open.
    await db.close();
    ({ db } = await openMemory(SMALL, fs));
    await check();
    await db.flush();
    await check();
    await db.close();
    // Read from tables.
    ({ db } = await openMemory(SMALL, fs));
    await check();
    await db.compact();
    await check();
    await db.close();
  });

  it('delRange without an end deletes every key from start on held at the call, not later ones', async () => {
    const { db } = await openMemory(SMALL);
    await db.delRange(keyOf(0)); // an empty store: nothing written
    assert.equal(db.sequence, 0);
    for (let i = 0; i < 60; i++) await db.put(keyOf(i), bytes(`old-${i}`));
    await db.flush(); // keys up to 59 in a table
    await db.put(keyOf(30), bytes('memtable')); // the memtable's largest key is below the table's
    await db.delRange(keyOf(40));
    assert.equal((await entries(db)).length, 40);
    await db.put(keyOf(70), bytes('memtable')); // now the largest key is in the memtable
    await db.delRange(keyOf(35));
    assert.equal((await entries(db)).length, 35);
    const inFlight = db.put(keyOf(90), bytes('in flight')); // issued before: deleted
    const deleted = db.delRange(keyOf(20));
    const later = db.put(keyOf(95), bytes('later')); // issued after: kept
    await Promise.all([inFlight, deleted, later]);
    assert.deepEqual(await entries(db), [
      ...Array.from({ length: 20 }, (_, i) => `${text(keyOf(i))}=old-${i}`),
      `${text(keyOf(95))}=later`,
    ]);
    await db.close();
  });

  /** A store whose next write is held back: one memtable flushing, the next full. */
  async function heldBack(): Promise<Lsm> {
    const { db } = await openMemory({ writeBufferSize: 1024 });
    await db.put(bytes('a'), new Uint8Array(1500));
    await db.put(bytes('b'), new Uint8Array(1500));
    return db;
  }

  it('delRange without an end deletes writes called before it and held back by a flush', async () => {
    const db = await heldBack();
    const held = db.put(bytes('zzz'), bytes('held'));
    const deleted = db.delRange(bytes(''));
    const later = db.put(bytes('zzzz'), bytes('later')); // called after: kept
    await Promise.all([held, deleted, later]);
    assert.deepEqual(await entries(db), ['zzzz=later']);
    await db.close();
  });

  it('flush() covers the writes called before it, held back by a flush or not', async () => {
    const db = await heldBack();
    const held = db.put(bytes('zzz'), bytes('held'));
    await db.flush();
    await held;
    assert.equal(db.stats().memtableBytes, 0, 'the memtable was flushed, held write included');
    assert.equal(db.stats().flushing, false);
    assert.equal(text(await db.get(bytes('zzz'))), 'held');
    await db.close();
  });

  it('flush() covers the writes called before it when one of them fills the memtable and starts a flush meanwhile', async () => {
    for (let round = 0; round < 5; round++) {
      const { db } = await openMemory({ writeBufferSize: 4096 });
      for (let i = 0; db.stats().memtableBytes + 200 < 4096; i++)
        await db.put(bytes(`k${String(i).padStart(5, '0')}`), new Uint8Array(40));
      // Applied once written: the memtable is full, its flush starts.
      const filling = db.put(bytes('A'), new Uint8Array(300));
      // Applied once durable, after that: in the next memtable.
      const durable = db.put(bytes('B'), bytes('b'), { sync: true });
      await db.flush();
      const { memtableBytes, flushing } = db.stats();
      await Promise.all([filling, durable]);
      assert.equal(
        memtableBytes,
        0,
        `round ${round}: every write called before flush() is flushed`,
      );
      assert.equal(flushing, false, `round ${round}`);
      assert.equal(text(await db.get(bytes('B'))), 'b');
      await db.close();
    }
  });

  it('a compaction keeps the range deletions a snapshot needs and never cuts a table inside one', async () => {
    const { db } = await openMemory({ ...SMALL, level0Trigger: 1, levelBaseBytes: 1 << 20 });
    for (let i = 0; i < 100; i++) await db.put(keyOf(i), bytes(`old-${i}`.padEnd(40, '.')));
    await db.flush();
    const snapshot = db.snapshot();
    await db.delRange(keyOf(0), keyOf(100));
    for (let i = 50; i < 100; i++) await db.put(keyOf(i), bytes(`new-${i}`));
    await db.flush();
    await db.compact();
    // Level 1 holds one table, over 1024 bytes: no cut fell inside [0, 100).
    assert.deepEqual(db.stats().tables, [0, 1, 0, 0, 0, 0, 0]);
    assert.ok(db.stats().levelBytes[1]! > 2 * 1024);
    for (const i of [0, 49]) assert.equal(await db.get(keyOf(i)), undefined);
    for (const i of [50, 75, 99]) assert.equal(text(await db.get(keyOf(i))), `new-${i}`);
    assert.equal(text(await db.get(keyOf(10), { snapshot }))?.slice(0, 6), 'old-10');
    assert.equal((await entries(db)).length, 50);
    assert.equal((await entries(db, { snapshot })).length, 100);
    snapshot.release();
    await db.close();
  });

  it('at the bottom, with no snapshot needing it, a range deletion goes with what it covers', async () => {
    const fs = new CrashFs();
    const { db } = await openMemory({ ...SMALL, level0Trigger: 1, levelBaseBytes: 1 << 20 }, fs);
    for (let i = 0; i < 100; i++) await db.put(keyOf(i), bytes(`value-${i}`));
    await db.flush();
    await db.delRange(keyOf(0), keyOf(100));
    await db.flush();
    await db.put(bytes('z'), bytes('last'));
    await db.flush();
    await db.compact();
    assert.deepEqual(db.stats().tables, [0, 1, 0, 0, 0, 0, 0]);
    assert.deepEqual(await entries(db), ['z=last']);
    // The one table left is format version 1: it holds no range deletion.
    const [name] = (await fs.readdir(DIR)).filter((n) => n.endsWith('.sst'));
    const file = await fs.open(`${DIR}/${name}`, 'read');
    const footer = new Uint8Array(48);
    await fs.pread(file, footer, (await fs.size(file)) - 48);
    await fs.close(file);
    assert.equal(footer[32], 1);
    await db.close();
  });

  it('level-0 tables that overlap nothing are moved down, not rewritten; overlapping ones are merged', async () => {
    for (const sequential of [true, false]) {
      const fs = new CrashFs();
      let { db } = await openMemory({ ...SMALL, levelBaseBytes: 1 << 20 }, fs);
      const expected: string[] = [];
      for (let table = 0; table < 6; table++) {
        for (let i = 0; i < 10; i++) {
          // Sequential: each table its own key range; else every table spans them all.
          const n = sequential ? table * 10 + i : i * 6 + table;
          await db.put(keyOf(n), bytes(`v${n}`));
          expected.push(`${text(keyOf(n))}=v${n}`);
        }
        await db.flush();
      }
      await db.compact();
      const stats = db.stats();
      assert.ok(stats.compactions >= 1, JSON.stringify(stats));
      if (sequential) {
        assert.equal(stats.compactedBytes, 0, 'moved, nothing rewritten');
        assert.ok(stats.tables[1]! >= 3, JSON.stringify(stats));
      } else {
        assert.ok(stats.compactedBytes > 0, 'merged');
      }
      expected.sort();
      assert.deepEqual(await entries(db), expected);
      assert.equal(text(await db.get(keyOf(13))), 'v13');
      await db.close();
      ({ db } = await openMemory(SMALL, fs));
      assert.deepEqual(await entries(db), expected);
      await db.close();
    }
  });

  it('a flush runs while a compaction is held up, and both edits land', async () => {
    // The fdatasync of the `hold`-th table file written waits for `release`.
    const crash = new CrashFs();
    const paths = new WeakMap<object, string>();
    let synced = 0;
    let hold = Number.POSITIVE_INFINITY;
    let held: (() => void) | undefined;
    const release = new Promise<void>((resolve) => {
      held = resolve;
    });
    let holding = false;
    const fs = new Proxy(crash, {
      get(target, name) {
        if (name === 'open') {
          return async (path: string, mode: never) => {
            const file = await target.open(path, mode);
            paths.set(file, path);
            return file;
          };
        }
        if (name === 'fdatasync') {
          return async (file: never) => {
            if (paths.get(file)?.endsWith('.sst') && ++synced === hold) {
              holding = true;
              await release;
            }
            return target.fdatasync(file);
          };
        }
        const value = Reflect.get(target, name, target) as unknown;
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    let { db } = await openMemory({ ...SMALL, levelBaseBytes: 1 << 20 }, fs);
    await db.put(bytes('a'), bytes('1'));
    await db.put(bytes('f'), bytes('f')); // the next table overlaps: merged, not moved
    await db.flush();
    // The next table synced is this flush's, the one after it the compaction's output.
    hold = synced + 2;
    await db.put(bytes('b'), bytes('2'));
    await db.flush();
    while (!holding) await tick();
    assert.equal(db.stats().compactions, 0);
    // Flushes go on while the compaction waits.
    for (const key of ['c', 'd', 'e']) {
      await db.put(bytes(key), bytes(key));
      await db.flush();
    }
    assert.equal(db.stats().compactions, 0);
    assert.equal(db.stats().tables[0], 5);
    held!();
    await db.compact();
    assert.ok(db.stats().compactions >= 1);
    const all = ['a=1', 'b=2', 'c=c', 'd=d', 'e=e', 'f=f'];
    assert.deepEqual(await entries(db), all);
    assert.equal(await tableFiles(crash), total(db));
    await db.close();
    ({ db } = await openMemory(SMALL, crash));
    assert.deepEqual(await entries(db), all);
    await db.close();
  });

  it('an iterator reads the tables it started on while compactions replace them, then lets go', async () => {
    const fs = new CrashFs();
    const { db } = await openMemory(SMALL, fs);
    for (let i = 0; i < 100; i++) await db.put(keyOf(i), bytes(`old-${i}`));
    await db.flush();
    const iterator = db.iterator();
    const first = await iterator.nextEntry();
    assert.equal(text(first![1]), 'old-0');
    for (let i = 0; i < 100; i++) await db.put(keyOf(i), bytes(`new-${i}`));
    await db.flush();
    await db.compact();
    assert.ok((await tableFiles(fs)) > total(db), 'the iterator holds replaced tables');
    let seen = 1;
    for await (const [, value] of iterator) {
      assert.match(text(value)!, /^old-/);
      seen++;
    }
    assert.equal(seen, 100);
    await db.compact(); // waits for the deletions too
    assert.equal(await tableFiles(fs), total(db), 'released tables are deleted');
    // An iterator abandoned mid-way keeps its tables until close.
    const abandoned = db.iterator();
    await abandoned.nextEntry();
    await db.close();
    assert.equal(await tableFiles(fs), total(db));
  });

  it('an iterator reads a table moved to the next level and then merged away by later compactions', async () => {
    const fs = new CrashFs();
    const options = { blockSize: 256 };
    let { db } = await openMemory({ ...options, level0Trigger: 10 }, fs);
    for (let i = 0; i < 200; i++) await db.put(keyOf(i), bytes(`old-${i}`));
    await db.flush();
    await db.close();
    // The open schedules a compaction of the level-0 table: a move to level
    // 1 (the same file), which installs its version after the iterator took its own.
    ({ db } = await openMemory({ ...options, level0Trigger: 1 }, fs));
    const iterator = db.iterator();
    assert.deepEqual(db.stats().tables.slice(0, 2), [1, 0]);
    await db.compact();
    assert.deepEqual(db.stats().tables.slice(0, 2), [0, 1], 'moved');
    // Merged with a new level-0 table: the moved table is dropped.
    for (let i = 0; i < 200; i += 7) await db.put(keyOf(i), bytes(`new-${i}`));
    await db.flush();
    await db.compact();
    let seen = 0;
    for await (const [, value] of iterator) assert.equal(text(value), `old-${seen++}`);
    assert.equal(seen, 200);
    await db.compact(); // waits for the deletions too
    assert.equal(await tableFiles(fs), total(db), 'released tables are deleted');
    await db.close();
  });

  it('writes wait for compaction past the level-0 stop threshold, and are slowed before it', async () => {
    const fs = new CrashFs();
    const { db } = await openMemory(
      { ...SMALL, level0Trigger: 1, level0SlowdownTrigger: 1, level0StopTrigger: 2 },
      fs,
    );
    const writes: Promise<void>[] = [];
    for (let i = 0; i < 200; i++) {
      writes.push(db.put(keyOf(i), new Uint8Array(50)));
      if (i % 20 === 0) await Promise.all(writes);
    }
    await Promise.all(writes);
    assert.ok(db.stats().tables[0]! <= 2, JSON.stringify(db.stats()));
    assert.equal((await entries(db)).length, 200);
    await db.close();
  });
});

describe('Lsm: block cache', () => {
  it('keeps blocks within its byte budget, least recently used out first', async () => {
    const cache = new BlockCache(1000);
    const block = (size: number) => ({
      contents: new Uint8Array(size),
      entriesEnd: 0,
      restarts: 1,
      pins: 0,
      dropped: false,
      path: '',
      offset: 0,
    });
    const held = (size: number) => size + BLOCK_OVERHEAD;
    cache.set(1, block(300));
    cache.set(2, block(300));
    assert.ok(cache.get(1) !== undefined); // 1 is now the most recent
    cache.set(3, block(300)); // evicts 2
    assert.equal(cache.get(2), undefined);
    assert.ok(cache.get(1) !== undefined && cache.get(3) !== undefined);
    cache.set(3, block(100)); // replaces 3
    assert.equal(cache.bytes, held(300) + held(100));
    cache.set(4, block(5000)); // larger than the cache: not kept
    assert.equal(cache.get(4), undefined);
    assert.equal(new BlockCache(0).bytes, 0);
  });

  it('agrees with a list in recency order through any gets and sets (property)', () => {
    const op = fc.record({
      set: fc.boolean(),
      key: fc.integer({ min: 0, max: 12 }),
      size: fc.integer({ min: 0, max: 400 }),
    });
    fc.assert(
      fc.property(fc.array(op, { maxLength: 200 }), (ops) => {
        const cache = new BlockCache(1500);
        let model: { key: number; size: number }[] = []; // most recent first
        for (const { set, key, size } of ops) {
          const at = model.findIndex((entry) => entry.key === key);
          if (!set) {
            const hit = cache.get(key);
            assert.equal(hit?.contents.length, at === -1 ? undefined : model[at]!.size);
            if (at !== -1) model = [model[at]!, ...model.filter((_, i) => i !== at)];
            continue;
          }
          cache.set(key, {
            contents: new Uint8Array(size),
            entriesEnd: 0,
            restarts: 1,
            pins: 0,
            dropped: false,
            path: '',
            offset: 0,
          });
          if (size + BLOCK_OVERHEAD > 1500) continue;
          model = [{ key, size }, ...model.filter((entry) => entry.key !== key)];
          let bytes = model.reduce((sum, entry) => sum + entry.size + BLOCK_OVERHEAD, 0);
          while (bytes > 1500) bytes -= model.pop()!.size + BLOCK_OVERHEAD;
          assert.equal(cache.bytes, bytes);
        }
        // The cache holds exactly the model's blocks (probed oldest first, so order is kept).
        for (const { key, size } of [...model].reverse()) {
          assert.equal(cache.get(key)?.contents.length, size);
        }
        for (let key = 0; key <= 12; key++) {
          if (!model.some((entry) => entry.key === key)) assert.equal(cache.get(key), undefined);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('reuses the buffers of evicted blocks, never one a reader still holds (property)', async () => {
    // A cache of a few blocks, so that gets and other iterators keep evicting
    // the blocks an iterator is scanning or has read ahead.
    const { db } = await openMemory({ blockSize: 256, blockCacheSize: 2000 });
    const count = 600;
    const keyOf = (i: number) => bytes(`key${String(i).padStart(5, '0')}`);
    const valueAt = (i: number) => `value of ${i} `.repeat(1 + (i % 4));
    for (let i = 0; i < count; i += 2) await db.put(keyOf(i), bytes(valueAt(i)));
    await db.flush();
    for (let i = 1; i < count; i += 2) await db.put(keyOf(i), bytes(valueAt(i)));
    await db.flush(); // two level-0 tables, interleaved
    for (let i = 0; i < count; i += 3) await db.put(keyOf(i), bytes(valueAt(i)));
    await db.flush();
    await db.compact();
    for (let i = 0; i < count; i += 5) await db.put(keyOf(i), bytes(valueAt(i)));
    await db.flush(); // a level-0 table over the compacted level
    const index = fc.integer({ min: 0, max: count - 1 });
    const op = fc.oneof(
      fc.record({ kind: fc.constant('open' as const), at: index }),
      fc.record({
        kind: fc.constant('next' as const),
        which: fc.nat(),
        steps: fc.integer({ min: 1, max: 30 }),
      }),
      fc.record({ kind: fc.constant('seek' as const), which: fc.nat(), at: index }),
      fc.record({ kind: fc.constant('get' as const), at: index }),
      fc.record({ kind: fc.constant('both' as const), which: fc.nat(), at: index }),
      fc.record({ kind: fc.constant('end' as const), which: fc.nat() }),
    );
    const checkGet = async (at: number) => assert.equal(text(await db.get(keyOf(at))), valueAt(at));
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 60 }), async (ops) => {
        const open: {
          iterator: ReturnType<Lsm['iterator']>;
          lower: number;
          next: number;
          ended?: boolean;
        }[] = [];
        const step = async (reader: (typeof open)[number]) => {
          const entry = await reader.iterator.nextEntry();
          // Once ended, an iterator stays ended, even after a seek.
          if (reader.ended || reader.next >= count) {
            reader.ended = true;
            return assert.equal(entry, undefined);
          }
          assert.deepEqual(entry && [text(entry[0]), text(entry[1])], [
            text(keyOf(reader.next)),
            valueAt(reader.next),
          ]);
          reader.next++;
        };
        for (const o of ops) {
          const reader =
            open.length === 0 || o.kind === 'open'
              ? undefined
              : open[(o as { which: number }).which % open.length]!;
          if (o.kind === 'open')
            open.push({ iterator: db.iterator({ gte: keyOf(o.at) }), lower: o.at, next: o.at });
          else if (o.kind === 'get') await checkGet(o.at);
          else if (reader === undefined) continue;
          else if (o.kind === 'next') for (let i = 0; i < o.steps; i++) await step(reader);
          else if (o.kind === 'seek') {
            reader.iterator.seek(keyOf(o.at));
            reader.next = Math.max(o.at, reader.lower); // a seek stays within the range
            await step(reader);
          } else if (o.kind === 'both') await Promise.all([step(reader), checkGet(o.at)]);
          else {
            await reader.iterator.return();
            open.splice(open.indexOf(reader), 1);
          }
        }
        for (const reader of open) await reader.iterator.return();
      }),
      { numRuns: 40 },
    );
    assert.ok(db.stats().blockCacheBytes <= 2000);
    await db.close();
  });

  it('counts the memory of open tables: filters and packed indexes, within the table bytes', async () => {
    const { db } = await openMemory({ blockSize: 256, bitsPerKey: 10 });
    assert.equal(db.stats().tableMemoryBytes, 0);
    for (let i = 0; i < 300; i++) await db.put(bytes(`key${i}`), bytes(`value ${i}`.repeat(4)));
    await db.flush();
    const { tableMemoryBytes, levelBytes } = db.stats();
    const tableBytes = levelBytes.reduce((a, b) => a + b, 0);
    // 300 keys × 10 bits of filter, and per block its last key and 12 bytes of handle.
    assert.ok(tableMemoryBytes >= (300 * 10) / 8 + 12 * Math.floor(tableBytes / 400));
    assert.ok(tableMemoryBytes < tableBytes / 4, `${tableMemoryBytes} of ${tableBytes}`);
    await db.close();
  });

  it('a compaction leaves the cache to the readers: no block of the tables it deleted, the working set kept', async () => {
    const fs = new FaultFs(new CrashFs());
    const options = { blockSize: 4096, blockCacheSize: 256 * 1024, level0Trigger: 2 };
    const { db } = await openMemory({ ...options, writeBufferSize: 1 << 20 }, fs as never);
    const key = (prefix: string, i: number) => bytes(`${prefix}${String(i).padStart(4, '0')}`);
    const value = (round: number) => bytes(`${'x'.repeat(40)}${round}`);
    // The working set: a level-1 table the later compaction does not touch.
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < 1500; i++) await db.put(key('w', i), value(round));
      await db.flush();
    }
    await db.compact();
    const workingSet = async () => {
      for (let i = 0; i < 1500; i++) assert.equal(text(await db.get(key('w', i))), text(value(1)));
    };
    await workingSet();
    const held = db.stats().blockCacheBytes;
    assert.ok(held > 64 * 1024, `${held}`);
    // Two overlapping level-0 tables larger than the cache, some of their blocks cached.
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < 3000; i++) await db.put(key('k', i), value(round));
      await db.flush();
      if (round > 0) continue;
      for (let i = 0; i < 3000; i += 500) await db.get(key('k', i));
      assert.ok(db.stats().blockCacheBytes > held);
    }
    await db.compact();
    assert.deepEqual(db.stats().tables.slice(0, 2), [0, 2]);
    assert.equal(db.stats().blockCacheBytes, held);
    fs.resetCounts();
    await workingSet();
    assert.equal(fs.count('preadSync') + fs.count('pread'), 0);
    assert.equal(text(await db.get(key('k', 2999))), text(value(1)));
    await db.close();
  });

  for (const blockCacheSize of [0, 4096]) {
    it(`a store with a ${blockCacheSize}-byte cache reads the same and stays within it`, async () => {
      const { db } = await openMemory({ blockCacheSize, blockSize: 256, level0Trigger: 50 });
      for (let i = 0; i < 300; i++) await db.put(bytes(`k${i}`), bytes(`value ${i}`));
      await db.flush();
      for (let round = 0; round < 2; round++) {
        for (let i = 0; i < 300; i++)
          assert.equal(text(await db.get(bytes(`k${i}`))), `value ${i}`);
      }
      const held = db.stats().blockCacheBytes;
      assert.ok(held <= blockCacheSize && (blockCacheSize === 0 || held > 0), `${held}`);
      await db.close();
    });
  }
});

describe('Lsm: block reads', () => {
  /** A store of one table of many small blocks, reopened (nothing cached) over a counting FaultFs. */
  async function oneTable(options: LsmOptions = {}): Promise<{ db: Lsm; fs: FaultFs }> {
    const fs = new FaultFs(new CrashFs());
    const { db: writer } = await openMemory({ blockSize: 256 }, fs as never);
    for (let i = 0; i < 400; i++)
      await writer.put(bytes(`k${String(i).padStart(3, '0')}`), bytes(`value ${i}`));
    await writer.flush();
    await writer.close();
    const { db } = await openMemory({ blockSize: 256, ...options }, fs as never);
    fs.resetCounts();
    return { db, fs };
  }
  const tableReads = (fs: FaultFs, method: 'pread' | 'preadSync') =>
    fs.calls.filter((c) => c.method === method && c.path.endsWith('.sst')).length;

  it('gets and seeks read a missed block synchronously; a scan reads ahead through the thread pool', async () => {
    const { db, fs } = await oneTable();
    assert.equal(text(await db.get(bytes('k123'))), 'value 123');
    assert.equal(tableReads(fs, 'preadSync'), 1);
    assert.equal(tableReads(fs, 'pread'), 0);
    const iterator = db.iterator();
    iterator.seek(bytes('k300'));
    assert.equal(text((await iterator.nextEntry())![0]), 'k300');
    await iterator.return();
    assert.equal(tableReads(fs, 'pread'), 0);
    assert.equal((await entries(db)).length, 400);
    assert.ok(tableReads(fs, 'pread') > 5, `${tableReads(fs, 'pread')} reads ahead`);
    await db.close();
  });

  it('a seek reads the block of the first source that has its key; the iteration then goes on over every source', async () => {
    const fs = new FaultFs(new CrashFs());
    const name = (i: number) => `k${String(i).padStart(3, '0')}`;
    const model = new Map<string, string>();
    const write = async (db: Lsm, i: number, value: string | undefined) => {
      if (value === undefined) {
        await db.del(bytes(name(i)));
        model.delete(name(i));
      } else {
        await db.put(bytes(name(i)), bytes(value));
        model.set(name(i), value);
      }
    };
    // Every key, pushed down to the deepest levels by a tiny level budget.
    const small = { blockSize: 256, levelBaseBytes: 1024, level0Trigger: 1 };
    let { db } = await openMemory(small, fs as never);
    for (let i = 0; i < 400; i++) await write(db, i, `old ${i}`);
    await db.flush();
    await db.compact();
    await db.close();
    // Then newer versions of some of them in level 1, in level 0 and in the memtable.
    ({ db } = await openMemory({ ...small, levelBaseBytes: 1 << 20 }, fs as never));
    for (let i = 0; i < 400; i += 4) await write(db, i, `level 1 ${i}`);
    await db.flush();
    await db.compact();
    await db.close();
    const large = { blockSize: 256, levelBaseBytes: 1 << 20 };
    ({ db } = await openMemory(large, fs as never));
    for (let i = 0; i < 400; i += 6) await write(db, i, i % 12 === 0 ? undefined : `level 0 ${i}`);
    await db.flush();
    for (let i = 1; i < 400; i += 10) await write(db, i, `memtable ${i}`);
    const tables = db.stats().tables;
    assert.equal(tables[0], 1, `${tables}`);
    assert.ok(tables.filter((count, level) => level > 0 && count > 0).length >= 2, `${tables}`);
    const keys = [...model.keys()].sort();
    const iterator = db.iterator();
    const after = (target: string) => keys.filter((k) => k >= target).slice(0, 3);
    for (let i = 0; i <= 400; i++) {
      // Keys present, deleted, and between keys (`k0055` sorts after `k005`).
      for (const target of [name(i), `${name(i)}5`]) {
        iterator.seek(bytes(target));
        const want = after(target).map((k) => `${k}=${model.get(k)}`);
        const got: string[] = [];
        // Not past the last key: an iterator that reached its end stays there.
        for (let n = 0; n < want.length; n++) {
          const entry = (await iterator.nextEntry())!;
          got.push(`${text(entry[0])}=${text(entry[1])}`);
        }
        assert.deepEqual(got, want, target);
      }
    }
    await iterator.return();
    await db.close();
    // Reopened, nothing cached: a seek to a key that only the deepest level has, and
    // one to a key whose newest version is in level 0, each read one block.
    ({ db } = await openMemory(large, fs as never));
    for (const [target, value] of [
      ['k003', 'old 3'],
      ['k006', 'level 0 6'],
    ] as const) {
      fs.resetCounts();
      const seeker = db.iterator();
      seeker.seek(bytes(target));
      const entry = await seeker.nextEntry();
      assert.deepEqual(entry && [text(entry[0]), text(entry[1])], [target, value]);
      assert.equal(tableReads(fs, 'preadSync') + tableReads(fs, 'pread'), 1, target);
      await seeker.return();
    }
    await db.close();
  });

  it('a compaction reads its inputs through the thread pool, never synchronously', async () => {
    const fs = new FaultFs(new CrashFs());
    const { db } = await openMemory({ blockSize: 256, level0Trigger: 2 }, fs as never);
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < 400; i++)
        await db.put(bytes(`k${String(i).padStart(3, '0')}`), bytes(`value ${round} ${i}`));
      await db.flush();
    }
    await db.compact();
    assert.deepEqual(db.stats().tables.slice(0, 2), [0, 1]);
    assert.equal(tableReads(fs, 'preadSync'), 0);
    assert.ok(tableReads(fs, 'pread') > 10, `${tableReads(fs, 'pread')} reads`);
    assert.equal(text(await db.get(bytes('k123'))), 'value 1 123');
    await db.close();
  });

  /** Two overlapping level-0 tables of 400 entries in 256-byte blocks; returns their paths. */
  async function twoInputs(db: Lsm, fs: CrashFs | FaultFs): Promise<string[]> {
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < 400; i++)
        await db.put(bytes(`k${String(i).padStart(3, '0')}`), bytes(`value ${round} ${i}`));
      await db.flush();
    }
    return tablePaths(fs);
  }

  /** The paths of the table files in DIR, in number order. */
  async function tablePaths(fs: CrashFs | FaultFs): Promise<string[]> {
    const names = (await fs.readdir(DIR)).filter((name) => name.endsWith('.sst'));
    return names.sort().map((name) => `${DIR}/${name}`);
  }

  /** Where the data blocks of the table at `path` end: its filter block's offset (in the footer). */
  async function dataEnd(fs: CrashFs | FaultFs, path: string): Promise<number> {
    const file = await fs.open(path, 'read');
    const footer = new Uint8Array(48);
    await fs.pread(file, footer, (await fs.size(file)) - 48);
    await fs.close(file);
    return getU64(footer, 12);
  }

  it('a compaction reads each input in windows of consecutive blocks, the next one read ahead, within compactionReadSize', async () => {
    /** Counts the reads of each file in flight; each read takes a turn of the event loop. */
    class InFlight extends FaultFs {
      readonly now = new Map<string, number>();
      readonly most = new Map<string, number>();
      override async pread(file: { path: string }, into: Uint8Array, position: number) {
        const count = (this.now.get(file.path) ?? 0) + 1;
        this.now.set(file.path, count);
        this.most.set(file.path, Math.max(count, this.most.get(file.path) ?? 0));
        try {
          await tick();
          return await super.pread(file as never, into, position);
        } finally {
          this.now.set(file.path, this.now.get(file.path)! - 1);
        }
      }
    }
    const readSize = 8192;
    const fs = new InFlight(new CrashFs());
    const options = { blockSize: 256, level0Trigger: 3, compactionReadSize: readSize };
    let { db } = await openMemory({ ...options, level0Trigger: 10 }, fs as never);
    await twoInputs(db, fs);
    await db.put(bytes('k000'), bytes('value 2 0'));
    await db.flush();
    await db.close();
    const inputs = await tablePaths(fs);
    const ends = await Promise.all(inputs.map((path) => dataEnd(fs, path)));
    fs.resetCounts();
    fs.most.clear();
    // The open schedules the merge of the three tables.
    ({ db } = await openMemory(options, fs as never));
    await db.compact();
    assert.deepEqual(db.stats().tables.slice(0, 2), [0, 1]);
    // Three runs, two windows each within the read size.
    const window = Math.floor(readSize / 6);
    let reads = 0;
    for (const [t, path] of inputs.entries()) {
      const calls = fs.calls.filter(
        (c) => c.method === 'pread' && c.path === path && (c.args[1] as number) < ends[t]!,
      );
      let next = 0;
      for (const [i, call] of calls.entries()) {
        const [into, position] = call.args as [Uint8Array, number];
        assert.equal(position, next, `${path}: read ${i} follows the one before it`);
        next = position + into.length;
        assert.ok(into.length <= window, `${path}: read ${i} of ${into.length} bytes`);
        if (i < calls.length - 1) {
          assert.ok(into.length > window / 2, `${path}: read ${i} of ${into.length} bytes`);
        }
      }
      assert.equal(next, ends[t], `${path}: every data block read once`);
      reads += calls.length;
      // The next window is in flight while one is merged, never more.
      assert.equal(fs.most.get(path), Math.min(calls.length, 2), path);
    }
    assert.ok(reads >= 4, `${reads} reads`);
    assert.equal(tableReads(fs, 'preadSync'), 0);
    const all = await entries(db);
    assert.equal(all.length, 400);
    assert.equal(all[0], 'k000=value 2 0');
    assert.equal(all[123], 'k123=value 1 123');
    await db.close();
  });

  it('a failed window read fails the compaction with WAL_IO naming the table; reads go on, a reopen compacts', async () => {
    const crash = new CrashFs();
    const fs = new FaultFs(crash);
    const options = { blockSize: 256, level0Trigger: 2, compactionReadSize: 4096 };
    let { db } = await openMemory({ ...options, level0Trigger: 10 }, fs as never);
    const [, second] = await twoInputs(db, fs);
    await db.close();
    // The second window of the second table (a table is opened without reading its data).
    fs.inject({
      method: 'pread',
      when: (call) =>
        call.path === second && (call.args[1] as number) > 0 && (call.args[1] as number) < 2048,
    });
    ({ db } = await openMemory(options, fs as never));
    await assert.rejects(
      db.compact(),
      isCode('WAL_IO', new RegExp(`reading table ${second} at [1-9]`)),
    );
    assert.equal((await entries(db)).length, 400);
    await assert.rejects(db.put(bytes('x'), bytes('y')), isCode('WAL_IO'));
    await db.close();
    ({ db } = await openMemory(options, fs as never));
    await db.compact();
    assert.deepEqual(db.stats().tables.slice(0, 2), [0, 1]);
    assert.equal(text(await db.get(bytes('k123'))), 'value 1 123');
    await db.close();
  });

  /** Small blocks and windows: two inputs of many windows each. */
  const WINDOWED = { blockSize: 256, level0Trigger: 2, compactionReadSize: 4096 };

  /** A closed store over a CrashFs holding {@link twoInputs} in small blocks; the second table's path. */
  async function closedTwoInputs(): Promise<{ fs: CrashFs; second: string }> {
    const fs = new CrashFs();
    const { db } = await openMemory({ ...WINDOWED, level0Trigger: 10 }, fs);
    const [, second] = await twoInputs(db, fs);
    await db.close();
    return { fs, second: second! };
  }

  it('a damaged block in a later window fails the compaction with WAL_CORRUPTION at its offset', async () => {
    const { fs, second } = await closedTwoInputs();
    const file = await fs.open(second, 'write');
    const damage = 3000;
    const byte = new Uint8Array(1);
    await fs.pread(file, byte, damage);
    byte[0] = byte[0]! ^ 0x20;
    await fs.pwrite(file, byte, damage);
    await fs.close(file);
    const { db } = await openMemory(WINDOWED, fs);
    const error = await db.compact().then(
      () => assert.fail('the compaction succeeded'),
      (error: unknown) => error as { code: string; offset: number; message: string },
    );
    assert.equal(error.code, 'WAL_CORRUPTION', String(error));
    assert.match(
      error.message,
      new RegExp(`table ${second} is damaged at offset ${error.offset}: block checksum`),
    );
    assert.ok(error.offset > damage && error.offset < damage + 300, `${error.offset}`);
    await db.close();
  });

  it('a table whose index names its blocks out of file order (every CRC valid) fails the open with WAL_CORRUPTION at its index; the file stays as it was', async () => {
    const { fs, second } = await closedTwoInputs();
    const file = await fs.open(second, 'write');
    const good = new Uint8Array(await fs.size(file));
    await fs.pread(file, good, 0);
    // Blocks 2 and 3 trade places in the file; the index follows them (keys in order).
    const swapped = relayout(good, (blocks) => {
      const moved = endToEnd([blocks[0]!, blocks[1]!, blocks[3]!, blocks[2]!, ...blocks.slice(4)]);
      const handles = [...moved.handles];
      [handles[2], handles[3]] = [handles[3]!, handles[2]!];
      return { data: moved.data, handles };
    });
    assert.equal(swapped.length, good.length);
    await fs.pwrite(file, swapped, 0);
    await fs.close(file);
    const indexAt = getU64(swapped, swapped.length - 48);
    await assert.rejects(openMemory(WINDOWED, fs), (error: unknown) => {
      const { code, offset, message } = error as { code: string; offset: number; message: string };
      assert.equal(code, 'WAL_CORRUPTION', String(error));
      assert.equal(offset, indexAt);
      assert.match(
        message,
        new RegExp(`table ${second} is damaged at offset ${indexAt}: index entry 2: data block at`),
      );
      return true;
    });
    const after = await fs.open(second, 'read');
    const kept = new Uint8Array(await fs.size(after));
    await fs.pread(after, kept, 0);
    await fs.close(after);
    assert.deepEqual(kept, swapped);
  });

  it('a window read in flight when the compaction fails is done before the compaction ends: no read after close()', async () => {
    /** Holds the reads of one file at positions in `held` (until it is closed, or 200 ms). */
    class Held extends FaultFs {
      path = '';
      readonly closed = new Set<string>();
      readonly late: string[] = [];
      #release: (() => void) | undefined;
      override async pread(file: { path: string }, into: Uint8Array, position: number) {
        if (file.path === this.path && position > 0 && position < 2048) {
          await new Promise<void>((resolve) => {
            this.#release = resolve;
            setTimeout(resolve, 200);
          });
          if (this.closed.has(file.path)) this.late.push(`${file.path} at ${position}`);
        }
        return super.pread(file as never, into, position);
      }
      override async close(file: { path: string }): Promise<void> {
        await super.close(file as never);
        this.closed.add(file.path);
        if (file.path === this.path) this.#release?.();
      }
    }
    const fs = new Held(new CrashFs());
    const options = { blockSize: 256, level0Trigger: 2, compactionReadSize: 4096 };
    let { db } = await openMemory({ ...options, level0Trigger: 10 }, fs as never);
    const [first, second] = await twoInputs(db, fs);
    await db.close();
    fs.closed.clear();
    // The first table's first window fails while the second's next window is held.
    fs.path = second!;
    fs.inject({ method: 'pread', when: (call) => call.path === first && call.args[1] === 0 });
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      ({ db } = await openMemory(options, fs as never));
      await assert.rejects(
        db.compact(),
        isCode('WAL_IO', new RegExp(`reading table ${first} at 0`)),
      );
      await db.close();
      await new Promise((resolve) => setTimeout(resolve, 250));
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
    assert.deepEqual(fs.late, []);
    assert.deepEqual(unhandled, []);
    ({ db } = await openMemory(options, fs as never));
    await db.compact();
    assert.equal((await entries(db)).length, 400);
    await db.close();
  });

  it('syncReads: false reads every block through pread', async () => {
    const { db, fs } = await oneTable({ syncReads: false });
    assert.equal(text(await db.get(bytes('k123'))), 'value 123');
    assert.equal((await entries(db, { gte: bytes('k200') })).length, 200);
    assert.equal(tableReads(fs, 'preadSync'), 0);
    assert.ok(tableReads(fs, 'pread') > 0);
    await db.close();
  });

  it('a failed or short synchronous read rejects that read (WAL_IO, WAL_CORRUPTION); the store goes on', async () => {
    const { db, fs } = await oneTable();
    const rule = fs.inject({ method: 'preadSync', fault: 'EIO' });
    await assert.rejects(db.get(bytes('k123')), isCode('WAL_IO'));
    rule.remove();
    const iterator = db.iterator();
    fs.inject({ method: 'preadSync', fault: 'EIO' });
    iterator.seek(bytes('k300'));
    await assert.rejects(iterator.nextEntry(), isCode('WAL_IO'));
    // A read that comes back short is retried until the block is whole.
    fs.inject({ method: 'preadSync', fault: { short: 10 } });
    assert.equal(text(await db.get(bytes('k123'))), 'value 123');
    assert.equal(text(await db.get(bytes('k001'))), 'value 1');
    await db.close();
  });
});

describe('Lsm: memory', () => {
  it('the log does not hold the memtable it was replayed into once the store is open', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const fs = new CrashFs();
    const { db } = await openMemory({}, fs);
    for (let i = 0; i < 50; i++) await db.put(bytes(`k${i}`), bytes(`v${i}`));
    await db.close();
    const recovered: { -readonly [K in keyof Recovered]?: Recovered[K] } = await recover(
      DIR,
      resolveOptions({ fs }),
    );
    assert.equal(recovered.memtable!.count, 50);
    const memtable = new WeakRef(recovered.memtable!);
    delete recovered.memtable; // as a flush lets go of it
    await new Promise((resolve) => setTimeout(resolve, 10));
    gc();
    assert.equal(memtable.deref(), undefined);
    await recovered.wal!.close();
    await recovered.manifest!.close();
    for (const live of recovered.tables!) await live.table.close();
    await recovered.lock!.release();
  });

  it("the manifest log stages edits in small chunks: its staging is full past 64 KiB, the data log's is not", async () => {
    const fs = new CrashFs();
    const recovered = await recover(DIR, resolveOptions({ fs }));
    try {
      // Appended and not yet written (no turn of the event loop in between).
      const big = new Uint8Array(70 * 1024);
      recovered.manifest.append(big);
      assert.throws(() => recovered.manifest.append(new Uint8Array(1)), isCode('WAL_BUSY'));
      recovered.wal.append(big);
      recovered.wal.append(new Uint8Array(1));
      await recovered.manifest.drained();
    } finally {
      await recovered.wal.close();
      await recovered.manifest.close();
      await recovered.lock.release();
    }
  });
});

describe('Lsm: close() and writes held back by a stall', () => {
  /**
   * A file system whose fsyncs of the store's directory wait for `held`: a
   * flush waits there once its table is written (the logs' own directories
   * are not held).
   */
  class HeldSyncDir extends FaultFs {
    held: Promise<void> | undefined;
    override async syncDir(path: string): Promise<void> {
      if (path === DIR) await this.held;
      return super.syncDir(path);
    }
  }

  /**
   * A store whose memtable is full while the flush of the one before it
   * waits for `fs.held` to settle: every write called now is held back.
   * That flush brings level 0 to its stop threshold: once it is done, the
   * writes wait for a compaction too.
   */
  async function stalled(fs: HeldSyncDir): Promise<{ db: Lsm; release: () => void }> {
    let release!: () => void;
    const db = await Lsm.open(DIR, {
      fs,
      writeBufferSize: 1024,
      // A large log segment: no segment is created (and its directory fsynced) meanwhile.
      segmentSize: 1 << 20,
      level0Trigger: 2,
      level0SlowdownTrigger: 2,
      level0StopTrigger: 2,
    });
    await db.put(bytes('0'), bytes('first table'));
    await db.flush();
    fs.held = new Promise((resolve) => {
      release = resolve;
    });
    await db.put(bytes('a'), new Uint8Array(1024)); // frozen; its flush waits
    await db.put(bytes('b'), new Uint8Array(1024)); // full
    assert.equal(db.stats().flushing, true);
    return { db, release };
  }

  /** Notes the order in which `writes` settle; `all`: their outcomes. */
  function track(writes: readonly Promise<void>[]): {
    settled: number[];
    all: Promise<PromiseSettledResult<void>[]>;
  } {
    const settled: number[] = [];
    const all = Promise.allSettled(writes.map((write, i) => write.finally(() => settled.push(i))));
    return { settled, all };
  }

  it('every write held back when close() is called is written, in call order; later writes are refused (property)', async () => {
    const write = fc.record({
      key: fc.integer({ min: 0, max: 5 }),
      size: fc.integer({ min: 0, max: 700 }),
      kind: fc.constantFrom('put', 'del', 'batch'),
      sync: fc.boolean(),
    });
    await fc.assert(
      fc.asyncProperty(fc.array(write, { minLength: 1, maxLength: 12 }), async (plan) => {
        const fs = new HeldSyncDir(new CrashFs());
        const { db, release } = await stalled(fs);
        const model = new Map<string, string | undefined>();
        const writes = plan.map(({ key, size, kind, sync }, i) => {
          const name = `k${key}`;
          const value = `${i}:`.padEnd(size + 2, 'x');
          if (kind === 'del') {
            model.set(name, undefined);
            return db.del(bytes(name), { sync });
          }
          model.set(name, value);
          if (kind === 'put') return db.put(bytes(name), bytes(value), { sync });
          return db.batch([{ type: 'put', key: bytes(name), value: bytes(value) }], { sync });
        });
        const { settled, all } = track(writes);
        await tick();
        assert.deepEqual(settled, [], 'the writes are held back');
        const closing = db.close();
        await assert.rejects(db.put(bytes('late'), bytes('v')), isCode('WAL_CLOSED'));
        release();
        await closing;
        for (const outcome of await all) assert.equal(outcome.status, 'fulfilled');
        assert.deepEqual(settled, [...writes.keys()], 'settled in call order');
        const reopened = await Lsm.open(DIR, { fs });
        for (const [name, value] of model) {
          assert.equal(text(await reopened.get(bytes(name))), value, name);
        }
        assert.equal((await reopened.get(bytes('a')))?.length, 1024);
        assert.equal((await reopened.get(bytes('b')))?.length, 1024);
        assert.equal(await reopened.get(bytes('late')), undefined);
        await reopened.close();
      }),
      { numRuns: 25 },
    );
  });

  it('writes held at the level-0 stop threshold are written by close(), after the compaction they wait for', async () => {
    const fs = new CrashFs();
    const options = { fs, segmentSize: 4096, level0Trigger: 10 };
    const key = (i: number) => bytes(`key${String(i).padStart(4, '0')}`);
    const value = (i: number) => bytes(`${i}`.padEnd(100, '.'));
    let db = await Lsm.open(DIR, options);
    for (let i = 0; i < 20; i++) {
      await db.put(key(i), value(i));
      if (i % 10 === 9) await db.flush();
    }
    await db.close();
    // Two level-0 tables, the stop threshold: the open schedules a
    // compaction; the writes wait for it. They fill memtables, whose flushes
    // bring level 0 to the threshold again while the store closes: the
    // compactions that clears it run then.
    const stop = {
      ...options,
      writeBufferSize: 1024,
      level0Trigger: 2,
      level0SlowdownTrigger: 2,
      level0StopTrigger: 2,
    };
    db = await Lsm.open(DIR, stop);
    assert.equal(db.stats().tables[0], 2);
    const writes: Promise<void>[] = [];
    for (let i = 20; i < 80; i++) writes.push(db.put(key(i), value(i)));
    const { settled, all } = track(writes);
    await db.close();
    for (const outcome of await all) assert.equal(outcome.status, 'fulfilled');
    assert.deepEqual(settled, [...writes.keys()], 'settled in call order');
    db = await Lsm.open(DIR, stop);
    for (let i = 0; i < 80; i++) assert.deepEqual(await db.get(key(i)), value(i), `key ${i}`);
    await db.close();
  });

  it('a flush() called before close() completes before it; no file-system call after close() resolves', async () => {
    /** Also delays the creation of table files: a flush() starts late. */
    class SlowCreate extends HeldSyncDir {
      override async open(path: string, mode: Parameters<FaultFs['open']>[1]) {
        if (path.endsWith('.sst') && mode === 'createExclusive') {
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
        return super.open(path, mode);
      }
    }
    const fs = new SlowCreate(new CrashFs());
    const { db, release } = await stalled(fs);
    const writes = [0, 1, 2].map((i) => db.put(bytes(`k${i}`), bytes(`v${i}`)));
    const flushed = db.flush();
    const closing = db.close();
    await assert.rejects(db.flush(), isCode('WAL_CLOSED'));
    release();
    await closing;
    const calls = fs.count();
    await Promise.all(writes);
    await flushed;
    await new Promise((resolve) => setTimeout(resolve, 150));
    assert.equal(fs.count(), calls, 'nothing touches the directory once close() resolved');
    const reopened = await Lsm.open(DIR, { fs });
    // The flush covered the held writes: they are in a table, not the log.
    assert.equal(reopened.stats().memtableBytes, 0);
    for (const i of [0, 1, 2]) assert.equal(text(await reopened.get(bytes(`k${i}`))), `v${i}`);
    await reopened.close();
  });

  it('writes held back when the store fails reject with its failure; close() still closes', async () => {
    const fs = new HeldSyncDir(new CrashFs());
    const { db, release } = await stalled(fs);
    const writes = [0, 1, 2].map((i) => db.put(bytes(`k${i}`), bytes(`v${i}`)));
    const { settled, all } = track(writes);
    await tick();
    assert.deepEqual(settled, []);
    // The flush's directory fsync fails.
    fs.inject({ method: 'syncDir', fault: 'EIO', when: (call) => call.path === DIR });
    const closing = db.close();
    release();
    await closing;
    for (const outcome of await all) {
      assert.equal(outcome.status, 'rejected');
      isCode('WAL_IO')((outcome as PromiseRejectedResult).reason);
    }
    const reopened = await Lsm.open(DIR, { fs });
    assert.equal((await reopened.get(bytes('b')))?.length, 1024, 'acknowledged writes are kept');
    assert.equal(await reopened.get(bytes('k0')), undefined);
    await reopened.close();
  });
});

describe('Lsm: close() and readers of dropped tables', () => {
  const key = (i: number) => bytes(`key${String(i).padStart(4, '0')}`);
  const options = { segmentSize: 4096, level0Trigger: 1, blockSize: 256 };

  /** A store whose iterator holds a table a compaction has since dropped. */
  async function heldDropped(fs: CrashFs | FaultFs) {
    const db = await Lsm.open(DIR, { ...options, fs });
    for (let i = 0; i < 100; i++) await db.put(key(i), bytes(`old ${i}`));
    await db.flush();
    await db.compact();
    const iterator = db.iterator();
    for (let i = 0; i < 100; i += 7) await db.put(key(i), bytes(`new ${i}`));
    await db.flush();
    await db.compact();
    return { db, iterator };
  }

  const tableFiles = async (fs: CrashFs | FaultFs) =>
    (await fs.readdir(DIR)).filter((name) => name.endsWith('.sst')).sort();

  /** Reopens the store: no orphan to delete, every table there, the newest values read. */
  async function reopensWhole(crash: CrashFs): Promise<void> {
    const fs = new FaultFs(crash);
    const db = await Lsm.open(DIR, { ...options, fs });
    assert.equal(fs.count('unlink'), 0, 'no orphan left');
    for (let i = 0; i < 100; i++) {
      assert.equal(text(await db.get(key(i))), i % 7 === 0 ? `new ${i}` : `old ${i}`);
    }
    await db.close();
  }

  it('a reader let go after close() resolved touches no file', async () => {
    const crash = new CrashFs();
    const fs = new FaultFs(crash);
    const { db, iterator } = await heldDropped(fs);
    assert.equal((await tableFiles(fs)).length, 2);
    await db.close();
    const after = fs.calls.length;
    await iterator.return();
    await tick();
    assert.deepEqual(
      fs.calls.slice(after).map((call) => `${call.method} ${call.path}`),
      [],
    );
    assert.equal((await tableFiles(fs)).length, 1, 'close() deleted the dropped table');
    await reopensWhole(crash);
  });

  it('a reader let go while close() closes the tables: the dropped table is deleted before close() resolves', async () => {
    /** Lets the iterator go at the first file close() closes; unlinks late. */
    class LateRelease extends CrashFs {
      release: (() => void) | undefined;
      override async close(file: Parameters<CrashFs['close']>[0]): Promise<void> {
        const release = this.release;
        this.release = undefined;
        release?.();
        return super.close(file);
      }
      override async unlink(path: string): Promise<void> {
        await new Promise((resolve) => setTimeout(resolve, 20));
        return super.unlink(path);
      }
    }
    const fs = new LateRelease();
    const { db, iterator } = await heldDropped(fs);
    fs.release = () => void iterator.return();
    await db.close();
    assert.equal((await tableFiles(fs)).length, 1);
    await tick();
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal((await tableFiles(fs)).length, 1);
    await reopensWhole(fs);
  });

  it('open tolerates an orphan gone between the listing and its deletion', async () => {
    /** Lists a table file that is not there (deleted by another hand meanwhile). */
    class Phantom extends CrashFs {
      phantom = false;
      override async readdir(path: string): Promise<string[]> {
        const names = await super.readdir(path);
        return this.phantom && path === DIR ? [...names, '00000000000000000099.sst'] : names;
      }
    }
    const fs = new Phantom();
    let { db } = await openMemory({}, fs);
    await db.put(bytes('k'), bytes('v'));
    await db.flush();
    await db.close();
    fs.phantom = true;
    ({ db } = await openMemory({}, fs));
    assert.equal(text(await db.get(bytes('k'))), 'v');
    await db.close();
  });
});

describe('Lsm: what is not a store, locks, closed handles', () => {
  const root = tempRoot('lsm-test-');

  it('a store opened twice is refused with WAL_LOCKED, and reopens after close', async () => {
    const path = join(root.path, 'db');
    const db = await Lsm.open(path);
    await db.put(bytes('k'), bytes('v'), { sync: true });
    await assert.rejects(Lsm.open(path), isCode('WAL_LOCKED'));
    await db.close();
    const again = await Lsm.open(path);
    assert.equal(text(await again.get(bytes('k'))), 'v');
    await again.close();
    assert.deepEqual((await readdir(path)).sort(), ['LSM', 'manifest', 'wal']);
  });

  it('its logs record their application names: another name is refused both ways (LSM-FORMAT §7, §8)', async () => {
    const path = join(root.path, 'named');
    const db = await Lsm.open(path);
    await db.put(bytes('k'), bytes('v'), { sync: true });
    await db.close();
    for (const [dir, name] of [
      ['wal', '@wal/lsm'],
      ['manifest', '@wal/lsm manifest'],
    ] as const) {
      const log = await Wal.open(join(path, dir), { readOnly: true });
      assert.equal(log.application, name);
      await log.close();
      // Another program opening the store's log by its own name is refused.
      await assert.rejects(
        Wal.open(join(path, dir), { application: '@wal/txn' }),
        isCode('WAL_NOT_A_LOG'),
      );
    }
    // A store whose data log is another program's is refused, nothing changed.
    const other = join(root.path, 'other');
    const theirs = await Lsm.open(other);
    await theirs.close();
    await rm(join(other, 'wal'), { recursive: true });
    const log = await Wal.open(join(other, 'wal'), { application: 'my-queue' });
    await log.append(bytes('not a batch'), { wait: 'durable' });
    await log.close();
    const before = await tree(other);
    await assert.rejects(Lsm.open(other), isCode('WAL_NOT_A_LOG', /"my-queue"/));
    assert.deepEqual(await tree(other), before);
    const again = await Lsm.open(path);
    assert.equal(text(await again.get(bytes('k'))), 'v');
    await again.close();
  });

  it('a file, or a directory holding other things, is refused and left untouched', async () => {
    const file = join(root.path, 'file');
    await writeFile(file, 'hello');
    await assert.rejects(Lsm.open(file), isCode('WAL_NOT_A_LOG', /not an @wal\/lsm store/));
    assert.equal(await readFile(file, 'utf8'), 'hello');

    const foreign = join(root.path, 'foreign');
    await mkdir(foreign);
    await writeFile(join(foreign, 'notes.txt'), 'mine');
    await assert.rejects(Lsm.open(foreign), isCode('WAL_NOT_A_LOG', /holding files/));
    assert.deepEqual(await readdir(foreign), ['notes.txt']);

    const fake = join(root.path, 'fake');
    await mkdir(fake);
    await writeFile(join(fake, 'LSM'), 'something else');
    await assert.rejects(Lsm.open(fake), isCode('WAL_NOT_A_LOG', /marker/));
    assert.deepEqual(await readdir(fake), ['LSM']);

    const markerDir = join(root.path, 'marker-dir');
    await mkdir(join(markerDir, 'LSM'), { recursive: true });
    await assert.rejects(
      Lsm.open(markerDir),
      isCode('WAL_NOT_A_LOG', /whose LSM is a directory, not an @wal\/lsm store/),
    );
    assert.deepEqual(await readdir(markerDir), ['LSM']);
    assert.deepEqual(await readdir(join(markerDir, 'LSM')), []);

    const empty = join(root.path, 'empty');
    await mkdir(empty);
    const db = await Lsm.open(empty);
    await db.close();
  });

  it('openers racing on a new path: exactly one opens, the others get WAL_LOCKED', async () => {
    for (let round = 0; round < 15; round++) {
      const path = join(root.path, `race-${round}`);
      const results = await Promise.allSettled([Lsm.open(path), Lsm.open(path), Lsm.open(path)]);
      const opened = results.flatMap((result) =>
        result.status === 'fulfilled' ? [result.value] : [],
      );
      assert.equal(
        opened.length,
        1,
        `round ${round}: ${results.map((r) => r.status === 'rejected' && String(r.reason))}`,
      );
      for (const result of results) {
        if (result.status === 'rejected')
          assert.equal(errorCode(result.reason), 'WAL_LOCKED', String(result.reason));
      }
      await opened[0]!.close();
    }
  });

  it("a lock protocol's leftovers do not make a new directory foreign; other files are named", async () => {
    const path = join(root.path, 'db');
    await mkdir(path);
    for (const name of ['lock.0a1b2c.tmp', 'lock.break', 'lock.break.3d4e.tmp'])
      await writeFile(join(path, name), '');
    const db = await Lsm.open(path);
    await db.close();
    const foreign = join(root.path, 'foreign');
    await mkdir(foreign);
    for (const name of ['lock.tmp', 'lockx', 'a.txt', 'b.txt'])
      await writeFile(join(foreign, name), '');
    await assert.rejects(
      Lsm.open(foreign),
      isCode(
        'WAL_NOT_A_LOG',
        /holding files that are not a store \(a\.txt, b\.txt, lock\.tmp and 1 more\)/,
      ),
    );
  });

  it('a lock or lock.break that is not a lock file of ours makes a directory foreign: refused, nothing changed', async () => {
    for (const [name, marker, message] of [
      [
        'lock.break',
        undefined,
        /holding files that are not a store \(lock\.break \(not a lock file of ours\)\)/,
      ],
      [
        'lock',
        undefined,
        /holding files that are not a store \(lock \(not a lock file of ours\)\)/,
      ],
      ['lock.break', '@wal/l', /LSM file is not an @wal\/lsm marker/],
    ] as const) {
      const path = join(root.path, `${name}-${marker === undefined ? 'alone' : 'cut-marker'}`);
      await mkdir(path);
      await writeFile(join(path, name), 'my precious notes\n');
      if (marker !== undefined) await writeFile(join(path, 'LSM'), marker);
      const before = await tree(path);
      await assert.rejects(Lsm.open(path), isCode('WAL_NOT_A_LOG', message));
      assert.deepEqual(await tree(path), before, path);
    }
  });

  it('a marker cut short by a crash during creation is completed', async () => {
    const path = join(root.path, 'db');
    await mkdir(path);
    await writeFile(join(path, 'LSM'), '@wal/l');
    const db = await Lsm.open(path);
    await db.close();
    assert.equal(await readFile(join(path, 'LSM'), 'utf8'), '@wal/lsm 1\n');
  });

  it('a marker a power loss left as NULs (its size kept, its bytes lost) during creation is completed', async () => {
    for (const [i, left] of [
      Buffer.alloc(11),
      Buffer.from('@wal/\0\0\0\0\0\0'),
      Buffer.alloc(3),
    ].entries()) {
      const path = join(root.path, `zeros${i}`);
      await mkdir(path);
      await writeFile(join(path, 'LSM'), left);
      const db = await Lsm.open(path);
      await db.close();
      assert.equal(await readFile(join(path, 'LSM'), 'utf8'), '@wal/lsm 1\n');
    }
    // Not when anything else is there, nor NULs past the marker's length, nor a byte off.
    for (const [i, [left, other]] of (
      [
        [Buffer.alloc(11), 'data'],
        [Buffer.alloc(12), undefined],
        [Buffer.from('@wal/\0\0x\0\0\0'), undefined],
      ] as const
    ).entries()) {
      const path = join(root.path, `refused${i}`);
      await mkdir(path);
      await writeFile(join(path, 'LSM'), left);
      if (other !== undefined) await writeFile(join(path, other), 'x');
      const before = await tree(path);
      await assert.rejects(Lsm.open(path), isCode('WAL_NOT_A_LOG', /not an @wal\/lsm marker/));
      assert.deepEqual(await tree(path), before);
    }
  });

  it('a marker left under its temporary name by a crash during creation (any bytes, no longer than the marker) is a creation to finish; anything else by that name is refused', async () => {
    for (const [i, [left, marker]] of (
      [
        [Buffer.alloc(11), undefined],
        [Buffer.from([0xde, 0xad, 0xbe, 0xef, 1, 2]), undefined],
        [Buffer.alloc(0), undefined],
        [Buffer.from('@wal/lsm 1\n'), Buffer.from('@wal/\0\0\0')],
      ] as const
    ).entries()) {
      const path = join(root.path, `temp${i}`);
      await mkdir(path);
      await writeFile(join(path, 'LSM.tmp'), left);
      if (marker !== undefined) await writeFile(join(path, 'LSM'), marker);
      const db = await Lsm.open(path);
      await db.put(bytes('k'), bytes('v'));
      await db.close();
      assert.equal(await readFile(join(path, 'LSM'), 'utf8'), '@wal/lsm 1\n');
      assert.ok(!(await readdir(path)).includes('LSM.tmp'), `${i}: the temporary marker is gone`);
    }
    // Not beside anything else, nor longer than the marker, nor a directory.
    for (const [i, [make, other]] of (
      [
        [(at: string) => writeFile(at, Buffer.alloc(11)), 'data'],
        [(at: string) => writeFile(at, Buffer.alloc(12)), undefined],
        [(at: string) => mkdir(at), undefined],
        [(at: string) => Promise.resolve(execFileSync('mkfifo', [at])), undefined],
      ] as const
    ).entries()) {
      const path = join(root.path, `temp-refused${i}`);
      await mkdir(path);
      await make(join(path, 'LSM.tmp'));
      if (other !== undefined) await writeFile(join(path, other), 'x');
      const before = await tree(path);
      await assert.rejects(Lsm.open(path), isCode('WAL_NOT_A_LOG'));
      assert.deepEqual(await tree(path), before);
    }
  });

  it('a new marker is written under its temporary name, synced, then renamed: a leftover temporary hard link is never written through', async () => {
    const path = join(root.path, 'linked');
    await mkdir(path);
    const outside = join(root.path, 'outside');
    await writeFile(outside, 'keep');
    await link(outside, join(path, 'LSM.tmp'));
    const db = await Lsm.open(path);
    await db.close();
    assert.equal(await readFile(outside, 'utf8'), 'keep');
    assert.equal(await readFile(join(path, 'LSM'), 'utf8'), '@wal/lsm 1\n');
  });

  /** Every file under `dir` (relative path) with a hash of its contents, directories as `dir/`. */
  async function tree(dir: string): Promise<Record<string, string>> {
    const out: Record<string, string> = {};
    for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
      const at = join(entry.parentPath, entry.name);
      out[relative(dir, at) + (entry.isDirectory() ? '/' : '')] = entry.isDirectory()
        ? ''
        : !entry.isFile()
          ? 'not a regular file' // a FIFO: reading it would wait for a writer
          : createHash('sha256')
              .update(await readFile(at))
              .digest('hex');
    }
    return out;
  }

  /** A closed store at `path` with keys in a table and more only in its data log. */
  async function flushedStore(path: string, flush = true): Promise<void> {
    const db = await Lsm.open(path);
    for (let i = 0; i < 3000; i++) await db.put(bytes(`k${i}`), bytes(`v${i}`));
    if (flush) await db.flush();
    for (let i = 0; i < 10; i++) await db.put(bytes(`late${i}`), bytes('x'));
    await db.close();
  }

  for (const [what, damage, message] of [
    [
      'a missing manifest',
      (path: string) => rm(join(path, 'manifest'), { recursive: true }),
      /manifest .* is missing/,
    ],
    [
      'a manifest replaced by an empty directory',
      async (path: string) => {
        await rm(join(path, 'manifest'), { recursive: true });
        await mkdir(join(path, 'manifest'));
      },
      /manifest .* is missing/,
    ],
    [
      'a missing data log',
      (path: string) => rm(join(path, 'wal'), { recursive: true }),
      /data log .* is missing/,
    ],
  ] as const) {
    it(`${what} is refused with WAL_CORRUPTION; no file changes`, async () => {
      const path = join(root.path, 'db');
      await flushedStore(path);
      assert.ok((await readdir(path)).some((name) => name.endsWith('.sst')));
      await damage(path);
      const before = await tree(path);
      await assert.rejects(Lsm.open(path), isCode('WAL_CORRUPTION', message));
      assert.deepEqual(await tree(path), before);
    });
  }

  it('a data log of another program, or a damaged one, is refused before any orphan table is deleted; no file changes', async () => {
    const orphan = '00000000000000000099.sst';
    for (const [what, damage, code] of [
      [
        'another program',
        async (path: string) => {
          await rm(join(path, 'wal'), { recursive: true });
          const log = await Wal.open(join(path, 'wal'), { application: 'my-queue' });
          await log.append(bytes('not a batch'), { wait: 'durable' });
          await log.close();
        },
        'WAL_NOT_A_LOG',
      ],
      [
        'a damaged batch',
        async (path: string) => {
          const log = await Wal.open(join(path, 'wal'), { application: '@wal/lsm' });
          await log.append(bytes('not a batch'), { wait: 'durable' });
          await log.close();
        },
        'WAL_CORRUPTION',
      ],
    ] as const) {
      const path = join(root.path, what.replaceAll(' ', '-'));
      await flushedStore(path);
      await damage(path);
      await writeFile(join(path, orphan), 'left by a flush cut short');
      const before = await tree(path);
      await assert.rejects(Lsm.open(path), isCode(code), what);
      assert.deepEqual(await tree(path), before, what);
    }
  });

  it('a missing data log of a store never flushed is refused; no file changes', async () => {
    const path = join(root.path, 'db');
    await flushedStore(path, false);
    await rm(join(path, 'wal'), { recursive: true });
    const before = await tree(path);
    await assert.rejects(Lsm.open(path), isCode('WAL_CORRUPTION', /data log .* is missing/));
    assert.deepEqual(await tree(path), before);
  });

  it('a creation cut short after the marker, the manifest or the data log was created opens', async () => {
    const complete = async (path: string): Promise<void> => {
      const db = await Lsm.open(path);
      await db.put(bytes('k'), bytes('v'));
      await db.close();
      const again = await Lsm.open(path);
      assert.equal(text(await again.get(bytes('k'))), 'v');
      await again.close();
    };
    // The marker only.
    const marker = join(root.path, 'marker');
    await mkdir(marker);
    await writeFile(join(marker, 'LSM'), '@wal/lsm 1\n');
    await complete(marker);
    // The marker and empty directories (their log creation cut short).
    const dirs = join(root.path, 'dirs');
    await mkdir(join(dirs, 'manifest'), { recursive: true });
    await mkdir(join(dirs, 'wal'));
    await writeFile(join(dirs, 'LSM'), '@wal/lsm 1\n');
    await complete(dirs);
    // The marker, then a manifest log without an edit, then a data log.
    for (const logs of [['manifest'], ['manifest', 'wal']]) {
      const path = join(root.path, logs.join('-'));
      await mkdir(path);
      await writeFile(join(path, 'LSM'), '@wal/lsm 1\n');
      for (const name of logs) await (await Wal.open(join(path, name))).close();
      await complete(path);
    }
  });

  it('every method of a closed store rejects with WAL_CLOSED', async () => {
    const { db } = await openMemory();
    const iterator = db.iterator();
    await db.close();
    await db.close();
    const calls: [string, () => unknown][] = [
      ['put', () => db.put(bytes('k'), bytes('v'))],
      ['del', () => db.del(bytes('k'))],
      ['batch', () => db.batch([{ type: 'del', key: bytes('k') }])],
      ['empty batch', () => db.batch([])],
      ['get', () => db.get(bytes('k'))],
      ['flush', () => db.flush()],
      ['compactManifest', () => db.compactManifest()],
      ['compact', () => db.compact()],
      ['iterator', () => db.iterator()],
      ['snapshot', () => db.snapshot()],
      ['iterator.nextEntry', () => iterator.nextEntry()],
    ];
    for (const [name, call] of calls) {
      await assert.rejects(async () => call(), isCode('WAL_CLOSED'), name);
    }
  });

  it('invalid arguments are TypeError/RangeError with a code', async () => {
    const { db } = await openMemory();
    const bad: [() => unknown, string][] = [
      [() => db.put('k' as never, bytes('v')), 'ERR_INVALID_ARG_TYPE'],
      [() => db.put(bytes('k'), 1 as never), 'ERR_INVALID_ARG_TYPE'],
      [() => db.del(null as never), 'ERR_INVALID_ARG_TYPE'],
      [() => db.put(bytes('k'), bytes('v'), 'sync' as never), 'ERR_INVALID_ARG_TYPE'],
      [() => db.put(bytes('k'), bytes('v'), { sync: 1 as never }), 'ERR_INVALID_ARG_TYPE'],
      [() => db.batch('x' as never), 'ERR_INVALID_ARG_TYPE'],
      [() => db.batch([null as never]), 'ERR_INVALID_ARG_TYPE'],
      [() => db.batch([{ type: 'put', key: bytes('k') } as never]), 'ERR_INVALID_ARG_TYPE'],
      [() => db.batch([{ type: 'merge', key: bytes('k') } as never]), 'ERR_INVALID_ARG_VALUE'],
      [() => db.delRange('a' as never, bytes('b')), 'ERR_INVALID_ARG_TYPE'],
      [() => db.batch([{ type: 'delRange', start: bytes('a') } as never]), 'ERR_INVALID_ARG_TYPE'],
      [() => db.get('k' as never), 'ERR_INVALID_ARG_TYPE'],
      [() => db.get(bytes('k'), 5 as never), 'ERR_INVALID_ARG_TYPE'],
      [() => db.iterator(null as never), 'ERR_INVALID_ARG_TYPE'],
      [() => db.iterator({ gt: 'a' as never }), 'ERR_INVALID_ARG_TYPE'],
      [() => db.iterator({ limit: 1.5 }), 'ERR_OUT_OF_RANGE'],
      [() => db.iterator().seek('a' as never), 'ERR_INVALID_ARG_TYPE'],
      [() => Lsm.open('' as never), 'ERR_INVALID_ARG_TYPE'],
      [() => Lsm.open('/x', null as never), 'ERR_INVALID_ARG_TYPE'],
      [() => Lsm.open('/x', { fs: new CrashFs(), blockSize: 1 }), 'ERR_OUT_OF_RANGE'],
      [() => Lsm.open('/x', { fs: new CrashFs(), compactionReadSize: 1000 }), 'ERR_OUT_OF_RANGE'],
      [
        () => Lsm.open('/x', { fs: new CrashFs(), writeBufferSize: 'big' as never }),
        'ERR_INVALID_ARG_TYPE',
      ],
      [() => Lsm.open('/x', { fs: new CrashFs(), syncReads: 1 as never }), 'ERR_INVALID_ARG_TYPE'],
      [
        () => Lsm.open('/x', { fs: new CrashFs(), blockingSync: 'yes' as never }),
        'ERR_INVALID_ARG_TYPE',
      ],
    ];
    for (const [call, code] of bad)
      await assert.rejects(async () => call(), isCode(code), String(call));
    assert.equal(db.sequence, 0);
    await db.close();
  });

  it('a bad segmentSize or fs is refused before anything is created: the empty directory stays empty', async () => {
    const path = join(root.path, 'empty');
    await mkdir(path);
    const bad: [LsmOptions, string][] = [
      [{ segmentSize: 1 }, 'ERR_OUT_OF_RANGE'],
      [{ segmentSize: 4095 }, 'ERR_OUT_OF_RANGE'],
      [{ segmentSize: 2 ** 31 }, 'ERR_OUT_OF_RANGE'],
      [{ segmentSize: 1.5 }, 'ERR_OUT_OF_RANGE'],
      [{ segmentSize: 'abc' as never }, 'ERR_INVALID_ARG_TYPE'],
      [{ fs: {} as never }, 'ERR_INVALID_ARG_TYPE'],
      [{ fs: 'disk' as never }, 'ERR_INVALID_ARG_TYPE'],
      [{ fs: { ...new CrashFs(), lock: undefined } as never }, 'ERR_INVALID_ARG_TYPE'],
    ];
    for (const [options, code] of bad) {
      await assert.rejects(Lsm.open(path, options), isCode(code), JSON.stringify(options));
      assert.deepEqual(await readdir(path), [], JSON.stringify(options));
    }
    const db = await Lsm.open(path, { segmentSize: 4096 });
    await db.close();
  });
});

describe('Lsm: blocking commits (blockingSync)', () => {
  it('blockingSync: the data log writes and syncs on the calling thread; without it, through the thread pool', async () => {
    for (const blockingSync of [true, false]) {
      const fs = new FaultFs(new CrashFs());
      const { db } = await openMemory({ blockingSync }, fs as never);
      // The first write creates the log's segment: that one takes the thread pool.
      await db.put(bytes('a'), bytes('1'));
      fs.resetCounts();
      await db.put(bytes('b'), bytes('2'));
      await db.put(bytes('c'), bytes('3'), { sync: true });
      const logCalls = (method: string) =>
        fs.calls.filter((c) => c.method === method && c.path.includes('/wal/')).length;
      if (blockingSync) {
        // Each write's record, then the sync (preallocation's zeros may add a write).
        assert.ok(logCalls('pwriteSync') >= 2, `${logCalls('pwriteSync')} pwriteSync`);
        assert.equal(logCalls('fdatasyncSync'), 1);
        assert.equal(logCalls('pwrite') + logCalls('pwriteDurable') + logCalls('fdatasync'), 0);
      } else {
        assert.equal(logCalls('pwriteSync') + logCalls('fdatasyncSync'), 0);
        assert.ok(logCalls('pwrite') + logCalls('pwriteDurable') >= 2);
      }
      await db.close();
      const reopened = await Lsm.open(DIR, { fs, segmentSize: 4096 });
      assert.equal(text(await reopened.get(bytes('a'))), '1');
      assert.equal(text(await reopened.get(bytes('b'))), '2');
      assert.equal(text(await reopened.get(bytes('c'))), '3');
      await reopened.close();
    }
  });

  for (const [method, code] of [
    ['pwriteSync', 'WAL_WRITE_FAILED'],
    ['fdatasyncSync', 'WAL_FAILED'],
  ] as const) {
    it(`blockingSync: EIO on the data log's ${method} rejects the writes of that turn with its code, shows none of them, refuses later ones; a reopen keeps what was durable`, async () => {
      const crash = new CrashFs();
      const fs = new FaultFs(crash);
      const { db } = await openMemory({ blockingSync: true }, fs as never);
      await db.put(bytes('a'), bytes('1'), { sync: true });
      const injection = fs.inject({
        method,
        fault: 'EIO',
        persistent: true,
        when: (call) => call.path.includes('/wal/'),
      });
      const results = await Promise.allSettled([
        db.put(bytes('b'), bytes('2'), { sync: true }),
        db.put(bytes('c'), bytes('3')),
      ]);
      injection.remove();
      // The turn's records went as one write: both writes fail (after a
      // failed sync the log stops, its written records unknown on disk).
      for (const result of results) {
        assert.equal(result.status, 'rejected');
        if (result.status === 'rejected') assert.equal(result.reason.code, code);
      }
      assert.equal(await db.get(bytes('b')), undefined);
      assert.equal(await db.get(bytes('c')), undefined);
      await assert.rejects(db.put(bytes('d'), bytes('4')));
      await db.close().catch(() => undefined);
      const reopened = await Lsm.open(DIR, { fs: crash, segmentSize: 4096 });
      assert.equal(text(await reopened.get(bytes('a'))), '1');
      await reopened.close();
    });
  }
});

describe('Lsm: blocking commits let the event loop turn', () => {
  // On disk: the flush's table I/O completes through the event loop, as in use.
  const root = tempRoot('lsm-blocking-');

  it('blockingSync: a timer set before a loop of awaited puts fires while the loop goes on', async () => {
    // A memtable that the loop does not fill: no write stall makes it wait.
    const db = await Lsm.open(join(root.path, 'db'), {
      blockingSync: true,
      writeBufferSize: 16 * 1024 * 1024,
    });
    // The first write creates the log's segment, through the thread pool.
    await db.put(bytes('first'), bytes('0'));
    let fired = false;
    const timer = setTimeout(() => {
      fired = true;
    }, 1);
    let puts = 0;
    while (!fired && puts < 20_000) {
      await db.put(bytes(`k${puts % 1000}`), bytes(`v${puts}`));
      puts++;
    }
    clearTimeout(timer);
    assert.ok(fired, `the timer waited through ${puts} puts`);
    assert.equal(db.stats().flushing, false);
    await db.close();
  });

  it('blockingSync: a timer fires while two loops of awaited durable puts go on together', async () => {
    const db = await Lsm.open(join(root.path, 'db'), {
      blockingSync: true,
      writeBufferSize: 16 * 1024 * 1024,
    });
    await db.put(bytes('first'), bytes('0'), { sync: true });
    let fired = 0;
    let timer: NodeJS.Timeout | undefined;
    const arm = (): void => {
      timer = setTimeout(() => {
        fired++;
        if (fired < 3) arm();
      }, 1);
    };
    arm();
    let puts = 0;
    const loop = async (): Promise<void> => {
      while (fired < 3 && puts < 20_000) {
        await db.put(bytes(`k${puts % 1000}`), bytes(`v${puts}`), { sync: true });
        puts++;
      }
    };
    try {
      await Promise.all([loop(), loop()]);
    } finally {
      clearTimeout(timer);
      await db.close();
    }
    assert.equal(fired, 3, `the timer fired ${fired} times in ${puts} puts`);
  });

  it('blockingSync: a timer waits for at most a durable write or two when each fdatasync outlasts the turn interval', async () => {
    /** Each fdatasync of the log takes 12 ms, on this thread: more than the millisecond between turns. */
    class SlowSyncFs extends CrashFs {
      override fdatasyncSync(file: Parameters<CrashFs['fdatasyncSync']>[0]): void {
        const until = performance.now() + 12;
        while (performance.now() < until);
        super.fdatasyncSync(file);
      }
    }
    const db = await Lsm.open(DIR, { fs: new SlowSyncFs(), blockingSync: true });
    await db.put(bytes('first'), bytes('0'), { sync: true });
    let fired = false;
    const timer = setTimeout(() => {
      fired = true;
    }, 1);
    let puts = 0;
    while (!fired && puts < 40) {
      await db.put(bytes(`k${puts}`), bytes(`v${puts}`), { sync: true });
      puts++;
    }
    clearTimeout(timer);
    // Counted every 16 writes instead, the clock would let 16 fdatasyncs pass.
    assert.ok(fired && puts <= 3, `the timer waited through ${puts} durable puts`);
    await db.close();
  });

  it('blockingSync: concurrent writes resolve in call order, turns of the event loop included', async () => {
    const db = await Lsm.open(join(root.path, 'db'), {
      blockingSync: true,
      writeBufferSize: 16 * 1024 * 1024,
    });
    await db.put(bytes('first'), bytes('0'));
    // Rounds of 32 concurrent writes until the event loop has turned 11
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
        Array.from({ length: 32 }, (_, i) =>
          db.put(bytes(`k${i}`), bytes(`v${rounds}`)).then(() => order.push(i)),
        ),
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
    await db.close();
  });

  it('blockingSync: a flush goes on while a loop of awaited puts does, not only once a write stall makes it wait', async () => {
    // A memtable that the loop does not fill: no write stall makes it wait.
    const db = await Lsm.open(join(root.path, 'db'), {
      blockingSync: true,
      writeBufferSize: 64 * 1024 * 1024,
    });
    const value = new Uint8Array(100).fill(7);
    const key = (i: number) => bytes(`key${String(i).padStart(8, '0')}`);
    for (let i = 0; i < 2000; i++) await db.put(key(i), value);
    let flushed = false;
    const flushing = db.flush().then(() => {
      flushed = true;
    });
    // Bounded by time, not by puts (a slow disk's syncs take their time);
    // the memtable must never fill, or a write stall would wait for the
    // flush and make this pass without the loop letting it run.
    const until = performance.now() + 20_000;
    let puts = 0;
    while (!flushed && performance.now() < until) {
      await db.put(key(2000 + puts), value);
      puts++;
      if (puts % 256 === 0) assert.ok(db.stats().memtableBytes < 64 * 1024 * 1024, 'filled');
    }
    assert.ok(flushed, `the flush waited through ${puts} puts`);
    await flushing;
    assert.deepEqual(db.stats().tables[0], 1);
    assert.equal(db.stats().flushing, false);
    await db.close();
  });
});

describe('Lsm: damage and faults', () => {
  for (const [method, fault, code] of [
    ['pwrite', 'ENOSPC', 'WAL_NO_SPACE'],
    ['fdatasync', 'EIO', 'WAL_IO'],
  ] as const) {
    it(`${fault} on ${method} during a compaction: clear error, reads go on, a reopen has everything`, async () => {
      const crash = new CrashFs();
      const fs = new FaultFs(crash);
      const options = { fs, segmentSize: 4096, level0Trigger: 10 };
      let db = await Lsm.open(DIR, options);
      for (let i = 0; i < 30; i++) {
        // Spread over the key range: the tables overlap, so they are merged (not moved).
        const n = (i * 7) % 30;
        await db.put(bytes(`k${String(n).padStart(2, '0')}`), bytes(`v${n}`));
        if (i % 10 === 9) await db.flush();
      }
      await db.close();
      const injection = fs.inject({
        method,
        fault,
        persistent: true,
        when: (call) => call.path.endsWith('.sst'),
      });
      // The open schedules the compaction level 0 now needs; it fails.
      db = await Lsm.open(DIR, { ...options, level0Trigger: 2 });
      await assert.rejects(db.compact(), isCode(code));
      assert.equal((await entries(db)).length, 30);
      await assert.rejects(db.put(bytes('x'), bytes('y')), isCode(code));
      await db.close();
      injection.remove();
      db = await Lsm.open(DIR, { ...options, level0Trigger: 2 });
      await db.compact();
      assert.deepEqual(db.stats().tables.slice(0, 2), [0, 1]);
      assert.equal((await entries(db)).length, 30);
      const files = (await crash.readdir(DIR)).filter((name) => name.endsWith('.sst'));
      assert.equal(files.length, 1, `${files}`);
      await db.close();
    });
  }

  it('a creation cut short at any file-system call, by a process crash or a power loss, opens', async function () {
    // One open per call of a store's creation, each crashed and reopened.
    this.timeout(60_000);
    for (let n = 1; ; n++) {
      const crash = new CrashFs();
      const fs = new FaultFs(crash);
      let calls = 0;
      fs.inject({ when: () => (++calls >= n ? 'EIO' : undefined) });
      try {
        await (await Lsm.open(DIR, { fs, segmentSize: 4096 })).close();
      } catch {
        // Cut short at call n.
      }
      if (calls < n) break; // The creation went through without reaching call n.
      const after = [...crash.crashStates({ limit: 24 })].map((state) => state.fs());
      after.push(crash.processCrash());
      for (const [i, next] of after.entries()) {
        const label = `cut at call ${n}, state ${i}`;
        const db = await Lsm.open(DIR, { fs: next, segmentSize: 4096 });
        await db.put(bytes('k'), bytes('v'), { sync: true });
        await db.close();
        const again = await Lsm.open(DIR, { fs: next, segmentSize: 4096 });
        assert.equal(text(await again.get(bytes('k'))), 'v', label);
        await again.close();
      }
    }
  });

  /**
   * A process killed while it creates the store (an open, then a close), at
   * the first file-system call `kill` picks (that call and every later one
   * fail), then a second process that opens the store, writes `k` durably
   * and closes: every state a power loss could leave then holds `k`.
   * Resolves false, checking nothing, when `kill` picked no call.
   */
  async function killedCreationThenDurableWrite(
    kill: (call: FsCall) => boolean,
    label: string,
  ): Promise<boolean> {
    const crash = new CrashFs();
    const fs = new FaultFs(crash);
    let next: CrashFs | undefined;
    fs.inject({
      when: (call) => {
        // Killed at this call: it and every later one never reach the file
        // system (they fail on the dead process). Failing a sync that ran
        // would be a writeback error, which CrashFs keeps from ever being
        // made durable; a kill is not one.
        if (next === undefined && kill(call)) next = crash.processCrash();
        return next === undefined ? undefined : 'EIO';
      },
    });
    try {
      await (await Lsm.open(DIR, { fs, segmentSize: 4096 })).close();
    } catch {
      // Killed.
    }
    if (next === undefined) return false;
    const db = await Lsm.open(DIR, { fs: next, segmentSize: 4096 });
    await db.put(bytes('k'), bytes('v'), { sync: true });
    await db.close();
    let count = 0;
    for (const state of next.crashStates()) {
      count++;
      let got: string | undefined;
      try {
        const again = await Lsm.open(DIR, { fs: state.fs(), segmentSize: 4096 });
        got = text(await again.get(bytes('k')));
        await again.close();
      } catch (error) {
        got = String(error);
      }
      assert.equal(got, 'v', `${label}, power-loss state ${count}`);
    }
    return true;
  }

  it('a store directory created by a process killed before it fsynced the parent is made durable by the next open', async () => {
    assert.ok(
      await killedCreationThenDurableWrite(
        (call) => call.method === 'syncDir' && call.path === '/',
        'killed at the parent fsync',
      ),
    );
  });

  it('a marker being written by a process killed before it synced it is written again by the next open', async () => {
    assert.ok(
      await killedCreationThenDurableWrite(
        (call) => call.method === 'fdatasync' && call.path === `${DIR}/LSM.tmp`,
        'killed at the marker fdatasync',
      ),
    );
  });

  it('a marker renamed into place by a process killed before the directory fsync is made durable by the next open', async () => {
    let renamed = false;
    assert.ok(
      await killedCreationThenDurableWrite((call) => {
        if (call.method === 'rename' && call.path === `${DIR}/LSM.tmp`) renamed = true;
        return renamed && call.method === 'syncDir' && call.path === DIR;
      }, 'killed at the directory fsync after the rename'),
    );
  });

  it('a creation killed at any file-system call: the next open makes it durable before a durable write is acknowledged', async () => {
    let n = 1;
    // Until the creation goes through without reaching call n.
    while (await killedCreationThenDurableWrite((call) => call.index >= n, `killed at call ${n}`))
      n++;
    assert.ok(n > 20, `${n}`);
  });

  it('removes orphan tables at open, and leaves other names alone', async () => {
    const fs = await storeWithOneTable();
    const orphan = await fs.open(`${DIR}/00000000000000000099.sst`, 'create');
    await fs.close(orphan);
    const other = await fs.open(`${DIR}/README`, 'create');
    await fs.close(other);
    const { db } = await openMemory({}, fs);
    const names = (await fs.readdir(DIR)).sort();
    assert.deepEqual(names, ['00000000000000000001.sst', 'LSM', 'README', 'manifest', 'wal']);
    assert.equal(text(await db.get(bytes('k'))), 'v');
    await db.close();
  });

  it('an entry of unknown kind (CRC intact) fails a compaction with WAL_CORRUPTION naming the table', async () => {
    const fs = await storeWithOneTable();
    let { db } = await openMemory({ level0Trigger: 10 }, fs);
    await db.put(bytes('k'), bytes('w'));
    await db.flush();
    await db.close();
    // Table 1's only block: entry (3 one-byte lengths, key k ‖ trailer, value),
    // restart array; then the type byte and the CRC-32C of contents ‖ type.
    const path = `${DIR}/00000000000000000001.sst`;
    const file = await fs.open(path, 'write');
    const block = new Uint8Array(21 + 5);
    await fs.pread(file, block, 0);
    assert.equal(block[4], 1, 'the kind byte of a value');
    block[4] = 7;
    putU32(block, 22, crc32c(block.subarray(0, 22)));
    await fs.pwrite(file, block, 0);
    await fs.close(file);
    ({ db } = await openMemory({ level0Trigger: 2 }, fs));
    await assert.rejects(
      db.compact(),
      isCode('WAL_CORRUPTION', /00000000000000000001\.sst.*unknown kind 7/),
    );
    await db.close();
  });

  it('a damaged or missing table fails the open with WAL_CORRUPTION naming it', async () => {
    const fs = await storeWithOneTable();
    const path = `${DIR}/00000000000000000001.sst`;
    const file = await fs.open(path, 'write');
    await fs.pwrite(file, bytes('X'), (await fs.size(file)) - 1);
    await fs.close(file);
    await assert.rejects(openMemory({}, fs), isCode('WAL_CORRUPTION', /00000000000000000001\.sst/));
    await fs.unlink(path);
    await assert.rejects(openMemory({}, fs), isCode('WAL_CORRUPTION', /missing/));
  });

  it('a damaged table found by a read rejects that read with WAL_CORRUPTION', async () => {
    const fs = new CrashFs();
    const { db } = await openMemory({}, fs);
    await db.put(bytes('k'), bytes('v'));
    await db.flush();
    const file = await fs.open(`${DIR}/00000000000000000001.sst`, 'write');
    await fs.pwrite(file, bytes('X'), 3);
    await fs.close(file);
    await assert.rejects(db.get(bytes('k')), isCode('WAL_CORRUPTION', /offset/));
    await assert.rejects(entries(db), isCode('WAL_CORRUPTION'));
    await db.close();
  });

  it('a damaged manifest edit or log batch fails the open with WAL_CORRUPTION', async () => {
    for (const log of ['manifest', 'wal']) {
      const fs = new CrashFs();
      const { db } = await openMemory({}, fs);
      await db.close();
      const wal = await Wal.open(`${DIR}/${log}`, { fs });
      await wal.append(bytes('\u00ff garbage'), { wait: 'durable' });
      await wal.close();
      await assert.rejects(
        openMemory({}, fs),
        isCode('WAL_CORRUPTION', new RegExp(`${log}.*offset`)),
      );
    }
  });

  for (const [method, fault, code] of [
    ['pwrite', 'ENOSPC', 'WAL_NO_SPACE'],
    ['fdatasync', 'EIO', 'WAL_IO'],
    ['syncDir', 'EIO', 'WAL_IO'],
    ['open', 'EIO', 'WAL_IO'],
  ] as const) {
    it(`${fault} on ${method} during a flush: clear error, reads go on, a reopen has everything`, async () => {
      const crash = new CrashFs();
      const fs = new FaultFs(crash);
      let db = await Lsm.open(DIR, { fs, segmentSize: 4096 });
      for (let i = 0; i < 10; i++) await db.put(bytes(`k${i}`), bytes(`v${i}`), { sync: true });
      fs.inject({
        method,
        fault,
        when: (call) => call.path.endsWith('.sst') || (method === 'syncDir' && call.path === DIR),
      });
      await assert.rejects(db.flush(), isCode(code));
      assert.equal(text(await db.get(bytes('k3'))), 'v3');
      assert.equal((await entries(db)).length, 10);
      await assert.rejects(db.put(bytes('x'), bytes('y')), isCode(code));
      await assert.rejects(db.flush(), isCode(code));
      await assert.rejects(db.compactManifest(), isCode(code));
      await db.close();
      db = await Lsm.open(DIR, { fs, segmentSize: 4096 });
      assert.equal((await entries(db)).length, 10);
      assert.deepEqual(
        (await crash.readdir(DIR)).filter((name) => name.endsWith('.sst')),
        [],
      );
      await db.flush();
      await db.close();
    });
  }
});
