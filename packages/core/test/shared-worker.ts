/**
 * The worker thread of the shared-log tests (shared.test.ts). `workerData`
 * says what to do; every LSN handed out is reported in shared memory at
 * once (so an owner reading it after the thread was terminated still knows
 * it), and so is the end of each record acknowledged durable.
 *
 * Report layout (Int32Array over `reports`): [0] LSNs reported, [1] the
 * highest acknowledged-durable end, [2] 1 once the job finished, [3] the
 * error code it stopped on (an index into CODES, 0 none), [4] how many
 * times it found the ring full, then one LSN per record in append order.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { errorCode } from '@wal/errors';
import { SharedWal, type SharedWalHandle } from '../src/index.js';
import { SharedMemory } from '../src/shared-memory.js';
import { CODES, REPORT_HEADER, threadPayload } from './shared-payloads.js';

interface Job {
  readonly handle: SharedWalHandle;
  readonly reports: SharedArrayBuffer;
  readonly thread: number;
  /**
   * `records`: append that many, then wait until the last is durable;
   * `forever`: until stopped or refused; `die`: reserve and exit;
   * `committers`: `committers` loops, each appending `records` records one
   * at a time, each awaited until durable; `spin`: one append and a wait
   * for its durability, then a synchronous spin (no yield) until `durable`
   * passes it, stopping as 'other' after 10 s.
   */
  readonly job: 'records' | 'forever' | 'die' | 'batches' | 'committers' | 'spin';
  readonly committers?: number;
  readonly records?: number;
  readonly seed?: number;
  /** Every how many appends one waits until durable (0: none). */
  readonly durableEvery?: number;
  readonly maxSize?: number;
  /** A `records` job that leaves without its final wait: by `detach()`, or by `process.exit`. */
  readonly leave?: 'detach' | 'exit';
}

const job = workerData as Job;
const report = new Int32Array(job.reports);

function reported(lsn: number): void {
  const at = Atomics.load(report, 0);
  Atomics.store(report, REPORT_HEADER + at, lsn);
  Atomics.store(report, 0, at + 1);
}

function acknowledged(end: number): void {
  for (;;) {
    const seen = Atomics.load(report, 1);
    if (seen >= end || Atomics.compareExchange(report, 1, seen, end) === seen) return;
  }
}

function stopped(error: unknown): void {
  const code = errorCode(error);
  const index = CODES.indexOf(code ?? '');
  Atomics.store(report, 3, index > 0 ? index : CODES.length - 1);
}

async function run(): Promise<void> {
  if (job.job === 'die') {
    // A thread that dies after reserving and before framing: steps 1 and 2
    // of the append protocol, then the thread ends.
    const memory = new SharedMemory(job.handle.control, job.handle.ring, job.handle.ringSize);
    const lsn = memory.reserve(job.handle.slot, 100);
    reported(lsn);
    process.exit(0);
  }
  const log = SharedWal.attach(job.handle);
  if (job.job === 'spin') {
    const lsn = log.append(threadPayload(job.thread, 0, job.seed ?? 0, job.maxSize));
    reported(lsn);
    // Asked, and never yields: only the owner's bound on a wave can serve it.
    void log.waitFor(lsn, 'durable');
    const deadline = Date.now() + 10_000;
    while (log.durable <= lsn && Date.now() < deadline);
    if (log.durable <= lsn) stopped(new Error('not durable after 10 s of spinning'));
    Atomics.store(report, 2, 1);
    parentPort?.postMessage('done');
    return;
  }
  if (job.job === 'committers') {
    let seq = 0;
    const committer = async (): Promise<void> => {
      for (let i = 0; i < job.records!; i++) {
        const payload = threadPayload(job.thread, seq++, job.seed ?? 0, job.maxSize);
        const lsn = log.append(payload);
        reported(lsn); // in the order of the payloads' numbers
        await log.waitFor(lsn, 'durable');
      }
    };
    try {
      await Promise.all(Array.from({ length: job.committers ?? 1 }, committer));
    } catch (error) {
      stopped(error);
    }
    Atomics.store(report, 2, 1);
    parentPort?.postMessage('done');
    return;
  }
  const durableEvery = job.durableEvery ?? 0;
  const waits: Promise<void>[] = [];
  let seq = 0;
  try {
    for (; job.job === 'forever' || seq < job.records!; seq++) {
      if (!log.writable) {
        Atomics.add(report, 4, 1);
        await log.drained();
      }
      if (job.job === 'batches' && seq % 5 === 0) {
        const payloads = [0, 1, 2].map((k) =>
          threadPayload(job.thread, seq + k, job.seed ?? 0, job.maxSize),
        );
        const lsns = log.appendBatch(payloads);
        for (const lsn of lsns) reported(lsn);
        seq += 2;
        continue;
      }
      const payload = threadPayload(job.thread, seq, job.seed ?? 0, job.maxSize);
      const lsn = log.append(payload);
      reported(lsn);
      if (durableEvery > 0 && seq % durableEvery === 0) {
        const end = lsn + 8 + payload.length;
        const wait = log.waitFor(lsn, 'durable').then(
          () => acknowledged(end),
          (error: unknown) => {
            // A truncateAfter (of the owner) cut the record: not acknowledged, and no stop.
            if (errorCode(error) !== 'WAL_TRUNCATED') throw error;
          },
        );
        // Every fourth one awaited in line, the others left in flight.
        if (seq % (4 * durableEvery) === 0) await wait;
        else waits.push(wait);
      }
      if (job.job === 'forever' && seq % 64 === 0) await new Promise((r) => setImmediate(r));
    }
    await Promise.all(waits);
    if (job.leave === 'exit') process.exit(0);
    if (job.leave === 'detach') log.detach();
    const last = job.leave === undefined ? Atomics.load(report, 0) : 0;
    if (last > 0) {
      const lsn = Atomics.load(report, REPORT_HEADER + last - 1);
      await log.waitFor(lsn, 'durable');
      const tail = log.durable;
      acknowledged(Math.min(tail, Number.MAX_SAFE_INTEGER));
    }
  } catch (error) {
    stopped(error);
    parentPort?.postMessage({ stoppedOn: String((error as Error)?.stack ?? error) });
    await Promise.allSettled(waits);
  }
  Atomics.store(report, 2, 1);
  parentPort?.postMessage('done');
}

void run();
