/**
 * A log of more segments than the process may open files: written, recovered
 * and iterated in a child process started under `ulimit -n 128`. The same
 * child with the cap lifted fails with EMFILE, which shows the limit is in
 * force. And power loss at every step of a log whose segment files are closed
 * between its appends and their flush (one open segment at most).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MAX_OPEN_SEGMENTS_LIMIT } from '@wal/store';
import { LogRun, newTally, report } from './crash/harness.js';
import { pattern } from './helpers.js';

const CHILD = fileURLToPath(new URL('./open-files-child.js', import.meta.url));
const SEGMENTS = 160;

describe('open segment files under a low descriptor limit', function () {
  this.timeout(60_000);
  let parent: string;

  before(async () => {
    parent = await mkdtemp(join(tmpdir(), 'wal-open-files-'));
  });
  after(() => rm(parent, { recursive: true, force: true }));

  const run = (name: string, cap: string) =>
    spawnSync(
      'bash',
      [
        '-c',
        'ulimit -n 128 && exec "$@"',
        'bash',
        process.execPath,
        CHILD,
        join(parent, name),
        String(SEGMENTS),
        cap,
      ],
      { encoding: 'utf8' },
    );

  it(`appends, recovers and iterates ${SEGMENTS} segments with the default cap`, () => {
    const result = run('capped', 'default');
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stdout, new RegExp(`iterated ${SEGMENTS} records`));
  });

  it('fails with EMFILE when reopened with the cap lifted', () => {
    const result = run('uncapped', String(MAX_OPEN_SEGMENTS_LIMIT));
    assert.notEqual(result.status, 0, result.stdout);
    assert.match(result.stderr, /EMFILE/);
  });
});

describe('power loss (log over CrashFs) with one open segment', function () {
  this.timeout(240_000);

  it('segments closed between appends and their flush lose nothing acknowledged', async () => {
    const name = 'one open segment';
    const run = new LogRun(name, { perStep: 20, walOptions: { maxOpenSegments: 1 } });
    await run.open();
    for (let i = 0; i < 6; i++) run.appendBuffered(pattern(1500, 600 + i)); // segments 0..2
    const first = run.model.records[0]!.lsn;
    // Segment 0 again: the segment holding unflushed records is closed.
    await run.step('read the first record', () => run.w.read(first));
    for (let i = 0; i < 4; i++) {
      await run.step(`append #${i} (durable)`, () => run.appendDurable(pattern(2500, 610 + i)));
      await run.step('read the first record', () => run.w.read(first));
    }
    await run.step('iterate', async () => {
      for await (const _ of run.w.iterate()) {
        // every segment in turn, through one descriptor
      }
    });
    await run.truncateBefore(run.model.records[3]!.lsn);
    await run.step('append (durable)', () => run.appendDurable(pattern(700, 620)));
    await run.close();
    const tally = newTally();
    await run.check(tally, new Set());
    report(name, tally);
    assert.deepEqual(tally.violations, []);
    assert.ok(tally.states > 100, `${tally.states} crash states`);
  });
});
