/**
 * Every operation at once: random sequences of writes, reads, truncations and
 * syncs checked against a byte-level model (property).
 */
import fc from 'fast-check';
import { check, equalBytes, pattern } from './check.js';
import type { SuiteContext } from './context.js';

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

/** Registers the model-based property over every data operation. */
export function modelTests(context: SuiteContext): void {
  const { test, factory, runs } = context;

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
}
