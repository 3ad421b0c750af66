/**
 * The memtable's order against a model: keys of every length around the
 * prefix its nodes keep (ties of zero bytes past a key's end, keys sharing
 * that whole prefix), versions newest first; seeks land where the model says.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { compareBytes } from '../src/coding.js';
import { Memtable } from '../src/memtable.js';

/**
 * Bytes near the edges; keys sharing a stem of any length up to past the
 * kept prefix, so that every prefix word, and the bytes after them, decide
 * some comparisons.
 */
const byte = fc.constantFrom(0, 1, 0x7f, 0x80, 0xfe, 0xff);
const key = fc.oneof(
  fc.array(byte, { maxLength: 24 }).map((bytes) => Uint8Array.from(bytes)),
  fc
    .tuple(fc.integer({ min: 0, max: 20 }), fc.array(byte, { maxLength: 8 }))
    .map(([stem, tail]) => Uint8Array.from([...new Array<number>(stem).fill(0x30), ...tail])),
  fc
    .tuple(fc.integer({ min: 0, max: 20 }), fc.array(byte, { maxLength: 8 }))
    .map(([stem, tail]) => Uint8Array.from([...new Array<number>(stem).fill(0), ...tail])),
);

interface Version {
  readonly key: Uint8Array;
  readonly sequence: number;
}

const internalOrder = (a: Version, b: Version): number =>
  compareBytes(a.key, b.key) || b.sequence - a.sequence;

describe('Memtable', () => {
  // Up to 400 versions: several leaves of 64, split by inserts in the middle.
  for (const [versions, numRuns] of [
    [80, 300],
    [400, 60],
  ] as const) {
    it(`keeps up to ${versions} versions in internal order and seeks to the first at or after a (key, sequence)`, () => {
      fc.assert(
        fc.property(
          fc.array(key, { minLength: 1, maxLength: versions, size: 'max' }),
          // Keys written in order for a while (each after every other), then any.
          fc.nat({ max: versions }),
          fc.array(key, { minLength: 1, maxLength: 8 }),
          (unordered, ordered, targets) => {
            const keys = [
              ...unordered.slice(0, ordered).sort(compareBytes),
              ...unordered.slice(ordered),
            ];
            const memtable = new Memtable();
            const model: Version[] = [];
            keys.forEach((k, i) => {
              memtable.insert(k, i + 1, 1, k);
              model.push({ key: k, sequence: i + 1 });
            });
            model.sort(internalOrder);
            const listed = [...memtable.entries()].map((e) => ({
              key: e.key,
              sequence: e.sequence,
            }));
            assert.deepEqual(listed, model);
            assert.equal(memtable.last()?.sequence, model.at(-1)?.sequence);
            for (const target of [...targets, ...keys.slice(0, 8)])
              for (const sequence of [0, Math.ceil(keys.length / 2), keys.length + 1]) {
                const probe = { key: target, sequence };
                const expected = model.find((v) => internalOrder(v, probe) >= 0);
                const found = memtable.seek(target, sequence);
                assert.deepEqual(found?.key, expected?.key);
                assert.equal(found?.sequence, expected?.sequence);
                const before = [...model].reverse().find((v) => internalOrder(v, probe) < 0);
                assert.equal(memtable.seekBefore(target, sequence)?.sequence, before?.sequence);
                const newest = model.find(
                  (v) => compareBytes(v.key, target) === 0 && v.sequence <= sequence,
                );
                assert.equal(memtable.get(target, sequence)?.sequence, newest?.sequence);
              }
          },
        ),
        { numRuns },
      );
    });
  }
});
