// Benchmark children run under a time limit: a hung child is killed and
// fails the run, named, instead of hanging it.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ChildTimeoutError,
  childTimeoutSeconds,
  DEFAULT_CHILD_TIMEOUT_SECONDS,
  inChild,
} from '../src/shared.js';

/** Whether process `pid` is still alive. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('benchmark children under a time limit', () => {
  let dir: string;
  let script: string;
  let pidFile: string;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'wal-bench-child-'));
    pidFile = join(dir, 'pid');
    script = join(dir, 'child.mjs');
    // Writes its pid; `hang` never answers (and keeps its event loop alive),
    // `answer` sends its job back as a runner child does.
    writeFileSync(
      script,
      `import { writeFileSync } from 'node:fs';
const job = JSON.parse(process.argv[3]);
writeFileSync(${JSON.stringify(pidFile)}, String(process.pid));
if (job.kind === 'hang') setInterval(() => {}, 1000);
else process.send({ echo: job.kind }, () => process.exit(0));
`,
    );
  });

  afterEach(() => {
    // Whatever the test did, no child of it outlives it.
    const pid = Number(readFileSync(pidFile, { encoding: 'utf8', flag: 'a+' }));
    if (pid > 0 && alive(pid)) process.kill(pid, 'SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it('kills a child still running after the limit and rejects naming it', async () => {
    const started = Date.now();
    await assert.rejects(
      inChild(script, { kind: 'hang', name: 'the-hung-one' }, [], 3),
      (error) => {
        assert.ok(error instanceof ChildTimeoutError);
        assert.match(error.message, /the-hung-one/);
        assert.match(error.message, /timed out: still running after 3 s, killed/);
        assert.equal(error.seconds, 3);
        return true;
      },
    );
    assert.ok(Date.now() - started < 15_000);
    // 3 s leaves a loaded machine time to start the child before it is killed.
    const pid = Number(readFileSync(pidFile, 'utf8'));
    assert.equal(alive(pid), false, 'the hung child is gone');
  });

  it('resolves with the answer of a child that ends within the limit', async () => {
    assert.deepEqual(await inChild(script, { kind: 'answer' }, [], 30), { echo: 'answer' });
  });

  it('takes its limit from WAL_BENCH_CHILD_TIMEOUT, else the default, and refuses nonsense', () => {
    const saved = process.env.WAL_BENCH_CHILD_TIMEOUT;
    try {
      delete process.env.WAL_BENCH_CHILD_TIMEOUT;
      assert.equal(childTimeoutSeconds(), DEFAULT_CHILD_TIMEOUT_SECONDS);
      process.env.WAL_BENCH_CHILD_TIMEOUT = '42';
      assert.equal(childTimeoutSeconds(), 42);
      process.env.WAL_BENCH_CHILD_TIMEOUT = 'soon';
      assert.throws(() => childTimeoutSeconds(), RangeError);
      process.env.WAL_BENCH_CHILD_TIMEOUT = '0';
      assert.throws(() => childTimeoutSeconds(), RangeError);
    } finally {
      if (saved === undefined) delete process.env.WAL_BENCH_CHILD_TIMEOUT;
      else process.env.WAL_BENCH_CHILD_TIMEOUT = saved;
    }
  });
});
