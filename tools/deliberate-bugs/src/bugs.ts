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
const RECOVERY = 'packages/core/src/recovery.ts';
const CLOSE = 'packages/core/src/close.ts';
const BACKUP = 'packages/core/src/backup.ts';
const LSM = 'packages/lsm/src/lsm.ts';
const LSM_DIRECTORY = 'packages/lsm/src/directory.ts';
const LSM_RECOVERY = 'packages/lsm/src/recovery.ts';
const TABLE_WRITER = 'packages/lsm/src/table-writer.ts';
const CHECKPOINT = 'packages/txn/src/checkpoint.ts';
const TXN_STORE = 'packages/txn/src/store.ts';

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

/** The log's power-loss suite in blocking mode, optionally only the tests whose title matches `grep`. */
function blockingPowerLoss(grep?: string): Suite {
  return {
    package: 'packages/core',
    files: ['dist/test/crash/power-loss-blocking.test.js'],
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

/** One test file of the store, optionally only the tests whose title matches `grep`. */
function storeTests(file: string, grep?: string): Suite {
  return {
    package: 'packages/store',
    files: [`dist/test/${file}.test.js`],
    ...(grep === undefined ? {} : { grep }),
  };
}

/** The backup's power-loss tests (`grep`: one of them). */
function backupTests(grep: string): Suite {
  return { package: 'packages/core', files: ['dist/test/backup.test.js'], grep };
}

/** The engine's power-loss suite: the tests whose title matches `grep`. */
function lsmPowerLoss(grep: string): Suite {
  return { package: 'packages/lsm', files: ['dist/test/power-loss.test.js'], grep };
}

/** The engine's power-loss test of writes, flushes, compactions and reopens. */
const LSM_WORKLOAD = 'keeps every acknowledged durable write through';
/** The engine's power-loss test of an open after a process crash during a first open. */
const LSM_AFTER_KILL = 'after a process crash during a first open';

/** The engine's test of a creation cut short at each call, every state a power loss leaves then (up to 24). */
const LSM_CREATION_CUT: Suite = {
  package: 'packages/lsm',
  files: ['dist/test/lsm.test.js'],
  grep: 'a creation cut short at any file-system call',
};

/** The transaction store's power-loss test of transfers and checkpoints. */
const txnBank: Suite = {
  package: 'packages/txn',
  files: ['dist/test/crash/bank-power-loss.test.js'],
};

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
    suites: [
      storePowerLoss('SegmentedStore \\(a\\)'),
      logPowerLoss('plain appends|group commit'),
      blockingPowerLoss('store gate'),
    ],
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
    suites: [
      storePowerLoss('FileStore \\(a\\)'),
      logPowerLoss('single-file'),
      blockingPowerLoss('store gate'),
    ],
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
    suites: [logPowerLoss('blocking commits'), blockingPowerLoss(), backupTests('blocking source')],
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
    suites: [logPowerLoss('blocking commits'), blockingPowerLoss(), backupTests('blocking source')],
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
  {
    name: 'file-store-skip-data-sync-now',
    what: "the single-file store's syncNow skips the fdatasyncSync but reports the file synced",
    edits: [
      {
        file: FILE_STORE,
        search: 'this.#fs.fdatasyncSync!(this.#file);',
        replace: '// (deliberate bug) no fdatasyncSync',
      },
    ],
    suites: [storeTests('sync-now', 'FileStore'), blockingPowerLoss()],
  },
  {
    name: 'file-store-no-dir-sync-new-file',
    what: 'a first open creates the data file and writes its metadata beside it without fsyncing the directory between',
    edits: [
      {
        file: FILE_STORE,
        search: 'created = true;\n        await syncDir(fs, dirname(real), failOpen);',
        replace: 'created = true; // (deliberate bug) no directory fsync',
      },
    ],
    suites: [storePowerLoss('FileStore \\(a\\)')],
  },
  {
    name: 'file-store-no-dir-sync-before-meta',
    what: 'an open finding a data file without metadata (a killed first open) writes the metadata without first fsyncing the directory holding the file',
    edits: [
      {
        file: FILE_STORE,
        search: 'if (!created) await syncDir(fs, dirname(real), failOpen);',
        replace: '// (deliberate bug) no directory fsync before the metadata',
      },
    ],
    suites: [storePowerLoss('FileStore \\(e\\) first open after a process crash')],
  },
  {
    name: 'file-store-first-sync-no-dir-sync',
    what: "the first sync after opening a file that existed (its entry maybe unsynced) skips the directory's fsync",
    edits: [
      {
        file: FILE_STORE,
        search: 'syncDir(this.#fs, dirname(this.realPath), this.#fsyncFailed).then(() => {',
        replace: 'Promise.resolve().then(() => { // (deliberate bug) no directory fsync',
      },
    ],
    suites: [storeTests('write-durable', 'FileStore: a file whose create may not be durable')],
  },
  {
    name: 'file-store-truncate-no-sync',
    what: "the single-file store's truncate resolves without syncing the cut",
    edits: [
      {
        file: FILE_STORE,
        search: 'this.#data.written();\n    await this.doSync();',
        replace: 'this.#data.written(); // (deliberate bug) the cut is not synced',
      },
    ],
    suites: [storePowerLoss('FileStore \\(d\\)')],
  },
  {
    name: 'file-store-durable-fallback-no-sync',
    what: "the single-file store's durable write without pwriteDurable (or before the directory is synced) is a plain write",
    edits: [
      {
        file: FILE_STORE,
        search: 'return this.doWrite(offset, bytes).then(() => this.doSync());',
        replace: 'return this.doWrite(offset, bytes); // (deliberate bug) not synced',
      },
    ],
    suites: [
      storeTests('write-durable', 'FileStore.writeDurable without pwriteDurable'),
      storeTests('write-durable', 'FileStore: a file whose create may not be durable'),
    ],
  },
  {
    name: 'file-store-failed-open-no-dir-sync',
    what: "a failed first open removes the data file it created before its metadata's removal is durable",
    edits: [
      {
        file: FILE_STORE,
        search: 'await fs.syncDir(dirname(path));',
        replace: '// (deliberate bug) no directory fsync between the removals',
      },
    ],
    suites: [storeTests('failed-open-power-loss')],
  },
  {
    name: 'store-replace-file-no-dir-sync',
    what: 'a metadata or head file replaced by a rename resolves before the directory holding the rename is fsynced',
    edits: [
      {
        file: IO,
        search: 'await syncDir(fs, dirname(path), failed);\n}',
        replace: '// (deliberate bug) the rename is not made durable\n}',
      },
    ],
    suites: [storePowerLoss('SegmentedStore \\((a|c)\\)')],
  },
  {
    name: 'store-no-dir-sync-new-log',
    what: "a first open creates the log's directory without fsyncing its parent",
    edits: [
      {
        file: STORE,
        search: 'if (created) await syncDir(fs, dirname(dir), failOpen);',
        replace: "// (deliberate bug) no fsync of the directory's parent",
      },
    ],
    suites: [storePowerLoss('SegmentedStore \\(a\\)')],
  },
  {
    name: 'store-no-dir-sync-found-log',
    what: 'an open finding the directory (maybe left unsynced by a killed open) fsyncs neither its parent nor itself',
    edits: [
      {
        file: STORE,
        search:
          '        await syncDir(fs, dirname(dir), failOpen);\n        await syncDir(fs, dir, failOpen);',
        replace: '        // (deliberate bug) nothing a killed open left is made durable',
      },
    ],
    suites: [storePowerLoss('SegmentedStore \\(e\\) first open after a process crash')],
  },
  {
    name: 'store-extend-no-sync',
    what: 'an open extends the segment holding the head to reach it (FORMAT §3.2) without fdatasyncing the new length',
    edits: [
      {
        file: STORE,
        search:
          'segment.sync.written();\n      await this.#flushFile(segment, file);\n    });\n  }\n\n  /** Calls',
        replace:
          'segment.sync.written(); // (deliberate bug) the length is not synced\n    });\n  }\n\n  /** Calls',
      },
    ],
    suites: [storeTests('segment-size-check', 'durable once the open resolves')],
  },
  {
    name: 'store-truncate-no-dir-sync',
    what: "the segmented store's truncate deletes the segments past the cut without fsyncing the directory",
    edits: [
      {
        file: STORE,
        search:
          'if (doomed.length > 0) await syncDir(this.#fs, this.dir, this.#fsyncFailed);\n      if (length === 0) return;',
        replace:
          '// (deliberate bug) the deletions are not made durable\n      if (length === 0) return;',
      },
    ],
    suites: [storePowerLoss('SegmentedStore \\(d\\)')],
  },
  {
    name: 'store-truncate-no-sync',
    what: "the segmented store's truncate cuts the segment holding the new end without fdatasyncing it",
    edits: [
      {
        file: STORE,
        search:
          '          segment.sync.written();\n        }\n        await this.#flushFile(segment, file);',
        replace:
          '          segment.sync.written();\n        } // (deliberate bug) the cut is not synced',
      },
    ],
    suites: [storePowerLoss('SegmentedStore \\(d\\)')],
  },
  {
    name: 'store-durable-fallback-no-sync',
    what: "the segmented store's durable write on an Fs without pwriteDurable is a plain write",
    edits: [
      {
        file: STORE,
        search:
          'await writeAll(this.#fs, file, piece, within);\n      segment.sync.written();\n      await this.#flushFile(segment, file);',
        replace:
          'await writeAll(this.#fs, file, piece, within);\n      segment.sync.written(); // (deliberate bug) not synced',
      },
    ],
    suites: [storeTests('write-durable', 'SegmentedStore.writeDurable without pwriteDurable')],
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
  {
    name: 'commit-sync-not-called',
    what: 'the group commit starts a flush without calling sync and counts it done at once',
    edits: [
      {
        file: COMMIT,
        search: 'pending = this.#sync();',
        replace: 'pending = Promise.resolve(); // (deliberate bug) no sync',
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
        search: "await writer.waitTarget(lsn, 'durable', false);",
        replace: "await writer.waitTarget(lsn, 'written', false);",
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
        search: 'if (gc.durable < gc.reserved) await gc.syncTo(gc.reserved, NO_DELAY);',
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
  {
    name: 'core-recovery-no-sync',
    what: 'recovery keeps the records a killed process left in the page cache and records them durable without syncing them',
    edits: [
      {
        file: RECOVERY,
        search: 'await store.sync();\n    const update',
        replace: '// (deliberate bug) the recovered bytes are not synced\n    const update',
      },
    ],
    suites: [
      {
        package: 'packages/core',
        files: ['dist/test/recovery.test.js'],
        grep: 'a power loss during recovery|after a process crash, open fsyncs',
      },
    ],
  },
  {
    name: 'core-close-written-only',
    what: 'close waits for the tail to be written, not durable, and closes the store without syncing it',
    // Both steps: since close() syncs what was written before closing the
    // store (after a failed write too), the first edit alone left every
    // record durable, only the hint lower: no bug.
    edits: [
      {
        file: CLOSE,
        search: "await log.writer.waitTarget(log.tail, 'durable', false);",
        replace: "await log.writer.waitTarget(log.tail, 'written');",
      },
      {
        file: CLOSE,
        search: 'if (sync && gc!.failure === undefined && gc!.durable < gc!.written) {',
        replace: 'if (false && sync && gc!.failure === undefined && gc!.durable < gc!.written) {',
      },
    ],
    suites: [logPowerLoss('close')],
  },
  {
    name: 'core-backup-no-final-sync',
    what: 'a backup renames its copy into place without the sync that covers the copied records',
    edits: [
      {
        file: BACKUP,
        search: 'await store.sync();\n    await store.close();',
        replace: 'await store.close(); // (deliberate bug) no sync first',
      },
    ],
    suites: [backupTests('power loss at every step of the copy')],
  },
  {
    name: 'core-backup-no-dir-sync-parent',
    what: "a backup resolves without fsyncing the directory holding the copy's rename",
    edits: [
      {
        file: BACKUP,
        search: 'await typedIo(() => fs.syncDir(parent),',
        replace: 'await typedIo(() => Promise.resolve() /* (deliberate bug) */,',
      },
    ],
    suites: [backupTests('power loss at every step of the copy')],
  },
  {
    name: 'core-backup-no-dir-sync-copy',
    what: "a backup renames its copy without fsyncing the copy's directory (the lock file's removal)",
    edits: [
      {
        file: BACKUP,
        search: 'await typedIo(() => fs.syncDir(temp),',
        replace: 'await typedIo(() => Promise.resolve() /* (deliberate bug) */,',
      },
    ],
    suites: [backupTests('a failure of the last steps')],
  },
  {
    name: 'core-backup-move-back-no-dir-sync',
    what: "a backup whose parent's fsync failed empties the copy it renamed back without making that rename durable",
    edits: [
      {
        file: BACKUP,
        search: '    await fs.syncDir(parent);\n    return true;',
        replace: '    return true; // (deliberate bug) the rename back is not made durable',
      },
    ],
    suites: [backupTests('a failure of the last steps')],
  },
  // ---------------------------------------------------------------- @wal/lsm
  {
    name: 'lsm-table-skip-data-sync',
    what: "a table file's bytes are not fdatasynced before the manifest edit naming it",
    edits: [
      {
        file: TABLE_WRITER,
        search: 'await this.#fs.fdatasync(this.#file);',
        replace: '// (deliberate bug) no fdatasync',
      },
    ],
    suites: [lsmPowerLoss(LSM_WORKLOAD)],
  },
  {
    name: 'lsm-flush-no-dir-sync',
    what: "a flush records its table in the manifest before the directory holding the table's entry is fsynced",
    edits: [
      {
        file: LSM,
        search: 'const { size, summary } = written;\n      await this.#syncDir();',
        replace: 'const { size, summary } = written; // (deliberate bug) no directory fsync',
      },
    ],
    suites: [lsmPowerLoss(LSM_WORKLOAD)],
  },
  {
    name: 'lsm-compaction-no-dir-sync',
    what: 'a compaction records its output tables before the directory holding their entries is fsynced',
    edits: [
      {
        file: LSM,
        search: 'if (outputs.length > 0) await this.#syncDir();',
        replace: '// (deliberate bug) no directory fsync',
      },
    ],
    suites: [lsmPowerLoss(LSM_WORKLOAD)],
  },
  {
    name: 'lsm-new-store-no-parent-sync',
    what: "an open creating the store's directory does not fsync its parent",
    edits: [
      {
        file: LSM_DIRECTORY,
        search: 'if (created) {\n    await syncDirectory(fs, dirname(path));',
        replace: 'if (created) { // (deliberate bug) no fsync of the parent',
      },
    ],
    suites: [lsmPowerLoss(LSM_WORKLOAD)],
  },
  {
    name: 'lsm-found-store-no-parent-sync',
    what: "an open finding the store's directory (maybe made by a killed open) does not fsync its parent",
    edits: [
      {
        file: LSM_RECOVERY,
        search: 'if (!created) await syncDirectory(fs, dirname(path));',
        replace: '// (deliberate bug) no fsync of the parent',
      },
    ],
    suites: [lsmPowerLoss(LSM_AFTER_KILL)],
  },
  {
    name: 'lsm-marker-no-sync',
    what: "a new store's marker is not fdatasynced before the store's other files are created",
    edits: [
      {
        file: LSM_DIRECTORY,
        search: 'await writeAll(fs, file, MARKER, 0);\n      await fs.fdatasync(file);',
        replace: 'await writeAll(fs, file, MARKER, 0); // (deliberate bug) no fdatasync',
      },
    ],
    suites: [lsmPowerLoss(LSM_WORKLOAD)],
  },
  {
    name: 'lsm-marker-in-place',
    what: "a new store's marker is written in place instead of under a temporary name renamed once synced",
    edits: [
      {
        file: LSM_DIRECTORY,
        search: 'const temp = join(dir, MARKER_TEMP_NAME);',
        replace: 'const temp = path; // (deliberate bug) the marker written in place',
      },
    ],
    suites: [lsmPowerLoss(LSM_AFTER_KILL)],
  },
  {
    name: 'lsm-marker-no-dir-sync',
    what: "a new store's marker entry is not made durable before the store's other files are created",
    edits: [
      {
        file: LSM_DIRECTORY,
        search:
          '    await fs.syncDir(dir);\n  } catch (error) {\n    throw ioError(error, `creating the marker',
        replace:
          '    // (deliberate bug) no directory fsync\n  } catch (error) {\n    throw ioError(error, `creating the marker',
      },
    ],
    suites: [lsmPowerLoss(LSM_WORKLOAD), LSM_CREATION_CUT],
  },
  {
    name: 'lsm-found-marker-no-sync',
    what: 'an open finding a complete marker (maybe written by a killed open, never synced) does not fdatasync it',
    edits: [
      {
        file: LSM_DIRECTORY,
        search:
          "const file = await fs.open(path, 'write');\n    try {\n      await fs.fdatasync(file);",
        replace:
          "const file = await fs.open(path, 'write');\n    try {\n      // (deliberate bug) no fdatasync",
      },
    ],
    suites: [lsmPowerLoss(LSM_AFTER_KILL)],
  },
  {
    name: 'lsm-found-marker-no-dir-sync',
    what: 'an open finding a complete marker does not make its entry durable before it creates the manifest',
    edits: [
      {
        file: LSM_DIRECTORY,
        search:
          '    await fs.syncDir(dir);\n  } catch (error) {\n    throw ioError(error, `fsync of the marker',
        replace:
          '    // (deliberate bug) no directory fsync\n  } catch (error) {\n    throw ioError(error, `fsync of the marker',
      },
    ],
    suites: [lsmPowerLoss(LSM_AFTER_KILL)],
  },
  {
    name: 'lsm-manifest-edit-written-only',
    what: 'a manifest edit is applied once written, not once durable (a flush then truncates the data log under it)',
    edits: [
      {
        file: LSM,
        search: "await this.#manifest.append(encodeEdit(full), { wait: 'durable' });",
        replace: "await this.#manifest.append(encodeEdit(full), { wait: 'written' });",
      },
    ],
    suites: [lsmPowerLoss(LSM_WORKLOAD)],
  },
  {
    name: 'lsm-sync-write-written-only',
    what: 'a write with sync: true is acknowledged once its record is written, not durable',
    edits: [
      {
        file: LSM,
        search: "this.#wal.waitFor(lsn, 'durable').then(",
        replace: "this.#wal.waitFor(lsn, 'written').then(",
      },
    ],
    suites: [lsmPowerLoss(LSM_WORKLOAD)],
  },
  {
    name: 'lsm-manifest-rewrite-written-only',
    what: 'a manifest rewrite drops the edits before its snapshot once the snapshot is written, not durable',
    edits: [
      {
        file: LSM,
        search: "encodeEdit(snapshotEdit(this.#state)), {\n      wait: 'durable',",
        replace: "encodeEdit(snapshotEdit(this.#state)), {\n      wait: 'written',",
      },
    ],
    suites: [lsmPowerLoss(LSM_WORKLOAD)],
  },
  {
    name: 'lsm-first-edit-written-only',
    what: "a new store's open resolves once its first manifest edit is written, not durable (LSM-FORMAT §9 step 7)",
    edits: [
      {
        file: LSM_RECOVERY,
        search: "await manifest.append(encodeEdit(snapshotEdit(state)), { wait: 'durable' });",
        replace: "await manifest.append(encodeEdit(snapshotEdit(state)), { wait: 'written' });",
      },
    ],
    suites: [lsmPowerLoss('a store is complete once its first open resolves')],
  },
  // ---------------------------------------------------------------- @wal/txn
  {
    name: 'txn-checkpoint-skip-data-sync',
    what: "a checkpoint is renamed into place (and the log's head moved past it) before its bytes are fdatasynced",
    edits: [
      {
        file: CHECKPOINT,
        search: 'await fs.fdatasync(file);',
        replace: '// (deliberate bug) no fdatasync',
      },
    ],
    suites: [txnBank],
  },
  {
    name: 'txn-checkpoint-no-dir-sync',
    what: "a checkpoint's rename is not made durable before the log's head moves past it",
    edits: [
      {
        file: CHECKPOINT,
        search: '    await fs.syncDir(dir);\n    return { path, bytes: at, entries };',
        replace: '    return { path, bytes: at, entries }; // (deliberate bug) no directory fsync',
      },
    ],
    suites: [txnBank],
  },
  {
    name: 'txn-checkpoint-dir-no-parent-sync',
    what: "an open does not fsync the checkpoint directory's parent, so a checkpoint in it can vanish with it",
    edits: [
      {
        file: TXN_STORE,
        search: 'await fs.syncDir(dirname(dir));',
        replace: '// (deliberate bug) no fsync of the parent',
      },
    ],
    suites: [txnBank],
  },
  {
    name: 'txn-commit-acknowledged-written',
    what: 'a commit is acknowledged once its record is written, not durable',
    edits: [
      {
        file: TXN_STORE,
        search: ".waitFor(this.#lastLsn, 'durable')",
        replace: ".waitFor(this.#lastLsn, 'written')",
      },
      {
        file: TXN_STORE,
        search: ".waitFor(lsn, 'durable')\n        .then(this.#durableCohort",
        replace: ".waitFor(lsn, 'written')\n        .then(this.#durableCohort",
      },
      {
        file: TXN_STORE,
        search: 'const durable = this.#wal.durable;\n    let head',
        replace: 'const durable = this.#wal.written;\n    let head',
      },
    ],
    suites: [{ package: 'packages/txn', files: ['dist/test/crash/power-loss.test.js'] }],
  },
  {
    name: 'core-blocking-fallback-no-sync',
    what: "a blocking log's sync asked while truncateBefore holds the store gate resolves at once instead of going the asynchronous way",
    edits: [
      {
        file: BLOCKING,
        search: `  if (store.syncNow === undefined || log.gate.closed !== undefined) {
    return log.durability.syncStore();
  }`,
        replace: `  if (log.gate.closed !== undefined) return RESOLVED; // (deliberate bug) no sync
  if (store.syncNow === undefined) {
    return log.durability.syncStore();
  }`,
      },
    ],
    suites: [blockingPowerLoss()],
  },
];
