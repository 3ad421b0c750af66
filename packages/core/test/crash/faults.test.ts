/**
 * I/O faults at every call: each workload (durable appends from several
 * committers with segment rolls; truncateAfter; truncateBefore; close; open
 * with recovery of a torn tail) runs once to count its file-system calls, then
 * once per call index and fault — EIO, ENOSPC and a short write on `pwrite`,
 * EIO and a short write on `pwriteDurable`, EIO on `fdatasync`, EIO on `syncDir`, once and persistent — over a
 * `FaultFs` on a `CrashFs`. Every run checks:
 * - every rejection is a WalError with a stable code (WAL_IO, WAL_NO_SPACE,
 *   WAL_FAILED, WAL_WRITE_FAILED); an injection that hits nothing means success;
 * - no fdatasync/syncDir of a path after a failed one on it (no retried fsync);
 * - after a failure the log has a `failure` and refuses appends (typed);
 * - close() resolves or rejects typed and releases the lock (a new open works);
 * - after reopen() (even runs) or a fresh open (odd runs) every record whose
 *   durable wait resolved is present, every record is what was appended at
 *   its LSN (exact prefix, no garbage), a second recovery reads the same log,
 *   and an append after recovery is durable.
 */
import assert from 'node:assert/strict';
import { CrashFs, type Fault, FaultFs, type FsMethod } from '@wal/store/testing';
import { Wal } from '../../src/index.js';
import { describeError } from './harness.js';
import { RecordingFs, retriedFsyncs } from './recording-fs.js';
import { makePayload, rng } from './records.js';
import { checked, found } from './reliability.js';

const PATH = '/log';
const SEGMENT = 4096;
const ALLOWED = new Set(['WAL_IO', 'WAL_NO_SPACE', 'WAL_FAILED', 'WAL_WRITE_FAILED']);

interface Kind {
  readonly name: string;
  readonly method: FsMethod;
  readonly fault: Fault;
}

const KINDS: readonly Kind[] = [
  { name: 'EIO on pwrite', method: 'pwrite', fault: 'EIO' },
  { name: 'ENOSPC on pwrite', method: 'pwrite', fault: 'ENOSPC' },
  { name: 'short write', method: 'pwrite', fault: 'short' },
  { name: 'EIO on fdatasync', method: 'fdatasync', fault: 'EIO' },
  { name: 'EIO on syncDir', method: 'syncDir', fault: 'EIO' },
  // Beyond the five above: ENOSPC reported by fsync (thin provisioning, NFS),
  // and a failed rename (the metadata and head files are replaced by rename).
  { name: 'ENOSPC on fdatasync', method: 'fdatasync', fault: 'ENOSPC' },
  { name: 'EIO on rename', method: 'rename', fault: 'EIO' },
  // The durable write of durable commits (an O_DSYNC write on a real file):
  // its failure leaves its durability unknown, as a failed fdatasync does.
  { name: 'EIO on pwriteDurable', method: 'pwriteDurable', fault: 'EIO' },
  { name: 'short durable write', method: 'pwriteDurable', fault: 'short' },
  // Disk full on a durable commit: latched by the store, as EIO is.
  { name: 'ENOSPC on pwriteDurable', method: 'pwriteDurable', fault: 'ENOSPC' },
];

/** What a run appended and what it was promised. */
class Run {
  /** The latest payload reserved at each LSN. */
  readonly appended = new Map<number, Uint8Array>();
  /** LSNs whose durable acknowledgement must survive. */
  readonly must = new Set<number>();
  readonly problems: string[] = [];
  readonly errors: unknown[] = [];
  wal: Wal | undefined;
  #tag = 1;
  readonly random: () => number;

  constructor(seed: number) {
    this.random = rng(seed);
  }

  /** Notes a rejection: typed, and (outside close) the log must have stopped. */
  failed(error: unknown, where: string, wal: Wal | undefined): void {
    this.errors.push(error);
    const code = (error as { code?: unknown } | null)?.code;
    if (typeof code !== 'string' || !ALLOWED.has(code)) {
      this.problems.push(`${where}: untyped or unexpected rejection ${String(code)}: ${error}`);
      return;
    }
    if (wal === undefined || where === 'close') return;
    if (wal.failure === undefined) {
      this.problems.push(`${where}: rejected with ${code} but the log has no failure`);
    }
    try {
      wal.append(new Uint8Array(1));
      this.problems.push(`${where}: the log accepted an append after ${code}`);
    } catch (refusal) {
      const again = (refusal as { code?: unknown } | null)?.code;
      if (typeof again !== 'string' || !ALLOWED.has(again)) {
        this.problems.push(`${where}: an append after the failure threw ${String(again)}`);
      }
    }
  }

  payload(wal: Wal): Uint8Array {
    const length =
      this.random() < 0.15
        ? 1500 + Math.floor(this.random() * 3000)
        : 16 + Math.floor(this.random() * 300);
    return makePayload(wal.tail, this.#tag++, length);
  }

  /** One append, waited for at `durable`. */
  async append(wal: Wal): Promise<void> {
    const lsn = wal.tail;
    const payload = this.payload(wal);
    const promise = wal.append(payload, { wait: 'durable' });
    if (wal.tail !== lsn) this.appended.set(lsn, payload);
    try {
      await promise;
      this.must.add(lsn);
    } catch (error) {
      this.failed(error, 'append', wal);
    }
  }

  /** Appends without waiting; returns the LSNs reserved. */
  appendNoWait(wal: Wal, count: number): number[] {
    const lsns: number[] = [];
    for (let i = 0; i < count; i++) {
      const lsn = wal.tail;
      const payload = this.payload(wal);
      try {
        wal.append(payload);
        this.appended.set(lsn, payload);
        lsns.push(lsn);
      } catch (error) {
        this.failed(error, 'append (no wait)', wal);
        break;
      }
    }
    return lsns;
  }

  async committers(wal: Wal, count: number, each: number): Promise<void> {
    await Promise.all(
      Array.from({ length: count }, async () => {
        for (let i = 0; i < each; i++) await this.append(wal);
      }),
    );
  }

  async step(wal: Wal, where: string, work: () => Promise<unknown>): Promise<boolean> {
    try {
      await work();
      return true;
    } catch (error) {
      this.failed(error, where, wal);
      return false;
    }
  }

  /** The durable acknowledged LSNs, in order. */
  sortedMust(): number[] {
    return [...this.must].sort((a, b) => a - b);
  }
}

interface Workload {
  readonly name: string;
  /** Prepares the file system without faults (optional). */
  /** Runs before the faults on `crash`; resolves to the file system of the process the work runs in. */
  readonly setup?: (crash: CrashFs, run: Run) => Promise<CrashFs>;
  /** The faulted part: opens the log (run.wal) and works with it. */
  readonly work: (run: Run, open: () => Promise<Wal>) => Promise<void>;
}

const workloads: readonly Workload[] = [
  {
    name: 'durable appends from 4 committers with segment rolls, sync, close',
    work: async (run, open) => {
      const wal = await open();
      await run.committers(wal, 4, 7);
      await run.step(wal, 'sync', () => wal.sync());
    },
  },
  {
    name: 'truncateAfter between appends',
    work: async (run, open) => {
      const wal = await open();
      await run.committers(wal, 3, 6);
      const must = run.sortedMust();
      if (must.length > 2) {
        const cut = must[Math.floor(must.length / 2)]!;
        for (const lsn of must) if (lsn > cut) run.must.delete(lsn);
        await run.step(wal, 'truncateAfter', () => wal.truncateAfter(cut));
      }
      await run.committers(wal, 2, 3);
    },
  },
  {
    name: 'truncateBefore between appends',
    work: async (run, open) => {
      const wal = await open();
      await run.committers(wal, 3, 7);
      const must = run.sortedMust();
      if (must.length > 2) {
        const cut = must[Math.floor((must.length * 2) / 3)]!;
        for (const lsn of must) if (lsn < cut) run.must.delete(lsn);
        await run.step(wal, 'truncateBefore', () => wal.truncateBefore(cut));
      }
      await run.committers(wal, 2, 3);
    },
  },
  {
    name: 'appends without waiting, made durable by close',
    work: async (run, open) => {
      const wal = await open();
      await run.committers(wal, 2, 2);
      const lsns = run.appendNoWait(wal, 30);
      try {
        await wal.close();
        for (const lsn of lsns) run.must.add(lsn);
      } catch (error) {
        run.failed(error, 'close', wal);
      }
    },
  },
  {
    name: 'open recovering a torn tail after a process crash, then appends',
    setup: async (crash, run) => {
      const wal = await Wal.open(PATH, { fs: crash, segmentSize: SEGMENT });
      await run.committers(wal, 3, 4);
      run.appendNoWait(wal, 5);
      await wal.waitFor(wal.tail - 1, 'written');
      const next = crash.processCrash();
      // A torn frame after the last record: a header promising more than is there.
      const last = Math.floor(wal.tail / SEGMENT);
      const file = await next.open(`${PATH}/${String(last).padStart(20, '0')}.wal`, 'create');
      const header = new Uint8Array([1, 2, 3, 4, 200, 0, 0, 0, 9, 9, 9]);
      await next.pwrite(file, header, wal.tail - last * SEGMENT);
      await next.close(file);
      return next;
    },
    work: async (run, open) => {
      const wal = await open();
      await run.committers(wal, 2, 3);
    },
  },
];

/** Checks the recovered log against the run; returns its records' LSNs. */
async function verify(run: Run, wal: Wal, label: string): Promise<number[]> {
  const lsns: number[] = [];
  let expected = wal.head;
  for await (const batch of wal.iterateBatches()) {
    for (const { lsn, payload } of batch) {
      if (lsn !== expected) run.problems.push(`${label}: a record at ${lsn}, expected ${expected}`);
      expected = lsn + 8 + payload.length;
      const appended = run.appended.get(lsn);
      if (appended === undefined || Buffer.compare(appended, payload) !== 0) {
        run.problems.push(`${label}: garbage at ${lsn} (${payload.length} bytes)`);
      }
      lsns.push(lsn);
    }
  }
  const present = new Set(lsns);
  for (const lsn of run.must) {
    if (!present.has(lsn)) run.problems.push(`${label}: acknowledged durable record ${lsn} lost`);
  }
  return lsns;
}

interface Outcome {
  readonly problems: string[];
  readonly hit: boolean;
  readonly counts: Map<FsMethod, number>;
  /** 1 when a recovery threw. */
  readonly failedRecoveries?: number;
}

async function runOnce(
  workload: Workload,
  seed: number,
  injection: { kind: Kind; at: number; persistent: boolean } | undefined,
  useReopen = false,
): Promise<Outcome> {
  const run = new Run(seed);
  let crash = new CrashFs();
  if (workload.setup !== undefined) crash = await workload.setup(crash, run);
  const fs = new FaultFs(crash);
  const recording = new RecordingFs(fs);
  const rule =
    injection === undefined
      ? undefined
      : fs.inject({
          method: injection.kind.method,
          at: injection.at,
          fault: injection.kind.fault,
          persistent: injection.persistent,
        });
  let openFailed = false;
  const open = async (): Promise<Wal> => {
    try {
      run.wal = await Wal.open(PATH, { fs: recording, segmentSize: SEGMENT });
      return run.wal;
    } catch (error) {
      openFailed = true;
      run.failed(error, 'open', undefined);
      throw error;
    }
  };
  await workload.work(run, open).catch((error: unknown) => {
    if (!openFailed) run.problems.push(`the workload threw: ${String(error)}`);
  });
  const counts = new Map<FsMethod, number>();
  for (const method of ['pwrite', 'pwriteDurable', 'fdatasync', 'syncDir', 'rename'] as const) {
    counts.set(method, fs.count(method));
  }
  // No fsync of a path issued after a failed fsync of it (until the log is reopened).
  run.problems.push(...retriedFsyncs(recording.events));
  const hit = rule !== undefined && rule.fired > 0;
  const hitCall = fs.calls.find((call) => call.fault !== undefined);
  if (!hit && run.errors.length > 0) {
    run.problems.push(`rejections without a fault: ${run.errors.map(String).join('; ')}`);
  }
  const label =
    injection === undefined
      ? 'no fault'
      : `${injection.kind.name} at ${injection.at}${injection.persistent ? ' (persistent)' : ''}`;
  const trace = fs.calls.map(
    (c) =>
      `${c.index} ${c.method} ${c.path}${c.fault === undefined ? '' : ` <- ${JSON.stringify(c.fault)}`}`,
  );
  fs.clear();

  const where = hitCall === undefined ? '' : ` (${hitCall.method} ${hitCall.path})`;
  // A recovery that throws is a finding (counted), not a crash of the test.
  const recovered = async (which: string, open: () => Promise<Wal>): Promise<Wal | undefined> => {
    try {
      return await open();
    } catch (error) {
      run.problems.push(`${which} failed: ${describeError(error)}`);
      return undefined;
    }
  };
  const failedRecovery = (): Outcome => ({
    problems: run.problems.map((p) => `${label}${where}: ${p}`),
    hit,
    counts,
    failedRecoveries: 1,
  });
  let wal: Wal | undefined = run.wal;
  if (wal !== undefined && wal.failure !== undefined && useReopen) {
    const failed = wal;
    wal = await recovered('reopen()', () => failed.reopen());
  } else {
    if (wal !== undefined && !wal.closed) {
      try {
        await wal.close();
      } catch (error) {
        run.failed(error, 'close', wal);
      }
    }
    // The lock is released: a fresh open succeeds.
    wal = await recovered('recovery', () => Wal.open(PATH, { fs: crash, segmentSize: SEGMENT }));
  }
  if (wal === undefined) return failedRecovery();
  const first = await verify(run, wal, 'first recovery');
  const lsn = wal.tail;
  const payload = makePayload(lsn, 0xabcdef, 40);
  await wal.append(payload, { wait: 'durable' });
  run.appended.set(lsn, payload);
  run.must.add(lsn);
  await wal.close();
  wal = await recovered('second recovery', () =>
    Wal.open(PATH, { fs: crash, segmentSize: SEGMENT }),
  );
  if (wal === undefined) return failedRecovery();
  const second = await verify(run, wal, 'second recovery');
  if (JSON.stringify(second) !== JSON.stringify([...first, lsn])) {
    run.problems.push('the second recovery differs from the first');
  }
  await wal.close();
  if (run.problems.length > 0 && process.env.WAL_FAULT_TRACE !== undefined) {
    console.log(`--- ${label}\n${trace.join('\n')}\n${run.problems.join('\n')}`);
  }
  return { problems: run.problems.map((p) => `${label}${where}: ${p}`), hit, counts };
}

describe('crash: I/O faults at every call index (FaultFs over CrashFs)', () => {
  for (const [w, workload] of workloads.entries()) {
    for (const seed of [100 + w, 200 + w, 300 + w]) {
      it(`${workload.name} (payload seed ${seed})`, async function () {
        this.timeout(120_000);
        const clean = await runOnce(workload, seed, undefined);
        assert.deepEqual(clean.problems, []);
        let injections = 0;
        let hits = 0;
        let failedRecoveries = 0;
        const problems: string[] = [];
        for (const kind of KINDS) {
          const calls = clean.counts.get(kind.method)!;
          assert.ok(calls > 0, `the workload makes no ${kind.method} call`);
          // One index past the last call: the injection hits nothing.
          for (let at = 1; at <= calls + 1; at++) {
            for (const persistent of [false, true]) {
              const outcome = await runOnce(
                workload,
                seed,
                { kind, at, persistent },
                (at + (persistent ? 1 : 0)) % 2 === 0,
              );
              // The index past the last call injects nothing: not a fault.
              if (at <= calls) injections++;
              if (outcome.hit) hits++;
              failedRecoveries += outcome.failedRecoveries ?? 0;
              problems.push(...outcome.problems);
              if (problems.length > 20) break;
            }
          }
        }
        found({
          lost: problems.filter((p) => p.includes('durable record') && p.endsWith(' lost')).length,
          garbage: problems.filter((p) => p.includes('garbage at')).length,
          failedRecoveries,
        });
        console.log(
          `      ${injections} injections, ${hits} hit a call, ${problems.length} problems`,
        );
        assert.deepEqual(problems.slice(0, 20), []);
        checked({ faults: injections });
      });
    }
  }
});
