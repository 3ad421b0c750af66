/**
 * The history checker itself, on hand-made histories: each anomaly it claims
 * to find is found, with its transactions, and a serial history yields none.
 */
import assert from 'node:assert/strict';
import { describeCycle } from './checker/graph.js';
import type { AppendOp, RegisterOp, Report, Txn } from './checker/history.js';
import { checkListAppend } from './checker/list-append.js';
import { checkRegisters } from './checker/rw-register.js';

const a = (key: string, value: number): AppendOp => ({ f: 'append', key, value });
const r = (key: string, ...value: number[]): AppendOp => ({ f: 'read', key, value });
const w = (key: string, value: number): RegisterOp => ({ f: 'write', key, value });
const rr = (key: string, value: number | null): RegisterOp => ({ f: 'read', key, value });

/** Transactions T1, T2, … all concurrent (same begin and end) unless times are given. */
function txns<Op>(
  ...list: Array<Op[] | { ops: Op[]; ok?: boolean; begin?: number; end?: number }>
): Txn<Op>[] {
  return list.map((t, i) => {
    const spec = Array.isArray(t) ? { ops: t } : t;
    return {
      id: i + 1,
      ops: spec.ops,
      ok: spec.ok ?? true,
      begin: spec.begin ?? 0,
      end: spec.end ?? 100,
    };
  });
}

function summary(report: Report): string[] {
  return [...report.findings.map((f) => f.type), ...report.cycles.map(describeCycle)];
}

describe('history checker', () => {
  describe('list-append', () => {
    it('finds nothing in a serial history', () => {
      const history = txns(
        { ops: [a('x', 1), r('y')], begin: 1, end: 2 },
        { ops: [r('x', 1), a('y', 2)], begin: 3, end: 4 },
        { ops: [r('x', 1), r('y', 2)], begin: 5, end: 6 },
      );
      const report = checkListAppend(history, 3);
      assert.deepEqual(summary(report), []);
      assert.equal(report.edges.wr, 3);
      assert.ok(report.edges.rt > 0);
    });

    it('G0: a cycle of write-write dependencies', () => {
      const history = txns(
        [a('x', 1), a('y', 4)],
        [a('x', 2), a('y', 3)],
        [r('x', 1, 2), r('y', 3, 4)],
      );
      assert.deepEqual(summary(checkListAppend(history)), ['G0: T1 -ww-> T2 -ww-> T1']);
    });

    it('G1a: a read of an aborted append', () => {
      const history = txns({ ops: [a('x', 1)], ok: false }, [r('x', 1)]);
      assert.deepEqual(summary(checkListAppend(history)), ['G1a']);
    });

    it('G1b: a read of an intermediate append', () => {
      const history = txns([a('x', 1), a('x', 2)], [r('x', 1)]);
      assert.deepEqual(summary(checkListAppend(history)), ['G1b']);
    });

    it('G1c: circular information flow', () => {
      const history = txns([a('x', 1), r('y', 2)], [a('y', 2), r('x', 1)]);
      assert.deepEqual(summary(checkListAppend(history)), ['G1c: T1 -wr-> T2 -wr-> T1']);
    });

    it('G-single: read skew', () => {
      const history = txns([r('x'), r('y', 2)], [a('x', 1), a('y', 2)], [r('x', 1)]);
      assert.deepEqual(summary(checkListAppend(history)), ['G-single: T1 -rw-> T2 -wr-> T1']);
    });

    it('G-single with a real-time edge: a stale read after an acknowledged commit', () => {
      const history = txns(
        { ops: [a('x', 1)], begin: 1, end: 2 },
        { ops: [r('x')], begin: 3, end: 4 },
        {
          ops: [r('x', 1)],
          begin: 5,
          end: 6,
        },
      );
      assert.deepEqual(summary(checkListAppend(history)), ['G-single: T1 -rt-> T2 -rw-> T1']);
    });

    it('G2: write skew, two adjacent anti-dependencies', () => {
      const history = txns([r('x'), a('y', 1)], [r('y'), a('x', 2)], [r('x', 2), r('y', 1)]);
      assert.deepEqual(summary(checkListAppend(history)), ['G2: T1 -rw-> T2 -rw-> T1']);
    });

    it('G-nonadjacent: anti-dependencies separated by other edges', () => {
      const history = txns(
        [r('a'), r('e', 9)],
        [a('a', 1), a('c', 5)],
        [r('c', 5), r('d')],
        [a('d', 7), a('e', 9)],
        [r('a', 1), r('d', 7)],
      );
      assert.deepEqual(summary(checkListAppend(history)), [
        'G-nonadjacent: T1 -rw-> T2 -wr-> T3 -rw-> T4 -wr-> T1',
      ]);
    });

    it('incompatible orders, lost appends, garbage and inconsistent own reads', () => {
      const history = txns(
        [a('x', 1)],
        [a('x', 2)],
        [r('x', 1, 2)],
        [r('x', 2, 1)],
        [a('y', 3)],
        [r('z', 42)],
        [a('w', 5), r('w')],
      );
      assert.deepEqual(summary(checkListAppend(history, 4)).sort(), [
        'garbage-read',
        'incompatible-order',
        'internal',
        'lost-write',
        'lost-write',
      ]);
    });
  });

  describe('rw-register', () => {
    it('finds nothing in a serial history', () => {
      const history = txns(
        { ops: [w('x', 1)], begin: 1, end: 2 },
        { ops: [rr('x', 1), w('x', 2)], begin: 3, end: 4 },
        { ops: [rr('x', 2)], begin: 5, end: 6 },
      );
      assert.deepEqual(summary(checkRegisters(history)), []);
    });

    it('G2: write skew over registers read then written', () => {
      const history = txns(
        [rr('x', null), rr('y', null), w('y', 1)],
        [rr('x', null), rr('y', null), w('x', 2)],
      );
      assert.deepEqual(summary(checkRegisters(history)), ['G2: T1 -rw-> T2 -rw-> T1']);
    });

    it('P4: a lost update (both read the same version, then wrote)', () => {
      const history = txns(
        { ops: [w('x', 1)], begin: 1, end: 2 },
        { ops: [rr('x', 1), w('x', 2)], begin: 3, end: 6 },
        {
          ops: [rr('x', 1), w('x', 3)],
          begin: 3,
          end: 6,
        },
      );
      // Their writes have no known order, so the cycle is two adjacent rw
      // edges; the P4 finding is what SI forbids.
      assert.deepEqual(summary(checkRegisters(history)), ['P4', 'G2: T2 -rw-> T3 -rw-> T2']);
    });

    it('G1a, G1b, garbage and inconsistent own reads', () => {
      const history = txns(
        { ops: [w('x', 1)], ok: false },
        [rr('x', 1)],
        [w('y', 2), w('y', 3)],
        [rr('y', 2)],
        [rr('z', 9)],
        [w('v', 4), rr('v', null)],
        [rr('y', 3), rr('y', null)],
      );
      assert.deepEqual(summary(checkRegisters(history)).sort(), [
        'G1a',
        'G1b',
        'garbage-read',
        'internal',
        'internal',
      ]);
    });
  });
});
