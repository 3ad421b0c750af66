/**
 * Locking at the log level, in a real temporary directory: one writable
 * `Wal` per log. A second `Wal.open` of the same directory, from this process
 * or from another one, is refused with `WAL_LOCKED` while the lock is held,
 * and the holder keeps working; a read-only open needs no lock; a holder
 * SIGKILLed with the log open leaves a lock file that the next opener takes
 * over, and the log recovers with every record the holder acknowledged.
 *
 * The other processes are `node --input-type=module -e <script>` running
 * @wal/core from this package's compiled dist, found from this file's place.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { link, mkdir, mkdtemp, readdir, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LockedError } from '@wal/errors';
import { Wal } from '../../src/index.js';

/** The compiled entry point of @wal/core (this file is dist/test/crash/lock.test.js). */
const CORE = new URL('../../src/index.js', import.meta.url).href;

/** Tries to open the log at argv[2] and prints `OPENED <tail>` or the error's code. */
const TRY_OPEN = `
const { Wal } = await import(process.argv[1]);
try {
  const wal = await Wal.open(process.argv[2]);
  process.stdout.write('OPENED ' + wal.tail + '\\n');
  await wal.close();
} catch (error) {
  process.stdout.write(String(error?.code ?? error) + '\\n');
}
`;

/** Like TRY_OPEN, but prints the refusal's holder fields and message (as JSON). */
const TRY_OPEN_HOLDER = `
const { Wal } = await import(process.argv[1]);
try {
  await (await Wal.open(process.argv[2])).close();
  process.stdout.write('OPENED\\n');
} catch (error) {
  const { code, pid, alive, message } = error;
  process.stdout.write(JSON.stringify({ code, pid, alive, message }) + '\\n');
}
`;

/**
 * Opens the log at argv[2], appends argv[3] records durably, prints
 * `READY <lsn>…` and then holds the log open until killed.
 */
const HOLD_OPEN = `
const { Wal } = await import(process.argv[1]);
const wal = await Wal.open(process.argv[2]);
const lsns = [];
for (let i = 0; i < Number(process.argv[3]); i++) {
  lsns.push(await wal.append(new Uint8Array(100 + i).fill(i), { wait: 'durable' }));
}
wal.append(new Uint8Array(50).fill(255));
process.stdout.write('READY ' + lsns.join(' ') + '\\n');
setInterval(() => {}, 1000);
setTimeout(() => process.exit(0), 30000);
`;

function child(script: string, args: readonly string[]): ChildProcess {
  return spawn(process.execPath, ['--input-type=module', '-e', script, CORE, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** Runs a child to its end; resolves with its output. */
function runChild(script: string, args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const proc = child(script, args);
    let out = '';
    let err = '';
    proc.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
    });
    proc.stderr!.on('data', (chunk: Buffer) => {
      err += chunk.toString();
    });
    proc.on('error', reject);
    proc.on('close', (code) => {
      if (code === 0) resolve(out.trim());
      else reject(new Error(`child exited with ${code}: ${err}`));
    });
  });
}

function payload(i: number): Uint8Array {
  return new Uint8Array(100 + i).fill(i);
}

describe('crash: the lock of a log (real directory, other processes)', () => {
  let dir = '';
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'wal-lock-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('refuses a second Wal.open in this process with WAL_LOCKED; the first keeps working', async () => {
    const wal = await Wal.open(dir);
    try {
      const first = await wal.append(payload(1), { wait: 'durable' });
      await assert.rejects(Wal.open(dir), (error: unknown) => {
        // The holder is named: this very process.
        const { code, pid, alive, message } = error as LockedError;
        assert.deepEqual([code, pid, alive], ['WAL_LOCKED', process.pid, true]);
        assert.match(message, new RegExp(`locked by this process \\(pid ${process.pid}\\)`));
        return true;
      });
      // The refused open changed nothing for the holder.
      assert.equal(wal.failure, undefined);
      const second = await wal.append(payload(2), { wait: 'durable' });
      assert.deepEqual(await wal.read(first), payload(1));
      assert.deepEqual(await wal.read(second), payload(2));
      // Refused again after more appends; a read-only open needs no lock.
      await assert.rejects(Wal.open(dir), { code: 'WAL_LOCKED' });
      const reader = await Wal.open(dir, { readOnly: true });
      try {
        assert.equal(reader.tail, wal.tail);
        assert.deepEqual(await reader.read(second), payload(2));
      } finally {
        await reader.close();
      }
      await wal.append(payload(3), { wait: 'durable' });
    } finally {
      await wal.close();
    }
    // Released by close(): the next open takes it.
    const again = await Wal.open(dir);
    assert.equal(again.recovery.records, 3);
    await again.close();
  });

  it('a single-file log reached through a symbolic or a hard link gets no second writer', async () => {
    const path = join(dir, 'f.log');
    const wal = await Wal.open(path, { layout: 'file' });
    try {
      const first = await wal.append(payload(1), { wait: 'durable' });
      await symlink(path, join(dir, 'alias.log'));
      const entries = (await readdir(dir)).sort();
      // Through the symlink: the file's own lock, held here.
      await assert.rejects(
        Wal.open(join(dir, 'alias.log'), { layout: 'file' }),
        (error: unknown) => {
          const { code, path: locked, pid } = error as LockedError;
          assert.deepEqual([code, locked, pid], ['WAL_LOCKED', `${path}.lock`, process.pid]);
          return true;
        },
      );
      assert.deepEqual((await readdir(dir)).sort(), entries, 'nothing created beside the link');
      // Through a hard link: a lock named after one name cannot guard the other.
      await link(path, join(dir, 'hard.log'));
      entries.push('hard.log');
      entries.sort();
      await assert.rejects(Wal.open(join(dir, 'hard.log'), { layout: 'file' }), {
        code: 'WAL_LOCKED',
        message: /hard\.log cannot be locked: the file has 2 names \(hard links\)/,
      });
      assert.deepEqual((await readdir(dir)).sort(), entries, 'nothing created beside it');
      // A read-only open through the symlink reads the log.
      const reader = await Wal.open(join(dir, 'alias.log'), { layout: 'file', readOnly: true });
      try {
        assert.deepEqual(await reader.read(first), payload(1));
      } finally {
        await reader.close();
      }
      await wal.append(payload(2), { wait: 'durable' });
    } finally {
      await wal.close();
    }
    // Every acknowledged record is there, in order (the file down to one name again).
    await rm(join(dir, 'hard.log'));
    const again = await Wal.open(path, { layout: 'file' });
    try {
      const found: Uint8Array[] = [];
      for await (const record of again.iterate()) found.push(record.payload);
      assert.deepEqual(found, [payload(1), payload(2)]);
    } finally {
      await again.close();
    }
  });

  it('a copy of a log directory made with hard links (cp -al) writes into neither log', async () => {
    const log = join(dir, 'log');
    const copy = join(dir, 'copy');
    const wal = await Wal.open(log, { segmentSize: 4096 });
    const lsns: number[] = [];
    for (let i = 1; i <= 60; i++) lsns.push(await wal.append(payload(i))); // 2 segments and more
    await wal.sync();
    await wal.close();
    // What `cp -al log copy` makes: every file of the copy is a name of the original's.
    await mkdir(copy);
    for (const name of await readdir(log)) await link(join(log, name), join(copy, name));
    const files = async () => [(await readdir(log)).sort(), (await readdir(copy)).sort()];
    const before = await files();
    for (const path of [copy, log]) {
      await assert.rejects(Wal.open(path), (error: unknown) => {
        const { code, path: locked, pid, message } = error as LockedError;
        assert.deepEqual([code, locked, pid], ['WAL_LOCKED', path, undefined]);
        assert.match(
          message,
          /cannot be locked: its segment file 00000000000000000000\.wal has 2 names \(hard links\)/,
        );
        return true;
      });
      assert.deepEqual(await files(), before, 'nothing created in either directory');
    }
    // Read-only, the copy reads every record.
    const reader = await Wal.open(copy, { readOnly: true });
    try {
      assert.equal(reader.tail, lsns.at(-1)! + 8 + payload(60).length);
      assert.deepEqual(await reader.read(lsns[41]!), payload(42));
    } finally {
      await reader.close();
    }
    // Once the copy is gone, the original opens with every record it had.
    await rm(copy, { recursive: true });
    const again = await Wal.open(log);
    try {
      assert.equal(again.recovery.records, 60);
      assert.equal(again.recovery.truncated, false);
    } finally {
      await again.close();
    }
  });

  it('refuses an opener in another process with WAL_LOCKED while this process holds the log', async function () {
    this.timeout(30_000);
    const wal = await Wal.open(dir);
    let tail: number;
    try {
      await wal.append(payload(1), { wait: 'durable' });
      assert.equal(await runChild(TRY_OPEN, [dir]), 'WAL_LOCKED');
      // The refusal names this process as the holder, running.
      assert.deepEqual(JSON.parse(await runChild(TRY_OPEN_HOLDER, [dir])), {
        code: 'WAL_LOCKED',
        pid: process.pid,
        alive: true,
        message: `${join(dir, 'lock')} is locked by process ${process.pid}, which is running`,
      });
      // Still ours, still working.
      assert.equal(wal.failure, undefined);
      const lsn = await wal.append(payload(2), { wait: 'durable' });
      assert.deepEqual(await wal.read(lsn), payload(2));
      tail = wal.tail;
    } finally {
      await wal.close();
    }
    // Once closed, the other process opens it.
    assert.equal(await runChild(TRY_OPEN, [dir]), `OPENED ${tail}`);
  });

  it('takes over the lock of a holder SIGKILLed with the log open, and recovers the log', async function () {
    this.timeout(30_000);
    const count = 20;
    const holder = child(HOLD_OPEN, [dir, String(count)]);
    const exited = new Promise<NodeJS.Signals | null>((resolve) => {
      holder.on('exit', (_code, signal) => resolve(signal));
    });
    let stderr = '';
    holder.stderr!.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    let lsns: number[];
    try {
      lsns = await new Promise<number[]>((resolve, reject) => {
        let out = '';
        holder.stdout!.on('data', (chunk: Buffer) => {
          out += chunk.toString();
          const line = out.split('\n').find((l) => l.startsWith('READY'));
          if (line !== undefined) resolve(line.split(' ').slice(1).map(Number));
        });
        void exited.then(() => reject(new Error(`the holder exited early: ${stderr}`)));
      });
      // While it lives, it holds the log: refused here too; reading is fine.
      await assert.rejects(Wal.open(dir), { code: 'WAL_LOCKED' });
      const reader = await Wal.open(dir, { readOnly: true });
      try {
        assert.deepEqual(await reader.read(lsns[0]!), payload(0));
      } finally {
        await reader.close();
      }
    } finally {
      holder.kill('SIGKILL');
    }
    assert.equal(await exited, 'SIGKILL');
    // The dead holder's lock file is still there…
    assert.ok(
      (await readdir(dir)).some((name) => name.toLowerCase().includes('lock')),
      `no lock file left behind: ${(await readdir(dir)).join(', ')}`,
    );
    // …and taken over: every acknowledged record is back, the log works.
    const wal = await Wal.open(dir);
    try {
      assert.equal(wal.head, 0);
      assert.ok(wal.recovery.records >= count, `${wal.recovery.records} records recovered`);
      for (const [i, lsn] of lsns.entries()) assert.deepEqual(await wal.read(lsn), payload(i));
      const next = await wal.append(payload(99), { wait: 'durable' });
      assert.deepEqual(await wal.read(next), payload(99));
      // The new holder has it now.
      await assert.rejects(Wal.open(dir), { code: 'WAL_LOCKED' });
      assert.equal(await runChild(TRY_OPEN, [dir]), 'WAL_LOCKED');
    } finally {
      await wal.close();
    }
  });
});
