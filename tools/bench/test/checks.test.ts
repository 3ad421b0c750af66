// Figures that can fail: each check compares a figure of the run with the
// value it must have, and a failed check fails the run.
import assert from 'node:assert/strict';
import { HEADER_SIZE } from '@wal/core';
import type { DurableRun } from '../src/committers.js';
import { type Results, runChecks } from '../src/report.js';
import { type Check, checkEqual, failedTargets } from '../src/shared.js';
import type { BufferedResult, MemoryResult, ReplayResult } from '../src/workloads.js';
import { blankMeta } from './fixtures.js';

const MiB = 1024 * 1024;

function durableRun(acknowledged: number, recovered: number | undefined): DurableRun {
  return {
    commits: acknowledged - 10,
    seconds: 1,
    fsyncs: 10,
    writes: 10,
    p50: 1,
    p99: 2,
    acknowledged,
    ...(recovered === undefined ? {} : { recovered }),
  };
}

function bufferedRun(records: number, fileBytes: number | undefined): BufferedResult {
  return {
    records,
    bytes: records * 100,
    seconds: 1,
    loopSeconds: 1,
    ...(fileBytes === undefined ? {} : { fileBytes }),
  };
}

const memoryRun = (bytes: number): MemoryResult => ({ bytes, seconds: 1, maxRss: 1, baseRss: 1 });

const replayRun = (records: number): ReplayResult => ({
  records,
  bytes: records * 100,
  openSeconds: 1,
  iterateSeconds: 0,
});

/**
 * A run of two durable repetitions at K=64, one buffered cell of 100 B
 * records, two repetitions of one replay reader, one memory run.
 */
function results(
  over: {
    recovered?: [number | undefined, number | undefined];
    fileBytes?: number;
    recoverBytes?: number;
    replayed?: Partial<ReplayResult>;
  } = {},
): Results {
  const records = 10_000;
  const frames = records * (HEADER_SIZE + 100);
  const [first, second] = over.recovered ?? [500, 800];
  return {
    meta: blankMeta({ bufferedBytes: records * 100 }),
    durable: [{ system: 'wal', k: 64, runs: [durableRun(500, first), durableRun(800, second)] }],
    fsyncFloor: [],
    buffered: [
      {
        system: 'wal',
        size: 100,
        totalBytes: records * 100,
        runs: [bufferedRun(records, over.fileBytes ?? frames)],
      },
    ],
    replay: [
      {
        system: 'replay',
        size: 100,
        log: { records, bytes: frames, seconds: 1 },
        runs: [replayRun(records), { ...replayRun(records), ...over.replayed }],
      },
    ],
    memory: [
      { phase: 'append', totalBytes: 64 * MiB, size: 4096, run: memoryRun(64 * MiB) },
      {
        phase: 'recover',
        totalBytes: 64 * MiB,
        size: 4096,
        run: memoryRun(over.recoverBytes ?? 64 * MiB),
      },
    ],
    micro: undefined,
  };
}

const named = (checks: Check[], part: string): Check => {
  const found = checks.find((c) => c.name.includes(part));
  assert.ok(found, `a check about ${part}`);
  return found;
};

describe('checks of a run', () => {
  it('checkEqual holds when every run matches, sums the figures, and names the first run that does not', () => {
    const held = checkEqual('x', [
      [3, 3, 'a'],
      [4, 4, 'b'],
    ]);
    assert.deepEqual(held, { name: 'x', expected: 7, actual: 7, pass: true });
    const failed = checkEqual('x', [
      [3, 3, 'a'],
      [5, 4, 'b'],
      [1, 2, 'c'],
    ]);
    // The sums match (9 = 9), the runs do not: the check looks at every run.
    assert.equal(failed.actual, failed.expected);
    assert.equal(failed.pass, false);
    assert.equal(failed.detail, 'b: 5 instead of 4');
  });

  it('checkEqual fails with no run: a check of nothing holds nothing', () => {
    assert.equal(checkEqual('x', []).pass, false);
  });

  it('every check of a sound run holds', () => {
    const checks = runChecks(results());
    assert.equal(checks.length, 5);
    assert.ok(checks.every((c) => c.pass));
    assert.equal(named(checks, 'reopening').expected, 1300);
    assert.equal(named(checks, 'buffered @wal/core').expected, 10_000 * (HEADER_SIZE + 100));
    assert.equal(named(checks, 'memory').expected, 64 * MiB);
    assert.equal(named(checks, 'replay replay: records').expected, 20_000);
    assert.equal(named(checks, 'replay replay: payload bytes').expected, 2_000_000);
  });

  it('fails when a replay reader saw fewer records, or other payload bytes, than the log was written with', () => {
    const fewer = named(
      runChecks(results({ replayed: { records: 9_999 } })),
      'replay replay: records',
    );
    assert.equal(fewer.pass, false);
    assert.equal(fewer.detail, '100 B records, repetition 2: 9999 instead of 10000');
    const bytes = named(
      runChecks(results({ replayed: { bytes: 999_900 } })),
      'replay replay: payload bytes',
    );
    assert.equal(bytes.pass, false);
  });

  it('fails when a reopen of the log finds fewer records than commits acknowledged', () => {
    const check = named(runChecks(results({ recovered: [500, 799] })), 'reopening');
    assert.equal(check.pass, false);
    assert.equal(check.detail, 'K=64 repetition 2: 799 instead of 800');
  });

  it('fails when a run of @wal/core reports no reopen count', () => {
    const check = named(runChecks(results({ recovered: [500, undefined] })), 'reopening');
    assert.equal(check.pass, false);
  });

  it('fails when a buffered run left fewer bytes in its files than records × frame size', () => {
    const check = named(
      runChecks(results({ fileBytes: 10_000 * (HEADER_SIZE + 100) - 108 })),
      'buffered @wal/core',
    );
    assert.equal(check.pass, false);
    assert.match(check.detail!, /100 B records, .* repetition 1/);
  });

  it('fails when the memory run recovers fewer bytes than it appended', () => {
    const check = named(runChecks(results({ recoverBytes: 64 * MiB - 4096 })), 'memory');
    assert.equal(check.pass, false);
    assert.equal(check.detail, '64 MiB log: 67104768 instead of 67108864');
  });

  it('leaves out the checks whose figures older results lack', () => {
    const old = results();
    old.durable[0]!.runs = old.durable[0]!.runs.map(
      ({ acknowledged: _a, recovered: _r, ...rest }) => rest,
    );
    old.buffered[0]!.runs = old.buffered[0]!.runs.map(({ fileBytes: _f, ...rest }) => rest);
    old.replay = [];
    assert.deepEqual(
      runChecks(old).map((c) => c.name),
      ['memory: payload bytes read back by the recovery = payload bytes appended'],
    );
  });
});

describe('failedTargets', () => {
  let written: string[];
  let write: typeof process.stderr.write;
  let exitCode: typeof process.exitCode;

  beforeEach(() => {
    written = [];
    write = process.stderr.write;
    exitCode = process.exitCode;
    process.stderr.write = ((text: string) => {
      written.push(text);
      return true;
    }) as typeof process.stderr.write;
  });

  afterEach(() => {
    process.stderr.write = write;
    process.exitCode = exitCode;
  });

  it('a failed check fails a run whose targets all passed, naming it', () => {
    const checks = [checkEqual('held one', [[1, 1, 'a']]), checkEqual('broken one', [[1, 2, 'a']])];
    failedTargets(0, 5, 0, checks);
    const last = written.at(-1)!;
    assert.equal(process.exitCode, 1);
    process.exitCode = exitCode;
    assert.equal(last, 'FAILED: 0 of 5 targets; 1 of 2 checks failed: broken one\n');
  });

  it('a command with checks and no target speaks of its checks', () => {
    failedTargets(0, 0, 0, [checkEqual('broken one', [[1, 2, 'a']])]);
    assert.equal(process.exitCode, 1);
    process.exitCode = exitCode;
    assert.equal(written.at(-1), 'FAILED: 1 of 1 checks failed: broken one\n');
    failedTargets(0, 0, 0, [checkEqual('held one', [[1, 1, 'a']])]);
    assert.notEqual(process.exitCode, 1);
    assert.equal(written.at(-1), 'all 1 checks held\n');
  });

  it('a failed target with no check reads as before', () => {
    failedTargets(2, 5, 1);
    assert.equal(process.exitCode, 1);
    process.exitCode = exitCode;
    assert.equal(written.at(-1), 'FAILED: 2 of 5 targets; 1 child process(es) failed\n');
    failedTargets(0, 5);
    assert.equal(written.at(-1), 'all 5 targets passed\n');
  });

  it('a run whose targets passed and checks held passes', () => {
    failedTargets(0, 5, 0, [checkEqual('held one', [[1, 1, 'a']])]);
    assert.notEqual(process.exitCode, 1);
    assert.equal(written.at(-1), 'all 5 targets passed, all 1 checks held\n');
  });
});
