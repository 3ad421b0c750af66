/**
 * `pnpm deliberate-bugs [--check] [--list] [--help] [name...]`: with `--check`, only
 * verifies that every deliberate bug still applies to the sources (fast);
 * otherwise applies each named bug (all by default) to a temporary copy of
 * the sources, one at a time, runs the tests expected to catch it, and prints
 * a table of the tests that failed. Exits 1 when a bug is not caught or no
 * longer applies, 2 on a bad argument.
 */
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bugs } from './bugs.js';
import { checkBugs } from './edit.js';
import { type Outcome, Sandbox } from './run.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../../..');

function table(outcomes: readonly Outcome[], ms: number): string {
  const lines = [
    '| Bug | What it breaks | Caught by (failing tests) | Tests run | Time |',
    '|---|---|---|---|---|',
  ];
  for (const { bug, failed, ran, problem, ms: took } of outcomes) {
    const shown = failed.slice(0, 6).map((title) => title.replace(/\|/g, '\\|'));
    if (failed.length > shown.length) shown.push(`… and ${failed.length - shown.length} more`);
    const caught =
      failed.length > 0
        ? `${failed.length}: ${shown.join('; ')}`
        : `**NOT CAUGHT**${problem ? ` (${problem})` : ''}`;
    lines.push(
      `| \`${bug.name}\` | ${bug.what} | ${caught} | ${ran} | ${Math.round(took / 1000)} s |`,
    );
  }
  const caughtCount = outcomes.filter((outcome) => outcome.failed.length > 0).length;
  lines.push(
    '',
    `${caughtCount} of ${outcomes.length} deliberate bugs caught in ${Math.round(ms / 1000)} s.`,
  );
  return lines.join('\n');
}

const FLAGS = new Set(['--check', '--list', '--help', '-h']);

const USAGE = `usage: pnpm deliberate-bugs [-- [--check | --list | --help] [name...]]
  (no argument)  apply every deliberate bug in turn to a copy of the sources and run the tests that should catch it (several minutes)
  name...        only these bugs
  --check        only check that every bug still applies to the sources (seconds)
  --list         list the bugs`;

async function main(argv: readonly string[]): Promise<number> {
  // An unknown flag must not start the full run (several minutes of tests).
  const unknownFlags = argv.filter((arg) => arg.startsWith('-') && !FLAGS.has(arg));
  if (unknownFlags.length > 0) {
    console.error(`unknown option(s): ${unknownFlags.join(', ')}\n${USAGE}`);
    return 2;
  }
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(USAGE);
    return 0;
  }
  const check = argv.includes('--check');
  if (argv.includes('--list')) {
    for (const bug of bugs) console.log(`${bug.name}: ${bug.what}`);
    return 0;
  }
  const names = argv.filter((arg) => !arg.startsWith('-'));
  const unknown = names.filter((name) => !bugs.some((bug) => bug.name === name));
  if (unknown.length > 0) {
    console.error(`unknown deliberate bug(s): ${unknown.join(', ')} (--list shows them)`);
    return 2;
  }
  const problems = checkBugs(bugs, root, existsSync);
  if (problems.length > 0) {
    for (const problem of problems) console.error(problem);
    return 1;
  }
  if (check) {
    console.log(`${bugs.length} deliberate bugs apply to the sources`);
    return 0;
  }
  const chosen = names.length === 0 ? bugs : bugs.filter((bug) => names.includes(bug.name));
  const started = Date.now();
  const sandbox = new Sandbox(root);
  const outcomes: Outcome[] = [];
  try {
    console.log(`sources copied to ${sandbox.dir}`);
    for (const bug of chosen) {
      console.log(`${bug.name}: ${bug.what}`);
      const outcome = await sandbox.run(bug, (line) => console.log(line));
      console.log(
        `  ${outcome.failed.length > 0 ? `caught by ${outcome.failed.length} test(s)` : 'NOT CAUGHT'} (${Math.round(outcome.ms / 1000)} s)`,
      );
      outcomes.push(outcome);
    }
  } finally {
    sandbox.remove();
  }
  console.log(`\n${table(outcomes, Date.now() - started)}`);
  return outcomes.every((outcome) => outcome.failed.length > 0) ? 0 : 1;
}

process.exitCode = await main(process.argv.slice(2));
