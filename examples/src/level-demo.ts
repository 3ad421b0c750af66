// `./pnpm demo:level`: a program written for classic-level (./level-app.ts)
// running unchanged on @wal/lsm's LsmLevel. It runs the program on LsmLevel,
// then on classic-level itself (LevelDB), each in a fresh temporary
// directory, prints both outputs and checks that they are the same line for
// line. Exits with code 1 if they differ.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LsmLevel } from '@wal/lsm';
import { ClassicLevel } from 'classic-level';
import { type LevelClass, orderBook } from './level-app.js';

async function run(name: string, Level: LevelClass): Promise<string[]> {
  const dir = await mkdtemp(join(tmpdir(), 'wal-level-demo-'));
  try {
    const started = performance.now();
    const lines = await orderBook(Level, join(dir, 'db'));
    console.log(`\n${name} (${(performance.now() - started).toFixed(0)} ms):`);
    for (const line of lines) console.log(`  ${line}`);
    return lines;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const ours = await run('@wal/lsm LsmLevel', LsmLevel as unknown as LevelClass);
const theirs = await run(
  'classic-level ClassicLevel (LevelDB)',
  ClassicLevel as unknown as LevelClass,
);
const same = ours.length === theirs.length && ours.every((line, i) => line === theirs[i]);
if (same) {
  console.log('\nSame output, line for line: the program runs unchanged on LsmLevel.');
} else {
  console.log('\nThe outputs differ.');
  process.exitCode = 1;
}
