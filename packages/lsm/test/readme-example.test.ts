/**
 * Runs the quick example of README.md (its first ```ts block) as written, in
 * a fresh temporary directory, checks what it prints, and reopens the store
 * it left to check the state it claims.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Lsm } from '../src/index.js';
import { bytes, text } from './helpers.js';

type Run = (
  imports: { Lsm: typeof Lsm },
  console: { log: (...line: unknown[]) => void },
) => Promise<void>;

function loadExample(): Run {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  const match = /```ts\n([\s\S]*?)```/.exec(readme);
  assert.ok(match, 'README.md has a ts example');
  assert.match(match[1]!, /^import \{ Lsm \} from '@wal\/lsm';$/m);
  const body = match[1]!.replace(/^import .*$/gm, '');
  // The example has no type annotations, so it runs as JavaScript.
  const AsyncFunction = Object.getPrototypeOf(async () => {}).constructor as new (
    ...args: string[]
  ) => Run;
  return new AsyncFunction('imports', 'console', `const { Lsm } = imports;\n${body}`);
}

describe('README quick example', () => {
  let dir: string;
  let cwd: string;
  beforeEach(async () => {
    cwd = process.cwd();
    dir = await mkdtemp(join(tmpdir(), 'wal-lsm-readme-'));
    process.chdir(dir);
  });
  afterEach(async () => {
    process.chdir(cwd);
    await rm(dir, { recursive: true, force: true });
  });

  it('runs as written and leaves the store it describes', async () => {
    const lines: string[] = [];
    await loadExample()({ Lsm }, { log: (...parts) => void lines.push(parts.join(' ')) });
    assert.deepEqual(lines, ['5', '5', 'plum 7', 'pear 6']);
    const db = await Lsm.open(join(dir, 'inventory'));
    try {
      assert.equal(await db.get(bytes('apple')), undefined);
      assert.equal(text(await db.get(bytes('pear'))), '6');
      assert.equal(text(await db.get(bytes('plum'))), '7');
      assert.equal(await db.get(bytes('quince')), undefined);
    } finally {
      await db.close();
    }
  });
});
