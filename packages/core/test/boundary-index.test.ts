// BoundaryIndex: the sparse index of record boundaries that LSN validation
// walks from.

import assert from 'node:assert/strict';
import fc from 'fast-check';
import { BoundaryIndex } from '../src/boundary-index.js';

describe('BoundaryIndex', () => {
  it('finds, for every live boundary, an entry at or below it in the same interval (property)', () => {
    // What LSN validation relies on: a walk from floor(lsn) reads at most
    // about one interval. Notes, cuts and new heads in any order.
    const op = fc.oneof(
      fc.record({ kind: fc.constant('note' as const), step: fc.integer({ min: 1, max: 70 }) }),
      fc.record({ kind: fc.constant('after' as const), pick: fc.nat() }),
      fc.record({ kind: fc.constant('before' as const), pick: fc.nat() }),
    );
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 64 }),
        fc.array(op, { maxLength: 80 }),
        (interval, ops) => {
          const index = new BoundaryIndex(interval);
          const live: number[] = [0]; // boundaries of the log, ascending
          index.note(0);
          for (const o of ops) {
            if (o.kind === 'note') {
              const lsn = live.at(-1)! + o.step;
              live.push(lsn);
              index.note(lsn);
            } else if (o.kind === 'after') {
              const end = live[o.pick % live.length]!;
              live.splice(live.indexOf(end) + 1);
              index.truncateAfter(end);
            } else {
              const head = live[o.pick % live.length]!;
              live.splice(0, live.indexOf(head));
              index.truncateBefore(head);
            }
            for (const b of live) {
              const f = index.floor(b);
              assert.ok(f !== undefined && f <= b && f >= live[0]!, `floor(${b}) = ${f}`);
              assert.equal(
                Math.floor(f / interval),
                Math.floor(b / interval),
                `floor(${b}) = ${f}`,
              );
            }
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('keeps the first boundary of each interval, finds floors, truncates at both ends', () => {
    const index = new BoundaryIndex(100);
    assert.equal(index.size, 0);
    assert.equal(index.floor(50), undefined);
    const noted: number[] = [];
    for (let lsn = 0; lsn < 100 * 200; lsn += 30) {
      index.note(lsn);
      if (noted.length === 0 || Math.floor(lsn / 100) > Math.floor(noted.at(-1)! / 100))
        noted.push(lsn);
    }
    assert.equal(index.size, noted.length);
    assert.ok(index.size > 64, 'grew past its initial capacity');
    for (const probe of [0, 29, 30, 99, 100, 5555, 19_999]) {
      assert.equal(index.floor(probe), noted.filter((lsn) => lsn <= probe).at(-1));
    }
    index.truncateAfter(5000);
    assert.equal(index.floor(19_999), 5000);
    index.truncateBefore(4000);
    assert.equal(index.floor(3999), undefined);
    assert.equal(index.floor(4000), 4000);
    index.truncateBefore(4005);
    assert.equal(index.floor(4004), undefined);
    assert.equal(index.floor(4005), 4005);
    // Empty, then a head in front once full.
    index.truncateBefore(10_000);
    assert.equal(index.size, 1);
    const full = new BoundaryIndex(1);
    for (let lsn = 1; lsn <= 64; lsn++) full.note(lsn);
    assert.equal(full.size, 64);
    full.truncateBefore(0); // a head below every entry, into a full index
    assert.equal(full.size, 65);
    assert.equal(full.floor(0), 0);
    full.truncateAfter(63);
    full.truncateBefore(10);
    assert.equal(full.floor(9), undefined);
    assert.equal(full.floor(63), 63);
    const empty = new BoundaryIndex(10);
    empty.truncateAfter(0);
    assert.equal(empty.floor(5), 0);
  });
});
