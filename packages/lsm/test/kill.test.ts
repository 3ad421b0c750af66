/**
 * Process kills on a real file system: a child process writes from several
 * concurrent writers (flushes and compactions running) and is SIGKILLed at
 * a seeded random moment, some during its open and recovery; after each
 * kill the store is opened here and checked: every acknowledged put is
 * there with its value (unless a delete of it was issued), every
 * acknowledged delete stays deleted, no orphan table is left. The next child reopens the same directory.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Lsm } from '../src/index.js';
import { text } from './helpers.js';
import { expectedValue, KILL_OPTIONS } from './kill-shared.js';

const CHILD = fileURLToPath(new URL('./kill-child.js', import.meta.url));
const KILLS = 12;

interface Outcome {
  readonly opened: boolean;
  readonly puts: string[];
  readonly deletes: string[];
  readonly deleting: string[];
  /** Range deletions acknowledged, and issued ([start, end)). */
  readonly ranges: [string, string][];
  readonly rangesDeleting: [string, string][];
  readonly errors: string[];
}

/**
 * Runs one child and kills it `delay` ms after it opened the store, or,
 * with `early`, `delay` ms after it started (during startup or recovery).
 */
function runChild(
  dir: string,
  run: number,
  seed: number,
  delay: number,
  early: boolean,
): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CHILD, dir, String(run), String(seed)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const outcome = {
      opened: false,
      puts: [] as string[],
      deletes: [] as string[],
      deleting: [] as string[],
      ranges: [] as [string, string][],
      rangesDeleting: [] as [string, string][],
      errors: [] as string[],
    };
    let buffered = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      buffered += chunk;
      const lines = buffered.split('\n');
      buffered = lines.pop()!;
      for (const line of lines) {
        if (line === 'O') {
          outcome.opened = true;
          if (!early) {
            clearTimeout(timer);
            timer = setTimeout(() => child.kill('SIGKILL'), delay);
          }
        } else if (line.startsWith('A ')) outcome.puts.push(line.slice(2));
        else if (line.startsWith('D ')) outcome.deletes.push(line.slice(2));
        else if (line.startsWith('X ')) outcome.deleting.push(line.slice(2));
        else if (line.startsWith('Y ')) {
          outcome.rangesDeleting.push(line.slice(2).split(' ') as [string, string]);
        } else if (line.startsWith('R ')) {
          outcome.ranges.push(line.slice(2).split(' ') as [string, string]);
        } else outcome.errors.push(line);
      }
    });
    // Early kills count from the start; the others from the open (with a bound).
    let timer = setTimeout(() => child.kill('SIGKILL'), early ? delay : 60_000);
    child.on('error', reject);
    child.on('close', () => {
      clearTimeout(timer);
      resolve(outcome);
    });
  });
}

describe('process kills (real directory, SIGKILL at random moments)', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lsm-kill-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it(`keeps every acknowledged write through ${KILLS} kills during writes, flushes and compactions`, async function () {
    this.timeout(170_000);
    const path = join(dir, 'db');
    const live = new Set<string>();
    const deleted = new Set<string>();
    let seed = 0x1234567;
    const random = (): number => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed / 2 ** 32;
    };
    let opened = 0;
    let compactions = 0;
    let rangeDeletes = 0;
    for (let run = 0; run < KILLS; run++) {
      // Most kills land mid-write; some during startup and recovery.
      const early = run % 4 === 3;
      const delay = early ? 50 + random() * 400 : 100 + random() * 500;
      const outcome = await runChild(path, run, 1 + Math.floor(random() * 2 ** 31), delay, early);
      assert.deepEqual(outcome.errors, [], `child ${run} failed`);
      if (outcome.opened) opened++;
      for (const key of outcome.puts) live.add(key);
      // A delete issued but not acknowledged may have landed or not.
      for (const key of outcome.deleting) live.delete(key);
      for (const key of outcome.deletes) deleted.add(key);
      // Likewise for range deletions: every key put in an acknowledged one is gone.
      const inRange = ([start, end]: [string, string]): string[] =>
        outcome.puts.filter((key) => start <= key && key < end);
      for (const range of outcome.rangesDeleting)
        for (const key of inRange(range)) live.delete(key);
      for (const range of outcome.ranges) {
        rangeDeletes++;
        for (const key of inRange(range)) deleted.add(key);
      }
      // No compaction in the checking open: its table count must stand still.
      const db = await Lsm.open(path, {
        ...KILL_OPTIONS,
        level0Trigger: 1000,
        levelBaseBytes: 2 ** 40,
      });
      try {
        for (const key of live) {
          const got = await db.get(new TextEncoder().encode(key));
          assert.equal(
            text(got),
            text(expectedValue(key)),
            `after kill ${run}: acknowledged ${key}`,
          );
        }
        for (const key of deleted) {
          assert.equal(
            await db.get(new TextEncoder().encode(key)),
            undefined,
            `after kill ${run}: deleted ${key} is back`,
          );
        }
        const tables = (await readdir(path)).filter((name) => name.endsWith('.sst')).length;
        const stats = db.stats();
        assert.equal(
          tables,
          stats.tables.reduce((a, b) => a + b, 0),
          `after kill ${run}: orphan tables`,
        );
        compactions += stats.tables.slice(1).reduce((a, b) => a + b, 0) > 0 ? 1 : 0;
      } finally {
        await db.close();
      }
    }
    console.log(
      `      ${KILLS} kills, ${live.size} acknowledged puts and ${deleted.size} deletes (${rangeDeletes} range deletions) checked`,
    );
    assert.ok(opened >= KILLS / 2, `${opened} children opened the store`);
    assert.ok(live.size > 200, `only ${live.size} acknowledged puts`);
    assert.ok(compactions > 0, 'compactions ran');
    assert.ok(rangeDeletes > 0, 'range deletions acknowledged');
  });
});
