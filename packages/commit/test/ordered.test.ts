/** The internal ordered structures behind the waiter lists and the parked completions. */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { RangeSet, type Waiter, WaiterQueue } from '../src/ordered.js';

const noop = (): void => {};

type QueueOp =
  | { readonly kind: 'push' | 'takeAbove' | 'release'; readonly target: number }
  | { readonly kind: 'takeAll' };

/** Runs `ops` on a WaiterQueue and on a plain array stable-sorted by target. */
function checkQueue(ops: readonly QueueOp[]): void {
  const queue = new WaiterQueue();
  let model: Waiter[] = [];
  const released: Waiter[] = [];
  let arrivals = 0;
  const arrival = new Map<Waiter, number>();
  const byArrival = (list: Waiter[]): Waiter[] =>
    [...list].sort((a, b) => arrival.get(a)! - arrival.get(b)!);
  for (const op of ops) {
    switch (op.kind) {
      case 'push': {
        const added: Waiter = {
          target: op.target,
          resolve: () => released.push(added),
          reject: noop,
        };
        arrival.set(added, arrivals++);
        queue.push(added);
        let at = model.length;
        while (at > 0 && model[at - 1]!.target > op.target) at--;
        model.splice(at, 0, added);
        break;
      }
      case 'release': {
        released.length = 0;
        const left = queue.release(op.target);
        assert.deepEqual(released, byArrival(model.filter((entry) => entry.target <= op.target)));
        model = model.filter((entry) => entry.target > op.target);
        assert.equal(left, model[0]?.target ?? Number.POSITIVE_INFINITY);
        break;
      }
      case 'takeAbove': {
        const above = model.filter((entry) => entry.target > op.target);
        assert.deepEqual(queue.takeAbove(op.target), byArrival(above));
        model = model.filter((entry) => entry.target <= op.target);
        break;
      }
      case 'takeAll':
        assert.deepEqual(queue.takeAll(), byArrival(model));
        model = [];
        break;
    }
    assert.equal(queue.size, model.length);
    assert.equal(queue.firstTarget, model[0]?.target ?? Number.POSITIVE_INFINITY);
  }
  assert.deepEqual(queue.takeAll(), byArrival(model));
}

type RangeOp =
  | { readonly kind: 'insert'; readonly slot: number; readonly length: number }
  | { readonly kind: 'shift' }
  | { readonly kind: 'dropFrom' | 'endBefore'; readonly offset: number };

/** Runs `ops` on a RangeSet and on a plain sorted array; overlapping inserts are skipped. */
function checkRanges(ops: readonly RangeOp[]): void {
  const set = new RangeSet();
  let model: Array<[number, number]> = [];
  for (const op of ops) {
    switch (op.kind) {
      case 'insert': {
        const start = op.slot * 4;
        const end = start + op.length;
        if (model.some(([s, e]) => s < end && e > start)) break;
        set.insert(start, end);
        model.push([start, end]);
        model.sort((a, b) => a[0] - b[0]);
        break;
      }
      case 'shift':
        if (model.length > 0) assert.equal(set.shift(), model.shift()![1]);
        break;
      case 'dropFrom':
        set.dropFrom(op.offset);
        model = model.filter(([start]) => start < op.offset);
        break;
      case 'endBefore': {
        const below = model.filter(([start]) => start < op.offset);
        assert.equal(set.endBefore(op.offset), below.at(-1)?.[1] ?? -1);
        break;
      }
    }
    assert.equal(set.size, model.length);
    assert.equal(set.firstStart, model[0]?.[0] ?? Number.POSITIVE_INFINITY);
  }
}

describe('ordered structures (internal)', () => {
  it('WaiterQueue releases by target, each batch in arrival order', () => {
    const target = fc.integer({ min: 0, max: 30 });
    const op: fc.Arbitrary<QueueOp> = fc.oneof(
      { weight: 6, arbitrary: target.map((t) => ({ kind: 'push' as const, target: t })) },
      { weight: 4, arbitrary: target.map((t) => ({ kind: 'release' as const, target: t })) },
      { weight: 1, arbitrary: target.map((t) => ({ kind: 'takeAbove' as const, target: t })) },
      { weight: 1, arbitrary: fc.constant({ kind: 'takeAll' as const }) },
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 200 }), (ops) => checkQueue(ops)),
      { numRuns: 300 },
    );
  });

  it('WaiterQueue compacts a long run', () => {
    const ops: QueueOp[] = [];
    for (let i = 0; i < 3000; i++) ops.push({ kind: 'push', target: i });
    for (let i = 0; i < 2500; i++) ops.push({ kind: 'release', target: i });
    ops.push({ kind: 'push', target: 5 }, { kind: 'push', target: 2600 });
    for (let i = 2500; i < 3100; i++) ops.push({ kind: 'release', target: i });
    checkQueue(ops);
  });

  it('RangeSet keeps disjoint ranges by start', () => {
    const op: fc.Arbitrary<RangeOp> = fc.oneof(
      {
        weight: 8,
        arbitrary: fc
          .tuple(fc.integer({ min: 0, max: 60 }), fc.integer({ min: 1, max: 6 }))
          .map(([slot, length]) => ({ kind: 'insert' as const, slot, length })),
      },
      { weight: 3, arbitrary: fc.constant({ kind: 'shift' as const }) },
      {
        weight: 2,
        arbitrary: fc
          .tuple(
            fc.constantFrom('dropFrom' as const, 'endBefore' as const),
            fc.integer({ min: 0, max: 250 }),
          )
          .map(([kind, offset]) => ({ kind, offset })),
      },
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 200 }), (ops) => checkRanges(ops)),
      { numRuns: 300 },
    );
  });

  it('RangeSet grows and recentres under long runs at either end', () => {
    const ops: RangeOp[] = [];
    for (let i = 500; i >= 0; i--) ops.push({ kind: 'insert', slot: i, length: 4 });
    for (let i = 0; i < 400; i++) ops.push({ kind: 'shift' });
    for (let i = 501; i < 1200; i++) ops.push({ kind: 'insert', slot: i, length: 2 });
    ops.push({ kind: 'endBefore', offset: 2001 });
    for (let i = 0; i < 700; i++) ops.push({ kind: 'shift' });
    checkRanges(ops);
  });
});
