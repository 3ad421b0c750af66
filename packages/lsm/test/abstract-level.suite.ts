/**
 * abstract-level's own compliance suite (shipped in the abstract-level
 * package, written for tape) run against LsmLevel. Run by the package's test
 * script through scripts/tape-summary.cjs, which counts its TAP totals.
 * What runs is decided by `db.supports` alone: nothing is skipped here.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LsmLevel, type LsmLevelOptions } from '../src/index.js';

interface Tape {
  (name: string, body: (t: unknown) => unknown): void;
  onFinish(callback: () => void): void;
}

const require = createRequire(import.meta.url);
const test = require('tape') as Tape;
const suite = require('abstract-level/test') as (options: {
  test: Tape;
  factory: (options?: LsmLevelOptions) => LsmLevel;
}) => void;

// The suite checks the API, opening some 1,500 stores: on a memory file
// system where there is one (Linux's /dev/shm), since each open and close on
// a disk costs some 100 ms of fsyncs. Durability is what the power-loss tests
// check, over CrashFs.
const base = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
const root = mkdtempSync(join(base, 'lsm-level-suite-'));
let count = 0;

test.onFinish(() => rmSync(root, { recursive: true, force: true }));

suite({
  test,
  factory(options?: LsmLevelOptions): LsmLevel {
    const location = join(root, String(count++));
    mkdirSync(location);
    return new LsmLevel(location, options);
  },
});
