// `wal repair` when saving the cut bytes fails (a short write, as on a
// nearly full disk, a missing backup directory) or the log changes while it
// asks: the log stays byte for byte as it was, and no backup file is left.
// In process, to simulate the disk through the repair's file operations.
import assert from 'node:assert/strict';
import {
  appendFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  unlinkSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { run } from '../src/cli.js';
import { repairFiles } from '../src/commands/repair.js';
import { EXIT } from '../src/errors.js';
import { Output } from '../src/output.js';
import { runOnTerminal, snapshot, tornLog } from './logs.js';

let root: string;
let counter = 0;
before(() => {
  root = mkdtempSync(join(tmpdir(), 'wal-cli-repair-'));
});
after(() => rmSync(root, { recursive: true, force: true }));

/** `text` as a regular expression matching it literally. */
const literal = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** A torn log and an empty backup directory. */
async function setUp(): Promise<{ log: string; backups: string }> {
  const log = join(root, `log-${++counter}`);
  await tornLog(log);
  const backups = join(root, `backups-${counter}`);
  mkdirSync(backups);
  return { log, backups };
}

/** `wal …args` in process, without a terminal. */
async function walIn(args: readonly string[]): Promise<{ code: number; out: string; err: string }> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (chunk: Buffer) => {
    out += chunk.toString();
  });
  stderr.on('data', (chunk: Buffer) => {
    err += chunk.toString();
  });
  const code = await run(['node', 'wal', ...args], {
    out: new Output(stdout),
    err: stderr,
    stdin: new PassThrough(),
  });
  return { code, out, err };
}

/** Runs `work` with the repair's file writes replaced by `write`. */
async function withWrite<T>(write: typeof repairFiles.write, work: () => Promise<T>): Promise<T> {
  const original = repairFiles.write;
  repairFiles.write = write;
  try {
    return await work();
  } finally {
    repairFiles.write = original;
  }
}

describe('wal repair when the backup cannot be saved', () => {
  it('a short write then none (a full disk): exit 2, the log unchanged, no backup file', async () => {
    const { log, backups } = await setUp();
    const before = snapshot(log);
    let calls = 0;
    const result = await withWrite(
      (handle, bytes, offset, length, position) =>
        calls++ === 0
          ? handle.write(bytes, offset, Math.floor(length / 2), position)
          : Promise.resolve({ bytesWritten: 0 }),
      () => walIn(['repair', log, '--yes', '--backup-dir', backups]),
    );
    assert.equal(result.code, EXIT.usage, result.err);
    assert.ok(calls >= 2, 'the repair went on after the short write');
    assert.match(
      result.err,
      /^wal: .*: cannot save the cut bytes to .*\.bak: no space left on the device; nothing was changed \(the backup file is removed\)\n$/,
    );
    assert.doesNotMatch(result.out, /Saved|Lowered|Truncated/);
    assert.deepEqual(snapshot(log), before);
    assert.deepEqual(readdirSync(backups), []);
  });

  it('a write that claims more than reached the file: the size check fails, nothing changed', async () => {
    const { log, backups } = await setUp();
    const before = snapshot(log);
    const result = await withWrite(
      async (handle, bytes, offset, length, position) => {
        await handle.write(bytes, offset, Math.floor(length / 2), position);
        return { bytesWritten: length };
      },
      () => walIn(['repair', log, '--yes', '--backup-dir', backups]),
    );
    assert.equal(result.code, EXIT.usage, result.err);
    assert.match(
      result.err,
      /it holds \d+ byte\(s\) after writing, not the \d+ to save; nothing was changed/,
    );
    assert.deepEqual(snapshot(log), before);
    assert.deepEqual(readdirSync(backups), []);
  });

  it('short writes that go on: the backup is whole and the log is cut', async () => {
    const { log, backups } = await setUp();
    const segment = join(log, '00000000000000000000.wal');
    const bytes = readFileSync(segment);
    const result = await withWrite(
      (handle, chunk, offset, length, position) =>
        handle.write(chunk, offset, Math.min(length, 3), position),
      () => walIn(['repair', log, '--yes', '--backup-dir', backups]),
    );
    assert.equal(result.code, EXIT.ok, result.err);
    const [backup] = readdirSync(backups);
    const cut = readFileSync(segment).length;
    assert.deepEqual(readFileSync(join(backups, backup!)), bytes.subarray(cut));
    assert.ok(bytes.length - cut > 3);
  });
});

describe('wal repair of a log without metadata (wal-db 1.x) that fails', () => {
  /** A torn log with its metadata removed, as wal-db 1.x leaves one. */
  async function walDbLog(): Promise<string> {
    const { log } = await setUp();
    unlinkSync(join(log, 'meta'));
    return log;
  }

  it('the plan says metadata will be written', async () => {
    const log = await walDbLog();
    const before = snapshot(log);
    const result = await walIn(['repair', log, '--dry-run', '--segment-size', '4096']);
    assert.equal(result.code, EXIT.ok, result.err);
    assert.match(
      result.out,
      /\d\. record metadata in the log, which has none \(a wal-db 1\.x log\), as any @wal writer does: format 1, segment size 4096, maximum record size 67108864\n/,
    );
    assert.deepEqual(snapshot(log), before);
  });

  it('a backup directory that does not exist: exit 2, no metadata written', async () => {
    const log = await walDbLog();
    const before = snapshot(log);
    const missing = join(root, 'no-such-dir');
    const result = await walIn([
      'repair',
      log,
      '--yes',
      '--segment-size',
      '4096',
      '--backup-dir',
      missing,
    ]);
    assert.equal(result.code, EXIT.usage);
    assert.match(
      result.err,
      /^wal: cannot create the backup file .*no such file or directory; nothing was changed\n$/,
    );
    assert.deepEqual(snapshot(log), before);
    assert.ok(!existsSync(join(log, 'meta')));
    assert.ok(!existsSync(missing));
  });

  it('the log changed while it asked: exit 2, no metadata written, no backup file', async () => {
    const log = await walDbLog();
    const backups = join(root, `changed-${counter}`);
    mkdirSync(backups);
    const segment = join(log, '00000000000000000000.wal');
    const result = await runOnTerminal(
      ['repair', log, '--segment-size', '4096', '--backup-dir', backups],
      'y',
      () => appendFileSync(segment, Buffer.from([1, 2, 3])),
    );
    assert.equal(result.code, EXIT.usage, result.err);
    assert.match(result.err, /the log changed since it was examined; nothing done/);
    assert.ok(!existsSync(join(log, 'meta')), 'no metadata left behind');
    assert.deepEqual(readdirSync(backups), []);
    assert.deepEqual(readdirSync(log).sort(), ['00000000000000000000.wal', 'head']);
  });

  it('--max-record-size above the recorded one: the plan says it is raised', async () => {
    const { log } = await setUp();
    const result = await walIn(['repair', log, '--dry-run', '--max-record-size', '32M']);
    assert.equal(result.code, EXIT.ok, result.err);
    assert.match(
      result.out,
      /\d\. raise the log's recorded maximum record size from 16777216 to 33554432 \(--max-record-size\)\n/,
    );
  });
});

describe('wal repair with a backup directory inside a log directory', () => {
  /** The one line of a refused `--backup-dir`, for the log `log`. */
  const refused = (log: string, dir: string, where: string) =>
    new RegExp(
      `^wal: ${literal(log)}: --backup-dir ${literal(dir)} ${literal(where)}: a backup file there would leave that log unopenable; nothing was changed\\n$`,
    );

  it("the log's own directory, another log's, or one below it: exit 2, nothing created", async () => {
    const { log } = await setUp();
    const other = join(root, `other-${counter}`);
    await tornLog(other);
    // A log directory may hold a lost+found (a mount point's): a directory
    // below the log directory.
    const below = join(other, 'lost+found');
    mkdirSync(below);
    const before = snapshot(log);
    const otherBefore = snapshot(other);
    const real = realpathSync(other);
    for (const [dir, where] of [
      [log, 'is the directory of the log repaired'],
      [other, `is the log directory ${real}`],
      [below, `is inside the log directory ${real}`],
    ] as const) {
      const result = await walIn(['repair', log, '--yes', '--backup-dir', dir]);
      assert.equal(result.code, EXIT.usage, result.out);
      assert.match(result.err, refused(log, dir, where));
      assert.equal(result.out, '');
    }
    assert.deepEqual(snapshot(log), before);
    assert.deepEqual(snapshot(other), otherBefore);
    assert.deepEqual(readdirSync(below), []);
  });

  it('a wal-db 1.x log repaired into its own directory: the message says so', async () => {
    const { log } = await setUp();
    unlinkSync(join(log, 'meta'));
    const before = snapshot(log);
    const result = await walIn([
      'repair',
      log,
      '--yes',
      '--segment-size',
      '4096',
      '--backup-dir',
      log,
    ]);
    assert.equal(result.code, EXIT.usage);
    assert.match(result.err, refused(log, log, 'is the directory of the log repaired'));
    assert.deepEqual(snapshot(log), before);
    assert.deepEqual(readdirSync(log).sort(), ['00000000000000000000.wal', 'head']);
  });
});
