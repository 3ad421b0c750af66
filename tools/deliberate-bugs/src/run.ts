/**
 * Runs deliberate bugs: copies the sources into a temporary directory (the
 * working tree is never changed), applies one bug at a time there, builds,
 * runs the bug's test files with mocha, and restores the files before the
 * next bug.
 */
import { spawn } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { applyBug, type Bug, type Suite } from './edit.js';

/** The packages copied: those the bugs edit and those whose tests run. */
const PACKAGES = [
  'packages/errors',
  'packages/store',
  'packages/commit',
  'packages/core',
  'packages/lsm',
  'packages/txn',
];
/** Root files the build and the tests need. */
const ROOT_FILES = ['package.json', 'tsconfig.base.json', 'scripts'];
/** A suite run longer than this is stopped (and counts as not caught unless a test failed). */
const SUITE_LIMIT_MS = 20 * 60_000;

/** What happened to one bug. */
export interface Outcome {
  readonly bug: Bug;
  /** Full titles of the tests that failed. */
  readonly failed: string[];
  /** Tests that ran. */
  readonly ran: number;
  /** A build failure or a suite that produced no report; the bug then counts as not caught. */
  readonly problem: string | undefined;
  readonly ms: number;
}

/** A temporary copy of the repository's sources, builds and dependencies. */
export class Sandbox {
  readonly dir: string;
  readonly #root: string;

  /** Copies `root` (its packages' sources and builds; node_modules linked) to a new temporary directory. */
  constructor(root: string) {
    this.#root = root;
    this.dir = mkdtempSync(join(tmpdir(), 'wal-deliberate-bugs-'));
    for (const entry of ROOT_FILES)
      cpSync(join(root, entry), join(this.dir, entry), { recursive: true });
    symlinkSync(join(root, 'node_modules'), join(this.dir, 'node_modules'));
    for (const pkg of PACKAGES) {
      // verbatimSymlinks: the packages' node_modules links stay relative, so
      // @wal/* resolve to the copies.
      cpSync(join(root, pkg), join(this.dir, pkg), { recursive: true, verbatimSymlinks: true });
    }
  }

  /** Runs `bug`: applies it, builds, runs its suites, restores the sources. */
  async run(bug: Bug, log: (line: string) => void): Promise<Outcome> {
    const started = Date.now();
    const edited = applyBug(bug, this.dir);
    const failed: string[] = [];
    let ran = 0;
    let problem: string | undefined;
    try {
      for (const [file, text] of edited) writeFileSync(join(this.dir, file), text);
      const packages = [...new Set(bug.suites.map((suite) => suite.package))];
      const build = await this.#exec(
        join(this.#root, 'node_modules/.bin/tsc'),
        ['-b', ...packages],
        this.dir,
      );
      if (build.code !== 0) {
        problem = `the build failed: ${build.output.trim().split('\n').slice(0, 5).join(' / ')}`;
      } else {
        for (const suite of bug.suites) {
          log(
            `  ${suite.package}: ${suite.files.join(' ')}${suite.grep ? ` (--grep ${suite.grep})` : ''}`,
          );
          const result = await this.#mocha(suite);
          ran += result.ran;
          failed.push(...result.failed);
          if (result.problem !== undefined) problem ??= result.problem;
        }
      }
    } finally {
      for (const file of edited.keys()) {
        writeFileSync(join(this.dir, file), readFileSync(join(this.#root, file)));
      }
    }
    return { bug, failed, ran, problem, ms: Date.now() - started };
  }

  /** Deletes the temporary copy. */
  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }

  async #mocha(suite: Suite): Promise<{ ran: number; failed: string[]; problem?: string }> {
    const cwd = join(this.dir, suite.package);
    const report = join(this.dir, `report-${Date.now()}.json`);
    const args = [
      join(cwd, 'node_modules/mocha/bin/mocha.js'),
      '--no-config',
      '--timeout',
      '60000',
      '--exit',
      '--reporter',
      'json',
      '--reporter-option',
      `output=${report}`,
      ...(suite.grep === undefined ? [] : ['--grep', suite.grep]),
      ...suite.files,
    ];
    const result = await this.#exec(process.execPath, args, cwd, SUITE_LIMIT_MS);
    let parsed: { stats: { tests: number }; failures: Array<{ fullTitle: string }> };
    try {
      parsed = JSON.parse(readFileSync(report, 'utf8'));
    } catch {
      return {
        ran: 0,
        failed: [],
        problem: `mocha exited with ${result.code} and no report: ${result.output.trim().split('\n').slice(-3).join(' / ')}`,
      };
    }
    rmSync(report, { force: true });
    const failed = parsed.failures.map((failure) => failure.fullTitle);
    if (parsed.stats.tests === 0)
      return { ran: 0, failed, problem: `no test matched in ${suite.package}` };
    return { ran: parsed.stats.tests, failed };
  }

  /** Runs a command; resolves with its exit code (null when stopped after `limitMs`) and output. */
  #exec(
    command: string,
    args: string[],
    cwd: string,
    limitMs = SUITE_LIMIT_MS,
  ): Promise<{ code: number | null; output: string }> {
    const env = { ...process.env };
    delete env.WAL_TEST_SUMMARY; // these runs must not count in a CI summary
    return new Promise((resolve, reject) => {
      const child = spawn(command, args, {
        cwd,
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
        detached: true,
      });
      let output = '';
      const keep = (chunk: Buffer): void => {
        output = (output + chunk.toString()).slice(-20_000);
      };
      child.stdout.on('data', keep);
      child.stderr.on('data', keep);
      const timer = setTimeout(() => {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      }, limitMs);
      child.on('error', reject);
      child.on('close', (code) => {
        clearTimeout(timer);
        resolve({ code, output });
      });
    });
  }
}
