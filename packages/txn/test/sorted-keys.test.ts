/** The ordered key set against a plain sorted array, with tiny blocks so that blocks split and vanish. */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { SortedKeys } from '../src/sorted-keys.js';

const key = fc.string({ unit: fc.constantFrom('a', 'b', 'c', 'd'), maxLength: 3 });
const bound = fc.option(fc.record({ key, inclusive: fc.boolean() }), { nil: undefined });

describe('SortedKeys', () => {
  it('inserts, deletes, resets and iterates ranges as a sorted array does', () => {
    const op = fc.oneof(
      fc.record({ f: fc.constant('toggle' as const), key }),
      fc.record({ f: fc.constant('reset' as const), keys: fc.uniqueArray(key, { maxLength: 20 }) }),
      fc.record({ f: fc.constant('range' as const), lo: bound, hi: bound, reverse: fc.boolean() }),
    );
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 4 }),
        fc.array(op, { maxLength: 120 }),
        (blockSize, ops) => {
          const keys = new SortedKeys(blockSize);
          let model: string[] = [];
          for (const o of ops) {
            if (o.f === 'toggle') {
              if (model.includes(o.key)) {
                keys.delete(o.key);
                model = model.filter((k) => k !== o.key);
              } else {
                keys.insert(o.key);
                model = [...model, o.key].sort();
              }
            } else if (o.f === 'reset') {
              model = [...o.keys].sort();
              keys.reset(model);
            } else {
              const inside = (k: string) =>
                (o.lo === undefined || (o.lo.inclusive ? k >= o.lo.key : k > o.lo.key)) &&
                (o.hi === undefined || (o.hi.inclusive ? k <= o.hi.key : k < o.hi.key));
              const expected = model.filter(inside);
              if (o.reverse) expected.reverse();
              const got = [
                ...keys.range(
                  o.lo?.key,
                  o.lo?.inclusive ?? true,
                  o.hi?.key,
                  o.hi?.inclusive ?? true,
                  o.reverse,
                ),
              ];
              assert.deepEqual(got, expected);
            }
            assert.equal(keys.size, model.length);
            assert.deepEqual([...keys.range(undefined, true, undefined, true, false)], model);
          }
        },
      ),
      { numRuns: 500 },
    );
  });
});
