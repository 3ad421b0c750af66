/**
 * Runs the quick example of README.md (its first ```ts block) as written, in
 * a fresh temporary directory, then checks on disk what it claims to have
 * done: every record durable, a checkpoint taken beside concurrent writers
 * (none refused), the log before it dropped, and a second run that rebuilds
 * the state from the checkpoint and the records after it.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, open, readFile, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Wal } from '@wal/core';

interface Outcome {
  readonly wal: Wal;
  readonly state: Map<string, number>;
  readonly lsn: number;
}

interface Imports {
  Wal: typeof Wal;
  open: typeof open;
  readFile: typeof readFile;
  rename: typeof rename;
  rm: typeof rm;
}

type Run = (imports: Imports, console: { log: (line: string) => void }) => Promise<Outcome>;

function loadExample(): Run {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  const match = /```ts\n([\s\S]*?)```/.exec(readme);
  assert.ok(match, 'README.md has a ts example');
  const source = match[1]!;
  assert.match(source, /^import \{ Wal \} from '@wal\/core';$/m);
  assert.match(source, /^import \{ open, readFile, rename, rm \} from 'node:fs\/promises';$/m);
  const body = source.replace(/^import .*$/gm, '');
  // The example has no type annotations, so it runs as JavaScript.
  const AsyncFunction = Object.getPrototypeOf(async () => {}).constructor as new (
    ...args: string[]
  ) => (...args: unknown[]) => Promise<unknown>;
  const run = new AsyncFunction(
    'imports',
    'console',
    `const { Wal, open, readFile, rename, rm } = imports;\n${body}\nreturn { wal, state, lsn };`,
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

  it('runs as written, twice: a checkpoint beside the writers, then a rebuild from it', async () => {
    const run = loadExample();
    const lines: string[] = [];
    const log = { log: (line: string) => void lines.push(line) };
    const imports = { Wal, open, readFile, rename, rm };
    const checkpointLsn = async (): Promise<number> =>
      (JSON.parse(await readFile(join(dir, 'orders-checkpoint.json'), 'utf8')) as { lsn: number })
        .lsn;

    const first = await run(imports, log);
    assert.equal(first.wal.closed, true);
    assert.equal(first.state.size, 201);
    assert.equal(first.lsn, 0);
    assert.deepEqual(lines, [
      'recovered 0 records, cut 0 torn bytes and 0 preallocated zeros',
      'committed at 0',
    ]);
    const head = await checkpointLsn();
    const end = first.wal.tail;
    // The checkpoint covers 'a' and each writer's first record; 190 were appended beside it.
    assert.equal(first.wal.head, head);
    assert.ok(head > 0 && head < end);
    assert.equal(first.wal.durable, end);

    const reopened = await Wal.open(join(dir, 'orders-log'));
    try {
      assert.equal(reopened.head, head);
      assert.equal(reopened.tail, end);
      assert.equal(reopened.recovery.records, 190);
      assert.equal(reopened.recovery.truncated, false);
    } finally {
      await reopened.close();
    }

    // A second run loads the checkpoint, replays the 190 records after it, and appends after them.
    lines.length = 0;
    const second = await run(imports, log);
    assert.equal(second.lsn, end);
    assert.equal(second.state.size, 201);
    assert.deepEqual(lines, [
      'recovered 190 records, cut 0 torn bytes and 0 preallocated zeros',
      `committed at ${end}`,
    ]);
    assert.ok((await checkpointLsn()) > end);
    assert.equal(second.wal.head, await checkpointLsn());
  });
});
