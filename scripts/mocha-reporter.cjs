// Mocha reporter for the workspace: mocha's own "spec" output, plus the
// package's totals recorded for .ci/run (see test-summary.cjs).
'use strict';
const Mocha = require('mocha');
const { recordTotals } = require('./test-summary.cjs');

const { EVENT_RUN_END, EVENT_TEST_FAIL } = Mocha.Runner.constants;

class WorkspaceReporter extends Mocha.reporters.Spec {
  constructor(runner, options) {
    super(runner, options);
    const failures = [];
    runner.on(EVENT_TEST_FAIL, (test, err) => {
      const message = String(err?.message ?? err).split('\n')[0];
      failures.push(`${test.fullTitle()}: ${message}`);
    });
    runner.once(EVENT_RUN_END, () => {
      const stats = runner.stats ?? {};
      recordTotals({
        suite: 'mocha',
        passed: stats.passes ?? 0,
        failed: stats.failures ?? 0,
        pending: stats.pending ?? 0,
        failures,
      });
    });
  }
}

module.exports = WorkspaceReporter;
