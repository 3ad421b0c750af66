/**
 * Runs the quick example of README.md (its first ```ts block) as written, in
 * a fresh temporary directory, then checks on disk what it claims to have
 * done: every record durable, then all dropped by truncateBefore.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Wal } from '@wal/core';

interface Outcome {
  readonly wal: Wal;
  readonly state: Map<string, number>;
  readonly lsn: number;
}

type Run = (
  imports: { Wal: typeof Wal },
  console: { log: (line: string) => void },
) => Promise<Outcome>;

function loadExample(): Run {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  const match = /```ts\n([\s\S]*?)```/.exec(readme);
  assert.ok(match, 'README.md has a ts example');
  const source = match[1]!;
  assert.match(source, /^import \{ Wal \} from '@wal\/core';$/m);
  const body = source.replace(/^import .*$/gm, '');
  // The example has no type annotations, so it runs as JavaScript.
  const AsyncFunction = Object.getPrototypeOf(async () => {}).constructor as new (
    ...args: string[]
  ) => (...args: unknown[]) => Promise<unknown>;
  const run = new AsyncFunction(
    'imports',
    'console',
    `const { Wal } = imports;\n${body}\nreturn { wal, state, lsn };`,
  );
  return (imports, console) => run(imports, console) as Promise<Outcome>;
}

describe('README quick example', () => {
  let dir: string;
  let cwd: string;
  beforeEach(async () => {
    cwd = process.cwd();
    dir = await mkdtemp(join(tmpdir(), 'wal-core-readme-'));
    process.chdir(dir);
  });
  afterEach(async () => {
    process.chdir(cwd);
    await rm(dir, { recursive: true, force: true });
  });

  it('runs as written, twice, and leaves an empty log whose head is the old tail', async () => {
    const run = loadExample();
    const lines: string[] = [];
    const log = { log: (line: string) => void lines.push(line) };

    const first = await run({ Wal }, log);
    assert.equal(first.wal.closed, true);
    assert.equal(first.state.size, 1001);
    assert.equal(first.lsn, 0);
    assert.deepEqual(lines, ['recovered 0 records, cut 0 bytes', 'committed at 0']);
    const end = first.wal.tail;
    assert.equal(first.wal.head, end);
    assert.equal(first.wal.durable, end);

    const reopened = await Wal.open(join(dir, 'orders-log'));
    try {
      assert.equal(reopened.head, end);
      assert.equal(reopened.tail, end);
      assert.equal(reopened.recovery.records, 0);
      assert.equal(reopened.recovery.truncated, false);
    } finally {
      await reopened.close();
    }

    // A second run replays nothing (the checkpoint dropped it all) and appends after it.
    lines.length = 0;
    const second = await run({ Wal }, log);
    assert.equal(second.lsn, end);
    assert.equal(second.state.size, 1001);
    assert.deepEqual(lines, ['recovered 0 records, cut 0 bytes', `committed at ${end}`]);
  });
});
