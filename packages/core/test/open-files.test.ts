/**
 * A log of more segments than the process may open files: written, recovered
 * and iterated in a child process started under `ulimit -n 128`. The same
 * child with the cap lifted fails with EMFILE, which shows the limit is in
 * force.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MAX_OPEN_SEGMENTS_LIMIT } from '@wal/store';

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
