/**
 * The Store conformance suite. Every backend, ours or a user's, runs it with a
 * few lines:
 *
 * ```ts
 * import { suite } from '@wal/store/testing';
 * describe('MyStore', () => suite({ test: it, factory: () => MyStore.open(tmp()) }));
 * ```
 *
 * The suite branches on what the store declares in `store.supports`, never on
 * options: a `persistent` store must be given `reopen`, and is then checked for
 * persistence and (when `locking`) for the exclusive lock.
 */
import fc from 'fast-check';
import type { Store } from '../store.js';

/** What the suite needs from the test runner and the backend. */
export interface SuiteOptions {
  /** The runner's test function, e.g. mocha's `it` or `node:test`'s `test`. */
  readonly test: (name: string, fn: () => Promise<void>) => unknown;
  /** Creates a fresh, empty, open store at a location of its own. */
  readonly factory: () => Promise<Store>;
  /**
   * Opens the location of `store` again, whether `store` is still open or
   * closed. Required when the store declares `supports.persistent`.
   */
  readonly reopen?: (store: Store) => Promise<Store>;
  /** Runs per property-based test (default 25). */
  readonly runs?: number;
}

/** Thrown when a check of the suite fails; the message says what the contract requires. */
export class ConformanceError extends Error {
  override readonly name = 'ConformanceError';
}

function check(condition: unknown, message: string): asserts condition {
  if (!condition) throw new ConformanceError(message);
}

function equalBytes(actual: Uint8Array, expected: Uint8Array, what: string): void {
  check(
    actual.length === expected.length,
    `${what}: expected ${expected.length} bytes, got ${actual.length}`,
  );
  for (let i = 0; i < expected.length; i++) {
    if (actual[i] !== expected[i]) {
      throw new ConformanceError(`${what}: byte ${i} is ${actual[i]}, expected ${expected[i]}`);
    }
  }
}

/**
 * Calls `operation` and returns its promise; a synchronous throw is turned into
 * a ConformanceError, since promise-returning calls must reject instead.
 */
function start(operation: () => Promise<unknown>, what: string): Promise<unknown> {
  try {
    return operation();
  } catch (error) {
    return Promise.reject(
      new ConformanceError(
        `${what}: threw synchronously (${String(error)}); a promise-returning call must reject`,
      ),
    );
  }
}

async function expectRejection(
  promise: Promise<unknown>,
  expected: { code: string; name?: string },
  what: string,
): Promise<void> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof ConformanceError) throw error;
    const { code, name } = error as { code?: unknown; name?: unknown };
    check(
      code === expected.code,
      `${what}: expected code ${expected.code}, got ${String(code)} (${String(error)})`,
    );
    if (expected.name !== undefined) {
      check(
        error instanceof Error && name === expected.name,
        `${what}: expected a ${expected.name}, got ${String(name)}`,
      );
    }
    return;
  }
  throw new ConformanceError(`${what}: resolved, expected a rejection with ${expected.code}`);
}

function rejectsWith(
  operation: () => Promise<unknown>,
  expected: { code: string; name?: string },
  what: string,
): Promise<void> {
  return expectRejection(start(operation, what), expected, what);
}

function pattern(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** A byte-level reference model of a store: what every read must return. */
class Model {
  head = 0;
  bytes = new Uint8Array(0);

  get length(): number {
    return this.bytes.length;
  }

  write(offset: number, data: Uint8Array): void {
    const end = offset + data.length;
    if (end > this.bytes.length) {
      const grown = new Uint8Array(end);
      grown.set(this.bytes);
      this.bytes = grown;
    }
    this.bytes.set(data, offset);
  }

  read(offset: number, length: number): Uint8Array {
    return this.bytes.slice(offset, Math.min(offset + length, this.bytes.length));
  }

  truncate(length: number): void {
    this.bytes = this.bytes.slice(0, length);
  }
}

type Op =
  | { kind: 'write'; at: number; length: number; seed: number }
  | { kind: 'read'; at: number; length: number }
  | { kind: 'truncate'; at: number }
  | { kind: 'truncateBefore'; at: number }
  | { kind: 'sync' };

// Positions are fractions of the live range (plus a gap past the end for
// writes), so every generated operation is valid whatever came before it.
const opArbitrary: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant('write' as const),
      at: fc.double({ min: 0, max: 1.2, noNaN: true }),
      length: fc.oneof(fc.integer({ min: 0, max: 64 }), fc.integer({ min: 0, max: 200_000 })),
      seed: fc.nat(),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('read' as const),
      at: fc.double({ min: 0, max: 1.1, noNaN: true }),
      length: fc.integer({ min: 0, max: 100_000 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('truncate' as const),
      at: fc.double({ min: 0, max: 1, noNaN: true }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('truncateBefore' as const),
      at: fc.double({ min: 0, max: 1, noNaN: true }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('sync' as const) }) },
);

/**
 * Registers the conformance tests with `options.test`. Each test creates its
 * own store with `options.factory` and closes it.
 */
export function suite(options: SuiteOptions): void {
  const { test, factory, reopen } = options;
  const runs = options.runs ?? 25;

  async function withStore(fn: (store: Store) => Promise<void>): Promise<void> {
    const store = await factory();
    try {
      await fn(store);
    } finally {
      await store.close();
    }
  }

  test('a new store is empty', () =>
    withStore(async (store) => {
      check((store.head as number) === 0, `head of a new store is ${store.head}, expected 0`);
      check((store.length as number) === 0, `length of a new store is ${store.length}, expected 0`);
      check(!store.closed, 'a new store reports closed');
      equalBytes(await store.read(0, 10), new Uint8Array(0), 'read of an empty store');
      const meta = await store.readMeta();
      check(Object.keys(meta).length === 0, `a new store has metadata ${JSON.stringify(meta)}`);
      const { supports } = store;
      for (const key of ['durable', 'persistent', 'prefixReclaim', 'locking'] as const) {
        check(typeof supports[key] === 'boolean', `supports.${key} must be a boolean`);
      }
      check(!supports.locking || supports.persistent, 'a locking store must be persistent');
      check(
        !supports.persistent || reopen !== undefined,
        'a persistent store needs the suite option `reopen`',
      );
    }));

  test('writes and reads round-trip against a byte model (property)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(opArbitrary, { maxLength: 12 }), async (ops) => {
        const store = await factory();
        const model = new Model();
        try {
          for (const op of ops) {
            const live = model.length - model.head;
            switch (op.kind) {
              case 'write': {
                const at = model.head + Math.floor(op.at * live);
                const data = pattern(op.length, op.seed);
                await store.write(at, data);
                model.write(at, data);
                break;
              }
              case 'read': {
                const at = model.head + Math.floor(op.at * live);
                const expected = model.read(at, op.length);
                equalBytes(await store.read(at, op.length), expected, `read(${at}, ${op.length})`);
                if (store.readInto !== undefined) {
                  // Into a dirty buffer: every byte up to the count is written.
                  const into = new Uint8Array(op.length).fill(0xa5);
                  const count = await store.readInto(at, into);
                  check(
                    count === expected.length,
                    `readInto(${at}, ${op.length}) read ${count}, expected ${expected.length}`,
                  );
                  equalBytes(into.subarray(0, count), expected, `readInto(${at}, ${op.length})`);
                }
                break;
              }
              case 'truncate': {
                const at = model.head + Math.floor(op.at * live);
                await store.truncate(at);
                model.truncate(at);
                break;
              }
              case 'truncateBefore': {
                const at = model.head + Math.floor(op.at * live);
                await store.truncateBefore(at);
                model.head = at;
                break;
              }
              case 'sync':
                await store.sync();
                break;
            }
            check(
              (store.head as number) === model.head,
              `head is ${store.head}, expected ${model.head} after ${op.kind}`,
            );
            check(
              (store.length as number) === model.length,
              `length is ${store.length}, expected ${model.length} after ${op.kind}`,
            );
          }
          const live = model.length - model.head;
          equalBytes(
            await store.read(model.head, live),
            model.read(model.head, live),
            'final read of the live range',
          );
        } finally {
          await store.close();
        }
      }),
      { numRuns: runs },
    );
  });

  test('a gap before a write reads as zeros', () =>
    withStore(async (store) => {
      await store.write(0, pattern(10, 1));
      await store.write(100_000, pattern(5, 2));
      check((store.length as number) === 100_005, `length is ${store.length}, expected 100005`);
      const gap = await store.read(10, 99_990);
      equalBytes(gap, new Uint8Array(99_990), 'the gap');
      if (store.readInto !== undefined) {
        const into = new Uint8Array(100_000).fill(0xa5);
        const count = await store.readInto(10, into);
        check(count === 99_995, `readInto read ${count}, expected 99995 (to the end)`);
        equalBytes(
          into.subarray(0, 99_990),
          new Uint8Array(99_990),
          'the gap read into a dirty buffer',
        );
        equalBytes(into.subarray(99_990, 99_995), pattern(5, 2), 'the bytes after the gap');
      }
      equalBytes(await store.read(100_000, 5), pattern(5, 2), 'the bytes after the gap');
    }));

  test('a store keeps a copy of what it writes: the caller may reuse its buffer', () =>
    withStore(async (store) => {
      const buffer = pattern(300, 4);
      await store.write(0, buffer);
      buffer.fill(0xee);
      equalBytes(
        await store.read(0, 300),
        pattern(300, 4),
        'the bytes after the buffer was reused',
      );
      const read = await store.read(0, 300);
      read.fill(0xdd);
      equalBytes(
        await store.read(0, 300),
        pattern(300, 4),
        'the bytes after a read result was changed',
      );
    }));

  test('a read is short only at the end of the store', () =>
    withStore(async (store) => {
      const data = pattern(1000, 3);
      await store.write(0, data);
      equalBytes(await store.read(990, 50), data.subarray(990), 'read across the end');
      equalBytes(await store.read(1000, 5), new Uint8Array(0), 'read at the end');
      equalBytes(await store.read(5000, 5), new Uint8Array(0), 'read past the end');
      equalBytes(await store.read(10, 0), new Uint8Array(0), 'zero-length read');
      equalBytes(await store.read(0, 1000), data, 'read of everything');
    }));

  test('truncate drops the suffix, and a later write past it reads zeros between', () =>
    withStore(async (store) => {
      await store.write(0, pattern(5000, 4));
      await store.truncate(1200);
      check((store.length as number) === 1200, `length is ${store.length} after truncate(1200)`);
      equalBytes(
        await store.read(0, 5000),
        pattern(5000, 4).subarray(0, 1200),
        'read after truncate',
      );
      await store.write(3000, pattern(10, 5));
      equalBytes(
        await store.read(1200, 1800),
        new Uint8Array(1800),
        'bytes dropped by truncate then re-exposed',
      );
      await rejectsWith(
        () => store.truncate(store.length + 1),
        { code: 'ERR_OUT_OF_RANGE', name: 'RangeError' },
        'truncate past the end',
      );
      await store.truncate(store.length);
      await store.truncate(0);
      check((store.length as number) === 0, 'truncate(0) empties the store');
    }));

  test('truncateBefore moves the head exactly and never renumbers', () =>
    withStore(async (store) => {
      const data = pattern(300_000, 6);
      await store.write(0, data);
      await store.truncateBefore(70_001);
      check((store.head as number) === 70_001, `head is ${store.head}, expected exactly 70001`);
      check((store.length as number) === 300_000, `length is ${store.length}, expected 300000`);
      equalBytes(
        await store.read(70_001, 1000),
        data.subarray(70_001, 71_001),
        'read at the new head',
      );
      equalBytes(await store.read(299_000, 1000), data.subarray(299_000), 'read at the end');
      await rejectsWith(
        () => store.read(70_000, 1),
        { code: 'ERR_OUT_OF_RANGE' },
        'read below the head',
      );
      await rejectsWith(
        () => store.write(0, new Uint8Array(1)),
        { code: 'ERR_OUT_OF_RANGE' },
        'write below the head',
      );
      await rejectsWith(
        () => store.truncateBefore(70_000),
        { code: 'ERR_OUT_OF_RANGE' },
        'truncateBefore backwards',
      );
      await rejectsWith(
        () => store.truncateBefore(300_001),
        { code: 'ERR_OUT_OF_RANGE' },
        'truncateBefore past the end',
      );
      await rejectsWith(
        () => store.truncate(70_000),
        { code: 'ERR_OUT_OF_RANGE' },
        'truncate below the head',
      );
      await store.write(300_000, pattern(7, 7));
      equalBytes(await store.read(300_000, 7), pattern(7, 7), 'append after truncateBefore');
      await store.truncateBefore(store.length);
      check(
        (store.head as number) === store.length,
        'truncateBefore(length) leaves an empty live range',
      );
      equalBytes(
        await store.read(store.head, 10),
        new Uint8Array(0),
        'read of an empty live range',
      );
      await store.truncate(store.head);
    }));

  test('metadata merges, removes keys set to undefined, and reads as a copy', () =>
    withStore(async (store) => {
      await store.updateMeta({ a: 1, b: 'two', c: true });
      await store.updateMeta({ b: 'deux', c: undefined, d: 0.5 });
      const meta = await store.readMeta();
      check(
        JSON.stringify(Object.entries(meta).sort()) ===
          JSON.stringify([
            ['a', 1],
            ['b', 'deux'],
            ['d', 0.5],
          ]),
        `metadata is ${JSON.stringify(meta)}`,
      );
      (meta as Record<string, unknown>).a = 99;
      check((await store.readMeta()).a === 1, 'mutating a read copy changed the store');
      await Promise.all([
        store.updateMeta({ n: 1 }),
        store.updateMeta({ n: 2 }),
        store.updateMeta({ n: 3 }),
      ]);
      check((await store.readMeta()).n === 3, 'concurrent updates must apply in call order');
      for (const bad of [null, Number.NaN, { x: 1 }, [1], 10n]) {
        await rejectsWith(
          () => store.updateMeta({ bad: bad as never }),
          { code: 'ERR_INVALID_ARG_TYPE' },
          `metadata value ${String(bad)}`,
        );
      }
      await rejectsWith(
        () => store.updateMeta(null as never),
        { code: 'ERR_INVALID_ARG_TYPE' },
        'metadata update null',
      );
      await rejectsWith(
        () => store.updateMeta({ big: 'x'.repeat(70_000) }),
        { code: 'ERR_OUT_OF_RANGE' },
        'oversized metadata',
      );
      check((await store.readMeta()).big === undefined, 'a rejected update must change nothing');
    }));

  test('concurrent writes to disjoint ranges all land', () =>
    withStore(async (store) => {
      const chunk = 4099;
      const order = [7, 2, 9, 0, 5, 1, 8, 3, 6, 4];
      await Promise.all(order.map((i) => store.write(i * chunk, pattern(chunk, i + 10))));
      check(
        (store.length as number) === 10 * chunk,
        `length is ${store.length}, expected ${10 * chunk}`,
      );
      const all = await store.read(0, 10 * chunk);
      for (let i = 0; i < 10; i++) {
        equalBytes(all.subarray(i * chunk, (i + 1) * chunk), pattern(chunk, i + 10), `chunk ${i}`);
      }
      await Promise.all([
        store.sync(),
        store.read(0, 10),
        store.write(10 * chunk, pattern(3, 1)),
        store.sync(),
      ]);
    }));

  test('truncations are exclusive: WAL_BUSY while other work is in flight', () =>
    withStore(async (store) => {
      await store.write(0, pattern(100, 8));
      // Every call is started before anything is awaited, so the first one is
      // still in flight whatever the backend's speed.
      const writing = store.write(100, pattern(100, 9));
      const truncate = start(() => store.truncate(50), 'truncate during a write');
      const truncateBefore = start(() => store.truncateBefore(50), 'truncateBefore during a write');
      await expectRejection(truncate, { code: 'WAL_BUSY' }, 'truncate during a write');
      await expectRejection(truncateBefore, { code: 'WAL_BUSY' }, 'truncateBefore during a write');
      await writing;
      const truncating = store.truncate(150);
      const write = start(() => store.write(0, new Uint8Array(1)), 'write during a truncate');
      const sync = start(() => store.sync(), 'sync during a truncate');
      const read = start(() => store.read(0, 1), 'read during a truncate');
      await expectRejection(write, { code: 'WAL_BUSY' }, 'write during a truncate');
      await expectRejection(sync, { code: 'WAL_BUSY' }, 'sync during a truncate');
      await expectRejection(read, { code: 'WAL_BUSY' }, 'read during a truncate');
      await truncating;
      check((store.length as number) === 150, `length is ${store.length} after truncate(150)`);
      await store.write(150, pattern(1, 1));
    }));

  test('invalid arguments reject with coded TypeError / RangeError and change nothing', () =>
    withStore(async (store) => {
      await store.write(0, pattern(10, 1));
      const badNumbers: Array<[unknown, string]> = [
        [-1, 'ERR_OUT_OF_RANGE'],
        [1.5, 'ERR_OUT_OF_RANGE'],
        [Number.NaN, 'ERR_OUT_OF_RANGE'],
        [2 ** 53, 'ERR_OUT_OF_RANGE'],
        ['1', 'ERR_INVALID_ARG_TYPE'],
        [undefined, 'ERR_INVALID_ARG_TYPE'],
      ];
      for (const [bad, code] of badNumbers) {
        const n = bad as number;
        await rejectsWith(
          () => store.write(n, new Uint8Array(1)),
          { code },
          `write(${String(bad)})`,
        );
        await rejectsWith(() => store.read(n, 1), { code }, `read(${String(bad)}, 1)`);
        await rejectsWith(() => store.read(0, n), { code }, `read(0, ${String(bad)})`);
        await rejectsWith(() => store.truncate(n), { code }, `truncate(${String(bad)})`);
        await rejectsWith(
          () => store.truncateBefore(n),
          { code },
          `truncateBefore(${String(bad)})`,
        );
      }
      await rejectsWith(
        () => store.write(0, 'abc' as never),
        { code: 'ERR_INVALID_ARG_TYPE', name: 'TypeError' },
        'write of a string',
      );
      await rejectsWith(
        () => store.write(2 ** 53 - 2, new Uint8Array(2)),
        { code: 'ERR_OUT_OF_RANGE' },
        'write past 2^53 - 1',
      );
      check(
        (store.length as number) === 10 && (store.head as number) === 0,
        'a rejected call changed the store',
      );
      equalBytes(await store.read(0, 10), pattern(10, 1), 'data after rejected calls');
    }));

  test('every call after close rejects with WAL_CLOSED; close waits for work in flight', async () => {
    const store = await factory();
    const writing = store.write(0, pattern(5000, 2));
    const closing = store.close();
    check(store.closed, 'closed is false once close() was called');
    await writing;
    await closing;
    await store.close();
    const calls: Array<[string, () => Promise<unknown>]> = [
      ['write', () => store.write(0, new Uint8Array(1))],
      ['read', () => store.read(0, 1)],
      ['sync', () => store.sync()],
      ['truncate', () => store.truncate(0)],
      ['truncateBefore', () => store.truncateBefore(0)],
      ['readMeta', () => store.readMeta()],
      ['updateMeta', () => store.updateMeta({ a: 1 })],
    ];
    const { readInto } = store;
    if (readInto !== undefined) {
      calls.push(['readInto', () => readInto.call(store, 0, new Uint8Array(1))]);
    }
    for (const [name, call] of calls) {
      await rejectsWith(call, { code: 'WAL_CLOSED' }, `${name} after close`);
    }
  });

  test('persistent stores keep data, head and metadata across close and reopen', async () => {
    const store = await factory();
    if (!store.supports.persistent) {
      await store.close();
      return;
    }
    check(reopen !== undefined, 'a persistent store needs the suite option `reopen`');
    const data = pattern(150_000, 11);
    try {
      await store.write(0, data);
      await store.updateMeta({ owner: 'suite', version: 3 });
      await store.truncateBefore(12_345);
      await store.sync();
    } finally {
      await store.close();
    }
    const again = await reopen(store);
    try {
      check(
        (again.head as number) === 12_345,
        `head after reopen is ${again.head}, expected 12345`,
      );
      check(
        (again.length as number) === 150_000,
        `length after reopen is ${again.length}, expected 150000`,
      );
      equalBytes(await again.read(12_345, 150_000), data.subarray(12_345), 'data after reopen');
      const meta = await again.readMeta();
      check(
        meta.owner === 'suite' && meta.version === 3,
        `metadata after reopen is ${JSON.stringify(meta)}`,
      );
      await again.truncate(100_000);
    } finally {
      await again.close();
    }
    const third = await reopen(again);
    try {
      check(
        (third.length as number) === 100_000,
        `length after truncate and reopen is ${third.length}, expected 100000`,
      );
    } finally {
      await third.close();
    }
  });

  test('locking stores refuse a second opener with WAL_LOCKED until closed', async () => {
    const store = await factory();
    if (!store.supports.locking || reopen === undefined) {
      await store.close();
      return;
    }
    try {
      await rejectsWith(() => reopen(store), { code: 'WAL_LOCKED' }, 'second opener');
    } finally {
      await store.close();
    }
    const again = await reopen(store);
    await again.close();
  });
}
