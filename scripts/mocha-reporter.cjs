// Mocha reporter for the workspace: mocha's own "spec" output, plus one JSON line
// per package appended to the file named by WAL_TEST_SUMMARY (when set), so that
// .ci/run can print totals summed over every package.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const Mocha = require('mocha');

const { EVENT_RUN_END } = Mocha.Runner.constants;

class WorkspaceReporter extends Mocha.reporters.Spec {
  constructor(runner, options) {
    super(runner, options);
    runner.once(EVENT_RUN_END, () => {
      const file = process.env.WAL_TEST_SUMMARY;
      if (!file) return;
      const stats = runner.stats ?? {};
      const line = JSON.stringify({
        package: path.basename(process.cwd()),
        passed: stats.passes ?? 0,
        failed: stats.failures ?? 0,
        pending: stats.pending ?? 0,
      });
      fs.appendFileSync(file, `${line}\n`);
    });
  }
}

module.exports = WorkspaceReporter;
