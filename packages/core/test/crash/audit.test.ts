/**
 * Sync-discipline audit. Real workloads (durable appends from several
 * committers, segment rolls, sync, truncateAfter, truncateBefore, close, a
 * reopen with recovery) run on NodeFs in a temporary directory through a
 * RecordingFs, which logs every call's issue and completion; the test adds
 * every acknowledgement (a durable wait, sync(), a truncation, close, open)
 * to the same sequence. The audit then checks, from the sequence alone:
 * 1. data: before an acknowledgement covering log bytes up to E, every
 *    pwrite to a segment touching [0, E) issued before it completed and was
 *    followed by a completed fdatasync of its file, or its bytes below E
 *    overwritten by durable writes issued after it completed (zeros written
 *    ahead, then records), and every durable write (pwriteDurable, O_DSYNC)
 *    there completed, successfully;
 * 2. truncates: every ftruncate of a segment issued before an acknowledgement
 *    was followed by a completed fdatasync of its file (or its unlink);
 * 3. directory entries: every file created, renamed or unlinked (and every
 *    directory made) before an acknowledgement was followed by a completed
 *    syncDir of its parent — temporary files excepted (rule 4 covers them),
 *    and the metadata file only for truncations, close and open;
 * 4. atomic replace: a file is renamed only after an fdatasync of its last
 *    write;
 * 5. no fdatasync/syncDir of a path issued after one on it failed.
 * The audit is shown to catch file systems that skip fdatasync or syncDir.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { type Fs, type FsFile, NodeFs } from '@wal/store';
import { FaultFs } from '@wal/store/testing';
import { Wal } from '../../src/index.js';
import { type FsEvent, RecordingFs, retriedFsyncs, SESSION } from './recording-fs.js';
import { makePayload, rng } from './records.js';

const SEGMENT = 4096;
const SEGMENT_FILE = /^(\d{20})\.wal$/;

interface Call {
  readonly id: number;
  readonly method: string;
  readonly path: string;
  readonly args: readonly unknown[];
  /** Position of the issue event in the sequence. */
  readonly issued: number;
  /** Position of the completion event, if it completed. */
  settled?: number;
  ok?: boolean;
}

/** A completed successful call of `method` on `path` issued after `after` and settled before `before`. */
function covered(
  calls: readonly Call[],
  method: string,
  path: string,
  after: number,
  before: number,
): boolean {
  return calls.some(
    (c) =>
      c.method === method &&
      c.path === path &&
      c.ok === true &&
      c.issued > after &&
      c.settled !== undefined &&
      c.settled < before,
  );
}

/**
 * Whether the bytes of the pwrite `write` (at file position `args[0]`, log
 * offset `start`) below log offset `end` were all overwritten by durable
 * writes to its file issued after it completed and succeeded before `before`.
 */
function overwrittenDurably(
  calls: readonly Call[],
  write: Call,
  before: number,
  start: number,
  end: number,
): boolean {
  const position = write.args[0] as number;
  let from = position;
  const to = position + Math.min(write.args[1] as number, end - start);
  const durable = calls
    .filter(
      (c) =>
        c.method === 'pwriteDurable' &&
        c.path === write.path &&
        c.ok === true &&
        c.issued > write.settled! &&
        c.settled !== undefined &&
        c.settled < before,
    )
    .map((c) => [c.args[0] as number, (c.args[0] as number) + (c.args[1] as number)] as const)
    .sort((a, b) => a[0] - b[0]);
  for (const [s, e] of durable) if (s <= from && e > from) from = e;
  return from >= to;
}

/** The log offset a write to a segment starts at, or undefined for another file. */
function logOffset(call: Call, segmentSize: number): number | undefined {
  const match = SEGMENT_FILE.exec(basename(call.path));
  return match === null ? undefined : Number(match[1]) * segmentSize + (call.args[0] as number);
}

/** Checks the recorded sequence; returns every violation found. */
export function audit(events: readonly FsEvent[], segmentSize: number): string[] {
  const problems: string[] = [];
  const calls: Call[] = [];
  const byId = new Map<number, Call>();
  const acks: Array<{ at: number; what: string; end: number }> = [];
  events.forEach((event, at) => {
    if (event.type === 'call') {
      const call: Call = { ...event, issued: at };
      calls.push(call);
      byId.set(event.id, call);
    } else if (event.type === 'done') {
      const call = byId.get(event.id)!;
      call.settled = at;
      call.ok = event.ok;
    } else if (event.what !== SESSION) {
      acks.push({ at, what: event.what, end: event.end });
    }
  });

  // Which files exist, to tell a create from an open of an existing file.
  const exists = new Set<string>();
  // Temporary files matter only through their rename (rule 4); the metadata
  // file (the durable hint, updated in the background) only to truncations,
  // close and open, whose contracts include it.
  const entryOps: Array<{ call: Call; dir: string; what: string; metaOnly: boolean }> = [];
  const isTemp = (path: string) => path.endsWith('.tmp');
  const isMeta = (path: string) => basename(path).startsWith('meta');
  for (const call of calls) {
    if (call.ok !== true) continue;
    if (call.method === 'open' && call.args[0] !== 'read' && call.args[0] !== 'write') {
      if (!exists.has(call.path) && !isTemp(call.path)) {
        const what = `create ${call.path}`;
        entryOps.push({ call, dir: dirname(call.path), what, metaOnly: isMeta(call.path) });
      }
      exists.add(call.path);
    } else if (call.method === 'rename') {
      const to = call.args[0] as string;
      exists.delete(call.path);
      exists.add(to);
      const what = `rename ${call.path} -> ${to}`;
      entryOps.push({ call, dir: dirname(to), what, metaOnly: isMeta(to) });
    } else if (call.method === 'unlink') {
      exists.delete(call.path);
      if (!isTemp(call.path)) {
        const what = `unlink ${call.path}`;
        entryOps.push({ call, dir: dirname(call.path), what, metaOnly: isMeta(call.path) });
      }
    } else if (call.method === 'mkdir') {
      entryOps.push({ call, dir: dirname(call.path), what: `mkdir ${call.path}`, metaOnly: false });
    }
  }

  for (const ack of acks) {
    const label = `${ack.what} (end ${ack.end}, event ${ack.at})`;
    // 1. Data.
    for (const call of calls) {
      if (call.method !== 'pwriteDurable' || call.issued > ack.at) continue;
      const start = logOffset(call, segmentSize);
      if (start === undefined || start >= ack.end) continue;
      if (call.settled === undefined || call.settled > ack.at || call.ok !== true) {
        problems.push(`${label}: the durable write at ${start} (${call.path}) had not succeeded`);
      }
    }
    for (const call of calls) {
      if (call.method !== 'pwrite' || call.issued > ack.at) continue;
      const start = logOffset(call, segmentSize);
      if (start === undefined || start >= ack.end) continue;
      if (call.settled === undefined || call.settled > ack.at) {
        problems.push(`${label}: the write at ${start} (${call.path}) had not completed`);
      } else if (
        call.ok === true &&
        !covered(calls, 'fdatasync', call.path, call.settled, ack.at) &&
        !overwrittenDurably(calls, call, ack.at, start, ack.end)
      ) {
        problems.push(`${label}: the write at ${start} (${call.path}) was not fdatasynced`);
      }
    }
    // 2. Truncates.
    for (const call of calls) {
      if (call.method !== 'ftruncate' || call.issued > ack.at || call.ok !== true) continue;
      if (!SEGMENT_FILE.test(basename(call.path))) continue;
      if (call.settled! > ack.at) {
        problems.push(`${label}: ftruncate of ${call.path} had not completed`);
      } else if (
        !covered(calls, 'fdatasync', call.path, call.settled!, ack.at) &&
        !calls.some((c) => c.method === 'unlink' && c.path === call.path && c.issued < ack.at)
      ) {
        problems.push(`${label}: ftruncate of ${call.path} was not fdatasynced`);
      }
    }
    // 3. Directory entries.
    const metaAck = !ack.what.startsWith('durable') && ack.what !== 'sync';
    for (const op of entryOps) {
      if (op.call.issued > ack.at || (op.metaOnly && !metaAck)) continue;
      if (op.call.settled! > ack.at) {
        problems.push(`${label}: ${op.what} had not completed`);
      } else if (!covered(calls, 'syncDir', op.dir, op.call.settled!, ack.at)) {
        problems.push(`${label}: ${op.what} not followed by a syncDir of ${op.dir}`);
      }
    }
  }

  // 4. A file is renamed only after an fdatasync of its last write.
  for (const call of calls) {
    if (call.method !== 'rename' || call.ok !== true) continue;
    const writes = calls.filter(
      (c) =>
        (c.method === 'pwrite' || c.method === 'ftruncate') &&
        c.path === call.path &&
        c.issued < call.issued,
    );
    const last = writes[writes.length - 1];
    if (last !== undefined && !covered(calls, 'fdatasync', call.path, last.settled!, call.issued)) {
      problems.push(`rename of ${call.path} before an fdatasync of its last write`);
    }
  }

  // 5. No retried fsync.
  problems.push(...retriedFsyncs(events));
  return [...new Set(problems)];
}

// ---------------------------------------------------------------- workloads

const dirs: string[] = [];
async function freshDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'wal-audit-'));
  dirs.push(dir);
  return join(dir, 'log');
}

/** Runs the workload on `fs` (which records into `recording`); resolves with rejections seen. */
async function workload(path: string, fs: Fs, recording: RecordingFs): Promise<unknown[]> {
  const random = rng(7);
  const errors: unknown[] = [];
  let tag = 1;
  const open = async (): Promise<Wal> => {
    const wal = await Wal.open(path, { fs, segmentSize: SEGMENT });
    recording.ack('open', wal.tail);
    return wal;
  };
  const append = async (wal: Wal): Promise<void> => {
    const lsn = wal.tail;
    const length =
      random() < 0.2 ? 1000 + Math.floor(random() * 2500) : 16 + Math.floor(random() * 200);
    const payload = makePayload(lsn, tag++, length);
    try {
      await wal.append(payload, { wait: 'durable' });
      recording.ack(`durable ${lsn}`, lsn + 8 + payload.length);
    } catch (error) {
      errors.push(error);
    }
  };
  const committers = (wal: Wal, count: number, each: number) =>
    Promise.all(
      Array.from({ length: count }, async () => {
        for (let i = 0; i < each; i++) await append(wal);
      }),
    );
  const step = async (what: string, work: () => Promise<number>): Promise<void> => {
    try {
      const end = await work();
      recording.ack(what, end);
    } catch (error) {
      errors.push(error);
    }
  };

  let wal: Wal;
  try {
    wal = await open();
  } catch (error) {
    return [error];
  }
  await committers(wal, 4, 6);
  try {
    for (let i = 0; i < 5; i++) wal.append(makePayload(wal.tail, tag++, 100));
  } catch (error) {
    errors.push(error);
  }
  await step('sync', async () => {
    const end = wal.tail;
    await wal.sync();
    return end;
  });
  const lsns: number[] = [];
  try {
    if (wal.failure === undefined) for await (const r of wal.iterate()) lsns.push(r.lsn);
  } catch (error) {
    // A background failure (the durable hint's update) latches the store: reads fail too.
    errors.push(error);
    lsns.length = 0;
  }
  if (lsns.length > 10) {
    const cut = lsns[Math.floor(lsns.length / 2)]!;
    await step('truncateAfter', async () => {
      await wal.truncateAfter(cut);
      return wal.tail;
    });
    await committers(wal, 3, 4);
    const head = lsns.find((lsn) => lsn >= 2 * SEGMENT + 10 && lsn < cut) ?? cut;
    const truncateBefore = async (lsn: number): Promise<number> => {
      const from = recording.events.length;
      await wal.truncateBefore(lsn);
      // The head file's rename claims every byte below the head durable
      // (FORMAT.md §7.2 step 2): audit it as an acknowledgement there.
      const at = recording.events.findIndex(
        (event, i) =>
          i >= from &&
          event.type === 'call' &&
          event.method === 'rename' &&
          basename(String(event.args[0])) === 'head',
      );
      assert.ok(at >= 0, 'truncateBefore renamed no head file');
      recording.events.splice(at, 0, { type: 'ack', what: 'head file renamed', end: lsn });
      return lsn;
    };
    await step('truncateBefore', () => truncateBefore(head));
    // Records below the new head not yet durable when it is called.
    for (let i = 0; i < 3; i++) {
      try {
        wal.append(makePayload(wal.tail, tag++, 200));
      } catch (error) {
        errors.push(error);
      }
    }
    await step('truncateBefore at the tail', () => truncateBefore(wal.tail));
  }
  await committers(wal, 2, 3);
  for (let i = 0; i < 5; i++) {
    try {
      wal.append(makePayload(wal.tail, tag++, 300));
    } catch (error) {
      errors.push(error);
    }
  }
  const end = wal.tail;
  // After a failure close() resolves without writing: no acknowledgement then.
  const failedBefore = wal.failure !== undefined;
  try {
    await wal.close();
    if (!failedBefore) recording.ack('close', end);
  } catch (error) {
    errors.push(error);
  }
  recording.ack(SESSION, 0);
  // Recovery of the same directory, then appends.
  try {
    wal = await open();
    await committers(wal, 2, 3);
    const last = wal.tail;
    const failed = wal.failure !== undefined;
    await wal.close();
    if (!failed) recording.ack('close after reopen', last);
  } catch (error) {
    errors.push(error);
  }
  return errors;
}

/** An Fs whose fdatasync does nothing (and so is never recorded). */
class NoFdatasync extends RecordingFs {
  override fdatasync(_file: FsFile): Promise<void> {
    return Promise.resolve();
  }
}

/** An Fs whose syncDir does nothing (and so is never recorded). */
class NoSyncDir extends RecordingFs {
  override syncDir(_path: string): Promise<void> {
    return Promise.resolve();
  }
}

describe('crash: sync-discipline audit (NodeFs, recorded calls and acknowledgements)', () => {
  after(async () => {
    for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
  });

  it('a real workload keeps the sync discipline', async function () {
    this.timeout(60_000);
    const recording = new RecordingFs(new NodeFs());
    const errors = await workload(await freshDir(), recording, recording);
    assert.deepEqual(errors, []);
    const acks = recording.events.filter((e) => e.type === 'ack').length;
    assert.ok(acks > 40, `only ${acks} acknowledgements`);
    const methods = new Set<string>(
      recording.events.flatMap((e) => (e.type === 'call' ? [e.method] : [])),
    );
    for (const method of ['pwrite', 'fdatasync', 'syncDir', 'rename', 'unlink', 'ftruncate']) {
      assert.ok(methods.has(method), `the workload made no ${method}`);
    }
    assert.deepEqual(audit(recording.events, SEGMENT), []);
  });

  it('catches a file system whose fdatasync does nothing', async function () {
    this.timeout(60_000);
    const recording = new NoFdatasync(new NodeFs());
    await workload(await freshDir(), recording, recording);
    const problems = audit(recording.events, SEGMENT);
    assert.ok(
      problems.some((p) => p.includes('was not fdatasynced')),
      problems.join('\n'),
    );
  });

  it('catches a file system whose directory fsync does nothing', async function () {
    this.timeout(60_000);
    const recording = new NoSyncDir(new NodeFs());
    await workload(await freshDir(), recording, recording);
    const problems = audit(recording.events, SEGMENT);
    assert.ok(
      problems.some((p) => p.includes('not followed by a syncDir')),
      problems.join('\n'),
    );
  });

  it('at every fsync index: no fsync retried after a failed one, nothing acknowledged past it', async function () {
    this.timeout(120_000);
    const counting = new FaultFs(new NodeFs());
    const plain = new RecordingFs(counting);
    await workload(await freshDir(), plain, plain);
    const problems: string[] = [];
    let runs = 0;
    for (const method of ['fdatasync', 'syncDir'] as const) {
      for (let at = 1; at <= counting.count(method); at++) {
        const faults = new FaultFs(new NodeFs());
        const rule = faults.inject({ method, at, fault: 'EIO' });
        const recording = new RecordingFs(faults);
        const errors = await workload(await freshDir(), recording, recording);
        runs++;
        if (rule.fired > 0 && errors.length === 0) {
          problems.push(`the ${method} failure at ${at} surfaced nowhere`);
        }
        for (const problem of audit(recording.events, SEGMENT)) {
          problems.push(`${method} failure at ${at}: ${problem}`);
        }
      }
    }
    assert.ok(runs > 20, `only ${runs} runs`);
    assert.deepEqual(problems, []);
  });
});
