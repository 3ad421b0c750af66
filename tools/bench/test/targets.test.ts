// The target rows of the durable section that pick a peer from the run.
import assert from 'node:assert/strict';
import type { DurableRun, DurableSystem } from '../src/committers.js';
import { faultNote, type Results, type Target, targets } from '../src/report.js';
import type { BufferedResult } from '../src/workloads.js';
import { blankMeta } from './fixtures.js';

/** One repetition committing `rate` commits in one second. */
const at = (rate: number): DurableRun => ({
  commits: rate,
  seconds: 1,
  fsyncs: null,
  writes: null,
  p50: 1,
  p99: 2,
});

/** A run at K=1 only, with the given median commits/s per system. */
function oneCommitter(rates: Partial<Record<DurableSystem, number>>): Results {
  return {
    meta: blankMeta(),
    durable: Object.entries(rates).map(([system, rate]) => ({
      system: system as DurableSystem,
      k: 1,
      runs: [at(rate!)],
    })),
    fsyncFloor: [],
    buffered: [],
    replay: [],
    memory: [],
    micro: undefined,
  };
}

const bestPeerRow = (results: Results): Target => {
  const row = targets(results).find((t) => t.name.startsWith('durable K=1 ≥ 1.0× the best'));
  assert.ok(row, 'the K=1 best-peer target');
  return row;
};

describe('durable K=1 target: the best asynchronous peer of the run', () => {
  it('takes lmdb-js when it was the faster peer, names it, and fails a log between the two', () => {
    const row = bestPeerRow(
      oneCommitter({ wal: 1000, naive: 900, 'classic-level': 800, lmdb: 1200, sqlite: 5000 }),
    );
    assert.match(row.name, /lmdb-js/);
    assert.equal(row.pass, false);
    assert.equal(row.ratio, '0.83×');
    assert.match(row.measured, /^1,000 vs 1,200 commits\/s; classic-level .* 800$/);
  });

  it('takes classic-level when it was the faster peer', () => {
    const row = bestPeerRow(
      oneCommitter({ wal: 1000, naive: 900, 'classic-level': 950, lmdb: 700 }),
    );
    assert.match(row.name, /classic-level/);
    assert.equal(row.pass, true);
  });

  it('leaves out better-sqlite3, which blocks the event loop (the blockingSync target has it)', () => {
    const row = bestPeerRow(oneCommitter({ wal: 1000, naive: 900, lmdb: 700, sqlite: 5000 }));
    assert.match(row.name, /lmdb-js/);
    assert.equal(row.pass, true);
  });

  it('fails when no asynchronous peer was measured', () => {
    const row = bestPeerRow(oneCommitter({ wal: 1000, naive: 900 }));
    assert.equal(row.pass, false);
    assert.match(row.measured, /no asynchronous peer measured/);
  });
});

describe('buffered short run: page faults priced from the same children', () => {
  const run = (
    minorFaults: number | undefined,
    faultMicros: number | undefined,
  ): BufferedResult => ({
    records: 1_000_000,
    bytes: 100_000_000,
    seconds: 0.2,
    loopSeconds: 0.2,
    ...(minorFaults === undefined ? {} : { minorFaults }),
    ...(faultMicros === undefined ? {} : { faultMicros }),
  });

  it('is absent when a side did not count them', () => {
    assert.equal(faultNote([run(2000, 15)], [run(undefined, undefined)]), undefined);
    assert.equal(faultNote([], [run(300, 15)]), undefined);
  });

  it('gives the median counts and their cost at the median price per fault', () => {
    const note = faultNote(
      [run(2000, 10), run(2200, 20), run(2400, 30)],
      [run(300, 20), run(200, 20), run(400, 20)],
    );
    assert.ok(note !== undefined);
    assert.match(note, /@wal\/core 2,200, the framing loop 300, at 20\.0 µs each/);
    assert.match(note, /about 44\.0 against 6\.0 ms/);
  });
});
