import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bugs } from '../src/bugs.js';
import { applyBug, applyEdit, type Bug, checkBugs, StaleBugError, sourceOf } from '../src/edit.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../../..');

describe('deliberate bugs: every bug still applies to the sources', () => {
  it('lists at least a dozen bugs across store, commit and core, with unique names', () => {
    assert.ok(bugs.length >= 12);
    assert.equal(new Set(bugs.map((bug) => bug.name)).size, bugs.length);
    for (const pkg of ['packages/store/', 'packages/commit/', 'packages/core/']) {
      assert.ok(
        bugs.some((bug) => bug.edits.some((edit) => edit.file.startsWith(pkg))),
        pkg,
      );
    }
  });

  for (const bug of bugs) {
    it(`${bug.name}: its edits apply exactly once and its test files exist`, () => {
      assert.deepEqual(checkBugs([bug], root, existsSync), []);
      const edited = applyBug(bug, root);
      for (const edit of bug.edits) assert.ok(edited.get(edit.file)!.includes(edit.replace));
    });
  }
});

describe('deliberate bugs: a bug that no longer applies fails loudly', () => {
  const edit = { file: 'src/x.ts', search: 'sync();', replace: '// no sync' };

  it('applies an edit found exactly once', () => {
    assert.equal(applyEdit('b', edit, 'a; sync(); b;'), 'a; // no sync b;');
    assert.equal(applyEdit('b', { ...edit, replace: '$&$&' }, 'sync();'), '$&$&');
  });

  it('throws StaleBugError when the search text is missing, repeated or empty', () => {
    for (const [text, found] of [
      ['a; b;', 0],
      ['sync(); sync();', 2],
    ] as const) {
      assert.throws(
        () => applyEdit('b', edit, text),
        (error: unknown) =>
          error instanceof StaleBugError &&
          error.code === 'BUG_STALE' &&
          error.found === found &&
          error.bug === 'b' &&
          error.file === 'src/x.ts' &&
          error.message.includes(`found ${found} times`),
      );
    }
    assert.throws(() => applyEdit('b', { ...edit, search: '' }, 'x'), StaleBugError);
  });

  it('refuses an edit that changes nothing', () => {
    assert.throws(() => applyEdit('b', { ...edit, replace: edit.search }, 'sync();'), /by itself/);
  });

  it('applies the edits of one file in order, each to the result of the last', () => {
    const bug: Bug = {
      name: 'b',
      what: '',
      edits: [edit, { ...edit, search: '// no sync', replace: '// gone' }],
      suites: [],
    };
    assert.deepEqual(
      applyBug(bug, '/r', () => 'x sync();'),
      new Map([['src/x.ts', 'x // gone']]),
    );
  });

  it('check reports stale edits, duplicate names, missing tests and missing test files', () => {
    const stale: Bug = {
      name: 'stale',
      what: '',
      edits: [
        { file: 'packages/core/src/wal.ts', search: 'no such text anywhere ~~', replace: '' },
      ],
      suites: [{ package: 'packages/core', files: ['dist/test/nope.test.js'] }],
    };
    const empty: Bug = { name: 'stale', what: '', edits: [], suites: [] };
    const problems = checkBugs([stale, empty], root, existsSync);
    assert.equal(problems.length, 5, problems.join('\n'));
    assert.match(
      problems[0]!,
      /no longer applies: its search text is found 0 times in packages\/core\/src\/wal.ts/,
    );
    assert.match(problems[1]!, /test file that does not exist: packages\/core\/test\/nope.test.ts/);
    assert.match(problems[2]!, /listed twice/);
    assert.match(problems[3]!, /has no edit/);
    assert.match(problems[4]!, /names no test/);
  });

  it('maps compiled test files to their sources', () => {
    assert.equal(sourceOf('dist/test/crash/power-loss.test.js'), 'test/crash/power-loss.test.ts');
    assert.ok(existsSync(join(root, 'packages/core', sourceOf('dist/test/preallocate.test.js'))));
  });
});

describe('deliberate bugs: the command line', () => {
  const main = join(dirname(fileURLToPath(import.meta.url)), '../src/main.js');
  const run = (...args: string[]) =>
    spawnSync(process.execPath, [main, ...args], { encoding: 'utf8', timeout: 30_000 });

  it('refuses an unknown option with status 2 and the usage, before running anything', () => {
    for (const flag of ['--help-me', '-x', '--quick']) {
      const result = run(flag);
      assert.equal(result.status, 2, flag);
      assert.match(result.stderr, new RegExp(`unknown option\\(s\\): ${flag}`));
      assert.match(result.stderr, /^usage: /m);
      assert.doesNotMatch(result.stdout, /sources copied to/);
    }
  });

  it('prints the usage for --help and -h, status 0, running nothing', () => {
    for (const flag of ['--help', '-h']) {
      const result = run(flag);
      assert.equal(result.status, 0, flag);
      assert.match(result.stdout, /^usage: pnpm deliberate-bugs/);
      assert.doesNotMatch(result.stdout, /sources copied to/);
    }
  });

  it('takes the separator pnpm passes through (`pnpm deliberate-bugs -- --list`) for nothing', () => {
    const listed = run('--', '--list');
    assert.equal(listed.status, 0, listed.stderr);
    assert.match(listed.stdout, /^lsm-marker-no-sync: /m);
    const checked = run('--', '--check');
    assert.equal(checked.status, 0, checked.stderr);
    assert.match(checked.stdout, /deliberate bugs apply to the sources/);
  });

  it('refuses an unknown bug name with status 2', () => {
    const result = run('no-such-bug');
    assert.equal(result.status, 2);
    assert.match(result.stderr, /unknown deliberate bug\(s\): no-such-bug/);
  });
});
