/**
 * Runs the quick example of README.md (its first ```ts block) and the
 * LsmLevel example (its first ```js block) as written, in a fresh temporary
 * directory, checks what they print, and reopens the store they left to
 * check the state they claim.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Lsm, LsmLevel } from '../src/index.js';
import { bytes, text } from './helpers.js';

type Run = (
  imports: { Lsm: typeof Lsm; LsmLevel: typeof LsmLevel },
  console: { log: (...line: unknown[]) => void },
) => Promise<void>;

/** The first README block in `language` that imports `name` from @wal/lsm, as a function. */
function loadExample(language: 'ts' | 'js', name: 'Lsm' | 'LsmLevel'): Run {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  const match = new RegExp(`\`\`\`${language}\n([\\s\\S]*?)\`\`\``).exec(readme);
  assert.ok(match, `README.md has a ${language} example`);
  assert.match(match[1]!, new RegExp(`^import \\{ ${name} \\} from '@wal/lsm';`, 'm'));
  const body = match[1]!.replace(/^import .*$/gm, '');
  // The examples have no type annotations, so they run as JavaScript.
  const AsyncFunction = Object.getPrototypeOf(async () => {}).constructor as new (
    ...args: string[]
  ) => Run;
  return new AsyncFunction('imports', 'console', `const { ${name} } = imports;\n${body}`);
}

const log = (lines: string[]) => ({
  log: (...parts: unknown[]) => void lines.push(parts.map((p) => String(p)).join(' ')),
});

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
    await loadExample('ts', 'Lsm')({ Lsm, LsmLevel }, log(lines));
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

  it('runs the LsmLevel example as written', async () => {
    const lines: string[] = [];
    await loadExample('js', 'LsmLevel')({ Lsm, LsmLevel }, log(lines));
    assert.deepEqual(lines, ['0001 lamp', '0002 desk', '0000']);
    const db = new LsmLevel<string, { item: string }>(join(dir, 'orders'), {
      valueEncoding: 'json',
    });
    try {
      assert.deepEqual(await db.get('0001'), { item: 'lamp' });
      assert.deepEqual(await db.keys().all(), ['!archive!0000', '0001', '0002']);
    } finally {
      await db.close();
    }
  });
});
