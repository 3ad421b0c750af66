// The per-package test totals that .ci/run sums into its "tests: N passed, M
// failed" line: one JSON line per test run, appended to the file named by
// WAL_TEST_SUMMARY (nothing when it is not set). Used by mocha-reporter.cjs
// and tape-summary.cjs.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

/**
 * Appends `{ package, suite, passed, failed, pending, failures }` for the
 * package in the working directory; `failures` names the failed tests (title
 * and first line of the error), so .ci/run can repeat them under its totals.
 */
function recordTotals({ suite, passed, failed, pending = 0, failures = [] }) {
  const file = process.env.WAL_TEST_SUMMARY;
  if (!file) return;
  const line = JSON.stringify({
    package: path.basename(process.cwd()),
    suite,
    passed,
    failed,
    pending,
    failures,
  });
  fs.appendFileSync(file, `${line}\n`);
}

module.exports = { recordTotals };
