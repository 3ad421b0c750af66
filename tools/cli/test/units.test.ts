// In-process checks of the parts a child process cannot reach: the progress
// bar (drawn only on a terminal) and the lock-file reader's verdicts.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { Wal } from '@wal/core';
import {
  BoundaryError,
  CorruptionError,
  IoError,
  LockedError,
  NoSpaceError,
  NotALogError,
  RecordTooLargeError,
} from '@wal/errors';
import { MemoryStore } from '@wal/store';
import { MAX_INTERVAL, parseInterval } from '../src/args.js';
import { run } from '../src/cli.js';
import { CliError, describeError, EXIT } from '../src/errors.js';
import { describeLock, lockStatus } from '../src/lock.js';
import { openLog } from '../src/open.js';
import { formatRecord, Output } from '../src/output.js';
import { PROGRESS_THRESHOLD, Progress } from '../src/progress.js';
import { runOnTerminal, tornLog } from './logs.js';

describe('progress bar', () => {
  const stream = (isTTY: boolean) => {
    const written: string[] = [];
    return {
      written,
      isTTY,
      columns: 80,
      write(text: string) {
        written.push(text);
        return true;
      },
    };
  };

  it('draws on a terminal, at most every 100 ms, and erases itself', () => {
    const tty = stream(true);
    let now = 0;
    const bar = new Progress(tty, 0, PROGRESS_THRESHOLD * 2, 'scanning', () => now);
    assert.ok(bar.enabled);
    bar.update(0);
    bar.update(PROGRESS_THRESHOLD); // throttled
    now = 150;
    bar.update(PROGRESS_THRESHOLD);
    assert.equal(tty.written.length, 2);
    assert.match(tty.written[1]!, /^\rscanning \[#+\.+\] {2}50%$/);
    bar.done();
    assert.equal(tty.written[2], '\r\x1b[2K');
    bar.done();
    assert.equal(tty.written.length, 3);
    assert.match(bar.render(PROGRESS_THRESHOLD * 3), /100%$/);
    assert.match(new Progress(tty, 5, 5, 'x').render(5), /100%$/);
  });

  it('stays silent off a terminal and for small scans', () => {
    const pipe = stream(false);
    const bar = new Progress(pipe, 0, PROGRESS_THRESHOLD * 2, 'scanning');
    bar.update(1);
    bar.done();
    const small = new Progress(stream(true), 0, 1000, 'scanning');
    assert.equal(small.enabled, false);
    small.update(10);
    assert.deepEqual(pipe.written, []);
  });
});

describe('lock status', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'wal-cli-lock-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const write = (name: string, value: unknown) => {
    const file = join(dir, name);
    writeFileSync(file, typeof value === 'string' ? value : JSON.stringify(value));
    return file;
  };

  it('no lock file: not locked', async () => {
    const status = await lockStatus(join(dir, 'absent'));
    assert.equal(status.locked, false);
    assert.equal(describeLock(status), 'not locked');
  });

  it('a live holder on this host: locked', async () => {
    const status = await lockStatus(
      write('live', { pid: process.pid, host: hostname(), token: 't' }),
    );
    assert.equal(status.locked, true);
    assert.equal(status.holder, 'alive');
    assert.match(describeLock(status), /running/);
  });

  it('a dead holder: a stale lock, not locked', async () => {
    const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], {
      encoding: 'utf8',
    });
    const pid = Number(child.stdout);
    const status = await lockStatus(write('dead', { pid, host: hostname(), token: 't' }));
    assert.equal(status.locked, false);
    assert.equal(status.holder, 'dead');
    assert.match(describeLock(status), /stale/);
  });

  it('a reused pid (another start time): stale', async () => {
    const status = await lockStatus(
      write('reused', { pid: process.pid, host: hostname(), token: 't', start: '1' }),
    );
    assert.equal(status.holder, process.platform === 'linux' ? 'dead' : 'alive');
  });

  it('another host: locked, cannot check', async () => {
    const status = await lockStatus(
      write('remote', { pid: 1, host: `${hostname()}-elsewhere`, token: 't' }),
    );
    assert.equal(status.locked, true);
    assert.equal(status.holder, 'unknown');
    assert.match(describeLock(status), /cannot check/);
  });

  it('an emptied or cut-short record: stale', async () => {
    for (const text of ['', '\0\0', '{"pid":4242,"tok', '{"pid":4242,"token":"ab\0\0']) {
      const status = await lockStatus(write('empty', text));
      assert.equal(status.locked, false);
      assert.equal(status.holder, 'unreadable');
      assert.match(describeLock(status), /empty or cut-short lock file, left by a power loss/);
    }
  });

  it("a file that is not a log's lock file: not locked, but refused by a writer", async () => {
    for (const text of ['{not json', 'null', '{"pid":-1,"host":"h"}', '4242\n']) {
      const status = await lockStatus(write('garbage', text));
      assert.equal(status.locked, false);
      assert.equal(status.holder, 'foreign');
      assert.match(describeLock(status), /not a log's: a writer refuses to open/);
    }
  });

  it('a lock path that cannot be read: rejects', async () => {
    await assert.rejects(lockStatus(join(dir, 'live', 'below-a-file')));
  });
});

describe('option values', () => {
  it('an interval is 1 to 2^31 − 1 ms, the delays a Node.js timer keeps', () => {
    assert.equal(parseInterval('1'), 1);
    assert.equal(parseInterval(String(MAX_INTERVAL)), 2 ** 31 - 1);
    for (const value of ['0', String(MAX_INTERVAL + 1), '1.5', '-1', 'soon', '']) {
      assert.throws(() => parseInterval(value), /expected milliseconds from 1 to 2147483647/);
    }
  });
});

describe('error descriptions', () => {
  it('maps each kind of failure to a message and an exit code', () => {
    const cases: Array<[unknown, RegExp, number]> = [
      [new CliError('plain', EXIT.declined), /^plain$/, EXIT.declined],
      [new CorruptionError('bad frame', { offset: 3 }), /^p: the log is damaged: bad frame$/, 1],
      [new RecordTooLargeError(20, 10, { offset: 0 }), /exceeds the maximum/, 1],
      [new LockedError('p/lock'), /locked by another process/, 2],
      [
        new NotALogError('p', 'a directory holding x.jpg'),
        /^p: not a log: a directory holding x\.jpg$/,
        2,
      ],
      [new LockedError('p/lock', { pid: 4242, alive: true }), /locked by process 4242 \(stop/, 2],
      [
        new IoError('cannot open p/meta', { errno: 'ENOENT' }),
        /^p: cannot open p\/meta: no such file or directory$/,
        2,
      ],
      [
        new IoError("ENOENT: no such file or directory, open 'p/x'", { errno: 'ENOENT' }),
        /^p: ENOENT: no such file or directory, open 'p\/x'$/,
        2,
      ],
      [
        new NoSpaceError('no space left to write p/x', { errno: 'ENOSPC' }),
        /^p: no space left to write p\/x$/,
        2,
      ],
      [new IoError('read failed', { errno: 'EIO' }), /^p: read failed$/, 2],
      [new IoError('read failed'), /^p: read failed$/, 2],
      [
        new NoSpaceError('write failed', { errno: 'ENOSPC' }),
        /^p: write failed: no space left on the device$/,
        2,
      ],
      [new BoundaryError('not a boundary'), /^p: not a boundary$/, 2],
      [Object.assign(new RangeError('too big'), { code: 'ERR_OUT_OF_RANGE' }), /^p: too big$/, 2],
      [
        Object.assign(
          new RangeError(
            'The value of "options.maxRecordSize" is out of range. It must be >= 16. Received 1',
          ),
          { code: 'ERR_OUT_OF_RANGE' },
        ),
        /^p: --max-record-size 1 is out of range: it must be >= 16$/,
        2,
      ],
      [
        Object.assign(new TypeError('The "options.upTo" argument must be a number'), {
          code: 'ERR_INVALID_ARG_TYPE',
        }),
        /^p: The --up-to argument must be a number$/,
        2,
      ],
      [
        Object.assign(new Error("ENOENT: no such file or directory, open 'p/x'"), {
          code: 'ENOENT',
          path: 'p/x',
        }),
        /^p: no such file or directory \(p\/x\)$/,
        2,
      ],
      [Object.assign(new Error('odd'), { code: 'EWEIRD' }), /^p: odd$/, 2],
    ];
    for (const [error, pattern, exitCode] of cases) {
      const described = describeError(error, 'p');
      assert.match(described.message, pattern);
      assert.equal(described.exitCode, exitCode);
    }
  });

  it('maps errno and unknown failures to one line', () => {
    const eacces = Object.assign(new Error('EACCES: permission denied, open x'), {
      code: 'EACCES',
    });
    assert.deepEqual(describeError(eacces, 'x'), {
      message: 'x: permission denied',
      exitCode: EXIT.usage,
    });
    assert.deepEqual(describeError(new Error('boom')), {
      message: 'internal error: boom',
      exitCode: EXIT.usage,
    });
    assert.equal(describeError('text').message, 'internal error: text');
  });
});

describe('output', () => {
  it('escapes utf8 payloads to one line', () => {
    const payload = new TextEncoder().encode('a\\b\nc\rd\te\u0001f\u007f');
    assert.equal(
      formatRecord({ lsn: 8, payload }, 'utf8'),
      `8\t${payload.length}\ta\\\\b\\nc\\rd\\te\\x01f\\x7f`,
    );
  });

  it('waits for a full stream to drain, and goes quiet on a closed pipe', async () => {
    let calls = 0;
    const slow = new Writable({
      highWaterMark: 1,
      write(_chunk, _encoding, callback) {
        calls++;
        setTimeout(callback, 5);
      },
    });
    const output = new Output(slow);
    await output.line('one');
    await output.line('two');
    assert.equal(calls, 2);
    const broken = new PassThrough();
    const closed = new Output(broken);
    broken.emit('error', Object.assign(new Error('EPIPE'), { code: 'EPIPE' }));
    assert.equal(closed.closed, true);
    await closed.line('ignored');
    await closed.flush();
  });

  /** A stream whose writes fail with ENOSPC, as `/dev/full` does; `after` writes succeed first. */
  const full = (after = 0, highWaterMark = 16384) => {
    let writes = 0;
    return new Writable({
      highWaterMark,
      write(_chunk, _encoding, callback) {
        setImmediate(() =>
          callback(
            writes++ < after
              ? null
              : Object.assign(new Error('ENOSPC: no space left on device, write'), {
                  code: 'ENOSPC',
                }),
          ),
        );
      },
    });
  };
  const noSpace = {
    name: 'CliError',
    message: 'cannot write the output: no space left on the device',
  };

  it('a stream that fails: the pending write, the next one and flush reject with one line', async () => {
    const pending = new Output(full(0, 1));
    await assert.rejects(pending.line('one'), noSpace); // waits for a drain that never comes
    await assert.rejects(pending.line('two'), noSpace);
    await assert.rejects(pending.flush(), noSpace);
    const later = new Output(full(1));
    await later.line('one'); // accepted, then failed while buffered
    await assert.rejects(later.flush(), noSpace);
    const fine = new Output(full(2)); // the line, and the empty write of flush
    await fine.line('one');
    await fine.flush();
  });

  it('wal dump and wal info into a full device: exit 2 with one line, no stack', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wal-cli-full-'));
    try {
      const path = join(dir, 'log');
      const wal = await Wal.open(path, { segmentSize: 4096 });
      for (let i = 0; i < 200; i++) wal.append(new TextEncoder().encode(`record ${i}`));
      await wal.close();
      for (const [args, out] of [
        [['dump', path], full(3, 64)], // fails with writes pending
        [['info', path], full()], // every line buffered, fails after the command ends
      ] as const) {
        const err = new PassThrough();
        let text = '';
        err.on('data', (chunk: Buffer) => {
          text += chunk.toString();
        });
        const code = await run(['node', 'wal', ...args], {
          out: new Output(out),
          err,
          stdin: new PassThrough(),
        });
        assert.equal(code, EXIT.usage, text);
        assert.equal(text, 'wal: cannot write the output: no space left on the device\n');
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('repair, asking on a terminal (in process)', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'wal-cli-repair-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  async function tornLogIn(name: string): Promise<string> {
    const path = join(dir, name);
    await tornLog(path);
    return path;
  }

  const repairWith = (path: string, answer: string) => runOnTerminal(['repair', path], answer);

  it('does nothing when the answer is no (exit 3)', async () => {
    const path = await tornLogIn('no');
    const result = await repairWith(path, 'n');
    assert.equal(result.code, EXIT.declined);
    assert.match(result.out, /Nothing done/);
    const wal = await Wal.open(path, { readOnly: true });
    assert.ok(wal.recovery.tear !== undefined);
    await wal.close();
  });

  it('repairs when the answer is yes', async () => {
    const path = await tornLogIn('yes');
    const result = await repairWith(path, 'y');
    assert.equal(result.code, EXIT.ok, result.err);
    assert.match(result.out, /Done: the log opens clean: 9 record/);
  });
});

describe('the store view under a read-only open', () => {
  it('reports every byte the recovery scan reads, whichever read it uses', async () => {
    // The progress bar of info and verify counts these bytes; the scan reads
    // with readInto when the store has it, and with read otherwise.
    for (const withReadInto of [true, false]) {
      const store = new MemoryStore();
      const wal = await Wal.open(store);
      for (let i = 0; i < 3000; i++) wal.append(new Uint8Array(1000).fill(i & 0xff));
      await wal.sync();
      const length = store.length;
      // A MemoryStore the log closed cannot be reopened: copy its bytes.
      const copy = new MemoryStore();
      await copy.write(0, await store.read(0, length));
      await wal.close();
      const target = withReadInto
        ? copy
        : new Proxy(copy, {
            get: (t, key) => {
              if (key === 'readInto') return undefined;
              const value: unknown = Reflect.get(t, key, t);
              return typeof value === 'function' ? value.bind(t) : value;
            },
          });
      let seen = 0;
      const log = await openLog(
        target,
        { policy: 'strict' },
        { onRead: (_, count) => (seen += count) },
      );
      assert.equal(log.recovery.records, 3000);
      await log.close();
      assert.ok(seen >= length, `${seen} of ${length} bytes reported (readInto: ${withReadInto})`);
    }
  });
});

describe('wal backup on a terminal', () => {
  it('draws a progress bar on stderr for a large log, then erases it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wal-cli-backup-'));
    try {
      const path = join(dir, 'log');
      const wal = await Wal.open(path);
      const record = new Uint8Array(64 * 1024).fill(7);
      for (let i = 0; i < (PROGRESS_THRESHOLD * 1.5) / record.length; i++) {
        if (!wal.writable) await wal.drained();
        wal.append(record);
      }
      await wal.close();
      const stdout = new PassThrough();
      const stderr = Object.assign(new PassThrough(), { isTTY: true, columns: 80 });
      let err = '';
      stderr.on('data', (chunk: Buffer) => {
        err += chunk.toString();
      });
      const code = await run(['node', 'wal', 'backup', path, join(dir, 'copy')], {
        out: new Output(stdout),
        err: stderr,
      });
      assert.equal(code, EXIT.ok, err);
      assert.match(err, /\rbacking up \[#*\.*\] +\d+%/);
      assert.ok(err.endsWith('\r\x1b[2K'), 'the bar is erased');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
