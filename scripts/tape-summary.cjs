#!/usr/bin/env node
// Runs a tape test file (`node <file>`), passes its TAP output through, and
// records its "# pass" / "# fail" totals for .ci/run (see test-summary.cjs).
// Exits non-zero when an assertion failed, when the file exited non-zero, or
// when the output has no totals (the run stopped before tape's summary): such
// a run counts as at least one failure.
//
// Usage: node scripts/tape-summary.cjs <test file> [args…]
'use strict';
const { spawn } = require('node:child_process');
const { recordTotals } = require('./test-summary.cjs');

const [file, ...args] = process.argv.slice(2);
if (file === undefined) {
  console.error('usage: tape-summary.cjs <test file> [args…]');
  process.exit(2);
}

const child = spawn(process.execPath, [file, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
let tail = '';
let notOk = 0;
const failures = [];
let pass;
let fail;

function scan(line) {
  if (/^not ok \d+/.test(line)) {
    notOk++;
    failures.push(line);
  }
  const total = /^# (pass|fail)\s+(\d+)\s*$/.exec(line);
  if (total === null) return;
  if (total[1] === 'pass') pass = Number(total[2]);
  else fail = Number(total[2]);
}

child.stdout.on('data', (chunk) => {
  process.stdout.write(chunk);
  const lines = (tail + chunk.toString('utf8')).split('\n');
  tail = lines.pop();
  for (const line of lines) scan(line);
});

child.on('close', (code, signal) => {
  scan(tail);
  const complete = pass !== undefined;
  let failed = Math.max(fail ?? 0, notOk);
  if ((!complete || code !== 0) && failed === 0) failed = 1;
  if (failures.length === 0 && failed > 0) failures.push(`${file}: exit ${signal ?? code}`);
  recordTotals({ suite: `tape ${file}`, passed: pass ?? 0, failed, failures });
  if (!complete) console.error(`${file}: no TAP totals (exit ${signal ?? code})`);
  console.log(`${file}: ${pass ?? 0} passed, ${failed} failed`);
  process.exit(failed > 0 ? 1 : 0);
});
