/**
 * The deliberate bugs: each one a way the durability code could be wrong,
 * and the test files (of the package holding the code, and of @wal/core
 * above it) expected to catch it. docs/DURABILITY.md (§6, "Deliberate
 * bugs") shows which tests caught each in the last full run.
 */
import type { Bug, Suite } from './edit.js';

const STORE = 'packages/store/src/segmented-store.ts';
const FILE_STORE = 'packages/store/src/file-store.ts';
const IO = 'packages/store/src/fs/io.ts';
const COMMIT = 'packages/commit/src/group-commit.ts';
const DURABILITY = 'packages/core/src/durability.ts';
const WRITER = 'packages/core/src/writer.ts';
const SCAN = 'packages/core/src/scan.ts';
const PREALLOCATION = 'packages/core/src/preallocation.ts';
const TRUNCATION = 'packages/core/src/truncation.ts';
const EXCLUSIVE = 'packages/core/src/exclusive.ts';
const BLOCKING = 'packages/core/src/blocking.ts';
const SHARED_MEMORY = 'packages/core/src/shared-memory.ts';
const SHARED_LOG = 'packages/core/src/shared-log.ts';

/** The shared log's tests (worker threads). */
const sharedSuites: Suite = { package: 'packages/core', files: ['dist/test/shared.test.js'] };

/** The segmented store's `truncateBefore` writing the head file (moved by `store-delete-before-head`). */
const HEAD_WRITE = `    await replaceFile(
      this.#fs,
      join(this.dir, 'head'),
      encodeHead(offset),
      this.#fsyncFailed,
      this.mode,
    );`;

/** The log's power-loss suite, optionally only the tests whose title matches `grep`. */
function logPowerLoss(grep?: string): Suite {
  return {
    package: 'packages/core',
    files: ['dist/test/crash/power-loss.test.js'],
    ...(grep === undefined ? {} : { grep }),
  };
}

/** The store's power-loss suite, optionally only the tests whose title matches `grep`. */
function storePowerLoss(grep?: string): Suite {
  return {
    package: 'packages/store',
    files: ['dist/test/power-loss.test.js'],
    ...(grep === undefined ? {} : { grep }),
  };
}

/** The group commit's example-based and model-based tests. */
const commitSuites: Suite = {
  package: 'packages/commit',
  files: ['dist/test/group-commit.test.js', 'dist/test/model.test.js'],
};

/** Recovery's tests on damaged logs. */
const recoverySuites: Suite = {
  package: 'packages/core',
  files: [
    'dist/test/recovery.test.js',
    'dist/test/scan.test.js',
    'dist/test/crash/bit-flips.test.js',
    'dist/test/crash/fuzz.test.js',
  ],
};

/** Every deliberate bug, in the order the command runs them. */
export const bugs: readonly Bug[] = [
  // ---------------------------------------------------------------- @wal/store
  {
    name: 'store-skip-data-sync',
    what: "the segmented store's sync skips the segments' fdatasync but resolves its callers",
    edits: [
      {
        file: STORE,
        search: 'await this.#fs.fdatasync(file);',
        replace: '// (deliberate bug) no fdatasync',
      },
    ],
    suites: [storePowerLoss('SegmentedStore \\(a\\)'), logPowerLoss('plain appends|group commit')],
  },
  {
    name: 'file-store-skip-data-sync',
    what: "the single-file store's sync skips the fdatasync but resolves its callers",
    edits: [
      {
        file: FILE_STORE,
        search: 'await this.#fs.fdatasync(this.#file);',
        replace: '// (deliberate bug) no fdatasync',
      },
    ],
    suites: [storePowerLoss('FileStore \\(a\\)'), logPowerLoss('single-file')],
  },
  {
    name: 'store-skip-data-sync-now',
    what: "the segmented store's syncNow skips the segments' fdatasyncSync but reports them synced",
    edits: [
      {
        file: STORE,
        search: 'this.#fs.fdatasyncSync!(file);',
        replace: '// (deliberate bug) no fdatasyncSync',
      },
    ],
    suites: [logPowerLoss('blocking commits')],
  },
  {
    name: 'core-blocking-skip-sync',
    what: "a blocking log's sync resolves the group commit without calling the store's syncNow",
    edits: [
      {
        file: BLOCKING,
        search: 'done = store.syncNow();',
        replace: 'done = true; // (deliberate bug) no sync',
      },
    ],
    suites: [logPowerLoss('blocking commits')],
  },
  {
    name: 'store-no-dir-sync-new-segment',
    what: 'a new segment is handed out without fsyncing the directory that holds its entry',
    edits: [
      {
        file: STORE,
        search:
          'await syncDir(this.#fs, this.dir, this.#fsyncFailed); // on failure close() closes the file',
        replace: '// (deliberate bug) no directory fsync after creating the segment',
      },
    ],
    suites: [storePowerLoss('SegmentedStore \\(a\\)'), logPowerLoss('segment rolls')],
  },
  {
    name: 'store-delete-before-head',
    what: 'truncateBefore deletes the segments below the new head before the head file is written',
    edits: [
      {
        file: STORE,
        search: `    // The head first, durably; only then may the segments below it go.
${HEAD_WRITE}
    try {`,
        replace: '    try {',
      },
      {
        file: STORE,
        search: `      for (const index of doomed) await this.#deleteSegment(index);
      if (doomed.length > 0) await syncDir(this.#fs, this.dir, this.#fsyncFailed);
    } catch (error) {
      this.latch(toWalError(error, 'truncateBefore')`,
        replace: `      for (const index of doomed) await this.#deleteSegment(index);
      if (doomed.length > 0) await syncDir(this.#fs, this.dir, this.#fsyncFailed);
  ${HEAD_WRITE}
    } catch (error) {
      this.latch(toWalError(error, 'truncateBefore')`,
      },
    ],
    suites: [storePowerLoss('SegmentedStore \\(b\\)'), logPowerLoss('truncateBefore: head-file')],
  },
  {
    name: 'store-replace-file-no-sync',
    what: 'a metadata or head file is renamed into place before its new bytes are fdatasynced',
    edits: [
      {
        file: IO,
        search: 'await fs.fdatasync(file);',
        replace: '// (deliberate bug) no fdatasync before the rename',
      },
    ],
    suites: [storePowerLoss('SegmentedStore \\((b|c)\\)')],
  },
  {
    name: 'store-durable-write-without-sync',
    what: "the stores' durable write is a plain write: no O_DSYNC, nothing synced, yet it resolves",
    edits: [
      {
        file: IO,
        search: 'return fs.pwriteDurable!(file, bytes, position).then(',
        replace: 'return fs.pwrite(file, bytes, position).then( // (deliberate bug) not durable',
      },
    ],
    suites: [
      {
        package: 'packages/store',
        files: ['dist/test/write-durable.test.js', 'dist/test/conformance-crashfs.test.js'],
        grep: 'writeDurable',
      },
    ],
  },
  // ---------------------------------------------------------------- @wal/commit
  {
    name: 'commit-durable-before-sync',
    what: 'the group commit releases durable waiters when the sync starts, before it settles',
    edits: [
      {
        file: COMMIT,
        search: 'Promise.resolve(pending).then(this.#onSynced, this.#onSyncFailed);',
        replace:
          'this.#synced();\n    Promise.resolve(pending).then(undefined, this.#onSyncFailed);',
      },
    ],
    suites: [commitSuites, logPowerLoss('group commit')],
  },
  {
    name: 'commit-durable-past-hole',
    what: 'a durable write moves the durable watermark to its end though an earlier range is not durable',
    edits: [
      {
        file: COMMIT,
        search: '    if (start === before) {',
        replace: '    if (start >= before) {',
      },
    ],
    suites: [
      commitSuites,
      { package: 'packages/core', files: ['dist/test/crash/durable-writes.test.js'] },
    ],
  },
  {
    name: 'commit-durable-over-written-gap',
    what: 'a durable write starting at the written watermark moves the durable watermark over bytes written but not yet synced',
    edits: [
      {
        file: COMMIT,
        search: '    if (start === before) {',
        replace: '    if (start === before || end === this.#written) {',
      },
    ],
    suites: [
      {
        package: 'packages/core',
        files: ['dist/test/crash/durable-writes.test.js'],
        grep: 'waits for the fdatasync',
      },
    ],
  },
  {
    name: 'core-durable-unstarted-fails-log',
    what: 'a durable write that could not start (not latched by the store) fails the log instead of going again as a write + fdatasync',
    edits: [
      {
        file: WRITER,
        search: 'if (!ok && !latched(cause) && gc.failure === undefined) {',
        replace: 'if (!ok && latched(cause) && gc.failure === undefined) {',
      },
    ],
    suites: [
      {
        package: 'packages/core',
        files: ['dist/test/crash/durable-writes.test.js'],
        grep: 'could not start|unlatched failure',
      },
    ],
  },
  {
    name: 'commit-written-past-hole',
    what: 'the written watermark advances over a completion that does not start at it (past a hole)',
    edits: [
      {
        file: COMMIT,
        search: 'if (start === this.#written) {',
        replace: 'if (start >= this.#written) {',
      },
    ],
    suites: [commitSuites],
  },
  {
    name: 'commit-sync-covers-reserved',
    what: 'a sync claims every reserved byte durable, including writes not yet completed',
    edits: [
      {
        file: COMMIT,
        search: 'this.#flushTarget = this.#written;',
        replace: 'this.#flushTarget = this.#reserved;',
      },
    ],
    suites: [commitSuites],
  },
  {
    name: 'commit-reset-clears-latch',
    what: '`reset()` clears a latched sync failure instead of throwing it',
    edits: [
      {
        file: COMMIT,
        search: `    validateOffset('offset', offset);
    if (this.#failure !== undefined) throw this.#failure;`,
        replace: `    validateOffset('offset', offset);
    this.#failure = undefined;`,
      },
    ],
    suites: [commitSuites],
  },
  // ---------------------------------------------------------------- @wal/core
  {
    name: 'core-chunk-unsealed',
    what: 'a staged chunk goes to the store without the CRCs of its frames filled in',
    edits: [
      {
        file: WRITER,
        search: '    writeFrame(chunk, at, payload);',
        replace:
          '    writeFrame(chunk, at, payload);\n    chunk.fill(0, at, at + 4); // (deliberate bug) CRC left blank',
      },
    ],
    suites: [logPowerLoss('plain appends')],
  },
  {
    name: 'core-durable-write-plain',
    what: "a durable commit's chunk goes to the store as a plain write, yet is reported durable",
    edits: [
      {
        file: WRITER,
        search: 'log.store.writeDurable!(start, bytes).then(',
        replace: 'log.store.write(start, bytes).then( // (deliberate bug) not durable',
      },
    ],
    suites: [
      { package: 'packages/core', files: ['dist/test/crash/durable-writes.test.js'] },
      logPowerLoss('plain appends with durable waits$|group commit'),
    ],
  },
  {
    name: 'core-skip-data-sync',
    what: "the log's sync resolves the group commit without calling the store's sync",
    edits: [
      {
        file: DURABILITY,
        search: 'pending = log.store.sync();',
        replace: 'pending = Promise.resolve();',
      },
    ],
    suites: [logPowerLoss('plain appends')],
  },
  {
    name: 'core-hint-concurrent-with-sync',
    what: 'the durable hint is written at the same time as the data sync, not after it resolved',
    edits: [
      {
        file: DURABILITY,
        search: `    return pending.then(
      () => {
        log.gate.leave();
        this.synced(target);
      },`,
        replace: `    this.synced(target);
    return pending.then(
      () => {
        log.gate.leave();
      },`,
      },
    ],
    suites: [logPowerLoss('segment rolls|close')],
  },
  {
    name: 'core-accept-bad-checksum',
    what: "recovery's scan accepts a frame whose CRC does not match",
    edits: [
      {
        file: SCAN,
        search: '(await cursor.crc(offset + 4, 4 + header.length, 0)) !== header.crc',
        replace: '((await cursor.crc(offset + 4, 4 + header.length, 0)) !== header.crc && false)',
      },
    ],
    suites: [recoverySuites],
  },
  {
    name: 'core-damage-below-hint-is-tear',
    what: 'recovery cuts damage below the durable hint as a torn tail instead of failing',
    edits: [
      {
        file: SCAN,
        search: `    if (offset >= durableHint) {
      const droppedFrames`,
        replace: `    if (offset >= 0) {
      const droppedFrames`,
      },
    ],
    suites: [recoverySuites],
  },
  {
    name: 'core-prealloc-zeros-over-record',
    what: 'preallocation forgets the writes sent past its end, so its zeros land over records',
    edits: [
      {
        file: PREALLOCATION,
        search: 'if (end > this.#allocated) this.#allocated = end;',
        replace: '// (deliberate bug) writes sent are not counted as allocated',
      },
    ],
    suites: [{ package: 'packages/core', files: ['dist/test/preallocate.test.js'] }],
  },
  {
    name: 'core-truncate-before-written-only',
    what: 'truncateBefore moves the head over records written but not yet durable (no sync first)',
    edits: [
      {
        file: TRUNCATION,
        search: "await writer.waitTarget(lsn, 'durable');",
        replace: "await writer.waitTarget(lsn, 'written');",
      },
    ],
    suites: [
      logPowerLoss('checkpoints beside writers'),
      { package: 'packages/core', files: ['dist/test/crash/audit.test.js'] },
    ],
  },
  {
    name: 'core-truncate-after-written-only',
    what: 'truncateAfter cuts once everything before it is written, without making it durable first',
    edits: [
      {
        file: EXCLUSIVE,
        search: 'if (gc.durable < gc.reserved) await gc.syncTo(gc.reserved);',
        replace: 'if (gc.written < gc.reserved) await gc.waitWritten(gc.reserved);',
      },
      {
        file: EXCLUSIVE,
        search: 'if (gc.idle && this.isSettled && gc.durable >= log.tail) break;',
        replace: 'if (gc.idle && this.isSettled && gc.written >= log.tail) break;',
      },
    ],
    suites: [
      logPowerLoss('truncateAfter'),
      { package: 'packages/core', files: ['dist/test/wal/truncate-after.test.js'] },
    ],
  },
  {
    name: 'core-append-during-truncate-after',
    what: 'truncateAfter refuses appends only once its work starts: an append in the same turn is accepted, then cut',
    edits: [
      {
        file: EXCLUSIVE,
        search: `    log.blocked |= BLOCK_TRUNCATING;
    // A shared log: the other threads' appends are refused from the call on too.
    log.shared?.truncatingCalled(true);
    const run = this.enqueue(async () => {`,
        replace: `    // A shared log: the other threads' appends are refused from the call on too.
    log.shared?.truncatingCalled(true);
    const run = this.enqueue(async () => {
      log.blocked |= BLOCK_TRUNCATING;`,
      },
    ],
    suites: [
      {
        package: 'packages/core',
        files: ['dist/test/wal/truncate-after.test.js', 'dist/test/wal-model.test.js'],
      },
    ],
  },
  {
    name: 'core-shared-prefix-ignores-appends-in-progress',
    what: "a shared log's owner copies out up to the tail, past a thread's reservation not yet framed (the watermarks pass a hole)",
    edits: [
      {
        file: SHARED_MEMORY,
        search: 'if (start !== IDLE && start < end) end = start;',
        replace: 'if (start !== IDLE && start < end) void start; // (deliberate bug)',
      },
    ],
    suites: [sharedSuites],
  },
  {
    name: 'core-shared-publish-written-as-durable',
    what: "a shared log's owner publishes the written watermark as the durable one: a thread's durable wait resolves before the fsync",
    edits: [
      {
        file: SHARED_LOG,
        search: 'memory.raise(DURABLE, gc.durable);',
        replace: 'memory.raise(DURABLE, gc.written); // (deliberate bug)',
      },
    ],
    suites: [sharedSuites],
  },
];
