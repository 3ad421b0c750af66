/**
 * A deliberate bug: named edits of the sources (exact search text, replaced)
 * and the test files expected to catch it. An edit whose search text is not
 * found exactly once fails loudly, so the list cannot rot silently when the
 * code it targets changes.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** One exact replacement in one source file (a path relative to the repository root). */
export interface Edit {
  readonly file: string;
  readonly search: string;
  readonly replace: string;
}

/** The test files of one package that are run against a bug (paths under its `dist/`). */
export interface Suite {
  /** The package directory, relative to the repository root (`packages/core`). */
  readonly package: string;
  /** Compiled test files, relative to the package (`dist/test/crash/power-loss.test.js`). */
  readonly files: readonly string[];
  /** Only the tests whose full title matches this (mocha's `--grep`), to keep the run short. */
  readonly grep?: string;
}

/** A named deliberate bug. */
export interface Bug {
  /** Stable kebab-case name, used on the command line. */
  readonly name: string;
  /** What the bug does, in a sentence. */
  readonly what: string;
  readonly edits: readonly Edit[];
  readonly suites: readonly Suite[];
}

/** Thrown when an edit no longer applies: its search text is not found exactly once. */
export class StaleBugError extends Error {
  readonly code = 'BUG_STALE';
  constructor(
    readonly bug: string,
    readonly file: string,
    readonly found: number,
  ) {
    super(
      `deliberate bug "${bug}" no longer applies: its search text is found ${found} times in ${file} (exactly 1 needed); update the bug to the code`,
    );
    this.name = 'StaleBugError';
  }
}

function occurrences(text: string, search: string): number {
  if (search.length === 0) return 0;
  let count = 0;
  for (let at = text.indexOf(search); at >= 0; at = text.indexOf(search, at + search.length)) {
    count++;
  }
  return count;
}

/**
 * Applies `edit` to `text` (the content of `edit.file`) and returns the
 * result. Throws {@link StaleBugError} when the search text is not found
 * exactly once, and `Error` when the replacement changes nothing.
 */
export function applyEdit(bug: string, edit: Edit, text: string): string {
  const found = occurrences(text, edit.search);
  if (found !== 1) throw new StaleBugError(bug, edit.file, found);
  if (edit.search === edit.replace) {
    throw new Error(`deliberate bug "${bug}": an edit of ${edit.file} replaces its text by itself`);
  }
  return text.replace(edit.search, () => edit.replace);
}

/**
 * Applies every edit of `bug` to the files under `root` as read by `read`
 * (edits of one file apply in order), and returns the new contents by file.
 * Throws {@link StaleBugError} for the first edit that does not apply.
 */
export function applyBug(
  bug: Bug,
  root: string,
  read: (path: string) => string = (path) => readFileSync(path, 'utf8'),
): Map<string, string> {
  const contents = new Map<string, string>();
  for (const edit of bug.edits) {
    const text = contents.get(edit.file) ?? read(join(root, edit.file));
    contents.set(edit.file, applyEdit(bug.name, edit, text));
  }
  return contents;
}

/**
 * Checks that every bug still applies to the sources under `root` and that
 * the test files it names exist there (as `.ts` sources of the compiled
 * files); returns one message per problem (none when all is well).
 */
export function checkBugs(
  bugs: readonly Bug[],
  root: string,
  exists: (path: string) => boolean,
): string[] {
  const problems: string[] = [];
  const names = new Set<string>();
  for (const bug of bugs) {
    if (names.has(bug.name)) problems.push(`deliberate bug "${bug.name}" is listed twice`);
    names.add(bug.name);
    if (bug.edits.length === 0) problems.push(`deliberate bug "${bug.name}" has no edit`);
    if (bug.suites.length === 0) problems.push(`deliberate bug "${bug.name}" names no test`);
    try {
      applyBug(bug, root);
    } catch (error) {
      problems.push((error as Error).message);
    }
    for (const suite of bug.suites) {
      for (const file of suite.files) {
        const source = join(suite.package, sourceOf(file));
        if (!exists(join(root, source))) {
          problems.push(
            `deliberate bug "${bug.name}" names a test file that does not exist: ${source}`,
          );
        }
      }
    }
  }
  return problems;
}

/** The TypeScript source of a compiled test file: `dist/test/x.test.js` → `test/x.test.ts`. */
export function sourceOf(compiled: string): string {
  return compiled.replace(/^dist\//, '').replace(/\.js$/, '.ts');
}
