/**
 * docs/LSM-FORMAT.md §1–§8: the test vectors byte for byte, round trips of
 * random tables, and damage detection (every single-bit flip of a table is
 * caught or harmless; lengths are checked before use).
 */
import assert from 'node:assert/strict';
import { crc32c } from '@wal/core';
import type { FsFile } from '@wal/store';
import { CrashFs } from '@wal/store/testing';
import fc from 'fast-check';
import { decodeBatch, encodeBatch, RecordSlab } from '../src/batch.js';
import {
  BlockBuilder,
  BlockScanner,
  checkBlock,
  checkDataBlock,
  checkKeyBuffer,
  decodeBlock,
  KEY_BUFFER_CAP,
  KEY_EXPANSION,
  writeBlock,
} from '../src/block.js';
import { BlockCache } from '../src/block-cache.js';
import { bloomHash, buildFilter, filterMayContain } from '../src/bloom.js';
import {
  compareInternal,
  getU32,
  getU64,
  internalKey,
  KIND_DELETE,
  KIND_RANGE_DELETE,
  KIND_VALUE,
  Malformed,
  OUTPUT_KEEP_LIMIT,
  Output,
  putVarint,
  Reader,
  trailerKind,
  trailerSequence,
  userKeyOf,
} from '../src/coding.js';
import { TableCursor } from '../src/cursor.js';
import { applyEdit, decodeEdit, emptyState, encodeEdit, snapshotEdit } from '../src/manifest.js';
import { buildTable, Table, type TableLayout, tableScannerKeyBuffer } from '../src/table.js';
import { bytes, fromHex, isCode, toHex } from './helpers.js';
import { dataBlocks, endToEnd, type Placement, type RawBlock, relayout } from './relayout.js';

const LAYOUT: TableLayout = { blockSize: 4096, restartInterval: 16, bitsPerKey: 10 };

const TABLE_VECTOR = `
00 0d 03 61 70 70 6c 65 01 02 00 00 00 00 00 00 72 65 64 02 0d 00 72 69
63 6f 74 00 01 00 00 00 00 00 00 00 00 00 00 01 00 00 00 00 57 b4 ea 4a
10 10 50 05 01 01 a1 0b 07 00 7d da 05 6f 00 0f 02 61 70 72 69 63 6f 74
00 01 00 00 00 00 00 00 00 2b 00 00 00 00 01 00 00 00 00 03 df b3 46 3e
00 00 00 00 00 00 00 1c 00 00 00 30 00 00 00 00 00 00 00 09 00 00 00 02
00 00 00 00 00 00 00 01 00 00 00 ce f3 c7 55 40 77 61 6c 2f 73 73 74`;

const RANGE_TABLE_VECTOR = `
00 0d 03 61 70 70 6c 65 01 02 00 00 00 00 00 00 72 65 64 00 00 00 00 01
00 00 00 00 11 07 c3 b0 10 10 10 00 01 01 01 01 07 00 2a 49 5d 4a 00 09
01 62 02 03 00 00 00 00 00 00 64 00 00 00 00 01 00 00 00 00 8c 3c 87 71
00 0d 02 61 70 70 6c 65 01 02 00 00 00 00 00 00 00 1b 00 00 00 00 01 00
00 00 00 70 85 b0 43 2e 00 00 00 00 00 00 00 15 00 00 00 48 00 00 00 00
00 00 00 1a 00 00 00 20 00 00 00 00 00 00 00 09 00 00 00 02 00 00 00 00
00 00 00 02 00 00 00 cf b7 99 f1 40 77 61 6c 2f 73 73 74`;

async function tableFrom(data: Uint8Array): Promise<{ fs: CrashFs; path: string }> {
  const fs = new CrashFs();
  const path = '/t.sst';
  const file = await fs.open(path, 'create');
  await fs.pwrite(file, data, 0);
  await fs.close(file);
  return { fs, path };
}

describe('LSM-FORMAT §1 encodings', () => {
  it('internal keys match the vectors and sort newest first', () => {
    assert.equal(toHex(internalKey(bytes('a'), 1, KIND_VALUE)), '61 01 01 00 00 00 00 00 00');
    const key = internalKey(bytes('ab'), 0x0102030405, KIND_DELETE);
    assert.equal(toHex(key), '61 62 00 05 04 03 02 01 00 00');
    assert.equal(trailerSequence(key), 0x0102030405);
    assert.equal(trailerKind(key), KIND_DELETE);
    assert.deepEqual(userKeyOf(key), bytes('ab'));
    const max = internalKey(bytes('x'), Number.MAX_SAFE_INTEGER, KIND_VALUE);
    assert.equal(trailerSequence(max), Number.MAX_SAFE_INTEGER);
    assert.ok(compareInternal(internalKey(bytes('a'), 5, 1), internalKey(bytes('a'), 4, 1)) < 0);
    assert.ok(compareInternal(internalKey(bytes('a'), 1, 1), internalKey(bytes('ab'), 9, 1)) < 0);
  });

  it('internal keys of any length compare as their user keys, then newest first', () => {
    // Short keys and keys sharing a long prefix (compared natively past 64 bytes).
    const prefix = new Uint8Array(100).fill(7);
    const userKey = fc.oneof(
      fc.uint8Array({ maxLength: 20 }),
      fc
        .tuple(fc.integer({ min: 60, max: 100 }), fc.uint8Array({ maxLength: 20 }))
        .map(([n, tail]) => Uint8Array.from([...prefix.subarray(0, n), ...tail])),
    );
    fc.assert(
      fc.property(
        userKey,
        userKey,
        fc.integer({ min: 0, max: 2 ** 40 }),
        fc.integer({ min: 0, max: 2 ** 40 }),
        fc.boolean(),
        (a, b, sa, sb, same) => {
          const bUser = same ? a : b;
          const expected =
            Buffer.compare(a, bUser) !== 0 ? Buffer.compare(a, bUser) : Math.sign(sb - sa);
          const c = compareInternal(internalKey(a, sa, 1), internalKey(bUser, sb, 1));
          assert.equal(Math.sign(c), expected);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('varints round-trip up to 2^53 - 1 and reject longer or larger ones', () => {
    fc.assert(
      fc.property(fc.maxSafeNat(), (value) => {
        const out = new Uint8Array(10);
        const end = putVarint(out, 0, value);
        const reader = new Reader(out, 0, end);
        assert.equal(reader.varint('v'), value);
        assert.ok(reader.done);
      }),
    );
    assert.throws(() => new Reader(fromHex('80 80'), 0, 2).varint('v'), Malformed);
    assert.throws(
      () => new Reader(fromHex('ff ff ff ff ff ff ff ff ff'), 0, 9).varint('v'),
      Malformed,
    );
    // 2^53 exactly: 7 bits per byte, 8 bytes.
    assert.throws(() => new Reader(fromHex('80 80 80 80 80 80 80 10'), 0, 8).varint('v'), /above/);
    assert.throws(() => getU64(fromHex('00 00 00 00 00 00 20 00'), 0), /above/);
    assert.throws(() => new Reader(fromHex('05 61'), 0, 2).lengthPrefixed('k'), Malformed);
  });
});

describe("Output (the builders' buffer)", () => {
  it('keeps its buffer across clear() for usual contents, lets go of one grown for a huge value', () => {
    const out = new Output(4096);
    out.bytes(new Uint8Array(300 * 1024).fill(1)); // a compaction's pending blocks, say
    const usual = out.capacity;
    assert.ok(usual >= 300 * 1024 && usual <= OUTPUT_KEEP_LIMIT);
    out.clear();
    assert.equal(out.capacity, usual, 'no reallocation for usual contents');
    out.bytes(new Uint8Array(OUTPUT_KEEP_LIMIT + 1).fill(2)); // one huge value
    assert.ok(out.capacity > OUTPUT_KEEP_LIMIT);
    out.clear();
    assert.equal(out.capacity, 4096, 'back to its initial size');
    assert.equal(out.length, 0);
    out.u32(0x01020304);
    assert.deepEqual([...out.view()], [4, 3, 2, 1]);
  });
});

describe('LSM-FORMAT §3 blocks', () => {
  it('an empty block is one restart at 0', () => {
    assert.deepEqual(decodeBlock(fromHex('00 00 00 00 01 00 00 00'), 8), { keys: [], values: [] });
  });

  it('rejects damaged restart arrays and lengths', () => {
    const cases = [
      '00 00 00',
      '00 00 00 00 00 00 00 00', // zero restarts
      '00 00 00 00 09 00 00 00', // more restarts than fit
      '01 00 00 00 01 00 00 00', // restart[0] is not 0 (and past the entries)
      // entry: shared 1 with no previous key
      '01 01 00 61 00 00 00 00 01 00 00 00',
      // entry: value length past the end
      '00 09 09 61 01 00 00 00 00 00 00 00 00 00 00 00 01 00 00 00',
    ];
    for (const hex of cases) assert.throws(() => decodeBlock(fromHex(hex), 8), Malformed, hex);
  });
});

describe('LSM-FORMAT §3 data blocks read encoded', () => {
  const key = (user: string, sequence: number) => internalKey(bytes(user), sequence, KIND_VALUE);
  const block = (keys: Uint8Array[], restartInterval = 2): Uint8Array => {
    const builder = new BlockBuilder(restartInterval);
    for (const k of keys) builder.add(k, bytes('v'), k.length, 0, 1);
    return builder.finish().slice();
  };
  const keys = [key('a', 3), key('a', 2), key('ab', 9), key('b', 1), key('c', 5)];

  it('checks what decodeBlock checks, and order, emptiness and the last key', () => {
    const last = key('z', 1);
    const cases = [
      '00 00 00',
      '00 00 00 00 00 00 00 00', // zero restarts
      '00 00 00 00 09 00 00 00', // more restarts than fit
      '00 00 00 00 01 00 00 00', // no entry
      '01 01 00 61 00 00 00 00 01 00 00 00', // shared 1 with no previous key
      '00 09 09 61 01 00 00 00 00 00 00 00 00 00 00 00 01 00 00 00', // value past the end
      '00 02 00 61 62 00 00 00 00 01 00 00 00', // a 2-byte key, shorter than 8
    ];
    for (const hex of cases) {
      assert.throws(() => checkDataBlock(fromHex(hex), 8, last), Malformed, hex);
    }
    const good = block(keys);
    assert.equal(checkDataBlock(good, 8, keys.at(-1)!).restarts, 3);
    assert.throws(() => checkDataBlock(good, 8, last), /does not end at its index key/);
    const swapped = block([keys[1]!, keys[0]!]);
    assert.throws(() => checkDataBlock(swapped, 8, keys[0]!), /out of order at entry 1/);
    const restartInside = good.slice();
    restartInside[restartInside.length - 8] = 3; // restart 2 points inside entry 0
    assert.throws(() => checkDataBlock(restartInside, 8, keys.at(-1)!), Malformed);
    const sharedAtRestart = block([key('a', 3), key('a', 2)], 9).slice();
    // Make the second entry a restart point: it shares a prefix.
    const withRestart = new Uint8Array(sharedAtRestart.length + 4);
    const entriesEnd = sharedAtRestart.length - 8;
    withRestart.set(sharedAtRestart.subarray(0, entriesEnd + 4));
    withRestart.set([3 + 9 + 1, 0, 0, 0], entriesEnd + 4); // entry 1 starts at 13
    withRestart.set([2, 0, 0, 0], entriesEnd + 8);
    assert.throws(() => checkDataBlock(withRestart, 8, key('a', 2)), /shares a prefix/);
    const pastEnd = good.slice();
    pastEnd.set([0xff, 0, 0, 0], pastEnd.length - 8); // last restart past the entries
    assert.throws(() => checkDataBlock(pastEnd, 8, keys.at(-1)!), /out of order or range/);
  });

  it('refuses a block exactly when its keys are not in strictly increasing internal order (property)', () => {
    // Short user keys over two letters and few sequences: shared prefixes,
    // equal user keys and keys that are prefixes of others are frequent.
    const internal = fc
      .tuple(fc.stringMatching(/^[ab]{0,4}$/), fc.integer({ min: 0, max: 3 }))
      .map(([user, sequence]) => key(user, sequence));
    fc.assert(
      fc.property(
        fc.array(internal, { minLength: 1, maxLength: 12 }),
        fc.integer({ min: 1, max: 4 }),
        (keys, interval) => {
          const ordered = keys.every((k, i) => i === 0 || compareInternal(keys[i - 1]!, k) < 0);
          const check = () => checkDataBlock(block(keys, interval), 8, keys.at(-1)!);
          if (ordered) check();
          else assert.throws(check, /out of order/);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('accepts a damaged block only when decoding it finds it sound, and names what is wrong otherwise (property)', () => {
    // The check's one-pass verdict against decodeBlock and an order check:
    // any block it accepts decodes, in order, to its last key; any it
    // refuses gets a specific reason, never the fallback of a disagreement.
    const internal = fc
      .tuple(fc.stringMatching(/^[ab]{0,4}$/), fc.integer({ min: 0, max: 3 }))
      .map(([user, sequence]) => key(user, sequence));
    const damage = fc.array(fc.record({ at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }), {
      minLength: 1,
      maxLength: 3,
    });
    fc.assert(
      fc.property(
        fc.uniqueArray(internal, { minLength: 1, maxLength: 12, comparator: 'SameValueZero' }),
        fc.integer({ min: 1, max: 4 }),
        damage,
        fc.nat(),
        (unsorted, interval, changes, cut) => {
          const keys = [...unsorted].sort(compareInternal);
          const distinct = keys.filter((k, i) => i === 0 || compareInternal(keys[i - 1]!, k) < 0);
          let contents = block(distinct, interval);
          for (const { at, byte } of changes) contents[at % contents.length] = byte;
          if (cut % 4 === 0) contents = contents.subarray(0, cut % (contents.length + 1));
          let data: ReturnType<typeof checkDataBlock>;
          try {
            data = checkDataBlock(contents, 8, distinct.at(-1)!);
          } catch (error) {
            assert.ok(error instanceof Malformed);
            assert.doesNotMatch(error.message, /refused by its check/);
            return;
          }
          const decoded = decodeBlock(data.contents, 8);
          assert.ok(decoded.keys.length > 0);
          for (let i = 1; i < decoded.keys.length; i++) {
            assert.ok(compareInternal(decoded.keys[i - 1]!, decoded.keys[i]!) < 0);
          }
          // The kind byte is not part of the order: a reader checks it per entry.
          assert.equal(compareInternal(decoded.keys.at(-1)!, distinct.at(-1)!), 0);
        },
      ),
      { numRuns: 3000 },
    );
  });

  it('accepts sound blocks of long keys sharing long prefixes, whatever keys it checked before', () => {
    // The one-pass check builds each key in place over the previous one, in a
    // buffer that grows with the longest key met so far: a growth must keep
    // the shared prefix. Each size below is more than twice the one before,
    // so every block makes the buffer grow at its second key.
    for (let size = 1024; size <= 512 * 1024; size *= 4) {
      const prefix = 'p'.repeat(size / 2);
      const keys = [key(`${prefix}a`, 2), key(`${prefix}b${'q'.repeat(size)}`, 1)];
      // Restart interval 2: the second key is stored as a suffix of the first.
      const data = checkDataBlock(block(keys, 2), 8, keys.at(-1)!);
      assert.deepEqual(decodeBlock(data.contents, 8).keys, keys);
    }
  });

  it('a scanner reads every entry and seeks to the first key at or after a target', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(
          fc.tuple(fc.uint8Array({ maxLength: 80 }), fc.integer({ min: 1, max: 99 })),
          {
            minLength: 1,
            maxLength: 60,
            selector: ([k, s]) => `${toHex(k)}/${s}`,
          },
        ),
        fc.integer({ min: 1, max: 20 }),
        fc.array(fc.tuple(fc.uint8Array({ maxLength: 80 }), fc.integer({ min: 0, max: 100 }))),
        (list, interval, targets) => {
          const sorted = list.map(([k, s]) => internalKey(k, s, KIND_VALUE)).sort(compareInternal);
          const data = checkDataBlock(block(sorted, interval), 8, sorted.at(-1)!);
          const scanner = new BlockScanner();
          const seen: string[] = [];
          scanner.start(data);
          while (scanner.advance()) seen.push(toHex(scanner.key.subarray(0, scanner.keyLength)));
          assert.deepEqual(seen, sorted.map(toHex));
          for (const [k, s] of targets) {
            const target = internalKey(k, s, KIND_VALUE);
            const expected = sorted.find((e) => compareInternal(e, target) >= 0);
            const found = scanner.seek(data, target);
            assert.equal(found, expected !== undefined);
            if (found) {
              assert.equal(toHex(scanner.key.subarray(0, scanner.keyLength)), toHex(expected!));
              assert.equal(toHex(scanner.value()), toHex(bytes('v')));
            }
          }
        },
      ),
      { numRuns: 100 },
    );
  });
});

describe('LSM-FORMAT §4 bloom filter', () => {
  it('matches the vectors', () => {
    assert.equal(bloomHash(new Uint8Array(0)).toString(16), 'ab3e7c0b');
    assert.equal(bloomHash(bytes('a')).toString(16), '1a80b1b3');
    assert.equal(bloomHash(bytes('abc')).toString(16), '1cc93dbc');
    const filter = buildFilter([bloomHash(bytes('a')), bloomHash(bytes('b'))], 10);
    assert.equal(toHex(filter), '00 00 10 11 00 00 4c 44 07');
    assert.deepEqual(buildFilter([1, 2], 0), fromHex('00'));
    assert.ok(filterMayContain(fromHex('00'), 1234));
    assert.ok(filterMayContain(fromHex('00 00 00 00 00 00 00 00 00'), 1234), 'probes 0');
  });

  it('never denies a key it holds, and rarely admits one it does not', () => {
    const keys = Array.from({ length: 5000 }, (_, i) => bytes(`key-${i}`));
    const filter = buildFilter(
      keys.map((key) => bloomHash(key)),
      10,
    );
    for (const key of keys) assert.ok(filterMayContain(filter, bloomHash(key)));
    let admitted = 0;
    for (let i = 0; i < 10000; i++)
      if (filterMayContain(filter, bloomHash(bytes(`other-${i}`)))) admitted++;
    // About 1 % expected at 10 bits per key; 3 % leaves room for chance.
    assert.ok(admitted < 300, `${admitted} false positives in 10000`);
  });
});

describe('LSM-FORMAT §2–§5 tables', () => {
  it('the two-entry table matches the vector, and reads back', async () => {
    const { bytes: data, summary } = buildTable(
      [
        [internalKey(bytes('apple'), 2, KIND_VALUE), bytes('red')],
        [internalKey(bytes('apricot'), 1, KIND_DELETE), new Uint8Array(0)],
      ],
      LAYOUT,
    );
    assert.equal(toHex(data), toHex(fromHex(TABLE_VECTOR)));
    assert.equal(summary.entries, 2);
    const { fs, path } = await tableFrom(fromHex(TABLE_VECTOR));
    const table = await Table.open(fs, path);
    assert.equal(table.entries, 2);
    const found = await table.get(bytes('apple'), internalKey(bytes('apple'), 9, KIND_VALUE));
    assert.equal(toHex(found!.value), toHex(bytes('red')));
    assert.equal(await table.get(bytes('apple'), internalKey(bytes('apple'), 1, 1)), undefined);
    assert.equal(await table.get(bytes('zzz'), internalKey(bytes('zzz'), 9, 1)), undefined);
    await table.close();
    await table.close();
    await assert.rejects(table.readData(0), isCode('WAL_CLOSED'));
  });

  it('a scan reads the next block ahead: its failure surfaces only when the scan gets there', async () => {
    /** Fails the read of one position with EIO (either way of reading); records the positions read. */
    class FailingFs extends CrashFs {
      failAt = -1;
      readonly positions: number[] = [];
      override async pread(file: FsFile, into: Uint8Array, position: number): Promise<number> {
        this.positions.push(position);
        if (position === this.failAt) throw Object.assign(new Error('EIO'), { code: 'EIO' });
        return super.pread(file, into, position);
      }
      override preadSync(file: FsFile, into: Uint8Array, position: number): number {
        this.positions.push(position);
        if (position === this.failAt) throw Object.assign(new Error('EIO'), { code: 'EIO' });
        return super.preadSync(file, into, position);
      }
    }
    const entries = Array.from({ length: 60 }, (_, i) => [
      internalKey(bytes(`key-${String(i).padStart(3, '0')}`), 1, KIND_VALUE),
      bytes(`value ${i}`),
    ]) as [Uint8Array, Uint8Array][];
    const { bytes: data } = buildTable(entries, {
      blockSize: 128,
      restartInterval: 4,
      bitsPerKey: 10,
    });
    const fs = new FailingFs();
    const file = await fs.open('/t.sst', 'create');
    await fs.pwrite(file, data, 0);
    await fs.close(file);
    const table = await Table.open(fs, '/t.sst');
    assert.ok(table.blocks > 3);
    const perBlock: number[] = [];
    for (let block = 0; block < 3; block++) {
      fs.positions.length = 0;
      perBlock.push((await table.readData(block)).keys.length);
      fs.failAt = -1;
    }
    fs.positions.length = 0;
    await table.readData(2);
    fs.failAt = fs.positions[0]!;
    const unhandled: unknown[] = [];
    const listener = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', listener);
    const cursor = new TableCursor(table);
    fs.positions.length = 0;
    await cursor.seek(undefined, false);
    assert.equal(fs.positions.length, 1); // a seek reads only its block
    // Into block 1: block 2 is read ahead, and fails, unseen.
    for (let i = 0; i < perBlock[0]!; i++) await cursor.step();
    await new Promise((resolve) => setTimeout(resolve, 10));
    process.off('unhandledRejection', listener);
    assert.deepEqual(unhandled, []);
    assert.equal(fs.positions.at(-1), fs.failAt);
    assert.equal(toHex(cursor.key!), toHex(userKeyOf(entries[perBlock[0]!]![0])));
    for (let i = 1; i < perBlock[1]!; i++) await cursor.step();
    assert.equal(
      toHex(cursor.key!),
      toHex(userKeyOf(entries[perBlock[0]! + perBlock[1]! - 1]![0])),
    );
    await assert.rejects(async () => cursor.step(), isCode('WAL_IO'));
    // Read again (not from the failed read ahead), the block is there once the disk is.
    fs.failAt = -1;
    const again = new TableCursor(table);
    await again.seek(userKeyOf(entries[perBlock[0]! + perBlock[1]!]![0]), false);
    assert.equal(toHex(again.key!), toHex(userKeyOf(entries[perBlock[0]! + perBlock[1]!]![0])));
    await table.close();
  });

  it('an empty table is refused at build time', () => {
    assert.throws(() => buildTable([], LAYOUT), RangeError);
  });

  const sortedEntries = fc
    .uniqueArray(
      fc.record({
        key: fc.uint8Array({ maxLength: 12 }),
        sequence: fc.integer({ min: 1, max: 2 ** 40 }),
        kind: fc.constantFrom(KIND_DELETE, KIND_VALUE),
        value: fc.uint8Array({ maxLength: 300 }),
      }),
      {
        minLength: 1,
        maxLength: 300,
        selector: (e) => `${Buffer.from(e.key).toString('hex')}/${e.sequence}`,
      },
    )
    .map((list) =>
      list
        .map((e) => ({
          key: internalKey(e.key, e.sequence, e.kind),
          value: e.kind === KIND_VALUE ? e.value : new Uint8Array(0),
        }))
        .sort((a, b) => compareInternal(a.key, b.key)),
    );
  const layouts = fc.record({
    blockSize: fc.integer({ min: 64, max: 2048 }),
    restartInterval: fc.integer({ min: 1, max: 20 }),
    bitsPerKey: fc.integer({ min: 0, max: 20 }),
  });

  it('random sorted entry sets round-trip through every block and the filter', async () => {
    await fc.assert(
      fc.asyncProperty(sortedEntries, layouts, async (entries, layout) => {
        const built = buildTable(
          entries.map((e) => [e.key, e.value] as const),
          layout,
        );
        const { fs, path } = await tableFrom(built.bytes);
        const table = await Table.open(fs, path);
        const read: { key: Uint8Array; value: Uint8Array }[] = [];
        for (let block = 0; block < table.blocks; block++) {
          const decoded = await table.readData(block);
          for (let i = 0; i < decoded.keys.length; i++) {
            read.push({ key: decoded.keys[i]!, value: decoded.values[i]! });
          }
        }
        assert.deepEqual(
          read.map((e) => `${toHex(e.key)}=${toHex(e.value)}`),
          entries.map((e) => `${toHex(e.key)}=${toHex(e.value)}`),
        );
        for (const e of entries) {
          const user = userKeyOf(e.key);
          assert.ok(table.mayContain(user));
          const found = await table.get(user, e.key);
          assert.equal(toHex(found!.key), toHex(e.key));
        }
        await table.close();
      }),
      { numRuns: 60 },
    );
  });

  it('every single-bit flip is detected or changes nothing read', async () => {
    const entries = Array.from({ length: 40 }, (_, i) => [
      internalKey(bytes(`key-${String(i).padStart(3, '0')}`), 100 - i, i % 5 === 0 ? 0 : 1),
      bytes(i % 5 === 0 ? '' : `value ${i}`),
    ]) as [Uint8Array, Uint8Array][];
    const { bytes: good } = buildTable(entries, {
      blockSize: 128,
      restartInterval: 3,
      bitsPerKey: 10,
    });
    const readAll = async (data: Uint8Array): Promise<string> => {
      const { fs, path } = await tableFrom(data);
      const table = await Table.open(fs, path);
      const parts: string[] = [];
      for (let block = 0; block < table.blocks; block++) {
        const decoded = await table.readData(block);
        for (let i = 0; i < decoded.keys.length; i++) {
          parts.push(`${toHex(decoded.keys[i]!)}=${toHex(decoded.values[i]!)}`);
        }
      }
      await table.close();
      return parts.join(',');
    };
    const expected = await readAll(good);
    let detected = 0;
    for (let bit = 0; bit < good.length * 8; bit++) {
      const bad = good.slice();
      bad[bit >>> 3]! ^= 1 << (bit & 7);
      try {
        const got = await readAll(bad);
        // Bits the CRCs cannot see change nothing that is read.
        assert.equal(got, expected, `bit ${bit} changed what is read`);
      } catch (error) {
        assert.equal((error as { code?: unknown }).code, 'WAL_CORRUPTION', String(error));
        assert.match((error as Error).message, /\/t\.sst/);
        assert.equal(typeof (error as { offset?: unknown }).offset, 'number');
        detected++;
      }
    }
    // Every bit is covered by a CRC or the magic: all flips are detected.
    assert.equal(detected, good.length * 8);
  });

  /**
   * A table of 12 entries in small blocks, and the same with its first two
   * entries swapped: block 0 keeps its size, its last key and a valid CRC,
   * but its keys are out of order.
   */
  const goodAndSwapped = () => {
    const entries = Array.from({ length: 12 }, (_, i) => [
      internalKey(bytes(`key-${String(i).padStart(3, '0')}`), 100 - i, KIND_VALUE),
      bytes(`value ${i}`),
    ]) as [Uint8Array, Uint8Array][];
    const layout = { blockSize: 128, restartInterval: 3, bitsPerKey: 10 };
    return {
      entries,
      good: buildTable(entries, layout).bytes,
      swapped: buildTable([entries[1]!, entries[0]!, ...entries.slice(2)], layout).bytes,
    };
  };

  it('a block read again is checked in full when its bytes changed, even with a valid CRC', async () => {
    const { entries, good, swapped } = goodAndSwapped();
    assert.equal(swapped.length, good.length);
    assert.notDeepEqual(swapped, good);
    const { fs, path } = await tableFrom(good);
    const table = await Table.open(fs, path, new BlockCache(0)); // every read goes to the file
    assert.ok(table.blocks > 1);
    for (let round = 0; round < 2; round++) {
      assert.deepEqual((await table.readData(0)).keys[0], entries[0]![0]);
    }
    const file = await fs.open(path, 'write');
    await fs.pwrite(file, swapped, 0);
    await fs.close(file);
    await assert.rejects(table.readData(0), (error: Error & { code?: string }) => {
      assert.equal(error.code, 'WAL_CORRUPTION');
      assert.match(error.message, /keys out of order at entry 1/);
      return true;
    });
    await table.close();
  });

  it('a block refused once is refused at every read, though its CRC is valid', async () => {
    // Only a block whose entries passed the check is remembered as checked
    // (with its CRC): a block with a valid CRC and keys out of order (a
    // writer's bug, not damage on the disk) never gets past the check.
    const { swapped } = goodAndSwapped();
    const { fs, path } = await tableFrom(swapped);
    const table = await Table.open(fs, path, new BlockCache(0)); // every read goes to the file
    for (let round = 0; round < 3; round++) {
      await assert.rejects(table.readData(0), (error: Error & { code?: string }) => {
        assert.equal(error.code, 'WAL_CORRUPTION', `read ${round}`);
        assert.match(error.message, /keys out of order at entry 1/);
        return true;
      });
    }
    await table.close();
  });

  /**
   * `bytes` with the 4 bytes at `at` changed so that the CRC-32C of
   * `bytes[0, end)` is `target`: CRC-32C is affine over GF(2), and the
   * effects of 32 consecutive bits on it are independent, so solving a
   * 32×32 linear system finds the bytes (a CRC collision, made on purpose).
   */
  function forgeCrc(bytes: Uint8Array, end: number, at: number, target: number): Uint8Array {
    const forged = bytes.slice();
    const zeros = crc32c(new Uint8Array(end));
    // Column j: the change to the CRC made by flipping bit j of the 4 bytes.
    const columns: number[] = [];
    for (let j = 0; j < 32; j++) {
      const unit = new Uint8Array(end);
      unit[at + (j >> 3)] = 1 << (j & 7);
      columns.push((crc32c(unit) ^ zeros) >>> 0);
    }
    // Gaussian elimination: rows = [column effect | which bits make it].
    const rows = columns.map((effect, j) => ({ effect, bits: 2 ** j }));
    const basis: { effect: number; bits: number }[] = [];
    for (let bit = 31; bit >= 0; bit--) {
      const pivot = rows.findIndex((row) => !basis.includes(row) && (row.effect >>> bit) & 1);
      assert.notEqual(pivot, -1, 'independent bits');
      const chosen = rows[pivot]!;
      for (const row of rows) {
        if (row !== chosen && (row.effect >>> bit) & 1) {
          row.effect = (row.effect ^ chosen.effect) >>> 0;
          row.bits = (row.bits ^ chosen.bits) >>> 0;
        }
      }
      basis.push(chosen);
    }
    let wanted = (crc32c(forged.subarray(0, end)) ^ target) >>> 0;
    let flips = 0;
    for (const row of basis) {
      if (row.effect & wanted) {
        wanted = (wanted ^ row.effect) >>> 0;
        flips = (flips ^ row.bits) >>> 0;
      }
    }
    for (let j = 0; j < 32; j++) if ((flips >>> j) & 1) forged[at + (j >> 3)]! ^= 1 << (j & 7);
    assert.equal(crc32c(forged.subarray(0, end)), target);
    return forged;
  }

  /** Five entries `key-i` → `value of i`, newest first, as one table block. */
  const forgeEntries = Array.from({ length: 5 }, (_, i) => [
    internalKey(bytes(`key-${i}`), 100 - i, KIND_VALUE),
    bytes(`value of ${i}`),
  ]) as [Uint8Array, Uint8Array][];

  /** Counts the entries of `table`, read with a cursor from the first. */
  const scan = async (table: Table): Promise<number> => {
    const cursor = new TableCursor(table);
    let seen = 0;
    await cursor.seek(undefined, false);
    while (cursor.key !== undefined) {
      seen++;
      await cursor.step();
    }
    return seen;
  };

  /**
   * The table of {@link forgeEntries} in one block (a restart point every
   * `restartInterval` entries), read once in full (its entries checked and
   * remembered with its CRC), then rewritten as `damage` changes it (given
   * the restart offsets and the end of the entries) with the CRC made that
   * of the good block by changing the first entry's value: read again, its
   * entries are not checked again. `forged`: the bytes written.
   */
  async function forgedTable(
    restartInterval: number,
    damage: (hostile: Uint8Array, restarts: number[], entriesEnd: number) => void,
  ): Promise<{ table: Table; forged: Uint8Array }> {
    const layout = { blockSize: 4096, restartInterval, bitsPerKey: 10 };
    const good = buildTable(forgeEntries, layout).bytes;
    const builder = new BlockBuilder(restartInterval);
    for (const [key, value] of forgeEntries) builder.add(key, value, key.length, 0, value.length);
    const size = builder.finish().length;
    const view = new DataView(good.buffer, good.byteOffset);
    const count = view.getUint32(size - 4, true);
    const entriesEnd = size - 4 * (count + 1);
    const restarts = Array.from({ length: count }, (_, i) =>
      view.getUint32(entriesEnd + 4 * i, true),
    );
    const hostile = good.slice();
    damage(hostile, restarts, entriesEnd);
    // The CRC covers the contents and the type byte.
    const crcAt = size + 1;
    const forged = forgeCrc(
      hostile,
      crcAt,
      3 + forgeEntries[0]![0].length,
      view.getUint32(crcAt, true),
    );
    assert.deepEqual(forged.subarray(crcAt), good.subarray(crcAt));
    const { fs, path } = await tableFrom(good);
    const table = await Table.open(fs, path, new BlockCache(0)); // every read goes to the file
    assert.equal(await scan(table), forgeEntries.length);
    const file = await fs.open(path, 'write');
    await fs.pwrite(file, forged, 0);
    await fs.close(file);
    return { table, forged };
  }

  /** A predicate for `assert.rejects`: `WAL_CORRUPTION` with `message` at `offset`. */
  const damageAt =
    (what: string, message: RegExp, offset: number) =>
    (error: Error & { code?: string; offset?: number }): boolean => {
      assert.equal(error.code, 'WAL_CORRUPTION', what);
      assert.match(error.message, message, what);
      assert.equal(error.offset, offset, what);
      return true;
    };

  /** Read first (no copy checked before), `forged` fails the full check. */
  async function refusedFresh(forged: Uint8Array, what: string): Promise<void> {
    const fresh = await tableFrom(forged);
    const other = await Table.open(fresh.fs, fresh.path, new BlockCache(0));
    await assert.rejects(other.readData(0), isCode('WAL_CORRUPTION'), what);
    await other.close();
  }

  it('a block read again with the CRC of its checked copy but other bytes: an entry running past the entries is refused, not read', async () => {
    // Every entry a restart point: the last entry starts at the last
    // restart offset, as [shared 0][key length][value length][key][value].
    const cases: [string, (hostile: Uint8Array, last: number, end: number) => void, RegExp][] = [
      [
        // The last value one byte shorter: its last byte, 0x81, starts a
        // phantom entry whose first varint runs on into the restart array.
        'a varint',
        (hostile, last, end) => {
          hostile[last + 2]!--;
          hostile[end - 1] = 0x81;
        },
        /varint runs past the entries/,
      ],
      [
        // The last value one byte longer: it would end in the restart array.
        'a value',
        (hostile, last) => {
          hostile[last + 2]!++;
        },
        /entry runs past the entries/,
      ],
    ];
    for (const [what, damage, message] of cases) {
      let offsets: [number, number] = [0, 0];
      const { table, forged } = await forgedTable(1, (hostile, restarts, end) => {
        offsets = [restarts.at(-1)!, end];
        damage(hostile, ...offsets);
      });
      const [last, end] = offsets;
      // Same CRC, so the entries are not checked again; the scanner refuses
      // the entry that does not fit where it starts.
      const offset = what === 'a varint' ? end - 1 : last;
      await assert.rejects(scan(table), damageAt(what, message, offset));
      await table.close();
      await refusedFresh(forged, what);
    }
  });

  it('a block read again with its CRC: a seek refuses a restart key running past the entries, though it does not stop there', async () => {
    // Entry 2's key length (a restart point) made 127: its key would run
    // past the entries. A seek to entry 4 compares entry 2's key in its
    // binary search, and passes it by without reading it as an entry.
    let second = 0;
    const { table, forged } = await forgedTable(1, (hostile, restarts) => {
      second = restarts[2]!;
      assert.equal(hostile[second + 1], forgeEntries[2]![0].length);
      hostile[second + 1] = 0x7f;
    });
    const key = forgeEntries[4]![0];
    const user = key.subarray(0, key.length - 8);
    const what = 'a restart key';
    await assert.rejects(
      table.get(user, internalKey(user, 100, KIND_VALUE)),
      damageAt(what, /key runs past the entries/, second),
    );
    const cursor = new TableCursor(table);
    await assert.rejects(
      async () => cursor.seek(user, false),
      damageAt(what, /key runs past the entries/, second),
    );
    // Read from the first entry, the scanner refuses entry 2 itself.
    await assert.rejects(scan(table), damageAt(what, /entry runs past the entries/, second));
    await table.close();
    await refusedFresh(forged, what);
  });

  it('a block read again with its CRC: an entry sharing more bytes than the key before it has is refused', async () => {
    // One restart point: entry 1 shares "key-" (4 bytes) with entry 0;
    // made to share 14 bytes of entry 0's 13-byte key (the entry's bytes
    // unchanged, so it still ends in bounds).
    let first = 0;
    const { table, forged } = await forgedTable(16, (hostile, restarts) => {
      assert.deepEqual(restarts, [0]);
      first = 3 + forgeEntries[0]![0].length + forgeEntries[0]![1].length;
      assert.equal(hostile[first], 4);
      hostile[first] = forgeEntries[0]![0].length + 1;
    });
    const what = 'a shared length';
    await assert.rejects(scan(table), damageAt(what, /entry runs past the entries/, first));
    await table.close();
    await refusedFresh(forged, what);
  });

  it('the shared key buffers of the block check and of Table.get drop back after a huge key', async () => {
    const huge = new Uint8Array(KEY_BUFFER_CAP * 3).fill(0x6b);
    const entries = [
      [internalKey(bytes('a'), 3, KIND_VALUE), bytes('small')],
      [internalKey(huge, 2, KIND_VALUE), bytes('huge')],
      [internalKey(bytes('l'), 1, KIND_VALUE), bytes('after')],
    ] as [Uint8Array, Uint8Array][];
    const { fs, path } = await tableFrom(buildTable(entries, LAYOUT).bytes);
    const table = await Table.open(fs, path, new BlockCache(0)); // every get checks its block
    const small = await table.get(bytes('a'), internalKey(bytes('a'), 9, KIND_VALUE));
    assert.equal(toHex(small!.value), toHex(bytes('small')));
    // Small keys: the buffers stay (no allocation per check or get).
    const buffers = [checkKeyBuffer(), tableScannerKeyBuffer()];
    await table.get(bytes('a'), internalKey(bytes('a'), 9, KIND_VALUE));
    assert.deepEqual([checkKeyBuffer(), tableScannerKeyBuffer()], buffers);
    assert.ok(checkKeyBuffer() === buffers[0] && tableScannerKeyBuffer() === buffers[1]);
    const found = await table.get(huge, internalKey(huge, 9, KIND_VALUE));
    assert.equal(toHex(found!.key), toHex(entries[1]![0]));
    assert.ok(checkKeyBuffer().length <= KEY_BUFFER_CAP, `${checkKeyBuffer().length}`);
    assert.ok(
      tableScannerKeyBuffer().length <= KEY_BUFFER_CAP,
      `${tableScannerKeyBuffer().length}`,
    );
    await table.close();
    // Keys a little above half the cap, each in a block of its own: the
    // buffers grow once and then stay, however the sizes alternate.
    const near = [40_000, 40_001].map((length, i) => new Uint8Array(length).fill(0x6d + i));
    const nearEntries = near.map((key) => [internalKey(key, 1, KIND_VALUE), key]) as [
      Uint8Array,
      Uint8Array,
    ][];
    const nearTable = await tableFrom(buildTable(nearEntries, LAYOUT).bytes);
    const other = await Table.open(nearTable.fs, nearTable.path, new BlockCache(0));
    assert.equal(other.blocks, 2);
    const getNear = async (key: Uint8Array): Promise<void> => {
      const got = await other.get(key, internalKey(key, 9, KIND_VALUE));
      assert.equal(got!.value.length, key.length);
    };
    await getNear(near[0]!);
    const grown = [checkKeyBuffer(), tableScannerKeyBuffer()];
    for (const key of [near[1]!, near[0]!, near[1]!]) {
      await getNear(key);
      assert.ok(
        checkKeyBuffer() === grown[0] && tableScannerKeyBuffer() === grown[1],
        `no reallocation for a key of ${key.length} bytes`,
      );
    }
    await other.close();
  });

  it('refuses files that are not tables, and truncated tables, with the offset', async () => {
    const { bytes: good } = buildTable([[internalKey(bytes('k'), 1, 1), bytes('v')]], LAYOUT);
    const cases: [Uint8Array, RegExp][] = [
      [new Uint8Array(10), /shorter than a footer/],
      [new Uint8Array(100), /no table magic/],
      [good.subarray(1), /block|index|runs past/],
    ];
    for (const [data, message] of cases) {
      const { fs, path } = await tableFrom(data);
      await assert.rejects(Table.open(fs, path), isCode('WAL_CORRUPTION', message));
    }
    const fs = new CrashFs();
    await assert.rejects(Table.open(fs, '/missing.sst'), isCode('WAL_CORRUPTION', /missing/));
  });

  it('a block handle claiming more than the file is refused before any allocation', async () => {
    const { bytes: good } = buildTable([[internalKey(bytes('k'), 1, 1), bytes('v')]], LAYOUT);
    const bad = good.slice();
    const footer = bad.length - 48;
    // indexSize = 0xFFFFFFF0, then a valid footer CRC so the handle check is what fires.
    bad.set(fromHex('f0 ff ff ff'), footer + 8);
    const crc = crc32c(bad.subarray(footer, footer + 36));
    new DataView(bad.buffer).setUint32(footer + 36, crc, true);
    const { fs, path } = await tableFrom(bad);
    await assert.rejects(Table.open(fs, path), isCode('WAL_CORRUPTION', /runs past/));
    // A wrong version, with a valid CRC.
    const other = good.slice();
    other[footer + 32] = 3;
    new DataView(other.buffer).setUint32(
      footer + 36,
      crc32c(other.subarray(footer, footer + 36)),
      true,
    );
    const second = await tableFrom(other);
    await assert.rejects(Table.open(second.fs, second.path), isCode('WAL_CORRUPTION', /version 3/));
  });
});

describe('LSM-FORMAT §3 keys decode within a bound (hostile tables, every CRC valid)', () => {
  /**
   * Block contents with one restart: a first key of `first` bytes, then
   * `count` entries each sharing the whole key before it and adding `grow`
   * bytes. About 5 bytes per entry, each decoding to a whole key.
   */
  const sharing = (first: number, count: number, grow: 0 | 1): Uint8Array => {
    const out = new Output();
    out.varint(0);
    out.varint(first);
    out.varint(0);
    out.bytes(new Uint8Array(first).fill(0x61));
    for (let i = 0, length = first; i < count; i++, length += grow) {
      out.varint(length);
      out.varint(grow);
      out.varint(0);
      if (grow === 1) out.u8(0x62);
    }
    out.bytes(fromHex('00 00 00 00 01 00 00 00'));
    return out.view().slice();
  };
  const good = buildTable([[internalKey(bytes('k'), 2, KIND_VALUE), bytes('v')]], LAYOUT, [
    { start: bytes('a'), end: bytes('b'), sequence: 1 },
  ]).bytes;

  /** Opens `table` and reads its data block (as reverse iteration does): rejects as they do. */
  const openAndRead = async (table: Uint8Array): Promise<void> => {
    const { fs, path } = await tableFrom(table);
    const opened = await Table.open(fs, path);
    try {
      await opened.readData(0);
    } finally {
      await opened.close();
    }
  };

  /** Each of these would decode to over 3 GB of keys without the bound. */
  for (const [what, place, at] of [
    [
      'an index block whose entries share prefixes (its restart interval is 1)',
      (blocks: RawBlock[]) => ({ ...endToEnd(blocks), index: sharing(60_000, 60_000, 0) }),
      (table: Uint8Array) => getU64(table, table.length - 48) + 60_000 + 5,
    ],
    [
      'a range-deletion block',
      (blocks: RawBlock[]) => ({ ...endToEnd(blocks), ranges: sharing(60_000, 60_000, 0) }),
      (table: Uint8Array) => getU64(table, table.length - 60),
    ],
    [
      'a data block whose keys grow by a byte each (in order: a block check passes it without the bound)',
      () => {
        const contents = sharing(8, 80_000, 1);
        const raw = new Output();
        writeBlock(raw, contents);
        const block = {
          raw: raw.view().slice(),
          key: new Uint8Array(8 + 80_000).fill(0x62, 8).fill(0x61, 0, 8),
        };
        return { ...endToEnd([block]), keys: [block.key] };
      },
      () => 0,
    ],
  ] as const) {
    it(`${what} is refused with WAL_CORRUPTION at its offset, in memory bounded by the block`, async () => {
      const table = relayout(good, place);
      const before = process.memoryUsage().arrayBuffers;
      const started = Date.now();
      await assert.rejects(openAndRead(table), (error: unknown) => {
        const { code, offset, message } = error as {
          code: string;
          offset: number;
          message: string;
        };
        assert.equal(code, 'WAL_CORRUPTION', String(error));
        assert.match(message, /^table \/t\.sst is damaged at offset \d+: /);
        assert.match(message, /shares a prefix|keys decode to more than 64 times/);
        assert.ok(offset >= at(table) && offset < table.length, `offset ${offset}`);
        return true;
      });
      // At most KEY_EXPANSION times the block (under 500 KB here) was
      // decoded, and the table read: tens of MB, not the gigabytes the
      // entries claim.
      const grown = process.memoryUsage().arrayBuffers - before;
      assert.ok(grown < 2 * KEY_EXPANSION * 500_000, `${grown} bytes of buffers grown`);
      assert.ok(Date.now() - started < 10_000);
    });
  }

  it('a block written with any restart interval decodes within the bound, however long the shared prefixes (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 1024 }),
        fc.integer({ min: 8, max: 3000 }),
        fc.integer({ min: 1, max: 256 }),
        fc.integer({ min: 0, max: 3 }),
        (interval, prefix, count, valueLength) => {
          const builder = new BlockBuilder(interval);
          const keys = Array.from({ length: count }, (_, suffix) => {
            const key = new Uint8Array(prefix + 1).fill(0x61);
            key[prefix] = suffix;
            return key;
          });
          const value = new Uint8Array(valueLength);
          for (const key of keys) builder.add(key, value, key.length, 0, value.length);
          const decoded = decodeBlock(builder.finish(), 8);
          assert.deepEqual(decoded.keys, keys);
        },
      ),
    );
  });
});

describe('LSM-FORMAT §2 data blocks lie end to end (an index that says otherwise is damage, whatever the CRCs)', () => {
  const entries = Array.from({ length: 60 }, (_, i) => [
    internalKey(bytes(`key-${String(i).padStart(3, '0')}`), 100 - i, KIND_VALUE),
    bytes(`value ${i}`),
  ]) as [Uint8Array, Uint8Array][];
  const good = buildTable(entries, { blockSize: 128, restartInterval: 4, bitsPerKey: 10 }).bytes;
  const raws = dataBlocks(good).map((block) => block.raw);
  const count = raws.length;

  /** Every block of `table` at its handle has a valid CRC and is a sound data block ending at its index key. */
  const soundBlocks = (table: Uint8Array): void => {
    const footer = table.length - 48;
    const indexAt = getU64(table, footer);
    const index = decodeBlock(
      checkBlock(table.subarray(indexAt, indexAt + getU32(table, footer + 8) + 5)),
      8,
    );
    for (const [i, handle] of index.values.entries()) {
      const reader = new Reader(handle, 0, handle.length);
      const offset = reader.varint('offset');
      const raw = table.subarray(offset, offset + reader.varint('size') + 5);
      checkDataBlock(checkBlock(raw), 8, index.keys[i]!);
    }
  };

  /** Opens `table`: its entries in order, or the error opening it. */
  const open = async (
    table: Uint8Array,
  ): Promise<string[] | { code: string; offset: number; message: string }> => {
    const { fs, path } = await tableFrom(table);
    let opened: Table;
    try {
      opened = await Table.open(fs, path);
    } catch (error) {
      return error as { code: string; offset: number; message: string };
    }
    const read: string[] = [];
    for (let block = 0; block < opened.blocks; block++) {
      const decoded = await opened.readData(block);
      for (const [i, key] of decoded.keys.entries())
        read.push(`${toHex(key)}=${toHex(decoded.values[i]!)}`);
    }
    await opened.close();
    return read;
  };
  const expected = entries.map(([key, value]) => `${toHex(key)}=${toHex(value)}`);

  /** The blocks in `order` (positions of index entries), `gaps[p]` junk bytes before the p-th placed and, last, before the filter. */
  const scatter =
    (order: readonly number[], gaps: readonly number[]) =>
    (blocks: RawBlock[]): Placement => {
      const parts: Uint8Array[] = [];
      const handles: { offset: number; size: number }[] = [];
      let at = 0;
      for (const [position, block] of order.entries()) {
        parts.push(new Uint8Array(gaps[position]!).fill(0x5a), blocks[block]!.raw);
        at += gaps[position]!;
        handles[block] = { offset: at, size: blocks[block]!.raw.length - 5 };
        at += blocks[block]!.raw.length;
      }
      parts.push(new Uint8Array(gaps[order.length]!).fill(0x5a));
      return { data: Buffer.concat(parts), handles };
    };

  /** `table` is refused as damage at the index (`entry` named) or, without one, at the footer's filter handle. */
  const refused = async (table: Uint8Array, entry?: number): Promise<void> => {
    const result = await open(table);
    assert.ok(!Array.isArray(result), 'the table was opened');
    assert.equal(result.code, 'WAL_CORRUPTION', String(result));
    if (entry === undefined) {
      const at = table.length - 48 + 12;
      assert.equal(result.offset, at);
      assert.match(
        result.message,
        new RegExp(
          `/t\\.sst is damaged at offset ${at}: filter block at offset \\d+, expected at \\d+ after the data blocks`,
        ),
      );
    } else {
      const indexAt = getU64(table, table.length - 48);
      assert.equal(result.offset, indexAt);
      assert.match(
        result.message,
        new RegExp(
          `/t\\.sst is damaged at offset ${indexAt}: index entry ${entry}: data block at offset \\d+, expected at \\d+`,
        ),
      );
    }
  };

  it('the blocks placed end to end again make the same table, byte for byte', async () => {
    assert.ok(count >= 6, `${count} blocks`);
    assert.equal(toHex(relayout(good, endToEnd)), toHex(good));
    assert.deepEqual(await open(good), expected);
  });

  it('a table is opened exactly when its index names its blocks end to end from 0 to the filter (property)', async () => {
    const identity = [...Array(count).keys()];
    const noGaps = new Array<number>(count + 1).fill(0);
    const placements = fc.record({
      // The index's order, or the blocks shuffled.
      order: fc.oneof(
        fc.constant(identity),
        fc.shuffledSubarray(identity, { minLength: count, maxLength: count }),
      ),
      // Junk before each block and before the filter: none, or some here and there.
      gaps: fc.oneof(
        fc.constant(noGaps),
        fc.array(fc.constantFrom(0, 0, 0, 0, 1, 5, 300), {
          minLength: count + 1,
          maxLength: count + 1,
        }),
      ),
    });
    await fc.assert(
      fc.asyncProperty(placements, async ({ order, gaps }) => {
        const table = relayout(good, scatter(order, gaps));
        soundBlocks(table);
        // The first index entry whose block is not where the one before it ended.
        let expectedAt = 0;
        let wrong = -1;
        for (let i = 0; i < count && wrong < 0; i++) {
          const position = order.indexOf(i);
          let offset = 0;
          for (let p = 0; p < position; p++) offset += gaps[p]! + raws[order[p]!]!.length;
          offset += gaps[position]!;
          if (offset !== expectedAt) wrong = i;
          expectedAt = offset + raws[i]!.length;
        }
        if (wrong < 0 && gaps[count] === 0) {
          assert.deepEqual(await open(table), expected);
          return;
        }
        await refused(table, wrong >= 0 ? wrong : undefined);
      }),
      {
        numRuns: 60,
        // Junk before the first block, between two, before the filter; two blocks swapped.
        examples: [
          [{ order: identity, gaps: [3, ...noGaps.slice(1)] }],
          [{ order: identity, gaps: noGaps.map((_, i) => (i === 2 ? 1 : 0)) }],
          [{ order: identity, gaps: noGaps.map((_, i) => (i === count ? 5 : 0)) }],
          [{ order: [1, 0, ...identity.slice(2)], gaps: noGaps }],
        ],
      },
    );
  });

  it("a block whose handle lies inside the block before it (a block stored as that block's value) is refused", async () => {
    const table = relayout(good, (blocks) => {
      // Block 0 becomes one entry whose value is block 1's bytes: both blocks are sound.
      const outer = new BlockBuilder(4);
      outer.add(blocks[0]!.key, blocks[1]!.raw, blocks[0]!.key.length, 0, blocks[1]!.raw.length);
      const contents = outer.finish().slice();
      const rest = endToEnd(blocks.slice(2));
      const written = new Output();
      writeBlock(written, contents);
      const head = written.view();
      const inner = Buffer.from(head).indexOf(Buffer.from(blocks[1]!.raw));
      assert.ok(inner > 0);
      return {
        data: Buffer.concat([head, rest.data]),
        handles: [
          { offset: 0, size: contents.length },
          { offset: inner, size: blocks[1]!.raw.length - 5 },
          ...rest.handles.map((h) => ({ offset: h.offset + head.length, size: h.size })),
        ],
      };
    });
    soundBlocks(table);
    const result = await open(table);
    assert.ok(!Array.isArray(result), 'the table was opened');
    assert.equal(result.code, 'WAL_CORRUPTION');
    assert.match(result.message, /index entry 1: data block at offset \d+, expected at \d+/);
  });

  it('a version-2 table (range deletions after the filter, a 60-byte footer) is held to the same layout', async () => {
    const ranges = [{ start: bytes('key-010'), end: bytes('key-020'), sequence: 200 }];
    const v2 = buildTable(
      entries,
      { blockSize: 128, restartInterval: 4, bitsPerKey: 10 },
      ranges,
    ).bytes;
    assert.equal(getU32(v2, v2.length - 48 + 32), 2);
    assert.equal(toHex(relayout(v2, endToEnd)), toHex(v2));
    assert.deepEqual(await open(v2), expected);
    const none = new Array<number>(count + 1).fill(0);
    const identity = [...Array(count).keys()];
    for (const [order, gaps, entry] of [
      [identity, none.map((_, i) => (i === 2 ? 1 : 0)), 2],
      [[1, 0, ...identity.slice(2)], none, 0],
      [identity, none.map((_, i) => (i === count ? 5 : 0)), undefined],
    ] as const) {
      const table = relayout(v2, scatter(order, gaps));
      soundBlocks(table);
      await refused(table, entry);
    }
  });

  it('a table of range deletions only (no data block, its filter at 0) opens as written, and is refused when its filter is moved', async () => {
    const only = buildTable([], LAYOUT, [
      { start: bytes('b'), end: bytes('d'), sequence: 3 },
    ]).bytes;
    assert.equal(dataBlocks(only).length, 0);
    assert.equal(getU64(only, only.length - 48 + 12), 0, 'the writer puts the filter at 0');
    assert.equal(toHex(relayout(only, endToEnd)), toHex(only));
    assert.deepEqual(await open(only), []);
    await refused(relayout(only, scatter([], [7])));
  });
});

describe('LSM-FORMAT §5a range deletions in tables', () => {
  const ranged = (): ReturnType<typeof buildTable> =>
    buildTable([[internalKey(bytes('apple'), 2, KIND_VALUE), bytes('red')]], LAYOUT, [
      { start: bytes('b'), end: bytes('d'), sequence: 3 },
    ]);

  it('the table with a range deletion matches the vector (version 2), and reads back', async () => {
    const { bytes: data, summary } = ranged();
    assert.equal(toHex(data), RANGE_TABLE_VECTOR.trim().replace(/\s+/g, ' '));
    assert.equal(summary.entries, 2);
    // The key range counts the deletion's end in.
    assert.equal(toHex(summary.largest), toHex(internalKey(bytes('d'), 3, KIND_RANGE_DELETE)));
    const { fs, path } = await tableFrom(data);
    const table = await Table.open(fs, path);
    assert.deepEqual(table.ranges, [{ start: bytes('b'), end: bytes('d'), sequence: 3 }]);
    const found = await table.get(bytes('apple'), internalKey(bytes('apple'), 9, KIND_VALUE));
    assert.equal(toHex(found!.value), toHex(bytes('red')));
    await table.close();
  });

  it('a table of range deletions only reads back with no data block', async () => {
    const ranges = [
      { start: bytes('x'), end: bytes('z'), sequence: 5 },
      { start: bytes('a'), end: bytes('c'), sequence: 4 },
    ];
    const { bytes: data, summary } = buildTable([], LAYOUT, ranges);
    assert.equal(toHex(userKeyOf(summary.smallest)), toHex(bytes('a')));
    assert.equal(toHex(userKeyOf(summary.largest)), toHex(bytes('z')));
    const { fs, path } = await tableFrom(data);
    const table = await Table.open(fs, path);
    assert.equal(table.blocks, 0);
    assert.deepEqual(table.ranges, [ranges[1], ranges[0]]);
    await table.close();
  });

  it('a damaged range-deletion block or handle is refused with the offset', async () => {
    const { bytes: good } = ranged();
    // Every bit flip in the range block, handle or footer is caught.
    for (let at = 46; at < good.length; at++) {
      if (at >= 72 && at < 103) continue; // the index block, covered by the flips test
      const bad = good.slice();
      bad[at]! ^= 0x10;
      const { fs, path } = await tableFrom(bad);
      await assert.rejects(Table.open(fs, path), isCode('WAL_CORRUPTION', /offset/), `byte ${at}`);
    }
    // A range whose end is not above its start, with valid checksums.
    const bad = good.slice();
    bad[58] = 0x61; // end 'a' < start 'b'
    const view = new DataView(bad.buffer);
    view.setUint32(68, crc32c(bad.subarray(46, 68)), true);
    const { fs, path } = await tableFrom(bad);
    await assert.rejects(Table.open(fs, path), isCode('WAL_CORRUPTION', /range deletion 0/));
  });
});

describe('LSM-FORMAT §7 batch records', () => {
  it("encode into their store's slab: a store's small records share buffers only with each other, and a renewed slab shares none", () => {
    const put = (key: string, value: Uint8Array) => [
      { kind: KIND_VALUE, key: bytes(key), value } as const,
    ];
    const small = new Uint8Array(100);
    const [a, b] = [new RecordSlab(), new RecordSlab()];
    const a1 = encodeBatch(1, put('a', small), undefined, a);
    const b1 = encodeBatch(1, put('b', small), undefined, b);
    const a2 = encodeBatch(2, put('a', small), undefined, a);
    assert.equal(a1.buffer, a2.buffer, 'one store: one slab');
    assert.notEqual(a1.buffer, b1.buffer, 'two stores: two slabs');
    a.renew();
    const a3 = encodeBatch(3, put('a', small), undefined, a);
    assert.notEqual(a3.buffer, a1.buffer, 'renewed');
    // A record above 4 KiB, or one without a slab, gets a buffer of its own, exactly its size.
    const large = encodeBatch(4, put('a', new Uint8Array(5000)), undefined, a);
    const alone = encodeBatch(5, put('a', small));
    for (const payload of [large, alone]) assert.equal(payload.buffer.byteLength, payload.length);
    for (const [payload, sequence] of [
      [a1, 1],
      [b1, 1],
      [a2, 2],
      [a3, 3],
      [large, 4],
      [alone, 5],
    ] as const) {
      assert.equal(decodeBatch(payload).sequence, sequence);
    }
  });

  it('a range deletion matches the vector; one whose end is not above its start is damage', () => {
    const payload = encodeBatch(7, [
      { kind: KIND_RANGE_DELETE, key: bytes('a'), value: bytes('c') },
    ]);
    assert.equal(toHex(payload), '07 00 00 00 00 00 00 00 01 00 00 00 02 01 61 01 63');
    const [op] = decodeBatch(payload).ops;
    assert.deepEqual([op!.kind, toHex(op!.key), toHex(op!.value!)], [2, '61', '63']);
    for (const hex of [
      '07 00 00 00 00 00 00 00 01 00 00 00 02 01 61 01 61',
      '07 00 00 00 00 00 00 00 01 00 00 00 02 01 62 01 61',
      '07 00 00 00 00 00 00 00 01 00 00 00 02 01 61',
    ]) {
      assert.throws(() => decodeBatch(fromHex(hex)), Malformed, hex);
    }
  });

  it('match the vector and round-trip', () => {
    const payload = encodeBatch(7, [
      { kind: KIND_VALUE, key: bytes('k'), value: bytes('v') },
      { kind: KIND_DELETE, key: bytes('x'), value: undefined },
    ]);
    assert.equal(toHex(payload), '07 00 00 00 00 00 00 00 02 00 00 00 01 01 6b 01 76 00 01 78');
    const decoded = decodeBatch(payload);
    assert.equal(decoded.sequence, 7);
    assert.deepEqual(
      decoded.ops.map((op) => [op.kind, toHex(op.key), op.value && toHex(op.value)]),
      [
        [1, '6b', '76'],
        [0, '78', undefined],
      ],
    );
  });

  it('reject damage', () => {
    const cases = [
      '07 00 00 00 00 00 00 00', // no count
      '07 00 00 00 00 00 00 00 00 00 00 00', // empty
      '07 00 00 00 00 00 00 00 ff ff ff ff 00 01 78', // count beyond the bytes
      '07 00 00 00 00 00 00 00 01 00 00 00 03 01 78', // unknown kind
      '07 00 00 00 00 00 00 00 01 00 00 00 00 01 78 00', // trailing byte
      'ff ff ff ff ff ff 1f 00 02 00 00 00 00 01 78 00 01 78', // sequence overflow
    ];
    for (const hex of cases) assert.throws(() => decodeBatch(fromHex(hex)), Malformed, hex);
  });
});

describe('LSM-FORMAT §8 version edits', () => {
  const table = {
    level: 0,
    number: 2,
    size: 157,
    entries: 2,
    smallest: internalKey(bytes('a'), 1, 1),
    largest: internalKey(bytes('b'), 2, 1),
  };

  it('match the vectors and replay', () => {
    const flush = encodeEdit({ lastSequence: 8, nextFile: 3, add: [table] });
    assert.equal(
      toHex(flush),
      '02 08 03 03 04 00 02 9d 01 02 09 61 01 01 00 00 00 00 00 00 09 62 01 02 00 00 00 00 00 00',
    );
    assert.equal(toHex(encodeEdit({ remove: [{ level: 0, number: 2 }] })), '05 00 02');
    const state = emptyState();
    applyEdit(state, decodeEdit(flush));
    assert.equal(state.lastSequence, 8);
    assert.equal(state.nextFile, 3);
    assert.deepEqual(state.tables.get(2), table);
    const again = emptyState();
    applyEdit(again, { lastSequence: 1, nextFile: 9 });
    applyEdit(again, decodeEdit(encodeEdit(snapshotEdit(state))));
    assert.deepEqual(again, state);
    applyEdit(state, decodeEdit(fromHex('05 00 02')));
    assert.equal(state.tables.size, 0);
  });

  it('reject damage and impossible edits', () => {
    for (const hex of ['', '09', '02', '04 07 02', '04 00 02 01 01 01 61 01 61', '02 01 01']) {
      assert.throws(() => decodeEdit(fromHex(hex)), Malformed, hex);
    }
    const state = emptyState();
    applyEdit(state, { lastSequence: 8, nextFile: 3, add: [table] });
    const impossible = [
      { lastSequence: 7 },
      { nextFile: 2 },
      { remove: [{ level: 1, number: 2 }] },
      { add: [table] },
      { add: [{ ...table, number: 3 }] },
    ];
    for (const edit of impossible) assert.throws(() => applyEdit(state, edit), Malformed);
  });
});
