/**
 * Keys and values round-trip exactly: arbitrary bytes (0x00–0xff, empty,
 * longer than 64 bytes, views at an offset into a larger buffer) and
 * strings (ASCII, emoji, any code point: stored as their UTF-8 bytes; a
 * string holding a lone surrogate is refused) read back the same
 * in the store that committed them, after replaying the log, after a
 * checkpoint plus later commits, and from a checkpoint alone. Also: the
 * buffer commit records are encoded in does not stay grown after a large
 * commit.
 */
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { CrashFs } from '@wal/store/testing';
import fc from 'fast-check';
import type { TxnStore } from '../src/index.js';
import { isCode, memoryStore, openOnFs, text } from './helpers.js';

type Input = Uint8Array | string;
/** One commit: its puts (a value) and deletes (`undefined`), in order. */
type Commit = Array<{ key: Input; value: Input | undefined }>;

const encoder = new TextEncoder();

/** The bytes the store must hold for `input` (a copy). */
function bytesOf(input: Input): Uint8Array {
  return typeof input === 'string' ? encoder.encode(input) : Uint8Array.from(input);
}

/** Bytes as a view at an offset into a larger buffer, so `byteOffset` matters. */
function bytes(lengths: { minLength?: number; maxLength: number }): fc.Arbitrary<Uint8Array> {
  return fc
    .tuple(fc.uint8Array({ maxLength: 3 }), fc.uint8Array(lengths), fc.uint8Array({ maxLength: 3 }))
    .map(([before, middle, after]) => {
      const all = new Uint8Array(before.length + middle.length + after.length);
      all.set(before);
      all.set(middle, before.length);
      all.set(after, before.length + middle.length);
      return all.subarray(before.length, before.length + middle.length);
    });
}

/** Inputs from short to past the 64-byte `Buffer` path, as bytes and as strings of every kind. */
function input(long: number): fc.Arbitrary<Input> {
  return fc.oneof(
    bytes({ maxLength: 8 }),
    bytes({ minLength: 60, maxLength: long }),
    fc.uint8Array({ min: 0x80, max: 0xff, maxLength: long }),
    fc.string({ maxLength: long }),
    fc.string({ unit: 'grapheme', maxLength: long / 4 }),
    fc.string({ unit: 'binary', maxLength: long / 2 }),
    fc.string({ unit: fc.constantFrom('a', 'é', '😀', '\u{10ffff}'), maxLength: 8 }),
  );
}

const commit: fc.Arbitrary<Commit> = fc.array(
  fc.record({ key: input(80), value: fc.option(input(300), { nil: undefined }) }),
  { minLength: 1, maxLength: 6 },
);
const commits = fc.array(commit, { minLength: 1, maxLength: 4 });

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/** The state after `commits`: hex key → value bytes (what the store must hold). */
function apply(model: Map<string, Uint8Array>, batch: readonly Commit[]): void {
  for (const writes of batch) {
    for (const { key, value } of writes) {
      if (value === undefined) model.delete(hex(bytesOf(key)));
      else model.set(hex(bytesOf(key)), bytesOf(value));
    }
  }
}

async function commitAll(store: TxnStore, batch: readonly Commit[]): Promise<void> {
  for (const writes of batch) {
    await store.run((tx) => {
      for (const { key, value } of writes) {
        if (value === undefined) tx.delete(key);
        else tx.put(key, value);
      }
    });
  }
}

/** Every read of `store` (a get of each key ever written, and a full scan) returns the model's bytes. */
async function check(
  store: TxnStore,
  model: ReadonlyMap<string, Uint8Array>,
  written: readonly Input[],
  when: string,
): Promise<void> {
  await store.run((tx) => {
    for (const key of written) {
      const value = tx.get(key);
      const expected = model.get(hex(bytesOf(key)));
      assert.deepEqual(
        value === undefined ? undefined : hex(value),
        expected === undefined ? undefined : hex(expected),
        `${when}: get ${hex(bytesOf(key))}`,
      );
    }
    const scanned = tx.scan().map((e) => [hex(e.key), hex(e.value)]);
    const expected = [...model]
      .sort(([a], [b]) => Buffer.compare(Buffer.from(a, 'hex'), Buffer.from(b, 'hex')))
      .map(([k, v]) => [k, hex(v)]);
    assert.deepEqual(scanned, expected, `${when}: scan`);
  });
}

describe('keys and values round-trip', () => {
  it('as the same bytes after commit, replay, checkpoint, and checkpoint plus log (property)', async () => {
    await fc.assert(
      fc.asyncProperty(commits, commits, async (first, second) => {
        const fs = new CrashFs();
        const model = new Map<string, Uint8Array>();
        const written = [...first, ...second].flatMap((writes) => writes.map((w) => w.key));
        let store = await openOnFs(fs);
        const reopen = async (): Promise<void> => {
          await store.close();
          store = await openOnFs(fs);
        };
        try {
          await commitAll(store, first);
          apply(model, first);
          await check(store, model, written, 'committed');
          await reopen();
          await check(store, model, written, 'log replayed');
          await store.checkpoint();
          await commitAll(store, second);
          apply(model, second);
          await check(store, model, written, 'after a checkpoint and more commits');
          await reopen();
          await check(store, model, written, 'checkpoint plus log replayed');
          const info = await store.checkpoint();
          await reopen();
          // Only the checkpoint's own commit record is left, and replay skips it.
          assert.equal(store.log.head, info?.lsn, 'the log starts at the checkpoint');
          await check(store, model, written, 'checkpoint alone');
        } finally {
          await store.close();
        }
      }),
      { numRuns: 60 },
    );
  });
});

describe('the commit record buffer', () => {
  it('is not kept at the size of the largest commit', async () => {
    const store = await memoryStore();
    // The encoded payload handed to the log is a view of the buffer it was encoded in.
    const buffers: number[] = [];
    const log = store.log;
    const append = log.append.bind(log);
    log.append = ((payload: Uint8Array, options?: Parameters<typeof log.append>[1]) => {
      buffers.push(payload.buffer.byteLength);
      return options === undefined ? append(payload) : append(payload, options);
    }) as typeof log.append;
    await store.run((tx) => tx.put('small', 'a'));
    await store.run((tx) => tx.put('large', new Uint8Array(1 << 20)));
    await store.run((tx) => tx.put('small', 'b'));
    assert.equal(buffers.length, 3);
    assert.ok(buffers[1]! >= 1 << 20);
    assert.ok(buffers[2]! < 1 << 16, `a small commit after a large one used ${buffers[2]} bytes`);
    assert.deepEqual(store.begin().get('large'), new Uint8Array(1 << 20));
    await store.close();
  });
});

describe('strings the store is given', () => {
  it('are copied: a key and value sliced from a large string do not keep it alive', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const store = await memoryStore();
    try {
      gc();
      const before = process.memoryUsage().heapUsed;
      for (let i = 0; i < 64; i++) {
        // A 1 MiB string of its own (a request body, say), of which 20 characters are kept.
        const page = `${i}|${'a'.repeat(1 << 20)}`;
        await store.run((tx) => tx.put(page.slice(0, 16), page.slice(2, 22)));
      }
      gc();
      const grown = process.memoryUsage().heapUsed - before;
      assert.ok(grown < 16 * 2 ** 20, `the heap grew by ${(grown / 2 ** 20).toFixed(1)} MiB`);
      assert.equal(store.stats().keys, 64);
    } finally {
      await store.close();
    }
  });
});

describe('a string holding a lone surrogate', () => {
  it('is refused as a key, a value or a scan bound (ERR_INVALID_ARG_VALUE), never stored as U+FFFD', async () => {
    const store = await memoryStore();
    try {
      const tx = store.begin();
      for (const lone of [
        '\ud800',
        '\udc00',
        'a\udbffb',
        '\udc00\ud800',
        `${'x'.repeat(40)}\ud800`,
      ]) {
        assert.throws(() => tx.put(lone, 'v'), isCode('ERR_INVALID_ARG_VALUE'));
        assert.throws(() => tx.put('k', lone), isCode('ERR_INVALID_ARG_VALUE'));
        assert.throws(() => tx.get(lone), isCode('ERR_INVALID_ARG_VALUE'));
        assert.throws(() => tx.delete(lone), isCode('ERR_INVALID_ARG_VALUE'));
        assert.throws(() => tx.scan({ gte: lone }), isCode('ERR_INVALID_ARG_VALUE'));
      }
      // A pair is a code point: accepted.
      tx.put('\ud83d\ude00', 'pair');
      await tx.commit();
      assert.equal(text(store.begin().get('😀')), 'pair');
      assert.equal(store.stats().keys, 1);
    } finally {
      await store.close();
    }
  });
});

describe('a key or value longer than the longest string', () => {
  it('is refused with ERR_OUT_OF_RANGE, and the transaction goes on', async () => {
    const store = await memoryStore();
    try {
      const tx = store.begin();
      const huge = new Uint8Array(2 ** 29);
      assert.throws(() => tx.put('k', huge), isCode('ERR_OUT_OF_RANGE'));
      assert.throws(() => tx.put(huge, 'v'), isCode('ERR_OUT_OF_RANGE'));
      assert.throws(() => tx.get(huge), isCode('ERR_OUT_OF_RANGE'));
      tx.put('k', 'v');
      await tx.commit();
      assert.equal(text(store.begin().get('k')), 'v');
    } finally {
      await store.close();
    }
  });
});
