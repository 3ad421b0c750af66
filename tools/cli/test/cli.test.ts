// The `wal` command, run as a real child process against logs written by
// @wal/core and then damaged here: exit codes, output, and that the read-only
// commands change no byte.
import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  statSync,
  symlinkSync,
  truncateSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { crc32c, encodeFrame, Wal } from '@wal/core';
import { FileStore, NodeFs, SegmentedStore } from '@wal/store';
import { FaultFs } from '@wal/store/testing';
import { snapshot, tornLog } from './logs.js';

const MAIN = fileURLToPath(new URL('../src/main.js', import.meta.url));
const SEGMENT = 4096;
const encoder = new TextEncoder();

interface Result {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `wal …` to completion. The environment is inherited (coverage of the child). */
function wal(args: string[]): Promise<Result> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [MAIN, ...args],
      { encoding: 'utf8', env: process.env, timeout: 20_000 },
      (error, stdout, stderr) => {
        const code = (error as { code?: unknown } | null)?.code;
        resolve({
          status: error === null ? 0 : typeof code === 'number' ? code : null,
          stdout,
          stderr,
        });
      },
    );
  });
}

/**
 * A user-facing failure: exactly one line on stderr, `wal: …`, no stack
 * trace; the line is `wal: <pattern>` when `pattern` is a string, or matches
 * it when a regular expression.
 */
function assertOneLine(result: Result, pattern?: RegExp | string): void {
  const lines = result.stderr.split('\n').filter((line) => line.length > 0);
  assert.equal(lines.length, 1, `stderr: ${result.stderr}`);
  assert.match(lines[0]!, /^wal: /);
  assert.doesNotMatch(result.stderr, /\n\s+at |Error:/);
  if (typeof pattern === 'string') assert.equal(lines[0], `wal: ${pattern}`);
  else if (pattern !== undefined) assert.match(lines[0]!, pattern);
}

/** `text` as a regular expression matching it literally. */
const literal = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * A one-line refusal (exit 2) of a `--segment-size` the files of a log
 * without metadata do not fit, asking for the size it was written with,
 * then saying `more` when given.
 */
function assertSizeUnfit(result: Result | undefined, given: number, more = ''): void {
  assert.equal(result!.status, 2);
  assertOneLine(
    result!,
    new RegExp(
      `--segment-size ${given} does not match the segment files .*: give the segment size it was written with${more}$`,
    ),
  );
}

function payloadOf(i: number): Uint8Array {
  return encoder.encode(`record ${i} ${'x'.repeat(i % 50)}`);
}

/** Writes `count` records into a new segmented log; returns their LSNs and the end. */
async function makeLog(dir: string, count: number): Promise<{ lsns: number[]; end: number }> {
  const log = await Wal.open(dir, { segmentSize: SEGMENT });
  const lsns: number[] = [];
  for (let i = 0; i < count; i++) lsns.push(log.append(payloadOf(i)));
  await log.sync();
  const end = log.tail;
  await log.close();
  return { lsns, end };
}

/** The log's flat bytes from 0 (segments concatenated; every segment but the last is full). */
function flatBytes(dir: string): Buffer {
  const names = readdirSync(dir)
    .filter((name) => name.endsWith('.wal'))
    .sort();
  return Buffer.concat(names.map((name) => readFileSync(join(dir, name))));
}

function segmentFile(dir: string, offset: number): { file: string; at: number } {
  const index = Math.floor(offset / SEGMENT);
  return { file: join(dir, `${String(index).padStart(20, '0')}.wal`), at: offset % SEGMENT };
}

/** Flips one byte of the log at flat `offset`. */
function flip(dir: string, offset: number): void {
  const { file, at } = segmentFile(dir, offset);
  const bytes = readFileSync(file);
  bytes[at] = bytes[at]! ^ 0xff;
  writeFileSync(file, bytes);
}

/** Cuts the segmented log to flat length `length` (as a crash mid-write leaves it). */
function cutTo(dir: string, length: number): void {
  for (const name of readdirSync(dir).filter((n) => n.endsWith('.wal'))) {
    const start = Number(name.slice(0, 20)) * SEGMENT;
    if (start >= length) unlinkSync(join(dir, name));
    else if (start + SEGMENT > length) truncateSync(join(dir, name), length - start);
  }
}

/** Sets the durable hint, as a crash before the hint caught up leaves it. */
async function setHint(dir: string, hint: number): Promise<void> {
  const store = await SegmentedStore.open(dir);
  await store.updateMeta({ 'wal.durableHint': hint });
  await store.close();
}

/** The log's metadata, as stored. */
async function readMeta(dir: string): Promise<Record<string, unknown>> {
  const store = await SegmentedStore.open(dir, { readOnly: true });
  try {
    return await store.readMeta();
  } finally {
    await store.close();
  }
}

function jsonLines(text: string): Array<Record<string, unknown>> {
  return text
    .split('\n')
    .filter((line) => line.length > 0)
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

/** `verify --json` (the parts the tests read). */
interface Place {
  lsn: number;
  kind: string;
  claimedLength: number | null;
  file: string;
  fileOffset: number;
  cutBytes?: number;
  droppedFrames?: number;
  shorterThanHint?: boolean;
  skippable?: boolean | null;
}
interface VerifyJson {
  status: string;
  records: number;
  end: number;
  durableHint: number;
  zeroTail: number;
  tear: Place | null;
  damage: Place | null;
  skipped: Place[];
}

let root: string;
let counter = 0;
/** The umask the `wal` children inherit (read without changing it for long). */
const umask = (() => {
  const mask = process.umask(0o022);
  process.umask(mask);
  return mask;
})();
const fresh = (name = 'log') => join(root, `${name}-${++counter}`);

before(() => {
  root = mkdtempSync(join(tmpdir(), 'wal-cli-test-'));
});
after(() => {
  rmSync(root, { recursive: true, force: true });
});

describe('wal: program', async () => {
  it('prints its version and help, exit 0', async () => {
    const commands = ['info', 'verify', 'dump', 'tail', 'repair', 'backup'];
    const [version, help, helpCommand, unknownHelp, ...subs] = await Promise.all([
      wal(['--version']),
      wal(['--help']),
      wal(['help']),
      wal(['help', 'nosuch']),
      ...commands.map((command) => wal([command, '--help'])),
      ...commands.map((command) => wal(['help', command])),
    ]);
    assert.equal(version!.status, 0);
    assert.match(version!.stdout, /^\d+\.\d+\.\d+/);
    assert.equal(help!.status, 0);
    assert.equal(helpCommand!.status, 0);
    assert.equal(helpCommand!.stdout, help!.stdout);
    assert.equal(unknownHelp!.status, 2, 'help for an unknown command is a usage error');
    commands.forEach((command, i) => {
      assert.match(help!.stdout, new RegExp(`\\b${command}\\b`));
      const [sub, viaHelp] = [subs[i]!, subs[commands.length + i]!];
      assert.equal(sub.status, 0, command);
      assert.match(sub.stdout, new RegExp(`^Usage: wal ${command}`));
      assert.equal(sub.stderr, '');
      assert.equal(viaHelp.status, 0, `help ${command}`);
      assert.equal(viaHelp.stdout, sub.stdout);
    });
  });

  it('usage errors exit 2 with one line', async () => {
    const [command, missing, option, limit, size, format, none, ...intervals] = await Promise.all([
      wal(['frobnicate']),
      wal(['info']),
      wal(['dump', root, '--fro', '3']),
      wal(['dump', root, '--limit', 'many']),
      wal(['info', root, '--segment-size', '4q']),
      wal(['dump', root, '--format', 'xml']),
      wal([]),
      ...['0', '2147483648', '99999999999'].map((ms) =>
        wal(['tail', root, '-f', '--interval', ms]),
      ),
    ]);
    const expect: Array<[Result | undefined, RegExp]> = [
      ...intervals.map((result): [Result, RegExp] => [
        result,
        /^wal: option '--interval <ms>' argument '\d+' is invalid\. expected milliseconds from 1 to 2147483647\.$/,
      ]),
      [command, /unknown command/],
      [missing, /missing required argument/],
      [option, /unknown option '--fro'.*--from/],
      [limit, /non-negative integer/],
      [size, /size in bytes/],
      [format, /xml/],
    ];
    for (const [result, pattern] of expect) {
      assert.equal(result!.status, 2);
      assertOneLine(result!, pattern);
    }
    assert.equal(none!.status, 2);
  });

  it('refuses what is not a log, exit 2 with one line', async () => {
    const empty = fresh('empty');
    mkdirSync(empty);
    const file = fresh('plain.txt');
    writeFileSync(file, 'hello');
    const [missing, notLog, plain, device] = await Promise.all([
      wal(['info', join(root, 'no-such-log')]),
      wal(['verify', empty]),
      wal(['dump', file]),
      wal(['info', '/dev/null']),
    ]);
    assert.equal(missing!.status, 2);
    assertOneLine(missing!, `${join(root, 'no-such-log')}: no such file or directory`);
    for (const [result, message] of [
      [notLog, `${empty}: not a log: an empty directory`],
      [
        plain,
        `${file}: not a log: a 5-byte file without log metadata whose first frame does not check`,
      ],
      [
        device,
        '/dev/null: not a log: a character device, not a regular file (never opened as part of a log)',
      ],
    ] as const) {
      assert.equal(result!.status, 2);
      assertOneLine(result!, message);
    }
  });
});

describe('wal info of a log that records an application name', () => {
  it('shows the name (text and JSON); a log without one shows none', async () => {
    const dir = fresh();
    const log = await Wal.open(dir, { segmentSize: SEGMENT, application: 'my "queue"' });
    await log.append(payloadOf(1), { wait: 'durable' });
    await log.close();
    const [json, text] = await Promise.all([wal(['info', dir, '--json']), wal(['info', dir])]);
    assert.equal(json!.status, 0, json!.stderr);
    assert.equal((JSON.parse(json!.stdout) as { application: unknown }).application, 'my "queue"');
    assert.match(text!.stdout, /^application\s+"my \\"queue\\""$/m);
    const plain = fresh();
    await makeLog(plain, 1);
    const none = await wal(['info', plain]);
    assert.match(none!.stdout, /^application\s+-$/m);
  });
});

describe('wal info / verify / dump / tail on a clean log', () => {
  let dir: string;
  let lsns: number[];
  let end: number;
  before(async () => {
    dir = fresh();
    ({ lsns, end } = await makeLog(dir, 120));
  });

  it('info and verify report the log; nothing changes', async () => {
    const before = snapshot(dir);
    const [infoJson, infoText, verifyJson, verifyText] = await Promise.all([
      wal(['info', dir, '--json']),
      wal(['info', dir]),
      wal(['verify', dir, '--json']),
      wal(['verify', dir]),
    ]);
    assert.equal(infoJson!.status, 0, infoJson!.stderr);
    const info = JSON.parse(infoJson!.stdout) as Record<string, unknown>;
    assert.deepEqual(info, {
      path: dir,
      layout: 'segmented',
      format: 1,
      application: null,
      segmentSize: SEGMENT,
      maxRecordSize: 16 * 1024 * 1024,
      head: 0,
      tail: end,
      records: 120,
      segments: Math.ceil(end / SEGMENT),
      bytes: end,
      diskBytes: end,
      durableHint: end,
      status: 'clean',
      zeroTail: 0,
      tear: null,
      damage: null,
      pendingCut: null,
      skipped: 0,
      lock: { locked: false, pid: null, host: null, holder: null },
    });
    assert.equal(infoText!.status, 0);
    assert.match(infoText!.stdout, /^records\s+120$/m);
    assert.match(infoText!.stdout, /^lock\s+not locked$/m);
    assert.match(infoText!.stdout, /^state\s+clean$/m);
    assert.equal(verifyJson!.status, 0, verifyJson!.stderr);
    const report = JSON.parse(verifyJson!.stdout) as Record<string, unknown>;
    assert.equal(report.status, 'clean');
    assert.equal(report.records, 120);
    assert.equal(report.end, end);
    assert.equal(report.tear, null);
    assert.equal(report.damage, null);
    assert.equal(verifyText!.status, 0);
    assert.match(verifyText!.stdout, /OK: 120 record\(s\)/);
    assert.equal(verifyText!.stderr, '');
    assert.deepEqual(snapshot(dir), before);
  });

  it('dump: JSON Lines with base64 payloads, utf8, hex, --from, --limit', async () => {
    const before = snapshot(dir);
    const [json, utf8, hex, none] = await Promise.all([
      wal(['dump', dir, '--json']),
      wal(['dump', dir, '--from', String(lsns[5]), '--limit', '2']),
      wal(['dump', dir, '--format', 'hex', '--limit', '1']),
      wal(['dump', dir, '--limit', '0']),
    ]);
    assert.equal(json!.status, 0, json!.stderr);
    const records = jsonLines(json!.stdout);
    assert.equal(records.length, 120);
    records.forEach((record, i) => {
      assert.equal(record.lsn, lsns[i]);
      assert.equal(record.length, payloadOf(i).length);
      assert.deepEqual(
        new Uint8Array(Buffer.from(record.payload as string, 'base64')),
        payloadOf(i),
      );
    });
    assert.equal(utf8!.status, 0, utf8!.stderr);
    assert.equal(
      utf8!.stdout,
      `${lsns[5]}\t${payloadOf(5).length}\trecord 5 xxxxx\n${lsns[6]}\t${payloadOf(6).length}\trecord 6 xxxxxx\n`,
    );
    const first = Buffer.from(payloadOf(0)).toString('hex');
    assert.equal(hex!.stdout, `0\t${payloadOf(0).length}\t${first}\n`);
    assert.equal(none!.stdout, '');
    assert.deepEqual(snapshot(dir), before);
  });

  it('dump --from that is not a boundary, or past the end: exit 2', async () => {
    const [inside, past, atEnd] = await Promise.all([
      wal(['dump', dir, '--from', String(lsns[3]! + 1)]),
      wal(['dump', dir, '--from', String(end + 100)]),
      wal(['dump', dir, '--from', String(end)]),
    ]);
    assert.equal(inside!.status, 2);
    assertOneLine(
      inside!,
      `--from ${lsns[3]! + 1} is not a record boundary (no record starts there)`,
    );
    assert.equal(past!.status, 2);
    assertOneLine(past!, `--from ${end + 100} is past the end of the log (${end})`);
    assert.equal(atEnd!.status, 0);
    assert.equal(atEnd!.stdout, '');
  });

  it('tail -n prints the last records; repair has nothing to do', async () => {
    const before = snapshot(dir);
    const [last, none, text, repair] = await Promise.all([
      wal(['tail', dir, '-n', '3', '--json']),
      wal(['tail', dir, '-n', '0']),
      wal(['tail', dir]),
      wal(['repair', dir]),
    ]);
    assert.equal(last!.status, 0, last!.stderr);
    assert.deepEqual(
      jsonLines(last!.stdout).map((record) => record.lsn),
      lsns.slice(-3),
    );
    assert.equal(none!.stdout, '');
    assert.equal(text!.stdout.split('\n').filter(Boolean).length, 10);
    assert.equal(repair!.status, 0, repair!.stderr);
    assert.match(repair!.stdout, /nothing to repair/);
    assert.deepEqual(snapshot(dir), before);
  });
});

describe('wal on a torn tail (a crash mid-write)', () => {
  let dir: string;
  let lsns: number[];
  let end: number;
  before(async () => {
    dir = fresh('torn');
    ({ lsns, end } = await makeLog(dir, 80));
    await setHint(dir, 0);
    cutTo(dir, end - 3);
  });

  it('verify: exit 0 with a note of what recovery will cut; nothing changes', async () => {
    const before = snapshot(dir);
    const [json, text, infoJson, infoText, dump] = await Promise.all([
      wal(['verify', dir, '--json']),
      wal(['verify', dir]),
      wal(['info', dir, '--json']),
      wal(['info', dir]),
      wal(['dump', dir, '--json']),
    ]);
    assert.equal(json!.status, 0, json!.stderr);
    const report = JSON.parse(json!.stdout) as VerifyJson;
    assert.equal(report.status, 'torn-tail');
    assert.equal(report.records, 79);
    assert.equal(report.end, lsns[79]);
    assert.equal(report.tear!.lsn, lsns[79]);
    assert.equal(report.tear!.kind, 'short-payload');
    assert.equal(report.tear!.cutBytes, end - 3 - lsns[79]!);
    const { file, at } = segmentFile(dir, lsns[79]!);
    assert.equal(report.tear!.file, file.slice(dir.length + 1));
    assert.equal(report.tear!.fileOffset, at);
    assert.equal(text!.status, 0);
    assert.match(text!.stdout, /torn tail/);
    assert.match(text!.stdout, /will cut \d+ byte/);
    const info = JSON.parse(infoJson!.stdout) as Record<string, unknown>;
    assert.equal(info.status, 'torn-tail');
    assert.equal(info.tail, lsns[79]);
    assert.match(infoText!.stdout, /torn tail/);
    assert.equal(jsonLines(dump!.stdout).length, 79);
    assert.deepEqual(snapshot(dir), before);
  });

  it('repair --yes: saves the cut bytes, then cuts; the log verifies clean', async () => {
    const flat = flatBytes(dir);
    const backups = fresh('backups');
    mkdirSync(backups);
    const result = await wal(['repair', dir, '--yes', '--backup-dir', backups, '--mode', '0640']);
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stdout, /Done: the log opens clean: 79 record/);
    const [backup, ...others] = readdirSync(backups);
    assert.equal(others.length, 0);
    assert.match(backup!, /^torn-\d+\.repair-\d{8}T\d{6}\.\d{3}Z\.bak$/);
    assert.equal(statSync(join(backups, backup!)).mode & 0o777, 0o640 & ~umask);
    assert.deepEqual(readFileSync(join(backups, backup!)), flat.subarray(lsns[79]!));
    const check = await wal(['verify', dir, '--json']);
    assert.equal(check.status, 0);
    assert.equal((JSON.parse(check.stdout) as Record<string, unknown>).status, 'clean');
    const log = await Wal.open(dir);
    assert.equal(log.tail, lsns[79]);
    assert.equal(log.recovery.truncated, false);
    await log.close();
  });
});

describe('wal on preallocated zeros after a crash', () => {
  it("verify and info report the library's zero tail (no tear), exit 0; repair cuts them", async () => {
    const dir = fresh('zeros');
    const { end } = await makeLog(dir, 30);
    // What a crash leaves of the space the log writes ahead (FORMAT.md §8.4).
    const { file, at } = segmentFile(dir, end);
    writeFileSync(file, Buffer.concat([readFileSync(file).subarray(0, at), Buffer.alloc(3000)]));
    const [text, info, json] = await Promise.all([
      wal(['verify', dir]),
      wal(['info', dir]),
      wal(['verify', dir, '--json']),
    ]);
    assert.equal(text!.status, 0, text!.stderr);
    assert.match(text!.stdout, /: OK: 30 record/);
    assert.match(
      text!.stdout,
      new RegExp(
        `3000 byte\\(s\\) of zeros from LSN ${end} to the end \\(space the log preallocates`,
      ),
    );
    assert.match(text!.stdout, new RegExp(`will cut 3000 byte\\(s\\) at LSN ${end}`));
    assert.doesNotMatch(text!.stdout, /torn tail/);
    assert.match(info!.stdout, /state {11}clean; 3000 byte\(s\) of zeros from LSN/);
    const report = JSON.parse(json!.stdout) as VerifyJson;
    assert.equal(report.status, 'clean');
    assert.equal(report.tear, null);
    assert.equal(report.zeroTail, 3000);
    // A tear that is not all zeros is described as damage; the zeros after it apart.
    writeFileSync(file, Buffer.concat([readFileSync(file), Buffer.of(1), Buffer.alloc(100)]));
    const damaged = await wal(['verify', dir]);
    assert.match(damaged.stdout, /OK with a torn tail/);
    assert.match(damaged.stdout, /checksum mismatch/);
    assert.match(damaged.stdout, new RegExp(`100 byte\\(s\\) of zeros from LSN ${end + 3001} `));
    assert.match(damaged.stdout, new RegExp(`will cut 3101 byte\\(s\\) at LSN ${end}`));
    const backups = fresh('zeros-backup');
    mkdirSync(backups);
    const repaired = await wal(['repair', dir, '--yes', '--backup-dir', backups]);
    assert.equal(repaired.status, 0, repaired.stderr);
    const log = await Wal.open(dir);
    assert.equal(log.tail, end);
    await log.close();
  });
});

describe("wal on a cut of the log's end left in progress (wal.cutTo)", () => {
  let dir: string;
  let lsns: number[];
  let end: number;
  let mark: number;
  /** Records 0 to 49 are kept; the cut was to drop 50 to 79. */
  before(async () => {
    dir = fresh('cut');
    const fs = new FaultFs(new NodeFs());
    const log = await Wal.open(dir, { fs, segmentSize: SEGMENT, preallocate: 0 });
    lsns = [];
    for (let i = 0; i < 80; i++) lsns.push(log.append(payloadOf(i)));
    await log.sync();
    end = log.tail;
    mark = lsns[50]!;
    // A truncateAfter whose cut of the segment holding its end fails (what a
    // crash there leaves too): the mark is stored, the records past it are
    // still there.
    fs.inject({
      when: (call) =>
        call.method === 'ftruncate' && call.path.endsWith('.wal') ? 'EIO' : undefined,
    });
    await assert.rejects(log.truncateAfter(lsns[49]!), { code: 'WAL_FAILED' });
    await log.close().catch(() => undefined);
    const meta = await readMeta(dir);
    assert.equal(meta['wal.cutTo'], mark);
    assert.equal(flatBytes(dir).length, end, 'every record past the mark is left');
  });

  it('info and verify end the log at the mark and name the cut, not a tear; nothing changes', async () => {
    const before = snapshot(dir);
    const storeLength = flatBytes(dir).length;
    const past = lsns.filter((lsn) => lsn >= mark && lsn < storeLength).length;
    const [infoJson, infoText, json, text, dump] = await Promise.all([
      wal(['info', dir, '--json']),
      wal(['info', dir]),
      wal(['verify', dir, '--json']),
      wal(['verify', dir]),
      wal(['dump', dir, '--json']),
    ]);
    for (const result of [infoJson, infoText, json, text, dump]) {
      assert.equal(result!.status, 0, result!.stderr);
    }
    const info = JSON.parse(infoJson!.stdout) as Record<string, unknown>;
    assert.equal(info.status, 'clean');
    assert.equal(info.tail, mark);
    assert.equal(info.records, 50, 'the records below the mark only');
    assert.equal(info.tear, null);
    assert.deepEqual(info.pendingCut, { lsn: mark, cutBytes: storeLength - mark, records: past });
    assert.match(
      infoText!.stdout,
      new RegExp(
        `state {11}clean; a cut of the log's end to LSN ${mark} is in progress \\(wal\\.cutTo: .*\\): the next writable open finishes it, cutting the ${storeLength - mark} byte\\(s\\) past it \\(${past} intact record\\(s\\)\\)\n`,
      ),
    );
    assert.match(infoText!.stdout, /records {9}50\n/);
    assert.doesNotMatch(infoText!.stdout, /torn/);
    const report = JSON.parse(json!.stdout) as VerifyJson & { pendingCut: unknown };
    assert.equal(report.status, 'clean');
    assert.equal(report.records, 50);
    assert.equal(report.end, mark);
    assert.equal(report.tear, null);
    assert.deepEqual(report.pendingCut, info.pendingCut);
    assert.match(text!.stdout, new RegExp(`: OK: 50 record\\(s\\), LSN 0 to ${mark}\\.\n`));
    assert.match(text!.stdout, /a cut of the log's end to LSN \d+ is in progress/);
    assert.doesNotMatch(text!.stdout, /torn|recovery \(the next writable open\) will cut/);
    assert.equal(jsonLines(dump!.stdout).length, 50);
    assert.deepEqual(snapshot(dir), before);
  });

  it('a torn record past the mark is named among what the cut drops', async () => {
    const copy = fresh('cut-torn');
    cpSync(dir, copy, { recursive: true });
    const storeLength = flatBytes(copy).length;
    const torn = lsns.filter((lsn) => lsn < storeLength).at(-1)!;
    flip(copy, torn + 8); // the payload of the last record left
    const [infoJson, infoText, json] = await Promise.all([
      wal(['info', copy, '--json']),
      wal(['info', copy]),
      wal(['verify', copy, '--json']),
    ]);
    const info = JSON.parse(infoJson!.stdout) as Record<string, unknown>;
    assert.equal(info.status, 'torn-tail');
    assert.equal(info.tail, mark);
    assert.equal(info.records, 50);
    const tear = info.tear as Place;
    assert.equal(tear.lsn, torn);
    assert.equal(tear.cutBytes, storeLength - torn, 'from the tear on');
    const past = lsns.filter((lsn) => lsn >= mark && lsn < torn).length;
    assert.deepEqual(info.pendingCut, { lsn: mark, cutBytes: storeLength - mark, records: past });
    assert.match(
      infoText!.stdout,
      new RegExp(
        `state {11}torn tail; a cut of the log's end to LSN ${mark} is in progress .*\\(${past} intact record\\(s\\), then a torn record at LSN ${torn}\\)`,
      ),
    );
    assert.deepEqual((JSON.parse(json!.stdout) as { tear: Place }).tear, {
      ...tear,
      droppedFrames: 0,
    });
  });

  it('the next writable open finishes the cut; a mark left after the cut cuts nothing', async () => {
    const copy = fresh('cut-done');
    cpSync(dir, copy, { recursive: true });
    const log = await Wal.open(copy);
    assert.equal(log.tail, mark);
    await log.close();
    const after = JSON.parse((await wal(['info', copy, '--json'])).stdout) as Record<
      string,
      unknown
    >;
    assert.deepEqual([after.records, after.tail, after.pendingCut], [50, mark, null]);
    // The crash after the cut, before the mark's removal (FORMAT.md §7.1 step 3.4).
    const store = await SegmentedStore.open(copy);
    await store.updateMeta({ 'wal.cutTo': mark });
    await store.close();
    const [infoJson, text] = await Promise.all([
      wal(['info', copy, '--json']),
      wal(['verify', copy]),
    ]);
    const info = JSON.parse(infoJson.stdout) as Record<string, unknown>;
    assert.deepEqual([info.status, info.records], ['clean', 50]);
    assert.deepEqual(info.pendingCut, { lsn: mark, cutBytes: 0, records: 0 });
    assert.match(
      text.stdout,
      /in progress .*, done already: the next writable open removes its mark/,
    );
  });
});

describe('wal on damage below the durable hint', () => {
  let dir: string;
  let lsns: number[];
  let end: number;
  const bad = 40;
  beforeEach(async () => {
    dir = fresh('damaged');
    ({ lsns, end } = await makeLog(dir, 80));
    flip(dir, lsns[bad]! + 8 + 2); // a payload byte: the checksum fails
  });

  it('verify, info, dump: exit 1 with one line and the first damage; nothing changes', async () => {
    const before = snapshot(dir);
    const results = await Promise.all([
      wal(['verify', dir, '--json']),
      wal(['verify', dir]),
      wal(['info', dir, '--json']),
      wal(['info', dir]),
      wal(['dump', dir]),
      wal(['dump', dir, '--skip', '--json']),
      wal(['verify', dir, '--skip', '--json']),
      wal(['verify', dir, '--skip']),
    ]);
    const [json, text, infoJson, infoText, dump, dumpSkip, skipJson, skipText] = results;
    assert.equal(json!.status, 1);
    assertOneLine(json!, new RegExp(`LSN ${lsns[bad]}\\b`));
    const report = JSON.parse(json!.stdout) as VerifyJson;
    assert.equal(report.status, 'damaged');
    assert.equal(report.records, bad);
    assert.equal(report.durableHint, end);
    const { file, at } = segmentFile(dir, lsns[bad]!);
    assert.deepEqual(report.damage, {
      lsn: lsns[bad],
      kind: 'checksum',
      claimedLength: payloadOf(bad).length,
      file: file.slice(dir.length + 1),
      fileOffset: at,
      shorterThanHint: false,
      cutBytes: end - lsns[bad]!,
      droppedFrames: 80 - bad - 1,
      skippable: true,
    });
    assert.equal(text!.status, 1);
    assert.match(text!.stdout, /DAMAGED: checksum mismatch at LSN/);
    assert.match(text!.stdout, /repair --skip can step over/);

    assert.equal(infoJson!.status, 1);
    assertOneLine(infoJson!, `${dir}: the log is damaged below its durable hint (run wal verify)`);
    assert.equal((JSON.parse(infoJson!.stdout) as Record<string, unknown>).status, 'damaged');
    assert.match(infoText!.stdout, /DAMAGED/);
    assert.equal(dump!.status, 1);
    assertOneLine(
      dump!,
      new RegExp(
        `^wal: ${literal(dir)}: the log is damaged: damaged record \\(checksum\\) at offset ${lsns[bad]}, below the durable hint \\d+: these bytes were durable, so this is not a torn tail$`,
      ),
    );

    assert.equal(dumpSkip!.status, 0, dumpSkip!.stderr);
    const records = jsonLines(dumpSkip!.stdout);
    assert.equal(records.length, 79);
    assert.ok(!records.some((record) => record.lsn === lsns[bad]));
    assert.equal(skipJson!.status, 0);
    const skipped = JSON.parse(skipJson!.stdout) as VerifyJson;
    assert.equal(skipped.status, 'clean');
    assert.equal(skipped.skipped[0]!.lsn, lsns[bad]);
    assert.match(skipText!.stdout, /stepped over/);
    assert.deepEqual(snapshot(dir), before);
  });

  it('repair refuses without a terminal and without --yes; --dry-run does nothing', async () => {
    const before = snapshot(dir);
    const [refused, dry] = await Promise.all([
      wal(['repair', dir]),
      wal(['repair', dir, '--dry-run']),
    ]);
    assert.equal(refused!.status, 2);
    assertOneLine(
      refused!,
      'refusing to repair without confirmation: the input is not a terminal (pass --yes)',
    );
    assert.match(refused!.stdout, /wal repair will:/);
    assert.equal(dry!.status, 0);
    assert.match(dry!.stdout, /lower the durable hint/);
    assert.match(dry!.stdout, /Dry run: nothing done/);
    assert.deepEqual(snapshot(dir), before);
  });

  it('repair --yes: backs up from the damage, cuts there, lowers the hint', async () => {
    const flat = flatBytes(dir);
    const result = await wal(['repair', dir, '-y']);
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stdout, /Lowered the durable hint/);
    const backups = readdirSync(root).filter(
      (name) => name.startsWith(`${dir.slice(root.length + 1)}.repair-`) && name.endsWith('.bak'),
    );
    assert.equal(backups.length, 1);
    const backup = readFileSync(join(root, backups[0]!));
    assert.equal(backup.length, end - lsns[bad]!);
    assert.deepEqual(backup, flat.subarray(lsns[bad]!));
    const log = await Wal.open(dir);
    assert.equal(log.tail, lsns[bad]);
    assert.equal(log.recovery.records, bad);
    await log.close();
    const check = await wal(['verify', dir]);
    assert.equal(check.status, 0, check.stderr);
    assert.match(check.stdout, new RegExp(`OK: ${bad} record`));
  });

  it('repair --skip --yes: keeps the damaged record, cuts only a torn tail', async () => {
    await setHint(dir, lsns[60]!);
    cutTo(dir, end - 2);
    const flat = flatBytes(dir);
    const result = await wal(['repair', dir, '--skip', '--yes']);
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stdout, /stepped over with recovery 'skip'/);
    const backups = readdirSync(root).filter((name) =>
      name.startsWith(`${dir.slice(root.length + 1)}.repair-`),
    );
    assert.deepEqual(readFileSync(join(root, backups[0]!)), flat.subarray(lsns[79]!));
    const log = await Wal.open(dir, { recovery: 'skip' });
    assert.equal(log.tail, lsns[79]);
    assert.equal(log.recovery.skipped[0]?.offset, lsns[bad]);
    await log.close();
    const [skip, strict, again] = await Promise.all([
      wal(['verify', dir, '--skip']),
      wal(['verify', dir]),
      wal(['repair', dir, '--skip']),
    ]);
    assert.equal(skip!.status, 0);
    assert.equal(strict!.status, 1);
    assert.equal(again!.status, 0);
    assert.match(again!.stdout, /nothing to repair/);
    assert.match(again!.stdout, /stay in the log/);
  });

  it('a damaged length field cannot be stepped over', async () => {
    flip(dir, lsns[bad]! + 8 + 2); // restore the payload
    flip(dir, lsns[bad]! + 6); // the length field: it now claims far too much
    const [json, text] = await Promise.all([wal(['verify', dir, '--json']), wal(['verify', dir])]);
    assert.equal(json!.status, 1);
    const report = JSON.parse(json!.stdout) as VerifyJson;
    assert.equal(report.damage!.lsn, lsns[bad]);
    assert.equal(report.damage!.kind, 'short-payload');
    assert.equal(report.damage!.skippable, false);
    assert.doesNotMatch(text!.stdout, /--skip can/);
  });
});

describe('wal on a log that ends below its durable hint', () => {
  it('verify reports the missing bytes; repair cuts at the last intact record', async () => {
    const dir = fresh('short');
    const { lsns, end } = await makeLog(dir, 30);
    cutTo(dir, end - 3);
    const [json, text] = await Promise.all([wal(['verify', dir, '--json']), wal(['verify', dir])]);
    assert.equal(json!.status, 1);
    const report = JSON.parse(json!.stdout) as VerifyJson;
    assert.equal(report.damage!.shorterThanHint, true);
    assert.equal(report.damage!.lsn, lsns[29]);
    assert.equal(report.damage!.kind, 'short-payload');
    assert.match(text!.stdout, /below its durable hint/);
    const repaired = await wal(['repair', dir, '--yes']);
    assert.equal(repaired.status, 0, repaired.stderr);
    assert.equal((await wal(['verify', dir])).status, 0);
  });

  it('cut at a record boundary: only the hint is lowered', async () => {
    const dir = fresh('short');
    const { lsns } = await makeLog(dir, 30);
    cutTo(dir, lsns[29]!);
    const result = await wal(['verify', dir, '--json']);
    assert.equal(result.status, 1);
    const report = JSON.parse(result.stdout) as VerifyJson;
    assert.equal(report.damage!.kind, 'missing');
    assert.equal(report.damage!.cutBytes, 0);
    const repaired = await wal(['repair', dir, '--yes']);
    assert.equal(repaired.status, 0, repaired.stderr);
    assert.doesNotMatch(repaired.stdout, /Saved/);
    assert.match(repaired.stdout, /Lowered the durable hint/);
    assert.equal((await wal(['verify', dir])).status, 0);
  });
});

describe('wal with a live writer', () => {
  it('info says locked; verify and dump work; repair refuses', async () => {
    const dir = fresh('live');
    await makeLog(dir, 20);
    // No preallocation: its zeros are written after a durable append
    // resolves, in the background, and would change the files under the
    // snapshot below through the writer, not through the commands tested.
    const writer = await Wal.open(dir, { preallocate: 0 });
    try {
      await writer.append(payloadOf(20), { wait: 'durable' });
      const before = snapshot(dir);
      const [infoJson, infoText, verify, dump, repair] = await Promise.all([
        wal(['info', dir, '--json']),
        wal(['info', dir]),
        wal(['verify', dir, '--json']),
        wal(['dump', dir, '--json']),
        wal(['repair', dir, '--yes']),
      ]);
      assert.equal(infoJson!.status, 0, infoJson!.stderr);
      const lock = (JSON.parse(infoJson!.stdout) as { lock: Record<string, unknown> }).lock;
      assert.equal(lock.locked, true);
      assert.equal(lock.pid, process.pid);
      assert.equal(lock.holder, 'alive');
      assert.match(infoText!.stdout, new RegExp(`locked by process ${process.pid}`));
      assert.equal(verify!.status, 0, verify!.stderr);
      assert.equal((JSON.parse(verify!.stdout) as Record<string, unknown>).records, 21);
      assert.equal(jsonLines(dump!.stdout).length, 21);
      assert.equal(repair!.status, 2);
      assertOneLine(
        repair!,
        `${dir}: the log is locked by process ${process.pid}: stop it before repairing`,
      );
      assert.deepEqual(snapshot(dir), before);
    } finally {
      await writer.close();
    }
  });

  /** `wal tail <args> --follow --json` in a child process, its output gathered as it comes. */
  const following = (args: readonly string[]) => {
    const child: ChildProcess = spawn(
      process.execPath,
      [MAIN, 'tail', ...args, '--follow', '--json'],
      { env: process.env, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const tail = {
      child,
      out: '',
      err: '',
      exited: new Promise<number | null>((resolve) => child.on('exit', resolve)),
    };
    child.stdout!.on('data', (chunk: Buffer) => {
      tail.out += chunk.toString('utf8');
    });
    child.stderr!.on('data', (chunk: Buffer) => {
      tail.err += chunk.toString('utf8');
    });
    return tail;
  };

  it('tail --follow prints records appended after it started', async () => {
    const dir = fresh('follow');
    await makeLog(dir, 5);
    const tail = following([dir, '-n', '2', '--interval', '50']);
    const { child, exited } = tail;
    const until = async (lines: number) => {
      const deadline = Date.now() + 15_000;
      while (jsonLines(tail.out).length < lines) {
        assert.ok(Date.now() < deadline, `timed out; stdout: ${tail.out} stderr: ${tail.err}`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    };
    try {
      await until(2);
      const writer = await Wal.open(dir);
      const appended: number[] = [];
      try {
        for (let i = 100; i < 103; i++) {
          appended.push(await writer.append(payloadOf(i), { wait: 'written' }));
        }
        await until(5);
        appended.push(await writer.append(payloadOf(103), { wait: 'written' }));
        await until(6);
        // The writer cuts below the follower's position, then appends again.
        await writer.truncateAfter(appended[0]!);
        const deadline = Date.now() + 15_000;
        while (!tail.err.includes('truncated')) {
          assert.ok(Date.now() < deadline, `no note of the truncation; stderr: ${tail.err}`);
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
        appended.push(await writer.append(payloadOf(104), { wait: 'written' }));
        await until(7);
      } finally {
        await writer.close();
      }
      const records = jsonLines(tail.out);
      assert.deepEqual(
        records.slice(2).map((record) => record.lsn),
        appended,
      );
      assert.equal(
        Buffer.from(records[5]!.payload as string, 'base64').toString(),
        'record 103 xxx',
      );
      assert.equal(appended[4], appended[1]); // the cut LSN, handed out again
      assert.equal(
        Buffer.from(records[6]!.payload as string, 'base64').toString(),
        'record 104 xxxx',
      );
    } finally {
      child.kill('SIGTERM');
    }
    assert.equal(await exited, 0);
    assertOneLine({ status: 0, stdout: '', stderr: tail.err }, /truncated.*following from LSN/);
  });

  it('tail --follow notices a cut below what it printed, refilled past its position between two looks', async () => {
    const dir = fresh('follow-cut');
    const writer = await Wal.open(dir, { preallocate: 0 });
    // Payloads of one length: the cut LSNs are handed out again, and the
    // follower's old position is a record boundary of the refilled log.
    const text = (name: string) => encoder.encode(name);
    const lsns: number[] = [];
    for (let i = 0; i < 10; i++)
      lsns.push(await writer.append(text(`old-${i}`), { wait: 'written' }));
    const tail = following([dir, '-n', '3', '--interval', '1000']);
    const { child, exited } = tail;
    const printed = () =>
      jsonLines(tail.out).map((record) =>
        Buffer.from(record.payload as string, 'base64').toString(),
      );
    const until = async (payload: string) => {
      const deadline = Date.now() + 20_000;
      while (!printed().includes(payload)) {
        assert.ok(Date.now() < deadline, `timed out; stdout: ${tail.out} stderr: ${tail.err}`);
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    };
    try {
      await until('old-9');
      // Printed at a look: the next is a second away. Before it, the writer
      // cuts after old-4, below the records printed, and appends past the
      // old end.
      await writer.append(text('old-X'), { wait: 'written' });
      await until('old-X');
      await writer.truncateAfter(lsns[4]!);
      for (let i = 0; i < 10; i++) await writer.append(text(`new-${i}`), { wait: 'written' });
      await until('new-9');
    } finally {
      child.kill('SIGTERM');
      await writer.close();
    }
    assert.equal(await exited, 0);
    const expected = [
      ...['old-7', 'old-8', 'old-9'],
      'old-X',
      ...Array.from({ length: 10 }, (_, i) => `new-${i}`),
    ];
    assert.deepEqual(printed(), expected);
    assertOneLine(
      { status: 0, stdout: '', stderr: tail.err },
      new RegExp(
        `^wal: the log was truncated \\(now LSN 0 to \\d+\\); following from LSN ${lsns[5]}$`,
      ),
    );
  });
});

describe('wal given a file of a log directory, or a symbolic link', () => {
  /** The one line every command prints for `file`, a file of the log directory `dir`. */
  const refusal = (file: string, what: string) =>
    `${file}: not a log: ${what} (give the directory: it is the log)`;
  /** Every command that takes a log path, on `path`. */
  const everyCommand = (path: string) =>
    Promise.all([
      wal(['info', path]),
      wal(['info', path, '--json']),
      wal(['verify', path]),
      wal(['dump', path]),
      wal(['tail', path]),
      wal(['backup', path, fresh('copy')]),
      wal(['repair', path, '--dry-run']),
      wal(['repair', path, '--yes']),
    ]);
  /** A look and a repair on `path`. */
  const someCommands = (path: string) =>
    Promise.all([wal(['info', path, '--json']), wal(['repair', path, '--yes'])]);
  it('a segment file is refused by every command, naming its directory; nothing changes', async () => {
    // Its first record checks: alone, the segment would pass for a wal-db
    // single-file log, with a torn tail that a repair would cut.
    const dir = fresh('segment-path');
    await tornLog(dir);
    const segment = join(dir, '00000000000000000000.wal');
    const before = snapshot(dir);
    for (const result of await everyCommand(segment)) {
      assert.equal(result.status, 2, result.stdout);
      assertOneLine(result, refusal(segment, `segment file 0 of the log directory ${dir}`));
    }
    assert.deepEqual(snapshot(dir), before);
    assert.deepEqual(readdirSync(dir).sort(), ['00000000000000000000.wal', 'head', 'meta']);

    // A wal-db 1.x directory (segment files only): the same.
    unlinkSync(join(dir, 'meta'));
    unlinkSync(join(dir, 'head'));
    for (const result of await someCommands(segment)) {
      assert.equal(result.status, 2, result.stdout);
      assertOneLine(result, refusal(segment, `segment file 0 of the log directory ${dir}`));
    }
    assert.deepEqual(readdirSync(dir), ['00000000000000000000.wal']);
  });

  it('a segment file of a log a live writer holds: refused, its segment untouched', async () => {
    const dir = fresh('segment-live');
    // Preallocated zeros after the records: what a repair of the segment as
    // a single file would cut.
    const writer = await Wal.open(dir, { segmentSize: 64 * 1024 });
    try {
      for (let i = 0; i < 20; i++) await writer.append(payloadOf(i), { wait: 'durable' });
      const segment = join(dir, '00000000000000000000.wal');
      const deadline = Date.now() + 15_000;
      while (statSync(segment).size < 64 * 1024) {
        assert.ok(Date.now() < deadline, 'the writer did not preallocate its segment');
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      const before = snapshot(dir);
      for (const result of await someCommands(segment)) {
        assert.equal(result.status, 2, result.stdout);
        assertOneLine(result, refusal(segment, `segment file 0 of the log directory ${dir}`));
      }
      assert.deepEqual(snapshot(dir), before);
    } finally {
      await writer.close();
    }
    assert.deepEqual(readdirSync(dir).sort(), ['00000000000000000000.wal', 'head', 'meta']);
  });

  it('any other file inside a log directory, reached through a link too: refused', async () => {
    const dir = fresh('inside');
    await makeLog(dir, 10);
    // A copy of the segment under another name: a log file of its own, but
    // one whose metadata and lock would go into the log directory.
    const copy = join(dir, 'copy.log');
    writeFileSync(copy, readFileSync(join(dir, '00000000000000000000.wal')));
    const link = fresh('link-to-copy');
    symlinkSync(copy, link);
    const before = snapshot(dir);
    const real = realpathSync(dir);
    for (const [path, shown] of [
      [copy, dir],
      [link, real],
    ] as const) {
      for (const result of await someCommands(path)) {
        assert.equal(result.status, 2, result.stdout);
        assertOneLine(result, refusal(path, `a file inside the log directory ${shown}`));
      }
    }
    assert.deepEqual(snapshot(dir), before);
  });

  it('a link to a single-file log: its lock, metadata and backup are those of the file', async () => {
    const file = fresh('linked.log');
    const link = fresh('link.log');
    symlinkSync(file, link);
    const beside = () => readdirSync(root).filter((name) => name.startsWith(`${basename(link)}.`));
    const writer = await Wal.open(file, { layout: 'file', preallocate: 0 });
    try {
      for (let i = 0; i < 10; i++) await writer.append(payloadOf(i), { wait: 'durable' });
      const before = snapshot(file);
      const [info, repair] = await Promise.all([
        wal(['info', link, '--json']),
        wal(['repair', link, '--yes']),
      ]);
      assert.equal(info!.status, 0, info!.stderr);
      const data = JSON.parse(info!.stdout) as { format: unknown; lock: Record<string, unknown> };
      assert.equal(data.format, 1);
      assert.equal(data.lock.locked, true);
      assert.equal(data.lock.pid, process.pid);
      assert.equal(repair!.status, 2);
      assertOneLine(
        repair!,
        `${link}: the log is locked by process ${process.pid}: stop it before repairing`,
      );
      assert.deepEqual(snapshot(file), before);
    } finally {
      await writer.close();
    }
    // Closed, then torn: a repair through the link cuts the file, with the
    // backup beside it, and writes nothing beside the link.
    truncateSync(file, statSync(file).size - 2);
    const repaired = await wal(['repair', link, '--yes']);
    assert.equal(repaired.status, 0, repaired.stderr);
    assert.match(
      repaired.stdout,
      new RegExp(`${literal(realpathSync(root))}/${literal(basename(file))}\\.repair-`),
    );
    assert.ok(readdirSync(root).some((name) => name.startsWith(`${basename(file)}.repair-`)));
    assert.deepEqual(beside(), []);
    const reopened = await Wal.open(file, { layout: 'file' });
    assert.equal(reopened.recovery.records, 9);
    await reopened.close();
  });
});

describe('wal on other layouts', () => {
  it('a wal-db 1.x log (no metadata) needs --segment-size, and is not changed', async () => {
    const dir = fresh('waldb');
    const { lsns } = await makeLog(dir, 50);
    unlinkSync(join(dir, 'meta'));
    const before = snapshot(dir);
    const [refused, wrong, infoJson, infoText, verify, dump] = await Promise.all([
      wal(['info', dir]),
      wal(['verify', dir, '--segment-size', '1k']),
      wal(['info', dir, '--segment-size', '4k', '--json']),
      wal(['info', dir, '--segment-size', '4096']),
      wal(['verify', dir, '--segment-size', '4096']),
      wal(['dump', dir, '--segment-size', '4096', '--json']),
    ]);
    assert.equal(refused!.status, 2);
    assertOneLine(
      refused!,
      `${dir}: the log has no metadata (a wal-db 1.x log?): give its segment size with --segment-size`,
    );
    assertSizeUnfit(wrong, 1024);
    assert.equal(infoJson!.status, 0, infoJson!.stderr);
    const data = JSON.parse(infoJson!.stdout) as Record<string, unknown>;
    assert.equal(data.format, null);
    assert.equal(data.segmentSize, SEGMENT);
    assert.equal(data.records, 50);
    assert.match(infoText!.stdout, /wal-db 1\.x/);
    assert.equal(verify!.status, 0);
    assert.deepEqual(
      jsonLines(dump!.stdout).map((record) => record.lsn),
      lsns,
    );
    assert.deepEqual(snapshot(dir), before);
  });

  it('a wrong --segment-size on a log without metadata: a size is suggested only when the segments show it', async () => {
    const source = fresh('waldb-source');
    const { end } = await makeLog(source, 50);
    const bytes = flatBytes(source).subarray(0, end);
    assert.ok(end > 4 * 500);
    /** A metadata-less directory with 500-byte segments of the given sizes (the log's bytes, torn short). */
    const layout = (name: string, sizes: readonly number[]) => {
      const dir = fresh(name);
      mkdirSync(dir);
      sizes.forEach((size, k) => {
        writeFileSync(
          join(dir, `${String(k).padStart(20, '0')}.wal`),
          bytes.subarray(k * 500, k * 500 + size),
        );
      });
      return dir;
    };
    const full = layout('waldb-500', [500, 500, 500, 200]);
    // Segment 0 torn at 300 (or 300-byte segments: the files cannot tell).
    const torn = layout('waldb-torn', [300, 100]);
    const before = [snapshot(full), snapshot(torn)];
    const [named, right, unnamed, tornRight] = await Promise.all([
      wal(['info', full, '--segment-size', '300']),
      wal(['info', full, '--segment-size', '500', '--json']),
      wal(['info', torn, '--segment-size', '200']),
      wal(['info', torn, '--segment-size', '500', '--json']),
    ]);
    assert.equal(named!.status, 2);
    assertOneLine(named!, /does not match the segment files .*: they fit a segment size of 500$/);
    assert.equal(right!.status, 0, right!.stderr);
    assertSizeUnfit(unnamed, 200);
    assert.doesNotMatch(unnamed!.stderr, /300/);
    // Read-only, the right size opens the torn log: the records before the tear.
    assert.equal(tornRight!.status, 0, tornRight!.stderr);
    const data = JSON.parse(tornRight!.stdout) as Record<string, unknown>;
    assert.ok(typeof data.records === 'number' && data.records > 0 && data.records < 50);
    assert.deepEqual([snapshot(full), snapshot(torn)], before);
  });

  it('a wrong --segment-size that leaves the head outside the only segment file: refused, nothing changed', async () => {
    const dir = fresh('waldb-one-segment');
    const log = await Wal.open(dir, { segmentSize: SEGMENT });
    const lsns: number[] = [];
    while (log.tail < SEGMENT + 1000) lsns.push(log.append(payloadOf(lsns.length)));
    await log.sync();
    const head = lsns.find((lsn) => lsn > SEGMENT)!;
    await log.truncateBefore(head);
    await log.close();
    unlinkSync(join(dir, 'meta'));
    // Segment 1 alone: under 2048-byte segments it would lie wholly below the head.
    assert.deepEqual(
      readdirSync(dir).filter((name) => name.endsWith('.wal')),
      [`${'1'.padStart(20, '0')}.wal`],
    );
    const before = snapshot(dir);
    const [wrong, right] = await Promise.all([
      wal(['verify', dir, '--segment-size', '2048']),
      wal(['info', dir, '--segment-size', '4096', '--json']),
    ]);
    // Past the end of the only segment: the size may be right after a wal-db power loss.
    assertSizeUnfit(
      wrong,
      2048,
      `; if it is 2048, a wal-db power loss left ${'1'.padStart(20, '0')}\\.wal holding only bytes below the head \\(the repair loses none of them: whatever the power loss took from the head on is gone either way\\); then, to open the log, create segment .* zero bytes, then remove ${'1'.padStart(20, '0')}\\.wal, so that a segment file reaches the head \\(docs/FORMAT\\.md §5\\.3\\)`,
    );
    assert.equal(right!.status, 0, right!.stderr);
    const data = JSON.parse(right!.stdout) as Record<string, unknown>;
    assert.equal(data.records, lsns.length - lsns.indexOf(head));
    assert.deepEqual(snapshot(dir), before);
  });

  it('a wal-db 1.x single file (no metadata) opens as the library opens it, and is not changed', async () => {
    const file = fresh('waldb.log');
    const payloads = [0, 1, 2].map(payloadOf);
    writeFileSync(file, Buffer.concat(payloads.map(encodeFrame)));
    const before = snapshot(file);
    const [infoJson, verify, dump] = await Promise.all([
      wal(['info', file, '--json']),
      wal(['verify', file]),
      wal(['dump', file, '--json']),
    ]);
    assert.equal(infoJson!.status, 0, infoJson!.stderr);
    const data = JSON.parse(infoJson!.stdout) as Record<string, unknown>;
    assert.equal(data.layout, 'file');
    assert.equal(data.format, null);
    assert.equal(data.records, 3);
    assert.equal(data.maxRecordSize, 64 * 1024 * 1024, "wal-db's default limit");
    assert.equal(verify!.status, 0, verify!.stderr);
    assert.match(verify!.stdout, /OK: 3 record\(s\)/);
    assert.deepEqual(
      jsonLines(dump!.stdout).map((record) => Buffer.from(record.payload as string, 'base64')),
      payloads.map((payload) => Buffer.from(payload)),
    );
    assert.deepEqual(snapshot(file), before, 'no .meta and no .lock written');
    assert.deepEqual(readdirSync(root).filter((name) => name.startsWith('waldb.log')).length, 1);
  });

  it('--max-record-size: a wal-db record above 64 MiB verifies with a larger limit', async () => {
    const file = fresh('huge.log');
    const length = 64 * 1024 * 1024 + 1;
    // A frame of `length` zero bytes, its payload left sparse.
    const header = Buffer.alloc(8);
    header.writeUInt32LE(length, 4);
    header.writeUInt32LE(crc32c(Buffer.alloc(length), 0, length, crc32c(header, 4, 8)), 0);
    writeFileSync(file, header);
    truncateSync(file, 8 + length);
    const before = snapshot(file);
    const [refused, verify, info] = await Promise.all([
      wal(['verify', file]),
      wal(['verify', file, '--max-record-size', '65M']),
      wal(['info', file, '--json', '--max-record-size', '65M']),
    ]);
    assert.equal(refused!.status, 1);
    assertOneLine(refused!, /exceeds the maximum record size of 67108864 bytes/);
    assert.equal(verify!.status, 0, verify!.stderr);
    assert.match(verify!.stdout, /OK: 1 record\(s\)/);
    assert.equal(
      (JSON.parse(info!.stdout) as { maxRecordSize: number }).maxRecordSize,
      65 * 1024 * 1024,
    );
    assert.deepEqual(snapshot(file), before);
  });

  it('a user file or directory: exit 2 naming what was found, and not changed', async () => {
    const notes = fresh('notes.txt');
    writeFileSync(notes, 'Remember: milk, eggs and bread.\n');
    const photos = fresh('photos');
    mkdirSync(photos);
    for (const name of ['photo.jpg', 'a.jpg', 'b.jpg', 'c.jpg']) {
      writeFileSync(join(photos, name), name);
    }
    const before = [snapshot(notes), snapshot(photos)];
    const [file, dir, repair] = await Promise.all([
      wal(['verify', notes]),
      wal(['dump', photos]),
      wal(['repair', photos, '--yes']),
    ]);
    assert.equal(file!.status, 2);
    assertOneLine(
      file!,
      /not a log: a 32-byte file without log metadata whose first frame does not check$/,
    );
    for (const result of [dir, repair]) {
      assert.equal(result!.status, 2);
      assertOneLine(
        result!,
        /not a log: a directory holding a\.jpg \(and 3 more entries not part of a log\)$/,
      );
    }
    assert.deepEqual([snapshot(notes), snapshot(photos)], before);
  });

  it('--segment-size that contradicts the metadata: exit 2', async () => {
    const dir = fresh('sized');
    await makeLog(dir, 3);
    const result = await wal(['info', dir, '--segment-size', '8k']);
    assert.equal(result.status, 2);
    assertOneLine(
      result,
      `${dir}: --segment-size 8192 does not match the log's segment size (omit it: the log records its own)`,
    );
  });

  it('a single-file log', async () => {
    const file = fresh('single.log');
    const name = file.slice(root.length + 1);
    const log = await Wal.open(file, { layout: 'file' });
    const lsns: number[] = [];
    for (let i = 0; i < 30; i++) lsns.push(log.append(payloadOf(i)));
    await log.close();
    const before = snapshot(file);
    const [infoJson, infoText, verify, dump, sized] = await Promise.all([
      wal(['info', file, '--json']),
      wal(['info', file]),
      wal(['verify', file]),
      wal(['dump', file, '--json']),
      wal(['info', file, '--segment-size', '4096']),
    ]);
    assert.equal(infoJson!.status, 0, infoJson!.stderr);
    const data = JSON.parse(infoJson!.stdout) as Record<string, unknown>;
    assert.equal(data.layout, 'file');
    assert.equal(data.segmentSize, null);
    assert.equal(data.segments, null);
    assert.equal(data.records, 30);
    assert.match(infoText!.stdout, /single file/);
    assert.equal(verify!.status, 0);
    assert.equal(jsonLines(dump!.stdout).length, 30);
    assert.equal(sized!.status, 2);
    assertOneLine(sized!, `${file}: --segment-size applies to segmented logs (directories) only`);
    assert.deepEqual(snapshot(file), before);

    // Damage below the hint, then repair.
    const bytes = readFileSync(file);
    bytes[lsns[10]! + 9] = bytes[lsns[10]! + 9]! ^ 1;
    writeFileSync(file, bytes);
    const [json, text] = await Promise.all([
      wal(['verify', file, '--json']),
      wal(['verify', file]),
    ]);
    assert.equal(json!.status, 1);
    const report = JSON.parse(json!.stdout) as VerifyJson;
    assert.equal(report.damage!.file, name);
    assert.equal(report.damage!.fileOffset, lsns[10]);
    assert.match(text!.stdout, new RegExp(`${name.replace('.', '\\.')}, byte ${lsns[10]}`));
    const repair = await wal(['repair', file, '--yes']);
    assert.equal(repair.status, 0, repair.stderr);
    const backup = readdirSync(root).find((entry) => entry.startsWith(`${name}.repair-`));
    assert.deepEqual(readFileSync(join(root, backup!)), bytes.subarray(lsns[10]!));
    const reopened = await Wal.open(file, { layout: 'file' });
    assert.equal(reopened.tail, lsns[10]);
    await reopened.close();
    const store = await FileStore.open(file, { readOnly: true });
    assert.equal(store.length, lsns[10]);
    await store.close();
  });

  it('an intact record above the maximum: exit 1; a later format: exit 4; one line each', async () => {
    const big = fresh('big');
    const { lsns } = await makeLog(big, 30);
    const unknown = fresh('format');
    await makeLog(unknown, 3);
    for (const [dir, fields] of [
      [big, { 'wal.maxRecordSize': 12 }],
      [unknown, { 'wal.format': 2 }],
    ] as const) {
      const store = await SegmentedStore.open(dir);
      await store.updateMeta(fields);
      await store.close();
    }
    const [json, text, other] = await Promise.all([
      wal(['verify', big, '--json']),
      wal(['verify', big]),
      wal(['verify', unknown]),
    ]);
    assert.equal(json!.status, 1);
    // Record 4 is the first above 12 bytes ('record 4 xxxx').
    assertOneLine(
      json!,
      `${big}: the record at offset ${lsns[4]} has 13 bytes, which exceeds the maximum record size of 12 bytes`,
    );
    const report = JSON.parse(json!.stdout) as VerifyJson;
    assert.equal(report.status, 'damaged');
    assert.equal(typeof report.damage!.lsn, 'number');
    assert.equal(text!.status, 1);
    assert.match(text!.stdout, /DAMAGED/);
    assert.equal(other!.status, 4, 'a later format is not damage');
    assertOneLine(other!, /format version 2, which this release cannot read/);
  });

  /** A log of 5 records whose metadata file `damage` changes in place. */
  async function damagedMeta(name: string, damage: (meta: Buffer) => void): Promise<string> {
    const dir = fresh(name);
    await makeLog(dir, 5);
    const meta = readFileSync(join(dir, 'meta'));
    damage(meta);
    writeFileSync(join(dir, 'meta'), meta);
    return dir;
  }
  const flipByte = (meta: Buffer) => {
    meta[meta.length - 2] = meta[meta.length - 2]! ^ 0xff;
  };

  it('damaged metadata: exit 1 with one line', async () => {
    const dir = await damagedMeta('meta', flipByte);
    const results = await Promise.all(
      ['info', 'verify', 'dump'].map((command) => wal([command, dir])),
    );
    for (const result of results) {
      assert.equal(result.status, 1);
      assertOneLine(
        result,
        `${dir}: the log is damaged: metadata file ${join(dir, 'meta')} is damaged: checksum mismatch`,
      );
    }
    assert.ok(existsSync(join(dir, 'meta')));
  });

  it('damaged metadata: verify reports it as damage without a place, --json too', async () => {
    const flipped = await damagedMeta('meta-flipped', flipByte);
    const hostile = await damagedMeta('meta-hostile', (meta) => {
      meta.writeUInt32LE(0xffffffff, 8); // the body length
    });
    for (const dir of [flipped, hostile]) {
      const before = snapshot(dir);
      const [json, text] = await Promise.all([
        wal(['verify', dir, '--json']),
        wal(['verify', dir]),
      ]);
      assert.equal(json!.status, 1, json!.stderr);
      assertOneLine(json!, new RegExp(`^wal: ${literal(dir)}: the log is damaged: metadata file `));
      const report = JSON.parse(json!.stdout) as Record<string, unknown>;
      const message = (report.damage as { message: string }).message;
      assert.deepEqual(report, {
        path: dir,
        layout: 'segmented',
        status: 'damaged',
        damage: { lsn: null, kind: 'other', message },
      });
      assert.match(
        message,
        new RegExp(`^the log is damaged: metadata file ${literal(join(dir, 'meta'))} is damaged: `),
      );
      assert.equal(text!.status, 1);
      assert.equal(text!.stdout, `${dir}: DAMAGED: ${message}\n`);
      assert.deepEqual(snapshot(dir), before);
    }
  });
});

describe('wal backup', () => {
  /** Every record of the log at `path` (read-only), as [lsn, payload] pairs. */
  async function recordsAt(path: string, head?: number): Promise<Array<[number, string]>> {
    const log = await Wal.open(path, { readOnly: true });
    try {
      if (head !== undefined) assert.equal(log.head, head);
      const out: Array<[number, string]> = [];
      for await (const { lsn, payload } of log.iterate()) {
        out.push([lsn, Buffer.from(payload).toString('hex')]);
      }
      return out;
    } finally {
      await log.close();
    }
  }

  it('copies a closed log whole, with the same head and LSNs; --mode 600 makes it private', async () => {
    const dir = fresh('source');
    await makeLog(dir, 40);
    const log = await Wal.open(dir);
    const lsns = [];
    for await (const { lsn } of log.iterate()) lsns.push(lsn);
    await log.truncateBefore(lsns[10]!);
    await log.close();
    const before = snapshot(dir);
    const copy = fresh('copy');
    const result = await wal(['backup', dir, copy, '--mode', '600']);
    assert.equal(result.status, 0, result.stderr);
    assert.match(
      result.stdout,
      new RegExp(`30 record\\(s\\), LSN ${lsns[10]} to \\d+, backed up into`),
    );
    assert.doesNotMatch(result.stdout, /not copied/);
    assert.deepEqual(await recordsAt(copy, lsns[10]), await recordsAt(dir));
    assert.deepEqual(snapshot(dir), before, 'the source is only read');
    assert.equal(statSync(copy).mode & 0o777, 0o700 & ~umask);
    for (const name of readdirSync(copy)) {
      assert.equal(statSync(join(copy, name)).mode & 0o777, 0o600 & ~umask, name);
    }
  });

  it('beside a live writer: copies up to its durable hint and says what it left', async () => {
    const dir = fresh('live-source');
    const { lsns } = await makeLog(dir, 30);
    const writer = await Wal.open(dir);
    try {
      await writer.store.updateMeta({ 'wal.durableHint': lsns[20]! }); // as between rolls
      await writer.append(payloadOf(30), { wait: 'durable' });
      const copy = fresh('live-copy');
      const [text, json] = await Promise.all([
        wal(['backup', dir, copy]),
        wal(['backup', dir, `${copy}-json`, '--json']),
      ]);
      assert.equal(text!.status, 0, text!.stderr);
      assert.match(text!.stdout, /20 record\(s\), LSN 0 to \d+/);
      assert.match(
        text!.stdout,
        /byte\(s\) after LSN \d+ were not copied: a live writer holds the log/,
      );
      const report = JSON.parse(json!.stdout) as Record<string, number>;
      assert.equal(report.end, lsns[20]);
      assert.equal(report.records, 20);
      assert.ok(report.notCopied! > 0);
      assert.deepEqual(await recordsAt(copy, 0), (await recordsAt(dir)).slice(0, 20));
    } finally {
      await writer.close();
    }
  });

  it('--up-to copies the records below an LSN', async () => {
    const dir = fresh('upto-source');
    const { lsns } = await makeLog(dir, 20);
    const copy = fresh('upto-copy');
    const result = await wal(['backup', dir, copy, '--up-to', String(lsns[5])]);
    assert.equal(result.status, 0, result.stderr);
    assert.deepEqual(await recordsAt(copy), (await recordsAt(dir)).slice(0, 5));
    assert.match(result.stdout, /were not copied: --up-to stops the copy there\./);
  });

  it('names the path that failed and the options as typed, touching nothing', async () => {
    const dir = fresh('names-source');
    const { end } = await makeLog(dir, 5);
    const before = snapshot(dir);
    const missing = join(fresh('no-parent'), 'copy');
    const [parent, upTo, maxSize] = await Promise.all([
      wal(['backup', dir, missing]),
      wal(['backup', dir, fresh('x'), '--up-to', '99999']),
      wal(['verify', dir, '--max-record-size', '1']),
    ]);
    assert.equal(parent!.status, 2);
    assertOneLine(
      parent!,
      new RegExp(`^wal: ${literal(dir)}: .*${literal(missing)}.*: no such file or directory$`),
    );
    assert.equal(upTo!.status, 2);
    assertOneLine(
      upTo!,
      `${dir}: --up-to 99999 is past the log's durable hint (${end}): a backup copies only records known to be durable`,
    );
    assert.equal(maxSize!.status, 2);
    assertOneLine(
      maxSize!,
      new RegExp(`^wal: ${literal(dir)}: --max-record-size 1 is out of range: it must be >= `),
    );
    for (const result of [parent, upTo, maxSize]) assert.doesNotMatch(result!.stderr, /options\./);
    assert.deepEqual(snapshot(dir), before);
  });

  it('refuses a log none of whose records is known to be durable, creating nothing', async () => {
    const waldb = fresh('waldb-source');
    await makeLog(waldb, 10);
    unlinkSync(join(waldb, 'meta'));
    const crashed = fresh('crashed-source');
    await makeLog(crashed, 10);
    await setHint(crashed, 0);
    const empty = fresh('empty-source');
    await makeLog(empty, 0);
    const copies = [fresh('waldb-copy'), fresh('crashed-copy'), fresh('empty-copy')];
    const [fromWalDb, fromCrashed, fromEmpty] = await Promise.all([
      wal(['backup', waldb, copies[0]!, '--segment-size', '4096']),
      wal(['backup', crashed, copies[1]!]),
      wal(['backup', empty, copies[2]!]),
    ]);
    assert.equal(fromWalDb!.status, 2);
    assertOneLine(
      fromWalDb!,
      `${waldb}: nothing to back up: a wal-db 1.x log (no metadata) records no durable hint, so none of its records is known to be durable; a writable open with @wal records one; nothing was created`,
    );
    assert.equal(fromCrashed!.status, 2);
    assertOneLine(
      fromCrashed!,
      `${crashed}: nothing to back up: none of its records is known to be durable (the log was not closed cleanly: open it once to recover it); nothing was created`,
    );
    assert.ok(!existsSync(copies[0]!) && !existsSync(copies[1]!));
    assert.equal(fromEmpty!.status, 0, fromEmpty!.stderr);
    assert.match(fromEmpty!.stdout, /0 record\(s\)/);
    assert.ok(existsSync(copies[2]!));
  });

  it('refuses an existing destination, a bad mode and a bad LSN with one line, touching nothing', async () => {
    const dir = fresh('refuse-source');
    const { lsns } = await makeLog(dir, 5);
    const taken = fresh('taken');
    mkdirSync(taken);
    writeFileSync(join(taken, 'photo.jpg'), 'jpeg');
    const before = snapshot(taken);
    const [exists, low, syntax, boundary] = await Promise.all([
      wal(['backup', dir, taken]),
      wal(['backup', dir, fresh('x'), '--mode', '400']),
      wal(['backup', dir, fresh('x'), '--mode', 'rw']),
      wal(['backup', dir, fresh('x'), '--up-to', String(lsns[2]! + 1)]),
    ]);
    assert.equal(exists!.status, 2);
    assertOneLine(
      exists!,
      `${dir}: cannot back up into ${taken}: it exists (a backup only creates a new directory); nothing was changed`,
    );
    assert.deepEqual(snapshot(taken), before);
    assert.equal(low!.status, 2);
    assertOneLine(low!, /--mode.*out of range/);
    assert.equal(syntax!.status, 2);
    assertOneLine(syntax!, /octal mode/);
    assert.equal(boundary!.status, 2);
    assertOneLine(boundary!, `${dir}: ${lsns[2]! + 1} is not a record boundary of the log`);
    assert.deepEqual(
      readdirSync(root).filter((name) => name.startsWith('x-') || name.includes('.backup-')),
      [],
    );
  });
});
